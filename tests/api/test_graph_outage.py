"""Erasing a user, renaming one and deleting a product while the graph store is unreachable:
the API answers, the database changes, the graph changes wait in the outbox and are delivered
once the store answers again; nothing erased is left in the graph."""
import socket

import pytest

from kms.curation.models import OutboxEntry

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_erasure_during_an_outage_reaches_the_graph_after_it(kms_graph, settings, write_client,
                                                             django_capture_on_commit_callbacks):
    from kms.catalogue.services import upsert_products
    from kms.curation.tasks import deliver_graph_outbox
    from kms.events.models import Interaction
    from kms.events.services import record_events
    from kms.events.tasks import deliver_to_graph
    from kms.graphstore import get_graph_store, reset_graph_store

    upsert_products([{"external_id": "p1", "title": "Staple gun"}, {"external_id": "p2", "title": "Staples"}])
    deliver_to_graph(record_events([{"user": u, "product": p, "type": "view", "event_id": f"{u}-{p}"}
                                    for u in ("alice", "bob") for p in ("p1", "p2")]).interaction_ids)
    assert kms_graph.count_relationships("INTERACTED") == 4
    reachable = settings.KMS_GRAPH
    settings.KMS_GRAPH = {**reachable, "URI": f"bolt://127.0.0.1:{_closed_port()}"}
    reset_graph_store()
    assert not get_graph_store().ping()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert write_client.delete("/api/v1/users/alice").status_code == 204
        assert write_client.delete("/api/v1/products/p2").status_code == 204
        renamed = write_client.patch("/api/v1/users/bob", {"external_id": "bobby"}, format="json")
        assert renamed.status_code == 200, renamed.content
    from kms.recs.serving_cache import AfterCommitBump

    sent = [c for c in callbacks if not isinstance(c, AfterCommitBump)]  # the serving cache's bumps aside
    assert len(sent) == 3  # a delivery attempt after each commit; each found the store down
    pending = OutboxEntry.objects.filter(state=OutboxEntry.State.PENDING)
    assert list(pending.values_list("op", flat=True)) == ["erase_users", "delete_product", "erase_users"]
    assert all(e.attempts == 0 and e.state == "pending" for e in pending)

    settings.KMS_GRAPH = reachable  # the store is back
    reset_graph_store()
    store = get_graph_store()
    assert store.node("user:alice") is not None  # nothing reached it during the outage
    result = deliver_graph_outbox.delay().get()  # what beat runs
    assert (result["delivered"], result["pending"], result["error"]) == (3, 0, "")
    assert store.node("user:alice") is None and store.node("product:p2") is None
    assert store.node("user:bob") is None and store.node("user:bobby") is not None
    assert [(r["type"], r["dst"]) for r in store.relationships_of("user:bobby")] == [("INTERACTED", "product:p1")]
    assert store.count_relationships("INTERACTED") == Interaction.objects.count() == 1
    assert deliver_graph_outbox.delay().get()["delivered"] == 0
