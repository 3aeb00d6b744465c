//! What validation reports: the [`Report`] of one document, its [`Diagnostic`]s with their
//! [`Severity`], the [`Strictness`] that decides what counts, and the [`TargetChannel`] a document
//! is checked for.
//!
//! # Example
//!
//! ```
//! use twiml_fallback::error_code::ErrorCode;
//! use twiml_fallback::twiml::{validate, Severity, Strictness, TargetChannel};
//!
//! let report = validate(b"<Response><Say loop=\"-1\">Hi</Say></Response>", TargetChannel::Auto);
//! let warning = &report.diagnostics()[0];
//! assert_eq!((warning.code, warning.severity), (ErrorCode::SCHEMA_VALIDATION, Severity::Warning));
//! assert_eq!(warning.to_string(), "1:16: warning[12200]: <Say loop> is \"-1\"; expected an integer >= 0");
//! assert!(report.is_valid() && report.check(Strictness::Schema).is_ok());
//! assert!(report.check(Strictness::Pedantic).is_err());
//! assert_eq!(report.channel(), Some(twiml_fallback::Channel::Voice));
//! ```

use std::fmt;

use crate::error_code::ErrorCode;
use crate::webhook::Channel;

/// Which channel's rules to validate against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TargetChannel {
    /// Voice verbs only (plus `<Redirect>`).
    Voice,
    /// `<Message>` and `<Redirect>` only.
    Messaging,
    /// Whichever channel the first channel-specific verb belongs to; mixing channels is an error.
    #[default]
    Auto,
}

impl From<Channel> for TargetChannel {
    fn from(channel: Channel) -> Self {
        match channel {
            Channel::Voice => TargetChannel::Voice,
            Channel::Messaging => TargetChannel::Messaging,
        }
    }
}

impl From<Option<Channel>> for TargetChannel {
    fn from(channel: Option<Channel>) -> Self {
        channel.map_or(TargetChannel::Auto, Into::into)
    }
}

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Twilio fails the document, or skips the offending verb (the caller or sender misses it).
    Error,
    /// Twilio executes the document, but something in it is ignored or likely a mistake.
    Warning,
}

impl Severity {
    /// `"error"` or `"warning"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem found in a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The Twilio error code Twilio would log for it (11750, 12100, 12102 or 12200).
    pub code: ErrorCode,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in a sentence.
    pub message: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// Byte offset into the document.
    pub offset: usize,
}

impl fmt::Display for Diagnostic {
    /// `LINE:COL: error[CODE]: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}[{}]: {}",
            self.line,
            self.column,
            self.severity.as_str(),
            self.code,
            self.message
        )
    }
}

/// How much of the validation must pass for a document to be accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Strictness {
    /// Only what makes Twilio fail the whole document: size, parse errors, wrong root (11750,
    /// 11770, 12100, 12102).
    WellFormed,
    /// Also schema errors (12200 errors: unknown verbs, wrong channel, wrong nesting).
    #[default]
    Schema,
    /// Also warnings.
    Pedantic,
}

/// The outcome of validating one document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub(super) diagnostics: Vec<Diagnostic>,
    pub(super) channel: Option<Channel>,
}

impl Report {
    /// Whether the document has no errors (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.first_error().is_none()
    }

    /// Every diagnostic, in document order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Warning)
    }

    /// The first error, if any.
    pub fn first_error(&self) -> Option<&Diagnostic> {
        self.errors().next()
    }

    /// The channel the document is for: the one validated against, or for
    /// [`TargetChannel::Auto`] the one its verbs use (`None` if they don't say, e.g. `<Response/>`).
    pub fn channel(&self) -> Option<Channel> {
        self.channel
    }

    /// `Ok` when the document is acceptable at `strictness`, else the first diagnostic that is not.
    pub fn check(&self, strictness: Strictness) -> Result<(), &Diagnostic> {
        let blocking = self.diagnostics.iter().find(|d| match strictness {
            Strictness::WellFormed => d.severity == Severity::Error && d.code != ErrorCode::SCHEMA_VALIDATION,
            Strictness::Schema => d.severity == Severity::Error,
            Strictness::Pedantic => true,
        });
        blocking.map_or(Ok(()), Err)
    }
}
