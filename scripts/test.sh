#!/usr/bin/env bash
# Set up and run every check: installs what they need, starts the local Redis and PostgreSQL when
# they are not running, then ruff (lint + format), mypy, the import contracts, and pytest.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plvm train test check web
# The browser tests drive Debian's Chromium through Playwright (which cannot download its own
# browser here); install it when missing and we may (root with apt-get), else they skip and say why.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  { apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }; } \
    || echo "warning: could not install chromium; the browser tests will be skipped" >&2
fi
scripts/services.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
