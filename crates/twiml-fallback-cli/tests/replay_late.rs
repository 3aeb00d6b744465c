//! A reply to a message older than `[replay] reply_window_minutes` is kept, withheld, and sent
//! only when an operator asks (`twiml-fallback inbox replay --sid SID --send-withheld`) — once.
//!
//! Time is the one thing a test cannot wait for here (the window is at least a minute), so the
//! message is aged where it lives: `serve` is stopped, its entry's `received_at_ms` moved two
//! minutes back in the inbox file, and `serve` started again on the same file.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use twiml_fallback_e2e::replay_load::{entries, fill, start_replaying_serve};
use twiml_fallback_e2e::{MessagesApi, ReplayApp, TOKEN};

const ADMIN_TOKEN: &str = "replay-late-admin";

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

fn cli(base: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twiml-fallback"))
        .args(["inbox", "--endpoint", base])
        .args(args)
        .env("TWIML_FALLBACK_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("run twiml-fallback inbox")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reply_is_withheld_and_sent_once_only_when_asked() {
    let dir = std::env::temp_dir().join(format!("twiml-fallback-replay-late-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let inbox = dir.join("inbox.sqlite3");
    let app = ReplayApp::start().await;
    app.set_down(true);
    let api = MessagesApi::start().await;
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[recovery]\nallow_hosts = [\"{}\"]\nallow_http = true\ntimeout_ms = 300\n\n\
             [replay]\nmin_interval_seconds = 1\nreply_window_minutes = 1\n",
            app.host
        ),
    )
    .expect("write the configuration");

    // Kept while the app is down, then two minutes pass (in the file).
    let (mut first, base) = start(&config, &inbox, &api.base_url, &dir.join("first.log"));
    let kept = fill(&base, TOKEN, 1, 1, &app.url("/sms")).await;
    let _ = first.kill();
    let _ = first.wait();
    let connection = rusqlite::Connection::open(&inbox).expect("the inbox opens");
    let aged = connection
        .execute(
            "UPDATE inbox_entries SET received_at_ms = received_at_ms - 120000, next_attempt_ms = 0",
            [],
        )
        .expect("aged");
    assert_eq!(aged, 1);
    drop(connection);

    // The app is back: the message is delivered, the app's reply kept but withheld.
    app.set_down(false);
    let (mut second, base) = start(&config, &inbox, &api.base_url, &dir.join("second.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let entry = loop {
        let now = entries(&base, ADMIN_TOKEN).await.expect("the inbox lists");
        if now[0]["status"] == "replayed" {
            break now[0].clone();
        }
        assert!(Instant::now() < deadline, "not replayed: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reply = &entry["replies"][0];
    assert_eq!(reply["state"], "withheld", "{entry}");
    assert_eq!(reply["sent"], false);
    assert_eq!(reply["body"], format!("Got it: {}", kept[0].body));
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|error| error.contains("reply_window_minutes (1)")),
        "{reply}"
    );
    assert!(api.requests().is_empty(), "nothing is sent late on its own");

    // An operator sends it, deliberately, once.
    let sid = kept[0].sid.as_str();
    let sent = cli(&base, &["replay", "--sid", sid, "--send-withheld"]);
    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert_eq!(
        sent.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(
        stdout.contains(&format!("{sid} {} replied: 1 sent, 0 withheld", kept[0].to)),
        "{stdout}"
    );
    let requests = api.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].field("To"), Some(kept[0].from.as_str()));
    assert_eq!(
        requests[0].field("Body"),
        Some(format!("Got it: {}", kept[0].body).as_str())
    );
    let again = cli(&base, &["replay", "--sid", sid, "--send-withheld"]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("skipped: no withheld replies to send"), "{stdout}");
    assert_eq!(api.requests().len(), 1, "sent once");
    // Without --sid, --send-withheld is a usage error.
    let usage = cli(&base, &["replay", "--send-withheld"]);
    assert_eq!(usage.status.code(), Some(2));

    let _ = second.kill();
    let _ = second.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_the_messages_api_never_received_waits_and_goes_once_it_is_reachable() {
    let dir = std::env::temp_dir().join(format!("twiml-fallback-replay-unreachable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let inbox = dir.join("inbox.sqlite3");
    let app = ReplayApp::start().await;
    app.set_down(true);
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[recovery]\nallow_hosts = [\"{}\"]\nallow_http = true\ntimeout_ms = 300\n\n[replay]\nmin_interval_seconds = 1\n",
            app.host
        ),
    )
    .expect("write the configuration");
    // A port nothing listens on: every connection to "the API" is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let unreachable = format!("http://{}", closed.local_addr().expect("its address"));
    drop(closed);

    let (mut first, base) = start(&config, &inbox, &unreachable, &dir.join("first.log"));
    let kept = fill(&base, TOKEN, 1, 1, &app.url("/sms")).await;
    app.set_down(false);
    let deadline = Instant::now() + Duration::from_secs(30);
    // The reply passes through `sending` while its attempt is under way (written before the
    // request goes out); what the test judges is where the refused attempt leaves it.
    let waiting = loop {
        let now = entries(&base, ADMIN_TOKEN).await.expect("the inbox lists");
        let settled = now[0]["replies"]
            .as_array()
            .is_some_and(|replies| !replies.is_empty() && replies[0]["state"] != "sending");
        if settled && now[0]["status"] == "replaying" {
            break now[0].clone();
        }
        assert!(Instant::now() < deadline, "the reply did not wait: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        waiting["replies"][0]["state"], "planned",
        "certainly not sent: {waiting}"
    );
    let log = std::fs::read_to_string(dir.join("first.log")).unwrap_or_default();
    assert!(log.contains("replay-held"), "the hold is logged:\n{log}");
    let _ = first.kill();
    let _ = first.wait();
    let delivered = app.hits_for(&kept[0].sid).iter().filter(|hit| hit.is_replay()).count();
    assert_eq!(delivered, 1);

    // The API reachable again (a restart with it): the reply goes out once, the app is not asked again.
    let api = MessagesApi::start().await;
    let (mut second, base) = start(&config, &inbox, &api.base_url, &dir.join("second.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = entries(&base, ADMIN_TOKEN).await.expect("the inbox lists");
        if now[0]["status"] == "replayed" {
            assert_eq!(now[0]["replies"][0]["state"], "sent", "{}", now[0]);
            break;
        }
        assert!(Instant::now() < deadline, "not sent: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(api.requests().len(), 1, "sent once");
    assert_eq!(
        app.hits_for(&kept[0].sid).iter().filter(|hit| hit.is_replay()).count(),
        delivered,
        "the app is not asked again"
    );
    let _ = second.kill();
    let _ = second.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
