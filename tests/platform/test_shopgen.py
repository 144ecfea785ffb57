"""bench/shopgen.py: a synthetic shop S times a real one, from the real one's data, seeded."""
import json
from collections import Counter
from datetime import datetime

import pytest

from bench.datasets import catalogue_products, jsonl_records
from bench.shopgen import generate_shop
from kms.catalogue.importers import import_jsonl
from recommender.data import DATASETS_DIR


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny real sample, under a name of its own: the first 60 users of a bundled Amazon dump
    and the items they bought."""
    real = DATASETS_DIR / "amazon-scientific"
    items = json.loads(next(real.glob("*.item.json")).read_text())
    inter = json.loads(next(real.glob("*.inter.json")).read_text())
    users = {u: inter[u] for u in list(inter)[:60]}
    bought = {str(i) for seq in users.values() for i in seq}
    root = tmp_path_factory.mktemp("tiny")
    (root / "Tiny.item.json").write_text(json.dumps({k: v for k, v in items.items() if k in bought}))
    (root / "Tiny.inter.json").write_text(json.dumps(users))
    return root


def _shop(source, tmp_path, scale, seed=0):
    path = tmp_path / f"shop_{scale}_{seed}.jsonl"
    counts = generate_shop(path, scale, dataset=source, seed=seed)
    records = list(jsonl_records(path))
    return path, counts, [r for r in records if r.get("kind") != "event"], [r for r in records if r.get("kind") == "event"]


def _real(uid: str) -> str:
    return uid.split("~s")[0]


def test_sizes_scale_linearly_and_scale_one_is_the_source(source, tmp_path):
    real_products = catalogue_products(source)
    real_events = sum(len(s) for s in json.loads((source / "Tiny.inter.json").read_text()).values())
    _, c1, p1, e1 = _shop(source, tmp_path, 1)
    _, c3, p3, e3 = _shop(source, tmp_path, 3)
    assert (c1["products"], c1["events"], c1["users"]) == (len(real_products), real_events, 60)
    assert (c3["products"], c3["events"], c3["users"]) == (3 * len(real_products), 3 * real_events, 180)
    assert {p["external_id"]: p["title"] for p in p1} == {p["external_id"]: p["title"] for p in real_products}
    assert len({p["external_id"] for p in p3}) == len(p3)  # no id twice


def test_text_category_and_brand_come_from_the_source(source, tmp_path):
    real = catalogue_products(source)
    paths, brands = {tuple(p["category_path"]) for p in real}, {p["brand"] for p in real}
    words = {w for p in real for w in p["title"].split()}
    _, _, products, _ = _shop(source, tmp_path, 4)
    synthetic = [p for p in products if "~s" in p["external_id"]]
    assert len(synthetic) == 3 * len(real)
    assert all(tuple(p["category_path"]) in paths and p["brand"] in brands for p in synthetic)
    assert all(set(p["title"].split()) <= words for p in synthetic)
    # recombined, not copied: most variants' titles are no real title
    real_titles = {p["title"] for p in real}
    assert sum(p["title"] not in real_titles for p in synthetic) > 0.5 * len(synthetic)


def test_sequences_are_real_ones_and_popularity_is_heavy_tailed(source, tmp_path):
    inter = json.loads((source / "Tiny.inter.json").read_text())
    _, _, products, events = _shop(source, tmp_path, 5)
    seqs: dict[str, list[dict]] = {}
    for e in events:
        seqs.setdefault(e["user"], []).append(e)
    for user, seq in seqs.items():
        ordered = sorted(seq, key=lambda e: datetime.fromisoformat(e["timestamp"]))
        assert [_real(e["product"]) for e in ordered] == [str(i) for i in inter[_real(user)]]
    counts = Counter(e["product"] for e in events)
    per_product = sorted((counts.get(p["external_id"], 0) for p in products), reverse=True)
    top = per_product[:len(per_product) // 10]
    assert sum(top) > 0.3 * sum(per_product)  # a uniform shop would give 10%
    by_variant = Counter(int(p.split("~s")[1]) if "~s" in p else 0 for p in counts.elements())
    assert by_variant[0] > by_variant[1] > by_variant[2] > by_variant[4]  # Zipf across an item's variants


def test_same_seed_same_file(source, tmp_path):
    a, *_ = _shop(source, tmp_path, 3, seed=7)
    b = tmp_path / "again.jsonl"
    generate_shop(b, 3, dataset=source, seed=7)
    c, *_ = _shop(source, tmp_path, 3, seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


@pytest.mark.django_db
def test_the_product_imports_it_without_errors(source, tmp_path, kms_graph):
    path, counts, _, _ = _shop(source, tmp_path, 2)
    summary = import_jsonl(path)
    assert not summary["products"]["errors"] and not summary["events"]["errors"], summary
    from kms.catalogue.models import Product
    from kms.events.models import Interaction

    assert Product.objects.count() == counts["products"]
    assert Interaction.objects.count() == counts["events"]
