//! The shared end-to-end table (`tests/`, crate `twiml-fallback-e2e`) against the real
//! `twiml-fallback serve` binary.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use twiml_fallback_e2e::{
    InboxLauncher, Launcher, ReplayLauncher, Running, run_inbox_table, run_incident_table, run_probe_table,
    run_replay_table, run_table, wait_until_up,
};

struct Serve;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

impl Launcher for Serve {
    fn name(&self) -> &'static str {
        "twiml-fallback serve"
    }

    fn launch<'a>(
        &'a self,
        config: &'a str,
        tokens: &'a [&'a str],
    ) -> Pin<Box<dyn Future<Output = Running> + Send + 'a>> {
        Box::pin(async move {
            let dir = run_dir();
            start(config, tokens, None, None, &dir).await
        })
    }
}

impl InboxLauncher for Serve {
    fn launch_with_inbox<'a>(
        &'a self,
        config: &'a str,
        tokens: &'a [&'a str],
        admin_token: &'a str,
        state: &'a Path,
    ) -> Pin<Box<dyn Future<Output = Running> + Send + 'a>> {
        Box::pin(async move {
            let dir = run_dir();
            start(config, tokens, Some((admin_token, state)), None, &dir).await
        })
    }
}

impl ReplayLauncher for Serve {
    fn launch_for_replay<'a>(
        &'a self,
        config: &'a str,
        tokens: &'a [&'a str],
        admin_token: &'a str,
        state: &'a Path,
        api_base: &'a str,
    ) -> Pin<Box<dyn Future<Output = Running> + Send + 'a>> {
        Box::pin(async move {
            let dir = run_dir();
            start(config, tokens, Some((admin_token, state)), Some(api_base), &dir).await
        })
    }
}

/// A fresh folder for one run's configuration, log and (unless the inbox is elsewhere) inbox.
fn run_dir() -> std::path::PathBuf {
    let run = RUNS.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("twiml-fallback-e2e-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Starts serve with `config` and `tokens`; with an admin token, its inbox under `state`, else in
/// the run's folder; replies through the Messages API at `api_base` (`--api-base`), else the
/// default (never reached: no case replays there).
async fn start(
    config: &str,
    tokens: &[&str],
    inbox: Option<(&str, &Path)>,
    api_base: Option<&str>,
    dir: &Path,
) -> Running {
    let config_path = dir.join("fallback.toml");
    std::fs::write(&config_path, config).expect("write config");
    let log_path = dir.join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_twiml-fallback"));
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg(&config_path)
        .arg("--inbox")
        .arg(inbox.map_or(dir, |(_, state)| state).join("inbox.sqlite3"))
        .env_remove("TWILIO_AUTH_TOKEN")
        .env_remove("TWILIO_AUTH_TOKEN_SECONDARY")
        .env_remove("TWIML_FALLBACK_ADMIN_TOKEN")
        .env_remove("TWILIO_API_BASE")
        .env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_API_SECRET")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(token) = tokens.first() {
        command.env("TWILIO_AUTH_TOKEN", token);
    }
    if let Some(token) = tokens.get(1) {
        command.env("TWILIO_AUTH_TOKEN_SECONDARY", token);
    }
    if let Some((admin_token, _)) = inbox {
        command.env("TWIML_FALLBACK_ADMIN_TOKEN", admin_token);
    }
    if let Some(api_base) = api_base {
        command.arg("--api-base").arg(api_base);
    }
    let child = KillOnDrop(command.spawn().expect("start twiml-fallback serve"));
    let waiting = log_path.clone();
    let addr = tokio::task::spawn_blocking(move || twiml_fallback_e2e::serve_address(&waiting, Duration::from_secs(5)))
        .await
        .ok()
        .flatten();
    let base_url = addr.map(|addr| format!("http://{addr}")).unwrap_or_else(|| {
        panic!(
            "serve did not start: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        )
    });
    assert!(
        wait_until_up(&base_url, Duration::from_secs(10)).await,
        "serve is not answering at {base_url}"
    );
    Running {
        base_url,
        guard: Box::new(child),
        logs: Some(log_path),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_to_end_table_passes_against_serve() {
    run_table(&Serve).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_table_passes_against_serve() {
    run_inbox_table(&Serve).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incident_table_passes_against_serve() {
    run_incident_table(&Serve).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_table_passes_against_serve() {
    run_probe_table(&Serve).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs twilio-node to validate the replayed signatures (scripts/test.sh provides it)"]
async fn the_replay_table_passes_against_serve() {
    run_replay_table(&Serve).await;
}
