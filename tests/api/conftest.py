"""API test fixtures: clients with read/write keys, and the real Amazon-Scientific slice."""
import pytest
from rest_framework.test import APIClient

from tests.slices import _scientific_slice


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Keys, the popularity ranking and the search index are process caches: start each test cold."""
    from kms.api.auth import clear_key_cache
    from kms.recs.services import popularity
    from kms.search import search_index

    for clear in (clear_key_cache, popularity.clear, search_index.clear):
        clear()
    yield
    for clear in (clear_key_cache, popularity.clear, search_index.clear):
        clear()


@pytest.fixture
def anon_client():
    return APIClient()


def _client_with(scope: str):
    from kms.api.models import ApiKey

    key, secret = ApiKey.issue(f"test-{scope}", scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    client.key, client.secret = key, secret
    return client


@pytest.fixture
def read_client(db):
    return _client_with("read")


@pytest.fixture
def write_client(db):
    return _client_with("write")


@pytest.fixture(scope="session")
def scientific_slice():
    return _scientific_slice


def error_fields(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    return body["error"]["fields"]
