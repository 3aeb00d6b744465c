//! The shared end-to-end tables against the built Worker, running under workerd (`wrangler dev
//! --local`, which runs the inbox's Durable Object on SQLite and writes the `send_email`
//! binding's messages to files) — the fallback endpoint's, the outage inbox's, replay's,
//! incidents' and probes' — plus what only the Worker has: an incident kept across isolates in
//! the Durable Object, its JSON log lines, its inbox binding (absent, or failing), and replay and
//! notifications driven by the inbox object's alarm.
//!
//! `scripts/test.sh` builds the Worker, sets `TWIML_FALLBACK_WRANGLER` (the wrangler binary) and
//! `TWIML_FALLBACK_WORKER_BUNDLE` (the bundle directory) and runs these tests with
//! `--include-ignored`. Plain `cargo test` reports them as ignored; run on purpose without the
//! Worker, they fail, naming what is missing.

use std::path::Path;
use std::time::Duration;

use twiml_fallback::config::Config;
use twiml_fallback::edge::{DEGRADED_BODY, HEALTH_BODY, NO_INBOX_WARNING};
use twiml_fallback::webhook::Channel;
use twiml_fallback_e2e::worker::{InboxBinding, Start, TempDir, Worker};
use twiml_fallback_e2e::{
    ADMIN_TOKEN, AlertReceiver, CaseRequest, Signing, TOKEN, admin, run_inbox_table, run_incident_table,
    run_probe_table, run_replay_table, run_table, send, voice_params,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built Worker and wrangler (scripts/test.sh provides them)"]
async fn the_end_to_end_table_passes_against_the_worker_under_workerd() {
    let worker = Worker::from_env();
    run_table(&worker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built Worker and wrangler (scripts/test.sh provides them)"]
async fn the_inbox_table_passes_against_the_worker_and_its_durable_object() {
    let worker = Worker::from_env();
    run_inbox_table(&worker).await;
}

/// Replay on the Worker: the passes run in the inbox object, from its alarm (the table waits for
/// the app's queue to empty without asking) and from the admin API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built Worker, wrangler and twilio-node (scripts/test.sh provides them)"]
async fn the_replay_table_passes_against_the_worker_and_its_alarm() {
    let worker = Worker::from_env();
    run_replay_table(&worker).await;
}

/// Incidents on the Worker: kept in the inbox object, told from its alarm — email through the
/// `send_email` binding (files under `wrangler dev`), the rest by fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built Worker and wrangler (scripts/test.sh provides them)"]
async fn the_incident_table_passes_against_the_worker_and_its_alarm() {
    let worker = Worker::from_env();
    run_incident_table(&worker).await;
}

/// Probes from `numbers audit --probe` on the Worker: answered, logged, and nothing sent to the
/// inbox object (no entry, no incident) or to the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built Worker and wrangler (scripts/test.sh provides them)"]
async fn the_probe_table_passes_against_the_worker_and_its_durable_object() {
    let worker = Worker::from_env();
    run_probe_table(&worker).await;
}

fn notice(error_url: &str) -> CaseRequest {
    CaseRequest {
        method: "POST",
        path: "/voice",
        params: voice_params(&[("ErrorCode", "11200"), ("ErrorUrl", error_url)]),
        signing: Signing::Token(TOKEN),
        raw_body: None,
    }
}

async fn eventually(what: &str, logs: &Path, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{what} did not happen within 10 s; the Worker's log:\n{}",
        std::fs::read_to_string(logs).unwrap_or_default()
    );
}

/// The JSON lines the Worker wrote: `console.log` lines as they are, `console.error` ones inside
/// wrangler's decoration (`✘ [ERROR] {…}`); wrangler's own lines are skipped.
fn json_lines(logs: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(logs)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            if line.starts_with('{') {
                return Some(serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}")));
            }
            let json = &line[line.find("ERROR")?..];
            let json = &json[json.find('{')?..=json.rfind('}')?];
            Some(serde_json::from_str(json).unwrap_or_else(|error| panic!("not JSON ({error}): {line}")))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built Worker and wrangler (scripts/test.sh provides them)"]
async fn an_open_incident_outlives_the_isolate_in_its_durable_object_and_every_request_logs_one_json_line() {
    let worker = Worker::from_env();
    let alerts = AlertReceiver::start().await;
    let config = format!(
        "[alerts]\nwebhook_url = \"{}\"\nresolve_after_seconds = 300\n",
        alerts.url
    );
    let state = TempDir::new("incident");
    let first = "https://app.example.com";
    let second = "https://other.example.com";

    // A first Worker opens the incident of the failing primary, and tells the webhook once.
    {
        let running = worker.start(&config, &[TOKEN], &state.0).await;
        let logs = running.logs.clone().expect("logs");
        let answer = send(&running.base_url, &notice(&format!("{first}/voice"))).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        eventually("the incident's notification", &logs, || {
            alerts.alerts_for(first).len() == 1
        })
        .await;
        // The notification's own line comes last: once it is in the file, so is everything before it.
        eventually("the notification's log line", &logs, || {
            json_lines(&logs).iter().any(|line| {
                line["event"] == "notification" && line["sink"] == "webhook" && line["status"] == "delivered"
            })
        })
        .await;
        let lines = json_lines(&logs);
        assert!(
            lines
                .iter()
                .any(|line| line["event"] == "incident-opened" && line["origin"] == first),
            "{lines:?}"
        );
        // One record per request: the notice. The /healthz probe (wait_until_up) is answered by
        // the core without one.
        let records: Vec<_> = lines
            .iter()
            .filter(|line| line.get("status").is_some() && line.get("path").is_some())
            .collect();
        assert_eq!(
            records.len(),
            1,
            "{}",
            std::fs::read_to_string(&logs).unwrap_or_default()
        );
        assert_eq!(records[0]["event"], "fallback");
        assert_eq!(records[0]["error_code"], 11200);
        assert_eq!(records[0]["incident"], first);
        assert_eq!(records[0]["signature"], "valid");
    }

    // A fresh isolate on the same object: the same primary failing again is the same incident
    // (no new notification); another primary opens its own.
    let running = worker.start(&config, &[TOKEN], &state.0).await;
    let logs = running.logs.clone().expect("logs");
    assert_eq!(
        send(&running.base_url, &notice(&format!("{first}/sms"))).await.status,
        200
    );
    assert_eq!(
        send(&running.base_url, &notice(&format!("{second}/voice")))
            .await
            .status,
        200
    );
    eventually("the second primary's notification", &logs, || {
        alerts.alerts_for(second).len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        alerts.alerts_for(first).len(),
        1,
        "the first primary's incident was announced twice"
    );
    assert_eq!(alerts.alerts().len(), 2, "{:?}", alerts.alerts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built Worker and wrangler (scripts/test.sh provides them)"]
async fn a_broken_configuration_serves_the_defaults_and_says_why_on_every_request() {
    let worker = Worker::from_env();
    let state = TempDir::new("broken");
    let running = worker.start("[voice]\nsay = 42\n[nonsense", &[TOKEN], &state.0).await;
    let logs = running.logs.clone().expect("logs");
    let defaults = Config::default();
    for _ in 0..2 {
        let answer = send(&running.base_url, &notice("https://app.example.com/voice")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body, defaults.fallback(Some(Channel::Voice), None).twiml);
    }
    // The log reaches the file through wrangler's pipe, a moment after the answers.
    let config_errors = || {
        json_lines(&logs)
            .iter()
            .filter(|line| line["event"] == "config-error")
            .count()
    };
    eventually("two config-error lines", &logs, || config_errors() >= 2).await;
    let lines = json_lines(&logs);
    let loaded = lines
        .iter()
        .find(|line| line["event"] == "config")
        .expect("a config line");
    assert!(
        loaded["errors"].as_str().is_some_and(|errors| !errors.is_empty()),
        "{loaded}"
    );
    // Loudly: once per request record (the two notices; health checks have none), not only at load.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let records = json_lines(&logs)
        .iter()
        .filter(|line| line.get("status").is_some())
        .count();
    assert_eq!(
        config_errors(),
        records,
        "{}",
        std::fs::read_to_string(&logs).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built Worker and wrangler (scripts/test.sh provides them)"]
async fn per_field_vars_set_the_common_answers_over_the_document() {
    let worker = Worker::from_env();
    let state = TempDir::new("vars");
    let document = "[voice]\nsay = \"From the document.\"\n[messaging]\nmessage = \"Document SMS.\"\n";
    let vars = [
        ("FALLBACK_VOICE_SAY", "From a var: call back soon."),
        ("FALLBACK_VOICE_LANGUAGE", "en-GB"),
    ];
    let running = worker.start_with_vars(document, &[TOKEN], &state.0, &vars).await;
    let expected = Config::from_sources(Some(document), |name| {
        vars.iter()
            .find(|(var, _)| *var == name)
            .map(|(_, value)| (*value).to_owned())
    })
    .expect("a valid configuration");
    let answer = send(&running.base_url, &notice("https://app.example.com/voice")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body, expected.fallback(Some(Channel::Voice), None).twiml);
    assert!(
        answer.body.contains("From a var: call back soon.") && answer.body.contains("en-GB"),
        "{}",
        answer.body
    );
    let logs = running.logs.clone().expect("logs");
    eventually("the config line", &logs, || {
        json_lines(&logs).iter().any(|line| line["event"] == "config")
    })
    .await;
    let loaded = json_lines(&logs)
        .into_iter()
        .find(|line| line["event"] == "config")
        .expect("a config line");
    assert_eq!(
        loaded["variables"],
        serde_json::json!(["FALLBACK_VOICE_SAY", "FALLBACK_VOICE_LANGUAGE"])
    );
    // The inbox is the binding's Durable Object; no admin token, no admin API.
    assert_eq!(loaded["inbox"], "Durable Object INBOX", "{loaded}");
    assert_eq!(
        loaded["admin"], "off (no TWIML_FALLBACK_ADMIN_TOKEN secret)",
        "{loaded}"
    );
    assert_eq!(loaded["warnings"], serde_json::json!([]), "{loaded}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built Worker and wrangler (scripts/test.sh provides them)"]
async fn a_broken_configuration_keeps_the_valid_variables_and_names_every_problem() {
    let worker = Worker::from_env();
    let state = TempDir::new("broken-vars");
    let document = "[voice]\nsay = 42\n[nonsense";
    let vars = [
        ("FALLBACK_VOICE_SAY", "From a var, next to a broken document."),
        ("FALLBACK_ALERT_DEDUP_SECONDS", "soon"),
    ];
    let running = worker.start_with_vars(document, &[TOKEN], &state.0, &vars).await;
    let logs = running.logs.clone().expect("logs");
    let served = Config::from_sources_or_defaults(Some(document), |name| {
        vars.iter()
            .find(|(var, _)| *var == name)
            .map(|(_, value)| (*value).to_owned())
    });
    assert!(served.errors.is_some());
    let answer = send(&running.base_url, &notice("https://app.example.com/voice")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body, served.config.fallback(Some(Channel::Voice), None).twiml);
    assert!(
        answer.body.contains("From a var, next to a broken document."),
        "{}",
        answer.body
    );
    // Health checks answer 200 and add no line, even with the configuration broken.
    let health = twiml_fallback_e2e::client()
        .get(format!("{}/healthz", running.base_url))
        .send()
        .await
        .expect("GET /healthz");
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.expect("a body"), "ok\n");

    eventually("the config-error line", &logs, || {
        json_lines(&logs).iter().any(|line| line["event"] == "config-error")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = json_lines(&logs);
    let loaded = lines
        .iter()
        .find(|line| line["event"] == "config")
        .expect("a config line");
    let errors = loaded["errors"].as_str().unwrap_or_default();
    assert!(errors.contains("not valid TOML"), "{loaded}");
    assert!(errors.contains("FALLBACK_ALERT_DEDUP_SECONDS: \"soon\""), "{loaded}");
    assert_eq!(loaded["variables"], serde_json::json!(["FALLBACK_VOICE_SAY"]));
    let config_errors: Vec<_> = lines.iter().filter(|line| line["event"] == "config-error").collect();
    let records = lines.iter().filter(|line| line.get("status").is_some()).count();
    assert_eq!(
        (config_errors.len(), records),
        (1, 1),
        "{}",
        std::fs::read_to_string(&logs).unwrap_or_default()
    );
    assert_eq!(config_errors[0]["variables"], serde_json::json!(["FALLBACK_VOICE_SAY"]));
    assert_eq!(config_errors[0]["serving"], "embedded defaults");
}

/// A signed inbound SMS with `sid`, as Twilio sends it to the fallback URL.
fn inbound_sms(sid: &str) -> CaseRequest {
    let params = [
        ("MessageSid", sid),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", "+14155550100"),
        ("To", "+14155550199"),
        ("Body", "Is order 42 ready?"),
        ("SmsStatus", "received"),
        ("ErrorCode", "11200"),
        ("ErrorUrl", "https://app.example.com/sms"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    CaseRequest {
        method: "POST",
        path: "/sms",
        params,
        signing: Signing::Token(TOKEN),
        raw_body: None,
    }
}

async fn health(base_url: &str) -> (u16, String) {
    let answer = twiml_fallback_e2e::client()
        .get(format!("{base_url}/healthz"))
        .send()
        .await
        .expect("GET /healthz");
    (answer.status().as_u16(), answer.text().await.expect("a body"))
}

/// The Worker with the admin token and `inbox` as its INBOX binding, its state under `state`.
async fn start_with_inbox(inbox: InboxBinding, state: &TempDir) -> twiml_fallback_e2e::Running {
    Worker::from_env()
        .start_with(Start {
            admin_token: Some(ADMIN_TOKEN),
            inbox,
            ..Start::new("", &[TOKEN], &state.0)
        })
        .await
}

/// `GET /_twiml-fallback/inbox` with the admin token.
async fn list_inbox(base_url: &str) -> twiml_fallback_e2e::AdminAnswer {
    admin(
        base_url,
        "GET",
        "/_twiml-fallback/inbox",
        Some(&format!("Bearer {ADMIN_TOKEN}")),
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built Worker and wrangler (scripts/test.sh provides them)"]
async fn a_failing_inbox_answers_the_same_logs_the_lost_sid_and_turns_the_health_check_degraded() {
    let state = TempDir::new("inbox-without-sql");
    // The Inbox class declared without SQLite storage: every write fails.
    let running = start_with_inbox(InboxBinding::WithoutSql, &state).await;
    let logs = running.logs.clone().expect("logs");
    assert_eq!(health(&running.base_url).await, (200, HEALTH_BODY.to_owned()));
    let sid = "SM60000000000000000000000000000001";
    let answer = send(&running.base_url, &inbound_sms(sid)).await;
    let defaults = Config::default();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body, defaults.fallback(Some(Channel::Messaging), None).twiml);
    eventually("the inbox-write-failed line", &logs, || {
        json_lines(&logs)
            .iter()
            .any(|line| line["event"] == "inbox-write-failed" && line["sid"] == sid)
    })
    .await;
    assert_eq!(health(&running.base_url).await, (503, DEGRADED_BODY.to_owned()));
    // The admin API says the inbox failed, in the core's words.
    let listed = list_inbox(&running.base_url).await;
    assert_eq!(listed.status, 500, "{}", listed.json);
    assert!(
        listed.json["error"]
            .as_str()
            .is_some_and(|error| error.contains("SQL is not enabled")),
        "{}",
        listed.json
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built Worker and wrangler (scripts/test.sh provides them)"]
async fn without_the_inbox_binding_nothing_is_kept_and_the_config_line_says_so() {
    let state = TempDir::new("no-inbox");
    let running = start_with_inbox(InboxBinding::None, &state).await;
    let logs = running.logs.clone().expect("logs");
    let answer = send(&running.base_url, &inbound_sms("SM70000000000000000000000000000001")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let listed = list_inbox(&running.base_url).await;
    assert_eq!(listed.status, 503, "{}", listed.json);
    eventually("the request's record", &logs, || {
        json_lines(&logs).iter().any(|line| line["event"] == "fallback")
    })
    .await;
    let lines = json_lines(&logs);
    let loaded = lines
        .iter()
        .find(|line| line["event"] == "config")
        .expect("a config line");
    assert_eq!(loaded["inbox"], "none (no INBOX binding)", "{loaded}");
    assert_eq!(loaded["admin"], "on", "{loaded}");
    assert!(
        loaded["warnings"]
            .as_array()
            .is_some_and(|warnings| warnings.iter().any(|warning| warning == NO_INBOX_WARNING)),
        "{loaded}"
    );
    let record = lines.iter().find(|line| line["event"] == "fallback").expect("a record");
    assert!(record.get("inbox").is_none(), "{record}");
}

/// The Worker's entry module (`workers/edge-fallback/entry.mjs`) calls the Rust handler without
/// worker-build's per-request class, so it must still honour the bundle's `criticalError` flag:
/// the first request after a `WebAssembly.RuntimeError` resets the wasm instance, once, and every
/// request is answered as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built Worker and wrangler (scripts/test.sh provides them)"]
async fn after_a_critical_error_the_entry_resets_the_wasm_instance_once_and_keeps_answering() {
    let state = TempDir::new("critical-error");
    let running = Worker::from_env()
        .start_with(Start {
            critical_error: true,
            ..Start::new("", &[TOKEN], &state.0)
        })
        .await;
    let logs = running.logs.clone().expect("logs");
    let defaults = Config::default();
    let expected = defaults.fallback(Some(Channel::Messaging), None).twiml;
    for sid in [
        "SM80000000000000000000000000000001",
        "SM80000000000000000000000000000002",
    ] {
        let answer = send(&running.base_url, &inbound_sms(sid)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body, expected);
    }
    eventually("both requests' records", &logs, || {
        json_lines(&logs)
            .iter()
            .filter(|line| line["event"] == "fallback")
            .count()
            == 2
    })
    .await;
    let text = std::fs::read_to_string(&logs).expect("the log");
    assert_eq!(
        text.matches("Reinitializing Wasm application").count(),
        1,
        "one reset, before the first request:\n{text}"
    );
}
