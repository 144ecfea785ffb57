"""Graph-store layer: schema, Cypher, batched upserts and the local ArcadeDB server (no Django here)."""
from .schema import label_for_uid, make_uid, product_uid, user_uid
from .store import ExportedGraph, GraphConfig, GraphStore, connect

__all__ = [
    "ExportedGraph", "GraphConfig", "GraphStore", "connect",
    "label_for_uid", "make_uid", "product_uid", "user_uid",
]
