//! Tower middleware that turns every failure of a Twilio webhook app into valid fallback TwiML.
//!
//! Add [`FallbackLayer`] to an axum `Router` (or any tower `Service<http::Request<_>>`) and Twilio
//! never sees a failure from it again. Each of these becomes `200 OK`,
//! `Content-Type: text/xml; charset=utf-8`, with the configured fallback TwiML for the request's
//! channel and called number (`<Say>`/`<Play>` for a call, `<Message>` for an SMS):
//!
//! - a panic in the handler's `call`, in its future, or **in its response body stream**;
//! - an `Err` from the inner service, or an error from the response body mid-stream;
//! - no answer within the deadline (default 12 s; Twilio gives up at 15 s);
//! - a 4xx or 5xx status (configurable);
//! - an answer Twilio would reject: no Content-Type or one Twilio does not run (12300), empty
//!   body (11770), more than 64 KB (11750), malformed XML (12100, e.g. an HTML error page), wrong
//!   root (12102, e.g. a lowercase `<response>`), schema errors for the channel (12200; strictness
//!   configurable).
//!
//! **Whatever Twilio runs passes**, judged by the core's [`AnswerRules`](crate::twiml::AnswerRules):
//! TwiML served as `text/xml`, `application/xml` or `text/html`; plain text (`text/plain`: the SMS
//! reply, or read aloud on a call); audio on a call; a messaging `204`; a 3xx (Twilio follows
//! redirects). These pass through **unchanged** — status, headers and bytes — with one
//! correction: valid TwiML served as `text/plain` (an axum `String`) or `text/html` is served as
//! `text/xml; charset=utf-8`, so Twilio runs what the app meant instead of sending the raw XML as
//! the SMS; a warning is logged once per path. Stricter judging is opt-in:
//! [`FallbackLayer::content_policy`].
//!
//! The layer reads the request body (up to 64 KB; a larger one is passed on untouched), parses
//! Twilio's parameters, hands the app the same bytes, and puts the parameters into the request's
//! extensions as [`TwilioParams`] (an axum extractor with the `axum` feature). The channel comes
//! from `CallSid` (voice) or `MessageSid`/`SmsSid`/`SmsMessageSid` (messaging), or from
//! [`FallbackLayer::channel`]; GET webhooks are read from the query string. A request of unknown
//! channel falls back to `<Response/>`, valid in both channels.
//!
//! Every fallback emits one `tracing` warning (target `twiml_fallback`) with the cause, the Twilio
//! error code Twilio would have logged, the channel, the Call/Message SID, the path and the elapsed
//! time; [`FallbackLayer::on_fallback`] receives the same as a [`FallbackEvent`]; and the answer
//! carries `x-twiml-fallback: <cause>` (unless turned off). A passed-through answer carries no such
//! header.
//!
//! [`ValidateTwilioSignatureLayer`] verifies `X-Twilio-Signature` and answers 403 otherwise; put it
//! outside the fallback layer so forged requests get 403, not friendly TwiML.
//!
//! What the app failed to handle need not be lost: [`FallbackLayer::capture`] hands each request
//! answered with the fallback to a [`CaptureSink`] — `HttpCaptureSink` (feature `capture-http`)
//! posts it to a fallback endpoint's outage inbox — off the response path (see [`CaptureSink`]).
//!
//! # Example
//!
//! ```
//! use axum::{routing::post, Router};
//! use twiml_fallback::layer::FallbackLayer;
//!
//! async fn sms() -> String {
//!     // axum serves a String as text/plain; the layer serves this valid TwiML as text/xml.
//!     "<Response><Message>Order 42 is ready</Message></Response>".into()
//! }
//!
//! // Default: embedded answers, 12 s deadline, schema validation, x-twiml-fallback header.
//! let app: Router = Router::new().route("/sms", post(sms)).layer(FallbackLayer::new());
//! ```
//!
//! A customised one:
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::post, Router};
//! use twiml_fallback::config::Config;
//! use twiml_fallback::layer::FallbackLayer;
//! use twiml_fallback::twiml::{ContentPolicy, Strictness};
//! use twiml_fallback::Channel;
//!
//! # async fn voice() -> &'static str { "" }
//! let config = Config::from_toml(r#"
//!     [voice]
//!     say = "Sorry, we're having trouble. Please call back in a few minutes."
//!     voice = "Polly.Joanna"
//! "#).unwrap();
//! let layer = FallbackLayer::new()
//!     .config(config)
//!     .channel(Channel::Voice)                 // every route behind it is a voice webhook
//!     .deadline(Duration::from_secs(10))
//!     .strictness(Strictness::WellFormed)      // only parse errors and wrong roots fall back
//!     .content_policy(ContentPolicy::TwimlOnly) // a plain-text answer is a bug in this app
//!     .failure_status(|status| status.is_server_error())
//!     .on_fallback(|event| eprintln!("fallback: {} ({})", event.cause, event.error_code));
//! let app: Router = Router::new().route("/voice", post(voice)).layer(layer);
//! ```

pub mod body;
mod capture;
mod event;
pub mod future;
#[allow(clippy::module_inception)] // tower-http's layout: layer.rs, service.rs, future.rs, body.rs
mod layer;
mod params;
mod requested_uri;
mod service;
mod signature;
mod timer;

pub use body::RequestBody;
#[cfg(feature = "capture-http")]
#[cfg_attr(docsrs, doc(cfg(feature = "capture-http")))]
pub use capture::HttpCaptureSink;
pub use capture::{CAPTURE_QUEUE, CaptureSink};
pub use event::{FallbackCause, FallbackEvent};
pub use layer::{DEFAULT_DEADLINE, DEFAULT_REQUEST_BODY_LIMIT, FALLBACK_HEADER, FallbackLayer};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use params::MissingTwilioParams;
pub use params::TwilioParams;
pub use service::Fallback;
pub use signature::{ValidateTwilioSignature, ValidateTwilioSignatureLayer};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use timer::TokioTimer;
pub use timer::{Sleep, Timer};

#[cfg(test)]
mod tests;
