#!/usr/bin/env bash
# The outage inbox under load: `serve` keeping every request (SQLite, WAL, synchronous = FULL,
# group commit) against `serve --no-inbox`, at 64 connections, with distinct, correctly signed
# inbound SMS (tests/src/bin/inbox-load.rs checks every answer and, with the inbox, that each
# answered message was kept exactly once). Prints requests/s and p50/p99 latency for both.
#   benches/inbox-load.sh                          # 20,000 requests each
#   REQUESTS=2000 PROFILE=debug benches/inbox-load.sh   # the short form (CI), on the test build
#   CONCURRENCY=64 REQUESTS=50000 benches/inbox-load.sh
#   COUNT_FSYNC=1 benches/inbox-load.sh            # also: serve under strace, counting fsync/fdatasync
#                                                  # (group commit: far fewer syncs than requests; slower)
# Exit status 1 when any answer was wrong or any answered message is missing from the inbox.
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$REPO_ROOT"

REQUESTS=${REQUESTS:-20000}
CONCURRENCY=${CONCURRENCY:-64}
PORT=${PORT:-3121}
PROFILE=${PROFILE:-release}
profile_flag=(--release); [ "$PROFILE" = debug ] && profile_flag=()
log "cargo build ${profile_flag[*]} (twiml-fallback, inbox-load)"
cargo build "${profile_flag[@]}" --locked -p twiml-fallback-cli --bin twiml-fallback
cargo build "${profile_flag[@]}" --locked -p twiml-fallback-e2e --bin inbox-load

work="$REPO_ROOT/target/tmp/inbox-load"
rm -rf "$work"; mkdir -p "$work"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; true; }
trap cleanup EXIT

# run NAME [serve flags...]: starts serve, sends the burst, stops serve.
run() {
  local name=$1; shift
  local tracer=()
  [ "${COUNT_FSYNC:-0}" = 1 ] && tracer=(strace -f -qq -c -e trace=fsync,fdatasync -o "$work/$name.syncs")
  TWILIO_AUTH_TOKEN=e2e-primary-token TWIML_FALLBACK_ADMIN_TOKEN=bench-admin RUST_LOG=warn \
    "${tracer[@]}" "target/$PROFILE/twiml-fallback" serve --addr "127.0.0.1:$PORT" "$@" >"$work/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.05; done
  log "$name: $REQUESTS requests, $CONCURRENCY connections"
  local admin=()
  [ "$name" = inbox ] && admin=(--admin-token bench-admin)
  "target/$PROFILE/inbox-load" --url "http://127.0.0.1:$PORT" --requests "$REQUESTS" \
    --concurrency "$CONCURRENCY" --prefix "$name" "${admin[@]}" | tee "$work/$name.result"
  local status=${PIPESTATUS[0]}
  # Under strace, $pid is strace: stop serve itself, and strace ends with it.
  pkill -TERM -P "$pid" 2>/dev/null || true
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=
  if [ -f "$work/$name.syncs" ]; then
    log "$name: fsync/fdatasync calls for $REQUESTS requests (strace -c):"
    grep -E 'fsync|fdatasync' "$work/$name.syncs" || echo "none"
  fi
  return "$status"
}

status=0
run no-inbox --no-inbox || status=1
run inbox --inbox "$work/inbox.sqlite3" || status=1
log "inbox file: $(du -h "$work/inbox.sqlite3" | cut -f1) for $REQUESTS entries"
exit "$status"
