//! The effect contract: what the core asks a shell to do, as complete values.
//!
//! A shell (the Cloudflare Worker, `twiml-fallback serve`) performs these effects and decides
//! nothing about them: every rule — which requests to send, with what method, headers, body,
//! deadline and answer limit; what is logged and how it reads; how much of a request body to read
//! — is in the value the core hands over. A shell that needs an `if` about Twilio or policy to
//! perform an effect is a bug in this contract.
//!
//! The contract, for each kind of effect:
//!
//! | effect | the shell | then |
//! |---|---|---|
//! | [`Effect::Keep`] | commits the entry with [`inbox::store`](crate::inbox::store()) through its SQLite driver, before answering | logs the outcome's line, if any; on failure [`write_failed_line`](crate::inbox::store::write_failed_line) and reports the inbox failing in health checks |
//! | [`Effect::Log`] | writes [`LogRecord::to_json`] as one line (or [`LogRecord::to_text`] for people) | — |
//! | [`Effect::Incident`] | files the notice with [`Alerting::record`](crate::incident::Alerting::record) in its store, off the caller's path | logs the line it returns; on [`Recorded::wake`](crate::incident::Recorded::wake) runs [`Alerting::tick`](crate::incident::Alerting::tick) and sends each dispatch |
//! | [`Effect::Recover`] | sends [`RecoveryPlan::request`](super::RecoveryPlan::request) | feeds the [`SendOutcome`] to [`Edge::judge_recovery`](super::Edge::judge_recovery), answers its response, logs its record; files the judgement's `notice`, or, when it `resolves` an origin, calls [`primary_answered`](crate::incident::primary_answered) |
//!
//! and, before a request is decided, [`BodyRead::for_request`] says how much of its body to read
//! and [`BodyRead::body`] turns what was read into the decision's input.
//! Work that outlives a request — replay passes, incident notifications — is a state machine
//! of its own ([`crate::replay`], [`crate::incident`]) the shell drives the same way: a complete
//! value to perform, and the outcome handed back for the core's next decision.
//!
//! ```
//! use std::time::Duration;
//! use twiml_fallback::edge::{BodyRead, OutboundRequest, Redirects, SendOutcome};
//!
//! // How much of a request body to read: the core decides from the method and Content-Length.
//! assert_eq!(BodyRead::for_request(&http::Method::GET, Some("12")), BodyRead::Skip);
//! assert_eq!(BodyRead::for_request(&http::Method::POST, Some("9999999")), BodyRead::Refuse);
//! assert_eq!(BodyRead::for_request(&http::Method::POST, None), BodyRead::UpTo(64 * 1024));
//!
//! // An outbound request carries everything needed to send it.
//! let request = OutboundRequest {
//!     method: http::Method::POST,
//!     url: "https://hooks.example.com/alert".to_owned(),
//!     headers: vec![(http::header::CONTENT_TYPE, "application/json".to_owned())],
//!     body: Some("{}".to_owned()),
//!     timeout: Duration::from_secs(10),
//!     max_answer_bytes: 4096,
//!     redirects: Redirects::Never,
//! };
//! // What came of sending it, described the same way by every shell.
//! assert_eq!(request.describe(&SendOutcome::TimedOut), "not sent: no answer within 10000 ms");
//! ```

use std::time::Duration;

use http::{HeaderName, Method, StatusCode};

use super::{LogRecord, MAX_REQUEST_BYTES, RecoveryPlan};
use crate::inbox::Entry;
use crate::incident::Notice;

/// Something the shell must do for a request (see the [module docs](self) for the contract).
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "made once per request and moved once: boxing buys nothing"
)]
pub enum Effect {
    /// Commit this entry to the outage inbox ([`inbox::store`](crate::inbox::store())) **before**
    /// answering; write [`StoreOutcome::line`](crate::inbox::StoreOutcome::line) or, when the
    /// write fails, [`write_failed_line`](crate::inbox::store::write_failed_line) — the answer is
    /// the same either way. Comes first in a decision; with a recovery, the judgement carries it.
    Keep(Box<Entry>),
    /// Write this record as one line.
    Log(LogRecord),
    /// File this verified fallback notice with [`Alerting::record`](crate::incident::Alerting::record)
    /// — off the caller's path (it opens or counts the failing primary's incident) — and, when
    /// [`Recorded::wake`](crate::incident::Recorded::wake), run the notifications now.
    Incident(Notice),
    /// Send the plan's request to the failed primary, then call
    /// [`Edge::judge_recovery`](super::Edge::judge_recovery) for the answer and the log record
    /// (the decision itself then carries no [`Effect::Log`]).
    Recover(RecoveryPlan),
}

impl Effect {
    /// Whether the answer waits for this effect: an entry is committed before answering, and a
    /// recovery's judgement is the answer. A log line is written as it comes and an incident
    /// notice is filed off the caller's path, so a decision with neither of the others can be
    /// answered as soon as its lines are written (the Worker then answers without a future).
    pub fn holds_the_answer(&self) -> bool {
        match self {
            Effect::Keep(_) | Effect::Recover(_) => true,
            Effect::Log(_) | Effect::Incident(_) => false,
        }
    }
}

/// An HTTP request the core wants sent, complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundRequest {
    /// The method.
    pub method: Method,
    /// The absolute URL, exactly as to be requested (it may have been signed).
    pub url: String,
    /// Every header to send, in order (the shell adds only what its HTTP stack requires, such as
    /// `Host` and `Content-Length`).
    pub headers: Vec<(HeaderName, String)>,
    /// The body; `None` sends none.
    pub body: Option<String>,
    /// Give up (and report [`SendOutcome::TimedOut`]) when the whole exchange — connecting,
    /// sending, reading the answer — takes longer.
    pub timeout: Duration,
    /// Read at most this many bytes of the answer's body, plus one (enough to know it is larger),
    /// then stop reading.
    pub max_answer_bytes: usize,
    /// What to do with a 3xx answer.
    pub redirects: Redirects,
}

/// What an outbound request does with redirects (shells match it exhaustively: a policy added here
/// is one every shell must implement).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redirects {
    /// A 3xx is the answer (its status is reported as it is); never follow it.
    Never,
}

/// What came of an [`OutboundRequest`], as the shell reports it back.
#[derive(Clone, Copy, Debug)]
pub enum SendOutcome<'a> {
    /// The other side answered.
    Answered {
        /// Its status.
        status: StatusCode,
        /// Its Content-Type header.
        content_type: Option<&'a str>,
        /// Its body, read to at most [`OutboundRequest::max_answer_bytes`] + 1 bytes.
        body: &'a [u8],
    },
    /// The request's timeout passed first.
    TimedOut,
    /// The request never left: no connection could be made (refused, DNS, TLS), or it could not
    /// be built — certainly nothing was sent, in the shell's words. A shell that cannot tell
    /// reports [`SendOutcome::Failed`].
    NotSent(&'a str),
    /// The request failed (connection, TLS, DNS, an invalid URL…), in the shell's words; it may
    /// have been sent.
    Failed(&'a str),
}

/// A [`SendOutcome`] that owns its data: what a shell builds from its HTTP client's result, then
/// lends to the core with [`SendResult::outcome`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendResult {
    /// The other side answered.
    Answered {
        /// Its status.
        status: StatusCode,
        /// Its Content-Type header.
        content_type: Option<String>,
        /// Its body, read to at most [`OutboundRequest::max_answer_bytes`] + 1 bytes.
        body: Vec<u8>,
    },
    /// The request's timeout passed first.
    TimedOut,
    /// The request never left, in the shell's words ([`SendOutcome::NotSent`]).
    NotSent(String),
    /// The request failed, in the shell's words.
    Failed(String),
}

impl SendResult {
    /// The outcome to hand to the core.
    pub fn outcome(&self) -> SendOutcome<'_> {
        match self {
            SendResult::Answered {
                status,
                content_type,
                body,
            } => SendOutcome::Answered {
                status: *status,
                content_type: content_type.as_deref(),
                body,
            },
            SendResult::TimedOut => SendOutcome::TimedOut,
            SendResult::NotSent(reason) => SendOutcome::NotSent(reason),
            SendResult::Failed(reason) => SendOutcome::Failed(reason),
        }
    }
}

impl OutboundRequest {
    /// What came of sending it, in one phrase for logs: `HTTP 200`, `not sent: …`.
    pub fn describe(&self, outcome: &SendOutcome<'_>) -> String {
        match outcome {
            SendOutcome::Answered { status, .. } => format!("HTTP {}", status.as_u16()),
            SendOutcome::TimedOut => format!("not sent: no answer within {} ms", self.timeout.as_millis()),
            SendOutcome::NotSent(reason) | SendOutcome::Failed(reason) => {
                format!("not sent: {}", super::log::clip(reason))
            }
        }
    }
}

/// How much of a request's body the shell reads before the core decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyRead {
    /// Read nothing: the request has no body that matters (GET and HEAD carry their parameters
    /// in the query string). [`BodyRead::body`] is then no bytes.
    Skip,
    /// Keep up to this many bytes; past them keep no more, read the rest into nothing (as under
    /// [`BodyRead::Refuse`]) and decide with [`Body::TooLarge`](super::Body::TooLarge) (see
    /// [`Body::from_read`](super::Body::from_read)).
    UpTo(usize),
    /// Keep nothing: the declared length is over the limit. [`BodyRead::body`] is then
    /// [`Body::TooLarge`](super::Body::TooLarge). The shell still reads the body to its end, into
    /// nothing, before it answers: answered with most of a large body unread, workerd may reset
    /// the connection, and a client still sending gets a reset from `serve` too, so it never
    /// sees the answer.
    Refuse,
}

impl BodyRead {
    /// The body to decide with, from what the shell read (`None` when it read nothing, or the
    /// read failed or timed out): no bytes under [`BodyRead::Skip`], too large under
    /// [`BodyRead::Refuse`], else [`Body::from_read`](super::Body::from_read).
    pub fn body<'a>(self, read: Option<&'a [u8]>) -> super::Body<'a> {
        match self {
            BodyRead::Skip => super::Body::Complete(&[]),
            BodyRead::Refuse => super::Body::TooLarge,
            BodyRead::UpTo(_) => super::Body::from_read(read),
        }
    }

    /// The reading rule for a request with this method and `Content-Length` header.
    pub fn for_request(method: &Method, content_length: Option<&str>) -> Self {
        if method == Method::GET || method == Method::HEAD {
            return BodyRead::Skip;
        }
        match content_length.and_then(|length| length.trim().parse::<u64>().ok()) {
            Some(length) if length > MAX_REQUEST_BYTES as u64 => BodyRead::Refuse,
            _ => BodyRead::UpTo(MAX_REQUEST_BYTES),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_read_becomes_the_body_to_decide_with() {
        use super::super::Body;
        assert_eq!(BodyRead::Skip.body(None), Body::Complete(&[]));
        assert_eq!(BodyRead::Refuse.body(None), Body::TooLarge);
        let limit = BodyRead::UpTo(MAX_REQUEST_BYTES);
        assert_eq!(limit.body(Some(b"CallSid=CA1")), Body::Complete(b"CallSid=CA1"));
        assert_eq!(limit.body(Some(&vec![b'a'; MAX_REQUEST_BYTES + 1])), Body::TooLarge);
        assert_eq!(limit.body(None), Body::Unreadable, "a broken or timed-out read");
    }

    #[test]
    fn bodies_are_read_only_where_they_carry_the_parameters() {
        assert_eq!(BodyRead::for_request(&Method::GET, Some("999999")), BodyRead::Skip);
        assert_eq!(BodyRead::for_request(&Method::HEAD, None), BodyRead::Skip);
        assert_eq!(
            BodyRead::for_request(&Method::POST, Some("65536")),
            BodyRead::UpTo(MAX_REQUEST_BYTES)
        );
        assert_eq!(BodyRead::for_request(&Method::POST, Some(" 65537 ")), BodyRead::Refuse);
        assert_eq!(
            BodyRead::for_request(&Method::PUT, Some("not a number")),
            BodyRead::UpTo(MAX_REQUEST_BYTES),
            "an unreadable length is read up to the limit"
        );
    }
}
