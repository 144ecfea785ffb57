"""Most-popular baseline: items ranked by interaction count in the prepared state."""
from __future__ import annotations

import numpy as np
import torch

from recommender.scoring import Histories, Scorer


class Popularity(Scorer):
    name = "popularity"

    def __init__(self, n_items: int):
        self.n_items = n_items
        self.counts = torch.zeros(n_items)

    def prepare(self, histories: Histories) -> None:
        flat = np.fromiter((i for h in histories for i in h), dtype=np.int64)
        self.counts = torch.as_tensor(np.bincount(flat, minlength=self.n_items), dtype=torch.float32)

    def score(self, users: torch.Tensor, histories: Histories) -> torch.Tensor:
        return torch.log1p(self.counts).expand(len(users), -1).clone()

    def state(self) -> dict:
        return {"n_items": self.n_items, "counts": self.counts}

    @classmethod
    def from_state(cls, state: dict) -> "Popularity":
        p = cls(state["n_items"])
        p.counts = state["counts"]
        return p
