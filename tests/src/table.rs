//! The case table and its runner.

use std::time::Duration;

use twiml_fallback::config::{Config, UNKNOWN_CHANNEL_TWIML};
use twiml_fallback::edge::HEALTH_BODY;
use twiml_fallback::signature::{SIGNATURE_HEADER, compute_signature};
use twiml_fallback::twiml::{TargetChannel, resolve_relative_urls, validate};
use twiml_fallback::webhook::{Channel, Params};

use crate::fakes::{AlertReceiver, HEALTHY_TWIML, Primary};
use crate::{Launcher, Running, SECONDARY_TOKEN, TOKEN, client};

/// How a case's request is signed.
#[derive(Clone, Copy, Debug)]
pub enum Signing {
    /// With this token, as Twilio would.
    Token(&'static str),
    /// No `X-Twilio-Signature` header.
    None,
    /// A well-formed signature that matches nothing.
    Forged,
    /// Signed, then one parameter changed in transit.
    Tampered,
}

/// One request of the table.
#[derive(Clone, Debug)]
pub struct CaseRequest {
    /// `GET`, `HEAD` or `POST` (parameters in the query string or a form body).
    pub method: &'static str,
    /// The path on the endpoint.
    pub path: &'static str,
    /// Twilio's parameters.
    pub params: Vec<(String, String)>,
    /// How it is signed.
    pub signing: Signing,
    /// A raw body sent instead of the form (garbage, huge, JSON…), with its Content-Type.
    pub raw_body: Option<(Vec<u8>, Option<&'static str>)>,
}

/// What the endpoint must answer.
#[derive(Clone, Debug)]
pub enum Expect {
    /// 200 with exactly this TwiML.
    Twiml(String),
    /// 403.
    Forbidden,
    /// A health check's 200 `text/plain` with this body (`ok\n`; empty for `HEAD`).
    Health(&'static str),
}

/// A named case.
#[derive(Clone, Debug)]
pub struct Case {
    /// What it checks.
    pub name: &'static str,
    /// The request.
    pub request: CaseRequest,
    /// The answer.
    pub expect: Expect,
}

/// An inbound call's parameters as Twilio sends them, plus `extra`.
pub fn voice(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut params = vec![
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", "CA11111111111111111111111111111111"),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("From", "+14155550100"),
        ("To", "+14155550177"),
    ];
    params.extend_from_slice(extra);
    owned(params)
}

fn sms(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut params = vec![
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("ApiVersion", "2010-04-01"),
        ("Body", "Is my order ready? 🍰 & more"),
        ("From", "+14155550100"),
        ("MessageSid", "SM11111111111111111111111111111111"),
        ("NumMedia", "0"),
        ("SmsMessageSid", "SM11111111111111111111111111111111"),
        ("SmsSid", "SM11111111111111111111111111111111"),
        ("To", "+14155550177"),
    ];
    params.extend_from_slice(extra);
    owned(params)
}

fn owned(pairs: Vec<(&str, &str)>) -> Vec<(String, String)> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn with_to(mut params: Vec<(String, String)>, to: &str) -> Vec<(String, String)> {
    for (key, value) in &mut params {
        if key == "To" {
            *value = to.to_owned();
        }
    }
    params
}

/// The configuration every case runs against (alert and primary addresses filled in).
fn config(alerts: &AlertReceiver, primary: &Primary) -> String {
    let primary_host = primary.base_url.trim_start_matches("http://");
    format!(
        r#"
[voice]
say = "The e2e voice fallback: please call back later."
voice = "Polly.Joanna"

[messaging]
message = "The e2e messaging fallback: we'll be back soon. 🍰"

[numbers."+14155550199".voice]
say = "Lo sentimos, tenemos problemas técnicos."
language = "es-ES"

[numbers."+14155550188".messaging]
message = "Per-number SMS fallback."

[alerts]
webhook_url = "{}"
resolve_after_seconds = 300

[recovery]
allow_hosts = ["{primary_host}"]
allow_http = true
timeout_ms = 3000
"#,
        alerts.url
    )
}

/// The request/response cases for an endpoint with tokens.
fn signed_cases(config: &Config) -> Vec<Case> {
    let answer =
        |channel: Option<Channel>, to: &str| Expect::Twiml(config.fallback(channel, Some(to)).twiml.to_owned());
    // The expected answers come from the configuration's own lookup; hold that lookup to the
    // table's configuration text, so a broken per-number lookup cannot pass on both sides.
    let expected = |channel, to| match answer(Some(channel), to) {
        Expect::Twiml(twiml) => twiml,
        _ => unreachable!(),
    };
    let spanish = expected(Channel::Voice, "+14155550199");
    assert!(
        spanish.contains("Lo sentimos") && spanish.contains(r#"language="es-ES""#),
        "{spanish}"
    );
    assert!(expected(Channel::Messaging, "+14155550188").contains("Per-number SMS fallback."));
    for (channel, to) in [
        (Channel::Messaging, "+14155550199"),
        (Channel::Voice, "+14155550188"),
        (Channel::Voice, "+14155550177"),
    ] {
        let twiml = expected(channel, to);
        assert!(
            !twiml.contains("Lo sentimos") && !twiml.contains("Per-number"),
            "{to}: {twiml}"
        );
    }
    let voice_answer = answer(Some(Channel::Voice), "+14155550177");
    let sms_answer = answer(Some(Channel::Messaging), "+14155550177");
    let notice = |code: &'static str, url: &'static str| [("ErrorCode", code), ("ErrorUrl", url)];
    let post = |params: Vec<(String, String)>, signing: Signing| CaseRequest {
        method: "POST",
        path: "/twilio/fallback",
        params,
        signing,
        raw_body: None,
    };
    let get = |params: Vec<(String, String)>| CaseRequest {
        method: "GET",
        path: "/twilio/fallback",
        params,
        signing: Signing::Token(TOKEN),
        raw_body: None,
    };
    let raw = |body: Vec<u8>, content_type: Option<&'static str>, signing: Signing| CaseRequest {
        method: "POST",
        path: "/any/path",
        params: Vec::new(),
        signing,
        raw_body: Some((body, content_type)),
    };
    vec![
        Case {
            name: "signed voice POST with ErrorCode and ErrorUrl",
            request: post(
                voice(&notice("11200", "https://app.example.com/voice")),
                Signing::Token(TOKEN),
            ),
            expect: voice_answer.clone(),
        },
        Case {
            name: "signed SMS POST with ErrorCode and ErrorUrl",
            request: post(
                sms(&notice("12100", "https://app.example.com/sms")),
                Signing::Token(TOKEN),
            ),
            expect: sms_answer.clone(),
        },
        Case {
            name: "signed voice GET (parameters in the query string)",
            request: get(voice(&notice("11205", "https://app.example.com/voice"))),
            expect: voice_answer.clone(),
        },
        Case {
            name: "signed SMS GET",
            request: get(sms(&notice("12300", "https://app.example.com/sms"))),
            expect: sms_answer.clone(),
        },
        Case {
            name: "signed with the secondary token (rotation)",
            request: post(
                voice(&notice("11200", "https://app.example.com/voice")),
                Signing::Token(SECONDARY_TOKEN),
            ),
            expect: voice_answer.clone(),
        },
        Case {
            name: "unsigned request",
            request: post(voice(&notice("11200", "https://app.example.com/forged")), Signing::None),
            expect: Expect::Forbidden,
        },
        Case {
            name: "forged signature",
            request: post(sms(&notice("11200", "https://app.example.com/forged")), Signing::Forged),
            expect: Expect::Forbidden,
        },
        Case {
            name: "signed with a wrong token",
            request: post(
                voice(&notice("11200", "https://app.example.com/forged")),
                Signing::Token("not-the-token"),
            ),
            expect: Expect::Forbidden,
        },
        Case {
            name: "signed, then tampered with",
            request: post(
                voice(&notice("11200", "https://app.example.com/forged")),
                Signing::Tampered,
            ),
            expect: Expect::Forbidden,
        },
        Case {
            name: "per-number voice override (Spanish)",
            request: post(
                with_to(voice(&notice("11200", "https://app.example.com/voice")), "+14155550199"),
                Signing::Token(TOKEN),
            ),
            expect: answer(Some(Channel::Voice), "+14155550199"),
        },
        Case {
            name: "per-number SMS override",
            request: post(
                with_to(sms(&notice("11200", "https://app.example.com/sms")), "+14155550188"),
                Signing::Token(TOKEN),
            ),
            expect: answer(Some(Channel::Messaging), "+14155550188"),
        },
        Case {
            name: "a number's override applies only to its channel",
            request: post(
                with_to(sms(&notice("11200", "https://app.example.com/sms")), "+14155550199"),
                Signing::Token(TOKEN),
            ),
            expect: answer(Some(Channel::Messaging), "+14155550199"),
        },
        Case {
            name: "missing parameters: unknown channel gets <Response/>",
            request: post(owned(vec![("From", "+14155550100")]), Signing::Token(TOKEN)),
            expect: Expect::Twiml(UNKNOWN_CHANNEL_TWIML.to_owned()),
        },
        Case {
            name: "garbage body, unsigned",
            request: raw(
                b"\xff\xfe\x00 not a form %%% <Response>".to_vec(),
                Some("application/x-www-form-urlencoded"),
                Signing::None,
            ),
            expect: Expect::Forbidden,
        },
        Case {
            name: "garbage body, signed as the endpoint parses it",
            request: raw(b"==&&%ZZ=%E0%A4&x".to_vec(), None, Signing::Token(TOKEN)),
            expect: Expect::Twiml(UNKNOWN_CHANNEL_TWIML.to_owned()),
        },
        Case {
            // Read whole, this correctly signed voice request would get the voice fallback.
            name: "huge body (4 MB, declared length): refused, none of it kept",
            request: raw(
                huge_voice_form(),
                Some("application/x-www-form-urlencoded"),
                Signing::Token(TOKEN),
            ),
            expect: Expect::Forbidden,
        },
        Case {
            name: "JSON body without bodySHA256",
            request: raw(
                br#"{"CallSid": "CA1"}"#.to_vec(),
                Some("application/json"),
                Signing::Token(TOKEN),
            ),
            expect: Expect::Forbidden,
        },
        Case {
            name: "text/plain body",
            request: raw(b"CallSid=CA1".to_vec(), Some("text/plain"), Signing::Token(TOKEN)),
            expect: Expect::Forbidden,
        },
        Case {
            name: "health check: an unsigned GET /healthz is 200 ok with a token set",
            request: health("GET", Vec::new(), Signing::None),
            expect: Expect::Health(HEALTH_BODY),
        },
        Case {
            name: "health check: HEAD /healthz",
            request: health("HEAD", Vec::new(), Signing::None),
            expect: Expect::Health(""),
        },
        Case {
            name: "health check: a monitor's query string and a forged signature change nothing",
            request: health("GET", owned(vec![("probe", "1")]), Signing::Forged),
            expect: Expect::Health(HEALTH_BODY),
        },
        Case {
            name: "health check: a correctly signed GET notice to /healthz is still only a health check",
            request: health(
                "GET",
                voice(&notice("11200", "https://app.example.com/healthz-notice")),
                Signing::Token(TOKEN),
            ),
            expect: Expect::Health(HEALTH_BODY),
        },
        Case {
            name: "health check: a POST to /healthz is an ordinary request (unsigned: 403)",
            request: health("POST", voice(&[]), Signing::None),
            expect: Expect::Forbidden,
        },
        Case {
            name: "health check: a signed POST to /healthz gets the fallback",
            request: health("POST", voice(&[]), Signing::Token(TOKEN)),
            expect: voice_answer.clone(),
        },
    ]
}

/// A request to `/healthz`.
fn health(method: &'static str, params: Vec<(String, String)>, signing: Signing) -> CaseRequest {
    CaseRequest {
        method,
        path: "/healthz",
        params,
        signing,
        raw_body: None,
    }
}

/// The cases for an endpoint without any token: it still answers, never alerts.
fn tokenless_cases(config: &Config) -> Vec<Case> {
    vec![
        Case {
            name: "no token: an unsigned voice request gets the voice fallback",
            request: CaseRequest {
                method: "POST",
                path: "/",
                params: voice(&[("ErrorCode", "11200"), ("ErrorUrl", "https://app.example.com/no-token")]),
                signing: Signing::None,
                raw_body: None,
            },
            expect: Expect::Twiml(
                config
                    .fallback(Some(Channel::Voice), Some("+14155550177"))
                    .twiml
                    .to_owned(),
            ),
        },
        Case {
            name: "no token: garbage gets <Response/>",
            request: CaseRequest {
                method: "POST",
                path: "/x",
                params: Vec::new(),
                signing: Signing::None,
                raw_body: Some((b"\x00\x01garbage=%%".to_vec(), Some("application/octet-stream"))),
            },
            expect: Expect::Twiml(UNKNOWN_CHANNEL_TWIML.to_owned()),
        },
        Case {
            name: "no token: GET /healthz is 200 ok",
            request: health("GET", Vec::new(), Signing::None),
            expect: Expect::Health(HEALTH_BODY),
        },
        Case {
            // Read whole, this voice request would get the voice fallback.
            name: "no token: a huge body gets <Response/>",
            request: CaseRequest {
                method: "POST",
                path: "/x",
                params: Vec::new(),
                signing: Signing::None,
                raw_body: Some((huge_voice_form(), Some("application/x-www-form-urlencoded"))),
            },
            expect: Expect::Twiml(UNKNOWN_CHANNEL_TWIML.to_owned()),
        },
    ]
}

/// The response of one request.
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The Content-Type.
    pub content_type: String,
    /// The body.
    pub body: String,
}

/// Sends `request` to `base_url` the way Twilio would.
pub async fn send(base_url: &str, request: &CaseRequest) -> Answer {
    let url = format!("{base_url}{}", request.path);
    let params = Params::from_pairs(request.params.clone());
    let client = client();
    let bodiless = matches!(request.method, "GET" | "HEAD");
    let (target, signed_url) = if bodiless {
        let full = format!("{url}?{}", params.to_form());
        (full.clone(), full)
    } else {
        (url.clone(), url.clone())
    };
    let mut builder = match request.method {
        "GET" => client.get(&target),
        "HEAD" => client.head(&target),
        _ => client.post(&target),
    };
    let (body, content_type) = match &request.raw_body {
        Some((body, content_type)) => (body.clone(), *content_type),
        None if bodiless => (Vec::new(), None),
        None => (params.to_form().into_bytes(), Some("application/x-www-form-urlencoded")),
    };
    // What the signature covers: the URL, plus the form the endpoint will parse for a POST.
    let signed_params = if bodiless {
        Params::new()
    } else {
        Params::from_form(&body)
    };
    let signature = match request.signing {
        Signing::Token(token) => Some(compute_signature(token, &signed_url, &signed_params)),
        Signing::None => None,
        Signing::Forged => Some("Zm9yZ2VkIHNpZ25hdHVyZSEhIQ==".to_owned()),
        Signing::Tampered => Some(compute_signature(
            TOKEN,
            &signed_url,
            &Params::from_pairs([("CallSid", "CA-original")]),
        )),
    };
    if let Some(signature) = signature {
        builder = builder.header(SIGNATURE_HEADER, signature);
    }
    if let Some(content_type) = content_type {
        builder = builder.header("Content-Type", content_type);
    }
    if !bodiless {
        builder = builder.body(body);
    }
    match builder.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = response.text().await.unwrap_or_default();
            Answer {
                status,
                content_type,
                body,
            }
        }
        Err(error) => Answer {
            status: 0,
            content_type: String::new(),
            body: format!("request failed: {error}"),
        },
    }
}

/// The backend's log, read before it is stopped (its files may go with it).
pub(crate) fn log_text(running: &Running) -> String {
    running
        .logs
        .as_ref()
        .map(|path| {
            format!(
                "\n--- {}:\n{}",
                path.display(),
                std::fs::read_to_string(path).unwrap_or_default()
            )
        })
        .unwrap_or_default()
}

/// A voice webhook's form padded far past the 64 KB limit (4 MB): more than workerd's HTTP stack
/// drains of an unread body before it resets the connection, so an endpoint that answers without
/// consuming it fails these cases nearly every run, not now and then.
fn huge_voice_form() -> Vec<u8> {
    let mut form = Params::from_pairs(voice(&[("ErrorCode", "11200")]))
        .to_form()
        .into_bytes();
    form.extend_from_slice(b"&Padding=");
    form.resize(4 << 20, b'a');
    form
}

/// POSTs `body` as a chunked form body (4 KB chunks, no Content-Length) over a raw HTTP/1.1
/// connection, and reads the answer. The endpoint may answer and close before it has all of it.
pub async fn send_chunked(base_url: &str, path: &str, body: &[u8], signature: Option<&str>) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let failed = |what: String| Answer {
        status: 0,
        content_type: String::new(),
        body: what,
    };
    let authority = base_url.trim_start_matches("http://");
    let mut stream = match tokio::net::TcpStream::connect(authority).await {
        Ok(stream) => stream,
        Err(error) => return failed(format!("connect {authority}: {error}")),
    };
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n"
    );
    if let Some(signature) = signature {
        head.push_str(&format!("{SIGNATURE_HEADER}: {signature}\r\n"));
    }
    head.push_str("\r\n");
    // Write errors are expected once the endpoint has answered early and closed.
    let _ = async {
        stream.write_all(head.as_bytes()).await?;
        for chunk in body.chunks(4096) {
            stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
            stream.write_all(chunk).await?;
            stream.write_all(b"\r\n").await?;
        }
        stream.write_all(b"0\r\n\r\n").await
    }
    .await;
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await;
    if raw.is_empty() {
        return failed(format!("no answer: {read:?}"));
    }
    parse_http_response(&raw).unwrap_or_else(|| failed(format!("not HTTP: {:?}", String::from_utf8_lossy(&raw))))
}

/// A minimal HTTP/1.1 response parser (Content-Length, chunked, or to the end).
fn parse_http_response(raw: &[u8]) -> Option<Answer> {
    let split = raw.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut content_type = String::new();
    let mut chunked = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = value.trim().to_owned(),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "content-length" => body = &body[..value.trim().parse::<usize>().ok()?.min(body.len())],
            _ => {}
        }
    }
    let body = if chunked {
        let mut decoded = Vec::new();
        loop {
            let line_end = body.windows(2).position(|window| window == b"\r\n")?;
            let size = usize::from_str_radix(std::str::from_utf8(&body[..line_end]).ok()?.trim(), 16).ok()?;
            if size == 0 {
                break decoded;
            }
            decoded.extend_from_slice(body.get(line_end + 2..line_end + 2 + size)?);
            body = body.get(line_end + 4 + size..)?;
        }
    } else {
        body.to_vec()
    };
    Some(Answer {
        status,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn check(case_name: &str, expect: &Expect, answer: &Answer, failures: &mut Vec<String>) {
    let mut fail = |what: String| failures.push(format!("{case_name}: {what}"));
    match expect {
        Expect::Forbidden => {
            if answer.status != 403 {
                fail(format!(
                    "expected 403, got {} {:?}",
                    answer.status,
                    answer.body.chars().take(200).collect::<String>()
                ));
            }
        }
        Expect::Health(body) => {
            if answer.status != 200 || !answer.content_type.starts_with("text/plain") || answer.body != *body {
                fail(format!(
                    "expected 200 text/plain {body:?}, got {} {:?} {:?}",
                    answer.status,
                    answer.content_type,
                    answer.body.chars().take(200).collect::<String>()
                ));
            }
        }
        Expect::Twiml(twiml) => {
            if answer.status != 200 {
                fail(format!(
                    "expected 200, got {} {:?}",
                    answer.status,
                    answer.body.chars().take(200).collect::<String>()
                ));
                return;
            }
            if !answer.content_type.to_ascii_lowercase().starts_with("text/xml") {
                fail(format!("Content-Type {:?} is not text/xml", answer.content_type));
            }
            if &answer.body != twiml {
                fail(format!("expected {twiml:?}, got {:?}", answer.body));
            }
            let report = validate(answer.body.as_bytes(), TargetChannel::Auto);
            if !report.is_valid() {
                fail(format!("the answer is not valid TwiML: {:?}", report.diagnostics()));
            }
            if answer.body.len() > 64 * 1024 {
                fail("the answer is over 64 KB".to_owned());
            }
        }
    }
}

async fn wait_for<T>(within: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the whole table against `launcher`'s backend; panics with every failure listed.
pub async fn run_table(launcher: &dyn Launcher) {
    let alerts = AlertReceiver::start().await;
    let primary = Primary::start().await;
    let toml = config(&alerts, &primary);
    let config = Config::from_toml(&toml).expect("the table's configuration is valid");
    let mut failures = Vec::new();
    let mut checked = 0;

    let signed: Running = launcher.launch(&toml, &[TOKEN, SECONDARY_TOKEN]).await;
    let base = signed.base_url.clone();
    for case in signed_cases(&config) {
        let answer = send(&base, &case.request).await;
        check(case.name, &case.expect, &answer, &mut failures);
        checked += 1;
    }

    // Incidents: one per failing primary (however many notices, whatever their codes), its
    // webhook told once; forged requests count for nothing.
    let failing = "https://app.example.com";
    let once_url = "https://app.example.com/alert-once";
    let notice = |code: &'static str| [("ErrorCode", code), ("ErrorUrl", once_url)];
    let signed_notice = |code: &'static str| CaseRequest {
        method: "POST",
        path: "/alerts",
        params: voice(&notice(code)),
        signing: Signing::Token(TOKEN),
        raw_body: None,
    };
    for _ in 0..3 {
        let answer = send(&base, &signed_notice("11205")).await;
        check(
            "incident: repeated notice",
            &Expect::Twiml(config.fallback(Some(Channel::Voice), None).twiml.to_owned()),
            &answer,
            &mut failures,
        );
    }
    let first = wait_for(Duration::from_secs(10), || {
        (!alerts.alerts_for(failing).is_empty()).then_some(())
    })
    .await;
    if first.is_none() {
        failures.push("incident: no notification arrived within 10 s".to_owned());
    }
    let forged = CaseRequest {
        signing: Signing::Forged,
        ..signed_notice("11750")
    };
    let _ = send(&base, &forged).await;
    let _ = send(&base, &signed_notice("12100")).await;
    // Give any stray duplicate time to arrive before counting.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let received = alerts.alerts_for(failing);
    if received.len() != 1 || received[0]["event"] != "incident-opened" {
        failures.push(format!(
            "incident: expected exactly one incident-opened notification for {failing}, got {received:?}"
        ));
    }
    if alerts
        .alerts()
        .iter()
        .any(|alert| !alert["error_codes"]["11750"].is_null())
    {
        failures.push("incident: a forged request was counted".to_owned());
    }
    if received.iter().any(|alert| {
        !alert["text"]
            .as_str()
            .is_some_and(|text| text.contains("https://app.example.com is failing"))
    }) {
        failures.push(format!("incident: missing a Slack-compatible text: {received:?}"));
    }
    if alerts.alerts().iter().any(|alert| alert.to_string().contains(TOKEN)) {
        failures.push("incident: a notification contains the auth token".to_owned());
    }
    checked += 3;

    // Recovery: a healthy allowlisted primary is relayed; other hosts are refused; a broken one falls back.
    let healthy = format!("{}/healthy", primary.base_url);
    let recover = |error_url: &str, to: &str| CaseRequest {
        method: "POST",
        path: "/recover",
        params: with_to(voice(&[("ErrorCode", "11200"), ("ErrorUrl", error_url)]), to),
        signing: Signing::Token(TOKEN),
        raw_body: None,
    };
    let relayed = resolve_relative_urls(HEALTHY_TWIML, &healthy).into_owned();
    let answer = send(&base, &recover(&healthy, "+14155550177")).await;
    check(
        "recovery relays a healthy primary",
        &Expect::Twiml(relayed),
        &answer,
        &mut failures,
    );
    let hits = primary.hits();
    match hits.iter().find(|hit| hit.path == "/healthy") {
        Some(hit) if hit.verified && hit.params.get("ErrorCode").is_none() && hit.params.call_sid().is_some() => {}
        other => failures.push(format!(
            "recovery: the primary should get the original, freshly signed params; got {other:?}"
        )),
    }
    let before = primary.hits().len();
    let elsewhere = healthy.replace("127.0.0.1", "localhost");
    let answer = send(&base, &recover(&elsewhere, "+14155550177")).await;
    check(
        "recovery refuses a host off the allowlist",
        &Expect::Twiml(config.fallback(Some(Channel::Voice), None).twiml.to_owned()),
        &answer,
        &mut failures,
    );
    if primary.hits().len() != before {
        failures.push("recovery: a non-allowlisted host was requested".to_owned());
    }
    let broken = format!("{}/broken", primary.base_url);
    let answer = send(&base, &recover(&broken, "+14155550199")).await;
    check(
        "recovery falls back when the primary is still broken (per-number answer)",
        &Expect::Twiml(
            config
                .fallback(Some(Channel::Voice), Some("+14155550199"))
                .twiml
                .to_owned(),
        ),
        &answer,
        &mut failures,
    );
    if !primary.hits().iter().any(|hit| hit.path == "/broken") {
        failures.push("recovery: the broken primary was never tried".to_owned());
    }
    // A redirect is never followed: the answer is the fallback, and its target is not requested.
    let healthy_hits = || primary.hits().iter().filter(|hit| hit.path == "/healthy").count();
    let before = healthy_hits();
    let answer = send(
        &base,
        &recover(&format!("{}/redirect", primary.base_url), "+14155550177"),
    )
    .await;
    check(
        "recovery does not follow a redirect",
        &Expect::Twiml(config.fallback(Some(Channel::Voice), None).twiml.to_owned()),
        &answer,
        &mut failures,
    );
    if !primary.hits().iter().any(|hit| hit.path == "/redirect") {
        failures.push("recovery: the redirecting primary was never tried".to_owned());
    }
    if healthy_hits() != before {
        failures.push("recovery: a redirect was followed".to_owned());
    }
    // A primary answering a body that never ends: read to the limit, judged too large (the log
    // says so below; without the limit it would end at the recovery deadline instead).
    let answer = send(
        &base,
        &recover(&format!("{}/endless", primary.base_url), "+14155550177"),
    )
    .await;
    check(
        "recovery stops reading an endless answer",
        &Expect::Twiml(config.fallback(Some(Channel::Voice), None).twiml.to_owned()),
        &answer,
        &mut failures,
    );
    checked += 5;

    // Refused requests cause nothing, even pointing at the allowlisted, healthy primary.
    let hits_before = primary.hits().len();
    for (index, signing) in [
        Signing::None,
        Signing::Forged,
        Signing::Token("not-the-token"),
        Signing::Tampered,
    ]
    .into_iter()
    .enumerate()
    {
        let code = ["11951", "11952", "11953", "11954"][index];
        let request = CaseRequest {
            params: with_to(
                voice(&[("ErrorCode", code), ("ErrorUrl", healthy.as_str())]),
                "+14155550177",
            ),
            signing,
            ..recover(&healthy, "+14155550177")
        };
        let answer = send(&base, &request).await;
        check(
            "a refused request with an allowlisted ErrorUrl",
            &Expect::Forbidden,
            &answer,
            &mut failures,
        );
        checked += 1;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    if primary.hits().len() != hits_before {
        failures.push("refused requests: the primary was requested (recovery without a valid signature)".to_owned());
    }
    if alerts.alerts().iter().any(|alert| {
        ["11951", "11952", "11953", "11954"]
            .iter()
            .any(|code| !alert["error_codes"][*code].is_null())
    }) {
        failures.push("refused requests: a notification counted one".to_owned());
    }

    // A huge chunked body (no Content-Length) is refused without being kept, like a declared one:
    // read whole, this correctly signed voice request would get the voice fallback instead.
    let huge = huge_voice_form();
    let signature = compute_signature(TOKEN, &format!("{base}/chunked"), &Params::from_form(&huge));
    let answer = send_chunked(&base, "/chunked", &huge, Some(&signature)).await;
    check(
        "a huge chunked body is refused (403)",
        &Expect::Forbidden,
        &answer,
        &mut failures,
    );
    checked += 1;
    // The log is written a moment after the answer: wait for the endless case's line.
    for _ in 0..100 {
        if log_text(&signed).contains("rejected: 11750") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let signed_logs = log_text(&signed);
    let has_logs = signed.logs.is_some();
    let signed_log_is_empty = signed
        .logs
        .as_ref()
        .is_none_or(|path| std::fs::read_to_string(path).map_or(true, |text| text.trim().is_empty()));
    drop(signed);
    if has_logs && !signed_logs.contains("rejected: 11750") {
        failures.push("recovery: the endless answer was not cut at the 64 KB limit (no 11750 in the log)".to_owned());
    }
    for token in [TOKEN, SECONDARY_TOKEN] {
        if signed_logs.contains(token) {
            failures.push("logs: the auth token appears in the endpoint's log".to_owned());
        }
    }

    let tokenless = launcher.launch(&toml, &[]).await;
    let alerts_before = alerts.alerts().len();
    for case in tokenless_cases(&config) {
        let answer = send(&tokenless.base_url, &case.request).await;
        check(case.name, &case.expect, &answer, &mut failures);
        checked += 1;
    }
    let answer = send_chunked(&tokenless.base_url, "/chunked", &huge, None).await;
    check(
        "no token: a huge chunked body gets <Response/>",
        &Expect::Twiml(UNKNOWN_CHANNEL_TWIML.to_owned()),
        &answer,
        &mut failures,
    );
    checked += 1;
    tokio::time::sleep(Duration::from_millis(300)).await;
    if alerts.alerts().len() != alerts_before {
        failures.push("no token: an alert was sent".to_owned());
    }
    let tokenless_logs = log_text(&tokenless);
    drop(tokenless);
    if signed_log_is_empty && launcher.name().contains("Worker") {
        failures.push("logs: the Worker's log is empty".to_owned());
    }

    eprintln!(
        "{}: {checked} cases checked, {} failures",
        launcher.name(),
        failures.len()
    );
    if !failures.is_empty() {
        let logs = [signed_logs, tokenless_logs].concat();
        panic!(
            "{} against {}:\n{}{logs}",
            failures.len(),
            launcher.name(),
            failures.join("\n")
        );
    }
}
