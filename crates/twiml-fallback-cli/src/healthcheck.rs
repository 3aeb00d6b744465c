//! `twiml-fallback healthcheck`: whether a fallback endpoint answers its health check, as an exit
//! status — the container image's `HEALTHCHECK` (a slim image has no curl), a systemd or cron
//! probe, a deploy script's "is it up?".

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::HealthcheckArgs;
use crate::error::CliError;
use crate::http_client;

/// The health answer is two bytes; anything past this is not read.
const MAX_ANSWER_BYTES: usize = 1024;

pub(crate) async fn run(args: HealthcheckArgs) -> Result<ExitCode, CliError> {
    if !twiml_fallback::url::is_absolute_http_url(&args.url) {
        return Err(
            CliError::new(format!("--url {:?} is not an absolute http(s) URL", args.url))
                .hint("e.g. --url http://127.0.0.1:8787/healthz"),
        );
    }
    let client = http_client::client(0, http_client::USER_AGENT).map_err(CliError::new)?;
    let deadline = Duration::from_millis(args.timeout_ms);
    let fetched = http_client::fetch_limited(client.get(&args.url), MAX_ANSWER_BYTES, deadline).await;
    // Docker and Kubernetes read 0 as healthy and 1 as unhealthy.
    match fetched {
        Some(Ok(answer)) if answer.status == http::StatusCode::OK => {
            println!("healthy: {} answered 200", args.url);
            Ok(ExitCode::SUCCESS)
        }
        Some(Ok(answer)) => {
            eprintln!("unhealthy: {} answered {}", args.url, answer.status);
            Ok(ExitCode::from(1))
        }
        Some(Err(error)) => {
            eprintln!("unhealthy: {}: {}", args.url, http_client::describe(&error));
            Ok(ExitCode::from(1))
        }
        None => {
            eprintln!("unhealthy: {}: no answer within {} ms", args.url, args.timeout_ms);
            Ok(ExitCode::from(1))
        }
    }
}
