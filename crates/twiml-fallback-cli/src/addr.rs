//! `serve --addr`: where to listen, written the way self-hosting users write it —
//! `0.0.0.0:8080`, `127.0.0.1:8787`, `[::]:8080`, `localhost:8787` — with a clear error and the
//! fix for the usual slips (`8080`, `:8080`, `localhost`, `::1:8080`, `http://localhost:8080`).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use tokio::net::TcpListener;

use crate::error::CliError;

/// `serve`'s default port (`--addr 127.0.0.1:8787`).
pub(crate) const DEFAULT_PORT: u16 = 8787;

/// A listen address: a host (an IPv4 address, an IPv6 address, or a name such as `localhost`) and
/// a port (0: any free port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListenAddr {
    host: Host,
    port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Host {
    Ip(IpAddr),
    Name(String),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}:{}", self.port),
            Host::Name(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

/// Parses `--addr`: `HOST:PORT`, the IPv6 host in brackets.
pub(crate) fn parse(text: &str) -> Result<ListenAddr, CliError> {
    let text = text.trim();
    let invalid = |problem: String, fix: String| CliError::new(format!("--addr {text:?}: {problem}")).hint(fix);
    let both = |port: &str| {
        format!("write 127.0.0.1:{port} (this machine only) or 0.0.0.0:{port} (every interface), as HOST:PORT")
    };
    if let Some((scheme, rest)) = text.split_once("://") {
        let rest = rest.trim_end_matches('/');
        return Err(invalid(
            format!("takes HOST:PORT, not a {scheme}:// URL"),
            format!("write --addr {rest}"),
        ));
    }
    if text.is_empty() {
        return Err(invalid("is empty".to_owned(), both(&DEFAULT_PORT.to_string())));
    }
    if text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid("has no host, only a port".to_owned(), both(text)));
    }
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let Some((ip, rest)) = bracketed.split_once(']') else {
            return Err(invalid("has no closing ]".to_owned(), "e.g. [::1]:8787".to_owned()));
        };
        let Ok(ip) = ip.parse::<Ipv6Addr>() else {
            return Err(invalid(
                format!("{ip:?} is not an IPv6 address"),
                "e.g. [::1]:8787 or [::]:8787".to_owned(),
            ));
        };
        let Some(port) = rest.strip_prefix(':') else {
            return Err(invalid(
                "has no port".to_owned(),
                format!("write [{ip}]:{DEFAULT_PORT}"),
            ));
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        if text.matches(':').count() > 1 {
            let (ip, port) = match text.rsplit_once(':') {
                Some((ip, port)) if ip.parse::<Ipv6Addr>().is_ok() && !port.is_empty() => (ip, port),
                _ => (text, "8787"),
            };
            return Err(invalid(
                "an IPv6 address goes in brackets".to_owned(),
                format!("write [{ip}]:{port}"),
            ));
        }
        let Some((host, port)) = text.split_once(':') else {
            return Err(invalid(
                "has no port".to_owned(),
                format!("write {text}:{DEFAULT_PORT}"),
            ));
        };
        if host.is_empty() {
            return Err(invalid("has no host".to_owned(), both(port)));
        }
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) if is_host_name(host) => Host::Name(host.to_ascii_lowercase()),
            Err(_) => {
                return Err(invalid(
                    format!("{host:?} is neither an IP address nor a host name"),
                    both(if port.is_empty() { "8787" } else { port }),
                ));
            }
        };
        (host, port)
    };
    let shown = match &host {
        Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
        Host::Ip(ip) => ip.to_string(),
        Host::Name(name) => name.clone(),
    };
    if port.is_empty() {
        return Err(invalid(
            "has no port".to_owned(),
            format!("write {shown}:{DEFAULT_PORT}"),
        ));
    }
    let Ok(port) = port.parse::<u16>() else {
        return Err(invalid(
            format!("the port {port:?} is not a number from 0 to 65535"),
            format!("e.g. {shown}:{DEFAULT_PORT}"),
        ));
    };
    Ok(ListenAddr { host, port })
}

/// A DNS name: dot-separated labels of letters, digits and hyphens, not starting or ending with a
/// hyphen, and not all digits (a mistyped IPv4 address such as `127.0.0.300` is not a name).
fn is_host_name(host: &str) -> bool {
    let labels_ok = host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        });
    labels_ok && !host.bytes().all(|byte| byte.is_ascii_digit() || byte == b'.')
}

/// Binds `addr`: an IP address as it is; a name resolved, its IPv4 addresses tried first (so
/// `localhost` is 127.0.0.1, which every client reaches), the first that binds kept.
pub(crate) async fn bind(addr: &ListenAddr) -> Result<TcpListener, CliError> {
    let candidates: Vec<SocketAddr> = match &addr.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, addr.port)],
        Host::Name(name) => {
            let mut resolved: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), addr.port))
                .await
                .map_err(|error| {
                    CliError::new(format!("cannot listen on {addr}: cannot resolve {name}: {error}")).hint(format!(
                        "use an IP address (0.0.0.0:{port} for every interface, 127.0.0.1:{port} for this machine) or a name this machine resolves",
                        port = addr.port
                    ))
                })?
                .collect();
            resolved.sort_by_key(SocketAddr::is_ipv6);
            resolved.dedup();
            resolved
        }
    };
    let mut first_error = None;
    for candidate in &candidates {
        match TcpListener::bind(candidate).await {
            Ok(listener) => return Ok(listener),
            Err(error) => {
                first_error.get_or_insert((*candidate, error));
            }
        }
    }
    Err(match first_error {
        Some((candidate, error)) => {
            let resolved = match &addr.host {
                Host::Name(_) => format!(" ({candidate})"),
                Host::Ip(_) => String::new(),
            };
            CliError::new(format!("cannot listen on {addr}{resolved}: {error}"))
                .hint("is another process using the port? choose another with --addr")
        }
        None => CliError::new(format!("cannot listen on {addr}: the name resolves to no address"))
            .hint("use an IP address, e.g. --addr 127.0.0.1:8787"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> String {
        parse(text)
            .unwrap_or_else(|error| panic!("{text}: {error}"))
            .to_string()
    }

    /// The error and its hint, as printed.
    fn refused(text: &str) -> (String, String) {
        let error = parse(text).expect_err(text);
        let hint = error.hint_text().unwrap_or_default().to_owned();
        (error.to_string(), hint)
    }

    #[test]
    fn the_forms_self_hosting_users_write_are_accepted() {
        assert_eq!(ok("127.0.0.1:8787"), "127.0.0.1:8787");
        assert_eq!(ok("0.0.0.0:8080"), "0.0.0.0:8080");
        assert_eq!(ok("localhost:8080"), "localhost:8080");
        assert_eq!(ok("LocalHost:0"), "localhost:0");
        assert_eq!(ok("fallback-1.internal:443"), "fallback-1.internal:443");
        assert_eq!(ok("[::]:8080"), "[::]:8080");
        assert_eq!(ok("[::1]:8787"), "[::1]:8787");
        assert_eq!(ok(" 0.0.0.0:8787 "), "0.0.0.0:8787");
    }

    #[test]
    fn a_port_alone_or_a_missing_host_says_which_host_to_write() {
        for text in ["8080", ":8080"] {
            let (error, hint) = refused(text);
            assert!(error.contains("has no host"), "{error}");
            assert_eq!(
                hint,
                "write 127.0.0.1:8080 (this machine only) or 0.0.0.0:8080 (every interface), as HOST:PORT"
            );
        }
    }

    #[test]
    fn a_host_alone_says_to_add_the_port() {
        assert_eq!(
            refused("localhost"),
            (
                "--addr \"localhost\": has no port".to_owned(),
                "write localhost:8787".to_owned()
            )
        );
        assert_eq!(refused("0.0.0.0:").1, "write 0.0.0.0:8787");
        assert_eq!(refused("[::1]").1, "write [::1]:8787");
    }

    #[test]
    fn ipv6_without_brackets_urls_and_bad_ports_get_their_fix() {
        assert_eq!(refused("::1:8080").1, "write [::1]:8080");
        assert_eq!(refused("::").1, "write [::]:8787");
        let (error, hint) = refused("http://localhost:8080/");
        assert!(error.contains("not a http:// URL"), "{error}");
        assert_eq!(hint, "write --addr localhost:8080");
        let (error, hint) = refused("localhost:80800");
        assert!(error.contains("not a number from 0 to 65535"), "{error}");
        assert_eq!(hint, "e.g. localhost:8787");
        assert!(refused("localhost:http").0.contains("\"http\" is not a number"));
        assert!(refused("[nonsense]:80").0.contains("is not an IPv6 address"));
        assert!(refused("[::1:80").0.contains("no closing ]"));
        assert!(refused("").0.contains("is empty"));
    }

    #[test]
    fn names_must_be_host_names_and_mistyped_ips_are_not_names() {
        for text in [
            "127.0.0.300:80",
            "my host:80",
            "-bad-.example:80",
            "a..b:80",
            "host/x:80",
        ] {
            let (error, _) = refused(text);
            assert!(
                error.contains("neither an IP address nor a host name"),
                "{text}: {error}"
            );
        }
    }

    #[tokio::test]
    async fn localhost_binds_the_ipv4_loopback() {
        let listener = bind(&parse("localhost:0").expect("valid")).await.expect("binds");
        let local = listener.local_addr().expect("an address");
        assert_eq!(local.ip(), IpAddr::from([127, 0, 0, 1]));
        assert_ne!(local.port(), 0);
    }

    #[tokio::test]
    async fn a_port_in_use_is_a_clear_error() {
        let taken = bind(&parse("127.0.0.1:0").expect("valid")).await.expect("binds");
        let port = taken.local_addr().expect("an address").port();
        let error = bind(&parse(&format!("localhost:{port}")).expect("valid"))
            .await
            .expect_err("the port is taken");
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot listen on localhost:{port} (127.0.0.1:{port}): ")),
            "{error}"
        );
        assert_eq!(
            error.hint_text(),
            Some("is another process using the port? choose another with --addr")
        );
    }
}
