"""One analyzer for documents and queries, so a query term and a title term meet in the same token.

Words are folded (case, accents, punctuation) and crudely singularised; measures become one
canonical token ("1/2-Inch" and "1/2 inch" both give ``m:length-0.5-in``) and model numbers a
separator-free one ("TRA-708T" gives ``tra708t``).
"""
from __future__ import annotations

import re

try:  # the nlp package is written alongside; its regex recognisers are plain modules
    from nlp.measures import find_measures, find_model_numbers, measure_key
    from nlp.normalize import compact, fold
except ImportError:  # pragma: no cover - only while nlp is absent
    find_measures = find_model_numbers = None

    def fold(text: str) -> str:
        return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())

    def compact(text: str) -> str:
        return "".join(fold(text).split())

    def measure_key(value, unit, dimension):
        return f"{dimension}-{value}-{unit}"

STOPWORDS = frozenset("a an and the of for with to in on by or at from is as x".split())
MAX_INDEXED_CHARS = 4000  # long descriptions add little recall and cost build time


def stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):  # "batteries" -> "battery", but "ties" -> "tie"
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    return [stem(w) for w in fold(text).split() if w not in STOPWORDS]


def model_tokens(text: str) -> list[str]:
    if find_model_numbers is None:
        return []
    return ["n:" + compact(token) for _, _, token in find_model_numbers(text, strict=True)]


def analyze(text: str) -> list[str]:
    """Words (measure spans replaced by their canonical token), then model-number tokens."""
    text = text[:MAX_INDEXED_CHARS]
    if find_measures is None:
        return words(text)
    measures, plain, last = [], [], 0
    for m in find_measures(text):
        measures.append("m:" + measure_key(m.value, m.unit, m.dimension))
        plain.append(text[last:m.start])
        last = m.end
    plain.append(text[last:])
    return words(" ".join(plain)) + measures + model_tokens(text)
