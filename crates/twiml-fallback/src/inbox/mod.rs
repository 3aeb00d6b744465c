//! The outage inbox: every message and call the app missed, kept so it can be replayed.
//!
//! When Twilio fails over to the fallback endpoint, the fallback answers the person — and, until
//! now, what they wrote was lost to the business. The inbox keeps it: each **verified** request
//! that a person sent (an inbound message, an inbound call) becomes an [`Entry`] holding its
//! numbers, body, media, the error Twilio reported, the URL and method it arrived on, and every
//! original parameter in order (so replay can rebuild the exact webhook).
//!
//! This module is the model and every rule about it, as pure functions over data:
//!
//! - [`capture`]: which requests are kept (inbound messages and calls; never a status callback)
//!   and the entry each becomes;
//! - [`Entry`] and its JSON (the admin API's contract), [`Status`] and its transitions
//!   ([`Entry::dismissed`]);
//! - [`store`](mod@store): the one SQLite schema both backends use, its migrations and every statement, run
//!   through a shell's driver (the [`Sql`] trait: `rusqlite` in `serve`, a Durable Object's SQL
//!   storage in the Worker).
//!
//! # Example
//!
//! ```
//! use twiml_fallback::inbox::{capture, Capture, Source, Status};
//! use twiml_fallback::webhook::Params;
//!
//! let params = Params::from_form(
//!     b"MessageSid=SM1&AccountSid=AC1&From=%2B14155550100&To=%2B14155550199&Body=Order+42%3F\
//!       &SmsStatus=received&ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fsms",
//! );
//! let Capture::Keep(entry) = capture(&params, "POST", "https://fallback.example.com/sms", 1_700_000_000_000, Source::Edge)
//! else { unreachable!() };
//! assert_eq!((entry.sid.as_str(), entry.status, entry.error_code), ("SM1", Status::Pending, Some(11200)));
//! assert_eq!(entry.body.as_deref(), Some("Order 42?"));
//!
//! // A delivery receipt for a message the app sent is answered, never kept.
//! let receipt = Params::from_form(b"MessageSid=SM2&MessageStatus=delivered&To=%2B14155550100");
//! assert!(matches!(capture(&receipt, "POST", "https://fallback.example.com/sms", 0, Source::Edge), Capture::Skip(_)));
//! ```

pub mod queue;
mod reply;
pub mod store;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::edge::rfc3339;
use crate::webhook::{Channel, Params};

pub use reply::{Reply, ReplyKind, ReplyState};
pub use store::{
    ListQuery, Page, PurgeSchedule, STORE_DEADLINE, Sql, SqlValue, Statement, StoreError, StoreOutcome, dismiss,
    entry_from_wire, entry_to_wire, get, list, migrate, purge, store,
};

/// Where an entry in the inbox stands.
///
/// ```text
/// messaging:  pending ──deliver──▶ replaying ──app answered──▶ replayed
///                └── max_attempts ──▶ failed       └── died mid-send ──▶ needs-attention
/// voice:      missed ── recording callback ──▶ voicemail
/// any:        ── dismiss ──▶ dismissed (body and media deleted)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// A message waiting to be replayed to the app.
    Pending,
    /// A message being replayed.
    Replaying,
    /// A message the app has answered on replay.
    Replayed,
    /// A message whose replay gave up after its attempts.
    Failed,
    /// A replay that died while sending the app's reply: never re-sent, a person decides.
    NeedsAttention,
    /// A call nobody answered.
    Missed,
    /// A call the caller left a voicemail on.
    Voicemail,
    /// Removed from replay by an operator; body and media deleted.
    Dismissed,
}

impl Status {
    /// Every status, in the order of the diagram.
    pub const ALL: [Status; 8] = [
        Status::Pending,
        Status::Replaying,
        Status::Replayed,
        Status::Failed,
        Status::NeedsAttention,
        Status::Missed,
        Status::Voicemail,
        Status::Dismissed,
    ];

    /// The status as stored and in JSON (`pending`, `needs-attention`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Replaying => "replaying",
            Status::Replayed => "replayed",
            Status::Failed => "failed",
            Status::NeedsAttention => "needs-attention",
            Status::Missed => "missed",
            Status::Voicemail => "voicemail",
            Status::Dismissed => "dismissed",
        }
    }

    /// The status a new entry of `channel` starts in: a message waits for replay, a call was missed.
    pub fn initial(channel: Channel) -> Self {
        match channel {
            Channel::Messaging => Status::Pending,
            Channel::Voice => Status::Missed,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = Status::ALL.iter().map(|status| status.as_str()).collect();
                format!("unknown status {text:?} (one of: {})", known.join(", "))
            })
    }
}

/// Who caught the failed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The fallback endpoint (`serve` or the Worker): Twilio failed over to it.
    Edge,
    /// The tower layer inside the app, through its capture sink.
    Layer,
}

impl Source {
    /// `edge` or `layer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Edge => "edge",
            Source::Layer => "layer",
        }
    }
}

/// One missed message or call. Its JSON is the admin API's contract: every field below, under
/// these names (`received_at` in RFC 3339, UTC; `params` as `[key, value]` pairs in order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `MessageSid` or `CallSid`: the entry's identity (the same SID twice is one entry).
    pub sid: String,
    /// `messaging` or `voice`.
    pub channel: Channel,
    /// `AccountSid`.
    pub account_sid: Option<String>,
    /// The sender or caller (`From`).
    pub from: Option<String>,
    /// The number they wrote to or called (`To`).
    pub to: Option<String>,
    /// The message text (`Body`); `None` for a call or once dismissed.
    pub body: Option<String>,
    /// The message's media URLs (`MediaUrl0`, …), in order.
    pub media: Vec<String>,
    /// The `ErrorCode` Twilio reported (or, from the layer, the code Twilio would have logged).
    pub error_code: Option<u32>,
    /// The `ErrorUrl`: the primary webhook that failed.
    pub error_url: Option<String>,
    /// Why the layer caught it (`panic`, `timeout`, `invalid-twiml`, …); `None` from the edge.
    pub cause: Option<String>,
    /// The URL the request arrived on.
    pub url: String,
    /// Its method (`POST` or `GET`).
    pub method: String,
    /// When it was received, RFC 3339 in UTC with milliseconds.
    pub received_at: String,
    /// The same instant, in milliseconds since the Unix epoch (the store's order).
    pub received_at_ms: u64,
    /// Where it stands.
    pub status: Status,
    /// Replay attempts so far.
    pub attempts: u32,
    /// The last replay attempt's error.
    pub last_error: Option<String>,
    /// `edge` or `layer`.
    pub source: Source,
    /// Every original parameter, in order, repeated keys kept.
    pub params: Vec<(String, String)>,
    /// What the app answered on replay (each `<Message>`), and whether each was sent.
    #[serde(default)]
    pub replies: Vec<Reply>,
    /// When the next replay attempt of this entry is due (milliseconds since the Unix epoch; `0`
    /// when none was scheduled: due `[replay] min_interval_seconds` after it was received).
    #[serde(default)]
    pub next_attempt_ms: u64,
}

/// Parameters that carry what a person said or sent: deleted when an entry is dismissed.
const PERSONAL_PARAMS: &[&str] = &[
    "Body",
    "SpeechResult",
    "UnstableSpeechResult",
    "Digits",
    "RecordingUrl",
    "TranscriptionText",
    "TranscriptionUrl",
];

fn is_personal(key: &str) -> bool {
    PERSONAL_PARAMS.contains(&key) || is_numbered(key, "MediaUrl")
}

/// `MediaUrl0`, `MediaUrl1`, …
fn is_numbered(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

impl Entry {
    /// The entry once dismissed: out of replay, its body, media URLs and every parameter that
    /// holds what the person said deleted (with the URL's query, where a GET webhook carried
    /// them); SID, numbers, times, error and status history kept.
    pub fn dismissed(mut self) -> Self {
        self.status = Status::Dismissed;
        self.body = None;
        self.media.clear();
        // A reply quotes or answers what the person said: its text goes too.
        for reply in &mut self.replies {
            reply.body.clear();
            reply.media.clear();
        }
        self.params.retain(|(key, _)| !is_personal(key));
        // A GET webhook carried its parameters in the query: the URL keeps only its path.
        self.url = crate::url::without_query_and_fragment(&self.url).to_owned();
        self
    }

    /// The parameters as [`Params`], in order (to rebuild the webhook).
    pub fn to_params(&self) -> Params {
        Params::from_pairs(self.params.iter().cloned())
    }
}

/// Why a request is not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// No `CallSid` or `MessageSid`: not a Twilio webhook for a call or message.
    UnknownChannel,
    /// A status callback (`MessageStatus` `delivered`, `CallStatus` `completed`, …): about
    /// something the app sent or a call that ended, not something a person sent now. Replayed to
    /// the app's SMS URL it would look like an empty message.
    StatusCallback,
    /// An outbound call (`Direction` `outbound-api`, `outbound-dial`): the app placed it.
    Outbound,
    /// A probe from `numbers audit --probe` ([`PROBE_PARAM`](crate::webhook::PROBE_PARAM)): the
    /// account's owner checking the fallback, not a person to answer later.
    Probe,
}

impl Skip {
    /// How the log record says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::UnknownChannel => "not kept: unknown channel",
            Skip::StatusCallback => "not kept: a status callback",
            Skip::Outbound => "not kept: an outbound call",
            Skip::Probe => "not kept: a probe",
        }
    }
}

/// What [`capture`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capture {
    /// Keep this entry.
    Keep(Box<Entry>),
    /// Answer, but keep nothing.
    Skip(Skip),
}

/// A message's statuses that mean a person sent it now.
const INBOUND_MESSAGE_STATUSES: &[&str] = &["received"];

/// A call's statuses while a person is on the line (a voice webhook's; a status callback's are
/// `completed`, `busy`, `failed`, `no-answer`, `canceled`).
const LIVE_CALL_STATUSES: &[&str] = &["queued", "ringing", "in-progress"];

/// Whether (and as what) a request Twilio sent is kept: inbound messages (`SmsStatus` or
/// `MessageStatus` `received`, or absent) and inbound calls (`CallStatus` ringing, queued or
/// in-progress, or absent; `Direction` inbound or absent). Status callbacks and probes
/// (`numbers audit --probe`) are never kept.
/// The caller verifies the request first: an unverified request must never reach this.
pub fn capture(params: &Params, method: &str, url: &str, now_ms: u64, source: Source) -> Capture {
    if params.probe().is_some() {
        return Capture::Skip(Skip::Probe);
    }
    let Some(channel) = params.channel() else {
        return Capture::Skip(Skip::UnknownChannel);
    };
    let Some(sid) = params.sid_for(Some(channel)) else {
        return Capture::Skip(Skip::UnknownChannel);
    };
    match channel {
        Channel::Messaging => {
            let status = params.get("SmsStatus").or_else(|| params.get("MessageStatus"));
            if status.is_some_and(|status| !INBOUND_MESSAGE_STATUSES.contains(&status.trim())) {
                return Capture::Skip(Skip::StatusCallback);
            }
        }
        Channel::Voice => {
            if params.get("CallbackSource").is_some()
                || params
                    .call_status()
                    .is_some_and(|status| !LIVE_CALL_STATUSES.contains(&status.trim()))
            {
                return Capture::Skip(Skip::StatusCallback);
            }
            if params
                .direction()
                .is_some_and(|direction| !direction.starts_with("inbound"))
            {
                return Capture::Skip(Skip::Outbound);
            }
        }
    }
    let media = params
        .iter()
        .filter(|(key, _)| is_numbered(key, "MediaUrl"))
        .map(|(_, value)| value.to_owned())
        .collect();
    let notice = params.fallback_notice();
    Capture::Keep(Box::new(Entry {
        sid: sid.to_owned(),
        channel,
        account_sid: params.account_sid().map(str::to_owned),
        from: params.from().map(str::to_owned),
        to: params.to().map(str::to_owned),
        body: match channel {
            Channel::Messaging => params.body().map(str::to_owned),
            Channel::Voice => None,
        },
        media,
        error_code: params.get("ErrorCode").and_then(|code| code.trim().parse().ok()),
        error_url: notice.and_then(|notice| notice.error_url).map(str::to_owned),
        cause: None,
        url: url.to_owned(),
        method: method.to_owned(),
        received_at: rfc3339(now_ms),
        received_at_ms: now_ms,
        status: Status::initial(channel),
        attempts: 0,
        last_error: None,
        source,
        params: params
            .iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect(),
        replies: Vec::new(),
        next_attempt_ms: 0,
    }))
}

/// What the layer's capture sink sends to `POST /_twiml-fallback/inbox`: a request the app failed
/// to answer, caught inside the app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureRequest {
    /// `messaging` or `voice` (when the layer knew; else from the parameters).
    #[serde(default)]
    pub channel: Option<Channel>,
    /// The URL Twilio requested.
    pub url: String,
    /// Its method.
    #[serde(default = "post")]
    pub method: String,
    /// The request's parameters in order.
    pub params: Vec<(String, String)>,
    /// Why the layer answered with the fallback (`panic`, `timeout`, …).
    #[serde(default)]
    pub cause: Option<String>,
    /// The Twilio error code Twilio would have logged.
    #[serde(default)]
    pub error_code: Option<u32>,
}

fn post() -> String {
    "POST".to_owned()
}

impl CaptureRequest {
    /// The entry this capture becomes, by the same rule as the edge's ([`capture`]), marked as
    /// the layer's; a status callback or a request without a SID is not kept.
    pub fn into_capture(self, now_ms: u64) -> Capture {
        let params = Params::from_pairs(self.params);
        let capture = capture(&params, &self.method, &self.url, now_ms, Source::Layer);
        match capture {
            Capture::Keep(mut entry) => {
                if self.channel.is_some_and(|channel| channel != entry.channel) {
                    return Capture::Skip(Skip::UnknownChannel);
                }
                entry.cause = self.cause;
                if entry.error_code.is_none() {
                    entry.error_code = self.error_code;
                }
                Capture::Keep(entry)
            }
            skip => skip,
        }
    }
}

#[cfg(test)]
mod tests;
