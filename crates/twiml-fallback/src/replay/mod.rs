//! Replay: once the app is back, every kept message is delivered to it as Twilio would have
//! delivered it, and the app's reply is carried out through Twilio's Messages API — so the person
//! who wrote during the outage finally gets the answer the app meant to give.
//!
//! The whole decision is here, as data; a shell (`serve`'s background task, the Worker's Durable
//! Object alarm) only runs statements and sends requests:
//!
//! 1. [`Replayer::pass`] lists one [`Lane`] per called number (`To`): its queue, in arrival
//!    order. Lanes may run concurrently; within one, one entry is in flight at a time.
//! 2. [`Lane::next`] reads the next entry to replay — an entry interrupted by a crash first, then
//!    the oldest pending one, and only when it is due: the oldest pending entry is the number's
//!    health probe, and after a failure the whole queue waits for its backoff.
//! 3. [`Replayer::begin`] starts a [`Run`] for it: a state machine whose [`Run::next`] says what
//!    to do — [`Next::Save`] (commit the entry's state with [`inbox::queue::save`], then
//!    [`Run::saved`]), [`Next::Send`] (send the request, then [`Run::answered`]) or
//!    [`Next::Done`] (its [`EntryReport`]; hand it to [`Lane::finished`], which says whether the
//!    rest of the queue follows, and to [`PassSummary::add`]).
//! 4. After the lanes, [`Replayer::missed_calls`] lists the missed callers to text
//!    (`[replay] missed_call_sms`) on origins whose app answered in this pass;
//!    [`Replayer::text_missed_call`] starts each one's run.
//!
//! ```text
//! pending ──save "replaying"──▶ deliver to the app ──failed──▶ pending (attempts + 1, backoff) │ failed
//!                                  │ answered
//!                                  ▼
//!          save the replies, reply 1 "sending" ──▶ Messages API ──▶ save reply 1 sent, reply 2 "sending" ──▶ …
//!                                                                  ──▶ save "replayed" (or "needs-attention")
//! ```
//!
//! **Toward the app, at least once**: a crash after the app answered but before the commit
//! delivers again (the app dedupes on `MessageSid`; every replay carries
//! [`REPLAY_HEADER`]). **Toward the person, at most once**: each reply is committed as `sending`
//! before its request and as `sent` after it; an entry found with a reply still `sending` was
//! interrupted, becomes `needs-attention` and is never sent again automatically, and neither is a
//! reply whose send timed out or failed without Twilio's answer.
//!
//! # Example
//!
//! ```
//! use twiml_fallback::config::Config;
//! use twiml_fallback::inbox::{capture, Capture, Source, Status};
//! use twiml_fallback::replay::{Mode, Next, Replayer, TwilioApi};
//! use twiml_fallback::signature::SignatureVerifier;
//! use twiml_fallback::webhook::Params;
//! use twiml_fallback::edge::SendOutcome;
//! use http::StatusCode;
//!
//! let config = Config::from_toml("[recovery]\nallow_hosts = [\"app.example.com\"]").unwrap();
//! let replayer = Replayer::new(&config, &SignatureVerifier::new("token"), TwilioApi::default());
//! let params = Params::from_form(
//!     b"MessageSid=SM1&AccountSid=AC0123456789abcdef0123456789abcdef&From=%2B14155550100\
//!       &To=%2B14155550199&Body=Open%3F&ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fsms",
//! );
//! let Capture::Keep(entry) = capture(&params, "POST", "https://fallback.example.com/sms", 0, Source::Edge)
//! else { unreachable!() };
//!
//! let mut run = replayer.begin(*entry, Mode::default(), 60_000);
//! // First the entry is committed as replaying …
//! let Next::Save(saving) = run.next() else { unreachable!() };
//! assert_eq!(saving.status, Status::Replaying);
//! run.saved(Ok(true));
//! // … then delivered to the primary that failed, freshly signed.
//! let Next::Send(delivery) = run.next() else { unreachable!() };
//! assert_eq!(delivery.url, "https://app.example.com/sms");
//! run.answered(SendOutcome::Answered {
//!     status: StatusCode::OK,
//!     content_type: Some("text/xml"),
//!     body: b"<Response><Message>Open till 9.</Message></Response>",
//! }, 60_100);
//! // The reply is committed as being sent before it goes to the Messages API.
//! let Next::Save(saving) = run.next() else { unreachable!() };
//! assert_eq!(saving.replies[0].body, "Open till 9.");
//! assert_eq!(saving.replies[0].state.as_str(), "sending");
//! ```

mod reply;
mod run;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::admin::AdminResponse;
use crate::config::{Config, MAX_REPLAY_INTERVAL_SECONDS, Recovery, ReplaySettings};
use crate::edge::{LogLevel, LogLine, rfc3339};
use crate::inbox::{self, Entry, Sql, Status, StoreError};
use crate::signature::SignatureVerifier;

pub use reply::{DEFAULT_API_BASE, SEND_TIMEOUT, TwilioApi, api_base};
pub use run::{Next, Run};

/// The header every replayed request carries, so the app can tell a replay (`1`).
pub const REPLAY_HEADER: &str = "x-twiml-fallback-replay";

/// The header carrying when Twilio first sent the request (RFC 3339, UTC).
pub const RECEIVED_AT_HEADER: &str = "x-twiml-fallback-received-at";

/// The User-Agent of replayed requests.
pub const REPLAY_USER_AGENT: &str = concat!("twiml-fallback/", env!("CARGO_PKG_VERSION"), " (replay)");

/// How long the app has to answer a replayed request: Twilio's own 15 s.
pub const DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The shortest wait between two automatic passes.
pub const MIN_PASS_GAP_MS: u64 = 1000;

/// The most `<Redirect>`s followed for one entry (Twilio gives up on a loop too).
pub const MAX_REDIRECTS: u32 = 5;

/// How a run treats its entry: automatically (a pass), or because an operator named it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mode {
    /// Named by SID: a `failed` entry is delivered again, and due times are not waited for.
    pub named: bool,
    /// Only say what would happen: nothing is written or sent.
    pub dry_run: bool,
    /// Send the replies that were withheld (late, or `send_replies` off) of the named entries.
    pub send_withheld: bool,
}

/// What `POST /_twiml-fallback/replay` asks for (its body is optional: `{}` runs a pass).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PassRequest {
    /// Only these entries (any state replay can act on), in arrival order per number.
    pub sids: Vec<String>,
    /// Say what would be delivered, change nothing.
    pub dry_run: bool,
    /// Send the named entries' withheld replies.
    pub send_withheld: bool,
}

impl PassRequest {
    /// The request from an admin body (empty: a plain pass), or what is wrong with it.
    pub fn from_body(body: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(body).map_err(|error| format!("the body is not UTF-8: {error}"))?;
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let request: Self = serde_json::from_str(text)
            .map_err(|error| format!("the body is not a replay request ({{\"sids\": [...], \"dry_run\": bool, \"send_withheld\": bool}}): {error}"))?;
        if request.send_withheld && request.sids.is_empty() {
            return Err(
                "send_withheld needs the entries named in sids (a late reply is sent only deliberately)".to_owned(),
            );
        }
        Ok(request)
    }

    fn mode(&self) -> Mode {
        Mode {
            named: !self.sids.is_empty(),
            dry_run: self.dry_run,
            send_withheld: self.send_withheld,
        }
    }
}

/// The replay rules for one endpoint: its settings, the hosts it may deliver to, the token it
/// signs with, and the Messages API it sends replies through.
#[derive(Clone, Debug)]
pub struct Replayer {
    settings: ReplaySettings,
    recovery: Option<Recovery>,
    token: Option<String>,
    api: TwilioApi,
}

impl Replayer {
    /// The replayer for `config` (`[replay]`, and `[recovery] allow_hosts` as its allowlist),
    /// signing with the verifier's first token, sending replies through `api`.
    pub fn new(config: &Config, verifier: &SignatureVerifier, api: TwilioApi) -> Self {
        Self {
            settings: config.replay().clone(),
            recovery: config.recovery().cloned(),
            token: verifier.tokens().first().map(|token| token.expose().to_owned()),
            api,
        }
    }

    /// Why nothing is replayed, when nothing is: no allowlist, or no auth token to sign with.
    pub fn off(&self) -> Option<&'static str> {
        let Some(recovery) = &self.recovery else {
            return Some(
                "no [recovery] allow_hosts: replay delivers only to allowlisted hosts, so nothing is replayed",
            );
        };
        if self
            .settings
            .url
            .as_deref()
            .is_some_and(|url| recovery.allows(url).is_err())
        {
            Some("[replay] url is not on [recovery] allow_hosts: nothing could be delivered, so nothing is replayed")
        } else if self.token.is_none() {
            Some("no TWILIO_AUTH_TOKEN: replayed requests cannot be signed, so nothing is replayed")
        } else {
            None
        }
    }

    /// The settings.
    pub fn settings(&self) -> &ReplaySettings {
        &self.settings
    }

    /// The Messages API replies go through.
    pub fn api(&self) -> &TwilioApi {
        &self.api
    }

    /// How often a shell looks for due entries: every `min_interval_seconds` (an entry is never
    /// due sooner after it was received or failed).
    pub fn tick(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.settings.min_interval_seconds.max(1))
    }

    /// The line a shell writes at start: whether replay is on, where it delivers, how it sends.
    pub fn startup_line(&self) -> LogLine {
        let settings = &self.settings;
        match self.off() {
            Some(reason) => LogLine::new(
                LogLevel::Warn,
                &serde_json::json!({ "event": "replay-config", "replay": "off", "reason": reason }),
            ),
            None => LogLine::new(
                LogLevel::Info,
                &serde_json::json!({
                    "event": "replay-config",
                    "replay": "on",
                    "target": settings.url.as_deref().unwrap_or("each entry's ErrorUrl"),
                    "min_interval_seconds": settings.min_interval_seconds,
                    "max_attempts": settings.max_attempts,
                    "send_replies": settings.send_replies,
                    "reply_window_minutes": settings.reply_window_minutes,
                    "missed_call_sms": settings.missed_call_sms.is_some(),
                    "api_base": self.api.base(),
                    "api_auth": self.api.auth_kind(),
                }),
            ),
        }
    }

    /// When `entry` is next due: its scheduled attempt, and never sooner than
    /// `min_interval_seconds` after it was received (the app was failing then).
    pub fn due_at(&self, entry: &Entry) -> u64 {
        due_at(entry, self.settings.min_interval_seconds.saturating_mul(1000))
    }

    /// When the next automatic pass has something to do, seen at `now_ms`: the earliest due
    /// time of any number's queue head (an entry interrupted in replay is due now), not before a
    /// hold on sending ends, never sooner than [`MIN_PASS_GAP_MS`] on; `None` when no entry waits
    /// (or replay is off). A shell sleeps (or sets its alarm) until then — and no longer than
    /// [`Replayer::tick`], for entries kept meanwhile.
    pub fn next_pass_at<S: Sql>(&self, sql: &mut S, now_ms: u64) -> Result<Option<u64>, StoreError> {
        if self.off().is_some() {
            return Ok(None);
        }
        let held_until = inbox::queue::hold(sql)?.until_ms;
        let mut earliest: Option<u64> = None;
        for to in inbox::queue::numbers(sql)? {
            let due = if inbox::queue::interrupted(sql, to.as_deref())?.is_empty() {
                match inbox::queue::pending_after(sql, to.as_deref(), None)? {
                    Some(head) => self.due_at(&head),
                    None => continue,
                }
            } else {
                now_ms
            };
            earliest = Some(earliest.map_or(due, |known| known.min(due)));
        }
        Ok(earliest.map(|due| due.max(held_until).max(now_ms.saturating_add(MIN_PASS_GAP_MS))))
    }

    /// Ends a pass: when a send in it found the Messages API failing (unreachable, 5xx, timing
    /// out, refusing the credentials or the rate), every automatic pass waits — from
    /// `min_interval_seconds`, doubling with each failing pass, to 15 minutes — so an outage of
    /// Twilio's API leaves one entry needing attention, not the whole backlog; a pass that sent a
    /// reply lifts the hold. Writes the hold and says so in the summary. And the incident of every
    /// origin that took a delivery resolves ([`crate::incident::primary_answered`]). The lines to log.
    pub fn finish_pass<S: Sql>(
        &self,
        sql: &mut S,
        summary: &mut PassSummary,
        now_ms: u64,
    ) -> Result<Vec<LogLine>, StoreError> {
        if summary.dry_run {
            return Ok(Vec::new());
        }
        // A primary that took a replayed message is back: its incident is over.
        let mut lines = Vec::new();
        for origin in &summary.origins_up {
            if let Some(line) =
                crate::incident::primary_answered(sql, origin, crate::incident::ResolvedBy::Replay, now_ms)?
            {
                summary.incidents_resolved += 1;
                lines.push(line);
            }
        }
        lines.extend(self.finish_hold(sql, summary, now_ms)?);
        Ok(lines)
    }

    fn finish_hold<S: Sql>(
        &self,
        sql: &mut S,
        summary: &mut PassSummary,
        now_ms: u64,
    ) -> Result<Option<LogLine>, StoreError> {
        let mut hold = inbox::queue::hold(sql)?;
        let trouble = summary.entries.iter().find_map(|report| report.api_trouble.clone());
        if let Some(reason) = trouble {
            hold.failures = hold.failures.saturating_add(1);
            hold.until_ms = now_ms.saturating_add(self.backoff_ms(hold.failures));
            hold.reason = Some(reason.clone());
            inbox::queue::set_hold(sql, &hold)?;
            summary.held_until_ms = Some(hold.until_ms);
            summary.held_because = Some(reason.clone());
            return Ok(Some(LogLine::new(
                LogLevel::Error,
                &serde_json::json!({
                    "event": "replay-held",
                    "until": rfc3339(hold.until_ms),
                    "failures": hold.failures,
                    "reason": reason,
                    "note": "the Messages API is failing: no automatic replay until then (the entry whose send it was left unknown needs attention; replies it refused are sent once it takes them)",
                }),
            )));
        }
        if hold.failures > 0 && summary.replies_sent > 0 {
            inbox::queue::set_hold(sql, &inbox::queue::Hold::default())?;
            return Ok(Some(LogLine::new(
                LogLevel::Info,
                &serde_json::json!({ "event": "replay-resumed", "after_failures": hold.failures }),
            )));
        }
        Ok(None)
    }

    /// The wait before the next attempt after `attempts` failures: `min_interval_seconds`,
    /// doubling, at most 15 minutes.
    pub fn backoff_ms(&self, attempts: u32) -> u64 {
        let doublings = attempts.saturating_sub(1).min(20);
        let seconds = self
            .settings
            .min_interval_seconds
            .saturating_mul(1u64 << doublings)
            .min(MAX_REPLAY_INTERVAL_SECONDS);
        seconds * 1000
    }

    /// A pass: one lane per called number with entries to replay (all of them, or, when
    /// `request` names SIDs, those entries grouped by number in arrival order), and its summary
    /// so far (a named SID the inbox does not hold is reported as skipped).
    /// An automatic pass during a hold on sending ([`Replayer::finish_pass`]) has no lanes: its
    /// summary says until when, and why.
    pub fn pass<S: Sql>(&self, sql: &mut S, request: &PassRequest, now_ms: u64) -> Result<Pass, StoreError> {
        let mut summary = PassSummary::new(request);
        let hold = inbox::queue::hold(sql)?;
        if hold.until_ms > now_ms {
            summary.held_until_ms = Some(hold.until_ms);
            summary.held_because = hold.reason;
            if request.sids.is_empty() && !request.dry_run {
                return Ok(Pass {
                    lanes: Vec::new(),
                    summary,
                });
            }
        }
        let lanes = self.lanes(sql, request, now_ms, &mut summary)?;
        Ok(Pass { lanes, summary })
    }

    fn lanes<S: Sql>(
        &self,
        sql: &mut S,
        request: &PassRequest,
        now_ms: u64,
        summary: &mut PassSummary,
    ) -> Result<Vec<Lane>, StoreError> {
        let mode = request.mode();
        let lane = |to: Option<String>, named: Option<VecDeque<String>>| Lane {
            to,
            named,
            mode,
            now_ms,
            min_interval_ms: self.settings.min_interval_seconds.saturating_mul(1000),
            after: None,
            seen_interrupted: Vec::new(),
            stopped: false,
            next_due_ms: None,
        };
        if !mode.named {
            return Ok(inbox::queue::numbers(sql)?
                .into_iter()
                .map(|to| lane(to, None))
                .collect());
        }
        let mut named: Vec<Entry> = Vec::new();
        let mut unknown: Vec<&String> = Vec::new();
        for sid in &request.sids {
            if named.iter().any(|entry| &entry.sid == sid) || unknown.contains(&sid) {
                continue;
            }
            match inbox::get(sql, sid)? {
                Some(entry) => named.push(entry),
                None => {
                    unknown.push(sid);
                    summary.add(EntryReport {
                        sid: sid.clone(),
                        to: None,
                        outcome: Outcome::Skipped,
                        target: None,
                        detail: "no such entry in the inbox".to_owned(),
                        replies_sent: 0,
                        replies_withheld: 0,
                        status: Status::Dismissed,
                        stored: true,
                        halts_queue: false,
                        next_due_ms: None,
                        api_trouble: None,
                    });
                }
            }
        }
        named.sort_by(|a, b| (a.received_at_ms, &a.sid).cmp(&(b.received_at_ms, &b.sid)));
        let mut lanes: Vec<Lane> = Vec::new();
        for entry in named {
            match lanes.iter_mut().find(|lane| lane.to == entry.to) {
                Some(lane) => lane.named.get_or_insert_with(VecDeque::new).push_back(entry.sid),
                None => lanes.push(lane(entry.to.clone(), Some(VecDeque::from([entry.sid])))),
            }
        }
        Ok(lanes)
    }

    /// The missed calls to text (`[replay] missed_call_sms`) now that the app is known to be
    /// back: calls within the reply window, nobody texted for yet, whose `ErrorUrl` is on an origin
    /// (scheme, host, port) that answered after the call — a delivery in this pass, or a message
    /// received since the call that the app answered (on replay, or on recovery). One text per
    /// caller and number within the window, however often they called; none while
    /// `send_replies` is off. Start each with [`Replayer::text_missed_call`].
    pub fn missed_calls<S: Sql>(
        &self,
        sql: &mut S,
        summary: &PassSummary,
        now_ms: u64,
    ) -> Result<Vec<Entry>, StoreError> {
        if self.settings.missed_call_sms.is_none() || !self.settings.send_replies || self.off().is_some() {
            return Ok(Vec::new());
        }
        let since = now_ms.saturating_sub(self.settings.reply_window_minutes.saturating_mul(60_000));
        let calls = inbox::queue::unanswered_calls(sql, since)?;
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        // When each origin last answered: now for this pass's deliveries, else the newest
        // answered message's arrival.
        let mut answered: Vec<(String, u64)> = summary
            .origins_up
            .iter()
            .map(|origin| (origin.clone(), now_ms))
            .collect();
        for (url, at) in inbox::queue::answered_since(sql, since)? {
            if let Some(origin) = origin_of(&url) {
                match answered.iter_mut().find(|(known, _)| *known == origin) {
                    Some((_, latest)) => *latest = (*latest).max(at),
                    None => answered.push((origin, at)),
                }
            }
        }
        let mut texted = inbox::queue::texted_callers(sql, since)?;
        let mut chosen = Vec::new();
        for call in calls {
            let (Some(from), Some(to)) = (call.from.clone(), call.to.clone()) else {
                continue;
            };
            let back = call.error_url.as_deref().and_then(origin_of).is_some_and(|origin| {
                answered
                    .iter()
                    .any(|(known, at)| *known == origin && *at >= call.received_at_ms)
            });
            if back && !texted.contains(&(from.clone(), to.clone())) {
                texted.push((from, to));
                chosen.push(call);
            }
        }
        Ok(chosen)
    }

    /// The run that texts a missed caller `[replay] missed_call_sms` (from the number they
    /// called), at most once; `None` when it is not configured, replay is off
    /// ([`Replayer::off`]), or the call has no caller or number.
    pub fn text_missed_call(&self, call: Entry, now_ms: u64) -> Option<Run<'_>> {
        if self.off().is_some() {
            return None;
        }
        let text = self.settings.missed_call_sms.as_deref()?;
        Run::missed_call(self, call, text, now_ms)
    }
}

/// The line a shell writes when a pass could not read or write the inbox between runs (the pass
/// stops; the next one tries again).
pub fn pass_failed_line(error: &StoreError) -> LogLine {
    LogLine::new(
        LogLevel::Error,
        &serde_json::json!({
            "event": "replay-store-failed",
            "error": error.to_string(),
            "note": "the replay pass stopped; nothing more was sent, and the next pass tries again",
        }),
    )
}

/// When `entry` is due: its scheduled attempt, never sooner than `min_interval_ms` after it was
/// received ([`Replayer::due_at`]).
fn due_at(entry: &Entry, min_interval_ms: u64) -> u64 {
    entry
        .next_attempt_ms
        .max(entry.received_at_ms.saturating_add(min_interval_ms))
}

/// `scheme://host:port` of a URL, lowercased, the default port written out: what "the same app"
/// means for a missed call.
fn origin_of(url: &str) -> Option<String> {
    let origin = crate::incident::origin_of(Some(url));
    (origin != crate::incident::UNKNOWN_ORIGIN).then_some(origin)
}

/// A pass about to run: its lanes, and its summary so far.
#[derive(Debug)]
pub struct Pass {
    /// One per called number; they may run concurrently.
    pub lanes: Vec<Lane>,
    /// Add each finished run's report ([`PassSummary::add`]) and lane ([`PassSummary::lane_done`]).
    pub summary: PassSummary,
}

/// One called number's queue in a pass.
#[derive(Clone, Debug)]
pub struct Lane {
    to: Option<String>,
    named: Option<VecDeque<String>>,
    mode: Mode,
    now_ms: u64,
    min_interval_ms: u64,
    /// The last pending entry handed out (the queue continues after it).
    after: Option<(u64, String)>,
    /// Interrupted entries handed out already.
    seen_interrupted: Vec<String>,
    stopped: bool,
    next_due_ms: Option<u64>,
}

impl Lane {
    /// The called number.
    pub fn to(&self) -> Option<&str> {
        self.to.as_deref()
    }

    /// How the lane's runs treat their entries (for [`Replayer::begin`]).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// When this number's queue is next due, once the lane stopped on a head that is not due yet.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.next_due_ms
    }

    /// The next entry to replay, or `None` when the lane is done: its queue is empty, stopped
    /// after a failure, or its head is not due yet.
    pub fn next<S: Sql>(&mut self, sql: &mut S) -> Result<Option<Entry>, StoreError> {
        if self.stopped {
            return Ok(None);
        }
        if let Some(named) = &mut self.named {
            // Named entries that vanished since the pass began are skipped.
            while let Some(sid) = named.pop_front() {
                if let Some(entry) = inbox::get(sql, &sid)? {
                    return Ok(Some(entry));
                }
            }
            return Ok(None);
        }
        if let Some(entry) = inbox::queue::interrupted(sql, self.to.as_deref())?
            .into_iter()
            .find(|entry| !self.seen_interrupted.contains(&entry.sid))
        {
            self.seen_interrupted.push(entry.sid.clone());
            return Ok(Some(entry));
        }
        let Some(entry) = inbox::queue::pending_after(sql, self.to.as_deref(), self.after.as_ref())? else {
            self.stopped = true;
            return Ok(None);
        };
        let due = due_at(&entry, self.min_interval_ms);
        if due > self.now_ms {
            self.stopped = true;
            self.next_due_ms = Some(due);
            return Ok(None);
        }
        self.after = Some((entry.received_at_ms, entry.sid.clone()));
        Ok(Some(entry))
    }

    /// Takes a finished run's report: the rest of the queue follows unless the app failed the
    /// entry (a failed probe stops the number's queue until its backoff has passed), the inbox
    /// could not be written, or the Messages API left a send's outcome unknown.
    pub fn finished(&mut self, report: &EntryReport) {
        if self.named.is_some() {
            return;
        }
        if report.halts_queue || !report.stored {
            self.stopped = true;
            if let Some(due) = report.next_due_ms {
                self.next_due_ms = Some(self.next_due_ms.map_or(due, |known| known.min(due)));
            }
        }
    }
}

/// What came of one entry in a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The app answered; its replies were sent, withheld or there were none.
    Delivered,
    /// The app did not answer well: the entry stays pending and is tried again after its backoff.
    Retrying,
    /// The app did not answer well for the `max_attempts`-th time: the entry is `failed`.
    Failed,
    /// A reply's send was interrupted or its outcome is unknown: `needs-attention`.
    NeedsAttention,
    /// Withheld replies, or a missed caller's text, went out (no delivery to the app).
    Replied,
    /// Nothing was done (not replayable, refused by the allowlist, …): `detail` says why.
    Skipped,
    /// A dry run: this entry would be delivered to `target`.
    WouldDeliver,
    /// The inbox could not be written: the run stopped before sending anything more.
    StoreFailed,
}

impl Outcome {
    /// As in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retrying => "retrying",
            Outcome::Failed => "failed",
            Outcome::NeedsAttention => "needs-attention",
            Outcome::Replied => "replied",
            Outcome::Skipped => "skipped",
            Outcome::WouldDeliver => "would-deliver",
            Outcome::StoreFailed => "store-failed",
        }
    }
}

/// One entry's part of a pass: the admin API's per-entry line, and the shell's log line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryReport {
    /// The entry.
    pub sid: String,
    /// Its called number.
    pub to: Option<String>,
    /// What came of it.
    pub outcome: Outcome,
    /// Where it was (or would be) delivered.
    pub target: Option<String>,
    /// In words.
    pub detail: String,
    /// Replies sent.
    pub replies_sent: u32,
    /// Replies withheld.
    pub replies_withheld: u32,
    /// The entry's status afterwards.
    pub status: Status,
    /// Whether the run's last commit succeeded (a lane stops otherwise).
    #[serde(skip)]
    pub(crate) stored: bool,
    /// Whether the rest of the number's queue waits: the app failed the entry, the inbox could
    /// not be written, or a send in this run had an unknown outcome (the Messages API is failing).
    #[serde(skip)]
    pub(crate) halts_queue: bool,
    /// When the entry is next due, after a failed attempt.
    #[serde(skip)]
    pub(crate) next_due_ms: Option<u64>,
    /// Why the Messages API is in trouble, when a send in this run found it so.
    #[serde(skip)]
    pub(crate) api_trouble: Option<String>,
}

impl EntryReport {
    /// The shell's log line for it.
    pub fn line(&self) -> LogLine {
        let level = match self.outcome {
            Outcome::Failed | Outcome::NeedsAttention | Outcome::StoreFailed => LogLevel::Error,
            Outcome::Retrying => LogLevel::Warn,
            _ => LogLevel::Info,
        };
        LogLine::new(
            level,
            &serde_json::json!({
                "event": "replay",
                "sid": self.sid,
                "to": self.to,
                "outcome": self.outcome.as_str(),
                "status": self.status.as_str(),
                "target": self.target,
                "replies_sent": self.replies_sent,
                "replies_withheld": self.replies_withheld,
                "detail": self.detail,
            }),
        )
    }

    /// One line for people: `SM123 +14155550199 delivered: 1 reply sent`.
    pub fn progress(&self) -> String {
        format!(
            "{} {} {}: {}",
            self.sid,
            self.to.as_deref().unwrap_or("-"),
            self.outcome.as_str(),
            self.detail
        )
    }
}

/// What a pass did: the totals the admin API answers, each entry's report, and when the next
/// entry is due.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassSummary {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Entries the app answered.
    pub delivered: u32,
    /// Replies sent through the Messages API.
    pub replies_sent: u32,
    /// Replies kept but not sent (late, or `send_replies` off).
    pub replies_withheld: u32,
    /// Deliveries the app did not answer well (retrying, or failed for good).
    pub failed: u32,
    /// Entries nothing was done for.
    pub skipped: u32,
    /// Entries left needing attention (an interrupted or unknown send).
    pub needs_attention: u32,
    /// Entries whose run stopped because the inbox could not be written.
    #[serde(default)]
    pub store_failed: u32,
    /// Each entry, in the order they finished.
    pub entries: Vec<EntryReport>,
    /// When the next entry is due (milliseconds since the Unix epoch), if one waits.
    pub next_due_ms: Option<u64>,
    /// Until when automatic passes wait because the Messages API failed (milliseconds since the
    /// Unix epoch), if they do.
    #[serde(default)]
    pub held_until_ms: Option<u64>,
    /// What the Messages API did, when passes wait for it.
    #[serde(default)]
    pub held_because: Option<String>,
    /// Incidents this pass resolved: their primary took a delivery (the shell then runs the
    /// notifications).
    #[serde(default)]
    pub incidents_resolved: u32,
    /// Origins that answered a delivery in this pass.
    #[serde(skip)]
    origins_up: BTreeSet<String>,
}

impl PassSummary {
    /// A summary for a pass of `request`.
    pub fn new(request: &PassRequest) -> Self {
        Self {
            dry_run: request.dry_run,
            ..Self::default()
        }
    }

    /// Adds a finished run's report.
    pub fn add(&mut self, report: EntryReport) {
        match report.outcome {
            Outcome::Delivered => self.delivered += 1,
            Outcome::Retrying | Outcome::Failed => self.failed += 1,
            Outcome::NeedsAttention => self.needs_attention += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::StoreFailed => self.store_failed += 1,
            Outcome::Replied | Outcome::WouldDeliver => {}
        }
        if report.outcome == Outcome::Delivered
            && let Some(origin) = report.target.as_deref().and_then(origin_of)
        {
            self.origins_up.insert(origin);
        }
        self.replies_sent += report.replies_sent;
        self.replies_withheld += report.replies_withheld;
        self.entries.push(report);
    }

    /// Takes a finished lane's next due time.
    pub fn lane_done(&mut self, lane: &Lane) {
        if let Some(due) = lane.next_due_ms() {
            self.next_due_ms = Some(self.next_due_ms.map_or(due, |known| known.min(due)));
        }
    }

    /// Whether an operator should look: an entry failed for good, needs attention, or could not
    /// be written, or sends are held (the CLI's exit status 1).
    pub fn troubled(&self) -> bool {
        self.entries.iter().any(|entry| {
            matches!(
                entry.outcome,
                Outcome::Failed | Outcome::NeedsAttention | Outcome::StoreFailed
            )
        }) || self.held_until_ms.is_some()
    }

    /// The admin API's answer: 200 and the summary.
    pub fn answer(&self) -> AdminResponse {
        AdminResponse::json(http::StatusCode::OK, self)
    }

    /// The line a shell writes after a pass that did anything.
    pub fn line(&self) -> Option<LogLine> {
        (!self.entries.is_empty()).then(|| {
            LogLine::new(
                LogLevel::Info,
                &serde_json::json!({
                    "event": "replay-pass",
                    "dry_run": self.dry_run,
                    "delivered": self.delivered,
                    "replies_sent": self.replies_sent,
                    "replies_withheld": self.replies_withheld,
                    "failed": self.failed,
                    "skipped": self.skipped,
                    "needs_attention": self.needs_attention,
                    "store_failed": self.store_failed,
                }),
            )
        })
    }
}
