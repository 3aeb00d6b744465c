//! The admin API's routing and authentication on arbitrary requests, and its operations on a
//! store that fails: no panic; a path outside `/_twiml-fallback` is never claimed; without the
//! token every admin request is 401 with the Basic challenge, before its body is read; every
//! answer is JSON.
//!
//! Input: `METHOD URL \n AUTHORIZATION \n BODY`; an AUTHORIZATION of `T` is replaced by the right
//! token (`Bearer …`), so the operations behind it are reached too.
#![no_main]

use http::StatusCode;
use libfuzzer_sys::fuzz_target;
use twiml_fallback::admin::{Admin, AdminRequest, Routed, WWW_AUTHENTICATE};
use twiml_fallback::config::InboxSettings;
use twiml_fallback::edge::method_of;
use twiml_fallback::inbox::{Sql, SqlValue, Statement};

const TOKEN: &str = "fuzz-admin-token";

/// A store whose every statement fails, as a broken disk's would.
struct Broken;

impl Sql for Broken {
    type Error = &'static str;

    fn run(&mut self, _: &Statement) -> Result<Vec<Vec<SqlValue>>, Self::Error> {
        Err("disk I/O error")
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&byte| byte == b'\n');
    let request_line = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let authorization = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();
    let (method, url) = request_line.split_once(' ').unwrap_or(("GET", &request_line));
    let method = method_of(method);
    let authorization = if authorization == "T" {
        format!("Bearer {TOKEN}")
    } else {
        authorization
    };
    // Replay on, so its paths are reached too (a pass itself needs a store and the network:
    // the replay_run target drives it).
    let admin = Admin::new(Some(TOKEN.to_owned()), true).with_replay(None);
    let request = AdminRequest {
        method: &method,
        url,
        authorization: Some(&authorization)
            .filter(|header| !header.is_empty())
            .map(String::as_str),
        body: Some(body),
    };
    let claimed = admin.claims(url);
    let routed = admin.route(&request, 1_700_000_000_000);
    assert_eq!(claimed, routed.is_some(), "claims and route agree");
    if !twiml_fallback::url::path(url).contains("/_twiml-fallback") {
        assert!(routed.is_none(), "a path outside the admin API was claimed");
    }
    // A Basic header may carry the token base64-encoded: only what is neither is surely without it.
    let maybe_token =
        authorization.contains(TOKEN) || authorization.trim_start().to_ascii_lowercase().starts_with("basic");
    let answer = match routed {
        None => return,
        Some(Routed::Answer(answer)) => answer,
        Some(Routed::Inbox(operation)) => {
            assert!(maybe_token, "an operation without the token");
            operation.perform(&mut Broken, InboxSettings::default()).0
        }
        Some(Routed::Replay(_)) => {
            assert!(maybe_token, "a replay pass without the token");
            return;
        }
        Some(Routed::AlertTest(_)) => {
            assert!(maybe_token, "an alert test without the token");
            return;
        }
    };
    if answer.status == StatusCode::UNAUTHORIZED {
        assert!(answer.headers.contains(&("www-authenticate", WWW_AUTHENTICATE)));
    }
    if !maybe_token {
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "no token, yet {}",
            answer.status
        );
    }
    serde_json::from_str::<serde_json::Value>(&answer.body).expect("every admin answer is JSON");
});
