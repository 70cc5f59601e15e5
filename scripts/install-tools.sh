#!/usr/bin/env bash
# Installs the tools the tests need into a cache dir: sendme (the interop and benchmark
# reference) and tauri-driver (drives the app window through WebKitWebDriver).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if [ ! -x "$FERRY_TOOLS/bin/tauri-driver" ]; then
  echo "install-tools: building tauri-driver 2.1.0 (once)"
  cargo install tauri-driver --version 2.1.0 --locked --root "$FERRY_TOOLS" --quiet
fi
if [ ! -x "$FERRY_TOOLS/bin/sendme" ]; then
  echo "install-tools: building sendme 0.37.1 (once)"
  cargo install sendme --version 0.37.1 --locked --root "$FERRY_TOOLS" --quiet
fi
