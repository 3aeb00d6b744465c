//! The incident rules that need no database: what each sink is sent, what its answers mean, who
//! is configured. The outbox's statements run against real SQLite in the CLI crate's
//! `tests/incident_store.rs`.

use std::collections::BTreeMap;

use http::StatusCode;

use super::notify::{Message, judge, pagerduty_request, webhook_request};
use super::*;

const NOW: u64 = 1_764_604_800_000; // 2025-12-01T16:00:00Z

fn incident(voice: bool) -> Incident {
    let mut error_codes = BTreeMap::new();
    error_codes.insert("11200".to_owned(), 6000);
    error_codes.insert("11205".to_owned(), 4000);
    Incident {
        id: "twf-0123456789abcdef".to_owned(),
        origin: "https://app.example.com".to_owned(),
        status: IncidentStatus::Open,
        opened_at_ms: NOW,
        last_seen_ms: NOW + 600_000,
        resolved_at_ms: None,
        resolved_by: None,
        notices: 10_000,
        messages: 9_000,
        calls: 1_000,
        kept: 9_500,
        error_codes,
        numbers: vec!["+14155550199".to_owned(), "+14155550198".to_owned()],
        account_sid: Some(format!("AC{}", "a".repeat(32))),
        voice,
        sample_body: Some("Where is my order?".to_owned()),
        remind_at_ms: None,
    }
}

fn resolved(by: ResolvedBy) -> Incident {
    let mut incident = incident(true);
    incident.status = IncidentStatus::Resolved;
    incident.resolved_at_ms = Some(NOW + 725_000);
    incident.resolved_by = Some(by);
    incident
}

fn alerting(toml: &str) -> Alerting {
    let config = Config::from_toml(toml).unwrap_or_else(|errors| panic!("{errors}"));
    Alerting::new(
        &config,
        &SignatureVerifier::from_tokens(["the-auth-token".to_owned()]),
        TwilioApi::new("http://127.0.0.1:9").expect("a local API"),
        EmailSupport::Available,
    )
}

const EVERY_SINK: &str = r#"
[alerts]
webhook_url = "https://hooks.slack.com/services/T000/B000/XXXX"
email = ["ops@example.com", "oncall@example.com"]
sms = ["+14155550100"]
sms_from = "+14155550199"
pagerduty_routing_key = "0123456789abcdef0123456789abcdef"
pagerduty_url = "https://events.example.com/v2/enqueue"
[alerts.smtp]
url = "smtp://127.0.0.1:2525"
from = "twiml-fallback <alerts@example.com>"
"#;

fn body_json(request: &OutboundRequest) -> serde_json::Value {
    serde_json::from_str(request.body.as_deref().expect("a body")).expect("JSON")
}

#[test]
fn a_notice_is_filed_under_the_origin_browsers_compare() {
    for (url, origin) in [
        ("https://App.Example.com/voice?x=1", "https://app.example.com"),
        ("https://app.example.com:443/sms", "https://app.example.com"),
        ("http://app.example.com:80/", "http://app.example.com"),
        ("https://app.example.com:8443/sms", "https://app.example.com:8443"),
        ("https://user:pw@app.example.com/sms", "https://app.example.com"),
        ("javascript:alert(1)", UNKNOWN_ORIGIN),
        ("/relative", UNKNOWN_ORIGIN),
        ("", UNKNOWN_ORIGIN),
    ] {
        assert_eq!(origin_of(Some(url)), origin, "{url}");
    }
    assert_eq!(origin_of(None), UNKNOWN_ORIGIN);
    let notice = Notice::from_error_url(Some("https://app.example.com/sms"), "  ", NOW);
    assert_eq!(notice.error_code, "unknown");
}

#[test]
fn every_configured_sink_is_listed_once_and_unusable_ones_are_said_at_start() {
    let every = alerting(EVERY_SINK);
    let sinks: Vec<String> = every.sinks().iter().map(Sink::id).collect();
    assert_eq!(
        sinks,
        [
            "webhook",
            "email:ops@example.com",
            "email:oncall@example.com",
            "sms:+14155550100",
            "pagerduty"
        ]
    );
    assert_eq!(every.startup_line().level(), LogLevel::Info);

    let config = Config::from_toml(EVERY_SINK).expect("loads");
    let no_email = Alerting::new(
        &config,
        &SignatureVerifier::from_tokens(Vec::<String>::new()),
        TwilioApi::default(),
        EmailSupport::Missing("no ALERT_EMAIL send_email binding"),
    );
    let sinks: Vec<String> = no_email.sinks().iter().map(Sink::id).collect();
    assert_eq!(sinks, ["webhook", "sms:+14155550100", "pagerduty"]);
    let line = no_email.startup_line();
    assert_eq!(line.level(), LogLevel::Warn);
    assert!(
        line.to_json()
            .contains("email is not sent: no ALERT_EMAIL send_email binding"),
        "{line}"
    );
    assert!(
        line.to_json().contains("texts cannot be sent: no TWILIO_AUTH_TOKEN"),
        "{line}"
    );
    assert!(
        !line.to_json().contains("0123456789abcdef0123456789abcdef"),
        "no credentials: {line}"
    );

    let legacy = alerting("[alerts]\nwebhook_url = \"https://h.example.com\"\ndedup_seconds = 300");
    assert!(
        legacy.startup_line().to_json().contains(
            "dedup_seconds = 300 is retired: one incident per outage replaces it; the quiet period is resolve_after_seconds = 300"
        ),
        "{}",
        legacy.startup_line()
    );
    let off = alerting("");
    assert!(!off.is_configured());
    assert!(off.sinks().is_empty());
    assert!(off.startup_line().to_json().contains("\"alerts\":\"off\""));
}

#[test]
fn the_webhook_gets_slack_compatible_text_with_the_counts() {
    let incident = incident(false);
    let open = webhook_request(
        "https://hooks.slack.com/services/T000/B000/XXXX",
        &Message::new(&incident, Kind::Open, false, NOW),
    );
    assert_eq!(open.method, http::Method::POST);
    assert_eq!(open.redirects, crate::edge::Redirects::Never);
    let json = body_json(&open);
    let text = json["text"].as_str().expect("text");
    assert!(
        text.starts_with(
            "[OPEN] twiml-fallback: https://app.example.com is failing (11200 (HTTP retrieval failure)); Twilio is answering with the fallback"
        ),
        "{text}"
    );
    assert!(
        text.contains("9000 messages and 1000 calls hit the fallback (9500 kept in the inbox), on 2 numbers"),
        "{text}"
    );
    assert!(text.contains("Incident twf-0123456789abcdef."), "{text}");
    assert!(
        !text.contains("Where is my order?"),
        "no bodies unless include_bodies: {text}"
    );
    assert_eq!(json["event"], "incident-opened");
    assert_eq!(json["notices"], 10_000);
    assert_eq!(json["error_codes"]["11205"], 4000);

    let with_bodies = webhook_request("https://h.example.com", &Message::new(&incident, Kind::Open, true, NOW));
    assert!(
        body_json(&with_bodies)["text"]
            .as_str()
            .unwrap_or("")
            .contains("First message: \"Where is my order?\"")
    );

    let over = resolved(ResolvedBy::Replay);
    let resolve = body_json(&webhook_request(
        "https://h.example.com",
        &Message::new(&over, Kind::Resolve, false, NOW + 800_000),
    ));
    let text = resolve["text"].as_str().expect("text");
    assert!(
        text.starts_with("[RESOLVED] twiml-fallback: https://app.example.com answers again after 12m 5s"),
        "{text}"
    );
    assert!(text.contains("the primary took a replayed message"), "{text}");
    assert!(
        text.contains("In all: 10000 fallback notices: 9000 messages and 1000 calls hit the fallback (9500 kept in the inbox), on 2 numbers. Errors: 11200 (HTTP retrieval failure) ×6000, 11205"),
        "{text}"
    );
    assert_eq!(resolve["event"], "incident-resolved");
    assert_eq!(resolve["duration_seconds"], 725);
    assert_eq!(resolve["resolved_by"], "replay");
    let quiet = body_json(&webhook_request(
        "https://h.example.com",
        &Message::new(&resolved(ResolvedBy::Quiet), Kind::Resolve, false, NOW),
    ));
    assert!(
        quiet["text"].as_str().unwrap_or("").contains("is quiet again"),
        "{quiet}"
    );
}

#[test]
fn pagerduty_is_triggered_and_resolved_with_the_incident_as_dedup_key() {
    let calls = incident(true);
    let trigger = body_json(&pagerduty_request(
        "https://events.pagerduty.com/v2/enqueue",
        "0123456789abcdef0123456789abcdef",
        &Message::new(&calls, Kind::Open, false, NOW),
    ));
    assert_eq!(trigger["routing_key"], "0123456789abcdef0123456789abcdef");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], "twf-0123456789abcdef");
    assert_eq!(trigger["payload"]["source"], "https://app.example.com");
    assert_eq!(trigger["payload"]["severity"], "critical", "calls are failing");
    assert_eq!(trigger["payload"]["custom_details"]["calls"], 1000);
    assert_eq!(trigger["payload"]["custom_details"]["messages"], 9000);
    assert!(trigger["payload"]["summary"].as_str().unwrap_or("").len() <= 1024);
    let messaging = body_json(&pagerduty_request(
        "https://e.example.com",
        "k",
        &Message::new(&incident(false), Kind::Open, false, NOW),
    ));
    assert_eq!(messaging["payload"]["severity"], "error", "messaging only");
    let resolve = body_json(&pagerduty_request(
        "https://e.example.com",
        "0123456789abcdef0123456789abcdef",
        &Message::new(&resolved(ResolvedBy::Recovery), Kind::Resolve, false, NOW),
    ));
    assert_eq!(
        resolve,
        serde_json::json!({
            "routing_key": "0123456789abcdef0123456789abcdef",
            "event_action": "resolve",
            "dedup_key": "twf-0123456789abcdef",
        })
    );
}

#[test]
fn a_text_goes_through_the_messages_api_of_the_incidents_account() {
    let alerting = alerting(EVERY_SINK);
    let alerts = alerting.alerts.clone().expect("alerts");
    let incident = incident(true);
    let Ok(Send::Http(request)) = alerting.send_for(
        &alerts,
        &Sink::Sms("+14155550100".to_owned()),
        &Message::new(&incident, Kind::Open, false, NOW),
        incident.account_sid.as_deref(),
        NOW,
    ) else {
        panic!("a text");
    };
    assert_eq!(
        request.url,
        format!(
            "http://127.0.0.1:9/2010-04-01/Accounts/AC{}/Messages.json",
            "a".repeat(32)
        )
    );
    let form = crate::webhook::Params::from_form(request.body.as_deref().unwrap_or("").as_bytes());
    assert_eq!(form.get("To"), Some("+14155550100"));
    assert_eq!(form.get("From"), Some("+14155550199"));
    let body = form.get("Body").unwrap_or("");
    assert!(
        body.starts_with("[OPEN] https://app.example.com failing: 11200"),
        "{body}"
    );
    assert!(body.chars().count() <= 160, "one segment: {body}");
    let no_account = alerting.send_for(
        &alerts,
        &Sink::Sms("+14155550100".to_owned()),
        &Message::new(&incident, Kind::Open, false, NOW),
        Some("not-an-account"),
        NOW,
    );
    assert_eq!(
        no_account,
        Err("no account to text from (no valid AccountSid seen)".to_owned())
    );
}

#[test]
fn an_email_is_mime_both_shells_send_byte_for_byte() {
    let alerting = alerting(EVERY_SINK);
    let alerts = alerting.alerts.clone().expect("alerts");
    let incident = incident(false);
    let Ok(Send::Email(email)) = alerting.send_for(
        &alerts,
        &Sink::Email("oncall@example.com".to_owned()),
        &Message::new(&incident, Kind::Open, false, NOW),
        None,
        NOW,
    ) else {
        panic!("an email");
    };
    assert_eq!(email.envelope_from, "alerts@example.com");
    assert_eq!(email.to, ["oncall@example.com"], "one message per recipient");
    let (head, body) = email.mime.split_once("\r\n\r\n").expect("headers, then the body");
    assert!(
        head.starts_with("From: twiml-fallback <alerts@example.com>\r\nTo: oncall@example.com\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nDate: Mon, 01 Dec 2025 16:00:00 +0000\r\n"), "{head}");
    assert!(
        head.contains("\r\nMessage-ID: <twf-0123456789abcdef.open.1764604800000."),
        "{head}"
    );
    assert!(head.contains("\r\nContent-Transfer-Encoding: base64"), "{head}");
    // The subject: encoded words of at most 75 characters, folded, that decode to it.
    let start = head.find("\r\nSubject: ").expect("a subject") + "\r\nSubject: ".len();
    let folded = &head[start..start + head[start..].find("\r\nDate:").expect("then the date")];
    use base64::Engine as _;
    let mut subject = Vec::new();
    for word in folded.split("\r\n ") {
        assert!(word.len() <= 75, "an encoded word of {} characters", word.len());
        let encoded = word
            .strip_prefix("=?UTF-8?B?")
            .and_then(|word| word.strip_suffix("?="))
            .expect("an encoded word");
        subject.extend(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .expect("base64"),
        );
    }
    assert!(folded.contains("\r\n "), "a long subject is folded");
    assert_eq!(String::from_utf8(subject).expect("UTF-8"), email.subject);
    let text: String = body.split("\r\n").collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64 body");
    assert_eq!(String::from_utf8(decoded).expect("UTF-8"), email.text);
    assert!(body.split("\r\n").all(|line| line.len() <= 76), "lines of at most 76");
}

#[test]
fn answers_decide_between_delivered_retried_and_refused() {
    let request = webhook_request(
        "https://h.example.com",
        &Message::new(&incident(false), Kind::Open, false, NOW),
    );
    let send = Send::Http(request);
    let answered = |status: u16| {
        judge(
            &send,
            SinkOutcome::Http(SendOutcome::Answered {
                status: StatusCode::from_u16(status).expect("status"),
                content_type: None,
                body: b"nope",
            }),
        )
    };
    assert_eq!(answered(200), Verdict::Delivered("HTTP 200".to_owned()));
    assert_eq!(answered(202), Verdict::Delivered("HTTP 202".to_owned()));
    for status in [429, 500, 502, 503] {
        assert!(matches!(answered(status), Verdict::Retry(_)), "{status}");
    }
    for status in [400, 401, 403, 404, 408, 410] {
        assert!(matches!(answered(status), Verdict::Rejected(_)), "{status}");
    }
    for outcome in [
        SendOutcome::TimedOut,
        SendOutcome::NotSent("connection refused"),
        SendOutcome::Failed("reset"),
    ] {
        assert!(matches!(judge(&send, SinkOutcome::Http(outcome)), Verdict::Retry(_)));
    }
    let sent = EmailOutcome::Sent;
    assert_eq!(
        judge(&send, SinkOutcome::Email(&sent)),
        Verdict::Delivered("sent".to_owned())
    );
    let busy = EmailOutcome::Transient("421 try later".to_owned());
    assert!(matches!(judge(&send, SinkOutcome::Email(&busy)), Verdict::Retry(_)));
    let refused = EmailOutcome::Permanent("550 no such user".to_owned());
    assert!(matches!(
        judge(&send, SinkOutcome::Email(&refused)),
        Verdict::Rejected(_)
    ));
}

#[test]
fn a_failure_never_shows_the_webhooks_secret_path() {
    let secret = "https://hooks.slack.com/services/T000/B000/SECRETSECRET";
    let send = Send::Http(webhook_request(
        secret,
        &Message::new(&incident(false), Kind::Open, false, NOW),
    ));
    let reason = format!("error sending request for url ({secret})");
    for outcome in [SendOutcome::NotSent(&reason), SendOutcome::Failed(&reason)] {
        let Verdict::Retry(said) = judge(&send, SinkOutcome::Http(outcome)) else {
            panic!("a connection error is tried again");
        };
        assert!(!said.contains("SECRETSECRET"), "{said}");
        assert!(said.contains("https://hooks.slack.com/…"), "{said}");
    }
}

#[test]
fn retries_back_off_from_a_second_to_five_minutes() {
    assert_eq!(delivery_backoff_ms(1), 1000);
    assert_eq!(delivery_backoff_ms(2), 2000);
    assert_eq!(delivery_backoff_ms(4), 8000);
    assert_eq!(delivery_backoff_ms(9), 256_000);
    assert_eq!(delivery_backoff_ms(10), MAX_DELIVERY_BACKOFF_MS);
    assert_eq!(delivery_backoff_ms(u32::MAX), MAX_DELIVERY_BACKOFF_MS);
}

#[test]
fn a_test_reaches_every_configured_sink_and_pagerduty_is_resolved_at_once() {
    let alerting = alerting(EVERY_SINK);
    let account = format!("AC{}", "b".repeat(32));
    let dispatches = alerting.test_dispatches(Some(&account), NOW);
    let sinks: Vec<(String, Kind)> = dispatches
        .iter()
        .map(|dispatch| {
            let dispatch = dispatch.as_ref().expect("every sink can be tested");
            (dispatch.sink.clone(), dispatch.kind)
        })
        .collect();
    assert_eq!(
        sinks,
        [
            ("webhook".to_owned(), Kind::Test),
            ("email:ops@example.com".to_owned(), Kind::Test),
            ("email:oncall@example.com".to_owned(), Kind::Test),
            ("sms:+14155550100".to_owned(), Kind::Test),
            ("pagerduty".to_owned(), Kind::Test),
            ("pagerduty".to_owned(), Kind::Resolve),
        ]
    );
    let Ok(Dispatch {
        send: Send::Http(trigger),
        ..
    }) = &dispatches[4]
    else {
        panic!("a PagerDuty request");
    };
    let trigger = body_json(trigger);
    assert_eq!(trigger["payload"]["severity"], "info");
    assert!(
        trigger["payload"]["summary"]
            .as_str()
            .unwrap_or("")
            .starts_with("[TEST]")
    );
    let Ok(Dispatch {
        send: Send::Http(resolve),
        ..
    }) = &dispatches[5]
    else {
        panic!("a PagerDuty request");
    };
    assert_eq!(body_json(resolve)["dedup_key"], trigger["dedup_key"]);

    // Without an account, the text cannot be tested, and says why.
    let without = alerting.test_dispatches(None, NOW);
    assert!(without.iter().any(|result| matches!(
        result,
        Err((sink, why)) if sink == "sms:+14155550100" && why.contains("no account to text from")
    )));
    let results = vec![TestResult::not_sent(
        "sms:+14155550100".to_owned(),
        "no account".to_owned(),
    )];
    assert_eq!(alerting.test_answer(&results).status, StatusCode::BAD_GATEWAY);
    assert_eq!(alerting.test_answer(&[]).status, StatusCode::OK);
    assert_eq!(
        crate::incident::Alerting::new(
            &Config::default(),
            &SignatureVerifier::from_tokens(Vec::<String>::new()),
            TwilioApi::default(),
            EmailSupport::None,
        )
        .test_answer(&[])
        .status,
        StatusCode::CONFLICT
    );
}

#[test]
fn a_notice_counts_into_its_incident_within_bounds() {
    let mut incident = Incident::opened_by(
        &Notice::from_error_url(Some("https://a.example.com"), "11200", NOW),
        NOW,
        0,
    );
    assert!(
        incident.id.starts_with("twf-") && incident.id.len() == 20,
        "{}",
        incident.id
    );
    for n in 0..(MAX_CODES + 10) {
        let mut notice = Notice::from_error_url(Some("https://a.example.com"), &format!("{}", 10_000 + n), NOW + 1);
        notice.channel = Some(if n % 2 == 0 { Channel::Messaging } else { Channel::Voice });
        notice.to = Some(format!("+1415555{n:04}"));
        notice.kept = n % 3 == 0;
        notice.body = Some("x".repeat(500));
        incident.add(&notice, n > 0);
    }
    assert_eq!(incident.notices, 60);
    assert_eq!((incident.messages, incident.calls, incident.kept), (30, 30, 20));
    assert!(incident.voice);
    assert_eq!(incident.error_codes.len(), MAX_CODES + 1, "the rest count as other");
    assert_eq!(incident.error_codes.get("other"), Some(&10));
    assert_eq!(incident.numbers.len(), 60);
    assert_eq!(incident.last_seen_ms, NOW + 1);
    assert_eq!(
        incident.sample_body.as_deref().map(|body| body.chars().count()),
        Some(161),
        "the first body seen with include_bodies, clipped"
    );
}
