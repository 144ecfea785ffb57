"""Judge the free queries' pool: the judge's per-query criteria, then the judge's corrections.

    .venv/bin/python bench/gold/search/judge_free.py

Reads free_queries.jsonl (each query's criteria, written with the query: ``grade2`` patterns
that must all match for "what the shopper asked for", ``grade1`` patterns for "the right kind
of product, a constraint missed"), free_pool.jsonl (the pooled top 20 of every system,
written by ``bench/search_relevance.py --pool``) and free_overrides.json (grades the judge set
by hand after reading the products, which win). Patterns match the lower-cased
``title | brand`` for grade 2 (``| cat:leaf category`` added for grade 1: the category may make
a product the right kind, never exactly what was asked for); ``^cat:...$`` matches the leaf
category alone; a title with fewer than two words is a placeholder and graded 0;
``__none__``: nothing in the catalogue is what was asked for. Writes free_qrels.json with the
judged products' titles, so the benchmark can tell whether a catalogue is the one judged.
"""
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLACEHOLDER = "industrial & scientific />."  # the stub title this catalogue gives 24 products


def grade(rules: dict, item: dict) -> int:
    named = f"{item['title']} | {item.get('brand') or ''}".lower()
    text = f"{named} | cat:{item.get('type') or ''}".lower()
    cat = f"cat:{(item.get('type') or '').lower()}"

    def ok(pattern: str, where: str) -> bool:
        if pattern == "__none__":
            return False
        if pattern.startswith("^cat:"):
            return re.search(pattern, cat) is not None
        return re.search(pattern, where) is not None

    if len(re.findall(r"[a-z]{3,}", item["title"].lower())) < 2 or item["title"].lower() == PLACEHOLDER:
        return 0  # a placeholder title tells the shopper nothing
    # "what was asked for" must be visible in the title (or brand); the leaf category may
    # make a product "the right kind" only
    if rules["grade2"] and all(ok(p, named) for p in rules["grade2"]):
        return 2
    if rules["grade2"] and all(ok(p, text) for p in rules["grade2"]):
        return 1
    if rules["grade1"] and all(ok(p, text) for p in rules["grade1"]):
        return 1
    return 0


def main() -> None:
    queries = {q["qid"]: q for q in map(json.loads, (HERE / "free_queries.jsonl").read_text().splitlines())}
    overrides = json.loads((HERE / "free_overrides.json").read_text()) if (HERE / "free_overrides.json").exists() else {}
    qrels, titles, counts = {}, {}, [0, 0, 0]
    for line in (HERE / "free_pool.jsonl").read_text().splitlines():
        pool = json.loads(line)
        rules = queries[pool["qid"]]
        judged = {}
        for item in pool["pool"]:
            g = int(overrides.get(pool["qid"], {}).get(item["id"], grade(rules, item)))
            counts[g] += 1
            if g:
                judged[item["id"]] = g
                titles[item["id"]] = item["title"]
        qrels[pool["qid"]] = judged
    (HERE / "free_qrels.json").write_text(json.dumps({"catalogue": {"titles": titles}, "qrels": qrels}, indent=0))
    print(f"{len(qrels)} queries judged; pooled items graded 0/1/2: {counts}")


if __name__ == "__main__":
    main()
