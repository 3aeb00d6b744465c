//! Every X-Twilio-Signature vector from the official SDKs' test suites (see the fixture's `about`).

use serde_json::Value;
use twiml_fallback::signature::{Payload, SignatureVerifier, compute_signature};
use twiml_fallback::webhook::Params;

fn vectors() -> Vec<Value> {
    let text = include_str!("fixtures/sdk-signature-vectors.json");
    let document: Value = serde_json::from_str(text).expect("fixture is JSON");
    document["vectors"].as_array().expect("vectors array").clone()
}

fn params_of(vector: &Value) -> Option<Params> {
    let pairs = vector["params"].as_array()?;
    Some(Params::from_pairs(pairs.iter().map(|pair| {
        let key = pair[0].as_str().expect("key").to_owned();
        let value = pair[1].as_str().expect("value").to_owned();
        (key, value)
    })))
}

#[test]
fn every_sdk_vector_verifies_as_documented() {
    let vectors = vectors();
    assert!(vectors.len() >= 60, "fixture has {} vectors", vectors.len());
    let mut failures = Vec::new();
    for vector in &vectors {
        let id = vector["id"].as_str().expect("id");
        let verifier = SignatureVerifier::new(vector["token"].as_str().expect("token"));
        let url = vector["url"].as_str().expect("url");
        let signature = vector["signature"].as_str().expect("signature");
        let params = params_of(vector);
        let payload = match (&params, vector["body"].as_str()) {
            (_, Some(body)) => Payload::Body(body.as_bytes()),
            (Some(params), None) => Payload::Form(params),
            (None, None) => Payload::UrlOnly,
        };
        let accepted = verifier.verify(url, payload, signature).is_ok();
        if accepted != vector["we_return"].as_bool().expect("we_return") {
            failures.push(format!("{id}: accepted={accepted}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn vectors_we_accept_are_reproduced_by_compute_for_the_url_as_signed() {
    // For the positive form vectors whose signature is over the URL exactly as given, computing
    // must reproduce the SDK's signature byte for byte.
    let mut reproduced = 0;
    for vector in vectors() {
        let (Some(params), true) = (params_of(&vector), vector["we_return"].as_bool() == Some(true)) else {
            continue;
        };
        let token = vector["token"].as_str().expect("token");
        let url = vector["url"].as_str().expect("url");
        if compute_signature(token, url, &params) == vector["signature"].as_str().expect("signature") {
            reproduced += 1;
        }
    }
    assert!(reproduced >= 30, "only {reproduced} vectors reproduced exactly");
}
