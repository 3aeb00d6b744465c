//! The chaos demo's service: a webhook app whose routes fail on purpose, each behind the fallback
//! layer. Shared by `examples/chaos/main.rs` and the layer's integration tests.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};
use twiml_fallback::Channel;
use twiml_fallback::edge::MAX_REQUEST_BYTES;
use twiml_fallback::layer::body::FallbackBody;
use twiml_fallback::layer::{Fallback, FallbackLayer, TwilioParams};
use twiml_fallback::webhook::Params;

#[path = "account.rs"]
pub(crate) mod account;

/// The error type of the demo app.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every case the demo serves under `/voice/<case>` and `/sms/<case>`, and what it does.
pub(crate) const CASES: &[(&str, &str)] = &[
    ("ok", "valid TwiML (echoes the Body parameter)"),
    ("panic", "the handler panics in call"),
    ("panic-async", "the handler panics after an await"),
    ("panic-body", "the response body panics while streaming"),
    ("error", "the service returns Err"),
    ("slow", "the handler sleeps 30 s"),
    ("status-500", "HTTP 500"),
    ("status-404", "HTTP 404"),
    ("lowercase", "<response> instead of <Response>"),
    ("wrong-root", "a root other than <Response>"),
    ("wrong-channel", "TwiML for the other channel"),
    ("huge", "a body over 64 KB"),
    ("no-content-type", "valid TwiML without a Content-Type"),
    ("html", "an HTML error page (text/html)"),
    ("empty", "an empty body"),
    ("body-error", "the response body fails mid-stream"),
];

/// The failing app itself, for one channel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChaosService {
    channel: Channel,
}

/// A response body that can also panic or fail after its first chunk.
pub(crate) enum ChaosBody {
    /// A plain body.
    Full(Option<Bytes>),
    /// Yields the chunk, then panics.
    PanicAfter(Option<Bytes>),
    /// Yields the chunk, then fails.
    ErrorAfter(Option<Bytes>),
}

impl Body for ChaosBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ChaosBody::Full(data) => Poll::Ready(data.take().map(|bytes| Ok(Frame::data(bytes)))),
            ChaosBody::PanicAfter(data) => match data.take() {
                Some(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                None => panic!("chaos: the response body panicked mid-stream"),
            },
            ChaosBody::ErrorAfter(data) => match data.take() {
                Some(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                None => Poll::Ready(Some(Err("chaos: connection reset while streaming the body".into()))),
            },
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ChaosBody::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            _ => SizeHint::new(),
        }
    }
}

fn twiml(body: impl Into<Bytes>) -> Response<ChaosBody> {
    let mut response = Response::new(ChaosBody::Full(Some(body.into())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, "text/xml; charset=utf-8".parse().expect("static header"));
    response
}

fn escape(text: &str) -> String {
    let mut out = String::new();
    twiml_fallback::twiml::escape_text(&mut out, text);
    out
}

impl ChaosService {
    /// The app for `channel`.
    pub(crate) fn new(channel: Channel) -> Self {
        Self { channel }
    }

    fn verb(&self, text: &str) -> String {
        match self.channel {
            Channel::Voice => format!("<Say>{}</Say>", escape(text)),
            Channel::Messaging => format!("<Message>{}</Message>", escape(text)),
        }
    }
}

impl<B> Service<Request<B>> for ChaosService
where
    B: Send + 'static,
{
    type Response = Response<ChaosBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ChaosBody>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let case = request.uri().path().rsplit('/').next().unwrap_or("").to_owned();
        // What the fallback layer (or `BareChaosApp`, standing in for it) parsed; served by
        // neither, only a GET's query string.
        let params = match request.extensions().get::<TwilioParams>() {
            Some(params) => params.params().clone(),
            None => Params::from_query(request.uri().query().unwrap_or("")),
        };
        let said = params.body().or(params.get("Digits")).unwrap_or_default().to_owned();
        let declaration = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
        let ok = format!(
            "{declaration}<Response>{}</Response>",
            self.verb(&format!("Hello from the app. You said: {said}"))
        );
        let other_channel = match self.channel {
            Channel::Voice => "<Message>This is an SMS reply</Message>",
            Channel::Messaging => "<Say>This is for a phone call</Say>",
        };
        let verb = self.verb("Thanks for your order! 🍰");
        if case == "panic" {
            panic!("chaos: the handler panicked in call");
        }
        Box::pin(async move {
            let response = match case.as_str() {
                "ok" => twiml(ok),
                "panic-async" => {
                    tokio::task::yield_now().await;
                    panic!("chaos: the handler panicked after an await");
                }
                "panic-body" => {
                    let mut response = twiml(Bytes::new());
                    *response.body_mut() = ChaosBody::PanicAfter(Some(Bytes::from(format!("{declaration}<Response>"))));
                    response
                }
                "error" => return Err("chaos: database unavailable".into()),
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    twiml(ok)
                }
                "status-500" => status(StatusCode::INTERNAL_SERVER_ERROR),
                "status-404" => status(StatusCode::NOT_FOUND),
                "lowercase" => twiml(format!("{declaration}<response>{verb}</response>")),
                "wrong-root" => twiml(format!("{declaration}<Reply>{verb}</Reply>")),
                "wrong-channel" => twiml(format!("{declaration}<Response>{other_channel}</Response>")),
                "huge" => {
                    let filler = "All of our agents are busy. ".repeat(2600);
                    twiml(format!("{declaration}<Response><Say>{filler}</Say></Response>"))
                }
                "no-content-type" => Response::new(ChaosBody::Full(Some(Bytes::from(ok)))),
                "html" => {
                    let page = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>";
                    let mut response = Response::new(ChaosBody::Full(Some(Bytes::from_static(page.as_bytes()))));
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, "text/html".parse().expect("static header"));
                    response
                }
                "empty" => twiml(Bytes::new()),
                "body-error" => {
                    let mut response = twiml(Bytes::new());
                    *response.body_mut() = ChaosBody::ErrorAfter(Some(Bytes::from(format!("{declaration}<Response>"))));
                    response
                }
                _ => status(StatusCode::NOT_FOUND),
            };
            Ok(response)
        })
    }
}

fn status(status: StatusCode) -> Response<ChaosBody> {
    let mut response = Response::new(ChaosBody::Full(Some(Bytes::from(format!("{status}\n")))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, "text/plain".parse().expect("static header"));
    response
}

/// The whole demo: `/voice/*` and `/sms/*` each behind the fallback layer (with the channel set
/// explicitly, as an app would per route group), `/` lists the cases.
#[derive(Clone)]
pub(crate) struct ChaosApp {
    voice: Fallback<ChaosService>,
    sms: Fallback<ChaosService>,
}

impl ChaosApp {
    /// The demo with `layer` (its channel is set per route group).
    pub(crate) fn new(layer: FallbackLayer) -> Self {
        use tower::Layer;
        Self {
            voice: layer
                .clone()
                .channel(Channel::Voice)
                .layer(ChaosService::new(Channel::Voice)),
            sms: layer
                .channel(Channel::Messaging)
                .layer(ChaosService::new(Channel::Messaging)),
        }
    }
}

impl<B> Service<Request<B>> for ChaosApp
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Display + Send,
{
    type Response = Response<FallbackBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<FallbackBody>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let service = if path.starts_with("/voice/") {
            Some(self.voice.clone())
        } else if path.starts_with("/sms/") {
            Some(self.sms.clone())
        } else {
            None
        };
        Box::pin(async move {
            match service {
                Some(service) => service.oneshot(request).await,
                None => {
                    let mut listing =
                        String::from("twiml-fallback chaos demo. POST or GET /voice/<case> or /sms/<case>:\n");
                    for (case, what) in CASES {
                        listing.push_str(&format!("  {case:<16} {what}\n"));
                    }
                    let mut response = Response::new(FallbackBody::new(Bytes::from(listing)));
                    if path != "/" {
                        *response.status_mut() = StatusCode::NOT_FOUND;
                    }
                    response.headers_mut().insert(
                        CONTENT_TYPE,
                        "text/plain; charset=utf-8".parse().expect("static header"),
                    );
                    Ok(response)
                }
            }
        })
    }
}

/// The same app without the fallback layer, for comparing throughput: failures reach the client.
#[derive(Clone)]
pub(crate) struct BareChaosApp {
    voice: ChaosService,
    sms: ChaosService,
    /// The Twilio account the app stands in for, when it does.
    account: Option<account::TwilioAccount>,
}

impl BareChaosApp {
    pub(crate) fn new() -> Self {
        Self {
            voice: ChaosService::new(Channel::Voice),
            sms: ChaosService::new(Channel::Messaging),
            account: None,
        }
    }

    /// Also stands in for `account`'s REST resources (numbers, Applications, Messaging
    /// Services, SIP trunks).
    pub(crate) fn with_account(mut self, account: account::TwilioAccount) -> Self {
        self.account = Some(account);
        self
    }
}

impl<B> Service<Request<B>> for BareChaosApp
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<ChaosBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ChaosBody>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    /// Reads and parses the parameters itself, as an app without the layer would, then answers.
    fn call(&mut self, request: Request<B>) -> Self::Future {
        use http_body_util::BodyExt;

        let path = request.uri().path();
        let mut service = if path.starts_with("/voice/") {
            self.voice
        } else if path.starts_with("/sms/") {
            self.sms
        } else if let Some(account) = self.account.clone().filter(|_| account::TwilioAccount::handles(path)) {
            return Box::pin(account.call(request));
        } else if path.starts_with("/2010-04-01/Accounts/") && path.ends_with("/Messages.json") {
            return Box::pin(messages_api_stand_in(request));
        } else if path.starts_with("/hooks/") {
            return Box::pin(alert_hook_stand_in(request));
        } else {
            return Box::pin(async { Ok(status(StatusCode::NOT_FOUND)) });
        };
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            // Without the layer nothing else bounds the body: read at most what a webhook may be.
            let bytes = match http_body_util::Limited::new(body, MAX_REQUEST_BYTES).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                    return Ok(status(StatusCode::PAYLOAD_TOO_LARGE));
                }
                Err(error) => return Err(error),
            };
            let content_type = parts.headers.get(CONTENT_TYPE).and_then(|value| value.to_str().ok());
            let params = Params::from_request(&parts.method, parts.uri.query(), content_type, &bytes);
            parts.extensions.insert(TwilioParams::from(params));
            service.call(Request::from_parts(parts, bytes)).await
        })
    }
}

/// How many messages the Messages API stand-in has accepted.
static MESSAGES_SENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A stand-in for Twilio's Messages API (`POST /2010-04-01/Accounts/{AC}/Messages.json`), so that
/// replay can be tried offline (`serve --api-base http://127.0.0.1:3000`): it prints each message
/// it is asked to send and answers 201 with a message SID, as Twilio does; it sends nothing.
async fn messages_api_stand_in<B>(request: Request<B>) -> Result<Response<ChaosBody>, BoxError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    use http_body_util::BodyExt;

    let bytes = http_body_util::Limited::new(request.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|error| -> BoxError { error })?
        .to_bytes();
    let params = Params::from_form(&bytes);
    let number = MESSAGES_SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let sid = format!("SM{number:032x}");
    eprintln!(
        "Messages API stand-in: {sid} to {} from {}: {}",
        params.get("To").unwrap_or("?"),
        params.get("From").unwrap_or("?"),
        params.body().unwrap_or_default()
    );
    let mut response = Response::new(ChaosBody::Full(Some(Bytes::from(format!(
        r#"{{"sid":"{sid}","status":"queued"}}"#
    )))));
    *response.status_mut() = StatusCode::CREATED;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, "application/json".parse().expect("static header"));
    Ok(response)
}

/// A stand-in for where incident notifications go — a Slack incoming webhook, PagerDuty's Events
/// API (`POST /hooks/<name>`, JSON) — so alerts can be tried offline: it prints what it was told
/// (the `text`, or PagerDuty's `event_action` and `summary`) and answers 200.
async fn alert_hook_stand_in<B>(request: Request<B>) -> Result<Response<ChaosBody>, BoxError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    use http_body_util::BodyExt;

    let name = request.uri().path().trim_start_matches("/hooks/").to_owned();
    let bytes = http_body_util::Limited::new(request.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|error| -> BoxError { error })?
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let told = match (json["text"].as_str(), json["event_action"].as_str()) {
        (Some(text), _) => text.lines().next().unwrap_or_default().to_owned(),
        (None, Some(action)) => format!(
            "{action} {} {}",
            json["dedup_key"].as_str().unwrap_or("?"),
            json["payload"]["summary"].as_str().unwrap_or_default()
        ),
        (None, None) => String::from_utf8_lossy(&bytes).into_owned(),
    };
    eprintln!("alert hook stand-in /hooks/{name}: {told}");
    let mut response = Response::new(ChaosBody::Full(Some(Bytes::from_static(b"ok"))));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, "text/plain".parse().expect("static header"));
    Ok(response)
}

/// Serves `service` on `listener` until `shutdown` completes, one task per connection (HTTP/1.1
/// and HTTP/2).
pub(crate) async fn serve<S, ResBody>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: Service<Request<hyper::body::Incoming>, Response = Response<ResBody>, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    tokio::pin!(shutdown);
    loop {
        let (stream, _peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("accept failed: {error}");
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
