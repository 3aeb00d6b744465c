//! The forms of a URL Twilio may have signed: as given, without its port, or with the default port.
//!
//! The URL is split by hand, never parsed and re-serialised: a URL library would normalise the
//! host's case, percent-encode `'` in the query or drop `:443`, and each of those changes the
//! bytes Twilio signed.

use std::borrow::Cow;

/// Which form of the URL a signature was computed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UrlVariant {
    /// Exactly the URL as given.
    AsGiven,
    /// The URL with its explicit port removed.
    PortRemoved,
    /// The URL with the scheme's default port (`:443` for https, `:80` for http) added.
    DefaultPortAdded,
}

impl UrlVariant {
    /// `as-given`, `port-removed` or `default-port-added`.
    pub fn as_str(self) -> &'static str {
        match self {
            UrlVariant::AsGiven => "as-given",
            UrlVariant::PortRemoved => "port-removed",
            UrlVariant::DefaultPortAdded => "default-port-added",
        }
    }
}

/// The URL as given, then the port-removed or default-port-added form when one exists. The
/// second form is only built if the iteration gets that far.
///
/// ```
/// use twiml_fallback::signature::{url_variants, UrlVariant};
///
/// let forms: Vec<(UrlVariant, String)> =
///     url_variants("https://user:pw@[::1]/a?b=c:1").map(|(variant, url)| (variant, url.into_owned())).collect();
/// assert_eq!(forms, [
///     (UrlVariant::AsGiven, "https://user:pw@[::1]/a?b=c:1".to_string()),
///     (UrlVariant::DefaultPortAdded, "https://user:pw@[::1]:443/a?b=c:1".to_string()),
/// ]);
/// ```
pub fn url_variants(url: &str) -> impl Iterator<Item = (UrlVariant, Cow<'_, str>)> + '_ {
    let other = std::iter::once_with(move || {
        let parts = split_authority(url)?;
        if let Some(port_start) = parts.port_start {
            let mut stripped = String::with_capacity(url.len());
            stripped.push_str(&url[..port_start]);
            stripped.push_str(&url[parts.authority_end..]);
            Some((UrlVariant::PortRemoved, Cow::Owned(stripped)))
        } else {
            let default_port = match parts.scheme.to_ascii_lowercase().as_str() {
                "https" | "wss" => ":443",
                "http" | "ws" => ":80",
                _ => return None,
            };
            let mut added = String::with_capacity(url.len() + default_port.len());
            added.push_str(&url[..parts.authority_end]);
            added.push_str(default_port);
            added.push_str(&url[parts.authority_end..]);
            Some((UrlVariant::DefaultPortAdded, Cow::Owned(added)))
        }
    })
    .flatten();
    std::iter::once((UrlVariant::AsGiven, Cow::Borrowed(url))).chain(other)
}

/// Byte offsets of an absolute URL's pieces.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Authority<'a> {
    pub(crate) scheme: &'a str,
    /// Start of the host (after any `user:pass@`).
    pub(crate) host_start: usize,
    /// End of the host (the `:` before the port, or the end of the authority).
    pub(crate) host_end: usize,
    /// Offset of the `:` that starts the port, when there is one.
    pub(crate) port_start: Option<usize>,
    /// End of the authority: where the path, query or fragment begins.
    pub(crate) authority_end: usize,
}

/// Splits `scheme://[userinfo@]host[:port]` off an absolute URL; `None` when it is not one.
pub(crate) fn split_authority(url: &str) -> Option<Authority<'_>> {
    let scheme_end = url.find("://")?;
    let scheme = &url[..scheme_end];
    if scheme.is_empty()
        || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |offset| authority_start + offset);
    let authority = &url[authority_start..authority_end];
    let host_start = authority
        .rfind('@')
        .map_or(authority_start, |at| authority_start + at + 1);
    let host_port = &url[host_start..authority_end];
    let port_colon = if host_port.starts_with('[') {
        // IPv6 literal: the port, if any, follows the closing bracket.
        let close = host_port.find(']')?;
        match &host_port[close + 1..] {
            "" => None,
            rest if rest.starts_with(':') => Some(close + 1),
            _ => return None,
        }
    } else {
        host_port.rfind(':')
    };
    let port_start = match port_colon {
        Some(colon) if host_port[colon + 1..].bytes().all(|b| b.is_ascii_digit()) => Some(host_start + colon),
        Some(_) => return None,
        None => None,
    };
    Some(Authority {
        scheme,
        host_start,
        host_end: port_start.unwrap_or(authority_end),
        port_start,
        authority_end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms(url: &str) -> Vec<String> {
        url_variants(url).map(|(_, form)| form.into_owned()).collect()
    }

    #[test]
    fn https_without_port_gains_443() {
        assert_eq!(
            forms("https://mycompany.com/myapp.php?foo=1&bar=2"),
            [
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                "https://mycompany.com:443/myapp.php?foo=1&bar=2"
            ]
        );
    }

    #[test]
    fn http_without_port_gains_80_and_explicit_ports_are_removed() {
        assert_eq!(forms("http://a.example"), ["http://a.example", "http://a.example:80"]);
        assert_eq!(
            forms("http://a.example:1234/x"),
            ["http://a.example:1234/x", "http://a.example/x"]
        );
        assert_eq!(
            forms("HTTPS://A.example:443?q"),
            ["HTTPS://A.example:443?q", "HTTPS://A.example?q"]
        );
    }

    #[test]
    fn userinfo_is_kept_and_its_colon_is_not_a_port() {
        assert_eq!(
            forms("https://user:pass@mycompany.com/myapp.php?foo=1&bar=2"),
            [
                "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
                "https://user:pass@mycompany.com:443/myapp.php?foo=1&bar=2"
            ]
        );
        assert_eq!(
            forms("https://u:p@h.example:8443/"),
            ["https://u:p@h.example:8443/", "https://u:p@h.example/"]
        );
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        assert_eq!(
            forms("https://[2001:db8::1]/v"),
            ["https://[2001:db8::1]/v", "https://[2001:db8::1]:443/v"]
        );
        assert_eq!(forms("http://[::1]:8080/v"), ["http://[::1]:8080/v", "http://[::1]/v"]);
    }

    #[test]
    fn query_and_fragment_are_never_touched() {
        let url = "https://h.example/p?q='a b'+c@d:e&x=%41#frag:1";
        assert_eq!(forms(url)[1], "https://h.example:443/p?q='a b'+c@d:e&x=%41#frag:1");
    }

    #[test]
    fn urls_that_are_not_absolute_have_one_form() {
        for url in [
            "/relative?x=1",
            "",
            "mycompany.com/x",
            "://x",
            "1http://x",
            "https://[::1/x",
            "https://h:80a/",
        ] {
            assert_eq!(forms(url), [url]);
        }
        assert_eq!(forms("ftp://files.example/x"), ["ftp://files.example/x"]);
    }

    #[test]
    fn authority_offsets_are_exact() {
        let url = "https://u@h.example:99/p";
        let parts = split_authority(url).expect("absolute");
        assert_eq!(parts.scheme, "https");
        assert_eq!(&url[parts.host_start..parts.host_end], "h.example");
        assert_eq!(parts.port_start.map(|p| &url[p..parts.authority_end]), Some(":99"));
    }
}
