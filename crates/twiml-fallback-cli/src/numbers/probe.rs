//! `numbers audit --probe`: each distinct fallback gets the request Twilio would send it after
//! its primary failed, signed, with [`PROBE_PARAM`](twiml_fallback::webhook::PROBE_PARAM), and
//! is judged the way `simulate` judges a fallback hop: by the core's answer rules, within
//! Twilio's 15 s ([`PROBE_BUDGET`]); the core names the outcome ([`ProbeOutcome::judge`]).

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use serde_json::{Value, json};
use twiml_fallback::error_code::ErrorCode;
use twiml_fallback::numbers::{PROBE_BUDGET, ProbeOutcome, ProbeTarget, RouterKind, channel_label, probe_id};

use crate::cli::MethodArg;
use crate::simulate::{self, Hop};

/// One probe and its verdict.
pub(super) struct ProbeResult {
    target: ProbeTarget,
    id: String,
    outcome: ProbeOutcome,
    status: Option<u16>,
    elapsed: Duration,
    error: Option<(ErrorCode, String)>,
    warnings: Vec<String>,
    /// A 403's body, and what to do about it (a refused signature: the URL the endpoint checks).
    refusal: Option<(String, Option<String>)>,
}

impl ProbeResult {
    pub(super) fn answered(&self) -> bool {
        self.outcome == ProbeOutcome::Valid
    }

    fn of(target: ProbeTarget, id: String, hop: Hop) -> Self {
        Self {
            outcome: ProbeOutcome::judge(hop.status, hop.failure.is_none(), hop.timed_out),
            target,
            id,
            status: hop.status,
            elapsed: hop.elapsed,
            error: hop.failure,
            warnings: hop.warnings,
            refusal: hop.refusal.map(|body| (body, hop.hint)),
        }
    }

    fn failed(target: ProbeTarget, id: String, outcome: ProbeOutcome, error: Option<(ErrorCode, String)>) -> Self {
        Self {
            target,
            id,
            outcome,
            status: None,
            elapsed: Duration::ZERO,
            error,
            warnings: Vec::new(),
            refusal: None,
        }
    }

    fn verdict(&self) -> String {
        match (self.outcome, &self.error) {
            (ProbeOutcome::Valid, _) if self.warnings.is_empty() => "valid TwiML".to_owned(),
            (ProbeOutcome::Valid, _) => format!("valid, {} warning(s)", self.warnings.len()),
            (ProbeOutcome::HttpError, _) => match &self.refusal {
                Some((body, _)) => format!("HTTP 403: {body}"),
                None => format!("HTTP {}", self.status.unwrap_or(0)),
            },
            (ProbeOutcome::Timeout, Some((_, message))) => message.clone(),
            (ProbeOutcome::BadMethod, _) => format!("method {:?} is neither GET nor POST", self.target.method),
            // The innermost cause says it: "Connection refused (os error 111)".
            (ProbeOutcome::Unreachable, Some((code, message))) => {
                format!(
                    "unreachable ({code}): {}",
                    message.rsplit(": ").next().unwrap_or(message)
                )
            }
            (outcome, Some((code, message))) => {
                let message = message.replacen(&format!("error[{code}]: "), "", 1);
                format!("{} ({code}): {message}", outcome.as_str())
            }
            (outcome, None) => outcome.as_str().to_owned(),
        }
    }

    pub(super) fn to_json(&self) -> Value {
        json!({
            "channel": channel_label(self.target.channel),
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
            "refusal": self.refusal.as_ref().map(|(body, _)| body),
            "hint": self.refusal.as_ref().and_then(|(_, hint)| hint.as_ref()),
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
            let method = match target.http_method() {
                Some(http::Method::GET) => MethodArg::Get,
                Some(_) => MethodArg::Post,
                None => return (index, ProbeResult::failed(target, id, ProbeOutcome::BadMethod, None)),
            };
            let params = target.params(&account_sid, &id);
            let hop = simulate::request(
                &target.url,
                method,
                &params,
                Some(&token),
                target.channel,
                PROBE_BUDGET,
                "fallback",
            )
            .await;
            let result = match hop {
                Ok(hop) => ProbeResult::of(target, id, hop),
                Err(error) => ProbeResult::failed(
                    target,
                    id,
                    ProbeOutcome::Unreachable,
                    Some((ErrorCode::CONNECTION_FAILURE, error.to_string())),
                ),
            };
            (index, result)
        });
    }
    let mut results: Vec<(usize, ProbeResult)> = tasks.join_all().await;
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
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
    println!("\nprobes (each fallback requested as Twilio would, signed with the auth token):");
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
    for result in results {
        let label = channel_label(result.target.channel);
        for warning in &result.warnings {
            println!("  {label} {}: {warning}", result.target.url);
        }
        if let Some((_, Some(hint))) = &result.refusal {
            println!("  {label} {}: {hint}", result.target.url);
        }
    }
    let failed = results.iter().filter(|result| !result.answered()).count();
    println!(
        "{} probe(s): {} answered as Twilio needs, {failed} failed",
        results.len(),
        results.len() - failed
    );
}
