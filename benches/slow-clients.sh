#!/usr/bin/env bash
# Slow clients against `twiml-fallback serve` (issue 14, item 12): connections that send half a
# request line and stall, signed requests whose body drips a byte at a time, and — while they are
# open — signed requests sent whole, each answer checked (200, valid voice TwiML) and timed. Prints
# the signed requests' latency (p50, p99, max, how many over 1 s), how long the slow connections
# stayed open (each must close within serve's header / body timeout + MARGIN_MS) and the limit
# lines serve logged. Everything on 127.0.0.1; serve on a free port.
#   benches/slow-clients.sh                          # 3,000 + 300 dripping at 1 byte/s, serve's default timeouts (5 s, 10 s)
#   SHORT=1 PROFILE=debug benches/slow-clients.sh    # the CI form: 300 + 30, 1 s / 2 s timeouts, the test build
#   HALF_LINES=5000 DRIPS=500 CONCURRENCY=8 benches/slow-clients.sh
# Raises the open-file limit (ulimit -n) to what the connections need, within the hard limit.
# Exit status 1 when a signed answer was wrong or a slow connection outlived its timeout.
source "$(dirname "$0")/../scripts/lib/common.sh"
cd "$REPO_ROOT"

if [ -n "${SHORT:-}" ]; then
  HALF_LINES=${HALF_LINES:-300}; DRIPS=${DRIPS:-30}; DRIP_EVERY_MS=${DRIP_EVERY_MS:-200}
  HEADER_TIMEOUT_MS=${HEADER_TIMEOUT_MS:-1000}; BODY_TIMEOUT_MS=${BODY_TIMEOUT_MS:-2000}
fi
HALF_LINES=${HALF_LINES:-3000}
DRIPS=${DRIPS:-300}
DRIP_EVERY_MS=${DRIP_EVERY_MS:-1000}
HEADER_TIMEOUT_MS=${HEADER_TIMEOUT_MS:-5000}
BODY_TIMEOUT_MS=${BODY_TIMEOUT_MS:-10000}
CONCURRENCY=${CONCURRENCY:-4}
MARGIN_MS=${MARGIN_MS:-2000}

PROFILE=${PROFILE:-release}
profile_flag=(--release); [ "$PROFILE" = debug ] && profile_flag=()
log "cargo build ${profile_flag[*]} (twiml-fallback, slow-clients)"
cargo build "${profile_flag[@]}" --locked -p twiml-fallback-cli --bin twiml-fallback
cargo build "${profile_flag[@]}" --locked -p twiml-fallback-e2e --bin slow-clients

# Both this script's client and serve hold every slow connection.
needed=$((HALF_LINES + DRIPS + CONCURRENCY + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$needed" ]; then
  hard=$(ulimit -Hn)
  [ "$hard" = unlimited ] || [ "$hard" -ge "$needed" ] \
    || die "$((HALF_LINES + DRIPS)) slow connections need $needed open files; the hard limit is $hard (lower HALF_LINES / DRIPS)"
  ulimit -n "$needed"
fi

log "slow-clients: $HALF_LINES half request lines, $DRIPS bodies dripping every $DRIP_EVERY_MS ms; serve --header-timeout-ms $HEADER_TIMEOUT_MS --body-timeout-ms $BODY_TIMEOUT_MS"
"target/$PROFILE/slow-clients" --serve "target/$PROFILE/twiml-fallback" \
  --half-lines "$HALF_LINES" --drips "$DRIPS" --drip-every-ms "$DRIP_EVERY_MS" \
  --header-timeout-ms "$HEADER_TIMEOUT_MS" --body-timeout-ms "$BODY_TIMEOUT_MS" \
  --concurrency "$CONCURRENCY" --margin-ms "$MARGIN_MS"
