//! The dashboard over plain HTTP: sign-in, cookies, pages.

use serde_json::json;

use crate::common::TestApp;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn sign_in(app: &TestApp, key: &str) -> reqwest::Response {
    no_redirects()
        .post(app.url("/login"))
        .form(&[("key", key)])
        .send()
        .await
        .expect("login")
}

#[tokio::test]
async fn pages_need_a_session_and_sessions_need_an_admin_key() {
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
    assert_eq!(sign_in(&app, &app.write_key).await.status(), 403);
    assert_eq!(sign_in(&app, "rk_wrong").await.status(), 401);
    let resp = sign_in(&app, &app.admin_key).await;
    assert_eq!(resp.status(), 303);
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
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
    let resp = sign_in(&app, &app.admin_key).await;
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
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
        convo.contains("&lt;b&gt;again&lt;/b&gt;"),
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
