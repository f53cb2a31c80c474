//! The trained-model and materialised-feature part of the store contract: versions numbered
//! per workspace and kind, one active at a time, activation audited once, feature rows that
//! never go back in time, the profiles an ingest touched, and erasure. Run by
//! [`crate::conformance::run_all`].

use chrono::{Duration, Utc};
use rapport_core::{Actor, AuditEntry, Identifier, IdentifierKind, ProfileId, WorkspaceName};
use serde_json::json;

use crate::conformance::{default_ws, event, DynStore};
use crate::{AuditQuery, ErasureOptions, ModelDraft, ProfileFeatures, StoreError};

fn draft(kind: &str, auc: f64, activate: bool) -> ModelDraft {
    ModelDraft {
        kind: kind.into(),
        created_by: "user:usr_1".into(),
        summary: json!({ "holdout_roc_auc": auc }),
        body: format!("{{\"model\": \"{kind}\", \"auc\": {auc}}}"),
        activate,
    }
}

fn entry(ws: &rapport_core::WorkspaceId, action: &str) -> AuditEntry {
    AuditEntry::new(
        Some(ws.clone()),
        Actor::ApiKey("key_test".into()),
        action,
        Some("churn".into()),
        json!({}),
    )
}

pub async fn model_versions_swap_and_features_follow(store: DynStore) {
    let ws = default_ws(&store).await;
    assert!(store
        .active_model(&ws, "churn")
        .await
        .expect("read")
        .is_none());
    assert_eq!(
        store
            .active_model_version(&ws, "churn")
            .await
            .expect("read"),
        None
    );

    let v1 = store
        .save_model_version(
            &ws,
            draft("churn", 0.8, true),
            vec![entry(&ws, "model.trained")],
        )
        .await
        .expect("save");
    assert_eq!((v1.version, v1.active), (1, true));
    assert_eq!(v1.summary["holdout_roc_auc"], 0.8);
    // A version not activated waits beside the active one.
    let v2 = store
        .save_model_version(&ws, draft("churn", 0.7, false), vec![])
        .await
        .expect("save");
    assert_eq!((v2.version, v2.active), (2, false));
    let (active, body) = store
        .active_model(&ws, "churn")
        .await
        .expect("read")
        .expect("active");
    assert_eq!(active.version, 1);
    assert!(body.contains("0.8"));
    // Kinds are numbered on their own.
    let other = store
        .save_model_version(&ws, draft("ltv", 0.5, true), vec![])
        .await
        .expect("save");
    assert_eq!(other.version, 1);

    let audit_query = AuditQuery {
        workspace: Some(ws.clone()),
        action_prefix: Some("model.".into()),
        limit: 100,
        ..AuditQuery::default()
    };
    let before = store
        .audit_records(audit_query.clone())
        .await
        .expect("audit")
        .len();
    assert_eq!(before, 1, "the first save's record");
    let now2 = store
        .activate_model_version(&ws, "churn", 2, vec![entry(&ws, "model.activated")])
        .await
        .expect("activate");
    assert!(now2.active);
    assert_eq!(
        store
            .active_model_version(&ws, "churn")
            .await
            .expect("read"),
        Some(2)
    );
    let all = store.model_versions(&ws, "churn").await.expect("list");
    assert_eq!(
        all.iter()
            .map(|v| (v.version, v.active))
            .collect::<Vec<_>>(),
        [(2, true), (1, false)],
        "newest first, one active"
    );
    // Activating the active one again changes nothing and records nothing.
    store
        .activate_model_version(&ws, "churn", 2, vec![entry(&ws, "model.activated")])
        .await
        .expect("again");
    let after = store.audit_records(audit_query).await.expect("audit").len();
    assert_eq!(after, before + 1);
    assert!(matches!(
        store.activate_model_version(&ws, "churn", 9, vec![]).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.active_model_version(&ws, "ltv").await.expect("read"),
        Some(1)
    );

    // Other workspaces see none of it.
    let other_ws = store
        .create_workspace(&WorkspaceName::parse("models-other").expect("name"))
        .await
        .expect("workspace")
        .id;
    assert!(store
        .model_versions(&other_ws, "churn")
        .await
        .expect("list")
        .is_empty());

    // Ingest says which profiles its events landed on, each once.
    let summary = store
        .ingest(
            &ws,
            vec![
                event(json!({"type": "identify", "userId": "feat-1", "messageId": "feat-m1", "traits": {"plan": "fiber"}})),
                event(json!({"type": "track", "userId": "feat-1", "event": "Order Completed", "messageId": "feat-m2"})),
                event(json!({"type": "track", "userId": "feat-2", "event": "Order Completed", "messageId": "feat-m3"})),
            ],
        )
        .await
        .expect("ingest");
    assert_eq!(summary.touched.len(), 2, "{:?}", summary.touched);
    let again = store
        .ingest(
            &ws,
            vec![event(
                json!({"type": "track", "userId": "feat-1", "event": "x", "messageId": "feat-m2"}),
            )],
        )
        .await
        .expect("ingest");
    assert!(again.touched.is_empty(), "a duplicate touches nothing");

    let p = store
        .profile_by_identifier(
            &ws,
            &Identifier::new(IdentifierKind::UserId, "feat-1").expect("id"),
        )
        .await
        .expect("read")
        .expect("profile")
        .id;
    assert!(summary.touched.contains(&p));
    let now = Utc::now();
    let row = |at, churn: f64| ProfileFeatures {
        profile_id: p.clone(),
        computed_at: at,
        features: json!({"orders_30d": 1, "last_nps": null})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        scores: json!({"churn": {"probability": churn, "version": 2}})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    };
    store
        .save_profile_features(&ws, vec![row(now, 0.4)])
        .await
        .expect("save");
    // An older computation never replaces a newer one.
    store
        .save_profile_features(&ws, vec![row(now - Duration::minutes(5), 0.9)])
        .await
        .expect("save");
    let got = store
        .profile_features(&ws, &p)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(got.scores["churn"]["probability"], 0.4);
    assert_eq!(got.features["orders_30d"], 1);
    assert!(got.features["last_nps"].is_null());
    assert_eq!(got.computed_at.timestamp_millis(), now.timestamp_millis());
    store
        .save_profile_features(&ws, vec![row(now + Duration::seconds(1), 0.6)])
        .await
        .expect("save");
    let got = store
        .profile_features(&ws, &p)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(got.scores["churn"]["probability"], 0.6);
    assert!(store
        .profile_features(&other_ws, &p)
        .await
        .expect("read")
        .is_none());
    assert!(store
        .profile_features(&ws, &ProfileId::from_trusted("prof_nobody".into()))
        .await
        .expect("read")
        .is_none());

    // Erasing the customer erases their features.
    store
        .erase_profile(
            &ws,
            &p,
            ErasureOptions::default(),
            entry(&ws, "profile.erased"),
        )
        .await
        .expect("erase");
    assert!(store
        .profile_features(&ws, &p)
        .await
        .expect("read")
        .is_none());
}
