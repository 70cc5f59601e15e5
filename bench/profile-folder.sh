#!/usr/bin/env bash
# Where a folder's time goes: two `ferry run` daemons on loopback, 10,000 small files dropped
# into a folder one of them shares, each daemon sampled by perf until the other has them all.
# Prints the wall time, each daemon's CPU seconds and its threads' and functions' shares.
#
# usage: bench/profile-folder.sh [DATA]   (DATA: a directory of files to drop in; default the
#        10,000 small files of bench/gen-data.py)
set -euo pipefail
# A DATA given relative to where the script was started.
given="${1:+$(realpath -m "$1")}"
cd "$(dirname "$0")/.."
source scripts/env.sh
FERRY="$CARGO_TARGET_DIR/${FERRY_PROFILE:-release}/ferry"
[ -x "$FERRY" ] || { echo "build ferry first: cargo build --release -p ferry-cli" >&2; exit 1; }
command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf)" >&2; exit 1; }
if [ -n "$given" ]; then
  DATA="$given"
  [ -d "$DATA" ] || { echo "no such directory: $DATA" >&2; exit 1; }
else
  # gen-data.py skips what is already complete.
  python3 bench/gen-data.py "${BENCH_DATA:-$HOME/.cache/ferry-bench-data}"
  DATA="${BENCH_DATA:-$HOME/.cache/ferry-bench-data}/small"
fi
files=$(find "$DATA" -type f | wc -l)

work=$(mktemp -d)
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ferry() { local home=$1; shift; "$FERRY" --home "$work/$home" --relay disabled --bind 127.0.0.1:0 "$@"; }
mkdir -p "$work/shared" "$work/joined"
for side in a b; do
  "$FERRY" --home "$work/$side" --relay disabled --bind 127.0.0.1:0 run > "$work/$side.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 100); do
  [ -f "$work/a/control.json" ] && [ -f "$work/b/control.json" ] && break
  sleep 0.1
done
[ -f "$work/a/control.json" ] && [ -f "$work/b/control.json" ] || {
  echo "a daemon did not start:" >&2; cat "$work"/*.log >&2; exit 1; }
ticket=$(ferry a folder share "$work/shared")
ferry b folder join "$ticket" "$work/joined" > /dev/null
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
tick=$(getconf CLK_TCK)
before=("$(cpu "${pids[0]}")" "$(cpu "${pids[1]}")")
perf record -F 499 -g -p "${pids[0]}" -o "$work/a.perf" 2> "$work/a.perf.err" & pa=$!
perf record -F 499 -g -p "${pids[1]}" -o "$work/b.perf" 2> "$work/b.perf.err" & pb=$!
pids+=("$pa" "$pb")
sleep 0.5
kill -0 "$pa" "$pb" 2>/dev/null || { echo "perf did not start:" >&2; cat "$work"/*.perf.err >&2; exit 1; }
start=$(date +%s.%N)
cp -r "$DATA/." "$work/shared/"
n=0
for _ in $(seq 3000); do
  # Files in place: not Ferry's own state, not a file still being written.
  n=$(find "$work/joined" -name .ferry -prune -o -type f ! -name '*.ferry-tmp' -print 2>/dev/null | wc -l)
  [ "$n" -ge "$files" ] && break
  sleep 0.1
done
end=$(date +%s.%N)
after=("$(cpu "${pids[0]}")" "$(cpu "${pids[1]}")")
kill -INT "$pa" "$pb" 2>/dev/null || true
wait "$pa" "$pb" 2>/dev/null || true
wall=$(echo "$end - $start" | bc)
echo "$n of $files files synced in $wall s"
set +o pipefail   # head closes the pipes early
for i in 0 1; do
  side=$([ $i = 0 ] && echo "sharing (a)" || echo "joined (b)")
  used=$(echo "(${after[$i]} - ${before[$i]}) / $tick" | bc -l)
  printf '\n== %s: %.1f CPU s (%.2f cores over the sync)\n' "$side" "$used" "$(echo "$used / $wall" | bc -l)"
  f="$work/$([ $i = 0 ] && echo a || echo b).perf"
  perf report -i "$f" --no-children --sort comm --stdio -g none 2>/dev/null | grep '%' | head -6
  echo "-- functions"
  perf report -i "$f" --no-children --sort dso,symbol --stdio -g none 2>/dev/null | grep '%' | head -15 | cut -c1-150
done
