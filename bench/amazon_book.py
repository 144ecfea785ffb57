"""Amazon-Book (KGAT split): LightGCN on the CPU within a fixed time budget.

    .venv/bin/python bench/amazon_book.py [--minutes 20] [--threads 1] [--with-itemcf]

The split has no validation set and the budget is fixed in advance, so there is no early
stopping or model choice on the test set: LightGCN trains until the budget runs out and is
then scored once. Full ranking, train items masked; Recall@20 = hits / |test items|, NDCG@20
normalised by min(|test items|, 20) ideal hits (KGIN code). Writes
bench/results/amazon_book.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recommender.data import DATASETS_DIR, Split, load_user_item_lines  # noqa: E402
from recommender.lightgcn import GraphRecommender  # noqa: E402
from recommender.metrics import evaluate_multi  # noqa: E402
from recommender.neighbourhood import ItemCF  # noqa: E402
from recommender.scoring import FitContext, Knowledge, pick_device, seed_everything  # noqa: E402

PUBLISHED = {  # KGCL paper, Table 3 (same split, full ranking)
    "BPR-MF": {"recall@20": 0.1244, "ndcg@20": 0.0658},
    "LightGCN": {"recall@20": 0.1398, "ndcg@20": 0.0736},
    "KGAT": {"recall@20": 0.1390, "ndcg@20": 0.0739},
    "KGIN": {"recall@20": 0.1436, "ndcg@20": 0.0748},
    "KGCL": {"recall@20": 0.1496, "ndcg@20": 0.0793},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0, help="training budget")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=8192)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--with-itemcf", action="store_true", help="also score item-CF (no training)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seed_everything(0)

    root = DATASETS_DIR / "amazon-book-kgat"
    train_lines, test_lines = load_user_item_lines(root / "train.txt"), load_user_item_lines(root / "test.txt")
    n_users = max(max(train_lines), max(test_lines)) + 1
    n_items = 1 + max(max((max(v) for v in d.values() if v), default=0) for d in (train_lines, test_lines))
    train = [train_lines.get(u, []) for u in range(n_users)]
    test = [test_lines.get(u, []) for u in range(n_users)]
    none = np.full(n_users, -1, dtype=np.int64)
    split = Split(n_users=n_users, n_items=n_items, train=train, valid_target=none, test_target=none)
    print(f"amazon-book: {n_users} users, {n_items} items, {sum(map(len, train))} train, {sum(map(len, test))} test")

    result = {"dataset": "amazon-book-kgat", "published": PUBLISHED}
    model = GraphRecommender(n_users, n_items, dim=64, layers=3, lr=args.lr, reg=1e-4, batch_size=args.batch_size,
                             epochs=10_000, device=args.device, max_seconds=args.minutes * 60)
    ctx = FitContext(n_users, n_items, Knowledge(), pick_device(args.device), 0)
    start = time.perf_counter()
    info = model.fit(split, ctx)
    seconds = time.perf_counter() - start
    model.prepare(train)
    t = time.perf_counter()
    m = evaluate_multi(lambda u: model.score(u, [train[i] for i in u.tolist()]), train, test, ks=(20,))
    print(f"LightGCN: recall@20 {m['recall@20']:.4f} ndcg@20 {m['ndcg@20']:.4f} after {info['epochs_run']} epochs, "
          f"{seconds:.0f}s training, {time.perf_counter() - t:.0f}s scoring")
    result["ours"] = {"model": "LightGCN (3 layers, 64-d, BPR)", "recall@20": round(m["recall@20"], 5),
                      "ndcg@20": round(m["ndcg@20"], 5), "epochs": info["epochs_run"],
                      "train_seconds": round(seconds, 1), "batch_size": args.batch_size, "lr": args.lr,
                      "budget_minutes": args.minutes, "device": str(pick_device(args.device)),
                      "threads": args.threads}
    if args.with_itemcf:
        cf = ItemCF(n_items, neighbours=100)
        t = time.perf_counter()
        cf.prepare(train)
        m = evaluate_multi(lambda u: cf.score(u, [train[i] for i in u.tolist()]), train, test, ks=(20,))
        result["itemcf"] = {"recall@20": round(m["recall@20"], 5), "ndcg@20": round(m["ndcg@20"], 5),
                            "seconds": round(time.perf_counter() - t, 1)}
        print(f"item-CF: {result['itemcf']}")
    out = ROOT / "bench" / "results" / "amazon_book.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
