//! Churn prediction on the workspace's own data, end to end over HTTP: a population whose
//! unhappy customers tend to cancel, a model trained from point-in-time snapshots and measured
//! on the newest cut-off, scores with explanations, features that follow new events, versions
//! that can be activated and rolled back, a risk-jump alert, and the errors.

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
            jump_threshold: 0.15,
            alert_floor: 0.3,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A small deterministic generator (no shared state between customers).
fn unit(i: u64, salt: u64) -> f64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// 300 customers over 170 days: a third are unhappy (NPS 0-4) and most of them cancel; the
/// rest are happy (NPS 8-10) and a few cancel.
fn population() -> Vec<Value> {
    let now = Utc::now();
    let mut events = Vec::new();
    for i in 0..300u64 {
        let user = format!("ch-{i}");
        let unhappy = i % 3 == 0;
        let start = now - Days::days(170) + Days::hours((unit(i, 1) * 240.0) as i64);
        let leaves = if unhappy {
            unit(i, 2) < 0.8
        } else {
            unit(i, 2) < 0.05
        };
        let end_day = 40.0 + unit(i, 3) * 125.0;
        let end = if leaves {
            start + Days::hours((end_day * 24.0) as i64)
        } else {
            now
        };
        let ts = |t: chrono::DateTime<Utc>| t.to_rfc3339();
        events.push(json!({"type": "identify", "userId": user, "timestamp": ts(start),
            "messageId": format!("{user}-id"), "traits": {"plan": if i % 2 == 0 {"fiber"} else {"mobile"}}}));
        let mut t = start;
        let mut n = 0;
        while t < end && t < now {
            n += 1;
            events.push(
                json!({"type": "page", "userId": user, "name": "Account", "timestamp": ts(t),
                "messageId": format!("{user}-p{n}")}),
            );
            if n % 6 == 0 {
                let score = if unhappy {
                    (unit(i, 10 + n) * 5.0) as i64
                } else {
                    8 + (unit(i, 10 + n) * 3.0) as i64
                };
                events.push(
                    json!({"type": "track", "userId": user, "event": "Survey Responded",
                    "timestamp": ts(t), "messageId": format!("{user}-s{n}"),
                    "properties": {"survey": "nps", "score": score}}),
                );
            }
            t += Days::hours(96 + (unit(i, 100 + n) * 48.0) as i64);
        }
        if leaves && end < now {
            events.push(
                json!({"type": "track", "userId": user, "event": "Subscription Cancelled",
                "timestamp": ts(end), "messageId": format!("{user}-bye")}),
            );
        }
    }
    events
}

async fn load(app: &TestApp, events: Vec<Value>) {
    for chunk in events.chunks(250) {
        let (s, body) = app.send("/v1/batch", &json!({ "batch": chunk })).await;
        assert_eq!(s, 200, "{body}");
    }
}

async fn profile_id(app: &TestApp, user: &str) -> String {
    let (s, p) = app.get(&format!("/v1/profiles?user_id={user}")).await;
    assert_eq!(s, 200, "{p}");
    p["id"].as_str().expect("id").to_owned()
}

/// Polls a customer's features until `ready` holds (the background pass runs every 200 ms;
/// the wait is bounded so a broken pass fails the test instead of hanging it).
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
async fn churn_models_train_on_the_workspace_score_explain_and_swap() {
    let app = TestApp::spawn_with(options()).await;
    let admin = app.admin_key.clone();
    let agent = key(&app, KeyRole::Agent).await;
    let analyst = key(&app, KeyRole::Analyst).await;

    // Nothing to learn from yet.
    let (s, e) = call(&app, M::POST, "/v1/models/churn/train", &admin, None).await;
    assert_eq!(s, 409, "{e}");
    assert_eq!(e["code"], "training_data_insufficient");
    let (s, e) = call(&app, M::POST, "/v1/models/churn/train", &agent, None).await;
    assert_eq!(s, 403, "{e}");

    load(&app, population()).await;
    let (s, e) = call(
        &app,
        M::POST,
        "/v1/models/churn/train",
        &admin,
        Some(json!({"activate": "yes"})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["code"], "invalid_body");

    let (s, v1) = call(&app, M::POST, "/v1/models/churn/train", &analyst, None).await;
    assert_eq!(s, 201, "{v1}");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["active"], true, "the first version becomes active");
    let holdout = &v1["summary"]["holdout"];
    let auc = holdout["roc_auc"]
        .as_f64()
        .unwrap_or_else(|| panic!("{v1}"));
    assert!(auc > 0.7, "held-out ROC-AUC {auc}: {holdout}");
    assert!(v1["summary"]["positives"].as_u64().expect("positives") >= 10);
    assert!(v1["summary"]["features"]
        .as_array()
        .expect("features")
        .iter()
        .any(|f| f == "last_nps"));

    // An unhappy customer who is still here is scored, with the reasons.
    let stayer = (0..300)
        .step_by(3)
        .find(|i| unit(*i, 2) >= 0.8)
        .expect("an unhappy customer who stays");
    let unhappy = profile_id(&app, &format!("ch-{stayer}")).await;
    let f = features_until(&app, &unhappy, |f| f["scores"]["churn"]["version"] == 1).await;
    let score = &f["scores"]["churn"];
    let p_unhappy = score["probability"].as_f64().expect("probability");
    assert!(
        !score["contributions"]
            .as_array()
            .expect("contributions")
            .is_empty(),
        "{f}"
    );
    assert!(f["features"]["last_nps"].as_f64().expect("nps") <= 4.0);
    // A customer who already left is said to have left, not scored.
    let leaver = (0..300)
        .step_by(3)
        .find(|i| unit(*i, 2) < 0.8)
        .expect("a leaver");
    let gone = profile_id(&app, &format!("ch-{leaver}")).await;
    let f = features_until(&app, &gone, |f| {
        f["scores"]["churn"]["version"] == 1 || f["scores"]["churn"]["status"] == "churned"
    })
    .await;
    assert_eq!(f["scores"]["churn"]["status"], "churned", "{f}");

    // A happy customer's score is low; then they answer a survey with a 0 and their features
    // and score follow within a pass, and the jump raises an alert with the evidence.
    let happy = profile_id(&app, "ch-1").await;
    let before = features_until(&app, &happy, |f| f["scores"]["churn"]["version"] == 1).await;
    let p_happy = before["scores"]["churn"]["probability"]
        .as_f64()
        .expect("p");
    assert!(
        p_happy < p_unhappy,
        "happy {p_happy} vs unhappy {p_unhappy}"
    );
    for n in 0..3 {
        app.send(
            "/v1/track",
            &json!({"userId": "ch-1", "event": "Survey Responded", "messageId": format!("ch-1-angry-{n}"),
                "properties": {"survey": "nps", "score": 0}}),
        )
        .await;
    }
    let after = features_until(&app, &happy, |f| f["features"]["last_nps"] == 0.0).await;
    let p_after = after["scores"]["churn"]["probability"].as_f64().expect("p");
    assert!(p_after > p_happy, "{p_happy} -> {p_after}");
    assert!(
        p_after - p_happy >= 0.15 && p_after >= 0.3,
        "{p_happy} -> {p_after}: {after}"
    );
    let (s, alerts) = call(&app, M::GET, "/v1/alerts", &admin, None).await;
    assert_eq!(s, 200);
    let jump = alerts["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["kind"] == "churn.risk_jump")
        .unwrap_or_else(|| panic!("no jump alert: {alerts}"));
    assert_eq!(jump["evidence"]["profile_id"], happy.as_str());
    assert!(jump["evidence"]["contributions"].is_array());

    // A second version, not activated; then activated; then rolled back.
    let (s, v2) = call(
        &app,
        M::POST,
        "/v1/models/churn/train",
        &admin,
        Some(json!({"activate": false})),
    )
    .await;
    assert_eq!(s, 201, "{v2}");
    assert_eq!(
        (v2["version"].as_i64(), v2["active"].as_bool()),
        (Some(2), Some(false))
    );
    let (s, list) = call(&app, M::GET, "/v1/models/churn", &agent, None).await;
    assert_eq!(s, 200);
    let active: Vec<(i64, bool)> = list["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap_or(0),
                v["active"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(active, [(2, false), (1, true)]);
    let (s, e) = call(
        &app,
        M::POST,
        "/v1/models/churn/versions/2/activate",
        &agent,
        None,
    )
    .await;
    assert_eq!(s, 403, "{e}");
    let (s, e) = call(
        &app,
        M::POST,
        "/v1/models/churn/versions/99/activate",
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 404, "{e}");
    let (s, e) = call(
        &app,
        M::POST,
        "/v1/models/churn/versions/x/activate",
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 404, "{e}");
    let (s, a) = call(
        &app,
        M::POST,
        "/v1/models/churn/versions/2/activate",
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["active"], true);
    // Everyone is rescored with the new version without a restart.
    features_until(&app, &unhappy, |f| f["scores"]["churn"]["version"] == 2).await;
    let (s, _) = call(
        &app,
        M::POST,
        "/v1/models/churn/versions/1/activate",
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 200);
    features_until(&app, &unhappy, |f| f["scores"]["churn"]["version"] == 1).await;

    // The customer's export carries their features and scores; erasing them removes both.
    let (s, export) = call(
        &app,
        M::GET,
        &format!("/v1/profiles/{unhappy}/export"),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 200, "{export}");
    assert!(
        export["features"]["scores"]["churn"]["probability"].is_number(),
        "{export}"
    );
    let (s, _) = call(
        &app,
        M::DELETE,
        &format!("/v1/profiles/{unhappy}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = app.get(&format!("/v1/profiles/{unhappy}/features")).await;
    assert_eq!(s, 404);

    // Unknown profiles.
    let (s, _) = app.get("/v1/profiles/prof_nobody/features").await;
    assert_eq!(s, 404);

    // Training and activation are audited.
    let (s, audit) = call(&app, M::GET, "/v1/audit?action=model.", &admin, None).await;
    assert_eq!(s, 200, "{audit}");
    let actions: Vec<&str> = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "model.trained").count(),
        2,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "model.activated").count(),
        2,
        "{actions:?}"
    );
}
