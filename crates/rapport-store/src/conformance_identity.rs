//! The identity graph's part of the store contract: live stitching under the identity stage's
//! guards, refused merges in the merge log and audit trail, unmerge, and concurrent writers.
//!
//! The guards come from the caller (this crate does not depend on the identity stage): a
//! backend's integration test builds them from [`POLICY_TOML`] with the real
//! `rapport_identity::IdentityGuards` and passes them to [`run_all`].

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use chrono::{Duration, Utc};
use rapport_core::stitch::StitchPolicy;
use rapport_core::{
    Actor, AuditEntry, Event, Identifier, IdentifierKind, Profile, ProfileId, WorkspaceId,
};
use serde_json::{json, Value};

use crate::conformance::{event, DynStore};
use crate::{AuditQuery, StoreError, UnmergeRequest};

/// The guards the checks expect: the identity stage's defaults (blocked placeholder values
/// such as `null` and `test@example.com`; priority user id, email, phone, anonymous id,
/// external) with these changes.
pub const POLICY_TOML: &str = r#"
trusted_sources = ["analytics-node"]
[limits]
user_id = { max = 1 }
email = { max = 2 }
external = { max = 1 }
"#;

/// Runs every check, each on a fresh store from `make` with `policy` set where it needs one.
pub async fn run_all<F, Fut>(make: F, policy: Arc<dyn StitchPolicy>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynStore>,
{
    guards_apply_in_live_stitching(make().await, policy.clone()).await;
    the_theft_guard_needs_an_authenticated_event(make().await, policy.clone()).await;
    unmerge_restores_both_sides(make().await, None).await;
    unmerge_restores_both_sides(make().await, Some(policy.clone())).await;
    unmerge_returns_consents_decisions_and_contacts(make().await).await;
    concurrent_writers_never_share_an_identifier(make().await, policy.clone()).await;
    crate::conformance_dedupe::run_all(&make, policy).await;
}

use crate::conformance::default_ws as ws;

fn id(kind: IdentifierKind, v: &str) -> Identifier {
    Identifier::new(kind, v).expect("identifier")
}

async fn by(store: &DynStore, ws: &WorkspaceId, i: &Identifier) -> Option<Profile> {
    store.profile_by_identifier(ws, i).await.expect("read")
}

async fn apply(store: &DynStore, ws: &WorkspaceId, events: Vec<Event>) {
    store.ingest(ws, events).await.expect("ingest");
}

async fn audit(store: &DynStore, action: &str) -> Vec<rapport_core::AuditRecord> {
    store
        .audit_records(AuditQuery {
            action_prefix: Some(action.into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("audit")
}

pub async fn guards_apply_in_live_stitching(store: DynStore, policy: Arc<dyn StitchPolicy>) {
    store.set_stitch_policy(Some(policy));
    let ws = ws(&store).await;

    // A placeholder user id links nobody: two visitors sending `"null"` stay apart, and the
    // value is flagged on each, not attached.
    apply(
        &store,
        &ws,
        vec![
            event(json!({"type": "identify", "userId": "null", "anonymousId": "nv-1"})),
            event(json!({"type": "identify", "userId": "null", "anonymousId": "nv-2"})),
        ],
    )
    .await;
    let a = by(&store, &ws, &id(IdentifierKind::AnonymousId, "nv-1"))
        .await
        .expect("profile");
    let b = by(&store, &ws, &id(IdentifierKind::AnonymousId, "nv-2"))
        .await
        .expect("profile");
    assert_ne!(a.id, b.id, "a blocked value merged two visitors");
    assert!(by(&store, &ws, &id(IdentifierKind::UserId, "null"))
        .await
        .is_none());
    assert!(
        a.data_quality
            .iter()
            .any(|q| q.field == "identifier.user_id" && q.code == "blocked_identifier"),
        "{:?}",
        a.data_quality
    );
    assert_eq!(a.event_count, 1, "the event is kept even so");

    // Per-kind limit: the third email is refused and flagged, the first two kept.
    let mut events = Vec::new();
    for (n, e) in ["e1@lim.io", "e2@lim.io", "e3@lim.io"].iter().enumerate() {
        events.push(event(json!({"type": "identify", "userId": "lim",
            "traits": {"email": e}, "timestamp": format!("2026-01-0{}T10:00:00Z", n + 1)})));
    }
    apply(&store, &ws, events).await;
    let p = by(&store, &ws, &id(IdentifierKind::UserId, "lim"))
        .await
        .expect("profile");
    let emails = p
        .identities
        .iter()
        .filter(|i| i.kind() == IdentifierKind::Email)
        .count();
    assert_eq!(emails, 2, "{:?}", p.identities);
    assert!(by(&store, &ws, &id(IdentifierKind::Email, "e3@lim.io"))
        .await
        .is_none());
    assert!(p
        .data_quality
        .iter()
        .any(|q| q.field == "identifier.email" && q.code == "identifier_limit"));
    // The trait itself is never dropped.
    assert_eq!(p.traits["email"], "e3@lim.io");

    // A shared device: a second user signing in on it starts a profile of their own instead
    // of landing on the first user's, and the refusal is logged.
    apply(
        &store,
        &ws,
        vec![
            event(json!({"type": "identify", "userId": "first", "anonymousId": "shared-dev"})),
            event(json!({"type": "identify", "userId": "second", "anonymousId": "shared-dev"})),
        ],
    )
    .await;
    let first = by(&store, &ws, &id(IdentifierKind::UserId, "first"))
        .await
        .expect("first");
    let second = by(&store, &ws, &id(IdentifierKind::UserId, "second"))
        .await
        .expect("second");
    assert_ne!(first.id, second.id);
    assert_eq!((first.event_count, second.event_count), (1, 1));
    let log = store.merges(&ws, &second.id).await.expect("merges");
    assert!(
        log.iter().any(|m| m.status == "refused"
            && m.refusal.as_deref() == Some("limit_exceeded")
            && m.merged == first.id),
        "{log:?}"
    );

    // External ids link like any identifier: an anonymous visitor with a CRM id and a known
    // user with the same CRM id are one customer.
    let crm = Identifier::external("crm", "0035e00001").expect("crm id");
    apply(
        &store,
        &ws,
        vec![
            event(json!({"type": "identify", "anonymousId": "crm-visitor"}))
                .with_external_ids(vec![crm.clone()]),
            event(json!({"type": "identify", "userId": "crm-user"}))
                .with_external_ids(vec![crm.clone()]),
        ],
    )
    .await;
    let c = by(&store, &ws, &crm).await.expect("crm profile");
    assert_eq!(c.event_count, 2);
    assert!(c
        .identities
        .contains(&id(IdentifierKind::UserId, "crm-user")));
    // One CRM id per profile: a second is refused.
    apply(
        &store,
        &ws,
        vec![event(json!({"type": "identify", "userId": "crm-user"}))
            .with_external_ids(vec![Identifier::external("crm", "0035e00002").expect("crm")])],
    )
    .await;
    assert!(by(
        &store,
        &ws,
        &Identifier::external("crm", "0035e00002").expect("crm")
    )
    .await
    .is_none());

    // The health summary counts the refusals and the flags.
    let health = store
        .identity_health(&ws, Utc::now() - Duration::days(1))
        .await
        .expect("health");
    assert!(health.days.iter().map(|d| d.refused).sum::<u64>() >= 1);
    assert!(!health.refused.is_empty());
    let codes: BTreeMap<_, _> = health.invalid_values.iter().cloned().collect();
    assert!(
        codes.get("blocked_identifier").copied().unwrap_or(0) >= 2,
        "{codes:?}"
    );
    assert!(codes.contains_key("identifier_limit"), "{codes:?}");
}

pub async fn the_theft_guard_needs_an_authenticated_event(
    store: DynStore,
    policy: Arc<dyn StitchPolicy>,
) {
    store.set_stitch_policy(Some(policy));
    let ws = ws(&store).await;
    apply(
        &store,
        &ws,
        vec![
            event(json!({"type": "identify", "userId": "u1", "traits": {"email": "one@theft.io"}})),
            event(json!({"type": "identify", "userId": "u2", "traits": {"email": "two@theft.io"}})),
            // An anonymous device that is u1's: allowed to join u1 (only one has a user id).
            event(json!({"type": "identify", "anonymousId": "dev-9",
                "traits": {"email": "one@theft.io"}})),
        ],
    )
    .await;
    let p1 = by(&store, &ws, &id(IdentifierKind::UserId, "u1"))
        .await
        .expect("u1");
    assert!(p1
        .identities
        .contains(&id(IdentifierKind::AnonymousId, "dev-9")));
    // No user id on the event: the device may not pull in u2's profile through u2's email.
    apply(
        &store,
        &ws,
        vec![event(json!({"type": "identify", "anonymousId": "dev-9",
            "traits": {"email": "two@theft.io"}, "messageId": "theft-1"}))],
    )
    .await;
    // A user id from a library that is not trusted: refused too.
    apply(
        &store,
        &ws,
        vec![event(json!({"type": "identify", "userId": "u1",
            "traits": {"email": "two@theft.io"}, "messageId": "theft-2",
            "context": {"library": {"name": "analytics.js"}}}))],
    )
    .await;
    // From a trusted library the event is authenticated, and the one-user-id limit refuses.
    apply(
        &store,
        &ws,
        vec![event(json!({"type": "identify", "userId": "u1",
            "traits": {"email": "two@theft.io"}, "messageId": "theft-3",
            "context": {"library": {"name": "analytics-node"}}}))],
    )
    .await;
    let p1 = by(&store, &ws, &id(IdentifierKind::UserId, "u1"))
        .await
        .expect("u1");
    let p2 = by(&store, &ws, &id(IdentifierKind::UserId, "u2"))
        .await
        .expect("u2");
    assert_ne!(p1.id, p2.id, "the theft guard let two customers merge");
    assert_eq!(
        by(&store, &ws, &id(IdentifierKind::Email, "two@theft.io"))
            .await
            .expect("email")
            .id,
        p2.id
    );
    let mut refusals: Vec<(String, Option<String>)> = Vec::new();
    for p in [&p1.id, &p2.id] {
        for m in store.merges(&ws, p).await.expect("merges") {
            if m.status == "refused" {
                refusals.push((m.message_id.clone().unwrap_or_default(), m.refusal));
            }
        }
    }
    refusals.sort();
    assert_eq!(
        refusals,
        vec![
            ("theft-1".into(), Some("unauthenticated_merge".into())),
            ("theft-2".into(), Some("unauthenticated_merge".into())),
            ("theft-3".into(), Some("limit_exceeded".into())),
        ]
    );
    let records = audit(&store, "profile.merge_refused").await;
    assert_eq!(records.len(), 3);
    for r in &records {
        assert!(
            !r.details.contains("theft.io") && !r.details.contains("dev-9"),
            "the audit trail names no identifier values: {}",
            r.details
        );
    }
    assert_eq!(store.stats(&ws).await.expect("stats").profiles, 2);
}

/// An anonymous visitor and a known customer, merged by a sign-in and then split again.
pub async fn unmerge_restores_both_sides(store: DynStore, policy: Option<Arc<dyn StitchPolicy>>) {
    store.set_stitch_policy(policy);
    let ws = ws(&store).await;
    let anon = id(IdentifierKind::AnonymousId, "visitor-1");
    let user = id(IdentifierKind::UserId, "ann");
    apply(
        &store,
        &ws,
        vec![
            event(json!({"type": "identify", "anonymousId": "visitor-1",
                "traits": {"name": "Visitor Ann", "plan": "free"}, "timestamp": "2026-01-01T10:00:00Z"})),
            event(json!({"type": "page", "anonymousId": "visitor-1", "name": "Pricing",
                "timestamp": "2026-01-02T10:00:00Z"})),
            event(json!({"type": "identify", "userId": "ann",
                "traits": {"name": "Ann Known", "email": "ann@known.io"}, "timestamp": "2026-01-03T10:00:00Z"})),
        ],
    )
    .await;
    let visitor = by(&store, &ws, &anon).await.expect("visitor");
    let known = by(&store, &ws, &user).await.expect("known");
    assert_ne!(visitor.id, known.id);

    // Never merged: 409.
    let entry = || {
        AuditEntry::new(
            Some(ws.clone()),
            Actor::System,
            "profile.unmerged",
            None,
            json!({}),
        )
    };
    let refused = store
        .unmerge(&ws, &known.id, UnmergeRequest::default(), entry())
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotMerged(_))),
        "{refused:?}"
    );
    assert!(store
        .unmerge(
            &ws,
            &ProfileId::generate(),
            UnmergeRequest::default(),
            entry()
        )
        .await
        .is_err());

    let sign_in = |m: &str| {
        event(
            json!({"type": "identify", "userId": "ann", "anonymousId": "visitor-1",
            "messageId": m, "timestamp": "2026-01-04T10:00:00Z"}),
        )
    };
    apply(&store, &ws, vec![sign_in("sign-in-1")]).await;
    let merged = by(&store, &ws, &user).await.expect("merged");
    assert_eq!(merged.event_count, 4);
    let survivor = merged.id.clone();
    let other = if survivor == visitor.id {
        known.id.clone()
    } else {
        visitor.id.clone()
    };
    assert_eq!(survivor, visitor.id, "the older profile survives");
    assert_eq!(
        store
            .profile(&ws, &other)
            .await
            .expect("read")
            .expect("redirect")
            .id,
        survivor
    );
    let log = store.merges(&ws, &survivor).await.expect("merges");
    let merge = log
        .iter()
        .find(|m| m.status == "merged")
        .expect("a merge")
        .clone();

    let outcome = store
        .unmerge(
            &ws,
            &other, // a merged id names the survivor
            UnmergeRequest {
                merge_id: Some(merge.id),
                add_guard: false,
            },
            entry(),
        )
        .await
        .expect("unmerge");
    assert_eq!(outcome.survivor, survivor);
    assert_eq!(outcome.restored, known.id);
    assert_eq!(outcome.events_moved, 1);

    let v = store
        .profile(&ws, &visitor.id)
        .await
        .expect("read")
        .expect("visitor");
    let k = store
        .profile(&ws, &known.id)
        .await
        .expect("read")
        .expect("known");
    assert_eq!(k.id, known.id, "the merged id resolves to itself again");
    assert_eq!(v.identities, vec![anon.clone()]);
    assert_eq!(k.identities, {
        let mut ids = vec![user.clone(), id(IdentifierKind::Email, "ann@known.io")];
        ids.sort();
        ids
    });
    assert_eq!(k.traits["name"], "Ann Known");
    assert_eq!(k.name.as_deref(), Some("Ann Known"));
    assert!(k.traits.get("plan").is_none(), "{:?}", k.traits);
    assert_eq!(v.traits["name"], "Visitor Ann");
    assert_eq!(v.traits["plan"], "free");
    assert!(v.traits.get("email").is_none());
    // The sign-in itself stays with the survivor, as do its earlier events.
    assert_eq!((v.event_count, k.event_count), (3, 1));
    assert!(v.merged_ids.is_empty());
    let timeline = store
        .profile_events(&ws, &known.id, None, 10)
        .await
        .expect("events");
    assert_eq!(timeline.events.len(), 1);
    assert_eq!(by(&store, &ws, &user).await.expect("user").id, known.id);
    assert_eq!(by(&store, &ws, &anon).await.expect("anon").id, visitor.id);
    let log = store.merges(&ws, &survivor).await.expect("merges");
    let undone = log.iter().find(|m| m.id == merge.id).expect("still logged");
    assert_eq!(undone.status, "unmerged");
    assert!(undone.unmerged_at.is_some());
    // The same merge cannot be undone twice.
    let again = store
        .unmerge(
            &ws,
            &survivor,
            UnmergeRequest {
                merge_id: Some(merge.id),
                add_guard: false,
            },
            entry(),
        )
        .await;
    assert!(matches!(again, Err(StoreError::NotMerged(_))), "{again:?}");
    let records = audit(&store, "profile.unmerged").await;
    assert_eq!(records.len(), 1);
    let d: Value = serde_json::from_str(&records[0].details).expect("json");
    assert_eq!(d["restored"], known.id.as_str());
    assert!(!records[0].details.contains("ann@known.io"));

    // Without a guard the next sign-in merges them again; unmerged with one, it may not.
    apply(&store, &ws, vec![sign_in("sign-in-2")]).await;
    assert_eq!(by(&store, &ws, &user).await.expect("user").id, survivor);
    let outcome = store
        .unmerge(
            &ws,
            &survivor,
            UnmergeRequest {
                merge_id: None,
                add_guard: true,
            },
            entry(),
        )
        .await
        .expect("unmerge with a guard");
    assert!(outcome.guard_added);
    apply(&store, &ws, vec![sign_in("sign-in-3")]).await;
    assert_eq!(by(&store, &ws, &user).await.expect("user").id, known.id);
    assert_eq!(by(&store, &ws, &anon).await.expect("anon").id, visitor.id);
    let log = store.merges(&ws, &known.id).await.expect("merges");
    assert!(
        log.iter()
            .any(|m| m.status == "refused" && m.refusal.as_deref() == Some("merge_blocked")),
        "{log:?}"
    );
    let health = store
        .identity_health(&ws, Utc::now() - Duration::days(1))
        .await
        .expect("health");
    assert_eq!(health.days.iter().map(|d| d.unmerged).sum::<u64>(), 2);
    assert_eq!(health.unmerged.len(), 2);
}

/// Consents, decisions and next-best-action contacts recorded for a merged side go back with
/// it at an unmerge, through a chain of two merges, while the survivor keeps its own.
pub async fn unmerge_returns_consents_decisions_and_contacts(store: DynStore) {
    use crate::conformance_nba::{contact, offer};
    use crate::{DecisionQuery, NbaOutcome};
    use rapport_core::{ConsentChange, ConsentState, Purpose, Standardized};

    let ws = ws(&store).await;
    // The known customer first, so it is the oldest profile and survives.
    apply(
        &store,
        &ws,
        vec![event(json!({"type": "identify", "userId": "um-user",
        "messageId": "um-1", "timestamp": "2026-02-01T10:00:00Z"}))],
    )
    .await;
    apply(
        &store,
        &ws,
        vec![event(
            json!({"type": "identify", "anonymousId": "um-device-2",
        "traits": {"email": "um-v@example.com"}, "messageId": "um-2",
        "timestamp": "2026-02-02T10:00:00Z"}),
        )],
    )
    .await;
    // A visitor who accepts analytics on the website (the consent comes with the event).
    let consented = event(
        json!({"type": "track", "anonymousId": "um-device-1", "event": "Viewed",
        "messageId": "um-3", "timestamp": "2026-02-03T10:00:00Z"}),
    )
    .with_standard(Standardized {
        consents: vec![(Purpose::parse("analytics").expect("purpose"), true)],
        ..Default::default()
    });
    apply(&store, &ws, vec![consented]).await;
    let known = by(&store, &ws, &id(IdentifierKind::UserId, "um-user"))
        .await
        .expect("known")
        .id;
    let device2 = by(&store, &ws, &id(IdentifierKind::AnonymousId, "um-device-2"))
        .await
        .expect("device 2")
        .id;
    let device1 = by(&store, &ws, &id(IdentifierKind::AnonymousId, "um-device-1"))
        .await
        .expect("device 1")
        .id;
    let now = Utc::now();
    let grant = |p: &str| ConsentChange {
        purpose: Purpose::parse(p).expect("purpose"),
        state: ConsentState::Granted,
        source: "api".into(),
        at: now - Duration::hours(3),
    };
    store
        .record_consents(&ws, &device2, vec![grant("marketing_email")], vec![])
        .await
        .expect("device 2 consent");
    store
        .record_consents(&ws, &known, vec![grant("marketing_sms")], vec![])
        .await
        .expect("known consent");
    for (dec, p) in [("dec_um_device", &device1), ("dec_um_known", &known)] {
        store
            .record_nba_offers(
                &ws,
                vec![offer(dec, p, now - Duration::hours(2))],
                vec![contact(
                    dec,
                    "fiber_discount",
                    "web",
                    now - Duration::hours(2),
                )],
                vec![],
            )
            .await
            .expect("offer");
    }

    // The visitor's email joins the two devices (the older survives), then a sign-in joins
    // them to the known customer.
    apply(
        &store,
        &ws,
        vec![event(
            json!({"type": "identify", "anonymousId": "um-device-1",
        "traits": {"email": "um-v@example.com"}, "messageId": "um-4",
        "timestamp": "2026-02-04T10:00:00Z"}),
        )],
    )
    .await;
    let p = store
        .profile(&ws, &device1)
        .await
        .expect("read")
        .expect("p");
    assert_eq!(p.id, device2, "device 1 merged into device 2");
    apply(
        &store,
        &ws,
        vec![event(json!({"type": "identify", "userId": "um-user",
        "anonymousId": "um-device-1", "messageId": "um-5", "timestamp": "2026-02-05T10:00:00Z"}))],
    )
    .await;
    let p = store
        .profile(&ws, &device2)
        .await
        .expect("read")
        .expect("p");
    assert_eq!(p.id, known, "the devices merged into the known customer");

    let purposes = |id: ProfileId| {
        let store = store.clone();
        let ws = ws.clone();
        async move {
            let mut v: Vec<String> = store
                .consents(&ws, &id)
                .await
                .expect("consents")
                .iter()
                .map(|c| c.purpose.as_str().to_owned())
                .collect();
            v.sort();
            v
        }
    };
    let decisions = |id: ProfileId| {
        let store = store.clone();
        let ws = ws.clone();
        async move {
            store
                .decisions(DecisionQuery {
                    workspace: ws.clone(),
                    profile: Some(id),
                    status: None,
                    limit: 10,
                })
                .await
                .expect("decisions")
                .into_iter()
                .map(|d| (d.id, d.profile_id.as_str().to_owned()))
                .collect::<std::collections::BTreeSet<_>>()
        }
    };
    let contacts = |id: ProfileId| {
        let store = store.clone();
        let ws = ws.clone();
        async move {
            store
                .nba_contacts(&ws, &id, now - Duration::days(1))
                .await
                .expect("contacts")
                .into_iter()
                .map(|c| (c.decision_id, c.profile_id.as_str().to_owned()))
                .collect::<std::collections::BTreeSet<_>>()
        }
    };
    let set = |v: &[(&str, &ProfileId)]| {
        v.iter()
            .map(|(d, p)| ((*d).to_owned(), p.as_str().to_owned()))
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        purposes(known.clone()).await,
        ["analytics", "marketing_email", "marketing_sms"]
    );
    assert_eq!(
        decisions(known.clone()).await,
        set(&[("dec_um_device", &known), ("dec_um_known", &known)])
    );
    assert_eq!(
        contacts(known.clone()).await,
        set(&[("dec_um_device", &known), ("dec_um_known", &known)])
    );

    let unmerge = |p: ProfileId| {
        let store = store.clone();
        let ws = ws.clone();
        async move {
            let entry = AuditEntry::new(
                Some(ws.clone()),
                Actor::System,
                "profile.unmerged",
                None,
                json!({}),
            );
            store
                .unmerge(&ws, &p, UnmergeRequest::default(), entry)
                .await
                .expect("unmerge")
        }
    };
    let moved = |o: &crate::UnmergeOutcome| (o.consents_moved, o.decisions_moved, o.contacts_moved);
    // Undoing the sign-in gives both devices' records back to device 2, the side's survivor.
    let outcome = unmerge(known.clone()).await;
    assert_eq!(outcome.restored, device2);
    assert_eq!(moved(&outcome), (2, 1, 1));
    assert_eq!(purposes(known.clone()).await, ["marketing_sms"]);
    assert_eq!(
        purposes(device2.clone()).await,
        ["analytics", "marketing_email"]
    );
    assert_eq!(
        decisions(known.clone()).await,
        set(&[("dec_um_known", &known)])
    );
    assert_eq!(
        decisions(device2.clone()).await,
        set(&[("dec_um_device", &device2)])
    );
    let d = store
        .decision(&ws, "dec_um_device")
        .await
        .expect("read")
        .expect("decision");
    assert_eq!(
        d.profile_id, device2,
        "the decision's body names its customer"
    );
    assert_eq!(
        contacts(known.clone()).await,
        set(&[("dec_um_known", &known)])
    );
    assert_eq!(
        contacts(device2.clone()).await,
        set(&[("dec_um_device", &device2)])
    );
    let records = audit(&store, "profile.unmerged").await;
    assert_eq!(records.len(), 1);
    let details: Value = serde_json::from_str(&records[0].details).expect("json");
    assert_eq!(
        (
            &details["consents_moved"],
            &details["decisions_moved"],
            &details["contacts_moved"]
        ),
        (&json!(2), &json!(1), &json!(1))
    );

    // Device 1's records kept where they came from through that unmerge: undoing the email
    // merge gives them back to it.
    let outcome = unmerge(device2.clone()).await;
    assert_eq!(outcome.restored, device1);
    assert_eq!(moved(&outcome), (1, 1, 1));
    assert_eq!(purposes(device1.clone()).await, ["analytics"]);
    assert_eq!(purposes(device2.clone()).await, ["marketing_email"]);
    assert_eq!(
        decisions(device1.clone()).await,
        set(&[("dec_um_device", &device1)])
    );
    assert!(decisions(device2.clone()).await.is_empty());
    assert_eq!(
        contacts(device1.clone()).await,
        set(&[("dec_um_device", &device1)])
    );
    assert!(contacts(device2.clone()).await.is_empty());
    // The offer's contact and decision moved together: its outcome can still be recorded.
    let mut d = store
        .decision(&ws, "dec_um_device")
        .await
        .expect("read")
        .expect("decision");
    assert_eq!(d.profile_id, device1);
    d.params["outcome"] = json!("accepted");
    let (c, _) = store
        .record_nba_outcome(
            &ws,
            NbaOutcome {
                expected_version: d.version,
                decision: d,
                outcome: "accepted".into(),
                success: true,
                at: now,
            },
            vec![],
        )
        .await
        .expect("outcome");
    assert_eq!(c.profile_id, device1);

    // Home again, they move with a new merge and come back from its unmerge.
    apply(
        &store,
        &ws,
        vec![event(json!({"type": "identify", "userId": "um-user",
        "anonymousId": "um-device-1", "messageId": "um-6", "timestamp": "2026-02-06T10:00:00Z"}))],
    )
    .await;
    assert_eq!(
        purposes(known.clone()).await,
        ["analytics", "marketing_sms"]
    );
    let outcome = unmerge(known.clone()).await;
    assert_eq!(outcome.restored, device1);
    assert_eq!(moved(&outcome), (1, 1, 1));
    assert_eq!(purposes(device1.clone()).await, ["analytics"]);
    assert_eq!(purposes(known.clone()).await, ["marketing_sms"]);
    assert_eq!(
        contacts(known.clone()).await,
        set(&[("dec_um_known", &known)])
    );
}

/// Writers racing on the same customers, each event naming some of a customer's identifiers,
/// in different orders: afterwards every identifier belongs to exactly one live profile, that
/// profile is the one it resolves to, and every customer is one profile holding all of them.
pub async fn concurrent_writers_never_share_an_identifier(
    store: DynStore,
    policy: Arc<dyn StitchPolicy>,
) {
    store.set_stitch_policy(Some(policy));
    let ws = ws(&store).await;
    const WRITERS: usize = 6;
    const CUSTOMERS: usize = 12;
    const ROUNDS: usize = 4;
    let ids_of = |c: usize, w: usize| -> Value {
        // Each writer names a different mix, so profiles are created apart and merged later.
        match (c + w) % 3 {
            0 => json!({"userId": format!("cu-{c}"), "anonymousId": format!("dev-{c}-{w}")}),
            1 => {
                json!({"anonymousId": format!("dev-{c}-{w}"), "traits": {"email": format!("c{c}@race.io")}})
            }
            _ => json!({"userId": format!("cu-{c}"), "traits": {"email": format!("c{c}@race.io")}}),
        }
    };
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, ws) = (store.clone(), ws.clone());
            tokio::spawn(async move {
                let mut applied = 0;
                for r in 0..ROUNDS {
                    let mut batch = Vec::new();
                    for k in 0..CUSTOMERS {
                        // Writers walk every customer, in different orders.
                        let c = if w % 2 == 0 {
                            (k + w + r) % CUSTOMERS
                        } else {
                            (2 * CUSTOMERS - 1 - k + w + r) % CUSTOMERS
                        };
                        let mut body = ids_of(c, w);
                        body["type"] = json!("identify");
                        body["messageId"] = json!(format!("race-{w}-{r}-{k}"));
                        batch.push(event(body));
                    }
                    applied += store.ingest(&ws, batch).await.expect("ingest").applied;
                }
                applied
            })
        })
        .collect();
    let mut applied = 0;
    for t in tasks {
        applied += t.await.expect("writer");
    }
    assert_eq!(
        applied,
        WRITERS * ROUNDS * CUSTOMERS,
        "nothing accepted is lost"
    );

    let live = store.recent_profiles(&ws, 1000).await.expect("profiles");
    let mut owner: BTreeMap<Identifier, ProfileId> = BTreeMap::new();
    let mut events = 0;
    for s in &live {
        let p = store
            .profile(&ws, &s.id)
            .await
            .expect("read")
            .expect("profile");
        events += p.event_count;
        for i in p.identities {
            if let Some(before) = owner.insert(i.clone(), p.id.clone()) {
                panic!("{i} is held by {before} and {}", p.id);
            }
        }
    }
    assert_eq!(
        events as usize, applied,
        "every event is on one live profile"
    );
    for (i, p) in &owner {
        assert_eq!(&by(&store, &ws, i).await.expect("resolves").id, p);
    }
    assert_eq!(live.len(), CUSTOMERS, "each customer is one profile");
    for c in 0..CUSTOMERS {
        let p = by(&store, &ws, &id(IdentifierKind::UserId, &format!("cu-{c}")))
            .await
            .expect("customer");
        assert!(p
            .identities
            .contains(&id(IdentifierKind::Email, &format!("c{c}@race.io"))));
        let devices = (0..WRITERS).filter(|w| (c + w) % 3 != 2).count();
        assert_eq!(
            p.identities.len(),
            2 + devices,
            "user id, email and every device: {:?}",
            p.identities
        );
    }
}
