#!/usr/bin/env bash
# Creates bench/.venv-peers (Python 3.11) with RecBole 1.2.1 + implicit for bench/peers.py.
# Idempotent: re-running only installs what is missing. See bench/requirements-peers.txt.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-peers"
PY="${PYTHON:-python3.11}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/pip"
"$PIP" install -q --upgrade "pip" "setuptools<81" wheel

# torch first, exact CPU wheel (on disk under /opt/wheels; the machine's pip config points there).
"$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null \
    || "$PIP" install -q "torch==2.13.0"

# Everything except recbole itself (pins documented in requirements-peers.txt).
grep -v -E '^\s*(#|$)' "$HERE/requirements-peers.txt" | sed 's/\s*#.*$//' | grep -v -E '^recbole' > "$VENV/reqs.txt"
"$PIP" install -q -r "$VENV/reqs.txt"

# RecBole without its metadata deps (ray<=2.6.3 is only used for hyper-parameter tuning).
"$PIP" install -q --no-deps "recbole==1.2.1"

# Smoke check: imports, with the dgl / torch_scatter shims on the path.
PYTHONPATH="$HERE/peers/shims" "$VENV/bin/python" - <<'PY'
import warnings; warnings.filterwarnings("ignore")
import torch, numpy, scipy, pandas, implicit, recbole
import dgl, torch_scatter
from recbole.model.general_recommender import BPR, LightGCN
from recbole.model.sequential_recommender import SASRec
from recbole.model.knowledge_aware_recommender import KGAT, KGIN
print("peers venv ok: torch", torch.__version__, "numpy", numpy.__version__, "scipy", scipy.__version__,
      "pandas", pandas.__version__, "recbole", recbole.__version__, "implicit", implicit.__version__)
PY
