//! Logging to standard error through `tracing`, as text or JSON lines.

use std::time::{SystemTime, UNIX_EPOCH};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

use crate::cli::LogFormat;

/// Installs the subscriber: `info` and above by default, `RUST_LOG` to change it.
pub(crate) fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_timer(CoreTime);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
}

/// The time as the core writes it in its records (`2026-12-01T08:16:25.649Z`), so every line of
/// `serve`'s log starts with the same kind of timestamp.
struct CoreTime;

impl FormatTime for CoreTime {
    fn format_time(&self, writer: &mut Writer<'_>) -> std::fmt::Result {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
        writer.write_str(&twiml_fallback::edge::rfc3339(now_ms))
    }
}
