"""The graph store: one small class over the official neo4j driver.

One code path for Neo4j 5 and ArcadeDB's Bolt endpoint: parameters always, ``UNWIND $rows``
batches inside ``execute_write`` (the driver retries transient errors such as ArcadeDB's
DeadlockDetected with exponential backoff), MERGE on our own ``uid`` and no APOC.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from neo4j import GraphDatabase
from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError

from .schema import CONSTRAINTS, INDEXES, checked_name, label_for_uid

log = logging.getLogger(__name__)

RETRYABLE = (TransientError, ServiceUnavailable, SessionExpired)


@dataclass
class GraphConfig:
    uri: str
    user: str = "neo4j"
    password: str = ""
    database: str | None = None
    batch_size: int = 500
    max_retry_time: float = 30.0


@dataclass
class ExportedGraph:
    """The user–item–entity graph as integer edge lists (indices into the id lists)."""

    user_ids: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    entity_ids: list[str] = field(default_factory=list)
    entity_names: list[str] = field(default_factory=list)  # display names, parallel to entity_ids
    relations: list[str] = field(default_factory=list)
    interactions: list[tuple[int, int, float]] = field(default_factory=list)  # (user, item, ts)
    item_entity: list[tuple[int, int, int]] = field(default_factory=list)  # (item, relation, entity)


def _chunks(rows: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


class GraphStore:
    """Schema, batched idempotent upserts and the reads later parts need."""

    # Full-text and vector search differ between Neo4j and ArcadeDB; callers check this flag.
    supports_fulltext = False

    def __init__(self, config: GraphConfig):
        self.config = config
        self._driver = GraphDatabase.driver(
            config.uri,
            auth=(config.user, config.password),
            max_transaction_retry_time=config.max_retry_time,
            connection_timeout=5.0,
        )

    # -- plumbing ---------------------------------------------------------------------------
    def close(self) -> None:
        self._driver.close()

    def __enter__(self) -> "GraphStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _session(self):
        return self._driver.session(database=self.config.database)

    def read(self, query: str, **params) -> list[dict]:
        with self._session() as session:
            return session.execute_read(lambda tx: [r.data() for r in tx.run(query, params)])

    def write(self, query: str, **params) -> list[dict]:
        with self._session() as session:
            return session.execute_write(lambda tx: [r.data() for r in tx.run(query, params)])

    def write_many(self, statements: Sequence[tuple[str, dict]]) -> None:
        """Several statements in one transaction (all or nothing)."""

        def work(tx):
            for query, params in statements:
                tx.run(query, params).consume()

        with self._session() as session:
            session.execute_write(work)

    def ping(self) -> bool:
        try:
            self._driver.verify_connectivity()
            self.read("RETURN 1 AS ok")
            return True
        except Exception as exc:  # readiness must answer, not raise
            log.warning("graph store not reachable: %s", exc)
            return False

    def server_agent(self) -> str:
        return self._driver.get_server_info().agent

    def ensure_schema(self) -> None:
        for statement in CONSTRAINTS + INDEXES:
            self.write(statement)

    def clear(self) -> None:
        """Delete everything (tests and demo resets)."""
        while self.write("MATCH (n) WITH n LIMIT 5000 DETACH DELETE n RETURN count(*) AS c")[0]["c"]:
            pass

    # -- writes -----------------------------------------------------------------------------
    @staticmethod
    def _node_statements(rows: Sequence[dict]) -> list[tuple[str, dict]]:
        by_label: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            by_label[label_for_uid(row["uid"])].append({"uid": row["uid"], "props": row.get("props") or {}})
        return [
            (f"UNWIND $rows AS r MERGE (n:{checked_name(label)} {{uid: r.uid}}) SET n += r.props", {"rows": group})
            for label, group in by_label.items()
        ]

    @staticmethod
    def _relationship_statements(rows: Sequence[dict]) -> list[tuple[str, dict]]:
        groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
        for row in rows:
            key = (checked_name(row["type"]), label_for_uid(row["src"]), label_for_uid(row["dst"]))
            groups[key].append({"src": row["src"], "dst": row["dst"], "props": row.get("props") or {}})
        return [
            (
                f"UNWIND $rows AS r MATCH (a:{src} {{uid: r.src}}) MATCH (b:{dst} {{uid: r.dst}}) "
                f"MERGE (a)-[e:{rel}]->(b) SET e += r.props",
                {"rows": group},
            )
            for (rel, src, dst), group in groups.items()
        ]

    def upsert_nodes(self, rows: Sequence[dict]) -> int:
        """rows: ``{"uid": ..., "props": {...}}``; MERGE on uid, properties overwritten."""
        for chunk in _chunks(list(rows), self.config.batch_size):
            self.write_many(self._node_statements(chunk))
        return len(rows)

    def upsert_relationships(self, rows: Sequence[dict]) -> int:
        """rows: ``{"src": uid, "dst": uid, "type": REL, "props": {...}}``; both ends must exist."""
        for chunk in _chunks(list(rows), self.config.batch_size):
            self.write_many(self._relationship_statements(chunk))
        return len(rows)

    def replace_product_facts(self, product_uids: Sequence[str], nodes: Sequence[dict], rels: Sequence[dict],
                              include_curated: bool = False) -> None:
        """Make the graph hold exactly these facts for these products, atomically.

        By default (re-extraction) only automatic facts are replaced: relationships with
        ``status`` 'approved' or 'rejected' are never removed or overwritten. With
        ``include_curated`` (curation passes the database's whole state) curated ones are
        replaced too. Interactions and imported external knowledge are never touched here.
        """
        statuses = ["auto", "approved", "rejected"] if include_curated else ["auto"]
        rels = [r for r in rels if r.get("props", {}).get("status", "auto") in statuses]
        statements = [
            (
                "UNWIND $uids AS uid MATCH (p:Product {uid: uid})-[e]->() "
                "WHERE type(e) <> 'INTERACTED' AND coalesce(e.status, 'auto') IN $statuses DELETE e",
                {"uids": list(product_uids), "statuses": statuses},
            )
        ] if product_uids else []  # products new to the graph have nothing to replace
        products = [n for n in nodes if label_for_uid(n["uid"]) == "Product"]
        own = {n["uid"] for n in products}
        statements += self._node_statements([n for n in nodes if n["uid"] not in own])
        statements += self._product_statements(products, [r for r in rels if r["src"] in own])
        statements += self._relationship_statements([r for r in rels if r["src"] not in own])
        self.write_many(statements)

    @staticmethod
    def _product_statements(products: Sequence[dict], rels: Sequence[dict]) -> list[tuple[str, dict]]:
        """Product nodes and their outgoing relationships in one statement: each product is looked up
        once, not once per relationship (a third fewer index lookups, a twelfth of the statements).
        One FOREACH per (type, end label); the end node is MERGEd, so a relationship can never be
        dropped silently for want of its end node."""
        kinds = sorted({(checked_name(r["type"]), label_for_uid(r["dst"])) for r in rels})
        slot = {kind: f"r{n}" for n, kind in enumerate(kinds)}
        rows = {p["uid"]: {"uid": p["uid"], "props": p.get("props") or {}, **{s: [] for s in slot.values()}}
                for p in products}
        for r in rels:
            dst = r["dst"]
            rows[r["src"]][slot[(r["type"], label_for_uid(dst))]].append({"dst": dst, "props": r.get("props") or {}})
        query = "UNWIND $rows AS r MERGE (a:Product {uid: r.uid}) SET a += r.props" + "".join(
            f" FOREACH (d IN r.r{int(n)} | MERGE (b:{checked_name(label)} {{uid: d.dst}}) "
            f"MERGE (a)-[e:{checked_name(rel)}]->(b) SET e += d.props)" for n, (rel, label) in enumerate(kinds))
        return [(query, {"rows": list(rows.values())})] if rows else []

    def record_interactions(self, rows: Sequence[dict]) -> int:
        """rows: ``{"user": uid, "product": uid, "ts": float, "type": str, "value": float}``.

        One INTERACTED relationship per (user, product) with its first/last time and count;
        replaying the same event (same ``event_id``) is a no-op.
        """
        query = (
            "UNWIND $rows AS r MERGE (u:User {uid: r.user}) "
            "WITH r, u MATCH (p:Product {uid: r.product}) "
            "MERGE (u)-[e:INTERACTED]->(p) "
            "ON CREATE SET e.first_ts = r.ts, e.count = 0, e.events = [] "
            "WITH r, e WHERE NOT r.event_id IN e.events "
            "SET e.count = e.count + 1, e.last_ts = r.ts, e.type = r.type, e.value = r.value, "
            "e.events = e.events + r.event_id, "
            "e.first_ts = CASE WHEN r.ts < e.first_ts THEN r.ts ELSE e.first_ts END"
        )
        for chunk in _chunks(list(rows), self.config.batch_size):
            self.write(query, rows=[{"value": 1.0, "type": "view", **r} for r in chunk])
        return len(rows)

    def delete_node(self, uid: str) -> None:
        self.write(f"MATCH (n:{label_for_uid(uid)} {{uid: $uid}}) DETACH DELETE n", uid=uid)

    def set_relationship_status(self, src: str, rel_type: str, dst: str, props: dict) -> None:
        """Set properties (e.g. a curated status) on one relationship, creating it if needed."""
        self.write_many(self._relationship_statements([{"src": src, "dst": dst, "type": rel_type, "props": props}]))

    def delete_relationship(self, src: str, rel_type: str, dst: str) -> None:
        self.write(
            f"MATCH (a:{label_for_uid(src)} {{uid: $src}})-[e:{checked_name(rel_type)}]->"
            f"(b:{label_for_uid(dst)} {{uid: $dst}}) DELETE e",
            src=src,
            dst=dst,
        )

    # -- reads ------------------------------------------------------------------------------
    def node(self, uid: str) -> dict | None:
        rows = self.read(f"MATCH (n:{label_for_uid(uid)} {{uid: $uid}}) RETURN properties(n) AS props", uid=uid)
        return rows[0]["props"] if rows else None

    def count_nodes(self) -> dict[str, int]:
        return {
            label: self.read(f"MATCH (n:{label}) RETURN count(n) AS c")[0]["c"]
            for label in ("Product", "User", "Brand", "Category", "Entity")
        }

    def count_relationships(self, rel_type: str) -> int:
        return self.read(f"MATCH ()-[e:{checked_name(rel_type)}]->() RETURN count(e) AS c")[0]["c"]

    def relationships_of(self, uid: str) -> list[dict]:
        """Outgoing relationships of one node with their properties."""
        return self.read(
            f"MATCH (n:{label_for_uid(uid)} {{uid: $uid}})-[e]->(m) "
            "RETURN type(e) AS type, m.uid AS dst, properties(e) AS props ORDER BY type, dst",
            uid=uid,
        )

    def neighbours(self, uid: str, limit: int = 50, rel_types: Sequence[str] | None = None) -> list[dict]:
        where = ""
        params: dict[str, Any] = {"uid": uid, "limit": int(limit)}
        if rel_types:
            where = "WHERE type(e) IN $types "
            params["types"] = [checked_name(t) for t in rel_types]
        return self.read(
            f"MATCH (n:{label_for_uid(uid)} {{uid: $uid}})-[e]-(m) {where}"
            "RETURN m.uid AS uid, labels(m)[0] AS label, coalesce(m.name, m.title, m.uid) AS name, "
            "type(e) AS rel, CASE WHEN startNode(e) = n THEN 'out' ELSE 'in' END AS direction, "
            "properties(e) AS props ORDER BY rel, uid LIMIT $limit",
            **params,
        )

    def paths(self, src: str, dst: str, max_hops: int = 3, limit: int = 5) -> list[dict]:
        """Shortest paths first, up to ``max_hops`` (1..3) relationships long."""
        hops = max(1, min(int(max_hops), 3))
        rows = self.read(
            f"MATCH (a:{label_for_uid(src)} {{uid: $src}}) MATCH (b:{label_for_uid(dst)} {{uid: $dst}}) "
            f"MATCH p = (a)-[*1..{hops}]-(b) "
            "RETURN [n IN nodes(p) | {uid: n.uid, label: labels(n)[0], name: coalesce(n.name, n.title, n.uid)}] AS nodes, "
            "[e IN relationships(p) | type(e)] AS rels, length(p) AS hops ORDER BY hops LIMIT $limit",
            src=src,
            dst=dst,
            limit=int(limit),
        )
        return rows

    def export_training_graph(self, include_rejected: bool = False) -> ExportedGraph:
        """Users, products and entities as integer edge lists, interactions in time order."""
        interactions = self.read(
            "MATCH (u:User)-[e:INTERACTED]->(p:Product) "
            "RETURN u.uid AS user, p.uid AS item, e.first_ts AS ts"
        )
        facts = self.read(
            "MATCH (p:Product)-[e]->(x) WHERE type(e) <> 'INTERACTED' "
            "RETURN p.uid AS item, type(e) AS rel, x.uid AS entity, coalesce(x.name, x.uid) AS name, "
            "coalesce(e.status, 'auto') AS status"
        )
        items = self.read("MATCH (p:Product) RETURN p.uid AS uid")
        out = ExportedGraph()
        out.item_ids = sorted(r["uid"] for r in items)
        item_index = {uid: n for n, uid in enumerate(out.item_ids)}
        interactions.sort(key=lambda r: (r["user"], r["ts"] if r["ts"] is not None else 0.0, r["item"]))
        user_index: dict[str, int] = {}
        for r in interactions:
            u = user_index.setdefault(r["user"], len(user_index))
            out.interactions.append((u, item_index[r["item"]], float(r["ts"] or 0.0)))
        out.user_ids = list(user_index)
        entity_index: dict[str, int] = {}
        relation_index: dict[str, int] = {}
        for r in facts:
            if r["status"] == "rejected" and not include_rejected:
                continue
            e = entity_index.setdefault(r["entity"], len(entity_index))
            if e == len(out.entity_names):
                out.entity_names.append(r["name"])
            rel = relation_index.setdefault(r["rel"], len(relation_index))
            out.item_entity.append((item_index[r["item"]], rel, e))
        out.entity_ids = list(entity_index)
        out.relations = list(relation_index)
        return out

    # -- curation ---------------------------------------------------------------------------
    def merge_nodes(self, keep_uid: str, drop_uid: str) -> int:
        """Move every relationship of ``drop_uid`` onto ``keep_uid``, then delete ``drop_uid``.

        Relationship types cannot be parameters, so relationships are grouped by type, direction
        and the other end's label. Parallel relationships merge (properties of the moved one win).
        Idempotent: once ``drop_uid`` is gone this does nothing. Returns relationships moved.
        """
        if keep_uid == drop_uid:
            return 0
        keep_label, drop_label = label_for_uid(keep_uid), label_for_uid(drop_uid)
        rows = self.read(
            f"MATCH (d:{drop_label} {{uid: $uid}})-[e]-(m) "
            "RETURN type(e) AS type, CASE WHEN startNode(e) = d THEN 'out' ELSE 'in' END AS direction, "
            "m.uid AS other, properties(e) AS props",
            uid=drop_uid,
        )
        groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
        for r in rows:
            if r["other"] is None:
                continue
            other = keep_uid if r["other"] == drop_uid else r["other"]
            groups[(checked_name(r["type"]), r["direction"], label_for_uid(other))].append(
                {"other": other, "props": r["props"] or {}})
        statements = []
        for (rel, direction, other_label), group in groups.items():
            edge = f"(k)-[e:{rel}]->(o)" if direction == "out" else f"(o)-[e:{rel}]->(k)"
            statements.append((
                f"UNWIND $rows AS r MATCH (k:{keep_label} {{uid: $keep}}) "
                f"MATCH (o:{other_label} {{uid: r.other}}) MERGE {edge} SET e += r.props",
                {"keep": keep_uid, "rows": group},
            ))
        statements.append((f"MATCH (d:{drop_label} {{uid: $uid}}) DETACH DELETE d", {"uid": drop_uid}))
        self.write_many(statements)
        return sum(len(g) for g in groups.values())


def connect(config: GraphConfig, wait_seconds: float = 0.0) -> GraphStore:
    """A store whose server answered (waiting up to ``wait_seconds`` for it to come up)."""
    store = GraphStore(config)
    deadline = time.monotonic() + wait_seconds
    while True:
        if store.ping() or time.monotonic() >= deadline:
            return store
        time.sleep(0.5)
