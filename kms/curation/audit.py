"""Curation's shared ground: the vocabulary curators pick from, the error they see, the snapshots the
audit trail stores (and revert restores), and writing an audit entry."""
from __future__ import annotations

import logging
from collections.abc import Iterable


import kgschema
from kms.knowledge.models import Entity, Fact

from .models import AuditEntry

log = logging.getLogger(__name__)

ENTITY_TYPES = tuple(t for t in kgschema.ENTITY_TYPES if t != kgschema.ATTRIBUTE_VALUE)  # curators pick these
FACT_RELATIONS = kgschema.FACT_RELATIONS
SYNC_CHUNK = 200
Action = AuditEntry.Action


class CurationError(ValueError):
    """The request cannot be carried out as asked (shown to the curator, HTTP 400)."""


# --- snapshots: what the audit trail stores and revert restores ---------------------------------
FACT_EDITABLE = ("relation", "entity_id", "value", "unit", "status", "curated_by_id")


def fact_snapshot(f: Fact) -> dict:
    return {"id": f.pk, "product_id": f.product_id, "relation": f.relation, "entity_id": f.entity_id,
            "entity_uid": f.entity.uid, "value": f.value, "unit": f.unit, "field": f.field,
            "start": f.start, "end": f.end, "text": f.text, "extractor": f.extractor,
            "extractor_version": f.extractor_version, "confidence": f.confidence, "status": f.status,
            "curated_by_id": f.curated_by_id}


def entity_snapshot(e: Entity) -> dict:
    return {"id": e.pk, "uid": e.uid, "type": e.type, "name": e.name, "aliases": list(e.aliases),
            "status": e.status, "merged_into_id": e.merged_into_id}


def _audit(user, action: str, summary: str, before: dict, after: dict, reason: str,
           entity_uids: Iterable[str], revert_of: AuditEntry | None = None) -> AuditEntry:
    return AuditEntry.objects.create(
        user=user if user is not None and user.is_authenticated else None, action=action,
        summary=summary[:300], before=before, after=after, reason=reason or "",
        entity_uids=sorted(set(entity_uids)), revert_of=revert_of)
