//! Identity over HTTP: guards in live stitching through the API, unmerge (409 for a profile
//! never merged, audited, permission-checked), and the dashboard's identity graph, unmerge
//! button and data-quality page.

use serde_json::{json, Value};

use crate::common::TestApp;

async fn post(app: &TestApp, key: &str, path: &str, body: &Value) -> (u16, Value) {
    let resp = app
        .client
        .post(app.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("request");
    crate::common::status_json(resp).await
}

async fn dashboard_cookie(app: &TestApp) -> String {
    app.admin_session().await
}

#[tokio::test]
async fn guards_unmerge_and_the_dashboard_work_end_to_end() {
    let app = TestApp::spawn().await;
    // A visitor browses, a customer identifies elsewhere, then the visitor signs in.
    for body in [
        json!({"anonymousId": "v-1", "traits": {"name": "Visitor", "plan": "free"}}),
        json!({"userId": "ann", "traits": {"name": "Ann", "email": "ann@example.com"}}),
        // A placeholder user id: it must not join anyone.
        json!({"userId": "undefined", "anonymousId": "v-2"}),
    ] {
        assert_eq!(app.send("/v1/identify", &body).await.0, 200);
    }
    let (_, visitor) = app.get("/v1/profiles?anonymous_id=v-1").await;
    let visitor_id = visitor["id"].as_str().expect("id").to_owned();
    let (s, body) = post(
        &app,
        &app.admin_key,
        &format!("/v1/profiles/{visitor_id}/unmerge"),
        &json!({}),
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (409, Some("not_merged")),
        "{body}"
    );
    let (s, _) = app.get("/v1/profiles?user_id=undefined").await;
    assert_eq!(s, 404, "a blocked value is not an identifier");

    assert_eq!(
        app.send(
            "/v1/identify",
            &json!({"userId": "ann", "anonymousId": "v-1"})
        )
        .await
        .0,
        200
    );
    let (_, merged) = app.get("/v1/profiles?user_id=ann").await;
    assert_eq!(merged["id"], visitor_id.as_str());
    let (_, log) = app.get(&format!("/v1/profiles/{visitor_id}/merges")).await;
    let merge = &log["merges"][0];
    assert_eq!(merge["status"], "merged");
    let ann_id = merge["merged"].as_str().expect("merged").to_owned();

    // The dashboard shows the graph with an unmerge button, and the data-quality page.
    let cookie = dashboard_cookie(&app).await;
    let html = app
        .client
        .get(app.url(&format!("/customers/{visitor_id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(html.contains("id=\"identity-graph\""), "{html}");
    assert!(html.contains(&format!("action=\"/customers/{visitor_id}/unmerge\"")));

    // A write key may not unmerge; an admin may.
    let path = format!("/v1/profiles/{visitor_id}/unmerge");
    let (s, _) = post(&app, &app.write_key, &path, &json!({})).await;
    assert_eq!(s, 403);
    let (s, _) = post(&app, &app.admin_key, &path, &json!({"merge_id": "x"})).await;
    assert_eq!(s, 400, "bad input is refused with a code");
    let (s, out) = post(
        &app,
        &app.admin_key,
        &path,
        &json!({"merge_id": merge["id"], "add_guard": true}),
    )
    .await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["restored"], ann_id.as_str());
    assert_eq!(out["guard_added"], true);
    let (_, ann) = app.get(&format!("/v1/profiles/{ann_id}")).await;
    assert_eq!(
        ann["id"],
        ann_id.as_str(),
        "the merged id resolves to itself again"
    );
    assert_eq!(ann["traits"]["name"], "Ann");
    let (_, v) = app.get(&format!("/v1/profiles/{visitor_id}")).await;
    assert_eq!(v["traits"]["name"], "Visitor");

    // The guard holds: signing in again does not merge them, and the refusal is logged.
    app.send(
        "/v1/identify",
        &json!({"userId": "ann", "anonymousId": "v-1"}),
    )
    .await;
    let (_, again) = app.get("/v1/profiles?user_id=ann").await;
    assert_eq!(again["id"], ann_id.as_str());
    let (_, audit) = app.get("/v1/audit?action=profile.unmerged").await;
    assert_eq!(
        audit["records"].as_array().map(Vec::len),
        Some(1),
        "{audit}"
    );

    let html = app
        .client
        .get(app.url("/data-quality"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(html.contains("id=\"dq-unmerged\">1<"), "{html}");
    assert!(html.contains("blocked_identifier"), "{html}");
    assert!(html.contains("an operator unmerged them"), "{html}");
}
