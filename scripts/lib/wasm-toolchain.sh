# Finds or installs a Rust toolchain that can build for wasm32-unknown-unknown, and sets WASM_CARGO
# (an array: the command prefix to run cargo for wasm32). Source it after lib/common.sh.
#
# - With rustup and its wasm32 target installed (a normal laptop): plain `cargo`.
# - Otherwise (machines whose rustup cannot download targets): Debian's rustc-web + rust-web-src
#   build std from source for wasm32 (-Zbuild-std, allowed on stable by RUSTC_BOOTSTRAP=1, scoped
#   to this cargo invocation only), linked by lld-22.
WASM_TARGET=wasm32-unknown-unknown

setup_wasm_toolchain() {
  if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx "$WASM_TARGET"; then
    WASM_CARGO=(cargo)
    WASM_TOOLCHAIN="rustup ($(rustc --version))"
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    die "no $WASM_TARGET toolchain: run 'rustup target add $WASM_TARGET'"
  fi
  apt_install rustc-web cargo-web rust-web-src rust-web-llvm lld-22
  # rustc-web's default wasm linker is /usr/bin/rust-lld (package rust-web-llvm), a link to lld-22.
  [ -x /usr/bin/rust-lld ] || die "/usr/bin/rust-lld is missing (package lld-22)"
  WASM_CARGO=(env RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
              CARGO_UNSTABLE_BUILD_STD=std,panic_abort /usr/bin/cargo)
  WASM_TOOLCHAIN="Debian rustc-web ($(/usr/bin/rustc --version)) with -Zbuild-std"
}
