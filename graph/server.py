"""Start and stop a local ArcadeDB server with its Bolt plugin (the zero-setup graph store).

The `arcadedb-embedded` wheel bundles a JRE and the server jars; we run the server as its own
process (not in-process through JPype) so web workers, Celery workers and management commands
can share it and so a test can kill and restart it like any database server.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

DATABASE = "kms"
USER = "root"
# The serial collector: on the small machines this local server is for (it shares two cores with
# the web, the workers and PostgreSQL) G1's concurrent threads and write barriers cost more CPU
# than its short pauses are worth; bench/ingest_throughput.py measured ~0.35 CPU-s less per
# catalogue ingestion. The caller may pass others (kms: KMS_ARCADEDB_JAVA_OPTS, read in kms.settings).
DEFAULT_JAVA_OPTS = "-XX:+UseSerialGC"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _package_dir() -> Path:
    import arcadedb_embedded  # imported lazily: only the zero-setup path needs the package

    return Path(arcadedb_embedded.__file__).resolve().parent


@dataclass
class ServerInfo:
    pid: int
    bolt_port: int
    http_port: int
    password: str
    root: str

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"


class ArcadeDBProcess:
    """One ArcadeDB server process rooted at ``root`` (databases live under it)."""

    def __init__(self, root: Path | str, bolt_port: int | None = None, http_port: int | None = None,
                 password: str = "kms-local-graph", heap: str = "1g", java_opts: str | None = None):
        self.root = Path(root).resolve()
        self.java_opts = java_opts or DEFAULT_JAVA_OPTS
        self.bolt_port = bolt_port or free_port()
        self.http_port = http_port or free_port()
        self.password = password
        self.heap = heap
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        pkg = _package_dir()
        return [
            str(pkg / "jre" / "bin" / "java"),
            f"-Xmx{self.heap}",
            *self.java_opts.split(),
            "-cp", str(pkg / "jars" / "*"),
            f"-Darcadedb.server.rootPath={self.root}",
            f"-Darcadedb.server.rootPassword={self.password}",
            "-Darcadedb.server.httpIncomingHost=127.0.0.1",
            f"-Darcadedb.server.httpIncomingPort={self.http_port}",
            "-Darcadedb.server.plugins=Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            "-Darcadedb.bolt.host=127.0.0.1",
            f"-Darcadedb.bolt.port={self.bolt_port}",
            f"-Darcadedb.server.defaultDatabases={DATABASE}[{USER}]",
            "com.arcadedb.server.ArcadeDBServer",
        ]

    def start(self, timeout: float = 60.0, detach: bool = False) -> ServerInfo:
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(
            self.command(), cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=detach,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ArcadeDB exited with {self.proc.returncode}; see {self.root / 'server.log'}")
            if port_open(self.bolt_port) and self._database_ready():
                return self.info()
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"ArcadeDB did not open Bolt port {self.bolt_port} within {timeout}s")

    def _database_ready(self) -> bool:
        # The default database is created after the listeners open; wait until it answers.
        from neo4j import GraphDatabase

        try:
            with GraphDatabase.driver(f"bolt://127.0.0.1:{self.bolt_port}", auth=(USER, self.password)) as d:
                d.execute_query("RETURN 1 AS ok", database_=DATABASE)
            return True
        except Exception:
            return False

    def info(self) -> ServerInfo:
        assert self.proc is not None
        return ServerInfo(self.proc.pid, self.bolt_port, self.http_port, self.password, str(self.root))

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def ensure_local_server(root: Path | str, timeout: float = 90.0, java_opts: str | None = None) -> ServerInfo:
    """The shared local server under ``root``: reuse the running one or start it detached.

    A state file records pid and ports so every process of the project (web, workers,
    management commands) talks to the same server; ``stop_local_server`` stops it.
    """
    root = Path(root).resolve()
    state = root / "server.json"
    lock_path = root / "server.lock"
    root.mkdir(parents=True, exist_ok=True)
    import fcntl

    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if state.exists():
            info = ServerInfo(**json.loads(state.read_text()))
            if _alive(info.pid) and port_open(info.bolt_port):
                return info
        server = ArcadeDBProcess(root, java_opts=java_opts)
        info = server.start(timeout=timeout, detach=True)
        state.write_text(json.dumps(asdict(info)))
        return info


def stop_local_server(root: Path | str) -> bool:
    state = Path(root).resolve() / "server.json"
    if not state.exists():
        return False
    info = ServerInfo(**json.loads(state.read_text()))
    state.unlink()
    if not _alive(info.pid):
        return False
    os.kill(info.pid, signal.SIGTERM)
    for _ in range(100):
        if not _alive(info.pid):
            return True
        time.sleep(0.2)
    os.kill(info.pid, signal.SIGKILL)
    return True
