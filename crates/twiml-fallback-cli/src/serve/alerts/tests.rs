//! The notifier as `serve` runs it — real SQLite (the inbox's file and writer thread), real HTTP
//! to local fake sinks (a webhook, PagerDuty, the Messages API), a fake SMTP relay — driven
//! through the same `Server` functions the request handler calls.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use clap::Parser as _;
use serde_json::Value;
use twiml_fallback::admin::AlertTest;
use twiml_fallback::config::{Config, InboxSettings};
use twiml_fallback::incident::{self, Notice};
use twiml_fallback::signature::UrlPolicy;
use twiml_fallback::webhook::Channel;

use super::super::inbox::Inbox;
use super::super::smtp_fake::{Behaviour, FakeSmtp};
use super::super::{Server, now_ms};
use crate::cli::{Cli, Command};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const ROUTING_KEY: &str = "0123456789abcdef0123456789abcdef";
const ORIGIN: &str = "https://app.example.com";

/// What a fake sink answers: a status, or (0) nothing ever.
const HANG: u16 = 0;

/// One request a fake sink got.
#[derive(Clone, Debug)]
struct Got {
    path: String,
    body: String,
}

/// Local HTTP sinks: every path answers 200 (201 for the Messages API) unless told otherwise,
/// one planned status per request.
#[derive(Clone, Default)]
struct Sinks {
    base: String,
    got: Arc<Mutex<Vec<Got>>>,
    plan: Arc<Mutex<HashMap<String, VecDeque<u16>>>>,
}

impl Sinks {
    async fn start() -> Self {
        let mut sinks = Sinks::default();
        let (got, plan) = (Arc::clone(&sinks.got), Arc::clone(&sinks.plan));
        let router = Router::new().fallback(move |request: Request| {
            let (got, plan) = (Arc::clone(&got), Arc::clone(&plan));
            async move {
                let path = request.uri().path().to_owned();
                let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                    .await
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_default();
                got.lock().expect("got").push(Got {
                    path: path.clone(),
                    body,
                });
                let planned = plan.lock().expect("plan").get_mut(&path).and_then(VecDeque::pop_front);
                let status = planned.unwrap_or(if path.ends_with("Messages.json") { 201 } else { 200 });
                if status == HANG {
                    std::future::pending::<()>().await;
                }
                (
                    http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK),
                    "{\"sid\": \"SM00000000000000000000000000000000\"}",
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        sinks.base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        sinks
    }

    fn answer(&self, path: &str, statuses: &[u16]) {
        self.plan
            .lock()
            .expect("plan")
            .insert(path.to_owned(), statuses.iter().copied().collect());
    }

    fn got(&self, path_end: &str) -> Vec<Got> {
        self.got
            .lock()
            .expect("got")
            .iter()
            .filter(|got| got.path.ends_with(path_end))
            .cloned()
            .collect()
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("twiml-fallback-alerts-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp dir");
        Self(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("inbox.sqlite3")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(sinks: &Sinks, smtp: Option<&FakeSmtp>, extra: &str) -> Config {
    let email = smtp.map_or(String::new(), |smtp| {
        format!(
            "email = [\"ops@example.com\"]\n[alerts.smtp]\nurl = \"{}\"\nfrom = \"twiml-fallback <alerts@example.com>\"\n",
            smtp.url()
        )
    });
    let text = format!(
        "[alerts]\nwebhook_url = \"{base}/hook\"\npagerduty_routing_key = \"{ROUTING_KEY}\"\npagerduty_url = \"{base}/pd\"\n\
         sms = [\"+14155550100\"]\nsms_from = \"+14155550199\"\n{extra}\n{email}",
        base = sinks.base
    );
    Config::from_toml(&text).unwrap_or_else(|errors| panic!("{errors}\n{text}"))
}

/// A `Server` as `serve` builds it, over the inbox at `dir`, texting through `sinks`.
fn build(dir: &TempDir, config: Config, sinks: &Sinks) -> Server {
    let Ok(Cli {
        command: Command::Serve(args),
    }) = Cli::try_parse_from([
        "twiml-fallback",
        "serve",
        "--auth-token",
        "tok",
        "--api-base",
        &sinks.base,
    ])
    else {
        panic!("serve's arguments parse");
    };
    let settings = InboxSettings {
        retention_days: 30,
        max_entries: 10_000,
    };
    let (inbox, _) = Inbox::open(&dir.file(), settings, now_ms, |_| {}).expect("an inbox");
    Server::build(&args, config, UrlPolicy::as_received(), Some(inbox)).unwrap_or_else(|error| panic!("{error}"))
}

fn notice(code: &str, channel: Channel) -> Notice {
    let mut notice = Notice::from_error_url(Some("https://app.example.com/sms?x=1"), code, now_ms());
    notice.channel = Some(channel);
    notice.to = Some("+14155550199".to_owned());
    notice.account_sid = Some(ACCOUNT.to_owned());
    notice.kept = channel == Channel::Messaging;
    notice
}

/// Waits (at most 15 s) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (at most 15 s) until the incidents, as listed, satisfy `done`.
async fn until_listed(server: &Server, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let listed = incidents(server).await;
        if done(&listed) {
            return listed;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "timed out waiting for {what}: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The incidents as the admin API lists them.
async fn incidents(server: &Server) -> Vec<Value> {
    let inbox = server.inbox.as_ref().expect("an inbox");
    let now = now_ms();
    inbox
        .run(move |sql| {
            incident::list(sql, 50).map(|all| {
                all.iter()
                    .map(|(incident, deliveries)| incident.to_json(deliveries, now))
                    .collect::<Vec<_>>()
            })
        })
        .await
        .expect("listed")
}

fn statuses(incident: &Value) -> Vec<(String, String, String, u64)> {
    incident["deliveries"]
        .as_array()
        .map(|deliveries| {
            deliveries
                .iter()
                .map(|delivery| {
                    (
                        delivery["sink"].as_str().unwrap_or("").to_owned(),
                        delivery["kind"].as_str().unwrap_or("").to_owned(),
                        delivery["status"].as_str().unwrap_or("").to_owned(),
                        delivery["attempts"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_opens_one_incident_told_once_per_sink_and_a_recovery_resolves_it_once_with_the_totals() {
    let dir = TempDir::new("flood");
    let sinks = Sinks::start().await;
    let smtp = FakeSmtp::start(Behaviour::Accept).await;
    let server = Arc::new(build(
        &dir,
        config(&sinks, Some(&smtp), "resolve_after_seconds = 600"),
        &sinks,
    ));
    tokio::spawn(Arc::clone(&server).notify_forever());
    for index in 0..400 {
        let (code, channel) = match index % 4 {
            0 => ("11205", Channel::Voice),
            1 => ("11205", Channel::Messaging),
            _ => ("11200", Channel::Messaging),
        };
        server.file_notice(notice(code, channel)).await;
    }
    until_listed(&server, "every notice counted", |listed| {
        listed.first().is_some_and(|incident| incident["notices"] == 400)
    })
    .await;
    until("the open notification on every sink", || {
        sinks.got("/hook").len() == 1
            && sinks.got("/pd").len() == 1
            && sinks.got("Messages.json").len() == 1
            && smtp.received().len() == 1
    })
    .await;
    // Nothing more comes of the flood.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sinks.got("/hook").len(), 1);
    assert_eq!(sinks.got("/pd").len(), 1);
    assert_eq!(sinks.got("Messages.json").len(), 1);
    assert_eq!(smtp.received().len(), 1);
    let opened = json(&sinks.got("/hook")[0].body);
    assert_eq!(opened["event"], "incident-opened");
    assert_eq!(opened["origin"], ORIGIN);
    let trigger = json(&sinks.got("/pd")[0].body);
    assert_eq!(
        (trigger["event_action"].as_str(), trigger["routing_key"].as_str()),
        (Some("trigger"), Some(ROUTING_KEY))
    );
    assert_eq!(trigger["payload"]["severity"], "critical", "calls failed too");
    let text = &sinks.got("Messages.json")[0].body;
    assert!(
        text.contains("To=%2B14155550100") && text.contains("From=%2B14155550199"),
        "{text}"
    );
    let mail = &smtp.received()[0];
    assert_eq!(
        (mail.from.as_str(), mail.to.as_slice()),
        ("alerts@example.com", &["ops@example.com".to_owned()][..])
    );
    assert!(mail.data.contains("X-Twiml-Fallback-Incident: twf-"), "{}", mail.data);

    // The primary answers a recovery (three requests at once): one resolve per sink.
    for _ in 0..3 {
        server.primary_answered(ORIGIN.to_owned());
    }
    until("the resolve on every sink", || {
        sinks.got("/hook").len() == 2
            && sinks.got("/pd").len() == 2
            && sinks.got("Messages.json").len() == 2
            && smtp.received().len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sinks.got("/hook").len(), 2, "one resolve, however many recoveries");
    let resolved = json(&sinks.got("/hook")[1].body);
    assert_eq!(resolved["event"], "incident-resolved");
    assert_eq!(resolved["resolved_by"], "recovery");
    assert_eq!(resolved["notices"], 400);
    assert_eq!(resolved["error_codes"]["11200"], 200);
    assert_eq!(resolved["error_codes"]["11205"], 200);
    assert_eq!(
        (resolved["calls"].as_u64(), resolved["messages"].as_u64()),
        (Some(100), Some(300))
    );
    let resolve = json(&sinks.got("/pd")[1].body);
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
    let listed = incidents(&server).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], "resolved");
    assert!(
        statuses(&listed[0])
            .iter()
            .all(|(_, _, status, attempts)| status == "delivered" && *attempts == 1),
        "{:?}",
        statuses(&listed[0])
    );
    assert_eq!(statuses(&listed[0]).len(), 8, "open and resolve for 4 sinks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_is_tried_again_and_a_hanging_one_holds_up_no_other() {
    let dir = TempDir::new("failing");
    let sinks = Sinks::start().await;
    sinks.answer("/hook", &[503, 200]);
    sinks.answer("/pd", &[HANG]);
    let smtp = FakeSmtp::start(Behaviour::Refuse(451)).await;
    let server = Arc::new(build(&dir, config(&sinks, Some(&smtp), ""), &sinks));
    tokio::spawn(Arc::clone(&server).notify_forever());
    let started = Instant::now();
    server.file_notice(notice("11200", Channel::Messaging)).await;
    until("the text", || sinks.got("Messages.json").len() == 1).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "PagerDuty hanging and the webhook failing held up the text: {:?}",
        started.elapsed()
    );
    until("the webhook's second try", || sinks.got("/hook").len() == 2).await;
    until("the relay's second try", || smtp.attempts() >= 2).await;
    smtp.set(Behaviour::Accept);
    until_listed(&server, "the webhook settled as delivered", |listed| {
        listed.first().is_some_and(|incident| {
            statuses(incident)
                .iter()
                .any(|(sink, _, status, attempts)| sink == "webhook" && status == "delivered" && *attempts == 2)
        })
    })
    .await;
    until("the email on a later try", || smtp.received().len() == 1).await;
    let listed = incidents(&server).await;
    let all = statuses(&listed[0]);
    assert!(
        all.iter()
            .any(|(sink, kind, status, _)| sink == "pagerduty" && kind == "open" && status == "sending"),
        "PagerDuty is still in flight: {all:?}"
    );
    assert!(
        all.iter()
            .any(|(sink, _, status, attempts)| sink.starts_with("sms:") && status == "delivered" && *attempts == 1),
        "{all:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_previous_run_left_in_the_outbox_goes_out_at_start() {
    let dir = TempDir::new("resume");
    let sinks = Sinks::start().await;
    {
        // A run that filed a notice and stopped before its notifier sent anything.
        let before = build(&dir, config(&sinks, None, ""), &sinks);
        let inbox = before.inbox.as_ref().expect("an inbox");
        let alerting = Arc::clone(&before.alerts.alerting);
        let filed = notice("11200", Channel::Messaging);
        let recorded = inbox
            .run(move |sql| alerting.record(sql, &filed, now_ms()))
            .await
            .expect("recorded");
        assert!(recorded.opened && recorded.wake);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(sinks.got("/hook").is_empty());
    let after = Arc::new(build(&dir, config(&sinks, None, ""), &sinks));
    tokio::spawn(Arc::clone(&after).notify_forever());
    until("the open notification, with no wake", || {
        sinks.got("/hook").len() == 1 && sinks.got("/pd").len() == 1 && sinks.got("Messages.json").len() == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_period_resolves_the_incident_and_every_sink_hears_it() {
    let dir = TempDir::new("quiet");
    let sinks = Sinks::start().await;
    let server = Arc::new(build(&dir, config(&sinks, None, "resolve_after_seconds = 1"), &sinks));
    tokio::spawn(Arc::clone(&server).notify_forever());
    server.file_notice(notice("11200", Channel::Messaging)).await;
    until("the resolve after the quiet period", || sinks.got("/hook").len() == 2).await;
    let resolved = json(&sinks.got("/hook")[1].body);
    assert_eq!(
        (resolved["event"].as_str(), resolved["resolved_by"].as_str()),
        (Some("incident-resolved"), Some("quiet"))
    );
    until("PagerDuty's resolve", || sinks.got("/pd").len() == 2).await;
    assert_eq!(json(&sinks.got("/pd")[1].body)["event_action"], "resolve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_test_tries_every_sink_once_and_says_how_each_went() {
    let dir = TempDir::new("test");
    let sinks = Sinks::start().await;
    let smtp = FakeSmtp::start(Behaviour::Accept).await;
    let server = Arc::new(build(&dir, config(&sinks, Some(&smtp), ""), &sinks));

    // No incident yet, no account asked for: the text cannot be sent.
    let answer = server.alert_test(AlertTest::default()).await;
    assert_eq!(answer.status, http::StatusCode::BAD_GATEWAY);
    let body = json(&answer.body);
    let results: Vec<(String, String, bool)> = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|result| {
            (
                result["sink"].as_str().unwrap_or("").to_owned(),
                result["kind"].as_str().unwrap_or("").to_owned(),
                result["delivered"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let expect = |sink: &str, kind: &str, delivered: bool| (sink.to_owned(), kind.to_owned(), delivered);
    assert!(results.contains(&expect("webhook", "test", true)), "{results:?}");
    assert!(
        results.contains(&expect("email:ops@example.com", "test", true)),
        "{results:?}"
    );
    assert!(results.contains(&expect("pagerduty", "test", true)), "{results:?}");
    assert!(results.contains(&expect("pagerduty", "resolve", true)), "{results:?}");
    assert!(
        results.contains(&expect("sms:+14155550100", "test", false)),
        "{results:?}"
    );
    let pagerduty = sinks.got("/pd");
    assert_eq!(pagerduty.len(), 2);
    assert_eq!(
        (
            json(&pagerduty[0].body)["event_action"].as_str(),
            json(&pagerduty[1].body)["event_action"].as_str()
        ),
        (Some("trigger"), Some("resolve")),
        "the trigger first, then its resolve"
    );
    assert!(sinks.got("Messages.json").is_empty());
    assert_eq!(smtp.received().len(), 1);

    // With an account: every sink takes it.
    let answer = server
        .alert_test(AlertTest {
            account_sid: Some(ACCOUNT.to_owned()),
        })
        .await;
    assert_eq!(answer.status, http::StatusCode::OK, "{}", answer.body);
    assert_eq!(sinks.got("Messages.json").len(), 1);
    assert!(sinks.got("Messages.json")[0].path.contains(ACCOUNT));
    assert!(incidents(&server).await.is_empty(), "a test opens no incident");

    // Without [alerts]: nothing to test.
    let bare = build(
        &TempDir::new("test-bare"),
        Config::from_toml("").expect("empty"),
        &sinks,
    );
    let answer = Arc::new(bare).alert_test(AlertTest::default()).await;
    assert_eq!(answer.status, http::StatusCode::CONFLICT);
}
