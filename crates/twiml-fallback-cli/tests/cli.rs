//! The real `twiml-fallback` binary, every subcommand and exit code.

#[path = "../../twiml-fallback/examples/chaos/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod chaos;
#[path = "support/process.rs"]
mod process;
#[path = "support/recorder.rs"]
mod recorder;
#[path = "support/smtp_fake.rs"]
mod smtp_fake;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use twiml_fallback::layer::FallbackLayer;

use process::{code, command, run, stderr, stdout};
use recorder::start_recorder;

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("twiml-fallback-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write temp file");
    path
}

#[test]
fn version_and_help_with_examples_for_every_subcommand() {
    let version = run(&["--version"]);
    assert_eq!(code(&version), 0);
    assert!(stdout(&version).starts_with("twiml-fallback "), "{}", stdout(&version));
    for subcommand in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["check", "--help"],
        vec!["simulate", "--help"],
        vec!["numbers", "--help"],
        vec!["numbers", "audit", "--help"],
        vec!["numbers", "set", "--help"],
        vec!["healthcheck", "--help"],
    ] {
        let help = run(&subcommand);
        assert_eq!(code(&help), 0, "{subcommand:?}");
        assert!(stdout(&help).contains("Examples:"), "{subcommand:?}: {}", stdout(&help));
    }
    let serve = stdout(&run(&["serve", "--help"]));
    assert!(serve.contains("RUST_LOG=warn"), "{serve}");
    assert!(serve.contains("--public-url https://example.com/twilio"), "{serve}");
    let unknown = run(&["serve", "--no-such-flag"]);
    assert_eq!(code(&unknown), 2);
}

#[test]
fn check_reports_problems_as_file_line_col_and_exits_by_validity() {
    let valid = temp_file(
        "valid.xml",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Message>Hi 🍰</Message></Response>\n",
    );
    let lowercase = temp_file(
        "lowercase.xml",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response><Message>Hi</Message></response>\n",
    );
    let warned = temp_file("warned.xml", "<Response>\n  <Say loop=\"-1\">Hi</Say>\n</Response>\n");
    let valid_path = valid.to_str().expect("UTF-8 path");
    let lowercase_path = lowercase.to_str().expect("UTF-8 path");
    let warned_path = warned.to_str().expect("UTF-8 path");

    let ok = run(&["check", valid_path]);
    assert_eq!(code(&ok), 0);
    assert_eq!(stdout(&ok), "");
    assert!(
        stderr(&ok).contains("1 file checked: 1 valid, 0 invalid"),
        "{}",
        stderr(&ok)
    );

    let bad = run(&["check", valid_path, lowercase_path]);
    assert_eq!(code(&bad), 1);
    assert_eq!(
        stdout(&bad),
        format!(
            "{lowercase_path}:2:1: error[12102]: the root element must be <Response>, not <response> (XML is case-sensitive)\n"
        )
    );

    let sms_rules = run(&["check", "--channel", "messaging", warned_path]);
    assert_eq!(code(&sms_rules), 1, "<Say> is a voice verb");
    assert!(
        stdout(&sms_rules).contains(":2:3: error[12200]: <Say> is a voice verb"),
        "{}",
        stdout(&sms_rules)
    );

    let warnings = run(&["check", "--channel", "voice", warned_path]);
    assert_eq!(code(&warnings), 0, "warnings alone pass");
    assert!(
        stdout(&warnings).contains(":2:8: warning[12200]: <Say loop> is \"-1\""),
        "{}",
        stdout(&warnings)
    );
    assert_eq!(
        code(&run(&["check", "--channel", "voice", "--deny-warnings", warned_path])),
        1
    );

    let json = run(&["check", "--format", "json", valid_path, lowercase_path]);
    assert_eq!(code(&json), 1);
    let document: Value = serde_json::from_str(&stdout(&json)).expect("JSON output");
    assert_eq!(document["valid"], false);
    assert_eq!(document["files"][0]["channel"], "messaging");
    assert_eq!(document["files"][1]["diagnostics"][0]["code"], 12102);
    assert_eq!(document["files"][1]["diagnostics"][0]["line"], 2);

    let mut stdin = command(&["check", "--channel", "voice", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    stdin
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"<Response><Play>https://a.example/x.mp3</Play></Response>")
        .expect("write");
    let piped = stdin.wait_with_output().expect("output");
    assert_eq!(code(&piped), 0);

    let missing = run(&["check", "/no/such/file.xml"]);
    assert_eq!(code(&missing), 2);
    assert!(
        stderr(&missing).starts_with("error: cannot read /no/such/file.xml"),
        "{}",
        stderr(&missing)
    );
    assert!(stderr(&missing).contains("hint: "));
    assert_eq!(code(&run(&["check"])), 2, "no files is a usage error");
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` and returns its base URL.
fn start_serve(extra: &[&str], token: Option<&str>) -> (KillOnDrop, String, PathBuf) {
    start_serve_at("127.0.0.1:0", extra, token)
}

fn start_serve_at(addr: &str, extra: &[&str], token: Option<&str>) -> (KillOnDrop, String, PathBuf) {
    let token: Vec<(&str, &str)> = token.map(|token| ("TWILIO_AUTH_TOKEN", token)).into_iter().collect();
    start_serve_with(addr, extra, &token)
}

/// Starts `serve` on `addr` with `extra` arguments and `env` set, and returns its base URL and log.
fn start_serve_with(addr: &str, extra: &[&str], env: &[(&str, &str)]) -> (KillOnDrop, String, PathBuf) {
    let run = rand_suffix();
    let log = temp_file(&format!("serve-{run}.log"), "");
    let mut command = command(&[&["serve", "--addr", addr], extra].concat());
    // Each serve its own default inbox: one serve per inbox (a second on the same file is
    // refused), and these tests run in parallel.
    command.env(
        "XDG_DATA_HOME",
        std::env::temp_dir().join(format!("twiml-fallback-cli-data-{}-{run}", std::process::id())),
    );
    command.envs(env.iter().copied());
    let child = command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start serve");
    let guard = KillOnDrop(child);
    match twiml_fallback_e2e::serve_address(&log, Duration::from_secs(10)) {
        Some(addr) => (guard, format!("http://{addr}"), log),
        None => panic!(
            "serve did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        ),
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[test]
fn serve_refuses_bad_configuration_with_every_problem_and_exit_2() {
    let config = temp_file(
        "bad.toml",
        "[voice]\nsay = \"\"\nloop = -1\n[numbers.\"555\"]\nvoice = { say = \"x\" }\n",
    );
    let output = run(&["serve", "--config", config.to_str().expect("path")]);
    assert_eq!(code(&output), 2);
    let text = stderr(&output);
    assert!(text.contains("voice.say: empty"), "{text}");
    assert!(text.contains("voice.loop: must be between 0 and 1000"), "{text}");
    assert!(text.contains("numbers.555: not an E.164 phone number"), "{text}");
    assert!(text.contains("hint: "), "{text}");

    // URL options follow the configuration's rule (the core's is_absolute_http_url): a URL
    // without a host is refused, a short one with a host is fine.
    let no_host = run(&["simulate", "--channel", "voice", "--url", "https:///voice"]);
    assert_eq!(code(&no_host), 2, "{}", stderr(&no_host));
    assert!(
        stderr(&no_host).contains("is not an absolute http(s) URL"),
        "{}",
        stderr(&no_host)
    );
    let no_host = run(&[
        "numbers",
        "set",
        "--all-unprotected",
        "--voice-fallback-url",
        "https://",
    ]);
    assert_eq!(code(&no_host), 2, "{}", stderr(&no_host));
    assert!(
        stderr(&no_host).contains("is not an absolute http(s) URL"),
        "{}",
        stderr(&no_host)
    );

    let bad_url = run(&["serve", "--public-url", "fallback.example.com"]);
    assert_eq!(code(&bad_url), 2);
    assert!(
        stderr(&bad_url).contains("must be an absolute http(s) URL"),
        "{}",
        stderr(&bad_url)
    );

    let missing = run(&["serve", "--config", "/no/such.toml"]);
    assert_eq!(code(&missing), 2);
}

#[test]
fn serve_answers_health_any_path_and_stops_gracefully_on_sigterm() {
    let (mut guard, url, log) = start_serve(&["--log-format", "json"], Some("t0ken"));
    let health = http_get(&format!("{url}/healthz"));
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let answer = http_post(
        &format!("{url}/some/deep/path?x=1"),
        "CallSid=CA1&ErrorCode=11200",
        None,
    );
    assert!(
        answer.starts_with("HTTP/1.1 403"),
        "unsigned with a token configured: {answer}"
    );
    // Port already in use: a clear error, exit 2.
    let addr = url.trim_start_matches("http://");
    let clash = run(&["serve", "--addr", addr]);
    assert_eq!(code(&clash), 2);
    assert!(stderr(&clash).contains("cannot listen on"), "{}", stderr(&clash));
    // One JSON object per request in the logs.
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    let request_line = logs
        .lines()
        .find(|line| line.contains("\"event\":\"forbidden\""))
        .unwrap_or_else(|| panic!("{logs}"));
    let record: Value = serde_json::from_str(request_line).expect("a JSON log line");
    assert_eq!(record["path"], "/some/deep/path");
    assert_eq!(record["signature"], "missing");
    assert!(!logs.contains("t0ken"), "the token never appears in logs");
    // SIGTERM: a graceful exit with status 0.
    let pid = guard.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = guard.0.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    assert!(std::fs::read_to_string(&log).unwrap_or_default().contains("stopped"));
}

#[test]
fn serve_accepts_host_names_and_refuses_bad_addresses_with_the_fix() {
    for (addr, error, hint) in [
        (
            "8080",
            "error: --addr \"8080\": has no host, only a port",
            "hint: write 127.0.0.1:8080 (this machine only) or 0.0.0.0:8080 (every interface), as HOST:PORT",
        ),
        (
            ":8080",
            "error: --addr \":8080\": has no host",
            "hint: write 127.0.0.1:8080 (this machine only) or 0.0.0.0:8080 (every interface), as HOST:PORT",
        ),
        (
            "fallback-host",
            "error: --addr \"fallback-host\": has no port",
            "hint: write fallback-host:8787",
        ),
        ("::1:8080", "an IPv6 address goes in brackets", "hint: write [::1]:8080"),
        (
            "http://localhost:8080",
            "not a http:// URL",
            "hint: write --addr localhost:8080",
        ),
    ] {
        let output = run(&["serve", "--addr", addr]);
        assert_eq!(code(&output), 2, "{addr}: {}", stderr(&output));
        assert!(stderr(&output).contains(error), "{addr}: {}", stderr(&output));
        assert!(stderr(&output).contains(hint), "{addr}: {}", stderr(&output));
    }
    // localhost is the IPv4 loopback, which every client reaches.
    let (_guard, url, _log) = start_serve_at("localhost:0", &[], None);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(http_get(&format!("{url}/healthz")).starts_with("HTTP/1.1 200"));
}

#[test]
fn health_checks_are_answered_by_the_core_without_a_log_line_and_healthcheck_reads_them() {
    let (_guard, url, log) = start_serve(&["--log-format", "json"], Some("t0ken"));
    for method in ["GET", "HEAD"] {
        let answer = http(&format!("{url}/healthz?probe=1"), method, "", None);
        assert!(answer.starts_with("HTTP/1.1 200"), "{method}: {answer}");
        assert!(answer.contains("content-type: text/plain; charset=utf-8"), "{answer}");
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        assert_eq!(body, if method == "GET" { "ok\n" } else { "" }, "{method}");
    }
    // A POST to /healthz is an ordinary request: refused unsigned, and logged.
    assert!(http_post(&format!("{url}/healthz"), "CallSid=CA1", None).starts_with("HTTP/1.1 403"));

    let health = run(&["healthcheck", "--url", &format!("{url}/healthz")]);
    assert_eq!(code(&health), 0, "{}", stderr(&health));
    assert_eq!(stdout(&health), format!("healthy: {url}/healthz answered 200\n"));
    let not_found_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let down = run(&[
        "healthcheck",
        "--url",
        &format!("http://127.0.0.1:{not_found_port}/healthz"),
    ]);
    assert_eq!(code(&down), 1, "{}", stderr(&down));
    assert!(stderr(&down).starts_with("unhealthy: "), "{}", stderr(&down));
    let bad = run(&["healthcheck", "--url", "127.0.0.1:8787/healthz"]);
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("hint: e.g. --url http://127.0.0.1:8787/healthz"),
        "{}",
        stderr(&bad)
    );

    // Only the POST was logged: health checks add no lines.
    let mut logs = String::new();
    for _ in 0..100 {
        logs = std::fs::read_to_string(&log).unwrap_or_default();
        if logs.contains("\"event\":\"forbidden\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let records: Vec<&str> = logs.lines().filter(|line| line.contains("\"path\":")).collect();
    assert_eq!(records.len(), 1, "{logs}");
    assert!(records[0].contains("\"method\":\"POST\""), "{logs}");
}

fn http_get(url: &str) -> String {
    http(url, "GET", "", None)
}

fn http_post(url: &str, body: &str, signature: Option<&str>) -> String {
    http(url, "POST", body, signature)
}

/// A minimal blocking HTTP/1.1 exchange (no client library in the way).
fn http(url: &str, method: &str, body: &str, signature: Option<&str>) -> String {
    let signature: Vec<(&str, &str)> = signature.map(|s| ("X-Twilio-Signature", s)).into_iter().collect();
    exchange(url, method, body, &signature)
}

/// Sends `METHOD url` (`http://HOST:PORT/path`) with a form body and exactly these extra headers
/// (a `Host` among them replaces the real one), and returns the raw answer.
fn exchange(url: &str, method: &str, body: &str, headers: &[(&str, &str)]) -> String {
    use std::io::Read;
    let rest = url.trim_start_matches("http://");
    let (addr, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let host = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map_or(addr, |(_, value)| value);
    let extra: String = headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

/// The chaos demo in-process: the layered app and the bare one, on their own ports.
fn start_chaos(runtime: &tokio::runtime::Runtime) -> (String, String) {
    runtime.block_on(async {
        let layered = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let bare = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let urls = (
            format!("http://{}", layered.local_addr().expect("addr")),
            format!("http://{}", bare.local_addr().expect("addr")),
        );
        let app = chaos::ChaosApp::new(FallbackLayer::new().deadline(Duration::from_millis(800)));
        tokio::spawn(chaos::serve(layered, app, std::future::pending()));
        tokio::spawn(chaos::serve(bare, chaos::BareChaosApp::new(), std::future::pending()));
        urls
    })
}

#[test]
fn simulate_follows_twilios_rules_against_chaos_and_serve() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (layered, bare) = start_chaos(&runtime);
    let (_serve, fallback, _log) = start_serve(&[], Some("sim-token"));

    // A healthy primary: served by it, exit 0.
    let ok = run(&[
        "simulate",
        "--channel",
        "messaging",
        "--url",
        &format!("{layered}/sms/ok"),
        "--body",
        "hello there",
    ]);
    assert_eq!(code(&ok), 0, "{}", stdout(&ok));
    assert!(
        stdout(&ok).contains("sender receives SMS: \"Hello from the app. You said: hello there\""),
        "{}",
        stdout(&ok)
    );

    // A 500 from the primary: Twilio requests the fallback (signed for it), the caller hears it.
    let fell_back = run(&[
        "simulate",
        "--url",
        &format!("{bare}/voice/status-500"),
        "--fallback-url",
        &format!("{fallback}/voice"),
        "--auth-token",
        "sim-token",
    ]);
    let text = stdout(&fell_back);
    assert_eq!(code(&fell_back), 0, "{text}");
    assert!(
        !text.contains("sim-token") && !stderr(&fell_back).contains("sim-token"),
        "the token is never printed"
    );
    assert!(
        text.contains("error 11200 (HTTP retrieval failure): the webhook answered HTTP 500"),
        "{text}"
    );
    assert!(text.contains("2. fallback POST"), "{text}");
    assert!(text.contains("(ErrorCode=11200)"), "{text}");
    assert!(
        text.contains("caller hears: \"An application error has occurred. Please call back later.\""),
        "{text}"
    );

    // Unsigned requests to a serve with a token are refused: a failed call, exit 1.
    let unsigned = run(&[
        "simulate",
        "--url",
        &format!("{bare}/voice/panic"),
        "--fallback-url",
        &format!("{fallback}/voice"),
    ]);
    assert_eq!(code(&unsigned), 1, "{}", stdout(&unsigned));
    assert!(
        stdout(&unsigned).contains("application-error message"),
        "{}",
        stdout(&unsigned)
    );
    // …and simulate says why, with the endpoint's own words.
    assert!(
        stdout(&unsigned).contains(
            "   answer: Forbidden: X-Twilio-Signature is missing or does not match this request.\n   \
             hint: the fallback refused the signature: pass --auth-token (or TWILIO_AUTH_TOKEN), the same token as the endpoint\n"
        ),
        "{}",
        stdout(&unsigned)
    );
    let wrong_token = run(&[
        "simulate",
        "--url",
        &format!("{bare}/voice/panic"),
        "--fallback-url",
        &format!("{fallback}/voice"),
        "--auth-token",
        "not-the-token",
        "--format",
        "json",
    ]);
    assert_eq!(code(&wrong_token), 1);
    let document: Value = serde_json::from_str(&stdout(&wrong_token)).expect("JSON output");
    assert_eq!(document["hops"][1]["status"], 403);
    assert!(
        document["hops"][1]["refusal"]
            .as_str()
            .is_some_and(|body| body.starts_with("Forbidden: X-Twilio-Signature")),
        "{document}"
    );
    assert!(
        document["hops"][1]["hint"]
            .as_str()
            .is_some_and(|hint| hint.contains("the same token as the endpoint's")),
        "{document}"
    );

    // The lowercase root without a fallback URL: 12102 and silence for the sender.
    let lowercase = run(&[
        "simulate",
        "--channel",
        "messaging",
        "--url",
        &format!("{bare}/sms/lowercase"),
        "--format",
        "json",
    ]);
    assert_eq!(code(&lowercase), 1);
    let document: Value = serde_json::from_str(&stdout(&lowercase)).expect("JSON output");
    assert_eq!(document["hops"][0]["error_code"], 12102);
    assert_eq!(document["outcome"], "failed");
    assert_eq!(document["experience"][0], "the sender gets no reply");

    // An answer over 64 KB: read only to the limit, judged 11750 like Twilio does.
    let huge = run(&["simulate", "--url", &format!("{bare}/voice/huge"), "--format", "json"]);
    assert_eq!(code(&huge), 1);
    let document: Value = serde_json::from_str(&stdout(&huge)).expect("JSON output");
    assert_eq!(document["hops"][0]["error_code"], 11750, "{document}");

    // Voice TwiML to an SMS webhook: Twilio does not fall back (12200 is a warning), but nothing is sent.
    let wrong = run(&[
        "simulate",
        "--channel",
        "messaging",
        "--url",
        &format!("{bare}/sms/wrong-channel"),
        "--fallback-url",
        &format!("{fallback}/sms"),
    ]);
    assert_eq!(code(&wrong), 1, "{}", stdout(&wrong));
    assert!(
        stdout(&wrong).contains(
            "   Twilio runs it, logging each schema error below as a 12200 warning and skipping what it cannot run:\n     \
             1:49: error[12200]: <Say> is a voice verb"
        ),
        "{}",
        stdout(&wrong)
    );
    assert!(!stdout(&wrong).contains("2. fallback"), "{}", stdout(&wrong));

    // The same wrong-channel answer behind the layer: the layer's fallback reaches the sender.
    let guarded = run(&[
        "simulate",
        "--channel",
        "messaging",
        "--url",
        &format!("{layered}/sms/wrong-channel"),
    ]);
    assert_eq!(code(&guarded), 0, "{}", stdout(&guarded));

    // Twilio's time budget: #tt= in the URL shortens it.
    let slow = run(&[
        "simulate",
        "--url",
        &format!("{bare}/voice/slow#tt=300"),
        "--format",
        "json",
    ]);
    assert_eq!(code(&slow), 1);
    let document: Value = serde_json::from_str(&stdout(&slow)).expect("JSON output");
    assert_eq!(document["hops"][0]["error_code"], 11205);
    assert!(document["hops"][0]["elapsed_ms"].as_u64().is_some_and(|ms| ms < 3000));

    // Nothing listening: a connection failure.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_url = format!("http://{}/voice", closed.local_addr().expect("addr"));
    drop(closed);
    let refused = run(&["simulate", "--url", &closed_url, "--format", "json"]);
    assert_eq!(code(&refused), 1);
    let document: Value = serde_json::from_str(&stdout(&refused)).expect("JSON output");
    assert_eq!(document["hops"][0]["error_code"], 11205);

    // Usage errors.
    assert_eq!(code(&run(&["simulate", "--url", "not-a-url"])), 2);
    assert_eq!(code(&run(&["simulate"])), 2);
}

#[test]
fn simulate_warns_about_short_fragments_and_says_when_the_layer_answered() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // The layered chaos app answers a slow handler after its 800 ms deadline.
    let (layered, _bare) = start_chaos(&runtime);

    let slow = run(&["simulate", "--url", &format!("{layered}/voice/slow#rt=3000")]);
    let text = stdout(&slow);
    assert_eq!(code(&slow), 0, "the layer's answer is valid TwiML: {text}");
    assert!(
        text.contains(
            "   warning: #rt=3000 gives Twilio 3000 ms for the answer, less than the 13000 ms a fallback layer with \
             its default 12 s deadline needs"
        ),
        "{text}"
    );
    assert!(text.contains("set the layer's .deadline() below 3000 ms"), "{text}");
    assert!(
        text.contains("   answered by the fallback layer: timeout (valid voice TwiML)\n"),
        "{text}"
    );
    assert!(!text.contains("ok: valid"), "{text}");

    let panic = run(&[
        "simulate",
        "--url",
        &format!("{layered}/voice/panic#tt=14000"),
        "--format",
        "json",
    ]);
    assert_eq!(code(&panic), 0, "{}", stdout(&panic));
    let document: Value = serde_json::from_str(&stdout(&panic)).expect("JSON output");
    assert_eq!(document["hops"][0]["fallback_layer"], "panic");
    assert_eq!(
        document["hops"][0]["timing_warning"],
        Value::Null,
        "14 s leaves the layer its 12 s"
    );

    // The app's own answer: no layer, no warning.
    let ok = run(&["simulate", "--channel", "sms", "--url", &format!("{layered}/sms/ok")]);
    assert_eq!(code(&ok), 0, "{}", stdout(&ok));
    assert!(
        stdout(&ok).contains("   ok: valid messaging TwiML\n"),
        "{}",
        stdout(&ok)
    );
    assert!(!stdout(&ok).contains("warning"), "{}", stdout(&ok));
}

#[test]
fn channel_sms_is_messaging_everywhere_a_channel_is_taken() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (layered, _bare) = start_chaos(&runtime);
    let simulated = run(&[
        "simulate",
        "--channel",
        "sms",
        "--url",
        &format!("{layered}/sms/ok"),
        "--format",
        "json",
    ]);
    assert_eq!(code(&simulated), 0, "{}", stderr(&simulated));
    let document: Value = serde_json::from_str(&stdout(&simulated)).expect("JSON output");
    assert_eq!(document["channel"], "messaging");

    let voice_twiml = temp_file("say.xml", "<Response><Say>Hi</Say></Response>");
    let path = voice_twiml.to_str().expect("UTF-8 path");
    let checked = run(&["check", "--channel", "sms", path]);
    assert_eq!(code(&checked), 1, "checked with the messaging rules");
    assert!(
        stdout(&checked).contains("error[12200]: <Say> is a voice verb"),
        "{}",
        stdout(&checked)
    );
    assert_eq!(code(&run(&["check", "--channel", "fax", path])), 2);
}

#[test]
fn serve_warns_behind_a_tunnel_with_the_checked_url_and_the_fix() {
    use twiml_fallback::signature::compute_signature;
    use twiml_fallback::webhook::Params;

    let body = "CallSid=CA1&To=%2B14155550199&ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fvoice";
    let params = Params::from_form(body.as_bytes());
    // What ngrok forwards: the public Host, the scheme in X-Forwarded-Proto, signed for the public URL.
    let signature = compute_signature("tunnel-token", "https://abcd.ngrok-free.app/voice", &params);
    let ngrok = [
        ("Host", "abcd.ngrok-free.app"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Twilio-Signature", signature.as_str()),
    ];

    let (_serve, url, log) = start_serve(&[], Some("tunnel-token"));
    let refused = http_raw(&url, "/voice", body, &ngrok);
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logs.contains(r#"signatures_checked_against="http://<Host><path> (as received)""#),
        "the start-up line says what signatures are checked against: {logs}"
    );
    let warning = logs
        .lines()
        .find(|line| line.contains(" WARN forbidden "))
        .unwrap_or_else(|| panic!("no WARN line: {logs}"));
    assert!(warning.contains(" signature=mismatch "), "{warning}");
    assert!(
        warning.contains(" checked_url=http://abcd.ngrok-free.app/voice "),
        "{warning}"
    );
    assert!(
        warning.contains("start serve with --public-url https://abcd.ngrok-free.app (or --trust-forwarded-headers"),
        "{warning}"
    );
    assert!(
        warning.contains("Host: abcd.ngrok-free.app, X-Forwarded-Proto: https"),
        "{warning}"
    );
    assert!(!logs.contains("tunnel-token"), "the token never appears in logs");

    // The fix it names works.
    let (_fixed, url, log) = start_serve(
        &["--public-url", "https://abcd.ngrok-free.app", "--log-format", "json"],
        Some("tunnel-token"),
    );
    let answered = http_raw(&url, "/voice", body, &ngrok);
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logs.contains(r#"signatures_checked_against":"https://abcd.ngrok-free.app<path>""#),
        "{logs}"
    );
    // A direct request signed for its local URL: the JSON names the URL it was checked against,
    // and there is no proxy to blame.
    let local_signature = compute_signature("tunnel-token", &format!("{url}/voice"), &params);
    let local = http_raw(
        &url,
        "/voice",
        body,
        &[("X-Twilio-Signature", local_signature.as_str())],
    );
    assert!(local.starts_with("HTTP/1.1 403"), "{local}");
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    let record: Value = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["event"] == "forbidden")
        .unwrap_or_else(|| panic!("no forbidden record: {logs}"));
    assert_eq!(record["checked_url"], "https://abcd.ngrok-free.app/voice");
    assert_eq!(record["hint"], Value::Null, "{record}");
}

#[test]
fn serve_text_log_lines_carry_the_time_once_and_say_filed_opened_and_notified() {
    use twiml_fallback::signature::compute_signature;
    use twiml_fallback::webhook::Params;

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (receiver, alerts) = start_recorder(&runtime, json!({"ok": true}));
    let config = temp_file(
        &format!("alerts-{}.toml", rand_suffix()),
        &format!("[alerts]\nwebhook_url = \"{receiver}/alert\"\ndedup_seconds = 300\n"),
    );
    let (_serve, url, log) = start_serve(&["--config", config.to_str().expect("path")], Some("log-token"));
    let body = "CallSid=CA1&ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fvoice";
    let signature = compute_signature(
        "log-token",
        &format!("{url}/voice"),
        &Params::from_form(body.as_bytes()),
    );
    for _ in 0..2 {
        assert!(http_post(&format!("{url}/voice"), body, Some(&signature)).starts_with("HTTP/1.1 200"));
    }
    for _ in 0..400 {
        let logs = std::fs::read_to_string(&log).unwrap_or_default();
        if logs.contains(" incident-opened ") && logs.contains(" notification ") {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    // A moment more: a second notification would show now.
    std::thread::sleep(Duration::from_millis(500));
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        alerts.lock().expect("record").len(),
        1,
        "one notification per incident: {logs}"
    );
    let is_time = |word: &str| {
        word.len() == 24 && word.as_bytes()[4] == b'-' && word.as_bytes()[10] == b'T' && word.ends_with('Z')
    };
    for line in logs.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(words.first().is_some_and(|word| is_time(word)), "no time first: {line}");
        assert_eq!(words.iter().filter(|word| is_time(word)).count(), 1, "{line}");
    }
    let filed = logs
        .lines()
        .filter(|line| line.contains(" incident_origin=https://app.example.com"))
        .count();
    assert_eq!(
        filed, 2,
        "both records say which incident they were filed under: {logs}"
    );
    assert_eq!(
        logs.lines()
            .filter(|line| line.contains(" WARN incident-opened "))
            .count(),
        1,
        "{logs}"
    );
    assert!(
        logs.lines().any(|line| line.contains(" INFO notification ")
            && line.contains(" sink=webhook ")
            && line.contains(" kind=open ")
            && line.contains(" status=delivered")),
        "{logs}"
    );
    assert!(
        logs.lines()
            .any(|line| line.contains(" WARN alerts-config ") && line.contains("dedup_seconds = 300 is retired")),
        "the retired key is said at start: {logs}"
    );
}

/// Sends `POST path` to the server at `url` with exactly these extra headers (a `Host` among
/// them replaces the real one), and returns the raw answer.
fn http_raw(url: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> String {
    exchange(&format!("{url}{path}"), "POST", body, headers)
}

#[test]
fn serve_checks_signatures_against_the_public_url_or_trusted_forwarding_headers() {
    use twiml_fallback::signature::compute_signature;
    use twiml_fallback::webhook::Params;

    let body = "CallSid=CA1&To=%2B14155550199&ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fvoice";
    let params = Params::from_form(body.as_bytes());
    let public = compute_signature("pub-token", "https://fallback.example.com/twilio/voice", &params);

    let (_serve, url, _log) = start_serve(
        &["--public-url", "https://fallback.example.com/twilio"],
        Some("pub-token"),
    );
    let answer = http_post(&format!("{url}/voice"), body, Some(&public));
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "signed for the public URL: {answer}"
    );
    assert!(answer.contains("<Say>"), "{answer}");
    let local = compute_signature("pub-token", &format!("{url}/voice"), &params);
    let refused = http_post(&format!("{url}/voice"), body, Some(&local));
    assert!(
        refused.starts_with("HTTP/1.1 403"),
        "signed for the local URL instead: {refused}"
    );

    let (_forwarding, url, _log) = start_serve(&["--trust-forwarded-headers"], Some("pub-token"));
    let forwarded = compute_signature("pub-token", "https://edge.example.net/voice", &params);
    let answer = http_with_headers(
        &format!("{url}/voice"),
        body,
        &forwarded,
        &[("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "edge.example.net")],
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

fn http_with_headers(url: &str, body: &str, signature: &str, headers: &[(&str, &str)]) -> String {
    let all: Vec<(&str, &str)> = [("X-Twilio-Signature", signature)]
        .into_iter()
        .chain(headers.iter().copied())
        .collect();
    exchange(url, "POST", body, &all)
}

fn inbox(endpoint: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = command(&[&["inbox", "--endpoint", endpoint], args].concat());
    if let Some(token) = token {
        command.env("TWIML_FALLBACK_ADMIN_TOKEN", token);
    }
    command.output().expect("run twiml-fallback inbox")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_lists_shows_exports_and_dismisses_what_serve_kept() {
    let file = temp_file(&format!("inbox-{}.sqlite3", rand_suffix()), "");
    std::fs::remove_file(&file).expect("an empty path");
    let path = file.to_str().expect("path").to_owned();
    let (_serve, base, _log) = start_serve_with(
        "127.0.0.1:0",
        &["--inbox", &path],
        &[("TWILIO_AUTH_TOKEN", "tok"), ("TWIML_FALLBACK_ADMIN_TOKEN", "adm")],
    );
    let sid = "SM0123456789abcdef0123456789abcdef";
    let params = [
        ("MessageSid", sid),
        ("From", "+14155550100"),
        ("To", "+14155550199"),
        ("Body", "Table for 4, \"tonight\"?"),
        ("SmsStatus", "received"),
        ("ErrorCode", "11200"),
    ];
    let request = twiml_fallback_e2e::CaseRequest {
        method: "POST",
        path: "/sms",
        params: params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        signing: twiml_fallback_e2e::Signing::Token("tok"),
        raw_body: None,
    };
    assert_eq!(twiml_fallback_e2e::send(&base, &request).await.status, 200);

    let list = inbox(&base, Some("adm"), &["list"]);
    assert_eq!(code(&list), 0, "{}", stderr(&list));
    let table = stdout(&list);
    assert!(table.starts_with("RECEIVED "), "{table}");
    assert!(
        table.contains(sid) && table.contains("pending") && table.contains("+14155550100") && table.contains("11200"),
        "{table}"
    );

    let json: Value =
        serde_json::from_str(&stdout(&inbox(&base, Some("adm"), &["list", "--format", "json"]))).expect("JSON");
    assert_eq!(json["entries"][0]["sid"], sid);
    assert_eq!(json["next"], Value::Null);

    let show = stdout(&inbox(&base, Some("adm"), &["show", sid]));
    assert!(show.contains("body         Table for 4, \"tonight\"?"), "{show}");
    assert!(show.contains("  Body=Table for 4"), "{show}");

    let csv = inbox(&base, Some("adm"), &["export", "--format", "csv"]);
    let csv_text = stdout(&csv);
    let rows: Vec<&str> = csv_text.split("\r\n").filter(|row| !row.is_empty()).collect();
    assert_eq!(rows.len(), 2, "{csv_text}");
    assert!(
        rows[0].starts_with("sid,channel,status,received_at,from,to,body,"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].contains("\"Table for 4, \"\"tonight\"\"?\""),
        "quoted as RFC 4180: {}",
        rows[1]
    );
    assert!(stderr(&csv).contains("exported 1 entries"));
    let jsonl = stdout(&inbox(&base, Some("adm"), &["export"]));
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["params"][0], json!(["MessageSid", sid]));

    let dismissed = inbox(&base, Some("adm"), &["dismiss", sid]);
    assert_eq!(code(&dismissed), 0, "{}", stderr(&dismissed));
    assert!(stdout(&dismissed).contains(&format!("dismissed {sid}")));
    let after: Value =
        serde_json::from_str(&stdout(&inbox(&base, Some("adm"), &["show", sid, "--format", "json"]))).expect("JSON");
    assert_eq!(
        (after["status"].as_str(), after["body"].as_str()),
        (Some("dismissed"), None)
    );

    // Errors: an unknown entry is 1; a wrong or missing token, an unreachable endpoint, a bad filter 2.
    let missing = inbox(&base, Some("adm"), &["show", "SM99999999999999999999999999999999"]);
    assert_eq!(code(&missing), 1);
    assert!(stderr(&missing).contains("no entry"), "{}", stderr(&missing));
    let wrong = inbox(&base, Some("nope"), &["list"]);
    assert_eq!(code(&wrong), 2);
    assert!(stderr(&wrong).contains("refused (401)"), "{}", stderr(&wrong));
    let no_token = inbox(&base, None, &["list"]);
    assert_eq!(code(&no_token), 2);
    assert!(
        stderr(&no_token).contains("TWIML_FALLBACK_ADMIN_TOKEN"),
        "{}",
        stderr(&no_token)
    );
    let unreachable = inbox("http://127.0.0.1:9", Some("adm"), &["list"]);
    assert_eq!(code(&unreachable), 2);
    assert!(
        stderr(&unreachable).contains("cannot reach"),
        "{}",
        stderr(&unreachable)
    );
    let bad = inbox(&base, Some("adm"), &["list", "--status", "sent"]);
    assert_eq!(code(&bad), 2);
    assert!(stderr(&bad).contains("--status"), "{}", stderr(&bad));
}

#[test]
fn serve_refuses_an_inbox_that_is_not_a_database_and_says_where() {
    let file = temp_file(&format!("corrupt-{}.sqlite3", rand_suffix()), &"garbage ".repeat(1024));
    let output = run(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--inbox",
        file.to_str().expect("path"),
    ]);
    assert_eq!(code(&output), 2);
    let error = stderr(&output);
    assert!(
        error.contains("cannot open the inbox at") && error.contains("not a database"),
        "{error}"
    );
    assert!(error.contains("--no-inbox"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_an_inbox_says_so_and_its_admin_api_answers_503() {
    let (_serve, base, log) = start_serve_with(
        "127.0.0.1:0",
        &["--no-inbox"],
        &[("TWILIO_AUTH_TOKEN", "tok"), ("TWIML_FALLBACK_ADMIN_TOKEN", "adm")],
    );
    let answer = twiml_fallback_e2e::admin(&base, "GET", "/_twiml-fallback/inbox", Some("Bearer adm"), None).await;
    assert_eq!(answer.status, 503, "{}", answer.json);
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("--no-inbox: missed messages and calls are answered but not kept"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layers_http_capture_sink_puts_what_the_app_failed_into_serves_inbox() {
    use tower::ServiceExt as _;
    use twiml_fallback::layer::HttpCaptureSink;

    let file = temp_file(&format!("capture-{}.sqlite3", rand_suffix()), "");
    std::fs::remove_file(&file).expect("an empty path");
    let (_serve, base, _log) = start_serve_with(
        "127.0.0.1:0",
        &["--inbox", file.to_str().expect("path")],
        &[("TWILIO_AUTH_TOKEN", "tok"), ("TWIML_FALLBACK_ADMIN_TOKEN", "adm")],
    );

    async fn broken() -> &'static str {
        panic!("the app's database is down")
    }
    let sink = HttpCaptureSink::new(&base, "adm").expect("a sink");
    let app: Router = Router::new()
        .route("/sms", post(broken))
        .layer(FallbackLayer::new().capture(sink.clone()));
    let sid = "SM77777777777777777777777777777777";
    let request = axum::http::Request::builder()
        .method("POST")
        .uri("/sms")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(format!(
            "MessageSid={sid}&From=%2B14155550100&To=%2B14155550199&Body=hello"
        )))
        .expect("a request");
    let answer = app.oneshot(request).await.expect("an answer");
    assert_eq!(answer.status(), StatusCode::OK, "the person still gets the fallback");

    let mut entry = Value::Null;
    for _ in 0..100 {
        let found = twiml_fallback_e2e::admin(
            &base,
            "GET",
            &format!("/_twiml-fallback/inbox/{sid}"),
            Some("Bearer adm"),
            None,
        )
        .await;
        if found.status == 200 {
            entry = found.json;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(entry["source"], "layer", "{entry}");
    assert_eq!(
        (entry["cause"].as_str(), entry["error_code"].as_u64()),
        (Some("panic"), Some(11200))
    );
    assert_eq!(
        (entry["body"].as_str(), entry["url"].as_str()),
        (Some("hello"), Some("/sms"))
    );
    assert_eq!(sink.dropped(), 0);
}

/// `twiml-fallback incidents` or `alerts …` against `endpoint`, with `token` as the admin token.
fn admin_command(endpoint: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = command(&[args, &["--endpoint", endpoint]].concat());
    if let Some(token) = token {
        command.env("TWIML_FALLBACK_ADMIN_TOKEN", token);
    }
    command.output().expect("run twiml-fallback")
}

/// A signed fallback notice for a message whose primary, https://app.example.com, failed.
fn failed_message(sid: &str) -> twiml_fallback_e2e::CaseRequest {
    let params = [
        ("MessageSid", sid),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("From", "+14155550100"),
        ("To", "+14155550199"),
        ("Body", "are you open?"),
        ("ErrorCode", "11200"),
        ("ErrorUrl", "https://app.example.com/sms"),
    ];
    twiml_fallback_e2e::CaseRequest {
        method: "POST",
        path: "/sms",
        params: params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        signing: twiml_fallback_e2e::Signing::Token("tok"),
        raw_body: None,
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn incidents_and_alerts_test_show_what_serve_opened_and_who_was_told() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let smtp = runtime.block_on(smtp_fake::FakeSmtp::start(smtp_fake::Behaviour::Accept));
    let (receiver, hooks) = start_recorder(&runtime, json!({"ok": true}));
    let config = temp_file(
        &format!("incidents-{}.toml", rand_suffix()),
        &format!(
            "[alerts]\nwebhook_url = \"{receiver}/hook\"\nemail = [\"ops@example.com\"]\nresolve_after_seconds = 600\n\
             [alerts.smtp]\nurl = \"{}\"\nfrom = \"twiml-fallback <alerts@example.com>\"\n",
            smtp.url_as("alerts%40example.com")
        ),
    );
    let (_serve, base, log) = start_serve_with(
        "127.0.0.1:0",
        &["--config", config.to_str().expect("path")],
        &[
            ("TWILIO_AUTH_TOKEN", "tok"),
            ("TWIML_FALLBACK_ADMIN_TOKEN", "adm"),
            ("TWIML_FALLBACK_SMTP_PASSWORD", "smtp-s3cret"),
        ],
    );
    for sid in [
        "SM00000000000000000000000000000001",
        "SM00000000000000000000000000000002",
    ] {
        let answer = runtime.block_on(twiml_fallback_e2e::send(&base, &failed_message(sid)));
        assert_eq!(answer.status, 200);
    }
    wait_for("the open notifications", || {
        hooks.lock().expect("hooks").len() == 1 && smtp.received().len() == 1
    });
    assert_eq!(
        smtp.received()[0].auth.as_deref(),
        Some("alerts@example.com:smtp-s3cret"),
        "logged in as the URL's user with the password from the environment"
    );
    wait_for("both notices counted", || {
        let listed = admin_command(&base, Some("adm"), &["incidents", "--format", "json"]);
        serde_json::from_str::<Value>(&stdout(&listed)).is_ok_and(|json| {
            json["incidents"][0]["notices"] == 2
                && json["incidents"][0]["deliveries"]
                    .as_array()
                    .is_some_and(|all| all.iter().all(|delivery| delivery["status"] == "delivered"))
        })
    });

    let listed = admin_command(&base, Some("adm"), &["incidents"]);
    assert_eq!(code(&listed), 0, "{}", stderr(&listed));
    let text = stdout(&listed);
    assert!(
        text.starts_with("twf-") && text.contains("  OPEN  https://app.example.com\n"),
        "{text}"
    );
    assert!(
        text.contains("  notices    2: 11200 (HTTP retrieval failure) ×2\n"),
        "{text}"
    );
    assert!(
        text.contains("  traffic    2 messages, 0 calls, 2 kept in the inbox\n"),
        "{text}"
    );
    assert!(text.contains("  numbers    +14155550199\n"), "{text}");
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words(&text).contains("webhook open delivered 1 try at "), "{text}");
    assert!(
        words(&text).contains("email:ops@example.com open delivered 1 try at "),
        "{text}"
    );
    let json: Value = serde_json::from_str(&stdout(&admin_command(
        &base,
        Some("adm"),
        &["incidents", "--format", "json", "--limit", "1"],
    )))
    .expect("JSON");
    assert_eq!(json["incidents"].as_array().map(Vec::len), Some(1));
    assert_eq!(json["incidents"][0]["origin"], "https://app.example.com");
    assert_eq!(json["incidents"][0]["error_codes"]["11200"], 2);

    let tested = admin_command(&base, Some("adm"), &["alerts", "test"]);
    assert_eq!(code(&tested), 0, "{}{}", stdout(&tested), stderr(&tested));
    let lines = stdout(&tested);
    assert!(words(&lines).contains("webhook test delivered HTTP 200"), "{lines}");
    assert!(
        words(&lines).contains("email:ops@example.com test delivered sent"),
        "{lines}"
    );
    assert!(lines.ends_with("2 of 2 test notifications delivered\n"), "{lines}");
    assert_eq!(hooks.lock().expect("hooks").len(), 2);
    assert_eq!(smtp.received().len(), 2);
    assert!(
        smtp.received()[1].data.contains("Subject: =?UTF-8?B?"),
        "{}",
        smtp.received()[1].data
    );
    let json: Value = serde_json::from_str(&stdout(&admin_command(
        &base,
        Some("adm"),
        &["alerts", "--endpoint", &base, "test", "--format", "json"],
    )))
    .expect("JSON");
    assert_eq!(json["delivered"], true, "{json}");
    assert_eq!(json["results"].as_array().map(Vec::len), Some(2), "{json}");

    // Usage errors and refusals: 2, before or instead of anything sent.
    let bad_sid = admin_command(&base, Some("adm"), &["alerts", "test", "--account-sid", "AC123"]);
    assert_eq!(code(&bad_sid), 2);
    assert!(
        stderr(&bad_sid).contains("is not an account SID"),
        "{}",
        stderr(&bad_sid)
    );
    assert_eq!(
        hooks.lock().expect("hooks").len(),
        3,
        "only the JSON test was sent since"
    );
    for args in [vec!["incidents"], vec!["alerts", "test"]] {
        let wrong = admin_command(&base, Some("nope"), &args);
        assert_eq!(code(&wrong), 2, "{args:?}");
        assert!(stderr(&wrong).contains("refused (401)"), "{}", stderr(&wrong));
        assert!(
            stderr(&wrong).contains("hint: use the TWIML_FALLBACK_ADMIN_TOKEN"),
            "{}",
            stderr(&wrong)
        );
        let missing = admin_command(&base, None, &args);
        assert_eq!(code(&missing), 2, "{args:?}");
        assert!(stderr(&missing).contains("no admin token"), "{}", stderr(&missing));
        let unreachable = admin_command("http://127.0.0.1:9", Some("adm"), &args);
        assert_eq!(code(&unreachable), 2, "{args:?}");
        assert!(
            stderr(&unreachable).contains("cannot reach"),
            "{}",
            stderr(&unreachable)
        );
    }
    for limit in ["0", "501", "many"] {
        assert_eq!(
            code(&admin_command(&base, Some("adm"), &["incidents", "--limit", limit])),
            2
        );
    }
    assert_eq!(code(&run(&["alerts"])), 2, "alerts needs a subcommand");
    for help in [vec!["incidents", "--help"], vec!["alerts", "test", "--help"]] {
        let shown = run(&help);
        assert_eq!(code(&shown), 0);
        assert!(stdout(&shown).contains("Examples:"), "{}", stdout(&shown));
    }
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !logs.contains("smtp-s3cret"),
        "the SMTP password is never logged: {logs}"
    );
    assert!(logs.contains("alert email through the SMTP relay 127.0.0.1:"), "{logs}");
}

#[test]
fn alerts_test_exits_1_when_a_sink_fails_or_the_endpoint_has_no_alerts() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let config = temp_file(
        &format!("failing-sink-{}.toml", rand_suffix()),
        &format!("[alerts]\nwebhook_url = \"http://127.0.0.1:{port}/hook\"\n"),
    );
    let (_serve, base, _log) = start_serve_with(
        "127.0.0.1:0",
        &["--config", config.to_str().expect("path")],
        &[("TWILIO_AUTH_TOKEN", "tok"), ("TWIML_FALLBACK_ADMIN_TOKEN", "adm")],
    );
    let tested = admin_command(&base, Some("adm"), &["alerts", "test"]);
    assert_eq!(code(&tested), 1, "{}{}", stdout(&tested), stderr(&tested));
    let lines = stdout(&tested);
    assert!(lines.starts_with("webhook  test     FAILED     "), "{lines}");
    assert!(lines.ends_with("0 of 1 test notifications delivered\n"), "{lines}");
    let json = admin_command(&base, Some("adm"), &["alerts", "test", "--format", "json"]);
    assert_eq!(code(&json), 1);
    let json: Value = serde_json::from_str(&stdout(&json)).expect("JSON");
    assert_eq!(json["delivered"], false);

    let (_bare, base, _log) = start_serve_with(
        "127.0.0.1:0",
        &[],
        &[("TWILIO_AUTH_TOKEN", "tok"), ("TWIML_FALLBACK_ADMIN_TOKEN", "adm")],
    );
    let nothing = admin_command(&base, Some("adm"), &["alerts", "test"]);
    assert_eq!(code(&nothing), 1);
    assert!(
        stderr(&nothing).contains("no [alerts] in this endpoint's configuration"),
        "{}",
        stderr(&nothing)
    );
    assert!(
        stderr(&nothing).contains("hint: add an [alerts] table"),
        "{}",
        stderr(&nothing)
    );
    let listed = admin_command(&base, Some("adm"), &["incidents"]);
    assert_eq!((code(&listed), stdout(&listed).as_str()), (0, "no incidents\n"));
}

#[test]
fn serve_without_an_inbox_says_alerts_need_it_and_incidents_answer_503() {
    let config = temp_file(
        &format!("no-inbox-alerts-{}.toml", rand_suffix()),
        "[alerts]\nwebhook_url = \"http://127.0.0.1:9/hook\"\n",
    );
    let (_serve, base, log) = start_serve_with(
        "127.0.0.1:0",
        &["--no-inbox", "--config", config.to_str().expect("path")],
        &[("TWILIO_AUTH_TOKEN", "tok"), ("TWIML_FALLBACK_ADMIN_TOKEN", "adm")],
    );
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("--no-inbox: [alerts] needs the inbox database (incidents are kept in it)"),
        "{text}"
    );
    let listed = admin_command(&base, Some("adm"), &["incidents"]);
    assert_eq!(code(&listed), 2);
    assert!(stderr(&listed).contains("keeps no inbox"), "{}", stderr(&listed));
    assert!(
        stderr(&listed).contains("hint: incidents are kept in the inbox's database"),
        "{}",
        stderr(&listed)
    );
}

#[test]
fn serve_refuses_bad_alert_keys_and_an_smtp_user_without_a_password() {
    let config = temp_file(
        &format!("bad-alerts-{}.toml", rand_suffix()),
        "[alerts]\nemail = [\"ops@\", \"fine@example.com\"]\nsms = [\"555-0100\"]\nsms_from = \"+14155550199\"\n\
         pagerduty_routing_key = \"short\"\n[alerts.smtp]\nurl = \"http://smtp.example.com\"\nfrom = \"alerts@example.com\"\n",
    );
    let output = run(&["serve", "--no-inbox", "--config", config.to_str().expect("path")]);
    assert_eq!(code(&output), 2);
    let text = stderr(&output);
    assert!(
        text.contains("alerts.email[0]: \"ops@\" is not an email address"),
        "{text}"
    );
    assert!(
        text.contains("alerts.sms[0]: \"555-0100\" is not an E.164 phone number"),
        "{text}"
    );
    assert!(
        text.contains("alerts.pagerduty_routing_key: must be the 32 letters and digits") && !text.contains("short\""),
        "the key is never echoed: {text}"
    );
    assert!(text.contains("alerts.smtp.url: ") && text.contains("smtp://"), "{text}");
    assert!(text.contains("hint: "), "{text}");

    let config = temp_file(
        &format!("smtp-user-{}.toml", rand_suffix()),
        "[alerts]\nemail = [\"ops@example.com\"]\n[alerts.smtp]\nurl = \"smtp://relay-user@127.0.0.1:2525\"\nfrom = \"alerts@example.com\"\n",
    );
    let output = run(&["serve", "--no-inbox", "--config", config.to_str().expect("path")]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("logs in as \"relay-user\", but TWIML_FALLBACK_SMTP_PASSWORD is not set"),
        "{text}"
    );
    assert!(text.contains("hint: set TWIML_FALLBACK_SMTP_PASSWORD"), "{text}");
}
