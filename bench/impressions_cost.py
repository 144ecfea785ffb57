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
    trivial = result["closed_loop"].get("trivial")
    if trivial and trivial["rps"]:
        # the machine's speed drifts between runs (per-request CPU of the same code varied 1.0-1.8 ms
        # on the shared 2-core VM); the trivial endpoint, interleaved with it in the same run, is the yardstick
        out["closed_trivial_rps"] = trivial["rps"]
        out["closed_rps_to_trivial_rps"] = round(rec["rps"] / trivial["rps"], 4)
        out["closed_p99_to_trivial_p99"] = round(rec["p99_ms"] / trivial["p99_ms"], 4) if trivial["p99_ms"] else None
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
    parser.add_argument("--summarise", metavar="LOG",
                        help="no runs: summarise the per-run JSON lines an earlier invocation printed")
    args = parser.parse_args()

    sides = [("off", ROOT, "0"), ("on", ROOT, "1")]
    if args.baseline_checkout:
        sides.append(("baseline", Path(args.baseline_checkout).resolve(), "1"))
    if args.summarise:
        runs = [json.loads(line) for line in Path(args.summarise).read_text().splitlines() if line.startswith('{"side"')]
        sides = [s for s in sides if any(r["side"] == s[0] for r in runs)]
        sides += [(name, None, None) for name in dict.fromkeys(r["side"] for r in runs) if name not in {s[0] for s in sides}]
    else:
        runs = measure(args, sides)
    summarise(args, sides, runs)


def measure(args, sides) -> list[dict]:
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
    return runs


def summarise(args, sides, runs: list[dict]) -> None:
    from scipy.stats import mannwhitneyu

    # every figure any run has (a baseline checkout may report fewer CPU groups); a side's median
    # is over its runs that have the figure
    names = list(dict.fromkeys(k for r in runs for k in r if k.endswith(("_ms", "_rps", "_to_trivial_rps", "_to_trivial_p99"))))
    by_side = {side: [r for r in runs if r["side"] == side] for side, _, _ in sides}

    def values(side, k):
        return [r[k] for r in by_side[side] if r.get(k) is not None]

    medians = {side: {k: round(statistics.median(values(side, k)), 4) if values(side, k) else None for k in names}
               for side in by_side}
    ratio = {k: round(medians["on"][k] / medians["off"][k], 3) if medians["on"][k] is not None and medians["off"][k]
             else None for k in names}
    p = {k: round(float(mannwhitneyu(values("on", k), values("off", k), alternative="two-sided").pvalue), 3)
         if values("on", k) and values("off", k) else None for k in names}
    result = {"sides": medians, "ratio_on_to_off": ratio, "p_value_on_vs_off": p, "runs": runs}
    if "baseline" in by_side:
        result["ratio_on_to_baseline"] = {
            k: round(medians["on"][k] / medians["baseline"][k], 3) if medians["on"][k] is not None and medians["baseline"][k]
            else None for k in names}
        result["p_value_on_vs_baseline"] = {
            k: round(float(mannwhitneyu(values("on", k), values("baseline", k), alternative="two-sided").pvalue), 3)
            if values("on", k) and values("baseline", k) else None for k in names}
    result["_meta"] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                       "command": "bench/impressions_cost.py " + " ".join(sys.argv[1:]),
                       "api_load_args": args.api_load_args, "runs_per_side": args.runs,
                       "baseline_checkout": args.baseline_checkout,
                       "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                                capture_output=True, text=True).stdout.strip(),
                       "machine": f"{os.cpu_count()} CPUs"}
    print(f"{'figure':30s}" + "".join(f"{s:>12s}" for s in medians) + f"{'on/off':>9s}{'p':>8s}")
    for k in names:
        print(f"{k:30s}" + "".join(f"{medians[s][k]!s:>12}" for s in medians) + f"{ratio[k]!s:>9}{p[k]!s:>8}")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
