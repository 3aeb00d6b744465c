//! The admin API's client, shared by `inbox`, `incidents` and `alerts`: the endpoint and its
//! token (`--endpoint`, `TWIML_FALLBACK_ADMIN_TOKEN`), one request under a deadline, and the
//! errors every command reads the same way — an endpoint that cannot be reached, a refused token
//! (401), an endpoint without the admin API (404) — each with the hint that fixes it. What a
//! command does with any other answer is its own.

use std::time::Duration;

use crate::cli::AdminArgs;
use crate::error::CliError;
use crate::http_client;

/// How long one admin request may take, unless a command says otherwise.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

/// The largest admin answer read (a page of 1000 entries of up to 64 KB each would be more; the
/// CLI asks for pages of at most 200 when exporting).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// The admin API of one endpoint.
pub(crate) struct Api {
    pub(crate) client: reqwest::Client,
    pub(crate) base: String,
    token: String,
}

/// An answer the common errors did not take: its status and body.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// The admin API's `{"error": "…"}`, or the body as text.
    pub(crate) fn message(&self) -> String {
        error_message(&self.body)
    }
}

impl Api {
    pub(crate) fn new(args: &AdminArgs) -> Result<Self, CliError> {
        let base = args.endpoint.trim_end_matches('/').to_owned();
        if !twiml_fallback::url::is_absolute_http_url(&base) {
            return Err(
                CliError::new(format!("--endpoint {:?} is not an absolute http(s) URL", args.endpoint))
                    .hint("e.g. --endpoint http://127.0.0.1:8787 or https://twiml-fallback.example.workers.dev"),
            );
        }
        let token = args
            .admin_token
            .clone()
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                CliError::new("no admin token").hint(
                    "set TWIML_FALLBACK_ADMIN_TOKEN (or --admin-token) to the token the endpoint was started with",
                )
            })?;
        let client = http_client::client(0, http_client::USER_AGENT).map_err(CliError::new)?;
        Ok(Self { client, base, token })
    }

    /// The full URL of an admin path.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `request` (for `path`) with the token and reads its answer within `timeout`. An
    /// endpoint that cannot be reached or does not answer in time, and a refused token, are
    /// errors; any other answer is the caller's.
    pub(crate) async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
        timeout: Duration,
    ) -> Result<Reply, CliError> {
        let request = request.bearer_auth(&self.token);
        let answer = match http_client::fetch_limited(request, MAX_ANSWER_BYTES, timeout).await {
            Some(Ok(answer)) => answer,
            Some(Err(error)) => {
                return Err(CliError::new(format!("cannot reach {}: {}", self.base, http_client::describe(&error)))
                    .hint("is the endpoint running there? serve listens on http://127.0.0.1:8787 by default; use --endpoint for another"));
            }
            None => {
                return Err(CliError::new(format!(
                    "{}: no answer within {} s",
                    self.url(path),
                    timeout.as_secs()
                )));
            }
        };
        if answer.status.as_u16() == 401 {
            return Err(
                CliError::new(format!("{}: the admin token was refused (401)", self.base))
                    .hint("use the TWIML_FALLBACK_ADMIN_TOKEN the endpoint was started with"),
            );
        }
        Ok(Reply {
            status: answer.status.as_u16(),
            body: answer.body,
        })
    }

    /// The error for an answer the caller did not expect: a 404 (no admin API, or a path this
    /// endpoint does not know), a 503 (with `unavailable`, the hint for it), or any other.
    pub(crate) fn unexpected(&self, path: &str, reply: &Reply, unavailable: &str) -> CliError {
        let url = self.url(path);
        match reply.status {
            404 if reply.message() == "no such admin path" => {
                CliError::new(format!("{url}: 404, the endpoint does not know this admin path"))
                    .hint("is it a twiml-fallback endpoint of this version? (older ones have no such path)")
            }
            404 => CliError::new(format!("{url}: 404, the endpoint has no admin API"))
                .hint("start it with TWIML_FALLBACK_ADMIN_TOKEN set (serve: the environment; the Worker: wrangler secret put TWIML_FALLBACK_ADMIN_TOKEN)"),
            503 => CliError::new(format!("{url}: {}", reply.message())).hint(unavailable.to_owned()),
            status => CliError::new(format!("{url}: {status}: {}", reply.message())),
        }
    }
}

/// The admin API's `{"error": "…"}`, or the body as text.
pub(crate) fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.get("error").and_then(|error| error.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect())
}

/// An admin answer read as `T`.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, CliError> {
    serde_json::from_slice(body).map_err(|error| {
        CliError::new(format!(
            "the endpoint's answer is not what the admin API sends: {error}"
        ))
        .hint("is --endpoint a twiml-fallback endpoint of this version?")
    })
}

pub(crate) fn json_error(error: serde_json::Error) -> CliError {
    CliError::new(format!("cannot write JSON: {error}"))
}

/// Pretty JSON for `--format json`.
pub(crate) fn to_json(value: &impl serde::Serialize) -> Result<String, CliError> {
    serde_json::to_string_pretty(value).map_err(json_error)
}

/// Text from a webhook, safe to print on a terminal: control characters (escape sequences, line
/// breaks) are shown as `\u{…}` instead of acting on the terminal.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        if character.is_control() {
            out.push_str(&character.escape_unicode().to_string());
        } else {
            out.push(character);
        }
    }
    out
}
