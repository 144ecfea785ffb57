"""Which extracted facts are trusted: negative cues, a calibrated confidence and a per-relation threshold.

The rule extractors propose facts; this module decides for each one whether it reaches the graph
(status ``auto``) or waits in the curators' queue (status ``candidate``).

1. ``cues(fact, text, ...)`` names the error shapes a fact shows, from grammar, units and the
   product's other facts only (no catalogue vocabulary): a spec phrase or a fragment as a
   compatibility target, a spatial "fits under ...", a measure that is a per-unit ratio, a
   comparison or one value in a list, "1M ohm" read as metres, a model number that is a standard
   ("ASTM B221"), a thread or a measure, plating or a negated material ("Zinc Plated", "Non Latex"),
   a colour that names an alloy or a part, a product type after "for"/"with", a shallow category.
2. ``Acceptor`` holds, per relation, how often facts of each *group* (where the fact came from:
   structured field / title / description, the target's type, cue or no cue) were judged correct,
   as counts learned from labelled facts (the calibration sample, then curators' approvals and
   rejections). A fact's confidence is the smoothed share of correct facts in its group (backing
   off to coarser groups when a group has few examples), so it is calibrated by construction.
3. A fact is ``auto`` when its confidence reaches its relation's threshold, else ``candidate``.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from kgschema import (COMPATIBLE_WITH, HAS_ATTRIBUTE, HAS_BRAND, HAS_COLOR, HAS_MODEL_NUMBER, IN_CATEGORY,
                      IS_PRODUCT_TYPE, MADE_OF, USED_FOR)
from .measures import MEASURE_RE, UNITS, find_measures
from .normalize import singular
from .types import Fact

AUTO, CANDIDATE = "auto", "candidate"
DEFAULT_THRESHOLD = 0.9
MIN_GROUP = 5  # fewer labelled facts than this in a group: back off to a coarser group
PRIOR_WEIGHT = 2.0  # pseudo-counts pulling a small group towards its parent's rate
DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "acceptor.json"


def product_split(external_id: str) -> str:
    """"gold" or "calibration": half the products each, by a hash of the product's id.

    Gold products are the precision benchmark's test half: nothing is fitted on them."""
    bucket = int(hashlib.sha1(f"kg-precision:{external_id}".encode()).hexdigest()[:8], 16)
    return "gold" if bucket % 2 == 0 else "calibration"


# --- negative cues ------------------------------------------------------------------------------
_FUNCTION_START = re.compile(r"^(?:and|or|but|nor|for|including|include|such|as|nearly|almost|"
                             r"various|variety|different|wide|many|most|your|our|their|its|it|is|are|"
                             r"be|which|that|where|when|while|through|into|under|over|around|"
                             r"between|inside|within|on|in|at|to|of|by|with|without|way)\b", re.I)
_CLAUSE_VERB = re.compile(r"\b(?:is|are|was|were|be|been|not|where|which|who|you|your|it|its)\b", re.I)
_FIT_CUE = re.compile(r"\bfits?\s+(?:\w+ly\s+)?(?:under|in|into|inside|through|around|on|over|"
                      r"between|all the way)\b", re.I)
_COMPAT_CUE = re.compile(r"\b(?:compatible with|replacement for|replaces|for use with|works with|fits|fit)\b",
                         re.I)
_CONTENTS = re.compile(r"\b(?:includes?|included|including|in the box|package|packing list|comes with|"
                       r"contents?)\b", re.I)
_CUT = re.compile(r"\s(?:for|with|w/|includes?|including|fits?|fit for|compatible)\s|\(", re.I)
_PLATING = re.compile(r"^[\s-]*(?:plated|plating|coated|coating|finish|tone|anodized|chromate|filled|"
                      r"impregnated|clad)\b", re.I)
_NEGATED_BEFORE = re.compile(r"\b(?:non|no|not|without|free of)[\s-]*$", re.I)
_NEGATED_AFTER = re.compile(r"^[\s-]*free\b", re.I)
_COMPARISON = re.compile(r"^\s*(?:more|less|fewer|greater|higher|lower|faster|stronger|than|"
                         r"longer|larger|smaller)\b", re.I)
_CONDITION = re.compile(r"\b(?:below|above|under|over|exceeds?|if|when|at temperatures?)\s*[<>]?\s*$", re.I)
_PER_UNIT = re.compile(r"^\s*(?:/\s?(?!pcs?\b|ea\b|each\b|pack\b|box\b|roll\b|pair\b)[a-z]|per\s)", re.I)
_OHM_AFTER = re.compile(r"^\s?(?:ohms?|Ω)", re.I)
_STANDARD_BODY = re.compile(r"(?:^|[\s/(,])([A-Z]{2,4})[\s-]+$")
_SPEC_WORD_AFTER = re.compile(r"^\s+(?:temper|grade|series|threads?|metric|coarse|fine|class|type|rated|"
                              r"standard|spec|specification|compliant|certified)\b", re.I)
_THREAD = re.compile(r"^M\d+(?:\.\d+)?(?:[-x×]\d+(?:\.\d+)?)?$", re.I)
_DIMENSIONS = re.compile(r"\d+\s?[A-Za-z]?\s?[x×]\s?\d", re.I)
_WITH_BEFORE = re.compile(r"\b(?:with|w/|and|plus|&)\s+(?:\w+\s+){0,2}$", re.I)
_FOR_BEFORE = re.compile(r"\b(?:for|fits?|fit for|compatible with|model|models)\s+(?:\w+\s+){0,3}$", re.I)
_UNIT_WORDS = {u.lower() for u in UNITS} | {"pin", "pins", "bag", "bags", "way", "port", "gang", "pole",
                                            "inch", "inches", "foot", "feet"}


def _before(text: str, start: int, n: int) -> str:
    return text[max(0, start - n):start]


def _after(text: str, end: int, n: int) -> str:
    return text[end:end + n]


def compatible_cues(f: Fact, text: str) -> list[str]:
    item = text[f.start:f.end] if text else f.text
    out = []
    if f.object_type == "PRODUCT_TYPE":
        if any(True for _ in find_measures(item)) or re.search(r"[+±]/?-?\s?\d", item):
            out.append("spec_target")
        if _FUNCTION_START.match(item) or _CLAUSE_VERB.search(item):
            out.append("fragment")
        if item[:1].islower() and len(item.split()) == 1:
            out.append("common_noun")
    # the cue clause this item belongs to: the last cue before it
    cue = None
    for m in _COMPAT_CUE.finditer(text, 0, f.start):
        cue = m
    if cue is not None:
        lead = text[cue.start():f.start]
        if _FIT_CUE.match(lead) or re.match(r"fits?\s+\w+ly\b", lead, re.I):
            out.append("spatial_fit")
        if _CONTENTS.search(_before(text, cue.start(), 80)):
            out.append("contents_list")
    elif _CONTENTS.search(_before(text, f.start, 80)):
        out.append("contents_list")
    return out


def used_for_cues(f: Fact, text: str) -> list[str]:
    item = text[f.start:f.end] if text else f.text
    out = []
    if _FUNCTION_START.match(item):
        out.append("fragment")
    if _CLAUSE_VERB.search(item) or len(item.split()) >= 4:
        out.append("clause_fragment")
    if re.search(r"\b(?:applications?|projects?|uses?|purposes?|jobs?|tasks?)\b", item, re.I):
        out.append("generic")
    if re.search(r"\bother\b", _before(text, f.start, 60), re.I):
        out.append("about_others")
    if f.field == "title":
        out.append("title_fragment")
    if re.search(r"\d", item) and re.search(r"[A-Z]", item) and " " not in item:
        out.append("model_target")
    return out


def attribute_cues(f: Fact, text: str, spans: list[tuple[int, int, str]]) -> list[str]:
    out = []
    before, after = _before(text, f.start, 24), _after(text, f.end, 16)
    if _PER_UNIT.match(after):
        out.append("per_unit")
    if _COMPARISON.match(after):
        out.append("comparison")
    if _CONDITION.search(before):
        out.append("condition")
    if (f.unit or "").lower() == "m" and _OHM_AFTER.match(after):
        out.append("mega_not_metre")
    if re.search(r"\d,\s?$", before):  # "2, 000 psi", "2,79 mm": the number was cut in two
        out.append("split_number")
    surface = text[f.start:f.end]
    m = MEASURE_RE.match(surface)
    if m:
        num = m.group("num")
        if re.fullmatch(r"\d{4,}", num) and not re.match(r"[\d,]+[\s-]", surface):
            out.append("code_not_measure")  # "10197A", "11726PK": a part code, not amps or a count
        frac = re.fullmatch(r"(\d+)/(\d+)", num)
        if frac and (int(frac.group(1)) > 2 * int(frac.group(2)) or f.unit == "ga"):
            out.append("improper_fraction")
    if f.unit == "count" and f.value is not None and float(f.value) != int(float(f.value)):
        out.append("fractional_count")
    # one value of a list ("10ml 25ml 50ml 100ml", an assortment's sizes)
    dim = (f.object_key or "").split("-", 1)[0]
    near = [s for s in spans if s[2] == dim and abs(s[0] - f.start) < 120]
    if len(near) >= 3:
        out.append("list_member")
    return out


def _occurrences(text: str, token: str):
    """Start offsets of ``token`` in ``text`` as a whole word (no regex: patterns built per token
    would fill re's cache and recompile the module's own patterns)."""
    if not token:
        return
    start = text.find(token)
    while start >= 0:
        end = start + len(token)
        before_ok = start == 0 or not (text[start - 1].isalnum() or text[start - 1] in "_-")
        after_ok = end >= len(text) or not (text[end].isalnum() or text[end] in "_-")
        if before_ok and after_ok:
            yield start
        start = text.find(token, start + 1)


def model_cues(f: Fact, text: str, n_models: int, model_tokens: list[str] = ()) -> list[str]:
    token = text[f.start:f.end] if text else f.text
    out = []
    after = _after(text, f.end, 20)
    # any mention of the token after a standards body's acronym ("ASTM A513" later in the title)
    for start in _occurrences(text, token):
        body = _STANDARD_BODY.search(_before(text, start, 12))
        if body and start > len(body.group(0)) + 1:
            out.append("standard")
            break
    if any(token != other and token.lower() in other.lower() for other in model_tokens):
        out.append("embedded_code")  # "UL1007" inside "22UL1007STRKIT": a series/standard, not the model
    if _SPEC_WORD_AFTER.match(after):
        out.append("spec_word_after")
    if _THREAD.match(token):
        out.append("thread")
    tail = re.search(r"[-\d]([A-Za-z]+)$", token)
    if (any(True for _ in find_measures(token)) or _DIMENSIONS.search(token)
            or (tail and tail.group(1).lower() in _UNIT_WORDS)):
        out.append("measure_like")
    if _FOR_BEFORE.search(_before(text, f.start, 40)):
        out.append("for_target")
    if re.fullmatch(r"\d+-?[A-Za-z]{3,}", token):  # "8-Channel", "1Msps", "25-Bag": a count or spec
        out.append("number_word")
    if n_models >= 3:
        out.append("code_list")
    return out


def material_cues(f: Fact, text: str, n_materials: int) -> list[str]:
    out = []
    before, after = _before(text, f.start, 12), _after(text, f.end, 16)
    if _PLATING.match(after):
        out.append("plating")
    if _NEGATED_BEFORE.search(before) or _NEGATED_AFTER.match(after):
        out.append("negated")
    if f.field == "title" and _FOR_BEFORE.search(_before(text, f.start, 40)):
        out.append("for_target")
    if f.field == "title" and _WITH_BEFORE.search(_before(text, f.start, 30)):
        out.append("part")
    if n_materials >= 3:
        out.append("material_list")
    first = re.search(r",\s|\s[-–|]\s", text) if f.field == "title" else None
    if first and f.start > first.start():
        out.append("later_segment")  # after the title's first segment: a part's material, a variant
    if f.field == "description" and re.search(r"\b(?:and|or) other\b", _after(text, f.end, 80), re.I):
        out.append("generic_list")
    return out


def colour_cues(f: Fact, text: str, material_starts: set[int], colour_spans: list[tuple[int, int]]) -> list[str]:
    out = []
    after = _after(text, f.end, 16)
    nxt = re.match(r"\s+", after)
    if nxt and f.end + nxt.end() in material_starts:
        out.append("names_material")
    if _PLATING.match(re.sub(r"^[\s-]*\w+[\s-]+(?=chromate|plated)", " ", after)) or _PLATING.match(after):
        out.append("plating")
    if _WITH_BEFORE.search(_before(text, f.start, 30)):
        out.append("part")
    for s, e in colour_spans:
        gap = text[min(e, f.end):max(s, f.start)]
        if (s, e) != (f.start, f.end) and gap.strip() == "" and 0 < len(gap) <= 2:
            out.append("colour_run")
            break
    if f.field == "description" and not re.search(r"colou?r\s*:?\s*$", _before(text, f.start, 12), re.I):
        out.append("no_colour_label")
    return out


def type_cues(f: Fact, text: str, product_text: dict) -> list[str]:
    if f.field == "categories":
        return category_cues(f, product_text)
    out = []
    cut = _CUT.search(text)
    if cut and f.start >= cut.start():
        out.append("after_for_with")
    if re.search(r"\(\s*[^)]*$", _before(text, f.start, 60)):
        out.append("in_parens")
    nxt = re.match(r"\s+([A-Z][a-z]+)", _after(text, f.end, 20))
    if nxt and nxt.group(1).lower() not in {"with", "for", "and", "set", "kit", "pack"}:
        out.append("modifier")
    return out


def category_cues(f: Fact, product_text: dict) -> list[str]:
    """A category leaf (as category or product type) the product's own text does not bear out."""
    out = []
    parts = [c for c in (product_text.get("categories") or []) if c]
    if len(parts) <= 2:
        out.append("shallow_category")
    leaf = parts[-1] if parts else f.object_name
    head, words = _leaf_support(leaf, product_text)
    if not head:
        out.append("leaf_head_missing")
    elif not words:
        out.append("leaf_words_missing")
    return out


def brand_cues(f: Fact, text: str) -> list[str]:
    out = []
    surface = text[f.start:f.end] if text else f.text
    if f.field != "brand" and (len(surface) <= 3 and not surface.isalpha() or surface.isdigit()):
        out.append("short_code")
    if f.field == "description":
        out.append("not_in_title")
    if f.field != "brand" and surface and text.lower().count(surface.lower()) > text.count(surface):
        out.append("ordinary_word")  # also written in another case: an everyday word
    return out


def _stem(word: str) -> str:
    return singular(word.lower())[:max(4, len(word) - 3)]


_LEAF_ALTERNATIVES = re.compile(r"\s*(?:&|,|\band\b)\s*")
_WORD = re.compile(r"[A-Za-z0-9]+")


def _leaf_support(leaf: str, product_text: dict) -> tuple[bool, bool]:
    """(the leaf's head noun is in the title/description, all its words are), for the best of its
    "&"/","-separated alternatives ("Masks & Shields"); a word counts when a text word starts with its stem."""
    hay = f"{product_text.get('title', '')} {product_text.get('description', '')}".lower()
    head_ok = words_ok = False
    for alt in _LEAF_ALTERNATIVES.split(leaf or ""):
        words = [w for w in _WORD.findall(alt) if len(w) > 2]
        if not words:
            continue
        present = [_word_starting(hay, _stem(w)) for w in words]
        head_ok = head_ok or present[-1]
        words_ok = words_ok or all(present)
    return head_ok, words_ok


def _word_starting(hay: str, prefix: str) -> bool:
    """Does a word of ``hay`` start with ``prefix``?"""
    start = hay.find(prefix)
    while start >= 0:
        if start == 0 or not hay[start - 1].isalnum():
            return True
        start = hay.find(prefix, start + 1)
    return False


def field_text(product_text: dict, f: Fact) -> str:
    if f.field == "categories":
        return ",".join(product_text.get("categories") or [])
    return str(product_text.get(f.field) or "")


def product_cues(facts: list[Fact], product_text: dict) -> list[list[str]]:
    """The negative cues of each of one product's facts (same order)."""
    texts = {name: field_text(product_text, Fact("", "", "", "", field=name))
             for name in ("title", "description", "brand", "categories")}
    spans: dict[str, list[tuple[int, int, str]]] = {}
    for f in facts:
        if f.relation == HAS_ATTRIBUTE:
            spans.setdefault(f.field, []).append((f.start, f.end, (f.object_key or "").split("-", 1)[0]))
    n_models = sum(f.relation == HAS_MODEL_NUMBER for f in facts)
    model_tokens = [texts["title"][f.start:f.end] for f in facts if f.relation == HAS_MODEL_NUMBER
                    and f.field == "title"]
    n_materials = sum(f.relation == MADE_OF and f.field == "title" for f in facts)
    material_starts = {f.start for f in facts if f.relation == MADE_OF and f.field == "title"}
    colour_spans = [(f.start, f.end) for f in facts if f.relation == HAS_COLOR and f.field == "title"]
    out = []
    for f in facts:
        text = texts.get(f.field, "")
        r = f.relation
        if r == COMPATIBLE_WITH:
            c = compatible_cues(f, text)
        elif r == USED_FOR:
            c = used_for_cues(f, text)
        elif r == HAS_ATTRIBUTE:
            c = attribute_cues(f, text, spans.get(f.field, []))
        elif r == HAS_MODEL_NUMBER:
            c = model_cues(f, text, n_models, model_tokens)
        elif r == MADE_OF:
            c = material_cues(f, text, n_materials)
        elif r == HAS_COLOR:
            c = colour_cues(f, text, material_starts if f.field == "title" else set(),
                            colour_spans if f.field == "title" else [])
        elif r == IS_PRODUCT_TYPE:
            c = type_cues(f, text, product_text)
        elif r == IN_CATEGORY:
            c = category_cues(f, product_text)
        elif r == HAS_BRAND:
            c = brand_cues(f, text)
        else:
            c = []
        out.append(c)
    return out


# --- the calibrated acceptor --------------------------------------------------------------------
def group_keys(f: Fact, cue_names: list[str]) -> list[str]:
    """From the most specific group to the relation as a whole (``cue_names``: the active cues)."""
    source = "structured" if f.field in ("brand", "categories") else f.field
    cue = "cue" if cue_names else "clean"
    return [f"{f.relation}|{source}|{f.object_type}|{cue}", f"{f.relation}|{source}|{cue}",
            f"{f.relation}|{cue}", f.relation]


def select_cues(examples: list[tuple[Fact, list[str], bool]], margin: float = 0.05,
                min_seen: int = 3) -> dict[str, list[str]]:
    """Per relation, the cues that the labelled facts do not contradict.

    Every cue is designed as a sign of error; one is switched off for a relation when at least
    ``min_seen`` labelled facts show it and they are correct about as often as (or more often than)
    the relation's facts without it. Cues never seen stay on."""
    seen: dict[tuple[str, str], list[int]] = {}
    for f, cue_names, ok in examples:
        for c in cue_names:
            seen.setdefault((f.relation, c), [0, 0])
            seen[(f.relation, c)][0] += ok
            seen[(f.relation, c)][1] += 1
    off: dict[str, list[str]] = {}
    for (relation, c), (k, n) in sorted(seen.items()):
        rest = [ok for f, cue_names, ok in examples if f.relation == relation and c not in cue_names]
        base = (sum(rest) + 1) / (len(rest) + 2)
        if n >= min_seen and (k + 1) / (n + 2) >= base - margin:
            off.setdefault(relation, []).append(c)
    return off


@dataclass
class Acceptor:
    """Per-group counts of correct / judged facts, the cues learned to be uninformative per
    relation, and per-relation thresholds."""

    counts: dict[str, list[float]] = field(default_factory=dict)  # group -> [correct, judged]
    thresholds: dict[str, float] = field(default_factory=dict)
    cues_off: dict[str, list[str]] = field(default_factory=dict)
    version: str = "untrained"

    @classmethod
    def fit(cls, examples: Iterable[tuple[Fact, list[str], bool]], thresholds: Optional[dict] = None,
            version: str = "fitted") -> "Acceptor":
        """``examples``: (fact, its cues, judged correct). Partial counts as not correct."""
        examples = list(examples)
        off = select_cues(examples)
        acceptor = cls(thresholds=dict(thresholds or {}), cues_off=off, version=version)
        for f, cue_names, ok in examples:
            for key in group_keys(f, acceptor.active(f.relation, cue_names)):
                c = acceptor.counts.setdefault(key, [0.0, 0.0])
                c[0] += 1.0 if ok else 0.0
                c[1] += 1.0
        return acceptor

    def with_feedback(self, examples: Iterable[tuple[Fact, list[str], bool]], weight: float = 1.0,
                      version: str = "feedback") -> "Acceptor":
        """A new acceptor: these counts plus curators' decisions (approved = correct, rejected =
        wrong), each counted ``weight`` times. The learned cue switches are kept."""
        new = Acceptor(counts={k: list(v) for k, v in self.counts.items()}, thresholds=dict(self.thresholds),
                       cues_off={k: list(v) for k, v in self.cues_off.items()}, version=version)
        for f, cue_names, ok in examples:
            for key in group_keys(f, new.active(f.relation, cue_names)):
                c = new.counts.setdefault(key, [0.0, 0.0])
                c[0] += weight if ok else 0.0
                c[1] += weight
        return new

    def active(self, relation: str, cue_names: list[str]) -> list[str]:
        off = self.cues_off.get(relation, ())
        return [c for c in cue_names if c not in off]

    def confidence(self, f: Fact, cue_names: list[str]) -> Optional[float]:
        """Smoothed share of correct facts in the fact's group; None when its relation was never judged."""
        keys = group_keys(f, self.active(f.relation, cue_names))
        memo = self.__dict__.setdefault("_memo", {})
        if keys[0] in memo:
            return memo[keys[0]]
        memo[keys[0]] = rate = self._rate(keys)
        return rate

    def _rate(self, keys: list[str]) -> Optional[float]:
        rate = None
        for key in reversed(keys):  # coarse to fine: each level is shrunk towards its parent
            c = self.counts.get(key)
            if c is None or c[1] == 0:
                continue
            if rate is None:
                rate = (c[0] + 1.0) / (c[1] + 2.0)
            elif c[1] >= MIN_GROUP:
                rate = (c[0] + PRIOR_WEIGHT * rate) / (c[1] + PRIOR_WEIGHT)
        return rate

    def threshold(self, relation: str) -> float:
        return self.thresholds.get(relation, DEFAULT_THRESHOLD)

    def decide(self, facts: list[Fact], product_text: dict) -> list[Fact]:
        """Set ``confidence`` (calibrated) and ``status`` on one product's facts, in place."""
        for f, cue_names in zip(facts, product_cues(facts, product_text)):
            p = self.confidence(f, cue_names)
            if p is None:  # a relation nobody judged yet: keep the extractor's score, trust nothing
                f.status = CANDIDATE
                continue
            f.confidence = round(p, 3)
            f.status = AUTO if p >= self.threshold(f.relation) else CANDIDATE
        return facts

    def to_dict(self) -> dict:
        return {"version": self.version, "thresholds": self.thresholds, "counts": self.counts,
                "cues_off": self.cues_off}

    @classmethod
    def from_dict(cls, data: dict) -> "Acceptor":
        return cls(counts={k: list(v) for k, v in data.get("counts", {}).items()},
                   thresholds=dict(data.get("thresholds", {})), cues_off=dict(data.get("cues_off", {})),
                   version=data.get("version", "fitted"))

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH) -> Optional["Acceptor"]:
        p = Path(path)
        return cls.from_dict(json.loads(p.read_text())) if p.exists() else None


def fact_from_row(row: dict) -> Fact:
    """A labelled gold/calibration row (``bench/gold/precision/*.jsonl``) as an nlp Fact."""
    object_type, key = row["object_uid"].split(":", 1)
    value = float(row["value"]) if row.get("value") not in (None, "") else None
    return Fact(relation=row["relation"], object_type=object_type.upper(), object_key=key,
                object_name=row.get("object_name", ""), value=value, unit=row.get("unit") or None,
                field=row["field"], start=row.get("start") or 0, end=row.get("end") or 0,
                text=row.get("text", ""), extractor=row.get("extractor", ""),
                confidence=float(row.get("confidence", 1.0)))


def examples_from_rows(rows: Iterable[dict], product_facts: Optional[dict] = None):
    """(fact, cues, correct) for labelled rows; ``product_facts`` (product -> all its Facts) lets
    cues that look at a product's other facts see them."""
    for row in rows:
        if row.get("label") not in ("correct", "partial", "wrong"):
            continue
        f = fact_from_row(row)
        siblings = (product_facts or {}).get(row["product"]) or [f]
        if f not in siblings:
            siblings = [*siblings, f]
        cue_names = product_cues(siblings, row["product_text"])[siblings.index(f)]
        yield f, cue_names, row["label"] == "correct"


def label_counts(rows: Iterable[dict]) -> Counter:
    return Counter((r["relation"], r.get("label")) for r in rows)
