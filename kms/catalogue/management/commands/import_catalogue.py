import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from kms.catalogue import importers


class Command(BaseCommand):
    help = ("Import products and events. --scientific imports ../shared/datasets/amazon-scientific; "
            "a path imports the generic JSONL format (see README).")

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?")
        parser.add_argument("--scientific", action="store_true")
        parser.add_argument("--limit-users", type=int, default=None)

    def handle(self, *args, path, scientific, limit_users, **options):
        if scientific:
            root = Path(path) if path else settings.DATASETS_DIR / "amazon-scientific"
            summary = importers.import_scientific(root, limit_users=limit_users, push_to_graph=False)
        elif path:
            summary = importers.import_jsonl(Path(path), push_to_graph=False)
        else:
            raise CommandError("give a JSONL path or --scientific")
        self.stdout.write(json.dumps(summary, indent=2, default=str))
