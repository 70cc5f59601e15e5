# Sourced by the scripts: one cargo target dir outside the clone, shared between runs.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferry-target}"
export FERRY_TOOLS="${FERRY_TOOLS:-$HOME/.cache/ferry-tools}"
# Settings that make WebKitGTK render under Xvfb.
export WEBKIT_DISABLE_DMABUF_RENDERER=1 WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1
