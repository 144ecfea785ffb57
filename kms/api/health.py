"""Liveness (the process answers) and readiness (database, broker, graph store)."""
from django.conf import settings
from django.db import connection
from django.http import JsonResponse


def live(request):
    return JsonResponse({"status": "ok"})


def _database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, connection.vendor
    except Exception as exc:
        return False, str(exc)[:200]


def _broker() -> tuple[bool, str]:
    if not settings.CELERY_BROKER_URL:
        return True, "eager (no broker configured)"
    from kms.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True, conn.transport_cls if isinstance(conn.transport_cls, str) else "connected"
    except Exception as exc:
        return False, str(exc)[:200]


def _graph() -> tuple[bool, str]:
    try:
        from kms.graphstore import get_graph_store

        store = get_graph_store()
        return (True, store.server_agent()) if store.ping() else (False, "not answering")
    except Exception as exc:
        return False, str(exc)[:200]


def ready(request):
    checks = {name: fn() for name, fn in (("database", _database), ("broker", _broker), ("graph", _graph))}
    ok = all(passed for passed, _ in checks.values())
    body = {"status": "ok" if ok else "unavailable",
            "checks": {name: {"ok": passed, "detail": detail} for name, (passed, detail) in checks.items()}}
    return JsonResponse(body, status=200 if ok else 503)
