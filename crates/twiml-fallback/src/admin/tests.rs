use base64::Engine as _;

use super::*;
use crate::inbox::{SqlValue, Statement};

fn admin() -> Admin {
    Admin::new(Some("s3cret".to_owned()), true)
}

fn request<'a>(method: &'a Method, url: &'a str, authorization: Option<&'a str>) -> AdminRequest<'a> {
    AdminRequest {
        method,
        url,
        authorization,
        body: Some(b""),
    }
}

fn answer(routed: Option<Routed>) -> AdminResponse {
    match routed {
        Some(Routed::Answer(answer)) => answer,
        other => panic!("expected an answer, got {other:?}"),
    }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[test]
fn bearer_and_basic_with_the_token_as_password_are_accepted() {
    let get = Method::GET;
    let url = "/_twiml-fallback/inbox";
    for authorization in [
        "Bearer s3cret".to_owned(),
        "bearer  s3cret ".to_owned(),
        basic("", "s3cret"),
        basic("ops", "s3cret"),
    ] {
        let routed = admin().route(&request(&get, url, Some(&authorization)), 0);
        assert!(
            matches!(routed, Some(Routed::Inbox(Operation::List(_)))),
            "{authorization}"
        );
    }
}

#[test]
fn a_missing_or_wrong_token_is_401_with_a_basic_challenge() {
    let get = Method::GET;
    let url = "https://x.example.com/_twiml-fallback/inbox/SM1";
    for authorization in [
        None,
        Some("Bearer s3cre"),
        Some("Bearer s3cret2"),
        Some("Bearer"),
        Some("Token s3cret"),
        Some("Basic !!!"),
    ] {
        let refused = answer(admin().route(&request(&get, url, authorization), 0));
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert!(refused.headers.contains(&("www-authenticate", WWW_AUTHENTICATE)));
    }
    let basic_wrong = basic("s3cret", "nope");
    let refused = answer(admin().route(&request(&get, url, Some(&basic_wrong)), 0));
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "the token is the password, not the user"
    );
}

#[test]
fn without_an_admin_token_every_admin_path_is_404() {
    let admin = Admin::new(None, true);
    for (method, url) in [
        (Method::GET, "/_twiml-fallback/inbox"),
        (Method::POST, "/_twiml-fallback/inbox/SM1/dismiss"),
        (Method::GET, "/_twiml-fallback/anything"),
    ] {
        let refused = answer(admin.route(&request(&method, url, Some("Bearer ")), 0));
        assert_eq!(refused.status, StatusCode::NOT_FOUND);
    }
    assert!(!Admin::new(Some(String::new()), true).is_enabled());
}

#[test]
fn paths_route_to_operations_and_others_are_not_admin() {
    let (get, post, delete) = (Method::GET, Method::POST, Method::DELETE);
    let auth = Some("Bearer s3cret");
    let route = |method: &Method, url: &str| admin().route(&request(method, url, auth), 0);
    assert!(route(&get, "/voice").is_none());
    assert!(route(&get, "/_twiml-fallbackx/inbox").is_none());
    assert_eq!(
        route(&get, "/_twiml-fallback/inbox/SM1"),
        Some(Routed::Inbox(Operation::Show("SM1".into())))
    );
    assert_eq!(
        route(&post, "/twilio/_twiml-fallback/inbox/SM1/dismiss"),
        Some(Routed::Inbox(Operation::Dismiss("SM1".into())))
    );
    let Some(Routed::Inbox(Operation::List(query))) =
        route(&get, "/_twiml-fallback/inbox?status=pending&channel=voice&limit=5")
    else {
        panic!()
    };
    assert_eq!(
        (query.status, query.channel, query.limit),
        (Some(crate::inbox::Status::Pending), Some(crate::Channel::Voice), 5)
    );
    assert_eq!(
        answer(route(&delete, "/_twiml-fallback/inbox/SM1")).status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        answer(route(&get, "/_twiml-fallback/nothing")).status,
        StatusCode::NOT_FOUND
    );
    for bad in [
        "status=sent",
        "limit=0",
        "limit=1001",
        "cursor=zzz",
        "colour=red",
        "channel=fax",
    ] {
        let url = format!("/_twiml-fallback/inbox?{bad}");
        let refused = answer(route(&get, &url));
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(refused.body.contains("error"), "{}", refused.body);
    }
}

#[test]
fn a_capture_is_stored_only_when_it_is_a_persons_and_bodies_too_large_are_413() {
    let post = Method::POST;
    let url = "/_twiml-fallback/inbox";
    let body = br#"{"channel":"messaging","url":"https://app.example.com/sms","method":"POST","params":[["MessageSid","SM5"],["Body","hi"]],"cause":"panic","error_code":11200}"#;
    let Some(Routed::Inbox(Operation::Store(entry))) = admin().route(
        &AdminRequest {
            body: Some(body),
            ..request(&post, url, Some("Bearer s3cret"))
        },
        7,
    ) else {
        panic!()
    };
    assert_eq!((entry.sid.as_str(), entry.received_at_ms), ("SM5", 7));
    let receipt = br#"{"url":"https://app.example.com/sms","params":[["MessageSid","SM5"],["MessageStatus","sent"]]}"#;
    let refused = answer(admin().route(
        &AdminRequest {
            body: Some(receipt),
            ..request(&post, url, Some("Bearer s3cret"))
        },
        7,
    ));
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let garbage = answer(admin().route(
        &AdminRequest {
            body: Some(b"{"),
            ..request(&post, url, Some("Bearer s3cret"))
        },
        7,
    ));
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    let not_text = answer(admin().route(
        &AdminRequest {
            body: Some(b"{\"url\":\"https://app.example.com/sms\",\"params\":[[\"Body\",\"\xff\"]]}"),
            ..request(&post, url, Some("Bearer s3cret"))
        },
        7,
    ));
    assert_eq!(not_text.status, StatusCode::BAD_REQUEST);
    assert!(not_text.body.contains("the body is not a capture"), "{}", not_text.body);
    let huge = answer(admin().route(
        &AdminRequest {
            body: None,
            ..request(&post, url, Some("Bearer s3cret"))
        },
        7,
    ));
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    let unauthenticated = answer(admin().route(
        &AdminRequest {
            body: None,
            ..request(&post, url, None)
        },
        7,
    ));
    assert_eq!(
        unauthenticated.status,
        StatusCode::UNAUTHORIZED,
        "authentication comes before the body"
    );
}

#[test]
fn without_an_inbox_authenticated_inbox_paths_are_503() {
    let admin = Admin::new(Some("s3cret".to_owned()), false);
    let get = Method::GET;
    let refused = answer(admin.route(&request(&get, "/_twiml-fallback/inbox", Some("Bearer s3cret")), 0));
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
}

/// A driver whose every statement fails, as a broken disk would.
struct Broken;

impl crate::inbox::Sql for Broken {
    type Error = &'static str;

    fn run(&mut self, _: &Statement) -> Result<Vec<Vec<SqlValue>>, Self::Error> {
        Err("disk I/O error")
    }
}

#[test]
fn a_failing_store_answers_500_and_a_failed_capture_is_logged_with_its_sid() {
    let (answer, lines) = Operation::Show("SM1".into()).perform(&mut Broken, InboxSettings::default());
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(answer.body.contains("disk I/O error"));
    assert!(lines.is_empty());
    let entry = match crate::inbox::capture(
        &crate::webhook::Params::from_form(b"MessageSid=SM9"),
        "POST",
        "https://x/sms",
        0,
        crate::inbox::Source::Layer,
    ) {
        crate::inbox::Capture::Keep(entry) => entry,
        crate::inbox::Capture::Skip(skip) => panic!("{skip:?}"),
    };
    let (answer, lines) = Operation::Store(entry).perform(&mut Broken, InboxSettings::default());
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].to_json().contains("\"inbox-write-failed\"") && lines[0].to_json().contains("SM9"));
}

const REPLAY: &str = "/_twiml-fallback/replay";
const AUTH: Option<&str> = Some("Bearer s3cret");
const OFF_REASON: &str = "no [recovery] allow_hosts: replay delivers only to allowlisted hosts, so nothing is replayed";

fn replaying() -> Admin {
    admin().with_replay(None)
}

fn post_replay(admin: &Admin, body: Option<&[u8]>) -> Option<Routed> {
    admin.route(
        &AdminRequest {
            body,
            ..request(&Method::POST, REPLAY, AUTH)
        },
        0,
    )
}

fn json_of(answer: &AdminResponse) -> serde_json::Value {
    serde_json::from_str(&answer.body).expect("JSON")
}

#[test]
fn get_replay_says_whether_replay_is_on_and_why_not() {
    let (get, head) = (Method::GET, Method::HEAD);
    let on = answer(replaying().route(&request(&get, REPLAY, AUTH), 0));
    assert_eq!(on.status, StatusCode::OK);
    assert_eq!(json_of(&on), serde_json::json!({ "replay": "on" }));
    assert!(on.headers.contains(&("cache-control", "no-store")));
    let off = answer(
        admin()
            .with_replay(Some(OFF_REASON))
            .route(&request(&get, REPLAY, AUTH), 0),
    );
    assert_eq!(off.status, StatusCode::OK);
    assert_eq!(
        json_of(&off),
        serde_json::json!({ "replay": "off", "reason": OFF_REASON })
    );
    // Until the shell says otherwise, replay is off.
    let unconfigured = answer(admin().route(&request(&get, REPLAY, AUTH), 0));
    assert_eq!(
        json_of(&unconfigured),
        serde_json::json!({ "replay": "off", "reason": "replay is not configured on this endpoint" })
    );
    let headed = answer(replaying().route(&request(&head, "/twilio/_twiml-fallback/replay/", AUTH), 0));
    assert_eq!(headed.status, StatusCode::OK, "HEAD too, and behind a proxy's prefix");
    // Without an inbox there is nothing to replay, whatever the shell says of replay.
    let no_inbox = Admin::new(Some("s3cret".to_owned()), false).with_replay(None);
    assert_eq!(
        json_of(&answer(no_inbox.route(&request(&get, REPLAY, AUTH), 0))),
        serde_json::json!({ "replay": "off", "reason": "this endpoint keeps no inbox, so there is nothing to replay" })
    );
}

#[test]
fn post_replay_runs_a_pass_with_what_the_body_asks() {
    let admin = replaying();
    for empty in [&b""[..], b"  \n", b"{}"] {
        assert_eq!(
            post_replay(&admin, Some(empty)),
            Some(Routed::Replay(PassRequest::default())),
            "{empty:?}"
        );
    }
    assert_eq!(
        post_replay(&admin, Some(br#"{"sids":["SM1"],"dry_run":true}"#)),
        Some(Routed::Replay(PassRequest {
            sids: vec!["SM1".to_owned()],
            dry_run: true,
            send_withheld: false,
        }))
    );
    assert_eq!(
        post_replay(&admin, Some(br#"{"sids":["SM1","SM2"],"send_withheld":true}"#)),
        Some(Routed::Replay(PassRequest {
            sids: vec!["SM1".to_owned(), "SM2".to_owned()],
            dry_run: false,
            send_withheld: true,
        }))
    );
}

#[test]
fn a_replay_body_that_is_not_a_replay_request_is_400_with_why() {
    let admin = replaying();
    for (body, why) in [
        (&b"{"[..], "the body is not a replay request"),
        (b"[\"SM1\"]", "the body is not a replay request"),
        (br#"{"sids":"SM1"}"#, "the body is not a replay request"),
        (br#"{"dry_run":true,"sid":"SM1"}"#, "unknown field `sid`"),
        (
            br#"{"send_withheld":true}"#,
            "send_withheld needs the entries named in sids",
        ),
        (b"\xff\xfe", "the body is not UTF-8"),
    ] {
        let refused = answer(post_replay(&admin, Some(body)));
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body:?}");
        let message = json_of(&refused)["error"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains(why), "{body:?}: {message}");
    }
    let huge = answer(post_replay(&admin, None));
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[test]
fn post_replay_while_replay_is_off_is_409_with_the_reason() {
    let refused = answer(post_replay(&admin().with_replay(Some(OFF_REASON)), Some(b"")));
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(
        json_of(&refused),
        serde_json::json!({ "error": format!("replay is off: {OFF_REASON}") })
    );
    let unconfigured = answer(post_replay(&admin(), Some(b"{}")));
    assert_eq!(unconfigured.status, StatusCode::CONFLICT);
    assert!(
        unconfigured.body.contains("replay is not configured"),
        "{}",
        unconfigured.body
    );
}

#[test]
fn post_replay_without_an_inbox_is_503_whether_or_not_replay_is_on() {
    for off in [None, Some(OFF_REASON)] {
        let admin = Admin::new(Some("s3cret".to_owned()), false).with_replay(off);
        let refused = answer(post_replay(&admin, Some(b"")));
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{off:?}");
        assert!(refused.body.contains("keeps no inbox"), "{}", refused.body);
    }
}

#[test]
fn the_replay_paths_need_the_admin_token_and_allow_only_get_and_post() {
    let admin = replaying();
    for method in [Method::GET, Method::POST] {
        for authorization in [None, Some("Bearer wrong")] {
            let refused = answer(admin.route(&request(&method, REPLAY, authorization), 0));
            assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{method} {authorization:?}");
            assert!(refused.headers.contains(&("www-authenticate", WWW_AUTHENTICATE)));
        }
        let hidden = answer(
            Admin::new(None, true)
                .with_replay(None)
                .route(&request(&method, REPLAY, AUTH), 0),
        );
        assert_eq!(
            hidden.status,
            StatusCode::NOT_FOUND,
            "without an admin token: as if absent"
        );
    }
    let unauthenticated_huge = answer(admin.route(
        &AdminRequest {
            body: None,
            ..request(&Method::POST, REPLAY, None)
        },
        0,
    ));
    assert_eq!(unauthenticated_huge.status, StatusCode::UNAUTHORIZED);
    for method in [Method::PUT, Method::DELETE, Method::PATCH] {
        let refused = answer(admin.route(&request(&method, REPLAY, AUTH), 0));
        assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert!(
            refused.body.contains(&format!("{method} is not allowed here")),
            "{}",
            refused.body
        );
    }
    assert_eq!(
        answer(admin.route(&request(&Method::POST, "/_twiml-fallback/replay/now", AUTH), 0)).status,
        StatusCode::NOT_FOUND
    );
}
