"""CLI: ``python -m nlp.train_ner --out DIR [--items PATH] [--n-iter N] [--seed S]``."""
from __future__ import annotations

import argparse
import json

from .catalogue import SCIENTIFIC_ITEMS, load_amazon_items
from .training import train_ner


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="artefact directory to write")
    parser.add_argument("--items", default=str(SCIENTIFIC_ITEMS), help="catalogue JSON dump")
    parser.add_argument("--n-iter", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="train on the first N items")
    args = parser.parse_args(argv)
    products = load_amazon_items(args.items)[: args.limit]
    scores = train_ner(products, args.out, n_iter=args.n_iter, seed=args.seed)
    print(json.dumps({k: v for k, v in scores.items() if k != "per_type"}, indent=2))


if __name__ == "__main__":
    main()
