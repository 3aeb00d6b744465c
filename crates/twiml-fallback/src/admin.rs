//! The admin API under `/_twiml-fallback/`: routing, authentication and JSON, decided once for
//! both backends.
//!
//! | request | answer |
//! |---|---|
//! | `GET /_twiml-fallback/inbox?status=&channel=&limit=&cursor=` | `{"entries": [...], "next": CURSOR\|null}`, newest first |
//! | `GET /_twiml-fallback/inbox/{sid}` | the entry, or 404 |
//! | `POST /_twiml-fallback/inbox/{sid}/dismiss` | the dismissed entry, or 404 |
//! | `POST /_twiml-fallback/inbox` (JSON [`CaptureRequest`]) | the stored entry (the layer's capture sink) |
//! | `POST /_twiml-fallback/replay` (optional JSON [`PassRequest`]: `sids`, `dry_run`, `send_withheld`) | a replay pass's [`PassSummary`](crate::replay::PassSummary), or 409 when replay is off (with why) |
//! | `GET /_twiml-fallback/replay` | `{"replay": "on"}`, or `{"replay": "off", "reason": …}` |
//! | `GET /_twiml-fallback/incidents?limit=` | `{"incidents": [...]}`: open ones first, then the most recent (default 50, at most 500), each with its counts and every sink's notifications ([`crate::incident`]) |
//! | `POST /_twiml-fallback/alerts/test` (optional JSON `{"account_sid": "AC…"}`) | a test notification through every configured sink: `{"results": [{"sink", "kind", "delivered", "outcome"}], "delivered"}` (502 when one failed, 409 without `[alerts]`) |
//!
//! Every request needs `TWIML_FALLBACK_ADMIN_TOKEN`, as `Authorization: Bearer TOKEN` or HTTP
//! Basic with the token as the password (any user name, so a browser can open the API); it is
//! compared in constant time. Missing or wrong: 401 with `WWW-Authenticate: Basic
//! realm="twiml-fallback"`. With no admin token configured, every admin path answers 404, as if
//! it did not exist. Errors are JSON: `{"error": "..."}`.
//!
//! A shell calls [`Admin::route`] before the fallback endpoint's decision: `None` means the
//! request is not for the admin API. [`Routed::Inbox`] holds the [`Operation`] to perform on the
//! shell's store with [`Operation::perform`], which runs the core's statements through the
//! shell's [`Sql`] driver and renders the answer.
//!
//! # Example
//!
//! ```
//! use http::{Method, StatusCode};
//! use twiml_fallback::admin::{Admin, AdminRequest, Routed};
//!
//! let admin = Admin::new(Some("admin-secret".to_owned()), true);
//! let list = |authorization| AdminRequest {
//!     method: &Method::GET,
//!     url: "https://fallback.example.com/_twiml-fallback/inbox?status=pending",
//!     authorization,
//!     body: Some(b""),
//! };
//! let Some(Routed::Answer(refused)) = admin.route(&list(None), 0) else { unreachable!() };
//! assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
//! assert!(matches!(admin.route(&list(Some("Bearer admin-secret")), 0), Some(Routed::Inbox(_))));
//!
//! // Not an admin path: the fallback endpoint decides.
//! let voice = AdminRequest { url: "https://fallback.example.com/voice", ..list(None) };
//! assert!(admin.route(&voice, 0).is_none());
//! ```

use base64::Engine as _;
use http::{Method, StatusCode};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::InboxSettings;
use crate::inbox::store::ListQuery;
use crate::inbox::{self, Capture, CaptureRequest, Entry, Sql, StoreOutcome};
use crate::replay::PassRequest;

/// The path segment every admin path starts with.
pub const ADMIN_SEGMENT: &str = "/_twiml-fallback";

/// The largest admin request body read (a capture of a 64 KB webhook, as JSON).
pub const MAX_ADMIN_BODY_BYTES: usize = 256 * 1024;

/// The environment variable (serve) or secret (Worker) holding the admin token.
pub const ADMIN_TOKEN_VARIABLE: &str = "TWIML_FALLBACK_ADMIN_TOKEN";

/// The Content-Type of every admin answer.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// The challenge a 401 carries, so a browser asks for the token.
pub const WWW_AUTHENTICATE: &str = r#"Basic realm="twiml-fallback""#;

/// A request the shell received, as far as the admin API needs it.
#[derive(Clone, Copy, Debug)]
pub struct AdminRequest<'a> {
    /// The method.
    pub method: &'a Method,
    /// The URL (absolute or origin-form).
    pub url: &'a str,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The body, read up to [`MAX_ADMIN_BODY_BYTES`]; `None` when it was larger or could not be
    /// read (an authenticated request then gets 413).
    pub body: Option<&'a [u8]>,
}

/// An admin answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers besides Content-Type ([`JSON_CONTENT_TYPE`]): `Cache-Control: no-store` on
    /// every answer, `WWW-Authenticate` on a 401.
    pub headers: Vec<(&'static str, &'static str)>,
    /// The JSON body.
    pub body: String,
}

impl AdminResponse {
    pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Self {
        Self {
            status,
            headers: vec![("cache-control", "no-store")],
            body: serde_json::to_string(value).unwrap_or_else(|_| "{\"error\":\"serialisation failed\"}".to_owned()),
        }
    }

    /// An error answer: `status` and `{"error": message}`, as every admin error reads.
    pub fn error(status: StatusCode, message: impl Into<String>) -> Self {
        Self::json(status, &serde_json::json!({ "error": message.into() }))
    }
}

/// What [`Admin::route`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routed {
    /// Answer this (401, 404, 400, 405, 503, 413).
    Answer(AdminResponse),
    /// Perform this on the inbox, then answer what it returns.
    Inbox(Operation),
    /// Run a replay pass ([`crate::replay`]) and answer its summary.
    Replay(PassRequest),
    /// Send a test notification through every sink
    /// ([`Alerting::test_dispatches`](crate::incident::Alerting::test_dispatches), the account
    /// from [`crate::incident::test_account`]) and answer
    /// [`Alerting::test_answer`](crate::incident::Alerting::test_answer).
    AlertTest(AlertTest),
}

/// `POST /_twiml-fallback/alerts/test`'s body.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertTest {
    /// The account to text from (else the last incident's).
    #[serde(default)]
    pub account_sid: Option<String>,
}

/// How many incidents `GET /_twiml-fallback/incidents` lists unless `limit` says.
pub const DEFAULT_INCIDENT_LIMIT: usize = 50;

/// The most incidents one listing holds.
pub const MAX_INCIDENT_LIMIT: usize = 500;

/// An authenticated inbox operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// List entries.
    List(ListQuery),
    /// One entry.
    Show(String),
    /// Dismiss one entry.
    Dismiss(String),
    /// Store what the layer caught.
    Store(Box<Entry>),
    /// List incidents (open first), as of `now_ms`.
    Incidents {
        /// How many.
        limit: usize,
        /// Now, for the open ones' durations.
        now_ms: u64,
    },
}

/// The admin API: its token, and whether there is an inbox behind it.
#[derive(Clone, Debug)]
pub struct Admin {
    token_digest: Option<[u8; 32]>,
    has_inbox: bool,
    replay_off: Option<&'static str>,
}

fn digest(text: &[u8]) -> [u8; 32] {
    Sha256::digest(text).into()
}

impl Admin {
    /// The API with this token (`None`: every admin path answers 404) over an inbox, when the
    /// shell has one (else its inbox paths answer 503).
    pub fn new(token: Option<String>, has_inbox: bool) -> Self {
        Self {
            token_digest: token
                .filter(|token| !token.is_empty())
                .map(|token| digest(token.as_bytes())),
            has_inbox,
            replay_off: Some("replay is not configured on this endpoint"),
        }
    }

    /// Whether replay can run, as [`Replayer::off`](crate::replay::Replayer::off) says: `None`
    /// when it can, else why not (the replay paths then answer it).
    pub fn with_replay(mut self, off: Option<&'static str>) -> Self {
        self.replay_off = off;
        self
    }

    /// Whether `url`'s path is under [`ADMIN_SEGMENT`]: the shell then reads the body up to
    /// [`MAX_ADMIN_BODY_BYTES`] and calls [`Admin::route`], which answers it.
    pub fn claims(&self, url: &str) -> bool {
        admin_path(url).is_some()
    }

    /// Whether an admin token is configured.
    pub fn is_enabled(&self) -> bool {
        self.token_digest.is_some()
    }

    /// Routes a request: `None` when its path is not under [`ADMIN_SEGMENT`], else the answer or
    /// the operation.
    pub fn route(&self, request: &AdminRequest<'_>, now_ms: u64) -> Option<Routed> {
        let rest = admin_path(request.url)?;
        let Some(expected) = &self.token_digest else {
            return Some(Routed::Answer(AdminResponse::error(StatusCode::NOT_FOUND, "not found")));
        };
        if !authorized(expected, request.authorization) {
            let mut refused = AdminResponse::error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong admin token: send Authorization: Bearer $TWIML_FALLBACK_ADMIN_TOKEN",
            );
            refused.headers.push(("www-authenticate", WWW_AUTHENTICATE));
            return Some(Routed::Answer(refused));
        }
        let segments: Vec<&str> = rest.split('/').filter(|segment| !segment.is_empty()).collect();
        let method = request.method;
        let operation = match (segments.as_slice(), method) {
            (["inbox"], &Method::GET) | (["inbox"], &Method::HEAD) => {
                match ListQuery::from_query(crate::url::query(request.url)) {
                    Ok(query) => Operation::List(query),
                    Err(message) => {
                        return Some(Routed::Answer(AdminResponse::error(StatusCode::BAD_REQUEST, message)));
                    }
                }
            }
            (["inbox"], &Method::POST) => match request
                .body
                .ok_or_else(too_large)
                .and_then(|body| capture_of(body, now_ms))
            {
                Ok(entry) => Operation::Store(entry),
                Err(answer) => return Some(Routed::Answer(answer)),
            },
            (["inbox", sid], &Method::GET) | (["inbox", sid], &Method::HEAD) => Operation::Show((*sid).to_owned()),
            (["inbox", sid, "dismiss"], &Method::POST) => Operation::Dismiss((*sid).to_owned()),
            (["replay"], &Method::GET) | (["replay"], &Method::HEAD) => {
                let off = if self.has_inbox {
                    self.replay_off
                } else {
                    Some("this endpoint keeps no inbox, so there is nothing to replay")
                };
                let status = match off {
                    None => serde_json::json!({ "replay": "on" }),
                    Some(reason) => serde_json::json!({ "replay": "off", "reason": reason }),
                };
                return Some(Routed::Answer(AdminResponse::json(StatusCode::OK, &status)));
            }
            (["replay"], &Method::POST) => {
                let request = request.body.ok_or_else(too_large).and_then(|body| {
                    PassRequest::from_body(body)
                        .map_err(|message| AdminResponse::error(StatusCode::BAD_REQUEST, message))
                });
                let request = match request {
                    Ok(request) => request,
                    Err(answer) => return Some(Routed::Answer(answer)),
                };
                if let Some(reason) = self.replay_off.filter(|_| self.has_inbox) {
                    return Some(Routed::Answer(AdminResponse::error(
                        StatusCode::CONFLICT,
                        format!("replay is off: {reason}"),
                    )));
                }
                if !self.has_inbox {
                    return Some(Routed::Answer(no_inbox()));
                }
                return Some(Routed::Replay(request));
            }
            (["incidents"], &Method::GET) | (["incidents"], &Method::HEAD) => {
                match incident_limit(crate::url::query(request.url)) {
                    Ok(limit) => Operation::Incidents { limit, now_ms },
                    Err(message) => {
                        return Some(Routed::Answer(AdminResponse::error(StatusCode::BAD_REQUEST, message)));
                    }
                }
            }
            (["alerts", "test"], &Method::POST) => {
                let test = request.body.ok_or_else(too_large).and_then(|body| {
                    let text = std::str::from_utf8(body).unwrap_or("");
                    if text.trim().is_empty() {
                        return Ok(AlertTest::default());
                    }
                    serde_json::from_str::<AlertTest>(text).map_err(|error| {
                        AdminResponse::error(
                            StatusCode::BAD_REQUEST,
                            format!("the body is not {{\"account_sid\": \"AC…\"}}: {error}"),
                        )
                    })
                });
                return Some(match test {
                    Ok(test) => Routed::AlertTest(test),
                    Err(answer) => Routed::Answer(answer),
                });
            }
            (["inbox"], _)
            | (["inbox", _], _)
            | (["inbox", _, "dismiss"], _)
            | (["replay"], _)
            | (["incidents"], _)
            | (["alerts", "test"], _) => {
                return Some(Routed::Answer(AdminResponse::error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("{method} is not allowed here"),
                )));
            }
            _ => {
                return Some(Routed::Answer(AdminResponse::error(
                    StatusCode::NOT_FOUND,
                    "no such admin path",
                )));
            }
        };
        if !self.has_inbox {
            return Some(Routed::Answer(no_inbox()));
        }
        Some(Routed::Inbox(operation))
    }
}

/// `limit=N` of an incidents listing (1 to [`MAX_INCIDENT_LIMIT`]).
fn incident_limit(query: Option<&str>) -> Result<usize, String> {
    let params = crate::webhook::Params::from_form(query.unwrap_or("").as_bytes());
    match params.get("limit") {
        None => Ok(DEFAULT_INCIDENT_LIMIT),
        Some(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_INCIDENT_LIMIT).contains(limit))
            .ok_or_else(|| format!("limit must be 1 to {MAX_INCIDENT_LIMIT}")),
    }
}

fn no_inbox() -> AdminResponse {
    AdminResponse::error(
        StatusCode::SERVICE_UNAVAILABLE,
        "this endpoint keeps no inbox (serve --no-inbox, or a Worker without the INBOX binding)",
    )
}

fn too_large() -> AdminResponse {
    AdminResponse::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is over {MAX_ADMIN_BODY_BYTES} bytes or could not be read"),
    )
}

/// The part of the path after [`ADMIN_SEGMENT`], when the path has that segment (also behind a
/// proxy's prefix: `/twilio/_twiml-fallback/inbox`).
fn admin_path(url: &str) -> Option<&str> {
    let path = crate::url::path(url);
    let at = path.find(ADMIN_SEGMENT)?;
    let rest = &path[at + ADMIN_SEGMENT.len()..];
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// Whether `authorization` carries the token (Bearer, or Basic with it as the password), compared
/// as SHA-256 digests in constant time (so neither its bytes nor its length leak).
fn authorized(expected: &[u8; 32], authorization: Option<&str>) -> bool {
    let Some(header) = authorization.map(str::trim) else {
        return false;
    };
    let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
    let credentials = credentials.trim();
    let token = if scheme.eq_ignore_ascii_case("bearer") {
        credentials.as_bytes().to_vec()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials) else {
            return false;
        };
        match decoded.iter().position(|&b| b == b':') {
            Some(colon) => decoded[colon + 1..].to_vec(),
            None => return false,
        }
    } else {
        return false;
    };
    bool::from(digest(&token).ct_eq(expected))
}

fn capture_of(body: &[u8], now_ms: u64) -> Result<Box<Entry>, AdminResponse> {
    let not_a_capture = |error: &dyn std::fmt::Display| {
        AdminResponse::error(
            StatusCode::BAD_REQUEST,
            format!("the body is not a capture (JSON: channel, url, method, params, cause, error_code): {error}"),
        )
    };
    // Text first, then JSON from text: the core parses JSON from `&str` everywhere else, so the
    // Worker's wasm carries one JSON reader, not a second one for bytes.
    let body = std::str::from_utf8(body).map_err(|error| not_a_capture(&error))?;
    let capture: CaptureRequest = serde_json::from_str(body).map_err(|error| not_a_capture(&error))?;
    match capture.into_capture(now_ms) {
        Capture::Keep(entry) => Ok(entry),
        Capture::Skip(skip) => Err(AdminResponse::error(StatusCode::UNPROCESSABLE_ENTITY, skip.as_str())),
    }
}

impl Operation {
    /// Performs the operation on the shell's inbox and renders the answer: 200 with the JSON, 404
    /// for an unknown SID, 507 when the inbox is full, 500 when the store fails (its error in
    /// the body — the caller is an authenticated operator). The lines to log come back with it.
    pub fn perform<S: Sql>(self, sql: &mut S, settings: InboxSettings) -> (AdminResponse, Vec<crate::edge::LogLine>) {
        let not_found =
            |sid: &str| AdminResponse::error(StatusCode::NOT_FOUND, format!("no entry {sid:?} in the inbox"));
        let found = |result: Result<Option<Entry>, inbox::StoreError>, sid: &str| match result {
            Ok(Some(entry)) => Ok(AdminResponse::json(StatusCode::OK, &entry)),
            Ok(None) => Ok(not_found(sid)),
            Err(error) => Err(error),
        };
        let result = match &self {
            Operation::List(query) => inbox::list(sql, query).map(|page| AdminResponse::json(StatusCode::OK, &page)),
            Operation::Show(sid) => found(inbox::get(sql, sid), sid),
            Operation::Incidents { limit, now_ms } => crate::incident::list(sql, *limit).map(|incidents| {
                let incidents: Vec<serde_json::Value> = incidents
                    .iter()
                    .map(|(incident, deliveries)| incident.to_json(deliveries, *now_ms))
                    .collect();
                AdminResponse::json(StatusCode::OK, &serde_json::json!({ "incidents": incidents }))
            }),
            Operation::Dismiss(sid) => found(inbox::dismiss(sql, sid), sid),
            Operation::Store(entry) => {
                let stored = inbox::store(sql, entry, settings).and_then(|outcome| {
                    let kept = match outcome {
                        StoreOutcome::Full { .. } => None,
                        StoreOutcome::Stored | StoreOutcome::Duplicate => inbox::get(sql, &entry.sid)?,
                    };
                    Ok((outcome, kept))
                });
                match stored {
                    Ok((outcome, kept)) => {
                        let lines = outcome.line(entry).into_iter().collect();
                        let answer = match kept {
                            Some(kept) => AdminResponse::json(StatusCode::OK, &kept),
                            None => AdminResponse::error(
                                StatusCode::INSUFFICIENT_STORAGE,
                                "the inbox is full ([inbox] max_entries): not stored",
                            ),
                        };
                        return (answer, lines);
                    }
                    Err(error) => Err(error),
                }
            }
        };
        match result {
            Ok(answer) => (answer, Vec::new()),
            Err(error) => self.failed(&error),
        }
    }

    /// The answer, and the lines to log, when the store could not be reached or failed: 500 with
    /// the error (the caller is an authenticated operator) and, for a capture, the entry's
    /// `write_failed_line` — the same whether the shell's driver failed or it never reached one.
    pub fn failed(&self, error: &inbox::StoreError) -> (AdminResponse, Vec<crate::edge::LogLine>) {
        let answer = AdminResponse::error(StatusCode::INTERNAL_SERVER_ERROR, format!("the inbox failed: {error}"));
        let lines = match self {
            Operation::Store(entry) => vec![inbox::store::write_failed_line(entry, error)],
            Operation::List(_) | Operation::Show(_) | Operation::Dismiss(_) | Operation::Incidents { .. } => Vec::new(),
        };
        (answer, lines)
    }
}

#[cfg(test)]
mod tests;
