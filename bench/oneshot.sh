#!/usr/bin/env bash
# One-shot transfers, Ferry next to sendme, same data, same run.
#
# Each workload has one sender per tool (import excluded); the receivers run RUNS times each,
# alternating Ferry and sendme, each into a fresh directory with a fresh store. Wall time is
# receiver start to exit (files verified and on disk); memory is the receiver's peak RSS.
# Everything runs in a private network namespace with only loopback, relays disabled.
#
# usage: bench/oneshot.sh [--quick]      (--quick: 64 MiB and 1,000 files, 1 run; used by CI)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
RUNS=${RUNS:-3}
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1 && RUNS=1

FERRY="$CARGO_TARGET_DIR/${FERRY_PROFILE:-release}/ferry"
SENDME="$FERRY_TOOLS/bin/sendme"
DATA="${BENCH_DATA:-$HOME/.cache/ferry-bench-data}"
[ -x "$FERRY" ] || { echo "build ferry first: cargo build --release -p ferry-cli" >&2; exit 1; }
[ -x "$SENDME" ] || bash scripts/install-tools.sh

work=$(mktemp -d)
NS="ferry-bench-$$"
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
pids=()
# Every process the run started lives in the namespace: all of them are stopped, not only the
# shells that started them (killing `ip netns exec`'s parent leaves its child running).
stop_namespace() {
  local left
  for _ in $(seq 50); do
    left=$(ip netns pids "$NS" 2>/dev/null || true)
    [ -z "$left" ] && return 0
    kill $left 2>/dev/null || true
    sleep 0.1
  done
  kill -9 $(ip netns pids "$NS" 2>/dev/null) 2>/dev/null || true
}
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_namespace
  wait 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
inns() { ip netns exec "$NS" "$@"; }

if [ $QUICK = 1 ]; then
  mkdir -p "$work/data/big" "$work/data/small"
  python3 - "$work/data" <<'PY'
import os, random, sys
r = random.Random(1); root = sys.argv[1]
open(os.path.join(root, "big", "big.bin"), "wb").write(r.randbytes(64 << 20))
for i in range(1000):
    d = os.path.join(root, "small", f"d{i % 20:02d}"); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, f"f{i:04d}.bin"), "wb").write(r.randbytes(r.randint(1024, 9216)))
PY
  DATA="$work/data"
else
  python3 bench/gen-data.py "$DATA"
fi

wait_for_line() { # file pattern
  for _ in $(seq 600); do
    if grep -q "$2" "$1" 2>/dev/null; then grep -m1 -o "$2[a-z0-9]*" "$1"; return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for a ticket in $1" >&2; cat "$1" >&2; return 1
}

results="$work/results.tsv"
: > "$results"

bench_workload() { # name path
  local name=$1 path=$2
  inns "$FERRY" --home "$work/ferry-send-$name" --relay disabled --bind 127.0.0.1:0 send "$path" \
    > "$work/ferry-$name.ticket" 2>/dev/null &
  pids+=($!)
  local fticket; fticket=$(wait_for_line "$work/ferry-$name.ticket" blob)
  (cd "$work" && inns "$SENDME" send --relay disabled --ticket-type addresses \
    --magic-ipv4-addr 127.0.0.1:0 --no-progress "$path" > "$work/sendme-$name.out" 2>&1) &
  pids+=($!)
  local sticket; sticket=$(wait_for_line "$work/sendme-$name.out" blob)
  for run in $(seq "$RUNS"); do
    local out="$work/out-ferry-$name-$run"
    mkdir -p "$out"
    /usr/bin/time -f "%e %M" -o "$work/t" ip netns exec "$NS" "$FERRY" --home "$work/ferry-recv-$name-$run" \
      --relay disabled --bind 127.0.0.1:0 receive "$fticket" --out "$out" 2>/dev/null
    echo -e "$name\tferry\t$(cat "$work/t")" >> "$results"
    check "$path" "$out"
    rm -rf "$out" "$work/ferry-recv-$name-$run"
    out="$work/out-sendme-$name-$run"
    mkdir -p "$out"
    (cd "$out" && /usr/bin/time -f "%e %M" -o "$work/t" ip netns exec "$NS" "$SENDME" receive --relay disabled \
      --no-progress "$sticket" >/dev/null 2>&1)
    echo -e "$name\tsendme\t$(cat "$work/t")" >> "$results"
    check "$path" "$out"
    rm -rf "$out"
  done
}

check() { # source dest: same number of files and bytes
  local want got
  want=$(find "$1" -type f -printf '%s\n' | awk '{n++; s+=$1} END {print n, s}')
  got=$(find "$2" -type f -printf '%s\n' | awk '{n++; s+=$1} END {print n, s}')
  [ "$want" = "$got" ] || { echo "received data differs: want $want, got $got" >&2; exit 1; }
}

if [ $QUICK = 1 ]; then
  bench_workload "64 MiB file" "$DATA/big/big.bin"
  bench_workload "1,000 small files" "$DATA/small"
else
  bench_workload "1 GiB file" "$DATA/big/big.bin"
  bench_workload "10,000 small files (49 MiB)" "$DATA/small"
fi

python3 - "$results" "$RUNS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by = {}
for name, tool, t in rows:
    secs, kb = t.split()
    by.setdefault(name, {}).setdefault(tool, []).append((float(secs), int(kb)))
print(f"| workload | Ferry (s) | sendme (s) | Ferry/sendme | Ferry RSS (MiB) | sendme RSS (MiB) |  (median of {sys.argv[2]})")
print("|---|---|---|---|---|---|")
for name, tools in by.items():
    f, s = tools["ferry"], tools["sendme"]
    ft, st = statistics.median(x[0] for x in f), statistics.median(x[0] for x in s)
    fm, sm = max(x[1] for x in f) / 1024, max(x[1] for x in s) / 1024
    print(f"| {name} | {ft:.2f} | {st:.2f} | {ft / st:.2f} | {fm:.0f} | {sm:.0f} |")
PY
