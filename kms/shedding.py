"""Load shedding: answer 503 at once for a request that already waited too long in the queue.

Under overload a server that handles requests in arrival order spends its time on requests whose
clients have given up, and goodput falls to zero (the 200 req/s soak on a busy box did exactly
that). Two parts stop it:

* ``QueueStampingWorker`` (a gunicorn ``gthread`` worker; ``gunicorn -k
  kms.shedding.QueueStampingWorker``) stamps each request with the time it was queued for a
  thread, as an ``X-Request-Start: t=<unix seconds>`` header, unless a proxy in front already
  set one (nginx: ``proxy_set_header X-Request-Start "t=${msec}";``), which then measures the
  whole queue.
* ``QueueDeadlineMiddleware`` compares that stamp with the clock: past
  ``KMS_QUEUE_DEADLINE_MS`` (default 2000; 0 turns shedding off) the request is answered with
  ``503 {"error": {"code": "overloaded", ...}}`` and ``Retry-After: 1`` before any view work.
  Health checks are never shed, so an overloaded instance still reports itself live.

A client can only make its own request shed by sending an old stamp; a stamp from the future
counts as no wait.
"""
from __future__ import annotations

import time

from django.conf import settings
from django.http import JsonResponse

try:  # gunicorn is only needed where the worker class is used
    from gunicorn.workers.gthread import ThreadWorker
except ImportError:  # pragma: no cover - e.g. a dev server without gunicorn
    ThreadWorker = object

HEADER = "X-REQUEST-START"
EXEMPT_PREFIXES = ("/health/",)


def queued_seconds(value: str, now: float) -> float | None:
    """Seconds since an ``X-Request-Start`` value (``t=`` optional; seconds, ms or µs since the epoch)."""
    text = value.strip()
    if text.startswith("t="):
        text = text[2:]
    try:
        stamp = float(text)
    except ValueError:
        return None
    if stamp > 1e14:  # microseconds
        stamp /= 1e6
    elif stamp > 1e11:  # milliseconds
        stamp /= 1e3
    return max(0.0, now - stamp)


class QueueDeadlineMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.deadline = settings.KMS_QUEUE_DEADLINE_MS / 1000.0

    def __call__(self, request):
        value = request.META.get("HTTP_X_REQUEST_START")
        if value and self.deadline > 0 and not request.path.startswith(EXEMPT_PREFIXES):
            waited = queued_seconds(value, time.time())
            if waited is not None and waited > self.deadline:
                response = JsonResponse({"error": {
                    "code": "overloaded",
                    "message": f"the server is overloaded: this request waited {waited * 1000:.0f} ms in the queue "
                               f"(limit {self.deadline * 1000:.0f} ms); retry later",
                    "fields": {}}}, status=503)
                response["Retry-After"] = "1"
                return response
        return self.get_response(request)


class QueueStampingWorker(ThreadWorker):
    """gunicorn's gthread worker, stamping when each request was queued for a worker thread."""

    def enqueue_req(self, conn):
        conn.kms_queued_at = time.time()
        super().enqueue_req(conn)

    def handle_request(self, req, conn):
        stamp = getattr(conn, "kms_queued_at", None)
        if stamp is not None and not any(name == HEADER for name, _ in req.headers):
            req.headers.append((HEADER, f"t={stamp:.6f}"))
        return super().handle_request(req, conn)
