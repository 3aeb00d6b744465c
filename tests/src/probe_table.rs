//! Probes end to end (`numbers audit --probe`), run against every backend: a synthetic fallback
//! request exactly as Twilio sends one, plus `TwimlFallbackProbe` (the probe id), signed over
//! every parameter. The endpoint is configured to do everything a real fallback request sets off —
//! an inbox, an alert webhook, recovery allowlisting a primary that is up and answers valid TwiML —
//! and each signed probe (voice POST, messaging POST, messaging GET) must get the fallback TwiML
//! for its channel and number and nothing else: the primary is never requested, the inbox stays
//! empty, no incident exists, the alert webhook hears nothing, and the probe's log line carries
//! its id. A forged probe is 403. Then the same requests without the probe id, with the primary
//! down, are kept, open an incident, reach the primary and are notified: the table fails if the
//! endpoint would do none of it anyway.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::Value;
use twiml_fallback::config::Config;
use twiml_fallback::twiml::{TargetChannel, validate};
use twiml_fallback::webhook::{Channel, PROBE_PARAM};

use crate::fakes::{MessagesApi, ReplayApp, Route};
use crate::inbox_table::{ADMIN_TOKEN, admin};
use crate::replay_table::ReplayLauncher;
use crate::sinks::JsonSink;
use crate::table::{CaseRequest, Signing, log_text, send};
use crate::worker::TempDir;
use crate::{Running, TOKEN};

/// The number whose voice fallback is its own, so a probe is seen to get its number's answer.
const OWN_NUMBER: &str = "+14155550123";

/// How long the sink is given to hear something it must not.
const QUIET: Duration = Duration::from_secs(2);

/// One probe of the table.
struct Probe {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    channel: Channel,
    sid: &'static str,
    to: &'static str,
    id: &'static str,
}

const PROBES: [Probe; 3] = [
    Probe {
        name: "voice POST",
        method: "POST",
        path: "/voice",
        channel: Channel::Voice,
        sid: "CAe2e0000000000000000000000000probe1",
        to: OWN_NUMBER,
        id: "probe-1a2b3c4d5e6f7a01",
    },
    Probe {
        name: "messaging POST",
        method: "POST",
        path: "/sms",
        channel: Channel::Messaging,
        sid: "SMe2e0000000000000000000000000probe2",
        to: "+14155550177",
        id: "probe-1a2b3c4d5e6f7a02",
    },
    Probe {
        name: "messaging GET",
        method: "GET",
        path: "/sms",
        channel: Channel::Messaging,
        sid: "SMe2e0000000000000000000000000probe3",
        to: "+14155550178",
        id: "probe-1a2b3c4d5e6f7a03",
    },
];

impl Probe {
    /// Twilio's parameters for this fallback request, `ErrorUrl` the app's path; with the probe
    /// id last when `probe`.
    fn params(&self, app: &ReplayApp, probe: bool) -> Vec<(String, String)> {
        let error_url = app.url(self.path);
        let mut params: Vec<(&str, &str)> = match self.channel {
            Channel::Voice => vec![
                ("AccountSid", "ACe2e00000000000000000000000000021"),
                ("ApiVersion", "2010-04-01"),
                ("CallSid", self.sid),
                ("CallStatus", "ringing"),
                ("Direction", "inbound"),
                ("From", "+14155550100"),
                ("To", self.to),
            ],
            Channel::Messaging => vec![
                ("AccountSid", "ACe2e00000000000000000000000000021"),
                ("ApiVersion", "2010-04-01"),
                ("Body", "twiml-fallback probe"),
                ("From", "+14155550100"),
                ("MessageSid", self.sid),
                ("NumMedia", "0"),
                ("SmsSid", self.sid),
                ("SmsStatus", "received"),
                ("To", self.to),
            ],
        };
        params.extend([("ErrorCode", "11200"), ("ErrorUrl", error_url.as_str())]);
        if probe {
            params.push((PROBE_PARAM, self.id));
        }
        params
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    }

    fn request(&self, app: &ReplayApp, probe: bool, signing: Signing) -> CaseRequest {
        CaseRequest {
            method: self.method,
            path: self.path,
            params: self.params(app, probe),
            signing,
            raw_body: None,
        }
    }
}

fn config(sink: &JsonSink, app: &ReplayApp) -> String {
    format!(
        r#"
[numbers."{OWN_NUMBER}".voice]
say = "Probe table: this number's own answer."

[alerts]
webhook_url = "{webhook}"

[recovery]
allow_hosts = ["{host}"]
allow_http = true
timeout_ms = 3000

[replay]
min_interval_seconds = 900
"#,
        webhook = sink.url,
        host = app.host,
    )
}

/// The admin listing under `path`'s `key` (`entries`, `incidents`), or why it could not be read.
async fn listed(base: &str, path: &str, key: &str) -> Result<Vec<Value>, String> {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let answer = admin(base, "GET", path, Some(&auth), None).await;
    match (answer.status, answer.json[key].as_array()) {
        (200, Some(items)) => Ok(items.clone()),
        (status, _) => Err(format!("GET {path}: {status} {}", answer.json)),
    }
}

/// The requests the app received for a SID, but replays (the recovery's, and nothing else).
fn recoveries_of(app: &ReplayApp, sid: &str) -> usize {
    app.hits()
        .iter()
        .filter(|hit| !hit.is_replay() && (hit.param("CallSid") == Some(sid) || hit.param("MessageSid") == Some(sid)))
        .count()
}

/// Whether the endpoint's log has the record of the verified probe `id`: a JSON line (the
/// Worker, `serve --log-format json`) or a text one (serve).
fn logged_probe(running: &Running, id: &str) -> bool {
    log_text(running).lines().any(|line| {
        (line.contains(&format!(r#""probe":"{id}""#)) && line.contains(r#""signature":"valid""#))
            || (line.contains(&format!(" probe={id}")) && line.contains(" signature=valid "))
    })
}

/// Polls `done` for up to `within`.
async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the probe table against `launcher`; panics with every failure listed.
pub async fn run_probe_table(launcher: &dyn ReplayLauncher) {
    let sink = JsonSink::start("/alert", StatusCode::OK).await;
    let api = MessagesApi::start().await;
    let app = ReplayApp::start().await;
    // Up, and answering valid TwiML on both paths: a recovery would succeed and be relayed.
    app.route(
        "/voice",
        Route::Twiml("<Response><Say>The app answered.</Say></Response>".to_owned()),
    );
    let config = config(&sink, &app);
    let answers =
        Config::from_toml(&config).unwrap_or_else(|errors| panic!("the probe table's configuration: {errors}"));
    let state = TempDir::new("probe-table");
    let running = launcher
        .launch_for_replay(&config, &[TOKEN], ADMIN_TOKEN, &state.0, &api.base_url)
        .await;
    let base = running.base_url.clone();
    let mut failures: Vec<String> = Vec::new();

    for probe in &PROBES {
        let answer = send(&base, &probe.request(&app, true, Signing::Token(TOKEN))).await;
        let expected = answers.fallback(Some(probe.channel), Some(probe.to)).twiml;
        if answer.status != 200 || !answer.content_type.starts_with("text/xml") || answer.body != expected {
            failures.push(format!(
                "{}: the probe is answered 200 with the fallback for its channel and number, got {} {:?} {:?} (expected {expected:?})",
                probe.name, answer.status, answer.content_type, answer.body
            ));
        }
        let report = validate(answer.body.as_bytes(), TargetChannel::from(probe.channel));
        if !report.is_valid() {
            failures.push(format!(
                "{}: the probe's answer is not valid TwiML: {:?}",
                probe.name,
                report.diagnostics()
            ));
        }
    }
    if !answers
        .fallback(Some(Channel::Voice), Some(OWN_NUMBER))
        .twiml
        .contains("this number's own answer")
    {
        failures.push("the voice probe's number has no answer of its own: the table proves less".to_owned());
    }
    // Another id, so it cannot stand in for a signed probe's log line.
    let mut forged = PROBES[1].request(&app, true, Signing::Forged);
    for (key, value) in &mut forged.params {
        if key == PROBE_PARAM {
            *value = "probe-f0f0f0f0f0f0f0f0".to_owned();
        }
    }
    let forged = send(&base, &forged).await;
    if forged.status != 403 {
        failures.push(format!("a forged probe: {} {:?}", forged.status, forged.body));
    }

    // Give anything a probe might have set off the time to show.
    tokio::time::sleep(QUIET).await;
    let hits = app.hits();
    if !hits.is_empty() {
        failures.push(format!(
            "probes reached the primary {} times: {:?}",
            hits.len(),
            hits.iter().map(|hit| (&hit.method, &hit.url)).collect::<Vec<_>>()
        ));
    }
    match listed(&base, "/_twiml-fallback/inbox", "entries").await {
        Ok(entries) if entries.is_empty() => {}
        Ok(entries) => failures.push(format!("probes were kept in the inbox: {entries:?}")),
        Err(why) => failures.push(format!("the inbox listing: {why}")),
    }
    match listed(&base, "/_twiml-fallback/incidents", "incidents").await {
        Ok(incidents) if incidents.is_empty() => {}
        Ok(incidents) => failures.push(format!("probes opened an incident: {incidents:?}")),
        Err(why) => failures.push(format!("the incident listing: {why}")),
    }
    let heard = sink.received();
    if !heard.is_empty() {
        failures.push(format!(
            "the alert webhook heard of probes: {:?}",
            heard.iter().map(|received| &received.json).collect::<Vec<_>>()
        ));
    }
    for probe in &PROBES {
        let id = probe.id;
        if !eventually(Duration::from_secs(10), || logged_probe(&running, id)).await {
            failures.push(format!("{}: no log line carries probe {id}", probe.name));
        }
    }

    // The control: the same requests without the probe id, the primary down. Each is kept, the
    // primary is requested (the recovery), and one incident opens and is notified.
    app.set_down(true);
    for probe in &PROBES {
        let answer = send(&base, &probe.request(&app, false, Signing::Token(TOKEN))).await;
        let expected = answers.fallback(Some(probe.channel), Some(probe.to)).twiml;
        if answer.status != 200 || answer.body != expected {
            failures.push(format!(
                "control {}: the fallback, the primary being down: {} {:?}",
                probe.name, answer.status, answer.body
            ));
        }
    }
    match listed(&base, "/_twiml-fallback/inbox", "entries").await {
        Ok(entries) => {
            let mut sids: Vec<&str> = entries.iter().filter_map(|entry| entry["sid"].as_str()).collect();
            sids.sort_unstable();
            let mut expected: Vec<&str> = PROBES.iter().map(|probe| probe.sid).collect();
            expected.sort_unstable();
            if sids != expected {
                failures.push(format!(
                    "control: each request is kept once: {sids:?}, expected {expected:?}"
                ));
            }
        }
        Err(why) => failures.push(format!("control: the inbox listing: {why}")),
    }
    for probe in &PROBES {
        if recoveries_of(&app, probe.sid) != 1 {
            failures.push(format!(
                "control {}: the primary got {} recovery requests, expected 1",
                probe.name,
                recoveries_of(&app, probe.sid)
            ));
        }
    }
    let opened = eventually(Duration::from_secs(30), || {
        sink.accepted().iter().any(|json| json["event"] == "incident-opened")
    })
    .await;
    if !opened {
        failures.push(format!(
            "control: the alert webhook was not told of the incident: {:?}",
            sink.received()
                .iter()
                .map(|received| &received.json)
                .collect::<Vec<_>>()
        ));
    }
    // Notices are filed off the answer's path: wait for the third to be counted.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let incidents = listed(&base, "/_twiml-fallback/incidents", "incidents").await;
        let counted = matches!(incidents.as_deref(), Ok([only])
            if only["origin"] == app.base_url.as_str() && only["notices"] == PROBES.len() as u64);
        if counted {
            break;
        }
        if Instant::now() >= deadline {
            failures.push(format!(
                "control: one incident for the primary, counting {} notices: {incidents:?}",
                PROBES.len()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    if !failures.is_empty() {
        panic!(
            "probes against {}: {} failures:\n{}{}",
            launcher.name(),
            failures.len(),
            failures.join("\n"),
            log_text(&running)
        );
    }
}
