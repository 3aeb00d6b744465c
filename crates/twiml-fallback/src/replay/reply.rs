//! The Messages API: where replies go, how a send is requested, and what its answer means.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use http::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{Method, StatusCode};

use super::REPLAY_USER_AGENT;
use crate::edge::{OutboundRequest, Redirects, SendOutcome};
use crate::inbox::{Reply, ReplyState};
use crate::webhook::{encode_form, is_sid};

/// Twilio's REST API.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

/// How long a send may take before its outcome counts as unknown.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// How much of the API's answer is read.
const MAX_API_ANSWER_BYTES: usize = 64 * 1024;

/// Where replies are sent and with which credentials: the account's auth token (the token the
/// endpoint verifies and signs with), or an API key and its secret.
#[derive(Clone)]
pub struct TwilioApi {
    base: String,
    key: Option<(String, String)>,
}

impl Default for TwilioApi {
    fn default() -> Self {
        Self {
            base: DEFAULT_API_BASE.to_owned(),
            key: None,
        }
    }
}

/// A base URL credentials may be sent to — Twilio's (`https://api.twilio.com`), or a local fake
/// in tests: an absolute http(s) URL without query or fragment, `https` unless it is a loopback
/// address (the credentials travel with every request: in clear text only to this machine).
/// Returned without its trailing `/`.
///
/// ```
/// use twiml_fallback::replay::api_base;
///
/// assert_eq!(api_base("https://api.twilio.com/").as_deref(), Ok("https://api.twilio.com"));
/// assert!(api_base("http://127.0.0.1:3000").is_ok());
/// assert!(api_base("http://api.example.com").is_err());
/// assert!(api_base("https://api.twilio.com?x=1").is_err());
/// ```
pub fn api_base(base: &str) -> Result<String, String> {
    let base = base.trim().trim_end_matches('/');
    let parts =
        crate::url::split(base).filter(|_| crate::url::is_absolute_http_url(base) && !base.contains(['?', '#']));
    let Some(parts) = parts else {
        return Err(format!(
            "the API base {base:?} is not an absolute http(s) URL without query (e.g. {DEFAULT_API_BASE})"
        ));
    };
    let loopback = matches!(parts.host(), "localhost" | "[::1]") || parts.host().starts_with("127.");
    if !parts.scheme().eq_ignore_ascii_case("https") && !loopback {
        return Err(format!(
            "the API base {base:?} is plain http: the credentials would cross the network unencrypted (https, or a loopback address for a local fake)"
        ));
    }
    Ok(base.to_owned())
}

/// Never shows the API key's secret.
impl fmt::Debug for TwilioApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioApi")
            .field("base", &self.base)
            .field("key", &self.key.as_ref().map(|(sid, _)| sid))
            .finish()
    }
}

impl TwilioApi {
    /// The API at `base` (`https://api.twilio.com`, or a local fake in tests): an absolute
    /// http(s) URL without query or fragment.
    pub fn new(base: &str) -> Result<Self, String> {
        Ok(Self {
            base: api_base(base)?,
            key: None,
        })
    }

    /// Authenticates with an API key (`SK…`) and its secret instead of the account's auth token.
    pub fn with_api_key(mut self, sid: impl Into<String>, secret: impl Into<String>) -> Self {
        self.key = Some((sid.into(), secret.into()));
        self
    }

    /// The API key as a shell finds it (`TWILIO_API_KEY`, `TWILIO_API_SECRET`): both or neither —
    /// one without the other is an error that says so, rather than a silent fallback to the auth
    /// token.
    pub fn with_credentials(self, key: Option<String>, secret: Option<String>) -> Result<Self, String> {
        match (
            key.filter(|key| !key.is_empty()),
            secret.filter(|secret| !secret.is_empty()),
        ) {
            (Some(key), Some(secret)) => Ok(self.with_api_key(key, secret)),
            (None, None) => Ok(self),
            (Some(_), None) => Err("TWILIO_API_KEY is set without TWILIO_API_SECRET".to_owned()),
            (None, Some(_)) => Err("TWILIO_API_SECRET is set without TWILIO_API_KEY".to_owned()),
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// How it authenticates, in words (for the start-up line; never the credentials).
    pub fn auth_kind(&self) -> &'static str {
        if self.key.is_some() {
            "api key (TWILIO_API_KEY)"
        } else {
            "the account's auth token"
        }
    }

    /// Whether it authenticates with an API key (`TWILIO_API_KEY`) rather than the auth token.
    pub fn has_api_key(&self) -> bool {
        self.key.is_some()
    }

    /// An alert text to `to` from the account `account_sid`, sent `from` a number or through
    /// the Messaging Service `service`: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`.
    pub(crate) fn text_request(
        &self,
        account_sid: &str,
        token: &str,
        to: &str,
        from: Option<&str>,
        service: Option<&str>,
        body: &str,
    ) -> Result<OutboundRequest, String> {
        if !is_sid(account_sid, "AC") {
            return Err("no valid AccountSid to text from".to_owned());
        }
        let mut form: Vec<(&str, &str)> = vec![("To", to), ("Body", body)];
        match (from, service) {
            (Some(from), _) => form.push(("From", from)),
            (None, Some(service)) => form.push(("MessagingServiceSid", service)),
            (None, None) => return Err("no sms_from or messaging_service_sid".to_owned()),
        }
        Ok(self.messages_post(account_sid, token, encode_form(form)))
    }

    fn messages_post(&self, account: &str, token: &str, body: String) -> OutboundRequest {
        let (user, password) = match &self.key {
            Some((sid, secret)) => (sid.as_str(), secret.as_str()),
            None => (account, token),
        };
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        OutboundRequest {
            method: Method::POST,
            url: format!("{}/2010-04-01/Accounts/{account}/Messages.json", self.base),
            headers: vec![
                (AUTHORIZATION, format!("Basic {credentials}")),
                (CONTENT_TYPE, "application/x-www-form-urlencoded".to_owned()),
                (USER_AGENT, REPLAY_USER_AGENT.to_owned()),
            ],
            body: Some(body),
            timeout: SEND_TIMEOUT,
            max_answer_bytes: MAX_API_ANSWER_BYTES,
            redirects: Redirects::Never,
        }
    }

    /// The request that sends `reply` from the account `account_sid`: `POST
    /// {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic, form-encoded `To`,
    /// `From`, `Body`, each `MediaUrl`, `StatusCallback`. An account SID that is not one is
    /// refused before it goes into the path.
    pub(crate) fn message_request(
        &self,
        account_sid: Option<&str>,
        token: &str,
        reply: &Reply,
    ) -> Result<OutboundRequest, String> {
        let account = account_sid
            .filter(|sid| is_sid(sid, "AC"))
            .ok_or("the entry has no valid AccountSid to send from")?;
        if reply.to.trim().is_empty() || reply.from.trim().is_empty() {
            return Err("the reply has no To or no From (the entry has no sender or no number)".to_owned());
        }
        let mut form: Vec<(&str, &str)> = vec![("To", &reply.to), ("From", &reply.from), ("Body", &reply.body)];
        form.extend(reply.media.iter().map(|url| ("MediaUrl", url.as_str())));
        if let Some(callback) = &reply.status_callback {
            form.push(("StatusCallback", callback));
        }
        Ok(self.messages_post(account, token, encode_form(form)))
    }
}

/// What a send's outcome means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SendVerdict {
    /// The reply's state: sent, refused (not sent), unknown (maybe sent) or, when Twilio refused
    /// the request itself (the credentials, the rate), still planned: certainly not sent.
    pub(crate) state: ReplyState,
    /// The message's SID, when sent.
    pub(crate) sid: Option<String>,
    /// Why it was not sent, or what left it unknown.
    pub(crate) error: Option<String>,
    /// Whether the Messages API itself is in trouble (unreachable, failing, refusing the
    /// credentials, rate limiting): replay then holds every send until it is back.
    pub(crate) api_trouble: bool,
}

/// What a send's outcome means for the reply: sent (with the message's SID); refused by Twilio
/// for this message (a 400 with its code and message: not sent); not sent because Twilio refused
/// the request itself (401, 403 and 404: the credentials or the account; 429: the rate) — the
/// reply stays planned, for when the API takes it — as it does when the request never left (no
/// connection could be made); or unknown (a 5xx, a 408, a timeout, a connection that failed once
/// made, an answer that is not Twilio's: it may have gone out, so it is never re-sent).
pub(crate) fn judge_send(outcome: &SendOutcome<'_>) -> SendVerdict {
    let verdict = |state, error: String, api_trouble| SendVerdict {
        state,
        sid: None,
        error: Some(error),
        api_trouble,
    };
    match outcome {
        SendOutcome::Answered { status, body, .. } => {
            let json: Option<serde_json::Value> = std::str::from_utf8(body)
                .ok()
                .and_then(|text| serde_json::from_str(text).ok());
            let field = |name: &str| {
                json.as_ref()
                    .and_then(|json| json.get(name))
                    .map(|value| value.as_str().map_or_else(|| value.to_string(), str::to_owned))
            };
            let twilio_error = || {
                let code = field("code").unwrap_or_else(|| "-".to_owned());
                let message = field("message").unwrap_or_default();
                format!("HTTP {}, error {code}: {message}", status.as_u16())
            };
            if status.is_success() {
                match field("sid").filter(|sid| is_sid(sid, "SM") || is_sid(sid, "MM")) {
                    Some(sid) => SendVerdict {
                        state: ReplyState::Sent,
                        sid: Some(sid),
                        error: None,
                        api_trouble: false,
                    },
                    None => verdict(
                        ReplyState::Unknown,
                        format!(
                            "the Messages API answered HTTP {} without a message SID",
                            status.as_u16()
                        ),
                        true,
                    ),
                }
            } else if matches!(
                *status,
                StatusCode::UNAUTHORIZED
                    | StatusCode::FORBIDDEN
                    | StatusCode::NOT_FOUND
                    | StatusCode::TOO_MANY_REQUESTS
            ) {
                verdict(
                    ReplyState::Planned,
                    format!(
                        "not sent, Twilio refused the request ({}): sent when the API takes it",
                        twilio_error()
                    ),
                    true,
                )
            } else if status.is_client_error() && *status != StatusCode::REQUEST_TIMEOUT {
                verdict(
                    ReplyState::Refused,
                    format!("Twilio refused it: {}", twilio_error()),
                    false,
                )
            } else {
                verdict(
                    ReplyState::Unknown,
                    format!(
                        "the Messages API answered HTTP {}: it may or may not have been sent",
                        status.as_u16()
                    ),
                    true,
                )
            }
        }
        SendOutcome::TimedOut => verdict(
            ReplyState::Unknown,
            format!(
                "no answer from the Messages API within {} s: it may or may not have been sent",
                SEND_TIMEOUT.as_secs()
            ),
            true,
        ),
        SendOutcome::NotSent(reason) => verdict(
            ReplyState::Planned,
            format!(
                "not sent, the Messages API could not be reached ({}): sent once it can",
                crate::edge::clip(reason)
            ),
            true,
        ),
        SendOutcome::Failed(reason) => verdict(
            ReplyState::Unknown,
            format!(
                "the Messages API request failed ({}): it may or may not have been sent",
                crate::edge::clip(reason)
            ),
            true,
        ),
    }
}
