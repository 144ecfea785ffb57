"""What a query is about: entities recognised by the NLP pipeline (and the same regex/gazetteer
rules it is compiled from, as a complement), each linked to a graph uid and expanded through the
graph: brand aliases, sub-categories of a product type (SUBCATEGORY_OF), products compatible with
a model number (COMPATIBLE_WITH)."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from kgschema import category_uid, entity_uid, product_uid
from .text import STOPWORDS, compact, find_measures, find_model_numbers, fold, measure_key

LINKED_KINDS = ("BRAND", "PRODUCT_TYPE", "MATERIAL", "COLOR")
MAX_NGRAM = 4
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9&'._-]*")


@dataclass
class QueryEntity:
    label: str
    text: str
    start: int
    end: int
    key: str
    source: str
    value: float | None = None
    unit: str | None = None
    expansion: dict = field(default_factory=dict)

    @property
    def uid(self) -> str:
        return entity_uid(self.label, self.key)

    def as_dict(self) -> dict:
        return asdict(self) | {"uid": self.uid}


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(span[0] < e and s < span[1] for s, e in taken)


def _from_pipeline(query: str, pipeline, kb) -> list[QueryEntity]:
    out = []
    for ent in pipeline(query).ents:
        label = ent.label_
        key = ent.kb_id_ or ent.ent_id_ or ""
        value = unit = None
        if label == "MEASURE" and find_measures is not None:
            m = next(iter(find_measures(ent.text)), None)
            if m is None:
                continue
            key, value, unit = measure_key(m.value, m.unit, m.dimension), m.value, m.unit
        elif label == "MODEL_NUMBER":
            key = compact(ent.text)
        elif label in LINKED_KINDS:
            key = key or kb.link(label, ent.text) or ""
        if key:
            out.append(QueryEntity(label, ent.text, ent.start_char, ent.end_char, key, "nlp-pipeline", value, unit))
    return out


def _from_rules(query: str, kb, taken: list[tuple[int, int]]) -> list[QueryEntity]:
    out = []
    if find_measures is not None:
        for m in find_measures(query):
            if not _overlaps((m.start, m.end), taken):
                out.append(QueryEntity("MEASURE", m.text, m.start, m.end,
                                       measure_key(m.value, m.unit, m.dimension), "rules", m.value, m.unit))
                taken.append((m.start, m.end))
        for start, end, token in find_model_numbers(query, strict=True):
            if not _overlaps((start, end), taken):
                out.append(QueryEntity("MODEL_NUMBER", token, start, end, compact(token), "rules"))
                taken.append((start, end))
    tokens = [(m.start(), m.end()) for m in _WORD.finditer(query)]
    i = 0
    while i < len(tokens):
        matched = False
        for n in range(min(MAX_NGRAM, len(tokens) - i), 0, -1):
            start, end = tokens[i][0], tokens[i + n - 1][1]
            surface = query[start:end].strip(".-'")
            if _overlaps((start, end), taken) or len(surface) < 2 or fold(surface) in STOPWORDS:
                continue
            for kind in LINKED_KINDS:
                key = kb.link(kind, surface)
                if key:
                    out.append(QueryEntity(kind, surface, start, start + len(surface), key, "rules"))
                    taken.append((start, end))
                    matched = True
                    break
            if matched:
                i += n
                break
        if not matched:
            i += 1
    return out


def recognise(query: str, index) -> tuple[list[QueryEntity], list[str]]:
    """Entities in ``query`` and the recognisers that ran."""
    entities, used = [], []
    if index.pipeline is not None:
        try:
            entities = _from_pipeline(query, index.pipeline, index.kb)
            used.append("nlp-pipeline")
        except Exception:  # a pipeline bug must not turn a search into a 500
            entities = []
    taken = [(e.start, e.end) for e in entities]
    entities += _from_rules(query, index.kb, taken)
    used.append("rules")
    entities.sort(key=lambda e: e.start)
    return entities, used


def expand(entity: QueryEntity, index) -> dict:
    """Graph expansion of one entity; returns the product rows it points to, by strength."""
    kb = index.kb
    uid = entity.uid
    direct = [uid]
    related: list[str] = []
    info: dict = {}
    if entity.label == "BRAND":
        entry = kb.entities["BRAND"].get(entity.key, {})
        info["aliases"] = sorted(set(entry.get("aliases", [])) - {entity.text})[:20]
    elif entity.label == "PRODUCT_TYPE":
        counts = kb.type_categories.get(entity.key, {})
        categories = [category_uid(c) for c in sorted(counts, key=lambda c: -counts[c])]
        subcategories = [d for c in categories for d in index.descendants(c)]
        info["categories"] = categories[:20]
        info["subcategories"] = subcategories[:50]
        direct += categories + subcategories
    elif entity.label == "MODEL_NUMBER":
        related.append(uid)  # products COMPATIBLE_WITH this model
        own = index.entity_docs.get(uid)
        for row in (own if own is not None else [])[:5]:  # and with the product that has it
            related.append(product_uid(index.ext_ids[row]))
    import numpy as np

    rows = [index.entity_docs[u] for u in direct if u in index.entity_docs]
    rows = np.unique(np.concatenate(rows)) if rows else np.zeros(0, dtype=np.int64)
    compatible = [index.compatible_docs[u] for u in related if u in index.compatible_docs]
    compatible = np.unique(np.concatenate(compatible)) if compatible else np.zeros(0, dtype=np.int64)
    info["matched_products"] = int(rows.size)
    if entity.label == "MODEL_NUMBER":
        info["compatible_products"] = int(compatible.size)
    entity.expansion = info
    return {"rows": rows, "compatible": compatible,
            "alias_terms": info.get("aliases", [])}
