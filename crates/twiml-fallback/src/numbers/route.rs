//! Who answers a number, per channel, by Twilio's precedence; whether that is protected; what a
//! careful operator should be warned about.

use crate::Channel;
use crate::numbers::resources::{
    Account, Api, IncomingNumber, MessagingService, Trunk, Webhooks, present, sid_for_path,
};

/// The kind of resource whose URLs Twilio uses for a number's channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouterKind {
    /// The number's own URLs.
    Number,
    /// A TwiML Application (`AP…`).
    Application,
    /// A Messaging Service (`MG…`).
    MessagingService,
    /// An Elastic SIP trunk (`TK…`).
    Trunk,
}

impl RouterKind {
    /// The kind for people: `number`, `Application`, `Messaging Service`, `SIP trunk`.
    pub fn label(self) -> &'static str {
        match self {
            RouterKind::Number => "number",
            RouterKind::Application => "Application",
            RouterKind::MessagingService => "Messaging Service",
            RouterKind::Trunk => "SIP trunk",
        }
    }

    /// The SID prefix of the kind.
    pub fn prefix(self) -> &'static str {
        match self {
            RouterKind::Number => "PN",
            RouterKind::Application => "AP",
            RouterKind::MessagingService => "MG",
            RouterKind::Trunk => "TK",
        }
    }

    /// The API the resource lives on.
    pub fn api(self) -> Api {
        match self {
            RouterKind::Number | RouterKind::Application => Api::Core,
            RouterKind::MessagingService => Api::Messaging,
            RouterKind::Trunk => Api::Trunking,
        }
    }

    /// The path of the resource (to update it), after checking its SID is fit for a path.
    pub fn path(self, account_sid: &str, sid: &str) -> Result<String, String> {
        let sid = sid_for_path(sid, self.prefix())?;
        Ok(match self {
            RouterKind::Number => format!("/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers/{sid}.json"),
            RouterKind::Application => format!("/2010-04-01/Accounts/{account_sid}/Applications/{sid}.json"),
            RouterKind::MessagingService => format!("/v1/Services/{sid}"),
            RouterKind::Trunk => format!("/v1/Trunks/{sid}"),
        })
    }

    /// The update parameters (PascalCase, form-encoded) for a channel's fallback URL and method;
    /// `None` when the kind has no fallback for that channel.
    pub fn fallback_fields(self, channel: Channel) -> Option<(&'static str, &'static str)> {
        match (self, channel) {
            (RouterKind::Number | RouterKind::Application, Channel::Voice) => {
                Some(("VoiceFallbackUrl", "VoiceFallbackMethod"))
            }
            (RouterKind::Number | RouterKind::Application, Channel::Messaging) => {
                Some(("SmsFallbackUrl", "SmsFallbackMethod"))
            }
            (RouterKind::MessagingService, Channel::Messaging) => Some(("FallbackUrl", "FallbackMethod")),
            (RouterKind::Trunk, Channel::Voice) => Some(("DisasterRecoveryUrl", "DisasterRecoveryMethod")),
            _ => None,
        }
    }
}

/// The resource that routes a number's channel.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Router {
    /// Its kind.
    pub kind: RouterKind,
    /// Its SID.
    pub sid: String,
    /// Its name, when it has one.
    pub name: Option<String>,
}

impl Router {
    fn new(kind: RouterKind, sid: &str, name: &Option<String>) -> Self {
        Self {
            kind,
            sid: sid.to_owned(),
            name: present(name).map(str::to_owned),
        }
    }

    /// `Messaging Service MG… ("Alerts")`, `number PN…`.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!("{} {} ({name:?})", self.kind.label(), self.sid),
            None => format!("{} {}", self.kind.label(), self.sid),
        }
    }
}

/// Whether a failure of the primary reaches a fallback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// A primary and a fallback.
    Protected,
    /// A primary and no fallback: a failure is Twilio's stock error, or no reply.
    Unprotected,
    /// No primary URL: nothing to protect.
    NoWebhook,
    /// A Messaging Service with no inbound URL that does not defer to the number: Twilio
    /// delivers no inbound message anywhere.
    NotDelivered,
    /// The number names an Application, service or trunk the account's listing does not hold.
    Unknown,
}

impl Status {
    /// `protected`, `unprotected`, `no-webhook`, `not-delivered`, `unknown-resource`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Protected => "protected",
            Status::Unprotected => "unprotected",
            Status::NoWebhook => "no-webhook",
            Status::NotDelivered => "not-delivered",
            Status::Unknown => "unknown-resource",
        }
    }

    /// Whether the audit fails for it: unprotected, or not knowable.
    pub fn needs_attention(self) -> bool {
        matches!(self, Status::Unprotected | Status::Unknown)
    }
}

/// Something a careful operator wants to know about a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// The fallback is on the primary's host: an outage of that host takes both. Hosts are
    /// compared as written, case aside (a name and its address count as two hosts).
    SameHost {
        /// The shared host.
        host: String,
    },
    /// A URL Twilio requests is plain `http:`.
    PlainHttp {
        /// `primary` or `fallback`.
        which: &'static str,
    },
    /// Twilio will request the fallback with a method the endpoint does not expect.
    FallbackMethod {
        /// The method Twilio uses.
        method: String,
        /// The method expected.
        expected: String,
    },
    /// A Messaging Service that delivers inbound messages nowhere.
    ReceivesNothing,
    /// The number's `sms_application_sid` names a Messaging Service whose listing does not hold it.
    NotListedInService {
        /// The `MG…` named.
        service: String,
    },
    /// The number names a resource the account's listing does not hold.
    UnknownResource {
        /// The kind named.
        kind: RouterKind,
        /// The SID named.
        sid: String,
    },
}

impl Warning {
    /// A stable name for scripts: `same-host`, `plain-http`, `fallback-method`, `receives-nothing`,
    /// `not-listed-in-service`, `unknown-resource`.
    pub fn code(&self) -> &'static str {
        match self {
            Warning::SameHost { .. } => "same-host",
            Warning::PlainHttp { .. } => "plain-http",
            Warning::FallbackMethod { .. } => "fallback-method",
            Warning::ReceivesNothing => "receives-nothing",
            Warning::NotListedInService { .. } => "not-listed-in-service",
            Warning::UnknownResource { .. } => "unknown-resource",
        }
    }

    /// The warning in a sentence.
    pub fn message(&self) -> String {
        match self {
            Warning::SameHost { host } => {
                format!("the fallback is on the primary's host {host}: an outage of that host takes both")
            }
            Warning::PlainHttp { which } => format!(
                "the {which} URL is plain http: the request, its parameters and its signature travel unencrypted"
            ),
            Warning::FallbackMethod { method, expected } => format!(
                "Twilio will {method} the fallback, the endpoint expects {expected} (set the fallback method, or --expect-fallback-method)"
            ),
            Warning::ReceivesNothing => "the Messaging Service has no inbound URL and does not defer to the number's webhook: incoming messages are delivered nowhere".to_owned(),
            Warning::NotListedInService { service } => format!(
                "sms_application_sid names Messaging Service {service}, which does not list this number: routed by the number's own URLs"
            ),
            Warning::UnknownResource { kind, sid } => format!(
                "the number names {} {sid}, which the account's listing does not hold",
                kind.label()
            ),
        }
    }
}

/// What the audit expects of a fallback.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// The method the fallback endpoint expects (`POST`, `GET`); `None` accepts either.
    pub fallback_method: Option<String>,
}

/// What answers one channel of one number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The channel.
    pub channel: Channel,
    /// The resource whose URLs Twilio uses.
    pub router: Router,
    /// The Messaging Service the number is in when the service defers to the number's webhook.
    pub deferring_service: Option<Router>,
    /// The primary URL (`None` for a SIP trunk, whose primary is its SIP origination).
    pub url: Option<String>,
    /// The primary's method as Twilio uses it (`POST` when unset), when there is a primary URL.
    pub method: Option<String>,
    /// The fallback URL.
    pub fallback_url: Option<String>,
    /// The fallback's method as Twilio uses it (`POST` when unset), when there is a fallback URL.
    pub fallback_method: Option<String>,
    /// Whether a failure reaches the fallback.
    pub status: Status,
    /// What to look at.
    pub warnings: Vec<Warning>,
}

/// A channel as `numbers` names it, after Twilio's own fields: `voice` or `sms`.
pub fn channel_label(channel: Channel) -> &'static str {
    match channel {
        Channel::Voice => "voice",
        Channel::Messaging => "sms",
    }
}

/// A method as Twilio uses it: upper case, `POST` when unset.
fn method_of(value: &Option<String>) -> String {
    present(value).map_or_else(|| "POST".to_owned(), str::to_ascii_uppercase)
}

fn host_of(url: &str) -> Option<String> {
    crate::url::split(url).map(|parts| parts.host().to_ascii_lowercase())
}

/// An `http:` URL to another machine (to a loopback address it never crosses a network).
fn is_plain_http(url: &str) -> bool {
    crate::url::split(url)
        .is_some_and(|parts| parts.scheme().eq_ignore_ascii_case("http") && !crate::url::is_loopback_host(parts.host()))
}

struct Urls<'a> {
    url: Option<&'a str>,
    method: &'a Option<String>,
    fallback_url: Option<&'a str>,
    fallback_method: &'a Option<String>,
}

impl Route {
    fn of(channel: Channel, router: Router, urls: Urls<'_>, expect: &Expect) -> Self {
        let status = match (urls.url, urls.fallback_url) {
            (None, _) if router.kind != RouterKind::Trunk => Status::NoWebhook,
            (_, None) => Status::Unprotected,
            (_, Some(_)) => Status::Protected,
        };
        let mut route = Self {
            channel,
            router,
            deferring_service: None,
            url: urls.url.map(str::to_owned),
            method: urls.url.map(|_| method_of(urls.method)),
            fallback_url: urls.fallback_url.map(str::to_owned),
            fallback_method: urls.fallback_url.map(|_| method_of(urls.fallback_method)),
            status,
            warnings: Vec::new(),
        };
        if let Some(url) = urls.url
            && is_plain_http(url)
        {
            route.warnings.push(Warning::PlainHttp { which: "primary" });
        }
        if let Some(fallback) = urls.fallback_url {
            if is_plain_http(fallback) {
                route.warnings.push(Warning::PlainHttp { which: "fallback" });
            }
            if let (Some(primary), Some(fallback)) = (urls.url.and_then(host_of), host_of(fallback))
                && primary == fallback
            {
                route.warnings.push(Warning::SameHost { host: primary });
            }
            let method = method_of(urls.fallback_method);
            if let Some(expected) = &expect.fallback_method
                && !expected.eq_ignore_ascii_case(&method)
            {
                route.warnings.push(Warning::FallbackMethod {
                    method,
                    expected: expected.to_ascii_uppercase(),
                });
            }
        }
        route
    }

    fn unknown(channel: Channel, kind: RouterKind, sid: &str) -> Self {
        Self {
            channel,
            router: Router::new(kind, sid, &None),
            deferring_service: None,
            url: None,
            method: None,
            fallback_url: None,
            fallback_method: None,
            status: Status::Unknown,
            warnings: vec![Warning::UnknownResource {
                kind,
                sid: sid.to_owned(),
            }],
        }
    }

    /// A route by `webhooks` (a number's own, or an Application's) for `channel`.
    fn by_webhooks(channel: Channel, router: Router, webhooks: &Webhooks, expect: &Expect) -> Self {
        let urls = match channel {
            Channel::Voice => Urls {
                url: present(&webhooks.voice_url),
                method: &webhooks.voice_method,
                fallback_url: present(&webhooks.voice_fallback_url),
                fallback_method: &webhooks.voice_fallback_method,
            },
            Channel::Messaging => Urls {
                url: present(&webhooks.sms_url),
                method: &webhooks.sms_method,
                fallback_url: present(&webhooks.sms_fallback_url),
                fallback_method: &webhooks.sms_fallback_method,
            },
        };
        Route::of(channel, router, urls, expect)
    }

    fn trunk(trunk: &Trunk, expect: &Expect) -> Self {
        let urls = Urls {
            url: None,
            method: &None,
            fallback_url: present(&trunk.disaster_recovery_url),
            fallback_method: &trunk.disaster_recovery_method,
        };
        Route::of(
            Channel::Voice,
            Router::new(RouterKind::Trunk, &trunk.sid, &trunk.friendly_name),
            urls,
            expect,
        )
    }

    fn service(service: &MessagingService, expect: &Expect) -> Self {
        let urls = Urls {
            url: present(&service.inbound_request_url),
            method: &service.inbound_method,
            fallback_url: present(&service.fallback_url),
            fallback_method: &service.fallback_method,
        };
        let router = Router::new(RouterKind::MessagingService, &service.sid, &service.friendly_name);
        let mut route = Route::of(Channel::Messaging, router, urls, expect);
        if route.url.is_none() {
            route.status = Status::NotDelivered;
            route.warnings.push(Warning::ReceivesNothing);
        }
        route
    }

    /// The primary as shown: the URL, or what stands for it.
    pub fn primary_label(&self) -> &str {
        match (&self.url, self.router.kind) {
            (Some(url), _) => url,
            (None, RouterKind::Trunk) => "SIP origination",
            (None, _) => "-",
        }
    }
}

fn number_router(number: &IncomingNumber) -> Router {
    Router::new(RouterKind::Number, &number.sid, &None)
}

impl Account {
    /// The Messaging Service whose listing holds `number` (by SID, or by phone number when the
    /// listing's item has no SID).
    pub fn service_of(&self, number: &IncomingNumber) -> Option<&MessagingService> {
        self.services.iter().find_map(|(service, members)| {
            members
                .iter()
                .any(|member| {
                    (!member.sid.is_empty() && member.sid == number.sid)
                        || (!member.phone_number.is_empty() && member.phone_number == number.phone_number)
                })
                .then_some(service)
        })
    }

    /// What answers `number`'s `channel`, by Twilio's precedence:
    ///
    /// - voice: the number's SIP trunk, else its voice Application, else its own URLs;
    /// - messaging: the Messaging Service that lists it, unless the service defers to the
    ///   number's webhook; then (or outside a service) its messaging Application, else its own
    ///   URLs. A service with no inbound URL that does not defer delivers nothing.
    ///
    /// ```
    /// use twiml_fallback::Channel;
    /// use twiml_fallback::numbers::{Account, Expect, IncomingNumber, MessagingService, RouterKind, ServiceNumber, Status, Webhooks};
    ///
    /// let number = IncomingNumber {
    ///     sid: "PN1".into(),
    ///     phone_number: "+14155550101".into(),
    ///     webhooks: Webhooks { sms_url: Some("https://app.example.com/sms".into()), ..Default::default() },
    ///     ..Default::default()
    /// };
    /// let service = MessagingService {
    ///     sid: "MG1".into(),
    ///     inbound_request_url: Some("https://app.example.com/service".into()),
    ///     ..Default::default()
    /// };
    /// let member = ServiceNumber { sid: "PN1".into(), phone_number: "+14155550101".into() };
    /// let account = Account { numbers: vec![number.clone()], services: vec![(service, vec![member])], ..Default::default() };
    /// let route = account.route(&number, Channel::Messaging, &Expect::default());
    /// assert_eq!(route.router.kind, RouterKind::MessagingService);
    /// assert_eq!(route.status, Status::Unprotected);
    /// ```
    pub fn route(&self, number: &IncomingNumber, channel: Channel, expect: &Expect) -> Route {
        match channel {
            Channel::Voice => self.voice_route(number, expect),
            Channel::Messaging => self.messaging_route(number, expect),
        }
    }

    fn voice_route(&self, number: &IncomingNumber, expect: &Expect) -> Route {
        if let Some(sid) = present(&number.trunk_sid) {
            return match self.trunks.iter().find(|trunk| trunk.sid == sid) {
                Some(trunk) => Route::trunk(trunk, expect),
                None => Route::unknown(Channel::Voice, RouterKind::Trunk, sid),
            };
        }
        if let Some(sid) = present(&number.voice_application_sid) {
            return self.application_route(Channel::Voice, sid, expect);
        }
        Route::by_webhooks(Channel::Voice, number_router(number), &number.webhooks, expect)
    }

    fn application_route(&self, channel: Channel, sid: &str, expect: &Expect) -> Route {
        match self.applications.iter().find(|application| application.sid == sid) {
            Some(application) => Route::by_webhooks(
                channel,
                Router::new(RouterKind::Application, &application.sid, &application.friendly_name),
                &application.webhooks,
                expect,
            ),
            None => Route::unknown(channel, RouterKind::Application, sid),
        }
    }

    fn messaging_route(&self, number: &IncomingNumber, expect: &Expect) -> Route {
        let hint = present(&number.sms_application_sid);
        let mut not_listed = None;
        let service = match self.service_of(number) {
            Some(service) => Some(service),
            None => match hint.filter(|sid| sid.starts_with("MG")) {
                // The listing is the truth; the field is a hint. A hint to a service the
                // listing holds (without this number) is stale; one to a service the listing
                // lacks cannot be judged.
                Some(sid) if self.services.iter().any(|(service, _)| service.sid == sid) => {
                    not_listed = Some(sid.to_owned());
                    None
                }
                Some(sid) => return Route::unknown(Channel::Messaging, RouterKind::MessagingService, sid),
                None => None,
            },
        };
        let mut route = match service {
            Some(service) if !service.defers_to_number() => return Route::service(service, expect),
            _ => match hint.filter(|sid| sid.starts_with("AP")) {
                Some(sid) => self.application_route(Channel::Messaging, sid, expect),
                None => Route::by_webhooks(Channel::Messaging, number_router(number), &number.webhooks, expect),
            },
        };
        route.deferring_service =
            service.map(|service| Router::new(RouterKind::MessagingService, &service.sid, &service.friendly_name));
        if let Some(service) = not_listed {
            route.warnings.push(Warning::NotListedInService { service });
        }
        route
    }

    /// Every number with both its routes, in the listing's order.
    pub fn audit(&self, expect: &Expect) -> Vec<NumberRoutes<'_>> {
        self.numbers
            .iter()
            .map(|number| NumberRoutes {
                number,
                voice: self.route(number, Channel::Voice, expect),
                messaging: self.route(number, Channel::Messaging, expect),
            })
            .collect()
    }
}

/// A number and what answers each of its channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberRoutes<'a> {
    /// The number.
    pub number: &'a IncomingNumber,
    /// Its voice route.
    pub voice: Route,
    /// Its messaging route.
    pub messaging: Route,
}

impl NumberRoutes<'_> {
    /// Both routes, voice first.
    pub fn routes(&self) -> [&Route; 2] {
        [&self.voice, &self.messaging]
    }

    /// Whether the audit fails for this number.
    pub fn needs_attention(&self) -> bool {
        self.routes().iter().any(|route| route.status.needs_attention())
    }
}
