use super::*;

const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// The report, after checking that both walks give it.
fn check(document: &str, target: TargetChannel) -> Report {
    let report = validate(document.as_bytes(), target);
    let full = validate_without_fast_path(document.as_bytes(), target);
    assert_eq!(report, full, "the fast and the full walk disagree on {document:?}");
    report
}

fn first_error(document: &str, target: TargetChannel) -> Diagnostic {
    match check(document, target).first_error() {
        Some(error) => error.clone(),
        None => panic!("expected an error for {document:?}"),
    }
}

fn assert_valid(document: &str, target: TargetChannel) {
    let report = check(document, target);
    assert!(report.is_valid(), "{document:?}: {:?}", report.diagnostics());
}

fn assert_clean(document: &str, target: TargetChannel) {
    let report = check(document, target);
    assert!(
        report.diagnostics().is_empty(),
        "{document:?}: {:?}",
        report.diagnostics()
    );
}

#[test]
fn seed_documents_are_valid() {
    assert_clean(
        &format!(
            "{DECL}<Response><Message>Thanks for the order! 🍰 We'll text you when it's ready.</Message></Response>"
        ),
        TargetChannel::Messaging,
    );
    assert_clean(
        &format!(
            "{DECL}<Response><Say voice=\"Polly.Joanna\" language=\"en-US\">An application error has occurred.</Say><Hangup/></Response>"
        ),
        TargetChannel::Voice,
    );
}

#[test]
fn lowercase_response_is_the_wrong_root() {
    let error = first_error(
        "<?xml version=\"1.0\"?>\n<response><Message>Hi</Message></response>",
        TargetChannel::Messaging,
    );
    assert_eq!(error.code, ErrorCode::ROOT_NOT_RESPONSE);
    assert_eq!((error.line, error.column), (2, 1));
    assert!(error.message.contains("case-sensitive"), "{}", error.message);
}

#[test]
fn other_roots_are_the_wrong_root() {
    let error = first_error("<html><body>Internal Server Error</body></html>", TargetChannel::Auto);
    assert_eq!(error.code, ErrorCode::ROOT_NOT_RESPONSE);
}

#[test]
fn parse_errors_win_over_a_wrong_root() {
    let error = first_error("<response><Message>Hi</message></response>", TargetChannel::Auto);
    assert_eq!(error.code, ErrorCode::DOCUMENT_PARSE_FAILURE);
}

#[test]
fn anything_before_the_declaration_is_a_parse_failure() {
    for document in [
        format!(" {DECL}<Response/>"),
        format!("\n{DECL}<Response/>"),
        format!("<!-- c -->{DECL}<Response/>"),
    ] {
        let error = first_error(&document, TargetChannel::Auto);
        assert_eq!(error.code, ErrorCode::DOCUMENT_PARSE_FAILURE, "{document:?}");
    }
    assert_clean(&format!("\u{FEFF}{DECL}<Response/>"), TargetChannel::Auto);
    assert_clean("  <Response/>  ", TargetChannel::Auto);
}

#[test]
fn size_over_64_kb_is_11750_without_parsing() {
    let filler = "a".repeat(MAX_DOCUMENT_BYTES);
    let document = format!("<Response><Say>{filler}</Say></Response>");
    let report = check(&document, TargetChannel::Voice);
    assert_eq!(report.diagnostics().len(), 1);
    assert_eq!(report.diagnostics()[0].code, ErrorCode::RESPONSE_TOO_LARGE);
    let exactly = format!(
        "<Response><Say>{}</Say></Response>",
        "a".repeat(MAX_DOCUMENT_BYTES - 32)
    );
    assert_eq!(exactly.len(), MAX_DOCUMENT_BYTES);
    assert_valid(&exactly, TargetChannel::Voice);
}

#[test]
fn empty_body_is_11770_and_blank_body_has_no_root() {
    assert_eq!(first_error("", TargetChannel::Auto).code, ErrorCode::EMPTY_RESPONSE);
    let blank = first_error("  \n ", TargetChannel::Auto);
    assert_eq!(blank.code, ErrorCode::DOCUMENT_PARSE_FAILURE);
    assert!(blank.message.contains("no root"));
    assert_eq!(
        first_error(DECL, TargetChannel::Auto).code,
        ErrorCode::DOCUMENT_PARSE_FAILURE
    );
}

#[test]
fn malformed_xml_is_12100_with_a_position() {
    for (document, line, column) in [
        ("<Response>\n<Say>Hi</say>\n</Response>", 2, 8),
        ("<Response><Say>Hi</Say>", 1, 1),
        ("<Response><Say>AT&T</Say></Response>", 1, 18),
        ("<Response><Say>a < b</Say></Response>", 1, 18),
        ("<Response><Say voice=alice>Hi</Say></Response>", 1, 22),
        ("<Response><Say voice=\"a\" voice=\"b\">Hi</Say></Response>", 1, 26),
        ("<Response><Say>&nbsp;</Say></Response>", 1, 16),
        ("<Response><Say>&#0;</Say></Response>", 1, 16),
        ("<Response><Say>x</Say></Response><Response/>", 1, 34),
        ("<Response/>trailing", 1, 12),
        ("<Response><!-- a -- b --></Response>", 1, 18),
        ("<!DOCTYPE Response><Response/>", 1, 1),
        ("<Response><Say a=\"1<2\">x</Say></Response>", 1, 20),
        ("<Response><1Say/></Response>", 1, 11),
        ("<Response></Say></Response>", 1, 11),
    ] {
        let error = first_error(document, TargetChannel::Auto);
        assert_eq!(error.code, ErrorCode::DOCUMENT_PARSE_FAILURE, "{document:?}: {error}");
        assert_eq!((error.line, error.column), (line, column), "{document:?}: {error}");
    }
}

#[test]
fn invalid_utf8_and_forbidden_characters_are_parse_failures() {
    let error = validate(b"<Response><Say>caf\xE9</Say></Response>", TargetChannel::Voice);
    assert_eq!(
        error.first_error().map(|e| (e.code, e.column)),
        Some((ErrorCode::DOCUMENT_PARSE_FAILURE, 19))
    );
    let control = first_error("<Response><Say>bell\u{7}</Say></Response>", TargetChannel::Voice);
    assert!(control.message.contains("U+0007"), "{control}");
    let nonchar = first_error("<Response><Say>\u{FFFE}</Say></Response>", TargetChannel::Voice);
    assert!(nonchar.message.contains("U+FFFE"), "{nonchar}");
    // Wherever they fall against the eight-byte words the scan reads: in the first, in the
    // tail after the last whole word, after an ASCII-only run; and of a control and a
    // noncharacter, the first is reported.
    for (document, character, column) in [
        ("\u{FFFF}<Response/>", "U+FFFF", 1),
        ("<Response/>\u{FFFF}", "U+FFFF", 12),
        ("<Response>hello</Response>\u{FFFE}", "U+FFFE", 27),
        ("<Response>\u{1}\u{FFFF}</Response>", "U+0001", 11),
        ("<Response>\u{FFFE}\u{1}</Response>", "U+FFFE", 11),
    ] {
        let error = first_error(document, TargetChannel::Voice);
        assert!(error.message.contains(character), "{document:?}: {error}");
        assert_eq!(error.column, column, "{document:?}: {error}");
    }
}

#[test]
fn utf16_declaration_on_utf8_bytes_is_refused() {
    let error = first_error(
        "<?xml version=\"1.0\" encoding=\"UTF-16\"?><Response/>",
        TargetChannel::Auto,
    );
    assert_eq!(error.code, ErrorCode::DOCUMENT_PARSE_FAILURE);
    assert_clean(
        "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><Response/>",
        TargetChannel::Auto,
    );
}

#[test]
fn entities_character_references_and_cdata_are_text() {
    assert_clean(
        "<Response><Message>Tom &amp; Jerry &lt;3 &#x1F370; &#169; &quot;&apos;<![CDATA[<raw> & ok]]></Message></Response>",
        TargetChannel::Messaging,
    );
}

#[test]
fn wrong_case_verbs_are_schema_errors_with_a_suggestion() {
    let error = first_error("<Response><say>Hi</say></Response>", TargetChannel::Voice);
    assert_eq!(error.code, ErrorCode::SCHEMA_VALIDATION);
    assert_eq!(error.severity, Severity::Error);
    assert!(error.message.contains("did you mean <Say>"), "{}", error.message);
    let nested = first_error(
        "<Response><Message><body>x</body></Message></Response>",
        TargetChannel::Messaging,
    );
    assert!(nested.message.contains("did you mean <Body>"), "{}", nested.message);
}

#[test]
fn unknown_verbs_are_schema_errors() {
    let error = first_error("<Response><Speak>Hi</Speak></Response>", TargetChannel::Auto);
    assert_eq!(
        (error.code, error.severity),
        (ErrorCode::SCHEMA_VALIDATION, Severity::Error)
    );
    assert_eq!(error.message, "<Speak> is not a TwiML verb");
}

#[test]
fn verbs_of_the_other_channel_are_errors() {
    let say_in_sms = first_error("<Response><Say>Hi</Say></Response>", TargetChannel::Messaging);
    assert_eq!(say_in_sms.code, ErrorCode::SCHEMA_VALIDATION);
    let message_in_voice = first_error("<Response><Message>Hi</Message></Response>", TargetChannel::Voice);
    assert!(message_in_voice.message.contains("messaging verb"));
    assert_valid("<Response><Redirect>/next</Redirect></Response>", TargetChannel::Voice);
    assert_valid(
        "<Response><Redirect>/next</Redirect></Response>",
        TargetChannel::Messaging,
    );
}

#[test]
fn auto_detects_the_channel_and_refuses_mixtures() {
    assert_eq!(
        check("<Response><Say>a</Say></Response>", TargetChannel::Auto).channel(),
        Some(Channel::Voice)
    );
    assert_eq!(
        check("<Response><Message>a</Message></Response>", TargetChannel::Auto).channel(),
        Some(Channel::Messaging)
    );
    assert_eq!(check("<Response/>", TargetChannel::Auto).channel(), None);
    assert_eq!(
        check("<Response/>", TargetChannel::Voice).channel(),
        Some(Channel::Voice)
    );
    let mixed = first_error(
        "<Response><Message>a</Message><Say>b</Say></Response>",
        TargetChannel::Auto,
    );
    assert!(
        mixed.message.contains("already uses messaging verbs"),
        "{}",
        mixed.message
    );
}

#[test]
fn nesting_follows_twiml() {
    assert_clean(
        "<Response><Gather input=\"dtmf speech\" numDigits=\"1\"><Say>Press 1</Say><Pause length=\"1\"/><Play>https://a.example/x.mp3</Play></Gather></Response>",
        TargetChannel::Voice,
    );
    let dial_in_gather = first_error(
        "<Response><Gather><Dial>+1555</Dial></Gather></Response>",
        TargetChannel::Voice,
    );
    assert_eq!(
        dial_in_gather.message,
        "<Gather> can't contain <Dial> (allowed: Say, Pause, Play)"
    );
    let say_in_message = first_error(
        "<Response><Message><Say>x</Say></Message></Response>",
        TargetChannel::Messaging,
    );
    assert!(
        say_in_message.message.starts_with("<Message> can't contain <Say>"),
        "{}",
        say_in_message.message
    );
    let body_at_top = first_error("<Response><Body>x</Body></Response>", TargetChannel::Messaging);
    assert_eq!(body_at_top.message, "<Body> can't be used directly inside <Response>");
    assert_clean(
        "<Response><Dial callerId=\"+15550001111\"><Number sendDigits=\"ww12\">+15550002222</Number><Sip>sip:a@b.example</Sip></Dial><Refer><Sip>sip:c@d.example</Sip></Refer></Response>",
        TargetChannel::Voice,
    );
}

#[test]
fn errors_inside_an_unknown_element_are_not_cascaded() {
    let report = check(
        "<Response><Foo><Bar><Baz/></Bar></Foo></Response>",
        TargetChannel::Voice,
    );
    assert_eq!(report.errors().count(), 1);
}

#[test]
fn ssml_and_vendor_ssml_are_allowed_inside_say() {
    assert_clean(
        "<Response><Say voice=\"Polly.Joanna\">Hello <break time=\"1s\"/><emphasis level=\"strong\">world</emphasis> <say-as interpret-as=\"digits\">123</say-as><amazon:effect name=\"whispered\">psst</amazon:effect><lang xml:lang=\"fr-FR\">bonjour</lang></Say></Response>",
        TargetChannel::Voice,
    );
    let error = first_error("<Response><Say><foo:bar/>x</Say></Response>", TargetChannel::Voice);
    assert_eq!(error.code, ErrorCode::SCHEMA_VALIDATION);
}

#[test]
fn attribute_problems_are_warnings() {
    let report = check(
        "<Response><Say loop=\"-1\" Voice=\"alice\">Hi</Say><Redirect method=\"PUT\">/x</Redirect></Response>",
        TargetChannel::Voice,
    );
    assert!(report.is_valid());
    let warnings: Vec<_> = report.warnings().map(|w| w.message.as_str()).collect();
    assert_eq!(
        warnings,
        [
            "<Say loop> is \"-1\"; expected an integer >= 0",
            "<Say> has no attribute \"Voice\" (attribute names are case-sensitive: did you mean voice?)",
            "<Redirect method> is \"PUT\"; expected GET or POST",
        ]
    );
    assert_eq!(report.check(Strictness::Schema), Ok(()));
    assert!(report.check(Strictness::Pedantic).is_err());
}

#[test]
fn warnings_point_at_the_attribute() {
    let report = check(
        "<Response>\n  <Pause length=\"zero\"/>\n</Response>",
        TargetChannel::Voice,
    );
    let warning = report.warnings().next().expect("a warning");
    assert_eq!((warning.line, warning.column), (2, 10));
}

#[test]
fn content_problems_are_warnings() {
    for (document, expected) in [
        ("<Response><Say/></Response>", "<Say> has nothing to say"),
        (
            "<Response><Play/></Response>",
            "<Play> needs a URL to play or a digits attribute",
        ),
        ("<Response><Redirect/></Response>", "<Redirect> needs text content"),
        (
            "<Response><Gather>Press 1</Gather></Response>",
            "text inside <Gather> is ignored by Twilio",
        ),
        (
            "<Response><Message/></Response>",
            "<Message> is empty: nothing would be sent",
        ),
        (
            "<Response><Message>hi<Media>https://a/b.png</Media></Message></Response>",
            "<Message> mixes text with <Body>/<Media>; put the text in <Body>",
        ),
        (
            "<Response>stray<Hangup/></Response>",
            "text inside <Response> is ignored by Twilio",
        ),
        (
            "<Response><Sms>hi</Sms></Response>",
            "<Sms> is deprecated; use <Message>",
        ),
        (
            "<Response><Redirect>/a</Redirect><Say>x</Say></Response>",
            "<Say> comes after <Redirect> and is never reached",
        ),
    ] {
        let report = check(document, TargetChannel::Auto);
        assert!(report.is_valid(), "{document}: {:?}", report.diagnostics());
        let messages: Vec<_> = report.warnings().map(|w| w.message.clone()).collect();
        assert!(messages.iter().any(|m| m == expected), "{document}: {messages:?}");
    }
    assert_clean("<Response><Play digits=\"ww1\"/></Response>", TargetChannel::Voice);
    let too_many = format!(
        "<Response><Message>{}</Message></Response>",
        "<Media>https://a/b.png</Media>".repeat(11)
    );
    assert!(
        check(&too_many, TargetChannel::Messaging)
            .warnings()
            .any(|w| w.message.contains("at most 10"))
    );
}

#[test]
fn response_version_must_be_a_twiml_version() {
    assert_clean("<Response version=\"2010-04-01\"/>", TargetChannel::Auto);
    assert_eq!(
        first_error("<Response version=\"3\"/>", TargetChannel::Auto).code,
        ErrorCode::INVALID_VERSION
    );
}

#[test]
fn namespace_declarations_are_accepted() {
    assert_clean(
        "<Response xmlns=\"urn:x\"><Say xmlns:amazon=\"urn:y\">x</Say></Response>",
        TargetChannel::Voice,
    );
}

#[test]
fn strictness_levels_gate_differently() {
    let schema_error = check("<Response><say>x</say></Response>", TargetChannel::Voice);
    assert!(schema_error.check(Strictness::WellFormed).is_ok());
    assert!(schema_error.check(Strictness::Schema).is_err());
    let parse_error = check("<Response>", TargetChannel::Voice);
    assert!(parse_error.check(Strictness::WellFormed).is_err());
}

#[test]
fn diagnostics_are_capped() {
    let document = format!("<Response>{}</Response>", "<Say loop=\"x\">a</Say>".repeat(500));
    let report = check(&document, TargetChannel::Voice);
    assert_eq!(report.diagnostics().len(), MAX_DIAGNOSTICS);
    assert!(
        report.diagnostics()[MAX_DIAGNOSTICS - 1]
            .message
            .contains("stopped after")
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let error = first_error(
        "<Response><Message>🍰🍰</Message><say/></Response>",
        TargetChannel::Messaging,
    );
    assert_eq!(error.column, 32);
}

#[test]
fn adversarial_inputs_get_twilios_verdict() {
    // 140,000 bytes: over 64 KB, refused before any parsing.
    let deep = format!("{}{}", "<a>".repeat(20_000), "</a>".repeat(20_000));
    // 63,021 bytes: the same nesting parsed in full, inside a <Response>.
    let deep_within_limit = format!("<Response>{}{}</Response>", "<a>".repeat(9_000), "</a>".repeat(9_000));
    // ~44 KB of attributes Twilio does not know: ignored (warnings), the document runs.
    let many_attributes = format!(
        "<Response {}/>",
        (0..5000).map(|i| format!("a{i}=\"\"")).collect::<Vec<_>>().join(" ")
    );
    // A repeated attribute is not well-formed XML, however late it comes.
    let duplicate_late = format!(
        "<Response {} a0=\"\"/>",
        (0..100).map(|i| format!("a{i}=\"\"")).collect::<Vec<_>>().join(" ")
    );
    let parse = Some(ErrorCode::DOCUMENT_PARSE_FAILURE);
    for (document, expected) in [
        (deep.as_str(), Some(ErrorCode::RESPONSE_TOO_LARGE)),
        (deep_within_limit.as_str(), Some(ErrorCode::SCHEMA_VALIDATION)),
        (many_attributes.as_str(), None),
        (duplicate_late.as_str(), parse),
        // Truncated markup, declarations and CDATA: no root element, or an unclosed one.
        ("<", parse),
        ("<?", parse),
        ("<?xml", parse),
        ("<!", parse),
        ("<![CDATA[", parse),
        ("<Response><![CDATA[", parse),
        // A bare or unfinished reference; references to no character or outside Unicode.
        ("&", parse),
        ("<Response>&", parse),
        ("<Response>&#", parse),
        ("<Response>&#x;</Response>", parse),
        ("<Response>&#xFFFFFFFFFF;</Response>", parse),
        ("<Response a='", parse),
        ("<Response a=\"&#x110000;\"/>", parse),
        // End tags without a start tag.
        ("</Response>", parse),
        ("<Response></Response></Response>", parse),
        // A byte-order mark alone is a non-empty body with no root (not 11770, which is an
        // empty body); inside text, U+FEFF is an ordinary XML character.
        ("\u{FEFF}", parse),
        ("<Response><Say>\u{FEFF}</Say></Response>", None),
        // XML 1.0 names may contain colons (Twilio reads `<amazon:effect>` without an xmlns):
        // `:` is a well-formed root that is not <Response>, `a:b:c` an unknown verb.
        ("<:/>", Some(ErrorCode::ROOT_NOT_RESPONSE)),
        ("<Response><a:b:c/></Response>", Some(ErrorCode::SCHEMA_VALIDATION)),
    ] {
        let report = check(document, TargetChannel::Auto);
        let head: String = document.chars().take(40).collect();
        assert_eq!(
            report.first_error().map(|error| error.code),
            expected,
            "{head:?}…: {:?}",
            report.diagnostics().iter().take(3).collect::<Vec<_>>()
        );
    }
}

#[test]
fn report_display_is_line_col_severity_code_message() {
    let error = first_error("<Response>\n<Foo/></Response>", TargetChannel::Voice);
    assert_eq!(error.to_string(), "2:1: error[12200]: <Foo> is not a TwiML verb");
}

#[test]
fn an_error_after_the_diagnostic_cap_still_fails_the_document() {
    let attributes: String = (0..MAX_DIAGNOSTICS).map(|i| format!(" a{i}=\"\"")).collect();
    let document = format!("<Response><Say{attributes}><Say/></Say></Response>");
    let report = validate(document.as_bytes(), TargetChannel::Voice);
    assert!(!report.is_valid(), "{} warnings hid the error", MAX_DIAGNOSTICS);
    assert_eq!(report.diagnostics().len(), MAX_DIAGNOSTICS);
    assert_eq!(report.first_error().map(|d| d.code), Some(ErrorCode::SCHEMA_VALIDATION));
    let fewer: String = (0..MAX_DIAGNOSTICS - 1).map(|i| format!(" a{i}=\"\"")).collect();
    let below_cap = format!("<Response><Say{fewer}><Say/></Say></Response>");
    assert_eq!(
        validate(below_cap.as_bytes(), TargetChannel::Voice)
            .first_error()
            .map(|d| d.code),
        Some(ErrorCode::SCHEMA_VALIDATION)
    );
}

#[test]
fn only_the_first_byte_order_mark_is_one() {
    assert!(check("\u{FEFF}<Response/>", TargetChannel::Voice).is_valid());
    let error = first_error("\u{FEFF}\u{FEFF}<Response/>", TargetChannel::Voice);
    assert_eq!(
        (error.code, error.line, error.column),
        (ErrorCode::DOCUMENT_PARSE_FAILURE, 1, 2)
    );
    // Positions after a lone mark stay exact.
    let error = first_error("\u{FEFF}<Response><Say>", TargetChannel::Voice);
    assert_eq!(error.code, ErrorCode::DOCUMENT_PARSE_FAILURE);
    assert!(error.to_string().contains("<Say"), "{error}");
}

/// Whether the fast walk reads `document` to the end (rather than handing it to the full walk).
fn fast_walk_finishes(document: &str) -> bool {
    let start = if document.starts_with('\u{FEFF}') { BOM.len() } else { 0 };
    let mut validator = Validator::new(document.as_bytes(), TargetChannel::Auto);
    validator.text = document;
    validator.parse_fast(document, start)
}

#[test]
fn the_fast_walk_reads_what_apps_send() {
    let rendered = crate::twiml::Response::new()
        .verb(
            crate::twiml::Say::new("Press <1> for R&D, \"quoted\"\r\n🍰")
                .voice("Polly.Joanna")
                .language("en-US"),
        )
        .verb(crate::twiml::Pause::new().length(1))
        .verb(crate::twiml::Hangup)
        .to_xml();
    let ivr_like = format!(
        "{DECL}\n<Response>\n  <Gather input='dtmf speech' numDigits=\"1\" action=\"/menu?a=1&amp;b=2\">\n    <Say>Caf&#233; &amp; bar &#x1F370; 🍰</Say>\n    <Pause length=\"2\"/>\n  </Gather>\n</Response>\n"
    );
    for document in [
        rendered.as_str(),
        ivr_like.as_str(),
        "<Response/>",
        "\u{FEFF}<Response><Message><Body>Hi</Body><Media>https://example.com/a.png</Media></Message></Response>",
        // Warnings and schema errors are the rules' business, not the tokenizer's.
        "<Response><Say loop=\"-1\">x</Say><Hangup/><Say>never reached</Say><Message>x</Message></Response>",
        "<response><Message>Hi</Message></response>",
    ] {
        assert!(fast_walk_finishes(document), "{document:?}");
        check(document, TargetChannel::Voice);
        check(document, TargetChannel::Messaging);
    }
}

#[test]
fn the_fast_walk_leaves_the_rest_of_xml_to_the_full_walk() {
    for document in [
        "<Response><!-- c --></Response>",
        "<Response><Say><![CDATA[x]]></Say></Response>",
        "<?xml version=\"1.0\"?><Response/>",
        "<Response><?pi x?></Response>",
        "<!DOCTYPE x><Response/>",
        "<Response><Séance/></Response>",
        "<Response><Say voice = \"a\">x</Say></Response>",
        "<Response><Say voice=\"a\"loop=\"1\">x</Say></Response>",
        "<Response><Say a=\"1\" a=\"2\">x</Say></Response>",
        "<Response><Say>a & b</Say></Response>",
        "<Response><Say>&nbsp;</Say></Response>",
        "<Response><Say>]]></Say></Response>",
        "<Response><Say></say></Response>",
        "<Response><Say>",
        "<Response version=\"3\"/>",
        "<Response/><Response/>",
        "<Response/>x",
        "<a><b><c><d><e><f><g><h><i/></h></g></f></e></d></c></b></a>",
        "<Response><Say a=\"1\" b=\"1\" c=\"1\" d=\"1\" e=\"1\" f=\"1\" g=\"1\" h=\"1\" i=\"1\">x</Say></Response>",
    ] {
        assert!(!fast_walk_finishes(document), "{document:?}");
        check(document, TargetChannel::Voice);
        check(document, TargetChannel::Auto);
    }
}

mod the_fast_walk_agrees_with_the_full_walk {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestCaseError;

    use super::*;

    /// Markup shaped like TwiML, well-formed or nearly: known and unknown names, attributes with
    /// both quotes and odd spacing, references good and bad, the constructs only the full walk
    /// reads; then perhaps one byte deleted or inserted.
    fn twiml_like() -> impl Strategy<Value = String> {
        /// Mostly `good`, sometimes `bad`: most documents stay on the fast walk to the end.
        fn mostly(good: Vec<&'static str>, bad: Vec<&'static str>) -> impl Strategy<Value = &'static str> + Clone {
            prop_oneof![8 => prop::sample::select(good), 1 => prop::sample::select(bad)]
        }
        let name = prop::sample::select(vec![
            "Response",
            "response",
            "Say",
            "say",
            "Play",
            "Pause",
            "Hangup",
            "Redirect",
            "Reject",
            "Message",
            "Body",
            "Media",
            "Gather",
            "Dial",
            "Number",
            "Sms",
            "Queue",
            "prosody",
            "amazon:effect",
            "Foo",
            "x-y.z",
        ]);
        let attribute = (
            prop::sample::select(vec![
                "voice", "language", "loop", "method", "action", "digits", "version", "length", "xmlns", "Voice", "x",
            ]),
            mostly(
                vec![
                    "",
                    "1",
                    "-1",
                    "POST",
                    "PUT",
                    "Polly.Joanna",
                    "2010-04-01",
                    "3",
                    "a&amp;b",
                    "x>y",
                    "🍰",
                    "&#x1F370;",
                ],
                vec!["a&b", "a<b", "&#0;", "&nbsp;"],
            ),
            prop::sample::select(vec!["\"", "'"]),
            mostly(vec![" ", "\n  ", "\t"], vec!["", " = "]),
        )
            .prop_map(|(key, value, quote, space)| match space {
                " = " => format!(" {key} = {quote}{value}{quote}"),
                _ => format!("{space}{key}={quote}{value}{quote}"),
            });
        let text = mostly(
            vec![
                "Hi",
                " ",
                "\n  ",
                "a &amp; b",
                "&#x1F370;",
                "&#13;",
                "🍰",
                "é",
                ">",
                "&lt;&gt;&quot;&apos;",
            ],
            vec![
                "&#0;",
                "&nbsp;",
                "&",
                "]]>",
                "<!-- c -->",
                "<![CDATA[x]]>",
                "<?pi x?>",
                "&#xD800;",
            ],
        )
        .prop_map(str::to_owned);
        let leaf = prop_oneof![
            2 => text,
            1 => (name.clone(), proptest::collection::vec(attribute.clone(), 0..4), prop::sample::select(vec!["/>", " />"]))
                .prop_map(|(name, attributes, end)| format!("<{name}{}{end}", attributes.concat())),
        ];
        let element = leaf.prop_recursive(4, 24, 4, move |inner| {
            (
                name.clone(),
                proptest::collection::vec(attribute.clone(), 0..4),
                proptest::collection::vec(inner, 0..4),
                mostly(vec![""], vec!["x", " ", "lowercase"]),
            )
                .prop_map(|(name, attributes, children, end_change)| {
                    let end = match end_change {
                        "" => name.to_owned(),
                        " " => format!("{name} "),
                        "lowercase" => name.to_lowercase(),
                        other => other.to_owned(),
                    };
                    format!("<{name}{}>{}</{end}>", attributes.concat(), children.concat())
                })
        });
        let prefix = mostly(
            vec![
                "",
                DECL,
                "\u{FEFF}",
                "\u{FEFF}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                " ",
            ],
            vec![
                "<?xml version='1.0'?>",
                "<!-- c -->",
                "x",
                " <?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            ],
        );
        let suffix = mostly(
            vec!["", "\n", " \r\n"],
            vec![" x", "<Response/>", "<!-- c -->", "&amp;"],
        );
        let mutation = proptest::option::weighted(
            0.15,
            (
                any::<prop::sample::Index>(),
                any::<bool>(),
                prop::sample::select(b"<>&;/=\"' \n\x01x".to_vec()),
            ),
        );
        (prefix, element, suffix, mutation).prop_map(|(prefix, element, suffix, mutation)| {
            let mut bytes = format!("{prefix}<Response>{element}</Response>{suffix}").into_bytes();
            if let Some((index, insert, byte)) = mutation {
                let at = index.index(bytes.len() + 1);
                if insert {
                    bytes.insert(at, byte);
                } else if at < bytes.len() {
                    bytes.remove(at);
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    }

    fn assert_agree(document: &[u8]) -> Result<(), TestCaseError> {
        for target in [TargetChannel::Auto, TargetChannel::Voice, TargetChannel::Messaging] {
            prop_assert_eq!(
                validate(document, target),
                validate_without_fast_path(document, target),
                "{:?} as {:?}",
                String::from_utf8_lossy(document),
                target
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn on_twiml_like_documents(document in twiml_like()) {
            assert_agree(document.as_bytes())?;
        }

        #[test]
        fn on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            assert_agree(&bytes)?;
        }
    }

    #[test]
    fn the_generator_mostly_reaches_the_end_of_the_fast_walk() {
        // A property that the fast walk never finishes would prove nothing.
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = twiml_like();
        let finished = (0..1000)
            .filter(|_| {
                let document = strategy.new_tree(&mut runner).expect("a document").current();
                fast_walk_finishes(&document)
            })
            .count();
        assert!(
            finished > 250,
            "the fast walk finished {finished} of 1000 generated documents"
        );
    }
}
