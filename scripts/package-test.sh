#!/usr/bin/env bash
# Builds the debug .deb and .rpm, installs the .deb with dpkg, checks what it put where, runs
# the installed CLI and app, then removes it. The .rpm is checked with rpm -qip / -qlp.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

fail() { echo "package test: $*" >&2; exit 1; }
mapfile -t built < <(bash scripts/package.sh --debug)
deb=$(printf '%s\n' "${built[@]}" | grep '\.deb$' | head -1)
rpm=$(printf '%s\n' "${built[@]}" | grep '\.rpm$' | head -1)
[ -f "$deb" ] || fail "no .deb was built"
[ -f "$rpm" ] || fail "no .rpm was built"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

echo "-- .deb metadata"
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = ferry ] || fail "package name is $(field Package)"
[ "$(field Version)" = "$version" ] || fail "package version $(field Version), workspace $version"
depends=$(field Depends)
for dep in libwebkit2gtk-4.1-0 libgtk-3-0; do
  grep -q "$dep" <<<"$depends" || fail "Depends lacks $dep: $depends"
done
field Description | grep -qi "peer-to-peer" || fail "no description"
field Homepage | grep -q "^https://" || fail "no homepage"

echo "-- .deb contents"
listing=$(dpkg-deb -c "$deb")
for f in usr/bin/ferry usr/bin/ferry-app usr/share/applications/Ferry.desktop \
  usr/share/icons/hicolor/128x128/apps/ferry-app.png usr/lib/systemd/user/ferry.service; do
  grep -Eq " (\./)?$f\$" <<<"$listing" || fail "missing /$f in the .deb"
done

if dpkg -s ferry >/dev/null 2>&1; then dpkg -r ferry >/dev/null; fi
cleanup() { dpkg -r ferry >/dev/null 2>&1 || true; }
trap cleanup EXIT
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >/dev/null || fail "dpkg -i failed"

echo "-- installed files"
desktop=/usr/share/applications/Ferry.desktop
grep -q '^Exec=ferry-app %u$' "$desktop" || fail "desktop entry Exec: $(grep ^Exec "$desktop")"
grep -q 'x-scheme-handler/ferry' "$desktop" || fail "desktop entry does not register ferry://"
unit=/usr/lib/systemd/user/ferry.service
grep -q '^ExecStart=/usr/bin/ferry run$' "$unit" || fail "systemd unit ExecStart: $(grep ^ExecStart "$unit")"
[ "$(/usr/bin/ferry --version)" = "ferry $version" ] || fail "installed ferry --version: $(/usr/bin/ferry --version)"

echo "-- installed app opens its window"
FERRY_SMOKE_BIN=/usr/bin/ferry-app bash scripts/app-smoke.sh

echo "-- removal"
dpkg -r ferry >/dev/null
[ ! -e /usr/bin/ferry ] && [ ! -e /usr/bin/ferry-app ] && [ ! -e "$desktop" ] && [ ! -e "$unit" ] || fail "files left after dpkg -r"
trap - EXIT

echo "-- .rpm"
command -v rpm >/dev/null || fail "rpm is not installed (scripts/setup.sh installs it)"
info=$(rpm -qip "$rpm" 2>/dev/null)
grep -q "^Name *: ferry" <<<"$info" || fail "rpm name: $info"
grep -q "^Version *: $version" <<<"$info" || fail "rpm version: $info"
grep -q "^License" <<<"$info" || fail "rpm has no license"
files=$(rpm -qlp "$rpm" 2>/dev/null)
for f in /usr/bin/ferry /usr/bin/ferry-app /usr/share/applications/Ferry.desktop \
  /usr/lib/systemd/user/ferry.service; do
  grep -qx "$f" <<<"$files" || fail "missing $f in the .rpm"
done
echo "packages ok: $(basename "$deb"), $(basename "$rpm")"
