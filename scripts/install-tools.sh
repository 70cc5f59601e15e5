#!/usr/bin/env bash
# Installs the reference tools the tests compare against (sendme) into a cache dir.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if [ ! -x "$FERRY_TOOLS/bin/sendme" ]; then
  echo "install-tools: building sendme 0.37.1 (once)"
  cargo install sendme --version 0.37.1 --locked --root "$FERRY_TOOLS" --quiet
fi
