"""What recording impressions costs serving: ``bench/api_load.py`` with it off and on, interleaved.

    .venv/bin/python bench/impressions_cost.py [--runs 5] [--baseline-checkout DIR]
        [--api-load-args "--endpoints trivial,recommendations --rates 200 ..."]

Each run is one ``bench/api_load.py`` (its prepared shop: $BENCH_DATABASE_URL, $BENCH_DATA_DIR,
prepared by the first run if needed) with ``KMS_RECORD_IMPRESSIONS=0`` (side ``off``: ids and
positions still returned, nothing buffered or written) or ``1`` (side ``on``, the default).
``--baseline-checkout DIR`` adds a third side: another checkout's ``bench/api_load.py`` with
recording on (e.g. the commit before a change to the flush). Sides take turns, run after run, so
a drifting machine load spreads over all of them. Prints, per side, the median over runs of the
recommendations endpoint's closed-loop p50 / p99 / req/s / CPU ms per request of each process
group (gunicorn workers, postgres, redis, the load generator, other) and open-loop p99 at each rate, the
ratio on / off, and a two-sided Mann-Whitney U test of each figure between ``on`` and ``off``.
Writes bench/results/impressions_cost.json: {"sides": {side: {figure: median}}, "ratio_on_to_off":
{figure: ratio}, "p_value_on_vs_off": {figure: p}, "runs": [...], "_meta": {...}}.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARGS = "--endpoints trivial,recommendations --rates 100,200 --duration 10 --closed-duration 10"


def figures(result: dict) -> dict[str, float]:
    rec = result["closed_loop"]["recommendations"]
    out = {"closed_p50_ms": rec["p50_ms"], "closed_p99_ms": rec["p99_ms"], "closed_rps": rec["rps"]}
    for group, ms in rec.get("cpu_ms_per_request", {}).items():  # where the closed loop's CPU went, per request
        out[f"closed_cpu_{group}_ms"] = ms
    for rate, r in result.get("open_loop", {}).get("recommendations", {}).items():
        out[f"open_{rate}_p99_ms"] = r["p99_ms"]
        out[f"open_{rate}_errors"] = r["errors"]
    return out


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per side")
    parser.add_argument("--baseline-checkout", help="another checkout whose api_load runs as side 'baseline'")
    parser.add_argument("--api-load-args", default=DEFAULT_ARGS)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "impressions_cost.json"))
    args = parser.parse_args()

    sides = [("off", ROOT, "0"), ("on", ROOT, "1")]
    if args.baseline_checkout:
        sides.append(("baseline", Path(args.baseline_checkout).resolve(), "1"))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.runs):
            for side, checkout, record in (sides if n % 2 == 0 else sides[::-1]):
                out = Path(tmp) / f"{side}-{n}.json"
                cmd = [sys.executable, str(checkout / "bench" / "api_load.py"), *shlex.split(args.api_load_args),
                       "--out", str(out)]
                load = load_average()
                started = time.perf_counter()
                subprocess.run(cmd, cwd=checkout, env=os.environ | {"KMS_RECORD_IMPRESSIONS": record}, check=True,
                               stdout=subprocess.DEVNULL)
                result = json.loads(out.read_text())
                runs.append({"side": side, "run": n, "load_average_at_start": load,
                             "seconds": round(time.perf_counter() - started, 1), **figures(result)})
                print(json.dumps(runs[-1]), flush=True)

    from scipy.stats import mannwhitneyu

    names = [k for k in runs[0] if k.endswith(("_ms", "_rps"))]
    by_side = {side: [r for r in runs if r["side"] == side] for side, _, _ in sides}
    medians = {side: {k: round(statistics.median(r[k] for r in rs), 2) for k in names} for side, rs in by_side.items()}
    ratio = {k: round(medians["on"][k] / medians["off"][k], 3) if medians["off"][k] else None for k in names}
    p = {k: round(float(mannwhitneyu([r[k] for r in by_side["on"]], [r[k] for r in by_side["off"]],
                                     alternative="two-sided").pvalue), 3) for k in names}
    result = {"sides": medians, "ratio_on_to_off": ratio, "p_value_on_vs_off": p, "runs": runs,
              "_meta": {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                        "command": "bench/impressions_cost.py " + " ".join(sys.argv[1:]),
                        "api_load_args": args.api_load_args, "runs_per_side": args.runs,
                        "baseline_checkout": args.baseline_checkout,
                        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                                 capture_output=True, text=True).stdout.strip(),
                        "machine": f"{os.cpu_count()} CPUs"}}
    print(f"{'figure':22s}" + "".join(f"{s:>12s}" for s in medians) + f"{'on/off':>9s}{'p':>8s}")
    for k in names:
        print(f"{k:22s}" + "".join(f"{medians[s][k]:>12}" for s in medians) + f"{ratio[k]!s:>9}{p[k]:>8}")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
