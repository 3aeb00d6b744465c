//! A demo webhook server whose routes fail on purpose, every one behind the fallback layer.
//!
//! ```text
//! cargo run --release -p twiml-fallback --example chaos -- --addr 127.0.0.1:3000 --deadline-ms 12000 [--config FILE]
//! curl -s -i -X POST -d CallSid=CA1 http://127.0.0.1:3000/voice/panic
//! ```
//!
//! Routes: `/voice/<case>` and `/sms/<case>` for each case `GET /` lists (ok, panic, panic-async,
//! panic-body, error, slow, status-500, status-404, lowercase, wrong-root, wrong-channel, huge,
//! no-content-type, html, empty, body-error). Fallbacks are logged to stderr. With `--no-layer`
//! it also stands in for Twilio's Messages API (`POST /2010-04-01/Accounts/{AC}/Messages.json`:
//! printed, answered 201, never sent), so replay can be tried offline, for where incident
//! notifications go (`POST /hooks/<name>`: a Slack webhook, PagerDuty; printed, answered 200),
//! and for a demo Twilio account's REST resources (account `AC000…0`, any credentials): numbers
//! of every kind, an Application, Messaging Services, a SIP trunk, for `twiml-fallback numbers
//! audit|set --api-base http://127.0.0.1:3000`. Their webhooks are this demo's routes; their
//! fallbacks `--fallback-endpoint` (default `http://localhost:8787`, where `twiml-fallback serve`
//! listens) or broken on purpose.

mod app;

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use twiml_fallback::config::Config;
use twiml_fallback::layer::FallbackLayer;

const USAGE: &str =
    "usage: chaos [--addr 127.0.0.1:3000] [--deadline-ms 12000] [--config FILE] [--no-layer [--fallback-endpoint URL]]";

struct Options {
    addr: SocketAddr,
    deadline: Duration,
    config: Config,
    /// Serve the same app without the fallback layer (for throughput comparisons).
    no_layer: bool,
    /// Where the demo account's numbers fall back to.
    fallback_endpoint: String,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
        deadline: Duration::from_millis(12_000),
        config: Config::default(),
        no_layer: false,
        fallback_endpoint: "http://localhost:8787".to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--addr" => {
                let text = value("--addr")?;
                options.addr = text
                    .parse()
                    .map_err(|_| format!("--addr {text:?} is not host:port, e.g. 127.0.0.1:3000"))?;
            }
            "--deadline-ms" => {
                let text = value("--deadline-ms")?;
                let millis: u64 = text
                    .parse()
                    .map_err(|_| format!("--deadline-ms {text:?} is not a number of milliseconds"))?;
                options.deadline = Duration::from_millis(millis);
            }
            "--config" => {
                let path = value("--config")?;
                let text = std::fs::read_to_string(&path).map_err(|error| format!("reading {path}: {error}"))?;
                options.config = Config::from_str_auto(&text)
                    .map_err(|errors| format!("{path} is not a valid configuration:\n{errors}"))?;
            }
            "--no-layer" => options.no_layer = true,
            "--fallback-endpoint" => {
                let url = value("--fallback-endpoint")?;
                if !twiml_fallback::url::is_absolute_http_url(&url) {
                    return Err(format!("--fallback-endpoint {url:?} is not an http(s) URL"));
                }
                options.fallback_endpoint = url.trim_end_matches('/').to_owned();
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        // Colours for a terminal only: a file or a pipe gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(options.addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {}: {error}", options.addr);
            return ExitCode::from(2);
        }
    };
    let addr = listener.local_addr().unwrap_or(options.addr);
    let layer = FallbackLayer::new().config(options.config).deadline(options.deadline);
    if options.no_layer {
        println!("chaos demo WITHOUT the fallback layer listening on http://{addr}");
        println!(
            "demo Twilio account {}: numbers audit --api-base http://{addr} (fallbacks at {})",
            app::account::DEMO_ACCOUNT_SID,
            options.fallback_endpoint
        );
    } else {
        println!(
            "chaos demo listening on http://{addr} (deadline {} ms)",
            options.deadline.as_millis()
        );
        println!("try: curl -s -i -X POST -d CallSid=CA1 http://{addr}/voice/panic");
    }
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let served = if options.no_layer {
        let account = app::account::TwilioAccount::demo(&format!("http://{addr}"), &options.fallback_endpoint);
        app::serve(listener, app::BareChaosApp::new().with_account(account), shutdown).await
    } else {
        app::serve(listener, app::ChaosApp::new(layer), shutdown).await
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
