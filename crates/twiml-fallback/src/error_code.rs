//! Twilio's error codes for webhook failures: what each means and whether it sends Twilio to the
//! number's fallback URL.
//!
//! Twilio tells the fallback URL why it was called with an `ErrorCode` parameter, and logs the same
//! code in the console's debugger. [`ErrorCode`] is a thin wrapper over the number: every code is
//! representable (Twilio adds codes over time), and the ones that matter for a failing webhook are
//! catalogued with a title, a meaning and whether they trigger the fallback.
//!
//! # Example
//!
//! ```
//! use twiml_fallback::error_code::ErrorCode;
//!
//! // A known code, e.g. parsed from a fallback request's `ErrorCode` parameter.
//! let code: ErrorCode = "12100".parse().unwrap();
//! assert_eq!(code, ErrorCode::DOCUMENT_PARSE_FAILURE);
//! assert_eq!(code.title(), "Document parse failure");
//! assert_eq!(code.triggers_fallback(), Some(true));
//!
//! // An unknown code is still a code; we just know nothing about it.
//! let other = ErrorCode::new(99999);
//! assert!(other.info().is_none());
//! assert_eq!(other.title(), "Unknown Twilio error");
//! assert_eq!(other.triggers_fallback(), None);
//! assert_eq!(other.docs_url(), "https://www.twilio.com/docs/api/errors/99999");
//! ```

use std::fmt;
use std::str::FromStr;

/// A Twilio error code, such as `11200` (HTTP retrieval failure).
///
/// Known codes have associated constants and an [`ErrorInfo`]; any other `u32` is a valid,
/// if unknown, code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(u32);

/// What Twilio documents about one error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorInfo {
    /// The code itself.
    pub code: ErrorCode,
    /// Twilio's short title for the error.
    pub title: &'static str,
    /// What happened, in a sentence, from the point of view of the webhook's owner.
    pub meaning: &'static str,
    /// Whether Twilio requests the number's fallback URL after this error on the primary URL.
    pub triggers_fallback: bool,
}

macro_rules! catalogue {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $title:literal, $fallback:literal, $meaning:literal; )*) => {
        impl ErrorCode {
            $( $(#[$doc])* pub const $name: ErrorCode = ErrorCode($code); )*
        }

        /// Every code this crate knows, in ascending order.
        pub const CATALOGUE: &[ErrorInfo] = &[
            $( ErrorInfo {
                code: ErrorCode($code),
                title: $title,
                meaning: $meaning,
                triggers_fallback: $fallback,
            }, )*
        ];
    };
}

catalogue! {
    /// 11100: the webhook URL is not a valid URL.
    INVALID_URL = 11100, "Invalid URL format", true,
        "The webhook URL is not a valid absolute http(s) URL, so Twilio could not request it.";
    /// 11200: the catch-all for a failed request, including any 4xx or 5xx answer.
    HTTP_RETRIEVAL_FAILURE = 11200, "HTTP retrieval failure", true,
        "Twilio could not retrieve TwiML from the webhook: the request failed or the server answered with a 4xx or 5xx status.";
    /// 11205: the connection failed or Twilio's time budget ran out.
    CONNECTION_FAILURE = 11205, "HTTP connection failure", true,
        "Twilio could not connect to the webhook's server, or the server did not answer within Twilio's time limit (15 s in total).";
    /// 11210: DNS could not resolve the webhook's host.
    BAD_HOST_NAME = 11210, "HTTP bad host name", true,
        "The webhook's host name could not be resolved.";
    /// 11215: the webhook redirected too many times.
    TOO_MANY_REDIRECTS = 11215, "HTTP too many redirects", true,
        "The webhook answered with more redirects than Twilio follows.";
    /// 11217: the webhook answered with an HTTP error status.
    HTTP_ERROR_STATUS = 11217, "HTTP error status", true,
        "The webhook answered with an HTTP error status.";
    /// 11220: the TLS handshake with the webhook's server failed.
    TLS_HANDSHAKE = 11220, "SSL/TLS handshake error", true,
        "Twilio could not complete a TLS handshake with the webhook's server.";
    /// 11237: the server's certificate could not be verified.
    CERTIFICATE_INVALID = 11237, "Certificate invalid", true,
        "The webhook server's TLS certificate could not be verified (unknown issuer, incomplete chain, expired or wrong host).";
    /// 11750: the TwiML body is larger than 64 KB.
    RESPONSE_TOO_LARGE = 11750, "TwiML response body too large", true,
        "The webhook's response body is larger than Twilio's 64 KB limit.";
    /// 11770: the webhook answered with an empty body.
    EMPTY_RESPONSE = 11770, "Empty response body", true,
        "The webhook answered with an empty body, so there was no TwiML to execute.";
    /// 12100: the body is not well-formed XML.
    DOCUMENT_PARSE_FAILURE = 12100, "Document parse failure", true,
        "The webhook's response is not well-formed XML (XML is case-sensitive; anything before the declaration is an error).";
    /// 12101: the `<Response>` carries an unsupported `version`.
    INVALID_VERSION = 12101, "Invalid Twilio Markup XML version", true,
        "The TwiML document declares a version Twilio does not support.";
    /// 12102: the root element is not `<Response>`.
    ROOT_NOT_RESPONSE = 12102, "The root element must be Response", true,
        "The XML is well-formed but its root element is not <Response> (XML is case-sensitive: <response> is wrong).";
    /// 12200: the document does not follow TwiML's schema.
    SCHEMA_VALIDATION = 12200, "Schema validation warning", false,
        "The TwiML does not conform to Twilio's schema: an unknown or wrong-case verb, a verb not allowed for the channel, wrong nesting or attributes. Twilio may skip the offending parts.";
    /// 12300: the response's Content-Type is missing or not XML.
    INVALID_CONTENT_TYPE = 12300, "Invalid Content-Type", true,
        "The webhook's response has no Content-Type or one Twilio cannot execute (TwiML needs text/xml or application/xml).";
    /// 12400: Twilio itself failed.
    INTERNAL_FAILURE = 12400, "Internal failure", false,
        "Twilio failed internally while processing the webhook's response.";
}

impl ErrorCode {
    /// A code from its number; any number is accepted.
    pub const fn new(code: u32) -> Self {
        Self(code)
    }

    /// The number, e.g. `11200`.
    pub const fn as_u32(self) -> u32 {
        self.0
    }

    /// What this crate knows about the code, or `None` for a code outside [`CATALOGUE`].
    pub fn info(self) -> Option<&'static ErrorInfo> {
        CATALOGUE
            .binary_search_by_key(&self, |info| info.code)
            .ok()
            .map(|index| &CATALOGUE[index])
    }

    /// Twilio's title for the code, or `"Unknown Twilio error"`.
    pub fn title(self) -> &'static str {
        self.info().map_or("Unknown Twilio error", |info| info.title)
    }

    /// Whether Twilio requests the fallback URL after this error; `None` for an unknown code.
    pub fn triggers_fallback(self) -> Option<bool> {
        self.info().map(|info| info.triggers_fallback)
    }

    /// The code's page in Twilio's error dictionary.
    pub fn docs_url(self) -> String {
        format!("https://www.twilio.com/docs/api/errors/{}", self.0)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u32> for ErrorCode {
    fn from(code: u32) -> Self {
        Self(code)
    }
}

/// The text was not a decimal error code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseErrorCodeError {
    text: String,
}

impl fmt::Display for ParseErrorCodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a Twilio error code: {:?}", self.text)
    }
}

impl std::error::Error for ParseErrorCodeError {}

impl FromStr for ErrorCode {
    type Err = ParseErrorCodeError;

    /// Parses a decimal code; surrounding whitespace is ignored.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseErrorCodeError {
                text: text.chars().take(32).collect(),
            });
        }
        trimmed.parse::<u32>().map(Self).map_err(|_| ParseErrorCodeError {
            text: text.chars().take(32).collect(),
        })
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_sorted_and_unique_so_lookup_works() {
        for pair in CATALOGUE.windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{:?} before {:?}",
                pair[0].code,
                pair[1].code
            );
        }
        for info in CATALOGUE {
            assert_eq!(info.code.info(), Some(info));
        }
    }

    #[test]
    fn design_codes_are_all_catalogued() {
        for code in [
            11100, 11200, 11205, 11210, 11215, 11217, 11220, 11237, 11750, 11770, 12100, 12101, 12102, 12200, 12300,
            12400,
        ] {
            assert!(ErrorCode::new(code).info().is_some(), "{code} missing");
        }
    }

    #[test]
    fn fetch_and_document_failures_trigger_fallback_but_schema_warning_does_not() {
        assert_eq!(ErrorCode::HTTP_RETRIEVAL_FAILURE.triggers_fallback(), Some(true));
        assert_eq!(ErrorCode::ROOT_NOT_RESPONSE.triggers_fallback(), Some(true));
        assert_eq!(ErrorCode::SCHEMA_VALIDATION.triggers_fallback(), Some(false));
        assert_eq!(ErrorCode::new(1).triggers_fallback(), None);
    }

    #[test]
    fn parses_decimal_codes_and_rejects_everything_else() {
        assert_eq!(" 11205 ".parse::<ErrorCode>(), Ok(ErrorCode::CONNECTION_FAILURE));
        assert_eq!("0".parse::<ErrorCode>(), Ok(ErrorCode::new(0)));
        for bad in ["", "  ", "-1", "+5", "12a", "1e3", "99999999999999"] {
            assert!(bad.parse::<ErrorCode>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn unknown_codes_are_representable() {
        let code = ErrorCode::from(31000);
        assert_eq!(code.to_string(), "31000");
        assert_eq!(code.title(), "Unknown Twilio error");
        assert_eq!(serde_json::to_string(&code).ok().as_deref(), Some("31000"));
    }
}
