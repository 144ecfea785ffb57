"""Interaction data, the standard leave-last-out split and dataset loaders.

Everything is integer-indexed: users 0..n_users-1, items 0..n_items-1. External ids are kept
beside the indices so that results can be mapped back to the catalogue.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

DATASETS_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


@dataclass
class InteractionData:
    """Users' chronologically ordered item sequences plus optional item–entity knowledge."""

    user_ids: list[str]
    item_ids: list[str]
    sequences: list[list[int]]  # per user, item indices in chronological order
    # Knowledge: (item_idx, relation_idx, entity_idx) triples; names index into the lists.
    entity_ids: list[str] = field(default_factory=list)
    relations: list[str] = field(default_factory=list)
    item_entity: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))
    entity_names: list[str] = field(default_factory=list)  # display names, parallel to entity_ids

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return sum(len(s) for s in self.sequences)


@dataclass
class Split:
    """Leave-last-out split: train sequences, one validation and one test target per user.

    Users whose sequence is too short to give both targets get -1 there and are skipped by
    the evaluator for that stage.
    """

    n_users: int
    n_items: int
    train: list[list[int]]
    valid_target: np.ndarray
    test_target: np.ndarray

    def history(self, stage: str) -> list[list[int]]:
        """Items a model may use as input (and that are masked) at ``stage``."""
        if stage == "valid":
            return self.train
        if stage == "test":
            return [
                t + ([int(v)] if v >= 0 else []) for t, v in zip(self.train, self.valid_target)
            ]
        raise ValueError(f"unknown stage {stage!r}")

    def targets(self, stage: str) -> np.ndarray:
        return {"valid": self.valid_target, "test": self.test_target}[stage]

    def matrix(self, stage: str = "valid") -> sp.csr_matrix:
        """Binary user × item matrix of the history at ``stage`` (duplicates collapsed)."""
        return history_matrix(self.history(stage), self.n_users, self.n_items)


def history_matrix(histories: list[list[int]], n_users: int, n_items: int) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.fromiter((i for h in histories for i in h), dtype=np.int64, count=len(rows))
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def leave_last_out(data: InteractionData) -> Split:
    train, valid, test = [], [], []
    for seq in data.sequences:
        if len(seq) >= 3:
            train.append(list(seq[:-2]))
            valid.append(seq[-2])
            test.append(seq[-1])
        elif len(seq) == 2:
            train.append([seq[0]])
            valid.append(-1)
            test.append(seq[1])
        else:
            train.append(list(seq))
            valid.append(-1)
            test.append(-1)
    return Split(
        n_users=data.n_users,
        n_items=data.n_items,
        train=train,
        valid_target=np.asarray(valid, dtype=np.int64),
        test_target=np.asarray(test, dtype=np.int64),
    )


def load_scientific(path: Path | str | None = None) -> tuple[InteractionData, dict[str, dict]]:
    """Amazon Industrial & Scientific: interactions (item ids in order) and item texts.

    Returns the interaction data (users and items in the files' id order) and the raw item
    records keyed by item id.
    """
    root = Path(path) if path else DATASETS_DIR / "amazon-scientific"
    items = json.loads((root / "Scientific.item.json").read_text())
    inter = json.loads((root / "Scientific.inter.json").read_text())
    item_ids = sorted(items, key=int)
    index = {iid: n for n, iid in enumerate(item_ids)}
    user_ids = sorted(inter, key=int)
    sequences = [[index[str(i)] for i in inter[u]] for u in user_ids]
    return InteractionData(user_ids=user_ids, item_ids=item_ids, sequences=sequences), items


def load_user_item_lines(path: Path | str) -> dict[int, list[int]]:
    """The KGAT text format: each line ``user item item ...``."""
    out: dict[int, list[int]] = {}
    with open(path) as fh:
        for line in fh:
            parts = line.split()
            if parts:
                out[int(parts[0])] = [int(x) for x in parts[1:]]
    return out
