//! The intent-model part of the store contract: agents' corrections (one per message, the
//! conversation's profile, isolation, gone with an erasure) and numbered model versions with
//! one active at a time (rollback to an earlier one or to the built-in default). Run by
//! [`crate::conformance::run_all`].

use chrono::Utc;
use rapport_core::{
    Actor, Author, ConversationChannel, CustomerRef, Direction, Identifier, IdentifierKind,
    MessageText, NewConversation, NewMessage, WorkspaceName,
};
use serde_json::json;

use crate::conformance::{default_ws, DynStore};
use crate::{CorrectionQuery, ErasureOptions, IntentCorrection, IntentModelDraft, StoreError};

fn entry(ws: &rapport_core::WorkspaceId, action: &str) -> rapport_core::AuditEntry {
    rapport_core::AuditEntry::new(
        Some(ws.clone()),
        Actor::User("usr_agent".into()),
        action,
        None,
        json!({}),
    )
}

fn correction(conv: &str, message: &str, to: Option<&str>) -> IntentCorrection {
    IntentCorrection {
        message_id: message.into(),
        conversation_id: conv.into(),
        // The store takes the conversation's profile.
        profile_id: rapport_core::ProfileId::from_trusted("prof_ignored".into()),
        text: "I want my money back for the double charge, [EMAIL]".into(),
        predicted: Some("billing_dispute".into()),
        confidence: 0.4321,
        model_version: 0,
        corrected: to.map(str::to_owned),
        corrected_by: "user:usr_agent".into(),
        corrected_at: Utc::now(),
    }
}

fn draft(by: &str, activate: bool) -> IntentModelDraft {
    IntentModelDraft {
        created_by: by.into(),
        summary: json!({"corrections": 3, "new_accuracy": 1.0}),
        model: vec![1, 2, 3, 0, 255],
        activate,
    }
}

pub async fn corrections_and_model_versions(store: DynStore) {
    let ws = default_ws(&store).await;
    let email = Identifier::new(IdentifierKind::Email, "fixme@example.com").expect("email");
    let conv = store
        .open_conversation(
            &ws,
            CustomerRef::Identifier(email),
            NewConversation {
                channel: ConversationChannel::Chat,
                subject: None,
                opened_at: Utc::now(),
            },
        )
        .await
        .expect("conversation");
    let mut ids = Vec::new();
    for text in ["I want my money back", "what is the weather on mars"] {
        let (m, _) = store
            .add_message(
                &ws,
                &conv.id,
                NewMessage {
                    direction: Direction::Inbound,
                    author: Author::Customer,
                    text: MessageText::parse(text).expect("text"),
                    sent_at: Utc::now(),
                    external_id: None,
                    analysis: None,
                },
            )
            .await
            .expect("message");
        ids.push(m.id.as_str().to_owned());
    }
    let cid = conv.id.as_str();

    // A correction is kept with the conversation's profile; correcting again replaces it.
    let first = store
        .save_intent_correction(
            &ws,
            correction(cid, &ids[0], Some("complaint")),
            vec![entry(&ws, "intent.corrected")],
        )
        .await
        .expect("correct");
    assert_eq!(first.profile_id, conv.profile_id);
    assert!((first.confidence - 0.4321).abs() < 1e-6);
    let again = store
        .save_intent_correction(
            &ws,
            correction(cid, &ids[0], Some("refund_request")),
            vec![],
        )
        .await
        .expect("correct again");
    store
        .save_intent_correction(&ws, correction(cid, &ids[1], None), vec![])
        .await
        .expect("out of scope");
    let all = store
        .intent_corrections(CorrectionQuery {
            workspace: ws.clone(),
            conversation: None,
            limit: 10,
        })
        .await
        .expect("list");
    assert_eq!(all.len(), 2, "one correction per message: {all:?}");
    let of_first = all.iter().find(|c| c.message_id == ids[0]).expect("first");
    assert_eq!(of_first, &again);
    assert_eq!(of_first.corrected.as_deref(), Some("refund_request"));
    assert_eq!(of_first.predicted.as_deref(), Some("billing_dispute"));
    let oos = all.iter().find(|c| c.message_id == ids[1]).expect("second");
    assert_eq!(oos.corrected, None);
    let audit = store
        .audit_records(crate::AuditQuery {
            workspace: Some(ws.clone()),
            action_prefix: Some("intent.".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("audit");
    assert_eq!(audit.len(), 1);

    // Unknown messages, and messages of another conversation, are not found.
    for (c, m) in [(cid, "msg_nope"), ("cnv_other", ids[0].as_str())] {
        let err = store
            .save_intent_correction(&ws, correction(c, m, None), vec![])
            .await
            .expect_err("unknown");
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }
    let other = store
        .create_workspace(&WorkspaceName::parse("intents-other").expect("name"))
        .await
        .expect("ws");
    let err = store
        .save_intent_correction(&other.id, correction(cid, &ids[0], None), vec![])
        .await
        .expect_err("another workspace's message");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let none = store
        .intent_corrections(CorrectionQuery {
            workspace: other.id.clone(),
            conversation: None,
            limit: 10,
        })
        .await
        .expect("list");
    assert!(none.is_empty());

    // Versions count up per workspace; one is active at a time; rollback works.
    let active = store.active_intent_model(&ws).await.expect("active");
    assert_eq!((active.version, active.activated_at), (0, None));
    let v1 = store
        .save_intent_model(
            &ws,
            draft("user:usr_admin", true),
            vec![entry(&ws, "intent.model_trained")],
        )
        .await
        .expect("v1");
    assert_eq!((v1.version, v1.active), (1, true));
    let v2 = store
        .save_intent_model(&ws, draft("system", false), vec![])
        .await
        .expect("v2");
    assert_eq!((v2.version, v2.active), (2, false));
    assert_eq!(store.active_intent_model(&ws).await.expect("a").version, 1);
    let listed = store.intent_models(&ws).await.expect("models");
    assert_eq!(
        listed
            .iter()
            .map(|m| (m.version, m.active))
            .collect::<Vec<_>>(),
        [(2, false), (1, true)]
    );
    assert_eq!(listed[1].summary["corrections"], 3);
    assert_eq!(listed[1].created_by, "user:usr_admin");
    assert_eq!(
        store.intent_model_bytes(&ws, 1).await.expect("bytes"),
        Some(vec![1, 2, 3, 0, 255])
    );
    assert_eq!(store.intent_model_bytes(&ws, 9).await.expect("none"), None);
    let now = store
        .activate_intent_model(
            &ws,
            2,
            "user:usr_admin",
            vec![entry(&ws, "intent.model_activated")],
        )
        .await
        .expect("activate");
    assert_eq!(now.version, 2);
    assert_eq!(now.activated_by.as_deref(), Some("user:usr_admin"));
    let back = store
        .activate_intent_model(&ws, 0, "user:usr_admin", vec![])
        .await
        .expect("back to the default");
    assert_eq!(back.version, 0);
    let err = store
        .activate_intent_model(&ws, 7, "user:usr_admin", vec![])
        .await
        .expect_err("unknown version");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    // Another workspace numbers its own versions and sees none of these.
    assert!(store.intent_models(&other.id).await.expect("m").is_empty());
    let o1 = store
        .save_intent_model(&other.id, draft("system", true), vec![])
        .await
        .expect("other v1");
    assert_eq!(o1.version, 1);
    assert_eq!(store.active_intent_model(&ws).await.expect("a").version, 0);

    // An erasure of the customer takes their corrections; models stay (no personal data).
    store
        .erase_profile(
            &ws,
            &conv.profile_id,
            ErasureOptions::default(),
            entry(&ws, "profile.erased"),
        )
        .await
        .expect("erase");
    let left = store
        .intent_corrections(CorrectionQuery {
            workspace: ws.clone(),
            conversation: Some(cid.to_owned()),
            limit: 10,
        })
        .await
        .expect("list");
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(store.intent_models(&ws).await.expect("m").len(), 2);
}
