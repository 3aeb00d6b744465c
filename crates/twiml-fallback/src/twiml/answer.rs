//! Judging a webhook's HTTP answer the way Twilio does: status, size, Content-Type, body, TwiML.
//!
//! The tower layer uses this to decide whether to replace an app's response, the fallback endpoint
//! to decide whether a recovered primary's answer can be relayed, and the CLI's `simulate` to show
//! what Twilio would do.

use std::fmt;

use super::validate::{Diagnostic, MAX_DOCUMENT_BYTES, Report, Strictness, TargetChannel, validate};
use crate::error_code::ErrorCode;
use crate::webhook::Channel;

/// What a Content-Type header says about a body, as far as Twilio is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentKind {
    /// `text/xml`, `application/xml`, or any `…/…+xml`: TwiML.
    Xml,
    /// `text/html`: Twilio reads it as TwiML too, but from a webhook app it is almost always an
    /// error page.
    Html,
    /// `text/plain`: Twilio sends it as an SMS reply or reads it aloud.
    PlainText,
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
        let media_type = value.split(';').next().unwrap_or("").trim();
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
        } else if suffix.is_some_and(|suffix| suffix.eq_ignore_ascii_case("+xml")) && media_type.contains('/') {
            ContentKind::Xml
        } else {
            ContentKind::Other
        }
    }
}

/// The rules an answer must pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerRules {
    /// The channel whose verbs are allowed.
    pub target: TargetChannel,
    /// How much of the TwiML validation must pass.
    pub strictness: Strictness,
    /// Accept `text/html` bodies as TwiML, as Twilio does. Off by default: an HTML answer from a
    /// webhook app is an error page far more often than TwiML.
    pub accept_html: bool,
}

impl Default for AnswerRules {
    fn default() -> Self {
        Self {
            target: TargetChannel::Auto,
            strictness: Strictness::Schema,
            accept_html: false,
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

impl AnswerRules {
    /// Rules for `channel` with the default strictness.
    pub fn for_channel(channel: Option<Channel>) -> Self {
        Self {
            target: channel.into(),
            ..Self::default()
        }
    }

    /// Judges an answer; `Ok` carries the validation report (which may hold warnings).
    ///
    /// In Twilio's order: a 4xx/5xx (or any non-2xx) status is 11200; a body over 64 KB is 11750;
    /// a missing or non-XML Content-Type is 12300; an empty body is 11770 — except a `204 No
    /// Content` to a messaging webhook, which Twilio takes as "no reply"; then the TwiML itself.
    ///
    /// ```
    /// use twiml_fallback::error_code::ErrorCode;
    /// use twiml_fallback::twiml::AnswerRules;
    /// use twiml_fallback::Channel;
    ///
    /// let rules = AnswerRules::for_channel(Some(Channel::Messaging));
    /// let body = b"<Response><Message>hi</Message></Response>";
    /// assert!(rules.check(200, Some("text/xml; charset=utf-8"), body).is_ok());
    /// assert_eq!(rules.check(500, Some("text/xml"), body).unwrap_err().code, ErrorCode::HTTP_RETRIEVAL_FAILURE);
    /// assert_eq!(rules.check(200, Some("application/json"), body).unwrap_err().code, ErrorCode::INVALID_CONTENT_TYPE);
    /// assert_eq!(rules.check(200, Some("text/xml"), b"<response/>").unwrap_err().code, ErrorCode::ROOT_NOT_RESPONSE);
    /// ```
    pub fn check(&self, status: u16, content_type: Option<&str>, body: &[u8]) -> Result<Report, Rejection> {
        if !(200..300).contains(&status) {
            return Err(Rejection {
                code: ErrorCode::HTTP_RETRIEVAL_FAILURE,
                message: format!("the webhook answered HTTP {status}"),
                diagnostic: None,
            });
        }
        self.check_content(status, content_type, body)
    }

    /// Judges everything but the status (a caller with its own status policy uses this): size,
    /// Content-Type, empty body (a messaging `204` is "no reply"), TwiML.
    pub fn check_content(&self, status: u16, content_type: Option<&str>, body: &[u8]) -> Result<Report, Rejection> {
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
        if body.is_empty() && status == 204 && self.target == TargetChannel::Messaging {
            return Ok(Report::default());
        }
        let kind = ContentKind::of(content_type);
        let acceptable = kind == ContentKind::Xml || (kind == ContentKind::Html && self.accept_html);
        if !acceptable {
            let message = match content_type {
                None => "the answer has no Content-Type (TwiML needs text/xml or application/xml)".to_owned(),
                Some(value) => format!(
                    "Content-Type {:?} is not TwiML (use text/xml or application/xml)",
                    value.chars().take(100).collect::<String>()
                ),
            };
            return Err(Rejection {
                code: ErrorCode::INVALID_CONTENT_TYPE,
                message,
                diagnostic: None,
            });
        }
        let report = validate(body, self.target);
        match report.check(self.strictness) {
            Ok(()) => Ok(report),
            Err(diagnostic) => Err(Rejection {
                code: diagnostic.code,
                message: diagnostic.to_string(),
                diagnostic: Some(diagnostic.clone()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMS: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>ok</Message></Response>";

    fn code(result: Result<Report, Rejection>) -> Option<ErrorCode> {
        result.err().map(|rejection| rejection.code)
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
                code(rules.check(status, Some("text/xml"), SMS)),
                Some(ErrorCode::HTTP_RETRIEVAL_FAILURE)
            );
        }
        assert!(rules.check(201, Some("text/xml"), SMS).is_ok());
    }

    #[test]
    fn size_is_checked_before_content_type() {
        let huge = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        assert_eq!(
            code(AnswerRules::default().check(200, None, &huge)),
            Some(ErrorCode::RESPONSE_TOO_LARGE)
        );
    }

    #[test]
    fn html_is_refused_unless_asked_for() {
        let rules = AnswerRules::for_channel(Some(Channel::Messaging));
        assert_eq!(
            code(rules.check(200, Some("text/html"), SMS)),
            Some(ErrorCode::INVALID_CONTENT_TYPE)
        );
        let lenient = AnswerRules {
            accept_html: true,
            ..rules
        };
        assert!(lenient.check(200, Some("text/html"), SMS).is_ok());
    }

    #[test]
    fn empty_bodies_fail_except_a_messaging_204() {
        let voice = AnswerRules::for_channel(Some(Channel::Voice));
        let sms = AnswerRules::for_channel(Some(Channel::Messaging));
        assert_eq!(
            code(voice.check(200, Some("text/xml"), b"")),
            Some(ErrorCode::EMPTY_RESPONSE)
        );
        assert_eq!(code(voice.check(204, None, b"")), Some(ErrorCode::INVALID_CONTENT_TYPE));
        assert!(sms.check(204, None, b"").is_ok());
        assert_eq!(
            code(sms.check(200, Some("text/xml"), b"")),
            Some(ErrorCode::EMPTY_RESPONSE)
        );
    }

    #[test]
    fn twiml_problems_carry_the_diagnostic() {
        let rules = AnswerRules::for_channel(Some(Channel::Messaging));
        let rejection = rules
            .check(200, Some("text/xml"), b"<Response><Say>hi</Say></Response>")
            .expect_err("a voice verb in messaging");
        assert_eq!(rejection.code, ErrorCode::SCHEMA_VALIDATION);
        assert_eq!(rejection.diagnostic.map(|d| d.column), Some(11));
        let lenient = AnswerRules {
            strictness: Strictness::WellFormed,
            ..rules
        };
        assert!(
            lenient
                .check(200, Some("text/xml"), b"<Response><Say>hi</Say></Response>")
                .is_ok()
        );
    }
}
