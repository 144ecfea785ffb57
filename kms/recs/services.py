"""Training, the model registry and serving. Commands, tasks and views call these."""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from kgschema import IN_CATEGORY, product_uid, uid_key, user_uid
from graph import ExportedGraph
from kms.catalogue.models import Product
from kms.events.models import Interaction, ShopUser
from recommender.data import InteractionData

from .models import ModelVersion
from .serving_cache import Snapshot, serving_cache

log = logging.getLogger(__name__)
ACTIVATION_TOLERANCE = 0.0  # a new version must not be worse on validation NDCG@20
INDEX_CHECK_SECONDS = 5.0  # without the serving cache: how often each process checks the active version
# With the serving cache (generation counters in Redis) a process re-checks only when a counter
# moved, at most this often while a new index loads, and in any case after SAFETY_SECONDS.
CHANGED_CHECK_SECONDS = 1.0
SAFETY_SECONDS = 300.0
# Products ingested after a model's training are served as cold-start items (from their
# knowledge-graph entities) at once; the set is refreshed this often, per process.
NEW_ITEMS_SECONDS = 5.0
NEW_ITEMS_WINDOW = timedelta(minutes=10)  # facts this much older than a version count as trained on
MAX_NEW_ITEMS = 20_000


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


def _valid_ndcg(version: ModelVersion | None) -> float:
    if version is None:
        return float("-inf")
    valid = version.metrics.get("valid") or {}
    return float((valid.get("fusion") or {}).get("ndcg@20", 0.0))


def active_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(state=ModelVersion.State.ACTIVE).order_by("-activated_at").first()


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
    if current is None or _valid_ndcg(version) >= _valid_ndcg(current) * (1 - ACTIVATION_TOLERANCE):
        activate(version)
        return True
    version.state = ModelVersion.State.REJECTED
    version.message = f"validation ndcg@20 {_valid_ndcg(version):.4f} < active {_valid_ndcg(current):.4f}"
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


# --- serving -----------------------------------------------------------------------------------
class _IndexCache:
    """The active version's index, reloaded when another version is activated or its files change
    (a privacy erasure rewrites them), checked at most every INDEX_CHECK_SECONDS."""

    def __init__(self):
        self.lock = threading.Lock()
        self.key: tuple | None = None
        self.version_id: int | None = None
        self.index = None
        self.checked = 0.0
        self.loading: threading.Thread | None = None
        self.model_gen: int | None = None  # serving-cache generations the index was checked under
        self.catalogue_gen: int | None = None
        self._forget_new_items()

    def _forget_new_items(self) -> None:
        """No products served beyond the index's model yet; look them up on the next request."""
        self.new_items: dict[str, list[tuple[str, str]]] = {}
        self.new_items_checked = 0.0
        self.new_items_signature: tuple | None = None

    @staticmethod
    def _key(version: ModelVersion) -> tuple:
        try:
            mtime = (Path(version.path) / "model.json").stat().st_mtime_ns
        except OSError:
            mtime = 0
        return version.pk, mtime

    def _current(self, now: float, snapshot: Snapshot | None) -> bool:
        """Whether the index in hand may answer without asking the database."""
        if snapshot is None:  # no shared counters: check every INDEX_CHECK_SECONDS
            return self.index is not None and now - self.checked < INDEX_CHECK_SECONDS
        if now - self.checked >= SAFETY_SECONDS:
            return False
        if snapshot.model != self.model_gen:
            return now - self.checked < CHANGED_CHECK_SECONDS  # a new version is loading
        if snapshot.catalogue != self.catalogue_gen:  # products or facts changed: new items due
            return now - self.new_items_checked < NEW_ITEMS_SECONDS
        return True

    def get(self, snapshot: Snapshot | None = None):
        """The active index. With the request's ``snapshot`` (``serving_cache.read``) no query runs
        unless a generation moved since this process last looked."""
        now = time.monotonic()
        if self._current(now, snapshot):
            return self.index
        with self.lock:
            if self._current(now, snapshot):
                return self.index
            self.checked = now
            version = active_version()
            loaded = True
            if version is None:
                self.index, self.version_id, self.key = None, None, None
            elif self._key(version) != self.key:
                loaded = False
                if self.index is None:  # nothing to serve meanwhile: load now
                    self._install(version, self._load(version))
                    loaded = True
                elif not (self.loading and self.loading.is_alive()):
                    # keep serving the current index while the new one loads (seconds), then swap
                    self.loading = threading.Thread(target=self._load_in_background, args=(version,),
                                                    name="recs-index", daemon=True)
                    self.loading.start()
            if loaded and snapshot is not None:
                self.model_gen = snapshot.model
            if self.index is not None and (now - self.new_items_checked >= NEW_ITEMS_SECONDS or snapshot is not None):
                self.new_items_checked = now
                self._refresh_new_items(version)
                if snapshot is not None:
                    self.catalogue_gen = snapshot.catalogue
            return self.index

    @staticmethod
    def _load(version: ModelVersion):
        from recommender.serving import RecommendationIndex

        # the precomputed lists are memory-mapped from the version's serving files (written at
        # training; by the first process of a host for an older version), one copy per host
        return RecommendationIndex.load(version.path)

    def _install(self, version: ModelVersion, index) -> None:
        self.index, self.version_id, self.key = index, version.pk, self._key(version)
        self._forget_new_items()

    def _load_in_background(self, version: ModelVersion) -> None:
        from django.db import connection

        try:
            index = self._load(version)
            with self.lock:
                if self.index is not None:  # not cleared meanwhile
                    self._install(version, index)
                    self.checked = 0.0  # re-check the active version on the next request
        except Exception:
            log.exception("could not load model version %s; serving the previous one", version.pk)
        finally:
            connection.close()

    def _refresh_new_items(self, version: ModelVersion) -> None:
        """Swap in an index that also serves products the model was not trained on (a copy, so
        requests holding the current one are not disturbed); nothing changes if the set did not."""
        from django.db.models import Max

        from kms.knowledge.models import Fact

        try:
            # cheap signature first: the full look-up only runs when facts changed since the last one
            signature = (self.version_id, *Fact.objects.filter(created_at__gte=version.created_at - NEW_ITEMS_WINDOW)
                         .aggregate(n=Count("id"), last=Max("id")).values())
            if signature == self.new_items_signature:
                return
            items = new_product_entities(version, set(self.index.model.item_ids))
            self.new_items_signature = signature
            if items != self.new_items:
                self.index = self.index.with_new_items(items)
                self.new_items = items
        except Exception:  # serving goes on with the trained items
            log.exception("could not refresh the new (cold-start) products")

    def clear(self):
        with self.lock:
            self.index, self.version_id, self.key, self.checked = None, None, None, 0.0
            self.model_gen = self.catalogue_gen = None
            self._forget_new_items()


def new_product_entities(version: ModelVersion, trained: set[str]) -> dict[str, list[tuple[str, str]]]:
    """Products with facts that ``version`` was not trained on: graph uid -> sorted (relation,
    entity uid) pairs, merged entities resolved and category ancestors added (as ``training_data``);
    trusted facts only (``kms.knowledge.models.TRUSTED``)."""
    from kgschema import IN_PARENT_CATEGORY as PARENT_CATEGORY, category_ancestors

    from kms.knowledge.models import TRUSTED, Fact

    since = version.created_at - NEW_ITEMS_WINDOW
    recent = (Fact.objects.filter(created_at__gte=since, status__in=TRUSTED).order_by()
              .values_list("product__external_id", flat=True).distinct())
    new = [ext for ext in recent.iterator() if product_uid(ext) not in trained][:MAX_NEW_ITEMS]
    out: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for start in range(0, len(new), 2000):
        for ext, relation, uid, merged in (
                Fact.objects.filter(product__external_id__in=new[start:start + 2000])
                .filter(status__in=TRUSTED).order_by()
                .values_list("product__external_id", "relation", "entity__uid", "entity__merged_into__uid")):
            uid = merged or uid
            pairs = out[product_uid(ext)]
            pairs.add((relation, uid))
            if relation == IN_CATEGORY:
                pairs.update((PARENT_CATEGORY, a) for a in category_ancestors(uid))
    return {k: sorted(v) for k, v in out.items()}


index_cache = _IndexCache()


def user_history(external_id: str, snapshot: Snapshot | None = None) -> list[str]:
    """The user's product uids in time order: the serving cache's copy when ``snapshot`` (read
    before this call) holds a current one, else the database's, then cached under that snapshot's
    user version. Posted events bump the version, so they count on the very next request."""
    if snapshot is not None and snapshot.history is not None:
        return list(snapshot.history)
    history = [product_uid(x) for x in Interaction.objects.filter(user__external_id=external_id)
               .order_by("timestamp", "id").values_list("product__external_id", flat=True)]
    serving_cache.store_history(external_id, snapshot, history)
    return history


class _PopularityCache:
    """Products ranked by interaction count, kept in memory for POPULAR_SECONDS: the fallback when
    no model is active, served without an aggregate query per request."""

    POPULAR_SECONDS = 30.0
    POPULAR_LIMIT = 20_000

    def __init__(self):
        self.lock = threading.Lock()
        self.rows: list[tuple[str, float, list]] = []
        self.loaded = 0.0
        self.stamp: tuple | None = None  # (catalogue, events) generations the rows were counted under

    def _current(self, snapshot: Snapshot | None) -> bool:
        age = time.monotonic() - self.loaded
        if snapshot is not None and self.stamp == (snapshot.catalogue, snapshot.events):
            return age < SAFETY_SECONDS  # nothing changed: no query
        return age < self.POPULAR_SECONDS  # changed (or no shared counters): recount at most this often

    def get(self, snapshot: Snapshot | None = None) -> list[tuple[str, float, list]]:
        if self._current(snapshot):
            return self.rows
        with self.lock:
            if not self._current(snapshot):
                self.rows = [(ext, float(n), cats or []) for ext, n, cats in
                             Product.objects.annotate(n=Count("interactions")).order_by("-n", "id")
                             .values_list("external_id", "n", "category_path")[:self.POPULAR_LIMIT]]
                self.loaded = time.monotonic()
                self.stamp = (snapshot.catalogue, snapshot.events) if snapshot is not None else None
            return self.rows

    def clear(self):
        with self.lock:
            self.rows, self.loaded, self.stamp = [], 0.0, None


popularity = _PopularityCache()


def popular_products(k: int, category: str | None = None, exclude: set[str] | None = None,
                     snapshot: Snapshot | None = None) -> list[tuple[str, float]]:
    """Top-k (product uid, interaction count), optionally within a category, never ``exclude``d uids."""
    exclude = exclude or set()
    out = []
    for ext, n, cats in popularity.get(snapshot):
        uid = product_uid(ext)
        if uid not in exclude and (not category or any(category.lower() in str(c).lower() for c in cats)):
            out.append((uid, n))
            if len(out) >= k:
                break
    return out


def recommend_for_user(external_id: str, k: int = 20, exclude_seen: bool = True,
                       category: str | None = None, snapshot: Snapshot | None = None, index=None,
                       version_id: int | None = None) -> dict:
    """Top-k for a user. With the serving cache's ``snapshot`` of this user (``serving_cache.read``)
    a request nothing changed for since the model or the user's last request runs no SQL.
    ``index``/``version_id``: another loaded version than the active one (an experiment arm)."""
    history = user_history(external_id, snapshot)
    exclude = set(history) if exclude_seen else set()
    if index is None:
        index, version_id = index_cache.get(snapshot), index_cache.version_id
    uid = user_uid(external_id)
    want = k if not category else k * 20  # filtered afterwards
    if index is None:
        source, recs = "popular", popular_products(want, category, exclude, snapshot)
    else:
        u = index.user_index.get(uid, -1)
        if u < 0 and not history:
            source, recs = "cold-start", index.popular(want, exclude=exclude)
        else:
            source = "model"
            # The precomputed top-K answers unless events arrived after training: then the
            # user's fresh history is scored live (one small matmul).
            fresh = u < 0 or len(history) > len(index.model.history[u])
            recs = index.recommend(uid, want, exclude=exclude, history=history if fresh else None, row=u)
    items = attach_products(recs, category, snapshot)[:k]
    return {"user": external_id, "source": source, "model_version": version_id, "items": items}


class _ProductRows:
    """Title/brand/category of products for responses, kept in memory. With the serving cache the
    rows are kept while the catalogue generation is the one they were read under (a product save,
    edit or delete anywhere bumps it; SAFETY_SECONDS at most); without it, PRODUCT_TTL seconds.
    Saves and deletes in this process drop their entries at once either way."""

    PRODUCT_TTL = 30.0
    MAX_ENTRIES = 200_000

    def __init__(self):
        self.rows: dict[str, tuple[float, tuple]] = {}
        self.lock = threading.Lock()
        self.catalogue_gen: int | None = None

    def get_many(self, ext_ids: list[str], snapshot: Snapshot | None = None) -> dict[str, tuple]:
        now = time.monotonic()
        ttl = self.PRODUCT_TTL
        if snapshot is not None:
            ttl = SAFETY_SECONDS
            if snapshot.catalogue != self.catalogue_gen:
                with self.lock:
                    self.rows = {}
                    self.catalogue_gen = snapshot.catalogue
        rows = self.rows
        out, missing = {}, []
        for ext in ext_ids:
            hit = rows.get(ext)
            if hit is not None and now - hit[0] < ttl:
                out[ext] = hit[1]
            else:
                missing.append(ext)
        if missing:
            fetched = {ext: (title, brand, cats or []) for ext, title, brand, cats in Product.objects
                       .filter(external_id__in=missing).values_list("external_id", "title", "brand", "category_path")}
            with self.lock:
                if rows is self.rows:  # not dropped meanwhile by a newer generation
                    if len(rows) > self.MAX_ENTRIES:
                        rows.clear()
                    for ext, row in fetched.items():
                        rows[ext] = (now, row)
            out.update(fetched)
        return out

    def preload(self, snapshot: Snapshot | None = None, limit: int | None = None) -> int:
        """Every product's row in one query (a worker's warm-up), so no first request waits for one."""
        ids = list(Product.objects.order_by("id").values_list("external_id", flat=True)[:limit or self.MAX_ENTRIES])
        return len(self.get_many(ids, snapshot))

    def forget(self, ext_id: str) -> None:
        self.rows.pop(ext_id, None)

    def clear(self) -> None:
        with self.lock:
            self.rows, self.catalogue_gen = {}, None


product_rows = _ProductRows()


def attach_products(recs: list[tuple[str, float]], category: str | None = None,
                    snapshot: Snapshot | None = None) -> list[dict]:
    """Response items (plain dicts, no serializer) for ranked (product uid, score) pairs."""
    ext_ids = [uid_key(uid) for uid, _ in recs]
    products = product_rows.get_many(ext_ids, snapshot)
    out = []
    for (uid, score), ext in zip(recs, ext_ids):
        row = products.get(ext)
        if row is None:
            continue
        title, brand, cats = row
        if category and not any(category.lower() in c.lower() for c in cats):
            continue
        out.append({"product": ext, "title": title, "brand": brand, "score": round(float(score), 6)})
    return out


def similar_products(external_id: str, k: int = 20, snapshot: Snapshot | None = None, index=None,
                     version_id: int | None = None) -> dict:
    if index is None:
        index, version_id = index_cache.get(snapshot), index_cache.version_id
    uid = product_uid(external_id)
    recs = index.similar(uid, k) if index is not None and uid in index.item_index else []
    return {"product": external_id, "model_version": version_id, "items": attach_products(recs, snapshot=snapshot)}


def forget_user(external_id: str) -> dict:
    """Erase a user: database rows, graph node and edges (outbox), and every stored model artefact
    (so precomputed recommendations and the data models were trained on no longer hold them)."""
    from recommender.privacy import scrub_user

    from kms.curation.models import OutboxEntry

    uid = user_uid(external_id)
    with transaction.atomic():
        user = ShopUser.objects.filter(external_id=external_id).first()
        events = user.interactions.count() if user else 0
        if user:
            user.delete()  # cascades to the interactions
        # The graph node and edges go through the outbox, so a graph-store outage delays the
        # erasure but cannot lose it (the caller has it delivered after the commit).
        OutboxEntry.add(OutboxEntry.Op.ERASE_USERS, uids=[uid], external_ids=[external_id])
    scrubbed = [v.pk for v in ModelVersion.objects.exclude(path="") if Path(v.path).exists() and scrub_user(v.path, uid)]
    index_cache.clear()
    serving_cache.changed("model", users=[external_id])  # every process drops the user's lists and history
    return {"user": external_id, "events_deleted": events, "model_versions_scrubbed": scrubbed}
