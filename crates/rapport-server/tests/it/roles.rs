//! Every role against every kind of endpoint: allowed where its permissions say, refused with
//! 403 `forbidden` (and an audit record) everywhere else.

use rapport_core::KeyRole;
use serde_json::json;

use crate::common::TestApp;

#[tokio::test]
async fn each_role_is_refused_where_it_must_be() {
    let app = TestApp::spawn().await;
    let ws = crate::common::default_workspace(&app.store).await;
    let mut keys = Vec::new();
    for role in KeyRole::ALL {
        let (key, _) = rapport_server::auth::create_key(app.store.as_ref(), &ws, role)
            .await
            .expect("key");
        keys.push((role, key));
    }
    app.send(
        "/v1/identify",
        &json!({"userId": "roles-1", "traits": {"email": "roles1@example.com"}}),
    )
    .await;
    let (_, p) = app.get("/v1/profiles?user_id=roles-1").await;
    let id = p["id"].as_str().unwrap().to_owned();

    // (method, path, body, roles allowed)
    use KeyRole::*;
    let cases: Vec<(
        reqwest::Method,
        String,
        Option<serde_json::Value>,
        Vec<KeyRole>,
    )> = vec![
        (
            reqwest::Method::POST,
            "/v1/track".into(),
            Some(json!({"userId": "roles-1", "event": "Viewed"})),
            vec![Write, Agent, Supervisor, Admin],
        ),
        (
            reqwest::Method::GET,
            format!("/v1/profiles/{id}"),
            None,
            vec![Agent, Analyst, Supervisor, Admin],
        ),
        (
            reqwest::Method::GET,
            "/v1/stats".into(),
            None,
            vec![Agent, Analyst, Supervisor, Admin],
        ),
        (
            reqwest::Method::GET,
            "/v1/dead-letters".into(),
            None,
            vec![Supervisor, Admin],
        ),
        (
            reqwest::Method::PUT,
            format!("/v1/profiles/{id}/consents"),
            Some(json!({"consents": [{"purpose": "analytics", "state": "granted"}]})),
            vec![Agent, Supervisor, Admin],
        ),
        (
            reqwest::Method::POST,
            format!("/v1/profiles/{id}/why-link"),
            None,
            vec![Agent, Supervisor, Admin],
        ),
        (
            reqwest::Method::GET,
            format!("/v1/profiles/{id}/export"),
            None,
            vec![Supervisor, Admin],
        ),
        (
            reqwest::Method::GET,
            "/v1/audit".into(),
            None,
            vec![Analyst, Supervisor, Admin],
        ),
        (reqwest::Method::GET, "/v1/users".into(), None, vec![Admin]),
    ];
    for (method, path, body, allowed) in &cases {
        for (role, key) in &keys {
            let mut req = app
                .client
                .request(method.clone(), app.url(path))
                .bearer_auth(key);
            if let Some(b) = body {
                req = req.json(b);
            }
            let (status, resp) = crate::common::status_json(req.send().await.unwrap()).await;
            if allowed.contains(role) {
                assert!(
                    status < 300,
                    "{} may {method} {path}: got {status} {resp}",
                    role.as_str()
                );
            } else {
                assert_eq!(
                    status,
                    403,
                    "{} must not {method} {path}: {resp}",
                    role.as_str()
                );
                assert_eq!(resp["code"], "forbidden");
            }
        }
    }
    // Erasure last: only an admin may, and the others' attempts are on record.
    for (role, key) in &keys {
        let (status, _) = crate::common::status_json(
            app.client
                .delete(app.url(&format!("/v1/profiles/{id}")))
                .bearer_auth(key)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            status == 200,
            *role == Admin,
            "{} erasing: {status}",
            role.as_str()
        );
    }
    let (_, refused) = app.get("/v1/audit?action=access.refused&limit=1000").await;
    let refusals = refused["records"].as_array().unwrap();
    let expected: usize = cases
        .iter()
        .map(|(_, _, _, allowed)| KeyRole::ALL.len() - allowed.len())
        .sum::<usize>()
        + (KeyRole::ALL.len() - 1);
    assert_eq!(refusals.len(), expected, "every refusal is audited");
    assert!(refusals.iter().any(
        |r| r["details"]["permission"] == "erase_data" && r["details"]["role"] == "supervisor"
    ));
}

/// People sign in with the roles keys have, and the dashboard refuses them the same way.
#[tokio::test]
async fn people_have_the_permissions_of_their_role_in_the_dashboard() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (login, role, audit_allowed) in [
        ("ann.agent", KeyRole::Agent, false),
        ("al.analyst", KeyRole::Analyst, true),
        ("sue.supervisor", KeyRole::Supervisor, true),
    ] {
        app.account(login, role).await;
        let resp = app.sign_in_as(login, crate::common::PASSWORD).await;
        assert_eq!(resp.status(), 303, "{login} signs in");
        let cookie = resp.headers()["set-cookie"]
            .to_str()
            .expect("cookie")
            .split(';')
            .next()
            .expect("pair")
            .to_owned();
        let audit = client
            .get(app.url("/audit"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("get");
        assert_eq!(
            audit.status() == 200,
            audit_allowed,
            "{login} on /audit: {}",
            audit.status()
        );
        if !audit_allowed {
            assert_eq!(audit.status(), 403);
        }
    }
    // The refusal names the person's account, not a key.
    let (_, refused) = app.get("/v1/audit?action=access.refused").await;
    let r = &refused["records"][0];
    assert!(
        r["actor"].as_str().unwrap_or("").starts_with("user:"),
        "{r}"
    );
    assert_eq!(r["details"]["role"], "agent");
}
