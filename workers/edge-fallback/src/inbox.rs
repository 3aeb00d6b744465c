//! The outage inbox in a SQLite-backed Durable Object: the class `Inbox`, bound as `INBOX`.
//!
//! The core owns the schema, the migrations and every statement (`twiml_fallback::inbox`); this
//! file owns only the driver — the core's [`Sql`] over the object's `ctx.storage.sql` — and the
//! plumbing between the Worker and the object:
//!
//! - `POST` [`STORE_URL`] with an entry in the core's wire form ([`inbox::entry_to_wire`]: its
//!   row, read back as stored rows are): the object stores it ([`inbox::store()`]) and answers the
//!   outcome; the Worker awaits it before answering Twilio, writes the outcome's line and, when
//!   the write failed, [`write_failed_line`](inbox::store::write_failed_line).
//! - An admin request (`/_twiml-fallback/inbox…`), forwarded as it came (method, URL,
//!   `Authorization`, body) once the Worker's own [`Admin::route`] said it is one for the inbox:
//!   the object routes it again (the core's [`Operation`] has no wire form) and answers what
//!   [`Operation::perform`] renders, writing its lines.
//! - A replay request (`POST /_twiml-fallback/replay`), forwarded the same way: the object routes
//!   it again and runs the pass itself ([`crate::replay`]), answering its summary — or 409 while a
//!   pass is already running in this instance. `POST /_twiml-fallback/alerts/test` too: the
//!   object sends the test notifications ([`crate::alerts::test`]), texts from the account of its
//!   last incident unless the request names one.
//! - An incident notice, in the core's [`Notice`] (`notice_to_wire`: its fields as a JSON array):
//!   with the entry, `POST` [`STORE_NOTICE_URL`] (the notice's line, then the entry's: one
//!   request for both, the one the Worker awaits anyway), else `POST` [`NOTICE_URL`] from the
//!   Worker's `ctx.wait_until`. The object files it ([`Alerting::record`]) after storing the
//!   entry; the entry's outcome is the answer either way. A recovery the primary answered:
//!   `POST` [`RESOLVED_URL`] with its origin ([`incident::primary_answered`]). The object writes
//!   what came of each (`incident-opened`, `incident-resolved`, `incident-store-failed`).
//!
//! Each event's writes commit atomically before the object's answer leaves it (the output gate),
//! so a stored entry is durable when the Worker hears `stored`. No `BEGIN`/`COMMIT` is sent: the
//! Durable Object SQL API forbids them, and the core's statements need none. The same gate holds
//! a replay's requests until what was written before them is durable (see [`crate::replay`]).
//!
//! **The alarm** does three jobs. Old entries are purged ([`inbox::purge`]) when the object starts,
//! at most hourly as requests arrive ([`PurgeSchedule`]), and by the alarm, so an idle object does
//! not keep expired personal data. With replay on, the alarm also runs the automatic passes: it
//! fires at the earliest of the next purge (an hour on) and the next pass the core says has
//! something to do (`Replayer::next_pass_at`: the earliest queue head due, never sooner than a
//! second on). A stored entry makes
//! sure the alarm fires within `min_interval_seconds` (the time this instance set is kept in
//! memory, so a store reads no storage; the alarm is read once per instance). The handler purges
//! when due, runs a pass and sets the next alarm; it never returns an error (alarms are retried
//! on one): what fails is logged, and the next alarm tries again. With replay off, the alarm is
//! the hourly purge and the notifications.
//!
//! And the alarm sends the incident notifications ([`crate::alerts::notify`]): the core's outbox, in
//! the same database (schema v4, migrated with the inbox's). A notice that opens an incident (or
//! a resolve by a recovery or a replay pass) sets the alarm to now, so the notifications leave
//! within moments of the event but never on its request's path; the handler sends what is due
//! first, then runs the pass (and sends again when the pass resolved incidents), then sets the
//! alarm to the earliest of the next purge, the next pass and the core's [`Tick::next_at`]
//! (a quiet resolve, a reminder, a retry's backoff). No event ever moves a set alarm later
//! ([`Inbox::alarm_by`]): an early alarm finds little to do, a late one would hold up what is due.
//!
//! [`Tick::next_at`]: twiml_fallback::incident::Tick::next_at
//!
//! **One object holds every number's inbox** ([`OBJECT_NAME`]): a Durable Object takes far more
//! writes per second than an outage of a few numbers produces (every entry is one webhook a person
//! sent; Cloudflare documents a soft limit of about 1,000 requests per second per object, and
//! under local workerd on 2 shared cores one object stored ~1,200 distinct entries per second at
//! 16 connections, against ~6,500 fallback answers per second without the inbox). When one
//! object's throughput is reached, the path is sharding by called number — one object per `To`
//! (`get_by_name(to)`), the admin API listing across them.

use std::cell::Cell;

use http::StatusCode;
use twiml_fallback::admin::{ADMIN_TOKEN_VARIABLE, Admin, AdminRequest, AdminResponse, Operation, Routed};
use twiml_fallback::config::InboxSettings;
use twiml_fallback::edge::method_of;
use twiml_fallback::inbox::{self, Entry, PurgeSchedule, Sql, SqlValue, Statement, StoreError, StoreOutcome};
use twiml_fallback::incident::{self, Alerting, Notice, ResolvedBy};
use twiml_fallback::replay::{MIN_PASS_GAP_MS, PassRequest, PassSummary, Replayer, pass_failed_line};
use worker::js_sys::{self, Array, ArrayBuffer, Number, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::types::{SqlStorage, SqlStorageCursor};
use worker::{
    DurableObject, Env, Method, Request, RequestInit, Response, ScheduledTime, State, durable_object, web_sys,
};

use crate::alerts;
use crate::replay::{self, Replay};
use crate::{now_ms, served_config, text_binding, verifier, write};

/// The Durable Object namespace binding (`[[durable_objects.bindings]]` in wrangler.toml).
pub(crate) const BINDING: &str = "INBOX";

/// The name of the one object that holds the inbox (`get_by_name`).
pub(crate) const OBJECT_NAME: &str = "inbox";

/// How long after now the purge alarm fires: the core's purge interval.
const PURGE_ALARM_MS: u64 = inbox::store::PURGE_EVERY_MS;

/// The URL the Worker posts an entry to (a Durable Object answers any URL; this one is ours).
const STORE_URL: &str = "https://inbox.twiml-fallback.internal/store";

/// The URL the Worker posts an entry and the request's incident notice to: the notice's JSON, a
/// newline (JSON text has none of its own), then the entry's wire form. One request for both.
const STORE_NOTICE_URL: &str = "https://inbox.twiml-fallback.internal/store-notice";

/// The URL the Worker posts an incident notice to (its JSON) when no entry goes with it.
const NOTICE_URL: &str = "https://inbox.twiml-fallback.internal/notice";

/// The URL the Worker posts an origin to whose primary answered a recovery.
const RESOLVED_URL: &str = "https://inbox.twiml-fallback.internal/resolved";

/// The outage inbox: one SQLite database, the core's schema.
#[durable_object(alarm)]
pub struct Inbox {
    /// The object's state: its alarm (the purge, and the automatic replay passes).
    state: State,
    /// Whether this instance has made sure an alarm is set.
    alarm_checked: Cell<bool>,
    /// When the alarm fires, as this instance last set or read it (`None`: no alarm is set).
    alarm_at: Cell<Option<u64>>,
    /// The replay rules (or why replay is off).
    replay: Replay,
    /// Whether a replay pass is running in this instance.
    passing: Cell<bool>,
    /// `ctx.storage.sql`, or why there is none (a class not declared in `new_sqlite_classes`).
    sql: Result<SqlStorage, String>,
    /// Whether the schema is current (migrated in `new`; retried on a request after a failure).
    migrated: Cell<bool>,
    settings: InboxSettings,
    admin: Admin,
    purge: Cell<PurgeSchedule>,
    /// The incident rules: notices filed here, notifications sent from the alarm.
    alerting: Alerting,
    /// The bindings (the `ALERT_EMAIL` one sends email).
    env: Env,
}

impl DurableObject for Inbox {
    fn new(state: State, env: Env) -> Self {
        let config = served_config(&env).config;
        let verifier = verifier(&env);
        let replay = replay::replayer(&env, &config, &verifier);
        write(&replay::startup_line(&replay));
        let (alerting, texts_off) = alerts::alerting(&env, &config, &verifier);
        write(&alerting.startup_line());
        if let Some(line) = &texts_off {
            write(line);
        }
        let inbox = Self {
            sql: sql_storage(&state),
            state,
            alarm_checked: Cell::new(false),
            alarm_at: Cell::new(None),
            migrated: Cell::new(false),
            settings: config.inbox(),
            admin: Admin::new(text_binding(&env, ADMIN_TOKEN_VARIABLE), true).with_replay(replay::off(&replay)),
            replay,
            passing: Cell::new(false),
            purge: Cell::default(),
            alerting,
            env,
        };
        // A failure here is retried by the first request, which then answers it.
        let _ = inbox.driver();
        inbox.purge_if_due();
        inbox
    }

    async fn fetch(&self, mut request: Request) -> worker::Result<Response> {
        let raw = request.inner();
        let url = raw.url();
        let method = method_of(&raw.method());
        let authorization = raw.headers().get("Authorization").ok().flatten();
        // The Worker read the body to its limit before forwarding it.
        let body = request.bytes().await.ok();
        self.purge_if_due();
        self.check_alarm().await;
        if let Some(internal) = self.internal(&url, body.as_deref()) {
            if let Some(at) = internal.alarm_by {
                self.alarm_by(at).await;
            }
            return internal.answer.map(Response::from);
        }
        let admin = AdminRequest {
            method: &method,
            url: &url,
            authorization: authorization.as_deref(),
            body: body.as_deref(),
        };
        let answer = match self.admin.route(&admin, now_ms()) {
            Some(Routed::Inbox(operation)) => self.perform(operation),
            Some(Routed::Replay(request)) => match self.replay_pass(&request).await {
                Some((ran, next)) => {
                    // The alarm by the next pass, or now when the pass resolved incidents (their
                    // notifications wait).
                    let resolved = ran.as_ref().is_ok_and(|summary| summary.incidents_resolved > 0);
                    self.alarm_by(if resolved { now_ms() } else { next }).await;
                    match ran {
                        Ok(summary) => summary.answer(),
                        Err(error) => AdminResponse::error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("the replay pass failed: {error}"),
                        ),
                    }
                }
                None => AdminResponse::error(StatusCode::CONFLICT, "a replay pass is running"),
            },
            Some(Routed::AlertTest(test)) => {
                let requested = test.account_sid.as_deref();
                let account = self
                    .driver()
                    .and_then(|mut driver| incident::test_account(&mut driver, requested))
                    .unwrap_or_else(|error| {
                        write(&incident::store_failed_line(&error));
                        requested.map(str::to_owned)
                    });
                alerts::test(&self.alerting, &self.env, account.as_deref()).await
            }
            Some(Routed::Answer(answer)) => answer,
            None => return Response::error("not an inbox request", 404),
        };
        crate::respond_admin(&answer).map(Response::from)
    }

    /// The purge when due, the incident notifications due, then (with replay on) an automatic
    /// pass — and the notifications again when it resolved incidents — then the next alarm: the
    /// earliest of the next purge, the next pass and the next notification. Alarms are retried a
    /// few times on an error, so the handler never returns one: what fails is logged, and the
    /// next alarm tries again.
    async fn alarm(&self) -> worker::Result<Response> {
        // This alarm has fired: none is set until one is set again (an event interleaving with
        // this one may set one; the next alarm below is never later than that).
        self.alarm_checked.set(true);
        self.alarm_at.set(None);
        self.purge_if_due();
        let now = now_ms();
        let mut next = now.saturating_add(PURGE_ALARM_MS);
        let sooner = |next: &mut u64, at: Option<u64>| *next = at.map_or(*next, |at| at.min(*next));
        sooner(&mut next, self.notify().await);
        if let Some(replayer) = replay::on(&self.replay) {
            match self.replay_pass(&PassRequest::default()).await {
                Some((ran, pass_next)) => {
                    sooner(&mut next, Some(pass_next));
                    if ran.is_ok_and(|summary| summary.incidents_resolved > 0) {
                        sooner(&mut next, self.notify().await);
                    }
                }
                // A pass (an operator's) is running: it sets the next alarm when it ends; this
                // one only makes sure one comes should that pass never end.
                None => sooner(&mut next, Some(now.saturating_add(tick_ms(replayer)))),
            }
        }
        self.alarm_by(next).await;
        Response::ok("")
    }
}

/// What [`Inbox::internal`] did: its answer, and when the alarm must fire by.
struct Internal {
    alarm_by: Option<u64>,
    answer: worker::Result<web_sys::Response>,
}

/// `200` with no body.
fn empty_answer() -> worker::Result<web_sys::Response> {
    Ok(web_sys::Response::new()?)
}

/// Writes that a request from the Worker could not be read (its incident part).
fn failed(why: &str) {
    write(&incident::store_failed_line(&StoreError::Driver(why.to_owned())));
}

/// `min_interval_seconds` in milliseconds: how soon a new entry is due.
fn tick_ms(replayer: &Replayer) -> u64 {
    u64::try_from(replayer.tick().as_millis()).unwrap_or(u64::MAX)
}

/// Marks a pass as running for as long as it lives (also when its event is cancelled midway).
struct Passing<'a>(&'a Cell<bool>);

impl Drop for Passing<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl Inbox {
    /// The core's driver over this object's SQL storage, the schema migrated first.
    fn driver(&self) -> Result<Driver<'_>, StoreError> {
        let sql = self.sql.as_ref().map_err(|error| StoreError::Driver(error.clone()))?;
        let mut driver = Driver(sql);
        if !self.migrated.get() {
            inbox::migrate(&mut driver)?;
            self.migrated.set(true);
        }
        Ok(driver)
    }

    fn store(&self, entry: &Entry) -> Result<StoreOutcome, StoreError> {
        inbox::store(&mut self.driver()?, entry, self.settings)
    }

    /// Performs an admin operation on the store, or, when it cannot be opened, answers the core's
    /// failure (`Operation::failed`).
    fn perform(&self, operation: Operation) -> AdminResponse {
        let (answer, lines) = match self.driver() {
            Ok(mut driver) => operation.perform(&mut driver, self.settings),
            Err(error) => operation.failed(&error),
        };
        for line in &lines {
            write(line);
        }
        answer
    }

    /// Performs a request the Worker sent the object itself (an entry to store, an incident
    /// notice, a recovered origin; `None` for any other URL): the answer, and when the alarm must
    /// fire by (all synchronous: the one await is the caller's).
    fn internal(&self, url: &str, body: Option<&[u8]>) -> Option<Internal> {
        let text = body
            .ok_or_else(|| "the request could not be read".to_owned())
            .and_then(|body| std::str::from_utf8(body).map_err(|error| error.to_string()));
        let now = now_ms();
        let (entry, notice) = match url {
            STORE_URL => (Some(text), None),
            // The notice's JSON on the first line, the entry after it.
            STORE_NOTICE_URL => match text.as_deref().map(|text| text.split_once('\n')) {
                Ok(Some((notice, entry))) => (Some(Ok(entry)), Some(notice_from_wire(notice))),
                Ok(None) => (Some(Err("no newline after the notice".to_owned())), None),
                Err(error) => (Some(Err(error.clone())), None),
            },
            NOTICE_URL => (None, Some(text.and_then(notice_from_wire))),
            RESOLVED_URL => {
                let woke = match text {
                    Ok(origin) => self.resolved(origin, now),
                    Err(error) => {
                        failed(&format!("the Worker sent no origin: {error}"));
                        false
                    }
                };
                return Some(Internal {
                    alarm_by: woke.then_some(now),
                    answer: empty_answer(),
                });
            }
            _ => return None,
        };
        let mut alarm_by = None;
        let stored = entry.map(|wire| {
            let entry = wire.and_then(inbox::entry_from_wire);
            let answer = match &entry {
                Ok(entry) => self.store(entry),
                Err(error) => Err(StoreError::Driver(format!("the Worker sent no entry: {error}"))),
            };
            if let (Ok(StoreOutcome::Stored), Some(replayer), Ok(entry)) = (&answer, replay::on(&self.replay), &entry) {
                // The alarm fires by the time the new entry is due.
                alarm_by = Some(replayer.due_at(entry));
            }
            answer
        });
        // The notice after the entry: the entry's outcome is the answer either way.
        let woke = match notice {
            Some(Ok(notice)) => self.record(&notice, now),
            Some(Err(error)) => {
                failed(&format!("the Worker sent no notice: {error}"));
                false
            }
            None => false,
        };
        if woke {
            alarm_by = Some(now);
        }
        Some(Internal {
            alarm_by,
            answer: stored.map_or_else(empty_answer, store_answer),
        })
    }

    /// Files an incident notice ([`Alerting::record`]) and writes its line; whether the alarm
    /// must fire now: it opened an incident, or notifications wait (they are sent from the alarm,
    /// never in the request that brought the notice).
    fn record(&self, notice: &Notice, now: u64) -> bool {
        match self
            .driver()
            .and_then(|mut driver| self.alerting.record(&mut driver, notice, now))
        {
            Ok(recorded) => {
                if let Some(line) = &recorded.line {
                    write(line);
                }
                recorded.wake || recorded.opened
            }
            Err(error) => {
                write(&incident::store_failed_line(&error));
                false
            }
        }
    }

    /// The primary at `origin` answered a recovery: its open incident, if any, resolves
    /// ([`incident::primary_answered`]); whether the alarm must fire now, to send the resolve.
    fn resolved(&self, origin: &str, now: u64) -> bool {
        match self
            .driver()
            .and_then(|mut driver| incident::primary_answered(&mut driver, origin, ResolvedBy::Recovery, now))
        {
            Ok(Some(line)) => {
                write(&line);
                true
            }
            Ok(None) => false,
            Err(error) => {
                write(&incident::store_failed_line(&error));
                false
            }
        }
    }

    /// Sends the incident notifications due ([`alerts::notify`]); when to again.
    async fn notify(&self) -> Option<u64> {
        match self.driver() {
            Ok(mut driver) => alerts::notify(&self.alerting, &mut driver, &self.env).await,
            Err(error) => {
                write(&incident::store_failed_line(&error));
                Some(now_ms().saturating_add(alerts::AFTER_STORE_FAILURE_MS))
            }
        }
    }

    /// Runs a replay pass of `request`: what it did, and when the alarm should fire for the next
    /// one (at the latest the next purge); `None` when a pass is already running in this
    /// instance (or replay is off: the admin API answers that before).
    async fn replay_pass(&self, request: &PassRequest) -> Option<(Result<PassSummary, StoreError>, u64)> {
        let replayer = replay::on(&self.replay)?;
        if self.passing.replace(true) {
            return None;
        }
        let passing = Passing(&self.passing);
        let ran = match self.driver() {
            Ok(mut driver) => replay::pass(replayer, &mut driver, request).await,
            Err(error) => Err(error),
        };
        drop(passing);
        if let Err(error) = &ran {
            write(&pass_failed_line(error));
        }
        let cut_short = ran.as_ref().is_ok_and(|ran| ran.cut_short);
        let next = self.next_pass_alarm(replayer, cut_short);
        Some((ran.map(|ran| ran.summary), next))
    }

    /// After a pass: the earliest of the next purge and the next pass the core says has
    /// something to do ([`Replayer::next_pass_at`]); a second on when the pass stopped on this
    /// invocation's limits (it goes on where it stopped).
    fn next_pass_alarm(&self, replayer: &Replayer, cut_short: bool) -> u64 {
        let now = now_ms();
        let next = if cut_short {
            Some(now.saturating_add(MIN_PASS_GAP_MS))
        } else {
            self.driver()
                .and_then(|mut driver| replayer.next_pass_at(&mut driver, now))
                .unwrap_or_else(|error| {
                    write(&pass_failed_line(&error));
                    Some(now.saturating_add(tick_ms(replayer)))
                })
        };
        let purge = now.saturating_add(PURGE_ALARM_MS);
        next.map_or(purge, |at| at.min(purge))
    }

    /// Makes sure the alarm fires by `at`: sets it unless one is set sooner (an early alarm
    /// costs one invocation that finds little to do; a late one would delay what is due).
    async fn alarm_by(&self, at: u64) {
        if self.alarm_at.get().is_none_or(|set| set > at) {
            self.set_alarm(at).await;
        }
    }

    /// Sets the alarm to fire at `at` (milliseconds since the epoch), remembering it; a failure is
    /// logged (the next event that sets one tries again).
    async fn set_alarm(&self, at: u64) {
        // Remembered first: an event that interleaves sees the alarm as it will be.
        self.alarm_at.set(Some(at));
        let time = ScheduledTime::new(js_sys::Date::new(&JsValue::from_f64(at as f64)));
        if let Err(error) = self.state.storage().set_alarm(time).await {
            self.alarm_at.set(None);
            write(&inbox::store::purge_failed_line(&StoreError::Driver(format!(
                "cannot set the alarm: {error}"
            ))));
        }
    }

    /// Makes sure an alarm is set even if no request comes (once per instance): an idle object
    /// must not keep expired personal data, nor entries it could replay. With replay on, a
    /// missing alarm is set `min_interval_seconds` on, so the first pass finds what waits.
    async fn check_alarm(&self) {
        if self.alarm_checked.replace(true) {
            return;
        }
        match self.state.storage().get_alarm().await {
            Ok(Some(at)) => self.alarm_at.set(u64::try_from(at).ok()),
            Ok(None) => {
                let after = replay::on(&self.replay).map_or(PURGE_ALARM_MS, tick_ms);
                self.set_alarm(now_ms().saturating_add(after)).await;
            }
            Err(error) => write(&inbox::store::purge_failed_line(&StoreError::Driver(format!(
                "cannot read the alarm: {error}"
            )))),
        }
    }

    /// Purges old entries when the schedule says so.
    fn purge_if_due(&self) {
        let now = now_ms();
        let mut schedule = self.purge.get();
        let due = schedule.due(now);
        self.purge.set(schedule);
        if !due {
            return;
        }
        let purged = self
            .driver()
            .and_then(|mut driver| inbox::purge(&mut driver, now, self.settings));
        match purged {
            Ok(purged) => {
                if let Some(line) = PurgeSchedule::purged_line(purged, self.settings) {
                    write(&line);
                }
            }
            Err(error) => write(&inbox::store::purge_failed_line(&error)),
        }
    }
}

/// `ctx.storage.sql`, read so that a class without SQLite storage is an error, not a throw.
fn sql_storage(state: &State) -> Result<SqlStorage, String> {
    let storage = state.as_raw().storage().map_err(|error| js_error(&error))?;
    let sql = js_sys::Reflect::get(&storage, &JsValue::from_str("sql")).map_err(|error| js_error(&error))?;
    if sql.is_object() {
        Ok(sql.unchecked_into())
    } else {
        Err(
            "this Durable Object has no SQL storage (declare the class in new_sqlite_classes, not new_classes)"
                .to_owned(),
        )
    }
}

fn js_error(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|error| String::from(error.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

/// The core's [`Sql`] over a Durable Object's SQL storage. Every call that may throw is one that
/// catches (`exec`, the row iterator), so a failing statement is an error, never an abort.
pub(crate) struct Driver<'s>(&'s SqlStorage);

impl Sql for Driver<'_> {
    type Error = String;

    fn run(&mut self, statement: &Statement) -> Result<Vec<Vec<SqlValue>>, String> {
        let sql = self.0;
        let bindings = Array::new_with_length(statement.params.len() as u32);
        for (index, value) in statement.params.iter().enumerate() {
            let value = match value {
                SqlValue::Null => JsValue::NULL,
                // Integers as JavaScript numbers: exact up to 2^53, and the schema's are
                // milliseconds, counts and codes. Never a boolean (it would bind as TEXT 'true').
                SqlValue::Integer(number) => JsValue::from_f64(*number as f64),
                SqlValue::Text(text) => JsValue::from_str(text),
            };
            bindings.set(index as u32, value);
        }
        let cursor: SqlStorageCursor = sql.exec(statement.sql, bindings).map_err(|error| js_error(&error))?;
        let mut rows = Vec::new();
        let iterator = cursor.raw();
        loop {
            let next = iterator.next().map_err(|error| js_error(&error))?;
            if next.done() {
                return Ok(rows);
            }
            let columns: Array = next
                .value()
                .dyn_into()
                .map_err(|value| format!("a row that is not an array: {value:?}"))?;
            let mut row = Vec::with_capacity(columns.length() as usize);
            for column in columns.iter() {
                row.push(value_of(&column)?);
            }
            rows.push(row);
        }
    }
}

/// A column's value as the core reads it: whole numbers (what SQLite's integers become in
/// JavaScript) as integers; the schema stores no floats or blobs.
fn value_of(value: &JsValue) -> Result<SqlValue, String> {
    if value.is_null() || value.is_undefined() {
        return Ok(SqlValue::Null);
    }
    if let Some(text) = value.as_string() {
        return Ok(SqlValue::Text(text));
    }
    if let Some(number) = value.as_f64() {
        return Ok(if Number::is_safe_integer(value) {
            SqlValue::Integer(number as i64)
        } else {
            SqlValue::Text(number.to_string())
        });
    }
    let bytes = if let Some(array) = value.dyn_ref::<Uint8Array>() {
        array.to_vec()
    } else if let Some(buffer) = value.dyn_ref::<ArrayBuffer>() {
        Uint8Array::new(buffer).to_vec()
    } else {
        return Err(format!("a column value of an unexpected type: {value:?}"));
    };
    Ok(SqlValue::Text(String::from_utf8_lossy(&bytes).into_owned()))
}

/// The object's answer to a store: `200` and the outcome as the core writes it (`stored`,
/// `duplicate`, `full MAX_ENTRIES`), or `500` and the error.
fn store_answer(outcome: Result<StoreOutcome, StoreError>) -> worker::Result<web_sys::Response> {
    let (status, body) = match outcome {
        Ok(outcome) => (200, outcome.to_string()),
        Err(error) => (500, error.to_string()),
    };
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    Ok(web_sys::Response::new_with_opt_str_and_init(Some(&body), &init)?)
}

/// The outcome the object answered ([`store_answer`]), or why there is none.
fn store_outcome(status: u16, body: &str) -> Result<StoreOutcome, StoreError> {
    match status {
        200 => body.parse().map_err(StoreError::Driver),
        500 => Err(StoreError::Driver(body.to_owned())),
        _ => Err(StoreError::Driver(format!("the inbox answered HTTP {status}: {body}"))),
    }
}

/// The stub of the one inbox object.
fn stub(env: &Env) -> worker::Result<worker::Stub> {
    env.durable_object(BINDING)?.get_by_name(OBJECT_NAME)
}

/// Stores `entry` in the inbox object, and files `notice` there in the same request; the
/// entry's outcome once committed.
pub(crate) async fn store(env: &Env, entry: &Entry, notice: Option<&Notice>) -> Result<StoreOutcome, StoreError> {
    let wire = inbox::entry_to_wire(entry);
    let (url, body) = match notice.map(notice_to_wire) {
        Some(notice) => (STORE_NOTICE_URL, format!("{notice}\n{wire}")),
        None => (STORE_URL, wire),
    };
    let mut response = post(env, url, &body).await.map_err(unreachable)?;
    let status = response.status_code();
    let body = response.text().await.map_err(unreachable)?;
    store_outcome(status, &body)
}

/// Files `notice` in the inbox object (which writes what came of it).
pub(crate) async fn file(env: &Env, notice: &Notice) -> Result<(), StoreError> {
    post(env, NOTICE_URL, &notice_to_wire(notice))
        .await
        .map(drop)
        .map_err(unreachable)
}

/// Tells the inbox object the primary at `origin` answered a recovery.
pub(crate) async fn resolved(env: &Env, origin: &str) -> Result<(), StoreError> {
    post(env, RESOLVED_URL, origin).await.map(drop).map_err(unreachable)
}

fn unreachable(error: worker::Error) -> StoreError {
    StoreError::Driver(format!("the inbox cannot be reached: {error}"))
}

/// POSTs `body` to the inbox object at `url`.
async fn post(env: &Env, url: &str, body: &str) -> worker::Result<Response> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(JsValue::from_str(body)));
    let request = Request::new_with_init(url, &init)?;
    stub(env)?.fetch_with_request(request).await
}

/// A notice's wire form: its fields as a JSON array, on one line (read by [`notice_from_wire`];
/// an array of JSON values rather than the derived serde form, which costs the Worker's upload
/// several KB for one struct — as the entry's row does, [`inbox::entry_to_wire`]).
fn notice_to_wire(notice: &Notice) -> String {
    use serde_json::Value;
    // Every field, so a new one does not compile until it is carried.
    let Notice {
        origin,
        error_code,
        channel,
        to,
        account_sid,
        kept,
        body,
        at_ms,
    } = notice;
    let text = |text: &Option<String>| text.as_deref().map_or(Value::Null, Value::from);
    Value::Array(vec![
        Value::from(origin.as_str()),
        Value::from(error_code.as_str()),
        channel.map_or(Value::Null, |channel| Value::from(channel.as_str())),
        text(to),
        text(account_sid),
        Value::Bool(*kept),
        text(body),
        Value::from(*at_ms),
    ])
    .to_string()
}

/// The notice [`notice_to_wire`] wrote, or what is wrong with the text.
fn notice_from_wire(wire: &str) -> Result<Notice, String> {
    use serde_json::Value;
    let values = match serde_json::from_str(wire) {
        Ok(Value::Array(values)) => values,
        Ok(_) => return Err("not a notice: not a JSON array".to_owned()),
        Err(error) => return Err(format!("not a notice: {error}")),
    };
    let [origin, error_code, channel, to, account_sid, kept, body, at_ms] =
        <[Value; 8]>::try_from(values).map_err(|values| format!("not a notice: {} fields", values.len()))?;
    let text = |value: Value| match value {
        Value::String(text) => Some(text),
        _ => None,
    };
    Ok(Notice {
        origin: text(origin).ok_or("not a notice: no origin")?,
        error_code: text(error_code).ok_or("not a notice: no error code")?,
        channel: channel.as_str().and_then(|channel| channel.parse().ok()),
        to: text(to),
        account_sid: text(account_sid),
        kept: kept.as_bool().unwrap_or(false),
        body: text(body),
        at_ms: at_ms.as_u64().ok_or("not a notice: no time")?,
    })
}

/// Forwards an admin request to the inbox object as it came (method, URL, `Authorization`, the
/// body read to the admin API's limit); the object's answer, or why it could not be reached.
pub(crate) async fn forward(env: &Env, request: &AdminRequest<'_>) -> Result<web_sys::Response, StoreError> {
    let forwarded = async {
        let headers = worker::Headers::new();
        if let Some(authorization) = request.authorization {
            headers.set("Authorization", authorization)?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::from(request.method.as_str().to_owned()))
            .with_headers(headers);
        // The fetch API refuses a body on GET and HEAD; the admin API reads none there.
        if let Some(body) = request.body.filter(|body| {
            !body.is_empty() && request.method != http::Method::GET && request.method != http::Method::HEAD
        }) {
            init.with_body(Some(Uint8Array::from(body).into()));
        }
        let forwarded = Request::new_with_init(request.url, &init)?;
        stub(env)?.fetch_with_request(forwarded).await
    };
    forwarded
        .await
        .map(web_sys::Response::from)
        .map_err(|error| StoreError::Driver(format!("the inbox cannot be reached: {error}")))
}
