//! Capture: failures the layer catches inside the app join the outage inbox.
//!
//! When the layer answers a request with the fallback (a panic, an error, a timeout, bad TwiML),
//! the person got an apology and the app never handled what they sent. With
//! [`FallbackLayer::capture`](super::FallbackLayer::capture), the layer hands each such request
//! — its parameters in order, its URL, method, cause and error code — to a [`CaptureSink`], which
//! must return at once: the fallback answer never waits for it and never fails because of it.
//!
//! [`HttpCaptureSink`] (feature `capture-http`) posts each capture to a fallback endpoint's admin
//! API, `POST /_twiml-fallback/inbox` with `TWIML_FALLBACK_ADMIN_TOKEN`, from a background task:
//! at most [`CAPTURE_QUEUE`] captures wait (past that they are dropped, counted and logged), each
//! is tried up to three times, and none blocks a request. The endpoint stores them with
//! `"source": "layer"`, by the same rule as its own: a status callback is not kept, the same SID
//! twice is one entry.
//!
//! Put [`ValidateTwilioSignatureLayer`](super::ValidateTwilioSignatureLayer) outside the fallback
//! layer, so that only requests Twilio signed reach it — and the inbox.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use twiml_fallback::inbox::CaptureRequest;
//! use twiml_fallback::layer::{CaptureSink, FallbackLayer};
//!
//! // A sink of your own: anything that takes a capture without blocking.
//! #[derive(Clone, Default)]
//! struct Remember(Arc<Mutex<Vec<CaptureRequest>>>);
//! impl CaptureSink for Remember {
//!     fn capture(&self, request: CaptureRequest) {
//!         if let Ok(mut captured) = self.0.lock() {
//!             captured.push(request);
//!         }
//!     }
//! }
//! let layer = FallbackLayer::new().capture(Remember::default());
//! ```

use crate::inbox::CaptureRequest;

/// Where the layer hands each request it answered with the fallback. `capture` is called on the
/// request's task and must not block; a panic in it is caught and ignored.
pub trait CaptureSink: Send + Sync + 'static {
    /// Takes one failed request.
    fn capture(&self, request: CaptureRequest);
}

/// How many captures may wait to be posted; past it, new ones are dropped (counted and logged).
pub const CAPTURE_QUEUE: usize = 1024;

#[cfg(feature = "capture-http")]
pub use http_sink::HttpCaptureSink;

#[cfg(feature = "capture-http")]
mod http_sink {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, OnceLock};
    use std::time::Duration;

    use tokio::sync::mpsc;

    use super::{CAPTURE_QUEUE, CaptureRequest, CaptureSink};
    use crate::admin::ADMIN_SEGMENT;

    /// How long one post may take.
    const POST_TIMEOUT: Duration = Duration::from_secs(10);

    /// Tries per capture, and the pause before each retry.
    const RETRY_PAUSES: [Duration; 2] = [Duration::from_millis(500), Duration::from_secs(2)];

    /// Posts captures to a fallback endpoint's admin API (`POST /_twiml-fallback/inbox`) from a
    /// background task on the tokio runtime the first capture arrives on.
    ///
    /// ```no_run
    /// use axum::{routing::post, Router};
    /// use twiml_fallback::layer::{FallbackLayer, HttpCaptureSink};
    ///
    /// # async fn sms() -> &'static str { "" }
    /// let sink = HttpCaptureSink::new("https://fallback.example.com", std::env::var("TWIML_FALLBACK_ADMIN_TOKEN")?)?;
    /// let app: Router = Router::new().route("/sms", post(sms)).layer(FallbackLayer::new().capture(sink));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[derive(Clone, Debug)]
    pub struct HttpCaptureSink {
        inner: Arc<Inner>,
    }

    #[derive(Debug)]
    struct Inner {
        url: String,
        token: String,
        client: reqwest::Client,
        queue: OnceLock<mpsc::Sender<CaptureRequest>>,
        dropped: AtomicU64,
    }

    impl HttpCaptureSink {
        /// A sink posting to the admin API of the endpoint at `endpoint` (its base URL, e.g.
        /// `https://fallback.example.com` or a Worker's `https://….workers.dev`) with `admin_token`.
        pub fn new(endpoint: &str, admin_token: impl Into<String>) -> Result<Self, String> {
            let base = endpoint.trim_end_matches('/');
            if !crate::url::is_absolute_http_url(base) {
                return Err(format!("{endpoint:?} is not an absolute http(s) URL"));
            }
            let token = admin_token.into();
            if token.is_empty() {
                return Err("an empty admin token".to_owned());
            }
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = reqwest::Client::builder()
                .timeout(POST_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("twiml-fallback/", env!("CARGO_PKG_VERSION"), " (capture)"))
                .build()
                .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
            Ok(Self {
                inner: Arc::new(Inner {
                    url: format!("{base}{ADMIN_SEGMENT}/inbox"),
                    token,
                    client,
                    queue: OnceLock::new(),
                    dropped: AtomicU64::new(0),
                }),
            })
        }

        /// How many captures were dropped because the queue was full or no runtime ran.
        pub fn dropped(&self) -> u64 {
            self.inner.dropped.load(Ordering::Relaxed)
        }

        fn queue(&self) -> Option<&mpsc::Sender<CaptureRequest>> {
            if let Some(queue) = self.inner.queue.get() {
                return Some(queue);
            }
            let runtime = tokio::runtime::Handle::try_current().ok()?;
            Some(self.inner.queue.get_or_init(|| {
                let (sender, receiver) = mpsc::channel(CAPTURE_QUEUE);
                runtime.spawn(post_loop(Arc::clone(&self.inner), receiver));
                sender
            }))
        }
    }

    impl CaptureSink for HttpCaptureSink {
        fn capture(&self, request: CaptureRequest) {
            let sid = request
                .params
                .iter()
                .find(|(key, _)| key == "MessageSid" || key == "CallSid")
                .map(|(_, sid)| sid.clone())
                .unwrap_or_default();
            let queued = self.queue().is_some_and(|queue| queue.try_send(request).is_ok());
            if !queued {
                let dropped = self.inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(
                    target: "twiml_fallback",
                    sid,
                    dropped,
                    "capture not kept: the queue to the inbox is full (or no tokio runtime runs)"
                );
            }
        }
    }

    async fn post_loop(inner: Arc<Inner>, mut receiver: mpsc::Receiver<CaptureRequest>) {
        while let Some(request) = receiver.recv().await {
            post(&inner, &request).await;
        }
    }

    /// Posts one capture, retrying connection failures and 5xx; a refusal (4xx) is final.
    async fn post(inner: &Inner, request: &CaptureRequest) {
        let sid = request
            .params
            .iter()
            .find(|(key, _)| key == "MessageSid" || key == "CallSid")
            .map_or("", |(_, sid)| sid.as_str());
        let mut pauses = RETRY_PAUSES.iter();
        loop {
            let sent = inner
                .client
                .post(&inner.url)
                .bearer_auth(&inner.token)
                .json(request)
                .send()
                .await;
            let retry = match &sent {
                Ok(response) if response.status().is_success() => return,
                // 422: the endpoint's rule does not keep it (a status callback), which is no error.
                Ok(response) if response.status() == http::StatusCode::UNPROCESSABLE_ENTITY => return,
                Ok(response) => {
                    let status = response.status();
                    tracing::error!(target: "twiml_fallback", sid, status = status.as_u16(), url = %inner.url, "capture refused by the inbox");
                    // 507: the inbox is full; trying again cannot help.
                    status.is_server_error() && status != http::StatusCode::INSUFFICIENT_STORAGE
                }
                Err(error) => {
                    tracing::error!(target: "twiml_fallback", sid, error = %error, url = %inner.url, "capture not delivered to the inbox");
                    true
                }
            };
            match pauses.next() {
                Some(pause) if retry => tokio::time::sleep(*pause).await,
                _ => return,
            }
        }
    }
}
