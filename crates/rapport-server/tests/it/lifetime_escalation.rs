//! Lifetime value and escalation risk trained on the workspace's own data, end to end over
//! HTTP: a shop whose customers buy at their own pace, a lifetime-value model fitted on its
//! orders with a held-out check and each customer's value explained; conversations in which
//! unhappy customers tend to ask for a manager, an escalation model learnt from them and used
//! by the live alerts; the versions and the errors.

use std::time::Duration;

use chrono::{Duration as Days, Utc};
use rapport_core::KeyRole;
use reqwest::Method as M;
use serde_json::{json, Value};

use crate::common::{call, key, TestApp};

fn options() -> rapport_server::engine::EngineOptions {
    rapport_server::engine::EngineOptions {
        churn: rapport_server::churn::ChurnOptions {
            retrain_every: None,
            refresh_every: Duration::from_millis(200),
            ..Default::default()
        },
        alerts: rapport_server::predictive::AlertOptions {
            escalation_threshold: 0.5,
            ..Default::default()
        },
        clv: rapport_server::clv::ClvOptions {
            retrain_every: None,
            holdout_days: 60,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn unit(i: u64, salt: u64) -> f64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// 250 customers over 360 days: each buys at their own rate (every 5 to 100 days) until they
/// stop (15% chance after each order), spending around their own amount.
fn shop() -> Vec<Value> {
    let now = Utc::now();
    let mut events = Vec::new();
    for i in 0..250u64 {
        let user = format!("sh-{i}");
        let ts = |t: chrono::DateTime<Utc>| t.to_rfc3339();
        let mut t = now - Days::days(360) + Days::hours((unit(i, 1) * 24.0 * 200.0) as i64);
        events.push(
            json!({"type": "identify", "userId": user, "timestamp": ts(t),
            "messageId": format!("{user}-id"), "traits": {"plan": "shop"}}),
        );
        let gap_days = 5.0 + unit(i, 2) * 95.0;
        let spend = 10.0 + unit(i, 3) * 110.0;
        let mut n = 0u64;
        while t < now {
            n += 1;
            let amount = (spend * (0.7 + 0.6 * unit(i, 100 + n)) * 100.0).round() / 100.0;
            events.push(
                json!({"type": "track", "userId": user, "event": "Order Completed",
                "timestamp": ts(t), "messageId": format!("{user}-o{n}"),
                "properties": {"revenue": amount}}),
            );
            if unit(i, 200 + n) < 0.15 {
                break;
            }
            let wait = -(1.0 - unit(i, 300 + n)).ln() * gap_days;
            t += Days::hours((wait * 24.0).ceil() as i64 + 24);
        }
    }
    events
}

async fn profile_id(app: &TestApp, user: &str) -> String {
    let (s, p) = app.get(&format!("/v1/profiles?user_id={user}")).await;
    assert_eq!(s, 200, "{p}");
    p["id"].as_str().expect("id").to_owned()
}

/// Polls a customer's features until `ready` holds (bounded, so a broken pass fails).
async fn features_until(app: &TestApp, id: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..150 {
        let (s, f) = app.get(&format!("/v1/profiles/{id}/features")).await;
        assert_eq!(s, 200, "{f}");
        if ready(&f) {
            return f;
        }
        last = f;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("features never got there: {last}");
}

#[tokio::test]
async fn lifetime_value_trains_on_the_shop_values_each_customer_and_explains_it() {
    let app = TestApp::spawn_with(options()).await;
    let admin = app.admin_key.clone();
    let agent = key(&app, KeyRole::Agent).await;

    let (s, e) = call(&app, M::POST, "/v1/models/clv/train", &admin, None).await;
    assert_eq!(s, 409, "{e}");
    assert_eq!(e["code"], "training_data_insufficient");
    let (s, e) = call(&app, M::POST, "/v1/models/clv/train", &agent, None).await;
    assert_eq!(s, 403, "{e}");
    let (s, e) = call(&app, M::POST, "/v1/models/nps/train", &admin, None).await;
    assert_eq!(s, 404, "{e}");
    assert_eq!(e["code"], "model_kind_unknown");

    let events = shop();
    for chunk in events.chunks(250) {
        let (s, body) = app.send("/v1/batch", &json!({ "batch": chunk })).await;
        assert_eq!(s, 200, "{body}");
    }
    let (s, v) = call(&app, M::POST, "/v1/models/clv/train", &admin, None).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (v["kind"].as_str(), v["version"].as_i64()),
        (Some("clv"), Some(1))
    );
    assert_eq!(v["active"], true, "the first version becomes active");
    let summary = &v["summary"];
    assert!(summary["customers"].as_u64().unwrap() >= 200, "{summary}");
    for p in ["r", "alpha", "a", "b"] {
        assert!(summary["bgnbd"][p].as_f64().unwrap() > 0.0, "{summary}");
    }
    // The held-out check: the model fitted without the last 60 days predicted their purchases
    // better than each customer's past rate kept up, and in the right total.
    let h = &summary["holdout"];
    assert!(
        h["mae"].as_f64().unwrap() < h["naive_mae"].as_f64().unwrap(),
        "{h}"
    );
    assert!(h["correlation"].as_f64().unwrap() > 0.3, "{h}");

    // A customer's value with its reasons: contributions add up to the difference from the
    // shop's typical customer.
    let mut values = Vec::new();
    for i in 0..40u64 {
        let id = profile_id(&app, &format!("sh-{i}")).await;
        let f = features_until(&app, &id, |f| {
            f["scores"]["clv"]["version"] == 1
                && (f["scores"]["clv"]["value"].is_number()
                    || f["scores"]["clv"]["status"] == "no_purchases")
        })
        .await;
        let c = &f["scores"]["clv"];
        let value = c["value"].as_f64().expect("value");
        let parts: f64 = c["contributions"]
            .as_array()
            .expect("contributions")
            .iter()
            .map(|x| x["contribution"].as_f64().unwrap())
            .sum();
        let reference = c["reference_value"].as_f64().unwrap();
        assert!((reference + parts - value).abs() < 0.05, "{c}");
        values.push((value, f["features"]["orders_90d"].as_f64().unwrap_or(0.0)));
    }
    // Customers still buying are worth more than those who stopped.
    let mean = |keep: &dyn Fn(f64) -> bool| {
        let xs: Vec<f64> = values.iter().filter(|v| keep(v.1)).map(|v| v.0).collect();
        xs.iter().sum::<f64>() / xs.len().max(1) as f64
    };
    assert!(mean(&|o| o >= 2.0) > mean(&|o| o == 0.0), "{values:?}");

    // A customer with no order has no value to predict.
    app.send(
        "/v1/identify",
        &json!({"userId": "browser-only", "traits": {"plan": "shop"}}),
    )
    .await;
    let id = profile_id(&app, "browser-only").await;
    let f = features_until(&app, &id, |f| f["scores"]["clv"]["status"].is_string()).await;
    assert_eq!(f["scores"]["clv"]["status"], "no_purchases", "{f}");

    // Versions: a second training, then a rollback to the first.
    let (s, v2) = call(
        &app,
        M::POST,
        "/v1/models/clv/train",
        &admin,
        Some(json!({"activate": true})),
    )
    .await;
    assert_eq!(s, 201, "{v2}");
    let (s, back) = call(
        &app,
        M::POST,
        "/v1/models/clv/versions/1/activate",
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 200, "{back}");
    let (_, list) = app.get("/v1/models/clv").await;
    let versions = list["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2, "{list}");
    assert!(versions
        .iter()
        .any(|v| v["version"] == 1 && v["active"] == true));
}

async fn conversation(app: &TestApp, email: &str, texts: &[&str]) -> String {
    let (s, c) = app
        .send(
            "/v1/conversations",
            &json!({"email": email, "channel": "chat"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let id = c["id"].as_str().expect("id").to_owned();
    for (k, text) in texts.iter().enumerate() {
        let (direction, author) = if k % 2 == 0 {
            ("inbound", "customer")
        } else {
            ("outbound", "agent")
        };
        let (s, m) = app
            .send(
                &format!("/v1/conversations/{id}/messages"),
                &json!({"direction": direction, "author": author, "text": text}),
            )
            .await;
        assert_eq!(s, 201, "{m}");
    }
    id
}

#[tokio::test]
async fn escalation_risk_is_learnt_from_past_conversations_and_used_live() {
    let app = TestApp::spawn_with(options()).await;
    let admin = app.admin_key.clone();

    let (s, e) = call(&app, M::POST, "/v1/models/escalation/train", &admin, None).await;
    assert_eq!(s, 409, "{e}");

    // Angry customers mostly end up asking for a manager; calm ones mostly do not.
    let angry = [
        "This is the third time I have contacted you and the internet is still down. Useless!",
        "Sorry to hear that, we are looking into it.",
    ];
    let calm = [
        "Hi, could you tell me when my next bill is due?",
        "Of course, it is due on the 5th.",
    ];
    for i in 0..48u64 {
        let is_angry = i % 2 == 0;
        let escalates = if is_angry { i % 8 != 0 } else { i % 12 == 1 };
        let mut texts: Vec<&str> = if is_angry {
            angry.to_vec()
        } else {
            calm.to_vec()
        };
        texts.push(if escalates {
            "I want this escalated to a manager right now."
        } else {
            "Thanks, that helps."
        });
        conversation(&app, &format!("esc-{i}@example.com"), &texts).await;
    }
    let (s, v) = call(&app, M::POST, "/v1/models/escalation/train", &admin, None).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["active"], true, "{v}");
    let summary = &v["summary"];
    assert_eq!(summary["conversations"], 48, "{summary}");
    assert!(summary["positives"].as_u64().unwrap() >= 20, "{summary}");
    assert!(
        summary["holdout"]["roc_auc"].as_f64().unwrap() > 0.7,
        "{summary}"
    );
    let weight = |name: &str| {
        summary["weights"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["signal"] == name)
            .and_then(|w| w["weight"].as_f64())
            .unwrap()
    };
    assert!(weight("sentiment_now") > 0.0, "{summary}");

    // The live alert now reads the trained model.
    conversation(
        &app,
        "fresh-anger@example.com",
        &["This is the third time I have contacted you and the internet is still down. Useless! I lost money!"],
    )
    .await;
    let (_, alerts) = app.get("/v1/alerts?open=true").await;
    let risk = alerts["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["kind"] == "conversation.escalation_risk")
        .map(|a| {
            a["evidence"]["model"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect::<Vec<_>>();
    assert!(
        risk.iter().any(|m| m.starts_with("escalation-workspace@")),
        "{alerts}"
    );
}
