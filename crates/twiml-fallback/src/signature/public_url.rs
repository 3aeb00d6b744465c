//! Rebuilding the URL Twilio signed from the request a server received.

use std::fmt;

use http::HeaderMap;
use http::header::HOST;

use crate::url;

/// How to turn the request a server received into the URL Twilio requested (and signed).
///
/// - [`UrlPolicy::as_received`]: the request's own absolute URI (as in a Cloudflare Worker), or
///   `scheme://Host` + path and query, with the scheme the server listens on.
/// - [`UrlPolicy::public_base`]: a configured public base URL (`https://fallback.example.com`,
///   optionally with a path prefix the proxy strips) + the path and query received. Use this behind a
///   reverse proxy or tunnel.
/// - [`UrlPolicy::trust_forwarded_headers`]: scheme and host from `X-Forwarded-Proto` and
///   `X-Forwarded-Host` (first value of each). Only safe when a proxy you control sets them: a client
///   can send them too.
///
/// ```
/// use twiml_fallback::signature::UrlPolicy;
///
/// let request = http::Request::post("/voice?x=1")
///     .header("host", "10.0.0.5:8787")
///     .header("x-forwarded-proto", "https")
///     .header("x-forwarded-host", "fallback.example.com")
///     .body(())
///     .unwrap();
/// let (parts, ()) = request.into_parts();
///
/// assert_eq!(UrlPolicy::as_received().signed_url(&parts).unwrap(), "http://10.0.0.5:8787/voice?x=1");
/// assert_eq!(
///     UrlPolicy::public_base("https://fallback.example.com/twilio").unwrap().signed_url(&parts).unwrap(),
///     "https://fallback.example.com/twilio/voice?x=1"
/// );
/// assert_eq!(
///     UrlPolicy::trust_forwarded_headers().signed_url(&parts).unwrap(),
///     "https://fallback.example.com/voice?x=1"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlPolicy {
    pub(super) source: Source,
    pub(super) scheme: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Source {
    AsReceived,
    PublicBase(String),
    Forwarded,
}

/// The signed URL could not be rebuilt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlPolicyError {
    /// The public base URL is not an absolute `http(s)://host[:port][/prefix]` URL.
    InvalidBase(String),
    /// The request has neither an absolute URI nor a usable `Host` header.
    MissingHost,
    /// A header needed to rebuild the URL is not valid (non-ASCII, or not a host / scheme).
    InvalidHeader(&'static str),
}

impl fmt::Display for UrlPolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlPolicyError::InvalidBase(base) => write!(
                f,
                "public URL {base:?} must be an absolute http(s) URL without query or fragment, e.g. https://fallback.example.com"
            ),
            UrlPolicyError::MissingHost => f.write_str("the request has no Host header to rebuild the signed URL from"),
            UrlPolicyError::InvalidHeader(name) => write!(f, "the request's {name} header is not valid"),
        }
    }
}

impl std::error::Error for UrlPolicyError {}

impl Default for UrlPolicy {
    fn default() -> Self {
        Self::as_received()
    }
}

impl UrlPolicy {
    /// Use the URL as the server received it (scheme `http` unless the URI says otherwise; see
    /// [`UrlPolicy::scheme`]).
    pub fn as_received() -> Self {
        Self {
            source: Source::AsReceived,
            scheme: "http",
        }
    }

    /// Use `base` (e.g. `https://fallback.example.com` or `https://example.com/twilio`) in place of
    /// the scheme and host the server saw; its path, if any, is prefixed to the received path.
    pub fn public_base(base: &str) -> Result<Self, UrlPolicyError> {
        let invalid = || UrlPolicyError::InvalidBase(base.chars().take(200).collect());
        if !url::is_absolute_http_url(base) || url::query(base).is_some() || url::fragment(base).is_some() {
            return Err(invalid());
        }
        Ok(Self {
            source: Source::PublicBase(base.trim_end_matches('/').to_owned()),
            scheme: "https",
        })
    }

    /// Take the scheme and host from `X-Forwarded-Proto` and `X-Forwarded-Host` (falling back to
    /// the server's scheme and the `Host` header when absent).
    pub fn trust_forwarded_headers() -> Self {
        Self {
            source: Source::Forwarded,
            scheme: "http",
        }
    }

    /// The scheme the server itself is reached with (`"http"` or `"https"`), used when the request
    /// URI and headers don't say. Ignored by [`UrlPolicy::public_base`].
    pub fn scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme.as_str();
        self
    }

    /// The URL Twilio signed for a request with these parts.
    pub fn signed_url(&self, parts: &http::request::Parts) -> Result<String, UrlPolicyError> {
        self.signed_url_for(&parts.uri, &parts.headers)
    }

    /// The URL to verify a request's signature against: [`UrlPolicy::signed_url`], or, when it
    /// cannot be rebuilt (no usable `Host`, a bad forwarding header), the request target as
    /// received — no signature matches that, so the request is refused and its log names it.
    ///
    /// ```
    /// use twiml_fallback::signature::UrlPolicy;
    ///
    /// let (parts, ()) = http::Request::post("/voice").body(()).unwrap().into_parts();
    /// assert_eq!(UrlPolicy::as_received().url_to_verify(&parts), "/voice");
    /// ```
    pub fn url_to_verify(&self, parts: &http::request::Parts) -> String {
        self.signed_url(parts).unwrap_or_else(|_| parts.uri.to_string())
    }

    /// The URL Twilio signed for a request with this URI and headers.
    pub fn signed_url_for(&self, uri: &http::Uri, headers: &HeaderMap) -> Result<String, UrlPolicyError> {
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        match &self.source {
            Source::PublicBase(base) => Ok(join(base, path_and_query)),
            Source::AsReceived => {
                if let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) {
                    return Ok(format!("{scheme}://{authority}{path_and_query}"));
                }
                let host = host_header(headers, HOST.as_str())?.ok_or(UrlPolicyError::MissingHost)?;
                Ok(format!("{}://{host}{path_and_query}", self.scheme))
            }
            Source::Forwarded => {
                let scheme = match first_value(headers, "x-forwarded-proto")? {
                    Some(proto) if proto.eq_ignore_ascii_case("https") => "https",
                    Some(proto) if proto.eq_ignore_ascii_case("http") => "http",
                    Some(_) => return Err(UrlPolicyError::InvalidHeader("X-Forwarded-Proto")),
                    None => uri
                        .scheme_str()
                        .map_or(self.scheme, |s| if s == "https" { "https" } else { "http" }),
                };
                let host = match host_header(headers, "x-forwarded-host")? {
                    Some(host) => host,
                    None => match uri.authority() {
                        Some(authority) => authority.as_str(),
                        None => host_header(headers, HOST.as_str())?.ok_or(UrlPolicyError::MissingHost)?,
                    },
                };
                Ok(format!("{scheme}://{host}{path_and_query}"))
            }
        }
    }
}

/// The scheme a server is reached with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `http`
    Http,
    /// `https`
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

fn join(base: &str, path_and_query: &str) -> String {
    let mut url = String::with_capacity(base.len() + path_and_query.len());
    url.push_str(base);
    if !path_and_query.starts_with('/') {
        url.push('/');
    }
    url.push_str(path_and_query);
    url
}

/// The first comma-separated value of a header, trimmed.
pub(super) fn first_value<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, UrlPolicyError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| UrlPolicyError::InvalidHeader(display_name(name)))?;
    let first = value.split(',').next().unwrap_or("").trim();
    Ok((!first.is_empty()).then_some(first))
}

/// A host header's first value, checked to be a plausible `host[:port]`.
pub(super) fn host_header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, UrlPolicyError> {
    let Some(host) = first_value(headers, name)? else {
        return Ok(None);
    };
    let plausible = host.bytes().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']' | b'@' | b'%' | b'~')
    });
    if plausible {
        Ok(Some(host))
    } else {
        Err(UrlPolicyError::InvalidHeader(display_name(name)))
    }
}

fn display_name(name: &'static str) -> &'static str {
    match name {
        "host" => "Host",
        "x-forwarded-host" => "X-Forwarded-Host",
        "x-forwarded-proto" => "X-Forwarded-Proto",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut builder = http::Request::get(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        match builder.body(()) {
            Ok(request) => request.into_parts().0,
            Err(error) => panic!("test request: {error}"),
        }
    }

    #[test]
    fn absolute_request_uri_is_used_as_is() {
        let parts = parts(
            "https://edge.example.workers.dev:443/f?ErrorCode=1",
            &[("host", "ignored")],
        );
        assert_eq!(
            UrlPolicy::as_received().signed_url(&parts),
            Ok("https://edge.example.workers.dev:443/f?ErrorCode=1".into())
        );
    }

    #[test]
    fn origin_form_uses_the_host_header_and_server_scheme() {
        let parts = parts("/sms?a=%27b%27", &[("host", "example.com")]);
        assert_eq!(
            UrlPolicy::as_received().signed_url(&parts),
            Ok("http://example.com/sms?a=%27b%27".into())
        );
        assert_eq!(
            UrlPolicy::as_received().scheme(Scheme::Https).signed_url(&parts),
            Ok("https://example.com/sms?a=%27b%27".into())
        );
    }

    #[test]
    fn missing_or_bad_host_is_an_error_not_a_guess() {
        assert_eq!(
            UrlPolicy::as_received().signed_url(&parts("/x", &[])),
            Err(UrlPolicyError::MissingHost)
        );
        assert_eq!(
            UrlPolicy::as_received().signed_url(&parts("/x", &[("host", "evil.com/path")])),
            Err(UrlPolicyError::InvalidHeader("Host"))
        );
    }

    #[test]
    fn forwarded_headers_are_ignored_unless_trusted() {
        let parts = parts(
            "/voice",
            &[
                ("host", "internal:8787"),
                ("x-forwarded-proto", "https, http"),
                ("x-forwarded-host", "pub.example, x"),
            ],
        );
        assert_eq!(
            UrlPolicy::as_received().signed_url(&parts),
            Ok("http://internal:8787/voice".into())
        );
        assert_eq!(
            UrlPolicy::trust_forwarded_headers().signed_url(&parts),
            Ok("https://pub.example/voice".into())
        );
    }

    #[test]
    fn trusted_forwarding_falls_back_to_host_and_rejects_odd_protocols() {
        let plain = parts("/v", &[("host", "h.example")]);
        assert_eq!(
            UrlPolicy::trust_forwarded_headers().signed_url(&plain),
            Ok("http://h.example/v".into())
        );
        let odd = parts("/v", &[("host", "h.example"), ("x-forwarded-proto", "gopher")]);
        assert_eq!(
            UrlPolicy::trust_forwarded_headers().signed_url(&odd),
            Err(UrlPolicyError::InvalidHeader("X-Forwarded-Proto"))
        );
    }

    #[test]
    fn public_base_replaces_scheme_and_host_and_keeps_a_prefix() {
        let parts = parts("/voice?CallSid=CA1", &[("host", "127.0.0.1:8787")]);
        for (base, expected) in [
            ("https://f.example.com", "https://f.example.com/voice?CallSid=CA1"),
            ("https://f.example.com/", "https://f.example.com/voice?CallSid=CA1"),
            (
                "https://f.example.com:8443/tw",
                "https://f.example.com:8443/tw/voice?CallSid=CA1",
            ),
        ] {
            let policy = UrlPolicy::public_base(base).expect("valid base");
            assert_eq!(policy.signed_url(&parts).as_deref(), Ok(expected));
        }
    }

    #[test]
    fn public_base_must_be_an_absolute_http_url() {
        for base in [
            "f.example.com",
            "ftp://f.example.com",
            "https://",
            "https://h/x?y",
            "https://h/#f",
            "https://h /",
        ] {
            assert!(UrlPolicy::public_base(base).is_err(), "{base} accepted");
        }
    }
}
