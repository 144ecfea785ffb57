import numpy as np
import torch

from recommender.data import history_matrix
from recommender.neighbourhood import ItemCF, UserCF


def test_itemcf_matches_formula_on_tiny_matrix():
    histories = [[0, 1], [0, 1, 2], [1, 2, 3], [3], [0, 2]]
    n_items, top_n = 4, 2
    r = history_matrix(histories, len(histories), n_items).toarray()
    norms = np.sqrt(r.sum(0))
    sim = (r.T @ r) / np.outer(norms, norms)
    np.fill_diagonal(sim, 0.0)
    expected = np.zeros_like(r)
    for i in range(n_items):
        neigh = np.argsort(-sim[:, i], kind="stable")[:top_n]
        neigh = [j for j in neigh if sim[j, i] > 0]
        den = sum(sim[j, i] for j in neigh)
        for u in range(len(histories)):
            expected[u, i] = sum(r[u, j] * sim[j, i] for j in neigh) / den if den else 0.0
    cf = ItemCF(n_items, neighbours=top_n)
    cf.prepare(histories)
    got = cf.score(torch.arange(len(histories)), histories).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_usercf_excludes_self_and_scores_neighbours_items():
    histories = [[0, 1], [0, 1, 2], [3]]
    cf = UserCF(4, neighbours=1)
    cf.prepare(histories)
    s = cf.score(torch.tensor([0]), [histories[0]])[0]
    assert s[2] > 0 and s[3] == 0  # the only neighbour of user 0 is user 1


def test_entitycf_chooses_its_entity_weighting_on_validation_and_keeps_it():
    import scipy.sparse as sp
    import torch

    from recommender.data import leave_last_out
    from recommender.knowledge import item_entity_matrix
    from recommender.neighbourhood import EntityCF
    from recommender.scoring import FitContext, Knowledge

    from .conftest import synthetic

    data = synthetic()
    ie = item_entity_matrix(data.item_entity, data.n_items, len(data.entity_ids))
    # one entity on every item (a root category): IDF gives it the smallest weight
    ie = sp.hstack([ie, sp.csr_matrix(np.ones((data.n_items, 1), dtype=np.float32))]).tocsr()
    idf = EntityCF.idf(ie)
    assert idf[-1] == idf.min() and idf[-1] > 0
    m = EntityCF(data.n_items, ie, neighbours=20)
    info = m.fit(leave_last_out(data), FitContext(data.n_users, data.n_items, Knowledge(), torch.device("cpu"),
                                                  log=lambda s: None))
    assert info["entity_weighting"] in ("binary", "idf")
    assert info["entity_weighting"] == max(info["valid_ndcg@20"], key=info["valid_ndcg@20"].get)
    assert (m.entity_weights is None) == (info["entity_weighting"] == "binary")
    loaded = EntityCF.from_state(m.state())
    assert (loaded.weights != m.weights).nnz == 0
    assert (loaded.entity_weights is None) == (m.entity_weights is None)
    forced = EntityCF(data.n_items, ie, neighbours=20)
    forced.entity_weights = idf
    np.testing.assert_allclose(forced.weighted(ie).toarray()[:, -1], idf[-1])
