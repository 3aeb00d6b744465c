//! The alert a verified fallback notice raises: the request to send, its dedup window, and the
//! log lines that say what came of it.
//!
//! A shell sends [`Alert::request`] at most once per [`Alert::dedup_key`] and window: in memory
//! with [`AlertWindows`](super::AlertWindows), and across processes or Worker isolates through a
//! shared key-value store holding [`Alert::stored_window`] under the key, checked with
//! [`Alert::suppressed_by_stored`]. It then logs [`Alert::outcome_line`].

use std::time::Duration;

use http::Method;
use http::header::{CONTENT_TYPE, USER_AGENT};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::effect::{OutboundRequest, Redirects, SendOutcome};
use super::log::{LogLevel, LogLine, LogRecord, clip};
use crate::config::Alerts;
use crate::error_code::ErrorCode;
use crate::webhook::{Channel, Params};

/// How long an alert webhook has to answer.
pub const ALERT_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of an alert webhook's answer is read (it is only logged by status).
const ALERT_ANSWER_BYTES: usize = 4 * 1024;

/// The User-Agent of alerts.
pub const ALERT_USER_AGENT: &str = concat!("twiml-fallback/", env!("CARGO_PKG_VERSION"), " (alert)");

/// An alert for the configured webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// The POST to send: JSON with a Slack-compatible `text` field.
    pub request: OutboundRequest,
    /// Send at most one alert per key within [`Alert::dedup_seconds`].
    pub dedup_key: String,
    /// The deduplication window (0 = always send).
    pub dedup_seconds: u64,
}

impl Alert {
    /// The alert for a verified fallback notice (`ErrorCode` and `ErrorUrl`), keyed by the error
    /// code and the failing URL without its query.
    pub(crate) fn for_notice(
        alerts: &Alerts,
        code: Option<ErrorCode>,
        error_url: Option<&str>,
        channel: Option<Channel>,
        params: &Params,
        record: &LogRecord,
    ) -> Self {
        let url_without_query = error_url.map(crate::url::without_query_and_fragment);
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
        let payload = json!({
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
            request: OutboundRequest {
                method: Method::POST,
                url: alerts.webhook_url.clone(),
                headers: vec![
                    (CONTENT_TYPE, "application/json".to_owned()),
                    (USER_AGENT, ALERT_USER_AGENT.to_owned()),
                ],
                body: Some(payload.to_string()),
                timeout: ALERT_TIMEOUT,
                max_answer_bytes: ALERT_ANSWER_BYTES,
                redirects: Redirects::Never,
            },
            dedup_key,
            dedup_seconds: alerts.dedup_seconds,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> &str {
        self.request.body.as_deref().unwrap_or("")
    }

    /// Whether it has a dedup window at all (with none, every alert is sent and nothing stored).
    pub fn is_deduplicated(&self) -> bool {
        self.dedup_seconds > 0
    }

    /// When the deduplication window this alert opens at `now_ms` ends (milliseconds, the
    /// shell's clock): the rule [`AlertWindows`](super::AlertWindows) applies in memory.
    pub fn window_end(&self, now_ms: u64) -> u64 {
        now_ms.saturating_add(self.dedup_seconds.saturating_mul(1000))
    }

    /// The value to store under [`Alert::dedup_key`] in a shared store when the alert is sent at
    /// `now_ms` (keep it for at least [`Alert::dedup_seconds`]).
    pub fn stored_window(&self, now_ms: u64) -> String {
        self.window_end(now_ms).to_string()
    }

    /// Whether the value a shared store holds under [`Alert::dedup_key`] (written by
    /// [`Alert::stored_window`], perhaps elsewhere) suppresses this alert at `now_ms`: while that
    /// window has not ended. A missing or unreadable value suppresses nothing.
    pub fn suppressed_by_stored(&self, stored: Option<&str>, now_ms: u64) -> bool {
        stored
            .and_then(|until| until.trim().parse::<u64>().ok())
            .is_some_and(|until| until > now_ms)
    }

    /// The line to log once the alert was sent (or not): `alert`, with `delivered` (the webhook
    /// answered 2xx) and the `outcome` (`HTTP 200`, `not sent: …`).
    pub fn outcome_line(&self, outcome: &SendOutcome<'_>) -> LogLine {
        #[derive(Serialize)]
        struct Line<'a> {
            event: &'static str,
            dedup_key: &'a str,
            delivered: bool,
            outcome: String,
        }
        let delivered = matches!(outcome, SendOutcome::Answered { status, .. } if status.is_success());
        let level = if delivered { LogLevel::Info } else { LogLevel::Warn };
        LogLine::new(
            level,
            &Line {
                event: "alert",
                dedup_key: &self.dedup_key,
                delivered,
                outcome: self.request.describe(outcome),
            },
        )
    }

    /// The line to log when the alert was not sent because its window is open
    /// (`alert-suppressed`, with the window's length); `by` names where the window was found
    /// (`memory`, `isolate`, `kv`, …).
    pub fn suppressed_line(&self, by: &str) -> LogLine {
        #[derive(Serialize)]
        struct Line<'a> {
            event: &'static str,
            dedup_key: &'a str,
            by: &'a str,
            dedup_seconds: u64,
        }
        LogLine::new(
            LogLevel::Info,
            &Line {
                event: "alert-suppressed",
                dedup_key: &self.dedup_key,
                by,
                dedup_seconds: self.dedup_seconds,
            },
        )
    }

    /// The line to log when the shared dedup store failed (the alert is still sent: better twice
    /// than never).
    pub fn store_error_line(&self, error: &str) -> LogLine {
        LogLine::new(
            LogLevel::Error,
            &json!({"event": "alert-dedup-error", "dedup_key": self.dedup_key, "error": clip(error)}),
        )
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    fn alert(dedup_seconds: u64) -> Alert {
        let alerts = Alerts {
            webhook_url: "https://hooks.example.com/a".to_owned(),
            dedup_seconds,
        };
        let params =
            Params::from_form(b"CallSid=CA1&ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fv%3Fx%3D1");
        Alert::for_notice(
            &alerts,
            Some(ErrorCode::HTTP_RETRIEVAL_FAILURE),
            params.get("ErrorUrl"),
            Some(Channel::Voice),
            &params,
            &alert_record(),
        )
    }

    fn alert_record() -> LogRecord {
        LogRecord {
            time: super::super::log::rfc3339(0),
            event: super::super::LogEvent::Fallback,
            status: StatusCode::OK,
            method: "POST".to_owned(),
            path: "/".to_owned(),
            channel: Some(Channel::Voice),
            sid: Some("CA1".to_owned()),
            account_sid: None,
            to: None,
            error_code: Some(11200),
            error_title: None,
            error_url: None,
            signature: super::super::SignatureCheck::Valid,
            checked_url: None,
            answer: super::super::AnswerFrom::Default,
            alert: None,
            recovery: None,
            inbox: None,
            note: None,
            hint: None,
        }
    }

    #[test]
    fn the_alert_is_a_complete_json_post() {
        let alert = alert(300);
        assert_eq!(alert.request.method, Method::POST);
        assert_eq!(alert.request.url, "https://hooks.example.com/a");
        assert!(
            alert
                .request
                .headers
                .contains(&(CONTENT_TYPE, "application/json".to_owned()))
        );
        assert_eq!(
            (alert.request.timeout, alert.request.redirects),
            (ALERT_TIMEOUT, Redirects::Never)
        );
        let body: serde_json::Value = serde_json::from_str(alert.body()).expect("JSON");
        assert!(
            body["text"]
                .as_str()
                .is_some_and(|text| text.contains("at https://app.example.com/v failed with 11200")),
            "{body}"
        );
    }

    #[test]
    fn a_stored_window_suppresses_until_it_ends() {
        let alert = alert(300);
        let stored = alert.stored_window(1_000);
        assert_eq!(stored, "301000");
        assert!(alert.suppressed_by_stored(Some(&stored), 300_999));
        assert!(!alert.suppressed_by_stored(Some(&stored), 301_000));
        assert!(!alert.suppressed_by_stored(None, 0));
        assert!(
            !alert.suppressed_by_stored(Some("garbage"), 0),
            "an unreadable value suppresses nothing"
        );
        assert!(alert.is_deduplicated() && !self::alert(0).is_deduplicated());
    }

    #[test]
    fn outcomes_are_logged_the_same_way_everywhere() {
        let alert = alert(300);
        let sent = alert.outcome_line(&SendOutcome::Answered {
            status: StatusCode::OK,
            content_type: None,
            body: b"ok",
        });
        assert_eq!(sent.level(), LogLevel::Info);
        assert!(
            sent.to_json().contains(r#""delivered":true,"outcome":"HTTP 200""#),
            "{sent}"
        );
        let refused = alert.outcome_line(&SendOutcome::Answered {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            content_type: None,
            body: b"",
        });
        assert_eq!(refused.level(), LogLevel::Warn);
        assert!(refused.to_json().contains(r#""delivered":false"#), "{refused}");
        let late = alert.outcome_line(&SendOutcome::TimedOut);
        assert!(late.to_json().contains("not sent: no answer within 10000 ms"), "{late}");
        assert!(alert.suppressed_line("kv").to_json().contains(r#""by":"kv""#));
        assert_eq!(alert.store_error_line("KV down").level(), LogLevel::Error);
    }

    #[test]
    fn a_raised_alert_reads_apart_from_a_sent_or_suppressed_one() {
        let alert = alert(300);
        let key = alert.dedup_key.clone();
        let record = LogRecord {
            alert: Some(key.clone()),
            ..alert_record()
        };
        let text = record.to_text();
        assert!(text.contains(&format!(" alert_raised={key}")), "{text}");
        assert!(!text.contains(" alert="), "{text}");
        let json: serde_json::Value = serde_json::from_str(&record.to_json()).expect("JSON");
        assert_eq!(json["alert"], key.as_str(), "the JSON field keeps its name");
        assert_eq!(
            alert.suppressed_line("memory").to_text_at(0),
            format!("1970-01-01T00:00:00.000Z INFO alert-suppressed dedup_key={key} by=memory dedup_seconds=300")
        );
        let sent = alert.outcome_line(&SendOutcome::Answered {
            status: StatusCode::NO_CONTENT,
            content_type: None,
            body: b"",
        });
        assert_eq!(
            sent.to_text_at(1_000),
            format!("1970-01-01T00:00:01.000Z INFO alert dedup_key={key} delivered=true outcome=\"HTTP 204\"")
        );
    }
}
