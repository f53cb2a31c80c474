//! The next-best-action part of the store contract: offers with their contacts, outcome
//! counts, outcomes recorded once, isolation and erasure. Run by
//! [`crate::conformance::run_all`].

use chrono::{DateTime, Duration, Utc};
use rapport_core::{
    Actor, AuditEntry, DecisionRecord, DecisionStatus, Identifier, IdentifierKind, ProfileId,
    WorkspaceName,
};
use serde_json::json;

use crate::conformance::{default_ws, event, profile_of, DynStore};
use crate::{ErasureOptions, NbaContact, NbaOutcome, StoreError};

pub(crate) fn offer(id: &str, profile: &ProfileId, at: DateTime<Utc>) -> DecisionRecord {
    DecisionRecord {
        id: id.into(),
        profile_id: profile.clone(),
        kind: "nba.retention".into(),
        params: json!({"action_id": "fiber_discount", "channel": "email"}),
        status: DecisionStatus::Executed,
        explanation: "We suggested 20% off because you may be thinking of leaving.".into(),
        reasons: vec![],
        automated: true,
        requested_by: "key:key_test".into(),
        conversation_id: None,
        refusal: None,
        approval: None,
        created_at: at,
        updated_at: at,
        version: 0,
    }
}

pub(crate) fn contact(
    decision: &str,
    action: &str,
    channel: &str,
    at: DateTime<Utc>,
) -> NbaContact {
    NbaContact {
        decision_id: decision.into(),
        // The store takes the decision's (canonical) profile.
        profile_id: ProfileId::from_trusted("prof_ignored".into()),
        action_id: action.into(),
        channel: channel.into(),
        at,
        outcome: None,
        outcome_at: None,
    }
}

fn entry(ws: &rapport_core::WorkspaceId, action: &str, subject: &str) -> AuditEntry {
    AuditEntry::new(
        Some(ws.clone()),
        Actor::ApiKey("key_test".into()),
        action,
        Some(subject.to_owned()),
        json!({}),
    )
}

pub async fn offers_outcomes_and_counts(store: DynStore) {
    let ws = default_ws(&store).await;
    store
        .ingest(
            &ws,
            vec![event(
                json!({"type": "identify", "userId": "nba-1", "messageId": "nba-m1", "traits": {"plan": "fiber"}}),
            )],
        )
        .await
        .expect("ingest");
    let user = Identifier::new(IdentifierKind::UserId, "nba-1").expect("id");
    let p = store
        .profile_by_identifier(&ws, &user)
        .await
        .expect("read")
        .expect("profile")
        .id;
    let now = Utc::now();
    let saved = store
        .record_nba_offers(
            &ws,
            vec![
                offer("dec_nba_1", &p, now - Duration::days(10)),
                offer("dec_nba_2", &p, now - Duration::hours(1)),
            ],
            vec![
                contact(
                    "dec_nba_1",
                    "fiber_discount",
                    "email",
                    now - Duration::days(10),
                ),
                contact(
                    "dec_nba_2",
                    "speed_upgrade",
                    "web",
                    now - Duration::hours(1),
                ),
            ],
            vec![entry(&ws, "nba.offered", "dec_nba_1")],
        )
        .await
        .expect("offers");
    assert_eq!(saved.len(), 2);
    assert!(saved.iter().all(|d| d.version == 1));
    // The offer's audit entry is in the chain for a read that follows, whenever the backend
    // links it.
    let audited = store
        .audit_records(crate::AuditQuery {
            subject: Some("dec_nba_1".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("audit");
    let actions: Vec<&str> = audited.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["nba.offered"]);
    assert_eq!(audited[0].hash, audited[0].compute_hash());
    assert!(store
        .decision(&ws, "dec_nba_2")
        .await
        .expect("read")
        .is_some());

    let all = store
        .nba_contacts(&ws, &p, now - Duration::days(30))
        .await
        .expect("contacts");
    let ids: Vec<&str> = all.iter().map(|c| c.decision_id.as_str()).collect();
    assert_eq!(ids, ["dec_nba_2", "dec_nba_1"], "newest first");
    assert_eq!(all[0].profile_id, p);
    assert_eq!(
        all[1].at.timestamp_millis(),
        (now - Duration::days(10)).timestamp_millis()
    );
    let recent = store
        .nba_contacts(&ws, &p, now - Duration::days(7))
        .await
        .expect("contacts");
    assert_eq!(recent.len(), 1);

    // Everything a decision reads, at once: the same contacts, the profile's traits, its
    // events with their order amounts, newest first.
    store
        .ingest(
            &ws,
            vec![
                event(
                    json!({"type": "track", "userId": "nba-1", "messageId": "nba-o1",
                    "event": "Order Completed", "timestamp": "2026-01-02T00:00:00Z",
                    "properties": {"revenue": 42.5}}),
                ),
                event(
                    json!({"type": "track", "userId": "nba-1", "messageId": "nba-o2",
                    "event": "Order Completed", "timestamp": "2026-01-03T00:00:00Z",
                    "properties": {"revenue": "n/a", "total": 7}}),
                ),
            ],
        )
        .await
        .expect("ingest");
    let snap = store
        .nba_snapshot(&ws, &p, now - Duration::days(7), 3)
        .await
        .expect("snapshot")
        .expect("known profile");
    assert_eq!(snap.profile.id, p);
    assert_eq!(snap.profile.traits["plan"], "fiber");
    assert_eq!(snap.contacts, recent);
    // The identify event (sent without a timestamp, so now), then the two orders.
    let amounts: Vec<Option<f64>> = snap.activity.iter().map(|a| a.amount).collect();
    assert_eq!(
        amounts,
        [None, Some(7.0), Some(42.5)],
        "{:?}",
        snap.activity
    );
    assert_eq!(snap.activity[2].name.as_deref(), Some("Order Completed"));
    let fewer = store
        .nba_snapshot(&ws, &p, now - Duration::days(7), 1)
        .await
        .expect("snapshot")
        .expect("known profile");
    assert_eq!(fewer.activity.len(), 1, "at most the events asked for");
    assert!(snap.conversations.is_empty());
    assert_eq!((snap.last_sentiment, snap.churn_probability), (None, None));
    assert!(store
        .nba_snapshot(&ws, &ProfileId::from_trusted("prof_nobody".into()), now, 10)
        .await
        .expect("snapshot")
        .is_none());
    assert!(matches!(
        store
            .nba_contacts(&ws, &ProfileId::from_trusted("prof_nobody".into()), now)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.nba_counts(&ws).await.expect("counts").is_empty());

    // A contact must name one of the offers; nothing of a refused batch is kept.
    assert!(store
        .record_nba_offers(
            &ws,
            vec![offer("dec_nba_3", &p, now)],
            vec![contact("dec_nba_elsewhere", "x", "web", now)],
            vec![],
        )
        .await
        .is_err());
    assert!(store
        .decision(&ws, "dec_nba_3")
        .await
        .expect("read")
        .is_none());

    // Outcomes: counted once, on the action's counts, with the decision replaced.
    let outcome = |d: &DecisionRecord, o: &str, success: bool| {
        let mut d = d.clone();
        d.params["outcome"] = json!(o);
        NbaOutcome {
            expected_version: d.version,
            decision: d,
            outcome: o.into(),
            success,
            at: now,
        }
    };
    let (c, counts) = store
        .record_nba_outcome(
            &ws,
            outcome(&saved[0], "rejected", false),
            vec![entry(&ws, "nba.outcome", "dec_nba_1")],
        )
        .await
        .expect("outcome");
    assert_eq!(c.outcome.as_deref(), Some("rejected"));
    assert_eq!(c.action_id, "fiber_discount");
    assert_eq!((counts.successes, counts.failures), (0, 1));
    let stored = store
        .decision(&ws, "dec_nba_1")
        .await
        .expect("read")
        .expect("d");
    assert_eq!(stored.version, 2);
    assert_eq!(stored.params["outcome"], "rejected");
    assert!(matches!(
        store
            .record_nba_outcome(&ws, outcome(&stored, "accepted", true), vec![])
            .await,
        Err(StoreError::Conflict(_))
    ));
    let (_, counts) = store
        .record_nba_outcome(&ws, outcome(&saved[1], "converted", true), vec![])
        .await
        .expect("outcome");
    assert_eq!((counts.successes, counts.failures), (1, 0));
    let mut other = offer("dec_not_an_offer", &p, now);
    store
        .save_decision(&ws, other.clone(), None, vec![])
        .await
        .expect("plain decision");
    other.version = 1;
    assert!(matches!(
        store
            .record_nba_outcome(&ws, outcome(&other, "accepted", true), vec![])
            .await,
        Err(StoreError::NotFound(_))
    ));
    let counts = store.nba_counts(&ws).await.expect("counts");
    let pairs: Vec<(&str, i64, i64)> = counts
        .iter()
        .map(|c| (c.action_id.as_str(), c.successes, c.failures))
        .collect();
    assert_eq!(pairs, [("fiber_discount", 0, 1), ("speed_upgrade", 1, 0)]);
    let contacts = store
        .nba_contacts(&ws, &p, now - Duration::days(30))
        .await
        .expect("contacts");
    assert_eq!(contacts[1].outcome.as_deref(), Some("rejected"));
    assert!(contacts[1].outcome_at.is_some());

    // Another workspace sees none of it.
    let other_ws = store
        .create_workspace(&WorkspaceName::parse("nba-other").expect("name"))
        .await
        .expect("create")
        .id;
    assert!(store
        .nba_counts(&other_ws)
        .await
        .expect("counts")
        .is_empty());
    assert!(matches!(
        store
            .nba_contacts(&other_ws, &p, now - Duration::days(30))
            .await,
        Err(StoreError::NotFound(_))
    ));

    // Erasure takes the customer's offers; the counts (no personal data) stay.
    store
        .erase_profile(
            &ws,
            &p,
            ErasureOptions::default(),
            entry(&ws, "profile.erased", p.as_str()),
        )
        .await
        .expect("erase");
    assert!(matches!(
        store.nba_contacts(&ws, &p, now - Duration::days(30)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store
        .decision(&ws, "dec_nba_1")
        .await
        .expect("read")
        .is_none());
    assert_eq!(store.nba_counts(&ws).await.expect("counts").len(), 2);
}

/// Offers made to a visitor before they signed in follow them when their profile merges into
/// the customer's: the contact policy of the merged customer counts them, and their decisions
/// list under the survivor.
pub async fn offers_follow_a_merge(store: DynStore) {
    let ws = default_ws(&store).await;
    let ingest = |v: serde_json::Value| {
        let store = store.clone();
        let ws = ws.clone();
        async move { store.ingest(&ws, vec![event(v)]).await.expect("ingest") }
    };
    ingest(json!({"type": "identify", "userId": "nba-merge-1", "messageId": "nm-1"})).await;
    ingest(json!({"type": "page", "anonymousId": "nba-visitor-1", "messageId": "nm-2", "name": "Home"}))
        .await;
    let customer = profile_of(&store, &ws, IdentifierKind::UserId, "nba-merge-1").await;
    let visitor = profile_of(&store, &ws, IdentifierKind::AnonymousId, "nba-visitor-1").await;
    assert_ne!(customer, visitor);
    let now = Utc::now();
    store
        .record_nba_offers(
            &ws,
            vec![offer("dec_visitor_1", &visitor, now - Duration::hours(2))],
            vec![contact(
                "dec_visitor_1",
                "fiber_discount",
                "web",
                now - Duration::hours(2),
            )],
            vec![],
        )
        .await
        .expect("offer to the visitor");

    // The visitor signs in: one event names both, and the profiles merge.
    ingest(
        json!({"type": "identify", "userId": "nba-merge-1", "anonymousId": "nba-visitor-1",
        "messageId": "nm-3"}),
    )
    .await;
    let survivor = profile_of(&store, &ws, IdentifierKind::UserId, "nba-merge-1").await;
    assert_eq!(
        profile_of(&store, &ws, IdentifierKind::AnonymousId, "nba-visitor-1").await,
        survivor
    );
    let contacts = store
        .nba_contacts(&ws, &survivor, now - Duration::days(1))
        .await
        .expect("contacts");
    assert_eq!(
        contacts
            .iter()
            .map(|c| (c.decision_id.as_str(), c.profile_id.as_str()))
            .collect::<Vec<_>>(),
        [("dec_visitor_1", survivor.as_str())],
        "the visitor's offer counts for the merged customer"
    );
    let listed = store
        .decisions(crate::DecisionQuery {
            workspace: ws.clone(),
            profile: Some(survivor.clone()),
            status: None,
            limit: 10,
        })
        .await
        .expect("decisions");
    assert_eq!(
        listed.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["dec_visitor_1"],
        "the visitor's decision lists under the merged customer"
    );
    assert_eq!(
        listed[0].profile_id, survivor,
        "the decision itself names the merged customer, not the merged-away visitor"
    );
}
