//! The fallback endpoint's whole decision on arbitrary requests, sometimes correctly signed, and
//! its judgement of a recovered primary's answer: no panic; 200 with valid TwiML within 64 KB, or
//! 403 and no effect but the log record; exactly one log record per request — except a health
//! check (`GET`/`HEAD` of `…/healthz`), which gets 200 `ok` and no effect at all.
//!
//! Input (so real webhook bodies can seed it):
//! `METHOD PATH?QUERY \n FLAG CONTENT-TYPE \n BODY [\n PRIMARY'S ANSWER]`, FLAG being `S` (signed
//! correctly), `N` (no signature), `L` (body too large to read) or anything else (that line's rest
//! is the signature, with no Content-Type). When a recovery is planned, the primary's answer is
//! judged as a 200 answer under each Content-Type Twilio runs (`text/xml`, `text/html`,
//! `text/plain`): relayed TwiML must be valid, relayed text at most 64 KB. The endpoint keeps an
//! inbox: an entry is kept only for a 200 (never a refused request), first among the effects, with
//! a SID, every parameter the request carried in order, and JSON that reads back as itself. At
//! most one incident notice, only for a 200, bounded, its JSON (the Worker's wire form) reading
//! back as itself; a judged recovery files the notice or resolves, never both. A request carrying
//! a probe id (`TwimlFallbackProbe`, from `numbers audit --probe`) is never kept, filed as a
//! notice or recovered, signed or not.
#![no_main]

use std::sync::OnceLock;

use http::StatusCode;
use libfuzzer_sys::fuzz_target;
use twiml_fallback::config::Config;
use twiml_fallback::edge::{
    Body, Edge, EdgeRequest, EdgeResponse, Effect, HEALTH_BODY, SendOutcome, TEXT_CONTENT_TYPE, TWIML_CONTENT_TYPE,
    is_health_check, method_of,
};
use twiml_fallback::inbox::Entry;
use twiml_fallback::incident::Notice;
use twiml_fallback::signature::{SignatureVerifier, compute_signature};
use twiml_fallback::twiml::{MAX_DOCUMENT_BYTES, TargetChannel, validate};
use twiml_fallback::webhook::Params;

const TOKEN: &str = "fuzz-token";

fn edge() -> &'static Edge {
    static EDGE: OnceLock<Edge> = OnceLock::new();
    EDGE.get_or_init(|| {
        let config = Config::from_toml(
            r#"
[voice]
say = "Voice fallback <&> \"quoted\""
[messaging]
message = "SMS fallback"
[numbers."+14155550199".voice]
play = "https://example.com/sorry.mp3"
[alerts]
webhook_url = "https://hooks.example.com/alert"
[recovery]
allow_hosts = ["app.example.com"]
"#,
        )
        .expect("the fuzz configuration is valid");
        Edge::new(config, SignatureVerifier::new(TOKEN)).with_inbox(true)
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&byte| byte == b'\n');
    let request_line = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let header_line = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let rest = parts.next().unwrap_or_default();
    let (body, primary_answer) = match rest.iter().position(|&byte| byte == b'\n') {
        Some(newline) => (&rest[..newline], &rest[newline + 1..]),
        None => (rest, &[][..]),
    };
    let (method, target) = request_line.split_once(' ').unwrap_or(("POST", &request_line));
    let url = format!("https://fallback.example.com/{}", target.trim_start_matches('/'));
    let (flag, rest) = header_line.split_at(header_line.chars().next().map_or(0, char::len_utf8));
    let content_type = Some(rest.trim()).filter(|text| !text.is_empty());
    let (signature, content_type, too_large) = match flag {
        "S" => {
            let params = if method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD") {
                Params::new()
            } else {
                Params::from_form(body)
            };
            (Some(compute_signature(TOKEN, &url, params.iter())), content_type, false)
        }
        "N" => (None, content_type, false),
        "L" => (None, content_type, true),
        _ => (Some(header_line.to_string()), None, false),
    };
    let decision = edge().decide(&EdgeRequest {
        method: &method_of(method),
        url: &url,
        signature: signature.as_deref(),
        content_type,
        body: if too_large {
            Body::TooLarge
        } else {
            Body::Complete(body)
        },
        now_ms: 1_700_000_000_000,
        inbox_failing: false,
    });
    let method = method_of(method);
    if is_health_check(&method, &url) {
        assert_eq!(decision.response.status, StatusCode::OK);
        assert_eq!(decision.response.content_type, TEXT_CONTENT_TYPE);
        assert_eq!(decision.response.body, HEALTH_BODY);
        assert!(decision.effects.is_empty(), "a health check caused effects");
        return;
    }
    check_answer(&decision.response);
    let params = Params::from_request(&method, twiml_fallback::url::query(&url), content_type, body);
    let logs = decision
        .effects
        .iter()
        .filter(|effect| matches!(effect, Effect::Log(_)))
        .count();
    let recoveries = decision
        .effects
        .iter()
        .filter(|effect| matches!(effect, Effect::Recover(_)))
        .count();
    assert_eq!(
        logs + recoveries,
        1,
        "one log record per request (a recovery plan carries it)"
    );
    if decision.response.status == StatusCode::FORBIDDEN {
        assert_eq!(decision.effects.len(), 1, "a refused request caused effects");
    }
    let kept: Vec<&Entry> = decision
        .effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Keep(entry) => Some(&**entry),
            Effect::Recover(plan) => plan.keep(),
            Effect::Log(_) | Effect::Incident(_) => None,
        })
        .collect();
    assert!(kept.len() <= 1, "one entry per request at most");
    let notices: Vec<&Notice> = decision
        .effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Incident(notice) => Some(notice),
            Effect::Recover(plan) => plan.notice(),
            Effect::Log(_) | Effect::Keep(_) => None,
        })
        .collect();
    assert!(notices.len() <= 1, "one incident notice per request at most");
    if let Some(notice) = notices.first() {
        assert_eq!(
            decision.response.status,
            StatusCode::OK,
            "a refused request filed a notice"
        );
        assert!(
            notice.origin.chars().count() <= 513,
            "an origin of {} characters",
            notice.origin.chars().count()
        );
        let json = serde_json::to_string(notice).expect("a notice serialises");
        let back: Notice = serde_json::from_str(&json).expect("its JSON (the Worker's wire form) reads back");
        assert_eq!(&back, *notice);
    }
    if let Some(entry) = kept.first() {
        assert_eq!(
            decision.response.status,
            StatusCode::OK,
            "an entry kept for a refused request"
        );
        assert!(
            matches!(decision.effects[0], Effect::Keep(_) | Effect::Recover(_)),
            "the entry is committed before anything else"
        );
        assert!(!entry.sid.is_empty());
        let pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        assert_eq!(entry.params, pairs, "every parameter, in order");
        let json = serde_json::to_string(entry).expect("an entry serialises");
        let back: Entry = serde_json::from_str(&json).expect("its JSON reads back");
        assert_eq!(&back, *entry);
    }
    if !too_large && params.probe().is_some() {
        assert!(
            kept.is_empty() && notices.is_empty() && recoveries == 0,
            "a probe was kept, filed as an incident notice or recovered: {:?}",
            decision.effects
        );
    }
    for effect in &decision.effects {
        if let Effect::Recover(plan) = effect {
            for content_type in ["text/xml", "text/html", "text/plain; charset=utf-8"] {
                let judgement = edge().judge_recovery(
                    plan,
                    SendOutcome::Answered {
                        status: StatusCode::OK,
                        content_type: Some(content_type),
                        body: primary_answer,
                    },
                );
                assert_eq!(judgement.response.status, StatusCode::OK, "a judged recovery answers");
                assert!(
                    judgement.notice.is_none() || judgement.resolves.is_none(),
                    "a recovery either failed (the notice is filed) or resolved the incident"
                );
                if judgement.response.content_type == TEXT_CONTENT_TYPE {
                    assert!(
                        content_type.starts_with("text/plain"),
                        "text relayed for {content_type}"
                    );
                    assert!(!judgement.response.body.is_empty() && judgement.response.body.len() <= MAX_DOCUMENT_BYTES);
                } else {
                    check_answer(&judgement.response);
                }
            }
        }
    }
});

/// 200 with valid TwiML within 64 KB, or 403.
fn check_answer(response: &EdgeResponse) {
    match response.status {
        StatusCode::OK => {
            assert_eq!(response.content_type, TWIML_CONTENT_TYPE);
            assert!(response.body.len() <= MAX_DOCUMENT_BYTES);
            let report = validate(response.body.as_bytes(), TargetChannel::Auto);
            assert!(report.is_valid(), "{}: {:?}", response.body, report.diagnostics());
        }
        StatusCode::FORBIDDEN => {}
        other => panic!("status {other}"),
    }
}
