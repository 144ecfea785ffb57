#!/usr/bin/env bash
# Chromium for the admin portal's browser tests (Debian package; Playwright drives it via playwright-core).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f package.json ] && ! command -v chromium >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || {
    echo "could not install chromium" >&2; exit 1; }
fi
if [ -f package.json ] && [ ! -d node_modules/playwright-core ]; then
  npm ci --silent --no-audit --no-fund || npm install --silent --no-audit --no-fund
fi
exit 0
