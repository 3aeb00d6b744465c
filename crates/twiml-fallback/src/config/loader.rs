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
    Alerts, Answer, Config, ConfigError, ConfigErrors, DEFAULT_MESSAGING_MESSAGE, DEFAULT_PAGERDUTY_URL,
    DEFAULT_RECOVERY_TIMEOUT_MS, DEFAULT_RESOLVE_AFTER_SECONDS, DEFAULT_VOICE_SAY, Format, HostRule, InboxSettings,
    MAX_MESSAGE_CHARS, MAX_RECOVERY_TIMEOUT_MS, MAX_REPLAY_INTERVAL_SECONDS, MessagingContent, NumberAnswers, Recovery,
    ReplaySettings, Secret, SmsSender, Smtp, SmtpSecurity, SmtpUrl, VoiceContent,
};
use crate::twiml::{self, Strictness, TargetChannel};
use crate::webhook::{Channel, is_e164, is_sid};

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
const ALERT_KEYS: &[&str] = &[
    "webhook_url",
    "email",
    "sms",
    "sms_from",
    "messaging_service_sid",
    "pagerduty_routing_key",
    "pagerduty_url",
    "resolve_after_seconds",
    "remind_minutes",
    "include_bodies",
    "smtp",
    "dedup_seconds",
];
const SMTP_KEYS: &[&str] = &["url", "from"];
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
        // The webhook's URL is a credential (Slack's path is its secret): a bad one is not echoed.
        let webhook_url = self.string(table, "webhook_url", "alerts").and_then(|url| {
            let trimmed = url.trim();
            if crate::url::is_absolute_http_url(trimmed) {
                Some(trimmed.to_owned())
            } else {
                self.error(
                    "alerts.webhook_url",
                    "is not an absolute http(s) URL (e.g. https://hooks.slack.com/services/…; the value is not shown: it may hold a secret)",
                );
                None
            }
        });
        let email = self.list(table, "email", "alerts", |loader, at, text| {
            if is_email_address(text) {
                Some(text.to_owned())
            } else {
                loader.error(
                    at,
                    format!("{:?} is not an email address (name@example.com)", clip(text)),
                );
                None
            }
        });
        let sms = self.list(table, "sms", "alerts", |loader, at, text| {
            if is_e164(text) {
                Some(text.to_owned())
            } else {
                loader.error(
                    at,
                    format!(
                        "{:?} is not an E.164 phone number (+ and 8 to 15 digits, e.g. \"+14155550100\")",
                        clip(text)
                    ),
                );
                None
            }
        });
        let sms_from = self.string(table, "sms_from", "alerts").and_then(|from| {
            let from = from.trim();
            let short_code = (3..=8).contains(&from.len()) && from.bytes().all(|b| b.is_ascii_digit());
            if is_e164(from) || short_code {
                Some(SmsSender::From(from.to_owned()))
            } else {
                self.error(
                    "alerts.sms_from",
                    format!(
                        "{:?} is not an E.164 phone number or a short code (e.g. \"+14155550199\")",
                        clip(from)
                    ),
                );
                None
            }
        });
        let service = self.string(table, "messaging_service_sid", "alerts").and_then(|sid| {
            let sid = sid.trim();
            if is_sid(sid, "MG") {
                Some(SmsSender::MessagingService(sid.to_owned()))
            } else {
                self.error(
                    "alerts.messaging_service_sid",
                    format!("{:?} is not a Messaging Service SID (MG and 32 hex digits)", clip(sid)),
                );
                None
            }
        });
        let sms_sender = match (sms_from, service) {
            (Some(_), Some(_)) => {
                self.error("alerts.sms_from", "give sms_from or messaging_service_sid, not both");
                None
            }
            (from, service) => from.or(service),
        };
        let sender_given = table.contains_key("sms_from") || table.contains_key("messaging_service_sid");
        if !sms.is_empty() && sms_sender.is_none() && !sender_given {
            self.error(
                "alerts.sms",
                "needs sms_from (a number of the account) or messaging_service_sid (MG…) to send from",
            );
        }
        let pagerduty_routing_key = self.string(table, "pagerduty_routing_key", "alerts").and_then(|key| {
            let key = key.trim();
            if key.len() == 32 && key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                Some(Secret(key.to_owned()))
            } else {
                // Never echo a credential, even a malformed one.
                self.error(
                    "alerts.pagerduty_routing_key",
                    format!(
                        "must be the 32 letters and digits of an Events API v2 integration key ({} characters given)",
                        key.chars().count()
                    ),
                );
                None
            }
        });
        let pagerduty_url = self
            .string(table, "pagerduty_url", "alerts")
            .and_then(|url| self.url(url, "alerts.pagerduty_url"))
            .unwrap_or_else(|| DEFAULT_PAGERDUTY_URL.to_owned());
        let legacy_dedup_seconds = self.integer(table, "dedup_seconds", "alerts", (0, 7 * 86_400));
        let resolve_after_seconds = self
            .integer(table, "resolve_after_seconds", "alerts", (1, 7 * 86_400))
            .or(legacy_dedup_seconds.map(|seconds| seconds.max(1)))
            .unwrap_or(DEFAULT_RESOLVE_AFTER_SECONDS);
        let remind_minutes = self
            .integer(table, "remind_minutes", "alerts", (0, 7 * 24 * 60))
            .filter(|minutes| *minutes > 0);
        let include_bodies = self.boolean(table, "include_bodies", "alerts").unwrap_or(false);
        let smtp = table.get("smtp").and_then(|smtp| self.smtp(smtp));
        if !email.is_empty() && smtp.is_none() && !table.contains_key("smtp") {
            self.error(
                "alerts.email",
                "needs [alerts.smtp] with from (and, for serve, url: the relay to send through)",
            );
        }
        let has_sink = webhook_url.is_some() || !email.is_empty() || !sms.is_empty() || pagerduty_routing_key.is_some();
        let sink_keys = ["webhook_url", "email", "sms", "pagerduty_routing_key"];
        if !has_sink && !sink_keys.iter().any(|key| table.contains_key(*key)) {
            self.error(
                "alerts",
                "no one to tell: set webhook_url, email, sms or pagerduty_routing_key (or remove [alerts])",
            );
        }
        Some(Alerts {
            webhook_url,
            email,
            sms,
            sms_sender,
            pagerduty_routing_key,
            pagerduty_url,
            resolve_after_seconds,
            remind_minutes,
            include_bodies,
            smtp,
            legacy_dedup_seconds,
        })
    }

    fn smtp(&mut self, value: &Value) -> Option<Smtp> {
        let table = self.table(value, "alerts.smtp", SMTP_KEYS)?;
        let url = self
            .string(table, "url", "alerts.smtp")
            .and_then(|url| match parse_smtp_url(url.trim()) {
                Ok(url) => Some(url),
                Err(problem) => {
                    self.error("alerts.smtp.url", problem);
                    None
                }
            });
        let from = self.string(table, "from", "alerts.smtp").and_then(|from| {
            let from = from.trim();
            match mailbox_address(from) {
                Some(address) => Some((from.to_owned(), address.to_owned())),
                None => {
                    self.error(
                        "alerts.smtp.from",
                        format!(
                            "{:?} is not an address (alerts@example.com or \"Name <alerts@example.com>\")",
                            clip(from)
                        ),
                    );
                    None
                }
            }
        });
        if from.is_none() && !table.contains_key("from") {
            self.error("alerts.smtp.from", "missing (the address alerts are sent from)");
        }
        let (from, from_address) = from?;
        Some(Smtp {
            url,
            from,
            from_address,
        })
    }

    /// A list of non-empty strings at `key`, each checked by `item` (which reports its own
    /// problems); a single string is a list of one.
    fn list(
        &mut self,
        table: &Map<String, Value>,
        key: &str,
        path: &str,
        mut item: impl FnMut(&mut Self, &str, &str) -> Option<String>,
    ) -> Vec<String> {
        let at = join(path, key);
        let items: Vec<&Value> = match table.get(key) {
            None => return Vec::new(),
            Some(Value::Array(items)) => items.iter().collect(),
            Some(single @ Value::String(_)) => vec![single],
            Some(other) => {
                self.error(&at, format!("must be a list of strings, not {}", kind(other)));
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (index, value) in items.into_iter().enumerate() {
            let item_at = format!("{at}[{index}]");
            match value.as_str().map(str::trim) {
                Some("") => self.error(&item_at, "empty"),
                Some(text) => {
                    if let Some(value) = item(self, &item_at, text) {
                        if !out.contains(&value) {
                            out.push(value);
                        }
                    }
                }
                None => self.error(&item_at, format!("must be a string, not {}", kind(value))),
            }
        }
        out
    }

    fn boolean(&mut self, table: &Map<String, Value>, key: &str, path: &str) -> Option<bool> {
        match table.get(key)? {
            Value::Bool(flag) => Some(*flag),
            other => {
                self.error(&join(path, key), format!("must be true or false, not {}", kind(other)));
                None
            }
        }
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

/// Whether `text` is a plain email address: one `@`, a local part of printable characters, a
/// domain of letters, digits, hyphens and dots (no leading, trailing or double dot).
pub(crate) fn is_email_address(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'@' | b'<' | b'>' | b'(' | b')' | b',' | b';' | b':' | b'"' | b'[' | b']' | b'\\'
                )
        });
    let domain_ok = !domain.is_empty()
        && domain.len() <= 253
        && domain
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    local_ok && domain_ok
}

/// The address of a mailbox written `addr` or `Display Name <addr>`, when it is one.
pub(crate) fn mailbox_address(text: &str) -> Option<&str> {
    let text = text.trim();
    let address = match text.strip_suffix('>') {
        Some(rest) => {
            let (name, address) = rest.rsplit_once('<')?;
            if name.contains(['<', '>', '\r', '\n']) {
                return None;
            }
            address
        }
        None => text,
    };
    is_email_address(address).then_some(address)
}

/// `smtp://[user@]host[:port]` or `smtps://…`, as [`SmtpUrl`] documents.
pub(crate) fn parse_smtp_url(text: &str) -> Result<SmtpUrl, String> {
    // A password is refused before anything else, and no message shows the user info.
    let password_in_url = "the SMTP password must not be in the URL: put it in TWIML_FALLBACK_SMTP_PASSWORD (the URL keeps only the user name)";
    let authority = text.split_once("://").map_or(text, |(_, rest)| rest);
    let authority = &authority[..authority.find(['/', '?', '#']).unwrap_or(authority.len())];
    let userinfo = authority.rfind('@').map(|at| &authority[..at]);
    if userinfo.is_some_and(|userinfo| userinfo.contains(':')) {
        return Err(password_in_url.to_owned());
    }
    let shown = clip(&match userinfo {
        Some(userinfo) => text.replacen(&format!("{userinfo}@"), "…@", 1),
        None => text.to_owned(),
    });
    let parts = crate::url::split(text)
        .ok_or_else(|| format!("{shown:?} is not a URL (smtp://smtp.example.com:587 or smtps://smtp.example.com)"))?;
    let scheme = parts.scheme().to_ascii_lowercase();
    let (security, default_port) = match scheme.as_str() {
        "smtp" if crate::url::is_loopback_host(parts.host()) => (SmtpSecurity::Plain, 25),
        "smtp" => (SmtpSecurity::StartTls, 587),
        "smtps" => (SmtpSecurity::ImplicitTls, 465),
        _ => {
            return Err(format!(
                "{shown:?}: the scheme must be smtp:// (STARTTLS) or smtps:// (implicit TLS)"
            ));
        }
    };
    if parts.host().is_empty() {
        return Err(format!("{shown:?} has no host"));
    }
    if !matches!(parts.after_authority(), "" | "/") {
        return Err(format!(
            "{shown:?}: an SMTP URL has no path or query (only smtp://[user@]host[:port])"
        ));
    }
    let port = match parts.port() {
        None => default_port,
        Some(_) => parts
            .port_number()
            .filter(|port| *port > 0)
            .ok_or_else(|| format!("{shown:?}: the port must be 1 to 65535"))?,
    };
    let username = match parts.userinfo() {
        None => None,
        Some(userinfo) if userinfo.contains(':') => return Err(password_in_url.to_owned()),
        // `%40` for an `@` in the user name; a `+` is a `+` here (not a form's space).
        Some(user) => Some(crate::webhook::decode_form_component(
            user.replace('+', "%2B").as_bytes(),
        )),
    };
    Ok(SmtpUrl {
        security,
        host: parts.host().trim_start_matches('[').trim_end_matches(']').to_owned(),
        port,
        username,
    })
}
