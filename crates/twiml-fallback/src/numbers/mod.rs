//! Who answers each of an account's numbers, the way Twilio routes them; how to protect each; how
//! to probe each fallback. The rules of `twiml-fallback numbers`, over data read from Twilio's
//! REST APIs, so the CLI only performs the requests.
//!
//! - [`resources`]: the REST resources as Twilio lists them ([`IncomingNumber`], [`Application`],
//!   [`MessagingService`] with its [`ServiceNumber`]s, [`Trunk`]), which [`Api`] each lives on, the
//!   [`Listing`]s to read and how pages link ([`next_page`], only on the listing's own base);
//! - [`Account::route`]: Twilio's precedence per channel (a SIP trunk over a voice Application
//!   over the number; a Messaging Service, unless it defers to the number, then a messaging
//!   Application, then the number), the [`Status`] and the [`Warning`]s;
//! - [`plan`]: `numbers set` as [`Change`]s, each shared resource once, naming every number it
//!   covers;
//! - [`probe_targets`]: the distinct fallbacks to probe, and each probe's parameters, marked
//!   with [`PROBE_PARAM`](crate::webhook::PROBE_PARAM).
//!
//! # Example
//!
//! ```
//! use twiml_fallback::Channel;
//! use twiml_fallback::numbers::{Account, Expect, IncomingNumber, RouterKind, Status, Trunk, Warning, Webhooks};
//!
//! let number = IncomingNumber {
//!     sid: "PN1".into(),
//!     phone_number: "+14155550101".into(),
//!     webhooks: Webhooks { voice_url: Some("https://app.example.com/voice".into()), ..Default::default() },
//!     trunk_sid: Some("TK1".into()),
//!     ..Default::default()
//! };
//! let trunk = Trunk { sid: "TK1".into(), disaster_recovery_url: Some("http://fallback.example.com/voice".into()), ..Default::default() };
//! let account = Account { numbers: vec![number.clone()], trunks: vec![trunk], ..Default::default() };
//!
//! // The trunk wins over the number's own voice URL; its disaster-recovery URL is the fallback.
//! let route = account.route(&number, Channel::Voice, &Expect::default());
//! assert_eq!((route.router.kind, route.status), (RouterKind::Trunk, Status::Protected));
//! assert_eq!(route.warnings, [Warning::PlainHttp { which: "fallback" }]);
//! ```

pub mod resources;

mod plan;
mod probe;
mod route;

pub use plan::{Change, Fallback, Plan, Refusal, Selection, Wanted, plan, update_error_hint};
pub use probe::{PROBE_BUDGET, PROBE_ERROR_CODE, PROBE_FROM, ProbeOutcome, ProbeTarget, probe_id, probe_targets};
pub use resources::{
    Account, Api, Application, IncomingNumber, Listing, MessagingService, Resource, ServiceNumber, Trunk, Webhooks,
    next_page, sid_for_path,
};
pub use route::{Expect, NumberRoutes, Route, Router, RouterKind, Status, Warning, channel_label};

#[cfg(test)]
mod tests;
