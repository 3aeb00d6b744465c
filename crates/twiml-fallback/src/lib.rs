//! Keep Twilio numbers answering when the webhook app behind them fails.
//!
//! Twilio requests a number's webhook and expects TwiML back within 15 seconds. When the app
//! errors, is slow, answers 4xx/5xx or returns TwiML Twilio cannot execute (a lowercase
//! `<response>` is enough), a caller hears Twilio's stock error and an SMS sender gets nothing.
//! This crate is the core shared by the project's three shells — the tower layer, the Cloudflare
//! Worker and the `twiml-fallback` CLI — and is sans-I/O: it compiles to `wasm32-unknown-unknown`
//! and needs no async runtime (the tower middleware, behind the default `tower` feature, is the
//! only part that touches HTTP types beyond `http`).
//!
//! | module | what it does |
//! |---|---|
//! | [`twiml`] | a typed model and writer for fallback TwiML; a validator that reads bytes the way Twilio does (11750, 12100, 12102, 12200) |
//! | [`webhook`] | Twilio's webhook parameters, the channel (voice or messaging), the fallback notice (`ErrorCode`, `ErrorUrl`) |
//! | [`error_code`] | Twilio's error codes for webhook failures |
//! | [`signature`] | `X-Twilio-Signature`: compute, verify (every SDK rule), rebuild the signed URL behind proxies |
//! | [`config`] | the fallback configuration (TOML or JSON): answers per channel and number, alerts, recovery |
//! | [`edge`] | the fallback endpoint as a pure decision: request in, response and effects out |
//! | [`inbox`] | the outage inbox: which requests are kept, the entry and its JSON, the one SQLite schema and its statements |
//! | [`numbers`] | who answers each number as Twilio routes it (SIP trunk, Application, Messaging Service, the number), how to protect it, how to probe its fallback |
//! | [`admin`] | the admin API under `/_twiml-fallback/`: routing, token authentication, JSON |
//! | [`url`] | splitting URLs into scheme, user info, host, port, path, query and fragment, borrowed and without allocating; `is_absolute_http_url` |
//! | `layer` (feature `tower`, default) | tower middleware: every failure of a webhook app becomes fallback TwiML; `X-Twilio-Signature` verification |
//!
//! # Example
//!
//! ```
//! use twiml_fallback::config::Config;
//! use twiml_fallback::twiml::{validate, Response, Say, TargetChannel};
//! use twiml_fallback::Channel;
//!
//! // What a caller hears when the app fails, from the embedded defaults…
//! let config = Config::default();
//! let twiml = config.fallback(Some(Channel::Voice), Some("+14155550199")).twiml;
//! assert!(validate(twiml.as_bytes(), TargetChannel::Voice).is_valid());
//!
//! // …or built by hand.
//! let custom = Response::new().verb(Say::new("We'll be right back.").voice("Polly.Joanna")).to_xml();
//! assert!(validate(custom.as_bytes(), TargetChannel::Voice).is_valid());
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod admin;
pub mod config;
pub mod edge;
pub mod error_code;
pub mod inbox;
pub mod incident;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod layer;
pub mod numbers;
pub mod replay;
pub mod signature;
pub mod twiml;
pub mod url;
pub mod webhook;

pub use webhook::Channel;
