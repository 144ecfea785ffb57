#!/usr/bin/env python
"""What the API contract costs (issue #15.5): per record, validating a product or event the way
bulk imports do (``clean_product`` / ``clean_event``) and the way a fresh DRF serializer would;
per answer, rendering a serving read path's dict through its response serializer.

    .venv/bin/python bench/record_validation.py

Best of 5 repeats, in µs. No database needed (the zero-setup settings).
"""
from __future__ import annotations

import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kms.settings")

import django  # noqa: E402

django.setup()

from rest_framework.renderers import JSONRenderer  # noqa: E402

from kms.catalogue.api.serializers import ProductWrite  # noqa: E402
from kms.catalogue.services import ProductValidationError, clean_product  # noqa: E402
from kms.events.api.serializers import EventWrite  # noqa: E402
from kms.events.services import clean_event  # noqa: E402
from kms.recs.api.serializers import RecommendationResponse  # noqa: E402
from kms.search.api.serializers import SearchResponse  # noqa: E402

PRODUCT = {"external_id": "sku-1", "title": "Stanley TRA708T 1/2-Inch Heavy Duty Staples",
           "description": "Heavy duty " * 40, "brand": "Stanley",
           "category_path": ["Industrial & Scientific", "Fasteners", "Staples"],
           "attributes": {"colour": "silver", "count": 1000}}
PRODUCT_ALIASES = {"id": 12345, "title": "Arrow T50", "categories": "Tools,Staplers,Manual"}
PRODUCT_BAD = {"external_id": "x", "title": 42}
EVENT = {"user": "u1", "product": "sku-1", "type": "purchase", "value": 1, "timestamp": "2024-01-01T10:00:00Z",
         "event_id": "ev-123"}
EVENT_UNIX = {"user": "u1", "item": "sku-1", "type": "view", "timestamp": 1704103200}


def best(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def refused(record):
    try:
        clean_product(record)
    except ProductValidationError:
        pass


def main() -> None:
    n = 20_000
    print("per record (µs)")
    for name, fn in [("clean_product, all fields", lambda: clean_product(PRODUCT)),
                     ("clean_product, aliases", lambda: clean_product(PRODUCT_ALIASES)),
                     ("clean_product, refused", lambda: refused(PRODUCT_BAD)),
                     ("clean_event, ISO time", lambda: clean_event(EVENT)),
                     ("clean_event, Unix time", lambda: clean_event(EVENT_UNIX))]:
        print(f"  {name:34s} {best(fn, n):7.1f}")
    for name, fn in [("ProductWrite(data=).is_valid()", lambda: ProductWrite(data=PRODUCT).is_valid()),
                     ("EventWrite(data=).is_valid()", lambda: EventWrite(data=EVENT).is_valid())]:
        print(f"  {name:34s} {best(fn, n // 4):7.1f}  (a fresh serializer per record)")

    items = [{"product": f"B00{i:05d}", "title": f"Product title number {i}", "brand": "Brand",
              "score": 0.5 - i / 100, "position": i + 1} for i in range(20)]
    rec = {"user": "u1", "source": "model", "model_version": 3, "recommendation_id": "r" * 32, "items": items}
    search = {"query": "staples", "understood": {"entities": [], "terms": ["staples"], "recognisers": ["rules"],
                                                 "corrections": {}, "no_good_match": False},
              "user": None, "index": {"products": 5000, "graph": "bolt", "build_seconds": 1.2},
              "total_candidates": 300, "recommendation_id": "r" * 32,
              "items": [dict(it, relevance=1.0, personal=0.0, matched=["text"]) for it in items]}
    render = JSONRenderer().render
    print("per answer, k=20 (µs)")
    for name, cls, body in [("recommendations", RecommendationResponse, rec), ("search", SearchResponse, search)]:
        plain = best(lambda: render(body), 2000)
        through = best(lambda: render(cls(body).data), 2000)
        print(f"  {name:16s} rendered as built {plain:6.1f}, through {cls.__name__} {through:6.1f} "
              f"(+{through - plain:.0f})")


if __name__ == "__main__":
    main()
