//! The fallback configuration shared by the tower layer, the Worker and the CLI: what callers hear
//! and senders receive (per channel, per called number), and where the fallback endpoint sends
//! alerts and may try to recover the primary.
//!
//! One schema, written in TOML or JSON. Every key is optional: an empty document gives the embedded
//! defaults. A document with mistakes is refused with **every** problem listed by path, so one
//! deploy fixes them all.
//!
//! ```toml
//! [voice]                 # what a caller hears: one of say, play or twiml
//! say = "An application error has occurred. Please call back later."
//! voice = "Polly.Joanna"  # optional, with say
//! language = "en-US"      # optional, with say
//! loop = 1                # optional, with say or play (0 = until the caller hangs up)
//! # play = "https://example.com/sorry.mp3"
//! # twiml = "<Response><Say>…</Say><Hangup/></Response>"   (validated as voice TwiML)
//!
//! [messaging]             # what an SMS sender receives: message (and/or media), or twiml
//! message = "We're sorry. We are currently experiencing difficulties. Please try again later."
//! # media = ["https://example.com/sorry.png"]
//! # twiml = "<Response/>"  (no reply at all)
//!
//! [numbers."+14155550199".voice]     # per called number (the webhook's To), E.164;
//! say = "Lo sentimos, tenemos problemas técnicos."   # replaces [voice] for that number
//! language = "es-ES"
//!
//! [alerts]                # one incident per failing primary: told on open and on resolve
//! webhook_url = "https://hooks.example.com/services/T000/B000/XXXX"   # Slack-compatible `text`
//! email = ["ops@example.com"]              # with [alerts.smtp] (serve) or ALERT_EMAIL (Worker)
//! sms = ["+14155550100"]                   # on-call phones, through Twilio's Messages API
//! sms_from = "+14155550199"                # or messaging_service_sid = "MG…"
//! pagerduty_routing_key = "0123456789abcdef0123456789abcdef"   # Events API v2
//! resolve_after_seconds = 900              # resolved after this long without a notice
//! remind_minutes = 60                      # optional: a reminder while it stays open
//! include_bodies = false                   # never quote message bodies unless set
//! [alerts.smtp]
//! url = "smtp://smtp.example.com:587"      # STARTTLS; smtps:// for implicit TLS
//! from = "twiml-fallback <alerts@example.com>"
//!
//! [recovery]              # the fallback endpoint re-requests the failed primary (ErrorUrl)
//! allow_hosts = ["app.example.com", "*.example.org", "staging.example.com:8443"]
//! timeout_ms = 4000       # 100..=10000
//! allow_http = false      # https only unless set
//! ```
//!
//! A number's `voice` or `messaging` section replaces the top-level one for calls or messages to
//! that number (it is not merged field by field), so it must give its own `say`/`play`/`twiml` or
//! `message`/`media`/`twiml`.
//!
//! Every answer is rendered to TwiML and validated once, at load: the endpoint only copies bytes.
//!
//! # Example
//!
//! ```
//! use twiml_fallback::config::Config;
//! use twiml_fallback::Channel;
//!
//! // Embedded defaults.
//! let config = Config::default();
//! let sms = config.fallback(Some(Channel::Messaging), Some("+14155550100"));
//! assert!(sms.twiml.contains("<Message>We're sorry. We are currently experiencing difficulties."));
//!
//! // A customised one, with a Spanish line for one number.
//! let config = Config::from_toml(r#"
//!     [voice]
//!     say = "Sorry, we're having trouble. Please call back in a few minutes."
//!     voice = "Polly.Joanna"
//!     [numbers."+14155550199".voice]
//!     say = "Lo sentimos, tenemos problemas técnicos."
//!     language = "es-ES"
//! "#).unwrap();
//! let spanish = config.fallback(Some(Channel::Voice), Some("+14155550199"));
//! assert!(spanish.twiml.contains(r#"<Say language="es-ES">Lo sentimos"#));
//!
//! // Mistakes are all reported, by path.
//! let errors = Config::from_toml(r#"
//!     [voice]
//!     say = ""
//!     [numbers."+1415".messaging]
//!     mesage = "typo"
//! "#).unwrap_err();
//! assert_eq!(errors.to_string(), "\
//! voice.say: empty
//! numbers.\"+1415\": not an E.164 phone number (+ and 8 to 15 digits, e.g. \"+14155550199\")
//! numbers.\"+1415\".messaging.mesage: unknown key (expected one of: message, media, twiml)
//! numbers.\"+1415\".messaging: needs message, media or twiml");
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::webhook::Channel;

mod allowlist;
mod loader;
mod render;
mod variables;

pub use allowlist::{HostRule, Recovery, RecoveryRefusal};
pub use variables::{VARIABLES, VariableKind, variables_in_use};

/// What a caller hears when nothing else can answer.
pub const DEFAULT_VOICE_SAY: &str = "An application error has occurred. Please call back later.";

/// What an SMS sender receives when nothing else can answer.
pub const DEFAULT_MESSAGING_MESSAGE: &str =
    "We're sorry. We are currently experiencing difficulties. Please try again later.";

/// The TwiML for a request whose channel is unknown: an empty `<Response/>`, valid in both
/// channels, which makes Twilio do nothing further (no speech, no reply).
pub const UNKNOWN_CHANNEL_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// Twilio's limit on an SMS body, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1600;

/// The longest recovery deadline accepted, leaving Twilio's 15 s budget room for the rest.
pub const MAX_RECOVERY_TIMEOUT_MS: u64 = 10_000;

/// The default recovery deadline.
pub const DEFAULT_RECOVERY_TIMEOUT_MS: u64 = 4000;

/// A loaded, validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    voice: Answer<VoiceContent>,
    messaging: Answer<MessagingContent>,
    numbers: BTreeMap<String, NumberAnswers>,
    alerts: Option<Alerts>,
    recovery: Option<Recovery>,
    inbox: InboxSettings,
    replay: ReplaySettings,
}

/// The default `[replay] min_interval_seconds`.
pub const DEFAULT_MIN_INTERVAL_SECONDS: u64 = 30;

/// The longest wait between two replay attempts of a number's queue (15 minutes).
pub const MAX_REPLAY_INTERVAL_SECONDS: u64 = 900;

/// The default `[replay] max_attempts`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 50;

/// The default `[replay] reply_window_minutes`.
pub const DEFAULT_REPLY_WINDOW_MINUTES: u64 = 60;

/// How kept messages are replayed to the app once it is back (`[replay]`).
///
/// Replay happens only to hosts `[recovery] allow_hosts` admits: without a `[recovery]` section
/// nothing is replayed (see [`crate::replay`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplaySettings {
    /// Deliver to this URL instead of each entry's `ErrorUrl` (`url`).
    pub url: Option<String>,
    /// The first wait between attempts of a number's queue, doubling after each failure up to
    /// [`MAX_REPLAY_INTERVAL_SECONDS`] (`min_interval_seconds`, 1–900, default 30).
    pub min_interval_seconds: u64,
    /// After this many failed attempts an entry is `failed` (`max_attempts`, 1–10,000, default 50).
    pub max_attempts: u32,
    /// Whether the app's replies are sent through Twilio's Messages API (`send_replies`, default
    /// true); when off they are kept with the entry, withheld.
    pub send_replies: bool,
    /// A reply to a message older than this is withheld (`reply_window_minutes`, 1–10,080,
    /// default 60).
    pub reply_window_minutes: u64,
    /// Once the app is back, this text goes by SMS to each caller who was missed within the
    /// reply window, once (`missed_call_sms`, ≤ 1600 characters).
    pub missed_call_sms: Option<String>,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        Self {
            url: None,
            min_interval_seconds: DEFAULT_MIN_INTERVAL_SECONDS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            send_replies: true,
            reply_window_minutes: DEFAULT_REPLY_WINDOW_MINUTES,
            missed_call_sms: None,
        }
    }
}

/// The default `[inbox] retention_days`.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// The default `[inbox] max_entries`.
pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;

/// How long the outage inbox keeps entries, and how many (`[inbox]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboxSettings {
    /// Entries received longer ago than this are purged (`retention_days`, 1–3650, default 30).
    pub retention_days: u32,
    /// Past this many stored entries, new ones are refused and logged (`max_entries`, default
    /// 100,000).
    pub max_entries: u64,
}

impl Default for InboxSettings {
    fn default() -> Self {
        Self {
            retention_days: DEFAULT_RETENTION_DAYS,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// A configured answer and its rendered TwiML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer<C> {
    /// What was configured.
    pub content: C,
    /// The TwiML document served (validated for the channel, ≤ 64 KB).
    pub twiml: String,
}

/// A voice answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoiceContent {
    /// `<Say>`.
    Say {
        /// The text spoken.
        text: String,
        /// `voice`, e.g. `Polly.Joanna`.
        voice: Option<String>,
        /// `language`, e.g. `en-US`.
        language: Option<String>,
        /// `loop`.
        loop_count: Option<u32>,
    },
    /// `<Play>`.
    Play {
        /// The audio URL.
        url: String,
        /// `loop`.
        loop_count: Option<u32>,
    },
    /// Raw TwiML, served as given.
    Twiml(String),
}

/// A messaging answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessagingContent {
    /// `<Message>`, with optional pictures.
    Message {
        /// The text (may be empty when media is given).
        text: String,
        /// `<Media>` URLs.
        media: Vec<String>,
    },
    /// Raw TwiML, served as given.
    Twiml(String),
}

/// The per-number overrides for one called number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumberAnswers {
    /// Replaces the top-level voice answer for this number.
    pub voice: Option<Answer<VoiceContent>>,
    /// Replaces the top-level messaging answer for this number.
    pub messaging: Option<Answer<MessagingContent>>,
}

/// Who is told about an incident (an outage of one primary), and how: every sink is optional and
/// any combination may be configured, but at least one must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alerts {
    /// A Slack-compatible webhook: JSON with a `text` field, on open and resolve.
    pub webhook_url: Option<String>,
    /// Email recipients (plain addresses).
    pub email: Vec<String>,
    /// On-call phones (E.164) texted through Twilio's Messages API.
    pub sms: Vec<String>,
    /// Who the texts come from (required with `sms`).
    pub sms_sender: Option<SmsSender>,
    /// The PagerDuty Events API v2 integration's routing key (32 characters).
    pub pagerduty_routing_key: Option<Secret>,
    /// Where PagerDuty events are sent ([`DEFAULT_PAGERDUTY_URL`] unless overridden, for tests).
    pub pagerduty_url: String,
    /// An incident resolves after this many seconds without a fallback notice for its origin.
    pub resolve_after_seconds: u64,
    /// While an incident is open, a reminder every this many minutes (`None`: no reminders).
    pub remind_minutes: Option<u64>,
    /// Whether notifications may quote the first kept message's body (off: counts only).
    pub include_bodies: bool,
    /// How email is sent: `[alerts.smtp]` (its `url` is `serve`'s; the Worker sends through its
    /// `ALERT_EMAIL` binding and uses only `from`).
    pub smtp: Option<Smtp>,
    /// The value of the retired `dedup_seconds` key, when a configuration still has it (it is
    /// read as `resolve_after_seconds` when that is not set; the shells warn at start).
    pub legacy_dedup_seconds: Option<u64>,
}

/// The default `[alerts] resolve_after_seconds`: a quarter of an hour without a fallback notice.
pub const DEFAULT_RESOLVE_AFTER_SECONDS: u64 = 900;

/// PagerDuty's Events API v2 endpoint.
pub const DEFAULT_PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Who alert texts come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmsSender {
    /// `sms_from`: a number of the account (E.164) or a short code.
    From(String),
    /// `messaging_service_sid`: a Messaging Service (`MG…`) that picks the sender.
    MessagingService(String),
}

/// A credential kept out of `Debug` output (and so out of logs).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl Secret {
    /// The value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// `[alerts.smtp]`: the SMTP relay `serve` sends email through, and the sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Smtp {
    /// The relay (`url`); `None` when only `from` is given (the Worker's case).
    pub url: Option<SmtpUrl>,
    /// The `From` header, as written (`alerts@example.com` or `Name <alerts@example.com>`).
    pub from: String,
    /// The address inside `from`: the envelope sender.
    pub from_address: String,
}

/// An SMTP relay: `smtp://[user@]host[:port]` (STARTTLS, required; port 587) or
/// `smtps://[user@]host[:port]` (implicit TLS; port 465). A loopback host over `smtp://` is
/// spoken to in plain text (a local relay, a test server). The password is never in the URL: it
/// comes from `TWIML_FALLBACK_SMTP_PASSWORD`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpUrl {
    /// How the connection is secured.
    pub security: SmtpSecurity,
    /// The host.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The user name to log in with (with the password from the environment).
    pub username: Option<String>,
}

/// How an SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// STARTTLS, required (`smtp://`).
    StartTls,
    /// TLS from the first byte (`smtps://`).
    ImplicitTls,
    /// No TLS: only for a loopback host (`smtp://localhost`, `smtp://127.0.0.1`).
    Plain,
}

impl SmtpSecurity {
    /// `starttls`, `tls` or `plain`.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpSecurity::StartTls => "starttls",
            SmtpSecurity::ImplicitTls => "tls",
            SmtpSecurity::Plain => "plain",
        }
    }
}

/// The environment variable holding the SMTP password.
pub const SMTP_PASSWORD_VARIABLE: &str = "TWIML_FALLBACK_SMTP_PASSWORD";

/// Where a fallback answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerSource<'a> {
    /// The top-level `[voice]` or `[messaging]` (or the embedded default).
    Default,
    /// `[numbers."<number>"]`.
    Number(&'a str),
    /// The channel is unknown: [`UNKNOWN_CHANNEL_TWIML`].
    UnknownChannel,
}

impl AnswerSource<'_> {
    /// `default`, `number` or `unknown-channel`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AnswerSource::Default => "default",
            AnswerSource::Number(_) => "number",
            AnswerSource::UnknownChannel => "unknown-channel",
        }
    }
}

/// The TwiML to answer with and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FallbackAnswer<'a> {
    /// The document.
    pub twiml: &'a str,
    /// Its origin.
    pub source: AnswerSource<'a>,
}

/// What [`Config::from_sources_or_defaults`] serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedConfig {
    /// The configuration to answer with.
    pub config: Config,
    /// Every problem in the sources, when `config` is not what they ask for (`None`: it is).
    pub errors: Option<ConfigErrors>,
    /// The [`VARIABLES`] `config` applies, in table order.
    pub variables: Vec<&'static str>,
}

/// One problem in a configuration document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Where: `numbers."+14155550199".voice.say`; empty for the document itself.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem in a configuration document, in document order; `Display` prints one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    fn single(message: String) -> Self {
        Self(vec![ConfigError {
            path: String::new(),
            message,
        }])
    }
}

/// The format of a configuration document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// TOML.
    Toml,
    /// JSON.
    Json,
}

impl Default for Config {
    /// The embedded defaults: [`DEFAULT_VOICE_SAY`] and [`DEFAULT_MESSAGING_MESSAGE`], no
    /// per-number answers, no alerts, no recovery.
    fn default() -> Self {
        let voice = VoiceContent::Say {
            text: DEFAULT_VOICE_SAY.to_owned(),
            voice: None,
            language: None,
            loop_count: None,
        };
        let messaging = MessagingContent::Message {
            text: DEFAULT_MESSAGING_MESSAGE.to_owned(),
            media: Vec::new(),
        };
        Self {
            voice: Answer {
                twiml: render::render_voice(&voice),
                content: voice,
            },
            messaging: Answer {
                twiml: render::render_messaging(&messaging),
                content: messaging,
            },
            numbers: BTreeMap::new(),
            alerts: None,
            recovery: None,
            inbox: InboxSettings::default(),
            replay: ReplaySettings::default(),
        }
    }
}

impl Config {
    /// Loads a TOML document.
    pub fn from_toml(text: &str) -> Result<Self, ConfigErrors> {
        Self::parse(text, Format::Toml)
    }

    /// Loads a JSON document.
    pub fn from_json(text: &str) -> Result<Self, ConfigErrors> {
        Self::parse(text, Format::Json)
    }

    /// Loads a document in either format: JSON when it starts with `{`, TOML otherwise.
    pub fn from_str_auto(text: &str) -> Result<Self, ConfigErrors> {
        let format = if text.trim_start().starts_with('{') {
            Format::Json
        } else {
            Format::Toml
        };
        Self::parse(text, format)
    }

    /// Loads a document in `format`.
    pub fn parse(text: &str, format: Format) -> Result<Self, ConfigErrors> {
        Self::from_value(&loader::document(text, format)?)
    }

    /// Loads a document (TOML or JSON, or none for the defaults) with simple per-field settings
    /// applied over it — the [`VARIABLES`], looked up with `variable` (a Worker's `[vars]`, the
    /// environment). A variable that sets a voice or messaging answer replaces the document's
    /// other answer fields for that channel (`FALLBACK_VOICE_SAY` wins over a document's `play`).
    pub fn from_sources(
        document_text: Option<&str>,
        variable: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigErrors> {
        let mut value = match document_text.map(str::trim).filter(|text| !text.is_empty()) {
            Some(text) => {
                let format = if text.starts_with('{') {
                    Format::Json
                } else {
                    Format::Toml
                };
                loader::document(text, format)?
            }
            None => Value::Object(Map::new()),
        };
        variables::apply(&mut value, variable)?;
        Self::from_value(&value)
    }

    /// The configuration an endpoint that must keep answering serves (the Worker, where a deploy
    /// must never take a number's fallback down): [`Config::from_sources`]'s when it loads;
    /// otherwise the variables over the embedded defaults — each section's variables (`voice`,
    /// `messaging`, `alerts`, `recovery`) kept when they load on their own, so a broken
    /// `FALLBACK_CONFIG` or one bad variable does not discard the good ones — and every problem.
    ///
    /// A command line should refuse a broken configuration instead (`serve` does, with
    /// [`Config::from_sources`]).
    ///
    /// ```
    /// use twiml_fallback::config::Config;
    /// use twiml_fallback::Channel;
    ///
    /// // A typo in the document: its answers are lost, the variable is not.
    /// let served = Config::from_sources_or_defaults(Some("[messaging]\nmesage = \"hi\""), |name| {
    ///     (name == "FALLBACK_VOICE_SAY").then(|| "Back in five minutes.".to_owned())
    /// });
    /// assert!(served.config.fallback(Some(Channel::Voice), None).twiml.contains("Back in five minutes."));
    /// assert_eq!(served.variables, ["FALLBACK_VOICE_SAY"]);
    /// assert_eq!(
    ///     served.errors.unwrap().to_string(),
    ///     "messaging.mesage: unknown key (expected one of: message, media, twiml)"
    /// );
    /// ```
    pub fn from_sources_or_defaults(
        document_text: Option<&str>,
        variable: impl Fn(&str) -> Option<String>,
    ) -> ServedConfig {
        let full = match Self::from_sources(document_text, &variable) {
            Ok(config) => {
                return ServedConfig {
                    config,
                    errors: None,
                    variables: variables_in_use(&variable),
                };
            }
            Err(errors) => errors,
        };
        let mut errors = Vec::new();
        let mut add = |found: ConfigErrors| {
            for error in found.0 {
                if !errors.contains(&error) {
                    errors.push(error);
                }
            }
        };
        // The document's own problems, then each section's variables over the defaults.
        if let Err(found) = Self::from_sources(document_text, |_| None) {
            add(found);
        }
        let mut kept: Vec<&'static str> = Vec::new();
        for section in variables::SECTIONS {
            let in_section = |name: &str| variables::section_of(name) == Some(section);
            let names: Vec<&'static str> = variables_in_use(&variable)
                .into_iter()
                .filter(|name| in_section(name))
                .collect();
            if names.is_empty() {
                continue;
            }
            match Self::from_sources(None, |name| variable(name).filter(|_| in_section(name))) {
                Ok(_) => kept.extend(names),
                Err(found) => add(found),
            }
        }
        // A document and variables that each load but not together.
        add(full);
        let (config, variables) = match Self::from_sources(None, |name| variable(name).filter(|_| kept.contains(&name)))
        {
            Ok(config) => (config, kept),
            Err(found) => {
                add(found);
                (Self::default(), Vec::new())
            }
        };
        ServedConfig {
            config,
            errors: Some(ConfigErrors(errors)),
            variables,
        }
    }

    /// Loads an already-parsed document, e.g. built in code or merged from several sources.
    pub fn from_value(value: &Value) -> Result<Self, ConfigErrors> {
        loader::load(value)
    }

    /// The answer for a request on `channel` to the number `to`.
    pub fn fallback(&self, channel: Option<Channel>, to: Option<&str>) -> FallbackAnswer<'_> {
        let number = to.and_then(|to| self.number(to));
        match channel {
            None => FallbackAnswer {
                twiml: UNKNOWN_CHANNEL_TWIML,
                source: AnswerSource::UnknownChannel,
            },
            Some(Channel::Voice) => match number.and_then(|(key, answers)| Some((key, answers.voice.as_ref()?))) {
                Some((key, answer)) => FallbackAnswer {
                    twiml: &answer.twiml,
                    source: AnswerSource::Number(key),
                },
                None => FallbackAnswer {
                    twiml: &self.voice.twiml,
                    source: AnswerSource::Default,
                },
            },
            Some(Channel::Messaging) => {
                match number.and_then(|(key, answers)| Some((key, answers.messaging.as_ref()?))) {
                    Some((key, answer)) => FallbackAnswer {
                        twiml: &answer.twiml,
                        source: AnswerSource::Number(key),
                    },
                    None => FallbackAnswer {
                        twiml: &self.messaging.twiml,
                        source: AnswerSource::Default,
                    },
                }
            }
        }
    }

    /// The per-number answers for `to` (matched exactly, or without a `whatsapp:` prefix).
    fn number(&self, to: &str) -> Option<(&str, &NumberAnswers)> {
        let to = to.trim();
        let bare = to.strip_prefix("whatsapp:").unwrap_or(to);
        self.numbers
            .get_key_value(to)
            .or_else(|| self.numbers.get_key_value(bare))
            .map(|(key, answers)| (key.as_str(), answers))
    }

    /// The top-level voice answer.
    pub fn voice(&self) -> &Answer<VoiceContent> {
        &self.voice
    }

    /// The top-level messaging answer.
    pub fn messaging(&self) -> &Answer<MessagingContent> {
        &self.messaging
    }

    /// The per-number answers, by E.164 number.
    pub fn numbers(&self) -> &BTreeMap<String, NumberAnswers> {
        &self.numbers
    }

    /// The alert settings, when `[alerts]` is configured.
    pub fn alerts(&self) -> Option<&Alerts> {
        self.alerts.as_ref()
    }

    /// The recovery settings, when `[recovery]` is configured.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// The outage inbox's retention and cap (`[inbox]`, else the defaults).
    pub fn inbox(&self) -> InboxSettings {
        self.inbox
    }

    /// How kept messages are replayed (`[replay]`, else the defaults).
    pub fn replay(&self) -> &ReplaySettings {
        &self.replay
    }
}

#[cfg(test)]
mod tests;
