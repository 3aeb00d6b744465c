//! Incidents: one per outage of a primary, opened by the first verified fallback notice for its
//! origin, resolved once, each sink told exactly once of each — decided here, for both backends.
//!
//! An incident is keyed by the failing primary's origin (the scheme, host and port of
//! `ErrorUrl`, [`crate::url::Parts::site_origin`]). The first verified fallback notice for an
//! origin with no open incident opens one and plans an `open` notification for every configured
//! sink; later notices only add to its counts (first and last seen, error codes, messages, calls,
//! what the inbox kept, numbers). It resolves — planning one `resolve` notification for every sink
//! that was told of the opening — when the primary answers again (a recovery relayed its answer,
//! or replay delivered a kept message to it: [`primary_answered`]), or when
//! `[alerts] resolve_after_seconds` pass with no notice for it ([`Alerting::tick`]). While open,
//! `[alerts] remind_minutes` plans reminders.
//!
//! Notifications are an outbox in the same SQLite database as the inbox (schema v4: `incidents`,
//! `incident_deliveries`): each planned notification is a row, claimed by [`Alerting::tick`] when
//! due, sent by the shell off the caller's path, and settled by [`Alerting::settle`] — delivered,
//! retried with backoff (429, 5xx, timeouts, connection errors) or failed (other 4xx; or after
//! [`MAX_DELIVERY_ATTEMPTS`]). Within an incident, a sink's notifications go out in order (its
//! `resolve` waits for its `open`), and one failing sink never holds up another.
//!
//! The shell's loop (`serve`: a background task woken by [`Recorded::wake`]; the Worker: the
//! Durable Object's alarm, set to [`Tick::next_at`]):
//!
//! | the shell | the core |
//! |---|---|
//! | a decision's `Effect::Incident(notice)` | [`Alerting::record`] (off the caller's path) |
//! | a recovery's [`RecoveryJudgement::resolves`](crate::edge::RecoveryJudgement::resolves) | [`primary_answered`] |
//! | replay's `finish_pass` | calls [`primary_answered`] itself |
//! | wakes at [`Tick::next_at`] or on [`Recorded::wake`] | [`Alerting::tick`]: quiet resolves, reminders, [`Dispatch`]es |
//! | sends each [`Dispatch::send`] (HTTP, or email by SMTP / `send_email`) | [`Alerting::settle`] with the [`SinkOutcome`] |
//!
//! # Example
//!
//! ```
//! use twiml_fallback::config::Config;
//! use twiml_fallback::incident::{Alerting, EmailSupport, Notice};
//! use twiml_fallback::replay::TwilioApi;
//! use twiml_fallback::signature::SignatureVerifier;
//!
//! let config = Config::from_toml(r#"
//!     [alerts]
//!     webhook_url = "https://hooks.slack.com/services/T000/B000/XXXX"
//!     pagerduty_routing_key = "0123456789abcdef0123456789abcdef"
//! "#).unwrap();
//! let verifier = SignatureVerifier::from_tokens(["auth-token".to_owned()]);
//! let alerting = Alerting::new(&config, &verifier, TwilioApi::default(), EmailSupport::None);
//! let sinks: Vec<String> = alerting.sinks().iter().map(|sink| sink.id()).collect();
//! assert_eq!(sinks, ["webhook", "pagerduty"]);
//!
//! // The notice a fallback request raises names the failing primary's origin.
//! let notice = Notice::from_error_url(Some("https://App.example.com:443/sms?x=1"), "11200", 1_700_000_000_000);
//! assert_eq!(notice.origin, "https://app.example.com");
//! ```

mod notify;
mod store;

use serde::{Deserialize, Serialize};

use crate::admin::AdminResponse;
use crate::config::{Alerts, Config, SmsSender};
use crate::edge::{LogLevel, LogLine, OutboundRequest, SendOutcome, clip, rfc3339};
use crate::inbox::{Sql, StoreError};
use crate::replay::TwilioApi;
use crate::signature::SignatureVerifier;
use crate::webhook::{Channel, is_sid};

pub use notify::{Email, EmailOutcome, NOTIFY_TIMEOUT, NOTIFY_USER_AGENT, duration_text};
pub use store::{Delivery, DeliveryStatus, Incident, IncidentStatus, MAX_CODES, MAX_NUMBERS, ResolvedBy, list};
pub(crate) use store::{MIGRATION, purge};

/// How many times a notification is tried before it is given up as `failed` (with backoff from
/// one second, doubling, at most five minutes between tries: about nine minutes in all).
pub const MAX_DELIVERY_ATTEMPTS: u32 = 10;

/// The longest wait between two tries of a notification.
pub const MAX_DELIVERY_BACKOFF_MS: u64 = 300_000;

/// How long a claimed notification is someone's: a shell that dies mid-send leaves it to be
/// tried again after this (a notification may then arrive twice; never not at all).
pub const DELIVERY_LEASE_MS: u64 = 60_000;

/// The most notifications one [`Alerting::tick`] hands out.
pub const MAX_DISPATCHES_PER_TICK: usize = 32;

/// The origin filed when a notice has no usable `ErrorUrl`.
pub const UNKNOWN_ORIGIN: &str = "unknown";

/// A verified fallback notice, as an incident counts it: what a decision hands the shell
/// (`Effect::Incident`) to [`Alerting::record`]. Its JSON is the wire form the Worker sends to
/// its Durable Object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The failing primary's origin ([`UNKNOWN_ORIGIN`] without an `ErrorUrl`).
    pub origin: String,
    /// `ErrorCode` as sent (trimmed, clipped; `unknown` when absent).
    pub error_code: String,
    /// Voice or messaging, when known.
    pub channel: Option<Channel>,
    /// The called number.
    pub to: Option<String>,
    /// The account (`AccountSid`): where alert texts are sent from.
    pub account_sid: Option<String>,
    /// Whether the inbox kept the request (a message or call a person sent).
    pub kept: bool,
    /// The message's body, only with `[alerts] include_bodies = true`.
    pub body: Option<String>,
    /// When it arrived (milliseconds since the epoch).
    pub at_ms: u64,
}

impl Notice {
    /// A notice for the primary at `error_url` failing with `error_code` at `at_ms` (the other
    /// fields empty: the endpoint fills them from the request).
    pub fn from_error_url(error_url: Option<&str>, error_code: &str, at_ms: u64) -> Self {
        let code = error_code.trim();
        Notice {
            origin: origin_of(error_url),
            error_code: if code.is_empty() {
                "unknown".to_owned()
            } else {
                clip(code)
            },
            channel: None,
            to: None,
            account_sid: None,
            kept: false,
            body: None,
            at_ms,
        }
    }
}

/// The origin an incident is filed under for a failing URL: [`crate::url::Parts::site_origin`]
/// of an absolute http(s) URL (clipped, as every request-supplied field is), else
/// [`UNKNOWN_ORIGIN`].
pub fn origin_of(url: Option<&str>) -> String {
    url.map(str::trim)
        .filter(|url| crate::url::is_absolute_http_url(url))
        .and_then(crate::url::split)
        .filter(|parts| !parts.host().is_empty())
        .map_or_else(|| UNKNOWN_ORIGIN.to_owned(), |parts| clip(&parts.site_origin()))
}

/// Where a notification goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    /// `webhook_url`: Slack-compatible JSON.
    Webhook,
    /// `email`: one message to this address (each recipient is told once, whatever the others'
    /// relays do).
    Email(String),
    /// `sms`: one text to this phone.
    Sms(String),
    /// `pagerduty_routing_key`: Events API v2.
    PagerDuty,
}

impl Sink {
    /// As stored and shown: `webhook`, `email`, `sms:+14155550100`, `pagerduty`.
    pub fn id(&self) -> String {
        match self {
            Sink::Webhook => "webhook".to_owned(),
            Sink::Email(address) => format!("email:{address}"),
            Sink::Sms(phone) => format!("sms:{phone}"),
            Sink::PagerDuty => "pagerduty".to_owned(),
        }
    }

    fn from_id(id: &str) -> Option<Self> {
        match id {
            "webhook" => Some(Sink::Webhook),
            "pagerduty" => Some(Sink::PagerDuty),
            _ => match id.split_once(':') {
                Some(("sms", phone)) => Some(Sink::Sms(phone.to_owned())),
                Some(("email", address)) => Some(Sink::Email(address.to_owned())),
                _ => None,
            },
        }
    }
}

/// Whether, and how, the shell can send email.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailSupport {
    /// It can: `serve` with `[alerts.smtp] url`, the Worker with its `ALERT_EMAIL` binding.
    Available,
    /// It cannot; the string says what is missing (logged at start, email skipped).
    Missing(&'static str),
    /// Not asked (no email configured, or a context that sends none).
    None,
}

/// Which notification of an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The incident opened.
    Open,
    /// It is still open.
    Reminder,
    /// It resolved.
    Resolve,
    /// `alerts test`.
    Test,
}

impl Kind {
    /// As stored: `open`, `reminder`, `resolve`, `test`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Open => "open",
            Kind::Reminder => "reminder",
            Kind::Resolve => "resolve",
            Kind::Test => "test",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Kind::Open),
            "reminder" => Some(Kind::Reminder),
            "resolve" => Some(Kind::Resolve),
            "test" => Some(Kind::Test),
            _ => None,
        }
    }
}

/// What a shell sends for one notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Send {
    /// An HTTP request (webhook, PagerDuty, the Messages API), sent as it is, never following
    /// redirects.
    Http(OutboundRequest),
    /// An email, by SMTP (`serve`) or the `send_email` binding (the Worker).
    Email(Email),
}

/// One notification to send now: claimed by [`Alerting::tick`] (or made by
/// [`Alerting::test_dispatches`]); its outcome goes back to [`Alerting::settle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dispatch {
    /// The incident (`test` for a test).
    pub incident_id: String,
    /// The sink ([`Sink::id`]).
    pub sink: String,
    /// Which notification.
    pub kind: Kind,
    /// The notification's place in the incident's outbox.
    pub seq: i64,
    /// This try's number, from 1.
    pub attempt: u32,
    /// What to send.
    pub send: Send,
}

/// What came of sending a [`Dispatch`].
#[derive(Clone, Copy, Debug)]
pub enum SinkOutcome<'a> {
    /// An HTTP request's outcome.
    Http(SendOutcome<'a>),
    /// An email's.
    Email(&'a EmailOutcome),
}

/// What came of sending a [`Dispatch`], owned (a shell keeps it across an await, then hands
/// [`SinkResult::outcome`] to [`Alerting::settle`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkResult {
    /// An HTTP request's result.
    Http(crate::edge::SendResult),
    /// An email's.
    Email(EmailOutcome),
}

impl SinkResult {
    /// The outcome, as [`Alerting::settle`] and [`Alerting::test_result`] read it.
    pub fn outcome(&self) -> SinkOutcome<'_> {
        match self {
            SinkResult::Http(result) => SinkOutcome::Http(result.outcome()),
            SinkResult::Email(outcome) => SinkOutcome::Email(outcome),
        }
    }
}

/// What [`Alerting::record`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The incident the notice was filed under.
    pub incident_id: String,
    /// Whether the notice opened it.
    pub opened: bool,
    /// Whether notifications are waiting: the shell runs [`Alerting::tick`] now.
    pub wake: bool,
    /// The line to log (`incident-opened`), when it opened.
    pub line: Option<LogLine>,
}

/// What [`Alerting::tick`] found to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Notifications to send now (each claimed for [`DELIVERY_LEASE_MS`]).
    pub dispatches: Vec<Dispatch>,
    /// Lines to log (incidents resolved by the quiet period).
    pub lines: Vec<LogLine>,
    /// When the shell should tick again (the next quiet resolve, reminder or retry); `None`:
    /// nothing is waiting but new notices.
    pub next_at: Option<u64>,
}

/// The incident rules for one endpoint: the configuration's `[alerts]`, the account's token for
/// texts, the Messages API, and whether the shell can send email.
#[derive(Clone, Debug)]
pub struct Alerting {
    alerts: Option<Alerts>,
    api: TwilioApi,
    token: Option<String>,
    email: EmailSupport,
    sinks: Vec<Sink>,
}

impl Alerting {
    /// The rules of `config`'s `[alerts]`, texting through `api` with the verifier's first token
    /// (or the API key `api` carries); `email` says whether the shell can send email.
    pub fn new(config: &Config, verifier: &SignatureVerifier, api: TwilioApi, email: EmailSupport) -> Self {
        let alerts = config.alerts().cloned();
        let token = verifier.tokens().first().map(|token| token.expose().to_owned());
        let mut sinks = Vec::new();
        if let Some(alerts) = &alerts {
            if alerts.webhook_url.is_some() {
                sinks.push(Sink::Webhook);
            }
            if alerts.smtp.is_some() && email == EmailSupport::Available {
                sinks.extend(alerts.email.iter().cloned().map(Sink::Email));
            }
            if alerts.sms_sender.is_some() {
                sinks.extend(alerts.sms.iter().cloned().map(Sink::Sms));
            }
            if alerts.pagerduty_routing_key.is_some() {
                sinks.push(Sink::PagerDuty);
            }
        }
        Alerting {
            alerts,
            api,
            token,
            email,
            sinks,
        }
    }

    /// The sinks notifications go to.
    pub fn sinks(&self) -> &[Sink] {
        &self.sinks
    }

    /// Whether `[alerts]` is configured.
    pub fn is_configured(&self) -> bool {
        self.alerts.is_some()
    }

    /// The `alerts-config` line a shell logs at start: each sink, what is missing for the ones
    /// configured but unusable, the quiet period, and the retired `dedup_seconds` if still set.
    pub fn startup_line(&self) -> LogLine {
        let Some(alerts) = &self.alerts else {
            return LogLine::new(
                LogLevel::Info,
                &serde_json::json!({"event": "alerts-config", "alerts": "off", "reason": "no [alerts] in the configuration"}),
            );
        };
        let mut problems = Vec::new();
        if !alerts.email.is_empty() {
            match self.email {
                EmailSupport::Available => {}
                EmailSupport::Missing(why) => problems.push(format!("email is not sent: {why}")),
                EmailSupport::None => problems.push("email is not sent from here".to_owned()),
            }
        }
        if !alerts.sms.is_empty() && self.token.is_none() && !self.api.has_api_key() {
            problems.push(
                "texts cannot be sent: no TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET)".to_owned(),
            );
        }
        if let Some(seconds) = alerts.legacy_dedup_seconds {
            problems.push(format!(
                "[alerts] dedup_seconds = {seconds} is retired: one incident per outage replaces it; the quiet period is resolve_after_seconds = {} (set that instead)",
                alerts.resolve_after_seconds
            ));
        }
        let level = if problems.is_empty() {
            LogLevel::Info
        } else {
            LogLevel::Warn
        };
        LogLine::new(
            level,
            &serde_json::json!({
                "event": "alerts-config",
                "alerts": "on",
                "sinks": self.sinks.iter().map(Sink::id).collect::<Vec<_>>(),
                "resolve_after_seconds": alerts.resolve_after_seconds,
                "remind_minutes": alerts.remind_minutes,
                "include_bodies": alerts.include_bodies,
                "problems": problems,
            }),
        )
    }

    /// Whether notices should carry message bodies (`include_bodies`).
    pub fn include_bodies(&self) -> bool {
        self.alerts.as_ref().is_some_and(|alerts| alerts.include_bodies)
    }

    /// Files a verified fallback notice: opens an incident for its origin when none is open
    /// (planning an `open` notification per sink), else adds it to the open one.
    pub fn record<S: Sql>(&self, sql: &mut S, notice: &Notice, now_ms: u64) -> Result<Recorded, StoreError> {
        // The open incident, or — for a notice that arrived before its origin's last incident
        // resolved but is filed after (a recovery that took its deadline, a busy store) — that
        // one: a late notice never reopens an outage that is over.
        let known = match store::open_for(sql, &notice.origin)? {
            Some(open) => Some(open),
            None => store::resolved_after(sql, &notice.origin, notice.at_ms)?,
        };
        if let Some(mut incident) = known {
            incident.add(notice, self.include_bodies());
            store::update_counts(sql, &incident)?;
            return Ok(Recorded {
                incident_id: incident.id,
                opened: false,
                wake: false,
                line: None,
            });
        }
        let mut incident = Incident::opened_by(notice, now_ms, store::count(sql)?);
        incident.add(notice, self.include_bodies());
        incident.remind_at_ms = self
            .remind_every_ms()
            .map(|every| incident.opened_at_ms.saturating_add(every));
        store::insert(sql, &incident)?;
        let sinks: Vec<String> = self.sinks.iter().map(Sink::id).collect();
        store::plan(sql, &incident.id, &sinks, Kind::Open, now_ms)?;
        let line = LogLine::new(
            LogLevel::Warn,
            &serde_json::json!({
                "event": "incident-opened",
                "incident": incident.id,
                "origin": incident.origin,
                "error_code": notice.error_code,
                "sinks": sinks,
            }),
        );
        Ok(Recorded {
            incident_id: incident.id,
            opened: true,
            wake: !sinks.is_empty(),
            line: Some(line),
        })
    }

    fn remind_every_ms(&self) -> Option<u64> {
        self.alerts
            .as_ref()
            .and_then(|alerts| alerts.remind_minutes)
            .map(|minutes| minutes.saturating_mul(60_000))
    }

    /// Resolves the incidents whose quiet period has passed, plans due reminders, and claims the
    /// notifications due now (at most [`MAX_DISPATCHES_PER_TICK`]), each built from its incident
    /// as it stands; says when to tick next.
    pub fn tick<S: Sql>(&self, sql: &mut S, now_ms: u64) -> Result<Tick, StoreError> {
        let mut tick = Tick::default();
        let quiet_ms = self
            .alerts
            .as_ref()
            .map_or(crate::config::DEFAULT_RESOLVE_AFTER_SECONDS, |alerts| {
                alerts.resolve_after_seconds
            })
            .saturating_mul(1000);
        let mut next_at: Option<u64> = None;
        let mut sooner = |at: u64| next_at = Some(next_at.map_or(at, |known| known.min(at)));
        for mut incident in store::open_incidents(sql)? {
            let quiet_at = incident.last_seen_ms.saturating_add(quiet_ms);
            if quiet_at <= now_ms {
                if let Some(line) = resolve(sql, &mut incident, ResolvedBy::Quiet, now_ms)? {
                    tick.lines.push(line);
                }
                continue;
            }
            sooner(quiet_at);
            if let (Some(at), Some(every)) = (incident.remind_at_ms, self.remind_every_ms()) {
                if at <= now_ms {
                    let sinks: Vec<String> = store::told_of_opening(sql, &incident.id)?
                        .into_iter()
                        .filter(|sink| sink != "pagerduty")
                        .collect();
                    store::plan(sql, &incident.id, &sinks, Kind::Reminder, now_ms)?;
                    incident.remind_at_ms = Some(now_ms.saturating_add(every));
                    store::set_remind_at(sql, &incident.id, incident.remind_at_ms)?;
                }
                if let Some(at) = incident.remind_at_ms {
                    sooner(at);
                }
            }
        }
        for delivery in store::claim_due(sql, now_ms, MAX_DISPATCHES_PER_TICK)? {
            let Some(incident) = store::get(sql, &delivery.incident_id)? else {
                let reason = "its incident is gone";
                store::settle(sql, &delivery, DeliveryStatus::Failed, Some(reason), now_ms, now_ms)?;
                tick.lines
                    .push(delivery_line(&delivery, DeliveryStatus::Failed, Some(reason), None));
                continue;
            };
            match self.build(&incident, &delivery, now_ms) {
                Ok(send) => tick.dispatches.push(Dispatch {
                    incident_id: delivery.incident_id.clone(),
                    sink: delivery.sink.clone(),
                    kind: delivery.kind,
                    seq: delivery.seq,
                    attempt: delivery.attempts,
                    send,
                }),
                Err(reason) => {
                    // Cannot be sent as configured (a sink removed since, no account to text
                    // from): given up now, with why.
                    store::settle(sql, &delivery, DeliveryStatus::Failed, Some(&reason), now_ms, now_ms)?;
                    tick.lines
                        .push(delivery_line(&delivery, DeliveryStatus::Failed, Some(&reason), None));
                }
            }
        }
        if let Some(at) = store::next_attempt_at(sql)? {
            sooner(at.max(now_ms));
        }
        tick.next_at = next_at;
        Ok(tick)
    }

    /// Settles a dispatched notification: `delivered`; tried again with backoff after a 429, a
    /// 5xx, a timeout or a connection error (until [`MAX_DELIVERY_ATTEMPTS`]); `failed` after any
    /// other answer. The line to log (failures are warnings, never with credentials).
    pub fn settle<S: Sql>(
        &self,
        sql: &mut S,
        dispatch: &Dispatch,
        outcome: SinkOutcome<'_>,
        now_ms: u64,
    ) -> Result<LogLine, StoreError> {
        let verdict = notify::judge(&dispatch.send, outcome);
        let delivery = Delivery {
            incident_id: dispatch.incident_id.clone(),
            sink: dispatch.sink.clone(),
            kind: dispatch.kind,
            seq: dispatch.seq,
            status: DeliveryStatus::Sending,
            attempts: dispatch.attempt,
            next_attempt_ms: now_ms,
            last_error: None,
            done_at_ms: None,
        };
        let (status, next) = match &verdict {
            Verdict::Delivered(_) => (DeliveryStatus::Delivered, now_ms),
            Verdict::Retry(_) if dispatch.attempt < MAX_DELIVERY_ATTEMPTS => (
                DeliveryStatus::Pending,
                now_ms.saturating_add(delivery_backoff_ms(dispatch.attempt)),
            ),
            Verdict::Retry(_) | Verdict::Rejected(_) => (DeliveryStatus::Failed, now_ms),
        };
        let error = match &verdict {
            Verdict::Delivered(_) => None,
            Verdict::Retry(reason) | Verdict::Rejected(reason) => Some(reason.as_str()),
        };
        store::settle(sql, &delivery, status, error, next, now_ms)?;
        let retry_at = (status == DeliveryStatus::Pending).then_some(next);
        Ok(delivery_line(&delivery, status, error, retry_at))
    }

    /// The notification `delivery` asks for, for `incident` as it stands.
    fn build(&self, incident: &Incident, delivery: &Delivery, now_ms: u64) -> Result<Send, String> {
        let alerts = self.alerts.as_ref().ok_or("[alerts] is no longer configured")?;
        let sink = Sink::from_id(&delivery.sink).ok_or_else(|| format!("unknown sink {:?}", delivery.sink))?;
        let message = notify::Message::new(incident, delivery.kind, alerts.include_bodies, now_ms);
        self.send_for(alerts, &sink, &message, incident.account_sid.as_deref(), now_ms)
    }

    fn send_for(
        &self,
        alerts: &Alerts,
        sink: &Sink,
        message: &notify::Message<'_>,
        account_sid: Option<&str>,
        now_ms: u64,
    ) -> Result<Send, String> {
        match sink {
            Sink::Webhook => {
                let url = alerts
                    .webhook_url
                    .as_deref()
                    .ok_or("webhook_url is no longer configured")?;
                Ok(Send::Http(notify::webhook_request(url, message)))
            }
            Sink::PagerDuty => {
                let key = alerts
                    .pagerduty_routing_key
                    .as_ref()
                    .ok_or("pagerduty_routing_key is no longer configured")?;
                Ok(Send::Http(notify::pagerduty_request(
                    &alerts.pagerduty_url,
                    key.expose(),
                    message,
                )))
            }
            Sink::Sms(phone) => {
                if !alerts.sms.contains(phone) {
                    return Err(format!("{phone} is no longer in [alerts] sms"));
                }
                let sender = alerts
                    .sms_sender
                    .as_ref()
                    .ok_or("no sms_from or messaging_service_sid")?;
                let account = account_sid
                    .filter(|sid| is_sid(sid, "AC"))
                    .ok_or("no account to text from (no valid AccountSid seen)")?;
                let token = match (&self.token, self.api.has_api_key()) {
                    (Some(token), _) => token.as_str(),
                    (None, true) => "",
                    (None, false) => return Err("no TWILIO_AUTH_TOKEN to text with".to_owned()),
                };
                let (from, service) = match sender {
                    SmsSender::From(from) => (Some(from.as_str()), None),
                    SmsSender::MessagingService(sid) => (None, Some(sid.as_str())),
                };
                let mut request = self
                    .api
                    .text_request(account, token, phone, from, service, &message.sms_text())?;
                request.timeout = NOTIFY_TIMEOUT;
                Ok(Send::Http(request))
            }
            Sink::Email(address) => {
                if self.email != EmailSupport::Available {
                    return Err("this endpoint cannot send email".to_owned());
                }
                if !alerts.email.contains(address) {
                    return Err(format!("{address} is no longer in [alerts] email"));
                }
                let smtp = alerts.smtp.as_ref().ok_or("no [alerts.smtp] from")?;
                Ok(Send::Email(Email::new(
                    &smtp.from,
                    &smtp.from_address,
                    std::slice::from_ref(address),
                    message,
                    now_ms,
                )))
            }
        }
    }

    /// A test notification for every configured sink (`alerts test`): each is sent once, with no
    /// incident and no retry; texts need `account_sid` (the endpoint's last incident's, or the
    /// request's). PagerDuty gets a trigger and then its resolve, so no one stays paged. A sink
    /// that cannot be tested is returned as `Err((sink, why))`.
    pub fn test_dispatches(&self, account_sid: Option<&str>, now_ms: u64) -> Vec<Result<Dispatch, (String, String)>> {
        let Some(alerts) = &self.alerts else {
            return Vec::new();
        };
        let incident = Incident::test(now_ms, account_sid);
        let mut out = Vec::new();
        let mut configured: Vec<Sink> = self.sinks.clone();
        for address in &alerts.email {
            let sink = Sink::Email(address.clone());
            if !configured.contains(&sink) {
                configured.push(sink);
            }
        }
        if alerts.sms_sender.is_none() {
            configured.extend(alerts.sms.iter().cloned().map(Sink::Sms));
        }
        for sink in configured {
            let kinds: &[Kind] = if sink == Sink::PagerDuty {
                &[Kind::Test, Kind::Resolve]
            } else {
                &[Kind::Test]
            };
            for (seq, kind) in kinds.iter().enumerate() {
                let message = notify::Message::new(&incident, *kind, false, now_ms).for_test();
                let built = self.send_for(alerts, &sink, &message, account_sid, now_ms);
                out.push(
                    built
                        .map(|send| Dispatch {
                            incident_id: incident.id.clone(),
                            sink: sink.id(),
                            kind: *kind,
                            seq: i64::try_from(seq).unwrap_or(0),
                            attempt: 1,
                            send,
                        })
                        .map_err(|why| (sink.id(), why)),
                );
            }
        }
        out
    }

    /// The admin answer of `alerts test` for the results of [`Alerting::test_dispatches`]: one
    /// item per sink (`sink`, `kind`, `delivered`, `outcome`); 409 when `[alerts]` is not
    /// configured, 502 when a sink failed.
    pub fn test_answer(&self, results: &[TestResult]) -> AdminResponse {
        if self.alerts.is_none() {
            return AdminResponse::error(
                http::StatusCode::CONFLICT,
                "no [alerts] in this endpoint's configuration: nothing to test",
            );
        }
        let failed = results.iter().any(|result| !result.delivered);
        AdminResponse::json(
            if failed {
                http::StatusCode::BAD_GATEWAY
            } else {
                http::StatusCode::OK
            },
            &serde_json::json!({ "results": results, "delivered": !failed }),
        )
    }

    /// What a test dispatch's outcome means, as [`Alerting::test_answer`] lists it.
    pub fn test_result(dispatch: &Dispatch, outcome: SinkOutcome<'_>) -> TestResult {
        let verdict = notify::judge(&dispatch.send, outcome);
        TestResult {
            sink: dispatch.sink.clone(),
            kind: dispatch.kind,
            delivered: matches!(verdict, Verdict::Delivered(_)),
            outcome: verdict.describe(),
        }
    }
}

/// One sink's `alerts test` result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResult {
    /// The sink ([`Sink::id`]).
    pub sink: String,
    /// `test` (PagerDuty's second event: `resolve`).
    pub kind: Kind,
    /// Whether it was accepted.
    pub delivered: bool,
    /// In words: `HTTP 202`, `not sent: …`.
    pub outcome: String,
}

impl TestResult {
    /// A sink that could not be tested, and why.
    pub fn not_sent(sink: String, why: String) -> Self {
        TestResult {
            sink,
            kind: Kind::Test,
            delivered: false,
            outcome: format!("not sent: {why}"),
        }
    }
}

/// What a notification's outcome means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Accepted: `HTTP 202`, `sent`.
    Delivered(String),
    /// Worth another try: 429, 5xx, a timeout, a connection error, a transient SMTP error.
    Retry(String),
    /// Not worth one: any other answer.
    Rejected(String),
}

impl Verdict {
    fn describe(&self) -> String {
        match self {
            Verdict::Delivered(how) | Verdict::Retry(how) | Verdict::Rejected(how) => how.clone(),
        }
    }
}

/// The wait after the `attempt`-th failed try: one second, doubling, at most
/// [`MAX_DELIVERY_BACKOFF_MS`].
pub fn delivery_backoff_ms(attempt: u32) -> u64 {
    1000u64
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(20))
        .min(MAX_DELIVERY_BACKOFF_MS)
}

/// Resolves the open incident for `origin`, if there is one, because its primary answered
/// (`by`: a recovery, a replay): plans a `resolve` notification for every sink told of the
/// opening. The line to log (`incident-resolved`), when one resolved. Needs no configuration,
/// so replay calls it as it ends a pass.
pub fn primary_answered<S: Sql>(
    sql: &mut S,
    origin: &str,
    by: ResolvedBy,
    now_ms: u64,
) -> Result<Option<LogLine>, StoreError> {
    match store::open_for(sql, origin)? {
        Some(mut incident) => resolve(sql, &mut incident, by, now_ms),
        None => Ok(None),
    }
}

fn resolve<S: Sql>(
    sql: &mut S,
    incident: &mut Incident,
    by: ResolvedBy,
    now_ms: u64,
) -> Result<Option<LogLine>, StoreError> {
    incident.status = IncidentStatus::Resolved;
    incident.resolved_at_ms = Some(now_ms);
    incident.resolved_by = Some(by);
    if !store::mark_resolved(sql, incident)? {
        return Ok(None);
    }
    let sinks = store::told_of_opening(sql, &incident.id)?;
    store::plan(sql, &incident.id, &sinks, Kind::Resolve, now_ms)?;
    Ok(Some(LogLine::new(
        LogLevel::Info,
        &serde_json::json!({
            "event": "incident-resolved",
            "incident": incident.id,
            "origin": incident.origin,
            "by": by.as_str(),
            "duration_seconds": incident.duration_ms(now_ms) / 1000,
            "notices": incident.notices,
            "sinks": sinks,
        }),
    )))
}

fn delivery_line(delivery: &Delivery, status: DeliveryStatus, error: Option<&str>, retry_at: Option<u64>) -> LogLine {
    #[derive(Serialize)]
    struct Line<'a> {
        event: &'static str,
        incident: &'a str,
        sink: &'a str,
        kind: &'static str,
        attempt: u32,
        status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_at: Option<String>,
    }
    let level = match status {
        DeliveryStatus::Delivered => LogLevel::Info,
        DeliveryStatus::Failed => LogLevel::Error,
        DeliveryStatus::Pending | DeliveryStatus::Sending => LogLevel::Warn,
    };
    LogLine::new(
        level,
        &Line {
            event: "notification",
            incident: &delivery.incident_id,
            sink: &delivery.sink,
            kind: delivery.kind.as_str(),
            attempt: delivery.attempts,
            status: status.as_str(),
            error: error.map(clip),
            retry_at: retry_at.map(rfc3339),
        },
    )
}

/// The account `alerts test` texts from: the one asked for (when it is an account SID), else the
/// most recent incident's.
pub fn test_account<S: Sql>(sql: &mut S, requested: Option<&str>) -> Result<Option<String>, StoreError> {
    match requested.map(str::trim).filter(|sid| !sid.is_empty()) {
        Some(sid) => Ok(Some(sid.to_owned())),
        None => store::last_account(sql),
    }
}

/// The line to log when incident state could not be read or written.
pub fn store_failed_line(error: &StoreError) -> LogLine {
    LogLine::new(
        LogLevel::Error,
        &serde_json::json!({"event": "incident-store-failed", "error": error.to_string()}),
    )
}

#[cfg(test)]
mod tests;
