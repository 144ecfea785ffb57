"""Experiments between model versions: start, stop, promote, roll back (each audited), and the
running experiment's configuration as serving reads it (cached per process, no SQL per request).

The REST API (``kms.experiments.api``), ``manage.py experiment`` and the portal all call these.
"""
from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from recommender.online import mixing_sd, users_per_arm

from kms.curation.models import AuditEntry
from kms.recs import services as recs
from kms.recs.models import ModelVersion

from .assignment import arm_for
from .models import Arm, Experiment

CONTROL = "control"
SERVABLE = (ModelVersion.State.READY, ModelVersion.State.ACTIVE, ModelVersion.State.REJECTED)
# Audit actions (kms.curation.models.AuditEntry.action holds them; not curation actions, so not revertible there)
START, STOP, PROMOTE, ROLLBACK = "experiment_start", "experiment_stop", "experiment_promote", "experiment_rollback"
ACTIONS = (START, STOP, PROMOTE, ROLLBACK)


class ExperimentError(Exception):
    """A request the experiment's state does not allow (the API answers 409, the command exits 1)."""


def _audit(user, action: str, experiment: Experiment, summary: str, before: dict, after: dict, reason: str = "",
           via: str = "") -> AuditEntry:
    before, after = (json.loads(json.dumps(d, cls=DjangoJSONEncoder)) for d in (before, after))  # datetimes
    return AuditEntry.objects.create(
        user=user if user is not None and getattr(user, "is_authenticated", False) else None, action=action,
        summary=f"{summary}{f' (via {via})' if via else ''}"[:300], before=before, after=after, reason=reason or "",
        entity_uids=[f"experiment:{experiment.pk}"])


def experiment_dict(e: Experiment) -> dict:
    return {"id": e.pk, "name": e.name, "state": e.state, "traffic": e.traffic, "metric": e.metric, "k": e.k,
            "alpha": e.alpha, "power": e.power, "baseline": e.baseline, "relative_mde": e.relative_mde,
            "users_per_arm": e.users_per_arm, "tau": e.tau, "started_at": e.started_at, "stopped_at": e.stopped_at,
            "promoted_arm": e.promoted_arm,
            "arms": [{"name": a.name, "version": a.version_id, "share": a.share} for a in e.arms.all()]}


def start_experiment(name: str, variants: list[dict], control_share: float = 1.0, traffic: float = 1.0,
                     metric: str = Experiment.Metric.CTR, k: int = 10, alpha: float = 0.05, power: float = 0.8,
                     baseline: float = 0.05, relative_mde: float = 0.1, user=None, reason: str = "",
                     via: str = "") -> Experiment:
    """Start splitting users between the active version (control) and ``variants`` (each
    ``{"version": id, "share": weight}``). The planned users per arm and the mSPRT mixing sd are
    fixed here from (baseline, relative_mde, alpha, power)."""
    if not variants:
        raise ExperimentError("give at least one variant version")
    if not 0 < traffic <= 1:
        raise ExperimentError("traffic must be in (0, 1]")
    if metric not in Experiment.Metric.values:
        raise ExperimentError(f"metric must be one of {', '.join(Experiment.Metric.values)}")
    try:  # revenue per list is not a proportion: no planned size, the sequential test still holds
        planned = 0 if metric == Experiment.Metric.REVENUE else users_per_arm(baseline, relative_mde, alpha, power)
    except ValueError as exc:
        raise ExperimentError(str(exc)) from None
    if mixing_sd(baseline, relative_mde) <= 0:
        raise ExperimentError("baseline and relative_mde must be non-zero")
    with transaction.atomic():
        if Experiment.objects.select_for_update().filter(state=Experiment.State.RUNNING).exists():
            raise ExperimentError("an experiment is already running; stop it first")
        if Experiment.objects.filter(name=name).exists():
            raise ExperimentError(f"an experiment named {name!r} exists")
        control = recs.active_version()
        if control is None:
            raise ExperimentError("no active model version to be the control")
        shares = [(CONTROL, control, float(control_share))]
        for n, v in enumerate(variants, 1):
            version = ModelVersion.objects.filter(pk=v.get("version"), state__in=SERVABLE).exclude(path="").first()
            if version is None:
                raise ExperimentError(f"version {v.get('version')!r} is not a trained model version")
            shares.append((f"variant-{n}", version, float(v.get("share", 1.0))))
        if any(s <= 0 for _, _, s in shares):
            raise ExperimentError("shares must be positive")
        e = Experiment.objects.create(
            name=name, salt=secrets.token_hex(16), traffic=traffic, metric=metric, k=k, alpha=alpha, power=power,
            baseline=baseline, relative_mde=relative_mde, users_per_arm=planned, tau=mixing_sd(baseline, relative_mde))
        Arm.objects.bulk_create([Arm(experiment=e, name=n, version=v, share=s) for n, v, s in shares])
        _audit(user, START, e, f"started experiment {name}: " + ", ".join(f"{n}=v{v.pk}×{s:g}" for n, v, s in shares),
               {}, experiment_dict(e), reason, via)
    running.clear()
    return e


def find_experiment(experiment_id: int) -> Experiment | None:
    """One experiment with its arms (for showing it; actions lock it with ``_get``)."""
    return Experiment.objects.filter(pk=experiment_id).prefetch_related("arms").first()


def recent_experiments(limit: int = 100) -> list[Experiment]:
    """Experiments with their arms, newest first (the model's ordering)."""
    return list(Experiment.objects.prefetch_related("arms")[:limit])


def _get(experiment_id: int) -> Experiment:
    e = Experiment.objects.select_for_update().filter(pk=experiment_id).first()
    if e is None:
        raise ExperimentError(f"no experiment {experiment_id}")
    return e


def stop_experiment(experiment_id: int, user=None, reason: str = "", via: str = "") -> Experiment:
    """Everyone gets the active version again; the experiment's data stay for its results."""
    with transaction.atomic():
        e = _get(experiment_id)
        if e.state != Experiment.State.RUNNING:
            raise ExperimentError(f"experiment {e.name} is {e.state}, not running")
        before = experiment_dict(e)
        e.state, e.stopped_at = Experiment.State.STOPPED, timezone.now()
        e.save(update_fields=["state", "stopped_at"])
        _audit(user, STOP, e, f"stopped experiment {e.name}", before, experiment_dict(e), reason, via)
    running.clear()
    return e


def promote(experiment_id: int, arm: str, user=None, reason: str = "", via: str = "") -> Experiment:
    """Stop the experiment (if running) and make ``arm``'s version the active one for everyone."""
    with transaction.atomic():
        e = _get(experiment_id)
        if e.state in (Experiment.State.PROMOTED, Experiment.State.ROLLED_BACK):
            raise ExperimentError(f"experiment {e.name} is already {e.state}")
        chosen = e.arms.filter(name=arm).select_related("version").first()
        if chosen is None:
            raise ExperimentError(f"experiment {e.name} has no arm {arm!r}")
        before = {**experiment_dict(e), "active_version": getattr(recs.active_version(), "pk", None)}
        recs.activate(chosen.version)
        e.state, e.promoted_arm = Experiment.State.PROMOTED, arm
        e.stopped_at = e.stopped_at or timezone.now()
        e.save(update_fields=["state", "promoted_arm", "stopped_at"])
        _audit(user, PROMOTE, e, f"promoted {arm} (v{chosen.version_id}) of experiment {e.name}", before,
               {**experiment_dict(e), "active_version": chosen.version_id}, reason, via)
    running.clear()
    return e


def rollback(experiment_id: int, user=None, reason: str = "", via: str = "") -> Experiment:
    """Stop the experiment (if running) and make the control version the active one again (undoing
    a promotion)."""
    with transaction.atomic():
        e = _get(experiment_id)
        if e.state == Experiment.State.ROLLED_BACK:
            raise ExperimentError(f"experiment {e.name} is already rolled back")
        control = e.arms.select_related("version").get(name=CONTROL)
        before = {**experiment_dict(e), "active_version": getattr(recs.active_version(), "pk", None)}
        if before["active_version"] != control.version_id:
            recs.activate(control.version)
        e.state = Experiment.State.ROLLED_BACK
        e.stopped_at = e.stopped_at or timezone.now()
        e.save(update_fields=["state", "stopped_at"])
        _audit(user, ROLLBACK, e, f"rolled back experiment {e.name} to control (v{control.version_id})", before,
               {**experiment_dict(e), "active_version": control.version_id}, reason, via)
    running.clear()
    return e


# --- what serving reads ------------------------------------------------------------------------
@dataclass(frozen=True)
class RunningExperiment:
    id: int
    salt: str
    traffic: float
    arms: tuple[tuple[str, float], ...]  # (name, share) in id order
    versions: dict  # arm name -> model version id

    def assign(self, user: str) -> tuple[str, int] | None:
        """(arm, version id) for the user, or None outside the experiment's traffic."""
        arm = arm_for(self.salt, user, self.traffic, self.arms)
        return (arm, self.versions[arm]) if arm is not None else None


class _RunningCache:
    """The running experiment (or None), re-read at most every CHECK_SECONDS: serving pays no query
    per request, and every process follows a start or stop within seconds."""

    CHECK_SECONDS = 5.0

    def __init__(self):
        self.lock = threading.Lock()
        self.value: RunningExperiment | None = None
        self.checked = -1e9

    def get(self) -> RunningExperiment | None:
        if time.monotonic() - self.checked < self.CHECK_SECONDS:
            return self.value
        with self.lock:
            if time.monotonic() - self.checked >= self.CHECK_SECONDS:
                self.value = self._load()
                self.checked = time.monotonic()
            return self.value

    @staticmethod
    def _load() -> RunningExperiment | None:
        e = Experiment.objects.filter(state=Experiment.State.RUNNING).order_by("id").first()
        if e is None:
            return None
        arms = list(e.arms.order_by("id").values_list("name", "share", "version_id"))
        return RunningExperiment(e.pk, e.salt, e.traffic, tuple((n, s) for n, s, _ in arms),
                                 {n: v for n, _, v in arms})

    def clear(self) -> None:
        with self.lock:
            self.value, self.checked = None, -1e9


running = _RunningCache()
