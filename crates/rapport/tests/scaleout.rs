//! Scale-out mode under failure, as separate processes on the real NATS JetStream server:
//! `rapport serve --mode api` and `rapport worker`s sharing one store.
//!
//! Needs `RAPPORT_TEST_NATS_URL` (e.g. `nats://127.0.0.1:4222`); without it each test prints
//! why it is skipped and passes, except under `CI=true` where that is a failure. Each test runs
//! under its own bus prefix and deletes its streams and bucket at the end, failed or not.
//!
//! The store is a SQLite data directory shared by the processes; see [`StoreUnderTest`] for
//! the one place that moves these tests to PostgreSQL.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rapport_bus::{BusConfig, Envelope, NatsBus, Prefix};
use serde_json::{json, Value};

// --- Environment ----------------------------------------------------------------------------

fn nats_url(test: &str) -> Option<String> {
    match std::env::var("RAPPORT_TEST_NATS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("RAPPORT_TEST_NATS_URL is not set: CI must run the scale-out tests");
            }
            eprintln!("skipped {test}: RAPPORT_TEST_NATS_URL is not set");
            None
        }
    }
}

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

/// The bus settings every process of a test shares (short timings so failures heal fast).
fn bus_config(prefix: &Prefix) -> BusConfig {
    BusConfig {
        prefix: prefix.clone(),
        partitions: 8,
        lease_ttl: Duration::from_millis(1500),
        ack_wait: Duration::from_millis(2000),
        max_attempts: 3,
        publish_timeout: Duration::from_millis(2000),
        fetch_wait: Duration::from_millis(200),
        dedupe_window: Duration::from_secs(60),
        retention: Duration::from_secs(3600),
        replicas: 1,
    }
}

fn bus_env(url: &str, cfg: &BusConfig) -> Vec<(String, String)> {
    let ms = |d: Duration| d.as_millis().to_string();
    [
        ("BACKEND", "nats".to_owned()),
        ("URL", url.to_owned()),
        ("PREFIX", cfg.prefix.as_str().to_owned()),
        ("PARTITIONS", cfg.partitions.to_string()),
        ("LEASE_TTL_MS", ms(cfg.lease_ttl)),
        ("ACK_WAIT_MS", ms(cfg.ack_wait)),
        ("MAX_ATTEMPTS", cfg.max_attempts.to_string()),
        ("PUBLISH_TIMEOUT_MS", ms(cfg.publish_timeout)),
        ("FETCH_WAIT_MS", ms(cfg.fetch_wait)),
        (
            "DEDUPE_WINDOW_SECS",
            cfg.dedupe_window.as_secs().to_string(),
        ),
        ("RETENTION_HOURS", "1".to_owned()),
        ("WORKER_CONCURRENCY", "8".to_owned()),
        ("CONNECT_BACKOFF_MAX_MS", "1000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("RAPPORT__BUS__{k}"), v))
    .collect()
}

/// Deletes the bus of a prefix when dropped, so a failing test leaves nothing on the server.
struct BusCleanup {
    url: String,
    prefix: Prefix,
}

impl Drop for BusCleanup {
    fn drop(&mut self) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        match rt.block_on(NatsBus::delete_prefix(&self.url, &self.prefix)) {
            Ok(n) => eprintln!("deleted {n} streams of bus prefix {}", self.prefix),
            Err(e) => eprintln!("could not delete bus prefix {}: {e}", self.prefix),
        }
    }
}

// --- The store the processes share ------------------------------------------------------------

/// The store every process of a test opens. **The one place to switch these tests to
/// PostgreSQL**: when `RAPPORT_TEST_POSTGRES_URL` is set and the binary accepts
/// `storage.backend = "postgres"` (probed with `rapport config check`), the processes get
/// `RAPPORT__STORAGE__BACKEND/URL/SCHEMA` with a schema of their own, and the application order
/// is read back with `tokio-postgres`; otherwise they share a SQLite data directory.
enum StoreUnderTest {
    Sqlite { dir: tempfile::TempDir },
    Postgres { url: String, schema: String },
}

impl StoreUnderTest {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("dir");
        if let Ok(url) = std::env::var("RAPPORT_TEST_POSTGRES_URL") {
            let schema = format!("scaleout_{}", &uuid_like()[..12]);
            let env = Self::postgres_env(&url, &schema);
            let probe = rapport()
                .args(["config", "check"])
                .envs(env.iter().map(|(k, v)| (k, v)))
                .output()
                .expect("run rapport");
            if probe.status.success() {
                eprintln!("store under test: PostgreSQL, schema {schema}");
                return Self::Postgres { url, schema };
            }
            eprintln!("store under test: SQLite (this build has no PostgreSQL store yet)");
        }
        Self::Sqlite { dir }
    }

    fn postgres_env(url: &str, schema: &str) -> Vec<(String, String)> {
        vec![
            ("RAPPORT__STORAGE__BACKEND".into(), "postgres".into()),
            ("RAPPORT__STORAGE__URL".into(), url.into()),
            ("RAPPORT__STORAGE__SCHEMA".into(), schema.into()),
        ]
    }

    /// The store flags of every command: `--data-dir` for SQLite, none for PostgreSQL (its
    /// settings come from the environment).
    fn args(&self) -> Vec<String> {
        match self {
            Self::Sqlite { dir } => vec![
                "--data-dir".to_owned(),
                dir.path().to_str().expect("utf-8 dir").to_owned(),
            ],
            Self::Postgres { .. } => Vec::new(),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        match self {
            Self::Sqlite { .. } => Vec::new(),
            Self::Postgres { url, schema, .. } => Self::postgres_env(url, schema),
        }
    }

    /// Every applied event's messageId with its position in the store's application order.
    fn applied(&self) -> Vec<(String, i64)> {
        match self {
            Self::Sqlite { dir } => {
                let c = rusqlite::Connection::open(dir.path().join("rapport.db")).expect("db");
                let mut stmt = c
                    .prepare("SELECT message_id, seq FROM events ORDER BY seq")
                    .expect("query");
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .expect("rows")
                    .map(|r| r.expect("row"))
                    .collect()
            }
            Self::Postgres { url, schema } => pg(url, |client| async move {
                client
                    .query(
                        &format!("SELECT message_id, seq FROM {schema}.events ORDER BY seq"),
                        &[],
                    )
                    .await
                    .expect("query")
                    .into_iter()
                    .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
                    .collect()
            }),
        }
    }
}

/// Runs `f` with a PostgreSQL client on a runtime of its own.
fn pg<T, F, Fut>(url: &str, f: F) -> T
where
    F: FnOnce(tokio_postgres::Client) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect to PostgreSQL");
        tokio::spawn(conn);
        f(client).await
    })
}

impl Drop for StoreUnderTest {
    fn drop(&mut self) {
        if let Self::Postgres { url, schema } = self {
            let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            pg(url, |client| async move {
                if let Err(e) = client.batch_execute(&sql).await {
                    eprintln!("could not drop the test schema: {e}");
                }
            });
        }
    }
}

fn uuid_like() -> String {
    Prefix::unique("x").as_str()[1..].to_owned()
}

// --- Processes --------------------------------------------------------------------------------

/// What every process of a test gets: the store, the bus, its configuration.
#[derive(Clone)]
struct Env {
    store_args: Vec<String>,
    vars: Vec<(String, String)>,
}

impl Env {
    fn command(&self) -> Command {
        let mut c = rapport();
        c.envs(self.vars.iter().map(|(k, v)| (k, v)));
        c
    }

    fn key(&self, role: &str) -> String {
        let out = self
            .command()
            .args(["keys", "create", "--role", role])
            .args(&self.store_args)
            .output()
            .expect("run");
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    fn default_workspace(&self) -> String {
        let out = self
            .command()
            .args(["workspaces", "list"])
            .args(&self.store_args)
            .output()
            .expect("run");
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("default\t"))
            .expect("default workspace")
            .trim()
            .to_owned()
    }
}

/// A child process whose output is collected (for failure messages and "it said why" checks),
/// killed on drop.
struct Proc {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().expect("lines").push(l);
                }
            });
        }
        Self {
            name: name.to_owned(),
            child,
            lines,
        }
    }

    fn output(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// Waits until a line contains `needle`; panics with the output after `within`.
    fn wait_for(&mut self, needle: &str, within: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .expect("lines")
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before saying {needle:?}:\n{}",
                    self.name,
                    self.output()
                );
            }
            assert!(
                start.elapsed() < within,
                "{} did not say {needle:?} within {within:?}:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill_9(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (bounded) for a clean exit.
    fn terminate(&mut self, within: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn api_node(env: &Env, port: u16) -> Proc {
    let mut cmd = env.command();
    cmd.args([
        "serve",
        "--mode",
        "api",
        "--addr",
        &format!("127.0.0.1:{port}"),
    ])
    .args(&env.store_args);
    let mut p = Proc::spawn("api node", cmd);
    p.wait_for("Rapport listening on", Duration::from_secs(30));
    p
}

fn worker(env: &Env, id: &str) -> Proc {
    let mut cmd = env.command();
    cmd.args(["worker", "--id", id]).args(&env.store_args);
    Proc::spawn(id, cmd)
}

// --- HTTP ---------------------------------------------------------------------------------------

/// A small blocking HTTP client over reqwest's async one (the workspace builds reqwest
/// without its blocking feature).
struct Http {
    rt: tokio::runtime::Runtime,
    inner: reqwest::Client,
}

/// Status, `Retry-After`, JSON body (or `Null`), raw text; `None` on a connection error.
type Answer = Option<(u16, Option<String>, Value, String)>;

fn http() -> Http {
    Http {
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime"),
        inner: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
    }
}

impl Http {
    fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        self.rt.block_on(async {
            let r = req.send().await.ok()?;
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let text = r.text().await.unwrap_or_default();
            let json = serde_json::from_str(&text).unwrap_or(Value::Null);
            Some((status, retry, json, text))
        })
    }

    fn post(&self, url: &str, key: &str, body: &Value) -> Answer {
        self.send(self.inner.post(url).basic_auth(key, Some("")).json(body))
    }

    fn get(&self, url: &str, key: &str) -> Answer {
        self.send(self.inner.get(url).bearer_auth(key))
    }

    fn delete(&self, url: &str, key: &str) -> Answer {
        self.send(self.inner.delete(url).bearer_auth(key))
    }

    /// Makes a supervisor's account with the admin key and signs in to the dashboard with
    /// it; the session cookie.
    fn login(&self, base: &str, key: &str) -> String {
        let password = "a long enough password";
        let made = self.post(
            &format!("{base}/v1/users"),
            key,
            &json!({"login": "sam.supervisor", "role": "supervisor", "password": password}),
        );
        let status = made.as_ref().map(|a| a.0);
        assert!(matches!(status, Some(201 | 409)), "account made: {made:?}");
        self.rt.block_on(async {
            let r = self
                .inner
                .post(format!("{base}/login"))
                .form(&[("login", "sam.supervisor"), ("password", password)])
                .send()
                .await
                .expect("login");
            assert_eq!(r.status().as_u16(), 303, "signed in");
            let cookie = r
                .headers()
                .get("set-cookie")
                .and_then(|v| v.to_str().ok())
                .expect("session cookie");
            cookie.split(';').next().unwrap_or_default().to_owned()
        })
    }

    fn page(&self, url: &str, cookie: &str) -> Answer {
        self.send(self.inner.get(url).header("cookie", cookie))
    }
}

/// Posts until the answer is neither a connection error nor a 503, as a careful client does
/// (same body, so the same messageIds). Panics on any other refusal or after `deadline`.
fn post_until_accepted(
    c: &Http,
    url: &str,
    key: &str,
    body: &Value,
    deadline: Instant,
    retries: &AtomicUsize,
) -> Value {
    loop {
        match c.post(url, key, body) {
            Some((200, _, v, _)) => return v,
            Some((503, retry_after, v, _)) => {
                assert_eq!(v["code"], "bus_unavailable", "{v}");
                assert!(retry_after.is_some(), "a 503 says when to retry");
            }
            Some((s, _, v, _)) => panic!("{url} answered {s}: {v}"),
            None => {}
        }
        retries.fetch_add(1, Ordering::Relaxed);
        assert!(
            Instant::now() < deadline,
            "{url} never accepted the request"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stats_events(c: &Http, base: &str, admin: &str) -> Option<i64> {
    c.get(&format!("{base}/v1/stats"), admin)
        .filter(|a| a.0 == 200)
        .and_then(|a| a.2["events"].as_i64())
}

// --- Tests ----------------------------------------------------------------------------------

const CUSTOMERS: usize = 50;
const PER_CUSTOMER: usize = 60;
const CLIENTS: usize = 5;

fn message_id(customer: usize, seq: usize) -> String {
    format!("so-c{customer:02}-{seq:03}")
}

/// One API node and two workers; a worker is killed with SIGKILL mid-stream and comes back,
/// the API node is killed and restarted while clients keep sending. Every acknowledged event
/// must be applied exactly once, each customer's in the order it was accepted.
#[test]
fn acknowledged_events_are_applied_exactly_once_in_order_through_crashes() {
    let Some(url) =
        nats_url("acknowledged_events_are_applied_exactly_once_in_order_through_crashes")
    else {
        return;
    };
    let prefix = Prefix::unique("rso");
    let _cleanup = BusCleanup {
        url: url.clone(),
        prefix: prefix.clone(),
    };
    let store = StoreUnderTest::new();
    let mut vars = bus_env(&url, &bus_config(&prefix));
    vars.extend(store.env());
    let env = Env {
        store_args: store.args(),
        vars,
    };
    let write = env.key("write");
    let admin = env.key("admin");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");

    let mut api = api_node(&env, port);
    let mut w1 = worker(&env, "w1");
    let mut w2 = worker(&env, "w2");
    w1.wait_for("joined the event bus", Duration::from_secs(30));
    w2.wait_for("joined the event bus", Duration::from_secs(30));

    // Clients: each owns CUSTOMERS / CLIENTS customers and sends their events in order, a
    // batch of one event per customer at a time, retrying a batch until it is accepted.
    let acked = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(180);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|k| {
            let (acked, retries, stop, base, write) = (
                acked.clone(),
                retries.clone(),
                stop.clone(),
                base.clone(),
                write.clone(),
            );
            std::thread::spawn(move || {
                let c = http();
                let mine: Vec<usize> = (0..CUSTOMERS).filter(|i| i % CLIENTS == k).collect();
                for seq in 0..PER_CUSTOMER {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let batch: Vec<Value> = mine
                        .iter()
                        .map(|&cu| {
                            json!({
                                "type": "track",
                                "userId": format!("so-user-{cu:02}"),
                                "event": "Step",
                                "messageId": message_id(cu, seq),
                                "timestamp": format!("2026-03-01T10:00:{:02}.{:03}Z", seq / 1000, seq % 1000),
                                "properties": {"seq": seq},
                            })
                        })
                        .collect();
                    let n = batch.len();
                    post_until_accepted(
                        &c,
                        &format!("{base}/v1/batch"),
                        &write,
                        &json!({"batch": batch}),
                        deadline,
                        &retries,
                    );
                    acked.fetch_add(n, Ordering::Relaxed);
                    // Keep events flowing across the faults below rather than finishing first.
                    std::thread::sleep(Duration::from_millis(40));
                }
            })
        })
        .collect();
    let total = CUSTOMERS * PER_CUSTOMER;
    let at = |fraction: f64| (total as f64 * fraction) as usize;
    let wait_acked = |n: usize| {
        wait_until(
            &format!("{n} acknowledged events"),
            Duration::from_secs(120),
            || acked.load(Ordering::Relaxed) >= n,
        )
    };

    wait_acked(at(0.2));
    w1.kill_9();
    eprintln!(
        "killed w1 at {} acknowledged",
        acked.load(Ordering::Relaxed)
    );

    wait_acked(at(0.45));
    api.kill_9();
    eprintln!(
        "killed the API node at {} acknowledged",
        acked.load(Ordering::Relaxed)
    );
    std::thread::sleep(Duration::from_millis(300));
    api = api_node(&env, port);

    wait_acked(at(0.7));
    let mut w1 = worker(&env, "w1");
    w1.wait_for("joined the event bus", Duration::from_secs(30));
    eprintln!("w1 back at {} acknowledged", acked.load(Ordering::Relaxed));

    for c in clients {
        if c.join().is_err() {
            stop.store(true, Ordering::Relaxed);
            panic!(
                "a client failed\napi:\n{}\nw1:\n{}\nw2:\n{}",
                api.output(),
                w1.output(),
                w2.output()
            );
        }
    }
    assert_eq!(acked.load(Ordering::Relaxed), total);

    let c = http();
    let mut last = 0;
    wait_until("the backlog to drain", Duration::from_secs(120), || {
        last = stats_events(&c, &base, &admin).unwrap_or(last);
        last >= total as i64
    });
    // Anything doubled would show up now, once redeliveries have had their chance.
    std::thread::sleep(Duration::from_secs(3));

    let applied = store.applied();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (m, _) in &applied {
        *count.entry(m.as_str()).or_default() += 1;
    }
    let expected: HashSet<String> = (0..CUSTOMERS)
        .flat_map(|cu| (0..PER_CUSTOMER).map(move |s| message_id(cu, s)))
        .collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|m| !count.contains_key(m.as_str()))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but never applied: {missing:?}"
    );
    let doubled: Vec<_> = count.iter().filter(|(_, n)| **n > 1).take(10).collect();
    assert!(doubled.is_empty(), "applied more than once: {doubled:?}");
    assert_eq!(applied.len(), total, "nothing else was applied");

    // Per customer, the store applied events in the order they were accepted.
    let mut order: BTreeMap<usize, Vec<(i64, usize)>> = BTreeMap::new();
    for (m, seq) in &applied {
        let (cu, s) = m
            .strip_prefix("so-c")
            .and_then(|r| r.split_once('-'))
            .map(|(a, b)| (a.parse().expect("customer"), b.parse().expect("seq")))
            .expect("message id");
        order.entry(cu).or_default().push((*seq, s));
    }
    for (cu, mut rows) in order {
        rows.sort();
        let sent: Vec<usize> = rows.iter().map(|r| r.1).collect();
        assert_eq!(
            sent,
            (0..PER_CUSTOMER).collect::<Vec<_>>(),
            "customer {cu}: events applied out of order"
        );
    }

    let (status, _, p, _) = c
        .get(&format!("{base}/v1/profiles?user_id=so-user-07"), &admin)
        .expect("answer");
    assert_eq!(status, 200);
    assert_eq!(p["event_count"], PER_CUSTOMER);
    let (_, _, stats, _) = c.get(&format!("{base}/v1/stats"), &admin).expect("stats");
    assert_eq!(stats["profiles"], CUSTOMERS, "{stats}");

    // A worker asked to stop hands its partitions over and exits cleanly.
    assert!(
        w2.terminate(Duration::from_secs(20)),
        "w2:\n{}",
        w2.output()
    );
    assert!(
        w2.output().contains("left:"),
        "w2 says what it did:\n{}",
        w2.output()
    );
    eprintln!(
        "{} events acknowledged and applied once each, in order; {} client retries",
        total,
        retries.load(Ordering::Relaxed)
    );
    drop(w1);
    drop(api);
}

/// A TCP relay in front of the real NATS server that can be cut and restored, as if the
/// server went away and came back, on a fixed port so clients reconnect to it.
struct Relay {
    rt: tokio::runtime::Runtime,
    target: String,
    port: u16,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    /// A relay on a free port, not listening yet (the server is "down").
    fn new(target: &str) -> Self {
        Self {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime"),
            target: target
                .trim_start_matches("nats://")
                .trim_end_matches('/')
                .to_owned(),
            port: free_port(),
            tasks: Arc::default(),
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn up(&self) {
        let listener = self.rt.block_on(async {
            let start = Instant::now();
            loop {
                match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                    Ok(l) => break l,
                    Err(e) if start.elapsed() < Duration::from_secs(10) => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("relay cannot listen again: {e}"),
                }
            }
        });
        let (target, conns) = (self.target.clone(), self.tasks.clone());
        let accept = self.rt.spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let relay = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().expect("tasks").push(relay);
            }
        });
        self.tasks.lock().expect("tasks").push(accept);
    }

    /// Stops listening and drops every relayed connection.
    fn down(&self) {
        for t in self.tasks.lock().expect("tasks").drain(..) {
            t.abort();
        }
        // Let the aborted tasks drop their sockets before anyone reconnects.
        self.rt
            .block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
    }
}

/// NATS down at start, down while running, and a message that always fails.
#[test]
fn bus_outages_answer_503_and_heal_and_poison_goes_to_the_dead_letters() {
    let Some(url) = nats_url("bus_outages_answer_503_and_heal_and_poison_goes_to_the_dead_letters")
    else {
        return;
    };
    let prefix = Prefix::unique("rsf");
    let _cleanup = BusCleanup {
        url: url.clone(),
        prefix: prefix.clone(),
    };
    let cfg = bus_config(&prefix);
    let relay = Relay::new(&url);
    let store = StoreUnderTest::new();
    let mut vars = bus_env(&relay.url(), &cfg);
    vars.extend(store.env());
    let env = Env {
        store_args: store.args(),
        vars,
    };
    let write = env.key("write");
    let admin = env.key("admin");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let c = http();
    let track = |id: &str, user: &str| json!({"userId": user, "event": "Fault Test", "messageId": id, "properties": {"n": 1}});

    // 1. NATS down at start: the API node serves, says why, and refuses to acknowledge.
    let mut api = api_node(&env, port);
    api.wait_for("cannot reach the event bus", Duration::from_secs(10));
    let mut w = worker(&env, "fw1");
    w.wait_for("cannot reach the event bus", Duration::from_secs(10));
    let (status, retry_after, body, _) = c
        .post(
            &format!("{base}/v1/track"),
            &write,
            &track("f-0", "fault-a"),
        )
        .expect("answer");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "bus_unavailable");
    assert_eq!(retry_after.as_deref(), Some("2"));
    let (status, _, _, _) = c.get(&format!("{base}/v1/stats"), &admin).expect("answer");
    assert_eq!(status, 200, "reads work without the bus");
    // Validation errors are the same 400s as in embedded mode.
    let (status, _, body, _) = c
        .post(
            &format!("{base}/v1/track"),
            &write,
            &json!({"event": "No One"}),
        )
        .expect("answer");
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("missing_identity")),
        "{body}"
    );

    // 2. NATS comes up: both connect on their own (backoff capped at 1 s here).
    relay.up();
    w.wait_for("joined the event bus", Duration::from_secs(15));
    let retries = AtomicUsize::new(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let v = post_until_accepted(
        &c,
        &format!("{base}/v1/track"),
        &write,
        &track("f-0", "fault-a"),
        deadline,
        &retries,
    );
    assert_eq!(v["queued"], 1, "{v}");
    wait_until("f-0 to be applied", Duration::from_secs(20), || {
        stats_events(&c, &base, &admin) == Some(1)
    });

    // 3. NATS goes away while running: 503 with Retry-After, never a false acknowledgement.
    relay.down();
    let started = Instant::now();
    let answer = c.post(
        &format!("{base}/v1/track"),
        &write,
        &track("f-1", "fault-a"),
    );
    let (status, retry_after, body, _) = answer.expect("the API node itself is up");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "bus_unavailable");
    assert!(retry_after.is_some());
    assert!(
        started.elapsed() < cfg.publish_timeout + Duration::from_secs(2),
        "answered within the publish timeout, took {:?}",
        started.elapsed()
    );

    // 4. NATS is back: the same messageId is accepted once and applied; the worker resumed.
    relay.up();
    let deadline = Instant::now() + Duration::from_secs(30);
    post_until_accepted(
        &c,
        &format!("{base}/v1/track"),
        &write,
        &track("f-1", "fault-a"),
        deadline,
        &retries,
    );
    let v = post_until_accepted(
        &c,
        &format!("{base}/v1/track"),
        &write,
        &track("f-1", "fault-a"),
        deadline,
        &retries,
    );
    assert_eq!(
        v["duplicates"], 1,
        "a retry of an accepted event is a duplicate: {v}"
    );
    wait_until("f-1 to be applied", Duration::from_secs(30), || {
        stats_events(&c, &base, &admin) == Some(2)
    });

    // 5. A poison message (put on the bus by hand: the API refuses such events) fails every
    // attempt and is set aside; the events after it on the same partition still flow.
    let workspace = env.default_workspace();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let poison = Envelope::json(
        rapport_core::WorkspaceId::parse(&workspace).expect("workspace id"),
        "user_id:fault-a",
        "poison-1",
        &json!({"event_type": "track", "message_id": "poison-1", "note": "no customer, no time"}),
    )
    .expect("envelope");
    rt.block_on(async {
        let bus = NatsBus::connect(&url, cfg.clone()).await.expect("bus");
        rapport_bus::Bus::publish(&bus, &poison)
            .await
            .expect("publish poison");
    });
    post_until_accepted(
        &c,
        &format!("{base}/v1/track"),
        &write,
        &track("f-2", "fault-a"),
        deadline,
        &retries,
    );
    let letters = || {
        c.get(&format!("{base}/v1/dead-letters"), &admin)
            .filter(|a| a.0 == 200)
            .map(|a| a.2["dead_letters"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    };
    let mut found = Vec::new();
    wait_until(
        "the poison message to be dead-lettered",
        Duration::from_secs(30),
        || {
            found = letters();
            !found.is_empty()
        },
    );
    assert_eq!(found.len(), 1, "{found:?}");
    let letter = &found[0];
    assert_eq!(letter["message_id"], "poison-1");
    assert_eq!(letter["attempts"], cfg.max_attempts);
    assert!(
        letter["error"]
            .as_str()
            .unwrap_or("")
            .contains("unreadable event"),
        "{letter}"
    );
    wait_until(
        "f-2, behind the poison, to be applied",
        Duration::from_secs(30),
        || stats_events(&c, &base, &admin) == Some(3),
    );

    // Visible in the dashboard.
    let cookie = c.login(&base, &admin);
    let page = c
        .page(&format!("{base}/dead-letters"), &cookie)
        .expect("page");
    assert_eq!(page.0, 200);
    assert!(
        page.3.contains("poison-1") && page.3.contains("Replay"),
        "{}",
        page.3
    );

    // Replayable: it leaves the list, goes back on its partition, fails again and returns.
    let id = letter["id"].as_u64().expect("id");
    let (status, _, body, _) = c
        .post(
            &format!("{base}/v1/dead-letters/{id}/replay"),
            &admin,
            &json!({}),
        )
        .expect("replay");
    assert_eq!(status, 200, "{body}");
    let replays = letters();
    assert!(
        replays.iter().all(|l| l["id"] != id),
        "replayed letters leave the list: {replays:?}"
    );
    wait_until(
        "the replayed poison to fail again",
        Duration::from_secs(30),
        || letters().iter().any(|l| l["message_id"] == "poison-1"),
    );
    let (status, _, _, _) = c
        .post(
            &format!("{base}/v1/dead-letters/{id}/replay"),
            &admin,
            &json!({}),
        )
        .expect("replay");
    assert_eq!(status, 404, "a replayed letter is gone");
    let audit = c
        .get(&format!("{base}/v1/audit?action=dead_letter."), &admin)
        .expect("audit");
    assert!(audit.3.contains("dead_letter.replayed"), "{}", audit.3);

    assert!(w.terminate(Duration::from_secs(20)), "{}", w.output());
    drop(api);
}

/// A data-subject erasure on a scale-out API node also erases the customer from the event
/// bus: the events workers applied (which the broker keeps for its retention time) and the
/// ones still queued, which then never reach a worker, while other customers' events flow.
#[test]
fn erasing_a_customer_clears_the_event_bus_too() {
    let Some(url) = nats_url("erasing_a_customer_clears_the_event_bus_too") else {
        return;
    };
    let prefix = Prefix::unique("rse");
    let _cleanup = BusCleanup {
        url: url.clone(),
        prefix: prefix.clone(),
    };
    let cfg = bus_config(&prefix);
    let store = StoreUnderTest::new();
    let mut vars = bus_env(&url, &cfg);
    vars.extend(store.env());
    let env = Env {
        store_args: store.args(),
        vars,
    };
    let write = env.key("write");
    let admin = env.key("admin");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let c = http();
    let email = format!("ada.{}@example.org", &uuid_like()[..8]);
    let post = |path: &str, body: Value| {
        let retries = AtomicUsize::new(0);
        let deadline = Instant::now() + Duration::from_secs(20);
        post_until_accepted(
            &c,
            &format!("{base}{path}"),
            &write,
            &body,
            deadline,
            &retries,
        )
    };
    let track = |user: &str, id: &str| json!({"userId": user, "event": "Order Placed", "messageId": id, "properties": {"note": format!("for {user}")}});

    let _api = api_node(&env, port);
    let mut w1 = worker(&env, "ew1");
    w1.wait_for("joined the event bus", Duration::from_secs(30));
    post(
        "/v1/identify",
        json!({"userId": "ada-erase", "messageId": "a-0", "traits": {"email": email, "name": "Ada Erase"}}),
    );
    for i in 1..4 {
        post("/v1/track", track("ada-erase", &format!("a-{i}")));
    }
    post("/v1/track", track("bob-kept", "b-0"));
    post("/v1/track", track("bob-kept", "b-1"));
    wait_until("six events applied", Duration::from_secs(30), || {
        stats_events(&c, &base, &admin) == Some(6)
    });

    // With no worker running, more events queue on the bus: two of Ada's (one naming her
    // only by email), one of Bob's.
    assert!(w1.terminate(Duration::from_secs(20)), "{}", w1.output());
    post("/v1/track", track("ada-erase", "a-4"));
    post(
        "/v1/identify",
        json!({"anonymousId": "anon-ada", "messageId": "a-5", "traits": {"email": email.to_uppercase()}}),
    );
    post("/v1/track", track("bob-kept", "b-2"));

    let (status, _, profile, _) = c
        .get(&format!("{base}/v1/profiles?user_id=ada-erase"), &admin)
        .expect("lookup");
    assert_eq!(status, 200, "{profile}");
    let id = profile["id"].as_str().expect("profile id").to_owned();
    let (status, _, erased, _) = c
        .delete(&format!("{base}/v1/profiles/{id}"), &admin)
        .expect("erase");
    assert_eq!(status, 200, "{erased}");
    assert_eq!(
        erased["events"], 4,
        "the store held four of Ada's events: {erased}"
    );
    assert_eq!(
        erased["event_log"]["events"], 6,
        "four applied and two queued events erased from the bus: {erased}"
    );
    assert_eq!(erased["event_log"]["dead_letters"], 0, "{erased}");
    assert_eq!(erased["event_log"]["complete"], true, "{erased}");

    // A worker comes back: Bob's queued event is applied, Ada's never arrive.
    let mut w2 = worker(&env, "ew2");
    w2.wait_for("joined the event bus", Duration::from_secs(30));
    // The workspace's event count is a daily aggregate per channel (no personal data), which
    // an erasure leaves as it is: six before, plus Bob's queued one.
    let waited = Instant::now();
    while stats_events(&c, &base, &admin) != Some(7) {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "Bob's queued event was not applied: {:?} events stored\n{}",
            stats_events(&c, &base, &admin),
            w2.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(cfg.ack_wait + Duration::from_secs(1));
    assert_eq!(stats_events(&c, &base, &admin), Some(7));
    let (status, _, bob, _) = c
        .get(&format!("{base}/v1/profiles?user_id=bob-kept"), &admin)
        .expect("lookup");
    assert_eq!(status, 200, "{bob}");
    let (_, _, timeline, _) = c
        .get(
            &format!(
                "{base}/v1/profiles/{}/events",
                bob["id"].as_str().expect("id")
            ),
            &admin,
        )
        .expect("timeline");
    assert_eq!(
        timeline["events"].as_array().map(Vec::len),
        Some(3),
        "all of Bob's events are applied: {timeline}"
    );
    let (status, _, _, _) = c
        .get(&format!("{base}/v1/profiles?email={email}"), &admin)
        .expect("lookup");
    assert_eq!(status, 404, "Ada's profile is not rebuilt");

    // Nothing on the bus names her any more; Bob's events are still there.
    let workspace = rapport_core::WorkspaceId::parse(&env.default_workspace()).expect("ws");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (ada_left, bob_left) = rt.block_on(async {
        let bus = NatsBus::connect(&url, cfg.clone()).await.expect("bus");
        let names = |needle: &str| {
            let needle = needle.to_owned();
            move |e: &Envelope| {
                String::from_utf8_lossy(e.payload())
                    .to_lowercase()
                    .contains(&needle)
            }
        };
        let ada = names(&email.to_lowercase());
        let left = rapport_bus::Bus::erase_where(&bus, &workspace, None, &|e| {
            ada(e) || e.partition_key().contains("ada-erase")
        })
        .await
        .expect("scan");
        // Counted without erasing: a predicate that records and refuses.
        let bob = names("bob-kept");
        let seen = AtomicUsize::new(0);
        rapport_bus::Bus::erase_where(&bus, &workspace, None, &|e| {
            if bob(e) {
                seen.fetch_add(1, Ordering::Relaxed);
            }
            false
        })
        .await
        .expect("scan");
        (left.events, seen.load(Ordering::Relaxed))
    });
    assert_eq!(
        ada_left, 0,
        "no message on the bus names the erased customer"
    );
    assert_eq!(bob_left, 3, "the other customer's events are kept");

    let audit = c
        .get(&format!("{base}/v1/audit?subject={id}"), &admin)
        .expect("audit");
    assert!(
        audit.3.contains("profile.erasure.event_log") && audit.3.contains("profile.erased"),
        "{}",
        audit.3
    );
    assert!(w2.terminate(Duration::from_secs(20)), "{}", w2.output());
}
