"""Every write the API and the portal accept is guarded: enumerated from the URL resolver, so a new
endpoint is covered (or fails here) without anyone remembering to add it. Plus key storage and the
production secret key."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from .conftest import World

WRITE_METHODS = ("post", "put", "patch", "delete")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _flatten(entries) -> list[URLPattern]:
    """The patterns of an include and of the includes inside it (each app's ``api/urls.py`` is
    included into ``kms/api/urls.py`` with an empty prefix, and their names stay global)."""
    out = []
    for entry in entries:
        if isinstance(entry, URLResolver):
            assert not str(entry.pattern), f"a nested include with a prefix ({entry.pattern}) needs it in the sample URL"
            out += _flatten(entry.url_patterns)
        elif isinstance(entry, URLPattern):
            out.append(entry)
    return out


def _patterns(prefix: str, namespace: str | None = None) -> list[URLPattern]:
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLResolver) and str(entry.pattern) == prefix:
            return _flatten(entry.url_patterns)
    raise AssertionError(f"no URL include at {prefix}")


def _sample_url(pattern: URLPattern, namespace: str = "", pk: int = 1) -> str:
    names = list(pattern.pattern.converters) if hasattr(pattern.pattern, "converters") else []
    names = names or list(pattern.pattern.regex.groupindex)
    kwargs = {}
    for name in names:
        converter = getattr(pattern.pattern, "converters", {}).get(name)
        kwargs[name] = pk if converter is not None and type(converter).__name__ == "IntConverter" else (
            "product:1" if name == "uid" else "guard-1")
    return reverse(f"{namespace}{pattern.name}", kwargs=kwargs)


def api_writes() -> list[tuple[str, str]]:
    """(method, url) for every write method of every /api/v1/ view."""
    out = []
    for pattern in _patterns("api/v1/"):
        if pattern.name == "unknown-endpoint":
            continue
        view = pattern.callback.view_class
        out += [(m, _sample_url(pattern)) for m in WRITE_METHODS if hasattr(view, m)]
    return out


API_WRITES = api_writes()


def _client(world: World, who: str) -> APIClient:
    c = APIClient()
    if who != "anonymous":
        c.credentials(HTTP_AUTHORIZATION=world.headers(who)["Authorization"])
    return c


def test_enumeration_finds_the_writes():
    found = {(m, u.split("/")[3]) for m, u in API_WRITES}
    assert len(API_WRITES) >= 12, API_WRITES
    assert {("post", "products"), ("delete", "users"), ("post", "events"), ("post", "jobs")} <= found


@pytest.mark.parametrize("method, url", API_WRITES, ids=[f"{m.upper()} {u}" for m, u in API_WRITES])
def test_write_needs_a_write_key(live, method, url):
    anonymous = getattr(_client(live, "anonymous"), method)(url, {}, format="json")
    assert anonymous.status_code in (401, 403), anonymous.content
    assert anonymous.json()["error"]["code"] in ("not_authenticated", "permission_denied")
    read = getattr(_client(live, "read"), method)(url, {}, format="json")
    assert read.status_code == 403 and read.json()["error"]["code"] == "permission_denied", read.content
    write = getattr(_client(live, "write"), method)(url, {}, format="json")
    # let through: handled (2xx), or refused for its body / unknown id (4xx), never a server error
    assert write.status_code < 500 and write.status_code not in (401, 403), write.content
    assert write.status_code < 400 or write.json()["error"]["code"] not in ("not_authenticated", "permission_denied")


@pytest.mark.parametrize("method, url", API_WRITES[:3])
def test_a_non_staff_session_cannot_write(live, django_user_model, method, url):
    c = APIClient()
    c.force_login(django_user_model.objects.create_user("shopper", password="pw-shopper-1"))
    assert getattr(c, method)(url, {}, format="json").status_code == 403


def test_revoked_and_hash_as_key_are_refused(live):
    from kms.api.auth import clear_key_cache
    from kms.api.models import ApiKey

    key, secret = ApiKey.issue("to-revoke", "write")
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.hashed}")  # the stored digest is not a credential
    assert c.post("/api/v1/users", {"external_id": "h"}, format="json").status_code == 401
    ApiKey.objects.filter(pk=key.pk).update(revoked=True)
    clear_key_cache()
    c.credentials(HTTP_X_API_KEY=secret)
    assert c.post("/api/v1/users", {"external_id": "h"}, format="json").status_code == 401


def test_api_key_secret_is_stored_nowhere_in_the_database(live):
    from django.apps import apps
    from django.db import models

    from kms.api.models import ApiKey

    key, secret = ApiKey.issue("scan-me", "write")
    assert APIClient(HTTP_AUTHORIZATION=f"Api-Key {secret}").get("/api/v1/ping").status_code == 200
    key.refresh_from_db()
    assert key.hashed == ApiKey.digest(secret) and secret not in (key.hashed, key.prefix, key.name)
    hits = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, (models.CharField, models.TextField, models.JSONField)):
                lookup = f"{field.name}__icontains" if not isinstance(field, models.JSONField) else None
                if lookup and model.objects.filter(**{lookup: secret}).exists():
                    hits.append(f"{model._meta.label}.{field.name}")
    assert not hits, f"API key secret stored in plaintext: {hits}"


# --- the curation portal ---------------------------------------------------------------------------
PORTAL_EDITS = {"entity-create", "entity-rename", "entity-merge", "entity-split", "entity-delete", "facts-bulk",
                "fact-edit", "audit-revert", "jobs-start", "outbox-deliver", "attribute-save", "attribute-delete"}
PORTAL_READS = {"home", "entities", "entity-search", "entity", "graph-json", "review", "audit", "jobs",
                "jobs-json", "models", "stats", "attributes"}


def test_every_portal_url_is_classified():
    names = {p.name for p in _patterns("portal/")}
    assert names == PORTAL_EDITS | PORTAL_READS, "classify new portal URLs as edits or reads here"


@pytest.fixture
def viewer(django_user_model):
    from django.contrib.auth.models import Group

    from kms.curation.roles import setup_roles

    setup_roles()
    user = django_user_model.objects.create_user("viewer-guard", password="pw-viewer-1")
    user.groups.add(Group.objects.get(name="viewer"))
    return user


@pytest.mark.parametrize("name", sorted(PORTAL_EDITS))
def test_portal_edits_refuse_viewers_and_anonymous(live, viewer, client, name):
    from kms.knowledge.models import Entity, Fact

    pattern = next(p for p in _patterns("portal/") if p.name == name)
    pk = (Fact.objects.values_list("pk", flat=True).first() if name == "fact-edit"
          else Entity.objects.values_list("pk", flat=True).first()) or 1
    url = _sample_url(pattern, "curation:", pk=pk)
    before = (Entity.objects.count(), Fact.objects.count())
    anonymous = client.post(url, {"name": "x", "type": "BRAND", "reason": "guard"})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    client.force_login(viewer)
    assert client.post(url, {"name": "x", "type": "BRAND", "reason": "guard"}).status_code == 403
    assert (Entity.objects.count(), Fact.objects.count()) == before


def test_portal_reads_need_a_login(live, client):
    for pattern in _patterns("portal/"):
        if pattern.name in PORTAL_READS - {"home"}:
            response = client.get(_sample_url(pattern, "curation:"))
            assert response.status_code == 302 and "/accounts/login/" in response["Location"], pattern.name


# --- settings --------------------------------------------------------------------------------------
def _django_setup(tmp_path, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SECRET_KEY", "DJANGO_DEBUG")}
    base |= {"DJANGO_SETTINGS_MODULE": "kms.settings", "KMS_DATA_DIR": str(tmp_path), "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-c", "import django; django.setup()\n"
                           "from django.conf import settings; print(settings.SECRET_KEY)"],
                          cwd=ROOT, env=base | env, capture_output=True, text=True, timeout=120)


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    refused = _django_setup(tmp_path, KMS_REQUIRE_SECRET="1")
    assert refused.returncode != 0 and "DJANGO_SECRET_KEY must be set" in refused.stderr
    started = _django_setup(tmp_path, KMS_REQUIRE_SECRET="1", DJANGO_SECRET_KEY="from-the-environment-42")
    assert started.returncode == 0, started.stderr[-2000:]
    assert started.stdout.strip() == "from-the-environment-42"
