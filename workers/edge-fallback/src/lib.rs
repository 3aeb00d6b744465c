//! The twiml-fallback Cloudflare Worker: a Twilio number's "Primary handler fails" URL.
//!
//! A thin shell over `twiml_fallback::edge`: the core decides the answer and the effects; this file
//! only performs them on the Workers runtime — reading the request (at most 64 KB of body), writing
//! one JSON log line per request with `console_log!`, sending alerts from `ctx.wait_until` once per
//! dedup window (checked in the isolate, then in the `ALERT_DEDUP` KV namespace), and fetching the primary for a recovery under a
//! `worker::Delay` deadline. It never panics on input (a panic aborts the wasm instance): every
//! request gets TwiML or a 403.
//!
//! Configuration, read once per isolate:
//! - `FALLBACK_CONFIG` (`[vars]`): the configuration document, TOML or JSON;
//! - `FALLBACK_VOICE_SAY`, `FALLBACK_MESSAGING_MESSAGE`, … (`[vars]`): per-field settings over it
//!   (`twiml_fallback::config::VARIABLES`);
//! - `TWILIO_AUTH_TOKEN`, `TWILIO_AUTH_TOKEN_SECONDARY` (secrets): the tokens;
//! - `ALERT_DEDUP` (KV namespace binding, optional): alert dedup windows shared across isolates and
//!   locations. KV rather than the Cache API: the cache is per data centre and does nothing on
//!   `*.workers.dev` hostnames, while KV is global, expires keys itself, and is written only when
//!   an alert is actually sent.
//!
//! A configuration with errors does not take the endpoint down: the embedded defaults are served
//! and every problem is logged, on every request, until it is fixed.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::{Either, select};
use twiml_fallback::config::{Config, VARIABLES};
use twiml_fallback::edge::{
    ALERT_TIMEOUT_MS, Alert, AlertWindows, Body, Edge, EdgeRequest, EdgeResponse, Effect, LogRecord, MAX_REQUEST_BYTES,
    RecoveryJudgement, RecoveryOutcome, RecoveryPlan,
};
use twiml_fallback::signature::{SIGNATURE_HEADER, SignatureVerifier};
use twiml_fallback::twiml::MAX_DOCUMENT_BYTES;
use worker::js_sys::{Date, Uint8Array};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{
    ByteStream, Context, Delay, Env, Fetch, Headers, Method, Request, RequestInit, RequestRedirect, console_error,
    console_log, event, web_sys,
};

/// The KV namespace binding for alert deduplication.
const DEDUP_BINDING: &str = "ALERT_DEDUP";

/// KV's shortest expiration.
const KV_MIN_TTL_SECONDS: u64 = 60;

/// The endpoint as configured for this isolate.
struct Loaded {
    edge: Edge,
    /// The configuration's problems, when it could not be used (the defaults are served).
    config_errors: Option<String>,
    dedup: bool,
}

thread_local! {
    static LOADED: OnceCell<Rc<Loaded>> = const { OnceCell::new() };
    /// Response inits by status and Content-Type (see `respond`).
    static RESPONSE_INITS: RefCell<Vec<(u16, &'static str, web_sys::ResponseInit)>> = const { RefCell::new(Vec::new()) };
    /// The alerts this isolate sent, per dedup key and window.
    static ALERT_WINDOWS: RefCell<AlertWindows> = RefCell::default();
}

fn text_binding(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|value| value.to_string())
        .filter(|value| !value.is_empty())
}

fn load(env: &Env) -> Rc<Loaded> {
    LOADED.with(|cell| {
        Rc::clone(cell.get_or_init(|| {
            let document = text_binding(env, "FALLBACK_CONFIG");
            let (config, config_errors) =
                match Config::from_sources(document.as_deref(), |name| text_binding(env, name)) {
                    Ok(config) => (config, None),
                    Err(errors) => (Config::default(), Some(errors.to_string())),
                };
            let tokens = ["TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN_SECONDARY"]
                .into_iter()
                .filter_map(|name| text_binding(env, name));
            let loaded = Loaded {
                edge: Edge::new(config, SignatureVerifier::from_tokens(tokens)),
                config_errors,
                dedup: env.kv(DEDUP_BINDING).is_ok(),
            };
            let variables: Vec<&str> = VARIABLES
                .iter()
                .map(|(name, ..)| *name)
                .filter(|name| text_binding(env, name).is_some())
                .collect();
            console_log!(
                "{}",
                serde_json::json!({
                    "event": "config",
                    "source": if document.is_some() { "FALLBACK_CONFIG" } else { "embedded defaults" },
                    "variables": variables,
                    "tokens": loaded.edge.verifier().tokens().len(),
                    "alert_dedup": if loaded.dedup { "isolate + KV" } else { "isolate only (no ALERT_DEDUP binding)" },
                    "errors": loaded.config_errors,
                })
            );
            Rc::new(loaded)
        }))
    })
}

// The raw `web_sys` request and response: `worker::Request` would read the `cf` object and the
// URL into a `Url` on every request, which we never use (a measurable share of each request).
#[event(fetch)]
async fn fetch(request: web_sys::Request, env: Env, ctx: Context) -> worker::Result<web_sys::Response> {
    let loaded = load(&env);
    if let Some(errors) = &loaded.config_errors {
        console_error!(
            "{}",
            serde_json::json!({"event": "config-error", "errors": errors, "serving": "embedded defaults"})
        );
    }
    let answer = handle(request, &env, &ctx, &loaded).await;
    respond(&answer)
}

/// Reads the request, lets the core decide, performs the effects; the answer to send.
async fn handle(request: web_sys::Request, env: &Env, ctx: &Context, loaded: &Loaded) -> EdgeResponse {
    // The URL exactly as received: Twilio signed these bytes, so no parsing or normalisation.
    let url = request.url();
    let method = request.method();
    let headers = request.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let signature = header(SIGNATURE_HEADER);
    let content_type = header("Content-Type");
    let declared_length = header("Content-Length").and_then(|length| length.trim().parse::<u64>().ok());
    let body = if method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD") {
        Some(Vec::new())
    } else {
        match declared_length {
            Some(length) if length > MAX_REQUEST_BYTES as u64 => None,
            // A declared length within the limit (the runtime holds the body to it): one read.
            Some(_) => read_all(&request).await,
            // Chunked: read until the limit, no further.
            None => read_limited(request).await,
        }
    };
    let decision = loaded.edge.decide(&EdgeRequest {
        method: &method,
        url: &url,
        signature: signature.as_deref(),
        content_type: content_type.as_deref(),
        body: body.as_deref().map_or(Body::TooLarge, Body::Complete),
        now_ms: now_ms(),
    });
    let mut answer = decision.response;
    for effect in decision.effects {
        match effect {
            Effect::Log(record) => log(&record),
            Effect::Alert(alert) => send_alert(alert, env, ctx, loaded.dedup),
            Effect::Recover(plan) => {
                let judgement = recover(&loaded.edge, &plan).await;
                log(&judgement.log);
                answer = judgement.response;
            }
        }
    }
    answer
}

/// The whole body in one read, or `None` on a read error.
async fn read_all(request: &web_sys::Request) -> Option<Vec<u8>> {
    let buffer = JsFuture::from(request.array_buffer().ok()?).await.ok()?;
    Some(Uint8Array::new(&buffer).to_vec())
}

/// The body, or `None` past the limit (without reading the rest) or on a read error.
async fn read_limited(request: web_sys::Request) -> Option<Vec<u8>> {
    let Ok(mut stream) = Request::from(request).stream() else {
        // No body stream at all: an empty body.
        return Some(Vec::new());
    };
    let body = read_up_to(&mut stream, MAX_REQUEST_BYTES).await.ok()?;
    (body.len() <= MAX_REQUEST_BYTES).then_some(body)
}

/// Reads `stream` until it ends or what was read holds more than `limit` bytes (enough to know
/// it is too large, without reading the rest).
async fn read_up_to(stream: &mut ByteStream, limit: usize) -> worker::Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk?);
        if body.len() > limit {
            break;
        }
    }
    Ok(body)
}

fn now_ms() -> u64 {
    // Milliseconds since the epoch fit an f64 exactly; the cast saturates on nonsense.
    Date::now() as u64
}

fn respond(answer: &EdgeResponse) -> worker::Result<web_sys::Response> {
    // The `Response` constructor copies its init, so one init per status and Content-Type is made
    // once per isolate and reused: one call across the JS boundary per response instead of five.
    let init = RESPONSE_INITS.with(|inits| -> worker::Result<web_sys::ResponseInit> {
        let mut inits = inits.borrow_mut();
        if let Some((.., init)) = inits
            .iter()
            .find(|(status, content_type, _)| *status == answer.status && *content_type == answer.content_type)
        {
            return Ok(init.clone());
        }
        let headers = web_sys::Headers::new()?;
        headers.set("Content-Type", answer.content_type)?;
        let init = web_sys::ResponseInit::new();
        init.set_status(answer.status);
        init.set_headers(&headers);
        inits.push((answer.status, answer.content_type, init.clone()));
        Ok(init)
    })?;
    Ok(web_sys::Response::new_with_opt_str_and_init(Some(&answer.body), &init)?)
}

fn log(record: &LogRecord) {
    web_sys::console::log_1(&record.to_json().into());
}

/// Sends an alert after the answer, once per dedup key and window: checked first in this isolate
/// (synchronously, so two requests here never both send), then in the `ALERT_DEDUP` KV namespace
/// (shared with the isolates in other locations; KV is eventually consistent, so two locations
/// failing in the same few seconds may each send one).
fn send_alert(alert: Alert, env: &Env, ctx: &Context, dedup: bool) {
    let now = now_ms();
    if !ALERT_WINDOWS.with(|windows| windows.borrow_mut().first_in_window(&alert, now)) {
        log_suppressed(&alert, "isolate");
        return;
    }
    let store = if dedup && alert.dedup_seconds > 0 {
        env.kv(DEDUP_BINDING).ok()
    } else {
        None
    };
    ctx.wait_until(async move {
        if let Some(store) = &store {
            let key = &alert.dedup_key;
            // The value is when the window ends; the key's TTL only cleans up (KV's minimum is 60 s).
            match store.get(key).text().await {
                Ok(Some(until)) if until.parse::<u64>().is_ok_and(|until| until > now) => {
                    log_suppressed(&alert, "kv");
                    return;
                }
                Ok(_) => {}
                Err(error) => log_dedup_error(&error),
            }
            let until = alert.window_end(now);
            match store.put(key, until.to_string()) {
                Ok(put) => {
                    if let Err(error) = put
                        .expiration_ttl(alert.dedup_seconds.max(KV_MIN_TTL_SECONDS))
                        .execute()
                        .await
                    {
                        log_dedup_error(&error);
                    }
                }
                Err(error) => log_dedup_error(&error),
            }
        }
        let outcome = post_alert(&alert).await;
        console_log!(
            "{}",
            serde_json::json!({"event": "alert", "dedup_key": alert.dedup_key, "outcome": outcome})
        );
    });
}

fn log_suppressed(alert: &Alert, by: &str) {
    console_log!(
        "{}",
        serde_json::json!({"event": "alert-suppressed", "dedup_key": alert.dedup_key, "by": by})
    );
}

/// A dedup store failure never stops the alert: better twice than never.
fn log_dedup_error(error: &dyn std::fmt::Display) {
    console_error!(
        "{}",
        serde_json::json!({"event": "alert-dedup-error", "error": error.to_string()})
    );
}

async fn post_alert(alert: &Alert) -> String {
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "application/json");
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(alert.body.as_str().into()));
    let request = match Request::new_with_init(&alert.webhook_url, &init) {
        Ok(request) => request,
        Err(error) => return format!("not sent: {error}"),
    };
    match with_deadline(Fetch::Request(request).send(), Duration::from_millis(ALERT_TIMEOUT_MS)).await {
        Some(Ok(response)) => format!("HTTP {}", response.status_code()),
        Some(Err(error)) => format!("not sent: {error}"),
        None => "not sent: no answer within 10 s".to_owned(),
    }
}

/// `future`'s output, or `None` when `deadline` passes first.
async fn with_deadline<T>(future: impl std::future::Future<Output = T>, deadline: Duration) -> Option<T> {
    let future = std::pin::pin!(future);
    match select(future, Delay::from(deadline)).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(((), _)) => None,
    }
}

/// Re-requests the failed primary as planned, without following redirects, and lets the core judge.
async fn recover(edge: &Edge, plan: &RecoveryPlan) -> RecoveryJudgement {
    let headers = Headers::new();
    for (name, value) in &plan.headers {
        let _ = headers.set(name, value);
    }
    let mut init = RequestInit::new();
    init.with_method(if plan.method == "GET" {
        Method::Get
    } else {
        Method::Post
    })
    .with_headers(headers)
    .with_redirect(RequestRedirect::Manual);
    if !plan.body.is_empty() {
        init.with_body(Some(plan.body.as_str().into()));
    }
    let request = match Request::new_with_init(&plan.url, &init) {
        Ok(request) => request,
        Err(error) => return edge.judge_recovery(plan, RecoveryOutcome::Failed(&error.to_string())),
    };
    let fetched = async {
        let mut response = Fetch::Request(request).send().await?;
        let status = response.status_code();
        let content_type = response.headers().get("Content-Type").ok().flatten();
        // Read up to just past Twilio's 64 KB (enough to know it is too large); no stream, no body.
        let body = match response.stream() {
            Ok(mut stream) => read_up_to(&mut stream, MAX_DOCUMENT_BYTES).await?,
            Err(_) => Vec::new(),
        };
        Ok::<_, worker::Error>((status, content_type, body))
    };
    match with_deadline(fetched, Duration::from_millis(plan.timeout_ms)).await {
        None => edge.judge_recovery(plan, RecoveryOutcome::TimedOut),
        Some(Err(error)) => edge.judge_recovery(plan, RecoveryOutcome::Failed(&error.to_string())),
        Some(Ok((status, content_type, body))) => edge.judge_recovery(
            plan,
            RecoveryOutcome::Answered {
                status,
                content_type: content_type.as_deref(),
                body: &body,
            },
        ),
    }
}
