//! `numbers audit --probe`: each distinct fallback gets the request Twilio would send it after
//! its primary failed, signed, with [`PROBE_PARAM`](twiml_fallback::webhook::PROBE_PARAM), and
//! is judged the way `simulate` judges a fallback hop: by the core's answer rules, within
//! Twilio's 15 s.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use serde_json::{Value, json};
use twiml_fallback::Channel;
use twiml_fallback::error_code::ErrorCode;
use twiml_fallback::numbers::{ProbeTarget, RouterKind, probe_id};

use crate::cli::MethodArg;
use crate::simulate::{self, Hop};

/// Twilio's budget for a webhook's answer.
const TWILIO_BUDGET: Duration = Duration::from_secs(15);

/// How a probe went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// An answer Twilio runs for the channel.
    Valid,
    /// A 2xx that Twilio would fail (malformed TwiML, wrong Content-Type, empty, too large).
    Invalid,
    /// A non-2xx status.
    HttpError,
    /// No answer within Twilio's budget.
    Timeout,
    /// No connection (DNS, refused, TLS).
    Unreachable,
    /// A method Twilio does not use.
    BadMethod,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Invalid => "invalid",
            Outcome::HttpError => "http-error",
            Outcome::Timeout => "timeout",
            Outcome::Unreachable => "unreachable",
            Outcome::BadMethod => "bad-method",
        }
    }
}

/// One probe and its verdict.
pub(super) struct ProbeResult {
    target: ProbeTarget,
    id: String,
    outcome: Outcome,
    status: Option<u16>,
    elapsed: Duration,
    error: Option<(ErrorCode, String)>,
    warnings: Vec<String>,
}

impl ProbeResult {
    pub(super) fn answered(&self) -> bool {
        self.outcome == Outcome::Valid
    }

    fn of(target: ProbeTarget, id: String, hop: Hop) -> Self {
        let outcome = match (&hop.failure, hop.status) {
            (None, _) => Outcome::Valid,
            (Some(_), Some(status)) if !(200..300).contains(&status) => Outcome::HttpError,
            (Some(_), Some(_)) => Outcome::Invalid,
            (Some((code, message)), None)
                if *code == ErrorCode::CONNECTION_FAILURE && message.starts_with("no answer within") =>
            {
                Outcome::Timeout
            }
            (Some(_), None) if hop.elapsed >= TWILIO_BUDGET => Outcome::Timeout,
            (Some(_), None) => Outcome::Unreachable,
        };
        Self {
            target,
            id,
            outcome,
            status: hop.status,
            elapsed: hop.elapsed,
            error: hop.failure,
            warnings: hop.warnings,
        }
    }

    fn verdict(&self) -> String {
        match (self.outcome, &self.error) {
            (Outcome::Valid, _) if self.warnings.is_empty() => "valid TwiML".to_owned(),
            (Outcome::Valid, _) => format!("valid, {} warning(s)", self.warnings.len()),
            (Outcome::HttpError, _) => format!("HTTP {}", self.status.unwrap_or(0)),
            (Outcome::Timeout, Some((_, message))) => message.clone(),
            (Outcome::Timeout, None) => format!("no answer within {} s", TWILIO_BUDGET.as_secs()),
            // The innermost cause says it: "Connection refused (os error 111)".
            (Outcome::Unreachable, Some((code, message))) => {
                format!(
                    "unreachable ({code}): {}",
                    message.rsplit(": ").next().unwrap_or(message)
                )
            }
            (Outcome::BadMethod, _) => format!("method {:?} is neither GET nor POST", self.target.method),
            (outcome, Some((code, message))) => {
                let message = message.replacen(&format!("error[{code}]: "), "", 1);
                format!("{} ({code}): {message}", outcome.as_str())
            }
            (outcome, None) => outcome.as_str().to_owned(),
        }
    }

    pub(super) fn to_json(&self) -> Value {
        json!({
            "channel": self.target.channel.as_str(),
            "url": self.target.url,
            "method": self.target.method,
            "to": self.target.to,
            "error_url": self.target.error_url,
            "probe_id": self.id,
            "numbers": self.target.numbers,
            "routed_by": self.target.routers.iter().map(|router| json!({"kind": router.kind.label(), "sid": router.sid})).collect::<Vec<_>>(),
            "outcome": self.outcome.as_str(),
            "status": self.status,
            "elapsed_ms": self.elapsed.as_millis() as u64,
            "error_code": self.error.as_ref().map(|(code, _)| code.to_string()),
            "message": self.error.as_ref().map(|(_, message)| message),
            "warnings": self.warnings,
        })
    }
}

/// A random probe id: the std hasher's per-process random keys, mixed with the clock.
fn random_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    probe_id(hasher.finish())
}

/// Probes every target at once (each within Twilio's budget), results in the targets' order.
pub(super) async fn run(targets: Vec<ProbeTarget>, account_sid: &str, token: &str) -> Vec<ProbeResult> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, target) in targets.into_iter().enumerate() {
        let (account_sid, token) = (account_sid.to_owned(), token.to_owned());
        tasks.spawn(async move {
            let id = random_id();
            let method = match target.method.as_str() {
                "GET" => MethodArg::Get,
                "POST" => MethodArg::Post,
                _ => {
                    return (
                        index,
                        ProbeResult {
                            target,
                            id,
                            outcome: Outcome::BadMethod,
                            status: None,
                            elapsed: Duration::ZERO,
                            error: None,
                            warnings: Vec::new(),
                        },
                    );
                }
            };
            let params = target.params(&account_sid, &id);
            let hop = simulate::request(
                &target.url,
                method,
                &params,
                Some(&token),
                target.channel,
                TWILIO_BUDGET,
                "fallback",
            )
            .await;
            let result = match hop {
                Ok(hop) => ProbeResult::of(target, id, hop),
                Err(error) => ProbeResult {
                    target,
                    id,
                    outcome: Outcome::Unreachable,
                    status: None,
                    elapsed: Duration::ZERO,
                    error: Some((ErrorCode::CONNECTION_FAILURE, error.to_string())),
                    warnings: Vec::new(),
                },
            };
            (index, result)
        });
    }
    let mut results: Vec<(usize, ProbeResult)> = tasks.join_all().await;
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

fn channel_label(channel: Channel) -> &'static str {
    match channel {
        Channel::Voice => "voice",
        Channel::Messaging => "sms",
    }
}

/// The numbers a fallback covers, and the shared resources that lead to it.
fn covers(target: &ProbeTarget) -> String {
    let shared: Vec<String> = target
        .routers
        .iter()
        .filter(|router| router.kind != RouterKind::Number)
        .map(super::audit::short)
        .collect();
    if shared.is_empty() {
        target.numbers.join(", ")
    } else {
        format!("{} via {}", target.numbers.join(", "), shared.join(", "))
    }
}

/// The probes as a table, then the warnings of the ones that passed with warnings.
pub(super) fn print(results: &[ProbeResult]) {
    println!("\nprobes (signed as Twilio signs; ErrorCode=11200, ErrorUrl = the primary):");
    if results.is_empty() {
        println!("  no fallback URL to probe");
        return;
    }
    let rows: Vec<[String; 6]> = results
        .iter()
        .map(|result| {
            [
                channel_label(result.target.channel).to_owned(),
                result.target.method.clone(),
                result.target.url.clone(),
                result.verdict(),
                covers(&result.target),
                format!("{} ms", result.elapsed.as_millis()),
            ]
        })
        .collect();
    print!(
        "{}",
        crate::table::render(&["CHANNEL", "METHOD", "FALLBACK", "RESULT", "COVERS", "TIME"], &rows)
    );
    for result in results.iter().filter(|result| !result.warnings.is_empty()) {
        for warning in &result.warnings {
            println!(
                "  {} {}: {warning}",
                channel_label(result.target.channel),
                result.target.url
            );
        }
    }
    let failed = results.iter().filter(|result| !result.answered()).count();
    println!(
        "{} probe(s): {} answered as Twilio needs, {failed} failed",
        results.len(),
        results.len() - failed
    );
}
