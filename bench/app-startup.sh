#!/usr/bin/env bash
# Cold start of the desktop app to a mapped window with its node running, and idle memory.
#
# Runs the app RUNS times under Xvfb with a fresh home each time; reports the median time from
# launch until the window is mapped and the node's control channel is up, then the memory of the
# app and its WebKit processes after IDLE seconds (sum of PSS, which counts shared pages once).
# usage: bench/app-startup.sh   (PROFILE=debug for a debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
APP="$CARGO_TARGET_DIR/${PROFILE:-release}/ferry-app"
RUNS=${RUNS:-5} IDLE=${IDLE:-5}
[ -x "$APP" ] || { echo "build the app first: cargo build --release -p ferry-app --features custom-protocol" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/inner.sh" <<INNER
#!/usr/bin/env bash
set -u
for run in \$(seq $RUNS); do
  home=$work/home-\$run
  export XDG_CONFIG_HOME=$work/cfg-\$run XDG_DATA_HOME=$work/data-\$run FERRY_HOME=\$home
  export FERRY_RELAY=disabled FERRY_BIND=127.0.0.1:0
  t0=\$(date +%s.%N)
  "$APP" >/dev/null 2>&1 &
  pid=\$!
  while ! { xdotool search --name '^Ferry\$' >/dev/null 2>&1 && [ -s \$home/control.json ]; }; do sleep 0.01; done
  t1=\$(date +%s.%N)
  sleep $IDLE
  pss=0
  for p in \$(printf '%s\\n' \$pid \$(pgrep -P \$pid) \$(pgrep -f WebKit) | sort -u); do
    v=\$(awk '/^Pss:/ {print \$2}' /proc/\$p/smaps_rollup 2>/dev/null || echo 0)
    pss=\$((pss + \${v:-0}))
  done
  echo "\$t0 \$t1 \$pss"
  kill \$pid; wait \$pid 2>/dev/null || true
done
INNER
chmod +x "$work/inner.sh"
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- "$work/inner.sh" 2>/dev/null > "$work/out"
python3 - "$work/out" <<'PY'
import statistics, sys
rows = [r for r in (l.split() for l in open(sys.argv[1])) if len(r) == 3 and r[2].isdigit()]
t = [float(r[1]) - float(r[0]) for r in rows]; m = [int(r[2]) / 1024 for r in rows]
print(f"cold start to window + node: median {statistics.median(t):.2f} s (min {min(t):.2f}, max {max(t):.2f}, {len(t)} runs)")
print(f"idle memory (PSS, app + WebKit processes): median {statistics.median(m):.0f} MiB")
PY
