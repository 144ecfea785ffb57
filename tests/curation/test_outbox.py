"""A graph outage delays curation edits but never loses them (transactional outbox)."""
from __future__ import annotations

import pytest

from graph.server import ArcadeDBProcess
from kms.curation import services
from kms.curation.models import OutboxEntry
from kms.knowledge.models import Entity, Fact, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_graph_server(settings, tmp_path):
    """A graph server of this test's own (it gets killed), wired into the Django settings."""
    from kms.graphstore import get_graph_store, reset_graph_store

    server = ArcadeDBProcess(tmp_path / "arcadedb", heap="512m")
    server.start(timeout=120)
    settings.KMS_GRAPH = {**settings.KMS_GRAPH, "URI": f"bolt://127.0.0.1:{server.bolt_port}", "USER": "root",
                          "PASSWORD": server.password, "DATABASE": "kms"}
    reset_graph_store()
    get_graph_store()  # schema
    holder = {"server": server}
    yield holder
    reset_graph_store()
    holder["server"].stop()


def test_edits_made_during_a_graph_outage_are_delivered_after_restart(
        own_graph_server, role_users, catalogue_helpers, django_capture_on_commit_callbacks):
    from kms.graphstore import get_graph_store

    seed_catalogue, project = catalogue_helpers
    data = seed_catalogue()
    project(get_graph_store(), [p.pk for p in data["products"].values()])
    server = own_graph_server["server"]
    keep, drop = data["entities"]["brand:stanley"], data["entities"]["brand:stanley-tools"]

    server.kill()  # as a crash would
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.merge_entities(role_users["curator"], keep.pk, drop.pk, reason="during outage")
        services.set_fact_status(role_users["curator"], [data["facts"]["p1_steel"].pk], Status.APPROVED)
    from kms.recs.serving_cache import AfterCommitBump

    assert [c for c in callbacks if not isinstance(c, AfterCommitBump)], "delivery is attempted right after the commit"
    # the database change is committed; the graph part waits in the outbox
    assert Entity.objects.get(pk=drop.pk).merged_into_id == keep.pk
    pending = OutboxEntry.objects.filter(state=OutboxEntry.State.PENDING)
    assert list(pending.values_list("op", flat=True)) == ["merge_nodes", "sync_products", "sync_products"]
    result = services.deliver_outbox()
    assert result.delivered == 0 and result.pending == 3 and result.error

    restarted = ArcadeDBProcess(server.root, bolt_port=server.bolt_port, http_port=server.http_port,
                                password=server.password, heap="512m")
    restarted.start(timeout=120)
    own_graph_server["server"] = restarted

    result = services.deliver_outbox()
    assert (result.delivered, result.pending, result.error) == (3, 0, "")
    assert not OutboxEntry.objects.filter(state=OutboxEntry.State.PENDING).exists()
    store = get_graph_store()
    assert store.node("brand:stanley-tools") is None
    assert "Stanley Tools" in store.node("brand:stanley")["aliases"]
    brands = {r["dst"] for p in ("p1", "p2", "p3") for r in store.relationships_of(f"product:{p}")
              if r["type"] == "HAS_BRAND"}
    assert brands == {"brand:stanley"}
    assert {r["props"]["status"] for r in store.relationships_of("product:p1") if r["type"] == "MADE_OF"} \
        == {"approved"}
    # delivering again changes nothing (rows are done; operations are idempotent anyway)
    assert services.deliver_outbox().delivered == 0
    assert Fact.objects.filter(entity=keep).count() == 3
