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

**The queue** (``KMS_IMPRESSIONS_QUEUE_URL``, default the serving cache's Redis): with it, the
flusher thread does not write to the database at all. It appends the interval's lists as one
Redis list element (one ``RPUSH``), and a writer outside the web process moves them into the
database with ``drain_queue``: beat's ``write-impressions`` task, or ``manage.py
write_impressions`` as its own process. Measured at saturation on 2 cores, the COPY and its
commit inside the web worker cost far more serving throughput than their own CPU
(``bench/impressions_cost.py``); the push costs the worker a JSON encoding and one round trip.
Nothing depends on the writer running: when more than ``SELF_DRAIN_BATCHES`` elements wait, the
web process drains the queue itself, and an explicit ``flush()`` (feedback that needs its list,
exit, tests) pushes and drains, so its lists are in the database when it returns. A user erased
while their lists wait in the queue is recorded in a sorted set the writer checks, and the
erasure waits for a drain in progress, so no list of theirs is written after the erasure.
"""
from __future__ import annotations

import atexit
import json
import logging
import secrets
import threading
import time
from datetime import datetime
from datetime import timezone as dt_timezone

import orjson
from django.conf import settings
from django.db import DataError, IntegrityError
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
        request threads between them; then (``attribute``) decide the feedback waiting for it.
        With the queue: push the rows, and drain the queue into the database when ``attribute``
        (the explicit flush: the lists must be there when it returns) or when the queue is long."""
        from .attribution import attribute_pending

        with self.flush_lock:
            with self.lock:
                rows, self.rows = self.rows, []
            n = len(rows)
            queue = _queue()
            if not rows:
                if attribute:
                    if queue is not None:
                        _drain_quietly(queue)  # lists other processes queued, which the feedback may need
                    attribute_pending()  # events waiting for the window rule settle without new lists too
                return 0
            written = 0
            if queue is not None:
                try:
                    waiting = push(queue, rows)
                except Exception:  # Redis unreachable: write directly, as without a queue
                    log.warning("impression queue unreachable; writing to the database directly", exc_info=True)
                    queue = None
                else:
                    rows = []
                    if attribute or waiting > SELF_DRAIN_BATCHES:
                        # the lists are needed now (wait for a drain in progress), or no writer keeps up
                        drain_queue(queue, wait=5.0 if attribute else 0.0)
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
        return n

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


# -- the queue -------------------------------------------------------------------------------
SELF_DRAIN_BATCHES = 30  # queued flushes beyond which a web process drains the queue itself (no writer keeps up)
DRAIN_BATCHES = 50  # queue elements (one per flush) written per database transaction by the writer
ERASED_DAYS = 7  # how long an erasure is remembered for lists still queued (far longer than any queue waits)
_queues: dict[str, object] = {}
_queues_lock = threading.Lock()


def _queue():
    """The Redis client of the impression queue, or None (no queue: the flusher writes the database)."""
    url = settings.KMS_IMPRESSIONS_QUEUE_URL
    if not url:
        return None
    client = _queues.get(url)
    if client is None:
        import redis

        with _queues_lock:
            client = _queues.get(url) or redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=1.0)
            _queues[url] = client
    return client


def _keys() -> tuple[str, str, str]:
    """(queue, erased users, drain lock) keys, per database: two shops or test runs on one Redis
    never write each other's lists."""
    from django.db import connection

    name = f"kms:impressions:{connection.settings_dict['NAME']}"
    return f"{name}:queue", f"{name}:erased", f"{name}:drain"


def push(client, rows: list[tuple]) -> int:
    """Append the rows to the queue as one element; returns how many elements wait."""
    payload = orjson.dumps([(*row[:7], row[7].timestamp()) for row in rows])
    return int(client.rpush(_keys()[0], payload))


def drain_queue(client=None, wait: float = 0.0) -> int:
    """Move every queued list into the database (``insert_rows``; DRAIN_BATCHES elements per
    transaction); returns how many lists were written. Called by the writer (beat's
    ``write-impressions``, ``manage.py write_impressions``), by a web process whose queue is long
    or whose explicit flush needs the lists, and by an erasure. One drainer at a time (a Redis
    lock): elements are read, written, and only then removed, so a drainer that dies loses
    nothing (a list written twice is stored once: ``recommendation_id`` is unique). Lists of a
    user erased after they were served are dropped. ``wait``: seconds to wait for another
    drainer to finish (0: return 0 at once if one is running)."""
    client = client or _queue()
    if client is None:
        return 0
    queue_key, erased_key, lock_key = _keys()
    lock = client.lock(lock_key, timeout=300)
    if not lock.acquire(blocking=wait > 0, blocking_timeout=wait or None):
        return 0
    written = 0
    try:
        client.zremrangebyscore(erased_key, "-inf", time.time() - ERASED_DAYS * 86400)
        while True:
            lock.reacquire()  # a long backlog keeps the lock for as long as it takes
            payloads = client.lrange(queue_key, 0, DRAIN_BATCHES - 1)
            if not payloads:
                return written
            rows = [row for payload in payloads for row in orjson.loads(payload)]
            users = sorted({row[1] for row in rows if row[1]})
            erased = dict(zip(users, client.zmscore(erased_key, users))) if users else {}
            keep = [(*row[:7], datetime.fromtimestamp(row[7], tz=dt_timezone.utc)) for row in rows
                    if erased.get(row[1]) is None or row[7] > erased[row[1]]]
            try:
                for start in range(0, len(keep), INSERT_CHUNK):
                    insert_rows(keep[start:start + INSERT_CHUNK])
            except _refused():  # a row the table refuses must not block the queue: write the others
                keep = _insert_each(keep)
            client.ltrim(queue_key, len(payloads), -1)  # only this drainer removes, and only what it wrote
            written += len(keep)
    finally:
        try:
            lock.release()
        except Exception:  # expired (a drain longer than its timeout); the next drainer takes over
            pass


def _refused() -> tuple[type[Exception], ...]:
    """What a database raises for a row it will never take (bad data, a vanished experiment)."""
    try:
        import psycopg
    except ImportError:
        return DataError, IntegrityError
    return DataError, IntegrityError, psycopg.errors.DataError, psycopg.errors.IntegrityError


def _insert_each(rows: list[tuple]) -> list[tuple]:
    """Write rows one by one, logging and skipping those the database refuses as data; returns the written."""
    written = []
    for row in rows:
        try:
            insert_rows([row])
            written.append(row)
        except _refused():
            log.error("impression refused by the database, dropped: %r", row[:6], exc_info=True)
    return written


def write_queued() -> int:
    """The writer's step (beat's ``write-impressions``, ``manage.py write_impressions``): drain the
    queue, then decide the feedback that was waiting for those lists; returns the lists written."""
    from .attribution import attribute_pending

    written = drain_queue()
    if written:
        attribute_pending()
    return written


def _drain_quietly(client) -> None:
    try:
        drain_queue(client, wait=5.0)
    except Exception:
        log.exception("could not drain the impression queue; the writer retries")


def forget_queued(user: str) -> None:
    """An erasure: lists of ``user`` served until now are never written from the queue, and a drain
    in progress (which may have read them before this) finishes before the caller deletes the
    user's stored lists."""
    client = _queue()
    if client is None:
        return
    _, erased_key, lock_key = _keys()
    client.zadd(erased_key, {user: time.time()})
    lock = client.lock(lock_key, timeout=300)
    if lock.acquire(blocking=True, blocking_timeout=60):
        lock.release()


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
