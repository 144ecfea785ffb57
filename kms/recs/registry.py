"""The model registry's reads: the active version, the versions as the API lists them."""
from __future__ import annotations

from .models import ModelVersion


def active_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(state=ModelVersion.State.ACTIVE).order_by("-activated_at").first()


def valid_ndcg(version: ModelVersion | None) -> float:
    """The validation NDCG@20 of a version's served (fused) ranking; -inf for no version."""
    if version is None:
        return float("-inf")
    valid = version.metrics.get("valid") or {}
    return float((valid.get("fusion") or {}).get("ndcg@20", 0.0))


def recent_versions(limit: int = 50) -> list[ModelVersion]:
    """Model versions, newest first."""
    return list(ModelVersion.objects.order_by("-id")[:limit])


def find_version(version_id: int) -> ModelVersion | None:
    return ModelVersion.objects.filter(pk=version_id).first()


def version_dict(v: ModelVersion) -> dict:
    return {"id": v.pk, "state": v.state, "params": v.params, "metrics": v.metrics, "history": v.history,
            "n_users": v.n_users, "n_items": v.n_items, "n_interactions": v.n_interactions,
            "train_seconds": v.train_seconds, "message": v.message, "created_at": v.created_at,
            "activated_at": v.activated_at}
