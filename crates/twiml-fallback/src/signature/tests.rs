//! Vectors from DESIGN §3 and the official SDKs' test suites, read from the shared fixture
//! (`tests/fixtures/sdk-signature-vectors.json`), and the rules around them.

#[path = "../../tests/support/signature_vectors.rs"]
mod signature_vectors;

use super::*;
use signature_vectors::{Vector, by_id};

/// The DESIGN §3 token and URL, for the tests that sign requests of their own.
const TOKEN: &str = "12345";
const BASE_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

fn params_of(vector: &Vector) -> Params {
    Params::from_pairs(vector.params.clone().expect("a form vector"))
}

/// The DESIGN §3 parameters.
fn design_params() -> Params {
    params_of(&by_id("base"))
}

fn verifier() -> SignatureVerifier {
    SignatureVerifier::new(TOKEN)
}

#[test]
fn the_base_vector_is_the_token_and_url_the_other_tests_sign_with() {
    let base = by_id("base");
    assert_eq!((base.token.as_str(), base.url.as_str()), (TOKEN, BASE_URL));
}

#[test]
fn design_vectors_compute_exactly() {
    for id in [
        "base",
        "https_443_as_signed",
        "http_80_as_signed",
        "http_port_1234_kept",
        "creds_user_pass",
        "dup_values_sorted_dedup",
    ] {
        let vector = by_id(id);
        let params = params_of(&vector);
        assert_eq!(
            compute_signature(&vector.token, &vector.url, &params),
            vector.signature,
            "{id}"
        );
        assert!(
            verifier()
                .verify(&vector.url, Payload::Form(&params), &vector.signature)
                .is_ok(),
            "{id}"
        );
    }
}

#[test]
fn parameter_order_does_not_matter() {
    let base = by_id("base");
    let mut reversed = base.params.clone().expect("a form vector");
    reversed.reverse();
    let reversed = Params::from_pairs(reversed);
    assert_eq!(compute_signature(TOKEN, BASE_URL, &reversed), base.signature);
}

#[test]
fn url_with_port_verifies_against_the_port_stripped_signature() {
    let vector = by_id("https_port_1234_stripped");
    assert_eq!(vector.signature, by_id("base").signature);
    let verified = verifier()
        .verify(&vector.url, Payload::Form(&params_of(&vector)), &vector.signature)
        .expect("port-stripped form verifies");
    assert_eq!(verified.url_variant, UrlVariant::PortRemoved);
}

#[test]
fn url_without_port_verifies_against_the_default_port_signature() {
    for (without_port, as_signed) in [
        ("https_add_443", "https_443_as_signed"),
        ("http_add_80", "http_80_as_signed"),
    ] {
        let (vector, as_signed) = (by_id(without_port), by_id(as_signed));
        assert_eq!(vector.signature, as_signed.signature, "{without_port}");
        let verified = verifier().verify(&vector.url, Payload::Form(&params_of(&vector)), &vector.signature);
        assert_eq!(
            verified.map(|v| v.url_variant),
            Ok(UrlVariant::DefaultPortAdded),
            "{without_port}"
        );
    }
}

#[test]
fn userinfo_is_part_of_the_signed_url() {
    let with_userinfo = by_id("creds_user_pass");
    let params = params_of(&with_userinfo);
    assert!(
        verifier()
            .verify(&with_userinfo.url, Payload::Form(&params), &with_userinfo.signature)
            .is_ok()
    );
    assert_eq!(
        verifier().verify(BASE_URL, Payload::Form(&params), &with_userinfo.signature),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn repeated_values_are_sorted_and_deduplicated_like_the_sdks() {
    let vector = by_id("dup_values_sorted_dedup");
    let pairs = vector.params.clone().expect("a form vector");
    let params = Params::from_pairs(pairs.clone());
    assert!(
        verifier()
            .verify(&vector.url, Payload::Form(&params), &vector.signature)
            .is_ok()
    );
    // The same values with the duplicate dropped verify too; with one value less they do not.
    let mut without_duplicate = pairs.clone();
    let last = without_duplicate.pop().expect("a repeated value");
    assert!(without_duplicate.contains(&last), "{pairs:?} ends with a duplicate");
    let without_duplicate = Params::from_pairs(without_duplicate);
    assert!(
        verifier()
            .verify(&vector.url, Payload::Form(&without_duplicate), &vector.signature)
            .is_ok()
    );
    let one_value_less: Vec<_> = pairs.iter().filter(|pair| **pair != last).cloned().collect();
    assert!(one_value_less.len() < pairs.len() - 1);
    assert_eq!(
        verifier().verify(
            &vector.url,
            Payload::Form(&Params::from_pairs(one_value_less)),
            &vector.signature
        ),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_signature_over_kept_duplicates_also_verifies() {
    let params = Params::from_pairs([("Digits", "1"), ("Digits", "1")]);
    let kept = BASE64.encode(SortedParams::new(&params, &mut OrderBuffer::new()).sign(
        &KeyedMac::new(&AuthToken::new(TOKEN)).0,
        BASE_URL,
        false,
        &mut Batch::new(),
    ));
    assert_ne!(kept, compute_signature(TOKEN, BASE_URL, &params));
    assert!(verifier().verify(BASE_URL, Payload::Form(&params), &kept).is_ok());
}

#[test]
fn json_body_is_checked_through_body_sha256() {
    let vector = by_id("body_sha256");
    let body = vector.body.as_deref().expect("a JSON body").as_bytes();
    let (base_url, hash) = vector.url.split_once("&bodySHA256=").expect("a bodySHA256 parameter");
    assert_eq!(body_sha256_hex(body), hash);
    assert_eq!(compute_signature(&vector.token, &vector.url, []), vector.signature);
    assert!(
        verifier()
            .verify(&vector.url, Payload::Body(body), &vector.signature)
            .is_ok()
    );
    assert_eq!(
        verifier().verify(
            &vector.url,
            Payload::Body(b"{\"property\": \"other\"}"),
            &vector.signature
        ),
        Err(SignatureError::BodyHashMismatch)
    );
    let uppercase = format!("{base_url}&bodySHA256={}", hash.to_uppercase());
    let signature = compute_signature(TOKEN, &uppercase, []);
    assert!(verifier().verify(&uppercase, Payload::Body(body), &signature).is_ok());
}

#[test]
fn body_payload_without_body_sha256_is_refused() {
    let signature = compute_signature(TOKEN, BASE_URL, []);
    assert_eq!(
        verifier().verify(BASE_URL, Payload::Body(b"{}"), &signature),
        Err(SignatureError::BodyHashMissing)
    );
}

#[test]
fn get_requests_sign_the_url_alone() {
    let url = "https://mycompany.com/myapp.php?CallSid=CA1&From=%2B14158675309";
    let signature = compute_signature(TOKEN, url, []);
    assert!(verifier().verify(url, Payload::UrlOnly, &signature).is_ok());
    let params = Params::from_query(url.split_once('?').map_or("", |(_, q)| q));
    assert_eq!(
        verifier().verify(url, Payload::Form(&params), &signature),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn payload_is_chosen_from_method_and_url() {
    let params = design_params();
    let body = b"x";
    assert!(matches!(
        Payload::for_request(&http::Method::GET, BASE_URL, body, &params),
        Payload::UrlOnly
    ));
    assert!(matches!(
        Payload::for_request(&http::Method::POST, BASE_URL, body, &params),
        Payload::Form(_)
    ));
    let json_url = format!("{BASE_URL}&bodySHA256=abc");
    assert!(matches!(
        Payload::for_request(&http::Method::POST, &json_url, body, &params),
        Payload::Body(_)
    ));
}

#[test]
fn second_token_verifies_during_rotation() {
    let params = design_params();
    let signature = compute_signature("new-token", BASE_URL, &params);
    let rotating = SignatureVerifier::new(TOKEN).with_token("new-token");
    assert_eq!(
        rotating
            .verify(BASE_URL, Payload::Form(&params), &signature)
            .map(|v| v.token_index),
        Ok(1)
    );
    assert_eq!(
        verifier().verify(BASE_URL, Payload::Form(&params), &signature),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn missing_malformed_and_tokenless_are_distinguished() {
    let params = design_params();
    let signature = by_id("base").signature;
    let unpadded = signature.trim_end_matches('=');
    let overpadded = format!("{signature}=");
    assert_eq!(
        verifier().verify(BASE_URL, Payload::Form(&params), ""),
        Err(SignatureError::Missing)
    );
    assert_eq!(
        verifier().verify(BASE_URL, Payload::Form(&params), "  "),
        Err(SignatureError::Missing)
    );
    for garbage in [
        "not base64!",
        unpadded,
        overpadded.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ] {
        assert_eq!(
            verifier().verify(BASE_URL, Payload::Form(&params), garbage),
            Err(SignatureError::Mismatch),
            "{garbage}"
        );
    }
    let nobody = SignatureVerifier::from_tokens(Vec::<String>::new());
    assert_eq!(
        nobody.verify(BASE_URL, Payload::Form(&params), &signature),
        Err(SignatureError::NoToken)
    );
    assert!(SignatureVerifier::from_tokens(["", ""]).is_empty());
}

#[test]
fn surrounding_whitespace_in_the_header_is_ignored() {
    let params = design_params();
    let padded = format!(" {}\t", by_id("base").signature);
    assert!(verifier().verify(BASE_URL, Payload::Form(&params), &padded).is_ok());
}

#[test]
fn query_is_never_re_encoded() {
    let params = design_params();
    let url = "https://mycompany.com/myapp.php?name='O'Brien'&plus=a+b&at=x@y:z";
    let signature = compute_signature(TOKEN, url, &params);
    assert!(verifier().verify(url, Payload::Form(&params), &signature).is_ok());
    let encoded = "https://mycompany.com/myapp.php?name=%27O%27Brien%27&plus=a+b&at=x@y:z";
    assert_eq!(
        verifier().verify(encoded, Payload::Form(&params), &signature),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn ipv6_hosts_verify_with_and_without_port() {
    let params = design_params();
    let signature = compute_signature(TOKEN, "https://[2001:db8::1]/voice", &params);
    for url in ["https://[2001:db8::1]/voice", "https://[2001:db8::1]:443/voice"] {
        assert!(
            verifier().verify(url, Payload::Form(&params), &signature).is_ok(),
            "{url}"
        );
    }
}

#[test]
fn auth_token_debug_is_redacted() {
    let verifier = SignatureVerifier::new("super-secret-token");
    let debug = format!("{verifier:?}");
    assert!(!debug.contains("super-secret-token"), "{debug}");
    assert!(debug.contains("redacted"));
}

/// The signing rule spelled out the slow way (sort every pair, optionally drop exact duplicates,
/// one `update` per string), for the differential test below.
fn reference_mac(token: &str, url: &str, pairs: &[(String, String)], drop_duplicates: bool) -> [u8; 20] {
    use hmac::{Hmac, Mac};
    let mut sorted: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    sorted.sort_unstable();
    if drop_duplicates {
        sorted.dedup();
    }
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(token.as_bytes()).expect("any key length");
    mac.update(url.as_bytes());
    for (key, value) in sorted {
        mac.update(key.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.finalize().into_bytes().into()
}

/// A seeded generator (proptest's), so that a failure reproduces.
type Rng = proptest::test_runner::TestRng;

fn below(rng: &mut Rng, n: usize) -> usize {
    proptest::prelude::Rng::random_range(rng, 0..n)
}

/// Keys that share long prefixes, are prefixes of one another, hold NUL bytes or multi-byte
/// characters, or are empty: whatever the eight-byte sort keys and their tie runs must get right.
const TRICKY_KEYS: &[&str] = &[
    "",
    "a",
    "A",
    "ab",
    "abc",
    "abcd",
    "abcdefg",
    "abcdefgh",
    "abcdefghi",
    "abcdefghj",
    "abcdefgh\0",
    "abc\0",
    "abc\0\0",
    "\0",
    "\0\0",
    "From",
    "FromCity",
    "FromCountry",
    "FromCountrz",
    "To",
    "ToZip",
    "ErrorCode",
    "ErrorUrl",
    "MessageSid",
    "MessagingServiceSid",
    "é",
    "éé",
    "日本語のキー",
    "🍰",
    "~",
    "\u{7f}",
];

fn random_text(rng: &mut Rng, max: usize) -> String {
    let pieces = [
        "a",
        "b",
        "Z",
        "0",
        " ",
        "+",
        "&",
        "=",
        "%",
        "é",
        "🍰",
        "\0",
        "abcdefgh",
        "+14155550100",
    ];
    (0..below(rng, max + 1))
        .map(|_| pieces[below(rng, pieces.len())])
        .collect()
}

#[test]
fn signing_matches_the_rule_spelled_out_for_generated_requests() {
    let mut rng = Rng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha);
    let counts = [0, 1, 2, 3, 5, 8, 21, 22, 31, 32, 33, 34, 40, 64, 255, 256, 257, 1000];
    for case in 0..600 {
        let count = if case < counts.len() {
            counts[case]
        } else {
            below(&mut rng, 48)
        };
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(count);
        for _ in 0..count {
            let key = match below(&mut rng, 4) {
                0 => random_text(&mut rng, 6),
                _ => TRICKY_KEYS[below(&mut rng, TRICKY_KEYS.len())].to_owned(),
            };
            // Long values cross the gathering buffer and SHA-1 blocks at every offset.
            let value = match below(&mut rng, 8) {
                0 => "x".repeat(below(&mut rng, 300)),
                1 if !pairs.is_empty() => pairs[below(&mut rng, pairs.len())].1.clone(),
                _ => random_text(&mut rng, 5),
            };
            pairs.push((key, value));
        }
        // Exact duplicates, sometimes.
        if !pairs.is_empty() && below(&mut rng, 3) == 0 {
            let twin = pairs[below(&mut rng, pairs.len())].clone();
            pairs.push(twin);
        }
        let url = format!("https://example.com/{}", "p".repeat(below(&mut rng, 200)));
        let token = format!("token-{case}");
        let params = Params::from_pairs(pairs.clone());
        let deduplicated = reference_mac(&token, &url, &pairs, true);
        let kept = reference_mac(&token, &url, &pairs, false);
        assert_eq!(
            compute_signature(&token, &url, &params),
            BASE64.encode(deduplicated),
            "case {case}"
        );
        let mut buffer = OrderBuffer::new();
        let sorted = SortedParams::new(&params, &mut buffer);
        let mut distinct = pairs.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(sorted.duplicated, distinct.len() < pairs.len(), "case {case}");
        let verifier = SignatureVerifier::new(token.as_str());
        for mac in [deduplicated, kept] {
            let signature = BASE64.encode(mac);
            let verified = verifier.verify(&url, Payload::Form(&params), &signature);
            assert_eq!(verified.map(|v| v.url_variant), Ok(UrlVariant::AsGiven), "case {case}");
            let mut forged = mac;
            forged[below(&mut rng, 20)] ^= 1 << below(&mut rng, 8);
            assert_eq!(
                verifier.verify(&url, Payload::Form(&params), &BASE64.encode(forged)),
                Err(SignatureError::Mismatch),
                "case {case}"
            );
        }
    }
}

#[test]
fn an_order_remembered_from_one_request_never_decides_another_of_the_same_size() {
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())).collect()
    };
    let first = pairs(&[("Body", "hi"), ("From", "+1"), ("To", "+2"), ("MessageSid", "SM1")]);
    let reordered = pairs(&[("To", "+2"), ("MessageSid", "SM1"), ("Body", "hi"), ("From", "+1")]);
    // Keys that tie on their eight-byte prefix, and an exact duplicate.
    let tied = pairs(&[
        ("MediaUrl1", "b"),
        ("MediaUrl0", "a"),
        ("Body", "x"),
        ("MediaUrl0", "a"),
    ]);
    // One request after another on this thread, each kind twice in a row so that the second one
    // finds its own order remembered, and each after one whose order does not fit it.
    for request in [&first, &first, &reordered, &reordered, &tied, &tied, &first, &tied] {
        let params = Params::from_pairs(request.clone());
        for drop_duplicates in [true, false] {
            let mac = reference_mac(TOKEN, BASE_URL, request, drop_duplicates);
            assert_eq!(
                verifier()
                    .verify(BASE_URL, Payload::Form(&params), &BASE64.encode(mac))
                    .map(|v| v.url_variant),
                Ok(UrlVariant::AsGiven),
                "{request:?}"
            );
        }
        let deduplicated = BASE64.encode(reference_mac(TOKEN, BASE_URL, request, true));
        assert_eq!(compute_signature(TOKEN, BASE_URL, &params), deduplicated, "{request:?}");
        // Past the first try (the first token, the URL as given), which is signed while the
        // order is checked: the second token, and the URL without the port it came with.
        let rotating = SignatureVerifier::new("old-token").with_token(TOKEN);
        let verified = rotating.verify(BASE_URL, Payload::Form(&params), &deduplicated);
        assert_eq!(verified.map(|v| v.token_index), Ok(1), "{request:?}");
        let with_port = BASE_URL.replace("mycompany.com", "mycompany.com:443");
        let verified = rotating.verify(&with_port, Payload::Form(&params), &deduplicated);
        assert_eq!(
            verified.map(|v| (v.token_index, v.url_variant)),
            Ok((1, UrlVariant::PortRemoved)),
            "{request:?}"
        );
        let mut one_more = request.clone();
        one_more.push(("To".to_owned(), "+3".to_owned()));
        assert_eq!(
            verifier().verify(BASE_URL, Payload::Form(&Params::from_pairs(one_more)), &deduplicated),
            Err(SignatureError::Mismatch)
        );
    }
}
