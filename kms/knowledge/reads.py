"""Reads the API shows: ingestion jobs and entities looked up by name."""
from __future__ import annotations

from django.db.models import Q

from .models import Entity, IngestionJob


def recent_jobs(limit: int = 50) -> list[IngestionJob]:
    """Ingestion jobs, newest first."""
    return list(IngestionJob.objects.order_by("-id")[:limit])


def find_job(job_id: int) -> IngestionJob | None:
    return IngestionJob.objects.filter(pk=job_id).first()


def entities_named(name: str, type: str | None = None, limit: int = 50) -> list[Entity]:
    """Entities whose name or one of whose aliases is ``name`` (any case), optionally of one type."""
    qs = Entity.objects.select_related("merged_into").filter(Q(name__iexact=name) | Q(aliases__icontains=name))
    if type:
        qs = qs.filter(type=type.upper())
    wanted = name.lower()
    exact = [e for e in qs[:200] if e.name.lower() == wanted or any(a.lower() == wanted for a in e.aliases)]
    return exact[:limit]


def entity_dict(e: Entity) -> dict:
    return {"uid": e.uid, "type": e.type, "name": e.name, "aliases": e.aliases, "status": e.status,
            "merged_into": e.merged_into.uid if e.merged_into_id else None}
