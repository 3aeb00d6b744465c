//! The REST resources that decide who answers a number, as Twilio's APIs list them (snake_case
//! JSON), and where each lives: which API host, which path, how its pages link.

use serde::Deserialize;

/// The three Twilio APIs `numbers` reads and writes. `numbers --api-base` replaces all three bases
/// with one (their paths never collide: `/2010-04-01/…`, `/v1/Services…`, `/v1/Trunks…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Api {
    /// `https://api.twilio.com`: numbers and Applications (`/2010-04-01/Accounts/{AC}/…`).
    Core,
    /// `https://messaging.twilio.com`: Messaging Services and their numbers (`/v1/Services…`).
    Messaging,
    /// `https://trunking.twilio.com`: Elastic SIP trunks (`/v1/Trunks…`).
    Trunking,
}

impl Api {
    /// Every API, in the order they are read.
    pub const ALL: [Api; 3] = [Api::Core, Api::Messaging, Api::Trunking];

    /// Twilio's base URL for this API.
    pub fn default_base(self) -> &'static str {
        match self {
            Api::Core => "https://api.twilio.com",
            Api::Messaging => "https://messaging.twilio.com",
            Api::Trunking => "https://trunking.twilio.com",
        }
    }
}

/// What a listing lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// The account's numbers ([`IncomingNumber`]).
    Numbers,
    /// Its TwiML Applications ([`Application`]).
    Applications,
    /// Its Messaging Services ([`MessagingService`]).
    Services,
    /// One service's numbers ([`ServiceNumber`]).
    ServiceNumbers,
    /// Its SIP trunks ([`Trunk`]).
    Trunks,
}

/// One listing request: the API, the path of its first page, and the JSON key of its items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// What it lists.
    pub of: Resource,
    /// The API the listing is on.
    pub api: Api,
    /// The first page's path and query (`PageSize` the most each API allows).
    pub path: String,
    /// The key of the array of items in each page.
    pub key: &'static str,
}

impl Listing {
    /// The account's numbers.
    pub fn numbers(account_sid: &str) -> Self {
        Self {
            of: Resource::Numbers,
            api: Api::Core,
            path: format!("/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers.json?PageSize=1000"),
            key: "incoming_phone_numbers",
        }
    }

    /// The account's TwiML Applications.
    pub fn applications(account_sid: &str) -> Self {
        Self {
            of: Resource::Applications,
            api: Api::Core,
            path: format!("/2010-04-01/Accounts/{account_sid}/Applications.json?PageSize=1000"),
            key: "applications",
        }
    }

    /// The account's Messaging Services.
    pub fn services() -> Self {
        Self {
            of: Resource::Services,
            api: Api::Messaging,
            path: "/v1/Services?PageSize=1000".to_owned(),
            key: "services",
        }
    }

    /// The numbers of one Messaging Service; `Err` when the SID is not fit for a path.
    pub fn service_numbers(service_sid: &str) -> Result<Self, String> {
        sid_for_path(service_sid, "MG")?;
        Ok(Self {
            of: Resource::ServiceNumbers,
            api: Api::Messaging,
            path: format!("/v1/Services/{service_sid}/PhoneNumbers?PageSize=1000"),
            key: "phone_numbers",
        })
    }

    /// What else the routes of `numbers` need, read after them: the Applications when a number
    /// names one (`AP…`), the SIP trunks when one names a trunk, and always the Messaging
    /// Services — their number lists, not a number's fields, say who is in a service (each
    /// service's list is [`Listing::service_numbers`]).
    pub fn after_numbers(account_sid: &str, numbers: &[IncomingNumber]) -> Vec<Self> {
        let names = |field: fn(&IncomingNumber) -> &Option<String>, prefix: &str| {
            numbers
                .iter()
                .any(|number| present(field(number)).is_some_and(|sid| sid.starts_with(prefix)))
        };
        let mut listings = Vec::new();
        if names(|number| &number.voice_application_sid, "AP") || names(|number| &number.sms_application_sid, "AP") {
            listings.push(Self::applications(account_sid));
        }
        if names(|number| &number.trunk_sid, "TK") {
            listings.push(Self::trunks());
        }
        listings.push(Self::services());
        listings
    }

    /// The account's Elastic SIP trunks.
    pub fn trunks() -> Self {
        Self {
            of: Resource::Trunks,
            api: Api::Trunking,
            path: "/v1/Trunks?PageSize=1000".to_owned(),
            key: "trunks",
        }
    }
}

/// Where the page after this one is: the 2010 API gives a path (`next_page_uri`, top level),
/// Messaging and Trunking v1 an absolute URL (`meta.next_page_url`). `Ok(None)` on the last page.
///
/// The credentials go with every page request, so a next page is followed only on the listing's
/// own `base`: a path is joined to it, an absolute URL must start with it; anything else is an
/// `Err` naming the link.
///
/// ```
/// use twiml_fallback::numbers::next_page;
/// use serde_json::json;
///
/// let base = "https://api.twilio.com";
/// let page = json!({"incoming_phone_numbers": [], "next_page_uri": "/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json?Page=1"});
/// assert_eq!(next_page(base, &page).unwrap().as_deref(), Some("https://api.twilio.com/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json?Page=1"));
/// let v1 = json!({"services": [], "meta": {"next_page_url": "https://messaging.twilio.com/v1/Services?Page=1"}});
/// assert!(next_page("https://messaging.twilio.com", &v1).unwrap().is_some());
/// assert!(next_page("https://messaging.twilio.com", &json!({"meta": {"next_page_url": "https://evil.example/v1"}})).is_err());
/// assert_eq!(next_page(base, &json!({"next_page_uri": null})), Ok(None));
/// ```
pub fn next_page(base: &str, page: &serde_json::Value) -> Result<Option<String>, String> {
    let base = base.trim_end_matches('/');
    let link = page
        .get("next_page_uri")
        .and_then(|value| value.as_str())
        .or_else(|| page.pointer("/meta/next_page_url").and_then(|value| value.as_str()))
        .map(str::trim)
        .filter(|link| !link.is_empty());
    match link {
        None => Ok(None),
        Some(path) if path.starts_with('/') && !path.starts_with("//") => Ok(Some(format!("{base}{path}"))),
        Some(url) if url.starts_with(&format!("{base}/")) => Ok(Some(url.to_owned())),
        Some(other) => Err(format!(
            "the API's next page {:?} leaves {base}: not following it with your credentials",
            other.chars().take(200).collect::<String>()
        )),
    }
}

/// A SID fit for a URL path: `prefix`, then letters and digits only. A SID goes into the path of
/// a credentialed request: a `/`, `?`, `%` or `..` in it (from a strange API answer) could aim
/// the request at another resource.
///
/// ```
/// use twiml_fallback::numbers::sid_for_path;
///
/// assert!(sid_for_path("MG0123456789abcdef0123456789abcdef", "MG").is_ok());
/// assert!(sid_for_path("MG1/../../Messages", "MG").is_err());
/// assert!(sid_for_path("AP1", "MG").is_err());
/// ```
pub fn sid_for_path<'a>(sid: &'a str, prefix: &str) -> Result<&'a str, String> {
    match sid.strip_prefix(prefix) {
        Some(rest) if !rest.is_empty() && rest.bytes().all(|byte| byte.is_ascii_alphanumeric()) => Ok(sid),
        _ => Err(format!(
            "{:?} is not a {prefix}… SID (letters and digits): not putting it in a request path",
            sid.chars().take(60).collect::<String>()
        )),
    }
}

/// The voice and messaging webhooks a number and a TwiML Application both carry, under the same
/// names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Webhooks {
    /// The voice webhook.
    pub voice_url: Option<String>,
    /// Its method.
    pub voice_method: Option<String>,
    /// The voice fallback.
    pub voice_fallback_url: Option<String>,
    /// Its method.
    pub voice_fallback_method: Option<String>,
    /// The messaging webhook.
    pub sms_url: Option<String>,
    /// Its method.
    pub sms_method: Option<String>,
    /// The messaging fallback.
    pub sms_fallback_url: Option<String>,
    /// Its method.
    pub sms_fallback_method: Option<String>,
}

/// One `IncomingPhoneNumber`, with the fields that decide who answers it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct IncomingNumber {
    /// `PN…`.
    pub sid: String,
    /// E.164.
    pub phone_number: String,
    /// The name given in the Console.
    pub friendly_name: Option<String>,
    /// The number's own webhooks (used when nothing else routes a channel).
    #[serde(flatten)]
    pub webhooks: Webhooks,
    /// `AP…`: an Application answers calls instead of the number's URLs.
    pub voice_application_sid: Option<String>,
    /// `AP…`: an Application answers messages; in practice a Messaging Service's `MG…` for its members.
    pub sms_application_sid: Option<String>,
    /// `TK…`: a SIP trunk takes the calls, ignoring every voice URL and Application.
    pub trunk_sid: Option<String>,
}

/// A TwiML Application.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Application {
    /// `AP…`.
    pub sid: String,
    /// Its name.
    pub friendly_name: Option<String>,
    /// Its webhooks.
    #[serde(flatten)]
    pub webhooks: Webhooks,
}

/// A Messaging Service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MessagingService {
    /// `MG…`.
    pub sid: String,
    /// Its name.
    pub friendly_name: Option<String>,
    /// The service's incoming-message webhook.
    pub inbound_request_url: Option<String>,
    /// Its method.
    pub inbound_method: Option<String>,
    /// The service's fallback.
    pub fallback_url: Option<String>,
    /// Its method.
    pub fallback_method: Option<String>,
    /// "Defer to sender's webhook": the member number's own webhook (or its Application) answers.
    /// Nullable in Twilio's description; `null` is the API's default, `false`.
    pub use_inbound_webhook_on_number: Option<bool>,
}

impl MessagingService {
    /// Whether the service hands its numbers' messages to each number's own webhook.
    pub fn defers_to_number(&self) -> bool {
        self.use_inbound_webhook_on_number == Some(true)
    }
}

/// One number of a Messaging Service (`/v1/Services/{MG}/PhoneNumbers`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ServiceNumber {
    /// `PN…`: the `IncomingPhoneNumber`'s SID.
    pub sid: String,
    /// E.164.
    pub phone_number: String,
}

/// An Elastic SIP trunk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Trunk {
    /// `TK…`.
    pub sid: String,
    /// Its name.
    pub friendly_name: Option<String>,
    /// TwiML Twilio fetches when origination to the trunk fails.
    pub disaster_recovery_url: Option<String>,
    /// Its method.
    pub disaster_recovery_method: Option<String>,
}

/// Everything read from the account: the numbers and what routes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// The account's numbers.
    pub numbers: Vec<IncomingNumber>,
    /// Its TwiML Applications.
    pub applications: Vec<Application>,
    /// Its Messaging Services, each with the numbers it lists.
    pub services: Vec<(MessagingService, Vec<ServiceNumber>)>,
    /// Its SIP trunks.
    pub trunks: Vec<Trunk>,
}

/// A text field as Twilio means it: absent, `null` and blank are all "not set".
pub(crate) fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|value| !value.is_empty())
}
