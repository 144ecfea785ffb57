"""External knowledge import (RecBole .kg/.link) from the real ml-100k-kg files."""
from pathlib import Path

import pytest

from kms.knowledge.external import import_recbole_kg, relation_type

ML = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "ml-100k-kg"


def test_relation_type_is_a_safe_identifier():
    assert relation_type("film.film.genre") == "KG_FILM_FILM_GENRE"
    assert relation_type("x'}) DETACH DELETE n //") == "KG_X_DETACH_DELETE_N"


@pytest.mark.django_db
def test_import_links_triples_to_products(kms_graph):
    stats = import_recbole_kg(ML, with_items=True, limit=3000)
    assert stats["products"]["created"] == 1682
    assert stats["triples"] == 3000 and stats["linked_products"] > 1000
    # a linked entity is the product itself: products gain typed relationships to external entities
    rows = kms_graph.read("MATCH (p:Product)-[e]-(x:Entity) RETURN count(e) AS c, count(DISTINCT p) AS p")
    assert rows[0]["c"] > 0 and rows[0]["p"] > 0
    again = import_recbole_kg(ML, with_items=True, limit=3000)  # idempotent
    assert again["products"]["unchanged"] == 1682
    total = kms_graph.read("MATCH ()-[e]->() WHERE e.extractor = 'external-kg' RETURN count(e) AS c")[0]["c"]
    assert total <= 3000
