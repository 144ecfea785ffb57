"""Search relevance: ours (GET /search's service) vs PostgreSQL full-text search and plain BM25.

    .venv/bin/python bench/search_relevance.py [--dataset DIR | --jsonl FILE] [--data-dir DIR]

A fresh data dir is prepared as the product does it (scripts/demo.sh): import the catalogue
with every user's last interaction held out, ingest (NLP facts into the graph store), a quick
training run for personalisation. ``--data-dir`` reuses one prepared before. The query sets
(bench/gold/search/README.md) are generated from the imported catalogue and its facts, so the
benchmark runs unchanged on any catalogue; the free-query set is read from
bench/gold/search/free_queries.jsonl when the dataset is the one it was written for.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PY = str(ROOT / ".venv" / "bin" / "python")
GOLD = ROOT / "bench" / "gold" / "search"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/kms_search_bench"
TRAIN_PARAMS = {"epochs": 30, "dim": 32, "threads": 1, "seed": 0, "eval_every": 5}
EPOCH = datetime(2018, 1, 1, tzinfo=timezone.utc)


# --- catalogue loading (any dataset dir in the item/inter JSON layout, or generic JSONL) -----------
def load_dataset(dataset: Path | None, jsonl: Path | None) -> tuple[list[dict], dict[str, list[str]]]:
    """Products (generic JSONL shape) and each user's items in time order."""
    if jsonl:
        products, events = [], []
        with open(jsonl, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                rec = json.loads(line)
                (events if rec.get("kind") == "event" else products).append(rec)
        events.sort(key=lambda e: (str(e.get("timestamp") or ""),))
        seqs: dict[str, list[str]] = {}
        for e in events:
            seqs.setdefault(str(e["user"]), []).append(str(e["product"]))
        return products, seqs
    items_file = sorted(glob.glob(str(dataset / "*item*.json")))
    inter_file = sorted(glob.glob(str(dataset / "*inter*.json")))
    if not items_file or not inter_file:
        raise SystemExit(f"{dataset}: expected an *item*.json and an *inter*.json file")
    items = json.loads(Path(items_file[0]).read_text())
    products = [{"external_id": str(iid), "title": rec.get("title") or "", "description": rec.get("description") or "",
                 "brand": rec.get("brand") or "", "categories": rec.get("categories") or ""}
                for iid, rec in items.items()]
    inter = json.loads(Path(inter_file[0]).read_text())
    return products, {str(u): [str(i) for i in seq] for u, seq in inter.items()}


def holdout(seqs: dict[str, list[str]]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Leave-last-out: history without the last item, and the held-out item of users with >= 3."""
    history, target = {}, {}
    for u, seq in seqs.items():
        if len(seq) >= 3:
            history[u], target[u] = seq[:-1], seq[-1]
        else:
            history[u] = seq
    return history, target


def write_import_file(path: Path, products: list[dict], history: dict[str, list[str]]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for p in products:
            p = {k: v for k, v in p.items() if k != "kind"}
            fh.write(json.dumps(p) + "\n")
        for u, seq in history.items():
            for pos, item in enumerate(seq):
                fh.write(json.dumps({"kind": "event", "user": u, "product": item, "type": "purchase",
                                     "event_id": f"srb-{u}-{pos}",
                                     "timestamp": (EPOCH + timedelta(seconds=pos)).isoformat()}) + "\n")


def ensure_database(url: str, fresh: bool) -> None:
    """The benchmark's own database; ``fresh`` (a data dir about to be prepared) starts it empty."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def sh(args, env):
    print("$", " ".join(map(str, args)), flush=True)
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode:
        print(out.stdout[-2000:], out.stderr[-4000:])
        raise SystemExit(f"step failed: {args}")
    return out.stdout


def prepare(data_dir: Path, env: dict, products, history, train_params: dict) -> dict:
    """Import (history only), ingest, quick train — the steps of scripts/demo.sh."""
    data_dir.mkdir(parents=True, exist_ok=True)
    import_file = data_dir / "search_bench_import.jsonl"
    write_import_file(import_file, products, history)
    timings = {}
    for step, args in [("migrate", [PY, "manage.py", "migrate", "-v", "0"]),
                       ("import", [PY, "manage.py", "import_catalogue", str(import_file)]),
                       ("ingest", [PY, "manage.py", "ingest"]),
                       ("train", [PY, "manage.py", "train", "--params", json.dumps(train_params)])]:
        started = time.perf_counter()
        sh(args, env)
        timings[step] = round(time.perf_counter() - started, 1)
    (data_dir / "search_bench_prepared.json").write_text(json.dumps({"seconds": timings}))
    return timings



# --- the catalogue as the generators and judges see it ----------------------------------------------
class Catalogue:
    """Catalogue fields and extracted facts, read once from the prepared database."""

    def __init__(self):
        from kms.catalogue.models import Product
        from kms.knowledge.models import Fact
        from kms.knowledge.services import build_knowledge_base
        from nlp.measures import find_measures, measure_key
        from nlp.normalize import category_key, split_category_path

        self.kb = kb = build_knowledge_base()
        rows = list(Product.objects.order_by("id").values_list("external_id", "title", "description", "brand",
                                                                "category_path"))
        self.ids = [r[0] for r in rows]
        self.title = {r[0]: r[1] or "" for r in rows}
        self.description = {r[0]: r[2] or "" for r in rows}
        self.brand = {r[0]: r[3] or "" for r in rows}
        self.brand_key = {r[0]: (kb.link("BRAND", r[3]) if r[3] else None) for r in rows}
        self.type_key, self.type_name, self.leaf = {}, {}, {}
        for r in rows:
            parts = split_category_path(r[4] or [])
            if parts:
                self.leaf[r[0]] = category_key(parts)
                self.type_key[r[0]] = kb.link("PRODUCT_TYPE", parts[-1])
                self.type_name[r[0]] = parts[-1]
        self.entities: dict[str, dict[str, set]] = {e: {} for e in self.ids}
        self.entity_name: dict[str, str] = {}
        for ext, rel, uid, name in (Fact.objects.exclude(status="rejected")
                                    .values_list("product__external_id", "relation", "entity__uid", "entity__name")):
            self.entities.setdefault(ext, {}).setdefault(rel, set()).add(uid)
            self.entity_name[uid] = name
            if rel == "IS_PRODUCT_TYPE" and not self.type_key.get(ext):
                self.type_key[ext] = uid.split(":", 1)[1]
                self.type_name[ext] = name
        self.title_measures = {e: list(find_measures(self.title[e])) for e in self.ids}
        self.text_measures = {e: {measure_key(m.value, m.unit, m.dimension)
                                  for m in find_measures(self.title[e] + " . " + self.description[e][:4000])}
                              for e in self.ids}

    def materials(self, ext: str) -> set[str]:
        return {u.split(":", 1)[1] for u in self.entities.get(ext, {}).get("MADE_OF", ())}

    def colors(self, ext: str) -> set[str]:
        return {u.split(":", 1)[1] for u in self.entities.get(ext, {}).get("HAS_COLOR", ())}

    def title_entity(self, ext: str, kind: str) -> str | None:
        """A material/colour entity named in the title (display name), if any."""
        from nlp.normalize import fold

        title = " " + fold(self.title[ext]) + " "
        rel = {"MATERIAL": "MADE_OF", "COLOR": "HAS_COLOR"}[kind]
        for uid in sorted(self.entities.get(ext, {}).get(rel, ())):
            entry = self.kb.entities[kind].get(uid.split(":", 1)[1], {})
            for surface in [entry.get("name", ""), *entry.get("aliases", [])]:
                if surface and " " + fold(surface) + " " in title:
                    return surface.lower()
        return None


UNIT_SPELLINGS = {"in": ["inch", "in", '"', "-inch"], "mm": ["mm", " mm", " millimeter"], "cm": [" cm", "cm"],
                  "ft": [" ft", " foot", "'"], "lb": [" lb", " pound", "lbs"], "oz": [" oz", " ounce"],
                  "ml": [" ml", "ml", " milliliter"], "l": [" liter", "L"], "gal": [" gallon", " gal"],
                  "v": ["v", " volt"], "a": [" amp", "a"], "w": [" watt", "w"], "count": [" pack", " count", " pcs"],
                  "grit": [" grit"], "g": [" gram", "g"], "kg": [" kg"], "psi": [" psi"], "m": [" meter"]}


def fraction(value: float) -> str | None:
    whole, rest = int(value), value - int(value)
    for den in (2, 4, 8, 16, 32, 64):
        num = rest * den
        if abs(num - round(num)) < 1e-6:
            num = int(round(num))
            if num == 0:
                return str(whole)
            return (f"{whole}-" if whole else "") + f"{num}/{den}"
    return None


def render_measure(m, rng) -> str:
    """The measure as a shopper might type it, in a spelling other than the title's where possible."""
    number = f"{m.value:.4f}".rstrip("0").rstrip(".")
    frac = fraction(m.value) if m.unit in ("in", "ft") else None
    if frac and rng.random() < 0.6:
        number = frac
    spellings = UNIT_SPELLINGS.get(m.unit, [" " + m.unit])
    others = [s for s in spellings if s.strip().lower() not in m.text.lower()] or spellings
    unit = rng.choice(others)
    if unit.startswith("-") or unit in ('"', "'"):
        return number + unit
    return number + (unit if unit.startswith(" ") else " " + unit if len(unit) > 2 else unit)


GENERIC_TYPE_WORDS = {"supplies", "supply", "products", "product", "accessories", "accessory", "equipment", "parts",
                      "items", "materials", "miscellaneous", "other", "tools"}


def shopper_type(name: str | None) -> bool:
    """A category leaf a shopper would type as "what it is" (not a department such as "Lab Supplies"
    or "Wiring & Connecting")."""
    if not name:
        return False
    words = name.lower().replace(",", " ").split()
    return "&" not in words and "and" not in words and not GENERIC_TYPE_WORDS & set(words) and len(words) <= 4


def query_measures(cat: Catalogue, ext: str) -> list:
    return [m for m in cat.title_measures[ext] if m.dimension not in ("percent",)]


def split_of(qid: str) -> str:
    """Dev (tuning) or test (reporting), by a stable hash of the query id."""
    import hashlib

    return "dev" if int(hashlib.sha1(qid.encode()).hexdigest()[:8], 16) % 2 == 0 else "test"


def known_item_queries(cat: Catalogue, target: dict[str, str], n: int, seed: int = 0) -> list[dict]:
    """For held-out users: the item's type plus one or two attributes, not its title."""
    import random

    from nlp.normalize import fold, singular

    rng = random.Random(seed)
    users = sorted(u for u, item in target.items() if cat.type_key.get(item) and shopper_type(cat.type_name[item]))
    rng.shuffle(users)
    by_type_brand: dict[tuple, list[str]] = {}
    for e in cat.ids:
        if cat.type_key.get(e) and cat.brand_key.get(e):
            by_type_brand.setdefault((cat.type_key[e], cat.brand_key[e]), []).append(e)
    out, seen = [], set()
    for u in users:
        item = target[u]
        attrs = []
        if cat.brand_key.get(item):
            attrs.append(("brand", cat.brand[item]))
        for kind in ("MATERIAL", "COLOR"):
            surface = cat.title_entity(item, kind)
            if surface and surface not in cat.type_name[item].lower():
                attrs.append((kind.lower(), surface))
        if query_measures(cat, item):
            attrs.append(("measure", render_measure(rng.choice(query_measures(cat, item)), rng)))
        if not attrs:
            continue
        chosen = rng.sample(attrs, min(len(attrs), rng.choice((1, 2))))
        type_words = singular(cat.type_name[item]).lower()
        before = [v for k, v in chosen if k in ("brand", "material", "color")]
        after = [v for k, v in chosen if k == "measure"]
        query = " ".join([*before, type_words, *after])
        if fold(query) == fold(cat.title[item]) or (u, query) in seen:
            continue
        seen.add((u, query))
        rel = {e: 1 for e in by_type_brand.get((cat.type_key[item], cat.brand_key.get(item)), [])}
        rel[item] = 2
        qid = f"ki-{u}"
        out.append({"qid": qid, "query": query, "user": u, "target": item, "attributes": [k for k, _ in chosen],
                    "split": split_of(qid), "qrels": rel})
        if len(out) >= n:
            break
    return out


def attribute_queries(cat: Catalogue, n: int, seed: int = 1) -> list[dict]:
    """Constraint queries (material / brand + type + measure) judged against every product's fields and text."""
    import random

    from nlp.normalize import singular

    rng = random.Random(seed)
    pool = [e for e in cat.ids if cat.type_key.get(e) and shopper_type(cat.type_name[e])
            and (query_measures(cat, e) or cat.title_entity(e, "MATERIAL"))]
    rng.shuffle(pool)
    by_type: dict[str, list[str]] = {}
    for e in cat.ids:
        if cat.type_key.get(e):
            by_type.setdefault(cat.type_key[e], []).append(e)
    out, seen = [], set()
    for seed_item in pool:
        from nlp.measures import measure_key

        constraints, parts_before, parts_after = [], [], []
        material = cat.title_entity(seed_item, "MATERIAL")
        if material and material not in cat.type_name[seed_item].lower():
            key = cat.kb.link("MATERIAL", material)
            constraints.append(("material", key))
            parts_before.append(material)
        if query_measures(cat, seed_item):
            m = rng.choice(query_measures(cat, seed_item))
            constraints.append(("measure", measure_key(m.value, m.unit, m.dimension)))
            parts_after.append(render_measure(m, rng))
        if cat.brand_key.get(seed_item) and (len(constraints) < 2 or rng.random() < 0.3):
            constraints.append(("brand", cat.brand_key[seed_item]))
            parts_before.insert(0, cat.brand[seed_item])
        if len(constraints) < 2 and not (constraints and constraints[0][0] == "measure"):
            continue
        query = " ".join([*parts_before, singular(cat.type_name[seed_item]).lower(), *parts_after])
        if query in seen:
            continue
        seen.add(query)
        qrels = {}
        for e in by_type[cat.type_key[seed_item]]:
            held = sum(holds(cat, e, c) for c in constraints)
            if held == len(constraints):
                qrels[e] = 2
            elif held >= len(constraints) - 1:
                qrels[e] = 1
        if seed_item not in qrels or qrels[seed_item] != 2 or sum(g == 2 for g in qrels.values()) > 50:
            continue
        qid = f"at-{len(out)}"
        out.append({"qid": qid, "query": query, "constraints": constraints, "seed_item": seed_item,
                    "split": split_of(qid), "qrels": qrels})
        if len(out) >= n:
            break
    return out


def holds(cat: Catalogue, ext: str, constraint: tuple[str, str]) -> bool:
    kind, key = constraint
    if kind == "brand":
        return cat.brand_key.get(ext) == key
    if kind == "material":
        return key in cat.materials(ext)
    if kind == "measure":
        return key in cat.text_measures[ext]
    return False


# --- systems ------------------------------------------------------------------------------------------
class Ours:
    def __init__(self, name: str, features: dict | None = None, personal: bool = True):
        self.name, self.features, self.personal = name, features or {}, personal

    def __call__(self, q: dict, k: int = 20) -> list[str]:
        from kms.search import search

        user = q.get("user") if self.personal else None
        return [i["product"] for i in search(q["query"], user=user, k=k, features=self.features)["items"]]


class PlainBM25:
    """BM25 over the same title + brand + description text, words only: no measures, no graph."""

    def __init__(self, cat: Catalogue):
        from kms.search.bm25 import BM25
        from kms.search.text import words

        self.words = words
        self.ids = cat.ids
        self.bm25 = BM25([words(f"{cat.title[e]} {cat.brand[e]} {cat.description[e][:4000]}") for e in cat.ids])
        self.name = "bm25"

    def __call__(self, q: dict, k: int = 20) -> list[str]:
        import numpy as np

        scores = self.bm25.scores(self.words(q["query"]))
        top = np.flatnonzero(scores > 0)
        top = top[np.argsort(-scores[top], kind="stable")[:k]]
        return [self.ids[r] for r in top]


class PostgresFTS:
    """django.contrib.postgres.search as its docs recommend: a stored weighted SearchVectorField
    (title A, brand B, description C) with a GIN index, a websearch SearchQuery ranked by
    SearchRank, plus trigram word similarity on the title (pg_trgm) for typos.

    The vector lives in a side table the benchmark fills (the docs' ``SearchVectorField`` +
    ``update(search_vector=SearchVector(...))``, written as the SQL Django generates for it), so
    the catalogue's schema stays as it is and SQLite installs need no migration."""

    name = "pg_fts"
    TABLE = "search_bench_fts_document"

    def __init__(self):
        from django.contrib.postgres.search import SearchVectorField
        from django.db import connection, models

        from kms.catalogue.models import Product

        with connection.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            cur.execute(f"DROP TABLE IF EXISTS {self.TABLE}")
            cur.execute(f"CREATE TABLE {self.TABLE} (product_id bigint PRIMARY KEY, vector tsvector)")
            cur.execute(f"INSERT INTO {self.TABLE} SELECT id, "
                        "setweight(to_tsvector('english'::regconfig, COALESCE(title, '')), 'A') || "
                        "setweight(to_tsvector('english'::regconfig, COALESCE(brand, '')), 'B') || "
                        "setweight(to_tsvector('english'::regconfig, COALESCE(description, '')), 'C') "
                        "FROM catalogue_product")
            cur.execute(f"CREATE INDEX ON {self.TABLE} USING gin (vector)")
            cur.execute("CREATE INDEX IF NOT EXISTS search_bench_trgm ON catalogue_product "
                        "USING gin (title gin_trgm_ops)")
            cur.execute(f"ANALYZE {self.TABLE}")

        class ProductSearchDocument(models.Model):
            product = models.OneToOneField(Product, primary_key=True, on_delete=models.DO_NOTHING,
                                           related_name="search_document")
            vector = SearchVectorField()

            class Meta:
                app_label = "catalogue"
                managed = False
                db_table = self.TABLE

        self.model = ProductSearchDocument

    def __call__(self, q: dict, k: int = 20) -> list[str]:
        from django.contrib.postgres.search import SearchQuery, SearchRank, TrigramWordSimilarity
        from django.db.models import F, Q

        query = SearchQuery(q["query"], search_type="websearch", config="english")
        rows = (self.model.objects
                .annotate(rank=SearchRank(F("vector"), query),
                          similarity=TrigramWordSimilarity(q["query"], "product__title"))
                .filter(Q(vector=query) | Q(similarity__gt=0.3))
                .annotate(score=F("rank") + F("similarity"))
                .order_by("-score", "product_id").values_list("product__external_id", flat=True)[:k])
        return list(rows)


# --- metrics ------------------------------------------------------------------------------------------
def metrics(ranked: list[str], qrels: dict[str, int]) -> dict[str, float]:
    """NDCG@10 (gain 2^g - 1), MRR and Recall@20 of the highest-grade items; no relevant item in the
    catalogue: 1 when nothing is returned, else 0 ("no good match" is the right answer)."""
    import math

    if not qrels:
        v = 1.0 if not ranked else 0.0
        return {"ndcg@10": v, "mrr": v, "recall@20": v}
    dcg = sum((2 ** qrels.get(e, 0) - 1) / math.log2(n + 2) for n, e in enumerate(ranked[:10]))
    ideal = sorted(qrels.values(), reverse=True)[:10]
    idcg = sum((2 ** g - 1) / math.log2(n + 2) for n, g in enumerate(ideal))
    best = max(qrels.values())
    top = {e for e, g in qrels.items() if g == best}
    rr = next((1.0 / (n + 1) for n, e in enumerate(ranked) if e in top), 0.0)
    return {"ndcg@10": dcg / idcg if idcg else 0.0, "mrr": rr,
            "recall@20": len(top & set(ranked[:20])) / len(top)}


def mean(rows: list[dict]) -> dict[str, float]:
    return {m: round(sum(r[m] for r in rows) / len(rows), 4) if rows else None for m in ("ndcg@10", "mrr", "recall@20")}


def percentile(values: list[float], p: float) -> float:
    import numpy as np

    return round(float(np.percentile(values, p)), 2) if values else None


FREE_FILE = GOLD / "free_queries.jsonl"
FREE_QRELS = GOLD / "free_qrels.json"


def free_queries(cat: Catalogue, pool: bool = False) -> list[dict]:
    """The hand-written queries, with their judgments when they were made on this catalogue
    (``pool``: run them anyway, to write the pool a judge reads)."""
    if not FREE_FILE.exists():
        return []
    queries = [json.loads(line) for line in FREE_FILE.read_text().splitlines() if line.strip()]
    judged = json.loads(FREE_QRELS.read_text()) if FREE_QRELS.exists() else {}
    titles = judged.get("catalogue", {}).get("titles", {})
    if not pool and (not titles or any(cat.title.get(e) != t for e, t in titles.items())):
        print("free queries: judged on another catalogue (or not judged), skipped")
        return []
    for q in queries:
        q["qrels"] = judged.get("qrels", {}).get(q["qid"], {})
        q["split"] = split_of(q["qid"])
        q["judged"] = q["qid"] in judged.get("qrels", {})
    return queries


def run(args, dataset, target: dict[str, str]) -> None:
    import numpy as np

    from kms.search import search_index

    cat = Catalogue()
    search_index.get(block=True)
    sets = {"known_item": known_item_queries(cat, target, args.known_items),
            "attribute": attribute_queries(cat, args.attribute_queries),
            "free": free_queries(cat, pool=args.pool)}
    if args.pool:  # only the free queries are pooled for judging
        sets = {"free": sets["free"]}
    out_dir = GOLD / "generated" / (args.jsonl.stem if args.jsonl else dataset.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("known_item", "attribute"):
        if name not in sets:
            continue
        with open(out_dir / f"{name}.jsonl", "w") as fh:
            for q in sets[name]:
                fh.write(json.dumps(q) + "\n")
    if args.tune:
        tune(sets)
        return
    systems = [Ours("ours"), Ours("ours_unpersonalised", personal=False)]
    from kms.search.services import FEATURES

    systems += [Ours(f"ours-{f}", features={f: False}) if FEATURES[f] else Ours(f"ours+{f}", features={f: True})
                for f in ABLATIONS]
    systems += [Ours("ours_base", features={f: False for f in BASE_OFF}), PlainBM25(cat)]
    from django.db import connection

    if connection.vendor == "postgresql":
        systems.append(PostgresFTS())
    else:
        print("PostgreSQL full-text search needs PostgreSQL (DATABASE_URL); peer skipped")
    for s in systems:  # warm-up (index, pipeline, recommender cache)
        s({"query": "test", "user": next(iter(target), None)})
    results, latency, runs = {}, {}, {}
    for set_name, queries in sets.items():
        if not queries:
            continue
        for s in systems:
            times, rows = [], {"dev": [], "test": []}
            for q in queries:
                started = time.perf_counter()
                ranked = s(q)
                times.append((time.perf_counter() - started) * 1000)
                runs.setdefault(set_name, {}).setdefault(s.name, {})[q["qid"]] = ranked
                if set_name == "free" and not q.get("judged"):
                    continue
                rows[q["split"]].append(metrics(ranked, q["qrels"]))
            for split in ("dev", "test"):
                results.setdefault(split, {}).setdefault(set_name, {})[s.name] = mean(rows[split]) | {
                    "queries": len(rows[split])}
            latency.setdefault(s.name, []).extend(times)
    if args.pool:
        write_pool(sets["free"], runs.get("free", {}), cat)
    report = {"sets": results["test"], "sets_dev": results["dev"],
              "latency_ms": {s: {"p50": percentile(t, 50), "p99": percentile(t, 99), "n": len(t)}
                             for s, t in latency.items()},
              "queries": {k: len(v) for k, v in sets.items()},
              "dataset": str(args.jsonl or dataset), "split": "test (dev for tuning in sets_dev)",
              "machine": "2-core CPU VM, shared with other jobs", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print_report(report)
    if args.pool:
        return
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "search_relevance.json").write_text(json.dumps(report, indent=1))


TUNE_GRID = {"no_match": [True, False], "spelling": [True, False], "title_weight": [0.25, 0.5, 0.75],
             "accessory_penalty": [0.0, 0.25, 0.5], "category_prf": [0.0, 0.15, 0.3, 0.6],
             "placeholder_penalty": [0.0, 0.5]}


def tune(sets: dict) -> None:
    """One setting at a time over its grid, the others at their defaults: dev queries only."""
    from kms.search.services import SETTINGS

    print("\ndev NDCG@10 per setting (defaults:", SETTINGS, ")")
    for key, values in TUNE_GRID.items():
        for value in values:
            system = Ours(f"{key}={value}", features={key: value})
            row = {}
            for set_name, queries in sets.items():
                scored = [metrics(system(q), q["qrels"]) for q in queries
                          if q["split"] == "dev" and (set_name != "free" or q.get("judged"))]
                row[set_name] = mean(scored)["ndcg@10"] if scored else None
            print(f"  {key:20s} {value:<5} " + "  ".join(f"{k} {v}" for k, v in row.items()), flush=True)


ABLATIONS = ("graph", "units", "spelling", "title_field", "category", "no_match", "accessory", "placeholder")
BASE_OFF = ("spelling", "title_field", "category", "no_match", "accessory", "placeholder")


def write_pool(queries, runs: dict, cat: Catalogue, depth: int = 20) -> None:
    """The pooled top 20 of every system, with the text a judge reads, added to the pool judged before
    (a product once pooled stays judged)."""
    before = {}
    if (GOLD / "free_pool.jsonl").exists():
        for line in (GOLD / "free_pool.jsonl").read_text().splitlines():
            rec = json.loads(line)
            before[rec["qid"]] = [item["id"] for item in rec["pool"]]
    with open(GOLD / "free_pool.jsonl", "w") as fh:
        for q in queries:
            pool = [e for e in before.get(q["qid"], []) if e in cat.title]
            for system, by_q in sorted(runs.items()):
                for e in by_q.get(q["qid"], [])[:depth]:
                    if e not in pool:
                        pool.append(e)
            fh.write(json.dumps({"qid": q["qid"], "query": q["query"], "pool": [
                {"id": e, "title": cat.title[e], "brand": cat.brand[e], "type": cat.type_name.get(e)} for e in pool]})
                     + "\n")


def print_report(report: dict) -> None:
    for split_key in ("sets_dev", "sets"):
        print(f"\n== {'dev' if split_key == 'sets_dev' else 'test'} ==")
        for set_name, by_system in report[split_key].items():
            print(f"{set_name}:")
            for system, m in by_system.items():
                print(f"  {system:28s} ndcg@10 {m['ndcg@10']}  mrr {m['mrr']}  recall@20 {m['recall@20']}  (n={m['queries']})")
    print("\nlatency (ms):")
    for system, v in report["latency_ms"].items():
        print(f"  {system:28s} p50 {v['p50']}  p99 {v['p99']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=None)
    parser.add_argument("--jsonl", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse a prepared data dir")
    parser.add_argument("--database-url", default=os.environ.get("SEARCH_BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--known-items", type=int, default=400)
    parser.add_argument("--attribute-queries", type=int, default=200)
    parser.add_argument("--tune", action="store_true", help="grid over the ranking settings on the dev queries")
    parser.add_argument("--pool", action="store_true", help="write the free queries' pooled top 20 for judging")
    args = parser.parse_args()
    dataset = args.dataset or (None if args.jsonl else ROOT.parent / "shared" / "datasets" / "amazon-scientific")
    products, seqs = load_dataset(dataset, args.jsonl)
    history, target = holdout(seqs)
    data_dir = args.data_dir or Path(os.environ.get("TMPDIR", "/tmp")) / f"search-bench-{os.getpid()}"
    env = dict(os.environ, KMS_DATA_DIR=str(data_dir), DATABASE_URL=args.database_url, DJANGO_DEBUG="0")
    env.pop("CELERY_BROKER_URL", None)
    env.pop("NEO4J_URI", None)
    prepared = (data_dir / "search_bench_prepared.json").exists()
    if args.database_url.startswith("postgres"):
        ensure_database(args.database_url, fresh=not prepared)
    if not prepared:
        print("prepared in", prepare(data_dir, env, products, history, TRAIN_PARAMS))
    if args.prepare_only:
        return
    os.environ.update(KMS_DATA_DIR=str(data_dir), DATABASE_URL=args.database_url, DJANGO_DEBUG="0")
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.pop("NEO4J_URI", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kms.settings")
    import django

    django.setup()
    run(args, dataset, target)


if __name__ == "__main__":
    main()
