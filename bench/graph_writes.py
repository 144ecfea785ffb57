#!/usr/bin/env python
"""Graph-store write micro-benchmark: relationship MERGE vs CREATE on ArcadeDB's Bolt server.

    .venv/bin/python bench/graph_writes.py [--products 2048] [--rounds 2]

Starts a fresh ArcadeDB server, creates 600 entity nodes, then writes rounds of new products in
chunks of 256 as the ingestion does (one transaction per chunk: the products' nodes, then 9
relationships each, two of them to the same two hub categories so hub degree grows to
thousands), alternately with the store's own MERGE statements and the same statements with
CREATE. Prints products/s and relationships/s per round and a node-only round. The first
rounds run on a cold JVM; compare later rounds. No result file: RESULTS.md quotes the print.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graph.server import DATABASE, USER, ArcadeDBProcess  # noqa: E402
from graph.store import GraphConfig, GraphStore  # noqa: E402

CHUNK = 256
TYPES = {"brand": "HAS_BRAND", "material": "MADE_OF", "category": "IN_CATEGORY"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--products", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=2, help="MERGE/CREATE pairs")
    args = ap.parse_args()

    server = ArcadeDBProcess(tempfile.mkdtemp(prefix="kms-graph-writes-"))
    info = server.start()
    store = GraphStore(GraphConfig(uri=info.uri, user=USER, password=info.password, database=DATABASE))
    try:
        store.ensure_schema()
        rng = random.Random(0)
        hubs = ["category:c0", "category:c1"]
        entities = ([f"brand:b{i}" for i in range(150)] + [f"material:m{i}" for i in range(150)]
                    + [f"category:c{i}" for i in range(2, 300)] + hubs)
        store.upsert_nodes([{"uid": e, "props": {"name": e}} for e in entities])

        def write(prefix: str, verb: str) -> None:
            t = time.perf_counter()
            n_rels = 0
            for start in range(0, args.products, CHUNK):
                nodes = [{"uid": f"product:{prefix}{p}", "props": {"title": "t" * 60, "external_id": str(p)}}
                         for p in range(start, min(start + CHUNK, args.products))]
                rels = [{"src": n["uid"], "dst": e, "type": TYPES[e.split(":")[0]],
                         "props": {"status": "auto", "confidence": 0.9, "extractor": "bench"}}
                        for n in nodes for e in rng.sample(entities[:-2], 7) + hubs]
                statements = GraphStore._relationship_statements(rels)  # the store's own MERGE statements
                if verb == "CREATE":
                    statements = [(q.replace("MERGE (a)-", "CREATE (a)-"), params) for q, params in statements]
                store.write_many(GraphStore._node_statements(nodes) + statements)
                n_rels += len(rels)
            dt = time.perf_counter() - t
            print(f"{verb:6s} {args.products} products, {n_rels} relationships: {dt:5.2f}s -> "
                  f"{args.products / dt:6.0f} products/s, {n_rels / dt:6.0f} relationships/s", flush=True)

        for r in range(args.rounds):
            write(f"m{r}-", "MERGE")
            write(f"c{r}-", "CREATE")
        t = time.perf_counter()
        for start in range(0, args.products, CHUNK):
            store.write_many(GraphStore._node_statements(
                [{"uid": f"product:n{p}", "props": {"title": "t" * 60}} for p in range(start, min(start + CHUNK, args.products))]))
        print(f"nodes only: {args.products / (time.perf_counter() - t):.0f} products/s")
    finally:
        store.close()
        server.stop()


if __name__ == "__main__":
    main()
