//! `rapport bench ingest`: sustained ingest over loopback HTTP with durable acknowledgement,
//! against a named reference measured in the same run: raw SQLite accepting the same event
//! rows in transactions of 100 with `synchronous=FULL`, no HTTP, no parsing, no profiles.
//!
//! The server runs as a separate process (this same binary, `rapport serve`) so its resident
//! memory can be read from `/proc`; the load generator runs here, on the same machine.
//!
//! The stitching phases measure what identity resolution under the identity guards costs a
//! single event: two servers in the same run, one with the guards (`identity.guards = true`,
//! the default) and one with only the store's built-in rule (`identity.guards = false`), get
//! the same sequence of identify events that create anonymous profiles, merge them into known
//! customers, attach new identifiers and return, one request at a time by default.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::json;
use tokio::io::AsyncBufReadExt;

use crate::config::Config;

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Sustained HTTP ingest (batch and single events) against a raw SQLite baseline.
    Ingest(IngestArgs),
    /// Audit append and verification rates, and the cost of a consent check.
    Audit(crate::audit::AuditBenchArgs),
    /// End-to-end events/s embedded vs. an API node with 1 and 2 workers over NATS JetStream,
    /// and the API's acknowledgement latency (loopback only).
    Scaleout(crate::bench_scaleout::ScaleoutArgs),
    /// Write a seeded synthetic population of person records with ground truth, for
    /// benchmarking record matching (`records.csv`, `truth.csv`).
    MatchData(crate::match_data::MatchDataArgs),
    /// One simulated day of a contact center: priority routing against first-in-first-out on
    /// the same arrivals (time to first response, SLA breaches).
    Routing(crate::bench_routing::RoutingBenchArgs),
    /// Next-best-action latency over loopback HTTP at a fixed request rate, against a bare
    /// profile read in the same run.
    Nba(crate::bench_nba::NbaBenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Seconds each timed phase runs.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Rounds of (raw, batch, single) phases; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Concurrent connections sending batches.
    #[arg(long, default_value_t = 8)]
    pub batch_connections: usize,
    /// Concurrent connections sending single events.
    #[arg(long, default_value_t = 64)]
    pub single_connections: usize,
    /// Events per batch request.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Distinct customers the events are spread over.
    #[arg(long, default_value_t = 10_000)]
    pub customers: usize,
    /// After the timed phases, send this many events in batches and report the server's peak
    /// resident memory (0 skips it).
    #[arg(long, default_value_t = 0)]
    pub memory_events: u64,
    /// Concurrent connections in the stitching phases (guards on vs. built-in rule only).
    #[arg(long, default_value_t = 1)]
    pub stitch_connections: usize,
    /// Run only the stitching phases (skip raw SQLite, batch and single-event throughput).
    #[arg(long)]
    pub stitching_only: bool,
}

pub async fn run(command: BenchCommand, config: &Config) -> Result<()> {
    match command {
        BenchCommand::Ingest(args) => ingest(args).await,
        BenchCommand::Audit(args) => crate::audit::bench(args).await,
        BenchCommand::Scaleout(args) => crate::bench_scaleout::run(args, config).await,
        BenchCommand::Routing(args) => {
            let policy = config
                .routing
                .policy()
                .map_err(|e| anyhow::anyhow!(e.join("; ")))?;
            crate::bench_routing::run(args, policy)
        }
        BenchCommand::MatchData(args) => {
            tokio::task::spawn_blocking(move || crate::match_data::run(args)).await?
        }
        BenchCommand::Nba(args) => crate::bench_nba::run(args).await,
    }
}

/// One realistic track event (about 450 bytes of JSON).
fn event(n: u64, customers: usize) -> serde_json::Value {
    let user = n % customers as u64;
    let name = [
        "Product Viewed",
        "Order Completed",
        "Page Scrolled",
        "Speed Test Run",
    ][(n % 4) as usize];
    json!({
        "type": "track",
        "userId": format!("bench-user-{user}"),
        "event": name,
        "messageId": format!("bench-{n}"),
        "timestamp": "2026-01-15T10:20:30.123Z",
        "properties": {"product_id": format!("sku-{}", n % 500), "price": 19.99, "currency": "USD", "position": n % 12},
        "context": {
            "library": {"name": "analytics-node", "version": "2.1.0"},
            "ip": "203.0.113.7",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
            "channel": "web"
        }
    })
}

/// Raw SQLite: the same rows into a table shaped like Rapport's events table, 100 per
/// transaction, `journal_mode=WAL`, `synchronous=FULL`, the writer's 64 MB page cache. Kept open across rounds, as the
/// server's database is.
struct RawBaseline {
    conn: rusqlite::Connection,
    bodies: Vec<String>,
    batch: usize,
    customers: u64,
    n: u64,
}

impl RawBaseline {
    fn open(dir: &Path, batch: usize, customers: usize) -> Result<Self> {
        let conn = rusqlite::Connection::open(dir.join("raw.db"))?;
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // The same page cache the server's writer has, so the comparison is like for like.
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.execute_batch(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, workspace_id TEXT NOT NULL, message_id TEXT NOT NULL,
                profile_id TEXT NOT NULL, type TEXT NOT NULL, name TEXT, channel TEXT NOT NULL, ts INTEGER NOT NULL,
                received_at INTEGER NOT NULL, body TEXT NOT NULL);
             CREATE UNIQUE INDEX events_message ON events(workspace_id, message_id);
             CREATE INDEX events_timeline ON events(profile_id, ts, seq);",
        )?;
        let bodies = (0..10_000u64)
            .map(|n| event(n, customers).to_string())
            .collect();
        Ok(Self {
            conn,
            bodies,
            batch,
            customers: customers as u64,
            n: 0,
        })
    }

    /// Rows per second over `seconds`.
    fn run(&mut self, seconds: u64) -> Result<f64> {
        let start = Instant::now();
        let first = self.n;
        while start.elapsed() < Duration::from_secs(seconds) {
            let tx = self.conn.unchecked_transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO events (workspace_id, message_id, profile_id, type, name, channel, ts, received_at, body)
                     VALUES ('ws', ?1, ?2, 'track', 'Product Viewed', 'web', ?3, ?3, ?4)",
                )?;
                for _ in 0..self.batch {
                    let n = self.n;
                    stmt.execute(rusqlite::params![
                        format!("raw-{n}"),
                        format!("prof-{}", n % self.customers),
                        n as i64,
                        self.bodies[(n % 10_000) as usize]
                    ])?;
                    self.n += 1;
                }
            }
            tx.commit()?;
        }
        Ok((self.n - first) as f64 / start.elapsed().as_secs_f64())
    }
}

pub(crate) struct ServerProcess {
    child: tokio::process::Child,
    pub(crate) base: String,
    pub(crate) pid: u32,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn start_server(data_dir: &Path) -> Result<(ServerProcess, String)> {
    start_server_with(data_dir, &[]).await
}

/// Starts a server with extra environment (configuration overrides).
async fn start_server_with(
    data_dir: &Path,
    env: &[(&str, &str)],
) -> Result<(ServerProcess, String)> {
    start_server_as(data_dir, env, "write").await
}

/// Starts a server with extra environment, with a key of `role`.
pub(crate) async fn start_server_as(
    data_dir: &Path,
    env: &[(&str, &str)],
    role: &str,
) -> Result<(ServerProcess, String)> {
    let exe = std::env::current_exe()?;
    let dir = data_dir.to_str().context("data dir is not UTF-8")?;
    let out = tokio::process::Command::new(&exe)
        .args(["keys", "create", "--role", role, "--data-dir", dir])
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "cannot create a key: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let key = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let mut child = tokio::process::Command::new(&exe)
        .args(["serve", "--data-dir", dir, "--addr", "127.0.0.1:0"])
        // RAPPORT_BENCH_SERVER_LOG sets the server's log filter (to see the store's timings).
        .env(
            "RUST_LOG",
            std::env::var("RAPPORT_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().context("server pid")?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
    let base = loop {
        match lines.next_line().await? {
            Some(l) => {
                if let Some(a) = l.strip_prefix("Rapport listening on ") {
                    break a.trim().to_owned();
                }
            }
            None => bail!("the server exited before listening"),
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((ServerProcess { child, base, pid }, key))
}

pub(crate) fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

pub(crate) struct PhaseResult {
    pub(crate) events: u64,
    pub(crate) requests: u64,
    pub(crate) seconds: f64,
    pub(crate) failures: u64,
    pub(crate) latencies_us: Vec<u32>,
}

impl PhaseResult {
    pub(crate) fn rate(&self) -> f64 {
        self.events as f64 / self.seconds
    }
    pub(crate) fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        self.latencies_us.sort_unstable();
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// Sends bodies from `connections` tasks until `duration` passes or `limit` events are sent.
/// `next` numbers the requests across phases, so no message id is ever sent twice.
pub(crate) async fn load(
    url: String,
    auth: String,
    bodies: Arc<Bodies>,
    next: Arc<AtomicU64>,
    connections: usize,
    duration: Option<Duration>,
    limit: Option<u64>,
) -> PhaseResult {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap_or_default();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (client, url, auth, bodies, next, stop, failures, sent) = (
            client.clone(),
            url.clone(),
            auth.clone(),
            bodies.clone(),
            next.clone(),
            stop.clone(),
            failures.clone(),
            sent.clone(),
        );
        tasks.spawn(async move {
            let mut lat = Vec::new();
            let (mut events, mut requests) = (0u64, 0u64);
            loop {
                if stop.load(Ordering::Relaxed) || duration.is_some_and(|d| start.elapsed() >= d) {
                    break;
                }
                let count = bodies.size as u64;
                if limit.is_some_and(|l| sent.fetch_add(count, Ordering::Relaxed) >= l) {
                    break;
                }
                let body = bodies.body(next.fetch_add(1, Ordering::Relaxed));
                let t = Instant::now();
                let ok = client
                    .post(&url)
                    .header("authorization", &auth)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if ok {
                    events += count;
                    requests += 1;
                } else {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            (events, requests, lat)
        });
    }
    let mut result = PhaseResult {
        events: 0,
        requests: 0,
        seconds: 0.0,
        failures: 0,
        latencies_us: Vec::new(),
    };
    while let Some(Ok((e, r, l))) = tasks.join_next().await {
        result.events += e;
        result.requests += r;
        result.latencies_us.extend(l);
    }
    result.seconds = start.elapsed().as_secs_f64();
    result.failures = failures.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    result
}

/// Request bodies made on demand from pre-serialised events: building one is a copy of bytes
/// plus a counter per event, so the load generator stays cheap and phases never run dry.
pub(crate) struct Bodies {
    /// Each event's JSON split around its user id and its message id.
    templates: Vec<[String; 3]>,
    customers: u64,
    /// Events per request; 1 sends a bare event (for `/v1/track`), more send a batch.
    size: usize,
    /// Distinguishes message ids of different body sets.
    tag: &'static str,
    /// Identify events that exercise stitching instead of the templates (see [`Bodies::stitching`]).
    stitch: bool,
    /// With `stitch`: identify events of the first this many stitched groups, whose
    /// identifiers are all known already (see [`Bodies::known`]).
    known_groups: Option<u64>,
}

impl Bodies {
    const MARK: &'static str = "@MESSAGE-ID@";
    const USER: &'static str = "@USER-ID@";

    pub(crate) fn new(size: usize, customers: usize, tag: &'static str) -> Self {
        let templates = (0..997u64)
            .map(|n| {
                let mut e = event(n, customers);
                if let Some(m) = e.as_object_mut() {
                    m.insert("messageId".into(), json!(Self::MARK));
                    m.insert("userId".into(), json!(Self::USER));
                    if size == 1 {
                        m.remove("type");
                    }
                }
                // Objects keep their key order, and `event` puts userId before messageId.
                let text = e.to_string();
                let (a, rest) = text.split_once(Self::USER).unwrap_or((&text, ""));
                let (b, c) = rest.split_once(Self::MARK).unwrap_or((rest, ""));
                [a.to_owned(), b.to_owned(), c.to_owned()]
            })
            .collect();
        Self {
            templates,
            size,
            tag,
            customers: customers.max(1) as u64,
            stitch: false,
            known_groups: None,
        }
    }

    /// Single identify events for `/v1/identify`, in groups of four per customer: a new
    /// anonymous visitor (a new profile), the visitor signing in with user id and email (a
    /// merge into the customer's profile), a return on the same device (identifiers already
    /// known), and a sign-in by user id alone.
    pub(crate) fn stitching(customers: usize, tag: &'static str) -> Self {
        Self {
            templates: Vec::new(),
            size: 1,
            tag,
            customers: customers.max(1) as u64,
            stitch: true,
            known_groups: None,
        }
    }

    /// The four identify events of each of the first `groups` groups [`Bodies::stitching`]
    /// sent, sent again (with new message ids): the same bodies, traits included, but every
    /// identifier is linked already, so identity resolution finds one profile and there is
    /// nothing to link or merge. The reference for what stitching adds to a single event.
    pub(crate) fn known(customers: usize, tag: &'static str, groups: u64) -> Self {
        Self {
            known_groups: Some(groups.max(1)),
            ..Self::stitching(customers, tag)
        }
    }

    fn stitch_body(&self, n: u64) -> Bytes {
        let (group, step, message_id) = match self.known_groups {
            Some(g) => ((n / 4) % g, n % 4, format!("{}-known-{n}", self.tag)),
            None => (n / 4, n % 4, format!("{}-{n}", self.tag)),
        };
        let customer = format!("bench-user-{}", group % self.customers);
        let device = format!("{}-device-{}", self.tag, group);
        let context =
            json!({"library": {"name": "analytics-node", "version": "2.1.0"}, "ip": "203.0.113.7"});
        let body = match step {
            0 => json!({"anonymousId": device, "messageId": message_id, "context": context,
                        "traits": {"plan": "trial"}}),
            1 => json!({"userId": customer, "anonymousId": device, "messageId": message_id,
                        "context": context, "traits": {"email": format!("{customer}@example.com"), "name": "Bench Customer"}}),
            2 => {
                json!({"userId": customer, "anonymousId": device, "messageId": message_id, "context": context})
            }
            _ => json!({"userId": customer, "messageId": message_id, "context": context,
                        "traits": {"last_login": "2026-01-15"}}),
        };
        Bytes::from(body.to_string())
    }

    fn body(&self, request: u64) -> Bytes {
        if self.stitch {
            return self.stitch_body(request);
        }
        let mut out = String::with_capacity(self.size * 520 + 16);
        if self.size > 1 {
            out.push_str("{\"batch\":[");
        }
        for k in 0..self.size as u64 {
            let n = request * self.size as u64 + k;
            let [a, b, c] = &self.templates[(n % self.templates.len() as u64) as usize];
            if k > 0 {
                out.push(',');
            }
            out.push_str(a);
            out.push_str(&format!("bench-user-{}", n % self.customers));
            out.push_str(b);
            out.push_str(&format!("{}-{n}", self.tag));
            out.push_str(c);
        }
        if self.size > 1 {
            out.push_str("]}");
        }
        Bytes::from(out)
    }
}

async fn ingest(args: IngestArgs) -> Result<()> {
    if args.stitching_only {
        let tmp = std::env::temp_dir().join(format!("rapport-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        let cleanup = scopeguard(tmp.clone());
        let table = stitching(&args, &tmp).await?;
        print_header(
            &args,
            "the stitching phases (guards on, then built-in rule only)",
        );
        println!("| measurement | result | vs built-in rule |");
        println!("|---|---|---|");
        print!("{table}");
        drop(cleanup);
        return Ok(());
    }
    let tmp = std::env::temp_dir().join(format!("rapport-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let cleanup = scopeguard(tmp.clone());

    let raw_dir = tmp.join("raw");
    std::fs::create_dir_all(&raw_dir)?;
    let mut raw_db = Some(RawBaseline::open(
        &raw_dir,
        args.batch_size,
        args.customers,
    )?);

    let data = tmp.join("server");
    let (server, key) = start_server(&data).await?;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    );
    let peak_during = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (pid, peak) = (server.pid, peak_during.clone());
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid, "VmRSS:"), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let batch_bodies = Arc::new(Bodies::new(args.batch_size, args.customers, "batch"));
    let single_bodies = Arc::new(Bodies::new(1, args.customers, "single"));
    let (batch_next, single_next) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (mut raws, mut batches, mut singles_out) = (Vec::new(), Vec::new(), Vec::new());
    let (mut batch_lat, mut single_lat) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        eprintln!(
            "round {round}/{}: raw SQLite ({} s)...",
            args.rounds, args.seconds
        );
        let mut db = raw_db.take().context("raw baseline")?;
        let secs = args.seconds;
        let (db, rate) = tokio::task::spawn_blocking(move || {
            let r = db.run(secs);
            (db, r)
        })
        .await?;
        raw_db = Some(db);
        raws.push(rate?);

        eprintln!(
            "round {round}/{}: HTTP /v1/batch, {} events a request, {} connections ({} s)...",
            args.rounds, args.batch_size, args.batch_connections, args.seconds
        );
        let r = load(
            format!("{}/v1/batch", server.base),
            auth.clone(),
            batch_bodies.clone(),
            batch_next.clone(),
            args.batch_connections,
            Some(Duration::from_secs(args.seconds)),
            None,
        )
        .await;
        batches.push((r.rate(), r.requests, r.failures));
        batch_lat.extend(r.latencies_us);

        eprintln!(
            "round {round}/{}: HTTP /v1/track, one event a request, {} connections ({} s)...",
            args.rounds, args.single_connections, args.seconds
        );
        let r = load(
            format!("{}/v1/track", server.base),
            auth.clone(),
            single_bodies.clone(),
            single_next.clone(),
            args.single_connections,
            Some(Duration::from_secs(args.seconds)),
            None,
        )
        .await;
        singles_out.push((r.rate(), r.requests, r.failures));
        single_lat.extend(r.latencies_us);
    }
    let mut batch = PhaseResult {
        events: 0,
        requests: 0,
        seconds: 1.0,
        failures: 0,
        latencies_us: batch_lat,
    };
    let mut single = PhaseResult {
        events: 0,
        requests: 0,
        seconds: 1.0,
        failures: 0,
        latencies_us: single_lat,
    };

    let mut memory = None;
    if args.memory_events > 0 {
        eprintln!(
            "memory: sending {} events in batches...",
            args.memory_events
        );
        let bodies = Arc::new(Bodies::new(
            args.batch_size,
            args.customers.max(100_000),
            "memory",
        ));
        let r = load(
            format!("{}/v1/batch", server.base),
            auth.clone(),
            bodies,
            Arc::new(AtomicU64::new(0)),
            args.batch_connections,
            None,
            Some(args.memory_events),
        )
        .await;
        memory = Some((r.events, r.seconds, rss_kib(server.pid, "VmHWM:")));
    }
    sampler.abort();
    let hwm = rss_kib(server.pid, "VmHWM:");
    drop(server);
    let stitch_table = stitching(&args, &tmp).await?;

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let _ = (cpu, cores);
    print_header(
        &args,
        "the raw baseline, then the batch phase, then the single-event phase",
    );
    let ratio =
        |xs: &[(f64, u64, u64)]| median(xs.iter().zip(&raws).map(|(x, r)| x.0 / r).collect());
    let rates = |xs: &[(f64, u64, u64)]| median(xs.iter().map(|x| x.0).collect());
    let fails = |xs: &[(f64, u64, u64)]| xs.iter().map(|x| x.2).sum::<u64>();
    let reqs = |xs: &[(f64, u64, u64)]| xs.iter().map(|x| x.1).sum::<u64>();
    println!("| measurement | result | vs raw SQLite |");
    println!("|---|---|---|");
    println!(
        "| raw SQLite, same rows, transactions of {}, synchronous=FULL | {:.0} rows/s (rounds: {}) | 1.00 |",
        args.batch_size,
        median(raws.clone()),
        raws.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ")
    );
    println!(
        "| HTTP /v1/batch, {} events a request, {} connections, durable ack | {:.0} events/s (rounds: {}; {} requests, {} failed) | {:.2} |",
        args.batch_size,
        args.batch_connections,
        rates(&batches),
        batches.iter().map(|b| format!("{:.0}", b.0)).collect::<Vec<_>>().join(", "),
        reqs(&batches),
        fails(&batches),
        ratio(&batches)
    );
    println!(
        "| HTTP /v1/batch latency | p50 {:.1} ms, p99 {:.1} ms | |",
        batch.percentile_ms(0.5),
        batch.percentile_ms(0.99)
    );
    println!(
        "| HTTP /v1/track, 1 event a request, {} connections, durable ack | {:.0} requests/s (rounds: {}; {} failed) | {:.2} |",
        args.single_connections,
        rates(&singles_out),
        singles_out.iter().map(|b| format!("{:.0}", b.0)).collect::<Vec<_>>().join(", "),
        fails(&singles_out),
        ratio(&singles_out)
    );
    println!(
        "| HTTP /v1/track latency | p50 {:.1} ms, p99 {:.1} ms | |",
        single.percentile_ms(0.5),
        single.percentile_ms(0.99)
    );
    println!(
        "| server peak resident memory during the timed phases | {:.0} MB | |",
        peak_during.load(Ordering::Relaxed) as f64 / 1024.0
    );
    if let Some((events, secs, peak)) = memory {
        println!(
            "| server peak resident memory (VmHWM) after {} more events ({:.0} events/s) | {:.0} MB | |",
            events,
            events as f64 / secs,
            peak as f64 / 1024.0
        );
    } else {
        println!(
            "| server peak resident memory (VmHWM) | {:.0} MB | |",
            hwm as f64 / 1024.0
        );
    }
    print!("{stitch_table}");
    drop(cleanup);
    Ok(())
}

fn print_header(args: &IngestArgs, phases: &str) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "## rapport bench ingest --seconds {} --rounds {}{}",
        args.seconds,
        args.rounds,
        if args.stitching_only {
            " --stitching-only"
        } else {
            ""
        }
    );
    println!();
    println!("Machine: {cores} cores, {cpu}. Load generator and server on the same machine, loopback HTTP/1.1.");
    println!("Each round runs {phases}, {} s each;", args.seconds);
    println!("rates are medians over rounds, ratios are medians of the per-round ratios.");
    println!();
}

/// The stitching phases: the same identify sequence against a server with the identity guards
/// and one with the built-in rule only, alternating within each round. Returns table rows.
async fn stitching(args: &IngestArgs, tmp: &Path) -> Result<String> {
    let (on, on_key) = start_server_with(&tmp.join("stitch-on"), &[]).await?;
    let (off, off_key) = start_server_with(
        &tmp.join("stitch-off"),
        &[("RAPPORT__IDENTITY__GUARDS", "false")],
    )
    .await?;
    let basic = |k: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{k}:"))
        )
    };
    let bodies_on = Arc::new(Bodies::stitching(args.customers, "stitch"));
    let bodies_off = Arc::new(Bodies::stitching(args.customers, "stitch"));
    let (next_on, next_off) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (mut lat_on, mut lat_off) = (Vec::new(), Vec::new());
    let mut ratios = Vec::new();
    let (mut rates_on, mut rates_off) = (Vec::new(), Vec::new());
    let mut failed = 0;
    let next_known = Arc::new(AtomicU64::new(0));
    let (mut lat_known, mut rates_known, mut known_ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        let phase = |label: &str| {
            eprintln!(
                "round {round}/{}: stitching, {label}, {} connection(s) ({} s)...",
                args.rounds, args.stitch_connections, args.seconds
            )
        };
        phase("identity guards");
        let mut r_on = load(
            format!("{}/v1/identify", on.base),
            basic(&on_key),
            bodies_on.clone(),
            next_on.clone(),
            args.stitch_connections,
            Some(Duration::from_secs(args.seconds)),
            None,
        )
        .await;
        phase("built-in rule only");
        let mut r_off = load(
            format!("{}/v1/identify", off.base),
            basic(&off_key),
            bodies_off.clone(),
            next_off.clone(),
            args.stitch_connections,
            Some(Duration::from_secs(args.seconds)),
            None,
        )
        .await;
        // Identifiers all known, on the guarded server: the groups stitched so far.
        phase("the same sequence once stitched, identity guards");
        let known = Arc::new(Bodies::known(
            args.customers,
            "stitch",
            (next_on.load(Ordering::Relaxed) / 4).saturating_sub(1),
        ));
        let mut r_known = load(
            format!("{}/v1/identify", on.base),
            basic(&on_key),
            known,
            next_known.clone(),
            args.stitch_connections,
            Some(Duration::from_secs(args.seconds)),
            None,
        )
        .await;
        known_ratios.push(r_on.percentile_ms(0.5) / r_known.percentile_ms(0.5).max(1e-9));
        rates_known.push(r_known.rate());
        failed += r_known.failures;
        lat_known.extend(std::mem::take(&mut r_known.latencies_us));
        ratios.push(r_on.percentile_ms(0.5) / r_off.percentile_ms(0.5).max(1e-9));
        rates_on.push(r_on.rate());
        rates_off.push(r_off.rate());
        failed += r_on.failures + r_off.failures;
        lat_on.extend(r_on.latencies_us);
        lat_off.extend(r_off.latencies_us);
    }
    drop((on, off));
    let mut all_on = PhaseResult {
        events: 0,
        requests: 0,
        seconds: 1.0,
        failures: 0,
        latencies_us: lat_on,
    };
    let mut all_off = PhaseResult {
        events: 0,
        requests: 0,
        seconds: 1.0,
        failures: 0,
        latencies_us: lat_off,
    };
    let mut all_known = PhaseResult {
        events: 0,
        requests: 0,
        seconds: 1.0,
        failures: 0,
        latencies_us: lat_known,
    };
    let mut out = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "| HTTP /v1/identify, the same sequence again once stitched (identifiers all known, nothing to link or merge), identity guards, {} connection(s) | p50 {:.2} ms, p99 {:.2} ms, {:.0} events/s | |",
        args.stitch_connections,
        all_known.percentile_ms(0.5),
        all_known.percentile_ms(0.99),
        median(rates_known)
    );
    let _ = writeln!(
        out,
        "| what stitching adds: stitching sequence with guards over the same sequence once stitched | p50 {:.2} (rounds: {}) | goal ≤ 1.20 |",
        median(known_ratios.clone()),
        known_ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(
        out,
        "| HTTP /v1/identify stitching sequence, built-in rule only (`identity.guards = false`), {} connection(s) | p50 {:.2} ms, p99 {:.2} ms, {:.0} events/s | 1.00 |",
        args.stitch_connections,
        all_off.percentile_ms(0.5),
        all_off.percentile_ms(0.99),
        median(rates_off.clone())
    );
    let _ = writeln!(
        out,
        "| HTTP /v1/identify stitching sequence, identity guards (default), {} connection(s) | p50 {:.2} ms, p99 {:.2} ms, {:.0} events/s ({} requests failed in both) | p50 {:.2} (rounds: {}) |",
        args.stitch_connections,
        all_on.percentile_ms(0.5),
        all_on.percentile_ms(0.99),
        median(rates_on),
        failed,
        median(ratios.clone()),
        ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", ")
    );
    Ok(out)
}

pub(crate) fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Removes the benchmark's temporary directory (or file) when dropped.
pub(crate) struct Cleanup(std::path::PathBuf);
pub(crate) fn scopeguard(p: std::path::PathBuf) -> Cleanup {
    Cleanup(p)
}
impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// CPU time a process has used so far (user, kernel), in seconds, from `/proc/PID/stat`;
/// zeros where it cannot be read.
pub(crate) fn cpu_seconds(pid: u32) -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return (0.0, 0.0);
    };
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return (0.0, 0.0);
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 11 and 12 counting from the state
    // (field 3) at 0.
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    match (tick(11), tick(12)) {
        (Some(u), Some(s)) => (u / hz, s / hz),
        _ => (0.0, 0.0),
    }
}

/// The machine's CPU time so far (every core, in clock ticks), from the first line of
/// `/proc/stat`; zeros where it cannot be read.
#[derive(Clone, Copy, Default)]
pub(crate) struct MachineTicks {
    /// Time the cores ran something, this machine's own work.
    pub busy: u64,
    /// Time a virtual machine's cores were ready to run but the host ran something else:
    /// other tenants' work, which no change here can remove.
    pub stolen: u64,
    pub total: u64,
}

impl MachineTicks {
    /// The shares of the machine's time since `before` that were busy and that were stolen.
    pub fn shares_since(&self, before: &MachineTicks) -> (f64, f64) {
        let total = self.total.saturating_sub(before.total).max(1) as f64;
        (
            self.busy.saturating_sub(before.busy) as f64 / total,
            self.stolen.saturating_sub(before.stolen) as f64 / total,
        )
    }
}

pub(crate) fn machine_ticks() -> MachineTicks {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().next().map(machine_ticks_of))
        .unwrap_or_default()
}

/// [`MachineTicks`] from the `cpu` line of `/proc/stat`.
fn machine_ticks_of(line: &str) -> MachineTicks {
    // user nice system idle iowait irq softirq steal; the guest times after them are
    // already counted in user and nice.
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|f| f.parse().ok())
        .collect();
    let at = |i: usize| ticks.get(i).copied().unwrap_or(0);
    let total: u64 = ticks.iter().sum();
    let (idle, stolen) = (at(3) + at(4), at(7));
    MachineTicks {
        busy: total - idle - stolen,
        stolen,
        total,
    }
}

#[cfg(test)]
mod tests {
    /// Idle and iowait are not busy, steal is counted apart, and the guest times (already
    /// inside user and nice) are not counted twice.
    #[test]
    fn machine_ticks_split_busy_idle_and_stolen() {
        let t = super::machine_ticks_of("cpu  28455 7 4676 19711 926 3 155 48 900 5");
        assert_eq!(t.busy, 28455 + 7 + 4676 + 3 + 155);
        assert_eq!(t.stolen, 48);
        assert_eq!(t.total, 28455 + 7 + 4676 + 19711 + 926 + 3 + 155 + 48);
        let later = super::machine_ticks_of("cpu  28555 7 4676 19761 926 3 155 98 900 5");
        assert_eq!(later.shares_since(&t), (0.5, 0.25));
        let empty = super::machine_ticks_of("cpu");
        assert_eq!((empty.busy, empty.stolen, empty.total), (0, 0, 0));
    }
}
