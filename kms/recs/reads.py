"""Serving reads: a user's history, the popularity ranking, recommendations and similar products
with their product rows. With the request's serving-cache snapshot a request nothing changed for
runs no SQL (the per-process caches here and in ``index``)."""
from __future__ import annotations

import threading
import time

from django.db.models import Count

from kgschema import product_uid, uid_key, user_uid
from kms.catalogue.models import Product
from kms.events.models import Interaction

from .index import SAFETY_SECONDS, index_cache
from .serving_cache import Snapshot, serving_cache


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
