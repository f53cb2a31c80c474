use super::*;
use proptest::prelude::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    parse_timestamp("2025-06-01T12:00:00Z").unwrap()
}

fn single(t: EventType, v: Value) -> Result<Event, IngestError> {
    parse_single(t, v.to_string().as_bytes(), now(), &Limits::default())
}

#[test]
fn identify_keeps_traits_and_unknown_fields() {
    let e = single(
        EventType::Identify,
        json!({"userId": "u1", "traits": {"email": "A@Example.com", "name": "Ada"},
               "messageId": "m1", "_metadata": {"nodeVersion": "20"}}),
    )
    .unwrap();
    assert_eq!(e.user_id.as_ref().unwrap().value(), "u1");
    assert_eq!(e.message_id, "m1");
    assert_eq!(e.body["_metadata"]["nodeVersion"], "20");
    let ids: Vec<String> = e.identifiers().iter().map(ToString::to_string).collect();
    assert_eq!(ids, ["user_id:u1", "email:a@example.com"]);
}

#[test]
fn numeric_user_ids_are_coerced_and_objects_refused() {
    let e = single(EventType::Track, json!({"userId": 42, "event": "X"})).unwrap();
    assert_eq!(e.user_id.as_ref().unwrap().value(), "42");
    let err = single(EventType::Track, json!({"userId": {"a": 1}, "event": "X"})).unwrap_err();
    assert_eq!(err.code(), "invalid_field");
}

#[test]
fn identity_is_required() {
    let err = single(EventType::Track, json!({"event": "X"})).unwrap_err();
    assert_eq!(err.code(), "missing_identity");
    let err = single(EventType::Track, json!({"userId": "  ", "event": "X"})).unwrap_err();
    assert_eq!(err.code(), "missing_identity");
}

#[test]
fn clock_skew_is_corrected_from_sent_at() {
    // The device clock runs 10 minutes fast: it says it sent at 12:10 what happened at 12:05.
    let e = single(
        EventType::Track,
        json!({"userId": "u", "event": "X", "timestamp": "2025-06-01T12:05:00Z",
               "sentAt": "2025-06-01T12:10:00Z"}),
    )
    .unwrap();
    assert_eq!(format(e.timestamp), "2025-06-01T11:55:00.000Z");
    assert_eq!(e.body["originalTimestamp"], "2025-06-01T12:05:00.000Z");
    assert_eq!(e.body["receivedAt"], "2025-06-01T12:00:00.000Z");
}

#[test]
fn missing_timestamp_means_received_at() {
    let e = single(EventType::Page, json!({"anonymousId": "a"})).unwrap();
    assert_eq!(e.timestamp, now());
    assert_eq!(e.channel, Channel::Web);
    assert!(e.message_id.starts_with("rapport-"));
}

#[test]
fn bad_timestamps_are_refused() {
    for field in ["timestamp", "sentAt", "originalTimestamp"] {
        let mut v = json!({"userId": "u", "event": "X"});
        v[field] = json!("last tuesday");
        assert_eq!(
            single(EventType::Track, v).unwrap_err().code(),
            "invalid_timestamp"
        );
    }
}

#[test]
fn malformed_json_and_wrong_shapes() {
    let err = parse_single(EventType::Track, b"{not json", now(), &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "invalid_json");
    assert_eq!(
        single(EventType::Track, json!([1, 2])).unwrap_err().code(),
        "invalid_field"
    );
    let err = single(
        EventType::Track,
        json!({"userId": "u", "event": "X", "properties": 3}),
    );
    assert_eq!(err.unwrap_err().code(), "invalid_field");
    assert_eq!(
        single(EventType::Track, json!({"userId": "u"}))
            .unwrap_err()
            .code(),
        "missing_field"
    );
    let err = single(
        EventType::Track,
        json!({"userId": "u", "event": "X", "type": "page"}),
    );
    assert_eq!(err.unwrap_err().code(), "invalid_type");
}

#[test]
fn alias_and_group_need_their_ids() {
    assert_eq!(
        single(EventType::Alias, json!({"userId": "u"}))
            .unwrap_err()
            .code(),
        "missing_field"
    );
    assert!(single(EventType::Alias, json!({"userId": "u", "previousId": "a"})).is_ok());
    assert_eq!(
        single(EventType::Group, json!({"userId": "u"}))
            .unwrap_err()
            .code(),
        "missing_field"
    );
    assert!(single(EventType::Group, json!({"userId": "u", "groupId": 7})).is_ok());
}

#[test]
fn size_limits() {
    let big = "x".repeat(33 * 1024);
    let v = json!({"userId": "u", "event": "X", "properties": {"blob": big}});
    let err = single(EventType::Track, v.clone()).unwrap_err();
    assert_eq!(
        (err.code(), err.kind()),
        ("event_too_large", ErrorKind::TooLarge)
    );

    let batch = json!({"batch": [{"type": "track", "userId": "u", "event": "ok"}, {"type": "track", "userId": "u", "event": "X", "properties": {"blob": big}}]});
    let err = parse_batch(batch.to_string().as_bytes(), now(), &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "invalid_batch");
    assert_eq!(err.items()[0].index, 1);
    assert_eq!(err.items()[0].code, "event_too_large");

    let huge: Vec<Value> = (0..20).map(|_| v.clone()).collect();
    let body = json!({"batch": huge}).to_string();
    let err = parse_batch(body.as_bytes(), now(), &Limits::default()).unwrap_err();
    assert_eq!(
        (err.code(), err.kind()),
        ("batch_too_large", ErrorKind::TooLarge)
    );
}

#[test]
fn batch_lists_every_failing_index() {
    let body = json!({"batch": [
        {"type": "track", "userId": "u", "event": "ok"},
        {"type": "track", "event": "no identity"},
        {"type": "bogus", "userId": "u"},
        {"type": "identify", "userId": "u", "timestamp": "nope"},
    ]});
    let err = parse_batch(body.to_string().as_bytes(), now(), &Limits::default()).unwrap_err();
    let got: Vec<(usize, &str)> = err.items().iter().map(|i| (i.index, i.code)).collect();
    assert_eq!(
        got,
        [
            (1, "missing_identity"),
            (2, "invalid_type"),
            (3, "invalid_timestamp")
        ]
    );
}

#[test]
fn batch_shares_context_sent_at_and_extras() {
    let body = json!({
        "batch": [{"type": "track", "userId": "u", "event": "X", "timestamp": "2025-06-01T11:00:00Z",
                   "context": {"ip": "1.2.3.4"}}],
        "sentAt": "2025-06-01T11:30:00Z",
        "context": {"library": {"name": "analytics-python"}, "ip": "9.9.9.9"},
        "writeKey": "secret",
        "_metadata": {"x": 1}
    });
    let events = parse_batch(body.to_string().as_bytes(), now(), &Limits::default()).unwrap();
    let e = &events[0];
    assert_eq!(e.context["ip"], "1.2.3.4");
    assert_eq!(e.context["library"]["name"], "analytics-python");
    assert_eq!(format(e.timestamp), "2025-06-01T11:30:00.000Z");
    assert_eq!(e.body["_metadata"]["x"], 1);
    assert!(e.body.get("writeKey").is_none());
    assert_eq!(e.channel, Channel::Server);
}

#[test]
fn channel_inference() {
    let ctx = |v: Value| v.as_object().unwrap().clone();
    assert_eq!(
        infer_channel(EventType::Track, &ctx(json!({"channel": "chat"}))),
        Channel::Chat
    );
    assert_eq!(
        infer_channel(EventType::Track, &ctx(json!({"channel": "browser"}))),
        Channel::Web
    );
    assert_eq!(
        infer_channel(EventType::Screen, &ctx(json!({}))),
        Channel::App
    );
    assert_eq!(
        infer_channel(
            EventType::Track,
            &ctx(json!({"library": {"name": "analytics-ios"}}))
        ),
        Channel::App
    );
}

#[test]
fn import_lines_need_a_type() {
    let err = parse_line(r#"{"userId":"u","event":"X"}"#, now(), &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "missing_field");
    assert!(parse_line(
        r#"{"type":"track","userId":"u","event":"X"}"#,
        now(),
        &Limits::default()
    )
    .is_ok());
}

proptest! {
    // Whatever bytes arrive, parsing answers (no panic), and what it accepts is a valid event.
    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(e) = parse_single(EventType::Track, &body, now(), &Limits::default()) {
            prop_assert!(e.user_id.is_some() || e.anonymous_id.is_some());
        }
    }

    // Skew correction moves the event by exactly the sender's send delay.
    #[test]
    fn skew_correction_preserves_send_delay(delay_ms in 0i64..86_400_000, skew_ms in -86_400_000i64..86_400_000) {
        let sent = now() + Duration::milliseconds(skew_ms);
        let ts = sent - Duration::milliseconds(delay_ms);
        let v = json!({"userId": "u", "event": "X", "timestamp": format(ts), "sentAt": format(sent)});
        let e = single(EventType::Track, v).unwrap();
        prop_assert_eq!(now() - e.timestamp, Duration::milliseconds(delay_ms));
    }
}
