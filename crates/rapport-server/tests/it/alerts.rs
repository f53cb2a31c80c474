//! Scheduled fairness audits of stored decisions and the alerts they raise: a disparity in
//! who actually received an offer crosses the configured limit, an alert with the evidence
//! appears, and a person marks it seen to. Every step is audited.

use std::time::Duration;

use rapport_core::KeyRole;
use rapport_govern::fairness::scheduled::ScheduledAudit;
use rapport_govern::fairness::Thresholds;
use reqwest::Method as M;
use serde_json::json;

use crate::common::{call, key, TestApp};

fn audit(name: &str, min_rows: usize) -> ScheduledAudit {
    ScheduledAudit {
        name: name.into(),
        decision_kinds: vec!["offer.*".into()],
        groups: vec!["age_band".into()],
        every: Duration::from_secs(3600),
        window: Duration::from_secs(7 * 86_400),
        min_rows,
        thresholds: Thresholds {
            max_demographic_parity_difference: Some(0.2),
            ..Default::default()
        },
    }
}

#[tokio::test]
async fn a_disparity_in_offers_raises_an_alert_with_its_evidence() {
    let app = TestApp::spawn_with(rapport_server::engine::EngineOptions {
        fairness_audits: vec![audit("offers-by-age", 10), audit("needs-many", 500)],
        ..Default::default()
    })
    .await;
    let admin = app.admin_key.clone();
    let agent = key(&app, KeyRole::Agent).await;
    let analyst = key(&app, KeyRole::Analyst).await;
    // Ten younger customers who accepted offers by email, ten older ones of whom only two
    // did: offers reach 100% of one band and 20% of the other.
    for i in 0..20 {
        let band = if i < 10 { "18-24" } else { "65+" };
        let user = format!("fa-{i}");
        app.send(
            "/v1/identify",
            &json!({"userId": user, "traits": {"email": format!("fa{i}@example.com"), "age_band": band}}),
        )
        .await;
        let (_, p) = app.get(&format!("/v1/profiles?user_id={user}")).await;
        let id = p["id"].as_str().expect("id").to_owned();
        if i < 10 || i % 5 == 0 {
            let (s, _) = call(
                &app,
                M::PUT,
                &format!("/v1/profiles/{id}/consents"),
                &admin,
                Some(json!({"consents": [
                    {"purpose": "personalization", "state": "granted"},
                    {"purpose": "marketing_email", "state": "granted"}]})),
            )
            .await;
            assert_eq!(s, 200);
        }
        let (s, d) = call(
            &app,
            M::POST,
            "/v1/actions",
            &agent,
            Some(json!({"profile_id": id, "kind": "offer.retention",
                "params": {"percent": 10, "channel": "email"},
                "reasons": [{"code": "renewal", "text": "your contract renews soon"}],
                "automated": true})),
        )
        .await;
        // 201 when carried out, 200 when refused for want of consent: a decision either way.
        assert!(s == 200 || s == 201, "{s} {d}");
    }

    let (s, list) = call(
        &app,
        M::GET,
        "/v1/audits/fairness/scheduled",
        &analyst,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(list[0]["name"], "offers-by-age");
    assert_eq!(list[0]["every"], "1h");

    let (s, run) = call(
        &app,
        M::POST,
        "/v1/audits/fairness/scheduled/offers-by-age/run",
        &analyst,
        None,
    )
    .await;
    assert_eq!(s, 200, "{run}");
    assert_eq!(run["rows"], 20);
    assert_eq!(run["outcome"], "reported");
    let v = &run["violations"][0];
    assert_eq!(v["metric"], "demographic_parity_difference", "{run}");
    assert!((v["value"].as_f64().unwrap() - 0.8).abs() < 1e-9, "{v}");
    let alert_id = run["alert"]
        .as_str()
        .expect("an alert was raised")
        .to_owned();

    let (s, alerts) = call(&app, M::GET, "/v1/alerts?open=true", &agent, None).await;
    assert_eq!(s, 200);
    let a = &alerts["alerts"][0];
    assert_eq!(a["id"], alert_id.as_str());
    assert_eq!(a["kind"], "fairness.threshold");
    assert!(
        a["title"].as_str().unwrap().contains("offers-by-age"),
        "{a}"
    );
    assert_eq!(a["evidence"]["rows"], 20);
    assert!(
        !a.to_string().contains("fa1@example.com"),
        "no personal data in alerts"
    );

    // Too few decided decisions: said so, no alert.
    let (_, small) = call(
        &app,
        M::POST,
        "/v1/audits/fairness/scheduled/needs-many/run",
        &analyst,
        None,
    )
    .await;
    assert_eq!(small["outcome"], "too_few_rows");
    assert!(small["alert"].is_null());
    let (s, e) = call(
        &app,
        M::POST,
        "/v1/audits/fairness/scheduled/nope/run",
        &analyst,
        None,
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (404, Some("unknown_audit")));

    // Analysts read but do not acknowledge; agents do, once.
    let path = format!("/v1/alerts/{alert_id}/acknowledge");
    let (s, _) = call(&app, M::POST, &path, &analyst, None).await;
    assert_eq!(s, 403);
    let (s, acked) = call(&app, M::POST, &path, &agent, None).await;
    assert_eq!(s, 200);
    assert!(acked["acknowledged_by"]
        .as_str()
        .unwrap()
        .starts_with("key:"));
    let (_, again) = call(&app, M::POST, &path, &admin, None).await;
    assert_eq!(again["acknowledged_by"], acked["acknowledged_by"]);
    let (_, open) = call(&app, M::GET, "/v1/alerts?open=true", &agent, None).await;
    assert!(open["alerts"].as_array().unwrap().is_empty());
    let (s, e) = call(
        &app,
        M::POST,
        "/v1/alerts/alr_nothing/acknowledge",
        &agent,
        None,
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (404, Some("not_found")));

    let (_, audit) = app.get("/v1/audit?limit=1000").await;
    let actions: Vec<&str> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "fairness.audited").count(),
        2
    );
    assert_eq!(actions.iter().filter(|a| **a == "alert.raised").count(), 1);
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "alert.acknowledged")
            .count(),
        1
    );

    // The dashboard shows the alert on the overview and on the Alerts page.
    let cookie = app.admin_session().await;
    for path in ["/", "/alerts"] {
        let html = app
            .client
            .get(app.url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html");
        if path == "/alerts" {
            assert!(
                html.contains("offers-by-age") && html.contains("seen to by"),
                "{path}"
            );
        }
    }
}
