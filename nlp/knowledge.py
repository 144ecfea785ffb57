"""The knowledge base the rule-based part of the pipeline is compiled from.

Built from a catalogue's structured fields (``KnowledgeBase.from_products``) or from curated
entities; serialisable with ``to_dict``/``from_dict`` so the pipeline can be rebuilt whenever
curated knowledge (aliases, merges) changes.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Optional

from .lexicons import COLORS, MATERIALS, NON_BRANDS
from .normalize import (
    category_key, clean_text, compact, entity_key, fold, singular, split_category_path,
)
from .types import ProductText

ENTITY_TYPES = ("BRAND", "PRODUCT_TYPE", "MATERIAL", "COLOR", "USE")


class KnowledgeBase:
    def __init__(self) -> None:
        # type -> key -> {"name": display name, "aliases": sorted surface forms}
        self.entities: dict[str, dict[str, dict]] = {t: {} for t in ENTITY_TYPES}
        # category key -> {"path": [display parts], "count": n}
        self.categories: dict[str, dict] = {}
        # product type key -> Counter of category keys it was the leaf of
        self.type_categories: dict[str, Counter] = {}
        self._index: dict[str, dict[str, str]] = {}

    # -- construction --------------------------------------------------------------
    @classmethod
    def from_products(cls, products: Iterable[ProductText], lexicons: bool = True) -> "KnowledgeBase":
        kb = cls()
        if lexicons:
            kb.add_lexicons()
        for p in products:
            if p.brand and isinstance(p.brand, str):
                kb.add_entity("BRAND", p.brand)
            if p.categories:
                kb.add_category(p.categories)
        return kb

    def add_lexicons(self) -> None:
        for kind, lexicon in (("MATERIAL", MATERIALS), ("COLOR", COLORS)):
            for name, aliases in lexicon.items():
                key = self.add_entity(kind, name)
                for alias in aliases:
                    self.add_alias(kind, key, alias)

    def add_entity(self, kind: str, name: str, key: Optional[str] = None) -> Optional[str]:
        name = clean_text(name)
        if not name or (kind == "BRAND" and fold(name) in NON_BRANDS):
            return None
        key = key or self.link(kind, name) or entity_key(kind, name)
        if not key:
            return None
        entry = self.entities[kind].setdefault(key, {"name": name, "aliases": []})
        if name not in entry["aliases"]:
            entry["aliases"].append(name)
        self._index_surface(kind, key, key, name)
        return key

    def add_alias(self, kind: str, key_or_name: str, alias: str) -> str:
        """Attach ``alias`` to an existing entity (by key or name), creating it if needed."""
        key = key_or_name if key_or_name in self.entities[kind] else self.link(kind, key_or_name)
        if key is None:
            key = self.add_entity(kind, key_or_name)
        alias = clean_text(alias)
        if alias and alias not in self.entities[kind][key]["aliases"]:
            self.entities[kind][key]["aliases"].append(alias)
            self._index_surface(kind, key, alias)
        return key

    def merge(self, kind: str, keep: str, drop: str) -> str:
        """Fold entity ``drop`` into ``keep`` (keys or names); ``drop``'s aliases are kept."""
        keep_key = keep if keep in self.entities[kind] else self.link(kind, keep)
        drop_key = drop if drop in self.entities[kind] else self.link(kind, drop)
        if keep_key is None or drop_key is None:
            raise KeyError(f"unknown {kind}: {keep if keep_key is None else drop}")
        if keep_key != drop_key:
            dropped = self.entities[kind].pop(drop_key)
            target = self.entities[kind][keep_key]["aliases"]
            for alias in [dropped["name"], *dropped["aliases"]]:
                if alias not in target:
                    target.append(alias)
            if kind == "PRODUCT_TYPE" and drop_key in self.type_categories:
                self.type_categories.setdefault(keep_key, Counter()).update(
                    self.type_categories.pop(drop_key))
        self._index.clear()
        return keep_key

    def add_category(self, path: str | list[str]) -> Optional[str]:
        parts = split_category_path(path)
        if not parts:
            return None
        for depth in range(1, len(parts) + 1):
            key = category_key(parts[:depth])
            entry = self.categories.setdefault(key, {"path": parts[:depth], "count": 0})
            if depth == len(parts):
                entry["count"] += 1
        leaf_key = self.add_entity("PRODUCT_TYPE", parts[-1])
        if leaf_key:
            self.add_alias("PRODUCT_TYPE", leaf_key, singular(parts[-1]))
            self.type_categories.setdefault(leaf_key, Counter())[category_key(parts)] += 1
        return category_key(parts)

    # -- lookup --------------------------------------------------------------------
    def _index_surface(self, kind: str, key: str, *surfaces: str) -> None:
        if not self._index:
            return  # built lazily on the next lookup
        index = self._index[kind]
        for surface in surfaces:
            index.setdefault("k:" + entity_key(kind, surface), key)
            index.setdefault("c:" + compact(surface), key)

    def _build_index(self) -> None:
        for kind, entities in self.entities.items():
            self._index[kind] = {}
            for key, entry in entities.items():
                self._index[kind].setdefault("k:" + key, key)
        for kind, entities in self.entities.items():
            for key, entry in entities.items():
                self._index_surface(kind, key, entry["name"], *entry["aliases"])

    def link(self, kind: str, name: str) -> Optional[str]:
        """Key of the known entity ``name`` refers to (alias/case/suffix folding), else None."""
        if not self._index:
            self._build_index()
        index = self._index.get(kind, {})
        return index.get("k:" + entity_key(kind, name)) or index.get("c:" + compact(name))

    def name(self, kind: str, key: str) -> str:
        entry = self.entities[kind].get(key)
        return entry["name"] if entry else key

    def surfaces(self, kind: str) -> Iterable[tuple[str, str]]:
        """(key, surface form) pairs the rule matcher should look for."""
        for key, entry in self.entities[kind].items():
            seen = set()
            for surface in [entry["name"], *entry["aliases"]]:
                if surface not in seen:
                    seen.add(surface)
                    yield key, surface

    def category_for_type(self, type_key: str) -> Optional[str]:
        counts = self.type_categories.get(type_key)
        return counts.most_common(1)[0][0] if counts else None

    @property
    def brands(self) -> dict[str, dict]:
        return self.entities["BRAND"]

    # -- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "entities": self.entities,
            "categories": self.categories,
            "type_categories": {k: dict(v) for k, v in self.type_categories.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> "KnowledgeBase":
        kb = cls()
        for kind, entities in data.get("entities", {}).items():
            kb.entities[kind] = {k: {"name": v["name"], "aliases": list(v["aliases"])}
                                 for k, v in entities.items()}
        kb.categories = {k: dict(v) for k, v in data.get("categories", {}).items()}
        kb.type_categories = {k: Counter(v) for k, v in data.get("type_categories", {}).items()}
        return kb
