"""API read paths on top of ``kms.recs.services``: one plain function per endpoint builds its
response (``recommend``, ``similar``, ``popular``), so the view only validates and renders.

Per request: one Redis MGET (``serving_cache.read``: generation counters and the user's cached
history) and a lookup or small matmul in the active model's index; product rows, the popularity
ranking and the index are process caches kept while the generations they were built under hold.
So a request nothing changed for since the model or the user's last request runs no SQL.
Without the serving cache (no Redis) the history is read from the database each request.

These dicts are rendered as built, not through their response serializers: rendering a k=20 list
through ``RecommendationResponse`` costs about 0.34 ms more (``SearchResponse``: 0.54 ms), a large
share of a cached request's few-millisecond p99 budget. That they match the schema is checked on
real answers instead (``tests/reliability/test_contract.py``), with the fuzzer's own checker.
"""
from __future__ import annotations

import gc
import threading

from kgschema import product_uid, user_uid
from kms.experiments import impressions
from kms.experiments.serving import choose
from kms.recs import services as recs
from kms.recs.serving_cache import serving_cache


class UnknownProduct(LookupError):
    """``similar`` of a product the catalogue does not have (the view answers 404)."""


def warm_up() -> None:
    """Load what the read paths keep in memory (the active model's index, the search index) so
    that no request of a fresh worker waits seconds for it; gunicorn calls this before a worker
    accepts connections (``post_worker_init`` in gunicorn.conf.py). Failures are logged only: the
    request path loads lazily as before."""
    import logging

    from kms.search.services import search_index

    try:
        snapshot = serving_cache.read()
        recs.index_cache.get(snapshot)
        recs.product_rows.preload(snapshot)
        search_index.get()
        from kms.experiments.serving import warm_up as warm_up_experiments

        warm_up_experiments()
    except Exception:
        logging.getLogger(__name__).exception("warm-up failed; loading lazily on first requests")
    finally:
        from django.db import connection

        connection.close()  # the worker's threads open their own
    # What was loaded lives as long as the worker: out of the collector's sight, so a full
    # collection no longer walks millions of model and pipeline objects inside some request.
    gc.freeze()


def popular(k: int, category: str | None = None, exclude: set[str] | None = None) -> list[dict]:
    """The in-memory popularity ranking of ``kms.recs.services`` with product rows attached."""
    snapshot = serving_cache.read()
    uids = {product_uid(e) for e in exclude or ()}
    return recs.attach_products(recs.popular_products(k, category, uids, snapshot), snapshot=snapshot)


_explainers: dict[int, object] = {}
_explainers_lock = threading.Lock()


def _explainer(index):
    """``explain(user_uid, item_uid, history, names, brands)`` for the active index, or None if the
    recommender has none. The explanation graph is built once per index (model version) and kept
    beside it; titles and brands come per request from the product-row cache (one batch look-up).
    """
    explain = getattr(index, "explain", None)
    if callable(explain):
        return lambda user, item, history, names, brands: explain(user, item, history)
    try:
        from recommender.explain import ExplanationGraph
    except ImportError:
        return None
    with _explainers_lock:
        graph = _explainers.get(id(index))
        if graph is None:
            _explainers.clear()  # only the active index's graph is worth keeping
            graph = _explainers[id(index)] = ExplanationGraph.from_model(index.model)

    def explain_item(user, item, history, names, brands):
        found = graph.explain(item, user_id=user, history=history, names=names, brands=brands)
        return found.as_dict() if found is not None else None
    return explain_item


def recommend(user: str, k: int, category: str | None, exclude_seen: bool, explain: bool) -> dict:
    """``kms.recs.services.recommend_for_user`` (precomputed top-K, cold start, fresh history scored
    live); without an active model, the in-memory popularity ranking instead of an aggregate query.
    A running experiment picks the version by the user's arm (``kms.experiments.serving.choose``);
    the list gets a ``recommendation_id`` and positions, and its impression is buffered."""
    snapshot = serving_cache.read(user)
    choice = choose(user)
    if choice is None:
        index = recs.index_cache.get(snapshot)
        result = recs.recommend_for_user(user, k=k, exclude_seen=exclude_seen, category=category, snapshot=snapshot)
    else:
        index = choice.index
        result = recs.recommend_for_user(user, k=k, exclude_seen=exclude_seen, category=category, snapshot=snapshot,
                                         index=choice.index, version_id=choice.version_id)
    if explain:
        explainer = _explainer(index) if index is not None else None
        if explainer is None:
            result["explanations"] = ("unavailable: the active recommender index offers no explain()"
                                      if index is not None else "unavailable: no trained model version is active")
        else:
            history = recs.user_history(user, snapshot)[-50:]
            rows = recs.product_rows.get_many([uid.split(":", 1)[1] for uid in history], snapshot)
            names = {product_uid(ext): row[0] for ext, row in rows.items()}
            brands = {product_uid(ext): row[1] for ext, row in rows.items()}
            names.update((product_uid(item["product"]), item["title"]) for item in result["items"])
            brands.update((product_uid(item["product"]), item["brand"]) for item in result["items"])
            for item in result["items"]:
                try:
                    item["explanation"] = explainer(user_uid(user), product_uid(item["product"]), history,
                                                    names, brands)
                except Exception as exc:  # an explanation is a bonus, never a failed request
                    item["explanation"] = {"error": type(exc).__name__}
    return impressions.record(result, "recommendations", user, result["model_version"],
                              choice.experiment_id if choice else None, choice.arm if choice else "")


def similar(product: str, k: int, user: str | None = None) -> dict:
    """Neighbours in the model's item embedding; a product the model has not seen (added after
    training) gets content/knowledge-graph neighbours from the search index instead. Raises
    UnknownProduct for a product the catalogue does not have (checked in the product-row cache).
    With ``user`` a running experiment picks the version; the list gets a ``recommendation_id``."""
    snapshot = serving_cache.read()
    if not recs.product_rows.get_many([product], snapshot):
        raise UnknownProduct(product)
    choice = choose(user)
    if choice is not None:
        index, version_id = choice.index, choice.version_id
    else:
        index, version_id = recs.index_cache.get(snapshot), recs.index_cache.version_id
    if index is not None and product_uid(product) in index.item_index:
        out = recs.similar_products(product, k, snapshot, index=index, version_id=version_id)
        out["source"] = "model"
    else:
        from kms.search.services import similar_by_content

        out = {"product": product, "model_version": version_id, "source": "content",
               "items": similar_by_content(product, k)}
    return impressions.record(out, "similar", user, out["model_version"],
                              choice.experiment_id if choice else None, choice.arm if choice else "")


def search_list(result: dict, user: str | None) -> dict:
    """Search results get a ``recommendation_id`` and positions like the recommendation lists."""
    return impressions.record(result, "search", user, None)
