//! Every X-Twilio-Signature vector from the official SDKs' test suites and DESIGN §3 (see the
//! fixture's `about`).

#[path = "support/signature_vectors.rs"]
mod signature_vectors;

use signature_vectors::Vector;
use twiml_fallback::signature::{Payload, SignatureVerifier, compute_signature};
use twiml_fallback::webhook::Params;

fn params_of(vector: &Vector) -> Option<Params> {
    vector.params.clone().map(Params::from_pairs)
}

#[test]
fn every_sdk_vector_verifies_as_documented() {
    let vectors = signature_vectors::all();
    assert!(vectors.len() >= 60, "fixture has {} vectors", vectors.len());
    let mut failures = Vec::new();
    for vector in &vectors {
        let verifier = SignatureVerifier::new(vector.token.as_str());
        let params = params_of(vector);
        let payload = match (&params, &vector.body) {
            (_, Some(body)) => Payload::Body(body.as_bytes()),
            (Some(params), None) => Payload::Form(params),
            (None, None) => Payload::UrlOnly,
        };
        let accepted = verifier.verify(&vector.url, payload, &vector.signature).is_ok();
        if accepted != vector.we_return {
            failures.push(format!("{}: accepted={accepted}", vector.id));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn vectors_we_accept_are_reproduced_by_compute_for_the_url_as_signed() {
    // For the positive form vectors whose signature is over the URL exactly as given, computing
    // must reproduce the SDK's signature byte for byte.
    let mut reproduced = 0;
    for vector in signature_vectors::all() {
        let (Some(params), true) = (params_of(&vector), vector.we_return) else {
            continue;
        };
        if compute_signature(&vector.token, &vector.url, &params) == vector.signature {
            reproduced += 1;
        }
    }
    assert!(reproduced >= 30, "only {reproduced} vectors reproduced exactly");
}

#[test]
fn the_design_vectors_are_all_in_the_fixture_and_accepted() {
    let design = signature_vectors::design();
    let ids: Vec<&str> = design.iter().map(|vector| vector.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "base",
            "https_443_as_signed",
            "http_80_as_signed",
            "http_port_1234_kept",
            "https_port_1234_stripped",
            "creds_user_pass",
            "dup_values_sorted_dedup",
            "body_sha256",
        ]
    );
    assert!(design.iter().all(|vector| vector.we_return && vector.token == "12345"));
}
