//! The middleware's response futures: [`ResponseFuture`] (the fallback layer's: reads the
//! request, calls the app, reads and judges its answer, and turns any failure on the way into the
//! fallback answer) and [`SignatureFuture`] (the signature layer's). Named in a service's type;
//! rarely otherwise.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

pub use super::signature::SignatureFuture;

use super::body::{Buffer, Collected, FallbackBody, RequestBody, poll_collect};
use super::event::{FallbackCause, FallbackEvent};
use super::layer::{FALLBACK_HEADER, Shared};
use super::params::TwilioParams;
use super::requested_uri::requested_uri;
use super::timer::Sleep;
use crate::edge::TWIML_CONTENT_TYPE;
use crate::error_code::ErrorCode;
use crate::inbox::CaptureRequest;
use crate::twiml::{AnswerRules, Rejection};
use crate::webhook::{Channel, Params, is_form_content_type};

pin_project! {
    /// The response future of [`Fallback`](super::Fallback).
    pub struct ResponseFuture<S, ReqBody, ResBody>
    where
        S: Service<Request<RequestBody<ReqBody>>>,
    {
        #[pin]
        kind: Kind<S, ReqBody, ResBody>,
        sleep: Option<Sleep>,
        context: RequestContext,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, ReqBody, ResBody>
    where
        S: Service<Request<RequestBody<ReqBody>>>,
    {
        ReadingRequest {
            parts: Option<http::request::Parts>,
            body: Option<Pin<Box<ReqBody>>>,
            buffer: Buffer,
            service: Option<S>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        ReadingResponse {
            parts: Option<http::response::Parts>,
            #[pin]
            body: ResBody,
            buffer: Buffer,
        },
        Done,
    }
}

/// How many distinct paths get the "Content-Type corrected" warning (a bound on its memory).
const MAX_CORRECTED_PATHS_LOGGED: usize = 1024;

/// What the layer knows about the request, for judging the answer and reporting a fallback.
struct RequestContext {
    shared: Arc<Shared>,
    started: Instant,
    /// The URI Twilio requested (before any `Router::nest` stripped a prefix; cheap to clone, the
    /// path is only copied out for a fallback).
    uri: http::Uri,
    /// The request's method, for a capture.
    method: Method,
    /// The parameters, decoded only if a fallback needs the called number and the SID; their
    /// channel found when the answer is judged (from what the handler decoded, if it did).
    params: Option<TwilioParams>,
}

/// Where a poll of the current state leaves the future, when it does not move to the next state.
enum Step {
    Answer(Response<FallbackBody>),
    Fallback(FallbackCause),
    Pending,
}

impl<S, ReqBody, ResBody> ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<RequestBody<ReqBody>>>,
{
    pub(crate) fn new(service: S, request: Request<ReqBody>, shared: Arc<Shared>) -> Self {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let context = RequestContext {
            shared,
            started,
            uri: requested_uri(&parts).clone(),
            method: parts.method.clone(),
            params: None,
        };
        Self {
            kind: Kind::ReadingRequest {
                parts: Some(parts),
                body: Some(Box::pin(body)),
                buffer: Buffer::default(),
                service: Some(service),
            },
            sleep: None,
            context,
        }
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
    S::Error: fmt::Display,
    ReqBody: Body,
    ReqBody::Error: fmt::Display,
    ResBody: Body,
    ResBody::Error: fmt::Display,
{
    type Output = Result<Response<FallbackBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let step = match this.kind.as_mut().project() {
                KindProj::ReadingRequest {
                    parts,
                    body,
                    buffer,
                    service,
                } => {
                    let limit = this.context.shared.request_body_limit;
                    let Some(reading) = body.as_mut() else {
                        unreachable_state();
                        return Poll::Pending;
                    };
                    match poll_collect(reading.as_mut(), buffer, limit, cx) {
                        Poll::Pending => Step::Pending,
                        Poll::Ready(Err(error)) => Step::Fallback(FallbackCause::RequestBodyError(error.to_string())),
                        Poll::Ready(Ok(collected)) => match (parts.take(), service.take(), body.take()) {
                            (Some(parts), Some(mut service), Some(body)) => {
                                let request = this.context.prepare(parts, collected, body);
                                // The app's future is built where it will be polled: moved once,
                                // not through each step (it and the state around it are large).
                                // What it replaces holds nothing left to drop but the emptied
                                // buffer, so no `finish` first.
                                let mut kind = this.kind.as_mut();
                                match catch_unwind(AssertUnwindSafe(|| {
                                    kind.set(Kind::Calling {
                                        future: service.call(request),
                                    })
                                })) {
                                    Ok(()) => continue,
                                    Err(panic) => Step::Fallback(FallbackCause::Panic(panic_message(panic))),
                                }
                            }
                            _ => {
                                unreachable_state();
                                return Poll::Pending;
                            }
                        },
                    }
                }
                KindProj::Calling { future } => match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                    Err(panic) => Step::Fallback(FallbackCause::Panic(panic_message(panic))),
                    Ok(Poll::Pending) => Step::Pending,
                    Ok(Poll::Ready(Err(error))) => Step::Fallback(FallbackCause::Error(error.to_string())),
                    Ok(Poll::Ready(Ok(response))) => {
                        let (parts, body) = response.into_parts();
                        if (this.context.shared.is_failure)(parts.status) {
                            Step::Fallback(FallbackCause::Status(parts.status))
                        } else {
                            finish(this.kind.as_mut());
                            this.kind.set(Kind::ReadingResponse {
                                parts: Some(parts),
                                body,
                                buffer: Buffer::default(),
                            });
                            continue;
                        }
                    }
                },
                KindProj::ReadingResponse { parts, body, buffer } => {
                    let limit = this.context.shared.response_body_limit;
                    match catch_unwind(AssertUnwindSafe(|| poll_collect(body, buffer, limit, cx))) {
                        Err(panic) => Step::Fallback(FallbackCause::BodyPanic(panic_message(panic))),
                        Ok(Poll::Pending) => Step::Pending,
                        Ok(Poll::Ready(Err(error))) => Step::Fallback(FallbackCause::BodyError(error.to_string())),
                        Ok(Poll::Ready(Ok(Collected::OverLimit(read)))) => {
                            Step::Fallback(FallbackCause::Rejected(Rejection {
                                code: ErrorCode::RESPONSE_TOO_LARGE,
                                message: format!(
                                    "the body is over {limit} bytes ({} read before giving up)",
                                    read.len()
                                ),
                                diagnostic: None,
                            }))
                        }
                        Ok(Poll::Ready(Ok(Collected::Complete(bytes)))) => match parts.take() {
                            Some(mut parts) => match this.context.judge(&parts, &bytes) {
                                Ok(None) => Step::Answer(Response::from_parts(parts, FallbackBody::new(bytes))),
                                Ok(Some(corrected)) => {
                                    this.context.correct_content_type(&mut parts, corrected);
                                    Step::Answer(Response::from_parts(parts, FallbackBody::new(bytes)))
                                }
                                Err(rejection) => Step::Fallback(FallbackCause::Rejected(rejection)),
                            },
                            None => {
                                unreachable_state();
                                return Poll::Pending;
                            }
                        },
                    }
                }
                KindProj::Done => panic!("ResponseFuture polled after completion"),
            };
            match step {
                Step::Answer(response) => {
                    finish(this.kind.as_mut());
                    return Poll::Ready(Ok(response));
                }
                Step::Fallback(cause) => {
                    finish(this.kind.as_mut());
                    return Poll::Ready(Ok(this.context.fallback(cause)));
                }
                Step::Pending => break,
            }
        }
        // The clock starts with the request, but the timer is only armed the first time the
        // request has to wait: most answers come back on the first poll and never need one.
        let Some(deadline) = this.context.shared.deadline else {
            return Poll::Pending;
        };
        if this.sleep.is_none() {
            let remaining = deadline.saturating_sub(this.context.started.elapsed());
            *this.sleep = match &this.context.shared.timer {
                Some(timer) if !remaining.is_zero() => timer.0.sleep(remaining),
                Some(_) => Some(Box::pin(std::future::ready(()))),
                None => None,
            };
        }
        if let Some(sleep) = this.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_ready() {
                finish(this.kind.as_mut());
                return Poll::Ready(Ok(this.context.fallback(FallbackCause::Timeout(deadline))));
            }
        }
        Poll::Pending
    }
}

/// Leaves the current state for `Done`, whence the next one is set (with nothing to drop).
/// Dropping the old one (a panicked future, a half-read body) may itself panic; that must not
/// escape either.
fn finish<S, ReqBody, ResBody>(mut kind: Pin<&mut Kind<S, ReqBody, ResBody>>)
where
    S: Service<Request<RequestBody<ReqBody>>>,
{
    let _ = catch_unwind(AssertUnwindSafe(move || kind.set(Kind::Done)));
}

/// A state the future never leaves half-filled; reported loudly in debug builds only.
fn unreachable_state() {
    debug_assert!(false, "ResponseFuture in an inconsistent state");
}

impl RequestContext {
    /// Records the raw parameters (their channel is found when the answer is judged) and builds
    /// the inner request.
    fn prepare<ReqBody>(
        &mut self,
        mut parts: http::request::Parts,
        collected: Collected,
        original: Pin<Box<ReqBody>>,
    ) -> Request<RequestBody<ReqBody>> {
        let query = || Bytes::copy_from_slice(parts.uri.query().unwrap_or("").as_bytes());
        let (raw, complete, body) = match collected {
            Collected::Complete(bytes) => {
                let content_type = parts.headers.get(CONTENT_TYPE).and_then(|value| value.to_str().ok());
                let is_get = parts.method == Method::GET || parts.method == Method::HEAD;
                let raw = if !is_get && is_form_content_type(content_type) {
                    bytes.clone()
                } else {
                    query()
                };
                (raw, true, RequestBody::buffered(bytes))
            }
            Collected::OverLimit(prefix) => (query(), false, RequestBody::partial(prefix, original)),
        };
        let params = TwilioParams::new(raw, self.shared.channel, complete);
        parts.extensions.insert(params.clone());
        self.params = Some(params);
        Request::from_parts(parts, body)
    }

    /// The layer's explicit channel, else the one the parameters show.
    fn channel(&self) -> Option<Channel> {
        match &self.params {
            Some(params) => params.channel(),
            None => self.shared.channel,
        }
    }

    /// Whether the app's answer passes — 3xx always (Twilio follows redirects), else the core's
    /// [`AnswerRules`] — and the Content-Type it must be served under when the app's is wrong.
    fn judge(&self, parts: &http::response::Parts, body: &[u8]) -> Result<Option<&'static str>, Rejection> {
        if parts.status.is_redirection() {
            return Ok(None);
        }
        let rules = AnswerRules {
            target: self.channel().into(),
            strictness: self.shared.strictness,
            content: self.shared.content_policy,
        };
        let content_type = parts.headers.get(CONTENT_TYPE).and_then(|value| value.to_str().ok());
        rules
            .check_content(parts.status, content_type, body)
            .map(|accepted| accepted.corrected_content_type())
    }

    /// Serves valid TwiML under the Content-Type Twilio runs as TwiML (status, other headers and
    /// bytes untouched), and tells the app's author once per path.
    fn correct_content_type(&self, parts: &mut http::response::Parts, corrected: &'static str) {
        let served = parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static(corrected));
        let path = self.uri.path();
        let first_time = self.shared.corrected_paths.lock().is_ok_and(|mut paths| {
            paths.len() < MAX_CORRECTED_PATHS_LOGGED && !paths.contains(path) && paths.insert(path.to_owned())
        });
        if first_time {
            tracing::warn!(
                target: "twiml_fallback",
                path = %clip(path, 256),
                served = served.as_ref().and_then(|value| value.to_str().ok()).unwrap_or(""),
                corrected,
                "the handler served valid TwiML under a Content-Type Twilio would not run as TwiML; \
                 passed with the Content-Type corrected (logged once per path: serve it as text/xml)"
            );
        }
    }

    /// Reports the fallback (tracing event, then the hook) and builds the answer.
    fn fallback(&self, cause: FallbackCause) -> Response<FallbackBody> {
        let error_code = cause.error_code();
        let cause_name = cause.as_str();
        let channel = self.channel();
        let params = self.params.as_ref().map(TwilioParams::params);
        let to = params.and_then(Params::to).map(|to| clip(to, 64));
        let event = FallbackEvent {
            cause,
            error_code,
            channel,
            sid: params
                .and_then(|params| params.sid_for(channel))
                .map(|sid| clip(sid, 64)),
            to: to.clone(),
            path: clip(self.uri.path(), 256),
            elapsed: self.started.elapsed(),
        };
        tracing::warn!(
            target: "twiml_fallback",
            cause = cause_name,
            error_code = error_code.as_u32(),
            channel = event.channel.map(Channel::as_str),
            sid = event.sid.as_deref(),
            path = %event.path,
            elapsed_ms = u64::try_from(event.elapsed.as_millis()).unwrap_or(u64::MAX),
            detail = %event.cause,
            "answered with fallback TwiML"
        );
        if let Some(hook) = &self.shared.on_fallback {
            let _ = catch_unwind(AssertUnwindSafe(|| hook(&event)));
        }
        if let (Some(sink), Some(params)) = (&self.shared.capture, &self.params) {
            if params.is_complete() && params.params().sid_for(channel).is_some() {
                let request = CaptureRequest {
                    channel,
                    url: self.uri.to_string(),
                    method: self.method.as_str().to_owned(),
                    params: params
                        .params()
                        .iter()
                        .map(|(key, value)| (key.to_owned(), value.to_owned()))
                        .collect(),
                    cause: Some(cause_name.to_owned()),
                    error_code: Some(error_code.as_u32()),
                };
                let _ = catch_unwind(AssertUnwindSafe(|| sink.capture(request)));
            }
        }
        let twiml = self.shared.config.fallback(channel, to.as_deref()).twiml;
        let mut response = Response::new(FallbackBody::new(Bytes::copy_from_slice(twiml.as_bytes())));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(TWIML_CONTENT_TYPE));
        if self.shared.marker_header {
            headers.insert(FALLBACK_HEADER, HeaderValue::from_static(cause_name));
        }
        response
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let message = if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    };
    // Dropping the payload runs arbitrary code; keep that from escaping too.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
    clip(&message, 512)
}

fn clip(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
