//! Running the real `twiml-fallback` binary, with no Twilio or admin credentials from the
//! environment of whoever runs the tests.

#![allow(dead_code)]

use std::process::{Command, Output};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_twiml-fallback");

pub(crate) fn run(args: &[&str]) -> Output {
    command(args).output().expect("run twiml-fallback")
}

pub(crate) fn command(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("TWILIO_AUTH_TOKEN")
        .env_remove("TWILIO_AUTH_TOKEN_SECONDARY")
        .env_remove("TWILIO_ACCOUNT_SID")
        .env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_API_SECRET")
        .env_remove("TWIML_FALLBACK_ADMIN_TOKEN")
        .env_remove("TWIML_FALLBACK_ENDPOINT")
        .env_remove("TWIML_FALLBACK_SMTP_PASSWORD")
        .env_remove("TWILIO_API_BASE")
        // serve's default inbox lives under the data directory: the tests' own, never the user's.
        .env(
            "XDG_DATA_HOME",
            std::env::temp_dir().join(format!("twiml-fallback-cli-data-{}", std::process::id())),
        );
    command
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub(crate) fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}
