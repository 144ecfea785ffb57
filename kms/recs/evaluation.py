"""A model version measured on the shop's own events, under the standard protocol.

Leave-last-out by timestamp (the split training takes: ``training_data`` of the graph store's
export), full ranking, every history item masked, ``recommender.metrics.evaluate``. Each
component is prepared on the test history (train + validation); the served model
(``TrainedModel.score``: fusion and cold-start blend) and each component are scored, and a
popularity and an item-CF baseline are computed on the same split for context.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from django.utils import timezone

from recommender.data import InteractionData, leave_last_out
from recommender.metrics import evaluate

from .models import ModelVersion

METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")


def evaluate_model(model, data: InteractionData) -> dict:
    """Figures of ``model`` (a ``TrainedModel``) on the leave-last-out test split of ``data``.

    Users and items are matched to the model by id. Users the model was not trained on are
    scored from their history alone; items it does not know are dropped from histories, and a
    test target it does not know counts as a miss, so every user with a test target counts.
    The model's state (``history``, and so its cold items) becomes the test history.
    """
    from recommender.scoring import Knowledge
    from recommender.training import TrainConfig, build_component

    split = leave_last_out(data)
    item_index = {iid: n for n, iid in enumerate(model.item_ids)}
    user_index = {uid: n for n, uid in enumerate(model.user_ids)}
    to_model = np.asarray([item_index.get(i, -1) for i in data.item_ids] + [-1], dtype=np.int64)  # [-1]: no target
    histories = [[int(to_model[i]) for i in h if to_model[i] >= 0] for h in split.history("test")]
    targets = to_model[split.test_target]
    has_target = split.test_target >= 0
    n_users, n_known = int(has_target.sum()), int((targets >= 0).sum())
    model_users = np.asarray([user_index.get(u, -1) for u in data.user_ids], dtype=np.int64)

    state: list[list[int]] = [[] for _ in model.user_ids]  # the components' state: test histories
    for d, m in enumerate(model_users):
        if m >= 0:
            state[m] = histories[d]
    model.history = state
    model.__dict__.pop("cold_items", None)  # a cached property of ``history``
    for component in model.components.values():
        component.prepare(state)

    def measure(score) -> dict:
        if n_known == 0:
            return {k: 0.0 for k in METRICS}
        m = evaluate(lambda b: score(b, [histories[i] for i in b.tolist()]), histories, targets)
        return {k: m[k] * n_known / n_users for k in METRICS}  # unknown targets: misses

    def as_model_users(batch: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(model_users[batch.numpy()])

    started = time.perf_counter()
    served = measure(lambda b, h: model.score(as_model_users(b), h)[:, :model.n_items])
    components = {name: measure(lambda b, h, c=c: c.score(as_model_users(b), h))
                  for name, c in model.components.items()}
    defaults = TrainConfig()
    cfg = TrainConfig(cf_neighbours=int(model.params.get("cf_neighbours", defaults.cf_neighbours)))
    baselines = {}
    for name in ("popularity", "itemcf"):
        # built on the split's own state: every user's test history, known to the model or not
        baseline = build_component(name, cfg, len(histories), model.n_items, Knowledge())
        baseline.prepare(histories)
        baselines[name] = measure(baseline.score)
    return {"served": served, "components": components, "baselines": baselines, "users": n_users,
            "users_unknown_to_model": int((has_target & (model_users < 0)).sum()),
            "targets_unknown_to_model": n_users - n_known, "items": model.n_items,
            "seconds": round(time.perf_counter() - started, 2)}


def evaluate_version(version: ModelVersion | None = None) -> dict:
    """Evaluate ``version`` (default: the active one) on the events in the graph store, as
    training reads them, and store the result on the version (``ModelVersion.evaluation``)."""
    from recommender.training import TrainedModel

    from kms.graphstore import get_graph_store

    from .services import active_version, training_data

    version = version or active_version()
    if version is None:
        raise ValueError("no active model version: train one first (manage.py train)")
    if not version.path:
        raise ValueError(f"model version {version.pk} has no stored model ({version.state})")
    data = training_data(get_graph_store().export_training_graph())
    if data.n_interactions == 0:
        raise ValueError("no interactions in the graph store: import events first")
    result = evaluate_model(TrainedModel.load(version.path), data)
    result["evaluated_at"] = timezone.now().isoformat()
    version.evaluation = result
    version.save(update_fields=["evaluation"])
    return result


def evaluation_table(result: dict) -> str:
    """The evaluation as a short text table (one row per model)."""
    rows = [("served", result["served"])]
    rows += [(name, m) for name, m in result["components"].items()]
    rows += [(f"baseline {name}", m) for name, m in result["baselines"].items()]
    width = max(len(name) for name, _ in rows)
    head = f"{'model':<{width}}  " + "  ".join(f"{k:>9}" for k in METRICS)
    lines = [head, "-" * len(head)]
    lines += [f"{name:<{width}}  " + "  ".join(f"{m[k]:9.4f}" for k in METRICS) for name, m in rows]
    lines.append(f"{result['users']} users with a test event (leave-last-out, full ranking, history masked)")
    return "\n".join(lines)
