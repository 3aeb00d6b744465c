//! Property tests (proptest) of the TwiML writer and validator.
//!
//! - Any text the writer puts in an element or an attribute validates and reads back — through an
//!   XML parser — as the same text (less the characters XML 1.0 cannot carry at all, which the
//!   writer drops); the outline, which says what Twilio will speak or send, has it with its
//!   whitespace squeezed.
//! - The validator and the outline never panic, on arbitrary bytes and on adversarial documents
//!   (deep nesting, long attribute lists, many entities). That they stay linear-time there is
//!   measured by the `validation/adversarial` benchmarks (BENCHMARKS.md), not timed here.
//!
//! The signature properties (ours against the official libraries on generated requests) are in
//! `signature_differential.rs`, which drives the references.

use proptest::prelude::*;
use quick_xml::Reader;
use quick_xml::events::Event;
use twiml_fallback::Channel;
use twiml_fallback::twiml::{Action, Message, Response, Say, TargetChannel, is_xml_char, outline, validate};

/// Text that stresses the escaper: markup characters, entities-to-be, whitespace of every kind,
/// controls XML forbids, non-characters, emoji, and anything else.
fn nasty_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => any::<char>().prop_map(String::from),
        1 => Just("<".to_owned()),
        1 => Just(">".to_owned()),
        1 => Just("&".to_owned()),
        1 => Just("&amp;".to_owned()),
        1 => Just("\"".to_owned()),
        1 => Just("'".to_owned()),
        1 => Just("]]>".to_owned()),
        1 => Just("\r\n".to_owned()),
        1 => Just("\r".to_owned()),
        1 => Just("\t".to_owned()),
        1 => Just("\n".to_owned()),
        1 => Just(" ".to_owned()),
        1 => Just("\u{0}".to_owned()),
        1 => Just("\u{b}".to_owned()),
        1 => Just("\u{FFFE}".to_owned()),
        1 => Just("\u{FFFF}".to_owned()),
        1 => Just("🍰".to_owned()),
        1 => Just("</Say></Response><Response><Hangup/>".to_owned()),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// What survives XML: the text less the characters XML 1.0 forbids.
fn xml_representable(text: &str) -> String {
    text.chars().filter(|c| is_xml_char(*c)).collect()
}

/// Whitespace as the outline (and text to speech) sees it.
fn squeezed(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The exact text content of the first `element`, and the value of its attribute `attribute`, as
/// an XML parser reads them (entities and character references resolved).
fn read_back(document: &str, element: &str, attribute: &str) -> (String, Option<String>) {
    let mut reader = Reader::from_str(document);
    let mut inside = false;
    let mut text = String::new();
    let mut value = None;
    loop {
        match reader.read_event().expect("the writer's output parses") {
            Event::Start(tag) if tag.name().as_ref() == element => {
                inside = true;
                value = tag
                    .try_get_attribute(attribute)
                    .expect("attributes parse")
                    .map(|found| {
                        found
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .expect("value")
                            .into_owned()
                    });
            }
            Event::End(tag) if tag.name().as_ref() == element => return (text, value),
            Event::Text(chunk) if inside => text.push_str(&chunk),
            Event::CData(chunk) if inside => text.push_str(&chunk),
            Event::GeneralRef(reference) if inside => {
                let character = match reference.as_ref() {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "apos" => '\'',
                    "quot" => '"',
                    _ => reference
                        .resolve_char_ref()
                        .expect("a character reference")
                        .expect("a character"),
                };
                text.push(character);
            }
            Event::Eof => panic!("no </{element}> in {document}"),
            _ => {}
        }
    }
}

fn config(cases: u32) -> ProptestConfig {
    // A fresh seed each run (more ground covered over time); a failure is reported with its
    // minimal input, which the test's message shows — nothing is written to the source tree.
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn say_text_round_trips(text in nasty_text()) {
        let expected = xml_representable(&text);
        prop_assume!(!expected.trim().is_empty());
        let document = Response::new().verb(Say::new(text.clone())).to_xml();
        let report = validate(document.as_bytes(), TargetChannel::Voice);
        prop_assert!(report.is_valid(), "{document}: {:?}", report.diagnostics());
        prop_assert_eq!(report.channel(), Some(Channel::Voice));
        prop_assert_eq!(read_back(&document, "Say", "voice"), (expected.clone(), None));
        prop_assert_eq!(outline(document.as_bytes()), vec![Action::Say { text: squeezed(&expected) }]);
    }

    #[test]
    fn message_text_and_attribute_round_trip(text in nasty_text(), to in nasty_text()) {
        let expected = xml_representable(&text);
        let expected_to = xml_representable(&to);
        prop_assume!(!expected.trim().is_empty());
        let document = Response::new().verb(Message::new(text.clone()).to(to.clone())).to_xml();
        let report = validate(document.as_bytes(), TargetChannel::Messaging);
        prop_assert!(report.is_valid(), "{document}: {:?}", report.diagnostics());
        prop_assert_eq!(read_back(&document, "Message", "to"), (expected.clone(), Some(expected_to.clone())));
        prop_assert_eq!(
            outline(document.as_bytes()),
            vec![Action::Message { body: squeezed(&expected), media: Vec::new(), to: Some(expected_to) }]
        );
    }

    #[test]
    fn the_validator_and_outline_never_panic_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let auto = validate(&bytes, TargetChannel::Auto);
        for target in [TargetChannel::Voice, TargetChannel::Messaging] {
            let _ = validate(&bytes, target);
        }
        // A document detected as a channel is valid under that channel's rules.
        if let (true, Some(channel)) = (auto.is_valid(), auto.channel()) {
            let report = validate(&bytes, TargetChannel::from(channel));
            prop_assert!(report.is_valid(), "{:?}", report.diagnostics());
        }
        let _ = outline(&bytes);
    }

}

proptest! {
    // Documents of up to ~100 KB: fewer cases.
    #![proptest_config(config(150))]

    #[test]
    fn the_validator_never_panics_on_adversarial_documents(
        depth in 0usize..5000,
        attributes in 0usize..3000,
        entities in 0usize..8000,
        verb in prop::sample::select(vec!["Say", "Gather", "Message", "Dial", "Response", "x"]),
        entity in prop::sample::select(vec!["&amp;", "&#x1F370;", "&#0;", "&bogus;", "&#xFFFFFFFF;", "&", "&#"]),
    ) {
        let mut document = String::from("<Response>");
        document.push_str(&format!("<{verb}").repeat(depth.min(1)));
        for index in 0..attributes {
            document.push_str(&format!(" a{index}=\"{entity}\""));
        }
        document.push_str(&">".repeat(depth.min(1)));
        for _ in 0..depth {
            document.push_str(&format!("<{verb}>"));
        }
        document.push_str(&entity.repeat(entities));
        for _ in 0..depth {
            document.push_str(&format!("</{verb}>"));
        }
        document.push_str("</Response>");
        for target in [TargetChannel::Auto, TargetChannel::Voice, TargetChannel::Messaging] {
            let _ = validate(document.as_bytes(), target);
        }
        let _ = outline(document.as_bytes());
    }
}
