//! [`ValidateTwilioSignatureLayer`]: answer 403 to any request not signed by Twilio.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::body::{Buffer, Collected, RequestBody, poll_collect};
use super::layer::DEFAULT_REQUEST_BODY_LIMIT;
use super::requested_uri::requested_uri;
use crate::edge::TEXT_CONTENT_TYPE;
use crate::signature::{Payload, SIGNATURE_HEADER, SignatureError, SignatureVerifier, UrlPolicy, Verified};
use crate::webhook::Params;

/// Verifies `X-Twilio-Signature` on every request and answers `403 Forbidden` when it is missing
/// or wrong, before the wrapped service sees the request. On success the request goes on with its
/// body buffered and a [`Verified`] in its extensions.
///
/// It fails closed: with no token configured every request is refused.
///
/// Put it **outside** [`FallbackLayer`](super::FallbackLayer) (with axum: `.layer(fallback)`
/// first, then `.layer(signature)`; with `ServiceBuilder`: signature first). Outside, a forged
/// request gets 403 and never reaches the app; inside, the fallback layer would turn that 403 into
/// friendly TwiML for the forger.
///
/// Mount it anywhere: on the top router, on a route, or inside `Router::nest` /
/// `nest_service`. With the `axum` feature (default) it checks the URI Twilio requested (axum's
/// `OriginalUri`), not the prefix-stripped one a nested router sees; with
/// [`UrlPolicy::public_base`] that URI's path is appended to the base's.
///
/// ```
/// use twiml_fallback::layer::{FallbackLayer, ValidateTwilioSignatureLayer};
/// use twiml_fallback::signature::{SignatureVerifier, UrlPolicy};
///
/// # fn app() -> axum::Router { axum::Router::new() }
/// let verifier = SignatureVerifier::new("current-token").with_token("next-token");
/// let router = app()
///     .layer(FallbackLayer::new())
///     .layer(ValidateTwilioSignatureLayer::new(verifier)
///         .url_policy(UrlPolicy::public_base("https://voice.example.com").unwrap()));
/// ```
#[derive(Clone, Debug)]
pub struct ValidateTwilioSignatureLayer {
    shared: Arc<SignatureShared>,
}

#[derive(Clone, Debug)]
struct SignatureShared {
    verifier: SignatureVerifier,
    policy: UrlPolicy,
    request_body_limit: usize,
}

impl ValidateTwilioSignatureLayer {
    /// Verifies with `verifier`'s tokens, the URL taken as received.
    pub fn new(verifier: SignatureVerifier) -> Self {
        if verifier.is_empty() {
            tracing::warn!(target: "twiml_fallback", "ValidateTwilioSignatureLayer has no token: every request will get 403");
        }
        Self {
            shared: Arc::new(SignatureShared {
                verifier,
                policy: UrlPolicy::as_received(),
                request_body_limit: DEFAULT_REQUEST_BODY_LIMIT,
            }),
        }
    }

    /// How to rebuild the URL Twilio signed (behind a proxy: a public base URL, or trusted
    /// forwarding headers).
    pub fn url_policy(mut self, policy: UrlPolicy) -> Self {
        Arc::make_mut(&mut self.shared).policy = policy;
        self
    }

    /// The largest request body read to verify (default 64 KB, as
    /// [`FallbackLayer::request_body_limit`](super::FallbackLayer::request_body_limit)); a larger
    /// one can't be verified and gets 403.
    pub fn request_body_limit(mut self, limit: usize) -> Self {
        Arc::make_mut(&mut self.shared).request_body_limit = limit;
        self
    }
}

impl<S> Layer<S> for ValidateTwilioSignatureLayer {
    type Service = ValidateTwilioSignature<S>;

    fn layer(&self, inner: S) -> ValidateTwilioSignature<S> {
        ValidateTwilioSignature {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service of [`ValidateTwilioSignatureLayer`].
#[derive(Clone, Debug)]
pub struct ValidateTwilioSignature<S> {
    inner: S,
    shared: Arc<SignatureShared>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ValidateTwilioSignature<S>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>> + Clone,
    ReqBody: Body,
    ResBody: Body,
{
    type Response = Response<SignatureBody<ResBody>>;
    type Error = S::Error;
    type Future = SignatureFuture<S, ReqBody, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let (parts, body) = request.into_parts();
        SignatureFuture {
            kind: SignatureKind::Reading {
                parts: Some(parts),
                body: Box::pin(body),
                buffer: Buffer::default(),
                service: Some(ready),
            },
            shared: Arc::clone(&self.shared),
            _response: std::marker::PhantomData,
        }
    }
}

pin_project! {
    /// The response future of [`ValidateTwilioSignature`].
    pub struct SignatureFuture<S, ReqBody, ResBody>
    where
        S: Service<Request<RequestBody<ReqBody>>>,
    {
        #[pin]
        kind: SignatureKind<S, ReqBody>,
        shared: Arc<SignatureShared>,
        _response: std::marker::PhantomData<fn() -> ResBody>,
    }
}

pin_project! {
    #[project = SignatureKindProj]
    enum SignatureKind<S, ReqBody>
    where
        S: Service<Request<RequestBody<ReqBody>>>,
    {
        Reading {
            parts: Option<http::request::Parts>,
            body: Pin<Box<ReqBody>>,
            buffer: Buffer,
            service: Option<S>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
    }
}

impl<S, ReqBody, ResBody> Future for SignatureFuture<S, ReqBody, ResBody>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
    ReqBody: Body,
    ResBody: Body,
{
    type Output = Result<Response<SignatureBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.kind.as_mut().project() {
                SignatureKindProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(|body| SignatureBody {
                        kind: BodyKind::Inner { body },
                    })));
                }
                SignatureKindProj::Reading {
                    parts,
                    body,
                    buffer,
                    service,
                } => {
                    let collected = ready!(poll_collect(body.as_mut(), buffer, this.shared.request_body_limit, cx));
                    let (Some(mut parts), Some(mut service)) = (parts.take(), service.take()) else {
                        return Poll::Ready(Ok(forbidden("the request could not be read")));
                    };
                    let bytes = match collected {
                        Ok(Collected::Complete(bytes)) => bytes,
                        Ok(Collected::OverLimit(_)) => {
                            return Poll::Ready(Ok(forbidden("the body is too large to verify")));
                        }
                        Err(_) => return Poll::Ready(Ok(forbidden("the request body could not be read"))),
                    };
                    match verify(this.shared, &parts, &bytes) {
                        Ok(verified) => {
                            parts.extensions.insert(verified);
                            let request = Request::from_parts(parts, RequestBody::buffered(bytes));
                            SignatureKind::Calling {
                                future: service.call(request),
                            }
                        }
                        Err(reason) => {
                            tracing::info!(
                                target: "twiml_fallback",
                                reason = %reason,
                                path = requested_uri(&parts).path(),
                                "refused a request: X-Twilio-Signature"
                            );
                            return Poll::Ready(Ok(forbidden(&reason)));
                        }
                    }
                }
            };
            this.kind.set(next);
        }
    }
}

fn verify(shared: &SignatureShared, parts: &http::request::Parts, body: &[u8]) -> Result<Verified, String> {
    let url = shared
        .policy
        .signed_url_for(requested_uri(parts), &parts.headers)
        .map_err(|error| error.to_string())?;
    let signature = parts
        .headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let content_type = parts.headers.get(CONTENT_TYPE).and_then(|value| value.to_str().ok());
    let params = Params::from_request(&parts.method, requested_uri(parts).query(), content_type, body);
    let payload = Payload::for_request(&parts.method, &url, body, &params);
    shared
        .verifier
        .verify(&url, payload, signature)
        .map_err(|error: SignatureError| error.to_string())
}

fn forbidden<B>(reason: &str) -> Response<SignatureBody<B>> {
    let text = format!("Forbidden: {reason}\n");
    let mut response = Response::new(SignatureBody {
        kind: BodyKind::Forbidden {
            data: Some(Bytes::from(text)),
        },
    });
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_CONTENT_TYPE));
    response
}

pin_project! {
    /// The response body of [`ValidateTwilioSignature`]: the app's own, or the 403 text.
    pub struct SignatureBody<B> {
        #[pin]
        kind: BodyKind<B>,
    }
}

pin_project! {
    #[project = BodyKindProj]
    enum BodyKind<B> {
        Inner { #[pin] body: B },
        Forbidden { data: Option<Bytes> },
    }
}

impl<B> fmt::Debug for SignatureBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignatureBody")
    }
}

impl<B: Body> Body for SignatureBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            BodyKindProj::Forbidden { data } => Poll::Ready(data.take().map(|bytes| Ok(Frame::data(bytes)))),
            BodyKindProj::Inner { body } => {
                let frame = ready!(body.poll_frame(cx));
                Poll::Ready(
                    frame.map(|result| {
                        result.map(|frame| frame.map_data(|mut data| data.copy_to_bytes(data.remaining())))
                    }),
                )
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Inner { body } => body.is_end_stream(),
            BodyKind::Forbidden { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Inner { body } => body.size_hint(),
            BodyKind::Forbidden { data } => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
        }
    }
}
