//! Incidents end to end, run against every backend with a local stand-in for each sink — a
//! Slack-style webhook, PagerDuty, Twilio's Messages API (texts to the on-call phone), email
//! (an SMTP server for `serve`; the `send_email` binding's files for the Worker):
//!
//! 1. a flood of fallback notices across two error codes for one failing primary opens exactly
//!    one incident, and each sink hears of it exactly once; forged requests open nothing;
//! 2. the primary answering a recovery resolves it: exactly one resolve per sink, with the
//!    flood's totals, PagerDuty's under the same `dedup_key`;
//! 3. a quiet period resolves an incident too, and a failing sink is retried, in order, without
//!    holding up the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::Value;
use twiml_fallback::signature::{SIGNATURE_HEADER, compute_signature};
use twiml_fallback::webhook::{Params, encode_form};

use crate::fakes::{MessagesApi, ReplayApp};
use crate::inbox_table::{ADMIN_TOKEN, admin};
use crate::replay_table::ReplayLauncher;
use crate::sinks::{JsonSink, SmtpServer, emails_in_log, subject_of, text_of};
use crate::{Running, TOKEN, client};

/// The account the notices come from: the texts are sent from it.
const ACCOUNT: &str = "ACe2e00000000000000000000000000011";

/// The on-call phone.
const ON_CALL: &str = "+14155550142";

/// How many notices the flood sends (`TWIML_FALLBACK_E2E_FLOOD` to change it).
fn flood_size() -> usize {
    std::env::var("TWIML_FALLBACK_E2E_FLOOD")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(10_000)
}

/// Every sink's stand-in.
struct Sinks {
    webhook: JsonSink,
    pagerduty: JsonSink,
    api: MessagesApi,
    smtp: SmtpServer,
}

impl Sinks {
    async fn start() -> Self {
        Self {
            webhook: JsonSink::start("/slack", StatusCode::OK).await,
            pagerduty: JsonSink::start("/v2/enqueue", StatusCode::ACCEPTED).await,
            api: MessagesApi::start().await,
            smtp: SmtpServer::start().await,
        }
    }

    fn config(&self, app: &ReplayApp, resolve_after_seconds: u64) -> String {
        format!(
            r#"
[alerts]
webhook_url = "{webhook}"
email = ["ops@example.com", "oncall@example.com"]
sms = ["{ON_CALL}"]
sms_from = "+14155550199"
pagerduty_routing_key = "e2e0123456789abcdef0123456789abc"
pagerduty_url = "{pagerduty}"
resolve_after_seconds = {resolve_after_seconds}

[alerts.smtp]
url = "{smtp}"
from = "twiml-fallback <alerts@example.com>"

[recovery]
allow_hosts = ["{host}"]
allow_http = true
timeout_ms = 3000

[replay]
min_interval_seconds = 900
"#,
            webhook = self.webhook.url,
            pagerduty = self.pagerduty.url,
            smtp = self.smtp.url,
            host = app.host,
        )
    }

    /// The emails the endpoint sent: through the SMTP server (`serve`), or written by the
    /// Worker's binding (its log names each file). Each as (subject, text).
    fn emails(&self, running: &Running) -> Vec<(String, String)> {
        let mut mimes: Vec<String> = self.smtp.mails().into_iter().map(|mail| mail.data).collect();
        if let Some(log) = &running.logs {
            mimes.extend(emails_in_log(log));
        }
        mimes
            .iter()
            .map(|mime| (subject_of(mime).unwrap_or_default(), text_of(mime).unwrap_or_default()))
            .collect()
    }

    /// (webhook events, PagerDuty actions, texts to the on-call phone, email subjects' tags),
    /// each as received.
    fn told(&self, running: &Running) -> Told {
        Told {
            webhook: self
                .webhook
                .accepted()
                .iter()
                .map(|json| json["event"].as_str().unwrap_or("?").to_owned())
                .collect(),
            pagerduty: self
                .pagerduty
                .accepted()
                .iter()
                .map(|json| json["event_action"].as_str().unwrap_or("?").to_owned())
                .collect(),
            sms: self
                .api
                .requests_to(ON_CALL)
                .iter()
                .map(|request| tag(request.field("Body").unwrap_or("")))
                .collect(),
            email: self.emails(running).iter().map(|(subject, _)| tag(subject)).collect(),
        }
    }
}

/// `[OPEN] …` → `OPEN`.
fn tag(text: &str) -> String {
    text.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .map_or_else(|| text.to_owned(), |(tag, _)| tag.to_owned())
}

#[derive(Debug, PartialEq, Eq)]
struct Told {
    webhook: Vec<String>,
    pagerduty: Vec<String>,
    sms: Vec<String>,
    email: Vec<String>,
}

impl Told {
    fn of(webhook: &[&str], pagerduty: &[&str], sms: &[&str], email: &[&str]) -> Self {
        let owned = |items: &[&str]| items.iter().map(|item| (*item).to_owned()).collect();
        Told {
            webhook: owned(webhook),
            pagerduty: owned(pagerduty),
            sms: owned(sms),
            email: owned(email),
        }
    }
}

/// An inbound message as Twilio sends it to the Fallback URL, signed.
fn notice_form(n: usize, code: &str, error_url: &str) -> String {
    let sid = format!("SM{n:032x}");
    let to = if n % 2 == 0 { "+14155550170" } else { "+14155550171" };
    encode_form([
        ("MessageSid", sid.as_str()),
        ("SmsSid", sid.as_str()),
        ("AccountSid", ACCOUNT),
        ("From", "+14155550100"),
        ("To", to),
        ("Body", "where is my order?"),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
        ("ErrorCode", code),
        ("ErrorUrl", error_url),
    ])
}

/// Sends `count` notices (codes alternating 11200 / 11205) 32 at a time; how many were not
/// answered 200.
async fn flood(base: &str, count: usize, error_url: &str, first: usize) -> usize {
    let client = client();
    let url = format!("{base}/sms");
    let next = Arc::new(AtomicUsize::new(0));
    let wrong = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (client, url, next, wrong, error_url) = (
            client.clone(),
            url.clone(),
            Arc::clone(&next),
            Arc::clone(&wrong),
            error_url.to_owned(),
        );
        workers.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= count {
                    return;
                }
                let code = if n % 2 == 0 { "11200" } else { "11205" };
                let form = notice_form(first + n, code, &error_url);
                let signature = compute_signature(TOKEN, &url, &Params::from_form(form.as_bytes()));
                let answered = client
                    .post(&url)
                    .header(SIGNATURE_HEADER, signature)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(form)
                    .send()
                    .await;
                if !answered.is_ok_and(|answer| answer.status().is_success()) {
                    wrong.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    wrong.load(Ordering::SeqCst)
}

/// A notice with a signature that matches nothing, for another primary.
async fn forged(base: &str, n: usize) {
    let form = notice_form(n, "11200", "https://forged.example.com/sms");
    let _ = client()
        .post(format!("{base}/sms"))
        .header(SIGNATURE_HEADER, "Zm9yZ2VkIHNpZ25hdHVyZSEhIQ==")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await;
}

async fn incidents(base: &str) -> Vec<Value> {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let answer = admin(base, "GET", "/_twiml-fallback/incidents", Some(&auth), None).await;
    answer.json["incidents"].as_array().cloned().unwrap_or_default()
}

/// Polls `told` until it equals `expected` (then waits a moment more, so a duplicate would show),
/// for up to `within`.
async fn wait_told(sinks: &Sinks, running: &Running, expected: &Told, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let told = sinks.told(running);
        if &told == expected {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let again = sinks.told(running);
            return if &again == expected {
                Ok(())
            } else {
                Err(format!("then more arrived: {again:?}"))
            };
        }
        if Instant::now() >= deadline {
            return Err(format!("after {} s: {told:?}, expected {expected:?}", within.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the incident table against `launcher`; panics with every failure listed.
pub async fn run_incident_table(launcher: &dyn ReplayLauncher) {
    let mut failures: Vec<String> = Vec::new();
    flood_then_recovery(launcher, &mut failures).await;
    quiet_period_and_a_failing_sink(launcher, &mut failures).await;
    if !failures.is_empty() {
        panic!(
            "incidents against {}: {} failures:\n{}",
            launcher.name(),
            failures.len(),
            failures.join("\n")
        );
    }
}

async fn flood_then_recovery(launcher: &dyn ReplayLauncher, failures: &mut Vec<String>) {
    let sinks = Sinks::start().await;
    let app = ReplayApp::start().await;
    app.set_down(true);
    let state = std::env::temp_dir().join(format!("twiml-fallback-incidents-{}-flood", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).expect("state dir");
    let api_base = sinks.api.base_url.clone();
    let running = launcher
        .launch_for_replay(&sinks.config(&app, 3600), &[TOKEN], ADMIN_TOKEN, &state, &api_base)
        .await;
    let base = running.base_url.clone();
    let error_url = app.url("/sms");
    let count = flood_size();

    // Forged notices first: they must open nothing.
    for n in 0..20 {
        forged(&base, 900_000 + n).await;
    }
    let started = Instant::now();
    let wrong = flood(&base, count, &error_url, 0).await;
    let flood_took = started.elapsed();
    eprintln!(
        "{}: flood of {count} notices in {:.1} s ({:.0} req/s)",
        launcher.name(),
        flood_took.as_secs_f64(),
        count as f64 / flood_took.as_secs_f64()
    );
    if wrong > 0 {
        failures.push(format!("flood: {wrong} of {count} notices were not answered 200"));
    }
    // Email is told per recipient: two addresses, two messages of each.
    let opened = Told::of(&["incident-opened"], &["trigger"], &["OPEN"], &["OPEN", "OPEN"]);
    if let Err(why) = wait_told(&sinks, &running, &opened, Duration::from_secs(30)).await {
        failures.push(format!("flood: exactly one open notification per sink: {why}"));
    }
    let listed = incidents(&base).await;
    let codes = |incident: &Value| {
        (
            incident["error_codes"]["11200"].as_u64(),
            incident["error_codes"]["11205"].as_u64(),
        )
    };
    let half = (count / 2) as u64;
    match listed.as_slice() {
        [only] => {
            if only["status"] != "open"
                || only["origin"] != app.base_url.as_str()
                || only["notices"] != count as u64
                || codes(only) != (Some(count as u64 - half), Some(half))
                || only["kept"] != count as u64
                || only["numbers"].as_array().map(Vec::len) != Some(2)
            {
                failures.push(format!("flood: the incident's counts: {only}"));
            }
            let delivered = only["deliveries"]
                .as_array()
                .map(|all| all.iter().filter(|d| d["status"] == "delivered").count());
            if delivered != Some(5) {
                failures.push(format!("flood: every sink's notification delivered: {only}"));
            }
        }
        other => failures.push(format!(
            "flood: exactly one incident (forged requests open none), got {}: {other:?}",
            other.len()
        )),
    }
    let webhook = sinks.webhook.accepted();
    if let Some(open) = webhook.first() {
        let text = open["text"].as_str().unwrap_or("");
        // The flood is concurrent: the first notice filed may carry either code.
        if !text.contains(&format!("{} is failing", app.base_url))
            || !(text.contains("11200") || text.contains("11205"))
        {
            failures.push(format!("flood: the Slack text names the primary and the error: {text}"));
        }
        if open.to_string().contains("where is my order?") || open.to_string().contains(TOKEN) {
            failures.push("flood: a notification carries a message body or the auth token".to_owned());
        }
    }
    if let Some(trigger) = sinks.pagerduty.accepted().first() {
        if trigger["routing_key"] != "e2e0123456789abcdef0123456789abc"
            || trigger["payload"]["source"] != app.base_url.as_str()
            || trigger["payload"]["severity"] != "error"
            || !trigger["dedup_key"].as_str().is_some_and(|key| key.starts_with("twf-"))
        {
            failures.push(format!("flood: PagerDuty's trigger: {trigger}"));
        }
    }
    if let Some(text) = sinks.api.requests_to(ON_CALL).first() {
        if text.field("From") != Some("+14155550199")
            || text.account.as_deref() != Some(ACCOUNT)
            || text.user.as_deref() != Some(ACCOUNT)
            || text.password.as_deref() != Some(TOKEN)
        {
            failures.push(format!("flood: the text to the on-call phone: {text:?}"));
        }
    }
    let emails = sinks.emails(&running);
    if let Some((subject, text)) = emails.first() {
        if !subject.starts_with("[OPEN] twiml-fallback: ") || !text.contains("Incident twf-") {
            failures.push(format!("flood: the email: {subject:?} {text:?}"));
        }
    }

    // The primary is back: the next notice's recovery is answered, and the incident resolves.
    app.set_down(false);
    let form = notice_form(count + 1, "11200", &error_url);
    let url = format!("{base}/sms");
    let signature = compute_signature(TOKEN, &url, &Params::from_form(form.as_bytes()));
    let answer = client()
        .post(&url)
        .header(SIGNATURE_HEADER, signature)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await;
    let relayed = match answer {
        Ok(answer) => answer.text().await.unwrap_or_default(),
        Err(error) => error.to_string(),
    };
    if !relayed.contains("Got it: where is my order?") {
        failures.push(format!("recovery: the primary's answer is relayed: {relayed}"));
    }
    let resolved = Told::of(
        &["incident-opened", "incident-resolved"],
        &["trigger", "resolve"],
        &["OPEN", "RESOLVED"],
        &["OPEN", "OPEN", "RESOLVED", "RESOLVED"],
    );
    if let Err(why) = wait_told(&sinks, &running, &resolved, Duration::from_secs(30)).await {
        failures.push(format!("recovery: exactly one resolve per sink: {why}"));
    }
    let webhook = sinks.webhook.accepted();
    if let Some(resolve) = webhook.get(1) {
        if resolve["notices"] != count as u64
            || resolve["resolved_by"] != "recovery"
            || codes(resolve) != (Some(count as u64 - half), Some(half))
        {
            failures.push(format!("recovery: the resolve carries the totals: {resolve}"));
        }
    }
    let pagerduty = sinks.pagerduty.accepted();
    if let [trigger, resolve] = pagerduty.as_slice() {
        if resolve["event_action"] != "resolve" || resolve["dedup_key"] != trigger["dedup_key"] {
            failures.push(format!(
                "recovery: PagerDuty resolves the same dedup_key: {trigger} then {resolve}"
            ));
        }
    }
    let emails = sinks.emails(&running);
    if let Some((subject, text)) = emails.get(2) {
        if !subject.starts_with("[RESOLVED]") || !text.contains(&format!("In all: {count} fallback notices")) {
            failures.push(format!("recovery: the resolve email: {subject:?} {text:?}"));
        }
    }
    let listed = incidents(&base).await;
    if listed.len() != 1 || listed[0]["status"] != "resolved" || listed[0]["resolved_by"] != "recovery" {
        failures.push(format!(
            "recovery: the incident is resolved by the recovery: {listed:?}"
        ));
    }
    drop(running);
    let _ = std::fs::remove_dir_all(&state);
}

async fn quiet_period_and_a_failing_sink(launcher: &dyn ReplayLauncher, failures: &mut Vec<String>) {
    let sinks = Sinks::start().await;
    let app = ReplayApp::start().await;
    app.set_down(true);
    let state = std::env::temp_dir().join(format!("twiml-fallback-incidents-{}-quiet", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).expect("state dir");
    let api_base = sinks.api.base_url.clone();
    let running = launcher
        .launch_for_replay(&sinks.config(&app, 4), &[TOKEN], ADMIN_TOKEN, &state, &api_base)
        .await;
    // The webhook fails its first two tries (500): it is tried again, after one and two seconds.
    sinks.webhook.fail_next(2);
    let wrong = flood(&running.base_url, 5, &app.url("/sms"), 0).await;
    if wrong > 0 {
        failures.push(format!("quiet: {wrong} of 5 notices were not answered 200"));
    }
    let opened_elsewhere = Told::of(&[], &["trigger"], &["OPEN"], &["OPEN", "OPEN"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut others_first = false;
    while Instant::now() < deadline {
        let told = sinks.told(&running);
        if told.pagerduty == opened_elsewhere.pagerduty
            && told.sms == opened_elsewhere.sms
            && told.email == opened_elsewhere.email
        {
            // The others are told while the webhook still fails (or has only just recovered).
            others_first = sinks.webhook.received().iter().any(|received| received.status == 500);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !others_first {
        failures.push(format!(
            "quiet: the other sinks are told while the webhook fails: {:?}",
            sinks.told(&running)
        ));
    }
    let resolved = Told::of(
        &["incident-opened", "incident-resolved"],
        &["trigger", "resolve"],
        &["OPEN", "RESOLVED"],
        &["OPEN", "OPEN", "RESOLVED", "RESOLVED"],
    );
    if let Err(why) = wait_told(&sinks, &running, &resolved, Duration::from_secs(40)).await {
        failures.push(format!(
            "quiet: one open and one resolve per sink, the webhook's in order: {why}"
        ));
    }
    let tries: Vec<u16> = sinks
        .webhook
        .received()
        .iter()
        .map(|received| received.status)
        .collect();
    if tries != [500, 500, 200, 200] {
        failures.push(format!(
            "quiet: the webhook's tries (500, 500, then open and resolve): {tries:?}"
        ));
    }
    let listed = incidents(&running.base_url).await;
    match listed.as_slice() {
        [only] if only["resolved_by"] == "quiet" && only["notices"] == 5 => {
            let webhook_open = only["deliveries"].as_array().and_then(|all| {
                all.iter()
                    .find(|d| d["sink"] == "webhook" && d["kind"] == "open")
                    .cloned()
            });
            if webhook_open.as_ref().map(|d| d["attempts"].as_u64()) != Some(Some(3)) {
                failures.push(format!("quiet: the webhook's open took three tries: {webhook_open:?}"));
            }
        }
        other => failures.push(format!("quiet: one incident resolved by the quiet period: {other:?}")),
    }
    let logs = running
        .logs
        .as_ref()
        .map(|path| std::fs::read_to_string(path).unwrap_or_default())
        .unwrap_or_default();
    if logs.contains(TOKEN) || logs.contains("e2e0123456789abcdef0123456789abc") {
        failures.push("quiet: a credential appears in the endpoint's log".to_owned());
    }
    // JSON lines (the Worker) or text ones (serve), each naming the sink.
    if !logs.contains("\"sink\":\"webhook\"") && !logs.contains("sink=webhook") {
        failures.push("quiet: the webhook's failed tries are not logged with the sink".to_owned());
    }
    drop(running);
    let _ = std::fs::remove_dir_all(&state);
}
