"""Brand classifier: the brand of a product whose text does not (clearly) name it.

About a fifth of catalogue listings never write the brand field's name: "Small Parts" rods
and washers, 3M tapes titled "Scotch ...", Sealed Unit Parts relays titled "SUPCO ...". Two
sources of evidence, both learned from the catalogue's own (text -> brand) pairs:

- *cues*: title tokens and model-number prefixes that co-occur with one brand with high
  precision on the training part ("SUPCO" -> Sealed Unit Parts, "Scotch" -> 3M, the prefix
  "TRA" -> Stanley). A cue gives the fact its evidence span.
- *neighbours*: TF-IDF k-NN over title words, title character n-grams and a little of the
  description, which catches listing styles ("..., Plain Finish, Pan Head, ... Length.").

The component ``brand_classifier`` fills ``doc.user_data["brand"]`` for title docs with
``(key, score, field, start, end)``; ``FactBuilder`` uses it when span evidence is absent or
weaker. Thresholds are chosen on a dev part of the training data (``nlp.training``).
"""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Optional

from spacy.language import Language
from spacy.tokens import Doc

from .category import CategoryClassifier, TitleClassifierComponent
from .measures import find_model_numbers
from .normalize import clean_text

DESCRIPTION_CHARS = 300
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9&'+-]*[A-Za-z0-9]|[A-Za-z]{2,}")
_WORD = re.compile(r"[a-z0-9]+")
_PREFIX = re.compile(r"[A-Za-z]{2,}")
CUE_MIN_SUPPORT = 2
CUE_MIN_PRECISION = 0.85
MAX_CUE_TOKENS = 12  # cues are looked for in the first tokens of the title


def brand_features(title: str, description: str = "") -> Counter:
    feats: Counter = Counter()
    title = clean_text(title)
    words = _WORD.findall(title.lower())
    for w in words:
        feats["w:" + w] += 1.0
        padded = f"<{w}>"
        for i in range(len(padded) - 2):
            feats["c:" + padded[i:i + 3]] += 0.3
    for a, b in zip(words, words[1:]):
        feats["b:" + a + "_" + b] += 0.5
    if words:
        feats["f:" + words[0]] += 2.0
    for _, _, model in find_model_numbers(title):
        prefix = _PREFIX.match(model)
        if prefix:
            feats["m:" + prefix.group(0).upper()] += 1.0
    for w in _WORD.findall(clean_text(description[:DESCRIPTION_CHARS]).lower()):
        feats["d:" + w] += 0.3
    return feats


def cue_candidates(title: str) -> Iterable[tuple[str, int, int]]:
    """(cue, start, end) spans in the raw title: leading tokens and model-number prefixes."""
    for n, m in enumerate(_TOKEN.finditer(title)):
        if n >= MAX_CUE_TOKENS:
            break
        if len(m.group(0)) >= 3 or m.group(0).isupper():
            yield "t:" + m.group(0), m.start(), m.end()
    for start, end, model in find_model_numbers(title):
        prefix = _PREFIX.match(model)
        if prefix and len(prefix.group(0)) >= 2:
            yield "m:" + prefix.group(0).upper(), start, start + len(prefix.group(0))


class BrandClassifier:
    def __init__(self, k: int = 5) -> None:
        self.knn = CategoryClassifier(k=k, featurizer=brand_features, centroid_weight=0.0)
        self.cues: dict[str, tuple[str, float, int]] = {}  # cue -> (brand key, precision, support)
        self.thresholds = {"absent": 0.6, "override": 0.7, "weak": 0.9, "weak_span": 0.5}
        self.aliases: dict[str, list] = {}  # see learn_aliases

    def fit(self, examples: Iterable[tuple[str, str, Optional[str]]]) -> "BrandClassifier":
        """``examples``: (title, description, brand key or None)."""
        examples = [(t, d, b) for t, d, b in examples if isinstance(t, str) and t]
        self.knn.fit([(t, d, b) for t, d, b in examples if b])
        seen: Counter = Counter()
        joint: dict[str, Counter] = defaultdict(Counter)
        for title, _, brand in examples:
            cues = {c for c, _, _ in cue_candidates(title)}
            for cue in cues:
                seen[cue] += 1
                if brand:
                    joint[cue][brand] += 1
        self.cues = {}
        for cue, counts in joint.items():
            brand, n = counts.most_common(1)[0]
            precision = n / seen[cue]
            if n >= CUE_MIN_SUPPORT and precision >= CUE_MIN_PRECISION:
                self.cues[cue] = (brand, round(precision, 4), n)
        return self

    def cue_evidence(self, title: str, brand: str) -> Optional[tuple[float, int, int]]:
        """The strongest cue for ``brand`` in ``title``: (precision, start, end)."""
        best = None
        for cue, start, end in cue_candidates(title):
            hit = self.cues.get(cue)
            if hit and hit[0] == brand:
                rank = (hit[1], hit[2])
                if best is None or rank > best[0]:
                    best = (rank, start, end)
        return (best[0][0], best[1], best[2]) if best else None

    def predict(self, items: list[tuple[str, str]]) -> list[Optional[tuple[str, float, int, int]]]:
        """(brand key, score, start, end in title) per (title, description), or None.

        The score is the k-NN vote (share x similarity); a high-precision cue for the same
        brand lifts it to at least the cue's precision, and a cue alone (k-NN silent or
        disagreeing) counts with its precision scaled by its support.
        """
        out = []
        for (title, _), cats in zip(items, self.knn.predict(items, top=3)):
            scored: dict[str, float] = dict(cats)
            spans: dict[str, tuple[int, int]] = {}
            for cue, start, end in cue_candidates(title):
                hit = self.cues.get(cue)
                if not hit:
                    continue
                brand, precision, support = hit
                strength = precision * min(1.0, 0.5 + support / 10)
                if brand in scored:
                    strength = max(strength, min(0.99, scored[brand] + 0.5 * precision))
                if strength > scored.get(brand, 0.0) or brand not in spans:
                    if strength >= scored.get(brand, 0.0):
                        spans[brand] = (start, end)
                    scored[brand] = max(scored.get(brand, 0.0), strength)
            if not scored:
                out.append(None)
                continue
            brand, score = max(scored.items(), key=lambda kv: kv[1])
            start, end = spans.get(brand, (0, len(title)))
            out.append((brand, min(score, 0.99), start, end))
        return out

    # -- persistence ---------------------------------------------------------------------------
    def to_disk(self, path: str | Path) -> None:
        path = Path(path)
        self.knn.to_disk(path / "knn")
        (path / "cues.json").write_text(json.dumps({"cues": self.cues, "aliases": self.aliases,
                                                    "thresholds": self.thresholds}))

    @classmethod
    def from_disk(cls, path: str | Path) -> "BrandClassifier":
        path = Path(path)
        clf = cls()
        clf.knn = CategoryClassifier.from_disk(path / "knn", featurizer=brand_features)
        data = json.loads((path / "cues.json").read_text())
        clf.cues = {k: tuple(v) for k, v in data["cues"].items()}
        clf.thresholds = data["thresholds"]
        clf.aliases = data.get("aliases", {})
        return clf


def learn_aliases(span_keys: Iterable[Optional[str]], gold_keys: Iterable[Optional[str]],
                  min_support: int = 3, min_share: float = 0.75) -> dict[str, list]:
    """Span brand key -> [canonical key, share, support] where the catalogue says another brand.

    From (brand the rules/NER found, brand field) pairs on training products: "Scotch" found
    in titles whose brand field is "3M" maps scotch -> 3m; a KB brand that is also a common
    word ("3D", "Universal") gets a low share under its own key and is marked weak (``""``).
    """
    counts: dict[str, Counter] = defaultdict(Counter)
    for span, gold in zip(span_keys, gold_keys):
        if span and gold:
            counts[span][gold] += 1
    table = {}
    for span, golds in counts.items():
        total = sum(golds.values())
        top, n = golds.most_common(1)[0]
        if top != span and n >= min_support and n / total >= min_share:
            table[span] = [top, round(n / total, 4), n]
        elif total >= 3 and golds[span] / total < 0.5:
            table[span] = ["", round(golds[span] / total, 4), total]
    return table


def decide(span: Optional[tuple[str, float]], pred: Optional[tuple[str, float]],
           thresholds: dict[str, float], aliases: dict[str, list]) -> Optional[tuple[str, str]]:
    """Which brand to emit: (key, "span" | "alias" | "classifier"), or None.

    ``span``: (key, confidence) of the best span fact; ``pred``: (key, score) of the classifier.
    """
    source = "span"
    if span is not None:
        key, conf = span
        alias = aliases.get(key)
        if alias and alias[0]:
            span, source = (alias[0], conf), "alias"
        elif alias:
            span = (key, min(conf, thresholds.get("weak_span", 0.5)))
    if span is None:
        if pred is not None and pred[1] >= thresholds["absent"]:
            return pred[0], "classifier"
        return None
    if (pred is not None and pred[0] != span[0] and pred[1] >= thresholds["override"]
            and span[1] < thresholds["weak"]):
        return pred[0], "classifier"
    return span[0], source


def choose_thresholds(spans: list, preds: list, golds: list,
                      aliases: dict[str, list]) -> tuple[dict[str, float], float]:
    """Grid search of the decision thresholds for brand F1 on a dev part; (best, f1)."""
    best: tuple[float, dict] = (-1.0, {})
    n_gold = sum(g is not None for g in golds)
    for absent in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.1):
        for override in (0.3, 0.5, 0.7, 0.9, 1.1):
            for weak in (0.9, 0.96, 1.01):
                for weak_span in (0.5, 0.95):
                    th = {"absent": absent, "override": override, "weak": weak,
                          "weak_span": weak_span}
                    out = [decide(s, p, th, aliases) for s, p in zip(spans, preds)]
                    tp = sum(o is not None and o[0] == g for o, g in zip(out, golds))
                    n_pred = sum(o is not None for o in out)
                    prec = tp / n_pred if n_pred else 0.0
                    rec = tp / n_gold if n_gold else 0.0
                    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
                    if f1 > best[0] + 1e-9:
                        best = (f1, th)
    return best[1], best[0]


class BrandComponent(TitleClassifierComponent):
    """Sets ``doc.user_data["brand"]`` on title docs."""

    classifier_class = BrandClassifier

    def apply(self, doc: Doc, pred) -> None:
        if pred is not None:
            brand, score, start, end = pred
            doc.user_data["brand"] = (brand, score, "title", start, end)


@Language.factory("brand_classifier")
def make_brand_classifier(nlp: Language, name: str) -> BrandComponent:
    return BrandComponent()
