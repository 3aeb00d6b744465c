//! Judging a webhook's HTTP answer the way Twilio does: status, size, Content-Type, body, TwiML.
//!
//! This is the one place that knows what Twilio runs. The tower layer uses it to decide whether
//! to replace an app's response (and whether to correct its Content-Type), the fallback endpoint
//! to decide whether a recovered primary's answer can be relayed, and the CLI's `simulate` to show
//! what Twilio would do.
//!
//! # Example
//!
//! ```
//! use http::StatusCode;
//! use twiml_fallback::twiml::{Accepted, AnswerRules, ContentPolicy, TWIML_CONTENT_TYPE};
//! use twiml_fallback::Channel;
//!
//! let sms = AnswerRules::for_channel(Some(Channel::Messaging));
//! // axum serves a `String` as text/plain: Twilio would send the raw XML as the SMS, so the
//! // verdict says which Content-Type makes Twilio run it as the app meant.
//! let twiml = b"<Response><Message>Order 42 is ready</Message></Response>";
//! let verdict = sms.check(StatusCode::OK, Some("text/plain; charset=utf-8"), twiml).unwrap();
//! assert_eq!(verdict.corrected_content_type(), Some(TWIML_CONTENT_TYPE));
//! // Plain text is the reply itself.
//! assert!(matches!(sms.check(StatusCode::OK, Some("text/plain"), b"Thanks!"), Ok(Accepted::PlainText)));
//!
//! // Stricter, opt-in: only TwiML passes, a plain-text answer is a failure.
//! let strict = AnswerRules { content: ContentPolicy::TwimlOnly, ..sms };
//! assert!(strict.check(StatusCode::OK, Some("text/plain"), b"Thanks!").is_err());
//! ```

use std::fmt;

use http::StatusCode;

use super::validate::{Diagnostic, MAX_DOCUMENT_BYTES, Report, Strictness, TargetChannel, validate};
use crate::error_code::ErrorCode;
use crate::webhook::{Channel, media_type};

/// The Content-Type of the TwiML this crate serves, and the one a corrected answer gets.
pub const TWIML_CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// The audio media types Twilio plays when a voice webhook answers with audio (its `<Play>`
/// page's list).
pub const AUDIO_MEDIA_TYPES: &[&str] = &[
    "audio/mpeg",
    "audio/wav",
    "audio/wave",
    "audio/x-wav",
    "audio/aiff",
    "audio/x-aifc",
    "audio/x-aiff",
    "audio/x-gsm",
    "audio/gsm",
    "audio/ulaw",
];

/// What a Content-Type header says about a body, as far as Twilio is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentKind {
    /// `text/xml`, `application/xml`, or any `…/…+xml`: TwiML.
    Xml,
    /// `text/html`: Twilio runs it as TwiML too (an HTML error page then fails as TwiML).
    Html,
    /// `text/plain`: Twilio sends it as the SMS reply, or reads it aloud on a call.
    PlainText,
    /// One of [`AUDIO_MEDIA_TYPES`]: Twilio plays it on a call.
    Audio,
    /// Any other media type.
    Other,
    /// No Content-Type at all.
    Missing,
}

impl ContentKind {
    /// Classifies a Content-Type header value (parameters such as `charset` are ignored).
    pub fn of(content_type: Option<&str>) -> Self {
        let Some(value) = content_type else {
            return ContentKind::Missing;
        };
        // What apps (axum's and this crate's own answers) serve TwiML under, spelled exactly:
        // known without taking the value apart.
        if value == TWIML_CONTENT_TYPE || value == "text/xml" {
            return ContentKind::Xml;
        }
        let media_type = media_type(value);
        if media_type.is_empty() {
            return ContentKind::Missing;
        }
        let is = |expected: &str| media_type.eq_ignore_ascii_case(expected);
        let suffix = media_type
            .len()
            .checked_sub(4)
            .and_then(|start| media_type.get(start..));
        if is("text/xml") || is("application/xml") {
            ContentKind::Xml
        } else if is("text/html") {
            ContentKind::Html
        } else if is("text/plain") {
            ContentKind::PlainText
        } else if AUDIO_MEDIA_TYPES.iter().any(|audio| is(audio)) {
            ContentKind::Audio
        } else if suffix.is_some_and(|suffix| suffix.eq_ignore_ascii_case("+xml")) && media_type.contains('/') {
            ContentKind::Xml
        } else {
            ContentKind::Other
        }
    }
}

/// Which answers pass, by Content-Type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContentPolicy {
    /// Whatever Twilio runs passes (the default): TwiML served as XML or HTML, plain text, and
    /// audio on a call. TwiML served as `text/plain` or `text/html` passes with
    /// [`Accepted::corrected_content_type`] set, so Twilio runs it as TwiML.
    #[default]
    AsTwilio,
    /// Only TwiML passes: a plain-text or audio answer counts as a failure (12300), for apps
    /// whose handlers always mean TwiML. TwiML served as `text/plain` or `text/html` still passes,
    /// with its Content-Type corrected.
    TwimlOnly,
    /// Only TwiML served as `text/xml` or `application/xml` passes: `text/html`, `text/plain` and
    /// audio answers count as failures (12300), whatever their body.
    XmlOnly,
}

/// The rules an answer must pass: by default, exactly what Twilio runs.
///
/// What Twilio runs, from its "Your Response" pages for voice and messaging:
///
/// | Content-Type | voice | messaging |
/// |---|---|---|
/// | `text/xml`, `application/xml` (and `…+xml`) | run as TwiML | run as TwiML |
/// | `text/html` | run as TwiML | run as TwiML |
/// | `text/plain` | read aloud, then the call ends | sent back as the reply |
/// | `audio/mpeg`, `audio/wav`, … ([`AUDIO_MEDIA_TYPES`]) | played, then the call ends | fails (12300) |
/// | anything else, or none | fails (12300) | fails (12300) |
///
/// Before the Content-Type: any non-2xx status fails (11200), a body over 64 KB fails (11750), an
/// empty body fails (11770) except a `204 No Content` to a messaging webhook, which is "no reply".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerRules {
    /// The channel whose verbs are allowed.
    pub target: TargetChannel,
    /// How much of the TwiML validation must pass.
    pub strictness: Strictness,
    /// Which Content-Types pass (default: whatever Twilio runs).
    pub content: ContentPolicy,
}

impl Default for AnswerRules {
    fn default() -> Self {
        Self {
            target: TargetChannel::Auto,
            strictness: Strictness::Schema,
            content: ContentPolicy::AsTwilio,
        }
    }
}

/// An answer that passed: what Twilio does with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// TwiML that Twilio runs.
    Twiml {
        /// The validation report (it may hold warnings).
        report: Report,
        /// How it was served: [`ContentKind::Xml`], or [`ContentKind::Html`] /
        /// [`ContentKind::PlainText`] for TwiML served under a type an app did not mean.
        served_as: ContentKind,
    },
    /// Plain text: the SMS reply, or read aloud on a call.
    PlainText,
    /// Audio played to the caller.
    Audio,
    /// A messaging `204 No Content`: Twilio sends no reply.
    NoReply,
}

impl Accepted {
    /// The Content-Type to serve the same bytes under so that Twilio runs them as the TwiML they
    /// are: set for TwiML served as `text/plain` (which Twilio would otherwise send or read out as
    /// raw XML) or `text/html`; `None` when the answer is right as it is.
    pub fn corrected_content_type(&self) -> Option<&'static str> {
        match self {
            Accepted::Twiml {
                served_as: ContentKind::PlainText | ContentKind::Html,
                ..
            } => Some(TWIML_CONTENT_TYPE),
            _ => None,
        }
    }

    /// The validation report of a TwiML answer (empty for the others).
    pub fn report(&self) -> Option<&Report> {
        match self {
            Accepted::Twiml { report, .. } => Some(report),
            _ => None,
        }
    }
}

/// Why an answer would make Twilio fail the call or message (and request the fallback URL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The Twilio error code for it.
    pub code: ErrorCode,
    /// What was wrong, in a sentence.
    pub message: String,
    /// The validator's diagnostic, when the TwiML itself was the problem.
    pub diagnostic: Option<Diagnostic>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.code.title(), self.message)
    }
}

impl std::error::Error for Rejection {}

impl Rejection {
    fn content_type(content_type: Option<&str>, why: &str) -> Self {
        let message = match content_type {
            None => format!("the answer has no Content-Type ({why})"),
            Some(value) => format!(
                "Content-Type {:?} is not accepted ({why})",
                value.chars().take(100).collect::<String>()
            ),
        };
        Rejection {
            code: ErrorCode::INVALID_CONTENT_TYPE,
            message,
            diagnostic: None,
        }
    }

    fn of_diagnostic(diagnostic: &Diagnostic) -> Self {
        Rejection {
            code: diagnostic.code,
            message: diagnostic.to_string(),
            diagnostic: Some(diagnostic.clone()),
        }
    }
}

impl AnswerRules {
    /// Rules for `channel` with the default strictness and content policy.
    pub fn for_channel(channel: Option<Channel>) -> Self {
        Self {
            target: channel.into(),
            ..Self::default()
        }
    }

    /// Judges an answer: `Ok` says what Twilio does with it, `Err` why Twilio would fail it.
    ///
    /// In Twilio's order: a 4xx/5xx (or any non-2xx) status is 11200; a body over 64 KB is 11750;
    /// an empty body is 11770 — except a `204 No Content` to a messaging webhook, which Twilio
    /// takes as "no reply"; then the Content-Type (see [`AnswerRules`]) and the TwiML.
    ///
    /// ```
    /// use http::StatusCode;
    /// use twiml_fallback::error_code::ErrorCode;
    /// use twiml_fallback::twiml::{Accepted, AnswerRules};
    /// use twiml_fallback::Channel;
    ///
    /// let rules = AnswerRules::for_channel(Some(Channel::Messaging));
    /// let body = b"<Response><Message>hi</Message></Response>";
    /// assert!(rules.check(StatusCode::OK, Some("text/xml; charset=utf-8"), body).is_ok());
    /// assert_eq!(rules.check(StatusCode::INTERNAL_SERVER_ERROR, Some("text/xml"), body).unwrap_err().code, ErrorCode::HTTP_RETRIEVAL_FAILURE);
    /// assert_eq!(rules.check(StatusCode::OK, Some("application/json"), body).unwrap_err().code, ErrorCode::INVALID_CONTENT_TYPE);
    /// assert_eq!(rules.check(StatusCode::OK, Some("text/xml"), b"<response/>").unwrap_err().code, ErrorCode::ROOT_NOT_RESPONSE);
    /// assert_eq!(rules.check(StatusCode::OK, Some("text/plain"), b"See you at 5"), Ok(Accepted::PlainText));
    /// ```
    pub fn check(&self, status: StatusCode, content_type: Option<&str>, body: &[u8]) -> Result<Accepted, Rejection> {
        if !status.is_success() {
            return Err(Rejection {
                code: ErrorCode::HTTP_RETRIEVAL_FAILURE,
                message: format!("the webhook answered HTTP {}", status.as_u16()),
                diagnostic: None,
            });
        }
        self.check_content(status, content_type, body)
    }

    /// Judges everything but the status (a caller with its own status policy uses this): size,
    /// empty body (a messaging `204` is "no reply"), Content-Type, TwiML.
    pub fn check_content(
        &self,
        status: StatusCode,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Accepted, Rejection> {
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(Rejection {
                code: ErrorCode::RESPONSE_TOO_LARGE,
                message: format!(
                    "the body is {} bytes; Twilio accepts at most {MAX_DOCUMENT_BYTES}",
                    body.len()
                ),
                diagnostic: None,
            });
        }
        if body.is_empty() && status == StatusCode::NO_CONTENT && self.target == TargetChannel::Messaging {
            return Ok(Accepted::NoReply);
        }
        let kind = ContentKind::of(content_type);
        match kind {
            ContentKind::Xml => self.twiml(body, kind),
            ContentKind::Html if self.content == ContentPolicy::XmlOnly => Err(Rejection::content_type(
                content_type,
                "only text/xml or application/xml pass (ContentPolicy::XmlOnly)",
            )),
            ContentKind::Html => self.twiml(body, kind),
            ContentKind::PlainText => self.plain_text(content_type, body),
            ContentKind::Audio => self.audio(content_type, body),
            ContentKind::Other | ContentKind::Missing => Err(Rejection::content_type(
                content_type,
                "Twilio runs text/xml, application/xml and text/html as TwiML, sends or reads text/plain, and plays audio on calls",
            )),
        }
    }

    fn twiml(&self, body: &[u8], served_as: ContentKind) -> Result<Accepted, Rejection> {
        let report = validate(body, self.target);
        match report.check(self.strictness) {
            Ok(()) => Ok(Accepted::Twiml { report, served_as }),
            Err(diagnostic) => Err(Rejection::of_diagnostic(diagnostic)),
        }
    }

    /// Plain text is the reply (or what is read aloud) — unless it is TwiML an app served under
    /// the wrong type, which passes with its Content-Type to be corrected.
    fn plain_text(&self, content_type: Option<&str>, body: &[u8]) -> Result<Accepted, Rejection> {
        if self.content == ContentPolicy::XmlOnly {
            return Err(Rejection::content_type(
                content_type,
                "only text/xml or application/xml pass (ContentPolicy::XmlOnly)",
            ));
        }
        if body.is_empty() {
            return Err(Rejection {
                code: ErrorCode::EMPTY_RESPONSE,
                message: "the body is empty".to_owned(),
                diagnostic: None,
            });
        }
        let report = validate(body, self.target);
        match report.check(self.strictness).err().map(Rejection::of_diagnostic) {
            None => Ok(Accepted::Twiml {
                report,
                served_as: ContentKind::PlainText,
            }),
            Some(_) if self.content == ContentPolicy::AsTwilio => Ok(Accepted::PlainText),
            // Broken TwiML is reported as such; other text as the wrong type.
            Some(rejection) if looks_like_markup(body) => Err(rejection),
            Some(_) => Err(Rejection::content_type(
                content_type,
                "a plain-text answer (ContentPolicy::TwimlOnly)",
            )),
        }
    }

    fn audio(&self, content_type: Option<&str>, body: &[u8]) -> Result<Accepted, Rejection> {
        if self.target == TargetChannel::Messaging {
            return Err(Rejection::content_type(
                content_type,
                "Twilio plays audio on calls only; a message needs TwiML or text/plain",
            ));
        }
        if self.content != ContentPolicy::AsTwilio {
            return Err(Rejection::content_type(
                content_type,
                "an audio answer (ContentPolicy::TwimlOnly)",
            ));
        }
        if body.is_empty() {
            return Err(Rejection {
                code: ErrorCode::EMPTY_RESPONSE,
                message: "the body is empty".to_owned(),
                diagnostic: None,
            });
        }
        Ok(Accepted::Audio)
    }
}

/// Whether a body starts like an XML document (after a byte-order mark and whitespace).
fn looks_like_markup(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    body.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'<')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMS: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>ok</Message></Response>";
    const VOICE: &[u8] = b"<Response><Say>Hello</Say></Response>";

    fn st(code: u16) -> StatusCode {
        StatusCode::from_u16(code).expect("a status")
    }

    fn code(result: Result<Accepted, Rejection>) -> Option<ErrorCode> {
        result.err().map(|rejection| rejection.code)
    }

    fn rules(channel: Channel, content: ContentPolicy) -> AnswerRules {
        AnswerRules {
            content,
            ..AnswerRules::for_channel(Some(channel))
        }
    }

    #[test]
    fn content_types_are_classified_by_media_type() {
        assert_eq!(ContentKind::of(Some("text/xml")), ContentKind::Xml);
        assert_eq!(
            ContentKind::of(Some("Application/XML; charset=utf-8")),
            ContentKind::Xml
        );
        assert_eq!(ContentKind::of(Some("application/twiml+xml")), ContentKind::Xml);
        assert_eq!(ContentKind::of(Some("text/html;charset=UTF-8")), ContentKind::Html);
        assert_eq!(ContentKind::of(Some("text/plain")), ContentKind::PlainText);
        assert_eq!(ContentKind::of(Some("audio/mpeg")), ContentKind::Audio);
        assert_eq!(ContentKind::of(Some("Audio/X-WAV; rate=8000")), ContentKind::Audio);
        assert_eq!(ContentKind::of(Some("audio/ogg")), ContentKind::Other);
        assert_eq!(ContentKind::of(Some("application/json")), ContentKind::Other);
        assert_eq!(ContentKind::of(Some("+xml")), ContentKind::Other);
        assert_eq!(ContentKind::of(Some(" ; charset=utf-8")), ContentKind::Missing);
        assert_eq!(ContentKind::of(None), ContentKind::Missing);
    }

    #[test]
    fn failing_statuses_are_11200() {
        let rules = AnswerRules::for_channel(Some(Channel::Messaging));
        for status in [199, 301, 404, 500, 503] {
            assert_eq!(
                code(rules.check(st(status), Some("text/xml"), SMS)),
                Some(ErrorCode::HTTP_RETRIEVAL_FAILURE)
            );
        }
        assert!(rules.check(st(201), Some("text/xml"), SMS).is_ok());
    }

    #[test]
    fn size_is_checked_before_content_type() {
        let huge = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        assert_eq!(
            code(AnswerRules::default().check(st(200), None, &huge)),
            Some(ErrorCode::RESPONSE_TOO_LARGE)
        );
        assert_eq!(
            code(AnswerRules::default().check(st(200), Some("text/plain"), &huge)),
            Some(ErrorCode::RESPONSE_TOO_LARGE)
        );
    }

    #[test]
    fn xml_twiml_passes_as_it_is() {
        let verdict = AnswerRules::for_channel(Some(Channel::Messaging))
            .check(st(200), Some("text/xml"), SMS)
            .expect("valid");
        assert!(matches!(
            verdict,
            Accepted::Twiml {
                served_as: ContentKind::Xml,
                ..
            }
        ));
        assert_eq!(verdict.corrected_content_type(), None);
    }

    #[test]
    fn html_is_run_as_twiml_and_an_html_page_fails_as_twiml() {
        let rules = AnswerRules::for_channel(Some(Channel::Voice));
        let verdict = rules
            .check(st(200), Some("text/html; charset=utf-8"), VOICE)
            .expect("TwiML");
        assert!(matches!(
            verdict,
            Accepted::Twiml {
                served_as: ContentKind::Html,
                ..
            }
        ));
        assert_eq!(verdict.corrected_content_type(), Some(TWIML_CONTENT_TYPE));
        let page = b"<html><body><h1>Oops</h1></body></html>";
        assert_eq!(
            code(rules.check(st(200), Some("text/html"), page)),
            Some(ErrorCode::ROOT_NOT_RESPONSE)
        );
        let doctype = b"<!DOCTYPE html><html><body>502</body></html>";
        assert!(rules.check(st(200), Some("text/html"), doctype).is_err());
    }

    #[test]
    fn plain_text_is_the_reply_on_both_channels() {
        for channel in [Channel::Messaging, Channel::Voice] {
            let rules = AnswerRules::for_channel(Some(channel));
            assert_eq!(
                rules.check(
                    st(200),
                    Some("text/plain; charset=utf-8"),
                    b"Thanks, we got your message"
                ),
                Ok(Accepted::PlainText),
                "{channel}"
            );
            assert_eq!(
                code(rules.check(st(200), Some("text/plain"), b"")),
                Some(ErrorCode::EMPTY_RESPONSE)
            );
        }
    }

    #[test]
    fn twiml_served_as_plain_text_passes_with_its_content_type_corrected() {
        let sms = AnswerRules::for_channel(Some(Channel::Messaging));
        let verdict = sms
            .check(st(200), Some("text/plain; charset=utf-8"), SMS)
            .expect("TwiML");
        assert!(matches!(
            verdict,
            Accepted::Twiml {
                served_as: ContentKind::PlainText,
                ..
            }
        ));
        assert_eq!(verdict.corrected_content_type(), Some(TWIML_CONTENT_TYPE));
        // TwiML of the other channel is not TwiML this webhook can run: Twilio sends the text.
        assert_eq!(sms.check(st(200), Some("text/plain"), VOICE), Ok(Accepted::PlainText));
        // A lowercase root is text too, exactly as Twilio would treat it.
        assert_eq!(
            sms.check(
                st(200),
                Some("text/plain"),
                b"<response><Message>x</Message></response>"
            ),
            Ok(Accepted::PlainText)
        );
    }

    #[test]
    fn audio_is_played_on_calls_and_fails_messages() {
        let mp3 = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00";
        assert_eq!(
            AnswerRules::for_channel(Some(Channel::Voice)).check(st(200), Some("audio/mpeg"), mp3),
            Ok(Accepted::Audio)
        );
        assert_eq!(
            AnswerRules::for_channel(None).check(st(200), Some("audio/wav"), mp3),
            Ok(Accepted::Audio)
        );
        assert_eq!(
            code(AnswerRules::for_channel(Some(Channel::Messaging)).check(st(200), Some("audio/mpeg"), mp3)),
            Some(ErrorCode::INVALID_CONTENT_TYPE)
        );
        assert_eq!(
            code(AnswerRules::for_channel(Some(Channel::Voice)).check(st(200), Some("audio/mpeg"), b"")),
            Some(ErrorCode::EMPTY_RESPONSE)
        );
    }

    #[test]
    fn other_or_missing_content_types_are_12300() {
        let rules = AnswerRules::for_channel(Some(Channel::Voice));
        for content_type in [None, Some("application/json"), Some("audio/ogg"), Some("")] {
            assert_eq!(
                code(rules.check(st(200), content_type, VOICE)),
                Some(ErrorCode::INVALID_CONTENT_TYPE),
                "{content_type:?}"
            );
        }
    }

    #[test]
    fn twiml_only_refuses_plain_text_and_audio_but_corrects_twiml() {
        let voice = rules(Channel::Voice, ContentPolicy::TwimlOnly);
        assert_eq!(
            code(voice.check(st(200), Some("text/plain"), b"Please hold the line")),
            Some(ErrorCode::INVALID_CONTENT_TYPE)
        );
        assert_eq!(
            code(voice.check(st(200), Some("audio/mpeg"), b"ID3")),
            Some(ErrorCode::INVALID_CONTENT_TYPE)
        );
        assert_eq!(
            code(voice.check(st(200), Some("text/plain"), b"<response/>")),
            Some(ErrorCode::ROOT_NOT_RESPONSE),
            "broken TwiML is reported as broken TwiML"
        );
        let verdict = voice.check(st(200), Some("text/plain"), VOICE).expect("TwiML");
        assert_eq!(verdict.corrected_content_type(), Some(TWIML_CONTENT_TYPE));
        assert!(voice.check(st(200), Some("text/html"), VOICE).is_ok());
    }

    #[test]
    fn xml_only_refuses_everything_but_xml_types() {
        let voice = rules(Channel::Voice, ContentPolicy::XmlOnly);
        for content_type in ["text/html", "text/plain", "audio/mpeg"] {
            assert_eq!(
                code(voice.check(st(200), Some(content_type), VOICE)),
                Some(ErrorCode::INVALID_CONTENT_TYPE),
                "{content_type}"
            );
        }
        assert!(voice.check(st(200), Some("application/xml"), VOICE).is_ok());
    }

    #[test]
    fn empty_bodies_fail_except_a_messaging_204() {
        let voice = AnswerRules::for_channel(Some(Channel::Voice));
        let sms = AnswerRules::for_channel(Some(Channel::Messaging));
        assert_eq!(
            code(voice.check(st(200), Some("text/xml"), b"")),
            Some(ErrorCode::EMPTY_RESPONSE)
        );
        assert_eq!(
            code(voice.check(st(204), None, b"")),
            Some(ErrorCode::INVALID_CONTENT_TYPE)
        );
        assert_eq!(sms.check(st(204), None, b""), Ok(Accepted::NoReply));
        assert_eq!(
            code(sms.check(st(200), Some("text/xml"), b"")),
            Some(ErrorCode::EMPTY_RESPONSE)
        );
    }

    #[test]
    fn twiml_problems_carry_the_diagnostic() {
        let rules = AnswerRules::for_channel(Some(Channel::Messaging));
        let rejection = rules
            .check(st(200), Some("text/xml"), b"<Response><Say>hi</Say></Response>")
            .expect_err("a voice verb in messaging");
        assert_eq!(rejection.code, ErrorCode::SCHEMA_VALIDATION);
        assert_eq!(rejection.diagnostic.map(|d| d.column), Some(11));
        let lenient = AnswerRules {
            strictness: Strictness::WellFormed,
            ..rules
        };
        assert!(
            lenient
                .check(st(200), Some("text/xml"), b"<Response><Say>hi</Say></Response>")
                .is_ok()
        );
    }
}
