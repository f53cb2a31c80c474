//! Probabilistic dedupe over HTTP: duplicates sent through the ingest API, a dry run that
//! writes nothing, a run that merges one pair (reversible by unmerge), refuses one (two user
//! ids) and queues the rest; deciding pairs (409 when decided twice or when a guard refuses,
//! 404 for an unknown pair, 403 without the permission); a rejected pair not queued again;
//! the Duplicates page; and erasure removing a customer's pairs.

use rapport_core::KeyRole;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{call, key, TestApp};

/// Thresholds for a workspace of six profiles, where the prior is high (one in seven): the
/// strong pair and the refused one score above 1 - 1e-5, the look-alikes below it.
fn thresholds(dry_run: bool) -> Value {
    json!({"dry_run": dry_run, "auto_merge_threshold": 0.99999, "review_threshold": 0.5})
}

async fn id_of(app: &TestApp, query: &str) -> String {
    let (s, p) = app.get(&format!("/v1/profiles?{query}")).await;
    assert_eq!(s, 200, "{query}: {p}");
    p["id"].as_str().expect("id").to_owned()
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> String {
    app.client
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html")
}

#[tokio::test]
async fn dedupe_merges_queues_and_remembers_decisions() {
    let app = TestApp::spawn().await;
    let maria = json!({"street": "12 Oak Street", "postalCode": "94105"});
    for body in [
        json!({"anonymousId": "g-1", "traits": {"first_name": "Maria", "last_name": "Gonzalez",
            "email": "maria@a.io", "birthday": "1980-03-14", "address": maria}}),
        json!({"anonymousId": "g-2", "traits": {"first_name": "Marria", "last_name": "Gonzalez",
            "email": "mg@b.io", "birthday": "1980-03-14", "address": maria}}),
        json!({"anonymousId": "r-1", "traits": {"first_name": "Peter", "last_name": "Novak",
            "email": "peter@c.io", "phone": "+1 415 555 0101", "birthday": "1975-06-02",
            "address": {"street": "1 Elm Street", "postalCode": "10001"}}}),
        json!({"anonymousId": "r-2", "traits": {"first_name": "Peter", "last_name": "Novak",
            "email": "pn@d.io", "phone": "+1 217 555 0188", "birthday": "1975-06-02",
            "address": {"street": "400 Lake Road", "postalCode": "60601"}}}),
        json!({"userId": "u-a", "traits": {"first_name": "Lena", "last_name": "Fischer",
            "email": "lena@e.io", "phone": "+1 415 555 0177"}}),
        json!({"userId": "u-b", "traits": {"first_name": "Lenna", "last_name": "Fischer",
            "email": "lf@f.io", "phone": "+1 415 555 0177"}}),
    ] {
        assert_eq!(app.send("/v1/identify", &body).await.0, 200);
    }
    let (g1, g2) = (
        id_of(&app, "anonymous_id=g-1").await,
        id_of(&app, "anonymous_id=g-2").await,
    );
    let (ua, ub) = (
        id_of(&app, "user_id=u-a").await,
        id_of(&app, "user_id=u-b").await,
    );
    assert_ne!(ua, ub, "live stitching kept the two accounts apart");
    let admin = app.admin_key.clone();

    // A dry run says what would happen and writes nothing.
    let (s, dry) = call(
        &app,
        Method::POST,
        "/v1/identity/dedupe",
        &admin,
        Some(thresholds(true)),
    )
    .await;
    assert_eq!(s, 200, "{dry}");
    assert_eq!(
        (
            dry["merged"].as_u64(),
            dry["refused"].as_u64(),
            dry["queued"].as_u64()
        ),
        (Some(1), Some(1), Some(2)),
        "{dry}"
    );
    assert_eq!(dry["profiles_scanned"], 6);
    let (_, list) = app.get("/v1/identity/review?status=all").await;
    assert_eq!(list["pairs"].as_array().map(Vec::len), Some(0), "{list}");
    assert_ne!(id_of(&app, "anonymous_id=g-2").await, g1);

    // Bad thresholds and callers without the permission are refused.
    let (s, body) = call(
        &app,
        Method::POST,
        "/v1/identity/dedupe",
        &admin,
        Some(json!({"auto_merge_threshold": 0.5, "review_threshold": 0.9})),
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (400, Some("invalid_body")),
        "{body}"
    );
    let agent = key(&app, KeyRole::Agent).await;
    let (s, _) = call(
        &app,
        Method::POST,
        "/v1/identity/dedupe",
        &agent,
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = call(&app, Method::GET, "/v1/identity/review", &agent, None).await;
    assert_eq!(s, 403);

    // The run: the strong pair merges, the two accounts are refused and queued, the
    // look-alikes are queued.
    let (s, run) = call(
        &app,
        Method::POST,
        "/v1/identity/dedupe",
        &admin,
        Some(thresholds(false)),
    )
    .await;
    assert_eq!(s, 200, "{run}");
    assert_eq!(
        (
            run["merged"].as_u64(),
            run["refused"].as_u64(),
            run["queued"].as_u64()
        ),
        (Some(1), Some(1), Some(2)),
        "{run}"
    );
    let refused = run["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["action"] == "refused")
        .expect("a refusal");
    assert_eq!(refused["refusal"], "unauthenticated_merge");
    assert_eq!(
        id_of(&app, "anonymous_id=g-2").await,
        g1,
        "the older profile survives"
    );
    let (_, log) = app.get(&format!("/v1/profiles/{g1}/merges")).await;
    let merge = log["merges"]
        .as_array()
        .expect("merges")
        .iter()
        .find(|m| m["rule"] == "probabilistic_dedupe")
        .expect("the dedupe merge")
        .clone();
    assert_eq!(merge["merged"], g2.as_str());
    assert!(merge["detail"]["match_probability"].as_f64().expect("p") > 0.99999);
    assert!(
        merge["detail"]["fields"]
            .as_array()
            .is_some_and(|f| f.len() == 7),
        "{merge}"
    );
    let (_, audit) = app.get("/v1/audit?action=identity.dedupe.run").await;
    assert_eq!(
        audit["records"].as_array().map(Vec::len),
        Some(1),
        "{audit}"
    );

    // It is reversible with the existing unmerge.
    let (s, out) = call(
        &app,
        Method::POST,
        &format!("/v1/profiles/{g1}/unmerge"),
        &admin,
        Some(json!({"merge_id": merge["id"], "add_guard": true})),
    )
    .await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["restored"], g2.as_str());
    assert_eq!(id_of(&app, "anonymous_id=g-2").await, g2);

    // The queue: most probable first, with the explanation and both profiles.
    let (s, list) = app.get("/v1/identity/review").await;
    assert_eq!(s, 200, "{list}");
    let pairs = list["pairs"].as_array().expect("pairs").clone();
    assert_eq!(pairs.len(), 2, "{list}");
    assert_eq!(pairs[0]["refusal"], "unauthenticated_merge");
    let accounts = pairs[0]["id"].as_str().expect("id").to_owned();
    let lookalikes = pairs[1]["id"].as_str().expect("id").to_owned();
    let (s, shown) = app.get(&format!("/v1/identity/review/{lookalikes}")).await;
    assert_eq!(s, 200, "{shown}");
    assert_eq!(shown["profile_a"]["traits"]["last_name"], "Novak");
    assert_eq!(shown["profile_b"]["traits"]["last_name"], "Novak");
    let dob = shown["pair"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["field"] == "dob")
        .expect("dob")
        .clone();
    assert_eq!(dob["level"], "exact");
    let (s, _) = app.get("/v1/identity/review?limit=0").await;
    assert_eq!(s, 400);
    let (s, _) = app.get("/v1/identity/review/dup_unknown").await;
    assert_eq!(s, 404);

    // Deciding: a merge the guard refuses is 409 naming it; a decided pair is 409; unknown 404.
    let decide = |id: &str, what: &str| format!("/v1/identity/review/{id}/{what}");
    let (s, body) = call(
        &app,
        Method::POST,
        &decide(&accounts, "merge"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (409, Some("merge_refused")),
        "{body}"
    );
    assert!(body["message"]
        .as_str()
        .expect("message")
        .contains("unauthenticated_merge"));
    let (s, body) = call(
        &app,
        Method::POST,
        &decide(&accounts, "reject"),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["pair"]["status"], "rejected");
    let (s, body) = call(
        &app,
        Method::POST,
        &decide(&accounts, "reject"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (409, Some("already_decided")),
        "{body}"
    );
    let (s, body) = call(
        &app,
        Method::POST,
        &decide("dup_unknown", "merge"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (s, merged) = call(
        &app,
        Method::POST,
        &decide(&lookalikes, "merge"),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 200, "{merged}");
    assert_eq!(merged["merge"]["rule"], "dedupe_review");
    let survivor = merged["survivor"].as_str().expect("survivor").to_owned();
    assert_eq!(id_of(&app, "anonymous_id=r-2").await, survivor);
    let (s, body) = call(
        &app,
        Method::POST,
        &decide(&lookalikes, "merge"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (409, Some("already_decided")),
        "{body}"
    );

    // The next run leaves the rejected pair alone; the pair kept apart by the operator's
    // guard is refused and queued instead of merged.
    let (s, again) = call(
        &app,
        Method::POST,
        "/v1/identity/dedupe",
        &admin,
        Some(thresholds(false)),
    )
    .await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["merged"], 0, "{again}");
    assert!(again["skipped_known"].as_u64().expect("n") >= 1, "{again}");
    let (_, list) = app.get("/v1/identity/review").await;
    let pending = list["pairs"].as_array().expect("pairs");
    assert!(pending.iter().all(|p| p["id"] != accounts.as_str()));
    let ids = |p: &Value| {
        [
            p["profile_a"].as_str().unwrap_or("").to_owned(),
            p["profile_b"].as_str().unwrap_or("").to_owned(),
        ]
    };
    assert!(
        pending.iter().all(|p| !ids(p).contains(&ua)),
        "the rejected pair came back: {list}"
    );
    assert!(
        pending
            .iter()
            .any(|p| p["refusal"] == "merge_blocked" && ids(p).contains(&g1)),
        "{list}"
    );

    // The dashboard page lists pending pairs and compares one; after a merge it links to
    // the survivor.
    let cookie = app.admin_session().await;
    let html = page(&app, &cookie, "/duplicates").await;
    assert!(html.contains("id=\"dup-pending\""), "{html}");
    assert!(html.contains("Gonzalez"), "{html}");
    let html = page(&app, &cookie, &format!("/duplicates/{lookalikes}")).await;
    assert!(
        html.contains("id=\"dup-compare\"") && html.contains("dup-field-dob"),
        "{html}"
    );
    assert!(
        html.contains(&format!("href=\"/customers/{survivor}\"")) && html.contains("dup-survivor"),
        "{html}"
    );
    let pending_id = pending[0]["id"].as_str().expect("id");
    let html = page(&app, &cookie, &format!("/duplicates/{pending_id}")).await;
    assert!(
        html.contains(&format!("action=\"/duplicates/{pending_id}/reject\"")),
        "{html}"
    );
    let resp = app
        .client
        .post(app.url(&format!("/duplicates/{pending_id}/reject")))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("post");
    assert!(
        resp.status().is_success() || resp.status().is_redirection(),
        "{}",
        resp.status()
    );
    let (_, shown) = app.get(&format!("/v1/identity/review/{pending_id}")).await;
    assert_eq!(shown["pair"]["status"], "rejected");

    // Erasing a customer removes the pairs that name them.
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/v1/profiles/{survivor}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (_, all) = app.get("/v1/identity/review?status=all").await;
    assert!(
        all["pairs"]
            .as_array()
            .expect("pairs")
            .iter()
            .all(|p| p["id"] != lookalikes.as_str()),
        "{all}"
    );
}
