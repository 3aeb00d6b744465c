//! The webhook parameter parsers on arbitrary bytes: no panic; the allocation-free channel probe
//! agrees with the full parse; a parsed form re-encodes to the same pairs.
#![no_main]

use http::Method;
use libfuzzer_sys::fuzz_target;
use twiml_fallback::webhook::{Params, channel_of_form};

fuzz_target!(|data: &[u8]| {
    let params = Params::from_form(data);
    assert_eq!(
        channel_of_form(data),
        params.channel(),
        "channel_of_form disagrees on {data:?}"
    );
    let encoded = params.to_form();
    let again = Params::from_form(encoded.as_bytes());
    assert!(params.iter().eq(again.iter()), "to_form/from_form changed {data:?}");
    let _ = params.fallback_notice();
    let _ = params.sid_for(params.channel());
    let (query, body) = data.split_at(data.len() / 2);
    let query = String::from_utf8_lossy(query);
    for content_type in [
        None,
        Some("application/x-www-form-urlencoded; charset=utf-8"),
        Some("application/json"),
    ] {
        for method in [Method::GET, Method::POST, Method::HEAD, Method::PUT] {
            let _ = Params::from_request(&method, Some(&query), content_type, body);
        }
    }
});
