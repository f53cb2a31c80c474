//! The governance part of the store contract: consents, the audit chain and erasure. Run by
//! [`crate::conformance::run_all`].

use chrono::{Duration, Utc};
use rapport_core::{
    Actor, AuditEntry, ConsentChange, ConsentState, Identifier, IdentifierKind, ProfileId, Purpose,
    Standardized, WorkspaceId, WorkspaceName, GENESIS_HASH,
};
use serde_json::json;

use crate::conformance::{event, DynStore};
use crate::{AuditQuery, ErasureOptions, StoreError};

use crate::conformance::default_ws as ws;

fn purpose(p: &str) -> Purpose {
    Purpose::parse(p).expect("purpose")
}

fn email(v: &str) -> Identifier {
    Identifier::new(IdentifierKind::Email, v).expect("email")
}

async fn profile_of(store: &DynStore, ws: &WorkspaceId, id: &Identifier) -> ProfileId {
    store
        .profile_by_identifier(ws, id)
        .await
        .expect("lookup")
        .expect("profile exists")
        .id
}

fn entry(ws: &WorkspaceId, action: &str, subject: &str) -> AuditEntry {
    AuditEntry::new(
        Some(ws.clone()),
        Actor::ApiKey("key_test".into()),
        action,
        Some(subject.to_owned()),
        json!({"n": 1}),
    )
}

pub async fn consents_keep_history_and_follow_merges(store: DynStore) {
    let ws = ws(&store).await;
    store
        .ingest(
            &ws,
            vec![event(
                json!({"type": "identify", "userId": "c1", "messageId": "c-m1",
            "traits": {"email": "c1@example.com"}}),
            )],
        )
        .await
        .expect("ingest");
    let id = profile_of(&store, &ws, &email("c1@example.com")).await;
    let now = Utc::now();
    let change = |p: &str, s, at| ConsentChange {
        purpose: purpose(p),
        state: s,
        source: "api".into(),
        at,
    };
    let recs = store
        .record_consents(
            &ws,
            &id,
            vec![
                change("marketing_email", ConsentState::Granted, now),
                change(
                    "marketing_email",
                    ConsentState::Denied,
                    now - Duration::hours(1),
                ),
            ],
            vec![entry(&ws, "consent.granted", id.as_str())],
        )
        .await
        .expect("record");
    assert_eq!(recs.len(), 2, "both decisions are kept in the history");
    assert_eq!(
        recs.last().expect("latest").state,
        ConsentState::Granted,
        "history is ordered by decision time: the later grant is in force"
    );
    let missing = ProfileId::generate();
    assert!(matches!(
        store.consents(&ws, &missing).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.record_consents(&ws, &missing, vec![], vec![]).await,
        Err(StoreError::NotFound(_))
    ));

    // An anonymous visitor with consent of their own becomes the same customer: the consent
    // history moves to the surviving profile.
    let mut e = event(
        json!({"type": "track", "anonymousId": "anon-c1", "messageId": "c-m2",
        "event": "Viewed", "context": {"consent": {"categoryPreferences": {"analytics": true}}}}),
    );
    e = e.with_standard(Standardized {
        consents: vec![(purpose("analytics"), true)],
        ..Default::default()
    });
    store.ingest(&ws, vec![e]).await.expect("ingest anon");
    store
        .ingest(
            &ws,
            vec![event(
                json!({"type": "identify", "userId": "c1", "anonymousId": "anon-c1", "messageId": "c-m3"}),
            )],
        )
        .await
        .expect("stitch");
    let all = store.consents(&ws, &id).await.expect("consents");
    assert!(
        all.iter()
            .any(|c| c.purpose.as_str() == "analytics" && c.state == ConsentState::Granted),
        "{all:?}"
    );
}

pub async fn segment_consent_records_changes_only(store: DynStore) {
    let ws = ws(&store).await;
    let send = |mid: &str, ts: &str, granted: bool| {
        event(
            json!({"type": "track", "userId": "s1", "messageId": mid, "event": "Viewed",
            "timestamp": ts}),
        )
        .with_standard(Standardized {
            consents: vec![(purpose("marketing_sms"), granted)],
            ..Default::default()
        })
    };
    store
        .ingest(
            &ws,
            vec![
                send("s-1", "2025-03-01T10:00:00Z", true),
                send("s-2", "2025-03-01T11:00:00Z", true),
                send("s-3", "2025-03-01T12:00:00Z", false),
                // Still no: not a new decision.
                send("s-3b", "2025-03-01T13:00:00Z", false),
                // Older than the decision in force: history only, no change.
                send("s-4", "2025-02-01T12:00:00Z", true),
            ],
        )
        .await
        .expect("ingest");
    let id = profile_of(
        &store,
        &ws,
        &Identifier::new(IdentifierKind::UserId, "s1").expect("uid"),
    )
    .await;
    let states: Vec<ConsentState> = store
        .consents(&ws, &id)
        .await
        .expect("consents")
        .into_iter()
        .map(|c| c.state)
        .collect();
    assert_eq!(
        states,
        [ConsentState::Granted, ConsentState::Withdrawn],
        "a repeated preference is not a change; taking back a grant is a withdrawal"
    );
    let audit = store
        .audit_records(AuditQuery {
            subject: Some(id.as_str().to_owned()),
            action_prefix: Some("consent.".into()),
            ascending: true,
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("audit");
    let actions: Vec<&str> = audit.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["consent.granted", "consent.withdrawn"]);
}

pub async fn audit_chain_links_every_record(store: DynStore) {
    let ws = ws(&store).await;
    let other = store
        .create_workspace(&WorkspaceName::parse("audited").expect("name"))
        .await
        .expect("workspace")
        .id;
    let first = store
        .append_audit(vec![
            entry(&ws, "profile.exported", "prof_a"),
            entry(&other, "profile.exported", "prof_b"),
        ])
        .await
        .expect("append");
    let second = store
        .append_audit(vec![entry(&ws, "consent.granted", "prof_a")])
        .await
        .expect("append");
    assert!(store.append_audit(vec![]).await.expect("empty").is_empty());
    let all = store
        .audit_records(AuditQuery {
            ascending: true,
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("read");
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].prev_hash, GENESIS_HASH);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.seq, i as i64 + 1, "sequence has no gaps");
        assert_eq!(r.hash, r.compute_hash(), "stored hash matches the fields");
        if i > 0 {
            assert_eq!(
                r.prev_hash,
                all[i - 1].hash,
                "each record names the one before"
            );
        }
    }
    assert_eq!(all[0], first[0]);
    assert_eq!(all[2], second[0]);

    let mine = store
        .audit_records(AuditQuery {
            workspace: Some(ws.clone()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("read ws");
    assert_eq!(
        mine.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [3, 1],
        "newest first"
    );
    let page = store
        .audit_records(AuditQuery {
            from_seq: Some(3),
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("page");
    assert_eq!(page[0].seq, 2);
    let exported = store
        .audit_records(AuditQuery {
            action_prefix: Some("profile.".into()),
            subject: Some("prof_b".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("filter");
    assert_eq!(exported.len(), 1);
    assert_eq!(
        exported[0].workspace.as_deref(),
        Some(other.as_str()),
        "records name their workspace"
    );
}

pub async fn merges_are_audited(store: DynStore) {
    let ws = ws(&store).await;
    store
        .ingest(
            &ws,
            vec![
                event(json!({"type": "page", "anonymousId": "m-anon", "messageId": "mg-1", "name": "Home"})),
                event(json!({"type": "identify", "userId": "m-user", "messageId": "mg-2"})),
                event(json!({"type": "alias", "userId": "m-user", "previousId": "m-anon", "messageId": "mg-3"})),
            ],
        )
        .await
        .expect("ingest");
    let merges = store
        .audit_records(AuditQuery {
            action_prefix: Some("profile.merged".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("audit");
    assert_eq!(merges.len(), 1, "{merges:?}");
    let d = merges[0].details_value();
    assert_eq!(d["rule"], "alias");
    assert!(
        !merges[0].details.contains("m-anon") && !merges[0].details.contains("m-user"),
        "the audit log names no identifier values: {}",
        merges[0].details
    );
}

pub async fn erasure_removes_the_customer_and_blocks_rebuilding(store: DynStore) {
    use rapport_core::{
        Author, ConversationChannel, CustomerRef, Direction, MessageText, NewConversation,
        NewMessage,
    };
    let ws = ws(&store).await;
    store
        .ingest(
            &ws,
            vec![
                event(json!({"type": "page", "anonymousId": "e-anon", "messageId": "er-1", "name": "Home"})),
                event(json!({"type": "identify", "userId": "e-user", "anonymousId": "e-anon", "messageId": "er-2",
                    "traits": {"name": "Erin Erased", "email": "erin@example.com"}})),
                event(json!({"type": "identify", "userId": "keep-user", "messageId": "er-3",
                    "traits": {"name": "Kim Kept"}})),
            ],
        )
        .await
        .expect("ingest");
    let id = profile_of(&store, &ws, &email("erin@example.com")).await;
    let conv = store
        .open_conversation(
            &ws,
            CustomerRef::Profile(id.clone()),
            NewConversation {
                channel: ConversationChannel::Chat,
                subject: Some("Refund".into()),
                opened_at: Utc::now(),
            },
        )
        .await
        .expect("conversation");
    store
        .add_message(
            &ws,
            &conv.id,
            NewMessage {
                direction: Direction::Inbound,
                author: Author::Customer,
                text: MessageText::parse("I am Erin and I want my refund").expect("text"),
                sent_at: Utc::now(),
                external_id: None,
                analysis: None,
            },
        )
        .await
        .expect("message");
    store
        .record_consents(
            &ws,
            &id,
            vec![ConsentChange {
                purpose: purpose("profiling"),
                state: ConsentState::Granted,
                source: "api".into(),
                at: Utc::now(),
            }],
            vec![],
        )
        .await
        .expect("consent");

    let out = store
        .erase_profile(
            &ws,
            &id,
            ErasureOptions::default(),
            entry(&ws, "profile.erased", id.as_str()),
        )
        .await
        .expect("erase");
    assert!(!out.already_erased);
    assert_eq!(out.profile_id, id.as_str());
    assert_eq!(out.events, 3, "two calls and the message on the timeline");
    assert_eq!((out.conversations, out.messages), (1, 1));
    assert_eq!(out.consents, 1);
    assert_eq!(out.identifiers, 3, "user id, email and anonymous id");
    assert_eq!(out.tombstones, 3);

    assert!(store.profile(&ws, &id).await.expect("read").is_none());
    assert!(store
        .profile_by_identifier(&ws, &email("erin@example.com"))
        .await
        .expect("read")
        .is_none());
    assert!(store
        .conversation(&ws, &conv.id)
        .await
        .expect("read")
        .is_none());
    assert!(store
        .search_profiles(&ws, "erin", 10)
        .await
        .expect("search")
        .is_empty());
    assert_eq!(
        store
            .search_profiles(&ws, "kim", 10)
            .await
            .expect("search")
            .len(),
        1,
        "other customers are untouched"
    );

    // Erasing again is harmless and says so; an id never seen is not found.
    let again = store
        .erase_profile(
            &ws,
            &id,
            ErasureOptions::default(),
            entry(&ws, "profile.erased", id.as_str()),
        )
        .await
        .expect("repeat");
    assert!(again.already_erased);
    assert!(matches!(
        store
            .erase_profile(
                &ws,
                &ProfileId::generate(),
                ErasureOptions::default(),
                entry(&ws, "profile.erased", "x"),
            )
            .await,
        Err(StoreError::NotFound(_))
    ));

    // A late event naming the erased customer does not bring them back.
    let s = store
        .ingest(
            &ws,
            vec![
                event(json!({"type": "track", "anonymousId": "e-anon", "messageId": "er-late", "event": "Late"})),
                event(json!({"type": "identify", "userId": "someone-new", "messageId": "er-new"})),
            ],
        )
        .await
        .expect("late ingest");
    assert_eq!((s.applied, s.suppressed), (1, 1));
    assert!(store
        .profile_by_identifier(
            &ws,
            &Identifier::new(IdentifierKind::AnonymousId, "e-anon").expect("anon")
        )
        .await
        .expect("read")
        .is_none());

    let audit = store
        .audit_records(AuditQuery {
            subject: Some(id.as_str().to_owned()),
            action_prefix: Some("profile.erased".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("audit");
    assert_eq!(audit.len(), 1, "a repeated erasure writes nothing");
    assert_eq!(audit[0].details_value()["events"], 3);
}

pub async fn erasure_without_tombstones_lets_the_customer_return(store: DynStore) {
    let ws = ws(&store).await;
    store
        .ingest(
            &ws,
            vec![event(
                json!({"type": "identify", "userId": "back", "messageId": "b-1"}),
            )],
        )
        .await
        .expect("ingest");
    let uid = Identifier::new(IdentifierKind::UserId, "back").expect("uid");
    let id = profile_of(&store, &ws, &uid).await;
    let out = store
        .erase_profile(
            &ws,
            &id,
            ErasureOptions { tombstone: false },
            entry(&ws, "profile.erased", id.as_str()),
        )
        .await
        .expect("erase");
    assert_eq!(out.tombstones, 0);
    let s = store
        .ingest(
            &ws,
            vec![event(
                json!({"type": "identify", "userId": "back", "messageId": "b-2"}),
            )],
        )
        .await
        .expect("ingest");
    assert_eq!(s.applied, 1);
    assert_ne!(
        profile_of(&store, &ws, &uid).await,
        id,
        "a new profile, not the old one"
    );
}

/// Reads the whole chain and checks it links up: numbers from 1 without gaps, the first record
/// after the genesis hash, each one after the hash of the one before, each hash matching its
/// record's fields. Returns the chain.
pub async fn verified_chain(store: &DynStore) -> Vec<rapport_core::AuditRecord> {
    let all = store
        .audit_records(AuditQuery {
            ascending: true,
            limit: 100_000,
            ..Default::default()
        })
        .await
        .expect("read the chain");
    let mut prev = GENESIS_HASH.to_owned();
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.seq, i as i64 + 1, "sequence has no gaps: {r:?}");
        assert_eq!(r.prev_hash, prev, "record {} names the one before", r.seq);
        assert_eq!(r.hash, r.compute_hash(), "record {} is intact", r.seq);
        prev.clone_from(&r.hash);
    }
    all
}

/// Many writers appending at once, directly and through merges and consent changes, still
/// make one chain.
pub async fn concurrent_appenders_keep_one_chain(store: DynStore) {
    let ws = ws(&store).await;
    const APPENDERS: usize = 6;
    const ROUNDS: usize = 8;
    let mut tasks = Vec::new();
    for t in 0..APPENDERS {
        let (store, ws) = (store.clone(), ws.clone());
        tasks.push(tokio::spawn(async move {
            let mut written = 0;
            for r in 0..ROUNDS {
                let batch: Vec<AuditEntry> = (0..=(r % 3))
                    .map(|i| entry(&ws, "profile.exported", &format!("prof_{t}_{r}_{i}")))
                    .collect();
                written += batch.len();
                let records = store.append_audit(batch).await.expect("append");
                for pair in records.windows(2) {
                    assert_eq!(
                        pair[1].seq,
                        pair[0].seq + 1,
                        "one call's records are adjacent"
                    );
                    assert_eq!(pair[1].prev_hash, pair[0].hash);
                }
            }
            written
        }));
    }
    for t in 0..2 {
        let (store, ws) = (store.clone(), ws.clone());
        tasks.push(tokio::spawn(async move {
            let mut written = 0;
            for r in 0..4 {
                let (anon, user) = (format!("cc-anon-{t}-{r}"), format!("cc-user-{t}-{r}"));
                let page = event(json!({"type": "page", "anonymousId": anon, "name": "Home",
                    "messageId": format!("cc-p-{t}-{r}")}))
                .with_standard(Standardized {
                    consents: vec![(purpose("analytics"), true)],
                    ..Default::default()
                });
                store
                    .ingest(
                        &ws,
                        vec![
                            page,
                            event(json!({"type": "identify", "userId": user,
                                "messageId": format!("cc-i-{t}-{r}")})),
                            event(json!({"type": "alias", "userId": user, "previousId": anon,
                                "messageId": format!("cc-a-{t}-{r}")})),
                        ],
                    )
                    .await
                    .expect("ingest");
                // One consent record and one merge record.
                written += 2;
                let id = profile_of(
                    &store,
                    &ws,
                    &Identifier::new(IdentifierKind::UserId, &user).expect("uid"),
                )
                .await;
                store
                    .record_consents(
                        &ws,
                        &id,
                        vec![ConsentChange {
                            purpose: purpose("profiling"),
                            state: ConsentState::Denied,
                            source: "api".into(),
                            at: Utc::now(),
                        }],
                        vec![entry(&ws, "consent.denied", id.as_str())],
                    )
                    .await
                    .expect("consent");
                written += 1;
            }
            written
        }));
    }
    let mut expected = 0;
    for t in tasks {
        expected += t.await.expect("task");
    }
    let chain = verified_chain(&store).await;
    assert_eq!(chain.len(), expected, "every append is in the chain once");
    assert_eq!(
        chain
            .iter()
            .filter(|r| r.action == "profile.merged")
            .count(),
        8
    );
}

/// Decisions: stored whole, listed newest first by profile (through redirects) and status,
/// changed only from the version read (so two approvers cannot both win), audited in the same
/// transaction, and gone with an erasure; requests for a person, one per profile.
pub async fn decisions_compare_and_set_and_go_with_erasure(store: DynStore) {
    use rapport_core::{DecisionRecord, DecisionStatus, Handoff};

    use crate::DecisionQuery;
    let ws = ws(&store).await;
    store
        .ingest(
            &ws,
            vec![
                event(
                    json!({"type": "identify", "anonymousId": "d-anon", "messageId": "dc-1",
                    "traits": {"email": "dora@example.com"}}),
                ),
                event(
                    json!({"type": "identify", "userId": "d-user", "messageId": "dc-2",
                    "traits": {"email": "dora.work@example.com"}}),
                ),
            ],
        )
        .await
        .expect("ingest");
    let anon = profile_of(&store, &ws, &email("dora@example.com")).await;
    let decision = |id: &str, profile: &ProfileId, status: DecisionStatus, minutes: i64| {
        let at = Utc::now() - Duration::minutes(minutes);
        DecisionRecord {
            id: id.into(),
            profile_id: profile.clone(),
            kind: "refund".into(),
            params: json!({"amount": 150, "currency": "EUR"}),
            status,
            explanation: "You were refunded 150 EUR because your order arrived broken.".into(),
            reasons: vec![],
            automated: false,
            requested_by: "key:key_test".into(),
            conversation_id: None,
            refusal: None,
            approval: None,
            created_at: at,
            updated_at: at,
            version: 0,
        }
    };
    let held = store
        .save_decision(
            &ws,
            decision("dec_a", &anon, DecisionStatus::PendingApproval, 5),
            None,
            vec![entry(&ws, "decision.held", "dec_a")],
        )
        .await
        .expect("save");
    assert_eq!(held.version, 1);
    store
        .save_decision(
            &ws,
            decision("dec_b", &anon, DecisionStatus::Executed, 1),
            None,
            vec![entry(&ws, "decision.executed", "dec_b")],
        )
        .await
        .expect("save");
    assert!(matches!(
        store
            .save_decision(
                &ws,
                decision("dec_a", &anon, DecisionStatus::Executed, 0),
                None,
                vec![]
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .save_decision(
                &ws,
                decision(
                    "dec_x",
                    &ProfileId::from_trusted("prof_nobody".into()),
                    DecisionStatus::Executed,
                    0
                ),
                None,
                vec![]
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    // Two approvers answer the same version: one wins, the other is told.
    let mut first = held.clone();
    first.status = DecisionStatus::Executed;
    let mut second = held.clone();
    second.status = DecisionStatus::Rejected;
    let won = store
        .save_decision(
            &ws,
            first,
            Some(1),
            vec![entry(&ws, "decision.approved", "dec_a")],
        )
        .await
        .expect("first answer");
    assert_eq!(won.version, 2);
    assert!(matches!(
        store
            .save_decision(
                &ws,
                second,
                Some(1),
                vec![entry(&ws, "decision.rejected", "dec_a")]
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    let stored = store
        .decision(&ws, "dec_a")
        .await
        .expect("read")
        .expect("there");
    assert_eq!(stored.status, DecisionStatus::Executed);
    // The anonymous profile merges into the user's: its decisions follow the redirect.
    store
        .ingest(
            &ws,
            vec![event(
                json!({"type": "alias", "userId": "d-user", "previousId": "d-anon",
                "messageId": "dc-3"}),
            )],
        )
        .await
        .expect("alias");
    let survivor = store
        .profile(&ws, &anon)
        .await
        .expect("read")
        .expect("resolves")
        .id;
    let listed = store
        .decisions(DecisionQuery {
            workspace: ws.clone(),
            profile: Some(survivor.clone()),
            status: None,
            limit: 10,
        })
        .await
        .expect("list");
    let ids: Vec<&str> = listed.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["dec_b", "dec_a"], "newest first, across the merge");
    let executed = store
        .decisions(DecisionQuery {
            workspace: ws.clone(),
            profile: None,
            status: Some(DecisionStatus::Executed),
            limit: 10,
        })
        .await
        .expect("list");
    assert_eq!(executed.len(), 2);
    // One request for a person per profile.
    let h = store
        .save_handoff(
            &ws,
            Handoff {
                profile_id: survivor.clone(),
                conversation_id: None,
                source: "why_page".into(),
                requested_at: Utc::now(),
                resolved_at: None,
            },
            vec![entry(&ws, "handoff.requested", survivor.as_str())],
        )
        .await
        .expect("handoff");
    assert_eq!(store.open_handoffs(&ws, 10).await.expect("open").len(), 1);
    let mut closed = h.clone();
    closed.resolved_at = Some(Utc::now());
    store
        .save_handoff(&ws, closed, vec![])
        .await
        .expect("close");
    assert!(store.open_handoffs(&ws, 10).await.expect("open").is_empty());
    assert!(store
        .handoff(&ws, &survivor)
        .await
        .expect("read")
        .expect("kept")
        .resolved_at
        .is_some());
    // The audit records of each save are in the chain.
    let held_audit = store
        .audit_records(AuditQuery {
            workspace: Some(ws.clone()),
            action_prefix: Some("decision.".into()),
            subject: None,
            from_seq: None,
            ascending: true,
            limit: 100,
        })
        .await
        .expect("audit");
    assert_eq!(
        held_audit.len(),
        3,
        "the losing approver's record was not written"
    );
    // Erasure takes the decisions and the request for a person with it.
    store
        .erase_profile(
            &ws,
            &survivor,
            ErasureOptions { tombstone: true },
            entry(&ws, "profile.erased", survivor.as_str()),
        )
        .await
        .expect("erase");
    assert!(store.decision(&ws, "dec_a").await.expect("read").is_none());
    assert!(store
        .decisions(DecisionQuery {
            workspace: ws.clone(),
            profile: None,
            status: None,
            limit: 10,
        })
        .await
        .expect("list")
        .is_empty());
    assert!(store.open_handoffs(&ws, 10).await.expect("open").is_empty());
}

/// Accounts change (role, password, disabled) with their audit record in the same
/// transaction; sessions live in the store, end on such a change, expire, and never reach a
/// disabled account.
pub async fn accounts_change_and_sessions_end(store: DynStore) {
    use crate::{SessionDraft, UserChange};
    use rapport_core::{KeyRole, Login};
    let ws = ws(&store).await;
    let everything = AuditQuery {
        limit: 10_000,
        ..AuditQuery::default()
    };
    let other = store
        .create_workspace(&WorkspaceName::parse("elsewhere").expect("name"))
        .await
        .expect("workspace");
    let login = Login::parse("lee").expect("login");
    let lee = store
        .create_user(&ws, &login, KeyRole::Agent, "hash-1")
        .await
        .expect("user");
    let session = |token: &str, minutes: i64| SessionDraft {
        token_hash: token.to_owned(),
        user_id: lee.id.clone(),
        expires_at: Utc::now() + Duration::minutes(minutes),
    };
    store.start_session(session("t1", 60)).await.expect("start");
    store
        .start_session(session("t-old", -1))
        .await
        .expect("start");
    let who = store.session_user("t1").await.expect("read").expect("live");
    assert_eq!(
        (who.id.as_str(), who.role),
        (lee.id.as_str(), KeyRole::Agent)
    );
    assert!(
        store.session_user("t-old").await.expect("read").is_none(),
        "expired"
    );
    assert!(store.session_user("nope").await.expect("read").is_none());

    // Another workspace cannot reach the account; nothing changes and nothing is audited.
    let before = store
        .audit_records(everything.clone())
        .await
        .expect("audit")
        .len();
    let change = UserChange {
        disabled: Some(true),
        ..UserChange::default()
    };
    assert!(matches!(
        store
            .update_user(
                &other.id,
                &lee.id,
                change.clone(),
                vec![entry(&other.id, "user.updated", "x")]
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .update_user(
                &ws,
                "usr_missing",
                change.clone(),
                vec![entry(&ws, "user.updated", "x")]
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store
            .audit_records(everything.clone())
            .await
            .expect("audit")
            .len(),
        before
    );
    assert!(store.session_user("t1").await.expect("read").is_some());

    // A new password ends the session and is stored.
    let changed = store
        .update_user(
            &ws,
            &lee.id,
            UserChange {
                password_hash: Some("hash-2".into()),
                ..UserChange::default()
            },
            vec![entry(&ws, "user.password_changed", &lee.id)],
        )
        .await
        .expect("password");
    assert_eq!(changed.password_hash, "hash-2");
    assert!(store.session_user("t1").await.expect("read").is_none());
    assert_eq!(
        store
            .audit_records(everything.clone())
            .await
            .expect("audit")
            .len(),
        before + 1
    );

    // Disabled: no session reaches the account, and enabling again keeps the role.
    store.start_session(session("t2", 60)).await.expect("start");
    let disabled = store
        .update_user(&ws, &lee.id, change, vec![])
        .await
        .expect("disable");
    assert!(disabled.disabled_at.is_some());
    assert!(store.session_user("t2").await.expect("read").is_none());
    store.start_session(session("t3", 60)).await.expect("start");
    assert!(
        store.session_user("t3").await.expect("read").is_none(),
        "a disabled account's session does not count"
    );
    let found = store.find_user(&login).await.expect("find").expect("kept");
    assert!(found.disabled_at.is_some());
    let enabled = store
        .update_user(
            &ws,
            &lee.id,
            UserChange {
                disabled: Some(false),
                ..UserChange::default()
            },
            vec![],
        )
        .await
        .expect("enable");
    assert!(enabled.disabled_at.is_none());
    assert!(
        store.session_user("t3").await.expect("read").is_some(),
        "enabling does not end sessions"
    );

    // A new role ends sessions too: the signed-in person keeps no rights they lost.
    let promoted = store
        .update_user(
            &ws,
            &lee.id,
            UserChange {
                role: Some(KeyRole::Supervisor),
                ..UserChange::default()
            },
            vec![],
        )
        .await
        .expect("role");
    assert_eq!(promoted.role, KeyRole::Supervisor);
    assert!(store.session_user("t3").await.expect("read").is_none());
    store.start_session(session("t4", 60)).await.expect("start");
    store.end_session("t4").await.expect("end");
    store
        .end_session("t4")
        .await
        .expect("ending twice is harmless");
    assert!(store.session_user("t4").await.expect("read").is_none());
}
