//! The core's statements, run by this driver on real SQLite files.

use std::sync::Arc;

use twiml_fallback::Channel;
use twiml_fallback::inbox::store::{Cursor, ListQuery, SCHEMA_VERSION, count};
use twiml_fallback::inbox::{
    Capture, Entry, Source, Status, StoreOutcome, capture, dismiss, get, list, migrate, purge, store,
};
use twiml_fallback::webhook::Params;

use super::*;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("twiml-fallback-inbox-{name}-{}", std::process::id()));
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

fn entry(sid: &str, at_ms: u64) -> Entry {
    let form = if sid.starts_with("CA") {
        format!("CallSid={sid}&From=%2B14155550100&To=%2B14155550199&CallStatus=ringing")
    } else {
        format!(
            "MessageSid={sid}&From=%2B14155550100&To=%2B14155550199&Body=hello+{sid}&MediaUrl0=https%3A%2F%2Fm%2F{sid}"
        )
    };
    kept(&form, at_ms)
}

/// The entry the edge keeps for a request with this form, received at `at_ms`.
fn kept(form: &str, at_ms: u64) -> Entry {
    match capture(
        &Params::from_form(form.as_bytes()),
        "POST",
        "https://f.example.com/sms",
        at_ms,
        Source::Edge,
    ) {
        Capture::Keep(entry) => *entry,
        Capture::Skip(skip) => panic!("{skip:?}"),
    }
}

fn settings(max_entries: u64) -> InboxSettings {
    InboxSettings {
        retention_days: 30,
        max_entries,
    }
}

#[test]
fn an_entry_reads_back_exactly_as_stored_and_a_second_copy_is_a_duplicate() {
    let dir = TempDir::new("roundtrip");
    let connection = open(&dir.file()).expect("opens");
    let mut sql = Driver(&connection);
    let stored = entry("SM1", 1_700_000_000_000);
    assert_eq!(store(&mut sql, &stored, settings(10)), Ok(StoreOutcome::Stored));
    assert_eq!(store(&mut sql, &stored, settings(10)), Ok(StoreOutcome::Duplicate));
    assert_eq!(get(&mut sql, "SM1"), Ok(Some(stored)));
    assert_eq!(get(&mut sql, "SM2"), Ok(None));
    assert_eq!(count(&mut sql), Ok(1));
}

#[test]
fn past_the_cap_new_entries_are_refused_and_counted_as_full() {
    let dir = TempDir::new("cap");
    let connection = open(&dir.file()).expect("opens");
    let mut sql = Driver(&connection);
    for index in 0..3 {
        assert_eq!(
            store(&mut sql, &entry(&format!("SM{index}"), index), settings(3)),
            Ok(StoreOutcome::Stored)
        );
    }
    assert_eq!(
        store(&mut sql, &entry("SM9", 9), settings(3)),
        Ok(StoreOutcome::Full { max_entries: 3 })
    );
    assert_eq!(
        store(&mut sql, &entry("SM0", 0), settings(3)),
        Ok(StoreOutcome::Duplicate),
        "a duplicate is not lost"
    );
    assert_eq!(count(&mut sql), Ok(3));
}

#[test]
fn listing_is_newest_first_by_page_and_filters_by_status_and_channel() {
    let dir = TempDir::new("list");
    let connection = open(&dir.file()).expect("opens");
    let mut sql = Driver(&connection);
    // Two at the same millisecond: the SID breaks the tie, so no page repeats or skips one.
    for (sid, at) in [("SM1", 10), ("SM2", 20), ("SM3", 20), ("CA4", 30), ("SM5", 40)] {
        store(&mut sql, &entry(sid, at), settings(100)).expect("stored");
    }
    let mut seen = Vec::new();
    let mut query = ListQuery {
        limit: 2,
        ..ListQuery::default()
    };
    loop {
        let page = list(&mut sql, &query).expect("a page");
        seen.extend(page.entries.iter().map(|entry| entry.sid.clone()));
        match page.next {
            Some(next) => query.cursor = Some(next.parse::<Cursor>().expect("a cursor")),
            None => break,
        }
    }
    assert_eq!(seen, ["SM5", "CA4", "SM3", "SM2", "SM1"]);
    let voice = list(
        &mut sql,
        &ListQuery {
            channel: Some(Channel::Voice),
            ..ListQuery::default()
        },
    )
    .expect("a page");
    assert_eq!(
        voice.entries.iter().map(|e| e.sid.as_str()).collect::<Vec<_>>(),
        ["CA4"]
    );
    assert_eq!(voice.entries[0].status, Status::Missed);
    dismiss(&mut sql, "SM3").expect("dismissed");
    let pending = list(
        &mut sql,
        &ListQuery {
            status: Some(Status::Pending),
            ..ListQuery::default()
        },
    )
    .expect("a page");
    assert_eq!(
        pending.entries.iter().map(|e| e.sid.as_str()).collect::<Vec<_>>(),
        ["SM5", "SM2", "SM1"]
    );
    assert_eq!(pending.next, None);
}

#[test]
fn dismissing_deletes_the_body_and_media_on_disk() {
    let dir = TempDir::new("dismiss");
    let connection = open(&dir.file()).expect("opens");
    let mut sql = Driver(&connection);
    store(&mut sql, &entry("SM1", 1), settings(100)).expect("stored");
    let dismissed = dismiss(&mut sql, "SM1").expect("works").expect("found");
    assert_eq!(
        (dismissed.status, dismissed.body.as_deref(), dismissed.media.len()),
        (Status::Dismissed, None, 0)
    );
    assert_eq!(get(&mut sql, "SM1").expect("works"), Some(dismissed));
    assert_eq!(dismiss(&mut sql, "SM404").expect("works"), None);
    drop(connection);
    // Not in a row, not in the WAL's latest state: the text is gone from what the store returns.
    let reopened = open(&dir.file()).expect("reopens");
    let body: Option<String> = reopened
        .query_row("SELECT body FROM inbox_entries WHERE sid = 'SM1'", [], |row| row.get(0))
        .expect("a row");
    let params: String = reopened
        .query_row("SELECT params FROM inbox_entries WHERE sid = 'SM1'", [], |row| {
            row.get(0)
        })
        .expect("a row");
    assert_eq!(body, None);
    assert!(!params.contains("hello") && !params.contains("https://m/"), "{params}");
}

#[test]
fn purging_removes_entries_past_retention_only() {
    let dir = TempDir::new("purge");
    let connection = open(&dir.file()).expect("opens");
    let mut sql = Driver(&connection);
    let day = 86_400_000;
    let now = 100 * day;
    store(&mut sql, &entry("SM_old", now - 31 * day), settings(100)).expect("stored");
    store(&mut sql, &entry("SM_new", now - 29 * day), settings(100)).expect("stored");
    assert_eq!(purge(&mut sql, now, settings(100)), Ok(1));
    assert_eq!(get(&mut sql, "SM_old"), Ok(None));
    assert!(get(&mut sql, "SM_new").expect("works").is_some());
    assert_eq!(count(&mut sql), Ok(1), "the count follows deletes");
}

#[test]
fn opening_twice_migrates_once_and_a_newer_schema_is_refused() {
    let dir = TempDir::new("migrate");
    drop(open(&dir.file()).expect("creates"));
    let connection = open(&dir.file()).expect("reopens");
    let version: i64 = connection
        .query_row(
            "SELECT version FROM twiml_fallback_schema WHERE component = 'inbox'",
            [],
            |row| row.get(0),
        )
        .expect("a version");
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 4);
    assert!(migrate(&mut Driver(&connection)).is_ok());
    connection
        .execute(
            "UPDATE twiml_fallback_schema SET version = 99 WHERE component = 'inbox'",
            [],
        )
        .expect("updated");
    drop(connection);
    let error = open(&dir.file()).expect_err("refused");
    assert!(error.contains("newer twiml-fallback"), "{error}");
}

#[test]
fn a_file_that_is_not_a_database_or_cannot_be_created_is_a_clear_error() {
    let dir = TempDir::new("corrupt");
    std::fs::write(dir.file(), vec![b'x'; 8192]).expect("written");
    let error = open(&dir.file()).expect_err("refused");
    assert!(error.contains("not a database"), "{error}");
    let blocked = dir.0.join("a-file");
    std::fs::write(&blocked, b"").expect("written");
    let error = open(&blocked.join("inbox.sqlite3")).expect_err("refused");
    assert!(error.contains("cannot create"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_commits_and_every_one_is_durable_when_it_returns() {
    let dir = TempDir::new("group");
    let (inbox, counts) = Inbox::open(&dir.file(), settings(10_000), || 1, |_| {}).expect("opens");
    assert_eq!(counts, Counts { stored: 0, refused: 0 });
    let inbox = Arc::new(inbox);
    let mut tasks = Vec::new();
    for index in 0..400 {
        let inbox = Arc::clone(&inbox);
        tasks.push(tokio::spawn(async move {
            let entry = entry(&format!("SM{index}"), index);
            inbox.run(move |sql| store(sql, &entry, settings(10_000))).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("joined"), Ok(StoreOutcome::Stored));
    }
    // Each store returned after its commit: a second connection sees all of them.
    let other = Connection::open(dir.file()).expect("opens");
    let rows: i64 = other
        .query_row("SELECT count(*) FROM inbox_entries", [], |row| row.get(0))
        .expect("a count");
    assert_eq!(rows, 400);
    assert!(!inbox.is_failing());
}

#[tokio::test]
async fn a_failing_job_is_rolled_back_alone() {
    let dir = TempDir::new("rollback");
    let (inbox, _) = Inbox::open(&dir.file(), settings(100), || 1, |_| {}).expect("opens");
    let failed = inbox
        .run(|sql| {
            store(sql, &entry("SM1", 1), settings(100))?;
            Err::<(), _>(StoreError::Driver("disk full".to_owned()))
        })
        .await;
    assert_eq!(failed, Err(StoreError::Driver("disk full".to_owned())));
    let stored = inbox.run(|sql| store(sql, &entry("SM2", 2), settings(100))).await;
    assert_eq!(stored, Ok(StoreOutcome::Stored));
    assert_eq!(
        inbox.run(|sql| get(sql, "SM1")).await,
        Ok(None),
        "the failed job left nothing behind"
    );
}

#[tokio::test]
async fn only_stores_say_whether_the_inbox_is_failing_and_a_successful_read_does_not_clear_it() {
    let dir = TempDir::new("failing");
    let (inbox, _) = Inbox::open(&dir.file(), settings(100), || 1, |_| {}).expect("opens");
    assert_eq!(inbox.store(entry("SM1", 1)).await, Ok(StoreOutcome::Stored));
    assert!(!inbox.is_failing());
    // The table goes away under it (as a damaged file would fail): stores fail.
    let other = Connection::open(dir.file()).expect("opens");
    other
        .execute_batch("ALTER TABLE inbox_entries RENAME TO moved_away")
        .expect("renamed");
    assert!(matches!(inbox.store(entry("SM2", 2)).await, Err(StoreError::Driver(_))));
    assert!(inbox.is_failing());
    // A read that works (an operator's `inbox list`) says nothing about writes.
    assert_eq!(inbox.run(|sql| count(sql)).await, Ok(1));
    assert!(inbox.is_failing(), "a successful read cleared the failing state");
    other
        .execute_batch("ALTER TABLE moved_away RENAME TO inbox_entries")
        .expect("renamed back");
    assert_eq!(inbox.store(entry("SM3", 3)).await, Ok(StoreOutcome::Stored));
    assert!(!inbox.is_failing(), "a store that succeeds clears it");
}

#[test]
fn a_file_that_cannot_be_written_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new("readonly");
    drop(open(&dir.file()).expect("creates"));
    std::fs::set_permissions(dir.file(), std::fs::Permissions::from_mode(0o444)).expect("chmod");
    // Root writes through permissions: make the file immutable too, where that is possible.
    let immutable = std::process::Command::new("chattr")
        .arg("+i")
        .arg(dir.file())
        .output()
        .is_ok_and(|output| output.status.success());
    let refused = open(&dir.file());
    if immutable {
        let _ = std::process::Command::new("chattr").arg("-i").arg(dir.file()).output();
    }
    let _ = std::fs::set_permissions(dir.file(), std::fs::Permissions::from_mode(0o644));
    let error = refused.expect_err("refused");
    assert!(error.contains("cannot be written"), "{error}");
}

#[test]
fn a_second_serve_on_the_same_inbox_is_refused_until_the_first_stops() {
    let dir = TempDir::new("lock");
    let first = Inbox::open(&dir.file(), settings(10), || 0, |_| {}).expect("the first opens");
    let refused = Inbox::open(&dir.file(), settings(10), || 0, |_| {})
        .err()
        .expect("the second is refused");
    assert!(
        refused.contains("another twiml-fallback serve uses this inbox"),
        "{refused}"
    );
    drop(first);
    assert!(
        Inbox::open(&dir.file(), settings(10), || 0, |_| {}).is_ok(),
        "free again once the first stopped"
    );
}

#[test]
fn a_version_1_database_is_migrated_through_every_version_with_its_entries_kept() {
    let dir = TempDir::new("upgrade");
    let current = open(&dir.file()).expect("creates");
    store(&mut Driver(&current), &entry("SM1", 1), settings(10)).expect("stored");
    // Back to what the first migration alone made.
    current
        .execute_batch(
            "ALTER TABLE inbox_count DROP COLUMN refused; \
             DROP INDEX inbox_entries_by_queue; \
             DROP TABLE replay_hold; \
             DROP TABLE incident_deliveries; \
             DROP TABLE incidents; \
             ALTER TABLE inbox_entries DROP COLUMN replies; \
             ALTER TABLE inbox_entries DROP COLUMN next_attempt_ms; \
             UPDATE twiml_fallback_schema SET version = 1 WHERE component = 'inbox';",
        )
        .expect("back to version 1");
    drop(current);
    let upgraded = open(&dir.file()).expect("migrates");
    let mut sql = Driver(&upgraded);
    assert_eq!(twiml_fallback::inbox::store::refused(&mut sql), Ok(0));
    let kept = get(&mut sql, "SM1")
        .expect("works")
        .expect("the entry survives the migrations");
    assert!(
        kept.replies.is_empty() && kept.next_attempt_ms == 0,
        "new columns start empty"
    );
    assert_eq!(
        twiml_fallback::incident::list(&mut sql, 10),
        Ok(Vec::new()),
        "version 4's incident tables are there, empty"
    );
    let version: i64 = upgraded
        .query_row(
            "SELECT version FROM twiml_fallback_schema WHERE component = 'inbox'",
            [],
            |row| row.get(0),
        )
        .expect("a version");
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 4);
}

mod replay {
    //! Replay's queue statements and the core's lanes over a real SQLite file, driven with
    //! hand-made answers from the app and the Messages API.

    use http::StatusCode;
    use twiml_fallback::config::Config;
    use twiml_fallback::edge::{OutboundRequest, SendResult};
    use twiml_fallback::inbox::{ReplyState, queue};
    use twiml_fallback::replay::{EntryReport, Mode, Next, Outcome, PassRequest, PassSummary, Replayer, TwilioApi};
    use twiml_fallback::signature::SignatureVerifier;

    use super::*;

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

    fn replayer(extra: &str) -> Replayer {
        let config = Config::from_toml(&format!(
            "[recovery]\nallow_hosts = [\"app.example.com\"]\n\n[replay]\nmin_interval_seconds = 1\n{extra}"
        ))
        .expect("a configuration");
        Replayer::new(&config, &SignatureVerifier::new("token"), TwilioApi::default())
    }

    fn message(sid: &str, to: &str, at_ms: u64) -> Entry {
        kept(
            &format!(
                "MessageSid={sid}&AccountSid={ACCOUNT}&From=%2B16285550100&To={}&Body=about+{sid}\
                 &ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fsms",
                to.replace('+', "%2B")
            ),
            at_ms,
        )
    }

    fn answer(status: u16, content_type: &str, body: &str) -> SendResult {
        SendResult::Answered {
            status: StatusCode::from_u16(status).expect("a status"),
            content_type: Some(content_type.to_owned()),
            body: body.as_bytes().to_vec(),
        }
    }

    /// Drives one run to its end: commits through the driver, answers each request with `reply`.
    fn drive(
        replayer: &Replayer,
        sql: &mut Driver<'_>,
        entry: Entry,
        mode: Mode,
        now: u64,
        mut reply: impl FnMut(&OutboundRequest) -> SendResult,
    ) -> (EntryReport, Vec<OutboundRequest>) {
        let mut run = replayer.begin(entry, mode, now);
        let mut sent = Vec::new();
        loop {
            match run.next() {
                Next::Save(entry) => run.saved(queue::save(sql, &entry)),
                Next::Send(request) => {
                    let result = reply(&request);
                    sent.push(request);
                    run.answered(result.outcome(), now);
                }
                Next::Done(report) => return (report, sent),
            }
        }
    }

    /// Runs a whole pass at `now`: every lane in turn, its entries answered by `app` (the
    /// Messages API accepts every send).
    fn pass(
        replayer: &Replayer,
        sql: &mut Driver<'_>,
        now: u64,
        app: impl Fn(&OutboundRequest) -> SendResult,
    ) -> (Vec<EntryReport>, Vec<OutboundRequest>, Option<u64>) {
        let (summary, requests) = pass_with(replayer, sql, now, app, |_| {
            answer(
                201,
                "application/json",
                r#"{"sid":"SM00000000000000000000000000000001"}"#,
            )
        });
        (summary.entries, requests, summary.next_due_ms)
    }

    /// A whole pass as a shell runs it — the lanes, the missed calls, then `finish_pass` — with
    /// the app answered by `app` and the Messages API by `api`.
    fn pass_with(
        replayer: &Replayer,
        sql: &mut Driver<'_>,
        now: u64,
        app: impl Fn(&OutboundRequest) -> SendResult,
        api: impl Fn(&OutboundRequest) -> SendResult,
    ) -> (PassSummary, Vec<OutboundRequest>) {
        let plan = replayer.pass(sql, &PassRequest::default(), now).expect("a pass");
        let mut summary = plan.summary;
        let mut requests = Vec::new();
        let answer = |request: &OutboundRequest| {
            if request.url.contains("/Messages.json") {
                api(request)
            } else {
                app(request)
            }
        };
        for mut lane in plan.lanes {
            while let Some(entry) = lane.next(sql).expect("the next entry") {
                let (report, sent) = drive(replayer, sql, entry, lane.mode(), now, answer);
                lane.finished(&report);
                requests.extend(sent);
                summary.add(report);
            }
            summary.lane_done(&lane);
        }
        for call in replayer.missed_calls(sql, &summary, now).expect("the calls") {
            if let Some(mut run) = replayer.text_missed_call(call, now) {
                let report = loop {
                    match run.next() {
                        Next::Save(entry) => run.saved(queue::save(sql, &entry)),
                        Next::Send(request) => {
                            let result = answer(&request);
                            requests.push(request);
                            run.answered(result.outcome(), now);
                        }
                        Next::Done(report) => break report,
                    }
                };
                summary.add(report);
            }
        }
        replayer.finish_pass(sql, &mut summary, now).expect("finished");
        (summary, requests)
    }

    fn delivered_sids(requests: &[OutboundRequest]) -> Vec<String> {
        requests
            .iter()
            .filter(|request| request.url == "https://app.example.com/sms")
            .map(|request| {
                Params::from_form(request.body.as_deref().unwrap_or_default().as_bytes())
                    .get("MessageSid")
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn each_numbers_queue_is_delivered_in_arrival_order_and_a_second_pass_finds_nothing() {
        let dir = TempDir::new("replay-order");
        let connection = open(&dir.file()).expect("opens");
        let mut sql = Driver(&connection);
        let replayer = replayer("");
        // Two numbers, interleaved in time; stored out of order.
        let entries = [
            message("SM3", "+14155550001", 3_000),
            message("SM1", "+14155550001", 1_000),
            message("SM2", "+14155550002", 2_000),
            message("SM5", "+14155550001", 3_000),
            message("SM4", "+14155550002", 4_000),
        ];
        for entry in &entries {
            store(&mut sql, entry, settings(100)).expect("stored");
        }
        let (reports, requests, next_due) = pass(&replayer, &mut sql, 10_000, |_| {
            answer(200, "text/xml", "<Response><Message>ok</Message></Response>")
        });
        assert!(
            reports.iter().all(|report| report.outcome == Outcome::Delivered),
            "{reports:?}"
        );
        let delivered = delivered_sids(&requests);
        let first: Vec<_> = delivered
            .iter()
            .filter(|sid| ["SM1", "SM3", "SM5"].contains(&sid.as_str()))
            .collect();
        let second: Vec<_> = delivered
            .iter()
            .filter(|sid| ["SM2", "SM4"].contains(&sid.as_str()))
            .collect();
        assert_eq!(
            first,
            ["SM1", "SM3", "SM5"],
            "arrival order, then SID for the same millisecond"
        );
        assert_eq!(second, ["SM2", "SM4"]);
        assert_eq!(next_due, None);
        for sid in ["SM1", "SM2", "SM3", "SM4", "SM5"] {
            let entry = get(&mut sql, sid).expect("reads").expect("there");
            assert_eq!(entry.status, Status::Replayed, "{sid}");
            assert_eq!(entry.replies.len(), 1);
            assert_eq!(entry.replies[0].state, ReplyState::Sent);
        }
        let (again, requests, _) = pass(&replayer, &mut sql, 20_000, |_| panic!("nothing is delivered twice"));
        assert!(again.is_empty() && requests.is_empty());
    }

    #[test]
    fn a_failing_probe_holds_its_numbers_queue_until_its_backoff_has_passed() {
        let dir = TempDir::new("replay-probe");
        let connection = open(&dir.file()).expect("opens");
        let mut sql = Driver(&connection);
        let replayer = replayer("");
        for (sid, at) in [("SM1", 1_000), ("SM2", 2_000), ("SM3", 3_000)] {
            store(&mut sql, &message(sid, "+14155550001", at), settings(100)).expect("stored");
        }
        // Not due before min_interval after it was kept.
        let (reports, _, next_due) = pass(&replayer, &mut sql, 1_500, |_| panic!("not due yet"));
        assert!(reports.is_empty());
        assert_eq!(next_due, Some(2_000));

        let (reports, requests, next_due) = pass(&replayer, &mut sql, 10_000, |_| answer(500, "text/plain", "down"));
        assert_eq!(reports.len(), 1, "only the probe is tried: {reports:?}");
        assert_eq!(reports[0].outcome, Outcome::Retrying);
        assert_eq!(delivered_sids(&requests), ["SM1"]);
        assert_eq!(next_due, Some(11_000));
        let probe = get(&mut sql, "SM1").expect("reads").expect("there");
        assert_eq!(
            (probe.status, probe.attempts, probe.next_attempt_ms),
            (Status::Pending, 1, 11_000)
        );
        assert!(
            probe.last_error.as_deref().is_some_and(|error| error.contains("500")),
            "{probe:?}"
        );
        let untouched = get(&mut sql, "SM2").expect("reads").expect("there");
        assert_eq!(untouched.attempts, 0);

        // During the backoff nothing is tried; after it, the probe, then the rest at once.
        let (reports, _, _) = pass(&replayer, &mut sql, 10_900, |_| panic!("backing off"));
        assert!(reports.is_empty());
        let (reports, requests, _) = pass(&replayer, &mut sql, 11_000, |_| answer(204, "text/plain", ""));
        assert_eq!(delivered_sids(&requests), ["SM1", "SM2", "SM3"]);
        assert!(reports.iter().all(|report| report.outcome == Outcome::Delivered));
    }

    #[test]
    fn an_entry_interrupted_mid_send_is_settled_first_as_needing_attention_and_never_sent() {
        let dir = TempDir::new("replay-interrupted");
        let connection = open(&dir.file()).expect("opens");
        let mut sql = Driver(&connection);
        let replayer = replayer("");
        store(&mut sql, &message("SM1", "+14155550001", 1_000), settings(100)).expect("stored");
        store(&mut sql, &message("SM2", "+14155550001", 2_000), settings(100)).expect("stored");
        // A run that dies right after committing its reply as being sent.
        let mut run = replayer.begin(
            get(&mut sql, "SM1").expect("reads").expect("there"),
            Mode::default(),
            5_000,
        );
        let Next::Save(replaying) = run.next() else {
            panic!("saves first")
        };
        run.saved(queue::save(&mut sql, &replaying));
        let Next::Send(_) = run.next() else { panic!("delivers") };
        run.answered(
            answer(200, "text/xml", "<Response><Message>on its way</Message></Response>").outcome(),
            5_000,
        );
        let Next::Save(sending) = run.next() else {
            panic!("commits the send first")
        };
        assert_eq!(sending.replies[0].state, ReplyState::Sending);
        queue::save(&mut sql, &sending).expect("committed");
        drop(run); // the process dies here

        let (reports, requests, _) = pass(&replayer, &mut sql, 6_000, |_| answer(204, "text/plain", ""));
        assert_eq!(reports[0].sid, "SM1");
        assert_eq!(reports[0].outcome, Outcome::NeedsAttention);
        assert!(
            !requests
                .iter()
                .any(|request| request.body.as_deref().is_some_and(|body| body.contains("on+its+way"))),
            "the interrupted reply is never sent again"
        );
        let settled = get(&mut sql, "SM1").expect("reads").expect("there");
        assert_eq!(settled.status, Status::NeedsAttention);
        assert_eq!(settled.replies[0].state, ReplyState::Unknown);
        // The interruption is settled, not a failure of the app: the queue goes on.
        assert_eq!(delivered_sids(&requests), ["SM2"]);
    }

    #[test]
    fn a_dismissed_entry_is_never_written_back_by_a_replay() {
        let dir = TempDir::new("replay-dismissed");
        let connection = open(&dir.file()).expect("opens");
        let mut sql = Driver(&connection);
        let entry = message("SM1", "+14155550001", 1_000);
        store(&mut sql, &entry, settings(100)).expect("stored");
        dismiss(&mut sql, "SM1").expect("dismissed");
        let mut replaying = entry;
        replaying.status = Status::Replaying;
        assert_eq!(queue::save(&mut sql, &replaying), Ok(false));
        assert_eq!(
            get(&mut sql, "SM1").expect("reads").expect("there").status,
            Status::Dismissed
        );
        assert_eq!(
            queue::save(&mut sql, &message("SM9", "+1", 1)),
            Ok(false),
            "nor a missing one"
        );
    }

    #[test]
    fn missed_callers_are_texted_once_when_a_delivery_to_the_same_app_succeeds() {
        let dir = TempDir::new("replay-missed");
        let connection = open(&dir.file()).expect("opens");
        let mut sql = Driver(&connection);
        let replayer = replayer("missed_call_sms = \"Sorry we missed you.\"");
        let call = kept(
            &format!(
                "CallSid=CA1&AccountSid={ACCOUNT}&From=%2B16285550177&To=%2B14155550001&CallStatus=ringing\
                 &Direction=inbound&ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fvoice"
            ),
            1_000,
        );
        store(&mut sql, &call, settings(100)).expect("stored");
        store(&mut sql, &message("SM1", "+14155550002", 1_000), settings(100)).expect("stored");
        let plan = replayer.pass(&mut sql, &PassRequest::default(), 5_000).expect("a pass");
        let mut summary = plan.summary;
        // Before any delivery succeeded, no caller is texted.
        assert!(
            replayer
                .missed_calls(&mut sql, &summary, 5_000)
                .expect("works")
                .is_empty()
        );
        for mut lane in plan.lanes {
            while let Some(entry) = lane.next(&mut sql).expect("works") {
                let (report, _) = drive(&replayer, &mut sql, entry, lane.mode(), 5_000, |_| {
                    answer(204, "text/plain", "")
                });
                lane.finished(&report);
                summary.add(report);
            }
        }
        let calls = replayer.missed_calls(&mut sql, &summary, 5_000).expect("the calls");
        assert_eq!(calls.iter().map(|call| call.sid.as_str()).collect::<Vec<_>>(), ["CA1"]);
        let mut run = replayer.text_missed_call(calls[0].clone(), 5_000).expect("a run");
        let mut requests = Vec::new();
        let report = loop {
            match run.next() {
                Next::Save(entry) => run.saved(queue::save(&mut sql, &entry)),
                Next::Send(request) => {
                    requests.push(request);
                    run.answered(
                        answer(
                            201,
                            "application/json",
                            r#"{"sid":"SM00000000000000000000000000000002"}"#,
                        )
                        .outcome(),
                        5_000,
                    );
                }
                Next::Done(report) => break report,
            }
        };
        assert_eq!(report.outcome, Outcome::Replied);
        assert_eq!(requests.len(), 1);
        let form = Params::from_form(requests[0].body.as_deref().unwrap_or_default().as_bytes());
        assert_eq!(form.get("To"), Some("+16285550177"));
        assert_eq!(form.get("From"), Some("+14155550001"));
        assert_eq!(form.get("Body"), Some("Sorry we missed you."));
        let texted = get(&mut sql, "CA1").expect("reads").expect("there");
        assert_eq!(texted.status, Status::Missed, "calls stay missed");
        assert_eq!(texted.replies[0].state, ReplyState::Sent);
        assert!(
            replayer
                .missed_calls(&mut sql, &summary, 6_000)
                .expect("works")
                .is_empty(),
            "a caller is texted once"
        );
    }

    fn sent(sid: &str) -> SendResult {
        answer(201, "application/json", &format!(r#"{{"sid":"{sid}"}}"#))
    }

    #[test]
    fn a_failing_messages_api_holds_every_send_so_one_entry_needs_attention_not_the_backlog() {
        let dir = TempDir::new("replay-hold");
        let connection = open(&dir.file()).expect("opens");
        let mut sql = Driver(&connection);
        let replayer = replayer("");
        for (sid, to, at) in [
            ("SM1", "+14155550001", 1_000),
            ("SM2", "+14155550001", 2_000),
            ("SM3", "+14155550002", 1_500),
        ] {
            store(&mut sql, &message(sid, to, at), settings(100)).expect("stored");
        }
        let echo = |_: &OutboundRequest| answer(200, "text/xml", "<Response><Message>ok</Message></Response>");
        // The API fails (500): the first send of each lane is unknown, and every send is held.
        let (summary, _) = pass_with(&replayer, &mut sql, 10_000, echo, |_| {
            answer(500, "application/json", "{}")
        });
        assert_eq!(
            summary.needs_attention, 2,
            "one entry per number, not the backlog: {:?}",
            summary.entries
        );
        assert_eq!(
            summary.held_until_ms,
            Some(11_000),
            "min_interval_seconds after the pass"
        );
        assert!(
            summary
                .held_because
                .as_deref()
                .is_some_and(|why| why.contains("HTTP 500"))
        );
        assert!(summary.troubled());
        assert_eq!(
            get(&mut sql, "SM2").expect("reads").expect("there").status,
            Status::Pending
        );
        // During the hold no automatic pass runs, and the next one is due when it ends.
        let (held, requests) = pass_with(&replayer, &mut sql, 10_500, echo, |_| panic!("held"));
        assert!(held.entries.is_empty() && requests.is_empty());
        assert_eq!(held.held_until_ms, Some(11_000));
        assert_eq!(
            replayer.next_pass_at(&mut sql, 9_900),
            Ok(Some(11_000)),
            "not before the hold ends"
        );
        // Still failing: the hold doubles.
        let (again, _) = pass_with(&replayer, &mut sql, 11_000, echo, |_| {
            answer(503, "application/json", "{}")
        });
        assert_eq!(again.held_until_ms, Some(13_000));
        assert_eq!(
            again.needs_attention, 1,
            "one more entry tried, one more needing attention"
        );
        // Back: the queue goes on, and the hold is lifted.
        store(&mut sql, &message("SM4", "+14155550001", 3_000), settings(100)).expect("stored");
        let (back, _) = pass_with(&replayer, &mut sql, 13_000, echo, |_| {
            sent("SM00000000000000000000000000000009")
        });
        assert!(back.replies_sent >= 1 && back.held_until_ms.is_none(), "{back:?}");
        assert_eq!(queue::hold(&mut sql).expect("the hold"), queue::Hold::default());
    }

    #[test]
    fn a_send_twilio_refuses_for_its_credentials_waits_planned_and_goes_out_without_asking_the_app_again() {
        let dir = TempDir::new("replay-401");
        let connection = open(&dir.file()).expect("opens");
        let mut sql = Driver(&connection);
        let replayer = replayer("");
        store(&mut sql, &message("SM1", "+14155550001", 1_000), settings(100)).expect("stored");
        let echo = |_: &OutboundRequest| answer(200, "text/xml", "<Response><Message>ok</Message></Response>");
        let (summary, requests) = pass_with(&replayer, &mut sql, 10_000, echo, |_| {
            answer(401, "application/json", r#"{"code":20003,"message":"Authenticate"}"#)
        });
        assert_eq!(delivered_sids(&requests), ["SM1"]);
        assert_eq!(summary.entries[0].outcome, Outcome::Retrying);
        assert!(summary.held_until_ms.is_some());
        let waiting = get(&mut sql, "SM1").expect("reads").expect("there");
        assert_eq!(waiting.status, Status::Replaying);
        assert_eq!(
            waiting.replies[0].state,
            ReplyState::Planned,
            "certainly not sent: it still may be"
        );
        assert!(
            waiting.replies[0]
                .error
                .as_deref()
                .is_some_and(|error| error.contains("20003"))
        );
        // The credentials fixed: the planned reply goes out; the app is not asked again.
        let (summary, requests) = pass_with(
            &replayer,
            &mut sql,
            20_000,
            |_| panic!("not delivered again"),
            |_| sent("SM00000000000000000000000000000003"),
        );
        assert_eq!(requests.len(), 1);
        assert_eq!(summary.replies_sent, 1);
        let settled = get(&mut sql, "SM1").expect("reads").expect("there");
        assert_eq!(
            (settled.status, settled.replies[0].state),
            (Status::Replayed, ReplyState::Sent)
        );
    }

    #[test]
    fn a_missed_caller_is_texted_once_however_often_they_called_and_when_a_recovered_message_shows_the_app_back() {
        let dir = TempDir::new("replay-callers");
        let connection = open(&dir.file()).expect("opens");
        let mut sql = Driver(&connection);
        let replayer = replayer("missed_call_sms = \"Sorry we missed you.\"");
        let call = |sid: &str, from: &str, at: u64| {
            kept(
                &format!(
                    "CallSid={sid}&AccountSid={ACCOUNT}&From={}&To=%2B14155550001&CallStatus=ringing\
                     &Direction=inbound&ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fvoice",
                    from.replace('+', "%2B")
                ),
                at,
            )
        };
        for entry in [
            call("CA1", "+16285550177", 1_000),
            call("CA2", "+16285550177", 2_000),
            call("CA3", "+16285550188", 3_000),
        ] {
            store(&mut sql, &entry, settings(100)).expect("stored");
        }
        // No message has been answered since the calls: the app is not known to be back.
        let (quiet, _) = pass_with(
            &replayer,
            &mut sql,
            10_000,
            |_| panic!("no message"),
            |_| panic!("no text"),
        );
        assert!(quiet.entries.is_empty());
        // A message the app answered on recovery, after the calls: it is back.
        let mut recovered = message("SM1", "+14155550002", 4_000);
        recovered.status = Status::Replayed;
        store(&mut sql, &recovered, settings(100)).expect("stored");
        let (texted, requests) = pass_with(
            &replayer,
            &mut sql,
            10_000,
            |_| panic!("no delivery"),
            |_| sent("SM00000000000000000000000000000004"),
        );
        let to: Vec<String> = requests
            .iter()
            .map(|request| {
                Params::from_form(request.body.as_deref().unwrap_or_default().as_bytes())
                    .get("To")
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            to,
            ["+16285550177", "+16285550188"],
            "one text per caller: {:?}",
            texted.entries
        );
        let (again, requests) = pass_with(
            &replayer,
            &mut sql,
            11_000,
            |_| panic!("no delivery"),
            |_| panic!("no text"),
        );
        assert!(
            again.entries.is_empty() && requests.is_empty(),
            "nobody is texted twice"
        );
        // With send_replies off, nobody is texted at all.
        let silent = self::replayer("missed_call_sms = \"Sorry\"\nsend_replies = false");
        store(&mut sql, &call("CA4", "+16285550199", 5_000), settings(100)).expect("stored");
        let summary = PassSummary::default();
        assert!(
            silent
                .missed_calls(&mut sql, &summary, 10_000)
                .expect("the calls")
                .is_empty()
        );
    }
}
