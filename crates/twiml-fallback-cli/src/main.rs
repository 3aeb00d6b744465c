//! `twiml-fallback`: keep Twilio numbers answering when the app behind them fails.
//!
//! - `serve`: the fallback endpoint (a number's "Primary handler fails" URL), natively;
//! - `check`: validate TwiML files the way Twilio reads them;
//! - `simulate`: act as Twilio against a primary URL and its fallback, without a phone;
//! - `numbers audit` / `numbers set`: find numbers without a fallback URL and set one, through
//!   Twilio's REST API;
//! - `healthcheck`: exit 0 when an endpoint answers `GET /healthz` (the container's HEALTHCHECK);
//! - `inbox list` / `show` / `dismiss` / `export`: what the endpoint kept during an outage, through
//!   its admin API;
//! - `incidents` / `alerts test`: the endpoint's incidents and who was told, and a test
//!   notification through every alert sink, through the same API.
//!
//! Exit status: 0 success, 1 a negative result (invalid TwiML, a call Twilio would fail, an
//! unprotected number, a failed update), 2 usage, I/O or configuration errors.

mod addr;
mod admin_client;
mod check;
mod cli;
mod error;
mod healthcheck;
mod http_client;
mod inbox;
mod incidents;
mod logging;
mod numbers;
mod serve;
mod simulate;
mod table;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, NumbersCommand};
use crate::error::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(&args),
        command => match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(async move {
                match command {
                    Command::Serve(args) => serve::run(args).await,
                    Command::Simulate(args) => simulate::run(args).await,
                    Command::Numbers(numbers) => match numbers.command {
                        NumbersCommand::Audit(args) => numbers::audit(args).await,
                        NumbersCommand::Set(args) => numbers::set(args).await,
                    },
                    Command::Healthcheck(args) => healthcheck::run(args).await,
                    Command::Inbox(args) => inbox::run(args).await,
                    Command::Incidents(args) => incidents::incidents(args).await,
                    Command::Alerts(args) => incidents::alerts(args).await,
                    Command::Check(args) => check::run(&args),
                }
            }),
            Err(error) => Err(CliError::new(format!("cannot start the async runtime: {error}"))),
        },
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            error.print();
            ExitCode::from(2)
        }
    }
}
