//! `twiml-fallback serve`'s connection limits against slow and idle clients (issue 14, item 12):
//! the header, body and idle timeouts, the connection limit, and thousands of slow connections
//! while signed requests keep being answered. The real binary; every socket on 127.0.0.1.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use twiml_fallback_e2e::slow_clients::{SlowClients, open_file_limit, run, signed_request, status_of};

const BIN: &str = env!("CARGO_BIN_EXE_twiml-fallback");
const TOKEN: &str = "slow-t0ken";

/// The load test has the machine to itself; the others may run together.
static LOAD: RwLock<()> = RwLock::new(());

/// What scheduling on a busy machine may add to a deadline.
const MARGIN: Duration = Duration::from_secs(2);

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` on a free port; the guard, its address and its log file.
fn start_serve(extra: &[&str], token: Option<&str>, rust_log: &str) -> (KillOnDrop, SocketAddr, PathBuf) {
    let dir = std::env::temp_dir().join(format!("twiml-fallback-slow-clients-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let log = dir.join(format!("serve-{nanos}.log"));
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--addr", "127.0.0.1:0"])
        // Its own inbox: never the user's default one, and one serve per inbox.
        .arg("--inbox")
        .arg(dir.join(format!("inbox-{nanos}.sqlite3")))
        .args(extra)
        .env_remove("TWILIO_AUTH_TOKEN")
        .env_remove("TWILIO_AUTH_TOKEN_SECONDARY")
        .env("RUST_LOG", rust_log);
    if let Some(token) = token {
        command.env("TWILIO_AUTH_TOKEN", token);
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start serve");
    let guard = KillOnDrop(child);
    match twiml_fallback_e2e::serve_address(&log, Duration::from_secs(10)) {
        Some(addr) => (guard, addr, log),
        None => panic!(
            "serve did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        ),
    }
}

/// Waits up to 5 s for a log line containing every one of `needles`; the line.
fn log_line(log: &Path, needles: &[&str]) -> String {
    for _ in 0..200 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .find(|line| needles.iter().all(|needle| line.contains(needle)))
        {
            return line.to_owned();
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!(
        "no log line with {needles:?}:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).expect("connect")
}

/// Reads until serve closes the connection (a reset counts); how long that took, with what was
/// read, or `None` if it was still open after `give_up`.
fn closed_after(stream: &mut TcpStream, give_up: Duration) -> (Option<Duration>, Vec<u8>) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = give_up.saturating_sub(started.elapsed());
        if left.is_zero() {
            return (None, received);
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buffer) {
            Ok(0) => return (Some(started.elapsed()), received),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (None, received);
            }
            Err(_) => return (Some(started.elapsed()), received),
        }
    }
}

/// Sends `GET /healthz` on a keep-alive connection and reads its whole answer.
fn health_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("write");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    while !received.ends_with(b"\r\n\r\nok\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

#[test]
fn serve_closes_a_connection_with_half_a_request_line_or_a_trickling_head_at_the_header_timeout() {
    let _shared = LOAD.read().unwrap_or_else(PoisonError::into_inner);
    let timeout = Duration::from_millis(1000);
    let (_serve, addr, log) = start_serve(&["--header-timeout-ms", "1000"], None, "info");

    let mut half = connect(addr);
    half.write_all(b"POST /voice HTT").expect("write");
    let mut silent = connect(addr);
    // A head that trickles a byte every 200 ms: each byte must not move the deadline.
    let mut trickle = connect(addr);
    let mut writer = trickle.try_clone().expect("clone");
    let trickling = std::thread::spawn(move || {
        for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: abcdefghijklmnopqrstuvwxyz\r\n\r\n" {
            std::thread::sleep(Duration::from_millis(200));
            if writer.write_all(&[*byte]).is_err() {
                return;
            }
        }
    });

    // Read all three at once, each timed from now (they connected a moment ago).
    let closes: Vec<_> = std::thread::scope(|scope| {
        [
            ("half a request line", &mut half),
            ("nothing", &mut silent),
            ("a trickling head", &mut trickle),
        ]
        .map(|(name, stream)| (name, scope.spawn(move || closed_after(stream, timeout + MARGIN * 2))))
        .map(|(name, reader)| (name, reader.join().expect("reader")))
        .into()
    });
    for (name, (closed, received)) in closes {
        let closed = closed.unwrap_or_else(|| panic!("{name}: still open {:?} after the header timeout", MARGIN * 2));
        assert!(closed <= timeout + MARGIN, "{name}: closed only after {closed:?}");
        assert!(
            closed >= timeout - Duration::from_millis(100),
            "{name}: closed after {closed:?}, before its timeout"
        );
        assert!(
            received.is_empty(),
            "{name}: no answer to an incomplete head: {received:?}"
        );
    }
    trickling.join().expect("the trickling writer");
    let line = log_line(&log, &["limit=\"header-timeout\""]);
    assert!(line.contains("WARN") && line.contains("--header-timeout-ms"), "{line}");

    // A whole request is answered as ever.
    let mut whole = connect(addr);
    assert!(health_on(&mut whole).starts_with("HTTP/1.1 200"));
}

#[test]
fn serve_answers_a_body_dripping_a_byte_a_second_at_the_body_timeout_as_an_unreadable_body() {
    let _shared = LOAD.read().unwrap_or_else(PoisonError::into_inner);
    let timeout = Duration::from_millis(2000);
    for (token, status, answer) in [(Some(TOKEN), 403, ""), (None, 200, "<Response/>")] {
        let (_serve, addr, log) = start_serve(&["--body-timeout-ms", "2000"], token, "info");
        let (head, body) = signed_request(addr, TOKEN, "CA00000000000000000000000000000001", false);
        let mut stream = connect(addr);
        stream.write_all(head.as_bytes()).expect("write the head");
        let mut writer = stream.try_clone().expect("clone");
        let dripping = std::thread::spawn(move || {
            let mut sent = 0;
            for byte in body.bytes() {
                std::thread::sleep(Duration::from_secs(1));
                if writer.write_all(&[byte]).is_err() {
                    break;
                }
                sent += 1;
            }
            sent
        });
        let (closed, received) = closed_after(&mut stream, timeout + MARGIN * 2);
        let answer_text = String::from_utf8_lossy(&received).into_owned();
        let closed = closed.unwrap_or_else(|| panic!("token {token:?}: still open; got {answer_text:?}"));
        assert!(closed <= timeout + MARGIN, "token {token:?}: closed after {closed:?}");
        assert!(
            closed >= timeout - Duration::from_millis(100),
            "token {token:?}: answered after {closed:?}, before the body timeout"
        );
        assert_eq!(status_of(&received), Some(status), "token {token:?}: {answer_text}");
        assert!(answer_text.ends_with(answer), "token {token:?}: {answer_text}");
        let sent = dripping.join().expect("the dripping writer");
        assert!(sent < 10, "token {token:?}: {sent} body bytes were taken, one a second");
        let line = log_line(&log, &["limit=\"body-timeout\""]);
        assert!(line.contains("--body-timeout-ms"), "{line}");
        if token.is_some() {
            log_line(&log, &["forbidden", "signature=unreadable-body"]);
        }
    }
}

#[test]
fn serve_closes_an_idle_keep_alive_connection_at_the_idle_timeout_not_the_header_timeout() {
    let _shared = LOAD.read().unwrap_or_else(PoisonError::into_inner);
    let idle = Duration::from_millis(2000);
    let (_serve, addr, log) = start_serve(
        &["--header-timeout-ms", "500", "--idle-timeout-ms", "2000"],
        None,
        "info,twiml_fallback::serve::connections=debug",
    );
    let mut stream = connect(addr);
    assert!(health_on(&mut stream).starts_with("HTTP/1.1 200"));
    // Idle for twice the header timeout: the connection is still there for the next request.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        health_on(&mut stream).starts_with("HTTP/1.1 200"),
        "a keep-alive connection idle past the header timeout still serves"
    );
    let (closed, received) = closed_after(&mut stream, idle + MARGIN * 2);
    let closed = closed.unwrap_or_else(|| panic!("still open {:?} after the idle timeout", MARGIN * 2));
    assert!(closed <= idle + MARGIN, "closed after {closed:?}");
    assert!(
        closed >= idle - Duration::from_millis(100),
        "closed after {closed:?}, before the idle timeout"
    );
    assert!(received.is_empty(), "{received:?}");
    let line = log_line(&log, &["limit=\"idle-timeout\""]);
    assert!(line.contains("DEBUG") && line.contains("--idle-timeout-ms"), "{line}");
}

#[test]
fn serve_closes_connections_over_max_connections_after_a_short_wait_and_logs_it() {
    let _shared = LOAD.read().unwrap_or_else(PoisonError::into_inner);
    let (_serve, addr, log) = start_serve(
        &[
            "--max-connections",
            "2",
            "--header-timeout-ms",
            "10000",
            "--idle-timeout-ms",
            "10000",
        ],
        None,
        "info",
    );
    // Two keep-alive connections hold both slots.
    let mut first = connect(addr);
    assert!(health_on(&mut first).starts_with("HTTP/1.1 200"));
    let mut second = connect(addr);
    assert!(health_on(&mut second).starts_with("HTTP/1.1 200"));

    // A third waits for a slot, none frees: closed without an answer.
    let mut over = connect(addr);
    over.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("write");
    let (closed, received) = closed_after(&mut over, MARGIN * 3);
    let closed = closed.expect("a connection over the limit is closed");
    assert!(received.is_empty(), "over the limit, no answer: {received:?}");
    assert!(closed <= Duration::from_millis(500) + MARGIN, "closed after {closed:?}");
    let line = log_line(&log, &["limit=\"max-connections\""]);
    assert!(
        line.contains("WARN") && line.contains("--max-connections") && line.contains("max_connections=2"),
        "{line}"
    );

    // One whose slot frees while it waits is served.
    let mut late = connect(addr);
    late.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("write");
    std::thread::sleep(Duration::from_millis(100));
    drop(first);
    let (closed, received) = closed_after(&mut late, MARGIN * 3);
    assert!(closed.is_some(), "Connection: close");
    let answer = String::from_utf8_lossy(&received);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "a slot freed within the wait: {answer:?}"
    );
    // The one still holding its slot was never disturbed.
    assert!(health_on(&mut second).starts_with("HTTP/1.1 200"));
}

#[test]
fn serve_answers_signed_requests_while_thousands_of_slow_connections_close_at_their_timeouts() {
    let _alone = LOAD.write().unwrap_or_else(PoisonError::into_inner);
    // This process and serve each hold every slow connection: size them to the open-file limit.
    let files = open_file_limit().unwrap_or(1024);
    let slow = usize::try_from(files.saturating_sub(256).min(3000)).unwrap_or(3000);
    let drips = slow / 10;
    let half_lines = slow - drips;
    let (header, body) = (Duration::from_millis(1500), Duration::from_millis(2500));
    let max_connections = (slow + 256).to_string();
    let (_serve, addr, log) = start_serve(
        &[
            "--header-timeout-ms",
            "1500",
            "--body-timeout-ms",
            "2500",
            "--max-connections",
            &max_connections,
        ],
        Some(TOKEN),
        "info",
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let report = runtime.block_on(run(&SlowClients {
        addr,
        token: TOKEN.to_owned(),
        half_lines,
        drips,
        drip_every: Duration::from_millis(250),
        concurrency: 4,
        min_signed: 50,
        give_up_after: Duration::from_secs(20),
    }));
    println!(
        "open-file limit {files}: {half_lines} + {drips} slow connections\n{}",
        report.summary()
    );
    assert_eq!(report.half_lines.len(), half_lines, "{:?}", report.connect_errors);
    assert_eq!(report.drips.len(), drips, "{:?}", report.connect_errors);
    assert!(report.signed.len() >= 50, "{}", report.summary());
    let problems = report.problems(header, body, MARGIN + Duration::from_secs(1));
    assert!(problems.is_empty(), "{problems:#?}\n{}", report.summary());
    log_line(&log, &["limit=\"header-timeout\""]);
    log_line(&log, &["limit=\"body-timeout\""]);
}
