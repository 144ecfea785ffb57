import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from kms.catalogue import importers
from kms.catalogue.services import ImportFileError


class Command(BaseCommand):
    help = ("Import products and events: --amazon DIR imports the <Name>.item.json + <Name>.inter.json pair "
            "in DIR (--scientific: ../shared/datasets/amazon-scientific); a path imports the generic JSONL "
            "format (see README).")

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="a JSONL file")
        parser.add_argument("--amazon", metavar="DIR", help="a directory with <Name>.item.json + <Name>.inter.json")
        parser.add_argument("--scientific", action="store_true",
                            help="alias of --amazon ../shared/datasets/amazon-scientific")
        parser.add_argument("--limit-users", type=int, default=None, help="--amazon: the first N users' events only")

    def handle(self, *args, path, amazon, scientific, limit_users, **options):
        if scientific and not amazon:
            amazon = path or str(settings.DATASETS_DIR / "amazon-scientific")
            path = None
        try:
            if amazon:
                if path:
                    raise CommandError("give either --amazon DIR or a JSONL path")
                summary = importers.import_amazon(Path(amazon), limit_users=limit_users)
            elif path:
                summary = importers.import_jsonl(Path(path))
            else:
                raise CommandError("give a JSONL path, --amazon DIR or --scientific")
        except (ImportFileError, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(summary, indent=2, default=str))
