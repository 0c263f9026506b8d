#!/usr/bin/env bash
# Reproduce everything headlessly: ./run_all.sh [quick|full|paper]   (default: quick)
# Installs the environment first when .venv is missing. Executed notebooks (.ipynb + .html)
# land in outputs/notebooks/<profile>/, tables and figures in paper_figures/.
set -euo pipefail
cd "$(dirname "$0")"
PROFILE="${1:-quick}"
export MATMODAL_MIRROR_DIR="${MATMODAL_MIRROR_DIR:-$(cd .. && pwd)/shared/mirror}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONHASHSEED=0
unset MPLBACKEND  # let the notebook kernel use its inline backend so figures are kept
[ -x .venv/bin/python ] || bash scripts/install.sh
[ -d "$MATMODAL_MIRROR_DIR" ] || echo "note: no mirror at $MATMODAL_MIRROR_DIR; sources will be downloaded" >&2
start=$(date +%s)
.venv/bin/python -m matmodal.notebook_runner --profile "$PROFILE" --mirror "$MATMODAL_MIRROR_DIR" --output-dir outputs
echo "[run_all] profile $PROFILE finished in $(( $(date +%s) - start )) s"
