use super::*;
use crate::signature::{SIGNATURE_HEADER, body_sha256_hex, compute_signature};
use crate::twiml::{TargetChannel, validate};
use crate::webhook::Channel;

const TOKEN: &str = "test-auth-token";
const URL: &str = "https://fallback.example.com/twilio";
const NOW: u64 = 1_700_000_000_000;

const VOICE_BODY: &str = "AccountSid=AC1&CallSid=CA1&From=%2B14155550100&To=%2B14155550199&CallStatus=ringing\
                          &ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fvoice%3Fx%3D1";
const SMS_BODY: &str = "MessageSid=SM1&SmsSid=SM1&From=%2B14155550100&To=%2B14155550199&Body=hello\
                        &ErrorCode=12100&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fsms";

fn config(toml: &str) -> Config {
    Config::from_toml(toml).unwrap_or_else(|errors| panic!("{errors}"))
}

fn edge(toml: &str) -> Edge {
    Edge::new(config(toml), SignatureVerifier::new(TOKEN))
}

fn sign(url: &str, body: &str) -> String {
    compute_signature(TOKEN, url, &Params::from_form(body.as_bytes()))
}

fn post<'a>(body: &'a str, signature: &'a str) -> EdgeRequest<'a> {
    EdgeRequest {
        method: &Method::POST,
        url: URL,
        signature: Some(signature),
        content_type: Some("application/x-www-form-urlencoded"),
        body: Body::Complete(body.as_bytes()),
        now_ms: NOW,
        inbox_failing: false,
    }
}

fn log_of(decision: &Decision) -> &LogRecord {
    decision
        .effects
        .iter()
        .find_map(|effect| match effect {
            Effect::Log(record) => Some(record),
            Effect::Recover(plan) => Some(plan.log()),
            Effect::Incident(_) | Effect::Keep(_) => None,
        })
        .expect("every decision logs")
}

/// The incident notices a decision files: its own, or its recovery plan's (filed if it fails).
fn alerts_of(decision: &Decision) -> Vec<&Notice> {
    decision
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Incident(notice) => Some(notice),
            Effect::Recover(plan) => plan.notice(),
            Effect::Keep(_) | Effect::Log(_) => None,
        })
        .collect()
}

fn plan_of(decision: &Decision) -> Option<&RecoveryPlan> {
    decision
        .effects
        .iter()
        .find_map(|e| if let Effect::Recover(p) = e { Some(p) } else { None })
}

const ALERTS: &str = "[alerts]\nwebhook_url = \"https://hooks.example.com/alert\"\n";
const RECOVERY: &str = "[recovery]\nallow_hosts = [\"app.example.com\"]\ntimeout_ms = 3000\n";

#[test]
fn signed_voice_fallback_answers_the_voice_twiml_and_logs_the_notice() {
    let signature = sign(URL, VOICE_BODY);
    let decision = edge("").decide(&post(VOICE_BODY, &signature));
    assert_eq!(decision.response.status, StatusCode::OK);
    assert_eq!(decision.response.content_type, TWIML_CONTENT_TYPE);
    assert!(
        decision
            .response
            .body
            .contains("<Say>An application error has occurred.")
    );
    // The record, then the notice for the failing primary's incident.
    assert_eq!(decision.effects.len(), 2, "{:?}", decision.effects);
    assert!(
        matches!(decision.effects[1], Effect::Incident(_)),
        "{:?}",
        decision.effects
    );
    let record = log_of(&decision);
    assert_eq!(record.event, LogEvent::Fallback);
    assert_eq!(record.channel, Some(Channel::Voice));
    assert_eq!(record.sid.as_deref(), Some("CA1"));
    assert_eq!(record.error_code, Some(11200));
    assert_eq!(record.error_title, Some("HTTP retrieval failure"));
    assert_eq!(record.error_url.as_deref(), Some("https://app.example.com/voice?x=1"));
    assert_eq!(record.signature, SignatureCheck::Valid);
    assert_eq!(record.answer, AnswerFrom::Default);
    assert_eq!(record.path, "/twilio");
    assert_eq!(record.time, "2023-11-14T22:13:20.000Z");
}

#[test]
fn signed_sms_get_reads_the_query_and_signs_the_url_alone() {
    let url = format!("{URL}?{SMS_BODY}");
    let signature = compute_signature(TOKEN, &url, []);
    let decision = edge("").decide(&EdgeRequest {
        signature: Some(&signature),
        ..EdgeRequest::get(&url, NOW)
    });
    assert_eq!(decision.response.status, StatusCode::OK);
    assert!(decision.response.body.contains("<Message>We're sorry."));
    assert_eq!(log_of(&decision).channel, Some(Channel::Messaging));
}

#[test]
fn forged_unsigned_and_wrong_token_requests_get_403_and_no_effects() {
    let edge = edge(&format!("{ALERTS}{RECOVERY}"));
    let wrong_token = compute_signature("another-token", URL, &Params::from_form(VOICE_BODY.as_bytes()));
    let tampered_body = VOICE_BODY.replace("CA1", "CA2");
    let good = sign(URL, VOICE_BODY);
    let unsigned = EdgeRequest {
        signature: None,
        ..post(VOICE_BODY, "")
    };
    for request in [
        unsigned,
        post(VOICE_BODY, &wrong_token),
        post(&tampered_body, &good),
        post(VOICE_BODY, "garbage"),
    ] {
        let decision = edge.decide(&request);
        assert_eq!(decision.response.status, StatusCode::FORBIDDEN);
        assert_eq!(decision.response.content_type, TEXT_CONTENT_TYPE);
        assert_eq!(decision.effects.len(), 1);
        let record = log_of(&decision);
        assert_eq!(
            (record.event, record.status, record.answer),
            (LogEvent::Forbidden, StatusCode::FORBIDDEN, AnswerFrom::Forbidden)
        );
    }
    let missing = edge.decide(&unsigned);
    assert_eq!(log_of(&missing).signature, SignatureCheck::Missing);
}

#[test]
fn a_refused_signature_logs_the_url_it_was_checked_against() {
    let edge = edge("");
    let wrong_token = compute_signature("another-token", URL, &Params::from_form(VOICE_BODY.as_bytes()));
    let mismatch = edge.decide(&post(VOICE_BODY, &wrong_token));
    assert_eq!(log_of(&mismatch).signature, SignatureCheck::Mismatch);
    assert_eq!(log_of(&mismatch).checked_url.as_deref(), Some(URL));
    let line = log_of(&mismatch).line();
    assert_eq!(line.level(), LogLevel::Warn);
    assert!(line.to_json().contains(&format!(r#""checked_url":"{URL}""#)), "{line}");
    // No signature at all: the URL is not what went wrong.
    let unsigned = edge.decide(&EdgeRequest {
        signature: None,
        ..post(VOICE_BODY, "")
    });
    assert_eq!(log_of(&unsigned).checked_url, None);
    // Verified requests carry neither the URL nor a hint.
    let good = sign(URL, VOICE_BODY);
    let verified = edge.decide(&post(VOICE_BODY, &good));
    assert_eq!(
        (&log_of(&verified).checked_url, &log_of(&verified).hint),
        (&None, &None)
    );
}

#[test]
fn explain_mismatch_adds_the_shells_hint_to_mismatches_only() {
    use crate::signature::UrlPolicy;

    let edge = edge("");
    let mut headers = http::HeaderMap::new();
    headers.insert("host", http::HeaderValue::from_static("abcd.ngrok-free.app"));
    headers.insert("x-forwarded-proto", http::HeaderValue::from_static("https"));
    let listen = "127.0.0.1:8787".parse().ok();
    let hint = || UrlPolicy::as_received().mismatch_hint(&headers, listen);
    // Signed for the public URL, checked as received.
    let as_received = "http://abcd.ngrok-free.app/voice";
    let signature = sign("https://abcd.ngrok-free.app/voice", VOICE_BODY);
    let refused = edge
        .decide(&EdgeRequest {
            url: as_received,
            ..post(VOICE_BODY, &signature)
        })
        .explain_mismatch(hint);
    let record = log_of(&refused);
    assert_eq!(record.checked_url.as_deref(), Some(as_received));
    assert!(
        record
            .hint
            .as_deref()
            .is_some_and(|hint| hint.contains("--public-url https://abcd.ngrok-free.app")),
        "{record:?}"
    );
    let text = record.to_text();
    assert!(
        text.contains(&format!(
            "signature=mismatch checked_url={as_received} answer=forbidden hint=\""
        )),
        "{text}"
    );
    // Anything but a mismatch: the hint is never asked for.
    let never = || -> Option<crate::signature::UrlHint> { panic!("asked for a hint") };
    let unsigned = EdgeRequest {
        signature: None,
        ..post(VOICE_BODY, "")
    };
    assert_eq!(log_of(&edge.decide(&unsigned).explain_mismatch(never)).hint, None);
    let good = sign(URL, VOICE_BODY);
    let verified = edge.decide(&post(VOICE_BODY, &good)).explain_mismatch(never);
    assert_eq!(verified.response.status, StatusCode::OK);
    let tokenless = Edge::new(Config::default(), SignatureVerifier::from_tokens(Vec::<String>::new()));
    assert_eq!(
        log_of(&tokenless.decide(&post(VOICE_BODY, "x")).explain_mismatch(never)).hint,
        None
    );
}

#[test]
fn without_a_token_it_still_answers_but_never_alerts_or_recovers() {
    let edge = Edge::new(config(&format!("{ALERTS}{RECOVERY}")), SignatureVerifier::default());
    let decision = edge.decide(&post(VOICE_BODY, ""));
    assert_eq!(decision.response.status, StatusCode::OK);
    assert!(decision.response.body.contains("<Say>"));
    assert_eq!(decision.effects.len(), 1);
    let record = log_of(&decision);
    assert_eq!(record.signature, SignatureCheck::NoToken);
    assert!(
        record
            .note
            .is_some_and(|note| note.contains("alerts and recovery disabled"))
    );
}

#[test]
fn health_checks_answer_ok_before_any_signature_check_and_cause_nothing() {
    let signed = edge(&format!("{ALERTS}{RECOVERY}"));
    let tokenless = Edge::new(config(&format!("{ALERTS}{RECOVERY}")), SignatureVerifier::default());
    // Even a correctly signed GET notice to /healthz is a health check: no alert, no recovery.
    let notice_url = format!("https://fallback.example.com/healthz?{VOICE_BODY}");
    let notice_signature = compute_signature(TOKEN, &notice_url, []);
    for edge in [&signed, &tokenless] {
        for (method, url, signature) in [
            (Method::GET, "https://fallback.example.com/healthz", None),
            (Method::HEAD, "https://fallback.example.com/healthz", None),
            (Method::GET, "/healthz", Some("Zm9yZ2Vk")),
            (Method::GET, "https://fallback.example.com/twilio/healthz?probe=1", None),
            (Method::GET, notice_url.as_str(), Some(notice_signature.as_str())),
        ] {
            let decision = edge.decide(&EdgeRequest {
                method: &method,
                signature,
                ..EdgeRequest::get(url, NOW)
            });
            assert_eq!(
                decision.response,
                EdgeResponse {
                    status: StatusCode::OK,
                    content_type: TEXT_CONTENT_TYPE,
                    body: HEALTH_BODY.to_owned(),
                },
                "{method} {url}"
            );
            assert!(decision.effects.is_empty(), "{method} {url}: {:?}", decision.effects);
        }
    }
}

#[test]
fn only_get_and_head_of_healthz_are_health_checks_everything_else_is_decided_as_before() {
    let edge = edge(&format!("{ALERTS}{RECOVERY}"));
    let healthz = "https://fallback.example.com/healthz";
    // A POST to /healthz is an ordinary request: unsigned is refused, signed gets the fallback.
    let unsigned = edge.decide(&EdgeRequest {
        url: healthz,
        signature: None,
        ..post(VOICE_BODY, "")
    });
    assert_eq!(unsigned.response.status, StatusCode::FORBIDDEN);
    assert_eq!(log_of(&unsigned).path, "/healthz");
    let signature = sign(healthz, VOICE_BODY);
    let signed = edge.decide(&EdgeRequest {
        url: healthz,
        ..post(VOICE_BODY, &signature)
    });
    assert_eq!(signed.response.status, StatusCode::OK);
    assert!(signed.response.body.contains("<Say>"), "{}", signed.response.body);
    assert_eq!(alerts_of(&signed).len(), 1);
    // Paths that only look like it, and an unsigned GET elsewhere, are not health checks.
    for url in [
        "https://fallback.example.com/healthz/voice",
        "https://fallback.example.com/healthzz",
        "https://fallback.example.com/not-healthz",
        "https://fallback.example.com/voice?path=/healthz",
        "https://fallback.example.com/voice#/healthz",
    ] {
        let decision = edge.decide(&EdgeRequest::get(url, NOW));
        assert_eq!(decision.response.status, StatusCode::FORBIDDEN, "{url}");
        assert_eq!(decision.effects.len(), 1, "{url}");
    }
}

#[test]
fn per_number_answers_follow_the_called_number() {
    let edge = edge("[numbers.\"+14155550199\".voice]\nsay = \"Lo sentimos.\"\nlanguage = \"es-ES\"\n");
    let signature = sign(URL, VOICE_BODY);
    let decision = edge.decide(&post(VOICE_BODY, &signature));
    assert!(
        decision
            .response
            .body
            .contains("<Say language=\"es-ES\">Lo sentimos.</Say>")
    );
    assert_eq!(log_of(&decision).answer, AnswerFrom::Number);
    let other = VOICE_BODY.replace("To=%2B14155550199", "To=%2B14155550123");
    let signature = sign(URL, &other);
    assert_eq!(
        log_of(&edge.decide(&post(&other, &signature))).answer,
        AnswerFrom::Default
    );
}

#[test]
fn unknown_channels_get_an_empty_response() {
    let body = "From=%2B14155550100&To=%2B14155550199";
    let signature = sign(URL, body);
    let decision = edge("").decide(&post(body, &signature));
    assert_eq!(decision.response.body, UNKNOWN_CHANNEL_TWIML);
    assert_eq!(log_of(&decision).answer, AnswerFrom::UnknownChannel);
}

#[test]
fn verified_notices_are_filed_under_the_failing_primarys_origin() {
    let edge = edge(ALERTS);
    let signature = sign(URL, VOICE_BODY);
    let first = edge.decide(&post(VOICE_BODY, &signature));
    let notices = alerts_of(&first);
    assert_eq!(notices.len(), 1);
    let notice = notices[0];
    assert_eq!(notice.origin, "https://app.example.com");
    assert_eq!(notice.error_code, "11200");
    assert_eq!(notice.channel, Some(Channel::Voice));
    assert_eq!(notice.to.as_deref(), Some("+14155550199"));
    assert_eq!(notice.at_ms, NOW);
    assert_eq!(log_of(&first).incident.as_deref(), Some("https://app.example.com"));
    assert!(notice.body.is_none(), "no bodies unless include_bodies");

    // Another path and query on the same primary is the same incident; another primary is not.
    let second_body = VOICE_BODY.replace("CA1", "CA9").replace("%3Fx%3D1", "%3Fx%3D2");
    let second = edge.decide(&post(&second_body, &sign(URL, &second_body)));
    assert_eq!(alerts_of(&second)[0].origin, notice.origin);
    let third_body = VOICE_BODY.replace("app.example.com", "other.example.com%3A8443");
    let third = edge.decide(&post(&third_body, &sign(URL, &third_body)));
    assert_eq!(alerts_of(&third)[0].origin, "https://other.example.com:8443");
}

#[test]
fn requests_without_a_fallback_notice_do_not_alert() {
    let body = "CallSid=CA1&To=%2B14155550199";
    let decision = edge(ALERTS).decide(&post(body, &sign(URL, body)));
    assert!(alerts_of(&decision).is_empty());
}

#[test]
fn recovery_is_planned_for_allowlisted_hosts_with_freshly_signed_params() {
    let edge = edge(&format!("{ALERTS}{RECOVERY}"));
    let decision = edge.decide(&post(VOICE_BODY, &sign(URL, VOICE_BODY)));
    assert!(
        matches!(decision.effects[0], Effect::Recover(_)),
        "recovery first: {:?}",
        decision.effects
    );
    assert!(
        !decision.effects.iter().any(|e| matches!(e, Effect::Log(_))),
        "the judgement logs instead"
    );
    assert_eq!(alerts_of(&decision).len(), 1);
    let plan = plan_of(&decision).expect("a plan");
    assert_eq!(plan.request.method, Method::POST);
    assert_eq!(plan.request.url, "https://app.example.com/voice?x=1");
    assert_eq!(plan.timeout(), std::time::Duration::from_millis(3000));
    assert_eq!(plan.channel, Channel::Voice);
    let replayed = Params::from_form(plan.request.body.as_deref().unwrap_or("").as_bytes());
    assert_eq!(replayed.get("ErrorCode"), None);
    assert_eq!(replayed.get("ErrorUrl"), None);
    assert_eq!(replayed.call_sid(), Some("CA1"));
    let signature = plan
        .request
        .headers
        .iter()
        .find(|(name, _)| name.as_str().eq_ignore_ascii_case(SIGNATURE_HEADER))
        .map(|(_, v)| v.as_str());
    let verified =
        SignatureVerifier::new(TOKEN).verify(&plan.request.url, Payload::Form(&replayed), signature.unwrap_or(""));
    assert!(verified.is_ok(), "the primary can verify the replay");
    assert!(
        plan.request
            .headers
            .iter()
            .any(|(name, value)| *name == http::header::CONTENT_TYPE
                && value.starts_with("application/x-www-form-urlencoded"))
    );
}

#[test]
fn get_recovery_puts_the_params_in_the_query_and_signs_the_url() {
    let url = format!("{URL}?{VOICE_BODY}");
    let signature = compute_signature(TOKEN, &url, []);
    let decision = edge(RECOVERY).decide(&EdgeRequest {
        signature: Some(&signature),
        ..EdgeRequest::get(&url, NOW)
    });
    let plan = plan_of(&decision).expect("a plan");
    assert_eq!(plan.request.method, Method::GET);
    assert!(
        plan.request
            .url
            .starts_with("https://app.example.com/voice?x=1&AccountSid=AC1&CallSid=CA1"),
        "{}",
        plan.request.url
    );
    assert!(!plan.request.url.contains("ErrorCode"));
    assert!(plan.request.body.is_none());
    let signature = plan
        .request
        .headers
        .iter()
        .find(|(name, _)| name.as_str().eq_ignore_ascii_case(SIGNATURE_HEADER))
        .map(|(_, v)| v.clone());
    assert!(
        SignatureVerifier::new(TOKEN)
            .verify(&plan.request.url, Payload::UrlOnly, &signature.unwrap_or_default())
            .is_ok()
    );
}

#[test]
fn recovery_refuses_hosts_off_the_allowlist() {
    let body = VOICE_BODY.replace("app.example.com", "evil.example");
    let decision = edge(RECOVERY).decide(&post(&body, &sign(URL, &body)));
    assert!(plan_of(&decision).is_none());
    let record = log_of(&decision);
    assert_eq!(
        record.recovery.as_deref(),
        Some("refused: host \"evil.example\" is not in recovery.allow_hosts")
    );
    assert_eq!(decision.response.status, StatusCode::OK);
}

#[test]
fn a_healthy_primary_is_relayed_with_relative_urls_resolved() {
    let edge = edge(RECOVERY);
    let decision = edge.decide(&post(VOICE_BODY, &sign(URL, VOICE_BODY)));
    let plan = plan_of(&decision).expect("a plan");
    let primary =
        b"<?xml version=\"1.0\"?><Response><Gather action=\"/gather\"><Say>Welcome back</Say></Gather></Response>";
    let judgement = edge.judge_recovery(
        plan,
        SendOutcome::Answered {
            status: StatusCode::from_u16(200).expect("status"),
            content_type: Some("text/xml"),
            body: primary,
        },
    );
    assert_eq!(judgement.response.status, StatusCode::OK);
    assert_eq!(judgement.response.content_type, TWIML_CONTENT_TYPE);
    assert!(
        judgement
            .response
            .body
            .contains("action=\"https://app.example.com/gather\""),
        "{}",
        judgement.response.body
    );
    assert_eq!(
        (judgement.log.event, judgement.log.answer),
        (LogEvent::Recovered, AnswerFrom::Recovered)
    );
}

#[test]
fn what_twilio_would_run_is_relayed_as_twilio_would_run_it() {
    let edge = edge(RECOVERY);
    let voice = edge.decide(&post(VOICE_BODY, &sign(URL, VOICE_BODY)));
    let plan = plan_of(&voice).expect("a plan");
    let answered = |content_type, body| SendOutcome::Answered {
        status: StatusCode::from_u16(200).expect("status"),
        content_type: Some(content_type),
        body,
    };
    // Plain text is read aloud: relayed as plain text.
    let judgement = edge.judge_recovery(plan, answered("text/plain", b"Please hold the line"));
    assert_eq!(
        (judgement.response.content_type, judgement.response.body.as_str()),
        (TEXT_CONTENT_TYPE, "Please hold the line")
    );
    assert_eq!(judgement.log.event, LogEvent::Recovered);
    // TwiML served as text/plain or text/html is relayed as TwiML.
    for content_type in ["text/plain; charset=utf-8", "text/html"] {
        let judgement = edge.judge_recovery(plan, answered(content_type, b"<Response><Say>Back</Say></Response>"));
        assert_eq!(judgement.response.content_type, TWIML_CONTENT_TYPE, "{content_type}");
        assert_eq!(judgement.response.body, "<Response><Say>Back</Say></Response>");
    }
    // A messaging 204 is "no reply": relayed as an empty <Response/>, never as an empty body.
    let sms = edge.decide(&post(SMS_BODY, &sign(URL, SMS_BODY)));
    let plan = plan_of(&sms).expect("a plan");
    let judgement = edge.judge_recovery(
        plan,
        SendOutcome::Answered {
            status: StatusCode::from_u16(204).expect("status"),
            content_type: None,
            body: b"",
        },
    );
    assert_eq!(
        (judgement.response.content_type, judgement.response.body.as_str()),
        (TWIML_CONTENT_TYPE, UNKNOWN_CHANNEL_TWIML)
    );
    assert_eq!(judgement.log.event, LogEvent::Recovered);
}

#[test]
fn a_broken_primary_falls_back_with_the_reason_logged() {
    let edge = edge(RECOVERY);
    // Valid voice TwiML, but over 64 KB; and just under it until its 800 relative URLs grow.
    let oversized = format!("<Response><Say>{}</Say></Response>", "x".repeat(70 * 1024)).into_bytes();
    let near_limit = format!(
        "<Response>{}<Say>{}</Say></Response>",
        "<Play>a.mp3</Play>".repeat(800),
        "x".repeat(64 * 1024 - 40 - 800 * 18)
    );
    assert!(near_limit.len() <= 64 * 1024);
    let decision = edge.decide(&post(VOICE_BODY, &sign(URL, VOICE_BODY)));
    let plan = plan_of(&decision).expect("a plan");
    for (outcome, reason) in [
        (SendOutcome::TimedOut, "failed: no answer within 3000 ms"),
        (SendOutcome::Failed("connection refused"), "failed: connection refused"),
        (
            SendOutcome::Answered {
                status: StatusCode::from_u16(500).expect("status"),
                content_type: Some("text/xml"),
                body: b"<Response/>",
            },
            "rejected: 11200",
        ),
        (
            SendOutcome::Answered {
                status: StatusCode::from_u16(200).expect("status"),
                content_type: Some("text/xml"),
                body: b"<response><Say>x</Say></response>",
            },
            "rejected: 12102",
        ),
        (
            SendOutcome::Answered {
                status: StatusCode::from_u16(200).expect("status"),
                content_type: Some("text/xml"),
                body: b"<Response><Message>x</Message></Response>",
            },
            "rejected: 12200",
        ),
        (
            SendOutcome::Answered {
                status: StatusCode::from_u16(200).expect("status"),
                content_type: Some("text/html"),
                body: b"<html/>",
            },
            "rejected: 12102",
        ),
        (
            SendOutcome::Answered {
                status: StatusCode::from_u16(200).expect("status"),
                content_type: Some("application/json"),
                body: b"{}",
            },
            "rejected: 12300",
        ),
        (
            SendOutcome::Answered {
                status: StatusCode::from_u16(200).expect("status"),
                content_type: Some("audio/mpeg"),
                body: b"ID3",
            },
            "not relayed: an audio answer",
        ),
        (
            SendOutcome::Answered {
                status: StatusCode::from_u16(200).expect("status"),
                content_type: Some("text/xml"),
                body: &oversized,
            },
            "rejected: 11750",
        ),
        (
            SendOutcome::Answered {
                status: StatusCode::from_u16(200).expect("status"),
                content_type: Some("text/xml"),
                body: near_limit.as_bytes(),
            },
            "rejected: over 64 KB once its relative URLs are resolved",
        ),
    ] {
        let judgement = edge.judge_recovery(plan, outcome);
        assert_eq!(&judgement.response, plan.fallback());
        assert_eq!(judgement.log.event, LogEvent::Fallback);
        let logged = judgement.log.recovery.clone().unwrap_or_default();
        assert!(logged.starts_with(reason), "{logged} vs {reason}");
    }
}

#[test]
fn oversized_bodies_are_refused_without_being_read() {
    let request = EdgeRequest {
        body: Body::TooLarge,
        ..post("", "")
    };
    let with_token = edge(ALERTS).decide(&request);
    assert_eq!(with_token.response.status, StatusCode::FORBIDDEN);
    assert_eq!(log_of(&with_token).signature, SignatureCheck::UnreadableBody);
    let without = Edge::new(Config::default(), SignatureVerifier::default()).decide(&request);
    assert_eq!(without.response.status, StatusCode::OK);
    assert_eq!(without.response.body, UNKNOWN_CHANNEL_TWIML);
}

#[test]
fn json_bodies_verify_through_body_sha256() {
    let body = r#"{"CallSid":"CA1"}"#;
    let url = format!("{URL}?bodySHA256={}", body_sha256_hex(body.as_bytes()));
    let signature = compute_signature(TOKEN, &url, []);
    let request = EdgeRequest {
        url: &url,
        content_type: Some("application/json"),
        ..post(body, &signature)
    };
    let decision = edge("").decide(&request);
    assert_eq!(decision.response.status, StatusCode::OK);
    let tampered = EdgeRequest {
        body: Body::Complete(br#"{"CallSid":"CA2"}"#),
        ..request
    };
    let refused = edge("").decide(&tampered);
    assert_eq!(
        (refused.response.status, log_of(&refused).signature),
        (StatusCode::FORBIDDEN, SignatureCheck::BodyHashMismatch)
    );
}

#[test]
fn a_rotated_token_verifies_and_signs_the_recovery() {
    let edge = Edge::new(config(RECOVERY), SignatureVerifier::new("old-token").with_token(TOKEN));
    let decision = edge.decide(&post(VOICE_BODY, &sign(URL, VOICE_BODY)));
    let plan = plan_of(&decision).expect("a plan");
    let replayed = Params::from_form(plan.request.body.as_deref().unwrap_or("").as_bytes());
    let signature = plan
        .request
        .headers
        .iter()
        .find(|(name, _)| name.as_str().eq_ignore_ascii_case(SIGNATURE_HEADER))
        .map(|(_, v)| v.clone());
    assert!(
        SignatureVerifier::new(TOKEN)
            .verify(
                &plan.request.url,
                Payload::Form(&replayed),
                &signature.unwrap_or_default()
            )
            .is_ok()
    );
}

#[test]
fn garbage_never_panics_and_every_200_is_valid_twiml() {
    let edges = [
        edge(&format!("{ALERTS}{RECOVERY}")),
        Edge::new(Config::default(), SignatureVerifier::default()),
    ];
    let bodies: [&[u8]; 8] = [
        b"",
        b"\xff\xfe\x00garbage",
        b"CallSid=%ZZ&To=%E0",
        b"<Response><Say>hi</Say></Response>",
        b"MessageSid=SM1&To=whatsapp%3A%2B14155550199",
        b"CallSid=CA1&ErrorCode=99999999999999999999&ErrorUrl=javascript:alert(1)",
        b"CallSid=CA1&ErrorUrl=https%3A%2F%2Fapp.example.com%40evil.example%2F",
        b"=&&==&%",
    ];
    for edge in &edges {
        for body in bodies {
            for content_type in [
                None,
                Some("application/json"),
                Some("text/plain"),
                Some("application/x-www-form-urlencoded; charset=utf-8"),
            ] {
                for method in &[Method::POST, Method::GET, Method::PUT, method_of("get")] {
                    let text = String::from_utf8_lossy(body);
                    let signature = sign(URL, &text);
                    let decision = edge.decide(&EdgeRequest {
                        method,
                        url: URL,
                        signature: Some(&signature),
                        content_type,
                        body: Body::Complete(body),
                        now_ms: NOW,
                        inbox_failing: false,
                    });
                    assert!(matches!(
                        decision.response.status,
                        StatusCode::OK | StatusCode::FORBIDDEN
                    ));
                    if decision.response.status == StatusCode::OK {
                        let channel = log_of(&decision).channel;
                        let report = validate(decision.response.body.as_bytes(), TargetChannel::from(channel));
                        assert!(report.is_valid(), "{:?}", report.diagnostics());
                        assert!(decision.response.body.len() <= MAX_DOCUMENT_BYTES);
                    }
                    let logs = decision
                        .effects
                        .iter()
                        .filter(|e| matches!(e, Effect::Log(_) | Effect::Recover(_)))
                        .count();
                    assert_eq!(logs, 1, "exactly one log record");
                }
            }
        }
    }
}

#[test]
fn log_records_and_alerts_are_bounded_whatever_the_request_holds() {
    // Every field that comes from the request, 10,000 characters long (a 64 KB body allows it).
    let long = |prefix: &str| format!("{prefix}{}", "x".repeat(10_000));
    let body = Params::from_pairs([
        ("CallSid", long("CA")),
        ("AccountSid", long("AC")),
        ("To", long("+1")),
        ("ErrorCode", long("112")),
        ("ErrorUrl", long("https://app.example.com/")),
    ])
    .to_form();
    let url = format!("{URL}/{}", "p".repeat(10_000));
    let long_method = method_of(&"P".repeat(10_000));
    let signature = sign(&url, &body);
    let edge = edge(ALERTS);
    for method in [&Method::POST, &long_method] {
        let decision = edge.decide(&EdgeRequest {
            method,
            url: &url,
            ..post(&body, &signature)
        });
        let line = log_of(&decision).to_json();
        assert!(!line.contains('\n'));
        assert!(line.len() < 8 * 1024, "a {} byte log line", line.len());
        let parsed: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        let alerts = alerts_of(&decision);
        if method == "POST" {
            // Signed and failing: a fallback with its alert, both bounded.
            assert_eq!(parsed["event"], "fallback", "{parsed}");
            assert_eq!(alerts.len(), 1);
        } else {
            // An unknown 10,000-character method: answered or refused, the record still bounded.
            assert!(
                parsed["event"] == "fallback" || parsed["event"] == "forbidden",
                "{parsed}"
            );
        }
        for notice in alerts {
            let json = serde_json::to_string(notice).expect("a notice is JSON");
            assert!(json.len() < 8 * 1024, "a {} byte notice", json.len());
        }
    }
    assert_eq!(
        alerts_of(&edge.decide(&EdgeRequest {
            url: &url,
            ..post(&body, &signature)
        }))
        .len(),
        1
    );
}

#[test]
fn rfc3339_formats_utc_milliseconds() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339(1_709_164_800_123), "2024-02-29T00:00:00.123Z");
    assert_eq!(rfc3339(1_798_761_599_999), "2026-12-31T23:59:59.999Z");
    assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
}

fn kept_of(decision: &Decision) -> Option<&crate::inbox::Entry> {
    decision.effects.iter().find_map(|effect| match effect {
        Effect::Keep(entry) => Some(&**entry),
        Effect::Recover(plan) => plan.keep(),
        Effect::Log(_) | Effect::Incident(_) => None,
    })
}

const INBOUND_SMS: &str = "MessageSid=SM42&AccountSid=AC1&From=%2B14155550100&To=%2B14155550199&Body=hi&SmsStatus=received\
                           &ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fsms";

#[test]
fn with_an_inbox_a_verified_message_is_kept_first_so_it_is_committed_before_the_answer() {
    let edge = edge("").with_inbox(true);
    let decision = edge.decide(&post(INBOUND_SMS, &sign(URL, INBOUND_SMS)));
    let Some(Effect::Keep(entry)) = decision.effects.first() else {
        panic!("keep first: {:?}", decision.effects)
    };
    assert_eq!(
        (entry.sid.as_str(), entry.url.as_str(), entry.received_at_ms),
        ("SM42", URL, NOW)
    );
    assert_eq!(log_of(&decision).inbox, Some("kept"));
    // Without an inbox nothing is kept and the record says nothing about one.
    let without = self::edge("").decide(&post(INBOUND_SMS, &sign(URL, INBOUND_SMS)));
    assert!(kept_of(&without).is_none());
    assert_eq!(log_of(&without).inbox, None);
}

#[test]
fn forged_unsigned_and_unverifiable_requests_are_never_kept() {
    let edge = edge("").with_inbox(true);
    for signature in [
        "",
        "Zm9yZ2VkIHNpZ25hdHVyZSE=",
        &compute_signature("other-token", URL, &Params::from_form(INBOUND_SMS.as_bytes())),
    ] {
        let decision = edge.decide(&post(INBOUND_SMS, signature));
        assert_eq!(decision.response.status, StatusCode::FORBIDDEN);
        assert!(kept_of(&decision).is_none());
    }
    let huge = edge.decide(&EdgeRequest {
        body: Body::TooLarge,
        ..post("", "")
    });
    assert!(kept_of(&huge).is_none());
    let no_token = Edge::new(Config::default(), SignatureVerifier::from_tokens(Vec::<String>::new())).with_inbox(true);
    let decision = no_token.decide(&post(INBOUND_SMS, ""));
    assert_eq!(decision.response.status, StatusCode::OK);
    assert!(
        kept_of(&decision).is_none(),
        "no token: nothing can be trusted, nothing is stored"
    );
    assert!(no_token.startup_warnings().contains(&super::INBOX_NO_TOKEN_WARNING));
}

#[test]
fn a_status_callback_is_answered_and_logged_but_not_kept() {
    let edge = edge("").with_inbox(true);
    let receipt = "MessageSid=SM1&MessageStatus=delivered&To=%2B14155550100";
    let decision = edge.decide(&post(receipt, &sign(URL, receipt)));
    assert_eq!(decision.response.status, StatusCode::OK);
    assert!(kept_of(&decision).is_none());
    assert_eq!(log_of(&decision).inbox, Some("not kept: a status callback"));
}

#[test]
fn with_recovery_a_message_the_primary_answered_is_kept_as_replayed_and_a_call_it_answered_is_not_kept() {
    let edge = edge(RECOVERY).with_inbox(true);
    let decision = edge.decide(&post(INBOUND_SMS, &sign(URL, INBOUND_SMS)));
    assert!(
        !decision.effects.iter().any(|effect| matches!(effect, Effect::Keep(_))),
        "the plan carries it"
    );
    let plan = plan_of(&decision).expect("a plan");
    let pending = plan.keep().expect("the plan keeps the message");
    assert_eq!(
        (pending.sid.as_str(), pending.status),
        ("SM42", crate::inbox::Status::Pending)
    );
    let relayed = edge.judge_recovery(
        plan,
        SendOutcome::Answered {
            status: StatusCode::OK,
            content_type: Some("text/xml"),
            body: b"<Response><Message>Got it</Message></Response>",
        },
    );
    let kept = relayed
        .keep
        .as_deref()
        .expect("a message the app answered is kept, in the inbox's history");
    assert_eq!(
        (kept.sid.as_str(), kept.status),
        ("SM42", crate::inbox::Status::Replayed),
        "replayed: never delivered again, so the person is not answered twice"
    );
    assert_eq!(
        (kept.attempts, kept.replies.len(), kept.next_attempt_ms),
        (0, 0, 0),
        "nothing else about it changes"
    );
    assert_eq!(
        relayed.log.inbox,
        Some("kept as replayed: the app answered it on recovery")
    );
    let failed = edge.judge_recovery(plan, SendOutcome::TimedOut);
    let waiting = failed.keep.as_deref().expect("kept for replay");
    assert_eq!(
        (waiting.sid.as_str(), waiting.status),
        ("SM42", crate::inbox::Status::Pending)
    );
    assert_eq!(failed.log.inbox, Some("kept"));

    // A call the app answered on recovery was not missed: nothing is kept.
    let call = edge.decide(&post(VOICE_BODY, &sign(URL, VOICE_BODY)));
    let plan = plan_of(&call).expect("a plan");
    assert_eq!(
        plan.keep().map(|entry| (entry.sid.as_str(), entry.status)),
        Some(("CA1", crate::inbox::Status::Missed))
    );
    let answered = edge.judge_recovery(
        plan,
        SendOutcome::Answered {
            status: StatusCode::OK,
            content_type: Some("text/xml"),
            body: b"<Response><Say>Welcome back</Say></Response>",
        },
    );
    assert_eq!(answered.log.event, LogEvent::Recovered);
    assert!(answered.keep.is_none(), "a call the app answered was not missed");
    assert_eq!(answered.log.inbox, Some("not kept: the app answered it on recovery"));
    let missed = edge.judge_recovery(plan, SendOutcome::Failed("connection refused"));
    assert_eq!(
        missed.keep.as_deref().map(|entry| (entry.sid.as_str(), entry.status)),
        Some(("CA1", crate::inbox::Status::Missed))
    );
    assert_eq!(missed.log.inbox, Some("kept"));
}

#[test]
fn a_health_check_reports_degraded_while_inbox_writes_fail() {
    let edge = edge("").with_inbox(true);
    let failing = edge.decide(&EdgeRequest {
        inbox_failing: true,
        ..EdgeRequest::get("https://fallback.example.com/healthz", NOW)
    });
    assert_eq!(failing.response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(failing.response.body.starts_with("degraded"));
    assert!(failing.effects.is_empty());
    let healthy = edge.decide(&EdgeRequest::get("https://fallback.example.com/healthz", NOW));
    assert_eq!(healthy.response.status, StatusCode::OK);
}

const PROBE_ID: &str = "probe-1a2b3c4d5e6f7a8b";

/// Every effect kind a decision asks for, counting what a recovery plan carries.
#[derive(Debug, Default, PartialEq, Eq)]
struct EffectKinds {
    keeps: usize,
    logs: usize,
    notices: usize,
    recoveries: usize,
}

fn kinds_of(decision: &Decision) -> EffectKinds {
    let mut kinds = EffectKinds::default();
    for effect in &decision.effects {
        match effect {
            Effect::Keep(_) => kinds.keeps += 1,
            Effect::Log(_) => kinds.logs += 1,
            Effect::Incident(_) => kinds.notices += 1,
            Effect::Recover(plan) => {
                kinds.recoveries += 1;
                kinds.logs += 1;
                kinds.keeps += usize::from(plan.keep().is_some());
                kinds.notices += usize::from(plan.notice().is_some());
            }
        }
    }
    kinds
}

/// A fallback request signed for `URL` as Twilio signs it: the form of a POST, or the query of a
/// GET (the URL alone is signed).
fn decide_signed(edge: &Edge, method: &Method, body: &str) -> Decision {
    if method == Method::GET {
        let url = format!("{URL}?{body}");
        let signature = compute_signature(TOKEN, &url, []);
        edge.decide(&EdgeRequest {
            signature: Some(&signature),
            ..EdgeRequest::get(&url, NOW)
        })
    } else {
        let signature = sign(URL, body);
        edge.decide(&post(body, &signature))
    }
}

fn with_probe(body: &str) -> String {
    format!("{body}&TwimlFallbackProbe={PROBE_ID}")
}

/// Alerts, recovery for the `ErrorUrl` host, a per-number voice answer and an inbox: everything a
/// real fallback request sets off, so a probe that set any of it off would show.
fn everything_on() -> Edge {
    edge(&format!(
        "{ALERTS}{RECOVERY}[numbers.\"+14155550199\".voice]\nsay = \"Per-number sorry.\"\n"
    ))
    .with_inbox(true)
}

const INBOUND_CALL: &str = "AccountSid=AC1&CallSid=CA42&From=%2B14155550100&To=%2B14155550199&CallStatus=ringing\
                            &Direction=inbound&ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fvoice";

#[test]
fn a_signed_probe_answers_the_fallback_and_only_logs_with_its_id() {
    for edge in [everything_on(), edge(ALERTS).with_inbox(true)] {
        for (channel, body) in [(Channel::Voice, INBOUND_CALL), (Channel::Messaging, INBOUND_SMS)] {
            for method in [Method::POST, Method::GET] {
                let case = format!("{channel:?} {method}");
                let probe = decide_signed(&edge, &method, &with_probe(body));
                let real = decide_signed(&edge, &method, body);
                assert_eq!(probe.response.status, StatusCode::OK, "{case}");
                assert_eq!(probe.response.content_type, TWIML_CONTENT_TYPE, "{case}");
                assert_eq!(
                    probe.response, real.response,
                    "{case}: the TwiML a real fallback request gets"
                );
                let report = validate(probe.response.body.as_bytes(), TargetChannel::from(channel));
                assert!(report.is_valid(), "{case}: {:?}", report.diagnostics());
                assert_eq!(
                    kinds_of(&probe),
                    EffectKinds {
                        logs: 1,
                        ..EffectKinds::default()
                    },
                    "{case}: no keep, no notice, no recovery: {:?}",
                    probe.effects
                );
                let [Effect::Log(record)] = probe.effects.as_slice() else {
                    panic!("{case}: the log record alone: {:?}", probe.effects)
                };
                assert_eq!(record.probe.as_deref(), Some(PROBE_ID), "{case}");
                assert_eq!(record.signature, SignatureCheck::Valid, "{case}");
                assert_eq!(
                    (record.event, record.status),
                    (LogEvent::Fallback, StatusCode::OK),
                    "{case}"
                );
                assert_eq!(record.channel, Some(channel), "{case}");
                assert_eq!(record.error_code, Some(11200), "{case}");
                assert_eq!((&record.incident, &record.recovery), (&None, &None), "{case}");
                assert_eq!(record.inbox, Some("not kept: a probe"), "{case}");
                assert!(
                    record
                        .note
                        .is_some_and(|note| note.contains("numbers audit --probe") && note.contains("not kept")),
                    "{case}: {:?}",
                    record.note
                );
                assert!(
                    record.to_json().contains(&format!(r#""probe":"{PROBE_ID}""#)),
                    "{case}: {}",
                    record.to_json()
                );
            }
        }
    }
    // The per-number answer, as the real request gets it.
    let probe = decide_signed(&everything_on(), &Method::POST, &with_probe(INBOUND_CALL));
    assert!(
        probe.response.body.contains("Per-number sorry."),
        "{}",
        probe.response.body
    );
    assert_eq!(log_of(&probe).answer, AnswerFrom::Number);
}

#[test]
fn the_same_request_without_the_probe_id_is_kept_notified_and_recovered() {
    for (channel, body) in [(Channel::Voice, INBOUND_CALL), (Channel::Messaging, INBOUND_SMS)] {
        for method in [Method::POST, Method::GET] {
            let case = format!("{channel:?} {method}");
            let recovered = decide_signed(&everything_on(), &method, body);
            assert_eq!(
                kinds_of(&recovered),
                EffectKinds {
                    keeps: 1,
                    logs: 1,
                    notices: 1,
                    recoveries: 1,
                },
                "{case}: {:?}",
                recovered.effects
            );
            assert_eq!(log_of(&recovered).probe, None, "{case}");
            // Without recovery, each as its own effect: keep, log, incident.
            let filed = decide_signed(&edge(ALERTS).with_inbox(true), &method, body);
            assert!(
                matches!(
                    filed.effects.as_slice(),
                    [Effect::Keep(_), Effect::Log(_), Effect::Incident(_)]
                ),
                "{case}: {:?}",
                filed.effects
            );
        }
    }
}

#[test]
fn only_a_commit_to_the_inbox_or_a_recovery_holds_the_answer() {
    let held = |decision: &Decision| {
        decision
            .effects
            .iter()
            .map(Effect::holds_the_answer)
            .collect::<Vec<_>>()
    };
    // Keep, log, incident: the commit holds the answer, the line and the notice do not.
    let filed = decide_signed(&edge(ALERTS).with_inbox(true), &Method::POST, INBOUND_SMS);
    assert_eq!(held(&filed), [true, false, false], "{:?}", filed.effects);
    // Without the inbox, nothing holds it.
    let logged = decide_signed(&edge(ALERTS), &Method::POST, INBOUND_SMS);
    assert!(!held(&logged).contains(&true), "{:?}", logged.effects);
    // A recovery does.
    let recovered = edge(&format!("{ALERTS}{RECOVERY}")).decide(&post(VOICE_BODY, &sign(URL, VOICE_BODY)));
    assert!(matches!(recovered.effects[0], Effect::Recover(_)) && held(&recovered)[0]);
}

#[test]
fn a_forged_or_unsigned_probe_is_refused_like_any_forged_request() {
    let edge = everything_on();
    let probe = with_probe(INBOUND_SMS);
    let wrong_token = compute_signature("another-token", URL, &Params::from_form(probe.as_bytes()));
    let unsigned = EdgeRequest {
        signature: None,
        ..post(&probe, "")
    };
    for (request, check) in [
        (unsigned, SignatureCheck::Missing),
        (post(&probe, "Zm9yZ2VkIHNpZ25hdHVyZSE="), SignatureCheck::Mismatch),
        (post(&probe, &wrong_token), SignatureCheck::Mismatch),
    ] {
        let decision = edge.decide(&request);
        assert_eq!(decision.response.status, StatusCode::FORBIDDEN);
        let [Effect::Log(record)] = decision.effects.as_slice() else {
            panic!("log only: {:?}", decision.effects)
        };
        assert_eq!((record.event, record.signature), (LogEvent::Forbidden, check));
        // Logged with the id it claimed, so a refused probe can be found; no probe's note.
        assert_eq!(record.probe.as_deref(), Some(PROBE_ID));
        assert_eq!(record.note, None);
    }
}

#[test]
fn a_probe_id_added_after_signing_breaks_the_signature() {
    let edge = everything_on();
    // POST: the form was signed without it.
    let signature = sign(URL, INBOUND_SMS);
    let decision = edge.decide(&post(&with_probe(INBOUND_SMS), &signature));
    assert_eq!(decision.response.status, StatusCode::FORBIDDEN);
    assert_eq!(decision.effects.len(), 1, "{:?}", decision.effects);
    assert_eq!(log_of(&decision).signature, SignatureCheck::Mismatch);
    // GET: the URL was signed without it.
    let signature = compute_signature(TOKEN, &format!("{URL}?{INBOUND_SMS}"), []);
    let url = format!("{URL}?{}", with_probe(INBOUND_SMS));
    let decision = edge.decide(&EdgeRequest {
        signature: Some(&signature),
        ..EdgeRequest::get(&url, NOW)
    });
    assert_eq!(decision.response.status, StatusCode::FORBIDDEN);
    assert_eq!(decision.effects.len(), 1, "{:?}", decision.effects);
    assert_eq!(log_of(&decision).signature, SignatureCheck::Mismatch);
}

#[test]
fn without_a_token_a_probe_is_answered_and_logged_with_its_id() {
    let edge = Edge::new(config(&format!("{ALERTS}{RECOVERY}")), SignatureVerifier::default()).with_inbox(true);
    let decision = edge.decide(&post(&with_probe(INBOUND_SMS), ""));
    assert_eq!(decision.response.status, StatusCode::OK);
    let [Effect::Log(record)] = decision.effects.as_slice() else {
        panic!("log only: {:?}", decision.effects)
    };
    assert_eq!(record.probe.as_deref(), Some(PROBE_ID));
    assert_eq!(record.signature, SignatureCheck::NoToken);
    assert!(
        record
            .note
            .is_some_and(|note| note.contains("alerts and recovery disabled"))
    );
}
