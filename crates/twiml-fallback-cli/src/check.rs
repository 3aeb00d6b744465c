//! `twiml-fallback check`: validate TwiML files with the core validator.

use std::io::Read;
use std::process::ExitCode;

use serde_json::json;
use twiml_fallback::twiml::{Severity, TargetChannel, validate};

use crate::cli::{ChannelArg, CheckArgs, Format};
use crate::error::CliError;

pub(crate) fn target(channel: ChannelArg) -> TargetChannel {
    match channel {
        ChannelArg::Voice => TargetChannel::Voice,
        ChannelArg::Messaging => TargetChannel::Messaging,
        ChannelArg::Auto => TargetChannel::Auto,
    }
}

fn read(file: &str) -> Result<Vec<u8>, CliError> {
    if file == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|error| CliError::new(format!("cannot read standard input: {error}")))?;
        return Ok(bytes);
    }
    std::fs::read(file).map_err(|error| {
        CliError::new(format!("cannot read {file}: {error}")).hint("check the path; use - to read standard input")
    })
}

pub(crate) fn run(args: &CheckArgs) -> Result<ExitCode, CliError> {
    // Read everything first: an unreadable file is a usage error (2), whatever the others hold.
    let mut documents = Vec::with_capacity(args.files.len());
    for file in &args.files {
        documents.push((file.as_str(), read(file)?));
    }
    let target = target(args.channel);
    let mut valid_files = 0;
    let mut errors = 0;
    let mut warnings = 0;
    let mut results = Vec::new();
    for (file, bytes) in &documents {
        let report = validate(bytes, target);
        let valid = report.is_valid() && !(args.deny_warnings && report.warnings().next().is_some());
        valid_files += usize::from(valid);
        errors += report.errors().count();
        warnings += report.warnings().count();
        let name = if *file == "-" { "<stdin>" } else { file };
        match args.format {
            Format::Text => {
                for diagnostic in report.diagnostics() {
                    println!("{name}:{diagnostic}");
                }
            }
            Format::Json => results.push(json!({
                "file": name,
                "valid": valid,
                "channel": report.channel().map(|c| c.as_str()),
                "diagnostics": report.diagnostics().iter().map(|d| json!({
                    "line": d.line,
                    "column": d.column,
                    "severity": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
                    "code": d.code.as_u32(),
                    "title": d.code.title(),
                    "message": d.message,
                })).collect::<Vec<_>>(),
            })),
        }
    }
    match args.format {
        Format::Text => {
            eprintln!(
                "{} checked: {valid_files} valid, {} invalid ({errors} {}, {warnings} {})",
                plural(documents.len(), "file"),
                documents.len() - valid_files,
                if errors == 1 { "error" } else { "errors" },
                if warnings == 1 { "warning" } else { "warnings" },
            );
        }
        Format::Json => {
            let document = json!({ "valid": all_valid(valid_files, &documents), "files": results });
            println!("{}", serde_json::to_string_pretty(&document).unwrap_or_default());
        }
    }
    Ok(if all_valid(valid_files, &documents) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn all_valid(valid_files: usize, documents: &[(&str, Vec<u8>)]) -> bool {
    valid_files == documents.len()
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
