"""Curation fixtures: role users, and a small catalogue with facts projected into the graph store."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

PASSWORD = "portal-test-pw"


@pytest.fixture
def portal_password():
    return PASSWORD


@pytest.fixture
def role_users(django_user_model):
    from django.contrib.auth.models import Group

    from kms.curation.roles import setup_roles

    setup_roles()
    users = {}
    for role in ("viewer", "curator", "admin"):
        user = django_user_model.objects.create_user(role, password=PASSWORD)
        user.groups.add(Group.objects.get(name=role))
        users[role] = user
    return users


def seed_catalogue() -> dict:
    """Products with duplicate brands (Stanley / Stanley Tools), evidence spans and traffic."""
    from kms.catalogue.models import Product
    from kms.events.models import Interaction, ShopUser
    from kms.knowledge.models import Entity, Fact

    titles = {
        "p1": ("Stanley staple gun, heavy duty steel", "Stanley", ["Tools", "Staplers"]),
        "p2": ("Stanley Tools tape measure 25 ft", "Stanley Tools", ["Tools", "Measuring"]),
        "p3": ("Stanley Tools utility knife", "Stanley Tools", ["Tools", "Knives"]),
        "p4": ("Bosch cordless drill with steel chuck", "Bosch", ["Tools", "Drills"]),
    }
    products = {k: Product.objects.create(external_id=k, title=t, brand=b, category_path=c, description="")
                for k, (t, b, c) in titles.items()}
    ent = {uid: Entity.objects.create(uid=uid, type=t, name=n) for uid, t, n in [
        ("brand:stanley", "BRAND", "Stanley"), ("brand:stanley-tools", "BRAND", "Stanley Tools"),
        ("brand:bosch", "BRAND", "Bosch"), ("material:steel", "MATERIAL", "steel"),
        ("category:tools", "CATEGORY", "Tools")]}

    def fact(p, rel, uid, text, conf, field="title"):
        src = getattr(products[p], field) if field != "categories" else ",".join(products[p].category_path)
        start = src.index(text)
        return Fact.objects.create(product=products[p], relation=rel, entity=ent[uid], field=field, start=start,
                                   end=start + len(text), text=text, extractor="rules", extractor_version="1",
                                   confidence=conf)

    facts = {
        "p1_brand": fact("p1", "HAS_BRAND", "brand:stanley", "Stanley", 0.95),
        "p2_brand": fact("p2", "HAS_BRAND", "brand:stanley-tools", "Stanley Tools", 0.9),
        "p3_brand": fact("p3", "HAS_BRAND", "brand:stanley-tools", "Stanley Tools", 0.6),
        "p4_brand": fact("p4", "HAS_BRAND", "brand:bosch", "Bosch", 0.99),
        "p1_steel": fact("p1", "MADE_OF", "material:steel", "steel", 0.4),
        "p4_steel": fact("p4", "MADE_OF", "material:steel", "steel", 0.55),
        "p1_cat": fact("p1", "IN_CATEGORY", "category:tools", "Tools", 1.0, field="categories"),
    }
    shopper = ShopUser.objects.create(external_id="u1")
    for n, p in enumerate(["p4", "p4", "p4", "p1"]):
        Interaction.objects.create(event_id=f"e{n}", user=shopper, product=products[p], type="view",
                                   timestamp=datetime(2024, 1, 1, n, tzinfo=timezone.utc))
    return {"products": products, "entities": ent, "facts": facts}


def project(store, product_ids) -> None:
    """Put the products' facts into the graph store the way curation delivery does."""
    from kms.curation.services import product_graph_rows

    products, nodes, rels = product_graph_rows(list(product_ids))
    store.replace_product_facts([p.graph_uid for p in products], nodes, rels, include_curated=True)


@pytest.fixture
def catalogue_helpers():
    """(seed_catalogue, project) for tests that bring their own graph server."""
    return seed_catalogue, project


@pytest.fixture
def catalogue(kms_graph):
    data = seed_catalogue()
    project(kms_graph, [p.pk for p in data["products"].values()])
    return data
