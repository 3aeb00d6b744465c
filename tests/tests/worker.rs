//! The shared end-to-end table against the built Worker, running under workerd (`wrangler dev
//! --local`, which also simulates the `ALERT_DEDUP` KV namespace), plus what only the Worker has:
//! alert dedup across isolates through KV, and its JSON log lines.
//!
//! `scripts/test.sh` builds the Worker and sets `TWIML_FALLBACK_WRANGLER` (the wrangler binary)
//! and `TWIML_FALLBACK_WORKER_BUNDLE` (the bundle directory). Without them the tests are skipped
//! with a notice — except under `CI=true`, where a missing toolchain or bundle fails them.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use twiml_fallback::config::Config;
use twiml_fallback::webhook::Channel;
use twiml_fallback_e2e::{
    AlertReceiver, CaseRequest, Launcher, Running, Signing, TOKEN, run_table, send, voice_params, wait_until_up,
};

struct Worker {
    wrangler: PathBuf,
    bundle: PathBuf,
}

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("twiml-fallback-worker-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `wrangler dev` and its workerd; stopped (then its files removed) when dropped.
struct WranglerDev {
    child: Child,
    _dir: TempDir,
}

impl Drop for WranglerDev {
    fn drop(&mut self) {
        // wrangler runs node, which runs workerd and esbuild, all in the child's process group.
        // wrangler may linger after SIGTERM: wait up to 2 s for the group, then SIGKILL it.
        let group = format!("-{}", self.child.id());
        let signal = |signal: &str| {
            Command::new("kill")
                .args(["-s", signal, "--", &group])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        signal("TERM");
        for _ in 0..40 {
            if !signal("0") {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        signal("KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// `value` as a TOML multi-line literal string (no escapes; our configurations never hold `'''`).
fn literal(value: &str) -> String {
    assert!(!value.contains("'''"), "configuration cannot contain '''");
    format!("'''\n{value}'''")
}

impl Worker {
    /// Starts the Worker with `config` as `FALLBACK_CONFIG`, `tokens` as its secrets, and its KV
    /// namespace stored in `state` (shared by Workers started on the same directory).
    async fn start(&self, config: &str, tokens: &[&str], state: &Path) -> Running {
        self.start_with_vars(config, tokens, state, &[]).await
    }

    /// As [`Worker::start`], with more `[vars]` (the per-field settings).
    async fn start_with_vars(&self, config: &str, tokens: &[&str], state: &Path, extra: &[(&str, &str)]) -> Running {
        let dir = TempDir::new("dev");
        std::fs::create_dir_all(dir.0.join("xdg")).expect("temp dir");
        let mut vars = format!("FALLBACK_CONFIG = {}\n", literal(config));
        for (name, value) in extra {
            vars.push_str(&format!("{name} = {}\n", literal(value)));
        }
        for (name, token) in ["TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN_SECONDARY"].iter().zip(tokens) {
            vars.push_str(&format!("{name} = \"{token}\"\n"));
        }
        let manifest = format!(
            "name = \"twiml-fallback-e2e\"\nmain = \"{}\"\ncompatibility_date = \"2026-11-01\"\n\n\
             [[kv_namespaces]]\nbinding = \"ALERT_DEDUP\"\nid = \"e2e-alert-dedup\"\n\n[vars]\n{vars}",
            self.bundle.join("index.js").display()
        );
        std::fs::write(dir.0.join("wrangler.toml"), manifest).expect("write wrangler.toml");
        let port = free_port();
        // Each instance gets its own devtools port: two on the default one collide.
        let inspector_port = free_port();
        let log_path = dir.0.join("wrangler.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = Command::new(&self.wrangler);
        command
            .current_dir(&dir.0)
            .args([
                "dev",
                "--local",
                "--ip",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--no-bundle",
            ])
            .args([
                "--inspector-port",
                &inspector_port.to_string(),
                "--show-interactive-dev-session=false",
            ])
            .arg("--persist-to")
            .arg(state)
            .env("XDG_CONFIG_HOME", dir.0.join("xdg"))
            .env("WRANGLER_SEND_METRICS", "false")
            .env("NO_COLOR", "1")
            .env("DO_NOT_TRACK", "1")
            .env("WRANGLER_HIDE_BANNER", "true")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("WRANGLER_NO_SKILLS_UPDATE_PROMPTS", "true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let child = command.spawn().expect("start wrangler dev");
        let guard = WranglerDev { child, _dir: dir };
        let base_url = format!("http://127.0.0.1:{port}");
        let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
        let mut ready = false;
        for _ in 0..600 {
            if log_text().contains("Ready on") {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "wrangler dev did not start:\n{}", log_text());
        assert!(
            wait_until_up(&base_url, Duration::from_secs(20)).await,
            "the Worker is not answering at {base_url}:\n{}",
            log_text()
        );
        Running {
            base_url,
            guard: Box::new(guard),
            logs: Some(log_path),
        }
    }
}

/// Keeps the state directory alive as long as the Worker that uses it.
struct WithState<T>(#[allow(dead_code)] T, #[allow(dead_code)] TempDir);

impl Launcher for Worker {
    fn name(&self) -> &'static str {
        "the Worker under workerd"
    }

    fn launch<'a>(
        &'a self,
        config: &'a str,
        tokens: &'a [&'a str],
    ) -> Pin<Box<dyn Future<Output = Running> + Send + 'a>> {
        Box::pin(async move {
            let state = TempDir::new("state");
            let mut running = self.start(config, tokens, &state.0).await;
            running.guard = Box::new(WithState(running.guard, state));
            running
        })
    }
}

fn toolchain() -> Option<Worker> {
    let wrangler = std::env::var_os("TWIML_FALLBACK_WRANGLER").map(PathBuf::from);
    let bundle = std::env::var_os("TWIML_FALLBACK_WORKER_BUNDLE").map(PathBuf::from);
    let problem = match (&wrangler, &bundle) {
        (None, _) | (_, None) => Some(
            "TWIML_FALLBACK_WRANGLER / TWIML_FALLBACK_WORKER_BUNDLE are not set (scripts/test.sh sets them)".to_owned(),
        ),
        (Some(wrangler), _) if !wrangler.exists() => Some(format!("wrangler is missing at {}", wrangler.display())),
        (_, Some(bundle)) if !bundle.join("index_bg.wasm").exists() || !bundle.join("index.js").exists() => {
            Some(format!(
                "the Worker bundle is missing in {} (scripts/worker.sh build)",
                bundle.display()
            ))
        }
        _ => None,
    };
    match problem {
        None => Some(Worker {
            wrangler: wrangler?,
            bundle: bundle?,
        }),
        Some(problem) => {
            if matches!(std::env::var("CI").as_deref(), Ok("true" | "1")) {
                panic!("Worker end-to-end tests: {problem}; refusing to skip under CI");
            }
            eprintln!("SKIPPED Worker end-to-end tests: {problem}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_to_end_table_passes_against_the_worker_under_workerd() {
    let Some(worker) = toolchain() else {
        return;
    };
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
async fn alert_windows_outlive_the_isolate_through_kv_and_every_request_logs_one_json_line() {
    let Some(worker) = toolchain() else {
        return;
    };
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
        // One record per request: the unsigned /healthz probe (wait_until_up) and the notice.
        let records: Vec<_> = lines.iter().filter(|line| line.get("status").is_some()).collect();
        assert_eq!(
            records.len(),
            2,
            "{}",
            std::fs::read_to_string(&logs).unwrap_or_default()
        );
        assert_eq!(records[0]["event"], "forbidden");
        assert_eq!(records[0]["signature"], "missing");
        assert_eq!(records[1]["event"], "fallback");
        assert_eq!(records[1]["error_code"], 11200);
        assert_eq!(records[1]["error_url"], first_url);
        assert_eq!(records[1]["signature"], "valid");
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
async fn a_broken_configuration_serves_the_defaults_and_says_why_on_every_request() {
    let Some(worker) = toolchain() else {
        return;
    };
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
    // Loudly: once per request (the /healthz probe and the two notices), not only at load.
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
async fn per_field_vars_set_the_common_answers_over_the_document() {
    let Some(worker) = toolchain() else {
        return;
    };
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
