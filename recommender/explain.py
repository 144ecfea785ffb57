"""Why was this recommended? The best short path (≤ 3 hops) from the user to the item.

Paths start at the user and go through an item of their history:

* shared entity:  user –INTERACTED→ h –REL→ entity ←REL– item   (brand, category, compatibility…)
* co-interaction: user –INTERACTED→ h ←INTERACTED– other user –INTERACTED→ item

Every edge is read from the in-memory graph (``item_entity`` triples and the interaction
histories), so the path exists there. Preference: the most specific shared entity (fewest
items carry it; COMPATIBLE_WITH and HAS_BRAND before categories), then co-interaction with the
most co-buyers, ties broken by the most recent history item.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

INTERACTED = "INTERACTED"
_RELATION_RANK = {"COMPATIBLE_WITH": 0, "HAS_BRAND": 1, "HAS_MODEL_NUMBER": 1, "IN_CATEGORY": 2,
                  "IS_PRODUCT_TYPE": 2, "USED_FOR": 3, "MADE_OF": 4}
_TEMPLATES = {
    "HAS_BRAND": "Same brand ({entity}) as {item} you bought",
    "IN_CATEGORY": "Also in {entity}, like {item} you bought",
    "COMPATIBLE_WITH": "Compatible with {entity}, like {item} you bought",
    "IS_PRODUCT_TYPE": "Another {entity}, like {item} you bought",
    "USED_FOR": "Also for {entity}, like {item} you bought",
    "MADE_OF": "Also made of {entity}, like {item} you bought",
}


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

    @classmethod
    def from_model(cls, model, item_names: dict[str, str] | None = None) -> "ExplanationGraph":
        """The model's graph, with the items it serves without having trained on them (if any)."""
        new = getattr(model, "new_item_ids", None) or []
        triples = model.item_entity
        if new:
            triples = np.vstack([np.asarray(model.item_entity, dtype=np.int64).reshape(-1, 3), model.new_item_entity])
        return cls(model.user_ids, list(model.item_ids) + list(new), model.history, triples, model.entity_ids,
                   model.entity_names, model.relations, item_names)

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

    def _item_node(self, i: int) -> PathNode:
        iid = self.item_ids[i]
        return PathNode("item", f"item:{iid}", self.item_names.get(iid, iid))

    def explain(self, item_id: str, user_id: str | None = None, history: Sequence[str] | None = None) -> Explanation | None:
        """Best path from the user's history (stored, or the given item ids) to ``item_id``."""
        target = self.item_index[item_id]
        u = self.user_index.get(user_id, -1) if user_id is not None else -1
        hist = [self.item_index[h] for h in (history or []) if h in self.item_index]
        if not hist and u >= 0:
            hist = self.histories[u]
        hist = [h for h in dict.fromkeys(reversed(hist)) if h != target]  # most recent first
        if not hist:
            return None
        user_node = PathNode("user", f"user:{user_id}", str(user_id)) if user_id is not None else None

        best = None  # (key, h, entity)
        target_entities = self.entities_of.get(target, {})
        for recency, h in enumerate(hist):
            for e, rel in self.entities_of.get(h, {}).items():
                if target_entities.get(e) != rel:
                    continue
                key = (_RELATION_RANK.get(self.relations[rel], 5), len(self.entity_items[e]), recency)
                if best is None or key < best[0]:
                    best = (key, h, e)
        if best is not None:
            _, h, e = best
            rel = self.relations[self.entities_of[h][e]]
            ent = PathNode("entity", f"entity:{self.entity_ids[e]}", self.entity_names[e])
            hn, tn = self._item_node(h), self._item_node(target)
            nodes = [n for n in (user_node, hn, ent, tn) if n is not None]
            edges = ([PathEdge(user_node.id, hn.id, INTERACTED)] if user_node else []) + [
                PathEdge(hn.id, ent.id, rel), PathEdge(tn.id, ent.id, rel)]
            text = _TEMPLATES.get(rel, "Shares {entity} with {item} you bought").format(entity=ent.name, item=hn.name)
            return Explanation(item_id, "shared_entity", text, nodes, edges)

        buyers_of_target = self.users_of.get(target, set()) - {u}
        co = None  # (n co-buyers, -recency, h, other user)
        for recency, h in enumerate(hist):
            shared = (self.users_of.get(h, set()) & buyers_of_target)
            if shared and (co is None or (len(shared), -recency) > co[:2]):
                co = (len(shared), -recency, h, min(shared))
        if co is None:
            return None
        n, _, h, v = co
        hn, tn = self._item_node(h), self._item_node(target)
        vn = PathNode("user", f"user:{self.user_ids[v]}", "another customer")
        nodes = [n for n in (user_node, hn, vn, tn) if n is not None]
        edges = ([PathEdge(user_node.id, hn.id, INTERACTED)] if user_node else []) + [
            PathEdge(vn.id, hn.id, INTERACTED), PathEdge(vn.id, tn.id, INTERACTED)]
        who = "1 customer" if n == 1 else f"{n} customers"
        text = f"{who} who bought {hn.name} also bought this"
        return Explanation(item_id, "co_interaction", text, nodes, edges)
