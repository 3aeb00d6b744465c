//! `numbers set` as a plan: which resource to update with which fields, each shared resource
//! once, and which numbers each change covers.

use crate::Channel;
use crate::numbers::resources::{Account, Api, IncomingNumber};
use crate::numbers::route::{Expect, Route, Router, RouterKind, Status, channel_label};

/// A fallback to set for one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fallback {
    /// The fallback URL.
    pub url: String,
    /// Its method; `None` leaves the resource's as it is.
    pub method: Option<String>,
}

/// What `numbers set` was asked to set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// The voice fallback.
    pub voice: Option<Fallback>,
    /// The messaging fallback.
    pub messaging: Option<Fallback>,
}

impl Wanted {
    fn for_channel(&self, channel: Channel) -> Option<&Fallback> {
        match channel {
            Channel::Voice => self.voice.as_ref(),
            Channel::Messaging => self.messaging.as_ref(),
        }
    }
}

/// Which numbers to protect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection<'a> {
    /// Every channel whose route is unprotected, on whatever routes it.
    AllUnprotected,
    /// These numbers (E.164 or `PN…`): what routes each is set as given.
    Numbers(&'a [String]),
}

/// One update: a resource and its new fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The resource updated.
    pub router: Router,
    /// The API it is on.
    pub api: Api,
    /// Its path (SID checked).
    pub path: String,
    /// The update's parameters, in order.
    pub fields: Vec<(&'static str, String)>,
    /// The channels changed.
    pub channels: Vec<Channel>,
    /// Every number (E.164) whose changed channel this resource routes.
    pub covers: Vec<String>,
    /// Of those, the ones not asked for by `--number` (empty for `--all-unprotected`).
    pub also_covers: Vec<String>,
}

/// Something the plan will not do, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What it is about: the numbers and the channel (`+14155550101, +14155550102 (sms)`), or a
    /// number as asked.
    pub subject: String,
    /// The numbers it affects (E.164, or as asked when the account has no such number).
    pub numbers: Vec<String>,
    /// Why, in a sentence.
    pub reason: String,
}

/// The whole of `numbers set`: the changes, then what is refused or skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The updates, in the order of the first number each covers.
    pub changes: Vec<Change>,
    /// What was asked and cannot be done — numbers not in the account, resources the listing
    /// lacks (under `--all-unprotected` too: the audit counts them), services that deliver
    /// nothing, SIDs unfit for a path — one per resource, naming every number it affects.
    pub refusals: Vec<Refusal>,
    /// Channels of numbers asked for by `--number` that have no primary URL: nothing to
    /// protect, and Twilio refuses a fallback without its primary (21406), which would fail the
    /// whole update of that resource.
    pub skipped: Vec<Refusal>,
}

fn matches(number: &IncomingNumber, wanted: &str) -> bool {
    number.phone_number == wanted || number.sid == wanted
}

/// Plans `numbers set` over `account` (read whole: numbers, Applications, services, trunks).
///
/// ```
/// use twiml_fallback::numbers::{plan, Account, Application, Fallback, IncomingNumber, Selection, Wanted, Webhooks};
///
/// let webhooks = Webhooks { voice_url: Some("https://app.example.com/voice".into()), ..Default::default() };
/// let app = Application { sid: "AP1".into(), webhooks, ..Default::default() };
/// let numbers = ["+14155550101", "+14155550102"].map(|phone| IncomingNumber {
///     sid: format!("PN{}", &phone[10..]),
///     phone_number: phone.into(),
///     voice_application_sid: Some("AP1".into()),
///     ..Default::default()
/// });
/// let account = Account { numbers: numbers.to_vec(), applications: vec![app], ..Default::default() };
/// let wanted = Wanted { voice: Some(Fallback { url: "https://fallback.example.com/voice".into(), method: None }), messaging: None };
/// let plan = plan(&account, "AC1", Selection::AllUnprotected, &wanted);
/// // One update of the shared Application, covering both numbers.
/// assert_eq!(plan.changes.len(), 1);
/// assert_eq!(plan.changes[0].path, "/2010-04-01/Accounts/AC1/Applications/AP1.json");
/// assert_eq!(plan.changes[0].fields, [("VoiceFallbackUrl", "https://fallback.example.com/voice".to_string())]);
/// assert_eq!(plan.changes[0].covers, ["+14155550101", "+14155550102"]);
/// ```
pub fn plan(account: &Account, account_sid: &str, selection: Selection<'_>, wanted: &Wanted) -> Plan {
    let expect = Expect::default();
    let mut plan = Plan::default();
    if let Selection::Numbers(asked) = selection {
        for wanted_number in asked {
            if !account.numbers.iter().any(|number| matches(number, wanted_number)) {
                plan.refusals.push(Refusal {
                    subject: wanted_number.clone(),
                    numbers: vec![wanted_number.clone()],
                    reason: format!("not a number of account {account_sid}"),
                });
            }
        }
    }
    let audit = account.audit(&expect);
    let asked = |number: &IncomingNumber| match selection {
        Selection::AllUnprotected => true,
        Selection::Numbers(asked) => asked.iter().any(|wanted| matches(number, wanted)),
    };
    // Refusals of a resource, by the resource: one line naming every number it affects.
    let mut refused: Vec<(Router, usize)> = Vec::new();
    for routes in audit.iter().filter(|routes| asked(routes.number)) {
        let phone = &routes.number.phone_number;
        for route in routes.routes() {
            let Some(fallback) = wanted.for_channel(route.channel) else {
                continue;
            };
            let Some((url_field, method_field)) = route.router.kind.fallback_fields(route.channel) else {
                continue;
            };
            if selection == Selection::AllUnprotected && !route.status.needs_attention() {
                continue;
            }
            let label = channel_label(route.channel);
            if route.status == Status::NoWebhook {
                plan.skipped.push(Refusal {
                    subject: format!("{phone} ({label})"),
                    numbers: vec![phone.clone()],
                    reason: format!(
                        "{} has no {label} URL: nothing to protect (Twilio refuses a fallback without one, error 21406)",
                        route.router.describe()
                    ),
                });
                continue;
            }
            let path = match refusal(route).map_or_else(|| route.router.kind.path(account_sid, &route.router.sid), Err)
            {
                Ok(path) => path,
                Err(reason) => {
                    match refused.iter().find(|(router, _)| *router == route.router) {
                        Some((_, index)) => {
                            let refusal = &mut plan.refusals[*index];
                            if !refusal.numbers.contains(phone) {
                                refusal.numbers.push(phone.clone());
                                refusal.subject = format!("{} ({label})", refusal.numbers.join(", "));
                            }
                        }
                        None => {
                            refused.push((route.router.clone(), plan.refusals.len()));
                            plan.refusals.push(Refusal {
                                subject: format!("{phone} ({label})"),
                                numbers: vec![phone.clone()],
                                reason,
                            });
                        }
                    }
                    continue;
                }
            };
            let index = match plan.changes.iter().position(|change| change.router == route.router) {
                Some(index) => index,
                None => {
                    plan.changes.push(Change {
                        router: route.router.clone(),
                        api: route.router.kind.api(),
                        path,
                        fields: Vec::new(),
                        channels: Vec::new(),
                        covers: Vec::new(),
                        also_covers: Vec::new(),
                    });
                    plan.changes.len() - 1
                }
            };
            let change = &mut plan.changes[index];
            if change.channels.contains(&route.channel) {
                continue;
            }
            change.channels.push(route.channel);
            change.fields.push((url_field, fallback.url.clone()));
            if let Some(method) = &fallback.method {
                change.fields.push((method_field, method.to_ascii_uppercase()));
            }
        }
    }
    for change in &mut plan.changes {
        for routes in &audit {
            let routed = routes
                .routes()
                .iter()
                .any(|route| change.channels.contains(&route.channel) && route.router == change.router);
            if routed && !change.covers.contains(&routes.number.phone_number) {
                change.covers.push(routes.number.phone_number.clone());
                if matches!(selection, Selection::Numbers(_)) && !asked(routes.number) {
                    change.also_covers.push(routes.number.phone_number.clone());
                }
            }
        }
    }
    plan
}

/// What to add to Twilio's error when an update of a `kind` fails with `code`.
///
/// ```
/// use twiml_fallback::numbers::{update_error_hint, RouterKind};
///
/// assert_eq!(
///     update_error_hint(21406, RouterKind::Application).as_deref(),
///     Some("a fallback URL needs a primary URL: set the Application's primary URL first")
/// );
/// assert_eq!(update_error_hint(20500, RouterKind::Number), None);
/// ```
pub fn update_error_hint(code: u64, kind: RouterKind) -> Option<String> {
    match code {
        21405 | 21406 => Some(format!(
            "a fallback URL needs a primary URL: set the {}'s primary URL first",
            kind.label()
        )),
        20003 => Some("check the credentials".to_owned()),
        20404 => Some(format!("the {} no longer exists", kind.label())),
        _ => None,
    }
}

/// Why a route cannot take a fallback, when it cannot.
fn refusal(route: &Route) -> Option<String> {
    match route.status {
        Status::Unknown => Some(format!(
            "{} is not in the account's listing: nothing to update",
            route.router.describe()
        )),
        Status::NotDelivered => Some(format!(
            "{} delivers inbound messages nowhere (no inbound URL, not deferring to the number): set its inbound URL first",
            route.router.describe()
        )),
        _ => None,
    }
}
