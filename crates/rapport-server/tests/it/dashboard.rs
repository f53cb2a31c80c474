//! The dashboard over plain HTTP: sign-in, cookies, pages.

use serde_json::json;

use rapport_core::KeyRole;

use crate::common::{TestApp, PASSWORD};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn pages_need_a_session_and_sessions_need_a_password() {
    let app = TestApp::spawn().await;
    let c = no_redirects();
    for path in [
        "/",
        "/customers",
        "/customers/prof_00000000000000000000000000000000",
        "/dashboard/live.json",
    ] {
        let resp = c.get(app.url(path)).send().await.expect("get");
        assert_eq!(resp.status(), 303, "{path}");
        assert_eq!(resp.headers()["location"], "/login");
    }
    // Keys no longer open the dashboard; people sign in with a login and a password.
    assert_eq!(
        app.sign_in_as(&app.admin_key, "").await.status(),
        401,
        "a key is not a login"
    );
    assert_eq!(
        app.sign_in_as(&app.admin_login, "wrong password here")
            .await
            .status(),
        401
    );
    assert_eq!(app.sign_in_as("nobody.here", PASSWORD).await.status(), 401);
    let resp = app
        .sign_in_as(&app.admin_login.to_uppercase(), PASSWORD)
        .await;
    assert_eq!(resp.status(), 303, "logins are case-insensitive");
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // Every attempt is in the audit trail, by account id and never with the password; a
    // login that names no account belongs to no workspace, so only the wrong password shows
    // in the workspace's trail.
    let (_, audit) = app.get("/v1/audit?action=login.failed").await;
    let failed = audit["records"].as_array().expect("records");
    assert_eq!(failed.len(), 1, "{audit}");
    assert_eq!(failed[0]["details"]["reason"], "wrong_password");
    let (_, audit) = app.get("/v1/audit?action=login.succeeded").await;
    let ok = &audit["records"][0];
    assert!(
        ok["actor"].as_str().unwrap_or("").starts_with("user:"),
        "{ok}"
    );
    assert!(!audit.to_string().contains(PASSWORD));
}

#[tokio::test]
async fn repeated_failures_lock_a_login_for_a_while() {
    let app = TestApp::spawn().await;
    let login = app.account("ana.agent", KeyRole::Agent).await;
    for _ in 0..5 {
        assert_eq!(
            app.sign_in_as(&login, "not the password").await.status(),
            401
        );
    }
    // Even the right password is refused now: guessing must not go on at full speed.
    let resp = app.sign_in_as(&login, PASSWORD).await;
    assert_eq!(resp.status(), 429);
    assert!(resp
        .text()
        .await
        .expect("html")
        .contains("Too many failed attempts"));
    // Another account is not affected.
    assert_eq!(
        app.sign_in_as(&app.admin_login, PASSWORD).await.status(),
        303
    );
}

#[tokio::test]
async fn accounts_are_made_by_admins_only() {
    let app = TestApp::spawn().await;
    let made = app
        .client
        .post(app.url("/v1/users"))
        .bearer_auth(&app.admin_key)
        .json(&json!({"login": "Sam.Supervisor", "role": "supervisor", "password": "twelve chars ok"}))
        .send()
        .await
        .expect("post");
    assert_eq!(made.status(), 201);
    let body: serde_json::Value = made.json().await.expect("json");
    assert_eq!(body["login"], "sam.supervisor");
    assert!(body.get("password").is_none() && body.get("password_hash").is_none());
    for (bad, code) in [
        (
            json!({"login": "x y", "role": "agent", "password": "twelve chars ok"}),
            "invalid_login",
        ),
        (
            json!({"login": "zed", "role": "write", "password": "twelve chars ok"}),
            "invalid_role",
        ),
        (
            json!({"login": "zed", "role": "boss", "password": "twelve chars ok"}),
            "invalid_role",
        ),
        (
            json!({"login": "zed", "role": "agent", "password": "short"}),
            "weak_password",
        ),
        (
            json!({"login": "sam.supervisor", "role": "agent", "password": "twelve chars ok"}),
            "conflict",
        ),
    ] {
        let resp = app
            .client
            .post(app.url("/v1/users"))
            .bearer_auth(&app.admin_key)
            .json(&bad)
            .send()
            .await
            .expect("post");
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(body["code"], code, "{bad} -> {status} {body}");
    }
    let (status, list) = app.get("/v1/users").await;
    assert_eq!(status, 200);
    let logins: Vec<&str> = list["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["login"].as_str())
        .collect();
    assert_eq!(logins, ["ada.admin", "sam.supervisor"]);
    // The new account signs in with its password.
    assert_eq!(
        app.sign_in_as("sam.supervisor", "twelve chars ok")
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn customer_360_and_conversation_pages_show_the_customer() {
    let app = TestApp::spawn().await;
    app.send("/v1/identify", &json!({"userId": "c1", "traits": {"name": "Chinua Achebe", "email": "chinua@example.com", "plan": "fiber-100"}})).await;
    app.send("/v1/page", &json!({"userId": "c1", "name": "Coverage Map"}))
        .await;
    let (_, conv) = app
        .send(
            "/v1/conversations",
            &json!({"userId": "c1", "channel": "chat", "subject": "Slow evening speeds"}),
        )
        .await;
    let conv_id = conv["id"].as_str().expect("id");
    app.send(&format!("/v1/conversations/{conv_id}/messages"), &json!({"direction": "inbound", "author": "customer", "text": "Speeds drop every evening <b>again</b>."})).await;
    let cookie = app.admin_session().await;
    let get = |path: String| {
        let cookie = cookie.clone();
        let url = app.url(&path);
        async move {
            no_redirects()
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .expect("get")
        }
    };
    let overview = get("/".into()).await;
    assert_eq!(overview.status(), 200);
    let html = overview.text().await.expect("html");
    assert!(html.contains("Slow evening speeds") && html.contains("Chinua Achebe"));
    let list = get("/customers?q=chin".into())
        .await
        .text()
        .await
        .expect("html");
    assert!(list.contains("Chinua Achebe"));
    let (_, p) = app.get("/v1/profiles?user_id=c1").await;
    let page = get(format!("/customers/{}", p["id"].as_str().expect("id")))
        .await
        .text()
        .await
        .expect("html");
    for want in [
        "Chinua Achebe",
        "fiber-100",
        "chinua@example.com",
        "Coverage Map",
        "Slow evening speeds",
    ] {
        assert!(page.contains(want), "customer page shows {want}");
    }
    let convo = get(format!("/conversations/{conv_id}"))
        .await
        .text()
        .await
        .expect("html");
    assert!(
        // "again" may be highlighted as evidence of repeated contact, so the tags are
        // checked on their own.
        convo.contains("&lt;b&gt;") && convo.contains("&lt;/b&gt;") && !convo.contains("<b>"),
        "message text is escaped"
    );
    let live = get("/dashboard/live.json".into())
        .await
        .json::<serde_json::Value>()
        .await
        .expect("json");
    assert_eq!(live["profiles"], 1);
    assert_eq!(
        get("/customers/prof_00000000000000000000000000000000".into())
            .await
            .status(),
        404
    );
}
