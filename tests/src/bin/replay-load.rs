//! `replay-load --serve target/release/twiml-fallback [--entries 1000] [--numbers 10] [--rounds 3]`
//!
//! Replay's benchmark: starts a local app (down) and a recording Messages API, starts `serve`
//! against them, keeps `--entries` signed messages across `--numbers` numbers, then brings the
//! app up and measures the time from "primary up" to an empty queue (no entry `pending` or
//! `replaying`, polled every 50 ms) and the replay's own rate (entries per second from the first
//! replayed delivery after the app came up to the last send). Checks that every entry was replayed and every reply sent
//! exactly once. Used by `benches/replay-load.sh`.
//!
//! Exit status 0 when every check held, 1 otherwise, 2 for usage errors.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use twiml_fallback_e2e::replay_load::{by_status, entries, fill, replay_config, sends_per_body, start_replaying_serve};
use twiml_fallback_e2e::{MessagesApi, ReplayApp, TOKEN};

const ADMIN_TOKEN: &str = "replay-load-admin";

struct Options {
    serve: PathBuf,
    entries: usize,
    numbers: usize,
    rounds: usize,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        serve: PathBuf::from("target/release/twiml-fallback"),
        entries: 1000,
        numbers: 10,
        rounds: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag} {value:?} is not a positive number"))
        };
        match flag.as_str() {
            "--serve" => options.serve = PathBuf::from(value),
            "--entries" => options.entries = number()?,
            "--numbers" => options.numbers = number()?,
            "--rounds" => options.rounds = number()?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(options)
}

/// How many entries are `status`, read as one short page.
async fn any_in(base: &str, status: &str) -> Result<bool, String> {
    let url = format!("{base}/_twiml-fallback/inbox?status={status}&limit=1");
    let body = twiml_fallback_e2e::client()
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .map_err(|error| format!("{url}: {error}"))?
        .bytes()
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    let page: serde_json::Value = serde_json::from_slice(&body).map_err(|error| format!("{url}: {error}"))?;
    Ok(page["entries"].as_array().is_some_and(|entries| !entries.is_empty()))
}

async fn round(options: &Options, index: usize) -> Result<(Duration, f64), String> {
    let dir = std::env::temp_dir().join(format!("twiml-fallback-replay-load-{}-{index}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|error| error.to_string())?;
    let app = ReplayApp::start().await;
    app.set_down(true);
    let api = MessagesApi::start().await;
    let config = dir.join("config.toml");
    std::fs::write(&config, replay_config(&app.host)).map_err(|error| error.to_string())?;
    let (mut serve, base) = start_replaying_serve(
        &options.serve,
        &config,
        &dir.join("inbox.sqlite3"),
        &api.base_url,
        ADMIN_TOKEN,
        &dir.join("serve.log"),
    )?;
    let result = async {
        let kept = fill(&base, TOKEN, options.entries, options.numbers, &app.url("/sms")).await;
        app.set_down(false);
        let up = Instant::now();
        while any_in(&base, "pending").await? || any_in(&base, "replaying").await? {
            if up.elapsed() > Duration::from_secs(600) {
                return Err("the queue did not empty within 600 s".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let to_empty = up.elapsed();
        let settled = entries(&base, ADMIN_TOKEN).await?;
        let counts = by_status(&settled);
        let sends = sends_per_body(&api);
        if counts.get("replayed").copied().unwrap_or(0) != kept.len() {
            return Err(format!("not every entry was replayed: {counts:?}"));
        }
        if sends.len() != kept.len() || sends.values().any(|count| *count != 1) {
            return Err(format!(
                "{} replies for {} entries, some more than once",
                api.requests().len(),
                kept.len()
            ));
        }
        // From the first replayed delivery once the app is up: a probe the app failed while down
        // is the outage, not the replay.
        let first_replay = app
            .hits()
            .into_iter()
            .find(|hit| hit.is_replay() && hit.at >= up)
            .map(|hit| hit.at);
        let last_send = api.requests().last().map(|request| request.at);
        let replaying = match (first_replay, last_send) {
            (Some(first), Some(last)) => last.saturating_duration_since(first),
            _ => return Err("no replay was observed".to_owned()),
        };
        Ok((to_empty, kept.len() as f64 / replaying.as_secs_f64().max(1e-9)))
    }
    .await;
    let _ = serve.kill();
    let _ = serve.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("replay-load: {error}");
            return ExitCode::from(2);
        }
    };
    let mut empties = Vec::new();
    let mut rates = Vec::new();
    for index in 0..options.rounds {
        match round(&options, index).await {
            Ok((to_empty, rate)) => {
                println!(
                    "round {}: {} entries over {} numbers: primary up -> empty queue {:.2} s; replay {:.0} entries/s \
                     (first replayed delivery after the app came up to last send); every reply sent once",
                    index + 1,
                    options.entries,
                    options.numbers,
                    to_empty.as_secs_f64(),
                    rate
                );
                empties.push(to_empty.as_secs_f64());
                rates.push(rate);
            }
            Err(error) => {
                eprintln!("replay-load: round {}: {error}", index + 1);
                return ExitCode::from(1);
            }
        }
    }
    empties.sort_by(f64::total_cmp);
    rates.sort_by(f64::total_cmp);
    println!(
        "median of {} rounds: primary up -> empty queue {:.2} s, {:.0} entries/s",
        options.rounds,
        empties[empties.len() / 2],
        rates[rates.len() / 2]
    );
    ExitCode::SUCCESS
}
