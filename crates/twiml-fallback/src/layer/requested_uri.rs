//! The URI Twilio requested, wherever in a router the middleware is mounted.
//!
//! `Router::nest("/twilio", inner)` (and `nest_service`) strip the prefix from the URI the inner
//! router and its layers see: a layer inside it sees `/sms` for a request to `/twilio/sms`. axum
//! keeps the URI as received in the `OriginalUri` extension; with the `axum` feature the
//! middleware reads it from there, so a signature is checked against the URL Twilio signed and a
//! fallback reports the path Twilio requested. Outside axum the request's own URI is used.

use http::Uri;
use http::request::Parts;

/// The request's URI before any router stripped a prefix from it.
pub(crate) fn requested_uri(parts: &Parts) -> &Uri {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::OriginalUri(original)) = parts.extensions.get::<axum::extract::OriginalUri>() {
        return original;
    }
    &parts.uri
}
