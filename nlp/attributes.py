"""Category attribute schemas and the pipeline component that extracts their values.

An ``AttributeSchema`` maps a category to its attribute names; each attribute may carry a
value vocabulary and value patterns learned from labelled titles (OA-Mine-style records
``{"input": title, "category": c, "target_scores": {attribute: {value: 1}}}``). The
``attribute_extractor`` component, added by ``build_pipeline(..., attributes=...)``, reads the
product's category (``doc.user_data["category"]``, else the category classifier's best guess),
and puts one value per attribute of that category's schema in ``doc.user_data["attributes"]``
(character span, attribute name, source). Candidates come from

- a trained NER (one label per attribute name; the category is prefixed to the title so the
  model can tell a Coffee "Roast type" from a Tea "Flavor"), restricted at prediction time to
  the category's schema, and/or
- the schema's value dictionary (longest phrase match) and learned number patterns
  ("<N> Ounce", "Pack of <N>").

``mode`` ("ner", "dict", "ner+dict": NER first, dictionary fills the attributes it missed,
"dict+ner") is chosen on a dev split by ``bench/oa_mine.py``. ``attribute_facts`` turns the
spans into ``HAS_ATTRIBUTE`` facts.
"""
from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Optional

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import compile_infix_regex, filter_spans, minibatch

from kgschema import HAS_ATTRIBUTE

from .blank import make_blank
from .normalize import slug
from .types import Fact

NUMBER = r"\d+(?:[.,]\d+)?"
MODES = ("ner", "dict", "ner+dict", "dict+ner")
SPAN_KEY = "attributes"


def _norm_category(category) -> str:
    if isinstance(category, (list, tuple)):
        category = category[-1] if category else ""
    return " ".join(str(category or "").split()).lower()


def value_shape(value: str) -> Optional[str]:
    """"12 Ounce" -> "<N> Ounce"; None for values without a number."""
    shape = re.sub(NUMBER, "<N>", value.strip())
    return shape if "<N>" in shape else None


class AttributeSchema:
    """category -> attribute name -> {"values": {value: count}, "patterns": [shape, ...]}."""

    def __init__(self, categories: Optional[dict] = None) -> None:
        self.categories: dict[str, dict[str, dict]] = {}
        self.names: dict[str, str] = {}  # normalised category -> display name
        for category, attrs in (categories or {}).items():
            for name, spec in attrs.items():
                self.add(category, name, (spec or {}).get("values", ()), (spec or {}).get("patterns", ()))

    def add(self, category: str, attribute: str, values: Iterable = (), patterns: Iterable = ()) -> None:
        key = _norm_category(category)
        self.names.setdefault(key, " ".join(category.split()))
        spec = self.categories.setdefault(key, {}).setdefault(attribute, {"values": {}, "patterns": []})
        counts = values.items() if isinstance(values, dict) else ((v, 1) for v in values)
        for value, n in counts:
            value = value.strip()
            if value:
                spec["values"][value] = spec["values"].get(value, 0) + int(n)
        for shape in patterns:
            if shape and shape not in spec["patterns"]:
                spec["patterns"].append(shape)

    @classmethod
    def from_records(cls, records: Iterable[dict], min_pattern_count: int = 2) -> "AttributeSchema":
        """Attributes, value vocabulary and number patterns of every category in ``records``."""
        schema = cls()
        shapes: dict[tuple[str, str], Counter] = defaultdict(Counter)
        for rec in records:
            for attribute, values in rec.get("target_scores", {}).items():
                real = [v for v in values if v.strip() and v.strip().lower() != "n/a"]
                schema.add(rec["category"], attribute, real)
                for v in real:
                    if value_shape(v):
                        shapes[(rec["category"], attribute)][value_shape(v)] += 1
        for (category, attribute), counts in shapes.items():
            schema.add(category, attribute, patterns=[s for s, n in counts.most_common()
                                                      if n >= min_pattern_count])
        return schema

    def attributes(self, category) -> dict[str, dict]:
        return self.categories.get(_norm_category(category), {})

    def labels(self) -> list[str]:
        return sorted({a for attrs in self.categories.values() for a in attrs})

    def to_dict(self) -> dict:
        return {self.names[k]: attrs for k, attrs in sorted(self.categories.items())}

    @classmethod
    def from_dict(cls, data: dict) -> "AttributeSchema":
        return cls(data)


def ner_text(category, title: str) -> tuple[str, int]:
    """The text the attribute NER reads: "<category> | <title>", and the title's offset."""
    prefix = f"{_norm_category(category) or 'unknown'} | "
    return prefix + title, len(prefix)


def gold_spans(title: str, targets: dict) -> list[tuple[int, int, str]]:
    """Character spans of each target value in ``title`` (first occurrence, exact case first)."""
    spans = []
    for attribute, values in targets.items():
        for value in values:
            value = value.strip()
            if not value or value.lower() == "n/a":
                continue
            at = title.find(value)
            if at < 0:
                at = title.lower().find(value.lower())
            if at >= 0:
                spans.append((at, at + len(value), attribute))
                break
    return spans


def train_attribute_ner(records: list[dict], n_iter: int = 12, seed: int = 0, log=None) -> Language:
    """A spaCy NER with one label per attribute name, trained on labelled titles."""
    random.seed(seed)
    spacy.util.fix_random_seed(seed)
    nlp = make_blank()
    # Its own tokenizer: values are glued with punctuation ("Flat,Nautical Navy,4 M US").
    nlp.tokenizer.infix_finditer = compile_infix_regex(
        [*nlp.Defaults.infixes, r"[,;/()\[\]|+]"]).finditer
    ner = nlp.add_pipe("ner")
    examples = []
    for rec in records:
        text, offset = ner_text(rec["category"], rec["input"])
        doc = nlp.make_doc(text)
        spans = []
        for start, end, label in gold_spans(rec["input"], rec.get("target_scores", {})):
            span = doc.char_span(start + offset, end + offset, label=label, alignment_mode="expand")
            if span is not None:
                spans.append(span)
        for span in spans:
            ner.add_label(span.label_)
        ents = filter_spans(spans)
        examples.append(Example.from_dict(doc, {"entities": [(s.start_char, s.end_char, s.label_)
                                                             for s in ents]}))
    optimizer = nlp.initialize(lambda: examples, sgd=None)
    for epoch in range(n_iter):
        random.shuffle(examples)
        losses: dict = {}
        for batch in minibatch(examples, size=16):
            nlp.update(batch, sgd=optimizer, losses=losses, drop=0.2)
        if log:
            log(f"attribute NER epoch {epoch + 1}/{n_iter} loss {losses.get('ner', 0):.1f}")
    return nlp


Candidate = tuple[int, int, str, str]  # (start_char, end_char, attribute, source)


def _best_non_overlapping(cands: list[Candidate]) -> list[Candidate]:
    keep: list[Candidate] = []
    for c in sorted(cands, key=lambda c: (-(c[1] - c[0]), c[0])):
        if all(c[1] <= k[0] or c[0] >= k[1] for k in keep):
            keep.append(c)
    return sorted(keep)


class AttributeExtractor:
    """Pipeline component: schema-restricted attribute values in ``doc.user_data["attributes"]``.

    Values are character spans ``(start, end, attribute, source)`` of the doc's text, not
    token spans: titles glue values with punctuation ("Flat,Nautical Navy,4 M US") that the
    product tokenizer keeps in one token.
    """

    def __init__(self, nlp: Language, schema: Optional[AttributeSchema] = None,
                 ner: Optional[Language] = None, mode: str = "ner+dict") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.ner = ner
        self.mode = mode if ner is not None else "dict"
        self.set_schema(schema or AttributeSchema())

    def set_schema(self, schema: AttributeSchema) -> None:
        """(Re)compile the value dictionary and patterns of ``schema``."""
        self.schema = schema
        self.dictionaries: dict[str, tuple[re.Pattern, dict[str, str]]] = {}
        self.patterns: dict[str, list[tuple[str, re.Pattern]]] = {}
        for category, attrs in schema.categories.items():
            best: dict[str, tuple[int, str]] = {}
            for attribute, spec in attrs.items():
                for value, n in spec.get("values", {}).items():
                    low = value.lower()
                    if n > best.get(low, (-1, ""))[0]:
                        best[low] = (n, attribute)
                for shape in spec.get("patterns", []):
                    rx = re.escape(shape).replace(re.escape("<N>"), NUMBER)
                    self.patterns.setdefault(category, []).append(
                        (attribute, re.compile(r"(?<![\w.])" + rx + r"(?!\w)", re.IGNORECASE)))
            if best:
                # Longest value first, so the alternation prefers it at a position. A value
                # listed under two attributes goes to the one it was seen with most.
                alternation = "|".join(re.escape(v) for v in sorted(best, key=len, reverse=True))
                rx = re.compile(r"(?<!\w)(?:" + alternation + r")(?!\w)", re.IGNORECASE)
                self.dictionaries[category] = (rx, {low: a for low, (_, a) in best.items()})

    def category_of(self, doc: Doc) -> str:
        category = doc.user_data.get("category")
        if not category and doc.cats:
            category = max(doc.cats.items(), key=lambda kv: kv[1])[0].split("/")[-1]
        return _norm_category(category)

    def dictionary_spans(self, text: str, category: str) -> list[Candidate]:
        cands: list[Candidate] = []
        if category in self.dictionaries:
            rx, owner = self.dictionaries[category]
            cands += [(m.start(), m.end(), owner[m.group().lower()], "dict") for m in rx.finditer(text)]
        for attribute, rx in self.patterns.get(category, []):
            cands += [(m.start(), m.end(), attribute, "pattern") for m in rx.finditer(text)]
        return _best_non_overlapping(cands)

    def ner_spans(self, text: str, category: str) -> list[Candidate]:
        prefixed, offset = ner_text(category, text)
        return [(e.start_char - offset, e.end_char - offset, e.label_, "ner")
                for e in self.ner(prefixed).ents if e.start_char >= offset]

    def predict(self, text: str, category: str) -> list[Candidate]:
        """At most one value per attribute of the category's schema, no two overlapping."""
        allowed = self.schema.attributes(category)
        if not allowed:
            return []
        sources = {"ner": self.ner_spans, "dict": self.dictionary_spans}
        chosen: dict[str, Candidate] = {}
        for source in self.mode.split("+"):
            for c in sorted(sources[source](text, category)):
                if c[2] in allowed and c[2] not in chosen and c[1] > c[0] and \
                        all(c[1] <= k[0] or c[0] >= k[1] for k in chosen.values()):
                    chosen[c[2]] = c
        return sorted(chosen.values())

    def __call__(self, doc: Doc) -> Doc:
        doc.user_data[SPAN_KEY] = self.predict(doc.text, self.category_of(doc))
        return doc


@Language.factory("attribute_extractor", default_config={"mode": "ner+dict"})
def make_attribute_extractor(nlp: Language, name: str, mode: str) -> AttributeExtractor:
    return AttributeExtractor(nlp, mode=mode)


def add_to_pipeline(nlp: Language, schema: AttributeSchema, model_dir: Optional[str | Path] = None,
                    mode: Optional[str] = None) -> AttributeExtractor:
    """Add the attribute extractor; ``model_dir`` is an artefact written by ``save_model``."""
    ner = None
    if model_dir is not None and (Path(model_dir) / "ner").exists():
        ner = spacy.load(Path(model_dir) / "ner")
        meta_file = Path(model_dir) / "meta.json"
        if mode is None and meta_file.exists():
            mode = json.loads(meta_file.read_text()).get("mode")
    component = nlp.add_pipe("attribute_extractor", config={"mode": mode or "ner+dict"})
    component.ner = ner
    component.mode = (mode or "ner+dict") if ner is not None else "dict"
    component.set_schema(schema)
    return component


def save_model(ner: Language, mode: str, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ner.to_disk(out / "ner")
    (out / "meta.json").write_text(json.dumps({"mode": mode, "labels": list(ner.get_pipe("ner").labels)}))
    return out


def attribute_facts(doc: Doc, field: str, version: str) -> list[Fact]:
    """One ``HAS_ATTRIBUTE`` fact per extracted value (as written; attribute named in the fact)."""
    facts = []
    for start, end, attribute, source in doc.user_data.get(SPAN_KEY, []):
        value = doc.text[start:end]
        facts.append(Fact(relation=HAS_ATTRIBUTE, object_type="ATTRIBUTE_VALUE",
                          object_key=f"{slug(attribute)}:{slug(value)}", object_name=value,
                          attribute=attribute, field=field, start=start, end=end, text=value,
                          extractor=f"attribute_{source}", extractor_version=version,
                          confidence=0.8 if source == "ner" else 0.7))
    return facts
