//! The fast walk: a tokenizer for the documents apps really send, feeding the same rules as the
//! full walk, without allocating.
//!
//! It reads the common shape of TwiML — the standard `<?xml version="1.0" encoding="UTF-8"?>`
//! declaration or none, one root, elements with ASCII names and quoted attributes, text with
//! the five predefined entities and character references, emoji and any other UTF-8 — at most
//! eight elements deep and eight attributes to a tag. Anything else (a comment, CDATA, a
//! processing instruction, another declaration, a `<!DOCTYPE>`, a non-ASCII name, `a = "b"`,
//! every well-formedness error, every fatal rule) makes it give up, and [`super::validate`]
//! starts over with the full walk, which knows the whole of XML and words every error. Only the
//! tokenizer differs: names, attributes, text, offsets and the order of events reach the rules
//! in `rules.rs` exactly as quick-xml delivers them, so a document the fast walk finishes gets
//! the full walk's report, diagnostic for diagnostic. A property test and the
//! `twiml_validate` fuzz target hold the two to that.
//!
//! # Example
//!
//! ```
//! use twiml_fallback::twiml::{validate, validate_without_fast_path, TargetChannel};
//!
//! for document in [
//!     // What an app sends: the fast walk reads it to the end.
//!     r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say voice="Polly.Joanna">Hi &amp; bye 🍰</Say><Hangup/></Response>"#,
//!     // A comment: the fast walk gives up, the full one answers.
//!     "<Response><!-- hello --><Say>Hi</Say></Response>",
//!     // Warnings and errors read the same either way.
//!     "<Response><Say>Hi</Say><Hangup/><Message>late</Message></Response>",
//! ] {
//!     let report = validate(document.as_bytes(), TargetChannel::Voice);
//!     assert_eq!(report, validate_without_fast_path(document.as_bytes(), TargetChannel::Voice));
//! }
//! ```

use super::lex::{RawAttribute, check_reference, check_references_in, find_cdata_end, find_duplicate, is_whitespace};
use super::{Frame, Validator};

/// Deeper documents take the full walk (TwiML rarely nests past `<Response><Gather><Say>`).
const MAX_DEPTH: usize = 8;

/// Tags with more attributes take the full walk.
const MAX_ATTRIBUTES: usize = 8;

/// The only declaration the fast walk reads; any other goes to the full walk.
const STANDARD_DECLARATION: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// Something the fast walk leaves to the full one.
struct Unusual;

const NO_FRAME: Frame<'static> = Frame::new(b"", None, 0);

const NO_ATTRIBUTE: RawAttribute<'static> = RawAttribute {
    key: b"",
    value: "",
    offset: 0,
};

impl<'a> Validator<'a> {
    /// Walks `text` from `start` (past a byte-order mark) with the fast tokenizer; `false` when
    /// it met something it leaves to the full walk (the caller then resets and starts over).
    pub(super) fn parse_fast(&mut self, text: &'a str, start: usize) -> bool {
        self.walk_fast(text, start).is_ok()
    }

    fn walk_fast(&mut self, text: &'a str, start: usize) -> Result<(), Unusual> {
        let bytes = text.as_bytes();
        let mut at = start;
        if bytes[at..].starts_with(b"<?") {
            if !bytes[at..].starts_with(STANDARD_DECLARATION) {
                return Err(Unusual);
            }
            at += STANDARD_DECLARATION.len();
        }
        let mut frames = [NO_FRAME; MAX_DEPTH];
        let mut depth: usize = 0;
        let mut attributes = [NO_ATTRIBUTE; MAX_ATTRIBUTES];
        let mut root_seen = false;
        let mut last_terminal_verb = None;
        loop {
            let tag = text_end(bytes, at)?;
            if !is_whitespace(&bytes[at..tag]) {
                match depth.checked_sub(1) {
                    Some(innermost) => frames[innermost].has_text = true,
                    None => return Err(Unusual),
                }
            }
            if tag == bytes.len() {
                return if depth == 0 && root_seen { Ok(()) } else { Err(Unusual) };
            }
            match bytes.get(tag + 1) {
                Some(b'/') => {
                    let name_end = name_end(bytes, tag + 2);
                    let name = &bytes[tag + 2..name_end];
                    if bytes.get(name_end) != Some(&b'>') || depth == 0 || frames[depth - 1].name != name {
                        return Err(Unusual);
                    }
                    depth -= 1;
                    self.close(frames[depth]);
                    at = name_end + 1;
                }
                Some(&first) if is_name_start(first) => {
                    if depth == 0 && root_seen {
                        return Err(Unusual);
                    }
                    let name_end = name_end(bytes, tag + 1);
                    let (count, empty, after) = attributes_from(text, name_end, &mut attributes)?;
                    root_seen = true;
                    let (parents, inner) = frames.split_at_mut(depth);
                    let Some(slot) = inner.first_mut() else {
                        return Err(Unusual);
                    };
                    let name = &bytes[tag + 1..name_end];
                    let frame = self
                        .open_checked(
                            name,
                            tag,
                            &attributes[..count],
                            parents.last_mut(),
                            &mut last_terminal_verb,
                        )
                        .ok_or(Unusual)?;
                    if empty {
                        self.close(frame);
                    } else {
                        *slot = frame;
                        depth += 1;
                    }
                    at = after;
                }
                _ => return Err(Unusual),
            }
        }
    }
}

/// Where the text from `at` ends: the next `<`, or the end of the document. `Err` for what the
/// full walk must word: `]]>`, a bad or unterminated reference.
///
/// One `memchr3` finds the next `<`, `&` or `>`; most text holds neither of the last two, so a
/// run usually takes one call. A run that holds a reference counts as text, as it does for the
/// full walk: a reference is never whitespace.
///
/// Inlined into the walk on native builds: left to the optimizer, whether it is depends on how
/// the rest of the crate is split into codegen units, and an out-of-line call per text run cost
/// the layer 2.5 % of what it adds to a request (callgrind). The Worker keeps its size.
#[cfg_attr(not(target_arch = "wasm32"), inline(always))]
fn text_end(bytes: &[u8], mut at: usize) -> Result<usize, Unusual> {
    let start = at;
    loop {
        let Some(found) = memchr::memchr3(b'<', b'&', b'>', &bytes[at..]) else {
            return Ok(bytes.len());
        };
        at += found;
        match bytes[at] {
            b'&' => {
                let after = &bytes[at + 1..];
                let semicolon = memchr::memchr2(b';', b'<', after).ok_or(Unusual)?;
                if after[semicolon] != b';' {
                    return Err(Unusual);
                }
                check_reference(&after[..semicolon]).map_err(|_| Unusual)?;
                at += semicolon + 2;
            }
            b'>' => {
                if find_cdata_end(&bytes[start.max(at.saturating_sub(2))..=at]).is_some() {
                    return Err(Unusual);
                }
                at += 1;
            }
            _ => return Ok(at),
        }
    }
}

/// A tag's attributes from `at` (just past its name) into `slots`: how many, whether the tag is
/// empty (`/>`), and the offset after it. Inlined on native builds, as [`text_end`] is.
#[cfg_attr(not(target_arch = "wasm32"), inline(always))]
fn attributes_from<'a>(
    text: &'a str,
    mut at: usize,
    slots: &mut [RawAttribute<'a>; MAX_ATTRIBUTES],
) -> Result<(usize, bool, usize), Unusual> {
    let bytes = text.as_bytes();
    let mut count = 0;
    loop {
        let spaced = at;
        while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            at += 1;
        }
        match bytes.get(at) {
            Some(b'>') => break Ok((count, false, at + 1)),
            Some(b'/') if bytes.get(at + 1) == Some(&b'>') => break Ok((count, true, at + 2)),
            // Attributes are separated from the name and from each other by whitespace.
            Some(&first) if at > spaced && is_name_start(first) && count < MAX_ATTRIBUTES => {
                let key_end = name_end(bytes, at);
                let (Some(b'='), Some(&quote @ (b'"' | b'\''))) = (bytes.get(key_end), bytes.get(key_end + 1)) else {
                    return Err(Unusual);
                };
                let value_start = key_end + 2;
                // One pass to the closing quote; a `<` or `&` on the way is looked at after.
                let mut value_end = value_start;
                let mut special = false;
                loop {
                    match bytes.get(value_end) {
                        None => return Err(Unusual),
                        Some(&byte) if byte == quote => break,
                        Some(b'<' | b'&') => special = true,
                        Some(_) => {}
                    }
                    value_end += 1;
                }
                let value = &bytes[value_start..value_end];
                if special && (memchr::memchr(b'<', value).is_some() || check_references_in(value).is_err()) {
                    return Err(Unusual);
                }
                slots[count] = RawAttribute {
                    key: &bytes[at..key_end],
                    value: text.get(value_start..value_end).ok_or(Unusual)?,
                    offset: at,
                };
                count += 1;
                if find_duplicate(&slots[..count]).is_some() {
                    return Err(Unusual);
                }
                at = value_end + 1;
            }
            _ => return Err(Unusual),
        }
    }
}

/// The end of the ASCII name starting at `at` (letters, digits, `_`, `:`, `-`, `.`).
fn name_end(bytes: &[u8], at: usize) -> usize {
    let rest = bytes.get(at..).unwrap_or_default();
    at + rest
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-' | b'.')))
        .unwrap_or(rest.len())
}

fn is_name_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte == b':'
}
