#!/usr/bin/env bash
# The core's criterion benchmarks and the official `twilio` npm library on the same inputs, in the
# same run, as the table in BENCHMARKS.md.
#   benches/compare-twilio-node.sh            # full criterion run (~3 min)
#   QUICK=1 benches/compare-twilio-node.sh    # shorter measurement, noisier
source "$(dirname "$0")/../scripts/lib/common.sh"
source "$REPO_ROOT/scripts/lib/reference-twilio.sh"
cd "$REPO_ROOT"
install_reference_twilio

inputs=crates/twiml-fallback/benches/fixtures/bench-inputs.json
out=target/bench-compare
mkdir -p "$out"

log "twilio-node $TWILIO_NPM_VERSION ($(node --version))"
node benches/twilio-node/bench.mjs "$inputs" > "$out/twilio-node.json"

log "cargo bench -p twiml-fallback --bench core"
criterion_args=()
[ "${QUICK:-0}" = 1 ] && criterion_args=(--warm-up-time 1 --measurement-time 2)
cargo bench --locked -p twiml-fallback --bench core -- "${criterion_args[@]}" > "$out/criterion.log"

python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
node = json.load(open(os.path.join(out, "twilio-node.json")))
def ns(path):
    with open(os.path.join("target/criterion", path, "new/estimates.json")) as f:
        return json.load(f)["median"]["point_estimate"]
def fmt(v):
    return f"{v/1000:.2f} µs" if v >= 1000 else f"{v:.0f} ns"
rows = []
for name, key in [("sms-fallback-22-params", "sms_fallback"), ("design-vector-5-params", "design_vector")]:
    n = node[key]
    rows.append((f"verify, valid signature ({name})", ns(f"signature/verify_{name}"), n["validateRequest_valid_ns"], "≥ 10×"))
    rows.append((f"verify, forged signature ({name})", ns(f"signature/verify-forged_{name}"), n["validateRequest_forged_ns"], "≥ 10×"))
    rows.append((f"compute ({name})", ns(f"signature/compute_{name}"), n["getExpectedTwilioSignature_ns"], ""))
rows.append(("render messaging fallback (writer vs MessagingResponse.toString)", ns("writer/messaging-fallback"), node["messagingResponse_toString_ns"], "≤ 1 µs"))
print(f"twilio-node {node['twilio']} on Node {node['node']}; medians\n")
print("| measure | twiml-fallback | twilio-node | speed-up | target |")
print("|---|---|---|---|---|")
for label, ours, theirs, target in rows:
    print(f"| {label} | {fmt(ours)} | {fmt(theirs)} | {theirs/ours:.1f}× | {target} |")
print()
# Validation against its floor measured in the same run: quick-xml's bare event loop over the same
# bytes (absolute MB/s move with the machine; the ratio does not).
print("| validation | validator | quick-xml events alone (floor) | validator / floor speed | throughput | target |")
print("|---|---|---|---|---|---|")
entries = sorted(os.listdir("target/criterion/validate"))
for path in entries:
    if not path.startswith(("typical-", "ivr-")):
        continue
    kind = path.split("-")[0]
    size = int(path.split("-")[1].rstrip("B"))
    ours = ns(f"validate/{path}")
    floor_path = f"quick-xml-events-{kind}-{size}B"
    floor = ns(f"validate/{floor_path}") if floor_path in entries else None
    ratio = f"{floor / ours:.2f}×" if floor else "n/a"
    print(f"| {path} | {fmt(ours)} | {fmt(floor) if floor else 'n/a'} | {ratio} | {size / ours * 1e9 / 1e6:.0f} MB/s | ≥ 0.5× |")
for path in entries:
    if path == "report" or path.startswith(("typical-", "ivr-", "quick-xml-events-")):
        continue
    print(f"- validate/{path}: {fmt(ns(f'validate/{path}'))}")
print()
for path in ["edge_decide-signed-sms-fallback", "writer/voice-fallback-with-attributes"]:
    print(f"- {path}: {fmt(ns(path))}")
PY
