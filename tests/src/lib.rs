//! One table of fallback-endpoint cases, run against every implementation of the endpoint: the
//! native `twiml-fallback serve` and the Cloudflare Worker under workerd (the approach of
//! tower-sessions: one suite, several backends).
//!
//! A backend implements [`Launcher`]: given a configuration (TOML) and tokens, start the endpoint
//! and say where it listens. [`run_table`] starts the fakes the cases need — an alert receiver and
//! a primary webhook app that checks the signature of what it is sent — launches the backend twice
//! (with tokens, and without), and runs every case against it. Requests are signed the way Twilio
//! signs them, by the core's `compute_signature`, which the differential test checks against the
//! official libraries.

mod fakes;
pub mod inbox_load;
mod inbox_table;
mod incident_table;
mod probe_table;
pub mod replay_load;
mod replay_table;
pub mod sinks;
pub mod slow_clients;
mod table;
pub mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::time::{Duration, Instant};

pub use fakes::{
    AlertReceiver, ApiFailure, ApiRequest, AppHit, HEALTHY_TWIML, Hit, MessagesApi, Primary, ReplayApp, Route,
};
pub use inbox_table::{ADMIN_TOKEN, AdminAnswer, InboxLauncher, admin, run_inbox_table};
pub use incident_table::run_incident_table;
pub use probe_table::run_probe_table;
pub use replay_table::{ReplayLauncher, run_replay_table};
pub use table::{Answer, Case, CaseRequest, Expect, Signing, run_table, send, send_chunked, voice as voice_params};

/// The tokens the table's signed requests use.
pub const TOKEN: &str = "e2e-primary-token";
/// A second token, for rotation cases.
pub const SECONDARY_TOKEN: &str = "e2e-secondary-token";

/// How to start an implementation of the fallback endpoint.
pub trait Launcher: Sync {
    /// A short name for messages (`serve`, `worker`).
    fn name(&self) -> &'static str;

    /// Starts the endpoint with `config` (TOML) and `tokens` (none: signatures unchecked).
    fn launch<'a>(
        &'a self,
        config: &'a str,
        tokens: &'a [&'a str],
    ) -> Pin<Box<dyn Future<Output = Running> + Send + 'a>>;
}

/// A started endpoint; stopped when dropped.
pub struct Running {
    /// `http://host:port`, without a trailing slash.
    pub base_url: String,
    /// What stops it (a child process, a task).
    pub guard: Box<dyn Send>,
    /// Where its logs go, for failure messages.
    pub logs: Option<std::path::PathBuf>,
}

/// Waits until `base_url` answers HTTP at all.
pub async fn wait_until_up(base_url: &str, within: std::time::Duration) -> bool {
    let client = client();
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if client.get(format!("{base_url}/healthz")).send().await.is_ok() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// The HTTP client the table drives backends with (no redirects, generous timeouts).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("the test HTTP client builds")
}

/// Starts `binary serve --addr 127.0.0.1:0 ARGS…` with `env` (and a quiet `RUST_LOG`), its
/// standard error in `log`; the process and its base URL once it listens, or why it did not
/// start (with its log).
pub fn start_serve(
    binary: &Path,
    args: &[&std::ffi::OsStr],
    env: &[(&str, &str)],
    log: &Path,
) -> Result<(std::process::Child, String), String> {
    let stderr = std::fs::File::create(log).map_err(|error| format!("{}: {error}", log.display()))?;
    let mut child = std::process::Command::new(binary)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn,twiml_fallback::serve=info")
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|error| format!("starting {}: {error}", binary.display()))?;
    match serve_address(log, Duration::from_secs(10)) {
        Some(addr) => Ok((child, format!("http://{addr}"))),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!(
                "serve did not start: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            ))
        }
    }
}

/// The address `twiml-fallback serve` says it listens on, read from the log it writes (its
/// start-up line `… listening on http://ADDR …`), waiting up to `within` for it; `None` when the
/// line does not come (the log then says why).
pub fn serve_address(log: &Path, within: Duration) -> Option<SocketAddr> {
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(rest) = text.split("listening on http://").nth(1) {
            let addr: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
                .collect();
            return addr.parse().ok();
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
