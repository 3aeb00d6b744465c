#!/usr/bin/env bash
# Build, run and deploy the Cloudflare Worker (workers/edge-fallback).
#
#   scripts/worker.sh setup                   install the pinned toolchain into the tool cache
#   scripts/worker.sh build                   build the bundle (workers/edge-fallback/build/); a no-op when fresh
#   scripts/worker.sh dev [--port 8788] [--config FILE] [--var NAME=VALUE]... [-- WRANGLER-ARGS]
#                                             run it locally under workerd (wrangler dev --local);
#                                             `dev --help` says more
#   scripts/worker.sh deploy --dry-run        bundle for upload without uploading (sizes printed)
#   scripts/worker.sh deploy                  build and deploy (wrangler login / CLOUDFLARE_API_TOKEN)
#   scripts/worker.sh wrangler ARGS...        the pinned wrangler, from the repository root
#                                             (e.g. `secret put TWILIO_AUTH_TOKEN`,
#                                             `secret put TWIML_FALLBACK_ADMIN_TOKEN`, `tail`, `login`)
#   scripts/worker.sh env                     print the toolchain's paths (to set TWIML_FALLBACK_WRANGLER etc. by hand)
#
# On a laptop with `rustup target add wasm32-unknown-unknown` this is the standard worker-build
# flow. Where rustup cannot add the target, Debian's rustc-web builds std from source for wasm32
# (lib/wasm-toolchain.sh). Tools are pinned and cached by version in ~/.cache/twiml-fallback.
source "$(dirname "$0")/lib/common.sh"
source "$REPO_ROOT/scripts/lib/wasm-toolchain.sh"
source "$REPO_ROOT/scripts/lib/worker-toolchain.sh"

CRATE="$REPO_ROOT/workers/edge-fallback"
BUNDLE="$CRATE/build"
export CARGO_TARGET_DIR="$REPO_ROOT/target/worker"

# The bundle: index.js (entry.mjs, the main module), shim.mjs (worker-build's JS) and index_bg.wasm.
ENTRY="$CRATE/entry.mjs"

# Whether worker-build's output is older than anything it is built from.
bundle_is_stale() {
  [ -f "$BUNDLE/shim.mjs" ] && [ -f "$BUNDLE/index_bg.wasm" ] || return 0
  local newer
  newer=$(find "$CRATE/src" "$CRATE/Cargo.toml" "$CRATE/Cargo.lock" "$REPO_ROOT/crates/twiml-fallback/src" \
               "$REPO_ROOT/crates/twiml-fallback/Cargo.toml" -newer "$BUNDLE/index_bg.wasm" -print -quit 2>/dev/null)
  [ -n "$newer" ]
}

sizes() {
  local file
  for file in "$BUNDLE/index_bg.wasm" "$BUNDLE/shim.mjs" "$BUNDLE/index.js"; do
    printf '  %-28s %8d bytes, gzip -9 %7d bytes\n' "${file#"$REPO_ROOT"/}" "$(stat -c %s "$file")" "$(gzip -9 -c "$file" | wc -c)"
  done
}

build() {
  if [ "${1:-}" != --force ] && ! bundle_is_stale; then
    install_entry
    log "worker bundle is up to date ($BUNDLE)"
    return 0
  fi
  setup_worker_toolchain
  log "worker-build --release ($WASM_TOOLCHAIN)"
  (cd "$CRATE" && env "${WORKER_BUILD_ENV[@]}" "$WORKER_BUILD" --release) || die "worker build failed"
  [ -f "$BUNDLE/index.js" ] && [ -f "$BUNDLE/index_bg.wasm" ] || die "worker-build produced no bundle in $BUNDLE"
  # worker-build's main module becomes shim.mjs, imported by ours (entry.mjs: a plain fetch
  # handler, where worker-build's is a class workerd constructs per request). Its worker/shim.mjs
  # is an alias of the old main for older wrangler.toml files; ours names index.js.
  mv "$BUNDLE/index.js" "$BUNDLE/shim.mjs"
  rm -rf "$BUNDLE/worker"
  strip_names "$BUNDLE/index_bg.wasm"
  install_entry
  sizes
}

# Our main module over worker-build's, copied whenever it changed.
install_entry() {
  cmp -s "$ENTRY" "$BUNDLE/index.js" || cp "$ENTRY" "$BUNDLE/index.js"
}

# worker-build keeps the function-name section (it passes --debuginfo to wasm-opt after the
# crate's own wasm-opt arguments): 25 KB gzip of names. A panic's message still names its file and
# line (and the Worker must not panic); only a trace's frames show function indices instead.
strip_names() {
  local wasm=$1 features=()
  for feature in mutable-globals sign-ext nontrapping-float-to-int bulk-memory multivalue reference-types exception-handling; do
    features+=("--enable-$feature")
  done
  "$WASM_OPT_BIN" "${features[@]}" --strip-debug "$wasm" -o "$wasm.stripped" || die "wasm-opt --strip-debug failed"
  mv "$wasm.stripped" "$wasm"
}

# The Worker's dev server port: not serve's 8787, so both can run side by side.
DEV_PORT=8788

dev_usage() {
  cat <<USAGE
Usage: scripts/worker.sh dev [--port $DEV_PORT] [--config FILE] [--var NAME=VALUE]... [-- WRANGLER-ARGS...]

Runs the built Worker locally under workerd (wrangler dev --local) on http://127.0.0.1:PORT, with
the outage inbox's Durable Object (SQLite; it keeps the incidents too) under
target/worker-dev-state (kept across runs: delete the directory to start empty), rebuilding the
bundle first when its sources changed. Alert email is not sent: the ALERT_EMAIL binding writes
each message to an .eml file under .wrangler/tmp/ and logs "Email: PATH".

  --port PORT          the port (default $DEV_PORT; twiml-fallback serve's default is 8787)
  --config FILE        the configuration document (TOML or JSON), as FALLBACK_CONFIG
                       (else wrangler.toml's FALLBACK_CONFIG)
  --var NAME=VALUE     one of the per-field variables, repeatable:
$(fallback_variables | sed 's/^/                         /')
                       (also read from the environment; --var wins)
  -- WRANGLER-ARGS     passed to wrangler dev as they are (e.g. --inspector-port 9230)

Secrets come from the environment — TWILIO_AUTH_TOKEN, TWILIO_AUTH_TOKEN_SECONDARY,
TWIML_FALLBACK_ADMIN_TOKEN for the admin API (/_twiml-fallback/inbox, as Authorization: Bearer
TOKEN; without it those paths answer 404), and TWILIO_API_KEY + TWILIO_API_SECRET for replay's
replies (else AccountSid + TWILIO_AUTH_TOKEN) — or from .dev.vars (git-ignored; see
.dev.vars.example), never from the command line, where ps shows them. TWILIO_API_BASE (where
replay sends replies; default https://api.twilio.com) is passed from the environment too.
They reach wrangler, with FALLBACK_CONFIG and the variables, through a private env file
(--env-file; mode 0600, in a private temporary directory removed when dev stops), so no command
line holds them (wrangler loads the file into its environment, which its workerd inherits: like
the environment you passed them in, readable by your user and root only). A --var value is on
this script's own command line: put a secret one (an alert webhook URL, a PagerDuty routing key)
in the environment or the --config file instead.

Examples:
  TWILIO_AUTH_TOKEN=... scripts/worker.sh dev
  TWILIO_AUTH_TOKEN=... TWIML_FALLBACK_ADMIN_TOKEN=... scripts/worker.sh dev
      then: curl -H "Authorization: Bearer \$TWIML_FALLBACK_ADMIN_TOKEN" http://127.0.0.1:$DEV_PORT/_twiml-fallback/inbox
  scripts/worker.sh dev --config fallback.toml --var FALLBACK_VOICE_SAY='Back in five minutes.'
  FALLBACK_ALERT_WEBHOOK_URL=https://hooks.example.com/... scripts/worker.sh dev --port 9000
USAGE
}

# The per-field variables the core reads (its VARIABLES table), from the source itself.
fallback_variables() {
  sed -n '/^pub const VARIABLES/,/^];/p' "$REPO_ROOT/crates/twiml-fallback/src/config/variables.rs" \
    | grep -o '"FALLBACK_[A-Z_]*"' | tr -d '"'
}

usage_error() {
  printf 'error: %s\nhint: %s\n' "$1" "$2" >&2
  exit 2
}

# NAME=VALUE as an env-file line that wrangler (dotenv, then dotenv-expand) reads back exactly:
# quoted with a quote character the value does not hold (newlines are fine inside), every $
# escaped as \$ (wrangler expands $NAME in env files and turns \$ back into $).
env_file_line() {
  local name=$1 value=$2 quote
  if [[ $value != *"'"* ]]; then
    quote="'"
  elif [[ $value != *'`'* ]]; then
    quote='`'
  else
    die "$name holds both ' and \` characters, which wrangler's env files cannot carry; put it in wrangler.toml's [vars] instead"
  fi
  [[ $value == *'\' ]] && die "$name ends with a backslash, which wrangler's env files cannot carry; put it in wrangler.toml's [vars] instead"
  printf '%s=%s%s%s\n' "$name" "$quote" "${value//\$/\\\$}" "$quote"
}

dev() {
  local port=$DEV_PORT config_file="" extra=() names=() values=() name value
  while [ $# -gt 0 ]; do
    case "$1" in
      -h|--help) dev_usage; return 0 ;;
      --port)
        [ $# -ge 2 ] || usage_error "--port needs a value" "e.g. --port $DEV_PORT"
        port=$2; shift 2 ;;
      --port=*) port=${1#*=}; shift ;;
      --config)
        [ $# -ge 2 ] || usage_error "--config needs a file" "e.g. --config fallback.toml"
        config_file=$2; shift 2 ;;
      --config=*) config_file=${1#*=}; shift ;;
      --var)
        [ $# -ge 2 ] || usage_error "--var needs NAME=VALUE" "e.g. --var FALLBACK_VOICE_SAY='Back soon.'"
        [[ $2 == *=* ]] || usage_error "--var $2: expected NAME=VALUE" "e.g. --var FALLBACK_VOICE_SAY='Back soon.'"
        names+=("${2%%=*}")
        values+=("${2#*=}")
        shift 2 ;;
      --) shift; extra=("$@"); break ;;
      *) usage_error "dev: unknown argument $1" "scripts/worker.sh dev --help" ;;
    esac
  done
  [[ $port =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] \
    || usage_error "--port $port is not a port number" "e.g. --port $DEV_PORT"
  local known
  known=$(fallback_variables)
  for name in "${names[@]}"; do
    case "$name" in
      TWILIO_AUTH_TOKEN|TWILIO_AUTH_TOKEN_SECONDARY|TWIML_FALLBACK_ADMIN_TOKEN|TWILIO_API_KEY|TWILIO_API_SECRET)
        usage_error "--var $name: a token on the command line is visible in ps" \
          "pass it in the environment: $name=... scripts/worker.sh dev (or put it in .dev.vars)" ;;
      FALLBACK_CONFIG)
        usage_error "--var FALLBACK_CONFIG: the document comes from a file" "--config FILE" ;;
    esac
    grep -qx "$name" <<<"$known" \
      || usage_error "--var $name: not one of the per-field variables" "one of: $(paste -sd ' ' <<<"$known")"
  done
  local config_text=""
  if [ -n "$config_file" ]; then
    [ -f "$config_file" ] && [ -r "$config_file" ] \
      || usage_error "--config $config_file: no such readable file" "a TOML or JSON configuration document"
    config_text=$(cat "$config_file"; printf x)
    config_text=${config_text%x}
  fi

  build
  setup_worker_toolchain
  wrangler_offline

  # The private env file: secrets, the document and the variables, never on a command line.
  local private
  private=$(mktemp -d "${TMPDIR:-/tmp}/twiml-fallback-dev.XXXXXXXX")
  # shellcheck disable=SC2064  # expand now: the trap must remove this directory.
  trap "rm -rf '$private'" EXIT
  chmod 700 "$private"
  local env_file="$private/dev.env" passed=()
  (umask 077 && : >"$env_file")
  chmod 600 "$env_file"
  if [ -f "$REPO_ROOT/.dev.vars" ]; then
    # wrangler reads no .dev.vars once given an env file: carry it over (first, so the rest wins),
    # its $ escaped so it means what it meant in .dev.vars (where wrangler expands nothing).
    { sed 's/\$/\\$/g' "$REPO_ROOT/.dev.vars"; echo; } >>"$env_file"
    passed+=(".dev.vars")
  fi
  for name in TWILIO_AUTH_TOKEN TWILIO_AUTH_TOKEN_SECONDARY TWIML_FALLBACK_ADMIN_TOKEN TWILIO_API_KEY TWILIO_API_SECRET \
              TWILIO_API_BASE; do
    if [ -n "${!name:-}" ]; then
      env_file_line "$name" "${!name}" >>"$env_file"
      passed+=("$name")
    fi
  done
  if [ -n "$config_file" ]; then
    env_file_line FALLBACK_CONFIG "$config_text" >>"$env_file"
    passed+=("FALLBACK_CONFIG ($config_file)")
  fi
  local index
  for name in $known; do
    # --var NAME=VALUE (the last one given) wins over the environment.
    value=${!name:-}
    for index in "${!names[@]}"; do
      if [ "${names[$index]}" = "$name" ]; then
        value=${values[$index]}
      fi
    done
    if [ -n "$value" ]; then
      env_file_line "$name" "$value" >>"$env_file"
      passed+=("$name")
    fi
  done

  log "wrangler dev --local on http://127.0.0.1:$port (workerd; Ctrl-C stops it)"
  if ((${#passed[@]})); then
    local joined
    joined=$(printf '%s, ' "${passed[@]}")
    log "through a private env file (mode 0600, removed on exit): ${joined%, }"
  fi
  cd "$REPO_ROOT"
  # --no-bundle: serve the built bundle as it is, without wrangler's esbuild pass (wrangler still
  # runs the [build] command, a no-op on a fresh bundle). Not exec'd: the private directory is
  # removed when wrangler stops, however it stops.
  CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV=true CLOUDFLARE_INCLUDE_PROCESS_ENV=false \
    "$WRANGLER" dev --local --ip 127.0.0.1 --port "$port" --persist-to "$REPO_ROOT/target/worker-dev-state" \
    --no-bundle --env-file "$env_file" "${extra[@]}" <&0 &
  local child=$! status=0
  trap 'kill -TERM "$child" 2>/dev/null || true' INT TERM
  wait "$child" || status=$?
  # A signal interrupts `wait`: wait again until wrangler has really stopped.
  while kill -0 "$child" 2>/dev/null; do
    status=0
    wait "$child" || status=$?
  done
  return "$status"
}

deploy() {
  local dry_run=0 arg
  for arg; do [ "$arg" = --dry-run ] && dry_run=1; done
  build
  setup_worker_toolchain
  cd "$REPO_ROOT"
  if [ "$dry_run" = 1 ]; then
    wrangler_offline
    local outdir="$REPO_ROOT/target/worker-dist"
    rm -rf "$outdir"
    local passed=()
    for arg; do [ "$arg" = --dry-run ] || passed+=("$arg"); done
    "$WRANGLER" deploy --dry-run --outdir "$outdir" --no-bundle "${passed[@]}" 2>&1 | grep -Ev '^\s*$' || true
    log "dry run: the upload would be"
    local file
    for file in "$outdir"/*; do
      printf '  %-28s %8d bytes, gzip -9 %7d bytes\n' "${file#"$REPO_ROOT"/}" "$(stat -c %s "$file")" "$(gzip -9 -c "$file" | wc -c)"
    done
    return 0
  else
    exec "$WRANGLER" deploy --no-bundle "$@"
  fi
}

case "${1:-}" in
  setup) setup_worker_toolchain; log "worker toolchain ready: $WORKER_BUILD, $WASM_BINDGEN_BIN, $WRANGLER" ;;
  build) shift; build "$@" ;;
  dev) shift; dev "$@" ;;
  deploy) shift; deploy "$@" ;;
  wrangler) shift; setup_worker_toolchain; cd "$REPO_ROOT"; exec "$WRANGLER" "$@" ;;
  env)
    setup_worker_toolchain >&2
    printf 'WRANGLER=%s\nWORKERD=%s\nWORKER_BUNDLE=%s\nNODE=%s\n' "$WRANGLER" "$WORKERD" "$BUNDLE" "$(command -v node)"
    ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
