//! What the fallback layer reports each time it answers with fallback TwiML.

use std::fmt;
use std::time::Duration;

use http::StatusCode;

use crate::error_code::ErrorCode;
use crate::twiml::Rejection;
use crate::webhook::Channel;

/// Why the layer replaced the app's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FallbackCause {
    /// The handler panicked (in `call` or in its future); the panic message.
    Panic(String),
    /// The response body panicked while streaming; the panic message.
    BodyPanic(String),
    /// The inner service returned `Err`; the error's message.
    Error(String),
    /// The response body failed while streaming; the error's message.
    BodyError(String),
    /// The request body failed while the layer read it; the error's message.
    RequestBodyError(String),
    /// No answer within the layer's deadline.
    Timeout(Duration),
    /// A failing status (by default any 4xx or 5xx).
    Status(StatusCode),
    /// An answer Twilio would reject: Content-Type, empty body, size, XML, root, schema.
    Rejected(Rejection),
}

impl FallbackCause {
    /// The short name used in logs and in the `x-twiml-fallback` header: `panic`, `body-panic`,
    /// `error`, `body-error`, `request-body-error`, `timeout`, `status`, `content-type`, `empty`,
    /// `too-large` or `invalid-twiml`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FallbackCause::Panic(_) => "panic",
            FallbackCause::BodyPanic(_) => "body-panic",
            FallbackCause::Error(_) => "error",
            FallbackCause::BodyError(_) => "body-error",
            FallbackCause::RequestBodyError(_) => "request-body-error",
            FallbackCause::Timeout(_) => "timeout",
            FallbackCause::Status(_) => "status",
            FallbackCause::Rejected(rejection) => match rejection.code {
                ErrorCode::INVALID_CONTENT_TYPE => "content-type",
                ErrorCode::EMPTY_RESPONSE => "empty",
                ErrorCode::RESPONSE_TOO_LARGE => "too-large",
                _ => "invalid-twiml",
            },
        }
    }

    /// The Twilio error code Twilio would have logged for this failure.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            FallbackCause::Timeout(_) => ErrorCode::CONNECTION_FAILURE,
            FallbackCause::Rejected(rejection) => rejection.code,
            FallbackCause::Panic(_)
            | FallbackCause::BodyPanic(_)
            | FallbackCause::Error(_)
            | FallbackCause::BodyError(_)
            | FallbackCause::RequestBodyError(_)
            | FallbackCause::Status(_) => ErrorCode::HTTP_RETRIEVAL_FAILURE,
        }
    }
}

impl fmt::Display for FallbackCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FallbackCause::Panic(message) => write!(f, "the handler panicked: {message}"),
            FallbackCause::BodyPanic(message) => write!(f, "the response body panicked: {message}"),
            FallbackCause::Error(message) => write!(f, "the service failed: {message}"),
            FallbackCause::BodyError(message) => write!(f, "the response body failed: {message}"),
            FallbackCause::RequestBodyError(message) => write!(f, "reading the request body failed: {message}"),
            FallbackCause::Timeout(after) => write!(f, "no answer within {} ms", after.as_millis()),
            FallbackCause::Status(status) => write!(f, "the app answered HTTP {}", status.as_u16()),
            FallbackCause::Rejected(rejection) => write!(f, "{}", rejection.message),
        }
    }
}

/// One fallback answer, as logged and as given to the `on_fallback` hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FallbackEvent {
    /// Why.
    pub cause: FallbackCause,
    /// The Twilio error code Twilio would have logged (11200, 11205, 11750, 12100, 12102, 12200, 12300…).
    pub error_code: ErrorCode,
    /// The webhook's channel, when known.
    pub channel: Option<Channel>,
    /// `CallSid` or `MessageSid`.
    pub sid: Option<String>,
    /// The called number (`To`).
    pub to: Option<String>,
    /// The request path.
    pub path: String,
    /// Time from the request reaching the layer to the fallback answer.
    pub elapsed: Duration,
}
