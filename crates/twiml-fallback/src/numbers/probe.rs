//! `numbers audit --probe`: one synthetic fallback request per distinct fallback, as Twilio would
//! send it, marked with a signed [`PROBE_PARAM`] so that a twiml-fallback endpoint answers it
//! without keeping, alerting or recovering.

use crate::Channel;
use crate::numbers::resources::Account;
use crate::numbers::route::{Expect, Router, Status};
use crate::webhook::{PROBE_PARAM, Params};

/// The `From` of a probe: Twilio's magic test number, which no real person has.
pub const PROBE_FROM: &str = "+15005550006";

/// The `ErrorCode` of a probe: what Twilio sends when the primary failed to answer.
pub const PROBE_ERROR_CODE: &str = "11200";

/// One fallback to probe and what it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The channel Twilio requests it for.
    pub channel: Channel,
    /// The fallback URL.
    pub url: String,
    /// The method Twilio uses (`POST` or `GET`).
    pub method: String,
    /// The primary it stands in for (`ErrorUrl`); `None` for a SIP trunk's disaster recovery.
    pub error_url: Option<String>,
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
            match targets.iter_mut().find(|target| {
                target.channel == route.channel && &target.url == url && target.method == route.fallback_method
            }) {
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
                    method: route.fallback_method.clone(),
                    error_url: route.url.clone(),
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
    /// The parameters Twilio sends to this fallback for `account_sid`, plus the probe's id. The
    /// call or message SID is synthetic (`CA`/`SM` and 32 hex digits from the id).
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
        params.push("ErrorCode", PROBE_ERROR_CODE);
        if let Some(error_url) = &self.error_url {
            params.push("ErrorUrl", error_url.clone());
        }
        params.push(PROBE_PARAM, probe_id);
        params
    }
}
