"""Training jobs and activation: export the graph, train, evaluate, register a version, activate
it if validation is not worse; the periodic retrain."""
from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from graph import ExportedGraph
from kms.events.models import Interaction
from recommender.data import InteractionData

from .index import index_cache
from .models import ModelVersion
from .registry import active_version, valid_ndcg
from .serving_cache import serving_cache

log = logging.getLogger(__name__)
ACTIVATION_TOLERANCE = 0.0  # a new version must not be worse on validation NDCG@20


def training_data(graph: ExportedGraph) -> InteractionData:
    """The exported graph as the recommender's input, its knowledge shaped as the benchmarks shape
    it (``recommender.knowledge.with_entities``: category ancestors as extra triples, entities on
    more than half the items dropped), so the product and the benchmarks train on the same thing."""
    from recommender.knowledge import with_entities

    sequences: list[list[int]] = [[] for _ in graph.user_ids]
    for u, i, _ts in graph.interactions:  # sorted by user, then time
        sequences[u].append(i)
    names = list(graph.entity_names) or list(graph.entity_ids)
    triples = [(graph.item_ids[i], graph.relations[r], graph.entity_ids[e], names[e]) for i, r, e in graph.item_entity]
    data = InteractionData(user_ids=list(graph.user_ids), item_ids=list(graph.item_ids), sequences=sequences)
    return with_entities(data, triples)


def start_training(params: dict | None = None) -> ModelVersion:
    """Register a queued version for ``train_model(version_id=…)``; the caller enqueues it
    (``kms.recs.tasks.queue_training``). A redelivered task then trains this same version. The
    version records its preset (the default unless ``params`` name one)."""
    from recommender.presets import DEFAULT_PRESET, PRESET_KEY

    return ModelVersion.objects.create(state=ModelVersion.State.QUEUED,
                                       params={PRESET_KEY: DEFAULT_PRESET, **(params or {})})


def train_model(params: dict | None = None, activate: bool = True, version_id: int | None = None) -> ModelVersion:
    """Export the graph, train, evaluate, register; activate if validation is not worse.

    With ``version_id`` the queued version is (re)used, so a training task redelivered after a
    worker died trains the same version again instead of leaving an orphan.
    """
    from recommender.presets import DEFAULT_PRESET, PRESET_KEY, config_from_params
    from recommender.training import train

    from kms.graphstore import get_graph_store

    if version_id is not None:
        version = ModelVersion.objects.get(pk=version_id)
        if version.state in (ModelVersion.State.READY, ModelVersion.State.ACTIVE, ModelVersion.State.REJECTED):
            return version  # already trained: a duplicate delivery
        params = {PRESET_KEY: DEFAULT_PRESET, **version.params}
        version.state = ModelVersion.State.TRAINING
        version.save(update_fields=["state"])
    else:
        params = {PRESET_KEY: DEFAULT_PRESET, **(params or {})}
        version = ModelVersion.objects.create(state=ModelVersion.State.TRAINING, params=params)
    try:
        config = config_from_params(params)  # an unknown preset or field fails the version, not the worker
        started = time.perf_counter()
        data = training_data(get_graph_store().export_training_graph())
        if data.n_interactions == 0:
            raise ValueError("no interactions in the graph store: import events and ingest products first")
        model = train(data, config, log=log.info)
        path = settings.KMS_MODELS_DIR / f"v{version.pk}"
        model.save(path)
        from recommender.serving import RecommendationIndex

        # the serving arrays (every user's top-K), computed once here instead of in each web process
        RecommendationIndex.from_model(model).save_serving(path)
        version.path = str(path)
        version.history = model.curve  # recorded by the trainer as data, for the registry's plots
        version.params = params
        version.metrics = model.metrics
        version.details = {"config": model.params, "timings": model.timings}
        version.n_users, version.n_items, version.n_interactions = data.n_users, data.n_items, data.n_interactions
        version.train_seconds = time.perf_counter() - started
        version.state = ModelVersion.State.READY
        version.save()
    except Exception as exc:
        version.state = ModelVersion.State.FAILED
        version.message = f"{type(exc).__name__}: {exc}"[:2000]
        version.save()
        raise
    if activate:
        activate_if_not_worse(version)
    return version


def activate(version: ModelVersion) -> None:
    with transaction.atomic():
        ModelVersion.objects.filter(state=ModelVersion.State.ACTIVE).update(state=ModelVersion.State.READY)
        version.state = ModelVersion.State.ACTIVE
        version.activated_at = timezone.now()
        version.save(update_fields=["state", "activated_at"])
    index_cache.clear()  # this process serves the new version from its next request
    serving_cache.changed("model")  # every other web process reloads on its next request


def activate_if_not_worse(version: ModelVersion) -> bool:
    current = active_version()
    if current is None or valid_ndcg(version) >= valid_ndcg(current) * (1 - ACTIVATION_TOLERANCE):
        activate(version)
        return True
    version.state = ModelVersion.State.REJECTED
    version.message = f"validation ndcg@20 {valid_ndcg(version):.4f} < active {valid_ndcg(current):.4f}"
    version.save(update_fields=["state", "message"])
    return False


def new_data_since_last_training() -> int:
    last = ModelVersion.objects.exclude(state=ModelVersion.State.FAILED).order_by("-created_at").first()
    qs = Interaction.objects.all()
    if last is not None:
        qs = qs.filter(timestamp__gt=last.created_at)
    n = qs.count()
    from kms.knowledge.models import Fact

    curated = Fact.objects.filter(status__in=("approved", "rejected"))
    if last is not None:
        curated = curated.filter(updated_at__gt=last.created_at)
    return n + curated.count()


def maybe_retrain(min_new: int | None = None) -> ModelVersion | None:
    """Periodic: retrain when enough new events or curated facts arrived since the last version."""
    min_new = min_new if min_new is not None else settings.KMS_RETRAIN_MIN_NEW
    if new_data_since_last_training() < min_new:
        return None
    return train_model(active_version().params if active_version() else None)
