//! `serve`'s replay: the core's passes (`twiml_fallback::replay`), run by a background task every
//! `[replay] min_interval_seconds` (sooner when the next entry is due sooner) and on
//! `POST /_twiml-fallback/replay`.
//!
//! This file only performs the core's steps: it reads each lane's next entry and commits each of
//! the run's states through the inbox's writer thread (every commit is durable when it returns:
//! WAL with `synchronous = FULL`), sends the core's requests, and hands the answers back. Lanes —
//! one per called number — run concurrently, up to [`MAX_LANES`] at once; one pass runs at a time.

use std::sync::Arc;
use std::time::Duration;

use twiml_fallback::inbox::{Entry, StoreError, queue};
use twiml_fallback::replay::{
    EntryReport, Lane, Next, Pass, PassRequest, PassSummary, Replayer, Run, pass_failed_line,
};

use super::inbox::Inbox;
use super::{Server, now_ms, send};

/// The most called numbers replayed at once.
const MAX_LANES: usize = 16;

/// Replay as `serve` holds it: the core's rules and the lock that keeps passes one at a time.
pub(crate) struct Replay {
    replayer: Arc<Replayer>,
    passes: tokio::sync::Mutex<()>,
}

impl Replay {
    pub(crate) fn new(replayer: Replayer) -> Self {
        Self {
            replayer: Arc::new(replayer),
            passes: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn replayer(&self) -> &Replayer {
        &self.replayer
    }
}

impl Server {
    /// Runs automatic passes for as long as `serve` runs: each waits until the next entry is due,
    /// at most `min_interval_seconds`.
    pub(crate) async fn replay_forever(self: Arc<Self>) {
        let Some(replay) = &self.replay else {
            return;
        };
        if replay.replayer.off().is_some() {
            return;
        }
        let tick = replay.replayer.tick();
        loop {
            self.replay_pass(PassRequest::default()).await;
            let wait = match self.next_pass_at().await {
                Some(at) => Duration::from_millis(at.saturating_sub(now_ms())).min(tick),
                None => tick,
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// When the core says the next pass has something to do (`None`: nothing waits, or the
    /// inbox could not be read — the next tick looks again).
    async fn next_pass_at(self: &Arc<Self>) -> Option<u64> {
        let (Some(replay), Some(inbox)) = (&self.replay, &self.inbox) else {
            return None;
        };
        let replayer = Arc::clone(&replay.replayer);
        let now = now_ms();
        match inbox.run(move |sql| replayer.next_pass_at(sql, now)).await {
            Ok(at) => at,
            Err(error) => {
                self.write_line(&pass_failed_line(&error));
                None
            }
        }
    }

    /// A pass an operator asked for, run in a task of its own: should the request go away (the
    /// CLI interrupted, a timeout), the pass still ends as it would — a lane is never cut between
    /// a send and its commit by a caller leaving.
    pub(crate) async fn requested_pass(self: &Arc<Self>, request: PassRequest) -> PassSummary {
        let server = Arc::clone(self);
        let fallback = PassSummary::new(&request);
        tokio::spawn(async move { server.replay_pass(request).await })
            .await
            .unwrap_or(fallback)
    }

    /// One pass, after any pass already running; its summary (also when the inbox failed: the
    /// entries it reached are in it, and the failure is logged).
    pub(crate) async fn replay_pass(self: &Arc<Self>, request: PassRequest) -> PassSummary {
        let (Some(replay), Some(inbox)) = (&self.replay, &self.inbox) else {
            return PassSummary::new(&request);
        };
        let _one_at_a_time = replay.passes.lock().await;
        let replayer = Arc::clone(&replay.replayer);
        let started = request.clone();
        let now = now_ms();
        let pass = inbox.run(move |sql| replayer.pass(sql, &started, now)).await;
        let Pass { lanes, mut summary } = match pass {
            Ok(pass) => pass,
            Err(error) => {
                self.write_line(&pass_failed_line(&error));
                return PassSummary::new(&request);
            }
        };
        let mut running = tokio::task::JoinSet::new();
        for lane in lanes {
            if running.len() >= MAX_LANES
                && let Some(Ok((lane, reports))) = running.join_next().await
            {
                add(&mut summary, &lane, reports);
            }
            running.spawn(Arc::clone(self).replay_lane(lane));
        }
        while let Some(done) = running.join_next().await {
            if let Ok((lane, reports)) = done {
                add(&mut summary, &lane, reports);
            }
        }
        let replayer = Arc::clone(&replay.replayer);
        let seen = summary.clone();
        let now = now_ms();
        match inbox.run(move |sql| replayer.missed_calls(sql, &seen, now)).await {
            Ok(calls) => {
                for call in calls {
                    if let Some(run) = replay.replayer.text_missed_call(call, now_ms()) {
                        let report = self.drive(inbox, run).await;
                        summary.add(report);
                    }
                }
            }
            Err(error) => self.write_line(&pass_failed_line(&error)),
        }
        let replayer = Arc::clone(&replay.replayer);
        let now = now_ms();
        match inbox
            .run(move |sql| {
                let mut summary = summary;
                replayer
                    .finish_pass(sql, &mut summary, now)
                    .map(|lines| (summary, lines))
            })
            .await
        {
            Ok((finished, lines)) => {
                for line in &lines {
                    self.write_line(line);
                }
                if let Some(line) = finished.line() {
                    self.write_line(&line);
                }
                // A primary that took a replayed message resolved its incident: tell the sinks.
                if finished.incidents_resolved > 0 {
                    self.wake_notifier();
                }
                finished
            }
            Err(error) => {
                self.write_line(&pass_failed_line(&error));
                PassSummary::new(&request)
            }
        }
    }

    /// A lane's queue, one entry at a time: the lane as it ended, and each entry's report.
    async fn replay_lane(self: Arc<Self>, mut lane: Lane) -> (Lane, Vec<EntryReport>) {
        let mut reports = Vec::new();
        let (Some(replay), Some(inbox)) = (&self.replay, &self.inbox) else {
            return (lane, reports);
        };
        loop {
            let mut reading = lane.clone();
            let next = inbox
                .run(move |sql| reading.next(sql).map(|entry| (reading, entry)))
                .await;
            let entry = match next {
                Ok((read, Some(entry))) => {
                    lane = read;
                    entry
                }
                Ok((read, None)) => {
                    lane = read;
                    break;
                }
                Err(error) => {
                    self.write_line(&pass_failed_line(&error));
                    break;
                }
            };
            let run = replay.replayer.begin(entry, lane.mode(), now_ms());
            let report = self.drive(inbox, run).await;
            lane.finished(&report);
            reports.push(report);
        }
        (lane, reports)
    }

    /// Performs a run's steps until it is done; its report, logged.
    async fn drive(&self, inbox: &Inbox, mut run: Run<'_>) -> EntryReport {
        loop {
            match run.next() {
                Next::Save(entry) => run.saved(save(inbox, entry).await),
                Next::Send(request) => {
                    let sent = send(&self.client, &request).await;
                    run.answered(sent.outcome(), now_ms());
                }
                Next::Done(report) => {
                    self.write_line(&report.line());
                    return report;
                }
            }
        }
    }
}

async fn save(inbox: &Inbox, entry: Entry) -> Result<bool, StoreError> {
    inbox.run(move |sql| queue::save(sql, &entry)).await
}

fn add(summary: &mut PassSummary, lane: &Lane, reports: Vec<EntryReport>) {
    for report in reports {
        summary.add(report);
    }
    summary.lane_done(lane);
}
