#!/usr/bin/env bash
# Runs every test of the project: the README's test command, which .ci/run runs as it is (then
# adds its load, robustness and fuzzing runs).
#   scripts/test.sh
# Installs what the tests need into the tool cache (outside the repository): the official Twilio
# libraries for the differential signature test, and the Worker toolchain (worker-build,
# wasm-bindgen, wrangler with workerd) to build the Worker and run its end-to-end tests under
# workerd. The first run takes a while (cargo install of two tools); later runs reuse the cache.
#
# SKIP_WORKER=1 scripts/test.sh skips the Worker build and its tests for a quick local run; with
# CI=true that is refused, and a missing Worker toolchain or bundle fails the run.
source "$(dirname "$0")/lib/common.sh"
source "$REPO_ROOT/scripts/lib/reference-twilio.sh"
source "$REPO_ROOT/scripts/lib/wasm-toolchain.sh"
source "$REPO_ROOT/scripts/lib/worker-toolchain.sh"
cd "$REPO_ROOT"

install_reference_twilio

if [ "${SKIP_WORKER:-0}" = 1 ]; then
  is_ci && die "SKIP_WORKER=1 is refused under CI: the Worker's end-to-end tests must run"
  log "SKIP_WORKER=1: not building the Worker; its end-to-end tests will be SKIPPED"
  unset TWIML_FALLBACK_WRANGLER TWIML_FALLBACK_WORKER_BUNDLE
else
  setup_worker_toolchain
  scripts/worker.sh build
  export TWIML_FALLBACK_WRANGLER="$WRANGLER"
  export TWIML_FALLBACK_WORKER_BUNDLE="$REPO_ROOT/workers/edge-fallback/build"
fi

log "cargo test (unit, integration, doc tests; signature differential against twilio-python and twilio-node; end-to-end table against serve and the Worker)"
cargo test --workspace --locked

log "all tests passed"
