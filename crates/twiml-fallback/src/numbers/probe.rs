//! `numbers audit --probe`: one synthetic fallback request per distinct fallback, as Twilio would
//! send it, marked with a signed [`PROBE_PARAM`] so that a twiml-fallback endpoint answers it
//! without keeping, alerting or recovering.

use crate::Channel;
use crate::numbers::resources::Account;
use crate::numbers::route::{Expect, Router, RouterKind, Status};
use crate::webhook::{PROBE_PARAM, Params};

/// The `From` of a probe: Twilio's magic test number, which no real person has.
pub const PROBE_FROM: &str = "+15005550006";

/// The `ErrorCode` of a probe: what Twilio sends when the primary failed to answer.
pub const PROBE_ERROR_CODE: &str = "11200";

/// How long Twilio waits for a webhook's answer: a probe's budget.
pub const PROBE_BUDGET: std::time::Duration = std::time::Duration::from_secs(15);

/// How a probe went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// An answer Twilio runs for the channel.
    Valid,
    /// A 2xx that Twilio would fail (malformed TwiML, wrong Content-Type, empty, too large).
    Invalid,
    /// A non-2xx status.
    HttpError,
    /// No answer within the budget (Twilio's 15 s, or the URL's `#rt=`/`#tt=` override).
    Timeout,
    /// No connection: DNS, refused, TLS.
    Unreachable,
    /// A method Twilio does not use (neither `GET` nor `POST`).
    BadMethod,
}

impl ProbeOutcome {
    /// Judges a probe from what came back: the status (none when no answer came), whether the
    /// answer passed the channel's answer rules, whether the wait ran out.
    ///
    /// ```
    /// use twiml_fallback::numbers::ProbeOutcome;
    ///
    /// assert_eq!(ProbeOutcome::judge(Some(200), true, false), ProbeOutcome::Valid);
    /// assert_eq!(ProbeOutcome::judge(Some(200), false, false), ProbeOutcome::Invalid);
    /// assert_eq!(ProbeOutcome::judge(Some(500), false, false), ProbeOutcome::HttpError);
    /// assert_eq!(ProbeOutcome::judge(None, false, true), ProbeOutcome::Timeout);
    /// assert_eq!(ProbeOutcome::judge(None, false, false), ProbeOutcome::Unreachable);
    /// ```
    pub fn judge(status: Option<u16>, accepted: bool, timed_out: bool) -> Self {
        match status {
            Some(_) if accepted => ProbeOutcome::Valid,
            Some(status) if !(200..300).contains(&status) => ProbeOutcome::HttpError,
            Some(_) => ProbeOutcome::Invalid,
            None if timed_out => ProbeOutcome::Timeout,
            None => ProbeOutcome::Unreachable,
        }
    }

    /// `valid`, `invalid`, `http-error`, `timeout`, `unreachable`, `bad-method`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeOutcome::Valid => "valid",
            ProbeOutcome::Invalid => "invalid",
            ProbeOutcome::HttpError => "http-error",
            ProbeOutcome::Timeout => "timeout",
            ProbeOutcome::Unreachable => "unreachable",
            ProbeOutcome::BadMethod => "bad-method",
        }
    }
}

/// One fallback to probe and what it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The channel Twilio requests it for.
    pub channel: Channel,
    /// The fallback URL.
    pub url: String,
    /// The method Twilio uses (`POST` or `GET`).
    pub method: String,
    /// The primary it stands in for (`ErrorUrl`); `None` for a SIP trunk's disaster recovery,
    /// which Twilio requests like any call's webhook once SIP origination fails (no `ErrorCode`,
    /// no `ErrorUrl`).
    pub error_url: Option<String>,
    /// The Messaging Service the first covered number's messages go through (Twilio adds
    /// `MessagingServiceSid` to their webhooks).
    pub messaging_service_sid: Option<String>,
    /// The number the probe calls (`To`): the first one covered.
    pub to: String,
    /// Every number (E.164) whose route leads to this fallback.
    pub numbers: Vec<String>,
    /// The resources that name it.
    pub routers: Vec<Router>,
}

/// The fallbacks Twilio would request for the account, each once: one per distinct channel,
/// URL and method, in the order the numbers list them. Routes without a fallback, and services
/// that deliver nothing, have nothing to probe.
pub fn probe_targets(account: &Account) -> Vec<ProbeTarget> {
    let mut targets: Vec<ProbeTarget> = Vec::new();
    for routes in account.audit(&Expect::default()) {
        for route in routes.routes() {
            let Some(url) = &route.fallback_url else {
                continue;
            };
            if route.status != Status::Protected {
                continue;
            }
            let phone = &routes.number.phone_number;
            let method = route.fallback_method.clone().unwrap_or_else(|| "POST".to_owned());
            match targets
                .iter_mut()
                .find(|target| target.channel == route.channel && &target.url == url && target.method == method)
            {
                Some(target) => {
                    if !target.numbers.contains(phone) {
                        target.numbers.push(phone.clone());
                    }
                    if !target.routers.contains(&route.router) {
                        target.routers.push(route.router.clone());
                    }
                }
                None => targets.push(ProbeTarget {
                    channel: route.channel,
                    url: url.clone(),
                    method,
                    error_url: route.url.clone(),
                    messaging_service_sid: match (&route.router, &route.deferring_service) {
                        (router, _) if router.kind == RouterKind::MessagingService => Some(router.sid.clone()),
                        (_, Some(service)) => Some(service.sid.clone()),
                        _ => None,
                    },
                    to: phone.clone(),
                    numbers: vec![phone.clone()],
                    routers: vec![route.router.clone()],
                }),
            }
        }
    }
    targets
}

/// A probe id for a number: `probe-` and 16 hex digits of `seed` (the caller's randomness).
pub fn probe_id(seed: u64) -> String {
    format!("probe-{seed:016x}")
}

impl ProbeTarget {
    /// The method to send the probe with, `None` when Twilio would use neither `GET` nor `POST`.
    pub fn http_method(&self) -> Option<http::Method> {
        match self.method.as_str() {
            "GET" => Some(http::Method::GET),
            "POST" => Some(http::Method::POST),
            _ => None,
        }
    }

    /// The parameters Twilio sends to this fallback for `account_sid`, plus the probe's id. The
    /// call or message SID is synthetic (`CA`/`SM` and 32 hex digits from the id); `ErrorCode`
    /// (11200) and `ErrorUrl` come with a primary to stand in for.
    ///
    /// ```
    /// use twiml_fallback::Channel;
    /// use twiml_fallback::numbers::{probe_id, ProbeTarget};
    ///
    /// let target = ProbeTarget {
    ///     channel: Channel::Messaging,
    ///     url: "https://fallback.example.com/sms".into(),
    ///     method: "POST".into(),
    ///     error_url: Some("https://app.example.com/sms".into()),
    ///     messaging_service_sid: None,
    ///     to: "+14155550101".into(),
    ///     numbers: vec!["+14155550101".into()],
    ///     routers: vec![],
    /// };
    /// let params = target.params("AC0123456789abcdef0123456789abcdef", &probe_id(42));
    /// assert_eq!(params.channel(), Some(Channel::Messaging));
    /// assert_eq!(params.to(), Some("+14155550101"));
    /// assert_eq!(params.get("ErrorUrl"), Some("https://app.example.com/sms"));
    /// assert_eq!(params.probe(), Some("probe-000000000000002a"));
    /// ```
    pub fn params(&self, account_sid: &str, probe_id: &str) -> Params {
        let id = probe_id.rsplit('-').next().unwrap_or(probe_id);
        let digits: String = id.chars().filter(char::is_ascii_hexdigit).collect();
        let hex = format!("{:0>32}", &digits[digits.len().saturating_sub(32)..]);
        let mut params = match self.channel {
            Channel::Voice => Params::from_pairs([
                ("AccountSid", account_sid.to_owned()),
                ("ApiVersion", "2010-04-01".to_owned()),
                ("CallSid", format!("CA{hex}")),
                ("CallStatus", "ringing".to_owned()),
                ("Called", self.to.clone()),
                ("Caller", PROBE_FROM.to_owned()),
                ("Direction", "inbound".to_owned()),
                ("From", PROBE_FROM.to_owned()),
                ("To", self.to.clone()),
            ]),
            Channel::Messaging => Params::from_pairs([
                ("AccountSid", account_sid.to_owned()),
                ("ApiVersion", "2010-04-01".to_owned()),
                ("Body", "twiml-fallback probe".to_owned()),
                ("From", PROBE_FROM.to_owned()),
                ("MessageSid", format!("SM{hex}")),
                ("NumMedia", "0".to_owned()),
                ("NumSegments", "1".to_owned()),
                ("SmsMessageSid", format!("SM{hex}")),
                ("SmsSid", format!("SM{hex}")),
                ("SmsStatus", "received".to_owned()),
                ("To", self.to.clone()),
            ]),
        };
        if let (Channel::Messaging, Some(service)) = (self.channel, &self.messaging_service_sid) {
            params.push("MessagingServiceSid", service.clone());
        }
        if let Some(error_url) = &self.error_url {
            params.push("ErrorCode", PROBE_ERROR_CODE);
            params.push("ErrorUrl", error_url.clone());
        }
        params.push(PROBE_PARAM, probe_id);
        params
    }
}
