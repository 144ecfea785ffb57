import json

from django.core.management.base import BaseCommand, CommandError

from kms.recs.evaluation import evaluate_version, evaluation_table
from kms.recs.models import ModelVersion


class Command(BaseCommand):
    help = ("Evaluate a model version on the shop's events (leave-last-out by timestamp, full ranking, "
            "history masked), with popularity and item-CF beside it; stores the result on the version.")

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --version here is the model version; it replaces Django's "print the Django version"
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--version", type=int, default=None, help="model version id (default: the active one)")
        parser.add_argument("--json", action="store_true", help="print the stored JSON instead of the table")

    def handle(self, *args, version, json: bool = False, **options):
        target = None
        if version is not None:
            target = ModelVersion.objects.filter(pk=version).first()
            if target is None:
                raise CommandError(f"no model version {version}")
        try:
            result = evaluate_version(target)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if json:
            self.stdout.write(_dumps(result))
        else:
            self.stdout.write(evaluation_table(result))


def _dumps(result: dict) -> str:
    return json.dumps(result, indent=2)
