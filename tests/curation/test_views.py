"""Portal pages and role enforcement (viewer reads, curator edits, admin deletes)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from kms.curation.models import AuditEntry
from kms.knowledge.models import Entity, Fact, Status
from kms.recs.models import ModelVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_role(client, role_users):
    def login(role):
        client.force_login(role_users[role])
        return client
    return login


def test_anonymous_users_are_sent_to_login(client):
    response = client.get(reverse("curation:entities"))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_viewer_can_view_but_not_edit(as_role, catalogue):
    client = as_role("viewer")
    steel = catalogue["entities"]["material:steel"]
    fact = catalogue["facts"]["p1_steel"]
    for url in [reverse("curation:entities") + "?q=stanley", reverse("curation:entity", args=[steel.pk]),
                reverse("curation:review"), reverse("curation:audit"), reverse("curation:jobs"),
                reverse("curation:models"), reverse("curation:stats")]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert b'name="row_action"' not in response.content  # no edit controls for viewers
    forbidden = [
        (reverse("curation:facts-bulk"), {"action": "approve", "fact_ids": [fact.pk]}),
        (reverse("curation:fact-edit", args=[fact.pk]), {"value": "x"}),
        (reverse("curation:entity-create"), {"type": "BRAND", "name": "Acme"}),
        (reverse("curation:entity-rename", args=[steel.pk]), {"name": "Iron"}),
        (reverse("curation:entity-merge", args=[steel.pk]), {"other": "brand:bosch"}),
        (reverse("curation:entity-split", args=[steel.pk]), {"name": "x", "fact_ids": [fact.pk]}),
        (reverse("curation:entity-delete", args=[steel.pk]), {}),
        (reverse("curation:jobs-start"), {}),
        (reverse("curation:outbox-deliver"), {}),
    ]
    for url, data in forbidden:
        assert client.post(url, data).status_code == 403, url
    assert Fact.objects.get(pk=fact.pk).status == Status.AUTO
    assert not AuditEntry.objects.exists()


def test_curator_curates_but_cannot_delete(as_role, catalogue, kms_graph, django_capture_on_commit_callbacks):
    client = as_role("curator")
    f = catalogue["facts"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("curation:facts-bulk"),
                               {"action": "reject", "fact_ids": [f["p1_steel"].pk, f["p4_steel"].pk], "reason": "r"})
    assert response.status_code == 302
    assert set(Fact.objects.filter(pk__in=[f["p1_steel"].pk, f["p4_steel"].pk]).values_list("status", flat=True)) \
        == {Status.REJECTED}
    # delivered right after the commit
    assert {r["props"]["status"] for r in kms_graph.relationships_of("product:p1") if r["type"] == "MADE_OF"} \
        == {"rejected"}
    response = client.post(reverse("curation:facts-bulk"), {"row_action": f"approve:{f['p3_brand'].pk}"})
    assert response.status_code == 302 and Fact.objects.get(pk=f["p3_brand"].pk).status == Status.APPROVED

    keep = catalogue["entities"]["brand:stanley"]
    response = client.post(reverse("curation:entity-merge", args=[keep.pk]), {"other": "brand:stanley-tools"})
    assert response.status_code == 302
    assert Entity.objects.get(uid="brand:stanley-tools").merged_into_id == keep.pk
    assert client.post(reverse("curation:entity-delete", args=[keep.pk])).status_code == 403

    entry = AuditEntry.objects.filter(action="fact_status").order_by("id").first()
    assert client.post(reverse("curation:audit-revert", args=[entry.pk])).status_code == 302
    assert Fact.objects.get(pk=f["p1_steel"].pk).status == Status.AUTO

    # a failed action is reported, not a server error
    response = client.post(reverse("curation:entity-merge", args=[keep.pk]), {"other": "brand:nope"}, follow=True)
    assert response.status_code == 200 and b"unknown entity" in response.content


def test_admin_deletes(as_role, catalogue):
    bosch = catalogue["entities"]["brand:bosch"]
    assert as_role("admin").post(reverse("curation:entity-delete", args=[bosch.pk])).status_code == 302
    assert not Entity.objects.filter(pk=bosch.pk).exists()


def test_entity_page_shows_provenance_and_graph_json(as_role, catalogue):
    client = as_role("viewer")
    steel = catalogue["entities"]["material:steel"]
    page = client.get(reverse("curation:entity", args=[steel.pk])).content.decode()
    assert "Stanley staple gun, heavy duty <mark>steel</mark>" in page
    assert "rules 1" in page and "0.40" in page
    data = client.get(reverse("curation:graph-json"), {"uid": "material:steel"}).json()
    assert data["found"] and {n["id"] for n in data["nodes"]} == {"material:steel", "product:p1", "product:p4"}
    assert all(e["target"] == "material:steel" and e["type"] == "MADE_OF" for e in data["edges"])
    listing = client.get(reverse("curation:entities"), {"q": "stanley"}).content.decode()
    assert "Stanley Tools" in listing and "Bosch" not in listing


def test_entity_search_matches_aliases(as_role, catalogue, role_users):
    from kms.curation.services import merge_entities

    ents = catalogue["entities"]
    merge_entities(role_users["curator"], ents["brand:stanley"].pk, ents["brand:stanley-tools"].pk)
    results = as_role("viewer").get(reverse("curation:entity-search"), {"q": "stanley tools"}).json()["results"]
    assert [r["uid"] for r in results] == ["brand:stanley"] and results[0]["facts"] == 3


def test_operations_pages(as_role, db):
    from kms.knowledge.models import IngestionJob

    IngestionJob.objects.create(kind="ingest-all", state="running", total=10, done=4)
    ModelVersion.objects.create(state="ready", metrics={"test": {"fusion": {"recall@20": 0.1, "ndcg@20": 0.05}}},
                                history=[{"component": "lightgcn", "epoch": 1, "loss": 0.9},
                                         {"component": "lightgcn", "epoch": 2, "loss": 0.7, "valid_ndcg@20": 0.04},
                                         {"epoch": 3}, "not a dict"])
    ModelVersion.objects.create(state="active", metrics={"test": {"fusion": {"recall@20": 0.12}}}, history=[])
    client = as_role("viewer")
    jobs = client.get(reverse("curation:jobs-json")).json()["jobs"]
    assert jobs[0]["state"] == "running" and jobs[0]["done"] == 4
    page = client.get(reverse("curation:models")).content.decode()
    assert page.count("<svg") == 3 and "recall@20" in page and "lightgcn loss" in page
    stats = client.get(reverse("curation:stats")).content.decode()
    assert "Growth (cumulative)" in stats


def test_setup_roles_command(db):
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    call_command("setup_roles")
    perms = {g.name: set(g.permissions.values_list("codename", flat=True)) for g in Group.objects.all()}
    assert perms["viewer"] == {"view_portal"}
    assert perms["curator"] == {"view_portal", "curate"}
    assert perms["admin"] == {"view_portal", "curate", "administer"}
