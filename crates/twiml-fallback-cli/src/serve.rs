//! `twiml-fallback serve`: the fallback endpoint on the core's `edge` decision, natively.
//!
//! This module only performs I/O — reading requests as [`BodyRead`] says, writing the core's log
//! lines, sending the core's outbound requests (the recovery request) and handing their outcome
//! back, and passing each incident notice on. Every decision is `Edge`'s; the effect contract is
//! in `twiml_fallback::edge::effect`. The rooms:
//!
//! - [`connections`]: the accept loop, the connection limit, the head, body and idle deadlines;
//! - [`inbox`]: the rusqlite driver of the core's one SQLite schema, the group-commit writer thread;
//! - [`replay`]: the background replay pass and the admin POST;
//! - [`alerts`]: incidents — filing notices, the notifier that sends and settles the core's
//!   notifications, `alerts test`;
//! - [`smtp`]: the relay alert email goes through (lettre).

mod alerts;
mod connections;
mod inbox;
mod replay;
mod smtp;
/// The fake SMTP relay of the crate's tests, shared by the unit tests of [`smtp`] and [`alerts`].
#[cfg(test)]
#[path = "../tests/support/smtp_fake.rs"]
mod smtp_fake;

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::BodyExt;
use twiml_fallback::admin::{self, Admin, AdminRequest, AdminResponse, Routed};
use twiml_fallback::config::{Config, SMTP_PASSWORD_VARIABLE, variables_in_use};
use twiml_fallback::edge::{
    BodyRead, Edge, EdgeRequest, EdgeResponse, Effect, LogLevel, LogLine, LogRecord, OutboundRequest, Redirects,
    SendResult,
};
use twiml_fallback::inbox::Entry;
use twiml_fallback::incident::{Alerting, EmailSupport};
use twiml_fallback::replay::{Replayer, TwilioApi};
use twiml_fallback::signature::{SIGNATURE_HEADER, SignatureVerifier, UrlPolicy};

use self::alerts::Notifications;
use self::connections::{Bite, LimitLog, Limits};
use self::inbox::Inbox;
use self::replay::Replay;
use self::smtp::Mailer;
use crate::cli::{LogFormat, ServeArgs};
use crate::error::CliError;
use crate::http_client;

/// Shared by every request.
struct Server {
    edge: Edge,
    policy: UrlPolicy,
    /// The address it listens on: a request whose `Host` names another came through a proxy.
    listen: SocketAddr,
    client: reqwest::Client,
    log_format: LogFormat,
    /// How long a request body may take to arrive whole (`--body-timeout-ms`).
    body_timeout: Duration,
    /// Where the limits that bite are counted and logged.
    limit_log: Arc<LimitLog>,
    /// The outage inbox (`None` with `--no-inbox`).
    inbox: Option<Inbox>,
    /// The admin API under `/_twiml-fallback/`.
    admin: Admin,
    /// Replay of the inbox (`None` without one).
    replay: Option<Replay>,
    /// Incidents and their notifications (none without an inbox: they are kept in it).
    alerts: Notifications,
}

/// The configuration `serve` runs with, from the same sources as the Worker: the file (or the
/// embedded defaults), then the `FALLBACK_*` variables over it. Any problem stops `serve` before
/// it listens: a command line should refuse a broken configuration, not serve around it.
fn serve_config(path: Option<&std::path::Path>) -> Result<(Config, Vec<&'static str>), CliError> {
    let text = match path {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|error| CliError::new(format!("cannot read {}: {error}", path.display())))?,
        ),
        None => None,
    };
    let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let config = Config::from_sources(text.as_deref(), variable).map_err(|errors| {
        let source = path.map_or("the embedded defaults".to_owned(), |path| path.display().to_string());
        CliError::new(format!(
            "the configuration ({source} and the FALLBACK_* variables) is not valid:\n{errors}"
        ))
        .hint("every problem is listed above, by path or variable; the README's Configuration section has the schema")
    })?;
    let in_use = variables_in_use(variable);
    Ok((config, in_use))
}

pub(crate) async fn run(args: ServeArgs) -> Result<ExitCode, CliError> {
    crate::logging::init(args.log_format);
    let listen = crate::addr::parse(&args.addr)?;
    let (config, variables) = serve_config(args.config.as_deref())?;
    let policy = url_policy(&args)?;
    let inbox = open_inbox(&args, config.inbox())?;
    let mut server = Server::build(&args, config, policy, inbox)?;
    let listener = crate::addr::bind(&listen).await?;
    let addr = listener
        .local_addr()
        .map_err(|error| CliError::new(format!("cannot listen on {listen}: {error}")))?;
    server.listen = addr;
    let limit_log = Arc::clone(&server.limit_log);
    let server = Arc::new(server);
    tokio::spawn(Arc::clone(&server).replay_forever());
    tokio::spawn(Arc::clone(&server).notify_forever());
    // Every path, /healthz included: the core answers health checks (Edge::decide).
    let app = Router::new().fallback(handle).with_state(Arc::clone(&server));
    tracing::info!(
        address = %addr,
        config = args.config.as_ref().map_or("embedded defaults".to_owned(), |p| p.display().to_string()),
        variables = ?variables,
        tokens = server.edge.verifier().tokens().len(),
        signatures_checked_against = server.policy.to_string(),
        "twiml-fallback serve: listening on http://{addr}"
    );
    Limits::from_args(&args).log_at_start();
    connections::serve(listener, app, limit_log, shutdown_signal()).await;
    tracing::info!("twiml-fallback serve: stopped");
    Ok(ExitCode::SUCCESS)
}

impl Server {
    /// Everything `serve` holds, from its arguments, its configuration, the URL policy and its
    /// inbox, each part's start-up lines written; it listens on no address yet (`listen` is set
    /// once bound).
    fn build(args: &ServeArgs, config: Config, policy: UrlPolicy, inbox: Option<Inbox>) -> Result<Server, CliError> {
        let verifier = SignatureVerifier::from_tokens(
            [args.auth_token.clone(), args.secondary_auth_token.clone()]
                .into_iter()
                .flatten(),
        );
        let edge = Edge::new(config, verifier).with_inbox(inbox.is_some());
        for warning in edge.startup_warnings() {
            tracing::warn!("{warning}");
        }
        let api = twilio_api(args)?;
        let replay = inbox
            .as_ref()
            .map(|_| Replay::new(Replayer::new(edge.config(), edge.verifier(), api.clone())));
        if let Some(replay) = &replay {
            write_line_as(args.log_format, &replay.replayer().startup_line());
        }
        let (mailer, email) = mailer(edge.config())?;
        // Texts go through the same Messages API, with the same credentials, as replay's replies.
        let alerting = Alerting::new(edge.config(), edge.verifier(), api, email);
        write_line_as(args.log_format, &alerting.startup_line());
        if let Some(mailer) = &mailer {
            tracing::info!(
                relay = mailer.relay(),
                logs_in = mailer.logs_in(),
                "twiml-fallback serve: alert email through the SMTP relay {}",
                mailer.relay()
            );
        }
        if inbox.is_none() && alerting.is_configured() {
            tracing::warn!(
                "--no-inbox: [alerts] needs the inbox database (incidents are kept in it): no incident opens and no one is told"
            );
        }
        let admin = Admin::new(args.admin_token.clone(), inbox.is_some())
            .with_replay(replay.as_ref().and_then(|replay| replay.replayer().off()));
        if !admin.is_enabled() {
            tracing::info!("no TWIML_FALLBACK_ADMIN_TOKEN: the admin API (/_twiml-fallback/) answers 404");
        }
        let client = http_client::client(0, http_client::USER_AGENT).map_err(CliError::new)?;
        let limits = Limits::from_args(args);
        Ok(Server {
            edge,
            policy,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            client,
            log_format: args.log_format,
            body_timeout: limits.body_timeout(),
            limit_log: Arc::new(LimitLog::new(limits)),
            inbox,
            admin,
            replay,
            alerts: Notifications::new(alerting, mailer),
        })
    }
}

/// Which URL signatures are checked against: `--public-url`, `--trust-forwarded-headers`, or the
/// URL as received.
fn url_policy(args: &ServeArgs) -> Result<UrlPolicy, CliError> {
    Ok(match (&args.public_url, args.trust_forwarded_headers) {
        (Some(url), _) => UrlPolicy::public_base(url)
            .map_err(|error| CliError::new(error.to_string()).hint("e.g. --public-url https://fallback.example.com"))?,
        (None, true) => UrlPolicy::trust_forwarded_headers(),
        (None, false) => UrlPolicy::as_received(),
    })
}

/// The relay alert email goes through, when `[alerts] email` is set: `[alerts.smtp] url`, logging
/// in with `TWIML_FALLBACK_SMTP_PASSWORD` as the URL's user. Without a URL, email is not sent
/// (the core's start-up line says why); a user without a password stops `serve`.
fn mailer(config: &Config) -> Result<(Option<Mailer>, EmailSupport), CliError> {
    let Some(alerts) = config.alerts().filter(|alerts| !alerts.email.is_empty()) else {
        return Ok((None, EmailSupport::None));
    };
    let Some(url) = alerts.smtp.as_ref().and_then(|smtp| smtp.url.as_ref()) else {
        return Ok((
            None,
            EmailSupport::Missing("no [alerts.smtp] url: serve sends email through an SMTP relay"),
        ));
    };
    let password = std::env::var(SMTP_PASSWORD_VARIABLE).ok();
    let (mailer, problem) = Mailer::new(url, password.as_deref()).map_err(|error| {
        CliError::new(error).hint(format!(
            "set {SMTP_PASSWORD_VARIABLE} to the relay's password (or remove the user from [alerts.smtp] url)"
        ))
    })?;
    if let Some(problem) = problem {
        tracing::warn!("{}", problem.message());
    }
    Ok((Some(mailer), EmailSupport::Available))
}

/// The Messages API replay's replies and alert texts go through: `--api-base` (with
/// `TWILIO_API_KEY`/`TWILIO_API_SECRET` when set).
fn twilio_api(args: &ServeArgs) -> Result<TwilioApi, CliError> {
    TwilioApi::new(&args.api_base)
        .map_err(|error| CliError::new(format!("--api-base: {error}")).hint("e.g. --api-base https://api.twilio.com"))?
        .with_credentials(args.api_key.clone(), args.api_secret.clone())
        .map_err(|error| {
            CliError::new(error).hint(
                "set both TWILIO_API_KEY and TWILIO_API_SECRET, or neither (replies and alert texts then use TWILIO_AUTH_TOKEN)",
            )
        })
}

/// Opens the inbox unless `--no-inbox`: at `--inbox PATH` or the default path, said at start-up.
/// A file that is not a database or cannot be written stops `serve` before it listens.
fn open_inbox(args: &ServeArgs, settings: twiml_fallback::config::InboxSettings) -> Result<Option<Inbox>, CliError> {
    if args.no_inbox {
        tracing::warn!("--no-inbox: missed messages and calls are answered but not kept");
        return Ok(None);
    }
    let path = match &args.inbox {
        Some(path) => path.clone(),
        None => inbox::default_path().ok_or_else(|| {
            CliError::new("no data directory to keep the inbox in (no HOME?)")
                .hint("choose a file with --inbox PATH, or run with --no-inbox")
        })?,
    };
    let format = args.log_format;
    let (inbox, counts) =
        Inbox::open(&path, settings, now_ms, move |line| write_line_as(format, line)).map_err(|error| {
            CliError::new(format!("cannot open the inbox at {}: {error}", path.display())).hint(
                "choose another file with --inbox PATH (a damaged one can be moved aside), or run with --no-inbox",
            )
        })?;
    tracing::info!(
        file = %inbox.path().display(),
        stored = counts.stored,
        refused_when_full = counts.refused,
        retention_days = settings.retention_days,
        max_entries = settings.max_entries,
        "twiml-fallback serve: inbox at {} ({} entries)",
        inbox.path().display(),
        counts.stored
    );
    if counts.refused > 0 {
        tracing::warn!(
            refused_when_full = counts.refused,
            "twiml-fallback serve: the inbox has refused {} entries because it was full ([inbox] max_entries)",
            counts.refused
        );
    }
    Ok(Some(inbox))
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("twiml-fallback serve: shutting down");
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

async fn handle(State(server): State<Arc<Server>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let url = server.policy.url_to_verify(&parts);
    let header = |name: &str| parts.headers.get(name).and_then(|value| value.to_str().ok());
    if server.admin.claims(&url) {
        let read = server.read_body(body, admin::MAX_ADMIN_BODY_BYTES).await;
        let routed = server.admin.route(
            &AdminRequest {
                method: &parts.method,
                url: &url,
                authorization: header(http::header::AUTHORIZATION.as_str()),
                body: read.as_deref().filter(|read| read.len() <= admin::MAX_ADMIN_BODY_BYTES),
            },
            now_ms(),
        );
        return match routed {
            Some(Routed::Answer(answer)) => admin_response(answer),
            Some(Routed::Inbox(operation)) => admin_response(server.perform(operation).await),
            Some(Routed::Replay(request)) => admin_response(server.requested_pass(request).await.answer()),
            Some(Routed::AlertTest(test)) => admin_response(server.alert_test(test).await),
            // `claims` and `route` agree on what is an admin path.
            None => admin_response(AdminResponse::error(http::StatusCode::NOT_FOUND, "not found")),
        };
    }
    let reading = BodyRead::for_request(&parts.method, header(CONTENT_LENGTH.as_str()));
    let read = match reading {
        BodyRead::Skip => None,
        // None of it kept, all of it read (`read_body`).
        BodyRead::Refuse => {
            let _ = server.read_body(body, 0).await;
            None
        }
        // Keep up to the limit; a broken body is as unverifiable as a huge one, and so is one that
        // does not arrive in time (Twilio sends a whole request at once).
        BodyRead::UpTo(limit) => server.read_body(body, limit).await,
    };
    let decision = server
        .edge
        .decide(&EdgeRequest {
            method: &parts.method,
            url: &url,
            signature: header(SIGNATURE_HEADER),
            content_type: header(CONTENT_TYPE.as_str()),
            body: reading.body(read.as_deref()),
            now_ms: now_ms(),
            inbox_failing: server.inbox.as_ref().is_some_and(Inbox::is_failing),
        })
        .explain_mismatch(|| server.policy.mismatch_hint(&parts.headers, Some(server.listen)));
    let mut answer = decision.response;
    // The entry and the incident notice are written together (one commit), before the answer.
    let (mut entry, mut notice, mut resolves) = (None, None, None);
    for effect in decision.effects {
        match effect {
            Effect::Keep(kept) => entry = Some(*kept),
            Effect::Log(record) => server.write_record(&record),
            Effect::Incident(filed) => notice = Some(filed),
            Effect::Recover(plan) => {
                let sent = send(&server.client, &plan.request).await;
                let judgement = server.edge.judge_recovery(&plan, sent.outcome());
                entry = judgement.keep.map(|kept| *kept);
                notice = judgement.notice;
                resolves = judgement.resolves;
                server.write_record(&judgement.log);
                answer = judgement.response;
            }
        }
    }
    let keep = async {
        if let Some(entry) = entry {
            server.keep(entry).await;
        }
    };
    let file = async {
        if let Some(notice) = notice {
            server.file_notice(notice).await;
        }
    };
    tokio::join!(keep, file);
    if let Some(origin) = resolves {
        server.primary_answered(origin);
    }
    edge_response(answer)
}

fn edge_response(answer: EdgeResponse) -> Response {
    let mut response = (answer.status, answer.body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    response
}

fn admin_response(answer: AdminResponse) -> Response {
    let mut response = (answer.status, answer.body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(admin::JSON_CONTENT_TYPE));
    for (name, value) in answer.headers {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Sends the core's request as it is: method, URL, headers, body, deadline, answer limit.
pub(crate) async fn send(client: &reqwest::Client, request: &OutboundRequest) -> SendResult {
    // The client never follows redirects: the only policy the core asks for.
    let Redirects::Never = request.redirects;
    let mut builder = client.request(request.method.clone(), &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    match http_client::fetch_limited(builder, request.max_answer_bytes, request.timeout).await {
        None => SendResult::TimedOut,
        Some(Err(error)) if error.is_timeout() => SendResult::TimedOut,
        // No connection was made, or the request could not be built: it never left.
        Some(Err(error)) if error.is_connect() || error.is_builder() => {
            SendResult::NotSent(http_client::describe(&error))
        }
        Some(Err(error)) => SendResult::Failed(http_client::describe(&error)),
        Some(Ok(answer)) => SendResult::Answered {
            status: answer.status,
            content_type: answer.content_type,
            body: answer.body,
        },
    }
}

impl Server {
    /// The body read within `--body-timeout-ms`, kept up to one byte past `limit` (more than
    /// `limit` bytes: too large) and the rest read into nothing, as [`BodyRead`] asks; `None` when
    /// it broke or did not arrive in time.
    async fn read_body(&self, mut body: axum::body::Body, limit: usize) -> Option<bytes::Bytes> {
        let read = async {
            let mut kept = bytes::BytesMut::new();
            while let Some(frame) = body.frame().await {
                let Ok(data) = frame.ok()?.into_data() else {
                    continue;
                };
                let room = (limit + 1).saturating_sub(kept.len());
                kept.extend_from_slice(&data[..data.len().min(room)]);
            }
            Some(kept.freeze())
        };
        match tokio::time::timeout(self.body_timeout, read).await {
            Ok(read) => read,
            Err(_) => {
                self.limit_log.bit(Bite::BodyTimeout);
                None
            }
        }
    }

    /// Commits `entry` to the inbox before the answer goes out (within the core's
    /// `STORE_DEADLINE`); a failed or late write is logged with the entry's SID (and reported by
    /// health checks), and the answer is the same.
    async fn keep(&self, entry: Entry) {
        let Some(inbox) = &self.inbox else {
            return;
        };
        let stored = inbox.store(entry.clone()).await;
        match stored {
            Ok(outcome) => {
                if let Some(line) = outcome.line(&entry) {
                    self.write_line(&line);
                }
            }
            Err(error) => self.write_line(&twiml_fallback::inbox::store::write_failed_line(&entry, &error)),
        }
    }

    /// Performs an authenticated admin operation on the inbox, and writes its lines.
    async fn perform(&self, operation: admin::Operation) -> AdminResponse {
        // `Admin::route` answers 503 itself when there is no inbox: no operation comes here then.
        let Some(inbox) = &self.inbox else {
            return AdminResponse::error(http::StatusCode::SERVICE_UNAVAILABLE, "no inbox");
        };
        let settings = inbox.settings();
        let pending = operation.clone();
        let (answer, lines) = inbox
            .run(move |sql| Ok(operation.perform(sql, settings)))
            .await
            .unwrap_or_else(|error| pending.failed(&error));
        for line in &lines {
            self.write_line(line);
        }
        answer
    }

    /// Writes the request's record: the core's JSON line (the Worker's, byte for byte), or its
    /// text rendering.
    fn write_record(&self, record: &LogRecord) {
        self.write(&record.line(), || record.to_text());
    }

    /// Writes a line the core composed (in text, with the time, as a record carries it).
    fn write_line(&self, line: &LogLine) {
        self.write(line, || line.to_text_at(now_ms()));
    }

    fn write(&self, line: &LogLine, text: impl FnOnce() -> String) {
        write_as(self.log_format, line, text);
    }
}

/// Writes a line the core composed, from a thread without the server (the inbox writer's purges).
fn write_line_as(format: LogFormat, line: &LogLine) {
    write_as(format, line, || line.to_text_at(now_ms()));
}

fn write_as(format: LogFormat, line: &LogLine, text: impl FnOnce() -> String) {
    {
        let enabled = match line.level() {
            LogLevel::Info => tracing::enabled!(target: "twiml_fallback::request", tracing::Level::INFO),
            LogLevel::Warn => tracing::enabled!(target: "twiml_fallback::request", tracing::Level::WARN),
            LogLevel::Error => tracing::enabled!(target: "twiml_fallback::request", tracing::Level::ERROR),
        };
        if !enabled {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        let _ = match format {
            LogFormat::Json => writeln!(stderr, "{}", line.to_json()),
            LogFormat::Text => writeln!(stderr, "{}", text()),
        };
    }
}
