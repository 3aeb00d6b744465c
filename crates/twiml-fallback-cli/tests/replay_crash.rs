//! `kill -9` at random points while `serve` replays a backlog, a restart after each: no reply is
//! ever sent twice, no entry is lost, and every send a kill interrupted is reported as
//! `needs-attention` — the entry's state is committed before each send and after it.
//! Before each kill the test checks that entries remain to replay (the kill lands during the
//! replay). `REPLAY_CRASH_ENTRIES` (default 200, over 10 numbers), `REPLAY_CRASH_KILLS` (20) and
//! `REPLAY_CRASH_SEED` size the run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use twiml_fallback_e2e::replay_load::{by_status, entries, fill, replay_config, sends_per_body, start_replaying_serve};
use twiml_fallback_e2e::{MessagesApi, ReplayApp, TOKEN};

const ADMIN_TOKEN: &str = "replay-crash-admin";

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn start(config: &Path, inbox: &Path, api_base: &str, log: &Path) -> (std::process::Child, String) {
    start_replaying_serve(
        Path::new(env!("CARGO_BIN_EXE_twiml-fallback")),
        config,
        inbox,
        api_base,
        ADMIN_TOKEN,
        log,
    )
    .unwrap_or_else(|error| panic!("{error}"))
}

/// A small deterministic generator (xorshift), so a failing seed can be re-run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_replay_never_sends_a_reply_twice_nor_loses_an_entry() {
    let total = usize::try_from(setting("REPLAY_CRASH_ENTRIES", 200)).unwrap_or(200);
    let kills = setting("REPLAY_CRASH_KILLS", 20);
    let seed = setting("REPLAY_CRASH_SEED", 0x5EED_CAFE);
    let mut rng = Rng(seed | 1);
    let dir: PathBuf = std::env::temp_dir().join(format!("twiml-fallback-replay-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let inbox = dir.join("inbox.sqlite3");

    let app = ReplayApp::start().await;
    app.set_down(true);
    // A slow app and a quick API: the replay of 200 entries over 10 numbers takes longer than
    // the 20 kills' windows (each lane's entry ≈ 0.2 s), so every kill lands while it runs — most
    // during a delivery (delivered again, at least once toward the app), some during a send.
    app.answer_after(Duration::from_millis(200));
    let api = MessagesApi::start().await;
    api.answer_after(Duration::from_millis(15));
    let config = dir.join("config.toml");
    std::fs::write(&config, replay_config(&app.host)).expect("write the configuration");

    // The app is down: every message is kept, pending.
    let (mut child, mut base) = start(&config, &inbox, &api.base_url, &dir.join("fill.log"));
    let messages = fill(&base, TOKEN, total, 10, &app.url("/sms")).await;
    assert_eq!(messages.len(), total);

    // The app is back: kill serve at random points of the replay, restarting it each time.
    app.set_down(false);
    for kill in 0..kills {
        if kill > 0 {
            let (restarted, restarted_base) =
                start(&config, &inbox, &api.base_url, &dir.join(format!("run-{kill}.log")));
            child = restarted;
            base = restarted_base;
        }
        // Entries are due a second after they were kept; later runs replay at once.
        let wait = if kill == 0 { 1_000 } else { 0 } + 20 + rng.below(180);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let before = by_status(&entries(&base, ADMIN_TOKEN).await.expect("the inbox lists"));
        let remaining = before.get("pending").copied().unwrap_or(0) + before.get("replaying").copied().unwrap_or(0);
        assert!(
            remaining > 0,
            "kill {kill} would not land during the replay: {before:?}"
        );
        child.kill().expect("SIGKILL serve"); // SIGKILL: no shutdown, no flush
        let _ = child.wait();
    }

    // A last run settles everything.
    let (mut last, base) = start(&config, &inbox, &api.base_url, &dir.join("last.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let settled = loop {
        let now = entries(&base, ADMIN_TOKEN).await.expect("the inbox lists");
        let counts = by_status(&now);
        if counts.get("pending").copied().unwrap_or(0) + counts.get("replaying").copied().unwrap_or(0) == 0 {
            break now;
        }
        assert!(Instant::now() < deadline, "replay did not settle: {counts:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = last.kill();
    let _ = last.wait();

    let counts = by_status(&settled);
    let sends = sends_per_body(&api);
    let duplicate_sends: Vec<_> = sends.iter().filter(|(_, count)| **count > 1).collect();
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for entry in &settled {
        *copies.entry(entry["sid"].as_str().unwrap_or_default()).or_default() += 1;
    }
    let lost: Vec<&str> = messages
        .iter()
        .map(|message| message.sid.as_str())
        .filter(|sid| !copies.contains_key(sid))
        .collect();
    let needs_attention = counts.get("needs-attention").copied().unwrap_or(0);
    println!(
        "replay crash: {total} entries over 10 numbers, {kills} kill -9s (seed {seed:#x}), each during the replay; \
         after the last restart: {counts:?}; sends {} for {} bodies, {} duplicated; {} entries lost",
        api.requests().len(),
        sends.len(),
        duplicate_sends.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "entries lost: {lost:?}");
    assert!(
        needs_attention > 0,
        "no kill landed during a send: the interrupted-send path was not exercised ({counts:?})"
    );
    assert!(copies.values().all(|count| *count == 1), "an entry is listed twice");
    assert!(duplicate_sends.is_empty(), "replies sent twice: {duplicate_sends:?}");
    assert_eq!(
        counts.get("replayed").copied().unwrap_or(0) + needs_attention,
        total,
        "every entry ends replayed or needing attention: {counts:?}"
    );
    // Each entry agrees with what the Messages API saw.
    for entry in &settled {
        let sid = entry["sid"].as_str().unwrap_or_default();
        let body = format!("Got it: {}", entry["body"].as_str().unwrap_or_default());
        let sent = sends.get(&body).copied().unwrap_or(0);
        let replies = entry["replies"].as_array().cloned().unwrap_or_default();
        assert_eq!(replies.len(), 1, "{sid}: one reply, got {replies:?}");
        let state = replies[0]["state"].as_str().unwrap_or_default();
        match entry["status"].as_str() {
            Some("replayed") => {
                assert_eq!(state, "sent", "{sid}: a replayed entry's reply is sent");
                assert_eq!(sent, 1, "{sid}: sent exactly once");
            }
            Some("needs-attention") => {
                // Interrupted mid-send: it may or may not have gone out, and it never goes again.
                assert_eq!(state, "unknown", "{sid}: an interrupted reply is unknown");
                assert!(sent <= 1, "{sid}: sent {sent} times");
            }
            other => panic!("{sid}: unexpected status {other:?}"),
        }
    }
    // Every send the API saw belongs to an entry that says it was sent, or that a kill interrupted.
    let settled_bodies: HashMap<String, &str> = settled
        .iter()
        .map(|entry| {
            (
                format!("Got it: {}", entry["body"].as_str().unwrap_or_default()),
                entry["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    for body in sends.keys() {
        assert!(
            matches!(settled_bodies.get(body), Some(&"replayed" | &"needs-attention")),
            "a send the inbox does not account for: {body}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
