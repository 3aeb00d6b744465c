//! `twiml-fallback numbers audit` and `numbers set`, through Twilio's REST API.

use std::process::ExitCode;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::cli::{ApiArgs, AuditArgs, Format, SetArgs};
use crate::error::CliError;
use crate::http_client;

/// One `IncomingPhoneNumber`, with the fields the audit reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Number {
    sid: String,
    phone_number: String,
    friendly_name: Option<String>,
    voice_url: Option<String>,
    voice_method: Option<String>,
    voice_fallback_url: Option<String>,
    voice_fallback_method: Option<String>,
    sms_url: Option<String>,
    sms_method: Option<String>,
    sms_fallback_url: Option<String>,
    sms_fallback_method: Option<String>,
    voice_application_sid: Option<String>,
    sms_application_sid: Option<String>,
    trunk_sid: Option<String>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    incoming_phone_numbers: Vec<Number>,
    next_page_uri: Option<String>,
}

/// Twilio's error body.
#[derive(Deserialize)]
struct ApiError {
    code: Option<u64>,
    message: Option<String>,
}

/// How a number's voice or SMS traffic is protected.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Protection {
    /// A primary URL and a fallback URL.
    Protected,
    /// A primary URL and no fallback URL.
    Unprotected,
    /// No primary URL: nothing to protect.
    NoWebhook,
    /// Routed elsewhere (Application, SIP trunk, Messaging Service): the number's own URLs are ignored.
    RoutedBy(&'static str, String),
}

impl Protection {
    fn label(&self) -> String {
        match self {
            Protection::Protected => "protected".to_owned(),
            Protection::Unprotected => "UNPROTECTED".to_owned(),
            Protection::NoWebhook => "no webhook".to_owned(),
            Protection::RoutedBy(what, sid) => format!("via {what} {sid}"),
        }
    }
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|value| !value.is_empty())
}

impl Number {
    fn voice(&self) -> Protection {
        if let Some(trunk) = present(&self.trunk_sid) {
            return Protection::RoutedBy("SIP trunk", trunk.to_owned());
        }
        if let Some(application) = present(&self.voice_application_sid) {
            return Protection::RoutedBy("Application", application.to_owned());
        }
        protection(present(&self.voice_url), present(&self.voice_fallback_url))
    }

    fn sms(&self) -> Protection {
        if let Some(application) = present(&self.sms_application_sid) {
            // A number in a Messaging Service carries the service's MG… SID here.
            let what = if application.starts_with("MG") {
                "Messaging Service"
            } else {
                "Application"
            };
            return Protection::RoutedBy(what, application.to_owned());
        }
        protection(present(&self.sms_url), present(&self.sms_fallback_url))
    }

    fn unprotected(&self) -> bool {
        self.voice() == Protection::Unprotected || self.sms() == Protection::Unprotected
    }
}

fn protection(primary: Option<&str>, fallback: Option<&str>) -> Protection {
    match (primary, fallback) {
        (None, _) => Protection::NoWebhook,
        (Some(_), None) => Protection::Unprotected,
        (Some(_), Some(_)) => Protection::Protected,
    }
}

/// An authenticated connection to the API.
struct Api {
    client: reqwest::Client,
    base: String,
    account_sid: String,
    user: String,
    password: String,
}

impl Api {
    fn new(args: &ApiArgs) -> Result<Self, CliError> {
        let account_sid =
            args.account_sid.clone().filter(|sid| !sid.is_empty()).ok_or_else(|| {
                CliError::new("no account SID").hint("set TWILIO_ACCOUNT_SID or pass --account-sid AC…")
            })?;
        check_account_sid(&account_sid)?;
        let (user, password) = match (&args.api_key, &args.api_secret, &args.auth_token) {
            (Some(key), Some(secret), _) if !key.is_empty() => (key.clone(), secret.clone()),
            (Some(_), None, _) => {
                return Err(CliError::new("TWILIO_API_KEY is set but TWILIO_API_SECRET is not")
                    .hint("set both, or use TWILIO_AUTH_TOKEN"));
            }
            (_, _, Some(token)) if !token.is_empty() => (account_sid.clone(), token.clone()),
            _ => {
                return Err(CliError::new("no credentials")
                    .hint("set TWILIO_AUTH_TOKEN, or TWILIO_API_KEY and TWILIO_API_SECRET"));
            }
        };
        let base = args.api_base.trim_end_matches('/').to_owned();
        if !twiml_fallback::url::is_absolute_http_url(&base) {
            return Err(CliError::new(format!("--api-base {base:?} is not an http(s) URL")));
        }
        let client = http_client::client(0, http_client::USER_AGENT).map_err(CliError::new)?;
        Ok(Self {
            client,
            base,
            account_sid,
            user,
            password,
        })
    }

    fn numbers_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/IncomingPhoneNumbers.json?PageSize=1000",
            self.base, self.account_sid
        )
    }

    /// Every number of the account, following `next_page_uri`.
    async fn list(&self) -> Result<Vec<Number>, CliError> {
        let mut numbers = Vec::new();
        let mut next = Some(self.numbers_url());
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 10_000 {
                return Err(CliError::new("the API kept returning pages; stopped after 10,000"));
            }
            let response = self
                .client
                .get(&url)
                .basic_auth(&self.user, Some(&self.password))
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map_err(|error| {
                    CliError::new(format!(
                        "cannot reach the Twilio API at {}: {}",
                        self.base,
                        http_client::describe(&error)
                    ))
                    .hint("check your network, or --api-base")
                })?;
            let status = response.status();
            let text = read_api_body(response).await?;
            if !status.is_success() {
                let (code, message) = api_error(&text);
                let hint = if status.as_u16() == 401 {
                    "check TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN (or TWILIO_API_KEY/TWILIO_API_SECRET)"
                } else {
                    "see the message above; https://www.twilio.com/docs/api/errors"
                };
                return Err(CliError::new(format!(
                    "listing numbers failed: HTTP {}{}: {message}",
                    status.as_u16(),
                    code.map(|code| format!(" (Twilio error {code})")).unwrap_or_default()
                ))
                .hint(hint));
            }
            let page: Page = serde_json::from_str(&text).map_err(|error| {
                CliError::new(format!(
                    "the API's answer is not the IncomingPhoneNumbers list: {error}"
                ))
            })?;
            numbers.extend(page.incoming_phone_numbers);
            next = match page.next_page_uri.filter(|uri| !uri.is_empty()) {
                None => None,
                // Twilio gives a path; an absolute URL is followed only on the API's own origin:
                // the credentials go with every page request.
                Some(uri) if uri.starts_with('/') => Some(format!("{}{uri}", self.base)),
                Some(uri) if uri.starts_with(&format!("{}/", self.base)) => Some(uri),
                Some(uri) => {
                    return Err(CliError::new(format!(
                        "the API's next_page_uri {uri:?} leaves {}: not following it with your credentials",
                        self.base
                    )));
                }
            };
        }
        Ok(numbers)
    }

    /// Updates one number; `Err` carries Twilio's code and message.
    async fn update(&self, sid: &str, fields: &[(&str, String)]) -> Result<(), (Option<u64>, String)> {
        check_number_sid(sid).map_err(|message| (None, message))?;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/IncomingPhoneNumbers/{sid}.json",
            self.base, self.account_sid
        );
        let body = twiml_fallback::webhook::Params::from_pairs(fields.iter().map(|(k, v)| (*k, v.as_str()))).to_form();
        let response = self
            .client
            .post(&url)
            .basic_auth(&self.user, Some(&self.password))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .timeout(Duration::from_secs(30))
            .body(body)
            .send()
            .await
            .map_err(|error| (None, http_client::describe(&error)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = read_api_body(response)
            .await
            .map_err(|error| (None, error.to_string()))?;
        let (code, message) = api_error(&text);
        Err((code, format!("HTTP {}: {message}", status.as_u16())))
    }
}

/// The most an API answer may hold: a page of 1,000 numbers is ~2 MB.
const MAX_API_BODY_BYTES: usize = 16 * 1024 * 1024;

/// An API answer's body as text, refused past [`MAX_API_BODY_BYTES`].
async fn read_api_body(response: reqwest::Response) -> Result<String, CliError> {
    let bytes = http_client::read_limited(response, MAX_API_BODY_BYTES)
        .await
        .map_err(|error| {
            CliError::new(format!(
                "reading the Twilio API's answer failed: {}",
                http_client::describe(&error)
            ))
        })?;
    if bytes.len() > MAX_API_BODY_BYTES {
        return Err(CliError::new(format!(
            "the Twilio API's answer is over {} MB: not reading it",
            MAX_API_BODY_BYTES / (1024 * 1024)
        )));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn api_error(text: &str) -> (Option<u64>, String) {
    match serde_json::from_str::<ApiError>(text) {
        Ok(error) => (error.code, error.message.unwrap_or_else(|| "no message".to_owned())),
        Err(_) => (None, text.chars().take(200).collect::<String>().trim().to_owned()),
    }
}

fn dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

fn channel_json(
    primary: &Option<String>,
    method: &Option<String>,
    fallback: &Option<String>,
    fallback_method: &Option<String>,
    protection: &Protection,
) -> Value {
    json!({
        "url": present(primary),
        "method": present(method),
        "fallback_url": present(fallback),
        "fallback_method": present(fallback_method),
        "status": match protection {
            Protection::Protected => "protected",
            Protection::Unprotected => "unprotected",
            Protection::NoWebhook => "no-webhook",
            Protection::RoutedBy(..) => "routed-elsewhere",
        },
        "routed_by": match protection { Protection::RoutedBy(what, sid) => json!({ "kind": what, "sid": sid }), _ => Value::Null },
    })
}

pub(crate) async fn audit(args: AuditArgs) -> Result<ExitCode, CliError> {
    let api = Api::new(&args.api)?;
    let numbers = api.list().await?;
    let unprotected = numbers.iter().filter(|number| number.unprotected()).count();
    match args.format {
        Format::Json => {
            let document = json!({
                "numbers": numbers.iter().map(|n| json!({
                    "sid": n.sid,
                    "phone_number": n.phone_number,
                    "friendly_name": n.friendly_name,
                    "voice": channel_json(&n.voice_url, &n.voice_method, &n.voice_fallback_url, &n.voice_fallback_method, &n.voice()),
                    "sms": channel_json(&n.sms_url, &n.sms_method, &n.sms_fallback_url, &n.sms_fallback_method, &n.sms()),
                    "unprotected": n.unprotected(),
                })).collect::<Vec<_>>(),
                "count": numbers.len(),
                "unprotected": unprotected,
            });
            println!("{}", serde_json::to_string_pretty(&document).unwrap_or_default());
        }
        Format::Text => {
            let header = [
                "NUMBER",
                "NAME",
                "VOICE URL",
                "VOICE FALLBACK",
                "VOICE",
                "SMS URL",
                "SMS FALLBACK",
                "SMS",
            ];
            let rows: Vec<[String; 8]> = numbers
                .iter()
                .map(|n| {
                    [
                        n.phone_number.clone(),
                        dash(present(&n.friendly_name)),
                        dash(present(&n.voice_url)),
                        dash(present(&n.voice_fallback_url)),
                        n.voice().label(),
                        dash(present(&n.sms_url)),
                        dash(present(&n.sms_fallback_url)),
                        n.sms().label(),
                    ]
                })
                .collect();
            let mut widths = header.map(str::len);
            for row in &rows {
                for (width, cell) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell.chars().count());
                }
            }
            let line = |cells: &[String]| {
                cells
                    .iter()
                    .zip(widths)
                    .map(|(cell, width)| format!("{cell:<width$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_owned()
            };
            println!("{}", line(&header.map(str::to_owned)));
            for row in &rows {
                println!("{}", line(row));
            }
            let routed = numbers
                .iter()
                .filter(|n| {
                    matches!(n.voice(), Protection::RoutedBy(..)) || matches!(n.sms(), Protection::RoutedBy(..))
                })
                .count();
            println!(
                "\n{} number(s): {unprotected} unprotected, {routed} routed through an Application, SIP trunk or Messaging Service (their own fallback URLs are ignored there)",
                numbers.len()
            );
            if unprotected > 0 {
                println!(
                    "fix: twiml-fallback numbers set --all-unprotected --voice-fallback-url URL --sms-fallback-url URL"
                );
            }
        }
    }
    Ok(if unprotected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(crate) async fn set(args: SetArgs) -> Result<ExitCode, CliError> {
    check_set_args(&args)?;
    let api = Api::new(&args.api)?;
    let numbers = api.list().await?;
    // The numbers to update, and the ones asked for that the account doesn't have.
    let mut targets: Vec<&Number> = Vec::new();
    let mut failures = 0;
    let mut results = Vec::new();
    if args.all_unprotected {
        targets.extend(numbers.iter().filter(|number| number.unprotected()));
    } else {
        for wanted in &args.number {
            match numbers
                .iter()
                .find(|number| number.phone_number == *wanted || number.sid == *wanted)
            {
                Some(number) => targets.push(number),
                None => {
                    failures += 1;
                    report(
                        &args,
                        &mut results,
                        wanted,
                        "failed",
                        &[],
                        &format!("not a number of account {}", api.account_sid),
                    );
                }
            }
        }
    }
    if targets.is_empty() && failures == 0 {
        report(&args, &mut results, "-", "unchanged", &[], "no number needs a change");
    }
    for number in targets {
        let mut fields: Vec<(&str, String)> = Vec::new();
        let wants_voice = !args.all_unprotected || number.voice() == Protection::Unprotected;
        let wants_sms = !args.all_unprotected || number.sms() == Protection::Unprotected;
        if let (Some(url), true) = (&args.voice_fallback_url, wants_voice) {
            fields.push(("VoiceFallbackUrl", url.clone()));
            if let Some(method) = args.voice_fallback_method {
                fields.push(("VoiceFallbackMethod", method.as_str().to_owned()));
            }
        }
        if let (Some(url), true) = (&args.sms_fallback_url, wants_sms) {
            fields.push(("SmsFallbackUrl", url.clone()));
            if let Some(method) = args.sms_fallback_method {
                fields.push(("SmsFallbackMethod", method.as_str().to_owned()));
            }
        }
        if fields.is_empty() {
            report(
                &args,
                &mut results,
                &number.phone_number,
                "unchanged",
                &[],
                "nothing to set for the channels given",
            );
            continue;
        }
        let mut notes = Vec::new();
        for (protection, channel) in [(number.voice(), "voice"), (number.sms(), "SMS")] {
            if let Protection::RoutedBy(what, sid) = protection {
                notes.push(format!(
                    "{channel} goes through {what} {sid}, which ignores the number's fallback URL"
                ));
            }
        }
        let note = notes.join("; ");
        if args.dry_run {
            report(&args, &mut results, &number.phone_number, "would-set", &fields, &note);
            continue;
        }
        match api.update(&number.sid, &fields).await {
            Ok(()) => report(&args, &mut results, &number.phone_number, "updated", &fields, &note),
            Err((code, message)) => {
                failures += 1;
                let hint = match code {
                    Some(21405 | 21406) => {
                        " (a fallback URL needs a primary URL: set the number's VoiceUrl/SmsUrl first)"
                    }
                    Some(20003) => " (check the credentials)",
                    Some(20404) => " (the number no longer exists)",
                    _ => "",
                };
                let text = format!(
                    "{}{message}{hint}",
                    code.map(|code| format!("Twilio error {code}: ")).unwrap_or_default()
                );
                report(&args, &mut results, &number.phone_number, "failed", &fields, &text);
            }
        }
    }
    if args.format == Format::Json {
        let document = json!({ "dry_run": args.dry_run, "results": results, "failed": failures });
        println!("{}", serde_json::to_string_pretty(&document).unwrap_or_default());
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What `numbers set` needs before it calls the API: which numbers (`--number` or
/// `--all-unprotected`), at least one fallback URL, each URL absolute, each number E.164 or a PN
/// SID. Clap checks the rest (a method without its URL, `--number` with `--all-unprotected`).
fn check_set_args(args: &SetArgs) -> Result<(), CliError> {
    let no_numbers = args.number.is_empty() && !args.all_unprotected;
    let no_urls = args.voice_fallback_url.is_none() && args.sms_fallback_url.is_none();
    let example = "e.g. twiml-fallback numbers set --all-unprotected --voice-fallback-url https://fallback.example.com/voice --sms-fallback-url https://fallback.example.com/sms";
    let missing = match (no_numbers, no_urls) {
        (true, true) => Some(
            "numbers set needs which numbers to update (--number NUMBER, repeatable, or --all-unprotected) and at least one fallback URL (--voice-fallback-url URL, --sms-fallback-url URL, or both)",
        ),
        (true, false) => {
            Some("numbers set needs which numbers to update: --number NUMBER (repeatable) or --all-unprotected")
        }
        (false, true) => Some(
            "numbers set needs at least one fallback URL: --voice-fallback-url URL, --sms-fallback-url URL, or both",
        ),
        (false, false) => None,
    };
    if let Some(message) = missing {
        return Err(CliError::new(message).hint(example));
    }
    for (option, url) in [
        ("--voice-fallback-url", &args.voice_fallback_url),
        ("--sms-fallback-url", &args.sms_fallback_url),
    ] {
        if let Some(url) = url
            && !twiml_fallback::url::is_absolute_http_url(url)
        {
            return Err(
                CliError::new(format!("{option} {url:?} is not an absolute http(s) URL"))
                    .hint(format!("e.g. {option} https://fallback.example.com/voice")),
            );
        }
    }
    for number in &args.number {
        if !twiml_fallback::webhook::is_e164(number) && !twiml_fallback::webhook::is_sid(number, "PN") {
            return Err(CliError::new(format!(
                "--number {number:?} is neither an E.164 phone number (+ and 8 to 15 digits) nor a phone number SID (PN + 32 hex digits)"
            ))
            .hint("write numbers as Twilio does, with + and the country code and no spaces: --number +14155550199"));
        }
    }
    Ok(())
}

/// An account SID is `AC` + 32 hex digits: anything else would only get a 404 or 401 from the API.
fn check_account_sid(sid: &str) -> Result<(), CliError> {
    if twiml_fallback::webhook::is_sid(sid, "AC") {
        return Ok(());
    }
    let shown: String = sid.chars().take(40).collect();
    let hint = if sid.starts_with("SK") {
        "that is an API key SID: pass it as TWILIO_API_KEY (with TWILIO_API_SECRET), and the account's AC… SID as TWILIO_ACCOUNT_SID"
    } else {
        "the account SID is AC followed by 32 hex digits (Console → Account info); check TWILIO_ACCOUNT_SID or --account-sid"
    };
    Err(CliError::new(format!("{shown:?} is not an account SID (AC + 32 hex digits)")).hint(hint))
}

/// One line (text) or one object (JSON) per number.
fn report(
    args: &SetArgs,
    results: &mut Vec<Value>,
    number: &str,
    outcome: &str,
    fields: &[(&str, String)],
    note: &str,
) {
    match args.format {
        Format::Json => results.push(json!({
            "number": number,
            "outcome": outcome,
            "fields": fields.iter().map(|(k, v)| (k.to_string(), Value::from(v.as_str()))).collect::<serde_json::Map<_, _>>(),
            "note": (!note.is_empty()).then_some(note),
        })),
        Format::Text => {
            let changes = fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
            let mut line = format!("{outcome:<9} {number}");
            if !changes.is_empty() {
                line.push_str(&format!(": {changes}"));
            }
            if !note.is_empty() {
                line.push_str(&format!(" — {note}"));
            }
            if outcome == "failed" {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
    }
}

/// A phone number SID fit for a URL path. The SID goes into the path of a credentialed POST: a
/// `/`, `?`, `%` or `..` in it (from a strange API answer) could aim the update at another
/// resource. Twilio SIDs are letters and digits.
fn check_number_sid(sid: &str) -> Result<(), String> {
    if sid.starts_with("PN") && sid.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(format!(
            "{sid:?} is not a phone number SID (PN, letters and digits); not updating it"
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_phone_number_sids_go_into_the_update_path() {
        for sid in ["PN0123456789abcdef0123456789abcdef", "PN1"] {
            assert!(super::check_number_sid(sid).is_ok(), "{sid}");
        }
        for sid in ["PN1/../../Calls", "PN1?x=1", "PN%2F1", "AC123", "", "PN 1"] {
            assert!(super::check_number_sid(sid).is_err(), "{sid}");
        }
    }

    use super::*;

    fn number(json: Value) -> Number {
        serde_json::from_value(json).expect("number JSON")
    }

    #[test]
    fn protection_follows_urls_and_routing() {
        let plain = number(
            json!({"sid": "PN1", "phone_number": "+1", "voice_url": "https://a/v", "sms_url": "https://a/s", "sms_fallback_url": "https://f/s"}),
        );
        assert_eq!(plain.voice(), Protection::Unprotected);
        assert_eq!(plain.sms(), Protection::Protected);
        assert!(plain.unprotected());
        let routed = number(
            json!({"sid": "PN2", "phone_number": "+2", "voice_url": "https://a/v", "trunk_sid": "TK1", "sms_application_sid": "MG1", "sms_url": "https://a/s"}),
        );
        assert_eq!(routed.voice(), Protection::RoutedBy("SIP trunk", "TK1".into()));
        assert_eq!(routed.sms(), Protection::RoutedBy("Messaging Service", "MG1".into()));
        assert!(!routed.unprotected());
        let empty = number(json!({"sid": "PN3", "phone_number": "+3", "voice_url": "", "sms_url": null}));
        assert_eq!(
            (empty.voice(), empty.sms()),
            (Protection::NoWebhook, Protection::NoWebhook)
        );
        let application = number(
            json!({"sid": "PN4", "phone_number": "+4", "voice_application_sid": "AP1", "sms_application_sid": "AP2"}),
        );
        assert_eq!(application.voice(), Protection::RoutedBy("Application", "AP1".into()));
        assert_eq!(application.sms(), Protection::RoutedBy("Application", "AP2".into()));
    }

    #[test]
    fn api_errors_are_read_from_twilios_json() {
        assert_eq!(
            api_error(r#"{"code": 21405, "message": "fallback needs a primary", "status": 400}"#),
            (Some(21405), "fallback needs a primary".into())
        );
        assert_eq!(
            api_error("<html>bad gateway</html>"),
            (None, "<html>bad gateway</html>".into())
        );
    }
}
