"""Import external knowledge: triples in RecBole's atomic format (.kg + .link) into the graph.

``.link`` aligns catalogue items with knowledge-graph entities (KGAT convention: a linked
entity *is* the item), so triples whose head or tail is linked attach to the Product node;
every other entity becomes an Entity node of type EXTERNAL. Relation names become typed
relationships (``film.film.genre`` → ``KG_FILM_FILM_GENRE``); the original name is kept.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from kgschema import external_uid, product_uid
from kms.catalogue.models import Product
from kms.catalogue.services import upsert_products

BATCH = 2000


def relation_type(name: str) -> str:
    return ("KG_" + re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper())[:64]


def _rows(path: Path) -> Iterator[list[str]]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader, None)  # RecBole header: name:type columns
        for row in reader:
            if len(row) >= 2:
                yield row


def movielens_products(item_file: Path, prefix: str) -> list[dict]:
    return [{"external_id": f"{prefix}{row[0]}", "title": row[1], "description": f"Released {row[2]}" if len(row) > 2 else "",
             "category_path": ["Movies", row[3].split()[0]] if len(row) > 3 and row[3] else ["Movies"]}
            for row in _rows(item_file)]


def import_triples(kg_file: Path, link_file: Path, product_prefix: str = "", limit: int | None = None,
                   store=None) -> dict:
    from kms.graphstore import get_graph_store

    store = store or get_graph_store()
    link = {entity: product_uid(f"{product_prefix}{item}") for item, entity in _rows(link_file)}
    known = set(Product.objects.filter(external_id__in=[u.split(":", 1)[1] for u in link.values()])
                .values_list("external_id", flat=True))
    link = {e: uid for e, uid in link.items() if uid.split(":", 1)[1] in known}
    store.upsert_nodes([{"uid": uid, "props": {"external_id": uid.split(":", 1)[1]}} for uid in set(link.values())])

    def node(entity: str) -> str:
        return link.get(entity) or external_uid(entity)

    stats = {"triples": 0, "linked_products": len(set(link.values())), "relations": set()}
    nodes: dict[str, dict] = {}
    rels: list[dict] = []

    def flush():
        store.upsert_nodes(list(nodes.values()))
        store.upsert_relationships(rels)
        nodes.clear()
        rels.clear()

    for n, row in enumerate(_rows(kg_file)):
        if limit is not None and n >= limit:
            break
        head, rel, tail = row[0], row[1], row[2] if len(row) > 2 else None
        if tail is None:
            continue
        for e in (head, tail):
            if e not in link:
                nodes[e] = {"uid": node(e), "props": {"name": e, "type": "EXTERNAL"}}
        rtype = relation_type(rel)
        stats["relations"].add(rtype)
        rels.append({"src": node(head), "dst": node(tail), "type": rtype,
                     "props": {"relation": rel, "status": "imported", "extractor": "external-kg"}})
        stats["triples"] += 1
        if len(rels) >= BATCH:
            flush()
    flush()
    stats["relations"] = sorted(stats["relations"])
    return stats


def import_recbole_kg(root: Path, with_items: bool = False, product_prefix: str | None = None,
                      limit: int | None = None) -> dict:
    """``root`` holds NAME.kg and NAME.link (and NAME.item for --with-items)."""
    kg = next(root.glob("*.kg"))
    link = next(root.glob("*.link"))
    prefix = product_prefix if product_prefix is not None else f"{kg.stem}-"
    created = None
    if with_items:
        created = upsert_products(movielens_products(next(root.glob("*.item")), prefix)).as_dict()
    return {"products": created, **import_triples(kg, link, prefix, limit=limit)}
