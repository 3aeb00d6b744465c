#!/usr/bin/env bash
# Cold start of the edge Worker under raw workerd against the hand-written JS Worker
# (benches/worker/js-worker.mjs, as in worker-load.sh): for each, a fresh `workerd serve` process
# with that Worker alone; the startup (process start until its socket accepts a TCP connection),
# then the first request to the fresh isolate (the signed SMS fallback fixture worker-load.sh
# sends, its TwiML checked), then a second, warm one for contrast. workerd listens before it runs
# the Worker's modules: the first request pays for their evaluation (a 1.4 s loop at a module's top
# level lands there, not in the startup) and for the wasm compile (V8 compiles wasm lazily, per
# function, as it is first called), and for the Rust Worker's configuration load (once per
# isolate). RUNS runs, alternating which side goes first, after one untimed run per side (the
# binary and files in the page cache); the medians and the Rust/JS ratios of the medians (above
# 1: Rust slower).
#   benches/worker-cold-start.sh               # 15 runs per side
#   RUNS=31 benches/worker-cold-start.sh
#   QUICK=1 benches/worker-cold-start.sh       # 3 runs per side
#   PIN=1 benches/worker-cold-start.sh         # workerd on CPU 0, the client on CPU 1
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$(dirname "$0")/lib-ab.sh"
source "$(dirname "$0")/lib-workerd.sh"
cd "$REPO_ROOT"

RUNS=${RUNS:-15}
[ "${QUICK:-0}" = 1 ] && RUNS=3
RS_PORT=${RS_PORT:-8793}
JS_PORT=${JS_PORT:-8794}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
workerd_prepare "$work"
for side in rs js; do
  port=$([ "$side" = rs ] && echo "$RS_PORT" || echo "$JS_PORT")
  workerd_config "$work" "$side.capnp" "$side:$port"
  workerd_sign "$side" "$port"
done
log "workerd serve ($WORKERD), one Worker per process, $RUNS runs per side"

once() { # side: "startup first warm" in ms
  local side=$1 port
  port=$([ "$side" = rs ] && echo "$RS_PORT" || echo "$JS_PORT")
  "${client_cpu[@]}" python3 benches/worker/cold-start.py "$port" "${body[$side]}" "${signature[$side]}" \
    "$work/$side.log" -- "${server_cpu[@]}" "$WORKERD" serve "$work/$side.capnp" \
    || { tail -20 "$work/$side.log" >&2; die "$side: cold start failed"; }
}
once rs >/dev/null; once js >/dev/null
figures_rs=(); figures_js=()
for run in $(seq 1 "$RUNS"); do
  if [ $((run % 2)) = 1 ]; then
    figures_rs+=("$(once rs)"); figures_js+=("$(once js)")
  else
    figures_js+=("$(once js)"); figures_rs+=("$(once rs)")
  fi
  log "run $run (ms: startup, first request, warm request): Rust ${figures_rs[-1]}; JS ${figures_js[-1]}"
done
python3 - "$(printf '%s\n' "${figures_rs[@]}")" "$(printf '%s\n' "${figures_js[@]}")" <<'PY'
import statistics, sys
rs = [[float(x) for x in line.split()] for line in sys.argv[1].splitlines()]
js = [[float(x) for x in line.split()] for line in sys.argv[2].splitlines()]
print(f"{len(rs)} runs per side; medians in ms (Rust / JS, ratio Rust/JS):")
for index, what in enumerate(["startup (process start -> socket accepts)", "first request (fresh isolate)", "second request (warm)"]):
    a = statistics.median(run[index] for run in rs)
    b = statistics.median(run[index] for run in js)
    print(f"  {what:<42} {a:9.2f} / {b:9.2f}   {a / b:.2f}")
a = statistics.median(run[0] + run[1] for run in rs)
b = statistics.median(run[0] + run[1] for run in js)
print(f"  {'startup + first request':<42} {a:9.2f} / {b:9.2f}   {a / b:.2f}")
PY
