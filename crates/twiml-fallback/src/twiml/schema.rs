//! TwiML's element tree: which verbs and nouns exist, where they may appear, which attributes they
//! take (and which values those accept), and whether they hold text.
//!
//! The table is written by hand from the element tree of Twilio's official SDKs (twilio-python
//! 9.13.0's `VoiceResponse` and `MessagingResponse` classes, attribute value types from
//! twilio-node 6.2.0), which are themselves generated from Twilio's TwiML specification, and
//! cross-checked with Twilio's TwiML documentation. No generator exists: when Twilio adds verbs or
//! attributes, compare those SDK classes again and edit the table. Twilio's own XML Schema is not
//! public, so the table errs on the side of accepting what the SDKs can emit. Element and
//! attribute names are case-sensitive, as in Twilio.

use crate::webhook::Channel;

/// One element definition. The same name can have two definitions in different places (`<Sip>`
/// under `<Dial>` takes attributes and children; under `<Refer>` it does not).
#[derive(Debug)]
pub(crate) struct Element {
    pub(crate) name: &'static str,
    pub(crate) attributes: &'static [Attr],
    pub(crate) children: &'static [&'static Element],
    pub(crate) text: Text,
    /// Whether vendor SSML elements (`<amazon:effect>`, `<amazon:domain>`, …) may appear inside.
    pub(crate) vendor_ssml: bool,
}

/// Whether an element holds text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Text {
    /// Element-only (or empty) content: text other than whitespace is ignored by Twilio.
    None,
    /// Text may be given.
    Optional,
    /// Text is the element's point (a URL, a number, a name).
    Required,
}

/// A known attribute and the values it accepts.
#[derive(Debug)]
pub(crate) struct Attr {
    pub(crate) name: &'static str,
    pub(crate) value: Value,
}

impl Attr {
    pub(crate) const fn new(name: &'static str, value: Value) -> Self {
        Self { name, value }
    }
}

/// What an attribute value must look like.
#[derive(Debug)]
pub(crate) enum Value {
    /// Anything (free text, URLs, voices and languages, which Twilio extends often).
    Text,
    /// `GET` or `POST`.
    Method,
    /// `true` or `false`.
    Bool,
    /// An integer ≥ 0.
    UInt,
    /// An integer ≥ 1.
    PosInt,
    /// DTMF: `0-9`, `A-D`, `w`, `W`, `#`, `*`.
    Digits,
    /// One of the listed values.
    Enum(&'static [&'static str]),
    /// A space-separated list of the listed values.
    List(&'static [&'static str]),
}

impl Value {
    /// `None` when `value` is acceptable, else what was expected.
    pub(crate) fn check(&self, value: &str) -> Option<String> {
        let ok = match self {
            Value::Text => true,
            Value::Method => value.eq_ignore_ascii_case("GET") || value.eq_ignore_ascii_case("POST"),
            Value::Bool => value == "true" || value == "false",
            Value::UInt => is_integer(value, 0),
            Value::PosInt => is_integer(value, 1),
            Value::Digits => value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'D' | b'w' | b'W' | b'#' | b'*')),
            Value::Enum(values) => values.contains(&value),
            Value::List(values) => {
                !value.trim().is_empty() && value.split_ascii_whitespace().all(|item| values.contains(&item))
            }
        };
        if ok {
            return None;
        }
        Some(match self {
            Value::Text => String::new(),
            Value::Method => "GET or POST".to_owned(),
            Value::Bool => "true or false".to_owned(),
            Value::UInt => "an integer >= 0".to_owned(),
            Value::PosInt => "an integer >= 1".to_owned(),
            Value::Digits => "DTMF digits (0-9, A-D, w, W, #, *)".to_owned(),
            Value::Enum(values) => format!("one of {}", values.join(", ")),
            Value::List(values) => format!("a space-separated list of {}", values.join(", ")),
        })
    }
}

fn is_integer(value: &str, min: u64) -> bool {
    !value.is_empty()
        && value.len() <= 19
        && value.bytes().all(|b| b.is_ascii_digit())
        && value.parse::<u64>().is_ok_and(|n| n >= min)
}

impl Element {
    /// The child definition named `name` allowed inside this element.
    pub(crate) fn child(&self, name: &[u8]) -> Option<&'static Element> {
        self.children
            .iter()
            .copied()
            .find(|child| child.name.as_bytes() == name)
    }

    /// The attribute definition named `name`.
    #[cfg(test)]
    pub(crate) fn attribute(&self, name: &[u8]) -> Option<&'static Attr> {
        self.attributes.iter().find(|attr| attr.name.as_bytes() == name)
    }
}

/// Which channel a verb directly inside `<Response>` belongs to; `None` for both.
pub(crate) fn verb_channel(verb: &Element) -> Option<Channel> {
    match verb.name {
        "Message" => Some(Channel::Messaging),
        "Redirect" | "Sms" => None,
        _ => Some(Channel::Voice),
    }
}

/// The verb named `name` allowed directly inside `<Response>`.
pub(crate) fn response_child(name: &[u8]) -> Option<&'static Element> {
    match name {
        b"Connect" => Some(&EL_CONNECT),
        b"Dial" => Some(&EL_DIAL),
        b"Echo" => Some(&EL_ECHO),
        b"Enqueue" => Some(&EL_ENQUEUE),
        b"Gather" => Some(&EL_GATHER),
        b"Hangup" => Some(&EL_HANGUP),
        b"Leave" => Some(&EL_LEAVE),
        b"Message" => Some(&EL_MESSAGE),
        b"Pause" => Some(&EL_PAUSE),
        b"Pay" => Some(&EL_PAY),
        b"Play" => Some(&EL_PLAY),
        b"Prompt" => Some(&EL_PROMPT),
        b"Queue" => Some(&EL_QUEUE),
        b"Record" => Some(&EL_RECORD),
        b"Redirect" => Some(&EL_REDIRECT),
        b"Refer" => Some(&EL_REFER),
        b"Reject" => Some(&EL_REJECT),
        b"Say" => Some(&EL_SAY),
        b"Sms" => Some(&EL_SMS),
        b"Start" => Some(&EL_START),
        b"Stop" => Some(&EL_STOP),
        _ => None,
    }
}

/// Every element name of the tree, `Response` first, gathered once.
fn element_names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = vec!["Response"];
        let mut pending: Vec<&'static Element> = RESPONSE_CHILDREN.to_vec();
        while let Some(element) = pending.pop() {
            if !names.contains(&element.name) {
                names.push(element.name);
                pending.extend(element.children.iter().copied());
            }
        }
        names
    })
}

/// A known element whose name differs from `name` only in case (`say` → `Say`), anywhere in the
/// tree. (Validating a document full of unknown elements asks this for each of them: walking the
/// tree every time cost ~5 µs per element.)
pub(crate) fn case_insensitive_match(name: &[u8]) -> Option<&'static str> {
    element_names()
        .iter()
        .copied()
        .find(|known| known.as_bytes().eq_ignore_ascii_case(name))
}

/// The vendor SSML prefix Twilio passes through to Amazon Polly.
pub(crate) const VENDOR_SSML_PREFIX: &[u8] = b"amazon:";

// Written from the element tree of the official Twilio SDKs (twilio-python 9.13.0 VoiceResponse /
// MessagingResponse, value types from twilio-node 6.2.0), cross-checked with Twilio's TwiML docs;
// kept by hand, see the module docs.

pub(crate) static EL_GATHER: Element = Element {
    name: "Gather",
    attributes: &[
        Attr::new("input", Value::List(&["dtmf", "speech"])),
        Attr::new("action", Value::Text),
        Attr::new("method", Value::Method),
        Attr::new("timeout", Value::PosInt),
        Attr::new("speechTimeout", Value::Text),
        Attr::new("maxSpeechTime", Value::UInt),
        Attr::new("profanityFilter", Value::Bool),
        Attr::new("finishOnKey", Value::Text),
        Attr::new("numDigits", Value::PosInt),
        Attr::new("partialResultCallback", Value::Text),
        Attr::new("partialResultCallbackMethod", Value::Method),
        Attr::new("language", Value::Text),
        Attr::new("hints", Value::Text),
        Attr::new("bargeIn", Value::Bool),
        Attr::new("debug", Value::Bool),
        Attr::new("actionOnEmptyResult", Value::Bool),
        Attr::new("speechModel", Value::Text),
        Attr::new("enhanced", Value::Bool),
    ],
    children: &[&EL_SAY, &EL_PAUSE, &EL_PLAY],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_PAUSE: Element = Element {
    name: "Pause",
    attributes: &[Attr::new("length", Value::PosInt)],
    children: &[],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_PLAY: Element = Element {
    name: "Play",
    attributes: &[Attr::new("loop", Value::UInt), Attr::new("digits", Value::Digits)],
    children: &[],
    text: Text::Optional,
    vendor_ssml: false,
};

pub(crate) static EL_SAY: Element = Element {
    name: "Say",
    attributes: &[
        Attr::new("voice", Value::Text),
        Attr::new("loop", Value::UInt),
        Attr::new("language", Value::Text),
    ],
    children: &[
        &EL_BREAK,
        &EL_EMPHASIS,
        &EL_LANG,
        &EL_P,
        &EL_PHONEME,
        &EL_PROSODY,
        &EL_S,
        &EL_SAY_AS,
        &EL_SUB,
        &EL_W,
    ],
    text: Text::Optional,
    vendor_ssml: true,
};

pub(crate) static EL_AI_SESSION: Element = Element {
    name: "AiSession",
    attributes: &[
        Attr::new("aiConnector", Value::Text),
        Attr::new("aiSessionConfiguration", Value::Text),
    ],
    children: &[],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_APPLICATION: Element = Element {
    name: "Application",
    attributes: &[
        Attr::new("url", Value::Text),
        Attr::new("method", Value::Method),
        Attr::new(
            "statusCallbackEvent",
            Value::List(&["initiated", "ringing", "answered", "completed"]),
        ),
        Attr::new("statusCallback", Value::Text),
        Attr::new("statusCallbackMethod", Value::Method),
        Attr::new("customerId", Value::Text),
        Attr::new("copyParentTo", Value::Bool),
    ],
    children: &[&EL_APPLICATION_SID, &EL_PARAMETER],
    text: Text::Optional,
    vendor_ssml: false,
};

pub(crate) static EL_APPLICATION_SID: Element = Element {
    name: "ApplicationSid",
    attributes: &[],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_AUTOPILOT: Element = Element {
    name: "Autopilot",
    attributes: &[],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_BODY: Element = Element {
    name: "Body",
    attributes: &[],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_CLIENT: Element = Element {
    name: "Client",
    attributes: &[
        Attr::new("url", Value::Text),
        Attr::new("method", Value::Method),
        Attr::new(
            "statusCallbackEvent",
            Value::List(&["initiated", "ringing", "answered", "completed"]),
        ),
        Attr::new("statusCallback", Value::Text),
        Attr::new("statusCallbackMethod", Value::Method),
    ],
    children: &[&EL_IDENTITY, &EL_PARAMETER],
    text: Text::Optional,
    vendor_ssml: false,
};

pub(crate) static EL_CONFERENCE: Element = Element {
    name: "Conference",
    attributes: &[
        Attr::new("muted", Value::Bool),
        Attr::new("beep", Value::Enum(&["true", "false", "onEnter", "onExit"])),
        Attr::new("startConferenceOnEnter", Value::Bool),
        Attr::new("endConferenceOnExit", Value::Bool),
        Attr::new("waitUrl", Value::Text),
        Attr::new("waitMethod", Value::Method),
        Attr::new("maxParticipants", Value::PosInt),
        Attr::new("record", Value::Enum(&["do-not-record", "record-from-start"])),
        Attr::new("recordingConfigurationId", Value::Text),
        Attr::new(
            "region",
            Value::Enum(&["us1", "us2", "ie1", "sg1", "br1", "au1", "jp1", "de1"]),
        ),
        Attr::new("coach", Value::Text),
        Attr::new("trim", Value::Enum(&["trim-silence", "do-not-trim"])),
        Attr::new(
            "statusCallbackEvent",
            Value::List(&[
                "start",
                "end",
                "join",
                "leave",
                "mute",
                "hold",
                "modify",
                "speaker",
                "announcement",
            ]),
        ),
        Attr::new("statusCallback", Value::Text),
        Attr::new("statusCallbackMethod", Value::Method),
        Attr::new("recordingStatusCallback", Value::Text),
        Attr::new("recordingStatusCallbackMethod", Value::Method),
        Attr::new(
            "recordingStatusCallbackEvent",
            Value::List(&["in-progress", "completed", "absent"]),
        ),
        Attr::new("eventCallbackUrl", Value::Text),
        Attr::new("jitterBufferSize", Value::Enum(&["large", "medium", "small", "off"])),
        Attr::new("participantLabel", Value::Text),
    ],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_CONFIG: Element = Element {
    name: "Config",
    attributes: &[Attr::new("name", Value::Text), Attr::new("value", Value::Text)],
    children: &[],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_CONNECT: Element = Element {
    name: "Connect",
    attributes: &[Attr::new("action", Value::Text), Attr::new("method", Value::Method)],
    children: &[
        &EL_ROOM,
        &EL_AUTOPILOT,
        &EL_STREAM,
        &EL_VIRTUAL_AGENT,
        &EL_CONVERSATION,
        &EL_CONVERSATION_RELAY,
        &EL_AI_SESSION,
        &EL_CONVERSATION_RELAY_SESSION,
    ],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_CONVERSATION: Element = Element {
    name: "Conversation",
    attributes: &[
        Attr::new("serviceInstanceSid", Value::Text),
        Attr::new("inboundAutocreation", Value::Bool),
        Attr::new("routingAssignmentTimeout", Value::UInt),
        Attr::new("inboundTimeout", Value::UInt),
        Attr::new("url", Value::Text),
        Attr::new("method", Value::Method),
        Attr::new(
            "record",
            Value::Enum(&[
                "do-not-record",
                "record-from-answer",
                "record-from-ringing",
                "record-from-answer-dual",
                "record-from-ringing-dual",
                "true",
                "false",
            ]),
        ),
        Attr::new("trim", Value::Enum(&["trim-silence", "do-not-trim"])),
        Attr::new("recordingStatusCallback", Value::Text),
        Attr::new("recordingStatusCallbackMethod", Value::Method),
        Attr::new(
            "recordingStatusCallbackEvent",
            Value::List(&["in-progress", "completed", "absent"]),
        ),
        Attr::new("statusCallback", Value::Text),
        Attr::new("statusCallbackMethod", Value::Method),
        Attr::new(
            "statusCallbackEvent",
            Value::List(&["call-initiated", "call-ringing", "call-answered", "call-completed"]),
        ),
    ],
    children: &[],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_CONVERSATION_RELAY: Element = Element {
    name: "ConversationRelay",
    attributes: &[
        Attr::new("url", Value::Text),
        Attr::new("language", Value::Text),
        Attr::new("ttsLanguage", Value::Text),
        Attr::new("transcriptionLanguage", Value::Text),
        Attr::new("ttsProvider", Value::Text),
        Attr::new("voice", Value::Text),
        Attr::new("transcriptionProvider", Value::Text),
        Attr::new("speechModel", Value::Text),
        Attr::new("profanityFilter", Value::Bool),
        Attr::new("dtmfDetection", Value::Bool),
        Attr::new("welcomeGreeting", Value::Text),
        Attr::new("partialPrompts", Value::Bool),
        Attr::new("welcomeGreetingInterruptible", Value::Text),
        Attr::new("interruptible", Value::Text),
        Attr::new("preemptible", Value::Bool),
        Attr::new("hints", Value::Text),
        Attr::new("intelligenceService", Value::Text),
        Attr::new("reportInputDuringAgentSpeech", Value::Bool),
        Attr::new("elevenlabsTextNormalization", Value::Text),
        Attr::new("interruptSensitivity", Value::Text),
        Attr::new("debug", Value::Text),
        Attr::new("backgroundNoiseReduction", Value::Text),
        Attr::new("speechTimeout", Value::Text),
        Attr::new("deepgramSmartFormat", Value::Text),
        Attr::new("ignoreBackchannel", Value::Text),
        Attr::new("events", Value::Text),
        Attr::new("partialPromptOnHangup", Value::Text),
        Attr::new("eagerEotThreshold", Value::Text),
        Attr::new("asrSmartFormat", Value::Text),
        Attr::new("ttsTextNormalization", Value::Text),
        Attr::new("ttsLanguageTextNormalization", Value::Text),
        Attr::new("elevenlabsLanguageTextNormalization", Value::Text),
        Attr::new("includeInPrompt", Value::Text),
        Attr::new("customerName", Value::Text),
        Attr::new("applicationReconnect", Value::Text),
        Attr::new("echoPromptFiltering", Value::Text),
        Attr::new("turnDetection", Value::Text),
    ],
    children: &[&EL_LANGUAGE, &EL_PARAMETER],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_CONVERSATION_RELAY_SESSION: Element = Element {
    name: "ConversationRelaySession",
    attributes: &[
        Attr::new("connector", Value::Text),
        Attr::new("sessionConfiguration", Value::Text),
    ],
    children: &[],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_DIAL: Element = Element {
    name: "Dial",
    attributes: &[
        Attr::new("action", Value::Text),
        Attr::new("method", Value::Method),
        Attr::new("timeout", Value::PosInt),
        Attr::new("hangupOnStar", Value::Bool),
        Attr::new("timeLimit", Value::PosInt),
        Attr::new("callerId", Value::Text),
        Attr::new(
            "record",
            Value::Enum(&[
                "do-not-record",
                "record-from-answer",
                "record-from-ringing",
                "record-from-answer-dual",
                "record-from-ringing-dual",
                "true",
                "false",
            ]),
        ),
        Attr::new("trim", Value::Enum(&["trim-silence", "do-not-trim"])),
        Attr::new("recordingStatusCallback", Value::Text),
        Attr::new("recordingConfigurationId", Value::Text),
        Attr::new("recordingStatusCallbackMethod", Value::Method),
        Attr::new(
            "recordingStatusCallbackEvent",
            Value::List(&["in-progress", "completed", "absent"]),
        ),
        Attr::new("answerOnBridge", Value::Bool),
        Attr::new("ringTone", Value::Text),
        Attr::new("recordingTrack", Value::Enum(&["both", "inbound", "outbound"])),
        Attr::new("sequential", Value::Bool),
        Attr::new("referUrl", Value::Text),
        Attr::new("referMethod", Value::Method),
        Attr::new("events", Value::Enum(&["call-progress-event"])),
        Attr::new("passports", Value::Text),
    ],
    children: &[
        &EL_CLIENT,
        &EL_CONFERENCE,
        &EL_NUMBER,
        &EL_QUEUE,
        &EL_SIM,
        &EL_SIP_AT_DIAL,
        &EL_APPLICATION,
        &EL_WHATS_APP,
    ],
    text: Text::Optional,
    vendor_ssml: false,
};

pub(crate) static EL_ECHO: Element = Element {
    name: "Echo",
    attributes: &[],
    children: &[],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_ENQUEUE: Element = Element {
    name: "Enqueue",
    attributes: &[
        Attr::new("action", Value::Text),
        Attr::new("maxQueueSize", Value::UInt),
        Attr::new("method", Value::Method),
        Attr::new("waitUrl", Value::Text),
        Attr::new("waitUrlMethod", Value::Method),
        Attr::new("workflowSid", Value::Text),
    ],
    children: &[&EL_TASK],
    text: Text::Optional,
    vendor_ssml: false,
};

pub(crate) static EL_HANGUP: Element = Element {
    name: "Hangup",
    attributes: &[],
    children: &[&EL_PARAMETER],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_HEADER: Element = Element {
    name: "Header",
    attributes: &[Attr::new("name", Value::Text), Attr::new("value", Value::Text)],
    children: &[],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_HEADERS: Element = Element {
    name: "Headers",
    attributes: &[],
    children: &[&EL_HEADER],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_IDENTITY: Element = Element {
    name: "Identity",
    attributes: &[],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_LANGUAGE: Element = Element {
    name: "Language",
    attributes: &[
        Attr::new("code", Value::Text),
        Attr::new("ttsProvider", Value::Text),
        Attr::new("voice", Value::Text),
        Attr::new("transcriptionProvider", Value::Text),
        Attr::new("speechModel", Value::Text),
        Attr::new("hints", Value::Text),
        Attr::new("asrSmartFormat", Value::Text),
        Attr::new("ttsTextNormalization", Value::Text),
        Attr::new("ttsLanguageTextNormalization", Value::Text),
    ],
    children: &[],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_LEAVE: Element = Element {
    name: "Leave",
    attributes: &[],
    children: &[],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_MEDIA: Element = Element {
    name: "Media",
    attributes: &[],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_MESSAGE: Element = Element {
    name: "Message",
    attributes: &[
        Attr::new("to", Value::Text),
        Attr::new("from", Value::Text),
        Attr::new("action", Value::Text),
        Attr::new("method", Value::Method),
        Attr::new("statusCallback", Value::Text),
    ],
    children: &[&EL_BODY, &EL_MEDIA],
    text: Text::Optional,
    vendor_ssml: false,
};

pub(crate) static EL_NUMBER: Element = Element {
    name: "Number",
    attributes: &[
        Attr::new("sendDigits", Value::Digits),
        Attr::new("url", Value::Text),
        Attr::new("method", Value::Method),
        Attr::new(
            "statusCallbackEvent",
            Value::List(&["initiated", "ringing", "answered", "completed"]),
        ),
        Attr::new("statusCallback", Value::Text),
        Attr::new("statusCallbackMethod", Value::Method),
        Attr::new("byoc", Value::Text),
        Attr::new("machineDetection", Value::Enum(&["Enable", "DetectMessageEnd"])),
        Attr::new("amdStatusCallbackMethod", Value::Method),
        Attr::new("amdStatusCallback", Value::Text),
        Attr::new("machineDetectionTimeout", Value::UInt),
        Attr::new("machineDetectionSpeechThreshold", Value::UInt),
        Attr::new("machineDetectionSpeechEndThreshold", Value::UInt),
        Attr::new("machineDetectionSilenceTimeout", Value::UInt),
    ],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_PARAMETER: Element = Element {
    name: "Parameter",
    attributes: &[Attr::new("name", Value::Text), Attr::new("value", Value::Text)],
    children: &[],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_PAY: Element = Element {
    name: "Pay",
    attributes: &[
        Attr::new("input", Value::Enum(&["dtmf"])),
        Attr::new("action", Value::Text),
        Attr::new(
            "bankAccountType",
            Value::Enum(&[
                "consumer-checking",
                "consumer-savings",
                "commercial-checking",
                "commercial-savings",
            ]),
        ),
        Attr::new("statusCallback", Value::Text),
        Attr::new("statusCallbackMethod", Value::Method),
        Attr::new("timeout", Value::UInt),
        Attr::new("maxAttempts", Value::UInt),
        Attr::new("securityCode", Value::Bool),
        Attr::new("postalCode", Value::Text),
        Attr::new("minPostalCodeLength", Value::UInt),
        Attr::new("paymentConnector", Value::Text),
        Attr::new("paymentMethod", Value::Enum(&["ach-debit", "credit-card"])),
        Attr::new("tokenType", Value::Enum(&["one-time", "reusable", "payment-method"])),
        Attr::new("chargeAmount", Value::Text),
        Attr::new("currency", Value::Text),
        Attr::new("description", Value::Text),
        Attr::new(
            "validCardTypes",
            Value::List(&[
                "visa",
                "mastercard",
                "amex",
                "maestro",
                "discover",
                "optima",
                "jcb",
                "diners-club",
                "enroute",
            ]),
        ),
        Attr::new(
            "language",
            Value::Enum(&[
                "de-DE", "en-AU", "en-CA", "en-GB", "en-IN", "en-IE", "en-NZ", "en-PH", "en-ZA", "en-US", "es-ES",
                "es-US", "fr-CA", "fr-FR", "it-IT",
            ]),
        ),
    ],
    children: &[&EL_PROMPT, &EL_PARAMETER],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_PROMPT: Element = Element {
    name: "Prompt",
    attributes: &[
        Attr::new(
            "for",
            Value::Enum(&[
                "payment-card-number",
                "expiration-date",
                "security-code",
                "postal-code",
                "payment-processing",
                "bank-account-number",
                "bank-routing-number",
            ]),
        ),
        Attr::new(
            "errorType",
            Value::List(&[
                "timeout",
                "invalid-card-number",
                "invalid-card-type",
                "invalid-date",
                "invalid-security-code",
                "internal-error",
                "input-matching-failed",
            ]),
        ),
        Attr::new(
            "cardType",
            Value::List(&[
                "visa",
                "mastercard",
                "amex",
                "maestro",
                "discover",
                "optima",
                "jcb",
                "diners-club",
                "enroute",
            ]),
        ),
        Attr::new("attempt", Value::UInt),
        Attr::new("requireMatchingInputs", Value::Bool),
    ],
    children: &[&EL_SAY, &EL_PLAY, &EL_PAUSE],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_QUEUE: Element = Element {
    name: "Queue",
    attributes: &[
        Attr::new("url", Value::Text),
        Attr::new("method", Value::Method),
        Attr::new("reservationSid", Value::Text),
        Attr::new("postWorkActivitySid", Value::Text),
    ],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_RECORD: Element = Element {
    name: "Record",
    attributes: &[
        Attr::new("action", Value::Text),
        Attr::new("method", Value::Method),
        Attr::new("timeout", Value::UInt),
        Attr::new("finishOnKey", Value::Text),
        Attr::new("maxLength", Value::PosInt),
        Attr::new("playBeep", Value::Bool),
        Attr::new("trim", Value::Enum(&["trim-silence", "do-not-trim"])),
        Attr::new("recordingStatusCallback", Value::Text),
        Attr::new("recordingStatusCallbackMethod", Value::Method),
        Attr::new(
            "recordingStatusCallbackEvent",
            Value::List(&["in-progress", "completed", "absent"]),
        ),
        Attr::new("transcribe", Value::Bool),
        Attr::new("transcribeCallback", Value::Text),
        Attr::new("recordingConfigurationId", Value::Text),
    ],
    children: &[],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_RECORDING: Element = Element {
    name: "Recording",
    attributes: &[
        Attr::new("recordingStatusCallback", Value::Text),
        Attr::new("recordingStatusCallbackMethod", Value::Method),
        Attr::new(
            "recordingStatusCallbackEvent",
            Value::List(&["in-progress", "completed", "absent"]),
        ),
        Attr::new("trim", Value::Enum(&["trim-silence", "do-not-trim"])),
        Attr::new("track", Value::Enum(&["inbound", "outbound", "both"])),
        Attr::new("channels", Value::Enum(&["mono", "dual"])),
        Attr::new("recordingConfigurationId", Value::Text),
    ],
    children: &[],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_REDIRECT: Element = Element {
    name: "Redirect",
    attributes: &[Attr::new("method", Value::Method)],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_REFER: Element = Element {
    name: "Refer",
    attributes: &[Attr::new("action", Value::Text), Attr::new("method", Value::Method)],
    children: &[&EL_SIP_AT_REFER],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_REJECT: Element = Element {
    name: "Reject",
    attributes: &[Attr::new("reason", Value::Enum(&["rejected", "busy"]))],
    children: &[&EL_PARAMETER],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_ROOM: Element = Element {
    name: "Room",
    attributes: &[Attr::new("participantIdentity", Value::Text)],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_SIM: Element = Element {
    name: "Sim",
    attributes: &[],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_SIP_AT_DIAL: Element = Element {
    name: "Sip",
    attributes: &[
        Attr::new("username", Value::Text),
        Attr::new("password", Value::Text),
        Attr::new("url", Value::Text),
        Attr::new("method", Value::Method),
        Attr::new(
            "statusCallbackEvent",
            Value::List(&["initiated", "ringing", "answered", "completed"]),
        ),
        Attr::new("statusCallback", Value::Text),
        Attr::new("statusCallbackMethod", Value::Method),
        Attr::new("machineDetection", Value::Enum(&["Enable", "DetectMessageEnd"])),
        Attr::new("amdStatusCallbackMethod", Value::Method),
        Attr::new("amdStatusCallback", Value::Text),
        Attr::new("machineDetectionTimeout", Value::UInt),
        Attr::new("machineDetectionSpeechThreshold", Value::UInt),
        Attr::new("machineDetectionSpeechEndThreshold", Value::UInt),
        Attr::new("machineDetectionSilenceTimeout", Value::UInt),
    ],
    children: &[&EL_URI, &EL_HEADERS],
    text: Text::Optional,
    vendor_ssml: false,
};

pub(crate) static EL_SIP_AT_REFER: Element = Element {
    name: "Sip",
    attributes: &[],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_SIPREC: Element = Element {
    name: "Siprec",
    attributes: &[
        Attr::new("name", Value::Text),
        Attr::new("connectorName", Value::Text),
        Attr::new(
            "track",
            Value::Enum(&["inbound_track", "outbound_track", "both_tracks"]),
        ),
        Attr::new("statusCallback", Value::Text),
        Attr::new("statusCallbackMethod", Value::Method),
    ],
    children: &[&EL_PARAMETER],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_SMS: Element = Element {
    name: "Sms",
    attributes: &[
        Attr::new("to", Value::Text),
        Attr::new("from", Value::Text),
        Attr::new("action", Value::Text),
        Attr::new("method", Value::Method),
        Attr::new("statusCallback", Value::Text),
    ],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_START: Element = Element {
    name: "Start",
    attributes: &[Attr::new("action", Value::Text), Attr::new("method", Value::Method)],
    children: &[&EL_STREAM, &EL_SIPREC, &EL_TRANSCRIPTION, &EL_RECORDING],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_STOP: Element = Element {
    name: "Stop",
    attributes: &[],
    children: &[&EL_STREAM, &EL_SIPREC, &EL_TRANSCRIPTION],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_STREAM: Element = Element {
    name: "Stream",
    attributes: &[
        Attr::new("name", Value::Text),
        Attr::new("connectorName", Value::Text),
        Attr::new("url", Value::Text),
        Attr::new(
            "track",
            Value::Enum(&["inbound_track", "outbound_track", "both_tracks"]),
        ),
        Attr::new("statusCallback", Value::Text),
        Attr::new("statusCallbackMethod", Value::Method),
        Attr::new("audioFormat", Value::Text),
        Attr::new("sampleRate", Value::Text),
    ],
    children: &[&EL_PARAMETER],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_TASK: Element = Element {
    name: "Task",
    attributes: &[Attr::new("priority", Value::UInt), Attr::new("timeout", Value::UInt)],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_TRANSCRIPTION: Element = Element {
    name: "Transcription",
    attributes: &[
        Attr::new("name", Value::Text),
        Attr::new(
            "track",
            Value::Enum(&["inbound_track", "outbound_track", "both_tracks"]),
        ),
        Attr::new("statusCallbackUrl", Value::Text),
        Attr::new("statusCallbackMethod", Value::Method),
        Attr::new("inboundTrackLabel", Value::Text),
        Attr::new("outboundTrackLabel", Value::Text),
        Attr::new("partialResults", Value::Bool),
        Attr::new("languageCode", Value::Text),
        Attr::new("transcriptionEngine", Value::Text),
        Attr::new("profanityFilter", Value::Bool),
        Attr::new("speechModel", Value::Text),
        Attr::new("hints", Value::Text),
        Attr::new("enableAutomaticPunctuation", Value::Bool),
        Attr::new("intelligenceService", Value::Text),
    ],
    children: &[&EL_CONFIG, &EL_PARAMETER],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_URI: Element = Element {
    name: "Uri",
    attributes: &[
        Attr::new("priority", Value::Text),
        Attr::new("weight", Value::Text),
        Attr::new("username", Value::Text),
        Attr::new("password", Value::Text),
    ],
    children: &[],
    text: Text::Optional,
    vendor_ssml: false,
};

pub(crate) static EL_VIRTUAL_AGENT: Element = Element {
    name: "VirtualAgent",
    attributes: &[
        Attr::new("connectorName", Value::Text),
        Attr::new("language", Value::Text),
        Attr::new("sentimentAnalysis", Value::Bool),
        Attr::new("statusCallback", Value::Text),
        Attr::new("statusCallbackMethod", Value::Method),
    ],
    children: &[&EL_CONFIG, &EL_PARAMETER],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_WHATS_APP: Element = Element {
    name: "WhatsApp",
    attributes: &[
        Attr::new("url", Value::Text),
        Attr::new("method", Value::Method),
        Attr::new(
            "statusCallbackEvent",
            Value::List(&["initiated", "ringing", "answered", "completed"]),
        ),
        Attr::new("statusCallback", Value::Text),
        Attr::new("statusCallbackMethod", Value::Method),
    ],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_BREAK: Element = Element {
    name: "break",
    attributes: &[
        Attr::new(
            "strength",
            Value::Enum(&["none", "x-weak", "weak", "medium", "strong", "x-strong"]),
        ),
        Attr::new("time", Value::Text),
    ],
    children: &[],
    text: Text::None,
    vendor_ssml: false,
};

pub(crate) static EL_EMPHASIS: Element = Element {
    name: "emphasis",
    attributes: &[Attr::new("level", Value::Enum(&["strong", "moderate", "reduced"]))],
    children: &[
        &EL_BREAK,
        &EL_EMPHASIS,
        &EL_LANG,
        &EL_PHONEME,
        &EL_PROSODY,
        &EL_SAY_AS,
        &EL_SUB,
        &EL_W,
    ],
    text: Text::Optional,
    vendor_ssml: true,
};

pub(crate) static EL_LANG: Element = Element {
    name: "lang",
    attributes: &[Attr::new("xml:lang", Value::Text)],
    children: &[
        &EL_BREAK,
        &EL_EMPHASIS,
        &EL_LANG,
        &EL_P,
        &EL_PHONEME,
        &EL_PROSODY,
        &EL_S,
        &EL_SAY_AS,
        &EL_SUB,
        &EL_W,
    ],
    text: Text::Optional,
    vendor_ssml: true,
};

pub(crate) static EL_P: Element = Element {
    name: "p",
    attributes: &[],
    children: &[
        &EL_BREAK,
        &EL_EMPHASIS,
        &EL_LANG,
        &EL_PHONEME,
        &EL_PROSODY,
        &EL_S,
        &EL_SAY_AS,
        &EL_SUB,
        &EL_W,
    ],
    text: Text::Optional,
    vendor_ssml: true,
};

pub(crate) static EL_PHONEME: Element = Element {
    name: "phoneme",
    attributes: &[
        Attr::new(
            "alphabet",
            Value::Enum(&[
                "ipa",
                "x-sampa",
                "x-amazon-jyutping",
                "x-amazon-pinyin",
                "x-amazon-pron-kana",
                "x-amazon-yomigana",
            ]),
        ),
        Attr::new("ph", Value::Text),
    ],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_PROSODY: Element = Element {
    name: "prosody",
    attributes: &[
        Attr::new("volume", Value::Text),
        Attr::new("rate", Value::Text),
        Attr::new("pitch", Value::Text),
    ],
    children: &[
        &EL_BREAK,
        &EL_EMPHASIS,
        &EL_LANG,
        &EL_P,
        &EL_PHONEME,
        &EL_PROSODY,
        &EL_S,
        &EL_SAY_AS,
        &EL_SUB,
        &EL_W,
    ],
    text: Text::Optional,
    vendor_ssml: true,
};

pub(crate) static EL_S: Element = Element {
    name: "s",
    attributes: &[],
    children: &[
        &EL_BREAK,
        &EL_EMPHASIS,
        &EL_LANG,
        &EL_PHONEME,
        &EL_PROSODY,
        &EL_SAY_AS,
        &EL_SUB,
        &EL_W,
    ],
    text: Text::Optional,
    vendor_ssml: true,
};

pub(crate) static EL_SAY_AS: Element = Element {
    name: "say-as",
    attributes: &[
        Attr::new(
            "interpret-as",
            Value::Enum(&[
                "characters",
                "spell-out",
                "cardinal",
                "number",
                "ordinal",
                "digits",
                "fraction",
                "unit",
                "date",
                "time",
                "address",
                "expletive",
                "telephone",
            ]),
        ),
        Attr::new(
            "format",
            Value::Enum(&["mdy", "dmy", "ymd", "md", "dm", "ym", "my", "d", "m", "y", "yyyymmdd"]),
        ),
    ],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_SUB: Element = Element {
    name: "sub",
    attributes: &[Attr::new("alias", Value::Text)],
    children: &[],
    text: Text::Required,
    vendor_ssml: false,
};

pub(crate) static EL_W: Element = Element {
    name: "w",
    attributes: &[Attr::new("role", Value::Text)],
    children: &[&EL_BREAK, &EL_EMPHASIS, &EL_PHONEME, &EL_PROSODY, &EL_SAY_AS, &EL_SUB],
    text: Text::Optional,
    vendor_ssml: true,
};

/// Every element allowed directly inside `<Response>`, in either channel.
pub(crate) static RESPONSE_CHILDREN: &[&Element] = &[
    &EL_CONNECT,
    &EL_DIAL,
    &EL_ECHO,
    &EL_ENQUEUE,
    &EL_GATHER,
    &EL_HANGUP,
    &EL_LEAVE,
    &EL_MESSAGE,
    &EL_PAUSE,
    &EL_PAY,
    &EL_PLAY,
    &EL_PROMPT,
    &EL_QUEUE,
    &EL_RECORD,
    &EL_REDIRECT,
    &EL_REFER,
    &EL_REJECT,
    &EL_SAY,
    &EL_SMS,
    &EL_START,
    &EL_STOP,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_children_are_sorted_and_all_found_by_name() {
        for pair in RESPONSE_CHILDREN.windows(2) {
            assert!(pair[0].name < pair[1].name, "{} before {}", pair[0].name, pair[1].name);
        }
        for verb in RESPONSE_CHILDREN {
            assert_eq!(response_child(verb.name.as_bytes()).map(|v| v.name), Some(verb.name));
        }
    }

    #[test]
    fn design_verbs_are_known_in_their_channel() {
        for verb in [
            "Say", "Play", "Pause", "Gather", "Dial", "Record", "Redirect", "Hangup", "Reject", "Enqueue", "Leave",
            "Refer", "Connect", "Start", "Stop", "Pay", "Echo", "Sms",
        ] {
            let element = response_child(verb.as_bytes()).unwrap_or_else(|| panic!("{verb} missing"));
            assert_ne!(verb_channel(element), Some(Channel::Messaging), "{verb}");
        }
        for verb in ["Message", "Redirect"] {
            let element = response_child(verb.as_bytes()).unwrap_or_else(|| panic!("{verb} missing"));
            assert_ne!(verb_channel(element), Some(Channel::Voice), "{verb}");
        }
    }

    #[test]
    fn gather_holds_only_say_play_and_pause() {
        let gather = response_child(b"Gather").expect("Gather");
        let mut names: Vec<_> = gather.children.iter().map(|c| c.name).collect();
        names.sort_unstable();
        assert_eq!(names, ["Pause", "Play", "Say"]);
    }

    #[test]
    fn sip_differs_under_dial_and_refer() {
        let dial_sip = response_child(b"Dial").and_then(|d| d.child(b"Sip")).expect("Dial/Sip");
        let refer_sip = response_child(b"Refer")
            .and_then(|r| r.child(b"Sip"))
            .expect("Refer/Sip");
        assert!(dial_sip.attribute(b"username").is_some());
        assert!(refer_sip.attributes.is_empty());
    }

    #[test]
    fn case_insensitive_lookup_suggests_the_right_name() {
        assert_eq!(case_insensitive_match(b"say"), Some("Say"));
        assert_eq!(case_insensitive_match(b"response"), Some("Response"));
        assert_eq!(case_insensitive_match(b"MEDIA"), Some("Media"));
        assert_eq!(case_insensitive_match(b"SAY-AS"), Some("say-as"));
        assert_eq!(case_insensitive_match(b"Speak"), None);
    }

    #[test]
    fn values_are_checked_by_kind() {
        assert_eq!(Value::Method.check("get"), None);
        assert!(Value::Method.check("PUT").is_some());
        assert_eq!(Value::UInt.check("0"), None);
        assert!(Value::UInt.check("-1").is_some());
        assert!(Value::PosInt.check("0").is_some());
        assert!(Value::UInt.check("99999999999999999999999").is_some());
        assert_eq!(Value::Digits.check("ww1234#*"), None);
        assert!(Value::Digits.check("12x").is_some());
        assert_eq!(Value::List(&["dtmf", "speech"]).check("dtmf speech"), None);
        assert!(Value::List(&["dtmf", "speech"]).check("dtmf voice").is_some());
        assert!(Value::Bool.check("yes").is_some());
    }

    #[test]
    fn every_element_name_is_found_and_none_differs_from_another_only_in_case() {
        let names = element_names();
        assert!(names.len() > 50, "{} names", names.len());
        for name in names {
            assert_eq!(
                case_insensitive_match(name.to_ascii_uppercase().as_bytes()),
                Some(*name)
            );
            let twins = names.iter().filter(|other| other.eq_ignore_ascii_case(name)).count();
            assert_eq!(twins, 1, "{name} has a case-insensitive twin");
        }
    }
}
