#!/usr/bin/env bash
# A folder of 1,000,000 small files, Ferry alone (no anchor syncs it on this machine in
# reasonable time): shared by one `ferry run`, joined by a second, both on loopback in a
# private network namespace. Reports the time until the second has every file, each daemon's
# peak RSS, their RSS once settled, and how long a file written afterwards takes to arrive.
# Not run by CI: it takes tens of minutes and ~4 GiB of disk.
#
# usage: bench/million.sh [N]     (N files, 1,000,000 by default; 64-1,024 bytes each, 1,000 per
#        directory; written straight into the shared folder, not counted in the time). Files of
#        up to 1 KiB are kept in the store's database: this run measures the per-file costs
#        (records, index, caches), not the private names larger files get (see `many` in
#        bench/folder.py for those).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
FERRY="$CARGO_TARGET_DIR/${FERRY_PROFILE:-release}/ferry"
[ -x "$FERRY" ] || { echo "build ferry first: cargo build --release -p ferry-cli" >&2; exit 1; }
N="${1:-1000000}"
work=$(mktemp -d "${BENCH_WORK:-/tmp}/ferry-million.XXXXXX")
NS="ferry-million-$$"
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
cleanup() {
  kill $(ip netns pids "$NS" 2>/dev/null) 2>/dev/null || true
  sleep 1
  kill -9 $(ip netns pids "$NS" 2>/dev/null) 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
BENCH_WORK="$work" FERRY_BIN="$FERRY" ip netns exec "$NS" python3 bench/million.py "$N"
