#!/usr/bin/env bash
# Replay under load: `serve` keeps ENTRIES signed messages over NUMBERS numbers while the app is
# down, then the app comes up; tests/src/bin/replay-load.rs measures the time from "primary up" to
# an empty queue and the replay's rate (entries/s), and checks every entry was replayed and every
# reply sent exactly once (a local app and a recording fake of the Messages API).
#   benches/replay-load.sh                               # 1,000 entries over 10 numbers, 3 rounds
#   ENTRIES=200 ROUNDS=1 PROFILE=debug benches/replay-load.sh   # the short form (CI), on the test build
# Exit status 1 when a check failed.
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$REPO_ROOT"

ENTRIES=${ENTRIES:-1000}
NUMBERS=${NUMBERS:-10}
ROUNDS=${ROUNDS:-3}
PROFILE=${PROFILE:-release}
profile_flag=(--release); [ "$PROFILE" = debug ] && profile_flag=()
log "cargo build ${profile_flag[*]} (twiml-fallback, replay-load)"
cargo build "${profile_flag[@]}" --locked -p twiml-fallback-cli --bin twiml-fallback
cargo build "${profile_flag[@]}" --locked -p twiml-fallback-e2e --bin replay-load
log "replay: $ENTRIES entries over $NUMBERS numbers, $ROUNDS rounds ($PROFILE build)"
"target/$PROFILE/replay-load" --serve "target/$PROFILE/twiml-fallback" \
  --entries "$ENTRIES" --numbers "$NUMBERS" --rounds "$ROUNDS"
