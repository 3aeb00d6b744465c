//! `twiml-fallback numbers audit|set`, the real binary against the chaos demo's stand-in for a
//! Twilio account (`examples/chaos/account.rs`: numbers, Applications, Messaging Services with
//! their numbers, SIP trunks; both paging styles; Twilio's 21406): every routing precedence, each
//! shared resource updated once, dry runs, partial failures, credentials kept on the API's origin,
//! SIDs checked before they go into a path, and `--probe`'s outcomes.

#[path = "../../twiml-fallback/examples/chaos/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod chaos;
#[path = "support/process.rs"]
mod process;
#[path = "support/recorder.rs"]
mod recorder;

use std::collections::HashMap;
use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use http::StatusCode;
use serde_json::{Value, json};
use twiml_fallback::signature::compute_signature;
use twiml_fallback::webhook::Params;

use chaos::account::TwilioAccount;
use process::{code, command, stderr, stdout};
use recorder::{serve_router, start_recorder};

const ACCOUNT: &str = "AC00000000000000000000000000000001";
const TOKEN: &str = "secret-token";
const CREDENTIALS: [(&str, &str); 2] = [("TWILIO_ACCOUNT_SID", ACCOUNT), ("TWILIO_AUTH_TOKEN", TOKEN)];
/// `Basic` of ACCOUNT:secret-token, and of the API key SK1:key-secret.
const AUTHORIZATIONS: [&str; 2] = [
    "Basic QUMwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMTpzZWNyZXQtdG9rZW4=",
    "Basic U0sxOmtleS1zZWNyZXQ=",
];

fn numbers(args: &[&str], base: &str, credentials: &[(&str, &str)]) -> Output {
    let mut command = command(&[args, &["--api-base", base]].concat());
    for (name, value) in credentials {
        command.env(name, value);
    }
    command.output().expect("run numbers")
}

fn json_of(output: &Output) -> Value {
    serde_json::from_str(&stdout(output))
        .unwrap_or_else(|error| panic!("{error}: {}{}", stdout(output), stderr(output)))
}

/// An account with a number of every kind. Primaries are on `app`; `fallback` is a second host.
fn every_kind(app: &str, fallback: &str) -> Value {
    json!({
        "numbers": [
            {"sid": "PN01", "phone_number": "+14155550101", "friendly_name": "Own URLs",
             "voice_url": format!("{app}/voice/ok"), "voice_fallback_url": format!("{fallback}/voice/ok"),
             "sms_url": format!("{app}/sms/ok"), "sms_fallback_url": ""},
            {"sid": "PN02", "phone_number": "+14155550102", "friendly_name": "IVR one",
             "voice_url": format!("{app}/ignored"), "voice_fallback_url": format!("{fallback}/ignored"), "voice_application_sid": "AP01"},
            {"sid": "PN03", "phone_number": "+14155550103", "friendly_name": "IVR two", "voice_application_sid": "AP01"},
            {"sid": "PN04", "phone_number": "+14155550104", "friendly_name": "Trunked",
             "voice_application_sid": "AP01", "trunk_sid": "TK01"},
            {"sid": "PN05", "phone_number": "+14155550105", "friendly_name": "In a service",
             "sms_url": format!("{app}/ignored"), "sms_fallback_url": format!("{fallback}/ignored"), "sms_application_sid": "MG01"},
            {"sid": "PN06", "phone_number": "+14155550106", "friendly_name": "Listed, no hint"},
            {"sid": "PN07", "phone_number": "+14155550107", "friendly_name": "Deferring", "sms_application_sid": "AP02"},
            {"sid": "PN08", "phone_number": "+14155550108", "friendly_name": "Silent service", "sms_application_sid": "MG03"},
            {"sid": "PN09", "phone_number": "+14155550109", "friendly_name": "Stale hint",
             "sms_url": format!("{app}/sms/ok"), "sms_application_sid": "MG01"},
            {"sid": "PN10", "phone_number": "+14155550110", "friendly_name": "Gone", "voice_application_sid": "AP99"}
        ],
        "applications": [
            {"sid": "AP01", "friendly_name": "Main IVR", "voice_url": format!("{app}/voice/ok"), "voice_fallback_url": null},
            {"sid": "AP02", "friendly_name": "SMS bot", "sms_url": format!("{app}/sms/ok"), "sms_fallback_url": format!("{fallback}/sms/ok")}
        ],
        "services": [
            {"sid": "MG01", "friendly_name": "Care", "inbound_request_url": format!("{app}/sms/ok"), "fallback_url": null,
             "use_inbound_webhook_on_number": false,
             "phone_numbers": [{"sid": "PN05", "phone_number": "+14155550105"}, {"sid": "PN06", "phone_number": "+14155550106"}]},
            {"sid": "MG02", "friendly_name": "Defers", "inbound_request_url": format!("{app}/sms/ignored"), "use_inbound_webhook_on_number": true,
             "phone_numbers": [{"sid": "PN07", "phone_number": "+14155550107"}]},
            {"sid": "MG03", "friendly_name": "Silent", "inbound_request_url": null, "use_inbound_webhook_on_number": false,
             "phone_numbers": [{"sid": "PN08", "phone_number": "+14155550108"}]}
        ],
        "trunks": [{"sid": "TK01", "friendly_name": "PBX", "disaster_recovery_url": null}]
    })
}

/// The stand-in account, served by the chaos demo (whose `/voice/…` and `/sms/…` routes are the
/// primaries and fallbacks), two items per page; its base URL under 127.0.0.1 and under localhost.
struct Fake {
    /// Runs the stand-in; dropped with it.
    _runtime: tokio::runtime::Runtime,
    base: String,
    localhost: String,
    account: TwilioAccount,
}

impl Fake {
    fn start(fixture: impl FnOnce(&str, &str) -> Value) -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (base, localhost) = (format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}"));
        let account = TwilioAccount::new(ACCOUNT, &fixture(&base, &localhost))
            .page_size(2)
            .require_authorization(&AUTHORIZATIONS);
        let app = chaos::BareChaosApp::new().with_account(account.clone());
        runtime.spawn(chaos::serve(listener, app, std::future::pending()));
        Self {
            _runtime: runtime,
            base,
            localhost,
            account,
        }
    }

    fn numbers(&self, args: &[&str]) -> Output {
        numbers(args, &self.base, &CREDENTIALS)
    }

    fn updates(&self) -> HashMap<String, Vec<(String, String)>> {
        let mut by_sid = HashMap::new();
        for (sid, fields) in self.account.updates() {
            assert!(by_sid.insert(sid.clone(), fields).is_none(), "{sid} updated twice");
        }
        by_sid
    }
}

fn route<'a>(document: &'a Value, phone: &str, channel: &str) -> &'a Value {
    let number = document["numbers"]
        .as_array()
        .expect("numbers")
        .iter()
        .find(|number| number["phone_number"] == phone)
        .unwrap_or_else(|| panic!("{phone} listed"));
    &number[channel]
}

fn summary(route: &Value) -> (String, String, String) {
    (
        route["routed_by"]["kind"].as_str().unwrap_or("?").to_owned(),
        route["routed_by"]["sid"].as_str().unwrap_or("?").to_owned(),
        route["status"].as_str().unwrap_or("?").to_owned(),
    )
}

fn warning_codes(route: &Value) -> Vec<String> {
    route["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|warning| warning["code"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[test]
fn audit_resolves_each_number_and_channel_to_what_twilio_routes() {
    let fake = Fake::start(every_kind);
    let output = fake.numbers(&["numbers", "audit", "--format", "json"]);
    assert_eq!(code(&output), 1, "unprotected routes exist: {}", stderr(&output));
    let document = json_of(&output);
    assert_eq!(document["count"], 10, "five pages of two: every page read");
    let expected = [
        ("+14155550101", "voice", ("number", "PN01", "protected")),
        ("+14155550101", "sms", ("number", "PN01", "unprotected")),
        // An Application wins over the number's own URLs, which are ignored.
        ("+14155550102", "voice", ("Application", "AP01", "unprotected")),
        ("+14155550103", "voice", ("Application", "AP01", "unprotected")),
        // A trunk wins over the Application.
        ("+14155550104", "voice", ("SIP trunk", "TK01", "unprotected")),
        // A service that does not defer wins over the number's URLs; its list is the truth.
        ("+14155550105", "sms", ("Messaging Service", "MG01", "unprotected")),
        ("+14155550106", "sms", ("Messaging Service", "MG01", "unprotected")),
        // A deferring service hands the message to the number's messaging Application.
        ("+14155550107", "sms", ("Application", "AP02", "protected")),
        ("+14155550108", "sms", ("Messaging Service", "MG03", "not-delivered")),
        ("+14155550109", "sms", ("number", "PN09", "unprotected")),
        ("+14155550110", "voice", ("Application", "AP99", "unknown-resource")),
        ("+14155550106", "voice", ("number", "PN06", "no-webhook")),
    ];
    for (phone, channel, (kind, sid, status)) in expected {
        assert_eq!(
            summary(route(&document, phone, channel)),
            (kind.to_owned(), sid.to_owned(), status.to_owned()),
            "{phone} {channel}"
        );
    }
    assert_eq!(
        route(&document, "+14155550102", "voice")["url"],
        format!("{}/voice/ok", fake.base)
    );
    assert_eq!(
        route(&document, "+14155550107", "sms")["deferring_service"]["sid"],
        "MG02"
    );
    assert_eq!(
        warning_codes(route(&document, "+14155550108", "sms")),
        ["receives-nothing"]
    );
    assert_eq!(
        warning_codes(route(&document, "+14155550109", "sms")),
        ["not-listed-in-service"]
    );
    assert_eq!(
        warning_codes(route(&document, "+14155550110", "voice")),
        ["unknown-resource"]
    );
    assert_eq!(
        document["unprotected"], 8,
        "numbers with an unprotected or unknown channel"
    );

    // Every API was asked, each with the credentials, the v1 listings paged by meta.next_page_url.
    let seen = fake.account.seen();
    let targets: Vec<&str> = seen.iter().map(|seen| seen.target.as_str()).collect();
    for listing in [
        "IncomingPhoneNumbers.json",
        "Applications.json",
        "/v1/Services?",
        "/v1/Services?PageSize=2&Page=1",
        "/v1/Services/MG01/PhoneNumbers",
        "/v1/Trunks",
    ] {
        assert!(
            targets.iter().any(|target| target.contains(listing)),
            "{listing}: {targets:?}"
        );
    }
    assert!(
        seen.iter()
            .all(|seen| seen.authorization.as_deref() == Some(AUTHORIZATIONS[0]))
    );

    let text = fake.numbers(&["numbers", "audit"]);
    let table = stdout(&text);
    assert_eq!(code(&text), 1);
    let has_line = |parts: &[&str]| table.lines().any(|line| parts.iter().all(|part| line.contains(part)));
    for parts in [
        &[
            "+14155550102",
            "IVR one",
            "voice",
            "Application \"Main IVR\"",
            "UNPROTECTED",
        ][..],
        &[
            "sms",
            "Application \"SMS bot\" (Messaging Service \"Defers\" defers)",
            "protected",
        ],
        &[
            "+14155550104",
            "voice",
            "SIP trunk \"PBX\"",
            "SIP origination",
            "UNPROTECTED",
        ],
        &["+14155550110", "Application AP99", "UNKNOWN"],
        &["sms", "Messaging Service \"Silent\"", "not delivered"],
        &["+14155550109 sms: sms_application_sid names Messaging Service MG01, which does not list this number"],
        &[
            "10 number(s): 8 need attention",
            "2 Application(s), 2 Messaging Service(s), 1 SIP trunk(s)",
        ],
        &["fix: twiml-fallback numbers set --all-unprotected"],
    ] {
        assert!(has_line(parts), "a line with {parts:?} in:\n{table}");
    }
}

#[test]
fn audit_warns_of_a_fallback_on_the_primarys_host_plain_http_and_an_unexpected_method() {
    let fake = Fake::start(|app, _| {
        json!({"numbers": [
            {"sid": "PN01", "phone_number": "+14155550101", "voice_url": format!("{app}/voice/ok"),
             "voice_fallback_url": format!("{app}/voice/fallback"), "voice_fallback_method": "GET",
             "sms_url": "http://app.example.com/sms", "sms_fallback_url": "https://fallback.example.com/sms"}
        ]})
    });
    let document = json_of(&fake.numbers(&["numbers", "audit", "--format", "json"]));
    assert_eq!(
        warning_codes(route(&document, "+14155550101", "voice")),
        ["same-host", "fallback-method"]
    );
    assert_eq!(warning_codes(route(&document, "+14155550101", "sms")), ["plain-http"]);
    let quiet = json_of(&fake.numbers(&[
        "numbers",
        "audit",
        "--format",
        "json",
        "--expect-fallback-method",
        "any",
    ]));
    assert_eq!(warning_codes(route(&quiet, "+14155550101", "voice")), ["same-host"]);
    let get = fake.numbers(&["numbers", "audit", "--expect-fallback-method", "GET"]);
    assert_eq!(code(&get), 0, "everything protected: {}", stdout(&get));
    assert!(
        stdout(&get).contains("the fallback is on the primary's host 127.0.0.1"),
        "{}",
        stdout(&get)
    );
}

#[test]
fn set_updates_what_routes_each_number_each_shared_resource_once() {
    let fake = Fake::start(every_kind);
    let voice = "https://fb.example.com/voice";
    let sms = "https://fb.example.com/sms";
    let all = [
        "numbers",
        "set",
        "--all-unprotected",
        "--voice-fallback-url",
        voice,
        "--sms-fallback-url",
        sms,
    ];

    // The number naming an Application the account does not have cannot be helped: said, exit 1.
    let dry = fake.numbers(&[&all[..], &["--dry-run"]].concat());
    assert_eq!(code(&dry), 1, "{}", stderr(&dry));
    assert!(
        stderr(&dry).contains("failed    +14155550110 (voice) — Application AP99 is not in the account's listing"),
        "{}",
        stderr(&dry)
    );
    let text = stdout(&dry);
    for line in [
        format!(
            "would-set Application AP01 (\"Main IVR\"): VoiceFallbackUrl={voice} — covers +14155550102, +14155550103"
        ),
        format!("would-set SIP trunk TK01 (\"PBX\"): DisasterRecoveryUrl={voice} — covers +14155550104"),
        format!("would-set Messaging Service MG01 (\"Care\"): FallbackUrl={sms} — covers +14155550105, +14155550106"),
        format!("would-set number PN01: SmsFallbackUrl={sms} — covers +14155550101"),
    ] {
        assert!(text.contains(&line), "{line:?} in:\n{text}");
    }
    assert!(fake.account.updates().is_empty(), "a dry run changes nothing");

    let applied = fake.numbers(&[&all[..], &["--sms-fallback-method", "POST", "--format", "json"]].concat());
    assert_eq!(code(&applied), 1, "{}{}", stdout(&applied), stderr(&applied));
    let updates = fake.updates();
    let field = |value: &str| value.to_owned();
    assert_eq!(updates["AP01"], [("VoiceFallbackUrl".to_owned(), field(voice))]);
    assert_eq!(updates["TK01"], [("DisasterRecoveryUrl".to_owned(), field(voice))]);
    assert_eq!(
        updates["MG01"],
        [
            ("FallbackUrl".to_owned(), field(sms)),
            ("FallbackMethod".to_owned(), field("POST"))
        ]
    );
    assert_eq!(
        updates["PN09"],
        [
            ("SmsFallbackUrl".to_owned(), field(sms)),
            ("SmsFallbackMethod".to_owned(), field("POST"))
        ]
    );
    let mut sids: Vec<&String> = updates.keys().collect();
    sids.sort();
    assert_eq!(
        sids,
        ["AP01", "MG01", "PN01", "PN09", "TK01"],
        "never PN02/PN03 (their Application is), nor protected ones"
    );
    let results = json_of(&applied);
    let mg = results["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["resource"]["sid"] == "MG01")
        .expect("MG01");
    assert_eq!(mg["outcome"], "updated");
    assert_eq!(mg["numbers"], json!(["+14155550105", "+14155550106"]));

    // What is left: the number whose Application the account does not have.
    let after = fake.numbers(&["numbers", "audit", "--format", "json"]);
    let document = json_of(&after);
    assert_eq!(document["unprotected"], 1, "{document}");
    assert_eq!(summary(route(&document, "+14155550104", "voice")).2, "protected");
    assert_eq!(route(&document, "+14155550104", "voice")["fallback_url"], voice);
    let again = fake.numbers(&all);
    assert_eq!(code(&again), 1);
    assert!(!stdout(&again).contains("updated"), "{}", stdout(&again));
    assert!(
        stderr(&again).contains("Application AP99 is not in the account's listing"),
        "{}",
        stderr(&again)
    );
    assert!(stdout(&after_text(&fake)).contains("check: 1 channel(s) name an Application"));
}

fn after_text(fake: &Fake) -> Output {
    fake.numbers(&["numbers", "audit"])
}

#[test]
fn set_for_named_numbers_says_what_else_it_covers_and_one_failure_does_not_stop_the_others() {
    let fake = Fake::start(every_kind);
    let voice = "https://fb.example.com/voice";
    let sms = "https://fb.example.com/sms";
    fake.account.fail_update(
        "TK01",
        StatusCode::INTERNAL_SERVER_ERROR,
        20500,
        "Internal Server Error",
    );
    let output = fake.numbers(&[
        "numbers",
        "set",
        "--number",
        "+14155550102",
        "--number",
        "+14155550104",
        "--number",
        "+14155550106",
        "--number",
        "+14155550108",
        "--number",
        "+14155550110",
        "--number",
        "+19999999999",
        "--voice-fallback-url",
        voice,
        "--sms-fallback-url",
        sms,
    ]);
    assert_eq!(code(&output), 1, "{}{}", stdout(&output), stderr(&output));
    let (out, err) = (stdout(&output), stderr(&output));
    for line in [
        format!(
            "updated   Application AP01 (\"Main IVR\"): VoiceFallbackUrl={voice} — covers +14155550102, +14155550103 (also +14155550103, not asked for: the Application is shared)"
        ),
        format!(
            "updated   Messaging Service MG01 (\"Care\"): FallbackUrl={sms} — covers +14155550105, +14155550106 (also +14155550105, not asked for: the Messaging Service is shared)"
        ),
        "skipped   +14155550102 (sms) — number PN02 has no sms URL: nothing to protect".to_owned(),
    ] {
        assert!(out.contains(&line), "{line:?} in:\n{out}");
    }
    for line in [
        format!(
            "failed    SIP trunk TK01 (\"PBX\"): DisasterRecoveryUrl={voice} — covers +14155550104 — Twilio error 20500: HTTP 500: Internal Server Error"
        ),
        "failed    +19999999999 — not a number of account AC00000000000000000000000000000001".to_owned(),
        "failed    +14155550108 (sms) — Messaging Service MG03 (\"Silent\") delivers inbound messages nowhere"
            .to_owned(),
        "failed    +14155550110 (voice) — Application AP99 is not in the account's listing".to_owned(),
    ] {
        assert!(err.contains(&line), "{line:?} in:\n{err}");
    }
    let updates = fake.updates();
    assert!(
        updates.contains_key("AP01") && updates.contains_key("MG01"),
        "{updates:?}"
    );
    assert!(!updates.contains_key("TK01"), "the failed one");
    assert!(!updates.contains_key("PN02"), "a channel with no primary is not sent");

    // Twilio's own refusal comes back with its code and the fix.
    let refused = Fake::start(
        |app, _| json!({"numbers": [{"sid": "PN01", "phone_number": "+14155550101", "voice_url": format!("{app}/voice/ok")}]}),
    );
    refused.account.fail_update(
        "PN01",
        StatusCode::BAD_REQUEST,
        21406,
        "VoiceFallbackUrl cannot be set without VoiceUrl",
    );
    let output = refused.numbers(&[
        "numbers",
        "set",
        "--number",
        "+14155550101",
        "--voice-fallback-url",
        voice,
        "--format",
        "json",
    ]);
    assert_eq!(code(&output), 1);
    let result = &json_of(&output)["results"][0];
    assert_eq!(
        (result["outcome"].as_str(), result["error_code"].as_u64()),
        (Some("failed"), Some(21406))
    );
    assert!(
        result["note"]
            .as_str()
            .unwrap_or("")
            .contains("a fallback URL needs a primary URL"),
        "{result}"
    );
}

#[test]
fn credentials_go_only_to_the_api_and_never_follow_a_page_elsewhere() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (elsewhere, elsewhere_seen) = start_recorder(&runtime, json!({"incoming_phone_numbers": [], "services": []}));
    // The 2010 API's relative link made absolute to another origin…
    let (api, _) = start_recorder(
        &runtime,
        json!({"incoming_phone_numbers": [], "services": [],
               "next_page_uri": format!("{elsewhere}/2010-04-01/Accounts/{ACCOUNT}/IncomingPhoneNumbers.json?Page=1")}),
    );
    let audit = numbers(&["numbers", "audit"], &api, &CREDENTIALS);
    assert_eq!(code(&audit), 2, "{}", stdout(&audit));
    assert!(
        stderr(&audit).contains("not following it with your credentials"),
        "{}",
        stderr(&audit)
    );
    // …and Messaging v1's absolute link to another origin.
    let (messaging, _) = start_recorder(
        &runtime,
        json!({"incoming_phone_numbers": [], "services": [], "meta": {"next_page_url": format!("{elsewhere}/v1/Services?Page=1")}}),
    );
    let audit = numbers(&["numbers", "audit"], &messaging, &CREDENTIALS);
    assert_eq!(code(&audit), 2, "{}", stdout(&audit));
    assert!(stderr(&audit).contains("leaves"), "{}", stderr(&audit));
    assert!(
        elsewhere_seen.lock().expect("record").is_empty(),
        "a request went to the other origin"
    );
    assert!(!stderr(&audit).contains(TOKEN) && !stdout(&audit).contains(TOKEN));

    // A redirect from the API is not followed with the credentials either.
    let (target, target_seen) = start_recorder(&runtime, json!({"incoming_phone_numbers": [], "services": []}));
    let location = format!("{target}/2010-04-01/Accounts/{ACCOUNT}/IncomingPhoneNumbers.json");
    let redirecting = serve_router(
        &runtime,
        Router::new().fallback(move || {
            let location = location.clone();
            async move { (StatusCode::FOUND, [("location", location)], "") }
        }),
    );
    let audit = numbers(&["numbers", "audit"], &redirecting, &CREDENTIALS);
    assert_eq!(code(&audit), 2, "{}", stdout(&audit));
    assert!(stderr(&audit).contains("HTTP 302"), "{}", stderr(&audit));
    assert!(
        target_seen.lock().expect("record").is_empty(),
        "the redirect was followed"
    );

    // A probe carries Twilio's signature, never the API credentials.
    let probe = ProbeRecorder::start(&runtime);
    let fake = Fake::start(
        |app, _| json!({"numbers": [{"sid": "PN01", "phone_number": "+14155550101", "voice_url": format!("{app}/voice/ok"), "voice_fallback_url": probe.url("/fallback")}]}),
    );
    let output = fake.numbers(&["numbers", "audit", "--probe"]);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    let seen = probe.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].authorization, None);
}

#[test]
fn sids_from_the_api_are_checked_before_they_go_into_a_path() {
    let fake = Fake::start(|_, _| {
        json!({"numbers": [{"sid": "PN1/../../Messages", "phone_number": "+14155550101", "voice_url": "https://a.example.com/v"}],
               "services": [{"sid": "MG1/../../Trunks", "phone_numbers": []}]})
    });
    let audit = fake.numbers(&["numbers", "audit"]);
    assert_eq!(code(&audit), 2, "{}", stdout(&audit));
    assert!(
        stderr(&audit).contains("not putting it in a request path"),
        "{}",
        stderr(&audit)
    );
    assert!(fake.account.seen().iter().all(|seen| !seen.target.contains("..")));

    let numbers_only = Fake::start(
        |_, _| json!({"numbers": [{"sid": "PN1/../../Messages", "phone_number": "+14155550101", "voice_url": "https://a.example.com/v"}]}),
    );
    let set = numbers_only.numbers(&[
        "numbers",
        "set",
        "--all-unprotected",
        "--voice-fallback-url",
        "https://fb.example.com/v",
    ]);
    assert_eq!(code(&set), 1);
    assert!(
        stderr(&set).contains("not putting it in a request path"),
        "{}",
        stderr(&set)
    );
    assert!(
        numbers_only
            .account
            .seen()
            .iter()
            .all(|seen| seen.method != http::Method::POST)
    );
}

/// A fallback that records each request and answers valid voice TwiML.
struct ProbeRecorder {
    base: String,
    seen: Arc<Mutex<Vec<ProbeSeen>>>,
}

#[derive(Clone, Debug)]
struct ProbeSeen {
    method: String,
    uri: String,
    signature: Option<String>,
    authorization: Option<String>,
    body: String,
}

impl ProbeRecorder {
    fn start(runtime: &tokio::runtime::Runtime) -> Self {
        let seen: Arc<Mutex<Vec<ProbeSeen>>> = Arc::default();
        let record = Arc::clone(&seen);
        let router = Router::new().fallback(move |request: Request| {
            let record = Arc::clone(&record);
            async move {
                let (signature, authorization) = {
                    let header = |name: &str| {
                        request
                            .headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    (header("x-twilio-signature"), header("authorization"))
                };
                let (method, uri) = (request.method().to_string(), request.uri().to_string());
                let body = axum::body::to_bytes(request.into_body(), 1 << 16)
                    .await
                    .unwrap_or_default();
                record.lock().expect("record").push(ProbeSeen {
                    method,
                    uri,
                    signature,
                    authorization,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                (
                    [("content-type", "text/xml")],
                    "<Response><Say>We'll call you back.</Say></Response>",
                )
            }
        });
        Self {
            base: serve_router(runtime, router),
            seen,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn requests(&self) -> Vec<ProbeSeen> {
        self.seen.lock().expect("record").clone()
    }
}

#[test]
fn probe_sends_each_fallback_what_twilio_sends_and_judges_the_answer() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let recorder = ProbeRecorder::start(&runtime);
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        format!("http://127.0.0.1:{port}/voice")
    };
    let recorded = recorder.url("/voice?tenant=1");
    let fake = Fake::start(|app, fallback| {
        let number = |n: u32, channel: &str, fallback_url: String, method: &str| {
            json!({"sid": format!("PN{n:02}"), "phone_number": format!("+141555501{n:02}"),
                   format!("{channel}_url"): format!("{app}/{channel}/ok"), format!("{channel}_fallback_url"): fallback_url,
                   format!("{channel}_fallback_method"): method})
        };
        json!({"numbers": [
            number(1, "voice", recorded.clone(), "POST"),
            number(2, "voice", recorded.clone(), "POST"),
            number(3, "sms", format!("{fallback}/sms/ok"), "GET"),
            number(4, "sms", format!("{fallback}/sms/lowercase"), "POST"),
            number(5, "voice", format!("{fallback}/voice/status-500"), "POST"),
            number(6, "voice", format!("{fallback}/voice/slow#tt=1500"), "POST"),
            number(7, "voice", closed.clone(), "POST")
        ]})
    });

    let output = fake.numbers(&["numbers", "audit", "--probe", "--format", "json"]);
    assert_eq!(code(&output), 1, "three probes fail: {}", stderr(&output));
    let document = json_of(&output);
    let probes = document["probes"].as_array().expect("probes");
    let outcomes: Vec<(&str, &str)> = probes
        .iter()
        .map(|probe| {
            (
                probe["url"].as_str().unwrap_or(""),
                probe["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let localhost = &fake.localhost;
    assert_eq!(
        outcomes,
        [
            (recorded.as_str(), "valid"),
            (format!("{localhost}/sms/ok").as_str(), "valid"),
            (format!("{localhost}/sms/lowercase").as_str(), "invalid"),
            (format!("{localhost}/voice/status-500").as_str(), "http-error"),
            (format!("{localhost}/voice/slow#tt=1500").as_str(), "timeout"),
            (closed.as_str(), "unreachable"),
        ],
        "one probe per distinct fallback"
    );
    assert_eq!(document["probes_failed"], 4);
    assert_eq!(probes[0]["numbers"], json!(["+14155550101", "+14155550102"]));
    assert_eq!(probes[2]["error_code"], "12102");
    assert_eq!(probes[3]["status"], 500);

    // What the fallback received: Twilio's parameters for the channel, signed as Twilio signs.
    let seen = recorder.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let request = &seen[0];
    assert_eq!(request.method, "POST");
    let params = Params::from_form(request.body.as_bytes());
    assert_eq!(params.get("To"), Some("+14155550101"));
    assert_eq!(params.get("ErrorCode"), Some("11200"));
    assert_eq!(params.get("ErrorUrl"), Some(format!("{}/voice/ok", fake.base).as_str()));
    assert_eq!(params.get("AccountSid"), Some(ACCOUNT));
    assert!(
        params
            .get("CallSid")
            .is_some_and(|sid| sid.starts_with("CA") && sid.len() == 34)
    );
    let probe_id = params.probe().expect("the probe parameter");
    assert_eq!(probes[0]["probe_id"], probe_id);
    assert_eq!(request.uri, "/voice?tenant=1");
    assert_eq!(
        request.signature.as_deref(),
        Some(compute_signature(TOKEN, &recorded, &params).as_str())
    );

    let text = fake.numbers(&["numbers", "audit", "--probe"]);
    let out = stdout(&text);
    for line in [
        "valid TwiML",
        "invalid (12102): ",
        "HTTP 500",
        "no answer within 1500 ms",
        "unreachable (11205): Connection refused",
        "6 probe(s): 2 answered as Twilio needs, 4 failed",
    ] {
        assert!(out.contains(line), "{line:?} in:\n{out}");
    }

    // Probes are signed with the auth token: an API key alone cannot.
    let with_key = numbers(
        &["numbers", "audit", "--probe"],
        &fake.base,
        &[
            ("TWILIO_ACCOUNT_SID", ACCOUNT),
            ("TWILIO_API_KEY", "SK1"),
            ("TWILIO_API_SECRET", "key-secret"),
        ],
    );
    assert_eq!(code(&with_key), 2);
    assert!(
        stderr(&with_key).contains("set TWILIO_AUTH_TOKEN"),
        "{}",
        stderr(&with_key)
    );
    assert_eq!(
        code(&numbers(
            &["numbers", "audit"],
            &fake.base,
            &[
                ("TWILIO_ACCOUNT_SID", ACCOUNT),
                ("TWILIO_API_KEY", "SK1"),
                ("TWILIO_API_SECRET", "key-secret")
            ]
        )),
        0
    );
}

#[test]
fn wrong_or_missing_credentials_exit_2_with_a_hint_and_never_print_the_token() {
    let fake = Fake::start(every_kind);
    let wrong = numbers(
        &["numbers", "audit"],
        &fake.base,
        &[("TWILIO_ACCOUNT_SID", ACCOUNT), ("TWILIO_AUTH_TOKEN", "nope")],
    );
    assert_eq!(code(&wrong), 2);
    assert!(
        !stderr(&wrong).contains("nope") && !stdout(&wrong).contains("nope"),
        "the token is never printed"
    );
    assert!(
        stderr(&wrong).contains("listing numbers failed: HTTP 401 (Twilio error 20003)"),
        "{}",
        stderr(&wrong)
    );
    assert!(
        stderr(&wrong).contains("hint: check TWILIO_ACCOUNT_SID"),
        "{}",
        stderr(&wrong)
    );
    // Credentials cross the network only encrypted: a plain-http base must be this machine.
    let plain = numbers(&["numbers", "audit"], "http://api.example.com", &CREDENTIALS);
    assert_eq!(code(&plain), 2);
    assert!(
        stderr(&plain).contains("is plain http: the credentials would cross the network unencrypted"),
        "{}",
        stderr(&plain)
    );
    // TWILIO_API_BASE is replay's Messages API base, not the three APIs numbers reads.
    let mut with_env = command(&["numbers", "audit", "--api-base", &fake.base]);
    with_env.envs(CREDENTIALS).env("TWILIO_API_BASE", "http://127.0.0.1:9");
    assert_eq!(
        code(&with_env.output().expect("run")),
        1,
        "--api-base, not TWILIO_API_BASE"
    );
    let missing = numbers(&["numbers", "audit"], &fake.base, &[]);
    assert_eq!(code(&missing), 2);
    assert!(stderr(&missing).contains("no account SID"), "{}", stderr(&missing));
}

#[test]
fn numbers_refuses_an_api_answer_over_16_mb() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (api, _) = start_recorder(
        &runtime,
        json!({"incoming_phone_numbers": [], "padding": "x".repeat(17 * 1024 * 1024)}),
    );
    let audit = numbers(&["numbers", "audit"], &api, &CREDENTIALS);
    assert_eq!(code(&audit), 2, "{}", stdout(&audit));
    assert!(stderr(&audit).contains("is over 16 MB"), "{}", stderr(&audit));
}

#[test]
fn numbers_set_says_what_is_required_and_checks_sids_and_numbers_before_calling_the_api() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (api, seen) = start_recorder(
        &runtime,
        json!({"incoming_phone_numbers": [], "services": [], "next_page_uri": null}),
    );
    let voice = "https://fallback.example.com/voice";
    let usage = |args: &[&str], credentials: &[(&str, &str)], expected: &str| {
        let output = numbers(args, &api, credentials);
        assert_eq!(code(&output), 2, "{args:?}: {}", stderr(&output));
        let text = stderr(&output);
        assert!(text.contains(expected), "{args:?}: {text}");
        assert!(text.contains("hint: "), "{args:?}: {text}");
        for listed in ["--api-base <", "--account-sid <", "--auth-token <"] {
            assert!(!text.contains(listed), "{args:?} lists {listed} as if required: {text}");
        }
    };
    usage(
        &["numbers", "set"],
        &CREDENTIALS,
        "error: numbers set needs which numbers to update (--number NUMBER, repeatable, or --all-unprotected) \
         and at least one fallback URL (--voice-fallback-url URL, --sms-fallback-url URL, or both)",
    );
    usage(
        &["numbers", "set", "--all-unprotected"],
        &CREDENTIALS,
        "error: numbers set needs at least one fallback URL",
    );
    usage(
        &["numbers", "set", "--sms-fallback-url", voice],
        &CREDENTIALS,
        "error: numbers set needs which numbers to update: --number NUMBER (repeatable) or --all-unprotected",
    );
    usage(
        &[
            "numbers",
            "set",
            "--number",
            "415-555-0199",
            "--voice-fallback-url",
            voice,
        ],
        &CREDENTIALS,
        "error: --number \"415-555-0199\" is neither an E.164 phone number",
    );
    usage(
        &[
            "numbers",
            "set",
            "--number",
            "PN1/../Calls",
            "--voice-fallback-url",
            voice,
        ],
        &CREDENTIALS,
        "nor a phone number SID (PN + 32 hex digits)",
    );
    let short_sid = [("TWILIO_ACCOUNT_SID", "AC123"), ("TWILIO_AUTH_TOKEN", "secret-token")];
    usage(
        &["numbers", "set", "--all-unprotected", "--voice-fallback-url", voice],
        &short_sid,
        "error: \"AC123\" is not an account SID (AC + 32 hex digits)",
    );
    usage(&["numbers", "audit"], &short_sid, "is not an account SID");
    usage(
        &["numbers", "audit"],
        &[
            ("TWILIO_ACCOUNT_SID", "SK00000000000000000000000000000001"),
            ("TWILIO_AUTH_TOKEN", "secret-token"),
        ],
        "hint: that is an API key SID",
    );
    // The usage line, in errors and help, says what is really required.
    let conflict = numbers(
        &[
            "numbers",
            "set",
            "--all-unprotected",
            "--number",
            "+14155550101",
            "--voice-fallback-url",
            voice,
        ],
        &api,
        &CREDENTIALS,
    );
    assert_eq!(code(&conflict), 2);
    assert!(
        stderr(&conflict).contains(
            "Usage: twiml-fallback numbers set (--number NUMBER... | --all-unprotected) [--voice-fallback-url URL] [--sms-fallback-url URL] [OPTIONS]"
        ),
        "{}",
        stderr(&conflict)
    );
    assert!(
        seen.lock().expect("record").is_empty(),
        "no usage error reaches the API"
    );
    // Valid input does reach it.
    let valid = numbers(
        &[
            "numbers",
            "set",
            "--number",
            "+14155550101",
            "--voice-fallback-url",
            voice,
        ],
        &api,
        &CREDENTIALS,
    );
    assert_eq!(
        code(&valid),
        1,
        "not a number of the (empty) account: {}",
        stderr(&valid)
    );
    assert_eq!(
        seen.lock().expect("record").len(),
        2,
        "the numbers, then the Messaging Services"
    );
}

/// Runs an admin subcommand (`inbox list`, `incidents`) against `endpoint`.
fn admin(endpoint: &str, args: &[&str]) -> Output {
    command(&[args, &["--endpoint", endpoint, "--format", "json"]].concat())
        .env("TWIML_FALLBACK_ADMIN_TOKEN", "admin-token")
        .output()
        .expect("run twiml-fallback")
}

#[test]
fn our_endpoint_answers_a_probe_but_keeps_alerts_and_recovers_nothing_for_it() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (sink, told) = start_recorder(&runtime, json!({"ok": true}));
    let dir = std::env::temp_dir().join(format!("twiml-fallback-numbers-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let fake = Fake::start(|_, _| json!({}));
    let port = fake.base.rsplit(':').next().unwrap_or_default().to_owned();
    // Recovery would ask the primary (the chaos demo) again, alerts would tell the sink: for a probe, neither.
    let config = dir.join("fallback.toml");
    std::fs::write(
        &config,
        format!("[alerts]\nwebhook_url = \"{sink}/hook\"\n[recovery]\nallow_hosts = [\"127.0.0.1:{port}\"]\nallow_http = true\n"),
    )
    .expect("config");
    let log = dir.join("serve.log");
    let inbox = dir.join("inbox.sqlite3");
    let child = command(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--config",
        config.to_str().expect("path"),
        "--inbox",
        inbox.to_str().expect("path"),
    ])
    .env("TWILIO_AUTH_TOKEN", TOKEN)
    .env("TWIML_FALLBACK_ADMIN_TOKEN", "admin-token")
    .env("RUST_LOG", "info")
    .stdout(std::process::Stdio::null())
    .stderr(std::fs::File::create(&log).expect("log"))
    .spawn()
    .expect("start serve");
    let addr = twiml_fallback_e2e::serve_address(&log, std::time::Duration::from_secs(10)).unwrap_or_else(|| {
        panic!(
            "serve did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    let endpoint = format!("http://{addr}");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _serve = Kill(child);

    let account = Fake::start(|app, _| {
        json!({"numbers": [
            {"sid": "PN01", "phone_number": "+14155550101", "voice_url": format!("{app}/voice/ok"), "voice_fallback_url": format!("{endpoint}/voice")},
            {"sid": "PN02", "phone_number": "+14155550102", "sms_url": format!("{app}/sms/ok"), "sms_fallback_url": format!("{endpoint}/sms"), "sms_fallback_method": "GET"}
        ]})
    });
    let output = account.numbers(&["numbers", "audit", "--probe", "--format", "json"]);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    let document = json_of(&output);
    let ids: Vec<&str> = document["probes"]
        .as_array()
        .expect("probes")
        .iter()
        .map(|probe| {
            assert_eq!(probe["outcome"], "valid", "{probe}");
            probe["probe_id"].as_str().expect("id")
        })
        .collect();
    assert_eq!(ids.len(), 2);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    for id in &ids {
        assert!(log_text.contains(&format!("probe={id}")), "{id} logged:\n{log_text}");
    }
    let kept = json_of(&admin(&endpoint, &["inbox", "list"]));
    assert_eq!(kept["entries"], json!([]), "{kept}");
    let incidents = json_of(&admin(&endpoint, &["incidents"]));
    assert_eq!(incidents["incidents"], json!([]), "{incidents}");
    assert!(told.lock().expect("record").is_empty(), "the alert sink was told");

    // Signed with another token, the probe is refused as Twilio's request would be, and says why.
    let mut refused = command(&["numbers", "audit", "--probe", "--api-base", &account.base]);
    refused.envs([
        ("TWILIO_ACCOUNT_SID", ACCOUNT),
        ("TWILIO_API_KEY", "SK1"),
        ("TWILIO_API_SECRET", "key-secret"),
        ("TWILIO_AUTH_TOKEN", "another-token"),
    ]);
    let refused = refused.output().expect("run");
    assert_eq!(code(&refused), 1);
    let text = stdout(&refused);
    assert!(text.contains("HTTP 403: Forbidden: X-Twilio-Signature"), "{text}");
    assert!(text.contains("0 answered as Twilio needs, 2 failed"), "{text}");

    // The same endpoint keeps and files a real fallback request (so the checks above can fail).
    let real = command(&[
        "simulate",
        "--url",
        &format!("{}/voice/status-500", account.base),
        "--fallback-url",
        &format!("{endpoint}/voice"),
    ])
    .env("TWILIO_AUTH_TOKEN", TOKEN)
    .output()
    .expect("simulate");
    assert_eq!(code(&real), 0, "{}", stdout(&real));
    let kept = json_of(&admin(&endpoint, &["inbox", "list"]));
    assert_eq!(kept["entries"].as_array().map(Vec::len), Some(1), "{kept}");
    assert_eq!(
        json_of(&admin(&endpoint, &["incidents"]))["incidents"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
