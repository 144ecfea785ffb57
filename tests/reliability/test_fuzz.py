"""Generated hostile input against every documented operation (schemathesis over the OpenAPI schema),
in-process through the real WSGI app, the real database, the test ArcadeDB server and a trained model.

Each operation is called anonymously and with a write key, with schema-valid and schema-violating
data. Every answer must be a non-5xx, with a documented status code, content type and body.

``bench/fuzz_api.py`` runs this module with KMS_FUZZ_EXAMPLES raised (>= 10,000 requests) and
KMS_FUZZ_REPORT set: failures are then counted per request instead of failing the test.
"""
from __future__ import annotations

import json
import logging
import os
from collections import Counter

import pytest
import schemathesis
from django.db import transaction
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from kms.wsgi import application

EXAMPLES = int(os.environ.get("KMS_FUZZ_EXAMPLES", "4"))
REPORT = os.environ.get("KMS_FUZZ_REPORT", "")  # count failures into this JSON file instead of raising
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

schema = schemathesis.openapi.from_wsgi("/api/schema", application)


@schemathesis.serializer("application/x-ndjson", "application/jsonl")
def _json_lines(ctx, value):
    """Bulk endpoints also take JSON Lines: one generated record per line."""
    records = value if isinstance(value, list) else [value]
    return {"data": "\n".join(json.dumps(r) for r in records).encode("utf-8", "surrogatepass")}


class Tally:
    def __init__(self):
        self.requests = 0
        self.by_status: Counter = Counter()
        self.server_errors = 0
        self.schema_violations = 0
        self.known_bugs: Counter = Counter()
        self.examples: dict[str, str] = {}  # one reproduction per (operation, check, status)

    def record(self, case, response, failures) -> None:
        """Counts requests: a 5xx is a server error; a non-5xx that fails a check is a violation."""
        self.requests += 1
        self.by_status[str(response.status_code)] += 1
        if not failures:
            return
        if response.status_code >= 500:
            self.server_errors += 1
            if known_bug(case, response):
                self.known_bugs[known_bug(case, response)] += 1
        else:
            self.schema_violations += 1
        failure = failures[0]
        key = f"{case.operation.label} {type(failure).__name__} {response.status_code}"
        detail = f"{failure.title}: {failure.message[:500]} | {case.as_curl_command()[:600]}"
        if response.status_code >= 500 and errors_seen:
            detail += " | " + errors_seen[-1][-1500:]
        self.examples.setdefault(key, detail)


tally = Tally()
errors_seen: list[str] = []  # tracebacks the API logged for 500s, for the report


class _KeepTracebacks(logging.Handler):
    def emit(self, record):
        errors_seen.append(self.format(record))
        del errors_seen[:-5]


logging.getLogger("kms.api.errors").addHandler(_KeepTracebacks())
logging.getLogger("django.request").addHandler(_KeepTracebacks())


@pytest.fixture(scope="module", autouse=True)
def _write_report():
    yield
    if REPORT:
        with open(REPORT, "w") as f:
            json.dump({"requests": tally.requests, "server_errors": tally.server_errors,
                       "schema_violations": tally.schema_violations,
                       "known_bugs": dict(tally.known_bugs), "statuses": dict(tally.by_status),
                       "failures": tally.examples}, f, indent=2)


def known_bug(case, response) -> str | None:
    """A server error whose cause is already known and tracked elsewhere: counted, reported, not
    raised. None are known now (the unhashable event type of clean_event was fixed)."""
    return None


def _exercise(case, headers: dict) -> None:
    # Each request in its own savepoint, as each has its own transaction under a real server: a
    # failed query must not poison the requests after it inside this test's transaction. Work an
    # endpoint hands to a worker after commit (POST /jobs/train) is rolled back with it, unsent.
    with transaction.atomic():
        response = case.call(headers=headers)
        transaction.set_rollback(True)
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except FailureGroup as group:
        tally.record(case, response, group.exceptions)
        if not REPORT and not known_bug(case, response):
            raise
    else:
        tally.record(case, response, [])


FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, print_blob=True,
                suppress_health_check=list(HealthCheck))


@schema.parametrize()
@FUZZ
def test_anonymous(case, live):
    _exercise(case, {})


@schema.parametrize()
@FUZZ
def test_write_key(case, live):
    _exercise(case, live.headers("write"))
