//! Vectors from DESIGN §3 and the official SDKs' test suites.

use super::*;

const TOKEN: &str = "12345";
const BASE_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

fn design_params() -> Params {
    Params::from_pairs([
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ])
}

fn verifier() -> SignatureVerifier {
    SignatureVerifier::new(TOKEN)
}

#[test]
fn design_vectors_compute_exactly() {
    let params = design_params();
    for (url, expected) in [
        (BASE_URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        (
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            "kvajT1Ptam85bY51eRf/AJRuM3w=",
        ),
        (
            "http://mycompany.com:80/myapp.php?foo=1&bar=2",
            "0ZXoZLH/DfblKGATFgpif+LLRf4=",
        ),
        (
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
        ),
        (
            "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
            "CukzLTc1tT5dXEDIHm/tKBanW10=",
        ),
    ] {
        assert_eq!(compute_signature(TOKEN, url, &params), expected, "{url}");
        assert!(
            verifier().verify(url, Payload::Form(&params), expected).is_ok(),
            "{url}"
        );
    }
}

#[test]
fn parameter_order_does_not_matter() {
    let mut reversed: Vec<_> = design_params()
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    reversed.reverse();
    let reversed = Params::from_pairs(reversed);
    assert_eq!(
        compute_signature(TOKEN, BASE_URL, &reversed),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
}

#[test]
fn url_with_port_verifies_against_the_port_stripped_signature() {
    let params = design_params();
    let verified = verifier()
        .verify(
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            Payload::Form(&params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
        )
        .expect("port-stripped form verifies");
    assert_eq!(verified.url_variant, UrlVariant::PortRemoved);
}

#[test]
fn url_without_port_verifies_against_the_default_port_signature() {
    let params = design_params();
    let verified = verifier()
        .verify(BASE_URL, Payload::Form(&params), "kvajT1Ptam85bY51eRf/AJRuM3w=")
        .expect(":443 form verifies");
    assert_eq!(verified.url_variant, UrlVariant::DefaultPortAdded);
    let http = verifier().verify(
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        Payload::Form(&params),
        "0ZXoZLH/DfblKGATFgpif+LLRf4=",
    );
    assert_eq!(http.map(|v| v.url_variant), Ok(UrlVariant::DefaultPortAdded));
}

#[test]
fn userinfo_is_part_of_the_signed_url() {
    let params = design_params();
    let with_userinfo = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
    assert!(
        verifier()
            .verify(with_userinfo, Payload::Form(&params), "CukzLTc1tT5dXEDIHm/tKBanW10=")
            .is_ok()
    );
    assert_eq!(
        verifier().verify(BASE_URL, Payload::Form(&params), "CukzLTc1tT5dXEDIHm/tKBanW10="),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn repeated_values_are_sorted_and_deduplicated_like_the_sdks() {
    let params = Params::from_pairs([
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]);
    assert_eq!(
        compute_signature(TOKEN, BASE_URL, &params),
        "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    );
    assert!(
        verifier()
            .verify(BASE_URL, Payload::Form(&params), "IK+Dwps556ElfBT0I3Rgjkr1wJU=")
            .is_ok()
    );
    let without_duplicate = Params::from_pairs([
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
    ]);
    assert!(
        verifier()
            .verify(
                BASE_URL,
                Payload::Form(&without_duplicate),
                "IK+Dwps556ElfBT0I3Rgjkr1wJU="
            )
            .is_ok()
    );
    let one_value_less = Params::from_pairs([("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678")]);
    assert_eq!(
        verifier().verify(BASE_URL, Payload::Form(&one_value_less), "IK+Dwps556ElfBT0I3Rgjkr1wJU="),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_signature_over_kept_duplicates_also_verifies() {
    let params = Params::from_pairs([("Digits", "1"), ("Digits", "1")]);
    let kept = BASE64.encode(SortedParams::new([("Digits", "1"), ("Digits", "1")].into_iter()).sign(
        KeyedMac::new(&AuthToken::new(TOKEN)).0,
        BASE_URL,
        &mut Vec::new(),
    ));
    assert_ne!(kept, compute_signature(TOKEN, BASE_URL, &params));
    assert!(verifier().verify(BASE_URL, Payload::Form(&params), &kept).is_ok());
}

#[test]
fn json_body_is_checked_through_body_sha256() {
    let body = br#"{"property": "value", "boolean": true}"#;
    let hash = body_sha256_hex(body);
    assert_eq!(hash, "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620");
    let url = format!("{BASE_URL}&bodySHA256={hash}");
    assert_eq!(compute_signature(TOKEN, &url, []), "a9nBmqA0ju/hNViExpshrM61xv4=");
    assert!(
        verifier()
            .verify(&url, Payload::Body(body), "a9nBmqA0ju/hNViExpshrM61xv4=")
            .is_ok()
    );
    assert_eq!(
        verifier().verify(
            &url,
            Payload::Body(b"{\"property\": \"other\"}"),
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ),
        Err(SignatureError::BodyHashMismatch)
    );
    let uppercase = format!("{BASE_URL}&bodySHA256={}", hash.to_uppercase());
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
        "RSOYDt4T1cUTdK1PDd93/VVr8B8",
        "RSOYDt4T1cUTdK1PDd93/VVr8B8==",
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
        nobody.verify(BASE_URL, Payload::Form(&params), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        Err(SignatureError::NoToken)
    );
    assert!(SignatureVerifier::from_tokens(["", ""]).is_empty());
}

#[test]
fn surrounding_whitespace_in_the_header_is_ignored() {
    let params = design_params();
    assert!(
        verifier()
            .verify(BASE_URL, Payload::Form(&params), " RSOYDt4T1cUTdK1PDd93/VVr8B8=\t")
            .is_ok()
    );
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
