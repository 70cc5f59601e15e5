#!/usr/bin/env bash
# Folder sync, Ferry next to Syncthing: see bench/folder.py for the workloads.
# Everything runs in a private network namespace with only loopback.
#
# usage: bench/folder.sh [--quick]     (--quick: 64 MiB and 1,000 files, 1 run; used by CI)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
FERRY="$CARGO_TARGET_DIR/${FERRY_PROFILE:-release}/ferry"
DATA="${BENCH_DATA:-$HOME/.cache/ferry-bench-data}"
[ -x "$FERRY" ] || { echo "build ferry first: cargo build --release -p ferry-cli" >&2; exit 1; }
command -v syncthing >/dev/null || { apt-get install -y -q syncthing >/dev/null; }

work=$(mktemp -d)
NS="ferry-fbench-$$"
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
# Every process of the run lives in the namespace: all are stopped before it goes.
cleanup() {
  local left
  for _ in $(seq 50); do
    left=$(ip netns pids "$NS" 2>/dev/null || true)
    [ -z "$left" ] && break
    kill $left 2>/dev/null || true
    sleep 0.1
  done
  kill -9 $(ip netns pids "$NS" 2>/dev/null) 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ "${1:-}" = "--quick" ]; then
  python3 bench/gen-data.py "$work/data" --quick
  DATA="$work/data"
else
  python3 bench/gen-data.py "$DATA"
fi
BENCH_WORK="$work" FERRY_BIN="$FERRY" ip netns exec "$NS" python3 bench/folder.py "$DATA" "$work/results.tsv" "$@"
