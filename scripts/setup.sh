#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the pinned requirements. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch==2.13.0 resolves to the CPU wheel on this machine's disk (/opt/wheels) when present.
# Elsewhere set PIP_EXTRA_INDEX_URL to PyTorch's CPU wheel index to avoid the CUDA build.
if [ -d /opt/wheels ]; then
  .venv/bin/pip install -q --find-links /opt/wheels -r requirements.txt
else
  .venv/bin/pip install -q -r requirements.txt
fi
