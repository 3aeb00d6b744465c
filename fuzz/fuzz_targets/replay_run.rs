//! Replay's state machine on arbitrary answers from the app and the Messages API: no panic, no
//! run that goes on forever, and the at-most-once rule — every request to the Messages API comes
//! right after a commit in which that reply is `sending`, and a reply committed `sent`,
//! `refused` or `unknown` is never sent again.
//!
//! Input: a sequence of answers, each `STATUS(2 bytes) KIND(1 byte) LEN(1 byte) BODY(LEN)`; KIND
//! picks a Content-Type, a timeout, a request that never left or a failed connection. The first bytes also choose the mode
//! and the entry (a message, a GET one, one already replaying with replies in any state).
#![no_main]

use http::StatusCode;
use libfuzzer_sys::fuzz_target;
use twiml_fallback::config::Config;
use twiml_fallback::edge::SendOutcome;
use twiml_fallback::inbox::{Capture, Reply, ReplyKind, ReplyState, Source, Status, capture};
use twiml_fallback::replay::{Mode, Next, Replayer, TwilioApi};
use twiml_fallback::signature::SignatureVerifier;
use twiml_fallback::webhook::Params;

const FORM: &[u8] = b"MessageSid=SM1&AccountSid=AC0123456789abcdef0123456789abcdef&From=%2B14155550100\
&To=%2B14155550199&Body=hi&ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fsms";

const CONTENT_TYPES: [Option<&str>; 5] = [
    Some("text/xml"),
    Some("text/plain"),
    Some("application/json"),
    Some("text/html"),
    None,
];

fuzz_target!(|data: &[u8]| {
    let Some((&choice, mut rest)) = data.split_first() else {
        return;
    };
    let config = Config::from_toml(
        "[recovery]\nallow_hosts = [\"app.example.com\", \"*.example.com\"]\n[replay]\nreply_window_minutes = 1\n",
    )
    .expect("a configuration");
    let replayer = Replayer::new(&config, &SignatureVerifier::new("token"), TwilioApi::default());
    let method = if choice & 1 == 0 { "POST" } else { "GET" };
    let Capture::Keep(entry) = capture(
        &Params::from_form(FORM),
        method,
        "https://f.example.com/sms",
        0,
        Source::Edge,
    ) else {
        return;
    };
    let mut entry = *entry;
    if choice & 2 != 0 {
        // Interrupted earlier, with replies in whatever states the input says.
        entry.status = Status::Replaying;
        for bit in 0..3 {
            let state = match (choice >> (2 + bit * 2)) & 3 {
                0 => ReplyState::Planned,
                1 => ReplyState::Sending,
                2 => ReplyState::Sent,
                _ => ReplyState::Withheld,
            };
            let mut reply = Reply::planned(
                ReplyKind::Answer,
                "+14155550100".into(),
                "+14155550199".into(),
                format!("r{bit}"),
            );
            reply.set(state, None);
            entry.replies.push(reply);
        }
    }
    let mode = Mode {
        named: choice & 0x40 != 0,
        dry_run: choice & 0x80 != 0 && choice & 2 == 0,
        send_withheld: false,
    };
    let mut run = replayer.begin(entry, mode, 30_000);
    let mut last_saved: Option<twiml_fallback::inbox::Entry> = None;
    let mut finished_replies: Vec<String> = Vec::new();
    for _step in 0..200 {
        match run.next() {
            Next::Save(saved) => {
                for reply in &saved.replies {
                    if matches!(
                        reply.state,
                        ReplyState::Sent | ReplyState::Refused | ReplyState::Unknown
                    ) && !finished_replies.contains(&reply.body)
                    {
                        finished_replies.push(reply.body.clone());
                    }
                }
                last_saved = Some(saved);
                run.saved(Ok(true));
            }
            Next::Send(request) => {
                if request.url.ends_with("/Messages.json") {
                    let body = request.body.clone().unwrap_or_default();
                    let sent = Params::from_form(body.as_bytes())
                        .get("Body")
                        .unwrap_or_default()
                        .to_owned();
                    let saved = last_saved.as_ref().expect("a commit before any send");
                    assert!(
                        saved
                            .replies
                            .iter()
                            .any(|reply| reply.body == sent && reply.state == ReplyState::Sending),
                        "a reply sent without being committed as sending: {sent:?}"
                    );
                    assert!(!finished_replies.contains(&sent), "a reply sent twice: {sent:?}");
                }
                let (answer, left) = next_answer(rest);
                rest = left;
                match answer {
                    Answer::Timeout => run.answered(SendOutcome::TimedOut, 31_000),
                    Answer::NotSent => run.answered(SendOutcome::NotSent("connection refused"), 31_000),
                    Answer::Failed => run.answered(SendOutcome::Failed("connection reset"), 31_000),
                    Answer::Http(status, content_type, body) => run.answered(
                        SendOutcome::Answered {
                            status,
                            content_type,
                            body,
                        },
                        31_000,
                    ),
                }
            }
            Next::Done(report) => {
                let _ = report.line();
                return;
            }
        }
    }
    panic!("a run that does not end");
});

enum Answer<'a> {
    Timeout,
    NotSent,
    Failed,
    Http(StatusCode, Option<&'static str>, &'a [u8]),
}

fn next_answer(data: &[u8]) -> (Answer<'_>, &[u8]) {
    let [high, low, kind, length, rest @ ..] = data else {
        // Out of input: the app and the API answer well from here on.
        return (Answer::Http(StatusCode::OK, Some("text/xml"), b"<Response/>"), &[]);
    };
    let status = StatusCode::from_u16(100 + (u16::from_be_bytes([*high, *low]) % 500)).unwrap_or(StatusCode::OK);
    let length = usize::from(*length).min(rest.len());
    let (body, rest) = rest.split_at(length);
    let answer = match kind % 9 {
        6 => Answer::Timeout,
        7 => Answer::Failed,
        8 => Answer::NotSent,
        index => Answer::Http(status, CONTENT_TYPES[usize::from(index) % CONTENT_TYPES.len()], body),
    };
    (answer, rest)
}
