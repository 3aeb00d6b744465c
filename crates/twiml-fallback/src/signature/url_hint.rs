//! Why a signature does not match behind a proxy or tunnel: what a request's headers say about
//! the URL Twilio requested, set against the [`UrlPolicy`] that rebuilt the URL it was checked
//! against — and the fix, in `twiml-fallback serve`'s flags.
//!
//! Twilio signs the URL it requested: `https://abcd.ngrok-free.app/voice`. A server behind a tunnel
//! receives `POST /voice` on `127.0.0.1:8787`; checked as received, that is
//! `http://abcd.ngrok-free.app/voice` — another URL, so every request is refused. The request
//! itself says so: a `Host` unlike the address the server listens on, `X-Forwarded-Proto`,
//! `X-Forwarded-Host`. [`UrlPolicy::mismatch_hint`] reads those facts and names the fix.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::HOST;

use super::public_url::{Source, UrlPolicy, first_value, host_header};
use crate::url;

/// What a request's headers suggest about a signature that did not match: the URL Twilio
/// probably requested, and how to make the server check that one. Its text (see
/// [`UrlHint::as_str`]) names `twiml-fallback serve`'s flags (`--public-url`,
/// `--trust-forwarded-headers`); with the library, they are [`UrlPolicy::public_base`] and
/// [`UrlPolicy::trust_forwarded_headers`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlHint {
    public_url: Option<String>,
    text: String,
}

impl UrlHint {
    /// The public base URL the headers point at (`https://abcd.ngrok-free.app`), when they name
    /// one: the value for `--public-url`.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    /// The hint, one sentence for a log line.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for UrlHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The request facts the hint is built from.
struct Facts<'a> {
    /// `X-Forwarded-Proto`, when it says `http` or `https` (lowercased).
    proto: Option<&'static str>,
    /// `X-Forwarded-Host`, when it is a plausible host.
    forwarded_host: Option<&'a str>,
    /// `Host`, when it is a plausible host.
    host: Option<&'a str>,
    /// Whether `Host` names the address the server listens on (or is absent, or the address is
    /// not known).
    host_is_listen_address: bool,
}

impl<'a> Facts<'a> {
    fn of(headers: &'a HeaderMap, listen: Option<SocketAddr>) -> Self {
        let proto = match first_value(headers, "x-forwarded-proto") {
            Ok(Some(proto)) if proto.eq_ignore_ascii_case("https") => Some("https"),
            Ok(Some(proto)) if proto.eq_ignore_ascii_case("http") => Some("http"),
            _ => None,
        };
        let forwarded_host = host_header(headers, "x-forwarded-host").ok().flatten();
        let host = host_header(headers, HOST.as_str()).ok().flatten();
        let host_is_listen_address = match (host, listen) {
            (Some(host), Some(listen)) => names_address(host, listen),
            _ => true,
        };
        Facts {
            proto,
            forwarded_host,
            host,
            host_is_listen_address,
        }
    }

    /// The public host the request was sent to, as far as its headers tell.
    fn public_host(&self) -> Option<&'a str> {
        self.forwarded_host
            .or(self.host.filter(|_| !self.host_is_listen_address))
    }

    /// Whether anything says a proxy or tunnel stands between Twilio and the server.
    fn through_proxy(&self) -> bool {
        self.proto.is_some() || self.forwarded_host.is_some() || !self.host_is_listen_address
    }

    /// `Host: …, X-Forwarded-Proto: …, X-Forwarded-Host: …`, for the headers present.
    fn describe(&self) -> String {
        [
            ("Host", self.host),
            ("X-Forwarded-Proto", self.proto),
            ("X-Forwarded-Host", self.forwarded_host),
        ]
        .iter()
        .filter_map(|(name, value)| value.map(|value| format!("{name}: {}", clip(value))))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// At most 100 characters of a header value (they reach log lines).
fn clip(value: &str) -> String {
    match value.char_indices().nth(100) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_owned(),
    }
}

/// Whether a `Host` header (`host[:port]`) names `listen`: the same port (80 when none is given)
/// and the same IP, `localhost` for a loopback address, or any host when the server listens on
/// every address (`0.0.0.0`, `[::]`).
fn names_address(host: &str, listen: SocketAddr) -> bool {
    let Some((name, port)) = url::host_and_port(host) else {
        return false;
    };
    let port = match port {
        None => Some(80),
        Some(port) => port.parse::<u16>().ok(),
    };
    if port != Some(listen.port()) {
        return false;
    }
    let ip = listen.ip();
    if ip.is_unspecified() {
        return true;
    }
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(named) => named == ip,
        Err(_) => bare.eq_ignore_ascii_case("localhost") && ip.is_loopback(),
    }
}

/// `scheme://host` of a public base URL, and the path after it.
fn base_origin_and_path(base: &str) -> (&str, &str, &str) {
    match url::split(base) {
        Some(parts) => (parts.scheme(), parts.authority(), parts.path()),
        None => ("https", "", ""),
    }
}

impl UrlPolicy {
    /// For a request whose signature did not match, what its headers say about the URL Twilio
    /// requested, when that is not the URL this policy rebuilt; `None` when they say nothing more
    /// (then the token, or a path a proxy rewrote, is the likelier cause).
    ///
    /// The facts: `X-Forwarded-Proto` and `X-Forwarded-Host` (first values), and a `Host` unlike
    /// `listen`, the address the server listens on (pass `None` when it is not known: then only
    /// the forwarded headers count). The rules:
    ///
    /// | policy | facts | hint |
    /// |---|---|---|
    /// | as received | a proxy's headers, or a `Host` unlike `listen` | `--public-url <scheme>://<host>` (the scheme from `X-Forwarded-Proto`, else `https`), and `--trust-forwarded-headers` when `X-Forwarded-Proto` is there |
    /// | as received | only `X-Forwarded-Proto`, `Host` = `listen` | `--public-url` with the URL Twilio calls: the headers don't name the host |
    /// | public base | a public host (or scheme) other than the base's | `--public-url` with that host, keeping the base's path |
    /// | forwarded headers | a public host but no `X-Forwarded-Proto` | the scheme was taken as `http`: make the proxy send it, or `--public-url https://<host>` |
    /// | forwarded headers | `X-Forwarded-Proto` but neither `X-Forwarded-Host` nor a public `Host` | make the proxy pass the host, or `--public-url` |
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use twiml_fallback::signature::UrlPolicy;
    ///
    /// // What ngrok forwards to `serve` on 127.0.0.1:8787.
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("host", "abcd.ngrok-free.app".parse().unwrap());
    /// headers.insert("x-forwarded-proto", "https".parse().unwrap());
    /// let listen: SocketAddr = "127.0.0.1:8787".parse().unwrap();
    ///
    /// let hint = UrlPolicy::as_received().mismatch_hint(&headers, Some(listen)).unwrap();
    /// assert_eq!(hint.public_url(), Some("https://abcd.ngrok-free.app"));
    /// assert!(hint.as_str().contains("--public-url https://abcd.ngrok-free.app"));
    /// assert!(hint.as_str().contains("--trust-forwarded-headers"));
    ///
    /// // Checked against that public URL already: nothing to add.
    /// let public = UrlPolicy::public_base("https://abcd.ngrok-free.app").unwrap();
    /// assert_eq!(public.mismatch_hint(&headers, Some(listen)), None);
    /// ```
    pub fn mismatch_hint(&self, headers: &HeaderMap, listen: Option<SocketAddr>) -> Option<UrlHint> {
        let facts = Facts::of(headers, listen);
        if !facts.through_proxy() {
            return None;
        }
        let seen = facts.describe();
        match &self.source {
            Source::AsReceived => {
                let Some(host) = facts.public_host() else {
                    return Some(UrlHint {
                        public_url: None,
                        text: format!(
                            "this request came through a proxy ({seen}) that passes on neither the public Host nor \
                             X-Forwarded-Host, so the signature was checked against the server's own address: start \
                             serve with --public-url set to the URL Twilio calls (e.g. --public-url \
                             https://fallback.example.com)"
                        ),
                    });
                };
                let scheme = facts.proto.unwrap_or("https");
                if facts.proto == Some(self.scheme) && facts.host == Some(host) {
                    // The URL as received is the public one already.
                    return None;
                }
                let public_url = format!("{scheme}://{}", clip(host));
                let also = if facts.proto.is_some() {
                    " (or --trust-forwarded-headers, when only your proxy can reach serve)"
                } else {
                    " (http:// if that is what Twilio calls)"
                };
                Some(UrlHint {
                    text: format!(
                        "this request came through a proxy or tunnel ({seen}), but its signature was checked \
                         against the URL as received: start serve with --public-url {public_url}{also}"
                    ),
                    public_url: Some(public_url),
                })
            }
            Source::PublicBase(base) => {
                let host = facts.public_host()?;
                let (base_scheme, base_host, base_path) = base_origin_and_path(base);
                let same_host = host.eq_ignore_ascii_case(base_host);
                let same_scheme = facts.proto.is_none_or(|proto| proto.eq_ignore_ascii_case(base_scheme));
                if same_host && same_scheme {
                    return None;
                }
                let scheme = facts.proto.unwrap_or(base_scheme);
                let public_url = format!("{scheme}://{}{base_path}", clip(host));
                Some(UrlHint {
                    text: format!(
                        "--public-url is {base}, but this request came for {scheme}://{} ({seen}): if that is the \
                         URL Twilio calls, start serve with --public-url {public_url}",
                        clip(host)
                    ),
                    public_url: Some(public_url),
                })
            }
            Source::Forwarded => match (facts.proto, facts.public_host()) {
                (None, Some(host)) => {
                    let public_url = format!("https://{}", clip(host));
                    Some(UrlHint {
                        text: format!(
                            "--trust-forwarded-headers is on, but this request has no X-Forwarded-Proto ({seen}), so \
                             the signature was checked against {}://{}: make the proxy send X-Forwarded-Proto, or \
                             start serve with --public-url {public_url} instead",
                            self.scheme,
                            clip(host)
                        ),
                        public_url: Some(public_url),
                    })
                }
                (Some(_), None) => Some(UrlHint {
                    public_url: None,
                    text: format!(
                        "--trust-forwarded-headers is on, but this request names no public host ({seen}): make the \
                         proxy send X-Forwarded-Host (or pass the Host header on), or start serve with --public-url \
                         set to the URL Twilio calls"
                    ),
                }),
                _ => None,
            },
        }
    }
}

impl fmt::Display for UrlPolicy {
    /// The URL signatures are checked against, `<path>` standing for the request's path and
    /// query: `https://fallback.example.com/twilio<path>`, `http://<Host><path> (as received)`,
    /// `<X-Forwarded-Proto>://<X-Forwarded-Host><path> (trusted forwarded headers)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::AsReceived => write!(f, "{}://<Host><path> (as received)", self.scheme),
            Source::PublicBase(base) => write!(f, "{base}<path>"),
            Source::Forwarded => {
                f.write_str("<X-Forwarded-Proto>://<X-Forwarded-Host><path> (trusted forwarded headers)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().expect("header value"));
        }
        headers
    }

    fn listen(addr: &str) -> Option<SocketAddr> {
        Some(addr.parse().expect("socket address"))
    }

    const NGROK: [(&str, &str); 2] = [("host", "abcd.ngrok-free.app"), ("x-forwarded-proto", "https")];

    #[test]
    fn a_tunnel_checked_as_received_names_the_public_url_and_both_flags() {
        let hint = UrlPolicy::as_received()
            .mismatch_hint(&headers(&NGROK), listen("127.0.0.1:8787"))
            .expect("a hint");
        assert_eq!(hint.public_url(), Some("https://abcd.ngrok-free.app"));
        assert_eq!(
            hint.as_str(),
            "this request came through a proxy or tunnel (Host: abcd.ngrok-free.app, X-Forwarded-Proto: https), \
             but its signature was checked against the URL as received: start serve with --public-url \
             https://abcd.ngrok-free.app (or --trust-forwarded-headers, when only your proxy can reach serve)"
        );
    }

    #[test]
    fn the_forwarded_host_wins_over_the_host_header() {
        let hint = UrlPolicy::as_received()
            .mismatch_hint(
                &headers(&[
                    ("host", "10.0.0.5:8787"),
                    ("x-forwarded-host", "fallback.example.com"),
                    ("x-forwarded-proto", "https"),
                ]),
                listen("0.0.0.0:8787"),
            )
            .expect("a hint");
        assert_eq!(hint.public_url(), Some("https://fallback.example.com"));
    }

    #[test]
    fn a_host_unlike_the_listen_address_alone_suggests_https_and_no_forwarding() {
        let hint = UrlPolicy::as_received()
            .mismatch_hint(&headers(&[("host", "xyz.trycloudflare.com")]), listen("127.0.0.1:8787"))
            .expect("a hint");
        assert_eq!(hint.public_url(), Some("https://xyz.trycloudflare.com"));
        assert!(!hint.as_str().contains("--trust-forwarded-headers"), "{hint}");
        assert!(hint.as_str().contains("http:// if that is what Twilio calls"), "{hint}");
    }

    #[test]
    fn a_direct_request_gets_no_hint() {
        let policy = UrlPolicy::as_received();
        for (host, addr) in [
            ("127.0.0.1:8787", "127.0.0.1:8787"),
            ("localhost:8787", "127.0.0.1:8787"),
            ("[::1]:8787", "[::1]:8787"),
            ("my-server.lan:8080", "0.0.0.0:8080"),
            ("10.0.0.5", "10.0.0.5:80"),
        ] {
            assert_eq!(
                policy.mismatch_hint(&headers(&[("host", host)]), listen(addr)),
                None,
                "{host} on {addr}"
            );
        }
        assert_eq!(
            policy.mismatch_hint(&headers(&[("host", "abcd.ngrok-free.app")]), None),
            None,
            "without the listen address, the Host header proves nothing"
        );
        for (host, addr) in [
            ("127.0.0.1:9999", "127.0.0.1:8787"),
            ("example.com", "127.0.0.1:80"),
            ("localhost:8787", "10.0.0.5:8787"),
        ] {
            assert!(
                policy
                    .mismatch_hint(&headers(&[("host", host)]), listen(addr))
                    .is_some(),
                "{host} on {addr}"
            );
        }
    }

    #[test]
    fn a_proxy_that_names_no_host_asks_for_the_public_url() {
        let hint = UrlPolicy::as_received()
            .mismatch_hint(
                &headers(&[("host", "127.0.0.1:8787"), ("x-forwarded-proto", "https")]),
                listen("127.0.0.1:8787"),
            )
            .expect("a hint");
        assert_eq!(hint.public_url(), None);
        assert!(
            hint.as_str().contains("--public-url set to the URL Twilio calls"),
            "{hint}"
        );
    }

    #[test]
    fn a_public_url_that_agrees_with_the_proxy_gets_no_hint_and_one_that_differs_does() {
        let listen = listen("127.0.0.1:8787");
        let right = UrlPolicy::public_base("https://ABCD.ngrok-free.app/").expect("base");
        assert_eq!(right.mismatch_hint(&headers(&NGROK), listen), None);
        let stale = UrlPolicy::public_base("https://old.ngrok-free.app/twilio").expect("base");
        let hint = stale.mismatch_hint(&headers(&NGROK), listen).expect("a hint");
        assert_eq!(hint.public_url(), Some("https://abcd.ngrok-free.app/twilio"));
        assert!(
            hint.as_str()
                .starts_with("--public-url is https://old.ngrok-free.app/twilio, but this request came for https://abcd.ngrok-free.app"),
            "{hint}"
        );
        let http_base = UrlPolicy::public_base("http://abcd.ngrok-free.app").expect("base");
        assert_eq!(
            http_base
                .mismatch_hint(&headers(&NGROK), listen)
                .and_then(|hint| hint.public_url().map(str::to_owned))
                .as_deref(),
            Some("https://abcd.ngrok-free.app"),
            "the proxy says https"
        );
        assert_eq!(
            http_base.mismatch_hint(&headers(&[("host", "abcd.ngrok-free.app")]), listen),
            None,
            "without X-Forwarded-Proto the scheme is not contradicted"
        );
    }

    #[test]
    fn trusted_forwarding_without_the_scheme_or_the_host_says_which_is_missing() {
        let policy = UrlPolicy::trust_forwarded_headers();
        let listen = listen("127.0.0.1:8787");
        assert_eq!(policy.mismatch_hint(&headers(&NGROK), listen), None);
        let no_proto = policy
            .mismatch_hint(&headers(&[("host", "abcd.ngrok-free.app")]), listen)
            .expect("a hint");
        assert_eq!(no_proto.public_url(), Some("https://abcd.ngrok-free.app"));
        assert!(no_proto.as_str().contains("no X-Forwarded-Proto"), "{no_proto}");
        let no_host = policy
            .mismatch_hint(
                &headers(&[("host", "127.0.0.1:8787"), ("x-forwarded-proto", "https")]),
                listen,
            )
            .expect("a hint");
        assert!(no_host.as_str().contains("names no public host"), "{no_host}");
    }

    #[test]
    fn header_values_reach_the_hint_only_when_plausible_and_clipped() {
        let long = format!("{}.example", "a".repeat(300));
        let hint = UrlPolicy::as_received()
            .mismatch_hint(
                &headers(&[("host", &long), ("x-forwarded-proto", "https")]),
                listen("127.0.0.1:8787"),
            )
            .expect("a hint");
        assert!(hint.as_str().len() < 600, "{hint}");
        let odd = UrlPolicy::as_received().mismatch_hint(
            &headers(&[
                ("host", "127.0.0.1:8787"),
                ("x-forwarded-host", "evil\"quote"),
                ("x-forwarded-proto", "gopher"),
            ]),
            listen("127.0.0.1:8787"),
        );
        assert_eq!(odd, None, "implausible forwarded values are not facts");
    }

    #[test]
    fn the_policy_says_which_url_signatures_are_checked_against() {
        assert_eq!(
            UrlPolicy::as_received().to_string(),
            "http://<Host><path> (as received)"
        );
        assert_eq!(
            UrlPolicy::public_base("https://f.example.com/twilio/")
                .expect("base")
                .to_string(),
            "https://f.example.com/twilio<path>"
        );
        assert!(
            UrlPolicy::trust_forwarded_headers()
                .to_string()
                .starts_with("<X-Forwarded-Proto>://")
        );
    }
}
