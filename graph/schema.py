"""Graph schema: node labels, relationship types, uids and the DDL both Neo4j 5 and ArcadeDB accept.

Every node carries our own ``uid`` (never ``id()``/``elementId()``), prefixed with its kind so
the label can be derived from the uid alone: ``product:42``, ``user:7``, ``brand:stanley``,
``category:industrial-scientific/fasteners/staples``, ``material:steel``.
"""
from __future__ import annotations

import re

from kgschema import NODE_LABELS, PREFIX_LABELS, RELATIONSHIP_TYPES  # noqa: F401  (the vocabulary)
from kgschema import label_for_uid, make_uid, product_uid, user_uid  # noqa: F401

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



