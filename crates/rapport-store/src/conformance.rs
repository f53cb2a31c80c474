//! The contract every [`Store`] implementation must meet, as runnable checks. A backend's
//! integration test calls [`run_all`] with a factory of fresh, empty stores.
//!
//! Events are built from Segment JSON here by hand (not through the ingest crate, which this
//! crate does not depend on) with [`event`].

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rapport_core::event::EventParts;
use rapport_core::time::parse_timestamp;
use rapport_core::{
    Author, Channel, ConversationChannel, CustomerRef, DataQualityIssue, Direction, Event,
    EventType, Identifier, IdentifierKind, KeyRole, MessageText, NewConversation, NewMessage,
    ProfileId, Standardized, WorkspaceId, WorkspaceName,
};
use serde_json::{json, Map, Value};

use crate::{EventCursor, Store, StoreError};

/// A store under test.
pub type DynStore = Arc<dyn Store>;

/// Runs every check, each on a fresh store from `make`. Panics on the first broken promise.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynStore>,
{
    workspaces(make().await).await;
    api_keys(make().await).await;
    users(make().await).await;
    alerts(make().await).await;
    identify_builds_a_profile(make().await).await;
    duplicates_apply_once(make().await).await;
    traits_merge_by_event_time(make().await).await;
    anonymous_activity_is_stitched(make().await).await;
    alias_merges_and_old_id_redirects(make().await).await;
    two_users_never_merge(make().await).await;
    workspaces_are_isolated(make().await).await;
    timeline_pages_cover_everything_once(make().await).await;
    search_by_name_and_email_prefix(make().await).await;
    conversations_and_messages(make().await).await;
    counts_and_stats(make().await).await;
    standardized_traits_and_quality_flags(make().await).await;
    merges_carry_standardized_values_and_flags(make().await).await;
    concurrent_writers_agree_on_one_profile(make().await).await;
    a_closed_store_refuses_writes(make().await).await;
    use crate::conformance_gov as gov;
    gov::consents_keep_history_and_follow_merges(make().await).await;
    gov::segment_consent_records_changes_only(make().await).await;
    gov::audit_chain_links_every_record(make().await).await;
    gov::merges_are_audited(make().await).await;
    gov::erasure_removes_the_customer_and_blocks_rebuilding(make().await).await;
    gov::erasure_without_tombstones_lets_the_customer_return(make().await).await;
    gov::concurrent_appenders_keep_one_chain(make().await).await;
    gov::decisions_compare_and_set_and_go_with_erasure(make().await).await;
    gov::accounts_change_and_sessions_end(make().await).await;
    use crate::conformance_routing as routing;
    routing::queues_agents_and_entries(make().await).await;
    routing::concurrent_offers_never_exceed_capacity(make().await).await;
    routing::entries_go_with_an_erasure(make().await).await;
    crate::conformance_nba::offers_outcomes_and_counts(make().await).await;
    crate::conformance_nba::offers_follow_a_merge(make().await).await;
    crate::conformance_models::model_versions_swap_and_features_follow(make().await).await;
    crate::conformance_intents::corrections_and_model_versions(make().await).await;
}

fn t(s: &str) -> DateTime<Utc> {
    parse_timestamp(s).expect("test timestamp")
}

/// A validated event from Segment-shaped JSON (`type`, `userId`, `anonymousId`, `messageId`,
/// `timestamp`, `traits`, `properties`, `context`, `event`, `name`, `previousId`).
pub fn event(v: Value) -> Event {
    let obj = v.as_object().expect("event object");
    let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
    let m = |k: &str| {
        obj.get(k)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let event_type = EventType::parse(&s("type").expect("type")).expect("known type");
    let context: Map<String, Value> = m("context");
    let channel = context
        .get("channel")
        .and_then(Value::as_str)
        .and_then(Channel::parse)
        .unwrap_or(match event_type {
            EventType::Page => Channel::Web,
            EventType::Screen => Channel::App,
            _ => Channel::Server,
        });
    let timestamp = s("timestamp").map(|x| t(&x)).unwrap_or_else(Utc::now);
    Event::new(EventParts {
        event_type,
        message_id: s("messageId").unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        user_id: s("userId").map(|u| Identifier::new(IdentifierKind::UserId, &u).expect("user id")),
        anonymous_id: s("anonymousId")
            .map(|a| Identifier::new(IdentifierKind::AnonymousId, &a).expect("anon id")),
        previous_id: s("previousId"),
        group_id: s("groupId"),
        name: s("event").or_else(|| s("name")),
        timestamp,
        received_at: Utc::now(),
        channel,
        traits: m("traits"),
        properties: m("properties"),
        context,
        body: v.clone(),
        standard: None,
    })
    .expect("valid test event")
}

/// The default workspace's id; every conformance check starts from it.
pub(crate) async fn default_ws(store: &DynStore) -> WorkspaceId {
    store
        .workspace_by_name(&WorkspaceName::default_workspace())
        .await
        .expect("read workspace")
        .expect("default workspace exists from the start")
        .id
}

/// The profile an identifier of `kind` with value `v` belongs to (it must exist).
pub(crate) async fn profile_of(
    store: &DynStore,
    ws: &WorkspaceId,
    kind: IdentifierKind,
    v: &str,
) -> ProfileId {
    let i = Identifier::new(kind, v).expect("identifier");
    store
        .profile_by_identifier(ws, &i)
        .await
        .expect("read")
        .expect("profile")
        .id
}

fn uid(v: &str) -> Identifier {
    Identifier::new(IdentifierKind::UserId, v).expect("user id")
}

pub async fn workspaces(store: DynStore) {
    default_ws(&store).await;
    let acme = WorkspaceName::parse("acme").expect("name");
    let ws = store.create_workspace(&acme).await.expect("create");
    assert_eq!(ws.name, acme);
    assert!(matches!(
        store.create_workspace(&acme).await,
        Err(StoreError::Conflict(_))
    ));
    let names: Vec<String> = store
        .list_workspaces()
        .await
        .expect("list")
        .into_iter()
        .map(|w| w.name.to_string())
        .collect();
    assert_eq!(names, ["acme", "default"]);
}

pub async fn api_keys(store: DynStore) {
    let ws = default_ws(&store).await;
    let rec = store
        .create_api_key(&ws, KeyRole::Admin, "hash-1", "rk_a_12")
        .await
        .expect("create key");
    let found = store
        .find_api_key("hash-1")
        .await
        .expect("find")
        .expect("present");
    assert_eq!(found, rec);
    assert_eq!(found.workspace_name.as_str(), "default");
    assert!(store.find_api_key("hash-2").await.expect("find").is_none());
    let missing = WorkspaceId::generate();
    assert!(matches!(
        store
            .create_api_key(&missing, KeyRole::Write, "hash-3", "x")
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn users(store: DynStore) {
    let ws = default_ws(&store).await;
    let other = store
        .create_workspace(&WorkspaceName::parse("other").unwrap())
        .await
        .expect("workspace");
    let ana = rapport_core::Login::parse("Ana@Example.com").unwrap();
    let rec = store
        .create_user(&ws, &ana, KeyRole::Supervisor, "$argon2id$fake")
        .await
        .expect("create user");
    let found = store.find_user(&ana).await.expect("find").expect("present");
    assert_eq!(found, rec);
    assert_eq!(found.password_hash, "$argon2id$fake");
    assert_eq!(found.workspace_name.as_str(), "default");
    // Logins are unique across workspaces, whatever their case when typed.
    let again = rapport_core::Login::parse("ana@example.COM").unwrap();
    assert!(matches!(
        store
            .create_user(&other.id, &again, KeyRole::Agent, "h")
            .await,
        Err(StoreError::Conflict(_))
    ));
    let bo = rapport_core::Login::parse("bo").unwrap();
    store
        .create_user(&other.id, &bo, KeyRole::Analyst, "h2")
        .await
        .expect("second user");
    let listed: Vec<String> = store
        .users(&ws)
        .await
        .expect("list")
        .into_iter()
        .map(|u| u.login.as_str().to_owned())
        .collect();
    assert_eq!(listed, ["ana@example.com"]);
    assert!(store
        .find_user(&rapport_core::Login::parse("nobody").unwrap())
        .await
        .expect("find")
        .is_none());
    assert!(matches!(
        store
            .create_user(&WorkspaceId::generate(), &bo, KeyRole::Admin, "h")
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn alerts(store: DynStore) {
    let ws = default_ws(&store).await;
    let other = store
        .create_workspace(&WorkspaceName::parse("other").unwrap())
        .await
        .expect("workspace");
    let mut first = rapport_core::Alert::new(
        "fairness.threshold",
        rapport_core::Severity::Warning,
        "Offers: demographic parity difference 0.31 > 0.2",
        Some("offers-by-age".into()),
        json!({"metric": "demographic_parity_difference", "value": 0.31, "limit": 0.2}),
    );
    first.created_at = t("2026-01-01T10:00:00Z");
    let mut second = rapport_core::Alert::new(
        "fairness.threshold",
        rapport_core::Severity::Critical,
        "second",
        None,
        json!({}),
    );
    second.created_at = t("2026-01-02T10:00:00Z");
    let audit_of = |id: &str| {
        vec![rapport_core::AuditEntry::new(
            Some(ws.clone()),
            rapport_core::Actor::System,
            "alert.raised",
            Some(id.to_owned()),
            json!({}),
        )]
    };
    store
        .add_alert(&ws, first.clone(), audit_of(&first.id))
        .await
        .expect("add");
    store
        .add_alert(&ws, second.clone(), audit_of(&second.id))
        .await
        .expect("add");
    let listed = store.alerts(&ws, false, 10).await.expect("list");
    assert_eq!(listed, vec![second.clone(), first.clone()], "newest first");
    assert!(store
        .alerts(&other.id, false, 10)
        .await
        .expect("list")
        .is_empty());
    let acked = store
        .acknowledge_alert(&ws, &first.id, "user:usr_1", vec![])
        .await
        .expect("ack");
    assert_eq!(acked.acknowledged_by.as_deref(), Some("user:usr_1"));
    let again = store
        .acknowledge_alert(&ws, &first.id, "user:usr_2", vec![])
        .await
        .expect("ack again");
    assert_eq!(again, acked, "a second acknowledgement changes nothing");
    let open = store.alerts(&ws, true, 10).await.expect("open");
    assert_eq!(
        open.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        [second.id.as_str()]
    );
    assert!(matches!(
        store
            .acknowledge_alert(&other.id, &second.id, "x", vec![])
            .await,
        Err(StoreError::NotFound(_))
    ));
    let audit = store
        .audit_records(crate::AuditQuery {
            workspace: Some(ws.clone()),
            action_prefix: Some("alert.".into()),
            subject: None,
            from_seq: None,
            ascending: false,
            limit: 10,
        })
        .await
        .expect("audit");
    assert_eq!(
        audit.len(),
        2,
        "each raise is audited in the same transaction"
    );
}

pub async fn identify_builds_a_profile(store: DynStore) {
    let ws = default_ws(&store).await;
    let summary = store
        .ingest(&ws, vec![
            event(json!({"type": "identify", "userId": "u1", "messageId": "m1", "timestamp": "2025-01-01T10:00:00Z",
                         "traits": {"name": "Ada Lovelace", "email": "Ada@Example.com", "phone": "+44 7700 900123", "plan": "pro"}})),
            event(json!({"type": "page", "userId": "u1", "messageId": "m2", "timestamp": "2025-01-02T10:00:00Z", "name": "Pricing"})),
            event(json!({"type": "track", "userId": "u1", "messageId": "m3", "timestamp": "2024-12-31T10:00:00Z", "event": "Order Completed",
                         "context": {"channel": "purchase"}})),
        ])
        .await
        .expect("ingest");
    assert_eq!((summary.applied, summary.duplicates), (3, 0));
    let p = store
        .profile_by_identifier(&ws, &uid("u1"))
        .await
        .expect("read")
        .expect("profile");
    assert_eq!(p.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(p.email.as_deref(), Some("ada@example.com"));
    assert_eq!(p.traits["plan"], "pro");
    assert_eq!(p.event_count, 3);
    assert_eq!(p.first_seen, Some(t("2024-12-31T10:00:00Z")));
    assert_eq!(p.last_seen, Some(t("2025-01-02T10:00:00Z")));
    assert_eq!(
        p.channels,
        [Channel::Web, Channel::Purchase, Channel::Server]
    );
    let ids: Vec<String> = p.identities.iter().map(ToString::to_string).collect();
    assert_eq!(
        ids,
        ["user_id:u1", "email:ada@example.com", "phone:+447700900123"]
    );
    let by_email = Identifier::new(IdentifierKind::Email, "ADA@example.com").expect("email");
    let again = store
        .profile_by_identifier(&ws, &by_email)
        .await
        .expect("read")
        .expect("by email");
    assert_eq!(again.id, p.id);
    let by_id = store
        .profile(&ws, &p.id)
        .await
        .expect("read")
        .expect("by id");
    assert_eq!(by_id, p);
}

pub async fn duplicates_apply_once(store: DynStore) {
    let ws = default_ws(&store).await;
    let e = json!({"type": "track", "userId": "u1", "messageId": "dup", "event": "X"});
    store
        .ingest(&ws, vec![event(e.clone())])
        .await
        .expect("first");
    let s = store
        .ingest(&ws, vec![event(e.clone()), event(e)])
        .await
        .expect("again");
    assert_eq!((s.applied, s.duplicates), (0, 2));
    let p = store
        .profile_by_identifier(&ws, &uid("u1"))
        .await
        .expect("read")
        .expect("profile");
    assert_eq!(p.event_count, 1);
}

pub async fn traits_merge_by_event_time(store: DynStore) {
    let ws = default_ws(&store).await;
    store
        .ingest(
            &ws,
            vec![event(
                json!({"type": "identify", "userId": "u", "timestamp": "2025-03-02T00:00:00Z",
                                         "traits": {"plan": "new", "city": "Paris"}}),
            )],
        )
        .await
        .expect("newer first");
    store
        .ingest(
            &ws,
            vec![event(
                json!({"type": "identify", "userId": "u", "timestamp": "2025-03-01T00:00:00Z",
                                         "traits": {"plan": "old", "country": "FR"}}),
            )],
        )
        .await
        .expect("older later");
    let p = store
        .profile_by_identifier(&ws, &uid("u"))
        .await
        .expect("read")
        .expect("profile");
    assert_eq!(
        p.traits["plan"], "new",
        "an older event must not overwrite a newer trait"
    );
    assert_eq!(p.traits["city"], "Paris");
    assert_eq!(
        p.traits["country"], "FR",
        "an older event still fills a trait nobody set later"
    );
}

pub async fn anonymous_activity_is_stitched(store: DynStore) {
    let ws = default_ws(&store).await;
    store
        .ingest(&ws, vec![
            event(json!({"type": "page", "anonymousId": "a1", "timestamp": "2025-01-01T00:00:00Z"})),
            event(json!({"type": "page", "anonymousId": "a1", "timestamp": "2025-01-01T00:01:00Z"})),
        ])
        .await
        .expect("anonymous");
    let anon = Identifier::new(IdentifierKind::AnonymousId, "a1").expect("anon");
    let before = store
        .profile_by_identifier(&ws, &anon)
        .await
        .expect("read")
        .expect("anon profile");
    store
        .ingest(&ws, vec![event(json!({"type": "identify", "userId": "u9", "anonymousId": "a1",
                                         "timestamp": "2025-01-01T00:02:00Z", "traits": {"name": "Grace Hopper"}}))])
        .await
        .expect("identify");
    store
        .ingest(&ws, vec![event(json!({"type": "track", "userId": "u9", "event": "Signed Up", "timestamp": "2025-01-01T00:03:00Z"}))])
        .await
        .expect("track");
    let after = store
        .profile_by_identifier(&ws, &uid("u9"))
        .await
        .expect("read")
        .expect("profile");
    assert_eq!(
        after.id, before.id,
        "the anonymous profile becomes the user's profile"
    );
    assert_eq!(after.event_count, 4);
    assert_eq!(after.first_seen, Some(t("2025-01-01T00:00:00Z")));
}

pub async fn alias_merges_and_old_id_redirects(store: DynStore) {
    let ws = default_ws(&store).await;
    store
        .ingest(&ws, vec![
            event(json!({"type": "track", "anonymousId": "old-anon", "event": "Viewed", "timestamp": "2025-01-01T00:00:00Z",
                         "context": {"traits": {"city": "Oslo"}}})),
            event(json!({"type": "identify", "userId": "u-new", "timestamp": "2025-01-02T00:00:00Z", "traits": {"name": "Linus"}})),
        ])
        .await
        .expect("two profiles");
    let anon = Identifier::new(IdentifierKind::AnonymousId, "old-anon").expect("anon");
    let older = store
        .profile_by_identifier(&ws, &anon)
        .await
        .expect("read")
        .expect("anon profile");
    let newer = store
        .profile_by_identifier(&ws, &uid("u-new"))
        .await
        .expect("read")
        .expect("user profile");
    assert_ne!(older.id, newer.id);
    store
        .ingest(&ws, vec![event(json!({"type": "alias", "userId": "u-new", "previousId": "old-anon", "timestamp": "2025-01-03T00:00:00Z"}))])
        .await
        .expect("alias");
    let merged = store
        .profile_by_identifier(&ws, &uid("u-new"))
        .await
        .expect("read")
        .expect("merged");
    assert_eq!(
        merged.id, older.id,
        "the older profile survives, so its id stays canonical"
    );
    assert_eq!(merged.traits["city"], "Oslo");
    assert_eq!(merged.traits["name"], "Linus");
    assert_eq!(merged.event_count, 3);
    assert_eq!(merged.merged_ids, std::slice::from_ref(&newer.id));
    let log = store.merges(&ws, &newer.id).await.expect("merge log");
    assert_eq!(log.len(), 1, "every merge is recorded");
    assert_eq!(
        (log[0].survivor.clone(), log[0].merged.clone()),
        (older.id.clone(), newer.id.clone())
    );
    assert_eq!(log[0].rule, "alias");
    assert_eq!(log[0].identifier_kinds, ["anonymous_id", "user_id"]);
    assert!(log[0].message_id.is_some());
    assert!(store
        .merges(&ws, &rapport_core::ProfileId::generate())
        .await
        .is_err());
    // An alias naming its own anonymous id as previousId names one identifier twice.
    let s = store
        .ingest(
            &ws,
            vec![event(
                json!({"type": "alias", "userId": "u-self", "anonymousId": "self-anon",
                                         "previousId": "self-anon"}),
            )],
        )
        .await
        .expect("alias to itself");
    assert_eq!(s.applied, 1);
    let own = store
        .profile_by_identifier(&ws, &uid("u-self"))
        .await
        .expect("read")
        .expect("profile");
    assert_eq!(own.identities.len(), 2);
    let redirected = store
        .profile(&ws, &newer.id)
        .await
        .expect("read")
        .expect("redirect");
    assert_eq!(
        redirected.id, older.id,
        "a merged id keeps resolving to the survivor"
    );
    let page = store
        .profile_events(&ws, &newer.id, None, 10)
        .await
        .expect("events via old id");
    assert_eq!(page.events.len(), 3);
}

pub async fn two_users_never_merge(store: DynStore) {
    let ws = default_ws(&store).await;
    store
        .ingest(
            &ws,
            vec![
                event(
                    json!({"type": "identify", "userId": "alice", "anonymousId": "shared-tablet"}),
                ),
                event(json!({"type": "identify", "userId": "bob", "anonymousId": "shared-tablet"})),
            ],
        )
        .await
        .expect("ingest");
    let a = store
        .profile_by_identifier(&ws, &uid("alice"))
        .await
        .expect("read")
        .expect("alice");
    let b = store
        .profile_by_identifier(&ws, &uid("bob"))
        .await
        .expect("read")
        .expect("bob");
    assert_ne!(a.id, b.id, "a shared device must not fuse two customers");
    assert!(b
        .identities
        .iter()
        .all(|i| i.kind() != IdentifierKind::AnonymousId || i.value() != "shared-tablet"));
}

pub async fn workspaces_are_isolated(store: DynStore) {
    let a = default_ws(&store).await;
    let b = store
        .create_workspace(&WorkspaceName::parse("other").expect("name"))
        .await
        .expect("ws")
        .id;
    store
        .ingest(&a, vec![event(json!({"type": "identify", "userId": "u1", "messageId": "same", "traits": {"name": "Only In A"}}))])
        .await
        .expect("ingest a");
    let in_a = store
        .profile_by_identifier(&a, &uid("u1"))
        .await
        .expect("read")
        .expect("in a");
    assert!(store
        .profile_by_identifier(&b, &uid("u1"))
        .await
        .expect("read")
        .is_none());
    assert!(store.profile(&b, &in_a.id).await.expect("read").is_none());
    assert!(matches!(
        store.profile_events(&b, &in_a.id, None, 10).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store
        .search_profiles(&b, "only", 10)
        .await
        .expect("search")
        .is_empty());
    assert!(store
        .recent_profiles(&b, 10)
        .await
        .expect("recent")
        .is_empty());
    let conv = store
        .open_conversation(
            &a,
            CustomerRef::Profile(in_a.id.clone()),
            NewConversation {
                channel: ConversationChannel::Chat,
                subject: None,
                opened_at: Utc::now(),
            },
        )
        .await
        .expect("conversation");
    assert!(store
        .conversation(&b, &conv.id)
        .await
        .expect("read")
        .is_none());
    assert!(matches!(
        store
            .open_conversation(
                &b,
                CustomerRef::Profile(in_a.id.clone()),
                NewConversation {
                    channel: ConversationChannel::Chat,
                    subject: None,
                    opened_at: Utc::now()
                }
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    let msg = NewMessage {
        direction: Direction::Inbound,
        author: Author::Customer,
        text: MessageText::parse("hi").expect("text"),
        sent_at: Utc::now(),
        external_id: None,
        analysis: None,
    };
    assert!(matches!(
        store.add_message(&b, &conv.id, msg).await,
        Err(StoreError::NotFound(_))
    ));
    // The same messageId in another workspace is a different event.
    let s = store
        .ingest(
            &b,
            vec![event(
                json!({"type": "identify", "userId": "u1", "messageId": "same"}),
            )],
        )
        .await
        .expect("ingest b");
    assert_eq!(s.applied, 1);
}

pub async fn timeline_pages_cover_everything_once(store: DynStore) {
    let ws = default_ws(&store).await;
    let base = t("2025-05-01T00:00:00Z");
    let events: Vec<Event> = (0..25)
        .map(|i| {
            // Two events share each timestamp, so ordering must break ties.
            let ts = base + Duration::minutes(i / 2);
            event(json!({"type": "track", "userId": "u", "event": format!("E{i}"), "messageId": format!("e{i}"),
                         "timestamp": rapport_core::time::format(ts)}))
        })
        .collect();
    store.ingest(&ws, events).await.expect("ingest");
    let p = store
        .profile_by_identifier(&ws, &uid("u"))
        .await
        .expect("read")
        .expect("profile");
    let mut seen = Vec::new();
    let mut cursor: Option<EventCursor> = None;
    loop {
        let page = store
            .profile_events(&ws, &p.id, cursor.as_ref(), 10)
            .await
            .expect("page");
        assert!(page.events.len() <= 10);
        seen.extend(
            page.events
                .iter()
                .map(|e| (e.timestamp, e.seq, e.message_id.clone())),
        );
        match page.next_cursor {
            Some(c) => cursor = Some(EventCursor::decode(&c).expect("cursor")),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    let mut ids: Vec<&String> = seen.iter().map(|s| &s.2).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 25, "no event twice");
    assert!(
        seen.windows(2).all(|w| (w[0].0, w[0].1) > (w[1].0, w[1].1)),
        "newest first"
    );
}

pub async fn search_by_name_and_email_prefix(store: DynStore) {
    let ws = default_ws(&store).await;
    store
        .ingest(&ws, vec![
            event(json!({"type": "identify", "userId": "1", "traits": {"first_name": "Marie", "last_name": "Curie", "email": "marie@example.org"}})),
            event(json!({"type": "identify", "userId": "2", "traits": {"name": "Pierre Curie", "email": "pc@example.org"}})),
            event(json!({"type": "identify", "userId": "3", "traits": {"name": "Ada King", "email": "ada@example.net"}})),
        ])
        .await
        .expect("ingest");
    let names = |v: Vec<crate::ProfileSummary>| {
        let mut n: Vec<String> = v.into_iter().filter_map(|p| p.name).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(store.search_profiles(&ws, "mar", 10).await.expect("s")),
        ["Marie Curie"]
    );
    assert_eq!(
        names(store.search_profiles(&ws, "CUR", 10).await.expect("s")),
        ["Marie Curie", "Pierre Curie"]
    );
    assert_eq!(
        names(store.search_profiles(&ws, "ada@", 10).await.expect("s")),
        ["Ada King"]
    );
    assert!(store
        .search_profiles(&ws, "zzz", 10)
        .await
        .expect("s")
        .is_empty());
    assert_eq!(
        store.recent_profiles(&ws, 2).await.expect("recent").len(),
        2
    );
}

pub async fn conversations_and_messages(store: DynStore) {
    let ws = default_ws(&store).await;
    let email = Identifier::new(IdentifierKind::Email, "new.customer@example.com").expect("email");
    let opened = t("2025-02-01T09:00:00Z");
    let conv = store
        .open_conversation(
            &ws,
            CustomerRef::Identifier(email.clone()),
            NewConversation {
                channel: ConversationChannel::Email,
                subject: Some("Router not delivered".into()),
                opened_at: opened,
            },
        )
        .await
        .expect("open for a new email");
    let profile = store
        .profile_by_identifier(&ws, &email)
        .await
        .expect("read")
        .expect("created");
    assert_eq!(conv.profile_id, profile.id);
    let msg =
        |text: &str, dir: Direction, author: Author, min: i64, ext: Option<&str>| NewMessage {
            direction: dir,
            author,
            text: MessageText::parse(text).expect("text"),
            sent_at: opened + Duration::minutes(min),
            external_id: ext.map(str::to_owned),
            analysis: (dir == Direction::Inbound)
                .then(|| json!({"sentiment": {"score": -0.5}, "model": {"name": "test"}})),
        };
    let (m1, created) = store
        .add_message(
            &ws,
            &conv.id,
            msg(
                "Where is my router?",
                Direction::Inbound,
                Author::Customer,
                0,
                Some("ext-1"),
            ),
        )
        .await
        .expect("m1");
    assert!(created);
    let (again, created) = store
        .add_message(
            &ws,
            &conv.id,
            msg(
                "Where is my router?",
                Direction::Inbound,
                Author::Customer,
                0,
                Some("ext-1"),
            ),
        )
        .await
        .expect("m1 again");
    assert!(!created);
    assert_eq!(again.id, m1.id);
    store
        .add_message(
            &ws,
            &conv.id,
            msg(
                "Sorry! It ships today.",
                Direction::Outbound,
                Author::Agent,
                5,
                None,
            ),
        )
        .await
        .expect("m2");
    let detail = store
        .conversation(&ws, &conv.id)
        .await
        .expect("read")
        .expect("detail");
    assert_eq!(detail.messages.len(), 2);
    assert_eq!(detail.conversation.message_count, 2);
    assert_eq!(
        detail.conversation.updated_at,
        opened + Duration::minutes(5)
    );
    assert_eq!(detail.messages[0].text, "Where is my router?");
    assert_eq!(
        detail.messages[0]
            .analysis
            .as_ref()
            .map(|a| &a["sentiment"]["score"]),
        Some(&json!(-0.5))
    );
    assert!(detail.messages[1].analysis.is_none());
    let convs = store
        .profile_conversations(&ws, &profile.id)
        .await
        .expect("list");
    assert_eq!(convs.len(), 1);
    let timeline = store
        .profile_events(&ws, &profile.id, None, 10)
        .await
        .expect("timeline");
    assert_eq!(
        timeline.events.len(),
        2,
        "messages appear on the customer's timeline"
    );
    assert!(timeline
        .events
        .iter()
        .all(|e| e.event_type == EventType::Message && e.channel == Channel::Email));
    let p = store
        .profile(&ws, &profile.id)
        .await
        .expect("read")
        .expect("profile");
    assert_eq!(p.channels, [Channel::Email]);
    assert!(matches!(
        store
            .add_message(
                &ws,
                &rapport_core::ConversationId::generate(),
                msg("x", Direction::Inbound, Author::Customer, 0, None)
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .open_conversation(
                &ws,
                CustomerRef::Profile(rapport_core::ProfileId::generate()),
                NewConversation {
                    channel: ConversationChannel::Chat,
                    subject: None,
                    opened_at: opened
                }
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store
            .recent_conversations(&ws, 5)
            .await
            .expect("recent")
            .len(),
        1
    );
}

pub async fn counts_and_stats(store: DynStore) {
    let ws = default_ws(&store).await;
    let now = Utc::now();
    let old = rapport_core::time::format(now - Duration::days(40));
    let recent = rapport_core::time::format(now - Duration::hours(1));
    store
        .ingest(&ws, vec![
            event(json!({"type": "page", "userId": "u", "timestamp": old})),
            event(json!({"type": "page", "userId": "u", "timestamp": recent})),
            event(json!({"type": "screen", "userId": "u", "timestamp": recent})),
            event(json!({"type": "track", "userId": "v", "event": "Call", "context": {"channel": "voice"}, "timestamp": recent})),
        ])
        .await
        .expect("ingest");
    let counts = store
        .channel_counts(&ws, now - Duration::days(7))
        .await
        .expect("counts");
    let total: i64 = counts.iter().map(|c| c.events).sum();
    assert_eq!(total, 3);
    assert!(counts
        .iter()
        .any(|c| c.channel == Channel::Voice && c.events == 1));
    let all = store
        .channel_counts(&ws, now - Duration::days(90))
        .await
        .expect("counts");
    assert_eq!(
        all.iter()
            .find(|c| c.channel == Channel::Web)
            .map(|c| c.events),
        Some(2)
    );
    let stats = store.stats(&ws).await.expect("stats");
    assert_eq!((stats.profiles, stats.events), (2, 4));
}

/// `event` with the identity stage's reading attached: `std` are the standardised traits and
/// `issues` (field, raw, code) the values it refused.
fn standardized(v: Value, std: Value, issues: &[(&str, &str, &str)]) -> Event {
    let traits = std.as_object().cloned().unwrap_or_default();
    let email = traits
        .get("email")
        .and_then(Value::as_str)
        .and_then(|e| Identifier::new(IdentifierKind::Email, e).ok());
    let phone = traits
        .get("phone")
        .and_then(Value::as_str)
        .and_then(|p| Identifier::new(IdentifierKind::Phone, p).ok());
    event(v).with_standard(Standardized {
        traits,
        issues: issues
            .iter()
            .map(|(field, raw, code)| DataQualityIssue {
                field: (*field).into(),
                raw: (*raw).into(),
                code: (*code).into(),
                problem: format!("{field} is not valid"),
            })
            .collect(),
        email,
        phone,
        consents: Vec::new(),
        external_ids: Vec::new(),
    })
}

fn flagged(p: &rapport_core::Profile) -> Vec<(&str, &str)> {
    p.data_quality
        .iter()
        .map(|i| (i.field.as_str(), i.raw.as_str()))
        .collect()
}

pub async fn standardized_traits_and_quality_flags(store: DynStore) {
    let ws = default_ws(&store).await;
    store
        .ingest(
            &ws,
            vec![standardized(
                json!({"type": "identify", "userId": "s1", "timestamp": "2025-01-10T00:00:00Z",
                       "traits": {"phone": "(202) 555-0143", "email": "not-an-email", "plan": "pro"}}),
                json!({"phone": "+12025550143", "email": null, "plan": "pro"}),
                &[("email", "not-an-email", "invalid_email")],
            )],
        )
        .await
        .expect("ingest");
    let p = store
        .profile_by_identifier(&ws, &uid("s1"))
        .await
        .expect("read")
        .expect("profile");
    assert_eq!(p.traits["phone"], "(202) 555-0143", "raw values are kept");
    assert_eq!(p.standardized_traits["phone"], "+12025550143");
    assert_eq!(
        p.standardized_traits["email"],
        Value::Null,
        "a refused value standardises to null"
    );
    assert_eq!(p.standardized_traits["plan"], "pro");
    assert_eq!(flagged(&p), [("email", "not-an-email")]);
    assert!(p
        .identities
        .iter()
        .any(|i| i.kind() == IdentifierKind::Phone && i.value() == "+12025550143"));

    // An older event setting the field validly neither overwrites the trait nor clears the
    // newer flag; a newer one does both.
    store
        .ingest(
            &ws,
            vec![standardized(
                json!({"type": "identify", "userId": "s1", "timestamp": "2025-01-01T00:00:00Z",
                       "traits": {"email": "old@example.com"}}),
                json!({"email": "old@example.com"}),
                &[],
            )],
        )
        .await
        .expect("older");
    let p = store
        .profile_by_identifier(&ws, &uid("s1"))
        .await
        .expect("read")
        .expect("profile");
    assert_eq!(p.traits["email"], "not-an-email");
    assert_eq!(flagged(&p), [("email", "not-an-email")]);
    store
        .ingest(
            &ws,
            vec![standardized(
                json!({"type": "identify", "userId": "s1", "timestamp": "2025-02-01T00:00:00Z",
                       "traits": {"email": "Fixed@Example.com", "zip": "??"}}),
                json!({"email": "fixed@example.com", "zip": null}),
                &[("zip", "??", "invalid_postal_code")],
            )],
        )
        .await
        .expect("newer");
    let p = store
        .profile_by_identifier(&ws, &uid("s1"))
        .await
        .expect("read")
        .expect("profile");
    assert_eq!(p.traits["email"], "Fixed@Example.com");
    assert_eq!(p.standardized_traits["email"], "fixed@example.com");
    assert_eq!(p.email.as_deref(), Some("fixed@example.com"));
    assert_eq!(flagged(&p), [("zip", "??")], "the email flag is cleared");
}

pub async fn merges_carry_standardized_values_and_flags(store: DynStore) {
    let ws = default_ws(&store).await;
    store
        .ingest(
            &ws,
            vec![
                standardized(
                    json!({"type": "identify", "userId": "m1", "timestamp": "2025-01-01T00:00:00Z",
                           "traits": {"country": "france"}}),
                    json!({"country": "FR"}),
                    &[],
                ),
                standardized(
                    json!({"type": "page", "anonymousId": "m-anon", "timestamp": "2025-01-02T00:00:00Z",
                           "context": {"traits": {"country": "united kingdom", "phone": "12"}}}),
                    json!({"country": "GB", "phone": null}),
                    &[("phone", "12", "invalid_phone")],
                ),
            ],
        )
        .await
        .expect("two profiles");
    store
        .ingest(
            &ws,
            vec![event(
                json!({"type": "alias", "userId": "m1", "previousId": "m-anon",
                                         "timestamp": "2025-01-03T00:00:00Z"}),
            )],
        )
        .await
        .expect("alias");
    let p = store
        .profile_by_identifier(&ws, &uid("m1"))
        .await
        .expect("read")
        .expect("profile");
    assert_eq!(p.merged_ids.len(), 1);
    assert_eq!(
        p.traits["country"], "united kingdom",
        "the later value wins the merge"
    );
    assert_eq!(
        p.standardized_traits["country"], "GB",
        "and brings its standardised value with it"
    );
    assert_eq!(p.standardized_traits["phone"], Value::Null);
    assert_eq!(flagged(&p), [("phone", "12")]);
}

/// Several writers (on PostgreSQL: several API nodes) ingesting for one new customer at the
/// same moment make one profile, and one `messageId` is applied once.
pub async fn concurrent_writers_agree_on_one_profile(store: DynStore) {
    let ws = default_ws(&store).await;
    const WRITERS: usize = 8;
    let race = |batch: fn(usize) -> Vec<Event>| {
        let (store, ws) = (store.clone(), ws.clone());
        async move {
            let tasks: Vec<_> = (0..WRITERS)
                .map(|i| {
                    let (store, ws) = (store.clone(), ws.clone());
                    tokio::spawn(async move { store.ingest(&ws, batch(i)).await })
                })
                .collect();
            let mut total = crate::IngestSummary::default();
            for t in tasks {
                let s = t.await.expect("task").expect("ingest");
                total.applied += s.applied;
                total.duplicates += s.duplicates;
            }
            total
        }
    };
    let s = race(|i| {
        vec![event(
            json!({"type": "identify", "userId": "racer", "anonymousId": format!("device-{i}"),
                   "traits": {"email": "racer@example.com"}}),
        )]
    })
    .await;
    assert_eq!(s.applied, WRITERS);
    let p = store
        .profile_by_identifier(&ws, &uid("racer"))
        .await
        .expect("read")
        .expect("profile");
    assert_eq!(store.stats(&ws).await.expect("stats").profiles, 1);
    assert_eq!(p.event_count, WRITERS as i64);
    assert_eq!(p.identities.len(), WRITERS + 2, "every device joined it");

    let s = race(|_| {
        vec![event(
            json!({"type": "track", "userId": "racer", "event": "Paid", "messageId": "pay-once"}),
        )]
    })
    .await;
    assert_eq!((s.applied, s.duplicates), (1, WRITERS - 1));

    // No user id: the shared new email alone must still stitch everyone into one profile.
    race(|i| {
        vec![event(
            json!({"type": "identify", "anonymousId": format!("visitor-{i}"),
                   "traits": {"email": "shared@example.com"}}),
        )]
    })
    .await;
    let email = Identifier::new(IdentifierKind::Email, "shared@example.com").expect("email");
    let q = store
        .profile_by_identifier(&ws, &email)
        .await
        .expect("read")
        .expect("profile");
    assert_eq!(q.event_count, WRITERS as i64);
    assert_eq!(store.stats(&ws).await.expect("stats").profiles, 2);
}

pub async fn a_closed_store_refuses_writes(store: DynStore) {
    let ws = default_ws(&store).await;
    store.close();
    assert!(matches!(
        store
            .ingest(
                &ws,
                vec![event(json!({"type": "identify", "userId": "late"}))]
            )
            .await,
        Err(StoreError::Unavailable(_))
    ));
}
