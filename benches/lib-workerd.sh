# Shared by the benches that run the edge Worker against the hand-written JS one under raw
# `workerd serve` (worker-load.sh, worker-cold-start.sh). Source it after scripts/lib/common.sh,
# from the repository root.
#
#   workerd_prepare WORK              builds the bundle, sets up the toolchain ($WORKERD), copies
#                                     both Workers into WORK (rs/: the bundle; js-worker.mjs)
#   workerd_config WORK FILE SIDE:PORT...
#                                     writes WORK/FILE: a workerd config serving each SIDE (rs:
#                                     ours, js: benches/worker/js-worker.mjs) on 127.0.0.1:PORT
#   workerd_sign SIDE PORT            sets body[SIDE] and signature[SIDE]: the shared bench
#                                     fixture's signed SMS fallback request for that socket's URL
#   workerd_expected ANSWER           whether ANSWER (body, then " HTTP CODE") is the expected
#                                     TwiML <Message> with a 200
WORKER_TOKEN=0123456789abcdef0123456789abcdef
declare -A body signature

workerd_prepare() {
  local work=$1
  scripts/worker.sh build
  source "$REPO_ROOT/scripts/lib/wasm-toolchain.sh"
  source "$REPO_ROOT/scripts/lib/worker-toolchain.sh"
  setup_worker_toolchain >/dev/null
  mkdir -p "$work/rs"
  cp workers/edge-fallback/build/index.js workers/edge-fallback/build/shim.mjs workers/edge-fallback/build/*.wasm "$work/rs/"
  cp benches/worker/js-worker.mjs "$work/js-worker.mjs"
}

workerd_config() {
  local work=$1 file=$2 spec side port services=() sockets=() definitions=()
  shift 2
  for spec; do
    side=${spec%%:*}; port=${spec#*:}
    services+=("(name = \"$side\", worker = .${side}Worker)")
    sockets+=("    (name = \"$side\", address = \"127.0.0.1:$port\", http = (), service = \"$side\"),")
    case "$side" in
      rs) definitions+=("$(workerd_rs_worker "$work")") ;;
      js) definitions+=("$(workerd_js_worker)") ;;
      *) die "workerd_config: unknown side $side (rs or js)" ;;
    esac
  done
  local joined
  joined=$(printf '%s, ' "${services[@]}")
  {
    printf 'using Workerd = import "/workerd/workerd.capnp";\n\n'
    printf 'const config :Workerd.Config = (\n  services = [ %s ],\n  sockets = [\n' "${joined%, }"
    printf '%s\n' "${sockets[@]}"
    printf '  ],\n);\n'
    printf '\n%s\n' "${definitions[@]}"
  } >"$work/$file"
}

# The Rust Worker's modules: its main module (index.js, first in name order), worker-build's
# shim.mjs and the wasm.
workerd_rs_worker() {
  local work=$1 file
  printf 'const rsWorker :Workerd.Worker = (\n  modules = [\n'
  for file in "$work"/rs/*; do
    file=${file##*/}
    case "$file" in
      *.wasm) printf '    (name = "%s", wasm = embed "rs/%s"),\n' "$file" "$file" ;;
      *.js|*.mjs) printf '    (name = "%s", esModule = embed "rs/%s"),\n' "$file" "$file" ;;
    esac
  done
  cat <<CAPNP
  ],
  compatibilityDate = "2026-11-01",
  bindings = [ (name = "TWILIO_AUTH_TOKEN", text = "$WORKER_TOKEN") ],
);
CAPNP
}

workerd_js_worker() {
  cat <<CAPNP
const jsWorker :Workerd.Worker = (
  modules = [ (name = "index.js", esModule = embed "js-worker.mjs") ],
  compatibilityDate = "2026-11-01",
  bindings = [
    (name = "TWILIO_AUTH_TOKEN", text = "$WORKER_TOKEN"),
    (name = "VOICE_SAY", text = "An application error has occurred. Please call back later."),
    (name = "SMS_MESSAGE", text = "We're sorry. We are currently experiencing difficulties. Please try again later."),
  ],
);
CAPNP
}

workerd_sign() {
  local signed
  mapfile -t signed < <(python3 benches/worker/sign.py "http://127.0.0.1:$2/twilio/sms" "$WORKER_TOKEN")
  body[$1]=${signed[0]}; signature[$1]=${signed[1]}
}

workerd_expected() {
  case "$1" in
    *"<Message>We&apos;re sorry."*"HTTP 200"|*"<Message>We're sorry."*"HTTP 200") return 0 ;;
    *) return 1 ;;
  esac
}
