//! `numbers audit`: every number, per channel, as Twilio routes it; `--probe` asks each fallback.

use std::process::ExitCode;

use serde_json::{Value, json};
use twiml_fallback::numbers::{Expect, NumberRoutes, Route, Router, RouterKind, Status, probe_targets};

use super::Client;
use super::probe::{self, ProbeResult};
use crate::cli::{AuditArgs, ExpectedMethod, Format};
use crate::error::CliError;

pub(crate) async fn audit(args: AuditArgs) -> Result<ExitCode, CliError> {
    let client = Client::new(&args.api)?;
    let token = if args.probe {
        Some(client.auth_token.clone().ok_or_else(|| {
            CliError::new("--probe signs its requests as Twilio does, with the account's auth token, and none is set")
                .hint("set TWILIO_AUTH_TOKEN (an API key can read the account but cannot sign webhooks)")
        })?)
    } else {
        None
    };
    let account = client.account().await?;
    let expect = Expect {
        fallback_method: match args.expect_fallback_method {
            ExpectedMethod::Post => Some("POST".to_owned()),
            ExpectedMethod::Get => Some("GET".to_owned()),
            ExpectedMethod::Any => None,
        },
    };
    let audit = account.audit(&expect);
    let probes = match &token {
        Some(token) => probe::run(probe_targets(&account), &client.account_sid, token).await,
        None => Vec::new(),
    };
    let attention = audit.iter().filter(|routes| routes.needs_attention()).count();
    let probes_failed = probes.iter().filter(|result| !result.answered()).count();
    match args.format {
        Format::Json => {
            let document = json!({
                "numbers": audit.iter().map(number_json).collect::<Vec<_>>(),
                "count": audit.len(),
                "unprotected": attention,
                "probes": args.probe.then(|| probes.iter().map(ProbeResult::to_json).collect::<Vec<_>>()),
                "probes_failed": args.probe.then_some(probes_failed),
            });
            println!("{}", serde_json::to_string_pretty(&document).unwrap_or_default());
        }
        Format::Text => {
            print_table(&audit);
            print_warnings(&audit);
            print_summary(&audit, attention);
            if args.probe {
                probe::print(&probes);
            }
        }
    }
    Ok(if attention == 0 && probes_failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn router_json(router: &Router) -> Value {
    json!({ "kind": router.kind.label(), "sid": router.sid, "name": router.name })
}

fn route_json(route: &Route) -> Value {
    json!({
        "routed_by": router_json(&route.router),
        "deferring_service": route.deferring_service.as_ref().map(router_json),
        "url": route.url,
        "method": route.method,
        "fallback_url": route.fallback_url,
        "fallback_method": route.fallback_method,
        "status": route.status.as_str(),
        "warnings": route.warnings.iter().map(|warning| json!({"code": warning.code(), "message": warning.message()})).collect::<Vec<_>>(),
    })
}

fn number_json(routes: &NumberRoutes<'_>) -> Value {
    json!({
        "sid": routes.number.sid,
        "phone_number": routes.number.phone_number,
        "friendly_name": routes.number.friendly_name,
        "voice": route_json(&routes.voice),
        "sms": route_json(&routes.messaging),
        "unprotected": routes.needs_attention(),
    })
}

fn status_label(status: Status) -> &'static str {
    match status {
        Status::Protected => "protected",
        Status::Unprotected => "UNPROTECTED",
        Status::NoWebhook => "no webhook",
        Status::NotDelivered => "not delivered",
        Status::Unknown => "UNKNOWN",
    }
}

/// A shared resource as the table names it: its kind and its name (its SID when it has none).
pub(super) fn short(router: &Router) -> String {
    match &router.name {
        Some(name) => format!("{} {name:?}", router.kind.label()),
        None => format!("{} {}", router.kind.label(), router.sid),
    }
}

fn routed_by(route: &Route) -> String {
    let what = match route.router.kind {
        RouterKind::Number => "number".to_owned(),
        _ => short(&route.router),
    };
    match &route.deferring_service {
        Some(service) => format!("{what} ({} defers)", short(service)),
        None => what,
    }
}

/// One line per number and channel, columns aligned.
fn print_table(audit: &[NumberRoutes<'_>]) {
    let mut rows: Vec<[String; 7]> = Vec::new();
    for routes in audit {
        for (index, route) in routes.routes().into_iter().enumerate() {
            let (number, name) = if index == 0 {
                (
                    routes.number.phone_number.clone(),
                    routes
                        .number
                        .friendly_name
                        .clone()
                        .filter(|name| !name.trim().is_empty())
                        .unwrap_or_else(|| "-".to_owned()),
                )
            } else {
                (String::new(), String::new())
            };
            rows.push([
                number,
                name,
                if index == 0 { "voice" } else { "sms" }.to_owned(),
                routed_by(route),
                route.primary_label().to_owned(),
                route.fallback_url.clone().unwrap_or_else(|| "-".to_owned()),
                status_label(route.status).to_owned(),
            ]);
        }
    }
    print!(
        "{}",
        crate::table::render(
            &[
                "NUMBER",
                "NAME",
                "CHANNEL",
                "ROUTED BY",
                "PRIMARY",
                "FALLBACK",
                "STATUS"
            ],
            &rows
        )
    );
}

fn print_warnings(audit: &[NumberRoutes<'_>]) {
    let mut first = true;
    for routes in audit {
        for (channel, route) in [("voice", &routes.voice), ("sms", &routes.messaging)] {
            for warning in &route.warnings {
                if first {
                    println!("\nwarnings:");
                    first = false;
                }
                println!("  {} {channel}: {}", routes.number.phone_number, warning.message());
            }
        }
    }
}

fn print_summary(audit: &[NumberRoutes<'_>], attention: usize) {
    let mut shared: Vec<&Router> = Vec::new();
    for routes in audit {
        for route in routes.routes() {
            if route.router.kind != RouterKind::Number
                && route.status != Status::Unknown
                && !shared.contains(&&route.router)
            {
                shared.push(&route.router);
            }
        }
    }
    let count = |kind: RouterKind| shared.iter().filter(|router| router.kind == kind).count();
    let unprotected_routes = audit
        .iter()
        .flat_map(|routes| routes.routes())
        .filter(|route| route.status.needs_attention())
        .count();
    println!(
        "\n{} number(s): {attention} need attention ({unprotected_routes} channel(s) unprotected or unknown); routed through {} Application(s), {} Messaging Service(s), {} SIP trunk(s)",
        audit.len(),
        count(RouterKind::Application),
        count(RouterKind::MessagingService),
        count(RouterKind::Trunk),
    );
    let routes = || audit.iter().flat_map(|routes| routes.routes());
    if routes().any(|route| route.status == Status::Unprotected) {
        println!("fix: twiml-fallback numbers set --all-unprotected --voice-fallback-url URL --sms-fallback-url URL");
    }
    let unknown = routes().filter(|route| route.status == Status::Unknown).count();
    if unknown > 0 {
        println!(
            "check: {unknown} channel(s) name an Application, Messaging Service or SIP trunk the account's listing does not hold (see the warnings): fix them in the Console"
        );
    }
}
