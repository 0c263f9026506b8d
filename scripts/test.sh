#!/usr/bin/env bash
# Run the test suite (installs the environment first when .venv is missing).
# Tests read the real data mirror at ../shared/mirror (override: MATMODAL_TEST_MIRROR).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/install.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg PYTHONHASHSEED=0
.venv/bin/ruff check lib tests notebooks benchmarks
exec .venv/bin/python -m pytest "$@"
