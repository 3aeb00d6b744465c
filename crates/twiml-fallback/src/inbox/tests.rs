use super::*;

const URL: &str = "https://fallback.example.com/sms";

fn kept(form: &str) -> Entry {
    match capture(
        &Params::from_form(form.as_bytes()),
        "POST",
        URL,
        1_700_000_000_123,
        Source::Edge,
    ) {
        Capture::Keep(entry) => *entry,
        Capture::Skip(skip) => panic!("not kept: {skip:?}"),
    }
}

fn skipped(form: &str) -> Skip {
    match capture(&Params::from_form(form.as_bytes()), "POST", URL, 0, Source::Edge) {
        Capture::Keep(entry) => panic!("kept {entry:?}"),
        Capture::Skip(skip) => skip,
    }
}

#[test]
fn an_inbound_mms_keeps_numbers_body_media_error_and_every_parameter_in_order() {
    let entry = kept(
        "MessageSid=MM1&AccountSid=AC9&From=%2B14155550100&To=%2B14155550199&Body=photo&NumMedia=2\
         &MediaUrl0=https%3A%2F%2Fapi.twilio.com%2Fm0&MediaContentType0=image%2Fjpeg\
         &MediaUrl1=https%3A%2F%2Fapi.twilio.com%2Fm1&SmsStatus=received&Tag=a&Tag=b\
         &ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example.com%2Fsms",
    );
    assert_eq!(entry.sid, "MM1");
    assert_eq!(entry.channel, Channel::Messaging);
    assert_eq!(entry.account_sid.as_deref(), Some("AC9"));
    assert_eq!(entry.from.as_deref(), Some("+14155550100"));
    assert_eq!(entry.to.as_deref(), Some("+14155550199"));
    assert_eq!(entry.body.as_deref(), Some("photo"));
    assert_eq!(entry.media, ["https://api.twilio.com/m0", "https://api.twilio.com/m1"]);
    assert_eq!(entry.error_code, Some(11200));
    assert_eq!(entry.error_url.as_deref(), Some("https://app.example.com/sms"));
    assert_eq!((entry.url.as_str(), entry.method.as_str()), (URL, "POST"));
    assert_eq!(entry.received_at, "2023-11-14T22:13:20.123Z");
    assert_eq!(
        (entry.status, entry.attempts, entry.source),
        (Status::Pending, 0, Source::Edge)
    );
    let tags: Vec<_> = entry
        .params
        .iter()
        .filter(|(key, _)| key == "Tag")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(tags, ["a", "b"], "repeated keys kept, in order");
    assert_eq!(entry.params.len(), 14);
    assert_eq!(entry.params[0], ("MessageSid".to_owned(), "MM1".to_owned()));
}

#[test]
fn an_inbound_call_is_kept_as_missed_without_a_body() {
    let entry = kept("CallSid=CA1&From=%2B1415&To=%2B1416&CallStatus=ringing&Direction=inbound&Body=x");
    assert_eq!(
        (entry.channel, entry.status, entry.body),
        (Channel::Voice, Status::Missed, None)
    );
    assert_eq!(kept("CallSid=CA2&CallStatus=in-progress").status, Status::Missed);
    assert_eq!(kept("CallSid=CA3").sid, "CA3");
}

#[test]
fn status_callbacks_and_outbound_calls_are_never_kept() {
    for form in [
        "MessageSid=SM1&MessageStatus=delivered",
        "MessageSid=SM1&MessageStatus=sent",
        "MessageSid=SM1&SmsStatus=failed",
        "MessageSid=SM1&MessageStatus=undelivered",
        "CallSid=CA1&CallStatus=completed",
        "CallSid=CA1&CallStatus=no-answer",
        "CallSid=CA1&CallStatus=busy",
        "CallSid=CA1&CallStatus=in-progress&CallbackSource=call-progress-events",
    ] {
        assert_eq!(skipped(form), Skip::StatusCallback, "{form}");
    }
    assert_eq!(
        skipped("CallSid=CA1&CallStatus=ringing&Direction=outbound-api"),
        Skip::Outbound
    );
    assert_eq!(skipped("From=%2B1&Body=hi"), Skip::UnknownChannel);
    assert_eq!(kept("MessageSid=SM1&MessageStatus=received").sid, "SM1");
}

#[test]
fn dismissing_deletes_what_the_person_said_and_keeps_sid_numbers_and_times() {
    let entry = kept(
        "MessageSid=SM1&From=%2B1415&To=%2B1416&Body=my+card+is+4111&NumMedia=1&MediaUrl0=https%3A%2F%2Fm%2F0\
         &MediaContentType0=image%2Fpng&SmsStatus=received",
    );
    let dismissed = entry.clone().dismissed();
    assert_eq!(dismissed.status, Status::Dismissed);
    assert_eq!((dismissed.body, dismissed.media.len()), (None, 0));
    assert!(
        dismissed
            .params
            .iter()
            .all(|(key, value)| key != "Body" && key != "MediaUrl0" && !value.contains("4111"))
    );
    assert_eq!(
        (dismissed.sid, dismissed.from, dismissed.to),
        (entry.sid, entry.from, entry.to)
    );
    assert_eq!(dismissed.received_at_ms, entry.received_at_ms);
}

#[test]
fn the_json_has_the_contracts_fields_and_reads_back() {
    let entry = kept("MessageSid=SM1&From=%2B1415&To=%2B1416&Body=hi&ErrorCode=11200");
    let json: serde_json::Value = serde_json::to_value(&entry).expect("valid");
    for field in [
        "sid",
        "channel",
        "account_sid",
        "from",
        "to",
        "body",
        "media",
        "error_code",
        "error_url",
        "url",
        "method",
        "received_at",
        "status",
        "attempts",
        "last_error",
        "source",
        "params",
    ] {
        assert!(json.get(field).is_some(), "{field} missing from {json}");
    }
    assert_eq!(json["channel"], "messaging");
    assert_eq!(json["status"], "pending");
    assert_eq!(json["source"], "edge");
    assert_eq!(json["error_code"], 11200);
    assert_eq!(json["params"][0], serde_json::json!(["MessageSid", "SM1"]));
    let back: Entry = serde_json::from_value(json).expect("valid");
    assert_eq!(back, entry);
}

#[test]
fn statuses_read_back_from_their_names_and_unknown_ones_say_which_exist() {
    for status in Status::ALL {
        assert_eq!(status.as_str().parse::<Status>(), Ok(status));
        assert_eq!(serde_json::to_value(status).expect("valid"), status.as_str());
    }
    let error = "sent".parse::<Status>().expect_err("an error");
    assert!(error.contains("needs-attention"), "{error}");
}

#[test]
fn a_layer_capture_is_kept_by_the_same_rule_and_marked_as_the_layers() {
    let capture = CaptureRequest {
        channel: Some(Channel::Messaging),
        url: "https://app.example.com/sms".to_owned(),
        method: "POST".to_owned(),
        params: vec![("MessageSid".into(), "SM7".into()), ("Body".into(), "hi".into())],
        cause: Some("panic".to_owned()),
        error_code: Some(11200),
    };
    let Capture::Keep(entry) = capture.clone().into_capture(5) else {
        panic!()
    };
    assert_eq!(
        (entry.source, entry.cause.as_deref(), entry.error_code),
        (Source::Layer, Some("panic"), Some(11200))
    );
    let wrong_channel = CaptureRequest {
        channel: Some(Channel::Voice),
        ..capture.clone()
    };
    assert!(matches!(
        wrong_channel.into_capture(5),
        Capture::Skip(Skip::UnknownChannel)
    ));
    let receipt = CaptureRequest {
        params: vec![
            ("MessageSid".into(), "SM7".into()),
            ("MessageStatus".into(), "delivered".into()),
        ],
        ..capture
    };
    assert!(matches!(receipt.into_capture(5), Capture::Skip(Skip::StatusCallback)));
}

#[test]
fn store_outcomes_read_back_from_their_text() {
    use super::store::StoreOutcome;
    for outcome in [
        StoreOutcome::Stored,
        StoreOutcome::Duplicate,
        StoreOutcome::Full { max_entries: 100_000 },
    ] {
        assert_eq!(outcome.to_string().parse::<StoreOutcome>(), Ok(outcome));
    }
    assert!("full".parse::<StoreOutcome>().is_err());
    assert!("kept".parse::<StoreOutcome>().is_err());
}

#[test]
fn a_purge_is_due_at_start_then_hourly() {
    let mut schedule = PurgeSchedule::default();
    assert!(schedule.due(1_000));
    assert!(!schedule.due(1_000 + store::PURGE_EVERY_MS - 1));
    assert!(schedule.due(1_000 + store::PURGE_EVERY_MS));
}

#[test]
fn the_wire_form_is_the_stored_row_and_reads_back_every_kind_of_entry() {
    let mms = kept(
        "MessageSid=MM1&AccountSid=AC1&From=%2B1415&To=%2B1416&Body=a%22b%5Cc%0A%E2%9C%93\
         &NumMedia=2&MediaUrl0=https%3A%2F%2Fm%2F0&MediaUrl1=https%3A%2F%2Fm%2F1&ErrorCode=11200\
         &ErrorUrl=https%3A%2F%2Fapp%2Fsms&Body=again",
    );
    let call = kept("CallSid=CA1&From=%2B1415&To=%2B1416&CallStatus=ringing&Direction=inbound");
    let layer = CaptureRequest {
        channel: None,
        url: URL.to_owned(),
        method: "GET".to_owned(),
        params: vec![
            ("MessageSid".to_owned(), "SM9".to_owned()),
            ("Body".to_owned(), "hi".to_owned()),
        ],
        cause: Some("panic".to_owned()),
        error_code: Some(12300),
    };
    let Capture::Keep(layer) = layer.into_capture(u64::from(u32::MAX) * 1000) else {
        panic!("not kept")
    };
    let mut replayed = mms.clone().dismissed();
    replayed.attempts = 3;
    replayed.last_error = Some("the app answered 500".to_owned());
    for entry in [mms, call, *layer, replayed] {
        let wire = store::entry_to_wire(&entry);
        let row: Vec<serde_json::Value> = serde_json::from_str(&wire).expect("a JSON array");
        assert_eq!(row.len(), 18, "{wire}");
        assert_eq!(row[0], entry.sid.as_str());
        assert_eq!(row[12], entry.received_at_ms);
        assert_eq!(store::entry_from_wire(&wire).as_ref(), Ok(&entry), "{wire}");
    }
}

#[test]
fn a_wire_form_that_is_not_an_entrys_row_says_what_is_wrong() {
    let wire = store::entry_to_wire(&kept("MessageSid=SM1&Body=hi"));
    let mut row: Vec<serde_json::Value> = serde_json::from_str(&wire).expect("a JSON array");
    let with = |index: usize, value: serde_json::Value| {
        let mut row = row.clone();
        row[index] = value;
        store::entry_from_wire(&serde_json::Value::Array(row).to_string()).expect_err("refused")
    };
    assert_eq!(with(1, "fax".into()), "column channel");
    assert_eq!(with(12, "soon".into()), "column received_at_ms");
    assert_eq!(
        with(14, serde_json::json!(1.5)),
        "not a row: a number that is not an integer"
    );
    assert_eq!(
        with(5, serde_json::json!(true)),
        "not a row: a value that is not text, an integer or null"
    );
    row.pop();
    let short = serde_json::Value::Array(row).to_string();
    assert_eq!(
        store::entry_from_wire(&short),
        Err("not a row: 17 values, not 18".to_owned())
    );
    assert!(
        store::entry_from_wire("{}")
            .expect_err("refused")
            .starts_with("not a row")
    );
    assert!(
        store::entry_from_wire(&wire[..wire.len() - 1])
            .expect_err("refused")
            .starts_with("not a row: ")
    );
}

#[test]
fn dismissing_a_get_webhook_also_drops_the_query_that_carried_what_was_said() {
    let url = "https://fallback.example.com/sms?MessageSid=SM1&Body=my+card+is+4111&MediaUrl0=https%3A%2F%2Fm%2F0";
    let params = Params::from_query(crate::url::query(url).unwrap_or(""));
    let Capture::Keep(entry) = capture(&params, "GET", url, 5, Source::Edge) else {
        panic!()
    };
    assert_eq!(entry.url, url);
    let dismissed = entry.dismissed();
    assert_eq!(dismissed.url, "https://fallback.example.com/sms");
    assert!(!serde_json::to_string(&dismissed).expect("JSON").contains("4111"));
}
