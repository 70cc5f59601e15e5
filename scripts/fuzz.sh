#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/fuzz_targets) for a bounded time each: ticket parsing,
# collection-name validation and folder record decoding. Not part of CI: it needs nightly Rust
# and minutes per target.
#
# usage: scripts/fuzz.sh [SECONDS_PER_TARGET=600] [TARGET...]
# Crashes land in fuzz/artifacts/<target>/; the committed seeds are in fuzz/corpus/<target>/ and
# what a run discovers goes to ~/.cache/ferry-fuzz-corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ticket names folder_record)
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: needs a nightly toolchain (rustup toolchain install nightly)" >&2
  exit 1
fi
if [ ! -x "$FERRY_TOOLS/bin/cargo-fuzz" ]; then
  echo "fuzz: installing cargo-fuzz (once)"
  cargo install cargo-fuzz --version 0.13.2 --locked --root "$FERRY_TOOLS" --quiet
fi
export PATH="$FERRY_TOOLS/bin:$PATH"
export CARGO_TARGET_DIR="$HOME/.cache/ferry-fuzz-target"
for t in "${targets[@]}"; do
  work="$HOME/.cache/ferry-fuzz-corpus/$t"
  mkdir -p "$work"
  echo "== fuzz $t for ${secs}s"
  start=$(date +%s)
  (cd fuzz && cargo +nightly fuzz run "$t" "$work" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 2>&1 | tail -12)
  echo "== $t: ran $(( $(date +%s) - start )) s, no crash"
done
