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
