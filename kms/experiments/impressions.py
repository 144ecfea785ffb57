"""The lists served, recorded off the request path.

``record(...)`` gives a response its ``recommendation_id`` and each item its ``position`` and
appends one compact row to this process's bounded buffer: no database write, no network call on
the request. A daemon thread writes the buffer every ``KMS_IMPRESSIONS_FLUSH_SECONDS`` (or at once
when ``FLUSH_SIZE`` rows wait) with ``insert_rows`` (a ``COPY`` on PostgreSQL), then attributes
the feedback that was waiting for those lists. The write is plain SQL, not ``bulk_create``: the
thread shares the web worker's GIL with the request threads, and building model objects cost
8x the CPU of the COPY. ``KMS_RECORD_IMPRESSIONS=0`` turns the recording off (responses keep
their ids and positions; nothing is stored or attributed). The same code runs with and without a
broker (each web process flushes its own buffer). At exit the buffer is flushed; a killed process
loses at most the last interval's lists (their clicks are then attributed by the window, or not at all).
"""
from __future__ import annotations

import atexit
import json
import logging
import secrets
import threading
import time
from datetime import datetime

from django.conf import settings
from django.utils import timezone

log = logging.getLogger(__name__)

FLUSH_SIZE = 500
IDLE_SECONDS = 120.0  # the flusher thread ends after this long without lists or feedback
MAX_BUFFERED = 100_000  # beyond this (the database down for a long time) new lists are counted, not kept


class ImpressionBuffer:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows: list[tuple] = []
        self.dropped = 0
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.active = 0.0
        self.feedback_at = -1e9
        self.flush_lock = threading.Lock()

    def add(self, row: tuple) -> None:
        with self.lock:
            if len(self.rows) >= MAX_BUFFERED:
                self.dropped += 1
                return
            self.rows.append(row)
            n = len(self.rows)
        self.touch()
        if n >= FLUSH_SIZE:
            self.wake.set()

    def touch(self) -> None:
        """Note activity and make sure the flusher runs (it stops after IDLE_SECONDS of nothing)."""
        self.active = time.monotonic()
        if self.thread is None or not self.thread.is_alive():
            with self.lock:
                if self.thread is None or not self.thread.is_alive():
                    self.thread = threading.Thread(target=self._run, name="impressions-flush", daemon=True)
                    self.thread.start()

    def _run(self) -> None:
        from django.db import connection

        from .attribution import settle_seconds

        while True:
            self.wake.wait(settings.KMS_IMPRESSIONS_FLUSH_SECONDS)
            self.wake.clear()
            if self.thread is not threading.current_thread():
                connection.close()
                return  # retired by clear()
            now = time.monotonic()
            idle = now - self.active
            try:
                # after the last list or feedback, keep settling pending attributions a while; with
                # no feedback in this process lately, only write (the process that received the
                # feedback settles it, and beat's attribute-feedback task backs both up)
                if self.rows or idle < 2 * settle_seconds():
                    self.flush(attribute=now - self.feedback_at < 2 * settle_seconds())
            except Exception:  # the rows are back in the buffer; try again next interval
                log.exception("could not write impressions; retrying")
                connection.close()  # a broken connection is not reused
            else:
                # keep the connection between flushes (a reconnect is a new PostgreSQL backend each
                # time); drop it as request threads do, when it is unusable or past CONN_MAX_AGE
                connection.close_if_unusable_or_obsolete()
            if not self.rows and idle > IDLE_SECONDS:
                with self.lock:
                    if not self.rows:
                        self.thread = None
                        connection.close()
                        return

    def forget(self, user: str) -> None:
        """Drop the user's lists not yet written (an erasure must not be undone by a later flush)."""
        with self.lock:
            self.rows = [r for r in self.rows if r[1] != user]

    def feedback(self) -> None:
        """Feedback was stored in this process: the flusher attributes pending events for a while."""
        self.feedback_at = time.monotonic()
        self.touch()

    def flush(self, attribute: bool = True) -> int:
        """Write what is buffered, in chunks of INSERT_CHUNK rows with the GIL offered to the
        request threads between them; then (``attribute``) decide the feedback waiting for it."""
        from .attribution import attribute_pending

        with self.flush_lock:
            with self.lock:
                rows, self.rows = self.rows, []
            if not rows:
                if attribute:
                    attribute_pending()  # events waiting for the window rule settle without new lists too
                return 0
            written = 0
            try:
                for start in range(0, len(rows), INSERT_CHUNK):
                    insert_rows(rows[start:start + INSERT_CHUNK])
                    written = start + INSERT_CHUNK
                    time.sleep(0)  # a chunk holds the GIL ~1.5 ms; waiting requests run between chunks
            except Exception:
                with self.lock:
                    self.rows[:0] = rows[written:]
                raise
        if attribute:
            attribute_pending()
        return len(rows)

    def clear(self) -> None:
        """Forget the buffered rows and retire the flusher thread (tests; a new one starts on demand)."""
        with self.lock:
            self.rows, self.dropped, self.active, self.feedback_at = [], 0, 0.0, -1e9
            self.thread = None
        self.wake.set()


INSERT_CHUNK = 100  # rows per COPY / executemany: about 1.5 ms of the GIL each
COLUMNS = ("recommendation_id", "user", "surface", "model_version", "experiment_id", "arm", "items", "created_at")


def insert_rows(rows: list[tuple]) -> None:
    """Write buffered rows. PostgreSQL: one ``COPY … FROM STDIN`` (psycopg's C writer: about 15 µs
    of the web worker's CPU a list, against 40 for a multi-row INSERT and 125 for ``bulk_create``);
    if it meets a row already stored (a retried flush whose first COPY had committed), the rows
    go in with ``INSERT … ON CONFLICT DO NOTHING`` instead. Other databases: that INSERT."""
    from django.db import connection, transaction

    from .models import Impression

    q = connection.ops.quote_name
    table = q(Impression._meta.db_table)
    columns = ", ".join(q(Impression._meta.get_field(name).column) for name in COLUMNS)
    values = [(*row[:6], json.dumps(row[6]), row[7]) for row in rows]  # COLUMNS' order, items as JSON
    if connection.vendor == "postgresql":
        import psycopg

        try:
            with transaction.atomic(), connection.cursor() as cursor:  # a savepoint inside a transaction
                with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for value in values:
                        copy.write_row(value)
            return
        except psycopg.errors.UniqueViolation:
            pass
    adapt = connection.ops.adapt_datetimefield_value
    unique = q(Impression._meta.get_field("recommendation_id").column)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) "
            f"ON CONFLICT ({unique}) DO NOTHING", [(*value[:7], adapt(value[7])) for value in values])


buffer = ImpressionBuffer()
atexit.register(lambda: buffer.rows and _flush_quietly())


def _flush_quietly() -> None:
    try:
        buffer.flush()
    except Exception:
        log.exception("impressions lost at exit")


def new_recommendation_id() -> str:
    return secrets.token_hex(16)


def record(response: dict, surface: str, user: str | None, model_version: int | None,
           experiment_id: int | None = None, arm: str = "", now: datetime | None = None) -> dict:
    """Number ``response["items"]`` (``position`` 1..n), give the response a ``recommendation_id``
    and buffer the impression. Returns the response."""
    items = response.get("items") or []
    for n, item in enumerate(items, 1):
        item["position"] = n
    rid = new_recommendation_id()
    response["recommendation_id"] = rid
    if experiment_id is not None:
        response["experiment"] = {"id": experiment_id, "arm": arm}
    if settings.KMS_RECORD_IMPRESSIONS:
        buffer.add((rid, user or "", surface, model_version, experiment_id, arm,
                    [item["product"] for item in items], now or timezone.now()))
    return response
