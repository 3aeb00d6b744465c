//! Making a document's relative URLs absolute, so it can be served from a different URL.
//!
//! Twilio resolves relative URLs in TwiML (`<Redirect>/next</Redirect>`, `<Gather action="gather">`)
//! against the URL that served the document. When the fallback endpoint relays the TwiML of a
//! recovered primary, Twilio believes the fallback URL served it, so every relative URL must first
//! be resolved against the primary's URL.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::writer::{escape_attribute, escape_text};
use crate::url;

/// Attributes that hold a URL in some TwiML element.
const URL_ATTRIBUTES: &[&str] = &[
    "action",
    "url",
    "waitUrl",
    "statusCallback",
    "statusCallbackUrl",
    "recordingStatusCallback",
    "transcribeCallback",
    "partialResultCallback",
    "amdStatusCallback",
    "eventCallbackUrl",
    "referUrl",
];

/// Elements whose text is a URL.
const URL_TEXT_ELEMENTS: &[&str] = &["Redirect", "Play", "Media"];

/// Resolves every relative URL in `document` against `base` (an absolute URL). Everything else,
/// bytes included, is left untouched; a document without relative URLs is returned as is, and so
/// is one that does not parse.
///
/// ```
/// use twiml_fallback::twiml::resolve_relative_urls;
///
/// let document = r#"<Response><Gather action="next?step=2&amp;x=1"><Say>Hi</Say></Gather><Redirect>/menu</Redirect></Response>"#;
/// let resolved = resolve_relative_urls(document, "https://app.example.com/voice/incoming?CallSid=CA1");
/// assert_eq!(resolved, concat!(
///     r#"<Response><Gather action="https://app.example.com/voice/next?step=2&amp;x=1"><Say>Hi</Say></Gather>"#,
///     "<Redirect>https://app.example.com/menu</Redirect></Response>"));
/// ```
pub fn resolve_relative_urls<'d>(document: &'d str, base: &str) -> Cow<'d, str> {
    // The XML reader skips a byte-order mark without counting it: work on what follows it, so
    // the edits' offsets are offsets into the same text.
    let body = document.strip_prefix('\u{feff}').unwrap_or(document);
    let Some(edits) = collect_edits(body, base) else {
        return Cow::Borrowed(document);
    };
    if edits.is_empty() {
        return Cow::Borrowed(document);
    }
    apply_edits(document, body, &edits).map_or(Cow::Borrowed(document), Cow::Owned)
}

/// `document` with `edits` applied to its `body` (the text after a byte-order mark). Edits come in
/// document order and never overlap; should one ever break that, the document is kept as is
/// rather than sliced wrongly.
fn apply_edits(document: &str, body: &str, edits: &[Edit]) -> Option<String> {
    let mut out =
        String::with_capacity(document.len() + edits.iter().map(|edit| edit.replacement.len()).sum::<usize>());
    out.push_str(&document[..document.len() - body.len()]);
    let mut copied = 0;
    for edit in edits {
        out.push_str(body.get(copied..edit.start)?);
        out.push_str(&edit.replacement);
        copied = edit.end;
    }
    out.push_str(body.get(copied..)?);
    Some(out)
}

struct Edit {
    start: usize,
    end: usize,
    replacement: String,
}

/// Text collected inside a URL-text element.
struct PendingText {
    start: usize,
    text: String,
    plain: bool,
}

fn collect_edits(document: &str, base: &str) -> Option<Vec<Edit>> {
    let base = url::without_fragment(base);
    url::scheme(base)?;
    let mut reader = Reader::from_str(document);
    let mut edits = Vec::new();
    let mut pending: Option<PendingText> = None;
    loop {
        let offset = usize::try_from(reader.buffer_position()).ok()?;
        match reader.read_event().ok()? {
            Event::Eof => return Some(edits),
            Event::Start(tag) => {
                attribute_edits(document, &tag, base, &mut edits)?;
                let name = tag.name().into_inner();
                pending = URL_TEXT_ELEMENTS.contains(&name).then(|| PendingText {
                    start: usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX),
                    text: String::new(),
                    plain: true,
                });
            }
            Event::Empty(tag) => {
                // An element inside URL text makes it something other than a URL: leave the text
                // alone (its edit would also enclose this element's own).
                if let Some(pending) = &mut pending {
                    pending.plain = false;
                }
                attribute_edits(document, &tag, base, &mut edits)?;
            }
            Event::Text(text) => {
                if let Some(pending) = &mut pending {
                    pending.text.push_str(&text);
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(pending) = &mut pending {
                    match resolve_reference_text(&reference) {
                        Some(character) => pending.text.push(character),
                        None => pending.plain = false,
                    }
                }
            }
            Event::CData(_) | Event::Comment(_) | Event::PI(_) => {
                if let Some(pending) = &mut pending {
                    pending.plain = false;
                }
            }
            Event::End(_) => {
                if let Some(PendingText {
                    start,
                    text,
                    plain: true,
                }) = pending.take()
                {
                    let trimmed = text.trim();
                    if let Some(resolved) = resolve(base, trimmed) {
                        let mut replacement = String::new();
                        escape_text(&mut replacement, &resolved);
                        edits.push(Edit {
                            start,
                            end: offset,
                            replacement,
                        });
                    }
                }
            }
            Event::Decl(_) | Event::DocType(_) => {}
        }
    }
}

fn attribute_edits(document: &str, tag: &BytesStart<'_>, base: &str, edits: &mut Vec<Edit>) -> Option<()> {
    for attribute in tag.attributes() {
        let attribute = attribute.ok()?;
        if !URL_ATTRIBUTES.contains(&attribute.key.into_inner()) {
            continue;
        }
        let Cow::Borrowed(raw) = attribute.value else {
            continue;
        };
        let value = attribute.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok()?;
        let Some(resolved) = resolve(base, value.trim()) else {
            continue;
        };
        let start = (raw.as_ptr() as usize).checked_sub(document.as_ptr() as usize)?;
        let mut replacement = String::new();
        escape_attribute(&mut replacement, &resolved);
        edits.push(Edit {
            start,
            end: start + raw.len(),
            replacement,
        });
    }
    Some(())
}

fn resolve_reference_text(reference: &str) -> Option<char> {
    match reference {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => {
            let number = reference.strip_prefix('#')?;
            let code = match number.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// `reference` resolved against `base` (RFC 3986 §5.2), or `None` when it is already absolute or
/// empty (and so stays as written).
pub(crate) fn resolve(base: &str, reference: &str) -> Option<String> {
    if reference.is_empty() || url::scheme(reference).is_some() {
        return None;
    }
    let scheme = url::scheme(base)?;
    if let Some(network_path) = reference.strip_prefix("//") {
        return Some(format!("{scheme}://{network_path}"));
    }
    let authority = url::authority(base);
    let origin = match authority {
        Some(authority) => format!("{scheme}://{authority}"),
        None => format!("{scheme}:"),
    };
    let authority = authority.unwrap_or("");
    let (base_path, base_query) = (url::path(base), url::query(base));
    let resolved = if let Some(query) = reference.strip_prefix('?') {
        format!("{origin}{base_path}?{query}")
    } else if reference.starts_with('#') {
        match base_query {
            Some(query) => format!("{origin}{base_path}?{query}{reference}"),
            None => format!("{origin}{base_path}{reference}"),
        }
    } else if reference.starts_with('/') {
        format!("{origin}{}", remove_dot_segments(reference))
    } else {
        let directory = match base_path.rfind('/') {
            Some(slash) => &base_path[..=slash],
            None if authority.is_empty() => "",
            None => "/",
        };
        format!("{origin}{}", remove_dot_segments(&format!("{directory}{reference}")))
    };
    Some(resolved)
}

/// RFC 3986 §5.2.4, on the path part only (query and fragment pass through).
fn remove_dot_segments(path_and_more: &str) -> String {
    let split = path_and_more.find(['?', '#']).unwrap_or(path_and_more.len());
    let (path, more) = path_and_more.split_at(split);
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (index, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if index == last {
                    output.push("");
                }
            }
            ".." => {
                if output.len() > 1 {
                    output.pop();
                }
                if index == last {
                    output.push("");
                }
            }
            other => output.push(other),
        }
    }
    let mut joined = output.join("/");
    if path.starts_with('/') && !joined.starts_with('/') {
        joined.insert(0, '/');
    }
    joined.push_str(more);
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_does_not_shift_the_edits() {
        // Found by fuzzing: the reader skips the BOM without counting it, so every edit landed
        // three bytes early and broke the document.
        let document =
            "\u{feff}<Response><Play loop=\"2\">a.mp3</Play><Redirect method=\"POST\">/voice</Redirect></Response>";
        assert_eq!(
            resolve_relative_urls(document, "https://app.example.com/twilio/voice?x=1"),
            "\u{feff}<Response><Play loop=\"2\">https://app.example.com/twilio/a.mp3</Play>\
             <Redirect method=\"POST\">https://app.example.com/voice</Redirect></Response>"
        );
    }

    #[test]
    fn an_element_inside_url_text_does_not_overlap_the_edits() {
        // Found by fuzzing: an empty element with a URL attribute inside <Play> or <Media> was
        // edited, then the whole text around it was too; the overlapping edits made the slicing
        // panic (in serve or the Worker, on a recovered primary's answer).
        for document in [
            r#"<Response><Play>a<x url="cb"/>b</Play></Response>"#,
            r#"<Response><Message><Media>img/<y action="next"/>.png</Media></Message></Response>"#,
            r#"<Response><Play>a<x url="cb"></x>b</Play></Response>"#,
        ] {
            let resolved = resolve_relative_urls(document, BASE);
            // Only the attribute is resolved: the text around the element is not a URL.
            assert!(
                !resolved.contains("voice/a") && !resolved.contains("voice/img/"),
                "{resolved}"
            );
        }
        assert_eq!(
            resolve_relative_urls(r#"<Response><Play>a<x url="cb"/>b</Play></Response>"#, BASE),
            r#"<Response><Play>a<x url="https://app.example.com/voice/cb"/>b</Play></Response>"#
        );
    }

    const BASE: &str = "https://app.example.com/voice/incoming?CallSid=CA1";

    #[test]
    fn references_resolve_like_rfc_3986() {
        for (reference, expected) in [
            ("next", Some("https://app.example.com/voice/next")),
            ("./next", Some("https://app.example.com/voice/next")),
            ("../menu", Some("https://app.example.com/menu")),
            ("../../../menu", Some("https://app.example.com/menu")),
            ("/menu?x=1", Some("https://app.example.com/menu?x=1")),
            ("?step=2", Some("https://app.example.com/voice/incoming?step=2")),
            ("//cdn.example.com/a.mp3", Some("https://cdn.example.com/a.mp3")),
            ("#frag", Some("https://app.example.com/voice/incoming?CallSid=CA1#frag")),
            ("https://other.example/x", None),
            ("tel:+1555", None),
            ("", None),
        ] {
            assert_eq!(resolve(BASE, reference).as_deref(), expected, "{reference}");
        }
        assert_eq!(
            resolve("https://h.example", "next").as_deref(),
            Some("https://h.example/next")
        );
        assert_eq!(resolve("relative/base", "x"), None);
    }

    #[test]
    fn documents_without_relative_urls_are_returned_untouched() {
        let document = "<Response><Play>https://cdn.example.com/a.mp3</Play><Say>Hi</Say></Response>";
        assert!(matches!(resolve_relative_urls(document, BASE), Cow::Borrowed(_)));
        assert!(matches!(resolve_relative_urls("<Response", BASE), Cow::Borrowed(_)));
    }

    #[test]
    fn url_attributes_and_url_text_are_rewritten_everything_else_kept() {
        let document = concat!(
            "<?xml version=\"1.0\"?>\n<Response>\n  <Say voice='alice'>Press 1</Say>\n",
            "  <Gather action='/gather' method=\"GET\" numDigits=\"1\"/>\n",
            "  <Play loop=\"2\"> sounds/beep.mp3 </Play>\n",
            "  <Message statusCallback=\"status\"><Body>ok</Body><Media>img/a.png</Media></Message>\n",
            "</Response>"
        );
        let resolved = resolve_relative_urls(document, BASE);
        assert_eq!(
            resolved,
            concat!(
                "<?xml version=\"1.0\"?>\n<Response>\n  <Say voice='alice'>Press 1</Say>\n",
                "  <Gather action='https://app.example.com/gather' method=\"GET\" numDigits=\"1\"/>\n",
                "  <Play loop=\"2\">https://app.example.com/voice/sounds/beep.mp3</Play>\n",
                "  <Message statusCallback=\"https://app.example.com/voice/status\"><Body>ok</Body>",
                "<Media>https://app.example.com/voice/img/a.png</Media></Message>\n",
                "</Response>"
            )
        );
    }

    #[test]
    fn escaped_urls_are_unescaped_resolved_and_escaped_again() {
        let document = "<Response><Redirect>next?a=1&amp;b=&#50;</Redirect></Response>";
        assert_eq!(
            resolve_relative_urls(document, BASE),
            "<Response><Redirect>https://app.example.com/voice/next?a=1&amp;b=2</Redirect></Response>"
        );
    }

    #[test]
    fn rewritten_documents_still_validate() {
        // Markup characters in the base URL's directory reach the output: they must be escaped
        // in the attribute and in the text.
        let document = "<Response><Gather action=\"g\"><Say>x</Say></Gather><Redirect>r</Redirect></Response>";
        let resolved = resolve_relative_urls(document, "https://a.example/b\"<&>'/c");
        assert_eq!(
            resolved,
            "<Response><Gather action=\"https://a.example/b&quot;&lt;&amp;&gt;'/g\"><Say>x</Say></Gather>\
             <Redirect>https://a.example/b\"&lt;&amp;&gt;'/r</Redirect></Response>"
        );
        let report = crate::twiml::validate(resolved.as_bytes(), crate::twiml::TargetChannel::Voice);
        assert!(
            report.diagnostics().is_empty(),
            "{resolved}: {:?}",
            report.diagnostics()
        );
    }
}
