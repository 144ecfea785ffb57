"""What the read hot path keeps in Redis so that a request that nothing changed for runs no SQL.

Three generation counters, shared by every web process: ``model`` (an activation, an erasure
that rewrote model files), ``catalogue`` (products and their facts written, edited, deleted) and
``events`` (any user's events changed). Each process keeps its own product rows, popularity
ranking and model index, and trusts them while the counters it read with the request are the ones
it built them under. Users' histories are cached in Redis itself, each under the version counter
of its user: a writer increments the counter (and drops the entry) after its commit, a reader reads
the counter *before* the database, so an entry written from a read that raced a write carries the
old version and is never served.

Zero-setup (no Redis URL, ``KMS_SERVING_REDIS_URL`` empty) or Redis unreachable: ``read`` returns
None and the callers query the database as before (histories every request, the rest with their
time-to-live), which is correct across processes without a shared store.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from django.conf import settings
from django.db import connection, transaction

log = logging.getLogger(__name__)
GENERATIONS = ("model", "catalogue", "events")
# A cached history is dropped after this long even if no write bumped its user: the bound on
# staleness should a write ever miss its bump (Redis down at that moment, a raw SQL change).
HISTORY_TTL_SECONDS = 600
RETRY_AFTER_ERROR_SECONDS = 5.0


@dataclass(frozen=True)
class Snapshot:
    """The generations this request runs under and, for a user's request, the user's cached history."""

    model: int
    catalogue: int
    events: int
    user_version: int | None = None
    history: list[str] | None = None  # product uids in time order; None: not cached, read the database

    @property
    def stamp(self) -> tuple[int, int, int]:
        return self.model, self.catalogue, self.events


class _MgetConnection:
    """One thread's plain socket to Redis for the hot path's single command, MGET (RESP2).

    redis-py spends ~120 µs of CPU on an MGET here (pure-Python reply parser, retry and health
    machinery), about a quarter of a whole trivial API request; a socket, a prepared command and
    a buffered reader spend ~15 µs. Writes and everything else stay on redis-py."""

    def __init__(self, url: str, timeout: float):
        from urllib.parse import unquote, urlparse

        parsed = urlparse(url)
        self.sock = socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")
        setup = []
        if parsed.password:
            setup.append(["AUTH"] + ([unquote(parsed.username)] if parsed.username else []) + [unquote(parsed.password)])
        db = (parsed.path or "/0").strip("/") or "0"
        if db != "0":
            setup.append(["SELECT", db])
        for command in setup:
            self.sock.sendall(_command(command))
            line = self.reader.readline()
            if not line.startswith(b"+"):
                raise OSError(f"redis refused {command[0]}: {line[:200]!r}")

    def mget(self, keys: list[str]) -> list[bytes | None]:
        self.sock.sendall(_command(["MGET", *keys]))
        head = self.reader.readline()
        if head[:1] != b"*":
            raise OSError(f"unexpected redis reply {head[:200]!r}")
        out = []
        for _ in range(int(head[1:])):
            size = int(self.reader.readline()[1:])
            out.append(None if size < 0 else self.reader.read(size + 2)[:-2])
        return out

    def close(self) -> None:
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass


def _command(parts: list[str]) -> bytes:
    encoded = [p.encode() for p in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded)


class ServingCache:
    def __init__(self):
        self._client = None
        self._client_url = None
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._local = threading.local()  # each thread's _MgetConnection

    def _mget(self, url: str, keys: list[str]) -> list:
        if not url.startswith("redis://"):  # TLS, unix sockets: redis-py
            return self._redis().mget(keys)
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.url != url:
            conn = self._local.conn = _MgetConnection(url, timeout=0.5)
            self._local.url = url
        try:
            return conn.mget(keys)
        except Exception:
            conn.close()
            self._local.conn = None
            raise

    # -- plumbing ----------------------------------------------------------------------------
    def _redis(self):
        url = settings.KMS_SERVING_REDIS_URL
        if not url or time.monotonic() < self._down_until:
            return None
        if self._client is None or self._client_url != url:
            import redis

            with self._lock:
                self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5,
                                                    health_check_interval=30)
                self._client_url = url
        return self._client

    def _failed(self, exc: Exception) -> None:
        # Serve from the database for a few seconds instead of waiting out a timeout per request.
        self._down_until = time.monotonic() + RETRY_AFTER_ERROR_SECONDS
        log.warning("serving cache (Redis) unavailable, reading the database: %s", exc)

    @staticmethod
    def _prefix() -> str:
        # The database name keeps a test database's and a benchmark's keys apart on one Redis.
        return f"kms:{settings.DATABASES['default']['NAME']}:serve:"

    def _gen_keys(self) -> list[str]:
        p = self._prefix()
        return [f"{p}gen:{name}" for name in GENERATIONS]

    def _user_keys(self, user: str) -> tuple[str, str]:
        p = self._prefix()
        return f"{p}uver:{user}", f"{p}hist:{user}"

    # -- reads -------------------------------------------------------------------------------
    def read(self, user: str | None = None) -> Snapshot | None:
        """The generations (one MGET) and, with ``user``, the user's version and cached history."""
        url = settings.KMS_SERVING_REDIS_URL
        if not url or time.monotonic() < self._down_until:
            return None
        keys = self._gen_keys() + (list(self._user_keys(user)) if user is not None else [])
        try:
            values = self._mget(url, keys)
        except Exception as exc:  # redis.RedisError, OSError, ValueError: the database answers instead
            self._failed(exc)
            return None
        gens = [int(v or 0) for v in values[:3]]
        if user is None:
            return Snapshot(*gens)
        version = int(values[3] or 0)
        history = None
        if values[4] is not None:
            try:
                cached_version, cached = orjson.loads(values[4])
                if cached_version == version:
                    history = cached
            except (ValueError, TypeError):
                pass
        return Snapshot(*gens, user_version=version, history=history)

    def store_history(self, user: str, snapshot: Snapshot | None, history: list[str]) -> None:
        """Cache what the database said under the user version read *before* the query."""
        client = self._redis()
        if client is None or snapshot is None or snapshot.user_version is None:
            return
        try:
            client.set(self._user_keys(user)[1], json.dumps([snapshot.user_version, history]),
                       ex=HISTORY_TTL_SECONDS)
        except Exception as exc:
            self._failed(exc)

    # -- writes (call after the database change) ----------------------------------------------
    def _bump(self, generations: Iterable[str], users: Iterable[str]) -> None:
        client = self._redis()
        users = list(dict.fromkeys(users))
        generations = list(generations) + (["events"] if users else [])
        if client is None or not generations:
            return
        p = self._prefix()
        try:
            with client.pipeline(transaction=False) as pipe:
                for user in users:
                    version_key, history_key = self._user_keys(user)
                    pipe.incr(version_key)
                    pipe.delete(history_key)
                for name in dict.fromkeys(generations):
                    pipe.incr(f"{p}gen:{name}")
                pipe.execute()
        except Exception as exc:
            self._failed(exc)

    def changed(self, *generations: str, users: Iterable[str] = ()) -> None:
        """Mark generations (``model``, ``catalogue``) and users' histories changed: now, for this
        connection's own next reads, and again once the enclosing transaction commits, for the
        reads other processes make (one that ran between the two cached what it saw under the
        first bump; the second makes that entry old)."""
        users = list(users)
        unknown = set(generations) - set(GENERATIONS)
        if unknown:
            raise ValueError(f"unknown serving generations: {sorted(unknown)}")
        self._bump(generations, users)
        if connection.in_atomic_block:
            transaction.on_commit(AfterCommitBump(self, generations, users))

    def clear(self) -> None:
        """Drop every key of this database's serving cache (tests, a restored database)."""
        client = self._redis()
        if client is None:
            return
        try:
            keys = list(client.scan_iter(match=self._prefix() + "*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start:start + 1000])
        except Exception as exc:
            self._failed(exc)
        self._down_until = 0.0


class AfterCommitBump:
    """The on-commit half of ``ServingCache.changed`` (a type of its own, so a test counting the
    tasks a transaction sends after commit can tell these apart)."""

    def __init__(self, cache: ServingCache, generations, users):
        self.cache, self.generations, self.users = cache, generations, users

    def __call__(self) -> None:
        self.cache._bump(self.generations, self.users)


serving_cache = ServingCache()
