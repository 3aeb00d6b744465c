//! The HTTP client for alerts, recovery, simulation and the Twilio API: reqwest over rustls.

use std::time::Duration;

use reqwest::redirect::Policy;

/// The User-Agent of every request this tool makes, except `simulate`'s (which says Twilio's).
pub(crate) const USER_AGENT: &str = concat!("twiml-fallback/", env!("CARGO_PKG_VERSION"));

/// A client following at most `redirects` redirects (0: none).
pub(crate) fn client(redirects: usize, user_agent: &str) -> Result<reqwest::Client, String> {
    // rustls with the ring provider (the reqwest feature leaves the choice to us).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let policy = if redirects == 0 {
        Policy::none()
    } else {
        Policy::limited(redirects)
    };
    reqwest::Client::builder()
        .redirect(policy)
        .user_agent(user_agent)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|error| format!("cannot build the HTTP client: {error}"))
}

/// Reads a response body, stopping once it holds more than `limit` bytes (what was read so far
/// is returned: enough to know it is too large, without reading a huge body to the end).
pub(crate) async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > limit {
            break;
        }
    }
    Ok(body)
}

/// What [`fetch_limited`] got back: the status, the Content-Type (if it is text), the other
/// headers and the body, read to just past the limit.
pub(crate) struct Fetched {
    pub(crate) status: http::StatusCode,
    pub(crate) content_type: Option<String>,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// Sends `request` and reads its answer with [`read_limited`], all of it within `deadline`
/// (`None` when the deadline passed first).
pub(crate) async fn fetch_limited(
    request: reqwest::RequestBuilder,
    limit: usize,
    deadline: Duration,
) -> Option<Result<Fetched, reqwest::Error>> {
    let fetched = async {
        let response = request.send().await?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let headers = response.headers().clone();
        let body = read_limited(response, limit).await?;
        Ok(Fetched {
            status,
            content_type,
            headers,
            body,
        })
    };
    tokio::time::timeout(deadline, fetched).await.ok()
}

/// A one-line description of an error with its underlying causes (a reqwest error, an SMTP
/// one), each cause once.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
