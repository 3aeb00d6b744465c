//! Twilio's webhook parameters: parsing, the channel (voice or messaging), typed accessors, and the
//! fallback notice (`ErrorCode`, `ErrorUrl`) Twilio adds when it calls a Fallback URL.
//!
//! Twilio sends its parameters as an `application/x-www-form-urlencoded` POST body, or in the query
//! string for GET webhooks. [`Params`] keeps every pair in order, repeated keys included, exactly as
//! decoded, because the request signature covers all of them.
//!
//! # Example
//!
//! ```
//! use twiml_fallback::error_code::ErrorCode;
//! use twiml_fallback::webhook::{Channel, Params};
//!
//! // The body of the request Twilio sends to a number's "Primary handler fails" URL.
//! let body = b"MessageSid=SM123&From=%2B14155550100&To=%2B14155550199&Body=hi+there\
//!              &ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fsms";
//! let params = Params::from_form(body);
//!
//! assert_eq!(params.channel(), Some(Channel::Messaging));
//! assert_eq!(params.from(), Some("+14155550100"));
//! assert_eq!(params.body(), Some("hi there"));
//!
//! let notice = params.fallback_notice().expect("a fallback request");
//! assert_eq!(notice.error_code, Some(ErrorCode::HTTP_RETRIEVAL_FAILURE));
//! assert_eq!(notice.error_url, Some("https://app.example.com/sms"));
//!
//! // GET webhooks carry the same parameters in the query string.
//! let params = Params::from_query("CallSid=CA42&To=%2B14155550199");
//! assert_eq!(params.channel(), Some(Channel::Voice));
//! assert_eq!(params.call_sid(), Some("CA42"));
//! ```
//!
//! Typed, with serde: any `Deserialize` struct, fields named as Twilio names them.
//!
//! ```
//! use twiml_fallback::webhook::Params;
//!
//! #[derive(serde::Deserialize)]
//! struct InboundSms {
//!     #[serde(rename = "MessageSid")]
//!     sid: String,
//!     #[serde(rename = "Body")]
//!     text: String,
//!     #[serde(rename = "NumMedia", default)]
//!     media: u32,
//! }
//!
//! let params = Params::from_form(b"MessageSid=SM1&Body=Order+42%3F&NumMedia=2");
//! let sms: InboundSms = params.deserialize().unwrap();
//! assert_eq!((sms.sid.as_str(), sms.text.as_str(), sms.media), ("SM1", "Order 42?", 2));
//! ```

use std::fmt;

use crate::error_code::ErrorCode;

/// Which Twilio product called the webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Programmable Voice: a call; TwiML uses `<Say>`, `<Play>`, …
    Voice,
    /// Programmable Messaging: an SMS/MMS; TwiML uses `<Message>`.
    Messaging,
}

impl Channel {
    /// `"voice"` or `"messaging"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Messaging => "messaging",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not `voice`, `messaging` (or `sms`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseChannelError(String);

impl fmt::Display for ParseChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown channel {:?} (expected voice or messaging)", self.0)
    }
}

impl std::error::Error for ParseChannelError {}

impl std::str::FromStr for Channel {
    type Err = ParseChannelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "voice" | "call" => Ok(Channel::Voice),
            "messaging" | "sms" | "message" => Ok(Channel::Messaging),
            _ => Err(ParseChannelError(text.chars().take(32).collect())),
        }
    }
}

/// Room for a key and its value in a typical webhook (the 22 pairs of an SMS fallback average 24 bytes).
const TYPICAL_PAIR_LEN: usize = 32;

/// Twilio's webhook parameters, in the order received, repeated keys included.
///
/// They are kept in one string, each key followed by its value, pair after pair: parsing a
/// webhook allocates twice rather than twice per pair, and what the signature covers of a pair
/// (its key, then its value) lies in one piece.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// Every key followed by its value, in order.
    text: String,
    /// Where each pair lies in `text`.
    spans: Vec<Span>,
}

/// Where one pair lies in [`Params`]' text: its key is `start..value_start`, its value
/// `value_start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) value_start: usize,
    pub(crate) end: usize,
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Params").field("pairs", &DebugPairs(self)).finish()
    }
}

struct DebugPairs<'a>(&'a Params);

impl fmt::Debug for DebugPairs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

/// The parameters Twilio adds when it requests a Fallback URL after the primary URL failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FallbackNotice<'a> {
    /// `ErrorCode`, when present and numeric (the raw text stays available through [`Params::get`]).
    pub error_code: Option<ErrorCode>,
    /// `ErrorUrl`: the primary URL that failed.
    pub error_url: Option<&'a str>,
}

/// The parameter `numbers audit --probe` adds to its synthetic fallback request, holding the
/// probe's id. Signed like every other parameter: a correctly signed request carrying it is a
/// probe the account's owner sent, which the endpoint answers and logs but does not keep, count
/// into an incident or recover.
pub const PROBE_PARAM: &str = "TwimlFallbackProbe";

/// Encodes ordered pairs as an `application/x-www-form-urlencoded` body (`+` for spaces, as
/// Twilio does): every form the project sends — replayed webhooks, Twilio REST calls — goes
/// through here.
///
/// ```
/// use twiml_fallback::webhook::encode_form;
///
/// assert_eq!(encode_form([("To", "+1 415"), ("Body", "a&b=c")]), "To=%2B1+415&Body=a%26b%3Dc");
/// ```
pub fn encode_form<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> String {
    let pairs: Vec<(K, V)> = pairs.into_iter().collect();
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    // Pairs of strings always serialise: serde_urlencoded fails only for values that are not
    // strings, numbers or booleans.
    serde_urlencoded::to_string(borrowed).unwrap_or_default()
}

/// Why parameters did not fit a typed struct ([`Params::deserialize`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormError(String);

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the webhook parameters do not fit: {}", self.0)
    }
}

impl std::error::Error for FormError {}

/// The names of the parameters Twilio adds to a fallback request.
pub const FALLBACK_PARAMS: [&str; 2] = ["ErrorCode", "ErrorUrl"];

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses an `application/x-www-form-urlencoded` body. Never fails: malformed escapes are kept
    /// literally and invalid UTF-8 is replaced, as browsers and Twilio's SDKs do, so a garbage body
    /// yields parameters that simply won't match a signature.
    ///
    /// The result is exactly `form_urlencoded::parse`'s (a test holds it to that); the decoding is
    /// done in one pass per component (about a third fewer instructions on a Twilio webhook).
    pub fn from_form(body: &[u8]) -> Self {
        let mut params = Self {
            // Decoding never lengthens a component (U+FFFD for one invalid byte aside).
            text: String::with_capacity(body.len()),
            spans: Vec::with_capacity(body.iter().filter(|&&byte| byte == b'&').count() + 1),
        };
        let mut scratch = Vec::new();
        for pair in body.split(|&byte| byte == b'&').filter(|pair| !pair.is_empty()) {
            let (name, value) = match memchr::memchr(b'=', pair) {
                Some(equals) => (&pair[..equals], &pair[equals + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let start = params.text.len();
            push_decoded_form_component(&mut params.text, name, &mut scratch);
            let value_start = params.text.len();
            push_decoded_form_component(&mut params.text, value, &mut scratch);
            params.spans.push(Span {
                start,
                value_start,
                end: params.text.len(),
            });
        }
        params
    }

    /// Parses a query string (without the leading `?`), as Twilio sends GET webhooks.
    pub fn from_query(query: &str) -> Self {
        Self::from_form(query.trim_start_matches('?').as_bytes())
    }

    /// The parameters of a request as Twilio sends them: the query string for GET and HEAD, the
    /// body for a form POST (`application/x-www-form-urlencoded`, or no Content-Type), else the
    /// query string (a JSON webhook's parameters are not form fields).
    pub fn from_request(method: &http::Method, query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Self {
        let is_get = method == http::Method::GET || method == http::Method::HEAD;
        if !is_get && is_form_content_type(content_type) {
            Self::from_form(body)
        } else {
            Self::from_query(query.unwrap_or(""))
        }
    }

    /// Builds parameters from pairs, keeping their order.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let pairs = pairs.into_iter();
        let count = pairs.size_hint().0;
        let mut params = Self {
            // Room for pairs of a typical webhook's size: most are filled without growing.
            text: String::with_capacity(count * TYPICAL_PAIR_LEN),
            spans: Vec::with_capacity(count),
        };
        for (key, value) in pairs {
            params.push(key, value);
        }
        params
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        let span = self
            .spans
            .iter()
            .find(|span| self.text.as_bytes()[span.start..span.value_start] == *key.as_bytes())?;
        Some(&self.text[span.value_start..span.end])
    }

    /// Every value of `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let text = self.text.as_bytes();
        self.spans
            .iter()
            .filter(move |span| text[span.start..span.value_start] == *key.as_bytes())
            .map(move |span| &self.text[span.value_start..span.end])
    }

    /// All pairs, in order.
    pub fn iter(&self) -> Pairs<'_> {
        Pairs {
            text: &self.text,
            spans: self.spans.iter(),
        }
    }

    /// Where each pair lies in [`Params::text`], in order (what the signature code reads).
    pub(crate) fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// Every key followed by its value, pair after pair.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Appends a pair.
    pub fn push(&mut self, key: impl AsRef<str>, value: impl AsRef<str>) {
        let start = self.text.len();
        self.text.push_str(key.as_ref());
        let value_start = self.text.len();
        self.text.push_str(value.as_ref());
        self.spans.push(Span {
            start,
            value_start,
            end: self.text.len(),
        });
    }

    /// A copy without the given keys (e.g. [`FALLBACK_PARAMS`], to replay the original webhook).
    pub fn without(&self, keys: &[&str]) -> Self {
        Self::from_pairs(self.iter().filter(|(k, _)| !keys.contains(k)))
    }

    /// Encodes the pairs as a form body (`+` for spaces, as Twilio does), in order: see
    /// [`encode_form`].
    pub fn to_form(&self) -> String {
        encode_form(self.iter())
    }

    /// The parameters as a typed value — any `serde::Deserialize` struct whose fields are named
    /// (or `#[serde(rename)]`d) as Twilio's parameters, with `serde_urlencoded`'s rules (numbers
    /// and booleans parsed from their text; `Option` and `#[serde(default)]` for parameters Twilio
    /// may leave out).
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T, FormError> {
        serde_urlencoded::from_str(&self.to_form()).map_err(|error| FormError(error.to_string()))
    }

    /// Voice when `CallSid` is present; messaging when `MessageSid`, `SmsSid` or `SmsMessageSid`
    /// is; otherwise `None` (not a voice or messaging webhook we recognise).
    pub fn channel(&self) -> Option<Channel> {
        if self.has(CALL_SID_KEY) {
            Some(Channel::Voice)
        } else if self.message_sid().is_some() {
            Some(Channel::Messaging)
        } else {
            None
        }
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some_and(|value| !value.is_empty())
    }

    fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|value| !value.is_empty())
    }

    /// `CallSid`.
    pub fn call_sid(&self) -> Option<&str> {
        self.non_empty(CALL_SID_KEY)
    }

    /// `MessageSid`, else the older `SmsMessageSid` or `SmsSid`.
    pub fn message_sid(&self) -> Option<&str> {
        MESSAGE_SID_KEYS.iter().find_map(|key| self.non_empty(key))
    }

    /// The call's or the message's SID, whichever the request carries.
    pub fn sid(&self) -> Option<&str> {
        self.call_sid().or_else(|| self.message_sid())
    }

    /// The SID for `channel`: `CallSid` for voice, `MessageSid` (or its older names) for
    /// messaging, whichever is present when the channel is unknown.
    pub fn sid_for(&self, channel: Option<Channel>) -> Option<&str> {
        match channel {
            Some(Channel::Voice) => self.call_sid(),
            Some(Channel::Messaging) => self.message_sid(),
            None => self.sid(),
        }
    }

    /// `AccountSid`.
    pub fn account_sid(&self) -> Option<&str> {
        self.non_empty("AccountSid")
    }

    /// `From`: the caller or the sender.
    pub fn from(&self) -> Option<&str> {
        self.non_empty("From")
    }

    /// `To`: the number that was called or messaged (the key for per-number configuration).
    pub fn to(&self) -> Option<&str> {
        self.non_empty("To")
    }

    /// `Body`: the text of an incoming message.
    pub fn body(&self) -> Option<&str> {
        self.get("Body")
    }

    /// `NumMedia`: how many pictures an incoming MMS carries.
    pub fn num_media(&self) -> Option<u32> {
        self.get("NumMedia").and_then(|n| n.trim().parse().ok())
    }

    /// `CallStatus`, e.g. `ringing`.
    pub fn call_status(&self) -> Option<&str> {
        self.non_empty("CallStatus")
    }

    /// `Direction`, e.g. `inbound`.
    pub fn direction(&self) -> Option<&str> {
        self.non_empty("Direction")
    }

    /// The probe id of a synthetic request from `numbers audit --probe` ([`PROBE_PARAM`]).
    pub fn probe(&self) -> Option<&str> {
        self.non_empty(PROBE_PARAM)
    }

    /// `ErrorCode` and `ErrorUrl`, when Twilio is calling a Fallback URL; `None` when neither is present.
    pub fn fallback_notice(&self) -> Option<FallbackNotice<'_>> {
        let code = self.get("ErrorCode");
        let url = self.non_empty("ErrorUrl");
        if code.is_none() && url.is_none() {
            return None;
        }
        Some(FallbackNotice {
            error_code: code.and_then(|c| c.parse().ok()),
            error_url: url,
        })
    }
}

/// One name or value of a form: `+` is a space, `%XX` the byte XX (a malformed escape stays as it
/// is), invalid UTF-8 is replaced by U+FFFD.
pub(crate) fn decode_form_component(input: &[u8]) -> String {
    let mut decoded = String::new();
    push_decoded_form_component(&mut decoded, input, &mut Vec::new());
    decoded
}

/// [`decode_form_component`] appended to `text`; `scratch` (any contents) holds the bytes of a
/// component with escapes while they are checked for UTF-8.
fn push_decoded_form_component(text: &mut String, input: &[u8], scratch: &mut Vec<u8>) {
    let push_utf8 = |text: &mut String, bytes: &[u8]| match std::str::from_utf8(bytes) {
        Ok(valid) => text.push_str(valid),
        Err(_) => text.push_str(&String::from_utf8_lossy(bytes)),
    };
    if memchr::memchr2(b'+', b'%', input).is_none() {
        return push_utf8(text, input);
    }
    let hex = |byte: Option<&u8>| byte.and_then(|byte| (*byte as char).to_digit(16));
    let decoded = scratch;
    decoded.clear();
    let mut rest = input;
    // Copy the runs between escapes whole; decode each `+` and `%XX`.
    while let Some(at) = memchr::memchr2(b'+', b'%', rest) {
        decoded.extend_from_slice(&rest[..at]);
        if rest[at] == b'+' {
            decoded.push(b' ');
            rest = &rest[at + 1..];
        } else if let (Some(high), Some(low)) = (hex(rest.get(at + 1)), hex(rest.get(at + 2))) {
            // Two hex digits: at most 0xFF.
            decoded.push((high * 16 + low) as u8);
            rest = &rest[at + 3..];
        } else {
            decoded.push(b'%');
            rest = &rest[at + 1..];
        }
    }
    decoded.extend_from_slice(rest);
    push_utf8(text, decoded);
}

/// The channel of a raw form body or query string (as [`Params::channel`] would find it), without
/// decoding values or allocating: only keys are looked at, and only whether their values are empty.
/// As with [`Params::get`], the first occurrence of a key is the one that counts.
///
/// Twilio never escapes a key, so a form usually holds the four keys as they are spelled: they are
/// then found by searching for them (a vectorised scan per key, from the start to the first one
/// there), not pair by pair. Only a form with a `%` in some key, which could decode into one of
/// the four, is read pair by pair and its keys decoded.
pub fn channel_of_form(raw: &[u8]) -> Option<Channel> {
    if has_escaped_key(raw) {
        return channel_of_escaped_form(raw);
    }
    let keys = &*SID_KEYS;
    if keys.call.first_has_value(raw) {
        Some(Channel::Voice)
    } else if keys.messaging.iter().any(|key| key.first_has_value(raw)) {
        Some(Channel::Messaging)
    } else {
        None
    }
}

/// The key whose non-empty value makes a webhook a call's.
const CALL_SID_KEY: &str = "CallSid";

/// The keys whose non-empty value makes a webhook a message's, in the order
/// [`Params::message_sid`] prefers them.
const MESSAGE_SID_KEYS: [&str; 3] = ["MessageSid", "SmsMessageSid", "SmsSid"];

/// The keys that decide a webhook's channel, each with its searcher (built once).
struct SidKeys {
    call: LiteralKey,
    /// `MESSAGE_SID_KEYS` in the order they are searched for: `SmsMessageSid` (Twilio's third
    /// parameter of an SMS webhook) first.
    messaging: [LiteralKey; 3],
}

static SID_KEYS: std::sync::LazyLock<SidKeys> = std::sync::LazyLock::new(|| {
    let [message_sid, sms_message_sid, sms_sid] = MESSAGE_SID_KEYS;
    SidKeys {
        call: LiteralKey::new(CALL_SID_KEY),
        // `SmsMessageSid` first: it is the third parameter of Twilio's SMS form, so its search
        // stops near the start, where `MessageSid`'s would run on to near the end.
        messaging: [sms_message_sid, message_sid, sms_sid].map(LiteralKey::new),
    }
});

/// A key looked for as it is spelled, in a form none of whose keys holds an escape.
struct LiteralKey {
    key: &'static str,
    finder: memchr::memmem::Finder<'static>,
}

impl LiteralKey {
    fn new(key: &'static str) -> Self {
        Self {
            key,
            finder: memchr::memmem::Finder::new(key),
        }
    }

    /// Whether the first pair with this key has a non-empty value (false when no pair has it).
    /// A raw `&` only ever separates pairs, so the key's text at the start of the form or after
    /// an `&`, followed by `=`, `&` or the end, is that key; anywhere else it is part of another
    /// key or of a value. (None of the four keys begins with its own ending, so the search's
    /// non-overlapping matches are all of them.)
    fn first_has_value(&self, raw: &[u8]) -> bool {
        // `find` from past each match rather than `find_iter`: the same matches, without the
        // iterator's state copied in for two searches per request.
        let mut from = 0;
        while let Some(found) = self.finder.find(&raw[from..]) {
            let at = from + found;
            let end = at + self.key.len();
            from = end;
            if at > 0 && raw[at - 1] != b'&' {
                continue;
            }
            match raw.get(end) {
                None | Some(b'&') => return false,
                Some(b'=') => return raw.get(end + 1).is_some_and(|&byte| byte != b'&'),
                Some(_) => {}
            }
        }
        false
    }
}

/// Whether some key of the form holds a `%`: only such a key can decode into a key it does not
/// spell (a `+` decodes to a space, which none of the four keys has). Each value holding a `%` is
/// crossed once, from its first `%` back to its `=` and on to its end, so this stays linear
/// however many escapes a long value has.
fn has_escaped_key(raw: &[u8]) -> bool {
    let mut from = 0;
    while let Some(found) = memchr::memchr(b'%', &raw[from..]) {
        let at = from + found;
        // An `=` after the pair's start and before the `%` puts the `%` in the value.
        match memchr::memrchr2(b'&', b'=', &raw[..at]) {
            Some(boundary) if raw[boundary] == b'=' => {
                from = memchr::memchr(b'&', &raw[at..]).map_or(raw.len(), |end| at + end);
            }
            _ => return true,
        }
    }
    false
}

/// [`channel_of_form`] for a form with an escaped key: pair by pair, decoding the keys that could
/// be one of the four.
fn channel_of_escaped_form(raw: &[u8]) -> Option<Channel> {
    // `CALL_SID_KEY`, then `MESSAGE_SID_KEYS`: whether each was seen yet.
    let mut seen = [false; 1 + MESSAGE_SID_KEYS.len()];
    let mut messaging = false;
    // The pairs, found with `memchr` (a byte-by-byte split was a tenth of the layer's time).
    let mut pair_start = 0;
    let ends = memchr::memchr_iter(b'&', raw).chain(std::iter::once(raw.len()));
    for pair_end in ends {
        let pair = &raw[pair_start..pair_end];
        pair_start = pair_end + 1;
        // Only a key starting with C, M, S or an escape can be one of the four.
        if !matches!(pair.first(), Some(b'C' | b'M' | b'S' | b'%')) {
            continue;
        }
        // Keys are short: plain loops beat memchr's set-up here.
        let (key, value) = match pair.iter().position(|&byte| byte == b'=') {
            Some(equals) => (&pair[..equals], &pair[equals + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        let decoded;
        let key = if key.iter().any(|&byte| matches!(byte, b'%' | b'+')) {
            decoded = decode_form_component(key);
            decoded.as_bytes()
        } else {
            key
        };
        let index = if key == CALL_SID_KEY.as_bytes() {
            0
        } else if let Some(index) = MESSAGE_SID_KEYS.iter().position(|sid| sid.as_bytes() == key) {
            1 + index
        } else {
            continue;
        };
        // A non-empty raw value decodes to a non-empty one, and the reverse.
        if std::mem::replace(&mut seen[index], true) || value.is_empty() {
            continue;
        }
        if index == 0 {
            return Some(Channel::Voice);
        }
        messaging = true;
    }
    messaging.then_some(Channel::Messaging)
}

/// Whether `number` is an E.164 phone number as Twilio writes them: `+`, then 8 to 15 digits,
/// the first not 0 (`+14155550199`). The rule for the configuration's per-number answers and the
/// CLI's `--number`.
///
/// ```
/// use twiml_fallback::webhook::is_e164;
///
/// assert!(is_e164("+14155550199"));
/// assert!(!is_e164("14155550199") && !is_e164("+1 415 555 0199") && !is_e164("+0123456789"));
/// ```
pub fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
    })
}

/// Whether `sid` is a Twilio SID with the two-letter `prefix` — `AC` for an account, `PN` for a
/// phone number, `SK` for an API key —: the prefix, then 32 hexadecimal digits.
///
/// ```
/// use twiml_fallback::webhook::is_sid;
///
/// assert!(is_sid("AC0123456789abcdef0123456789abcdef", "AC"));
/// assert!(!is_sid("AC0123456789abcdef", "AC"), "too short");
/// assert!(!is_sid("PN0123456789abcdef0123456789abcdef", "AC"), "another kind of SID");
/// ```
pub fn is_sid(sid: &str, prefix: &str) -> bool {
    sid.strip_prefix(prefix)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether a Content-Type header (absent counts) announces a form body.
pub fn is_form_content_type(content_type: Option<&str>) -> bool {
    const FORM: &str = "application/x-www-form-urlencoded";
    // What Twilio sends, spelled exactly: known without taking the value apart.
    if content_type == Some(FORM) {
        return true;
    }
    let media_type = media_type(content_type.unwrap_or(""));
    media_type.is_empty() || media_type.eq_ignore_ascii_case(FORM)
}

/// The media type of a Content-Type value: what comes before its first `;`, without the
/// whitespace around it. `memchr`, because the layer reads two Content-Types per request
/// and `split(';')`'s char searcher cost more than the comparisons the media type then feeds.
pub(crate) fn media_type(content_type: &str) -> &str {
    let end = memchr::memchr(b';', content_type.as_bytes()).unwrap_or(content_type.len());
    content_type[..end].trim()
}

impl<'a> IntoIterator for &'a Params {
    type Item = (&'a str, &'a str);
    type IntoIter = Pairs<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The pairs of [`Params`], in order: see [`Params::iter`].
#[derive(Clone, Debug)]
pub struct Pairs<'a> {
    text: &'a str,
    spans: std::slice::Iter<'a, Span>,
}

impl<'a> Pairs<'a> {
    #[inline]
    fn pair(&self, span: &Span) -> (&'a str, &'a str) {
        (
            &self.text[span.start..span.value_start],
            &self.text[span.value_start..span.end],
        )
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a str);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.spans.next().map(|span| self.pair(span))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl DoubleEndedIterator for Pairs<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        self.spans.next_back().map(|span| self.pair(span))
    }
}

impl ExactSizeIterator for Pairs<'_> {}

impl std::iter::FusedIterator for Pairs<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// `from_form` must parse exactly as `form_urlencoded::parse` does, on anything.
    #[test]
    fn form_parsing_matches_form_urlencoded_on_random_bytes() {
        // Bytes chosen to hit every branch: separators, escapes (valid, short, non-hex), `+`,
        // ASCII, and UTF-8 lead/continuation bytes alone or in sequences.
        const ALPHABET: &[u8] = b"&&==%%++aZ09fF\x00\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x8d\xb0\xff";
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..20_000 {
            let len = (next() % 48) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            let expected: Vec<(String, String)> = form_urlencoded::parse(&input)
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect();
            let parsed = Params::from_form(&input);
            let actual: Vec<(String, String)> = parsed
                .iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect();
            assert_eq!(actual, expected, "case {case}: {input:?}");
        }
    }

    #[test]
    fn form_body_keeps_repeated_keys_in_order() {
        let params = Params::from_form(b"Digits=5678&Sid=CA1&Digits=1234&Digits=1234");
        assert_eq!(params.get("Digits"), Some("5678"));
        assert_eq!(params.get_all("Digits").collect::<Vec<_>>(), ["5678", "1234", "1234"]);
        assert_eq!(params.len(), 4);
    }

    #[test]
    fn decodes_plus_percent_and_utf8() {
        let params = Params::from_form("Body=caf%C3%A9+%F0%9F%8D%B0&Empty=&Bare".as_bytes());
        assert_eq!(params.body(), Some("café 🍰"));
        assert_eq!(params.get("Empty"), Some(""));
        assert_eq!(params.get("Bare"), Some(""));
    }

    #[test]
    fn garbage_bodies_parse_without_panicking() {
        for body in [
            &b"%%%%"[..],
            b"\xff\xfe\x00=\x80",
            b"=&=&&",
            b"%E0%A4%A",
            b"a=%ZZ",
            b"<Response>",
        ] {
            let params = Params::from_form(body);
            assert_eq!(params.channel(), None);
        }
        assert_eq!(Params::from_form(b"a=%ZZ").get("a"), Some("%ZZ"));
        assert_eq!(Params::from_form(b"a=%ff").get("a"), Some("\u{FFFD}"));
    }

    #[test]
    fn channel_follows_the_sid_twilio_sends() {
        assert_eq!(Params::from_query("CallSid=CA1").channel(), Some(Channel::Voice));
        assert_eq!(Params::from_query("MessageSid=SM1").channel(), Some(Channel::Messaging));
        assert_eq!(Params::from_query("SmsSid=SM1").channel(), Some(Channel::Messaging));
        assert_eq!(
            Params::from_query("SmsMessageSid=SM1").channel(),
            Some(Channel::Messaging)
        );
        assert_eq!(Params::from_query("?From=%2B1&To=%2B2").channel(), None);
        assert_eq!(Params::from_query("CallSid=").channel(), None);
    }

    #[test]
    fn message_sid_prefers_the_current_name() {
        let params = Params::from_query("SmsSid=SMold&MessageSid=SMnew");
        assert_eq!(params.message_sid(), Some("SMnew"));
        assert_eq!(params.sid(), Some("SMnew"));
    }

    #[test]
    fn typed_accessors_read_common_fields() {
        let params = Params::from_query(
            "AccountSid=AC1&CallSid=CA1&From=%2B1415&To=%2B1800&CallStatus=ringing&Direction=inbound&NumMedia=2",
        );
        assert_eq!(params.account_sid(), Some("AC1"));
        assert_eq!(params.from(), Some("+1415"));
        assert_eq!(params.to(), Some("+1800"));
        assert_eq!(params.call_status(), Some("ringing"));
        assert_eq!(params.direction(), Some("inbound"));
        assert_eq!(params.num_media(), Some(2));
    }

    #[test]
    fn fallback_notice_is_present_only_on_fallback_requests() {
        assert_eq!(Params::from_query("CallSid=CA1").fallback_notice(), None);
        let notice = Params::from_query("ErrorCode=12100&ErrorUrl=https%3A%2F%2Fa.example%2Fv");
        assert_eq!(
            notice.fallback_notice(),
            Some(FallbackNotice {
                error_code: Some(ErrorCode::DOCUMENT_PARSE_FAILURE),
                error_url: Some("https://a.example/v"),
            })
        );
        let odd = Params::from_query("ErrorCode=oops");
        assert_eq!(odd.fallback_notice().map(|n| n.error_code), Some(None));
    }

    #[test]
    fn without_strips_fallback_params_for_replay() {
        let params = Params::from_query("CallSid=CA1&ErrorCode=11200&To=%2B1&ErrorUrl=x");
        let replay = params.without(&FALLBACK_PARAMS);
        assert_eq!(replay.iter().collect::<Vec<_>>(), [("CallSid", "CA1"), ("To", "+1")]);
    }

    #[test]
    fn to_form_round_trips() {
        let params = Params::from_pairs([("Body", "a b&c=d+é"), ("Body", ""), ("K", "🍰")]);
        assert_eq!(Params::from_form(params.to_form().as_bytes()), params);
    }

    #[test]
    fn request_params_come_from_the_query_for_get_and_the_body_for_form_posts() {
        let query = Some("CallSid=CAq");
        let body = b"CallSid=CAb";
        assert_eq!(
            Params::from_request(&http::Method::GET, query, None, body).call_sid(),
            Some("CAq")
        );
        assert_eq!(
            Params::from_request(&http::Method::HEAD, query, None, body).call_sid(),
            Some("CAq")
        );
        assert_eq!(
            Params::from_request(&http::Method::POST, query, None, body).call_sid(),
            Some("CAb")
        );
        let form = Some("application/x-www-form-urlencoded; charset=UTF-8");
        assert_eq!(
            Params::from_request(&http::Method::POST, query, form, body).call_sid(),
            Some("CAb")
        );
        assert_eq!(
            Params::from_request(&http::Method::POST, query, Some("application/json"), body).call_sid(),
            Some("CAq")
        );
        assert!(Params::from_request(&http::Method::POST, None, Some("text/plain"), body).is_empty());
    }

    #[test]
    fn channel_of_form_agrees_with_parsed_params() {
        for raw in [
            "CallSid=CA1&To=%2B1",
            "To=%2B1&MessageSid=SM1&CallSid=CA1",
            "SmsSid=SM1",
            "SmsMessageSid=SM1&Body=a+b",
            "MessageSid=&CallSid=",
            "Call%53id=CA1",
            "Message+Sid=SM1",
            "CallSid",
            "",
            "&&=&",
            "%ZZ=1&MessageSid=%ZZ",
            "%43allSid=CA1",
            "C%61llSid=CA1",
            "+CallSid=CA1",
            "To=%2B1&%53%6D%73%4D%65%73%73%61%67%65%53%69%64=SM1",
            "Body=a%26b&x=CallSid%3D1",
            "xCallSid=CA1&SmsSid=",
            "Body=&CallSid=CA1",
            // The first occurrence counts, as for Params::get (found by fuzzing).
            "CallSid&CallSid=CA1",
            "CallSid=&MessageSid=SM1&CallSid=CA1",
            "MessageSid=&MessageSid=SM1",
            "MessageSid=&SmsSid=SM1",
            "SmsSid=SM1&CallSid=&CallSid=CA1",
            // 0xA6 (in "æ") is `&` with the high bit set: not a separator.
            "x\u{e6}CallSid=CA1",
            "MessageSid=SM1&Body=\u{e6}&CallSid=CA1",
            // Keys searched for as they are spelled: `%` in values only.
            "Body=100%25&CallSid=CA1",
            "Body=%&x=%%&CallSid=CA1",
            "a=b=%&CallSid=CA1",
            "=%&SmsSid=SM1",
            "CallSidX=1&xCallSid=2&CallSid=CA1",
            "SmsSmsSid=SM1&MessageSidx=SM1",
            "Body=CallSid%3DCA1&SmsMessageSid=",
            "CallSid==",
            "MessageSid",
            // A `%` in a key: read pair by pair.
            "CallSid%=x&CallSid=CA1",
            "%=1&CallSid=CA1",
            "x=%&%43allSid=CA1",
            "MessageSid=&Call%53id=CA1",
        ] {
            assert_eq!(
                channel_of_form(raw.as_bytes()),
                Params::from_form(raw.as_bytes()).channel(),
                "{raw}"
            );
        }
    }

    #[test]
    fn an_escape_counts_as_in_a_key_only_before_the_pairs_first_equals_sign() {
        for raw in [
            "%43allSid=CA1",
            "a=1&C%61llSid",
            "a=%&%=b",
            "Body=%41&Call%53id=CA1",
            "x%",
        ] {
            assert!(has_escaped_key(raw.as_bytes()), "{raw}");
        }
        for raw in [
            "",
            "a=%",
            "a=b=%&c=%25%25",
            "=%",
            "a=1&b=%2B1&c",
            "Body=%F0%9F%98%80%F0%9F%98%80",
        ] {
            assert!(!has_escaped_key(raw.as_bytes()), "{raw}");
        }
    }

    mod channel_of_form_agrees_with_parsed_params_on {
        use proptest::prelude::*;

        use super::*;

        /// Forms whose keys are mostly the four SID keys, escaped or not, with empty, short and
        /// long values (the long ones move the `&`s across the eight-byte words).
        fn form_like() -> impl Strategy<Value = String> {
            let key = prop_oneof![
                Just("CallSid".to_owned()),
                Just("MessageSid".to_owned()),
                Just("SmsSid".to_owned()),
                Just("SmsMessageSid".to_owned()),
                Just("Call%53id".to_owned()),
                Just("%53msSid".to_owned()),
                Just("Message+Sid".to_owned()),
                "[CMS%+=&a-z0-9\u{e6}]{0,14}",
            ];
            let value = prop_oneof![Just(String::new()), "[A-Za-z0-9%+=\u{e6}]{1,40}"];
            let pair = (key, proptest::option::of(value)).prop_map(|(key, value)| match value {
                Some(value) => format!("{key}={value}"),
                None => key,
            });
            proptest::collection::vec(pair, 0..12).prop_map(|pairs| pairs.join("&"))
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn generated_forms(form in form_like()) {
                prop_assert_eq!(channel_of_form(form.as_bytes()), Params::from_form(form.as_bytes()).channel(), "{}", form);
            }

            /// The same forms with every `%` taken out of the keys: the keys are searched for.
            #[test]
            fn generated_forms_without_escaped_keys(form in form_like()) {
                let form = form
                    .split('&')
                    .map(|pair| match pair.split_once('=') {
                        Some((key, value)) => format!("{}={value}", key.replace('%', "")),
                        None => pair.replace('%', ""),
                    })
                    .collect::<Vec<_>>()
                    .join("&");
                prop_assert!(!has_escaped_key(form.as_bytes()), "{}", form);
                prop_assert_eq!(channel_of_form(form.as_bytes()), Params::from_form(form.as_bytes()).channel(), "{}", form);
            }

            #[test]
            fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                prop_assert_eq!(channel_of_form(&bytes), Params::from_form(&bytes).channel());
            }
        }
    }

    #[test]
    fn a_form_is_known_by_its_media_type_alone() {
        for form in [
            None,
            Some(""),
            Some("; charset=utf-8"),
            Some("application/x-www-form-urlencoded"),
            Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
            Some(" application/x-www-form-urlencoded ;charset=utf-8;"),
        ] {
            assert!(is_form_content_type(form), "{form:?}");
        }
        for other in [
            "application/json",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencodedx",
            "text/plain; application/x-www-form-urlencoded",
        ] {
            assert!(!is_form_content_type(Some(other)), "{other:?}");
        }
        assert_eq!(media_type("text/xml; charset=utf-8"), "text/xml");
        assert_eq!(media_type("\u{a0}text/xml\u{a0};"), "text/xml");
        assert_eq!(media_type("text/xml"), "text/xml");
        assert_eq!(media_type(" ;text/xml"), "");
    }

    #[test]
    fn numbers_and_sids_follow_twilios_shapes() {
        for number in ["+14155550199", "+442071838750", "+12345678", "+123456789012345"] {
            assert!(is_e164(number), "{number}");
        }
        for number in [
            "",
            "+",
            "14155550199",
            "+1415555019a",
            "+1234567",
            "+1234567890123456",
            "+0415555019",
            "+1 415",
        ] {
            assert!(!is_e164(number), "{number}");
        }
        assert!(is_sid("AC00000000000000000000000000000001", "AC"));
        assert!(is_sid("ACABCDEF0123456789abcdef0123456789", "AC"));
        for sid in [
            "AC0000000000000000000000000000000",   // 31 digits
            "AC000000000000000000000000000000011", // 33
            "AC0000000000000000000000000000000g",
            "ac00000000000000000000000000000001",
            "PN00000000000000000000000000000001",
            "AC",
        ] {
            assert!(!is_sid(sid, "AC"), "{sid}");
        }
    }

    #[test]
    fn channel_parses_from_text() {
        assert_eq!("Voice".parse::<Channel>(), Ok(Channel::Voice));
        assert_eq!("sms".parse::<Channel>(), Ok(Channel::Messaging));
        assert!("fax".parse::<Channel>().is_err());
    }

    #[test]
    fn typed_structs_deserialize_and_say_what_does_not_fit() {
        #[derive(serde::Deserialize, Debug)]
        struct Call {
            #[serde(rename = "CallSid")]
            _sid: String,
            #[serde(rename = "Digits")]
            digits: Option<u32>,
        }
        let call: Call = Params::from_form(b"CallSid=CA1&Digits=1234&Extra=ignored")
            .deserialize()
            .expect("fits");
        assert_eq!(call.digits, Some(1234));
        let error = Params::from_form(b"Digits=12")
            .deserialize::<Call>()
            .expect_err("no CallSid");
        assert!(error.to_string().contains("CallSid"), "{error}");
        let error = Params::from_form(b"CallSid=CA1&Digits=1%2A")
            .deserialize::<Call>()
            .expect_err("not a number");
        assert!(
            error.to_string().starts_with("the webhook parameters do not fit"),
            "{error}"
        );
    }

    #[test]
    fn forms_encode_as_form_urlencoded_does() {
        let pairs = [
            ("To", "+1 (415) 555"),
            ("Body", "héllo & <bye>="),
            ("", "empty key"),
            ("K", ""),
        ];
        let expected = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        assert_eq!(encode_form(pairs), expected);
    }
}
