"""Rule-based relation extraction over the pipeline's entities and cue phrases.

The blank pipeline has no parser, so relations come from entity labels plus regex cue
clauses on the raw field text ("fits ...", "compatible with ...", "ideal for ...").
Every fact carries its character span in the field it came from.
"""
from __future__ import annotations

import re
from typing import Iterable, Optional

from spacy.tokens import Doc, Span

from kgschema import (COMPATIBLE_WITH, HAS_ATTRIBUTE, HAS_BRAND, HAS_COLOR, HAS_MODEL_NUMBER, IN_CATEGORY,
                      IS_PRODUCT_TYPE, MADE_OF, USED_FOR)
from .brand import decide as decide_brand
from .knowledge import KnowledgeBase
from .measures import find_model_numbers
from .normalize import category_key, clean_text, entity_key, split_category_path, slug
from .types import Fact

_CLAUSE = r"(?P<clause>(?:[^.;!?\n(]|\.(?=\d)|\([^)\n]{0,40}\))+)"
COMPAT_RE = re.compile(
    r"\b(?:compatible with|replacement for|replaces|for use with|(?-i:works with)|fits|fit)\b\s*:?\s*"
    + _CLAUSE, re.IGNORECASE)
USE_RE = re.compile(
    r"\b(?:ideal for|perfect for|great for|suitable for|designed for use (?:on|in|with)|"
    r"designed for|intended for|recommended for|used for|for use (?:on|in))\b\s*:?\s*"
    + _CLAUSE, re.IGNORECASE)
_ITEM_SPLIT = re.compile(r",\s*|\s+and\s+|\s+or\s+|\s+&\s+|\s+-\s+")
_LEADING = re.compile(r"^(?:(?:the|a|an|all|most|any|many|various|other|use|on|in|with|"
                      r"jobs|applications|such as)\b\s*)+", re.IGNORECASE)
_TRAILING = re.compile(r"\s*\b(?:series|models?|etc)\b\.?\s*$", re.IGNORECASE)
_MATERIAL_CUE = re.compile(r"(?:made (?:of|from)|constructed (?:of|from)|material:?|"
                           r"construction|body:?)\s*(?:high[- ]quality\s+)?$", re.IGNORECASE)
_COLOR_CUE = re.compile(r"colou?r:?\s*$", re.IGNORECASE)
MAX_ITEM_WORDS = 6


class FactBuilder:
    def __init__(self, kb: KnowledgeBase, version: str, brand_thresholds: Optional[dict] = None,
                 brand_aliases: Optional[dict] = None, brand_classifier=None) -> None:
        self.kb = kb
        self.version = version
        # Set when the pipeline has a trained brand classifier (see nlp.brand.decide).
        self.brand_thresholds = brand_thresholds
        self.brand_aliases = brand_aliases or {}
        # with a trained ranker (nlp.brand.BrandRanker) every candidate is scored instead
        self.brand_classifier = brand_classifier
        self.ranker = getattr(brand_classifier, "ranker", None)

    def fact(self, relation: str, object_type: str, key: str, name: str, field: str,
             start: int, end: int, text: str, extractor: str, confidence: float,
             value: Optional[float] = None, unit: Optional[str] = None) -> Fact:
        return Fact(relation=relation, object_type=object_type, object_key=key,
                    object_name=name, value=value, unit=unit, field=field, start=start,
                    end=end, text=text[start:end], extractor=extractor,
                    extractor_version=self.version, confidence=round(confidence, 3))

    # -- structured fields ------------------------------------------------------------
    def structured(self, brand: str, categories: list[str]) -> list[Fact]:
        facts = []
        if brand and clean_text(brand):
            key = self.kb.link("BRAND", brand) or entity_key("BRAND", brand)
            if key:
                facts.append(self.fact(HAS_BRAND, "BRAND", key, self.kb.name("BRAND", key)
                                       if key in self.kb.brands else clean_text(brand),
                                       "brand", 0, len(brand), brand, "structured", 1.0))
        parts = split_category_path(categories)
        if parts:
            joined = ",".join(categories)
            facts.append(self.fact(IN_CATEGORY, "CATEGORY", category_key(parts), parts[-1],
                                   "categories", 0, len(joined), joined, "structured", 1.0))
            leaf_start = joined.rfind(categories[-1]) if categories[-1] else 0
            type_key = entity_key("PRODUCT_TYPE", parts[-1])
            facts.append(self.fact(IS_PRODUCT_TYPE, "PRODUCT_TYPE", type_key, parts[-1],
                                   "categories", leaf_start, leaf_start + len(categories[-1]),
                                   joined, "structured", 1.0))
        return facts

    # -- text fields ------------------------------------------------------------------
    def from_docs(self, docs: dict[str, Doc]) -> list[Fact]:
        facts: list[Fact] = []
        brand_candidates: list[tuple[float, int, int, Fact]] = []
        type_candidates: list[Fact] = []
        for field_rank, (field, doc) in enumerate(docs.items()):
            text = _text(doc)
            compat, uses = _clauses(doc)
            facts += self._clause_facts(doc, field, compat, COMPATIBLE_WITH)
            facts += self._clause_facts(doc, field, uses, USED_FOR)
            blocked = compat + uses
            in_title = field == "title"
            for f in self._brand_spans(doc, field, blocked):
                brand_candidates.append((f.confidence, field_rank, f.start, f))
            for ent in doc.ents:
                if any(s <= ent.start_char < e for s, e in blocked):
                    continue
                label = ent.label_
                src = "kb_ruler" if ent.kb_id_ else ("regex" if label in ("MEASURE", "MODEL_NUMBER") else "ner")
                if label == "BRAND":
                    continue
                elif label == "MEASURE" and ent._.value is not None:
                    facts.append(self.fact(HAS_ATTRIBUTE, "MEASURE", ent._.norm_key, ent.text,
                                           field, ent.start_char, ent.end_char, text, "measure_regex",
                                           0.9, value=ent._.value, unit=ent._.unit))
                elif label == "MODEL_NUMBER" and in_title:
                    facts.append(self.fact(HAS_MODEL_NUMBER, "MODEL_NUMBER",
                                           entity_key("MODEL_NUMBER", ent.text), ent.text, field,
                                           ent.start_char, ent.end_char, text, "model_regex", 0.8))
                elif label == "MATERIAL":
                    before = text[max(0, ent.start_char - 30):ent.start_char]
                    if in_title or _MATERIAL_CUE.search(before):
                        facts.append(self.fact(MADE_OF, "MATERIAL", ent.kb_id_ or slug(ent.text),
                                               self.kb.name("MATERIAL", ent.kb_id_), field,
                                               ent.start_char, ent.end_char, text, "kb_ruler",
                                               0.8 if in_title else 0.75))
                elif label == "COLOR":
                    before = text[max(0, ent.start_char - 12):ent.start_char]
                    coded = text[ent.end_char:ent.end_char + 6].lower().startswith(("-coded", " coded"))
                    if (in_title or _COLOR_CUE.search(before)) and not coded:
                        facts.append(self.fact(HAS_COLOR, "COLOR", ent.kb_id_ or slug(ent.text),
                                               self.kb.name("COLOR", ent.kb_id_), field,
                                               ent.start_char, ent.end_char, text, "kb_ruler",
                                               0.8 if in_title else 0.7))
                elif label == "PRODUCT_TYPE" and in_title:
                    key = ent.kb_id_ or self.kb.link("PRODUCT_TYPE", ent.text) or entity_key(
                        "PRODUCT_TYPE", ent.text)
                    type_candidates.append(self.fact(
                        IS_PRODUCT_TYPE, "PRODUCT_TYPE", key, self.kb.name("PRODUCT_TYPE", key)
                        if key in self.kb.entities["PRODUCT_TYPE"] else ent.text, field,
                        ent.start_char, ent.end_char, text, src, 0.6 if src == "kb_ruler" else 0.5))
        # One HAS_BRAND from text: other brands in a listing are usually "fits X" targets.
        brand_candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        if self.ranker is not None:
            brand = self._ranked_brand([c[3] for c in brand_candidates], docs)
        else:
            brand = self._choose_brand(brand_candidates[0][3] if brand_candidates else None, docs)
        if brand:
            facts.append(brand)
        head = self._head_type(docs.get("title"), type_candidates)
        if head:
            facts.append(head)
        title = docs.get("title")
        if title is not None and title.cats:
            path, score = max(title.cats.items(), key=lambda kv: kv[1])
            parts = self.kb.categories.get(path, {}).get("path") or path.split("/")
            facts.append(self.fact(IN_CATEGORY, "CATEGORY", path, parts[-1], "title", 0,
                                   len(_text(title)), _text(title), "category_knn", min(score, 0.99)))
        return _dedupe(facts)

    def _brand_spans(self, doc: Doc, field: str, blocked: list[tuple[int, int]]) -> list[Fact]:
        out = []
        for ent in doc.ents:
            if ent.label_ != "BRAND" or any(s <= ent.start_char < e for s, e in blocked):
                continue
            f = self._brand_fact(ent, field, "kb_ruler" if ent.kb_id_ else "ner", field == "title")
            if f:
                out.append(f)
        return out

    def brand_span_facts(self, docs: dict[str, Doc]) -> list[Fact]:
        """HAS_BRAND facts of every BRAND entity outside "fits ..."/"for ..." clauses."""
        out = []
        for field, doc in docs.items():
            compat, uses = _clauses(doc)
            out += self._brand_spans(doc, field, compat + uses)
        return out

    def brand_candidates(self, span_facts: list[Fact], docs: dict[str, Doc]) -> list[dict]:
        """The ranker's candidates (nlp.brand.BrandRanker.candidates) for one product."""
        title, desc = docs.get("title"), docs.get("description")
        return self.ranker.candidates(
            self.kb, _text(title) if title is not None else "",
            _text(desc) if desc is not None else "", span_facts,
            title.user_data.get("brand_scores", {}) if title is not None else {},
            self.brand_aliases, self.brand_classifier.brand_counts)

    def _ranked_brand(self, span_facts: list[Fact], docs: dict[str, Doc]) -> Optional[Fact]:
        """The ranker's best candidate as a fact, or None when it abstains."""
        best = self.ranker.best(self.brand_candidates(span_facts, docs))
        if best is None:
            return None
        cand, prob = best
        key = cand["key"]
        field = cand["field"] if cand["field"] in docs else "title"
        if field not in docs:
            return None
        text = _text(docs[field])
        start, end = (cand["start"], cand["end"]) if cand["end"] <= len(text) else (0, len(text))
        span = next((f for f in span_facts if f.object_key == key and f.field == field
                     and f.start == start), None)
        extractor = span.extractor if span is not None else "brand-ranker"
        name = self.kb.name("BRAND", key) if key in self.kb.brands else text[start:end] or key
        return self.fact(HAS_BRAND, "BRAND", key, name, field, start, end, text, extractor,
                         min(0.99, max(0.01, prob)))

    def _choose_brand(self, span_fact: Optional[Fact], docs: dict[str, Doc]) -> Optional[Fact]:
        """The span brand, or the brand classifier's when span evidence is absent or weaker."""
        title = docs.get("title")
        pred = title.user_data.get("brand") if title is not None else None
        if self.brand_thresholds is None or (span_fact is None and pred is None):
            return span_fact
        span = (span_fact.object_key, span_fact.confidence) if span_fact else None
        choice = decide_brand(span, pred[:2] if pred else None, self.brand_thresholds,
                              self.brand_aliases)
        if choice is None:
            return None
        key, source = choice
        known = key in self.kb.brands
        name = self.kb.name("BRAND", key) if known else key
        if source == "span":
            return span_fact
        if source == "alias":  # the span names a sub-brand/alias of the catalogue's brand
            share = self.brand_aliases[span_fact.object_key][1]
            return self.fact(HAS_BRAND, "BRAND", key, name, span_fact.field, span_fact.start,
                             span_fact.end, _text(docs[span_fact.field]), "brand-classifier",
                             span_fact.confidence * share)
        _, score, field, start, end = pred
        return self.fact(HAS_BRAND, "BRAND", key, name, field, start, end, _text(title),
                         "brand-classifier", max(0.01, score))

    def _brand_fact(self, ent: Span, field: str, src: str, in_title: bool) -> Optional[Fact]:
        key = ent.kb_id_ or self.kb.link("BRAND", ent.text) or entity_key("BRAND", ent.text)
        if not key or len(ent.text) < 2:
            return None
        known = key in self.kb.brands
        at_start = in_title and ent.start_char <= 1
        if src == "kb_ruler":
            conf = 0.95 if at_start else 0.85 if in_title else 0.7
        else:
            conf = (0.9 if at_start else 0.6 if in_title else 0.5) + (0.05 if known else 0.0)
        name = self.kb.name("BRAND", key) if known else ent.text
        return self.fact(HAS_BRAND, "BRAND", key, name, field, ent.start_char, ent.end_char,
                         _text(ent.doc), src, conf)

    @staticmethod
    def _head_type(title: Optional[Doc], candidates: list[Fact]) -> Optional[Fact]:
        """The product type a title is about: the last one before "with"/"for"/"(" etc."""
        if not candidates or title is None:
            return None
        m = re.search(r"\s(?:with|for|w/|includes?|fits?)\s|\(|,\s", _text(title), re.IGNORECASE)
        cut = m.start() if m else len(_text(title))
        before = [f for f in candidates if f.end <= cut]
        return before[-1] if before else candidates[0]

    def _clause_facts(self, doc: Doc, field: str, clauses: list[tuple[int, int]],
                      relation: str) -> list[Fact]:
        facts = []
        text = _text(doc)
        for c_start, c_end in clauses:
            for i_start, i_end in _items(text, c_start, c_end):
                item = text[i_start:i_end]
                if relation == COMPATIBLE_WITH:
                    facts += self._compat_item(doc, field, item, i_start, i_end)
                else:
                    facts.append(self.fact(USED_FOR, "USE", slug(item), item, field, i_start,
                                           i_end, text, "use_cue", 0.6))
        return facts

    def _compat_item(self, doc: Doc, field: str, item: str, start: int, end: int) -> list[Fact]:
        text = _text(doc)
        models = list(find_model_numbers(item, strict=False))
        if models:
            return [self.fact(COMPATIBLE_WITH, "MODEL_NUMBER", entity_key("MODEL_NUMBER", m),
                              item if len(models) == 1 else m, field, start + s, start + e, text,
                              "compat_cue", 0.8) for s, e, m in models]
        brand = self.kb.link("BRAND", item)
        if brand:
            return [self.fact(COMPATIBLE_WITH, "BRAND", brand, self.kb.name("BRAND", brand),
                              field, start, end, text, "compat_cue", 0.7)]
        for ent in doc.ents:
            if ent.label_ == "BRAND" and start <= ent.start_char and ent.end_char <= end:
                key = ent.kb_id_ or entity_key("BRAND", ent.text)
                return [self.fact(COMPATIBLE_WITH, "BRAND", key, ent.text, field,
                                  ent.start_char, ent.end_char, text, "compat_cue", 0.6)]
        if not re.search(r"[A-Za-z]", item) or len(item) < 3:
            return []
        key = entity_key("PRODUCT_TYPE", item)
        return [self.fact(COMPATIBLE_WITH, "PRODUCT_TYPE", key, item, field, start, end, text,
                          "compat_cue", 0.5)]


def _text(doc: Doc) -> str:
    """``doc.text`` joins every token each time it is read; long descriptions made that the
    hottest line of ingestion, so read it once per doc."""
    text = doc.user_data.get("_text")
    if text is None:
        text = doc.user_data["_text"] = doc.text
    return text


def _clauses(doc: Doc) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(compatibility clauses, use clauses) of a doc as character spans."""
    text = _text(doc)
    return ([m.span("clause") for m in COMPAT_RE.finditer(text)],
            [m.span("clause") for m in USE_RE.finditer(text)])


def _items(text: str, start: int, end: int) -> Iterable[tuple[int, int]]:
    clause = text[start:end]
    such = re.search(r"\bsuch as\b\s*", clause, re.IGNORECASE)
    offset = such.end() if such else 0
    pos = offset
    for piece in [*_ITEM_SPLIT.split(clause[offset:]), None]:
        if piece is None:
            break
        p_start = clause.index(piece, pos) if piece else pos
        pos = p_start + len(piece)
        lead = _LEADING.match(piece)
        s = p_start + (lead.end() if lead else 0)
        trimmed = _TRAILING.sub("", clause[s:pos]).rstrip(" :,-")
        e = s + len(trimmed)
        if e > s and len(trimmed.split()) <= MAX_ITEM_WORDS and re.search(r"\w", trimmed):
            yield start + s, start + e


def _dedupe(facts: list[Fact]) -> list[Fact]:
    best: dict[tuple, Fact] = {}
    for f in facts:
        k = (f.relation, f.object_type, f.object_key)
        if k not in best or f.confidence > best[k].confidence:
            best[k] = f
    return list(best.values())
