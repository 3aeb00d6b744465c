//! `serve`'s outage inbox: the core's SQLite schema and statements, run by `rusqlite` on one
//! writer thread with group commit.
//!
//! Every operation — storing an entry before its answer goes out, an admin request — is a job
//! sent to the writer thread. The writer takes every job that is waiting, runs them in one
//! transaction (each inside its own savepoint, so one failing job does not undo the others),
//! commits once — WAL with `synchronous = FULL`: durable when the commit returns — and only then
//! tells each job's caller its result. Requests that arrive while a commit's fsync runs share
//! the next one, so throughput grows with concurrency instead of being one fsync per request.
//!
//! Old entries are purged at start and then hourly ([`PurgeSchedule`]), on the same thread.
//! Which statements run, and what their results mean, is the core's (`twiml_fallback::inbox`);
//! this file owns the connection, the transaction around a batch, and the thread.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags};
use twiml_fallback::config::InboxSettings;
use twiml_fallback::edge::LogLine;
use twiml_fallback::inbox::{self, Entry, PurgeSchedule, Sql, SqlValue, Statement, StoreError, StoreOutcome};

/// The most jobs one transaction takes; more wait for the next.
const MAX_BATCH: usize = 512;

/// How long a statement waits for a lock another process holds (a second `serve` on the same file).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The file name under the data directory.
const FILE_NAME: &str = "inbox.sqlite3";

/// The inbox's default path: `twiml-fallback/inbox.sqlite3` under the platform's data directory
/// (`$XDG_DATA_HOME` or `~/.local/share` on Linux).
pub(crate) fn default_path() -> Option<PathBuf> {
    dirs::data_dir().map(|dir| dir.join("twiml-fallback").join(FILE_NAME))
}

/// The core's [`Sql`] over a `rusqlite` connection.
pub(crate) struct Driver<'c>(&'c Connection);

impl Sql for Driver<'_> {
    type Error = rusqlite::Error;

    fn run(&mut self, statement: &Statement) -> Result<Vec<Vec<SqlValue>>, rusqlite::Error> {
        let mut prepared = self.0.prepare_cached(statement.sql)?;
        let params = statement.params.iter().map(|value| match value {
            SqlValue::Null => Value::Null,
            SqlValue::Integer(number) => Value::Integer(*number),
            SqlValue::Text(text) => Value::Text(text.clone()),
        });
        let columns = prepared.column_count();
        let mut rows = prepared.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for index in 0..columns {
                values.push(match row.get_ref(index)? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(number) => SqlValue::Integer(number),
                    // The schema stores no floats; a whole one reads as the integer it is.
                    ValueRef::Real(number) if number.fract() == 0.0 && number.abs() < 9.0e15 => {
                        SqlValue::Integer(number as i64)
                    }
                    ValueRef::Real(number) => SqlValue::Text(number.to_string()),
                    ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
                        SqlValue::Text(String::from_utf8_lossy(bytes).into_owned())
                    }
                });
            }
            out.push(values);
        }
        Ok(out)
    }
}

/// A job for the writer: its work runs inside the batch's transaction; its caller hears the
/// result once the batch is committed (or that the commit failed).
trait Job: Send {
    fn run(&mut self, sql: &mut Driver<'_>) -> bool;
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
}

struct Pending<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&mut Driver<'_>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, sql: &mut Driver<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(sql);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), StoreError>) {
        let result = match (committed, self.result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::Driver("the job did not run".to_owned())),
            (Err(error), _) => Err(error),
        };
        let _ = self.reply.send(result);
    }
}

/// What an inbox holds when it is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Entries stored.
    pub(crate) stored: u64,
    /// Entries refused so far because it was full.
    pub(crate) refused: u64,
}

/// The inbox as `serve` holds it: a handle to the writer thread.
pub(crate) struct Inbox {
    /// The lock that keeps a second `serve` off this inbox (held until `serve` stops): two
    /// processes replaying one inbox could both deliver an entry and text its sender twice.
    _lock: std::fs::File,
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    writer: Option<JoinHandle<()>>,
    failing: AtomicBool,
    path: PathBuf,
    settings: InboxSettings,
}

fn driver_error(error: rusqlite::Error) -> StoreError {
    StoreError::Driver(error.to_string())
}

/// Takes the inbox's lock file (`PATH.lock`, next to it) for this process, or says that another
/// `serve` holds it. The operating system releases it when the process ends, however it ends.
fn lock(path: &Path) -> Result<std::fs::File, String> {
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|error| format!("cannot create {}: {error}", parent.display()))?;
    }
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|error| format!("cannot open {}: {error}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "another twiml-fallback serve uses this inbox (it holds {}): one process per inbox, or two could replay the same message",
            lock_path.display()
        )),
        Err(std::fs::TryLockError::Error(error)) => Err(format!("cannot lock {}: {error}", lock_path.display())),
    }
}

/// Opens (creating it and its folder when missing) and migrates the database at `path`: WAL,
/// `synchronous = FULL`. A file that is not a database, or that cannot be written, is an error
/// that says so.
fn open(path: &Path) -> Result<Connection, String> {
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|error| format!("cannot create {}: {error}", parent.display()))?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(|error| error.to_string())?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(|error| error.to_string())?;
    let mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|error| error.to_string())?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("cannot use write-ahead logging (journal mode is {mode})"));
    }
    connection
        .execute_batch("PRAGMA synchronous = FULL;")
        .map_err(|error| error.to_string())?;
    // SQLite opens a file it may not write read-only, without an error: refuse it here, where
    // the operator is looking, rather than lose every request to a failing write later.
    if connection.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) {
        return Err("the file cannot be written (check its permissions and its folder's)".to_owned());
    }
    let transaction = connection.unchecked_transaction().map_err(|error| error.to_string())?;
    inbox::migrate(&mut Driver(&transaction)).map_err(|error| error.to_string())?;
    transaction.commit().map_err(|error| error.to_string())?;
    Ok(connection)
}

impl Inbox {
    /// Opens the inbox at `path` and starts its writer; `log` writes the core's lines (purges).
    pub(crate) fn open(
        path: &Path,
        settings: InboxSettings,
        now_ms: fn() -> u64,
        log: impl Fn(&LogLine) + Send + 'static,
    ) -> Result<(Self, Counts), String> {
        let lock = lock(path)?;
        let connection = open(path)?;
        let counts = Counts {
            stored: inbox::store::count(&mut Driver(&connection)).map_err(|error| error.to_string())?,
            refused: inbox::store::refused(&mut Driver(&connection)).map_err(|error| error.to_string())?,
        };
        let (jobs, receive) = mpsc::channel::<Box<dyn Job>>();
        let writer = std::thread::Builder::new()
            .name("inbox-writer".to_owned())
            .spawn(move || write_loop(&connection, &receive, settings, now_ms, &log))
            .map_err(|error| format!("cannot start the inbox writer: {error}"))?;
        Ok((
            Self {
                _lock: lock,
                jobs: Some(jobs),
                writer: Some(writer),
                failing: AtomicBool::new(false),
                path: path.to_owned(),
                settings,
            },
            counts,
        ))
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Its retention and cap.
    pub(crate) fn settings(&self) -> InboxSettings {
        self.settings
    }

    /// Whether the last write failed (and none succeeded since).
    pub(crate) fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Runs `work` in the writer's next transaction; its result once that is committed.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Driver<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Box::new(Pending {
            work: Some(work),
            result: None,
            reply,
        });
        let sent = self.jobs.as_ref().is_some_and(|jobs| jobs.send(job).is_ok());
        if sent {
            answer
                .await
                .unwrap_or_else(|_| Err(StoreError::Driver("the inbox writer stopped".to_owned())))
        } else {
            Err(StoreError::Driver("the inbox writer stopped".to_owned()))
        }
    }

    /// Stores `entry` within the core's `STORE_DEADLINE`: what the endpoint does before it
    /// answers. Its result sets whether the inbox is failing — only a store does: a read that
    /// succeeds says nothing about whether writes do.
    pub(crate) async fn store(&self, entry: Entry) -> Result<StoreOutcome, StoreError> {
        let settings = self.settings;
        let stored = tokio::time::timeout(
            inbox::STORE_DEADLINE,
            self.run(move |sql| inbox::store(sql, &entry, settings)),
        )
        .await
        .unwrap_or(Err(StoreError::TimedOut));
        self.failing.store(stored.is_err(), Ordering::Relaxed);
        stored
    }
}

impl Drop for Inbox {
    /// Lets the writer finish what it holds, then joins it.
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn write_loop(
    connection: &Connection,
    jobs: &mpsc::Receiver<Box<dyn Job>>,
    settings: InboxSettings,
    now_ms: fn() -> u64,
    log: &dyn Fn(&LogLine),
) {
    let mut schedule = PurgeSchedule::default();
    loop {
        if schedule.due(now_ms()) {
            purge(connection, settings, now_ms(), log);
        }
        let first = match jobs.recv_timeout(Duration::from_millis(inbox::store::PURGE_EVERY_MS)) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = run_batch(connection, &mut batch);
        for job in batch {
            job.finish(committed.clone());
        }
    }
}

/// Runs every job of the batch in one transaction, each in its own savepoint (a job whose work
/// failed is rolled back alone), and commits once.
fn run_batch(connection: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    connection.execute_batch("BEGIN IMMEDIATE").map_err(driver_error)?;
    for job in batch.iter_mut() {
        let savepoint = connection.execute_batch("SAVEPOINT job");
        let ok = savepoint.is_ok() && job.run(&mut Driver(connection));
        let ended = if ok {
            connection.execute_batch("RELEASE job")
        } else {
            connection.execute_batch("ROLLBACK TO job; RELEASE job")
        };
        if let Err(error) = ended {
            let _ = connection.execute_batch("ROLLBACK");
            return Err(driver_error(error));
        }
    }
    match connection.execute_batch("COMMIT") {
        Ok(()) => Ok(()),
        Err(error) => {
            let _ = connection.execute_batch("ROLLBACK");
            Err(driver_error(error))
        }
    }
}

fn purge(connection: &Connection, settings: InboxSettings, now_ms: u64, log: &dyn Fn(&LogLine)) {
    let purged = connection
        .unchecked_transaction()
        .map_err(driver_error)
        .and_then(|transaction| {
            let purged = inbox::purge(&mut Driver(&transaction), now_ms, settings)?;
            transaction.commit().map_err(driver_error)?;
            Ok(purged)
        });
    match purged {
        Ok(purged) => {
            if let Some(line) = PurgeSchedule::purged_line(purged, settings) {
                log(&line);
            }
        }
        Err(error) => log(&inbox::store::purge_failed_line(&error)),
    }
}

#[cfg(test)]
mod tests;
