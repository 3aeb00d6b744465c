//! `twiml-fallback inbox list | show | dismiss | export | replay`: what a fallback endpoint kept
//! during an outage, read (and replayed) through its admin API (`/_twiml-fallback/inbox`,
//! `/_twiml-fallback/replay`, the same on `serve` and the Worker) with `TWIML_FALLBACK_ADMIN_TOKEN`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use twiml_fallback::Channel;
use twiml_fallback::inbox::store::Page;
use twiml_fallback::inbox::{Entry, Status};
use twiml_fallback::replay::{PassRequest, PassSummary};
use twiml_fallback::webhook::encode_form;

use crate::admin_client::{Api, TIMEOUT, json_error, parse, printable, to_json};
use crate::cli::{ExportFormat, Format, InboxArgs, InboxCommand, InboxFilter, InboxReplayArgs};
use crate::error::CliError;

/// How long a replay pass may take to answer (it delivers every due entry and sends the replies).
const REPLAY_TIMEOUT: Duration = Duration::from_secs(600);

/// The page size `export` walks the inbox with.
const EXPORT_PAGE: u32 = 200;

/// The hint for a 503: no inbox there.
const NO_INBOX: &str = "serve keeps an inbox unless --no-inbox; the Worker needs its INBOX Durable Object binding";

/// What an admin request came back with.
enum Answer {
    Found(Vec<u8>),
    NotFound(String),
}

pub(crate) async fn run(args: InboxArgs) -> Result<ExitCode, CliError> {
    let api = Api::new(&args.admin)?;
    match args.command {
        InboxCommand::List(list) => {
            let query = filter_query(&list.filter, list.limit, list.cursor.as_deref())?;
            let page = api.page(&query).await?;
            match list.format {
                Format::Json => println!("{}", to_json(&page)?),
                Format::Text => print!("{}", table(&page)),
            }
            Ok(ExitCode::SUCCESS)
        }
        InboxCommand::Show(show) => match api.get(&entry_path(&show.sid)?).await? {
            Answer::Found(body) => {
                let entry = parse::<Entry>(&body)?;
                match show.format {
                    Format::Json => println!("{}", to_json(&entry)?),
                    Format::Text => print!("{}", details(&entry)),
                }
                Ok(ExitCode::SUCCESS)
            }
            Answer::NotFound(message) => {
                eprintln!("{message}");
                Ok(ExitCode::from(1))
            }
        },
        InboxCommand::Dismiss(dismiss) => {
            let mut missing = 0;
            for sid in &dismiss.sids {
                match api.post(&format!("{}/dismiss", entry_path(sid)?)).await? {
                    Answer::Found(body) => {
                        let entry = parse::<Entry>(&body)?;
                        println!(
                            "dismissed {} ({} from {})",
                            printable(&entry.sid),
                            entry.channel,
                            printable(entry.from.as_deref().unwrap_or("?"))
                        );
                    }
                    Answer::NotFound(message) => {
                        eprintln!("{message}");
                        missing += 1;
                    }
                }
            }
            Ok(if missing == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        InboxCommand::Export(export) => {
            let mut stdout = std::io::stdout().lock();
            let mut write = |text: &str| {
                stdout
                    .write_all(text.as_bytes())
                    .map_err(|error| CliError::new(format!("cannot write the export: {error}")))
            };
            if export.format == ExportFormat::Csv {
                write(&csv_row(CSV_HEADER.iter().map(|field| (*field).to_owned())))?;
            }
            let mut cursor: Option<String> = None;
            let mut exported = 0usize;
            loop {
                let query = filter_query(&export.filter, EXPORT_PAGE, cursor.as_deref())?;
                let page = api.page(&query).await?;
                for entry in &page.entries {
                    match export.format {
                        ExportFormat::Jsonl => {
                            write(&format!("{}\n", serde_json::to_string(entry).map_err(json_error)?))?
                        }
                        ExportFormat::Csv => write(&csv_row(csv_fields(entry)))?,
                    }
                }
                exported += page.entries.len();
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            eprintln!("exported {exported} entries");
            Ok(ExitCode::SUCCESS)
        }
        InboxCommand::Replay(replay) => run_replay(&api, &replay).await,
    }
}

/// Runs a replay pass on the endpoint and prints a line per entry, then the totals; exit 1 when
/// an entry failed or needs attention.
async fn run_replay(api: &Api, replay: &InboxReplayArgs) -> Result<ExitCode, CliError> {
    for sid in &replay.sids {
        entry_path(sid)?;
    }
    let request = PassRequest {
        sids: replay.sids.clone(),
        dry_run: replay.dry_run,
        send_withheld: replay.send_withheld,
    };
    let body = serde_json::to_string(&request).map_err(json_error)?;
    let path = "/_twiml-fallback/replay";
    let request = api
        .client
        .post(api.url(path))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body);
    let summary = match api.send_within(request, path, REPLAY_TIMEOUT).await? {
        Answer::Found(body) => parse::<PassSummary>(&body)?,
        Answer::NotFound(message) => return Err(CliError::new(message)),
    };
    if replay.format == Format::Json {
        println!("{}", to_json(&summary)?);
    } else {
        for entry in &summary.entries {
            println!("{}", printable(&entry.progress()));
        }
        println!(
            "{}{} delivered, {} replies sent, {} withheld, {} failed, {} skipped, {} need attention",
            if summary.dry_run { "dry run: " } else { "" },
            summary.delivered,
            summary.replies_sent,
            summary.replies_withheld,
            summary.failed,
            summary.skipped,
            summary.needs_attention
        );
        if summary.entries.is_empty() {
            println!("nothing was due (entries wait [replay] min_interval_seconds after they arrive or fail)");
        }
    }
    if let (Some(until), Some(why)) = (summary.held_until_ms, &summary.held_because) {
        println!(
            "automatic replay is held until {} because the Messages API failed: {}",
            twiml_fallback::edge::rfc3339(until),
            printable(why)
        );
    }
    let troubled = summary.troubled();
    Ok(if troubled { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The inbox's requests, on the shared admin client.
trait InboxApi {
    async fn page(&self, query: &str) -> Result<Page, CliError>;
    async fn get(&self, path: &str) -> Result<Answer, CliError>;
    async fn post(&self, path: &str) -> Result<Answer, CliError>;
    async fn send_within(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
        timeout: Duration,
    ) -> Result<Answer, CliError>;
}

impl InboxApi for Api {
    async fn page(&self, query: &str) -> Result<Page, CliError> {
        match self.get(&format!("/_twiml-fallback/inbox{query}")).await? {
            Answer::Found(body) => parse::<Page>(&body),
            Answer::NotFound(message) => Err(CliError::new(message)),
        }
    }

    async fn get(&self, path: &str) -> Result<Answer, CliError> {
        self.send_within(self.client.get(self.url(path)), path, TIMEOUT).await
    }

    async fn post(&self, path: &str) -> Result<Answer, CliError> {
        self.send_within(self.client.post(self.url(path)), path, TIMEOUT).await
    }

    async fn send_within(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
        timeout: Duration,
    ) -> Result<Answer, CliError> {
        let reply = self.exchange(request, path, timeout).await?;
        let url = self.url(path);
        match reply.status {
            200 => Ok(Answer::Found(reply.body)),
            404 if is_entry_path(path) && reply.body.starts_with(b"{\"error\":\"no entry") => {
                Ok(Answer::NotFound(reply.message()))
            }
            409 if reply.message().contains("pass is running") => {
                Err(CliError::new(format!("{url}: {}", reply.message()))
                    .hint("another replay pass is running on the endpoint: try again when it ends"))
            }
            409 => Err(CliError::new(format!("{url}: {}", reply.message())).hint(
                "replay delivers only to hosts in [recovery] allow_hosts and signs with TWILIO_AUTH_TOKEN: configure both",
            )),
            _ => Err(self.unexpected(path, &reply, NO_INBOX)),
        }
    }
}

fn is_entry_path(path: &str) -> bool {
    path.starts_with("/_twiml-fallback/inbox/")
}

fn entry_path(sid: &str) -> Result<String, CliError> {
    if sid.is_empty() || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CliError::new(format!("{sid:?} is not a MessageSid or CallSid"))
            .hint("e.g. SM0123456789abcdef0123456789abcdef"));
    }
    Ok(format!("/_twiml-fallback/inbox/{sid}"))
}

/// `?status=…&channel=…&limit=…&cursor=…`, each checked here first so a typo is a clear error.
fn filter_query(filter: &InboxFilter, limit: u32, cursor: Option<&str>) -> Result<String, CliError> {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if let Some(status) = &filter.status {
        let status: Status = status
            .parse()
            .map_err(|error: String| CliError::new(format!("--status: {error}")))?;
        pairs.push(("status", status.as_str().to_owned()));
    }
    if let Some(channel) = &filter.channel {
        let channel: Channel = channel
            .parse()
            .map_err(|_| CliError::new(format!("--channel {channel:?}: messaging or voice")))?;
        pairs.push(("channel", channel.as_str().to_owned()));
    }
    pairs.push(("limit", limit.to_string()));
    if let Some(cursor) = cursor {
        pairs.push(("cursor", cursor.to_owned()));
    }
    Ok(format!("?{}", encode_form(pairs)))
}

/// A text cell: one line, at most `width` characters.
fn cell(text: &str, width: usize) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if line.chars().count() > width {
        let mut clipped: String = line.chars().take(width.saturating_sub(1)).collect();
        clipped.push('…');
        clipped
    } else {
        line
    }
}

/// The page as a table, newest first, and where the next page starts.
fn table(page: &Page) -> String {
    let mut out = String::new();
    if page.entries.is_empty() {
        out.push_str("no entries\n");
        return out;
    }
    let rows: Vec<[String; 7]> = page
        .entries
        .iter()
        .map(|entry| {
            [
                // RFC 3339 to the second: sortable, and unambiguous about its zone.
                format!("{}Z", entry.received_at.chars().take(19).collect::<String>()),
                printable(&entry.sid),
                entry.status.as_str().to_owned(),
                cell(entry.from.as_deref().unwrap_or_default(), 32),
                cell(entry.to.as_deref().unwrap_or_default(), 32),
                entry.error_code.map(|code| code.to_string()).unwrap_or_default(),
                cell(
                    &match (entry.channel, &entry.body) {
                        (Channel::Voice, _) => "(call)".to_owned(),
                        (Channel::Messaging, Some(body)) if entry.media.is_empty() => body.clone(),
                        (Channel::Messaging, Some(body)) => format!("{body} [+{} media]", entry.media.len()),
                        (Channel::Messaging, None) => format!("[{} media]", entry.media.len()),
                    },
                    48,
                ),
            ]
        })
        .collect();
    out.push_str(&crate::table::render(
        &["RECEIVED", "SID", "STATUS", "FROM", "TO", "ERROR", "BODY"],
        &rows,
    ));
    if let Some(next) = &page.next {
        let _ = writeln!(out, "more: --cursor {next}");
    }
    out
}

/// One entry, field by field.
fn details(entry: &Entry) -> String {
    let mut out = String::new();
    let optional = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    let fields: Vec<(&str, String)> = vec![
        ("sid", entry.sid.clone()),
        ("channel", entry.channel.as_str().to_owned()),
        ("status", entry.status.as_str().to_owned()),
        ("received_at", entry.received_at.clone()),
        ("from", optional(&entry.from)),
        ("to", optional(&entry.to)),
        ("body", optional(&entry.body)),
        (
            "media",
            if entry.media.is_empty() {
                "-".to_owned()
            } else {
                entry.media.join(" ")
            },
        ),
        (
            "error_code",
            entry.error_code.map_or("-".to_owned(), |code| code.to_string()),
        ),
        ("error_url", optional(&entry.error_url)),
        ("cause", optional(&entry.cause)),
        ("url", format!("{} {}", entry.method, entry.url)),
        ("attempts", entry.attempts.to_string()),
        ("last_error", optional(&entry.last_error)),
        ("source", entry.source.as_str().to_owned()),
        ("account_sid", optional(&entry.account_sid)),
    ];
    for (name, value) in fields {
        let _ = writeln!(out, "{name:<12} {}", printable(&value));
    }
    out.push_str("params\n");
    for (key, value) in &entry.params {
        let _ = writeln!(out, "  {}={}", printable(key), printable(value));
    }
    if !entry.replies.is_empty() {
        out.push_str("replies\n");
        for reply in &entry.replies {
            let _ = writeln!(
                out,
                "  {} {} -> {}: {}{}{}",
                reply.state.as_str(),
                printable(&reply.from),
                printable(&reply.to),
                printable(&reply.body),
                if reply.media.is_empty() {
                    String::new()
                } else {
                    format!(" [+{} media]", reply.media.len())
                },
                match (&reply.message_sid, &reply.error) {
                    (Some(sid), _) => format!(" ({})", printable(sid)),
                    (None, Some(error)) => format!(" ({})", printable(error)),
                    (None, None) => String::new(),
                }
            );
        }
    }
    out
}

const CSV_HEADER: [&str; 18] = [
    "sid",
    "channel",
    "status",
    "received_at",
    "from",
    "to",
    "body",
    "media",
    "error_code",
    "error_url",
    "cause",
    "url",
    "method",
    "attempts",
    "last_error",
    "source",
    "account_sid",
    "params",
];

fn csv_fields(entry: &Entry) -> impl Iterator<Item = String> {
    let optional = |value: &Option<String>| value.clone().unwrap_or_default();
    [
        entry.sid.clone(),
        entry.channel.as_str().to_owned(),
        entry.status.as_str().to_owned(),
        entry.received_at.clone(),
        optional(&entry.from),
        optional(&entry.to),
        optional(&entry.body),
        entry.media.join(" "),
        entry.error_code.map(|code| code.to_string()).unwrap_or_default(),
        optional(&entry.error_url),
        optional(&entry.cause),
        entry.url.clone(),
        entry.method.clone(),
        entry.attempts.to_string(),
        optional(&entry.last_error),
        entry.source.as_str().to_owned(),
        optional(&entry.account_sid),
        serde_json::to_string(&entry.params).unwrap_or_default(),
    ]
    .into_iter()
}

/// One RFC 4180 row: a field with a comma, quote or line break is quoted, its quotes doubled.
fn csv_row(fields: impl Iterator<Item = String>) -> String {
    let mut row = String::new();
    for (index, field) in fields.enumerate() {
        if index > 0 {
            row.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            row.push('"');
            row.push_str(&field.replace('"', "\"\""));
            row.push('"');
        } else {
            row.push_str(&field);
        }
    }
    row.push_str("\r\n");
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_it_and_doubles_quotes() {
        let row = csv_row(
            ["SM1", "a,b", "say \"hi\"", "two\nlines", ""]
                .into_iter()
                .map(str::to_owned),
        );
        assert_eq!(row, "SM1,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
    }

    #[test]
    fn filters_are_checked_before_any_request() {
        let filter = InboxFilter {
            status: Some("sent".to_owned()),
            channel: None,
        };
        let error = filter_query(&filter, 10, None).expect_err("refused").to_string();
        assert!(
            error.contains("--status") && error.contains("needs-attention"),
            "{error}"
        );
        let filter = InboxFilter {
            status: Some("needs-attention".to_owned()),
            channel: Some("voice".to_owned()),
        };
        assert_eq!(
            filter_query(&filter, 10, Some("5.SM1")).expect("valid"),
            "?status=needs-attention&channel=voice&limit=10&cursor=5.SM1"
        );
        assert!(entry_path("SM1/../x").is_err());
    }

    #[test]
    fn text_from_a_webhook_cannot_drive_the_terminal() {
        assert_eq!(printable("hi\u{1b}[2Jthere\nnext"), "hi\\u{1b}[2Jthere\\u{a}next");
        assert_eq!(printable("plain, ünïcode"), "plain, ünïcode");
    }

    #[test]
    fn cells_are_one_line_and_clipped() {
        assert_eq!(cell("a\nb", 10), "a b");
        assert_eq!(cell("abcdefghij", 5), "abcd…");
    }
}
