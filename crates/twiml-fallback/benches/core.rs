//! Criterion benchmarks of the core: signature verification, validation, rendering, the fallback
//! decision. `benches/compare-twilio-node.sh` runs these next to the official `twilio` npm library
//! on the same inputs (`benches/fixtures/bench-inputs.json`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use twiml_fallback::Channel;
use twiml_fallback::config::Config;
use twiml_fallback::edge::{Body, Edge, EdgeRequest};
use twiml_fallback::signature::{Payload, SignatureVerifier, compute_signature};
use twiml_fallback::twiml::{
    AnswerRules, MAX_DOCUMENT_BYTES, Response, Say, TargetChannel, validate, validate_without_fast_path,
};
use twiml_fallback::webhook::Params;

struct Request {
    token: String,
    url: String,
    params: Params,
    form: String,
}

struct Inputs {
    sms_fallback: Request,
    design_vector: Request,
    message: String,
}

fn inputs() -> Inputs {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/bench-inputs.json")).expect("fixture is JSON");
    let request = |value: &serde_json::Value| {
        let text = |key: &str| value[key].as_str().expect("string field").to_owned();
        let params = Params::from_pairs(value["params"].as_array().expect("params").iter().map(|pair| {
            (
                pair[0].as_str().expect("key").to_owned(),
                pair[1].as_str().expect("value").to_owned(),
            )
        }));
        Request {
            token: text("token"),
            url: text("url"),
            form: params.to_form(),
            params,
        }
    };
    Inputs {
        sms_fallback: request(&fixture["sms_fallback"]),
        design_vector: request(&fixture["design_vector"]),
        message: fixture["message"].as_str().expect("message").to_owned(),
    }
}

/// A typical fallback-sized voice document (~200 bytes).
const TYPICAL: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#,
    r#"<Say voice="Polly.Joanna" language="en-US">Thanks for calling. All of our agents are busy right now.</Say>"#,
    r#"<Pause length="1"/><Hangup/></Response>"#
);

/// A realistic IVR document just under Twilio's 64 KB limit.
fn large_document() -> String {
    let mut document = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    document.push_str("<Response>\n");
    let mut step = 0;
    loop {
        let gather = format!(
            "  <Gather input=\"dtmf speech\" numDigits=\"1\" action=\"/menu?step={step}&amp;lang=en\" method=\"POST\">\n    <Say voice=\"Polly.Joanna\">Press {d} for store hours, or say \"hours\". Café &amp; bakery 🍰</Say>\n    <Pause length=\"1\"/>\n  </Gather>\n",
            d = step % 10
        );
        if document.len() + gather.len() + "<Hangup/></Response>".len() > MAX_DOCUMENT_BYTES {
            break;
        }
        document.push_str(&gather);
        step += 1;
    }
    document.push_str("<Hangup/></Response>");
    document
}

fn signature(c: &mut Criterion) {
    let inputs = inputs();
    let mut group = c.benchmark_group("signature");
    for (name, request) in [
        ("sms-fallback-22-params", &inputs.sms_fallback),
        ("design-vector-5-params", &inputs.design_vector),
    ] {
        let signature = compute_signature(&request.token, &request.url, &request.params);
        let verifier = SignatureVerifier::new(request.token.as_str());
        group.bench_function(format!("verify/{name}"), |b| {
            b.iter(|| {
                verifier.verify(
                    black_box(&request.url),
                    Payload::Form(black_box(&request.params)),
                    black_box(&signature),
                )
            })
        });
        // The same parameters in two orders, taken in turn: each request's signing order differs
        // from the last one of its size, so none is found remembered and each is sorted.
        let reversed = Params::from_pairs(request.params.iter().collect::<Vec<_>>().into_iter().rev());
        let mut turn = false;
        group.bench_function(format!("verify-order-not-remembered/{name}"), |b| {
            b.iter(|| {
                turn = !turn;
                verifier.verify(
                    black_box(&request.url),
                    Payload::Form(black_box(if turn { &request.params } else { &reversed })),
                    black_box(&signature),
                )
            })
        });
        group.bench_function(format!("verify-forged/{name}"), |b| {
            b.iter(|| {
                verifier.verify(
                    black_box(&request.url),
                    Payload::Form(&request.params),
                    black_box("AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
                )
            })
        });
        // Wrong signatures that share 0, 26 or 27 of the right one's 28 characters, and one that
        // is not base64 at all: a constant-time check takes the same time for each.
        let mut nearly = signature.clone().into_bytes();
        nearly[26] = if nearly[26] == b'A' { b'B' } else { b'A' };
        let nearly = String::from_utf8(nearly).expect("base64");
        let mut first_wrong = signature.clone().into_bytes();
        first_wrong[0] = if first_wrong[0] == b'A' { b'B' } else { b'A' };
        let first_wrong = String::from_utf8(first_wrong).expect("base64");
        if name.starts_with("sms") {
            for (label, forged) in [
                ("first-char-wrong", first_wrong.as_str()),
                ("last-chars-wrong", nearly.as_str()),
                ("not-base64", "%%%% not a signature %%%%%%%"),
            ] {
                group.bench_function(format!("verify-forged-{label}/{name}"), |b| {
                    b.iter(|| {
                        verifier.verify(
                            black_box(&request.url),
                            Payload::Form(&request.params),
                            black_box(forged),
                        )
                    })
                });
            }
        }
        group.bench_function(format!("parse-form-then-verify/{name}"), |b| {
            b.iter(|| {
                let params = Params::from_form(black_box(request.form.as_bytes()));
                verifier
                    .verify(&request.url, Payload::Form(&params), black_box(&signature))
                    .is_ok()
            })
        });
        // The floor, in the same run: HMAC-SHA1 over exactly the bytes Twilio signs (the URL,
        // then each key and value in sorted order), from a state already keyed with the token
        // — what verification cannot do without. BENCHMARKS.md reports verify as a ratio to it.
        let mut sorted: Vec<(&str, &str)> = request.params.iter().collect();
        sorted.sort_unstable();
        let mut signed = request.url.clone().into_bytes();
        for (key, value) in sorted {
            signed.extend_from_slice(key.as_bytes());
            signed.extend_from_slice(value.as_bytes());
        }
        let keyed = <Hmac<Sha1> as KeyInit>::new_from_slice(request.token.as_bytes()).expect("any key length");
        group.bench_function(format!("hmac-sha1-floor/{name}"), |b| {
            b.iter(|| {
                let mut mac = keyed.clone();
                mac.update(black_box(&signed));
                mac.finalize().into_bytes()
            })
        });
        group.bench_function(format!("compute/{name}"), |b| {
            b.iter(|| compute_signature(black_box(&request.token), black_box(&request.url), &request.params))
        });
    }
    group.finish();
}

fn validation(c: &mut Criterion) {
    let large = large_document();
    assert!(
        validate(TYPICAL.as_bytes(), TargetChannel::Voice)
            .diagnostics()
            .is_empty()
    );
    let report = validate(large.as_bytes(), TargetChannel::Voice);
    assert!(report.diagnostics().is_empty(), "{:?}", report.diagnostics().first());
    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Bytes(TYPICAL.len() as u64));
    group.bench_function(format!("typical-{}B", TYPICAL.len()), |b| {
        b.iter(|| validate(black_box(TYPICAL.as_bytes()), TargetChannel::Voice))
    });
    group.throughput(Throughput::Bytes(large.len() as u64));
    group.bench_function(format!("ivr-{}B", large.len()), |b| {
        b.iter(|| validate(black_box(large.as_bytes()), TargetChannel::Voice))
    });
    // The same documents through quick-xml's tokenizer alone (the walk every document took before
    // the fast walk, and the one the unusual ones still take).
    group.throughput(Throughput::Bytes(TYPICAL.len() as u64));
    group.bench_function(format!("full-walk-typical-{}B", TYPICAL.len()), |b| {
        b.iter(|| validate_without_fast_path(black_box(TYPICAL.as_bytes()), TargetChannel::Voice))
    });
    group.throughput(Throughput::Bytes(large.len() as u64));
    group.bench_function(format!("full-walk-ivr-{}B", large.len()), |b| {
        b.iter(|| validate_without_fast_path(black_box(large.as_bytes()), TargetChannel::Voice))
    });
    // The floor, in the same run: quick-xml's bare event loop over the same bytes, with the
    // reader settings the validator uses (BENCHMARKS.md reports the validator as a ratio to it).
    for (name, document) in [("typical", TYPICAL), ("ivr", large.as_str())] {
        group.throughput(Throughput::Bytes(document.len() as u64));
        group.bench_function(format!("quick-xml-events-{name}-{}B", document.len()), |b| {
            b.iter(|| quick_xml_events(black_box(document)))
        });
    }
    group.throughput(Throughput::Bytes(TYPICAL.len() as u64));
    group.bench_function("answer-check-typical", |b| {
        let rules = AnswerRules::for_channel(Some(Channel::Voice));
        b.iter(|| {
            rules
                .check(
                    http::StatusCode::OK,
                    Some("text/xml; charset=utf-8"),
                    black_box(TYPICAL.as_bytes()),
                )
                .is_ok()
        })
    });
    group.finish();
}

/// Reads every event of `document` with quick-xml and nothing else: the tokenizer's cost alone.
fn quick_xml_events(document: &str) -> usize {
    let mut reader = quick_xml::Reader::from_str(document);
    let config = reader.config_mut();
    config.check_end_names = false;
    config.check_comments = true;
    config.expand_empty_elements = false;
    config.allow_dangling_amp = false;
    config.allow_unmatched_ends = true;
    let mut events = 0;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) | Err(_) => return events,
            Ok(event) => {
                black_box(&event);
                events += 1;
            }
        }
    }
}

/// Documents of `size` bytes shaped to hurt a validator: nesting as deep as the size allows,
/// one element with thousands of attributes, thousands of entity and character references, a
/// long run of invalid nesting, thousands of sibling verbs.
fn adversarial(shape: &str, size: usize) -> String {
    let fill = |unit: &str, frame: usize| unit.repeat(size.saturating_sub(frame) / unit.len());
    match shape {
        "deep-nesting" => {
            let depth = (size - 21) / 17;
            format!(
                "<Response>{}{}</Response>",
                "<Gather>".repeat(depth),
                "</Gather>".repeat(depth)
            )
        }
        "many-attributes" => format!("<Response><Say{}>x</Say></Response>", fill(" a=\"&amp;\"", 36)),
        "many-entities" => format!("<Response><Say>{}</Say></Response>", fill("&amp;&#x1F370;&#65;", 32)),
        "unknown-elements" => format!("<Response><Say>{}</Say></Response>", fill("<x y='1'/>", 32)),
        "many-verbs" => format!("<Response>{}</Response>", fill("<Pause/>", 21)),
        other => unreachable!("{other}"),
    }
}

fn validation_adversarial(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate-adversarial");
    for shape in [
        "deep-nesting",
        "many-attributes",
        "many-entities",
        "unknown-elements",
        "many-verbs",
    ] {
        for size in [8 * 1024, 16 * 1024, 32 * 1024, 64 * 1024] {
            let document = adversarial(shape, size);
            assert!(document.len() <= size, "{shape} {}", document.len());
            group.throughput(Throughput::Bytes(document.len() as u64));
            group.bench_function(format!("{shape}/{}KB", size / 1024), |b| {
                b.iter(|| validate(black_box(document.as_bytes()), TargetChannel::Auto))
            });
        }
    }
    group.finish();
}

fn writer(c: &mut Criterion) {
    let inputs = inputs();
    let mut group = c.benchmark_group("writer");
    group.bench_function("messaging-fallback", |b| {
        b.iter(|| Response::new().message(black_box(inputs.message.as_str())).to_xml())
    });
    group.bench_function("voice-fallback-with-attributes", |b| {
        b.iter(|| {
            Response::new()
                .verb(
                    Say::new(black_box("An application error has occurred. Please call back later."))
                        .voice("Polly.Joanna")
                        .language("en-US"),
                )
                .to_xml()
        })
    });
    group.finish();
}

fn edge(c: &mut Criterion) {
    let request = inputs().sms_fallback;
    let signature = compute_signature(&request.token, &request.url, &request.params);
    let edge = Edge::new(Config::default(), SignatureVerifier::new(request.token.as_str()));
    c.bench_function("edge/decide-signed-sms-fallback", |b| {
        b.iter(|| {
            edge.decide(&EdgeRequest {
                method: &http::Method::POST,
                url: &request.url,
                signature: Some(&signature),
                content_type: Some("application/x-www-form-urlencoded"),
                body: Body::Complete(black_box(request.form.as_bytes())),
                now_ms: 1_700_000_000_000,
                inbox_failing: false,
            })
        })
    });
}

criterion_group!(benches, signature, validation, validation_adversarial, writer, edge);
criterion_main!(benches);
