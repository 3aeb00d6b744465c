# Shared by the project's scripts: strict mode, logging, the tool cache outside the repository.
# Source it; don't run it.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Everything installed for builds and tests lives here, keyed by version, never in the repo.
TOOL_CACHE=${TWIML_FALLBACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/twiml-fallback}
mkdir -p "$TOOL_CACHE"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_ci() { [ "${CI:-}" = "true" ] || [ "${CI:-}" = "1" ]; }

# Runs apt-get as root or through sudo (non-interactive); fails clearly when neither is possible.
apt_install() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  ((${#missing[@]})) || return 0
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install: ${missing[*]}"
    sudo=(sudo)
  fi
  log "apt-get install ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# cargo install for host tools: rustup's stable toolchain when there is one, else Debian's cargo.
host_cargo() {
  if command -v rustup >/dev/null 2>&1 && rustup which cargo >/dev/null 2>&1; then
    env -u RUSTC -u RUSTC_BOOTSTRAP -u CARGO_UNSTABLE_BUILD_STD cargo "$@"
  else
    env RUSTC=/usr/bin/rustc /usr/bin/cargo "$@"
  fi
}

install_cargo_tool() { # crate version binary
  local root="$TOOL_CACHE/cargo-tools/$1-$2"
  if [ ! -x "$root/bin/$3" ]; then
    log "cargo install $1 $2 (cached in $root; several minutes the first time)"
    mkdir -p "$TOOL_CACHE/logs"
    # --locked first; wasm-bindgen-cli's lock pins a webpki-roots the registry may lack, so retry unlocked.
    host_cargo install --quiet --root "$root" --locked "$1" --version "$2" >"$TOOL_CACHE/logs/install-$1.log" 2>&1 \
      || host_cargo install --quiet --root "$root" "$1" --version "$2" >>"$TOOL_CACHE/logs/install-$1.log" 2>&1 \
      || { tail -30 "$TOOL_CACHE/logs/install-$1.log" >&2; die "cargo install $1 $2 failed"; }
  fi
  export PATH="$root/bin:$PATH"
}
