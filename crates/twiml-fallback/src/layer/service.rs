//! [`Fallback`]: the middleware service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::body::{FallbackBody, RequestBody};
use super::future::ResponseFuture;
use super::layer::{FallbackLayer, Shared};

/// A webhook service whose every failure becomes valid fallback TwiML. Made by [`FallbackLayer`].
///
/// Its error type is the inner service's: it only surfaces the inner `poll_ready` errors (a
/// request it has not been given can't be answered); every failure of a request becomes an answer.
#[derive(Clone, Debug)]
pub struct Fallback<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S> Fallback<S> {
    /// Wraps `inner` with the default [`FallbackLayer`].
    pub fn new(inner: S) -> Self {
        tower_layer::Layer::layer(&FallbackLayer::new(), inner)
    }

    /// The default [`FallbackLayer`], to configure.
    pub fn layer() -> FallbackLayer {
        FallbackLayer::new()
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Fallback<S>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>> + Clone,
    S::Error: fmt::Display,
    ReqBody: Body,
    ReqBody::Error: fmt::Display,
    ResBody: Body,
    ResBody::Error: fmt::Display,
{
    type Response = Response<FallbackBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service made ready goes with the request (it is called once the body is read); a
        // clone stays behind for the next `poll_ready`.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(ready, request, Arc::clone(&self.shared))
    }
}
