//! `rapport transfer` as a user runs it: a workspace populated through the API on SQLite is
//! copied to PostgreSQL and back, and every copy answers the API exactly as the original did.
//!
//! The round trip needs `RAPPORT_TEST_POSTGRES_URL`; without it the test says it is skipped,
//! except under `CI=true`, where that is a failure. Its PostgreSQL schema has a unique name and
//! is dropped when the test ends, passed or failed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::{json, Value};

fn rapport() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rapport"));
    for (k, _) in std::env::vars() {
        if k.starts_with("RAPPORT__") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "warn");
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    rapport()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run rapport")
}

/// A running `rapport serve`, killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = rapport()
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .expect("read line");
            if let Some(addr) = line.strip_prefix("Rapport listening on ") {
                break addr.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Self { child, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Http {
    rt: tokio::runtime::Runtime,
    inner: reqwest::Client,
}

impl Http {
    fn new() -> Self {
        Self {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            inner: reqwest::Client::new(),
        }
    }

    fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        key: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        self.rt.block_on(async {
            let mut r = self.inner.request(method, url).bearer_auth(key);
            if let Some(b) = body {
                r = r.json(b);
            }
            let r = r.send().await.expect("request");
            let s = r.status().as_u16();
            (s, r.json().await.unwrap_or(Value::Null))
        })
    }

    fn ok(&self, method: reqwest::Method, url: &str, key: &str, body: Option<&Value>) -> Value {
        let (s, v) = self.call(method, url, key, body);
        assert!((200..300).contains(&s), "{url}: {s} {v}");
        v
    }
}

fn key(dir: &Path, role: &str) -> String {
    let out = run(
        &[
            "keys",
            "create",
            "--role",
            role,
            "--data-dir",
            dir.to_str().expect("dir"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

use reqwest::Method as M;

struct Keys {
    write: String,
    admin: String,
}

/// The source's next-best-action catalog: one action any customer may be offered.
const CATALOG: &str = r#"
[control]
rate = 0.0

[[action]]
id = "apology_call"
kind = "service_recovery"
title = "a call back from our support lead"
value = 40
"#;

/// Customers with merged profiles, events, a conversation with analysed messages, consents,
/// decisions, a next-best-action offer with its outcome, a request for a person and an erased
/// customer. Returns the ids it made.
fn populate(c: &Http, base: &str, k: &Keys) -> BTreeMap<&'static str, String> {
    let post =
        |path: &str, body: Value| c.ok(M::POST, &format!("{base}{path}"), &k.write, Some(&body));
    post(
        "/v1/identify",
        json!({"userId": "tr-ada", "anonymousId": "tr-dev-1",
        "traits": {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0958"}}),
    );
    // An anonymous visitor with a history, then identified as Ada: a merge.
    post(
        "/v1/batch",
        json!({"batch": (0..6).map(|i| json!({"type": "track", "anonymousId": "tr-dev-2",
        "event": "Viewed Plan", "properties": {"plan": "fibre", "n": i}, "messageId": format!("tr-view-{i}")}))
        .collect::<Vec<_>>()}),
    );
    post(
        "/v1/identify",
        json!({"userId": "tr-ada", "anonymousId": "tr-dev-2"}),
    );
    post(
        "/v1/track",
        json!({"userId": "tr-ada", "event": "Order Completed",
        "properties": {"revenue": 42.5}, "messageId": "tr-order-1"}),
    );
    post(
        "/v1/identify",
        json!({"userId": "tr-bob", "traits": {"name": "Bob Byte", "email": "not-an-email"}}),
    );
    post(
        "/v1/identify",
        json!({"userId": "tr-eve", "traits": {"name": "Eve Erased", "email": "eve@example.com"}}),
    );
    let profile = |user: &str| {
        c.ok(
            M::GET,
            &format!("{base}/v1/profiles?user_id={user}"),
            &k.admin,
            None,
        )["id"]
            .as_str()
            .expect("id")
            .to_owned()
    };
    let (ada, bob, eve) = (profile("tr-ada"), profile("tr-bob"), profile("tr-eve"));
    // Routing: a queue and an agent, so Ada's conversation is queued and offered.
    c.ok(
        M::POST,
        &format!("{base}/v1/routing/queues"),
        &k.admin,
        Some(&json!({"id": "support"})),
    );
    c.ok(
        M::POST,
        &format!("{base}/v1/routing/agents"),
        &k.admin,
        Some(&json!({"id": "ana", "name": "Ana", "capacity": 2, "presence": "available"})),
    );
    let conv = post(
        "/v1/conversations",
        json!({"email": "ada@example.com", "channel": "chat",
        "subject": "Router not delivered"}),
    )["id"]
        .as_str()
        .expect("conversation")
        .to_owned();
    for text in [
        "It was due on Monday and has not arrived. This is the third time I write!",
        "My card 4111 1111 1111 1111 was charged twice, please refund me.",
    ] {
        let msg = post(
            &format!("/v1/conversations/{conv}/messages"),
            json!({"direction": "inbound", "author": "customer", "text": text}),
        );
        // An agent's correction of the intent read, and a model retrained from it.
        c.ok(
            M::POST,
            &format!(
                "{base}/v1/conversations/{conv}/messages/{}/intent-correction",
                msg["id"].as_str().expect("message id")
            ),
            &k.admin,
            Some(&json!({"intent": "billing_dispute"})),
        );
    }
    c.ok(
        M::POST,
        &format!("{base}/v1/intents/retrain"),
        &k.admin,
        None,
    );
    c.ok(
        M::PUT,
        &format!("{base}/v1/profiles/{ada}/consents"),
        &k.admin,
        Some(&json!({"consents": [
        {"purpose": "marketing_email", "state": "granted"},
        {"purpose": "personalization", "state": "granted"},
        {"purpose": "profiling", "state": "denied"}]})),
    );
    c.ok(
        M::PUT,
        &format!("{base}/v1/profiles/{ada}/consents"),
        &k.admin,
        Some(&json!({"consents": [
        {"purpose": "marketing_email", "state": "withdrawn"}]})),
    );
    c.ok(
        M::POST,
        &format!("{base}/v1/actions"),
        &k.admin,
        Some(&json!({"profile_id": ada, "kind": "refund",
        "params": {"amount": 30, "currency": "GBP"},
        "reasons": [{"code": "double_charge", "text": "you were charged twice"}]})),
    );
    c.ok(
        M::POST,
        &format!("{base}/v1/actions"),
        &k.admin,
        Some(&json!({"profile_id": ada, "kind": "message.service",
        "conversation_id": conv, "params": {"text": "Your router ships today."},
        "reasons": [{"code": "late_delivery", "text": "your delivery was late"}]})),
    );
    // A next-best-action offer (a decision with its contact) and its outcome (the action's
    // counts).
    let nba = c.ok(
        M::POST,
        &format!("{base}/v1/decisions/next-best-action"),
        &k.admin,
        Some(&json!({"profile_id": ada, "channel": "web", "context": {}})),
    );
    let offered = nba["ranked"]
        .as_array()
        .expect("ranked")
        .iter()
        .find(|r| r["offered"] == true)
        .unwrap_or_else(|| panic!("nothing offered: {nba}"));
    c.ok(
        M::POST,
        &format!(
            "{base}/v1/decisions/{}/outcome",
            offered["decision_id"].as_str().expect("decision id")
        ),
        &k.admin,
        Some(&json!({"outcome": "accepted"})),
    );
    c.ok(
        M::POST,
        &format!("{base}/v1/profiles/{bob}/handoff"),
        &k.admin,
        None,
    );
    c.ok(
        M::DELETE,
        &format!("{base}/v1/profiles/{eve}"),
        &k.admin,
        None,
    );
    BTreeMap::from([("ada", ada), ("bob", bob), ("eve", eve), ("conv", conv)])
}

/// What the API answers about the workspace, read-only calls only.
fn answers(
    c: &Http,
    base: &str,
    k: &Keys,
    ids: &BTreeMap<&'static str, String>,
) -> BTreeMap<String, Value> {
    let (ada, bob, eve, conv) = (&ids["ada"], &ids["bob"], &ids["eve"], &ids["conv"]);
    let mut out = BTreeMap::new();
    for path in [
        format!("/v1/profiles/{ada}"),
        format!("/v1/profiles/{bob}"),
        "/v1/profiles?email=ada@example.com".to_owned(),
        "/v1/profiles?anonymous_id=tr-dev-2".to_owned(),
        format!("/v1/profiles/{ada}/events?limit=50"),
        format!("/v1/profiles/{ada}/merges"),
        format!("/v1/profiles/{ada}/conversations"),
        format!("/v1/profiles/{ada}/consents"),
        format!("/v1/profiles/{ada}/decisions"),
        format!("/v1/conversations/{conv}"),
        "/v1/profiles/search?q=ada".to_owned(),
        "/v1/stats".to_owned(),
        "/v1/decisions".to_owned(),
        "/v1/handoffs".to_owned(),
        "/v1/audit?limit=200".to_owned(),
        "/v1/intents/corrections".to_owned(),
        "/v1/intents/models".to_owned(),
    ] {
        let (s, v) = c.call(M::GET, &format!("{base}{path}"), &k.admin, None);
        out.insert(path, json!({"status": s, "body": v}));
    }
    // The erased customer stays gone.
    let (s, _) = c.call(M::GET, &format!("{base}/v1/profiles/{eve}"), &k.admin, None);
    out.insert("erased".into(), json!(s));
    let (s, _) = c.call(
        M::GET,
        &format!("{base}/v1/profiles?user_id=tr-eve"),
        &k.admin,
        None,
    );
    out.insert("erased by user id".into(), json!(s));
    out
}

/// The audit answer without the records a transfer itself adds.
fn without_transfer_records(mut a: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    if let Some(Value::Array(records)) = a
        .get_mut("/v1/audit?limit=200")
        .and_then(|v| v.get_mut("body"))
        .and_then(|b| b.get_mut("records"))
    {
        records.retain(|r| r["action"] != "workspace.transferred");
    }
    a
}

/// The per-table lines of a transfer's output: table -> (source rows, target rows, source
/// checksum, target checksum, match).
fn table_lines(out: &str) -> BTreeMap<String, Vec<String>> {
    out.lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|w| w.len() == 6 && (w[5] == "yes" || w[5] == "NO") && w[0] != "table")
        .map(|w| (w[0].clone(), w[1..].to_vec()))
        .collect()
}

const PG_URL_VAR: &str = "RAPPORT_TEST_POSTGRES_URL";

fn postgres_url(test: &str) -> Option<String> {
    match std::env::var(PG_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{PG_URL_VAR} is not set, but CI=true: CI must run the PostgreSQL tests"
            );
            eprintln!("skipped {test}: set {PG_URL_VAR} to run it against PostgreSQL");
            None
        }
    }
}

/// Drops the test's PostgreSQL schema when the test ends, passed or not.
struct DropSchema {
    url: String,
    schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            match tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await {
                Ok((client, conn)) => {
                    tokio::spawn(conn);
                    if let Err(e) = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
                        .await
                    {
                        eprintln!("could not drop schema {}: {e}", self.schema);
                    }
                }
                Err(e) => eprintln!("could not connect to drop schema {}: {e}", self.schema),
            }
        });
    }
}

#[test]
fn a_workspace_goes_to_postgres_and_back_unchanged() {
    let Some(url) = postgres_url("a_workspace_goes_to_postgres_and_back_unchanged") else {
        return;
    };
    let schema = format!("rapport_transfer_{}", uuid_like());
    let _cleanup = DropSchema {
        url: url.clone(),
        schema: schema.clone(),
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (a_str, b_str) = (a.to_str().expect("a"), b.to_str().expect("b"));
    let keys = Keys {
        write: key(&a, "write"),
        admin: key(&a, "admin"),
    };
    let c = Http::new();

    let (ids, original) = {
        let catalog = tmp.path().join("catalog.toml");
        std::fs::write(&catalog, CATALOG).expect("catalog");
        let server = Server::start(
            &["serve", "--data-dir", a_str, "--addr", "127.0.0.1:0"],
            &[(
                "RAPPORT__DECISIONS__CATALOG",
                catalog.to_str().expect("catalog path"),
            )],
        );
        let ids = populate(&c, &server.base, &keys);
        (ids.clone(), answers(&c, &server.base, &keys, &ids))
    };
    assert_eq!(original["erased"], json!(404));
    // The refund, the service message and the next-best-action offer.
    assert!(
        original["/v1/decisions"]["body"]["decisions"]
            .as_array()
            .is_some_and(|d| d.len() == 3),
        "{}",
        original["/v1/decisions"]
    );

    // SQLite -> PostgreSQL.
    let sqlite_from = format!("sqlite:{a_str}");
    let to_pg = [
        "transfer",
        "--from",
        &sqlite_from,
        "--to",
        &url,
        "--to-schema",
        &schema,
    ];
    let out = run(&to_pg, &[]);
    let first = text(&out);
    assert!(out.status.success(), "{first}");
    let there = table_lines(&first);
    assert_eq!(there.len(), 32, "{first}");
    assert!(
        there
            .values()
            .all(|w| w[4] == "yes" && w[0] == w[1] && w[2] == w[3]),
        "{first}"
    );
    for (table, least) in [
        ("events", 8),
        ("merge_log", 1),
        ("messages", 3),
        ("consents", 3),
        ("tombstones", 1),
        ("erasures", 1),
        ("decisions", 3),
        ("nba_contacts", 1),
        ("nba_counts", 1),
        ("handoffs", 1),
        ("route_queues", 1),
        ("route_agents", 1),
        ("route_entries", 1),
        ("intent_corrections", 2),
        ("intent_models", 1),
        ("intent_active", 1),
        ("workspace_secrets", 1),
        ("api_keys", 2),
        ("audit_log", 8),
    ] {
        let rows: u64 = there[table][0].parse().expect("count");
        assert!(rows >= least, "{table} has {rows} rows: {first}");
    }
    assert!(first.contains("intact"), "{first}");

    // A second copy into the same target is refused, and says how to overwrite.
    let out = run(&to_pg, &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("already holds workspace default"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("--replace"), "{}", text(&out));

    let pg_env = [
        ("RAPPORT__STORAGE__BACKEND", "postgres"),
        ("RAPPORT__STORAGE__URL", url.as_str()),
        ("RAPPORT__STORAGE__SCHEMA", schema.as_str()),
    ];
    let out = run(&["audit", "verify"], &pg_env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("the chain is intact"), "{}", text(&out));

    // The copy answers as the original, with the original's keys.
    {
        let server = Server::start(&["serve", "--addr", "127.0.0.1:0"], &pg_env);
        let on_pg = answers(&c, &server.base, &keys, &ids);
        assert_eq!(without_transfer_records(on_pg), original);
    }

    // PostgreSQL -> SQLite.
    let sqlite_to = format!("sqlite:{b_str}");
    let out = run(
        &[
            "transfer",
            "--from",
            &url,
            "--from-schema",
            &schema,
            "--to",
            &sqlite_to,
            "--workspace",
            "default",
        ],
        &[],
    );
    let second = text(&out);
    assert!(out.status.success(), "{second}");
    let back = table_lines(&second);
    assert!(back.values().all(|w| w[4] == "yes"), "{second}");
    // Every table but the audit log holds exactly what the original did; the audit log holds
    // the original's records and the first transfer's.
    for (table, w) in &there {
        if table == "audit_log" {
            let (n0, n1): (u64, u64) =
                (w[0].parse().expect("n"), back[table][1].parse().expect("n"));
            assert_eq!(n1, n0 + 1, "{first}\n{second}");
        } else {
            assert_eq!(w[2], back[table][3], "{table}: {first}\n{second}");
        }
    }
    let out = run(&["audit", "verify", "--data-dir", b_str], &[]);
    assert!(out.status.success(), "{}", text(&out));

    let server = Server::start(
        &["serve", "--data-dir", b_str, "--addr", "127.0.0.1:0"],
        &[],
    );
    let round_trip = answers(&c, &server.base, &keys, &ids);
    assert_eq!(without_transfer_records(round_trip), original);
    // The tombstones kept their salt: a late event naming the erased customer is dropped.
    let late = c.ok(
        M::POST,
        &format!("{}/v1/identify", server.base),
        &keys.write,
        Some(&json!({"userId": "tr-eve", "traits": {"plan": "gold"}})),
    );
    assert_eq!(late["suppressed"], 1, "{late}");
}

#[test]
fn bad_stores_are_named_clearly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let missing = tmp.path().join("nothing-here");
    let from = format!("sqlite:{}", missing.display());
    let to = format!("sqlite:{}", tmp.path().join("to").display());
    let out = run(&["transfer", "--from", &from, "--to", &to], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no Rapport store to copy from"),
        "{}",
        text(&out)
    );
    assert!(!missing.exists(), "a missing source must not be created");

    for (bad, says) in [
        (
            "postgres://rapport:hunter2@[::1/db",
            "is not a PostgreSQL connection URL",
        ),
        (
            "mysql://rapport:hunter2@db/x",
            "neither sqlite:DATA_DIR nor a postgres:// URL",
        ),
        ("sqlite:", "names no directory"),
    ] {
        let out = run(&["transfer", "--from", &to, "--to", bad], &[]);
        assert!(!out.status.success(), "{bad}");
        assert!(text(&out).contains(says), "{bad}: {}", text(&out));
        assert!(!text(&out).contains("hunter2"), "{bad}: {}", text(&out));
    }

    // A workspace the source does not have.
    let src = tmp.path().join("src");
    let out = run(
        &[
            "workspaces",
            "list",
            "--data-dir",
            src.to_str().expect("src"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = run(
        &[
            "transfer",
            "--from",
            &format!("sqlite:{}", src.display()),
            "--to",
            &to,
            "--workspace",
            "nope",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("the source has no workspace nope"),
        "{}",
        text(&out)
    );

    // The same store on both sides.
    let out = run(&["transfer", "--from", &to, "--to", &to], &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("the same store"), "{}", text(&out));
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{}_{nanos}", std::process::id())
}
