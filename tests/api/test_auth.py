"""Scopes, key storage, revocation and per-key throttling."""
import io

import pytest
from django.core.management import call_command

from kms.api.models import ApiKey

pytestmark = pytest.mark.django_db


def test_anonymous_reads_but_cannot_write(anon_client):
    assert anon_client.get("/api/v1/ping").status_code == 200
    response = anon_client.post("/api/v1/users", {"external_id": "x"}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_read_key_cannot_write(read_client):
    assert read_client.get("/api/v1/ping").status_code == 200
    response = read_client.post("/api/v1/users", {"external_id": "x"}, format="json")
    assert response.status_code == 403
    assert read_client.delete("/api/v1/users/x").status_code == 403


def test_write_key_writes(write_client):
    assert write_client.post("/api/v1/users", {"external_id": "x"}, format="json").status_code == 201


def test_x_api_key_header(anon_client, write_client):
    anon_client.credentials(HTTP_X_API_KEY=write_client.secret)
    assert anon_client.post("/api/v1/users", {"external_id": "y"}, format="json").status_code == 201


def test_unknown_key_refused(anon_client):
    anon_client.credentials(HTTP_AUTHORIZATION="Api-Key kms_not-a-key")
    response = anon_client.get("/api/v1/ping")
    assert response.status_code == 401 and response.json()["error"]["code"] == "authentication_failed"


def test_key_stored_hashed(write_client):
    key = ApiKey.objects.get(pk=write_client.key.pk)
    assert write_client.secret not in (key.hashed, key.prefix, key.name)
    assert key.hashed == ApiKey.digest(write_client.secret) and len(key.hashed) == 64


def test_revoked_key_refused(write_client):
    from kms.api.auth import clear_key_cache

    ApiKey.objects.filter(pk=write_client.key.pk).update(revoked=True)
    clear_key_cache()  # in production a revocation takes effect within KEY_CACHE_SECONDS
    assert write_client.get("/api/v1/ping").status_code == 401


def test_create_api_key_command_prints_secret_once():
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "shop-a", "--scope", "write", stdout=out, stderr=err)
    secret = out.getvalue().strip()
    key = ApiKey.objects.get(name="shop-a")
    assert secret.startswith("kms_") and key.scope == "write"
    assert key.hashed == ApiKey.digest(secret) and secret not in err.getvalue()


def test_per_key_rate_limit(settings, read_client, write_client):
    from django.core.cache import cache

    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "3/min"}}
    from rest_framework.settings import api_settings
    from kms.api.auth import ApiKeyRateThrottle

    api_settings.reload()
    ApiKeyRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    try:
        codes = [read_client.get("/api/v1/ping").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert read_client.get("/api/v1/ping").json()["error"]["code"] == "throttled"
        assert write_client.get("/api/v1/ping").status_code == 200  # another key has its own budget
    finally:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "100000/min"}}
        api_settings.reload()
        ApiKeyRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
        cache.clear()


CUSTOMER_READS = ["/api/v1/users", "/api/v1/users/u1", "/api/v1/users/u1/recommendations?k=3",
                  "/api/v1/search?q=staples&user=u1", "/api/v1/graph/nodes/user:u1",
                  "/api/v1/graph/nodes/user:u1/neighbours", "/api/v1/graph/paths?src=user:u1&dst=product:p1"]
CATALOGUE_READS = ["/api/v1/products", "/api/v1/products/p1", "/api/v1/products/p1/similar", "/api/v1/popular",
                   "/api/v1/search?q=staples", "/api/v1/graph/entities?name=acme", "/api/v1/jobs/train"]


@pytest.fixture
def shopper(kms_graph):
    from kms.catalogue.services import upsert_products
    from kms.events.services import record_events
    from kms.events.tasks import deliver_to_graph

    upsert_products([{"external_id": "p1", "title": "Acme staples", "brand": "Acme"}])
    deliver_to_graph(record_events([{"user": "u1", "product": "p1", "type": "purchase", "event_id": "u1-p1"}]).interaction_ids)
    return kms_graph


@pytest.mark.parametrize("url", CUSTOMER_READS)
def test_customer_data_needs_a_key_by_default(shopper, anon_client, read_client, url):
    anonymous = anon_client.get(url)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "not_authenticated"
    assert read_client.get(url).status_code == 200, read_client.get(url).content


@pytest.mark.parametrize("url", CATALOGUE_READS)
def test_catalogue_reads_stay_public(shopper, anon_client, url):
    assert anon_client.get(url).status_code == 200, anon_client.get(url).content


def test_anonymous_product_neighbours_leave_the_buyers_out(shopper, anon_client, read_client):
    url = "/api/v1/graph/nodes/product:p1/neighbours"
    assert "user:u1" in {n["uid"] for n in read_client.get(url).json()["neighbours"]}
    assert "user:u1" not in {n["uid"] for n in anon_client.get(url).json()["neighbours"]}


def test_the_settings_open_or_close_each_kind(shopper, anon_client, settings):
    settings.KMS_PUBLIC_CUSTOMER_READ = True
    assert anon_client.get("/api/v1/users/u1").status_code == 200
    settings.KMS_PUBLIC_CUSTOMER_READ, settings.KMS_PUBLIC_READ = False, False
    assert anon_client.get("/api/v1/products").status_code == 401
    assert anon_client.get("/api/v1/ping").status_code == 401
