//! The outage inbox's cases, run against every backend that keeps one: what is stored and how it
//! reads back through the admin API, idempotency, that forged and unsigned requests and status
//! callbacks are never stored, the admin API's 401/404, dismissing, the layer's captures, and
//! that a restart on the same state keeps every entry.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use serde_json::Value;

use crate::table::{CaseRequest, Signing, send};
use crate::{Launcher, Running, TOKEN, client};

/// The admin token the inbox cases use.
pub const ADMIN_TOKEN: &str = "e2e-admin-token";

/// A backend that can keep an inbox.
pub trait InboxLauncher: Launcher {
    /// Starts the endpoint with `config`, `tokens`, the admin token `admin_token`, keeping its
    /// inbox under `state` (a folder that outlives the endpoint: a second launch on it must see
    /// what the first stored).
    fn launch_with_inbox<'a>(
        &'a self,
        config: &'a str,
        tokens: &'a [&'a str],
        admin_token: &'a str,
        state: &'a Path,
    ) -> Pin<Box<dyn Future<Output = Running> + Send + 'a>>;
}

/// What an admin request answered.
#[derive(Debug)]
pub struct AdminAnswer {
    /// The status.
    pub status: u16,
    /// `WWW-Authenticate`, if any.
    pub challenge: Option<String>,
    /// The body as JSON (`Null` when it is not JSON).
    pub json: Value,
}

/// Sends an admin request with `authorization` (a full header value).
pub async fn admin(
    base_url: &str,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&str>,
) -> AdminAnswer {
    let url = format!("{base_url}{path}");
    let client = client();
    let mut request = match method {
        "POST" => client.post(&url),
        "DELETE" => client.delete(&url),
        _ => client.get(&url),
    };
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    if let Some(body) = body {
        request = request.header("Content-Type", "application/json").body(body.to_owned());
    }
    match request.send().await {
        Ok(response) => AdminAnswer {
            status: response.status().as_u16(),
            challenge: response
                .headers()
                .get("www-authenticate")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            json: response
                .bytes()
                .await
                .ok()
                .and_then(|body| serde_json::from_slice(&body).ok())
                .unwrap_or(Value::Null),
        },
        Err(error) => AdminAnswer {
            status: 0,
            challenge: None,
            json: Value::String(format!("request failed: {error}")),
        },
    }
}

fn bearer() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

/// An inbound MMS as Twilio sends it to a fallback URL, with a repeated key.
fn inbound_mms(sid: &str) -> Vec<(String, String)> {
    [
        ("ToCountry", "US"),
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", "+14155550100"),
        ("To", "+14155550199"),
        ("Body", "Is order 42 ready?"),
        ("NumMedia", "2"),
        ("MediaContentType0", "image/jpeg"),
        (
            "MediaUrl0",
            "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM0/Media/ME0",
        ),
        ("MediaContentType1", "image/png"),
        (
            "MediaUrl1",
            "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM0/Media/ME1",
        ),
        ("SmsStatus", "received"),
        ("AddOns", "a"),
        ("AddOns", "b"),
        ("ErrorCode", "11200"),
        ("ErrorUrl", "https://app.example.com/sms"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect()
}

fn post(path: &'static str, params: Vec<(String, String)>, signing: Signing) -> CaseRequest {
    CaseRequest {
        method: "POST",
        path,
        params,
        signing,
        raw_body: None,
    }
}

/// Runs the inbox cases against `launcher`; panics with every failure listed.
pub async fn run_inbox_table(launcher: &dyn InboxLauncher) {
    let state = crate::worker::TempDir::new("inbox-table");
    let mut failures: Vec<String> = Vec::new();
    let mut fail = |what: String| failures.push(what);
    let running = launcher.launch_with_inbox("", &[TOKEN], ADMIN_TOKEN, &state.0).await;
    let base = running.base_url.clone();
    let auth = bearer();
    let show = |sid: &str| format!("/_twiml-fallback/inbox/{sid}");

    // An inbound MMS is stored with every field and every parameter in order.
    let sid = "MM10000000000000000000000000000001";
    let answer = send(&base, &post("/sms", inbound_mms(sid), Signing::Token(TOKEN))).await;
    if answer.status != 200 {
        fail(format!("inbound MMS: {} {}", answer.status, answer.body));
    }
    let entry = admin(&base, "GET", &show(sid), Some(&auth), None).await;
    if entry.status != 200 {
        fail(format!("show {sid}: {} {}", entry.status, entry.json));
    } else {
        let json = &entry.json;
        let expect = |field: &str, value: Value, fail: &mut dyn FnMut(String)| {
            if json[field] != value {
                fail(format!("stored {field}: {} (expected {value})", json[field]));
            }
        };
        expect("sid", sid.into(), &mut fail);
        expect("channel", "messaging".into(), &mut fail);
        expect("account_sid", "AC00000000000000000000000000000000".into(), &mut fail);
        expect("from", "+14155550100".into(), &mut fail);
        expect("to", "+14155550199".into(), &mut fail);
        expect("body", "Is order 42 ready?".into(), &mut fail);
        expect(
            "media",
            serde_json::json!([
                "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM0/Media/ME0",
                "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM0/Media/ME1"
            ]),
            &mut fail,
        );
        expect("error_code", 11200.into(), &mut fail);
        expect("error_url", "https://app.example.com/sms".into(), &mut fail);
        expect("url", format!("{base}/sms").into(), &mut fail);
        expect("method", "POST".into(), &mut fail);
        expect("status", "pending".into(), &mut fail);
        expect("attempts", 0.into(), &mut fail);
        expect("last_error", Value::Null, &mut fail);
        expect("source", "edge".into(), &mut fail);
        let params: Vec<(String, String)> = serde_json::from_value(json["params"].clone()).unwrap_or_default();
        if params != inbound_mms(sid) {
            fail(format!("stored params differ from the request's, in order: {params:?}"));
        }
        let received = json["received_at"].as_str().unwrap_or("");
        if !(received.len() == 24 && received.ends_with('Z') && received.as_bytes()[10] == b'T') {
            fail(format!(
                "received_at {received:?} is not RFC 3339 UTC with milliseconds"
            ));
        }
    }

    // The same SID again (Twilio retrying, or the layer and the edge both seeing it): one entry.
    let _ = send(&base, &post("/sms", inbound_mms(sid), Signing::Token(TOKEN))).await;
    let listed = admin(&base, "GET", "/_twiml-fallback/inbox", Some(&auth), None).await;
    let sids: Vec<&str> = listed.json["entries"]
        .as_array()
        .map(|entries| entries.iter().filter_map(|entry| entry["sid"].as_str()).collect())
        .unwrap_or_default();
    if sids.iter().filter(|listed| **listed == sid).count() != 1 {
        fail(format!("idempotency: {sid} listed {sids:?}"));
    }

    // Forged, unsigned and tampered requests are refused and never stored; nor are status callbacks.
    for (name, signing, sid) in [
        ("forged", Signing::Forged, "SM20000000000000000000000000000002"),
        ("unsigned", Signing::None, "SM20000000000000000000000000000003"),
        ("tampered", Signing::Tampered, "SM20000000000000000000000000000004"),
    ] {
        let answer = send(&base, &post("/sms", inbound_mms(sid), signing)).await;
        if answer.status != 403 {
            fail(format!("{name}: answered {}", answer.status));
        }
        let found = admin(&base, "GET", &show(sid), Some(&auth), None).await;
        if found.status != 404 {
            fail(format!("{name}: stored ({} {})", found.status, found.json));
        }
    }
    let receipt_sid = "SM30000000000000000000000000000005";
    let receipt: Vec<(String, String)> = [
        ("MessageSid", receipt_sid),
        ("MessageStatus", "delivered"),
        ("To", "+14155550100"),
        ("From", "+14155550199"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    let answer = send(&base, &post("/sms", receipt, Signing::Token(TOKEN))).await;
    if answer.status != 200 {
        fail(format!("status callback: answered {}", answer.status));
    }
    if admin(&base, "GET", &show(receipt_sid), Some(&auth), None).await.status != 404 {
        fail("status callback: stored".to_owned());
    }

    // An inbound call is kept as missed, without a body.
    let call_sid = "CA40000000000000000000000000000006";
    let call = crate::voice_params(&[("ErrorCode", "11205"), ("ErrorUrl", "https://app.example.com/voice")])
        .into_iter()
        .map(|(key, value)| {
            if key == "CallSid" {
                (key, call_sid.to_owned())
            } else {
                (key, value)
            }
        })
        .collect();
    let _ = send(&base, &post("/voice", call, Signing::Token(TOKEN))).await;
    let stored_call = admin(&base, "GET", &show(call_sid), Some(&auth), None).await;
    if stored_call.json["status"] != "missed"
        || stored_call.json["channel"] != "voice"
        || !stored_call.json["body"].is_null()
    {
        fail(format!("inbound call: {} {}", stored_call.status, stored_call.json));
    }

    // The admin API: 401 with a challenge without or with a wrong token; Basic with the token as
    // password; 404 for an unknown SID; 400 for a bad filter; filters and pages.
    for (name, authorization) in [("no token", None), ("wrong token", Some("Bearer not-the-token"))] {
        let refused = admin(&base, "GET", "/_twiml-fallback/inbox", authorization, None).await;
        if refused.status != 401 || refused.challenge.as_deref() != Some(r#"Basic realm="twiml-fallback""#) {
            fail(format!("admin {name}: {} {:?}", refused.status, refused.challenge));
        }
    }
    let basic = client()
        .get(format!("{base}/_twiml-fallback/inbox"))
        .basic_auth("anyone", Some(ADMIN_TOKEN))
        .send()
        .await
        .map(|response| response.status().as_u16());
    if basic.ok() != Some(200) {
        fail("admin: Basic with the token as password refused".to_owned());
    }
    if admin(
        &base,
        "GET",
        &show("SM99999999999999999999999999999999"),
        Some(&auth),
        None,
    )
    .await
    .status
        != 404
    {
        fail("admin: an unknown SID is not 404".to_owned());
    }
    if admin(&base, "GET", "/_twiml-fallback/inbox?status=bogus", Some(&auth), None)
        .await
        .status
        != 400
    {
        fail("admin: a bad status filter is not 400".to_owned());
    }
    let voice_only = admin(&base, "GET", "/_twiml-fallback/inbox?channel=voice", Some(&auth), None).await;
    let voice_sids: Vec<&str> = voice_only.json["entries"]
        .as_array()
        .map(|entries| entries.iter().filter_map(|entry| entry["sid"].as_str()).collect())
        .unwrap_or_default();
    if voice_sids != [call_sid] {
        fail(format!("admin: channel=voice listed {voice_sids:?}"));
    }
    let first_page = admin(&base, "GET", "/_twiml-fallback/inbox?limit=1", Some(&auth), None).await;
    let next = first_page.json["next"].as_str().unwrap_or("").to_owned();
    let second_page = admin(
        &base,
        "GET",
        &format!("/_twiml-fallback/inbox?limit=1&cursor={next}"),
        Some(&auth),
        None,
    )
    .await;
    let page_sid = |page: &AdminAnswer| page.json["entries"][0]["sid"].as_str().map(str::to_owned);
    if next.is_empty()
        || page_sid(&first_page) != Some(call_sid.to_owned())
        || page_sid(&second_page) != Some(sid.to_owned())
    {
        fail(format!(
            "admin: pages newest first: {} then {}",
            first_page.json, second_page.json
        ));
    }

    // The layer's capture joins the inbox as the layer's.
    let capture = r#"{"channel":"messaging","url":"/sms","method":"POST","params":[["MessageSid","SM50000000000000000000000000000007"],["From","+14155550111"],["To","+14155550199"],["Body","sent while the app panicked"]],"cause":"panic","error_code":11200}"#;
    let captured = admin(&base, "POST", "/_twiml-fallback/inbox", Some(&auth), Some(capture)).await;
    if captured.status != 200 || captured.json["source"] != "layer" || captured.json["cause"] != "panic" {
        fail(format!("capture: {} {}", captured.status, captured.json));
    }
    if admin(&base, "POST", "/_twiml-fallback/inbox", None, Some(capture))
        .await
        .status
        != 401
    {
        fail("capture without the admin token was not refused".to_owned());
    }

    // Dismissing deletes the body and media and takes it out of the pending list.
    let dismissed = admin(&base, "POST", &format!("{}/dismiss", show(sid)), Some(&auth), None).await;
    if dismissed.status != 200
        || dismissed.json["status"] != "dismissed"
        || !dismissed.json["body"].is_null()
        || dismissed.json["media"] != serde_json::json!([])
        || dismissed.json.to_string().contains("order 42")
    {
        fail(format!("dismiss: {} {}", dismissed.status, dismissed.json));
    }
    let pending = admin(&base, "GET", "/_twiml-fallback/inbox?status=pending", Some(&auth), None).await;
    if pending.json.to_string().contains(sid) {
        fail("dismiss: still listed as pending".to_owned());
    }
    if admin(
        &base,
        "POST",
        &format!("{}/dismiss", show("SM99999999999999999999999999999999")),
        Some(&auth),
        None,
    )
    .await
    .status
        != 404
    {
        fail("dismiss: an unknown SID is not 404".to_owned());
    }
    let before: Value = admin(&base, "GET", "/_twiml-fallback/inbox", Some(&auth), None)
        .await
        .json;
    let logs = crate::table::log_text(&running);
    drop(running);

    // A restart on the same state keeps every entry, as it was.
    let restarted = launcher.launch_with_inbox("", &[TOKEN], ADMIN_TOKEN, &state.0).await;
    let after: Value = admin(&restarted.base_url, "GET", "/_twiml-fallback/inbox", Some(&auth), None)
        .await
        .json;
    if after != before || before["entries"].as_array().is_none_or(|entries| entries.len() != 3) {
        fail(format!("restart: before {before}\nafter {after}"));
    }
    drop(restarted);

    // Without an admin token, the admin API does not exist.
    let plain = launcher.launch("", &[TOKEN]).await;
    let hidden = admin(&plain.base_url, "GET", "/_twiml-fallback/inbox", Some(&auth), None).await;
    if hidden.status != 404 {
        fail(format!(
            "no admin token: /_twiml-fallback/inbox answered {}",
            hidden.status
        ));
    }
    drop(plain);

    assert!(
        failures.is_empty(),
        "{}: {} inbox failures:\n  {}{logs}",
        launcher.name(),
        failures.len(),
        failures.join("\n  ")
    );
}
