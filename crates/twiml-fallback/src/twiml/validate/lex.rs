//! The byte-level side of well-formedness: characters XML forbids, names, entity and character
//! references, the XML declaration, `]]>` in text, duplicate attributes, and the wording of
//! quick-xml's errors; plus re-borrowing the parser's slices from the document.
//!
//! # Example
//!
//! ```
//! use twiml_fallback::twiml::{validate, TargetChannel};
//!
//! for (document, message) in [
//!     ("<Response>\u{1}</Response>", "1:11: error[12100]: character U+0001 is not allowed in XML"),
//!     ("<Response><Say>&nbsp;</Say></Response>", "1:16: error[12100]: undefined entity &nbsp; (XML knows only &lt; &gt; &amp; &apos; &quot; and &#…;)"),
//!     ("<Response><Say a=\"1\" a=\"2\">x</Say></Response>", "1:22: error[12100]: attribute \"a\" appears twice"),
//! ] {
//!     let report = validate(document.as_bytes(), TargetChannel::Voice);
//!     assert_eq!(report.first_error().unwrap().to_string(), message);
//! }
//! ```

use quick_xml::events::BytesStart;

/// An attribute as written: name, raw value, and the byte offset of its name.
#[derive(Clone, Copy)]
pub(super) struct RawAttribute<'t> {
    pub(super) key: &'t [u8],
    pub(super) value: &'t str,
    pub(super) offset: usize,
}

pub(super) fn position(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

/// `inner` re-borrowed from `document`, when it is a slice of it (quick-xml hands out borrows of the
/// tag event; this recovers the document's longer lifetime without copying).
pub(super) fn within<'a>(document: &'a [u8], inner: &[u8]) -> Option<&'a [u8]> {
    let start = (inner.as_ptr() as usize).checked_sub(document.as_ptr() as usize)?;
    document.get(start..start.checked_add(inner.len())?)
}

/// `inner` re-borrowed from `text`, when it is a slice of it.
pub(super) fn within_str<'a>(text: &'a str, inner: &str) -> Option<&'a str> {
    let start = (inner.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    text.get(start..start.checked_add(inner.len())?)
}

/// The offset of `inner` within the tag's bytes, plus one for the `<` (0 if it doesn't point there).
pub(super) fn relative_offset(tag: &BytesStart<'_>, inner: &[u8]) -> usize {
    let tag_bytes: &[u8] = AsRef::<str>::as_ref(tag).as_bytes();
    let tag_start = tag_bytes.as_ptr() as usize;
    let inner_start = inner.as_ptr() as usize;
    if inner_start >= tag_start && inner_start <= tag_start + tag_bytes.len() {
        inner_start - tag_start + 1
    } else {
        0
    }
}

pub(super) fn describe_xml_error(error: &quick_xml::Error) -> String {
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
pub(super) fn describe_attribute_error(error: &quick_xml::events::attributes::AttrError) -> (usize, String) {
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
pub(super) fn check_declaration(declaration: &quick_xml::events::BytesDecl<'_>) -> Option<String> {
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
pub(super) fn find_forbidden_character(document: &[u8]) -> Option<(usize, char)> {
    const LOW: u64 = u64::from_ne_bytes([0x20; 8]);
    const HIGH_BITS: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut control = None;
    let mut chunks = document.chunks_exact(8);
    let mut base = 0;
    // Every byte of the words read, OR-ed: no high bit, no byte of U+FFFE or U+FFFF.
    let mut seen = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_ne_bytes(word);
        seen |= word;
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
    // U+FFFE and U+FFFF are EF BF BE / EF BF BF: only a document with a byte over 0x7F (a
    // control found early leaves `seen` short, so look then too) can hold them.
    let scan_end = control.unwrap_or(document.len());
    if control.is_none() && seen & HIGH_BITS == 0 && chunks.remainder().is_ascii() {
        return None;
    }
    let noncharacter =
        memchr::memchr_iter(0xEF, &document[..scan_end]).find_map(|index| match document.get(index + 1..index + 3) {
            Some([0xBF, 0xBE]) => Some((index, '\u{FFFE}')),
            Some([0xBF, 0xBF]) => Some((index, '\u{FFFF}')),
            _ => None,
        });
    noncharacter.or_else(|| control.map(|index| (index, char::from(document[index]))))
}

/// `]]>`, which may not appear in text; `>` is rare in text, so look for it first.
pub(super) fn find_cdata_end(text: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'>', text)
        .find(|&index| index >= 2 && &text[index - 2..index] == b"]]")
        .map(|index| index - 2)
}

fn is_forbidden_control(byte: u8) -> bool {
    byte < 0x20 && !matches!(byte, b'\t' | b'\n' | b'\r')
}

pub(super) fn is_whitespace(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// XML `Name`, approximated: ASCII is checked exactly, non-ASCII letters are accepted.
pub(super) fn is_valid_name(name: &[u8]) -> bool {
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
pub(super) fn check_reference(name: &[u8]) -> Result<(), String> {
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
            .is_some_and(crate::twiml::writer::is_xml_char);
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
pub(super) fn check_references_in(value: &[u8]) -> Result<(), String> {
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
pub(super) fn find_duplicate(attributes: &[RawAttribute<'_>]) -> Option<usize> {
    if attributes.len() <= 16 {
        return (1..attributes.len()).find(|&i| attributes[..i].iter().any(|earlier| earlier.key == attributes[i].key));
    }
    let mut seen = std::collections::HashSet::with_capacity(attributes.len());
    attributes.iter().position(|attribute| !seen.insert(attribute.key))
}
