//! The fallback layer's cost per request, next to a bare axum router and to tower-http's
//! CatchPanicLayer + TimeoutLayer, on a typical SMS webhook: the 586-byte form Twilio posts
//! (`fixtures/bench-inputs.json`) answered with ~150 bytes of TwiML.

use std::hint::black_box;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::routing::post;
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use twiml_fallback::layer::FallbackLayer;
use twiml_fallback::webhook::Params;

const REPLY: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#,
    "<Message>Thanks! Your order #1234 is ready for pickup at 5pm. Reply STOP to opt out.</Message></Response>"
);

async fn sms(body: Bytes) -> ([(http::HeaderName, &'static str); 1], &'static str) {
    black_box(body);
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
    let variants: [(&str, Router); 4] = [
        ("bare-router", bare.clone()),
        ("fallback-layer", bare.clone().layer(FallbackLayer::new())),
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
    let mut group = c.benchmark_group("layer/sms-webhook");
    for (name, router) in variants {
        // Every variant answers the same bytes.
        let answer = runtime.block_on(async {
            let response = router.clone().oneshot(request(&form)).await.expect("infallible");
            response.into_body().collect().await.expect("body").to_bytes()
        });
        assert_eq!(&answer[..], REPLY.as_bytes(), "{name}");
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let router = router.clone();
                let request = request(&form);
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
