"""Experiment fixtures: cold process caches, and two trained model versions on a small slice."""
import pytest

from tests.caches import clear_process_caches

POPULARITY = {"preset": "fast", "components": ["popularity"], "fusion": ["popularity"], "cold_blend": None,
              "threads": 1}
ITEMCF = {"preset": "fast", "components": ["popularity", "itemcf_recent"], "fusion": ["itemcf_recent"],
          "cold_blend": None, "threads": 1}


@pytest.fixture(autouse=True)
def _fresh_caches():
    clear_process_caches()
    yield
    clear_process_caches()


@pytest.fixture
def two_versions(kms_graph, models_dir, scientific_slice):
    """(control, variant): an active popularity version and a ready item-CF version, with the
    slice's products and events in the database and the graph store."""
    from kms.catalogue.services import upsert_products
    from kms.events.services import record_events
    from kms.events.tasks import deliver_to_graph
    from kms.recs.services import activate, train_model

    products, events = scientific_slice(80)
    upsert_products(products)
    deliver_to_graph(record_events(events).interaction_ids)
    control = train_model(POPULARITY, activate=False)
    variant = train_model(ITEMCF, activate=False)
    assert control.state == variant.state == "ready", (control.message, variant.message)
    activate(control)
    return control, variant
