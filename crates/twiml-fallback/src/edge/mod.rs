//! The fallback endpoint as a pure decision: a request in, a response and a list of effects out.
//!
//! Twilio requests a number's "Primary handler fails" URL with the webhook's usual parameters plus
//! `ErrorCode` and `ErrorUrl`. This module decides everything that endpoint does, so the Cloudflare
//! Worker and `twiml-fallback serve` only perform I/O:
//!
//! - answer health checks (`GET`/`HEAD` of `/healthz`, see [`is_health_check`]) with
//!   `200 text/plain "ok\n"` before anything else, revealing nothing and causing nothing;
//! - verify `X-Twilio-Signature` (403 and no incident or recovery when it fails);
//! - answer the configured fallback TwiML for the channel and the called number;
//! - emit [effects](effect) for the shell to perform, each a complete value: exactly one
//!   [`LogRecord`] per request (but a health check), a [`Notice`] for the incident of the failing
//!   primary (verified fallback notices only: [`crate::incident`] opens, counts and resolves
//!   incidents and says who is told), and a [`RecoveryPlan`] (verified requests whose
//!   `ErrorUrl` host is allowlisted: the original parameters re-signed for `ErrorUrl`, with a
//!   deadline);
//! - answer a verified probe — a synthetic fallback request from `numbers audit --probe`,
//!   marked by the signed parameter [`PROBE_PARAM`](crate::webhook::PROBE_PARAM) — exactly as
//!   the real request it imitates, with its record ([`LogRecord::probe`]) as its only effect:
//!   the owner checking that the fallback answers is not a person to keep, an outage to count or
//!   a primary to retry;
//! - judge the recovery's answer ([`Edge::judge_recovery`]): relay it only if Twilio would run it
//!   (TwiML with relative URLs resolved against `ErrorUrl`, plain text, a messaging "no reply"),
//!   otherwise the fallback.
//!
//! Before deciding, [`BodyRead::for_request`] tells the shell how much of the body to keep. The
//! contract between the core and its shells is in [`effect`].
//!
//! Behaviour at the edges:
//!
//! | request | answer | effects |
//! |---|---|---|
//! | `GET`/`HEAD` `…/healthz` (signed or not, any query) | 200 `text/plain` `ok\n` | none |
//! | signed correctly | 200 fallback TwiML (or the recovered primary's) | keep, log, incident, recovery |
//! | signed correctly, with a probe id (`TwimlFallbackProbe`, from `numbers audit --probe`) | 200 fallback TwiML for its channel and number (never the primary's) | log only, with `probe` and a note |
//! | unsigned, forged, wrong token (a probe id too) | 403 `text/plain` | log only |
//! | no token configured | 200 fallback TwiML | log only (says why; a probe id is logged too) |
//! | body over 64 KB | 403 with a token (it can't be verified), else 200 `<Response/>` | log only |
//! | unknown channel (no `CallSid`/`MessageSid`) | 200 `<Response/>` (valid in both channels) | as above |
//!
//! Every 200 body is at most 64 KB: valid TwiML for its channel served as
//! `text/xml; charset=utf-8`, a recovered primary's plain-text answer as
//! `text/plain; charset=utf-8`, or a health check's [`HEALTH_BODY`].
//!
//! A health check is not logged: monitors and container runtimes probe every few seconds, and a
//! record for each would bury the records that matter (each one a call or message Twilio failed
//! over), while the answer carries nothing to audit — it is the same for everyone.
//!
//! # Example
//!
//! ```
//! use twiml_fallback::config::Config;
//! use twiml_fallback::edge::{Body, Edge, EdgeRequest, Effect};
//! use twiml_fallback::signature::{compute_signature, SignatureVerifier};
//! use twiml_fallback::webhook::Params;
//!
//! let edge = Edge::new(Config::default(), SignatureVerifier::new("auth-token"));
//!
//! // What Twilio sends after the primary SMS webhook failed with a 500.
//! let url = "https://fallback.example.com/sms";
//! let body = "MessageSid=SM1&From=%2B14155550100&To=%2B14155550199&Body=hi\
//!             &ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fsms";
//! let signature = compute_signature("auth-token", url, &Params::from_form(body.as_bytes()));
//! let decision = edge.decide(&EdgeRequest {
//!     method: &http::Method::POST,
//!     url,
//!     signature: Some(&signature),
//!     content_type: Some("application/x-www-form-urlencoded"),
//!     body: Body::Complete(body.as_bytes()),
//!     now_ms: 1_700_000_000_000,
//!     inbox_failing: false,
//! });
//! assert_eq!(decision.response.status, http::StatusCode::OK);
//! assert!(decision.response.body.contains("<Message>We're sorry."));
//! let Effect::Log(record) = &decision.effects[0] else { unreachable!() };
//! assert_eq!(record.error_code, Some(11200));
//!
//! // A forged request gets 403 and causes nothing but its log line.
//! let forged = edge.decide(&EdgeRequest { signature: Some("Zm9yZ2VkIHNpZ25hdHVyZSE="), ..EdgeRequest::get(url, 0) });
//! assert_eq!(forged.response.status, http::StatusCode::FORBIDDEN);
//! assert_eq!(forged.effects.len(), 1);
//!
//! // An uptime monitor's probe: 200 "ok", with or without a token, and nothing else happens.
//! let health = edge.decide(&EdgeRequest::get("https://fallback.example.com/healthz", 0));
//! assert_eq!((health.response.status, health.response.body.as_str()), (http::StatusCode::OK, "ok\n"));
//! assert!(health.effects.is_empty());
//! ```

use http::{Method, StatusCode};

pub mod effect;
mod log;
mod recovery;

pub use effect::{BodyRead, Effect, OutboundRequest, Redirects, SendOutcome, SendResult};
pub(crate) use log::clip;
pub use log::{AnswerFrom, LogEvent, LogLevel, LogLine, LogRecord, SignatureCheck, rfc3339, rfc5322};
pub(crate) use recovery::signed_webhook;
pub use recovery::{RECOVERY_USER_AGENT, RecoveryJudgement, RecoveryPlan};

use crate::config::{Config, UNKNOWN_CHANNEL_TWIML};
use crate::error_code::ErrorCode;
use crate::inbox::{self, Capture, Entry, Source};
use crate::incident::Notice;
use crate::signature::{Payload, SignatureError, SignatureVerifier, UrlHint};
use crate::twiml::MAX_DOCUMENT_BYTES;
use crate::webhook::Params;

/// The largest request body the endpoint reads; shells stop reading past it and pass
/// [`Body::TooLarge`].
pub const MAX_REQUEST_BYTES: usize = MAX_DOCUMENT_BYTES;

pub use crate::twiml::TWIML_CONTENT_TYPE;

/// The Content-Type of a 403, and of a relayed plain-text answer.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// The body of a health check's answer (served as [`TEXT_CONTENT_TYPE`]).
pub const HEALTH_BODY: &str = "ok\n";

/// The body of a health check's answer (503) while inbox writes fail.
pub const DEGRADED_BODY: &str = "degraded: the inbox cannot be written; missed messages and calls are not being kept\n";

/// What the shells warn at start-up when they keep no inbox.
pub const NO_INBOX_WARNING: &str = "no inbox: missed messages and calls are answered but not kept";

/// What the shells warn at start-up when they keep an inbox but have no auth token.
pub const INBOX_NO_TOKEN_WARNING: &str =
    "no TWILIO_AUTH_TOKEN: nothing is kept in the inbox (only requests with a valid signature are stored)";

/// Whether a request is a health check: `GET` or `HEAD` of a path whose last segment is `healthz`
/// (`/healthz`; `/twilio/healthz` behind a proxy that adds a prefix, or with
/// `UrlPolicy::public_base`'s path), whatever the query. [`Edge::decide`] answers it 200 `ok`
/// before any signature check, the same with a token or without, and causes no effect: not even a
/// log record.
///
/// ```
/// use http::Method;
/// use twiml_fallback::edge::is_health_check;
///
/// assert!(is_health_check(&Method::GET, "https://fallback.example.com/healthz"));
/// assert!(is_health_check(&Method::HEAD, "/twilio/healthz?probe=1"));
/// assert!(!is_health_check(&Method::POST, "/healthz"));
/// assert!(!is_health_check(&Method::GET, "/healthz/voice"));
/// assert!(!is_health_check(&Method::GET, "/not-healthz"));
/// ```
pub fn is_health_check(method: &Method, url: &str) -> bool {
    let path = crate::url::path(url);
    (method == Method::GET || method == Method::HEAD) && (path == "/healthz" || path.ends_with("/healthz"))
}

/// The note of a verified probe's record.
const PROBE_NOTE: &str = "a probe from numbers audit --probe: answered, not kept, no incident, no recovery";

/// What the shells warn at start-up when no auth token is configured.
pub const NO_TOKEN_WARNING: &str = "no TWILIO_AUTH_TOKEN: every request gets the fallback TwiML, but signatures are not checked and no alerts or recovery happen";

/// A request to the fallback endpoint, as the shell received it.
#[derive(Clone, Copy, Debug)]
pub struct EdgeRequest<'a> {
    /// The HTTP method (see [`method_of`] for one received as text).
    pub method: &'a Method,
    /// The URL Twilio requested (and signed): see [`crate::signature::UrlPolicy`].
    pub url: &'a str,
    /// The `X-Twilio-Signature` header.
    pub signature: Option<&'a str>,
    /// The `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// The body, read as [`BodyRead::for_request`] said.
    pub body: Body<'a>,
    /// The current time, in milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// Whether the shell's last inbox write failed (and none has succeeded since): a health check
    /// then answers 503 `degraded`, so a monitor sees that missed requests are being lost.
    pub inbox_failing: bool,
}

static GET: Method = Method::GET;

impl<'a> EdgeRequest<'a> {
    /// A bodiless GET of `url`, unsigned: a starting point for struct-update syntax.
    pub fn get(url: &'a str, now_ms: u64) -> Self {
        Self {
            method: &GET,
            url,
            signature: None,
            content_type: None,
            body: Body::Complete(&[]),
            now_ms,
            inbox_failing: false,
        }
    }
}

/// A method received as text (a runtime that hands it over as a string): an invalid one, which
/// no HTTP stack passes on, is taken as `POST` — it then has to verify like any POST.
pub fn method_of(text: &str) -> Method {
    Method::from_bytes(text.as_bytes()).unwrap_or(Method::POST)
}

/// The request body, or why there is none to decide on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// The whole body (at most [`MAX_REQUEST_BYTES`]).
    Complete(&'a [u8]),
    /// The body exceeded [`MAX_REQUEST_BYTES`]; the shell kept no more of it.
    TooLarge,
    /// The body could not be read whole: the connection broke, or it did not arrive in time
    /// (Twilio sends a whole request at once).
    Unreadable,
}

impl<'a> Body<'a> {
    /// The body from what the shell read under [`BodyRead::UpTo`]: `None` for a read that failed
    /// or timed out, else the bytes read, which may run past the limit (then it is too large).
    /// (Under [`BodyRead::Refuse`] the shell passes [`Body::TooLarge`], keeping none of it.)
    pub fn from_read(read: Option<&'a [u8]>) -> Self {
        match read {
            Some(bytes) if bytes.len() <= MAX_REQUEST_BYTES => Body::Complete(bytes),
            Some(_) => Body::TooLarge,
            None => Body::Unreadable,
        }
    }
}

/// What the endpoint answers and what the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The answer (replaced by [`Edge::judge_recovery`]'s when a recovery is planned).
    pub response: EdgeResponse,
    /// The effects, in the order to start them: the log record (or, when recovery is planned, the
    /// plan that carries it), then the incident notice. Empty for a health check only.
    pub effects: Vec<Effect>,
}

impl Decision {
    /// A decision answering `response` whose one record is `log` or, when there is one, `plan`'s;
    /// then the incident `notice`. The entry to keep goes first — committed before the answer — or, with a
    /// recovery, into the plan (the recovery's outcome decides whether it is kept).
    fn new(
        response: EdgeResponse,
        mut log: LogRecord,
        plan: Option<RecoveryPlan>,
        notice: Option<Notice>,
        keep: Option<Box<Entry>>,
    ) -> Self {
        let mut effects = Vec::with_capacity(3);
        match plan {
            Some(mut plan) => {
                plan.keep = keep;
                plan.notice = notice;
                effects.push(Effect::Recover(plan));
            }
            None => {
                effects.extend(keep.map(Effect::Keep));
                log.status = response.status;
                effects.push(Effect::Log(log));
                effects.extend(notice.map(Effect::Incident));
            }
        }
        Decision { response, effects }
    }
}

impl Decision {
    /// Explains a refused signature with what the shell knows about the request's URL: when
    /// this decision refused the request because its signature did not match, `hint` is called
    /// and its answer (typically [`UrlPolicy::mismatch_hint`] over the request's headers and the
    /// address the shell listens on) joins the record as `hint`. Any other decision is returned
    /// unchanged, without calling `hint`. A shell that receives the URL Twilio requested as it is
    /// (a Worker) has nothing to add and need not call this.
    ///
    /// ```
    /// use twiml_fallback::config::Config;
    /// use twiml_fallback::edge::{Edge, EdgeRequest, Effect};
    /// use twiml_fallback::signature::{SignatureVerifier, UrlPolicy};
    ///
    /// let edge = Edge::new(Config::default(), SignatureVerifier::new("auth-token"));
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("host", "abcd.ngrok-free.app".parse().unwrap());
    /// headers.insert("x-forwarded-proto", "https".parse().unwrap());
    /// let listen = "127.0.0.1:8787".parse().ok();
    ///
    /// // Signed for https://abcd.ngrok-free.app/voice, checked as received.
    /// let url = "http://abcd.ngrok-free.app/voice";
    /// let decision = edge
    ///     .decide(&EdgeRequest { signature: Some("c2lnbmVkIGVsc2V3aGVyZQ=="), ..EdgeRequest::get(url, 0) })
    ///     .explain_mismatch(|| UrlPolicy::as_received().mismatch_hint(&headers, listen));
    /// let Effect::Log(record) = &decision.effects[0] else { unreachable!() };
    /// assert_eq!(record.checked_url.as_deref(), Some(url));
    /// assert!(record.hint.as_deref().is_some_and(|hint| hint.contains("--public-url https://abcd.ngrok-free.app")));
    /// ```
    ///
    /// [`UrlPolicy::mismatch_hint`]: crate::signature::UrlPolicy::mismatch_hint
    pub fn explain_mismatch(mut self, hint: impl FnOnce() -> Option<UrlHint>) -> Self {
        let refused = self.effects.iter_mut().find_map(|effect| match effect {
            Effect::Log(record) if record.signature == SignatureCheck::Mismatch => Some(record),
            _ => None,
        });
        if let Some(record) = refused {
            record.hint = hint().map(|hint| hint.to_string());
        }
        self
    }
}

/// An HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeResponse {
    /// 200 or 403.
    pub status: StatusCode,
    /// [`TWIML_CONTENT_TYPE`] or [`TEXT_CONTENT_TYPE`].
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// The fallback endpoint: configuration and tokens, deciding request by request.
#[derive(Clone, Debug)]
pub struct Edge {
    config: Config,
    verifier: SignatureVerifier,
    keep_inbox: bool,
}

impl Edge {
    /// An endpoint answering from `config`, verifying with `verifier` (which may hold no token:
    /// then every request gets fallback TwiML but no alert or recovery).
    pub fn new(config: Config, verifier: SignatureVerifier) -> Self {
        Self {
            config,
            verifier,
            keep_inbox: false,
        }
    }

    /// The same endpoint keeping (or not) an outage inbox: each verified request a person sent
    /// ([`inbox::capture`]) becomes an [`Effect::Keep`] the shell commits before answering.
    pub fn with_inbox(mut self, keep: bool) -> Self {
        self.keep_inbox = keep;
        self
    }

    /// Whether this endpoint keeps an inbox.
    pub fn keeps_inbox(&self) -> bool {
        self.keep_inbox
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The tokens requests are verified with.
    pub fn verifier(&self) -> &SignatureVerifier {
        &self.verifier
    }

    /// What a shell warns about when it starts with this endpoint.
    pub fn startup_warnings(&self) -> Vec<&'static str> {
        let mut warnings = Vec::new();
        if self.verifier.is_empty() {
            warnings.push(NO_TOKEN_WARNING);
        }
        match (self.keep_inbox, self.verifier.is_empty()) {
            (false, _) => warnings.push(NO_INBOX_WARNING),
            (true, true) => warnings.push(INBOX_NO_TOKEN_WARNING),
            (true, false) => {}
        }
        warnings
    }

    /// Decides the answer and effects for one request.
    pub fn decide(&self, request: &EdgeRequest<'_>) -> Decision {
        let method = request.method;
        if is_health_check(method, request.url) {
            let (status, body) = if request.inbox_failing {
                (StatusCode::SERVICE_UNAVAILABLE, DEGRADED_BODY)
            } else {
                (StatusCode::OK, HEALTH_BODY)
            };
            return Decision {
                response: EdgeResponse {
                    status,
                    content_type: TEXT_CONTENT_TYPE,
                    body: body.to_owned(),
                },
                effects: Vec::new(),
            };
        }
        let is_get = method == Method::GET || method == Method::HEAD;
        let mut record = LogRecord {
            time: rfc3339(request.now_ms),
            event: LogEvent::Fallback,
            status: StatusCode::OK,
            method: clip(method.as_str()),
            path: path_of(request.url),
            channel: None,
            sid: None,
            account_sid: None,
            to: None,
            error_code: None,
            error_title: None,
            error_url: None,
            signature: SignatureCheck::Valid,
            checked_url: None,
            answer: AnswerFrom::Default,
            incident: None,
            recovery: None,
            inbox: None,
            probe: None,
            note: None,
            hint: None,
        };

        let body = match request.body {
            Body::Complete(body) => Some(body),
            Body::TooLarge => {
                record.note = Some("request body over 64 KB: not read, not from Twilio");
                None
            }
            Body::Unreadable => {
                record.note = Some("request body broken or too slow to arrive: not from Twilio");
                None
            }
        };
        let Some(body) = body else {
            if self.verifier.is_empty() {
                record.signature = SignatureCheck::NoToken;
                record.answer = AnswerFrom::UnknownChannel;
                return Decision::new(
                    twiml_response(UNKNOWN_CHANNEL_TWIML.to_owned()),
                    record,
                    None,
                    None,
                    None,
                );
            }
            record.signature = SignatureCheck::UnreadableBody;
            return forbidden(record);
        };

        let params = Params::from_request(method, crate::url::query(request.url), request.content_type, body);
        let channel = params.channel();
        record.channel = channel;
        record.sid = params.sid_for(channel).map(clip);
        record.account_sid = params.account_sid().map(clip);
        record.to = params.to().map(clip);
        record.probe = params.probe().map(clip);
        let notice = params.fallback_notice();
        if let Some(notice) = notice {
            record.error_code = params.get("ErrorCode").and_then(|c| c.trim().parse().ok());
            record.error_title = notice.error_code.map(ErrorCode::title);
            record.error_url = notice.error_url.map(clip);
        }

        let method_for_signature = if is_get { Method::GET } else { Method::POST };
        let verified = match self.verify(request, &method_for_signature, body, &params) {
            Ok(verified) => Some(verified),
            Err(SignatureError::NoToken) => {
                record.signature = SignatureCheck::NoToken;
                record.note = Some("no auth token configured: signatures unchecked, alerts and recovery disabled");
                None
            }
            Err(error) => {
                record.signature = error.into();
                if error != SignatureError::Missing {
                    // A signature was there and failed against this URL: the one to compare with
                    // the URL Twilio requested.
                    record.checked_url = Some(clip(request.url));
                }
                return forbidden(record);
            }
        };

        let fallback = self.config.fallback(channel, params.to());
        record.answer = fallback.source.into();
        let response = twiml_response(fallback.twiml.to_owned());
        let Some(token_index) = verified else {
            return Decision::new(response, record, None, None, None);
        };
        let keep = match self.keep_inbox.then(|| {
            inbox::capture(
                &params,
                method_for_signature.as_str(),
                request.url,
                request.now_ms,
                Source::Edge,
            )
        }) {
            Some(Capture::Keep(entry)) => {
                record.inbox = Some("kept");
                Some(entry)
            }
            Some(Capture::Skip(skip)) => {
                record.inbox = Some(skip.as_str());
                None
            }
            None => None,
        };
        if record.probe.is_some() {
            // The account's owner checking the fallback (`numbers audit --probe`): the answer a
            // real request would get, and nothing else. `inbox::capture` keeps no probe.
            record.note = Some(PROBE_NOTE);
            return Decision::new(response, record, None, None, None);
        }

        let incident_notice = notice.map(|notice| {
            let mut filed =
                Notice::from_error_url(notice.error_url, params.get("ErrorCode").unwrap_or(""), request.now_ms);
            filed.channel = channel;
            filed.to = params.to().map(clip);
            filed.account_sid = params.account_sid().map(clip);
            filed.kept = keep.is_some();
            if self.config.alerts().is_some_and(|alerts| alerts.include_bodies) {
                filed.body = keep.as_ref().and_then(|entry| entry.body.clone());
            }
            record.incident = Some(filed.origin.clone());
            filed
        });
        let plan = self.recovery_plan(&mut record, is_get, &params, token_index, channel, &response);
        Decision::new(response, record, plan, incident_notice, keep)
    }

    fn verify(
        &self,
        request: &EdgeRequest<'_>,
        method: &Method,
        body: &[u8],
        params: &Params,
    ) -> Result<usize, SignatureError> {
        if self.verifier.is_empty() {
            return Err(SignatureError::NoToken);
        }
        let signature = request.signature.unwrap_or("");
        let payload = Payload::for_request(method, request.url, body, params);
        self.verifier
            .verify(request.url, payload, signature)
            .map(|verified| verified.token_index)
    }
}

fn twiml_response(body: String) -> EdgeResponse {
    EdgeResponse {
        status: StatusCode::OK,
        content_type: TWIML_CONTENT_TYPE,
        body,
    }
}

fn forbidden(mut record: LogRecord) -> Decision {
    record.event = LogEvent::Forbidden;
    record.answer = AnswerFrom::Forbidden;
    let response = EdgeResponse {
        status: StatusCode::FORBIDDEN,
        content_type: TEXT_CONTENT_TYPE,
        body: "Forbidden: X-Twilio-Signature is missing or does not match this request.\n".to_owned(),
    };
    Decision::new(response, record, None, None, None)
}

/// The path of a URL (absolute or origin-form), without query or fragment; `/` when empty.
fn path_of(url: &str) -> String {
    let path = crate::url::path(url);
    clip(if path.is_empty() { "/" } else { path })
}

#[cfg(test)]
mod tests;
