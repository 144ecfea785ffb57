"""Curation actions: approve/reject/edit facts; create, rename, merge, split, delete entities; revert.

Each action validates its input, then in one database transaction changes the rows, records an
``AuditEntry`` (before → after JSON) and writes ``OutboxEntry`` rows describing the graph-store
change. After the commit ``deliver_outbox()`` applies pending rows to the graph store; the
periodic Celery task ``deliver_graph_outbox`` calls it too, so a graph outage delays an edit
but never loses it. Views, management commands and tasks all call these functions.

The actions live along their seams: ``audit`` (vocabulary, snapshots, the audit entry), ``outbox``
(graph-store delivery), ``facts``, ``entities``, ``revert`` (a table of handlers, one per action),
``reads`` (the portal's queries). This module is their interface.
"""
from __future__ import annotations

from .audit import (
    ENTITY_TYPES, FACT_RELATIONS, SYNC_CHUNK, Action, CurationError, FACT_EDITABLE, fact_snapshot,
    entity_snapshot, _audit
)
from .outbox import (
    _enqueue, _enqueue_entity, _enqueue_products, _deliver_after_commit, _deliver_quietly, _edge_status,
    product_graph_rows, _apply, _sync_products, _push_again, DeliveryResult, _delivery_lock,
    deliver_outbox
)
from .facts import (
    _locked_facts, set_fact_status, _live_entity, edit_fact
)
from .entities import (
    entity_uid, _clean_aliases, create_entity, rename_entity, merge_entities, split_entity,
    delete_entity
)
from .revert import (
    _restore_facts, _check_entity, _revert_facts, _revert_create, _revert_rename, _revert_merge,
    _revert_split, _revert_delete, REVERT_HANDLERS, revert
)
from .reads import (
    entity_queryset, review_queue, source_text, highlighted_span, graph_neighbourhood, _kind
)

__all__ = [
    "ENTITY_TYPES", "FACT_RELATIONS", "SYNC_CHUNK", "Action", "CurationError", "FACT_EDITABLE",
    "fact_snapshot", "entity_snapshot", "_audit", "_enqueue", "_enqueue_entity", "_enqueue_products",
    "_deliver_after_commit", "_deliver_quietly", "_edge_status", "product_graph_rows", "_apply",
    "_sync_products", "_push_again", "DeliveryResult", "_delivery_lock", "deliver_outbox",
    "_locked_facts", "set_fact_status", "_live_entity", "edit_fact", "entity_uid", "_clean_aliases",
    "create_entity", "rename_entity", "merge_entities", "split_entity", "delete_entity",
    "_restore_facts", "_check_entity", "_revert_facts", "_revert_create", "_revert_rename",
    "_revert_merge", "_revert_split", "_revert_delete", "REVERT_HANDLERS", "revert", "entity_queryset",
    "review_queue", "source_text", "highlighted_span", "graph_neighbourhood", "_kind",
]
