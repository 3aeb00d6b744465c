//! Configuration loading on arbitrary text (TOML or JSON) and variables: no panic; whatever loads
//! answers only valid TwiML for each channel, within 64 KB.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twiml_fallback::Channel;
use twiml_fallback::config::{Config, VARIABLES};
use twiml_fallback::twiml::{MAX_DOCUMENT_BYTES, TargetChannel, validate};

fn check(config: &Config, numbers: &[&str]) {
    for channel in [None, Some(Channel::Voice), Some(Channel::Messaging)] {
        for to in numbers.iter().map(|number| Some(*number)).chain([None]) {
            let answer = config.fallback(channel, to);
            assert!(answer.twiml.len() <= MAX_DOCUMENT_BYTES);
            let report = validate(answer.twiml.as_bytes(), TargetChannel::from(channel));
            assert!(
                report.is_valid(),
                "{:?} answers invalid TwiML: {}\n{:?}",
                channel,
                answer.twiml,
                report.diagnostics()
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let numbers = ["+14155550199", "+14155550100"];
    if let Ok(config) = Config::from_str_auto(text) {
        check(&config, &numbers);
    }
    // The same text as every per-field variable's value, over the text as a document.
    if let Ok(config) = Config::from_sources(Some(text), |name| {
        VARIABLES
            .iter()
            .any(|(variable, ..)| *variable == name)
            .then(|| text.to_owned())
    }) {
        check(&config, &numbers);
    }
    if let Ok(config) = Config::from_sources(None, |_| Some(text.to_owned())) {
        check(&config, &numbers);
    }
});
