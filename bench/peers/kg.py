"""The item knowledge the KG peers get: (item_idx, relation, entity) triples."""
from __future__ import annotations

import re
from collections import defaultdict


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def builtin_catalogue_triples(item_ids: list[str], items: dict[str, dict], max_item_share: float = 0.5):
    """HAS_BRAND and IN_CATEGORY (every level of the category path, as path-prefix entities),
    dropping entities attached to more than ``max_item_share`` of the items (the root category
    joins everything to everything). Same rules as ``recommender.knowledge``."""
    raw = []
    for idx, iid in enumerate(item_ids):
        rec = items.get(iid, {})
        brand = (rec.get("brand") or "").strip()
        if brand:
            raw.append((idx, "HAS_BRAND", f"brand:{_key(brand)}"))
        parts = [p.strip() for p in (rec.get("categories") or "").split(",") if p.strip()]
        for depth in range(1, len(parts) + 1):
            raw.append((idx, "IN_CATEGORY", "category:" + "/".join(_key(p) for p in parts[:depth])))
    per_entity = defaultdict(set)
    for i, _, e in raw:
        per_entity[e].add(i)
    limit = max_item_share * max(len(item_ids), 1)
    out, seen = [], set()
    for t in raw:
        if len(per_entity[t[2]]) <= limit and t not in seen:
            seen.add(t)
            out.append(t)
    return out


def catalogue_kg_triples(data, items: dict[str, dict]) -> tuple[list[tuple[int, str, str]], str]:
    """The project's own KG if ``recommender.knowledge`` can build it, else the builtin copy."""
    try:
        from recommender.knowledge import catalogue_triples, with_entities

        d2 = with_entities(data, catalogue_triples(items))
        triples = [(int(i), d2.relations[int(r)], d2.entity_ids[int(e)]) for i, r, e in d2.item_entity]
        if triples:
            return triples, "recommender.knowledge.catalogue_triples + with_entities"
    except Exception as exc:  # the module is being developed alongside; fall back
        print(f"[kg] recommender.knowledge unavailable ({type(exc).__name__}: {exc}); using builtin builder")
    return builtin_catalogue_triples(data.item_ids, items), "bench/peers/kg.py builtin (same rules)"
