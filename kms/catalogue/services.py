"""Catalogue actions: validate and upsert products, import datasets. Views, commands and tasks call these."""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from recommender.data import DatasetFileError as ImportFileError  # noqa: F401  (re-exported)
from recommender.data import amazon_products

from kms.recs.serving_cache import serving_cache

from .api.serializers import MAX_DESCRIPTION, MAX_EXTERNAL_ID, MAX_TITLE, ProductWrite  # noqa: F401  (the limits, re-exported)
from .models import Product, content_hash

class ProductValidationError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class UpsertResult:
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # {"index": n, "external_id": ..., "errors": {...}}

    @property
    def changed(self) -> list[int]:
        return self.created + self.updated

    def as_dict(self) -> dict:
        return {"created": len(self.created), "updated": len(self.updated),
                "unchanged": len(self.unchanged), "errors": self.errors}


def clean_product(record) -> dict:
    """A validated product dict from an API/JSONL/CSV record; raises ProductValidationError
    (``errors``: field -> message). The rules are ``ProductWrite``'s, the API body's."""
    product, errors = ProductWrite.clean(record)
    if errors:
        raise ProductValidationError(errors)
    return product


def upsert_products(records: Iterable) -> UpsertResult:
    """Create or update products by external id; a record that fails validation is reported, not lost."""
    result = UpsertResult()
    cleaned: dict[str, dict] = {}
    for n, record in enumerate(records):
        try:
            item = clean_product(record)
        except ProductValidationError as exc:
            ext = record.get("external_id", record.get("id")) if isinstance(record, dict) else None
            if isinstance(ext, int) and not isinstance(ext, bool):
                ext = str(ext)  # the id clean_product would have used (the schema's RecordError: string or null)
            result.errors.append({"index": n, "external_id": ext if isinstance(ext, str) else None,
                                  "errors": exc.errors})
            continue
        cleaned[item["external_id"]] = item  # the last record for an id wins
    with transaction.atomic():
        existing = {p.external_id: p for p in Product.objects.filter(external_id__in=list(cleaned))}
        new, changed = [], []
        for ext, item in cleaned.items():
            h = content_hash(item["title"], item["description"], item["brand"], item["category_path"], item["attributes"])
            product = existing.get(ext)
            if product is None:
                new.append(Product(content_hash=h, **item))
            elif product.content_hash != h:
                for key, value in item.items():
                    setattr(product, key, value)
                product.content_hash = h
                changed.append(product)
            else:
                result.unchanged.append(product.pk)
        for chunk_start in range(0, len(new), 1000):
            Product.objects.bulk_create(new[chunk_start:chunk_start + 1000])
        if changed:
            Product.objects.bulk_update(changed, ["title", "description", "brand", "category_path",
                                                  "attributes", "content_hash"], batch_size=500)
    if new or changed:
        serving_cache.changed("catalogue")  # every web process drops its product rows
    if new:
        ids = dict(Product.objects.filter(external_id__in=[p.external_id for p in new]).values_list("external_id", "id"))
        result.created = [ids[p.external_id] for p in new]
    result.updated = [p.pk for p in changed]
    return result


def read_jsonl(path: Path | str, with_lines: bool = False) -> Iterable:
    """Records of a JSONL file (``(line, record)`` pairs with ``with_lines``; blank lines skipped);
    a line that is not JSON yields a marker the caller reports."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                record = {"__error__": f"line {n}: invalid JSON ({exc.msg})"}
            yield (n, record) if with_lines else record


def scientific_products(root: Path) -> list[dict]:
    """Products of the Amazon dump in ``root`` (any ``<Name>.item.json``) in id order, with
    ``categories`` as a comma-separated string (the shape earlier callers use)."""
    from recommender.data import amazon_files, id_order

    products = [p for p in amazon_products(amazon_files(root)[1])[0] if isinstance(p, dict)]
    order = {iid: n for n, iid in enumerate(id_order(p["external_id"] for p in products))}
    return [{**{k: v for k, v in p.items() if k != "category_path"}, "categories": ",".join(p["category_path"])}
            for p in sorted(products, key=lambda p: order[p["external_id"]])]


def find_product(external_id: str) -> Product | None:
    return Product.objects.filter(external_id=external_id).first()


def product_list(brand: str | None = None, category: str | None = None):
    """Products with the columns the API shows, optionally of one brand (any case) or whose
    category path names ``category`` (a substring, any case)."""
    qs = Product.objects.only("external_id", "title", "description", "brand", "category_path", "attributes",
                              "content_hash", "created_at", "updated_at")
    if brand:
        qs = qs.filter(brand__iexact=brand)
    if category:
        qs = qs.filter(category_path__icontains=category)
    return qs


def product_ids(external_ids: Iterable[str]) -> tuple[list[int], list[str]]:
    """The database ids of the products with these external ids, and the external ids no product has."""
    external_ids = list(external_ids)
    found = dict(Product.objects.filter(external_id__in=external_ids).values_list("external_id", "id"))
    return list(found.values()), [i for i in external_ids if i not in found]


def delete_product(product: Product) -> None:
    """Delete a product (its facts and interactions cascade); its graph node goes through the
    outbox, written in the same transaction (the caller has it delivered after the commit)."""
    from kms.curation.models import OutboxEntry
    from kms.events.models import ShopUser

    with transaction.atomic():
        buyers = list(ShopUser.objects.filter(interactions__product=product).distinct()
                      .values_list("external_id", flat=True))
        OutboxEntry.add(OutboxEntry.Op.DELETE_PRODUCT, uid=product.graph_uid, external_id=product.external_id)
        product.delete()
    # its rows and the histories that held it (its interactions cascaded) are read again
    serving_cache.changed("catalogue", users=buyers)
