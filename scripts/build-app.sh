#!/usr/bin/env bash
# Builds the UI and the desktop app (debug, serving the built UI from the binary).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
(cd ui && npm run build --silent)
cargo build --locked -p ferry-app --features custom-protocol -p ferry-cli
