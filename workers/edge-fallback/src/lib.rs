//! The twiml-fallback Cloudflare Worker: a Twilio number's "Primary handler fails" URL.
//!
//! A thin shell over `twiml_fallback::edge` and `twiml_fallback::admin`: the core decides the
//! answer and the effects (`twiml_fallback::edge::effect` is the contract); this file only
//! performs them on the Workers runtime — reading the request body as `BodyRead` says, writing the
//! core's log lines with `console.log` / `console.error`, committing inbox entries to the `INBOX`
//! Durable Object before answering (`inbox.rs`), sending the core's outbound requests under a
//! `worker::Delay` deadline and handing their outcome back. A verified fallback notice's incident
//! notice (`Effect::Incident`) goes to the same object — in the entry's store request when the
//! request is kept, else from `ctx.wait_until` — where the core opens or counts the failing
//! primary's incident; a recovery the primary answered resolves it there. The object's alarm
//! sends the notifications (`alerts.rs`), never the request that brought the notice. Admin
//! requests (`/_twiml-fallback/…`) are routed by the core before the endpoint decides anything,
//! and performed in the inbox object — replay passes too, which the object also runs from its
//! alarm (`replay.rs`), and `alerts test`. It never panics on input (a panic aborts the wasm
//! instance, which the glue instantiates afresh for the next request): every request gets an
//! answer. workerd calls [`fetch`] through `entry.mjs`, the bundle's main module, a plain handler
//! object over worker-build's bundle (`scripts/worker.sh build`). A webhook whose effects wait for
//! nothing is answered from one `then` on its body's promise; only what waits (an inbox commit, a
//! recovery, an admin request, a chunked body) runs as a Rust future.
//!
//! Configuration, read once per isolate:
//! - `FALLBACK_CONFIG` (`[vars]`): the configuration document, TOML or JSON;
//! - `FALLBACK_VOICE_SAY`, `FALLBACK_MESSAGING_MESSAGE`, … (`[vars]`): per-field settings over it
//!   (`twiml_fallback::config::VARIABLES`), named in the `config` log line;
//! - `TWILIO_AUTH_TOKEN`, `TWILIO_AUTH_TOKEN_SECONDARY` (secrets): the tokens;
//! - `INBOX` (Durable Object namespace binding of the class `Inbox`, optional): the outage inbox
//!   (`inbox.rs`) and the incidents (`alerts.rs`). With it, each verified message or call a person
//!   sent is committed to the inbox before the answer goes out, and each verified fallback notice
//!   is filed under its primary's incident; without it, nothing is kept and no incident opens, so
//!   `[alerts]` notifies no one (the `config` line says which);
//! - `ALERT_EMAIL` (`send_email` binding, optional): how `[alerts] email` is sent (the addresses
//!   verified in Cloudflare Email Routing); without it, email is skipped (the object's
//!   `alerts-config` line says so). The other sinks need no binding: the webhook and PagerDuty are
//!   `fetch`es, texts go through the Messages API at `TWILIO_API_BASE`;
//! - `TWIML_FALLBACK_ADMIN_TOKEN` (secret, optional): the admin API under `/_twiml-fallback/`
//!   (`twiml_fallback::admin`), which lists, shows and dismisses inbox entries, runs replay
//!   passes, lists incidents and sends `alerts test`; without it those paths answer 404;
//! - `TWILIO_API_BASE` (`[vars]`, optional) and `TWILIO_API_KEY`, `TWILIO_API_SECRET` (secrets,
//!   optional): where replay sends the app's replies and the alert texts go, and with which
//!   credentials (`replay.rs`). Replay is on when the configuration has `[recovery] allow_hosts`
//!   and a token is set.
//!
//! A configuration with errors does not take the endpoint down: the variables that load are
//! served over the embedded defaults (`Config::from_sources_or_defaults`) and every problem is
//! logged with each request's record, until it is fixed. Health checks (`GET /healthz`) are
//! answered by the core without a record, so they add no lines.

mod alerts;
mod inbox;
mod replay;

use std::cell::{Cell, OnceCell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use futures_util::future::{Either, select};
use futures_util::{FutureExt, StreamExt};
use twiml_fallback::admin::{
    ADMIN_TOKEN_VARIABLE, Admin, AdminRequest, AdminResponse, JSON_CONTENT_TYPE, MAX_ADMIN_BODY_BYTES, Routed,
};
use twiml_fallback::config::{Config, ServedConfig};
use twiml_fallback::edge::{
    BodyRead, Edge, EdgeRequest, EdgeResponse, Effect, LogLevel, LogLine, OutboundRequest, Redirects, SendResult,
    method_of,
};
use twiml_fallback::inbox::store::write_failed_line;
use twiml_fallback::inbox::{Entry, STORE_DEADLINE, StoreError};
use twiml_fallback::incident::{self, Alerting, Notice};
use twiml_fallback::signature::{SIGNATURE_HEADER, SignatureVerifier};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::{Closure, JsValue, wasm_bindgen};
use worker::js_sys::{ArrayBuffer, Date, Promise, Uint8Array};
use worker::wasm_bindgen_futures::future_to_promise;
use worker::{ByteStream, Context, Delay, Env, Fetch, Headers, Request, RequestInit, RequestRedirect, web_sys};

/// The endpoint as configured for this isolate.
struct Loaded {
    edge: Edge,
    admin: Admin,
    /// The configuration's problems, when it could not be used as it is (the variables that load
    /// are served over the defaults).
    config_errors: Option<String>,
    /// The `FALLBACK_*` variables applied.
    variables: Vec<&'static str>,
    /// Whether the `INBOX` binding exists: incidents are kept there.
    has_inbox: bool,
    /// The incident rules, for `alerts test` without the inbox object (which has its own).
    alerting: Alerting,
}

thread_local! {
    static LOADED: OnceCell<Rc<Loaded>> = const { OnceCell::new() };
    /// Response inits by status and Content-Type (see `respond`).
    static RESPONSE_INITS: RefCell<Vec<(u16, &'static str, web_sys::ResponseInit)>> = const { RefCell::new(Vec::new()) };
    /// Whether this isolate's last inbox write failed (and none has succeeded since): health
    /// checks then answer `degraded`.
    static INBOX_FAILING: Cell<bool> = const { Cell::new(false) };
}

/// A text binding (a `[vars]` entry or a secret), when set and not empty.
fn text_binding(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|value| value.to_string())
        .filter(|value| !value.is_empty())
}

/// The configuration from `FALLBACK_CONFIG` and the `FALLBACK_*` variables (the Worker's and the
/// inbox object's, read the same way).
fn served_config(env: &Env) -> ServedConfig {
    let document = text_binding(env, "FALLBACK_CONFIG");
    Config::from_sources_or_defaults(document.as_deref(), |name| text_binding(env, name))
}

/// The verifier of `TWILIO_AUTH_TOKEN` and `TWILIO_AUTH_TOKEN_SECONDARY` (the Worker's and the
/// inbox object's, which signs replays with the first).
fn verifier(env: &Env) -> SignatureVerifier {
    SignatureVerifier::from_tokens(
        ["TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN_SECONDARY"]
            .into_iter()
            .filter_map(|name| text_binding(env, name)),
    )
}

fn load(env: &Env) -> Rc<Loaded> {
    LOADED.with(|cell| {
        Rc::clone(cell.get_or_init(|| {
            let document = text_binding(env, "FALLBACK_CONFIG");
            let served = served_config(env);
            let has_inbox = env.durable_object(inbox::BINDING).is_ok();
            let verifier = verifier(env);
            // Incidents and their notifications live in the inbox object (which logs its
            // `alerts-config` line); the Worker's own rules serve `alerts test` without it.
            let (alerting, _) = alerts::alerting(env, &served.config, &verifier);
            let edge = Edge::new(served.config, verifier).with_inbox(has_inbox);
            // Replay runs in the inbox object (which says how in its `replay-config` line); the
            // Worker only needs to know whether it is on, for the admin API's answers.
            let replay_off = replay::off(&replay::replayer(env, edge.config(), edge.verifier()));
            let loaded = Loaded {
                admin: Admin::new(text_binding(env, ADMIN_TOKEN_VARIABLE), has_inbox).with_replay(replay_off),
                edge,
                config_errors: served.errors.map(|errors| errors.to_string()),
                variables: served.variables,
                has_inbox,
                alerting,
            };
            let alerts = match (loaded.alerting.is_configured(), has_inbox) {
                (false, _) => "off (no [alerts] in the configuration)",
                (true, false) => "off (needs the INBOX Durable Object binding, which keeps incidents)",
                (true, true) => "on (incidents in the Durable Object INBOX: see its alerts-config line)",
            };
            write(&LogLine::new(
                LogLevel::Info,
                &serde_json::json!({
                    "event": "config",
                    "source": if document.is_some() { "FALLBACK_CONFIG" } else { "embedded defaults" },
                    "variables": loaded.variables,
                    "tokens": loaded.edge.verifier().tokens().len(),
                    "alerts": alerts,
                    "inbox": if has_inbox { "Durable Object INBOX" } else { "none (no INBOX binding)" },
                    "admin": if loaded.admin.is_enabled() { "on" } else { "off (no TWIML_FALLBACK_ADMIN_TOKEN secret)" },
                    "warnings": loaded.edge.startup_warnings(),
                    "errors": loaded.config_errors,
                }),
            ));
            Rc::new(loaded)
        }))
    })
}

/// workerd's `fetch` handler (through `entry.mjs`): the answer itself when nothing needs waiting
/// for, else a promise of it.
///
/// Most requests wait for nothing but their body: a Twilio webhook declares its length, so the
/// body is one `arrayBuffer()` away, and what the core decides then is logged and answered at
/// once. That path is one `then` on the body's promise, whose callback returns the `Response`;
/// a health check (no body) is answered before `fetch` returns. A Rust future per request (what
/// `#[event(fetch)]` makes) costs two `queueMicrotask`s and a JS promise more, and three closures
/// where this path has one: without it the Worker serves 11 % more requests per second under raw
/// workerd (BENCHMARKS.md, "The Worker's request without a future"). Whatever does wait — an
/// admin request, a chunked or refused body, an effect that holds the answer
/// ([`Effect::holds_the_answer`]: an inbox commit, a recovery request) — runs as a future.
///
/// It takes the raw `web_sys` request: `worker::Request` would read the `cf` object and the URL
/// into a `Url` on every request, which the endpoint never uses (a measurable share of each).
#[wasm_bindgen]
pub fn fetch(request: web_sys::Request, env: Env, ctx: worker::worker_sys::Context) -> JsValue {
    let ctx = Context::new(ctx);
    let loaded = load(&env);
    // The URL exactly as received: Twilio signed these bytes, so no parsing or normalisation.
    let url = request.url();
    let method = method_of(&request.method());
    let headers = request.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    // The admin API first: the core says whether the path is one of its own (before any body is
    // read), then routes it with the body read to the admin API's limit.
    let authorization = header("Authorization");
    let unread = AdminRequest {
        method: &method,
        url: &url,
        authorization: authorization.as_deref(),
        body: None,
    };
    if let Some(routed) = loaded.admin.route(&unread, now_ms()) {
        return promised(Box::pin(admin(
            request,
            method,
            url,
            authorization,
            routed,
            env,
            loaded,
        )));
    }
    let content_length = header("Content-Length");
    let incoming = Incoming {
        reading: BodyRead::for_request(&method, content_length.as_deref()),
        signature: header(SIGNATURE_HEADER),
        content_type: header("Content-Type"),
        url,
        method,
        env,
        ctx,
        loaded,
    };
    match incoming.reading {
        BodyRead::Skip => incoming.answer(None),
        // Over the limit: none of it kept, but all of it read (`read_limited`).
        BodyRead::Refuse => promised(Box::pin(async move {
            let _ = read_limited(request, 0).await;
            incoming.answer(None)
        })),
        // A declared length within the limit (the runtime holds the body to it): one read. The
        // callback takes the buffer, or the read's error (no body: `BodyRead::body`).
        BodyRead::UpTo(_) if content_length.is_some() => match request.array_buffer() {
            Ok(read) => {
                let then = Closure::once_into_js(move |read: JsValue| {
                    let body = read
                        .dyn_into::<ArrayBuffer>()
                        .ok()
                        .map(|buffer| Uint8Array::new(&buffer).to_vec());
                    incoming.answer(body)
                });
                read.unchecked_ref::<Thenable>().then_either(&then, &then).into()
            }
            Err(_) => incoming.answer(None),
        },
        // Chunked: read until the limit, the rest into nothing.
        BodyRead::UpTo(limit) => promised(Box::pin(async move {
            let body = read_limited(request, limit).await;
            incoming.answer(body)
        })),
    }
}

#[wasm_bindgen]
extern "C" {
    /// A promise, seen only as something to call `then` on.
    type Thenable;

    /// `promise.then(on_fulfilled, on_rejected)`, with plain functions (one callback can take
    /// both: a promise settles once).
    #[wasm_bindgen(method, js_name = then)]
    fn then_either(this: &Thenable, on_fulfilled: &JsValue, on_rejected: &JsValue) -> Promise;
}

/// `future`'s output, promised to workerd (wasm-bindgen-futures drives it). Boxed, so that every
/// caller shares one instantiation of the glue (the upload's size).
fn promised(future: Pin<Box<dyn Future<Output = JsValue>>>) -> JsValue {
    future_to_promise(async move { Ok(future.await) }).into()
}

/// A response for workerd. Building one fails only if the runtime's `Headers` or `Response`
/// throw; the promise is then rejected with that error, which workerd logs and answers with a
/// 500.
fn into_js(response: worker::Result<web_sys::Response>) -> JsValue {
    match response {
        Ok(response) => response.into(),
        Err(error) => Promise::reject(&error.into()).into(),
    }
}

/// An endpoint request as read before its body: what the core decides on, and what performs it.
struct Incoming {
    reading: BodyRead,
    url: String,
    method: http::Method,
    signature: Option<String>,
    content_type: Option<String>,
    env: Env,
    ctx: Context,
    loaded: Rc<Loaded>,
}

impl Incoming {
    /// Lets the core decide with `body` (what was read, `None` if nothing or the read failed)
    /// and performs the effects: the response at once when none of them waits, else its promise.
    fn answer(self, body: Option<Vec<u8>>) -> JsValue {
        let decision = self.loaded.edge.decide(&EdgeRequest {
            method: &self.method,
            url: &self.url,
            signature: self.signature.as_deref(),
            content_type: self.content_type.as_deref(),
            body: self.reading.body(body.as_deref()),
            now_ms: now_ms(),
            inbox_failing: INBOX_FAILING.get(),
        });
        let waits = decision.effects.iter().any(Effect::holds_the_answer);
        let mut performed: Pin<Box<dyn Future<Output = JsValue>>> = Box::pin(async move {
            let answer = perform(decision.response, decision.effects, &self.env, &self.ctx, &self.loaded).await;
            into_js(respond(&answer))
        });
        // Without an effect that holds the answer (an inbox commit, a recovery request), `perform`
        // never reaches an await that is pending, so one poll finishes it (and registers no
        // waker: a timer is armed only by those effects).
        if !waits && let Some(response) = (&mut performed).now_or_never() {
            return response;
        }
        promised(performed)
    }
}

/// Reads an admin request's body (to the admin API's limit), routes it again with it and
/// performs it: here, or in the inbox object.
async fn admin(
    request: web_sys::Request,
    method: http::Method,
    url: String,
    authorization: Option<String>,
    routed: Routed,
    env: Env,
    loaded: Rc<Loaded>,
) -> JsValue {
    let body = read_limited(request, MAX_ADMIN_BODY_BYTES)
        .await
        .filter(|body| body.len() <= MAX_ADMIN_BODY_BYTES);
    let admin = AdminRequest {
        method: &method,
        url: &url,
        authorization: authorization.as_deref(),
        body: body.as_deref(),
    };
    let routed = loaded.admin.route(&admin, now_ms()).unwrap_or(routed);
    // Inbox operations and replay passes are performed in the inbox object, which routes the
    // request again (the core's operations have no wire form).
    let (operation, what) = match routed {
        Routed::Answer(answer) => return into_js(respond_admin(&answer)),
        Routed::Inbox(operation) => (Some(operation), ""),
        Routed::Replay(_) => (None, "the replay pass"),
        // Without the inbox object, the test is sent from here, texts from the account the
        // request names (the object would know the last incident's).
        Routed::AlertTest(test) if !loaded.has_inbox => {
            let answer = alerts::test(&loaded.alerting, &env, test.account_sid.as_deref()).await;
            return into_js(respond_admin(&answer));
        }
        Routed::AlertTest(_) => (None, "the alerts test"),
    };
    match inbox::forward(&env, &admin).await {
        Ok(relayed) => relayed.into(),
        // The object cannot be reached: the core's answer to an inbox that fails.
        Err(error) => into_js(respond_admin(&match operation {
            Some(operation) => {
                let (answer, lines) = operation.failed(&error);
                for line in &lines {
                    write(line);
                }
                answer
            }
            None => AdminResponse::error(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("{what} failed: {error}"),
            ),
        })),
    }
}

/// Performs the core's effects for a request answered with `answer` (a recovery's judgement
/// replaces it): the answer to send.
async fn perform(
    mut answer: EdgeResponse,
    mut effects: Vec<Effect>,
    env: &Env,
    ctx: &Context,
    loaded: &Loaded,
) -> EdgeResponse {
    // The incident notice goes to the inbox object with the entry's store request when there is
    // one (one request for both, on the path the answer waits for anyway), else on its own,
    // after the answer.
    let mut notice = effects
        .iter()
        .position(|effect| matches!(effect, Effect::Incident(_)))
        .and_then(|index| match effects.remove(index) {
            Effect::Incident(notice) => Some(notice),
            _ => None,
        });
    for effect in effects {
        match effect {
            Effect::Keep(entry) => keep(&entry, notice.take(), env).await,
            Effect::Log(record) => write_record(&record.line(), loaded),
            Effect::Incident(other) => file(Some(other), env, ctx, loaded),
            Effect::Recover(plan) => {
                let sent = send(&plan.request).await;
                let judgement = loaded.edge.judge_recovery(&plan, sent.outcome());
                let mut filed = judgement.notice;
                if let Some(entry) = &judgement.keep {
                    keep(entry, filed.take(), env).await;
                }
                file(filed, env, ctx, loaded);
                if let Some(origin) = judgement.resolves {
                    resolve(origin, env, ctx, loaded);
                }
                write_record(&judgement.log.line(), loaded);
                answer = judgement.response;
            }
        }
    }
    file(notice, env, ctx, loaded);
    answer
}

/// Files an incident notice in the inbox object after the answer (`ctx.wait_until`); without
/// the `INBOX` binding there are no incidents. The object writes what came of it; this writes
/// only that it could not be reached.
fn file(notice: Option<Notice>, env: &Env, ctx: &Context, loaded: &Loaded) {
    let Some(notice) = notice.filter(|_| loaded.has_inbox) else {
        return;
    };
    let env = env.clone();
    ctx.wait_until(async move {
        if let Err(error) = inbox::file(&env, &notice).await {
            write(&incident::store_failed_line(&error));
        }
    });
}

/// Tells the inbox object, after the answer, that the primary at `origin` answered a recovery
/// (its open incident resolves).
fn resolve(origin: String, env: &Env, ctx: &Context, loaded: &Loaded) {
    if !loaded.has_inbox {
        return;
    }
    let env = env.clone();
    ctx.wait_until(async move {
        if let Err(error) = inbox::resolved(&env, &origin).await {
            write(&incident::store_failed_line(&error));
        }
    });
}

/// Commits `entry` to the inbox object — with the request's incident `notice`, filed in the same
/// request — awaiting it at most `STORE_DEADLINE` (the answer goes out after), and writes what
/// came of it. The answer is the same either way; a failure is logged loudly, and health checks
/// answer `degraded` until a write succeeds.
async fn keep(entry: &Entry, notice: Option<Notice>, env: &Env) {
    let stored = with_deadline(inbox::store(env, entry, notice.as_ref()), STORE_DEADLINE)
        .await
        .unwrap_or(Err(StoreError::TimedOut));
    match stored {
        Ok(outcome) => {
            INBOX_FAILING.set(false);
            if let Some(line) = outcome.line(entry) {
                write(&line);
            }
        }
        Err(error) => {
            INBOX_FAILING.set(true);
            write(&write_failed_line(entry, &error));
        }
    }
}

/// The body read up to just past `limit`, or `None` on a read error; the rest is read into
/// nothing. workerd needs a body consumed before the answer: answered with most of a large body
/// unread, its HTTP stack may reset the connection, and the client never sees the answer
/// (`wrangler dev` turns it into a 500 "Network connection lost").
async fn read_limited(request: web_sys::Request, limit: usize) -> Option<Vec<u8>> {
    let Ok(mut stream) = Request::from(request).stream() else {
        // No body stream at all: an empty body.
        return Some(Vec::new());
    };
    let body = read_up_to(&mut stream, limit).await.ok()?;
    if body.len() > limit {
        while let Some(Ok(_)) = stream.next().await {}
    }
    Some(body)
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
    let status = answer.status.as_u16();
    let init = RESPONSE_INITS.with(|inits| -> worker::Result<web_sys::ResponseInit> {
        let mut inits = inits.borrow_mut();
        if let Some((.., init)) = inits
            .iter()
            .find(|(known, content_type, _)| *known == status && *content_type == answer.content_type)
        {
            return Ok(init.clone());
        }
        let headers = web_sys::Headers::new()?;
        headers.set("Content-Type", answer.content_type)?;
        let init = web_sys::ResponseInit::new();
        init.set_status(status);
        init.set_headers(&headers);
        inits.push((status, answer.content_type, init.clone()));
        Ok(init)
    })?;
    Ok(web_sys::Response::new_with_opt_str_and_init(Some(&answer.body), &init)?)
}

/// An admin answer: its status, JSON, and the core's headers.
fn respond_admin(answer: &AdminResponse) -> worker::Result<web_sys::Response> {
    let headers = web_sys::Headers::new()?;
    headers.set("Content-Type", JSON_CONTENT_TYPE)?;
    for (name, value) in &answer.headers {
        headers.set(name, value)?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(answer.status.as_u16());
    init.set_headers(&headers);
    Ok(web_sys::Response::new_with_opt_str_and_init(Some(&answer.body), &init)?)
}

/// Writes a request's record, after the configuration's problems when it has any: loudly, once per
/// request, until they are fixed.
fn write_record(record: &LogLine, loaded: &Loaded) {
    if let Some(errors) = &loaded.config_errors {
        write(&LogLine::new(
            LogLevel::Error,
            &serde_json::json!({
                "event": "config-error",
                "errors": errors,
                "serving": "embedded defaults",
                "variables": loaded.variables,
            }),
        ));
    }
    write(record);
}

/// Writes a line the core composed: `console.log`, or `console.error` for errors and warnings.
fn write(line: &LogLine) {
    let json = line.to_json().into();
    match line.level() {
        LogLevel::Info => web_sys::console::log_1(&json),
        LogLevel::Warn | LogLevel::Error => web_sys::console::error_1(&json),
    }
}

/// Sends the core's request as it is — method, URL, headers, body, redirect policy — and reads the
/// answer to its limit, all within its deadline: recoveries, notifications and replays alike.
async fn send(request: &OutboundRequest) -> SendResult {
    let headers = Headers::new();
    for (name, value) in &request.headers {
        if let Err(error) = headers.set(name.as_str(), value) {
            return SendResult::NotSent(error.to_string());
        }
    }
    let mut init = RequestInit::new();
    init.with_method(worker::Method::from(request.method.as_str().to_owned()))
        .with_headers(headers)
        .with_redirect(match request.redirects {
            Redirects::Never => RequestRedirect::Manual,
        });
    if let Some(body) = &request.body {
        init.with_body(Some(body.as_str().into()));
    }
    let outgoing = match Request::new_with_init(&request.url, &init) {
        Ok(outgoing) => outgoing,
        // Not built, so never sent; a failed fetch below may have been (the runtime does not say).
        Err(error) => return SendResult::NotSent(error.to_string()),
    };
    let limit = request.max_answer_bytes;
    let fetched = async {
        let mut response = Fetch::Request(outgoing).send().await?;
        let status = response.status_code();
        let content_type = response.headers().get("Content-Type").ok().flatten();
        // Read up to just past the limit (enough to know it is too large); no stream, no body.
        let body = match response.stream() {
            Ok(mut stream) => read_up_to(&mut stream, limit).await?,
            Err(_) => Vec::new(),
        };
        Ok::<_, worker::Error>((status, content_type, body))
    };
    match with_deadline(fetched, request.timeout).await {
        None => SendResult::TimedOut,
        Some(Err(error)) => SendResult::Failed(error.to_string()),
        Some(Ok((status, content_type, body))) => match http::StatusCode::from_u16(status) {
            Ok(status) => SendResult::Answered {
                status,
                content_type,
                body,
            },
            Err(_) => SendResult::Failed(format!("an invalid HTTP status {status}")),
        },
    }
}

/// `future`'s output, or `None` when `deadline` passes first.
async fn with_deadline<T>(future: impl std::future::Future<Output = T>, deadline: std::time::Duration) -> Option<T> {
    let future = std::pin::pin!(future);
    match select(future, Delay::from(deadline)).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(((), _)) => None,
    }
}
