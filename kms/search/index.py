"""The in-memory catalogue index search runs on: BM25, per-product features and graph expansions.

Built from the database (products) and the graph store (facts, SUBCATEGORY_OF, COMPATIBLE_WITH);
``SearchIndexCache`` rebuilds it in a background thread when the catalogue, its facts or curated
entities change, and keeps serving the previous index meanwhile.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from django.db import close_old_connections, connection
from django.db.models import Count, Max

from kgschema import (COMPATIBLE_WITH, HAS_ATTRIBUTE, HAS_BRAND, HAS_COLOR, HAS_MODEL_NUMBER, IN_CATEGORY,
                      IS_PRODUCT_TYPE, MADE_OF)
from kms.catalogue.models import Product
from kms.knowledge.models import TRUSTED, Entity, Fact, IngestionJob

from .bm25 import BM25
from .spelling import SpellingIndex
from .text import analyze, words

log = logging.getLogger(__name__)

FACT_RELATIONS = (HAS_BRAND, IS_PRODUCT_TYPE, HAS_MODEL_NUMBER, COMPATIBLE_WITH, MADE_OF,
                  HAS_COLOR, HAS_ATTRIBUTE, IN_CATEGORY)
CHECK_SECONDS = 2.0


def category_keys(path: list[str]) -> list[str]:
    """Category keys of a product's path and all its ancestors ("a", "a/b", "a/b/c")."""
    from nlp.normalize import category_key

    key = category_key(list(path or []))
    parts = key.split("/") if key else []
    return ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]


@dataclass
class CatalogueIndex:
    ext_ids: list[str]
    titles: list[str]
    brands: list[str]
    bm25: BM25
    brand_keys: list[str | None]
    leaf_category: list[str | None]
    kb: object
    pipeline: object | None
    entity_docs: dict[str, np.ndarray]      # entity uid -> product rows with a fact to it
    compatible_docs: dict[str, np.ndarray]  # model/product uid -> product rows COMPATIBLE_WITH it
    children: dict[str, list[str]]          # category uid -> sub-category uids (SUBCATEGORY_OF)
    graph_source: str
    version: tuple
    title_bm25: BM25 | None = None          # title + brand only: a match there outweighs one in a description
    title_words: list[frozenset] = field(default_factory=list)
    title_head: list[frozenset] = field(default_factory=list)  # title words before "for"/"compatible with"
    placeholder: np.ndarray | None = None   # titles that name nothing (a category name, a repeated stub)
    spelling: SpellingIndex | None = None
    pk_row: dict[int, int] = field(default_factory=dict)  # catalogue primary key -> row
    built_at: float = field(default_factory=time.time)
    build_seconds: float = 0.0

    def __post_init__(self):
        self.row = {ext: n for n, ext in enumerate(self.ext_ids)}

    @property
    def size(self) -> int:
        return len(self.ext_ids)

    def descendants(self, category_uid: str, limit: int = 500) -> list[str]:
        out, queue, seen = [], [category_uid], {category_uid}
        while queue and len(out) < limit:
            for child in self.children.get(queue.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    out.append(child)
                    queue.append(child)
        return out


ACCESSORY_MARK = re.compile(r"\b(?:for|fits|compatible with|replacement for)\b")
PLACEHOLDER_REPEATS = 5


def title_head(title: str) -> frozenset:
    """Words of the title before it says what the product is for ("Blade for Utility Knife" -> blade)."""
    from nlp.normalize import fold

    folded = fold(title)
    m = ACCESSORY_MARK.search(folded)
    return frozenset(words(folded[:m.start()] if m else folded))


def placeholder_titles(titles: list[str], category_names: set[str]) -> np.ndarray:
    """A title is a placeholder when it has no word of its own beyond a category name, or when the
    same title stands for many products."""
    from nlp.normalize import fold

    folded = [fold(t) for t in titles]
    counts = Counter(folded)
    return np.array([len(f.split()) == 0 or f in category_names or counts[f] >= PLACEHOLDER_REPEATS
                     for f in folded], dtype=bool)


def catalogue_version() -> tuple:
    """Changes when products, their extracted facts (a finished job) or curated entities change."""
    p = Product.objects.aggregate(n=Count("id"), t=Max("updated_at"))
    j = IngestionJob.objects.aggregate(t=Max("finished_at"), n=Count("id"))
    e = Entity.objects.aggregate(t=Max("updated_at"))
    return (p["n"], str(p["t"]), str(j["t"]), j["n"], str(e["t"]))


def _knowledge_base(rows: list[tuple]):
    """The ingestion pipeline's knowledge base; built from submodules while ``nlp`` exports are missing."""
    try:
        from kms.knowledge.services import build_knowledge_base

        return build_knowledge_base()
    except (AttributeError, ImportError):
        from nlp.knowledge import KnowledgeBase
        from nlp.types import ProductText

        kb = KnowledgeBase.from_products(ProductText(uid=r[0], title="", brand=r[4] or "", categories=list(r[5] or []))
                                         for r in rows)
        for entity in Entity.objects.filter(type__in=["BRAND", "PRODUCT_TYPE", "MATERIAL", "COLOR"]).exclude(aliases=[]):
            key = entity.uid.split(":", 1)[1]
            if key not in kb.entities.get(entity.type, {}):
                kb.add_entity(entity.type, entity.name, key=key)
            for alias in [entity.name, *entity.aliases]:
                kb.add_alias(entity.type, key, alias)
        return kb


def _pipeline():
    """The spaCy pipeline ingestion uses (same rules, same NER), or None while it is not available."""
    import nlp

    if not hasattr(nlp, "build_pipeline"):
        return None
    try:
        from kms.knowledge.services import get_pipeline

        return get_pipeline()
    except Exception as exc:
        log.warning("search: NLP pipeline unavailable, rule recogniser only: %s", exc)
        return None


def _graph_edges(row: dict[str, int]) -> tuple[list[tuple[int, str, str]], list[tuple[str, str]], str]:
    """(product row, relation, entity uid) facts and (child, parent) categories, graph store first."""
    try:
        from kms.graphstore import get_graph_store

        store = get_graph_store()
        facts = store.read(
            "MATCH (p:Product)-[e]->(x) WHERE type(e) IN $types AND coalesce(e.status, 'auto') <> 'rejected' "
            "RETURN p.uid AS p, type(e) AS rel, x.uid AS x", types=list(FACT_RELATIONS))
        subcats = store.read("MATCH (c:Category)-[:SUBCATEGORY_OF]->(p:Category) RETURN c.uid AS c, p.uid AS p")
        out = [(row[f["p"][8:]], f["rel"], f["x"]) for f in facts if f["p"] and f["p"][8:] in row]
        return out, [(s["c"], s["p"]) for s in subcats], "graph-store"
    except Exception as exc:  # the database holds the same facts; categories derive from their keys
        log.warning("search: graph store unavailable, expanding from the database: %s", exc)
        out = [(row[ext], rel, uid) for ext, rel, uid in
               Fact.objects.filter(status__in=TRUSTED, relation__in=FACT_RELATIONS)
               .values_list("product__external_id", "relation", "entity__uid") if ext in row]
        return out, [], "database"  # the hierarchy then comes from the category keys alone


def build_index() -> CatalogueIndex:
    started = time.perf_counter()
    version = catalogue_version()
    rows = list(Product.objects.order_by("id").values_list(
        "id", "external_id", "title", "description", "brand", "category_path"))
    kb = _knowledge_base(rows)
    ext_ids = [r[1] for r in rows]
    row = {ext: n for n, ext in enumerate(ext_ids)}
    documents = [analyze(f"{r[2]} {r[4]} {r[4]} {r[3]}") for r in rows]  # brand counted twice: short field
    bm25 = BM25(documents)
    title_bm25 = BM25([analyze(f"{r[2]} {r[4]}") for r in rows])
    from nlp.normalize import fold, split_category_path

    category_names = {fold(part) for r in rows for part in split_category_path(r[5] or [])}
    frequency = Counter(t for d in documents for t in set(d) if ":" not in t)
    brand_keys = [kb.link("BRAND", r[4]) if r[4] else None for r in rows]
    leaf = []
    entity_rows: dict[str, set[int]] = defaultdict(set)
    for n, r in enumerate(rows):
        keys = category_keys(r[5])
        leaf.append(keys[-1] if keys else None)
        for key in keys:  # the catalogue's own path counts even before ingestion ran
            entity_rows["category:" + key].add(n)
        if brand_keys[n]:
            entity_rows["brand:" + brand_keys[n]].add(n)
        for token in documents[n]:
            if token.startswith(("m:", "n:")):
                entity_rows[("measure:" if token[0] == "m" else "model_number:") + token[2:]].add(n)
    facts, subcats, source = _graph_edges(row)
    compatible: dict[str, set[int]] = defaultdict(set)
    for n, rel, uid in facts:
        (compatible if rel == COMPATIBLE_WITH else entity_rows)[uid].add(n)
    children: dict[str, set[str]] = defaultdict(set)
    for child, parent in subcats:  # SUBCATEGORY_OF from the graph (curated/imported ones included)
        children[parent].add(child)
    for uid in list(entity_rows):  # and what the catalogue's own paths say, before ingestion ran
        if uid.startswith("category:") and "/" in uid:
            children[uid.rsplit("/", 1)[0]].add(uid)
    index = CatalogueIndex(
        ext_ids=ext_ids, titles=[r[2] for r in rows], brands=[r[4] for r in rows], bm25=bm25,
        brand_keys=brand_keys, leaf_category=leaf, kb=kb, pipeline=_pipeline(),
        entity_docs={k: np.fromiter(sorted(v), dtype=np.int64) for k, v in entity_rows.items()},
        compatible_docs={k: np.fromiter(sorted(v), dtype=np.int64) for k, v in compatible.items()},
        children={k: sorted(v) for k, v in children.items()}, graph_source=source, version=version,
        title_bm25=title_bm25, title_words=[frozenset(words(r[2])) for r in rows], title_head=[title_head(r[2]) for r in rows],
        placeholder=placeholder_titles([r[2] for r in rows], category_names), spelling=SpellingIndex(frequency),
        pk_row={r[0]: n for n, r in enumerate(rows)})
    index.build_seconds = time.perf_counter() - started
    log.info("search index: %d products, %d terms, %.2fs", index.size, len(bm25.vocabulary), index.build_seconds)
    return index


class SearchIndexCache:
    """Process-wide index; a changed catalogue version triggers one background rebuild."""

    def __init__(self):
        self.lock = threading.Lock()
        self.index: CatalogueIndex | None = None
        self.checked = 0.0
        self.rebuilding: threading.Thread | None = None

    def get(self, block: bool = False) -> CatalogueIndex:
        now = time.monotonic()
        if self.index is not None and not block and now - self.checked < CHECK_SECONDS:
            return self.index
        with self.lock:
            if self.index is None or block:
                self.index = build_index()
                self.checked = time.monotonic()
                return self.index
            if now - self.checked >= CHECK_SECONDS:
                self.checked = now
                if catalogue_version() != self.index.version and not (self.rebuilding and self.rebuilding.is_alive()):
                    self.rebuilding = threading.Thread(target=self._rebuild, name="search-index", daemon=True)
                    self.rebuilding.start()
            return self.index

    def _rebuild(self):
        try:
            index = build_index()
            with self.lock:
                self.index = index
        except Exception:
            log.exception("search index rebuild failed; serving the previous one")
        finally:
            close_old_connections()
            connection.close()

    def clear(self):
        with self.lock:
            self.index, self.checked = None, 0.0
