//! Rendering [`Response`] to TwiML bytes, and the XML escaping rules it uses.
//!
//! Output is UTF-8 with the XML declaration and no insignificant whitespace. Text and attribute
//! values are escaped so that any Rust string survives a round trip through an XML parser:
//!
//! - `&`, `<`, `>` become entities everywhere; `"` becomes `&quot;` in attribute values.
//! - Carriage returns are written as `&#13;` (and tabs/newlines in attribute values as `&#9;` /
//!   `&#10;`), because XML parsers normalise the literal characters away.
//! - Characters XML 1.0 forbids (the C0 controls other than tab, newline and carriage return, and
//!   the non-characters U+FFFE and U+FFFF) are **dropped**: they cannot be written in any form,
//!   and dropping them is kinder to text-to-speech and SMS than a visible replacement character.
//!   Everything else, emoji included, is written as is.

use std::fmt;

use super::model::{Hangup, Message, MessageContent, Pause, Play, Redirect, Reject, Response, Say, Verb};

/// The XML declaration every rendered document starts with.
pub const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

impl Response {
    /// Renders the document as a string.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(self.estimated_len());
        self.write_xml(&mut out);
        out
    }

    /// Appends the rendered document to `out`.
    pub fn write_xml(&self, out: &mut String) {
        out.push_str(XML_DECLARATION);
        if self.verbs().is_empty() {
            out.push_str("<Response/>");
            return;
        }
        out.push_str("<Response>");
        for verb in self.verbs() {
            write_verb(out, verb);
        }
        out.push_str("</Response>");
    }

    fn estimated_len(&self) -> usize {
        let verbs: usize = self.verbs().iter().map(|verb| 32 + verb_text_len(verb)).sum();
        XML_DECLARATION.len() + 21 + verbs
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_xml())
    }
}

fn verb_text_len(verb: &Verb) -> usize {
    match verb {
        Verb::Say(say) => say.text.len() + 40,
        Verb::Play(play) => play.url.len(),
        Verb::Redirect(redirect) => redirect.url.len(),
        Verb::Message(message) => match &message.content {
            MessageContent::Text(text) => text.len(),
            MessageContent::Nouns { body, media } => {
                body.as_ref().map_or(0, |b| b.len() + 13) + media.iter().map(|m| m.len() + 15).sum::<usize>()
            }
        },
        Verb::Pause(_) | Verb::Hangup(_) | Verb::Reject(_) => 0,
    }
}

fn write_verb(out: &mut String, verb: &Verb) {
    match verb {
        Verb::Say(Say {
            text,
            voice,
            language,
            loop_count,
        }) => {
            open(out, "Say");
            attr(out, "voice", voice.as_deref());
            attr(out, "language", language.as_deref());
            attr_u32(out, "loop", *loop_count);
            text_then_close(out, "Say", text);
        }
        Verb::Play(Play {
            url,
            loop_count,
            digits,
        }) => {
            open(out, "Play");
            attr_u32(out, "loop", *loop_count);
            attr(out, "digits", digits.as_deref());
            text_then_close(out, "Play", url);
        }
        Verb::Pause(Pause { length }) => {
            open(out, "Pause");
            attr_u32(out, "length", *length);
            out.push_str("/>");
        }
        Verb::Redirect(Redirect { url, method }) => {
            open(out, "Redirect");
            attr(out, "method", method.as_ref().map(http::Method::as_str));
            text_then_close(out, "Redirect", url);
        }
        Verb::Hangup(Hangup) => out.push_str("<Hangup/>"),
        Verb::Reject(Reject { reason }) => {
            open(out, "Reject");
            attr(out, "reason", reason.map(|r| r.as_str()));
            out.push_str("/>");
        }
        Verb::Message(Message {
            content,
            to,
            from,
            action,
            method,
            status_callback,
        }) => {
            open(out, "Message");
            attr(out, "to", to.as_deref());
            attr(out, "from", from.as_deref());
            attr(out, "action", action.as_deref());
            attr(out, "method", method.as_ref().map(http::Method::as_str));
            attr(out, "statusCallback", status_callback.as_deref());
            match content {
                MessageContent::Text(text) => text_then_close(out, "Message", text),
                MessageContent::Nouns { body, media } => {
                    out.push('>');
                    if let Some(body) = body {
                        out.push_str("<Body>");
                        escape_text(out, body);
                        out.push_str("</Body>");
                    }
                    for url in media {
                        out.push_str("<Media>");
                        escape_text(out, url);
                        out.push_str("</Media>");
                    }
                    out.push_str("</Message>");
                }
            }
        }
    }
}

fn open(out: &mut String, name: &str) {
    out.push('<');
    out.push_str(name);
}

fn attr(out: &mut String, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        out.push(' ');
        out.push_str(name);
        out.push_str("=\"");
        escape_attribute(out, value);
        out.push('"');
    }
}

fn attr_u32(out: &mut String, name: &str, value: Option<u32>) {
    if let Some(value) = value {
        out.push(' ');
        out.push_str(name);
        out.push_str("=\"");
        push_u32(out, value);
        out.push('"');
    }
}

fn push_u32(out: &mut String, mut value: u32) {
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for &digit in &digits[start..] {
        out.push(char::from(digit));
    }
}

/// Closes the start tag; `<Name/>` when the text is empty, else `>text</Name>`.
fn text_then_close(out: &mut String, name: &str, text: &str) {
    if text.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    escape_text(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Appends `text` escaped for element content (see the module docs for the rules).
pub fn escape_text(out: &mut String, text: &str) {
    escape(out, text, false);
}

/// Appends `value` escaped for a double-quoted attribute value (see the module docs).
pub fn escape_attribute(out: &mut String, value: &str) {
    escape(out, value, true);
}

/// Whether `c` may appear in an XML 1.0 document at all.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn escape(out: &mut String, text: &str, in_attribute: bool) {
    let bytes = text.as_bytes();
    let mut clean_from = 0;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let (replacement, width): (&str, usize) = match byte {
            b'&' => ("&amp;", 1),
            b'<' => ("&lt;", 1),
            b'>' => ("&gt;", 1),
            b'"' if in_attribute => ("&quot;", 1),
            b'\r' => ("&#13;", 1),
            b'\n' if in_attribute => ("&#10;", 1),
            b'\t' if in_attribute => ("&#9;", 1),
            b'\n' | b'\t' => {
                index += 1;
                continue;
            }
            0x00..=0x1F => ("", 1),
            // U+FFFE and U+FFFF are EF BF BE / EF BF BF in UTF-8.
            0xEF if matches!(bytes.get(index + 1..index + 3), Some([0xBF, 0xBE | 0xBF])) => ("", 3),
            _ => {
                index += 1;
                continue;
            }
        };
        out.push_str(&text[clean_from..index]);
        out.push_str(replacement);
        index += width;
        clean_from = index;
    }
    out.push_str(&text[clean_from..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    use crate::twiml::model::RejectReason;

    fn escaped_text(text: &str) -> String {
        let mut out = String::new();
        escape_text(&mut out, text);
        out
    }

    fn escaped_attribute(text: &str) -> String {
        let mut out = String::new();
        escape_attribute(&mut out, text);
        out
    }

    #[test]
    fn empty_response_is_self_closing_with_declaration() {
        assert_eq!(
            Response::new().to_xml(),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#
        );
    }

    #[test]
    fn voice_verbs_render_with_their_attributes() {
        let xml = Response::new()
            .verb(Say::new("Hello").voice("Polly.Joanna").language("en-US").loop_count(2))
            .verb(Play::new("https://example.com/a.mp3").loop_count(0))
            .verb(Play::digits_only("ww12#"))
            .verb(Pause::new().length(3))
            .verb(Redirect::new("https://example.com/next").method(Method::GET))
            .verb(Reject::new().reason(RejectReason::Busy))
            .verb(Hangup)
            .to_xml();
        assert_eq!(
            xml,
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#,
                r#"<Say voice="Polly.Joanna" language="en-US" loop="2">Hello</Say>"#,
                r#"<Play loop="0">https://example.com/a.mp3</Play>"#,
                r#"<Play digits="ww12#"/>"#,
                r#"<Pause length="3"/>"#,
                r#"<Redirect method="GET">https://example.com/next</Redirect>"#,
                r#"<Reject reason="busy"/>"#,
                r#"<Hangup/>"#,
                r#"</Response>"#
            )
        );
    }

    #[test]
    fn message_renders_text_or_body_and_media() {
        let text = Response::new()
            .verb(Message::new("Store hours: 9-5").to("+15550001111").method(Method::POST))
            .to_xml();
        assert!(
            text.ends_with(
                r#"<Response><Message to="+15550001111" method="POST">Store hours: 9-5</Message></Response>"#
            )
        );
        let nouns = Response::new()
            .verb(Message::with_body("Cake!").media("https://example.com/cake.png?a=1&b=2"))
            .to_xml();
        assert!(nouns.ends_with(
            "<Message><Body>Cake!</Body><Media>https://example.com/cake.png?a=1&amp;b=2</Media></Message></Response>"
        ));
    }

    #[test]
    fn markup_characters_are_escaped_in_text_and_attributes() {
        assert_eq!(
            escaped_text(r#"a & b < c > d "q" 'a'"#),
            r#"a &amp; b &lt; c &gt; d "q" 'a'"#
        );
        assert_eq!(
            escaped_attribute(r#"a & b < c > d "q" 'a'"#),
            "a &amp; b &lt; c &gt; d &quot;q&quot; 'a'"
        );
        assert_eq!(escaped_text("]]>"), "]]&gt;");
    }

    #[test]
    fn emoji_and_non_ascii_text_is_kept_intact() {
        assert_eq!(escaped_text("Thanks 🍰 — ¡gracias! 日本"), "Thanks 🍰 — ¡gracias! 日本");
    }

    #[test]
    fn forbidden_control_characters_are_dropped() {
        assert_eq!(escaped_text("a\u{0}b\u{1}c\u{8}d\u{B}e\u{C}f\u{1F}g"), "abcdefg");
        assert_eq!(escaped_text("x\u{FFFE}y\u{FFFF}z\u{FFFD}"), "xyz\u{FFFD}");
        assert_eq!(escaped_attribute("\u{7}bell"), "bell");
    }

    #[test]
    fn whitespace_that_parsers_normalise_is_written_as_references() {
        assert_eq!(escaped_text("line1\r\nline2\tend"), "line1&#13;\nline2\tend");
        assert_eq!(escaped_attribute("a\tb\nc\rd"), "a&#9;b&#10;c&#13;d");
    }

    #[test]
    fn display_matches_to_xml() {
        let response = Response::new().message("hi");
        assert_eq!(response.to_string(), response.to_xml());
    }

    #[test]
    fn numbers_render_in_decimal() {
        for value in [0, 7, 10, 4_294_967_295] {
            let mut out = String::new();
            push_u32(&mut out, value);
            assert_eq!(out, value.to_string());
        }
    }

    #[test]
    fn xml_char_matches_the_xml_1_0_production() {
        assert!(is_xml_char('\t') && is_xml_char('a') && is_xml_char('🍰') && is_xml_char('\u{FFFD}'));
        assert!(!is_xml_char('\u{0}') && !is_xml_char('\u{1B}') && !is_xml_char('\u{FFFE}'));
    }
}
