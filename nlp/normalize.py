"""Normalisation of names into stable entity keys, and the folding rules used for linking.

Keys are lowercase ASCII slugs (``"black-and-decker"``); the graph uid of an entity is
``f"{object_type.lower()}:{key}"``. Category keys are the slugs of the path parts joined by
``/`` so the graph can derive SUBCATEGORY_OF from the key alone.
"""
from __future__ import annotations

import html
import re
import unicodedata

# Legal-form suffixes: never part of a brand's identity ("Sealed Unit Parts Co., Inc.").
CORPORATE_SUFFIXES = {
    "inc", "incorporated", "co", "corp", "corporation", "company", "llc", "l l c", "ltd",
    "limited", "plc", "gmbh", "ag", "sa", "srl", "bv", "pty", "lp", "llp", "kg", "oy", "ab",
}
# Descriptor suffixes that brand owners tack on ("Stanley Hand Tools", "Wago Corporation",
# "Rubbermaid Commercial Products"). Stripped only while a distinctive word remains.
DESCRIPTOR_SUFFIXES = [
    "hand tools", "power tools", "tools", "tool", "industries", "industrial", "products",
    "product", "commercial products", "manufacturing", "mfg", "international", "intl",
    "group", "usa", "us", "america", "brands", "brand", "enterprises", "enterprise",
    "technologies", "technology", "worldwide", "global", "store", "official", "direct",
]
_DESCRIPTORS = sorted((tuple(s.split()) for s in DESCRIPTOR_SUFFIXES), key=len, reverse=True)
_CORPORATE = sorted((tuple(s.split()) for s in CORPORATE_SUFFIXES), key=len, reverse=True)

_TAGS = re.compile(r"<[^>]+>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def clean_text(text: str) -> str:
    """Unescape HTML entities (twice: the catalogue has ``&amp;amp;``), drop tags and
    control characters, collapse whitespace. Length-preserving is NOT guaranteed, so
    extraction works on the raw field and only names/keys go through this."""
    text = html.unescape(html.unescape(text))
    text = _TAGS.sub(" ", text)
    text = _CONTROL.sub(" ", text)
    return " ".join(text.split())


def fold(text: str) -> str:
    """Case/accent/punctuation/whitespace folding: ``"Türlen  Co.,"`` -> ``"turlen co"``."""
    text = clean_text(text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("&", " and ").replace("+", " plus ")
    text = re.sub(r"(?<=\w)['’](?=\w)", "", text)  # "Mover's" -> "movers"
    return " ".join(_NON_WORD.sub(" ", text).split())


def _strip_suffixes(words: list[str], suffixes: list[tuple[str, ...]]) -> list[str]:
    changed = True
    while changed:
        changed = False
        for suffix in suffixes:
            n = len(suffix)
            if len(words) > n and tuple(words[-n:]) == suffix:
                words = words[:-n]
                changed = True
                break
    return words


def brand_words(name: str) -> list[str]:
    words = fold(name).split()
    # "and" left dangling by "Black & Decker, Co." style names is harmless; a trailing one is not.
    words = _strip_suffixes(words, _CORPORATE + [("and",)])
    words = _strip_suffixes(words, _DESCRIPTORS + _CORPORATE + [("and",)])
    if len(words) > 1 and words[0] == "the":
        words = words[1:]  # "The Hillman Group" and "Hillman" are one brand
    return words


def slug(text: str) -> str:
    return "-".join(fold(text).split())


def compact(text: str) -> str:
    """Separator-free form used as a second linking key ("Safe-Touch" == "SafeTouch")."""
    return "".join(fold(text).split())


def split_category_path(path: str | list[str]) -> list[str]:
    parts = path.split(",") if isinstance(path, str) else list(path)
    return [clean_text(p) for p in parts if p and clean_text(p)]


def category_key(path: str | list[str]) -> str:
    return "/".join(slug(p) for p in split_category_path(path))


def singular(word_phrase: str) -> str:
    """Crude English singular of the last word ("Pocket Hole Screws" -> "Pocket Hole Screw")."""
    head, _, last = word_phrase.rpartition(" ")
    low = last.lower()
    if len(low) <= 3 or low.endswith(("ss", "us", "is")):
        out = last
    elif low.endswith("ies"):
        out = last[:-3] + ("Y" if last.isupper() else "y")
    elif low.endswith(("ches", "shes", "xes", "sses", "zes")):
        out = last[:-2]
    elif low.endswith("s"):
        out = last[:-1]
    else:
        out = last
    return f"{head} {out}" if head else out


def entity_key(object_type: str, name: str | list[str]) -> str:
    """Stable normalised key for an entity of ``object_type`` named ``name``."""
    kind = object_type.upper()
    if kind == "CATEGORY":
        return category_key(name)
    if isinstance(name, list):
        name = " ".join(name)
    if kind == "BRAND":
        return "-".join(brand_words(name))
    if kind == "PRODUCT_TYPE":
        return slug(singular(clean_text(name)))
    if kind == "MODEL_NUMBER":
        return compact(name)
    return slug(name)
