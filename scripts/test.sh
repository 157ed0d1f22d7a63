#!/usr/bin/env bash
# Set up and run the whole test suite: installs everything it needs, starts the local Redis and
# PostgreSQL when they are not running, then runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plvm train test
scripts/services.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
