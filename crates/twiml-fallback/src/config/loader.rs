//! Loading a document: walking the parsed TOML or JSON tree, checking every key and value, and
//! rendering and validating every answer, with **every** problem collected by path.
//!
//! # Example
//!
//! ```
//! use twiml_fallback::config::Config;
//!
//! let errors = Config::from_json(r#"{
//!     "vocie": {},
//!     "voice": {"say": "Hi", "play": "https://cdn.example.com/sorry.mp3"},
//!     "recovery": {"allow_hosts": ["*.com"]}
//! }"#)
//! .unwrap_err();
//! assert_eq!(errors.to_string(), "\
//! vocie: unknown key (expected one of: voice, messaging, numbers, alerts, recovery, inbox, replay)
//! voice: say, play and twiml are alternatives: give only one
//! recovery.allow_hosts[0]: a wildcard needs at least two labels after \"*.\" (e.g. *.example.com)");
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::render::{render_messaging, render_voice};
use super::{
    Alerts, Answer, Config, ConfigError, ConfigErrors, DEFAULT_DEDUP_SECONDS, DEFAULT_MESSAGING_MESSAGE,
    DEFAULT_RECOVERY_TIMEOUT_MS, DEFAULT_VOICE_SAY, Format, HostRule, InboxSettings, MAX_MESSAGE_CHARS,
    MAX_RECOVERY_TIMEOUT_MS, MAX_REPLAY_INTERVAL_SECONDS, MessagingContent, NumberAnswers, Recovery, ReplaySettings,
    VoiceContent,
};
use crate::twiml::{self, Strictness, TargetChannel};
use crate::webhook::{Channel, is_e164};

/// Loads a parsed document: the configuration, or every problem in it.
pub(super) fn load(value: &Value) -> Result<Config, ConfigErrors> {
    let mut loader = Loader::default();
    let config = loader.document(value);
    if loader.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(loader.errors))
    }
}

/// Parses a TOML or JSON document into the common tree the loader walks.
pub(super) fn document(text: &str, format: Format) -> Result<Value, ConfigErrors> {
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

/// Walks a document, collecting every problem.
#[derive(Default)]
struct Loader {
    errors: Vec<ConfigError>,
}

const TOP_KEYS: &[&str] = &["voice", "messaging", "numbers", "alerts", "recovery", "inbox", "replay"];
const VOICE_KEYS: &[&str] = &["say", "play", "twiml", "voice", "language", "loop"];
const MESSAGING_KEYS: &[&str] = &["message", "media", "twiml"];
const NUMBER_KEYS: &[&str] = &["voice", "messaging"];
const ALERT_KEYS: &[&str] = &["webhook_url", "dedup_seconds"];
const RECOVERY_KEYS: &[&str] = &["allow_hosts", "timeout_ms", "allow_http"];
const INBOX_KEYS: &[&str] = &["retention_days", "max_entries"];
const REPLAY_KEYS: &[&str] = &[
    "url",
    "min_interval_seconds",
    "max_attempts",
    "send_replies",
    "reply_window_minutes",
    "missed_call_sms",
];

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
        if let Some(inbox) = table.get("inbox") {
            config.inbox = self.inbox(inbox);
        }
        if let Some(replay) = table.get("replay") {
            config.replay = self.replay(replay);
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

impl Loader {
    fn inbox(&mut self, value: &Value) -> InboxSettings {
        let defaults = InboxSettings::default();
        let Some(table) = self.table(value, "inbox", INBOX_KEYS) else {
            return defaults;
        };
        let retention_days = self
            .integer(table, "retention_days", "inbox", (1, 3650))
            .and_then(|days| u32::try_from(days).ok())
            .unwrap_or(defaults.retention_days);
        let max_entries = self
            .integer(table, "max_entries", "inbox", (1, 100_000_000))
            .unwrap_or(defaults.max_entries);
        InboxSettings {
            retention_days,
            max_entries,
        }
    }
}

impl Loader {
    fn replay(&mut self, value: &Value) -> ReplaySettings {
        let defaults = ReplaySettings::default();
        let Some(table) = self.table(value, "replay", REPLAY_KEYS) else {
            return defaults;
        };
        let url = self
            .string(table, "url", "replay")
            .and_then(|url| self.url(url, "replay.url"));
        let min_interval_seconds = self
            .integer(
                table,
                "min_interval_seconds",
                "replay",
                (1, MAX_REPLAY_INTERVAL_SECONDS),
            )
            .unwrap_or(defaults.min_interval_seconds);
        let max_attempts = self
            .integer(table, "max_attempts", "replay", (1, 10_000))
            .and_then(|attempts| u32::try_from(attempts).ok())
            .unwrap_or(defaults.max_attempts);
        let send_replies = match table.get("send_replies") {
            None => defaults.send_replies,
            Some(Value::Bool(flag)) => *flag,
            Some(other) => {
                self.error(
                    "replay.send_replies",
                    format!("must be true or false, not {}", kind(other)),
                );
                defaults.send_replies
            }
        };
        let reply_window_minutes = self
            .integer(table, "reply_window_minutes", "replay", (1, 7 * 24 * 60))
            .unwrap_or(defaults.reply_window_minutes);
        let missed_call_sms = self.string(table, "missed_call_sms", "replay").and_then(|text| {
            let chars = text.chars().count();
            if chars > MAX_MESSAGE_CHARS {
                self.error(
                    "replay.missed_call_sms",
                    format!("{chars} characters: Twilio sends at most {MAX_MESSAGE_CHARS}"),
                );
                return None;
            }
            Some(text.trim().to_owned())
        });
        ReplaySettings {
            url,
            min_interval_seconds,
            max_attempts,
            send_replies,
            reply_window_minutes,
            missed_call_sms,
        }
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

/// A BCP-47-like tag: `en`, `en-US`, `cmn-Hans-CN`.
fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|part| (1..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric()))
}
