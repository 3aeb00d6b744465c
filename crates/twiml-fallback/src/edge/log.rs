//! What the endpoint logs: one [`LogRecord`] per request, and [`LogLine`]s for what happens
//! around it (incidents opened and resolved, notifications sent, the configuration in force), serialised here so every
//! shell writes the same JSON — and, for people, the same text.
//!
//! ```
//! use twiml_fallback::edge::{LogLevel, LogLine};
//!
//! let line = LogLine::new(LogLevel::Warn, &serde_json::json!({"event": "alert", "outcome": "HTTP 500"}));
//! assert_eq!(line.to_json(), r#"{"event":"alert","outcome":"HTTP 500"}"#);
//! assert_eq!(line.to_text(), "WARN alert outcome=\"HTTP 500\"");
//! ```

use std::fmt;

use http::StatusCode;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::config::AnswerSource;
use crate::signature::SignatureError;
use crate::webhook::Channel;

/// What happened to a request, as logged in [`LogRecord::event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogEvent {
    /// Answered with the fallback TwiML.
    Fallback,
    /// Answered with the recovered primary's answer.
    Recovered,
    /// Refused with 403.
    Forbidden,
}

/// How the signature check went, as logged in [`LogRecord::signature`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureCheck {
    /// It verified.
    Valid,
    /// No token is configured: nothing was verified.
    NoToken,
    /// The request had no `X-Twilio-Signature`.
    Missing,
    /// It did not match.
    Mismatch,
    /// The signature matched but the body's SHA-256 differs from `bodySHA256`.
    BodyHashMismatch,
    /// A body was signed but the URL has no `bodySHA256`.
    BodyHashMissing,
    /// The body was too large (or broken) to read, so it could not be verified.
    UnreadableBody,
}

impl From<SignatureError> for SignatureCheck {
    fn from(error: SignatureError) -> Self {
        match error {
            SignatureError::NoToken => SignatureCheck::NoToken,
            SignatureError::Missing => SignatureCheck::Missing,
            SignatureError::Mismatch => SignatureCheck::Mismatch,
            SignatureError::BodyHashMismatch => SignatureCheck::BodyHashMismatch,
            SignatureError::BodyHashMissing => SignatureCheck::BodyHashMissing,
        }
    }
}

/// Where the answer came from, as logged in [`LogRecord::answer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerFrom {
    /// The channel's configured (or embedded) fallback.
    Default,
    /// A per-number fallback.
    Number,
    /// `<Response/>`: the channel is unknown.
    UnknownChannel,
    /// The recovered primary.
    Recovered,
    /// The 403.
    Forbidden,
}

impl From<AnswerSource<'_>> for AnswerFrom {
    fn from(source: AnswerSource<'_>) -> Self {
        match source {
            AnswerSource::Default => AnswerFrom::Default,
            AnswerSource::Number(_) => AnswerFrom::Number,
            AnswerSource::UnknownChannel => AnswerFrom::UnknownChannel,
        }
    }
}

/// The structured log line for one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogRecord {
    /// RFC 3339 UTC time of the request.
    pub time: String,
    /// `fallback`, `recovered` or `forbidden`.
    pub event: LogEvent,
    /// The status answered.
    #[serde(serialize_with = "status_number")]
    pub status: StatusCode,
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
    pub signature: SignatureCheck,
    /// The URL the signature was checked against, when a signature was present and failed
    /// (`mismatch`, `body-hash-mismatch`, `body-hash-missing`): Twilio signed the URL it
    /// requested, so this is the first thing to compare behind a proxy or tunnel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_url: Option<String>,
    /// Where the answer came from: `default`, `number`, `unknown-channel`, `recovered`, or
    /// `forbidden`.
    pub answer: AnswerFrom,
    /// The origin of the incident this verified fallback notice is filed under
    /// ([`crate::incident`]): the failing primary's scheme, host and port. Filed is not notified:
    /// an incident's first notice opens it (`incident-opened`, then one `notification` line per
    /// sink), later ones only count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// What recovery did, when it was considered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery: Option<String>,
    /// What the outage inbox did with the request: `kept` (committed before the answer), or why
    /// not (`not kept: a status callback`, …); absent when the endpoint keeps no inbox or the
    /// request was not verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbox: Option<&'static str>,
    /// The probe id ([`PROBE_PARAM`](crate::webhook::PROBE_PARAM), `TwimlFallbackProbe`) the
    /// request carried: a synthetic fallback request from `numbers audit --probe`, clipped like
    /// every request-controlled value. A verified probe is answered as a real fallback request
    /// would be but not kept, counted into an incident or recovered (its `note` says so); a
    /// refused one is only what an unverified request claimed, logged so a probe that got 403
    /// can be found by its id; with no token configured the id is logged all the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    /// Anything else worth knowing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
    /// What to do about a refused signature, when the shell's facts about the request suggest a
    /// fix (see [`Decision::explain_mismatch`](super::Decision::explain_mismatch)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Fields the text rendering names differently from the JSON, so a reader is not misled: a
/// record's `incident` is the origin it was filed under, not a notification sent.
const TEXT_LABELS: &[(&str, &str)] = &[("incident", "incident_origin")];

fn status_number<S: Serializer>(status: &StatusCode, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u16(status.as_u16())
}

impl LogRecord {
    /// The record as one line of JSON: what both shells write.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"event\":\"log-serialisation-failed\"}"))
    }

    /// The same record for people: `TIME LEVEL EVENT key=value …`, fields in the JSON's order,
    /// the time once; `incident` reads `incident_origin` (see [`LogRecord::incident`]).
    pub fn to_text(&self) -> String {
        let json = self.to_json();
        let mut text = format!("{} {}", self.time, self.line_level().as_str());
        render_text(&json, &["time"], TEXT_LABELS, &mut text);
        text
    }

    /// The record as a [`LogLine`] (a 403 is a warning, everything else information).
    pub fn line(&self) -> LogLine {
        LogLine {
            level: self.line_level(),
            json: self.to_json(),
        }
    }

    fn line_level(&self) -> LogLevel {
        if self.event == LogEvent::Forbidden {
            LogLevel::Warn
        } else {
            LogLevel::Info
        }
    }
}

/// How much a [`LogLine`] matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// Normal operation.
    Info,
    /// Something an operator should look at.
    Warn,
    /// Something is broken.
    Error,
}

impl LogLevel {
    /// `INFO`, `WARN` or `ERROR`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

/// One log line the core composed: the shells write [`LogLine::to_json`] (or
/// [`LogLine::to_text`]) at [`LogLine::level`], and nothing of their own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    level: LogLevel,
    json: String,
}

impl LogLine {
    /// A line from any JSON object (its `event` field names it).
    pub fn new(level: LogLevel, fields: &impl Serialize) -> Self {
        Self {
            level,
            json: serde_json::to_string(fields)
                .unwrap_or_else(|_| String::from("{\"event\":\"log-serialisation-failed\"}")),
        }
    }

    /// How much it matters.
    pub fn level(&self) -> LogLevel {
        self.level
    }

    /// One line of JSON.
    pub fn to_json(&self) -> &str {
        &self.json
    }

    /// For people: `LEVEL EVENT key=value …`.
    pub fn to_text(&self) -> String {
        let mut text = self.level.as_str().to_owned();
        render_text(&self.json, &[], &[], &mut text);
        text
    }

    /// For people, with the time the shell writes it (milliseconds since the Unix epoch):
    /// `TIME LEVEL EVENT key=value …`, as [`LogRecord::to_text`] reads.
    pub fn to_text_at(&self, now_ms: u64) -> String {
        let mut text = format!("{} {}", rfc3339(now_ms), self.level.as_str());
        render_text(&self.json, &[], &[], &mut text);
        text
    }
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.json)
    }
}

/// Appends ` EVENT key=value …` for a JSON object, in its own order; strings are quoted when
/// they hold spaces, quotes or `=`, so a line splits back into its fields.
fn render_text(json: &str, skip: &[&str], labels: &[(&str, &str)], text: &mut String) {
    let Ok(Ordered(fields)) = serde_json::from_str::<Ordered>(json) else {
        text.push(' ');
        text.push_str(json);
        return;
    };
    if let Some((_, Value::String(event))) = fields.iter().find(|(key, _)| key == "event") {
        text.push(' ');
        text.push_str(event);
    }
    for (key, value) in &fields {
        if key == "event" || skip.contains(&key.as_str()) {
            continue;
        }
        text.push(' ');
        let label = labels
            .iter()
            .find(|(field, _)| field == key)
            .map_or(key.as_str(), |(_, label)| label);
        text.push_str(label);
        text.push('=');
        match value {
            Value::String(plain)
                if !plain.is_empty() && !plain.contains(|c: char| c.is_whitespace() || c == '"' || c == '=') =>
            {
                text.push_str(plain)
            }
            other => text.push_str(&other.to_string()),
        }
    }
}

/// A JSON object's fields in the order they were written.
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    fields.push(entry);
                }
                Ok(Ordered(fields))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// At most 512 characters of a request-controlled value, so records stay bounded.
pub(crate) fn clip(text: &str) -> String {
    const LIMIT: usize = 512;
    match text.char_indices().nth(LIMIT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the Unix epoch.
pub fn rfc3339(now_ms: u64) -> String {
    let civil = Civil::from_ms(now_ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        civil.year, civil.month, civil.day, civil.hour, civil.minute, civil.second, civil.millis
    )
}

/// An email's `Date` (RFC 5322): `Tue, 01 Dec 2026 16:05:09 +0000`.
pub fn rfc5322(now_ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let civil = Civil::from_ms(now_ms);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
        DAYS[usize::try_from(civil.days.rem_euclid(7)).unwrap_or(0)],
        civil.day,
        MONTHS[usize::try_from(civil.month - 1).unwrap_or(0)],
        civil.year,
        civil.hour,
        civil.minute,
        civil.second
    )
}

/// A UTC time, split.
struct Civil {
    days: i64,
    year: i64,
    month: i64,
    day: i64,
    hour: u64,
    minute: u64,
    second: u64,
    millis: u64,
}

impl Civil {
    fn from_ms(now_ms: u64) -> Self {
        let seconds = now_ms / 1000;
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
        Civil {
            days,
            year: year_of_era + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: second_of_day / 3600,
            minute: second_of_day / 60 % 60,
            second: second_of_day % 60,
            millis: now_ms % 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> LogRecord {
        LogRecord {
            time: rfc3339(1_700_000_000_123),
            event: LogEvent::Fallback,
            status: StatusCode::OK,
            method: "POST".to_owned(),
            path: "/voice".to_owned(),
            channel: Some(Channel::Voice),
            sid: Some("CA1".to_owned()),
            account_sid: None,
            to: None,
            error_code: Some(11200),
            error_title: Some("HTTP retrieval failure"),
            error_url: Some("https://app.example.com/voice".to_owned()),
            signature: SignatureCheck::Valid,
            checked_url: None,
            answer: AnswerFrom::Number,
            incident: None,
            recovery: None,
            inbox: None,
            probe: None,
            note: None,
            hint: None,
        }
    }

    #[test]
    fn records_serialise_to_the_stable_strings() {
        let json: Value = serde_json::from_str(&record().to_json()).expect("JSON");
        assert_eq!(json["event"], "fallback");
        assert_eq!(json["status"], 200);
        assert_eq!(json["signature"], "valid");
        assert_eq!(json["answer"], "number");
        assert_eq!(json["channel"], "voice");
        assert!(json.get("note").is_none(), "absent fields are left out");
        let forbidden = LogRecord {
            event: LogEvent::Forbidden,
            signature: SignatureCheck::UnreadableBody,
            answer: AnswerFrom::Forbidden,
            ..record()
        };
        let json: Value = serde_json::from_str(&forbidden.to_json()).expect("JSON");
        assert_eq!(
            (&json["event"], &json["signature"], &json["answer"]),
            (&"forbidden".into(), &"unreadable-body".into(), &"forbidden".into())
        );
    }

    #[test]
    fn text_lines_carry_every_json_field_in_order() {
        let text = record().to_text();
        assert_eq!(
            text,
            "2023-11-14T22:13:20.123Z INFO fallback status=200 method=POST path=/voice channel=voice sid=CA1 \
             error_code=11200 error_title=\"HTTP retrieval failure\" error_url=https://app.example.com/voice \
             signature=valid answer=number"
        );
        let json: serde_json::Map<String, Value> = serde_json::from_str(&record().to_json()).expect("JSON");
        for key in json.keys().filter(|key| !["time", "event"].contains(&key.as_str())) {
            assert!(text.contains(&format!(" {key}=")), "{key} missing from {text}");
        }
    }

    #[test]
    fn a_refused_record_reads_with_the_checked_url_and_the_hint_last() {
        let forbidden = LogRecord {
            event: LogEvent::Forbidden,
            status: StatusCode::FORBIDDEN,
            signature: SignatureCheck::Mismatch,
            checked_url: Some("http://abcd.ngrok-free.app/voice".to_owned()),
            answer: AnswerFrom::Forbidden,
            hint: Some("start serve with --public-url https://abcd.ngrok-free.app".to_owned()),
            ..record()
        };
        let text = forbidden.to_text();
        assert!(
            text.ends_with(
                " signature=mismatch checked_url=http://abcd.ngrok-free.app/voice answer=forbidden \
                 hint=\"start serve with --public-url https://abcd.ngrok-free.app\""
            ),
            "{text}"
        );
        assert!(text.starts_with("2023-11-14T22:13:20.123Z WARN forbidden "), "{text}");
        assert_eq!(text.matches("2023-11-14T").count(), 1, "the time once: {text}");
    }

    #[test]
    fn lines_written_with_a_time_carry_it_once_in_the_records_format() {
        let line = LogLine::new(
            LogLevel::Warn,
            &serde_json::json!({"event": "alert", "outcome": "HTTP 500"}),
        );
        assert_eq!(
            line.to_text_at(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z WARN alert outcome=\"HTTP 500\""
        );
        assert_eq!(line.to_text(), "WARN alert outcome=\"HTTP 500\"");
    }

    #[test]
    fn a_probes_record_carries_its_id_before_the_note() {
        let probe = LogRecord {
            probe: Some("probe-1a2b3c4d5e6f7a8b".to_owned()),
            note: Some("a probe"),
            ..record()
        };
        let json: Value = serde_json::from_str(&probe.to_json()).expect("JSON");
        assert_eq!(json["probe"], "probe-1a2b3c4d5e6f7a8b");
        assert!(
            probe
                .to_text()
                .ends_with(" answer=number probe=probe-1a2b3c4d5e6f7a8b note=\"a probe\""),
            "{}",
            probe.to_text()
        );
        assert!(
            !record().to_json().contains("probe"),
            "absent unless the request carried one"
        );
    }

    #[test]
    fn a_forbidden_record_is_a_warning() {
        let forbidden = LogRecord {
            event: LogEvent::Forbidden,
            ..record()
        };
        assert_eq!(forbidden.line().level(), LogLevel::Warn);
        assert_eq!(record().line().level(), LogLevel::Info);
        assert_eq!(record().line().to_json(), record().to_json());
    }
}
