//! Next-best-action over HTTP: ranked actions with their explanations, the consent gate
//! filtering what the customer did not allow (with its reason), offers recorded as decisions
//! the customer can read, outcomes teaching the propensity and suppressing rejected actions,
//! and bad input refused with stable codes.

use rapport_core::KeyRole;
use reqwest::Method as M;
use serde_json::{json, Value};

use crate::common::{call, key, TestApp};

const CATALOG: &str = r#"
[traits]
plan = "string"
churn_risk = "number"

[context]
reason = "string"

[levers]
retention = 2.0

[contact_policy]
suppress_after_rejections = 1

[control]
rate = 0.0

[[action]]
id = "fiber_discount"
kind = "retention"
title = "20% off your fiber plan for six months"
value = 120
lever = "retention"
eligibility = ['plan == "fiber"']
applicability = ["churn_risk > 0.4"]
because = "you may be thinking of leaving"
[[action.weight]]
when = 'context.reason == "cancel"'
factor = 3.0

[[action]]
id = "apology_call"
kind = "service_recovery"
title = "a call back from our support lead"
value = 40
applicability = ["open_conversations >= 0"]

[[action]]
id = "copper_upgrade"
kind = "upsell"
value = 60
eligibility = ['plan == "copper"']
"#;

fn options() -> rapport_server::engine::EngineOptions {
    rapport_server::engine::EngineOptions {
        nba_catalog: Some(
            rapport_decide::nba::catalog::Catalog::parse(CATALOG).expect("test catalog"),
        ),
        ..Default::default()
    }
}

fn find<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .expect("list")
        .iter()
        .find(|a| a["action_id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {list}"))
}

#[tokio::test]
async fn actions_are_ranked_explained_gated_and_learn_from_outcomes() {
    let app = TestApp::spawn_with(options()).await;
    let agent = key(&app, KeyRole::Agent).await;
    let (status, body) = app
        .send(
            "/v1/identify",
            &json!({"userId": "nba-1", "traits": {"plan": "fiber", "churn_risk": 0.8}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, p) = app.get("/v1/profiles?user_id=nba-1").await;
    let id = p["id"].as_str().expect("id").to_owned();
    let (s, body) = call(
        &app,
        M::PUT,
        &format!("/v1/profiles/{id}/consents"),
        &app.admin_key.clone(),
        Some(json!({"consents": [{"purpose": "personalization", "state": "granted"}]})),
    )
    .await;
    assert_eq!(s, 200, "{body}");

    // By email the retention offer also needs marketing_email consent, which the customer
    // never gave: the gate filters it, with its reason; the service call is offered.
    let ask = |channel: &str, context: Value| json!({"profile_id": id, "channel": channel, "context": context, "limit": 3});
    let (s, a) = call(
        &app,
        M::POST,
        "/v1/decisions/next-best-action",
        &agent,
        Some(ask("email", json!({"reason": "cancel"}))),
    )
    .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["control_group"], false);
    let refused = find(&a["filtered"], "fiber_discount");
    assert_eq!(refused["stage"], "consent");
    assert_eq!(
        refused["reason"],
        "no consent for marketing_email was given"
    );
    let upsell = find(&a["filtered"], "copper_upgrade");
    assert_eq!(upsell["stage"], "eligibility");
    assert_eq!(upsell["rule"], "plan == \"copper\"");
    assert!(upsell["line"].as_u64().is_some());
    let call_back = find(&a["ranked"], "apology_call");
    assert_eq!(call_back["offered"], true);
    assert!(call_back["decision_id"].is_string());
    assert!(a["missing"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == "last_sentiment"));

    // On the web it is offered, ranked by its priority, with the parts and rules behind it.
    let (s, a) = call(
        &app,
        M::POST,
        "/v1/decisions/next-best-action",
        &agent,
        Some(ask("web", json!({"reason": "cancel"}))),
    )
    .await;
    assert_eq!(s, 200, "{a}");
    let offer = find(&a["ranked"], "fiber_discount");
    assert_eq!(offer["offered"], true);
    let parts = &offer["parts"];
    assert_eq!(parts["context_weight"], 3.0);
    assert_eq!(parts["lever_weight"], 2.0);
    assert_eq!(parts["value"], 120.0);
    let product = parts["propensity"].as_f64().unwrap() * 3.0 * 120.0 * 2.0;
    assert!((offer["priority"].as_f64().unwrap() - product).abs() < 1e-9);
    assert_eq!(offer["rules"][0]["rule"], "plan == \"fiber\"");
    assert_eq!(offer["rules"][1]["values"]["churn_risk"], "0.8");
    assert_eq!(
        offer["explanation"],
        "We suggested 20% off your fiber plan for six months because you may be thinking of leaving."
    );
    let decision = offer["decision_id"].as_str().unwrap().to_owned();
    // The rules of every ranked action read the answer's shared values; only offered
    // actions repeat them per rule.
    assert_eq!(a["values"]["churn_risk"], 0.8);
    let total = a["ranked_total"].as_u64().unwrap() as usize;
    assert_eq!(a["ranked"].as_array().unwrap().len(), total);
    assert!(total >= 2, "{a}");

    // A shorter answer lists the best ranked actions and every offered one; the total
    // still counts them all.
    let mut short = ask("web", json!({"reason": "browse"}));
    short["limit"] = json!(1);
    short["ranked"] = json!(1);
    let (s, b) = call(
        &app,
        M::POST,
        "/v1/decisions/next-best-action",
        &agent,
        Some(short),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let listed = b["ranked"].as_array().unwrap();
    assert!(b["ranked_total"].as_u64().unwrap() as usize >= listed.len());
    assert!(
        listed.iter().filter(|r| r["offered"] == false).count() <= 1,
        "{b}"
    );

    // The offer is a decision the customer can read about.
    let (_, mine) = call(
        &app,
        M::GET,
        &format!("/v1/profiles/{id}/decisions"),
        &agent,
        None,
    )
    .await;
    let stored = mine["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == decision.as_str())
        .expect("stored");
    assert_eq!(stored["kind"], "nba.retention");
    assert_eq!(stored["explanation"], offer["explanation"]);

    // The outcome teaches the propensity: one failure more on a Beta(1, 1) prior.
    let path = format!("/v1/decisions/{decision}/outcome");
    let (s, o) = call(
        &app,
        M::POST,
        &path,
        &agent,
        Some(json!({"outcome": "rejected"})),
    )
    .await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(o["propensity"]["alpha"], 1.0);
    assert_eq!(o["propensity"]["beta"], 2.0);
    assert_eq!(o["propensity"]["failures"], 1);
    let (s, again) = call(
        &app,
        M::POST,
        &path,
        &agent,
        Some(json!({"outcome": "accepted", "value": 10})),
    )
    .await;
    assert_eq!(s, 409, "{again}");
    assert_eq!(again["code"], "outcome_recorded");

    // One rejection suppresses it for this customer (the catalog says so).
    let (_, a) = call(
        &app,
        M::POST,
        "/v1/decisions/next-best-action",
        &agent,
        Some(ask("web", json!({}))),
    )
    .await;
    let suppressed = find(&a["filtered"], "fiber_discount");
    assert_eq!(suppressed["stage"], "suppressed");

    // The service call is accepted: a success.
    let call_back = find(&a["ranked"], "apology_call");
    let path = format!(
        "/v1/decisions/{}/outcome",
        call_back["decision_id"].as_str().unwrap()
    );
    let (s, o) = call(
        &app,
        M::POST,
        &path,
        &agent,
        Some(json!({"outcome": "converted", "value": 25.5})),
    )
    .await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(o["propensity"]["alpha"], 2.0);
    assert_eq!(o["value"], 25.5);
}

#[tokio::test]
async fn bad_requests_get_stable_codes() {
    let app = TestApp::spawn_with(options()).await;
    let agent = key(&app, KeyRole::Agent).await;
    app.send("/v1/identify", &json!({"userId": "nba-2"})).await;
    let (_, p) = app.get("/v1/profiles?user_id=nba-2").await;
    let id = p["id"].as_str().expect("id").to_owned();
    let nba = |body: Value| {
        let agent = agent.clone();
        let app = &app;
        async move {
            call(
                app,
                M::POST,
                "/v1/decisions/next-best-action",
                &agent,
                Some(body),
            )
            .await
        }
    };
    let (s, b) =
        nba(json!({"profile_id": "prof_0000000000000000000000000000000f", "channel": "web"})).await;
    assert_eq!((s, b["code"].as_str()), (404, Some("not_found")), "{b}");
    let (s, b) = nba(json!({"profile_id": "nonsense", "channel": "web"})).await;
    assert_eq!(s, 404, "{b}");
    for context in [
        json!("cancel"),
        json!({"mood": "bad"}),
        json!({"reason": 3}),
    ] {
        let (s, b) = nba(json!({"profile_id": id, "channel": "web", "context": context})).await;
        assert_eq!(
            (s, b["code"].as_str()),
            (400, Some("invalid_context")),
            "{b}"
        );
    }
    let (s, b) = nba(json!({"profile_id": id, "channel": "Web Site"})).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (400, Some("invalid_channel")),
        "{b}"
    );
    let (s, b) = nba(json!({"profile_id": id, "channel": "web", "limit": 0})).await;
    assert_eq!((s, b["code"].as_str()), (400, Some("invalid_limit")), "{b}");
    let (s, b) = nba(json!({"profile_id": id, "channel": "web", "extra": 1})).await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = nba(json!({"profile_id": id, "channel": "web", "ranked": 0})).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (400, Some("invalid_ranked")),
        "{b}"
    );

    let (s, b) = call(
        &app,
        M::POST,
        "/v1/decisions/dec_unknown/outcome",
        &agent,
        Some(json!({"outcome": "accepted"})),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (404, Some("not_found")), "{b}");
    let (s, b) = call(
        &app,
        M::POST,
        "/v1/decisions/dec_unknown/outcome",
        &agent,
        Some(json!({"outcome": "maybe"})),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (400, Some("invalid_outcome")),
        "{b}"
    );

    // No catalog file is configured: nothing to reload.
    let (s, b) = call(
        &app,
        M::POST,
        "/v1/decisions/catalog/reload",
        &app.admin_key.clone(),
        None,
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (409, Some("no_catalog")), "{b}");
}
