//! A tiny SMTP server for the CLI crate's tests: plain text on 127.0.0.1, EHLO with `AUTH PLAIN
//! LOGIN`, one message per `MAIL`/`RCPT`/`DATA`, each kept whole (dot-unstuffed) with the
//! credentials it logged in with. What it answers at the end of `DATA` is set by [`Behaviour`]:
//! accept, refuse with a code (4xx transient, 5xx permanent), or never answer (a hanging relay).
//!
//! Used by the unit tests of `serve`'s SMTP room (`src/serve/smtp/tests.rs`) and the CLI tests
//! (`tests/cli.rs`), both through `#[path]`.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

/// What the fake answers once a message's data has arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// `250`: accepted.
    Accept,
    /// This code (e.g. 451 or 550), with a reason.
    Refuse(u16),
    /// Nothing, ever.
    Hang,
}

/// One message as it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// `MAIL FROM:<…>`.
    pub from: String,
    /// Each `RCPT TO:<…>`.
    pub to: Vec<String>,
    /// The data, dot-unstuffed, lines joined with CRLF.
    pub data: String,
    /// `user:password` of an `AUTH PLAIN`, when it logged in.
    pub auth: Option<String>,
}

#[derive(Default)]
struct State {
    behaviour: Option<Behaviour>,
    received: Vec<Received>,
    /// Messages whose data arrived, whatever was answered.
    attempts: usize,
}

/// A running fake; it stops with the runtime it was started on.
#[derive(Clone)]
pub struct FakeSmtp {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeSmtp {
    /// Starts one on a free port of 127.0.0.1, on the current tokio runtime.
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake SMTP server");
        let addr = listener.local_addr().expect("its address");
        let state = Arc::new(Mutex::new(State {
            behaviour: Some(behaviour),
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, Arc::clone(&shared)));
            }
        });
        FakeSmtp { addr, state }
    }

    /// `smtp://127.0.0.1:PORT` (plain text: a loopback relay).
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// `smtp://USER@127.0.0.1:PORT`.
    pub fn url_as(&self, user: &str) -> String {
        format!("smtp://{user}@{}", self.addr)
    }

    /// What it answers from now on.
    pub fn set(&self, behaviour: Behaviour) {
        self.state.lock().expect("state").behaviour = Some(behaviour);
    }

    /// The messages it accepted.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("state").received.clone()
    }

    /// How many messages' data arrived, accepted or not.
    pub fn attempts(&self) -> usize {
        self.state.lock().expect("state").attempts
    }
}

async fn session(stream: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    if write.write_all(b"220 fake.test ESMTP\r\n").await.is_err() {
        return;
    }
    let mut auth: Option<String> = None;
    let mut from = String::new();
    let mut to: Vec<String> = Vec::new();
    let mut login_user: Option<String> = None;
    let mut login_step = 0;
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let reply: String = if login_step == 1 {
            login_user = decode_base64(&line);
            login_step = 2;
            "334 UGFzc3dvcmQ6\r\n".to_owned()
        } else if login_step == 2 {
            auth = Some(format!(
                "{}:{}",
                login_user.take().unwrap_or_default(),
                decode_base64(&line).unwrap_or_default()
            ));
            login_step = 0;
            "235 2.7.0 ok\r\n".to_owned()
        } else if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-fake.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n".to_owned()
        } else if let Some(rest) = upper.strip_prefix("AUTH PLAIN") {
            let encoded = line[line.len() - rest.len()..].trim();
            let decoded = decode_base64(encoded).unwrap_or_default();
            let mut parts = decoded.split('\0').skip(1);
            auth = Some(format!("{}:{}", parts.next().unwrap_or(""), parts.next().unwrap_or("")));
            "235 2.7.0 ok\r\n".to_owned()
        } else if upper.starts_with("AUTH LOGIN") {
            login_step = 1;
            "334 VXNlcm5hbWU6\r\n".to_owned()
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&line);
            to.clear();
            "250 2.1.0 ok\r\n".to_owned()
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&line));
            "250 2.1.5 ok\r\n".to_owned()
        } else if upper == "DATA" {
            if write.write_all(b"354 go ahead\r\n").await.is_err() {
                return;
            }
            let mut data: Vec<String> = Vec::new();
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) if line == "." => break,
                    Ok(Some(line)) => data.push(line.strip_prefix('.').map_or(line.clone(), str::to_owned)),
                    _ => return,
                }
            }
            let behaviour = {
                let mut state = state.lock().expect("state");
                state.attempts += 1;
                let behaviour = state.behaviour.unwrap_or(Behaviour::Accept);
                if behaviour == Behaviour::Accept {
                    state.received.push(Received {
                        from: from.clone(),
                        to: to.clone(),
                        data: data.join("\r\n"),
                        auth: auth.clone(),
                    });
                }
                behaviour
            };
            match behaviour {
                Behaviour::Accept => "250 2.0.0 queued\r\n".to_owned(),
                Behaviour::Refuse(code) => format!("{code} {}.0.0 refused by the fake\r\n", code / 100),
                Behaviour::Hang => {
                    std::future::pending::<()>().await;
                    return;
                }
            }
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
            return;
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 ok\r\n".to_owned()
        } else {
            "502 5.5.2 not implemented\r\n".to_owned()
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The address in `MAIL FROM:<a@b> SIZE=…` or `RCPT TO:<a@b>`.
fn address(line: &str) -> String {
    match (line.find('<'), line.find('>')) {
        (Some(start), Some(end)) if start < end => line[start + 1..end].to_owned(),
        _ => line.split_once(':').map_or("", |(_, rest)| rest.trim()).to_owned(),
    }
}

/// Standard base64 (with padding), as text.
fn decode_base64(text: &str) -> Option<String> {
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.trim().bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(u8::try_from((bits >> count) & 0xff).unwrap_or(0));
        }
    }
    String::from_utf8(out).ok()
}
