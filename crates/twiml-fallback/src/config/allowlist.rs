//! The recovery allowlist: which failed primaries (`ErrorUrl`) the fallback endpoint may
//! re-request, from `[recovery]`'s `allow_hosts`, `allow_http` and `timeout_ms`.
//!
//! A URL is split with [`crate::url`]; the host must then be a plain lowercase ASCII name, an IPv4
//! address or a bracketed IPv6 literal, and match a rule exactly (or as a subdomain of a `*.`
//! rule) on the rule's port, or the scheme's default port when the rule names none.
//!
//! # Example
//!
//! ```
//! use twiml_fallback::config::{Config, RecoveryRefusal};
//!
//! let config = Config::from_toml(r#"
//!     [recovery]
//!     allow_hosts = ["app.example.com", "*.example.org", "staging.example.net:8443"]
//! "#).unwrap();
//! let recovery = config.recovery().unwrap();
//! assert_eq!(recovery.allows("https://app.example.com/voice?CallSid=CA1"), Ok(()));
//! assert_eq!(recovery.allows("https://eu.example.org/sms"), Ok(()));
//! assert_eq!(recovery.allows("http://app.example.com/voice"), Err(RecoveryRefusal::Scheme));
//! assert_eq!(recovery.allows("https://user:pw@app.example.com/"), Err(RecoveryRefusal::UserInfo));
//! assert!(matches!(recovery.allows("https://staging.example.net/"), Err(RecoveryRefusal::HostNotAllowed(_))));
//! ```

use std::fmt;

/// Whether and where the fallback endpoint may re-request the failed primary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Hosts the primary may be re-requested on.
    pub allow_hosts: Vec<HostRule>,
    /// The recovery request's deadline, in milliseconds.
    pub timeout_ms: u64,
    /// Whether plain `http://` primaries may be re-requested.
    pub allow_http: bool,
}

/// One `allow_hosts` entry: an exact host (`app.example.com`), a subdomain wildcard
/// (`*.example.com`, which does not match `example.com` itself), either with an optional port.
/// Without a port only the scheme's default port matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRule {
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

/// Why a URL may not be re-requested by recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveryRefusal {
    /// Not an absolute URL with a host.
    NotAbsolute,
    /// `http://` while `allow_http` is off, or another scheme.
    Scheme,
    /// It carries `user:pass@`, which could disguise the real host.
    UserInfo,
    /// The host is not on `allow_hosts` (or the port is not the one allowed).
    HostNotAllowed(String),
}

impl fmt::Display for RecoveryRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoveryRefusal::NotAbsolute => f.write_str("ErrorUrl is not an absolute URL"),
            RecoveryRefusal::Scheme => f.write_str("ErrorUrl's scheme is not allowed (https only unless allow_http)"),
            RecoveryRefusal::UserInfo => f.write_str("ErrorUrl carries user info (user:pass@), which is refused"),
            RecoveryRefusal::HostNotAllowed(host) => write!(f, "host {host:?} is not in recovery.allow_hosts"),
        }
    }
}

impl Recovery {
    /// Whether `url` may be re-requested: an absolute `https` (or, when allowed, `http`) URL
    /// without user info, whose host and port match an `allow_hosts` entry. Hosts are compared
    /// case-insensitively as ASCII; anything else (percent-escapes, Unicode, trailing dots) never
    /// matches, so IDN tricks and IP spellings can't slip past a rule. IP literals only match a
    /// rule naming the same literal.
    pub fn allows(&self, url: &str) -> Result<(), RecoveryRefusal> {
        let parts = crate::url::split(url)
            .filter(|parts| !parts.host().is_empty())
            .ok_or(RecoveryRefusal::NotAbsolute)?;
        let explicit_port = match parts.port() {
            None => None,
            Some(_) => Some(parts.port_number().ok_or(RecoveryRefusal::NotAbsolute)?),
        };
        let default_port = if parts.scheme().eq_ignore_ascii_case("https") {
            443
        } else if parts.scheme().eq_ignore_ascii_case("http") && self.allow_http {
            80
        } else {
            return Err(RecoveryRefusal::Scheme);
        };
        if parts.userinfo().is_some() {
            return Err(RecoveryRefusal::UserInfo);
        }
        let port = explicit_port.unwrap_or(default_port);
        let host = parts.host().to_ascii_lowercase();
        let host_ok = is_plain_host(&host);
        if host_ok
            && self
                .allow_hosts
                .iter()
                .any(|rule| rule.matches(&host, port, default_port))
        {
            Ok(())
        } else {
            Err(RecoveryRefusal::HostNotAllowed(
                parts.host().chars().take(255).collect(),
            ))
        }
    }
}

impl HostRule {
    /// Parses an `allow_hosts` entry.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err("empty".to_owned());
        }
        if !entry.is_ascii() {
            return Err("must be ASCII: write internationalised names in their xn-- (punycode) form".to_owned());
        }
        let (host, port) =
            crate::url::host_and_port(entry).ok_or_else(|| format!("{entry:?} is not host or host:port"))?;
        let port = match port {
            None => None,
            Some(text) => Some(
                text.parse::<u16>()
                    .ok()
                    .filter(|port| *port > 0)
                    .ok_or_else(|| format!("{text:?} is not a port"))?,
            ),
        };
        let lower = host.to_ascii_lowercase();
        let (wildcard, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest.to_owned()),
            None => (false, lower),
        };
        if name.contains('*') {
            return Err("only a leading \"*.\" wildcard is supported".to_owned());
        }
        if !is_plain_host(&name) || (wildcard && name.starts_with('[')) {
            return Err(format!("{host:?} is not a host name or IP address"));
        }
        if wildcard && !name.contains('.') {
            return Err("a wildcard needs at least two labels after \"*.\" (e.g. *.example.com)".to_owned());
        }
        // `*.0.0.5` would match the IPv4 address 10.0.0.5: no top-level domain is all digits.
        if wildcard
            && name
                .rsplit('.')
                .next()
                .is_some_and(|label| label.bytes().all(|byte| byte.is_ascii_digit()))
        {
            return Err("a wildcard covers host names, not IP addresses".to_owned());
        }
        Ok(Self {
            host: name,
            wildcard,
            port,
        })
    }

    fn matches(&self, host: &str, port: u16, default_port: u16) -> bool {
        if port != self.port.unwrap_or(default_port) {
            return false;
        }
        if self.wildcard {
            host.len() > self.host.len() + 1
                && host.ends_with(&self.host)
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host == self.host
        }
    }
}

impl fmt::Display for HostRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// A lowercase ASCII DNS name (labels of `a-z0-9-`, no empty labels or trailing dot), an IPv4
/// address, or a bracketed IPv6 literal.
fn is_plain_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}
