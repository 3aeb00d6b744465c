//! `kill -9` in the middle of a burst: every request `serve` answered 200 is in the inbox after a
//! restart, exactly once — the entry is committed (WAL, `synchronous = FULL`) before the answer
//! goes out. `INBOX_CRASH_REQUESTS` (default 10,000), `INBOX_CRASH_CONCURRENCY` (64) and
//! `INBOX_CRASH_KILL_AFTER` (3,000 answers) size the run.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use twiml_fallback_e2e::inbox_load::{burst, inbox_sids};

const TOKEN: &str = "crash-token";
const ADMIN_TOKEN: &str = "crash-admin";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn start(inbox: &Path, log: &Path) -> (Child, String) {
    twiml_fallback_e2e::start_serve(
        Path::new(env!("CARGO_BIN_EXE_twiml-fallback")),
        &["--inbox".as_ref(), inbox.as_os_str()],
        &[
            ("TWILIO_AUTH_TOKEN", TOKEN),
            ("TWIML_FALLBACK_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
        log,
    )
    .unwrap_or_else(|error| panic!("{error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_answered_before_a_kill_9_is_in_the_inbox_exactly_once() {
    let requests = setting("INBOX_CRASH_REQUESTS", 10_000);
    let concurrency = setting("INBOX_CRASH_CONCURRENCY", 64);
    let kill_after = setting("INBOX_CRASH_KILL_AFTER", 3_000).min(requests / 2);
    let dir: PathBuf = std::env::temp_dir().join(format!("twiml-fallback-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let inbox = dir.join("inbox.sqlite3");

    let (mut child, base) = start(&inbox, &dir.join("first.log"));
    let answered = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn({
        let (base, answered) = (base.clone(), Arc::clone(&answered));
        async move { burst(&base, TOKEN, "c", requests, concurrency, answered).await }
    });
    while answered.load(Ordering::Relaxed) < kill_after && !load.is_finished() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    child.kill().expect("SIGKILL serve"); // std's kill is SIGKILL on Unix: no shutdown, no flush
    let _ = child.wait();
    let burst = load.await.expect("the burst");
    assert!(
        burst.wrong.is_empty(),
        "wrong answers before the kill: {:?}",
        &burst.wrong[..burst.wrong.len().min(5)]
    );
    assert!(
        burst.answered.len() >= kill_after && burst.answered.len() < requests,
        "the kill did not land mid-burst: {} of {requests} answered",
        burst.answered.len()
    );

    let (mut restarted, base) = start(&inbox, &dir.join("second.log"));
    let stored = inbox_sids(&base, ADMIN_TOKEN).await.expect("the inbox lists");
    let _ = restarted.kill();
    let _ = restarted.wait();
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for sid in &stored {
        *copies.entry(sid.as_str()).or_default() += 1;
    }
    let duplicated: Vec<_> = copies.iter().filter(|(_, count)| **count > 1).collect();
    let stored_set: HashSet<&str> = copies.keys().copied().collect();
    let lost: Vec<&String> = burst
        .answered
        .iter()
        .filter(|sid| !stored_set.contains(sid.as_str()))
        .collect();
    println!(
        "crash: {requests} requests at {concurrency} connections, kill -9 after {} answers; answered 200: {}, \
         unanswered: {}; after restart: {} entries, {} lost, {} duplicated, {} committed but cut before their answer",
        kill_after,
        burst.answered.len(),
        burst.unanswered,
        stored.len(),
        lost.len(),
        duplicated.len(),
        stored.len().saturating_sub(burst.answered.len()),
    );
    assert!(
        lost.is_empty(),
        "{} answered requests were lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(duplicated.is_empty(), "duplicated entries: {duplicated:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
