//! Load with checked answers, for the robustness runs of issue 6 (`benches/fault-load.sh`,
//! `benches/worker-robustness.sh`).
//!
//! `e2e-load layer --url http://127.0.0.1:3000 [--requests 50000] [--concurrency 64]
//!     [--failure-percent 40] [--server-pid PID] [--rss-requests 1000000]`
//!
//! POSTs Twilio webhooks to the `chaos` example's routes, a share of them to routes that fail
//! (panics in the handler, its future and its body; errors; timeouts; 4xx/5xx; malformed, wrong
//! channel, oversized, mistyped TwiML) and **checks every answer**: 200, an XML Content-Type, and
//! TwiML valid for the channel. Prints the counts, p50/p99 latency, and — with `--server-pid` —
//! the server's RSS before, after the checked run, and after `--rss-requests` more.
//!
//! `e2e-load worker [--requests 10000] [--concurrency 8]` starts the built Worker under raw
//! `workerd serve` (`TWIML_FALLBACK_WORKERD`, `TWIML_FALLBACK_WORKER_BUNDLE`) with alerts pointed
//! at a local receiver and sends a mix of valid, forged, unsigned, garbage, huge (declared and chunked),
//! GET and POST requests. Every answer must be the expected one (200 valid TwiML, or 403); no 5xx;
//! no panic or instance reset in the Worker's log; exactly one incident notification per failing
//! primary (its inbox object on), however many notices and codes.
//!
//! Exit status 0 when every check held, 1 otherwise.

use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use twiml_fallback::Channel;
use twiml_fallback::signature::{SIGNATURE_HEADER, compute_signature};
use twiml_fallback::twiml::{TargetChannel, validate};
use twiml_fallback::webhook::Params;
use twiml_fallback_e2e::worker::Workerd;
use twiml_fallback_e2e::{AlertReceiver, TOKEN, send_chunked};

/// The chaos routes that fail, and the one that works.
const FAILING: &[&str] = &[
    "panic",
    "panic-async",
    "panic-body",
    "error",
    "slow",
    "status-500",
    "status-404",
    "lowercase",
    "wrong-root",
    "wrong-channel",
    "huge",
    "no-content-type",
    "html",
    "empty",
    "body-error",
];

struct Options {
    mode: String,
    url: String,
    requests: usize,
    concurrency: usize,
    failure_percent: usize,
    server_pid: Option<u32>,
    rss_requests: usize,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mode = args
        .next()
        .ok_or("usage: e2e-load layer|worker [options] (see the source's docs)")?;
    let mut options = Options {
        requests: if mode == "worker" { 10_000 } else { 50_000 },
        concurrency: if mode == "worker" { 8 } else { 64 },
        mode,
        url: "http://127.0.0.1:3000".to_owned(),
        failure_percent: 40,
        server_pid: None,
        rss_requests: 0,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{flag}: {value:?} is not a number"))
        };
        match flag.as_str() {
            "--url" => options.url = value.trim_end_matches('/').to_owned(),
            "--requests" => options.requests = number()?,
            "--concurrency" => options.concurrency = number()?.max(1),
            "--failure-percent" => options.failure_percent = number()?.min(100),
            "--server-pid" => options.server_pid = Some(value.parse().map_err(|_| format!("--server-pid {value:?}"))?),
            "--rss-requests" => options.rss_requests = number()?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

/// A request to send and what its answer must be.
#[derive(Clone)]
struct Planned {
    kind: &'static str,
    method: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    chunked: bool,
    expect: Expect,
}

#[derive(Clone, Copy)]
enum Expect {
    /// 200, XML, valid for this channel.
    Twiml(Option<Channel>),
    /// 403.
    Forbidden,
}

/// What happened to the requests of one kind.
#[derive(Default)]
struct Tally {
    sent: usize,
    wrong: usize,
    server_errors: usize,
    example: Option<String>,
}

#[derive(Default)]
struct Results {
    tallies: BTreeMap<&'static str, Tally>,
    latencies_us: Vec<u64>,
}

impl Results {
    fn merge(&mut self, other: Results) {
        for (kind, tally) in other.tallies {
            let mine = self.tallies.entry(kind).or_default();
            mine.sent += tally.sent;
            mine.wrong += tally.wrong;
            mine.server_errors += tally.server_errors;
            mine.example = mine.example.take().or(tally.example);
        }
        self.latencies_us.extend(other.latencies_us);
    }

    fn total(&self, field: fn(&Tally) -> usize) -> usize {
        self.tallies.values().map(field).sum()
    }
}

fn voice_form(to: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("CallSid", "CA11111111111111111111111111111111"),
        ("From", "+14155550100"),
        ("To", to),
        ("CallStatus", "ringing"),
    ];
    params.extend_from_slice(extra);
    Params::from_pairs(params).to_form()
}

fn sms_form(extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("MessageSid", "SM11111111111111111111111111111111"),
        ("From", "+14155550100"),
        ("To", "+14155550177"),
        ("Body", "Is my order ready? 🍰 <&>"),
    ];
    params.extend_from_slice(extra);
    Params::from_pairs(params).to_form()
}

const FORM: &str = "application/x-www-form-urlencoded";

/// The layer run's request number `n`: a failure route for `failure_percent` of them.
fn layer_request(base: &str, n: usize, failure_percent: usize) -> Planned {
    let voice = n % 2 == 0;
    let route = if (n * 37) % 100 < failure_percent {
        FAILING[(n / 2) % FAILING.len()]
    } else {
        "ok"
    };
    let (channel, form) = if voice {
        ("voice", voice_form("+14155550177", &[("Digits", "1")]))
    } else {
        ("sms", sms_form(&[]))
    };
    Planned {
        kind: route,
        method: "POST",
        url: format!("{base}/{channel}/{route}"),
        headers: vec![("Content-Type", FORM.to_owned())],
        body: form.into_bytes(),
        chunked: false,
        expect: Expect::Twiml(Some(if voice { Channel::Voice } else { Channel::Messaging })),
    }
}

/// The Worker run's request number `n`, across every kind of input.
fn worker_request(base: &str, n: usize, error_urls: &[String]) -> Planned {
    let signed = |method: &'static str, path: &str, form: String, channel: Channel, kind: &'static str| {
        let (url, body) = if method == "GET" {
            (format!("{base}{path}?{form}"), Vec::new())
        } else {
            (format!("{base}{path}"), form.into_bytes())
        };
        let params = if method == "GET" {
            Params::new()
        } else {
            Params::from_form(&body)
        };
        let signature = compute_signature(TOKEN, &url, params.iter());
        Planned {
            kind,
            method,
            url,
            headers: vec![("Content-Type", FORM.to_owned()), (SIGNATURE_HEADER, signature)],
            body,
            chunked: false,
            expect: Expect::Twiml(Some(channel)),
        }
    };
    let error_url = &error_urls[n % error_urls.len()];
    let notice = [
        ("ErrorCode", if n % 3 == 0 { "11200" } else { "12100" }),
        ("ErrorUrl", error_url.as_str()),
    ];
    match n % 10 {
        0 | 1 => signed(
            "POST",
            "/voice",
            voice_form("+14155550177", &notice),
            Channel::Voice,
            "signed voice POST",
        ),
        2 => signed(
            "GET",
            "/voice",
            voice_form("+14155550199", &notice),
            Channel::Voice,
            "signed voice GET",
        ),
        3 | 4 => signed("POST", "/sms", sms_form(&notice), Channel::Messaging, "signed SMS POST"),
        5 => {
            let mut forged = signed(
                "POST",
                "/voice",
                voice_form("+14155550177", &notice),
                Channel::Voice,
                "forged",
            );
            forged.headers[1].1 = "Zm9yZ2VkIHNpZ25hdHVyZSEhIQ==".to_owned();
            forged.expect = Expect::Forbidden;
            forged
        }
        6 => {
            let mut tampered = signed("POST", "/sms", sms_form(&notice), Channel::Messaging, "tampered");
            tampered.body.extend_from_slice(b"&Injected=1");
            tampered.expect = Expect::Forbidden;
            tampered
        }
        7 => Planned {
            kind: "unsigned garbage",
            method: "POST",
            url: format!("{base}/x?%%%"),
            headers: vec![("Content-Type", "application/octet-stream".to_owned())],
            body: (0..(n % 4096)).map(|i| (i * 131 + n) as u8).collect(),
            chunked: false,
            expect: Expect::Forbidden,
        },
        8 => Planned {
            kind: "huge declared",
            method: "POST",
            url: format!("{base}/voice"),
            headers: vec![("Content-Type", FORM.to_owned())],
            body: vec![b'a'; 100 * 1024],
            chunked: false,
            expect: Expect::Forbidden,
        },
        _ => Planned {
            kind: "huge chunked",
            method: "POST",
            url: format!("{base}/voice"),
            headers: Vec::new(),
            body: vec![b'a'; 100 * 1024],
            chunked: true,
            expect: Expect::Forbidden,
        },
    }
}

/// Whether the answer is what `planned` expects; the reason when not.
fn check(planned: &Planned, status: u16, content_type: &str, body: &[u8]) -> Result<(), String> {
    match planned.expect {
        Expect::Forbidden if status == 403 => Ok(()),
        Expect::Forbidden => Err(format!("expected 403, got {status}")),
        Expect::Twiml(_) if status != 200 => {
            Err(format!("expected 200, got {status}: {}", String::from_utf8_lossy(body)))
        }
        Expect::Twiml(_) if !content_type.to_ascii_lowercase().contains("xml") => {
            Err(format!("Content-Type {content_type:?} is not XML"))
        }
        Expect::Twiml(channel) => {
            let report = validate(body, TargetChannel::from(channel));
            if report.is_valid() {
                Ok(())
            } else {
                Err(format!(
                    "invalid TwiML ({:?}): {}",
                    report.first_error().map(|error| error.message.as_str()),
                    String::from_utf8_lossy(body)
                ))
            }
        }
    }
}

async fn run(requests: usize, concurrency: usize, plan: Arc<dyn Fn(usize) -> Planned + Send + Sync>) -> Results {
    let client = twiml_fallback_e2e::client();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, next, plan) = (client.clone(), Arc::clone(&next), Arc::clone(&plan));
        workers.spawn(async move {
            let mut results = Results::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests {
                    return results;
                }
                let planned = plan(n);
                let started = Instant::now();
                let (status, content_type, body) = if planned.chunked {
                    let answer = send_chunked(
                        planned.url.split('/').take(3).collect::<Vec<_>>().join("/").as_str(),
                        &format!("/{}", planned.url.splitn(4, '/').nth(3).unwrap_or("")),
                        &planned.body,
                        None,
                    )
                    .await;
                    (answer.status, answer.content_type, answer.body.into_bytes())
                } else {
                    let mut request = if planned.method == "GET" {
                        client.get(&planned.url)
                    } else {
                        client.post(&planned.url).body(planned.body.clone())
                    };
                    for (name, value) in &planned.headers {
                        request = request.header(*name, value);
                    }
                    match request.send().await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let content_type = response
                                .headers()
                                .get("content-type")
                                .and_then(|value| value.to_str().ok())
                                .unwrap_or("")
                                .to_owned();
                            let body = response.bytes().await.map(|bytes| bytes.to_vec()).unwrap_or_default();
                            (status, content_type, body)
                        }
                        Err(error) => (0, String::new(), format!("request failed: {error}").into_bytes()),
                    }
                };
                results.latencies_us.push(started.elapsed().as_micros() as u64);
                let tally = results.tallies.entry(planned.kind).or_default();
                tally.sent += 1;
                if status >= 500 || status == 0 {
                    tally.server_errors += 1;
                }
                if let Err(reason) = check(&planned, status, &content_type, &body) {
                    tally.wrong += 1;
                    tally
                        .example
                        .get_or_insert(format!("{} {}: {reason}", planned.method, planned.url));
                }
            }
        });
    }
    let mut results = Results::default();
    while let Some(worker) = workers.join_next().await {
        results.merge(worker.expect("a load worker"));
    }
    results
}

fn percentile(sorted: &[u64], percent: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[(sorted.len() * percent / 100).min(sorted.len() - 1)] as f64 / 1000.0
}

fn report(results: &mut Results, elapsed: Duration, failing: impl Fn(&str) -> bool) -> bool {
    results.latencies_us.sort_unstable();
    let sent = results.total(|tally| tally.sent);
    let injected: usize = results
        .tallies
        .iter()
        .filter(|(kind, _)| failing(kind))
        .map(|(_, tally)| tally.sent)
        .sum();
    let wrong = results.total(|tally| tally.wrong);
    let server_errors = results.total(|tally| tally.server_errors);
    println!("{:<22} {:>8} {:>8} {:>8}", "kind", "sent", "wrong", "5xx");
    for (kind, tally) in &results.tallies {
        println!(
            "{kind:<22} {:>8} {:>8} {:>8}",
            tally.sent, tally.wrong, tally.server_errors
        );
    }
    println!(
        "requests {sent}, failures injected {injected} ({:.1} %), wrong answers {wrong}, 5xx {server_errors}, \
         {:.0} req/s, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        100.0 * injected as f64 / sent.max(1) as f64,
        sent as f64 / elapsed.as_secs_f64(),
        percentile(&results.latencies_us, 50),
        percentile(&results.latencies_us, 99),
        percentile(&results.latencies_us, 100),
    );
    for (kind, tally) in &results.tallies {
        if let Some(example) = &tally.example {
            println!("  {kind}: {example}");
        }
    }
    wrong == 0 && server_errors == 0
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}

async fn layer(options: Options) -> bool {
    let base = options.url.clone();
    let failure_percent = options.failure_percent;
    let plan: Arc<dyn Fn(usize) -> Planned + Send + Sync> = Arc::new(move |n| layer_request(&base, n, failure_percent));
    let rss_before = options.server_pid.and_then(rss_kib);
    let started = Instant::now();
    let mut results = run(options.requests, options.concurrency, Arc::clone(&plan)).await;
    let mut ok = report(&mut results, started.elapsed(), |kind| kind != "ok");
    if let Some(pid) = options.server_pid {
        let after_checked = rss_kib(pid);
        println!(
            "server RSS: {} KiB before, {} KiB after {} requests",
            show(rss_before),
            show(after_checked),
            options.requests
        );
        if options.rss_requests > 0 {
            let started = Instant::now();
            let mut more = run(options.rss_requests, options.concurrency, plan).await;
            println!("--- {} more requests, answers checked too:", options.rss_requests);
            ok &= report(&mut more, started.elapsed(), |kind| kind != "ok");
            let after = rss_kib(pid);
            println!(
                "server RSS: {} KiB after {} requests in all ({} KiB since the checked run)",
                show(after),
                options.requests + options.rss_requests,
                match (after, after_checked) {
                    (Some(after), Some(before)) => format!("{:+}", after as i64 - before as i64),
                    _ => "?".to_owned(),
                }
            );
        }
    }
    ok
}

fn show(kib: Option<u64>) -> String {
    kib.map_or("?".to_owned(), |kib| kib.to_string())
}

async fn worker(options: Options) -> bool {
    let Some(workerd) = Workerd::from_env() else {
        eprintln!(
            "error: TWIML_FALLBACK_WORKERD / TWIML_FALLBACK_WORKER_BUNDLE must name workerd and the built Worker"
        );
        return false;
    };
    let alerts = AlertReceiver::start().await;
    let config = format!(
        "[voice]\nsay = \"Robustness run: please call back.\"\n[numbers.\"+14155550199\".voice]\nsay = \"Per-number.\"\n\
         [alerts]\nwebhook_url = \"{}\"\nresolve_after_seconds = 3600\n",
        alerts.url
    );
    let running = workerd.start(&config, &[TOKEN]).await;
    let logs = running.logs.clone().expect("the Worker's log");
    // Five failing primaries (origins), each failing on two paths.
    let error_urls: Vec<String> = (0..10)
        .map(|i| format!("https://app{}.example.com/failing/{i}", i % 5))
        .collect();
    let base = running.base_url.clone();
    let urls = error_urls.clone();
    let plan: Arc<dyn Fn(usize) -> Planned + Send + Sync> = Arc::new(move |n| worker_request(&base, n, &urls));
    let started = Instant::now();
    let mut results = run(options.requests, options.concurrency, plan).await;
    let elapsed = started.elapsed();
    let mut ok = report(&mut results, elapsed, |kind| !kind.starts_with("signed"));
    // Alerts go out after the answers: give the last ones a moment.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = alerts.alerts();
    let origins: Vec<String> = received
        .iter()
        .map(|alert| alert["origin"].as_str().unwrap_or("").to_owned())
        .collect();
    let distinct: HashSet<&String> = origins.iter().collect();
    let opened = received.iter().all(|alert| alert["event"] == "incident-opened");
    // Signed requests fail on 5 origins with 2 error codes: 5 incidents, each told exactly once.
    println!(
        "incident notifications: {} received, {} distinct failing primaries, expected exactly 5 (all incident-opened: {opened})",
        origins.len(),
        distinct.len()
    );
    ok &= origins.len() == 5 && distinct.len() == 5 && opened;
    let log = std::fs::read_to_string(&logs).unwrap_or_default();
    let resets = [
        "panicked",
        "Rust panic",
        "Reinitializing Wasm application",
        "RuntimeError",
        "Critical",
    ]
    .iter()
    .map(|needle| log.matches(needle).count())
    .sum::<usize>();
    println!(
        "Worker log: {} lines, {resets} panics or instance resets",
        log.lines().count()
    );
    ok &= resets == 0;
    if !ok {
        let kept = std::env::temp_dir().join("twiml-fallback-worker-robustness.log");
        let _ = std::fs::copy(&logs, &kept);
        println!("the Worker's log is kept in {}; its errors:", kept.display());
        for line in log
            .lines()
            .filter(|line| line.contains("ERROR") || line.contains(" 500 ") || line.contains("rror:"))
            .take(20)
        {
            println!("  {line}");
        }
    }
    drop(running);
    ok
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let ok = match options.mode.as_str() {
        "layer" => layer(options).await,
        "worker" => worker(options).await,
        other => {
            eprintln!("error: unknown mode {other} (layer or worker)");
            return ExitCode::from(2);
        }
    };
    if ok {
        println!("every check held");
        ExitCode::SUCCESS
    } else {
        println!("FAILED: see above");
        ExitCode::FAILURE
    }
}
