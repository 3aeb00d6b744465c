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
//! [alerts]                # the fallback endpoint POSTs JSON here (Slack-compatible `text`)
//! webhook_url = "https://hooks.example.com/services/T000/B000/XXXX"
//! dedup_seconds = 300     # one alert per error code and failing URL per window (0 = every time)
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

use crate::twiml::{self, Message, Play, Say, Strictness, TargetChannel};
use crate::webhook::Channel;

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

/// A loaded, validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    voice: Answer<VoiceContent>,
    messaging: Answer<MessagingContent>,
    numbers: BTreeMap<String, NumberAnswers>,
    alerts: Option<Alerts>,
    recovery: Option<Recovery>,
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

/// Where and how often the fallback endpoint alerts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alerts {
    /// The URL the alert JSON is POSTed to.
    pub webhook_url: String,
    /// One alert per dedup key within this many seconds (0 = no deduplication).
    pub dedup_seconds: u64,
}

/// Whether and where the fallback endpoint may re-request the failed primary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Hosts the primary may be re-requested on.
    pub allow_hosts: Vec<HostRule>,
    /// The recovery request's deadline, in milliseconds.
    pub timeout_ms: u64,
    /// Whether plain `http://` primaries may be re-requested.
    pub allow_http: bool,
}

/// One `allow_hosts` entry: an exact host (`app.example.com`), a subdomain wildcard
/// (`*.example.com`, which does not match `example.com` itself), either with an optional port.
/// Without a port only the scheme's default port matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRule {
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

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
pub struct Fallback<'a> {
    /// The document.
    pub twiml: &'a str,
    /// Its origin.
    pub source: AnswerSource<'a>,
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
                twiml: render_voice(&voice),
                content: voice,
            },
            messaging: Answer {
                twiml: render_messaging(&messaging),
                content: messaging,
            },
            numbers: BTreeMap::new(),
            alerts: None,
            recovery: None,
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
        Self::from_value(&document(text, format)?)
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
                document(text, format)?
            }
            None => Value::Object(Map::new()),
        };
        let mut errors = Vec::new();
        for &(name, path, kind) in VARIABLES {
            let Some(raw) = variable(name) else {
                continue;
            };
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let setting = match kind {
                VariableKind::Text => Value::from(raw),
                VariableKind::Integer => match raw.parse::<u64>() {
                    Ok(number) => Value::from(number),
                    Err(_) => {
                        errors.push(ConfigError {
                            path: name.to_owned(),
                            message: format!("{raw:?} is not a whole number (sets {path})"),
                        });
                        continue;
                    }
                },
                VariableKind::List => Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(Value::from)
                        .collect(),
                ),
            };
            if let Err(message) = set_path(&mut value, path, setting) {
                errors.push(ConfigError {
                    path: name.to_owned(),
                    message,
                });
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Self::from_value(&value)
    }

    /// Loads an already-parsed document, e.g. built in code or merged from several sources.
    pub fn from_value(value: &Value) -> Result<Self, ConfigErrors> {
        let mut loader = Loader::default();
        let config = loader.document(value);
        if loader.errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(loader.errors))
        }
    }

    /// The answer for a request on `channel` to the number `to`.
    pub fn fallback(&self, channel: Option<Channel>, to: Option<&str>) -> Fallback<'_> {
        let number = to.and_then(|to| self.number(to));
        match channel {
            None => Fallback {
                twiml: UNKNOWN_CHANNEL_TWIML,
                source: AnswerSource::UnknownChannel,
            },
            Some(Channel::Voice) => match number.and_then(|(key, answers)| Some((key, answers.voice.as_ref()?))) {
                Some((key, answer)) => Fallback {
                    twiml: &answer.twiml,
                    source: AnswerSource::Number(key),
                },
                None => Fallback {
                    twiml: &self.voice.twiml,
                    source: AnswerSource::Default,
                },
            },
            Some(Channel::Messaging) => {
                match number.and_then(|(key, answers)| Some((key, answers.messaging.as_ref()?))) {
                    Some((key, answer)) => Fallback {
                        twiml: &answer.twiml,
                        source: AnswerSource::Number(key),
                    },
                    None => Fallback {
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
}

/// Why a URL may not be re-requested by recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveryRefusal {
    /// Not an absolute URL with a host.
    NotAbsolute,
    /// `http://` while `allow_http` is off, or another scheme.
    Scheme,
    /// It carries `user:pass@`, which could disguise the real host.
    UserInfo,
    /// The host is not on `allow_hosts` (or the port is not the one allowed).
    HostNotAllowed(String),
}

impl fmt::Display for RecoveryRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoveryRefusal::NotAbsolute => f.write_str("ErrorUrl is not an absolute URL"),
            RecoveryRefusal::Scheme => f.write_str("ErrorUrl's scheme is not allowed (https only unless allow_http)"),
            RecoveryRefusal::UserInfo => f.write_str("ErrorUrl carries user info (user:pass@), which is refused"),
            RecoveryRefusal::HostNotAllowed(host) => write!(f, "host {host:?} is not in recovery.allow_hosts"),
        }
    }
}

impl Recovery {
    /// Whether `url` may be re-requested: an absolute `https` (or, when allowed, `http`) URL
    /// without user info, whose host and port match an `allow_hosts` entry. Hosts are compared
    /// case-insensitively as ASCII; anything else (percent-escapes, Unicode, trailing dots) never
    /// matches, so IDN tricks and IP spellings can't slip past a rule. IP literals only match a
    /// rule naming the same literal.
    pub fn allows(&self, url: &str) -> Result<(), RecoveryRefusal> {
        let parts = crate::url::split(url)
            .filter(|parts| !parts.host().is_empty())
            .ok_or(RecoveryRefusal::NotAbsolute)?;
        let explicit_port = match parts.port() {
            None => None,
            Some(_) => Some(parts.port_number().ok_or(RecoveryRefusal::NotAbsolute)?),
        };
        let default_port = if parts.scheme().eq_ignore_ascii_case("https") {
            443
        } else if parts.scheme().eq_ignore_ascii_case("http") && self.allow_http {
            80
        } else {
            return Err(RecoveryRefusal::Scheme);
        };
        if parts.userinfo().is_some() {
            return Err(RecoveryRefusal::UserInfo);
        }
        let port = explicit_port.unwrap_or(default_port);
        let host = parts.host().to_ascii_lowercase();
        let host_ok = is_plain_host(&host);
        if host_ok
            && self
                .allow_hosts
                .iter()
                .any(|rule| rule.matches(&host, port, default_port))
        {
            Ok(())
        } else {
            Err(RecoveryRefusal::HostNotAllowed(
                parts.host().chars().take(255).collect(),
            ))
        }
    }
}

impl HostRule {
    /// Parses an `allow_hosts` entry.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err("empty".to_owned());
        }
        if !entry.is_ascii() {
            return Err("must be ASCII: write internationalised names in their xn-- (punycode) form".to_owned());
        }
        let (host, port) =
            crate::url::host_and_port(entry).ok_or_else(|| format!("{entry:?} is not host or host:port"))?;
        let port = match port {
            None => None,
            Some(text) => Some(
                text.parse::<u16>()
                    .ok()
                    .filter(|port| *port > 0)
                    .ok_or_else(|| format!("{text:?} is not a port"))?,
            ),
        };
        let lower = host.to_ascii_lowercase();
        let (wildcard, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest.to_owned()),
            None => (false, lower),
        };
        if name.contains('*') {
            return Err("only a leading \"*.\" wildcard is supported".to_owned());
        }
        if !is_plain_host(&name) || (wildcard && name.starts_with('[')) {
            return Err(format!("{host:?} is not a host name or IP address"));
        }
        if wildcard && !name.contains('.') {
            return Err("a wildcard needs at least two labels after \"*.\" (e.g. *.example.com)".to_owned());
        }
        // `*.0.0.5` would match the IPv4 address 10.0.0.5: no top-level domain is all digits.
        if wildcard
            && name
                .rsplit('.')
                .next()
                .is_some_and(|label| label.bytes().all(|byte| byte.is_ascii_digit()))
        {
            return Err("a wildcard covers host names, not IP addresses".to_owned());
        }
        Ok(Self {
            host: name,
            wildcard,
            port,
        })
    }

    fn matches(&self, host: &str, port: u16, default_port: u16) -> bool {
        if port != self.port.unwrap_or(default_port) {
            return false;
        }
        if self.wildcard {
            host.len() > self.host.len() + 1
                && host.ends_with(&self.host)
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host == self.host
        }
    }
}

impl fmt::Display for HostRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// A lowercase ASCII DNS name (labels of `a-z0-9-`, no empty labels or trailing dot), an IPv4
/// address, or a bracketed IPv6 literal.
fn is_plain_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

fn render_voice(content: &VoiceContent) -> String {
    match content {
        VoiceContent::Say {
            text,
            voice,
            language,
            loop_count,
        } => {
            let mut say = Say::new(text.clone());
            if let Some(voice) = voice {
                say = say.voice(voice.clone());
            }
            if let Some(language) = language {
                say = say.language(language.clone());
            }
            if let Some(times) = loop_count {
                say = say.loop_count(*times);
            }
            twiml::Response::new().verb(say).to_xml()
        }
        VoiceContent::Play { url, loop_count } => {
            let mut play = Play::new(url.clone());
            if let Some(times) = loop_count {
                play = play.loop_count(*times);
            }
            twiml::Response::new().verb(play).to_xml()
        }
        VoiceContent::Twiml(twiml) => twiml.clone(),
    }
}

fn render_messaging(content: &MessagingContent) -> String {
    match content {
        MessagingContent::Message { text, media } if media.is_empty() => {
            twiml::Response::new().verb(Message::new(text.clone())).to_xml()
        }
        MessagingContent::Message { text, media } => {
            let mut message = if text.is_empty() {
                Message::new("")
            } else {
                Message::with_body(text.clone())
            };
            for url in media {
                message = message.media(url.clone());
            }
            twiml::Response::new().verb(message).to_xml()
        }
        MessagingContent::Twiml(twiml) => twiml.clone(),
    }
}

/// How a [`VARIABLES`] entry's text becomes a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariableKind {
    /// Used as is.
    Text,
    /// A whole number.
    Integer,
    /// A comma-separated list.
    List,
}

/// Simple per-field settings, for environments where a whole document is awkward (a Worker's
/// `[vars]`, a container's environment): variable name, the setting it writes, its kind.
pub const VARIABLES: &[(&str, &str, VariableKind)] = &[
    ("FALLBACK_VOICE_SAY", "voice.say", VariableKind::Text),
    ("FALLBACK_VOICE_VOICE", "voice.voice", VariableKind::Text),
    ("FALLBACK_VOICE_LANGUAGE", "voice.language", VariableKind::Text),
    ("FALLBACK_VOICE_PLAY", "voice.play", VariableKind::Text),
    ("FALLBACK_MESSAGING_MESSAGE", "messaging.message", VariableKind::Text),
    ("FALLBACK_ALERT_WEBHOOK_URL", "alerts.webhook_url", VariableKind::Text),
    (
        "FALLBACK_ALERT_DEDUP_SECONDS",
        "alerts.dedup_seconds",
        VariableKind::Integer,
    ),
    (
        "FALLBACK_RECOVERY_ALLOW_HOSTS",
        "recovery.allow_hosts",
        VariableKind::List,
    ),
    (
        "FALLBACK_RECOVERY_TIMEOUT_MS",
        "recovery.timeout_ms",
        VariableKind::Integer,
    ),
];

/// Parses a TOML or JSON document into the common tree the loader walks.
fn document(text: &str, format: Format) -> Result<Value, ConfigErrors> {
    match format {
        Format::Json => serde_json::from_str::<Value>(text)
            .map_err(|error| ConfigErrors::single(format!("not valid JSON: {error}"))),
        Format::Toml => {
            let table = toml::from_str::<toml::Table>(text)
                .map_err(|error| ConfigErrors::single(format!("not valid TOML: {}", error.to_string().trim())))?;
            serde_json::to_value(table).map_err(|error| ConfigErrors::single(format!("not valid TOML: {error}")))
        }
    }
}

/// Writes `setting` at a dotted `path` (`voice.say`), creating tables on the way; an answer field
/// replaces its alternatives.
fn set_path(document: &mut Value, path: &str, setting: Value) -> Result<(), String> {
    let (table_path, key) = path.rsplit_once('.').unwrap_or(("", path));
    let mut table = document;
    for part in table_path.split('.').filter(|part| !part.is_empty()) {
        let Value::Object(map) = table else {
            return Err(format!("cannot set {path}: the document's {part} is not a table"));
        };
        table = map.entry(part.to_owned()).or_insert_with(|| Value::Object(Map::new()));
    }
    let Value::Object(map) = table else {
        return Err(format!("cannot set {path}: {table_path} is not a table"));
    };
    let alternatives: &[&str] = match path {
        "voice.say" => &["play", "twiml"],
        "voice.play" => &["say", "twiml", "voice", "language"],
        "messaging.message" => &["twiml"],
        _ => &[],
    };
    for alternative in alternatives {
        map.remove(*alternative);
    }
    map.insert(key.to_owned(), setting);
    Ok(())
}

/// Walks a document, collecting every problem.
#[derive(Default)]
struct Loader {
    errors: Vec<ConfigError>,
}

const TOP_KEYS: &[&str] = &["voice", "messaging", "numbers", "alerts", "recovery"];
const VOICE_KEYS: &[&str] = &["say", "play", "twiml", "voice", "language", "loop"];
const MESSAGING_KEYS: &[&str] = &["message", "media", "twiml"];
const NUMBER_KEYS: &[&str] = &["voice", "messaging"];
const ALERT_KEYS: &[&str] = &["webhook_url", "dedup_seconds"];
const RECOVERY_KEYS: &[&str] = &["allow_hosts", "timeout_ms", "allow_http"];

/// The default alert deduplication window.
pub const DEFAULT_DEDUP_SECONDS: u64 = 300;

/// The default recovery deadline.
pub const DEFAULT_RECOVERY_TIMEOUT_MS: u64 = 4000;

impl Loader {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// The table at `path`, with unknown keys reported; `None` (reported) if it is not a table.
    fn table<'v>(&mut self, value: &'v Value, path: &str, known: &[&str]) -> Option<&'v Map<String, Value>> {
        let Some(table) = value.as_object() else {
            self.error(path, format!("must be a table, not {}", kind(value)));
            return None;
        };
        for key in table.keys() {
            if !known.contains(&key.as_str()) {
                let at = join(path, key);
                self.error(&at, format!("unknown key (expected one of: {})", known.join(", ")));
            }
        }
        Some(table)
    }

    fn document(&mut self, value: &Value) -> Config {
        let mut config = Config::default();
        let Some(table) = self.table(value, "", TOP_KEYS) else {
            return config;
        };
        if let Some(voice) = table.get("voice") {
            if let Some(answer) = self.voice(voice, "voice", false) {
                config.voice = answer;
            }
        }
        if let Some(messaging) = table.get("messaging") {
            if let Some(answer) = self.messaging(messaging, "messaging", false) {
                config.messaging = answer;
            }
        }
        if let Some(numbers) = table.get("numbers") {
            config.numbers = self.numbers(numbers);
        }
        if let Some(alerts) = table.get("alerts") {
            config.alerts = self.alerts(alerts);
        }
        if let Some(recovery) = table.get("recovery") {
            config.recovery = self.recovery(recovery);
        }
        config
    }

    fn string<'v>(&mut self, table: &'v Map<String, Value>, key: &str, path: &str) -> Option<&'v str> {
        let value = table.get(key)?;
        let at = join(path, key);
        match value.as_str() {
            Some(text) if text.trim().is_empty() => {
                self.error(&at, "empty");
                None
            }
            Some(text) => Some(text),
            None => {
                self.error(&at, format!("must be a string, not {}", kind(value)));
                None
            }
        }
    }

    fn integer(&mut self, table: &Map<String, Value>, key: &str, path: &str, range: (u64, u64)) -> Option<u64> {
        let value = table.get(key)?;
        let at = join(path, key);
        match value.as_u64() {
            Some(number) if number >= range.0 && number <= range.1 => Some(number),
            Some(_) | None if value.is_i64() || value.is_u64() => {
                self.error(&at, format!("must be between {} and {}", range.0, range.1));
                None
            }
            _ => {
                self.error(&at, format!("must be an integer, not {}", kind(value)));
                None
            }
        }
    }

    fn url(&mut self, text: &str, path: &str) -> Option<String> {
        let trimmed = text.trim();
        if crate::url::is_absolute_http_url(trimmed) {
            Some(trimmed.to_owned())
        } else {
            self.error(path, format!("{:?} is not an absolute http(s) URL", clip(text)));
            None
        }
    }

    fn twiml(&mut self, text: &str, path: &str, channel: Channel) -> Option<String> {
        let report = twiml::validate(text.as_bytes(), TargetChannel::from(channel));
        if report.is_valid() {
            return Some(text.to_owned());
        }
        for diagnostic in report.errors() {
            self.error(path, format!("invalid {channel} TwiML: {diagnostic}"));
        }
        None
    }

    fn voice(&mut self, value: &Value, path: &str, in_number: bool) -> Option<Answer<VoiceContent>> {
        let table = self.table(value, path, VOICE_KEYS)?;
        let errors_before = self.errors.len();
        let say = self.string(table, "say", path).map(str::to_owned);
        let play = self
            .string(table, "play", path)
            .and_then(|url| self.url(url, &join(path, "play")));
        let raw = self.string(table, "twiml", path).map(str::to_owned);
        let voice = self.string(table, "voice", path).map(str::to_owned);
        let language = self.string(table, "language", path).map(str::to_owned);
        if let Some(language) = &language {
            if !is_language_tag(language) {
                self.error(
                    &join(path, "language"),
                    format!("{:?} is not a language tag such as en-US", clip(language)),
                );
            }
        }
        let loop_count = self.integer(table, "loop", path, (0, 1000)).map(|n| n as u32);
        let given = [
            table.contains_key("say"),
            table.contains_key("play"),
            table.contains_key("twiml"),
        ];
        match given.iter().filter(|given| **given).count() {
            0 if in_number => self.error(path, "needs one of say, play or twiml"),
            0 => {}
            1 => {}
            _ => self.error(path, "say, play and twiml are alternatives: give only one"),
        }
        if (table.contains_key("voice") || table.contains_key("language")) && !given[0] && (given[1] || given[2]) {
            self.error(path, "voice and language only apply to say");
        }
        if table.contains_key("loop") && given[2] {
            self.error(path, "loop does not apply to twiml (write it in the TwiML)");
        }
        if self.errors.len() != errors_before {
            return None;
        }
        let content = if let Some(raw) = raw {
            VoiceContent::Twiml(self.twiml(&raw, &join(path, "twiml"), Channel::Voice)?)
        } else if let Some(url) = play {
            VoiceContent::Play { url, loop_count }
        } else {
            VoiceContent::Say {
                text: say.unwrap_or_else(|| DEFAULT_VOICE_SAY.to_owned()),
                voice,
                language,
                loop_count,
            }
        };
        self.rendered(content, path, Channel::Voice, render_voice)
    }

    fn messaging(&mut self, value: &Value, path: &str, in_number: bool) -> Option<Answer<MessagingContent>> {
        let table = self.table(value, path, MESSAGING_KEYS)?;
        let errors_before = self.errors.len();
        let text = self.string(table, "message", path).map(str::to_owned);
        if let Some(text) = &text {
            let characters = text.chars().count();
            if characters > MAX_MESSAGE_CHARS {
                self.error(
                    &join(path, "message"),
                    format!("{characters} characters; Twilio sends at most {MAX_MESSAGE_CHARS}"),
                );
            }
        }
        let media = match table.get("media") {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let media_path = join(path, "media");
                if items.len() > 10 {
                    self.error(&media_path, format!("{} URLs; Twilio sends at most 10", items.len()));
                }
                let mut urls = Vec::new();
                for (index, item) in items.iter().enumerate() {
                    let at = format!("{media_path}[{index}]");
                    match item.as_str() {
                        Some(url) => urls.extend(self.url(url, &at)),
                        None => self.error(&at, format!("must be a URL string, not {}", kind(item))),
                    }
                }
                urls
            }
            Some(other) => {
                self.error(
                    &join(path, "media"),
                    format!("must be an array of URLs, not {}", kind(other)),
                );
                Vec::new()
            }
        };
        let raw = self.string(table, "twiml", path).map(str::to_owned);
        let has_message = table.contains_key("message") || table.contains_key("media");
        if raw.is_some() && has_message {
            self.error(path, "twiml replaces message and media: give one or the other");
        }
        if in_number && !has_message && !table.contains_key("twiml") {
            self.error(path, "needs message, media or twiml");
        }
        if self.errors.len() != errors_before {
            return None;
        }
        let content = if let Some(raw) = raw {
            MessagingContent::Twiml(self.twiml(&raw, &join(path, "twiml"), Channel::Messaging)?)
        } else {
            let text = match (text, media.is_empty()) {
                (Some(text), _) => text,
                (None, true) => DEFAULT_MESSAGING_MESSAGE.to_owned(),
                (None, false) => String::new(),
            };
            MessagingContent::Message { text, media }
        };
        self.rendered(content, path, Channel::Messaging, render_messaging)
    }

    /// Renders an answer and checks the result is valid TwiML within Twilio's size limit.
    fn rendered<C>(&mut self, content: C, path: &str, channel: Channel, render: fn(&C) -> String) -> Option<Answer<C>> {
        let twiml = render(&content);
        let report = twiml::validate(twiml.as_bytes(), channel.into());
        if let Err(diagnostic) = report.check(Strictness::Schema) {
            self.error(path, format!("renders to invalid {channel} TwiML: {diagnostic}"));
            return None;
        }
        Some(Answer { content, twiml })
    }

    fn numbers(&mut self, value: &Value) -> BTreeMap<String, NumberAnswers> {
        let mut numbers = BTreeMap::new();
        let Some(table) = value.as_object() else {
            self.error(
                "numbers",
                format!("must be a table keyed by phone number, not {}", kind(value)),
            );
            return numbers;
        };
        for (number, answers) in table {
            let path = join("numbers", number);
            if !is_e164(number) {
                self.error(
                    &path,
                    "not an E.164 phone number (+ and 8 to 15 digits, e.g. \"+14155550199\")",
                );
            }
            let Some(sections) = self.table(answers, &path, NUMBER_KEYS) else {
                continue;
            };
            if sections.is_empty() {
                self.error(&path, "needs a voice or messaging section");
            }
            let voice = sections
                .get("voice")
                .and_then(|voice| self.voice(voice, &join(&path, "voice"), true));
            let messaging = sections
                .get("messaging")
                .and_then(|messaging| self.messaging(messaging, &join(&path, "messaging"), true));
            numbers.insert(number.clone(), NumberAnswers { voice, messaging });
        }
        numbers
    }

    fn alerts(&mut self, value: &Value) -> Option<Alerts> {
        let table = self.table(value, "alerts", ALERT_KEYS)?;
        let webhook_url = match self.string(table, "webhook_url", "alerts") {
            Some(url) => self.url(url, "alerts.webhook_url"),
            None => {
                if !table.contains_key("webhook_url") {
                    self.error("alerts.webhook_url", "missing (the URL alerts are POSTed to)");
                }
                None
            }
        };
        let dedup_seconds = self
            .integer(table, "dedup_seconds", "alerts", (0, 7 * 86_400))
            .unwrap_or(DEFAULT_DEDUP_SECONDS);
        Some(Alerts {
            webhook_url: webhook_url?,
            dedup_seconds,
        })
    }

    fn recovery(&mut self, value: &Value) -> Option<Recovery> {
        let table = self.table(value, "recovery", RECOVERY_KEYS)?;
        let mut allow_hosts = Vec::new();
        match table.get("allow_hosts") {
            None => self.error(
                "recovery.allow_hosts",
                "missing (the hosts the primary may be re-requested on)",
            ),
            Some(Value::Array(items)) if items.is_empty() => {
                self.error("recovery.allow_hosts", "empty (list at least one host)")
            }
            Some(Value::Array(items)) => {
                for (index, item) in items.iter().enumerate() {
                    let at = format!("recovery.allow_hosts[{index}]");
                    match item.as_str().map(HostRule::parse) {
                        Some(Ok(rule)) => allow_hosts.push(rule),
                        Some(Err(message)) => self.error(&at, message),
                        None => self.error(&at, format!("must be a string, not {}", kind(item))),
                    }
                }
            }
            Some(other) => self.error(
                "recovery.allow_hosts",
                format!("must be an array of hosts, not {}", kind(other)),
            ),
        }
        let timeout_ms = self
            .integer(table, "timeout_ms", "recovery", (100, MAX_RECOVERY_TIMEOUT_MS))
            .unwrap_or(DEFAULT_RECOVERY_TIMEOUT_MS);
        let allow_http = match table.get("allow_http") {
            None => false,
            Some(Value::Bool(flag)) => *flag,
            Some(other) => {
                self.error(
                    "recovery.allow_http",
                    format!("must be true or false, not {}", kind(other)),
                );
                false
            }
        };
        (!allow_hosts.is_empty()).then_some(Recovery {
            allow_hosts,
            timeout_ms,
            allow_http,
        })
    }
}

fn join(path: &str, key: &str) -> String {
    let bare = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare {
        key.to_owned()
    } else {
        serde_json::to_string(key).unwrap_or_else(|_| format!("{key:?}"))
    };
    if path.is_empty() { key } else { format!("{path}.{key}") }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

/// `+` then 8 to 15 digits, the first not 0.
fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
    })
}

/// A BCP-47-like tag: `en`, `en-US`, `cmn-Hans-CN`.
fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|part| (1..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests;
