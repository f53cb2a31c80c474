//! Conversations over HTTP: open for a customer named in any of four ways, append messages,
//! read back, and find them on the customer's timeline.

use serde_json::json;

use crate::common::TestApp;

#[tokio::test]
async fn a_conversation_belongs_to_a_profile_and_shows_on_its_timeline() {
    let app = TestApp::spawn().await;
    let (status, conv) = app
        .send("/v1/conversations", &json!({"email": "Worried@Example.com", "channel": "email", "subject": "Charged twice"}))
        .await;
    assert_eq!(status, 201, "{conv}");
    let conv_id = conv["id"].as_str().expect("id").to_owned();
    let (_, profile) = app.get("/v1/profiles?email=worried@example.com").await;
    assert_eq!(conv["profile_id"], profile["id"]);

    let path = format!("/v1/conversations/{conv_id}/messages");
    for (i, (dir, author, text)) in [
        ("inbound", "customer", "I was charged twice for October."),
        (
            "outbound",
            "agent",
            "I'm sorry about that. I've refunded the duplicate charge.",
        ),
        ("inbound", "customer", "Thank you!"),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, msg) = app
            .send(&path, &json!({"direction": dir, "author": author, "text": text, "messageId": format!("m{i}"),
                                 "timestamp": format!("2025-03-01T10:0{i}:00Z")}))
            .await;
        assert_eq!(status, 201, "{msg}");
    }
    let (status, again) = app.send(&path, &json!({"direction": "inbound", "author": "customer", "text": "Thank you!", "messageId": "m2"})).await;
    assert_eq!(status, 200, "a repeated messageId is acknowledged: {again}");

    let (status, detail) = app.get(&format!("/v1/conversations/{conv_id}")).await;
    assert_eq!(status, 200);
    let texts: Vec<&str> = detail["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].as_str().expect("text"))
        .collect();
    assert_eq!(
        texts,
        [
            "I was charged twice for October.",
            "I'm sorry about that. I've refunded the duplicate charge.",
            "Thank you!"
        ]
    );
    assert_eq!(detail["conversation"]["message_count"], 3);

    let pid = profile["id"].as_str().expect("id");
    let (_, list) = app.get(&format!("/v1/profiles/{pid}/conversations")).await;
    assert_eq!(list["conversations"][0]["id"], conv_id.as_str());
    let (_, timeline) = app.get(&format!("/v1/profiles/{pid}/events")).await;
    let kinds: Vec<&str> = timeline["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(kinds, ["message", "message", "message"]);
}

#[tokio::test]
async fn customers_can_be_named_by_user_id_anonymous_id_or_profile_id() {
    let app = TestApp::spawn().await;
    app.send(
        "/v1/identify",
        &json!({"userId": "known", "anonymousId": "anon-k"}),
    )
    .await;
    let (_, p) = app.get("/v1/profiles?user_id=known").await;
    for body in [
        json!({"userId": "known", "channel": "chat"}),
        json!({"anonymousId": "anon-k", "channel": "sms"}),
        json!({"profileId": p["id"], "channel": "voice", "subject": "Call about outage"}),
    ] {
        let (status, conv) = app.send("/v1/conversations", &body).await;
        assert_eq!(status, 201, "{body}: {conv}");
        assert_eq!(conv["profile_id"], p["id"]);
    }
}

#[tokio::test]
async fn bad_conversation_requests_are_refused_clearly() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"channel": "chat"}), 400, "missing_identity"),
        (
            json!({"userId": "a", "email": "a@b.co", "channel": "chat"}),
            400,
            "invalid_field",
        ),
        (
            json!({"userId": "a", "channel": "fax"}),
            400,
            "invalid_field",
        ),
        (
            json!({"email": "not-an-email", "channel": "chat"}),
            400,
            "invalid_field",
        ),
        (
            json!({"userId": "a", "channel": "chat", "timestamp": "soon"}),
            400,
            "invalid_timestamp",
        ),
        (
            json!({"userId": "a", "channel": "chat", "colour": "red"}),
            400,
            "invalid_field",
        ),
        (
            json!({"profileId": "prof_00000000000000000000000000000000", "channel": "chat"}),
            404,
            "not_found",
        ),
    ];
    for (body, status, code) in cases {
        let (got, err) = app.send("/v1/conversations", &body).await;
        assert_eq!(
            (got, err["code"].as_str()),
            (status, Some(code)),
            "{body}: {err}"
        );
    }
    let (_, conv) = app
        .send(
            "/v1/conversations",
            &json!({"userId": "a", "channel": "chat"}),
        )
        .await;
    let path = format!(
        "/v1/conversations/{}/messages",
        conv["id"].as_str().expect("id")
    );
    for (body, code) in [
        (
            json!({"direction": "sideways", "author": "customer", "text": "hi"}),
            "invalid_field",
        ),
        (
            json!({"direction": "inbound", "author": "robot", "text": "hi"}),
            "invalid_field",
        ),
        (
            json!({"direction": "inbound", "author": "customer", "text": "   "}),
            "invalid_field",
        ),
        (
            json!({"direction": "inbound", "author": "customer"}),
            "invalid_field",
        ),
    ] {
        let (status, err) = app.send(&path, &body).await;
        assert_eq!(
            (status, err["code"].as_str()),
            (400, Some(code)),
            "{body}: {err}"
        );
    }
    let resp = app
        .client
        .post(app.url(&path))
        .basic_auth(&app.write_key, Some(""))
        .header("content-type", "application/json")
        .body("{broken")
        .send()
        .await
        .expect("send");
    let (status, err) = crate::common::status_json(resp).await;
    assert_eq!((status, err["code"].as_str()), (400, Some("invalid_json")));
    let (status, _) = app
        .send(
            "/v1/conversations/conv_00000000000000000000000000000000/messages",
            &json!({"direction": "inbound", "author": "customer", "text": "hi"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/v1/conversations/not-an-id").await;
    assert_eq!(status, 404);
}
