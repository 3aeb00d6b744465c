#!/usr/bin/env bash
# Loopback throughput of the chaos demo's `ok` route with and without the fallback layer (wrk, same
# machine, alternated rounds; with PIN=1 the servers are pinned to CPU 0 and wrk to CPU 1).
# Prints requests/s per round, the medians, and the median of the per-round ratios.
#   benches/layer-load.sh                      # 7 rounds x 6 s each side
#   ROUNDS=9 DURATION=10s CONNECTIONS=64 benches/layer-load.sh
# Both sides run the same app work: without the layer, the app reads and parses the parameters
# itself (as it would without our TwilioParams) before echoing the Body.
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$REPO_ROOT"

ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-6s}
CONNECTIONS=${CONNECTIONS:-32}
apt_install wrk
command -v wrk >/dev/null || die "wrk is not installed"

log "cargo build --release --example chaos"
cargo build --release --locked -p twiml-fallback --example chaos
chaos=target/release/examples/chaos

server_cpu=(); client_cpu=()
if [ "${PIN:-0}" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  server_cpu=(taskset -c 0); client_cpu=(taskset -c 1)
fi
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
with=(); without=()
for round in $(seq 1 "$ROUNDS"); do
  with+=("$(run 3101)")
  without+=("$(run 3102)")
  log "round $round: with layer ${with[-1]} req/s, without ${without[-1]} req/s"
done
python3 - "${with[*]}" "${without[*]}" <<'PY'
import statistics, sys
w = [float(x) for x in sys.argv[1].split()]
wo = [float(x) for x in sys.argv[2].split()]
ratios = [a / b for a, b in zip(w, wo)]
print(f"median with the layer: {statistics.median(w):.0f} req/s; without: {statistics.median(wo):.0f} req/s")
print(f"per-round ratios: {' '.join(f'{r:.3f}' for r in ratios)}; median ratio {statistics.median(ratios):.3f} (target >= 0.95)")
PY
