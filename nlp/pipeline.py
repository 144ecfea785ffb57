"""spaCy pipeline: blank("en") + KB entity ruler + measure/model-number recogniser
(+ trained NER and category classifier when an artefact directory is given)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.matcher import PhraseMatcher
from spacy.util import filter_spans

from . import brand as _brand  # noqa: F401  (registers the component factories)
from . import category as _category  # noqa: F401
from .acceptance import Acceptor
from .blank import make_blank  # noqa: F401  (part of this module's interface)
from . import attributes as _attributes
from .knowledge import KnowledgeBase
from .measures import find_measures, find_model_numbers, measure_key

EXTRACTOR_VERSION = "0.1.0"

for _name in ("value", "unit", "dimension", "norm_key"):
    if not Span.has_extension(_name):
        Span.set_extension(_name, default=None)


class KBEntityRuler:
    """Phrase matching of KB surfaces (brands + aliases, product types, materials, colours).

    Two PhraseMatchers rather than spaCy's EntityRuler: single-word brands must match
    case-sensitively (lowercase matching turns brands like "Inland" or "Gorilla" into
    everyday words), everything else case-insensitively, and token patterns for thousands of
    brands make the Matcher ~20x slower than phrase matching.
    """

    LABELS = ("BRAND", "PRODUCT_TYPE", "MATERIAL", "COLOR")
    # On equal spans: a KB brand beats a colour/material word ("Black" in "Black & Decker").
    PRIORITY = {"BRAND": 0, "MATERIAL": 1, "COLOR": 2, "PRODUCT_TYPE": 3}

    def __init__(self, nlp: Language) -> None:
        self.nlp = nlp
        self.exact = PhraseMatcher(nlp.vocab, attr="ORTH")
        self.folded = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.keys: dict[str, tuple[str, str]] = {}

    def add_kb(self, kb: KnowledgeBase) -> None:
        nlp = self.nlp
        exact: dict[str, list] = {}
        folded: dict[str, list] = {}
        for label in self.LABELS:
            for key, surface in kb.surfaces(label):
                if len(surface) < 2 or (label == "BRAND" and len(surface) < 3 and not surface.isupper()):
                    continue
                match_id = f"{label}|{key}"
                self.keys[match_id] = (label, key)
                if label == "BRAND" and " " not in surface:
                    for variant in {surface, surface.upper(), surface.title()}:
                        exact.setdefault(match_id, []).append(nlp.make_doc(variant))
                else:
                    folded.setdefault(match_id, []).append(nlp.make_doc(surface.lower()))
        for match_id, docs in exact.items():
            self.exact.add(match_id, docs)
        for match_id, docs in folded.items():
            self.folded.add(match_id, docs)

    def __call__(self, doc: Doc) -> Doc:
        spans = []
        for matcher in (self.exact, self.folded):
            for match_id, start, end in matcher(doc):
                label, key = self.keys[doc.vocab.strings[match_id]]
                spans.append(Span(doc, start, end, label=label, kb_id=key))
        spans.sort(key=lambda s: (-(s.end - s.start), self.PRIORITY[s.label_], s.start))
        taken: set[int] = set()
        keep = []
        for span in spans:
            if not taken.intersection(range(span.start, span.end)):
                keep.append(span)
                taken.update(range(span.start, span.end))
        doc.ents = sorted(keep, key=lambda s: s.start)
        return doc


@Language.factory("kb_entity_ruler")
def make_kb_entity_ruler(nlp: Language, name: str) -> KBEntityRuler:
    return KBEntityRuler(nlp)


@Language.factory("measure_model_recognizer")
def make_measure_model_recognizer(nlp: Language, name: str):
    return MeasureModelRecognizer()


class MeasureModelRecognizer:
    """Adds MEASURE (value+unit normalised on the span) and MODEL_NUMBER entities."""

    def __call__(self, doc: Doc) -> Doc:
        new = []
        for m in find_measures(doc.text):
            span = doc.char_span(m.start, m.end, label="MEASURE", alignment_mode="expand")
            if span is not None:
                span._.value, span._.unit, span._.dimension = m.value, m.unit, m.dimension
                span._.norm_key = measure_key(m.value, m.unit, m.dimension)
                new.append(span)
        for start, end, text in find_model_numbers(doc.text):
            span = doc.char_span(start, end, label="MODEL_NUMBER", alignment_mode="expand")
            if span is not None:
                new.append(span)
        # Existing (KB) entities win over regex ones on overlap; longest regex span first.
        taken = set()
        for ent in doc.ents:
            taken.update(range(ent.start, ent.end))
        keep = [s for s in filter_spans(new) if not taken.intersection(range(s.start, s.end))]
        ents = sorted([*doc.ents, *keep], key=lambda s: s.start)
        doc.ents = ents  # span extension values are keyed by offsets, so they survive
        return doc


def build_pipeline(kb: KnowledgeBase, ner_model_dir: Optional[str | Path] = None,
                   attributes: Optional["_attributes.AttributeSchema"] = None,
                   attribute_model_dir: Optional[str | Path] = None) -> Language:
    """Compile ``kb`` into a spaCy pipeline; add the trained NER/category models if given.

    ``ner_model_dir`` is an artefact written by ``nlp.training.train_ner``. With an attribute
    schema, an ``attribute_extractor`` (nlp.attributes) extracts the attributes of each
    product's category; ``attribute_model_dir`` is an artefact of ``attributes.save_model``.
    """
    nlp = make_blank()
    nlp.add_pipe("kb_entity_ruler").add_kb(kb)
    nlp.add_pipe("measure_model_recognizer")
    meta: dict = {"extractor_version": EXTRACTOR_VERSION, "ner_version": None}
    if ner_model_dir is not None:
        artefact = Path(ner_model_dir)
        meta_file = artefact / "meta.json"
        if meta_file.exists():
            meta["ner_version"] = json.loads(meta_file.read_text()).get("version")
        if (artefact / "ner").exists():
            trained = spacy.load(artefact / "ner")
            nlp.add_pipe("ner", source=trained, name="ner")
        if (artefact / "category").exists():
            nlp.add_pipe("category_classifier").from_disk(artefact / "category")
        if (artefact / "brand").exists():
            nlp.add_pipe("brand_classifier").from_disk(artefact / "brand")
    if attributes is not None:
        _attributes.add_to_pipeline(nlp, attributes, attribute_model_dir)
    nlp.meta["kms"] = meta
    nlp.user_data_kb = kb  # relation extraction needs KB linking
    # Which facts are trusted (auto) and which wait for a curator (candidate): the artefact's own
    # acceptor when it has one (train_nlp), else the one fitted by bench/kg_precision.py.
    own = Path(ner_model_dir) / "acceptor.json" if ner_model_dir is not None else None
    nlp.user_data_acceptor = Acceptor.load(own) if own is not None and own.exists() else Acceptor.load()
    return nlp


def pipeline_kb(nlp: Language) -> KnowledgeBase:
    return getattr(nlp, "user_data_kb")


def pipeline_acceptor(nlp: Language):
    return getattr(nlp, "user_data_acceptor", None)


def brand_policy(nlp: Language) -> tuple[Optional[dict], dict, Optional[object]]:
    """(thresholds, aliases, classifier) of the pipeline's brand classifier; (None, {}, None)
    without one."""
    if "brand_classifier" not in nlp.pipe_names:
        return None, {}, None
    clf = nlp.get_pipe("brand_classifier").classifier
    return clf.thresholds, clf.aliases, clf
