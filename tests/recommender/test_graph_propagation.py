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


def test_fused_relation_layer_matches_one_product_per_relation():
    """The knowledge-aware encoder (all relation blocks in one weighted product) gives the outputs and
    gradients (embeddings and relation weights) of the sum of one LGConv per relation block,
    including a pair linked by two relations."""
    from recommender.lightgcn import GraphEncoder, RelationGraph

    rng = np.random.default_rng(1)
    n_users, n_items, n_ent = 12, 9, 5
    inter = sp.csr_matrix((np.ones(30, np.float32), (rng.integers(0, n_users, 30), rng.integers(0, n_items, 30))),
                          shape=(n_users, n_items))
    inter.data[:] = 1.0
    triples = np.array([[0, 0, 1], [0, 1, 1], [2, 1, 3], [4, 2, 0], [5, 0, 2], [7, 2, 4], [8, 1, 3]], dtype=np.int64)
    raw = graph_blocks(inter, Knowledge(n_ent, 3, triples), n_users, n_items)
    n = n_users + n_items + n_ent
    torch.manual_seed(0)
    enc = GraphEncoder(n, 4, 2, 3)
    with torch.no_grad():
        enc.relation_logit.copy_(torch.tensor([0.3, -1.0, 2.0]))
    fused = enc([to_torch_csr(raw[0]), RelationGraph.from_blocks(raw[1:])])
    grad_out = torch.randn_like(fused)
    g_emb, g_rel = torch.autograd.grad(fused, [enc.embedding.weight, enc.relation_logit], grad_out)

    conv = LGConv(normalize=False)
    w = enc.relation_weights()
    x = enc.embedding.weight
    outs = [x]
    for _ in range(2):
        h = conv(x, to_torch_csr(raw[0]))
        for r, b in enumerate(raw[1:]):
            h = h + w[r] * conv(x, to_torch_csr(b))
        x = h
        outs.append(x)
    ref = torch.stack(outs).mean(0)
    r_emb, r_rel = torch.autograd.grad(ref, [enc.embedding.weight, enc.relation_logit], grad_out)
    torch.testing.assert_close(fused, ref)
    torch.testing.assert_close(g_emb, r_emb)
    torch.testing.assert_close(g_rel, r_rel)
    assert g_rel.abs().min() > 0  # every relation's weight gets a gradient
