#!/usr/bin/env bash
# The built Worker under raw workerd, hit with a mix of 10,000 requests — signed voice and SMS
# (POST and GET), forged, tampered, unsigned garbage, huge declared and huge chunked bodies — each
# answer checked (200 valid TwiML or 403), incident notifications counted at a local receiver
# (exactly one per failing primary, from the inbox object), the Worker's log searched for panics
# and instance resets.
#   benches/worker-robustness.sh                       # 10,000 requests, 8 connections
#   REQUESTS=50000 CONCURRENCY=16 benches/worker-robustness.sh
#   PROFILE=debug benches/worker-robustness.sh         # reuse the test build (CI)
# Exit status 1 when any check failed.
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$REPO_ROOT/scripts/lib/wasm-toolchain.sh"
source "$REPO_ROOT/scripts/lib/worker-toolchain.sh"
cd "$REPO_ROOT"

REQUESTS=${REQUESTS:-10000}
CONCURRENCY=${CONCURRENCY:-8}

scripts/worker.sh build
setup_worker_toolchain >/dev/null
PROFILE=${PROFILE:-release}
profile_flag=(--release); [ "$PROFILE" = debug ] && profile_flag=()
log "cargo build ${profile_flag[*]} -p twiml-fallback-e2e --bin e2e-load"
cargo build "${profile_flag[@]}" --locked -p twiml-fallback-e2e --bin e2e-load
export TWIML_FALLBACK_WORKERD="$WORKERD" TWIML_FALLBACK_WORKER_BUNDLE="$REPO_ROOT/workers/edge-fallback/build"
log "e2e-load worker: $REQUESTS requests, $CONCURRENCY connections, raw workerd"
"target/$PROFILE/e2e-load" worker --requests "$REQUESTS" --concurrency "$CONCURRENCY"
