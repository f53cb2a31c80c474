//! Probabilistic dedupe's part of the store contract: merging two whole profiles under the
//! guards (logged with why, reversible by unmerge), and the review queue (each pair once,
//! decisions once, erasure removes a customer's pairs).

use std::sync::Arc;

use rapport_core::stitch::StitchPolicy;
use rapport_core::{Actor, AuditEntry, IdentifierKind, ProfileId, WorkspaceId};
use serde_json::json;

use crate::conformance::{default_ws, event, profile_of, DynStore};
use crate::{
    AuditQuery, ErasureOptions, ProfileMerge, ProfileMergeOutcome, ProfileMergeRule,
    ReviewDecision, ReviewPairDraft, StoreError, UnmergeRequest,
};

/// Runs the checks without a stitch policy (the built-in rule) and with `policy`.
pub async fn run_all<F, Fut>(make: F, policy: Arc<dyn StitchPolicy>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = DynStore>,
{
    merges_and_the_review_queue(make().await, None).await;
    merges_and_the_review_queue(make().await, Some(policy)).await;
}

fn entry(ws: &WorkspaceId, action: &str, subject: &str) -> AuditEntry {
    AuditEntry::new(
        Some(ws.clone()),
        Actor::System,
        action,
        Some(subject.to_owned()),
        json!({}),
    )
}

fn merge(a: &ProfileId, b: &ProfileId, p: f64) -> ProfileMerge {
    ProfileMerge {
        a: a.clone(),
        b: b.clone(),
        rule: ProfileMergeRule::ProbabilisticDedupe,
        detail: json!({"match_probability": p, "fields": [{"field": "last_name", "level": "exact"}]}),
    }
}

fn draft(a: &ProfileId, b: &ProfileId, p: f64, refusal: Option<&str>) -> ReviewPairDraft {
    ReviewPairDraft {
        profile_a: a.clone(),
        profile_b: b.clone(),
        match_probability: p,
        match_weight: 3.5,
        fields: json!([{"field": "first_name", "level": "jaro_winkler>=0.92", "log2_bayes_factor": 4.2}]),
        refusal: refusal.map(str::to_owned),
    }
}

pub async fn merges_and_the_review_queue(store: DynStore, policy: Option<Arc<dyn StitchPolicy>>) {
    store.set_stitch_policy(policy);
    let ws = default_ws(&store).await;
    let mut events = Vec::new();
    for (anon, user, name, email) in [
        ("dd-1", None, "Ada Lovelace", "ada1@dd.io"),
        ("dd-2", None, "Ada Lovelase", "ada2@dd.io"),
        ("dd-3", Some("dd-u1"), "Bob Stone", "bob1@dd.io"),
        ("dd-4", Some("dd-u2"), "Bob Stone", "bob2@dd.io"),
        ("dd-5", None, "Ada Lovelace", "ada3@dd.io"),
    ] {
        let mut e = json!({"type": "identify", "anonymousId": anon,
            "traits": {"name": name, "email": email}});
        if let Some(u) = user {
            e["userId"] = json!(u);
        }
        events.push(event(e));
    }
    store.ingest(&ws, events).await.expect("ingest");
    let anon = |v: &'static str| profile_of(&store, &ws, IdentifierKind::AnonymousId, v);
    let (a, b, c, d, e) = (
        anon("dd-1").await,
        anon("dd-2").await,
        anon("dd-3").await,
        anon("dd-4").await,
        anon("dd-5").await,
    );

    // A probable pair merges into the older profile, logged with why, and is reversible.
    let out = store
        .merge_profiles(
            &ws,
            merge(&b, &a, 0.99),
            vec![entry(&ws, "identity.dedupe", "run")],
        )
        .await
        .expect("merge");
    let ProfileMergeOutcome::Merged { merge: m } = out else {
        panic!("not merged: {out:?}");
    };
    assert_eq!(
        (m.survivor.clone(), m.merged.clone()),
        (a.clone(), b.clone())
    );
    assert_eq!(
        (m.rule.as_str(), m.status.as_str()),
        ("probabilistic_dedupe", "merged")
    );
    assert_eq!(
        m.detail.as_ref().expect("detail")["match_probability"],
        0.99
    );
    let survivor = store
        .profile(&ws, &b)
        .await
        .expect("read")
        .expect("redirect");
    assert_eq!(survivor.id, a);
    assert!(survivor.identities.len() >= 4, "{:?}", survivor.identities);
    assert!(store
        .merges(&ws, &a)
        .await
        .expect("merges")
        .iter()
        .any(|r| r.rule == "probabilistic_dedupe" && r.status == "merged"));
    let audit = store
        .audit_records(AuditQuery {
            action_prefix: Some("profile.merged".into()),
            subject: Some(a.as_str().into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("audit");
    let details: serde_json::Value = serde_json::from_str(&audit[0].details).expect("json");
    assert_eq!(details["rule"], "probabilistic_dedupe");
    assert_eq!(details["detail"]["match_probability"], 0.99);
    assert!(matches!(
        store.merge_profiles(&ws, merge(&a, &b, 0.99), vec![]).await,
        Ok(ProfileMergeOutcome::AlreadyOne { .. })
    ));
    let undone = store
        .unmerge(
            &ws,
            &a,
            UnmergeRequest {
                merge_id: Some(m.id),
                add_guard: true,
            },
            entry(&ws, "profile.unmerged", a.as_str()),
        )
        .await
        .expect("unmerge");
    assert_eq!(undone.restored, b);
    assert_eq!(
        store.profile(&ws, &b).await.expect("read").expect("b").id,
        b
    );
    // The guard the operator added keeps them apart from now on.
    let again = store.merge_profiles(&ws, merge(&a, &b, 0.99), vec![]).await;
    assert!(
        matches!(&again, Ok(ProfileMergeOutcome::Refused { merge }) if merge.refusal.as_deref() == Some("merge_blocked")),
        "{again:?}"
    );

    // Two profiles that each have a user id are never merged without an authenticated event.
    let refused = store
        .merge_profiles(&ws, merge(&c, &d, 0.995), vec![])
        .await
        .expect("merge attempt");
    let ProfileMergeOutcome::Refused { merge: r } = refused else {
        panic!("merged two user ids: {refused:?}");
    };
    assert_eq!(r.refusal.as_deref(), Some("unauthenticated_merge"));
    assert_eq!(r.status, "refused");
    assert_ne!(
        store.profile(&ws, &d).await.expect("read").expect("d").id,
        c
    );
    let unknown = ProfileId::from_trusted("prof_missing".into());
    assert!(matches!(
        store
            .merge_profiles(&ws, merge(&a, &unknown, 0.99), vec![])
            .await,
        Err(StoreError::NotFound(_))
    ));

    // The review queue holds each pair once, in either order, whatever its status.
    let added = store
        .queue_review_pairs(
            &ws,
            vec![
                draft(&c, &d, 0.995, Some("unauthenticated_merge")),
                draft(&a, &e, 0.9, None),
            ],
            vec![entry(&ws, "identity.dedupe", "run")],
        )
        .await
        .expect("queue");
    assert_eq!(added, 2);
    let again = store
        .queue_review_pairs(&ws, vec![draft(&d, &c, 0.97, None)], vec![])
        .await
        .expect("queue");
    assert_eq!(again, 0, "a queued pair was queued twice");
    let pending = store
        .review_pairs(&ws, Some("pending"), 0, 10)
        .await
        .expect("list");
    assert_eq!(pending.len(), 2);
    assert!(pending[0].match_probability > pending[1].match_probability);
    assert_eq!(pending[0].refusal.as_deref(), Some("unauthenticated_merge"));
    assert_eq!(pending[1].match_weight, 3.5);
    assert_eq!(pending[1].fields[0]["log2_bayes_factor"], 4.2);
    let page = store
        .review_pairs(&ws, Some("pending"), 1, 10)
        .await
        .expect("page");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, pending[1].id);
    assert_eq!(store.review_pair_keys(&ws).await.expect("keys").len(), 2);
    let (cd, ae) = (pending[0].id.clone(), pending[1].id.clone());

    // A merge a guard refuses leaves the pair pending; a rejection decides it, once.
    let out = store
        .decide_review_pair(
            &ws,
            &cd,
            ReviewDecision::Merge {
                detail: json!({"by": "person"}),
            },
            "user:alice",
            vec![entry(&ws, "identity.review.decided", &cd)],
        )
        .await
        .expect("decide");
    assert_eq!(out.pair.status, "pending");
    assert!(matches!(
        out.merge,
        Some(ProfileMergeOutcome::Refused { .. })
    ));
    let out = store
        .decide_review_pair(&ws, &cd, ReviewDecision::Reject, "user:alice", vec![])
        .await
        .expect("reject");
    assert_eq!(out.pair.status, "rejected");
    assert_eq!(out.pair.decided_by.as_deref(), Some("user:alice"));
    assert!(out.pair.decided_at.is_some());
    assert!(matches!(
        store
            .decide_review_pair(&ws, &cd, ReviewDecision::Reject, "user:alice", vec![])
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .decide_review_pair(
                &ws,
                "dup_none",
                ReviewDecision::Reject,
                "user:alice",
                vec![]
            )
            .await,
        Err(StoreError::NotFound(_))
    ));

    // A person's merge goes through the same path and is logged as theirs.
    let out = store
        .decide_review_pair(
            &ws,
            &ae,
            ReviewDecision::Merge {
                detail: json!({"match_probability": 0.9}),
            },
            "user:alice",
            vec![],
        )
        .await
        .expect("merge");
    assert_eq!(out.pair.status, "merged");
    let Some(ProfileMergeOutcome::Merged { merge: m }) = out.merge else {
        panic!("not merged: {:?}", out.merge);
    };
    assert_eq!(m.rule, "dedupe_review");
    assert_eq!(
        store.profile(&ws, &e).await.expect("read").expect("e").id,
        a
    );
    assert_eq!(
        store
            .review_pairs(&ws, Some("pending"), 0, 10)
            .await
            .expect("list")
            .len(),
        0
    );

    // Erasing a customer removes the pairs that name them (or any id merged into them).
    store
        .erase_profile(
            &ws,
            &a,
            ErasureOptions::default(),
            entry(&ws, "profile.erased", a.as_str()),
        )
        .await
        .expect("erase");
    let left = store.review_pairs(&ws, None, 0, 10).await.expect("list");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].id, cd);
}
