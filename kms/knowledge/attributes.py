"""Attribute schemas per category: the database copy the portal edits and the pipeline loads."""
from __future__ import annotations

import json
from pathlib import Path

from django.db import transaction
from django.db.models import Count, Max

from nlp.attributes import AttributeSchema

from .models import AttributeDefinition


class SchemaError(ValueError):
    pass


def schema_version() -> tuple:
    agg = AttributeDefinition.objects.aggregate(n=Count("id"), t=Max("updated_at"))
    return (agg["n"], str(agg["t"]))


def attribute_schema() -> AttributeSchema | None:
    """The curated schema as the pipeline's ``AttributeSchema``; None when no attribute is defined."""
    schema = AttributeSchema()
    for d in AttributeDefinition.objects.all().iterator():
        schema.add(d.category, d.name, d.values, d.patterns)
    return schema if schema.categories else None


def _clean_list(items) -> list[str]:
    seen, out = set(), []
    for item in items or []:
        item = " ".join(str(item).split())
        if item and item not in seen:
            seen.add(item)
            out.append(item)
    return out


def save_attribute(category: str, name: str, values=(), patterns=(), pk: int | None = None) -> AttributeDefinition:
    category, name = " ".join((category or "").split()), " ".join((name or "").split())
    if not category or not name:
        raise SchemaError("category and attribute name are required")
    clash = AttributeDefinition.objects.filter(category__iexact=category, name=name).exclude(pk=pk)
    if clash.exists():
        raise SchemaError(f"{category} already has an attribute {name!r}")
    d = AttributeDefinition.objects.get(pk=pk) if pk else AttributeDefinition()
    d.category, d.name = category, name
    d.values, d.patterns = _clean_list(values), _clean_list(patterns)
    d.save()
    return d


def delete_attribute(pk: int) -> None:
    AttributeDefinition.objects.filter(pk=pk).delete()


@transaction.atomic
def import_attribute_schema(path: str | Path, replace: bool = False) -> dict:
    """Derive the schema from an OA-Mine-style JSONL (``category``, ``target_scores``) and store it.

    Existing attributes keep their values and gain the file's; ``replace`` drops the categories
    in the file first.
    """
    records = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"line {n}: not JSON ({exc})") from exc
        if not isinstance(rec, dict) or not isinstance(rec.get("category"), str) \
                or not isinstance(rec.get("target_scores"), dict):
            raise SchemaError(f"line {n}: needs a 'category' string and a 'target_scores' object")
        records.append(rec)
    derived = AttributeSchema.from_records(records)
    if replace:
        for category in derived.to_dict():
            AttributeDefinition.objects.filter(category__iexact=category).delete()
    created = updated = 0
    for category, attrs in derived.to_dict().items():
        for name, spec in attrs.items():
            d = AttributeDefinition.objects.filter(category__iexact=category, name=name).first()
            values = sorted(spec["values"], key=lambda v: -spec["values"][v])
            if d is None:
                AttributeDefinition.objects.create(category=category, name=name, values=values,
                                                   patterns=spec["patterns"])
                created += 1
            else:
                d.values = _clean_list([*d.values, *values])
                d.patterns = _clean_list([*d.patterns, *spec["patterns"]])
                d.save()
                updated += 1
    return {"records": len(records), "categories": len(derived.categories), "created": created,
            "updated": updated}
