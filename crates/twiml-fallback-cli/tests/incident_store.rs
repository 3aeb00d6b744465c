//! The incident rules over real SQLite on disk (the core's statements, run by rusqlite as
//! `serve` runs them): one incident per outage however many notices, one notification per sink
//! per event, retries that wait and never hold up another sink, resolves that wait for their
//! open, leases, reminders, purges.

use std::path::PathBuf;

use rusqlite::Connection;
use rusqlite::types::{Value, ValueRef};
use twiml_fallback::Channel;
use twiml_fallback::config::{Config, InboxSettings};
use twiml_fallback::edge::SendOutcome;
use twiml_fallback::inbox::{self, Sql, SqlValue, Statement};
use twiml_fallback::incident::{
    self, Alerting, DELIVERY_LEASE_MS, Dispatch, EmailOutcome, EmailSupport, Kind, Notice, ResolvedBy, Send,
    SinkOutcome,
};
use twiml_fallback::replay::TwilioApi;
use twiml_fallback::signature::SignatureVerifier;

const NOW: u64 = 1_780_000_000_000;

/// The core's driver over a rusqlite connection (what `serve`'s is, without the writer thread).
struct Driver(Connection, PathBuf);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.1);
        let _ = std::fs::remove_file(self.1.with_extension("sqlite3-wal"));
        let _ = std::fs::remove_file(self.1.with_extension("sqlite3-shm"));
    }
}

impl Sql for Driver {
    type Error = rusqlite::Error;

    fn run(&mut self, statement: &Statement) -> Result<Vec<Vec<SqlValue>>, rusqlite::Error> {
        let mut prepared = self.0.prepare_cached(statement.sql)?;
        let params = statement.params.iter().map(|value| match value {
            SqlValue::Null => Value::Null,
            SqlValue::Integer(number) => Value::Integer(*number),
            SqlValue::Text(text) => Value::Text(text.clone()),
        });
        let columns = prepared.column_count();
        let mut rows = prepared.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for index in 0..columns {
                values.push(match row.get_ref(index)? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(number) => SqlValue::Integer(number),
                    ValueRef::Real(number) => SqlValue::Text(number.to_string()),
                    ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
                        SqlValue::Text(String::from_utf8_lossy(bytes).into_owned())
                    }
                });
            }
            out.push(values);
        }
        Ok(out)
    }
}

fn database(name: &str) -> Driver {
    let path = std::env::temp_dir().join(format!(
        "twiml-fallback-incidents-{}-{name}.sqlite3",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let connection = Connection::open(&path).expect("open");
    connection
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .expect("pragmas");
    let mut driver = Driver(connection, path);
    inbox::migrate(&mut driver).expect("migrate");
    driver
}

const SINKS: &str = r#"
[alerts]
webhook_url = "https://hooks.example.com/slack"
email = ["ops@example.com"]
sms = ["+14155550100"]
sms_from = "+14155550199"
pagerduty_routing_key = "0123456789abcdef0123456789abcdef"
"#;

/// The sinks, resolving after 5 quiet seconds unless `extra` says otherwise.
fn alerting(extra: &str) -> Alerting {
    let quiet = if extra.contains("resolve_after_seconds") {
        ""
    } else {
        "resolve_after_seconds = 5\n"
    };
    let config = Config::from_toml(&format!(
        "{SINKS}{quiet}{extra}\n[alerts.smtp]\nurl = \"smtp://127.0.0.1:2525\"\nfrom = \"alerts@example.com\"\n"
    ))
    .unwrap_or_else(|errors| panic!("{errors}"));
    Alerting::new(
        &config,
        &SignatureVerifier::from_tokens(["token".to_owned()]),
        TwilioApi::new("http://127.0.0.1:9").expect("api"),
        EmailSupport::Available,
    )
}

fn notice(origin: &str, code: &str, n: u64, at: u64) -> Notice {
    let mut notice = Notice::from_error_url(Some(&format!("{origin}/sms?n={n}")), code, at);
    notice.channel = Some(if n.is_multiple_of(10) {
        Channel::Voice
    } else {
        Channel::Messaging
    });
    notice.to = Some(format!("+1415555{:04}", n % 3));
    notice.account_sid = Some(format!("AC{}", "c".repeat(32)));
    notice.kept = true;
    notice
}

fn ok() -> SendOutcome<'static> {
    SendOutcome::Answered {
        status: http::StatusCode::ACCEPTED,
        content_type: None,
        body: b"",
    }
}

fn status(code: u16) -> SendOutcome<'static> {
    SendOutcome::Answered {
        status: http::StatusCode::from_u16(code).expect("status"),
        content_type: None,
        body: b"{}",
    }
}

/// Settles every dispatch as `outcome_of` says; returns (sink, kind) of each.
fn deliver(
    alerting: &Alerting,
    sql: &mut Driver,
    dispatches: &[Dispatch],
    at: u64,
    mut outcome_of: impl FnMut(&Dispatch) -> Option<SendOutcome<'static>>,
) -> Vec<(String, Kind)> {
    let sent = EmailOutcome::Sent;
    let mut seen = Vec::new();
    for dispatch in dispatches {
        seen.push((dispatch.sink.clone(), dispatch.kind));
        let outcome = match (&dispatch.send, outcome_of(dispatch)) {
            (_, Some(outcome)) => SinkOutcome::Http(outcome),
            (Send::Email(_), None) => SinkOutcome::Email(&sent),
            (Send::Http(_), None) => SinkOutcome::Http(ok()),
        };
        alerting.settle(sql, dispatch, outcome, at).expect("settle");
    }
    seen
}

fn kinds(seen: &[(String, Kind)]) -> Vec<String> {
    let mut out: Vec<String> = seen
        .iter()
        .map(|(sink, kind)| format!("{sink}:{}", kind.as_str()))
        .collect();
    out.sort();
    out
}

fn incidents(sql: &mut Driver) -> Vec<serde_json::Value> {
    incident::list(sql, 50)
        .expect("list")
        .iter()
        .map(|(incident, deliveries)| incident.to_json(deliveries, NOW))
        .collect()
}

#[test]
fn a_flood_of_notices_opens_one_incident_and_tells_each_sink_once() {
    let mut sql = database("flood");
    let alerting = alerting("");
    let mut opened = 0;
    let mut wakes = 0;
    for n in 0..10_000u64 {
        let code = if n % 2 == 0 { "11200" } else { "11205" };
        let recorded = alerting
            .record(&mut sql, &notice("https://app.example.com", code, n, NOW + n), NOW + n)
            .expect("record");
        opened += usize::from(recorded.opened);
        wakes += usize::from(recorded.wake);
        // The shell ticks whenever it is woken, and sometimes between.
        if recorded.wake || n % 1000 == 999 {
            let tick = alerting.tick(&mut sql, NOW + n).expect("tick");
            let seen = deliver(&alerting, &mut sql, &tick.dispatches, NOW + n, |_| None);
            if recorded.wake {
                assert_eq!(
                    kinds(&seen),
                    [
                        "email:ops@example.com:open",
                        "pagerduty:open",
                        "sms:+14155550100:open",
                        "webhook:open"
                    ]
                );
            } else {
                assert!(seen.is_empty(), "nothing more to send: {seen:?}");
            }
        }
    }
    assert_eq!((opened, wakes), (1, 1));
    let listed = incidents(&mut sql);
    assert_eq!(listed.len(), 1);
    let only = &listed[0];
    assert_eq!(only["origin"], "https://app.example.com");
    assert_eq!(only["status"], "open");
    assert_eq!(only["notices"], 10_000);
    assert_eq!(only["error_codes"]["11200"], 5000);
    assert_eq!(only["error_codes"]["11205"], 5000);
    assert_eq!(
        (only["calls"].as_u64(), only["messages"].as_u64()),
        (Some(1000), Some(9000))
    );
    assert_eq!(only["kept"], 10_000);
    assert_eq!(only["numbers"].as_array().map(Vec::len), Some(3));
    assert_eq!(only["severity"], "critical");
    let deliveries = only["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 4);
    assert!(
        deliveries
            .iter()
            .all(|d| d["status"] == "delivered" && d["attempts"] == 1),
        "{deliveries:?}"
    );

    // The primary answers again: one resolve per sink, with the totals, once.
    let line = incident::primary_answered(&mut sql, "https://app.example.com", ResolvedBy::Replay, NOW + 20_000)
        .expect("resolve")
        .expect("it was open");
    assert!(line.to_json().contains("\"by\":\"replay\""), "{line}");
    let tick = alerting.tick(&mut sql, NOW + 20_000).expect("tick");
    let Some(Send::Http(webhook)) = tick
        .dispatches
        .iter()
        .find(|dispatch| dispatch.sink == "webhook")
        .map(|dispatch| &dispatch.send)
    else {
        panic!("a webhook resolve");
    };
    let body: serde_json::Value = serde_json::from_str(webhook.body.as_deref().unwrap_or("")).expect("JSON");
    assert_eq!(body["event"], "incident-resolved");
    assert_eq!(body["notices"], 10_000);
    assert_eq!(body["duration_seconds"], 20);
    let seen = deliver(&alerting, &mut sql, &tick.dispatches, NOW + 20_000, |_| None);
    assert_eq!(
        kinds(&seen),
        [
            "email:ops@example.com:resolve",
            "pagerduty:resolve",
            "sms:+14155550100:resolve",
            "webhook:resolve"
        ]
    );
    assert!(
        alerting
            .tick(&mut sql, NOW + 30_000)
            .expect("tick")
            .dispatches
            .is_empty()
    );
    assert_eq!(
        incident::primary_answered(&mut sql, "https://app.example.com", ResolvedBy::Recovery, NOW + 30_000)
            .expect("resolve"),
        None,
        "resolved once"
    );
    assert_eq!(incidents(&mut sql)[0]["resolved_by"], "replay");

    // The next failure is a new incident.
    let again = alerting
        .record(
            &mut sql,
            &notice("https://app.example.com", "11200", 1, NOW + 40_000),
            NOW + 40_000,
        )
        .expect("record");
    assert!(again.opened);
    let listed = incidents(&mut sql);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["status"], "open", "open first");
    assert_eq!(listed[1]["status"], "resolved");
}

#[test]
fn a_notice_filed_after_its_incident_resolved_counts_into_it_and_reopens_nothing() {
    let mut sql = database("late");
    let alerting = alerting("");
    alerting
        .record(&mut sql, &notice("https://app.example.com", "11200", 1, NOW), NOW)
        .expect("record");
    incident::primary_answered(&mut sql, "https://app.example.com", ResolvedBy::Recovery, NOW + 3000).expect("resolve");
    // Received before the resolve (a recovery that took its deadline), filed after it.
    let late = alerting
        .record(
            &mut sql,
            &notice("https://app.example.com", "11205", 2, NOW + 2000),
            NOW + 4000,
        )
        .expect("record");
    assert!(!late.opened && !late.wake, "{late:?}");
    let listed = incidents(&mut sql);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["notices"], 2);
    assert_eq!(listed[0]["status"], "resolved");
    // A notice received after the resolve is a new outage.
    let again = alerting
        .record(
            &mut sql,
            &notice("https://app.example.com", "11200", 3, NOW + 5000),
            NOW + 5000,
        )
        .expect("record");
    assert!(again.opened);
    assert_eq!(incidents(&mut sql).len(), 2);
}

#[test]
fn a_settle_for_a_claim_that_outlived_its_lease_does_not_overwrite_the_newer_one() {
    let mut sql = database("stale");
    let alerting = alerting("resolve_after_seconds = 3600\n");
    alerting
        .record(&mut sql, &notice("https://app.example.com", "11200", 1, NOW), NOW)
        .expect("record");
    let first = alerting.tick(&mut sql, NOW).expect("tick");
    let again = alerting.tick(&mut sql, NOW + DELIVERY_LEASE_MS).expect("tick");
    assert_eq!((first.dispatches.len(), again.dispatches.len()), (4, 4));
    // The newer claim succeeds; the old one's failure, arriving late, changes nothing.
    deliver(&alerting, &mut sql, &again.dispatches, NOW + DELIVERY_LEASE_MS, |_| {
        None
    });
    deliver(
        &alerting,
        &mut sql,
        &first.dispatches,
        NOW + DELIVERY_LEASE_MS + 10,
        |_| Some(status(503)),
    );
    let listed = incidents(&mut sql);
    let deliveries = listed[0]["deliveries"].as_array().expect("deliveries");
    assert!(deliveries.iter().all(|d| d["status"] == "delivered"), "{deliveries:?}");
    assert!(
        alerting
            .tick(&mut sql, NOW + 10 * DELIVERY_LEASE_MS)
            .expect("tick")
            .dispatches
            .is_empty()
    );
}

#[test]
fn a_quiet_period_resolves_and_each_origin_is_its_own_incident() {
    let mut sql = database("quiet");
    let alerting = alerting("");
    alerting
        .record(&mut sql, &notice("https://app.example.com", "11200", 1, NOW), NOW)
        .expect("record");
    alerting
        .record(
            &mut sql,
            &notice("https://other.example.com:8443", "11205", 1, NOW + 3000),
            NOW + 3000,
        )
        .expect("record");
    let tick = alerting.tick(&mut sql, NOW + 3000).expect("tick");
    assert_eq!(tick.dispatches.len(), 8, "two incidents, four sinks each");
    deliver(&alerting, &mut sql, &tick.dispatches, NOW + 3000, |_| None);
    // The next wake-up is the first quiet period's end.
    let tick = alerting.tick(&mut sql, NOW + 4000).expect("tick");
    assert!(tick.dispatches.is_empty());
    assert_eq!(tick.next_at, Some(NOW + 5000));
    let tick = alerting.tick(&mut sql, NOW + 5000).expect("tick");
    assert_eq!(tick.lines.len(), 1, "{:?}", tick.lines);
    assert!(tick.lines[0].to_json().contains("\"by\":\"quiet\""));
    let resolved: Vec<&str> = tick.dispatches.iter().map(|d| d.incident_id.as_str()).collect();
    assert_eq!(resolved.len(), 4);
    assert!(tick.dispatches.iter().all(|d| d.kind == Kind::Resolve));
    deliver(&alerting, &mut sql, &tick.dispatches, NOW + 5000, |_| None);
    let listed = incidents(&mut sql);
    assert_eq!(listed[0]["origin"], "https://other.example.com:8443");
    assert_eq!(listed[0]["status"], "open");
    assert_eq!(listed[1]["resolved_by"], "quiet");
    assert_eq!(listed[1]["duration_seconds"], 5);
}

#[test]
fn a_failing_sink_is_retried_with_backoff_and_holds_up_no_other() {
    let mut sql = database("retry");
    let alerting = alerting("");
    alerting
        .record(&mut sql, &notice("https://app.example.com", "11200", 1, NOW), NOW)
        .expect("record");
    let tick = alerting.tick(&mut sql, NOW).expect("tick");
    deliver(&alerting, &mut sql, &tick.dispatches, NOW, |dispatch| {
        match dispatch.sink.as_str() {
            "webhook" => Some(status(503)),
            "pagerduty" => Some(status(400)),
            _ => None,
        }
    });
    // The webhook waits a second; PagerDuty's 400 is final.
    let tick = alerting.tick(&mut sql, NOW + 500).expect("tick");
    assert!(tick.dispatches.is_empty());
    assert_eq!(tick.next_at, Some(NOW + 1000));
    let tick = alerting.tick(&mut sql, NOW + 1000).expect("tick");
    assert_eq!(
        kinds(&deliver(&alerting, &mut sql, &tick.dispatches, NOW + 1000, |_| Some(
            SendOutcome::TimedOut
        ))),
        ["webhook:open"]
    );
    assert_eq!(tick.dispatches[0].attempt, 2);
    // While the webhook's open waits, its resolve waits behind it; the others resolve at once.
    incident::primary_answered(&mut sql, "https://app.example.com", ResolvedBy::Recovery, NOW + 1500).expect("resolve");
    let tick = alerting.tick(&mut sql, NOW + 1500).expect("tick");
    assert_eq!(
        kinds(&deliver(&alerting, &mut sql, &tick.dispatches, NOW + 1500, |_| None)),
        [
            "email:ops@example.com:resolve",
            "pagerduty:resolve",
            "sms:+14155550100:resolve"
        ]
    );
    let tick = alerting.tick(&mut sql, NOW + 3000).expect("tick");
    assert_eq!(
        kinds(&deliver(&alerting, &mut sql, &tick.dispatches, NOW + 3000, |_| None)),
        ["webhook:open"]
    );
    let tick = alerting.tick(&mut sql, NOW + 3000).expect("tick");
    assert_eq!(
        kinds(&deliver(&alerting, &mut sql, &tick.dispatches, NOW + 3000, |_| None)),
        ["webhook:resolve"]
    );
    let listed = incidents(&mut sql);
    let deliveries = listed[0]["deliveries"].as_array().expect("deliveries");
    let pagerduty_open = deliveries
        .iter()
        .find(|d| d["sink"] == "pagerduty" && d["kind"] == "open")
        .expect("pagerduty open");
    assert_eq!(pagerduty_open["status"], "failed");
    assert!(
        pagerduty_open["last_error"].as_str().unwrap_or("").contains("400"),
        "{pagerduty_open}"
    );
    let webhook_open = deliveries
        .iter()
        .find(|d| d["sink"] == "webhook" && d["kind"] == "open")
        .expect("webhook open");
    assert_eq!(
        (webhook_open["status"].as_str(), webhook_open["attempts"].as_u64()),
        (Some("delivered"), Some(3))
    );
}

#[test]
fn a_sink_that_never_answers_is_given_up_after_the_last_attempt() {
    let mut sql = database("give-up");
    let alerting = alerting("");
    alerting
        .record(&mut sql, &notice("https://app.example.com", "11200", 1, NOW), NOW)
        .expect("record");
    // As a shell drives it: send what is due, then tick again; when nothing is due, sleep until
    // the next time the core names.
    let mut at = NOW;
    let mut tries = 0;
    for _ in 0..100 {
        let tick = alerting.tick(&mut sql, at).expect("tick");
        if tick.dispatches.is_empty() {
            match tick.next_at {
                Some(next) => at = next.max(at + 1),
                None => break,
            }
            continue;
        }
        let seen = deliver(&alerting, &mut sql, &tick.dispatches, at, |dispatch| {
            (dispatch.sink == "webhook").then_some(status(500))
        });
        tries += seen
            .iter()
            .filter(|(sink, kind)| sink == "webhook" && *kind == Kind::Open)
            .count();
    }
    assert_eq!(tries, incident::MAX_DELIVERY_ATTEMPTS as usize);
    let listed = incidents(&mut sql);
    let webhook = listed[0]["deliveries"]
        .as_array()
        .and_then(|all| all.iter().find(|d| d["sink"] == "webhook").cloned())
        .expect("webhook");
    assert_eq!(webhook["status"], "failed");
}

#[test]
fn a_claimed_notification_whose_sender_died_is_sent_again_after_its_lease() {
    let mut sql = database("lease");
    let alerting = alerting("");
    alerting
        .record(&mut sql, &notice("https://app.example.com", "11200", 1, NOW), NOW)
        .expect("record");
    assert_eq!(alerting.tick(&mut sql, NOW).expect("tick").dispatches.len(), 4);
    // The shell died before settling any: nothing is handed out twice meanwhile…
    assert!(alerting.tick(&mut sql, NOW + 1000).expect("tick").dispatches.is_empty());
    // … and all are tried again once the lease ends.
    let again = alerting.tick(&mut sql, NOW + DELIVERY_LEASE_MS).expect("tick");
    assert_eq!(again.dispatches.len(), 4);
    assert!(again.dispatches.iter().all(|d| d.attempt == 2));
}

#[test]
fn reminders_come_every_remind_minutes_while_open_but_never_page_again() {
    let mut sql = database("remind");
    let alerting = alerting("remind_minutes = 1\nresolve_after_seconds = 3600\n");
    alerting
        .record(&mut sql, &notice("https://app.example.com", "11200", 1, NOW), NOW)
        .expect("record");
    let tick = alerting.tick(&mut sql, NOW).expect("tick");
    deliver(&alerting, &mut sql, &tick.dispatches, NOW, |_| None);
    assert_eq!(
        alerting.tick(&mut sql, NOW + 1000).expect("tick").next_at,
        Some(NOW + 60_000)
    );
    let tick = alerting.tick(&mut sql, NOW + 60_000).expect("tick");
    assert_eq!(
        kinds(&deliver(&alerting, &mut sql, &tick.dispatches, NOW + 60_000, |_| None)),
        [
            "email:ops@example.com:reminder",
            "sms:+14155550100:reminder",
            "webhook:reminder"
        ]
    );
    assert!(
        alerting
            .tick(&mut sql, NOW + 90_000)
            .expect("tick")
            .dispatches
            .is_empty()
    );
    let tick = alerting.tick(&mut sql, NOW + 120_000).expect("tick");
    assert_eq!(tick.dispatches.len(), 3);
}

#[test]
fn resolved_incidents_are_purged_with_the_inbox() {
    let mut sql = database("purge");
    let alerting = alerting("");
    alerting
        .record(&mut sql, &notice("https://app.example.com", "11200", 1, NOW), NOW)
        .expect("record");
    incident::primary_answered(&mut sql, "https://app.example.com", ResolvedBy::Recovery, NOW).expect("resolve");
    alerting
        .record(&mut sql, &notice("https://other.example.com", "11200", 1, NOW), NOW)
        .expect("record");
    let settings = InboxSettings::default();
    inbox::purge(
        &mut sql,
        NOW + u64::from(settings.retention_days) * 86_400_000 + 1,
        settings,
    )
    .expect("purge");
    let listed = incidents(&mut sql);
    assert_eq!(listed.len(), 1, "the open one stays: {listed:?}");
    assert_eq!(listed[0]["origin"], "https://other.example.com");
}
