#!/usr/bin/env bash
# Swarming: one sender and N receivers started together on one file, Ferry next to BitTorrent
# (aria2c as seeder and leechers, a local tracker: bench/tracker.py, 256 KiB pieces), same
# topology, same run.
#
# Topology: every peer in a network namespace of its own, joined by a bridge that lives in a
# namespace of its own too (all created here, removed at exit: no packet reaches the host's
# network). Each peer's upload is shaped with tc tbf to RATE (a home connection); this kernel
# has no netem, so there is no added delay.
#
# Reported per tool and N: the time until all N receivers have the whole file (each process
# exits once its file is complete and verified; the script compares every copy with the
# source), and what the sender uploaded (its link's transmit counter) over the file size.
# Receivers stop serving once done, with both tools (aria2c --seed-time=0).
#
# usage: bench/swarm.sh [--quick]     (--quick: 32 MiB, N = 1 and 3; a check that it runs)
# env:   SIZE_MIB (256), RATE (100mbit), COUNTS ("1 4 8"), FERRY_PROFILE (release)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
SIZE_MIB=${SIZE_MIB:-256}
RATE=${RATE:-100mbit}
COUNTS=${COUNTS:-"1 4 8"}
if [ "${1:-}" = "--quick" ]; then SIZE_MIB=32; COUNTS="1 3"; fi
FERRY="$CARGO_TARGET_DIR/${FERRY_PROFILE:-release}/ferry"
[ -x "$FERRY" ] || { echo "build ferry first: cargo build --release -p ferry-cli" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }

# The BitTorrent anchor: aria2c and mktorrent from Debian (scripts/setup.sh installs them);
# the tracker is a small script of ours (the npm bittorrent-tracker needs a WebRTC module
# built from a download).
for tool in aria2c mktorrent bc; do
  command -v "$tool" >/dev/null || { echo "$tool missing: run scripts/setup.sh" >&2; exit 1; }
done

MAXN=0
for n in $COUNTS; do [ "$n" -gt "$MAXN" ] && MAXN=$n; done
work=$(mktemp -d)
TAG="fs$$"
BR="$TAG-br"
ns() { echo "$TAG-p$1"; }
ip_of() { echo "10.77.0.$(( $1 + 1 ))"; }

cleanup() {
  for i in $(seq 0 "$MAXN"); do
    local left
    left=$(ip netns pids "$(ns "$i")" 2>/dev/null || true)
    [ -n "$left" ] && kill -9 $left 2>/dev/null || true
    ip netns del "$(ns "$i")" 2>/dev/null || true
  done
  ip netns del "$BR" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The bridge, then one namespace per peer (0 is the sender) with a shaped veth to it.
ip netns add "$BR"
ip -n "$BR" link add br0 type bridge
ip -n "$BR" link set br0 up
for i in $(seq 0 "$MAXN"); do
  ip netns add "$(ns "$i")"
  ip -n "$(ns "$i")" link set lo up
  # Created inside the namespaces: no interface ever exists on the host, even on a failure.
  ip link add "v$TAG$i" netns "$(ns "$i")" type veth peer name "b$TAG$i" netns "$BR"
  ip -n "$BR" link set "b$TAG$i" master br0
  ip -n "$BR" link set "b$TAG$i" up
  ip -n "$(ns "$i")" link set "v$TAG$i" name eth0
  ip -n "$(ns "$i")" addr add "$(ip_of "$i")/24" dev eth0
  ip -n "$(ns "$i")" link set eth0 up
  ip netns exec "$(ns "$i")" tc qdisc add dev eth0 root tbf rate "$RATE" burst 64kb latency 400ms
done
inns() { local i=$1; shift; ip netns exec "$(ns "$i")" "$@"; }
tx_bytes() { inns 0 cat /sys/class/net/eth0/statistics/tx_bytes; }
# Stops everything running in peer i's namespace, and waits until it is gone.
stop_peer() {
  local left
  for _ in $(seq 50); do
    left=$(ip netns pids "$(ns "$1")" 2>/dev/null || true)
    [ -z "$left" ] && return 0
    kill $left 2>/dev/null || true
    sleep 0.1
  done
  kill -9 $(ip netns pids "$(ns "$1")") 2>/dev/null || true
}
# Waits until something listens on peer 0's TCP port $1.
wait_port() {
  for _ in $(seq 100); do
    inns 0 bash -c "exec 3<>/dev/tcp/$(ip_of 0)/$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2; return 1
}
# A transfer that has not finished in this long is a failure, not a hang.
LIMIT=${LIMIT:-600}

# The file.
mkdir -p "$work/src"
python3 -c "
import random, sys
r = random.Random(7)
with open(sys.argv[1], 'wb') as f:
    for _ in range(int(sys.argv[2])):
        f.write(r.randbytes(1 << 20))
" "$work/src/file.bin" "$SIZE_MIB"
SIZE=$(stat -c %s "$work/src/file.bin")

wait_line() { # file pattern: the first line matching, within 60 s
  for _ in $(seq 600); do
    if grep -m1 -E "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for $2 in $1" >&2; cat "$1" >&2; return 1
}
verify() { # dir: every receiver's copy is the source's
  for f in "$@"; do cmp -s "$work/src/file.bin" "$f" || { echo "copy differs: $f" >&2; exit 1; }; done
}
results="$work/results"

run_ferry() {
  local n=$1 run="$work/ferry-$1"
  mkdir -p "$run"
  inns 0 "$FERRY" --home "$run/h0" --relay disabled --bind "$(ip_of 0):0" \
    send "$work/src/file.bin" > "$run/ticket" 2> "$run/send.err" &
  local ticket; ticket=$(wait_line "$run/ticket" '.')
  local before; before=$(tx_bytes)
  local start; start=$(date +%s.%N)
  local pids=()
  for i in $(seq 1 "$n"); do
    inns "$i" timeout "$LIMIT" "$FERRY" --home "$run/h$i" --relay disabled \
      --bind "$(ip_of "$i"):0" receive "$ticket" --out "$run/out$i" > /dev/null 2> "$run/recv$i.err" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { cat "$run"/recv*.err >&2; exit 1; }; done
  local end; end=$(date +%s.%N)
  local after; after=$(tx_bytes)
  for i in $(seq 1 "$n"); do verify "$run/out$i/file.bin"; done
  stop_peer 0
  echo -e "ferry\t$n\t$(echo "$end - $start" | bc)\t$(( after - before ))" >> "$results"
}

run_bt() {
  local n=$1 run="$work/bt-$1"
  mkdir -p "$run"
  inns 0 python3 bench/tracker.py "$(ip_of 0)" 8000 > "$run/tracker.log" 2>&1 &
  wait_port 8000
  mktorrent -l 18 -a "http://$(ip_of 0):8000/announce" -o "$run/file.torrent" \
    "$work/src/file.bin" > /dev/null
  local common=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false
    --bt-tracker-connect-timeout=5 --file-allocation=none --summary-interval=0
    --console-log-level=warn --check-integrity=true --bt-max-peers=60)
  inns 0 aria2c "${common[@]}" -d "$work/src" --seed-ratio=0.0 --seed-time=100000 \
    --bt-seed-unverified=true --listen-port=6881 "$run/file.torrent" > "$run/seed.log" 2>&1 &
  wait_port 6881
  local before; before=$(tx_bytes)
  local start; start=$(date +%s.%N)
  local pids=()
  for i in $(seq 1 "$n"); do
    inns "$i" timeout "$LIMIT" aria2c "${common[@]}" -d "$run/out$i" --seed-time=0 \
      --listen-port=6881 "$run/file.torrent" > "$run/leech$i.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { cat "$run"/leech*.log >&2; exit 1; }; done
  local end; end=$(date +%s.%N)
  local after; after=$(tx_bytes)
  for i in $(seq 1 "$n"); do verify "$run/out$i/file.bin"; done
  stop_peer 0
  echo -e "bittorrent\t$n\t$(echo "$end - $start" | bc)\t$(( after - before ))" >> "$results"
}

for n in $COUNTS; do
  run_ferry "$n"
  run_bt "$n"
done

python3 - "$results" "$SIZE" "$RATE" <<'PY'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
size = int(sys.argv[2])
by = {}
for tool, n, secs, sent in rows:
    by[(tool, int(n))] = (float(secs), int(sent) / size)
print(f"| receivers | Ferry all done (s) | BitTorrent all done (s) | Ferry/BT time | Ferry sender uploaded (copies) | BitTorrent sender uploaded (copies) |")
print("|---|---|---|---|---|---|")
for n in sorted({k[1] for k in by}):
    f, b = by[("ferry", n)], by[("bittorrent", n)]
    print(f"| {n} | {f[0]:.1f} | {b[0]:.1f} | {f[0] / b[0]:.2f} | {f[1]:.2f} | {b[1]:.2f} |")
print(f"\n{size >> 20} MiB file, every peer's upload shaped to {sys.argv[3]}.")
PY
