//! `numbers set`: the core's plan, performed — each resource that routes the numbers updated once.

use std::process::ExitCode;

use serde_json::{Value, json};
use twiml_fallback::numbers::{Change, Fallback, Selection, Wanted, plan, update_error_hint};

use super::Client;
use crate::cli::{Format, SetArgs};
use crate::error::CliError;

pub(crate) async fn set(args: SetArgs) -> Result<ExitCode, CliError> {
    check_set_args(&args)?;
    let client = Client::new(&args.api)?;
    let account = client.account().await?;
    let wanted = Wanted {
        voice: args.voice_fallback_url.clone().map(|url| Fallback {
            url,
            method: args.voice_fallback_method.map(|method| method.as_str().to_owned()),
        }),
        messaging: args.sms_fallback_url.clone().map(|url| Fallback {
            url,
            method: args.sms_fallback_method.map(|method| method.as_str().to_owned()),
        }),
    };
    let selection = if args.all_unprotected {
        Selection::AllUnprotected
    } else {
        Selection::Numbers(&args.number)
    };
    let plan = plan(&account, &client.account_sid, selection, &wanted);
    let mut results = Vec::new();
    let mut failures = 0;
    for refusal in &plan.refusals {
        failures += 1;
        report(&args, &mut results, Report::refused(&refusal.subject, &refusal.reason));
    }
    for skipped in &plan.skipped {
        report(
            &args,
            &mut results,
            Report {
                outcome: "skipped",
                subject: skipped.subject.clone(),
                note: skipped.reason.clone(),
                ..Report::default()
            },
        );
    }
    if plan.changes.is_empty() && plan.refusals.is_empty() && plan.skipped.is_empty() {
        report(
            &args,
            &mut results,
            Report {
                outcome: "unchanged",
                subject: "-".to_owned(),
                note: "nothing needs a change".to_owned(),
                ..Report::default()
            },
        );
    }
    for change in &plan.changes {
        if args.dry_run {
            report(
                &args,
                &mut results,
                Report::of(change, "would-set", String::new(), None),
            );
            continue;
        }
        match client.update(change).await {
            Ok(()) => report(&args, &mut results, Report::of(change, "updated", String::new(), None)),
            Err((code, message)) => {
                failures += 1;
                let hint = code
                    .and_then(|code| update_error_hint(code, change.router.kind))
                    .map(|hint| format!(" ({hint})"))
                    .unwrap_or_default();
                let text = format!(
                    "{}{message}{hint}",
                    code.map(|code| format!("Twilio error {code}: ")).unwrap_or_default()
                );
                report(&args, &mut results, Report::of(change, "failed", text, code));
            }
        }
    }
    if args.format == Format::Json {
        let document = json!({ "dry_run": args.dry_run, "results": results, "failed": failures });
        println!("{}", serde_json::to_string_pretty(&document).unwrap_or_default());
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One line (text) or one object (JSON) per change or refusal.
#[derive(Default)]
struct Report<'a> {
    outcome: &'static str,
    subject: String,
    change: Option<&'a Change>,
    note: String,
    error_code: Option<u64>,
}

impl<'a> Report<'a> {
    fn of(change: &'a Change, outcome: &'static str, note: String, error_code: Option<u64>) -> Self {
        Self {
            outcome,
            subject: change.router.describe(),
            change: Some(change),
            note,
            error_code,
        }
    }

    fn refused(subject: &str, reason: &str) -> Self {
        Self {
            outcome: "failed",
            subject: subject.to_owned(),
            note: reason.to_owned(),
            ..Self::default()
        }
    }
}

fn report(args: &SetArgs, results: &mut Vec<Value>, report: Report<'_>) {
    let fields = report.change.map(|change| change.fields.as_slice()).unwrap_or_default();
    match args.format {
        Format::Json => results.push(json!({
            "resource": report.change.map(|change| json!({
                "kind": change.router.kind.label(),
                "sid": change.router.sid,
                "name": change.router.name,
            })),
            "subject": report.subject,
            "numbers": report.change.map(|change| change.covers.clone()).unwrap_or_default(),
            "also_covers": report.change.map(|change| change.also_covers.clone()).unwrap_or_default(),
            "outcome": report.outcome,
            "fields": fields.iter().map(|(k, v)| (k.to_string(), Value::from(v.as_str()))).collect::<serde_json::Map<_, _>>(),
            "note": (!report.note.is_empty()).then_some(&report.note),
            "error_code": report.error_code,
        })),
        Format::Text => {
            let mut line = format!("{:<9} {}", report.outcome, report.subject);
            if !fields.is_empty() {
                let changes = fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
                line.push_str(&format!(": {changes}"));
            }
            if let Some(change) = report.change {
                line.push_str(&format!(" — covers {}", change.covers.join(", ")));
                if !change.also_covers.is_empty() {
                    line.push_str(&format!(
                        " (also {}, not asked for: the {} is shared)",
                        change.also_covers.join(", "),
                        change.router.kind.label()
                    ));
                }
            }
            if !report.note.is_empty() {
                line.push_str(&format!(" — {}", report.note));
            }
            if report.outcome == "failed" {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
    }
}

/// What `numbers set` needs before it calls the API: which numbers (`--number` or
/// `--all-unprotected`), at least one fallback URL, each URL absolute, each number E.164 or a PN
/// SID. Clap checks the rest (a method without its URL, `--number` with `--all-unprotected`).
fn check_set_args(args: &SetArgs) -> Result<(), CliError> {
    let no_numbers = args.number.is_empty() && !args.all_unprotected;
    let no_urls = args.voice_fallback_url.is_none() && args.sms_fallback_url.is_none();
    let example = "e.g. twiml-fallback numbers set --all-unprotected --voice-fallback-url https://fallback.example.com/voice --sms-fallback-url https://fallback.example.com/sms";
    let missing = match (no_numbers, no_urls) {
        (true, true) => Some(
            "numbers set needs which numbers to update (--number NUMBER, repeatable, or --all-unprotected) and at least one fallback URL (--voice-fallback-url URL, --sms-fallback-url URL, or both)",
        ),
        (true, false) => {
            Some("numbers set needs which numbers to update: --number NUMBER (repeatable) or --all-unprotected")
        }
        (false, true) => Some(
            "numbers set needs at least one fallback URL: --voice-fallback-url URL, --sms-fallback-url URL, or both",
        ),
        (false, false) => None,
    };
    if let Some(message) = missing {
        return Err(CliError::new(message).hint(example));
    }
    for (option, url) in [
        ("--voice-fallback-url", &args.voice_fallback_url),
        ("--sms-fallback-url", &args.sms_fallback_url),
    ] {
        if let Some(url) = url
            && !twiml_fallback::url::is_absolute_http_url(url)
        {
            return Err(
                CliError::new(format!("{option} {url:?} is not an absolute http(s) URL"))
                    .hint(format!("e.g. {option} https://fallback.example.com/voice")),
            );
        }
    }
    for number in &args.number {
        if !twiml_fallback::webhook::is_e164(number) && !twiml_fallback::webhook::is_sid(number, "PN") {
            return Err(CliError::new(format!(
                "--number {number:?} is neither an E.164 phone number (+ and 8 to 15 digits) nor a phone number SID (PN + 32 hex digits)"
            ))
            .hint("write numbers as Twilio does, with + and the country code and no spaces: --number +14155550199"));
        }
    }
    Ok(())
}
