"""Weakly supervised NER training on the catalogue's own data.

Labels come from the structured fields: every place the product's own brand (any folded
variant: "Stanley Hand Tools" -> "Stanley") occurs in its title/description is a BRAND span,
every occurrence of its category leaf (or its singular) a PRODUCT_TYPE span. The model then
generalises to brands and types the rules do not know. The category classifier is trained
alongside and saved in the same versioned artefact.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Optional

import spacy
from spacy.training import Example
from spacy.util import filter_spans, minibatch

from kgschema import HAS_BRAND
from .brand import BrandClassifier, BrandRanker, choose_thresholds, fit_ranker, learn_aliases
from .category import CategoryClassifier
from .knowledge import KnowledgeBase
from .lexicons import NON_BRANDS
from .normalize import (brand_words, category_key, clean_text, entity_key, fold, singular,
                        split_category_path)
from .pipeline import EXTRACTOR_VERSION, build_pipeline, make_blank
from .types import ProductText

DESCRIPTION_CHARS = 300  # the brand, when in the description, is nearly always up front
LABELS = ("BRAND", "PRODUCT_TYPE")
# (weight, specificity) of the category classifier's leaf-name bonus tried on the dev split
NAME_BONUS_GRID = [(0.0, 0.0), (0.1, 0.2), (0.2, 0.0), (0.2, 0.2), (0.3, 0.2)]
TREE_WEIGHT_GRID = (0.0, 0.5, 1.0)  # the category classifier's tree smoothing


def split_of(uid: str, dev_fraction: float, salt: str = "") -> str:
    bucket = int(hashlib.sha1(f"{salt}{uid}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "dev" if bucket < dev_fraction else "train"


def _phrase_regex(words: list[str]) -> Optional[re.Pattern]:
    if not words:
        return None
    parts = [r"(?:and|&)" if w == "and" else re.escape(w) for w in words]
    return re.compile(r"(?<![A-Za-z0-9])" + r"[\W_]*".join(parts) + r"(?![A-Za-z0-9])",
                      re.IGNORECASE)


def weak_spans(product: ProductText, text: str,
               labels: tuple[str, ...] = LABELS) -> list[tuple[int, int, str]]:
    """Character spans of the product's own brand and category leaf in ``text``."""
    spans = []
    brand = clean_text(product.brand or "")
    if brand and fold(brand) not in NON_BRANDS:
        for words in {tuple(fold(brand).split()), tuple(brand_words(brand))}:
            rx = _phrase_regex(list(words))
            if rx:
                spans += [(m.start(), m.end(), "BRAND") for m in rx.finditer(text)]
    parts = split_category_path(product.categories or [])
    if parts and "PRODUCT_TYPE" in labels:
        for leaf in {parts[-1], singular(parts[-1])}:
            rx = _phrase_regex(fold(leaf).split())
            if rx:
                spans += [(m.start(), m.end(), "PRODUCT_TYPE") for m in rx.finditer(text)]
    return spans


def weak_examples(nlp, products: Iterable[ProductText],
                  labels: tuple[str, ...] = LABELS) -> list[Example]:
    examples = []
    for p in products:
        if not isinstance(p.title, str) or not p.title:
            continue
        for text in (p.title, (p.description or "")[:DESCRIPTION_CHARS]):
            if not text.strip():
                continue
            doc = nlp.make_doc(text)
            spans = [doc.char_span(s, e, label=l, alignment_mode="contract")
                     for s, e, l in weak_spans(p, text, labels)]
            # Longest span wins; BRAND sorts first on ties so "Brand Leaf" brands stay brands.
            spans = filter_spans(sorted((s for s in spans if s is not None),
                                        key=lambda s: s.label_ != "BRAND"))
            examples.append(Example.from_dict(doc, {"entities": [
                (s.start_char, s.end_char, s.label_) for s in spans]}))
    return examples


def brand_key(kb: KnowledgeBase, brand: str) -> Optional[str]:
    """The key a product's brand field links to (None for empty/"Generic")."""
    if not brand or not clean_text(brand) or fold(brand) in NON_BRANDS:
        return None
    return kb.link("BRAND", brand) or entity_key("BRAND", brand) or None


def _span_brands(pipe, products: list[ProductText]) -> list[Optional[tuple[str, float]]]:
    """Best span HAS_BRAND (key, confidence) per product, brand/categories hidden."""
    from .extract import extract

    hidden = [replace(p, brand="", categories=[]) for p in products]
    out = []
    for res in extract(pipe, hidden, use_structured=False):
        fact = next((f for f in res.facts if f.relation == HAS_BRAND), None)
        out.append((fact.object_key, fact.confidence) if fact else None)
    return out


def train_brand(products: list[ProductText], train: list[ProductText], dev: list[ProductText],
                ner_dir: Optional[Path], log=print) -> tuple[BrandClassifier, dict]:
    """Fit the brand classifier; learn aliases, choose its thresholds and fit the candidate
    ranker on ``dev``.

    The span side (KB rules from ``train`` + the trained NER) is run on ``dev`` with the
    brand hidden, so the thresholds and the ranker trade classifier against span evidence the
    way the pipeline will (the NER never saw ``dev``). The ranker's abstain threshold comes
    from out-of-fold scores on ``dev``. The returned classifier is refitted on all
    ``products`` and carries the ranker.
    """
    kb = KnowledgeBase.from_products(train)
    started = time.time()
    clf = BrandClassifier().fit([(p.title, p.description or "", brand_key(kb, p.brand))
                                 for p in train])
    rules = build_pipeline(kb)
    aliases = learn_aliases([s[0] if s else None for s in _span_brands(rules, train)],
                            [brand_key(kb, p.brand) for p in train])
    thresholds, dev_f1 = dict(clf.thresholds), None
    if dev:
        pipe = build_pipeline(kb)
        if ner_dir is not None and ner_dir.exists():
            pipe.add_pipe("ner", source=spacy.load(ner_dir), name="ner")
        preds = clf.predict([(p.title, p.description or "") for p in dev])
        thresholds, dev_f1 = choose_thresholds(
            _span_brands(pipe, dev), [(x[0], x[1]) if x else None for x in preds],
            [brand_key(kb, p.brand) for p in dev], aliases)
    lower_df = BrandRanker.word_counts(t for p in train for t in (p.title, p.description))
    ranker, ranker_f1 = None, None
    if dev:
        clf.aliases = aliases
        groups = _ranker_groups(pipe, clf, dev, kb, lower_df)
        ranker, ranker_f1 = fit_ranker(groups, lower_df)
    kb_all = KnowledgeBase.from_products(products)
    final = BrandClassifier().fit([(p.title, p.description or "", brand_key(kb_all, p.brand))
                                   for p in products])
    final.aliases, final.thresholds = aliases, thresholds
    if ranker is not None:
        ranker.lower_df = BrandRanker.word_counts(t for p in products for t in (p.title, p.description))
        final.ranker = ranker
    log(f"brand classifier: {len(final.cues)} cues, {len(aliases)} aliases, thresholds "
        f"{thresholds}, dev F1 {dev_f1}; ranker out-of-fold dev F1 {ranker_f1} threshold "
        f"{ranker.threshold if ranker else None} ({time.time() - started:.0f}s)")
    return final, {"brand_dev_f1": ranker_f1 if ranker is not None else dev_f1,
                   "brand_thresholds": thresholds,
                   "brand_rules_dev_f1": dev_f1,
                   "brand_ranker_threshold": ranker.threshold if ranker else None}


def _ranker_groups(pipe, clf: BrandClassifier, products: list[ProductText], kb: KnowledgeBase,
                   lower_df: dict[str, int]) -> list[tuple[list[dict], Optional[str]]]:
    """(candidates, gold key) per product, from the pipeline run with brand/categories hidden
    exactly as ``extract`` runs it (the classifier supplies its top guesses)."""
    from .brand import BrandComponent
    from .extract import prepare_docs
    from .relations import FactBuilder

    component = BrandComponent(clf)
    builder = FactBuilder(kb, EXTRACTOR_VERSION, clf.thresholds, clf.aliases, clf)
    builder.ranker = BrandRanker(lower_df=lower_df)
    hidden = [replace(p, brand="", categories=[]) for p in products]
    groups = []
    for product, docs in zip(products, prepare_docs(pipe, hidden)):
        if "title" in docs:
            component(docs["title"])
        spans = builder.brand_span_facts(docs)
        groups.append((builder.brand_candidates(spans, docs), brand_key(kb, product.brand)))
    return groups


def train_ner(products: list[ProductText], out_dir: str | Path, n_iter: int = 10,
              seed: int = 0, dev_fraction: float = 0.2, with_category: bool = True,
              labels: tuple[str, ...] = LABELS, log=print, with_brand: bool = True) -> dict:
    """Train the weakly supervised NER (+ category and brand classifiers), save an artefact.

    Returns the dev scores: ``{"precision", "recall", "f1", "per_type", "category_accuracy",
    "brand_dev_f1", "brand_thresholds", "version", "path"}``. Dev scores are against weak labels, i.e. agreement with the
    structured fields on held-out products.
    """
    spacy.util.fix_random_seed(seed)
    products = [p for p in products if isinstance(p.title, str) and p.title]
    train = [p for p in products if split_of(str(p.uid), dev_fraction) == "train"]
    dev = [p for p in products if split_of(str(p.uid), dev_fraction) == "dev"]
    nlp = make_blank()
    ner = nlp.add_pipe("ner")
    for label in labels:
        ner.add_label(label)
    train_examples = weak_examples(nlp, train, labels)
    dev_examples = weak_examples(nlp, dev, labels)
    optimizer = nlp.initialize(lambda: train_examples)
    rng = random.Random(seed)
    started = time.time()
    for epoch in range(n_iter):
        rng.shuffle(train_examples)
        losses: dict = {}
        for batch in minibatch(train_examples, size=32):
            nlp.update(batch, sgd=optimizer, drop=0.2, losses=losses)
        log(f"epoch {epoch + 1}/{n_iter} loss {losses.get('ner', 0.0):.1f} "
            f"({time.time() - started:.0f}s)")
    scores = nlp.evaluate(dev_examples) if dev_examples else {}
    result = {
        "precision": float(scores.get("ents_p") or 0.0),
        "recall": float(scores.get("ents_r") or 0.0),
        "f1": float(scores.get("ents_f") or 0.0),
        "per_type": scores.get("ents_per_type") or {},
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(out / "ner")
    if with_category:
        labelled = [(p.title, p.description or "", category_key(p.categories))
                    for p in products if split_category_path(p.categories or [])]
        dev_uids = {str(p.uid) for p in dev}
        fit = [x for x, p in zip(labelled, [p for p in products
                                            if split_category_path(p.categories or [])])
               if str(p.uid) not in dev_uids]
        held = [x for x, p in zip(labelled, [p for p in products
                                             if split_category_path(p.categories or [])])
                if str(p.uid) in dev_uids]
        clf = CategoryClassifier().fit(fit)
        best = (-1.0, 0.0, 0.0, 0.0)
        for weight, specificity in NAME_BONUS_GRID:
            for tree in TREE_WEIGHT_GRID:
                clf.name_weight, clf.name_specificity, clf.tree_weight = weight, specificity, tree
                preds = clf.predict([(t, d) for t, d, _ in held])
                correct = sum(bool(c) and max(c, key=c.get).split("/")[-1] == gold.split("/")[-1]
                              for c, (_, _, gold) in zip(preds, held))
                accuracy = correct / len(held) if held else 0.0
                if accuracy > best[0] + 1e-9:
                    best = (accuracy, weight, specificity, tree)
        result["category_accuracy"] = best[0]
        result["category_name_bonus"] = [best[1], best[2]]
        result["category_tree_weight"] = best[3]
        log(f"category classifier: dev leaf accuracy {best[0]:.4f} with leaf-name bonus "
            f"{best[1]} (specificity {best[2]}), tree weight {best[3]}")
        CategoryClassifier(name_weight=best[1], name_specificity=best[2], tree_weight=best[3]).fit(
            labelled).to_disk(out / "category")
    if with_brand:
        brand, brand_scores = train_brand(products, train, dev, out / "ner", log=log)
        brand.to_disk(out / "brand")
        result.update(brand_scores)
    digest = hashlib.sha1(json.dumps([sorted(str(p.uid) for p in products), n_iter, seed,
                                      EXTRACTOR_VERSION]).encode()).hexdigest()[:10]
    result["version"] = f"ner-{EXTRACTOR_VERSION}-{digest}"
    result["path"] = str(out)
    meta = {"version": result["version"], "extractor_version": EXTRACTOR_VERSION,
            "labels": list(labels), "n_products": len(products), "n_train": len(train),
            "n_dev": len(dev), "n_iter": n_iter, "seed": seed,
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "dev_scores": result}
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return result
