"""The walking skeleton end to end on a real slice of Amazon-Scientific:
JSONL import → spaCy extraction → facts + graph store → graph export → CF+GNN training → REST."""
import json

import pytest

from kms.catalogue.importers import import_jsonl
from kms.catalogue.models import Product
from kms.events.models import Interaction
from kms.events.services import push_interactions_to_graph
from kms.knowledge.models import Fact, IngestionJob, Status
from kms.knowledge.services import run_ingestion_job
from kms.recs.models import ModelVersion
from kms.recs.services import train_model

SMALL = {"components": ["popularity", "itemcf", "lightgcn"], "fusion": ["itemcf", "lightgcn"],
         "dim": 16, "layers": 2, "epochs": 10, "eval_every": 5, "patience": 1, "threads": 1}


def _ingest_all() -> IngestionJob:
    job = IngestionJob.objects.create(kind="ingest-all")
    return run_ingestion_job(job.pk)


@pytest.mark.django_db
def test_product_text_to_recommendations(kms_graph, models_dir, scientific_slice, tmp_path, read_client):
    products, events = scientific_slice(150)
    path = tmp_path / "slice.jsonl"
    path.write_text("\n".join(json.dumps(p) for p in products)
                    + "\n" + "\n".join(json.dumps({"kind": "event", **e}) for e in events) + "\n")
    summary = import_jsonl(path)
    assert summary["products"]["created"] == len(products)
    assert summary["events"]["created"] == len(events)

    job = _ingest_all()
    assert job.state == "done" and job.done == len(products) and job.failed == 0, job.errors
    branded = Product.objects.exclude(brand="").count()
    brand_facts = Fact.objects.filter(relation="HAS_BRAND")
    assert brand_facts.values("product").distinct().count() >= 0.95 * branded
    fact = brand_facts.first()
    assert fact.extractor and fact.extractor_version and 0 < fact.confidence <= 1
    # the graph holds one HAS_BRAND edge per (product, brand) fact and the category hierarchy
    pairs = set(brand_facts.values_list("product__external_id", "entity__uid"))
    assert kms_graph.count_relationships("HAS_BRAND") == len(pairs)
    assert kms_graph.count_relationships("SUBCATEGORY_OF") > 0

    # re-ingesting unchanged products does nothing
    facts_before = Fact.objects.count()
    again = _ingest_all()
    assert again.done == 0 and again.skipped == len(products)
    assert Fact.objects.count() == facts_before

    assert push_interactions_to_graph() == len(events)
    assert not Interaction.objects.filter(in_graph=False).exists()

    version = train_model(SMALL)
    assert version.state == ModelVersion.State.ACTIVE, version.message
    valid = version.metrics["valid"]
    # fusion weights are chosen on validation, so the fused model is at least its best part there
    assert valid["fusion"]["ndcg@20"] >= max(valid["itemcf"]["ndcg@20"], valid["lightgcn"]["ndcg@20"]) - 1e-9
    assert any(p["component"] == "lightgcn" and "loss" in p for p in version.history)
    assert version.n_interactions == len(events)

    user = events[0]["user"]
    seen = {e["product"] for e in events if e["user"] == user}
    body = read_client.get(f"/api/v1/users/{user}/recommendations?k=20").json()
    assert body["source"] == "model" and body["model_version"] == version.pk
    got = [item["product"] for item in body["items"]]
    assert len(got) == 20 and len(set(got)) == 20
    assert not seen & set(got), "recommended an item the user already has"
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)

    # an unknown user gets cold-start results, not an error
    cold = read_client.get("/api/v1/users/nobody-yet/recommendations?k=5").json()
    assert len(cold["items"]) == 5 and cold["source"] != "model"

    # bad query parameters get a 4xx naming the field
    bad = read_client.get(f"/api/v1/users/{user}/recommendations?k=0")
    assert bad.status_code == 400 and "k" in bad.json()["error"]["fields"]


@pytest.mark.django_db
def test_changed_product_replaces_auto_facts_but_keeps_curated(kms_graph, scientific_slice):
    from kms.catalogue.services import upsert_products

    products, _ = scientific_slice(3)
    upsert_products(products)
    _ingest_all()
    target = Product.objects.exclude(brand="").first()
    brand_fact = Fact.objects.get(product=target, relation="HAS_BRAND", field="brand")
    brand_fact.status = Status.APPROVED
    brand_fact.save()
    kms_graph.set_relationship_status(target.graph_uid, "HAS_BRAND", brand_fact.entity.uid, {"status": "approved"})
    auto_before = set(Fact.objects.filter(product=target, status=Status.AUTO).values_list("relation", "entity__uid"))

    upsert_products([{"external_id": target.external_id, "title": "Completely different red plastic widget",
                      "description": "", "brand": target.brand, "categories": target.category_path}])
    job = _ingest_all()
    assert job.done == 1
    assert Fact.objects.get(pk=brand_fact.pk).status == Status.APPROVED  # curated fact untouched
    auto_after = set(Fact.objects.filter(product=target, status=Status.AUTO).values_list("relation", "entity__uid"))
    assert auto_after != auto_before
    graph_rels = {(r["type"], r["dst"]): r["props"].get("status") for r in kms_graph.relationships_of(target.graph_uid)}
    assert graph_rels[("HAS_BRAND", brand_fact.entity.uid)] == "approved"


@pytest.mark.django_db
def test_inline_job_extracts_in_a_forked_process_with_the_same_facts(kms_graph, scientific_slice, monkeypatch):
    """The ``ingest`` command's runner extracts ahead in a forked process when it is single-threaded,
    in a thread otherwise; both store the same facts and graph relationships."""
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    from kms.catalogue.services import upsert_products
    from kms.knowledge import inline, services

    products, _ = scientific_slice(4)
    upsert_products(products)
    pipe = services.get_pipeline()

    def facts():
        return sorted(Fact.objects.values_list("product__external_id", "relation", "entity__uid", "start", "end"))

    # as in the single-threaded ``ingest`` command (an earlier test in this process may have left a
    # daemon thread behind, e.g. the impression flusher)
    monkeypatch.setattr(inline.threading, "active_count", lambda: 1)
    executor, _ = services._extraction_executor(pipe, 3)
    with executor:
        assert isinstance(executor, ProcessPoolExecutor)
    forked = run_ingestion_job(IngestionJob.objects.create(kind="ingest-all").pk, chunk_size=3)
    assert forked.state == "done" and forked.done == len(products) and forked.failed == 0
    by_fork, rels_by_fork = facts(), kms_graph.count_relationships("HAS_BRAND")
    assert by_fork and rels_by_fork

    monkeypatch.setattr(inline.threading, "active_count", lambda: 2)  # as in a threaded web worker
    executor, _ = services._extraction_executor(pipe, 3)
    with executor:
        assert isinstance(executor, ThreadPoolExecutor)
    Product.objects.update(extracted_hash="")  # make every product due again
    threaded = run_ingestion_job(IngestionJob.objects.create(kind="ingest-all").pk, chunk_size=3)
    assert threaded.done == len(products)
    assert facts() == by_fork and kms_graph.count_relationships("HAS_BRAND") == rels_by_fork


def _graph_matches_database(kms_graph, external_ids) -> None:
    """Every one of these products and each of its non-candidate facts is in the graph store, and nothing else
    (the graph is emptied for each test; the database may hold other packages' committed rows)."""
    db = set(Fact.objects.filter(product__external_id__in=external_ids).exclude(status="candidate")
             .values_list("product__external_id", "relation", "entity__uid"))
    rows = kms_graph.read("MATCH (p:Product)-[e]->(x) WHERE type(e) <> 'INTERACTED' "
                          "RETURN p.uid AS p, type(e) AS rel, x.uid AS x")
    graph = {(r["p"].split(":", 1)[1], r["rel"], r["x"]) for r in rows}
    assert graph == db and db
    products = {r["uid"] for r in kms_graph.read("MATCH (p:Product) RETURN p.uid AS uid")}
    assert products == {f"product:{e}" for e in external_ids}


@pytest.mark.django_db
def test_pipelined_job_survives_a_transient_graph_failure_mid_job(kms_graph, scientific_slice, monkeypatch):
    """The graph write of one chunk overlaps preparing the next one inside that chunk's transaction.
    When the graph store fails there, the chunk rolls back and is retried, the next chunk is prepared
    again (the entities it created were rolled back too) and nothing is lost or counted twice."""
    from neo4j.exceptions import TransientError

    from kms.catalogue.services import upsert_products
    from kms.knowledge import writer

    products, _ = scientific_slice(6)
    upsert_products(products)
    monkeypatch.setattr(writer.time, "sleep", lambda s: None)  # the retry backoff
    calls = {"n": 0}
    real = type(kms_graph).replace_product_facts

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # a chunk in the middle, while the next one is being prepared
            raise TransientError("simulated DeadlockDetected")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(kms_graph), "replace_product_facts", flaky)
    job = run_ingestion_job(IngestionJob.objects.create(kind="ingest-all").pk, chunk_size=4)
    assert calls["n"] > 4
    assert job.state == "done" and job.done == len(products) and job.failed == 0, job.errors
    ids = [p["external_id"] for p in products]
    _graph_matches_database(kms_graph, ids)
    # one fact row per extracted fact: the rolled-back attempt left none behind
    mine = Fact.objects.filter(product__external_id__in=ids)
    assert mine.count() == len(set(mine.values_list("product", "relation", "entity", "field", "start", "end")))


@pytest.mark.django_db
def test_forced_reingest_replaces_graph_facts_an_older_extraction_left(kms_graph, scientific_slice):
    """``ingest --force`` (and start_ingestion(force=True)) mark products stale rather than new, so
    their automatic graph relationships are replaced: one an older extractor wrote is removed."""
    from kms.catalogue.services import upsert_products
    from kms.knowledge import services

    products, _ = scientific_slice(3)
    upsert_products(products)
    ids = [p["external_id"] for p in products]
    first = run_ingestion_job(IngestionJob.objects.create(
        kind="ingest", product_ids=list(Product.objects.filter(external_id__in=ids).values_list("id", flat=True))).pk)
    assert first.done == len(products)
    target = Product.objects.get(external_id=ids[0])
    kms_graph.upsert_nodes([{"uid": "material:unobtainium", "props": {"name": "unobtainium"}}])
    kms_graph.upsert_relationships([{"src": target.graph_uid, "dst": "material:unobtainium", "type": "MADE_OF",
                                     "props": {"status": "auto", "confidence": 0.5, "extractor": "old"}}])
    pks = list(Product.objects.filter(external_id__in=ids).values_list("id", flat=True))
    job = run_ingestion_job(services.create_ingestion_job(pks, force=True).pk)  # the job the workers would run
    assert job.done == len(products) and job.skipped == 0
    assert ("MADE_OF", "material:unobtainium") not in {(r["type"], r["dst"]) for r in kms_graph.relationships_of(target.graph_uid)}
    _graph_matches_database(kms_graph, ids)


@pytest.mark.django_db
def test_fact_rows_keep_text_with_copy_special_characters(scientific_slice):
    """Facts go in through PostgreSQL's COPY text format: tabs, newlines, backslashes and
    non-ASCII text in any column come back unchanged."""
    from kms.catalogue.services import upsert_products
    from kms.knowledge.services import FactRow, _ensure_entities, _insert_facts
    from nlp import Fact as CandidateFact

    products, _ = scientific_slice(1)
    upsert_products(products)
    product = Product.objects.get(external_id=products[0]["external_id"])
    tricky = "12\tV\\DC\nline\r two – ½ \"inch\" \\N"
    candidate = CandidateFact("HAS_ATTRIBUTE", "MEASURE", "weird-key", tricky)
    entity = _ensure_entities([candidate])[candidate.object_uid]
    _insert_facts([FactRow(product.pk, "HAS_ATTRIBUTE", entity, tricky[:60], "\\N", "attributes\tx", None, 7,
                           tricky, "ext\\ractor", "1\t0", 0.25)])
    fact = Fact.objects.get(product=product)
    assert (fact.value, fact.unit, fact.field, fact.start, fact.end, fact.text, fact.extractor,
            fact.extractor_version, fact.confidence, fact.status) == \
        (tricky[:60], "\\N", "attributes\tx", None, 7, tricky, "ext\\ractor", "1\t0", 0.25, Status.AUTO)
    assert fact.entity.uid == "measure:weird-key" and fact.entity.name == tricky


@pytest.mark.django_db
def test_entity_merged_during_a_job_gets_no_new_facts(kms_graph, scientific_slice):
    """A job's writer caches resolved entities across chunks; a curator's merge in the middle of the
    job must send the following chunks' facts to the entity merged into, not the merged-away one."""
    from kms.catalogue.services import upsert_products
    from kms.knowledge.models import Entity
    from kms.knowledge.services import ChunkWriter, extract_products

    products, _ = scientific_slice(3)
    upsert_products(products)
    mine = list(Product.objects.filter(external_id__in=[p["external_id"] for p in products]).order_by("id"))
    first, rest = mine[: len(mine) // 2], mine[len(mine) // 2:]
    with ChunkWriter(job_id=None) as writer:
        writer.write(writer.prepare(first, extract_products(first)))
        used = set(Fact.objects.filter(product__in=first).values_list("entity__uid", flat=True))
        results = extract_products(rest)
        shared = next(f.object_uid for p in rest for f in results[p.pk].facts if f.object_uid in used)
        keep = Entity.objects.create(uid="material:merge-target", type="MATERIAL", name="merge target")
        drop = Entity.objects.get(uid=shared)
        drop.merged_into = keep
        drop.save()
        writer.write(writer.prepare(rest, results))
    assert not Fact.objects.filter(product__in=rest, entity=drop).exists()
    assert Fact.objects.filter(product__in=rest, entity=keep).exists()
