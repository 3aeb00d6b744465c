//! Incident notifications in the Worker: the core's outbox ([`twiml_fallback::incident`]) driven
//! from the inbox object's alarm, each notification sent with the Workers `fetch` or the
//! `send_email` binding.
//!
//! The core decides everything — which incident a notice opens or adds to, when one resolves,
//! which sink is told what and when, what an answer means, when to try again; this file only runs
//! its statements through the object's [`Driver`], sends what [`Alerting::tick`] hands out and
//! gives each outcome back to [`Alerting::settle`]:
//!
//! - an HTTP notification (the webhook, PagerDuty, a text through the Messages API) with the
//!   Worker's one send helper ([`crate::send`]: `fetch` with `redirect: "manual"`, a
//!   `worker::Delay` deadline of the request's timeout);
//! - an email with the `send_email` binding [`EMAIL_BINDING`]: one `EmailMessage` per recipient
//!   (the envelope sender and the core's MIME text, which has its `Message-ID`), within
//!   [`NOTIFY_TIMEOUT`]. Cloudflare only delivers to addresses verified in Email Routing (a
//!   refused recipient is a permanent failure, not retried); under `wrangler dev` the binding
//!   writes each message to an `.eml` file and logs `Email: PATH` instead of sending (one file
//!   per recipient, its `Message-ID` replaced by the simulator's own). `EmailMessage` comes from
//!   a dynamic `import("cloudflare:email")`, so the Worker also starts where that module is
//!   missing (raw `workerd serve`).
//!
//! One alarm invocation runs at most [`MAX_ROUNDS`] ticks and [`MAX_SENDS`] notifications (the
//! platform's subrequest limit is shared with replay's pass); what is left is due again a second
//! later. The notifications of one tick go out concurrently, so a sink that hangs costs the others
//! nothing but its own deadline.
//!
//! `POST /_twiml-fallback/alerts/test` ([`test`]) sends the core's test notifications one after
//! another and answers each sink's result: in the object (the account from its last incident
//! unless the request names one), or, without the `INBOX` binding, in the Worker itself (the
//! account only from the request).

use futures_util::future::join_all;
use twiml_fallback::admin::AdminResponse;
use twiml_fallback::config::Config;
use twiml_fallback::edge::{LogLevel, LogLine};
use twiml_fallback::incident::{
    self, Alerting, Email, EmailOutcome, EmailSupport, NOTIFY_TIMEOUT, SinkResult, TestResult,
};
use twiml_fallback::replay::TwilioApi;
use twiml_fallback::signature::SignatureVerifier;
use worker::js_sys::Promise;
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{EmailMessage, Env};

use crate::inbox::Driver;
use crate::{now_ms, with_deadline, write};

/// The `send_email` binding alert emails go through (`[[send_email]]` in wrangler.toml).
pub(crate) const EMAIL_BINDING: &str = "ALERT_EMAIL";

/// Why email is not sent without the binding (in the core's `alerts-config` line).
const NO_EMAIL_BINDING: &str = "no ALERT_EMAIL send_email binding";

/// Why texts are not sent when `TWILIO_API_BASE` or the API key cannot be used.
const BAD_API: &str = "TWILIO_API_BASE (an https URL) or TWILIO_API_KEY and TWILIO_API_SECRET (both or neither) cannot be used: alert texts are not sent";

/// The most ticks one alarm invocation runs.
pub(crate) const MAX_ROUNDS: usize = 4;

/// The most notifications one alarm invocation sends (each is a subrequest).
pub(crate) const MAX_SENDS: usize = 32;

/// How soon notifications run again when an invocation stopped on its limits.
const AGAIN_MS: u64 = 1000;

/// How soon they run again when the store failed.
pub(crate) const AFTER_STORE_FAILURE_MS: u64 = 60_000;

// `EmailMessage` from `cloudflare:email`, imported when the first email is sent rather than with
// the module: `worker::EmailMessage::new` would import it statically, and raw `workerd serve`
// (the load and robustness runs) has no `cloudflare:email` (its `cloudflare-internal:email` is the
// platform's, or wrangler's), so the Worker would not even start there.
#[wasm_bindgen(
    inline_js = "export function email_message(from, to, raw) { return import('cloudflare:email').then((email) => new email.EmailMessage(from, to, raw)); }"
)]
extern "C" {
    /// A promise of `new EmailMessage(from, to, raw)`.
    #[wasm_bindgen(catch)]
    fn email_message(from: &str, to: &str, raw: &str) -> Result<Promise, JsValue>;
}

/// The incident rules for this Worker: the configuration's `[alerts]`, texts through
/// `TWILIO_API_BASE` with the auth token or the API key, email when the `ALERT_EMAIL` binding
/// exists; and, when the Messages API cannot be used, the line saying texts are off.
pub(crate) fn alerting(env: &Env, config: &Config, verifier: &SignatureVerifier) -> (Alerting, Option<LogLine>) {
    let email = if env.send_email(EMAIL_BINDING).is_ok() {
        EmailSupport::Available
    } else {
        EmailSupport::Missing(NO_EMAIL_BINDING)
    };
    match crate::replay::twilio_api(env) {
        Ok(api) => (Alerting::new(config, verifier, api, email), None),
        Err(error) => {
            // No token and no API key: the core gives up every text, saying it has nothing to
            // text with; this line says why.
            let alerting = Alerting::new(
                config,
                &SignatureVerifier::from_tokens(std::iter::empty::<String>()),
                TwilioApi::default(),
                email,
            );
            let line = alerting.is_configured().then(|| {
                LogLine::new(
                    LogLevel::Error,
                    &serde_json::json!({
                        "event": "alerts-config",
                        "texts": "off",
                        "reason": BAD_API,
                        "error": error,
                    }),
                )
            });
            (alerting, line)
        }
    }
}

/// Sends one notification as the core built it.
async fn send(env: &Env, send: &incident::Send) -> SinkResult {
    match send {
        incident::Send::Http(request) => SinkResult::Http(crate::send(request).await),
        incident::Send::Email(email) => SinkResult::Email(
            with_deadline(send_email(env, email), NOTIFY_TIMEOUT)
                .await
                .unwrap_or_else(|| EmailOutcome::Transient(format!("timed out after {} s", NOTIFY_TIMEOUT.as_secs()))),
        ),
    }
}

/// Sends `email` to each recipient through the `send_email` binding: `Sent` when every one was
/// accepted; else the first transient failure (tried again), or the first recipient refused for
/// good (not allowed by the binding, or suppressed).
async fn send_email(env: &Env, email: &Email) -> EmailOutcome {
    let binding = match env.send_email(EMAIL_BINDING) {
        Ok(binding) => binding,
        Err(error) => return EmailOutcome::Permanent(format!("{NO_EMAIL_BINDING}: {error}")),
    };
    let mut transient = None;
    let mut permanent = None;
    for to in &email.to {
        let message = match email_message(&email.envelope_from, to, &email.mime) {
            Ok(promise) => JsFuture::from(promise).await,
            Err(error) => Err(error),
        };
        let sent = match message {
            Ok(message) => binding
                .send(message.unchecked_ref::<EmailMessage>())
                .await
                .map(drop)
                .map_err(worker::Error::from),
            Err(error) => Err(worker::Error::from(error)),
        };
        if let Err(error) = sent {
            let reason = format!("to {to}: {error}");
            match error {
                worker::Error::EmailRecipientNotAllowed(_) | worker::Error::EmailRecipientSuppressed(_) => {
                    permanent.get_or_insert(reason);
                }
                _ => {
                    transient.get_or_insert(reason);
                }
            }
        }
    }
    match (transient, permanent) {
        (Some(reason), _) => EmailOutcome::Transient(reason),
        (None, Some(reason)) => EmailOutcome::Permanent(reason),
        (None, None) => EmailOutcome::Sent,
    }
}

/// Runs the notifications that are due — quiet resolves, reminders, sends and their outcomes —
/// until none is left or this invocation's limits are reached; writes every line. When to run
/// them again (`None`: only when a notice comes).
pub(crate) async fn notify(alerting: &Alerting, sql: &mut Driver<'_>, env: &Env) -> Option<u64> {
    let mut sends = 0;
    for _ in 0..MAX_ROUNDS {
        let tick = match alerting.tick(sql, now_ms()) {
            Ok(tick) => tick,
            Err(error) => {
                write(&incident::store_failed_line(&error));
                return Some(now_ms().saturating_add(AFTER_STORE_FAILURE_MS));
            }
        };
        for line in &tick.lines {
            write(line);
        }
        if tick.dispatches.is_empty() {
            return tick.next_at;
        }
        let sent = join_all(tick.dispatches.iter().map(|dispatch| send(env, &dispatch.send))).await;
        for (dispatch, sent) in tick.dispatches.iter().zip(&sent) {
            match alerting.settle(sql, dispatch, sent.outcome(), now_ms()) {
                Ok(line) => write(&line),
                Err(error) => write(&incident::store_failed_line(&error)),
            }
        }
        sends += tick.dispatches.len();
        if sends >= MAX_SENDS {
            break;
        }
    }
    Some(now_ms().saturating_add(AGAIN_MS))
}

/// `alerts test`: a test notification through every configured sink, one after another, texts
/// from `account`; the core's answer with each sink's result.
pub(crate) async fn test(alerting: &Alerting, env: &Env, account: Option<&str>) -> AdminResponse {
    let mut results = Vec::new();
    for dispatch in alerting.test_dispatches(account, now_ms()) {
        results.push(match dispatch {
            Ok(dispatch) => {
                let sent = send(env, &dispatch.send).await;
                Alerting::test_result(&dispatch, sent.outcome())
            }
            Err((sink, why)) => TestResult::not_sent(sink, why),
        });
    }
    alerting.test_answer(&results)
}
