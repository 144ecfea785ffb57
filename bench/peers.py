"""Peer benchmarks: RecBole 1.2.1 (BPR, LightGCN, SASRec, KGAT, KGIN), implicit ALS and
popularity on the project's leave-last-out split, scored with ``recommender.metrics.evaluate``.

    bash bench/setup_peers.sh
    bench/.venv-peers/bin/python bench/peers.py --dataset DIR | --jsonl FILE [--kg DIR] [--models pop,als,...]

The split is the product's (``bench/datasets.py: load_interactions``): what ``manage.py train``
and ``manage.py evaluate`` take after importing the same data. The KG peers get the RecBole
``.kg`` + ``.link`` of ``--kg DIR`` (or of the dataset directory when it has them, e.g.
ml-100k-kg's Freebase triples), else brand and category-path entities from the catalogue.

Runs in the peer venv (bench/.venv-peers: RecBole's old numpy/scipy/pandas pins); it imports the
project's ``recommender`` package directly (that venv has torch/numpy/scipy), so splitting and
scoring are the project's own code. dgl / torch_scatter are replaced by the pure-torch shims in
bench/peers/shims/. Writes bench/results/peers_<dataset>.json (dataset: the directory's name or
the JSONL file's stem) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from datetime import date
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH / "peers" / "shims"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from recommender.data import InteractionData, leave_last_out  # noqa: E402

from bench.datasets import dataset_name, load_catalogue  # noqa: E402
from peers.atomic import export_kg, write_general_inter, write_kg_files, write_sequential_inter  # noqa: E402
from peers.kg import catalogue_kg_triples  # noqa: E402

MODEL_NAMES = {"bpr": "BPR", "lightgcn": "LightGCN", "sasrec": "SASRec", "kgat": "KGAT", "kgin": "KGIN"}
DEFAULT_MODELS = "pop,als,bpr,lightgcn,sasrec,kgat,kgin"
# Wall-clock budget per RecBole fit (training + per-epoch validation scoring), seconds; on top of
# the epoch cap and early-stopping patience. Keeps the whole Scientific run < 30 min on a shared
# 2-core CPU. Scaled by --budget-scale; a model that hits it is marked stopped_by="time_budget".
FIT_BUDGET_S = {"bpr": 180, "lightgcn": 240, "sasrec": 420, "kgat": 300, "kgin": 300}


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


# Standard settings (RecBole 1.2.1 model defaults unless noted), fixed — not tuned on test.
def model_config(key: str, epochs: int, patience: int) -> dict:
    common = {"epochs": epochs, "stopping_step": patience, "learning_rate": 1e-3, "weight_decay": 0.0}
    pairwise = {"train_neg_sample_args": {"distribution": "uniform", "sample_num": 1, "alpha": 1.0,
                                          "dynamic": False, "candidate_num": 0}}
    kg_load = {"load_col": {"inter": ["user_id", "item_id"], "kg": ["head_id", "relation_id", "tail_id"],
                            "link": ["item_id", "entity_id"]},
               # KGAT / KGIN's reference code adds inverse relations; RecBole's switch for that:
               "kg_reverse_r": True}
    cfgs = {
        "bpr": {**common, **pairwise, "train_batch_size": 1024, "embedding_size": 64,
                "load_col": {"inter": ["user_id", "item_id"]}},
        "lightgcn": {**common, **pairwise, "train_batch_size": 1024, "embedding_size": 64, "n_layers": 3,  # paper: 3
                     "reg_weight": 1e-5, "load_col": {"inter": ["user_id", "item_id"]}},
        "sasrec": {**common, "train_batch_size": 256, "train_neg_sample_args": None, "loss_type": "CE",
                   "n_layers": 2, "n_heads": 2, "hidden_size": 64, "inner_size": 256,
                   "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5,
                   # 20 covers the whole train sequence of 99.3% of Scientific users (median 4);
                   # 50 would pad most rows 10x and cost ~4x CPU time per epoch.
                   "MAX_ITEM_LIST_LENGTH": 20,
                   "alias_of_item_id": ["item_id_list"],
                   "load_col": {"inter": ["user_id", "item_id_list", "item_id"]}},
        "kgat": {**common, **pairwise, **kg_load, "train_batch_size": 1024, "embedding_size": 64,
                 "kg_embedding_size": 64, "layers": [64], "mess_dropout": 0.1, "reg_weight": 1e-5,
                 "aggregator_type": "bi"},
        "kgin": {**common, **pairwise, **kg_load, "train_batch_size": 1024, "embedding_size": 64,
                 "reg_weight": 1e-5, "node_dropout_rate": 0.5, "mess_dropout_rate": 0.0,
                 "sim_regularity": 1e-4, "context_hops": 2, "n_factors": 4, "ind": "cosine",
                 "temperature": 0.2},
    }
    return cfgs[key]


# ----------------------------------------------------------------------------- datasets
def recbole_kg_files(root: Path) -> tuple[Path, Path] | None:
    kg, link = sorted(root.glob("*.kg")), sorted(root.glob("*.link"))
    return (kg[0], link[0]) if kg and link else None


def load_recbole_kg(root: Path, data: InteractionData) -> tuple[dict[int, str], list[tuple[str, str, str]]]:
    """RecBole ``.link`` (item id -> entity) and ``.kg`` (head, relation, tail) rows; the link's
    item ids are the catalogue's product ids."""
    kg_path, link_path = recbole_kg_files(root)
    index = {uid: n for n, uid in enumerate(data.item_ids)}
    link = {}
    with open(link_path) as fh:
        next(fh)
        for line in fh:
            i, e = line.rstrip("\n").split("\t")
            if f"product:{i}" in index:
                link[index[f"product:{i}"]] = e
    kg_rows = []
    with open(kg_path) as fh:
        next(fh)
        for line in fh:
            h, r, t = line.rstrip("\n").split("\t")
            kg_rows.append((h, r, t))
    return link, kg_rows


def prepare(dataset: str | None, jsonl: str | None, kg_dir: str | None):
    """The product's split of the dataset, and the knowledge the KG peers get."""
    data, items = load_catalogue(dataset=dataset, jsonl=jsonl)
    split = leave_last_out(data)
    kg_root = Path(kg_dir) if kg_dir else (Path(dataset) if dataset and recbole_kg_files(Path(dataset)) else None)
    if kg_root is not None:
        link, kg_rows = load_recbole_kg(kg_root, data)
        return data, split, {"link": link, "kg_rows": kg_rows, "source": f"{kg_root.name} .kg/.link"}
    triples, source = catalogue_kg_triples(data, items)
    return data, split, {"triples": triples, "entity_triples": [], "source": source}


# ----------------------------------------------------------------------------- main
def table(models: dict) -> str:
    head = f"{'model':<10} {'R@10':>7} {'R@20':>7} {'N@10':>7} {'N@20':>7} {'valN@20':>8} {'train s':>8} {'to best s':>9}"
    lines = [head, "-" * len(head)]
    for name, m in models.items():
        lines.append(
            f"{name:<10} {m['recall@10']:7.4f} {m['recall@20']:7.4f} {m['ndcg@10']:7.4f} {m['ndcg@20']:7.4f} "
            f"{m['valid_ndcg@20']:8.4f} {m['train_seconds']:8.1f} {m['seconds_to_best_valid']:9.1f}"
        )
    return "\n".join(lines)


def markdown(doc: dict) -> str:
    lines = [
        "| model | Recall@10 | Recall@20 | NDCG@10 | NDCG@20 | valid NDCG@20 | train s | s to best valid | epochs (best) | stopped by |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in doc["models"].items():
        ep = f"{m['epochs_run']} ({m['best_epoch']})" if "epochs_run" in m else ""
        lines.append(
            f"| {name} | {m['recall@10']:.4f} | {m['recall@20']:.4f} | {m['ndcg@10']:.4f} | {m['ndcg@20']:.4f} | "
            f"{m['valid_ndcg@20']:.4f} | {m['train_seconds']:.1f} | {m['seconds_to_best_valid']:.1f} | {ep} | "
            f"{m.get('stopped_by', '')} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", metavar="DIR", help="an Amazon dump (<Name>.item.json + .inter.json) or RecBole atomic files")
    src.add_argument("--jsonl", metavar="FILE", help="the generic JSONL (bench/datasets.py export)")
    ap.add_argument("--kg", metavar="DIR", default=None, help="RecBole .kg + .link for the KG peers")
    ap.add_argument("--models", default=DEFAULT_MODELS, help=f"comma list from {DEFAULT_MODELS} (default: all)")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--min-epochs", type=int, default=20,
                    help="warm-up: the early-stopping patience only starts counting after this many "
                         "epochs (LightGCN's validation NDCG dips after epoch 0-1 on Scientific and "
                         "recovers slowly)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch/implicit threads (1: the 2 cores are shared; 2 threads thrash under load)")
    ap.add_argument("--budget-scale", type=float, default=1.0,
                    help="multiply the per-model fit wall budgets (0 = no budget)")
    ap.add_argument("--out", default=None, help="results JSON (default bench/results/peers_<dataset>.json)")
    ap.add_argument("--work", default=None, help="scratch dir (default bench/work/peers_<dataset>)")
    ap.add_argument("--no-refit", dest="refit", action="store_false",
                    help="score the test with the model trained on train only (no refit on train+valid)")
    ap.add_argument("--refit-only", action="store_true",
                    help="only redo the train+valid refit of RecBole models already in the results JSON")
    ap.add_argument("--markdown", action="store_true", help="print the results JSON as a markdown table and exit")
    args = ap.parse_args(argv)
    name = dataset_name(args.dataset, args.jsonl)
    if args.markdown:
        path = Path(args.out) if args.out else BENCH / "results" / f"peers_{name}.json"
        print(markdown(json.loads(path.read_text())))
        return 0

    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    work = Path(args.work) if args.work else BENCH / "work" / f"peers_{name}"
    work.mkdir(parents=True, exist_ok=True)
    out_path = Path(args.out) if args.out else BENCH / "results" / f"peers_{name}.json"
    out_path = out_path.resolve()
    dataset = str(Path(args.dataset).resolve()) if args.dataset else None
    jsonl = str(Path(args.jsonl).resolve()) if args.jsonl else None
    kg_dir = str(Path(args.kg).resolve()) if args.kg else None
    os.chdir(work)  # RecBole writes log_tensorboard/ etc. into the cwd

    data, split, kg = prepare(dataset, jsonl, kg_dir)
    n_valid, n_test = int((split.valid_target >= 0).sum()), int((split.test_target >= 0).sum())
    log(f"{name}: {split.n_users} users, {split.n_items} items, {data.n_interactions} interactions; "
        f"valid users {n_valid}, test users {n_test}")

    # Atomic files: general (+KG) and sequential variants in separate dataset dirs.
    gen_dir, seq_dir = work / "atomic", work / "atomic_seq"
    counts = write_general_inter(gen_dir / name, name, split)
    if "kg_rows" in kg:  # ml-100k: the shipped Freebase KG, items linked by .link
        kg_stats = write_kg_files(gen_dir / name, name, kg["kg_rows"], kg["link"])
    else:
        kg_stats = export_kg(gen_dir / name, name, kg["triples"], kg["entity_triples"])
    seq_max_len = model_config("sasrec", 1, 1)["MAX_ITEM_LIST_LENGTH"]
    seq_counts = write_sequential_inter(seq_dir / name, name, split, max_len=seq_max_len)
    # Refit copies: train file = train + validation (the test model, as for ALS).
    refit_gen_dir, refit_seq_dir = work / "atomic_refit", work / "atomic_seq_refit"
    write_general_inter(refit_gen_dir / name, name, split, refit=True)
    write_sequential_inter(refit_seq_dir / name, name, split, max_len=seq_max_len, refit=True)
    if "kg_rows" in kg:
        write_kg_files(refit_gen_dir / name, name, kg["kg_rows"], kg["link"])
    else:
        export_kg(refit_gen_dir / name, name, kg["triples"], kg["entity_triples"])
    log(f"atomic files: {counts}; sequential {seq_counts}; KG {kg_stats} from {kg['source']}")

    models = [m.strip().lower() for m in args.models.split(",") if m.strip()]
    results: dict[str, dict] = {}
    if out_path.exists():  # keep earlier models' results when re-running a subset
        try:
            prev = json.loads(out_path.read_text())
            if prev.get("dataset") == name:
                results = {k: v for k, v in prev.get("models", {}).items()}
        except Exception:
            pass

    def save():
        doc = {
            "dataset": name,
            "source": {"dataset": args.dataset, "jsonl": args.jsonl, "kg": args.kg},
            "date": date.today().isoformat(),
            "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores (shared), torch threads {args.threads}",
            "protocol": "project leave-last-out split; full ranking, history masked; recommender.metrics.evaluate; "
                        "valid: history=train, target=2nd-to-last; test: history=train+valid (masked / model "
                        "input), target=last",
            "split": {"users": split.n_users, "items": split.n_items, "interactions": data.n_interactions,
                      "valid_users": n_valid, "test_users": n_test, "recbole_rows": counts,
                      "recbole_seq_rows": seq_counts},
            "kg": {**kg_stats, "source": kg["source"]},
            "timing_note": "train_seconds and valid_curve seconds = cumulative training time, validation scoring "
                           "excluded; valid_curve_wall includes it. RecBole dataset/model setup time is reported "
                           "separately as setup_seconds.",
            "versions": versions(),
            "models": results,
        }
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(doc, indent=1) + "\n")

    for key in models:
        t0 = time.perf_counter()
        try:
            if args.refit_only and (key not in MODEL_NAMES or key == "sasrec"):
                continue
            if key == "pop":
                from peers.simple import popularity

                results["Pop"] = {**popularity(split, log=log), "peer": True}
            elif key == "als":
                from peers.simple import als

                results["ALS"] = {**als(split, threads=args.threads, log=log), "peer": True}
            elif key in MODEL_NAMES:
                from peers.recbole_runner import RecBolePeer

                mname = MODEL_NAMES[key]
                cfg = model_config(key, args.epochs, args.patience)
                hp = {k: v for k, v in cfg.items() if k not in ("load_col",)}
                if args.refit_only:
                    entry = dict(results[mname])  # KeyError if the first pass never ran
                    entry.update(entry.pop("test_train_only", {}))
                else:
                    ddir = seq_dir if key == "sasrec" else gen_dir
                    budget = FIT_BUDGET_S[key] * args.budget_scale if args.budget_scale > 0 else None
                    peer = RecBolePeer(mname, ddir, name, split, cfg, log=log, max_fit_seconds=budget,
                                       min_epochs=args.min_epochs)
                    peer.build()
                    fit = peer.fit()
                    valid = peer.evaluate("valid")
                    test = peer.evaluate("test")
                    entry = {
                        **test,
                        "valid_ndcg@20": valid["ndcg@20"],
                        **fit,
                        "hyper_parameters": hp,
                        "peer": True,
                    }
                    log(f"[{mname}] best epoch {fit['best_epoch']} valid ndcg@20 {valid['ndcg@20']:.5f} "
                        f"test ndcg@20 {test['ndcg@20']:.5f} recall@20 {test['recall@20']:.4f} "
                        f"train {fit['train_seconds']:.1f}s (trained on train only)")
                    del peer
                if args.refit and key != "sasrec":
                    # Test model: refit from scratch on train + validation for the epoch count
                    # early stopping chose (best_epoch + 1), as ALS is refit; primary numbers.
                    # (SASRec is not refit: it takes the train+valid sequence as input.)
                    ddir = refit_seq_dir if key == "sasrec" else refit_gen_dir
                    peer = RecBolePeer(mname, ddir, name, split, cfg, log=log)
                    peer.build()
                    n_ep = int(entry["best_epoch"]) + 1
                    secs = peer.train_fixed(n_ep)
                    test_r = peer.evaluate("test")
                    only = {k: entry[k] for k in ("recall@10", "recall@20", "ndcg@10", "ndcg@20")}
                    entry.update(test_r)
                    entry["test_train_only"] = only
                    entry["refit_epochs"] = n_ep
                    entry["refit_train_valid_seconds"] = secs
                    entry["test_model"] = (f"refit on train+valid for {n_ep} epochs; test input/mask = "
                                           "train+valid items" + (f" (sequence, last {seq_max_len})"
                                                                  if key == "sasrec" else ""))
                    log(f"[{mname}] refit {n_ep} epochs on train+valid ({secs:.1f}s): test ndcg@20 "
                        f"{test_r['ndcg@20']:.5f} recall@20 {test_r['recall@20']:.4f} "
                        f"(train-only model: {only['ndcg@20']:.5f})")
                    del peer
                elif not args.refit_only:
                    entry["test_model"] = ("trained on train only; test input/mask = train+valid items"
                                           + (f" (sequence, last {seq_max_len})" if key == "sasrec" else ""))
                results[mname] = entry
            else:
                log(f"unknown model {key!r}; skipped")
                continue
        except Exception as exc:  # one failing peer must not lose the others
            import traceback

            traceback.print_exc()
            log(f"[{key}] FAILED: {type(exc).__name__}: {exc}")
            continue
        log(f"[{key}] done in {time.perf_counter() - t0:.1f}s wall")
        save()

    save()
    print(table(results))
    print(f"wrote {out_path}")
    return 0


def versions() -> dict:
    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    for mod in ("scipy", "pandas", "recbole", "implicit"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:
            pass
    return out


if __name__ == "__main__":
    sys.exit(main())
