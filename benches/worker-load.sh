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
cd "$REPO_ROOT"

ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-6s}
CONNECTIONS=${CONNECTIONS:-8}
TOKEN=0123456789abcdef0123456789abcdef
RS_PORT=${RS_PORT:-8791}
JS_PORT=${JS_PORT:-8792}
command -v wrk >/dev/null || apt_install wrk
command -v wrk >/dev/null || die "wrk is not installed"

scripts/worker.sh build
source "$REPO_ROOT/scripts/lib/wasm-toolchain.sh"
source "$REPO_ROOT/scripts/lib/worker-toolchain.sh"
setup_worker_toolchain >/dev/null

work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/rs"
cp workers/edge-fallback/build/index.js workers/edge-fallback/build/*.wasm "$work/rs/"
cp benches/worker/js-worker.mjs "$work/js-worker.mjs"
# The Rust Worker's modules: worker-build's entry module and its wasm.
modules=$(cd "$work/rs" && for file in *; do
  case "$file" in
    *.wasm) printf '    (name = "%s", wasm = embed "rs/%s"),\n' "$file" "$file" ;;
    *.js|*.mjs) printf '    (name = "%s", esModule = embed "rs/%s"),\n' "$file" "$file" ;;
  esac
done)
cat > "$work/bench.capnp" <<CAPNP
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "rs", worker = .rsWorker), (name = "js", worker = .jsWorker) ],
  sockets = [
    (name = "rs", address = "127.0.0.1:$RS_PORT", http = (), service = "rs"),
    (name = "js", address = "127.0.0.1:$JS_PORT", http = (), service = "js"),
  ],
);

const rsWorker :Workerd.Worker = (
  modules = [
$modules
  ],
  compatibilityDate = "2026-11-01",
  bindings = [ (name = "TWILIO_AUTH_TOKEN", text = "$TOKEN") ],
);

const jsWorker :Workerd.Worker = (
  modules = [ (name = "index.js", esModule = embed "js-worker.mjs") ],
  compatibilityDate = "2026-11-01",
  bindings = [
    (name = "TWILIO_AUTH_TOKEN", text = "$TOKEN"),
    (name = "VOICE_SAY", text = "An application error has occurred. Please call back later."),
    (name = "SMS_MESSAGE", text = "We're sorry. We are currently experiencing difficulties. Please try again later."),
  ],
);
CAPNP
log "workerd serve ($WORKERD)"
"${server_cpu[@]}" "$WORKERD" serve "$work/bench.capnp" >"$work/workerd.log" 2>&1 &
pid=$!
for port in "$RS_PORT" "$JS_PORT"; do
  for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
done

# Each side signs for its own URL; both must answer the same TwiML before anything is measured.
declare -A body signature
for side in rs js; do
  port=$([ "$side" = rs ] && echo "$RS_PORT" || echo "$JS_PORT")
  mapfile -t signed < <(python3 benches/worker/sign.py "http://127.0.0.1:$port/twilio/sms" "$TOKEN")
  body[$side]=${signed[0]}; signature[$side]=${signed[1]}
  answer=$(curl -s -w ' HTTP %{http_code}' -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
    -H "X-Twilio-Signature: ${signature[$side]}" --data "${body[$side]}" "http://127.0.0.1:$port/twilio/sms")
  case "$answer" in
    *"<Message>We&apos;re sorry."*"HTTP 200"|*"<Message>We're sorry."*"HTTP 200") log "$side answers: $answer" ;;
    *) cat "$work/workerd.log" >&2; die "$side answered: $answer" ;;
  esac
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
