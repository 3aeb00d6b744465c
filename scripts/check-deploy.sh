#!/usr/bin/env bash
# Checks the deployment examples: the container image (scripts/check-dockerfile.sh: Dockerfile and
# .dockerignore) and the systemd unit deploy/twiml-fallback.service.
#
#   scripts/check-deploy.sh [--static]      (--static: never build the image, even where an engine works)
#
# The unit is checked:
#   - statically: DynamicUser=yes; EnvironmentFile=/etc/twiml-fallback/env (required, not "-"
#     optional: a missing token file must stop the start); a Restart= policy; the hardening options
#     (NoNewPrivileges, an empty CapabilityBoundingSet, ProtectSystem=strict, ProtectHome,
#     PrivateTmp, PrivateDevices, RestrictAddressFamilies, SystemCallFilter=@system-service,
#     MemoryDenyWriteExecute); ExecStart runs /usr/local/bin/twiml-fallback serve;
#   - by running its ExecStart here with the binary built here (on a free loopback port instead of
#     its own): it must start, pass `twiml-fallback healthcheck`, and stop with exit 0 on the
#     unit's KillSignal (SIGTERM);
#   - with `systemd-analyze verify` when systemd-analyze is available (any message fails, unknown
#     keys included), and `systemd-analyze security --offline=yes --threshold=20` when this
#     systemd has --offline (250 and later): the exposure score must stay at most 2.0 (the
#     threshold is in tenths), "OK" or better.
#     Without systemd-analyze this step is skipped, and the script says so.
# Exits non-zero naming every problem. TWIML_FALLBACK_BIN=PATH uses that binary instead of building
# target/debug/twiml-fallback.
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"

case "${1:-}" in
  ""|--static) ;;
  *) printf 'error: unknown argument %s\nhint: scripts/check-deploy.sh [--static]\n' "$1" >&2; exit 2 ;;
esac

if [ -z "${TWIML_FALLBACK_BIN:-}" ]; then
  log "cargo build --locked -p twiml-fallback-cli (the binary the examples run)"
  cargo build --locked --quiet -p twiml-fallback-cli --bin twiml-fallback
  export TWIML_FALLBACK_BIN="$REPO_ROOT/target/debug/twiml-fallback"
fi
BIN=$TWIML_FALLBACK_BIN
[ -x "$BIN" ] || die "no twiml-fallback binary at $BIN"

scripts/check-dockerfile.sh "$@"

UNIT=${UNIT:-deploy/twiml-fallback.service}
log "$UNIT: static checks"
[ -f "$UNIT" ] || die "no systemd unit at $UNIT"
problems=0
problem() { printf '  ✗ %s\n' "$*" >&2; problems=$((problems + 1)); }
ok() { printf '  ✓ %s\n' "$*" >&2; }
# The value of KEY in the unit (the last assignment wins, as in systemd), or nothing.
value() { sed -n "s/^[[:space:]]*$1=//p" "$UNIT" | tail -n 1; }
has() { grep -Eq "^[[:space:]]*$1=$2[[:space:]]*$" "$UNIT"; }

has DynamicUser 'yes' || problem "DynamicUser=yes is missing: the service would need an account of its own, or run as root"
if has EnvironmentFile '/etc/twiml-fallback/env'; then
  ok "the token comes from EnvironmentFile=/etc/twiml-fallback/env"
else
  problem "EnvironmentFile=/etc/twiml-fallback/env is missing (or optional with '-'): the token belongs there, root-only, not in the unit"
fi
case "$(value Restart)" in
  on-failure|always|on-abnormal) ok "Restart=$(value Restart), RestartSec=$(value RestartSec)" ;;
  *) problem "no Restart= policy (on-failure): a crashed fallback endpoint would stay down" ;;
esac
for option in 'NoNewPrivileges yes' 'CapabilityBoundingSet ' 'ProtectSystem strict' 'ProtectHome yes' \
              'PrivateTmp yes' 'PrivateDevices yes' 'MemoryDenyWriteExecute yes' 'SystemCallFilter @system-service'; do
  key=${option%% *}
  expected=${option#* }
  has "$key" "$expected" || problem "hardening: $key=$expected is missing"
done
[ -n "$(value RestrictAddressFamilies)" ] || problem "hardening: RestrictAddressFamilies= is missing"
grep -v '^[[:space:]]*[#;]' "$UNIT" | grep -Eq 'TWILIO_AUTH_TOKEN|--auth-token' \
  && problem "the token must not be in the unit (Environment= or --auth-token are world-readable): use the EnvironmentFile"
exec_start=$(value ExecStart)
read -ra command <<<"$exec_start"
if [ "${command[0]:-}" != /usr/local/bin/twiml-fallback ] || [ "${command[1]:-}" != serve ]; then
  problem "ExecStart must run /usr/local/bin/twiml-fallback serve (got: $exec_start)"
fi
inbox=""
for ((i = 0; i < ${#command[@]}; i++)); do
  case "${command[$i]}" in
    --inbox) inbox=${command[$((i + 1))]:-} ;;
    --inbox=*) inbox=${command[$i]#--inbox=} ;;
  esac
done
state=$(value StateDirectory)
if [[ " ${command[*]} " == *" --no-inbox "* ]]; then
  ok "the service keeps no inbox (--no-inbox)"
elif [ -z "$inbox" ]; then
  problem "ExecStart has no --inbox: with DynamicUser and no home, serve's default inbox path is not writable"
elif [ -z "$state" ] || [[ "$inbox" != "/var/lib/$state/"* ]]; then
  problem "the inbox $inbox is not under the StateDirectory (/var/lib/${state:-?}): ProtectSystem=strict makes it unwritable, and it would not be kept"
else
  ok "the inbox $inbox is in StateDirectory=$state (writable, kept across restarts)"
fi
kill_signal=$(value KillSignal)
case "${kill_signal:-SIGTERM}" in SIGTERM|TERM|15) ;; *) problem "KillSignal=$kill_signal: serve stops gracefully on SIGTERM" ;; esac

if [ "${command[1]:-}" = serve ]; then
  log "$UNIT: its ExecStart, run here: ${command[*]}"
  inbox_dir=$(mktemp -d)
  run=("$BIN" serve)
  for ((i = 2; i < ${#command[@]}; i++)); do
    case "${command[$i]}" in
      --addr) run+=(--addr 127.0.0.1:0); i=$((i + 1)) ;;
      --addr=*) run+=(--addr=127.0.0.1:0) ;;
      # The StateDirectory systemd would create: a temporary folder here.
      --inbox) run+=(--inbox "$inbox_dir/inbox.sqlite3"); i=$((i + 1)) ;;
      --inbox=*) run+=("--inbox=$inbox_dir/inbox.sqlite3") ;;
      *) run+=("${command[$i]}") ;;
    esac
  done
  serve_log=$(mktemp)
  TWILIO_AUTH_TOKEN=check-deploy-token "${run[@]}" >/dev/null 2>"$serve_log" &
  serve_pid=$!
  base=""
  for _ in $(seq 1 200); do
    base=$(grep -o 'listening on http://[^ ]*' "$serve_log" | head -n 1 | sed 's/listening on //' || true)
    [ -n "$base" ] && break
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$base" ]; then
    problem "the unit's command did not start: $(cat "$serve_log")"
  elif "$BIN" healthcheck --url "$base/healthz" >/dev/null; then
    ok "it starts and answers its health check ($base/healthz)"
  else
    problem "the unit's command started but fails its health check at $base/healthz"
  fi
  kill -TERM "$serve_pid" 2>/dev/null || true
  code=0
  wait "$serve_pid" || code=$?
  if [ -n "$base" ]; then
    [ "$code" = 0 ] && ok "it stops with exit 0 on SIGTERM" || problem "it exited $code on SIGTERM, not 0"
  fi
  rm -f "$serve_log"
  rm -rf "$inbox_dir"
fi

if command -v systemd-analyze >/dev/null 2>&1; then
  log "$UNIT: systemd-analyze verify ($(systemd-analyze --version | head -n 1))"
  scratch=$(mktemp -d)
  # verify checks that ExecStart's binary exists: point it at the one built here.
  sed "s|^ExecStart=/usr/local/bin/twiml-fallback|ExecStart=$BIN|" "$UNIT" >"$scratch/twiml-fallback.service"
  if output=$(systemd-analyze verify "$scratch/twiml-fallback.service" 2>&1) && [ -z "$output" ]; then
    ok "systemd-analyze verify: no message"
  else
    problem "systemd-analyze verify: ${output:-exit status non-zero}"
  fi
  if systemd-analyze security --help 2>&1 | grep -q -- '--offline'; then
    security=$(systemd-analyze security --offline=yes --threshold=20 "$scratch/twiml-fallback.service" 2>&1) \
      && ok "systemd-analyze security: $(grep -o 'Overall exposure level.*' <<<"$security")" \
      || problem "systemd-analyze security: exposure over 2.0: $(grep -o 'Overall exposure level.*' <<<"$security")"
  else
    log "this systemd-analyze has no security --offline (systemd < 250): exposure score not checked"
  fi
  rm -rf "$scratch"
else
  log "systemd-analyze is not available here: the unit was checked statically and its command run, not verified by systemd"
fi

((problems == 0)) || die "$UNIT: $problems problem(s), listed above"
log "deployment examples checked"
