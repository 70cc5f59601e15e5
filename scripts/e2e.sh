#!/usr/bin/env bash
# Drives the real app window: Xvfb + a session bus + tauri-driver + WebKitWebDriver + WebdriverIO.
# Screenshots go to $FERRY_E2E_SHOTS (default: $CARGO_TARGET_DIR/e2e-screenshots).
# FERRY_E2E_THEME=dark runs the app with GTK's dark theme.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
work=$(mktemp -d)
trap 'remove_app_dir "$work"' EXIT
export FERRY_APP="$CARGO_TARGET_DIR/debug/ferry-app"
export FERRY_BIN="$CARGO_TARGET_DIR/debug/ferry"
export FERRY_E2E_WORK="$work"
export FERRY_E2E_SHOTS="${FERRY_E2E_SHOTS:-$CARGO_TARGET_DIR/e2e-screenshots}"
export FERRY_E2E_THEME="${FERRY_E2E_THEME:-light}"
# Notifications the app shows land here, one JSON line each (ui/e2e/notifications.py).
export FERRY_E2E_NOTES="$work/notifications.jsonl"
# The app under test: its own home and download folder, offline, on loopback.
export FERRY_HOME="$work/app-home" FERRY_RELAY=disabled FERRY_BIND=127.0.0.1:0
export XDG_CONFIG_HOME="$work/config" XDG_DATA_HOME="$work/data" XDG_CACHE_HOME="$work/cache"
mkdir -p "$FERRY_HOME" "$work/downloads"
printf '{"device_name":"e2e","download_dir":"%s","relay":{"mode":"disabled"}}' "$work/downloads" \
  > "$FERRY_HOME/settings.json"
if [ "$FERRY_E2E_THEME" = dark ]; then export GTK_THEME=Adwaita:dark; fi

cat > "$work/inner.sh" <<'INNER'
#!/usr/bin/env bash
set -euo pipefail
/usr/bin/python3 ui/e2e/notifications.py "$FERRY_E2E_NOTES" > "$FERRY_E2E_WORK/notifications.log" 2>&1 &
notes=$!
for _ in $(seq 100); do
  grep -q ready "$FERRY_E2E_WORK/notifications.log" 2>/dev/null && break
  sleep 0.1
done
if ! grep -q ready "$FERRY_E2E_WORK/notifications.log" 2>/dev/null; then
  echo "e2e: the notification server did not start:" >&2
  cat "$FERRY_E2E_WORK/notifications.log" >&2
  exit 1
fi
"$FERRY_TOOLS/bin/tauri-driver" --port 4444 --native-driver /usr/bin/WebKitWebDriver \
  > "$FERRY_E2E_WORK/tauri-driver.log" 2>&1 &
driver=$!
trap 'kill $driver $notes 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/4444) 2>/dev/null && break
  sleep 0.1
done
cd ui && npx vitest run --config e2e/vitest.config.ts
INNER
chmod +x "$work/inner.sh"
xvfb-run -a -s "-screen 0 1280x860x24" dbus-run-session -- "$work/inner.sh" 2> >(grep -v -E "dbus-daemon|portal|PipeWire|pw.conf|SpiRegistry|max threads|^$" >&2)
echo "e2e: screenshots in $FERRY_E2E_SHOTS"
