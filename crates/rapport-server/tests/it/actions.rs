//! Human oversight over HTTP: actions asked for through `/v1/actions` become decisions with a
//! plain-language explanation; the consent gate refuses what the customer did not allow; the
//! oversight policy holds high-stakes actions in the approval queue until enough approvers say
//! yes; automated messages carry the AI disclosure and stop when the customer asks for a
//! person. Every step is in the audit trail.

use rapport_core::KeyRole;
use rapport_govern::policy::Policy;
use serde_json::{json, Value};

use crate::common::{call, key, TestApp};

async fn customer(app: &TestApp, user: &str, traits: Value) -> String {
    let (status, body) = app
        .send("/v1/identify", &json!({"userId": user, "traits": traits}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, p) = app.get(&format!("/v1/profiles?user_id={user}")).await;
    p["id"].as_str().expect("profile id").to_owned()
}

fn with_example_policy() -> rapport_server::engine::EngineOptions {
    rapport_server::engine::EngineOptions {
        policy: Policy::example(),
        ..Default::default()
    }
}

fn audit_actions(audit: &Value) -> Vec<String> {
    audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn high_stakes_actions_wait_for_their_approvers() {
    let app = TestApp::spawn_with(with_example_policy()).await;
    let agent = key(&app, KeyRole::Agent).await;
    let boss = key(&app, KeyRole::Supervisor).await;
    let boss2 = key(&app, KeyRole::Supervisor).await;
    let analyst = key(&app, KeyRole::Analyst).await;
    let id = customer(
        &app,
        "ovs-1",
        json!({"email": "ovs1@example.com", "plan": "pro"}),
    )
    .await;
    use reqwest::Method as M;

    // A small refund goes straight through, explained in one sentence.
    let small = json!({"profile_id": id, "kind": "refund", "params": {"amount": 40, "currency": "EUR"},
                       "reasons": [{"code": "damaged", "text": "your parcel arrived damaged"}]});
    let (s, d) = call(&app, M::POST, "/v1/actions", &agent, Some(small)).await;
    assert_eq!(s, 201, "{d}");
    assert_eq!(d["status"], "executed");
    assert_eq!(
        d["explanation"],
        "You were refunded 40 EUR because your parcel arrived damaged."
    );

    // A large one waits for a supervisor.
    let large = json!({"profile_id": id, "kind": "refund", "params": {"amount": 250, "currency": "EUR"},
                       "reasons": [{"code": "outage", "text": "our service was down for 3 days"}]});
    let (s, held) = call(&app, M::POST, "/v1/actions", &agent, Some(large)).await;
    assert_eq!(s, 202, "{held}");
    assert_eq!(held["status"], "pending_approval");
    assert_eq!(
        held["approval"]["rules"],
        json!(["refund_or_credit_over_100"])
    );
    assert_eq!(held["approval"]["approvers_needed"], 1);
    let held_id = held["id"].as_str().unwrap().to_owned();
    let (_, queue) = call(
        &app,
        M::GET,
        "/v1/decisions?status=pending_approval",
        &agent,
        None,
    )
    .await;
    assert_eq!(queue["decisions"][0]["id"], held_id.as_str());

    // Neither the agent nor an analyst may approve; the refusals are audited.
    for k in [&agent, &analyst] {
        let (s, body) = call(
            &app,
            M::POST,
            &format!("/v1/approvals/{held_id}/approve"),
            k,
            None,
        )
        .await;
        assert_eq!(s, 403, "{body}");
        assert_eq!(body["code"], "forbidden");
    }
    let (_, still) = call(
        &app,
        M::GET,
        &format!("/v1/decisions/{held_id}"),
        &agent,
        None,
    )
    .await;
    assert_eq!(
        still["status"], "pending_approval",
        "a refused approver changes nothing"
    );

    let (s, done) = call(
        &app,
        M::POST,
        &format!("/v1/approvals/{held_id}/approve"),
        &boss,
        Some(json!({"note": "outage credit approved"})),
    )
    .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["status"], "executed");
    assert_eq!(
        done["approval"]["steps"][0]["note"],
        "outage credit approved"
    );
    let (s, again) = call(
        &app,
        M::POST,
        &format!("/v1/approvals/{held_id}/approve"),
        &boss2,
        None,
    )
    .await;
    assert_eq!((s, again["code"].as_str()), (409, Some("not_pending")));

    // Closing an account needs two different approvers.
    let close = json!({"profile_id": id, "kind": "account.close", "automated": false,
                       "reasons": [{"code": "asked", "text": "you asked us to close your account"}]});
    let (s, c) = call(&app, M::POST, "/v1/actions", &agent, Some(close)).await;
    assert_eq!(
        (s, c["approval"]["approvers_needed"].as_i64()),
        (202, Some(2)),
        "{c}"
    );
    let cid = c["id"].as_str().unwrap().to_owned();
    let approve = format!("/v1/approvals/{cid}/approve");
    let (s, one) = call(&app, M::POST, &approve, &boss, None).await;
    assert_eq!(
        (s, one["status"].as_str()),
        (200, Some("pending_approval")),
        "{one}"
    );
    let (s, twice) = call(&app, M::POST, &approve, &boss, None).await;
    assert_eq!((s, twice["code"].as_str()), (409, Some("already_answered")));
    let (s, two) = call(&app, M::POST, &approve, &boss2, None).await;
    assert_eq!(
        (s, two["status"].as_str()),
        (200, Some("executed")),
        "{two}"
    );

    // Whoever asked may not approve their own request.
    let credit = json!({"profile_id": id, "kind": "credit", "params": {"amount": 500},
                        "reasons": [{"code": "goodwill", "text": "you have been with us for 9 years"}]});
    let (_, own) = call(&app, M::POST, "/v1/actions", &boss, Some(credit)).await;
    let own_id = own["id"].as_str().unwrap();
    let (s, body) = call(
        &app,
        M::POST,
        &format!("/v1/approvals/{own_id}/approve"),
        &boss,
        None,
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (403, Some("own_request")),
        "{body}"
    );
    let (s, rejected) = call(
        &app,
        M::POST,
        &format!("/v1/approvals/{own_id}/reject"),
        &boss2,
        Some(json!({"note": "too generous"})),
    )
    .await;
    assert_eq!((s, rejected["status"].as_str()), (200, Some("rejected")));

    // An offer needs the customer's consent before anything else.
    let offer = json!({"profile_id": id, "kind": "offer.retention", "params": {"percent": 25, "channel": "email"},
                       "reasons": [{"code": "renewal", "text": "your contract renews in 14 days"},
                                   {"code": "contacts", "text": "you contacted support 3 times this month"}]});
    let (s, refused) = call(&app, M::POST, "/v1/actions", &agent, Some(offer.clone())).await;
    assert_eq!(
        (s, refused["status"].as_str()),
        (200, Some("refused")),
        "{refused}"
    );
    assert!(refused["refusal"]
        .as_str()
        .unwrap()
        .contains("personalization"));
    let (s, _) = call(
        &app,
        M::PUT,
        &format!("/v1/profiles/{id}/consents"),
        &agent,
        Some(
            json!({"consents": [{"purpose": "personalization", "state": "granted"},
                                 {"purpose": "marketing_email", "state": "granted"}]}),
        ),
    )
    .await;
    assert_eq!(s, 200);
    let (s, offered) = call(&app, M::POST, "/v1/actions", &agent, Some(offer)).await;
    assert_eq!(
        (s, offered["status"].as_str()),
        (202, Some("pending_approval")),
        "a 25% discount is over the limit: {offered}"
    );
    assert_eq!(
        offered["explanation"],
        "You were offered 25% off because your contract renews in 14 days and you contacted support 3 times this month."
    );

    // The customer's decisions, newest first, each explained.
    let (_, mine) = call(
        &app,
        M::GET,
        &format!("/v1/profiles/{id}/decisions"),
        &analyst,
        None,
    )
    .await;
    let statuses: Vec<&str> = mine["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "pending_approval",
            "refused",
            "rejected",
            "executed",
            "executed",
            "executed"
        ]
    );

    // Every step is audited, without personal data.
    let (_, audit) = app.get("/v1/audit?limit=200").await;
    let actions = audit_actions(&audit);
    for expected in [
        "decision.executed",
        "decision.held",
        "approval.approved",
        "approval.rejected",
        "decision.refused",
        "action.refused",
        "access.refused",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} in {actions:?}"
        );
    }
    let text = audit.to_string();
    assert!(
        !text.contains("ovs1@example.com") && !text.contains("damaged"),
        "no personal data in the audit"
    );

    // The export carries the decisions; erasure removes them.
    let (_, export) = app.get(&format!("/v1/profiles/{id}/export")).await;
    assert_eq!(export["decisions"].as_array().unwrap().len(), 6);
    let admin = app.admin_key.clone();
    let (s, _) = call(&app, M::DELETE, &format!("/v1/profiles/{id}"), &admin, None).await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &app,
        M::GET,
        &format!("/v1/decisions/{held_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 404, "decisions go with the customer");
}

#[tokio::test]
async fn vulnerable_customers_and_bad_requests() {
    let app = TestApp::spawn_with(with_example_policy()).await;
    let agent = key(&app, KeyRole::Agent).await;
    use reqwest::Method as M;
    let id = customer(
        &app,
        "ovs-2",
        json!({"email": "ovs2@example.com", "vulnerable": true}),
    )
    .await;
    let (s, c) = app
        .send(
            "/v1/conversations",
            &json!({"userId": "ovs-2", "channel": "chat"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let conv = c["id"].as_str().unwrap();
    let msg = json!({"profile_id": id, "kind": "message.service", "conversation_id": conv,
                     "params": {"text": "Your replacement ships today."},
                     "reasons": [{"code": "order", "text": "you asked where your order is"}]});
    let (s, d) = call(&app, M::POST, "/v1/actions", &agent, Some(msg)).await;
    assert_eq!(
        (s, d["approval"]["rules"].clone()),
        (202, json!(["vulnerable_customer"])),
        "{d}"
    );

    for (body, code) in [
        (
            json!({"profile_id": id, "kind": "teleport", "reasons": [{"code": "a", "text": "b"}]}),
            "unknown_action",
        ),
        (
            json!({"profile_id": id, "kind": "refund", "params": {"amount": 5}, "reasons": []}),
            "reason_required",
        ),
        (
            json!({"profile_id": id, "kind": "refund", "params": {"amount": -5}, "reasons": [{"code": "a", "text": "b"}]}),
            "invalid_params",
        ),
        (
            json!({"profile_id": id, "kind": "offer.discount", "params": {"percent": 120}, "reasons": [{"code": "a", "text": "b"}]}),
            "invalid_params",
        ),
        (
            json!({"profile_id": id, "kind": "message.service", "params": {"text": "hi"}, "reasons": [{"code": "a", "text": "b"}]}),
            "invalid_params",
        ),
        (
            json!({"profile_id": id, "kind": "refund", "reasons": [{"code": "a", "text": "b"}], "surprise": 1}),
            "invalid_field",
        ),
    ] {
        let (s, e) = call(&app, M::POST, "/v1/actions", &agent, Some(body)).await;
        assert_eq!((s, e["code"].as_str()), (400, Some(code)), "{e}");
    }
    let (s, e) = call(&app, M::POST, "/v1/actions", &agent,
        Some(json!({"profile_id": "prof_nobody", "kind": "refund", "params": {"amount": 1}, "reasons": [{"code": "a", "text": "b"}]}))).await;
    assert_eq!((s, e["code"].as_str()), (404, Some("not_found")));
    let (s, e) = call(
        &app,
        M::POST,
        "/v1/approvals/dec_nothing/approve",
        &app.admin_key.clone(),
        None,
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (404, Some("not_found")));
    let (s, e) = call(&app, M::GET, "/v1/decisions?status=maybe", &agent, None).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("invalid_query")));
}

#[tokio::test]
async fn expired_approvals_cannot_be_given() {
    let app = TestApp::spawn_with(with_example_policy()).await;
    let boss = key(&app, KeyRole::Supervisor).await;
    let id = customer(&app, "ovs-3", json!({"email": "ovs3@example.com"})).await;
    // A held decision whose window closed a minute ago, as the store would hold it after the
    // deadline passed with nobody answering.
    let ws = crate::common::default_workspace(&app.store).await;
    let now = chrono::Utc::now();
    let record = rapport_core::DecisionRecord {
        id: "dec_expired_test".into(),
        profile_id: rapport_core::ProfileId::parse(&id).unwrap(),
        kind: "credit".into(),
        params: json!({"amount": 900}),
        status: rapport_core::DecisionStatus::PendingApproval,
        explanation: "Your account was credited 900 because of a test.".into(),
        reasons: vec![],
        automated: true,
        requested_by: "system".into(),
        conversation_id: None,
        refusal: None,
        approval: Some(rapport_core::ApprovalDemand {
            rules: vec!["refund_or_credit_over_100".into()],
            approvers_needed: 1,
            expires_at: now - chrono::Duration::minutes(1),
            steps: vec![],
        }),
        created_at: now - chrono::Duration::hours(49),
        updated_at: now - chrono::Duration::hours(49),
        version: 0,
    };
    use rapport_store::Store;
    app.store
        .save_decision(&ws, record, None, vec![])
        .await
        .expect("saved");
    let (s, e) = call(
        &app,
        reqwest::Method::POST,
        "/v1/approvals/dec_expired_test/approve",
        &boss,
        None,
    )
    .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (409, Some("approval_expired")),
        "{e}"
    );
    let (_, d) = app.get("/v1/decisions/dec_expired_test").await;
    assert_eq!(d["status"], "expired", "never executed without an approver");
    let (_, audit) = app.get("/v1/audit?action=decision.expired").await;
    assert_eq!(audit["records"][0]["subject"], "dec_expired_test");
}

#[tokio::test]
async fn automated_messages_disclose_and_stop_when_a_person_is_asked_for() {
    let app = TestApp::spawn().await;
    let agent = key(&app, KeyRole::Agent).await;
    let id = customer(&app, "ovs-4", json!({"email": "ovs4@example.com"})).await;
    let (_, c) = app
        .send(
            "/v1/conversations",
            &json!({"userId": "ovs-4", "channel": "chat"}),
        )
        .await;
    let conv = c["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/conversations/{conv}/messages");

    let (s, bot) = app
        .send(
            &path,
            &json!({"direction": "outbound", "author": "bot", "text": "Hi! How can I help?"}),
        )
        .await;
    assert_eq!(s, 201, "{bot}");
    assert_eq!(bot["automated"], true);
    let text = bot["text"].as_str().unwrap();
    assert!(
        text.starts_with("Hi! How can I help?")
            && text.ends_with(rapport_server::engine::DEFAULT_AI_DISCLOSURE),
        "{text}"
    );

    let (s, _) = app.send(&path, &json!({"direction": "inbound", "author": "customer", "text": "This bot is useless, let me talk to a real person."})).await;
    assert_eq!(s, 201);
    let (_, open) = app.get("/v1/handoffs").await;
    assert_eq!(open["handoffs"][0]["profile_id"], id.as_str());
    assert_eq!(open["handoffs"][0]["source"], "message");

    let (s, e) = app
        .send(
            &path,
            &json!({"direction": "outbound", "author": "bot", "text": "I can help with that!"}),
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (409, Some("automation_paused")),
        "{e}"
    );
    let act = json!({"profile_id": id, "kind": "message.service", "conversation_id": conv,
                     "params": {"text": "Here is a link to our FAQ."},
                     "reasons": [{"code": "faq", "text": "you asked a common question"}]});
    let (s, d) = call(
        &app,
        reqwest::Method::POST,
        "/v1/actions",
        &agent,
        Some(act.clone()),
    )
    .await;
    assert_eq!((s, d["status"].as_str()), (200, Some("refused")), "{d}");
    assert!(d["refusal"].as_str().unwrap().contains("person"));
    let (s, human) = app.send(&path, &json!({"direction": "outbound", "author": "agent", "text": "Hi, I'm Sam and I'll take it from here."})).await;
    assert_eq!((s, human["automated"].as_bool()), (201, Some(false)));

    let (s, r) = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/profiles/{id}/handoff/resolve"),
        &agent,
        None,
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert!(r["resolved_at"].is_string());
    let (s, d) = call(
        &app,
        reqwest::Method::POST,
        "/v1/actions",
        &agent,
        Some(act),
    )
    .await;
    assert_eq!((s, d["status"].as_str()), (201, Some("executed")), "{d}");
    let (_, detail) = app.get(&format!("/v1/conversations/{conv}")).await;
    let last = detail["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["automated"], true);
    assert!(last["text"]
        .as_str()
        .unwrap()
        .contains("automated assistant"));
    let (_, audit) = app.get(&format!("/v1/audit?subject={id}")).await;
    let actions = audit_actions(&audit);
    assert!(
        actions.contains(&"handoff.requested".to_owned())
            && actions.contains(&"handoff.resolved".to_owned()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_policy_file_with_errors_leaves_the_old_policy_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, rapport_govern::policy::EXAMPLE).unwrap();
    let app = TestApp::spawn_with(rapport_server::engine::EngineOptions {
        policy: Policy::example(),
        policy_file: Some(file.clone()),
        ..Default::default()
    })
    .await;
    let admin = app.admin_key.clone();
    let supervisor = key(&app, KeyRole::Supervisor).await;
    use reqwest::Method as M;
    let (_, before) = call(&app, M::GET, "/v1/policy", &admin, None).await;
    assert_eq!(before["rules"].as_array().unwrap().len(), 4);

    std::fs::write(&file, "[[rule]]\nname = \"x\"\nactions = [\"refund\"]\nwhen = \"amount >\"\n\n[[rule]]\nname = \"y\"\nactions = [\"credit\"]\napprovers = 7\n").unwrap();
    let (s, e) = call(&app, M::POST, "/v1/policy/reload", &admin, None).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (400, Some("invalid_policy")),
        "{e}"
    );
    let lines: Vec<i64> = e["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["index"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [4, 9], "{e}");
    let (_, after) = call(&app, M::GET, "/v1/policy", &admin, None).await;
    assert_eq!(after, before, "the old policy stays in force");

    let (s, e) = call(&app, M::POST, "/v1/policy/reload", &supervisor, None).await;
    assert_eq!(s, 403, "only admins reload the policy: {e}");

    std::fs::write(
        &file,
        "[[rule]]\nname = \"all_refunds\"\nactions = [\"refund\"]\n",
    )
    .unwrap();
    let (s, now) = call(&app, M::POST, "/v1/policy/reload", &admin, None).await;
    assert_eq!(s, 200, "{now}");
    assert_eq!(now["rules"][0]["name"], "all_refunds");
    let (_, audit) = app.get("/v1/audit?action=policy.").await;
    let actions = audit_actions(&audit);
    assert!(
        actions.contains(&"policy.reload_failed".to_owned())
            && actions.contains(&"policy.reloaded".to_owned()),
        "{actions:?}"
    );
}
