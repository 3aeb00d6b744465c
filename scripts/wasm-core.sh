#!/usr/bin/env bash
# Builds the core crate for wasm32-unknown-unknown (no default features: no tower, no tokio), the
# proof that the Cloudflare Worker can use it unchanged. Prints the artifact and its size.
#   scripts/wasm-core.sh
source "$(dirname "$0")/lib/common.sh"
source "$REPO_ROOT/scripts/lib/wasm-toolchain.sh"

setup_wasm_toolchain
log "building twiml-fallback for $WASM_TARGET with $WASM_TOOLCHAIN"
cd "$REPO_ROOT"
"${WASM_CARGO[@]}" build --release --locked --target "$WASM_TARGET" --target-dir target/wasm \
  -p twiml-fallback --no-default-features
rlib=$(ls -t target/wasm/$WASM_TARGET/release/libtwiml_fallback-*.rlib 2>/dev/null | head -n 1 || true)
[ -z "$rlib" ] && rlib=target/wasm/$WASM_TARGET/release/libtwiml_fallback.rlib
[ -f "$rlib" ] || die "no wasm32 artifact found"
log "ok: $rlib ($(stat -c %s "$rlib") bytes)"
