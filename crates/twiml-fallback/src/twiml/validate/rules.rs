//! TwiML's element tree applied as the walk opens and closes elements: what may appear where,
//! each element's attributes and their values, the channel of each verb, and what an element must
//! or must not hold. Every finding here is a 12200 schema diagnostic.
//!
//! # Example
//!
//! ```
//! use twiml_fallback::twiml::{validate, TargetChannel};
//!
//! let report = validate(b"<Response><Gather><Dial>+14155550199</Dial></Gather><Hangup/><Say>Bye</Say></Response>", TargetChannel::Voice);
//! let messages: Vec<String> = report.diagnostics().iter().map(ToString::to_string).collect();
//! assert_eq!(messages, [
//!     "1:19: error[12200]: <Gather> can't contain <Dial> (allowed: Say, Pause, Play)",
//!     "1:62: warning[12200]: <Say> comes after <Hangup> and is never reached",
//! ]);
//! ```

use super::lex::RawAttribute;
use super::{Frame, Severity, TargetChannel, Validator};
use crate::error_code::ErrorCode;
use crate::twiml::schema::{self, Element, Text, VENDOR_SSML_PREFIX};
use crate::webhook::Channel;

impl<'a> Validator<'a> {
    /// The schema side of a start tag whose name and attributes are well-formed, inside `parent`
    /// (`None` for the root): the element's frame, or `None` when it is fatal.
    pub(super) fn open_checked(
        &mut self,
        name: &'a [u8],
        offset: usize,
        attributes: &[RawAttribute<'a>],
        parent: Option<&mut Frame<'a>>,
        last_terminal_verb: &mut Option<&'static str>,
    ) -> Option<Frame<'a>> {
        let element = match parent {
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
                            return None;
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
        Some(frame)
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
    pub(super) fn close(&mut self, frame: Frame<'a>) {
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
