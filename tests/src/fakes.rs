//! Local stand-ins for what the fallback endpoint talks to: the alert webhook (more sinks are in
//! [`crate::sinks`]), the app's
//! primary webhook, and — for replay — an app that can be taken down and brought back
//! ([`ReplayApp`]) and Twilio's Messages API ([`MessagesApi`]).

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

    /// The notifications about the incident of `origin` (the failing primary's scheme, host and
    /// port).
    pub fn alerts_for(&self, origin: &str) -> Vec<serde_json::Value> {
        self.alerts()
            .into_iter()
            .filter(|alert| alert["origin"] == origin)
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

/// The Messages API's answer to a scripted failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiFailure {
    /// `400` with Twilio's error JSON (`code`, `message`): the send is refused.
    Refuse {
        /// Twilio's error code (e.g. 21211).
        code: u32,
        /// Its message (e.g. `Invalid 'To' Phone Number`).
        message: String,
    },
    /// `500`: the outcome is unknown to the sender.
    ServerError,
    /// No answer at all (the connection is held open until the sender gives up).
    Hang,
}

impl ApiFailure {
    /// Twilio's answer to an invalid recipient: 400, error 21211.
    pub fn invalid_to() -> Self {
        ApiFailure::Refuse {
            code: 21211,
            message: "Invalid 'To' Phone Number".to_owned(),
        }
    }
}

/// One request the fake Messages API received.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    /// The method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The account SID in the path (`/2010-04-01/Accounts/{AC}/Messages.json`), when it is one.
    pub account: Option<String>,
    /// The HTTP Basic user, decoded.
    pub user: Option<String>,
    /// The HTTP Basic password, decoded.
    pub password: Option<String>,
    /// The form pairs, in order.
    pub form: Vec<(String, String)>,
    /// The status it answered (`0` while it hangs).
    pub status: u16,
    /// The message SID it answered (a `201` only).
    pub sid: Option<String>,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl ApiRequest {
    /// The first value of a form field.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

struct Script {
    /// Only sends to this recipient (`To`); `None`: any.
    to: Option<String>,
    remaining: usize,
    failure: ApiFailure,
}

#[derive(Default)]
struct ApiState {
    requests: Vec<ApiRequest>,
    scripts: Vec<Script>,
    issued: u128,
    /// How long an accepted send takes to be answered (it is recorded on arrival).
    delay: std::time::Duration,
}

/// A fake of Twilio's Messages API on 127.0.0.1: records every request (the account from the
/// path, the Basic credentials decoded, the form pairs in order) and answers `POST
/// /2010-04-01/Accounts/{AC}/Messages.json` with `201` and Twilio-shaped JSON (`sid` `SM` + 32
/// hex, unique per message, `status` `queued`, `to`, `from`, `body`) — unless scripted to fail
/// ([`MessagesApi::fail_next`], [`MessagesApi::fail_to`]). Any other path answers 404.
#[derive(Clone)]
pub struct MessagesApi {
    /// `http://127.0.0.1:PORT`: the API base (`--api-base`, `TWILIO_API_BASE`).
    pub base_url: String,
    state: Arc<Mutex<ApiState>>,
}

impl MessagesApi {
    /// Starts one on a free local port.
    pub async fn start() -> Self {
        let state: Arc<Mutex<ApiState>> = Arc::default();
        let router = Router::new().fallback(messages_api).with_state(Arc::clone(&state));
        let addr = listen(router).await;
        Self {
            base_url: format!("http://{addr}"),
            state,
        }
    }

    /// Every accepted send is answered only after `delay` (recorded when it arrives): a crash
    /// test's kills then land while sends are in flight too.
    pub fn answer_after(&self, delay: std::time::Duration) {
        if let Ok(mut state) = self.state.lock() {
            state.delay = delay;
        }
    }

    /// The next `times` sends (to anyone) answer `failure`.
    pub fn fail_next(&self, times: usize, failure: ApiFailure) {
        self.script(None, times, failure);
    }

    /// The next `times` sends to `to` answer `failure` (takes precedence over [`Self::fail_next`]).
    pub fn fail_to(&self, to: &str, times: usize, failure: ApiFailure) {
        self.script(Some(to.to_owned()), times, failure);
    }

    fn script(&self, to: Option<String>, times: usize, failure: ApiFailure) {
        if let Ok(mut state) = self.state.lock() {
            state.scripts.push(Script {
                to,
                remaining: times,
                failure,
            });
        }
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<ApiRequest> {
        self.state
            .lock()
            .map(|state| state.requests.clone())
            .unwrap_or_default()
    }

    /// The requests whose `To` is `to`.
    pub fn requests_to(&self, to: &str) -> Vec<ApiRequest> {
        self.requests()
            .into_iter()
            .filter(|request| request.field("To") == Some(to))
            .collect()
    }
}

async fn messages_api(State(state): State<Arc<Mutex<ApiState>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let account = path
        .strip_prefix("/2010-04-01/Accounts/")
        .and_then(|rest| rest.strip_suffix("/Messages.json"))
        .filter(|account| !account.is_empty() && !account.contains('/'))
        .map(str::to_owned);
    let (user, password) = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| base64_decode(encoded.trim()))
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .and_then(|decoded| {
            decoded
                .split_once(':')
                .map(|(user, password)| (Some(user.to_owned()), Some(password.to_owned())))
        })
        .unwrap_or((None, None));
    let form: Vec<(String, String)> = Params::from_form(&bytes)
        .iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let mut recorded = ApiRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        account: account.clone(),
        user,
        password,
        form,
        status: 0,
        sid: None,
        at: std::time::Instant::now(),
    };
    let routed = parts.method == axum::http::Method::POST && account.is_some();
    let (failure, sid, delay) = {
        let Ok(mut state) = state.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let to = recorded.field("To").map(str::to_owned);
        let failure = if routed {
            let scripted = state
                .scripts
                .iter()
                .position(|script| script.remaining > 0 && script.to.is_some() && script.to == to)
                .or_else(|| {
                    state
                        .scripts
                        .iter()
                        .position(|script| script.remaining > 0 && script.to.is_none())
                });
            scripted.map(|index| {
                let script = &mut state.scripts[index];
                script.remaining -= 1;
                script.failure.clone()
            })
        } else {
            None
        };
        let sid = (routed && failure.is_none()).then(|| {
            state.issued += 1;
            // Unique per message, and not all zeros: the SID Twilio's would look like.
            format!(
                "SM{:032x}",
                0x5eed_0000_0000_0000_0000_0000_0000_0000_u128 + state.issued
            )
        });
        recorded.status = match (&failure, routed) {
            (_, false) => 404,
            (Some(ApiFailure::Refuse { .. }), true) => 400,
            (Some(ApiFailure::ServerError), true) => 500,
            (Some(ApiFailure::Hang), true) => 0,
            (None, true) => 201,
        };
        recorded.sid = sid.clone();
        state.requests.push(recorded.clone());
        (failure, sid, state.delay)
    };
    let json = |status: StatusCode, value: serde_json::Value| {
        (status, [(CONTENT_TYPE, "application/json")], value.to_string()).into_response()
    };
    if !routed {
        return json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"code": 20404, "message": format!("The requested resource {path} was not found"), "status": 404}),
        );
    }
    match failure {
        Some(ApiFailure::Refuse { code, message }) => json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({
                "code": code,
                "message": message,
                "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
                "status": 400,
            }),
        ),
        Some(ApiFailure::ServerError) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"code": 20500, "message": "Internal Server Error", "status": 500}),
        ),
        Some(ApiFailure::Hang) => {
            std::future::pending::<()>().await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        None => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let sid = sid.unwrap_or_default();
            let account = account.unwrap_or_default();
            json(
                StatusCode::CREATED,
                serde_json::json!({
                    "sid": sid,
                    "account_sid": account,
                    "to": recorded.field("To"),
                    "from": recorded.field("From"),
                    "body": recorded.field("Body"),
                    "num_media": recorded.form.iter().filter(|(key, _)| key == "MediaUrl").count().to_string(),
                    "status": "queued",
                    "direction": "outbound-api",
                    "api_version": "2010-04-01",
                    "error_code": null,
                    "error_message": null,
                    "uri": format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
                }),
            )
        }
    }
}

/// Standard base64 (padded or not), for the Basic credentials; `None` when it is not base64.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |byte: u8| match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut count) = (0u32, 0u32);
    for byte in text.trim_end_matches('=').bytes() {
        bits = (bits << 6) | u32::from(value(byte)?);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// What a [`ReplayApp`] path answers while the app is up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `<Response><Message>Got it: {Body}</Message></Response>` (the default).
    Echo,
    /// `500`, as if this path were down.
    Down,
    /// This TwiML (`text/xml`), `{Body}` replaced by the request's `Body`, XML-escaped.
    Twiml(String),
    /// `302 Found` to this `Location`.
    Found(String),
}

/// One request a [`ReplayApp`] received.
#[derive(Clone, Debug)]
pub struct AppHit {
    /// The full URL requested (`http://127.0.0.1:PORT/path?query`).
    pub url: String,
    /// The path.
    pub path: String,
    /// The method.
    pub method: String,
    /// The parameters (the form of a POST, the query of a GET), in order.
    pub params: Vec<(String, String)>,
    /// `X-Twilio-Signature`.
    pub signature: Option<String>,
    /// Whether the signature verified with the table's token (the core's verifier).
    pub verified: bool,
    /// `X-Twiml-Fallback-Replay`.
    pub replay: Option<String>,
    /// `X-Twiml-Fallback-Received-At`.
    pub received_at: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// The status the app answered.
    pub answered: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl AppHit {
    /// Whether it was a replay (`X-Twiml-Fallback-Replay: 1`), not the synchronous recovery.
    pub fn is_replay(&self) -> bool {
        self.replay.as_deref() == Some("1")
    }

    /// The first value of a parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct AppState {
    down: bool,
    routes: std::collections::HashMap<String, Route>,
    hits: Vec<AppHit>,
    /// How long every answer takes (it is recorded on arrival).
    delay: std::time::Duration,
}

/// The app behind a number, as replay finds it: down (every path `500`) or up, each path
/// answering its [`Route`] (messaging TwiML echoing the `Body` unless set otherwise); records
/// every request in arrival order with its full URL, parameters, signature and the
/// `X-Twiml-Fallback-*` headers.
#[derive(Clone)]
pub struct ReplayApp {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// `127.0.0.1:PORT`, for `[recovery] allow_hosts`.
    pub host: String,
    state: Arc<Mutex<AppState>>,
}

impl ReplayApp {
    /// Starts one, up, on a free local port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let addr = listener.local_addr().expect("local address");
        let state: Arc<Mutex<AppState>> = Arc::default();
        let router = Router::new()
            .fallback(replay_app)
            .with_state((Arc::clone(&state), format!("http://{addr}")));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            base_url: format!("http://{addr}"),
            host: addr.to_string(),
            state,
        }
    }

    /// `{base_url}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Takes the whole app down (`true`: every path answers 500) or brings it up.
    pub fn set_down(&self, down: bool) {
        if let Ok(mut state) = self.state.lock() {
            state.down = down;
        }
    }

    /// Every answer comes only after `delay` (the request is recorded when it arrives): a slow
    /// app, so a crash test's kills land while deliveries are in flight.
    pub fn answer_after(&self, delay: std::time::Duration) {
        if let Ok(mut state) = self.state.lock() {
            state.delay = delay;
        }
    }

    /// What `path` answers while the app is up.
    pub fn route(&self, path: &str, route: Route) {
        if let Ok(mut state) = self.state.lock() {
            state.routes.insert(path.to_owned(), route);
        }
    }

    /// Every request received so far, in arrival order.
    pub fn hits(&self) -> Vec<AppHit> {
        self.state.lock().map(|state| state.hits.clone()).unwrap_or_default()
    }

    /// The requests carrying `MessageSid` `sid`, in arrival order.
    pub fn hits_for(&self, sid: &str) -> Vec<AppHit> {
        self.hits()
            .into_iter()
            .filter(|hit| hit.param("MessageSid") == Some(sid))
            .collect()
    }

    /// The requests on `path`, in arrival order.
    pub fn hits_on(&self, path: &str) -> Vec<AppHit> {
        self.hits().into_iter().filter(|hit| hit.path == path).collect()
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn replay_app(State((state, base)): State<(Arc<Mutex<AppState>>, String)>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let url = format!("{base}{}", parts.uri.path_and_query().map_or("/", |pq| pq.as_str()));
    let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let params = Params::from_request(&parts.method, parts.uri.query(), content_type, &bytes);
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let signature = header(SIGNATURE_HEADER);
    let payload = Payload::for_request(&parts.method, &url, &bytes, &params);
    let verified = SignatureVerifier::new(crate::TOKEN)
        .verify(&url, payload, signature.as_deref().unwrap_or(""))
        .is_ok();
    let path = parts.uri.path().to_owned();
    let (response, delay) =
        {
            let Ok(mut state) = state.lock() else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            let route = if state.down {
                Route::Down
            } else {
                state.routes.get(&path).cloned().unwrap_or(Route::Echo)
            };
            let text = xml_escape(params.get("Body").unwrap_or_default());
            let response = match route {
        Route::Echo => (
            [(CONTENT_TYPE, "text/xml")],
            format!(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>Got it: {text}</Message></Response>"#),
        )
            .into_response(),
        Route::Down => (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response(),
        Route::Twiml(template) => ([(CONTENT_TYPE, "text/xml")], template.replace("{Body}", &text)).into_response(),
        Route::Found(location) => {
            (StatusCode::FOUND, [(axum::http::header::LOCATION, location)], "moved").into_response()
        }
    };
            state.hits.push(AppHit {
                url,
                path,
                method: parts.method.to_string(),
                params: params
                    .iter()
                    .map(|(key, value)| (key.to_owned(), value.to_owned()))
                    .collect(),
                signature,
                verified,
                replay: header("x-twiml-fallback-replay"),
                received_at: header("x-twiml-fallback-received-at"),
                user_agent: header("user-agent"),
                answered: response.status().as_u16(),
                at: std::time::Instant::now(),
            });
            (response, state.delay)
        };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}
