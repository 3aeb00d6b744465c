//! TwiML: a typed model and writer for the documents a fallback answers with, a validator that
//! reads documents the way Twilio does, and the rules for judging a webhook's whole HTTP answer.
//!
//! - [`Response`] and its verbs ([`Say`], [`Play`], [`Pause`], [`Redirect`], [`Hangup`],
//!   [`Reject`], [`Message`]) render with [`Response::to_xml`]: UTF-8, the XML declaration, every
//!   value escaped (see the writer's rules below), emoji intact, characters XML forbids dropped.
//! - [`validate`] checks raw bytes for a [`TargetChannel`] and reports [`Diagnostic`]s with the
//!   Twilio error code, a message and a line and column.
//! - [`AnswerRules::check`] judges status, Content-Type, size and body together, as Twilio does
//!   with a webhook's answer: TwiML (served as XML or HTML), plain text, audio on calls, a
//!   messaging `204` — and says when TwiML needs its Content-Type corrected.
//!
//! Writer rules: `&`, `<`, `>` are always escaped and `"` in attribute values; carriage returns
//! (and tabs and newlines in attribute values) are written as character references so parsers
//! don't normalise them away; C0 control characters other than tab, newline and carriage return,
//! and U+FFFE/U+FFFF, are dropped, because XML 1.0 cannot carry them in any form.
//!
//! # Example
//!
//! ```
//! use twiml_fallback::twiml::{validate, Message, Response, Say, TargetChannel};
//!
//! // The default use: one verb.
//! let sms = Response::new().message("Sorry, we're having trouble. 🍰 Try again soon.");
//! assert_eq!(
//!     sms.to_xml(),
//!     r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>Sorry, we're having trouble. 🍰 Try again soon.</Message></Response>"#
//! );
//!
//! // A customised one, with attributes; markup in values is escaped, never interpreted.
//! let voice = Response::new()
//!     .verb(Say::new("Press <1> for R&D").voice("Polly.Joanna").language("en-US"))
//!     .to_xml();
//! assert!(voice.contains(r#"<Say voice="Polly.Joanna" language="en-US">Press &lt;1&gt; for R&amp;D</Say>"#));
//! assert!(validate(voice.as_bytes(), TargetChannel::Voice).is_valid());
//!
//! // What the validator says about a broken answer.
//! let report = validate(b"<Response><Message>Hi</Message><Say>Bye</Say></Response>", TargetChannel::Messaging);
//! assert_eq!(report.first_error().unwrap().to_string(),
//!            "1:32: error[12200]: <Say> is a voice verb; a messaging response can only use <Message> and <Redirect>");
//! # let _ = Message::new("");
//! ```
mod answer;
mod model;
mod outline;
mod rebase;
mod schema;
mod validate;
mod writer;

pub use answer::{AUDIO_MEDIA_TYPES, Accepted, AnswerRules, ContentKind, ContentPolicy, Rejection, TWIML_CONTENT_TYPE};
pub use model::*;
pub use outline::{Action, outline};
pub use rebase::resolve_relative_urls;
pub use validate::{
    Diagnostic, MAX_DIAGNOSTICS, MAX_DOCUMENT_BYTES, Report, Severity, Strictness, TargetChannel, validate,
    validate_without_fast_path,
};
pub use writer::{XML_DECLARATION, escape_attribute, escape_text, is_xml_char};
