//! Slow clients against a fallback endpoint, for `serve`'s connection limits (issue 14, item 12):
//! many connections that send half a request line and stall, signed requests whose body drips a
//! byte at a time, and — while those are open — signed requests sent whole, whose answers are
//! checked and timed.
//!
//! Used by the test `crates/twiml-fallback-cli/tests/slow_clients.rs` and by the `slow-clients`
//! bin of `benches/slow-clients.sh`. Every socket is on the endpoint's address (127.0.0.1 in both),
//! their number is the caller's, and every wait ends by [`SlowClients::give_up_after`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use twiml_fallback::Channel;
use twiml_fallback::signature::{SIGNATURE_HEADER, compute_signature};
use twiml_fallback::twiml::{TargetChannel, validate};
use twiml_fallback::webhook::Params;

/// What a half-request-line connection sends before it stalls.
pub const HALF_A_REQUEST_LINE: &[u8] = b"POST /voice HTT";

/// How many connections are being opened at once (the rest wait their turn), so that a few
/// thousand do not overflow the endpoint's listen backlog.
const CONNECTING_AT_ONCE: usize = 128;

/// The scenario.
#[derive(Clone, Debug)]
pub struct SlowClients {
    /// The endpoint.
    pub addr: SocketAddr,
    /// The auth token it checks signatures with.
    pub token: String,
    /// Connections that send [`HALF_A_REQUEST_LINE`], then nothing.
    pub half_lines: usize,
    /// Signed requests whose head is sent whole and whose body then drips.
    pub drips: usize,
    /// The time between two dripped bytes.
    pub drip_every: Duration,
    /// Signed requests sent whole at once, while the slow connections are open.
    pub concurrency: usize,
    /// Signed requests to send at least, even when the slow connections close sooner.
    pub min_signed: usize,
    /// How long to wait for the slow connections to close before calling them held open.
    pub give_up_after: Duration,
}

/// What one dripping request got.
#[derive(Clone, Debug)]
pub struct Dripped {
    /// The answer's status, if one came.
    pub status: Option<u16>,
    /// From the end of the head to the answer.
    pub answered_after: Option<Duration>,
    /// From the end of the head to the close (`None`: still open at give-up).
    pub open_for: Option<Duration>,
    /// Body bytes sent before the answer came or the connection closed.
    pub bytes_sent: usize,
}

/// One signed request sent whole.
#[derive(Clone, Debug)]
pub struct Signed {
    /// From connecting to the whole answer.
    pub latency: Duration,
    /// Whether the slow connections were all still connected and open when it was sent.
    pub during_slow: bool,
    /// What was wrong with the answer, if anything.
    pub problem: Option<String>,
}

/// What happened.
#[derive(Clone, Debug, Default)]
pub struct SlowReport {
    /// How long each half-request-line connection stayed open after its bytes (`None`: still open
    /// at give-up).
    pub half_lines: Vec<Option<Duration>>,
    /// Each dripping request.
    pub drips: Vec<Dripped>,
    /// Each signed request.
    pub signed: Vec<Signed>,
    /// Slow connections that could not even connect, with why.
    pub connect_errors: Vec<String>,
}

/// Runs the scenario: opens every slow connection, then sends signed requests until every slow
/// one is closed (at least [`SlowClients::min_signed`]), or until the give-up time.
pub async fn run(scenario: &SlowClients) -> SlowReport {
    let started = Instant::now();
    let give_up = started + scenario.give_up_after;
    let connecting = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    // One message per slow connection once it has sent its first bytes (or failed to connect).
    let (connected, mut connections) = mpsc::unbounded_channel::<Result<(), String>>();

    let mut half_lines = JoinSet::new();
    for _ in 0..scenario.half_lines {
        let (addr, connecting, connected) = (scenario.addr, Arc::clone(&connecting), connected.clone());
        half_lines.spawn(async move {
            let stream = open(addr, HALF_A_REQUEST_LINE, &connecting).await;
            let (stream, sent) = match stream {
                Ok(opened) => opened,
                Err(error) => {
                    let _ = connected.send(Err(error));
                    return None;
                }
            };
            let _ = connected.send(Ok(()));
            Some(closed_after(stream, sent, give_up).await)
        });
    }

    let mut drips = JoinSet::new();
    for n in 0..scenario.drips {
        let (addr, connecting, connected) = (scenario.addr, Arc::clone(&connecting), connected.clone());
        let (head, body) = signed_request(scenario.addr, &scenario.token, &format!("CA{n:032}"), false);
        let drip_every = scenario.drip_every;
        drips.spawn(async move {
            match open(addr, head.as_bytes(), &connecting).await {
                Ok((stream, sent)) => {
                    let _ = connected.send(Ok(()));
                    Some(drip(stream, sent, body.as_bytes(), drip_every, give_up).await)
                }
                Err(error) => {
                    let _ = connected.send(Err(error));
                    None
                }
            }
        });
    }
    drop(connected);

    let mut report = SlowReport::default();
    for _ in 0..scenario.half_lines + scenario.drips {
        match connections.recv().await {
            Some(Ok(())) => {}
            Some(Err(error)) => report.connect_errors.push(error),
            None => break,
        }
    }

    // Every slow connection has sent its bytes: signed requests from now on, until they close.
    let slow_open = Arc::new(AtomicBool::new(true));
    let mut signers = JoinSet::new();
    for worker in 0..scenario.concurrency.max(1) {
        let (scenario, slow_open) = (scenario.clone(), Arc::clone(&slow_open));
        signers.spawn(async move {
            let mut signed = Vec::new();
            let mut n = 0;
            while Instant::now() < give_up
                && (slow_open.load(Ordering::Relaxed)
                    || signed.len() * scenario.concurrency.max(1) < scenario.min_signed)
            {
                let during_slow = slow_open.load(Ordering::Relaxed);
                let sid = format!("CA{worker:016}{n:016}");
                n += 1;
                let (latency, problem) = signed_whole(&scenario, &sid).await;
                signed.push(Signed {
                    latency,
                    during_slow,
                    problem,
                });
            }
            signed
        });
    }

    report.half_lines = half_lines.join_all().await.into_iter().flatten().collect();
    report.drips = drips.join_all().await.into_iter().flatten().collect();
    slow_open.store(false, Ordering::Relaxed);
    report.signed = signers.join_all().await.into_iter().flatten().collect();
    report
}

/// Connects (one of [`CONNECTING_AT_ONCE`]) and writes `first`; the stream and when it was sent.
async fn open(addr: SocketAddr, first: &[u8], connecting: &Semaphore) -> Result<(TcpStream, Instant), String> {
    let _turn = connecting.acquire().await.map_err(|error| error.to_string())?;
    let mut stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out after 10 s".to_owned())?
        .map_err(|error| format!("connect: {error}"))?;
    stream
        .write_all(first)
        .await
        .map_err(|error| format!("write: {error}"))?;
    Ok((stream, Instant::now()))
}

/// Reads until the endpoint closes the connection; how long after `since`, or `None` at `give_up`.
async fn closed_after(mut stream: TcpStream, since: Instant, give_up: Instant) -> Option<Duration> {
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(give_up, stream.read(&mut buffer)).await {
            Err(_) => return None,
            // A close with unread bytes is a reset: closed all the same.
            Ok(Ok(0) | Err(_)) => return Some(since.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Drips `body` a byte every `every` while reading the answer, until the connection closes.
async fn drip(stream: TcpStream, since: Instant, body: &[u8], every: Duration, give_up: Instant) -> Dripped {
    let (mut reader, mut writer) = stream.into_split();
    let mut ticks = tokio::time::interval_at(since + every, every);
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let mut dripped = Dripped {
        status: None,
        answered_after: None,
        open_for: None,
        bytes_sent: 0,
    };
    let mut writing = true;
    loop {
        tokio::select! {
            read = reader.read(&mut buffer) => match read {
                Ok(0) | Err(_) => {
                    dripped.open_for = Some(since.elapsed());
                    break;
                }
                Ok(n) => {
                    received.extend_from_slice(&buffer[..n]);
                    if dripped.answered_after.is_none() && received.windows(4).any(|window| window == b"\r\n\r\n") {
                        dripped.answered_after = Some(since.elapsed());
                        dripped.status = status_of(&received);
                        writing = false;
                    }
                }
            },
            _ = ticks.tick(), if writing && dripped.bytes_sent < body.len() => {
                let byte = &body[dripped.bytes_sent..=dripped.bytes_sent];
                match writer.write_all(byte).await {
                    Ok(()) => dripped.bytes_sent += 1,
                    // Closed by the endpoint: the read says when.
                    Err(_) => writing = false,
                }
            }
            () = tokio::time::sleep_until(give_up) => break,
        }
    }
    dripped
}

/// A signed request sent whole on a new connection; its latency, and what was wrong, if anything.
async fn signed_whole(scenario: &SlowClients, sid: &str) -> (Duration, Option<String>) {
    let (head, body) = signed_request(scenario.addr, &scenario.token, sid, true);
    let sent = Instant::now();
    let exchange = async {
        let mut stream = TcpStream::connect(scenario.addr)
            .await
            .map_err(|error| format!("connect: {error}"))?;
        stream
            .write_all(format!("{head}{body}").as_bytes())
            .await
            .map_err(|error| format!("write: {error}"))?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|error| format!("read: {error}"))?;
        Ok::<_, String>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), exchange).await;
    let latency = sent.elapsed();
    let problem = match answer {
        Err(_) => Some("no answer within 10 s".to_owned()),
        Ok(Err(error)) => Some(error),
        Ok(Ok(answer)) => check_twiml_answer(&answer).err(),
    };
    (latency, problem)
}

/// The head (ending in its blank line) and form body of a signed Twilio voice fallback request to
/// `/voice`; `close` asks for the connection to close after the answer.
pub fn signed_request(addr: SocketAddr, token: &str, sid: &str, close: bool) -> (String, String) {
    let body = Params::from_pairs([
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("CallSid", sid),
        ("CallStatus", "ringing"),
        ("From", "+14155550100"),
        ("To", "+14155550177"),
        ("ErrorCode", "11200"),
        ("ErrorUrl", "https://app.example.com/voice"),
    ])
    .to_form();
    let signature = compute_signature(
        token,
        &format!("http://{addr}/voice"),
        &Params::from_form(body.as_bytes()),
    );
    let connection = if close { "Connection: close\r\n" } else { "" };
    let head = format!(
        "POST /voice HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         {SIGNATURE_HEADER}: {signature}\r\nContent-Length: {}\r\n{connection}\r\n",
        body.len()
    );
    (head, body)
}

/// The status of a raw HTTP/1.1 answer.
pub fn status_of(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|&byte| byte == b'\n').next()?;
    std::str::from_utf8(line).ok()?.split_whitespace().nth(1)?.parse().ok()
}

/// Whether a raw HTTP/1.1 answer is 200 with valid voice TwiML; what is wrong when not.
pub fn check_twiml_answer(answer: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP answer: {text:?}"))?;
    if status_of(answer) != Some(200) {
        return Err(format!("expected 200: {text}"));
    }
    let xml = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("content-type:") && line.contains("xml")
    });
    if !xml {
        return Err(format!("Content-Type is not XML: {head}"));
    }
    let report = validate(body.as_bytes(), TargetChannel::from(Some(Channel::Voice)));
    if !report.is_valid() {
        return Err(format!(
            "invalid TwiML ({:?}): {body}",
            report.first_error().map(|error| error.message.as_str())
        ));
    }
    Ok(())
}

/// This process's soft limit on open files (Linux's `/proc/self/limits`); `None` when unlimited
/// or unknown.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The value at `fraction` (0.5 for the median) of `values`, sorted in place.
pub fn percentile(values: &mut [Duration], fraction: f64) -> Option<Duration> {
    values.sort_unstable();
    let last = values.len().checked_sub(1)?;
    // Rounded to the nearest rank; `fraction` is in [0, 1], so the index is within `last`.
    let index = ((last as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
    values.get(index.min(last)).copied()
}

impl SlowReport {
    /// Every broken expectation, given the endpoint's timeouts and a margin for scheduling: a
    /// signed answer that was wrong, a half-request-line connection open past the header timeout,
    /// a dripping request not answered 403 by the body timeout or left open after.
    pub fn problems(&self, header_timeout: Duration, body_timeout: Duration, margin: Duration) -> Vec<String> {
        let mut problems: Vec<String> = self
            .connect_errors
            .iter()
            .map(|error| format!("a slow connection could not connect: {error}"))
            .collect();
        let held = self.half_lines.iter().filter(|open| open.is_none()).count();
        if held > 0 {
            problems.push(format!(
                "{held} half-request-line connections were still open at give-up"
            ));
        }
        let late = self
            .half_lines
            .iter()
            .flatten()
            .filter(|open| **open > header_timeout + margin)
            .count();
        if late > 0 {
            problems.push(format!(
                "{late} half-request-line connections stayed open past the header timeout ({header_timeout:?}) + {margin:?}"
            ));
        }
        for dripped in &self.drips {
            if dripped.status != Some(403) {
                problems.push(format!("a dripping body got {:?}, not 403", dripped.status));
            } else if dripped.answered_after.is_none_or(|after| after > body_timeout + margin) {
                problems.push(format!(
                    "a dripping body was answered after {:?}, past the body timeout ({body_timeout:?}) + {margin:?}",
                    dripped.answered_after
                ));
            }
            if dripped.open_for.is_none_or(|open| open > body_timeout + margin) {
                problems.push(format!(
                    "a dripping body's connection stayed open {:?}, past the body timeout ({body_timeout:?}) + {margin:?}",
                    dripped.open_for
                ));
            }
        }
        if !self.signed.iter().any(|signed| signed.during_slow) {
            problems.push("no signed request was sent while the slow connections were open".to_owned());
        }
        problems.extend(
            self.signed
                .iter()
                .filter_map(|signed| signed.problem.as_ref())
                .map(|problem| format!("a signed request: {problem}")),
        );
        problems
    }

    /// The figures, one per line: signed requests' latency (p50, p99, max, how many over 1 s),
    /// and how long the slow connections stayed open.
    pub fn summary(&self) -> String {
        let ms = |value: Option<Duration>| {
            value.map_or("-".to_owned(), |value| {
                format!("{:.1} ms", value.as_secs_f64() * 1000.0)
            })
        };
        let mut latencies: Vec<Duration> = self.signed.iter().map(|signed| signed.latency).collect();
        let during = self.signed.iter().filter(|signed| signed.during_slow).count();
        let wrong = self.signed.iter().filter(|signed| signed.problem.is_some()).count();
        let over_a_second = latencies
            .iter()
            .filter(|latency| **latency > Duration::from_secs(1))
            .count();
        let mut half_lines: Vec<Duration> = self.half_lines.iter().flatten().copied().collect();
        let held = self.half_lines.len() - half_lines.len();
        let mut answered: Vec<Duration> = self.drips.iter().filter_map(|dripped| dripped.answered_after).collect();
        let mut drips_open: Vec<Duration> = self.drips.iter().filter_map(|dripped| dripped.open_for).collect();
        let forbidden = self.drips.iter().filter(|dripped| dripped.status == Some(403)).count();
        let bytes = self.drips.iter().map(|dripped| dripped.bytes_sent).max().unwrap_or(0);
        format!(
            "signed requests: {} ({during} while the slow connections were open), {wrong} wrong; latency p50 {}, p99 {}, max {}; {over_a_second} over 1 s\n\
             half-request-line connections: {}, open after their bytes p50 {}, max {}; {held} still open at give-up\n\
             dripping bodies: {}, {forbidden} answered 403, after p50 {}, max {}; connections open p50 {}, max {}; at most {bytes} body bytes sent",
            self.signed.len(),
            ms(percentile(&mut latencies, 0.5)),
            ms(percentile(&mut latencies, 0.99)),
            ms(latencies.last().copied()),
            self.half_lines.len(),
            ms(percentile(&mut half_lines, 0.5)),
            ms(half_lines.last().copied()),
            self.drips.len(),
            ms(percentile(&mut answered, 0.5)),
            ms(answered.last().copied()),
            ms(percentile(&mut drips_open, 0.5)),
            ms(drips_open.last().copied()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let mut values: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut values, 0.5), Some(Duration::from_millis(51)));
        assert_eq!(percentile(&mut values, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&mut values, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&mut [], 0.5), None);
    }

    #[test]
    fn raw_answers_are_checked_for_status_type_and_twiml() {
        let good = b"HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\n\r\n<Response><Say>Hi</Say></Response>";
        assert_eq!(check_twiml_answer(good), Ok(()));
        let forbidden = b"HTTP/1.1 403 Forbidden\r\ncontent-type: text/xml\r\n\r\n<Response/>";
        assert_eq!(status_of(forbidden), Some(403));
        assert!(check_twiml_answer(forbidden).is_err());
        let plain = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n<Response/>";
        assert!(check_twiml_answer(plain).is_err());
        let invalid = b"HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\n\r\n<response/>";
        assert!(check_twiml_answer(invalid).is_err());
    }

    #[test]
    fn a_report_names_every_broken_expectation() {
        let second = Duration::from_secs(1);
        let report = SlowReport {
            half_lines: vec![Some(second), None, Some(second * 9)],
            drips: vec![Dripped {
                status: Some(200),
                answered_after: Some(second),
                open_for: None,
                bytes_sent: 3,
            }],
            signed: vec![Signed {
                latency: second,
                during_slow: false,
                problem: Some("expected 200".to_owned()),
            }],
            connect_errors: Vec::new(),
        };
        let problems = report.problems(second, second * 2, second);
        assert_eq!(problems.len(), 6, "{problems:#?}");
        let fine = SlowReport {
            half_lines: vec![Some(second)],
            drips: vec![Dripped {
                status: Some(403),
                answered_after: Some(second * 2),
                open_for: Some(second * 2),
                bytes_sent: 2,
            }],
            signed: vec![Signed {
                latency: second,
                during_slow: true,
                problem: None,
            }],
            connect_errors: Vec::new(),
        };
        assert_eq!(fine.problems(second, second * 2, second), Vec::<String>::new());
    }
}
