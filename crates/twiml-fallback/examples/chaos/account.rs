//! A stand-in for one Twilio account's REST resources, so `twiml-fallback numbers` can be tried
//! offline (`numbers audit --api-base http://127.0.0.1:3000`) and tested: numbers and TwiML
//! Applications (2010 API, `next_page_uri` paging), Messaging Services with their numbers
//! (Messaging v1, `meta.next_page_url` paging), SIP trunks (Trunking v1). Updates are applied
//! (PascalCase form fields onto the snake_case JSON), with Twilio's 21406 rule: a fallback URL
//! needs its primary URL. Shapes are those of Twilio's OpenAPI descriptions.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use serde_json::{Value, json};
use twiml_fallback::webhook::Params;

use super::ChaosBody;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The account SID of [`TwilioAccount::demo`].
pub(crate) const DEMO_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";

/// One request the stand-in received (read by the CLI's tests).
#[allow(dead_code)]
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) method: Method,
    /// Path and query.
    pub(crate) target: String,
    pub(crate) authorization: Option<String>,
}

/// A scripted failure of the next updates of one resource.
struct Failure {
    sid: String,
    status: StatusCode,
    code: u64,
    message: String,
}

struct State {
    account_sid: String,
    /// Accepted `Authorization` headers; `None` accepts any Basic credentials (the demo).
    authorizations: Option<Vec<String>>,
    page_size: usize,
    numbers: Vec<Value>,
    applications: Vec<Value>,
    /// Each service with its `phone_numbers` items.
    services: Vec<(Value, Vec<Value>)>,
    trunks: Vec<Value>,
    failures: Vec<Failure>,
    seen: Vec<Seen>,
    updates: Vec<(String, Vec<(String, String)>)>,
}

/// The stand-in: cheap to clone, all clones share one account.
#[derive(Clone)]
pub(crate) struct TwilioAccount {
    state: Arc<Mutex<State>>,
}

/// The update parameters each kind of resource takes.
const NUMBER_FIELDS: &[&str] = &[
    "FriendlyName",
    "VoiceUrl",
    "VoiceMethod",
    "VoiceFallbackUrl",
    "VoiceFallbackMethod",
    "SmsUrl",
    "SmsMethod",
    "SmsFallbackUrl",
    "SmsFallbackMethod",
];
const SERVICE_FIELDS: &[&str] = &[
    "FriendlyName",
    "InboundRequestUrl",
    "InboundMethod",
    "FallbackUrl",
    "FallbackMethod",
    "UseInboundWebhookOnNumber",
];
const TRUNK_FIELDS: &[&str] = &["FriendlyName", "DisasterRecoveryUrl", "DisasterRecoveryMethod"];

/// `VoiceFallbackUrl` → `voice_fallback_url`.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (index, character) in name.chars().enumerate() {
        if character.is_ascii_uppercase() && index > 0 {
            out.push('_');
        }
        out.push(character.to_ascii_lowercase());
    }
    out
}

fn json_response(status: StatusCode, value: &Value) -> Response<ChaosBody> {
    let mut response = Response::new(ChaosBody::Full(Some(Bytes::from(value.to_string()))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, "application/json".parse().expect("static header"));
    response
}

fn error(status: StatusCode, code: u64, message: &str) -> Response<ChaosBody> {
    json_response(
        status,
        &json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status.as_u16()}),
    )
}

fn not_found() -> Response<ChaosBody> {
    error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found")
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().trim().to_owned()
}

impl TwilioAccount {
    /// An account holding `fixture`'s `numbers`, `applications`, `services` (each with a
    /// `phone_numbers` array, served by the service's PhoneNumbers list) and `trunks`.
    pub(crate) fn new(account_sid: &str, fixture: &Value) -> Self {
        let list = |key: &str| fixture[key].as_array().cloned().unwrap_or_default();
        let services = list("services")
            .into_iter()
            .map(|mut service| {
                let members = service
                    .as_object_mut()
                    .and_then(|object| object.remove("phone_numbers"))
                    .and_then(|members| members.as_array().cloned())
                    .unwrap_or_default();
                (service, members)
            })
            .collect();
        Self {
            state: Arc::new(Mutex::new(State {
                account_sid: account_sid.to_owned(),
                authorizations: None,
                page_size: 50,
                numbers: list("numbers"),
                applications: list("applications"),
                services,
                trunks: list("trunks"),
                failures: Vec::new(),
                seen: Vec::new(),
                updates: Vec::new(),
            })),
        }
    }

    /// The demo account of the README: numbers of every kind, their webhooks on `app` (the chaos
    /// demo's own routes), fallbacks on `endpoint` (`twiml-fallback serve`) or broken on purpose.
    pub(crate) fn demo(app: &str, endpoint: &str) -> Self {
        let sid = |prefix: &str, n: u32| format!("{prefix}{n:032x}");
        let fixture = json!({
            "numbers": [
                {"sid": sid("PN", 1), "phone_number": "+14155550101", "friendly_name": "Support line",
                 "voice_url": format!("{app}/voice/ok"), "voice_method": "POST", "voice_fallback_url": format!("{endpoint}/voice"), "voice_fallback_method": "POST",
                 "sms_url": format!("{app}/sms/ok"), "sms_method": "POST", "sms_fallback_url": null, "sms_fallback_method": "POST",
                 "voice_application_sid": null, "sms_application_sid": sid("MG", 1), "trunk_sid": null},
                {"sid": sid("PN", 2), "phone_number": "+14155550102", "friendly_name": "Sales",
                 "voice_url": "", "voice_fallback_url": null, "sms_url": format!("{app}/sms/ok"), "sms_fallback_url": null,
                 "voice_application_sid": sid("AP", 1), "sms_application_sid": "", "trunk_sid": null},
                {"sid": sid("PN", 3), "phone_number": "+14155550103", "friendly_name": "Front desk",
                 "voice_url": "", "voice_fallback_url": null, "sms_url": "", "sms_fallback_url": null,
                 "voice_application_sid": sid("AP", 1), "sms_application_sid": sid("MG", 1), "trunk_sid": null},
                {"sid": sid("PN", 4), "phone_number": "+14155550104", "friendly_name": "Office PBX",
                 "voice_url": format!("{app}/voice/ok"), "voice_fallback_url": null, "sms_url": "", "sms_fallback_url": null,
                 "voice_application_sid": null, "sms_application_sid": sid("MG", 2), "trunk_sid": sid("TK", 1)},
                {"sid": sid("PN", 5), "phone_number": "+14155550105", "friendly_name": "Old line",
                 "voice_url": format!("{app}/voice/ok"), "voice_fallback_url": format!("{app}/voice/status-500"), "voice_fallback_method": "POST",
                 "sms_url": null, "sms_fallback_url": null, "voice_application_sid": null, "sms_application_sid": null, "trunk_sid": null},
                {"sid": sid("PN", 6), "phone_number": "+14155550106", "friendly_name": "Alerts",
                 "voice_url": null, "voice_fallback_url": null, "sms_url": format!("{app}/sms/ok"), "sms_fallback_url": format!("{endpoint}/sms"),
                 "sms_fallback_method": "GET", "voice_application_sid": null, "sms_application_sid": sid("MG", 3), "trunk_sid": null}
            ],
            "applications": [
                {"sid": sid("AP", 1), "friendly_name": "Main IVR", "voice_url": format!("{app}/voice/status-500"), "voice_method": "POST",
                 "voice_fallback_url": null, "voice_fallback_method": "POST", "sms_url": null, "sms_fallback_url": null}
            ],
            "services": [
                {"sid": sid("MG", 1), "friendly_name": "Customer care", "inbound_request_url": format!("{app}/sms/ok"), "inbound_method": "POST",
                 "fallback_url": null, "fallback_method": "POST", "use_inbound_webhook_on_number": false,
                 "phone_numbers": [{"sid": sid("PN", 1), "phone_number": "+14155550101"}, {"sid": sid("PN", 3), "phone_number": "+14155550103"}]},
                {"sid": sid("MG", 2), "friendly_name": "Marketing", "inbound_request_url": null, "fallback_url": null,
                 "use_inbound_webhook_on_number": false, "phone_numbers": [{"sid": sid("PN", 4), "phone_number": "+14155550104"}]},
                {"sid": sid("MG", 3), "friendly_name": "Alerts", "inbound_request_url": null, "fallback_url": null,
                 "use_inbound_webhook_on_number": true, "phone_numbers": [{"sid": sid("PN", 6), "phone_number": "+14155550106"}]}
            ],
            "trunks": [
                {"sid": sid("TK", 1), "friendly_name": "Office PBX", "disaster_recovery_url": format!("{app}/voice/lowercase"), "disaster_recovery_method": "POST"}
            ]
        });
        Self::new(DEMO_ACCOUNT_SID, &fixture).page_size(2)
    }

    /// Items per page of every listing (whatever `PageSize` asks), to exercise paging.
    pub(crate) fn page_size(self, size: usize) -> Self {
        self.lock().page_size = size.max(1);
        self
    }

    /// Accepts only these `Authorization` headers (`Basic …`); others get 401 / 20003.
    #[allow(dead_code)] // the CLI's tests script and read the account
    pub(crate) fn require_authorization(self, accepted: &[&str]) -> Self {
        self.lock().authorizations = Some(accepted.iter().map(|value| (*value).to_owned()).collect());
        self
    }

    /// The next update of `sid` fails with `status`, Twilio's `code` and `message`.
    #[allow(dead_code)] // the CLI's tests script and read the account
    pub(crate) fn fail_update(&self, sid: &str, status: StatusCode, code: u64, message: &str) {
        self.lock().failures.push(Failure {
            sid: sid.to_owned(),
            status,
            code,
            message: message.to_owned(),
        });
    }

    /// Every request received, in order.
    #[allow(dead_code)] // the CLI's tests script and read the account
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// The updates applied: each resource's SID and its form fields, in order.
    #[allow(dead_code)] // the CLI's tests script and read the account
    pub(crate) fn updates(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.lock().updates.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `path` is one of the stand-in's resources.
    pub(crate) fn handles(path: &str) -> bool {
        (path.starts_with("/2010-04-01/Accounts/") && !path.ends_with("/Messages.json"))
            || path.starts_with("/v1/Services")
            || path.starts_with("/v1/Trunks")
    }

    /// Answers one request.
    pub(crate) async fn call<B>(self, request: Request<B>) -> Result<Response<ChaosBody>, BoxError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        use http_body_util::BodyExt;

        let (parts, body) = request.into_parts();
        let bytes = http_body_util::Limited::new(body, 1 << 20)
            .collect()
            .await
            .map_err(|error| -> BoxError { error })?
            .to_bytes();
        let authorization = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let host = parts
            .headers
            .get(HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("127.0.0.1")
            .to_owned();
        let target = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |target| target.as_str().to_owned());
        let mut state = self.lock();
        state.seen.push(Seen {
            method: parts.method.clone(),
            target,
            authorization: authorization.clone(),
        });
        let authorized = match (&state.authorizations, &authorization) {
            (_, None) => false,
            (None, Some(value)) => value.starts_with("Basic "),
            (Some(accepted), Some(value)) => accepted.contains(value),
        };
        if !authorized {
            return Ok(error(StatusCode::UNAUTHORIZED, 20003, "Authenticate"));
        }
        let page: usize = Params::from_query(parts.uri.query().unwrap_or(""))
            .get("Page")
            .and_then(|page| page.parse().ok())
            .unwrap_or(0);
        let path = parts.uri.path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let account = state.account_sid.clone();
        let form = Params::from_form(&bytes);
        Ok(match (&parts.method, segments.as_slice()) {
            (&Method::GET, ["2010-04-01", "Accounts", sid, "IncomingPhoneNumbers.json"]) if *sid == account => {
                state.page_2010(&state.numbers, "incoming_phone_numbers", &path, page)
            }
            (&Method::GET, ["2010-04-01", "Accounts", sid, "Applications.json"]) if *sid == account => {
                state.page_2010(&state.applications, "applications", &path, page)
            }
            (&Method::POST, ["2010-04-01", "Accounts", sid, "IncomingPhoneNumbers", file]) if *sid == account => {
                let sid = file.trim_end_matches(".json").to_owned();
                state.update(Kind::Number, &sid, &form)
            }
            (&Method::POST, ["2010-04-01", "Accounts", sid, "Applications", file]) if *sid == account => {
                let sid = file.trim_end_matches(".json").to_owned();
                state.update(Kind::Application, &sid, &form)
            }
            (&Method::GET, ["v1", "Services"]) => {
                let services: Vec<Value> = state.services.iter().map(|(service, _)| service.clone()).collect();
                state.page_v1(&services, "services", &host, &path, page)
            }
            (&Method::GET, ["v1", "Services", sid, "PhoneNumbers"]) => {
                match state.services.iter().find(|(service, _)| service["sid"] == *sid) {
                    Some((_, members)) => {
                        let members = members.clone();
                        state.page_v1(&members, "phone_numbers", &host, &path, page)
                    }
                    None => not_found(),
                }
            }
            (&Method::POST, ["v1", "Services", sid]) => state.update(Kind::Service, sid, &form),
            (&Method::GET, ["v1", "Trunks"]) => state.page_v1(&state.trunks, "trunks", &host, &path, page),
            (&Method::POST, ["v1", "Trunks", sid]) => state.update(Kind::Trunk, sid, &form),
            _ => not_found(),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Application,
    Service,
    Trunk,
}

impl State {
    /// A 2010 API page: items and a relative `next_page_uri` at the top level.
    fn page_2010(&self, items: &[Value], key: &str, path: &str, page: usize) -> Response<ChaosBody> {
        let size = self.page_size;
        let chunk: Vec<Value> = items.iter().skip(page * size).take(size).cloned().collect();
        let next = ((page + 1) * size < items.len())
            .then(|| format!("{path}?PageSize={size}&Page={}&PageToken=PA{}", page + 1, page + 1));
        json_response(
            StatusCode::OK,
            &json!({ key: chunk, "next_page_uri": next, "page": page, "page_size": size, "uri": path }),
        )
    }

    /// A v1 page: items and `meta.next_page_url`, absolute.
    fn page_v1(&self, items: &[Value], key: &str, host: &str, path: &str, page: usize) -> Response<ChaosBody> {
        let size = self.page_size;
        let chunk: Vec<Value> = items.iter().skip(page * size).take(size).cloned().collect();
        let next = ((page + 1) * size < items.len()).then(|| {
            format!(
                "http://{host}{path}?PageSize={size}&Page={}&PageToken=PT{}",
                page + 1,
                page + 1
            )
        });
        json_response(
            StatusCode::OK,
            &json!({ key: chunk, "meta": {"page": page, "page_size": size, "key": key, "next_page_url": next,
                     "url": format!("http://{host}{path}?PageSize={size}&Page={page}")} }),
        )
    }

    fn update(&mut self, kind: Kind, sid: &str, form: &Params) -> Response<ChaosBody> {
        if let Some(index) = self.failures.iter().position(|failure| failure.sid == sid) {
            let failure = self.failures.remove(index);
            return error(failure.status, failure.code, &failure.message);
        }
        let allowed = match kind {
            Kind::Number | Kind::Application => NUMBER_FIELDS,
            Kind::Service => SERVICE_FIELDS,
            Kind::Trunk => TRUNK_FIELDS,
        };
        if let Some((name, _)) = form.iter().find(|(name, _)| !allowed.contains(name)) {
            return error(StatusCode::BAD_REQUEST, 20001, &format!("Unknown parameter {name}"));
        }
        let resource = match kind {
            Kind::Number => self.numbers.iter_mut().find(|item| item["sid"] == sid),
            Kind::Application => self.applications.iter_mut().find(|item| item["sid"] == sid),
            Kind::Service => self
                .services
                .iter_mut()
                .map(|(service, _)| service)
                .find(|item| item["sid"] == sid),
            Kind::Trunk => self.trunks.iter_mut().find(|item| item["sid"] == sid),
        };
        let Some(resource) = resource else {
            return not_found();
        };
        let mut updated = resource.clone();
        for (name, value) in form.iter() {
            updated[snake_case(name)] = match (name, value) {
                ("UseInboundWebhookOnNumber", value) => Value::from(value.eq_ignore_ascii_case("true")),
                (_, value) => Value::from(value),
            };
        }
        if matches!(kind, Kind::Number | Kind::Application) {
            for (fallback, primary, param) in [
                ("voice_fallback_url", "voice_url", "VoiceFallbackUrl"),
                ("sms_fallback_url", "sms_url", "SmsFallbackUrl"),
            ] {
                if !text(&updated, fallback).is_empty() && text(&updated, primary).is_empty() {
                    let message = format!("{param} cannot be set without {}", snake_to_pascal(primary));
                    return error(StatusCode::BAD_REQUEST, 21406, &message);
                }
            }
        }
        *resource = updated.clone();
        eprintln!(
            "Twilio account stand-in: updated {sid}: {}",
            form.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        self.updates.push((
            sid.to_owned(),
            form.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        ));
        json_response(StatusCode::OK, &updated)
    }
}

/// `voice_url` → `VoiceUrl`.
fn snake_to_pascal(name: &str) -> String {
    name.split('_')
        .map(|word| {
            let mut characters = word.chars();
            characters
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + characters.as_str())
                .unwrap_or_default()
        })
        .collect()
}
