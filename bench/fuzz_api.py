#!/usr/bin/env python
"""Fuzz every documented API operation with >= 10,000 generated requests (one command).

    .venv/bin/python bench/fuzz_api.py [--examples 200]

Runs tests/reliability/test_fuzz.py (schemathesis over the OpenAPI schema, in-process WSGI, the
real database, a real ArcadeDB Bolt server, an ingested Amazon-Scientific slice and a trained
model; each operation anonymously and with a write key, schema-valid and schema-violating data)
with --examples generated cases per operation and auth mode on top of schemathesis's coverage
cases, counting failures per request instead of stopping at the first. Prints requests, server
errors and schema violations; merges requests_fuzzed, server_errors, schema_violations and a
``fuzz`` section into bench/results/reliability.json.
Needs PostgreSQL on 127.0.0.1:5432 (trust auth); the database is $BENCH_DATABASE_URL
(default .../kms_fuzz; pytest-django creates and drops test_kms_fuzz).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "reliability.json"


def merge_results(update: dict) -> None:
    """Read, update our keys, write back: bench/fault_drills.py and load_soak.py write other keys."""
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data.update(update)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=200, help="generated cases per operation and auth mode")
    parser.add_argument("--min-requests", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "fuzz.json"
        env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "NEO4J_URI")}
        env |= {"DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kms_fuzz"),
                "KMS_DATA_DIR": str(Path(tmp) / "data"), "KMS_FUZZ_EXAMPLES": str(args.examples),
                "KMS_FUZZ_REPORT": str(report), "KMS_LOG_LEVEL": "CRITICAL", "OMP_NUM_THREADS": "1"}
        started = time.perf_counter()
        command = [sys.executable, "-m", "pytest", "tests/reliability/test_fuzz.py", "-q", "-p", "no:cacheprovider",
                   "-W", "ignore::UserWarning"]
        print("$", " ".join(command[2:]), f"(KMS_FUZZ_EXAMPLES={args.examples})", flush=True)
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if not report.exists():
            print(run.stdout[-5000:], run.stderr[-3000:])
            sys.exit(f"the fuzz run wrote no report (pytest exit {run.returncode})")
        result = json.loads(report.read_text())

    print(f"requests fuzzed    {result['requests']:>7}  ({seconds:.0f} s, {result['requests'] / seconds:.0f} req/s)")
    print(f"server errors      {result['server_errors']:>7}  (5xx answers; known bugs outside kms/api: "
          f"{result['known_bugs'] or 'none'})")
    print(f"schema violations  {result['schema_violations']:>7}  (undocumented status/content type, body not "
          "matching the schema)")
    print("statuses           " + ", ".join(f"{k}: {v}" for k, v in sorted(result["statuses"].items())))
    for key, detail in result["failures"].items():
        print(f"  - {key}: {detail[:300]}")
    if result["requests"] < args.min_requests:
        print(f"WARNING: fewer than {args.min_requests} requests; raise --examples")
    merge_results({
        "requests_fuzzed": result["requests"],
        "server_errors": result["server_errors"],
        "schema_violations": result["schema_violations"],
        "fuzz": {"date": time.strftime("%Y-%m-%d"), "command": f"bench/fuzz_api.py --examples {args.examples}",
                 "seconds": round(seconds, 1), "statuses": result["statuses"], "known_bugs": result["known_bugs"],
                 "failures": result["failures"], "pytest_exit": run.returncode},
    })
    print(f"merged into {RESULTS}")


if __name__ == "__main__":
    main()
