#!/usr/bin/env bash
# The same servers and request as layer-load.sh, counted in instructions instead of timed: each
# `chaos` server (with the layer, and `--no-layer`) runs under callgrind, is warmed up, then serves
# one wrk connection for a few seconds; its instructions in that window (every thread, user space:
# hyper, tokio, the app, the layer; not the kernel) are divided by the requests wrk completed.
# Other load on the machine does not move the figures, which wrk's requests/s are: use this to tell
# a change to the layer from noise, and layer-load.sh for what the throughput is.
#   benches/layer-instructions.sh               # 2 runs per side, 5 s each
#   RUNS=3 DURATION=8s benches/layer-instructions.sh
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$REPO_ROOT"

RUNS=${RUNS:-2}
DURATION=${DURATION:-5s}
command -v wrk >/dev/null || apt_install wrk
command -v valgrind >/dev/null || apt_install valgrind
command -v wrk >/dev/null || die "wrk is not installed"
command -v callgrind_control >/dev/null || die "valgrind (callgrind) is not installed"

log "cargo build --release --example chaos"
cargo build --release --locked -p twiml-fallback --example chaos
chaos=target/release/examples/chaos

WRK_BODY=$(python3 - <<'PY'
import json, urllib.parse
fixture = json.load(open("crates/twiml-fallback/benches/fixtures/bench-inputs.json"))
pairs = [(k, v) for k, v in fixture["sms_fallback"]["params"] if k not in ("ErrorCode", "ErrorUrl")]
print(urllib.parse.urlencode(pairs))
PY
)
export WRK_BODY
out=$(mktemp -d)
vg=
cleanup() { [ -n "$vg" ] && kill "$vg" 2>/dev/null; rm -rf "$out"; }
trap cleanup EXIT

# measure PORT [chaos args...]: prints instructions per request.
measure() {
  local port=$1; shift
  rm -f "$out"/cg.*
  valgrind --tool=callgrind --callgrind-out-file="$out/cg.%p" "$chaos" --addr "127.0.0.1:$port" "$@" >/dev/null 2>&1 &
  vg=$!
  local ready=
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && { ready=1; break; }
    sleep 0.1
  done
  [ -n "$ready" ] || die "chaos under callgrind did not start on port $port"
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/x-www-form-urlencoded' --data "$WRK_BODY" "http://127.0.0.1:$port/sms/ok")
  [ "$code" = 200 ] || die "port $port answered $code"
  wrk -t1 -c1 -d2s -s benches/load/sms-post.lua "http://127.0.0.1:$port/sms/ok" >/dev/null
  callgrind_control --zero "$vg" >/dev/null 2>&1
  local requests
  requests=$(wrk -t1 -c1 -d"$DURATION" -s benches/load/sms-post.lua "http://127.0.0.1:$port/sms/ok" | awk '/requests in/ {print $1}')
  callgrind_control --dump "$vg" >/dev/null 2>&1
  kill "$vg"; wait "$vg" 2>/dev/null || true; vg=
  # The dump after zeroing is the one numbered .1 (the file without a number holds the rest).
  local dump
  dump=$(ls "$out"/cg.*.1 2>/dev/null | head -1)
  [ -n "$dump" ] && [ "${requests:-0}" -gt 0 ] || die "no callgrind dump or no requests (port $port)"
  python3 - "$dump" "$requests" <<'PY'
import sys
total = next(int(line.split()[1]) for line in open(sys.argv[1]) if line.startswith(("summary:", "totals:")))
print(total // int(sys.argv[2]))
PY
}

with=(); without=()
for run in $(seq 1 "$RUNS"); do
  with+=("$(measure 3111)"); without+=("$(measure 3112 --no-layer)")
  log "run $run: with the layer ${with[-1]} instructions/request, without ${without[-1]}"
done
python3 - "${with[*]}" "${without[*]}" <<'PY'
import statistics, sys
a = [int(x) for x in sys.argv[1].split()]
b = [int(x) for x in sys.argv[2].split()]
ma, mb = statistics.median(a), statistics.median(b)
print(f"median instructions per request: with the layer {ma:.0f}, without {mb:.0f}; "
      f"the layer adds {ma - mb:+.0f} ({(ma - mb) / mb:+.1%}); without / with {mb / ma:.3f}")
PY
