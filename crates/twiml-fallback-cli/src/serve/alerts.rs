//! `serve`'s incidents and their notifications: the core's `twiml_fallback::incident`, performed
//! off the caller's path.
//!
//! This room only performs the core's steps; every rule — when an incident opens or resolves,
//! who is told, what a notification says, when it is tried again — is `Alerting`'s:
//!
//! - **filing** ([`Server::file_notice`], [`Server::primary_answered`]): a decision's
//!   `Effect::Incident` and a recovery's `notice` run the core's `Alerting::record` as a job of
//!   the inbox's writer thread — incidents live in the inbox's database — sent together with the
//!   request's entry, so both share one commit (the request waits for it, as it waits for its
//!   entry, which bounds the jobs in flight); a recovery's `resolves` runs in a task of its own.
//!   Each writes the line the core returns and, when the core says so, wakes the notifier;
//! - **the notifier** ([`Server::notify_forever`]): a background task, from start (its first
//!   tick resumes an outbox a previous run left), woken by a filing, a settled notification or a
//!   replay pass that resolved an incident, else sleeping until the core's `Tick::next_at` (at
//!   most [`MAX_WAIT`]). Each tick is a writer job; each of its dispatches is sent in a task of
//!   its own — HTTP with [`send`] under the request's own deadline, email by [`Mailer`] under its
//!   deadline — so a sink that fails or hangs never holds up another, and settled as a job;
//! - **`POST /_twiml-fallback/alerts/test`** ([`Server::alert_test`]): the core's test
//!   notifications, sent one after the other (PagerDuty's trigger before its resolve), answered
//!   with the core's verdict on each.
//!
//! A store error is logged (`incident-store-failed`) and the work is tried again later; nothing
//! here panics or stops `serve`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use twiml_fallback::admin::{AdminResponse, AlertTest};
use twiml_fallback::incident::{
    self, Alerting, Dispatch, EmailOutcome, Notice, ResolvedBy, SinkResult, TestResult, store_failed_line,
};

use super::smtp::Mailer;
use super::{Server, now_ms, send};

/// The longest the notifier sleeps without a wake (it then ticks, finding what is due).
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(60);

/// The shortest: a tick whose next time has already come but that had nothing to hand out (a
/// sink's later notification waiting for its earlier one, in flight) waits this long or for the
/// wake the in-flight one gives when it settles, rather than spinning.
pub(crate) const MIN_WAIT: Duration = Duration::from_secs(1);

/// How long the notifier waits after a store error before it tries again.
const STORE_RETRY: Duration = Duration::from_secs(5);

/// Incidents as `serve` holds them: the core's rules, the relay email goes through, and the
/// notifier's wake.
pub(crate) struct Notifications {
    alerting: Arc<Alerting>,
    mailer: Option<Mailer>,
    wake: Notify,
}

impl Notifications {
    pub(crate) fn new(alerting: Alerting, mailer: Option<Mailer>) -> Self {
        Notifications {
            alerting: Arc::new(alerting),
            mailer,
            wake: Notify::new(),
        }
    }

    /// Wakes the notifier (or makes its next wait return at once, when it is busy).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }
}

/// How long to sleep for a tick that says to come back at `next_at`, at `now`.
fn wait_for(next_at: Option<u64>, now: u64) -> Duration {
    next_at
        .map_or(MAX_WAIT, |at| Duration::from_millis(at.saturating_sub(now)))
        .clamp(MIN_WAIT, MAX_WAIT)
}

impl Server {
    /// Files a verified fallback notice with its incident: a writer job like the entry's own —
    /// sent with it, so both share one commit (the caller waits for that commit, as for the
    /// entry: that bounds the jobs in flight by the connections, however large the flood), under
    /// the core's `STORE_DEADLINE`. The notifications themselves go out later, from the
    /// notifier, which this wakes when the notice opened an incident.
    pub(crate) async fn file_notice(&self, notice: Notice) {
        let Some(inbox) = &self.inbox else {
            // Incidents live in the inbox's database: said once at start, not per request.
            return;
        };
        let alerting = Arc::clone(&self.alerts.alerting);
        let now = now_ms();
        let recorded = tokio::time::timeout(
            twiml_fallback::inbox::STORE_DEADLINE,
            inbox.run(move |sql| alerting.record(sql, &notice, now)),
        )
        .await
        .unwrap_or(Err(twiml_fallback::inbox::StoreError::TimedOut));
        match recorded {
            Ok(recorded) => {
                if let Some(line) = &recorded.line {
                    self.write_line(line);
                }
                if recorded.wake {
                    self.alerts.wake();
                }
            }
            Err(error) => self.write_line(&store_failed_line(&error)),
        }
    }

    /// Resolves `origin`'s open incident, in the background: its primary answered a recovery.
    pub(crate) fn primary_answered(self: &Arc<Self>, origin: String) {
        if self.inbox.is_none() {
            return;
        }
        let server = Arc::clone(self);
        tokio::spawn(async move {
            let Some(inbox) = &server.inbox else {
                return;
            };
            let now = now_ms();
            match inbox
                .run(move |sql| incident::primary_answered(sql, &origin, ResolvedBy::Recovery, now))
                .await
            {
                Ok(Some(line)) => {
                    server.write_line(&line);
                    server.alerts.wake();
                }
                Ok(None) => {}
                Err(error) => server.write_line(&store_failed_line(&error)),
            }
        });
    }

    /// Wakes the notifier: replay resolved an incident.
    pub(crate) fn wake_notifier(&self) {
        self.alerts.wake();
    }

    /// The notifier, for as long as `serve` runs (nothing without an inbox: no incidents).
    pub(crate) async fn notify_forever(self: Arc<Self>) {
        if self.inbox.is_none() {
            return;
        }
        loop {
            let wait = self.notify_now().await;
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.alerts.wake.notified() => {}
            }
        }
    }

    /// Ticks until a tick hands out nothing, starting a task for each notification; how long to
    /// wait before the next tick.
    async fn notify_now(self: &Arc<Self>) -> Duration {
        let Some(inbox) = &self.inbox else {
            return MAX_WAIT;
        };
        loop {
            let alerting = Arc::clone(&self.alerts.alerting);
            let now = now_ms();
            let tick = match inbox.run(move |sql| alerting.tick(sql, now)).await {
                Ok(tick) => tick,
                Err(error) => {
                    self.write_line(&store_failed_line(&error));
                    return STORE_RETRY;
                }
            };
            for line in &tick.lines {
                self.write_line(line);
            }
            if tick.dispatches.is_empty() {
                return wait_for(tick.next_at, now_ms());
            }
            for dispatch in tick.dispatches {
                tokio::spawn(Arc::clone(self).deliver(dispatch));
            }
        }
    }

    /// Sends one notification and settles it; wakes the notifier for what may follow (the
    /// sink's next notification, a retry).
    async fn deliver(self: Arc<Self>, dispatch: Dispatch) {
        let Some(inbox) = &self.inbox else {
            return;
        };
        let sent = self.send_notification(&dispatch.send).await;
        let alerting = Arc::clone(&self.alerts.alerting);
        let now = now_ms();
        match inbox
            .run(move |sql| alerting.settle(sql, &dispatch, sent.outcome(), now))
            .await
        {
            Ok(line) => self.write_line(&line),
            // The claim's lease runs out and it is tried again: at least once, never lost.
            Err(error) => self.write_line(&store_failed_line(&error)),
        }
        self.alerts.wake();
    }

    /// Sends what the core built: an HTTP request as it is, an email through the relay.
    async fn send_notification(&self, notification: &incident::Send) -> SinkResult {
        match notification {
            incident::Send::Http(request) => SinkResult::Http(send(&self.client, request).await),
            incident::Send::Email(email) => SinkResult::Email(match &self.alerts.mailer {
                Some(mailer) => mailer.send(email).await,
                // The core builds email only when serve said it can send it (a relay is set).
                None => EmailOutcome::Permanent("this serve has no SMTP relay ([alerts.smtp] url)".to_owned()),
            }),
        }
    }

    /// `POST /_twiml-fallback/alerts/test`, in a task of its own: should the caller go away, a
    /// PagerDuty trigger still gets its resolve.
    pub(crate) async fn alert_test(self: &Arc<Self>, test: AlertTest) -> AdminResponse {
        let server = Arc::clone(self);
        tokio::spawn(async move { server.run_alert_test(test).await })
            .await
            .unwrap_or_else(|_| AdminResponse::error(http::StatusCode::INTERNAL_SERVER_ERROR, "the alert test stopped"))
    }

    async fn run_alert_test(&self, test: AlertTest) -> AdminResponse {
        let account = match &self.inbox {
            Some(inbox) => {
                let requested = test.account_sid.clone();
                match inbox
                    .run(move |sql| incident::test_account(sql, requested.as_deref()))
                    .await
                {
                    Ok(account) => account,
                    Err(error) => {
                        self.write_line(&store_failed_line(&error));
                        test.account_sid
                    }
                }
            }
            None => test.account_sid,
        };
        let alerting = &self.alerts.alerting;
        let mut results = Vec::new();
        for dispatch in alerting.test_dispatches(account.as_deref(), now_ms()) {
            results.push(match dispatch {
                Ok(dispatch) => {
                    let sent = self.send_notification(&dispatch.send).await;
                    Alerting::test_result(&dispatch, sent.outcome())
                }
                Err((sink, why)) => TestResult::not_sent(sink, why),
            });
        }
        alerting.test_answer(&results)
    }
}

#[cfg(test)]
mod tests;
