//! Predictive alerts: a conversation whose sentiment falls two levels and whose escalation
//! risk crosses the threshold raises alerts with their evidence, posted to a webhook (a local
//! listener here); a high-value customer waiting past the SLA raises one too.

use std::time::Duration;

use rapport_core::KeyRole;
use rapport_decide::routing::RoutingPolicy;
use rapport_server::engine::EngineOptions;
use rapport_server::predictive::AlertOptions;
use reqwest::Method as M;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{call, key, TestApp};

/// A one-route HTTP listener on 127.0.0.1 that answers 204 and hands over each JSON body.
async fn webhook() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let body: Value =
                                serde_json::from_slice(&buf[end + 4..end + 4 + len]).expect("json");
                            let _ = sock
                                .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                                .await;
                            let _ = tx.send(body);
                            return;
                        }
                    }
                }
            });
        }
    });
    (format!("http://{addr}/hook"), rx)
}

async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    // A bound so a missing call fails the test instead of hanging it.
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("webhook called")
        .expect("body")
}

#[tokio::test]
async fn a_souring_conversation_raises_alerts_with_evidence_and_calls_the_webhook() {
    let (url, mut rx) = webhook().await;
    let app = TestApp::spawn_with(EngineOptions {
        alerts: AlertOptions {
            webhook_url: Some(url),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let (_, c) = app
        .send(
            "/v1/conversations",
            &json!({"email": "soured@example.com", "channel": "chat"}),
        )
        .await;
    let conv = c["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/conversations/{conv}/messages");
    for text in [
        "Thank you so much, you are wonderful, I love it!",
        "This is terrible and awful, I hate it, the worst service ever. It is down and I lost money!",
    ] {
        let (s, m) = app
            .send(&path, &json!({"direction": "inbound", "author": "customer", "text": text}))
            .await;
        assert_eq!(s, 201, "{m}");
    }
    let (_, alerts) = app.get("/v1/alerts?open=true").await;
    let list = alerts["alerts"].as_array().expect("alerts");
    let of = |kind: &str| list.iter().find(|a| a["kind"] == kind).cloned();
    let (_, detail) = app.get(&format!("/v1/conversations/{conv}")).await;
    let drop = of("conversation.sentiment_drop")
        .unwrap_or_else(|| panic!("sentiment drop alert: {alerts} {detail}"));
    assert_eq!(drop["subject"], conv.as_str());
    assert!(
        drop["evidence"]["levels_dropped"].as_u64().unwrap() >= 2,
        "{drop}"
    );
    let risk = of("conversation.escalation_risk").expect("escalation alert");
    assert!(
        risk["evidence"]["probability"].as_f64().unwrap() >= 0.7,
        "{risk}"
    );
    assert!(!risk["evidence"]["contributions"]
        .as_array()
        .unwrap()
        .is_empty());

    let mut kinds = vec![];
    for _ in 0..2 {
        let body = next(&mut rx).await;
        kinds.push(body["alert"]["kind"].as_str().expect("kind").to_owned());
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "conversation.escalation_risk",
            "conversation.sentiment_drop"
        ]
    );

    // Another angry message raises no second copy while the first is open.
    app.send(
        &path,
        &json!({"direction": "inbound", "author": "customer", "text": "Still down. Awful."}),
    )
    .await;
    let (_, again) = app.get("/v1/alerts?open=true").await;
    assert_eq!(again["alerts"].as_array().unwrap().len(), list.len());
}

#[tokio::test]
async fn a_high_value_customer_waiting_past_the_sla_raises_an_alert() {
    let mut routing = RoutingPolicy::default();
    routing.sla.low = Duration::from_secs(1);
    routing.sla.normal = Duration::from_secs(1);
    routing.sla.high = Duration::from_secs(1);
    routing.sla.urgent = Duration::from_secs(1);
    let app = TestApp::spawn_with(EngineOptions {
        routing,
        ..Default::default()
    })
    .await;
    let sup = key(&app, KeyRole::Supervisor).await;
    call(
        &app,
        M::POST,
        "/v1/routing/queues",
        &sup,
        Some(json!({"id": "support"})),
    )
    .await;
    for (email, value) in [("big@example.com", 20_000), ("small@example.com", 20)] {
        app.send(
            "/v1/identify",
            &json!({"userId": email, "traits": {"email": email, "lifetime_value": value}}),
        )
        .await;
        let (_, c) = app
            .send(
                "/v1/conversations",
                &json!({"email": email, "channel": "chat"}),
            )
            .await;
        let conv = c["id"].as_str().expect("id").to_owned();
        app.send(
            &format!("/v1/conversations/{conv}/messages"),
            &json!({"direction": "inbound", "author": "customer", "text": "Where is my order?"}),
        )
        .await;
    }
    // Past the one-second SLA; creating an agent runs a routing pass (the agent is away).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (s, _) = call(
        &app,
        M::POST,
        "/v1/routing/agents",
        &sup,
        Some(json!({"id": "ana", "name": "Ana", "capacity": 1, "presence": "away"})),
    )
    .await;
    assert_eq!(s, 201);
    let (_, alerts) = app.get("/v1/alerts").await;
    let waiting: Vec<&Value> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "routing.high_value_waiting")
        .collect();
    assert_eq!(waiting.len(), 1, "{alerts}");
    assert!(waiting[0]["evidence"]["customer_value"]
        .as_str()
        .unwrap()
        .contains("20000"));
}
