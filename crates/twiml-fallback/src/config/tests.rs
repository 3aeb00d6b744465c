use super::*;
use crate::twiml::{self, TargetChannel};

fn errors(toml: &str) -> Vec<String> {
    match Config::from_toml(toml) {
        Ok(_) => panic!("expected errors for {toml}"),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

fn recovery(toml: &str) -> Recovery {
    match Config::from_toml(toml) {
        Ok(config) => config.recovery().cloned().expect("recovery configured"),
        Err(errors) => panic!("{errors}"),
    }
}

#[test]
fn empty_documents_give_the_embedded_defaults() {
    let defaults = Config::default();
    assert_eq!(Config::from_toml("").ok(), Some(defaults.clone()));
    assert_eq!(Config::from_json("{}").ok(), Some(defaults.clone()));
    assert_eq!(Config::from_str_auto("  \n").ok(), Some(defaults));
}

#[test]
fn defaults_render_valid_twiml_for_each_channel() {
    let config = Config::default();
    for channel in [Channel::Voice, Channel::Messaging] {
        let fallback = config.fallback(Some(channel), None);
        let report = twiml::validate(fallback.twiml.as_bytes(), channel.into());
        assert!(report.diagnostics().is_empty(), "{channel}: {:?}", report.diagnostics());
        assert_eq!(fallback.source, AnswerSource::Default);
    }
    assert!(
        config
            .fallback(Some(Channel::Voice), None)
            .twiml
            .contains(DEFAULT_VOICE_SAY)
    );
    assert!(
        config
            .fallback(Some(Channel::Messaging), None)
            .twiml
            .contains(DEFAULT_MESSAGING_MESSAGE)
    );
}

#[test]
fn unknown_channel_answers_an_empty_response() {
    let config = Config::default();
    let fallback = config.fallback(None, Some("+14155550199"));
    assert_eq!(fallback.twiml, UNKNOWN_CHANNEL_TWIML);
    assert_eq!(fallback.source, AnswerSource::UnknownChannel);
    for channel in [TargetChannel::Voice, TargetChannel::Messaging] {
        assert!(twiml::validate(UNKNOWN_CHANNEL_TWIML.as_bytes(), channel).is_valid());
    }
}

#[test]
fn the_documented_example_loads() {
    let config = Config::from_toml(
        r#"
        [voice]
        say = "An application error has occurred. Please call back later."
        voice = "Polly.Joanna"
        language = "en-US"
        loop = 2
        [messaging]
        message = "We're sorry. We are currently experiencing difficulties. Please try again later."
        [numbers."+14155550199".voice]
        say = "Lo sentimos…"
        language = "es-ES"
        [alerts]
        webhook_url = "https://hooks.example.com/services/T000/B000/XXXX"
        dedup_seconds = 300
        [recovery]
        allow_hosts = ["app.example.com"]
        timeout_ms = 4000
        "#,
    )
    .unwrap_or_else(|errors| panic!("{errors}"));
    assert!(
        config
            .voice()
            .twiml
            .contains(r#"<Say voice="Polly.Joanna" language="en-US" loop="2">"#)
    );
    assert_eq!(
        config.alerts(),
        Some(&Alerts {
            webhook_url: Some("https://hooks.example.com/services/T000/B000/XXXX".into()),
            email: Vec::new(),
            sms: Vec::new(),
            sms_sender: None,
            pagerduty_routing_key: None,
            pagerduty_url: DEFAULT_PAGERDUTY_URL.to_owned(),
            resolve_after_seconds: 300,
            remind_minutes: None,
            include_bodies: false,
            smtp: None,
            legacy_dedup_seconds: Some(300),
        })
    );
    let recovery = config.recovery().expect("recovery");
    assert_eq!(recovery.timeout_ms, 4000);
    assert!(!recovery.allow_http);
}

#[test]
fn json_documents_use_the_same_schema() {
    let config = Config::from_str_auto(
        r#"{"messaging": {"message": "Back soon", "media": ["https://cdn.example.com/a.png"]},
            "numbers": {"+14155550199": {"messaging": {"twiml": "<Response/>"}}}}"#,
    )
    .unwrap_or_else(|errors| panic!("{errors}"));
    let default = config.fallback(Some(Channel::Messaging), Some("+14155550100"));
    assert!(
        default.twiml.ends_with(
            "<Message><Body>Back soon</Body><Media>https://cdn.example.com/a.png</Media></Message></Response>"
        )
    );
    let silent = config.fallback(Some(Channel::Messaging), Some("+14155550199"));
    assert_eq!(silent.twiml, "<Response/>");
    assert_eq!(silent.source, AnswerSource::Number("+14155550199"));
}

#[test]
fn number_overrides_apply_only_to_their_number_and_channel() {
    let config = Config::from_toml(
        r#"
        [numbers."+14155550199".voice]
        play = "https://cdn.example.com/sorry-es.mp3"
        "#,
    )
    .unwrap_or_else(|errors| panic!("{errors}"));
    let overridden = config.fallback(Some(Channel::Voice), Some("+14155550199"));
    assert!(
        overridden
            .twiml
            .contains("<Play>https://cdn.example.com/sorry-es.mp3</Play>")
    );
    assert_eq!(
        config.fallback(Some(Channel::Voice), Some("+14155550100")).source,
        AnswerSource::Default
    );
    assert_eq!(
        config.fallback(Some(Channel::Messaging), Some("+14155550199")).source,
        AnswerSource::Default
    );
    let whatsapp = config.fallback(Some(Channel::Voice), Some("whatsapp:+14155550199"));
    assert_eq!(whatsapp.source, AnswerSource::Number("+14155550199"));
}

#[test]
fn every_problem_is_reported_by_path() {
    assert_eq!(
        errors(
            r#"
            colour = "blue"
            [voice]
            say = ""
            loop = -2
            language = "english please"
            [messaging]
            message = 42
            media = ["not a url", 7]
            [numbers."+14155550199".voice]
            voice = "Polly.Lucia"
            [numbers."555-0199"]
            messaging = { message = "hi" }
            [alerts]
            dedup_seconds = "soon"
            [recovery]
            allow_hosts = ["*", "app.example.com:99999", "ünicode.example"]
            timeout_ms = 60000
            "#
        ),
        [
            "colour: unknown key (expected one of: voice, messaging, numbers, alerts, recovery, inbox, replay)",
            "voice.say: empty",
            "voice.language: \"english please\" is not a language tag such as en-US",
            "voice.loop: must be between 0 and 1000",
            "messaging.message: must be a string, not a number",
            "messaging.media[0]: \"not a url\" is not an absolute http(s) URL",
            "messaging.media[1]: must be a URL string, not a number",
            "numbers.\"+14155550199\".voice: needs one of say, play or twiml",
            "numbers.555-0199: not an E.164 phone number (+ and 8 to 15 digits, e.g. \"+14155550199\")",
            "alerts.dedup_seconds: must be an integer, not a string",
            "alerts: no one to tell: set webhook_url, email, sms or pagerduty_routing_key (or remove [alerts])",
            "recovery.allow_hosts[0]: only a leading \"*.\" wildcard is supported",
            "recovery.allow_hosts[1]: \"99999\" is not a port",
            "recovery.allow_hosts[2]: must be ASCII: write internationalised names in their xn-- (punycode) form",
            "recovery.timeout_ms: must be between 100 and 10000",
        ]
    );
}

#[test]
fn raw_twiml_is_validated_with_the_channels_rules() {
    let found = errors(
        r#"
        [voice]
        twiml = "<Response><Message>hi</Message></Response>"
        [messaging]
        twiml = "<response><Message>hi</Message></response>"
        "#,
    );
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("voice.twiml: invalid voice TwiML: 1:11: error[12200]:"),
        "{}",
        found[0]
    );
    assert!(
        found[1].starts_with("messaging.twiml: invalid messaging TwiML: 1:1: error[12102]:"),
        "{}",
        found[1]
    );
}

#[test]
fn alternatives_and_misplaced_options_are_refused() {
    assert_eq!(
        errors("[voice]\nsay = \"a\"\nplay = \"https://x.example/a.mp3\""),
        ["voice: say, play and twiml are alternatives: give only one"]
    );
    assert_eq!(
        errors("[voice]\nplay = \"https://x.example/a.mp3\"\nvoice = \"alice\""),
        ["voice: voice and language only apply to say"]
    );
    assert_eq!(
        errors("[messaging]\nmessage = \"a\"\ntwiml = \"<Response/>\""),
        ["messaging: twiml replaces message and media: give one or the other"]
    );
    assert_eq!(
        errors("[numbers.\"+14155550199\"]"),
        ["numbers.\"+14155550199\": needs a voice or messaging section"]
    );
}

#[test]
fn messages_longer_than_twilio_sends_are_refused() {
    let long = "x".repeat(MAX_MESSAGE_CHARS + 1);
    assert_eq!(
        errors(&format!("[messaging]\nmessage = \"{long}\"")),
        ["messaging.message: 1601 characters; Twilio sends at most 1600"]
    );
}

#[test]
fn oversized_answers_are_refused_at_load() {
    let long = "x".repeat(70_000);
    let found = errors(&format!("[voice]\nsay = \"{long}\""));
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("voice: renders to invalid voice TwiML"),
        "{}",
        found[0]
    );
}

#[test]
fn syntax_errors_are_one_clear_error() {
    let toml = errors("[voice\nsay = 1");
    assert_eq!(toml.len(), 1);
    assert!(toml[0].starts_with("not valid TOML:"), "{}", toml[0]);
    let json = Config::from_json("{\"voice\": ").expect_err("bad JSON");
    assert!(json.to_string().starts_with("not valid JSON:"));
    assert_eq!(errors("voice = 3"), ["voice: must be a table, not a number"]);
}

#[test]
fn text_with_markup_is_escaped_not_injected() {
    let config =
        Config::from_toml("[messaging]\nmessage = \"</Message><Redirect>https://evil.example</Redirect><Message>\"")
            .unwrap_or_else(|errors| panic!("{errors}"));
    let twiml = &config.messaging().twiml;
    assert!(!twiml.contains("<Redirect>"), "{twiml}");
    let report = twiml::validate(twiml.as_bytes(), TargetChannel::Messaging);
    assert!(report.diagnostics().is_empty());
}

#[test]
fn recovery_allows_only_listed_hosts_over_https() {
    let recovery =
        recovery("[recovery]\nallow_hosts = [\"app.example.com\", \"*.example.org\", \"staging.example.net:8443\"]");
    for allowed in [
        "https://app.example.com/voice",
        "https://APP.Example.com/voice?x=1",
        "https://app.example.com:443/voice",
        "https://eu.example.org/sms",
        "https://a.b.example.org/",
        "https://staging.example.net:8443/v",
        "https://app.example.com\\@evil.example/",
    ] {
        assert_eq!(recovery.allows(allowed), Ok(()), "{allowed}");
    }
    for (refused, expected) in [
        ("http://app.example.com/voice", RecoveryRefusal::Scheme),
        ("ftp://app.example.com/", RecoveryRefusal::Scheme),
        ("https://user:pw@app.example.com/", RecoveryRefusal::UserInfo),
        ("https://app.example.com@evil.example/", RecoveryRefusal::UserInfo),
        ("https://evil.example\t@app.example.com/", RecoveryRefusal::UserInfo),
        ("/relative", RecoveryRefusal::NotAbsolute),
        ("https:///path", RecoveryRefusal::NotAbsolute),
    ] {
        assert_eq!(recovery.allows(refused), Err(expected), "{refused}");
    }
    for refused in [
        "https://evil.example/",
        "https://example.org/",
        "https://app.example.com.evil.example/",
        "https://evilexample.org/",
        "https://app.example.com:8443/",
        "https://staging.example.net/",
        "https://app.example.com./",
        "https://app%2eexample.com/",
        "https://ápp.example.com/",
        "https://xn--pp-gia.example.com/",
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://2130706433/",
        "https://0177.0.0.1/",
        "https://0x7f.0.0.1/",
        "https://127.1/",
        "https://[::ffff:127.0.0.1]/",
        "https://[0:0:0:0:0:0:0:1]/",
        "https://app.exa\tmple.com/",
        "https://evil.example#@app.example.com/",
        "https://evil.example\\@app.example.com/",
    ] {
        assert!(
            matches!(recovery.allows(refused), Err(RecoveryRefusal::HostNotAllowed(_))),
            "{refused}"
        );
    }
}

#[test]
fn recovery_http_and_ip_literals_need_explicit_opt_in() {
    let recovery = recovery("[recovery]\nallow_hosts = [\"10.0.0.5:8080\", \"[fd00::1]\"]\nallow_http = true");
    assert_eq!(recovery.allows("http://10.0.0.5:8080/voice"), Ok(()));
    assert_eq!(recovery.allows("https://[fd00::1]/voice"), Ok(()));
    assert_eq!(recovery.allows("http://[fd00::1]/voice"), Ok(()));
    assert!(recovery.allows("http://10.0.0.5/voice").is_err());
    assert!(recovery.allows("http://10.0.0.6:8080/voice").is_err());
}

#[test]
fn recovery_defaults_and_rule_display() {
    let recovery = recovery("[recovery]\nallow_hosts = [\"*.Example.com\", \"a.example.com:8443\"]");
    assert_eq!(recovery.timeout_ms, DEFAULT_RECOVERY_TIMEOUT_MS);
    let rules: Vec<String> = recovery.allow_hosts.iter().map(ToString::to_string).collect();
    assert_eq!(rules, ["*.example.com", "a.example.com:8443"]);
    assert_eq!(
        errors("[recovery]\nallow_hosts = []"),
        ["recovery.allow_hosts: empty (list at least one host)"]
    );
    assert_eq!(
        errors("[recovery]\nallow_hosts = [\"*.com\"]"),
        ["recovery.allow_hosts[0]: a wildcard needs at least two labels after \"*.\" (e.g. *.example.com)"]
    );
    assert_eq!(
        errors("[recovery]\nallow_hosts = [\"*.0.0.5\"]"),
        ["recovery.allow_hosts[0]: a wildcard covers host names, not IP addresses"]
    );
}

#[test]
fn alerts_resolve_after_a_quiet_quarter_hour_by_default() {
    let config = Config::from_toml("[alerts]\nwebhook_url = \"https://hooks.example.com/x\"")
        .unwrap_or_else(|errors| panic!("{errors}"));
    let alerts = config.alerts().expect("alerts");
    assert_eq!(alerts.resolve_after_seconds, DEFAULT_RESOLVE_AFTER_SECONDS);
    assert_eq!(alerts.remind_minutes, None);
    assert!(!alerts.include_bodies);
    assert_eq!(alerts.legacy_dedup_seconds, None);
}

#[test]
fn every_sink_loads_with_its_keys() {
    let config = Config::from_toml(
        r#"
        [alerts]
        webhook_url = "https://hooks.slack.com/services/T000/B000/XXXX"
        email = ["ops@example.com", "oncall+fallback@example.org"]
        sms = ["+14155550100", "+14155550101"]
        messaging_service_sid = "MG0123456789abcdef0123456789abcdef"
        pagerduty_routing_key = "0123456789abcdef0123456789ABCDEF"
        pagerduty_url = "http://127.0.0.1:9000/v2/enqueue"
        resolve_after_seconds = 5
        remind_minutes = 30
        include_bodies = true
        [alerts.smtp]
        url = "smtps://alerts%40example.com@smtp.example.com"
        from = "twiml-fallback <alerts@example.com>"
        "#,
    )
    .unwrap_or_else(|errors| panic!("{errors}"));
    let alerts = config.alerts().expect("alerts");
    assert_eq!(alerts.email, ["ops@example.com", "oncall+fallback@example.org"]);
    assert_eq!(alerts.sms, ["+14155550100", "+14155550101"]);
    assert_eq!(
        alerts.sms_sender,
        Some(SmsSender::MessagingService(
            "MG0123456789abcdef0123456789abcdef".to_owned()
        ))
    );
    assert_eq!(
        alerts.pagerduty_routing_key.as_ref().map(Secret::expose),
        Some("0123456789abcdef0123456789ABCDEF")
    );
    assert!(
        !format!("{alerts:?}").contains("0123456789abcdef0123456789ABCDEF"),
        "the key stays out of Debug"
    );
    assert_eq!(alerts.pagerduty_url, "http://127.0.0.1:9000/v2/enqueue");
    assert_eq!((alerts.resolve_after_seconds, alerts.remind_minutes), (5, Some(30)));
    assert!(alerts.include_bodies);
    let smtp = alerts.smtp.as_ref().expect("smtp");
    assert_eq!(smtp.from, "twiml-fallback <alerts@example.com>");
    assert_eq!(smtp.from_address, "alerts@example.com");
    assert_eq!(
        smtp.url,
        Some(SmtpUrl {
            security: SmtpSecurity::ImplicitTls,
            host: "smtp.example.com".to_owned(),
            port: 465,
            username: Some("alerts@example.com".to_owned()),
        })
    );
}

#[test]
fn smtp_urls_choose_how_the_connection_is_secured() {
    let url = |text: &str| {
        Config::from_toml(&format!(
            "[alerts]\nemail = [\"ops@example.com\"]\n[alerts.smtp]\nurl = \"{text}\"\nfrom = \"a@example.com\""
        ))
        .map(|config| {
            config
                .alerts()
                .and_then(|alerts| alerts.smtp.clone())
                .and_then(|smtp| smtp.url)
        })
        .map_err(|errors| errors.to_string())
    };
    let parsed = url("smtp://smtp.example.com").expect("STARTTLS");
    assert_eq!(
        parsed.map(|u| (u.security, u.port)),
        Some((SmtpSecurity::StartTls, 587))
    );
    let parsed = url("smtp://127.0.0.1:2525").expect("a local relay");
    assert_eq!(parsed.map(|u| (u.security, u.port)), Some((SmtpSecurity::Plain, 2525)));
    let parsed = url("smtps://smtp.example.com:2465").expect("implicit TLS");
    assert_eq!(
        parsed.map(|u| (u.security, u.port)),
        Some((SmtpSecurity::ImplicitTls, 2465))
    );
    for (bad, message) in [
        (
            "https://smtp.example.com",
            "the scheme must be smtp:// (STARTTLS) or smtps:// (implicit TLS)",
        ),
        (
            "smtp://user:hunter2@smtp.example.com",
            "must not be in the URL: put it in TWIML_FALLBACK_SMTP_PASSWORD",
        ),
        ("smtp://smtp.example.com:0", "the port must be 1 to 65535"),
        ("smtp://smtp.example.com/path", "no path or query"),
        ("not a url", "is not a URL"),
    ] {
        let error = url(bad).expect_err(bad);
        assert!(error.starts_with("alerts.smtp.url: "), "{error}");
        assert!(error.contains(message), "{bad}: {error}");
        assert!(!error.contains("hunter2"), "a password is never echoed: {error}");
    }
}

#[test]
fn every_bad_alert_key_is_reported_clearly() {
    assert_eq!(
        errors(
            r#"
            [alerts]
            webhook_url = "hooks.example.com"
            email = ["ops@", "not an address", 7]
            sms = ["555-0100"]
            sms_from = "+14155550199"
            messaging_service_sid = "MG123"
            pagerduty_routing_key = "short-secret-key"
            pagerduty_url = "ftp://events.example.com"
            resolve_after_seconds = 0
            remind_minutes = -1
            include_bodies = "yes"
            [alerts.smtp]
            from = "<broken"
            "#
        ),
        [
            "alerts.webhook_url: is not an absolute http(s) URL (e.g. https://hooks.slack.com/services/…; the value is not shown: it may hold a secret)",
            "alerts.email[0]: \"ops@\" is not an email address (name@example.com)",
            "alerts.email[1]: \"not an address\" is not an email address (name@example.com)",
            "alerts.email[2]: must be a string, not a number",
            "alerts.sms[0]: \"555-0100\" is not an E.164 phone number (+ and 8 to 15 digits, e.g. \"+14155550100\")",
            "alerts.messaging_service_sid: \"MG123\" is not a Messaging Service SID (MG and 32 hex digits)",
            "alerts.pagerduty_routing_key: must be the 32 letters and digits of an Events API v2 integration key (16 characters given)",
            "alerts.pagerduty_url: \"ftp://events.example.com\" is not an absolute http(s) URL",
            "alerts.resolve_after_seconds: must be between 1 and 604800",
            "alerts.remind_minutes: must be between 0 and 10080",
            "alerts.include_bodies: must be true or false, not a string",
            "alerts.smtp.from: \"<broken\" is not an address (alerts@example.com or \"Name <alerts@example.com>\")",
        ]
    );
    assert_eq!(
        errors("[alerts]\nsms = [\"+14155550100\"]"),
        ["alerts.sms: needs sms_from (a number of the account) or messaging_service_sid (MG…) to send from"]
    );
    assert_eq!(
        errors("[alerts]\nemail = [\"ops@example.com\"]"),
        ["alerts.email: needs [alerts.smtp] with from (and, for serve, url: the relay to send through)"]
    );
    assert_eq!(
        errors(
            "[alerts]\nsms = [\"+14155550100\"]\nsms_from = \"+14155550199\"\nmessaging_service_sid = \"MG0123456789abcdef0123456789abcdef\""
        ),
        ["alerts.sms_from: give sms_from or messaging_service_sid, not both"]
    );
    assert_eq!(
        errors("[alerts.smtp]\nurl = \"smtp://smtp.example.com\"\n[alerts]\nwebhook_url = \"https://h.example.com\""),
        ["alerts.smtp.from: missing (the address alerts are sent from)"]
    );
}

#[test]
fn a_retired_dedup_window_is_read_as_the_quiet_period() {
    let config = Config::from_toml("[alerts]\nwebhook_url = \"https://hooks.example.com/x\"\ndedup_seconds = 0")
        .unwrap_or_else(|errors| panic!("{errors}"));
    let alerts = config.alerts().expect("alerts");
    assert_eq!(
        (alerts.legacy_dedup_seconds, alerts.resolve_after_seconds),
        (Some(0), 1)
    );
    let config = Config::from_toml(
        "[alerts]\nwebhook_url = \"https://hooks.example.com/x\"\ndedup_seconds = 300\nresolve_after_seconds = 60",
    )
    .unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(
        config.alerts().map(|a| a.resolve_after_seconds),
        Some(60),
        "the new key wins"
    );
}

#[test]
fn toml_dates_and_other_types_are_type_errors_not_panics() {
    let found = errors("[voice]\nsay = 1979-05-27T07:32:00Z");
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("voice.say: must be a string"), "{}", found[0]);
}

#[test]
fn variables_apply_over_the_document() {
    let document =
        "[voice]\nplay = \"https://cdn.example.com/sorry.mp3\"\n[messaging]\nmessage = \"from the document\"";
    let vars = |name: &str| match name {
        "FALLBACK_VOICE_SAY" => Some("Sorry, back soon.".to_owned()),
        "FALLBACK_VOICE_LANGUAGE" => Some("en-GB".to_owned()),
        "FALLBACK_ALERT_WEBHOOK_URL" => Some("https://hooks.example.com/a".to_owned()),
        "FALLBACK_ALERT_DEDUP_SECONDS" => Some("120".to_owned()),
        "FALLBACK_RECOVERY_ALLOW_HOSTS" => Some("app.example.com, *.example.org".to_owned()),
        "FALLBACK_MESSAGING_MESSAGE" => Some("  ".to_owned()),
        _ => None,
    };
    let config = Config::from_sources(Some(document), vars).unwrap_or_else(|errors| panic!("{errors}"));
    assert!(
        config
            .voice()
            .twiml
            .contains(r#"<Say language="en-GB">Sorry, back soon.</Say>"#),
        "{}",
        config.voice().twiml
    );
    assert!(
        config.messaging().twiml.contains("from the document"),
        "an empty variable changes nothing"
    );
    assert_eq!(config.alerts().map(|a| a.resolve_after_seconds), Some(120));
    assert_eq!(config.recovery().map(|r| r.allow_hosts.len()), Some(2));
    assert_eq!(Config::from_sources(None, |_| None).ok(), Some(Config::default()));
    assert_eq!(Config::from_sources(Some("  "), |_| None).ok(), Some(Config::default()));
}

#[test]
fn bad_variables_are_reported_by_name() {
    let errors = Config::from_sources(None, |name| match name {
        "FALLBACK_ALERT_DEDUP_SECONDS" => Some("soon".to_owned()),
        "FALLBACK_RECOVERY_TIMEOUT_MS" => Some("-5".to_owned()),
        _ => None,
    })
    .expect_err("bad numbers");
    assert_eq!(
        errors.to_string(),
        "FALLBACK_ALERT_DEDUP_SECONDS: \"soon\" is not a whole number (sets alerts.dedup_seconds)\nFALLBACK_RECOVERY_TIMEOUT_MS: \"-5\" is not a whole number (sets recovery.timeout_ms)"
    );
    let json = Config::from_sources(Some("{\"voice\": {\"say\": \"hi\"}}"), |_| None).expect("JSON documents too");
    assert!(json.voice().twiml.contains("<Say>hi</Say>"));
    assert!(Config::from_sources(Some("[voice\n"), |_| None).is_err());
}

fn vars_from(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    |name| {
        pairs
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, value)| (*value).to_owned())
    }
}

#[test]
fn a_configuration_that_loads_is_served_as_it_is_with_no_errors() {
    let document = "[voice]\nsay = \"From the document.\"";
    let vars = vars_from(&[("FALLBACK_MESSAGING_MESSAGE", "From a variable.")]);
    let served = Config::from_sources_or_defaults(Some(document), &vars);
    assert_eq!(served.errors, None);
    assert_eq!(Some(served.config), Config::from_sources(Some(document), &vars).ok());
    assert_eq!(served.variables, ["FALLBACK_MESSAGING_MESSAGE"]);
}

#[test]
fn a_broken_document_serves_the_variables_over_the_defaults_and_lists_its_problems() {
    let vars = vars_from(&[
        ("FALLBACK_VOICE_SAY", "From a var: call back soon."),
        ("FALLBACK_ALERT_WEBHOOK_URL", "https://hooks.example.com/a"),
    ]);
    for document in [
        "[voice]\nsay = 42\n[nonsense",
        "{\"voice\": ",
        "[messaging]\nmesage = \"typo\"",
    ] {
        let served = Config::from_sources_or_defaults(Some(document), &vars);
        let expected = Config::from_sources(None, &vars).expect("the variables alone load");
        assert_eq!(served.config, expected, "{document}");
        assert!(served.config.voice().twiml.contains("From a var: call back soon."));
        assert_eq!(served.config.messaging(), Config::default().messaging(), "{document}");
        assert_eq!(
            served.config.alerts().and_then(|alerts| alerts.webhook_url.as_deref()),
            Some("https://hooks.example.com/a")
        );
        assert_eq!(served.variables, ["FALLBACK_VOICE_SAY", "FALLBACK_ALERT_WEBHOOK_URL"]);
        let errors = served.errors.expect("the document's problems").to_string();
        assert_eq!(
            Some(errors.as_str()),
            Config::from_sources(Some(document), |_| None)
                .err()
                .map(|errors| errors.to_string())
                .as_deref(),
            "exactly the document's problems"
        );
    }
}

#[test]
fn one_bad_variable_costs_only_its_own_section() {
    let vars = vars_from(&[
        ("FALLBACK_VOICE_SAY", "Still said."),
        ("FALLBACK_ALERT_WEBHOOK_URL", "https://hooks.example.com/a"),
        ("FALLBACK_ALERT_DEDUP_SECONDS", "soon"),
        ("FALLBACK_RECOVERY_ALLOW_HOSTS", "app.example.com"),
    ]);
    let document = "[messaging]\nmessage = \"From the document.\"";
    let served = Config::from_sources_or_defaults(Some(document), &vars);
    assert!(served.config.voice().twiml.contains("Still said."));
    assert_eq!(
        served.config.alerts(),
        None,
        "the broken section is left at its default"
    );
    assert_eq!(served.config.recovery().map(|r| r.allow_hosts.len()), Some(1));
    assert_eq!(
        served.variables,
        ["FALLBACK_VOICE_SAY", "FALLBACK_RECOVERY_ALLOW_HOSTS"]
    );
    assert_eq!(
        served.errors.map(|errors| errors.to_string()).as_deref(),
        Some("FALLBACK_ALERT_DEDUP_SECONDS: \"soon\" is not a whole number (sets alerts.dedup_seconds)")
    );
}

#[test]
fn a_document_and_variables_that_only_fail_together_report_why_and_serve_the_variables() {
    // The document plays a file; a voice for <Say> alone does not go with it.
    let document = "[voice]\nplay = \"https://cdn.example.com/sorry.mp3\"";
    let vars = vars_from(&[("FALLBACK_VOICE_VOICE", "Polly.Joanna")]);
    assert!(Config::from_sources(Some(document), |_| None).is_ok());
    let served = Config::from_sources_or_defaults(Some(document), &vars);
    let errors = served.errors.expect("the combination's problem").to_string();
    assert!(errors.contains("voice and language only apply to say"), "{errors}");
    assert!(
        served.config.voice().twiml.contains(r#"<Say voice="Polly.Joanna">"#),
        "{}",
        served.config.voice().twiml
    );
    assert_eq!(served.variables, ["FALLBACK_VOICE_VOICE"]);
}

#[test]
fn every_variable_belongs_to_a_section_that_loads_on_its_own() {
    for (name, path, _) in VARIABLES {
        let section = variables::section_of(name).unwrap_or_else(|| panic!("{name} has no section"));
        assert!(path.starts_with(&format!("{section}.")), "{name} sets {path}");
    }
    assert_eq!(variables::section_of("FALLBACK_CONFIG"), None);
}

#[test]
fn the_inbox_section_sets_retention_and_cap_and_defaults_otherwise() {
    let config = Config::from_toml("[inbox]\nretention_days = 7\nmax_entries = 500\n").expect("valid");
    assert_eq!(
        config.inbox(),
        InboxSettings {
            retention_days: 7,
            max_entries: 500
        }
    );
    assert_eq!(
        Config::default().inbox(),
        InboxSettings {
            retention_days: 30,
            max_entries: 100_000
        }
    );
    let errors = Config::from_toml("[inbox]\nretention_days = 0\nkeep = true\n")
        .expect_err("an error")
        .to_string();
    assert!(
        errors.contains("inbox.retention_days: must be between 1 and 3650"),
        "{errors}"
    );
    assert!(errors.contains("inbox.keep: unknown key"), "{errors}");
    let from_variables = Config::from_sources(None, |name| {
        (name == "FALLBACK_INBOX_RETENTION_DAYS").then(|| "3".to_owned())
    })
    .expect("valid");
    assert_eq!(from_variables.inbox().retention_days, 3);
}

#[test]
fn without_a_replay_section_replay_uses_its_defaults() {
    assert_eq!(
        Config::default().replay(),
        &ReplaySettings {
            url: None,
            min_interval_seconds: 30,
            max_attempts: 50,
            send_replies: true,
            reply_window_minutes: 60,
            missed_call_sms: None,
        }
    );
    assert_eq!(ReplaySettings::default(), Config::default().replay().clone());
    assert_eq!(
        (
            DEFAULT_MIN_INTERVAL_SECONDS,
            MAX_REPLAY_INTERVAL_SECONDS,
            DEFAULT_MAX_ATTEMPTS,
            DEFAULT_REPLY_WINDOW_MINUTES
        ),
        (30, 900, 50, 60)
    );
    let empty = Config::from_toml("[replay]\n").unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(empty.replay(), &ReplaySettings::default());
}

#[test]
fn the_replay_section_sets_every_key() {
    let config = Config::from_toml(
        r#"
        [replay]
        url = " https://app.example.com/replay "
        min_interval_seconds = 5
        max_attempts = 10000
        send_replies = false
        reply_window_minutes = 10080
        missed_call_sms = "  Sorry we missed your call — text us here.  "
        "#,
    )
    .unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(
        config.replay(),
        &ReplaySettings {
            url: Some("https://app.example.com/replay".to_owned()),
            min_interval_seconds: 5,
            max_attempts: 10_000,
            send_replies: false,
            reply_window_minutes: 10_080,
            missed_call_sms: Some("Sorry we missed your call — text us here.".to_owned()),
        }
    );
    // The bounds themselves are accepted.
    let bounds = Config::from_toml(
        "[replay]\nmin_interval_seconds = 900\nmax_attempts = 1\nreply_window_minutes = 1\nsend_replies = true",
    )
    .unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(
        (
            bounds.replay().min_interval_seconds,
            bounds.replay().max_attempts,
            bounds.replay().reply_window_minutes,
            bounds.replay().send_replies
        ),
        (900, 1, 1, true)
    );
    // JSON documents use the same keys.
    let json = Config::from_json(r#"{"replay": {"max_attempts": 7, "send_replies": false}}"#)
        .unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!((json.replay().max_attempts, json.replay().send_replies), (7, false));
}

#[test]
fn every_replay_problem_is_reported_by_path() {
    assert_eq!(
        errors(
            r#"
            [replay]
            url = "/relative"
            min_interval_seconds = 0
            max_attempts = 10001
            send_replies = "yes"
            reply_window_minutes = 10081
            missed_call_sms = 42
            colour = "blue"
            "#
        ),
        [
            "replay.colour: unknown key (expected one of: url, min_interval_seconds, max_attempts, send_replies, reply_window_minutes, missed_call_sms)",
            "replay.url: \"/relative\" is not an absolute http(s) URL",
            "replay.min_interval_seconds: must be between 1 and 900",
            "replay.max_attempts: must be between 1 and 10000",
            "replay.send_replies: must be true or false, not a string",
            "replay.reply_window_minutes: must be between 1 and 10080",
            "replay.missed_call_sms: must be a string, not a number",
        ]
    );
    for (toml, expected) in [
        (
            "min_interval_seconds = 901",
            "replay.min_interval_seconds: must be between 1 and 900",
        ),
        (
            "min_interval_seconds = -1",
            "replay.min_interval_seconds: must be between 1 and 900",
        ),
        (
            "min_interval_seconds = 1.5",
            "replay.min_interval_seconds: must be an integer, not a number",
        ),
        ("max_attempts = 0", "replay.max_attempts: must be between 1 and 10000"),
        (
            "max_attempts = \"50\"",
            "replay.max_attempts: must be an integer, not a string",
        ),
        (
            "reply_window_minutes = 0",
            "replay.reply_window_minutes: must be between 1 and 10080",
        ),
        (
            "send_replies = 1",
            "replay.send_replies: must be true or false, not a number",
        ),
        (
            "send_replies = [true]",
            "replay.send_replies: must be true or false, not an array",
        ),
        ("url = \"\"", "replay.url: empty"),
        (
            "url = \"ftp://app.example.com/\"",
            "replay.url: \"ftp://app.example.com/\" is not an absolute http(s) URL",
        ),
        ("missed_call_sms = \"  \"", "replay.missed_call_sms: empty"),
    ] {
        assert_eq!(errors(&format!("[replay]\n{toml}")), [expected], "{toml}");
    }
    assert_eq!(errors("replay = 3"), ["replay: must be a table, not a number"]);
}

#[test]
fn a_missed_call_sms_longer_than_twilio_sends_is_refused() {
    let longest = "é".repeat(MAX_MESSAGE_CHARS);
    let config = Config::from_toml(&format!("[replay]\nmissed_call_sms = \"{longest}\""))
        .unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(
        config
            .replay()
            .missed_call_sms
            .as_deref()
            .map(|text| text.chars().count()),
        Some(MAX_MESSAGE_CHARS),
        "counted in characters, not bytes"
    );
    let found = errors(&format!("[replay]\nmissed_call_sms = \"{longest}x\""));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("replay.missed_call_sms: 1601 characters") && found[0].contains("at most 1600"),
        "{}",
        found[0]
    );
}

#[test]
fn replay_variables_apply_over_the_document_and_are_reported_by_name() {
    let vars = vars_from(&[
        ("FALLBACK_REPLAY_URL", "https://app.example.com/replay"),
        ("FALLBACK_REPLAY_MIN_INTERVAL_SECONDS", "15"),
        ("FALLBACK_REPLAY_MAX_ATTEMPTS", "12"),
        ("FALLBACK_REPLAY_REPLY_WINDOW_MINUTES", "30"),
        ("FALLBACK_REPLAY_MISSED_CALL_SMS", "Sorry we missed you."),
    ]);
    let document = "[replay]\nmax_attempts = 3\nsend_replies = false";
    let config = Config::from_sources(Some(document), &vars).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(
        config.replay(),
        &ReplaySettings {
            url: Some("https://app.example.com/replay".to_owned()),
            min_interval_seconds: 15,
            max_attempts: 12,
            send_replies: false,
            reply_window_minutes: 30,
            missed_call_sms: Some("Sorry we missed you.".to_owned()),
        },
        "the variables win; what they do not set stays the document's"
    );
    assert_eq!(
        variables_in_use(&vars),
        [
            "FALLBACK_REPLAY_URL",
            "FALLBACK_REPLAY_MIN_INTERVAL_SECONDS",
            "FALLBACK_REPLAY_MAX_ATTEMPTS",
            "FALLBACK_REPLAY_REPLY_WINDOW_MINUTES",
            "FALLBACK_REPLAY_MISSED_CALL_SMS",
        ]
    );
    // Not a number: reported by the variable's name.
    let errors = Config::from_sources(None, vars_from(&[("FALLBACK_REPLAY_MAX_ATTEMPTS", "lots")]))
        .expect_err("not a number")
        .to_string();
    assert_eq!(
        errors,
        "FALLBACK_REPLAY_MAX_ATTEMPTS: \"lots\" is not a whole number (sets replay.max_attempts)"
    );
    // Out of range: checked like the document's own setting.
    let errors = Config::from_sources(None, vars_from(&[("FALLBACK_REPLAY_MIN_INTERVAL_SECONDS", "0")]))
        .expect_err("out of range")
        .to_string();
    assert_eq!(errors, "replay.min_interval_seconds: must be between 1 and 900");
    // A bad replay variable costs only the replay section.
    let served = Config::from_sources_or_defaults(
        None,
        vars_from(&[
            ("FALLBACK_VOICE_SAY", "Still said."),
            ("FALLBACK_REPLAY_REPLY_WINDOW_MINUTES", "forever"),
        ]),
    );
    assert!(served.config.voice().twiml.contains("Still said."));
    assert_eq!(served.config.replay(), &ReplaySettings::default());
    assert_eq!(served.variables, ["FALLBACK_VOICE_SAY"]);
    assert!(
        served
            .errors
            .is_some_and(|errors| errors.to_string().contains("FALLBACK_REPLAY_REPLY_WINDOW_MINUTES")),
    );
}

#[test]
fn send_replies_is_set_by_its_variable_as_true_or_false_only() {
    let off = vars_from(&[("FALLBACK_REPLAY_SEND_REPLIES", "false")]);
    let config = Config::from_sources(None, &off).unwrap_or_else(|errors| panic!("{errors}"));
    assert!(!config.replay().send_replies);
    let on = vars_from(&[("FALLBACK_REPLAY_SEND_REPLIES", "true")]);
    let config =
        Config::from_sources(Some("[replay]\nsend_replies = false"), &on).unwrap_or_else(|errors| panic!("{errors}"));
    assert!(config.replay().send_replies, "the variable wins over the document");
    let bad = vars_from(&[("FALLBACK_REPLAY_SEND_REPLIES", "yes")]);
    let errors = Config::from_sources(None, &bad).expect_err("refused").to_string();
    assert!(
        errors.contains("FALLBACK_REPLAY_SEND_REPLIES: \"yes\" is not true or false (sets replay.send_replies)"),
        "{errors}"
    );
}
