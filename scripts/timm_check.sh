#!/usr/bin/env bash
# The timm reference backend, checked in its own environment (.venv-timm, about 6 GB): torch 2.14.1 +
# torchvision 0.29.1 (a matching pair from the local wheel store; a CUDA build that also runs on the
# CPU) + timm + the pipeline. Runs the equivalence tests (none skipped) and bench/timm_equivalence.py.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-timm/bin/python ]; then
  python3.11 -m venv .venv-timm
  .venv-timm/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1 timm
  .venv-timm/bin/python -m pip install --quiet -e ".[plvm,test,sample]"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv-timm/bin/python -c "import timm, torchvision; print('timm', timm.__version__, 'torchvision', torchvision.__version__)"
.venv-timm/bin/python -m pytest -p no:cacheprovider -q -rs tests/plvm/test_reference.py tests/plvm/test_geometry.py
.venv-timm/bin/python bench/timm_equivalence.py "$@"
