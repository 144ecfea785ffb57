"""Why was this recommended? A short path (≤ 3 hops) from the user to the item, and a sentence
a shopper can read.

Paths start at the user and go through an item of their history:

* shared entity:  user –INTERACTED→ h –REL→ entity ←REL– item   (compatibility, brand, type…)
* co-interaction: user –INTERACTED→ h ←INTERACTED– other user –INTERACTED→ item

Every edge is read from the in-memory graph (the model's ``item_entity`` triples, which hold
only the facts training exported from the graph store, i.e. trusted ones, and the interaction
histories), so the path exists there. Products are named by their (shortened) titles, which the
caller passes in (``names``); an item without a known title is never named by its id.

Which reason: the first family that applies, in the order real compatibility (a model or brand
as the target, not a spec phrase), brand, product type, a specific category, material; within a
family the most specific entity (fewest items), then the most recent history item. A reason is
left out when it would be weak or likely wrong:

* categories at the root or department level of the catalogue's own tree: the levels where one
  category holds most of the catalogue, the level below them, chains that do not narrow (a
  child holding ≥ 90% of its parent's items), and any category holding > 10% of the items;
* entity names (other than brands) that are a bare number or measure ("5 pack", "0.3mm,0.35mm");
* with the products' texts given (the API gives titles and catalogue brands), a brand that the
  title or catalogue brand of either product does not name, and a product type or material
  that is not in both titles as such (a type followed by another noun is a modifier: "3D
  Printer" in "3D Printer Filament"; "Zinc" in "Zinc Plated Steel" is a finish);
* a brand or material shared by products that have no category below the root in common (a
  brand that sells everything, "made of steel" across departments);
* co-interaction with fewer than ``MIN_CO_BUYERS`` other customers, or fewer than
  ``MIN_CO_SHARE`` of the history item's other buyers.

With none left, ``explain`` returns None: saying nothing beats saying something weak.
"""
from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from kgschema import (CATEGORY_RELATIONS, COMPATIBLE_WITH, HAS_BRAND, IN_CATEGORY, IN_PARENT_CATEGORY, INTERACTED,
                      IS_PRODUCT_TYPE, MADE_OF, make_uid, user_uid)

# Reason families in order of preference; relations not listed (colour, measures, model
# numbers, uses) never explain a recommendation on their own.
_FAMILY_RANK = {COMPATIBLE_WITH: 0, HAS_BRAND: 1, IS_PRODUCT_TYPE: 2, IN_CATEGORY: 3,
                IN_PARENT_CATEGORY: 3, MADE_OF: 4}
_TEMPLATES = {
    COMPATIBLE_WITH: "Fits {entity}, like {item} you bought",
    HAS_BRAND: "By {entity}, like {item} you bought",
    IS_PRODUCT_TYPE: "Same kind of product ({entity}) as {item} you bought",
    IN_CATEGORY: "Also in {entity}, like {item} you bought",
    IN_PARENT_CATEGORY: "Also in {entity}, like {item} you bought",
    MADE_OF: "Also made of {entity}, like {item} you bought",
}
MIN_CO_BUYERS = 2
MIN_CO_SHARE = 0.10  # of the history item's other buyers: fewer is chance, not a reason
MAX_CATEGORY_SHARE = 0.10  # a category holding more of the catalogue is department level
NARROWING = 0.90  # a child holding this share of its parent's items is no narrower than it
TITLE_CHARS = 60

_UNITS = {"mm", "cm", "m", "km", "in", "inch", "inches", "ft", "foot", "feet", "yd", "g", "kg", "mg", "lb",
          "lbs", "oz", "ml", "l", "gal", "v", "vac", "vdc", "w", "kw", "a", "ma", "mah", "hz", "khz", "mhz",
          "ohm", "k", "pack", "pk", "pcs", "pc", "piece", "pieces", "count", "ct", "x", "mil", "psi",
          "awg", "gauge", "pcs", "set", "sets", "st", "nd", "rd", "th", "percent", "deg"}
_NO_BRAND = {"generic", "unbranded", "unknown", "none", "n/a", "na", "no brand", "oem", "other", "various"}
# words that may follow a product type or material in a title without making it a modifier
_FOLLOWERS = {"for", "with", "and", "or", "by", "in", "of", "to", "from", "set", "kit", "pack", "assortment",
              "&", "-", "x"}
_FINISHES = {"plated", "plating", "coated", "coating", "finish", "finished", "tipped", "tip", "look", "effect",
             "color", "colored", "colour", "tone", "style"}
_TITLE_CUTS = re.compile(r"\s*(?:,|;|\||\(|\[|\s[-–—]\s|:\s)")
_CONNECTORS = {"for", "with", "and", "or", "of", "the", "a", "an", "by", "in", "to", "&", "-", "+"}
_MODEL_CODE = re.compile(r"(?<![\w-])[A-Za-z][A-Za-z-]*\d[\w-]*")


def short_title(title: str | None, limit: int = TITLE_CHARS) -> str | None:
    """A product title a sentence can carry: HTML entities decoded, the trailing full stop and
    everything after the first list separator (comma, dash, bracket) once the head is long
    enough, and at most ``limit`` characters cut at a word."""
    if not title:
        return None
    text = re.sub(r"\s+", " ", html.unescape(str(title))).strip().rstrip(".").strip()
    if not text:
        return None
    for m in _TITLE_CUTS.finditer(text):
        if m.start() >= 20:
            text = text[:m.start()]
            break
    if len(text) > limit:
        words = text[:limit + 1].split(" ")[:-1] or [text[:limit]]
        while len(words) > 1 and words[-1].lower() in _CONNECTORS:
            words.pop()
        text = " ".join(words).rstrip(",;:-") + "…"
    return text


def is_bare_measure(name: str) -> bool:
    """A number or measure rather than a thing: "5 pack", "1.75mm", "0.3mm,0.35mm,0.4mm"."""
    text = name.strip()
    m = re.match(r"[+\-]?[\d.,/]*\d[\d.,/]*\s*([A-Za-z\"']*)", text)
    if m and (m.group(1).lower().strip("\"'") in _UNITS or m.group(1) in ("", '"', "'")):
        return True
    letters = re.findall(r"[A-Za-z]+", text)
    return not any(len(w) >= 3 and w.lower() not in _UNITS for w in letters)


def _tokens(text: str) -> list[str]:
    out = []
    for w in re.findall(r"[a-z0-9]+(?:[-'][a-z0-9]+)*|&", html.unescape(text).lower()):
        if len(w) > 3 and w.endswith("ies"):
            w = w[:-3] + "y"
        elif len(w) > 3 and w.endswith(("ses", "xes", "ches", "shes")):
            w = w[:-2]
        elif len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.append(w)
    return out


def _find(haystack: list[str], needle: list[str]) -> list[int]:
    n = len(needle)
    return [k for k in range(len(haystack) - n + 1) if haystack[k:k + n] == needle] if n else []


def names_as_head(title: str, name: str) -> bool:
    """``name`` occurs in ``title`` as what the product is, not as a modifier of another noun
    ("Digital Caliper" in "Digital Caliper, 6 inch"; not "3D Printer" in "3D Printer Filament")."""
    words, target = _tokens(title), _tokens(name)
    for k in _find(words, target):
        nxt = words[k + len(target)] if k + len(target) < len(words) else None
        if nxt is None or nxt in _FOLLOWERS or nxt[0].isdigit():
            return True
    return False


def names_as_material(title: str, name: str) -> bool:
    """``name`` occurs in ``title`` and not as a finish ("Zinc Plated", "Chrome Finish")."""
    words, target = _tokens(title), _tokens(name)
    for k in _find(words, target):
        nxt = words[k + len(target)] if k + len(target) < len(words) else None
        if nxt not in _FINISHES:
            return True
    return False


def _mentions(text: str, name: str) -> bool:
    return bool(_find(_tokens(text), _tokens(name)))


def is_real_compatibility(name: str, brand_names: set[str]) -> bool:
    """A compatibility target a shopper owns: a model code ("Arrow T-50", "PHT150") or a known
    brand or product line, not a spec phrase ("dimensional accuracy of +/- 0.03mm")."""
    text = name.strip()
    if not text or is_bare_measure(text) or not text[0].isupper() or len(text) > 60:
        return False
    if re.search(r"\d\s*(?:mm|cm|in|inch|ft|v|w|a|g|kg|oz|ml|lb)\b|[%±]|\+/-", text, re.I):
        return False
    return bool(_MODEL_CODE.search(text)) or text.lower() in brand_names


def _pretty_category(name: str) -> str:
    """Display form of a category name; ancestors exported only by their key come as slugs
    ("chain-and-rope-fittings" -> "Chain & Rope Fittings")."""
    if name and name == name.lower() and " " not in name:
        return " & ".join(" ".join(w.capitalize() for w in part.split("-") if w) for part in name.split("-and-"))
    return name


@dataclass(frozen=True)
class PathNode:
    kind: str  # "user" | "item" | "entity"
    id: str
    name: str


@dataclass(frozen=True)
class PathEdge:
    source: str  # node ids
    target: str
    relation: str


@dataclass
class Explanation:
    item_id: str
    kind: str  # "shared_entity" | "co_interaction"
    text: str
    nodes: list[PathNode] = field(default_factory=list)
    edges: list[PathEdge] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"item_id": self.item_id, "kind": self.kind, "text": self.text,
                "nodes": [vars(n) for n in self.nodes], "edges": [vars(e) for e in self.edges]}


class ExplanationGraph:
    """Item–entity triples plus user–item interactions, indexed for path look-ups."""

    def __init__(self, user_ids: Sequence[str], item_ids: Sequence[str], histories: Sequence[Sequence[int]],
                 item_entity: np.ndarray, entity_ids: Sequence[str], entity_names: Sequence[str],
                 relations: Sequence[str], item_names: dict[str, str] | None = None):
        self.user_ids, self.item_ids = list(user_ids), list(item_ids)
        self.item_index = {iid: n for n, iid in enumerate(self.item_ids)}
        self.user_index = {uid: n for n, uid in enumerate(self.user_ids)}
        self.entity_ids, self.relations = list(entity_ids), list(relations)
        self.entity_index = {eid: n for n, eid in enumerate(self.entity_ids)}
        self.entity_names = list(entity_names) if entity_names else list(entity_ids)
        self.item_names = item_names or {}
        self.histories = [list(h) for h in histories]
        self.entities_of: dict[int, dict[int, int]] = defaultdict(dict)  # item -> entity -> relation
        self.entity_items: dict[int, set[int]] = defaultdict(set)
        for i, r, e in np.asarray(item_entity, dtype=np.int64).reshape(-1, 3):
            self.entities_of[int(i)].setdefault(int(e), int(r))
            self.entity_items[int(e)].add(int(i))
        self.users_of: dict[int, set[int]] = defaultdict(set)
        for u, h in enumerate(self.histories):
            for i in h:
                self.users_of[int(i)].add(u)
        self.relation_of: dict[int, int] = {}  # entity -> the relation items have it by
        for ents in self.entities_of.values():
            for e, r in ents.items():
                self.relation_of.setdefault(e, r)
        self.brand_names = {self.entity_names[e].lower() for e, r in self.relation_of.items()
                            if self.relations[r] == HAS_BRAND}
        self.category_entities: set[int] = set()
        self.root_categories: set[int] = set()
        self.usable = self._usable_entities()

    @classmethod
    def from_model(cls, model, item_names: dict[str, str] | None = None) -> "ExplanationGraph":
        """The model's graph, with the items it serves without having trained on them (if any)."""
        new = getattr(model, "new_item_ids", None) or []
        triples = model.item_entity
        if new:
            triples = np.vstack([np.asarray(model.item_entity, dtype=np.int64).reshape(-1, 3), model.new_item_entity])
        return cls(model.user_ids, list(model.item_ids) + list(new), model.history, triples, model.entity_ids,
                   model.entity_names, model.relations, item_names)

    def _usable_entities(self) -> set[int]:
        """Entities that may carry an explanation: no bare measures, and of the categories only
        those below the department level of this catalogue's tree (decided from its shape)."""
        usable = set()
        categories: dict[str, int] = {}
        for e, r in self.relation_of.items():
            rel = self.relations[r]
            # brands may look like measures ("3M"); the products' texts check them instead
            if rel not in _FAMILY_RANK or (rel != HAS_BRAND and is_bare_measure(self.entity_names[e])):
                continue
            if rel in CATEGORY_RELATIONS:
                categories[self.entity_ids[e].split(":", 1)[-1]] = e
            else:
                usable.add(e)
        self.category_entities = set(categories.values())
        if not categories:
            return usable
        size = {key: len(self.entity_items[e]) for key, e in categories.items()}
        categorised = len({i for e in categories.values() for i in self.entity_items[e]}) or 1
        by_depth: dict[int, list[str]] = defaultdict(list)
        for key in categories:
            by_depth[key.count("/") + 1].append(key)
        # Levels where one category holds most of the catalogue are roots; so are levels above
        # the first one present (a model may drop entities on more than half of the items).
        root_depth, deepest = 0, max(by_depth)
        while root_depth < deepest:
            level = by_depth.get(root_depth + 1)
            if level and max(size[k] for k in level) <= categorised / 2:
                break
            root_depth += 1
        broad: set[str] = set()
        for depth in sorted(by_depth):
            for key in by_depth[depth]:
                parent = key.rsplit("/", 1)[0] if "/" in key else None
                if (depth <= root_depth + 1 or size[key] > MAX_CATEGORY_SHARE * categorised
                        or (parent in broad and size[key] >= NARROWING * size.get(parent, 0))):
                    broad.add(key)
        usable.update(e for key, e in categories.items() if key not in broad)
        self.root_categories = {e for key, e in categories.items() if key.count("/") + 1 <= root_depth}
        return usable

    def _related(self, a: int, b: int) -> bool | None:
        """Whether two items share a category below the root (the same department at least);
        None when one of them has no category."""
        cats_a = {e for e in self.entities_of.get(a, {}) if e in self.category_entities}
        cats_b = {e for e in self.entities_of.get(b, {}) if e in self.category_entities}
        if not cats_a or not cats_b:
            return None
        return bool((cats_a & cats_b) - self.root_categories)

    def has_edge(self, edge: PathEdge) -> bool:
        """Whether ``edge`` (either direction) is in this graph."""
        a, b = edge.source, edge.target
        if edge.relation == INTERACTED:
            user, item = (a, b) if a.startswith("user:") else (b, a)
            u = self.user_index.get(user.removeprefix("user:"))
            i = self.item_index.get(item.removeprefix("item:"))
            return u is not None and i is not None and i in self.histories[u]
        item, ent = (a, b) if a.startswith("item:") else (b, a)
        i = self.item_index.get(item.removeprefix("item:"))
        e = self.entity_index.get(ent.removeprefix("entity:"))
        rel = self.entities_of.get(i, {}).get(e) if i is not None and e is not None else None
        return rel is not None and self.relations[rel] == edge.relation

    def _same_relation(self, a: int, b: int | None) -> bool:
        if b is None:
            return False
        return a == b or (self.relations[a] in CATEGORY_RELATIONS and self.relations[b] in CATEGORY_RELATIONS)

    def _title(self, i: int, names: Mapping[str, str]) -> str | None:
        iid = self.item_ids[i]
        return names.get(iid) or self.item_names.get(iid)

    def _item_node(self, i: int, names: Mapping[str, str]) -> PathNode:
        iid = self.item_ids[i]
        return PathNode("item", f"item:{iid}", short_title(self._title(i, names)) or "")

    def _supported(self, rel: str, name: str, items: Sequence[int], names: Mapping[str, str],
                   brands: Mapping[str, str]) -> bool:
        """Whether the products' own texts (where given) back the fact on each of ``items``."""
        if rel == HAS_BRAND and name.strip().lower() in _NO_BRAND:
            return False
        if rel == COMPATIBLE_WITH:
            return is_real_compatibility(name, self.brand_names)
        if rel in (HAS_BRAND, MADE_OF) and self._related(*items) is False:
            return False  # a brand or material shared across departments says little
        for i in items:
            title, brand = self._title(i, names), brands.get(self.item_ids[i])
            if rel == HAS_BRAND and (title is not None or brand):
                if not ((brand and _mentions(brand, name)) or (title and _mentions(title, name))):
                    return False
            elif rel == IS_PRODUCT_TYPE and title is not None and not names_as_head(title, name):
                return False
            elif rel == MADE_OF and title is not None and not names_as_material(title, name):
                return False
        return True

    def explain(self, item_id: str, user_id: str | None = None, history: Sequence[str] | None = None,
                names: Mapping[str, str] | None = None, brands: Mapping[str, str] | None = None,
                ) -> Explanation | None:
        """Best path from the user's history (stored, or the given item ids) to ``item_id``.

        ``names``: item id -> title and ``brands``: item id -> catalogue brand, for the target and
        the history (a batch look-up by the caller); they name the products and check the facts."""
        names, brands = names or {}, brands or {}
        target = self.item_index[item_id]
        u = self.user_index.get(user_id, -1) if user_id is not None else -1
        hist = [self.item_index[h] for h in (history or []) if h in self.item_index]
        if not hist and u >= 0:
            hist = self.histories[u]
        hist = [h for h in dict.fromkeys(reversed(hist)) if h != target]  # most recent first
        if not hist:
            return None
        user_node = PathNode("user", user_uid(user_id), str(user_id)) if user_id is not None else None

        candidates = []  # (key, h, entity)
        target_entities = self.entities_of.get(target, {})
        for recency, h in enumerate(hist):
            for e, rel in self.entities_of.get(h, {}).items():
                if e not in self.usable or not self._same_relation(rel, target_entities.get(e)):
                    continue
                candidates.append(((_FAMILY_RANK[self.relations[rel]], len(self.entity_items[e]), recency), h, e))
        for _, h, e in sorted(candidates, key=lambda c: c[0]):
            rel = self.relations[self.entities_of[h][e]]
            target_rel = self.relations[target_entities[e]]  # a category may be one's leaf, the other's ancestor
            name = self.entity_names[e]
            if rel in CATEGORY_RELATIONS:
                name = _pretty_category(name)
            if not self._supported(rel, name, (h, target), names, brands):
                continue
            ent = PathNode("entity", make_uid("entity", self.entity_ids[e]), name)
            hn, tn = self._item_node(h, names), self._item_node(target, names)
            nodes = [n for n in (user_node, hn, ent, tn) if n is not None]
            edges = ([PathEdge(user_node.id, hn.id, INTERACTED)] if user_node else []) + [
                PathEdge(hn.id, ent.id, rel), PathEdge(tn.id, ent.id, target_rel)]
            text = _TEMPLATES[rel].format(entity=name, item=_item_phrase(hn.name))
            return Explanation(item_id, "shared_entity", text, nodes, edges)

        buyers_of_target = self.users_of.get(target, set()) - {u}
        co = None  # (n co-buyers, -recency, h, other user, other buyers of h)
        for recency, h in enumerate(hist):
            buyers = self.users_of.get(h, set()) - {u}
            shared = buyers & buyers_of_target
            if (len(shared) >= MIN_CO_BUYERS and len(shared) >= MIN_CO_SHARE * len(buyers)
                    and (co is None or (len(shared), -recency) > co[:2])):
                co = (len(shared), -recency, h, min(shared), len(buyers))
        if co is None:
            return None
        n, _, h, v, m = co
        hn, tn = self._item_node(h, names), self._item_node(target, names)
        vn = PathNode("user", user_uid(self.user_ids[v]), "another customer")
        nodes = [n for n in (user_node, hn, vn, tn) if n is not None]
        edges = ([PathEdge(user_node.id, hn.id, INTERACTED)] if user_node else []) + [
            PathEdge(vn.id, hn.id, INTERACTED), PathEdge(vn.id, tn.id, INTERACTED)]
        text = f"{n} of the {m} other customers who bought {_item_phrase(hn.name)} also bought this"
        return Explanation(item_id, "co_interaction", text, nodes, edges)


def _item_phrase(short: str) -> str:
    if not short:
        return "something"
    return "t" + short[1:] if short.lower().startswith("the ") else f"the {short}"
