//! `inbox-load --url http://127.0.0.1:8787 [--requests 20000] [--concurrency 64] [--token TOKEN]
//!     [--admin-token TOKEN]`
//!
//! Sends a burst of distinct, correctly signed inbound SMS to a fallback endpoint (`serve` or the
//! Worker), checks every answer (200, valid messaging TwiML), and prints requests per second and
//! latency (p50, p99, max). With `--admin-token`, then reads the inbox back and checks that every
//! answered message is in it exactly once. Used by `benches/inbox-load.sh`.
//!
//! `inbox-load --workerd with-inbox|without-inbox [--requests N] [--concurrency C]` starts the built
//! Worker under raw `workerd serve` itself (`TWIML_FALLBACK_WORKERD`, `TWIML_FALLBACK_WORKER_BUNDLE`),
//! with its `INBOX` Durable Object on SQLite on local disk or without the binding, and sends the
//! same burst (with the inbox, then checks it). Used by `benches/worker-inbox-load.sh`.
//!
//! Exit status 0 when every check held, 1 otherwise, 2 for usage errors.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use twiml_fallback_e2e::inbox_load::{burst, inbox_sids};

struct Options {
    url: String,
    requests: usize,
    concurrency: usize,
    token: String,
    admin_token: Option<String>,
    prefix: String,
    workerd: Option<bool>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        url: "http://127.0.0.1:8787".to_owned(),
        requests: 20_000,
        concurrency: 64,
        token: twiml_fallback_e2e::TOKEN.to_owned(),
        admin_token: None,
        prefix: format!("{:x}", std::process::id() % 0xffff),
        workerd: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{flag} {value:?} is not a number"))
        };
        match flag.as_str() {
            "--url" => options.url = value.trim_end_matches('/').to_owned(),
            "--requests" => options.requests = number()?,
            "--concurrency" => options.concurrency = number()?.max(1),
            "--token" => options.token = value,
            "--admin-token" => options.admin_token = Some(value),
            "--prefix" => options.prefix = value,
            "--workerd" => {
                options.workerd = Some(match value.as_str() {
                    "with-inbox" => true,
                    "without-inbox" => false,
                    other => return Err(format!("--workerd {other:?}: with-inbox or without-inbox")),
                });
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(options)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let mut options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    // The Worker under raw workerd, started here: with its Durable Object, or without the binding.
    let _workerd = match options.workerd {
        None => None,
        Some(with_inbox) => {
            let Some(workerd) = twiml_fallback_e2e::worker::Workerd::from_env() else {
                eprintln!(
                    "error: TWIML_FALLBACK_WORKERD / TWIML_FALLBACK_WORKER_BUNDLE must name workerd and the built Worker"
                );
                return ExitCode::from(2);
            };
            let workerd = if with_inbox {
                options.admin_token = Some("inbox-load-admin".to_owned());
                workerd.with_admin_token("inbox-load-admin")
            } else {
                workerd.without_inbox()
            };
            let running = workerd.start("", &[&options.token]).await;
            options.url = running.base_url.clone();
            Some(running)
        }
    };
    let result = burst(
        &options.url,
        &options.token,
        &options.prefix,
        options.requests,
        options.concurrency,
        Arc::new(AtomicUsize::new(0)),
    )
    .await;
    println!(
        "{} requests at {} connections: {} answered 200, {} wrong, {} unanswered; {:.0} req/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        options.requests,
        options.concurrency,
        result.answered.len(),
        result.wrong.len(),
        result.unanswered,
        result.per_second(),
        result.percentile_ms(50),
        result.percentile_ms(99),
        result.percentile_ms(100),
    );
    for wrong in result.wrong.iter().take(5) {
        println!("  wrong: {wrong}");
    }
    let mut ok = result.wrong.is_empty() && result.unanswered == 0;
    if let Some(admin_token) = &options.admin_token {
        match inbox_sids(&options.url, admin_token).await {
            Ok(stored) => {
                let mut copies: HashMap<&str, usize> = HashMap::new();
                for sid in &stored {
                    *copies.entry(sid).or_default() += 1;
                }
                let lost = result
                    .answered
                    .iter()
                    .filter(|sid| !copies.contains_key(sid.as_str()))
                    .count();
                let duplicated = copies.values().filter(|count| **count > 1).count();
                println!(
                    "inbox: {} entries; of the answered, {lost} missing, {duplicated} duplicated",
                    stored.len()
                );
                ok &= lost == 0 && duplicated == 0;
            }
            Err(error) => {
                println!("inbox: cannot list it: {error}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        println!("FAILED: see above");
        ExitCode::FAILURE
    }
}
