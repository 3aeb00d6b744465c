//! Signature verification and URL handling on arbitrary input: no panic; what `compute_signature`
//! signs, the verifier accepts; a tampered request is refused.
//!
//! Input (so real vectors can seed it): `URL \n TOKEN \n SIGNATURE \n FORM-BODY`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twiml_fallback::signature::{Payload, SignatureVerifier, UrlPolicy, compute_signature, url_variants};
use twiml_fallback::webhook::Params;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |&byte| byte == b'\n');
    let url = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let token = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let signature = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();
    let params = Params::from_form(body);

    for _ in url_variants(&url) {}
    let _ = UrlPolicy::public_base(&url);
    let verifier = SignatureVerifier::new(token.as_ref());
    let _ = verifier.verify(&url, Payload::Form(&params), &signature);
    let _ = verifier.verify(&url, Payload::Body(body), &signature);
    let _ = verifier.verify(&url, Payload::UrlOnly, &signature);
    if verifier.is_empty() {
        return;
    }
    let good = compute_signature(&token, &url, params.iter());
    assert!(
        verifier.verify(&url, Payload::Form(&params), &good).is_ok(),
        "our own signature was refused"
    );
    // A parameter the request does not have (a repeat of an existing pair may be signed away:
    // the SDKs drop duplicate values).
    let mut added = String::from("Tampered");
    while params.get(&added).is_some() {
        added.push('_');
    }
    let tampered = Params::from_pairs(
        params
            .iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .chain([(added, "1".to_owned())]),
    );
    assert!(
        verifier.verify(&url, Payload::Form(&tampered), &good).is_err(),
        "a tampered request verified"
    );
});
