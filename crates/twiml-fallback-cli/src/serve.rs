//! `twiml-fallback serve`: the fallback endpoint on the core's `edge` decision, natively.
//!
//! This module only performs I/O — reading requests, logging records, sending alerts (deduplicated
//! in memory), fetching the primary for a recovery — every decision is `Edge`'s.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Limited};
use twiml_fallback::config::Config;
use twiml_fallback::edge::{
    ALERT_TIMEOUT_MS, Alert, AlertWindows, Body, Edge, EdgeRequest, Effect, LogRecord, MAX_REQUEST_BYTES,
    RecoveryOutcome, RecoveryPlan,
};
use twiml_fallback::signature::{SIGNATURE_HEADER, SignatureVerifier, UrlPolicy};
use twiml_fallback::twiml::MAX_DOCUMENT_BYTES;

use crate::cli::ServeArgs;
use crate::error::CliError;
use crate::http_client;

/// Shared by every request.
struct Server {
    edge: Edge,
    policy: UrlPolicy,
    client: reqwest::Client,
    /// Which alerts went out, and when their windows end.
    alert_windows: Mutex<AlertWindows>,
    /// The clock of those windows.
    started: Instant,
}

/// Loads a configuration file (TOML or JSON).
pub(crate) fn load_config(path: &std::path::Path) -> Result<Config, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| CliError::new(format!("cannot read {}: {error}", path.display())))?;
    Config::from_str_auto(&text).map_err(|errors| {
        CliError::new(format!("{} is not a valid configuration:\n{errors}", path.display()))
            .hint("every problem is listed above, by path; the README's Configuration section has the schema")
    })
}

pub(crate) async fn run(args: ServeArgs) -> Result<ExitCode, CliError> {
    crate::logging::init(args.log_format);
    let config = match &args.config {
        Some(path) => load_config(path)?,
        None => Config::default(),
    };
    let verifier = SignatureVerifier::from_tokens(
        [args.auth_token.clone(), args.secondary_auth_token.clone()]
            .into_iter()
            .flatten(),
    );
    let policy = match (&args.public_url, args.trust_forwarded_headers) {
        (Some(url), _) => UrlPolicy::public_base(url)
            .map_err(|error| CliError::new(error.to_string()).hint("e.g. --public-url https://fallback.example.com"))?,
        (None, true) => UrlPolicy::trust_forwarded_headers(),
        (None, false) => UrlPolicy::as_received(),
    };
    if verifier.is_empty() {
        tracing::warn!(
            "no TWILIO_AUTH_TOKEN: every request gets the fallback TwiML, but signatures are not checked and no alerts or recovery happen"
        );
    }
    let client = http_client::client(0, http_client::USER_AGENT).map_err(CliError::new)?;
    let server = Arc::new(Server {
        edge: Edge::new(config, verifier),
        policy,
        client,
        alert_windows: Mutex::new(AlertWindows::default()),
        started: Instant::now(),
    });
    let app = Router::new()
        .route("/healthz", get(healthz))
        .fallback(handle)
        .with_state(Arc::clone(&server));
    let listener = tokio::net::TcpListener::bind(args.addr).await.map_err(|error| {
        CliError::new(format!("cannot listen on {}: {error}", args.addr))
            .hint("is another process using the port? choose another with --addr")
    })?;
    let addr = listener.local_addr().unwrap_or(args.addr);
    tracing::info!(
        address = %addr,
        config = args.config.as_ref().map_or("embedded defaults".to_owned(), |p| p.display().to_string()),
        tokens = server.edge.verifier().tokens().len(),
        "twiml-fallback serve: listening on http://{addr}"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|error| CliError::new(format!("the server stopped: {error}")))?;
    tracing::info!("twiml-fallback serve: stopped");
    Ok(ExitCode::SUCCESS)
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

async fn healthz() -> &'static str {
    "ok\n"
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

async fn handle(State(server): State<Arc<Server>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let url = server
        .policy
        .signed_url(&parts)
        .unwrap_or_else(|_| parts.uri.to_string());
    let header = |name: &str| parts.headers.get(name).and_then(|value| value.to_str().ok());
    let declared_too_large = header(CONTENT_LENGTH.as_str())
        .and_then(|length| length.trim().parse::<u64>().ok())
        .is_some_and(|length| length > MAX_REQUEST_BYTES as u64);
    let bytes = if declared_too_large {
        None
    } else {
        // Stop reading past the limit; a broken body is as unverifiable as a huge one.
        Limited::new(body, MAX_REQUEST_BYTES)
            .collect()
            .await
            .ok()
            .map(|collected| collected.to_bytes())
    };
    let request = EdgeRequest {
        method: parts.method.as_str(),
        url: &url,
        signature: header(SIGNATURE_HEADER),
        content_type: header(CONTENT_TYPE.as_str()),
        body: bytes.as_deref().map_or(Body::TooLarge, Body::Complete),
        now_ms: now_ms(),
    };
    let decision = server.edge.decide(&request);
    let mut answer = decision.response;
    for effect in decision.effects {
        match effect {
            Effect::Log(record) => log(&record),
            Effect::Alert(alert) => server.alert(alert),
            Effect::Recover(plan) => {
                let judgement = server.recover(&plan).await;
                answer = judgement.response;
                log(&judgement.log);
            }
        }
    }
    let mut response = (
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK),
        answer.body,
    )
        .into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    response
}

/// One structured line per request.
fn log(record: &LogRecord) {
    tracing::info!(
        target: "twiml_fallback::request",
        event = record.event,
        status = record.status,
        method = %record.method,
        path = %record.path,
        channel = record.channel.map(|channel| channel.as_str()),
        sid = record.sid.as_deref(),
        account_sid = record.account_sid.as_deref(),
        to = record.to.as_deref(),
        error_code = record.error_code,
        error_title = record.error_title,
        error_url = record.error_url.as_deref(),
        signature = record.signature,
        answer = record.answer,
        alert = record.alert.as_deref(),
        recovery = record.recovery.as_deref(),
        note = record.note,
        time = %record.time,
        "{}", record.event
    );
}

impl Server {
    /// Sends an alert in the background, unless one with the same key went out within its window.
    fn alert(self: &Arc<Self>, alert: Alert) {
        if !self.first_in_window(&alert) {
            tracing::debug!(dedup_key = %alert.dedup_key, "alert suppressed: already sent in this window");
            return;
        }
        let client = self.client.clone();
        tokio::spawn(async move {
            let sent = client
                .post(&alert.webhook_url)
                .header(CONTENT_TYPE, "application/json")
                .timeout(Duration::from_millis(ALERT_TIMEOUT_MS))
                .body(alert.body)
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    tracing::info!(dedup_key = %alert.dedup_key, status = response.status().as_u16(), "alert sent");
                }
                Ok(response) => {
                    tracing::warn!(dedup_key = %alert.dedup_key, status = response.status().as_u16(), "alert webhook refused the alert");
                }
                Err(error) => {
                    tracing::warn!(dedup_key = %alert.dedup_key, error = %http_client::describe(&error), "alert could not be sent");
                }
            }
        });
    }

    /// Records the alert's key; `false` when it is still inside an earlier alert's window.
    fn first_in_window(&self, alert: &Alert) -> bool {
        // A monotonic clock: a wall-clock jump must not reopen or stretch a window.
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut windows = match self.alert_windows.lock() {
            Ok(windows) => windows,
            Err(poisoned) => poisoned.into_inner(),
        };
        windows.first_in_window(alert, now_ms)
    }

    /// Re-requests the failed primary as planned and lets `Edge` judge its answer.
    async fn recover(&self, plan: &RecoveryPlan) -> twiml_fallback::edge::RecoveryJudgement {
        let method = if plan.method == "GET" {
            reqwest::Method::GET
        } else {
            reqwest::Method::POST
        };
        let mut request = self
            .client
            .request(method, &plan.url)
            .timeout(Duration::from_millis(plan.timeout_ms));
        for (name, value) in &plan.headers {
            request = request.header(*name, value);
        }
        if !plan.body.is_empty() {
            request = request.body(plan.body.clone());
        }
        let deadline = Duration::from_millis(plan.timeout_ms);
        match http_client::fetch_limited(request, MAX_DOCUMENT_BYTES, deadline).await {
            None => self.edge.judge_recovery(plan, RecoveryOutcome::TimedOut),
            Some(Err(error)) if error.is_timeout() => self.edge.judge_recovery(plan, RecoveryOutcome::TimedOut),
            Some(Err(error)) => self
                .edge
                .judge_recovery(plan, RecoveryOutcome::Failed(&http_client::describe(&error))),
            Some(Ok(answer)) => self.edge.judge_recovery(
                plan,
                RecoveryOutcome::Answered {
                    status: answer.status,
                    content_type: answer.content_type.as_deref(),
                    body: &answer.body,
                },
            ),
        }
    }
}
