#!/usr/bin/env bash
# Runs every test of the project: the README's test command, which .ci/run runs as it is (then
# adds its load, robustness and fuzzing runs).
#   scripts/test.sh
# Installs what the tests need into the tool cache (outside the repository): the official Twilio
# libraries for the differential signature test, and the Worker toolchain (worker-build,
# wasm-bindgen, wrangler with workerd) to build the Worker and run its end-to-end tests under
# workerd. The first run takes a while (cargo install of two tools); later runs reuse the cache.
#
# The tests that need these tools are #[ignore]d (plain `cargo test` reports them as ignored);
# this script runs them with --include-ignored, so a missing tool fails the run.
# SKIP_WORKER=1 scripts/test.sh skips the Worker build and its end-to-end tests (--skip, logged)
# for a quick local run; with CI=true that is refused.
source "$(dirname "$0")/lib/common.sh"
source "$REPO_ROOT/scripts/lib/reference-twilio.sh"
source "$REPO_ROOT/scripts/lib/wasm-toolchain.sh"
source "$REPO_ROOT/scripts/lib/worker-toolchain.sh"
cd "$REPO_ROOT"

install_reference_twilio

# The names of the tests that need the Worker toolchain: every test of tests/tests/worker.rs and
# tests/tests/worker_script.rs, listed by their test binaries (built here as the run below builds
# them, so nothing is compiled twice).
worker_test_names() {
  local binaries binary
  binaries=$(cargo test --workspace --locked --no-run --message-format=json-render-diagnostics | python3 -c '
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    target = message.get("target", {})
    if message.get("reason") == "compiler-artifact" and message.get("executable") \
            and "test" in target.get("kind", []) \
            and target.get("src_path", "").endswith(("tests/tests/worker.rs", "tests/tests/worker_script.rs")):
        print(message["executable"])')
  [ "$(printf '%s\n' "$binaries" | grep -c .)" = 2 ] \
    || die "cannot find the test binaries of tests/tests/worker.rs and worker_script.rs"
  for binary in $binaries; do
    "$binary" --list --format terse | sed -n 's/: test$//p'
  done
}

skip=()
if [ "${SKIP_WORKER:-0}" = 1 ]; then
  is_ci && die "SKIP_WORKER=1 is refused under CI: the Worker's end-to-end tests must run"
  log "SKIP_WORKER=1: not building the Worker"
  unset TWIML_FALLBACK_WRANGLER TWIML_FALLBACK_WORKER_BUNDLE
  names=$(worker_test_names)
  [ -n "$names" ] || die "found no Worker end-to-end tests to skip"
  while IFS= read -r name; do
    log "SKIPPED (SKIP_WORKER=1): $name"
    skip+=(--skip "$name")
  done <<< "$names"
else
  setup_worker_toolchain
  scripts/worker.sh build
  export TWIML_FALLBACK_WRANGLER="$WRANGLER"
  export TWIML_FALLBACK_WORKER_BUNDLE="$REPO_ROOT/workers/edge-fallback/build"
fi

log "cargo test --include-ignored (unit, integration, doc tests; signature differential against twilio-python and twilio-node; end-to-end table against serve and the Worker)"
cargo test --workspace --locked -- --include-ignored --exact "${skip[@]}"

log "the README's commands, run as written (scripts/readme-commands.py)"
cargo build --locked --quiet --workspace --bin twiml-fallback --example chaos
python3 scripts/readme-commands.py

log "all tests passed"
