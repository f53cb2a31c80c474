//! Governance over HTTP: consent per purpose (API and Segment's `context.consent`), export of
//! everything held about a customer, erasure that leaves no byte of them in the store's files,
//! and the audit trail of each step.

use serde_json::{json, Value};

use crate::common::TestApp;

async fn request(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    crate::common::status_json(req.send().await.expect("request")).await
}

async fn customer(app: &TestApp, user: &str, email: &str) -> String {
    // Each customer gets a phone of their own, derived from the user id.
    let n: u32 = user.bytes().map(u32::from).sum::<u32>() % 100;
    let phone = if user.starts_with("erase-me") {
        "+1 202 555 0143".to_owned()
    } else {
        format!("+1 202 555 01{n:02}")
    };
    let (status, body) = app
        .send(
            "/v1/identify",
            &json!({"userId": user, "traits": {"email": email, "name": "Nora Quint", "phone": phone}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, p) = app.get(&format!("/v1/profiles?user_id={user}")).await;
    p["id"].as_str().expect("profile id").to_owned()
}

#[tokio::test]
async fn consent_is_set_read_and_checked_for_purpose() {
    let app = TestApp::spawn().await;
    let id = customer(&app, "cons-1", "cons1@example.com").await;
    let path = format!("/v1/profiles/{id}/consents");
    let admin = app.admin_key.clone();

    let (status, body) = request(&app, reqwest::Method::PUT, &path, &admin,
        Some(json!({"consents": [{"purpose": "marketing_email", "state": "granted"}, {"purpose": "carrier_pigeon", "state": "granted"}]}))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "unknown_purpose");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("marketing_email"));
    let (_, now) = app.get(&path).await;
    assert_eq!(
        now["history"].as_array().unwrap().len(),
        0,
        "nothing of a refused request is recorded"
    );

    let (status, body) = request(
        &app,
        reqwest::Method::PUT,
        &path,
        &admin,
        Some(json!({"consents": [{"purpose": "marketing_email", "state": "maybe"}]})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_consent_state"))
    );

    let (status, body) = request(&app, reqwest::Method::PUT, &path, &admin,
        Some(json!({"consents": [{"purpose": "marketing_email", "state": "granted", "source": "preference_center"},
                                  {"purpose": "profiling", "state": "denied"}]}))).await;
    assert_eq!(status, 200, "{body}");
    let state = |b: &Value, p: &str| {
        b["current"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["purpose"] == p)
            .map(|c| c["state"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(state(&body, "marketing_email"), "granted");
    assert_eq!(state(&body, "profiling"), "denied");
    assert_eq!(state(&body, "analytics"), "never_asked");

    // A write key sends data; it does not manage consent.
    let (status, _) = request(
        &app,
        reqwest::Method::PUT,
        &path,
        &app.write_key.clone(),
        Some(json!({"consents": [{"purpose": "analytics", "state": "granted"}]})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = request(
        &app,
        reqwest::Method::PUT,
        "/v1/profiles/prof_0000000000000000000000000000000f/consents",
        &admin,
        Some(json!({"consents": [{"purpose": "analytics", "state": "granted"}]})),
    )
    .await;
    assert_eq!(status, 404);

    // Segment's consent fields: known categories are recorded, unknown ones ignored.
    let (status, body) = app
        .send("/v1/track", &json!({"userId": "cons-1", "event": "Newsletter Opened",
            "context": {"consent": {"categoryPreferences": {"Marketing Email": false, "Analytics": true, "Advertising": true}}}}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = app.get(&path).await;
    assert_eq!(
        state(&body, "marketing_email"),
        "withdrawn",
        "a grant taken back is a withdrawal"
    );
    assert_eq!(state(&body, "analytics"), "granted");

    let (_, audit) = app
        .get(&format!("/v1/audit?subject={id}&action=consent."))
        .await;
    let actions: Vec<&str> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "consent.granted",
            "consent.withdrawn",
            "consent.denied",
            "consent.granted"
        ],
        "newest first: the Segment event's two changes, then the API's two"
    );
    assert!(audit["records"][0]["actor"]
        .as_str()
        .unwrap()
        .starts_with("system"));
    assert!(audit["records"][3]["actor"]
        .as_str()
        .unwrap()
        .starts_with("key:"));
}

#[tokio::test]
async fn export_holds_everything_and_is_audited() {
    let app = TestApp::spawn().await;
    let id = customer(&app, "exp-1", "exp1@example.com").await;
    app.send(
        "/v1/page",
        &json!({"userId": "exp-1", "name": "Pricing", "properties": {"plan": "pro"}}),
    )
    .await;
    let (_, conv) = app
        .send(
            "/v1/conversations",
            &json!({"userId": "exp-1", "channel": "chat", "subject": "Late delivery"}),
        )
        .await;
    let conv_id = conv["id"].as_str().unwrap();
    app.send(
        &format!("/v1/conversations/{conv_id}/messages"),
        &json!({"direction": "inbound", "author": "customer", "text": "My parcel is a week late and nobody answers."}),
    )
    .await;
    request(
        &app,
        reqwest::Method::PUT,
        &format!("/v1/profiles/{id}/consents"),
        &app.admin_key.clone(),
        Some(json!({"consents": [{"purpose": "analytics", "state": "granted"}]})),
    )
    .await;

    let (status, export) = app.get(&format!("/v1/profiles/{id}/export")).await;
    assert_eq!(status, 200, "{export}");
    assert_eq!(export["format"], "rapport.export.v1");
    assert_eq!(export["profile"]["id"], id.as_str());
    assert!(export["profile"].to_string().contains("exp1@example.com"));
    assert_eq!(
        export["events"].as_array().unwrap().len(),
        3,
        "identify, page, message"
    );
    let messages = &export["conversations"][0]["messages"];
    assert!(messages[0]["text"]
        .as_str()
        .unwrap()
        .contains("a week late"));
    assert!(
        messages[0]["analysis"]["sentiment"].is_object(),
        "derived scores are part of the export"
    );
    assert_eq!(export["consents"][0]["purpose"], "analytics");
    assert!(export["decisions"].is_array());

    let (_, audit) = app
        .get(&format!("/v1/audit?subject={id}&action=profile.exported"))
        .await;
    assert_eq!(audit["records"].as_array().unwrap().len(), 1);
    assert!(audit["records"][0]["actor"]
        .as_str()
        .unwrap()
        .starts_with("key:"));
    let (status, _) = app
        .get("/v1/profiles/prof_0000000000000000000000000000000f/export")
        .await;
    assert_eq!(status, 404);
}

/// Every file under `dir`, read whole, searched for each needle.
fn files_containing(dir: &std::path::Path, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).expect("read file");
            for n in needles {
                if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                    found.push(format!("{} in {}", n, path.display()));
                }
            }
        }
    }
    found
}

#[tokio::test]
async fn erasure_leaves_no_trace_and_no_way_back() {
    let app = TestApp::spawn().await;
    let id = customer(&app, "erase-me-7731", "nora.quint.7731@example.com").await;
    let _keep = customer(&app, "keep-me-1", "kept.customer@example.com").await;
    app.send(
        "/v1/page",
        &json!({"anonymousId": "anon-erase-7731", "userId": "erase-me-7731", "name": "Account"}),
    )
    .await;
    let (_, conv) = app
        .send(
            "/v1/conversations",
            &json!({"userId": "erase-me-7731", "channel": "email", "subject": "Close my account"}),
        )
        .await;
    app.send(
        &format!("/v1/conversations/{}/messages", conv["id"].as_str().unwrap()),
        &json!({"direction": "inbound", "author": "customer",
                "text": "Please delete everything. My card 4111 1111 1111 1111 was charged, call me on +1 202 555 0143."}),
    )
    .await;

    let admin = app.admin_key.clone();
    let (status, out) = request(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/profiles/{id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["already_erased"], false);
    assert_eq!(out["log_purged"], true);
    assert!(out["events"].as_u64().unwrap() >= 3);
    assert_eq!(out["messages"], 1);

    let (status, _) = app.get(&format!("/v1/profiles/{id}")).await;
    assert_eq!(status, 404);
    let (status, again) = request(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/profiles/{id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (status, &again["already_erased"]),
        (200, &json!(true)),
        "{again}"
    );
    let (status, body) = request(
        &app,
        reqwest::Method::DELETE,
        "/v1/profiles/prof_0000000000000000000000000000000f",
        &admin,
        None,
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, _) = request(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/profiles/{id}"),
        &app.write_key.clone(),
        None,
    )
    .await;
    assert_eq!(status, 403);

    // Late events naming the customer are acknowledged and dropped.
    let (status, late) = app
        .send(
            "/v1/track",
            &json!({"anonymousId": "anon-erase-7731", "event": "Late Click"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(late["suppressed"], 1, "{late}");
    let (status, _) = app.get("/v1/profiles?user_id=erase-me-7731").await;
    assert_eq!(status, 404);

    // No byte of them anywhere in the store: database, write-ahead log, shared memory.
    let left = files_containing(
        app.data_dir(),
        &[
            "erase-me-7731",
            "nora.quint.7731",
            "anon-erase-7731",
            "+12025550143",
            "202 555 0143",
            "4111 1111",
            "Close my account",
        ],
    );
    assert!(left.is_empty(), "erased data found: {left:?}");
    // The other customer is still there, so the search is not vacuous.
    assert!(!files_containing(app.data_dir(), &["kept.customer@example.com"]).is_empty());

    let (_, audit) = app
        .get(&format!("/v1/audit?subject={id}&action=profile.erased"))
        .await;
    let rec = &audit["records"][0];
    assert_eq!(audit["records"].as_array().unwrap().len(), 1);
    assert!(rec["actor"].as_str().unwrap().starts_with("key:"));
    assert!(
        !rec.to_string().contains("7731@"),
        "audit holds no personal data"
    );
}

#[tokio::test]
async fn the_customer_page_explains_withdraws_downloads_and_refuses_bad_links() {
    let app = TestApp::spawn().await;
    let id = customer(&app, "why-1", "why1@example.com").await;
    let admin = app.admin_key.clone();
    request(
        &app,
        reqwest::Method::PUT,
        &format!("/v1/profiles/{id}/consents"),
        &admin,
        Some(json!({"consents": [{"purpose": "marketing_email", "state": "granted"}]})),
    )
    .await;
    let (status, link) = request(
        &app,
        reqwest::Method::POST,
        &format!("/v1/profiles/{id}/why-link"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 201, "{link}");
    let path = link["path"].as_str().unwrap().to_owned();
    let (status, bad) = request(
        &app,
        reqwest::Method::POST,
        &format!("/v1/profiles/{id}/why-link"),
        &admin,
        Some(json!({"days": 400})),
    )
    .await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("invalid_body")));

    // No login: the link is the permission.
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = anon.get(app.url(&path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Why am I seeing this?"));
    assert!(html.contains("Marketing messages by email"));
    assert!(html.contains("Withdraw"));

    let r = anon
        .post(app.url(&format!("{path}/withdraw")))
        .form(&[("purpose", "marketing_email")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, consents) = app.get(&format!("/v1/profiles/{id}/consents")).await;
    let last = consents["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["state"], "withdrawn");
    assert_eq!(last["source"], "customer_page");

    let data: Value = anon
        .get(app.url(&format!("{path}/data.json")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(data["profile"]["id"], id.as_str());

    let r = anon
        .post(app.url(&format!("{path}/human")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, audit) = app.get(&format!("/v1/audit?subject={id}")).await;
    let actions: Vec<(String, String)> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in ["handoff.requested", "profile.exported", "consent.withdrawn"] {
        assert!(
            actions
                .iter()
                .any(|(a, who)| a == expected && who == "customer"),
            "{expected} by the customer in {actions:?}"
        );
    }

    // A forged link (signature of another token) and garbage show no data.
    let (claims, _) = path.trim_start_matches("/why/").split_once('.').unwrap();
    let forged = format!("/why/{claims}.AAAA");
    let r = anon.get(app.url(&forged)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(body.contains("not valid") && !body.contains("why1@example.com"));
    let r = anon.get(app.url("/why/garbage")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = anon
        .get(app.url(&format!("{forged}/data.json")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn the_fairness_api_gives_fairlearns_numbers() {
    let app = TestApp::spawn().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../rapport-govern/tests/fixtures/fairness");
    let csv = std::fs::read_to_string(dir.join("data.csv")).unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let case = expected["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "binary_sex")
        .unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Value> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            json!({"groups": [f[col("sex")]], "prediction": f[col("approved")].parse::<f64>().unwrap(),
                   "label": f[col("repaid")].parse::<f64>().unwrap()})
        })
        .collect();
    let body = json!({"columns": {"groups": ["sex"], "prediction": "approved", "label": "repaid"},
                      "rows": rows, "thresholds": {"max_demographic_parity_difference": 0.1}});
    let (status, out) = request(
        &app,
        reqwest::Method::POST,
        "/v1/audits/fairness",
        &app.admin_key.clone(),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let text = out["report"].to_string();
    for key in [
        "demographic_parity_difference",
        "equalized_odds_difference",
        "equalized_odds_ratio",
    ] {
        let want = case["aggregates"][key].as_f64().unwrap();
        // The number appears in the report as serde_json prints it; compare by search on the
        // value at full precision.
        assert!(
            text.contains(&format!("{want}")) || text.contains(&format!("{want:.15}")),
            "{key} = {want} not in the API's report"
        );
    }
    assert!(!out["violations"].as_array().unwrap().is_empty());

    let (status, err) = request(
        &app,
        reqwest::Method::POST,
        "/v1/audits/fairness",
        &app.admin_key.clone(),
        Some(json!({"columns": {"groups": ["g"], "prediction": "p"},
                    "rows": [{"groups": ["a"], "prediction": 1}, {"groups": ["b"], "prediction": 7}, {"groups": ["b"], "prediction": 3}],
                    "options": {"task": "binary"}})),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("row"), "{err}");
}
