//! One entry's replay as a state machine: what to commit, what to send, and what each answer
//! means (see the [module docs](super) for the order and the guarantees).

use http::{HeaderName, Method};

use super::reply::judge_send;
use super::{
    DELIVERY_TIMEOUT, EntryReport, MAX_REDIRECTS, Mode, Outcome, RECEIVED_AT_HEADER, REPLAY_HEADER, REPLAY_USER_AGENT,
    Replayer,
};
use crate::edge::{OutboundRequest, SendOutcome, clip, signed_webhook};
use crate::inbox::{Entry, Reply, ReplyKind, ReplyState, Status, StoreError};
use crate::twiml::{Accepted, Action, AnswerRules, outline, resolve_relative_urls};
use crate::webhook::{Channel, FALLBACK_PARAMS};

/// What a shell does next for a [`Run`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "made once per step and moved once to the shell: boxing buys nothing"
)]
pub enum Next {
    /// Commit this entry's replay state ([`inbox::queue::save`](crate::inbox::queue::save)),
    /// then call [`Run::saved`] with the result. Nothing is sent before it is committed.
    Save(Entry),
    /// Send this request (never following redirects), then call [`Run::answered`].
    Send(OutboundRequest),
    /// The run is over: log [`EntryReport::line`], hand the report to
    /// [`Lane::finished`](super::Lane::finished) and [`PassSummary::add`](super::PassSummary::add).
    Done(EntryReport),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    Deliver,
    SendReply(usize),
    Finish,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Save(After),
    Deliver,
    SendReply(usize),
    Done,
}

/// One entry's replay in progress.
#[derive(Debug)]
pub struct Run<'r> {
    replayer: &'r Replayer,
    entry: Entry,
    mode: Mode,
    step: Step,
    now_ms: u64,
    /// Where the entry is delivered first, and where the current request goes.
    target: Option<String>,
    url: String,
    method: Method,
    redirects: u32,
    /// Replies gathered across the documents of a delivery (a `<Redirect>` continues it).
    gathered: Vec<Reply>,
    outcome: Outcome,
    detail: String,
    stored: bool,
    sent: u32,
    withheld: u32,
    /// The Messages API request of the reply being sent.
    send: Option<OutboundRequest>,
    /// Why the Messages API is in trouble, when a send in this run found it so.
    api_trouble: Option<String>,
}

impl Replayer {
    /// Starts replaying `entry` at `now_ms` (what it does depends on its status and the mode:
    /// a pending message is delivered, an interrupted one settled, a named `failed` one delivered
    /// again, a named replayed one's withheld replies sent when asked; the rest are skipped).
    pub fn begin(&self, entry: Entry, mode: Mode, now_ms: u64) -> Run<'_> {
        let mut run = Run {
            replayer: self,
            url: String::new(),
            method: Method::POST,
            entry,
            mode,
            step: Step::Done,
            now_ms,
            target: None,
            redirects: 0,
            gathered: Vec::new(),
            outcome: Outcome::Skipped,
            detail: String::new(),
            stored: true,
            sent: 0,
            withheld: 0,
            send: None,
            api_trouble: None,
        };
        if let Some(reason) = self.off() {
            run.skip(reason);
            return run;
        }
        match run.entry.status {
            Status::Replaying => run.resume(),
            Status::Pending => run.deliver(),
            Status::Failed if mode.named => run.deliver(),
            Status::Failed => run.skip("failed after its attempts: name it to replay it by hand"),
            Status::Replayed if mode.named && mode.send_withheld => run.send_withheld(),
            Status::Replayed => run.skip("already replayed"),
            Status::NeedsAttention => {
                run.skip("needs attention: a reply may have gone out (see its replies); dismiss it once settled")
            }
            Status::Missed | Status::Voicemail => run.skip("a call is not replayed (a call cannot be resumed)"),
            Status::Dismissed => run.skip("dismissed"),
        }
        run
    }
}

impl<'r> Run<'r> {
    /// The run that texts a missed caller `text`, or `None` when the call has no caller or number.
    pub(super) fn missed_call(replayer: &'r Replayer, call: Entry, text: &str, now_ms: u64) -> Option<Self> {
        let reply = Reply::planned(
            ReplyKind::MissedCall,
            call.from.clone()?,
            call.to.clone()?,
            text.to_owned(),
        );
        let mut run = replayer.begin(call, Mode::default(), now_ms);
        // `begin` skipped the call ("a call is not replayed"): that is not what this run does.
        run.detail.clear();
        run.entry.replies.push(reply);
        run.entry.status = Status::Replaying;
        run.outcome = Outcome::Replied;
        run.next_reply();
        Some(run)
    }

    /// The entry as it stands.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// What to do now.
    pub fn next(&self) -> Next {
        match self.step {
            Step::Save(_) => Next::Save(self.entry.clone()),
            Step::Deliver => Next::Send(self.delivery()),
            Step::SendReply(_) => match &self.send {
                Some(request) => Next::Send(request.clone()),
                None => Next::Done(self.report()),
            },
            Step::Done => Next::Done(self.report()),
        }
    }

    /// The result of the commit [`Next::Save`] asked for: `Ok(true)` committed, `Ok(false)` the
    /// entry is gone or was dismissed (the run stops), an error (the run stops, sending nothing
    /// more; an interrupted send is settled by the next pass).
    pub fn saved(&mut self, result: Result<bool, StoreError>) {
        let Step::Save(after) = self.step else {
            return;
        };
        match result {
            Ok(true) => {
                self.step = match after {
                    After::Deliver => Step::Deliver,
                    After::SendReply(index) => Step::SendReply(index),
                    After::Finish => Step::Done,
                };
            }
            Ok(false) => {
                self.outcome = Outcome::Skipped;
                self.detail = "dismissed meanwhile: the replay stopped".to_owned();
                self.step = Step::Done;
            }
            Err(error) => {
                self.outcome = Outcome::StoreFailed;
                self.detail = format!("the inbox could not be written, nothing more was sent: {error}");
                self.stored = false;
                self.step = Step::Done;
            }
        }
    }

    /// What came of the request [`Next::Send`] asked for, at `now_ms`.
    pub fn answered(&mut self, outcome: SendOutcome<'_>, now_ms: u64) {
        self.now_ms = now_ms;
        match self.step {
            Step::Deliver => self.delivered(outcome),
            Step::SendReply(index) => {
                let verdict = judge_send(&outcome);
                let Some(reply) = self.entry.replies.get_mut(index) else {
                    self.step = Step::Done;
                    return;
                };
                reply.set(verdict.state, verdict.error.clone());
                reply.message_sid = verdict.sid;
                if verdict.state == ReplyState::Sent {
                    self.sent += 1;
                }
                if verdict.api_trouble {
                    // The Messages API is failing: send nothing more; the pass holds every send.
                    self.api_trouble = verdict.error;
                }
                if verdict.state == ReplyState::Planned {
                    // Certainly not sent: the entry stays replaying, its replies planned, and the
                    // next pass after the hold sends them without asking the app again.
                    self.outcome = Outcome::Retrying;
                    self.detail = "the Messages API refused the request: its replies wait for it; ".to_owned();
                    self.step = Step::Save(After::Finish);
                    return;
                }
                if verdict.state == ReplyState::Unknown {
                    self.withhold_planned("not sent: an earlier reply's outcome is unknown");
                }
                self.next_reply();
            }
            Step::Save(_) | Step::Done => {}
        }
    }

    fn skip(&mut self, reason: &str) {
        self.outcome = Outcome::Skipped;
        self.detail = reason.to_owned();
        self.step = Step::Done;
    }

    /// Delivers a message to its target: `[replay] url`, else its `ErrorUrl`, when allowlisted.
    fn deliver(&mut self) {
        if self.entry.channel != Channel::Messaging {
            return self.skip("a call is not replayed (a call cannot be resumed)");
        }
        let settings = self.replayer.settings();
        let Some(target) = settings
            .url
            .as_deref()
            .or(self.entry.error_url.as_deref())
            .map(|url| crate::url::without_fragment(url).to_owned())
        else {
            return self.undeliverable("no ErrorUrl to deliver to (set [replay] url)".to_owned());
        };
        if let Some(Err(refusal)) = self.replayer.recovery.as_ref().map(|recovery| recovery.allows(&target)) {
            self.target = Some(target);
            return self.undeliverable(format!("refused: {refusal}"));
        }
        self.target = Some(target.clone());
        if self.mode.dry_run {
            self.outcome = Outcome::WouldDeliver;
            self.detail = format!("would be delivered to {target}");
            self.step = Step::Done;
            return;
        }
        self.url = target;
        self.method = if self.entry.method.eq_ignore_ascii_case("GET") {
            Method::GET
        } else {
            Method::POST
        };
        self.entry.status = Status::Replaying;
        self.step = Step::Save(After::Deliver);
    }

    /// An entry that cannot be delivered as configured (no target, or one the allowlist refuses).
    /// A pass sets it aside as `failed` with the reason, once — rather than skip it again every
    /// pass — and the rest of its queue goes on; named by hand (after fixing the configuration)
    /// it is tried again. A dry run or a named entry is only reported.
    fn undeliverable(&mut self, reason: String) {
        self.skip(&reason);
        if self.mode.dry_run || self.mode.named {
            return;
        }
        self.entry.status = Status::Failed;
        self.entry.last_error = Some(reason);
        self.entry.next_attempt_ms = 0;
        self.detail
            .push_str(": set aside as failed (replay it by hand once the configuration allows it)");
        self.step = Step::Save(After::Finish);
    }

    /// The request to the app: the original parameters without `ErrorCode`/`ErrorUrl`, signed
    /// for the URL, marked as a replay.
    fn delivery(&self) -> OutboundRequest {
        let params = self.entry.to_params().without(&FALLBACK_PARAMS);
        let token = self.replayer.token.as_deref().unwrap_or_default();
        let mut request = signed_webhook(
            token,
            &self.url,
            self.method.clone(),
            &params,
            DELIVERY_TIMEOUT,
            REPLAY_USER_AGENT,
        );
        request
            .headers
            .push((HeaderName::from_static(REPLAY_HEADER), "1".to_owned()));
        request.headers.push((
            HeaderName::from_static(RECEIVED_AT_HEADER),
            self.entry.received_at.clone(),
        ));
        request
    }

    /// Judges the app's answer by the core's messaging rules: a failure schedules the next
    /// attempt; TwiML's `<Message>`s become replies and a `<Redirect>` is followed.
    fn delivered(&mut self, outcome: SendOutcome<'_>) {
        let (status, content_type, body) = match outcome {
            SendOutcome::TimedOut => {
                return self.failed(format!("no answer within {} s", DELIVERY_TIMEOUT.as_secs()));
            }
            SendOutcome::NotSent(reason) | SendOutcome::Failed(reason) => return self.failed(clip(reason)),
            SendOutcome::Answered {
                status,
                content_type,
                body,
            } => (status, content_type, body),
        };
        let accepted = match AnswerRules::for_channel(Some(Channel::Messaging)).check(status, content_type, body) {
            Ok(accepted) => accepted,
            Err(rejection) => return self.failed(clip(&rejection.to_string())),
        };
        match accepted {
            Accepted::NoReply | Accepted::Audio => {}
            Accepted::PlainText => {
                let text = String::from_utf8_lossy(body).trim().to_owned();
                if !text.is_empty() {
                    self.gather(None, None, text, Vec::new(), None);
                }
            }
            Accepted::Twiml { .. } => {
                let text = String::from_utf8_lossy(body);
                let document = resolve_relative_urls(&text, &self.url);
                for action in outline(document.as_bytes()) {
                    match action {
                        Action::Message {
                            body,
                            media,
                            to,
                            from,
                            status_callback,
                        } => self.gather(to, from, body, media, status_callback),
                        // Verbs after a <Redirect> are never reached: Twilio continues there.
                        Action::Redirect { url, method } => return self.redirect(&url, method.as_deref()),
                        _ => {}
                    }
                }
            }
        }
        self.answered_by_app();
    }

    fn gather(
        &mut self,
        to: Option<String>,
        from: Option<String>,
        body: String,
        media: Vec<String>,
        status_callback: Option<String>,
    ) {
        let to = to.or_else(|| self.entry.from.clone()).unwrap_or_default();
        let from = from.or_else(|| self.entry.to.clone()).unwrap_or_default();
        let mut reply = Reply::planned(ReplyKind::Answer, to, from, body);
        reply.media = media;
        reply.status_callback = status_callback;
        self.gathered.push(reply);
    }

    /// Follows a `<Redirect>` as Twilio would: a signed request to its URL (resolved already),
    /// by its method, within the allowlist and [`MAX_REDIRECTS`].
    fn redirect(&mut self, url: &str, method: Option<&str>) {
        if self.redirects >= MAX_REDIRECTS {
            return self.failed(format!("more than {MAX_REDIRECTS} <Redirect>s"));
        }
        if let Some(Err(refusal)) = self.replayer.recovery.as_ref().map(|recovery| recovery.allows(url)) {
            // Not followed: what the app answered before it stands.
            self.detail = format!("a <Redirect> was not followed ({refusal}); ");
            return self.answered_by_app();
        }
        self.redirects += 1;
        self.url = crate::url::without_fragment(url).to_owned();
        self.method = if method.is_some_and(|method| method.trim().eq_ignore_ascii_case("GET")) {
            Method::GET
        } else {
            Method::POST
        };
        self.step = Step::Deliver;
    }

    /// The app did not answer well: the entry waits for its backoff, or, after `max_attempts`,
    /// is `failed`.
    fn failed(&mut self, reason: String) {
        let settings = self.replayer.settings();
        self.gathered.clear();
        self.entry.attempts = self.entry.attempts.saturating_add(1);
        self.entry.last_error = Some(reason.clone());
        if self.entry.attempts >= settings.max_attempts {
            self.entry.status = Status::Failed;
            self.entry.next_attempt_ms = 0;
            self.outcome = Outcome::Failed;
            self.detail = format!(
                "attempt {} of {} failed, giving up (replay it by hand): {reason}",
                self.entry.attempts, settings.max_attempts
            );
        } else {
            let wait = self.replayer.backoff_ms(self.entry.attempts);
            self.entry.status = Status::Pending;
            self.entry.next_attempt_ms = self.now_ms.saturating_add(wait);
            self.outcome = Outcome::Retrying;
            self.detail = format!(
                "attempt {} failed, next in {} s: {reason}",
                self.entry.attempts,
                wait / 1000
            );
        }
        self.step = Step::Save(After::Finish);
    }

    /// The app answered: its replies are planned, or withheld when late or when replies are off.
    fn answered_by_app(&mut self) {
        let settings = self.replayer.settings();
        let window_ms = settings.reply_window_minutes.saturating_mul(60_000);
        let age_ms = self.now_ms.saturating_sub(self.entry.received_at_ms);
        for mut reply in std::mem::take(&mut self.gathered) {
            if !settings.send_replies {
                reply.set(ReplyState::Withheld, Some("[replay] send_replies is off".to_owned()));
            } else if age_ms > window_ms {
                reply.set(
                    ReplyState::Withheld,
                    Some(format!(
                        "the message is {} minutes old, past [replay] reply_window_minutes ({})",
                        age_ms / 60_000,
                        settings.reply_window_minutes
                    )),
                );
            }
            if reply.state == ReplyState::Withheld {
                self.withheld += 1;
            }
            self.entry.replies.push(reply);
        }
        self.entry.last_error = None;
        self.entry.next_attempt_ms = 0;
        self.outcome = Outcome::Delivered;
        self.next_reply();
    }

    /// Marks the next planned reply as being sent (committed before its send), or, when none is
    /// left, settles the entry.
    fn next_reply(&mut self) {
        let token = self.replayer.token.as_deref().unwrap_or_default();
        while let Some(index) = self
            .entry
            .replies
            .iter()
            .position(|reply| reply.state == ReplyState::Planned)
        {
            let request =
                self.replayer
                    .api
                    .message_request(self.entry.account_sid.as_deref(), token, &self.entry.replies[index]);
            match request {
                Ok(request) => {
                    self.send = Some(request);
                    self.entry.replies[index].set(ReplyState::Sending, None);
                    self.step = Step::Save(After::SendReply(index));
                    return;
                }
                Err(error) => self.entry.replies[index].set(ReplyState::Refused, Some(error)),
            }
        }
        let unknown = self
            .entry
            .replies
            .iter()
            .any(|reply| reply.state == ReplyState::Unknown);
        if unknown {
            self.entry.status = Status::NeedsAttention;
            self.outcome = Outcome::NeedsAttention;
        } else {
            self.entry.status = match self.entry.channel {
                Channel::Messaging => Status::Replayed,
                Channel::Voice => Status::Missed,
            };
        }
        self.step = Step::Save(After::Finish);
    }

    fn withhold_planned(&mut self, reason: &str) {
        for reply in &mut self.entry.replies {
            if reply.state == ReplyState::Planned {
                reply.set(ReplyState::Withheld, Some(reason.to_owned()));
                self.withheld += 1;
            }
        }
    }

    /// Settles an entry a process left `replaying`: a reply caught mid-send makes it
    /// `needs-attention` (never re-sent); planned replies go out; otherwise it is delivered again
    /// (toward the app, replay is at least once).
    fn resume(&mut self) {
        let interrupted = self
            .entry
            .replies
            .iter()
            .any(|reply| reply.state == ReplyState::Sending);
        if interrupted {
            if self.mode.dry_run {
                return self.skip("interrupted while sending a reply: a pass marks it needs-attention");
            }
            for reply in &mut self.entry.replies {
                if reply.state == ReplyState::Sending {
                    reply.set(
                        ReplyState::Unknown,
                        Some("interrupted while being sent: it may or may not have gone out".to_owned()),
                    );
                }
            }
            self.withhold_planned("not sent: an earlier reply was interrupted");
            self.entry.status = Status::NeedsAttention;
            self.outcome = Outcome::NeedsAttention;
            self.detail = "interrupted while sending a reply: never re-sent; see its replies; ".to_owned();
            self.step = Step::Save(After::Finish);
        } else if self
            .entry
            .replies
            .iter()
            .any(|reply| reply.state == ReplyState::Planned)
        {
            if self.mode.dry_run {
                return self.skip("interrupted after the app answered: a pass sends its planned replies");
            }
            self.outcome = Outcome::Replied;
            self.next_reply();
        } else if self.entry.channel == Channel::Voice {
            self.entry.status = Status::Missed;
            self.step = if self.mode.dry_run {
                Step::Done
            } else {
                Step::Save(After::Finish)
            };
        } else {
            self.deliver();
        }
    }

    /// Sends the withheld replies of a replayed entry, because an operator asked.
    fn send_withheld(&mut self) {
        let withheld = self
            .entry
            .replies
            .iter()
            .filter(|reply| reply.state == ReplyState::Withheld)
            .count();
        if withheld == 0 {
            return self.skip("no withheld replies to send");
        }
        if self.mode.dry_run {
            self.outcome = Outcome::WouldDeliver;
            self.detail = format!("would send {withheld} withheld replies");
            self.step = Step::Done;
            return;
        }
        for reply in &mut self.entry.replies {
            if reply.state == ReplyState::Withheld {
                reply.set(ReplyState::Planned, None);
            }
        }
        self.entry.status = Status::Replaying;
        self.outcome = Outcome::Replied;
        self.next_reply();
    }

    fn report(&self) -> EntryReport {
        let mut detail = self.detail.clone();
        if matches!(
            self.outcome,
            Outcome::Delivered | Outcome::Replied | Outcome::NeedsAttention
        ) {
            let replies = self.entry.replies.len();
            if self.outcome == Outcome::Delivered && self.sent == 0 && self.withheld == 0 && replies == 0 {
                detail.push_str("the app answered with no reply");
            } else {
                detail.push_str(&format!("{} sent, {} withheld", self.sent, self.withheld));
                let refused = self
                    .entry
                    .replies
                    .iter()
                    .filter(|reply| reply.state == ReplyState::Refused)
                    .count();
                if refused > 0 {
                    detail.push_str(&format!(", {refused} refused"));
                }
                let unknown = self
                    .entry
                    .replies
                    .iter()
                    .filter(|reply| reply.state == ReplyState::Unknown)
                    .count();
                if unknown > 0 {
                    detail.push_str(&format!(", {unknown} unknown (never re-sent)"));
                }
            }
        }
        EntryReport {
            sid: self.entry.sid.clone(),
            to: self.entry.to.clone(),
            outcome: self.outcome,
            target: self.target.clone(),
            detail,
            replies_sent: self.sent,
            replies_withheld: self.withheld,
            status: self.entry.status,
            stored: self.stored,
            halts_queue: matches!(self.outcome, Outcome::Retrying | Outcome::Failed | Outcome::StoreFailed)
                || self.api_trouble.is_some(),
            api_trouble: self.api_trouble.clone(),
            next_due_ms: (self.outcome == Outcome::Retrying && self.entry.next_attempt_ms > 0)
                .then_some(self.entry.next_attempt_ms),
        }
    }
}
