#!/usr/bin/env bash
# The Worker's outage inbox under load: the built Worker under raw `workerd serve` with its INBOX
# Durable Object (SQLite on local disk) against the same Worker without the binding, in alternated
# rounds, with distinct, correctly signed inbound SMS; every answer checked, and with the inbox
# every answered message looked up in it (tests/src/bin/inbox-load.rs).
#   benches/worker-inbox-load.sh                         # 3 rounds of 3,000 requests per side, 16 connections
#   ROUNDS=1 REQUESTS=1000 PROFILE=debug benches/worker-inbox-load.sh   # the short form
# Exit status 1 when any answer was wrong or any answered message is missing.
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$REPO_ROOT/scripts/lib/wasm-toolchain.sh"
source "$REPO_ROOT/scripts/lib/worker-toolchain.sh"
cd "$REPO_ROOT"

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-3000}
CONCURRENCY=${CONCURRENCY:-16}
scripts/worker.sh build
setup_worker_toolchain >/dev/null
PROFILE=${PROFILE:-release}
profile_flag=(--release); [ "$PROFILE" = debug ] && profile_flag=()
cargo build "${profile_flag[@]}" --locked -p twiml-fallback-e2e --bin inbox-load
export TWIML_FALLBACK_WORKERD="$WORKERD" TWIML_FALLBACK_WORKER_BUNDLE="$REPO_ROOT/workers/edge-fallback/build"

status=0
for round in $(seq 1 "$ROUNDS"); do
  # Alternate which side goes first.
  sides=(with-inbox without-inbox)
  [ $((round % 2)) = 0 ] && sides=(without-inbox with-inbox)
  for side in "${sides[@]}"; do
    log "round $round, $side: $REQUESTS requests, $CONCURRENCY connections"
    "target/$PROFILE/inbox-load" --workerd "$side" --requests "$REQUESTS" --concurrency "$CONCURRENCY" \
      --prefix "r$round${side:0:2}" || status=1
  done
done
exit "$status"
