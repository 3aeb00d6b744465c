//! Starting the built Worker under workerd (`wrangler dev --local`, which also runs its inbox's
//! Durable Object on SQLite and writes its `send_email` messages to files), for the end-to-end tests and the
//! robustness run; and under raw `workerd serve`, for load runs.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::{InboxLauncher, Launcher, ReplayLauncher, Running, wait_until_up};

/// The built bundle's modules (`scripts/worker.sh build`): the main module first.
const BUNDLE_MODULES: [&str; 3] = ["index.js", "shim.mjs", "index_bg.wasm"];

/// The built Worker and the wrangler that runs it.
pub struct Worker {
    wrangler: PathBuf,
    bundle: PathBuf,
}

/// A directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh, empty one.
    pub fn new(what: &str) -> Self {
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

/// The `INBOX` binding and the migration that creates its class (`new_sqlite_classes` or
/// `new_classes`), as wrangler.toml declares them.
fn inbox_manifest(migration: &str) -> String {
    format!(
        "[[durable_objects.bindings]]\nname = \"INBOX\"\nclass_name = \"Inbox\"\n\n\
         [[migrations]]\ntag = \"v1\"\n{migration} = [\"Inbox\"]\n\n"
    )
}

/// `value` as a TOML multi-line literal string (no escapes; our configurations never hold `'''`).
fn literal(value: &str) -> String {
    assert!(!value.contains("'''"), "configuration cannot contain '''");
    format!("'''\n{value}'''")
}

/// What backs the Worker's `INBOX` binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboxBinding {
    /// The `Inbox` class on SQLite (`new_sqlite_classes`), as wrangler.toml deploys it.
    Sqlite,
    /// No binding: the Worker keeps no inbox.
    None,
    /// The `Inbox` class without SQLite storage (`new_classes`): every inbox write fails, as when
    /// the storage breaks.
    WithoutSql,
}

/// How to start the Worker under `wrangler dev`.
#[derive(Clone, Copy, Debug)]
pub struct Start<'a> {
    /// `FALLBACK_CONFIG`.
    pub config: &'a str,
    /// `TWILIO_AUTH_TOKEN` and `TWILIO_AUTH_TOKEN_SECONDARY`, as secrets.
    pub tokens: &'a [&'a str],
    /// Where its Durable Objects are kept (`--persist-to`): Workers started on
    /// the same directory share them, one after the other.
    pub state: &'a Path,
    /// More `[vars]` (the per-field settings).
    pub vars: &'a [(&'a str, &'a str)],
    /// `TWIML_FALLBACK_ADMIN_TOKEN`, as a secret (`None`: the admin API answers 404).
    pub admin_token: Option<&'a str>,
    /// What backs `INBOX`.
    pub inbox: InboxBinding,
    /// Start as if a `WebAssembly.RuntimeError` had reached the bundle's global `error` listener
    /// before the first request: a main module over the Worker's sets worker-build's
    /// `criticalError` flag, which the Worker's entry must honour by resetting the instance.
    pub critical_error: bool,
}

impl<'a> Start<'a> {
    /// The Worker with `config` and `tokens`, its state in `state`, the inbox on SQLite, no admin
    /// token and no more variables.
    pub fn new(config: &'a str, tokens: &'a [&'a str], state: &'a Path) -> Self {
        Self {
            config,
            tokens,
            state,
            vars: &[],
            admin_token: None,
            inbox: InboxBinding::Sqlite,
            critical_error: false,
        }
    }
}

impl Worker {
    /// Starts the Worker with `config` as `FALLBACK_CONFIG`, `tokens` as its secrets, and its
    /// inbox stored in `state` (shared by Workers started on the same directory).
    pub async fn start(&self, config: &str, tokens: &[&str], state: &Path) -> Running {
        self.start_with(Start::new(config, tokens, state)).await
    }

    /// As [`Worker::start`], with more `[vars]` (the per-field settings).
    pub async fn start_with_vars(
        &self,
        config: &str,
        tokens: &[&str],
        state: &Path,
        extra: &[(&str, &str)],
    ) -> Running {
        self.start_with(Start {
            vars: extra,
            ..Start::new(config, tokens, state)
        })
        .await
    }

    /// Starts the Worker as `start` says.
    pub async fn start_with(&self, start: Start<'_>) -> Running {
        let dir = TempDir::new("dev");
        std::fs::create_dir_all(dir.0.join("xdg")).expect("temp dir");
        let mut vars = format!("FALLBACK_CONFIG = {}\n", literal(start.config));
        for (name, value) in start.vars {
            vars.push_str(&format!("{name} = {}\n", literal(value)));
        }
        // The tokens as secrets, the way a deployment has them (wrangler shows them as hidden).
        let mut secrets: String = ["TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN_SECONDARY"]
            .iter()
            .zip(start.tokens)
            .map(|(name, token)| format!("{name}={token}\n"))
            .collect();
        if let Some(token) = start.admin_token {
            secrets.push_str(&format!("TWIML_FALLBACK_ADMIN_TOKEN={token}\n"));
        }
        std::fs::write(dir.0.join(".dev.vars"), secrets).expect("write .dev.vars");
        // The inbox as wrangler.toml declares it (or not, or without SQLite storage).
        let inbox = match start.inbox {
            InboxBinding::Sqlite => inbox_manifest("new_sqlite_classes"),
            InboxBinding::WithoutSql => inbox_manifest("new_classes"),
            InboxBinding::None => String::new(),
        };
        let main = if start.critical_error {
            let bundle = dir.0.join("bundle");
            std::fs::create_dir_all(&bundle).expect("the bundle's copy");
            for module in BUNDLE_MODULES {
                let name = if module == "index.js" { "entry.mjs" } else { module };
                std::fs::copy(self.bundle.join(module), bundle.join(name)).expect("copy the bundle");
            }
            std::fs::write(
                bundle.join("index.js"),
                "import handler from \"./entry.mjs\";\nexport * from \"./entry.mjs\";\n\
                 globalThis.__worker_init_state.criticalError = true;\nexport default handler;\n",
            )
            .expect("write the flagging main module");
            bundle.join("index.js")
        } else {
            self.bundle.join("index.js")
        };
        let manifest = format!(
            "name = \"twiml-fallback-e2e\"\nmain = \"{}\"\ncompatibility_date = \"2026-11-01\"\n\n\
             [[rules]]\ntype = \"ESModule\"\nglobs = [\"**/*.mjs\"]\n\n\
             [[send_email]]\nname = \"ALERT_EMAIL\"\n\n{inbox}[vars]\n{vars}",
            main.display()
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
            .arg(start.state)
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

impl InboxLauncher for Worker {
    fn launch_with_inbox<'a>(
        &'a self,
        config: &'a str,
        tokens: &'a [&'a str],
        admin_token: &'a str,
        state: &'a Path,
    ) -> Pin<Box<dyn Future<Output = Running> + Send + 'a>> {
        Box::pin(self.start_with(Start {
            admin_token: Some(admin_token),
            ..Start::new(config, tokens, state)
        }))
    }
}

impl ReplayLauncher for Worker {
    fn launch_for_replay<'a>(
        &'a self,
        config: &'a str,
        tokens: &'a [&'a str],
        admin_token: &'a str,
        state: &'a Path,
        api_base: &'a str,
    ) -> Pin<Box<dyn Future<Output = Running> + Send + 'a>> {
        Box::pin(async move {
            self.start_with(Start {
                admin_token: Some(admin_token),
                vars: &[("TWILIO_API_BASE", api_base)],
                ..Start::new(config, tokens, state)
            })
            .await
        })
    }
}

impl Worker {
    /// The Worker named by `TWIML_FALLBACK_WRANGLER` and `TWIML_FALLBACK_WORKER_BUNDLE` (which
    /// `scripts/test.sh` sets, after building the bundle). Panics, naming what is missing and how
    /// to get it, when either is absent: the tests that call this are `#[ignore]`d, so they only
    /// run on purpose, and then must not pass without the Worker.
    pub fn from_env() -> Worker {
        let how = "scripts/test.sh builds the Worker and sets both; by hand: `scripts/worker.sh build`, \
                   then the paths `scripts/worker.sh env` prints";
        let (Some(wrangler), Some(bundle)) = (
            std::env::var_os("TWIML_FALLBACK_WRANGLER").map(PathBuf::from),
            std::env::var_os("TWIML_FALLBACK_WORKER_BUNDLE").map(PathBuf::from),
        ) else {
            panic!(
                "the Worker's end-to-end tests need wrangler and the built Worker: \
                 TWIML_FALLBACK_WRANGLER / TWIML_FALLBACK_WORKER_BUNDLE are not set ({how})"
            );
        };
        assert!(
            wrangler.exists(),
            "wrangler is missing at {} (TWIML_FALLBACK_WRANGLER; {how})",
            wrangler.display()
        );
        assert!(
            BUNDLE_MODULES.iter().all(|module| bundle.join(module).exists()),
            "the built Worker is missing in {} (TWIML_FALLBACK_WORKER_BUNDLE; {how})",
            bundle.display()
        );
        Worker { wrangler, bundle }
    }
}

/// The built Worker under raw `workerd serve` — no wrangler, no dev proxy in front (which fails
/// some concurrent requests whose large bodies the Worker does not read), no email binding (the
/// `send_email` module is `wrangler dev`'s). Its inbox is the `Inbox` Durable Object on
/// SQLite, stored on local disk under the run's folder, unless [`Workerd::without_inbox`] says
/// otherwise (to measure what the inbox costs). For load and robustness runs.
pub struct Workerd {
    workerd: PathBuf,
    bundle: PathBuf,
    inbox: bool,
    admin_token: Option<String>,
}

/// `workerd serve`; killed (then its files removed) when dropped.
struct WorkerdProcess {
    child: Child,
    _dir: TempDir,
}

impl Drop for WorkerdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `value` as a Cap'n Proto text literal.
fn capnp_text(value: &str) -> String {
    let mut out = String::from("\"");
    for character in value.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

impl Workerd {
    /// The Worker named by `TWIML_FALLBACK_WORKERD` (the workerd binary wrangler bundles) and
    /// `TWIML_FALLBACK_WORKER_BUNDLE`; `None` when either is missing.
    pub fn from_env() -> Option<Workerd> {
        let workerd = PathBuf::from(std::env::var_os("TWIML_FALLBACK_WORKERD")?);
        let bundle = PathBuf::from(std::env::var_os("TWIML_FALLBACK_WORKER_BUNDLE")?);
        (workerd.exists() && BUNDLE_MODULES.iter().all(|module| bundle.join(module).exists())).then_some(Workerd {
            workerd,
            bundle,
            inbox: true,
            admin_token: None,
        })
    }

    /// The same Worker with `TWIML_FALLBACK_ADMIN_TOKEN` set: its admin API answers.
    pub fn with_admin_token(self, token: &str) -> Self {
        Self {
            admin_token: Some(token.to_owned()),
            ..self
        }
    }

    /// The same Worker without the `INBOX` binding: it keeps no inbox.
    pub fn without_inbox(self) -> Self {
        Self { inbox: false, ..self }
    }

    /// Starts it with `config` as `FALLBACK_CONFIG` and `tokens` as its secrets, outbound fetches
    /// allowed to local addresses (the alert receiver, a primary), its inbox (unless
    /// [`Workerd::without_inbox`]) in a fresh folder.
    pub async fn start(&self, config: &str, tokens: &[&str]) -> Running {
        let dir = TempDir::new("workerd");
        for module in BUNDLE_MODULES {
            std::fs::copy(self.bundle.join(module), dir.0.join(module)).expect("copy the bundle");
        }
        let mut bindings = vec![format!("(name = \"FALLBACK_CONFIG\", text = {})", capnp_text(config))];
        for (name, token) in ["TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN_SECONDARY"].iter().zip(tokens) {
            bindings.push(format!("(name = \"{name}\", text = {})", capnp_text(token)));
        }
        if let Some(token) = &self.admin_token {
            bindings.push(format!(
                "(name = \"TWIML_FALLBACK_ADMIN_TOKEN\", text = {})",
                capnp_text(token)
            ));
        }
        // The inbox: the Durable Object class the Worker exports, on SQLite, on local disk.
        let (disk, inbox) = if self.inbox {
            let storage = dir.0.join("durable-objects");
            std::fs::create_dir_all(&storage).expect("the Durable Objects' folder");
            bindings.push("(name = \"INBOX\", durableObjectNamespace = \"Inbox\")".to_owned());
            (
                format!(
                    "\n    (name = \"do-disk\", disk = (path = {}, writable = true)),",
                    capnp_text(&storage.display().to_string())
                ),
                "\n  durableObjectNamespaces = [ (className = \"Inbox\", uniqueKey = \"twiml-fallback-inbox\", enableSql = true) ],\
                 \n  durableObjectStorage = (localDisk = \"do-disk\"),"
                    .to_owned(),
            )
        } else {
            (String::new(), String::new())
        };
        let port = free_port();
        let capnp = format!(
            r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "internet", network = (allow = ["public", "private", "local"])),{disk}
  ],
  sockets = [ (name = "main", address = "127.0.0.1:{port}", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [
    (name = "index.js", esModule = embed "index.js"),
    (name = "shim.mjs", esModule = embed "shim.mjs"),
    (name = "index_bg.wasm", wasm = embed "index_bg.wasm"),
  ],
  compatibilityDate = "2026-11-01",
  bindings = [ {} ],{inbox}
);
"#,
            bindings.join(", ")
        );
        std::fs::write(dir.0.join("worker.capnp"), capnp).expect("write the workerd config");
        let log_path = dir.0.join("workerd.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(&self.workerd)
            .arg("serve")
            .arg(dir.0.join("worker.capnp"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start workerd");
        let guard = WorkerdProcess { child, _dir: dir };
        let base_url = format!("http://127.0.0.1:{port}");
        assert!(
            wait_until_up(&base_url, Duration::from_secs(20)).await,
            "workerd is not answering at {base_url}:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        Running {
            base_url,
            guard: Box::new(guard),
            logs: Some(log_path),
        }
    }
}
