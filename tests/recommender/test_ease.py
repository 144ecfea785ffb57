import numpy as np
import torch

from recommender.data import leave_last_out
from recommender.neighbourhood import EASE
from recommender.scoring import FitContext, Knowledge


def test_ease_closed_form_matches_the_dense_solution_and_picks_reg_on_validation():
    from .conftest import synthetic

    data = synthetic()
    split = leave_last_out(data)
    m = EASE(data.n_items, neighbours=data.n_items)
    info = m.fit(split, FitContext(data.n_users, data.n_items, Knowledge(), torch.device("cpu"), log=lambda s: None))
    assert info["reg_scale"] in EASE.REG_GRID and set(info["grid"]) == {str(g) for g in EASE.REG_GRID}
    hist = split.history("test")
    m.prepare(hist)
    x = np.zeros((data.n_users, data.n_items))
    for u, h in enumerate(hist):
        x[u, h] = 1.0
    g = x.T @ x
    g[np.diag_indices_from(g)] += m.reg * np.mean(np.diag(x.T @ x))
    p = np.linalg.inv(g)
    b = p / -np.diag(p)
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(m.weights.toarray(), b, rtol=1e-4, atol=1e-5)
    scores = m.score(torch.arange(5), hist[:5])
    np.testing.assert_allclose(scores.numpy(), (x[:5] @ b), rtol=1e-4, atol=1e-5)
    # the sparse form keeps only the largest weights of each column
    small = EASE(data.n_items, neighbours=5, reg=m.reg)
    small.prepare(hist)
    assert (np.diff(small.weights.tocsc().indptr) <= 5).all()
    loaded = EASE.from_state(small.state())
    assert (loaded.weights != small.weights).nnz == 0 and loaded.reg == small.reg


def test_ease_skips_catalogues_too_large_for_a_dense_inverse():
    from .conftest import synthetic

    data = synthetic()
    m = EASE(data.n_items, max_items=10)
    info = m.fit(leave_last_out(data), FitContext(data.n_users, data.n_items, Knowledge(), torch.device("cpu"),
                                                   log=lambda s: None))
    assert "skipped" in info
    m.prepare(data.sequences)
    assert float(m.score(torch.arange(3), data.sequences[:3]).abs().sum()) == 0.0
