#!/usr/bin/env bash
# Regenerates the tray icons: the app icon with a badge for each state (ImageMagick).
set -euo pipefail
cd "$(dirname "$0")"
badge() { # name colour draw-primitives...
  local name=$1 colour=$2; shift 2
  convert ../64x64.png \( -size 64x64 xc:none -fill "$colour" -stroke white -strokewidth 3 \
    -draw "circle 46,46 46,29" -fill none -stroke white -strokewidth 4 "$@" \) \
    -composite "$name.png"
}
cp ../64x64.png idle.png
badge sending '#1a73e8' -draw "line 46,37 46,55" -draw "line 46,37 39,44" -draw "line 46,37 53,44"
badge receiving '#188038' -draw "line 46,37 46,55" -draw "line 46,55 39,48" -draw "line 46,55 53,48"
badge syncing '#1a73e8' -draw "arc 38,38 54,54 20,300" -draw "line 53,49 57,43" -draw "line 53,49 48,46"
badge error '#d93025' -strokewidth 5 -draw "line 46,36 46,48" -draw "line 46,53 46,56"
