//! What a TwiML document makes the person on the other end experience, verb by verb.
//!
//! ```
//! use twiml_fallback::twiml::{outline, Action};
//!
//! let actions = outline(br#"<Response><Say>Hello <break time="1s"/>there</Say><Hangup/></Response>"#);
//! assert_eq!(actions, [Action::Say { text: "Hello there".into() }, Action::Hangup]);
//! ```

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// One thing Twilio does for a verb of the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `<Say>`: speech (the text of any SSML inside, flattened).
    Say {
        /// What is spoken.
        text: String,
    },
    /// `<Play>` of an audio URL.
    Play {
        /// The audio.
        url: String,
    },
    /// `<Play digits>`: DTMF tones.
    PlayDigits {
        /// The digits.
        digits: String,
    },
    /// `<Pause>`.
    Pause {
        /// Seconds of silence.
        seconds: u32,
    },
    /// `<Gather>`: the caller is asked for input, with these prompts.
    Gather {
        /// The nested `<Say>`/`<Play>`/`<Pause>`.
        prompts: Vec<Action>,
    },
    /// `<Dial>`: the call is connected.
    Dial {
        /// The number, client, SIP address or conference.
        target: String,
    },
    /// `<Record>`: the caller is recorded.
    Record,
    /// `<Hangup/>`.
    Hangup,
    /// `<Reject>`: the call is refused.
    Reject {
        /// `busy` or `rejected`.
        reason: String,
    },
    /// `<Redirect>`: Twilio continues with TwiML from another URL.
    Redirect {
        /// Where.
        url: String,
        /// Its `method` attribute (Twilio's default is POST).
        method: Option<String>,
    },
    /// `<Message>` (or the deprecated `<Sms>`): an SMS/MMS reply.
    Message {
        /// The text.
        body: String,
        /// The pictures.
        media: Vec<String>,
        /// The `to` attribute, when not the sender.
        to: Option<String>,
        /// The `from` attribute, when not the number written to.
        from: Option<String>,
        /// The `statusCallback` attribute.
        status_callback: Option<String>,
    },
    /// Any other verb, by name.
    Other {
        /// The verb.
        verb: String,
    },
}

/// The actions of `document`, in order. Meant for documents that validate; anything it cannot
/// read ends the outline early rather than failing.
pub fn outline(document: &[u8]) -> Vec<Action> {
    let Ok(text) = std::str::from_utf8(document) else {
        return Vec::new();
    };
    let mut reader = Reader::from_str(text.trim_start_matches('\u{feff}'));
    let mut actions = Vec::new();
    // The stack of open elements below <Response>, with the text and nouns gathered for each.
    let mut stack: Vec<Open> = Vec::new();
    loop {
        let event = match reader.read_event() {
            Ok(Event::Eof) | Err(_) => break,
            Ok(event) => event,
        };
        match event {
            Event::Start(tag) => stack.push(Open::new(&tag)),
            Event::Empty(tag) => {
                let open = Open::new(&tag);
                finish(open, &mut stack, &mut actions);
            }
            Event::Text(text) => append(&mut stack, &text),
            Event::CData(data) => append(&mut stack, &data),
            Event::GeneralRef(reference) => {
                let resolved = match reference.as_ref() {
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "amp" => Some('&'),
                    "apos" => Some('\''),
                    "quot" => Some('"'),
                    _ => reference.resolve_char_ref().ok().flatten(),
                };
                if let Some(character) = resolved {
                    append(&mut stack, character.encode_utf8(&mut [0; 4]));
                }
            }
            Event::End(_) => {
                if let Some(open) = stack.pop() {
                    finish(open, &mut stack, &mut actions);
                }
            }
            _ => {}
        }
    }
    actions
}

struct Open {
    name: String,
    attributes: Vec<(String, String)>,
    text: String,
    children: Vec<Action>,
    media: Vec<String>,
}

impl Open {
    fn new(tag: &BytesStart<'_>) -> Self {
        let attributes = tag
            .attributes()
            .filter_map(Result::ok)
            .map(|attribute| {
                let value = attribute
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map(|value| value.into_owned())
                    .unwrap_or_default();
                (attribute.key.into_inner().to_owned(), value)
            })
            .collect();
        Self {
            name: tag.name().into_inner().to_owned(),
            attributes,
            text: String::new(),
            children: Vec::new(),
            media: Vec::new(),
        }
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

fn append(stack: &mut [Open], text: &str) {
    if let Some(open) = stack.last_mut() {
        open.text.push_str(text);
    }
}

fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Turns a closed element into an action for its parent (or the document).
fn finish(mut open: Open, stack: &mut [Open], actions: &mut Vec<Action>) {
    let parent = stack.last_mut();
    // Text inside SSML and nouns belongs to the enclosing verb.
    let Some(action) = action_of(&mut open, parent.as_ref().map(|p| p.name.as_str())) else {
        if let Some(parent) = parent {
            match open.name.as_str() {
                "Media" => parent.media.push(squeeze(&open.text)),
                "Body" => parent.text.push_str(&open.text),
                _ => {
                    parent.text.push_str(&open.text);
                    if matches!(open.name.as_str(), "break" | "p" | "s") {
                        parent.text.push(' ');
                    }
                }
            }
        }
        return;
    };
    match stack.last_mut() {
        Some(parent) if parent.name != "Response" => parent.children.push(action),
        _ => actions.push(action),
    }
}

fn action_of(open: &mut Open, parent: Option<&str>) -> Option<Action> {
    let is_verb_position = matches!(parent, None | Some("Response" | "Gather" | "Prompt"));
    if !is_verb_position {
        return None;
    }
    // Inside <Gather> only prompts make sense; anything else (a <Gather> in a <Gather>…) is named,
    // not expanded, so the outline stays two levels deep however deep the document nests.
    let in_gather = matches!(parent, Some("Gather" | "Prompt"));
    let text = squeeze(&open.text);
    Some(match open.name.as_str() {
        "Response" => return None,
        "Say" => Action::Say { text },
        "Play" => match open.attribute("digits") {
            Some(digits) if text.is_empty() => Action::PlayDigits {
                digits: digits.to_owned(),
            },
            _ => Action::Play { url: text },
        },
        "Pause" => Action::Pause {
            seconds: open
                .attribute("length")
                .and_then(|length| length.trim().parse().ok())
                .unwrap_or(1),
        },
        "Gather" if in_gather => Action::Other {
            verb: "Gather".to_owned(),
        },
        "Gather" => Action::Gather {
            prompts: std::mem::take(&mut open.children),
        },
        "Dial" => Action::Dial {
            target: if text.is_empty() { "its nouns".to_owned() } else { text },
        },
        "Record" => Action::Record,
        "Hangup" => Action::Hangup,
        "Reject" => Action::Reject {
            reason: open.attribute("reason").unwrap_or("rejected").to_owned(),
        },
        "Redirect" => Action::Redirect {
            url: text,
            method: open.attribute("method").map(str::to_owned),
        },
        "Message" | "Sms" => Action::Message {
            body: text,
            media: std::mem::take(&mut open.media),
            to: open.attribute("to").map(str::to_owned),
            from: open.attribute("from").map(str::to_owned),
            status_callback: open.attribute("statusCallback").map(str::to_owned),
        },
        other => Action::Other { verb: other.to_owned() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_outlines_two_levels_deep() {
        // Found by property testing: nested <Gather>s built a nested Action per level, which
        // overflowed the stack when cloned or dropped (and cost quadratic time).
        let depth = 20_000;
        let document = format!(
            "<Response>{}{}</Response>",
            "<Gather>".repeat(depth),
            "</Gather>".repeat(depth)
        );
        let actions = outline(document.as_bytes());
        assert_eq!(
            actions,
            [Action::Gather {
                prompts: vec![Action::Other { verb: "Gather".into() }]
            }]
        );
    }

    #[test]
    fn voice_documents_outline_their_verbs() {
        let actions = outline(
            br#"<?xml version="1.0"?><Response>
                <Gather numDigits="1"><Say voice="alice">Press <emphasis>1</emphasis> for hours</Say><Pause length="2"/></Gather>
                <Play>https://a.example/x.mp3</Play><Play digits="ww12"/>
                <Dial>+15550001111</Dial><Redirect>/next</Redirect><Reject reason="busy"/><Hangup/><Enqueue>q</Enqueue>
            </Response>"#,
        );
        assert_eq!(
            actions,
            [
                Action::Gather {
                    prompts: vec![
                        Action::Say {
                            text: "Press 1 for hours".into()
                        },
                        Action::Pause { seconds: 2 }
                    ]
                },
                Action::Play {
                    url: "https://a.example/x.mp3".into()
                },
                Action::PlayDigits { digits: "ww12".into() },
                Action::Dial {
                    target: "+15550001111".into()
                },
                Action::Redirect {
                    url: "/next".into(),
                    method: None
                },
                Action::Reject { reason: "busy".into() },
                Action::Hangup,
                Action::Other { verb: "Enqueue".into() },
            ]
        );
    }

    #[test]
    fn messages_outline_text_or_body_and_media() {
        let actions = outline(
            "<Response><Message to=\"+1555\" from=\"+1666\" statusCallback=\"https://a/s\">Caf&#233; &amp; 🍰</Message><Message><Body>Pic</Body><Media>https://a/b.png</Media></Message></Response>"
                .as_bytes(),
        );
        assert_eq!(
            actions,
            [
                Action::Message {
                    body: "Café & 🍰".into(),
                    media: vec![],
                    to: Some("+1555".into()),
                    from: Some("+1666".into()),
                    status_callback: Some("https://a/s".into())
                },
                Action::Message {
                    body: "Pic".into(),
                    media: vec!["https://a/b.png".into()],
                    to: None,
                    from: None,
                    status_callback: None
                },
            ]
        );
    }

    #[test]
    fn empty_and_broken_documents_outline_to_nothing() {
        assert!(outline(b"<Response/>").is_empty());
        assert!(outline(b"\xff\xfe").is_empty());
        assert_eq!(outline(b"<Response><Say>cut"), []);
    }
}
