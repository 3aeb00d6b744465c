#!/usr/bin/env bash
# Throughput of the edge Worker under raw workerd (`workerd serve`; wrangler dev's proxy caps at
# ~240 req/s) against a hand-written JavaScript Worker doing the same job (benches/worker/js-worker.mjs:
# WebCrypto HMAC-SHA1 signature check + template TwiML + a JSON log line). Same signed SMS fallback
# request (the shared bench fixture, 22 parameters), same workerd process, alternated rounds.
#   benches/worker-load.sh                          # 7 rounds x 6 s each side, wrk -c8
#   ROUNDS=9 DURATION=10s CONNECTIONS=16 benches/worker-load.sh
#   PIN=1 benches/worker-load.sh                    # workerd on CPU 0, wrk on CPU 1 (steadier)
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$(dirname "$0")/lib-ab.sh"
source "$(dirname "$0")/lib-workerd.sh"
cd "$REPO_ROOT"

ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-6s}
CONNECTIONS=${CONNECTIONS:-8}
RS_PORT=${RS_PORT:-8791}
JS_PORT=${JS_PORT:-8792}
command -v wrk >/dev/null || apt_install wrk
command -v wrk >/dev/null || die "wrk is not installed"

work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
workerd_prepare "$work"
workerd_config "$work" bench.capnp "rs:$RS_PORT" "js:$JS_PORT"
log "workerd serve ($WORKERD)"
"${server_cpu[@]}" "$WORKERD" serve "$work/bench.capnp" >"$work/workerd.log" 2>&1 &
pid=$!
for port in "$RS_PORT" "$JS_PORT"; do
  for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
done

# Each side signs for its own URL; both must answer the same TwiML before anything is measured.
for side in rs js; do
  port=$([ "$side" = rs ] && echo "$RS_PORT" || echo "$JS_PORT")
  workerd_sign "$side" "$port"
  answer=$(curl -s -w ' HTTP %{http_code}' -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
    -H "X-Twilio-Signature: ${signature[$side]}" --data "${body[$side]}" "http://127.0.0.1:$port/twilio/sms")
  workerd_expected "$answer" || { cat "$work/workerd.log" >&2; die "$side answered: $answer"; }
  log "$side answers: $answer"
  forged=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
    -H "X-Twilio-Signature: AAAAAAAAAAAAAAAAAAAAAAAAAAA=" --data "${body[$side]}" "http://127.0.0.1:$port/twilio/sms")
  [ "$forged" = 403 ] || die "$side answered a forged request with $forged"
done

run() { # side
  local port
  port=$([ "$1" = rs ] && echo "$RS_PORT" || echo "$JS_PORT")
  WRK_BODY=${body[$1]} WRK_SIGNATURE=${signature[$1]} "${client_cpu[@]}" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" \
    -s benches/load/signed-post.lua "http://127.0.0.1:$port/twilio/sms" | awk '/Requests\/sec/ {print $2}'
}
run rs >/dev/null; run js >/dev/null   # warm both isolates
ab_rounds rs js "Rust Worker" "JS Worker" 1.0
