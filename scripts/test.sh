#!/usr/bin/env bash
# The whole test suite against the real services: PostgreSQL, Redis and an ArcadeDB Bolt server
# (started by the suite from the arcadedb-embedded package). NEO4J_URI adds a Neo4j 5 run of
# the graph contract suite. Exit 5 (no tests collected) counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
bash scripts/setup_browser.sh || exit 1
export DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/kms}
export CELERY_BROKER_URL=${TEST_CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}
export KMS_DATA_DIR=${KMS_DATA_DIR:-$(mktemp -d)}
.venv/bin/python -m pytest "$@"
rc=$?
# a test that used the zero-setup default may have started the local graph server: stop it
.venv/bin/python manage.py graphserver stop >/dev/null 2>&1 || true
if [ $rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
exit $rc
