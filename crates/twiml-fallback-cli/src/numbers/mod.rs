//! `twiml-fallback numbers audit` and `numbers set`, through Twilio's REST APIs: the 2010 API
//! (numbers, Applications), Messaging v1 (Messaging Services) and Trunking v1 (SIP trunks).
//!
//! The rules — who answers a number, what to update, what to probe — are the core's
//! ([`twiml_fallback::numbers`]); this module reads the account, performs the updates and the
//! probes, and prints.

mod audit;
mod probe;
mod set;

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use twiml_fallback::numbers::{Account, Api, Change, Listing, MessagingService, Resource, next_page};

use crate::cli::ApiArgs;
use crate::error::CliError;
use crate::http_client;

pub(crate) use audit::audit;
pub(crate) use set::set;

/// Twilio's error body.
#[derive(serde::Deserialize)]
struct ApiError {
    code: Option<u64>,
    message: Option<String>,
}

/// An authenticated connection to Twilio's APIs.
struct Client {
    http: reqwest::Client,
    /// One base per [`Api`], in [`Api::ALL`]'s order.
    bases: [String; 3],
    account_sid: String,
    user: String,
    password: String,
    /// The auth token, when that is the credential (probes are signed with it).
    auth_token: Option<String>,
}

impl Client {
    fn new(args: &ApiArgs) -> Result<Self, CliError> {
        let account_sid =
            args.account_sid.clone().filter(|sid| !sid.is_empty()).ok_or_else(|| {
                CliError::new("no account SID").hint("set TWILIO_ACCOUNT_SID or pass --account-sid AC…")
            })?;
        check_account_sid(&account_sid)?;
        let auth_token = args.auth_token.clone().filter(|token| !token.is_empty());
        let (user, password) = match (&args.api_key, &args.api_secret, &auth_token) {
            (Some(key), Some(secret), _) if !key.is_empty() => (key.clone(), secret.clone()),
            (Some(_), None, _) => {
                return Err(CliError::new("TWILIO_API_KEY is set but TWILIO_API_SECRET is not")
                    .hint("set both, or use TWILIO_AUTH_TOKEN"));
            }
            (_, _, Some(token)) => (account_sid.clone(), token.clone()),
            _ => {
                return Err(CliError::new("no credentials")
                    .hint("set TWILIO_AUTH_TOKEN, or TWILIO_API_KEY and TWILIO_API_SECRET"));
            }
        };
        let bases = match &args.api_base {
            Some(base) => {
                let base = twiml_fallback::replay::api_base(base)
                    .map_err(|error| CliError::new(format!("--api-base: {error}")))?;
                [base.clone(), base.clone(), base]
            }
            None => Api::ALL.map(|api| api.default_base().to_owned()),
        };
        let http = http_client::client(0, http_client::USER_AGENT).map_err(CliError::new)?;
        Ok(Self {
            http,
            bases,
            account_sid,
            user,
            password,
            auth_token,
        })
    }

    fn base(&self, api: Api) -> &str {
        &self.bases[Api::ALL.iter().position(|each| *each == api).unwrap_or(0)]
    }

    /// Every item of a listing, following its pages on the listing's own base only.
    async fn list<T: DeserializeOwned>(&self, listing: &Listing, what: &str) -> Result<Vec<T>, CliError> {
        let base = self.base(listing.api);
        let mut items = Vec::new();
        let mut next = Some(format!("{base}{}", listing.path));
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 10_000 {
                return Err(CliError::new(format!(
                    "the API kept returning pages of {what}; stopped after 10,000"
                )));
            }
            let response = self
                .http
                .get(&url)
                .basic_auth(&self.user, Some(&self.password))
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map_err(|error| {
                    CliError::new(format!(
                        "cannot reach the Twilio API at {base}: {}",
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
                    "listing {what} failed: HTTP {}{}: {message}",
                    status.as_u16(),
                    code.map(|code| format!(" (Twilio error {code})")).unwrap_or_default()
                ))
                .hint(hint));
            }
            let page: Value = serde_json::from_str(&text)
                .map_err(|error| CliError::new(format!("the API's answer listing {what} is not JSON: {error}")))?;
            let Some(found) = page.get(listing.key).and_then(Value::as_array) else {
                return Err(CliError::new(format!(
                    "the API's answer listing {what} has no {:?} array",
                    listing.key
                )));
            };
            for item in found {
                items.push(serde_json::from_value(item.clone()).map_err(|error| {
                    CliError::new(format!("the API listed {what} in an unexpected shape: {error}"))
                })?);
            }
            next = next_page(base, &page).map_err(CliError::new)?;
        }
        Ok(items)
    }

    /// The numbers, and what the core says their routes need ([`Listing::after_numbers`]):
    /// Applications, SIP trunks, every Messaging Service with the numbers its own list holds.
    async fn account(&self) -> Result<Account, CliError> {
        let mut account = Account {
            numbers: self.list(&Listing::numbers(&self.account_sid), "numbers").await?,
            ..Account::default()
        };
        for listing in Listing::after_numbers(&self.account_sid, &account.numbers) {
            match listing.of {
                Resource::Applications => account.applications = self.list(&listing, "Applications").await?,
                Resource::Trunks => account.trunks = self.list(&listing, "SIP trunks").await?,
                Resource::Services => {
                    let listed: Vec<MessagingService> = self.list(&listing, "Messaging Services").await?;
                    for service in listed {
                        let members = Listing::service_numbers(&service.sid).map_err(CliError::new)?;
                        let what = format!("the numbers of Messaging Service {}", service.sid);
                        account.services.push((service, self.list(&members, &what).await?));
                    }
                }
                Resource::Numbers | Resource::ServiceNumbers => {}
            }
        }
        Ok(account)
    }

    /// Performs one planned update; `Err` carries Twilio's code and message.
    async fn update(&self, change: &Change) -> Result<(), (Option<u64>, String)> {
        let url = format!("{}{}", self.base(change.api), change.path);
        let body =
            twiml_fallback::webhook::Params::from_pairs(change.fields.iter().map(|(k, v)| (*k, v.as_str()))).to_form();
        let response = self
            .http
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

#[cfg(test)]
mod tests {
    use super::*;

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
