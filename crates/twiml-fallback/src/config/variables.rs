//! Simple per-field settings ([`VARIABLES`]) layered over a configuration document, for
//! environments where a whole document is awkward: a Worker's `[vars]`, a container's environment.
//!
//! Each variable writes one setting into the document before it is loaded, so its value is
//! checked like the document's own; a variable that sets a voice or messaging answer removes
//! that answer's alternatives (`FALLBACK_VOICE_SAY` replaces a document's `play`).
//!
//! # Example
//!
//! ```
//! use twiml_fallback::config::Config;
//!
//! let document = "[voice]\nplay = \"https://cdn.example.com/sorry.mp3\"";
//! let config = Config::from_sources(Some(document), |name| {
//!     (name == "FALLBACK_VOICE_SAY").then(|| "Back in five minutes.".to_owned())
//! })
//! .unwrap();
//! assert!(config.voice().twiml.contains("<Say>Back in five minutes.</Say>"));
//! ```

use serde_json::{Map, Value};

use super::{ConfigError, ConfigErrors};

/// How a [`VARIABLES`] entry's text becomes a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariableKind {
    /// Used as is.
    Text,
    /// A whole number.
    Integer,
    /// A comma-separated list.
    List,
    /// `true` or `false`.
    Boolean,
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
    ("FALLBACK_ALERT_EMAIL", "alerts.email", VariableKind::List),
    ("FALLBACK_ALERT_SMS", "alerts.sms", VariableKind::List),
    ("FALLBACK_ALERT_SMS_FROM", "alerts.sms_from", VariableKind::Text),
    (
        "FALLBACK_ALERT_MESSAGING_SERVICE_SID",
        "alerts.messaging_service_sid",
        VariableKind::Text,
    ),
    (
        "FALLBACK_ALERT_PAGERDUTY_ROUTING_KEY",
        "alerts.pagerduty_routing_key",
        VariableKind::Text,
    ),
    (
        "FALLBACK_ALERT_PAGERDUTY_URL",
        "alerts.pagerduty_url",
        VariableKind::Text,
    ),
    (
        "FALLBACK_ALERT_RESOLVE_AFTER_SECONDS",
        "alerts.resolve_after_seconds",
        VariableKind::Integer,
    ),
    (
        "FALLBACK_ALERT_REMIND_MINUTES",
        "alerts.remind_minutes",
        VariableKind::Integer,
    ),
    (
        "FALLBACK_ALERT_INCLUDE_BODIES",
        "alerts.include_bodies",
        VariableKind::Boolean,
    ),
    ("FALLBACK_ALERT_SMTP_URL", "alerts.smtp.url", VariableKind::Text),
    ("FALLBACK_ALERT_SMTP_FROM", "alerts.smtp.from", VariableKind::Text),
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
    (
        "FALLBACK_INBOX_RETENTION_DAYS",
        "inbox.retention_days",
        VariableKind::Integer,
    ),
    ("FALLBACK_INBOX_MAX_ENTRIES", "inbox.max_entries", VariableKind::Integer),
    ("FALLBACK_REPLAY_URL", "replay.url", VariableKind::Text),
    (
        "FALLBACK_REPLAY_MIN_INTERVAL_SECONDS",
        "replay.min_interval_seconds",
        VariableKind::Integer,
    ),
    (
        "FALLBACK_REPLAY_MAX_ATTEMPTS",
        "replay.max_attempts",
        VariableKind::Integer,
    ),
    (
        "FALLBACK_REPLAY_REPLY_WINDOW_MINUTES",
        "replay.reply_window_minutes",
        VariableKind::Integer,
    ),
    (
        "FALLBACK_REPLAY_MISSED_CALL_SMS",
        "replay.missed_call_sms",
        VariableKind::Text,
    ),
    (
        "FALLBACK_REPLAY_SEND_REPLIES",
        "replay.send_replies",
        VariableKind::Boolean,
    ),
];

/// The sections the [`VARIABLES`] write into, each loadable on its own.
pub(super) const SECTIONS: [&str; 6] = ["voice", "messaging", "alerts", "recovery", "inbox", "replay"];

/// The section a [`VARIABLES`] entry writes into (`None` for another name).
pub(super) fn section_of(name: &str) -> Option<&'static str> {
    let (_, path, _) = VARIABLES.iter().find(|(known, ..)| *known == name)?;
    let section = path.split('.').next()?;
    SECTIONS.into_iter().find(|known| *known == section)
}

/// The names of the [`VARIABLES`] that `variable` sets (not blank), for a shell to log which are
/// in force — the same rule [`Config::from_sources`](super::Config::from_sources) applies.
///
/// ```
/// let set = twiml_fallback::config::variables_in_use(|name| {
///     (name == "FALLBACK_VOICE_SAY").then(|| "Back soon".to_owned())
/// });
/// assert_eq!(set, ["FALLBACK_VOICE_SAY"]);
/// ```
pub fn variables_in_use(variable: impl Fn(&str) -> Option<String>) -> Vec<&'static str> {
    VARIABLES
        .iter()
        .map(|(name, ..)| *name)
        .filter(|name| variable(name).is_some_and(|value| !value.trim().is_empty()))
        .collect()
}

/// Writes every variable `variable` knows (blank ones are skipped) into `value`; every bad
/// variable is reported, by name.
pub(super) fn apply(value: &mut Value, variable: impl Fn(&str) -> Option<String>) -> Result<(), ConfigErrors> {
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
            VariableKind::Boolean => match raw {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    errors.push(ConfigError {
                        path: name.to_owned(),
                        message: format!("{raw:?} is not true or false (sets {path})"),
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
        if let Err(message) = set_path(value, path, setting) {
            errors.push(ConfigError {
                path: name.to_owned(),
                message,
            });
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(())
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
