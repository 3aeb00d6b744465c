//! The command line: subcommands, options, and the examples in `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keep Twilio numbers answering when the app behind them fails.
#[derive(Debug, Parser)]
#[command(
    name = "twiml-fallback",
    version,
    about = "Keep Twilio numbers answering when the app behind them fails",
    after_help = "Examples:
  twiml-fallback serve                      # the fallback endpoint on 127.0.0.1:8787, defaults
  twiml-fallback check --channel messaging answer.xml     # validate TwiML as Twilio reads it
  twiml-fallback simulate --url https://app.example.com/sms \\
      --fallback-url https://fallback.example.com/sms
  twiml-fallback numbers audit              # which numbers have no fallback URL?
  twiml-fallback healthcheck                # exit 0 when serve answers GET /healthz
  twiml-fallback incidents                  # outages of your app, and who was told
  twiml-fallback alerts test                # a test notification through every sink

Exit status: 0 success, 1 a negative result, 2 usage, I/O or configuration errors."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve the fallback endpoint: the URL Twilio requests when a number's webhook fails
    Serve(ServeArgs),
    /// Validate TwiML files the way Twilio reads them
    Check(CheckArgs),
    /// Act as Twilio: call a webhook, fall back as Twilio would, show what the person gets
    Simulate(SimulateArgs),
    /// Audit and set your numbers' fallback URLs through Twilio's REST API
    Numbers(NumbersArgs),
    /// Exit 0 when a fallback endpoint answers its health check (a container's HEALTHCHECK)
    Healthcheck(HealthcheckArgs),
    /// List, show, dismiss and export what the fallback endpoint kept during an outage
    Inbox(InboxArgs),
    /// The endpoint's incidents (open first): each outage of a primary, its counts, who was told
    Incidents(IncidentsArgs),
    /// Test the endpoint's alert sinks ([alerts]: webhook, email, SMS, PagerDuty)
    Alerts(AlertsArgs),
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Human-readable lines
    Text,
    /// One JSON document (for scripts)
    Json,
}

/// Log formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One JSON object per line
    Json,
    /// Human-readable lines
    Text,
}

/// A channel, or auto-detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ChannelArg {
    /// Voice rules
    Voice,
    /// Messaging rules (SMS, MMS, WhatsApp; `sms` works too)
    #[value(alias = "sms")]
    Messaging,
    /// Whichever channel the document's verbs use
    Auto,
}

/// HTTP methods Twilio uses for webhooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub(crate) enum MethodArg {
    /// GET, parameters in the query string
    Get,
    /// POST, parameters in a form body
    Post,
}

impl MethodArg {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MethodArg::Get => "GET",
            MethodArg::Post => "POST",
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  twiml-fallback serve
  TWILIO_AUTH_TOKEN=... twiml-fallback serve --addr 0.0.0.0:8787 --config fallback.toml
  twiml-fallback serve --addr localhost:8080
  twiml-fallback serve --public-url https://fallback.example.com --log-format json   # behind a proxy
  ngrok http 8787   # then: twiml-fallback serve --public-url https://<id>.ngrok-free.app
  RUST_LOG=warn twiml-fallback serve                    # only refusals, failed alerts, problems
  twiml-fallback serve --header-timeout-ms 2000 --max-connections 256               # tighter limits

Point the number's \"Primary handler fails\" URL (voice and messaging) at this server. Without
TWILIO_AUTH_TOKEN every request gets the fallback TwiML but signatures are not checked and no
alerts or recovery happen. GET or HEAD /healthz answers 200 \"ok\" (logged nowhere, token or not);
`twiml-fallback healthcheck` checks it.

Signatures are checked against the URL Twilio requested: behind a proxy or tunnel, give its public
base URL with --public-url, or trust the proxy's X-Forwarded-Proto/X-Forwarded-Host with
--trust-forwarded-headers. A path in the public URL goes before the request's path:
  --public-url https://example.com/twilio + POST /voice = https://example.com/twilio/voice
A refused signature is logged as a WARN line with the URL it was checked against and, when the
request came through a proxy or tunnel, the flag that fixes it.

Logs go to standard error, one line per request (--log-format text or json). RUST_LOG sets what is
written (default: info): RUST_LOG=warn keeps refused requests, failed alerts and start-up problems;
request lines have the target twiml_fallback::request, the others twiml_fallback::serve
(RUST_LOG=info,twiml_fallback::request=warn keeps the start-up lines and only refused requests).

Incidents ([alerts] in the configuration): the first verified fallback notice for a failing
primary opens an incident, a recovery or replay it answers (or resolve_after_seconds of quiet)
resolves it; each sink is told once of each, in the background. Incidents are kept in the inbox's
database (none with --no-inbox). Email goes through [alerts.smtp] url (smtp:// STARTTLS, smtps://
implicit TLS, plain text only to a loopback relay), logging in as the URL's user with the password
in TWIML_FALLBACK_SMTP_PASSWORD. Texts go through --api-base like replay's replies.

Connection limits (HTTP/1.1): Twilio sends a whole request at once, so a connection that trickles
its request head or body is not Twilio. A head must arrive within --header-timeout-ms, a body
within --body-timeout-ms (else it is answered as unreadable: 403 with a token, <Response/>
without); an idle keep-alive connection is closed after --idle-timeout-ms; at most
--max-connections are open (a new one waits up to 500 ms for a free slot, then is closed). A
WARN line says when a limit bites, at most one per limit every 10 s, with a count.")]
pub(crate) struct ServeArgs {
    /// Address to listen on: IP:PORT, [IPv6]:PORT or NAME:PORT (0.0.0.0: every interface)
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "HOST:PORT")]
    pub(crate) addr: String,
    /// Configuration file (TOML or JSON); the embedded defaults without it
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The public base URL Twilio calls (behind a proxy or tunnel), used to check signatures
    #[arg(long, value_name = "URL", conflicts_with = "trust_forwarded_headers")]
    pub(crate) public_url: Option<String>,
    /// Take the scheme and host Twilio signed from X-Forwarded-Proto / X-Forwarded-Host
    #[arg(long)]
    pub(crate) trust_forwarded_headers: bool,
    /// The auth token (else TWILIO_AUTH_TOKEN)
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub(crate) auth_token: Option<String>,
    /// A second accepted token, during a rotation (else TWILIO_AUTH_TOKEN_SECONDARY)
    #[arg(
        long,
        env = "TWILIO_AUTH_TOKEN_SECONDARY",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) secondary_auth_token: Option<String>,
    /// Log format
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,
    /// The outage inbox's SQLite file (default: twiml-fallback/inbox.sqlite3 under your data
    /// directory, e.g. ~/.local/share)
    ///
    /// Every verified message and call the endpoint answers is committed here before its answer
    /// goes out, for `twiml-fallback inbox` and replay.
    #[arg(long, value_name = "PATH", conflicts_with = "no_inbox")]
    pub(crate) inbox: Option<PathBuf>,
    /// Keep no inbox: missed messages and calls are answered but not kept
    #[arg(long)]
    pub(crate) no_inbox: bool,
    /// The admin API's token (else TWIML_FALLBACK_ADMIN_TOKEN); without one, /_twiml-fallback/
    /// answers 404
    #[arg(
        long,
        env = "TWIML_FALLBACK_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) admin_token: Option<String>,
    /// Twilio's REST API, where replay sends the app's replies (a local fake in tests)
    #[arg(
        long,
        env = "TWILIO_API_BASE",
        default_value = twiml_fallback::replay::DEFAULT_API_BASE,
        value_name = "URL"
    )]
    pub(crate) api_base: String,
    /// An API key SID (SK…), with TWILIO_API_SECRET, to send replies with instead of the
    /// account's auth token
    #[arg(long, env = "TWILIO_API_KEY", value_name = "SID")]
    pub(crate) api_key: Option<String>,
    /// The API key's secret (else TWILIO_API_SECRET)
    #[arg(long, env = "TWILIO_API_SECRET", hide_env_values = true, value_name = "SECRET")]
    pub(crate) api_secret: Option<String>,
    /// Close a connection whose request head (request line and headers) takes longer than this
    ///
    /// Counted from the connection's start, and on a keep-alive connection from the first byte of
    /// each later request. Twilio's head arrives in milliseconds; 5 s leaves room for a slow
    /// network and closes a connection that trickles its head long before Twilio's own 15 s
    /// budget for the request runs out.
    #[arg(long, default_value_t = 5_000, value_name = "MS", value_parser = timeout_ms())]
    pub(crate) header_timeout_ms: u64,
    /// Stop reading a request body that has not arrived whole after this long
    ///
    /// Counted from the end of the head. Such a request is answered as one with an unreadable
    /// body: 403 with a token, <Response/> without. 5 s for the head plus 10 s for the body is
    /// Twilio's whole 15 s budget: past it Twilio has given up, so no longer wait can help a real
    /// request.
    #[arg(long, default_value_t = 10_000, value_name = "MS", value_parser = timeout_ms())]
    pub(crate) body_timeout_ms: u64,
    /// Close a keep-alive connection that has been idle this long after an answer
    ///
    /// 60 s lets Twilio, or a proxy or tunnel in front, reuse a connection across calls, and
    /// gives an idle connection's slot back within a minute. Behind a proxy that keeps idle
    /// connections to serve, a value above the proxy's own idle timeout avoids a race on reuse.
    #[arg(long, default_value_t = 60_000, value_name = "MS", value_parser = timeout_ms())]
    pub(crate) idle_timeout_ms: u64,
    /// Keep at most this many connections open at once
    ///
    /// A fallback endpoint gets one short request per call or message whose primary failed;
    /// 1024 at once is ample, and bounds the memory and file descriptors a flood of connections
    /// can take. A connection
    /// over the limit waits up to 500 ms for a free slot, then is closed. Keep it below the
    /// open-file limit (ulimit -n): serve warns at start-up when it is not.
    #[arg(
        long,
        default_value_t = 1024,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub(crate) max_connections: u32,
}

/// The range every `serve` timeout accepts: at least 1 ms (a limit must exist), at most an hour.
fn timeout_ms() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..=3_600_000)
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  twiml-fallback check answer.xml
  twiml-fallback check --channel messaging sms/*.xml
  curl -s https://app.example.com/voice | twiml-fallback check --channel voice -
  twiml-fallback check --format json answer.xml

Output: one line per problem, FILE:LINE:COL: error[CODE]: message (warnings as warning[CODE]).
Exit status: 0 every file valid, 1 any invalid, 2 usage or I/O errors.")]
pub(crate) struct CheckArgs {
    /// TwiML files to check (`-` for standard input)
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<String>,
    /// Which channel's rules apply
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) channel: ChannelArg,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
    /// Count warnings as problems too (exit 1 on any warning)
    #[arg(long)]
    pub(crate) deny_warnings: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  twiml-fallback simulate --url https://app.example.com/voice
  twiml-fallback simulate --url https://app.example.com/sms --channel messaging --body 'hours?' \\
      --fallback-url https://fallback.example.com/sms
  twiml-fallback simulate --url 'https://app.example.com/voice#tt=5000' --format json

Twilio's rules: 15 s in all for each request (URL fragments #ct=, #rt=, #tt= in ms shorten it),
any 4xx/5xx, a missing or non-TwiML Content-Type, an empty body, a body over 64 KB, malformed TwiML,
a root other than <Response> and schema errors fail the primary; Twilio then requests the fallback
URL with ErrorCode and ErrorUrl added. Requests are signed when a token is given.
Exit status: 0 the person got valid TwiML, 1 Twilio would fail the call or message, 2 usage errors.")]
pub(crate) struct SimulateArgs {
    /// The primary webhook URL ("A call comes in" / "A message comes in")
    #[arg(long, value_name = "URL")]
    pub(crate) url: String,
    /// The number's fallback URL ("Primary handler fails")
    #[arg(long, value_name = "URL")]
    pub(crate) fallback_url: Option<String>,
    /// The webhook's channel
    #[arg(long, value_enum, default_value = "voice")]
    pub(crate) channel: SimulatedChannel,
    /// Method for the primary URL
    #[arg(long, value_enum, default_value = "POST")]
    pub(crate) method: MethodArg,
    /// Method for the fallback URL
    #[arg(long, value_enum, default_value = "POST")]
    pub(crate) fallback_method: MethodArg,
    /// The caller or sender (From)
    #[arg(long, default_value = "+14155550100")]
    pub(crate) from: String,
    /// The number called or messaged (To)
    #[arg(long, default_value = "+14155550199")]
    pub(crate) to: String,
    /// The message text (messaging)
    #[arg(long, default_value = "Hello from twiml-fallback simulate")]
    pub(crate) body: String,
    /// Sign requests with this auth token (else TWILIO_AUTH_TOKEN; unsigned without either)
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub(crate) auth_token: Option<String>,
    /// Twilio's time budget per request, in milliseconds
    #[arg(long, default_value_t = 15_000, value_name = "MS")]
    pub(crate) timeout_ms: u64,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

/// The channel to simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum SimulatedChannel {
    /// An incoming call
    Voice,
    /// An incoming SMS (`sms` works too)
    #[value(alias = "sms")]
    Messaging,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... twiml-fallback numbers audit
  twiml-fallback numbers set --all-unprotected \\
      --voice-fallback-url https://fallback.example.com/voice \\
      --sms-fallback-url https://fallback.example.com/sms --dry-run

Credentials: TWILIO_ACCOUNT_SID (AC + 32 hex digits) with TWILIO_AUTH_TOKEN, or an API key
(TWILIO_API_KEY, TWILIO_API_SECRET); or the matching options.")]
pub(crate) struct NumbersArgs {
    #[command(subcommand)]
    pub(crate) command: NumbersCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum NumbersCommand {
    /// List the account's numbers with their primary and fallback URLs; flag the unprotected ones
    Audit(AuditArgs),
    /// Set numbers' fallback URLs
    Set(SetArgs),
}

/// Twilio API credentials and host.
#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// The account SID (AC…)
    #[arg(long, env = "TWILIO_ACCOUNT_SID", value_name = "SID")]
    pub(crate) account_sid: Option<String>,
    /// The auth token (or use an API key)
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub(crate) auth_token: Option<String>,
    /// An API key SID (SK…), with --api-secret, instead of the auth token
    #[arg(long, env = "TWILIO_API_KEY", value_name = "SID")]
    pub(crate) api_key: Option<String>,
    /// The API key's secret
    #[arg(long, env = "TWILIO_API_SECRET", hide_env_values = true, value_name = "SECRET")]
    pub(crate) api_secret: Option<String>,
    /// One base URL for Twilio's three APIs — the 2010 API (numbers, Applications), Messaging
    /// v1 (Messaging Services) and Trunking v1 (SIP trunks) — for a fake in tests (https, or a
    /// loopback address); by default each API's own host (api., messaging., trunking.twilio.com)
    #[arg(long, value_name = "URL")]
    pub(crate) api_base: Option<String>,
}

/// The method the fallback endpoint expects, for `numbers audit`'s warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExpectedMethod {
    /// POST (what `numbers set` writes, and what keeps numbers and bodies out of URLs)
    #[value(name = "POST", alias = "post")]
    Post,
    /// GET
    #[value(name = "GET", alias = "get")]
    Get,
    /// Either: no warning
    #[value(name = "any")]
    Any,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... twiml-fallback numbers audit
  twiml-fallback numbers audit --probe
  twiml-fallback numbers audit --format json | jq '.numbers[] | select(.unprotected)'

Each number's voice and messaging are resolved to what Twilio actually uses: a SIP trunk (its
disaster-recovery URL is the fallback) over a voice Application over the number's own URLs; a
Messaging Service (unless it defers to the number's webhook) over a messaging Application over
the number's own URLs. A channel is unprotected when what routes it has a primary but no fallback.
--probe sends each distinct fallback a signed synthetic fallback request, as Twilio would
(ErrorCode=11200, ErrorUrl = its primary; a SIP trunk's disaster-recovery URL gets a plain call
request), and judges the answer by Twilio's rules within 15 s; it needs the auth token
(TWILIO_AUTH_TOKEN), which is what Twilio signs with. A twiml-fallback endpoint answers a probe
without keeping, alerting or recovering; any other fallback (a Studio Flow, a Function, your own
code) runs as for a real failed call or message.
Exit status: 0 everything protected (and every probe answered), 1 anything unprotected, unknown
or a probe failed, 2 usage or API errors.")]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// Probe each distinct fallback URL with a signed synthetic fallback request
    #[arg(long)]
    pub(crate) probe: bool,
    /// The method the fallback endpoint expects: a fallback Twilio requests otherwise is warned about
    #[arg(long, value_enum, default_value = "POST", value_name = "METHOD")]
    pub(crate) expect_fallback_method: ExpectedMethod,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

#[derive(Debug, Args)]
#[command(
    override_usage = "twiml-fallback numbers set (--number NUMBER... | --all-unprotected) \
                      [--voice-fallback-url URL] [--sms-fallback-url URL] [OPTIONS]",
    after_help = "Required: which numbers (--number, repeatable, or --all-unprotected) and at least one
fallback URL (--voice-fallback-url, --sms-fallback-url, or both). Credentials come from
TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET) unless given
as options.

Examples:
  twiml-fallback numbers set --number +14155550199 \\
      --voice-fallback-url https://fallback.example.com/voice
  twiml-fallback numbers set --all-unprotected --dry-run \\
      --voice-fallback-url https://fallback.example.com/voice \\
      --sms-fallback-url https://fallback.example.com/sms

The change goes to what routes each number (as numbers audit shows): the number, its
Application (VoiceFallbackUrl/SmsFallbackUrl), its Messaging Service (FallbackUrl) or its SIP
trunk (DisasterRecoveryUrl, from --voice-fallback-url), each shared resource once, naming every
number it covers. --all-unprotected sets only the fallbacks that are missing. Every update is
tried; the exit status is 1 if any failed, 2 on usage or API errors before any update."
)]
pub(crate) struct SetArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// The number to update (E.164, e.g. +14155550199, or its PN… SID); repeatable
    #[arg(long, value_name = "NUMBER", conflicts_with = "all_unprotected")]
    pub(crate) number: Vec<String>,
    /// Update what routes every channel the audit flags as unprotected
    #[arg(long)]
    pub(crate) all_unprotected: bool,
    /// The voice fallback URL to set
    #[arg(long, value_name = "URL")]
    pub(crate) voice_fallback_url: Option<String>,
    /// The voice fallback method
    #[arg(long, value_enum, value_name = "METHOD", requires = "voice_fallback_url")]
    pub(crate) voice_fallback_method: Option<MethodArg>,
    /// The SMS fallback URL to set
    #[arg(long, value_name = "URL")]
    pub(crate) sms_fallback_url: Option<String>,
    /// The SMS fallback method
    #[arg(long, value_enum, value_name = "METHOD", requires = "sms_fallback_url")]
    pub(crate) sms_fallback_method: Option<MethodArg>,
    /// Show the changes without making them
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  twiml-fallback healthcheck                                     # serve on its default address
  twiml-fallback healthcheck --url http://127.0.0.1:8080/healthz
  twiml-fallback healthcheck --url https://twiml-fallback.example.workers.dev/healthz

GETs the URL and prints one line. Exit status: 0 it answered 200 within --timeout-ms, 1 it did not
(what Docker's HEALTHCHECK and Kubernetes' exec probes read as unhealthy), 2 usage errors.")]
pub(crate) struct HealthcheckArgs {
    /// The health check URL (serve and the Worker answer GET /healthz)
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8787/healthz")]
    pub(crate) url: String,
    /// How long to wait for the answer, in milliseconds
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub(crate) timeout_ms: u64,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  export TWIML_FALLBACK_ADMIN_TOKEN=...        # the token the endpoint was started with
  twiml-fallback inbox list
  twiml-fallback inbox list --status pending --channel messaging --format json
  twiml-fallback inbox show SM0123456789abcdef0123456789abcdef
  twiml-fallback inbox dismiss SM0123456789abcdef0123456789abcdef
  twiml-fallback inbox export --format csv > missed.csv
  twiml-fallback inbox replay --dry-run
  twiml-fallback inbox replay --sid SM0123456789abcdef0123456789abcdef --send-withheld
  twiml-fallback inbox --endpoint https://twiml-fallback.example.workers.dev list

Exit status: 0 success, 1 an entry that is not there (or, for replay, an entry that failed or needs
attention), 2 usage errors, a wrong token or an endpoint that cannot be reached.")]
pub(crate) struct InboxArgs {
    #[command(flatten)]
    pub(crate) admin: AdminArgs,
    #[command(subcommand)]
    pub(crate) command: InboxCommand,
}

/// Where a fallback endpoint's admin API is, and its token (`inbox`, `incidents`, `alerts`).
#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    /// The fallback endpoint (serve or the Worker)
    #[arg(
        long,
        global = true,
        env = "TWIML_FALLBACK_ENDPOINT",
        default_value = "http://127.0.0.1:8787",
        value_name = "URL"
    )]
    pub(crate) endpoint: String,
    /// The admin token (else TWIML_FALLBACK_ADMIN_TOKEN)
    #[arg(
        long,
        global = true,
        env = "TWIML_FALLBACK_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) admin_token: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  export TWIML_FALLBACK_ADMIN_TOKEN=...        # the token the endpoint was started with
  twiml-fallback incidents
  twiml-fallback incidents --limit 5 --format json
  twiml-fallback incidents --endpoint https://twiml-fallback.example.workers.dev

An incident is one outage of one primary (the origin of Twilio's ErrorUrl): opened by its first
verified fallback notice, resolved when the primary answers a recovery or a replay, or after
[alerts] resolve_after_seconds without a notice. Open incidents come first, then the most recent.
Each lists its counts and, per sink, each notification's status (pending, sending, delivered,
failed), tries and last error.

Exit status: 0 success, 2 usage errors, a wrong token or an endpoint that cannot be reached.")]
pub(crate) struct IncidentsArgs {
    #[command(flatten)]
    pub(crate) admin: AdminArgs,
    /// At most this many (1 to 500)
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub(crate) limit: u32,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  export TWIML_FALLBACK_ADMIN_TOKEN=...        # the token the endpoint was started with
  twiml-fallback alerts test
  twiml-fallback alerts test --account-sid AC0123456789abcdef0123456789abcdef --format json

Exit status: 0 every sink took its test, 1 a sink failed or the endpoint has no [alerts], 2 usage
errors, a wrong token or an endpoint that cannot be reached.")]
pub(crate) struct AlertsArgs {
    #[command(flatten)]
    pub(crate) admin: AdminArgs,
    #[command(subcommand)]
    pub(crate) command: AlertsCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AlertsCommand {
    /// Send a test notification through every configured sink and say how each went
    Test(AlertsTestArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  twiml-fallback alerts test
  twiml-fallback alerts test --account-sid AC0123456789abcdef0123456789abcdef

Every configured sink gets one test notification, marked as a test (PagerDuty: a trigger, then
its resolve, so no one stays paged). Texts are sent from the account of --account-sid, else the
one of the endpoint's most recent incident; without either they are reported as not sent.
Exit status: 0 every sink took its test, 1 a sink failed or the endpoint has no [alerts], 2 usage
errors, a wrong token or an endpoint that cannot be reached.")]
pub(crate) struct AlertsTestArgs {
    /// The account alert texts are sent from (AC…; else the most recent incident's)
    #[arg(long, value_name = "SID")]
    pub(crate) account_sid: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

#[derive(Debug, Subcommand)]
pub(crate) enum InboxCommand {
    /// The entries, newest first
    List(InboxListArgs),
    /// One entry, whole
    Show(InboxShowArgs),
    /// Remove entries from replay and delete their body and media URLs
    Dismiss(InboxDismissArgs),
    /// Every entry (all pages) as JSON lines or CSV
    Export(InboxExportArgs),
    /// Replay now: deliver pending messages to the app and send its replies
    Replay(InboxReplayArgs),
}

#[derive(Debug, Args)]
pub(crate) struct InboxReplayArgs {
    /// Only this entry (repeat for more); a failed entry is delivered again
    #[arg(long = "sid", value_name = "SID")]
    pub(crate) sids: Vec<String>,
    /// Say what would be delivered; change nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Send the named entries' withheld replies (late, or send_replies off)
    #[arg(long, requires = "sids")]
    pub(crate) send_withheld: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

/// Which entries.
#[derive(Debug, Args)]
pub(crate) struct InboxFilter {
    /// Only entries in this status (pending, replaying, replayed, failed, needs-attention, missed,
    /// voicemail, dismissed)
    #[arg(long, value_name = "STATUS")]
    pub(crate) status: Option<String>,
    /// Only messaging or voice entries
    #[arg(long, value_name = "CHANNEL")]
    pub(crate) channel: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct InboxListArgs {
    #[command(flatten)]
    pub(crate) filter: InboxFilter,
    /// At most this many (1 to 1000)
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) limit: u32,
    /// Continue after this cursor (printed under a page that has more)
    #[arg(long, value_name = "CURSOR")]
    pub(crate) cursor: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct InboxShowArgs {
    /// The entry's MessageSid or CallSid
    pub(crate) sid: String,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct InboxDismissArgs {
    /// The entries' MessageSid or CallSid
    #[arg(required = true)]
    pub(crate) sids: Vec<String>,
}

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// One entry's JSON per line, every field
    Jsonl,
    /// A header row, then one row per entry (media URLs space-separated, parameters as JSON)
    Csv,
}

#[derive(Debug, Args)]
pub(crate) struct InboxExportArgs {
    #[command(flatten)]
    pub(crate) filter: InboxFilter,
    /// Output format
    #[arg(long, value_enum, default_value = "jsonl")]
    pub(crate) format: ExportFormat,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};
    use crate::addr::DEFAULT_PORT;

    #[test]
    fn healthcheck_defaults_to_the_address_serve_listens_on_by_default() {
        let Ok(Cli {
            command: Command::Serve(serve),
        }) = Cli::try_parse_from(["twiml-fallback", "serve"])
        else {
            panic!("serve parses");
        };
        let Ok(Cli {
            command: Command::Healthcheck(health),
        }) = Cli::try_parse_from(["twiml-fallback", "healthcheck"])
        else {
            panic!("healthcheck parses");
        };
        assert_eq!(serve.addr, format!("127.0.0.1:{DEFAULT_PORT}"));
        assert_eq!(health.url, format!("http://{}/healthz", serve.addr));
    }
}
