"""Memory of a gunicorn web worker at 1x and 10x the users (one command).

    .venv/bin/python bench/serving_memory.py [--factor 10] [--requests 3000] [--workers 2]

Uses the database and model ``bench/api_load.py`` prepares (BENCH_DATABASE_URL, BENCH_DATA_DIR).
The 10x model is the active (1x) artefact with every user replicated ``--factor`` times
(``replicate_users``: ids suffixed ``~rN``; histories and every user-indexed tensor or sparse
matrix row copied, found generically as the privacy scrub finds them), registered as a model
version and activated; its serving files are written as activation-time training writes them.
For each size: gunicorn starts, every worker answers ``--requests`` recommendation requests
for users drawn across the whole id space (all replicas), then each worker's RSS, PSS and USS
(private) are read from /proc/PID/smaps_rollup. The 1x version is active again afterwards.
Writes bench/results/serving_memory.json.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
import urllib.request
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import api_load  # noqa: E402


def _replicate(obj, n_users: int, factor: int):
    """Every user-indexed tensor / sparse state in ``obj`` with its rows repeated ``factor`` times."""
    if isinstance(obj, torch.Tensor):
        if obj.dim() >= 1 and obj.shape[0] == n_users and obj.is_floating_point():
            return obj.repeat(factor, *([1] * (obj.dim() - 1)))
        return obj
    if isinstance(obj, dict):
        if {"data", "indices", "indptr", "shape"} <= set(obj) and list(obj["shape"])[0] == n_users:
            indptr = torch.as_tensor(obj["indptr"])
            nnz = int(indptr[-1])
            data = torch.as_tensor(obj["data"])[:nnz].repeat(factor)
            indices = torch.as_tensor(obj["indices"])[:nnz].repeat(factor)
            offsets = torch.cat([indptr[:-1] + k * nnz for k in range(factor)] + [torch.as_tensor([factor * nnz])])
            shape = [n_users * factor] + list(obj["shape"])[1:]
            return obj | {"data": data, "indices": indices, "indptr": offsets.to(indptr.dtype), "shape": shape}
        return {k: _replicate(v, n_users, factor) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_replicate(v, n_users, factor) for v in obj]
    return obj


def replicate_users(src: Path, dst: Path, factor: int) -> int:
    """A model artefact at ``dst``: the one at ``src`` with each user ``factor`` times; returns users."""
    dst.mkdir(parents=True, exist_ok=True)
    meta = json.loads((src / "model.json").read_text())
    n = len(meta["user_ids"])
    meta["user_ids"] = [uid if k == 0 else f"{uid}~r{k}" for k in range(factor) for uid in meta["user_ids"]]
    state = torch.load(src / "state.pt", map_location="cpu", weights_only=True)
    state["history_flat"] = state["history_flat"].repeat(factor)
    state["history_len"] = state["history_len"].repeat(factor)
    state["components"] = _replicate(state["components"], n, factor)
    torch.save(state, dst / "state.pt")
    (dst / "model.json").write_text(json.dumps(meta))
    return len(meta["user_ids"])


def measure(args, env, data_dir: Path, users: list[str], secret: str) -> list[dict]:
    server, port = api_load.start_gunicorn(args, env, data_dir)
    try:
        headers = {"Authorization": f"Api-Key {secret}"}
        rng = random.Random(0)
        started = time.perf_counter()
        for _ in range(args.requests):
            user = urllib.request.quote(rng.choice(users), safe="")
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/users/{user}/recommendations?k=20",
                                         headers=headers)
            urllib.request.urlopen(req, timeout=120).read()
        seconds = time.perf_counter() - started
        return {"workers": api_load.worker_memory(server), "requests": args.requests,
                "seconds": round(seconds, 1), "load": api_load.uptime()}
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--users", type=int, default=8317, help="as bench/api_load.py prepares")
    args = parser.parse_args()
    with api_load.bench_environment(args.users, False) as (env, data_dir, _prep):
        env = env | {"KMS_SERVING_REDIS_URL": "redis://127.0.0.1:6379/4"}
        info = json.loads(api_load.django_eval(
            "import json\nfrom kms.recs.services import active_version\nfrom kms.api.models import ApiKey\n"
            "v = active_version()\nkey, secret = ApiKey.issue('bench-memory', 'read')\n"
            "print(json.dumps({'id': v.pk, 'path': v.path, 'secret': secret}))", env))
        src = Path(info["path"])
        base_users = json.loads((src / "model.json").read_text())["user_ids"]
        results = {}
        dst = src.with_name(src.name + f"-x{args.factor}")
        started = time.perf_counter()
        n_big = replicate_users(src, dst, args.factor)
        big_id = int(api_load.django_eval(
            "from recommender.serving import RecommendationIndex\nfrom kms.recs.models import ModelVersion\n"
            "from kms.recs.services import activate\n"
            f"src = ModelVersion.objects.get(pk={info['id']})\n"
            f"v = ModelVersion.objects.create(state='ready', path={str(dst)!r}, params=src.params, metrics=src.metrics,"
            f" message='bench/serving_memory.py: version {info['id']} with users x{args.factor}')\n"
            f"RecommendationIndex.load({str(dst)!r}).model\nactivate(v)\nprint(v.pk)", env))
        build_s = round(time.perf_counter() - started, 1)
        try:
            big_users = [f"{u}~r{k}" if k else u for k in range(args.factor) for u in base_users]
            results[f"{args.factor}x"] = measure(args, env, data_dir, big_users, info["secret"]) | {
                "users": n_big, "version": big_id, "replicate_and_serving_files_s": build_s}
        finally:
            api_load.django_eval("from kms.recs.models import ModelVersion\nfrom kms.recs.services import activate\n"
                                 f"activate(ModelVersion.objects.get(pk={info['id']}))", env)
        results["1x"] = measure(args, env, data_dir, base_users, info["secret"]) | {"users": len(base_users),
                                                                                    "version": info["id"]}
        files = {name: round(sum(f.stat().st_size for f in (d / "serving").glob("*.npy")) / 2**20, 1)
                 for name, d in (("1x", src), (f"{args.factor}x", dst))}
    out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": api_load.git_commit(),
           "command": "bench/serving_memory.py " + " ".join(sys.argv[1:]),
           "gunicorn": f"{args.workers} workers x {args.threads} threads", "serving_files_mb": files, **results}
    print(json.dumps(out, indent=2))
    path = ROOT / "bench" / "results" / "serving_memory.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
