import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from kms.knowledge.external import import_recbole_kg


class Command(BaseCommand):
    help = "Import external knowledge triples (RecBole .kg + .link), e.g. ../shared/datasets/ml-100k-kg."

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", default=None)
        parser.add_argument("--with-items", action="store_true", help="also create products from NAME.item")
        parser.add_argument("--product-prefix", default=None, help="external-id prefix of linked products")
        parser.add_argument("--limit", type=int, default=None)

    def handle(self, *args, path, with_items, product_prefix, limit, **options):
        root = Path(path) if path else settings.DATASETS_DIR / "ml-100k-kg"
        stats = import_recbole_kg(root, with_items=with_items, product_prefix=product_prefix, limit=limit)
        self.stdout.write(json.dumps(stats, indent=2))
