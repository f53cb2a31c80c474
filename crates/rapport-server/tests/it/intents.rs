//! Intent models retrained from agents' corrections: correct messages, retrain, and the
//! workspace's next similar message is read as corrected; the version goes up; rollback
//! restores the earlier reading; another server over the same store follows without a
//! restart; bad inputs get their codes.

use std::sync::Arc;

use rapport_core::KeyRole;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{call, key, TestApp};

/// Billing decided that money back for a double charge is a billing dispute, not a refund
/// request; the built-in model reads these as refund requests.
const DOUBLE_CHARGES: [&str; 5] = [
    "I want my money back for the double charge",
    "money back for the double charge please",
    "I want my money back, you charged me double",
    "give me my money back for the double charge on my card ana@example.com",
    "I want my money back for this double charge now",
];
const PROBE: &str = "I want my money back for the double charge last week";

async fn conversation(app: &TestApp, user: &str) -> String {
    let (status, conv) = app
        .send(
            "/v1/conversations",
            &json!({"userId": user, "channel": "chat", "subject": "Charges"}),
        )
        .await;
    assert_eq!(status, 201, "{conv}");
    conv["id"].as_str().expect("id").to_owned()
}

async fn say(app: &TestApp, conv: &str, text: &str) -> Value {
    let (status, msg) = app
        .send(
            &format!("/v1/conversations/{conv}/messages"),
            &json!({"direction": "inbound", "author": "customer", "text": text}),
        )
        .await;
    assert_eq!(status, 201, "{msg}");
    msg
}

fn intent(msg: &Value) -> Option<&str> {
    msg["analysis"]["intent"]["label"].as_str()
}

fn intent_version(msg: &Value) -> u64 {
    msg["analysis"]["model"]["intent_model_version"]
        .as_u64()
        .expect("intent model version in the stored analysis")
}

#[tokio::test]
async fn corrections_retrain_the_workspace_model_and_rollback_restores_it() {
    let app = TestApp::spawn().await;
    let agent = key(&app, KeyRole::Agent).await;
    let conv = conversation(&app, "double").await;
    let before = say(&app, &conv, PROBE).await;
    assert_eq!(intent(&before), Some("refund_request"), "{before}");
    assert_eq!(intent_version(&before), 0);

    // Agents correct each message to billing_dispute (the card's owner's email is redacted).
    for text in DOUBLE_CHARGES {
        let msg = say(&app, &conv, text).await;
        let id = msg["id"].as_str().expect("message id");
        let (status, c) = call(
            &app,
            Method::POST,
            &format!("/v1/conversations/{conv}/messages/{id}/intent-correction"),
            &agent,
            Some(json!({"intent": "billing_dispute"})),
        )
        .await;
        assert_eq!(status, 201, "{c}");
        assert_eq!(c["corrected"], "billing_dispute");
        assert_eq!(c["model_version"], 0);
        assert!(c["predicted"].is_string() || c["predicted"].is_null());
        assert!(
            !c["text"].as_str().unwrap_or("").contains("ana@example.com"),
            "only redacted text is kept for training: {c}"
        );
    }
    // An off-topic message marked out of scope.
    let off = say(
        &app,
        &conv,
        "can you recommend a good pizza place near the station",
    )
    .await;
    let (status, c) = call(
        &app,
        Method::POST,
        &format!(
            "/v1/conversations/{conv}/messages/{}/intent-correction",
            off["id"].as_str().expect("id")
        ),
        &agent,
        Some(json!({"out_of_scope": true})),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["out_of_scope"], true);
    let (_, list) = call(&app, Method::GET, "/v1/intents/corrections", &agent, None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(6), "{list}");
    assert!(list.to_string().contains("[EMAIL]"), "{list}");

    // Agents may not retrain; admins may.
    let (status, body) = call(&app, Method::POST, "/v1/intents/retrain", &agent, None).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, trained) = call(
        &app,
        Method::POST,
        "/v1/intents/retrain",
        &app.admin_key,
        None,
    )
    .await;
    assert_eq!(status, 201, "{trained}");
    assert_eq!(trained["model"]["version"], 1);
    assert_eq!(trained["activated"], true, "{trained}");
    assert_eq!(trained["report"]["corrections"], 6);
    assert_eq!(trained["report"]["out_of_scope_corrections"], 1);
    let (old, new) = (
        trained["report"]["old_accuracy"].as_f64().expect("old"),
        trained["report"]["new_accuracy"].as_f64().expect("new"),
    );
    assert!(
        new > old,
        "the new model reads unseen corrections better: {trained}"
    );

    // The next similar message is read as corrected, by version 1, without a restart.
    let after = say(&app, &conv, PROBE).await;
    assert_eq!(intent(&after), Some("billing_dispute"), "{after}");
    assert_eq!(intent_version(&after), 1);
    let (_, models) = app.get("/v1/intents/models").await;
    assert_eq!(models["active_version"], 1);
    assert_eq!(models["versions"][0]["summary"]["corrections"], 6);
    // This server reads without the neural path, so the version carries no neural head.
    assert_eq!(models["versions"][0]["summary"]["neural_head"], false);
    assert!(models["intents"]
        .as_array()
        .expect("intents")
        .iter()
        .all(|i| i != "out_of_scope"));

    // Retraining again numbers a new version.
    let (status, again) = call(
        &app,
        Method::POST,
        "/v1/intents/retrain",
        &app.admin_key,
        Some(json!({"force": true})),
    )
    .await;
    assert_eq!((status, &again["model"]["version"]), (201, &json!(2)));

    // Rollback to the built-in default restores the earlier reading.
    let (status, back) = call(
        &app,
        Method::POST,
        "/v1/intents/models/0/activate",
        &app.admin_key,
        None,
    )
    .await;
    assert_eq!(
        (status, &back["active_version"]),
        (200, &json!(0)),
        "{back}"
    );
    let rolled = say(&app, &conv, PROBE).await;
    assert_eq!(intent(&rolled), Some("refund_request"), "{rolled}");
    assert_eq!(intent_version(&rolled), 0);
    let (status, _) = call(
        &app,
        Method::POST,
        "/v1/intents/models/1/activate",
        &app.admin_key,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        intent(&say(&app, &conv, PROBE).await),
        Some("billing_dispute")
    );

    // Everything was audited.
    let (_, audit) = app.get("/v1/audit?action=intent.").await;
    let actions: Vec<&str> = audit["records"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x["action"].as_str()).collect())
        .unwrap_or_default();
    for a in [
        "intent.corrected",
        "intent.model_trained",
        "intent.model_activated",
    ] {
        assert!(actions.contains(&a), "{a} audited: {actions:?}");
    }

    // The customer's export holds the corrections; an erasure removes them.
    let (_, detail) = app.get(&format!("/v1/conversations/{conv}")).await;
    let profile = detail["conversation"]["profile_id"]
        .as_str()
        .expect("profile")
        .to_owned();
    let (status, export) = app.get(&format!("/v1/profiles/{profile}/export")).await;
    assert_eq!(status, 200);
    assert_eq!(
        export["conversations"][0]["intent_corrections"]
            .as_array()
            .map(Vec::len),
        Some(6),
        "{}",
        export["conversations"][0]
    );
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/v1/profiles/{profile}"),
        &app.admin_key,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, list) = call(&app, Method::GET, "/v1/intents/corrections", &agent, None).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn bad_corrections_get_their_codes() {
    let app = TestApp::spawn().await;
    let agent = key(&app, KeyRole::Agent).await;
    let analyst = key(&app, KeyRole::Analyst).await;
    let conv = conversation(&app, "bad").await;
    let msg = say(&app, &conv, "where is my parcel").await;
    let id = msg["id"].as_str().expect("id");
    let path = format!("/v1/conversations/{conv}/messages/{id}/intent-correction");
    let cases = [
        (json!({"intent": "teleportation"}), 400, "unknown_intent"),
        (json!({"intent": "out_of_scope"}), 400, "unknown_intent"),
        (json!({}), 400, "invalid_correction"),
        (
            json!({"intent": "delivery_status", "out_of_scope": true}),
            400,
            "invalid_correction",
        ),
        (json!({"intent": 7}), 400, "invalid_field"),
    ];
    for (body, status, code) in cases {
        let (s, b) = call(&app, Method::POST, &path, &agent, Some(body.clone())).await;
        assert_eq!((s, b["code"].as_str()), (status, Some(code)), "{body}: {b}");
    }
    let unknown = format!("/v1/conversations/{conv}/messages/msg_nope/intent-correction");
    let (s, b) = call(
        &app,
        Method::POST,
        &unknown,
        &agent,
        Some(json!({"out_of_scope": true})),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (404, Some("not_found")));
    let other = conversation(&app, "someone-else").await;
    let elsewhere = format!("/v1/conversations/{other}/messages/{id}/intent-correction");
    let (s, _) = call(
        &app,
        Method::POST,
        &elsewhere,
        &agent,
        Some(json!({"out_of_scope": true})),
    )
    .await;
    assert_eq!(s, 404);
    // Agents' own messages carry no analysis to correct.
    let (_, reply) = call(
        &app,
        Method::POST,
        &format!("/v1/conversations/{conv}/messages"),
        &agent,
        Some(json!({"direction": "outbound", "author": "agent", "text": "Let me check."})),
    )
    .await;
    let r = format!(
        "/v1/conversations/{conv}/messages/{}/intent-correction",
        reply["id"].as_str().expect("id")
    );
    let (s, b) = call(
        &app,
        Method::POST,
        &r,
        &agent,
        Some(json!({"intent": "delivery_status"})),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (400, Some("message_not_analysed")));
    // Analysts read but do not correct; unknown versions are not found.
    let (s, _) = call(
        &app,
        Method::POST,
        &path,
        &analyst,
        Some(json!({"out_of_scope": true})),
    )
    .await;
    assert_eq!(s, 403);
    let (s, b) = call(
        &app,
        Method::POST,
        "/v1/intents/models/9/activate",
        &app.admin_key,
        None,
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (404, Some("not_found")));
    let (s, b) = call(
        &app,
        Method::POST,
        "/v1/intents/retrain",
        &app.admin_key,
        Some(json!({"forse": true})),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (400, Some("invalid_json")), "{b}");
    let (_, list) = call(&app, Method::GET, "/v1/intents/corrections", &agent, None).await;
    assert_eq!(list, json!([]), "nothing was stored by bad requests");
}

/// A second server over the same store (as a second API node would be) reads messages with
/// the version the first one trained, without a restart.
#[tokio::test]
async fn a_second_server_over_the_same_store_picks_up_a_new_version() {
    let app = TestApp::spawn().await;
    let agent = key(&app, KeyRole::Agent).await;
    let store: Arc<dyn rapport_store::Store> = app.store.clone();
    // The second node checks the active version on every message (interval zero), so the
    // test needs no waiting; the default interval is a few seconds.
    let state = rapport_server::AppState::new(
        store,
        rapport_ingest::Limits::default(),
        rapport_server::engine::EngineOptions {
            intent_check_every: std::time::Duration::ZERO,
            ..Default::default()
        },
    )
    .expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let second = format!("http://{}", listener.local_addr().expect("addr"));
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(rapport_server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let on_second = |text: &str, conv: &str| {
        let client = app.client.clone();
        let (url, key) = (
            format!("{second}/v1/conversations/{conv}/messages"),
            app.write_key.clone(),
        );
        let body = json!({"direction": "inbound", "author": "customer", "text": text});
        async move {
            let resp = client
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .expect("second node");
            resp.json::<Value>().await.expect("json")
        }
    };

    let conv = conversation(&app, "two-nodes").await;
    let first_read = on_second(PROBE, &conv).await;
    assert_eq!(intent(&first_read), Some("refund_request"), "{first_read}");
    for text in DOUBLE_CHARGES {
        let msg = say(&app, &conv, text).await;
        let (status, _) = call(
            &app,
            Method::POST,
            &format!(
                "/v1/conversations/{conv}/messages/{}/intent-correction",
                msg["id"].as_str().expect("id")
            ),
            &agent,
            Some(json!({"intent": "billing_dispute"})),
        )
        .await;
        assert_eq!(status, 201);
    }
    let (status, _) = call(
        &app,
        Method::POST,
        "/v1/intents/retrain",
        &app.admin_key,
        None,
    )
    .await;
    assert_eq!(status, 201);
    let read = on_second(PROBE, &conv).await;
    assert_eq!(intent(&read), Some("billing_dispute"), "{read}");
    assert_eq!(intent_version(&read), 1);
}

#[tokio::test]
async fn the_dashboard_corrects_retrains_and_rolls_back() {
    let app = TestApp::spawn().await;
    let cookie = app.admin_session().await;
    let conv = conversation(&app, "dash").await;
    let msg = say(&app, &conv, DOUBLE_CHARGES[0]).await;
    let id = msg["id"].as_str().expect("id");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = client
        .get(app.url(&format!("/conversations/{conv}")))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains(&format!("/conversations/{conv}/messages/{id}/intent")));
    assert!(page.contains("Correct intent"));
    let resp = client
        .post(app.url(&format!("/conversations/{conv}/messages/{id}/intent")))
        .header("cookie", &cookie)
        .form(&[("intent", "billing_dispute")])
        .send()
        .await
        .expect("correct");
    assert_eq!(resp.status(), 303);
    let page = client
        .get(app.url(&format!("/conversations/{conv}")))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("corrected to billing dispute"), "{page}");
    let resp = client
        .post(app.url(&format!("/conversations/{conv}/messages/{id}/intent")))
        .header("cookie", &cookie)
        .form(&[("intent", "nonsense")])
        .send()
        .await
        .expect("bad");
    assert_eq!(resp.status(), 400);

    let resp = client
        .post(app.url("/intents/retrain"))
        .header("cookie", &cookie)
        .form(&[("force", "true")])
        .send()
        .await
        .expect("retrain");
    assert_eq!(resp.status(), 303);
    let intents = client
        .get(app.url("/intents"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("intents")
        .text()
        .await
        .expect("html");
    assert!(intents.contains(r#"id="active-version">1<"#), "{intents}");
    assert!(intents.contains("/intents/models/0/activate"));
    assert!(intents.contains("[EMAIL]") || intents.contains("double charge"));
    let resp = client
        .post(app.url("/intents/models/0/activate"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("rollback");
    assert_eq!(resp.status(), 303);
    let (_, models) = app.get("/v1/intents/models").await;
    assert_eq!(models["active_version"], 0);
}
