"""SASRec's seconds per training epoch as the shop grows, with the full softmax and the sampled one.

    OMP_NUM_THREADS=1 .venv/bin/python bench/scale_sasrec.py --sizes 1,3,10 [--dataset DIR] [--epochs 1] [--full-sizes 1,3]

The shops of ``bench/shopgen.py``, read as the product would train on them
(``bench/datasets.py load_interactions``: no import, no graph), the leave-last-out training
histories, one SASRec fit of ``--epochs`` epochs without validation (only the training loop is
timed), single-threaded, for ``softmax_items`` 0 (every item in the loss) and the default
(``TrainConfig.seq_softmax_items``). Writes ``bench/results/scale_sasrec.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench.datasets import load_interactions  # noqa: E402
from recommender.data import leave_last_out  # noqa: E402
from recommender.scoring import FitContext, Knowledge  # noqa: E402
from recommender.training import TrainConfig, build_component  # noqa: E402
from scale import growth_exponent  # noqa: E402
from shopgen import DEFAULT_DATASET, generate_shop  # noqa: E402


def epoch_seconds(data, softmax_items: int, epochs: int) -> float:
    split = leave_last_out(data)
    split.valid_target = np.full_like(split.valid_target, -1)  # no validation: the loop alone
    cfg = TrainConfig(seq_epochs=epochs, seq_softmax_items=softmax_items, device="cpu")
    model = build_component("sasrec", cfg, data.n_users, data.n_items, Knowledge())
    ctx = FitContext(data.n_users, data.n_items, Knowledge(),
                     torch.device("cpu"), seed=0, log=lambda s: None)
    t = time.perf_counter()
    model.fit(split, ctx)
    return (time.perf_counter() - t) / epochs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,3,10")
    ap.add_argument("--dataset", default=str(DEFAULT_DATASET))
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--full-sizes", default=None, help="sizes to time the full softmax at too (default: all)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale_sasrec.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    sizes = [int(s) for s in args.sizes.split(",")]
    full_sizes = set(sizes if args.full_sizes is None else [int(s) for s in args.full_sizes.split(",")])
    sampled = TrainConfig().seq_softmax_items
    rows = {"full": [], f"sampled_{sampled}": []}
    shapes = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            path = Path(tmp) / f"shop_{size}.jsonl"
            generate_shop(path, size, dataset=args.dataset)
            data = load_interactions(jsonl=path)
            shapes.append({"users": data.n_users, "items": data.n_items, "interactions": data.n_interactions})
            for key, k in (("full", 0), (f"sampled_{sampled}", sampled)):
                if key == "full" and size not in full_sizes:
                    rows[key].append(None)
                    continue
                rows[key].append(round(epoch_seconds(data, k, args.epochs), 2))
                print(f"size {size} {shapes[-1]}: {key} {rows[key][-1]} s/epoch", flush=True)
    out = {"sizes": sizes, "shapes": shapes, "seconds_per_epoch": rows,
           "exponent": {k: growth_exponent(sizes, v) for k, v in rows.items()},
           "_meta": {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "dataset": Path(args.dataset).name,
                     "epochs": args.epochs, "threads": 1}}
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(out["exponent"]), f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
