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
//! characters). Validation never panics, allocates nothing for a valid document beyond the parser's
//! tag-name stack, and runs in time linear in the input.

use std::fmt;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::schema::{self, Element, Text, VENDOR_SSML_PREFIX};
use crate::error_code::ErrorCode;
use crate::webhook::Channel;

/// Twilio's limit on a TwiML response body: 64 KB.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// At most this many diagnostics are reported for one document.
pub const MAX_DIAGNOSTICS: usize = 100;

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
    diagnostics: Vec<Diagnostic>,
    channel: Option<Channel>,
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
    validator.run();
    validator.finish()
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

/// An attribute as written: name, raw value, and the byte offset of its name.
#[derive(Clone, Copy)]
struct RawAttribute<'t> {
    key: &'t [u8],
    value: &'t str,
    offset: usize,
}

/// An open element.
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
    fn new(name: &'a [u8], element: Option<&'static Element>, offset: usize) -> Self {
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
            attribute_buffer: Vec::with_capacity(8),
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

    fn run(&mut self) {
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
        let accepted = accepted && self.open_checked(name, offset, &attributes, stack, last_terminal_verb);
        self.attribute_buffer = attributes;
        accepted
    }

    /// The schema side of a start tag whose name and attributes are well-formed; `false` when fatal.
    fn open_checked(
        &mut self,
        name: &'a [u8],
        offset: usize,
        attributes: &[RawAttribute<'a>],
        stack: &mut Vec<Frame<'a>>,
        last_terminal_verb: &mut Option<&'static str>,
    ) -> bool {
        let element = match stack.last_mut() {
            None => {
                if name == b"Response" {
                    if let Some(&RawAttribute {
                        value: version,
                        offset: at,
                        ..
                    }) = attributes.iter().find(|attribute| attribute.key == b"version")
                    {
                        if !matches!(version, "2008-08-01" | "2010-04-01") {
                            let message = format!(
                                "<Response version={version:?}> is not a TwiML version (2008-08-01 or 2010-04-01)"
                            );
                            self.set_fatal(ErrorCode::INVALID_VERSION, at, message);
                            return false;
                        }
                    }
                    self.check_attributes(&RESPONSE_ATTRIBUTES, "Response", attributes);
                    Some(&RESPONSE_ELEMENT)
                } else {
                    let shown = String::from_utf8_lossy(name);
                    let message = if name.eq_ignore_ascii_case(b"Response") {
                        format!("the root element must be <Response>, not <{shown}> (XML is case-sensitive)")
                    } else {
                        format!("the root element must be <Response>, not <{shown}>")
                    };
                    self.wrong_root =
                        Some(self.diagnostic(ErrorCode::ROOT_NOT_RESPONSE, Severity::Error, offset, message));
                    None
                }
            }
            Some(parent) => {
                parent.children += 1;
                match parent.element {
                    None => None,
                    Some(parent_element) => {
                        let is_root = std::ptr::eq(parent_element, &RESPONSE_ELEMENT);
                        let element = if is_root {
                            schema::response_child(name)
                        } else if parent_element.vendor_ssml && name.starts_with(VENDOR_SSML_PREFIX) {
                            Some(&VENDOR_SSML)
                        } else {
                            parent_element.child(name)
                        };
                        match element {
                            Some(element) => {
                                if element.name == "Body" {
                                    parent.bodies += 1;
                                } else if element.name == "Media" {
                                    parent.media += 1;
                                }
                                if is_root {
                                    self.check_verb(element, offset, last_terminal_verb);
                                }
                                if !std::ptr::eq(element, &VENDOR_SSML) {
                                    self.check_attributes(element.attributes, element.name, attributes);
                                }
                                Some(element)
                            }
                            None => {
                                let message = misplaced_message(name, parent_element);
                                self.push(ErrorCode::SCHEMA_VALIDATION, Severity::Error, offset, message);
                                None
                            }
                        }
                    }
                }
            }
        };
        let mut frame = Frame::new(name, element, offset);
        frame.has_digits = attributes.iter().any(|attribute| attribute.key == b"digits");
        stack.push(frame);
        true
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

    fn check_attributes(&mut self, known: &[schema::Attr], element: &str, attributes: &[RawAttribute<'_>]) {
        for &RawAttribute { key, value, offset: at } in attributes {
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                continue;
            }
            match known.iter().find(|attr| attr.name.as_bytes() == key) {
                None => {
                    let shown = String::from_utf8_lossy(key);
                    let hint = known
                        .iter()
                        .find(|attr| attr.name.as_bytes().eq_ignore_ascii_case(key))
                        .map(|attr| format!(" (attribute names are case-sensitive: did you mean {}?)", attr.name))
                        .unwrap_or_default();
                    let message = format!("<{element}> has no attribute {shown:?}{hint}");
                    self.push(ErrorCode::SCHEMA_VALIDATION, Severity::Warning, at, message);
                }
                Some(attr) => {
                    if let Some(expected) = attr.value.check(value) {
                        let message = format!("<{element} {}> is {value:?}; expected {expected}", attr.name);
                        self.push(ErrorCode::SCHEMA_VALIDATION, Severity::Warning, at, message);
                    }
                }
            }
        }
    }

    /// Channel and position rules for a verb directly inside `<Response>`.
    fn check_verb(&mut self, verb: &'static Element, offset: usize, last_terminal_verb: &mut Option<&'static str>) {
        if let Some(terminal) = *last_terminal_verb {
            let message = format!("<{}> comes after <{terminal}> and is never reached", verb.name);
            self.push(ErrorCode::SCHEMA_VALIDATION, Severity::Warning, offset, message);
        }
        if matches!(verb.name, "Redirect" | "Reject" | "Hangup") {
            *last_terminal_verb = Some(verb.name);
        }
        match verb.name {
            "Sms" => {
                let message = "<Sms> is deprecated; use <Message>".to_owned();
                self.push(ErrorCode::SCHEMA_VALIDATION, Severity::Warning, offset, message);
            }
            "Queue" => {
                let message = "<Queue> belongs inside <Dial>".to_owned();
                self.push(ErrorCode::SCHEMA_VALIDATION, Severity::Warning, offset, message);
            }
            "Prompt" => {
                let message = "<Prompt> belongs inside <Pay>".to_owned();
                self.push(ErrorCode::SCHEMA_VALIDATION, Severity::Warning, offset, message);
            }
            _ => {}
        }
        let Some(verb_channel) = schema::verb_channel(verb) else {
            return;
        };
        match (self.target, self.channel) {
            (TargetChannel::Voice, _) if verb_channel == Channel::Messaging => {
                let message = format!("<{}> is a messaging verb; a voice response can't use it", verb.name);
                self.push(ErrorCode::SCHEMA_VALIDATION, Severity::Error, offset, message);
            }
            (TargetChannel::Messaging, _) if verb_channel == Channel::Voice => {
                let message = format!(
                    "<{}> is a voice verb; a messaging response can only use <Message> and <Redirect>",
                    verb.name
                );
                self.push(ErrorCode::SCHEMA_VALIDATION, Severity::Error, offset, message);
            }
            (TargetChannel::Auto, None) => self.channel = Some(verb_channel),
            (TargetChannel::Auto, Some(decided)) if decided != verb_channel => {
                let message = format!(
                    "<{}> is a {verb_channel} verb, but this response already uses {decided} verbs",
                    verb.name
                );
                self.push(ErrorCode::SCHEMA_VALIDATION, Severity::Error, offset, message);
            }
            _ => {}
        }
    }

    /// Content rules checked when an element closes.
    fn close(&mut self, frame: Frame<'a>) {
        let Some(element) = frame.element else {
            return;
        };
        let offset = frame.offset;
        let name = element.name;
        let content = frame.has_text || frame.children > 0;
        let problem = match name {
            "Say" if !content => Some("<Say> has nothing to say".to_owned()),
            "Play" if !frame.has_text && !frame.has_digits => {
                Some("<Play> needs a URL to play or a digits attribute".to_owned())
            }
            "Dial" if !content => Some("<Dial> needs a number or a noun to dial".to_owned()),
            "Message" if frame.has_text && (frame.bodies > 0 || frame.media > 0) => {
                Some("<Message> mixes text with <Body>/<Media>; put the text in <Body>".to_owned())
            }
            "Message" if !content => Some("<Message> is empty: nothing would be sent".to_owned()),
            "Message" if frame.media > 10 => Some(format!(
                "<Message> has {} <Media>; Twilio sends at most 10",
                frame.media
            )),
            _ if element.text == Text::None && frame.has_text => {
                Some(format!("text inside <{name}> is ignored by Twilio"))
            }
            _ if element.text == Text::Required && !frame.has_text => Some(format!("<{name}> needs text content")),
            _ => None,
        };
        if let Some(message) = problem {
            self.push(ErrorCode::SCHEMA_VALIDATION, Severity::Warning, offset, message);
        }
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

/// The root's own definition: it holds the verbs of both channels.
static RESPONSE_ELEMENT: Element = Element {
    name: "Response",
    attributes: &RESPONSE_ATTRIBUTES,
    children: &[],
    text: Text::None,
    vendor_ssml: false,
};

static RESPONSE_ATTRIBUTES: [schema::Attr; 1] = [schema::Attr::new("version", schema::Value::Text)];

/// Any vendor SSML element (`<amazon:effect>`): attributes unchecked, other SSML allowed inside.
static VENDOR_SSML: Element = Element {
    name: "amazon:*",
    attributes: &[],
    children: &[],
    text: Text::Optional,
    vendor_ssml: true,
};

fn misplaced_message(name: &[u8], parent: &Element) -> String {
    let shown = String::from_utf8_lossy(name);
    let parent_name = parent.name;
    let is_root = std::ptr::eq(parent, &RESPONSE_ELEMENT);
    let known_elsewhere = schema::case_insensitive_match(name);
    let exact_elsewhere = known_elsewhere.filter(|known| known.as_bytes() == name);
    if let Some(known) = known_elsewhere.filter(|known| known.as_bytes() != name) {
        return format!("<{shown}> is not a TwiML element; names are case-sensitive: did you mean <{known}>?");
    }
    if exact_elsewhere.is_some() {
        return if is_root {
            format!("<{shown}> can't be used directly inside <Response>")
        } else {
            let allowed: Vec<&str> = parent.children.iter().map(|child| child.name).collect();
            if allowed.is_empty() {
                format!("<{parent_name}> can't contain <{shown}> (it holds no elements)")
            } else {
                format!(
                    "<{parent_name}> can't contain <{shown}> (allowed: {})",
                    allowed.join(", ")
                )
            }
        };
    }
    if is_root {
        format!("<{shown}> is not a TwiML verb")
    } else {
        format!("<{shown}> is not a TwiML element allowed in <{parent_name}>")
    }
}

fn position(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

/// `inner` re-borrowed from `document`, when it is a slice of it (quick-xml hands out borrows of the
/// tag event; this recovers the document's longer lifetime without copying).
fn within<'a>(document: &'a [u8], inner: &[u8]) -> Option<&'a [u8]> {
    let start = (inner.as_ptr() as usize).checked_sub(document.as_ptr() as usize)?;
    document.get(start..start.checked_add(inner.len())?)
}

/// `inner` re-borrowed from `text`, when it is a slice of it.
fn within_str<'a>(text: &'a str, inner: &str) -> Option<&'a str> {
    let start = (inner.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    text.get(start..start.checked_add(inner.len())?)
}

/// The offset of `inner` within the tag's bytes, plus one for the `<` (0 if it doesn't point there).
fn relative_offset(tag: &BytesStart<'_>, inner: &[u8]) -> usize {
    let tag_bytes: &[u8] = AsRef::<str>::as_ref(tag).as_bytes();
    let tag_start = tag_bytes.as_ptr() as usize;
    let inner_start = inner.as_ptr() as usize;
    if inner_start >= tag_start && inner_start <= tag_start + tag_bytes.len() {
        inner_start - tag_start + 1
    } else {
        0
    }
}

fn describe_xml_error(error: &quick_xml::Error) -> String {
    use quick_xml::errors::IllFormedError;
    match error {
        quick_xml::Error::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => {
            if expected.eq_ignore_ascii_case(found) {
                format!("</{found}> does not close <{expected}> (XML is case-sensitive)")
            } else {
                format!("</{found}> does not close <{expected}>")
            }
        }
        quick_xml::Error::IllFormed(IllFormedError::UnmatchedEndTag(name)) => {
            format!("</{name}> closes an element that was never opened")
        }
        quick_xml::Error::IllFormed(IllFormedError::UnclosedReference) => {
            "'&' must start an entity such as &amp; (a bare & must be written &amp;)".to_owned()
        }
        quick_xml::Error::IllFormed(IllFormedError::DoubleHyphenInComment) => {
            "\"--\" is not allowed inside a comment".to_owned()
        }
        other => format!("not well-formed XML: {other}"),
    }
}

/// Where (relative to the tag's name) and what went wrong in an attribute list.
fn describe_attribute_error(error: &quick_xml::events::attributes::AttrError) -> (usize, String) {
    use quick_xml::events::attributes::AttrError;
    match *error {
        AttrError::ExpectedEq(at) => (at, "an attribute name must be followed by '='".to_owned()),
        AttrError::ExpectedValue(at) => (at, "'=' must be followed by a quoted value".to_owned()),
        AttrError::UnquotedValue(at) => (at, "attribute values must be quoted".to_owned()),
        AttrError::ExpectedQuote(at, _) => (at, "an attribute value is missing its closing quote".to_owned()),
        AttrError::Duplicated(at, _) => (at, "an attribute appears twice".to_owned()),
    }
}

/// `None` when the declaration is acceptable.
fn check_declaration(declaration: &quick_xml::events::BytesDecl<'_>) -> Option<String> {
    match declaration.version() {
        Ok(version) if matches!(version.as_ref(), "1.0" | "1.1") => {}
        Ok(version) => return Some(format!("unsupported XML version {version:?}")),
        Err(error) => return Some(format!("malformed XML declaration: {error}")),
    }
    match declaration.encoding() {
        None => None,
        Some(Ok(encoding)) => {
            let lower = encoding.to_ascii_lowercase();
            if lower.starts_with("utf-16") || lower.starts_with("utf-32") || lower.starts_with("ucs") {
                Some(format!("the declaration says {encoding:?}, but the body is UTF-8"))
            } else {
                None
            }
        }
        Some(Err(error)) => Some(format!("malformed XML declaration: {error}")),
    }
}

/// The first character XML 1.0 forbids (C0 controls except tab/LF/CR, U+FFFE, U+FFFF).
///
/// Eight bytes at a time: a word is looked at byte by byte only when it holds a byte below 0x20
/// (tabs and newlines included, so pretty-printed documents take the slow path once a line).
fn find_forbidden_character(document: &[u8]) -> Option<(usize, char)> {
    const LOW: u64 = u64::from_ne_bytes([0x20; 8]);
    const HIGH_BITS: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut control = None;
    let mut chunks = document.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_ne_bytes(word);
        // Sets the high bit of every byte below 0x20 (and, harmlessly, of some bytes above 0x80).
        if word.wrapping_sub(LOW) & !word & HIGH_BITS != 0 {
            if let Some(found) = chunk.iter().position(|&byte| is_forbidden_control(byte)) {
                control = Some(base + found);
                break;
            }
        }
        base += 8;
    }
    if control.is_none() {
        control = chunks
            .remainder()
            .iter()
            .position(|&byte| is_forbidden_control(byte))
            .map(|found| base + found);
    }
    // U+FFFE and U+FFFF are EF BF BE / EF BF BF.
    let scan_end = control.unwrap_or(document.len());
    let noncharacter =
        memchr::memchr_iter(0xEF, &document[..scan_end]).find_map(|index| match document.get(index + 1..index + 3) {
            Some([0xBF, 0xBE]) => Some((index, '\u{FFFE}')),
            Some([0xBF, 0xBF]) => Some((index, '\u{FFFF}')),
            _ => None,
        });
    noncharacter.or_else(|| control.map(|index| (index, char::from(document[index]))))
}

/// `]]>`, which may not appear in text; `>` is rare in text, so look for it first.
fn find_cdata_end(text: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'>', text)
        .find(|&index| index >= 2 && &text[index - 2..index] == b"]]")
        .map(|index| index - 2)
}

fn is_forbidden_control(byte: u8) -> bool {
    byte < 0x20 && !matches!(byte, b'\t' | b'\n' | b'\r')
}

fn is_whitespace(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// XML `Name`, approximated: ASCII is checked exactly, non-ASCII letters are accepted.
fn is_valid_name(name: &[u8]) -> bool {
    let Some((&first, rest)) = name.split_first() else {
        return false;
    };
    let start = |b: u8| b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80;
    start(first)
        && rest
            .iter()
            .all(|&b| start(b) || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Checks the content of a `&…;` reference (without `&` and `;`).
fn check_reference(name: &[u8]) -> Result<(), String> {
    match name {
        b"lt" | b"gt" | b"amp" | b"apos" | b"quot" => Ok(()),
        [b'#', b'x', digits @ ..] => check_char_reference(digits, 16, name),
        [b'#', digits @ ..] => check_char_reference(digits, 10, name),
        _ => Err(format!(
            "undefined entity &{};  (XML knows only &lt; &gt; &amp; &apos; &quot; and &#…;)",
            String::from_utf8_lossy(name)
        )
        .replace(";  (", "; (")),
    }
}

fn check_char_reference(digits: &[u8], radix: u32, name: &[u8]) -> Result<(), String> {
    let valid = !digits.is_empty()
        && digits.len() <= 8
        && std::str::from_utf8(digits)
            .ok()
            .and_then(|text| u32::from_str_radix(text, radix).ok())
            .and_then(char::from_u32)
            .is_some_and(super::writer::is_xml_char);
    if valid {
        Ok(())
    } else {
        Err(format!(
            "&{}; is not a valid XML character",
            String::from_utf8_lossy(name)
        ))
    }
}

/// Checks every `&…;` in an attribute value.
fn check_references_in(value: &[u8]) -> Result<(), String> {
    let mut rest = value;
    while let Some(amp) = memchr::memchr(b'&', rest) {
        let after = &rest[amp + 1..];
        let Some(semicolon) = memchr::memchr(b';', after) else {
            return Err("'&' must start an entity such as &amp; (a bare & must be written &amp;)".to_owned());
        };
        check_reference(&after[..semicolon])?;
        rest = &after[semicolon + 1..];
    }
    Ok(())
}

/// The index of the first attribute whose name repeats an earlier one.
fn find_duplicate(attributes: &[RawAttribute<'_>]) -> Option<usize> {
    if attributes.len() <= 16 {
        return (1..attributes.len()).find(|&i| attributes[..i].iter().any(|earlier| earlier.key == attributes[i].key));
    }
    let mut seen = std::collections::HashSet::with_capacity(attributes.len());
    attributes.iter().position(|attribute| !seen.insert(attribute.key))
}

#[cfg(test)]
mod tests;
