//! Taking URLs apart: the one set of rules by which the crate splits every URL.
//!
//! [`split`] reads an absolute URL with an authority —
//! `scheme://[userinfo@]host[:port][path][?query][#fragment]` — into [`Parts`], checking only
//! the shape of host and port. The free functions [`scheme`], [`authority`], [`path`],
//! [`query`], [`fragment`], [`without_fragment`] and [`without_query_and_fragment`] read the
//! same pieces from any URL or reference, absolute or not (`/voice?x=1`, `next`,
//! `//cdn.example.com/a.mp3`), and never fail.
//! [`is_absolute_http_url`] is the rule for every URL the configuration and the CLI accept.
//!
//! The rules are RFC 3986's (its Appendix B), plus one from browsers:
//!
//! - a scheme is a letter, then letters, digits, `+`, `-` or `.`, ended by `:`; it is kept as
//!   written (`HTTP` stays `HTTP`) and compared without case;
//! - the authority follows `//` and ends at the first `/`, `?`, `#` or `\` — a backslash too,
//!   because browsers and `fetch` read `https://a.example\@b.example/` as a URL of `a.example`;
//! - user info is everything in the authority before its last `@`;
//! - the host is a `[…]` IPv6 literal (brackets kept), or everything up to the port's `:` — a
//!   second `:` outside brackets makes it no URL; the port is ASCII digits, possibly none
//!   (`https://h:/`);
//! - the fragment starts at the first `#`, the query at the first `?` before it.
//!
//! Nothing is decoded, lowercased, normalised or re-encoded, and nothing is allocated: every
//! piece borrows from the URL. The signature check relies on both: it splits the URL Twilio
//! signed on every request, and a URL library would lowercase the host, percent-encode `'` in
//! the query or drop `:443` — each of which changes the bytes Twilio signed.
//!
//! # Example
//!
//! ```
//! use twiml_fallback::url;
//!
//! // An absolute URL, piece by piece.
//! let parts = url::split("https://user:pw@[2001:db8::1]:8443/voice?CallSid=CA1#rt=2000").unwrap();
//! assert_eq!(parts.scheme(), "https");
//! assert_eq!(parts.userinfo(), Some("user:pw"));
//! assert_eq!(parts.host(), "[2001:db8::1]");
//! assert_eq!(parts.port(), Some("8443"));
//! assert_eq!(parts.port_number(), Some(8443));
//! assert_eq!(parts.origin(), "https://user:pw@[2001:db8::1]:8443");
//! assert_eq!(parts.path(), "/voice");
//! assert_eq!(parts.query(), Some("CallSid=CA1"));
//! assert_eq!(parts.fragment(), Some("rt=2000"));
//!
//! // The same pieces from a request target (origin-form) or any other reference.
//! assert_eq!(url::path("/voice?CallSid=CA1#x"), "/voice");
//! assert_eq!(url::query("/voice?CallSid=CA1#x"), Some("CallSid=CA1"));
//! assert_eq!(url::without_fragment("https://app.example.com/v#tt=5000"), "https://app.example.com/v");
//!
//! // The rule for configured URLs.
//! assert!(url::is_absolute_http_url("https://app.example.com/voice"));
//! assert!(!url::is_absolute_http_url("ftp://files.example.com/"));
//! ```

/// An absolute URL with an authority, split by [`split`]. Every piece borrows from the URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts<'a> {
    url: &'a str,
    /// The `:` that ends the scheme (`//` follows it).
    scheme_end: usize,
    /// Where the host starts: after any `userinfo@`.
    host_start: usize,
    /// Where the host ends: the port's `:`, or the end of the authority.
    host_end: usize,
    /// Where the authority ends: the path, query or fragment starts there, or the URL ends.
    authority_end: usize,
}

/// Splits an absolute URL with an authority (`scheme://…`); `None` when `url` is not one, when
/// an IPv6 literal is not closed (or something other than a port follows it), when a port is not
/// digits, or when a host outside brackets holds a `:`.
///
/// The host may be empty (`https:///path`) and the port out of range (`:99999`): callers that
/// need a host or a port number check [`Parts::host`] and [`Parts::port_number`].
///
/// ```
/// let parts = twiml_fallback::url::split("HTTP://App.Example.com:8080?x=1").unwrap();
/// assert_eq!((parts.scheme(), parts.host(), parts.port()), ("HTTP", "App.Example.com", Some("8080")));
/// assert_eq!((parts.path(), parts.query()), ("", Some("x=1")));
///
/// assert!(twiml_fallback::url::split("/voice").is_none());
/// assert!(twiml_fallback::url::split("https://[::1/voice").is_none());
/// ```
pub fn split(url: &str) -> Option<Parts<'_>> {
    let scheme_end = scheme_end(url)?;
    if !url[scheme_end + 1..].starts_with("//") {
        return None;
    }
    let authority_start = scheme_end + 3;
    let authority_end = authority_end(url, authority_start);
    let host_start = url[authority_start..authority_end]
        .rfind('@')
        .map_or(authority_start, |at| authority_start + at + 1);
    let (host, _) = host_and_port(&url[host_start..authority_end])?;
    Some(Parts {
        url,
        scheme_end,
        host_start,
        host_end: host_start + host.len(),
        authority_end,
    })
}

impl<'a> Parts<'a> {
    /// The whole URL.
    pub fn as_str(&self) -> &'a str {
        self.url
    }

    /// The scheme as written: `https`, `HTTP`.
    pub fn scheme(&self) -> &'a str {
        &self.url[..self.scheme_end]
    }

    /// Whether the scheme is `http` or `https`, in any case.
    pub fn is_http(&self) -> bool {
        let scheme = self.scheme();
        scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")
    }

    /// The scheme's default port: 443 for `https` and `wss`, 80 for `http` and `ws` (in any case);
    /// `None` for other schemes.
    pub fn default_port(&self) -> Option<u16> {
        let scheme = self.scheme();
        if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
            Some(443)
        } else if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws") {
            Some(80)
        } else {
            None
        }
    }

    /// The authority: `user:pw@host:port`, everything between `//` and the path.
    pub fn authority(&self) -> &'a str {
        &self.url[self.scheme_end + 3..self.authority_end]
    }

    /// The user info without its `@` (`user:pw`), when the authority has an `@`.
    pub fn userinfo(&self) -> Option<&'a str> {
        let authority_start = self.scheme_end + 3;
        (self.host_start > authority_start).then(|| &self.url[authority_start..self.host_start - 1])
    }

    /// The host as written: `App.Example.com`, `10.0.0.5`, `[2001:db8::1]` (brackets kept); empty
    /// in `https:///path`.
    pub fn host(&self) -> &'a str {
        &self.url[self.host_start..self.host_end]
    }

    /// The port's digits without the `:` (`Some("")` for `https://h:/`), when there is a port.
    pub fn port(&self) -> Option<&'a str> {
        (self.host_end < self.authority_end).then(|| &self.url[self.host_end + 1..self.authority_end])
    }

    /// The port as a number, when there is one and it is 0 to 65535 (not empty, not `:99999`).
    pub fn port_number(&self) -> Option<u16> {
        self.port()?.parse().ok()
    }

    /// `scheme://authority` exactly as written, user info included: everything before the path.
    pub fn origin(&self) -> &'a str {
        &self.url[..self.authority_end]
    }

    /// The origin as a browser compares it: the scheme and host in lower case, the port only
    /// when it is not the scheme's default, no user info — `https://app.example.com`,
    /// `http://127.0.0.1:8080`. The key an incident is filed under.
    pub fn site_origin(&self) -> String {
        let scheme = self.scheme().to_ascii_lowercase();
        let host = self.host().to_ascii_lowercase();
        match self.port_number() {
            Some(port) if Some(port) != self.default_port() => format!("{scheme}://{host}:{port}"),
            _ => format!("{scheme}://{host}"),
        }
    }

    /// `scheme://host[:port]` as written, without user info: what may be shown of a URL whose
    /// path or credentials are secret.
    pub fn origin_without_userinfo(&self) -> String {
        format!("{}://{}", self.scheme(), &self.url[self.host_start..self.authority_end])
    }

    /// [`Parts::origin`] without the port and its `:` (the same when there is no port).
    pub fn origin_without_port(&self) -> &'a str {
        &self.url[..self.host_end]
    }

    /// Everything after the authority, as written: path, query and fragment (`/p?q#f`, or empty).
    pub fn after_authority(&self) -> &'a str {
        &self.url[self.authority_end..]
    }

    /// The path, without query or fragment: `/voice`, or empty (`https://h?x`).
    pub fn path(&self) -> &'a str {
        let rest = self.after_authority();
        &rest[..rest.find(['?', '#']).unwrap_or(rest.len())]
    }

    /// The query without its `?` and without the fragment, when there is a `?` before any `#`.
    pub fn query(&self) -> Option<&'a str> {
        query(self.url)
    }

    /// The fragment without its `#`, when there is one.
    pub fn fragment(&self) -> Option<&'a str> {
        fragment(self.url)
    }
}

/// The scheme of an absolute URL or URI (`https`, `tel`, `urn`), as written; `None` for a
/// relative reference (`/voice`, `next?x=a:b`, `//cdn.example.com/a.mp3`).
///
/// ```
/// use twiml_fallback::url::scheme;
///
/// assert_eq!(scheme("HTTPS://a.example"), Some("HTTPS"));
/// assert_eq!(scheme("tel:+14155550199"), Some("tel"));
/// assert_eq!(scheme("sounds/beep.mp3"), None);
/// ```
pub fn scheme(url: &str) -> Option<&str> {
    scheme_end(url).map(|end| &url[..end])
}

/// The authority after `//` (`user:pw@host:port`), in an absolute URL or a network-path reference
/// (`//cdn.example.com/a.mp3`); `None` when there is no `//` there (`tel:+1555`, `/voice`). Its
/// host and port are not checked: [`split`] does that.
///
/// ```
/// use twiml_fallback::url::authority;
///
/// assert_eq!(authority("https://u@a.example:8443/v"), Some("u@a.example:8443"));
/// assert_eq!(authority("//cdn.example.com/a.mp3"), Some("cdn.example.com"));
/// assert_eq!(authority("urn:isbn:0451450523"), None);
/// ```
pub fn authority(url: &str) -> Option<&str> {
    let start = scheme_end(url).map_or(0, |end| end + 1);
    if !url[start..].starts_with("//") {
        return None;
    }
    Some(&url[start + 2..authority_end(url, start + 2)])
}

/// The path of an absolute URL, a request target (`/voice?x=1`, origin-form) or any other
/// reference, without query or fragment. It may be empty (`https://a.example?x=1`), which an HTTP
/// request asks for as `/`.
///
/// ```
/// use twiml_fallback::url::path;
///
/// assert_eq!(path("https://a.example/voice/incoming?CallSid=CA1#rt=1"), "/voice/incoming");
/// assert_eq!(path("/sms?x=1"), "/sms");
/// assert_eq!(path("https://a.example#/not/a/path"), "");
/// ```
pub fn path(url: &str) -> &str {
    let start = scheme_end(url).map_or(0, |end| end + 1);
    let start = if url[start..].starts_with("//") {
        authority_end(url, start + 2)
    } else {
        start
    };
    let rest = &url[start..];
    &rest[..rest.find(['?', '#']).unwrap_or(rest.len())]
}

/// The query of any URL or reference, without its `?` and without the fragment; `None` when no
/// `?` comes before the first `#`. (No scheme or authority can hold a `?`, so the first one starts
/// the query.)
///
/// ```
/// use twiml_fallback::url::query;
///
/// assert_eq!(query("https://a.example/v?x=1&y=2#tt=5000"), Some("x=1&y=2"));
/// assert_eq!(query("/voice?"), Some(""));
/// assert_eq!(query("/voice#frag?not=query"), None);
/// ```
pub fn query(url: &str) -> Option<&str> {
    without_fragment(url).split_once('?').map(|(_, query)| query)
}

/// The fragment of any URL or reference, without its `#`: everything after the first `#`.
///
/// ```
/// assert_eq!(twiml_fallback::url::fragment("https://a.example/v#ct=1000&tt=5000"), Some("ct=1000&tt=5000"));
/// assert_eq!(twiml_fallback::url::fragment("https://a.example/v"), None);
/// ```
pub fn fragment(url: &str) -> Option<&str> {
    url.split_once('#').map(|(_, fragment)| fragment)
}

/// `url` without its fragment (and the `#`): what is requested, and what a server sees.
///
/// ```
/// use twiml_fallback::url::without_fragment;
///
/// assert_eq!(without_fragment("https://a.example/v?x=1#tt=5000"), "https://a.example/v?x=1");
/// assert_eq!(without_fragment("/voice"), "/voice");
/// ```
pub fn without_fragment(url: &str) -> &str {
    url.find('#').map_or(url, |hash| &url[..hash])
}

/// `url` without its query and fragment: scheme, authority and path of an absolute URL, or the
/// path of a request target (what an alert names as the failing URL, without its parameters).
///
/// ```
/// use twiml_fallback::url::without_query_and_fragment;
///
/// assert_eq!(without_query_and_fragment("https://a.example/v?CallSid=CA1#tt=5000"), "https://a.example/v");
/// assert_eq!(without_query_and_fragment("https://a.example#x?y"), "https://a.example");
/// assert_eq!(without_query_and_fragment("/sms?x=1"), "/sms");
/// ```
pub fn without_query_and_fragment(url: &str) -> &str {
    url.find(['?', '#']).map_or(url, |end| &url[..end])
}

/// Splits `host[:port]` — an authority without user info, or a `recovery.allow_hosts` entry —
/// into the host (an IPv6 literal keeps its brackets) and the port's digits; `None` when an IPv6
/// literal is not closed or is followed by something other than a port, when the port is not
/// digits, or when a host outside brackets holds a `:`.
///
/// ```
/// use twiml_fallback::url::host_and_port;
///
/// assert_eq!(host_and_port("staging.example.com:8443"), Some(("staging.example.com", Some("8443"))));
/// assert_eq!(host_and_port("[fd00::1]"), Some(("[fd00::1]", None)));
/// assert_eq!(host_and_port("fd00::1"), None);
/// ```
pub fn host_and_port(text: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if text.starts_with('[') {
        let close = text.find(']')?;
        let (host, rest) = text.split_at(close + 1);
        if rest.is_empty() {
            (host, None)
        } else {
            (host, Some(rest.strip_prefix(':')?))
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) if !port.contains(':') => (host, Some(port)),
            Some(_) => return None,
            None => (text, None),
        }
    };
    if port.is_some_and(|port| !port.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    Some((host, port))
}

/// Whether `url` is an absolute `http`/`https` URL (in any case) with a host, and no whitespace
/// or control characters anywhere: the rule for every URL in the configuration, and for the CLI's
/// URL options.
///
/// ```
/// use twiml_fallback::url::is_absolute_http_url;
///
/// assert!(is_absolute_http_url("https://app.example.com/voice"));
/// assert!(is_absolute_http_url("HTTP://a"));
/// assert!(!is_absolute_http_url("https:///voice"));
/// assert!(!is_absolute_http_url("ftp://example.com/"));
/// assert!(!is_absolute_http_url("/voice"));
/// ```
pub fn is_absolute_http_url(url: &str) -> bool {
    split(url).is_some_and(|parts| parts.is_http() && !parts.host().is_empty())
        && !url.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

/// The offset of the `:` ending a valid scheme at the start of `url`.
fn scheme_end(url: &str) -> Option<usize> {
    let bytes = url.as_bytes();
    if !bytes.first().is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    for (index, &byte) in bytes.iter().enumerate().skip(1) {
        match byte {
            b':' => return Some(index),
            b'+' | b'-' | b'.' => {}
            _ if byte.is_ascii_alphanumeric() => {}
            _ => return None,
        }
    }
    None
}

/// Where an authority starting at `start` ends: at the first `/`, `?`, `#` or `\`, or the end.
fn authority_end(url: &str, start: usize) -> usize {
    url[start..]
        .find(['/', '?', '#', '\\'])
        .map_or(url.len(), |offset| start + offset)
}

/// Whether a host names this machine: `localhost`, `127.x.x.x` or `[::1]` (as [`Parts::host`]
/// writes it): where credentials may travel without TLS (a local fake, a local relay).
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host == "[::1]" || host == "::1" || host.starts_with("127.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn must_split(url: &str) -> Parts<'_> {
        split(url).unwrap_or_else(|| panic!("{url:?} should split"))
    }

    #[test]
    fn authority_offsets_are_exact() {
        let url = "https://u@h.example:99/p";
        let parts = must_split(url);
        assert_eq!(parts.scheme(), "https");
        assert_eq!(parts.userinfo(), Some("u"));
        assert_eq!(parts.host(), "h.example");
        assert_eq!(parts.port(), Some("99"));
        assert_eq!(parts.authority(), "u@h.example:99");
        assert_eq!(parts.origin(), "https://u@h.example:99");
        assert_eq!(parts.origin_without_port(), "https://u@h.example");
        assert_eq!(parts.after_authority(), "/p");
        assert_eq!(parts.as_str(), url);
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets_and_the_port_follows_them() {
        let v6 = must_split("http://[::1]:8080/v");
        assert_eq!((v6.host(), v6.port_number()), ("[::1]", Some(8080)));
        let v6 = must_split("https://u:p@[2001:db8::1]/v");
        assert_eq!(
            (v6.userinfo(), v6.host(), v6.port()),
            (Some("u:p"), "[2001:db8::1]", None)
        );
        assert_eq!(must_split("https://[::1]:/").port(), Some(""));
        for url in [
            "https://[::1/x",
            "https://[::1]x/",
            "https://[::1]]/",
            "https://[::1]:8a/",
        ] {
            assert_eq!(split(url), None, "{url}");
        }
    }

    #[test]
    fn userinfo_ends_at_the_last_at_and_its_colon_is_not_a_port() {
        let with_password = must_split("https://user:pass@h.example/x");
        assert_eq!(
            (with_password.userinfo(), with_password.host(), with_password.port()),
            (Some("user:pass"), "h.example", None)
        );
        let two_ats = must_split("https://a@b:c@d.example:1/");
        assert_eq!((two_ats.userinfo(), two_ats.host()), (Some("a@b:c"), "d.example"));
        assert_eq!(must_split("https://@h.example/").userinfo(), Some(""));
        assert_eq!(must_split("https://h.example/@x").userinfo(), None);
    }

    #[test]
    fn an_empty_port_is_a_port_without_a_number() {
        let empty = must_split("https://h.example:/x");
        assert_eq!((empty.port(), empty.port_number()), (Some(""), None));
        assert_eq!(empty.origin_without_port(), "https://h.example");
        assert_eq!(empty.path(), "/x");
    }

    #[test]
    fn ports_out_of_range_split_but_have_no_number() {
        assert_eq!(must_split("https://h:65535/").port_number(), Some(65535));
        assert_eq!(must_split("https://h:0/").port_number(), Some(0));
        for url in ["https://h:65536/", "https://h:99999999999999999999999/"] {
            let parts = must_split(url);
            assert!(parts.port().is_some() && parts.port_number().is_none(), "{url}");
        }
        // Digits only: `u16::from_str` would take the `+`.
        for url in ["https://h:+443/", "https://h:-1/", "https://h: 80/", "https://h:80a/"] {
            assert_eq!(split(url), None, "{url}");
        }
    }

    #[test]
    fn a_second_colon_outside_brackets_is_no_host_and_port() {
        assert_eq!(split("https://a:1:2/"), None);
        assert_eq!(split("https://fd00::1/"), None);
        assert_eq!(host_and_port("a:b:c"), None);
        assert_eq!(host_and_port("[::1]:8443"), Some(("[::1]", Some("8443"))));
        assert_eq!(host_and_port("*.example.org"), Some(("*.example.org", None)));
        assert_eq!(host_and_port("h:"), Some(("h", Some(""))));
        assert_eq!(host_and_port(""), Some(("", None)));
    }

    #[test]
    fn a_query_needs_no_path() {
        let no_path = must_split("https://h.example?x=1/2");
        assert_eq!(
            (no_path.host(), no_path.path(), no_path.query()),
            ("h.example", "", Some("x=1/2"))
        );
        assert_eq!((path("?x=1"), query("?x=1")), ("", Some("x=1")));
        assert_eq!(query("https://h.example/v?"), Some(""));
        assert_eq!(query("https://h.example/v"), None);
    }

    #[test]
    fn a_fragment_starts_at_the_first_hash_even_before_a_question_mark() {
        let url = "https://h.example/p#frag?x=1";
        let parts = must_split(url);
        assert_eq!(
            (parts.path(), parts.query(), parts.fragment()),
            ("/p", None, Some("frag?x=1"))
        );
        assert_eq!(without_fragment(url), "https://h.example/p");
        let early = must_split("https://h.example#a/b?c");
        assert_eq!((early.host(), early.path(), early.query()), ("h.example", "", None));
        assert_eq!((path("/p#a?b"), query("/p#a?b")), ("/p", None));
        assert_eq!(fragment("/p#"), Some(""));
        assert_eq!(without_fragment("/p#"), "/p");
        assert_eq!(without_query_and_fragment(url), "https://h.example/p");
    }

    #[test]
    fn uppercase_schemes_are_kept_and_compared_without_case() {
        let upper = must_split("HTTP://A.Example:80/V");
        assert_eq!(
            (upper.scheme(), upper.host(), upper.path()),
            ("HTTP", "A.Example", "/V")
        );
        assert!(upper.is_http());
        assert_eq!(upper.default_port(), Some(80));
        assert_eq!(must_split("HtTpS://x").default_port(), Some(443));
        assert!(is_absolute_http_url("HTTPS://A.EXAMPLE"));
        assert_eq!(scheme("HTTPS://a"), Some("HTTPS"));
    }

    #[test]
    fn whitespace_and_controls_are_kept_by_the_split_and_refused_as_http_urls() {
        assert_eq!(must_split("https://h.example/a b").path(), "/a b");
        assert_eq!(must_split("https://h .example/").host(), "h .example");
        assert_eq!(must_split("https://h.example/\t").path(), "/\t");
        for url in [
            "https://h.example/a b",
            "https://h .example/",
            "https://h.example/\t",
            "https://h.example/\n",
            "https://h.example/\u{7f}",
            "https://h.example/\u{0}",
            " https://h.example/",
            "https://h.example/ ",
        ] {
            assert!(!is_absolute_http_url(url), "{url:?}");
        }
        assert_eq!(split(" https://h.example/"), None);
        assert_eq!(scheme("ht tp://x"), None);
    }

    #[test]
    fn authority_only_urls_and_network_path_references() {
        let bare = must_split("https://h.example");
        assert_eq!(
            (bare.origin(), bare.path(), bare.after_authority()),
            ("https://h.example", "", "")
        );
        assert!(is_absolute_http_url("https://h.example"));
        let empty = must_split("https://");
        assert_eq!((empty.host(), empty.port()), ("", None));
        assert!(!is_absolute_http_url("https://"));
        assert_eq!(must_split("https:///voice").path(), "/voice");
        assert!(!is_absolute_http_url("https:///voice"));
        // `//host/path` has an authority but no scheme: a reference, not an absolute URL.
        let network = "//cdn.example.com/a.mp3?x#y";
        assert_eq!(split(network), None);
        assert_eq!(scheme(network), None);
        assert_eq!(authority(network), Some("cdn.example.com"));
        assert_eq!((path(network), query(network)), ("/a.mp3", Some("x")));
        assert!(!is_absolute_http_url(network));
    }

    #[test]
    fn other_schemes_split_but_are_not_http_urls() {
        let ftp = must_split("ftp://files.example/x");
        assert!(!ftp.is_http());
        assert_eq!(ftp.default_port(), None);
        assert!(!is_absolute_http_url("ftp://files.example/x"));
        assert_eq!(must_split("wss://h/").default_port(), Some(443));
        assert_eq!(must_split("ws://h").default_port(), Some(80));
        assert_eq!(must_split("git+ssh://h/r").scheme(), "git+ssh");
        // Without `//` there is a scheme but no authority.
        for (uri, scheme_of) in [("tel:+14155550199", "tel"), ("mailto:a@b.example", "mailto")] {
            assert_eq!(split(uri), None, "{uri}");
            assert_eq!(scheme(uri), Some(scheme_of));
            assert_eq!(authority(uri), None);
        }
        assert_eq!(path("tel:+14155550199"), "+14155550199");
        for not_a_scheme in ["1http://x", "://x", "h_t://x", "", "-x://y", "next?x=a:b", "a/b:c"] {
            assert_eq!(scheme(not_a_scheme), None, "{not_a_scheme}");
            assert_eq!(split(not_a_scheme), None, "{not_a_scheme}");
        }
    }

    #[test]
    fn a_backslash_ends_the_authority_as_browsers_read_it() {
        let tricked = must_split("https://a.example\\@b.example/");
        assert_eq!(
            (tricked.userinfo(), tricked.host(), tricked.path()),
            (None, "a.example", "\\@b.example/")
        );
        assert_eq!(must_split("https://h:80\\x").port_number(), Some(80));
        assert_eq!(authority("//a.example\\b"), Some("a.example"));
    }

    #[test]
    fn relative_references_have_a_path_and_no_scheme() {
        assert_eq!((scheme("next?x=a:b"), path("next?x=a:b")), (None, "next"));
        assert_eq!(path("../menu#top"), "../menu");
        assert_eq!(path(""), "");
        assert_eq!(authority("/voice"), None);
    }

    #[test]
    fn non_ascii_hosts_split_on_character_boundaries() {
        let unicode = must_split("https://ápp.example.com:8443/ü?q=é#ß");
        assert_eq!(
            (
                unicode.host(),
                unicode.port(),
                unicode.path(),
                unicode.query(),
                unicode.fragment()
            ),
            ("ápp.example.com", Some("8443"), "/ü", Some("q=é"), Some("ß"))
        );
    }

    #[test]
    fn the_free_functions_read_absolute_urls_as_parts_does() {
        for url in [
            "https://h.example",
            "https://u:p@[::1]:8443/a/b?c=d#e?f",
            "http://h.example?x#y",
            "https://h.example#/x",
            "https://h.example\\p?q",
            "HTTPS://H:1/p",
        ] {
            let parts = must_split(url);
            assert_eq!(scheme(url), Some(parts.scheme()), "{url}");
            assert_eq!(authority(url), Some(parts.authority()), "{url}");
            assert_eq!(path(url), parts.path(), "{url}");
            assert_eq!(query(url), parts.query(), "{url}");
            assert_eq!(fragment(url), parts.fragment(), "{url}");
            let bare = without_query_and_fragment(url);
            assert_eq!(bare.strip_prefix(parts.origin()), Some(parts.path()), "{url}");
        }
    }
}
