//! Every customer message is read as it arrives: the analysis is stored with the message,
//! shown on the conversation page, and summarised across the conversation.

use serde_json::{json, Value};

use crate::common::TestApp;

async fn conversation_with(app: &TestApp, texts: &[&str]) -> String {
    let (_, conv) = app
        .send(
            "/v1/conversations",
            &json!({"userId": "frustrated", "channel": "chat", "subject": "Slow internet"}),
        )
        .await;
    let id = conv["id"].as_str().expect("id").to_owned();
    for (i, text) in texts.iter().enumerate() {
        let (status, msg) = app
            .send(
                &format!("/v1/conversations/{id}/messages"),
                &json!({"direction": "inbound", "author": "customer", "text": text,
                "timestamp": format!("2025-05-01T10:0{i}:00Z")}),
            )
            .await;
        assert_eq!(status, 201, "{msg}");
        assert!(
            msg["analysis"]["sentiment"]["score"].is_number(),
            "each message is analysed as it arrives: {msg}"
        );
        assert_eq!(msg["analysis"]["model"]["name"], "rapport-lexicon");
    }
    id
}

const FRUSTRATED: [&str; 3] = [
    "Hi, my internet has been slow since Monday.",
    "I already called twice and nothing changed. This is getting really annoying.",
    "This is ridiculous!!! Third time contacting you. Cancel my account, I'm done.",
];

#[tokio::test]
async fn a_frustrated_customers_sentiment_falls_across_three_messages() {
    let app = TestApp::spawn().await;
    let id = conversation_with(&app, &FRUSTRATED).await;
    let (status, detail) = app.get(&format!("/v1/conversations/{id}")).await;
    assert_eq!(status, 200);
    let a = &detail["analysis"];
    let trajectory: Vec<f64> = a["trajectory"]
        .as_array()
        .expect("trajectory")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(trajectory.len(), 3);
    assert!(
        trajectory[2] < trajectory[0],
        "sentiment falls: {trajectory:?}"
    );
    assert!(a["levels_dropped"].as_u64().unwrap_or(0) >= 2, "{a}");
    assert_eq!(a["escalate"], true);
    assert!(!a["repeated_contact"]
        .as_array()
        .expect("repeated")
        .is_empty());
    let last = &detail["messages"][2]["analysis"];
    let reasons: Vec<&str> = last["urgency"]["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert!(reasons.contains(&"cancellation"), "{reasons:?}");
    assert_eq!(last["intent"]["label"], "cancel_service");
}

#[tokio::test]
async fn agent_messages_are_stored_as_written_and_not_scored() {
    let app = TestApp::spawn().await;
    let (_, conv) = app
        .send(
            "/v1/conversations",
            &json!({"userId": "u", "channel": "email"}),
        )
        .await;
    let path = format!(
        "/v1/conversations/{}/messages",
        conv["id"].as_str().expect("id")
    );
    let (_, msg) = app
        .send(
            &path,
            &json!({"direction": "outbound", "author": "agent", "text": "We're sorry about this."}),
        )
        .await;
    assert!(msg["analysis"].is_null());
}

#[tokio::test]
async fn personal_data_can_be_kept_out_of_storage() {
    let app = TestApp::spawn_with(rapport_server::engine::EngineOptions {
        keep_raw_text: false,
        ..Default::default()
    })
    .await;
    let (_, conv) = app
        .send(
            "/v1/conversations",
            &json!({"userId": "p", "channel": "chat"}),
        )
        .await;
    let id = conv["id"].as_str().expect("id").to_owned();
    let text = "Please refund card 4111 1111 1111 1111, email me at pat@example.com";
    let (status, msg) = app
        .send(
            &format!("/v1/conversations/{id}/messages"),
            &json!({"direction": "inbound", "author": "customer", "text": text}),
        )
        .await;
    assert_eq!(status, 201);
    let stored = msg["text"].as_str().expect("text");
    assert!(
        !stored.contains("4111") && !stored.contains("pat@example.com"),
        "{stored}"
    );
    assert!(
        stored.contains("[CARD]") && stored.contains("[EMAIL]"),
        "{stored}"
    );
    let (_, detail) = app.get(&format!("/v1/conversations/{id}")).await;
    assert!(
        !detail.to_string().contains("pat@example.com"),
        "no copy of the address anywhere in the answer"
    );
}

#[tokio::test]
async fn the_conversation_page_shows_the_reading() {
    let app = TestApp::spawn().await;
    let id = conversation_with(&app, &FRUSTRATED).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let cookie = app.admin_session().await;
    let html = client
        .get(app.url(&format!("/conversations/{id}")))
        .header("cookie", cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    for want in [
        "conversation-analysis",
        "<svg class=\"spark\"",
        "<mark",
        "escalate",
        "cancellation",
        "intent cancel service",
    ] {
        assert!(html.contains(want), "conversation page shows {want}");
    }
}

#[tokio::test]
async fn analyze_reads_a_batch_and_stores_nothing() {
    let app = crate::common::TestApp::spawn().await;
    let long = "My internet is down again. ".repeat(1_000);
    let resp = app
        .client
        .post(app.url("/v1/analyze"))
        .bearer_auth(&app.admin_key)
        .json(&serde_json::json!({"texts": [
            {"id": "a", "text": "This is the third time my order is late and I want a refund now!"},
            {"text": "   "},
            {"id": 7, "text": long},
        ]}))
        .send()
        .await
        .expect("request");
    let (status, body) = crate::common::status_json(resp).await;
    assert_eq!(status, 200, "{body}");
    let r = body["results"].as_array().expect("results");
    assert_eq!(r.len(), 3);
    assert_eq!(r[0]["id"], "a");
    assert!(r[0]["sentiment"]["score"].as_f64().unwrap() < 0.0);
    assert_eq!(r[1]["id"], 1, "no id: the position");
    assert_eq!(r[2]["truncated"], true);
    assert_eq!(r[2]["chars"], 20_000);
    let (_, stats) = app.get("/v1/stats").await;
    assert_eq!(stats["events"], 0, "nothing stored: {stats}");
    let resp = app
        .client
        .post(app.url("/v1/analyze"))
        .bearer_auth(&app.admin_key)
        .json(&serde_json::json!({"texts": []}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 400);
}

/// The interpreter the engine is given (the neural one under `interpret.model = "neural"`)
/// is the one every message, and `/v1/analyze`, goes through.
#[tokio::test]
async fn messages_go_through_the_configured_interpreter() {
    use rapport_interpret::{Intent, IntentTaxonomy, Interpreter};
    let examples = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let taxonomy = IntentTaxonomy {
        intents: vec![
            Intent {
                name: "pizza_order".into(),
                examples: examples(&[
                    "I want to order a pizza",
                    "one large margherita please",
                    "can I get a pepperoni pizza delivered",
                    "order two pizzas for tonight",
                ]),
            },
            Intent {
                name: "table_booking".into(),
                examples: examples(&[
                    "book a table for four",
                    "reserve a table tonight at eight",
                    "do you have a free table on Friday",
                    "I would like a reservation for two",
                ]),
            },
        ],
        threshold: 0.0,
    };
    let interpreter = std::sync::Arc::new(Interpreter::embedded(taxonomy).expect("interpreter"));
    let app = TestApp::spawn_with(rapport_server::engine::EngineOptions {
        interpreter: Some(rapport_server::engine::SharedInterpreter(interpreter)),
        ..Default::default()
    })
    .await;
    let (_, conv) = app
        .send(
            "/v1/conversations",
            &json!({"userId": "hungry", "channel": "chat"}),
        )
        .await;
    let id = conv["id"].as_str().expect("id");
    let (status, msg) = app
        .send(
            &format!("/v1/conversations/{id}/messages"),
            &json!({"direction": "inbound", "author": "customer",
                    "text": "could you reserve a table for six on Saturday"}),
        )
        .await;
    assert_eq!(status, 201, "{msg}");
    assert_eq!(msg["analysis"]["intent"]["label"], "table_booking", "{msg}");
    let resp = app
        .client
        .post(app.url("/v1/analyze"))
        .bearer_auth(&app.admin_key)
        .json(
            &json!({"texts": [{"text": "a large pizza with pepperoni please"},
                                 {"text": "book a table for two"}]}),
        )
        .send()
        .await
        .expect("request");
    let (status, body) = crate::common::status_json(resp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["results"][0]["intent"]["label"], "pizza_order",
        "{body}"
    );
    assert_eq!(
        body["results"][1]["intent"]["label"], "table_booking",
        "{body}"
    );
    assert_eq!(body["results"][1]["id"], 1);
}
