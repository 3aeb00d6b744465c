//! Incidents and their outbox in SQLite: the rows, and every statement (schema v4 of the one
//! database the inbox lives in; the tables are created by [`crate::inbox::migrate`]).

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Kind, Notice};
use crate::edge::{clip, rfc3339};
use crate::inbox::store::run;
use crate::inbox::{Sql, SqlValue, Statement, StoreError};
use crate::webhook::Channel;

/// The most distinct numbers an incident lists (it still counts every notice).
pub const MAX_NUMBERS: usize = 100;

/// The most distinct error codes an incident counts apart (the rest count as `other`).
pub const MAX_CODES: usize = 50;

/// The longest quoted body, in characters (with `include_bodies`).
const MAX_BODY_CHARS: usize = 160;

/// The statements of schema v4: incidents and their notifications.
pub(crate) const MIGRATION: &[&str] = &[
    "CREATE TABLE incidents (
        id TEXT PRIMARY KEY NOT NULL,
        origin TEXT NOT NULL,
        status TEXT NOT NULL,
        opened_at_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        resolved_at_ms INTEGER,
        resolved_by TEXT,
        notices INTEGER NOT NULL,
        messages INTEGER NOT NULL,
        calls INTEGER NOT NULL,
        kept INTEGER NOT NULL,
        error_codes TEXT NOT NULL,
        numbers TEXT NOT NULL,
        account_sid TEXT,
        voice INTEGER NOT NULL,
        sample_body TEXT,
        remind_at_ms INTEGER
    )",
    // At most one open incident per origin: the database says so, not only the code.
    "CREATE UNIQUE INDEX incidents_open_by_origin ON incidents (origin) WHERE status = 'open'",
    "CREATE INDEX incidents_by_time ON incidents (opened_at_ms DESC)",
    "CREATE INDEX incidents_by_origin ON incidents (origin, resolved_at_ms)",
    "CREATE TABLE incident_deliveries (
        incident_id TEXT NOT NULL,
        sink TEXT NOT NULL,
        kind TEXT NOT NULL,
        seq INTEGER NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_ms INTEGER NOT NULL,
        last_error TEXT,
        done_at_ms INTEGER,
        PRIMARY KEY (incident_id, sink, seq)
    )",
    "CREATE INDEX incident_deliveries_due ON incident_deliveries (status, next_attempt_ms)",
];

/// Whether an incident is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    /// The primary is failing.
    Open,
    /// It is over.
    Resolved,
}

impl IncidentStatus {
    fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Resolved => "resolved",
        }
    }
}

/// What resolved an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResolvedBy {
    /// A recovery: the primary answered a re-request the endpoint relayed.
    Recovery,
    /// Replay delivered a kept message to it.
    Replay,
    /// `resolve_after_seconds` passed with no fallback notice.
    Quiet,
}

impl ResolvedBy {
    /// `recovery`, `replay` or `quiet`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResolvedBy::Recovery => "recovery",
            ResolvedBy::Replay => "replay",
            ResolvedBy::Quiet => "quiet",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "recovery" => Some(ResolvedBy::Recovery),
            "replay" => Some(ResolvedBy::Replay),
            "quiet" => Some(ResolvedBy::Quiet),
            _ => None,
        }
    }
}

/// One outage of one primary, with what it has counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    /// `twf-` and 16 hex digits: PagerDuty's `dedup_key`, the admin API's id.
    pub id: String,
    /// The failing primary's origin.
    pub origin: String,
    /// Open or resolved.
    pub status: IncidentStatus,
    /// The first notice.
    pub opened_at_ms: u64,
    /// The last notice.
    pub last_seen_ms: u64,
    /// When it resolved.
    pub resolved_at_ms: Option<u64>,
    /// What resolved it.
    pub resolved_by: Option<ResolvedBy>,
    /// Fallback notices counted.
    pub notices: u64,
    /// Of which messages…
    pub messages: u64,
    /// … and calls.
    pub calls: u64,
    /// Requests the inbox kept.
    pub kept: u64,
    /// Notices per `ErrorCode`.
    pub error_codes: BTreeMap<String, u64>,
    /// The called numbers (at most [`MAX_NUMBERS`]).
    pub numbers: Vec<String>,
    /// The account the first notice named.
    pub account_sid: Option<String>,
    /// Whether any notice was a call (PagerDuty severity `critical`).
    pub voice: bool,
    /// The first kept message's body (clipped), with `include_bodies` only.
    pub sample_body: Option<String>,
    /// When the next reminder is due.
    pub remind_at_ms: Option<u64>,
}

impl Incident {
    /// A new incident for `notice`'s origin; `nonce` (how many incidents the store holds) keeps
    /// two openings in one millisecond apart.
    pub(crate) fn opened_by(notice: &Notice, now_ms: u64, nonce: u64) -> Self {
        let at = notice.at_ms.max(1).min(now_ms.max(notice.at_ms));
        let digest = Sha256::digest(format!("{}\n{at}\n{now_ms}\n{nonce}", notice.origin).as_bytes());
        let id = format!(
            "twf-{}",
            digest
                .iter()
                .take(8)
                .map(|byte| format!("{byte:02x}"))
                .collect::<String>()
        );
        Incident {
            id,
            origin: notice.origin.clone(),
            status: IncidentStatus::Open,
            opened_at_ms: at,
            last_seen_ms: at,
            resolved_at_ms: None,
            resolved_by: None,
            notices: 0,
            messages: 0,
            calls: 0,
            kept: 0,
            error_codes: BTreeMap::new(),
            numbers: Vec::new(),
            account_sid: None,
            voice: false,
            sample_body: None,
            remind_at_ms: None,
        }
    }

    /// The stand-in incident of `alerts test`.
    pub(crate) fn test(now_ms: u64, account_sid: Option<&str>) -> Self {
        let mut incident = Incident::opened_by(&Notice::from_error_url(None, "", now_ms), now_ms, 0);
        incident.id = "test".to_owned();
        incident.origin = "https://app.example.com".to_owned();
        incident.account_sid = account_sid.map(str::to_owned);
        incident
    }

    /// Counts one notice.
    pub(crate) fn add(&mut self, notice: &Notice, include_bodies: bool) {
        self.notices = self.notices.saturating_add(1);
        self.last_seen_ms = self.last_seen_ms.max(notice.at_ms);
        match notice.channel {
            Some(Channel::Messaging) => self.messages = self.messages.saturating_add(1),
            Some(Channel::Voice) => {
                self.calls = self.calls.saturating_add(1);
                self.voice = true;
            }
            None => {}
        }
        if notice.kept {
            self.kept = self.kept.saturating_add(1);
        }
        let code = if self.error_codes.contains_key(&notice.error_code) || self.error_codes.len() < MAX_CODES {
            notice.error_code.clone()
        } else {
            "other".to_owned()
        };
        *self.error_codes.entry(code).or_insert(0) += 1;
        if let Some(to) = &notice.to {
            if self.numbers.len() < MAX_NUMBERS && !self.numbers.contains(to) {
                self.numbers.push(to.clone());
            }
        }
        if self.account_sid.is_none() {
            self.account_sid.clone_from(&notice.account_sid);
        }
        if include_bodies && self.sample_body.is_none() {
            self.sample_body = notice
                .body
                .as_deref()
                .map(|body| match body.char_indices().nth(MAX_BODY_CHARS) {
                    Some((end, _)) => format!("{}…", &body[..end]),
                    None => body.to_owned(),
                });
        }
    }

    /// How long it lasted (until `now_ms` while open).
    pub fn duration_ms(&self, now_ms: u64) -> u64 {
        self.resolved_at_ms.unwrap_or(now_ms).saturating_sub(self.opened_at_ms)
    }

    /// The error codes, most frequent first.
    pub fn codes_by_count(&self) -> Vec<(&str, u64)> {
        let mut codes: Vec<(&str, u64)> = self.error_codes.iter().map(|(code, n)| (code.as_str(), *n)).collect();
        codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        codes
    }

    /// Its JSON, as the admin API lists it, with its notifications.
    pub fn to_json(&self, deliveries: &[Delivery], now_ms: u64) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "origin": self.origin,
            "status": self.status,
            "opened_at": rfc3339(self.opened_at_ms),
            "last_seen_at": rfc3339(self.last_seen_ms),
            "resolved_at": self.resolved_at_ms.map(rfc3339),
            "resolved_by": self.resolved_by,
            "duration_seconds": self.duration_ms(now_ms) / 1000,
            "notices": self.notices,
            "error_codes": self.error_codes,
            "messages": self.messages,
            "calls": self.calls,
            "kept": self.kept,
            "numbers": self.numbers,
            "severity": if self.voice { "critical" } else { "error" },
            "deliveries": deliveries.iter().map(Delivery::to_json).collect::<Vec<_>>(),
        })
    }
}

/// Where a notification stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its time (or for an earlier notification to the same sink).
    Pending,
    /// Claimed by a shell, being sent.
    Sending,
    /// The sink accepted it.
    Delivered,
    /// Given up.
    Failed,
}

impl DeliveryStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "sending" => Some(DeliveryStatus::Sending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// One planned notification of an incident, to one sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The incident.
    pub incident_id: String,
    /// The sink ([`super::Sink::id`]).
    pub sink: String,
    /// Which notification.
    pub kind: Kind,
    /// Its place in the incident's outbox (a sink's notifications go out in this order).
    pub seq: i64,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Tries so far.
    pub attempts: u32,
    /// When it is next due (while pending), or its lease ends (while sending).
    pub next_attempt_ms: u64,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// When it was delivered or given up.
    pub done_at_ms: Option<u64>,
}

impl Delivery {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "sink": self.sink,
            "kind": self.kind,
            "status": self.status,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "next_attempt_at": matches!(self.status, DeliveryStatus::Pending | DeliveryStatus::Sending)
                .then(|| rfc3339(self.next_attempt_ms)),
            "done_at": self.done_at_ms.map(rfc3339),
        })
    }
}

macro_rules! incident_columns {
    () => {
        "id, origin, status, opened_at_ms, last_seen_ms, resolved_at_ms, resolved_by, notices, messages, calls, \
         kept, error_codes, numbers, account_sid, voice, sample_body, remind_at_ms"
    };
}

fn integer(value: Option<&SqlValue>) -> Option<u64> {
    match value {
        Some(SqlValue::Integer(number)) => u64::try_from(*number).ok(),
        _ => None,
    }
}

fn text(value: Option<&SqlValue>) -> Option<String> {
    match value {
        Some(SqlValue::Text(text)) => Some(text.clone()),
        _ => None,
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Driver(format!("an incident row is unreadable: {what}"))
}

fn incident_from_row(row: &[SqlValue]) -> Result<Incident, StoreError> {
    let at = |index: usize| row.get(index);
    let status = match text(at(2)).as_deref() {
        Some("open") => IncidentStatus::Open,
        Some("resolved") => IncidentStatus::Resolved,
        _ => return Err(corrupt("status")),
    };
    Ok(Incident {
        id: text(at(0)).ok_or_else(|| corrupt("id"))?,
        origin: text(at(1)).ok_or_else(|| corrupt("origin"))?,
        status,
        opened_at_ms: integer(at(3)).unwrap_or(0),
        last_seen_ms: integer(at(4)).unwrap_or(0),
        resolved_at_ms: integer(at(5)),
        resolved_by: text(at(6)).as_deref().and_then(ResolvedBy::parse),
        notices: integer(at(7)).unwrap_or(0),
        messages: integer(at(8)).unwrap_or(0),
        calls: integer(at(9)).unwrap_or(0),
        kept: integer(at(10)).unwrap_or(0),
        error_codes: text(at(11))
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default(),
        numbers: text(at(12))
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default(),
        account_sid: text(at(13)),
        voice: integer(at(14)).unwrap_or(0) != 0,
        sample_body: text(at(15)),
        remind_at_ms: integer(at(16)),
    })
}

fn delivery_from_row(row: &[SqlValue]) -> Result<Delivery, StoreError> {
    let at = |index: usize| row.get(index);
    Ok(Delivery {
        incident_id: text(at(0)).ok_or_else(|| corrupt("delivery incident"))?,
        sink: text(at(1)).ok_or_else(|| corrupt("delivery sink"))?,
        kind: text(at(2))
            .as_deref()
            .and_then(Kind::parse)
            .ok_or_else(|| corrupt("delivery kind"))?,
        seq: match at(3) {
            Some(SqlValue::Integer(seq)) => *seq,
            _ => return Err(corrupt("delivery seq")),
        },
        status: text(at(4))
            .as_deref()
            .and_then(DeliveryStatus::parse)
            .ok_or_else(|| corrupt("delivery status"))?,
        attempts: integer(at(5)).and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
        next_attempt_ms: integer(at(6)).unwrap_or(0),
        last_error: text(at(7)),
        done_at_ms: integer(at(8)),
    })
}

fn json_text(value: &impl Serialize) -> SqlValue {
    SqlValue::Text(serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned()))
}

fn optional_integer(value: Option<u64>) -> SqlValue {
    value.map_or(SqlValue::Null, SqlValue::integer)
}

fn optional_text(value: Option<&str>) -> SqlValue {
    value.map_or(SqlValue::Null, SqlValue::text)
}

/// The open incident for `origin`.
pub(crate) fn open_for<S: Sql>(sql: &mut S, origin: &str) -> Result<Option<Incident>, StoreError> {
    let rows = run(
        sql,
        &Statement::new(
            concat!(
                "SELECT ",
                incident_columns!(),
                " FROM incidents WHERE origin = ?1 AND status = 'open'"
            ),
            vec![SqlValue::text(origin)],
        ),
    )?;
    rows.first().map(|row| incident_from_row(row)).transpose()
}

/// The most recent incident of `origin` that resolved at or after `at_ms`: the one a notice
/// stamped `at_ms` belongs to, when it is filed late.
pub(crate) fn resolved_after<S: Sql>(sql: &mut S, origin: &str, at_ms: u64) -> Result<Option<Incident>, StoreError> {
    let rows = run(
        sql,
        &Statement::new(
            concat!(
                "SELECT ",
                incident_columns!(),
                " FROM incidents WHERE origin = ?1 AND status = 'resolved' AND resolved_at_ms >= ?2 \
                 ORDER BY resolved_at_ms DESC LIMIT 1"
            ),
            vec![SqlValue::text(origin), SqlValue::integer(at_ms)],
        ),
    )?;
    rows.first().map(|row| incident_from_row(row)).transpose()
}

/// How many incidents the store holds.
pub(crate) fn count<S: Sql>(sql: &mut S) -> Result<u64, StoreError> {
    let rows = run(sql, &Statement::new("SELECT count(*) FROM incidents", Vec::new()))?;
    Ok(integer(rows.first().and_then(|row| row.first())).unwrap_or(0))
}

/// The incident `id`.
pub(crate) fn get<S: Sql>(sql: &mut S, id: &str) -> Result<Option<Incident>, StoreError> {
    let rows = run(
        sql,
        &Statement::new(
            concat!("SELECT ", incident_columns!(), " FROM incidents WHERE id = ?1"),
            vec![SqlValue::text(id)],
        ),
    )?;
    rows.first().map(|row| incident_from_row(row)).transpose()
}

/// Every open incident.
pub(crate) fn open_incidents<S: Sql>(sql: &mut S) -> Result<Vec<Incident>, StoreError> {
    run(
        sql,
        &Statement::new(
            concat!("SELECT ", incident_columns!(), " FROM incidents WHERE status = 'open'"),
            Vec::new(),
        ),
    )?
    .iter()
    .map(|row| incident_from_row(row))
    .collect()
}

/// Writes a new incident.
pub(crate) fn insert<S: Sql>(sql: &mut S, incident: &Incident) -> Result<(), StoreError> {
    run(
        sql,
        &Statement::new(
            concat!(
                "INSERT INTO incidents (",
                incident_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ),
            vec![
                SqlValue::text(&incident.id),
                SqlValue::text(&incident.origin),
                SqlValue::text(incident.status.as_str()),
                SqlValue::integer(incident.opened_at_ms),
                SqlValue::integer(incident.last_seen_ms),
                optional_integer(incident.resolved_at_ms),
                optional_text(incident.resolved_by.map(ResolvedBy::as_str)),
                SqlValue::integer(incident.notices),
                SqlValue::integer(incident.messages),
                SqlValue::integer(incident.calls),
                SqlValue::integer(incident.kept),
                json_text(&incident.error_codes),
                json_text(&incident.numbers),
                optional_text(incident.account_sid.as_deref()),
                SqlValue::integer(u64::from(incident.voice)),
                optional_text(incident.sample_body.as_deref()),
                optional_integer(incident.remind_at_ms),
            ],
        ),
    )?;
    Ok(())
}

/// Writes an open incident's counts.
pub(crate) fn update_counts<S: Sql>(sql: &mut S, incident: &Incident) -> Result<(), StoreError> {
    run(
        sql,
        &Statement::new(
            "UPDATE incidents SET last_seen_ms = ?2, notices = ?3, messages = ?4, calls = ?5, kept = ?6, \
             error_codes = ?7, numbers = ?8, account_sid = ?9, voice = ?10, sample_body = ?11 WHERE id = ?1",
            vec![
                SqlValue::text(&incident.id),
                SqlValue::integer(incident.last_seen_ms),
                SqlValue::integer(incident.notices),
                SqlValue::integer(incident.messages),
                SqlValue::integer(incident.calls),
                SqlValue::integer(incident.kept),
                json_text(&incident.error_codes),
                json_text(&incident.numbers),
                optional_text(incident.account_sid.as_deref()),
                SqlValue::integer(u64::from(incident.voice)),
                optional_text(incident.sample_body.as_deref()),
            ],
        ),
    )?;
    Ok(())
}

/// Marks an open incident resolved; `false` when it was no longer open.
pub(crate) fn mark_resolved<S: Sql>(sql: &mut S, incident: &Incident) -> Result<bool, StoreError> {
    let rows = run(
        sql,
        &Statement::new(
            "UPDATE incidents SET status = 'resolved', resolved_at_ms = ?2, resolved_by = ?3, remind_at_ms = NULL \
             WHERE id = ?1 AND status = 'open' RETURNING id",
            vec![
                SqlValue::text(&incident.id),
                optional_integer(incident.resolved_at_ms),
                optional_text(incident.resolved_by.map(ResolvedBy::as_str)),
            ],
        ),
    )?;
    Ok(!rows.is_empty())
}

/// Sets when the next reminder is due.
pub(crate) fn set_remind_at<S: Sql>(sql: &mut S, id: &str, at: Option<u64>) -> Result<(), StoreError> {
    run(
        sql,
        &Statement::new(
            "UPDATE incidents SET remind_at_ms = ?2 WHERE id = ?1",
            vec![SqlValue::text(id), optional_integer(at)],
        ),
    )?;
    Ok(())
}

/// Plans `kind` for each of `sinks`, due at `now_ms`, after everything already planned.
pub(crate) fn plan<S: Sql>(sql: &mut S, id: &str, sinks: &[String], kind: Kind, now_ms: u64) -> Result<(), StoreError> {
    for sink in sinks {
        run(
            sql,
            &Statement::new(
                "INSERT INTO incident_deliveries (incident_id, sink, kind, seq, status, attempts, next_attempt_ms) \
                 VALUES (?1, ?2, ?3, (SELECT coalesce(max(seq), 0) + 1 FROM incident_deliveries WHERE incident_id = ?1), \
                 'pending', 0, ?4)",
                vec![
                    SqlValue::text(id),
                    SqlValue::text(sink),
                    SqlValue::text(kind.as_str()),
                    SqlValue::integer(now_ms),
                ],
            ),
        )?;
    }
    Ok(())
}

/// The sinks told (or to be told) of the incident's opening: those its later notifications go to.
pub(crate) fn told_of_opening<S: Sql>(sql: &mut S, id: &str) -> Result<Vec<String>, StoreError> {
    Ok(run(
        sql,
        &Statement::new(
            "SELECT sink FROM incident_deliveries WHERE incident_id = ?1 AND kind = 'open' ORDER BY seq",
            vec![SqlValue::text(id)],
        ),
    )?
    .iter()
    .filter_map(|row| text(row.first()))
    .collect())
}

/// Claims up to `limit` notifications due at `now_ms` — pending ones whose time has come, and
/// claimed ones whose lease ran out (a shell died mid-send) — each only when no earlier
/// notification of its incident to its sink is still waiting; each is leased for
/// [`super::DELIVERY_LEASE_MS`] and its try counted.
pub(crate) fn claim_due<S: Sql>(sql: &mut S, now_ms: u64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
    let rows = run(
        sql,
        &Statement::new(
            "SELECT d.incident_id, d.sink, d.kind, d.seq, d.status, d.attempts, d.next_attempt_ms, d.last_error, \
             d.done_at_ms FROM incident_deliveries d WHERE d.status IN ('pending', 'sending') \
             AND d.next_attempt_ms <= ?1 AND NOT EXISTS (SELECT 1 FROM incident_deliveries e \
             WHERE e.incident_id = d.incident_id AND e.sink = d.sink AND e.seq < d.seq \
             AND e.status IN ('pending', 'sending')) ORDER BY d.next_attempt_ms, d.seq LIMIT ?2",
            vec![SqlValue::integer(now_ms), SqlValue::integer(limit as u64)],
        ),
    )?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut delivery = delivery_from_row(row)?;
        delivery.status = DeliveryStatus::Sending;
        delivery.attempts = delivery.attempts.saturating_add(1);
        delivery.next_attempt_ms = now_ms.saturating_add(super::DELIVERY_LEASE_MS);
        run(
            sql,
            &Statement::new(
                "UPDATE incident_deliveries SET status = 'sending', attempts = ?4, next_attempt_ms = ?5 \
                 WHERE incident_id = ?1 AND sink = ?2 AND seq = ?3",
                vec![
                    SqlValue::text(&delivery.incident_id),
                    SqlValue::text(&delivery.sink),
                    SqlValue::Integer(delivery.seq),
                    SqlValue::integer(u64::from(delivery.attempts)),
                    SqlValue::integer(delivery.next_attempt_ms),
                ],
            ),
        )?;
        claimed.push(delivery);
    }
    Ok(claimed)
}

/// Writes a try's result: `status`, next due at `next_ms` (while pending), done at `now_ms`; a
/// delivered notification keeps the error of the try before (it says why it took more than one).
/// Only the claim it answers is settled: a try that outlived its lease, once claimed again, is
/// the newer claim's to settle.
pub(crate) fn settle<S: Sql>(
    sql: &mut S,
    delivery: &Delivery,
    status: DeliveryStatus,
    error: Option<&str>,
    next_ms: u64,
    now_ms: u64,
) -> Result<(), StoreError> {
    let done = matches!(status, DeliveryStatus::Delivered | DeliveryStatus::Failed).then_some(now_ms);
    run(
        sql,
        &Statement::new(
            "UPDATE incident_deliveries SET status = ?4, attempts = ?5, next_attempt_ms = ?6, \
             last_error = coalesce(?7, last_error), done_at_ms = ?8 \
             WHERE incident_id = ?1 AND sink = ?2 AND seq = ?3 AND status = 'sending' AND attempts = ?5",
            vec![
                SqlValue::text(&delivery.incident_id),
                SqlValue::text(&delivery.sink),
                SqlValue::Integer(delivery.seq),
                SqlValue::text(status.as_str()),
                SqlValue::integer(u64::from(delivery.attempts)),
                SqlValue::integer(next_ms),
                optional_text(error.map(clip).as_deref()),
                optional_integer(done),
            ],
        ),
    )?;
    Ok(())
}

/// When the next waiting notification is due (or its lease ends) — of those not waiting behind
/// an earlier one to the same sink (that one's time comes first).
pub(crate) fn next_attempt_at<S: Sql>(sql: &mut S) -> Result<Option<u64>, StoreError> {
    let rows = run(
        sql,
        &Statement::new(
            "SELECT min(d.next_attempt_ms) FROM incident_deliveries d WHERE d.status IN ('pending', 'sending') \
             AND NOT EXISTS (SELECT 1 FROM incident_deliveries e WHERE e.incident_id = d.incident_id \
             AND e.sink = d.sink AND e.seq < d.seq AND e.status IN ('pending', 'sending'))",
            Vec::new(),
        ),
    )?;
    Ok(integer(rows.first().and_then(|row| row.first())))
}

/// The incidents to show: every open one, then the most recent resolved ones, `limit` in all,
/// each with its notifications.
pub fn list<S: Sql>(sql: &mut S, limit: usize) -> Result<Vec<(Incident, Vec<Delivery>)>, StoreError> {
    let rows = run(
        sql,
        &Statement::new(
            concat!(
                "SELECT ",
                incident_columns!(),
                " FROM incidents ORDER BY status = 'open' DESC, opened_at_ms DESC, id LIMIT ?1"
            ),
            vec![SqlValue::integer(limit as u64)],
        ),
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let incident = incident_from_row(row)?;
        let deliveries = run(
            sql,
            &Statement::new(
                "SELECT incident_id, sink, kind, seq, status, attempts, next_attempt_ms, last_error, done_at_ms \
                 FROM incident_deliveries WHERE incident_id = ?1 ORDER BY seq",
                vec![SqlValue::text(&incident.id)],
            ),
        )?
        .iter()
        .map(|row| delivery_from_row(row))
        .collect::<Result<Vec<_>, _>>()?;
        out.push((incident, deliveries));
    }
    Ok(out)
}

/// The account of the most recent incident (for `alerts test`'s texts).
pub(crate) fn last_account<S: Sql>(sql: &mut S) -> Result<Option<String>, StoreError> {
    let rows = run(
        sql,
        &Statement::new(
            "SELECT account_sid FROM incidents WHERE account_sid IS NOT NULL ORDER BY opened_at_ms DESC LIMIT 1",
            Vec::new(),
        ),
    )?;
    Ok(text(rows.first().and_then(|row| row.first())))
}

/// Deletes incidents resolved before `cutoff_ms`, and their notifications.
pub(crate) fn purge<S: Sql>(sql: &mut S, cutoff_ms: u64) -> Result<(), StoreError> {
    let cutoff = SqlValue::integer(cutoff_ms);
    run(
        sql,
        &Statement::new(
            "DELETE FROM incident_deliveries WHERE incident_id IN \
             (SELECT id FROM incidents WHERE status = 'resolved' AND resolved_at_ms < ?1)",
            vec![cutoff.clone()],
        ),
    )?;
    run(
        sql,
        &Statement::new(
            "DELETE FROM incidents WHERE status = 'resolved' AND resolved_at_ms < ?1",
            vec![cutoff],
        ),
    )?;
    Ok(())
}
