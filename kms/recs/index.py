"""The active version's serving index, one per process: reloaded when another version is activated
or its files change, extended with products ingested after training (cold-start items)."""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

from django.db.models import Count

from kgschema import IN_CATEGORY, product_uid

from .models import ModelVersion
from .registry import active_version
from .serving_cache import Snapshot

log = logging.getLogger(__name__)
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
