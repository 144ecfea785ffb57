"""Fast read paths for the API on top of ``kms.recs.services``.

Per request: one query for the user's history, one for the product rows, and a lookup/small
matmul in the active model's in-memory index. Without a model the popularity ranking is served
from memory (refreshed every POPULAR_SECONDS) instead of an aggregate query per request.
"""
from __future__ import annotations

import threading
import time

from django.db.models import Count

from kms.catalogue.models import Product
from kms.recs import services as recs

POPULAR_SECONDS = 30.0
POPULAR_LIMIT = 20_000


class _PopularityCache:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows: list[tuple[str, float, str, str, list]] = []
        self.loaded = 0.0

    def get(self) -> list[tuple[str, float, str, str, list]]:
        if time.monotonic() - self.loaded < POPULAR_SECONDS:
            return self.rows
        with self.lock:
            if time.monotonic() - self.loaded >= POPULAR_SECONDS:
                self.rows = [(ext, float(n), title, brand, cats) for ext, n, title, brand, cats in
                             Product.objects.annotate(n=Count("interactions")).order_by("-n", "id")
                             .values_list("external_id", "n", "title", "brand", "category_path")[:POPULAR_LIMIT]]
                self.loaded = time.monotonic()
            return self.rows

    def clear(self):
        with self.lock:
            self.rows, self.loaded = [], 0.0


popularity = _PopularityCache()


def _in_category(category: str | None, path: list) -> bool:
    return not category or any(category.lower() in str(c).lower() for c in path or [])


def popular(k: int, category: str | None = None, exclude: set[str] | None = None) -> list[dict]:
    exclude = exclude or set()
    out = []
    for ext, n, title, brand, cats in popularity.get():
        if ext not in exclude and _in_category(category, cats):
            out.append({"product": ext, "title": title, "brand": brand, "score": n})
            if len(out) >= k:
                break
    return out


_explainers: dict[int, object] = {}
_explainers_lock = threading.Lock()


def _explainer(index):
    """``explain(user_uid, item_uid, history)`` for the active index, or None if the recommender has none.

    The explanation graph is built once per index (model version) and kept beside it.
    """
    explain = getattr(index, "explain", None)
    if callable(explain):
        return explain
    try:
        from recommender.explain import ExplanationGraph
    except ImportError:
        return None
    with _explainers_lock:
        graph = _explainers.get(id(index))
        if graph is None:
            _explainers.clear()  # only the active index's graph is worth keeping
            graph = _explainers[id(index)] = ExplanationGraph.from_model(index.model)

    def explain_item(user, item, history):
        found = graph.explain(item, user_id=user, history=history)
        return found.as_dict() if found is not None else None
    return explain_item


def recommend(user: str, k: int, category: str | None, exclude_seen: bool, explain: bool) -> dict:
    """``kms.recs.services.recommend_for_user`` (precomputed top-K, cold start, fresh history scored
    live); without an active model, the in-memory popularity ranking instead of an aggregate query."""
    index = recs.index_cache.get()
    if index is None:
        seen = {h.split(":", 1)[1] for h in recs.user_history(user)} if exclude_seen else set()
        result = {"user": user, "source": "popular", "model_version": None, "items": popular(k, category, seen)}
    else:
        result = recs.recommend_for_user(user, k=k, exclude_seen=exclude_seen, category=category)
    if explain:
        explainer = _explainer(index) if index is not None else None
        if explainer is None:
            result["explanations"] = ("unavailable: the active recommender index offers no explain()"
                                      if index is not None else "unavailable: no trained model version is active")
        else:
            history = recs.user_history(user)[-50:]
            for item in result["items"]:
                try:
                    item["explanation"] = explainer(f"user:{user}", f"product:{item['product']}", history)
                except Exception as exc:  # an explanation is a bonus, never a failed request
                    item["explanation"] = {"error": type(exc).__name__}
    return result


def similar(product: str, k: int) -> dict:
    """Neighbours in the model's item embedding; a product the model has not seen (added after
    training) gets content/knowledge-graph neighbours from the search index instead."""
    index = recs.index_cache.get()
    if index is not None and f"product:{product}" in index.item_index:
        out = recs.similar_products(product, k)
        out["source"] = "model"
        return out
    from kms.search.services import similar_by_content

    return {"product": product, "model_version": recs.index_cache.version_id, "source": "content",
            "items": similar_by_content(product, k)}
