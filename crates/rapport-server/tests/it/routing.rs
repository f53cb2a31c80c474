//! Routing through the API: queues and agents set up by a supervisor, conversations queued on
//! each inbound message with their priority and its reasons, an angry later customer offered
//! ahead of a calm earlier one and to the senior agent, capacity never exceeded, a customer
//! who asks for a person in the human queue at once, and bad input refused clearly.

use rapport_core::KeyRole;
use reqwest::Method as M;
use serde_json::{json, Value};

use crate::common::{call, key, TestApp};

async fn conversation(app: &TestApp, email: &str) -> String {
    let (s, c) = app
        .send(
            "/v1/conversations",
            &json!({"email": email, "channel": "chat"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    c["id"].as_str().expect("id").to_owned()
}

async fn customer_says(app: &TestApp, conv: &str, text: &str) {
    let (s, m) = app
        .send(
            &format!("/v1/conversations/{conv}/messages"),
            &json!({"direction": "inbound", "author": "customer", "text": text}),
        )
        .await;
    assert_eq!(s, 201, "{m}");
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|e| {
            e["conversation_id"]
                .as_str()
                .expect("conversation")
                .to_owned()
        })
        .collect()
}

async fn agents(app: &TestApp, key: &str) -> Vec<Value> {
    let (s, a) = call(app, M::GET, "/v1/routing/agents", key, None).await;
    assert_eq!(s, 200, "{a}");
    a["agents"].as_array().expect("agents").clone()
}

#[tokio::test]
async fn an_angry_customer_goes_ahead_to_the_senior_agent_and_capacity_holds() {
    let app = TestApp::spawn().await;
    let sup = key(&app, KeyRole::Supervisor).await;
    let agent_key = key(&app, KeyRole::Agent).await;

    for q in [
        json!({"id": "support"}),
        json!({"id": "humans", "human": true}),
    ] {
        let (s, body) = call(&app, M::POST, "/v1/routing/queues", &sup, Some(q)).await;
        assert_eq!(s, 201, "{body}");
    }
    // Both agents start away, so the conversations wait and their order can be read.
    for a in [
        json!({"id": "junior", "name": "Jo Junior", "capacity": 1, "seniority": 1, "presence": "away"}),
        json!({"id": "senior", "name": "Sam Senior", "capacity": 1, "seniority": 4, "presence": "away"}),
    ] {
        let (s, body) = call(&app, M::POST, "/v1/routing/agents", &sup, Some(a)).await;
        assert_eq!(s, 201, "{body}");
    }

    let calm = conversation(&app, "calm@example.com").await;
    customer_says(
        &app,
        &calm,
        "Hello, could you tell me how to change my delivery address?",
    )
    .await;
    let angry = conversation(&app, "angry@example.com").await;
    customer_says(&app, &angry, "I was charged twice.").await;
    customer_says(
        &app,
        &angry,
        "This is the third time I write. Your service is down, I lost money and I am furious! Terrible, awful.",
    )
    .await;

    let (s, q) = call(
        &app,
        M::GET,
        "/v1/routing/queues/support/entries",
        &agent_key,
        None,
    )
    .await;
    assert_eq!(s, 200, "{q}");
    assert_eq!(ids(&q["waiting"]), [angry.clone(), calm.clone()], "{q}");
    let top = &q["waiting"][0];
    assert!(top["priority"].as_f64().unwrap() > q["waiting"][1]["priority"].as_f64().unwrap());
    let signals: Vec<&str> = top["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["contribution"].as_f64().unwrap() > 0.0)
        .map(|p| p["signal"].as_str().unwrap())
        .collect();
    assert!(
        signals.contains(&"urgency") && signals.contains(&"sentiment"),
        "{top}"
    );
    assert!(top["why"].as_str().unwrap().contains("urgency"), "{top}");

    // The senior agent comes back first: first-in-first-out would give it the calm customer
    // who wrote first; the angry one goes to it instead. Then the junior takes the calm one.
    for a in ["senior", "junior"] {
        let (s, body) = call(
            &app,
            M::PATCH,
            &format!("/v1/routing/agents/{a}"),
            &sup,
            Some(json!({"presence": "available"})),
        )
        .await;
        assert_eq!(s, 200, "{body}");
    }
    let (_, q) = call(
        &app,
        M::GET,
        "/v1/routing/queues/support/entries",
        &agent_key,
        None,
    )
    .await;
    assert!(q["waiting"].as_array().unwrap().is_empty(), "{q}");
    let assigned = q["assigned"].as_array().unwrap();
    let of = |conv: &str| {
        assigned
            .iter()
            .find(|e| e["conversation_id"] == conv)
            .expect("assigned")
            .clone()
    };
    let angry_entry = of(&angry);
    assert_eq!(angry_entry["agent_id"], "senior", "{angry_entry}");
    assert_eq!(of(&calm)["agent_id"], "junior");
    let offered = angry_entry["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["what"] == "offered")
        .expect("offered step")
        .clone();
    let why = offered["why"].as_str().unwrap();
    assert!(
        why.contains("senior preferred") && why.contains("urgency"),
        "{why}"
    );
    let (_, audit) = app.get("/v1/audit?action=routing.offered").await;
    assert!(audit.to_string().contains("senior"), "{audit}");

    // The dashboard's queue page shows the assignment with its reasons and the agents' load.
    let cookie = app.admin_session().await;
    let html = app
        .client
        .get(app.url("/queue"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains(&angry) && html.contains("senior preferred"),
        "{html}"
    );
    assert!(
        html.contains("Sam Senior") && html.contains("1 / 1"),
        "{html}"
    );
    assert!(html.contains("href=\"/queue\""), "the nav links the page");

    // A third customer waits: every agent is at capacity (1 each), and stays there.
    let third = conversation(&app, "third@example.com").await;
    customer_says(&app, &third, "My parcel is late, can someone check?").await;
    let (_, q) = call(
        &app,
        M::GET,
        "/v1/routing/queues/support/entries",
        &agent_key,
        None,
    )
    .await;
    assert_eq!(ids(&q["waiting"]), [third.as_str()]);
    for a in agents(&app, &agent_key).await {
        assert!(
            a["load"].as_u64().unwrap() <= a["capacity"].as_u64().unwrap(),
            "{a}"
        );
    }

    // The senior accepts, then finishes: its capacity frees and the third goes to it.
    let entry = angry_entry["id"].as_str().unwrap();
    let (s, body) = call(
        &app,
        M::POST,
        &format!("/v1/routing/entries/{entry}/accept"),
        &sup,
        Some(json!({"agent_id": "junior"})),
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (409, Some("not_offered")),
        "{body}"
    );
    let (s, body) = call(
        &app,
        M::POST,
        &format!("/v1/routing/entries/{entry}/accept"),
        &sup,
        Some(json!({"agent_id": "senior"})),
    )
    .await;
    assert_eq!(
        (s, body["status"].as_str()),
        (200, Some("accepted")),
        "{body}"
    );
    let (s, body) = call(
        &app,
        M::POST,
        &format!("/v1/routing/entries/{entry}/finish"),
        &sup,
        Some(json!({"agent_id": "senior"})),
    )
    .await;
    assert_eq!(
        (s, body["status"].as_str()),
        (200, Some("finished")),
        "{body}"
    );
    let (_, q) = call(
        &app,
        M::GET,
        "/v1/routing/queues/support/entries",
        &agent_key,
        None,
    )
    .await;
    assert!(q["waiting"].as_array().unwrap().is_empty(), "{q}");
    assert!(q["assigned"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["conversation_id"] == third.as_str() && e["agent_id"] == "senior"));
    for a in agents(&app, &agent_key).await {
        assert_eq!(a["load"], a["capacity"], "{a}");
    }
}

#[tokio::test]
async fn asking_for_a_person_goes_to_the_human_queue_at_once() {
    let app = TestApp::spawn().await;
    let sup = key(&app, KeyRole::Supervisor).await;
    for q in [
        json!({"id": "support"}),
        json!({"id": "humans", "human": true}),
    ] {
        call(&app, M::POST, "/v1/routing/queues", &sup, Some(q)).await;
    }
    let c = conversation(&app, "person@example.com").await;
    customer_says(&app, &c, "Where is my order?").await;
    let (_, q) = app.get("/v1/routing/queues/support/entries").await;
    assert_eq!(ids(&q["waiting"]), [c.as_str()]);

    customer_says(&app, &c, "I want to talk to a human, please.").await;
    let (_, support) = app.get("/v1/routing/queues/support/entries").await;
    assert!(
        support["waiting"].as_array().unwrap().is_empty(),
        "{support}"
    );
    let (_, humans) = app.get("/v1/routing/queues/humans/entries").await;
    assert_eq!(ids(&humans["waiting"]), [c.as_str()], "{humans}");
    let entry = &humans["waiting"][0];
    assert_eq!(entry["asked_for_human"], true);
    assert_eq!(entry["tier"], "high");

    // A new conversation that opens with the request goes straight there, ahead of others.
    let other = conversation(&app, "other@example.com").await;
    customer_says(&app, &other, "Everything is broken and I am furious!").await;
    let direct = conversation(&app, "direct@example.com").await;
    customer_says(&app, &direct, "Can I speak to a person?").await;
    let (_, humans) = app.get("/v1/routing/queues/humans/entries").await;
    assert_eq!(
        ids(&humans["waiting"]),
        [c.clone(), direct.clone()],
        "{humans}"
    );
    let (_, queues) = app.get("/v1/routing/queues").await;
    let waiting: Vec<(String, u64)> = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["id"].as_str().unwrap().to_owned(),
                q["waiting"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(waiting, [("humans".into(), 2), ("support".into(), 1)]);
}

#[tokio::test]
async fn bad_routing_requests_are_refused_with_stable_codes() {
    let app = TestApp::spawn().await;
    let sup = key(&app, KeyRole::Supervisor).await;
    let agent_key = key(&app, KeyRole::Agent).await;
    let cases = [
        (
            "/v1/routing/queues",
            json!({"id": "Two words"}),
            400,
            "invalid_queue",
        ),
        (
            "/v1/routing/queues",
            json!({"id": "ok", "skills": ["bad skill"]}),
            400,
            "invalid_queue",
        ),
        (
            "/v1/routing/queues",
            json!({"id": "ok", "colour": "red"}),
            400,
            "invalid_field",
        ),
        (
            "/v1/routing/agents",
            json!({"id": "a", "name": "A", "capacity": 0, "seniority": 9}),
            400,
            "invalid_agent",
        ),
        (
            "/v1/routing/agents",
            json!({"id": "a", "name": "A", "capacity": 2, "presence": "asleep"}),
            400,
            "invalid_agent",
        ),
        (
            "/v1/routing/agents",
            json!({"id": "a", "name": "", "capacity": 2}),
            400,
            "invalid_agent",
        ),
    ];
    for (path, body, status, code) in cases {
        let (s, e) = call(&app, M::POST, path, &sup, Some(body.clone())).await;
        assert_eq!((s, e["code"].as_str()), (status, Some(code)), "{body}: {e}");
    }
    let (s, _) = call(
        &app,
        M::POST,
        "/v1/routing/queues",
        &sup,
        Some(json!({"id": "q"})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, e) = call(
        &app,
        M::POST,
        "/v1/routing/queues",
        &sup,
        Some(json!({"id": "Q"})),
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (409, Some("queue_exists")));
    let (s, e) = call(
        &app,
        M::POST,
        "/v1/routing/queues",
        &agent_key,
        Some(json!({"id": "x"})),
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (403, Some("forbidden")));
    let (s, _) = call(
        &app,
        M::POST,
        "/v1/routing/agents",
        &sup,
        Some(json!({"id": "ana", "name": "Ana", "capacity": 2})),
    )
    .await;
    assert_eq!(s, 201);
    // An agent key is not the agent: it may not change anyone's presence or accept for them.
    let (s, e) = call(
        &app,
        M::PATCH,
        "/v1/routing/agents/ana",
        &agent_key,
        Some(json!({"presence": "available"})),
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (403, Some("not_your_agent")));
    let (s, e) = call(
        &app,
        M::PATCH,
        "/v1/routing/agents/ana",
        &sup,
        Some(json!({"capacity": 99})),
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (400, Some("invalid_agent")));
    for (method, path) in [
        (M::GET, "/v1/routing/queues/nope/entries"),
        (M::PATCH, "/v1/routing/agents/nobody"),
    ] {
        let (s, e) = call(&app, method, path, &sup, Some(json!({"presence": "away"}))).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (404, Some("not_found")),
            "{path}: {e}"
        );
    }
    let (s, e) = call(
        &app,
        M::POST,
        "/v1/routing/entries/rte_none/accept",
        &sup,
        Some(json!({"agent_id": "ana"})),
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (404, Some("not_found")), "{e}");
    let (s, e) = call(
        &app,
        M::POST,
        "/v1/routing/entries/rte_none/accept",
        &sup,
        Some(json!({"agent_id": "A B"})),
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (400, Some("invalid_agent")), "{e}");
}
