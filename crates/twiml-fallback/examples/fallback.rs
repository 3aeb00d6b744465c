//! Renders the fallback TwiML for both channels and validates TwiML files with the core.
//!
//! ```text
//! cargo run -p twiml-fallback --example fallback                       # defaults + bundled samples
//! cargo run -p twiml-fallback --example fallback -- --config fallback.toml --to +14155550199 my.xml
//! ```
//!
//! Exit status: 0 when every file given is valid TwiML, 1 when one is not, 2 on usage, I/O or
//! configuration errors. Without files it validates the two bundled samples (one of them broken on
//! purpose, with the lowercase `<response>` Twilio rejects) and exits 0.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use twiml_fallback::Channel;
use twiml_fallback::config::Config;
use twiml_fallback::twiml::{TargetChannel, validate};

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            eprintln!("usage: fallback [--config FILE] [--to +E164] [TWIML_FILE...]");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<ExitCode, String> {
    let mut config_path = None;
    let mut to = None;
    let mut files = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config_path = Some(args.next().ok_or("--config needs a file")?),
            "--to" => to = Some(args.next().ok_or("--to needs a phone number")?),
            "-h" | "--help" => {
                println!("usage: fallback [--config FILE] [--to +E164] [TWIML_FILE...]");
                return Ok(ExitCode::SUCCESS);
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ => files.push(PathBuf::from(arg)),
        }
    }
    let config = match &config_path {
        None => Config::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| format!("reading {path}: {error}"))?;
            Config::from_str_auto(&text).map_err(|errors| format!("{path} is not a valid configuration:\n{errors}"))?
        }
    };

    println!(
        "# Fallback TwiML ({})",
        config_path.as_deref().unwrap_or("embedded defaults")
    );
    for channel in [Channel::Voice, Channel::Messaging] {
        let fallback = config.fallback(Some(channel), to.as_deref());
        println!("{channel} ({}): {}", fallback.source.as_str(), fallback.twiml);
    }

    let demo = files.is_empty();
    if demo {
        let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/twiml");
        files = vec![samples.join("order-ready.xml"), samples.join("lowercase-response.xml")];
    }
    println!("\n# Validation");
    let mut all_valid = true;
    let here = std::env::current_dir().unwrap_or_default();
    for file in &files {
        let shown = file.strip_prefix(&here).unwrap_or(file).display();
        let bytes = std::fs::read(file).map_err(|error| format!("reading {}: {error}", file.display()))?;
        let report = validate(&bytes, TargetChannel::Auto);
        let channel = report.channel().map_or("no channel-specific verbs", |c| c.as_str());
        if report.is_valid() {
            println!("{shown}: valid ({channel})");
        }
        for diagnostic in report.diagnostics() {
            println!("{shown}:{diagnostic}");
        }
        all_valid &= report.is_valid();
    }
    Ok(if all_valid || demo {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
