#!/usr/bin/env bash
# Build, run and deploy the Cloudflare Worker (workers/edge-fallback).
#
#   scripts/worker.sh setup                   install the pinned toolchain into the tool cache
#   scripts/worker.sh build                   build the bundle (workers/edge-fallback/build/); a no-op when fresh
#   scripts/worker.sh dev [--port 8787]       run it locally under workerd (wrangler dev --local)
#   scripts/worker.sh deploy --dry-run        bundle for upload without uploading (sizes printed)
#   scripts/worker.sh deploy                  build and deploy (wrangler login / CLOUDFLARE_API_TOKEN)
#   scripts/worker.sh wrangler ARGS...        the pinned wrangler, from the repository root
#                                             (e.g. `secret put TWILIO_AUTH_TOKEN`, `tail`, `login`)
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

# Whether the bundle is older than anything it is built from.
bundle_is_stale() {
  [ -f "$BUNDLE/index.js" ] && [ -f "$BUNDLE/index_bg.wasm" ] || return 0
  local newer
  newer=$(find "$CRATE/src" "$CRATE/Cargo.toml" "$CRATE/Cargo.lock" "$REPO_ROOT/crates/twiml-fallback/src" \
               "$REPO_ROOT/crates/twiml-fallback/Cargo.toml" -newer "$BUNDLE/index_bg.wasm" -print -quit 2>/dev/null)
  [ -n "$newer" ]
}

sizes() {
  local file
  for file in "$BUNDLE/index_bg.wasm" "$BUNDLE/index.js"; do
    printf '  %-28s %8d bytes, gzip -9 %7d bytes\n' "${file#"$REPO_ROOT"/}" "$(stat -c %s "$file")" "$(gzip -9 -c "$file" | wc -c)"
  done
}

build() {
  if [ "${1:-}" != --force ] && ! bundle_is_stale; then
    log "worker bundle is up to date ($BUNDLE)"
    return 0
  fi
  setup_worker_toolchain
  log "worker-build --release ($WASM_TOOLCHAIN)"
  (cd "$CRATE" && env "${WORKER_BUILD_ENV[@]}" "$WORKER_BUILD" --release) || die "worker build failed"
  [ -f "$BUNDLE/index.js" ] && [ -f "$BUNDLE/index_bg.wasm" ] || die "worker-build produced no bundle in $BUNDLE"
  sizes
}

dev() {
  local port=8787
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) port="$2"; shift 2 ;;
      *) die "dev: unknown argument $1 (usage: scripts/worker.sh dev [--port 8787])" ;;
    esac
  done
  build
  setup_worker_toolchain
  wrangler_offline
  local vars=()
  # Secrets for local runs: from the environment when set (else .dev.vars, which wrangler reads itself).
  [ -n "${TWILIO_AUTH_TOKEN:-}" ] && vars+=(--var "TWILIO_AUTH_TOKEN:$TWILIO_AUTH_TOKEN")
  [ -n "${TWILIO_AUTH_TOKEN_SECONDARY:-}" ] && vars+=(--var "TWILIO_AUTH_TOKEN_SECONDARY:$TWILIO_AUTH_TOKEN_SECONDARY")
  log "wrangler dev --local on http://127.0.0.1:$port (workerd; Ctrl-C stops it)"
  cd "$REPO_ROOT"
  # --no-bundle: serve the built bundle as it is, without wrangler's esbuild pass (wrangler still
  # runs the [build] command, a no-op on a fresh bundle).
  exec "$WRANGLER" dev --local --ip 127.0.0.1 --port "$port" --persist-to "$REPO_ROOT/target/worker-dev-state" \
    --no-bundle "${vars[@]}"
}

deploy() {
  build
  setup_worker_toolchain
  cd "$REPO_ROOT"
  if [ "${1:-}" = --dry-run ]; then
    wrangler_offline
    local outdir="$REPO_ROOT/target/worker-dist"
    rm -rf "$outdir"
    "$WRANGLER" deploy --dry-run --outdir "$outdir" --no-bundle "${@:2}" 2>&1 | grep -Ev '^\s*$' || true
    log "dry run: the upload would be"
    local file
    for file in "$outdir"/*; do
      printf '  %-28s %8d bytes, gzip -9 %7d bytes\n' "${file#"$REPO_ROOT"/}" "$(stat -c %s "$file")" "$(gzip -9 -c "$file" | wc -c)"
    done
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
  *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
