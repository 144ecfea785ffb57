"""The interface every recommender component implements, and the shared helpers.

A component scores all items for a batch of users given their (chronological) histories:

* ``fit(split, ctx)`` learns from ``split.train`` (trainable components stop early on the
  validation targets); non-trainable ones do nothing here.
* ``prepare(histories)`` sets the interaction state used for scoring: train for validation,
  train + validation for the test, every known interaction for serving. Neighbourhood models
  recompute their similarities from it, graph models propagate over its graph. No training.
* ``score(users, histories)`` returns ``(B, n_items)`` float32 scores on the CPU. A user index
  of -1 means "not in the prepared state": the component scores from ``histories`` alone.
* ``state()`` / ``from_state(state)``: tensors and primitives only, for ``torch.save``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from recommender.data import Split
from recommender.metrics import evaluate

Histories = Sequence[Sequence[int]]


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Knowledge:
    """Item–entity triples as indices (see ``InteractionData.item_entity``)."""

    n_entities: int = 0
    n_relations: int = 0
    item_entity: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))


@dataclass
class FitContext:
    n_users: int
    n_items: int
    knowledge: Knowledge
    device: torch.device
    seed: int = 0
    log: Callable[[str], None] = print
    # The training curve as data: one point per logged epoch (component, epoch, loss, valid ndcg@20).
    curve: list[dict] = field(default_factory=list)
    stage: str = "train"  # "refit" while components are retrained on train + valid

    def epoch(self, component: str, epoch: int, loss: float, valid_ndcg: float | None = None,
              seconds: float | None = None) -> None:
        """Record one epoch of ``component`` and log it."""
        point = {"component": component, "stage": self.stage, "epoch": int(epoch), "loss": round(float(loss), 6)}
        if valid_ndcg is not None:
            point["valid_ndcg@20"] = round(float(valid_ndcg), 6)
        self.curve.append(point)
        tail = f" valid ndcg@20 {valid_ndcg:.4f}" if valid_ndcg is not None else f" {seconds or 0:.0f}s"
        self.log(f"[{component}] epoch {epoch} loss {loss:.4f}{tail}")


class Scorer:
    name = "scorer"
    trainable = False

    def fit(self, split: Split, ctx: FitContext) -> dict:
        return {}

    def prepare(self, histories: Histories) -> None:
        raise NotImplementedError

    def score(self, users: torch.Tensor, histories: Histories) -> torch.Tensor:
        raise NotImplementedError

    def state(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict) -> "Scorer":
        raise NotImplementedError

    def evaluate(self, histories: Histories, targets: np.ndarray, prepare: bool = True) -> dict[str, float]:
        """Metrics with ``histories`` as both the state and the masked input."""
        if prepare:
            self.prepare(histories)
        return evaluate(lambda u: self.score(u, [histories[i] for i in u.tolist()]), histories, targets)


def items_without_interactions(histories: Histories, n_items: int) -> torch.Tensor:
    """Bool (n_items,): the items no history contains."""
    flat = np.fromiter((i for h in histories for i in h), dtype=np.int64)
    return torch.as_tensor(np.bincount(flat, minlength=n_items) == 0)


def normalise_rows(scores: torch.Tensor) -> torch.Tensor:
    """Per-user z-score, so components on different scales can be mixed linearly."""
    mean = scores.mean(dim=1, keepdim=True)
    std = scores.std(dim=1, keepdim=True).clamp(min=1e-8)
    return (scores - mean) / std
