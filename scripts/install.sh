#!/usr/bin/env bash
# Install matmodal into ./.venv (or $MATMODAL_VENV) with a torch/torchvision pair that work together.
#
# Why two steps: on machines whose pip configuration offers a local CPU-only torch wheel
# (2.13.0+cpu), `pip install torch==2.13.0 torchvision==0.28.0` pairs that CPU torch with the
# registry's torchvision 0.28.0, a CUDA build whose C++ ops fail to load on it
# ("operator torchvision::nms does not exist"). We therefore install the registry's matched
# official pair first (torch 2.13.0 + torchvision 0.28.0, CUDA 13 builds that also run on CPU),
# excluding the +cpu local build explicitly, then the package with every extra.
#
# --dft: additionally the optional first-principles density extra (GPAW + its PAW setups from the
# gpaw-data wheel): Debian libxc-dev + libopenblas-dev (apt-get, root or sudo), then
# `CC=g++ pip install -e ".[dft]"` (gpaw builds from source; with gcc it fails on <algorithm>).
set -euo pipefail
cd "$(dirname "$0")/.."
DFT=0
for arg in "$@"; do
    case "$arg" in
        --dft) DFT=1 ;;
        -h|--help) echo "usage: scripts/install.sh [--dft]"; exit 0 ;;
        *) echo "unknown option $arg (usage: scripts/install.sh [--dft])" >&2; exit 2 ;;
    esac
done
VENV="${MATMODAL_VENV:-.venv}"
PY="${PYTHON:-python3}"
start=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
pip install -U pip
pip install "torch==2.13.0,!=2.13.0+cpu" "torchvision==0.28.0"
pip install -e ".[all]"
"$VENV/bin/python" - <<'PY'
import torch, torchvision, torchvision.ops
import autogluon.multimodal as mm
boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float)
keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
assert keep.tolist() == [0, 2], keep
print(f"torch {torch.__version__} + torchvision {torchvision.__version__} work together "
      f"(nms ok, cuda available: {torch.cuda.is_available()}); autogluon.multimodal {mm.__version__}")
PY
# Jupyter: the "Python (matmodal)" kernel, registered in the venv (its own JupyterLab) and, unless
# MATMODAL_KERNEL_USER=0, for the user too (~/.local/share/jupyter/kernels), so a JupyterLab
# installed elsewhere also offers it. Both specs point at $VENV/bin/python.
kernel() { "$VENV/bin/python" -m ipykernel install "$@" --name matmodal --display-name "Python (matmodal)" >/dev/null; }
kernel --sys-prefix
where="$VENV"
if [ "${MATMODAL_KERNEL_USER:-1}" != 0 ]; then kernel --user && where="$where and --user"; fi
# The venv's JupyterLab opens .py files as (Jupytext) notebooks on double-click; pairing with an
# ignored .ipynb is configured in jupytext.toml.
"$VENV/bin/jupytext-config" --settings-file "$VENV/share/jupyter/lab/settings/overrides.json" \
    set-default-viewer python >/dev/null
if [ "$DFT" = 1 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libxc-dev libopenblas-dev >/dev/null
    CC=g++ pip install -e ".[all,dft]"
    "$VENV/bin/python" -c "from matmodal.modalities.ecd.dft import load_gpaw; g = load_gpaw(); print(f'gpaw {g.__version__}, PAW setups in {g.setup_paths[0]}')"
fi
echo "installed in $(( $(date +%s) - start )) s; Jupyter kernel 'matmodal' registered ($where)"
