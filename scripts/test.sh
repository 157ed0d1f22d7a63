#!/usr/bin/env bash
# Set up and run every check: installs what they need, starts the local Redis and PostgreSQL when
# they are not running, then ruff (lint + format), mypy, the import contracts, and pytest.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plvm train test check web
scripts/services.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
