//! `scripts/worker.sh`, as a user runs it: `dev` takes the configuration and the variables and
//! keeps secrets off every command line. (`deploy --dry-run` runs in CI on the template itself.)
//!
//! The usage and refusal tests run everywhere (they stop before any build). The ones that start
//! wrangler need the Worker toolchain and bundle (`scripts/test.sh` provides them, see
//! `Worker::from_env`): without them they are skipped with a notice, except under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use twiml_fallback::config::Config;
use twiml_fallback::webhook::Channel;
use twiml_fallback_e2e::worker::{TempDir, Worker};
use twiml_fallback_e2e::{CaseRequest, Signing, send, voice_params, wait_until_up};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

fn worker_sh() -> Command {
    let mut command = Command::new(repo_root().join("scripts/worker.sh"));
    command
        .env_remove("TWILIO_AUTH_TOKEN")
        .env_remove("TWILIO_AUTH_TOKEN_SECONDARY")
        .env_remove("TWIML_FALLBACK_ADMIN_TOKEN")
        .env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_API_SECRET")
        .env_remove("TWILIO_API_BASE")
        .stdin(Stdio::null());
    for (name, ..) in twiml_fallback::config::VARIABLES {
        command.env_remove(name);
    }
    command
}

fn run(args: &[&str]) -> Output {
    worker_sh().args(args).output().expect("run scripts/worker.sh")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

#[test]
fn dev_has_help_and_refuses_bad_arguments_before_building_anything() {
    let help = run(&["dev", "--help"]);
    assert_eq!(help.status.code(), Some(0), "{}", stderr(&help));
    let text = String::from_utf8_lossy(&help.stdout);
    for expected in [
        "--port PORT",
        "default 8788",
        "--config FILE",
        "--var NAME=VALUE",
        "FALLBACK_VOICE_SAY",
        "FALLBACK_RECOVERY_TIMEOUT_MS",
        "Examples:",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
    for (args, error, hint) in [
        (
            vec!["dev", "--var", "TWILIO_AUTH_TOKEN=abc"],
            "error: --var TWILIO_AUTH_TOKEN: a token on the command line is visible in ps",
            "hint: pass it in the environment",
        ),
        (
            vec!["dev", "--var", "TWIML_FALLBACK_ADMIN_TOKEN=abc"],
            "error: --var TWIML_FALLBACK_ADMIN_TOKEN: a token on the command line is visible in ps",
            "hint: pass it in the environment",
        ),
        (
            vec!["dev", "--var", "TWILIO_API_SECRET=abc"],
            "error: --var TWILIO_API_SECRET: a token on the command line is visible in ps",
            "hint: pass it in the environment",
        ),
        (
            vec!["dev", "--var", "FALLBACK_VOICE_SAYS=hi"],
            "error: --var FALLBACK_VOICE_SAYS: not one of the per-field variables",
            "FALLBACK_VOICE_SAY FALLBACK_VOICE_VOICE",
        ),
        (
            vec!["dev", "--var", "FALLBACK_VOICE_SAY"],
            "expected NAME=VALUE",
            "hint: e.g. --var",
        ),
        (
            vec!["dev", "--config", "/no/such/fallback.toml"],
            "error: --config /no/such/fallback.toml: no such readable file",
            "hint: ",
        ),
        (
            vec!["dev", "--port", "99999"],
            "is not a port number",
            "hint: e.g. --port 8788",
        ),
        (
            vec!["dev", "--bogus"],
            "error: dev: unknown argument --bogus",
            "hint: scripts/worker.sh dev --help",
        ),
    ] {
        let output = run(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(error), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(hint), "{args:?}: {}", stderr(&output));
        assert!(!stderr(&output).contains("worker-build"), "{args:?} built the Worker");
    }
}

/// `scripts/worker.sh dev`, in its own process group; the whole group stopped when dropped.
struct Dev {
    child: Child,
}

impl Dev {
    fn signal(&self, signal: &str) -> bool {
        Command::new("kill")
            .args(["-s", signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// SIGTERM to the group (as Ctrl-C or a service manager would), then waits for every process.
    fn stop(&mut self) {
        self.signal("TERM");
        for _ in 0..100 {
            if !self.signal("0") {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal("KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every process of the group `group`: (pid, argv, environment).
#[cfg(target_os = "linux")]
fn processes_in_group(group: u32) -> Vec<(u32, Vec<String>, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp …: comm may hold spaces, so split after its closing paren.
        let pgrp = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2))
            .and_then(|field| field.parse::<u32>().ok());
        if pgrp != Some(group) {
            continue;
        }
        let argv = std::fs::read(entry.path().join("cmdline"))
            .unwrap_or_default()
            .split(|&byte| byte == 0)
            .filter(|arg| !arg.is_empty())
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        found.push((pid, argv, environ));
    }
    found
}

const DEV_TOKEN: &str = "worker-dev-script-token-7f3a";
const DEV_ADMIN_TOKEN: &str = "worker-dev-script-admin-token-c41e";

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Worker toolchain: wrangler and workerd (scripts/test.sh provides them)"]
async fn dev_passes_the_token_configuration_and_variables_through_a_private_file_never_a_command_line() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    let _toolchain = Worker::from_env();
    let dir = TempDir::new("dev-script");
    // Quotes, a dollar sign and newlines: the env file must carry them exactly.
    let document =
        "[voice]\nsay = \"It costs $5 and $HOME: don't \\\"panic\\\".\"\n\n[messaging]\nmessage = \"From the file.\"\n";
    let config_path = dir.0.join("fallback.toml");
    std::fs::write(&config_path, document).expect("write the configuration");
    let from_var = "From --var: back at 9 (not $PATH).";
    let port = free_port();
    let log_path = dir.0.join("dev.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut command = worker_sh();
    command
        .arg("dev")
        .args(["--port", &port.to_string(), "--config"])
        .arg(&config_path)
        .args(["--var", &format!("FALLBACK_MESSAGING_MESSAGE={from_var}")])
        .args(["--", "--inspector-port", &free_port().to_string()])
        .arg("--show-interactive-dev-session=false")
        .env("TWILIO_AUTH_TOKEN", DEV_TOKEN)
        .env("TWIML_FALLBACK_ADMIN_TOKEN", DEV_ADMIN_TOKEN)
        // A variable from the environment, too.
        .env("FALLBACK_VOICE_LANGUAGE", "en-GB")
        .env("NO_COLOR", "1")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .process_group(0);
    let mut dev = Dev {
        child: command.spawn().expect("start scripts/worker.sh dev"),
    };
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut ready = false;
    // The first run may rebuild a stale bundle.
    for _ in 0..3600 {
        if log_text().contains("Ready on") {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "scripts/worker.sh dev did not start:\n{}", log_text());
    let base_url = format!("http://127.0.0.1:{port}");
    assert!(
        wait_until_up(&base_url, Duration::from_secs(20)).await,
        "{}",
        log_text()
    );

    // The token, the document and both variables reached the Worker.
    let expected = Config::from_sources(Some(document), |name| match name {
        "FALLBACK_MESSAGING_MESSAGE" => Some(from_var.to_owned()),
        "FALLBACK_VOICE_LANGUAGE" => Some("en-GB".to_owned()),
        _ => None,
    })
    .expect("a valid configuration");
    assert!(
        expected.voice().twiml.contains("$5 and $HOME"),
        "{}",
        expected.voice().twiml
    );
    let voice = CaseRequest {
        method: "POST",
        path: "/voice",
        params: voice_params(&[("ErrorCode", "11200"), ("ErrorUrl", "https://app.example.com/voice")]),
        signing: Signing::Token(DEV_TOKEN),
        raw_body: None,
    };
    let answer = send(&base_url, &voice).await;
    assert_eq!(answer.status, 200, "{}\n{}", answer.body, log_text());
    assert_eq!(answer.body, expected.fallback(Some(Channel::Voice), None).twiml);
    let sms = CaseRequest {
        params: vec![
            ("MessageSid".to_owned(), "SM1".to_owned()),
            ("From".to_owned(), "+14155550100".to_owned()),
            ("To".to_owned(), "+14155550199".to_owned()),
        ],
        ..voice.clone()
    };
    let answer = send(&base_url, &sms).await;
    assert_eq!(answer.body, expected.fallback(Some(Channel::Messaging), None).twiml);
    let unsigned = send(
        &base_url,
        &CaseRequest {
            signing: Signing::None,
            ..voice.clone()
        },
    )
    .await;
    assert_eq!(unsigned.status, 403, "the token is in force");
    // The admin token is in force too: the message is in the inbox (the Durable Object under
    // target/worker-dev-state), behind it.
    let inbox = format!("{base_url}/_twiml-fallback/inbox/SM1");
    let client = twiml_fallback_e2e::client();
    let refused = client.get(&inbox).send().await.expect("GET the entry");
    assert_eq!(refused.status(), 401);
    let entry = client
        .get(&inbox)
        .bearer_auth(DEV_ADMIN_TOKEN)
        .send()
        .await
        .expect("GET the entry");
    assert_eq!(entry.status(), 200, "{}", log_text());
    let entry: serde_json::Value =
        serde_json::from_slice(&entry.bytes().await.expect("the entry")).expect("the entry as JSON");
    assert_eq!(entry["sid"], "SM1", "{entry}");

    // No command line holds the token or the document; wrangler's and workerd's not the --var value.
    let group = processes_in_group(dev.child.id());
    let is_wrangler = |argv: &[String]| argv.iter().any(|arg| arg.contains("wrangler"));
    let is_workerd = |argv: &[String]| argv.first().is_some_and(|arg| arg.ends_with("/workerd"));
    assert!(
        group.iter().any(|(_, argv, _)| is_wrangler(argv)),
        "no wrangler in {group:?}"
    );
    assert!(
        group.iter().any(|(_, argv, _)| is_workerd(argv)),
        "no workerd in {group:?}"
    );
    for (pid, argv, _) in &group {
        let line = argv.join(" ");
        assert!(!line.contains(DEV_TOKEN), "the token is in the argv of {pid}: {line}");
        assert!(
            !line.contains(DEV_ADMIN_TOKEN),
            "the admin token is in the argv of {pid}: {line}"
        );
        assert!(
            !line.contains("It costs"),
            "the document is in the argv of {pid}: {line}"
        );
        if is_wrangler(argv) || is_workerd(argv) {
            assert!(
                !line.contains("back at 9"),
                "the --var value is in the argv of {pid}: {line}"
            );
        }
    }
    // The private file: mode 0600 in a 0700 directory of its own.
    let wrangler = group
        .iter()
        .find(|(_, argv, _)| argv.iter().any(|arg| arg == "--env-file"))
        .map(|(_, argv, _)| argv.clone())
        .unwrap_or_else(|| panic!("no --env-file on wrangler's command line: {group:?}"));
    let env_file = PathBuf::from(&wrangler[wrangler.iter().position(|arg| arg == "--env-file").expect("found") + 1]);
    let private_dir = env_file.parent().expect("a directory").to_path_buf();
    let mode = |path: &Path| std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&env_file), 0o600, "{}", env_file.display());
    assert_eq!(mode(&private_dir), 0o700, "{}", private_dir.display());
    let private = std::fs::read_to_string(&env_file).expect("readable");
    assert!(private.contains(DEV_TOKEN) && private.contains(DEV_ADMIN_TOKEN));
    assert!(!log_text().contains(DEV_TOKEN), "the token is in dev's output");
    assert!(
        !log_text().contains(DEV_ADMIN_TOKEN),
        "the admin token is in dev's output"
    );

    // Stopped as Ctrl-C or a service manager stops it: the private directory goes with it.
    dev.stop();
    assert!(!private_dir.exists(), "{} is left behind", private_dir.display());
}
