"""API test fixtures: cold process caches for each test (clients are in tests/conftest.py)."""
import pytest

from tests.caches import clear_process_caches


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Keys, the popularity ranking, the search and serving indexes are process caches: start each test cold."""
    clear_process_caches()
    yield
    clear_process_caches()


def error_fields(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    return body["error"]["fields"]
