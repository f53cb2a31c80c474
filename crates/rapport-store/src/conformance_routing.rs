//! The routing part of the store contract: queues, agents and queue entries, compare-and-set
//! on entries, one open entry per conversation, capacity never exceeded (also under
//! concurrent writers), workspace isolation, and entries going with an erasure. Run by
//! [`crate::conformance::run_all`].

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use rapport_core::routing::{
    EntryStatus, Presence, Priority, RouteAgent, RouteEntry, RouteQueue, Slug, Tier,
};
use rapport_core::{
    Actor, AuditEntry, ConversationChannel, CustomerRef, Identifier, IdentifierKind,
    NewConversation, WorkspaceId, WorkspaceName,
};
use serde_json::json;

use crate::conformance::DynStore;
use crate::{AuditQuery, ErasureOptions, StoreError};

use crate::conformance::default_ws as ws;

fn slug(s: &str) -> Slug {
    Slug::parse(s).expect("slug")
}

fn queue(id: &str, skills: &[&str]) -> RouteQueue {
    RouteQueue {
        id: slug(id),
        skills: skills.iter().map(|s| slug(s)).collect(),
        intents: BTreeSet::new(),
        human: false,
        created_at: Utc::now(),
    }
}

fn agent(id: &str, capacity: u32) -> RouteAgent {
    RouteAgent {
        id: slug(id),
        name: id.to_uppercase(),
        skills: BTreeSet::from([slug("billing")]),
        capacity,
        presence: Presence::Available,
        seniority: 2,
        updated_at: Utc::now(),
    }
}

fn waiting(conversation: &str, minutes_ago: i64) -> RouteEntry {
    let at = Utc::now() - Duration::minutes(minutes_ago);
    let priority = Priority {
        score: 1.5,
        tier: Tier::Normal,
        asked_for_human: false,
        parts: vec![],
        computed_at: at,
    };
    RouteEntry::new(
        conversation,
        "prf_x",
        slug("billing"),
        priority,
        at + Duration::hours(1),
        at,
    )
}

fn offered(mut e: RouteEntry, agent: &str) -> RouteEntry {
    e.status = EntryStatus::Offered;
    e.agent_id = Some(slug(agent));
    e.offered_at = Some(Utc::now());
    e.step(Utc::now(), "offered", Some(slug(agent)), "test".into());
    e
}

fn audit(ws: &WorkspaceId, subject: &str) -> AuditEntry {
    AuditEntry::new(
        Some(ws.clone()),
        Actor::System,
        "routing.offered",
        Some(subject.to_owned()),
        json!({}),
    )
}

pub async fn queues_agents_and_entries(store: DynStore) {
    let ws = ws(&store).await;
    let other = store
        .create_workspace(&WorkspaceName::parse("routing-other").expect("name"))
        .await
        .expect("workspace")
        .id;

    // Queues and agents are saved whole and replaced by id.
    store
        .save_route_queue(&ws, queue("billing", &["billing"]))
        .await
        .expect("queue");
    store
        .save_route_queue(&ws, queue("general", &[]))
        .await
        .expect("queue");
    let mut changed = queue("billing", &["billing", "de"]);
    changed.human = true;
    store
        .save_route_queue(&ws, changed.clone())
        .await
        .expect("replace");
    let queues = store.route_queues(&ws).await.expect("queues");
    assert_eq!(
        queues.iter().map(|q| q.id.as_str()).collect::<Vec<_>>(),
        ["billing", "general"]
    );
    assert_eq!(queues[0], changed);
    assert!(store.route_queues(&other).await.expect("other").is_empty());

    store
        .save_route_agent(&ws, agent("bo", 1))
        .await
        .expect("agent");
    let mut ana = agent("ana", 2);
    store
        .save_route_agent(&ws, ana.clone())
        .await
        .expect("agent");
    ana.presence = Presence::Away;
    store
        .save_route_agent(&ws, ana.clone())
        .await
        .expect("replace");
    let agents = store.route_agents(&ws).await.expect("agents");
    assert_eq!(agents.len(), 2);
    assert_eq!(agents[0], ana);
    assert!(store.route_agents(&other).await.expect("other").is_empty());

    // A new entry; a second open one for the same conversation is refused.
    let first = store
        .save_route_entry(&ws, waiting("cnv_1", 10), None, vec![])
        .await
        .expect("entry");
    assert_eq!(first.version, 1);
    assert!(matches!(
        store
            .save_route_entry(&ws, waiting("cnv_1", 5), None, vec![])
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .open_route_entry(&ws, "cnv_1")
            .await
            .expect("read")
            .as_ref(),
        Some(&first)
    );
    assert!(store
        .open_route_entry(&other, "cnv_1")
        .await
        .expect("read")
        .is_none());
    assert!(store
        .route_entry(&other, &first.id)
        .await
        .expect("read")
        .is_none());

    // Compare-and-set: the first writer wins, the stale one is refused.
    let about = || AuditQuery {
        subject: Some(first.id.clone()),
        limit: 10,
        ..Default::default()
    };
    assert!(store
        .audit_records(about())
        .await
        .expect("audit")
        .is_empty());
    let e1 = store
        .save_route_entry(
            &ws,
            offered(first.clone(), "bo"),
            Some(1),
            vec![audit(&ws, &first.id)],
        )
        .await
        .expect("offer");
    assert_eq!(e1.version, 2);
    assert_eq!(store.audit_records(about()).await.expect("audit").len(), 1);
    assert!(matches!(
        store
            .save_route_entry(&ws, offered(first.clone(), "ana"), Some(1), vec![])
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.route_entry(&ws, &first.id).await.expect("read"),
        Some(e1.clone())
    );

    // bo has capacity 1 and holds cnv_1: another offer to bo is refused, to nobody unknown.
    let second = store
        .save_route_entry(&ws, waiting("cnv_2", 8), None, vec![])
        .await
        .expect("entry");
    assert!(matches!(
        store
            .save_route_entry(&ws, offered(second.clone(), "bo"), Some(1), vec![])
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .save_route_entry(&ws, offered(second.clone(), "nobody"), Some(1), vec![])
            .await,
        Err(StoreError::NotFound(_))
    ));
    // Saving an entry bo already holds again (accepting it) is not a new assignment.
    let mut accepted = e1.clone();
    accepted.status = EntryStatus::Accepted;
    let accepted = store
        .save_route_entry(&ws, accepted, Some(2), vec![])
        .await
        .expect("accept");
    // Finishing frees the capacity; the conversation may be queued again.
    let mut done = accepted.clone();
    done.status = EntryStatus::Finished;
    done.finished_at = Some(Utc::now());
    store
        .save_route_entry(&ws, done, Some(3), vec![])
        .await
        .expect("finish");
    let second = store
        .save_route_entry(&ws, offered(second, "bo"), Some(1), vec![])
        .await
        .expect("room again");
    assert_eq!(second.agent_id, Some(slug("bo")));
    assert!(store
        .open_route_entry(&ws, "cnv_1")
        .await
        .expect("read")
        .is_none());
    store
        .save_route_entry(&ws, waiting("cnv_1", 1), None, vec![])
        .await
        .expect("queued again");

    // Open ones oldest first; all of them newest first.
    let open = store.route_entries(&ws, true, 10).await.expect("open");
    assert_eq!(
        open.iter()
            .map(|e| e.conversation_id.as_str())
            .collect::<Vec<_>>(),
        ["cnv_2", "cnv_1"]
    );
    let all = store.route_entries(&ws, false, 10).await.expect("all");
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].conversation_id, "cnv_1");
    assert_eq!(all[2].status, EntryStatus::Finished);
    assert_eq!(
        store
            .route_entries(&ws, false, 1)
            .await
            .expect("limit")
            .len(),
        1
    );
    assert!(store
        .route_entries(&other, false, 10)
        .await
        .expect("other")
        .is_empty());
}

pub async fn concurrent_offers_never_exceed_capacity(store: DynStore) {
    let ws = ws(&store).await;
    store
        .save_route_agent(&ws, agent("cy", 2))
        .await
        .expect("agent");
    let mut entries = Vec::new();
    for i in 0..8 {
        entries.push(
            store
                .save_route_entry(&ws, waiting(&format!("cnv_c{i}"), i), None, vec![])
                .await
                .expect("entry"),
        );
    }
    let tasks: Vec<_> = entries
        .into_iter()
        .map(|e| {
            let (store, ws) = (store.clone(), ws.clone());
            tokio::spawn(async move {
                store
                    .save_route_entry(&ws, offered(e, "cy"), Some(1), vec![])
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => won += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(won, 2);
    let held = store
        .route_entries(&ws, true, 100)
        .await
        .expect("open")
        .iter()
        .filter(|e| e.status.holds_agent())
        .count();
    assert_eq!(held, 2);
}

pub async fn entries_go_with_an_erasure(store: DynStore) {
    let ws = ws(&store).await;
    let email = Identifier::new(IdentifierKind::Email, "queued@example.com").expect("email");
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
    let kept = store
        .save_route_entry(&ws, waiting("cnv_someone_else", 3), None, vec![])
        .await
        .expect("entry");
    store
        .save_route_entry(&ws, waiting(conv.id.as_str(), 2), None, vec![])
        .await
        .expect("entry");
    store
        .erase_profile(
            &ws,
            &conv.profile_id,
            ErasureOptions::default(),
            audit(&ws, conv.profile_id.as_str()),
        )
        .await
        .expect("erase");
    assert!(store
        .open_route_entry(&ws, conv.id.as_str())
        .await
        .expect("read")
        .is_none());
    assert_eq!(
        store.route_entries(&ws, false, 10).await.expect("all"),
        vec![kept]
    );
}
