#!/usr/bin/env bash
# Starts the built app under Xvfb and checks that its window appears and its node starts.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
APP="${FERRY_SMOKE_BIN:-$CARGO_TARGET_DIR/debug/ferry-app}"
tmp=$(mktemp -d)
trap 'remove_app_dir "$tmp"' EXIT
cat > "$tmp/inner.sh" <<INNER
#!/usr/bin/env bash
set -u
export XDG_CONFIG_HOME=$tmp/config XDG_DATA_HOME=$tmp/data XDG_CACHE_HOME=$tmp/cache
export FERRY_HOME=$tmp/home FERRY_RELAY=disabled FERRY_BIND=127.0.0.1:0
"$APP" >"$tmp/app.log" 2>&1 &
pid=\$!
for _ in \$(seq 300); do
  if xdotool search --name '^Ferry\$' >/dev/null 2>&1 && [ -s "$tmp/home/control.json" ]; then
    echo "app-smoke: window is up and the node is running"
    kill \$pid; wait \$pid 2>/dev/null
    exit 0
  fi
  if ! kill -0 \$pid 2>/dev/null; then break; fi
  sleep 0.1
done
echo "app-smoke: the window did not appear within 30 s" >&2
cat "$tmp/app.log" >&2
kill \$pid 2>/dev/null
exit 1
INNER
chmod +x "$tmp/inner.sh"
# The session bus and portals are chatty; their output is shown only when the check fails.
if ! xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- "$tmp/inner.sh" 2>"$tmp/session.log"; then
  cat "$tmp/session.log" >&2
  exit 1
fi
