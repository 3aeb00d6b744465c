//! The shared end-to-end table against the built Worker, running under workerd (`wrangler dev
//! --local`, which also simulates the `ALERT_DEDUP` KV namespace), plus what only the Worker has:
//! alert dedup across isolates through KV, and its JSON log lines.
//!
//! `scripts/test.sh` builds the Worker, sets `TWIML_FALLBACK_WRANGLER` (the wrangler binary) and
//! `TWIML_FALLBACK_WORKER_BUNDLE` (the bundle directory) and runs these tests with
//! `--include-ignored`. Plain `cargo test` reports them as ignored; run on purpose without the
//! Worker, they fail, naming what is missing.

use std::path::Path;
use std::time::Duration;

use twiml_fallback::config::Config;
use twiml_fallback::webhook::Channel;
use twiml_fallback_e2e::worker::{TempDir, Worker};
use twiml_fallback_e2e::{AlertReceiver, CaseRequest, Signing, TOKEN, run_table, send, voice_params};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the built Worker and wrangler (scripts/test.sh provides them)"]
async fn the_end_to_end_table_passes_against_the_worker_under_workerd() {
    let worker = Worker::from_env();
    run_table(&worker).await;
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
async fn alert_windows_outlive_the_isolate_through_kv_and_every_request_logs_one_json_line() {
    let worker = Worker::from_env();
    let alerts = AlertReceiver::start().await;
    let config = format!("[alerts]\nwebhook_url = \"{}\"\ndedup_seconds = 300\n", alerts.url);
    let state = TempDir::new("kv");
    let first_url = "https://app.example.com/kv-first";
    let second_url = "https://app.example.com/kv-second";

    // A first Worker alerts once for the failing URL.
    {
        let running = worker.start(&config, &[TOKEN], &state.0).await;
        let logs = running.logs.clone().expect("logs");
        let answer = send(&running.base_url, &notice(first_url)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        eventually("the first alert", &logs, || alerts.alerts_for(first_url).len() == 1).await;
        // The alert's own line comes last: once it is in the file, so is everything before it.
        eventually("the alert's log line", &logs, || {
            json_lines(&logs)
                .iter()
                .any(|line| line["event"] == "alert" && line["outcome"] == "HTTP 200")
        })
        .await;
        let lines = json_lines(&logs);
        // One record per request: the notice. The /healthz probe (wait_until_up) is answered by
        // the core without one.
        let records: Vec<_> = lines.iter().filter(|line| line.get("status").is_some()).collect();
        assert_eq!(
            records.len(),
            1,
            "{}",
            std::fs::read_to_string(&logs).unwrap_or_default()
        );
        assert_eq!(records[0]["event"], "fallback");
        assert_eq!(records[0]["error_code"], 11200);
        assert_eq!(records[0]["error_url"], first_url);
        assert_eq!(records[0]["signature"], "valid");
    }

    // A fresh isolate on the same KV namespace: the same failure inside the window is not
    // alerted again; another failing URL is.
    let running = worker.start(&config, &[TOKEN], &state.0).await;
    let logs = running.logs.clone().expect("logs");
    assert_eq!(send(&running.base_url, &notice(first_url)).await.status, 200);
    eventually("the KV suppression", &logs, || {
        json_lines(&logs)
            .iter()
            .any(|line| line["event"] == "alert-suppressed" && line["by"] == "kv")
    })
    .await;
    assert_eq!(send(&running.base_url, &notice(second_url)).await.status, 200);
    eventually("the second URL's alert", &logs, || {
        alerts.alerts_for(second_url).len() == 1
    })
    .await;
    assert_eq!(
        alerts.alerts_for(first_url).len(),
        1,
        "the first URL was alerted twice in its window"
    );
    // And inside the same isolate, the in-memory window answers before KV is asked.
    assert_eq!(send(&running.base_url, &notice(second_url)).await.status, 200);
    eventually("the isolate suppression", &logs, || {
        json_lines(&logs)
            .iter()
            .any(|line| line["event"] == "alert-suppressed" && line["by"] == "isolate")
    })
    .await;
    assert_eq!(alerts.alerts_for(second_url).len(), 1);
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
