#!/usr/bin/env bash
# Quick start, part one: set everything up, build, and open the Ferry app.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-app.sh
source scripts/env.sh
echo "The ferry CLI is at $CARGO_TARGET_DIR/debug/ferry"
exec "$CARGO_TARGET_DIR/debug/ferry-app"
