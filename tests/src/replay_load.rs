//! A backlog of kept messages and what replays it, for replay's crash test and its benchmark:
//! distinct, correctly signed inbound messages across several numbers, an app that can be down
//! or up and records each delivery, and a Messages API that records each send — so a test can
//! count deliveries and sends per message exactly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use twiml_fallback::signature::{SIGNATURE_HEADER, compute_signature};
use twiml_fallback::webhook::{Params, encode_form};

use crate::inbox_load::message_sid;

/// The account the backlog's messages belong to.
pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";

async fn listen(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

/// One kept message of a backlog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its `MessageSid`.
    pub sid: String,
    /// The number written to.
    pub to: String,
    /// The sender.
    pub from: String,
    /// Its text (unique in the backlog).
    pub body: String,
}

/// The called number `n` of a backlog.
pub fn number(n: usize) -> String {
    format!("+1415555{:04}", 1000 + n)
}

/// Sends `entries` signed inbound SMS to `{base_url}/sms`, spread over `numbers` called numbers,
/// each number's in order (numbers in parallel), with `ErrorUrl` = `app_url`; the messages
/// answered 200, in the order each number sent them. Panics on any other answer.
pub async fn fill(base_url: &str, token: &str, entries: usize, numbers: usize, app_url: &str) -> Vec<Message> {
    let client = crate::client();
    let url = format!("{base_url}/sms");
    let mut senders = tokio::task::JoinSet::new();
    for lane in 0..numbers.max(1) {
        let (client, url, token, app_url) = (client.clone(), url.clone(), token.to_owned(), app_url.to_owned());
        senders.spawn(async move {
            let mut sent = Vec::new();
            for n in (lane..entries).step_by(numbers.max(1)) {
                let message = Message {
                    sid: message_sid("r", n),
                    to: number(lane),
                    from: format!("+1628555{:04}", n % 10_000),
                    body: format!("message {n}"),
                };
                let form = encode_form([
                    ("MessageSid", message.sid.as_str()),
                    ("SmsSid", message.sid.as_str()),
                    ("AccountSid", ACCOUNT_SID),
                    ("From", message.from.as_str()),
                    ("To", message.to.as_str()),
                    ("Body", message.body.as_str()),
                    ("NumMedia", "0"),
                    ("SmsStatus", "received"),
                    ("ErrorCode", "11200"),
                    ("ErrorUrl", app_url.as_str()),
                ]);
                let signature = compute_signature(&token, &url, &Params::from_form(form.as_bytes()));
                let answer = client
                    .post(&url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .header(SIGNATURE_HEADER, signature)
                    .body(form)
                    .send()
                    .await
                    .unwrap_or_else(|error| panic!("sending {}: {error}", message.sid));
                assert_eq!(answer.status().as_u16(), 200, "the fallback answer to {}", message.sid);
                sent.push(message);
            }
            sent
        });
    }
    let mut all = Vec::new();
    while let Some(sent) = senders.join_next().await {
        all.extend(sent.expect("a sender"));
    }
    all
}

/// One delivery the app received.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Its `MessageSid`.
    pub sid: String,
    /// Its `To`.
    pub to: String,
    /// Whether it carried `X-Twiml-Fallback-Replay: 1`.
    pub replay: bool,
}

#[derive(Default)]
struct AppState {
    up: AtomicBool,
    deliveries: Mutex<Vec<Delivery>>,
    first_replay: Mutex<Option<Instant>>,
}

/// An app that is down (500) or up (answering `<Message>re: {Body}</Message>`), recording each
/// request in arrival order.
#[derive(Clone)]
pub struct App {
    /// Its messaging webhook, `http://127.0.0.1:PORT/sms`.
    pub url: String,
    /// `127.0.0.1:PORT`, for `[recovery] allow_hosts`.
    pub host: String,
    state: Arc<AppState>,
}

impl App {
    /// Starts one, down.
    pub async fn start() -> Self {
        let state: Arc<AppState> = Arc::default();
        let base = listen(Router::new().fallback(app).with_state(Arc::clone(&state))).await;
        Self {
            url: format!("{base}/sms"),
            host: base.trim_start_matches("http://").to_owned(),
            state,
        }
    }

    /// Brings it up (`true`) or down.
    pub fn set_up(&self, up: bool) {
        self.state.up.store(up, Ordering::SeqCst);
    }

    /// Every request it received, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.deliveries.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// When the first replayed request arrived.
    pub fn first_replay(&self) -> Option<Instant> {
        self.state.first_replay.lock().ok().and_then(|first| *first)
    }
}

async fn app(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let replay = request
        .headers()
        .get("x-twiml-fallback-replay")
        .is_some_and(|value| value == "1");
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let params = Params::from_form(&body);
    let delivery = Delivery {
        sid: params.get("MessageSid").unwrap_or_default().to_owned(),
        to: params.get("To").unwrap_or_default().to_owned(),
        replay,
    };
    if replay && let Ok(mut first) = state.first_replay.lock() {
        first.get_or_insert_with(Instant::now);
    }
    if let Ok(mut deliveries) = state.deliveries.lock() {
        deliveries.push(delivery);
    }
    if !state.up.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
    }
    let text = params
        .get("Body")
        .unwrap_or_default()
        .replace('&', "&amp;")
        .replace('<', "&lt;");
    (
        [("content-type", "text/xml")],
        format!("<Response><Message>re: {text}</Message></Response>"),
    )
        .into_response()
}

/// One send the Messages API received.
#[derive(Clone, Debug)]
pub struct Send {
    /// The account in its path.
    pub account: String,
    /// `To`.
    pub to: String,
    /// `From`.
    pub from: String,
    /// `Body`.
    pub body: String,
    /// The SID it answered.
    pub sid: String,
}

#[derive(Default)]
struct ApiState {
    delay_ms: AtomicU64,
    next: AtomicU64,
    sends: Mutex<Vec<Send>>,
    last_send: Mutex<Option<Instant>>,
}

/// A Messages API that accepts every send (after an optional delay) and records it.
#[derive(Clone)]
pub struct MessagesApiRecorder {
    /// Its base URL (`--api-base`).
    pub base: String,
    state: Arc<ApiState>,
}

impl MessagesApiRecorder {
    /// Starts one that answers each send after `delay`.
    pub async fn start(delay: Duration) -> Self {
        let state: Arc<ApiState> = Arc::default();
        state
            .delay_ms
            .store(u64::try_from(delay.as_millis()).unwrap_or(0), Ordering::SeqCst);
        let base = listen(Router::new().fallback(api).with_state(Arc::clone(&state))).await;
        Self { base, state }
    }

    /// Every send, in order.
    pub fn sends(&self) -> Vec<Send> {
        self.state.sends.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// How many sends each body got.
    pub fn sends_per_body(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for send in self.sends() {
            *counts.entry(send.body).or_default() += 1;
        }
        counts
    }

    /// When the last send arrived.
    pub fn last_send(&self) -> Option<Instant> {
        self.state.last_send.lock().ok().and_then(|last| *last)
    }
}

async fn api(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let body: Bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let account = path
        .strip_prefix("/2010-04-01/Accounts/")
        .and_then(|rest| rest.strip_suffix("/Messages.json"))
        .unwrap_or_default()
        .to_owned();
    let params = Params::from_form(&body);
    let sid = format!("SM{:032x}", state.next.fetch_add(1, Ordering::SeqCst) + 1);
    let send = Send {
        account,
        to: params.get("To").unwrap_or_default().to_owned(),
        from: params.get("From").unwrap_or_default().to_owned(),
        body: params.get("Body").unwrap_or_default().to_owned(),
        sid: sid.clone(),
    };
    // Recorded on arrival: a send the sender never hears back about still went out.
    if let Ok(mut sends) = state.sends.lock() {
        sends.push(send);
    }
    if let Ok(mut last) = state.last_send.lock() {
        *last = Some(Instant::now());
    }
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        format!(r#"{{"sid":"{sid}","status":"queued"}}"#),
    )
        .into_response()
}

/// Every entry in an endpoint's inbox, as JSON, read page by page through its admin API.
pub async fn entries(base_url: &str, admin_token: &str) -> Result<Vec<serde_json::Value>, String> {
    let client = crate::client();
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base_url}/_twiml-fallback/inbox?limit=1000");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let response = client
            .get(&url)
            .bearer_auth(admin_token)
            .send()
            .await
            .map_err(|error| format!("{url}: {error}"))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|error| format!("{url}: {error}"))?;
        if !status.is_success() {
            return Err(format!("{url}: {status} {}", String::from_utf8_lossy(&body)));
        }
        let mut page: serde_json::Value = serde_json::from_slice(&body).map_err(|error| format!("{url}: {error}"))?;
        if let Some(entries) = page["entries"].as_array_mut() {
            all.append(entries);
        }
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(all),
        }
    }
}

/// How many entries are in each status.
pub fn by_status(entries: &[serde_json::Value]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for entry in entries {
        *counts
            .entry(entry["status"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    counts
}
