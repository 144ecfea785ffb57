"""CPU of writing 200 buffered lists (impressions) four ways, in this process, against $DATABASE_URL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kms_bench .venv/bin/python bench/impressions_write.py [--trials 5]

``bulk_create`` (the flusher before 2026-12-02), one multi-row INSERT, ``executemany`` of a one-row
INSERT, and ``kms.experiments.impressions.insert_rows`` (COPY on PostgreSQL). Prints the median and
range of process CPU ms per 200 rows for each, and the local PostgreSQL backend's CPU (from
/proc, clock-tick resolution, so averaged over the trials); the rows are written for real (migrate first).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import process_cpu  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--rows", type=int, default=200)
    args = ap.parse_args()
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kms.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from kms.experiments import impressions as imp
    from kms.experiments.models import Impression

    call_command("migrate", verbosity=0)
    q = connection.ops.quote_name
    table = q(Impression._meta.db_table)
    columns = ", ".join(q(Impression._meta.get_field(c).column) for c in imp.COLUMNS)
    one = "(" + ", ".join(["%s"] * len(imp.COLUMNS)) + ")"

    def values(rows):
        return [(*r[:6], json.dumps(r[6]), connection.ops.adapt_datetimefield_value(r[7])) for r in rows]

    def bulk_create(rows):
        Impression.objects.bulk_create([Impression(recommendation_id=rid, user=u, surface=s, model_version=v,
                                                   experiment_id=e, arm=a, items=i, created_at=t)
                                        for rid, u, s, v, e, a, i, t in rows], ignore_conflicts=True)

    def multi_row_insert(rows):
        with connection.cursor() as c:
            c.execute(f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([one] * len(rows)),
                      [x for v in values(rows) for x in v])

    def executemany(rows):
        with connection.cursor() as c:
            c.executemany(f"INSERT INTO {table} ({columns}) VALUES {one}", values(rows))

    ways = {"bulk_create": bulk_create, "multi_row_insert": multi_row_insert, "executemany": executemany,
            "insert_rows": imp.insert_rows}
    cpu = {name: [] for name in ways}
    server = {name: [] for name in ways}
    with connection.cursor() as c:
        c.execute("SELECT pg_backend_pid()" if connection.vendor == "postgresql" else "SELECT 0")
        backend = c.fetchone()[0]

    def server_cpu() -> float:
        """The database backend's CPU seconds (a local PostgreSQL), else 0."""
        found = process_cpu(backend) if backend else None
        return found[1] if found else 0.0
    for _ in range(args.trials):
        for name, write in ways.items():  # interleaved
            rows = [(imp.new_recommendation_id(), f"user{n}", "recommendations", 1, None, "",
                     [f"P{n}-{j}" for j in range(20)], timezone.now()) for n in range(args.rows)]
            t, b = time.process_time(), server_cpu()
            write(rows)
            cpu[name].append((time.process_time() - t) * 1e3)
            server[name].append((server_cpu() - b) * 1e3)
    print(f"{connection.vendor}, {args.rows} lists of 20 items, {args.trials} trials: CPU ms (median, min-max)"
          " of this process, and of the database backend (clock-tick resolution: mean over trials)")
    for name, ms in cpu.items():
        print(f"  {name:18s} {statistics.median(ms):6.1f}  ({min(ms):.1f}-{max(ms):.1f})"
              f"   server {sum(server[name]) / len(server[name]):6.1f}")


if __name__ == "__main__":
    main()
