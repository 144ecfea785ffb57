from django.core.management.base import BaseCommand, CommandError

from kms.knowledge.attributes import SchemaError, import_attribute_schema


class Command(BaseCommand):
    help = "Derive category attribute schemas (names, values, number patterns) from an OA-Mine-style JSONL."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--replace", action="store_true",
                            help="drop the file's categories' existing attributes first")

    def handle(self, *args, file, replace, **options):
        try:
            out = import_attribute_schema(file, replace=replace)
        except (OSError, SchemaError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{out['records']} records, {out['categories']} categories: "
                          f"{out['created']} attributes created, {out['updated']} updated")
