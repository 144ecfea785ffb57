"""Graph schema: node labels, relationship types, uids and the DDL both Neo4j 5 and ArcadeDB accept.

Every node carries our own ``uid`` (never ``id()``/``elementId()``), prefixed with its kind so
the label can be derived from the uid alone: ``product:42``, ``user:7``, ``brand:stanley``,
``category:industrial-scientific/fasteners/staples``, ``material:steel``.
"""
from __future__ import annotations

import re

NODE_LABELS = ("Product", "User", "Brand", "Category", "Entity")

# uid prefix -> label; any other prefix is an Entity of that type (material:, color:, …)
PREFIX_LABELS = {"product": "Product", "user": "User", "brand": "Brand", "category": "Category"}
# imported knowledge (external:<id>) and extracted entities share the Entity label

RELATIONSHIP_TYPES = (
    "HAS_BRAND",
    "IN_CATEGORY",
    "SUBCATEGORY_OF",
    "MADE_OF",
    "HAS_COLOR",
    "HAS_ATTRIBUTE",
    "COMPATIBLE_WITH",
    "USED_FOR",
    "HAS_MODEL_NUMBER",
    "IS_PRODUCT_TYPE",
    "INTERACTED",
    "RELATED_TO",  # imported external knowledge (typed by the `relation` property)
)

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")

CONSTRAINTS = [
    f"CREATE CONSTRAINT {label.lower()}_uid IF NOT EXISTS FOR (n:{label}) REQUIRE n.uid IS UNIQUE"
    for label in NODE_LABELS
]
INDEXES = [
    "CREATE INDEX entity_type IF NOT EXISTS FOR (n:Entity) ON (n.type)",
    "CREATE INDEX brand_name IF NOT EXISTS FOR (n:Brand) ON (n.name)",
    "CREATE INDEX entity_name IF NOT EXISTS FOR (n:Entity) ON (n.name)",
]


def checked_name(name: str) -> str:
    """Labels and relationship types cannot be Cypher parameters: allow only plain identifiers."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"invalid label or relationship type: {name!r}")
    return name


def label_for_uid(uid: str) -> str:
    prefix, sep, _ = uid.partition(":")
    if not sep:
        raise ValueError(f"uid without a kind prefix: {uid!r}")
    return PREFIX_LABELS.get(prefix, "Entity")


def make_uid(kind: str, key: str) -> str:
    return f"{kind.lower()}:{key}"


def product_uid(external_id: str) -> str:
    return make_uid("product", str(external_id))


def user_uid(external_id: str) -> str:
    return make_uid("user", str(external_id))
