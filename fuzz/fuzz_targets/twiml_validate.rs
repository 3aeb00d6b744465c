//! The TwiML validator, the outline and the URL rebasing on arbitrary bytes: no panic, no hang, a
//! valid document's channel agrees with the target it was checked against, and the validator's
//! fast walk gives the full walk's report, diagnostic for diagnostic, for every target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twiml_fallback::twiml::{
    MAX_DOCUMENT_BYTES, TargetChannel, outline, resolve_relative_urls, validate, validate_without_fast_path,
};

fuzz_target!(|data: &[u8]| {
    for target in [TargetChannel::Auto, TargetChannel::Voice, TargetChannel::Messaging] {
        assert_eq!(
            validate(data, target),
            validate_without_fast_path(data, target),
            "the fast and the full walk disagree as {target:?}"
        );
    }
    let auto = validate(data, TargetChannel::Auto);
    if auto.is_valid() {
        assert!(data.len() <= MAX_DOCUMENT_BYTES, "a document over 64 KB validated");
        // A document valid for the channel it was detected as is valid under that channel's rules.
        if let Some(channel) = auto.channel() {
            let report = validate(data, TargetChannel::from(channel));
            assert!(
                report.is_valid(),
                "valid as {channel:?} when detected, not under its rules: {:?}",
                report.diagnostics()
            );
        }
    }
    for target in [TargetChannel::Voice, TargetChannel::Messaging] {
        let report = validate(data, target);
        assert!(
            !report.is_valid() || data.len() <= MAX_DOCUMENT_BYTES,
            "a document over 64 KB validated"
        );
    }
    let _ = outline(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let rebased = resolve_relative_urls(text, "https://app.example.com/twilio/voice?x=1");
        // Rebasing a valid document keeps it valid.
        if validate(data, TargetChannel::Auto).is_valid() {
            let report = validate(rebased.as_bytes(), TargetChannel::Auto);
            assert!(
                report.is_valid() || rebased.len() > MAX_DOCUMENT_BYTES,
                "rebasing broke {text:?}: {:?}",
                report.diagnostics()
            );
        }
    }
});
