#!/usr/bin/env bash
# Zero-setup demo: SQLite, eager tasks, a local ArcadeDB graph store the project starts itself.
# Imports Amazon-Scientific, extracts knowledge into the graph, trains the `fast` preset, then serves on :8000.
# DEMO_CHECK=1 stops the server after the curl succeeded (used to verify the demo end to end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
unset DATABASE_URL CELERY_BROKER_URL NEO4J_URI || true
export DJANGO_DEBUG=${DJANGO_DEBUG:-0}
PORT=${PORT:-8000}
PY=.venv/bin/python
$PY manage.py migrate -v0
$PY manage.py import_catalogue --scientific | tail -n 12
$PY manage.py ingest
$PY manage.py train --preset "${DEMO_PRESET:-fast}" --params "${DEMO_TRAIN_PARAMS:-{\}}"
.venv/bin/gunicorn kms.wsgi:application --bind 127.0.0.1:$PORT --workers 2 --timeout 120 \
  --access-logfile - --log-level warning &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -fs "http://127.0.0.1:$PORT/health/live" >/dev/null 2>&1 && break
  sleep 0.5
done
# A user's recommendations are customer data: they need a key (a read key is enough).
KEY=$($PY manage.py create_api_key demo --scope read 2>/dev/null)
CURL="curl -s -H 'Authorization: Api-Key $KEY' 'http://127.0.0.1:$PORT/api/v1/users/0/recommendations?k=20'"
echo
echo "Recommendations for user 0:"
echo "  $CURL"
eval "$CURL" | $PY scripts/show_recommendations.py 20
echo "API docs: http://127.0.0.1:$PORT/api/docs   readiness: http://127.0.0.1:$PORT/health/ready"
if [ "${DEMO_CHECK:-0}" = "1" ]; then exit 0; fi
echo "Serving on http://127.0.0.1:$PORT (Ctrl-C stops; 'manage.py graphserver stop' stops the graph store)"
wait $SERVER
