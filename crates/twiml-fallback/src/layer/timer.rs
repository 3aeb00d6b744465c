//! The clock behind the fallback layer's deadline, so the core does not need tokio.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A future that completes after a duration.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Something that can sleep: the fallback layer's deadline clock.
///
/// With the `tokio` feature (on by default) the layer uses [`TokioTimer`]. Another runtime plugs
/// in its own:
///
/// ```
/// use std::time::Duration;
/// use twiml_fallback::layer::{Sleep, Timer};
///
/// #[derive(Clone, Copy)]
/// struct MyRuntimeTimer;
///
/// impl Timer for MyRuntimeTimer {
///     fn sleep(&self, duration: Duration) -> Option<Sleep> {
///         // e.g. Box::pin(async_io::Timer::after(duration).map(|_| ()))
///         # let _ = duration;
///         None
///     }
/// }
/// ```
pub trait Timer: Send + Sync + 'static {
    /// A future completing after `duration`, or `None` when no clock is available right now
    /// (the request then runs without a deadline).
    fn sleep(&self, duration: Duration) -> Option<Sleep>;
}

/// tokio's timer. Outside a tokio runtime it offers no clock rather than panicking.
#[cfg(feature = "tokio")]
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioTimer;

#[cfg(feature = "tokio")]
impl Timer for TokioTimer {
    fn sleep(&self, duration: Duration) -> Option<Sleep> {
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let _guard = handle.enter();
        Some(Box::pin(tokio::time::sleep(duration)))
    }
}

/// A shareable timer with a readable `Debug`.
#[derive(Clone)]
pub(crate) struct SharedTimer(pub(crate) std::sync::Arc<dyn Timer>);

impl fmt::Debug for SharedTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Timer")
    }
}
