use serde_json::json;

use super::*;
use crate::Channel;
use crate::webhook::Params;

const AC: &str = "AC0123456789abcdef0123456789abcdef";

fn number(value: serde_json::Value) -> IncomingNumber {
    serde_json::from_value(value).expect("number JSON")
}

fn app(sid: &str, voice: Option<&str>, voice_fallback: Option<&str>, sms: Option<&str>) -> Application {
    Application {
        sid: sid.into(),
        friendly_name: Some(format!("app {sid}")),
        webhooks: Webhooks {
            voice_url: voice.map(Into::into),
            voice_fallback_url: voice_fallback.map(Into::into),
            sms_url: sms.map(Into::into),
            ..Default::default()
        },
    }
}

fn service(
    sid: &str,
    inbound: Option<&str>,
    fallback: Option<&str>,
    defer: bool,
    members: &[(&str, &str)],
) -> (MessagingService, Vec<ServiceNumber>) {
    (
        MessagingService {
            sid: sid.into(),
            friendly_name: Some(format!("service {sid}")),
            inbound_request_url: inbound.map(Into::into),
            fallback_url: fallback.map(Into::into),
            use_inbound_webhook_on_number: Some(defer),
            ..Default::default()
        },
        members
            .iter()
            .map(|(sid, phone)| ServiceNumber {
                sid: (*sid).into(),
                phone_number: (*phone).into(),
            })
            .collect(),
    )
}

fn route(account: &Account, index: usize, channel: Channel) -> Route {
    account.route(&account.numbers[index], channel, &Expect::default())
}

#[test]
fn a_trunk_wins_over_a_voice_application_and_the_numbers_own_voice_url() {
    let account = Account {
        numbers: vec![number(json!({
            "sid": "PN1", "phone_number": "+14155550101",
            "voice_url": "https://app.example.com/voice", "voice_fallback_url": "https://f.example.com/voice",
            "voice_application_sid": "AP1", "trunk_sid": "TK1"
        }))],
        applications: vec![app("AP1", Some("https://app.example.com/ap"), None, None)],
        trunks: vec![Trunk {
            sid: "TK1".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let voice = route(&account, 0, Channel::Voice);
    assert_eq!(voice.router.kind, RouterKind::Trunk);
    assert_eq!(
        voice.status,
        Status::Unprotected,
        "a trunk without a disaster-recovery URL"
    );
    assert_eq!(voice.primary_label(), "SIP origination");
}

#[test]
fn a_voice_application_wins_over_the_numbers_own_voice_urls() {
    let account = Account {
        numbers: vec![number(json!({
            "sid": "PN1", "phone_number": "+14155550101",
            "voice_url": "https://app.example.com/voice", "voice_fallback_url": "https://f.example.com/voice",
            "voice_application_sid": "AP1"
        }))],
        applications: vec![app("AP1", Some("https://app.example.com/ap"), None, None)],
        ..Default::default()
    };
    let voice = route(&account, 0, Channel::Voice);
    assert_eq!(voice.router.sid, "AP1");
    assert_eq!(voice.url.as_deref(), Some("https://app.example.com/ap"));
    assert_eq!(
        voice.status,
        Status::Unprotected,
        "the number's own fallback is ignored"
    );
}

#[test]
fn a_number_without_routing_uses_its_own_urls() {
    let account = Account {
        numbers: vec![number(json!({
            "sid": "PN1", "phone_number": "+14155550101",
            "voice_url": "https://app.example.com/voice", "voice_fallback_url": "https://f.example.com/voice",
            "voice_fallback_method": "get", "sms_url": " "
        }))],
        ..Default::default()
    };
    let voice = route(&account, 0, Channel::Voice);
    assert_eq!(
        (voice.router.kind, voice.status),
        (RouterKind::Number, Status::Protected)
    );
    assert_eq!(voice.fallback_method.as_deref(), Some("GET"));
    assert_eq!(voice.method.as_deref(), Some("POST"), "Twilio's default");
    assert_eq!(
        route(&account, 0, Channel::Messaging).status,
        Status::NoWebhook,
        "a blank URL is no URL"
    );
}

#[test]
fn a_messaging_service_routes_its_members_unless_it_defers_to_the_number() {
    let account = Account {
        numbers: vec![
            number(
                json!({"sid": "PN1", "phone_number": "+14155550101", "sms_url": "https://app.example.com/own", "sms_fallback_url": "https://f.example.com/own"}),
            ),
            number(
                json!({"sid": "PN2", "phone_number": "+14155550102", "sms_url": "https://app.example.com/own", "sms_application_sid": "MG2"}),
            ),
        ],
        services: vec![
            service(
                "MG1",
                Some("https://app.example.com/service"),
                None,
                false,
                &[("PN1", "+14155550101")],
            ),
            service(
                "MG2",
                Some("https://app.example.com/service2"),
                Some("https://f.example.com/s2"),
                true,
                &[("PN2", "+14155550102")],
            ),
        ],
        ..Default::default()
    };
    let first = route(&account, 0, Channel::Messaging);
    assert_eq!((first.router.sid.as_str(), first.status), ("MG1", Status::Unprotected));
    assert_eq!(first.url.as_deref(), Some("https://app.example.com/service"));
    let deferring = route(&account, 1, Channel::Messaging);
    assert_eq!(
        deferring.router.kind,
        RouterKind::Number,
        "the service defers to the number's webhook"
    );
    assert_eq!(
        deferring.deferring_service.as_ref().map(|s| s.sid.as_str()),
        Some("MG2")
    );
    assert_eq!(
        deferring.status,
        Status::Unprotected,
        "the service's fallback is ignored too"
    );
}

#[test]
fn a_deferring_service_hands_messages_to_the_numbers_messaging_application() {
    let account = Account {
        numbers: vec![number(
            json!({"sid": "PN1", "phone_number": "+14155550101", "sms_application_sid": "AP9"}),
        )],
        applications: vec![app("AP9", None, None, Some("https://app.example.com/ap-sms"))],
        services: vec![service("MG1", None, None, true, &[("PN1", "")])],
        ..Default::default()
    };
    let messaging = route(&account, 0, Channel::Messaging);
    assert_eq!(messaging.router.sid, "AP9");
    assert_eq!(messaging.url.as_deref(), Some("https://app.example.com/ap-sms"));
}

#[test]
fn a_service_with_no_inbound_url_that_does_not_defer_delivers_nothing() {
    let account = Account {
        numbers: vec![number(
            json!({"sid": "PN1", "phone_number": "+14155550101", "sms_url": "https://app.example.com/own"}),
        )],
        services: vec![service(
            "MG1",
            None,
            Some("https://f.example.com/s"),
            false,
            &[("", "+14155550101")],
        )],
        ..Default::default()
    };
    let messaging = route(&account, 0, Channel::Messaging);
    assert_eq!(messaging.status, Status::NotDelivered);
    assert!(messaging.warnings.contains(&Warning::ReceivesNothing));
    assert!(!messaging.status.needs_attention());
}

#[test]
fn the_service_listing_is_the_truth_and_sms_application_sid_a_hint() {
    let account = Account {
        numbers: vec![
            number(
                json!({"sid": "PN1", "phone_number": "+14155550101", "sms_url": "https://app.example.com/own", "sms_application_sid": "MG1"}),
            ),
            number(json!({"sid": "PN2", "phone_number": "+14155550102", "sms_application_sid": "MG404"})),
        ],
        services: vec![service(
            "MG1",
            Some("https://app.example.com/service"),
            None,
            false,
            &[],
        )],
        ..Default::default()
    };
    let stale = route(&account, 0, Channel::Messaging);
    assert_eq!(stale.router.kind, RouterKind::Number, "the service does not list it");
    assert_eq!(stale.warnings, [Warning::NotListedInService { service: "MG1".into() }]);
    let unknown = route(&account, 1, Channel::Messaging);
    assert_eq!(unknown.status, Status::Unknown);
    assert!(unknown.status.needs_attention());
}

#[test]
fn an_application_or_trunk_missing_from_the_listing_is_unknown() {
    let account = Account {
        numbers: vec![number(
            json!({"sid": "PN1", "phone_number": "+1", "voice_application_sid": "AP404", "sms_application_sid": "AP405"}),
        )],
        ..Default::default()
    };
    for channel in [Channel::Voice, Channel::Messaging] {
        let route = route(&account, 0, channel);
        assert_eq!(route.status, Status::Unknown, "{channel}");
        assert_eq!(route.warnings[0].code(), "unknown-resource");
    }
}

#[test]
fn warnings_name_a_shared_host_plain_http_and_an_unexpected_fallback_method() {
    let account = Account {
        numbers: vec![number(json!({
            "sid": "PN1", "phone_number": "+1",
            "voice_url": "http://App.example.com/voice", "voice_fallback_url": "https://app.example.com:8443/fallback",
            "voice_fallback_method": "GET",
            "sms_url": "https://app.example.com/sms", "sms_fallback_url": "https://other.example.com/sms"
        }))],
        ..Default::default()
    };
    let expect = Expect {
        fallback_method: Some("post".into()),
    };
    let voice = account.route(&account.numbers[0], Channel::Voice, &expect);
    let codes: Vec<_> = voice.warnings.iter().map(Warning::code).collect();
    assert_eq!(codes, ["plain-http", "same-host", "fallback-method"]);
    assert!(
        voice.warnings[2]
            .message()
            .contains("Twilio will GET the fallback, the endpoint expects POST")
    );
    let messaging = account.route(&account.numbers[0], Channel::Messaging, &expect);
    assert!(messaging.warnings.is_empty(), "{:?}", messaging.warnings);
    assert!(
        account
            .route(&account.numbers[0], Channel::Voice, &Expect::default())
            .warnings
            .len()
            == 2
    );
}

fn shared_account() -> Account {
    Account {
        numbers: vec![
            number(
                json!({"sid": "PN1", "phone_number": "+14155550101", "voice_application_sid": "AP1", "sms_url": "https://app.example.com/sms"}),
            ),
            number(json!({"sid": "PN2", "phone_number": "+14155550102", "voice_application_sid": "AP1"})),
            number(
                json!({"sid": "PN3", "phone_number": "+14155550103", "trunk_sid": "TK1", "sms_application_sid": "MG1"}),
            ),
            number(json!({"sid": "PN4", "phone_number": "+14155550104", "sms_application_sid": "MG1"})),
            number(
                json!({"sid": "PN5", "phone_number": "+14155550105", "voice_url": "https://app.example.com/v", "voice_fallback_url": "https://f.example.com/v"}),
            ),
        ],
        applications: vec![app("AP1", Some("https://app.example.com/voice"), None, None)],
        services: vec![service(
            "MG1",
            Some("https://app.example.com/service"),
            None,
            false,
            &[("PN3", "+14155550103"), ("PN4", "+14155550104")],
        )],
        trunks: vec![Trunk {
            sid: "TK1".into(),
            ..Default::default()
        }],
    }
}

fn both(method: Option<&str>) -> Wanted {
    Wanted {
        voice: Some(Fallback {
            url: "https://fb.example.com/voice".into(),
            method: method.map(Into::into),
        }),
        messaging: Some(Fallback {
            url: "https://fb.example.com/sms".into(),
            method: method.map(Into::into),
        }),
    }
}

#[test]
fn all_unprotected_updates_each_shared_resource_once_with_its_own_fields() {
    let account = shared_account();
    let plan = plan(&account, AC, Selection::AllUnprotected, &both(Some("post")));
    let summary: Vec<_> = plan
        .changes
        .iter()
        .map(|change| {
            (
                change.router.sid.as_str(),
                change.api,
                change.path.as_str(),
                change.covers.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "AP1",
                Api::Core,
                "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Applications/AP1.json",
                vec!["+14155550101".to_string(), "+14155550102".into()]
            ),
            (
                "PN1",
                Api::Core,
                "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/IncomingPhoneNumbers/PN1.json",
                vec!["+14155550101".into()]
            ),
            ("TK1", Api::Trunking, "/v1/Trunks/TK1", vec!["+14155550103".into()]),
            (
                "MG1",
                Api::Messaging,
                "/v1/Services/MG1",
                vec!["+14155550103".into(), "+14155550104".into()]
            ),
        ]
    );
    let fields = |sid: &str| {
        plan.changes
            .iter()
            .find(|c| c.router.sid == sid)
            .expect("a change for the SID")
            .fields
            .clone()
    };
    assert_eq!(
        fields("MG1"),
        [
            ("FallbackUrl", "https://fb.example.com/sms".to_string()),
            ("FallbackMethod", "POST".into())
        ]
    );
    assert_eq!(
        fields("TK1"),
        [
            ("DisasterRecoveryUrl", "https://fb.example.com/voice".to_string()),
            ("DisasterRecoveryMethod", "POST".into())
        ]
    );
    assert_eq!(
        fields("PN1"),
        [
            ("SmsFallbackUrl", "https://fb.example.com/sms".to_string()),
            ("SmsFallbackMethod", "POST".into())
        ]
    );
    assert!(plan.refusals.is_empty());
    assert!(plan.changes.iter().all(|change| change.also_covers.is_empty()));
}

#[test]
fn a_number_applies_to_what_routes_it_and_names_the_other_numbers_covered() {
    let account = shared_account();
    let asked = ["+14155550102".to_string(), "PN4".into(), "+19999999999".into()];
    let wanted = Wanted {
        messaging: None,
        ..both(None)
    };
    let plan = plan(&account, AC, Selection::Numbers(&asked), &wanted);
    // PN4 has no voice URL: skipped, not sent (Twilio would refuse the whole update with 21406).
    let sids: Vec<_> = plan.changes.iter().map(|change| change.router.sid.as_str()).collect();
    assert_eq!(sids, ["AP1"], "{plan:?}");
    assert_eq!(plan.changes[0].also_covers, ["+14155550101"]);
    assert_eq!(plan.skipped.len(), 1);
    assert_eq!(plan.skipped[0].subject, "+14155550104 (voice)");
    assert_eq!(plan.skipped[0].numbers, ["+14155550104"]);
    assert!(
        plan.skipped[0].reason.contains("has no voice URL"),
        "{:?}",
        plan.skipped
    );
    assert_eq!(plan.refusals.len(), 1);
    assert_eq!(plan.refusals[0].subject, "+19999999999");

    let sms_only = Wanted {
        voice: None,
        ..both(None)
    };
    let plan = super::plan(&account, AC, Selection::Numbers(&asked[1..2]), &sms_only);
    assert_eq!(plan.changes[0].router.sid, "MG1");
    assert_eq!(plan.changes[0].also_covers, ["+14155550103"]);
}

#[test]
fn unknown_and_silent_routes_are_refused_naming_every_number_they_affect() {
    let mut account = shared_account();
    for (sid, phone) in [("PN6", "+14155550106"), ("PN8", "+14155550108")] {
        account.numbers.push(number(
            json!({"sid": sid, "phone_number": phone, "voice_application_sid": "AP404"}),
        ));
    }
    account
        .services
        .push(service("MG2", None, None, false, &[("PN7", "+14155550107")]));
    account
        .numbers
        .push(number(json!({"sid": "PN7", "phone_number": "+14155550107"})));
    // Under --all-unprotected too: the audit fails for an unknown App, so set says why it cannot help.
    let all = plan(&account, AC, Selection::AllUnprotected, &both(None));
    assert!(
        all.changes.iter().all(|change| change.router.sid != "PN5"),
        "protected numbers are left alone"
    );
    assert_eq!(all.refusals.len(), 1, "{:?}", all.refusals);
    assert_eq!(all.refusals[0].numbers, ["+14155550106", "+14155550108"]);
    assert_eq!(all.refusals[0].subject, "+14155550106, +14155550108 (voice)");
    assert!(
        all.refusals[0]
            .reason
            .contains("Application AP404 is not in the account's listing")
    );
    assert!(all.skipped.is_empty(), "a route with no webhook is not unprotected");

    let asked = ["+14155550106".to_string(), "+14155550107".into()];
    let named = plan(&account, AC, Selection::Numbers(&asked), &both(None));
    assert!(named.changes.is_empty(), "{:?}", named.changes);
    let reasons: Vec<_> = named.refusals.iter().map(|refusal| refusal.reason.as_str()).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("Application AP404 is not in the account's listing"));
    assert!(reasons[1].contains("delivers inbound messages nowhere"));
    let skipped: Vec<_> = named.skipped.iter().map(|skip| skip.subject.as_str()).collect();
    assert_eq!(skipped, ["+14155550106 (sms)", "+14155550107 (voice)"]);
}

#[test]
fn a_sid_unfit_for_a_path_is_refused_not_requested() {
    let account = Account {
        numbers: vec![number(
            json!({"sid": "PN1/../../Messages", "phone_number": "+1", "voice_url": "https://a/v"}),
        )],
        ..Default::default()
    };
    let plan = plan(&account, AC, Selection::AllUnprotected, &both(None));
    assert!(plan.changes.is_empty());
    assert!(plan.refusals[0].reason.contains("not putting it in a request path"));
    assert!(Listing::service_numbers("MG1?x").is_err());
}

#[test]
fn probes_go_once_to_each_distinct_fallback_with_twilios_parameters() {
    let mut account = shared_account();
    account.applications[0].webhooks.voice_fallback_url = Some("https://f.example.com/v".into());
    account.services[0].0.fallback_url = Some("https://f.example.com/s".into());
    account.services[0].0.fallback_method = Some("GET".into());
    let targets = probe_targets(&account);
    let summary: Vec<_> = targets
        .iter()
        .map(|t| {
            (
                t.channel,
                t.url.as_str(),
                t.method.as_str(),
                t.numbers.len(),
                t.routers.len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Channel::Voice, "https://f.example.com/v", "POST", 3, 2),
            (Channel::Messaging, "https://f.example.com/s", "GET", 2, 1),
        ]
    );
    let voice = targets[0].params(AC, &probe_id(0xabc));
    assert_eq!(voice.get("ErrorCode"), Some("11200"));
    assert_eq!(voice.get("ErrorUrl"), Some("https://app.example.com/voice"));
    assert_eq!(voice.get("CallSid"), Some("CA00000000000000000000000000000abc"));
    assert_eq!(voice.probe(), Some("probe-0000000000000abc"));
    assert_eq!(voice.to(), Some("+14155550101"));
}

#[test]
fn next_pages_stay_on_the_listings_base() {
    let base = "http://127.0.0.1:9";
    assert_eq!(
        next_page(base, &json!({"next_page_uri": "/2010-04-01/x?Page=1"}))
            .expect("a path on the base")
            .as_deref(),
        Some("http://127.0.0.1:9/2010-04-01/x?Page=1")
    );
    assert!(next_page(base, &json!({"next_page_uri": "//evil.example/x"})).is_err());
    assert!(
        next_page(
            base,
            &json!({"meta": {"next_page_url": "http://127.0.0.1:99/v1/Services"}})
        )
        .is_err()
    );
    assert!(next_page(base, &json!({"meta": {"next_page_url": "http://127.0.0.1:9.evil/v1"}})).is_err());
    assert_eq!(next_page(base, &json!({"meta": {"next_page_url": null}})), Ok(None));
    assert_eq!(next_page(base, &json!({"next_page_uri": ""})), Ok(None));
}

#[test]
fn a_trunks_disaster_recovery_probe_is_an_ordinary_call_and_a_service_member_names_its_service() {
    let mut account = shared_account();
    account.trunks[0].disaster_recovery_url = Some("https://f.example.com/dr".into());
    account.services[0].0.fallback_url = Some("https://f.example.com/s".into());
    let targets = probe_targets(&account);
    let trunk = targets
        .iter()
        .find(|t| t.url.ends_with("/dr"))
        .expect("the trunk's probe");
    let params = trunk.params(AC, &probe_id(1));
    assert_eq!((params.get("ErrorCode"), params.get("ErrorUrl")), (None, None));
    assert_eq!(params.get("CallStatus"), Some("ringing"));
    let service = targets
        .iter()
        .find(|t| t.url.ends_with("/s"))
        .expect("the service's probe");
    let params = service.params(AC, &probe_id(2));
    assert_eq!(params.get("MessagingServiceSid"), Some("MG1"));
    assert_eq!(params.get("ErrorUrl"), Some("https://app.example.com/service"));
    assert_eq!(service.http_method(), Some(http::Method::POST));
}

#[test]
fn a_null_defer_flag_is_the_apis_default_false() {
    let service: MessagingService = serde_json::from_value(
        json!({"sid": "MG1", "inbound_request_url": "https://a/s", "use_inbound_webhook_on_number": null}),
    )
    .expect("a null flag parses");
    assert!(!service.defers_to_number());
}

/// A request for `target` carrying `params`, signed as Twilio signs it: its URL, body, signature.
fn signed(target: &ProbeTarget, params: &Params) -> (String, String, String) {
    match target.http_method() {
        Some(http::Method::GET) => {
            let url = format!("{}?{}", target.url, params.to_form());
            let signature = crate::signature::compute_signature("token", &url, Params::new().iter());
            (url, String::new(), signature)
        }
        _ => {
            let signature = crate::signature::compute_signature("token", &target.url, params);
            (target.url.clone(), params.to_form(), signature)
        }
    }
}

/// The probe the CLI sends, through the endpoint's own decision: answered and logged, nothing else.
#[test]
fn the_endpoint_answers_the_probe_numbers_builds_with_its_log_record_only() {
    use crate::config::Config;
    use crate::edge::{Body, Edge, EdgeRequest, Effect};
    use crate::signature::SignatureVerifier;

    let config = Config::from_str_auto(
        "[alerts]\nwebhook_url = \"https://hooks.example.com/x\"\n[recovery]\nallow_hosts = [\"app.example.com\"]\n",
    )
    .expect("config");
    let edge = Edge::new(config, SignatureVerifier::new("token")).with_inbox(true);
    for (channel, method) in [(Channel::Voice, "POST"), (Channel::Messaging, "GET")] {
        let target = ProbeTarget {
            channel,
            url: "https://fallback.example.com/hook".into(),
            method: method.into(),
            error_url: Some("https://app.example.com/hook".into()),
            messaging_service_sid: None,
            to: "+14155550101".into(),
            numbers: vec!["+14155550101".into()],
            routers: vec![],
        };
        let method = target.http_method().expect("a method");
        let decide = |params: &Params| {
            let (url, body, signature) = signed(&target, params);
            edge.decide(&EdgeRequest {
                method: &method,
                url: &url,
                signature: Some(&signature),
                content_type: Some("application/x-www-form-urlencoded"),
                body: Body::Complete(body.as_bytes()),
                now_ms: 1_700_000_000_000,
                inbox_failing: false,
            })
        };
        let params = target.params(AC, &probe_id(7));
        let decision = decide(&params);
        assert_eq!(decision.response.status, http::StatusCode::OK, "{channel}");
        let [Effect::Log(record)] = decision.effects.as_slice() else {
            panic!("{channel}: {:?}", decision.effects);
        };
        assert_eq!(record.probe.as_deref(), Some("probe-0000000000000007"));
        // The same request without the probe id is kept, filed and recovered (so this can fail).
        let decision = decide(&params.without(&[crate::webhook::PROBE_PARAM]));
        assert!(
            matches!(decision.effects.as_slice(), [Effect::Recover(plan)] if plan.keep().is_some() && plan.notice().is_some()),
            "{channel}: {:?}",
            decision.effects
        );
    }
}
