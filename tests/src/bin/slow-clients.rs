//! The slow-clients benchmark of `twiml-fallback serve`'s connection limits (issue 14, item 12),
//! run by `benches/slow-clients.sh`.
//!
//! `slow-clients --serve PATH [--half-lines 3000] [--drips 300] [--drip-every-ms 1000]
//!     [--header-timeout-ms 5000] [--body-timeout-ms 10000] [--concurrency 4] [--margin-ms 2000]`
//!
//! Starts `PATH serve` on 127.0.0.1 (a free port) with those timeouts, a token, and room for
//! every slow connection (`--max-connections` = half-lines + drips + 256: this measures the
//! timeouts; the limit has its own test). Then opens the connections that send half a request
//! line and the signed requests whose body drips a byte every `--drip-every-ms`, sends signed
//! requests whole, `--concurrency` at a time, while they are open, and prints the signed requests'
//! latency (p50, p99, max, how many over 1 s), how long the slow connections stayed open, and the
//! limit lines serve logged (it is stopped with SIGTERM first, so it writes its last counts).
//!
//! Exit status 0 when every signed answer was valid TwiML and every slow connection was closed
//! within its timeout + `--margin-ms`; 1 otherwise; 2 on usage errors or too low an open-file
//! limit.

use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use twiml_fallback_e2e::slow_clients::{SlowClients, open_file_limit, run};

const TOKEN: &str = "slow-clients-token";

struct Options {
    serve: String,
    half_lines: usize,
    drips: usize,
    drip_every_ms: u64,
    header_timeout_ms: u64,
    body_timeout_ms: u64,
    concurrency: usize,
    margin_ms: u64,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        serve: String::new(),
        half_lines: 3000,
        drips: 300,
        drip_every_ms: 1000,
        header_timeout_ms: 5000,
        body_timeout_ms: 10_000,
        concurrency: 4,
        margin_ms: 2000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: {value:?} is not a whole number"))
        };
        let count = || number().map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        match flag.as_str() {
            "--serve" => options.serve = value.clone(),
            "--half-lines" => options.half_lines = count()?,
            "--drips" => options.drips = count()?,
            "--drip-every-ms" => options.drip_every_ms = number()?.max(1),
            "--header-timeout-ms" => options.header_timeout_ms = number()?,
            "--body-timeout-ms" => options.body_timeout_ms = number()?,
            "--concurrency" => options.concurrency = count()?.max(1),
            "--margin-ms" => options.margin_ms = number()?,
            other => return Err(format!("unknown option {other} (see the source's docs)")),
        }
    }
    if options.serve.is_empty() {
        return Err("--serve PATH (the twiml-fallback binary) is required".to_owned());
    }
    Ok(options)
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts serve; the guard, its address and its log file.
fn start_serve(options: &Options) -> Result<(KillOnDrop, SocketAddr, std::path::PathBuf), String> {
    let log = std::env::temp_dir().join(format!("twiml-fallback-slow-clients-{}.log", std::process::id()));
    let file = std::fs::File::create(&log).map_err(|error| format!("{}: {error}", log.display()))?;
    let max_connections = options.half_lines + options.drips + 256;
    // Its own inbox, never the user's default one.
    let inbox = std::env::temp_dir().join(format!("twiml-fallback-slow-clients-{}.sqlite3", std::process::id()));
    let child = Command::new(&options.serve)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .arg("--inbox")
        .arg(&inbox)
        .args(["--header-timeout-ms", &options.header_timeout_ms.to_string()])
        .args(["--body-timeout-ms", &options.body_timeout_ms.to_string()])
        .args(["--max-connections", &max_connections.to_string()])
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env_remove("TWILIO_AUTH_TOKEN_SECONDARY")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", options.serve))?;
    let guard = KillOnDrop(child);
    match twiml_fallback_e2e::serve_address(&log, Duration::from_secs(10)) {
        Some(addr) => Ok((guard, addr, log)),
        None => Err(format!(
            "serve did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )),
    }
}

/// Stops serve with SIGTERM, so that it writes its last limit lines, as a deploy would stop it.
fn stop(mut serve: KillOnDrop) {
    let pid = serve.0.id().to_string();
    if Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .is_ok_and(|status| status.success())
    {
        for _ in 0..200 {
            if serve.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        println!("serve did not stop within 10 s of SIGTERM");
    }
    // The guard kills it.
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    // This process holds every slow connection, and so does serve (it inherits the limit).
    let needed = (options.half_lines + options.drips + options.concurrency) as u64 + 256;
    if let Some(limit) = open_file_limit().filter(|&limit| limit < needed) {
        eprintln!(
            "error: {} slow connections need about {needed} open files, the limit is {limit}\n\
             hint: raise it (ulimit -n {needed}; benches/slow-clients.sh raises it to the hard limit) or open fewer",
            options.half_lines + options.drips
        );
        return ExitCode::from(2);
    }
    let (serve, addr, log) = match start_serve(&options) {
        Ok(started) => started,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let header_timeout = Duration::from_millis(options.header_timeout_ms);
    let body_timeout = Duration::from_millis(options.body_timeout_ms);
    let scenario = SlowClients {
        addr,
        token: TOKEN.to_owned(),
        half_lines: options.half_lines,
        drips: options.drips,
        drip_every: Duration::from_millis(options.drip_every_ms),
        concurrency: options.concurrency,
        min_signed: 100,
        give_up_after: header_timeout.max(body_timeout) + Duration::from_secs(20),
    };
    println!(
        "serve on {addr}: --header-timeout-ms {} --body-timeout-ms {}; {} half-request-line connections, \
         {} bodies dripping a byte every {} ms, signed requests {} at a time",
        options.header_timeout_ms,
        options.body_timeout_ms,
        options.half_lines,
        options.drips,
        options.drip_every_ms,
        options.concurrency
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let report = runtime.block_on(run(&scenario));
    stop(serve);
    println!("{}", report.summary());
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    let limit_lines: Vec<&str> = logs.lines().filter(|line| line.contains("limit=")).collect();
    println!("serve logged {} limit lines:", limit_lines.len());
    for line in &limit_lines {
        println!("  {line}");
    }
    let _ = std::fs::remove_file(&log);
    let problems = report.problems(header_timeout, body_timeout, Duration::from_millis(options.margin_ms));
    if problems.is_empty() {
        println!("ok: every signed answer was valid TwiML; every slow connection closed within its timeout");
        ExitCode::SUCCESS
    } else {
        for problem in problems.iter().take(20) {
            println!("FAILED: {problem}");
        }
        if problems.len() > 20 {
            println!("FAILED: … and {} more", problems.len() - 20);
        }
        ExitCode::from(1)
    }
}
