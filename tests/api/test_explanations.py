"""Explanations read only trusted facts: products served beyond the trained model get their
entities from the database, and there only extracted (auto) and curated (approved) facts count."""
import pytest

from kms.catalogue.models import Product
from kms.knowledge.models import Entity, Fact
from kms.recs.models import ModelVersion
from kms.recs.services import new_product_entities


@pytest.mark.django_db
def test_cold_start_entities_use_only_trusted_facts():
    version = ModelVersion.objects.create(state=ModelVersion.State.ACTIVE)
    product = Product.objects.create(external_id="trusted-1", title="Stanley Staple Gun", content_hash="h")
    for status, relation, uid in [("auto", "HAS_BRAND", "brand:stanley"),
                                  ("approved", "IS_PRODUCT_TYPE", "product_type:staple-gun"),
                                  ("candidate", "MADE_OF", "material:zinc"),
                                  ("rejected", "HAS_COLOR", "color:red")]:
        entity = Entity.objects.create(uid=uid, type=uid.split(":")[0].upper(), name=uid.split(":")[1])
        Fact.objects.create(product=product, relation=relation, entity=entity, status=status)
    assert new_product_entities(version, trained=set()) == {
        "product:trusted-1": [("HAS_BRAND", "brand:stanley"), ("IS_PRODUCT_TYPE", "product_type:staple-gun")]}
    # a product whose facts are all under the threshold is not served as a new item at all
    only_candidate = Product.objects.create(external_id="trusted-2", title="Zinc Washer", content_hash="h2")
    Fact.objects.create(product=only_candidate, relation="MADE_OF", entity=Entity.objects.get(uid="material:zinc"),
                        status="candidate")
    assert "product:trusted-2" not in new_product_entities(version, trained=set())
