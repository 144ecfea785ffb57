"""Load shedding: a request that waited past KMS_QUEUE_DEADLINE_MS is answered 503 at once.

The middleware is tested through Django's client with the header a proxy (or the gunicorn
worker) sets; the gunicorn worker class is tested for real: with a 1 µs deadline every request
it stamps has waited too long, so the stamp must come from the worker, not from the client.
"""
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kms.shedding import queued_seconds

ROOT = Path(__file__).resolve().parents[2]


def test_queued_seconds_reads_seconds_milliseconds_and_microseconds():
    now = 1_800_000_000.0
    assert queued_seconds("t=1799999998.5", now) == pytest.approx(1.5)
    assert queued_seconds("1799999998500", now) == pytest.approx(1.5)  # Heroku-style ms
    assert queued_seconds("t=1799999998500000", now) == pytest.approx(1.5)  # µs
    assert queued_seconds("t=1800000005", now) == 0.0  # a stamp from the future counts as no wait
    assert queued_seconds("t=yesterday", now) is None


@pytest.mark.django_db
def test_request_past_its_queue_deadline_is_shed_before_any_work(client, settings):
    settings.KMS_QUEUE_DEADLINE_MS = 500
    old = f"t={time.time() - 3:.6f}"
    shed = client.get("/api/v1/ping", HTTP_X_REQUEST_START=old)
    assert shed.status_code == 503
    assert shed["Retry-After"] == "1"
    assert shed.json()["error"]["code"] == "overloaded"
    fresh = client.get("/api/v1/ping", HTTP_X_REQUEST_START=f"t={time.time():.6f}")
    assert fresh.status_code == 200
    # liveness is never shed: an overloaded instance is alive
    assert client.get("/health/live", HTTP_X_REQUEST_START=old).status_code == 200


@pytest.mark.django_db
def test_shedding_can_be_turned_off(client, settings):
    settings.KMS_QUEUE_DEADLINE_MS = 0
    assert client.get("/api/v1/ping", HTTP_X_REQUEST_START=f"t={time.time() - 60:.6f}").status_code == 200


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_gunicorn_worker_stamps_queue_time(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"KMS_QUEUE_DEADLINE_MS": "0.001", "KMS_DATA_DIR": str(tmp_path), "KMS_LOG_LEVEL": "WARNING"}
    log = open(tmp_path / "gunicorn.log", "wb")
    # no -k: gunicorn.conf.py in the repository root picks the stamping worker
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "kms.wsgi", "-w", "1", "-b", f"127.0.0.1:{port}"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = _get(base + "/health/live")
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
                time.sleep(0.3)
        assert status == 200
        status, body = _get(base + "/api/v1/ping")
        assert status == 503 and b"overloaded" in body
    finally:
        server.terminate()
        server.wait(20)
