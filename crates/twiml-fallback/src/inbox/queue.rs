//! The statements replay reads and writes the inbox with: each called number's queue in arrival
//! order, an entry's replay state, the missed calls a `[replay] missed_call_sms` goes to.
//!
//! What the rows mean — which entry is due, what happens next — is [`crate::replay`]'s; these
//! only fetch and write them, through the same [`Sql`] driver as every other inbox statement.

use super::Entry;
use super::store::{Sql, SqlValue, Statement, StoreError, entry_columns, entry_from_row, run};

/// Writes an entry's replay state (status, attempts, last error, replies, next attempt): `false`
/// when the entry is gone or was dismissed meanwhile (then nothing is written, and the replay
/// stops: an operator's dismissal wins).
pub fn save<S: Sql>(sql: &mut S, entry: &Entry) -> Result<bool, StoreError> {
    let rows = run(
        sql,
        &Statement::new(
            "UPDATE inbox_entries SET status = ?2, attempts = ?3, last_error = ?4, replies = ?5, next_attempt_ms = ?6 \
             WHERE sid = ?1 AND status != 'dismissed' RETURNING sid",
            vec![
                SqlValue::text(&entry.sid),
                SqlValue::text(entry.status.as_str()),
                SqlValue::Integer(entry.attempts.into()),
                entry.last_error.as_deref().map_or(SqlValue::Null, SqlValue::text),
                SqlValue::Text(serde_json::to_string(&entry.replies).unwrap_or_else(|_| "[]".to_owned())),
                SqlValue::integer(entry.next_attempt_ms),
            ],
        ),
    )?;
    Ok(!rows.is_empty())
}

/// The called numbers (`To`) with entries waiting for replay (`pending`) or interrupted in it
/// (`replaying`); `None` stands for entries without a `To`.
pub fn numbers<S: Sql>(sql: &mut S) -> Result<Vec<Option<String>>, StoreError> {
    let rows = run(
        sql,
        &Statement::new(
            "SELECT DISTINCT to_number FROM inbox_entries WHERE status IN ('pending', 'replaying') ORDER BY to_number",
            Vec::new(),
        ),
    )?;
    Ok(rows
        .into_iter()
        .map(|row| match row.into_iter().next() {
            Some(SqlValue::Text(number)) => Some(number),
            _ => None,
        })
        .collect())
}

/// A number's entries interrupted in replay (`replaying` when no replay runs: a process died
/// mid-run), oldest first: each must be settled before the queue goes on.
pub fn interrupted<S: Sql>(sql: &mut S, to: Option<&str>) -> Result<Vec<Entry>, StoreError> {
    const INTERRUPTED: &str = concat!(
        "SELECT ",
        entry_columns!(),
        " FROM inbox_entries WHERE status = 'replaying' AND to_number IS ?1 ORDER BY received_at_ms, sid LIMIT 100"
    );
    let rows = run(
        sql,
        &Statement::new(INTERRUPTED, vec![to.map_or(SqlValue::Null, SqlValue::text)]),
    )?;
    rows.iter().map(|row| entry_from_row(row)).collect()
}

/// A number's oldest pending entry after `after` (the time and SID of the last one handed out).
pub fn pending_after<S: Sql>(
    sql: &mut S,
    to: Option<&str>,
    after: Option<&(u64, String)>,
) -> Result<Option<Entry>, StoreError> {
    const PENDING: &str = concat!(
        "SELECT ",
        entry_columns!(),
        " FROM inbox_entries WHERE status = 'pending' AND to_number IS ?1 \
         AND (?2 IS NULL OR received_at_ms > ?2 OR (received_at_ms = ?2 AND sid > ?3)) \
         ORDER BY received_at_ms, sid LIMIT 1"
    );
    let (after_ms, after_sid) = match after {
        Some((ms, sid)) => (SqlValue::integer(*ms), SqlValue::text(sid)),
        None => (SqlValue::Null, SqlValue::Null),
    };
    let rows = run(
        sql,
        &Statement::new(
            PENDING,
            vec![to.map_or(SqlValue::Null, SqlValue::text), after_ms, after_sid],
        ),
    )?;
    rows.first().map(|row| entry_from_row(row)).transpose()
}

/// Replay's hold on sending: while the Messages API fails, no automatic pass runs before
/// `until_ms`; `failures` in a row set how long the next hold is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hold {
    /// No automatic pass before this time (milliseconds since the Unix epoch; 0: none).
    pub until_ms: u64,
    /// Passes in a row that found the Messages API failing.
    pub failures: u32,
    /// What the last of them found.
    pub reason: Option<String>,
}

/// The hold as stored.
pub fn hold<S: Sql>(sql: &mut S) -> Result<Hold, StoreError> {
    let rows = run(
        sql,
        &Statement::new(
            "SELECT until_ms, failures, reason FROM replay_hold WHERE id = 1",
            Vec::new(),
        ),
    )?;
    match rows.first().map(Vec::as_slice) {
        Some([SqlValue::Integer(until), SqlValue::Integer(failures), reason]) => Ok(Hold {
            until_ms: u64::try_from(*until).unwrap_or(0),
            failures: u32::try_from(*failures).unwrap_or(0),
            reason: match reason {
                SqlValue::Text(reason) => Some(reason.clone()),
                _ => None,
            },
        }),
        _ => Err(StoreError::BadRow("replay_hold".to_owned())),
    }
}

/// Stores the hold.
pub fn set_hold<S: Sql>(sql: &mut S, hold: &Hold) -> Result<(), StoreError> {
    run(
        sql,
        &Statement::new(
            "UPDATE replay_hold SET until_ms = ?1, failures = ?2, reason = ?3 WHERE id = 1",
            vec![
                SqlValue::integer(hold.until_ms),
                SqlValue::Integer(hold.failures.into()),
                hold.reason.as_deref().map_or(SqlValue::Null, SqlValue::text),
            ],
        ),
    )?;
    Ok(())
}

/// The most missed calls one pass texts.
pub const MISSED_CALLS_PER_PASS: u32 = 1000;

/// Missed calls received at or after `since_ms` that have no reply yet, oldest first.
pub fn unanswered_calls<S: Sql>(sql: &mut S, since_ms: u64) -> Result<Vec<Entry>, StoreError> {
    const CALLS: &str = concat!(
        "SELECT ",
        entry_columns!(),
        " FROM inbox_entries WHERE status = 'missed' AND channel = 'voice' AND replies = '[]' \
         AND received_at_ms >= ?1 ORDER BY received_at_ms, sid LIMIT ?2"
    );
    let rows = run(
        sql,
        &Statement::new(
            CALLS,
            vec![
                SqlValue::integer(since_ms),
                SqlValue::Integer(MISSED_CALLS_PER_PASS.into()),
            ],
        ),
    )?;
    rows.iter().map(|row| entry_from_row(row)).collect()
}

/// The callers (`From`, `To`) already texted (`[replay] missed_call_sms`) for a call received at
/// or after `since_ms`.
pub fn texted_callers<S: Sql>(sql: &mut S, since_ms: u64) -> Result<Vec<(String, String)>, StoreError> {
    let rows = run(
        sql,
        &Statement::new(
            "SELECT DISTINCT from_number, to_number FROM inbox_entries WHERE channel = 'voice' AND replies != '[]' \
             AND received_at_ms >= ?1 AND from_number IS NOT NULL AND to_number IS NOT NULL",
            vec![SqlValue::integer(since_ms)],
        ),
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|row| match row.as_slice() {
            [SqlValue::Text(from), SqlValue::Text(to)] => Some((from.clone(), to.clone())),
            _ => None,
        })
        .collect())
}

/// The most replayed messages one pass reads to tell whether an app was back.
pub const REPLAYED_PER_PASS: u32 = 1000;

/// The `ErrorUrl` and time of the newest messages received at or after `since_ms` that the app
/// has answered (`replayed`: on replay, or during the fallback request's recovery).
pub fn answered_since<S: Sql>(sql: &mut S, since_ms: u64) -> Result<Vec<(String, u64)>, StoreError> {
    let rows = run(
        sql,
        &Statement::new(
            "SELECT error_url, received_at_ms FROM inbox_entries WHERE status = 'replayed' AND channel = 'messaging' \
             AND error_url IS NOT NULL AND received_at_ms >= ?1 ORDER BY received_at_ms DESC LIMIT ?2",
            vec![SqlValue::integer(since_ms), SqlValue::Integer(REPLAYED_PER_PASS.into())],
        ),
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|row| match row.as_slice() {
            [SqlValue::Text(url), SqlValue::Integer(at)] => Some((url.clone(), u64::try_from(*at).unwrap_or(0))),
            _ => None,
        })
        .collect())
}
