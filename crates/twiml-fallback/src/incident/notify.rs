//! What each notification says, and each sink's request: the Slack-compatible webhook, PagerDuty's
//! Events API v2, a text through the Messages API, an email (its MIME written here, so both
//! shells send the same bytes); and what a sink's answer means.

use std::time::Duration;

use base64::Engine as _;
use http::Method;
use http::header::{CONTENT_TYPE, USER_AGENT};
use serde_json::json;
use sha2::Digest as _;

use super::store::{Incident, IncidentStatus};
use super::{Kind, Send, SinkOutcome, Verdict};
use crate::edge::{OutboundRequest, Redirects, SendOutcome, clip, rfc3339};
use crate::error_code::ErrorCode;

/// How long a sink has to answer one try.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of a sink's answer is read (it is logged by status and a clipped excerpt).
const ANSWER_BYTES: usize = 4 * 1024;

/// The User-Agent of notifications.
pub const NOTIFY_USER_AGENT: &str = concat!("twiml-fallback/", env!("CARGO_PKG_VERSION"), " (alerts)");

/// A notification's words, for one incident at one moment.
pub(crate) struct Message<'a> {
    incident: &'a Incident,
    kind: Kind,
    include_bodies: bool,
    now_ms: u64,
    test: bool,
}

/// How long an incident lasted, as notifications and the CLI say it: `1h 5m`, `12m 5s`, `40s`.
pub fn duration_text(ms: u64) -> String {
    let seconds = ms / 1000;
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// `11200 (HTTP retrieval failure)` for a code Twilio documents, else the code as sent.
fn code_text(code: &str) -> String {
    match code.parse::<ErrorCode>() {
        Ok(known) => format!("{code} ({})", known.title()),
        Err(_) => code.to_owned(),
    }
}

impl<'a> Message<'a> {
    pub(crate) fn new(incident: &'a Incident, kind: Kind, include_bodies: bool, now_ms: u64) -> Self {
        Message {
            incident,
            kind,
            include_bodies,
            now_ms,
            test: false,
        }
    }

    pub(crate) fn for_test(mut self) -> Self {
        self.test = true;
        self
    }

    fn tag(&self) -> &'static str {
        match (self.test, self.kind) {
            (true, _) => "TEST",
            (false, Kind::Open) => "OPEN",
            (false, Kind::Reminder) => "STILL FAILING",
            (false, Kind::Resolve) => "RESOLVED",
            (false, Kind::Test) => "TEST",
        }
    }

    /// `11200 (HTTP retrieval failure) ×6000, 11205 (HTTP connection failure) ×4000`.
    fn codes(&self) -> String {
        let codes = self.incident.codes_by_count();
        if codes.is_empty() {
            return "none".to_owned();
        }
        codes
            .iter()
            .map(|(code, count)| format!("{} ×{count}", code_text(code)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `12 messages (12 kept), 3 calls, on 2 numbers`.
    fn traffic(&self) -> String {
        let incident = self.incident;
        let numbers = match incident.numbers.len() {
            0 => String::new(),
            1 => format!(", on {}", incident.numbers[0]),
            n => format!(", on {n} numbers"),
        };
        format!(
            "{} message{} and {} call{} hit the fallback ({} kept in the inbox){numbers}",
            incident.messages,
            if incident.messages == 1 { "" } else { "s" },
            incident.calls,
            if incident.calls == 1 { "" } else { "s" },
            incident.kept
        )
    }

    fn first_code(&self) -> String {
        self.incident
            .codes_by_count()
            .first()
            .map_or_else(|| "an error".to_owned(), |(code, _)| code_text(code))
    }

    /// One line: the subject of an email, PagerDuty's summary.
    pub(crate) fn summary(&self) -> String {
        let origin = &self.incident.origin;
        if self.test {
            return format!("[TEST] twiml-fallback: a test notification ({origin} is an example; nothing is wrong)");
        }
        match self.kind {
            Kind::Open => format!(
                "[OPEN] twiml-fallback: {origin} is failing ({}); Twilio is answering with the fallback",
                self.first_code()
            ),
            Kind::Reminder => format!(
                "[STILL FAILING] twiml-fallback: {origin} has been failing for {}",
                duration_text(self.incident.duration_ms(self.now_ms))
            ),
            Kind::Resolve | Kind::Test => format!(
                "[RESOLVED] twiml-fallback: {origin} {} after {}",
                match self.incident.resolved_by {
                    Some(super::ResolvedBy::Quiet) | None => "is quiet again",
                    Some(super::ResolvedBy::Recovery) | Some(super::ResolvedBy::Replay) => "answers again",
                },
                duration_text(self.incident.duration_ms(self.now_ms))
            ),
        }
    }

    /// The full text: the webhook's `text`, the email's body.
    pub(crate) fn text(&self) -> String {
        let incident = self.incident;
        if self.test {
            return format!(
                "{}\n\nThis is how twiml-fallback tells you when a primary webhook fails and when it is back: \
                 one notification when an incident opens, one when it resolves.",
                self.summary()
            );
        }
        let mut lines = vec![self.summary(), String::new()];
        match self.kind {
            Kind::Open => {
                lines.push(format!(
                    "Twilio could not get TwiML from {} and requested the Fallback URL instead, first at {}.",
                    incident.origin,
                    rfc3339(incident.opened_at_ms)
                ));
                lines.push(format!("So far: {}. Errors: {}.", self.traffic(), self.codes()));
                lines.push(
                    "Callers and senders get the fallback answer; kept messages are replayed to the app once it answers."
                        .to_owned(),
                );
            }
            Kind::Reminder => {
                lines.push(format!(
                    "Still failing since {} (last notice {}).",
                    rfc3339(incident.opened_at_ms),
                    rfc3339(incident.last_seen_ms)
                ));
                lines.push(format!(
                    "So far: {} fallback notices: {}. Errors: {}.",
                    incident.notices,
                    self.traffic(),
                    self.codes()
                ));
            }
            Kind::Resolve | Kind::Test => {
                let why = match incident.resolved_by {
                    Some(super::ResolvedBy::Recovery) => "the primary answered a recovery request".to_owned(),
                    Some(super::ResolvedBy::Replay) => "the primary took a replayed message".to_owned(),
                    Some(super::ResolvedBy::Quiet) | None => "no fallback notice for the quiet period".to_owned(),
                };
                lines.push(format!(
                    "Resolved at {}: {why}. The incident lasted {} (from {} to the last notice at {}).",
                    rfc3339(incident.resolved_at_ms.unwrap_or(self.now_ms)),
                    duration_text(incident.duration_ms(self.now_ms)),
                    rfc3339(incident.opened_at_ms),
                    rfc3339(incident.last_seen_ms)
                ));
                lines.push(format!(
                    "In all: {} fallback notices: {}. Errors: {}.",
                    incident.notices,
                    self.traffic(),
                    self.codes()
                ));
            }
        }
        if self.include_bodies {
            if let Some(body) = &incident.sample_body {
                lines.push(format!("First message: {body:?}"));
            }
        }
        lines.push(format!("Incident {}.", incident.id));
        lines.join("\n")
    }

    /// A text for a phone: short, one segment when it can be.
    pub(crate) fn sms_text(&self) -> String {
        let incident = self.incident;
        let text = if self.test {
            format!(
                "[TEST] twiml-fallback: test notification. Nothing is wrong. Incident {}.",
                incident.id
            )
        } else {
            match self.kind {
                Kind::Open => format!(
                    "[OPEN] {} failing: {}. Fallback answering. {}",
                    incident.origin,
                    self.first_code(),
                    incident.id
                ),
                Kind::Reminder => format!(
                    "[STILL FAILING] {} for {}: {} notices. {}",
                    incident.origin,
                    duration_text(incident.duration_ms(self.now_ms)),
                    incident.notices,
                    incident.id
                ),
                Kind::Resolve | Kind::Test => format!(
                    "[RESOLVED] {} after {}: {} notices, {} msgs, {} calls. {}",
                    incident.origin,
                    duration_text(incident.duration_ms(self.now_ms)),
                    incident.notices,
                    incident.messages,
                    incident.calls,
                    incident.id
                ),
            }
        };
        clip_chars(&text, crate::config::MAX_MESSAGE_CHARS)
    }

    fn event(&self) -> &'static str {
        match (self.test, self.kind) {
            (true, _) | (false, Kind::Test) => "alert-test",
            (false, Kind::Open) => "incident-opened",
            (false, Kind::Reminder) => "incident-reminder",
            (false, Kind::Resolve) => "incident-resolved",
        }
    }

    fn details(&self) -> serde_json::Value {
        let incident = self.incident;
        json!({
            "incident": incident.id,
            "origin": incident.origin,
            "status": if incident.status == IncidentStatus::Open { "open" } else { "resolved" },
            "opened_at": rfc3339(incident.opened_at_ms),
            "last_seen_at": rfc3339(incident.last_seen_ms),
            "resolved_at": incident.resolved_at_ms.map(rfc3339),
            "resolved_by": incident.resolved_by,
            "duration_seconds": incident.duration_ms(self.now_ms) / 1000,
            "notices": incident.notices,
            "error_codes": incident.error_codes,
            "messages": incident.messages,
            "calls": incident.calls,
            "kept": incident.kept,
            "numbers": incident.numbers,
        })
    }
}

fn clip_chars(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

fn json_request(url: &str, body: &serde_json::Value) -> OutboundRequest {
    OutboundRequest {
        method: Method::POST,
        url: url.to_owned(),
        headers: vec![
            (CONTENT_TYPE, "application/json".to_owned()),
            (USER_AGENT, NOTIFY_USER_AGENT.to_owned()),
        ],
        body: Some(body.to_string()),
        timeout: NOTIFY_TIMEOUT,
        max_answer_bytes: ANSWER_BYTES,
        redirects: Redirects::Never,
    }
}

/// The webhook's POST: JSON with a Slack-compatible `text` (what Slack shows), plus `event`
/// and the incident's counts for other receivers.
pub(crate) fn webhook_request(url: &str, message: &Message<'_>) -> OutboundRequest {
    let mut body = message.details();
    if let Some(object) = body.as_object_mut() {
        object.insert("text".to_owned(), json!(message.text()));
        object.insert("event".to_owned(), json!(message.event()));
        object.insert("tag".to_owned(), json!(message.tag()));
    }
    json_request(url, &body)
}

/// PagerDuty's Events API v2: `trigger` (open, reminder, test) or `resolve`, with the
/// incident's id as `dedup_key`; severity `critical` when calls are failing, `error` for
/// messaging only (`info` for a test).
pub(crate) fn pagerduty_request(url: &str, routing_key: &str, message: &Message<'_>) -> OutboundRequest {
    let incident = message.incident;
    let dedup_key = if message.test {
        format!("twf-test-{}", message.now_ms)
    } else {
        incident.id.clone()
    };
    let body = if message.kind == Kind::Resolve {
        json!({"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key})
    } else {
        let severity = match (message.test, incident.voice) {
            (true, _) => "info",
            (false, true) => "critical",
            (false, false) => "error",
        };
        json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_key,
            "payload": {
                "summary": clip_chars(&message.summary(), 1024),
                "source": incident.origin,
                "severity": severity,
                "timestamp": rfc3339(incident.opened_at_ms),
                "component": "twiml-fallback",
                "group": "twilio-webhooks",
                "class": incident.codes_by_count().first().map(|(code, _)| (*code).to_owned()),
                "custom_details": message.details(),
            },
        })
    };
    json_request(url, &body)
}

/// An email, ready for either shell: the envelope (`envelope_from`, `to`) and the whole
/// message as MIME text ([`Email::mime`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    /// The envelope sender (the bare address of `From`).
    pub envelope_from: String,
    /// The recipients (one envelope; the Worker sends one message per recipient).
    pub to: Vec<String>,
    /// The subject.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The message: headers (`From`, `To`, `Subject` encoded per RFC 2047, `Date`,
    /// `Message-ID`, MIME headers) and the body in base64, with CRLF line ends.
    pub mime: String,
}

impl Email {
    pub(crate) fn new(from: &str, from_address: &str, to: &[String], message: &Message<'_>, now_ms: u64) -> Self {
        let subject = message.summary();
        let text = message.text();
        let domain = from_address
            .rsplit_once('@')
            .map_or("twiml-fallback.invalid", |(_, domain)| domain);
        // Unique per message: one incident's notification goes to each recipient at once.
        let recipients = sha2::Sha256::digest(to.join(",").as_bytes());
        let message_id = format!(
            "<{}.{}.{now_ms}.{:02x}{:02x}{:02x}{:02x}@{domain}>",
            message.incident.id,
            message.kind.as_str(),
            recipients[0],
            recipients[1],
            recipients[2],
            recipients[3]
        );
        let encoded_subject = encoded_words(&subject);
        let body = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
        let mut mime = String::with_capacity(body.len() + 512);
        for (name, value) in [
            ("From", from),
            ("To", &to.join(", ")),
            ("Subject", &encoded_subject),
            ("Date", &crate::edge::rfc5322(now_ms)),
            ("Message-ID", &message_id),
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Transfer-Encoding", "base64"),
            ("X-Twiml-Fallback-Incident", &message.incident.id),
        ] {
            mime.push_str(name);
            mime.push_str(": ");
            mime.push_str(value);
            mime.push_str("\r\n");
        }
        mime.push_str("\r\n");
        for chunk in body.as_bytes().chunks(76) {
            mime.push_str(std::str::from_utf8(chunk).unwrap_or(""));
            mime.push_str("\r\n");
        }
        Email {
            envelope_from: from_address.to_owned(),
            to: to.to_vec(),
            subject,
            text,
            mime,
        }
    }
}

/// `text` as RFC 2047 encoded words (`=?UTF-8?B?…?=`), each at most 75 characters, folded onto
/// continuation lines, split between characters.
fn encoded_words(text: &str) -> String {
    // 45 bytes encode to 60 characters: with `=?UTF-8?B?` and `?=`, 72.
    const CHUNK: usize = 45;
    let mut words = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + CHUNK).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        words.push(format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(&text.as_bytes()[start..end])
        ));
        start = end;
    }
    words.join("\r\n ")
}

/// What came of sending an email, as the shell's transport reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmailOutcome {
    /// Accepted (by the relay, or by the `send_email` binding).
    Sent,
    /// Worth another try: a 4xx SMTP reply, a timeout, a connection that failed.
    Transient(String),
    /// Refused for good: a 5xx SMTP reply, a recipient the binding does not allow.
    Permanent(String),
}

/// What a sink's answer means: 2xx delivered; 429, 5xx, a timeout or a connection error
/// tried again; any other answer refused.
pub(crate) fn judge(send: &Send, outcome: SinkOutcome<'_>) -> Verdict {
    match outcome {
        SinkOutcome::Email(EmailOutcome::Sent) => Verdict::Delivered("sent".to_owned()),
        SinkOutcome::Email(EmailOutcome::Transient(reason)) => {
            Verdict::Retry(format!("email not sent: {}", clip(reason)))
        }
        SinkOutcome::Email(EmailOutcome::Permanent(reason)) => {
            Verdict::Rejected(format!("email refused: {}", clip(reason)))
        }
        SinkOutcome::Http(outcome) => {
            let described = match send {
                // A webhook's URL is a credential (Slack's holds its secret): a shell's error
                // text may quote it, so it is cut to its origin before it is logged or stored.
                Send::Http(request) => {
                    let text = request.describe(&outcome);
                    let origin = crate::url::split(&request.url)
                        .map_or_else(String::new, |parts| parts.origin_without_userinfo());
                    text.replace(request.url.as_str(), &format!("{origin}/…"))
                }
                Send::Email(_) => "an HTTP outcome for an email".to_owned(),
            };
            match outcome {
                SendOutcome::Answered { status, .. } if status.is_success() => Verdict::Delivered(described),
                SendOutcome::Answered { status, .. } if status.as_u16() == 429 || status.is_server_error() => {
                    Verdict::Retry(described)
                }
                SendOutcome::Answered { .. } => Verdict::Rejected(described),
                SendOutcome::TimedOut | SendOutcome::NotSent(_) | SendOutcome::Failed(_) => Verdict::Retry(described),
            }
        }
    }
}
