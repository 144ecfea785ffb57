"""Item–entity knowledge: building the triples and the typed adjacency the graph models use.

Entity uids follow the nlp contract, ``f"{object_type.lower()}:{object_key}"``; relations are
the contract's names (HAS_BRAND, IN_CATEGORY, ...). ``kms`` fills ``InteractionData`` from the
curated graph; ``catalogue_triples`` derives the same shape from raw catalogue records so the
benchmarks and tests need no graph store.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from kgschema import (BRAND, CATEGORY, HAS_BRAND, IN_CATEGORY, IN_PARENT_CATEGORY, brand_uid, category_ancestors,  # noqa: F401
                      category_leaf_name, category_uid)
from recommender.data import InteractionData

Triple = tuple[str, str, str, str]  # (item id, relation, entity uid, entity display name)


PARENT_CATEGORY = IN_PARENT_CATEGORY  # item -> each ancestor of its category (derived, not stored)


def with_ancestors(triples: Iterable[Triple]) -> list[Triple]:
    """The triples plus, for every IN_CATEGORY, a PARENT_CATEGORY triple to each ancestor."""
    out = []
    for item, rel, ent, name in triples:
        out.append((item, rel, ent, name))
        if rel == IN_CATEGORY:
            out += [(item, PARENT_CATEGORY, a, category_leaf_name(a)) for a in category_ancestors(ent)]
    return out


def catalogue_triples(items: dict[str, dict]) -> list[Triple]:
    """HAS_BRAND and IN_CATEGORY (the leaf of the category path) from catalogue records, keyed
    exactly as the product's extractor keys them (``nlp.normalize.entity_key``), so a benchmark
    fed from the catalogue and the product fed from its graph name the same entities."""
    from nlp.normalize import entity_key, split_category_path

    out: list[Triple] = []
    for item_id, rec in items.items():
        brand = (rec.get("brand") or "").strip()
        if brand and entity_key("BRAND", brand):
            out.append((item_id, HAS_BRAND, brand_uid(entity_key(BRAND, brand)), brand))
        parts = split_category_path(rec.get("categories") or "")
        if parts:
            out.append((item_id, IN_CATEGORY, category_uid(entity_key(CATEGORY, parts)), parts[-1]))
    return out


def with_entities(data: InteractionData, triples: Iterable[Triple], max_item_share: float = 0.5) -> InteractionData:
    """A copy of ``data`` carrying the triples as index arrays.

    Category ancestors become extra triples (``with_ancestors``). Entities attached to more
    than ``max_item_share`` of the items (e.g. the catalogue's root category) connect
    everything to everything and carry no signal, so they are dropped. Triples about unknown
    items are ignored.
    """
    item_index = {iid: n for n, iid in enumerate(data.item_ids)}
    rows = [(item_index[i], rel, ent, name) for i, rel, ent, name in with_ancestors(triples) if i in item_index]
    items_per_entity: dict[str, set[int]] = {}
    for i, _, ent, _ in rows:
        items_per_entity.setdefault(ent, set()).add(i)
    limit = max_item_share * max(data.n_items, 1)
    keep = {e for e, s in items_per_entity.items() if len(s) <= limit}
    entity_ids: list[str] = []
    entity_names: list[str] = []
    entity_index: dict[str, int] = {}
    relations: list[str] = []
    relation_index: dict[str, int] = {}
    seen: set[tuple[int, int, int]] = set()
    out = []
    for i, rel, ent, name in rows:
        if ent not in keep:
            continue
        if ent not in entity_index:
            entity_index[ent] = len(entity_ids)
            entity_ids.append(ent)
            entity_names.append(name)
        if rel not in relation_index:
            relation_index[rel] = len(relations)
            relations.append(rel)
        t = (i, relation_index[rel], entity_index[ent])
        if t not in seen:
            seen.add(t)
            out.append(t)
    arr = np.asarray(out, dtype=np.int64).reshape(-1, 3)
    return replace(data, entity_ids=entity_ids, relations=relations, item_entity=arr, entity_names=entity_names)


def relation_matrices(item_entity: np.ndarray, n_items: int, n_entities: int, n_relations: int) -> list[sp.csr_matrix]:
    """One binary item × entity matrix per relation."""
    mats = []
    for r in range(n_relations):
        t = item_entity[item_entity[:, 1] == r]
        m = sp.csr_matrix((np.ones(len(t), dtype=np.float32), (t[:, 0], t[:, 2])), shape=(n_items, n_entities))
        m.sum_duplicates()
        m.data[:] = 1.0
        mats.append(m)
    return mats


def item_entity_matrix(item_entity: np.ndarray, n_items: int, n_entities: int) -> sp.csr_matrix:
    """Binary item × entity matrix over all relations."""
    m = sp.csr_matrix(
        (np.ones(len(item_entity), dtype=np.float32), (item_entity[:, 0], item_entity[:, 2])),
        shape=(n_items, n_entities),
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m
