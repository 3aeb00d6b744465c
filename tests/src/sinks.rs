//! Local stand-ins for the places incidents are told: a JSON endpoint (a Slack-style webhook,
//! PagerDuty's Events API v2) that can be made to fail, and an SMTP server that keeps every
//! message it is given. The Worker's email goes through its `send_email` binding, which under
//! `wrangler dev` writes each message to a file and logs its path: [`emails_in_log`] reads them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use axum::routing::post;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One JSON request a [`JsonSink`] received, and what it answered.
#[derive(Clone, Debug)]
pub struct Received {
    /// The body.
    pub json: serde_json::Value,
    /// The status it was answered with.
    pub status: u16,
}

struct SinkState {
    received: Mutex<Vec<Received>>,
    /// Answer this many requests with 500 before answering `ok`.
    fail: AtomicUsize,
    ok: StatusCode,
}

/// A JSON endpoint at `path` answering `ok` (200 for a webhook, 202 for PagerDuty), or 500 while
/// told to fail.
#[derive(Clone)]
pub struct JsonSink {
    /// Its URL.
    pub url: String,
    state: Arc<SinkState>,
}

impl JsonSink {
    /// Starts one on a free local port.
    pub async fn start(path: &str, ok: StatusCode) -> Self {
        let state = Arc::new(SinkState {
            received: Mutex::new(Vec::new()),
            fail: AtomicUsize::new(0),
            ok,
        });
        let router = Router::new().route(path, post(receive)).with_state(Arc::clone(&state));
        let addr = listen(router).await;
        Self {
            url: format!("http://{addr}{path}"),
            state,
        }
    }

    /// Answers the next `times` requests with 500.
    pub fn fail_next(&self, times: usize) {
        self.state.fail.store(times, Ordering::SeqCst);
    }

    /// Every request so far, in order (failed ones too).
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().map(|all| all.clone()).unwrap_or_default()
    }

    /// The bodies it accepted.
    pub fn accepted(&self) -> Vec<serde_json::Value> {
        self.received()
            .into_iter()
            .filter(|received| received.status < 300)
            .map(|received| received.json)
            .collect()
    }
}

async fn listen(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

async fn receive(State(state): State<Arc<SinkState>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let json_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let failing = state
        .fail
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
        .is_ok();
    let status = match (json_type, failing) {
        (false, _) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        (true, true) => StatusCode::INTERNAL_SERVER_ERROR,
        (true, false) => state.ok,
    };
    if let Ok(mut received) = state.received.lock() {
        received.push(Received {
            json,
            status: status.as_u16(),
        });
    }
    status
}

/// A message an [`SmtpServer`] accepted.
#[derive(Clone, Debug)]
pub struct Mail {
    /// `MAIL FROM`.
    pub from: String,
    /// Each `RCPT TO`.
    pub to: Vec<String>,
    /// The message as sent (headers and body, CRLF line ends, dot-unstuffed).
    pub data: String,
}

/// An SMTP server (RFC 5321's plain-text subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT)
/// that accepts every message and keeps it.
#[derive(Clone)]
pub struct SmtpServer {
    /// `smtp://127.0.0.1:PORT`: a loopback relay, which the endpoint speaks to without TLS.
    pub url: String,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpServer {
    /// Starts one on a free local port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let kept = Arc::clone(&mails);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let kept = Arc::clone(&kept);
                tokio::spawn(async move {
                    let _ = session(stream, kept).await;
                });
            }
        });
        Self {
            url: format!("smtp://{addr}"),
            mails,
        }
    }

    /// Every message accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().map(|mails| mails.clone()).unwrap_or_default()
    }
}

async fn session(stream: tokio::net::TcpStream, kept: Arc<Mutex<Vec<Mail>>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 e2e-smtp ESMTP ready\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-e2e-smtp\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            b"250 ok\r\n"
        } else if upper.starts_with("RSET") {
            from.clear();
            to.clear();
            b"250 ok\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&command["MAIL FROM:".len()..]);
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&command["RCPT TO:".len()..]));
            b"250 ok\r\n"
        } else if upper == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(
                    line.strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line),
                );
            }
            if let Ok(mut mails) = kept.lock() {
                mails.push(Mail {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                });
            }
            b"250 queued\r\n"
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

/// `<a@example.com> SIZE=1` → `a@example.com`.
fn address(argument: &str) -> String {
    let argument = argument.trim();
    let inner = argument
        .strip_prefix('<')
        .and_then(|rest| rest.split_once('>'))
        .map_or(argument, |(inner, _)| inner);
    inner.to_owned()
}

/// The messages the Worker's `send_email` binding wrote under `wrangler dev`, from the `Email:
/// PATH.eml` lines of its log (read while it runs: wrangler deletes them when it stops).
pub fn emails_in_log(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("Email: "))
        .filter(|path| path.ends_with(".eml"))
        .filter_map(|path| std::fs::read_to_string(path.trim()).ok())
        .collect()
}

/// The subject of a message as the endpoint writes it (`=?UTF-8?B?…?=`), decoded.
pub fn subject_of(mime: &str) -> Option<String> {
    let (head, _) = mime.split_once("\r\n\r\n").or_else(|| mime.split_once("\n\n"))?;
    let encoded = head.lines().find_map(|line| line.strip_prefix("Subject: "))?.trim();
    match encoded
        .strip_prefix("=?UTF-8?B?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(base64) => decode_base64(base64).and_then(|bytes| String::from_utf8(bytes).ok()),
        None => Some(encoded.to_owned()),
    }
}

/// The body of a message as the endpoint writes it (base64), decoded.
pub fn text_of(mime: &str) -> Option<String> {
    let (_, body) = mime.split_once("\r\n\r\n").or_else(|| mime.split_once("\n\n"))?;
    let joined: String = body.split_whitespace().collect();
    decode_base64(&joined).and_then(|bytes| String::from_utf8(bytes).ok())
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let value = |byte: u8| -> Option<u32> {
        Some(match byte {
            b'A'..=b'Z' => u32::from(byte - b'A'),
            b'a'..=b'z' => u32::from(byte - b'a') + 26,
            b'0'..=b'9' => u32::from(byte - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (index, byte) in chunk.iter().enumerate() {
            acc |= value(*byte)? << (18 - 6 * index);
        }
        let take = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + take]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_padded_and_unpadded_text() {
        assert_eq!(decode_base64("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64("aGVsbG8gd29ybGQ").as_deref(), Some(&b"hello world"[..]));
        assert_eq!(decode_base64("not base64!"), None);
    }

    #[test]
    fn an_smtp_server_keeps_what_it_is_given() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let server = SmtpServer::start().await;
            let addr = server.url.trim_start_matches("smtp://").to_owned();
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let _greeting = lines.next_line().await.expect("greeting");
            for command in [
                "EHLO test\r\n",
                "MAIL FROM:<a@example.com>\r\n",
                "RCPT TO:<b@example.com>\r\n",
                "DATA\r\n",
                "Subject: hi\r\n\r\n..dotted\r\nbody\r\n.\r\n",
                "QUIT\r\n",
            ] {
                write.write_all(command.as_bytes()).await.expect("write");
            }
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("221") {
                    break;
                }
            }
            let mails = server.mails();
            assert_eq!(mails.len(), 1);
            assert_eq!(mails[0].from, "a@example.com");
            assert_eq!(mails[0].to, ["b@example.com"]);
            assert_eq!(mails[0].data, "Subject: hi\r\n\r\n.dotted\r\nbody\r\n");
        });
    }
}
