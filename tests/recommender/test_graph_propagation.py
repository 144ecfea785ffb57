"""The symmetric propagation of the graph models gives LGConv's outputs and gradients."""
import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.nn import LGConv

from recommender.lightgcn import SymmetricLGConv, graph_blocks, to_torch_csr
from recommender.scoring import Knowledge


def _blocks():
    rng = np.random.default_rng(0)
    n_users, n_items, n_ent = 30, 20, 6
    inter = sp.csr_matrix((np.ones(80, np.float32), (rng.integers(0, n_users, 80), rng.integers(0, n_items, 80))),
                          shape=(n_users, n_items))
    inter.data[:] = 1.0
    triples = np.stack([rng.integers(0, n_items, 25), rng.integers(0, 2, 25), rng.integers(0, n_ent, 25)], 1)
    blocks = graph_blocks(inter, Knowledge(n_ent, 2, triples.astype(np.int64)), n_users, n_items)
    return blocks, n_users + n_items + n_ent


def test_blocks_are_symmetric():
    blocks, _ = _blocks()
    assert len(blocks) == 3
    for b in blocks:
        assert abs(b - b.T).max() < 1e-7


def test_symmetric_conv_matches_lgconv_forward_and_backward():
    blocks, n = _blocks()
    torch.manual_seed(0)
    x = torch.randn(n, 8, requires_grad=True)
    grad_out = torch.randn(n, 8)
    outs, grads = [], []
    for conv in (LGConv(normalize=False), SymmetricLGConv(normalize=False)):
        y = sum(conv(x, to_torch_csr(b)) for b in blocks)
        (g,) = torch.autograd.grad(y, x, grad_out)
        outs.append(y.detach())
        grads.append(g)
    assert outs[0].abs().sum() > 0
    torch.testing.assert_close(outs[1], outs[0])
    torch.testing.assert_close(grads[1], grads[0])


def test_symmetric_conv_is_wrong_for_an_asymmetric_matrix():
    """The shortcut relies on symmetry: on an asymmetric matrix its gradient differs (the test can fail)."""
    a = to_torch_csr(sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 2], [0, 0, 0]], dtype=np.float32)))
    x = torch.randn(3, 2, requires_grad=True)
    g_ref = torch.autograd.grad(LGConv(normalize=False)(x, a).sum(), x)[0]
    g_sym = torch.autograd.grad(SymmetricLGConv(normalize=False)(x, a).sum(), x)[0]
    assert not torch.allclose(g_ref, g_sym)
