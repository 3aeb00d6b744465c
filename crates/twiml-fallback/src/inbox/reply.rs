//! What the app answered a replayed message, as the entry keeps it: each `<Message>` of its
//! answer (or its plain-text answer), where it goes, and whether it was sent.

use serde::{Deserialize, Serialize};

/// Where a reply stands. A reply is `sending` only between the commit before its send and the
/// commit after it: one found `sending` was interrupted, and may or may not have gone out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplyState {
    /// To be sent in this replay.
    Planned,
    /// Committed as being sent: the Messages API request is (or was) in flight.
    Sending,
    /// Twilio's Messages API accepted it (`message_sid` holds its SID).
    Sent,
    /// Kept but not sent (`error` says why: late, or `send_replies` is off); an operator can
    /// send it deliberately.
    Withheld,
    /// Twilio refused it (`error` holds Twilio's code and message): not sent.
    Refused,
    /// The send's outcome is unknown (the process died mid-send, the API timed out or failed):
    /// it may have gone out. Never re-sent automatically.
    Unknown,
}

impl ReplyState {
    /// The state as in JSON (`planned`, `sending`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyState::Planned => "planned",
            ReplyState::Sending => "sending",
            ReplyState::Sent => "sent",
            ReplyState::Withheld => "withheld",
            ReplyState::Refused => "refused",
            ReplyState::Unknown => "unknown",
        }
    }
}

/// Why a reply exists: the app's answer to the message, or the configured text to a missed
/// caller (`[replay] missed_call_sms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplyKind {
    /// A `<Message>` (or plain text) the app answered on replay.
    Answer,
    /// `[replay] missed_call_sms`, to a caller nobody answered.
    MissedCall,
}

/// One reply: an SMS/MMS the app's answer asks Twilio to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// `answer` or `missed-call`.
    pub kind: ReplyKind,
    /// The recipient: the verb's `to`, else the original sender.
    pub to: String,
    /// The sender: the verb's `from`, else the number the person wrote to.
    pub from: String,
    /// The text.
    pub body: String,
    /// Each `<Media>` URL.
    #[serde(default)]
    pub media: Vec<String>,
    /// The verb's `statusCallback`.
    #[serde(default)]
    pub status_callback: Option<String>,
    /// Where it stands.
    pub state: ReplyState,
    /// Whether it was sent (`state` is `sent`).
    pub sent: bool,
    /// The Messages API's SID for it (`SM…`), once sent.
    #[serde(default)]
    pub message_sid: Option<String>,
    /// Why it was withheld or refused, or what left its outcome unknown.
    #[serde(default)]
    pub error: Option<String>,
}

impl Reply {
    /// A reply to send (or withhold) as planned.
    pub fn planned(kind: ReplyKind, to: String, from: String, body: String) -> Self {
        Self {
            kind,
            to,
            from,
            body,
            media: Vec::new(),
            status_callback: None,
            state: ReplyState::Planned,
            sent: false,
            message_sid: None,
            error: None,
        }
    }

    /// Moves it to `state`, with the reason where there is one (`sent` follows the state).
    pub fn set(&mut self, state: ReplyState, error: Option<String>) {
        self.state = state;
        self.sent = state == ReplyState::Sent;
        self.error = error;
    }
}
