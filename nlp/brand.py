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
``(key, score, field, start, end)`` and ``doc.user_data["brand_scores"]`` with its top guesses.
With a trained ``BrandRanker`` in the artefact, ``FactBuilder`` scores every candidate (title
prefixes, entity spans, these guesses) and emits the best one or none; without one it falls
back to ``decide`` (span evidence unless the classifier is confident). Weights and thresholds
are fitted on a dev part of the training data (``nlp.training.train_brand``).
"""
from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
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
        self.ranker: Optional[BrandRanker] = None  # candidate ranking (nlp.training.train_brand)
        self.brand_counts: dict[str, int] = {}  # training products per brand key

    def fit(self, examples: Iterable[tuple[str, str, Optional[str]]]) -> "BrandClassifier":
        """``examples``: (title, description, brand key or None)."""
        examples = [(t, d, b) for t, d, b in examples if isinstance(t, str) and t]
        self.knn.fit([(t, d, b) for t, d, b in examples if b])
        self.brand_counts = dict(Counter(b for _, _, b in examples if b))
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
        """(brand key, score, start, end in title) per (title, description), or None."""
        out = []
        for (title, _), scored in zip(items, self.predict_scores(items)):
            if not scored:
                out.append(None)
                continue
            brand, (score, start, end) = max(scored.items(), key=lambda kv: kv[1][0])
            out.append((brand, score, start, end))
        return out

    def predict_scores(self, items: list[tuple[str, str]]) -> list[dict[str, tuple[float, int, int]]]:
        """Brand key -> (score, start, end in title) of the top guesses per (title, description).

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
            out.append({b: (min(v, 0.99), *spans.get(b, (0, len(title))))
                        for b, v in scored.items()})
        return out

    # -- persistence ---------------------------------------------------------------------------
    def to_disk(self, path: str | Path) -> None:
        path = Path(path)
        self.knn.to_disk(path / "knn")
        (path / "cues.json").write_text(json.dumps({"cues": self.cues, "aliases": self.aliases,
                                                    "thresholds": self.thresholds,
                                                    "brand_counts": self.brand_counts}))
        if self.ranker is not None:
            (path / "ranker.json").write_text(json.dumps(self.ranker.to_dict()))

    @classmethod
    def from_disk(cls, path: str | Path) -> "BrandClassifier":
        path = Path(path)
        clf = cls()
        clf.knn = CategoryClassifier.from_disk(path / "knn", featurizer=brand_features)
        data = json.loads((path / "cues.json").read_text())
        clf.cues = {k: tuple(v) for k, v in data["cues"].items()}
        clf.thresholds = data["thresholds"]
        clf.aliases = data.get("aliases", {})
        clf.brand_counts = data.get("brand_counts", {})
        if (path / "ranker.json").exists():
            try:
                clf.ranker = BrandRanker.from_dict(json.loads((path / "ranker.json").read_text()))
            except ValueError as exc:  # an artefact from another feature set: use the old rule
                logging.getLogger(__name__).warning("%s: %s", path / "ranker.json", exc)
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


def _f1(tp: int, n_pred: int, n_gold: int) -> float:
    prec = tp / n_pred if n_pred else 0.0
    rec = tp / n_gold if n_gold else 0.0
    return 2 * prec * rec / (prec + rec) if prec + rec else 0.0


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
                    f1 = _f1(tp, sum(o is not None for o in out), n_gold)
                    if f1 > best[0] + 1e-9:
                        best = (f1, th)
    return best[1], best[0]


class BrandComponent(TitleClassifierComponent):
    """Sets ``doc.user_data["brand"]`` on title docs."""

    classifier_class = BrandClassifier

    def _classify(self, docs: list[Doc]):
        todo = [d for d in docs if d.user_data.get("field", "title") == "title"]
        preds = self.classifier.predict_scores([(d.text, d.user_data.get("context", ""))
                                                for d in todo])
        for doc, scored in zip(todo, preds):
            doc.user_data["brand_scores"] = scored
            if scored:
                brand, (score, start, end) = max(scored.items(), key=lambda kv: kv[1][0])
                doc.user_data["brand"] = (brand, score, "title", start, end)
        return docs


@Language.factory("brand_classifier")
def make_brand_classifier(nlp: Language, name: str) -> BrandComponent:
    return BrandComponent()


# -- candidate ranking ------------------------------------------------------------------------
# Most brands the training part never saw are still written in the text, nearly always as the
# first words of the title ("Cal Hawk Tools CZCW45B Metal Cut-Off Wheel", "DAOKI 10PCS ...").
# The ranker scores every candidate (title prefixes of 1-4 words, the ruler's and the NER's
# BRAND spans in title and description, the classifier's top guesses) with a logistic model
# over features that do not name any brand, and emits the best one unless its probability is
# under a threshold chosen for F1 on a dev part of the training data (nlp.training).

_PREFIX_WORD = re.compile(r"[^\s,;:()\[\]{}|/]+")
_SEPARATOR = re.compile(r"^[-–—:|*+~]+$")
MAX_PREFIX_WORDS = 4
RANKER_FEATURES = (
    "bias", "prefix", "prefix_1", "prefix_2", "prefix_3", "prefix_4", "ruler", "ner",
    "span_desc", "span_start", "known", "log_count", "clf", "clf_top", "cue", "caps",
    "upper", "lower_word", "digit", "common", "common_first", "ptype", "ptype_last",
    "next_digit", "next_lower", "next_end", "next_upper", "in_desc", "repeat_title",
    "alias", "alias_weak", "prefix_known", "prefix_unknown_common", "ner_known",
    "clf_only", "len_chars", "brand_first", "brand_last", "common_last", "clf_high",
)


def title_prefixes(title: str) -> list[tuple[int, int]]:
    """(start, end) of the title's first 1..4 words, stopping at a separator or punctuation."""
    out = []
    start = None
    prev_end = 0
    for n, m in enumerate(_PREFIX_WORD.finditer(title)):
        word = m.group(0)
        if n >= MAX_PREFIX_WORDS or _SEPARATOR.match(word):
            break
        if n > 0 and title[prev_end:m.start()].strip():
            break  # punctuation between the words
        if start is None:
            start = m.start()
        end = m.end()
        while end > m.start() and title[end - 1] in ".'\"!?":
            end -= 1
        if end > m.start():
            out.append((start, end))
        if end < m.end() and title[end:m.end()] != ".":
            break
        prev_end = m.end()
    return out


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9][A-Za-z0-9'&.-]*", text)


class BrandRanker:
    """Logistic scoring of brand candidates; ``weights`` over ``RANKER_FEATURES``."""

    def __init__(self, weights: Optional[list[float]] = None, threshold: float = 0.5,
                 lower_df: Optional[dict[str, int]] = None) -> None:
        self.weights = np.asarray(weights if weights is not None
                                  else np.zeros(len(RANKER_FEATURES)), np.float64)
        self.threshold = threshold
        self.null_bias = 0.0  # the utility of "none of the candidates"
        self._kinds_kb, self._kinds = None, {}
        self._names_kb, self._names = None, (Counter(), Counter())
        # how often a word is written in lowercase in the training texts: "national", "gloss"
        # and "shoulder" are everyday words, "daoki" and "oshlun" are not
        self.lower_df = lower_df or {}

    def _word_kinds(self, kb, word: str) -> tuple[str, ...]:
        """Which of product type / material / colour ``word`` names in ``kb`` (memoised per kb)."""
        if self._kinds_kb is not kb or len(self._kinds) > 200_000:
            self._kinds_kb, self._kinds = kb, {}
        kinds = self._kinds.get(word)
        if kinds is None:
            kinds = self._kinds[word] = tuple(
                kind for kind in ("PRODUCT_TYPE", "MATERIAL", "COLOR") if kb.link(kind, word))
        return kinds

    def _brand_words(self, kb) -> tuple[Counter, Counter]:
        """How many known brand names start with / end in each word (folded): "labs",
        "electronics", "brush" end many names; memoised per kb."""
        if self._names_kb is not kb:
            first, last = Counter(), Counter()
            for entry in kb.brands.values():
                for name in {entry["name"], *entry["aliases"]}:
                    words = [w.lower() for w in _words(name)]
                    if words:
                        first[words[0]] += 1
                    if len(words) > 1:
                        last[words[-1]] += 1
            self._names_kb, self._names = kb, (first, last)
        return self._names

    @staticmethod
    def word_counts(texts: Iterable[str], min_count: int = 2) -> dict[str, int]:
        counts: Counter = Counter()
        for text in texts:
            counts.update({w for w in re.findall(r"(?<![A-Za-z])[a-z][a-z'-]+", text or "")})
        return {w: n for w, n in counts.items() if n >= min_count}

    def candidates(self, kb, title: str, description: str, span_facts: list,
                   clf_scores: dict[str, tuple[float, int, int]],
                   aliases: dict[str, list], brand_counts: dict[str, int]) -> list[dict]:
        """One dict per candidate key: ``{"key", "field", "start", "end", "x": features}``.

        ``span_facts``: HAS_BRAND facts from entity spans; ``clf_scores``: the classifier's
        key -> (score, start, end in title).
        """
        from .normalize import entity_key

        found: dict[str, dict] = {}

        def add(key: str, field: str, start: int, end: int, **feats) -> None:
            if not key:
                return
            x = found.get(key)
            if x is None:
                x = found[key] = {"key": key, "field": field, "start": start, "end": end,
                                  "f": defaultdict(float), "surface": None}
            for name, value in feats.items():
                x["f"][name] = max(x["f"][name], value)
            if field == "title" and (x["surface"] is None or feats.get("prefix")):
                x["surface"] = (start, end)
                x["field"], x["start"], x["end"] = field, start, end

        for start, end in title_prefixes(title):
            text = title[start:end]
            key = kb.link("BRAND", text) or entity_key("BRAND", text)
            n = len(_words(text)) or 1
            add(key, "title", start, end, prefix=1.0, **{f"prefix_{min(n, 4)}": 1.0})
        for fact in span_facts:
            src = "ruler" if fact.extractor == "kb_ruler" else "ner"
            feats = {src: 1.0}
            if fact.field == "title" and fact.start <= 1:
                feats["span_start"] = 1.0
            if fact.field != "title":
                feats["span_desc"] = 1.0
            add(fact.object_key, fact.field, fact.start, fact.end, **feats)
        top = max(clf_scores.items(), key=lambda kv: kv[1][0])[0] if clf_scores else None
        for key, (score, start, end) in clf_scores.items():
            cue = float((start, end) != (0, len(title)))  # a learned cue names it in the title
            add(key, "title", start, end, clf=score, clf_top=float(key == top), cue=cue,
                clf_high=max(0.0, score - 0.5) * 2)
        out = []
        lowered_desc = (description or "").lower()
        for key, c in found.items():
            f = c["f"]
            alias = aliases.get(key)
            if alias and alias[0]:
                f["alias"] = alias[1]
                key = c["key"] = alias[0]
                if key in clf_scores:
                    f["clf"] = max(f["clf"], clf_scores[key][0])
            elif alias:
                f["alias_weak"] = 1.0
            surface = ""
            if c["surface"] is not None:
                surface = title[c["surface"][0]:c["surface"][1]]
            elif c["field"] == "description":
                surface = (description or "")[c["start"]:c["end"]]
            words = _words(surface)
            known = key in kb.brands
            f["known"] = float(known)
            f["log_count"] = math.log1p(brand_counts.get(key, 0))
            if words:
                f["caps"] = float(all(w[0].isupper() or w[0].isdigit() for w in words))
                f["upper"] = float(all(w.isupper() for w in words if w[0].isalpha()))
                f["lower_word"] = float(any(w[0].islower() for w in words))
                f["digit"] = float(any(ch.isdigit() for ch in surface))
                dfs = [math.log1p(self.lower_df.get(w.lower(), 0)) for w in words]
                f["common"] = max(dfs) / 5
                f["common_first"] = dfs[0] / 5
                kinds = [self._word_kinds(kb, w) for w in words]
                f["ptype"] = float(any(kinds))
                f["ptype_last"] = float("PRODUCT_TYPE" in kinds[-1])
                f["len_chars"] = min(len(surface), 30) / 30
                first_words, last_words = self._brand_words(kb)
                f["brand_first"] = math.log1p(first_words.get(words[0].lower(), 0)) / 3
                if len(words) > 1:
                    f["brand_last"] = math.log1p(last_words.get(words[-1].lower(), 0)) / 3
                f["common_last"] = dfs[-1] / 5
                if c["surface"] is not None:
                    rest = _words(title[c["surface"][1]:])
                    nxt = rest[0] if rest else ""
                    f["next_end"] = float(not nxt)
                    f["next_digit"] = float(any(ch.isdigit() for ch in nxt))
                    f["next_lower"] = float(bool(nxt) and nxt[0].islower())
                    f["next_upper"] = float(bool(nxt) and nxt.isupper() and nxt.isalpha())
                    f["repeat_title"] = float(title.count(surface) > 1)
                f["in_desc"] = float(bool(lowered_desc) and surface.lower() in lowered_desc)
            f["prefix_known"] = f["prefix"] * f["known"]
            f["prefix_unknown_common"] = f["prefix"] * (1 - f["known"]) * f["common"]
            f["ner_known"] = f["ner"] * f["known"]
            f["clf_only"] = float(not (f["prefix"] or f["ruler"] or f["ner"]))
            f["bias"] = 1.0
            c["x"] = np.array([f.get(name, 0.0) for name in RANKER_FEATURES], np.float64)
            out.append(c)
        # the same key reached through an alias: keep the strongest row
        merged: dict[str, dict] = {}
        for c in out:
            if c["key"] not in merged:
                merged[c["key"]] = c
            else:
                merged[c["key"]]["x"] = np.maximum(merged[c["key"]]["x"], c["x"])
        return list(merged.values())

    def score(self, candidates: list[dict]) -> list[float]:
        """Probability of each candidate being the brand; the rest is "none of them"."""
        if not candidates:
            return []
        z = np.stack([c["x"] for c in candidates]) @ self.weights
        z = np.append(z, self.null_bias)
        p = np.exp(z - z.max())
        return list(p[:-1] / p.sum())

    def best(self, candidates: list[dict]) -> Optional[tuple[dict, float]]:
        """The top candidate and its probability, or None when it is under the threshold."""
        scores = self.score(candidates)
        if not scores:
            return None
        i = int(np.argmax(scores))
        return (candidates[i], scores[i]) if scores[i] >= self.threshold else None

    def fit(self, groups: list[tuple[list[dict], Optional[str]]], l2: float = 1.0) -> "BrandRanker":
        """Conditional logit over each product's candidates plus a "none" option.

        ``groups``: (candidates, gold key) per product; the target is the candidate with the
        gold key, else "none" (no gold brand, or no candidate has it), so the model learns
        to abstain as well as to rank.
        """
        from scipy.optimize import minimize

        groups = [(c, g) for c, g in groups if c]
        if not groups:
            return self
        X = np.concatenate([np.stack([c["x"] for c in cands]) for cands, _ in groups])
        sizes = np.array([len(cands) for cands, _ in groups])
        owner = np.repeat(np.arange(len(groups)), sizes)
        target = np.full(len(groups), -1)
        offset = 0
        for g, (cands, gold) in enumerate(groups):
            for j, c in enumerate(cands):
                if gold is not None and c["key"] == gold:
                    target[g] = offset + j
                    break
            offset += len(cands)
        d = X.shape[1]

        def loss(theta):
            w, null = theta[:d], theta[d]
            z = X @ w
            m = np.maximum(np.maximum.reduceat(z, np.r_[0, np.cumsum(sizes)[:-1]]), null)
            e = np.exp(z - m[owner])
            en = np.exp(null - m)
            denom = np.bincount(owner, weights=e, minlength=len(groups)) + en
            chosen = np.where(target >= 0, z[np.maximum(target, 0)], null) - m
            nll = float(np.sum(np.log(denom) - chosen))
            p = e / denom[owner]
            pn = en / denom
            grad_z = p.copy()
            hit = target[target >= 0]
            grad_z[hit] -= 1.0
            gw = X.T @ grad_z + l2 * np.r_[0.0, w[1:]]
            gnull = float(np.sum(pn) - np.sum(target < 0))
            reg = 0.5 * l2 * float(w[1:] @ w[1:])
            return nll + reg, np.r_[gw, gnull]

        theta = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B").x
        self.weights, self.null_bias = theta[:d], float(theta[d])
        return self

    def to_dict(self) -> dict:
        return {"features": list(RANKER_FEATURES), "weights": [round(float(w), 6) for w in self.weights],
                "null_bias": round(self.null_bias, 6), "threshold": self.threshold,
                "lower_df": self.lower_df}

    @classmethod
    def from_dict(cls, data: dict) -> "BrandRanker":
        if data.get("features") != list(RANKER_FEATURES):
            raise ValueError("brand ranker trained with other features; retrain (manage.py train_nlp)")
        ranker = cls(data["weights"], data["threshold"], data.get("lower_df"))
        ranker.null_bias = data.get("null_bias", 0.0)
        return ranker


def threshold_for_f1(tops: list[tuple[float, bool]], n_gold: int) -> tuple[float, float]:
    """(threshold, F1): ``tops`` holds (probability, right?) of each product's top candidate."""
    best = (0.5, -1.0)
    for t in np.arange(0.05, 0.96, 0.025):
        picked = [ok for s, ok in tops if s >= t]
        f1 = _f1(sum(picked), len(picked), n_gold)
        if f1 > best[1] + 1e-9:
            best = (round(float(t), 3), f1)
    return best


def fit_ranker(groups: list[tuple[list[dict], Optional[str]]], lower_df: dict[str, int],
               folds: int = 2) -> tuple[BrandRanker, float]:
    """Fit the ranker on all ``groups``; the threshold (and the F1 returned) come from
    out-of-fold scores, so the threshold is not chosen on the rows the weights were fitted to."""
    tops = []
    for k in range(folds):
        ranker = BrandRanker(lower_df=lower_df).fit([g for i, g in enumerate(groups) if i % folds != k])
        for i, (cands, gold) in enumerate(groups):
            if i % folds == k and cands:
                scores = ranker.score(cands)
                j = int(np.argmax(scores))
                tops.append((scores[j], cands[j]["key"] == gold))
    threshold, f1 = threshold_for_f1(tops, sum(g is not None for _, g in groups))
    ranker = BrandRanker(lower_df=lower_df, threshold=threshold).fit(groups)
    return ranker, f1
