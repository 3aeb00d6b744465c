//! [`FallbackLayer`]: the configuration of the fallback middleware.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use tower_layer::Layer;

use super::capture::CaptureSink;
use super::event::FallbackEvent;
use super::service::Fallback;
use super::timer::{SharedTimer, Timer};
use crate::config::Config;
use crate::twiml::{ContentPolicy, MAX_DOCUMENT_BYTES, Strictness};
use crate::webhook::Channel;

/// The default deadline: Twilio gives up after 15 s, so answer well before.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(12);

/// The default request body limit: Twilio's webhook bodies are a few KB.
pub const DEFAULT_REQUEST_BODY_LIMIT: usize = 64 * 1024;

/// The response header that marks a fallback answer, naming its cause.
pub const FALLBACK_HEADER: &str = "x-twiml-fallback";

/// Wraps a webhook service so that every failure becomes valid fallback TwiML. See the
/// [module docs](super) for what it catches.
#[derive(Clone, Debug)]
pub struct FallbackLayer {
    pub(crate) shared: Arc<Shared>,
}

/// A hook receiving every fallback event.
type Hook = Arc<dyn Fn(&FallbackEvent) + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) channel: Option<Channel>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) timer: Option<SharedTimer>,
    pub(crate) strictness: Strictness,
    pub(crate) content_policy: ContentPolicy,
    /// Paths whose TwiML got its Content-Type corrected, each logged once.
    pub(crate) corrected_paths: Arc<Mutex<HashSet<String>>>,
    pub(crate) is_failure: fn(StatusCode) -> bool,
    pub(crate) marker_header: bool,
    pub(crate) request_body_limit: usize,
    pub(crate) response_body_limit: usize,
    pub(crate) on_fallback: Option<Hook>,
    pub(crate) capture: Option<Arc<dyn CaptureSink>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackLayer")
            .field("channel", &self.channel)
            .field("deadline", &self.deadline)
            .field("timer", &self.timer)
            .field("strictness", &self.strictness)
            .field("content_policy", &self.content_policy)
            .field("marker_header", &self.marker_header)
            .field("request_body_limit", &self.request_body_limit)
            .field("on_fallback", &self.on_fallback.as_ref().map(|_| "Fn(&FallbackEvent)"))
            .field("capture", &self.capture.as_ref().map(|_| "CaptureSink"))
            .finish_non_exhaustive()
    }
}

/// Any 4xx or 5xx.
fn is_client_or_server_error(status: StatusCode) -> bool {
    status.is_client_error() || status.is_server_error()
}

impl Default for FallbackLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl FallbackLayer {
    /// The layer with the embedded default answers, a 12 s deadline (with the `tokio` feature),
    /// channel detection from the parameters, schema validation on, whatever Twilio runs passing
    /// by Content-Type, any 4xx/5xx as a failure, and the `x-twiml-fallback` header on fallback
    /// answers.
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                config: Config::default(),
                channel: None,
                deadline: Some(DEFAULT_DEADLINE),
                timer: default_timer(),
                strictness: Strictness::Schema,
                content_policy: ContentPolicy::AsTwilio,
                corrected_paths: Arc::default(),
                is_failure: is_client_or_server_error,
                marker_header: true,
                request_body_limit: DEFAULT_REQUEST_BODY_LIMIT,
                response_body_limit: MAX_DOCUMENT_BYTES,
                on_fallback: None,
                capture: None,
            }),
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Shared)) -> Self {
        change(Arc::make_mut(&mut self.shared));
        self
    }

    /// The answers to serve (per channel and called number).
    pub fn config(self, config: Config) -> Self {
        self.with(|shared| shared.config = config)
    }

    /// Treat every request as `channel` instead of detecting it from `CallSid`/`MessageSid`
    /// (useful when the body can't be read, e.g. over the request body limit).
    pub fn channel(self, channel: Channel) -> Self {
        self.with(|shared| shared.channel = Some(channel))
    }

    /// Answer with the fallback when the app has not answered within `deadline` (default 12 s;
    /// Twilio gives up at 15 s).
    ///
    /// **Keep it under Twilio's limit for the URL.** Twilio waits 15 s unless the webhook URL
    /// configured on the number ends in a fragment that shortens it: `#rt=` (read timeout) or
    /// `#tt=` (total), in milliseconds, e.g. `https://app.example.com/voice#rt=3000`. Browsers and
    /// HTTP clients never send a fragment, so the app — and this layer — cannot see it: with
    /// `#rt=3000` and the default 12 s deadline, Twilio gives up on a slow app after 3 s and
    /// requests the fallback URL (or plays its error), and the layer's answer comes too late. Set
    /// the deadline below the fragment's limit, leaving room for the network (here, e.g.
    /// `.deadline(Duration::from_millis(2500))`). `twiml-fallback simulate --url 'URL#rt=3000'`
    /// warns when a fragment leaves less time than the default deadline needs.
    pub fn deadline(self, deadline: Duration) -> Self {
        self.with(|shared| shared.deadline = Some(deadline))
    }

    /// Never time out (the app's own timeouts, or Twilio's, apply).
    pub fn no_deadline(self) -> Self {
        self.with(|shared| shared.deadline = None)
    }

    /// The clock for the deadline (default: tokio's, with the `tokio` feature).
    pub fn timer(self, timer: impl Timer) -> Self {
        self.with(|shared| shared.timer = Some(SharedTimer(Arc::new(timer))))
    }

    /// How much TwiML validation an answer must pass (default [`Strictness::Schema`]: parse
    /// errors, wrong root and schema errors all trigger the fallback; warnings do not).
    pub fn strictness(self, strictness: Strictness) -> Self {
        self.with(|shared| shared.strictness = strictness)
    }

    /// Which answers pass by Content-Type (default [`ContentPolicy::AsTwilio`]: whatever Twilio
    /// runs — TwiML served as XML or HTML, plain text, audio on calls). Stricter, opt-in:
    /// [`ContentPolicy::TwimlOnly`] (plain-text and audio answers fall back) or
    /// [`ContentPolicy::XmlOnly`] (only `text/xml` / `application/xml` pass).
    pub fn content_policy(self, policy: ContentPolicy) -> Self {
        self.with(|shared| shared.content_policy = policy)
    }

    /// Which statuses count as a failure (default: any 4xx or 5xx). 3xx answers always pass
    /// through: Twilio follows redirects.
    pub fn failure_status(self, is_failure: fn(StatusCode) -> bool) -> Self {
        self.with(|shared| shared.is_failure = is_failure)
    }

    /// Whether fallback answers carry `x-twiml-fallback: <cause>` (default: yes).
    pub fn marker_header(self, enabled: bool) -> Self {
        self.with(|shared| shared.marker_header = enabled)
    }

    /// The largest request body the layer buffers to read the parameters (default 64 KB). A
    /// larger body is passed to the app untouched; the channel then comes from
    /// [`FallbackLayer::channel`] or the query string.
    pub fn request_body_limit(self, limit: usize) -> Self {
        self.with(|shared| shared.request_body_limit = limit)
    }

    /// Calls `hook` with every fallback event (after the `tracing` event). A panicking hook is
    /// caught and ignored.
    pub fn on_fallback(self, hook: impl Fn(&FallbackEvent) + Send + Sync + 'static) -> Self {
        self.with(|shared| shared.on_fallback = Some(Arc::new(hook)))
    }

    /// Hands every request answered with the fallback (whose parameters were read whole and
    /// carry a `CallSid` or `MessageSid`) to `sink`, for the outage inbox — e.g. an
    /// `HttpCaptureSink` (feature `capture-http`) posting to a fallback endpoint's admin API. The
    /// answer never waits for the sink. See [`CaptureSink`].
    pub fn capture(self, sink: impl CaptureSink) -> Self {
        self.with(|shared| shared.capture = Some(Arc::new(sink)))
    }
}

#[cfg(feature = "tokio")]
fn default_timer() -> Option<SharedTimer> {
    Some(SharedTimer(Arc::new(super::timer::TokioTimer)))
}

#[cfg(not(feature = "tokio"))]
fn default_timer() -> Option<SharedTimer> {
    None
}

impl<S> Layer<S> for FallbackLayer {
    type Service = Fallback<S>;

    fn layer(&self, inner: S) -> Fallback<S> {
        Fallback {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}
