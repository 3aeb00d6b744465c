#!/usr/bin/env bash
# Loopback throughput of the chaos demo's `ok` route with and without the fallback layer (wrk, same
# machine, alternated rounds; with PIN=1 the servers are pinned to CPU 0 and wrk to CPU 1).
# Prints requests/s per round, the medians, and the median of the per-round ratios.
#   benches/layer-load.sh                      # 7 rounds x 6 s each side
#   ROUNDS=9 DURATION=10s CONNECTIONS=64 benches/layer-load.sh
# Both sides run the same app work: without the layer, the app reads and parses the parameters
# itself (as it would without our TwilioParams) before echoing the Body.
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$(dirname "$0")/lib-ab.sh"
cd "$REPO_ROOT"

ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-6s}
CONNECTIONS=${CONNECTIONS:-32}
command -v wrk >/dev/null || apt_install wrk
command -v wrk >/dev/null || die "wrk is not installed"

log "cargo build --release --example chaos"
cargo build --release --locked -p twiml-fallback --example chaos
chaos=target/release/examples/chaos

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
"${server_cpu[@]}" "$chaos" --addr 127.0.0.1:3101 >/dev/null 2>&1 & pids+=($!)
"${server_cpu[@]}" "$chaos" --addr 127.0.0.1:3102 --no-layer >/dev/null 2>&1 & pids+=($!)
for port in 3101 3102; do
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
done

body=$(python3 - <<'PY'
import json, urllib.parse
fixture = json.load(open("crates/twiml-fallback/benches/fixtures/bench-inputs.json"))
pairs = [(k, v) for k, v in fixture["sms_fallback"]["params"] if k not in ("ErrorCode", "ErrorUrl")]
print(urllib.parse.urlencode(pairs))
PY
)
export WRK_BODY=$body
# Both servers answer the route before measuring.
for port in 3101 3102; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/x-www-form-urlencoded' --data "$body" "http://127.0.0.1:$port/sms/ok")
  [ "$code" = 200 ] || die "port $port answered $code"
done

run() { "${client_cpu[@]}" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s benches/load/sms-post.lua "http://127.0.0.1:$1/sms/ok" | awk '/Requests\/sec/ {print $2}'; }
ab_rounds 3101 3102 "with the layer" without 0.95
