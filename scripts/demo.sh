#!/usr/bin/env bash
# The main job on the embedded default (SQLite + the pipeline's own Redis, CPU, no network):
#   scripts/demo.sh [FOLDER]
# With no folder, builds a sample album from public-domain photos shipped in packages and enrolls
# the two people in it. The web app is served at http://127.0.0.1:8765. Ctrl-C stops everything. Data: $PIPELINE_DATA_DIR (default ./.data/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh web
export PIPELINE_DATA_DIR=${PIPELINE_DATA_DIR:-$PWD/.data/demo}
P=".venv/bin/pipeline"
if [ $# -eq 0 ]; then
  album="$PIPELINE_DATA_DIR/sample-album"
  if [ ! -d "$album" ]; then
    mkdir -p "$PIPELINE_DATA_DIR"
    $P sample-album "$album" --references "$PIPELINE_DATA_DIR/sample-references" | while read -r name ref; do
      $P enroll --name "$name" "$ref"
    done
  fi
  set -- "$album"
fi
exec $P run --web "$@"
