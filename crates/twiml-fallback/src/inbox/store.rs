//! The inbox's SQLite schema, migrations and statements — one copy for both backends.
//!
//! `serve` runs these through `rusqlite` and the Worker through a Durable Object's SQL storage;
//! each implements [`Sql`] (one method: run a statement, return its rows) and calls the
//! operations here — [`migrate`], [`store`], [`get`], [`list`], [`dismiss`], [`purge`] — which
//! hold every statement and every decision about their results. A shell owns only its driver and,
//! where its driver needs them, transactions (`serve` wraps each batch of writes in one, to share
//! one fsync; a Durable Object commits each event's writes itself).
//!
//! # Example
//!
//! ```
//! use twiml_fallback::inbox::{Sql, SqlValue, Statement, migrate};
//!
//! // A driver that records what it is asked to run (a real one executes it).
//! #[derive(Default)]
//! struct Recorder(Vec<&'static str>);
//! impl Sql for Recorder {
//!     type Error = String;
//!     fn run(&mut self, statement: &Statement) -> Result<Vec<Vec<SqlValue>>, String> {
//!         self.0.push(statement.sql);
//!         Ok(Vec::new())
//!     }
//! }
//! let mut recorder = Recorder::default();
//! migrate(&mut recorder).unwrap();
//! assert!(recorder.0.iter().any(|sql| sql.starts_with("CREATE TABLE inbox_entries")));
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Entry, Source, Status};
use crate::config::InboxSettings;
use crate::edge::{LogLevel, LogLine, rfc3339};
use crate::webhook::Channel;

/// A value bound to, or read from, a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqlValue {
    /// `NULL`.
    Null,
    /// An integer (a Durable Object returns numbers as floats: the shell passes whole ones here).
    Integer(i64),
    /// Text.
    Text(String),
}

impl SqlValue {
    pub(crate) fn text(value: &str) -> Self {
        SqlValue::Text(value.to_owned())
    }

    fn optional_text(value: Option<&str>) -> Self {
        value.map_or(SqlValue::Null, SqlValue::text)
    }

    pub(crate) fn integer(value: u64) -> Self {
        SqlValue::Integer(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

/// A statement and its parameters (`?1`, `?2`, … in order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// The SQL.
    pub sql: &'static str,
    /// The parameters.
    pub params: Vec<SqlValue>,
}

impl Statement {
    pub(crate) fn new(sql: &'static str, params: Vec<SqlValue>) -> Self {
        Self { sql, params }
    }
}

/// A shell's SQLite driver: runs one statement, returning its rows (none for a statement that
/// returns none), each row's columns in the statement's order.
pub trait Sql {
    /// The driver's error.
    type Error: fmt::Display;

    /// Runs `statement`.
    fn run(&mut self, statement: &Statement) -> Result<Vec<Vec<SqlValue>>, Self::Error>;
}

/// Why an inbox operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The driver failed (I/O, a full disk, a corrupt file, a locked database).
    Driver(String),
    /// A stored row could not be read back as an entry.
    BadRow(String),
    /// The store did not answer within [`STORE_DEADLINE`]: the entry may or may not be kept.
    TimedOut,
    /// The database was written by a newer twiml-fallback.
    NewerSchema {
        /// The version found.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Driver(error) => write!(f, "{error}"),
            StoreError::BadRow(error) => write!(f, "a stored entry cannot be read: {error}"),
            StoreError::TimedOut => write!(
                f,
                "the inbox did not answer within {} ms: the entry may or may not be kept",
                STORE_DEADLINE.as_millis()
            ),
            StoreError::NewerSchema { found, known } => write!(
                f,
                "the inbox was written by a newer twiml-fallback (schema version {found}; this one knows up to {known})"
            ),
        }
    }
}

impl std::error::Error for StoreError {}

pub(crate) fn run<S: Sql>(sql: &mut S, statement: &Statement) -> Result<Vec<Vec<SqlValue>>, StoreError> {
    sql.run(statement)
        .map_err(|error| StoreError::Driver(error.to_string()))
}

/// Each migration: the statements that take the schema from the version before to this one.
const MIGRATIONS: &[&[&str]] = &[
    &[
        "CREATE TABLE inbox_entries (
        sid TEXT PRIMARY KEY NOT NULL,
        channel TEXT NOT NULL,
        account_sid TEXT,
        from_number TEXT,
        to_number TEXT,
        body TEXT,
        media TEXT NOT NULL,
        error_code INTEGER,
        error_url TEXT,
        cause TEXT,
        url TEXT NOT NULL,
        method TEXT NOT NULL,
        received_at_ms INTEGER NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_error TEXT,
        source TEXT NOT NULL,
        params TEXT NOT NULL
    )",
        "CREATE INDEX inbox_entries_by_time ON inbox_entries (received_at_ms DESC, sid DESC)",
        "CREATE INDEX inbox_entries_by_status ON inbox_entries (status, received_at_ms DESC, sid DESC)",
        // How many entries are stored, kept by triggers so the cap costs one row read per insert.
        "CREATE TABLE inbox_count (id INTEGER PRIMARY KEY CHECK (id = 1), stored INTEGER NOT NULL)",
        "INSERT INTO inbox_count (id, stored) VALUES (1, 0)",
        "CREATE TRIGGER inbox_entries_added AFTER INSERT ON inbox_entries
        BEGIN UPDATE inbox_count SET stored = stored + 1 WHERE id = 1; END",
        "CREATE TRIGGER inbox_entries_removed AFTER DELETE ON inbox_entries
        BEGIN UPDATE inbox_count SET stored = stored - 1 WHERE id = 1; END",
    ],
    &[
        // How many entries were refused because the inbox was full: counted, never silent.
        "ALTER TABLE inbox_count ADD COLUMN refused INTEGER NOT NULL DEFAULT 0",
    ],
    &[
        // Replay: what the app answered (and whether each reply went out), and when the next
        // attempt is due; each number's queue is read in arrival order by status.
        "ALTER TABLE inbox_entries ADD COLUMN replies TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE inbox_entries ADD COLUMN next_attempt_ms INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX inbox_entries_by_queue ON inbox_entries (status, to_number, received_at_ms, sid)",
        // While the Messages API fails, every send waits: until when, after how many failures, why.
        "CREATE TABLE replay_hold (id INTEGER PRIMARY KEY CHECK (id = 1), until_ms INTEGER NOT NULL, \
         failures INTEGER NOT NULL, reason TEXT)",
        "INSERT INTO replay_hold (id, until_ms, failures, reason) VALUES (1, 0, 0, NULL)",
    ],
    // Incidents and their notifications (`crate::incident`): the same database, one schema.
    crate::incident::MIGRATION,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The columns of an entry, in [`Entry`]'s order (a macro, for `concat!`).
macro_rules! entry_columns {
    () => {
        "sid, channel, account_sid, from_number, to_number, body, media, error_code, error_url, cause, \
         url, method, received_at_ms, status, attempts, last_error, source, params, replies, next_attempt_ms"
    };
}

pub(crate) use entry_columns;

/// Brings the database to [`SCHEMA_VERSION`]: creates it when empty, applies the migrations it
/// lacks, refuses one written by a newer build. Safe to run at every start.
pub fn migrate<S: Sql>(sql: &mut S) -> Result<(), StoreError> {
    run(
        sql,
        &Statement::new(
            "CREATE TABLE IF NOT EXISTS twiml_fallback_schema (component TEXT PRIMARY KEY NOT NULL, version INTEGER NOT NULL)",
            Vec::new(),
        ),
    )?;
    let rows = run(
        sql,
        &Statement::new(
            "SELECT version FROM twiml_fallback_schema WHERE component = 'inbox'",
            Vec::new(),
        ),
    )?;
    let found = match rows.first().and_then(|row| row.first()) {
        Some(SqlValue::Integer(version)) => *version,
        _ => 0,
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            known: SCHEMA_VERSION,
        });
    }
    let from = usize::try_from(found).unwrap_or(0);
    for migration in MIGRATIONS.iter().skip(from) {
        for &statement in *migration {
            run(sql, &Statement::new(statement, Vec::new()))?;
        }
    }
    if found < SCHEMA_VERSION {
        run(
            sql,
            &Statement::new(
                "INSERT INTO twiml_fallback_schema (component, version) VALUES ('inbox', ?1)
                 ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                vec![SqlValue::Integer(SCHEMA_VERSION)],
            ),
        )?;
    }
    Ok(())
}

/// How long a shell waits for a store before it answers Twilio anyway (and logs the entry as not
/// known to be kept, [`StoreError::TimedOut`]). A commit takes milliseconds; 2 s leaves Twilio's
/// 15 s budget room for a recovery's 10 s at most.
pub const STORE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

/// What storing an entry did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored.
    Stored,
    /// An entry with this SID was already there (Twilio, a recovery and the layer can all see one
    /// event): kept once.
    Duplicate,
    /// The inbox holds `max_entries` already: not stored.
    Full {
        /// The cap.
        max_entries: u64,
    },
}

/// The outcome as text, for a shell that carries it between processes (the Worker's Durable
/// Object answers it): `stored`, `duplicate`, `full MAX_ENTRIES`; [`FromStr`](std::str::FromStr)
/// reads it back.
impl fmt::Display for StoreOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreOutcome::Stored => f.write_str("stored"),
            StoreOutcome::Duplicate => f.write_str("duplicate"),
            StoreOutcome::Full { max_entries } => write!(f, "full {max_entries}"),
        }
    }
}

impl std::str::FromStr for StoreOutcome {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "stored" => Ok(StoreOutcome::Stored),
            "duplicate" => Ok(StoreOutcome::Duplicate),
            _ => text
                .strip_prefix("full ")
                .and_then(|max_entries| max_entries.parse().ok())
                .map(|max_entries| StoreOutcome::Full { max_entries })
                .ok_or_else(|| format!("not a store outcome: {text:?}")),
        }
    }
}

impl StoreOutcome {
    /// The line a shell writes about it: none for a stored entry (the request's record says it
    /// is kept), info for a duplicate, an error for a full inbox — a lost entry is never silent.
    pub fn line(self, entry: &Entry) -> Option<LogLine> {
        match self {
            StoreOutcome::Stored => None,
            StoreOutcome::Duplicate => Some(LogLine::new(
                LogLevel::Info,
                &serde_json::json!({
                    "event": "inbox-duplicate",
                    "sid": entry.sid,
                    "source": entry.source.as_str(),
                    "note": "already in the inbox: kept once",
                }),
            )),
            StoreOutcome::Full { max_entries } => Some(LogLine::new(
                LogLevel::Error,
                &serde_json::json!({
                    "event": "inbox-full",
                    "sid": entry.sid,
                    "channel": entry.channel.as_str(),
                    "from": entry.from,
                    "to": entry.to,
                    "max_entries": max_entries,
                    "note": "NOT KEPT (counted in the inbox's refused total): the inbox holds [inbox] max_entries entries; dismiss or export old ones, or raise the cap",
                }),
            )),
        }
    }
}

/// The line a shell writes when a write failed: the entry is lost, said loudly, with its SID.
pub fn write_failed_line(entry: &Entry, error: &StoreError) -> LogLine {
    LogLine::new(
        LogLevel::Error,
        &serde_json::json!({
            "event": "inbox-write-failed",
            "sid": entry.sid,
            "channel": entry.channel.as_str(),
            "from": entry.from,
            "to": entry.to,
            "error": error.to_string(),
            "note": if *error == StoreError::TimedOut {
                "MAYBE NOT KEPT: the caller got the fallback answer; look for this SID in the inbox"
            } else {
                "NOT KEPT: the caller got the fallback answer, but this request is not in the inbox"
            },
        }),
    )
}

/// The line a shell writes when purging old entries failed (they stay until the next purge).
pub fn purge_failed_line(error: &StoreError) -> LogLine {
    LogLine::new(
        LogLevel::Error,
        &serde_json::json!({
            "event": "inbox-purge-failed",
            "error": error.to_string(),
            "note": "entries past [inbox] retention_days stay until a purge succeeds (retried hourly)",
        }),
    )
}

fn entry_values(entry: &Entry) -> Vec<SqlValue> {
    vec![
        SqlValue::text(&entry.sid),
        SqlValue::text(entry.channel.as_str()),
        SqlValue::optional_text(entry.account_sid.as_deref()),
        SqlValue::optional_text(entry.from.as_deref()),
        SqlValue::optional_text(entry.to.as_deref()),
        SqlValue::optional_text(entry.body.as_deref()),
        SqlValue::Text(serde_json::to_string(&entry.media).unwrap_or_else(|_| "[]".to_owned())),
        entry
            .error_code
            .map_or(SqlValue::Null, |code| SqlValue::Integer(code.into())),
        SqlValue::optional_text(entry.error_url.as_deref()),
        SqlValue::optional_text(entry.cause.as_deref()),
        SqlValue::text(&entry.url),
        SqlValue::text(&entry.method),
        SqlValue::integer(entry.received_at_ms),
        SqlValue::text(entry.status.as_str()),
        SqlValue::Integer(entry.attempts.into()),
        SqlValue::optional_text(entry.last_error.as_deref()),
        SqlValue::text(entry.source.as_str()),
        SqlValue::Text(serde_json::to_string(&entry.params).unwrap_or_else(|_| "[]".to_owned())),
        SqlValue::Text(serde_json::to_string(&entry.replies).unwrap_or_else(|_| "[]".to_owned())),
        SqlValue::integer(entry.next_attempt_ms),
    ]
}

/// An entry as it travels to the process that stores it (the Worker to its Durable Object): its
/// stored row as a JSON array of the columns' values — strings, integers and nulls, in the
/// schema's column order ([`entry_from_wire`] reads it back by the rules a stored row is read by).
///
/// The row rather than the entry's own JSON: the process that stores it reads rows already, so it
/// needs no second parser for [`Entry`] (in the Worker's wasm, where every byte is uploaded).
/// `received_at` is not carried: it is `received_at_ms` written in RFC 3339, as in the store.
///
/// ```
/// use twiml_fallback::inbox::{Capture, Source, capture, entry_from_wire, entry_to_wire};
/// use twiml_fallback::webhook::Params;
///
/// let params = Params::from_form(b"MessageSid=SM1&From=%2B14155550100&To=%2B14155550199&Body=hi");
/// let Capture::Keep(entry) = capture(&params, "POST", "https://fallback.example.com/sms", 1_700_000_000_000, Source::Edge)
/// else { unreachable!() };
/// let wire = entry_to_wire(&entry);
/// assert!(wire.starts_with(r#"["SM1","messaging",null,"+14155550100","+14155550199","hi","[]",null,"#));
/// assert_eq!(entry_from_wire(&wire), Ok(*entry));
/// ```
pub fn entry_to_wire(entry: &Entry) -> String {
    let values = entry_values(entry)
        .into_iter()
        .map(|value| match value {
            SqlValue::Null => serde_json::Value::Null,
            SqlValue::Integer(number) => serde_json::Value::from(number),
            SqlValue::Text(text) => serde_json::Value::String(text),
        })
        .collect();
    serde_json::to_string(&serde_json::Value::Array(values)).unwrap_or_default()
}

/// The entry [`entry_to_wire`] wrote, or what is wrong with the text (`not a row: …`, or the
/// column that does not hold what the schema says).
pub fn entry_from_wire(wire: &str) -> Result<Entry, String> {
    let values = match serde_json::from_str(wire) {
        Ok(serde_json::Value::Array(values)) => values,
        Ok(_) => return Err("not a row: not a JSON array".to_owned()),
        Err(error) => return Err(format!("not a row: {error}")),
    };
    let row = values
        .into_iter()
        .map(|value| match value {
            serde_json::Value::Null => Ok(SqlValue::Null),
            serde_json::Value::String(text) => Ok(SqlValue::Text(text)),
            serde_json::Value::Number(number) => number
                .as_i64()
                .map(SqlValue::Integer)
                .ok_or_else(|| "not a row: a number that is not an integer".to_owned()),
            _ => Err("not a row: a value that is not text, an integer or null".to_owned()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if row.len() != COLUMNS {
        return Err(format!("not a row: {} values, not {COLUMNS}", row.len()));
    }
    entry_from_row(&row).map_err(|error| match error {
        StoreError::BadRow(column) => column,
        other => other.to_string(),
    })
}

/// How many columns an entry's row has ([`entry_columns!`]).
const COLUMNS: usize = 20;

pub(crate) fn entry_from_row(row: &[SqlValue]) -> Result<Entry, StoreError> {
    let bad = |what: &str| StoreError::BadRow(format!("column {what}"));
    let text = |index: usize, name: &str| match row.get(index) {
        Some(SqlValue::Text(text)) => Ok(text.clone()),
        _ => Err(bad(name)),
    };
    let optional = |index: usize, name: &str| match row.get(index) {
        Some(SqlValue::Text(text)) => Ok(Some(text.clone())),
        Some(SqlValue::Null) => Ok(None),
        _ => Err(bad(name)),
    };
    let integer = |index: usize, name: &str| match row.get(index) {
        Some(SqlValue::Integer(value)) => Ok(*value),
        _ => Err(bad(name)),
    };
    let channel: Channel = text(1, "channel")?.parse().map_err(|_| bad("channel"))?;
    let status: Status = text(13, "status")?.parse().map_err(|_| bad("status"))?;
    let source = match text(16, "source")?.as_str() {
        "edge" => Source::Edge,
        "layer" => Source::Layer,
        _ => return Err(bad("source")),
    };
    let received_at_ms = u64::try_from(integer(12, "received_at_ms")?).map_err(|_| bad("received_at_ms"))?;
    let error_code = match row.get(7) {
        Some(SqlValue::Integer(code)) => Some(u32::try_from(*code).map_err(|_| bad("error_code"))?),
        Some(SqlValue::Null) => None,
        _ => return Err(bad("error_code")),
    };
    Ok(Entry {
        sid: text(0, "sid")?,
        channel,
        account_sid: optional(2, "account_sid")?,
        from: optional(3, "from_number")?,
        to: optional(4, "to_number")?,
        body: optional(5, "body")?,
        media: serde_json::from_str(&text(6, "media")?).map_err(|_| bad("media"))?,
        error_code,
        error_url: optional(8, "error_url")?,
        cause: optional(9, "cause")?,
        url: text(10, "url")?,
        method: text(11, "method")?,
        received_at: rfc3339(received_at_ms),
        received_at_ms,
        status,
        attempts: u32::try_from(integer(14, "attempts")?).map_err(|_| bad("attempts"))?,
        last_error: optional(15, "last_error")?,
        source,
        params: serde_json::from_str(&text(17, "params")?).map_err(|_| bad("params"))?,
        replies: serde_json::from_str(&text(18, "replies")?).map_err(|_| bad("replies"))?,
        next_attempt_ms: u64::try_from(integer(19, "next_attempt_ms")?).map_err(|_| bad("next_attempt_ms"))?,
    })
}

/// Stores `entry` once: a second entry with its SID changes nothing; past `settings.max_entries`
/// nothing is stored, and the refusal is counted ([`refused`]). The outcome says which.
pub fn store<S: Sql>(sql: &mut S, entry: &Entry, settings: InboxSettings) -> Result<StoreOutcome, StoreError> {
    let mut params = entry_values(entry);
    params.push(SqlValue::integer(settings.max_entries));
    let inserted = run(
        sql,
        &Statement::new(
            concat!(
                "INSERT INTO inbox_entries (",
                entry_columns!(),
                ") SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20 \
             WHERE (SELECT stored FROM inbox_count WHERE id = 1) < ?21 \
             ON CONFLICT (sid) DO NOTHING RETURNING sid"
            ),
            params,
        ),
    )?;
    if !inserted.is_empty() {
        return Ok(StoreOutcome::Stored);
    }
    let existing = run(
        sql,
        &Statement::new(
            "SELECT 1 FROM inbox_entries WHERE sid = ?1",
            vec![SqlValue::text(&entry.sid)],
        ),
    )?;
    if !existing.is_empty() {
        return Ok(StoreOutcome::Duplicate);
    }
    run(
        sql,
        &Statement::new("UPDATE inbox_count SET refused = refused + 1 WHERE id = 1", Vec::new()),
    )?;
    Ok(StoreOutcome::Full {
        max_entries: settings.max_entries,
    })
}

/// How many entries were refused since the inbox was created because it was full.
pub fn refused<S: Sql>(sql: &mut S) -> Result<u64, StoreError> {
    let rows = run(
        sql,
        &Statement::new("SELECT refused FROM inbox_count WHERE id = 1", Vec::new()),
    )?;
    match rows.first().and_then(|row| row.first()) {
        Some(SqlValue::Integer(refused)) => Ok(u64::try_from(*refused).unwrap_or(0)),
        _ => Err(StoreError::BadRow("inbox_count".to_owned())),
    }
}

/// The entry with this SID.
pub fn get<S: Sql>(sql: &mut S, sid: &str) -> Result<Option<Entry>, StoreError> {
    const GET: &str = concat!("SELECT ", entry_columns!(), " FROM inbox_entries WHERE sid = ?1");
    let rows = run(sql, &Statement::new(GET, vec![SqlValue::text(sid)]))?;
    rows.first().map(|row| entry_from_row(row)).transpose()
}

/// How many entries are stored.
pub fn count<S: Sql>(sql: &mut S) -> Result<u64, StoreError> {
    let rows = run(
        sql,
        &Statement::new("SELECT stored FROM inbox_count WHERE id = 1", Vec::new()),
    )?;
    match rows.first().and_then(|row| row.first()) {
        Some(SqlValue::Integer(stored)) => Ok(u64::try_from(*stored).unwrap_or(0)),
        _ => Err(StoreError::BadRow("inbox_count".to_owned())),
    }
}

/// The most entries one page lists.
pub const MAX_PAGE: u32 = 1000;

/// A page's size when the query names none.
pub const DEFAULT_PAGE: u32 = 50;

/// Which entries to list: newest first, optionally by status and channel, a page at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    /// Only entries in this status.
    pub status: Option<Status>,
    /// Only entries of this channel.
    pub channel: Option<Channel>,
    /// At most this many (1–[`MAX_PAGE`]).
    pub limit: u32,
    /// Continue after this cursor (a page's `next`).
    pub cursor: Option<Cursor>,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            status: None,
            channel: None,
            limit: DEFAULT_PAGE,
            cursor: None,
        }
    }
}

/// Where a page ended: the last entry's time and SID (entries are ordered by both, newest first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    received_at_ms: u64,
    sid: String,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.received_at_ms, self.sid)
    }
}

impl std::str::FromStr for Cursor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("cursor {text:?} is not one this endpoint gave (use a page's \"next\")");
        let (time, sid) = text.split_once('.').ok_or_else(invalid)?;
        let received_at_ms = time.parse().map_err(|_| invalid())?;
        if sid.is_empty() {
            return Err(invalid());
        }
        Ok(Cursor {
            received_at_ms,
            sid: sid.to_owned(),
        })
    }
}

impl ListQuery {
    /// The query from a URL's query string (`status=&channel=&limit=&cursor=`); an unknown key or
    /// a bad value is an error that says which.
    pub fn from_query(query: Option<&str>) -> Result<Self, String> {
        let mut list = ListQuery::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if value.is_empty() {
                continue;
            }
            match key.as_ref() {
                "status" => list.status = Some(value.parse()?),
                "channel" => {
                    list.channel = Some(
                        value
                            .parse()
                            .map_err(|_| format!("unknown channel {value:?} (messaging or voice)"))?,
                    );
                }
                "limit" => {
                    list.limit = value
                        .parse()
                        .ok()
                        .filter(|limit| (1..=MAX_PAGE).contains(limit))
                        .ok_or_else(|| format!("limit {value:?} must be a whole number from 1 to {MAX_PAGE}"))?;
                }
                "cursor" => list.cursor = Some(value.parse()?),
                other => {
                    return Err(format!("unknown parameter {other:?} (status, channel, limit, cursor)"));
                }
            }
        }
        Ok(list)
    }
}

/// One page of entries, newest first, and where the next begins (`null` on the last).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// The entries.
    pub entries: Vec<Entry>,
    /// The cursor for the next page.
    pub next: Option<String>,
}

/// The entries `query` asks for, a page at a time.
pub fn list<S: Sql>(sql: &mut S, query: &ListQuery) -> Result<Page, StoreError> {
    let (cursor_ms, cursor_sid) = match &query.cursor {
        Some(cursor) => (SqlValue::integer(cursor.received_at_ms), SqlValue::text(&cursor.sid)),
        None => (SqlValue::Null, SqlValue::Null),
    };
    let limit = query.limit.clamp(1, MAX_PAGE);
    let rows = run(
        sql,
        &Statement::new(
            concat!(
                "SELECT ",
                entry_columns!(),
                " FROM inbox_entries \
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR channel = ?2) \
             AND (?3 IS NULL OR received_at_ms < ?3 OR (received_at_ms = ?3 AND sid < ?4)) \
             ORDER BY received_at_ms DESC, sid DESC LIMIT ?5"
            ),
            vec![
                query
                    .status
                    .map_or(SqlValue::Null, |status| SqlValue::text(status.as_str())),
                query
                    .channel
                    .map_or(SqlValue::Null, |channel| SqlValue::text(channel.as_str())),
                cursor_ms,
                cursor_sid,
                SqlValue::Integer(i64::from(limit) + 1),
            ],
        ),
    )?;
    let mut entries = rows
        .iter()
        .map(|row| entry_from_row(row))
        .collect::<Result<Vec<_>, _>>()?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let next = more.then(|| entries.last()).flatten().map(|last| {
        Cursor {
            received_at_ms: last.received_at_ms,
            sid: last.sid.clone(),
        }
        .to_string()
    });
    Ok(Page { entries, next })
}

/// Dismisses the entry with this SID ([`Entry::dismissed`]): the dismissed entry, or `None` when
/// there is none. Dismissing twice changes nothing more.
pub fn dismiss<S: Sql>(sql: &mut S, sid: &str) -> Result<Option<Entry>, StoreError> {
    let Some(entry) = get(sql, sid)? else {
        return Ok(None);
    };
    let dismissed = entry.dismissed();
    run(
        sql,
        &Statement::new(
            "UPDATE inbox_entries SET status = ?2, body = NULL, media = ?3, params = ?4, url = ?5, replies = ?6 WHERE sid = ?1",
            vec![
                SqlValue::text(&dismissed.sid),
                SqlValue::text(dismissed.status.as_str()),
                SqlValue::Text(serde_json::to_string(&dismissed.media).unwrap_or_else(|_| "[]".to_owned())),
                SqlValue::Text(serde_json::to_string(&dismissed.params).unwrap_or_else(|_| "[]".to_owned())),
                SqlValue::text(&dismissed.url),
                SqlValue::Text(serde_json::to_string(&dismissed.replies).unwrap_or_else(|_| "[]".to_owned())),
            ],
        ),
    )?;
    Ok(Some(dismissed))
}

const DAY_MS: u64 = 86_400_000;

/// Deletes the entries received more than `settings.retention_days` before `now_ms`; how many.
pub fn purge<S: Sql>(sql: &mut S, now_ms: u64, settings: InboxSettings) -> Result<u64, StoreError> {
    let cutoff = SqlValue::integer(now_ms.saturating_sub(u64::from(settings.retention_days) * DAY_MS));
    let rows = run(
        sql,
        &Statement::new(
            "SELECT count(*) FROM inbox_entries WHERE received_at_ms < ?1",
            vec![cutoff.clone()],
        ),
    )?;
    let old = match rows.first().and_then(|row| row.first()) {
        Some(SqlValue::Integer(old)) => u64::try_from(*old).unwrap_or(0),
        _ => 0,
    };
    if old > 0 {
        run(
            sql,
            &Statement::new("DELETE FROM inbox_entries WHERE received_at_ms < ?1", vec![cutoff]),
        )?;
    }
    // Resolved incidents are kept as long as entries.
    crate::incident::purge(sql, now_ms.saturating_sub(u64::from(settings.retention_days) * DAY_MS))?;
    Ok(old)
}

/// When a shell purges old entries: at start, then at most once an hour (checked as it writes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeSchedule {
    last_ms: Option<u64>,
}

/// How often old entries are purged.
pub const PURGE_EVERY_MS: u64 = 3_600_000;

impl PurgeSchedule {
    /// Whether a purge is due at `now_ms`; when it is, it counts as done.
    pub fn due(&mut self, now_ms: u64) -> bool {
        let due = self
            .last_ms
            .is_none_or(|last| now_ms.saturating_sub(last) >= PURGE_EVERY_MS);
        if due {
            self.last_ms = Some(now_ms);
        }
        due
    }

    /// The line a shell writes after a purge that deleted something.
    pub fn purged_line(purged: u64, settings: InboxSettings) -> Option<LogLine> {
        (purged > 0).then(|| {
            LogLine::new(
                LogLevel::Info,
                &serde_json::json!({
                    "event": "inbox-purged",
                    "purged": purged,
                    "retention_days": settings.retention_days,
                }),
            )
        })
    }
}
