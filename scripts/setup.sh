#!/usr/bin/env bash
# Create .venv and install the pipeline with the extras given as arguments (idempotent).
#   scripts/setup.sh            -> the faces pipeline + sample album
#   scripts/setup.sh plvm test  -> plus the PyTorch stack and the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
extras="sample"
for extra in "$@"; do extras="$extras,$extra"; done
case ",$extras," in
  *,plvm,*)
    # A CPU build of PyTorch where one is on this disk (CPU-only machines), else the index's.
    if ! .venv/bin/python -c "import torch" 2>/dev/null; then
      wheel=$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -1 || true)
      .venv/bin/python -m pip install --quiet "${wheel:-torch}"
    fi ;;
esac
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
# timm (an optional reference-encoder backend) pulls torchvision, whose PyPI build does not work
# with a CPU-only torch: keep it out unless asked for.
if [ "${WITH_TIMM:-0}" != "1" ]; then .venv/bin/python -m pip uninstall --quiet -y torchvision timm 2>/dev/null || true; fi
