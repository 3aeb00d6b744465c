#!/usr/bin/env bash
# Fault-injection load on the tower layer: the `chaos` example (a webhook app whose routes fail on
# purpose: panics in the handler, its future and its body, errors, timeouts past a short deadline,
# 4xx/5xx, malformed / wrong-channel / oversized / mistyped TwiML) behind FallbackLayer, and
# e2e-load sending Twilio webhooks to it, checking EVERY answer (200, XML, valid TwiML for the
# channel), then measuring the server's RSS over many more.
#   benches/fault-load.sh                                  # 50,000 checked + 1,000,000 for RSS
#   REQUESTS=50000 RSS_REQUESTS=0 benches/fault-load.sh    # what .ci/run runs
#   CONCURRENCY=64 FAILURE_PERCENT=40 DEADLINE_MS=200 benches/fault-load.sh
#   PROFILE=debug ...                                      # reuse the test build (CI), no release build
# Exit status 1 when any answer was wrong or any request got a 5xx.
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$REPO_ROOT"

REQUESTS=${REQUESTS:-50000}
RSS_REQUESTS=${RSS_REQUESTS:-1000000}
CONCURRENCY=${CONCURRENCY:-64}
FAILURE_PERCENT=${FAILURE_PERCENT:-40}
DEADLINE_MS=${DEADLINE_MS:-200}
PORT=${PORT:-3111}

PROFILE=${PROFILE:-release}
profile_flag=(--release); [ "$PROFILE" = debug ] && profile_flag=()
log "cargo build ${profile_flag[*]} (the chaos example, e2e-load)"
cargo build "${profile_flag[@]}" --locked -p twiml-fallback --example chaos
cargo build "${profile_flag[@]}" --locked -p twiml-fallback-e2e --bin e2e-load

pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; true; }
trap cleanup EXIT
# The layer logs every failure and panics print their message: both go to /dev/null here.
"target/$PROFILE/examples/chaos" --addr "127.0.0.1:$PORT" --deadline-ms "$DEADLINE_MS" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.05; done

log "e2e-load layer: $REQUESTS checked requests, $FAILURE_PERCENT % to failing routes, $CONCURRENCY connections, deadline $DEADLINE_MS ms"
"target/$PROFILE/e2e-load" layer --url "http://127.0.0.1:$PORT" --requests "$REQUESTS" --concurrency "$CONCURRENCY" \
  --failure-percent "$FAILURE_PERCENT" --server-pid "$pid" --rss-requests "$RSS_REQUESTS"
