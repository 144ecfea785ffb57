"""Candidate facts (under their relation's threshold): stored, in the review queue, not in the graph store."""
from __future__ import annotations

import pytest

from kms.curation import services
from kms.knowledge.models import Fact, Status

pytestmark = pytest.mark.django_db


def _ingest():
    from kms.catalogue.models import Product
    from kms.catalogue.services import upsert_products
    from kms.knowledge.services import ingest_products

    ids = upsert_products([{"external_id": "cand-1", "title": "Acme Widget Holder, Red",
                            "description": "Ideal for garages, sheds and other applications where it is cold.",
                            "brand": "Acme", "categories": ["Shop", "Holders"]}]).created
    ingest_products(list(Product.objects.filter(pk__in=ids)))
    return Product.objects.get(external_id="cand-1")


def test_candidate_facts_stay_out_of_the_graph_and_wait_in_the_queue(kms_graph, models_dir):
    product = _ingest()
    candidates = list(Fact.objects.filter(product=product, status=Status.CANDIDATE).select_related("entity"))
    autos = list(Fact.objects.filter(product=product, status=Status.AUTO).select_related("entity"))
    assert candidates, "USED_FOR from a description cue is under its threshold"
    assert autos, "the structured brand is trusted"
    in_graph = {(r["type"], r["dst"]) for r in kms_graph.relationships_of(product.graph_uid)}
    assert all((f.relation, f.entity.uid) not in in_graph for f in candidates)
    assert all((f.relation, f.entity.uid) in in_graph for f in autos)
    queued = {f.pk for f in services.review_queue()}
    assert {f.pk for f in candidates} <= queued
    # a curator's approval makes the fact trusted and puts it in the graph
    services.set_fact_status(None, [candidates[0].pk], Status.APPROVED)
    services.deliver_outbox()
    in_graph = {(r["type"], r["dst"]) for r in kms_graph.relationships_of(product.graph_uid)}
    assert (candidates[0].relation, candidates[0].entity.uid) in in_graph


def test_portal_fact_list_omits_candidates_unless_asked(kms_graph, models_dir, client, role_users):
    product = _ingest()
    cand = Fact.objects.filter(product=product, status=Status.CANDIDATE).select_related("entity").first()
    client.force_login(role_users["viewer"])
    url = f"/portal/entities/{cand.entity_id}/"
    default = client.get(url)
    asked = client.get(url + "?include=candidate")
    assert default.status_code == asked.status_code == 200
    assert cand.pk not in {r["fact"].pk for r in default.context["rows"]}
    assert cand.pk in {r["fact"].pk for r in asked.context["rows"]}


def test_curators_decisions_train_the_next_acceptor(kms_graph, models_dir):
    from nlp.acceptance import group_keys

    from kms.knowledge.services import curated_examples, get_pipeline, train_nlp_models

    product = _ingest()
    cand = Fact.objects.filter(product=product, status=Status.CANDIDATE).first()
    auto = Fact.objects.filter(product=product, status=Status.AUTO).first()
    services.set_fact_status(None, [cand.pk], Status.APPROVED)
    services.set_fact_status(None, [auto.pk], Status.REJECTED)
    examples = curated_examples()
    assert sorted((f.relation, ok) for f, _, ok in examples) == sorted(
        [(cand.relation, True), (auto.relation, False)])
    before = get_pipeline().user_data_acceptor
    result = train_nlp_models(acceptor_only=True)
    assert result["curated_facts"] == 2
    after = get_pipeline().user_data_acceptor  # ingestion switched to the new artefact
    assert after.version.endswith("curated-2")
    f, cues, _ = next(e for e in examples if e[2])
    key = group_keys(f, after.active(f.relation, cues))[0]
    assert after.counts[key][1] == before.counts.get(key, [0, 0])[1] + 1
