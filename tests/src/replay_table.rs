//! Replay's cases, run against every backend that replays its inbox: kept messages delivered to
//! the app once it is back — by the backend itself (`serve`'s background task, the Worker's
//! Durable Object alarm), exactly once each, in arrival order per number, signed as Twilio signs
//! (checked by twilio-node's `validateRequest`) — and the app's replies sent through a fake
//! Messages API exactly once; the allowlist, HTTP redirects (never followed) and `<Redirect>`
//! (followed), withheld replies sent on request, dry runs, replay off, messages the synchronous
//! recovery answered, and the Messages API refusing or failing.
//!
//! Every count is exact. A backend implements [`ReplayLauncher`]: it starts the endpoint with its
//! Messages API at the fake's base URL.

use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use twiml_fallback::webhook::{FALLBACK_PARAMS, is_sid};

use crate::fakes::{ApiFailure, ApiRequest, AppHit, MessagesApi, ReplayApp, Route};
use crate::inbox_table::{ADMIN_TOKEN, AdminAnswer, InboxLauncher, admin};
use crate::table::{CaseRequest, Signing, log_text, send};
use crate::worker::TempDir;
use crate::{Running, TOKEN};

/// A backend that replays its inbox.
pub trait ReplayLauncher: InboxLauncher {
    /// Starts the endpoint as [`InboxLauncher::launch_with_inbox`] does (with `config`, `tokens`,
    /// the admin token `admin_token`, its inbox under `state`), sending replies through the
    /// Messages API at `api_base` (`http://127.0.0.1:PORT`, no trailing slash): `serve
    /// --api-base`, the Worker's `TWILIO_API_BASE` variable.
    fn launch_for_replay<'a>(
        &'a self,
        config: &'a str,
        tokens: &'a [&'a str],
        admin_token: &'a str,
        state: &'a Path,
        api_base: &'a str,
    ) -> Pin<Box<dyn Future<Output = Running> + Send + 'a>>;
}

/// The account every message of the table belongs to.
const ACCOUNT: &str = "ACe2e00000000000000000000000000001";

/// How long the backend has to replay what is due (its passes run every second).
const REPLAY_WITHIN: Duration = Duration::from_secs(30);

/// One message sent to the endpoint while the app failed.
#[derive(Clone, Debug)]
struct Sent {
    sid: String,
    from: String,
    to: String,
    body: String,
    /// Every parameter, in order, `ErrorCode` and `ErrorUrl` last.
    params: Vec<(String, String)>,
}

impl Sent {
    fn new(sid: String, from: &str, to: &str, body: &str, error_url: &str) -> Self {
        let params = [
            ("ToCountry", "US"),
            ("SmsMessageSid", sid.as_str()),
            ("NumMedia", "0"),
            ("SmsSid", sid.as_str()),
            ("SmsStatus", "received"),
            ("Body", body),
            ("To", to),
            ("MessageSid", sid.as_str()),
            ("AccountSid", ACCOUNT),
            ("From", from),
            ("ApiVersion", "2010-04-01"),
            ("ErrorCode", "11200"),
            ("ErrorUrl", error_url),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
        Self {
            sid,
            from: from.to_owned(),
            to: to.to_owned(),
            body: body.to_owned(),
            params,
        }
    }

    /// The parameters the app must be delivered: the original ones without the fallback's.
    fn delivered_params(&self) -> Vec<(String, String)> {
        self.params
            .iter()
            .filter(|(key, _)| !FALLBACK_PARAMS.contains(&key.as_str()))
            .cloned()
            .collect()
    }

    fn request(&self) -> CaseRequest {
        CaseRequest {
            method: "POST",
            path: "/sms",
            params: self.params.clone(),
            signing: Signing::Token(TOKEN),
            raw_body: None,
        }
    }
}

/// `SM` + 32 hex: case `case`, message `n`.
fn sid(case: u8, n: u8) -> String {
    format!("SM{case:02x}{n:030x}")
}

/// The failures of a run, each a line.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, expected: T) {
        if got != expected {
            self.0.push(format!("{what}: got {got:?}, expected {expected:?}"));
        }
    }
}

/// A started endpoint, driven through its fallback URL and its admin API.
struct Endpoint {
    base: String,
    auth: String,
}

impl Endpoint {
    fn new(running: &Running) -> Self {
        Self {
            base: running.base_url.clone(),
            auth: format!("Bearer {ADMIN_TOKEN}"),
        }
    }

    /// Sends `message` as Twilio sends it to a fallback URL; its answer's status and body.
    async fn send(&self, message: &Sent) -> (u16, String) {
        let answer = send(&self.base, &message.request()).await;
        (answer.status, answer.body)
    }

    /// The entry `sid` as the admin API shows it (`Null` when it cannot).
    async fn entry(&self, sid: &str) -> Value {
        let shown = admin(
            &self.base,
            "GET",
            &format!("/_twiml-fallback/inbox/{sid}"),
            Some(&self.auth),
            None,
        )
        .await;
        if shown.status == 200 { shown.json } else { Value::Null }
    }

    async fn entries(&self, sids: &[&str]) -> Vec<Value> {
        let mut entries = Vec::with_capacity(sids.len());
        for sid in sids {
            entries.push(self.entry(sid).await);
        }
        entries
    }

    /// Polls the entries `sids` until `done` holds for all of them, for up to `within`; their
    /// last reading, or the failure that says which did not get there.
    async fn wait_for(
        &self,
        what: &str,
        sids: &[&str],
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Vec<Value>, String> {
        let deadline = Instant::now() + within;
        loop {
            let entries = self.entries(sids).await;
            if entries.iter().all(&done) {
                return Ok(entries);
            }
            if Instant::now() >= deadline {
                let states: Vec<String> = entries
                    .iter()
                    .map(|entry| {
                        format!(
                            "{} {} attempts {} last_error {}",
                            entry["sid"], entry["status"], entry["attempts"], entry["last_error"]
                        )
                    })
                    .collect();
                return Err(format!(
                    "{what}: not within {} s: {}",
                    within.as_secs(),
                    states.join("; ")
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `POST /_twiml-fallback/replay` with `body`.
    async fn replay(&self, body: Option<&str>) -> AdminAnswer {
        admin(&self.base, "POST", "/_twiml-fallback/replay", Some(&self.auth), body).await
    }

    async fn replay_status(&self) -> AdminAnswer {
        admin(&self.base, "GET", "/_twiml-fallback/replay", Some(&self.auth), None).await
    }

    async fn dismiss(&self, sid: &str) -> u16 {
        admin(
            &self.base,
            "POST",
            &format!("/_twiml-fallback/inbox/{sid}/dismiss"),
            Some(&self.auth),
            None,
        )
        .await
        .status
    }
}

fn status(entry: &Value) -> &str {
    entry["status"].as_str().unwrap_or("")
}

fn attempts(entry: &Value) -> u64 {
    entry["attempts"].as_u64().unwrap_or(u64::MAX)
}

/// The totals of a pass's answer, in the order of its JSON: `dry_run`, `delivered`,
/// `replies_sent`, `replies_withheld`, `failed`, `skipped`, `needs_attention`.
fn totals(answer: &AdminAnswer) -> (u16, Value, [u64; 6]) {
    let count = |key: &str| answer.json[key].as_u64().unwrap_or(u64::MAX);
    (
        answer.status,
        answer.json["dry_run"].clone(),
        [
            count("delivered"),
            count("replies_sent"),
            count("replies_withheld"),
            count("failed"),
            count("skipped"),
            count("needs_attention"),
        ],
    )
}

/// `(sid, outcome, status)` of each entry of a pass's answer.
fn outcomes(answer: &AdminAnswer) -> Vec<(String, String, String)> {
    answer.json["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|entry| {
                    (
                        entry["sid"].as_str().unwrap_or("?").to_owned(),
                        entry["outcome"].as_str().unwrap_or("?").to_owned(),
                        entry["status"].as_str().unwrap_or("?").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn triple(sid: &str, outcome: &str, status: &str) -> (String, String, String) {
    (sid.to_owned(), outcome.to_owned(), status.to_owned())
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

fn config(app_host: &str, replay: &str) -> String {
    format!("[recovery]\nallow_hosts = [\"{app_host}\"]\nallow_http = true\n\n[replay]\n{replay}\n")
}

/// A reply the app's `<Message>` asked for, as the entry keeps it: `(to, from, body, state)`.
fn reply(entry: &Value, index: usize) -> (String, String, String, String) {
    let reply = &entry["replies"][index];
    let text = |key: &str| reply[key].as_str().unwrap_or("").to_owned();
    (text("to"), text("from"), text("body"), text("state"))
}

fn replies(entry: &Value) -> usize {
    entry["replies"].as_array().map_or(usize::MAX, Vec::len)
}

/// Checks one send the fake Messages API received: the path and account, HTTP Basic with the
/// account and the auth token, what it answered, and the form, in order.
fn check_send(failures: &mut Failures, what: &str, request: &ApiRequest, answered: u16, form: &[(&str, &str)]) {
    failures.eq(
        &format!("{what}: the send's method and path"),
        (request.method.as_str(), request.path.as_str()),
        ("POST", format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json").as_str()),
    );
    failures.eq(
        &format!("{what}: the send's account and Basic credentials"),
        (
            request.account.as_deref(),
            request.user.as_deref(),
            request.password.as_deref(),
        ),
        (Some(ACCOUNT), Some(ACCOUNT), Some(TOKEN)),
    );
    failures.eq(&format!("{what}: the fake answered"), request.status, answered);
    failures.eq(&format!("{what}: the send's form"), request.form.clone(), pairs(form));
}

/// Checks a replayed delivery: to `url`, by POST, with the original parameters (without the
/// fallback's), signed for the URL, marked as a replay with the entry's `received_at`.
fn check_delivery(failures: &mut Failures, what: &str, hit: &AppHit, url: &str, message: &Sent, entry: &Value) {
    failures.eq(
        &format!("{what}: delivered to"),
        (hit.method.as_str(), hit.url.as_str()),
        ("POST", url),
    );
    failures.eq(
        &format!("{what}: delivered parameters"),
        hit.params.clone(),
        message.delivered_params(),
    );
    failures.check(hit.verified, || {
        format!("{what}: the signature {:?} does not verify for {url}", hit.signature)
    });
    failures.eq(
        &format!("{what}: X-Twiml-Fallback-Received-At"),
        hit.received_at.as_deref(),
        entry["received_at"].as_str(),
    );
}

/// Runs the replay cases against `launcher`; panics with every failure listed. Needs twilio-node
/// (`TWILIO_REFERENCE_NODE_MODULES`, which `scripts/test.sh` sets) to check the signatures.
pub async fn run_replay_table(launcher: &dyn ReplayLauncher) {
    let node_modules = reference_node_modules();
    assert!(is_sid(ACCOUNT, "AC"), "the table's account SID is one");
    let started = Instant::now();
    let state = TempDir::new("replay-table");
    let mut failures = Failures::default();
    let mut replayed_hits: Vec<AppHit> = Vec::new();
    let mut logs = String::new();

    // One endpoint replaying by itself, every second.
    {
        let app = ReplayApp::start().await;
        let api = MessagesApi::start().await;
        let dir = state.0.join("automatic");
        std::fs::create_dir_all(&dir).expect("state folder");
        let config = config(&app.host, "min_interval_seconds = 1");
        let running = launcher
            .launch_for_replay(&config, &[TOKEN], ADMIN_TOKEN, &dir, &api.base_url)
            .await;
        automatic_cases(&Endpoint::new(&running), &app, &api, &mut failures).await;
        replayed_hits.extend(app.hits().into_iter().filter(AppHit::is_replay));
        logs.push_str(&log_text(&running));
    }

    // One whose replies are withheld and whose passes run only on request (its automatic ones
    // are 15 minutes apart), so a dry run can be seen to change nothing.
    {
        let app = ReplayApp::start().await;
        let api = MessagesApi::start().await;
        let dir = state.0.join("on-request");
        std::fs::create_dir_all(&dir).expect("state folder");
        let config = config(&app.host, "min_interval_seconds = 900\nsend_replies = false");
        let running = launcher
            .launch_for_replay(&config, &[TOKEN], ADMIN_TOKEN, &dir, &api.base_url)
            .await;
        on_request_cases(&Endpoint::new(&running), &app, &api, &mut failures).await;
        replayed_hits.extend(app.hits().into_iter().filter(AppHit::is_replay));
        logs.push_str(&log_text(&running));
    }

    // Without [recovery], replay is off.
    {
        let api = MessagesApi::start().await;
        let dir = state.0.join("off");
        std::fs::create_dir_all(&dir).expect("state folder");
        let running = launcher
            .launch_for_replay(
                "[replay]\nmin_interval_seconds = 1\n",
                &[TOKEN],
                ADMIN_TOKEN,
                &dir,
                &api.base_url,
            )
            .await;
        let endpoint = Endpoint::new(&running);
        let off = endpoint.replay_status().await;
        failures.check(
            off.status == 200
                && off.json["replay"] == "off"
                && off.json["reason"].as_str().is_some_and(|reason| !reason.is_empty())
                && off.json.as_object().map(serde_json::Map::len) == Some(2),
            || format!("off: GET /replay answered {} {}", off.status, off.json),
        );
        let refused = endpoint.replay(None).await;
        failures.eq("off: POST /replay's status", refused.status, 409);
        failures.eq("off: the Messages API's requests", api.requests().len(), 0);
        logs.push_str(&log_text(&running));
    }

    // Every replayed request, checked by twilio-node.
    let checked = check_with_twilio_node(&node_modules, &replayed_hits, &mut failures);
    eprintln!(
        "{}: replay table in {:.1} s; {checked} replayed signatures validated by twilio-node",
        launcher.name(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.0.is_empty(),
        "{}: {} replay failures:\n  {}{logs}",
        launcher.name(),
        failures.0.len(),
        failures.0.join("\n  ")
    );
}

/// The cases on an endpoint whose passes run by themselves every second.
async fn automatic_cases(endpoint: &Endpoint, app: &ReplayApp, api: &MessagesApi, failures: &mut Failures) {
    let on = endpoint.replay_status().await;
    failures.eq(
        "GET /replay",
        (on.status, on.json.clone()),
        (200, json!({"replay": "on"})),
    );

    // a) The app is down: six messages to two numbers are kept pending; each number's oldest is
    // its probe (retried, backing off); the others wait behind it.
    let (first, second) = ("+14155550101", "+14155550102");
    app.set_down(true);
    let backlog: Vec<Sent> = (0..6u8)
        .map(|n| {
            Sent::new(
                sid(0x0a, n),
                &format!("+1628555010{n}"),
                if n % 2 == 0 { first } else { second },
                &format!("Open at {n}? Café & co"),
                &app.url("/sms"),
            )
        })
        .collect();
    for message in &backlog {
        let (status, body) = endpoint.send(message).await;
        failures.check(status == 200 && !body.contains("Got it"), || {
            format!("a) {}: the fallback answered {status} {body}", message.sid)
        });
    }
    let sids: Vec<&str> = backlog.iter().map(|message| message.sid.as_str()).collect();
    let probes = [sids[0], sids[1]];
    match endpoint
        .wait_for("a) both probes failed once", &sids, Duration::from_secs(15), |entry| {
            status(entry) == "pending"
                && (!probes.contains(&entry["sid"].as_str().unwrap_or("")) || attempts(entry) >= 1)
        })
        .await
    {
        Ok(_) => {}
        Err(failure) => failures.0.push(failure),
    }
    app.set_down(false);
    let entries = match endpoint
        .wait_for(
            "a) all six replayed by the backend itself",
            &sids,
            REPLAY_WITHIN,
            |entry| status(entry) == "replayed",
        )
        .await
    {
        Ok(entries) => entries,
        Err(failure) => {
            failures.0.push(failure);
            endpoint.entries(&sids).await
        }
    };
    let sends = api.requests();
    failures.eq("a) the Messages API's requests", sends.len(), 6);
    for (message, entry) in backlog.iter().zip(&entries) {
        let what = format!("a) {}", message.sid);
        let hits = app.hits_for(&message.sid);
        let recovery: Vec<&AppHit> = hits.iter().filter(|hit| !hit.is_replay()).collect();
        failures.eq(
            &format!("{what}: synchronous recovery attempts (answered)"),
            recovery.iter().map(|hit| hit.answered).collect::<Vec<_>>(),
            vec![500],
        );
        let delivered: Vec<&AppHit> = hits
            .iter()
            .filter(|hit| hit.is_replay() && hit.answered == 200)
            .collect();
        let failed = hits.iter().filter(|hit| hit.is_replay() && hit.answered != 200).count();
        failures.eq(
            &format!("{what}: replayed deliveries the app answered"),
            delivered.len(),
            1,
        );
        failures.eq(
            &format!("{what}: failed replay attempts (= the entry's attempts)"),
            failed as u64,
            attempts(entry),
        );
        if !probes.contains(&message.sid.as_str()) {
            failures.eq(
                &format!("{what}: attempts of an entry behind its number's probe"),
                attempts(entry),
                0,
            );
        }
        if let Some(hit) = delivered.first() {
            check_delivery(failures, &what, hit, &app.url("/sms"), message, entry);
        }
        let body = format!("Got it: {}", message.body);
        let to_sender = api.requests_to(&message.from);
        failures.eq(&format!("{what}: sends to {}", message.from), to_sender.len(), 1);
        if let Some(request) = to_sender.first() {
            check_send(
                failures,
                &what,
                request,
                201,
                &[("To", &message.from), ("From", &message.to), ("Body", &body)],
            );
            failures.eq(&format!("{what}: replies"), replies(entry), 1);
            failures.eq(
                &format!("{what}: reply 1"),
                reply(entry, 0),
                (
                    message.from.clone(),
                    message.to.clone(),
                    body.clone(),
                    "sent".to_owned(),
                ),
            );
            let kept = &entry["replies"][0];
            failures.eq(
                &format!("{what}: reply 1's kind, sent, message_sid, error"),
                (
                    kept["kind"].clone(),
                    kept["sent"].clone(),
                    kept["message_sid"].clone(),
                    kept["error"].clone(),
                ),
                (json!("answer"), json!(true), json!(request.sid), Value::Null),
            );
        }
        failures.eq(&format!("{what}: last_error"), entry["last_error"].clone(), Value::Null);
    }
    for number in [first, second] {
        let order: Vec<String> = app
            .hits()
            .into_iter()
            .filter(|hit| hit.is_replay() && hit.answered == 200 && hit.param("To") == Some(number))
            .filter_map(|hit| hit.param("MessageSid").map(str::to_owned))
            .collect();
        let arrival: Vec<String> = backlog
            .iter()
            .filter(|message| message.to == number)
            .map(|message| message.sid.clone())
            .collect();
        failures.eq(&format!("a) {number}: replayed in arrival order"), order, arrival);
    }
    // A pass on request finds nothing left: nothing delivered or sent twice.
    let again = endpoint.replay(None).await;
    failures.eq(
        "a) a second pass",
        totals(&again),
        (200, json!(false), [0, 0, 0, 0, 0, 0]),
    );
    failures.eq("a) a second pass's entries", outcomes(&again), Vec::new());
    failures.check(again.json.get("next_due_ms").is_some(), || {
        format!("a) a second pass's answer has no next_due_ms: {}", again.json)
    });
    failures.eq("a) the Messages API's requests after it", api.requests().len(), 6);

    // h) The app is up when the message arrives: the synchronous recovery relays its answer, and
    // the message is kept as replayed, never delivered again.
    let recovered = Sent::new(
        sid(0x0b, 0),
        "+16285550200",
        "+14155550103",
        "Are you open?",
        &app.url("/sms"),
    );
    let (answered, body) = endpoint.send(&recovered).await;
    failures.check(answered == 200 && body.contains("Got it: Are you open?"), || {
        format!("h) the recovered answer: {answered} {body}")
    });
    let entry = endpoint.entry(&recovered.sid).await;
    failures.eq(
        "h) the recovered message's entry",
        (status(&entry), attempts(&entry), replies(&entry)),
        ("replayed", 0, 0),
    );

    // c) An ErrorUrl on a host the allowlist does not name is never delivered (not by the
    // recovery either): a pass naming it says it was refused, and the next automatic pass sets it
    // aside as failed, with the reason, once (it is not skipped again every pass).
    let port = app.host.rsplit(':').next().unwrap_or_default();
    let refused = Sent::new(
        sid(0x0c, 0),
        "+16285550300",
        "+14155550104",
        "Elsewhere?",
        &format!("http://localhost:{port}/sms"),
    );
    let (answered, _) = endpoint.send(&refused).await;
    failures.eq("c) the fallback's status", answered, 200);
    let named = endpoint.replay(Some(&json!({"sids": [refused.sid]}).to_string())).await;
    failures.eq(
        "c) a pass naming it",
        totals(&named),
        (200, json!(false), [0, 0, 0, 0, 1, 0]),
    );
    failures.eq(
        "c) its entry in the pass",
        outcomes(&named),
        vec![triple(&refused.sid, "skipped", "pending")],
    );
    let detail = named.json["entries"][0]["detail"].as_str().unwrap_or("").to_owned();
    failures.check(detail.contains("refused"), || {
        format!("c) the detail says why: {detail:?}")
    });

    // d) An HTTP redirect is not followed: the entry stays pending, failing, and the Location is
    // never requested.
    app.route("/moved", Route::Found(app.url("/moved-target")));
    let moved = Sent::new(
        sid(0x0d, 0),
        "+16285550400",
        "+14155550105",
        "Moved?",
        &app.url("/moved"),
    );
    let (answered, _) = endpoint.send(&moved).await;
    failures.eq("d) the fallback's status", answered, 200);
    if let Err(failure) = endpoint
        .wait_for("d) a failed replay of the 302", &[&moved.sid], REPLAY_WITHIN, |entry| {
            status(entry) == "pending" && attempts(entry) >= 1
        })
        .await
    {
        failures.0.push(failure);
    }
    // A reading between two equal ones of the entry (no attempt in flight) counts exactly.
    let mut consistent = None;
    for _ in 0..50 {
        let before = endpoint.entry(&moved.sid).await;
        let hits = app.hits_for(&moved.sid);
        let after = endpoint.entry(&moved.sid).await;
        if status(&before) == "pending" && before == after {
            consistent = Some((after, hits));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match consistent {
        Some((entry, hits)) => {
            let replays: Vec<u16> = hits
                .iter()
                .filter(|hit| hit.is_replay())
                .map(|hit| hit.answered)
                .collect();
            failures.eq(
                "d) replay attempts on the 302 (each answered 302; = attempts)",
                replays.clone(),
                vec![302; usize::try_from(attempts(&entry)).unwrap_or(0)],
            );
            failures.check(attempts(&entry) >= 1, || format!("d) attempts: {}", entry["attempts"]));
            let last_error = entry["last_error"].as_str().unwrap_or("").to_owned();
            failures.check(last_error.contains("302"), || {
                format!("d) last_error does not mention the 302: {last_error:?}")
            });
            failures.eq(
                "d) synchronous recovery attempts",
                hits.iter().filter(|hit| !hit.is_replay()).count(),
                1,
            );
        }
        None => failures
            .0
            .push("d) the entry never held still (pending) between two readings".to_owned()),
    }
    // Dismissed, it is out of replay (the later passes' counts stay exact).
    failures.eq("d) dismissing it", endpoint.dismiss(&moved.sid).await, 200);

    // d, i) Four messages kept while their paths are down, replayed once the paths are up:
    // a <Redirect> followed, a <Message> with its own to/from/media/statusCallback, a reply the
    // Messages API refuses (400, 21211), and one it fails (500).
    let hop = Sent::new(sid(0x0e, 0), "+16285550500", "+14155550106", "Hop?", &app.url("/hop"));
    let rich = Sent::new(
        sid(0x0e, 1),
        "+16285550501",
        "+14155550107",
        "Pictures?",
        &app.url("/rich"),
    );
    let invalid = Sent::new(
        sid(0x0e, 2),
        "+16285550502",
        "+14155550108",
        "Invalid?",
        &app.url("/refused"),
    );
    let unknown = Sent::new(
        sid(0x0e, 3),
        "+16285550503",
        "+14155550109",
        "Unknown?",
        &app.url("/unknown"),
    );
    let paths = ["/hop", "/rich", "/refused", "/unknown"];
    for path in paths {
        app.route(path, Route::Down);
    }
    for message in [&hop, &rich, &invalid, &unknown] {
        let (answered, _) = endpoint.send(message).await;
        failures.eq(&format!("{}: the fallback's status", message.sid), answered, 200);
    }
    api.fail_to(&invalid.from, 1, ApiFailure::invalid_to());
    api.fail_to(&unknown.from, 1, ApiFailure::ServerError);
    let (verb_to, verb_from) = ("+14155550177", "+14155550188");
    let media = ["https://media.example.com/a.png", "https://media.example.com/b.png"];
    let callback = "https://status.example.com/replies";
    app.route(
        "/next",
        Route::Twiml("<Response><Message>Second document: {Body}</Message></Response>".to_owned()),
    );
    app.route(
        "/hop",
        Route::Twiml("<Response><Redirect>/next</Redirect></Response>".to_owned()),
    );
    app.route(
        "/rich",
        Route::Twiml(format!(
            r#"<Response><Message to="{verb_to}" from="{verb_from}" statusCallback="{callback}"><Body>Details: {{Body}}</Body><Media>{}</Media><Media>{}</Media></Message></Response>"#,
            media[0], media[1]
        )),
    );
    app.route("/refused", Route::Echo);
    app.route(
        "/unknown",
        Route::Twiml("<Response><Message>One: {Body}</Message><Message>Two: {Body}</Message></Response>".to_owned()),
    );
    let group = [
        hop.sid.as_str(),
        rich.sid.as_str(),
        invalid.sid.as_str(),
        unknown.sid.as_str(),
    ];
    let entries = match endpoint
        .wait_for("d, i) the four replayed", &group, REPLAY_WITHIN, |entry| {
            if entry["sid"] == unknown.sid.as_str() {
                status(entry) == "needs-attention"
            } else {
                status(entry) == "replayed"
            }
        })
        .await
    {
        Ok(entries) => entries,
        Err(failure) => {
            failures.0.push(failure);
            endpoint.entries(&group).await
        }
    };
    let replay_hits = |sid: &str, path: &str| -> Vec<AppHit> {
        app.hits_for(sid)
            .into_iter()
            .filter(|hit| hit.is_replay() && hit.path == path)
            .collect()
    };
    for ((message, path), entry) in [&hop, &rich, &invalid, &unknown].into_iter().zip(paths).zip(&entries) {
        let hits = replay_hits(&message.sid, path);
        failures.eq(
            &format!("{} {path}: replayed deliveries the app answered", message.sid),
            hits.iter().filter(|hit| hit.answered == 200).count(),
            1,
        );
        failures.eq(
            &format!("{} {path}: failed replay attempts (= attempts)", message.sid),
            hits.iter().filter(|hit| hit.answered != 200).count() as u64,
            attempts(entry),
        );
        if let Some(hit) = hits.iter().find(|hit| hit.answered == 200) {
            check_delivery(
                failures,
                &format!("{} {path}", message.sid),
                hit,
                &app.url(path),
                message,
                entry,
            );
        }
    }
    let [hop_entry, rich_entry, invalid_entry, unknown_entry] = [&entries[0], &entries[1], &entries[2], &entries[3]];

    // d) <Redirect> TwiML is followed, signed, once; the reply comes from the second document.
    let next = replay_hits(&hop.sid, "/next");
    failures.eq("d) <Redirect>: requests of its target", next.len(), 1);
    if let Some(hit) = next.first() {
        failures.eq("d) <Redirect>: its target answered", hit.answered, 200);
        check_delivery(failures, "d) <Redirect>", hit, &app.url("/next"), &hop, hop_entry);
    }
    let second_body = format!("Second document: {}", hop.body);
    failures.eq("d) <Redirect>: replies", replies(hop_entry), 1);
    failures.eq(
        "d) <Redirect>: reply 1",
        reply(hop_entry, 0),
        (hop.from.clone(), hop.to.clone(), second_body.clone(), "sent".to_owned()),
    );
    let sent = api.requests_to(&hop.from);
    failures.eq("d) <Redirect>: sends", sent.len(), 1);
    if let Some(request) = sent.first() {
        check_send(
            failures,
            "d) <Redirect>",
            request,
            201,
            &[("To", &hop.from), ("From", &hop.to), ("Body", &second_body)],
        );
    }

    // A <Message> with to, from, <Media> and statusCallback is sent as it says.
    let rich_body = format!("Details: {}", rich.body);
    failures.eq("<Message to from>: replies", replies(rich_entry), 1);
    failures.eq(
        "<Message to from>: reply 1",
        reply(rich_entry, 0),
        (
            verb_to.to_owned(),
            verb_from.to_owned(),
            rich_body.clone(),
            "sent".to_owned(),
        ),
    );
    failures.eq(
        "<Message to from>: reply 1's media and status_callback",
        (
            rich_entry["replies"][0]["media"].clone(),
            rich_entry["replies"][0]["status_callback"].clone(),
        ),
        (json!(media), json!(callback)),
    );
    failures.eq(
        "<Message to from>: sends to the sender",
        api.requests_to(&rich.from).len(),
        0,
    );
    let sent = api.requests_to(verb_to);
    failures.eq("<Message to from>: sends", sent.len(), 1);
    if let Some(request) = sent.first() {
        check_send(
            failures,
            "<Message to from>",
            request,
            201,
            &[
                ("To", verb_to),
                ("From", verb_from),
                ("Body", &rich_body),
                ("MediaUrl", media[0]),
                ("MediaUrl", media[1]),
                ("StatusCallback", callback),
            ],
        );
        failures.eq(
            "<Message to from>: reply 1's message_sid",
            rich_entry["replies"][0]["message_sid"].clone(),
            json!(request.sid),
        );
    }

    // i) Refused by the Messages API (400, 21211): the reply is refused, the entry replayed.
    let invalid_body = format!("Got it: {}", invalid.body);
    failures.eq("i) 400: replies", replies(invalid_entry), 1);
    failures.eq(
        "i) 400: reply 1",
        reply(invalid_entry, 0),
        (
            invalid.from.clone(),
            invalid.to.clone(),
            invalid_body.clone(),
            "refused".to_owned(),
        ),
    );
    let error = invalid_entry["replies"][0]["error"].as_str().unwrap_or("").to_owned();
    failures.check(error.contains("21211"), || {
        format!("i) 400: the reply's error: {error:?}")
    });
    failures.eq(
        "i) 400: reply 1's sent and message_sid",
        (
            invalid_entry["replies"][0]["sent"].clone(),
            invalid_entry["replies"][0]["message_sid"].clone(),
        ),
        (json!(false), Value::Null),
    );
    let sent = api.requests_to(&invalid.from);
    failures.eq("i) 400: sends", sent.len(), 1);
    if let Some(request) = sent.first() {
        check_send(
            failures,
            "i) 400",
            request,
            400,
            &[("To", &invalid.from), ("From", &invalid.to), ("Body", &invalid_body)],
        );
    }

    // i) The Messages API failing (500): the reply's outcome is unknown, the next one is withheld,
    // and the entry needs attention.
    failures.eq("i) 500: replies", replies(unknown_entry), 2);
    failures.eq(
        "i) 500: reply 1",
        reply(unknown_entry, 0),
        (
            unknown.from.clone(),
            unknown.to.clone(),
            format!("One: {}", unknown.body),
            "unknown".to_owned(),
        ),
    );
    failures.eq(
        "i) 500: reply 2",
        reply(unknown_entry, 1),
        (
            unknown.from.clone(),
            unknown.to.clone(),
            format!("Two: {}", unknown.body),
            "withheld".to_owned(),
        ),
    );
    let error = unknown_entry["replies"][0]["error"].as_str().unwrap_or("").to_owned();
    failures.check(error.contains("500"), || format!("i) 500: reply 1's error: {error:?}"));
    let sent = api.requests_to(&unknown.from);
    failures.eq("i) 500: sends", sent.len(), 1);
    if let Some(request) = sent.first() {
        check_send(
            failures,
            "i) 500",
            request,
            500,
            &[
                ("To", &unknown.from),
                ("From", &unknown.to),
                ("Body", &format!("One: {}", unknown.body)),
            ],
        );
    }

    // Later passes — two automatic ones, then one on request — deliver and send nothing more,
    // and find nothing left to do (the refused entry was set aside).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let last = endpoint.replay(Some("{}")).await;
    failures.eq("the last pass", totals(&last), (200, json!(false), [0, 0, 0, 0, 0, 0]));
    failures.eq("the last pass's entries", outcomes(&last), vec![]);
    failures.eq("the Messages API's requests in all", api.requests().len(), 10);
    for message in &backlog {
        failures.eq(
            &format!("a) {}: replayed deliveries the app answered, in the end", message.sid),
            app.hits_for(&message.sid)
                .iter()
                .filter(|hit| hit.is_replay() && hit.answered == 200)
                .count(),
            1,
        );
    }
    let recovered_hits = app.hits_for(&recovered.sid);
    failures.eq(
        "h) the recovered message's requests (replays, recoveries)",
        (
            recovered_hits.iter().filter(|hit| hit.is_replay()).count(),
            recovered_hits.iter().filter(|hit| !hit.is_replay()).count(),
        ),
        (0, 1),
    );
    let entry = endpoint.entry(&recovered.sid).await;
    failures.eq(
        "h) the recovered message's entry, in the end",
        (status(&entry), replies(&entry)),
        ("replayed", 0),
    );
    failures.eq(
        "c) requests for the refused ErrorUrl",
        app.hits_for(&refused.sid).len(),
        0,
    );
    let entry = endpoint.entry(&refused.sid).await;
    failures.eq(
        "c) the refused entry, in the end",
        (status(&entry), attempts(&entry)),
        ("failed", 0),
    );
    let reason = entry["last_error"].as_str().unwrap_or_default().to_owned();
    failures.check(reason.starts_with("refused: host \"localhost\""), || {
        format!("c) the refused entry's last_error says why: {reason:?}")
    });
    failures.eq(
        "d) requests of the 302's Location",
        app.hits_on("/moved-target").len(),
        0,
    );
    let entry = endpoint.entry(&unknown.sid).await;
    failures.eq(
        "i) 500: the entry, in the end",
        (status(&entry), reply(&entry, 0).3, reply(&entry, 1).3),
        ("needs-attention", "unknown".to_owned(), "withheld".to_owned()),
    );
    for hit in app.hits().iter().filter(|hit| hit.is_replay()) {
        failures.check(hit.verified, || {
            format!("a replayed request to {} does not verify: {:?}", hit.url, hit.signature)
        });
    }
}

/// The cases on an endpoint that withholds replies and replays on request: a dry run, a named
/// replay, its withheld reply sent deliberately, once.
async fn on_request_cases(endpoint: &Endpoint, app: &ReplayApp, api: &MessagesApi, failures: &mut Failures) {
    let on = endpoint.replay_status().await;
    failures.eq(
        "e) GET /replay",
        (on.status, on.json.clone()),
        (200, json!({"replay": "on"})),
    );
    app.route("/late", Route::Down);
    let late = Sent::new(
        sid(0x0f, 0),
        "+16285550600",
        "+14155550110",
        "Still there?",
        &app.url("/late"),
    );
    let (answered, _) = endpoint.send(&late).await;
    failures.eq("e) the fallback's status", answered, 200);
    let before = endpoint.entry(&late.sid).await;
    failures.eq(
        "e) the kept entry",
        (status(&before), attempts(&before), replies(&before)),
        ("pending", 0, 0),
    );

    // f) A dry run lists what would be delivered, and changes nothing. Nothing is due yet
    // (min_interval_seconds = 900): an automatic dry run, like the pass it stands for, lists
    // nothing; named, the entry would be delivered at once.
    let automatic = endpoint.replay(Some(r#"{"dry_run": true}"#)).await;
    failures.eq("f) a dry run of what is due", outcomes(&automatic), vec![]);
    let dry = endpoint
        .replay(Some(&json!({"sids": [late.sid], "dry_run": true}).to_string()))
        .await;
    failures.eq("f) a dry run", totals(&dry), (200, json!(true), [0, 0, 0, 0, 0, 0]));
    failures.eq(
        "f) a dry run's entries",
        outcomes(&dry),
        vec![triple(&late.sid, "would-deliver", "pending")],
    );
    failures.eq(
        "f) a dry run's target",
        dry.json["entries"][0]["target"].clone(),
        json!(app.url("/late")),
    );
    failures.eq(
        "f) the entry after a dry run",
        endpoint.entry(&late.sid).await,
        before.clone(),
    );
    failures.eq(
        "f) requests of the app after a dry run (the recovery's)",
        app.hits_for(&late.sid).len(),
        1,
    );
    failures.eq(
        "f) the Messages API's requests after a dry run",
        api.requests().len(),
        0,
    );

    // e) With send_replies off, the reply is withheld; sent when asked, once.
    app.route("/late", Route::Echo);
    let named = endpoint.replay(Some(&json!({"sids": [late.sid]}).to_string())).await;
    failures.eq(
        "e) a named pass",
        totals(&named),
        (200, json!(false), [1, 0, 1, 0, 0, 0]),
    );
    failures.eq(
        "e) a named pass's entries",
        outcomes(&named),
        vec![triple(&late.sid, "delivered", "replayed")],
    );
    let body = format!("Got it: {}", late.body);
    let entry = endpoint.entry(&late.sid).await;
    failures.eq("e) replies", replies(&entry), 1);
    failures.eq(
        "e) reply 1",
        reply(&entry, 0),
        (late.from.clone(), late.to.clone(), body.clone(), "withheld".to_owned()),
    );
    let error = entry["replies"][0]["error"].as_str().unwrap_or("").to_owned();
    failures.check(error.contains("send_replies"), || {
        format!("e) why it was withheld: {error:?}")
    });
    failures.eq("e) the Messages API's requests while withheld", api.requests().len(), 0);
    let delivered: Vec<AppHit> = app.hits_for(&late.sid).into_iter().filter(AppHit::is_replay).collect();
    failures.eq(
        "e) replayed deliveries (answered)",
        delivered.iter().map(|hit| hit.answered).collect::<Vec<_>>(),
        vec![200],
    );
    if let Some(hit) = delivered.first() {
        check_delivery(failures, "e)", hit, &app.url("/late"), &late, &entry);
    }

    let unnamed = endpoint.replay(Some(r#"{"send_withheld": true}"#)).await;
    failures.eq("e) send_withheld without sids: status", unnamed.status, 400);

    let send_withheld = json!({"sids": [late.sid], "send_withheld": true}).to_string();
    let sent = endpoint.replay(Some(&send_withheld)).await;
    failures.eq(
        "e) send_withheld",
        totals(&sent),
        (200, json!(false), [0, 1, 0, 0, 0, 0]),
    );
    failures.eq(
        "e) send_withheld's entries",
        outcomes(&sent),
        vec![triple(&late.sid, "replied", "replayed")],
    );
    let requests = api.requests();
    failures.eq("e) the Messages API's requests after send_withheld", requests.len(), 1);
    let entry = endpoint.entry(&late.sid).await;
    if let Some(request) = requests.first() {
        check_send(
            failures,
            "e) send_withheld",
            request,
            201,
            &[("To", &late.from), ("From", &late.to), ("Body", &body)],
        );
        failures.eq(
            "e) reply 1 once sent",
            (reply(&entry, 0).3, entry["replies"][0]["message_sid"].clone()),
            ("sent".to_owned(), json!(request.sid)),
        );
    }
    let again = endpoint.replay(Some(&send_withheld)).await;
    failures.eq(
        "e) send_withheld again",
        totals(&again),
        (200, json!(false), [0, 0, 0, 0, 1, 0]),
    );
    failures.eq(
        "e) send_withheld again's entries",
        outcomes(&again),
        vec![triple(&late.sid, "skipped", "replayed")],
    );
    failures.eq("e) the Messages API's requests in the end", api.requests().len(), 1);
    failures.eq(
        "e) replayed deliveries in the end",
        app.hits_for(&late.sid).iter().filter(|hit| hit.is_replay()).count(),
        1,
    );
}

/// Where twilio-node is (`TWILIO_REFERENCE_NODE_MODULES`); panics, saying how to get it, when it
/// is not there.
fn reference_node_modules() -> PathBuf {
    let node_modules = std::env::var("TWILIO_REFERENCE_NODE_MODULES").unwrap_or_default();
    assert!(
        !node_modules.is_empty() && Path::new(&node_modules).join("twilio").is_dir(),
        "twilio-node is missing: TWILIO_REFERENCE_NODE_MODULES ({node_modules:?}) must name a node_modules \
         holding `twilio` — the replay table checks every replayed signature with its validateRequest. \
         scripts/test.sh installs it into its tool cache and sets the variable (by hand: \
         `source scripts/lib/common.sh; source scripts/lib/reference-twilio.sh; install_reference_twilio`)"
    );
    PathBuf::from(node_modules)
}

/// Validates each replayed request's `X-Twilio-Signature` with twilio-node's `validateRequest`
/// (scripts/differential/validate-replays.mjs); how many it checked.
fn check_with_twilio_node(node_modules: &Path, hits: &[AppHit], failures: &mut Failures) -> usize {
    if hits.is_empty() {
        failures.0.push("no replayed request to validate".to_owned());
        return 0;
    }
    let input: String = hits
        .iter()
        .map(|hit| {
            json!({
                "token": TOKEN,
                "url": hit.url,
                "params": hit.params,
                "signature": hit.signature.as_deref().unwrap_or(""),
            })
            .to_string()
                + "\n"
        })
        .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/differential/validate-replays.mjs");
    let mut child = Command::new("node")
        .arg(&script)
        .env("TWILIO_REFERENCE_NODE_MODULES", node_modules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|error| panic!("starting node {}: {error}", script.display()));
    let mut stdin = child.stdin.take().expect("node's stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("node's output");
    writer.join().expect("the writer thread").expect("writing to node");
    assert!(
        output.status.success(),
        "node {} failed: {}",
        script.display(),
        output.status
    );
    let results: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or(Value::Null))
        .collect();
    failures.eq("twilio-node's answers", results.len(), hits.len());
    for (hit, result) in hits.iter().zip(&results) {
        failures.check(result["valid"] == true, || {
            format!(
                "twilio-node rejects the signature of a replayed request to {} ({:?}; it expects {}) with {:?}",
                hit.url, hit.signature, result["expected"], hit.params
            )
        });
    }
    results.len()
}
