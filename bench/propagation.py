"""One graph-propagation training step, timed: PyG's LGConv vs the symmetric propagation the graph
models use, under OpenMP's ACTIVE (spinning) and PASSIVE (sleeping) wait policies and 1 or 2 threads.

    .venv/bin/python bench/propagation.py [--nodes 23000] [--edges 120000] [--steps 20]

Each (policy, threads) pair runs in its own process (the policy is read when torch loads). A step is
the forward ``A @ x`` and backward pass of ``(y * y).sum()`` for a random symmetric sparse ``A`` (the
size of Amazon-Scientific's user-item-entity graph by default) and a 64-wide ``x``. Prints ms per step
and writes bench/results/propagation.json. It also times the knowledge-aware layer over the same
nonzeros split into 10 relation blocks: one product per block, and the one weighted product the
encoder uses. Run it on a quiet machine and beside other work: the
policy's effect is on shared cores.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELATIONS = 10


def child(nodes: int, edges: int, steps: int, threads: int) -> dict:
    import numpy as np
    import scipy.sparse as sp
    import torch
    from torch_geometric.nn import LGConv

    sys.path.insert(0, str(ROOT))
    from recommender.lightgcn import RelationGraph, SymmetricLGConv, _WeightedRelationSpMM, to_torch_csr

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    a = sp.coo_matrix((np.ones(edges, np.float32), (rng.integers(0, nodes, edges), rng.integers(0, nodes, edges))),
                      shape=(nodes, nodes))
    adj = to_torch_csr((a + a.T).tocsr())
    x = torch.randn(nodes, 64, requires_grad=True)
    # The knowledge-aware layer: the same nonzeros split into RELATIONS symmetric blocks, one product
    # per block (the encoder before) vs one weighted product over a RelationGraph (the encoder now).
    per = edges // RELATIONS
    parts = []
    for _ in range(RELATIONS):
        b = sp.coo_matrix((np.ones(per, np.float32), (rng.integers(0, nodes, per), rng.integers(0, nodes, per))),
                          shape=(nodes, nodes))
        parts.append((b + b.T).tocsr())
    rel_blocks = [to_torch_csr(b) for b in parts]
    graph = RelationGraph.from_blocks(parts)
    w = torch.ones(RELATIONS, requires_grad=True)
    sym = SymmetricLGConv(normalize=False)
    steps_by_name = {
        "lgconv": lambda: LGConv(normalize=False)(x, adj),
        "symmetric": lambda: sym(x, adj),
        f"relations_{RELATIONS}_one_product_each": lambda: sum(w[r] * sym(x, b) for r, b in enumerate(rel_blocks)),
        f"relations_{RELATIONS}_fused": lambda: _WeightedRelationSpMM.apply(graph, graph.matrix(w.detach()), w, x),
    }
    out = {}
    for name, step in steps_by_name.items():
        for _ in range(2):
            step().pow(2).sum().backward()
        t = time.perf_counter()
        for _ in range(steps):
            step().pow(2).sum().backward()
        out[name] = round((time.perf_counter() - t) / steps * 1000, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=23000)
    ap.add_argument("--edges", type=int, default=120000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.nodes, args.edges, args.steps, args.child)))
        return
    results = {}
    for policy in ("ACTIVE", "PASSIVE"):
        for threads in (1, 2):
            env = {**os.environ, "OMP_WAIT_POLICY": policy}
            proc = subprocess.run([sys.executable, __file__, "--child", str(threads), "--nodes", str(args.nodes),
                                   "--edges", str(args.edges), "--steps", str(args.steps)],
                                  env=env, capture_output=True, text=True, check=True)
            results[f"{policy.lower()}_{threads}t"] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{policy:8s} {threads} thread(s): " + ", ".join(f"{k} {v} ms" for k, v in results[f'{policy.lower()}_{threads}t'].items()),
                  flush=True)
    load = os.getloadavg()[0]
    out = {"nodes": args.nodes, "edges": args.edges, "steps": args.steps, "load_average": round(load, 2),
           "ms_per_step": results, "date": time.strftime("%Y-%m-%d")}
    path = ROOT / "bench" / "results" / "propagation.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"load average {load:.1f}; wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
