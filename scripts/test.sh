#!/usr/bin/env bash
# Runs every test of the project: the README's test command, and exactly what .ci/run runs.
#   scripts/test.sh
# Installs what the tests need into the tool cache (outside the repository): the official Twilio
# libraries for the differential signature test.
source "$(dirname "$0")/lib/common.sh"
source "$REPO_ROOT/scripts/lib/reference-twilio.sh"
cd "$REPO_ROOT"

install_reference_twilio

log "cargo test (unit, integration, doc tests; signature differential against twilio-python and twilio-node)"
cargo test --workspace --locked

log "all tests passed"
