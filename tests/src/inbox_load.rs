//! A burst of distinct, correctly signed inbound messages, for the inbox's crash test and its
//! benchmark: every answer is checked (200, valid messaging TwiML), and the SIDs answered 200 are
//! returned, so a test can check that each one was kept — exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use twiml_fallback::signature::{SIGNATURE_HEADER, compute_signature};
use twiml_fallback::twiml::{TargetChannel, validate};
use twiml_fallback::webhook::{Params, encode_form};

/// The SID of a burst's message `n`: 34 characters, like Twilio's.
pub fn message_sid(prefix: &str, n: usize) -> String {
    format!("SM{prefix}{n:0>width$}", width = 32 - prefix.len())
}

/// An inbound SMS as Twilio sends it to a fallback URL.
pub struct InboundSms<'a> {
    /// `MessageSid` (and `SmsSid`).
    pub sid: &'a str,
    /// `AccountSid`.
    pub account_sid: &'a str,
    /// `From`.
    pub from: &'a str,
    /// `To`.
    pub to: &'a str,
    /// `Body`.
    pub body: &'a str,
    /// `ErrorUrl` (with `ErrorCode` 11200).
    pub error_url: &'a str,
}

/// Its form body, in Twilio's order.
pub fn inbound_sms(sms: &InboundSms<'_>) -> String {
    encode_form([
        ("MessageSid", sms.sid),
        ("SmsSid", sms.sid),
        ("AccountSid", sms.account_sid),
        ("From", sms.from),
        ("To", sms.to),
        ("Body", sms.body),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
        ("ErrorCode", "11200"),
        ("ErrorUrl", sms.error_url),
    ])
}

/// What a burst did.
#[derive(Debug, Default)]
pub struct Burst {
    /// The SIDs whose request was answered 200 with valid TwiML.
    pub answered: Vec<String>,
    /// Requests answered otherwise (a wrong status or body): each is a failure of the endpoint.
    pub wrong: Vec<String>,
    /// Requests that got no answer (the connection failed or was cut).
    pub unanswered: usize,
    /// The latency of every answered request, in microseconds, sorted.
    pub latencies_us: Vec<u64>,
    /// How long the burst took.
    pub elapsed: Duration,
}

impl Burst {
    /// The latency at `percent` (0–100), in milliseconds.
    pub fn percentile_ms(&self, percent: usize) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let index = (self.latencies_us.len() * percent / 100).min(self.latencies_us.len() - 1);
        self.latencies_us[index] as f64 / 1000.0
    }

    /// Answered requests per second.
    pub fn per_second(&self) -> f64 {
        self.answered.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Sends `requests` inbound SMS, `concurrency` at a time, to `{base_url}/sms`, signed with
/// `token`; `answered` counts the 200s as they arrive (a crash test kills the server midway by it).
pub async fn burst(
    base_url: &str,
    token: &str,
    sid_prefix: &str,
    requests: usize,
    concurrency: usize,
    answered: Arc<AtomicUsize>,
) -> Burst {
    let client = crate::client();
    let url = format!("{base_url}/sms");
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    let started = Instant::now();
    for _ in 0..concurrency.max(1) {
        let (client, next, answered) = (client.clone(), Arc::clone(&next), Arc::clone(&answered));
        let (url, token, prefix) = (url.clone(), token.to_owned(), sid_prefix.to_owned());
        workers.spawn(async move {
            let mut burst = Burst::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests {
                    return burst;
                }
                let sid = message_sid(&prefix, n);
                let form = inbound_sms(&InboundSms {
                    sid: &sid,
                    account_sid: "AC00000000000000000000000000000000",
                    from: "+14155550100",
                    to: "+14155550199",
                    body: "Is my order ready?",
                    error_url: "https://app.example.com/sms",
                });
                let signature = compute_signature(&token, &url, &Params::from_form(form.as_bytes()));
                let sent = Instant::now();
                let answer = client
                    .post(&url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .header(SIGNATURE_HEADER, signature)
                    .body(form)
                    .send()
                    .await;
                let answer = match answer {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        response.bytes().await.map(|body| (status, body))
                    }
                    Err(error) => Err(error),
                };
                match answer {
                    Ok((200, body)) if validate(&body, TargetChannel::Messaging).is_valid() => {
                        burst.latencies_us.push(sent.elapsed().as_micros() as u64);
                        answered.fetch_add(1, Ordering::Relaxed);
                        burst.answered.push(sid);
                    }
                    Ok((status, body)) => burst
                        .wrong
                        .push(format!("{sid}: {status} {}", String::from_utf8_lossy(&body))),
                    Err(_) => burst.unanswered += 1,
                }
            }
        });
    }
    let mut total = Burst::default();
    while let Some(worker) = workers.join_next().await {
        if let Ok(burst) = worker {
            total.answered.extend(burst.answered);
            total.wrong.extend(burst.wrong);
            total.unanswered += burst.unanswered;
            total.latencies_us.extend(burst.latencies_us);
        }
    }
    total.elapsed = started.elapsed();
    total.latencies_us.sort_unstable();
    total
}

/// Every SID in an endpoint's inbox, read page by page through its admin API (with how many
/// times each appears, so a duplicate would show).
pub async fn inbox_sids(base_url: &str, admin_token: &str) -> Result<Vec<String>, String> {
    Ok(crate::replay_load::entries(base_url, admin_token)
        .await?
        .iter()
        .map(|entry| entry["sid"].as_str().unwrap_or_default().to_owned())
        .collect())
}
