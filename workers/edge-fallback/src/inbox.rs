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
//!   pass is already running in this instance.
//!
//! Each event's writes commit atomically before the object's answer leaves it (the output gate),
//! so a stored entry is durable when the Worker hears `stored`. No `BEGIN`/`COMMIT` is sent: the
//! Durable Object SQL API forbids them, and the core's statements need none. The same gate holds
//! a replay's requests until what was written before them is durable (see [`crate::replay`]).
//!
//! **The alarm** does two jobs. Old entries are purged ([`inbox::purge`]) when the object starts,
//! at most hourly as requests arrive ([`PurgeSchedule`]), and by the alarm, so an idle object does
//! not keep expired personal data. With replay on, the alarm also runs the automatic passes: it
//! fires at the earliest of the next purge (an hour on) and the next pass the core says has
//! something to do (`Replayer::next_pass_at`: the earliest queue head due, never sooner than a
//! second on). A stored entry makes
//! sure the alarm fires within `min_interval_seconds` (the time this instance set is kept in
//! memory, so a store reads no storage; the alarm is read once per instance). The handler purges
//! when due, runs a pass and sets the next alarm; it never returns an error (alarms are retried
//! on one): what fails is logged, and the next alarm tries again. With replay off, the alarm is
//! the hourly purge only.
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
use twiml_fallback::replay::{MIN_PASS_GAP_MS, PassRequest, PassSummary, Replayer, pass_failed_line};
use worker::js_sys::{self, Array, ArrayBuffer, Number, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::types::{SqlStorage, SqlStorageCursor};
use worker::{
    DurableObject, Env, Method, Request, RequestInit, Response, ScheduledTime, State, durable_object, web_sys,
};

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
}

impl DurableObject for Inbox {
    fn new(state: State, env: Env) -> Self {
        let config = served_config(&env).config;
        let replay = replay::replayer(&env, &config, &verifier(&env));
        write(&replay::startup_line(&replay));
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
        if url == STORE_URL {
            let entry = body.as_deref().map(|body| {
                std::str::from_utf8(body)
                    .map_err(|error| error.to_string())
                    .and_then(inbox::entry_from_wire)
            });
            let answer = match &entry {
                Some(Ok(entry)) => self.store(entry),
                Some(Err(error)) => Err(StoreError::Driver(format!("the Worker sent no entry: {error}"))),
                None => Err(StoreError::Driver("the entry could not be read".to_owned())),
            };
            if let (Ok(StoreOutcome::Stored), Some(replayer), Some(Ok(entry))) =
                (&answer, replay::on(&self.replay), entry.as_ref())
            {
                // The alarm fires by the time the new entry is due.
                let by = replayer.due_at(entry);
                if self.alarm_at.get().is_none_or(|at| at > by) {
                    self.set_alarm(by).await;
                }
            }
            return store_answer(answer).map(Response::from);
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
                Some(Ok(summary)) => summary.answer(),
                Some(Err(error)) => AdminResponse::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the replay pass failed: {error}"),
                ),
                None => AdminResponse::error(StatusCode::CONFLICT, "a replay pass is running"),
            },
            Some(Routed::Answer(answer)) => answer,
            None => return Response::error("not an inbox request", 404),
        };
        crate::respond_admin(&answer).map(Response::from)
    }

    /// The purge when due, then (with replay on) an automatic pass, then the next alarm. Alarms
    /// are retried a few times on an error, so the handler never returns one: what fails is
    /// logged, and the next alarm tries again.
    async fn alarm(&self) -> worker::Result<Response> {
        // This alarm has fired: none is set until one is set again.
        self.alarm_checked.set(true);
        self.alarm_at.set(None);
        self.purge_if_due();
        let now = now_ms();
        match replay::on(&self.replay) {
            // The pass sets the next alarm when it ends.
            Some(replayer) => {
                if self.replay_pass(&PassRequest::default()).await.is_none() {
                    // A pass (an operator's) is running: it sets the next alarm when it ends;
                    // this one only makes sure one comes should that pass never end.
                    self.set_alarm(now.saturating_add(tick_ms(replayer))).await;
                }
            }
            None => self.set_alarm(now.saturating_add(PURGE_ALARM_MS)).await,
        }
        Response::ok("")
    }
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

    /// Runs a replay pass of `request` and then sets the next alarm; `None` when a pass is already
    /// running in this instance (or replay is off: the admin API answers that before).
    async fn replay_pass(&self, request: &PassRequest) -> Option<Result<PassSummary, StoreError>> {
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
        self.set_next_alarm(replayer, cut_short).await;
        Some(ran.map(|ran| ran.summary))
    }

    /// After a pass: the alarm at the earliest of the next purge and the next pass the core says
    /// has something to do ([`Replayer::next_pass_at`]); a second on when the pass stopped on
    /// this invocation's limits (it goes on where it stopped).
    async fn set_next_alarm(&self, replayer: &Replayer, cut_short: bool) {
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
        self.set_alarm(next.map_or(purge, |at| at.min(purge))).await;
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

/// Stores `entry` in the inbox object; its outcome once committed.
pub(crate) async fn store(env: &Env, entry: &Entry) -> Result<StoreOutcome, StoreError> {
    let driver = |error: worker::Error| StoreError::Driver(format!("the inbox cannot be reached: {error}"));
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(JsValue::from_str(&inbox::entry_to_wire(entry))));
    let request = Request::new_with_init(STORE_URL, &init).map_err(driver)?;
    let mut response = stub(env)
        .map_err(driver)?
        .fetch_with_request(request)
        .await
        .map_err(driver)?;
    let status = response.status_code();
    let body = response.text().await.map_err(driver)?;
    store_outcome(status, &body)
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
