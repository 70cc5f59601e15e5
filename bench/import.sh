#!/usr/bin/env bash
# Sharing (import) next to b3sum: see bench/import.py.
# usage: bench/import.sh [--quick]     (--quick: 64 MiB and 1,000 files, 1 run)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
FERRY="$CARGO_TARGET_DIR/${FERRY_PROFILE:-release}/ferry"
[ -x "$FERRY" ] || { echo "build ferry first: cargo build --release -p ferry-cli" >&2; exit 1; }
if [ ! -x "$FERRY_TOOLS/bin/b3sum" ]; then
  echo "import bench: installing b3sum (once)" >&2
  cargo install b3sum --version 1.8.7 --locked --root "$FERRY_TOOLS" --quiet
fi
DATA="${BENCH_DATA:-$HOME/.cache/ferry-bench-data}"
work=""
if [ "${1:-}" = "--quick" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  python3 bench/gen-data.py "$work/data" --quick
  DATA="$work/data"
else
  python3 bench/gen-data.py "$DATA"
fi
FERRY_BIN="$FERRY" B3SUM="$FERRY_TOOLS/bin/b3sum" python3 bench/import.py "$DATA" "$@"
