//! The fallback layer's cost per request, next to a bare axum router and to tower-http's
//! CatchPanicLayer + TimeoutLayer (and to the router with a layer that does nothing: what
//! `Router::layer` itself costs), on a typical SMS webhook: the 586-byte form Twilio posts
//! (`fixtures/bench-inputs.json`) answered with ~150 bytes of TwiML.
//!
//! Its floor is `floor-layer`: the least a layer doing the fallback layer's job must do, written
//! plainly from stock parts (see [`floor`]).

use std::hint::black_box;
use std::time::Duration;

#[path = "layer/floor.rs"]
mod floor;

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::routing::post;
use axum::{Extension, Router};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use twiml_fallback::layer::{FallbackLayer, TwilioParams};
use twiml_fallback::webhook::Params;

const REPLY: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#,
    "<Message>Thanks! Your order #1234 is ready for pickup at 5pm. Reply STOP to opt out.</Message></Response>"
);

async fn sms(body: Bytes) -> ([(http::HeaderName, &'static str); 1], &'static str) {
    black_box(body);
    ([(CONTENT_TYPE, "text/xml; charset=utf-8")], REPLY)
}

/// A handler that reads the parameters, as a real one does: parsing them itself…
async fn sms_parsing(body: Bytes) -> ([(http::HeaderName, &'static str); 1], &'static str) {
    black_box(Params::from_form(&body).body().map(str::len));
    ([(CONTENT_TYPE, "text/xml; charset=utf-8")], REPLY)
}

/// …or through the layer's [`TwilioParams`], decoded once for the handler and the layer (read from
/// the extensions: the extractor needs the `axum` feature, this bench only `tokio`).
async fn sms_twilio_params(
    Extension(params): Extension<TwilioParams>,
) -> ([(http::HeaderName, &'static str); 1], &'static str) {
    black_box(params.body().map(str::len));
    ([(CONTENT_TYPE, "text/xml; charset=utf-8")], REPLY)
}

/// …or from the floor layer's raw form, parsing it itself.
async fn sms_raw_form(
    Extension(raw): Extension<floor::RawForm>,
) -> ([(http::HeaderName, &'static str); 1], &'static str) {
    black_box((raw.is_call, Params::from_form(&raw.form).body().map(str::len)));
    ([(CONTENT_TYPE, "text/xml; charset=utf-8")], REPLY)
}

fn form() -> Bytes {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/bench-inputs.json")).expect("fixture is JSON");
    let params = Params::from_pairs(
        fixture["sms_fallback"]["params"]
            .as_array()
            .expect("params")
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().expect("key").to_owned(),
                    pair[1].as_str().expect("value").to_owned(),
                )
            }),
    );
    Bytes::from(params.without(&["ErrorCode", "ErrorUrl"]).to_form())
}

fn request(form: &Bytes) -> Request<Body> {
    Request::post("/sms")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.clone()))
        .expect("request")
}

fn layer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let form = form();
    let bare: Router = Router::new().route("/sms", post(sms));
    let variants: [(&str, Router); 6] = [
        ("bare-router", bare.clone()),
        // What axum's `Router::layer` costs with a layer that does nothing: every layer pays it.
        ("noop-layer", bare.clone().layer(tower::layer::util::Identity::new())),
        ("fallback-layer", bare.clone().layer(FallbackLayer::new())),
        // The least any layer doing the same job must do (see `floor`), in the same run.
        ("floor-layer", bare.clone().layer(floor::FloorLayer)),
        (
            "fallback-layer-no-deadline",
            bare.clone().layer(FallbackLayer::new().no_deadline()),
        ),
        (
            "tower-http-catch-panic-timeout",
            bare.clone()
                .layer(CatchPanicLayer::new())
                .layer(TimeoutLayer::with_status_code(
                    http::StatusCode::GATEWAY_TIMEOUT,
                    Duration::from_secs(12),
                )),
        ),
    ];
    run_group(c, &runtime, &form, "layer/sms-webhook", variants);
    // The same, with handlers that read the parameters: the bare router's parses them itself,
    // the layer's reads the TwilioParams the layer put in the request (as benches/layer-load.sh), the
    // floor layer's parses the raw form the floor put there.
    let parsing: Router = Router::new().route("/sms", post(sms_parsing));
    let reading: Router = Router::new().route("/sms", post(sms_twilio_params));
    let reading_raw: Router = Router::new().route("/sms", post(sms_raw_form));
    let variants: [(&str, Router); 3] = [
        ("bare-router-parsing", parsing),
        ("fallback-layer-twilio-params", reading.layer(FallbackLayer::new())),
        ("floor-layer-raw-form", reading_raw.layer(floor::FloorLayer)),
    ];
    run_group(c, &runtime, &form, "layer/sms-webhook-reading-params", variants);
}

fn run_group<const N: usize>(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    form: &Bytes,
    group_name: &str,
    variants: [(&str, Router); N],
) {
    let mut group = c.benchmark_group(group_name);
    for (name, router) in variants {
        // Every variant answers the same bytes.
        let answer = runtime.block_on(async {
            let response = router.clone().oneshot(request(form)).await.expect("infallible");
            response.into_body().collect().await.expect("body").to_bytes()
        });
        assert_eq!(&answer[..], REPLY.as_bytes(), "{name}");
        group.bench_function(name, |b| {
            b.to_async(runtime).iter(|| {
                let router = router.clone();
                let request = request(form);
                async move {
                    let response = router.oneshot(request).await.expect("infallible");
                    black_box(response.into_body().collect().await.expect("body").to_bytes())
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, layer);
criterion_main!(benches);
