//! Replay in the inbox object: the core's passes ([`twiml_fallback::replay`]) driven with the
//! object's SQL storage and the Workers `fetch`.
//!
//! The core decides everything — which entries are due, what each run commits and sends, what an
//! answer means, when the next entry is due; this file only runs its statements through the
//! object's [`Driver`], sends its requests with the Worker's one send helper
//! ([`crate::send`]: `fetch` with `redirect: "manual"`, the request's method, headers and body as
//! they are, a `worker::Delay` deadline of its timeout, the answer read to its limit) and hands
//! each outcome back. Passes run inside the object ([`crate::inbox`]): from its alarm, and from a
//! forwarded `POST /_twiml-fallback/replay`; one at a time per instance.
//!
//! Configuration (read by the Worker and by the object, the same way):
//! - `[replay]` and `[recovery] allow_hosts` in the configuration (the allowlist is replay's);
//! - `TWILIO_AUTH_TOKEN` (secret): replayed requests are signed with it, and replies sent with
//!   it (HTTP Basic `AccountSid:token`) unless an API key is set;
//! - `TWILIO_API_KEY` and `TWILIO_API_SECRET` (secrets, optional, both or neither): send replies
//!   with an API key (`SK…`) and its secret instead;
//! - `TWILIO_API_BASE` (`[vars]`, optional): the Messages API's base URL, by default
//!   [`DEFAULT_API_BASE`]; a value that is not an absolute http(s) URL turns replay off (the
//!   `replay-config` line says why), and alert texts with it ([`crate::alerts`]).
//!
//! A pass that delivered a kept message to a primary resolves that primary's incident
//! (`Replayer::finish_pass`); the object then runs the notifications ([`crate::alerts`]).
//!
//! # Durability: committed before each send
//!
//! The core asks for a commit ([`Next::Save`]) before every request that must not be repeated
//! (a reply to the person), and this shell answers [`Run::saved`] as soon as
//! `ctx.storage.sql.exec` returns — before that write is on disk. What makes "committed before
//! each send" hold is the Durable Object's **output gate**: "Output gates hold outgoing network
//! messages (responses, fetch requests) until pending storage writes complete" (Cloudflare,
//! *Rules of Durable Objects*, "Understand how input and output gates work",
//! <https://developers.cloudflare.com/durable-objects/best-practices/rules-of-durable-objects/>,
//! whose example is an SQL write followed by the answer); and, what happens when a write fails,
//! from the storage API's `put()` option `allowUnconfirmed` (SQLite-backed storage, asynchronous
//! KV API): "By default, the system will pause outgoing network messages from the Durable Object
//! until all previous writes have been confirmed flushed to disk. If the write fails, the system
//! will reset the Object, discard all outgoing messages, and respond to any clients with errors
//! instead." So a `fetch` the object starts after an SQL write leaves the object only once that
//! write is durable, and never if it fails (the object is reset instead: what it had in memory is
//! gone, the entry stays as last committed, and the next pass settles it). The gate covers
//! subrequests, not only the event's answer, so no `storage.sync()` is needed (workers-rs 0.8.7
//! binds it as `Storage::sync`; the docs pair it with `allowUnconfirmed` writes, which the SQL API
//! cannot make). Two consequences, both already the core's rules: the time a
//! request waits at the gate counts toward its deadline (a reply that times out is "unknown" and
//! never re-sent), and a deadline that passes does not cancel the `fetch` (it may still go out,
//! which is why a timed-out reply counts as possibly sent).
//!
//! # Limits of one invocation
//!
//! A Durable Object alarm may run for 15 minutes of wall time, and an invocation may make a
//! limited number of subrequests (50 on the Workers Free plan). A pass therefore stops taking new
//! entries after [`PASS_BUDGET_MS`] or [`PASS_SENDS`] requests, leaving headroom for the run in
//! progress (a delivery, up to [`MAX_REDIRECTS`](twiml_fallback::replay::MAX_REDIRECTS) more,
//! its replies); the next alarm, a second later, goes on where it stopped. A run is never cut in
//! the middle by this shell.

use twiml_fallback::config::Config;
use twiml_fallback::edge::{LogLevel, LogLine};
use twiml_fallback::inbox::{self, StoreError};
use twiml_fallback::replay::{
    DEFAULT_API_BASE, EntryReport, Next, Pass, PassRequest, PassSummary, Replayer, Run, TwilioApi,
};
use twiml_fallback::signature::SignatureVerifier;
use worker::Env;

use crate::inbox::Driver;
use crate::{now_ms, text_binding, write};

/// The `[vars]` entry naming the Messages API's base URL.
pub(crate) const API_BASE_VARIABLE: &str = "TWILIO_API_BASE";

/// Why replay is off when `TWILIO_API_BASE` or the API key cannot be used (the `replay-config`
/// line has the error).
const BAD_API_BASE: &str = "TWILIO_API_BASE (an https URL) or TWILIO_API_KEY and TWILIO_API_SECRET (both or neither) cannot be used: replies could not be sent, so nothing is replayed";

/// How long a pass keeps taking new entries (an alarm may run for 15 minutes).
pub(crate) const PASS_BUDGET_MS: u64 = 10 * 60 * 1000;

/// How many requests a pass sends before it stops taking new entries: under the Free plan's 50
/// subrequests per invocation, with room for the run in progress.
pub(crate) const PASS_SENDS: u32 = 32;

/// The replay rules for this Worker, or the `TWILIO_API_BASE` error that turns replay off.
pub(crate) type Replay = Result<Replayer, String>;

/// The replayer from the configuration, the verifier's tokens, `TWILIO_API_BASE` and the optional
/// API key.
pub(crate) fn replayer(env: &Env, config: &Config, verifier: &SignatureVerifier) -> Replay {
    Ok(Replayer::new(config, verifier, twilio_api(env)?))
}

/// The Messages API at `TWILIO_API_BASE` with the optional API key: replay's, and the one alert
/// texts go through; the error when either cannot be used.
pub(crate) fn twilio_api(env: &Env) -> Result<TwilioApi, String> {
    let base = text_binding(env, API_BASE_VARIABLE);
    TwilioApi::new(base.as_deref().unwrap_or(DEFAULT_API_BASE))?.with_credentials(
        text_binding(env, "TWILIO_API_KEY"),
        text_binding(env, "TWILIO_API_SECRET"),
    )
}

/// Why nothing is replayed, when nothing is (for `Admin::with_replay`).
pub(crate) fn off(replay: &Replay) -> Option<&'static str> {
    match replay {
        Ok(replayer) => replayer.off(),
        Err(_) => Some(BAD_API_BASE),
    }
}

/// The running replayer, when replay is on.
pub(crate) fn on(replay: &Replay) -> Option<&Replayer> {
    replay.as_ref().ok().filter(|replayer| replayer.off().is_none())
}

/// The start-up line: the core's, or the `TWILIO_API_BASE` error.
pub(crate) fn startup_line(replay: &Replay) -> LogLine {
    match replay {
        Ok(replayer) => replayer.startup_line(),
        Err(error) => LogLine::new(
            LogLevel::Error,
            &serde_json::json!({
                "event": "replay-config",
                "replay": "off",
                "reason": BAD_API_BASE,
                "error": error,
            }),
        ),
    }
}

/// What a pass did, and whether it stopped early on this invocation's limits.
pub(crate) struct Ran {
    pub(crate) summary: PassSummary,
    pub(crate) cut_short: bool,
}

/// Runs a pass of `request`: every lane's due entries in order, then the missed calls, each run
/// driven to its end, its line written; the pass's line at the end.
pub(crate) async fn pass(replayer: &Replayer, sql: &mut Driver<'_>, request: &PassRequest) -> Result<Ran, StoreError> {
    let started = now_ms();
    let mut sends = 0;
    let within_limits = |sends: u32| sends < PASS_SENDS && now_ms().saturating_sub(started) < PASS_BUDGET_MS;
    let Pass { lanes, mut summary } = replayer.pass(sql, request, started)?;
    let mut cut_short = false;
    'lanes: for mut lane in lanes {
        loop {
            if !within_limits(sends) {
                cut_short = true;
                break 'lanes;
            }
            let Some(entry) = lane.next(sql)? else {
                break;
            };
            let report = drive(replayer.begin(entry, lane.mode(), now_ms()), sql, &mut sends).await;
            lane.finished(&report);
            summary.add(report);
        }
        summary.lane_done(&lane);
    }
    if !cut_short {
        for call in replayer.missed_calls(sql, &summary, now_ms())? {
            if !within_limits(sends) {
                cut_short = true;
                break;
            }
            if let Some(run) = replayer.text_missed_call(call, now_ms()) {
                let report = drive(run, sql, &mut sends).await;
                summary.add(report);
            }
        }
    }
    // The hold on sending, and the incidents of the primaries that took a delivery (resolved:
    // `summary.incidents_resolved` says whether notifications wait).
    for line in replayer.finish_pass(sql, &mut summary, now_ms())? {
        write(&line);
    }
    if let Some(line) = summary.line() {
        write(&line);
    }
    Ok(Ran { summary, cut_short })
}

/// Drives one run to its end — commit, send, hand back — and writes its line.
async fn drive(mut run: Run<'_>, sql: &mut Driver<'_>, sends: &mut u32) -> EntryReport {
    loop {
        match run.next() {
            Next::Save(entry) => run.saved(inbox::queue::save(sql, &entry)),
            Next::Send(request) => {
                *sends += 1;
                let sent = crate::send(&request).await;
                run.answered(sent.outcome(), now_ms());
            }
            Next::Done(report) => {
                write(&report.line());
                return report;
            }
        }
    }
}
