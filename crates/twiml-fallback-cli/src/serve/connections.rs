//! `serve`'s connections: the accept loop over hyper's HTTP/1.1 server, the connection limit, and
//! each connection's deadlines, with a rate-limited log line whenever a limit bites.
//!
//! These are I/O settings of this shell alone — the Workers runtime handles the Worker's
//! connections — so they live here, not in the core.
//!
//! A connection has one deadline at a time, set by what it is waiting for:
//!
//! - the request head: `--header-timeout-ms` from the connection's start, and on a keep-alive
//!   connection from the first byte of each later request;
//! - the answer to a request in progress: none here — `handle` reads the body under
//!   `--body-timeout-ms`, and the rest is the core's work under the core's deadlines;
//! - the next request, once the answer is handed to hyper: `--idle-timeout-ms` (which also bounds
//!   writing the answer to a client that does not read it).
//!
//! hyper's own `header_read_timeout` is not used: its clock starts when a keep-alive connection
//! goes idle, so it cannot give a head 5 s and an idle connection 60 s.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper::service::{Service as _, service_fn};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};

use crate::cli::ServeArgs;

/// How long a connection over `--max-connections` waits for a free slot before it is closed.
///
/// At the limit under real load, requests end in milliseconds, so a slot frees almost at once,
/// and a request answered 500 ms late beats a refused one (Twilio allows 15 s). Under a flood of
/// slow connections, slots free only as their timeouts end, so a longer wait would only hold
/// more sockets open.
pub(crate) const OVER_LIMIT_WAIT: Duration = Duration::from_millis(500);

/// At most one line per limit in this interval; each line counts what happened since that
/// limit's last line.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The pause after an accept error that is not the client's (the open-file limit, most often),
/// so that a failing `accept` does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Open files serve needs besides its connections: the listener, standard streams, the
/// runtime's, and outbound alert and recovery connections.
const FILES_BESIDES_CONNECTIONS: u64 = 64;

/// `serve`'s connection limits, from its flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// `--header-timeout-ms`.
    pub(crate) header_timeout_ms: u64,
    /// `--body-timeout-ms`.
    pub(crate) body_timeout_ms: u64,
    /// `--idle-timeout-ms`.
    pub(crate) idle_timeout_ms: u64,
    /// `--max-connections`.
    pub(crate) max_connections: u32,
}

impl Limits {
    pub(crate) fn from_args(args: &ServeArgs) -> Self {
        Self {
            header_timeout_ms: args.header_timeout_ms,
            body_timeout_ms: args.body_timeout_ms,
            idle_timeout_ms: args.idle_timeout_ms,
            max_connections: args.max_connections,
        }
    }

    pub(crate) fn body_timeout(self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    fn header_timeout(self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    fn idle_timeout(self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// How many connections over the limit may wait for a slot at once; past them, a new
    /// connection is closed at once, so a flood cannot pile up sockets in the wait.
    fn waiting_room(self) -> u32 {
        (self.max_connections / 4).max(1)
    }

    /// The open files serve may need at the limit: every connection, every waiting one, the rest.
    fn files_needed(self) -> u64 {
        u64::from(self.max_connections) + u64::from(self.waiting_room()) + FILES_BESIDES_CONNECTIONS
    }

    /// Logs the limits, and warns when the open-file limit is below what they need: past it,
    /// connections fail to be accepted and alerts and recovery fail to connect.
    pub(crate) fn log_at_start(self) {
        tracing::info!(
            header_timeout_ms = self.header_timeout_ms,
            body_timeout_ms = self.body_timeout_ms,
            idle_timeout_ms = self.idle_timeout_ms,
            max_connections = self.max_connections,
            "twiml-fallback serve: limits: request heads {} ms, bodies {} ms, idle connections {} ms, at most {} connections",
            self.header_timeout_ms,
            self.body_timeout_ms,
            self.idle_timeout_ms,
            self.max_connections
        );
        let limit = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|limits| soft_open_file_limit(&limits));
        if let Some(limit) = limit.filter(|&limit| limit < self.files_needed()) {
            tracing::warn!(
                open_file_limit = limit,
                files_needed = self.files_needed(),
                max_connections = self.max_connections,
                "twiml-fallback serve: --max-connections {} needs up to {} open files but the limit is {limit}: \
                 raise it (ulimit -n, systemd's LimitNOFILE=) or lower --max-connections",
                self.max_connections,
                self.files_needed()
            );
        }
    }
}

/// The soft limit on open files in Linux's `/proc/self/limits`; `None` when it says `unlimited`
/// or cannot be read.
fn soft_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A limit that bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bite {
    /// A connection closed without a whole request head in time.
    HeaderTimeout,
    /// A request body that did not arrive whole in time.
    BodyTimeout,
    /// A keep-alive connection closed after its idle time.
    IdleTimeout,
    /// A new connection closed because every slot stayed busy.
    MaxConnections,
    /// An accept that failed.
    Accept,
}

const BITES: [Bite; 5] = [
    Bite::HeaderTimeout,
    Bite::BodyTimeout,
    Bite::IdleTimeout,
    Bite::MaxConnections,
    Bite::Accept,
];

/// The log lines of the limits: counts per limit, written at most once per [`REPORT_EVERY`] by
/// [`LimitLog::report`], so that a flood of slow connections does not flood the log.
pub(crate) struct LimitLog {
    limits: Limits,
    counts: [AtomicU64; BITES.len()],
    last_accept_error: Mutex<String>,
    wake: Notify,
}

impl LimitLog {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            counts: Default::default(),
            last_accept_error: Mutex::new(String::new()),
            wake: Notify::new(),
        }
    }

    /// Counts a limit that bit; the next report writes it.
    pub(crate) fn bit(&self, bite: Bite) {
        self.counts[bite as usize].fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
    }

    fn accept_failed(&self, error: &io::Error) {
        let hint = match error.raw_os_error() {
            // EMFILE, ENFILE on Linux and macOS.
            Some(23 | 24) => " (raise the open-file limit, or lower --max-connections)",
            _ => "",
        };
        *self.last_accept_error.lock().unwrap_or_else(PoisonError::into_inner) = format!("{error}{hint}");
        self.bit(Bite::Accept);
    }

    /// Writes a limit's line at its first bite, then at most one every [`REPORT_EVERY`] for
    /// that limit, each with the count since the last.
    async fn report(self: Arc<Self>) {
        let mut written: [Option<Instant>; BITES.len()] = [None; BITES.len()];
        loop {
            let now = Instant::now();
            let mut next: Option<Instant> = None;
            for bite in BITES {
                let index = bite as usize;
                if self.counts[index].load(Ordering::Relaxed) == 0 {
                    continue;
                }
                match written[index].map(|at| at + REPORT_EVERY) {
                    Some(due) if now < due => next = Some(next.map_or(due, |next| next.min(due))),
                    _ => {
                        self.write_count(bite);
                        written[index] = Some(now);
                    }
                }
            }
            match next {
                Some(due) => tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    () = self.wake.notified() => {}
                },
                None => self.wake.notified().await,
            }
        }
    }

    /// Writes the line of each limit that bit since its last line.
    fn write_counts(&self) {
        for bite in BITES {
            self.write_count(bite);
        }
    }

    fn write_count(&self, bite: Bite) {
        let count = self.counts[bite as usize].swap(0, Ordering::Relaxed);
        if count > 0 {
            self.write(bite, count);
        }
    }

    fn write(&self, bite: Bite, count: u64) {
        let limits = self.limits;
        match bite {
            Bite::HeaderTimeout => tracing::warn!(
                limit = "header-timeout",
                connections = count,
                timeout_ms = limits.header_timeout_ms,
                "twiml-fallback serve: closed {} that sent no whole request head within {} ms (--header-timeout-ms)",
                plural(count, "connection", "connections"),
                limits.header_timeout_ms
            ),
            Bite::BodyTimeout => tracing::warn!(
                limit = "body-timeout",
                requests = count,
                timeout_ms = limits.body_timeout_ms,
                "twiml-fallback serve: stopped waiting for {} after {} ms (--body-timeout-ms): answered as unreadable",
                plural(count, "request body", "request bodies"),
                limits.body_timeout_ms
            ),
            Bite::IdleTimeout => tracing::debug!(
                limit = "idle-timeout",
                connections = count,
                timeout_ms = limits.idle_timeout_ms,
                "twiml-fallback serve: closed {} idle for {} ms (--idle-timeout-ms)",
                plural(count, "keep-alive connection", "keep-alive connections"),
                limits.idle_timeout_ms
            ),
            Bite::MaxConnections => tracing::warn!(
                limit = "max-connections",
                connections = count,
                max_connections = limits.max_connections,
                "twiml-fallback serve: closed {} at the connection limit: all {} slots stayed busy for {} ms (--max-connections)",
                plural(count, "new connection", "new connections"),
                limits.max_connections,
                OVER_LIMIT_WAIT.as_millis()
            ),
            Bite::Accept => {
                let error = self
                    .last_accept_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                tracing::warn!(
                    limit = "accept",
                    errors = count,
                    "twiml-fallback serve: could not accept a connection {}: {error}",
                    plural(count, "time", "times")
                );
            }
        }
    }
}

fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// Serves `app` over HTTP/1.1 on `listener` under the limits until `shutdown` ends, then stops
/// accepting, lets every connection finish its request (idle ones close at once) and returns
/// when all are closed.
pub(crate) async fn serve(listener: TcpListener, app: Router, log: Arc<LimitLog>, shutdown: impl Future<Output = ()>) {
    let limits = log.limits;
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let waiting_room = Arc::new(Semaphore::new(limits.waiting_room() as usize));
    let (stop, stopping) = watch::channel(false);
    let reporter = tokio::spawn(Arc::clone(&log).report());
    let mut shutdown = pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // The client's doing (it reset or gave up); nothing to report.
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    log.accept_failed(&error);
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let connection = Connection {
            app: app.clone(),
            log: Arc::clone(&log),
            stopping: stopping.clone(),
        };
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => {
                tokio::spawn(connection.serve(stream, slot));
            }
            Err(_) => match Arc::clone(&waiting_room).try_acquire_owned() {
                Ok(seat) => {
                    let slots = Arc::clone(&slots);
                    tokio::spawn(async move {
                        let slot = tokio::time::timeout(OVER_LIMIT_WAIT, slots.acquire_owned()).await;
                        drop(seat);
                        match slot {
                            Ok(Ok(slot)) => connection.serve(stream, slot).await,
                            _ => connection.log.bit(Bite::MaxConnections),
                        }
                    });
                }
                // Dropping the stream closes it at once.
                Err(_) => log.bit(Bite::MaxConnections),
            },
        }
    }
    drop(listener);
    let _ = stop.send(true);
    // A connection holds its slot until it closes: every slot back means every connection closed.
    let _ = slots.acquire_many(limits.max_connections).await;
    reporter.abort();
    log.write_counts();
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// What one connection needs.
struct Connection {
    app: Router,
    log: Arc<LimitLog>,
    stopping: watch::Receiver<bool>,
}

impl Connection {
    /// Serves the connection until it closes, its deadline passes, or serve stops; the slot is
    /// given back at the end.
    async fn serve(mut self, stream: TcpStream, slot: OwnedSemaphorePermit) {
        let limits = self.log.limits;
        let clock = Arc::new(ConnectionClock::new(limits, Instant::now()));
        let io = TokioIo::new(Watched {
            stream,
            clock: Arc::clone(&clock),
        });
        let app = TowerToHyperService::new(self.app);
        let service = {
            let clock = Arc::clone(&clock);
            service_fn(move |request| {
                clock.request_started();
                let answer = app.call(request);
                let clock = Arc::clone(&clock);
                async move {
                    let answer = answer.await;
                    clock.answered(Instant::now());
                    answer
                }
            })
        };
        let mut connection = pin!(
            http1::Builder::new()
                // The deadlines are the clock's (the module's docs say why).
                .header_read_timeout(None)
                .serve_connection(io, service)
        );
        let mut deadline = Deadline {
            clock,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: None,
        };
        let mut stopping = *self.stopping.borrow_and_update();
        if stopping {
            connection.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                // The connection first: it moves the clock, which the deadline then reads.
                biased;
                _ = connection.as_mut() => break,
                bite = &mut deadline => {
                    self.log.bit(bite);
                    break;
                }
                _ = self.stopping.changed(), if !stopping => {
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
        drop(slot);
    }
}

/// What a connection is waiting for, and until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    /// The (rest of the) request head, until the instant.
    Head(Instant),
    /// The answer to a request in progress: no deadline here.
    Answer,
    /// The next request, until the instant.
    Next(Instant),
}

/// One connection's deadline, moved by what happens on it: bytes read, a request started, an
/// answer handed to hyper.
struct ConnectionClock {
    header: Duration,
    idle: Duration,
    waiting: Mutex<Waiting>,
}

impl ConnectionClock {
    fn new(limits: Limits, now: Instant) -> Self {
        Self {
            header: limits.header_timeout(),
            idle: limits.idle_timeout(),
            waiting: Mutex::new(Waiting::Head(now + limits.header_timeout())),
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: after an answer, they start the next request's head.
    fn bytes_read(&self, now: Instant) {
        let mut waiting = self.waiting();
        if let Waiting::Next(_) = *waiting {
            *waiting = Waiting::Head(now + self.header);
        }
    }

    fn request_started(&self) {
        *self.waiting() = Waiting::Answer;
    }

    fn answered(&self, now: Instant) {
        *self.waiting() = Waiting::Next(now + self.idle);
    }

    /// The deadline, and the limit that bites when it passes.
    fn deadline(&self) -> Option<(Bite, Instant)> {
        match *self.waiting() {
            Waiting::Head(at) => Some((Bite::HeaderTimeout, at)),
            Waiting::Answer => None,
            Waiting::Next(at) => Some((Bite::IdleTimeout, at)),
        }
    }
}

/// Ends when the connection's current deadline passes, with the limit that bit.
///
/// It rereads the deadline each time it is polled: the connection is polled first in the same
/// task (`biased`), and only the connection moves the clock.
struct Deadline {
    clock: Arc<ConnectionClock>,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

impl Future for Deadline {
    type Output = Bite;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Bite> {
        let this = &mut *self;
        let Some((bite, at)) = this.clock.deadline() else {
            this.armed = None;
            return Poll::Pending;
        };
        if this.armed != Some(at) {
            this.sleep.as_mut().reset(at);
            this.armed = Some(at);
        }
        ready!(this.sleep.as_mut().poll(cx));
        Poll::Ready(bite)
    }
}

/// The connection's socket, telling its clock when bytes arrive.
struct Watched {
    stream: TcpStream,
    clock: Arc<ConnectionClock>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.clock.bytes_read(Instant::now());
        }
        read
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        header_timeout_ms: 5_000,
        body_timeout_ms: 10_000,
        idle_timeout_ms: 60_000,
        max_connections: 1024,
    };

    #[test]
    fn a_head_is_timed_from_the_connections_start_whatever_bytes_arrive() {
        let start = Instant::now();
        let clock = ConnectionClock::new(LIMITS, start);
        assert_eq!(
            clock.deadline(),
            Some((Bite::HeaderTimeout, start + Duration::from_secs(5)))
        );
        // A head that trickles in does not move its deadline.
        clock.bytes_read(start + Duration::from_secs(4));
        assert_eq!(
            clock.deadline(),
            Some((Bite::HeaderTimeout, start + Duration::from_secs(5)))
        );
    }

    #[test]
    fn a_request_in_progress_has_no_connection_deadline_and_an_answer_starts_the_idle_time() {
        let start = Instant::now();
        let clock = ConnectionClock::new(LIMITS, start);
        clock.request_started();
        assert_eq!(clock.deadline(), None, "the body's deadline is handle's");
        clock.bytes_read(start + Duration::from_secs(30));
        assert_eq!(clock.deadline(), None, "body bytes do not restart a head");
        let answered = start + Duration::from_secs(31);
        clock.answered(answered);
        assert_eq!(
            clock.deadline(),
            Some((Bite::IdleTimeout, answered + Duration::from_secs(60)))
        );
    }

    #[test]
    fn the_first_byte_after_an_answer_starts_the_next_heads_deadline() {
        let start = Instant::now();
        let clock = ConnectionClock::new(LIMITS, start);
        clock.request_started();
        clock.answered(start);
        let next = start + Duration::from_secs(50);
        clock.bytes_read(next);
        assert_eq!(
            clock.deadline(),
            Some((Bite::HeaderTimeout, next + Duration::from_secs(5)))
        );
        clock.bytes_read(next + Duration::from_secs(1));
        assert_eq!(
            clock.deadline(),
            Some((Bite::HeaderTimeout, next + Duration::from_secs(5))),
            "only the first byte does"
        );
    }

    #[test]
    fn the_open_file_limit_is_read_from_proc_self_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63459                63459                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(soft_open_file_limit(limits), Some(1024));
        let unlimited = "Max open files            unlimited            unlimited            files     \n";
        assert_eq!(soft_open_file_limit(unlimited), None);
        assert_eq!(soft_open_file_limit(""), None);
    }

    #[test]
    fn the_files_needed_cover_every_slot_the_waiting_room_and_the_rest() {
        assert_eq!(LIMITS.waiting_room(), 256);
        assert_eq!(LIMITS.files_needed(), 1024 + 256 + 64);
        let one = Limits {
            max_connections: 1,
            ..LIMITS
        };
        assert_eq!(one.waiting_room(), 1, "someone may always wait");
    }

    #[test]
    fn counts_read_as_words() {
        assert_eq!(plural(1, "connection", "connections"), "1 connection");
        assert_eq!(plural(3000, "connection", "connections"), "3000 connections");
    }
}
