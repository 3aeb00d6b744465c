#!/usr/bin/env bash
# Fuzzes the core with cargo-fuzz (libFuzzer, nightly Rust): the TwiML validator, the webhook
# parameter parsers, signature verification and URL handling, configuration loading, and the
# fallback endpoint's whole decision (fuzz/fuzz_targets/).
#
#   scripts/fuzz.sh smoke [SECONDS]          every target for SECONDS each (default 40; .ci/run gives 30)
#   scripts/fuzz.sh run TARGET [SECONDS]     one target (default 1200 s)
#   scripts/fuzz.sh list                     the targets
#
# Each run starts from the committed seeds (fuzz/seeds/TARGET, see fuzz/make-seeds.py) plus the
# corpus kept in target/fuzz/corpus/TARGET. A crash, a hang (> 10 s for one input) or an
# allocation over 512 MB fails the run; the input is saved in target/fuzz/artifacts/TARGET/.
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"

CARGO_FUZZ_VERSION=0.13.2   # crates.io: cargo-fuzz
TARGETS=(twiml_validate webhook_params signature config edge_decide admin_route replay_run)

setup() {
  command -v rustup >/dev/null 2>&1 || die "fuzzing needs rustup with a nightly toolchain"
  if ! rustup toolchain list | grep -q '^nightly'; then
    log "rustup toolchain install nightly (cargo fuzz needs it)"
    rustup toolchain install nightly --profile minimal \
      || die "fuzzing needs a nightly toolchain and rustup could not install one"
  fi
  command -v c++ >/dev/null 2>&1 || apt_install g++
  install_cargo_tool cargo-fuzz "$CARGO_FUZZ_VERSION" cargo-fuzz
}

build() {
  log "cargo +nightly fuzz build (release, debug assertions, AddressSanitizer)"
  cargo +nightly fuzz build --fuzz-dir fuzz --target-dir target/fuzz/build -O --debug-assertions
}

run_target() { # target seconds
  local target=$1 seconds=$2
  local corpus="target/fuzz/corpus/$target" artifacts="target/fuzz/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  log "fuzz $target for ${seconds}s"
  local output status=0
  output=$(cargo +nightly fuzz run --fuzz-dir fuzz --target-dir target/fuzz/build -O --debug-assertions \
    "$target" "$corpus" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -malloc_limit_mb=512 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 2>&1) || status=$?
  if [ "$status" != 0 ]; then
    printf '%s\n' "$output" | tail -60 >&2
    die "fuzz target $target failed (exit $status); the input is in $artifacts/"
  fi
  local runs corpus_size
  runs=$(printf '%s\n' "$output" | awk '/stat::number_of_executed_units/ {print $2}' | tail -n 1)
  corpus_size=$(find "$corpus" -type f | wc -l)
  printf '  %-16s %10s executions in %ss, corpus %s inputs, no crash, hang or oversized allocation\n' \
    "$target" "${runs:-?}" "$seconds" "$corpus_size"
}

case "${1:-}" in
  list) printf '%s\n' "${TARGETS[@]}" ;;
  smoke)
    seconds=${2:-40}
    setup; build
    for target in "${TARGETS[@]}"; do run_target "$target" "$seconds"; done
    ;;
  run)
    [ -n "${2:-}" ] || die "usage: scripts/fuzz.sh run TARGET [SECONDS]"
    printf '%s\n' "${TARGETS[@]}" | grep -qx "$2" || die "unknown target $2 (scripts/fuzz.sh list)"
    setup; build
    run_target "$2" "${3:-1200}"
    ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
