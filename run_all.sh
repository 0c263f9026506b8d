#!/usr/bin/env bash
# Reproduce everything headlessly: ./run_all.sh [quick|full|paper] [runner options]   (default: quick)
# Installs the environment first when .venv is missing. Profile values: notebooks/profiles.yaml;
# paths: matmodal.layout (executed notebooks in outputs/notebooks/<profile>/, tables and figures in
# paper_figures/<study>/<profile>/). Runner options go to matmodal.notebook_runner, e.g. a small
# sample of the full profile:  ./run_all.sh full --set 04_training.max_rows=40 --only 04_training
set -euo pipefail
cd "$(dirname "$0")"
profiles() { sed -n 's/^\([A-Za-z0-9_-]*\):.*/\1/p' notebooks/profiles.yaml | paste -sd ' ' -; }
usage() {
    cat <<EOF
usage: ./run_all.sh [PROFILE] [runner options]

Execute the numbered notebooks (notebooks/NN_*.py) headlessly with one profile's parameters.
  PROFILE          one of: $(profiles) (default: quick; values in notebooks/profiles.yaml)
  runner options   passed to matmodal.notebook_runner, e.g.
                     --only 04_training 05_evaluation      run only these notebooks
                     --set 04_training.max_rows=40         override one notebook parameter
                   (all of them: .venv/bin/python -m matmodal.notebook_runner --help)
Environment: MATMODAL_MIRROR_DIR (default: ../shared/mirror); MATMODAL_ONLINE=1 lets the model hub
be reached (default: offline, HF_HUB_OFFLINE=1; the paper profile's hub backbones need it or a local
cache). Executed notebooks land in outputs/notebooks/<profile>/ (HTML also in
rendered_notebooks/<profile>/), tables and figures in paper_figures/<study>/<profile>/.
EOF
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
PROFILE="${1:-quick}"
shift $(( $# > 0 ? 1 : 0 ))
if ! [[ " $(profiles) " == *" $PROFILE "* ]]; then
    echo "run_all.sh: unknown profile '$PROFILE' (choose one of: $(profiles); see --help)" >&2
    exit 2
fi
export MATMODAL_MIRROR_DIR="${MATMODAL_MIRROR_DIR:-$(cd .. && pwd)/shared/mirror}"
if [ "${MATMODAL_ONLINE:-0}" = 1 ]; then
    export HF_HUB_OFFLINE=0 TRANSFORMERS_OFFLINE=0
else
    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
fi
export PYTHONHASHSEED=0
unset MPLBACKEND  # let the notebook kernel use its inline backend so figures are kept
[ -x .venv/bin/python ] || bash scripts/install.sh
[ -d "$MATMODAL_MIRROR_DIR" ] || echo "note: no mirror at $MATMODAL_MIRROR_DIR; sources will be downloaded" >&2
start=$(date +%s)
.venv/bin/python -m matmodal.notebook_runner --profile "$PROFILE" --mirror "$MATMODAL_MIRROR_DIR" --output-dir outputs --publish "$@"
echo "[run_all] profile $PROFILE finished in $(( $(date +%s) - start )) s"
