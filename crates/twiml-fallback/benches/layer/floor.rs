//! The floor of the fallback layer's job: the least a layer must do to pass a webhook's answer
//! only when it is well-formed TwiML, written plainly from stock parts (the shape of an
//! `axum::middleware::from_fn` middleware, without its extractors):
//!
//! - read the request body whole (http-body-util's `collect`), since the app must get it and the
//!   layer must see the parameters;
//! - hand the raw form to the app in the request's extensions (what `TwilioParams` is);
//! - find the channel with one `memmem` search for `CallSid=` (no escaped keys, no empty values);
//! - call the app with its panics caught, while the service stays ready for the next request;
//! - read the answer body whole, then check it is UTF-8 and walk it with quick-xml's bare event
//!   loop (validation's own floor in `benches/core.rs`), with no schema at all;
//! - answer a fixed document on any failure, with no timer, event, hook or capture.
//!
//! It does less than the fallback layer at every step but two, where the stock parts cost more:
//! the boxed future (an `async` block has no name to put in `Service::Future`) and `collect`'s
//! buffers for each body (the layer keeps a body that arrives in one chunk as that chunk). So
//! this is the job as the stock crates do it, not a hand-tuned lower bound: BENCHMARKS.md says
//! how much of it those two steps are.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::{Layer, Service};

/// What the floor answers on any failure.
const FALLBACK: &str = "<Response><Message>We are having trouble. Please try again later.</Message></Response>";

/// The request's raw form, as the app finds it in the extensions.
#[derive(Clone, Debug)]
pub(crate) struct RawForm {
    pub(crate) form: Bytes,
    pub(crate) is_call: bool,
}

/// The floor layer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FloorLayer;

impl<S> Layer<S> for FloorLayer {
    type Service = Floor<S>;

    fn layer(&self, inner: S) -> Floor<S> {
        Floor { inner }
    }
}

/// The floor layer's service.
#[derive(Clone, Debug)]
pub(crate) struct Floor<S> {
    inner: S,
}

impl<S> Service<Request<Body>> for Floor<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The ready service goes with the request; a clone stays for the next `poll_ready`.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let Ok(collected) = body.collect().await else {
                return Ok(fallback());
            };
            let form = collected.to_bytes();
            let is_call = memchr::memmem::find(&form, b"CallSid=").is_some();
            parts.extensions.insert(RawForm {
                form: form.clone(),
                is_call,
            });
            let request = Request::from_parts(parts, Body::from(form));
            let Ok(answer) = catch_unwind(AssertUnwindSafe(|| ready.call(request))) else {
                return Ok(fallback());
            };
            let mut answer = pin!(answer);
            let polled = poll_fn(|cx| match catch_unwind(AssertUnwindSafe(|| answer.as_mut().poll(cx))) {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(Ok(response))) => Poll::Ready(Some(response)),
                Ok(Poll::Ready(Err(never))) => match never {},
                Err(_panic) => Poll::Ready(None),
            });
            let Some(response) = polled.await else {
                return Ok(fallback());
            };
            let (parts, body) = response.into_parts();
            if parts.status.is_client_error() || parts.status.is_server_error() {
                return Ok(fallback());
            }
            let Ok(collected) = body.collect().await else {
                return Ok(fallback());
            };
            let bytes = collected.to_bytes();
            if !std::str::from_utf8(&bytes).is_ok_and(is_well_formed) {
                return Ok(fallback());
            }
            Ok(Response::from_parts(parts, Body::from(bytes)))
        })
    }
}

/// Whether quick-xml's reader gets through `document` without an error (its settings as the
/// validator's, and as the quick-xml floor's in `benches/core.rs`).
fn is_well_formed(document: &str) -> bool {
    let mut reader = quick_xml::Reader::from_str(document);
    let config = reader.config_mut();
    config.check_end_names = false;
    config.check_comments = true;
    config.expand_empty_elements = false;
    config.allow_dangling_amp = false;
    config.allow_unmatched_ends = true;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => return true,
            Ok(event) => {
                std::hint::black_box(&event);
            }
            Err(_) => return false,
        }
    }
}

fn fallback() -> Response<Body> {
    let mut response = Response::new(Body::from(FALLBACK));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static("text/xml"));
    response
}
