"""HTTP/1.1 load generator in plain asyncio (keep-alive sockets, no third-party client): nothing to
install, so a fresh machine runs ``bench/api_load.py`` as it is.

Open loop (``open_loop``): request n is *due* at ``start + n / rate``, fixed before the run. Its
latency is measured from when it was due, not from when a connection was free to send it, so a
server that falls behind shows its queueing delay in the percentiles (no coordinated omission).
Connections are opened on demand up to ``max_connections``; a request that finds none free waits,
and that wait counts. Closed loop (``closed_loop``): ``connections`` clients each send the next
request as soon as the previous answer arrived, for ``duration`` seconds; its req/s is the
server's capacity at that concurrency.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    sent: int = 0

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    def summary(self) -> dict:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.asarray([float("nan")])
        return {"p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2),
                "rps": round(len(self.latencies_ms) / self.seconds, 1) if self.seconds else 0.0,
                "errors": self.errors, "requests": self.sent, "error_kinds": self.error_kinds}


class Connection:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(self, raw: bytes) -> int:
        """Send one request, read the whole response; returns the status code."""
        if self.writer is None:
            await self.open()
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status


def request_bytes(host: str, port: int, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send(conn: Connection, raw: bytes) -> int:
    """A reused keep-alive connection the server closed while it was idle (gunicorn's keep-alive
    timeout) fails before any byte of the answer: send once more on a new connection, as HTTP
    clients do for a GET. Any other failure is the server's."""
    reused = conn.writer is not None
    try:
        return await conn.request(raw)
    except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
        if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
            raise
        conn.close()
        return await conn.request(raw)


async def _one(conn: Connection, raw: bytes, timeout: float, result: LoadResult, due: float) -> bool:
    """One request on ``conn``; records latency from ``due``. False if the connection is unusable."""
    try:
        status = await asyncio.wait_for(_send(conn, raw), timeout)
    except asyncio.TimeoutError:
        result.error("timeout")
        conn.close()
        return False
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
        result.error(type(exc).__name__)
        conn.close()
        return False
    if 200 <= status < 300:
        result.latencies_ms.append((time.perf_counter() - due) * 1e3)
    else:
        result.error(f"http {status}")
    return True


async def open_loop(host: str, port: int, paths: list[str], rate: float, duration: float,
                    headers: dict[str, str], max_connections: int = 256, timeout: float = 10.0) -> LoadResult:
    result = LoadResult()
    raws = [request_bytes(host, port, p, headers) for p in paths]
    idle: list[Connection] = []
    slots = asyncio.Semaphore(max_connections)
    n_requests = int(rate * duration)
    tasks = []

    async def send(n: int, due: float):
        async with slots:  # waiting here is queueing delay: it counts, latency runs from ``due``
            conn = idle.pop() if idle else Connection(host, port)
            ok = await _one(conn, raws[n % len(raws)], timeout, result, due)
            if ok and conn.writer is not None:
                idle.append(conn)

    start = time.perf_counter() + 0.05
    for n in range(n_requests):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        result.sent += 1
        tasks.append(asyncio.create_task(send(n, due)))
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - start
    for conn in idle:
        conn.close()
    return result


async def closed_loop(host: str, port: int, paths: list[str], connections: int, duration: float,
                      headers: dict[str, str], timeout: float = 10.0) -> LoadResult:
    result = LoadResult()
    raws = [request_bytes(host, port, p, headers) for p in paths]
    counter = iter(range(10**12))
    start = time.perf_counter()
    stop = start + duration

    async def client():
        conn = Connection(host, port)
        while time.perf_counter() < stop:
            n = next(counter)
            result.sent += 1
            due = time.perf_counter()
            await _one(conn, raws[n % len(raws)], timeout, result, due)
        conn.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    result.seconds = time.perf_counter() - start
    return result


def merge(results: list[LoadResult]) -> LoadResult:
    """Several runs of one endpoint as one (latencies pooled, seconds and counts summed)."""
    out = LoadResult()
    for r in results:
        out.latencies_ms += r.latencies_ms
        out.seconds += r.seconds
        out.sent += r.sent
        for kind, n in r.error_kinds.items():
            out.errors += n
            out.error_kinds[kind] = out.error_kinds.get(kind, 0) + n
    return out


def run_open_loop(*args, **kwargs) -> LoadResult:
    return asyncio.run(open_loop(*args, **kwargs))


def run_closed_loop(*args, **kwargs) -> LoadResult:
    return asyncio.run(closed_loop(*args, **kwargs))
