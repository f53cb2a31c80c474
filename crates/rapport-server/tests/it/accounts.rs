//! People's accounts after they are made: sessions kept in the store (so a second server, or
//! the same one after a restart, knows them), disabling and enabling, password changes by the
//! person and resets by an administrator; each change ends the account's sessions.

use std::sync::Arc;

use rapport_core::KeyRole;
use rapport_store::Store;
use serde_json::{json, Value};

use crate::common::{TestApp, PASSWORD};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn cookie_of(resp: &reqwest::Response) -> String {
    resp.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned()
}

/// The status of `GET base+path` with a session cookie.
async fn page_status(base: &str, path: &str, cookie: &str) -> (u16, String) {
    let resp = no_redirects()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("get");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// A second server over the same store, with nothing in memory from the first.
async fn second_server(app: &TestApp) -> (String, tokio::sync::oneshot::Sender<()>) {
    let store: Arc<dyn Store> = app.store.clone();
    let state = rapport_server::AppState::with_sink(
        store,
        rapport_ingest::Limits::default(),
        Default::default(),
        rapport_server::sink::EventSink::Embedded,
    )
    .expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = rapport_server::serve(listener, state, async {
            let _ = rx.await;
        })
        .await;
    });
    (base, tx)
}

async fn patch(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let resp = app
        .client
        .patch(app.url(path))
        .bearer_auth(&app.admin_key)
        .json(body)
        .send()
        .await
        .expect("patch");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn put_password(app: &TestApp, id: &str, password: &str) -> (u16, Value) {
    let resp = app
        .client
        .put(app.url(&format!("/v1/users/{id}/password")))
        .bearer_auth(&app.admin_key)
        .json(&json!({ "password": password }))
        .send()
        .await
        .expect("put");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn user_id(app: &TestApp, login: &str) -> String {
    let (_, list) = app.get("/v1/users").await;
    list["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["login"] == login)
        .and_then(|u| u["id"].as_str())
        .expect("listed")
        .to_owned()
}

#[tokio::test]
async fn sessions_live_in_the_store_and_end_when_an_account_is_disabled() {
    let app = TestApp::spawn().await;
    let lee = app.account("lee.agent", KeyRole::Agent).await;
    let resp = app.sign_in_as(&lee, PASSWORD).await;
    assert_eq!(resp.status(), 303);
    let cookie = cookie_of(&resp);
    let (status, body) = page_status(&app.base, "/account", &cookie).await;
    assert_eq!(status, 200);
    assert!(body.contains("lee.agent"), "{body}");

    // Another server over the same store (another node, or this one restarted) knows it.
    let (other, _stop) = second_server(&app).await;
    assert_eq!(page_status(&other, "/account", &cookie).await.0, 200);

    let id = user_id(&app, &lee).await;
    for (bad, status, code) in [
        (json!({}), 400, "empty_change"),
        (json!({"role": "write"}), 400, "invalid_role"),
        (json!({"role": "boss"}), 400, "invalid_role"),
        (json!({"disabled": true, "why": "x"}), 400, "invalid_field"),
    ] {
        let (s, body) = patch(&app, &format!("/v1/users/{id}"), &bad).await;
        assert_eq!(
            (s, body["code"].as_str()),
            (status, Some(code)),
            "{bad}: {body}"
        );
    }
    let (s, body) = patch(&app, "/v1/users/usr_nobody", &json!({"disabled": true})).await;
    assert_eq!(
        (s, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    assert_eq!(
        page_status(&app.base, "/account", &cookie).await.0,
        200,
        "bad requests change nothing"
    );

    let (s, body) = patch(&app, &format!("/v1/users/{id}"), &json!({"disabled": true})).await;
    assert_eq!(s, 200, "{body}");
    assert!(body["disabled_at"].is_string(), "{body}");
    for base in [&app.base, &other] {
        let (status, _) = page_status(base, "/account", &cookie).await;
        assert_eq!(
            status, 303,
            "the disabled account's session ended on {base}"
        );
    }
    let refused = app.sign_in_as(&lee, PASSWORD).await;
    assert_eq!(refused.status(), 403, "a disabled account cannot sign in");
    let (_, audit) = app.get("/v1/audit?action=login.failed").await;
    assert!(audit.to_string().contains("\"disabled\""), "{audit}");
    let (_, audit) = app.get("/v1/audit?action=user.updated").await;
    assert!(audit.to_string().contains(&id), "{audit}");

    // Enabled again, the person signs in; a new role ends that session too.
    let (s, _) = patch(
        &app,
        &format!("/v1/users/{id}"),
        &json!({"disabled": false}),
    )
    .await;
    assert_eq!(s, 200);
    let resp = app.sign_in_as(&lee, PASSWORD).await;
    assert_eq!(resp.status(), 303);
    let cookie = cookie_of(&resp);
    assert_eq!(
        page_status(&app.base, "/audit", &cookie).await.0,
        403,
        "agents may not read the audit trail"
    );
    let (s, body) = patch(
        &app,
        &format!("/v1/users/{id}"),
        &json!({"role": "analyst"}),
    )
    .await;
    assert_eq!((s, body["role"].as_str()), (200, Some("analyst")));
    assert_eq!(
        page_status(&app.base, "/audit", &cookie).await.0,
        303,
        "signed out by the new role"
    );
    let cookie = cookie_of(&app.sign_in_as(&lee, PASSWORD).await);
    assert_eq!(
        page_status(&app.base, "/audit", &cookie).await.0,
        200,
        "analysts may"
    );

    // Signing out ends the session in the store, for every server.
    let out = no_redirects()
        .post(app.url("/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 303);
    assert_eq!(page_status(&other, "/account", &cookie).await.0, 303);
}

#[tokio::test]
async fn people_change_their_password_and_admins_reset_it() {
    let app = TestApp::spawn().await;
    let sam = app.account("sam.supervisor", KeyRole::Supervisor).await;
    let first = cookie_of(&app.sign_in_as(&sam, PASSWORD).await);
    let second = cookie_of(&app.sign_in_as(&sam, PASSWORD).await);
    let change =
        |cookie: String, current: &'static str, new: &'static str, repeat: &'static str| {
            let url = app.url("/account/password");
            async move {
                let resp = no_redirects()
                    .post(url)
                    .header("cookie", cookie)
                    .form(&[("current", current), ("new", new), ("repeat", repeat)])
                    .send()
                    .await
                    .expect("post");
                let status = resp.status().as_u16();
                let renewed = resp
                    .headers()
                    .get("set-cookie")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(';').next())
                    .map(str::to_owned);
                (status, renewed, resp.text().await.unwrap_or_default())
            }
        };
    let (s, _, body) = change(
        first.clone(),
        "wrong password!",
        "a new long password",
        "a new long password",
    )
    .await;
    assert_eq!(s, 403, "{body}");
    let (s, _, body) = change(
        first.clone(),
        PASSWORD,
        "a new long password",
        "another one entirely",
    )
    .await;
    assert_eq!(s, 400, "{body}");
    let (s, _, body) = change(first.clone(), PASSWORD, "short", "short").await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("12 characters"), "{body}");
    assert_eq!(
        page_status(&app.base, "/account", &second).await.0,
        200,
        "refused changes end nothing"
    );

    let (s, renewed, body) = change(
        first.clone(),
        PASSWORD,
        "a new long password",
        "a new long password",
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("Your password is changed"), "{body}");
    let renewed = renewed.expect("a fresh session");
    assert_eq!(page_status(&app.base, "/account", &renewed).await.0, 200);
    assert_eq!(page_status(&app.base, "/account", &first).await.0, 303);
    assert_eq!(
        page_status(&app.base, "/account", &second).await.0,
        303,
        "signed out elsewhere"
    );
    assert_eq!(app.sign_in_as(&sam, PASSWORD).await.status(), 401);
    assert_eq!(
        app.sign_in_as(&sam, "a new long password").await.status(),
        303
    );

    // An administrator's reset through the API.
    let id = user_id(&app, &sam).await;
    let (s, body) = put_password(&app, &id, "short").await;
    assert_eq!((s, body["code"].as_str()), (400, Some("weak_password")));
    let (s, body) = put_password(&app, "usr_nobody", "long enough password").await;
    assert_eq!((s, body["code"].as_str()), (404, Some("not_found")));
    let (s, _) = put_password(&app, &id, "reset by the admin").await;
    assert_eq!(s, 204);
    assert_eq!(page_status(&app.base, "/account", &renewed).await.0, 303);
    assert_eq!(
        app.sign_in_as(&sam, "reset by the admin").await.status(),
        303
    );
    let (_, audit) = app.get("/v1/audit?action=user.password").await;
    let text = audit.to_string();
    assert!(
        text.contains("user.password_changed") && text.contains("user.password_reset"),
        "{text}"
    );
    assert!(
        !text.contains("reset by the admin"),
        "passwords are never audited"
    );
    // Someone without manage_users cannot reset.
    let agent_key = crate::common::key(&app, KeyRole::Supervisor).await;
    let resp = app
        .client
        .put(app.url(&format!("/v1/users/{id}/password")))
        .bearer_auth(&agent_key)
        .json(&json!({"password": "long enough password"}))
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn the_users_page_lets_admins_disable_others_but_not_themselves() {
    let app = TestApp::spawn().await;
    let lee = app.account("lee.agent", KeyRole::Agent).await;
    let admin = app.admin_session().await;
    let (status, body) = page_status(&app.base, "/users", &admin).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("lee.agent") && body.contains("Disable"),
        "{body}"
    );
    let lee_cookie = cookie_of(&app.sign_in_as(&lee, PASSWORD).await);
    assert_eq!(page_status(&app.base, "/users", &lee_cookie).await.0, 403);

    let lee_id = user_id(&app, &lee).await;
    let admin_id = user_id(&app, &app.admin_login).await;
    let post = |path: String| {
        let (url, cookie) = (app.url(&path), admin.clone());
        async move {
            no_redirects()
                .post(url)
                .header("cookie", cookie)
                .send()
                .await
                .expect("post")
                .status()
                .as_u16()
        }
    };
    assert_eq!(post(format!("/users/{admin_id}/disable")).await, 409);
    assert_eq!(post("/users/usr_nobody/disable".to_owned()).await, 404);
    assert_eq!(post(format!("/users/{lee_id}/disable")).await, 303);
    assert_eq!(page_status(&app.base, "/account", &lee_cookie).await.0, 303);
    let (_, body) = page_status(&app.base, "/users", &admin).await;
    assert!(body.contains("Enable"), "{body}");
    assert_eq!(post(format!("/users/{lee_id}/enable")).await, 303);
    assert_eq!(app.sign_in_as(&lee, PASSWORD).await.status(), 303);
}
