#!/usr/bin/env bash
# Builds Ferry's Linux packages (.deb and .rpm) offline: the desktop app, the `ferry` CLI on
# PATH, the icon set, the desktop entry that registers ferry:// links.
#
# usage: scripts/package.sh            release packages; prints their paths
#        scripts/package.sh --debug    debug packages (what CI installs and checks)
#        scripts/package.sh --prepare-cli [TARGET]   only build the CLI into src-tauri/binaries
#                                     (the release workflow, every platform)
#        scripts/package.sh --release-config         print the release configuration: updater
#                                     on, endpoint and public key from FERRY_UPDATER_ENDPOINT and
#                                     FERRY_UPDATER_PUBKEY
#
# The CLI travels as a Tauri "external binary": the bundler installs it beside the app
# (/usr/bin/ferry on Linux). It is added here, not in tauri.conf.json, because tauri-build
# insists that external binaries exist, and a plain `cargo build` of the app must not need one.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
case "${1:-}" in
  --debug) profile=debug ;;
  --prepare-cli | --release-config | "") ;;
  *) echo "unknown option $1 (see the top of $0)" >&2; exit 2 ;;
esac

if [ "${1:-}" = "--release-config" ]; then
  python3 - <<'PY'
import json, os
endpoint = os.environ.get("FERRY_UPDATER_ENDPOINT", "")
pubkey = os.environ.get("FERRY_UPDATER_PUBKEY", "")
config = {"bundle": {"externalBin": ["binaries/ferry"]}}
if endpoint and pubkey:
    config["bundle"]["createUpdaterArtifacts"] = True
    config["plugins"] = {"updater": {"endpoints": [endpoint], "pubkey": pubkey}}
print(json.dumps(config, indent=2))
PY
  exit 0
fi

# Everything else builds: same environment as the tests.
if [ -f scripts/env.sh ] && [ -z "${GITHUB_ACTIONS:-}" ]; then
  source scripts/env.sh
fi

prepare_cli() { # profile [target]
  local prof=$1 target=${2:-} flags=(--locked -p ferry-cli) dir triple ext=""
  [ "$prof" = release ] && flags+=(--release)
  triple=${target:-$(rustc -vV | sed -n 's/^host: //p')}
  case "$triple" in *windows*) ext=.exe ;; esac
  mkdir -p src-tauri/binaries
  local target_dir=${CARGO_TARGET_DIR:-target}
  if [ "$triple" = universal-apple-darwin ]; then
    for t in aarch64-apple-darwin x86_64-apple-darwin; do
      cargo build "${flags[@]}" --target "$t"
    done
    lipo -create -output "src-tauri/binaries/ferry-$triple" \
      "$target_dir/aarch64-apple-darwin/$prof/ferry" "$target_dir/x86_64-apple-darwin/$prof/ferry"
    return
  fi
  if [ -n "$target" ]; then
    cargo build "${flags[@]}" --target "$target"
    dir="$target_dir/$target/$prof"
  else
    cargo build "${flags[@]}"
    dir="$target_dir/$prof"
  fi
  cp "$dir/ferry$ext" "src-tauri/binaries/ferry-$triple$ext"
}

if [ "${1:-}" = "--prepare-cli" ]; then
  prepare_cli release "${2:-}"
  exit 0
fi

bash scripts/setup.sh >/dev/null
prepare_cli "$profile"
(cd ui && npm run build --silent)
args=(build --bundles deb,rpm --config '{"bundle":{"externalBin":["binaries/ferry"]}}')
[ "$profile" = debug ] && args+=(--debug)
# CI=true makes the Tauri CLI non-interactive; it also accepts only "true"/"false" there.
CI=true ui/node_modules/.bin/tauri "${args[@]}" >&2
find "$CARGO_TARGET_DIR/$profile/bundle" -name '*.deb' -o -name '*.rpm' | sort
