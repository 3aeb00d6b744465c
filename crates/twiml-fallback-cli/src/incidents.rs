//! `twiml-fallback incidents` and `twiml-fallback alerts test`: a fallback endpoint's incidents and
//! its alert sinks, through its admin API (`GET /_twiml-fallback/incidents`,
//! `POST /_twiml-fallback/alerts/test`, the same on `serve` and the Worker) with
//! `TWIML_FALLBACK_ADMIN_TOKEN`.
//!
//! The endpoint decides everything (what an incident counts, who was told, whether a test
//! notification was delivered); this module asks and prints: `--format json` the endpoint's JSON
//! as it came, text one block per incident or one line per sink.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use serde::Deserialize;
use twiml_fallback::error_code::ErrorCode;
use twiml_fallback::incident::TestResult;
use twiml_fallback::webhook::is_sid;

use crate::admin_client::{Api, Reply, TIMEOUT, parse, printable, to_json};
use crate::cli::{AlertsArgs, AlertsCommand, AlertsTestArgs, Format, IncidentsArgs};
use crate::error::CliError;

/// How long a test of every sink may take: each is tried once, one after the other, an email
/// within 30 s, an HTTP sink within 10 s.
const TEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The path of the listing.
const INCIDENTS_PATH: &str = "/_twiml-fallback/incidents";

/// The path of the test.
const TEST_PATH: &str = "/_twiml-fallback/alerts/test";

/// The hint for a 503 from the listing: no database to keep incidents in.
const NO_STORE: &str = "incidents are kept in the inbox's database: serve keeps one unless --no-inbox; the Worker needs its Durable Object binding";

/// `GET /_twiml-fallback/incidents`'s answer, as far as the text output reads it.
#[derive(Debug, Deserialize)]
struct Listing {
    incidents: Vec<IncidentView>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IncidentView {
    id: String,
    origin: String,
    status: String,
    opened_at: String,
    last_seen_at: String,
    resolved_at: Option<String>,
    resolved_by: Option<String>,
    duration_seconds: u64,
    notices: u64,
    error_codes: BTreeMap<String, u64>,
    messages: u64,
    calls: u64,
    kept: u64,
    numbers: Vec<String>,
    severity: String,
    deliveries: Vec<DeliveryView>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DeliveryView {
    sink: String,
    kind: String,
    status: String,
    attempts: u32,
    last_error: Option<String>,
    next_attempt_at: Option<String>,
    done_at: Option<String>,
}

/// `POST /_twiml-fallback/alerts/test`'s answer.
#[derive(Debug, Deserialize)]
struct TestAnswer {
    results: Vec<TestResult>,
    #[serde(default)]
    delivered: bool,
}

/// `twiml-fallback incidents`: the listing; exit 0 when it was read.
pub(crate) async fn incidents(args: IncidentsArgs) -> Result<ExitCode, CliError> {
    let api = Api::new(&args.admin)?;
    let path = format!("{INCIDENTS_PATH}?limit={}", args.limit);
    let reply = api.exchange(api.client.get(api.url(&path)), &path, TIMEOUT).await?;
    if reply.status != 200 {
        return Err(api.unexpected(&path, &reply, NO_STORE));
    }
    match args.format {
        Format::Json => println!("{}", to_json(&parse::<serde_json::Value>(&reply.body)?)?),
        Format::Text => print!("{}", blocks(&parse::<Listing>(&reply.body)?)),
    }
    Ok(ExitCode::SUCCESS)
}

/// `twiml-fallback alerts …`.
pub(crate) async fn alerts(args: AlertsArgs) -> Result<ExitCode, CliError> {
    match args.command {
        AlertsCommand::Test(test) => alerts_test(&Api::new(&args.admin)?, &test).await,
    }
}

/// `twiml-fallback alerts test`: one line per sink; exit 1 when one failed or there is nothing
/// to test.
async fn alerts_test(api: &Api, args: &AlertsTestArgs) -> Result<ExitCode, CliError> {
    let account_sid = args.account_sid.as_deref().map(str::trim);
    if let Some(sid) = account_sid.filter(|sid| !is_sid(sid, "AC")) {
        return Err(
            CliError::new(format!("--account-sid {:?} is not an account SID", printable(sid)))
                .hint("AC and 32 hex digits, e.g. AC0123456789abcdef0123456789abcdef"),
        );
    }
    let body = serde_json::json!({ "account_sid": account_sid }).to_string();
    let request = api
        .client
        .post(api.url(TEST_PATH))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body);
    let reply = api.exchange(request, TEST_PATH, TEST_TIMEOUT).await?;
    match reply.status {
        // 502: a sink failed; the answer still says how each went.
        200 | 502 => {}
        409 => {
            nothing_to_test(api, &reply).print();
            return Ok(ExitCode::from(1));
        }
        _ => return Err(api.unexpected(TEST_PATH, &reply, NO_STORE)),
    }
    let answer = parse::<TestAnswer>(&reply.body)?;
    match args.format {
        Format::Json => println!("{}", to_json(&parse::<serde_json::Value>(&reply.body)?)?),
        Format::Text => print!("{}", test_lines(&answer.results)),
    }
    let all_delivered = answer.delivered && answer.results.iter().all(|result| result.delivered);
    Ok(if all_delivered && reply.status == 200 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn nothing_to_test(api: &Api, reply: &Reply) -> CliError {
    CliError::new(format!("{}: {}", api.url(TEST_PATH), reply.message())).hint(
        "add an [alerts] table to the endpoint's configuration (webhook_url, email, sms or pagerduty_routing_key) and restart it",
    )
}

/// One line per test notification, then the count.
fn test_lines(results: &[TestResult]) -> String {
    let mut out = String::new();
    if results.is_empty() {
        out.push_str("no sinks to test\n");
        return out;
    }
    let width = results
        .iter()
        .map(|result| result.sink.chars().count())
        .max()
        .unwrap_or(0);
    for result in results {
        let _ = writeln!(
            out,
            "{:<width$}  {:<7}  {:<9}  {}",
            printable(&result.sink),
            result.kind.as_str(),
            if result.delivered { "delivered" } else { "FAILED" },
            printable(&result.outcome),
        );
    }
    let delivered = results.iter().filter(|result| result.delivered).count();
    let _ = writeln!(out, "{delivered} of {} test notifications delivered", results.len());
    out
}

/// `2026-12-01T08:16:25Z`: the endpoint's time to the second.
fn second(time: &str) -> String {
    if time.len() >= 19 {
        format!("{}Z", printable(&time.chars().take(19).collect::<String>()))
    } else {
        printable(time)
    }
}

/// `1h 5m`, `12m 5s`, `40s`: the core's wording, the notifications' too.
fn duration(seconds: u64) -> String {
    twiml_fallback::incident::duration_text(seconds.saturating_mul(1000))
}

fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// `11200 (HTTP retrieval failure) ×6000, 11205 ×4000`: most frequent first, with Twilio's title
/// when the code is one this build knows.
fn codes(codes: &BTreeMap<String, u64>) -> String {
    let mut sorted: Vec<(&String, &u64)> = codes.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    sorted
        .iter()
        .map(|(code, count)| {
            let title = code
                .parse::<ErrorCode>()
                .ok()
                .and_then(ErrorCode::info)
                .map_or(String::new(), |info| format!(" ({})", info.title));
            format!("{}{title} ×{count}", printable(code))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One block per incident, open ones first (as the endpoint listed them).
fn blocks(listing: &Listing) -> String {
    let mut out = String::new();
    if listing.incidents.is_empty() {
        out.push_str("no incidents\n");
        return out;
    }
    for (index, incident) in listing.incidents.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        block(&mut out, incident);
    }
    out
}

fn block(out: &mut String, incident: &IncidentView) {
    let _ = writeln!(
        out,
        "{}  {}  {}",
        printable(&incident.id),
        printable(&incident.status.to_ascii_uppercase()),
        printable(&incident.origin)
    );
    let field = |out: &mut String, name: &str, value: String| {
        let _ = writeln!(out, "  {name:<10} {value}");
    };
    field(
        out,
        "opened",
        format!(
            "{}, last notice {}",
            second(&incident.opened_at),
            second(&incident.last_seen_at)
        ),
    );
    match &incident.resolved_at {
        Some(resolved) => field(
            out,
            "resolved",
            format!(
                "{}{}, after {}",
                second(resolved),
                incident
                    .resolved_by
                    .as_deref()
                    .map_or(String::new(), |by| format!(" by {}", printable(by))),
                duration(incident.duration_seconds)
            ),
        ),
        None => field(out, "open for", duration(incident.duration_seconds)),
    }
    let codes = if incident.error_codes.is_empty() {
        String::new()
    } else {
        format!(": {}", codes(&incident.error_codes))
    };
    field(out, "notices", format!("{}{codes}", incident.notices));
    field(
        out,
        "traffic",
        format!(
            "{}, {}, {} kept in the inbox",
            plural(incident.messages, "message", "messages"),
            plural(incident.calls, "call", "calls"),
            incident.kept
        ),
    );
    if !incident.numbers.is_empty() {
        field(
            out,
            "numbers",
            incident
                .numbers
                .iter()
                .map(|number| printable(number))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if !incident.severity.is_empty() {
        field(out, "severity", printable(&incident.severity));
    }
    if incident.deliveries.is_empty() {
        field(out, "sinks", "none told (no sink configured when it opened)".to_owned());
        return;
    }
    let _ = writeln!(out, "  sinks");
    let width = incident
        .deliveries
        .iter()
        .map(|delivery| delivery.sink.chars().count())
        .max()
        .unwrap_or(0);
    for delivery in &incident.deliveries {
        let mut line = format!(
            "    {:<width$}  {:<8}  {:<9}  {}",
            printable(&delivery.sink),
            printable(&delivery.kind),
            printable(&delivery.status),
            plural(u64::from(delivery.attempts), "try", "tries"),
        );
        match (&delivery.done_at, &delivery.next_attempt_at) {
            (Some(done), _) => {
                let _ = write!(line, "  at {}", second(done));
            }
            (None, Some(next)) => {
                let _ = write!(line, "  next {}", second(next));
            }
            (None, None) => {}
        }
        if let Some(error) = &delivery.last_error {
            let _ = write!(line, "  last error: {}", printable(error));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing() -> Listing {
        serde_json::from_value(serde_json::json!({"incidents": [
            {
                "id": "twf-0123456789abcdef",
                "origin": "https://app.example.com",
                "status": "open",
                "opened_at": "2026-12-01T08:16:25.649Z",
                "last_seen_at": "2026-12-01T08:28:30.001Z",
                "resolved_at": null,
                "resolved_by": null,
                "duration_seconds": 725,
                "notices": 10000,
                "error_codes": {"11205": 4000, "11200": 6000},
                "messages": 9000,
                "calls": 1000,
                "kept": 9000,
                "numbers": ["+14155550199"],
                "severity": "critical",
                "deliveries": [
                    {"sink": "webhook", "kind": "open", "status": "delivered", "attempts": 1,
                     "last_error": null, "next_attempt_at": null, "done_at": "2026-12-01T08:16:26.000Z"},
                    {"sink": "pagerduty", "kind": "open", "status": "pending", "attempts": 3,
                     "last_error": "HTTP 500\u{1b}[2J", "next_attempt_at": "2026-12-01T08:29:00.000Z", "done_at": null}
                ]
            },
            {
                "id": "twf-fedcba9876543210",
                "origin": "https://old.example.com",
                "status": "resolved",
                "opened_at": "2026-11-30T10:00:00.000Z",
                "last_seen_at": "2026-11-30T10:05:00.000Z",
                "resolved_at": "2026-11-30T10:20:00.000Z",
                "resolved_by": "quiet",
                "duration_seconds": 3900,
                "notices": 1,
                "error_codes": {"11200": 1},
                "messages": 1,
                "calls": 0,
                "kept": 1,
                "numbers": [],
                "severity": "error",
                "deliveries": []
            }
        ]}))
        .expect("the admin API's JSON")
    }

    #[test]
    fn an_incident_block_has_its_counts_codes_by_frequency_and_each_sinks_status() {
        let text = blocks(&listing());
        let expected = "\
twf-0123456789abcdef  OPEN  https://app.example.com
  opened     2026-12-01T08:16:25Z, last notice 2026-12-01T08:28:30Z
  open for   12m 5s
  notices    10000: 11200 (HTTP retrieval failure) ×6000, 11205 (HTTP connection failure) ×4000
  traffic    9000 messages, 1000 calls, 9000 kept in the inbox
  numbers    +14155550199
  severity   critical
  sinks
    webhook    open      delivered  1 try  at 2026-12-01T08:16:26Z
    pagerduty  open      pending    3 tries  next 2026-12-01T08:29:00Z  last error: HTTP 500\\u{1b}[2J

twf-fedcba9876543210  RESOLVED  https://old.example.com
  opened     2026-11-30T10:00:00Z, last notice 2026-11-30T10:05:00Z
  resolved   2026-11-30T10:20:00Z by quiet, after 1h 5m
  notices    1: 11200 (HTTP retrieval failure) ×1
  traffic    1 message, 0 calls, 1 kept in the inbox
  severity   error
  sinks      none told (no sink configured when it opened)
";
        assert_eq!(text, expected);
        assert_eq!(blocks(&Listing { incidents: Vec::new() }), "no incidents\n");
    }

    #[test]
    fn test_results_are_one_line_per_sink_with_a_count() {
        let results: Vec<TestResult> = serde_json::from_value(serde_json::json!([
            {"sink": "webhook", "kind": "test", "delivered": true, "outcome": "delivered"},
            {"sink": "pagerduty", "kind": "resolve", "delivered": true, "outcome": "delivered"},
            {"sink": "sms:+14155550100", "kind": "test", "delivered": false, "outcome": "not sent: no account"}
        ]))
        .expect("results");
        assert_eq!(
            test_lines(&results),
            "\
webhook           test     delivered  delivered
pagerduty         resolve  delivered  delivered
sms:+14155550100  test     FAILED     not sent: no account
2 of 3 test notifications delivered
"
        );
        assert_eq!(test_lines(&[]), "no sinks to test\n");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(60), "1m 0s");
        assert_eq!(duration(3600), "1h 0m");
    }
}
