import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from recommender.data import InteractionData  # noqa: E402
from recommender.knowledge import with_entities  # noqa: E402

# Tiny tensors: one thread avoids OpenMP spin-waiting on a shared machine.
torch.set_num_threads(1)


def synthetic(n_users: int = 120, n_items: int = 48, n_groups: int = 4, seed: int = 0) -> InteractionData:
    """Users buy mostly inside one item group, in a loose group order; items carry a brand
    (two per group) and a category (one per group) so the knowledge graph mirrors the groups."""
    rng = np.random.default_rng(seed)
    group_of = np.arange(n_items) % n_groups
    sequences = []
    for u in range(n_users):
        g = u % n_groups
        own = np.flatnonzero(group_of == g)
        length = int(rng.integers(5, 10))
        seq = [int(x) for x in rng.choice(own, size=min(length, len(own)), replace=False)]
        if rng.random() < 0.3:
            seq.insert(int(rng.integers(0, len(seq))), int(rng.integers(0, n_items)))
        sequences.append(list(dict.fromkeys(seq)))
    data = InteractionData(
        user_ids=[f"u{u}" for u in range(n_users)],
        item_ids=[f"i{i}" for i in range(n_items)],
        sequences=sequences,
    )
    triples = []
    for i in range(n_items):
        g = int(group_of[i])
        brand = f"B{g}{i % 2}"
        triples.append((f"i{i}", "HAS_BRAND", f"brand:{brand.lower()}", brand))
        triples.append((f"i{i}", "IN_CATEGORY", f"category:cat{g}", f"Cat{g}"))
    return with_entities(data, triples)


@pytest.fixture
def data() -> InteractionData:
    return synthetic()
