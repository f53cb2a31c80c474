//! `POST /v1/match`: one record scored against the workspace's profiles, read-only.

use serde_json::{json, Value};

use crate::common::TestApp;

async fn post_match(app: &TestApp, body: &Value) -> (u16, Value) {
    let resp = app
        .client
        .post(app.url("/v1/match"))
        .bearer_auth(&app.admin_key)
        .json(body)
        .send()
        .await
        .expect("request");
    crate::common::status_json(resp).await
}

async fn identify(app: &TestApp, user: &str, traits: Value) {
    let (status, body) = app
        .send("/v1/identify", &json!({"userId": user, "traits": traits}))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_record_finds_its_profile_first_with_explanations() {
    let app = TestApp::spawn().await;
    identify(
        &app,
        "ada",
        json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada.lovelace@example.com",
               "phone": "(202) 555-0143", "birthday": "1815-12-10",
               "address": {"street": "12 Oak Street", "postalCode": "94105", "country": "US"}}),
    )
    .await;
    identify(
        &app,
        "annie",
        json!({"firstName": "Annie", "lastName": "Lovelace", "email": "annie@example.com",
               "birthday": "1990-03-01"}),
    )
    .await;
    identify(
        &app,
        "bob",
        json!({"firstName": "Bob", "lastName": "Marsh", "email": "bob@example.com"}),
    )
    .await;
    let (_, events_before) = app.get("/v1/stats").await;

    // Another system's copy of Ada: email in capitals, phone written differently, a typo.
    let (status, body) = post_match(
        &app,
        &json!({"traits": {"name": "Adda Lovelace", "phone": "+1 202 555 0143",
                            "birthday": "1815-12-10", "email": "ADA.LOVELACE@example.com"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let candidates = body["candidates"].as_array().expect("candidates");
    assert!(
        candidates.len() >= 2,
        "email/phone and the surname search: {body}"
    );
    let best = &candidates[0];
    assert_eq!(best["name"], "Ada Lovelace", "{body}");
    assert!(
        best["match_probability"].as_f64().unwrap_or(0.0) > 0.99,
        "{body}"
    );
    let found_by: Vec<&str> = best["found_by"]
        .as_array()
        .expect("found_by")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        found_by.contains(&"email") && found_by.contains(&"phone"),
        "{best}"
    );
    let field = |c: &Value, f: &str| {
        c["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|x| x["field"] == f)
            .cloned()
            .expect(f)
    };
    assert_eq!(field(best, "email")["level"], "exact");
    assert_eq!(field(best, "phone")["level"], "exact");
    assert!(
        field(best, "last_name")["log2_bayes_factor"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
    );
    // The weight is the prior plus the fields' parts.
    let parts: f64 = best["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["log2_bayes_factor"].as_f64())
        .sum();
    let prior = body["prior"].as_f64().expect("prior");
    let expected = (prior / (1.0 - prior)).log2() + parts;
    assert!((best["match_weight"].as_f64().expect("w") - expected).abs() < 1e-9);
    // Annie shares only the surname: found by name, far less likely.
    let annie = candidates
        .iter()
        .find(|c| c["name"] == "Annie Lovelace")
        .expect("annie");
    assert!(
        annie["match_probability"].as_f64().unwrap_or(1.0) < 0.05,
        "{annie}"
    );
    assert_eq!(annie["found_by"], json!(["name"]));
    assert!(candidates.iter().all(|c| c["name"] != "Bob Marsh"));

    // Read-only: nothing was added.
    let (_, events_after) = app.get("/v1/stats").await;
    for k in ["profiles", "events"] {
        assert_eq!(events_before[k], events_after[k], "{k}");
    }

    // min_probability and limit cut the list.
    let (status, body) = post_match(
        &app,
        &json!({"traits": {"name": "Ada Lovelace", "email": "ada.lovelace@example.com"},
                "min_probability": 0.5, "limit": 1}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["candidates"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn bad_requests_get_stable_codes_and_the_write_key_is_refused() {
    let app = TestApp::spawn().await;
    for (body, code) in [
        (
            json!({"traits": {"favourite_colour": "green"}}),
            "nothing_to_match",
        ),
        (
            json!({"traits": {"email": "a@b.io"}, "limit": 0}),
            "invalid_body",
        ),
        (
            json!({"traits": {"email": "a@b.io"}, "limit": 51}),
            "invalid_body",
        ),
        (
            json!({"traits": {"email": "a@b.io"}, "min_probability": 2}),
            "invalid_body",
        ),
        (
            json!({"traits": {"email": "a@b.io"}, "unknown": 1}),
            "invalid_field",
        ),
        (json!({"record": {}}), "invalid_field"),
    ] {
        let (status, resp) = post_match(&app, &body).await;
        assert_eq!(status, 400, "{body} -> {resp}");
        assert_eq!(resp["code"], code, "{body} -> {resp}");
    }
    // A value that cannot be standardised is reported, not an error.
    let (status, resp) = post_match(
        &app,
        &json!({"traits": {"email": "not-an-email", "lastName": "Xu"}}),
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["data_quality"][0]["field"], "email", "{resp}");
    assert_eq!(resp["candidates"], json!([]));
    // Write keys only send data.
    let (status, resp) = app
        .send("/v1/match", &json!({"traits": {"email": "a@b.io"}}))
        .await;
    assert_eq!(status, 403, "{resp}");
    assert_eq!(resp["code"], "forbidden");
}
