//! Validating TwiML bytes the way Twilio reads them: size, well-formedness, root, and schema.
//!
//! Checks run in Twilio's order and stop where Twilio would:
//!
//! 1. **11750**: more than 64 KB (65,536 bytes).
//! 2. **11770**: an empty body.
//! 3. **12100**: not well-formed XML: invalid UTF-8, characters XML forbids, anything (even
//!    whitespace) before the `<?xml …?>` declaration, unclosed or mismatched tags (XML is
//!    case-sensitive), bad attributes, undefined entities, a `<!DOCTYPE>` (TwiML has no use for
//!    one, and refusing it rules out entity-expansion attacks), text or a second element outside
//!    the root.
//! 4. **12102**: the root element is not exactly `<Response>` (`<response>` is not).
//! 5. **12200**: schema problems, as errors or warnings ([`Severity`]):
//!    - errors: unknown or wrong-case verbs and nouns, verbs of the other channel (`<Say>` in a
//!      messaging response), a mix of voice and messaging verbs, wrong nesting (`<Gather>` holds
//!      only `<Say>`, `<Play>` and `<Pause>`; `<Message>` holds text or `<Body>`/`<Media>`);
//!    - warnings: unknown attributes, attribute values Twilio rejects (`method="PUT"`,
//!      `loop="-1"`), text Twilio ignores, missing text (`<Redirect/>`, an empty `<Say>`), the
//!      deprecated `<Sms>` verb, verbs after `<Redirect>`/`<Reject>`/`<Hangup>` that are never
//!      reached.
//!
//! Every diagnostic has the Twilio error code, a message and a 1-based line and column (in
//! characters). Validation never panics, allocates nothing for a clean document of the usual shape
//! (and for any other nothing beyond the stack of open elements and the diagnostics), and runs in
//! time linear in the input.
//!
//! Two walks read the document, with the same rules: `fast.rs`, a tokenizer for the shape apps
//! really send, which gives up on anything else, and this file's walk over quick-xml's
//! tokenizer, which reads all of XML and words every error. A document the fast walk finishes
//! gets the report the full walk would give it (the property tests and the `twiml_validate` fuzz
//! target hold the two to that). `rules.rs` applies TwiML's element tree as elements open and
//! close, `lex.rs` holds the byte-level checks of well-formedness, and `report.rs` the types a
//! validation returns.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::schema::Element;
use crate::error_code::ErrorCode;
use crate::webhook::Channel;

mod fast;
mod lex;
mod report;
mod rules;

use lex::{
    RawAttribute, check_declaration, check_reference, check_references_in, describe_attribute_error,
    describe_xml_error, find_cdata_end, find_duplicate, find_forbidden_character, is_valid_name, is_whitespace,
    position, relative_offset, within, within_str,
};
pub use report::{Diagnostic, Report, Severity, Strictness, TargetChannel};

/// Twilio's limit on a TwiML response body: 64 KB.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// At most this many diagnostics are reported for one document.
pub const MAX_DIAGNOSTICS: usize = 100;

/// Validates `document` for `target`.
///
/// ```
/// use twiml_fallback::error_code::ErrorCode;
/// use twiml_fallback::twiml::{validate, TargetChannel};
///
/// let document = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>Hi 🍰</Message></Response>"#;
/// let ok = validate(document.as_bytes(), TargetChannel::Messaging);
/// assert!(ok.is_valid());
///
/// // XML is case-sensitive: a lowercase root is well-formed XML, but not TwiML.
/// let lowercase = validate(b"<response><Message>Hi</Message></response>", TargetChannel::Auto);
/// let error = lowercase.first_error().unwrap();
/// assert_eq!(error.code, ErrorCode::ROOT_NOT_RESPONSE);
/// assert_eq!((error.line, error.column), (1, 1));
///
/// // A voice verb in a messaging response.
/// let wrong_channel = validate(b"<Response>\n  <Say>Hi</Say>\n</Response>", TargetChannel::Messaging);
/// assert_eq!(wrong_channel.first_error().unwrap().to_string(),
///            "2:3: error[12200]: <Say> is a voice verb; a messaging response can only use <Message> and <Redirect>");
/// ```
pub fn validate(document: &[u8], target: TargetChannel) -> Report {
    let mut validator = Validator::new(document, target);
    validator.run(Walk::FastFirst);
    validator.finish()
}

/// [`validate`] without its fast walk: quick-xml's tokenizer on every document. The report is the
/// same for every input (the property tests and the `twiml_validate` fuzz target hold the two to
/// that); this is here for them and for the benchmarks, not for use.
#[doc(hidden)]
pub fn validate_without_fast_path(document: &[u8], target: TargetChannel) -> Report {
    let mut validator = Validator::new(document, target);
    validator.run(Walk::Full);
    validator.finish()
}

/// Which tokenizer reads the document.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// The fast walk (`fast.rs`), then the full one if it gives up.
    FastFirst,
    /// quick-xml only.
    Full,
}

struct Validator<'a> {
    document: &'a [u8],
    /// The document as text, once it is known to be UTF-8.
    text: &'a str,
    target: TargetChannel,
    channel: Option<Channel>,
    diagnostics: Vec<Diagnostic>,
    fatal: Option<Diagnostic>,
    wrong_root: Option<Diagnostic>,
    truncated: bool,
    positions: LineIndex,
    /// Reused for every tag's attributes, so validating allocates once, not once per element.
    attribute_buffer: Vec<RawAttribute<'a>>,
}

#[derive(Clone, Copy, Default)]
struct LineIndex {
    offset: usize,
    line: u32,
    line_start: usize,
}

/// An open element.
#[derive(Clone, Copy)]
struct Frame<'a> {
    /// Its name as written, to match the end tag against.
    name: &'a [u8],
    /// The definition, when the element is known in its place and schema checks apply inside it.
    element: Option<&'static Element>,
    offset: usize,
    has_text: bool,
    children: u32,
    bodies: u32,
    media: u32,
    has_digits: bool,
}

impl<'a> Frame<'a> {
    const fn new(name: &'a [u8], element: Option<&'static Element>, offset: usize) -> Self {
        Self {
            name,
            element,
            offset,
            has_text: false,
            children: 0,
            bodies: 0,
            media: 0,
            has_digits: false,
        }
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl<'a> Validator<'a> {
    fn new(document: &'a [u8], target: TargetChannel) -> Self {
        Self {
            document,
            text: "",
            target,
            channel: match target {
                TargetChannel::Voice => Some(Channel::Voice),
                TargetChannel::Messaging => Some(Channel::Messaging),
                TargetChannel::Auto => None,
            },
            diagnostics: Vec::new(),
            fatal: None,
            wrong_root: None,
            truncated: false,
            positions: LineIndex::default(),
            attribute_buffer: Vec::new(),
        }
    }

    fn finish(mut self) -> Report {
        if let Some(fatal) = self.fatal.take().or_else(|| self.wrong_root.take()) {
            return Report {
                diagnostics: vec![fatal],
                channel: self.channel,
            };
        }
        Report {
            diagnostics: self.diagnostics,
            channel: self.channel,
        }
    }

    /// Forgets what a walk found, for the next walk over the same document.
    fn reset(&mut self) {
        *self = Self::new(self.document, self.target);
    }

    fn run(&mut self, walk: Walk) {
        let document = self.document;
        if document.len() > MAX_DOCUMENT_BYTES {
            let message = format!(
                "the body is {} bytes; Twilio accepts at most {MAX_DOCUMENT_BYTES} (64 KB)",
                document.len()
            );
            self.set_fatal(ErrorCode::RESPONSE_TOO_LARGE, 0, message);
            return;
        }
        if document.is_empty() {
            self.set_fatal(ErrorCode::EMPTY_RESPONSE, 0, "the body is empty".to_owned());
            return;
        }
        let text = match std::str::from_utf8(document) {
            Ok(text) => text,
            Err(error) => {
                let message = "invalid UTF-8 (TwiML must be encoded as UTF-8)".to_owned();
                self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, error.valid_up_to(), message);
                return;
            }
        };
        if let Some((offset, character)) = find_forbidden_character(document) {
            let message = format!("character U+{:04X} is not allowed in XML", u32::from(character));
            self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, offset, message);
            return;
        }
        let start = if document.starts_with(BOM) { BOM.len() } else { 0 };
        self.text = text;
        // quick-xml skips a byte-order mark wherever the text it reads starts with one, so a
        // second one would pass unseen (and shift every position after it): only the first is a
        // byte-order mark, a second is text before the root.
        if document[start..].starts_with(BOM) && start > 0 {
            let message = "a second byte-order mark (U+FEFF) is text before the root element".to_owned();
            self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, start, message);
            return;
        }
        if walk == Walk::FastFirst {
            if self.parse_fast(text, start) {
                return;
            }
            self.reset();
            self.text = text;
        }
        self.parse(text, start);
    }

    fn parse(&mut self, text: &'a str, start: usize) {
        // A reader over `str` knows the text is UTF-8 and does not check every event again.
        let mut reader = Reader::from_str(&text[start..]);
        let config = reader.config_mut();
        // End tags are matched against our own stack of open elements (no second stack of names).
        config.check_end_names = false;
        config.check_comments = true;
        config.expand_empty_elements = false;
        config.allow_dangling_amp = false;
        config.allow_unmatched_ends = true;

        let mut stack: Vec<Frame<'a>> = Vec::with_capacity(8);
        let mut root_seen = false;
        let mut last_terminal_verb: Option<&'static str> = None;
        loop {
            let offset = start + position(reader.buffer_position());
            let event = match reader.read_event() {
                Ok(event) => event,
                Err(error) => {
                    let at = start + position(reader.error_position());
                    self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, at, describe_xml_error(&error));
                    return;
                }
            };
            match event {
                Event::Eof => {
                    if let Some(open) = stack.last() {
                        let name = self.element_name_at(open.offset);
                        let message = format!("<{name}> is never closed");
                        self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, open.offset, message);
                    } else if !root_seen {
                        let message = "there is no root element (TwiML needs <Response>)".to_owned();
                        self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, offset, message);
                    }
                    return;
                }
                Event::Decl(declaration) => {
                    if offset != start {
                        let message =
                            "the XML declaration must be the very first thing in the body (nothing, not even whitespace, may precede it)"
                                .to_owned();
                        self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, offset, message);
                        return;
                    }
                    let standard = AsRef::<str>::as_ref(&declaration) == r#"xml version="1.0" encoding="UTF-8""#;
                    if let Some(message) = (!standard).then(|| check_declaration(&declaration)).flatten() {
                        self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, offset, message);
                        return;
                    }
                }
                Event::PI(instruction) => {
                    let target = instruction.target().as_bytes();
                    if target.eq_ignore_ascii_case(b"xml") {
                        let message =
                            "processing instructions named \"xml\" are reserved (a misplaced declaration?)".to_owned();
                        self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, offset, message);
                        return;
                    }
                    if !is_valid_name(target) {
                        self.set_fatal(
                            ErrorCode::DOCUMENT_PARSE_FAILURE,
                            offset,
                            "invalid processing instruction".to_owned(),
                        );
                        return;
                    }
                }
                Event::DocType(_) => {
                    let message = "<!DOCTYPE> is not allowed in TwiML".to_owned();
                    self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, offset, message);
                    return;
                }
                Event::Comment(_) => {}
                Event::Text(text) => {
                    let bytes: &[u8] = text.as_bytes();
                    if let Some(relative) = find_cdata_end(bytes) {
                        let message = "\"]]>\" is not allowed in text".to_owned();
                        self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, offset + relative, message);
                        return;
                    }
                    if !is_whitespace(bytes) && !self.text(&mut stack, offset) {
                        return;
                    }
                }
                Event::CData(data) => {
                    let blank = is_whitespace(data.as_bytes());
                    if (stack.is_empty() || !blank) && !self.text(&mut stack, offset) {
                        return;
                    }
                }
                Event::GeneralRef(reference) => {
                    if let Err(message) = check_reference(reference.as_bytes()) {
                        self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, offset, message);
                        return;
                    }
                    if !self.text(&mut stack, offset) {
                        return;
                    }
                }
                Event::Start(_) | Event::Empty(_) if stack.is_empty() && root_seen => {
                    let message = "only one root element is allowed".to_owned();
                    self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, offset, message);
                    return;
                }
                Event::Start(tag) => {
                    root_seen = true;
                    if !self.open(&tag, offset, &mut stack, &mut last_terminal_verb) {
                        return;
                    }
                }
                Event::Empty(tag) => {
                    root_seen = true;
                    if !self.open(&tag, offset, &mut stack, &mut last_terminal_verb) {
                        return;
                    }
                    if let Some(frame) = stack.pop() {
                        self.close(frame);
                    }
                }
                Event::End(end) => {
                    let name = end.name().into_inner().as_bytes();
                    let Some(frame) = stack.pop() else {
                        let message = format!(
                            "</{}> closes an element that was never opened",
                            String::from_utf8_lossy(name)
                        );
                        self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, offset, message);
                        return;
                    };
                    if frame.name != name {
                        let (found, expected) = (String::from_utf8_lossy(name), String::from_utf8_lossy(frame.name));
                        let message = if frame.name.eq_ignore_ascii_case(name) {
                            format!("</{found}> does not close <{expected}> (XML is case-sensitive)")
                        } else {
                            format!("</{found}> does not close <{expected}>")
                        };
                        self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, offset, message);
                        return;
                    }
                    self.close(frame);
                }
            }
        }
    }

    /// Text (or a reference, or CDATA) at `offset`; `false` when it is fatal.
    fn text(&mut self, stack: &mut [Frame<'a>], offset: usize) -> bool {
        match stack.last_mut() {
            Some(frame) => {
                frame.has_text = true;
                true
            }
            None => {
                let message = "text is not allowed outside the root element".to_owned();
                self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, offset, message);
                false
            }
        }
    }

    /// A start tag; `false` when it is fatal.
    fn open(
        &mut self,
        tag: &BytesStart<'_>,
        offset: usize,
        stack: &mut Vec<Frame<'a>>,
        last_terminal_verb: &mut Option<&'static str>,
    ) -> bool {
        let name = tag.name().into_inner().as_bytes();
        let name = within(self.document, name).unwrap_or(b"");
        if !is_valid_name(name) {
            let message = if name.is_empty() || AsRef::<str>::as_ref(tag).starts_with(char::is_whitespace) {
                "'<' must start a tag (write &lt; for a literal <)".to_owned()
            } else {
                format!("invalid element name {:?}", String::from_utf8_lossy(name))
            };
            self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, offset, message);
            return false;
        }
        let mut attributes = std::mem::take(&mut self.attribute_buffer);
        let accepted = self.attributes(tag, offset, &mut attributes);
        let frame = accepted
            .then(|| self.open_checked(name, offset, &attributes, stack.last_mut(), last_terminal_verb))
            .flatten();
        self.attribute_buffer = attributes;
        match frame {
            Some(frame) => {
                stack.push(frame);
                true
            }
            None => false,
        }
    }

    /// Parses and checks a tag's attributes for well-formedness into `parsed`; `false` when it is
    /// fatal.
    fn attributes(&mut self, tag: &BytesStart<'_>, offset: usize, parsed: &mut Vec<RawAttribute<'a>>) -> bool {
        let document = self.document;
        parsed.clear();
        let mut attributes = tag.attributes();
        attributes.with_checks(false);
        for attribute in attributes {
            let attribute = match attribute {
                Ok(attribute) => attribute,
                Err(error) => {
                    let (relative, message) = describe_attribute_error(&error);
                    self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, offset + 1 + relative, message);
                    return false;
                }
            };
            let key = attribute.key.into_inner().as_bytes();
            let at = offset + relative_offset(tag, key);
            let (Some(key), Some(value)) = (
                within(document, key),
                match &attribute.value {
                    std::borrow::Cow::Borrowed(value) => within_str(self.text, value),
                    std::borrow::Cow::Owned(_) => None,
                },
            ) else {
                self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, at, "malformed attribute".to_owned());
                return false;
            };
            if !is_valid_name(key) {
                let shown = String::from_utf8_lossy(key);
                self.set_fatal(
                    ErrorCode::DOCUMENT_PARSE_FAILURE,
                    at,
                    format!("invalid attribute name {shown:?}"),
                );
                return false;
            }
            if let Some(relative) = memchr::memchr(b'<', value.as_bytes()) {
                let message = "'<' is not allowed in attribute values (write &lt;)".to_owned();
                let at = offset + relative_offset(tag, value.as_bytes()) + relative;
                self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, at, message);
                return false;
            }
            if let Err(message) = check_references_in(value.as_bytes()) {
                self.set_fatal(ErrorCode::DOCUMENT_PARSE_FAILURE, at, message);
                return false;
            }
            parsed.push(RawAttribute { key, value, offset: at });
        }
        if let Some(duplicate) = find_duplicate(parsed) {
            let RawAttribute { key, offset: at, .. } = parsed[duplicate];
            let shown = String::from_utf8_lossy(key);
            self.set_fatal(
                ErrorCode::DOCUMENT_PARSE_FAILURE,
                at,
                format!("attribute {shown:?} appears twice"),
            );
            return false;
        }
        true
    }

    fn element_name_at(&self, offset: usize) -> String {
        let rest = &self.document[offset.saturating_add(1).min(self.document.len())..];
        let end = rest
            .iter()
            .position(|b| b.is_ascii_whitespace() || matches!(b, b'>' | b'/'))
            .unwrap_or(rest.len());
        String::from_utf8_lossy(&rest[..end]).into_owned()
    }

    fn set_fatal(&mut self, code: ErrorCode, offset: usize, message: String) {
        if self.fatal.is_none() {
            self.fatal = Some(self.diagnostic(code, Severity::Error, offset, message));
        }
    }

    fn push(&mut self, code: ErrorCode, severity: Severity, offset: usize, message: String) {
        if self.diagnostics.len() >= MAX_DIAGNOSTICS {
            // The verdict must not depend on how many warnings came first: past the cap, the
            // first error still takes the last warning's place.
            if severity == Severity::Error && !self.diagnostics.iter().any(|d| d.severity == Severity::Error) {
                let diagnostic = self.diagnostic(code, severity, offset, message);
                if let Some(last) = self.diagnostics.last_mut() {
                    *last = diagnostic;
                }
            }
            if !self.truncated {
                self.truncated = true;
                if let Some(last) = self.diagnostics.last_mut() {
                    last.message
                        .push_str(&format!(" (stopped after {MAX_DIAGNOSTICS} problems)"));
                }
            }
            return;
        }
        let diagnostic = self.diagnostic(code, severity, offset, message);
        self.diagnostics.push(diagnostic);
    }

    fn diagnostic(&mut self, code: ErrorCode, severity: Severity, offset: usize, message: String) -> Diagnostic {
        let (line, column) = self.line_column(offset);
        Diagnostic {
            code,
            severity,
            message,
            line,
            column,
            offset,
        }
    }

    /// 1-based line and column (in characters) of a byte offset; amortised linear over a document
    /// because diagnostics mostly come in order.
    fn line_column(&mut self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.document.len());
        if offset < self.positions.offset || self.positions.line == 0 {
            self.positions = LineIndex {
                offset: 0,
                line: 1,
                line_start: 0,
            };
        }
        let scanned = &self.document[self.positions.offset..offset];
        for newline in memchr::memchr_iter(b'\n', scanned) {
            self.positions.line = self.positions.line.saturating_add(1);
            self.positions.line_start = self.positions.offset + newline + 1;
        }
        self.positions.offset = offset;
        let line_prefix = &self.document[self.positions.line_start..offset];
        let characters = line_prefix.iter().filter(|&&b| (b & 0xC0) != 0x80).count();
        (
            self.positions.line,
            u32::try_from(characters).unwrap_or(u32::MAX).saturating_add(1),
        )
    }
}

#[cfg(test)]
mod tests;
