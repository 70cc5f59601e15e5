# Sourced by the scripts: one cargo target dir outside the clone, shared between runs.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferry-target}"
export FERRY_TOOLS="${FERRY_TOOLS:-$HOME/.cache/ferry-tools}"
# Settings that make WebKitGTK render under Xvfb.
export WEBKIT_DISABLE_DMABUF_RENDERER=1 WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1
# Removes a temp dir an app run used. WebKit's helper processes may still write into it for a
# moment after the app exits, so removal is retried, and a leftover never fails the caller.
remove_app_dir() {
  for _ in 1 2 3 4 5; do rm -rf "$1" 2>/dev/null && return 0; sleep 0.5; done
  return 0
}
