//! The fallback endpoint as a pure decision: a request in, a response and a list of effects out.
//!
//! Twilio requests a number's "Primary handler fails" URL with the webhook's usual parameters plus
//! `ErrorCode` and `ErrorUrl`. This module decides everything that endpoint does, so the Cloudflare
//! Worker and `twiml-fallback serve` only perform I/O:
//!
//! - verify `X-Twilio-Signature` (403 and no alert or recovery when it fails);
//! - answer the configured fallback TwiML for the channel and the called number;
//! - emit effects for the shell to perform: exactly one [`LogRecord`] per request, an [`Alert`]
//!   (verified fallback notices only, with a dedup key the shell checks with [`AlertWindows`]), and a
//!   [`RecoveryPlan`] (verified requests whose `ErrorUrl` host is allowlisted: the original
//!   parameters re-signed for `ErrorUrl`, with a deadline);
//! - judge the recovery's answer ([`Edge::judge_recovery`]): relay it only if it is valid TwiML for
//!   the channel (with relative URLs resolved against `ErrorUrl`), otherwise the fallback.
//!
//! Behaviour at the edges:
//!
//! | request | answer | effects |
//! |---|---|---|
//! | signed correctly | 200 fallback TwiML (or the recovered primary's) | log, alert, recovery |
//! | unsigned, forged, wrong token | 403 `text/plain` | log only |
//! | no token configured | 200 fallback TwiML | log only (says why) |
//! | body over 64 KB | 403 with a token (it can't be verified), else 200 `<Response/>` | log only |
//! | unknown channel (no `CallSid`/`MessageSid`) | 200 `<Response/>` (valid in both channels) | as above |
//!
//! Every 200 body is valid TwiML for its channel, at most 64 KB, served as
//! `text/xml; charset=utf-8`.
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
//!     method: "POST",
//!     url,
//!     signature: Some(&signature),
//!     content_type: Some("application/x-www-form-urlencoded"),
//!     body: Body::Complete(body.as_bytes()),
//!     now_ms: 1_700_000_000_000,
//! });
//! assert_eq!(decision.response.status, 200);
//! assert!(decision.response.body.contains("<Message>We're sorry."));
//! let Effect::Log(record) = &decision.effects[0] else { unreachable!() };
//! assert_eq!(record.error_code, Some(11200));
//!
//! // A forged request gets 403 and causes nothing but its log line.
//! let forged = edge.decide(&EdgeRequest { signature: Some("Zm9yZ2VkIHNpZ25hdHVyZSE="), ..EdgeRequest::get(url, 0) });
//! assert_eq!(forged.response.status, 403);
//! assert_eq!(forged.effects.len(), 1);
//! ```

use serde::Serialize;
use sha2::{Digest, Sha256};

mod alert_windows;
pub use alert_windows::{AlertWindows, MAX_ALERT_KEYS};

use crate::config::{AnswerSource, Config, UNKNOWN_CHANNEL_TWIML};
use crate::error_code::ErrorCode;
use crate::signature::{Payload, SIGNATURE_HEADER, SignatureError, SignatureVerifier, compute_signature};
use crate::twiml::{Accepted, AnswerRules, MAX_DOCUMENT_BYTES, resolve_relative_urls};
use crate::webhook::{Channel, FALLBACK_PARAMS, Params};

/// The largest request body the endpoint reads; shells stop reading past it and pass
/// [`Body::TooLarge`].
pub const MAX_REQUEST_BYTES: usize = MAX_DOCUMENT_BYTES;

pub use crate::twiml::TWIML_CONTENT_TYPE;

/// The Content-Type of a 403, and of a relayed plain-text answer.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// The User-Agent of recovery requests.
pub const RECOVERY_USER_AGENT: &str = concat!("twiml-fallback/", env!("CARGO_PKG_VERSION"), " (recovery)");

/// A request to the fallback endpoint, as the shell received it.
#[derive(Clone, Copy, Debug)]
pub struct EdgeRequest<'a> {
    /// The HTTP method (`GET`, `POST`, …).
    pub method: &'a str,
    /// The URL Twilio requested (and signed): see [`crate::signature::UrlPolicy`].
    pub url: &'a str,
    /// The `X-Twilio-Signature` header.
    pub signature: Option<&'a str>,
    /// The `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// The body.
    pub body: Body<'a>,
    /// The current time, in milliseconds since the Unix epoch.
    pub now_ms: u64,
}

impl<'a> EdgeRequest<'a> {
    /// A bodiless GET of `url`, unsigned: a starting point for struct-update syntax.
    pub fn get(url: &'a str, now_ms: u64) -> Self {
        Self {
            method: "GET",
            url,
            signature: None,
            content_type: None,
            body: Body::Complete(&[]),
            now_ms,
        }
    }
}

/// The request body, or the fact that it was too large to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// The whole body (at most [`MAX_REQUEST_BYTES`]).
    Complete(&'a [u8]),
    /// The body exceeded [`MAX_REQUEST_BYTES`]; the shell stopped reading it.
    TooLarge,
}

/// What the endpoint answers and what the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The answer (replaced by [`Edge::judge_recovery`]'s when a recovery is planned).
    pub response: EdgeResponse,
    /// The effects, in the order to start them: the log record (or, when recovery is planned, the
    /// plan that carries it), then the alert.
    pub effects: Vec<Effect>,
}

/// An HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeResponse {
    /// 200 or 403.
    pub status: u16,
    /// [`TWIML_CONTENT_TYPE`] or [`TEXT_CONTENT_TYPE`].
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// Something the shell must do for a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Write this record as one JSON line ([`LogRecord::to_json`]).
    Log(LogRecord),
    /// POST this alert, unless its dedup key was seen within the window.
    Alert(Alert),
    /// Fetch the failed primary, then call [`Edge::judge_recovery`] for the answer and the log
    /// record (the decision itself then carries no [`Effect::Log`]).
    Recover(RecoveryPlan),
}

/// An alert for the configured webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// Where to POST it.
    pub webhook_url: String,
    /// Send at most one alert per key within [`Alert::dedup_seconds`].
    pub dedup_key: String,
    /// The deduplication window (0 = always send).
    pub dedup_seconds: u64,
    /// The JSON body (`Content-Type: application/json`), with a Slack-compatible `text` field.
    pub body: String,
}

/// How long the shells give an alert webhook to answer.
pub const ALERT_TIMEOUT_MS: u64 = 10_000;

impl Alert {
    /// When the deduplication window this alert opens at `now_ms` ends (milliseconds, the
    /// shell's clock): the rule [`AlertWindows`] applies in memory and the Worker in KV.
    pub fn window_end(&self, now_ms: u64) -> u64 {
        now_ms.saturating_add(self.dedup_seconds.saturating_mul(1000))
    }
}

/// A request to re-send to the failed primary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryPlan {
    /// `GET` or `POST`, as the fallback request was made.
    pub method: &'static str,
    /// The primary URL (`ErrorUrl`, with the parameters in its query for a GET).
    pub url: String,
    /// The headers to send: `X-Twilio-Signature`, `User-Agent`, and `Content-Type` for a POST.
    pub headers: Vec<(&'static str, String)>,
    /// The form body for a POST; empty for a GET.
    pub body: String,
    /// Give up after this many milliseconds; never follow redirects.
    pub timeout_ms: u64,
    /// The channel whose rules the answer must pass.
    pub channel: Channel,
    base_url: String,
    fallback: EdgeResponse,
    log: LogRecord,
}

/// How the recovery request went.
#[derive(Clone, Copy, Debug)]
pub enum RecoveryOutcome<'a> {
    /// The primary answered.
    Answered {
        /// Its status.
        status: u16,
        /// Its Content-Type header.
        content_type: Option<&'a str>,
        /// Its body (the shell stops reading past [`MAX_DOCUMENT_BYTES`] + 1 bytes).
        body: &'a [u8],
    },
    /// The deadline passed.
    TimedOut,
    /// The request failed (connection, TLS, DNS, …).
    Failed(&'a str),
}

/// The final answer after a recovery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryJudgement {
    /// What to answer Twilio.
    pub response: EdgeResponse,
    /// The request's one log record.
    pub log: LogRecord,
}

/// The structured log line for one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogRecord {
    /// RFC 3339 UTC time of the request.
    pub time: String,
    /// `fallback`, `recovered` or `forbidden`.
    pub event: &'static str,
    /// The status answered.
    pub status: u16,
    /// The request method.
    pub method: String,
    /// The request path (without query).
    pub path: String,
    /// `voice`, `messaging`, or absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// `CallSid` or `MessageSid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// `AccountSid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_sid: Option<String>,
    /// The called number (`To`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `ErrorCode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u32>,
    /// Twilio's title for the error code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_title: Option<&'static str>,
    /// `ErrorUrl`: the primary URL that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_url: Option<String>,
    /// `valid`, `no-token`, `missing`, `mismatch`, `body-hash-mismatch`, `body-hash-missing`,
    /// `unreadable-body`.
    pub signature: &'static str,
    /// Where the answer came from: `default`, `number`, `unknown-channel`, `recovered`, or
    /// `forbidden`.
    pub answer: &'static str,
    /// The alert's dedup key, when an alert was raised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// What recovery did, when it was considered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery: Option<String>,
    /// Anything else worth knowing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

impl LogRecord {
    /// The record as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"event\":\"log-serialisation-failed\"}"))
    }
}

/// The fallback endpoint: configuration and tokens, deciding request by request.
#[derive(Clone, Debug)]
pub struct Edge {
    config: Config,
    verifier: SignatureVerifier,
}

impl Edge {
    /// An endpoint answering from `config`, verifying with `verifier` (which may hold no token:
    /// then every request gets fallback TwiML but no alert or recovery).
    pub fn new(config: Config, verifier: SignatureVerifier) -> Self {
        Self { config, verifier }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The tokens requests are verified with.
    pub fn verifier(&self) -> &SignatureVerifier {
        &self.verifier
    }

    /// Decides the answer and effects for one request.
    pub fn decide(&self, request: &EdgeRequest<'_>) -> Decision {
        let method = request.method.to_ascii_uppercase();
        let is_get = method == "GET" || method == "HEAD";
        let mut record = LogRecord {
            time: rfc3339(request.now_ms),
            event: "fallback",
            status: 200,
            method: clip(&method),
            path: path_of(request.url),
            channel: None,
            sid: None,
            account_sid: None,
            to: None,
            error_code: None,
            error_title: None,
            error_url: None,
            signature: "valid",
            answer: "default",
            alert: None,
            recovery: None,
            note: None,
        };

        let Body::Complete(body) = request.body else {
            record.note = Some("request body over 64 KB: not read, not from Twilio");
            if self.verifier.is_empty() {
                record.signature = SignatureError::NoToken.as_str();
                record.answer = AnswerSource::UnknownChannel.as_str();
                return log_only(twiml_response(UNKNOWN_CHANNEL_TWIML.to_owned()), record);
            }
            record.signature = "unreadable-body";
            return forbidden(record);
        };

        let query = request
            .url
            .split_once('?')
            .map(|(_, query)| query.split('#').next().unwrap_or(query));
        let params = Params::from_request(&method, query, request.content_type, body);
        let channel = params.channel();
        record.channel = channel;
        record.sid = params.sid_for(channel).map(clip);
        record.account_sid = params.account_sid().map(clip);
        record.to = params.to().map(clip);
        let notice = params.fallback_notice();
        if let Some(notice) = notice {
            record.error_code = params.get("ErrorCode").and_then(|c| c.trim().parse().ok());
            record.error_title = notice.error_code.map(ErrorCode::title);
            record.error_url = notice.error_url.map(clip);
        }

        let method_for_signature: http::Method = if is_get { http::Method::GET } else { http::Method::POST };
        let verified = match self.verify(request, &method_for_signature, body, &params) {
            Ok(verified) => Some(verified),
            Err(SignatureError::NoToken) => {
                record.signature = SignatureError::NoToken.as_str();
                record.note = Some("no auth token configured: signatures unchecked, alerts and recovery disabled");
                None
            }
            Err(error) => {
                record.signature = error.as_str();
                return forbidden(record);
            }
        };

        let fallback = self.config.fallback(channel, params.to());
        record.answer = fallback.source.as_str();
        let response = twiml_response(fallback.twiml.to_owned());
        let Some(token_index) = verified else {
            return log_only(response, record);
        };

        let alert = notice.and_then(|notice| {
            let alerts = self.config.alerts()?;
            Some(self.alert(alerts, notice.error_code, notice.error_url, channel, &params, &record))
        });
        if let Some(alert) = &alert {
            record.alert = Some(alert.dedup_key.clone());
        }

        let plan = self.recovery_plan(&mut record, is_get, &params, token_index, channel, &response);
        let mut effects = Vec::with_capacity(2);
        match plan {
            Some(plan) => effects.push(Effect::Recover(plan)),
            None => effects.push(Effect::Log(record)),
        }
        effects.extend(alert.map(Effect::Alert));
        Decision { response, effects }
    }

    /// Judges the primary's answer to a recovery request by the core's [`AnswerRules`]: relayed
    /// when Twilio would run it (TwiML with relative URLs resolved against the primary's URL,
    /// plain text, a messaging "no reply"), else the planned fallback.
    pub fn judge_recovery(&self, plan: &RecoveryPlan, outcome: RecoveryOutcome<'_>) -> RecoveryJudgement {
        let mut log = plan.log.clone();
        let verdict = match outcome {
            RecoveryOutcome::TimedOut => Err(format!("failed: no answer within {} ms", plan.timeout_ms)),
            RecoveryOutcome::Failed(reason) => Err(format!("failed: {}", clip(reason))),
            RecoveryOutcome::Answered {
                status,
                content_type,
                body,
            } => AnswerRules::for_channel(Some(plan.channel))
                .check(status, content_type, body)
                .map_err(|rejection| format!("rejected: {}", clip(&rejection.to_string())))
                .and_then(|accepted| relayable(plan, &accepted, body)),
        };
        match verdict {
            Ok(response) => {
                log.event = "recovered";
                log.answer = "recovered";
                log.recovery = Some("relayed the primary's answer".to_owned());
                RecoveryJudgement { response, log }
            }
            Err(reason) => {
                log.recovery = Some(reason);
                RecoveryJudgement {
                    response: plan.fallback.clone(),
                    log,
                }
            }
        }
    }

    fn verify(
        &self,
        request: &EdgeRequest<'_>,
        method: &http::Method,
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

    fn alert(
        &self,
        alerts: &crate::config::Alerts,
        code: Option<ErrorCode>,
        error_url: Option<&str>,
        channel: Option<Channel>,
        params: &Params,
        record: &LogRecord,
    ) -> Alert {
        let url_without_query = error_url.map(|url| url.split(['?', '#']).next().unwrap_or(url));
        let code_text = params.get("ErrorCode").unwrap_or("").trim();
        // The dedup key hashes the full values; what is written is clipped.
        let (shown_url, shown_code) = (url_without_query.map(clip), clip(code_text));
        let dedup_source = format!("{code_text}\n{}", url_without_query.unwrap_or(""));
        let digest = Sha256::digest(dedup_source.as_bytes());
        let dedup_key = format!(
            "alert:{}",
            digest
                .iter()
                .take(16)
                .map(|byte| format!("{byte:02x}"))
                .collect::<String>()
        );
        let what = match channel {
            Some(Channel::Voice) => "A call",
            Some(Channel::Messaging) => "A message",
            None => "A request",
        };
        let to = params.to().map(|to| format!(" to {}", clip(to))).unwrap_or_default();
        let code_part = match code {
            Some(code) => format!("{code} ({})", code.title()),
            None if code_text.is_empty() => "an unknown error".to_owned(),
            None => format!("error {shown_code:?}"),
        };
        let at = shown_url.map(|url| format!(" at {url}")).unwrap_or_default();
        let text = format!(
            "twiml-fallback: {what}{to} hit the fallback: the primary webhook{at} failed with {code_part}. \
             Callers get the fallback answer until it recovers."
        );
        let payload = serde_json::json!({
            "text": text,
            "error_code": record.error_code,
            "error_title": record.error_title,
            "error_url": record.error_url,
            "channel": channel,
            "sid": record.sid,
            "to": record.to,
            "time": record.time,
            "dedup_key": dedup_key,
            "dedup_seconds": alerts.dedup_seconds,
        });
        Alert {
            webhook_url: alerts.webhook_url.clone(),
            dedup_key,
            dedup_seconds: alerts.dedup_seconds,
            body: payload.to_string(),
        }
    }

    fn recovery_plan(
        &self,
        record: &mut LogRecord,
        is_get: bool,
        params: &Params,
        token_index: usize,
        channel: Option<Channel>,
        fallback: &EdgeResponse,
    ) -> Option<RecoveryPlan> {
        let recovery = self.config.recovery()?;
        let error_url = params.get("ErrorUrl").filter(|url| !url.is_empty())?;
        let Some(channel) = channel else {
            record.recovery = Some("skipped: unknown channel".to_owned());
            return None;
        };
        if let Err(refusal) = recovery.allows(error_url) {
            record.recovery = Some(format!("refused: {refusal}"));
            return None;
        }
        let base_url = error_url.split('#').next().unwrap_or(error_url).to_owned();
        let replay = params.without(&FALLBACK_PARAMS);
        let token = self.verifier.tokens().get(token_index)?.expose();
        let (method, url, body, signature) = if is_get {
            let separator = if base_url.contains('?') { '&' } else { '?' };
            let url = if replay.is_empty() {
                base_url.clone()
            } else {
                format!("{base_url}{separator}{}", replay.to_form())
            };
            let signature = compute_signature(token, &url, []);
            ("GET", url, String::new(), signature)
        } else {
            let signature = compute_signature(token, &base_url, &replay);
            ("POST", base_url.clone(), replay.to_form(), signature)
        };
        let mut headers = vec![
            (SIGNATURE_HEADER, signature),
            ("User-Agent", RECOVERY_USER_AGENT.to_owned()),
        ];
        if !is_get {
            headers.push(("Content-Type", "application/x-www-form-urlencoded".to_owned()));
        }
        record.recovery = Some("attempted".to_owned());
        Some(RecoveryPlan {
            method,
            url,
            headers,
            body,
            timeout_ms: recovery.timeout_ms,
            channel,
            base_url,
            fallback: fallback.clone(),
            log: record.clone(),
        })
    }
}

impl RecoveryPlan {
    /// The record logged if the shell cannot perform the recovery at all.
    pub fn log(&self) -> &LogRecord {
        &self.log
    }

    /// The answer to give if the recovery is not performed.
    pub fn fallback(&self) -> &EdgeResponse {
        &self.fallback
    }
}

fn twiml_response(body: String) -> EdgeResponse {
    EdgeResponse {
        status: 200,
        content_type: TWIML_CONTENT_TYPE,
        body,
    }
}

fn log_only(response: EdgeResponse, mut record: LogRecord) -> Decision {
    record.status = response.status;
    Decision {
        response,
        effects: vec![Effect::Log(record)],
    }
}

fn forbidden(mut record: LogRecord) -> Decision {
    record.event = "forbidden";
    record.answer = "forbidden";
    record.status = 403;
    Decision {
        response: EdgeResponse {
            status: 403,
            content_type: TEXT_CONTENT_TYPE,
            body: "Forbidden: X-Twilio-Signature is missing or does not match this request.\n".to_owned(),
        },
        effects: vec![Effect::Log(record)],
    }
}

/// The path of a URL (absolute or origin-form), without query or fragment.
fn path_of(url: &str) -> String {
    let after_authority = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |slash| &rest[slash..]),
        None => url,
    };
    let path = after_authority.split(['?', '#']).next().unwrap_or("/");
    clip(if path.is_empty() { "/" } else { path })
}

/// At most 512 characters of a request-controlled value, so records stay bounded.
fn clip(text: &str) -> String {
    const LIMIT: usize = 512;
    match text.char_indices().nth(LIMIT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the Unix epoch.
pub fn rfc3339(now_ms: u64) -> String {
    let seconds = now_ms / 1000;
    let millis = now_ms % 1000;
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let second_of_day = seconds % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// What the endpoint relays of an answer the recovered primary gave, as Twilio would run it:
/// TwiML with its relative URLs resolved against the primary's URL (and checked again once
/// rebased), plain text as plain text, a messaging `204` as an empty `<Response/>`. Audio is not
/// relayed (the planned fallback answers instead): the endpoint's answers are text.
fn relayable(plan: &RecoveryPlan, accepted: &Accepted, body: &[u8]) -> Result<EdgeResponse, String> {
    match accepted {
        Accepted::NoReply => Ok(twiml_response(UNKNOWN_CHANNEL_TWIML.to_owned())),
        Accepted::Audio => Err("not relayed: an audio answer (the endpoint relays TwiML and text)".to_owned()),
        Accepted::PlainText => {
            let text = std::str::from_utf8(body).map_err(|_| "rejected: plain text that is not UTF-8".to_owned())?;
            Ok(EdgeResponse {
                status: 200,
                content_type: TEXT_CONTENT_TYPE,
                body: text.to_owned(),
            })
        }
        Accepted::Twiml { .. } => {
            let text = std::str::from_utf8(body).map_err(|_| "rejected: not UTF-8".to_owned())?;
            let resolved = resolve_relative_urls(text, &plan.base_url);
            if resolved.len() > MAX_DOCUMENT_BYTES {
                return Err("rejected: over 64 KB once its relative URLs are resolved".to_owned());
            }
            // What is relayed is checked, not only what was received.
            if matches!(resolved, std::borrow::Cow::Owned(_)) {
                AnswerRules::for_channel(Some(plan.channel))
                    .check(200, Some(TWIML_CONTENT_TYPE), resolved.as_bytes())
                    .map_err(|rejection| format!("rejected once rebased: {}", clip(&rejection.to_string())))?;
            }
            Ok(twiml_response(resolved.into_owned()))
        }
    }
}

#[cfg(test)]
mod tests;
