//! The typed TwiML a fallback needs: a [`Response`] holding voice and messaging verbs.

use crate::webhook::Channel;

/// A TwiML document: the `<Response>` root and its verbs, in order.
///
/// Build one with the chaining methods, then render it with [`Response::to_xml`] (or `Display`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    verbs: Vec<Verb>,
}

/// One verb directly inside `<Response>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verb {
    /// `<Say>`: text to speech (voice).
    Say(Say),
    /// `<Play>`: an audio file or DTMF digits (voice).
    Play(Play),
    /// `<Pause>`: silence (voice).
    Pause(Pause),
    /// `<Redirect>`: continue with TwiML from another URL (voice and messaging).
    Redirect(Redirect),
    /// `<Hangup/>`: end the call (voice).
    Hangup(Hangup),
    /// `<Reject>`: refuse an incoming call without answering it (voice).
    Reject(Reject),
    /// `<Message>`: reply to the sender (messaging).
    Message(Message),
}

/// `<Say>`: speak text to the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Say {
    pub(crate) text: String,
    pub(crate) voice: Option<String>,
    pub(crate) language: Option<String>,
    pub(crate) loop_count: Option<u32>,
}

/// `<Play>`: play an audio URL, or send DTMF digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Play {
    pub(crate) url: String,
    pub(crate) loop_count: Option<u32>,
    pub(crate) digits: Option<String>,
}

/// `<Pause>`: wait silently.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pause {
    pub(crate) length: Option<u32>,
}

/// `<Redirect>`: fetch and continue with TwiML from another URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub(crate) url: String,
    pub(crate) method: Option<http::Method>,
}

/// `<Hangup/>`: end the call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hangup;

/// `<Reject>`: decline an incoming call; the caller hears a busy or "not in service" tone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reject {
    pub(crate) reason: Option<RejectReason>,
}

/// Why a call is rejected, which decides the tone the caller hears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// `reason="rejected"`: "not in service" (Twilio's default).
    Rejected,
    /// `reason="busy"`: a busy signal.
    Busy,
}

impl RejectReason {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Rejected => "rejected",
            RejectReason::Busy => "busy",
        }
    }
}

/// `<Message>`: an SMS/MMS reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub(crate) content: MessageContent,
    pub(crate) to: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) action: Option<String>,
    pub(crate) method: Option<http::Method>,
    pub(crate) status_callback: Option<String>,
}

/// What a `<Message>` carries: plain text, or `<Body>` plus `<Media>` nouns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageContent {
    /// `<Message>text</Message>`
    Text(String),
    /// `<Message><Body>text</Body><Media>url</Media>…</Message>`
    Nouns {
        /// The `<Body>` text, if any.
        body: Option<String>,
        /// The `<Media>` URLs, in order (Twilio accepts up to 10).
        media: Vec<String>,
    },
}

impl Response {
    /// An empty `<Response/>`: valid for both channels, and it makes Twilio do nothing further.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a verb.
    pub fn verb(mut self, verb: impl Into<Verb>) -> Self {
        self.verbs.push(verb.into());
        self
    }

    /// Appends a verb in place.
    pub fn push(&mut self, verb: impl Into<Verb>) {
        self.verbs.push(verb.into());
    }

    /// Appends `<Say>text</Say>`.
    pub fn say(self, text: impl Into<String>) -> Self {
        self.verb(Say::new(text))
    }

    /// Appends `<Play>url</Play>`.
    pub fn play(self, url: impl Into<String>) -> Self {
        self.verb(Play::new(url))
    }

    /// Appends `<Message>text</Message>`.
    pub fn message(self, text: impl Into<String>) -> Self {
        self.verb(Message::new(text))
    }

    /// The verbs, in document order.
    pub fn verbs(&self) -> &[Verb] {
        &self.verbs
    }

    /// The channel the verbs belong to: `Some` when every channel-specific verb agrees, `None`
    /// for an empty document, a document of only `<Redirect>`s, or one that mixes channels.
    pub fn channel(&self) -> Option<Channel> {
        let mut found = None;
        for verb in &self.verbs {
            match (found, verb.channel()) {
                (_, None) => {}
                (None, Some(channel)) => found = Some(channel),
                (Some(seen), Some(channel)) if seen != channel => return None,
                _ => {}
            }
        }
        found
    }
}

impl Verb {
    /// The TwiML element name, e.g. `"Say"`.
    pub fn name(&self) -> &'static str {
        match self {
            Verb::Say(_) => "Say",
            Verb::Play(_) => "Play",
            Verb::Pause(_) => "Pause",
            Verb::Redirect(_) => "Redirect",
            Verb::Hangup(_) => "Hangup",
            Verb::Reject(_) => "Reject",
            Verb::Message(_) => "Message",
        }
    }

    /// The channel this verb is limited to; `None` for `<Redirect>`, which both channels accept.
    pub fn channel(&self) -> Option<Channel> {
        match self {
            Verb::Say(_) | Verb::Play(_) | Verb::Pause(_) | Verb::Hangup(_) | Verb::Reject(_) => Some(Channel::Voice),
            Verb::Message(_) => Some(Channel::Messaging),
            Verb::Redirect(_) => None,
        }
    }
}

macro_rules! into_verb {
    ($($ty:ident),*) => {
        $( impl From<$ty> for Verb {
            fn from(value: $ty) -> Self {
                Verb::$ty(value)
            }
        } )*
    };
}
into_verb!(Say, Play, Pause, Redirect, Hangup, Reject, Message);

impl Say {
    /// `<Say>text</Say>`.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            voice: None,
            language: None,
            loop_count: None,
        }
    }

    /// The `voice` attribute, e.g. `"alice"` or `"Polly.Joanna"`.
    pub fn voice(mut self, voice: impl Into<String>) -> Self {
        self.voice = Some(voice.into());
        self
    }

    /// The `language` attribute, e.g. `"en-US"`.
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    /// The `loop` attribute: how many times to speak (0 = until the call ends).
    pub fn loop_count(mut self, times: u32) -> Self {
        self.loop_count = Some(times);
        self
    }

    /// The text spoken.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl Play {
    /// `<Play>url</Play>`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            loop_count: None,
            digits: None,
        }
    }

    /// `<Play digits="…"/>`: play DTMF tones instead of a file (`w` waits half a second).
    pub fn digits_only(digits: impl Into<String>) -> Self {
        Self::new("").digits(digits)
    }

    /// The `loop` attribute: how many times to play (0 = until the call ends).
    pub fn loop_count(mut self, times: u32) -> Self {
        self.loop_count = Some(times);
        self
    }

    /// The `digits` attribute.
    pub fn digits(mut self, digits: impl Into<String>) -> Self {
        self.digits = Some(digits.into());
        self
    }

    /// The audio URL (empty for digits-only).
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Pause {
    /// `<Pause/>` (Twilio's default: one second).
    pub fn new() -> Self {
        Self::default()
    }

    /// The `length` attribute, in seconds.
    pub fn length(mut self, seconds: u32) -> Self {
        self.length = Some(seconds);
        self
    }
}

impl Redirect {
    /// `<Redirect>url</Redirect>`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            method: None,
        }
    }

    /// The `method` attribute: how Twilio requests the URL (`GET` or `POST`, Twilio's default;
    /// the validator reports any other method).
    pub fn method(mut self, method: http::Method) -> Self {
        self.method = Some(method);
        self
    }
}

impl Reject {
    /// `<Reject/>`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `reason` attribute.
    pub fn reason(mut self, reason: RejectReason) -> Self {
        self.reason = Some(reason);
        self
    }
}

impl Message {
    /// `<Message>text</Message>`.
    pub fn new(text: impl Into<String>) -> Self {
        Self::with_content(MessageContent::Text(text.into()))
    }

    /// `<Message><Body>text</Body></Message>`; add pictures with [`Message::media`].
    pub fn with_body(text: impl Into<String>) -> Self {
        Self::with_content(MessageContent::Nouns {
            body: Some(text.into()),
            media: Vec::new(),
        })
    }

    fn with_content(content: MessageContent) -> Self {
        Self {
            content,
            to: None,
            from: None,
            action: None,
            method: None,
            status_callback: None,
        }
    }

    /// Appends a `<Media>` URL (turning plain text into `<Body>` + `<Media>`).
    pub fn media(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        match &mut self.content {
            MessageContent::Nouns { media, .. } => media.push(url),
            MessageContent::Text(text) => {
                let body = std::mem::take(text);
                self.content = MessageContent::Nouns {
                    body: (!body.is_empty()).then_some(body),
                    media: vec![url],
                };
            }
        }
        self
    }

    /// The `to` attribute (defaults to the sender).
    pub fn to(mut self, to: impl Into<String>) -> Self {
        self.to = Some(to.into());
        self
    }

    /// The `from` attribute (defaults to the number that was messaged).
    pub fn from(mut self, from: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self
    }

    /// The `action` attribute: URL Twilio calls with the message's status.
    pub fn action(mut self, url: impl Into<String>) -> Self {
        self.action = Some(url.into());
        self
    }

    /// The `method` attribute for `action` (`GET` or `POST`, Twilio's default; the validator
    /// reports any other method).
    pub fn method(mut self, method: http::Method) -> Self {
        self.method = Some(method);
        self
    }

    /// The `statusCallback` attribute.
    pub fn status_callback(mut self, url: impl Into<String>) -> Self {
        self.status_callback = Some(url.into());
        self
    }

    /// What the message carries.
    pub fn content(&self) -> &MessageContent {
        &self.content
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_is_inferred_from_channel_specific_verbs() {
        assert_eq!(Response::new().channel(), None);
        assert_eq!(Response::new().say("hi").channel(), Some(Channel::Voice));
        assert_eq!(Response::new().message("hi").channel(), Some(Channel::Messaging));
        assert_eq!(
            Response::new().verb(Redirect::new("/next")).message("hi").channel(),
            Some(Channel::Messaging)
        );
        assert_eq!(Response::new().say("a").message("b").channel(), None);
    }

    #[test]
    fn media_on_a_text_message_moves_the_text_into_body() {
        let message = Message::new("see attached").media("https://example.com/a.png");
        assert_eq!(
            message.content(),
            &MessageContent::Nouns {
                body: Some("see attached".into()),
                media: vec!["https://example.com/a.png".into()],
            }
        );
        let media_only = Message::new("").media("https://example.com/a.png");
        assert!(matches!(media_only.content(), MessageContent::Nouns { body: None, .. }));
    }
}
