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
fn a_probe_is_never_kept_whatever_else_it_looks_like() {
    for form in [
        "MessageSid=SM1&MessageStatus=received&TwimlFallbackProbe=probe-1a2b3c4d5e6f7a8b",
        "CallSid=CA1&CallStatus=ringing&Direction=inbound&TwimlFallbackProbe=probe-1a2b3c4d5e6f7a8b",
        "From=%2B1&TwimlFallbackProbe=probe-1",
    ] {
        assert_eq!(skipped(form), Skip::Probe, "{form}");
    }
    assert_eq!(Skip::Probe.as_str(), "not kept: a probe");
    // An empty value is no probe id: the request is judged as any other.
    assert_eq!(kept("MessageSid=SM1&TwimlFallbackProbe=").sid, "SM1");
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
        "replies",
        "next_attempt_ms",
    ] {
        assert!(json.get(field).is_some(), "{field} missing from {json}");
    }
    assert_eq!(json["replies"], serde_json::json!([]));
    assert_eq!(json["next_attempt_ms"], 0);
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
    let mut dismissed = mms.clone().dismissed();
    dismissed.attempts = 3;
    dismissed.last_error = Some("the app answered 500".to_owned());
    let mut retrying = mms.clone();
    retrying.attempts = 2;
    retrying.last_error = Some("the app answered 503".to_owned());
    retrying.next_attempt_ms = 1_700_000_060_000;
    let mut replayed = mms.clone();
    replayed.status = Status::Replayed;
    let mut sent = Reply::planned(
        ReplyKind::Answer,
        "+1415".to_owned(),
        "+1416".to_owned(),
        "Open \"till\" 9 ✓".to_owned(),
    );
    sent.media = vec!["https://app/m.png".to_owned()];
    sent.status_callback = Some("https://app/status".to_owned());
    sent.set(ReplyState::Sent, None);
    sent.message_sid = Some("SM0123456789abcdef0123456789abcdef".to_owned());
    let mut withheld = Reply::planned(
        ReplyKind::Answer,
        "+1415".to_owned(),
        "+1416".to_owned(),
        "late".to_owned(),
    );
    withheld.set(ReplyState::Withheld, Some("past the window".to_owned()));
    replayed.replies = vec![sent, withheld];
    let mut texted = call.clone();
    texted.replies = vec![Reply::planned(
        ReplyKind::MissedCall,
        "+1415".to_owned(),
        "+1416".to_owned(),
        "Sorry we missed you".to_owned(),
    )];
    for entry in [mms, call, *layer, dismissed, retrying, replayed, texted] {
        let wire = store::entry_to_wire(&entry);
        let row: Vec<serde_json::Value> = serde_json::from_str(&wire).expect("a JSON array");
        assert_eq!(row.len(), 20, "{wire}");
        assert_eq!(row[0], entry.sid.as_str());
        assert_eq!(row[12], entry.received_at_ms);
        let replies: Vec<Reply> =
            serde_json::from_str(row[18].as_str().expect("replies are JSON text")).expect("replies");
        assert_eq!(replies, entry.replies, "{wire}");
        assert_eq!(row[19], entry.next_attempt_ms, "{wire}");
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
    assert_eq!(with(18, "not json".into()), "column replies");
    assert_eq!(with(18, serde_json::json!(0)), "column replies");
    assert_eq!(with(18, r#"[{"kind":"answer"}]"#.into()), "column replies");
    assert_eq!(with(19, "soon".into()), "column next_attempt_ms");
    assert_eq!(with(19, serde_json::json!(-1)), "column next_attempt_ms");
    assert_eq!(with(19, serde_json::Value::Null), "column next_attempt_ms");
    let mut long = row.clone();
    long.push(serde_json::json!(0));
    assert_eq!(
        store::entry_from_wire(&serde_json::Value::Array(long).to_string()),
        Err("not a row: 21 values, not 20".to_owned())
    );
    row.pop();
    let short = serde_json::Value::Array(row).to_string();
    assert_eq!(
        store::entry_from_wire(&short),
        Err("not a row: 19 values, not 20".to_owned()),
        "a row from before schema 3 (without next_attempt_ms) is not an entry's"
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

#[test]
fn an_entry_written_before_replay_reads_back_with_no_replies_and_no_attempt_scheduled() {
    let entry = kept("MessageSid=SM1&From=%2B1415&To=%2B1416&Body=hi");
    let mut json = serde_json::to_value(&entry).expect("valid");
    let object = json.as_object_mut().expect("an object");
    object.remove("replies");
    object.remove("next_attempt_ms");
    let back: Entry = serde_json::from_value(json).expect("the older contract still reads");
    assert_eq!(back, entry);
}

#[test]
fn a_replys_json_names_its_kind_and_state_in_kebab_case_and_reads_back() {
    let mut reply = Reply::planned(
        ReplyKind::MissedCall,
        "+14155550100".to_owned(),
        "+14155550199".to_owned(),
        "Sorry we missed your call".to_owned(),
    );
    assert_eq!((reply.state, reply.sent), (ReplyState::Planned, false));
    reply.set(ReplyState::Sent, None);
    reply.message_sid = Some("SM0123456789abcdef0123456789abcdef".to_owned());
    assert!(reply.sent, "sent follows the state");
    let json = serde_json::to_value(&reply).expect("valid");
    assert_eq!(
        json,
        serde_json::json!({
            "kind": "missed-call", "to": "+14155550100", "from": "+14155550199",
            "body": "Sorry we missed your call", "media": [], "status_callback": null,
            "state": "sent", "sent": true, "message_sid": "SM0123456789abcdef0123456789abcdef", "error": null,
        })
    );
    assert_eq!(serde_json::from_value::<Reply>(json).expect("reads back"), reply);
    reply.set(ReplyState::Unknown, Some("timed out".to_owned()));
    assert_eq!((reply.sent, reply.error.as_deref()), (false, Some("timed out")));
    for state in [
        ReplyState::Planned,
        ReplyState::Sending,
        ReplyState::Sent,
        ReplyState::Withheld,
        ReplyState::Refused,
        ReplyState::Unknown,
    ] {
        assert_eq!(serde_json::to_value(state).expect("valid"), state.as_str());
    }
    assert_eq!(serde_json::to_value(ReplyKind::Answer).expect("valid"), "answer");
    // Optional fields may be left out.
    let minimal: Reply =
        serde_json::from_str(r#"{"kind":"answer","to":"+1","from":"+2","body":"hi","state":"withheld","sent":false}"#)
            .expect("reads");
    assert_eq!(
        (minimal.media.len(), minimal.message_sid, minimal.error),
        (0, None, None)
    );
}

#[test]
fn dismissing_also_deletes_what_the_replies_said() {
    let mut entry = kept("MessageSid=SM1&From=%2B1415&To=%2B1416&Body=my+card+is+4111");
    let mut reply = Reply::planned(
        ReplyKind::Answer,
        "+1415".to_owned(),
        "+1416".to_owned(),
        "Your card 4111 is blocked".to_owned(),
    );
    reply.media = vec!["https://app.example.com/card-4111.png".to_owned()];
    reply.set(ReplyState::Sent, None);
    entry.replies = vec![reply];
    let dismissed = entry.dismissed();
    assert!(!serde_json::to_string(&dismissed).expect("JSON").contains("4111"));
    assert_eq!(dismissed.replies.len(), 1, "the record of what was sent is kept");
    assert_eq!(dismissed.replies[0].state, ReplyState::Sent);
}

/// A driver that records each statement and answers with `rows`.
struct Recorder {
    statements: Vec<Statement>,
    rows: Vec<Vec<SqlValue>>,
}

impl Sql for Recorder {
    type Error = String;

    fn run(&mut self, statement: &Statement) -> Result<Vec<Vec<SqlValue>>, String> {
        self.statements.push(statement.clone());
        Ok(self.rows.clone())
    }
}

#[test]
fn saving_a_replay_state_writes_status_attempts_error_replies_and_next_attempt_unless_dismissed() {
    let mut entry = kept("MessageSid=SM1&From=%2B1415&To=%2B1416&Body=hi");
    entry.status = Status::Replaying;
    entry.attempts = 2;
    entry.last_error = Some("HTTP 500".to_owned());
    entry.next_attempt_ms = 1_700_000_090_000;
    entry.replies = vec![Reply::planned(
        ReplyKind::Answer,
        "+1415".to_owned(),
        "+1416".to_owned(),
        "ok".to_owned(),
    )];
    let mut found = Recorder {
        statements: Vec::new(),
        rows: vec![vec![SqlValue::Text("SM1".to_owned())]],
    };
    assert_eq!(queue::save(&mut found, &entry), Ok(true));
    let statement = &found.statements[0];
    assert!(
        statement.sql.starts_with("UPDATE inbox_entries SET"),
        "{}",
        statement.sql
    );
    assert!(
        statement.sql.contains("status != 'dismissed'"),
        "an operator's dismissal wins"
    );
    assert_eq!(
        statement.params,
        [
            SqlValue::Text("SM1".to_owned()),
            SqlValue::Text("replaying".to_owned()),
            SqlValue::Integer(2),
            SqlValue::Text("HTTP 500".to_owned()),
            SqlValue::Text(serde_json::to_string(&entry.replies).expect("JSON")),
            SqlValue::Integer(1_700_000_090_000),
        ]
    );
    entry.last_error = None;
    let mut gone = Recorder {
        statements: Vec::new(),
        rows: Vec::new(),
    };
    assert_eq!(
        queue::save(&mut gone, &entry),
        Ok(false),
        "gone or dismissed: the replay stops"
    );
    assert_eq!(gone.statements[0].params[3], SqlValue::Null);
}

#[test]
fn schema_3_adds_the_replay_columns_to_an_inbox_written_by_schema_2() {
    let mut at_two = Recorder {
        statements: Vec::new(),
        rows: vec![vec![SqlValue::Integer(2)]],
    };
    migrate(&mut at_two).expect("migrates");
    let sql: Vec<&str> = at_two.statements.iter().map(|statement| statement.sql).collect();
    assert!(
        !sql.iter().any(|sql| sql.starts_with("CREATE TABLE inbox_entries")),
        "{sql:?}"
    );
    assert!(
        sql.iter()
            .any(|sql| sql.contains("ADD COLUMN replies TEXT NOT NULL DEFAULT '[]'"))
    );
    assert!(
        sql.iter()
            .any(|sql| sql.contains("ADD COLUMN next_attempt_ms INTEGER NOT NULL DEFAULT 0"))
    );
    assert!(
        !sql.iter().any(|sql| sql.contains("ADD COLUMN refused")),
        "schema 2's migration is not run again"
    );
    let recorded = at_two.statements.last().expect("the version is recorded");
    assert_eq!(recorded.params, [SqlValue::Integer(store::SCHEMA_VERSION)]);
    assert!(
        sql.iter().any(|sql| sql.starts_with("CREATE TABLE incidents")),
        "and schema 4's incidents"
    );
    assert_eq!(store::SCHEMA_VERSION, 4);
    let mut newer = Recorder {
        statements: Vec::new(),
        rows: vec![vec![SqlValue::Integer(5)]],
    };
    assert_eq!(migrate(&mut newer), Err(StoreError::NewerSchema { found: 5, known: 4 }));
}
