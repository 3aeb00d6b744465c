//! A backlog of kept messages, for replay's crash test and its benchmark: distinct, correctly
//! signed inbound messages across several numbers, and what to count them with afterwards — the
//! inbox's entries by status, the Messages API's sends per body (the app and the API are the
//! shared fakes, [`ReplayApp`](crate::ReplayApp) and [`MessagesApi`]).

use std::collections::HashMap;

use twiml_fallback::signature::{SIGNATURE_HEADER, compute_signature};
use twiml_fallback::webhook::Params;

use crate::MessagesApi;
use crate::inbox_load::{InboundSms, inbound_sms, message_sid};

/// The account the backlog's messages belong to.
pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";

/// The configuration the crash test and the benchmark run `serve` with: the app at `app_host`
/// (`127.0.0.1:PORT`) allowlisted over plain http, entries due a second after they were kept.
pub fn replay_config(app_host: &str) -> String {
    format!(
        "[recovery]\nallow_hosts = [\"{app_host}\"]\nallow_http = true\ntimeout_ms = 300\n\n[replay]\nmin_interval_seconds = 1\n"
    )
}

/// Starts `binary serve` (the CLI's test binary, or a release build) replaying: with `config`,
/// its inbox at `inbox`, replies through the Messages API at `api_base`, signed with
/// [`TOKEN`](crate::TOKEN), the admin API on `admin_token`; its log in `log`.
pub fn start_replaying_serve(
    binary: &std::path::Path,
    config: &std::path::Path,
    inbox: &std::path::Path,
    api_base: &str,
    admin_token: &str,
    log: &std::path::Path,
) -> Result<(std::process::Child, String), String> {
    crate::start_serve(
        binary,
        &[
            "--config".as_ref(),
            config.as_os_str(),
            "--inbox".as_ref(),
            inbox.as_os_str(),
            "--api-base".as_ref(),
            api_base.as_ref(),
        ],
        &[
            ("TWILIO_AUTH_TOKEN", crate::TOKEN),
            ("TWIML_FALLBACK_ADMIN_TOKEN", admin_token),
        ],
        log,
    )
}

/// One kept message of a backlog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its `MessageSid`.
    pub sid: String,
    /// The number written to.
    pub to: String,
    /// The sender.
    pub from: String,
    /// Its text (unique in the backlog).
    pub body: String,
}

/// The called number `n` of a backlog.
pub fn number(n: usize) -> String {
    format!("+1415555{:04}", 1000 + n)
}

/// Sends `entries` signed inbound SMS to `{base_url}/sms`, spread over `numbers` called numbers,
/// each number's in order (numbers in parallel), with `ErrorUrl` = `app_url`; the messages
/// answered 200, in the order each number sent them. Panics on any other answer.
pub async fn fill(base_url: &str, token: &str, entries: usize, numbers: usize, app_url: &str) -> Vec<Message> {
    let client = crate::client();
    let url = format!("{base_url}/sms");
    let mut senders = tokio::task::JoinSet::new();
    for lane in 0..numbers.max(1) {
        let (client, url, token, app_url) = (client.clone(), url.clone(), token.to_owned(), app_url.to_owned());
        senders.spawn(async move {
            let mut sent = Vec::new();
            for n in (lane..entries).step_by(numbers.max(1)) {
                let message = Message {
                    sid: message_sid("r", n),
                    to: number(lane),
                    from: format!("+1628555{:04}", n % 10_000),
                    body: format!("message {n}"),
                };
                let form = inbound_sms(&InboundSms {
                    sid: &message.sid,
                    account_sid: ACCOUNT_SID,
                    from: &message.from,
                    to: &message.to,
                    body: &message.body,
                    error_url: &app_url,
                });
                let signature = compute_signature(&token, &url, &Params::from_form(form.as_bytes()));
                let answer = client
                    .post(&url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .header(SIGNATURE_HEADER, signature)
                    .body(form)
                    .send()
                    .await
                    .unwrap_or_else(|error| panic!("sending {}: {error}", message.sid));
                assert_eq!(answer.status().as_u16(), 200, "the fallback answer to {}", message.sid);
                sent.push(message);
            }
            sent
        });
    }
    let mut all = Vec::new();
    while let Some(sent) = senders.join_next().await {
        all.extend(sent.expect("a sender"));
    }
    all
}

/// How many sends the Messages API got for each `Body`.
pub fn sends_per_body(api: &MessagesApi) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in api.requests() {
        *counts
            .entry(request.field("Body").unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    counts
}

/// Every entry in an endpoint's inbox, as JSON, read page by page through its admin API.
pub async fn entries(base_url: &str, admin_token: &str) -> Result<Vec<serde_json::Value>, String> {
    let client = crate::client();
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base_url}/_twiml-fallback/inbox?limit=1000");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let response = client
            .get(&url)
            .bearer_auth(admin_token)
            .send()
            .await
            .map_err(|error| format!("{url}: {error}"))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|error| format!("{url}: {error}"))?;
        if !status.is_success() {
            return Err(format!("{url}: {status} {}", String::from_utf8_lossy(&body)));
        }
        let mut page: serde_json::Value = serde_json::from_slice(&body).map_err(|error| format!("{url}: {error}"))?;
        if let Some(entries) = page["entries"].as_array_mut() {
            all.append(entries);
        }
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(all),
        }
    }
}

/// How many entries are in each status.
pub fn by_status(entries: &[serde_json::Value]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for entry in entries {
        *counts
            .entry(entry["status"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    counts
}
