//! `twiml-fallback simulate`: act as Twilio against a primary webhook and its fallback URL.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use http::header::CONTENT_TYPE;
use serde_json::{Value, json};
use twiml_fallback::Channel;
use twiml_fallback::error_code::ErrorCode;
use twiml_fallback::layer::{DEFAULT_DEADLINE, FALLBACK_HEADER};
use twiml_fallback::signature::{SIGNATURE_HEADER, compute_signature};
use twiml_fallback::twiml::{
    Accepted, Action, AnswerRules, ContentKind, ContentPolicy, MAX_DOCUMENT_BYTES, Strictness, outline,
};
use twiml_fallback::webhook::Params;

use crate::cli::{Format, MethodArg, SimulateArgs, SimulatedChannel};
use crate::error::CliError;
use crate::http_client;

/// Twilio's User-Agent, so the app sees what it would see from Twilio.
const TWILIO_USER_AGENT: &str = "TwilioProxy/1.1";

/// Twilio's connect limit, inside the total budget.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// What a fallback layer needs beyond its deadline: its answer still has to reach Twilio.
const LAYER_ANSWER_MARGIN: Duration = Duration::from_secs(1);

/// How much of a refusal's body is shown.
const REFUSAL_BODY_CHARS: usize = 300;

/// One request Twilio makes, and how it went.
pub(crate) struct Hop {
    pub(crate) role: &'static str,
    pub(crate) method: &'static str,
    pub(crate) url: String,
    pub(crate) status: Option<u16>,
    pub(crate) content_type: Option<String>,
    pub(crate) bytes: Option<usize>,
    pub(crate) elapsed: Duration,
    /// The TwiML Twilio executes (or the text it sends/speaks), when the hop succeeded.
    pub(crate) served: Option<Served>,
    /// Why Twilio failed this hop, with its error code.
    pub(crate) failure: Option<(ErrorCode, String)>,
    /// No answer came in time (Twilio's budget, or the URL fragment's limit).
    pub(crate) timed_out: bool,
    /// Schema problems Twilio logs as 12200 warnings while executing the rest.
    pub(crate) warnings: Vec<String>,
    /// The URL fragment leaves Twilio less time than a fallback layer's default deadline needs.
    pub(crate) timing_warning: Option<String>,
    /// The cause a fallback layer answered for (its `x-twiml-fallback` header).
    pub(crate) fallback_layer: Option<String>,
    /// The body of a 403, shown as it came (clipped).
    pub(crate) refusal: Option<String>,
    /// What to do about the failure, when the answer says.
    pub(crate) hint: Option<String>,
}

/// What Twilio does with a successful answer.
pub(crate) enum Served {
    Twiml(String),
    /// A `text/plain` answer: sent as the SMS, or read aloud on a call.
    PlainText(String),
    /// An audio answer to a call: played, then the call ends.
    Audio,
    /// A `204 No Content` to a message: no reply.
    NoReply,
}

/// Time limits from the URL fragment (`#ct=`, `#rt=`, `#tt=`, milliseconds) and the options.
struct Limits {
    connect: Duration,
    read: Option<Duration>,
    total: Duration,
    /// The fragment's shortest limit on waiting for the answer (`rt=` or `tt=`), as written.
    fragment_limit: Option<(String, Duration)>,
}

fn limits(url: &str, total: Duration) -> (String, Limits) {
    let (bare, fragment) = (
        twiml_fallback::url::without_fragment(url),
        twiml_fallback::url::fragment(url).unwrap_or(""),
    );
    let mut limits = Limits {
        connect: CONNECT_LIMIT.min(total),
        read: None,
        total,
        fragment_limit: None,
    };
    for (key, value) in Params::from_query(fragment).iter() {
        let Ok(millis) = value.trim().parse::<u64>() else {
            continue;
        };
        let duration = Duration::from_millis(millis);
        match key {
            "ct" => limits.connect = duration.min(CONNECT_LIMIT),
            "rt" => limits.read = Some(duration),
            "tt" => limits.total = duration.min(total),
            _ => {}
        }
        if matches!(key, "rt" | "tt")
            && limits
                .fragment_limit
                .as_ref()
                .is_none_or(|(_, shortest)| duration < *shortest)
        {
            limits.fragment_limit = Some((format!("#{key}={millis}"), duration));
        }
    }
    limits.connect = limits.connect.min(limits.total);
    (bare.to_owned(), limits)
}

fn check_url(url: &str, option: &str) -> Result<(), CliError> {
    if twiml_fallback::url::is_absolute_http_url(url) {
        Ok(())
    } else {
        Err(
            CliError::new(format!("{option} {url:?} is not an absolute http(s) URL"))
                .hint(format!("e.g. {option} https://app.example.com/voice")),
        )
    }
}

/// The parameters Twilio sends for an incoming call or message.
fn webhook_params(args: &SimulateArgs, channel: Channel) -> Params {
    let account = "AC00000000000000000000000000000000";
    match channel {
        Channel::Voice => Params::from_pairs([
            ("AccountSid", account),
            ("ApiVersion", "2010-04-01"),
            ("CallSid", "CA0000000000000000000000000000000a"),
            ("CallStatus", "ringing"),
            ("Called", args.to.as_str()),
            ("Caller", args.from.as_str()),
            ("Direction", "inbound"),
            ("From", args.from.as_str()),
            ("To", args.to.as_str()),
        ]),
        Channel::Messaging => Params::from_pairs([
            ("AccountSid", account),
            ("ApiVersion", "2010-04-01"),
            ("Body", args.body.as_str()),
            ("From", args.from.as_str()),
            ("MessageSid", "SM0000000000000000000000000000000a"),
            ("NumMedia", "0"),
            ("NumSegments", "1"),
            ("SmsMessageSid", "SM0000000000000000000000000000000a"),
            ("SmsSid", "SM0000000000000000000000000000000a"),
            ("SmsStatus", "received"),
            ("To", args.to.as_str()),
        ]),
    }
}

pub(crate) async fn run(args: SimulateArgs) -> Result<ExitCode, CliError> {
    check_url(&args.url, "--url")?;
    if let Some(fallback) = &args.fallback_url {
        check_url(fallback, "--fallback-url")?;
    }
    let channel = match args.channel {
        SimulatedChannel::Voice => Channel::Voice,
        SimulatedChannel::Messaging => Channel::Messaging,
    };
    let token = args.auth_token.as_deref().filter(|token| !token.is_empty());
    let budget = Duration::from_millis(args.timeout_ms.max(1));
    let params = webhook_params(&args, channel);
    let mut hops = vec![request(&args.url, args.method, &params, token, channel, budget, "primary").await?];
    let primary_failure = hops[0].failure.clone();
    if let (Some((code, _)), Some(fallback_url)) = (primary_failure, &args.fallback_url) {
        let mut fallback_params = params.clone();
        fallback_params.push("ErrorCode", code.to_string());
        fallback_params.push("ErrorUrl", hops[0].url.clone());
        hops.push(
            request(
                fallback_url,
                args.fallback_method,
                &fallback_params,
                token,
                channel,
                budget,
                "fallback",
            )
            .await?,
        );
    }
    let last = hops.last().expect("at least the primary");
    let ok = last.failure.is_none() && last.warnings.is_empty();
    let experience = experience(channel, last);
    match args.format {
        Format::Text => print_text(&args, channel, token.is_some(), &hops, &experience),
        Format::Json => {
            let document = json!({
                "channel": channel.as_str(),
                "signed": token.is_some(),
                "hops": hops.iter().map(hop_json).collect::<Vec<_>>(),
                "served_by": last.served.as_ref().map(|_| last.role),
                "twiml": match &last.served { Some(Served::Twiml(twiml)) => Value::from(twiml.as_str()), _ => Value::Null },
                "experience": experience,
                "outcome": if ok { "ok" } else { "failed" },
            });
            println!("{}", serde_json::to_string_pretty(&document).unwrap_or_default());
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The warning for a URL whose fragment gives Twilio less time for the answer than a fallback
/// layer with its default deadline needs: the app never sees the fragment, so the layer would
/// answer after Twilio gave up.
fn timing_warning(limits: &Limits) -> Option<String> {
    let (written, limit) = limits.fragment_limit.as_ref()?;
    let needed = DEFAULT_DEADLINE + LAYER_ANSWER_MARGIN;
    if *limit >= needed {
        return None;
    }
    let suggested = limit.saturating_sub(LAYER_ANSWER_MARGIN).max(*limit / 2);
    Some(format!(
        "{written} gives Twilio {} ms for the answer, less than the {} ms a fallback layer with its default {} s \
         deadline needs; the app never sees the fragment, so behind FallbackLayer Twilio gives up first (11205) \
         and the layer's answer is lost: set the layer's .deadline() below {} ms (e.g. {} ms), or drop the fragment",
        limit.as_millis(),
        needed.as_millis(),
        DEFAULT_DEADLINE.as_secs(),
        limit.as_millis(),
        suggested.as_millis()
    ))
}

/// What a 403 most likely means for a Twilio webhook: the signature was refused.
fn refusal_hint(role: &str, signed: bool) -> String {
    match (role, signed) {
        ("fallback", false) => "the fallback refused the signature: pass --auth-token (or TWILIO_AUTH_TOKEN), the same token as the endpoint".to_owned(),
        ("fallback", true) => "the fallback refused the signature: is --auth-token (or TWILIO_AUTH_TOKEN) the same token as the endpoint's, and does the endpoint check the URL simulate requested? (behind a proxy or tunnel: serve --public-url; its log line names the URL it checked)".to_owned(),
        (_, false) => format!("the {role} refused the request: if it verifies X-Twilio-Signature, pass --auth-token (or TWILIO_AUTH_TOKEN), the app's auth token"),
        (_, true) => format!("the {role} refused the request: if it verifies X-Twilio-Signature, check that --auth-token (or TWILIO_AUTH_TOKEN) is the app's token and that it checks the URL simulate requested"),
    }
}

/// Makes one request the way Twilio does and judges the answer by Twilio's rules.
pub(crate) async fn request(
    url: &str,
    method: MethodArg,
    params: &Params,
    token: Option<&str>,
    channel: Channel,
    budget: Duration,
    role: &'static str,
) -> Result<Hop, CliError> {
    let (bare_url, limits) = limits(url, budget);
    let (target, body) = match method {
        MethodArg::Get => {
            let separator = if twiml_fallback::url::query(&bare_url).is_some() {
                '&'
            } else {
                '?'
            };
            (format!("{bare_url}{separator}{}", params.to_form()), None)
        }
        MethodArg::Post => (bare_url.clone(), Some(params.to_form())),
    };
    let mut hop = Hop {
        role,
        method: method.as_str(),
        url: bare_url.clone(),
        status: None,
        content_type: None,
        bytes: None,
        elapsed: Duration::ZERO,
        served: None,
        failure: None,
        timed_out: false,
        warnings: Vec::new(),
        timing_warning: timing_warning(&limits),
        fallback_layer: None,
        refusal: None,
        hint: None,
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(TWILIO_USER_AGENT)
        .redirect(reqwest::redirect::Policy::limited(10))
        .connect_timeout(limits.connect);
    if let Some(read) = limits.read {
        builder = builder.read_timeout(read);
    }
    let client = builder
        .build()
        .map_err(|error| CliError::new(format!("cannot build the HTTP client: {error}")))?;
    let mut request = match method {
        MethodArg::Get => client.get(&target),
        MethodArg::Post => client
            .post(&target)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded"),
    };
    if let Some(token) = token {
        let signature = match method {
            MethodArg::Get => compute_signature(token, &target, []),
            MethodArg::Post => compute_signature(token, &bare_url, params),
        };
        request = request.header(SIGNATURE_HEADER, signature);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let started = Instant::now();
    let result = http_client::fetch_limited(request, MAX_DOCUMENT_BYTES, limits.total).await;
    hop.elapsed = started.elapsed();
    let answer = match result {
        None => {
            hop.timed_out = true;
            hop.failure = Some((
                ErrorCode::CONNECTION_FAILURE,
                format!("no answer within {} ms", limits.total.as_millis()),
            ));
            return Ok(hop);
        }
        Some(Err(error)) => {
            hop.timed_out = error.is_timeout();
            hop.failure = Some(classify(&error));
            return Ok(hop);
        }
        Some(Ok(answer)) => answer,
    };
    hop.status = Some(answer.status.as_u16());
    hop.bytes = Some(answer.body.len());
    hop.fallback_layer = answer
        .headers
        .get(FALLBACK_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(|cause| cause.chars().take(60).collect());
    if answer.status == http::StatusCode::FORBIDDEN {
        let text = String::from_utf8_lossy(&answer.body);
        let text = text.trim();
        hop.refusal = Some(match text.char_indices().nth(REFUSAL_BODY_CHARS) {
            Some((end, _)) => format!("{}…", &text[..end]),
            None => text.to_owned(),
        });
        hop.hint = Some(refusal_hint(role, token.is_some()));
    }
    judge(
        &mut hop,
        channel,
        answer.status,
        answer.content_type.as_deref(),
        &answer.body,
    );
    hop.content_type = answer.content_type;
    Ok(hop)
}

/// Twilio's error code for a failed request.
fn classify(error: &reqwest::Error) -> (ErrorCode, String) {
    let description = http_client::describe(error);
    let lower = description.to_ascii_lowercase();
    let code = if error.is_timeout() {
        ErrorCode::CONNECTION_FAILURE
    } else if error.is_redirect() {
        ErrorCode::TOO_MANY_REDIRECTS
    } else if error.is_builder() {
        ErrorCode::INVALID_URL
    } else if lower.contains("dns error")
        || lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
    {
        ErrorCode::BAD_HOST_NAME
    } else if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("notvalidforname") {
        ErrorCode::CERTIFICATE_INVALID
    } else if lower.contains("tls") || lower.contains("handshake") {
        ErrorCode::TLS_HANDSHAKE
    } else if error.is_connect() {
        ErrorCode::CONNECTION_FAILURE
    } else {
        ErrorCode::HTTP_RETRIEVAL_FAILURE
    };
    (code, description)
}

/// What Twilio does with an answer: fail it (and fall back), or execute it — by the core's
/// [`AnswerRules`], with Twilio's own leniency (schema problems are 12200 warnings, not failures).
fn judge(hop: &mut Hop, channel: Channel, status: http::StatusCode, content_type: Option<&str>, body: &[u8]) {
    let rules = AnswerRules {
        target: channel.into(),
        strictness: Strictness::WellFormed,
        content: ContentPolicy::AsTwilio,
    };
    let text = || String::from_utf8_lossy(body).into_owned();
    hop.served = match rules.check(status, content_type, body) {
        Err(rejection) => {
            hop.failure = Some((rejection.code, rejection.message));
            None
        }
        Ok(Accepted::NoReply) => Some(Served::NoReply),
        Ok(Accepted::Audio) => Some(Served::Audio),
        Ok(Accepted::PlainText) => Some(Served::PlainText(text())),
        // Twilio itself does not correct the type: it sends or reads the XML as text.
        Ok(Accepted::Twiml {
            served_as: ContentKind::PlainText,
            ..
        }) => {
            hop.warnings.push(format!(
                "this is TwiML served as text/plain: Twilio {} the raw XML; serve it as text/xml (the fallback layer corrects it)",
                match channel {
                    Channel::Voice => "reads aloud",
                    Channel::Messaging => "sends as the reply",
                }
            ));
            Some(Served::PlainText(text()))
        }
        Ok(Accepted::Twiml { report, .. }) => {
            hop.warnings = report.errors().map(|diagnostic| diagnostic.to_string()).collect();
            Some(Served::Twiml(text()))
        }
    };
}

/// What the person experiences, line by line.
fn experience(channel: Channel, hop: &Hop) -> Vec<String> {
    let Some(served) = &hop.served else {
        return vec![match channel {
            Channel::Voice => "Twilio plays its application-error message (\"We are sorry, an application error has occurred\") and hangs up".to_owned(),
            Channel::Messaging => "the sender gets no reply".to_owned(),
        }];
    };
    let mut lines = Vec::new();
    if !hop.warnings.is_empty() {
        lines.push(format!(
            "Twilio logs {} schema problem(s) (12200) and skips what it cannot run",
            hop.warnings.len()
        ));
    }
    match served {
        Served::NoReply => lines.push("the sender gets no reply (204 No Content)".to_owned()),
        Served::Audio => lines.push("caller hears the audio answer played, then the call ends".to_owned()),
        Served::PlainText(text) => lines.push(match channel {
            Channel::Voice => format!(
                "caller hears the text read aloud: \"{}\", then the call ends",
                text.trim()
            ),
            Channel::Messaging => format!("sender receives SMS: \"{}\"", text.trim()),
        }),
        Served::Twiml(twiml) => {
            let actions = outline(twiml.as_bytes());
            let runnable: Vec<&Action> = actions
                .iter()
                .filter(|action| match (channel, action) {
                    (Channel::Voice, Action::Message { .. }) => false,
                    (Channel::Messaging, action) => matches!(action, Action::Message { .. } | Action::Redirect { .. }),
                    _ => true,
                })
                .collect();
            for action in &runnable {
                describe(action, "", &mut lines);
            }
            let ends_itself = runnable.last().is_some_and(|action| {
                matches!(action, Action::Hangup | Action::Reject { .. } | Action::Redirect { .. })
            });
            match channel {
                Channel::Voice if !ends_itself => lines.push("then the call ends".to_owned()),
                Channel::Messaging if runnable.is_empty() => lines.push("the sender gets no reply".to_owned()),
                _ => {}
            }
        }
    }
    lines
}

fn describe(action: &Action, indent: &str, lines: &mut Vec<String>) {
    let line = match action {
        Action::Say { text } => format!("caller hears: \"{text}\""),
        Action::Play { url } => format!("caller hears the audio at {url}"),
        Action::PlayDigits { digits } => format!("Twilio plays the tones {digits}"),
        Action::Pause { seconds } => format!("silence for {seconds} s"),
        Action::Gather { prompts } => {
            lines.push(format!("{indent}caller is asked to press keys or speak"));
            for prompt in prompts {
                describe(prompt, &format!("{indent}  "), lines);
            }
            return;
        }
        Action::Dial { target } => format!("the call is connected to {target}"),
        Action::Record => "the caller is recorded".to_owned(),
        Action::Hangup => "Twilio hangs up".to_owned(),
        Action::Reject { reason } => format!("the call is rejected ({reason}); it is never answered"),
        Action::Redirect { url, .. } => format!("Twilio continues with the TwiML at {url}"),
        Action::Message { body, media, to, .. } => {
            let mut line = match to {
                Some(to) => format!("{to} receives SMS: \"{body}\""),
                None => format!("sender receives SMS: \"{body}\""),
            };
            if !media.is_empty() {
                line.push_str(&format!(" with {} picture(s): {}", media.len(), media.join(", ")));
            }
            line
        }
        Action::Other { verb } => format!("Twilio runs <{verb}>"),
    };
    lines.push(format!("{indent}{line}"));
}

fn size(bytes: usize) -> String {
    if bytes >= 1024 {
        format!("{:.1} kB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

fn print_text(args: &SimulateArgs, channel: Channel, signed: bool, hops: &[Hop], experience: &[String]) {
    let what = match channel {
        Channel::Voice => "an incoming call",
        Channel::Messaging => "an incoming message",
    };
    println!(
        "Simulating {what} from {} to {} ({})\n",
        args.from,
        args.to,
        if signed {
            "signed with X-Twilio-Signature"
        } else {
            "unsigned: no --auth-token or TWILIO_AUTH_TOKEN"
        }
    );
    for (index, hop) in hops.iter().enumerate() {
        let note = if hop.role == "fallback" {
            hops.first()
                .and_then(|primary| primary.failure.as_ref())
                .map(|(code, _)| format!(" (ErrorCode={code})"))
                .unwrap_or_default()
        } else {
            String::new()
        };
        println!("{}. {:<8} {} {}{note}", index + 1, hop.role, hop.method, hop.url);
        if let Some(warning) = &hop.timing_warning {
            println!("   warning: {warning}");
        }
        match hop.status {
            Some(status) => println!(
                "   -> HTTP {status}, {}, {} in {} ms",
                hop.content_type.as_deref().unwrap_or("no Content-Type"),
                size(hop.bytes.unwrap_or(0)),
                hop.elapsed.as_millis()
            ),
            None => println!("   -> no answer after {} ms", hop.elapsed.as_millis()),
        }
        match (&hop.failure, &hop.served) {
            (Some((code, message)), _) => {
                println!("   error {code} ({}): {message}", code.title());
                if let Some(refusal) = &hop.refusal {
                    println!("   answer: {}", if refusal.is_empty() { "(empty)" } else { refusal });
                }
                if let Some(hint) = &hop.hint {
                    println!("   hint: {hint}");
                }
            }
            (None, Some(Served::PlainText(_))) => {
                println!(
                    "   ok: plain text, which Twilio {}",
                    match channel {
                        Channel::Voice => "reads aloud",
                        Channel::Messaging => "sends as the reply",
                    }
                );
                for warning in &hop.warnings {
                    println!("   warning: {warning}");
                }
            }
            (None, Some(Served::Audio)) => println!("   ok: audio, which Twilio plays, then hangs up"),
            (None, _) if hop.warnings.is_empty() => match &hop.fallback_layer {
                Some(cause) => println!("   answered by the fallback layer: {cause} (valid {channel} TwiML)"),
                None => println!("   ok: valid {channel} TwiML"),
            },
            (None, _) => {
                println!(
                    "   Twilio runs it, logging each schema error below as a 12200 warning and skipping what it cannot run:"
                );
                for warning in &hop.warnings {
                    println!("     {warning}");
                }
            }
        }
    }
    if hops.len() == 1 && hops[0].failure.is_some() {
        println!("   (no --fallback-url: Twilio has nowhere else to go)");
    }
    if let Some(Served::Twiml(twiml)) = hops.last().and_then(|hop| hop.served.as_ref()) {
        println!("\nTwiML executed:\n  {}", twiml.trim());
    }
    let who = match channel {
        Channel::Voice => "caller",
        Channel::Messaging => "sender",
    };
    println!("\nWhat the {who} experiences:");
    for line in experience {
        println!("  {line}");
    }
}

fn hop_json(hop: &Hop) -> Value {
    json!({
        "role": hop.role,
        "method": hop.method,
        "url": hop.url,
        "status": hop.status,
        "content_type": hop.content_type,
        "bytes": hop.bytes,
        "elapsed_ms": u64::try_from(hop.elapsed.as_millis()).unwrap_or(u64::MAX),
        "error_code": hop.failure.as_ref().map(|(code, _)| code.as_u32()),
        "error_title": hop.failure.as_ref().map(|(code, _)| code.title()),
        "error": hop.failure.as_ref().map(|(_, message)| message),
        "warnings": hop.warnings,
        "timing_warning": hop.timing_warning,
        "fallback_layer": hop.fallback_layer,
        "refusal": hop.refusal,
        "hint": hop.hint,
        "ok": hop.failure.is_none() && hop.warnings.is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_shorten_twilios_budget() {
        let (url, limits) = limits(
            "https://a.example/v?x=1#ct=500&rt=2000&tt=4000",
            Duration::from_secs(15),
        );
        assert_eq!(url, "https://a.example/v?x=1");
        assert_eq!(limits.connect, Duration::from_millis(500));
        assert_eq!(limits.read, Some(Duration::from_millis(2000)));
        assert_eq!(limits.total, Duration::from_millis(4000));
        let (_, defaults) = limits_of("https://a.example/v");
        assert_eq!(
            (defaults.connect, defaults.total),
            (CONNECT_LIMIT, Duration::from_secs(15))
        );
        let (_, capped) = limits_of("https://a.example/v#tt=60000&ct=30000");
        assert_eq!((capped.connect, capped.total), (CONNECT_LIMIT, Duration::from_secs(15)));
    }

    #[test]
    fn a_fragment_shorter_than_the_layers_default_deadline_is_warned_about() {
        let (_, short) = limits_of("https://a.example/v#rt=3000");
        let warning = timing_warning(&short).expect("a warning");
        assert!(warning.starts_with("#rt=3000 gives Twilio 3000 ms"), "{warning}");
        assert!(warning.contains("below 3000 ms (e.g. 2000 ms)"), "{warning}");
        let (_, shortest) = limits_of("https://a.example/v#tt=9000&rt=5000&ct=100");
        assert!(timing_warning(&shortest).is_some_and(|w| w.starts_with("#rt=5000")));
        for url in [
            "https://a.example/v",
            "https://a.example/v#ct=500",
            "https://a.example/v#rt=13000",
            "https://a.example/v#tt=14000",
        ] {
            assert_eq!(timing_warning(&limits_of(url).1), None, "{url}");
        }
        assert!(
            timing_warning(&limits_of("https://a.example/v#tt=12500").1).is_some(),
            "12 s + the way back"
        );
    }

    #[test]
    fn a_403_is_read_as_a_refused_signature() {
        assert_eq!(
            refusal_hint("fallback", false),
            "the fallback refused the signature: pass --auth-token (or TWILIO_AUTH_TOKEN), the same token as the endpoint"
        );
        assert!(refusal_hint("fallback", true).contains("the same token as the endpoint's"));
        assert!(refusal_hint("primary", false).starts_with("the primary refused the request"));
    }

    fn limits_of(url: &str) -> (String, Limits) {
        limits(url, Duration::from_secs(15))
    }

    fn st(code: u16) -> http::StatusCode {
        http::StatusCode::from_u16(code).expect("a status")
    }

    fn hop() -> Hop {
        Hop {
            role: "primary",
            method: "POST",
            url: String::new(),
            status: None,
            content_type: None,
            bytes: None,
            elapsed: Duration::ZERO,
            served: None,
            failure: None,
            timed_out: false,
            warnings: Vec::new(),
            timing_warning: None,
            fallback_layer: None,
            refusal: None,
            hint: None,
        }
    }

    #[test]
    fn twilio_rules_decide_failure_and_warnings() {
        let mut failed = hop();
        judge(
            &mut failed,
            Channel::Messaging,
            st(500),
            Some("text/xml"),
            b"<Response/>",
        );
        assert_eq!(
            failed.failure.map(|(code, _)| code),
            Some(ErrorCode::HTTP_RETRIEVAL_FAILURE)
        );
        let mut lowercase = hop();
        judge(
            &mut lowercase,
            Channel::Messaging,
            st(200),
            Some("text/xml"),
            b"<response/>",
        );
        assert_eq!(
            lowercase.failure.map(|(code, _)| code),
            Some(ErrorCode::ROOT_NOT_RESPONSE)
        );
        let mut html = hop();
        judge(
            &mut html,
            Channel::Voice,
            st(200),
            Some("text/html"),
            b"<Response><Say>hi</Say></Response>",
        );
        assert!(html.failure.is_none(), "Twilio executes text/html as TwiML");
        let mut wrong_channel = hop();
        judge(
            &mut wrong_channel,
            Channel::Messaging,
            st(200),
            Some("text/xml"),
            b"<Response><Say>hi</Say></Response>",
        );
        assert!(
            wrong_channel.failure.is_none() && wrong_channel.warnings.len() == 1,
            "12200 is a warning"
        );
        let mut plain = hop();
        judge(
            &mut plain,
            Channel::Messaging,
            st(200),
            Some("text/plain"),
            b"closing at 5",
        );
        assert!(matches!(plain.served, Some(Served::PlainText(_))) && plain.warnings.is_empty());
        let mut twiml_as_text = hop();
        judge(
            &mut twiml_as_text,
            Channel::Messaging,
            st(200),
            Some("text/plain; charset=utf-8"),
            b"<Response><Message>Order 42 is ready</Message></Response>",
        );
        assert!(matches!(twiml_as_text.served, Some(Served::PlainText(_))));
        assert!(twiml_as_text.warnings[0].contains("serve it as text/xml"));
        let mut audio = hop();
        judge(&mut audio, Channel::Voice, st(200), Some("audio/mpeg"), b"ID3\x04");
        assert!(matches!(audio.served, Some(Served::Audio)) && audio.failure.is_none());
        let mut audio_sms = hop();
        judge(
            &mut audio_sms,
            Channel::Messaging,
            st(200),
            Some("audio/mpeg"),
            b"ID3\x04",
        );
        assert_eq!(
            audio_sms.failure.map(|(code, _)| code),
            Some(ErrorCode::INVALID_CONTENT_TYPE)
        );
        let mut json = hop();
        judge(&mut json, Channel::Voice, st(200), Some("application/json"), b"{}");
        assert_eq!(
            json.failure.map(|(code, _)| code),
            Some(ErrorCode::INVALID_CONTENT_TYPE)
        );
    }

    #[test]
    fn experiences_read_like_what_happens() {
        let mut served = hop();
        served.served = Some(Served::Twiml("<Response><Say>Sorry</Say></Response>".into()));
        assert_eq!(
            experience(Channel::Voice, &served),
            ["caller hears: \"Sorry\"", "then the call ends"]
        );
        served.served = Some(Served::Twiml(
            "<Response><Message>Back soon</Message></Response>".into(),
        ));
        assert_eq!(
            experience(Channel::Messaging, &served),
            ["sender receives SMS: \"Back soon\""]
        );
        served.served = Some(Served::Twiml("<Response/>".into()));
        assert_eq!(experience(Channel::Messaging, &served), ["the sender gets no reply"]);
        let failed = hop();
        assert!(experience(Channel::Voice, &failed)[0].contains("application-error message"));
        assert_eq!(experience(Channel::Messaging, &failed), ["the sender gets no reply"]);
    }
}
