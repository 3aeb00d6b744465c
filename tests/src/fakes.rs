//! Local stand-ins for what the fallback endpoint talks to: the alert webhook and the app's
//! primary webhook.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use twiml_fallback::signature::{Payload, SIGNATURE_HEADER, SignatureVerifier};
use twiml_fallback::webhook::Params;

async fn listen(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// Receives alerts (POSTed JSON) and remembers them.
#[derive(Clone)]
pub struct AlertReceiver {
    /// Where to point `alerts.webhook_url`.
    pub url: String,
    received: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl AlertReceiver {
    /// Starts one on a free local port.
    pub async fn start() -> Self {
        let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let router = Router::new()
            .route("/alert", post(record))
            .with_state(Arc::clone(&received));
        let addr = listen(router).await;
        Self {
            url: format!("http://{addr}/alert"),
            received,
        }
    }

    /// Every alert received so far.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        self.received.lock().map(|alerts| alerts.clone()).unwrap_or_default()
    }

    /// The alerts whose `error_url` is `url`.
    pub fn alerts_for(&self, url: &str) -> Vec<serde_json::Value> {
        self.alerts()
            .into_iter()
            .filter(|alert| alert["error_url"] == url)
            .collect()
    }
}

async fn record(
    State(received): State<Arc<Mutex<Vec<serde_json::Value>>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    if json {
        if let Ok(mut alerts) = received.lock() {
            alerts.push(value);
        }
        StatusCode::OK
    } else {
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    }
}

/// The app's primary webhook, recovered: `/healthy` answers voice TwiML with relative URLs,
/// `/redirect` answers 302 to `/healthy`, `/endless` a body that never ends, anything else 500. It checks the signature of every request it gets, as a real app would.
#[derive(Clone)]
pub struct Primary {
    /// `http://127.0.0.1:port`.
    pub base_url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

/// One request the primary received.
#[derive(Clone, Debug)]
pub struct Hit {
    /// The path.
    pub path: String,
    /// Whether its `X-Twilio-Signature` verified with the table's token.
    pub verified: bool,
    /// The parameters sent.
    pub params: Params,
}

/// What `/healthy` answers.
pub const HEALTHY_TWIML: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#,
    r#"<Gather action="/menu" numDigits="1"><Say>We are back. Press 1.</Say></Gather></Response>"#
);

impl Primary {
    /// Starts one on a free local port.
    pub async fn start() -> Self {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let addr = {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a local port");
            let addr = listener.local_addr().expect("local address");
            let state = (Arc::clone(&hits), format!("http://{addr}"));
            let router = Router::new().fallback(primary).with_state(state);
            tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            });
            addr
        };
        Self {
            base_url: format!("http://{addr}"),
            hits,
        }
    }

    /// Every request received so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().map(|hits| hits.clone()).unwrap_or_default()
    }
}

async fn primary(State((hits, base)): State<(Arc<Mutex<Vec<Hit>>>, String)>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let url = format!("{base}{}", parts.uri.path_and_query().map_or("/", |pq| pq.as_str()));
    let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let params = Params::from_request(&parts.method, parts.uri.query(), content_type, &bytes);
    let signature = parts
        .headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let payload = Payload::for_request(&parts.method, &url, &bytes, &params);
    let verified = SignatureVerifier::new(crate::TOKEN)
        .verify(&url, payload, signature)
        .is_ok();
    let path = parts.uri.path().to_owned();
    if let Ok(mut hits) = hits.lock() {
        hits.push(Hit {
            path: path.clone(),
            verified,
            params,
        });
    }
    if path == "/healthy" && verified {
        ([(CONTENT_TYPE, "text/xml")], HEALTHY_TWIML).into_response()
    } else if path == "/endless" {
        // A body that never ends: a recovery must stop reading it past 64 KB.
        let mut response = Response::new(axum::body::Body::new(Endless));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, "text/xml".parse().expect("static header"));
        response
    } else if path == "/redirect" {
        // To a page that would pass: a recovery that follows redirects would relay it.
        (
            StatusCode::FOUND,
            [(axum::http::header::LOCATION, format!("{base}/healthy"))],
            "moved",
        )
            .into_response()
    } else if path == "/healthy" {
        (StatusCode::FORBIDDEN, "bad signature").into_response()
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, "still broken").into_response()
    }
}

/// A response body of spaces that never ends.
struct Endless;

impl http_body::Body for Endless {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![b' '; 4096])))))
    }
}
