//! The store conformance suite on the embedded SQLite backend, plus SQLite-specific checks.

use std::sync::Arc;

use rapport_store::conformance::{self, event, DynStore};
use rapport_store::conformance_identity;
use rapport_store::sqlite::SqliteStore;
use rapport_store::Store;
use serde_json::json;

fn fresh() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path()).expect("open");
    (dir, Arc::new(store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_conformance_suite() {
    let dirs = std::sync::Mutex::new(Vec::new());
    conformance::run_all(|| {
        let (dir, store) = fresh();
        dirs.lock().expect("dirs").push(dir);
        async move { store as DynStore }
    })
    .await;
}

fn guards() -> Arc<dyn rapport_core::stitch::StitchPolicy> {
    Arc::new(
        rapport_identity::IdentityGuards::from_toml(conformance_identity::POLICY_TOML)
            .expect("the suite's guards are valid"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_identity_conformance_suite() {
    let dirs = std::sync::Mutex::new(Vec::new());
    conformance_identity::run_all(
        || {
            let (dir, store) = fresh();
            dirs.lock().expect("dirs").push(dir);
            async move { store as DynStore }
        },
        guards(),
    )
    .await;
}

/// Canonical ids are stable across restarts: a merged id resolves to the survivor after
/// reopening, and to itself after an unmerge and another reopening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_and_unmerged_ids_resolve_the_same_after_reopening() {
    use rapport_core::{Actor, AuditEntry, Identifier, IdentifierKind};
    let dir = tempfile::tempdir().expect("tempdir");
    let anon = Identifier::new(IdentifierKind::AnonymousId, "a-1").expect("id");
    let user = Identifier::new(IdentifierKind::UserId, "u-1").expect("id");
    let (older, newer) = {
        let store = SqliteStore::open(dir.path()).expect("open");
        store.set_stitch_policy(Some(guards()));
        let ws = store.list_workspaces().await.expect("ws")[0].id.clone();
        store
            .ingest(
                &ws,
                vec![
                    event(json!({"type": "page", "anonymousId": "a-1", "name": "Home"})),
                    event(json!({"type": "identify", "userId": "u-1", "traits": {"name": "U"}})),
                ],
            )
            .await
            .expect("ingest");
        let older = store
            .profile_by_identifier(&ws, &anon)
            .await
            .expect("read")
            .expect("p")
            .id;
        let newer = store
            .profile_by_identifier(&ws, &user)
            .await
            .expect("read")
            .expect("p")
            .id;
        store
            .ingest(
                &ws,
                vec![event(
                    json!({"type": "identify", "userId": "u-1", "anonymousId": "a-1"}),
                )],
            )
            .await
            .expect("merge");
        (older, newer)
    };
    {
        let store = SqliteStore::open(dir.path()).expect("reopen");
        let ws = store.list_workspaces().await.expect("ws")[0].id.clone();
        let p = store
            .profile(&ws, &newer)
            .await
            .expect("read")
            .expect("redirect");
        assert_eq!(p.id, older, "the merged id keeps resolving to the survivor");
        let entry = AuditEntry::new(
            Some(ws.clone()),
            Actor::System,
            "profile.unmerged",
            None,
            json!({}),
        );
        store
            .unmerge(&ws, &newer, Default::default(), entry)
            .await
            .expect("unmerge");
    }
    let store = SqliteStore::open(dir.path()).expect("reopen");
    let ws = store.list_workspaces().await.expect("ws")[0].id.clone();
    assert_eq!(
        store
            .profile(&ws, &newer)
            .await
            .expect("read")
            .expect("p")
            .id,
        newer
    );
    assert_eq!(
        store
            .profile(&ws, &older)
            .await
            .expect("read")
            .expect("p")
            .id,
        older
    );
    assert_eq!(
        store
            .profile_by_identifier(&ws, &user)
            .await
            .expect("read")
            .expect("p")
            .id,
        newer
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = SqliteStore::open(dir.path()).expect("open");
        let ws = store.list_workspaces().await.expect("ws")[0].id.clone();
        store
            .ingest(
                &ws,
                vec![event(
                    json!({"type": "identify", "userId": "u", "traits": {"name": "Kept"}}),
                )],
            )
            .await
            .expect("ingest");
    }
    let store = SqliteStore::open(dir.path()).expect("reopen");
    let ws = store.list_workspaces().await.expect("ws")[0].id.clone();
    let hits = store.search_profiles(&ws, "kept", 5).await.expect("search");
    assert_eq!(hits.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_commits_without_losing_any() {
    let (_dir, store) = fresh();
    let ws = store.list_workspaces().await.expect("ws")[0].id.clone();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (store, ws) = (store.clone(), ws.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let e = event(json!({"type": "track", "userId": format!("u{}", i % 5), "event": "X", "messageId": format!("{w}-{i}")}));
                store.ingest(&ws, vec![e]).await.expect("ingest");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(store.stats(&ws).await.expect("stats").events, 200);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(SqliteStore::open(dir.path()).expect("open"));
    let conn =
        rusqlite::Connection::open(rapport_store::sqlite::database_path(dir.path())).expect("raw");
    conn.pragma_update(None, "user_version", 999).expect("bump");
    drop(conn);
    let err = SqliteStore::open(dir.path()).expect_err("must refuse");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_by_another_process_is_seen_by_this_one() {
    // Two stores on one directory behave like two processes (each has its own writer thread
    // and its own identity cache).
    let dir = tempfile::tempdir().expect("tempdir");
    let a = SqliteStore::open(dir.path()).expect("open a");
    let b = SqliteStore::open(dir.path()).expect("open b");
    let ws = a.list_workspaces().await.expect("ws")[0].id.clone();
    a.ingest(
        &ws,
        vec![event(
            json!({"type": "page", "anonymousId": "x", "timestamp": "2025-01-01T00:00:00Z"}),
        )],
    )
    .await
    .expect("a1");
    a.ingest(
        &ws,
        vec![event(
            json!({"type": "identify", "userId": "u", "timestamp": "2025-01-02T00:00:00Z"}),
        )],
    )
    .await
    .expect("a2");
    b.ingest(&ws, vec![event(json!({"type": "alias", "previousId": "x", "userId": "u", "timestamp": "2025-01-03T00:00:00Z"}))])
        .await
        .expect("b merges");
    a.ingest(&ws, vec![event(json!({"type": "track", "userId": "u", "event": "After", "timestamp": "2025-01-04T00:00:00Z"}))])
        .await
        .expect("a3");
    let uid = rapport_core::Identifier::new(rapport_core::IdentifierKind::UserId, "u").expect("id");
    let p = a
        .profile_by_identifier(&ws, &uid)
        .await
        .expect("read")
        .expect("profile");
    assert_eq!(
        p.event_count, 4,
        "the event after the merge lands on the surviving profile"
    );
    let page = a
        .profile_events(&ws, &p.id, None, 10)
        .await
        .expect("events");
    assert_eq!(page.events.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_database_is_upgraded_and_keeps_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = rapport_store::sqlite::database_path(dir.path());
    {
        // A database as the first release left it, with a conversation and a message.
        let mut conn = rusqlite::Connection::open(&path).expect("raw");
        rapport_store::sqlite::schema::migrate_to(&mut conn, 1).expect("v1");
        conn.execute_batch(
            "INSERT INTO workspaces VALUES ('ws_00000000000000000000000000000001', 'default', 0);
             INSERT INTO profiles (id, workspace_id) VALUES ('prof_00000000000000000000000000000001', 'ws_00000000000000000000000000000001');
             INSERT INTO conversations VALUES ('conv_00000000000000000000000000000001', 'ws_00000000000000000000000000000001',
                 'prof_00000000000000000000000000000001', 'chat', 'Old one', 'open', 0, 0, 1);
             INSERT INTO messages (id, conversation_id, direction, author, text, sent_at)
                 VALUES ('msg_00000000000000000000000000000001', 'conv_00000000000000000000000000000001', 'inbound', 'customer', 'Hello from v1', 0);",
        )
        .expect("v1 rows");
    }
    let store = SqliteStore::open(dir.path()).expect("upgrade");
    let ws = store.list_workspaces().await.expect("ws")[0].id.clone();
    let conv =
        rapport_core::ConversationId::parse("conv_00000000000000000000000000000001").expect("id");
    let detail = store
        .conversation(&ws, &conv)
        .await
        .expect("read")
        .expect("still there");
    assert_eq!(detail.messages[0].text, "Hello from v1");
    assert!(detail.messages[0].analysis.is_none());
}

/// A contact as the upgrade tests compare it: decision, action, channel, time, outcome and
/// its time (times in milliseconds).
type ContactRow = (String, String, String, i64, Option<String>, Option<i64>);

fn contact_row(
    decision: &str,
    action: &str,
    channel: &str,
    at: i64,
    outcome: Option<&str>,
    outcome_at: Option<i64>,
) -> ContactRow {
    (
        decision.into(),
        action.into(),
        channel.into(),
        at,
        outcome.map(Into::into),
        outcome_at,
    )
}

/// The two contacts both upgrade tests write, newest first: an email offer without an
/// outcome, and a web offer the customer rejected.
fn upgraded_contacts() -> [ContactRow; 2] {
    [
        contact_row("dec_2", "upgrade", "email", 3000, None, None),
        contact_row(
            "dec_1",
            "fiber_discount",
            "web",
            1000,
            Some("rejected"),
            Some(2000),
        ),
    ]
}

/// Every contact of `prof` in the store's only workspace, newest first.
async fn contacts_of(store: &SqliteStore, prof: &str) -> Vec<ContactRow> {
    let ws = store.list_workspaces().await.expect("ws")[0].id.clone();
    store
        .nba_contacts(
            &ws,
            &rapport_core::ProfileId::from_trusted(prof.into()),
            rapport_core::time::from_millis(0),
        )
        .await
        .expect("contacts")
        .into_iter()
        .map(|c| {
            (
                c.decision_id,
                c.action_id,
                c.channel,
                rapport_core::time::to_millis(c.at),
                c.outcome,
                c.outcome_at.map(rapport_core::time::to_millis),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_of_a_version_14_database_move_to_the_customer_ordered_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = rapport_store::sqlite::database_path(dir.path());
    let (ws, prof) = (
        "ws_00000000000000000000000000000001",
        "prof_00000000000000000000000000000001",
    );
    {
        let mut conn = rusqlite::Connection::open(&path).expect("raw");
        rapport_store::sqlite::schema::migrate_to(&mut conn, 14).expect("v14");
        conn.execute_batch(&format!(
            "INSERT INTO workspaces VALUES ('{ws}', 'default', 0);
             INSERT INTO profiles (id, workspace_id) VALUES ('{prof}', '{ws}');
             INSERT INTO decisions VALUES ('dec_1', '{ws}', '{prof}', 'nba.retention', 'executed', 1000, NULL, 2, '{{}}');
             INSERT INTO decisions VALUES ('dec_2', '{ws}', '{prof}', 'nba.upsell', 'executed', 3000, NULL, 1, '{{}}');
             INSERT INTO nba_contacts VALUES ('dec_1', '{ws}', '{prof}', 'fiber_discount', 'web', 1000, 'rejected', 2000);
             INSERT INTO nba_contacts VALUES ('dec_2', '{ws}', '{prof}', 'upgrade', 'email', 3000, NULL, NULL);"
        ))
        .expect("v14 rows");
    }
    let store = SqliteStore::open(dir.path()).expect("upgrade");
    assert_eq!(contacts_of(&store, prof).await, upgraded_contacts());
}

/// Schema 20 keeps an offer's contact in its decision row. A version 19 database's contacts
/// move there with their outcomes and origins; a contact whose decision is missing stops the
/// upgrade with a clear error and leaves the database as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_of_a_version_19_database_move_into_their_decisions() {
    let (ws, prof, other) = (
        "ws_00000000000000000000000000000001",
        "prof_00000000000000000000000000000001",
        "prof_00000000000000000000000000000002",
    );
    let v19 = |orphan: bool| {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = rapport_store::sqlite::database_path(dir.path());
        let mut conn = rusqlite::Connection::open(&path).expect("raw");
        rapport_store::sqlite::schema::migrate_to(&mut conn, 19).expect("v19");
        conn.execute_batch(&format!(
            "INSERT INTO workspaces VALUES ('{ws}', 'default', 0);
             INSERT INTO profiles (id, workspace_id) VALUES ('{prof}', '{ws}'), ('{other}', '{ws}');
             INSERT INTO decisions (id, workspace_id, profile_id, kind, status, created_at, version, body, origin) VALUES
                 ('dec_1', '{ws}', '{prof}', 'nba.retention', 'executed', 1000, 2, '{{}}', '{other}'),
                 ('dec_2', '{ws}', '{prof}', 'nba.upsell', 'executed', 3000, 1, '{{}}', NULL),
                 ('dec_3', '{ws}', '{prof}', 'refund', 'executed', 4000, 1, '{{}}', NULL);
             INSERT INTO nba_contacts (workspace_id, profile_id, at, decision_id, action_id, channel, outcome, outcome_at, origin) VALUES
                 ('{ws}', '{prof}', 1000, 'dec_1', 'fiber_discount', 'web', 'rejected', 2000, '{other}'),
                 ('{ws}', '{prof}', 3000, 'dec_2', 'upgrade', 'email', NULL, NULL, NULL);"
        ))
        .expect("v19 rows");
        if orphan {
            conn.execute_batch(&format!(
                "INSERT INTO nba_contacts (workspace_id, profile_id, at, decision_id, action_id, channel)
                 VALUES ('{ws}', '{prof}', 5000, 'dec_gone', 'upgrade', 'sms');"
            ))
            .expect("orphan");
        }
        drop(conn);
        dir
    };

    let dir = v19(false);
    let store = SqliteStore::open(dir.path()).expect("upgrade");
    // The refund is a decision but no contact.
    assert_eq!(contacts_of(&store, prof).await, upgraded_contacts());
    drop(store);
    let conn =
        rusqlite::Connection::open(rapport_store::sqlite::database_path(dir.path())).expect("raw");
    let origin: Option<String> = conn
        .query_row(
            "SELECT origin FROM nba_contacts WHERE decision_id = 'dec_1'",
            [],
            |r| r.get(0),
        )
        .expect("origin");
    assert_eq!(origin.as_deref(), Some(other));

    let dir = v19(true);
    let err = SqliteStore::open(dir.path()).expect_err("an orphaned contact stops the upgrade");
    assert!(
        err.to_string().contains("contact names no decision"),
        "{err}"
    );
    let conn =
        rusqlite::Connection::open(rapport_store::sqlite::database_path(dir.path())).expect("raw");
    let (version, kept): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version), count(*) FROM nba_contacts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("still version 19");
    assert_eq!((version, kept), (19, 3));
}

/// Consents moved by a merge made before schema 17 carry no `origin`: an unmerge cannot tell
/// whose they were, and leaves them with the survivor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consents_moved_before_version_17_stay_with_the_survivor() {
    use rapport_core::{
        Actor, AuditEntry, ConsentChange, ConsentState, Identifier, IdentifierKind, Purpose,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path()).expect("open");
    let ws = store.list_workspaces().await.expect("ws")[0].id.clone();
    let of = |kind, v| Identifier::new(kind, v).expect("id");
    store
        .ingest(
            &ws,
            vec![
                event(json!({"type": "identify", "userId": "old-u"})),
                event(json!({"type": "page", "anonymousId": "old-v", "name": "Home"})),
            ],
        )
        .await
        .expect("ingest");
    let visitor = store
        .profile_by_identifier(&ws, &of(IdentifierKind::AnonymousId, "old-v"))
        .await
        .expect("read")
        .expect("visitor")
        .id;
    let change = ConsentChange {
        purpose: Purpose::parse("analytics").expect("purpose"),
        state: ConsentState::Granted,
        source: "api".into(),
        at: chrono::Utc::now(),
    };
    store
        .record_consents(&ws, &visitor, vec![change], vec![])
        .await
        .expect("consent");
    store
        .ingest(
            &ws,
            vec![event(
                json!({"type": "identify", "userId": "old-u", "anonymousId": "old-v"}),
            )],
        )
        .await
        .expect("merge");
    let survivor = store
        .profile_by_identifier(&ws, &of(IdentifierKind::UserId, "old-u"))
        .await
        .expect("read")
        .expect("survivor")
        .id;
    assert_ne!(survivor, visitor);
    // As a merge of an older release left it.
    let raw =
        rusqlite::Connection::open(rapport_store::sqlite::database_path(dir.path())).expect("raw");
    assert_eq!(
        raw.execute("UPDATE consents SET origin = NULL", [])
            .expect("forget"),
        1
    );
    drop(raw);
    let entry = AuditEntry::new(
        Some(ws.clone()),
        Actor::System,
        "profile.unmerged",
        None,
        json!({}),
    );
    let outcome = store
        .unmerge(&ws, &survivor, Default::default(), entry)
        .await
        .expect("unmerge");
    assert_eq!(outcome.restored, visitor);
    assert_eq!(outcome.consents_moved, 0);
    assert_eq!(store.consents(&ws, &survivor).await.expect("c").len(), 1);
    assert!(store.consents(&ws, &visitor).await.expect("c").is_empty());
}
