//! The forms of a URL Twilio may have signed: as given, without its port, or with the default port.
//!
//! The URL is split by [`crate::url::split`], never parsed and re-serialised: a URL library would
//! normalise the host's case, percent-encode `'` in the query or drop `:443`, and each of those
//! changes the bytes Twilio signed.

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
        let parts = crate::url::split(url)?;
        let rest = parts.after_authority();
        if parts.port().is_some() {
            let head = parts.origin_without_port();
            let mut stripped = String::with_capacity(head.len() + rest.len());
            stripped.push_str(head);
            stripped.push_str(rest);
            Some((UrlVariant::PortRemoved, Cow::Owned(stripped)))
        } else {
            let default_port = match parts.default_port()? {
                443 => ":443",
                80 => ":80",
                _ => return None,
            };
            let head = parts.origin();
            let mut added = String::with_capacity(head.len() + default_port.len() + rest.len());
            added.push_str(head);
            added.push_str(default_port);
            added.push_str(rest);
            Some((UrlVariant::DefaultPortAdded, Cow::Owned(added)))
        }
    })
    .flatten();
    std::iter::once((UrlVariant::AsGiven, Cow::Borrowed(url))).chain(other)
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
}
