//! Segment-compatible ingestion and the profile API, over real HTTP.

use std::io::Write;

use serde_json::{json, Value};

use crate::common::TestApp;

#[tokio::test]
async fn no_endpoint_answers_without_a_valid_key() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    for (method, path) in [
        ("POST", "/v1/track"),
        ("POST", "/v1/batch"),
        ("GET", "/v1/profiles?user_id=u"),
        ("GET", "/v1/stats"),
        ("POST", "/v1/conversations"),
    ] {
        let req = c.request(method.parse().expect("method"), app.url(path));
        let resp = req.try_clone().expect("clone").send().await.expect("send");
        assert_eq!(resp.status(), 401, "{method} {path} without key");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["code"], "missing_credentials");
        let resp = req.bearer_auth("rk_nope").send().await.expect("send");
        assert_eq!(resp.status(), 401, "{method} {path} with a bad key");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["code"], "invalid_credentials");
    }
}

#[tokio::test]
async fn write_keys_cannot_read() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .get(app.url("/v1/stats"))
        .basic_auth(&app.write_key, Some(""))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "forbidden");
}

#[tokio::test]
async fn every_call_type_lands_on_one_profile() {
    let app = TestApp::spawn().await;
    let steps = [
        (
            "/v1/page",
            json!({"anonymousId": "anon-1", "name": "Pricing", "properties": {"path": "/pricing"}}),
        ),
        (
            "/v1/screen",
            json!({"anonymousId": "anon-1", "name": "Home"}),
        ),
        (
            "/v1/identify",
            json!({"anonymousId": "anon-1", "userId": "user-1", "traits": {"name": "Zora Neale", "email": "Zora@Example.com", "phone": "+1 202 555 0143"}}),
        ),
        (
            "/v1/track",
            json!({"userId": "user-1", "event": "Order Completed", "properties": {"revenue": 42.5}, "context": {"channel": "purchase"}}),
        ),
        (
            "/v1/group",
            json!({"userId": "user-1", "groupId": "acme", "traits": {"name": "Acme"}}),
        ),
        (
            "/v1/alias",
            json!({"userId": "user-1", "previousId": "legacy-9"}),
        ),
    ];
    for (path, body) in steps {
        let (status, resp) = app.send(path, &body).await;
        assert_eq!(status, 200, "{path}: {resp}");
        assert_eq!(resp["success"], true);
    }
    let (status, by_user) = app.get("/v1/profiles?user_id=user-1").await;
    assert_eq!(status, 200);
    let id = by_user["id"].as_str().expect("id").to_owned();
    for q in [
        "email=zora@example.com",
        "phone=%2B12025550143",
        "anonymous_id=anon-1",
        "anonymous_id=legacy-9",
    ] {
        let (status, p) = app.get(&format!("/v1/profiles?{q}")).await;
        assert_eq!(status, 200, "{q}");
        assert_eq!(p["id"], id.as_str(), "{q}");
    }
    assert_eq!(by_user["name"], "Zora Neale");
    assert_eq!(by_user["event_count"], 6);
    let channels: Vec<&str> = by_user["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(channels, ["web", "app", "purchase", "server"]);
    let (status, p) = app.get(&format!("/v1/profiles/{id}")).await;
    assert_eq!((status, &p["id"]), (200, &Value::String(id.clone())));
    let (status, err) = app.get("/v1/profiles?user_id=nobody").await;
    assert_eq!((status, err["code"].as_str()), (404, Some("not_found")));
    let (status, err) = app
        .get("/v1/profiles/prof_00000000000000000000000000000000")
        .await;
    assert_eq!(status, 404, "{err}");
    let (status, err) = app.get("/v1/profiles?user_id=a&email=b@c.de").await;
    assert_eq!((status, err["code"].as_str()), (400, Some("invalid_query")));
}

#[tokio::test]
async fn a_repeated_message_id_is_acknowledged_but_applied_once() {
    let app = TestApp::spawn().await;
    let e = json!({"userId": "u", "event": "Clicked", "messageId": "retry-me"});
    let (s1, r1) = app.send("/v1/track", &e).await;
    let (s2, r2) = app.send("/v1/track", &e).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(
        (
            r1["applied"].as_u64(),
            r2["applied"].as_u64(),
            r2["duplicates"].as_u64()
        ),
        (Some(1), Some(0), Some(1))
    );
    let (_, p) = app.get("/v1/profiles?user_id=u").await;
    assert_eq!(p["event_count"], 1);
}

#[tokio::test]
async fn traits_follow_event_time_not_arrival() {
    let app = TestApp::spawn().await;
    app.send(
        "/v1/identify",
        &json!({"userId": "u", "timestamp": "2025-01-02T00:00:00Z", "traits": {"plan": "gold"}}),
    )
    .await;
    app.send(
        "/v1/identify",
        &json!({"userId": "u", "timestamp": "2025-01-01T00:00:00Z", "traits": {"plan": "bronze"}}),
    )
    .await;
    let (_, p) = app.get("/v1/profiles?user_id=u").await;
    assert_eq!(p["traits"]["plan"], "gold");
}

#[tokio::test]
async fn batches_are_all_or_nothing_with_failing_indexes() {
    let app = TestApp::spawn().await;
    let bad = json!({"batch": [
        {"type": "identify", "userId": "b1", "traits": {"name": "Never Applied"}},
        {"type": "track", "event": "no identity"},
        {"type": "track", "userId": "b1", "event": "X", "timestamp": "not a time"},
    ]});
    let (status, err) = app.send("/v1/batch", &bad).await;
    assert_eq!(status, 400);
    assert_eq!(err["code"], "invalid_batch");
    let idx: Vec<(u64, &str)> = err["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().expect("index"),
                e["code"].as_str().expect("code"),
            )
        })
        .collect();
    assert_eq!(idx, [(1, "missing_identity"), (2, "invalid_timestamp")]);
    let (status, _) = app.get("/v1/profiles?user_id=b1").await;
    assert_eq!(status, 404, "nothing from a refused batch is applied");

    let good = json!({"batch": [
        {"type": "identify", "userId": "b1", "traits": {"name": "Applied"}, "_metadata": {"bundled": ["x"]}},
        {"type": "track", "userId": "b1", "event": "Y", "messageId": "y-1"},
    ], "sentAt": "2025-01-01T00:00:00Z", "_metadata": {"nodeVersion": "20"}});
    let (status, ok) = app.send("/v1/batch", &good).await;
    assert_eq!((status, ok["applied"].as_u64()), (200, Some(2)));
    let (_, p) = app.get("/v1/profiles?user_id=b1").await;
    let id = p["id"].as_str().expect("id");
    let (_, page) = app.get(&format!("/v1/profiles/{id}/events")).await;
    let bodies: Vec<&Value> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| &e["body"])
        .collect();
    assert!(
        bodies.iter().all(|b| b["_metadata"].is_object()),
        "unknown top-level fields are kept: {bodies:?}"
    );
}

#[tokio::test]
async fn bad_input_gets_stable_codes() {
    let app = TestApp::spawn().await;
    let raw = |path: &'static str, body: &'static str| {
        let app = &app;
        async move {
            let resp = app
                .client
                .post(app.url(path))
                .basic_auth(&app.write_key, Some(""))
                .body(body)
                .send()
                .await
                .expect("send");
            crate::common::status_json(resp).await
        }
    };
    let cases = [
        (raw("/v1/track", "{oops").await, 400, "invalid_json"),
        (raw("/v1/track", "[1,2]").await, 400, "invalid_field"),
        (
            raw("/v1/track", r#"{"event": "X"}"#).await,
            400,
            "missing_identity",
        ),
        (
            raw("/v1/track", r#"{"userId": ["u"], "event": "X"}"#).await,
            400,
            "invalid_field",
        ),
        (
            raw(
                "/v1/track",
                r#"{"userId": "u", "event": "X", "timestamp": "Tuesday"}"#,
            )
            .await,
            400,
            "invalid_timestamp",
        ),
        (
            raw("/v1/track", r#"{"userId": "u"}"#).await,
            400,
            "missing_field",
        ),
        (
            raw(
                "/v1/track",
                r#"{"userId": "u", "event": "X", "properties": "p"}"#,
            )
            .await,
            400,
            "invalid_field",
        ),
        (
            raw("/v1/batch", r#"{"batch": []}"#).await,
            400,
            "empty_batch",
        ),
        (
            raw("/v1/batch", r#"{"events": []}"#).await,
            400,
            "missing_field",
        ),
    ];
    for ((status, body), want_status, want_code) in cases {
        assert_eq!(
            (status, body["code"].as_str()),
            (want_status, Some(want_code)),
            "{body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn size_limits_answer_413() {
    let app = TestApp::spawn().await;
    let blob = "x".repeat(33 * 1024);
    let (status, err) = app
        .send(
            "/v1/track",
            &json!({"userId": "u", "event": "X", "properties": {"b": blob}}),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (413, Some("event_too_large"))
    );
    let events: Vec<Value> = (0..20).map(|i| json!({"type": "track", "userId": "u", "event": format!("E{i}"), "properties": {"b": "y".repeat(30_000)}})).collect();
    let (status, err) = app.send("/v1/batch", &json!({"batch": events})).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (413, Some("batch_too_large"))
    );
    let (status, err) = app.send("/v1/batch", &json!({"batch": [{"type": "track", "userId": "u", "event": "X", "properties": {"b": blob}}]})).await;
    assert_eq!((status, err["code"].as_str()), (400, Some("invalid_batch")));
    assert_eq!(err["errors"][0]["code"], "event_too_large");
    let (status, _) = app.get("/v1/profiles?user_id=u").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    let app = TestApp::spawn().await;
    let body =
        json!({"batch": [{"type": "identify", "userId": "gz", "traits": {"name": "Zipped"}}]})
            .to_string();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(body.as_bytes()).expect("gzip");
    let resp = app
        .client
        .post(app.url("/v1/batch"))
        .basic_auth(&app.write_key, Some(""))
        .header("content-encoding", "gzip")
        .header("content-type", "application/json")
        .body(enc.finish().expect("gzip"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let (_, p) = app.get("/v1/profiles?user_id=gz").await;
    assert_eq!(p["name"], "Zipped");
}

#[tokio::test]
async fn timelines_page_with_cursors_and_search_finds_prefixes() {
    let app = TestApp::spawn().await;
    let events: Vec<Value> = (0..120).map(|i| json!({"type": "track", "userId": "t", "event": format!("E{i}"), "messageId": format!("t-{i}"),
        "timestamp": format!("2025-01-01T00:{:02}:{:02}Z", i / 60, i % 60)})).collect();
    app.send("/v1/batch", &json!({"batch": events})).await;
    app.send(
        "/v1/identify",
        &json!({"userId": "t", "traits": {"name": "Toni Morrison", "email": "toni@example.com"}}),
    )
    .await;
    let (_, p) = app.get("/v1/profiles?user_id=t").await;
    let id = p["id"].as_str().expect("id").to_owned();
    let mut seen = std::collections::BTreeSet::new();
    let mut url = format!("/v1/profiles/{id}/events?limit=50");
    loop {
        let (status, page) = app.get(&url).await;
        assert_eq!(status, 200, "{page}");
        for e in page["events"].as_array().expect("events") {
            assert!(
                seen.insert(e["message_id"].as_str().expect("id").to_owned()),
                "no event twice"
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => url = format!("/v1/profiles/{id}/events?limit=50&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 121);
    let (status, err) = app
        .get(&format!("/v1/profiles/{id}/events?cursor=garbage"))
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
    let (status, err) = app.get(&format!("/v1/profiles/{id}/events?limit=0")).await;
    assert_eq!((status, err["code"].as_str()), (400, Some("invalid_query")));
    for q in ["toni", "Morr", "toni%40ex"] {
        let (status, found) = app.get(&format!("/v1/profiles/search?q={q}")).await;
        assert_eq!(status, 200);
        assert_eq!(found["profiles"][0]["id"], id.as_str(), "{q}");
    }
    let (_, none) = app.get("/v1/profiles/search?q=zzz").await;
    assert_eq!(none["profiles"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn a_key_of_one_workspace_never_reads_another() {
    let app = TestApp::spawn().await;
    app.send(
        "/v1/identify",
        &json!({"userId": "secret", "traits": {"name": "Private Person"}}),
    )
    .await;
    let (_, p) = app.get("/v1/profiles?user_id=secret").await;
    let id = p["id"].as_str().expect("id").to_owned();
    let (_, other_key) = app.other_workspace("rival").await;
    let get = |path: String| {
        let app = &app;
        let key = other_key.clone();
        async move {
            let resp = app
                .client
                .get(app.url(&path))
                .bearer_auth(key)
                .send()
                .await
                .expect("send");
            crate::common::status_json(resp).await
        }
    };
    assert_eq!(get("/v1/profiles?user_id=secret".into()).await.0, 404);
    assert_eq!(get(format!("/v1/profiles/{id}")).await.0, 404);
    assert_eq!(get(format!("/v1/profiles/{id}/events")).await.0, 404);
    assert_eq!(get(format!("/v1/profiles/{id}/conversations")).await.0, 404);
    let (_, found) = get("/v1/profiles/search?q=priv".into()).await;
    assert_eq!(found["profiles"].as_array().map(Vec::len), Some(0));
    let (_, stats) = get("/v1/stats".into()).await;
    assert_eq!(
        (stats["workspace"].as_str(), stats["profiles"].as_i64()),
        (Some("rival"), Some(0))
    );
}

#[tokio::test]
async fn clock_skew_is_corrected_over_http() {
    let app = TestApp::spawn().await;
    // The device's clock is exactly one day ahead; the event happened 5 s before it was sent.
    let now = chrono::Utc::now();
    let sent = now + chrono::Duration::days(1);
    let ts = sent - chrono::Duration::seconds(5);
    let fmt = rapport_core::time::format;
    app.send(
        "/v1/track",
        &json!({"userId": "skew", "event": "X", "timestamp": fmt(ts), "sentAt": fmt(sent)}),
    )
    .await;
    let (_, p) = app.get("/v1/profiles?user_id=skew").await;
    let seen = chrono::DateTime::parse_from_rfc3339(p["last_seen"].as_str().expect("last_seen"))
        .expect("time");
    let off = (now - chrono::Duration::seconds(5)) - seen.with_timezone(&chrono::Utc);
    assert!(
        off.num_seconds().abs() < 30,
        "corrected to the server's clock, off by {off}"
    );
}

#[tokio::test]
async fn identifiers_are_standardised_and_bad_values_flagged_not_dropped() {
    let app = TestApp::spawn().await;
    app.send("/v1/identify", &json!({"userId": "std-1", "timestamp": "2025-01-01T00:00:00Z",
        "traits": {"email": "John.Doe+promo@GMAIL.com", "phone": "(202) 555-0143", "country": "United Kingdom",
                   "birthday": "2001-02-03", "name": "  dr. ada   LOVELACE "}})).await;
    let (status, p) = app.get("/v1/profiles?user_id=std-1").await;
    assert_eq!(status, 200);
    assert_eq!(
        p["traits"]["phone"], "(202) 555-0143",
        "raw values are kept"
    );
    assert_eq!(p["standardized_traits"]["phone"], "+12025550143");
    assert_eq!(p["standardized_traits"]["country"], "GB");
    let ids: Vec<String> = p["identities"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["kind"].as_str().unwrap_or(""),
                i["value"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(ids.contains(&"phone:+12025550143".to_owned()), "{ids:?}");
    assert!(
        ids.contains(&"email:johndoe@gmail.com".to_owned()),
        "gmail dots and +tags are one mailbox: {ids:?}"
    );
    // The same customer is found however the identifier is written.
    for q in [
        "email=johndoe%40gmail.com",
        "email=j.o.h.n.doe%40googlemail.com",
        "phone=202-555-0143",
        "phone=%2B1%20202%20555%200143",
    ] {
        let (status, found) = app.get(&format!("/v1/profiles?{q}")).await;
        assert_eq!((status, &found["id"]), (200, &p["id"]), "{q}");
    }
    assert!(p["data_quality"].as_array().expect("dq").is_empty());

    // A later identify with an invalid email: flagged on the profile, raw kept, no identity made.
    app.send(
        "/v1/identify",
        &json!({"userId": "std-1", "timestamp": "2025-01-02T00:00:00Z",
        "traits": {"email": "john at example", "country": "Atlantis"}}),
    )
    .await;
    let (_, p) = app.get("/v1/profiles?user_id=std-1").await;
    let dq: Vec<(&str, &str)> = p["data_quality"]
        .as_array()
        .expect("dq")
        .iter()
        .map(|d| {
            (
                d["field"].as_str().unwrap_or(""),
                d["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(dq.len(), 2, "{dq:?}");
    assert!(
        dq.iter().any(|(f, _)| *f == "email") && dq.iter().any(|(f, _)| *f == "country"),
        "{dq:?}"
    );
    assert_eq!(
        p["traits"]["email"], "john at example",
        "never silently dropped"
    );
    assert!(p["standardized_traits"]["email"].is_null());

    // A valid value later clears the flag on that field.
    app.send("/v1/identify", &json!({"userId": "std-1", "timestamp": "2025-01-03T00:00:00Z", "traits": {"email": "john@example.com"}})).await;
    let (_, p) = app.get("/v1/profiles?user_id=std-1").await;
    let fields: Vec<&str> = p["data_quality"]
        .as_array()
        .expect("dq")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(fields, ["country"]);
}

#[tokio::test]
async fn every_merge_is_logged_with_its_reason() {
    let app = TestApp::spawn().await;
    app.send(
        "/v1/page",
        &json!({"anonymousId": "visitor-9", "timestamp": "2025-01-01T00:00:00Z"}),
    )
    .await;
    app.send(
        "/v1/identify",
        &json!({"userId": "member-9", "timestamp": "2025-01-02T00:00:00Z"}),
    )
    .await;
    app.send(
        "/v1/alias",
        &json!({"userId": "member-9", "previousId": "visitor-9", "messageId": "alias-9"}),
    )
    .await;
    let (_, p) = app.get("/v1/profiles?user_id=member-9").await;
    let id = p["id"].as_str().expect("id");
    let (status, log) = app.get(&format!("/v1/profiles/{id}/merges")).await;
    assert_eq!(status, 200, "{log}");
    let merges = log["merges"].as_array().expect("merges");
    assert_eq!(merges.len(), 1);
    assert_eq!(merges[0]["rule"], "alias");
    assert_eq!(merges[0]["message_id"], "alias-9");
    assert_eq!(merges[0]["survivor"], id);
    assert!(
        !log.to_string().contains("visitor-9"),
        "the log names identifier kinds, never values"
    );
}
