# Installs the official Twilio libraries (dev-only references for the differential signature test
# and the benchmark comparison) into the tool cache, and exports where they are:
#   TWILIO_REFERENCE_PYTHON        a python with `twilio` importable
#   TWILIO_REFERENCE_NODE_MODULES  a node_modules directory holding `twilio`
# Source it after lib/common.sh.
TWILIO_PYPI_VERSION=9.13.0
TWILIO_NPM_VERSION=6.2.0

install_reference_twilio() {
  local python_dir="$TOOL_CACHE/reference/python-twilio-$TWILIO_PYPI_VERSION"
  if ! "$python_dir/bin/python" -c 'import twilio, multidict' >/dev/null 2>&1; then
    command -v python3 >/dev/null 2>&1 || die "python3 is needed for the differential signature test"
    log "pip install twilio==$TWILIO_PYPI_VERSION (into $python_dir)"
    rm -rf "$python_dir"
    python3 -m venv "$python_dir"
    "$python_dir/bin/pip" install --quiet --disable-pip-version-check "twilio==$TWILIO_PYPI_VERSION" multidict
  fi
  export TWILIO_REFERENCE_PYTHON="$python_dir/bin/python"

  local node_dir="$TOOL_CACHE/reference/node-twilio-$TWILIO_NPM_VERSION"
  if [ "$(node -p "require('$node_dir/node_modules/twilio/package.json').version" 2>/dev/null)" != "$TWILIO_NPM_VERSION" ]; then
    command -v npm >/dev/null 2>&1 || die "node and npm are needed for the differential signature test"
    log "npm install twilio@$TWILIO_NPM_VERSION (into $node_dir)"
    rm -rf "$node_dir"
    mkdir -p "$node_dir"
    npm install --prefix "$node_dir" --no-audit --no-fund --no-package-lock --loglevel=error "twilio@$TWILIO_NPM_VERSION" >/dev/null
  fi
  export TWILIO_REFERENCE_NODE_MODULES="$node_dir/node_modules"
}
