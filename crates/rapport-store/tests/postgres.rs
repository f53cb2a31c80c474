//! The store conformance suite on PostgreSQL, plus PostgreSQL-specific checks: migrations,
//! unreachable servers, and several nodes writing for the same customers at once.
//!
//! The server is named by `RAPPORT_TEST_POSTGRES_URL` (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`). Without it each test that needs a server says it
//! is skipped and passes, except under `CI=true`, where a missing server is a failure: CI must
//! test both backends. Each store lives in a schema of its own (`rapport_test_<uuid>`), dropped
//! when the test ends, so runs never see each other's data.
#![cfg(feature = "postgres")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rapport_core::{Identifier, IdentifierKind};
use rapport_store::conformance::{self, event, DynStore};
use rapport_store::conformance_identity;
use rapport_store::postgres::{schema::SCHEMA_VERSION, PostgresOptions, PostgresStore};
use rapport_store::{Store, StoreError};
use serde_json::json;

const URL_VAR: &str = "RAPPORT_TEST_POSTGRES_URL";

/// The test server's URL, or `None` (after saying so) when this run has none.
fn server_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{URL_VAR} is not set, but CI=true: CI must run the PostgreSQL store tests \
                 (start a server and set {URL_VAR})"
            );
            eprintln!("skipped {test}: set {URL_VAR} to run the PostgreSQL store tests");
            None
        }
    }
}

macro_rules! server_or_skip {
    ($test:literal) => {
        match server_url($test) {
            Some(url) => url,
            None => return,
        }
    };
}

/// Schemas made by one test, dropped when it ends, whether it passed or panicked.
struct Schemas {
    url: String,
    names: Mutex<Vec<String>>,
}

impl Schemas {
    fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            names: Mutex::new(Vec::new()),
        }
    }

    fn fresh(&self) -> String {
        let name = format!("rapport_test_{}", uuid::Uuid::new_v4().simple());
        self.names.lock().expect("names").push(name.clone());
        name
    }

    async fn open(&self, schema: &str) -> PostgresStore {
        PostgresStore::open(&self.url, schema, options())
            .await
            .expect("open PostgreSQL store")
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.names.lock().unwrap_or_else(|e| e.into_inner()));
        if names.is_empty() {
            return;
        }
        let url = self.url.clone();
        // Drop may run inside the test's runtime, which cannot be blocked on: use a thread
        // with a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .expect("connect for cleanup");
                tokio::spawn(conn);
                for name in names {
                    if let Err(e) = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await
                    {
                        eprintln!("could not drop test schema {name}: {e}");
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

fn options() -> PostgresOptions {
    PostgresOptions {
        pool_size: 8,
        connect_timeout: Duration::from_secs(10),
        ..PostgresOptions::default()
    }
}

async fn raw_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_conformance_suite() {
    let url = server_or_skip!("postgres_passes_the_conformance_suite");
    let schemas = Schemas::new(&url);
    conformance::run_all(|| async {
        let schema = schemas.fresh();
        Arc::new(schemas.open(&schema).await) as DynStore
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_identity_conformance_suite() {
    let url = server_or_skip!("postgres_passes_the_identity_conformance_suite");
    let schemas = Schemas::new(&url);
    let guards = Arc::new(
        rapport_identity::IdentityGuards::from_toml(conformance_identity::POLICY_TOML)
            .expect("the suite's guards are valid"),
    );
    conformance_identity::run_all(
        || async {
            let schema = schemas.fresh();
            Arc::new(schemas.open(&schema).await) as DynStore
        },
        guards,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_data_survives_reopening() {
    let url = server_or_skip!("migrations_are_idempotent_and_data_survives_reopening");
    let schemas = Schemas::new(&url);
    let schema = schemas.fresh();
    {
        let store = schemas.open(&schema).await;
        assert_eq!(
            store.schema_version().await.expect("version"),
            SCHEMA_VERSION
        );
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
        store.close();
    }
    let store = schemas.open(&schema).await;
    assert_eq!(
        store.schema_version().await.expect("version"),
        SCHEMA_VERSION
    );
    let workspaces = store.list_workspaces().await.expect("ws");
    assert_eq!(workspaces.len(), 1, "the default workspace is made once");
    let hits = store
        .search_profiles(&workspaces[0].id, "kept", 5)
        .await
        .expect("search");
    assert_eq!(hits.len(), 1);
    let client = raw_client(&url).await;
    let rows: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM {schema}.schema_version"),
            &[],
        )
        .await
        .expect("versions")
        .get(0);
    assert_eq!(rows, SCHEMA_VERSION, "each migration is recorded once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    let url = server_or_skip!("nodes_starting_together_migrate_once");
    let schemas = Schemas::new(&url);
    let schema = schemas.fresh();
    let (a, b, c) = tokio::join!(
        schemas.open(&schema),
        schemas.open(&schema),
        schemas.open(&schema)
    );
    for s in [&a, &b, &c] {
        assert_eq!(s.list_workspaces().await.expect("ws").len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let url = server_or_skip!("a_newer_schema_is_refused");
    let schemas = Schemas::new(&url);
    let schema = schemas.fresh();
    schemas.open(&schema).await.close();
    raw_client(&url)
        .await
        .batch_execute(&format!(
            "INSERT INTO {schema}.schema_version (version) VALUES (999)"
        ))
        .await
        .expect("bump");
    let err = PostgresStore::open(&url, &schema, options())
        .await
        .expect_err("must refuse");
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("newer")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_in_different_schemas_do_not_see_each_other() {
    let url = server_or_skip!("stores_in_different_schemas_do_not_see_each_other");
    let schemas = Schemas::new(&url);
    let a = schemas.open(&schemas.fresh()).await;
    let b = schemas.open(&schemas.fresh()).await;
    let ws_a = a.list_workspaces().await.expect("ws")[0].id.clone();
    a.ingest(
        &ws_a,
        vec![event(json!({"type": "identify", "userId": "only-a"}))],
    )
    .await
    .expect("ingest");
    let ws_b = b.list_workspaces().await.expect("ws")[0].id.clone();
    assert_ne!(ws_a, ws_b);
    assert_eq!(b.stats(&ws_b).await.expect("stats").events, 0);
}

/// No server is needed: nothing listens on port 1 of the loopback interface.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_typed_error_after_bounded_retries() {
    let started = Instant::now();
    let err = PostgresStore::open(
        "postgres://rapport@127.0.0.1:1/rapport",
        "rapport_unreachable",
        PostgresOptions {
            connect_timeout: Duration::from_millis(800),
            ..PostgresOptions::default()
        },
    )
    .await
    .expect_err("nothing listens there");
    let waited = started.elapsed();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("127.0.0.1:1")),
        "{err}"
    );
    assert!(
        waited >= Duration::from_millis(300),
        "it retried before giving up ({waited:?})"
    );
    assert!(waited < Duration::from_secs(10), "and gave up ({waited:?})");
}

#[tokio::test]
async fn bad_urls_and_schema_names_are_invalid_input() {
    for (url, schema) in [
        ("postgres://127.0.0.1:5432/x", "Bad-Name"),
        ("postgres://127.0.0.1:5432/x", "x; DROP TABLE y"),
        ("not a url at all ===", "rapport"),
    ] {
        let err = PostgresStore::open(url, schema, PostgresOptions::default())
            .await
            .expect_err("refused");
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    }
}

/// Two stores on one schema behave like two API nodes: separate pools, one database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_for_new_customers_make_one_profile_each() {
    let url = server_or_skip!("two_nodes_racing_for_new_customers_make_one_profile_each");
    let schemas = Schemas::new(&url);
    let schema = schemas.fresh();
    let nodes = [
        Arc::new(schemas.open(&schema).await),
        Arc::new(schemas.open(&schema).await),
    ];
    let ws = nodes[0].list_workspaces().await.expect("ws")[0].id.clone();
    const CUSTOMERS: usize = 20;
    const ROUNDS: usize = 3;
    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for w in 0..3 {
            let (node, ws) = (node.clone(), ws.clone());
            tasks.push(tokio::spawn(async move {
                for round in 0..ROUNDS {
                    // Each batch names every customer, by user id on one node and by email on
                    // the other, with a device of its own, so the nodes collide on every row.
                    let batch = (0..CUSTOMERS)
                        .map(|c| {
                            let device = format!("dev-{n}-{w}-{round}-{c}");
                            if n == 0 {
                                event(json!({"type": "identify", "userId": format!("cust-{c}"), "anonymousId": device,
                                             "traits": {"email": format!("cust-{c}@example.com")}}))
                            } else {
                                event(json!({"type": "track", "anonymousId": device, "event": "Seen",
                                             "context": {"traits": {"email": format!("cust-{c}@example.com")}}}))
                            }
                        })
                        .collect();
                    node.ingest(&ws, batch).await.expect("ingest");
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("task");
    }
    let stats = nodes[1].stats(&ws).await.expect("stats");
    assert_eq!(stats.events, (2 * 3 * ROUNDS * CUSTOMERS) as i64);
    assert_eq!(
        stats.profiles, CUSTOMERS as i64,
        "one profile per customer, whichever node saw them first"
    );
    for c in 0..CUSTOMERS {
        let email =
            Identifier::new(IdentifierKind::Email, &format!("cust-{c}@example.com")).expect("e");
        let p = nodes[0]
            .profile_by_identifier(&ws, &email)
            .await
            .expect("read")
            .expect("profile");
        assert_eq!(p.event_count, (2 * 3 * ROUNDS) as i64);
        assert!(p
            .identities
            .iter()
            .any(|i| i.kind() == IdentifierKind::UserId));
    }
}

/// A merge on one node while the other keeps sending events to the merged profile: every
/// event ends up on the survivor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_racing_a_merge_land_on_the_survivor() {
    let url = server_or_skip!("events_racing_a_merge_land_on_the_survivor");
    let schemas = Schemas::new(&url);
    let schema = schemas.fresh();
    let a = Arc::new(schemas.open(&schema).await);
    let b = Arc::new(schemas.open(&schema).await);
    let ws = a.list_workspaces().await.expect("ws")[0].id.clone();
    a.ingest(
        &ws,
        vec![
            event(json!({"type": "identify", "userId": "owner", "timestamp": "2025-01-01T00:00:00Z"})),
            event(json!({"type": "page", "anonymousId": "browser", "timestamp": "2025-01-02T00:00:00Z"})),
        ],
    )
    .await
    .expect("two profiles");
    const EVENTS: usize = 60;
    let sender = {
        let (b, ws) = (b.clone(), ws.clone());
        tokio::spawn(async move {
            for i in 0..EVENTS {
                b.ingest(
                    &ws,
                    vec![event(
                        json!({"type": "track", "anonymousId": "browser", "event": format!("E{i}")}),
                    )],
                )
                .await
                .expect("event");
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    a.ingest(
        &ws,
        vec![event(
            json!({"type": "alias", "userId": "owner", "previousId": "browser"}),
        )],
    )
    .await
    .expect("alias");
    sender.await.expect("sender");
    let owner = Identifier::new(IdentifierKind::UserId, "owner").expect("id");
    let p = a
        .profile_by_identifier(&ws, &owner)
        .await
        .expect("read")
        .expect("profile");
    assert_eq!(p.event_count, (3 + EVENTS) as i64);
    assert_eq!(p.merged_ids.len(), 1);
    let mut seen = 0;
    let mut cursor = None;
    loop {
        let page = a
            .profile_events(&ws, &p.id, cursor.as_ref(), 50)
            .await
            .expect("page");
        seen += page.events.len();
        match page.next_cursor {
            Some(c) => cursor = rapport_store::EventCursor::decode(&c),
            None => break,
        }
    }
    assert_eq!(seen, 3 + EVENTS, "no event stranded on the merged profile");
    assert_eq!(a.stats(&ws).await.expect("stats").profiles, 1);
}

/// Measures one 10,000-event batch on both backends. Timings do not belong in the test run:
/// `RAPPORT_TEST_POSTGRES_URL=... cargo test -p rapport-store --test postgres -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn measure_a_10k_event_batch_on_both_backends() {
    let url = server_or_skip!("measure_a_10k_event_batch_on_both_backends");
    let batch = |tag: &str| -> Vec<rapport_core::Event> {
        (0..10_000)
            .map(|i| {
                let c = i % 2_000;
                event(json!({"type": if i % 5 == 0 { "identify" } else { "track" },
                             "messageId": format!("{tag}-m{i}"), "event": "Viewed", "userId": format!("{tag}-u{c}"),
                             "anonymousId": format!("{tag}-a{c}"),
                             "traits": {"name": format!("Customer {c}"), "email": format!("{tag}-{c}@example.com"), "plan": "pro"},
                             "properties": {"path": "/pricing", "i": i}}))
            })
            .collect()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite: DynStore = rapport_store::open_sqlite(dir.path()).expect("sqlite");
    let schemas = Schemas::new(&url);
    let pg: DynStore = Arc::new(schemas.open(&schemas.fresh()).await);
    for (name, store) in [("sqlite", &sqlite), ("postgres", &pg)] {
        let ws = store.list_workspaces().await.expect("ws")[0].id.clone();
        for round in 0..3 {
            let events = batch(&format!("r{round}"));
            let started = Instant::now();
            let s = store.ingest(&ws, events).await.expect("ingest");
            let new = started.elapsed();
            let again = batch(&format!("r{round}"));
            let started = Instant::now();
            store.ingest(&ws, again).await.expect("ingest");
            let dup = started.elapsed();
            println!(
                "{name}: 10k events for 2k new customers in {new:?} ({} applied); the same batch again (all duplicates) in {dup:?}",
                s.applied
            );
        }
        // Many callers with one event each, as API nodes see them: 8 writers x 250 events.
        let started = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|w| {
                let (store, ws) = (store.clone(), ws.clone());
                tokio::spawn(async move {
                    for i in 0..250 {
                        let e = event(json!({"type": "track", "userId": format!("small-{}", (w * 250 + i) % 500),
                                             "event": "Clicked", "messageId": format!("small-{w}-{i}")}));
                        store.ingest(&ws, vec![e]).await.expect("ingest");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        println!(
            "{name}: 2,000 single-event calls from 8 concurrent writers in {:?}",
            started.elapsed()
        );
    }
}

fn erasure_entry(ws: &rapport_core::WorkspaceId, subject: &str) -> rapport_core::AuditEntry {
    rapport_core::AuditEntry::new(
        Some(ws.clone()),
        rapport_core::Actor::ApiKey("key_test".into()),
        "profile.erased",
        Some(subject.to_owned()),
        json!({}),
    )
}

/// Appenders on two nodes, starting from an empty log (where there is no newest record to
/// lock), together with merges and erasures that append from inside their own writes: one
/// gapless chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_appending_at_once_keep_one_chain() {
    let url = server_or_skip!("two_nodes_appending_at_once_keep_one_chain");
    let schemas = Schemas::new(&url);
    let schema = schemas.fresh();
    let nodes: [DynStore; 2] = [
        Arc::new(schemas.open(&schema).await),
        Arc::new(schemas.open(&schema).await),
    ];
    let ws = nodes[0].list_workspaces().await.expect("ws")[0].id.clone();
    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for t in 0..3 {
            let (node, ws) = (node.clone(), ws.clone());
            tasks.push(tokio::spawn(async move {
                let mut written = 0;
                for r in 0..10 {
                    let batch: Vec<_> = (0..=(r % 2))
                        .map(|i| erasure_entry(&ws, &format!("prof_{n}_{t}_{r}_{i}")))
                        .collect();
                    written += batch.len();
                    node.append_audit(batch).await.expect("append");
                }
                written
            }));
        }
        // Each node also merges and erases customers of its own.
        let (node, ws) = (node.clone(), ws.clone());
        tasks.push(tokio::spawn(async move {
            let mut written = 0;
            for r in 0..4 {
                let (anon, user) = (format!("mn-anon-{n}-{r}"), format!("mn-user-{n}-{r}"));
                node.ingest(
                    &ws,
                    vec![
                        event(json!({"type": "page", "anonymousId": anon, "name": "Home"})),
                        event(json!({"type": "identify", "userId": user})),
                        event(json!({"type": "alias", "userId": user, "previousId": anon})),
                    ],
                )
                .await
                .expect("ingest");
                let id = node
                    .profile_by_identifier(
                        &ws,
                        &Identifier::new(IdentifierKind::UserId, &user).expect("uid"),
                    )
                    .await
                    .expect("read")
                    .expect("profile")
                    .id;
                node.erase_profile(
                    &ws,
                    &id,
                    rapport_store::ErasureOptions::default(),
                    erasure_entry(&ws, id.as_str()),
                )
                .await
                .expect("erase");
                written += 2;
            }
            written
        }));
    }
    let mut expected = 0;
    for t in tasks {
        expected += t.await.expect("task");
    }
    let chain = rapport_store::conformance_gov::verified_chain(&nodes[1]).await;
    assert_eq!(chain.len(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_refuses_edits_through_sql() {
    let url = server_or_skip!("the_audit_log_refuses_edits_through_sql");
    let schemas = Schemas::new(&url);
    let schema = schemas.fresh();
    let store = schemas.open(&schema).await;
    let ws = store.list_workspaces().await.expect("ws")[0].id.clone();
    store
        .append_audit(vec![erasure_entry(&ws, "prof_x")])
        .await
        .expect("append");
    let client = raw_client(&url).await;
    for sql in [
        format!("UPDATE {schema}.audit_log SET action = 'edited'"),
        format!("DELETE FROM {schema}.audit_log"),
        format!("TRUNCATE {schema}.audit_log"),
    ] {
        let err = client.batch_execute(&sql).await.expect_err(&sql);
        assert!(
            err.as_db_error()
                .is_some_and(|e| e.message().contains("append-only")),
            "{sql}: {err}"
        );
    }
    let n: i64 = client
        .query_one(&format!("SELECT count(*) FROM {schema}.audit_log"), &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 1);
}

/// Rows of any table in `schema` whose text (every column, whatever its type, as PostgreSQL
/// prints the row) contains `needle`, ignoring case: `(table, rows)` for each table with any.
async fn find_everywhere(
    client: &tokio_postgres::Client,
    schema: &str,
    needle: &str,
) -> Vec<(String, i64)> {
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY 1",
            &[&schema],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(tables.len() >= 15, "the schema's tables: {tables:?}");
    let mut hits = Vec::new();
    for table in tables {
        let n: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {schema}.\"{table}\" AS r
                     WHERE strpos(lower(r::text), lower($1)) > 0"
                ),
                &[&needle],
            )
            .await
            .expect("search")
            .get(0);
        if n > 0 {
            hits.push((table, n));
        }
    }
    hits
}

/// After an erasure no query on any table of the schema finds the customer's identifiers,
/// name or words; and the tables were vacuumed. (What VACUUM leaves in the server's files is
/// documented on the store's erasure, not tested: it is not the store's to promise.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_customer_is_in_no_table() {
    use rapport_core::{
        Author, ConsentChange, ConsentState, ConversationChannel, CustomerRef, Direction,
        MessageText, NewConversation, NewMessage, Purpose, Standardized,
    };
    let url = server_or_skip!("an_erased_customer_is_in_no_table");
    let schemas = Schemas::new(&url);
    let schema = schemas.fresh();
    let store = schemas.open(&schema).await;
    let ws = store.list_workspaces().await.expect("ws")[0].id.clone();
    let analytics = Purpose::parse("analytics").expect("purpose");
    store
        .ingest(
            &ws,
            vec![
                event(json!({"type": "page", "anonymousId": "zq-anon-7", "name": "Pricing"}))
                    .with_standard(Standardized {
                        consents: vec![(analytics.clone(), true)],
                        ..Default::default()
                    }),
                event(json!({"type": "identify", "userId": "zq-user-7", "messageId": "zq-m-2",
                    "traits": {"name": "Quentin Zebulon", "email": "quentin.zebulon@example.com", "phone": "+1 555 0100 777"}})),
                event(json!({"type": "alias", "userId": "zq-user-7", "previousId": "zq-anon-7"})),
                event(json!({"type": "identify", "userId": "kept-user-7", "traits": {"name": "Kora Kept"}})),
            ],
        )
        .await
        .expect("ingest");
    let uid = Identifier::new(IdentifierKind::UserId, "zq-user-7").expect("uid");
    let id = store
        .profile_by_identifier(&ws, &uid)
        .await
        .expect("read")
        .expect("profile")
        .id;
    let conv = store
        .open_conversation(
            &ws,
            CustomerRef::Profile(id.clone()),
            NewConversation {
                channel: ConversationChannel::Email,
                subject: Some("Zebulon invoice dispute".into()),
                opened_at: chrono::Utc::now(),
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
                text: MessageText::parse("Quentin here, invoice 99173 is wrong").expect("text"),
                sent_at: chrono::Utc::now(),
                external_id: Some("zq-ext-1".into()),
                analysis: Some(json!({"summary": "Quentin disputes invoice 99173"})),
            },
        )
        .await
        .expect("message");
    store
        .record_consents(
            &ws,
            &id,
            vec![ConsentChange {
                purpose: Purpose::parse("marketing_email").expect("purpose"),
                state: ConsentState::Denied,
                source: "api".into(),
                at: chrono::Utc::now(),
            }],
            vec![],
        )
        .await
        .expect("consent");

    let needles = [
        "zq-anon-7",
        "zq-user-7",
        "quentin.zebulon@example.com",
        "Quentin Zebulon",
        "invoice 99173",
        "Zebulon invoice dispute",
        "zq-ext-1",
        "0100 777",
    ];
    let client = raw_client(&url).await;
    for n in needles {
        assert!(
            !find_everywhere(&client, &schema, n).await.is_empty(),
            "the search finds {n:?} before the erasure"
        );
    }
    let vacuums_before = vacuum_count(&client, &schema).await;
    let out = store
        .erase_profile(
            &ws,
            &id,
            rapport_store::ErasureOptions::default(),
            erasure_entry(&ws, id.as_str()),
        )
        .await
        .expect("erase");
    assert_eq!(
        out.erased_ids.len(),
        2,
        "the profile and the one merged into it"
    );
    assert!(
        !out.log_purged,
        "PostgreSQL's WAL is out of the store's reach"
    );
    for n in needles {
        let hits = find_everywhere(&client, &schema, n).await;
        assert!(hits.is_empty(), "{n:?} is still in {hits:?}");
    }
    assert!(
        !find_everywhere(&client, &schema, "Kora Kept")
            .await
            .is_empty(),
        "other customers stay"
    );
    // Statistics reach the view shortly after VACUUM ends.
    let deadline = Instant::now() + Duration::from_secs(5);
    while vacuum_count(&client, &schema).await <= vacuums_before {
        assert!(Instant::now() < deadline, "the erased tables were vacuumed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many times the events table of `schema` was vacuumed by hand.
async fn vacuum_count(client: &tokio_postgres::Client, schema: &str) -> i64 {
    client
        .query_one(
            "SELECT coalesce(sum(vacuum_count), 0)::int8 FROM pg_stat_user_tables
             WHERE schemaname = $1 AND relname = 'events'",
            &[&schema],
        )
        .await
        .expect("stats")
        .get(0)
}

/// One node erases a customer while another keeps sending events naming them: once the
/// erasure has committed, every later event is dropped, and the customer is not rebuilt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_racing_an_erasure_do_not_rebuild_the_customer() {
    let url = server_or_skip!("events_racing_an_erasure_do_not_rebuild_the_customer");
    let schemas = Schemas::new(&url);
    let schema = schemas.fresh();
    let a = Arc::new(schemas.open(&schema).await);
    let b = Arc::new(schemas.open(&schema).await);
    let ws = a.list_workspaces().await.expect("ws")[0].id.clone();
    a.ingest(
        &ws,
        vec![event(
            json!({"type": "identify", "userId": "gone", "anonymousId": "gone-device"}),
        )],
    )
    .await
    .expect("customer");
    let uid = Identifier::new(IdentifierKind::UserId, "gone").expect("uid");
    let id = a
        .profile_by_identifier(&ws, &uid)
        .await
        .expect("read")
        .expect("profile")
        .id;
    const EVENTS: usize = 60;
    let sender = {
        let (b, ws) = (b.clone(), ws.clone());
        tokio::spawn(async move {
            let mut after_erasure = Vec::new();
            for i in 0..EVENTS {
                let e = if i % 2 == 0 {
                    json!({"type": "track", "anonymousId": "gone-device", "event": format!("E{i}")})
                } else {
                    json!({"type": "track", "userId": "gone", "event": format!("E{i}")})
                };
                let s = b.ingest(&ws, vec![event(e)]).await.expect("event");
                after_erasure.push(s.suppressed == 1);
                assert_eq!(s.applied + s.suppressed, 1, "{s:?}");
            }
            after_erasure
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let out = a
        .erase_profile(
            &ws,
            &id,
            rapport_store::ErasureOptions::default(),
            erasure_entry(&ws, id.as_str()),
        )
        .await
        .expect("erase");
    let suppressed = sender.await.expect("sender");
    // Once one event is dropped, all later ones are: the tombstones are there for good.
    let first = suppressed.iter().position(|s| *s).unwrap_or(EVENTS);
    assert!(suppressed[first..].iter().all(|s| *s), "{suppressed:?}");
    assert!(
        first < EVENTS,
        "the erasure happened while events were sent"
    );
    for identifier in [
        uid,
        Identifier::new(IdentifierKind::AnonymousId, "gone-device").expect("anon"),
    ] {
        assert!(a
            .profile_by_identifier(&ws, &identifier)
            .await
            .expect("read")
            .is_none());
    }
    assert_eq!(a.stats(&ws).await.expect("stats").profiles, 0);
    assert_eq!(
        out.events as usize,
        1 + first,
        "the events applied before it went with it"
    );
}

/// Waits until `n` sessions wait for a lock held through `schema`'s profiles: the first waiter
/// on a row waits for the holder's transaction id, later ones for the row's tuple lock.
async fn wait_for_lock_waiters(
    client: &tokio_postgres::Client,
    schema: &str,
    holder: &str,
    n: i64,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND
                       ((locktype = 'transactionid' AND transactionid::text = $1)
                        OR (locktype = 'tuple' AND relation = '{schema}.profiles'::regclass))"
                ),
                &[&holder],
            )
            .await
            .expect("locks")
            .get(0);
        if waiting >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{waiting} of {n} waiters");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The narrow case of the race above, made certain: an ingest has read who owns an identifier
/// and waits for that profile's lock while an erasure of it commits. It must notice that the
/// profile is gone and start again, never write onto the erased profile: with tombstones the
/// event is dropped, without them it starts a new profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_queued_behind_an_erasure_never_writes_to_the_erased_profile() {
    let url =
        server_or_skip!("an_ingest_queued_behind_an_erasure_never_writes_to_the_erased_profile");
    for tombstone in [true, false] {
        ingest_queued_behind_erasure(&url, tombstone).await;
    }
}

async fn ingest_queued_behind_erasure(url: &str, tombstone: bool) {
    let schemas = Schemas::new(url);
    let schema = schemas.fresh();
    let a = Arc::new(schemas.open(&schema).await);
    let b = Arc::new(schemas.open(&schema).await);
    let ws = a.list_workspaces().await.expect("ws")[0].id.clone();
    a.ingest(
        &ws,
        vec![event(json!({"type": "identify", "userId": "queued"}))],
    )
    .await
    .expect("customer");
    let uid = Identifier::new(IdentifierKind::UserId, "queued").expect("uid");
    let id = a
        .profile_by_identifier(&ws, &uid)
        .await
        .expect("read")
        .expect("profile")
        .id;

    // A third session holds the profile's row lock, so the others queue in a known order.
    let mut holder = raw_client(url).await;
    let observer = raw_client(url).await;
    let tx = holder.transaction().await.expect("begin");
    let xid: String = tx
        .query_one(
            &format!("SELECT id, pg_current_xact_id()::text FROM {schema}.profiles WHERE id = $1 FOR UPDATE"),
            &[&id.as_str()],
        )
        .await
        .expect("lock")
        .get(1);
    let erasure = {
        let (a, ws, id) = (a.clone(), ws.clone(), id.clone());
        tokio::spawn(async move {
            a.erase_profile(
                &ws,
                &id,
                rapport_store::ErasureOptions { tombstone },
                erasure_entry(&ws, id.as_str()),
            )
            .await
            .expect("erase")
        })
    };
    wait_for_lock_waiters(&observer, &schema, &xid, 1).await;
    let ingest = {
        let (b, ws) = (b.clone(), ws.clone());
        tokio::spawn(async move {
            b.ingest(
                &ws,
                vec![event(
                    json!({"type": "track", "userId": "queued", "event": "Late"}),
                )],
            )
            .await
            .expect("ingest")
        })
    };
    wait_for_lock_waiters(&observer, &schema, &xid, 2).await;
    tx.rollback().await.expect("release");

    let erased = erasure.await.expect("erasure task");
    assert_eq!(erased.events, 1);
    let s = ingest.await.expect("ingest task");
    let orphans: i64 = observer
        .query_one(
            &format!(
                "SELECT count(*) FROM {schema}.events e
                 WHERE NOT EXISTS (SELECT 1 FROM {schema}.profiles p WHERE p.id = e.profile_id)"
            ),
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(
        orphans, 0,
        "no event was written for the erased profile (tombstone {tombstone})"
    );
    let now = a.profile_by_identifier(&ws, &uid).await.expect("read");
    if tombstone {
        assert_eq!((s.applied, s.suppressed), (0, 1), "{s:?}");
        assert!(now.is_none());
    } else {
        assert_eq!((s.applied, s.suppressed), (1, 0), "{s:?}");
        let p = now.expect("a new profile");
        assert_ne!(p.id, id);
        assert_eq!(p.event_count, 1);
    }
}
