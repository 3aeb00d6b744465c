//! The fallback layer end to end: every failure case of the `chaos` example × both channels,
//! in-process (`oneshot`) and over a real socket; pass-through byte-identity; concurrency;
//! compatibility with axum's `Router::layer`/`route_layer`, `ServiceBuilder` and `service_fn`;
//! the signature layer and how the two compose.

#[path = "../examples/chaos/app.rs"]
#[allow(dead_code)]
mod chaos;
#[path = "support/signature_vectors.rs"]
mod signature_vectors;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::post;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};
use twiml_fallback::Channel;
use twiml_fallback::config::Config;
use twiml_fallback::error_code::ErrorCode;
use twiml_fallback::layer::{
    FALLBACK_HEADER, FallbackEvent, FallbackLayer, RequestBody, TwilioParams, ValidateTwilioSignatureLayer,
};
use twiml_fallback::signature::{SIGNATURE_HEADER, SignatureVerifier, UrlPolicy, compute_signature};
use twiml_fallback::twiml::{ContentPolicy, Strictness, TargetChannel, validate};
use twiml_fallback::webhook::Params;

use chaos::{CASES, ChaosApp, ChaosService};
use signature_vectors::Vector;

const VOICE_PARAMS: &str = "AccountSid=AC1&CallSid=CA1&From=%2B14155550100&To=%2B14155550199&CallStatus=ringing";
const SMS_PARAMS: &str = "AccountSid=AC1&MessageSid=SM1&SmsSid=SM1&From=%2B14155550100&To=%2B14155550199&Body=hi+there";

/// The cause header and the Twilio error code each chaos case must produce.
fn expected(case: &str) -> (&'static str, u32) {
    match case {
        "panic" | "panic-async" => ("panic", 11200),
        "panic-body" => ("body-panic", 11200),
        "error" => ("error", 11200),
        "slow" => ("timeout", 11205),
        "status-500" | "status-404" => ("status", 11200),
        "lowercase" | "wrong-root" => ("invalid-twiml", 12102),
        "wrong-channel" => ("invalid-twiml", 12200),
        "huge" => ("too-large", 11750),
        "no-content-type" => ("content-type", 12300),
        // Twilio runs text/html as TwiML, and an HTML error page fails as TwiML.
        "html" => ("invalid-twiml", 12100),
        "empty" => ("empty", 11770),
        "body-error" => ("body-error", 11200),
        other => panic!("no expectation for {other}"),
    }
}

fn channel_of(prefix: &str) -> Channel {
    if prefix == "voice" {
        Channel::Voice
    } else {
        Channel::Messaging
    }
}

fn params_for(channel: Channel) -> &'static str {
    match channel {
        Channel::Voice => VOICE_PARAMS,
        Channel::Messaging => SMS_PARAMS,
    }
}

fn form_request(method: Method, uri: &str, body: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        .expect("request")
}

async fn read<B>(response: Response<B>) -> (StatusCode, HeaderMap, Bytes)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.headers, bytes)
}

type Events = Arc<Mutex<Vec<FallbackEvent>>>;

fn recording_layer() -> (FallbackLayer, Events) {
    let events: Events = Arc::default();
    let sink = Arc::clone(&events);
    let layer = FallbackLayer::new().on_fallback(move |event| sink.lock().expect("events").push(event.clone()));
    (layer, events)
}

fn assert_fallback(status: StatusCode, headers: &HeaderMap, body: &[u8], channel: Channel, cause: &str, context: &str) {
    assert_eq!(status, StatusCode::OK, "{context}");
    assert_eq!(
        headers.get(CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"text/xml; charset=utf-8"[..]),
        "{context}"
    );
    assert_eq!(
        headers.get(FALLBACK_HEADER).and_then(|v| v.to_str().ok()),
        Some(cause),
        "{context}"
    );
    let expected = Config::default();
    assert_eq!(
        body,
        expected.fallback(Some(channel), None).twiml.as_bytes(),
        "{context}"
    );
    let report = validate(body, TargetChannel::from(channel));
    assert!(report.diagnostics().is_empty(), "{context}: {:?}", report.diagnostics());
}

#[tokio::test(start_paused = true)]
async fn every_failure_case_becomes_fallback_twiml_in_both_channels() {
    let (layer, events) = recording_layer();
    let app = ChaosApp::new(layer);
    let mut checked = 0;
    for prefix in ["voice", "sms"] {
        let channel = channel_of(prefix);
        for (case, _) in CASES.iter().filter(|(case, _)| *case != "ok") {
            let context = format!("{prefix}/{case}");
            let request = form_request(Method::POST, &format!("/{prefix}/{case}"), params_for(channel));
            let (status, headers, body) = read(app.clone().oneshot(request).await.expect("infallible")).await;
            let (cause, code) = expected(case);
            assert_fallback(status, &headers, &body, channel, cause, &context);
            let event = events
                .lock()
                .expect("events")
                .pop()
                .unwrap_or_else(|| panic!("{context}: no event"));
            assert_eq!(event.error_code, ErrorCode::new(code), "{context}: {}", event.cause);
            assert_eq!(event.cause.as_str(), cause, "{context}");
            assert_eq!(event.channel, Some(channel), "{context}");
            assert_eq!(
                event.sid.as_deref(),
                Some(if channel == Channel::Voice { "CA1" } else { "SM1" }),
                "{context}"
            );
            assert_eq!(event.to.as_deref(), Some("+14155550199"), "{context}");
            assert_eq!(event.path, format!("/{prefix}/{case}"), "{context}");
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * (CASES.len() - 1));
}

#[tokio::test]
async fn the_channel_is_detected_from_the_parameters() {
    // One layer without an explicit channel, in front of an app that panics.
    let service = FallbackLayer::new().layer(ChaosService::new(Channel::Voice));
    for (params, channel) in [
        (VOICE_PARAMS, Some(Channel::Voice)),
        (SMS_PARAMS, Some(Channel::Messaging)),
        ("From=%2B1", None),
    ] {
        let (status, headers, body) = read(
            service
                .clone()
                .oneshot(form_request(Method::POST, "/panic", params))
                .await
                .expect("ok"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers.get(FALLBACK_HEADER).map(|v| v.as_bytes()), Some(&b"panic"[..]));
        let expected = Config::default();
        assert_eq!(&body[..], expected.fallback(channel, None).twiml.as_bytes());
    }
}

#[tokio::test]
async fn a_service_that_panics_before_returning_its_future_gets_the_fallback_and_the_next_request_is_served() {
    // `service_fn` calls the closure in `Service::call`: this panics there, not in the future.
    let inner = service_fn(|request: Request<RequestBody<Full<Bytes>>>| {
        assert!(request.uri().path() != "/panic-in-call", "bug in call");
        async move {
            Ok::<_, Infallible>(
                Response::builder()
                    .header(CONTENT_TYPE, "text/xml")
                    .body(Full::new(Bytes::from_static(
                        b"<Response><Message>ok</Message></Response>",
                    )))
                    .expect("response"),
            )
        }
    });
    let mut service = FallbackLayer::new().layer(inner);
    for (path, marker, expected_body) in [
        (
            "/panic-in-call",
            Some(&b"panic"[..]),
            Config::default().fallback(Some(Channel::Messaging), None).twiml,
        ),
        ("/ok", None, "<Response><Message>ok</Message></Response>"),
    ] {
        let ready = service.ready().await.expect("ready");
        let (status, headers, body) = read(
            tower::Service::call(ready, form_request(Method::POST, path, SMS_PARAMS))
                .await
                .expect("ok"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers.get(FALLBACK_HEADER).map(|v| v.as_bytes()), marker, "{path}");
        assert_eq!(&body[..], expected_body.as_bytes(), "{path}");
    }
}

#[tokio::test]
async fn the_channel_is_the_same_whether_or_not_the_handler_decoded_the_parameters() {
    // The layer reads the channel from the parameters the handler decoded, if it did, else from
    // the raw form: a voice answer passes for a call and fails for an SMS either way.
    for decode in [false, true] {
        let handler = move |params: TwilioParams| async move {
            if decode {
                assert!(params.params().get("AccountSid").is_some());
            }
            (
                [(CONTENT_TYPE, "text/xml")],
                "<Response><Say>For a call</Say></Response>",
            )
        };
        let app = Router::new()
            .route("/voice/hook", post(handler))
            .route("/sms/hook", post(handler))
            .layer(FallbackLayer::new());
        let (_, headers, body) = call(&app, "/voice/hook").await;
        assert_eq!(headers.get(FALLBACK_HEADER), None, "decoded: {decode}");
        assert_eq!(
            &body[..],
            b"<Response><Say>For a call</Say></Response>",
            "decoded: {decode}"
        );
        assert_route_falls_back(&app, "/sms/hook", Channel::Messaging, "invalid-twiml").await;
    }
}

#[tokio::test]
async fn valid_answers_pass_through_byte_for_byte() {
    let twiml: &'static [u8] =
        "<?xml version=\"1.0\"?>\r\n<Response>\r\n  <Message>Caf\u{e9} 🍰 &amp; more</Message>\r\n</Response>\r\n"
            .as_bytes();
    let answer = move || {
        Response::builder()
            .status(StatusCode::CREATED)
            .header(CONTENT_TYPE, "application/xml; charset=UTF-8")
            .header("x-app", "v1")
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .body(Full::new(Bytes::from_static(twiml)))
            .expect("response")
    };
    let inner =
        service_fn(move |_request: Request<RequestBody<Full<Bytes>>>| async move { Ok::<_, Infallible>(answer()) });
    let (status, headers, body) = read(
        FallbackLayer::new()
            .layer(inner)
            .oneshot(form_request(Method::POST, "/sms", SMS_PARAMS))
            .await
            .expect("ok"),
    )
    .await;
    let (direct_status, direct_headers, direct_body) = read(answer()).await;
    assert_eq!(status, direct_status);
    assert_eq!(
        headers, direct_headers,
        "headers unchanged (both cookies, in order), no {FALLBACK_HEADER}"
    );
    assert_eq!(body, direct_body, "the exact bytes");
}

#[tokio::test]
async fn handlers_read_the_parsed_parameters_from_extensions() {
    let app = ChaosApp::new(FallbackLayer::new());
    let (_, _, body) = read(
        app.clone()
            .oneshot(form_request(Method::POST, "/sms/ok", SMS_PARAMS))
            .await
            .expect("ok"),
    )
    .await;
    assert!(
        std::str::from_utf8(&body)
            .expect("UTF-8")
            .contains("You said: hi there")
    );
    // GET webhooks carry the parameters in the query string.
    let get = Request::get("/sms/ok?MessageSid=SM9&Body=from+the+query")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let (_, headers, body) = read(app.oneshot(get).await.expect("ok")).await;
    assert_eq!(headers.get(FALLBACK_HEADER), None);
    assert!(
        std::str::from_utf8(&body)
            .expect("UTF-8")
            .contains("You said: from the query")
    );
}

#[tokio::test]
async fn an_oversized_request_body_reaches_the_app_untouched() {
    let inner = service_fn(|request: Request<RequestBody<Full<Bytes>>>| async move {
        let complete = request
            .extensions()
            .get::<TwilioParams>()
            .map(TwilioParams::is_complete);
        let received = request.into_body().collect().await.expect("body").to_bytes();
        let twiml = format!(
            "<Response><Message>{} bytes, complete={complete:?}</Message></Response>",
            received.len()
        );
        Ok::<_, Infallible>(
            Response::builder()
                .header(CONTENT_TYPE, "text/xml")
                .body(Full::new(Bytes::from(twiml)))
                .expect("response"),
        )
    });
    let service = FallbackLayer::new()
        .channel(Channel::Messaging)
        .request_body_limit(1024)
        .layer(inner);
    let big = format!("MessageSid=SM1&Body={}", "x".repeat(100_000));
    let (_, headers, body) = read(
        service
            .clone()
            .oneshot(form_request(Method::POST, "/", &big))
            .await
            .expect("ok"),
    )
    .await;
    assert_eq!(headers.get(FALLBACK_HEADER), None);
    assert_eq!(
        std::str::from_utf8(&body).expect("UTF-8"),
        format!(
            "<Response><Message>{} bytes, complete=Some(false)</Message></Response>",
            big.len()
        )
    );
    let (_, _, body) = read(
        service
            .oneshot(form_request(Method::POST, "/", "MessageSid=SM1"))
            .await
            .expect("ok"),
    )
    .await;
    assert!(
        std::str::from_utf8(&body)
            .expect("UTF-8")
            .contains("14 bytes, complete=Some(true)")
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_answers_before_twilio_gives_up() {
    let (layer, events) = recording_layer();
    let app = ChaosApp::new(layer.deadline(Duration::from_millis(250)));
    let started = tokio::time::Instant::now();
    let (status, headers, body) = read(
        app.oneshot(form_request(Method::POST, "/voice/slow", VOICE_PARAMS))
            .await
            .expect("ok"),
    )
    .await;
    assert_fallback(status, &headers, &body, Channel::Voice, "timeout", "slow");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(1),
        "{waited:?}"
    );
    let event = events.lock().expect("events").pop().expect("an event");
    assert_eq!(
        event.cause,
        twiml_fallback::layer::FallbackCause::Timeout(Duration::from_millis(250))
    );
    assert_eq!(event.error_code, ErrorCode::CONNECTION_FAILURE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_concurrent_requests_some_panicking_get_their_own_answers() {
    let app = ChaosApp::new(FallbackLayer::new().deadline(Duration::from_millis(200)));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..400 {
        let app = app.clone();
        tasks.spawn(async move {
            let case = [
                "ok",
                "panic",
                "panic-async",
                "error",
                "panic-body",
                "slow",
                "ok",
                "lowercase",
            ][index % 8];
            let prefix = if index % 2 == 0 { "voice" } else { "sms" };
            let channel = channel_of(prefix);
            let params = format!("{}&Digits={index}&Body=request-{index}", params_for(channel));
            let request = form_request(Method::POST, &format!("/{prefix}/{case}"), &params);
            let (status, headers, body) = read(app.oneshot(request).await.expect("ok")).await;
            (index, case, channel, status, headers, body)
        });
    }
    let mut answered = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (index, case, channel, status, headers, body) = joined.expect("task did not panic");
        let context = format!("#{index} {case}");
        if case == "ok" {
            assert_eq!(headers.get(FALLBACK_HEADER), None, "{context}");
            let text = std::str::from_utf8(&body).expect("UTF-8");
            assert!(
                text.contains(&format!("You said: request-{index}<")),
                "{context}: cross-talk? {text}"
            );
        } else {
            let (cause, _) = expected(case);
            assert_fallback(status, &headers, &body, channel, cause, &context);
        }
        answered.insert(index, case);
    }
    assert_eq!(answered.len(), 400);
}

/// A minimal HTTP/1.1 exchange over a real socket.
async fn http_over_socket(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, HashMap<String, String>, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
    let head = std::str::from_utf8(&raw[..split]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect::<HashMap<_, _>>();
    let mut body = raw[split + 4..].to_vec();
    if headers.get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).expect("hex").trim(), 16).expect("size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_over_a_real_socket_with_the_chaos_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = ChaosApp::new(FallbackLayer::new().deadline(Duration::from_millis(300)));
    let server = tokio::spawn(chaos::serve(listener, app, async move {
        let _ = stopped.await;
    }));
    for prefix in ["voice", "sms"] {
        let channel = channel_of(prefix);
        for (case, _) in CASES {
            let (status, headers, body) =
                http_over_socket(addr, "POST", &format!("/{prefix}/{case}"), params_for(channel)).await;
            let context = format!("socket {prefix}/{case}");
            assert_eq!(status, 200, "{context}");
            assert_eq!(
                headers.get("content-type").map(String::as_str),
                Some("text/xml; charset=utf-8"),
                "{context}"
            );
            let report = validate(&body, TargetChannel::from(channel));
            assert!(report.is_valid(), "{context}: {:?}", report.diagnostics());
            if *case == "ok" {
                assert!(!headers.contains_key(FALLBACK_HEADER), "{context}");
            } else {
                assert_eq!(
                    headers.get(FALLBACK_HEADER).map(String::as_str),
                    Some(expected(case).0),
                    "{context}"
                );
            }
        }
    }
    // The server survived all of it.
    let (status, _, body) = http_over_socket(addr, "GET", "/", "").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("panic-body"));
    let _ = stop.send(());
    server.await.expect("server task").expect("server");
}

async fn panicking_handler() -> &'static str {
    panic!("handler bug")
}

async fn twiml_handler(params: TwilioParams) -> ([(http::HeaderName, &'static str); 1], String) {
    let body = format!(
        "<Response><Message>hi {}</Message></Response>",
        params.from().unwrap_or("?")
    );
    ([(CONTENT_TYPE, "text/xml")], body)
}

#[tokio::test]
async fn works_with_router_layer_route_layer_service_builder_and_service_fn() {
    let request = || form_request(Method::POST, "/sms", SMS_PARAMS).map(axum::body::Body::new);

    let with_layer: Router = Router::new()
        .route("/sms", post(panicking_handler))
        .layer(FallbackLayer::new());
    let (_, headers, _) = read(with_layer.oneshot(request()).await.expect("infallible")).await;
    assert_eq!(headers.get(FALLBACK_HEADER).map(|v| v.as_bytes()), Some(&b"panic"[..]));

    let with_route_layer: Router = Router::new()
        .route("/sms", post(panicking_handler))
        .route_layer(FallbackLayer::new());
    let (_, headers, _) = read(with_route_layer.oneshot(request()).await.expect("infallible")).await;
    assert_eq!(headers.get(FALLBACK_HEADER).map(|v| v.as_bytes()), Some(&b"panic"[..]));

    // The extractor reads what the layer parsed.
    let extracting: Router = Router::new()
        .route("/sms", post(twiml_handler))
        .layer(FallbackLayer::new());
    let (_, headers, body) = read(extracting.oneshot(request()).await.expect("infallible")).await;
    assert_eq!(headers.get(FALLBACK_HEADER), None);
    assert_eq!(&body[..], b"<Response><Message>hi +14155550100</Message></Response>");
    // Without the layer the extractor fails with 500, which the layer would have caught.
    let unlayered: Router = Router::new().route("/sms", post(twiml_handler));
    let (status, _, _) = read(unlayered.oneshot(request()).await.expect("infallible")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    let built = ServiceBuilder::new().layer(FallbackLayer::new()).service(service_fn(
        |_request: Request<RequestBody<Full<Bytes>>>| async {
            Err::<Response<Full<Bytes>>, _>(std::io::Error::other("backend down"))
        },
    ));
    let (_, headers, body) = read(
        built
            .oneshot(form_request(Method::POST, "/sms", SMS_PARAMS))
            .await
            .expect("never Err"),
    )
    .await;
    assert_eq!(headers.get(FALLBACK_HEADER).map(|v| v.as_bytes()), Some(&b"error"[..]));
    assert!(std::str::from_utf8(&body).expect("UTF-8").contains("<Message>"));
}

#[tokio::test]
async fn options_change_what_counts_as_a_failure() {
    // Without the marker header.
    let quiet = ChaosApp::new(FallbackLayer::new().marker_header(false));
    let (_, headers, _) = read(
        quiet
            .oneshot(form_request(Method::POST, "/sms/panic", SMS_PARAMS))
            .await
            .expect("ok"),
    )
    .await;
    assert_eq!(headers.get(FALLBACK_HEADER), None);

    // Well-formedness only: TwiML for the other channel passes.
    let lenient = ChaosApp::new(FallbackLayer::new().strictness(Strictness::WellFormed));
    let (_, headers, body) = read(
        lenient
            .oneshot(form_request(Method::POST, "/sms/wrong-channel", SMS_PARAMS))
            .await
            .expect("ok"),
    )
    .await;
    assert_eq!(headers.get(FALLBACK_HEADER), None);
    assert!(std::str::from_utf8(&body).expect("UTF-8").contains("<Say>"));

    // A panicking hook changes nothing.
    let hooked = ChaosApp::new(FallbackLayer::new().on_fallback(|_| panic!("hook bug")));
    let (status, headers, _) = read(
        hooked
            .oneshot(form_request(Method::POST, "/voice/error", VOICE_PARAMS))
            .await
            .expect("ok"),
    )
    .await;
    assert_eq!(
        (status, headers.get(FALLBACK_HEADER).map(|v| v.as_bytes())),
        (StatusCode::OK, Some(&b"error"[..]))
    );

    // Only 5xx as failures: a 404 carrying valid TwiML passes; 3xx always passes.
    let inner = service_fn(|request: Request<RequestBody<Full<Bytes>>>| async move {
        let status = if request.uri().path() == "/redirect" {
            StatusCode::FOUND
        } else {
            StatusCode::NOT_FOUND
        };
        Ok::<_, Infallible>(
            Response::builder()
                .status(status)
                .header(CONTENT_TYPE, "text/xml")
                .header("location", "/elsewhere")
                .body(Full::new(Bytes::from_static(
                    b"<Response><Message>not here</Message></Response>",
                )))
                .expect("response"),
        )
    });
    let only_5xx = FallbackLayer::new()
        .failure_status(|status| status.is_server_error())
        .layer(inner);
    let (status, headers, _) = read(
        only_5xx
            .clone()
            .oneshot(form_request(Method::POST, "/missing", SMS_PARAMS))
            .await
            .expect("ok"),
    )
    .await;
    assert_eq!((status, headers.get(FALLBACK_HEADER)), (StatusCode::NOT_FOUND, None));
    let (status, headers, _) = read(
        only_5xx
            .oneshot(form_request(Method::POST, "/redirect", SMS_PARAMS))
            .await
            .expect("ok"),
    )
    .await;
    assert_eq!(
        (status, headers.get("location").map(|v| v.as_bytes())),
        (StatusCode::FOUND, Some(&b"/elsewhere"[..]))
    );

    // A configured answer per called number.
    let config =
        Config::from_toml("[numbers.\"+14155550199\".messaging]\nmessage = \"Volvemos pronto\"").expect("config");
    let localised = ChaosApp::new(FallbackLayer::new().config(config));
    let (_, _, body) = read(
        localised
            .oneshot(form_request(Method::POST, "/sms/error", SMS_PARAMS))
            .await
            .expect("ok"),
    )
    .await;
    assert!(
        std::str::from_utf8(&body)
            .expect("UTF-8")
            .contains("<Message>Volvemos pronto</Message>")
    );
}

/// A form POST of `vector`'s parameters to its URL, with `signature` as X-Twilio-Signature.
fn signed_request(vector: &Vector, signature: Option<&str>) -> Request<Full<Bytes>> {
    let mut builder = Request::post(vector.url.as_str()).header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(signature) = signature {
        builder = builder.header("X-Twilio-Signature", signature);
    }
    builder
        .body(Full::new(Bytes::from(vector.form_body())))
        .expect("request")
}

#[tokio::test]
async fn the_signature_layer_checks_the_design_vectors_and_composes_outside_the_fallback() {
    let base = signature_vectors::by_id("base");
    let signature = base.signature.as_str();
    assert_eq!(
        compute_signature(&base.token, &base.url, &Params::from_form(base.form_body().as_bytes())),
        signature
    );
    let echo = service_fn(|request: Request<RequestBody<Full<Bytes>>>| async move {
        let verified = request
            .extensions()
            .get::<twiml_fallback::signature::Verified>()
            .is_some();
        let received = request.into_body().collect().await.expect("body").to_bytes();
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
            "verified={verified} bytes={}",
            received.len()
        )))))
    });
    let guarded = ValidateTwilioSignatureLayer::new(SignatureVerifier::new(base.token.as_str())).layer(echo);
    let (status, _, body) = read(
        guarded
            .clone()
            .oneshot(signed_request(&base, Some(signature)))
            .await
            .expect("ok"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        &body[..],
        format!("verified=true bytes={}", base.form_body().len()).as_bytes()
    );
    // No signature, the :443 form's signature made invalid, the signature of another URL.
    let broken = format!("{}x", signature_vectors::by_id("https_443_as_signed").signature);
    let other_url = signature_vectors::by_id("http_port_1234_kept").signature;
    for bad in [None, Some(broken.as_str()), Some(other_url.as_str())] {
        let (status, headers, _) = read(guarded.clone().oneshot(signed_request(&base, bad)).await.expect("ok")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{bad:?}");
        assert_eq!(
            headers.get(CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"text/plain; charset=utf-8"[..])
        );
    }
    // The :443 form of the URL verifies the same signature, as Twilio requires.
    let mut with_port = signed_request(&base, Some(signature));
    *with_port.uri_mut() = signature_vectors::by_id("https_443_as_signed")
        .url
        .parse()
        .expect("uri");
    assert_eq!(
        read(guarded.oneshot(with_port).await.expect("ok")).await.0,
        StatusCode::OK
    );

    // Composed: signature outside, fallback inside, a panicking app.
    let app: Router = Router::new()
        .route("/myapp.php", post(panicking_handler))
        .layer(FallbackLayer::new())
        .layer(ValidateTwilioSignatureLayer::new(SignatureVerifier::new(
            base.token.as_str(),
        )));
    let forged = signed_request(&base, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA=")).map(axum::body::Body::new);
    let (status, headers, _) = read(app.clone().oneshot(forged).await.expect("infallible")).await;
    assert_eq!(
        (status, headers.get(FALLBACK_HEADER)),
        (StatusCode::FORBIDDEN, None),
        "a forger gets 403, not TwiML"
    );
    let genuine = signed_request(&base, Some(signature)).map(axum::body::Body::new);
    let (status, headers, body) = read(app.oneshot(genuine).await.expect("infallible")).await;
    assert_eq!(
        (status, headers.get(FALLBACK_HEADER).map(|v| v.as_bytes())),
        (StatusCode::OK, Some(&b"panic"[..]))
    );
    assert!(std::str::from_utf8(&body).expect("UTF-8").contains("<Say>"));
}

#[tokio::test]
async fn a_signature_layer_without_tokens_fails_closed() {
    let echo = service_fn(|_request: Request<RequestBody<Full<Bytes>>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let guarded = ValidateTwilioSignatureLayer::new(SignatureVerifier::default()).layer(echo);
    let base = signature_vectors::by_id("base");
    let (status, _, _) = read(
        guarded
            .oneshot(signed_request(&base, Some(&base.signature)))
            .await
            .expect("ok"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_signature_layer_accepts_every_design_vector_and_nothing_tampered() {
    let echo = service_fn(|_request: Request<RequestBody<Full<Bytes>>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"through"))))
    });
    let guarded = ValidateTwilioSignatureLayer::new(SignatureVerifier::new("12345")).layer(echo);
    let status_of = |request: Request<Full<Bytes>>| {
        let guarded = guarded.clone();
        async move { guarded.oneshot(request).await.expect("infallible").status() }
    };
    // Form vectors as form posts, the JSON one with its body; tampered: the first parameter's
    // value or the body changed by one character.
    let request = |vector: &Vector, tampered: bool| {
        let (content_type, body) = match (&vector.body, &vector.params) {
            (Some(json), _) => ("application/json", format!("{json}{}", if tampered { " " } else { "" })),
            (None, Some(params)) => {
                let mut params = params.clone();
                if tampered {
                    params[0].1.push('1');
                }
                let mut form = form_urlencoded::Serializer::new(String::new());
                form.extend_pairs(params);
                ("application/x-www-form-urlencoded", form.finish())
            }
            (None, None) => panic!("{}: a DESIGN vector has a form or a body", vector.id),
        };
        Request::post(vector.url.as_str())
            .header(CONTENT_TYPE, content_type)
            .header("X-Twilio-Signature", vector.signature.as_str())
            .body(Full::new(Bytes::from(body)))
            .expect("request")
    };
    let design = signature_vectors::design();
    assert!(design.len() >= 8, "{} DESIGN vectors", design.len());
    for vector in &design {
        assert_eq!(vector.token, "12345", "{}", vector.id);
        assert_eq!(status_of(request(vector, false)).await, StatusCode::OK, "{}", vector.id);
        assert_eq!(
            status_of(request(vector, true)).await,
            StatusCode::FORBIDDEN,
            "{} tampered",
            vector.id
        );
    }
    // A GET signs the URL alone.
    let get_url = "https://mycompany.com/voice?CallSid=CA1&From=%2B14158675309";
    let signature = compute_signature("12345", get_url, []);
    let get = Request::get(get_url)
        .header("X-Twilio-Signature", signature.as_str())
        .body(Full::new(Bytes::new()))
        .expect("request");
    assert_eq!(status_of(get).await, StatusCode::OK);
}

#[tokio::test]
async fn the_signature_layer_refuses_a_body_too_large_to_verify_without_calling_the_app() {
    let called = Arc::new(Mutex::new(0usize));
    let counter = Arc::clone(&called);
    let app = ValidateTwilioSignatureLayer::new(SignatureVerifier::new("t0ken"))
        .request_body_limit(1024)
        .layer(service_fn(move |_request: Request<RequestBody<Full<Bytes>>>| {
            let counter = Arc::clone(&counter);
            async move {
                *counter.lock().expect("counter") += 1;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"<Response/>"))))
            }
        }));
    // Correctly signed, but 2 KB: it cannot be verified within the limit.
    let body = format!("{VOICE_PARAMS}&Padding={}", "a".repeat(2048));
    let url = "http://fallback.example.com/voice";
    let signature = compute_signature("t0ken", url, &Params::from_form(body.as_bytes()));
    let mut request = form_request(Method::POST, url, &body);
    request
        .headers_mut()
        .insert(SIGNATURE_HEADER, signature.parse().expect("header"));
    let (status, _, _) = read(app.oneshot(request).await.expect("infallible")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(*called.lock().expect("counter"), 0, "the app was called");
}

/// A response body that never ends: 1 KB chunks forever.
struct Endless;

impl http_body::Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![b' '; 1024])))))
    }
}

#[tokio::test]
async fn an_endless_response_body_is_cut_at_the_limit_not_read_forever() {
    let app = FallbackLayer::new().layer(service_fn(|_request: Request<RequestBody<Full<Bytes>>>| async {
        let mut response = Response::new(Endless);
        response
            .headers_mut()
            .insert(CONTENT_TYPE, "text/xml".parse().expect("header"));
        Ok::<_, Infallible>(response)
    }));
    // Without the cut-off this never completes; the bound only turns a hang into a failure.
    let response = tokio::time::timeout(
        Duration::from_secs(60),
        app.oneshot(form_request(Method::POST, "/voice", VOICE_PARAMS)),
    )
    .await
    .expect("the layer stopped reading")
    .expect("infallible");
    let (status, headers, body) = read(response).await;
    assert_fallback(status, &headers, &body, Channel::Voice, "too-large", "an endless body");
}

/// One step of a [`ScriptedBody`].
#[derive(Clone, Copy, Debug)]
enum Step {
    /// `Pending`, the task woken at once (the rest is "on the wire").
    Wait,
    /// `Pending`, never woken: the body stalls.
    Stall,
    Data(&'static str),
    Fail,
}

/// A request body that plays its steps one poll at a time, then ends.
struct ScriptedBody(std::collections::VecDeque<Step>);

impl http_body::Body for ScriptedBody {
    type Data = Bytes;
    type Error = String;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, String>>> {
        use std::task::Poll;
        match self.0.front().copied() {
            None => Poll::Ready(None),
            Some(Step::Stall) => Poll::Pending,
            Some(Step::Wait) => {
                self.0.pop_front();
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Some(Step::Data(data)) => {
                self.0.pop_front();
                Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(data.as_bytes())))))
            }
            Some(Step::Fail) => {
                self.0.pop_front();
                Poll::Ready(Some(Err("the client went away".to_owned())))
            }
        }
    }
}

/// An SMS app answering with the `From` and `Body` it read, counting its calls.
fn echoing_sms_app(
    calls: Arc<Mutex<u32>>,
) -> impl tower::Service<
    Request<RequestBody<ScriptedBody>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    service_fn(move |request: Request<RequestBody<ScriptedBody>>| {
        let calls = Arc::clone(&calls);
        async move {
            *calls.lock().expect("calls") += 1;
            let body = request
                .into_body()
                .collect()
                .await
                .expect("the body the layer read")
                .to_bytes();
            let params = Params::from_form(&body);
            let (from, text) = (params.from().unwrap_or(""), params.body().unwrap_or(""));
            let twiml = format!("<Response><Message>{from} {text}</Message></Response>");
            Ok::<_, Infallible>(
                Response::builder()
                    .header(CONTENT_TYPE, "text/xml")
                    .body(Full::new(Bytes::from(twiml)))
                    .expect("response"),
            )
        }
    })
}

fn scripted_request(steps: &[Step]) -> Request<ScriptedBody> {
    Request::post("/sms")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(ScriptedBody(steps.iter().copied().collect()))
        .expect("request")
}

#[tokio::test]
async fn a_request_body_in_pieces_reaches_the_app_whole_whenever_they_arrive() {
    let halves = [
        Step::Data("MessageSid=SM1&From=%2B1415"),
        Step::Data("5550100&Body=whole"),
    ];
    for steps in [
        vec![halves[0], halves[1]],
        vec![Step::Wait, halves[0], halves[1]],
        vec![halves[0], Step::Wait, halves[1]],
        vec![Step::Wait, halves[0], Step::Wait, Step::Wait, halves[1], Step::Wait],
    ] {
        let calls = Arc::new(Mutex::new(0));
        let app = FallbackLayer::new().layer(echoing_sms_app(Arc::clone(&calls)));
        let (status, headers, body) = read(app.oneshot(scripted_request(&steps)).await.expect("ok")).await;
        assert_eq!(status, StatusCode::OK, "{steps:?}");
        assert_eq!(headers.get(FALLBACK_HEADER), None, "{steps:?}");
        assert_eq!(
            &body[..],
            b"<Response><Message>+14155550100 whole</Message></Response>",
            "{steps:?}"
        );
        assert_eq!(*calls.lock().expect("calls"), 1, "{steps:?}");
    }
}

#[tokio::test]
async fn a_request_body_that_fails_gets_the_fallback_and_never_reaches_the_app() {
    for steps in [
        vec![Step::Fail],
        vec![Step::Data("MessageSid=SM1&Bo"), Step::Fail],
        vec![Step::Wait, Step::Fail],
        vec![Step::Data("MessageSid=SM1&Bo"), Step::Wait, Step::Fail],
    ] {
        let calls = Arc::new(Mutex::new(0));
        let (layer, events) = recording_layer();
        let app = layer
            .channel(Channel::Messaging)
            .layer(echoing_sms_app(Arc::clone(&calls)));
        let (status, headers, body) = read(app.oneshot(scripted_request(&steps)).await.expect("ok")).await;
        assert_fallback(
            status,
            &headers,
            &body,
            Channel::Messaging,
            "request-body-error",
            &format!("{steps:?}"),
        );
        assert_eq!(*calls.lock().expect("calls"), 0, "{steps:?}");
        let event = events.lock().expect("events").pop().expect("an event");
        assert!(
            event.cause.to_string().contains("the client went away"),
            "{steps:?}: {}",
            event.cause
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_body_that_stalls_meets_the_deadline() {
    for steps in [
        vec![Step::Stall],
        vec![Step::Data("MessageSid=SM1&Bo"), Step::Wait, Step::Stall],
    ] {
        let calls = Arc::new(Mutex::new(0));
        let app = FallbackLayer::new()
            .channel(Channel::Messaging)
            .deadline(Duration::from_millis(250))
            .layer(echoing_sms_app(Arc::clone(&calls)));
        let started = tokio::time::Instant::now();
        let (status, headers, body) = read(app.oneshot(scripted_request(&steps)).await.expect("ok")).await;
        assert_fallback(
            status,
            &headers,
            &body,
            Channel::Messaging,
            "timeout",
            &format!("{steps:?}"),
        );
        assert!(started.elapsed() >= Duration::from_millis(250), "{steps:?}");
        assert_eq!(*calls.lock().expect("calls"), 0, "{steps:?}");
    }
}

#[tokio::test]
async fn markup_in_the_parameters_never_reaches_the_twiml_unescaped() {
    let body = Params::from_pairs([
        ("MessageSid", "SM1"),
        ("From", "+14155550100"),
        (
            "Body",
            "</Message><Redirect>https://evil.example/</Redirect><Message>&amp;",
        ),
    ])
    .to_form();
    let (status, headers, answer) = read(
        ChaosApp::new(FallbackLayer::new())
            .oneshot(form_request(Method::POST, "/sms/ok", &body))
            .await
            .expect("ok"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get(FALLBACK_HEADER), None, "the app's own answer");
    let text = std::str::from_utf8(&answer).expect("UTF-8");
    assert!(!text.contains("<Redirect>"), "{text}");
    assert!(text.contains("&lt;/Message&gt;&lt;Redirect&gt;"), "{text}");
    assert!(validate(&answer, TargetChannel::Messaging).is_valid(), "{text}");
}

// What Twilio runs, the layer passes: one test per row of Twilio's "Your Response" table, each
// through a real axum `Router` behind the default layer.

const ORDER_READY: &str = "<Response><Message>Order 42 is ready</Message></Response>";

async fn string_sms() -> String {
    ORDER_READY.to_owned() // axum serves a String as text/plain; charset=utf-8
}

async fn plain_sms() -> &'static str {
    "Thanks, we got your message"
}

async fn plain_voice() -> &'static str {
    "Please hold the line"
}

async fn html_twiml() -> Html<&'static str> {
    Html("<Response><Say>Hello</Say></Response>")
}

async fn html_error_page() -> Html<&'static str> {
    Html("<html><body><h1>Oops</h1></body></html>")
}

const MP3: &[u8] = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x64\x00";

async fn audio_voice() -> ([(http::HeaderName, &'static str); 1], &'static [u8]) {
    ([(CONTENT_TYPE, "audio/mpeg")], MP3)
}

/// A 201 with an app header and TwiML served as text/plain: only the Content-Type may change.
async fn created_string_sms() -> (StatusCode, [(http::HeaderName, &'static str); 1], String) {
    (
        StatusCode::CREATED,
        [(http::HeaderName::from_static("x-app"), "kept")],
        ORDER_READY.to_owned(),
    )
}

fn twilio_router(layer: FallbackLayer) -> Router {
    Router::new()
        .route("/sms/string", post(string_sms))
        .route("/sms/created", post(created_string_sms))
        .route("/sms/plain", post(plain_sms))
        .route("/sms/audio", post(audio_voice))
        .route("/voice/plain", post(plain_voice))
        .route("/voice/html", post(html_twiml))
        .route("/voice/html-error", post(html_error_page))
        .route("/voice/audio", post(audio_voice))
        .layer(layer)
}

async fn call(router: &Router, path: &str) -> (StatusCode, HeaderMap, Bytes) {
    let params = if path.starts_with("/voice") {
        VOICE_PARAMS
    } else {
        SMS_PARAMS
    };
    let request = form_request(Method::POST, path, params).map(axum::body::Body::new);
    read(router.clone().oneshot(request).await.expect("infallible")).await
}

/// Calls `path` and checks the answer is the fallback for `channel`, caused by `cause`.
async fn assert_route_falls_back(router: &Router, path: &str, channel: Channel, cause: &str) {
    let (status, headers, body) = call(router, path).await;
    assert_fallback(status, &headers, &body, channel, cause, path);
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

#[tokio::test]
async fn a_string_handler_serving_twiml_passes_with_its_content_type_corrected() {
    let (layer, events) = recording_layer();
    let router = twilio_router(layer);
    let (status, headers, body) = call(&router, "/sms/string").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, FALLBACK_HEADER), None, "passed, not replaced");
    assert_eq!(header(&headers, "content-type"), Some("text/xml; charset=utf-8"));
    assert_eq!(&body[..], ORDER_READY.as_bytes());
    // Status, the app's other headers and the bytes are untouched.
    let (status, headers, body) = call(&router, "/sms/created").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(header(&headers, "x-app"), Some("kept"));
    assert_eq!(header(&headers, "content-type"), Some("text/xml; charset=utf-8"));
    assert_eq!(&body[..], ORDER_READY.as_bytes());
    assert!(events.lock().expect("events").is_empty());
}

#[tokio::test]
async fn plain_text_passes_untouched_on_both_channels() {
    let (layer, events) = recording_layer();
    let router = twilio_router(layer);
    for (path, text) in [
        ("/sms/plain", "Thanks, we got your message"),
        ("/voice/plain", "Please hold the line"),
    ] {
        let (status, headers, body) = call(&router, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(header(&headers, FALLBACK_HEADER), None, "{path}");
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/plain; charset=utf-8"),
            "{path}"
        );
        assert_eq!(&body[..], text.as_bytes(), "{path}");
    }
    assert!(events.lock().expect("events").is_empty());
}

#[tokio::test]
async fn html_twiml_runs_and_an_html_error_page_falls_back() {
    let (layer, events) = recording_layer();
    let router = twilio_router(layer);
    let (status, headers, body) = call(&router, "/voice/html").await;
    assert_eq!((status, header(&headers, FALLBACK_HEADER)), (StatusCode::OK, None));
    assert_eq!(header(&headers, "content-type"), Some("text/xml; charset=utf-8"));
    assert_eq!(&body[..], b"<Response><Say>Hello</Say></Response>");

    assert_route_falls_back(&router, "/voice/html-error", Channel::Voice, "invalid-twiml").await;
    let events = events.lock().expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].error_code, ErrorCode::ROOT_NOT_RESPONSE);
}

#[tokio::test]
async fn audio_is_played_on_a_call_and_falls_back_on_a_message() {
    let router = twilio_router(FallbackLayer::new());
    let (status, headers, body) = call(&router, "/voice/audio").await;
    assert_eq!((status, header(&headers, FALLBACK_HEADER)), (StatusCode::OK, None));
    assert_eq!(header(&headers, "content-type"), Some("audio/mpeg"));
    assert_eq!(&body[..], MP3);
    // Twilio fails a message answered with audio (12300), so the layer answers instead.
    assert_route_falls_back(&router, "/sms/audio", Channel::Messaging, "content-type").await;
}

#[tokio::test]
async fn stricter_content_policies_are_opt_in() {
    let twiml_only = twilio_router(FallbackLayer::new().content_policy(ContentPolicy::TwimlOnly));
    assert_route_falls_back(&twiml_only, "/sms/plain", Channel::Messaging, "content-type").await;
    assert_route_falls_back(&twiml_only, "/voice/audio", Channel::Voice, "content-type").await;
    let (_, headers, body) = call(&twiml_only, "/sms/string").await;
    assert_eq!(header(&headers, FALLBACK_HEADER), None, "TwiML still passes, corrected");
    assert_eq!(&body[..], ORDER_READY.as_bytes());

    let xml_only = twilio_router(FallbackLayer::new().content_policy(ContentPolicy::XmlOnly));
    for (path, channel) in [
        ("/sms/string", Channel::Messaging),
        ("/voice/html", Channel::Voice),
        ("/voice/plain", Channel::Voice),
    ] {
        assert_route_falls_back(&xml_only, path, channel, "content-type").await;
    }
}

// The signature layer checks the URL Twilio signed wherever it is mounted.

fn signed_sms(uri: &str, signed_url: &str, token: &str) -> Request<axum::body::Body> {
    let params = Params::from_form(SMS_PARAMS.as_bytes());
    let signature = compute_signature(token, signed_url, params.iter());
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("host", "example.com")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(SIGNATURE_HEADER, signature)
        .body(axum::body::Body::from(SMS_PARAMS))
        .expect("request")
}

async fn verified_twiml() -> ([(http::HeaderName, &'static str); 1], &'static str) {
    (
        [(CONTENT_TYPE, "text/xml")],
        "<Response><Message>verified</Message></Response>",
    )
}

fn guard(policy: &UrlPolicy) -> ValidateTwilioSignatureLayer {
    ValidateTwilioSignatureLayer::new(SignatureVerifier::new("12345")).url_policy(policy.clone())
}

#[tokio::test]
async fn the_signature_layer_verifies_the_url_twilio_signed_under_nest_and_nest_service() {
    let as_received = UrlPolicy::as_received();
    let public = UrlPolicy::public_base("https://voice.example.com/twilio").expect("base");
    for (policy, base) in [
        (&as_received, "http://example.com"),
        (&public, "https://voice.example.com/twilio"),
    ] {
        let inner = || Router::new().route("/sms", post(verified_twiml));
        let mounts: Vec<(&str, Router)> = vec![
            ("nested", Router::new().nest("/nested", inner().layer(guard(policy)))),
            (
                "doubly nested",
                Router::new().nest("/nested", Router::new().nest("/deeper", inner().layer(guard(policy)))),
            ),
            (
                "nest_service",
                Router::new().nest_service("/nested", inner().layer(guard(policy))),
            ),
            (
                "on a route",
                Router::new().route("/nested/sms", post(verified_twiml).layer(guard(policy))),
            ),
            (
                "on the top router",
                Router::new().nest("/nested", inner()).layer(guard(policy)),
            ),
        ];
        for (how, router) in mounts {
            let path = if how == "doubly nested" {
                "/nested/deeper/sms"
            } else {
                "/nested/sms"
            };
            let context = format!("{how}, signed for {base}{path}");
            let genuine = signed_sms(path, &format!("{base}{path}"), "12345");
            let (status, _, body) = read(router.clone().oneshot(genuine).await.expect("infallible")).await;
            assert_eq!(status, StatusCode::OK, "{context}: {body:?}");
            assert_eq!(
                &body[..],
                b"<Response><Message>verified</Message></Response>",
                "{context}"
            );
            // Signed for the path the inner router sees: a forgery of the URL.
            let stripped = signed_sms(path, &format!("{base}/sms"), "12345");
            let (status, _, _) = read(router.clone().oneshot(stripped).await.expect("infallible")).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{context}: the prefix-stripped URL");
            let forged = signed_sms(path, &format!("{base}{path}"), "not-the-token");
            let (status, _, _) = read(router.oneshot(forged).await.expect("infallible")).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{context}: a wrong token");
        }
    }
}

#[tokio::test]
async fn a_nested_fallback_reports_the_path_twilio_requested() {
    let (layer, events) = recording_layer();
    let router = Router::new().nest(
        "/twilio",
        Router::new().route("/sms", post(panicking_handler)).layer(layer),
    );
    let (status, headers, body) = call(&router, "/twilio/sms").await;
    assert_fallback(status, &headers, &body, Channel::Messaging, "panic", "nested");
    assert_eq!(events.lock().expect("events")[0].path, "/twilio/sms");
}

/// A `tracing` writer that keeps what was written.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_corrected_content_type_is_logged_once_per_path() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let router = twilio_router(FallbackLayer::new());
    for _ in 0..3 {
        call(&router, "/sms/string").await;
        call(&router, "/sms/created").await;
    }
    let log = String::from_utf8(captured.0.lock().expect("log").clone()).expect("UTF-8");
    let warnings: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("Content-Type corrected"))
        .collect();
    assert_eq!(warnings.len(), 2, "one per path:\n{log}");
    assert!(
        warnings[0].contains("path=/sms/string") && warnings[0].contains("text/plain"),
        "{log}"
    );
    assert!(warnings[1].contains("path=/sms/created"), "{log}");
}

/// A capture sink that remembers what it was handed.
#[derive(Clone, Default)]
struct CaptureLog(Arc<Mutex<Vec<twiml_fallback::inbox::CaptureRequest>>>);

impl twiml_fallback::layer::CaptureSink for CaptureLog {
    fn capture(&self, request: twiml_fallback::inbox::CaptureRequest) {
        self.0.lock().expect("not poisoned").push(request);
    }
}

#[tokio::test]
async fn failures_are_handed_to_the_capture_sink_with_every_parameter_and_passes_are_not() {
    let captured = CaptureLog::default();
    let service = FallbackLayer::new()
        .capture(captured.clone())
        .layer(ChaosService::new(Channel::Messaging));
    let sms = "MessageSid=SM9&From=%2B14155550100&To=%2B14155550199&Body=hi&Tag=a&Tag=b";
    for path in ["/panic", "/ok", "/panic"] {
        let (status, ..) = read(
            service
                .clone()
                .oneshot(form_request(Method::POST, path, sms))
                .await
                .expect("ok"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    // Without a SID there is nothing to keep: not handed over.
    let _ = service
        .clone()
        .oneshot(form_request(Method::POST, "/panic", "From=%2B1"))
        .await;
    let captured = captured.0.lock().expect("not poisoned").clone();
    assert_eq!(captured.len(), 2, "the two failures, not the pass: {captured:?}");
    let first = &captured[0];
    assert_eq!((first.url.as_str(), first.method.as_str()), ("/panic", "POST"));
    assert_eq!(
        (first.cause.as_deref(), first.error_code, first.channel),
        (Some("panic"), Some(11200), Some(Channel::Messaging))
    );
    assert_eq!(
        first.params,
        Params::from_form(sms.as_bytes())
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
    );
}
