//! The replay state machine, driven by hand: every commit it asks for is answered `Ok(true)`
//! (or as the test says), every request with a hand-made outcome. The last part runs whole
//! passes over an in-memory inbox that answers the core's statements.

use base64::Engine as _;
use http::{Method, StatusCode};

use super::*;
use crate::edge::{OutboundRequest, Redirects, SendOutcome, SendResult};
use crate::inbox::{Capture, Reply, ReplyKind, ReplyState, Source, SqlValue, Statement, capture};
use crate::signature::{Payload, SIGNATURE_HEADER, compute_signature};
use crate::twiml::MAX_DOCUMENT_BYTES;
use crate::webhook::{Channel, Params};

const TOKEN: &str = "replay-auth-token";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const RECOVERY: &str = "[recovery]\nallow_hosts = [\"app.example.com\"]\n";
const FALLBACK_URL: &str = "https://fallback.example.com/sms";
const APP_URL: &str = "https://app.example.com/sms";
/// When the message arrived: 2023-11-14T22:13:20.000Z.
const RECEIVED: u64 = 1_700_000_000_000;
/// A minute later: due (30 s after it arrived) and within the reply window (60 minutes).
const NOW: u64 = RECEIVED + 60_000;
const SENDER: &str = "+14155550100";
const NUMBER: &str = "+14155550199";

/// A message that failed over to the fallback endpoint.
const FORM: &str = "MessageSid=SM1&SmsSid=SM1&AccountSid=AC0123456789abcdef0123456789abcdef&From=%2B14155550100\
                    &To=%2B14155550199&Body=Open+today%3F&NumMedia=0&SmsStatus=received\
                    &ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fsms";

/// The parameters the app gets on replay: the original ones, in order, without `ErrorCode` and
/// `ErrorUrl`.
const DELIVERED: [(&str, &str); 8] = [
    ("MessageSid", "SM1"),
    ("SmsSid", "SM1"),
    ("AccountSid", ACCOUNT),
    ("From", SENDER),
    ("To", NUMBER),
    ("Body", "Open today?"),
    ("NumMedia", "0"),
    ("SmsStatus", "received"),
];

fn config(toml: &str) -> Config {
    Config::from_toml(toml).unwrap_or_else(|errors| panic!("{errors}"))
}

fn replayer(toml: &str) -> Replayer {
    Replayer::new(&config(toml), &SignatureVerifier::new(TOKEN), TwilioApi::default())
}

fn kept(params: &Params, method: &str, url: &str, at: u64) -> Entry {
    match capture(params, method, url, at, Source::Edge) {
        Capture::Keep(entry) => *entry,
        Capture::Skip(skip) => panic!("not kept: {skip:?}"),
    }
}

/// A POSTed message, from `form`, received at `at`.
fn message_from(form: &str, at: u64) -> Entry {
    kept(&Params::from_form(form.as_bytes()), "POST", FALLBACK_URL, at)
}

/// The standard message, received at [`RECEIVED`].
fn message() -> Entry {
    message_from(FORM, RECEIVED)
}

/// A message that arrived by GET, its parameters in the fallback URL's query.
fn message_by_get(form: &str) -> Entry {
    let url = format!("{FALLBACK_URL}?{form}");
    kept(&Params::from_query(form), "GET", &url, RECEIVED)
}

fn missed_call(sid: &str, at: u64) -> Entry {
    let form = format!(
        "CallSid={sid}&AccountSid={ACCOUNT}&From=%2B14155550100&To=%2B14155550199&CallStatus=ringing\
         &Direction=inbound&ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fvoice"
    );
    let entry = kept(&Params::from_form(form.as_bytes()), "POST", FALLBACK_URL, at);
    assert_eq!((entry.channel, entry.status), (Channel::Voice, Status::Missed));
    entry
}

fn message_sid(n: u32) -> String {
    format!("SM{n:032x}")
}

fn reply(body: &str, state: ReplyState) -> Reply {
    let mut reply = Reply::planned(ReplyKind::Answer, SENDER.to_owned(), NUMBER.to_owned(), body.to_owned());
    reply.set(state, None);
    reply
}

// --- answers ---------------------------------------------------------------------------------

fn answered(status: u16, content_type: Option<&str>, body: &[u8]) -> SendResult {
    SendResult::Answered {
        status: StatusCode::from_u16(status).expect("a status"),
        content_type: content_type.map(str::to_owned),
        body: body.to_vec(),
    }
}

fn twiml(document: &str) -> SendResult {
    answered(200, Some("text/xml"), document.as_bytes())
}

/// The Messages API's 201 for a message it accepted.
fn created(sid: &str) -> SendResult {
    let body = format!(r#"{{"sid":"{sid}","status":"queued","account_sid":"{ACCOUNT}"}}"#);
    answered(201, Some("application/json"), body.as_bytes())
}

fn is_api(request: &OutboundRequest) -> bool {
    request.url.starts_with(DEFAULT_API_BASE)
}

/// Answers the app's requests with `app`, and accepts every Messages API request (SIDs 1, 2, …).
fn answering(app: impl Fn(&OutboundRequest) -> SendResult) -> impl FnMut(&OutboundRequest) -> SendResult {
    let mut accepted = 0;
    move |request| {
        if is_api(request) {
            accepted += 1;
            created(&message_sid(accepted))
        } else {
            app(request)
        }
    }
}

// --- driving a run ---------------------------------------------------------------------------

#[derive(Debug)]
enum Event {
    Save(Box<Entry>),
    Send(OutboundRequest),
}

/// Everything a run asked for, in order, and its report.
#[derive(Debug)]
struct Transcript {
    events: Vec<Event>,
    report: EntryReport,
}

impl Transcript {
    fn saves(&self) -> Vec<&Entry> {
        self.events
            .iter()
            .filter_map(|event| match event {
                Event::Save(entry) => Some(&**entry),
                Event::Send(_) => None,
            })
            .collect()
    }

    fn sends(&self) -> Vec<&OutboundRequest> {
        self.events
            .iter()
            .filter_map(|event| match event {
                Event::Send(request) => Some(request),
                Event::Save(_) => None,
            })
            .collect()
    }

    fn deliveries(&self) -> Vec<&OutboundRequest> {
        self.sends().into_iter().filter(|request| !is_api(request)).collect()
    }

    fn api_sends(&self) -> Vec<&OutboundRequest> {
        self.sends().into_iter().filter(|request| is_api(request)).collect()
    }

    /// The entry as last committed.
    fn last_saved(&self) -> &Entry {
        self.saves().last().copied().expect("something was saved")
    }

    /// The run's steps as letters: `S` a save, `D` a delivery to the app, `M` a Messages API send.
    fn shape(&self) -> String {
        self.events
            .iter()
            .map(|event| match event {
                Event::Save(_) => 'S',
                Event::Send(request) if is_api(request) => 'M',
                Event::Send(_) => 'D',
            })
            .collect()
    }
}

/// Runs `run` to its end: every save succeeds, every request is answered by `answer` at `now`.
fn drive(mut run: Run<'_>, now: u64, mut answer: impl FnMut(&OutboundRequest) -> SendResult) -> Transcript {
    let mut events = Vec::new();
    for _ in 0..100 {
        match run.next() {
            Next::Save(entry) => {
                events.push(Event::Save(Box::new(entry)));
                run.saved(Ok(true));
            }
            Next::Send(request) => {
                let result = answer(&request);
                events.push(Event::Send(request));
                run.answered(result.outcome(), now);
            }
            Next::Done(report) => return Transcript { events, report },
        }
    }
    panic!("the run never finished: {events:?}")
}

/// A run that must finish at once, asking for nothing.
fn done_at_once(run: &Run<'_>) -> EntryReport {
    match run.next() {
        Next::Done(report) => report,
        other => panic!("expected the run to be done at once, got {other:?}"),
    }
}

fn expect_save(run: &mut Run<'_>) -> Entry {
    match run.next() {
        Next::Save(entry) => {
            run.saved(Ok(true));
            entry
        }
        other => panic!("expected a save, got {other:?}"),
    }
}

fn expect_send(run: &Run<'_>) -> OutboundRequest {
    match run.next() {
        Next::Send(request) => request,
        other => panic!("expected a send, got {other:?}"),
    }
}

fn header<'r>(request: &'r OutboundRequest, name: &str) -> Option<&'r str> {
    request
        .headers
        .iter()
        .find(|(known, _)| known.as_str().eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

fn form_of(request: &OutboundRequest) -> Params {
    Params::from_form(request.body.as_deref().expect("a form body").as_bytes())
}

fn pairs(params: &Params) -> Vec<(&str, &str)> {
    params.iter().collect()
}

/// The delivery to the app after the `replaying` commit.
fn delivery_of(replayer: &Replayer, entry: Entry) -> OutboundRequest {
    let mut run = replayer.begin(entry, Mode::default(), NOW);
    let saved = expect_save(&mut run);
    assert_eq!(saved.status, Status::Replaying);
    expect_send(&run)
}

/// A replay of the standard message whose app answers `document`, every reply accepted.
fn replay_answering(replayer: &Replayer, document: &str) -> Transcript {
    let document = document.to_owned();
    drive(
        replayer.begin(message(), Mode::default(), NOW),
        NOW,
        answering(move |_| twiml(&document)),
    )
}

// --- delivery --------------------------------------------------------------------------------

#[test]
fn a_pending_message_is_committed_as_replaying_before_anything_is_sent() {
    let replayer = replayer(RECOVERY);
    let mut run = replayer.begin(message(), Mode::default(), NOW);
    let Next::Save(saving) = run.next() else {
        panic!("the commit comes first: {:?}", run.next())
    };
    assert_eq!(saving.status, Status::Replaying);
    assert_eq!((saving.attempts, saving.replies.len()), (0, 0));
    // Asking again, or answering a request that was never asked for, changes nothing.
    assert_eq!(run.next(), Next::Save(saving.clone()));
    run.answered(SendOutcome::TimedOut, NOW);
    assert_eq!(run.next(), Next::Save(saving));
    run.saved(Ok(true));
    assert!(matches!(run.next(), Next::Send(_)));
    // A commit result nobody asked for is ignored too.
    run.saved(Ok(false));
    assert!(matches!(run.next(), Next::Send(_)));
}

#[test]
fn the_delivery_is_a_signed_post_to_the_error_url_without_the_fallback_parameters() {
    let entry = message();
    let received_at = entry.received_at.clone();
    assert_eq!(received_at, "2023-11-14T22:13:20.000Z");
    let delivery = delivery_of(&replayer(RECOVERY), entry);
    assert_eq!(delivery.method, Method::POST);
    assert_eq!(delivery.url, APP_URL);
    let params = form_of(&delivery);
    assert_eq!(pairs(&params), DELIVERED, "the original parameters, in order");
    assert_eq!((params.get("ErrorCode"), params.get("ErrorUrl")), (None, None));
    let signature = header(&delivery, SIGNATURE_HEADER).expect("signed");
    assert_eq!(
        signature,
        compute_signature(TOKEN, APP_URL, &params),
        "signed for that URL"
    );
    assert!(
        SignatureVerifier::new(TOKEN)
            .verify(APP_URL, Payload::Form(&params), signature)
            .is_ok(),
        "the app verifies it as it verifies Twilio's"
    );
    assert!(
        SignatureVerifier::new("another-token")
            .verify(APP_URL, Payload::Form(&params), signature)
            .is_err()
    );
    assert_eq!(header(&delivery, REPLAY_HEADER), Some("1"));
    assert_eq!(header(&delivery, RECEIVED_AT_HEADER), Some(received_at.as_str()));
    assert_eq!(header(&delivery, "user-agent"), Some(REPLAY_USER_AGENT));
    assert_eq!(
        header(&delivery, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        delivery.redirects,
        Redirects::Never,
        "a 3xx is the answer, never followed"
    );
    assert_eq!(delivery.timeout, DELIVERY_TIMEOUT);
    assert_eq!(delivery.max_answer_bytes, MAX_DOCUMENT_BYTES);
}

#[test]
fn a_get_message_is_delivered_by_get_with_its_parameters_in_the_query_and_the_url_signed() {
    let delivery = delivery_of(&replayer(RECOVERY), message_by_get(FORM));
    assert_eq!(delivery.method, Method::GET);
    assert_eq!(delivery.body, None);
    assert_eq!(header(&delivery, "content-type"), None);
    let (base, query) = delivery.url.split_once('?').expect("a query");
    assert_eq!(base, APP_URL);
    assert_eq!(pairs(&Params::from_query(query)), DELIVERED);
    let signature = header(&delivery, SIGNATURE_HEADER).expect("signed");
    assert_eq!(signature, compute_signature(TOKEN, &delivery.url, []));
    assert!(
        SignatureVerifier::new(TOKEN)
            .verify(&delivery.url, Payload::UrlOnly, signature)
            .is_ok()
    );
    assert_eq!(header(&delivery, REPLAY_HEADER), Some("1"));

    // An ErrorUrl with a query of its own keeps it, the parameters after it.
    let with_query = FORM.replace("%2Fsms", "%2Fsms%3Fshop%3D7");
    let delivery = delivery_of(&replayer(RECOVERY), message_by_get(&with_query));
    assert!(
        delivery
            .url
            .starts_with("https://app.example.com/sms?shop=7&MessageSid=SM1&"),
        "{}",
        delivery.url
    );
    assert!(!delivery.url.contains("ErrorCode"), "{}", delivery.url);
}

#[test]
fn the_replay_url_setting_overrides_the_error_url() {
    let replayer = replayer(&format!(
        "{RECOVERY}[replay]\nurl = \"https://app.example.com/replay\"\n"
    ));
    let mut run = replayer.begin(message(), Mode::default(), NOW);
    expect_save(&mut run);
    let delivery = expect_send(&run);
    assert_eq!(delivery.url, "https://app.example.com/replay");
    assert_eq!(
        header(&delivery, SIGNATURE_HEADER).map(str::to_owned),
        Some(compute_signature(
            TOKEN,
            "https://app.example.com/replay",
            &form_of(&delivery)
        ))
    );
    let report = drive(run, NOW, |_| twiml("<Response/>")).report;
    assert_eq!(report.target.as_deref(), Some("https://app.example.com/replay"));
    // A message without an ErrorUrl (a capture the layer made) goes there too…
    let without = message_from(
        &FORM.replace("&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fsms", ""),
        RECEIVED,
    );
    assert_eq!(without.error_url, None);
    assert_eq!(
        delivery_of(&replayer, without.clone()).url,
        "https://app.example.com/replay"
    );
    // … and, without [replay] url, it has nowhere to go: named, it is only reported; in a
    // pass, it is set aside as failed with the reason.
    let plain = self::replayer(RECOVERY);
    let named = Mode {
        named: true,
        ..Mode::default()
    };
    let report = done_at_once(&plain.begin(without.clone(), named, NOW));
    assert_eq!(report.outcome, Outcome::Skipped);
    assert!(report.detail.contains("no ErrorUrl"), "{}", report.detail);
    assert_eq!(report.status, Status::Pending);
    let run = plain.begin(without, Mode::default(), NOW);
    let Next::Save(aside) = run.next() else {
        panic!("set aside")
    };
    assert_eq!(aside.status, Status::Failed);
    assert!(
        aside
            .last_error
            .as_deref()
            .is_some_and(|error| error.contains("no ErrorUrl"))
    );
}

#[test]
fn a_target_off_the_allowlist_is_refused_and_named_the_entry_is_left_as_it_was() {
    let replayer = replayer(RECOVERY);
    for (url, refusal) in [
        (
            "https%3A%2F%2Fevil.example%2Fsms",
            "refused: host \"evil.example\" is not in recovery.allow_hosts",
        ),
        ("http%3A%2F%2Fapp.example.com%2Fsms", "refused: "),
        ("https%3A%2F%2Fuser%3Apw%40app.example.com%2Fsms", "refused: "),
    ] {
        let entry = message_from(&FORM.replace("https%3A%2F%2Fapp.example.com%2Fsms", url), RECEIVED);
        let target = entry.error_url.clone();
        let named = Mode {
            named: true,
            ..Mode::default()
        };
        let run = replayer.begin(entry, named, NOW);
        let report = done_at_once(&run);
        assert_eq!(report.outcome, Outcome::Skipped, "{url}");
        assert!(report.detail.starts_with(refusal), "{url}: {}", report.detail);
        assert_eq!(report.target, target);
        assert_eq!(report.status, Status::Pending, "nothing is written");
        assert_eq!(run.entry().attempts, 0);
    }
    // A [replay] url the allowlist refuses turns replay off, said at start-up and by the admin
    // API (rather than every entry being refused, one by one).
    let elsewhere = self::replayer(&format!("{RECOVERY}[replay]\nurl = \"https://other.example/replay\"\n"));
    let reason = elsewhere.off().expect("off");
    assert!(
        reason.contains("[replay] url is not on [recovery] allow_hosts"),
        "{reason}"
    );
    let report = done_at_once(&elsewhere.begin(message(), Mode::default(), NOW));
    assert_eq!(report.outcome, Outcome::Skipped);
    assert_eq!(report.detail, reason);
}

#[test]
fn a_pass_sets_an_undeliverable_entry_aside_as_failed_once_and_sends_nothing() {
    let replayer = replayer(RECOVERY);
    let refused = message_from(
        &FORM.replace(
            "https%3A%2F%2Fapp.example.com%2Fsms",
            "https%3A%2F%2Fevil.example%2Fsms",
        ),
        RECEIVED,
    );
    let mut run = replayer.begin(refused, Mode::default(), NOW);
    let Next::Save(aside) = run.next() else {
        panic!("an automatic pass writes the refusal down")
    };
    assert_eq!(aside.status, Status::Failed);
    assert_eq!(aside.attempts, 0, "not an attempt: nothing was sent");
    assert!(
        aside
            .last_error
            .as_deref()
            .is_some_and(|error| error.starts_with("refused: host \"evil.example\""))
    );
    run.saved(Ok(true));
    let Next::Done(report) = run.next() else {
        panic!("and is done, with nothing sent")
    };
    assert_eq!(report.outcome, Outcome::Skipped);
    assert!(!report.halts_queue, "the rest of the queue goes on");
    // A dry run only reports it.
    let dry = Mode {
        dry_run: true,
        ..Mode::default()
    };
    let refused = message_from(
        &FORM.replace(
            "https%3A%2F%2Fapp.example.com%2Fsms",
            "https%3A%2F%2Fevil.example%2Fsms",
        ),
        RECEIVED,
    );
    assert!(matches!(replayer.begin(refused, dry, NOW).next(), Next::Done(_)));
}

#[test]
fn without_recovery_or_an_auth_token_replay_is_off_and_entries_are_skipped_with_why() {
    let no_allowlist = replayer("");
    let reason = no_allowlist.off().expect("off");
    assert!(reason.contains("[recovery] allow_hosts"), "{reason}");
    let tokenless = Replayer::new(&config(RECOVERY), &SignatureVerifier::default(), TwilioApi::default());
    let tokenless_reason = tokenless.off().expect("off");
    assert!(tokenless_reason.contains("TWILIO_AUTH_TOKEN"), "{tokenless_reason}");
    assert_eq!(self::replayer(RECOVERY).off(), None);
    for (replayer, reason) in [(&no_allowlist, reason), (&tokenless, tokenless_reason)] {
        for mode in [
            Mode::default(),
            Mode {
                named: true,
                ..Mode::default()
            },
        ] {
            let report = done_at_once(&replayer.begin(message(), mode, NOW));
            assert_eq!((report.outcome, report.detail.as_str()), (Outcome::Skipped, reason));
            assert_eq!(report.status, Status::Pending);
        }
        let line = replayer.startup_line();
        assert_eq!(line.level(), LogLevel::Warn);
        assert!(line.to_json().contains(r#""replay":"off""#), "{line}");
    }
}

// --- failures --------------------------------------------------------------------------------

#[test]
fn a_failed_delivery_stays_pending_with_its_error_and_waits_its_backoff() {
    let replayer = replayer(RECOVERY);
    let failures = [
        (SendResult::TimedOut, "no answer within 15 s"),
        (
            SendResult::Failed("connection refused".to_owned()),
            "connection refused",
        ),
        (answered(500, Some("text/html"), b"<h1>oops</h1>"), "HTTP 500"),
        (answered(503, None, b""), "HTTP 503"),
        (answered(301, None, b""), "HTTP 301"),
        (answered(404, Some("text/xml"), b"<Response/>"), "HTTP 404"),
        (
            answered(200, Some("text/xml"), b"<response><Message>hi</Message></response>"),
            "12102",
        ),
        (
            answered(200, Some("application/json"), b"{\"reply\":\"hi\"}"),
            "Content-Type",
        ),
        (answered(200, Some("text/xml"), b""), "11770"),
        (
            twiml("<Response><Say>A voice verb</Say></Response>"),
            "<Say> is a voice verb",
        ),
    ];
    for (failure, error) in failures {
        let later = NOW + 5_000;
        let transcript = drive(replayer.begin(message(), Mode::default(), NOW), later, |_| {
            failure.clone()
        });
        assert_eq!(transcript.shape(), "SDS", "{error}");
        let after = transcript.last_saved();
        assert_eq!((after.status, after.attempts), (Status::Pending, 1), "{error}");
        assert!(
            after.last_error.as_deref().is_some_and(|last| last.contains(error)),
            "{error}: {:?}",
            after.last_error
        );
        assert_eq!(
            after.next_attempt_ms,
            later + 30_000,
            "{error}: the backoff counts from the answer"
        );
        assert!(after.replies.is_empty(), "{error}");
        let report = &transcript.report;
        assert_eq!((report.outcome, report.status), (Outcome::Retrying, Status::Pending));
        assert!(
            report.detail.starts_with("attempt 1 failed, next in 30 s: "),
            "{}",
            report.detail
        );
        assert!(report.stored);
        assert_eq!(report.line().level(), LogLevel::Warn);
    }
}

#[test]
fn the_backoff_doubles_from_the_minimum_interval_and_caps_at_fifteen_minutes() {
    let default = replayer(RECOVERY);
    let waits: Vec<u64> = (1..=8).map(|attempts| default.backoff_ms(attempts) / 1000).collect();
    assert_eq!(waits, [30, 60, 120, 240, 480, 900, 900, 900]);
    assert_eq!(default.backoff_ms(0), 30_000, "before any failure: the minimum");
    assert_eq!(default.backoff_ms(u32::MAX), 900_000);
    let quick = replayer(&format!("{RECOVERY}[replay]\nmin_interval_seconds = 1\n"));
    let waits: Vec<u64> = (1..=12).map(|attempts| quick.backoff_ms(attempts) / 1000).collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]);
    let slow = replayer(&format!("{RECOVERY}[replay]\nmin_interval_seconds = 900\n"));
    assert!((1..=5).all(|attempts| slow.backoff_ms(attempts) == 900_000));

    // A run schedules the attempt after the one that failed by the same rule.
    let mut entry = message();
    entry.attempts = 3;
    let transcript = drive(default.begin(entry, Mode::default(), NOW), NOW, |_| {
        SendResult::TimedOut
    });
    let after = transcript.last_saved();
    assert_eq!((after.attempts, after.next_attempt_ms), (4, NOW + 240_000));
    assert!(
        transcript.report.detail.starts_with("attempt 4 failed, next in 240 s"),
        "{}",
        transcript.report.detail
    );
}

#[test]
fn an_entry_is_due_its_scheduled_attempt_and_never_sooner_than_the_interval_after_it_arrived() {
    let replayer = replayer(RECOVERY);
    let mut entry = message();
    assert_eq!(replayer.due_at(&entry), RECEIVED + 30_000);
    entry.next_attempt_ms = RECEIVED + 10_000;
    assert_eq!(replayer.due_at(&entry), RECEIVED + 30_000);
    entry.next_attempt_ms = RECEIVED + 600_000;
    assert_eq!(replayer.due_at(&entry), RECEIVED + 600_000);
    assert_eq!(replayer.tick(), std::time::Duration::from_secs(30));
}

#[test]
fn after_max_attempts_the_entry_is_failed_for_good() {
    let replayer = replayer(&format!("{RECOVERY}[replay]\nmax_attempts = 3\n"));
    let mut entry = message();
    entry.attempts = 2;
    entry.next_attempt_ms = NOW - 1;
    let transcript = drive(replayer.begin(entry, Mode::default(), NOW), NOW, |_| {
        answered(500, None, b"")
    });
    let after = transcript.last_saved();
    assert_eq!(
        (after.status, after.attempts, after.next_attempt_ms),
        (Status::Failed, 3, 0)
    );
    assert!(
        after
            .last_error
            .as_deref()
            .is_some_and(|error| error.contains("HTTP 500"))
    );
    let report = &transcript.report;
    assert_eq!((report.outcome, report.status), (Outcome::Failed, Status::Failed));
    assert!(
        report.detail.starts_with("attempt 3 of 3 failed, giving up"),
        "{}",
        report.detail
    );
    assert_eq!(report.line().level(), LogLevel::Error);
    // With max_attempts = 1 the first failure is the last.
    let once = self::replayer(&format!("{RECOVERY}[replay]\nmax_attempts = 1\n"));
    let transcript = drive(once.begin(message(), Mode::default(), NOW), NOW, |_| {
        SendResult::TimedOut
    });
    assert_eq!(transcript.last_saved().status, Status::Failed);
    assert_eq!(transcript.report.outcome, Outcome::Failed);
}

#[test]
fn a_failed_entry_is_delivered_again_only_when_named() {
    let replayer = replayer(&format!("{RECOVERY}[replay]\nmax_attempts = 2\n"));
    let mut failed = message();
    failed.status = Status::Failed;
    failed.attempts = 2;
    failed.last_error = Some("the app answered HTTP 500".to_owned());
    let report = done_at_once(&replayer.begin(failed.clone(), Mode::default(), NOW));
    assert_eq!(report.outcome, Outcome::Skipped);
    assert!(
        report.detail.contains("name it to replay it by hand"),
        "{}",
        report.detail
    );
    assert_eq!(report.status, Status::Failed);

    let named = Mode {
        named: true,
        ..Mode::default()
    };
    let transcript = drive(replayer.begin(failed.clone(), named, NOW), NOW, |_| {
        twiml("<Response/>")
    });
    assert_eq!(transcript.shape(), "SDS");
    assert_eq!(transcript.saves()[0].status, Status::Replaying);
    let after = transcript.last_saved();
    assert_eq!((after.status, after.last_error.as_deref()), (Status::Replayed, None));
    assert_eq!(transcript.report.outcome, Outcome::Delivered);
    // Named and failing again: still failed, one more attempt counted.
    let transcript = drive(replayer.begin(failed, named, NOW), NOW, |_| SendResult::TimedOut);
    let after = transcript.last_saved();
    assert_eq!((after.status, after.attempts), (Status::Failed, 3));
    assert_eq!(transcript.report.outcome, Outcome::Failed);
}

// --- the app's answer and its replies --------------------------------------------------------

#[test]
fn a_message_reply_goes_to_the_sender_from_the_number_they_wrote_to() {
    let transcript = replay_answering(
        &replayer(RECOVERY),
        "<Response><Message>Open till 9.</Message></Response>",
    );
    let replies = &transcript.last_saved().replies;
    assert_eq!(replies.len(), 1);
    let reply = &replies[0];
    assert_eq!(reply.kind, ReplyKind::Answer);
    assert_eq!((reply.to.as_str(), reply.from.as_str()), (SENDER, NUMBER));
    assert_eq!(reply.body, "Open till 9.");
    assert!(reply.media.is_empty());
    assert_eq!(reply.status_callback, None);
    assert_eq!((reply.state, reply.sent), (ReplyState::Sent, true));
    assert_eq!(reply.message_sid, Some(message_sid(1)));
    assert_eq!(reply.error, None);
}

#[test]
fn a_messages_to_from_media_and_status_callback_are_carried_into_the_send() {
    let transcript = replay_answering(
        &replayer(RECOVERY),
        r#"<Response><Message to="+14155550111" from="+14155550122" statusCallback="/status"><Body>Pics</Body><Media>https://cdn.example.com/a.png</Media><Media>/b.png</Media></Message></Response>"#,
    );
    let reply = &transcript.last_saved().replies[0];
    assert_eq!(
        (reply.to.as_str(), reply.from.as_str(), reply.body.as_str()),
        ("+14155550111", "+14155550122", "Pics")
    );
    assert_eq!(
        reply.media,
        ["https://cdn.example.com/a.png", "https://app.example.com/b.png"],
        "relative URLs resolved against the app's URL"
    );
    assert_eq!(reply.status_callback.as_deref(), Some("https://app.example.com/status"));
    let send = transcript.api_sends()[0];
    assert_eq!(
        pairs(&form_of(send)),
        [
            ("To", "+14155550111"),
            ("From", "+14155550122"),
            ("Body", "Pics"),
            ("MediaUrl", "https://cdn.example.com/a.png"),
            ("MediaUrl", "https://app.example.com/b.png"),
            ("StatusCallback", "https://app.example.com/status"),
        ]
    );
}

#[test]
fn the_messages_api_request_is_a_basic_authenticated_form_post_to_the_accounts_messages() {
    let transcript = replay_answering(&replayer(RECOVERY), "<Response><Message>Yes</Message></Response>");
    let send = transcript.api_sends()[0];
    assert_eq!(send.method, Method::POST);
    assert_eq!(
        send.url,
        format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
    );
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"));
    assert_eq!(
        header(send, "authorization"),
        Some(format!("Basic {credentials}").as_str())
    );
    assert_eq!(header(send, "content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(header(send, "user-agent"), Some(REPLAY_USER_AGENT));
    assert_eq!(header(send, SIGNATURE_HEADER), None);
    assert_eq!(
        pairs(&form_of(send)),
        [("To", SENDER), ("From", NUMBER), ("Body", "Yes")]
    );
    assert_eq!(send.timeout, SEND_TIMEOUT);
    assert_eq!(send.redirects, Redirects::Never);
}

#[test]
fn an_api_key_authenticates_instead_of_the_auth_token() {
    let api = TwilioApi::new("http://127.0.0.1:4010/")
        .expect("a base")
        .with_api_key("SK0123456789abcdef0123456789abcdef", "key-secret");
    assert_eq!(api.base(), "http://127.0.0.1:4010");
    assert_eq!(api.auth_kind(), "api key (TWILIO_API_KEY)");
    assert!(!format!("{api:?}").contains("key-secret"), "{api:?}");
    let replayer = Replayer::new(&config(RECOVERY), &SignatureVerifier::new(TOKEN), api);
    assert!(
        !replayer.startup_line().to_json().contains("key-secret") && !replayer.startup_line().to_json().contains(TOKEN)
    );
    let mut run = replayer.begin(message(), Mode::default(), NOW);
    expect_save(&mut run);
    expect_send(&run);
    run.answered(twiml("<Response><Message>Yes</Message></Response>").outcome(), NOW);
    expect_save(&mut run);
    let send = expect_send(&run);
    assert_eq!(
        send.url,
        format!("http://127.0.0.1:4010/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
    );
    let credentials = base64::engine::general_purpose::STANDARD.encode("SK0123456789abcdef0123456789abcdef:key-secret");
    assert_eq!(
        header(&send, "authorization"),
        Some(format!("Basic {credentials}").as_str())
    );

    assert_eq!(TwilioApi::default().base(), DEFAULT_API_BASE);
    assert_eq!(TwilioApi::default().auth_kind(), "the account's auth token");
    for bad in [
        "api.twilio.com",
        "ftp://api.twilio.com",
        "https://api.twilio.com/?x=1",
        "https://api.twilio.com#f",
        "",
    ] {
        assert!(TwilioApi::new(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn each_reply_is_committed_as_sending_before_its_send_and_as_sent_after() {
    let transcript = replay_answering(
        &replayer(RECOVERY),
        "<Response><Message>One</Message><Message>Two</Message></Response>",
    );
    assert_eq!(transcript.shape(), "SDSMSMS");
    let saves = transcript.saves();
    let states = |entry: &Entry| -> Vec<ReplyState> { entry.replies.iter().map(|reply| reply.state).collect() };
    assert_eq!((saves[0].status, states(saves[0])), (Status::Replaying, vec![]));
    assert_eq!(
        (saves[1].status, states(saves[1])),
        (Status::Replaying, vec![ReplyState::Sending, ReplyState::Planned])
    );
    assert_eq!(
        (saves[2].status, states(saves[2])),
        (Status::Replaying, vec![ReplyState::Sent, ReplyState::Sending])
    );
    assert_eq!(
        (saves[3].status, states(saves[3])),
        (Status::Replayed, vec![ReplyState::Sent, ReplyState::Sent])
    );
    assert_eq!(saves[2].replies[0].message_sid, Some(message_sid(1)));
    assert_eq!(saves[3].replies[1].message_sid, Some(message_sid(2)));
    // Each send is the reply the commit before it marked as being sent.
    let sends = transcript.api_sends();
    assert_eq!(form_of(sends[0]).get("Body"), Some("One"));
    assert_eq!(form_of(sends[1]).get("Body"), Some("Two"));
    let last = transcript.last_saved();
    assert_eq!((last.last_error.as_deref(), last.next_attempt_ms), (None, 0));
    let report = &transcript.report;
    assert_eq!(
        (
            report.outcome,
            report.status,
            report.replies_sent,
            report.replies_withheld
        ),
        (Outcome::Delivered, Status::Replayed, 2, 0)
    );
    assert_eq!(report.detail, "2 sent, 0 withheld");
    assert_eq!(report.target.as_deref(), Some(APP_URL));
    assert_eq!(report.line().level(), LogLevel::Info);
}

#[test]
fn a_reply_twilio_refuses_is_refused_with_its_code_and_the_next_one_still_goes() {
    let replayer = replayer(RECOVERY);
    let run = replayer.begin(message(), Mode::default(), NOW);
    let mut api_calls = 0;
    let transcript = drive(run, NOW, |request| {
        if !is_api(request) {
            return twiml("<Response><Message>One</Message><Message>Two</Message></Response>");
        }
        api_calls += 1;
        if api_calls == 1 {
            answered(
                400,
                Some("application/json"),
                br#"{"code":21211,"message":"Invalid 'To' Phone Number","status":400}"#,
            )
        } else {
            created(&message_sid(9))
        }
    });
    assert_eq!(transcript.shape(), "SDSMSMS");
    let replies = &transcript.last_saved().replies;
    assert_eq!(replies[0].state, ReplyState::Refused);
    assert!(!replies[0].sent);
    let error = replies[0].error.as_deref().unwrap_or_default();
    assert!(
        error.contains("HTTP 400") && error.contains("21211") && error.contains("Invalid 'To' Phone Number"),
        "{error}"
    );
    assert_eq!(replies[0].message_sid, None);
    assert_eq!(replies[1].state, ReplyState::Sent);
    let report = &transcript.report;
    assert_eq!(
        (report.outcome, report.status, report.replies_sent),
        (Outcome::Delivered, Status::Replayed, 1)
    );
    assert_eq!(report.detail, "1 sent, 0 withheld, 1 refused");
}

#[test]
fn a_reply_whose_outcome_is_unknown_withholds_the_rest_and_the_entry_needs_attention() {
    let replayer = replayer(RECOVERY);
    for (outcome, error) in [
        (
            answered(500, Some("application/json"), br#"{"code":20500}"#),
            "HTTP 500",
        ),
        (answered(502, None, b""), "HTTP 502"),
        (answered(408, None, b""), "HTTP 408"),
        (SendResult::TimedOut, "no answer from the Messages API within 15 s"),
        (SendResult::Failed("connection reset".to_owned()), "connection reset"),
        (answered(201, Some("application/json"), b"{}"), "without a message SID"),
        (
            answered(200, Some("application/json"), br#"{"sid":"not-a-sid"}"#),
            "without a message SID",
        ),
        (
            answered(201, Some("text/html"), b"<html>proxy</html>"),
            "without a message SID",
        ),
    ] {
        let run = replayer.begin(message(), Mode::default(), NOW);
        let transcript = drive(run, NOW, |request| {
            if is_api(request) {
                outcome.clone()
            } else {
                twiml("<Response><Message>One</Message><Message>Two</Message><Message>Three</Message></Response>")
            }
        });
        assert_eq!(transcript.shape(), "SDSMS", "{error}: nothing more is sent");
        let after = transcript.last_saved();
        assert_eq!(after.status, Status::NeedsAttention, "{error}");
        let replies = &after.replies;
        assert_eq!(replies[0].state, ReplyState::Unknown, "{error}");
        assert!(
            replies[0].error.as_deref().is_some_and(|text| text.contains(error)),
            "{error}: {:?}",
            replies[0].error
        );
        for withheld in &replies[1..] {
            assert_eq!(withheld.state, ReplyState::Withheld, "{error}");
            assert_eq!(
                withheld.error.as_deref(),
                Some("not sent: an earlier reply's outcome is unknown")
            );
        }
        let report = &transcript.report;
        assert_eq!(
            (
                report.outcome,
                report.status,
                report.replies_sent,
                report.replies_withheld
            ),
            (Outcome::NeedsAttention, Status::NeedsAttention, 0, 2),
            "{error}"
        );
        assert_eq!(report.detail, "0 sent, 2 withheld, 1 unknown (never re-sent)");
        assert_eq!(report.line().level(), LogLevel::Error);
    }
}

#[test]
fn an_empty_response_or_a_204_is_replayed_with_no_replies() {
    let replayer = replayer(RECOVERY);
    for answer in [
        twiml("<Response/>"),
        twiml("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>"),
        answered(204, None, b""),
    ] {
        let transcript = drive(replayer.begin(message(), Mode::default(), NOW), NOW, |_| answer.clone());
        assert_eq!(transcript.shape(), "SDS", "{answer:?}");
        let after = transcript.last_saved();
        assert_eq!(
            (after.status, after.replies.len(), after.attempts),
            (Status::Replayed, 0, 0)
        );
        let report = &transcript.report;
        assert_eq!((report.outcome, report.replies_sent), (Outcome::Delivered, 0));
        assert_eq!(report.detail, "the app answered with no reply");
    }
}

#[test]
fn a_plain_text_answer_is_one_reply_with_that_text() {
    let replayer = replayer(RECOVERY);
    let transcript = drive(
        replayer.begin(message(), Mode::default(), NOW),
        NOW,
        answering(|_| answered(200, Some("text/plain; charset=utf-8"), b"  See you at 5 \n")),
    );
    assert_eq!(transcript.shape(), "SDSMS");
    let replies = &transcript.last_saved().replies;
    assert_eq!(replies.len(), 1);
    assert_eq!(
        (replies[0].body.as_str(), replies[0].to.as_str(), replies[0].state),
        ("See you at 5", SENDER, ReplyState::Sent)
    );
    // TwiML served as text/plain is TwiML, not a text containing markup.
    let transcript = drive(
        replayer.begin(message(), Mode::default(), NOW),
        NOW,
        answering(|_| answered(200, Some("text/plain"), b"<Response><Message>Hi</Message></Response>")),
    );
    assert_eq!(transcript.last_saved().replies[0].body, "Hi");
}

#[test]
fn a_reply_with_no_valid_account_sid_is_refused_before_it_is_sent() {
    let entry = message_from(&FORM.replace(ACCOUNT, "AC1"), RECEIVED);
    let transcript = drive(
        replayer(RECOVERY).begin(entry, Mode::default(), NOW),
        NOW,
        answering(|_| twiml("<Response><Message>Hi</Message></Response>")),
    );
    assert_eq!(transcript.shape(), "SDS", "never sent");
    let reply = &transcript.last_saved().replies[0];
    assert_eq!(reply.state, ReplyState::Refused);
    assert_eq!(
        reply.error.as_deref(),
        Some("the entry has no valid AccountSid to send from")
    );
    assert_eq!(transcript.last_saved().status, Status::Replayed);
    assert_eq!(transcript.report.detail, "0 sent, 0 withheld, 1 refused");
}

// --- redirects -------------------------------------------------------------------------------

#[test]
fn a_redirect_is_followed_with_a_freshly_signed_request_and_replies_gathered_across_documents() {
    let replayer = replayer(RECOVERY);
    let transcript = drive(
        replayer.begin(message(), Mode::default(), NOW),
        NOW,
        answering(|request| {
            if request.url == APP_URL {
                twiml(
                    "<Response><Message>First</Message><Redirect>/sms/next</Redirect><Message>Never</Message></Response>",
                )
            } else {
                twiml("<Response><Message>Second</Message></Response>")
            }
        }),
    );
    assert_eq!(transcript.shape(), "SDDSMSMS", "no commit between the documents");
    let redirected = transcript.deliveries()[1];
    assert_eq!(redirected.method, Method::POST);
    assert_eq!(redirected.url, "https://app.example.com/sms/next");
    let params = form_of(redirected);
    assert_eq!(pairs(&params), DELIVERED);
    let signature = header(redirected, SIGNATURE_HEADER).expect("signed");
    assert!(
        SignatureVerifier::new(TOKEN)
            .verify("https://app.example.com/sms/next", Payload::Form(&params), signature)
            .is_ok()
    );
    assert_eq!(header(redirected, REPLAY_HEADER), Some("1"));
    assert_eq!(redirected.redirects, Redirects::Never);
    let bodies: Vec<&str> = transcript
        .last_saved()
        .replies
        .iter()
        .map(|reply| reply.body.as_str())
        .collect();
    assert_eq!(
        bodies,
        ["First", "Second"],
        "verbs after a <Redirect> are never reached"
    );
    assert_eq!(transcript.report.target.as_deref(), Some(APP_URL));
}

#[test]
fn a_redirects_method_is_honoured_and_a_relative_url_resolved_against_the_url_that_answered() {
    let replayer = replayer(RECOVERY);
    let entry = message_from(&FORM.replace("%2Fsms", "%2Fsms%2Fincoming"), RECEIVED);
    let transcript = drive(replayer.begin(entry, Mode::default(), NOW), NOW, |request| {
        if request.method == Method::GET {
            twiml("<Response/>")
        } else {
            twiml(r#"<Response><Redirect method="GET">menu?step=2</Redirect></Response>"#)
        }
    });
    let redirected = transcript.deliveries()[1];
    assert_eq!(redirected.method, Method::GET);
    let (base, query) = redirected
        .url
        .split_once("?step=2&")
        .expect("the parameters after its query");
    assert_eq!(base, "https://app.example.com/sms/menu");
    assert_eq!(pairs(&Params::from_query(query)), DELIVERED);
    assert_eq!(redirected.body, None);
    assert!(
        SignatureVerifier::new(TOKEN)
            .verify(
                &redirected.url,
                Payload::UrlOnly,
                header(redirected, SIGNATURE_HEADER).unwrap_or_default()
            )
            .is_ok()
    );
    assert_eq!(transcript.last_saved().status, Status::Replayed);
}

#[test]
fn more_redirects_than_allowed_is_a_failed_attempt() {
    let replayer = replayer(RECOVERY);
    let transcript = drive(replayer.begin(message(), Mode::default(), NOW), NOW, |_| {
        twiml("<Response><Message>Looping</Message><Redirect>/sms</Redirect></Response>")
    });
    assert_eq!(transcript.deliveries().len(), 1 + MAX_REDIRECTS as usize);
    assert!(transcript.api_sends().is_empty());
    let after = transcript.last_saved();
    assert_eq!((after.status, after.attempts), (Status::Pending, 1));
    assert_eq!(after.last_error.as_deref(), Some("more than 5 <Redirect>s"));
    assert!(
        after.replies.is_empty(),
        "what was gathered is dropped with the attempt"
    );
    assert_eq!(transcript.report.outcome, Outcome::Retrying);
}

#[test]
fn a_redirect_off_the_allowlist_is_not_followed_and_what_was_answered_stands() {
    let replayer = replayer(RECOVERY);
    let transcript = drive(
        replayer.begin(message(), Mode::default(), NOW),
        NOW,
        answering(|_| {
            twiml("<Response><Message>Hi</Message><Redirect>https://evil.example/steal</Redirect></Response>")
        }),
    );
    assert_eq!(transcript.shape(), "SDSMS");
    assert!(
        transcript
            .sends()
            .iter()
            .all(|request| !request.url.contains("evil.example"))
    );
    assert_eq!(transcript.last_saved().status, Status::Replayed);
    assert_eq!(transcript.last_saved().replies[0].state, ReplyState::Sent);
    let report = &transcript.report;
    assert_eq!(report.outcome, Outcome::Delivered);
    assert_eq!(
        report.detail,
        "a <Redirect> was not followed (host \"evil.example\" is not in recovery.allow_hosts); 1 sent, 0 withheld"
    );
}

// --- withheld replies ------------------------------------------------------------------------

#[test]
fn a_reply_to_a_message_older_than_the_reply_window_is_withheld() {
    let replayer = replayer(RECOVERY);
    let late = RECEIVED + 61 * 60_000;
    let transcript = drive(
        replayer.begin(message(), Mode::default(), late),
        late,
        answering(|_| twiml("<Response><Message>Sorry for the wait</Message></Response>")),
    );
    assert_eq!(transcript.shape(), "SDS", "nothing goes to the Messages API");
    let after = transcript.last_saved();
    assert_eq!(after.status, Status::Replayed, "the app has it: never delivered again");
    let reply = &after.replies[0];
    assert_eq!((reply.state, reply.sent), (ReplyState::Withheld, false));
    assert_eq!(
        reply.error.as_deref(),
        Some("the message is 61 minutes old, past [replay] reply_window_minutes (60)")
    );
    let report = &transcript.report;
    assert_eq!(
        (report.outcome, report.replies_sent, report.replies_withheld),
        (Outcome::Delivered, 0, 1)
    );
    assert_eq!(report.detail, "0 sent, 1 withheld");
    // Exactly at the window's end it is still sent; the age counts when the app answered.
    let edge = RECEIVED + 60 * 60_000;
    let transcript = drive(
        replayer.begin(message(), Mode::default(), NOW),
        edge,
        answering(|_| twiml("<Response><Message>Just in time</Message></Response>")),
    );
    assert_eq!(transcript.last_saved().replies[0].state, ReplyState::Sent);
    let transcript = drive(
        replayer.begin(message(), Mode::default(), NOW),
        edge + 1,
        answering(|_| twiml("<Response><Message>Just too late</Message></Response>")),
    );
    assert_eq!(transcript.last_saved().replies[0].state, ReplyState::Withheld);
    // The window is configurable.
    let wide = self::replayer(&format!("{RECOVERY}[replay]\nreply_window_minutes = 120\n"));
    let transcript = drive(
        wide.begin(message(), Mode::default(), late),
        late,
        answering(|_| twiml("<Response><Message>Still in time</Message></Response>")),
    );
    assert_eq!(transcript.last_saved().replies[0].state, ReplyState::Sent);
}

#[test]
fn with_send_replies_off_every_reply_is_withheld() {
    let replayer = replayer(&format!("{RECOVERY}[replay]\nsend_replies = false\n"));
    let transcript = drive(
        replayer.begin(message(), Mode::default(), NOW),
        NOW,
        answering(|_| twiml("<Response><Message>One</Message><Message>Two</Message></Response>")),
    );
    assert_eq!(transcript.shape(), "SDS");
    let after = transcript.last_saved();
    assert_eq!(after.status, Status::Replayed);
    for reply in &after.replies {
        assert_eq!(reply.state, ReplyState::Withheld);
        assert_eq!(reply.error.as_deref(), Some("[replay] send_replies is off"));
    }
    assert_eq!(transcript.report.replies_withheld, 2);
}

#[test]
fn a_named_replayed_entry_sends_its_withheld_replies_only_when_asked() {
    let replayer = replayer(RECOVERY);
    let late = RECEIVED + 2 * 60 * 60_000;
    let first = drive(
        replayer.begin(message(), Mode::default(), late),
        late,
        answering(|_| twiml("<Response><Message>Late one</Message><Message>Late two</Message></Response>")),
    );
    let replayed = first.last_saved().clone();
    assert_eq!(replayed.status, Status::Replayed);
    assert!(replayed.replies.iter().all(|reply| reply.state == ReplyState::Withheld));

    // Not named, or named without send_withheld: already replayed.
    for mode in [
        Mode::default(),
        Mode {
            named: true,
            ..Mode::default()
        },
        Mode {
            send_withheld: true,
            ..Mode::default()
        },
    ] {
        let report = done_at_once(&replayer.begin(replayed.clone(), mode, late));
        assert_eq!(
            (report.outcome, report.detail.as_str()),
            (Outcome::Skipped, "already replayed")
        );
    }
    let asked = Mode {
        named: true,
        send_withheld: true,
        dry_run: false,
    };
    // A dry run says what would go.
    let report = done_at_once(&replayer.begin(replayed.clone(), Mode { dry_run: true, ..asked }, late));
    assert_eq!(
        (report.outcome, report.detail.as_str()),
        (Outcome::WouldDeliver, "would send 2 withheld replies")
    );
    // Sent deliberately, however late, without delivering to the app again.
    let transcript = drive(
        replayer.begin(replayed.clone(), asked, late),
        late,
        answering(|_| panic!("the app is not asked again")),
    );
    assert_eq!(transcript.shape(), "SMSMS");
    assert_eq!(transcript.saves()[0].status, Status::Replaying);
    assert_eq!(transcript.saves()[0].replies[0].state, ReplyState::Sending);
    let after = transcript.last_saved();
    assert_eq!(after.status, Status::Replayed);
    assert!(
        after
            .replies
            .iter()
            .all(|reply| reply.state == ReplyState::Sent && reply.error.is_none())
    );
    let report = &transcript.report;
    assert_eq!(
        (report.outcome, report.replies_sent, report.replies_withheld),
        (Outcome::Replied, 2, 0)
    );
    assert_eq!(report.detail, "2 sent, 0 withheld");
    // Once sent, there is nothing withheld left.
    let report = done_at_once(&replayer.begin(after.clone(), asked, late));
    assert_eq!(
        (report.outcome, report.detail.as_str()),
        (Outcome::Skipped, "no withheld replies to send")
    );
}

// --- interrupted runs ------------------------------------------------------------------------

#[test]
fn an_entry_interrupted_mid_send_needs_attention_and_its_reply_is_never_sent_again() {
    let replayer = replayer(RECOVERY);
    let mut interrupted = message();
    interrupted.status = Status::Replaying;
    interrupted.replies = vec![
        reply("One", ReplyState::Sent),
        reply("Two", ReplyState::Sending),
        reply("Three", ReplyState::Planned),
    ];
    for mode in [
        Mode::default(),
        Mode {
            named: true,
            ..Mode::default()
        },
    ] {
        let transcript = drive(replayer.begin(interrupted.clone(), mode, NOW), NOW, |request| {
            panic!("nothing is sent: {request:?}")
        });
        assert_eq!(transcript.shape(), "S");
        let after = transcript.last_saved();
        assert_eq!(after.status, Status::NeedsAttention);
        let states: Vec<ReplyState> = after.replies.iter().map(|reply| reply.state).collect();
        assert_eq!(states, [ReplyState::Sent, ReplyState::Unknown, ReplyState::Withheld]);
        assert_eq!(
            after.replies[1].error.as_deref(),
            Some("interrupted while being sent: it may or may not have gone out")
        );
        assert_eq!(
            after.replies[2].error.as_deref(),
            Some("not sent: an earlier reply was interrupted")
        );
        let report = &transcript.report;
        assert_eq!(
            (report.outcome, report.status, report.replies_withheld),
            (Outcome::NeedsAttention, Status::NeedsAttention, 1)
        );
        assert_eq!(
            report.detail,
            "interrupted while sending a reply: never re-sent; see its replies; 0 sent, 1 withheld, 1 unknown (never re-sent)"
        );
        // And from then on it is left to a person, named or not.
        let again = done_at_once(&replayer.begin(after.clone(), mode, NOW));
        assert_eq!(again.outcome, Outcome::Skipped);
        assert!(again.detail.starts_with("needs attention"), "{}", again.detail);
    }
    // A dry run only says so.
    let dry = Mode {
        dry_run: true,
        ..Mode::default()
    };
    let report = done_at_once(&replayer.begin(interrupted, dry, NOW));
    assert_eq!(report.outcome, Outcome::Skipped);
    assert!(report.detail.contains("marks it needs-attention"), "{}", report.detail);
}

#[test]
fn a_replaying_entry_with_no_replies_is_delivered_again() {
    let replayer = replayer(RECOVERY);
    let mut interrupted = message();
    interrupted.status = Status::Replaying;
    let transcript = drive(
        replayer.begin(interrupted.clone(), Mode::default(), NOW),
        NOW,
        answering(|_| twiml("<Response><Message>Answer</Message></Response>")),
    );
    assert_eq!(transcript.shape(), "SDSMS", "toward the app, at least once");
    assert_eq!(pairs(&form_of(transcript.deliveries()[0])), DELIVERED);
    assert_eq!(transcript.last_saved().status, Status::Replayed);
    assert_eq!(transcript.report.outcome, Outcome::Delivered);
    // A dry run would deliver it.
    let dry = Mode {
        dry_run: true,
        ..Mode::default()
    };
    assert_eq!(
        done_at_once(&replayer.begin(interrupted, dry, NOW)).outcome,
        Outcome::WouldDeliver
    );
}

#[test]
fn a_replaying_entry_with_planned_replies_sends_them_without_asking_the_app_again() {
    let replayer = replayer(RECOVERY);
    let mut interrupted = message();
    interrupted.status = Status::Replaying;
    interrupted.replies = vec![reply("One", ReplyState::Sent), reply("Two", ReplyState::Planned)];
    let transcript = drive(
        replayer.begin(interrupted.clone(), Mode::default(), NOW),
        NOW,
        answering(|_| panic!("the app answered already")),
    );
    assert_eq!(transcript.shape(), "SMS");
    assert_eq!(transcript.saves()[0].replies[1].state, ReplyState::Sending);
    assert_eq!(form_of(transcript.api_sends()[0]).get("Body"), Some("Two"));
    let after = transcript.last_saved();
    assert_eq!(after.status, Status::Replayed);
    assert_eq!(after.replies[1].state, ReplyState::Sent);
    assert_eq!(
        (transcript.report.outcome, transcript.report.replies_sent),
        (Outcome::Replied, 1)
    );
    let dry = Mode {
        dry_run: true,
        ..Mode::default()
    };
    let report = done_at_once(&replayer.begin(interrupted, dry, NOW));
    assert_eq!(report.outcome, Outcome::Skipped);
}

// --- commits that do not go through ----------------------------------------------------------

#[test]
fn an_entry_dismissed_meanwhile_stops_the_run_with_nothing_more_sent() {
    let replayer = replayer(RECOVERY);
    // Dismissed before the delivery.
    let mut run = replayer.begin(message(), Mode::default(), NOW);
    assert!(matches!(run.next(), Next::Save(_)));
    run.saved(Ok(false));
    let report = done_at_once(&run);
    assert_eq!(report.outcome, Outcome::Skipped);
    assert_eq!(report.detail, "dismissed meanwhile: the replay stopped");
    assert!(report.stored, "the lane goes on");
    // Dismissed between the app's answer and the reply's send.
    let mut run = replayer.begin(message(), Mode::default(), NOW);
    expect_save(&mut run);
    expect_send(&run);
    run.answered(twiml("<Response><Message>Hi</Message></Response>").outcome(), NOW);
    let Next::Save(saving) = run.next() else {
        panic!("the reply is committed first")
    };
    assert_eq!(saving.replies[0].state, ReplyState::Sending);
    run.saved(Ok(false));
    let report = done_at_once(&run);
    assert_eq!((report.outcome, report.replies_sent), (Outcome::Skipped, 0));
}

#[test]
fn a_failed_commit_stops_the_run_as_store_failed_before_anything_more_is_sent() {
    let replayer = replayer(RECOVERY);
    let mut run = replayer.begin(message(), Mode::default(), NOW);
    assert!(matches!(run.next(), Next::Save(_)));
    run.saved(Err(StoreError::Driver("disk I/O error".to_owned())));
    let report = done_at_once(&run);
    assert_eq!(report.outcome, Outcome::StoreFailed);
    assert!(report.detail.contains("disk I/O error"), "{}", report.detail);
    assert!(!report.stored);
    assert_eq!(report.line().level(), LogLevel::Error);
    // Before a reply's send: the reply is not sent.
    let mut run = replayer.begin(message(), Mode::default(), NOW);
    expect_save(&mut run);
    expect_send(&run);
    run.answered(twiml("<Response><Message>Hi</Message></Response>").outcome(), NOW);
    assert!(matches!(run.next(), Next::Save(_)));
    run.saved(Err(StoreError::TimedOut));
    let report = done_at_once(&run);
    assert_eq!(
        (report.outcome, report.stored, report.replies_sent),
        (Outcome::StoreFailed, false, 0)
    );
    // After a failed delivery: the failure is reported as the store's.
    let mut run = replayer.begin(message(), Mode::default(), NOW);
    expect_save(&mut run);
    run.answered(SendOutcome::TimedOut, NOW);
    assert!(matches!(run.next(), Next::Save(_)));
    run.saved(Err(StoreError::Driver("locked".to_owned())));
    assert_eq!(done_at_once(&run).outcome, Outcome::StoreFailed);
}

// --- dry runs and what is never replayed -----------------------------------------------------

#[test]
fn a_dry_run_never_saves_or_sends() {
    let replayer = replayer(RECOVERY);
    let dry = Mode {
        dry_run: true,
        ..Mode::default()
    };
    let run = replayer.begin(message(), dry, NOW);
    let report = done_at_once(&run);
    assert_eq!(report.outcome, Outcome::WouldDeliver);
    assert_eq!(report.detail, format!("would be delivered to {APP_URL}"));
    assert_eq!(report.target.as_deref(), Some(APP_URL));
    assert_eq!(report.status, Status::Pending);
    let mut failed = message();
    failed.status = Status::Failed;
    let named_dry = Mode {
        named: true,
        dry_run: true,
        send_withheld: false,
    };
    assert_eq!(
        done_at_once(&replayer.begin(failed, named_dry, NOW)).outcome,
        Outcome::WouldDeliver
    );
    // Not due yet: a dry run still says where it would go.
    assert_eq!(
        done_at_once(&replayer.begin(message(), dry, RECEIVED)).outcome,
        Outcome::WouldDeliver
    );
}

#[test]
fn calls_are_never_delivered_to_the_app() {
    let replayer = replayer(RECOVERY);
    for mode in [
        Mode::default(),
        Mode {
            named: true,
            ..Mode::default()
        },
    ] {
        for status in [Status::Missed, Status::Voicemail, Status::Pending, Status::Failed] {
            let mut call = missed_call("CA1", RECEIVED);
            call.status = status;
            let report = done_at_once(&replayer.begin(call, mode, NOW));
            assert_eq!(report.outcome, Outcome::Skipped, "{status}");
            assert!(
                report.detail.starts_with("a call is not replayed") || report.detail.starts_with("failed after"),
                "{status}: {}",
                report.detail
            );
        }
    }
    // A call a process left replaying with no reply is settled back to missed, not delivered.
    let mut call = missed_call("CA1", RECEIVED);
    call.status = Status::Replaying;
    let transcript = drive(replayer.begin(call, Mode::default(), NOW), NOW, |request| {
        panic!("nothing is sent: {request:?}")
    });
    assert_eq!(transcript.shape(), "S");
    assert_eq!(transcript.last_saved().status, Status::Missed);
    // Dismissed entries are left alone.
    let report = done_at_once(&replayer.begin(message().dismissed(), Mode::default(), NOW));
    assert_eq!(
        (report.outcome, report.detail.as_str()),
        (Outcome::Skipped, "dismissed")
    );
}

#[test]
fn a_missed_caller_is_texted_from_the_number_they_called() {
    let replayer = replayer(&format!(
        "{RECOVERY}[replay]\nmissed_call_sms = \"Sorry we missed your call.\"\n"
    ));
    let run = replayer
        .text_missed_call(missed_call("CA1", RECEIVED), NOW)
        .expect("a caller and a number");
    let transcript = drive(run, NOW, answering(|request| panic!("not the app: {request:?}")));
    assert_eq!(transcript.shape(), "SMS");
    assert_eq!(transcript.saves()[0].status, Status::Replaying);
    assert_eq!(transcript.saves()[0].replies[0].state, ReplyState::Sending);
    let send = transcript.api_sends()[0];
    assert_eq!(
        pairs(&form_of(send)),
        [("To", SENDER), ("From", NUMBER), ("Body", "Sorry we missed your call.")]
    );
    let after = transcript.last_saved();
    assert_eq!(after.status, Status::Missed, "still a missed call, now texted");
    assert_eq!(after.replies[0].kind, ReplyKind::MissedCall);
    assert_eq!(after.replies[0].state, ReplyState::Sent);
    let report = &transcript.report;
    assert_eq!(
        (report.outcome, report.replies_sent, report.status),
        (Outcome::Replied, 1, Status::Missed)
    );
    assert_eq!(report.detail, "1 sent, 0 withheld");
    // A call without a caller ID, or without the number called, cannot be texted.
    let mut anonymous = missed_call("CA2", RECEIVED);
    anonymous.from = None;
    assert!(replayer.text_missed_call(anonymous, NOW).is_none());
    let mut nowhere = missed_call("CA3", RECEIVED);
    nowhere.to = None;
    assert!(replayer.text_missed_call(nowhere, NOW).is_none());
    // Without [replay] missed_call_sms nobody is texted.
    let silent = self::replayer(RECOVERY);
    assert!(silent.text_missed_call(missed_call("CA1", RECEIVED), NOW).is_none());
    // Nor while replay is off: no allowlist, or no auth token.
    let sms = "[replay]\nmissed_call_sms = \"Sorry\"\n";
    let no_allowlist = self::replayer(sms);
    assert!(no_allowlist.off().is_some());
    assert!(
        no_allowlist
            .text_missed_call(missed_call("CA1", RECEIVED), NOW)
            .is_none()
    );
    let tokenless = Replayer::new(
        &config(&format!("{RECOVERY}{sms}")),
        &SignatureVerifier::default(),
        TwilioApi::default(),
    );
    assert!(tokenless.text_missed_call(missed_call("CA1", RECEIVED), NOW).is_none());
}

// --- the pass's data -------------------------------------------------------------------------

fn report(outcome: Outcome, target: Option<&str>, sent: u32, withheld: u32) -> EntryReport {
    EntryReport {
        sid: "SM1".to_owned(),
        to: Some(NUMBER.to_owned()),
        outcome,
        target: target.map(str::to_owned),
        detail: "detail".to_owned(),
        replies_sent: sent,
        replies_withheld: withheld,
        status: Status::Replayed,
        stored: true,
        halts_queue: false,
        next_due_ms: None,
        api_trouble: None,
    }
}

#[test]
fn a_pass_summary_counts_each_outcome_and_remembers_which_apps_answered() {
    let mut summary = PassSummary::new(&PassRequest::default());
    assert_eq!(summary.line(), None, "a pass that did nothing logs nothing");
    summary.add(report(Outcome::Delivered, Some("https://App.example.com/sms"), 2, 1));
    summary.add(report(
        Outcome::Delivered,
        Some("https://app.example.com:443/other"),
        0,
        0,
    ));
    summary.add(report(Outcome::Retrying, Some("https://down.example.com/sms"), 0, 0));
    summary.add(report(Outcome::Failed, Some("https://down.example.com/sms"), 0, 0));
    summary.add(report(Outcome::NeedsAttention, Some(APP_URL), 1, 2));
    summary.add(report(Outcome::Skipped, None, 0, 0));
    summary.add(report(Outcome::StoreFailed, Some(APP_URL), 0, 0));
    summary.add(report(Outcome::Replied, None, 3, 0));
    summary.add(report(Outcome::WouldDeliver, Some("https://dry.example.com/"), 0, 0));
    assert_eq!(
        (
            summary.delivered,
            summary.failed,
            summary.needs_attention,
            summary.skipped,
            summary.store_failed
        ),
        (2, 2, 1, 1, 1)
    );
    assert_eq!((summary.replies_sent, summary.replies_withheld), (6, 3));
    assert_eq!(summary.entries.len(), 9);
    assert_eq!(
        summary.entries[2].outcome,
        Outcome::Retrying,
        "in the order they finished"
    );
    assert_eq!(
        summary.origins_up.iter().map(String::as_str).collect::<Vec<_>>(),
        ["https://app.example.com"],
        "only deliveries the app answered count, by origin"
    );
    let json: serde_json::Value = serde_json::from_str(&summary.answer().body).expect("JSON");
    assert_eq!(summary.answer().status, StatusCode::OK);
    assert_eq!(json["delivered"], 2);
    assert_eq!(json["dry_run"], false);
    assert_eq!(json["next_due_ms"], serde_json::Value::Null);
    assert_eq!(json["entries"][0]["outcome"], "delivered");
    assert!(json.get("origins_up").is_none() && json["entries"][0].get("stored").is_none());
    let line = summary.line().expect("a line");
    assert_eq!(line.level(), LogLevel::Info);
    let line: serde_json::Value = serde_json::from_str(line.to_json()).expect("JSON");
    assert_eq!(
        line,
        serde_json::json!({
            "event": "replay-pass", "dry_run": false, "delivered": 2, "replies_sent": 6,
            "replies_withheld": 3, "failed": 2, "skipped": 1, "needs_attention": 1, "store_failed": 1,
        })
    );
    assert!(
        PassSummary::new(&PassRequest {
            dry_run: true,
            ..PassRequest::default()
        })
        .dry_run
    );
}

#[test]
fn a_pass_request_reads_from_an_optional_json_body() {
    let empties: [&[u8]; 3] = [b"", b"  \n", b"{}"];
    for empty in empties {
        assert_eq!(PassRequest::from_body(empty), Ok(PassRequest::default()));
    }
    let request = PassRequest::from_body(br#"{"sids":["SM1","SM2"],"dry_run":true}"#).expect("valid");
    assert_eq!(
        request,
        PassRequest {
            sids: vec!["SM1".to_owned(), "SM2".to_owned()],
            dry_run: true,
            send_withheld: false,
        }
    );
    assert_eq!(
        request.mode(),
        Mode {
            named: true,
            dry_run: true,
            send_withheld: false
        }
    );
    assert_eq!(PassRequest::default().mode(), Mode::default());
    let withheld = PassRequest::from_body(br#"{"sids":["SM1"],"send_withheld":true}"#).expect("valid");
    assert!(withheld.mode().named && withheld.mode().send_withheld);
    let refusals: [(&[u8], &str); 6] = [
        (
            br#"{"send_withheld":true}"#,
            "send_withheld needs the entries named in sids",
        ),
        (br#"{"sids":[],"send_withheld":true}"#, "send_withheld needs"),
        (br#"{"sid":"SM1"}"#, "unknown field `sid`"),
        (br#"{"dry_run":"yes"}"#, "the body is not a replay request"),
        (b"[", "the body is not a replay request"),
        (b"\xff", "the body is not UTF-8"),
    ];
    for (body, error) in refusals {
        let refused = PassRequest::from_body(body).expect_err("refused");
        assert!(refused.contains(error), "{refused}");
    }
}

#[test]
fn an_entry_reports_line_carries_its_fields_at_the_level_its_outcome_deserves() {
    let mut entry = report(Outcome::Delivered, Some(APP_URL), 1, 0);
    let line = entry.line();
    let json: serde_json::Value = serde_json::from_str(line.to_json()).expect("JSON");
    assert_eq!(
        json,
        serde_json::json!({
            "event": "replay", "sid": "SM1", "to": NUMBER, "outcome": "delivered", "status": "replayed",
            "target": APP_URL, "replies_sent": 1, "replies_withheld": 0, "detail": "detail",
        })
    );
    assert_eq!(entry.progress(), format!("SM1 {NUMBER} delivered: detail"));
    for (outcome, level) in [
        (Outcome::Delivered, LogLevel::Info),
        (Outcome::Replied, LogLevel::Info),
        (Outcome::Skipped, LogLevel::Info),
        (Outcome::WouldDeliver, LogLevel::Info),
        (Outcome::Retrying, LogLevel::Warn),
        (Outcome::Failed, LogLevel::Error),
        (Outcome::NeedsAttention, LogLevel::Error),
        (Outcome::StoreFailed, LogLevel::Error),
    ] {
        entry.outcome = outcome;
        assert_eq!(entry.line().level(), level, "{outcome:?}");
        assert_eq!(
            serde_json::to_value(outcome).expect("JSON"),
            outcome.as_str(),
            "as in JSON"
        );
    }
    entry.to = None;
    entry.outcome = Outcome::Skipped;
    assert_eq!(entry.progress(), "SM1 - skipped: detail");
    let json = serde_json::to_value(&entry).expect("JSON");
    assert!(json.get("stored").is_none(), "{json}");
}

#[test]
fn the_startup_line_says_where_replay_delivers_and_how_it_sends() {
    let replayer = replayer(&format!(
        "{RECOVERY}[replay]\nmin_interval_seconds = 10\nmissed_call_sms = \"Sorry\"\n"
    ));
    let line = replayer.startup_line();
    assert_eq!(line.level(), LogLevel::Info);
    let json: serde_json::Value = serde_json::from_str(line.to_json()).expect("JSON");
    assert_eq!(json["replay"], "on");
    assert_eq!(json["target"], "each entry's ErrorUrl");
    assert_eq!(json["min_interval_seconds"], 10);
    assert_eq!(json["max_attempts"], 50);
    assert_eq!(json["send_replies"], true);
    assert_eq!(json["missed_call_sms"], true);
    assert_eq!(json["api_base"], DEFAULT_API_BASE);
    assert!(!line.to_json().contains(TOKEN));
    assert_eq!(replayer.tick(), std::time::Duration::from_secs(10));
}

// --- whole passes over an in-memory inbox ----------------------------------------------------

/// An inbox that answers the statements replay runs, as SQLite would.
#[derive(Default)]
struct Inbox {
    entries: Vec<Entry>,
    /// Every write fails, as a full disk would.
    broken: bool,
    /// The hold on sending: until, failures, reason.
    hold: (u64, u32, Option<String>),
}

fn row_of(entry: &Entry) -> Vec<SqlValue> {
    let values: Vec<serde_json::Value> = serde_json::from_str(&crate::inbox::entry_to_wire(entry)).expect("a row");
    values
        .into_iter()
        .map(|value| match value {
            serde_json::Value::Null => SqlValue::Null,
            serde_json::Value::Number(number) => SqlValue::Integer(number.as_i64().expect("an integer")),
            serde_json::Value::String(text) => SqlValue::Text(text),
            other => panic!("not a column: {other}"),
        })
        .collect()
}

fn text(value: &SqlValue) -> Option<String> {
    match value {
        SqlValue::Text(text) => Some(text.clone()),
        _ => None,
    }
}

fn integer(value: &SqlValue) -> Option<u64> {
    match value {
        SqlValue::Integer(number) => u64::try_from(*number).ok(),
        _ => None,
    }
}

impl Inbox {
    fn with(entries: impl IntoIterator<Item = Entry>) -> Self {
        Self {
            entries: entries.into_iter().collect(),
            ..Self::default()
        }
    }

    fn get(&self, sid: &str) -> &Entry {
        self.entries
            .iter()
            .find(|entry| entry.sid == sid)
            .expect("in the inbox")
    }

    fn sorted<'a>(&'a self, keep: impl Fn(&Entry) -> bool + 'a) -> Vec<&'a Entry> {
        let mut found: Vec<&Entry> = self.entries.iter().filter(|entry| keep(entry)).collect();
        found.sort_by(|a, b| (a.received_at_ms, &a.sid).cmp(&(b.received_at_ms, &b.sid)));
        found
    }
}

impl crate::inbox::Sql for Inbox {
    type Error = String;

    fn run(&mut self, statement: &Statement) -> Result<Vec<Vec<SqlValue>>, String> {
        let sql = statement.sql;
        let params = &statement.params;
        let rows = |entries: Vec<&Entry>| -> Vec<Vec<SqlValue>> { entries.into_iter().map(row_of).collect() };
        if sql.starts_with("UPDATE inbox_entries SET status = ?2, attempts = ?3") {
            if self.broken {
                return Err("database or disk is full".to_owned());
            }
            let sid = text(&params[0]).expect("a SID");
            let Some(entry) = self
                .entries
                .iter_mut()
                .find(|entry| entry.sid == sid && entry.status != Status::Dismissed)
            else {
                return Ok(Vec::new());
            };
            entry.status = text(&params[1]).expect("a status").parse()?;
            entry.attempts = integer(&params[2])
                .and_then(|n| u32::try_from(n).ok())
                .expect("attempts");
            entry.last_error = text(&params[3]);
            entry.replies = serde_json::from_str(&text(&params[4]).expect("replies")).map_err(|e| e.to_string())?;
            entry.next_attempt_ms = integer(&params[5]).expect("next attempt");
            return Ok(vec![vec![SqlValue::Text(sid)]]);
        }
        if sql.starts_with("SELECT DISTINCT to_number") {
            let numbers: std::collections::BTreeSet<Option<String>> = self
                .entries
                .iter()
                .filter(|entry| matches!(entry.status, Status::Pending | Status::Replaying))
                .map(|entry| entry.to.clone())
                .collect();
            return Ok(numbers
                .into_iter()
                .map(|to| vec![to.map_or(SqlValue::Null, SqlValue::Text)])
                .collect());
        }
        if sql.contains("WHERE status = 'replaying' AND to_number IS ?1") {
            let to = text(&params[0]);
            return Ok(rows(
                self.sorted(move |entry| entry.status == Status::Replaying && entry.to == to),
            ));
        }
        if sql.contains("WHERE status = 'pending' AND to_number IS ?1") {
            let to = text(&params[0]);
            let after = integer(&params[1]).map(|ms| (ms, text(&params[2]).unwrap_or_default()));
            let found = self.sorted(move |entry| {
                entry.status == Status::Pending
                    && entry.to == to
                    && after
                        .as_ref()
                        .is_none_or(|(ms, sid)| (entry.received_at_ms, &entry.sid) > (*ms, sid))
            });
            return Ok(rows(found.into_iter().take(1).collect()));
        }
        if sql.contains("WHERE status = 'missed' AND channel = 'voice' AND replies = '[]'") {
            let since = integer(&params[0]).expect("since");
            return Ok(rows(self.sorted(move |entry| {
                entry.status == Status::Missed
                    && entry.channel == Channel::Voice
                    && entry.replies.is_empty()
                    && entry.received_at_ms >= since
            })));
        }
        if sql.starts_with("SELECT until_ms, failures, reason FROM replay_hold") {
            let (until, failures, reason) = &self.hold;
            return Ok(vec![vec![
                SqlValue::Integer(i64::try_from(*until).unwrap_or(i64::MAX)),
                SqlValue::Integer(i64::from(*failures)),
                reason.clone().map_or(SqlValue::Null, SqlValue::Text),
            ]]);
        }
        if sql.starts_with("UPDATE replay_hold SET until_ms = ?1") {
            if self.broken {
                return Err("database or disk is full".to_owned());
            }
            self.hold = (
                integer(&params[0]).expect("until"),
                integer(&params[1])
                    .and_then(|n| u32::try_from(n).ok())
                    .expect("failures"),
                text(&params[2]),
            );
            return Ok(Vec::new());
        }
        if sql.starts_with("SELECT DISTINCT from_number, to_number FROM inbox_entries WHERE channel = 'voice'") {
            let since = integer(&params[0]).expect("since");
            let mut callers: Vec<Vec<SqlValue>> = Vec::new();
            for entry in &self.entries {
                if entry.channel == Channel::Voice && !entry.replies.is_empty() && entry.received_at_ms >= since {
                    if let (Some(from), Some(to)) = (&entry.from, &entry.to) {
                        let row = vec![SqlValue::Text(from.clone()), SqlValue::Text(to.clone())];
                        if !callers.contains(&row) {
                            callers.push(row);
                        }
                    }
                }
            }
            return Ok(callers);
        }
        if sql.starts_with("SELECT error_url, received_at_ms FROM inbox_entries WHERE status = 'replayed'") {
            let since = integer(&params[0]).expect("since");
            let mut found: Vec<&Entry> = self
                .entries
                .iter()
                .filter(|entry| {
                    entry.status == Status::Replayed
                        && entry.channel == Channel::Messaging
                        && entry.error_url.is_some()
                        && entry.received_at_ms >= since
                })
                .collect();
            found.sort_by_key(|entry| std::cmp::Reverse(entry.received_at_ms));
            return Ok(found
                .into_iter()
                .map(|entry| {
                    vec![
                        SqlValue::Text(entry.error_url.clone().unwrap_or_default()),
                        SqlValue::Integer(i64::try_from(entry.received_at_ms).unwrap_or(i64::MAX)),
                    ]
                })
                .collect());
        }
        if sql.starts_with("SELECT ") && sql.ends_with("FROM inbox_entries WHERE sid = ?1") {
            let sid = text(&params[0]);
            return Ok(rows(
                self.entries
                    .iter()
                    .filter(|entry| Some(&entry.sid) == sid.as_ref())
                    .collect(),
            ));
        }
        Err(format!("a statement this inbox does not know: {sql}"))
    }
}

/// Settles one run as a shell does: its commits through [`inbox::queue::save`], its requests
/// answered by `answer` (and recorded in `sent`).
fn settle(
    mut run: Run<'_>,
    inbox: &mut Inbox,
    now: u64,
    answer: &mut dyn FnMut(&OutboundRequest) -> SendResult,
    sent: &mut Vec<OutboundRequest>,
) -> EntryReport {
    loop {
        match run.next() {
            Next::Save(entry) => run.saved(crate::inbox::queue::save(inbox, &entry)),
            Next::Send(request) => {
                let result = answer(&request);
                sent.push(request);
                run.answered(result.outcome(), now);
            }
            Next::Done(report) => return report,
        }
    }
}

/// Runs a pass as a shell does: each lane in turn, then the missed calls. Returns the summary
/// and every request sent.
fn pass(
    replayer: &Replayer,
    inbox: &mut Inbox,
    request: &PassRequest,
    now: u64,
    mut answer: impl FnMut(&OutboundRequest) -> SendResult,
) -> (PassSummary, Vec<OutboundRequest>) {
    let mut sent = Vec::new();
    let Pass { lanes, mut summary } = replayer.pass(inbox, request, now).expect("a pass");
    for mut lane in lanes {
        while let Some(entry) = lane.next(inbox).expect("the next entry") {
            let run = replayer.begin(entry, lane.mode(), now);
            let report = settle(run, inbox, now, &mut answer, &mut sent);
            lane.finished(&report);
            summary.add(report);
        }
        summary.lane_done(&lane);
    }
    for call in replayer.missed_calls(inbox, &summary, now).expect("missed calls") {
        let run = replayer.text_missed_call(call, now).expect("a text to send");
        let report = settle(run, inbox, now, &mut answer, &mut sent);
        summary.add(report);
    }
    (summary, sent)
}

fn sms(sid: &str, to: &str, at: u64) -> Entry {
    let form = FORM
        .replace("MessageSid=SM1&SmsSid=SM1", &format!("MessageSid={sid}&SmsSid={sid}"))
        .replace("To=%2B14155550199", &format!("To={}", to.replace('+', "%2B")));
    message_from(&form, at)
}

fn delivered_sids(sent: &[OutboundRequest]) -> Vec<String> {
    sent.iter()
        .filter(|request| !is_api(request))
        .filter_map(|request| form_of(request).get("MessageSid").map(str::to_owned))
        .collect()
}

/// Another called number (sorted after [`NUMBER`], as its lane is).
const OTHER: &str = "+14155550299";

#[test]
fn a_pass_delivers_each_numbers_queue_in_arrival_order() {
    let replayer = replayer(RECOVERY);
    let mut inbox = Inbox::with([
        sms("SM3", NUMBER, RECEIVED + 2),
        sms("SM1", NUMBER, RECEIVED),
        sms("SM9", OTHER, RECEIVED + 1),
        sms("SM2", NUMBER, RECEIVED + 1),
    ]);
    let (summary, sent) = pass(
        &replayer,
        &mut inbox,
        &PassRequest::default(),
        NOW,
        answering(|_| twiml("<Response><Message>Thanks</Message></Response>")),
    );
    let lanes: Vec<&str> = summary.entries.iter().map(|entry| entry.sid.as_str()).collect();
    assert_eq!(lanes, ["SM1", "SM2", "SM3", "SM9"], "by number, then by arrival");
    assert_eq!(delivered_sids(&sent), ["SM1", "SM2", "SM3", "SM9"]);
    assert_eq!((summary.delivered, summary.replies_sent, summary.failed), (4, 4, 0));
    assert_eq!(summary.next_due_ms, None);
    for sid in ["SM1", "SM2", "SM3", "SM9"] {
        let entry = inbox.get(sid);
        assert_eq!(entry.status, Status::Replayed, "{sid}");
        assert_eq!(entry.replies[0].state, ReplyState::Sent, "{sid}");
    }
    // A second pass finds nothing to do.
    let (again, sent) = pass(&replayer, &mut inbox, &PassRequest::default(), NOW + 1, |request| {
        panic!("nothing to send: {request:?}")
    });
    assert!(again.entries.is_empty() && sent.is_empty());
}

#[test]
fn a_failed_probe_stops_its_numbers_queue_until_its_backoff_has_passed() {
    let replayer = replayer(RECOVERY);
    let mut inbox = Inbox::with([
        sms("SM1", NUMBER, RECEIVED),
        sms("SM2", NUMBER, RECEIVED + 1),
        sms("SM9", OTHER, RECEIVED),
    ]);
    let down = |request: &OutboundRequest| {
        if form_of(request).get("To") == Some(NUMBER) {
            answered(503, None, b"")
        } else {
            twiml("<Response/>")
        }
    };
    let (summary, sent) = pass(&replayer, &mut inbox, &PassRequest::default(), NOW, down);
    assert_eq!(
        delivered_sids(&sent),
        ["SM1", "SM9"],
        "the other number's queue is not held up"
    );
    assert_eq!((summary.failed, summary.delivered), (1, 1));
    assert_eq!(
        summary.next_due_ms,
        Some(NOW + 30_000),
        "the pass says when the failed probe is next due"
    );
    assert_eq!(
        (inbox.get("SM1").status, inbox.get("SM1").attempts),
        (Status::Pending, 1)
    );
    assert_eq!(inbox.get("SM1").next_attempt_ms, NOW + 30_000);
    assert_eq!(
        (inbox.get("SM2").status, inbox.get("SM2").attempts),
        (Status::Pending, 0),
        "behind the failed probe, untouched"
    );
    // Before the backoff has passed, nothing is tried and the pass says when it will be.
    let (summary, sent) = pass(&replayer, &mut inbox, &PassRequest::default(), NOW + 1_000, down);
    assert!(sent.is_empty() && summary.entries.is_empty());
    assert_eq!(summary.next_due_ms, Some(NOW + 30_000));
    // Once it has, the probe goes first and the queue follows it.
    let (summary, sent) = pass(&replayer, &mut inbox, &PassRequest::default(), NOW + 30_000, |_| {
        twiml("<Response/>")
    });
    assert_eq!(delivered_sids(&sent), ["SM1", "SM2"]);
    assert_eq!(summary.delivered, 2);
    assert_eq!(inbox.get("SM1").status, Status::Replayed);
}

#[test]
fn a_message_is_not_replayed_sooner_than_the_interval_after_it_arrived() {
    let replayer = replayer(RECOVERY);
    let mut inbox = Inbox::with([sms("SM1", NUMBER, NOW - 10_000)]);
    let (summary, sent) = pass(&replayer, &mut inbox, &PassRequest::default(), NOW, |_| {
        twiml("<Response/>")
    });
    assert!(sent.is_empty());
    assert_eq!(summary.next_due_ms, Some(NOW + 20_000));
    assert_eq!(inbox.get("SM1").status, Status::Pending);
    // Named, it goes now.
    let named = PassRequest {
        sids: vec!["SM1".to_owned()],
        ..PassRequest::default()
    };
    let (summary, sent) = pass(&replayer, &mut inbox, &named, NOW, |_| twiml("<Response/>"));
    assert_eq!((delivered_sids(&sent).len(), summary.delivered), (1, 1));
}

#[test]
fn an_interrupted_entry_is_settled_first_its_reply_never_resent_and_its_queue_goes_on() {
    let replayer = replayer(RECOVERY);
    let mut interrupted = sms("SM2", NUMBER, RECEIVED + 5);
    interrupted.status = Status::Replaying;
    interrupted.replies = vec![reply("Sent before the crash?", ReplyState::Sending)];
    let mut inbox = Inbox::with([sms("SM1", NUMBER, RECEIVED), interrupted]);
    let (summary, sent) = pass(
        &replayer,
        &mut inbox,
        &PassRequest::default(),
        NOW,
        answering(|_| twiml("<Response/>")),
    );
    assert!(
        sent.iter().all(|request| !is_api(request)),
        "the interrupted reply is never sent again"
    );
    let order: Vec<(&str, Outcome)> = summary
        .entries
        .iter()
        .map(|entry| (entry.sid.as_str(), entry.outcome))
        .collect();
    assert_eq!(
        order,
        [("SM2", Outcome::NeedsAttention), ("SM1", Outcome::Delivered)],
        "settled before the queue, which does not wait for it: the app was fine"
    );
    assert_eq!(delivered_sids(&sent), ["SM1"]);
    assert_eq!(inbox.get("SM2").status, Status::NeedsAttention);
    assert_eq!(inbox.get("SM2").replies[0].state, ReplyState::Unknown);
    assert_eq!(inbox.get("SM1").status, Status::Replayed);
    assert_eq!(summary.needs_attention, 1);
}

#[test]
fn a_send_with_an_unknown_outcome_holds_its_numbers_queue() {
    let replayer = replayer(RECOVERY);
    let mut inbox = Inbox::with([
        sms("SM1", NUMBER, RECEIVED),
        sms("SM2", NUMBER, RECEIVED + 1),
        sms("SM9", OTHER, RECEIVED),
    ]);
    let (summary, sent) = pass(&replayer, &mut inbox, &PassRequest::default(), NOW, |request| {
        if is_api(request) {
            answered(500, None, b"")
        } else {
            twiml("<Response><Message>Thanks</Message></Response>")
        }
    });
    assert_eq!(
        delivered_sids(&sent),
        ["SM1", "SM9"],
        "the Messages API may be failing: nothing more goes to this number"
    );
    assert_eq!(summary.needs_attention, 2);
    assert_eq!(summary.next_due_ms, None, "no attempt to wait for: a person decides");
    assert_eq!(inbox.get("SM2").status, Status::Pending);
}

#[test]
fn named_entries_are_replayed_in_arrival_order_and_unknown_ones_reported() {
    let replayer = replayer(RECOVERY);
    let mut failed = sms("SM3", NUMBER, RECEIVED + 3);
    failed.status = Status::Failed;
    failed.attempts = 50;
    let mut inbox = Inbox::with([
        sms("SM1", NUMBER, RECEIVED + 1),
        failed,
        sms("SM9", OTHER, RECEIVED),
        sms("SM5", NUMBER, RECEIVED + 5),
    ]);
    let request = PassRequest::from_body(br#"{"sids":["SM3","SMX","SM1","SM1","SM9"]}"#).expect("valid");
    let (summary, sent) = pass(&replayer, &mut inbox, &request, NOW, |_| twiml("<Response/>"));
    assert_eq!(
        delivered_sids(&sent),
        ["SM9", "SM1", "SM3"],
        "lanes by their first named entry, each in arrival order; SM5 is not named"
    );
    let skipped = &summary.entries[0];
    assert_eq!(
        (skipped.sid.as_str(), skipped.outcome, skipped.detail.as_str()),
        ("SMX", Outcome::Skipped, "no such entry in the inbox")
    );
    assert_eq!((summary.delivered, summary.skipped), (3, 1));
    assert_eq!(
        inbox.get("SM3").status,
        Status::Replayed,
        "a named failed entry is replayed"
    );
    assert_eq!(inbox.get("SM5").status, Status::Pending);
}

#[test]
fn a_dry_run_pass_changes_nothing_and_sends_nothing() {
    let replayer = replayer(RECOVERY);
    // SM2 arrived just now: not due, so a dry run (like a real pass) does not list it.
    let entries = [
        sms("SM1", NUMBER, RECEIVED),
        sms("SM2", NUMBER, NOW),
        sms("SM9", OTHER, RECEIVED),
    ];
    let mut inbox = Inbox::with(entries.clone());
    let request = PassRequest::from_body(br#"{"dry_run":true}"#).expect("valid");
    let (summary, sent) = pass(&replayer, &mut inbox, &request, NOW, |request| {
        panic!("nothing is sent: {request:?}")
    });
    assert!(sent.is_empty());
    assert_eq!(inbox.entries, entries, "nothing is written");
    assert!(summary.dry_run);
    let outcomes: Vec<(&str, Outcome)> = summary
        .entries
        .iter()
        .map(|entry| (entry.sid.as_str(), entry.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [("SM1", Outcome::WouldDeliver), ("SM9", Outcome::WouldDeliver)]
    );
}

#[test]
fn missed_callers_are_texted_once_when_their_app_answered_in_the_pass() {
    let replayer = replayer(&format!(
        "{RECOVERY}[replay]\nmissed_call_sms = \"Sorry we missed your call.\"\n"
    ));
    let mut elsewhere = missed_call("CA3", NOW - 1_000);
    elsewhere.error_url = Some("https://other.example.com/voice".to_owned());
    let mut inbox = Inbox::with([
        missed_call("CA1", NOW - 1_000),
        missed_call("CA2", NOW - 61 * 60_000),
        elsewhere,
    ]);
    // The app has not answered anything yet: no one is texted.
    let (summary, sent) = pass(&replayer, &mut inbox, &PassRequest::default(), NOW, |request| {
        panic!("nothing is sent: {request:?}")
    });
    assert!(sent.is_empty() && summary.entries.is_empty());
    // A message delivered to the app: the app is back, its missed callers within the window get
    // the text.
    inbox.entries.push(sms("SM1", NUMBER, RECEIVED));
    let (summary, sent) = pass(
        &replayer,
        &mut inbox,
        &PassRequest::default(),
        NOW,
        answering(|_| twiml("<Response/>")),
    );
    let texts: Vec<Vec<(String, String)>> = sent
        .iter()
        .filter(|request| is_api(request))
        .map(|request| {
            form_of(request)
                .iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect()
        })
        .collect();
    let text = |key: &str, value: &str| (key.to_owned(), value.to_owned());
    assert_eq!(
        texts,
        [vec![
            text("To", SENDER),
            text("From", NUMBER),
            text("Body", "Sorry we missed your call.")
        ]]
    );
    let texted = summary.entries.last().expect("the missed call's report");
    assert_eq!((texted.sid.as_str(), texted.outcome), ("CA1", Outcome::Replied));
    assert_eq!(inbox.get("CA1").status, Status::Missed);
    assert_eq!(inbox.get("CA1").replies[0].kind, ReplyKind::MissedCall);
    assert!(inbox.get("CA2").replies.is_empty(), "past the reply window");
    assert!(inbox.get("CA3").replies.is_empty(), "another app's call");
    // Never twice.
    inbox.entries.push(sms("SM2", NUMBER, RECEIVED + 1));
    let (_, sent) = pass(
        &replayer,
        &mut inbox,
        &PassRequest::default(),
        NOW + 1,
        answering(|_| twiml("<Response/>")),
    );
    assert!(sent.iter().all(|request| !is_api(request)), "{sent:?}");
}

#[test]
fn a_failed_commit_stops_its_numbers_queue_and_nothing_is_delivered() {
    let replayer = replayer(RECOVERY);
    let mut inbox = Inbox::with([sms("SM1", NUMBER, RECEIVED), sms("SM2", NUMBER, RECEIVED + 1)]);
    inbox.broken = true;
    let (summary, sent) = pass(&replayer, &mut inbox, &PassRequest::default(), NOW, |request| {
        panic!("nothing is sent before its commit: {request:?}")
    });
    assert!(sent.is_empty());
    assert_eq!(summary.entries.len(), 1, "the lane stops at the first failed commit");
    let failed = &summary.entries[0];
    assert_eq!((failed.sid.as_str(), failed.outcome), ("SM1", Outcome::StoreFailed));
    assert!(failed.detail.contains("database or disk is full"), "{}", failed.detail);
    assert_eq!((summary.skipped, summary.store_failed), (0, 1));
    assert!(inbox.entries.iter().all(|entry| entry.status == Status::Pending));
    let line = pass_failed_line(&StoreError::Driver("database is locked".to_owned()));
    assert_eq!(line.level(), LogLevel::Error);
    let json: serde_json::Value = serde_json::from_str(line.to_json()).expect("JSON");
    assert_eq!(
        (json["event"].as_str(), json["error"].as_str()),
        (Some("replay-store-failed"), Some("database is locked"))
    );
}

#[test]
fn a_lane_names_its_number_and_mode_and_a_named_lane_goes_on_after_a_failure() {
    let replayer = replayer(RECOVERY);
    let mut inbox = Inbox::with([sms("SM1", NUMBER, RECEIVED), sms("SM2", NUMBER, RECEIVED + 1)]);
    let named = PassRequest {
        sids: vec!["SM1".to_owned(), "SM2".to_owned()],
        dry_run: false,
        send_withheld: false,
    };
    let Pass { lanes, .. } = replayer.pass(&mut inbox, &named, NOW).expect("a pass");
    assert_eq!(lanes.len(), 1);
    assert_eq!(lanes[0].to(), Some(NUMBER));
    assert!(lanes[0].mode().named);
    // Named entries are each replayed, even after one of them failed.
    let (summary, sent) = pass(&replayer, &mut inbox, &named, NOW, |_| SendResult::TimedOut);
    assert_eq!(delivered_sids(&sent), ["SM1", "SM2"]);
    assert_eq!(summary.failed, 2);
    let Pass { lanes, .. } = replayer.pass(&mut inbox, &PassRequest::default(), NOW).expect("a pass");
    assert_eq!(
        (lanes.len(), lanes[0].to(), lanes[0].mode()),
        (1, Some(NUMBER), Mode::default())
    );
}

#[test]
fn an_mms_sid_from_the_messages_api_counts_as_sent() {
    let transcript = drive(
        replayer(RECOVERY).begin(message(), Mode::default(), NOW),
        NOW,
        |request| {
            if is_api(request) {
                created(&format!("MM{:032x}", 7))
            } else {
                twiml(
                    "<Response><Message><Body>Pic</Body><Media>https://cdn.example.com/a.png</Media></Message></Response>",
                )
            }
        },
    );
    let reply = &transcript.last_saved().replies[0];
    assert_eq!(reply.state, ReplyState::Sent);
    assert_eq!(reply.message_sid, Some(format!("MM{:032x}", 7)));
}

#[test]
fn a_report_says_whether_the_queue_waits_and_until_when() {
    let replayer = replayer(RECOVERY);
    let run = |entry: Entry, answer: SendResult, api: SendResult| {
        drive(replayer.begin(entry, Mode::default(), NOW), NOW, move |request| {
            if is_api(request) { api.clone() } else { answer.clone() }
        })
        .report
    };
    let hello = twiml("<Response><Message>Hello</Message></Response>");
    let delivered = run(message(), hello.clone(), created(&message_sid(1)));
    assert_eq!((delivered.halts_queue, delivered.next_due_ms), (false, None));
    let retrying = run(message(), SendResult::TimedOut, created(&message_sid(1)));
    assert_eq!((retrying.halts_queue, retrying.next_due_ms), (true, Some(NOW + 30_000)));
    let mut last_try = message();
    last_try.attempts = crate::config::DEFAULT_MAX_ATTEMPTS - 1;
    let failed = run(last_try, SendResult::TimedOut, created(&message_sid(1)));
    assert_eq!(
        (failed.outcome, failed.halts_queue, failed.next_due_ms),
        (Outcome::Failed, true, None)
    );
    let unknown = run(message(), hello.clone(), SendResult::TimedOut);
    assert_eq!((unknown.outcome, unknown.halts_queue), (Outcome::NeedsAttention, true));
    let refused = run(message(), hello, answered(400, None, br#"{"code":21610}"#));
    assert_eq!((refused.outcome, refused.halts_queue), (Outcome::Delivered, false));
    let skipped = done_at_once(&replayer.begin(message().dismissed(), Mode::default(), NOW));
    assert!(!skipped.halts_queue);
    let mut interrupted = message();
    interrupted.status = Status::Replaying;
    interrupted.replies = vec![reply("Maybe", ReplyState::Sending)];
    let settled = drive(replayer.begin(interrupted, Mode::default(), NOW), NOW, |request| {
        panic!("nothing is sent: {request:?}")
    })
    .report;
    assert_eq!((settled.outcome, settled.halts_queue), (Outcome::NeedsAttention, false));
    let mut run = replayer.begin(message(), Mode::default(), NOW);
    run.saved(Err(StoreError::TimedOut));
    let store_failed = done_at_once(&run);
    assert_eq!(
        (store_failed.outcome, store_failed.halts_queue),
        (Outcome::StoreFailed, true)
    );
}

#[test]
fn the_api_base_is_https_unless_it_is_this_machine_and_an_api_key_needs_its_secret() {
    assert!(TwilioApi::new("https://api.twilio.com/").is_ok());
    assert!(TwilioApi::new("http://127.0.0.1:4010").is_ok(), "a local fake");
    assert!(TwilioApi::new("http://localhost:4010").is_ok());
    let plain = TwilioApi::new("http://api.example.com").expect_err("refused");
    assert!(plain.contains("plain http"), "{plain}");
    assert!(TwilioApi::new("ftp://api.example.com").is_err());
    assert!(TwilioApi::new("https://api.example.com/?x=1").is_err());
    let api = TwilioApi::default();
    assert!(api.clone().with_credentials(None, None).is_ok());
    assert!(
        api.clone()
            .with_credentials(Some("SK1".to_owned()), Some("secret".to_owned()))
            .is_ok_and(|api| api.auth_kind().contains("api key"))
    );
    let missing = api
        .clone()
        .with_credentials(Some("SK1".to_owned()), None)
        .expect_err("refused");
    assert!(missing.contains("without TWILIO_API_SECRET"), "{missing}");
    let missing = api
        .with_credentials(None, Some("secret".to_owned()))
        .expect_err("refused");
    assert!(missing.contains("without TWILIO_API_KEY"), "{missing}");
}

#[test]
fn a_reply_with_no_recipient_is_refused_before_anything_is_sent() {
    let replayer = replayer(RECOVERY);
    let without_from = message_from(&FORM.replace("&From=%2B14155550100", ""), RECEIVED);
    assert_eq!(without_from.from, None);
    let mut run = replayer.begin(without_from, Mode::default(), NOW);
    expect_save(&mut run);
    let _delivery = expect_send(&run);
    run.answered(
        SendOutcome::Answered {
            status: StatusCode::OK,
            content_type: Some("text/xml"),
            body: b"<Response><Message>ok</Message></Response>",
        },
        NOW,
    );
    let Next::Save(settled) = run.next() else {
        panic!("settled without a send")
    };
    assert_eq!(settled.replies[0].state, ReplyState::Refused);
    assert!(
        settled.replies[0]
            .error
            .as_deref()
            .is_some_and(|error| error.contains("no To or no From"))
    );
}

#[test]
fn a_send_that_never_left_keeps_its_reply_planned_and_holds_the_api() {
    let replayer = replayer(RECOVERY);
    let mut run = replayer.begin(message(), Mode::default(), NOW);
    expect_save(&mut run);
    let _delivery = expect_send(&run);
    run.answered(
        SendOutcome::Answered {
            status: StatusCode::OK,
            content_type: Some("text/xml"),
            body: b"<Response><Message>ok</Message></Response>",
        },
        NOW,
    );
    expect_save(&mut run);
    let _send = expect_send(&run);
    run.answered(SendOutcome::NotSent("connection refused"), NOW);
    let Next::Save(waiting) = run.next() else {
        panic!("the entry is committed as it stands")
    };
    assert_eq!(waiting.status, Status::Replaying, "its reply waits for the API");
    assert_eq!(waiting.replies[0].state, ReplyState::Planned);
    assert!(
        waiting.replies[0]
            .error
            .as_deref()
            .is_some_and(|error| error.contains("could not be reached"))
    );
    run.saved(Ok(true));
    let Next::Done(report) = run.next() else { panic!("done") };
    assert_eq!(report.outcome, Outcome::Retrying);
    assert!(report.api_trouble.is_some() && report.halts_queue);
}
