# Shared by the A/B throughput benches (layer-load.sh, worker-load.sh). Source it after
# scripts/lib/common.sh; the bench defines `run SIDE`, printing one wrk requests/s figure.

# PIN=1 (and two CPUs, and taskset): servers on CPU 0, the load generator on CPU 1.
server_cpu=(); client_cpu=()
if [ "${PIN:-0}" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  server_cpu=(taskset -c 0); client_cpu=(taskset -c 1)
fi

# ab_rounds A B LABEL_A LABEL_B TARGET: ROUNDS rounds of `run A` and `run B`, alternating which
# goes first, then the medians and the median of the per-round ratios A/B against TARGET.
ab_rounds() {
  local a=$1 b=$2 label_a=$3 label_b=$4 target=$5 round
  local figures_a=() figures_b=()
  for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then
      figures_a+=("$(run "$a")"); figures_b+=("$(run "$b")")
    else
      figures_b+=("$(run "$b")"); figures_a+=("$(run "$a")")
    fi
    log "round $round: $label_a ${figures_a[-1]} req/s, $label_b ${figures_b[-1]} req/s"
  done
  python3 - "${figures_a[*]}" "${figures_b[*]}" "$label_a" "$label_b" "$target" <<'PY'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
label_a, label_b, target = sys.argv[3], sys.argv[4], sys.argv[5]
ratios = [x / y for x, y in zip(a, b)]
print(f"median {label_a}: {statistics.median(a):.0f} req/s; {label_b}: {statistics.median(b):.0f} req/s")
print(f"per-round ratios: {' '.join(f'{r:.3f}' for r in ratios)}; median ratio {statistics.median(ratios):.3f} (target >= {target})")
PY
}
