"""Reading the Amazon catalogue dump (``{"<id>": {title, description, brand, categories}}``)."""
from __future__ import annotations

import json
from pathlib import Path

from .types import ProductText

# ../shared/datasets beside the checkout (the layout CI and the README assume)
SCIENTIFIC_ITEMS = (Path(__file__).resolve().parents[2] / "shared" / "datasets" / "amazon-scientific"
                    / "Scientific.item.json")


def load_amazon_items(path: str | Path = SCIENTIFIC_ITEMS) -> list[ProductText]:
    with open(path, encoding="utf-8") as fh:
        items = json.load(fh)
    return [ProductText(uid=str(uid), title=item.get("title") or "",
                        description=item.get("description") or "",
                        brand=item.get("brand") or "",
                        categories=[c for c in (item.get("categories") or "").split(",") if c])
            for uid, item in items.items()]
