//! `rapport bench nba`: next-best-action latency over loopback HTTP at a fixed request rate,
//! with a catalog of many actions and a store of many customers, against a named reference in
//! the same run: a bare profile read (`GET /v1/profiles/{id}`) at the same rate, on the same
//! server, for the same customers. A second reference, run after the server has stopped, is
//! the disk alone: the log writes and `fsync`s those decisions' commits need, at the same
//! rate, with no server (see [`disk_commits`]).
//!
//! The store is filled in this process (the engine's own ingest path, batches of 1,000
//! identify events with consent, plus an order for one customer in ten), closed, then served
//! by a separate `rapport serve` process with the generated catalog, so the load generator and
//! the server do not share a runtime. Load is open-loop: request `i` is due at `i / rate`
//! seconds, and its latency counts from when it was due, so a server falling behind shows as
//! latency rather than as a lower send rate. Each decision stores its offer (a decision and a
//! contact), as real ones do. The run stops by itself; everything is on 127.0.0.1 and the
//! temporary store is removed at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use rapport_core::{Identifier, IdentifierKind, WorkspaceName};
use rapport_server::engine::{Engine, EngineOptions};
use rapport_store::sqlite::MAX_GROUP;
use rapport_store::Store;
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct NbaBenchArgs {
    /// Customers in the store.
    #[arg(long, default_value_t = 1_000_000)]
    pub profiles: usize,
    /// Actions in the catalog (one of them is do-nothing).
    #[arg(long, default_value_t = 100)]
    pub actions: usize,
    /// Requests per second in each timed phase.
    #[arg(long, default_value_t = 2000)]
    pub rate: u64,
    /// Seconds each timed phase runs.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Seconds of the same requests at the same rate before each timed phase (not counted).
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// Concurrent connections the load is sent over.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Customers the requests pick from at random (looked up once before the run).
    #[arg(long, default_value_t = 20_000)]
    pub sample: usize,
    /// Also print the next-best-action phase second by second (requests, p50, p99, slowest),
    /// to see whether the tail comes from a few stalls or from the whole run.
    #[arg(long)]
    pub timeline: bool,
    /// Keep the loaded customers in this directory and use them again in later runs with
    /// the same `--profiles` instead of loading them anew (loading a million takes
    /// minutes); later runs pick from the sample the first one drew. Each run adds its
    /// decisions to that store. Without it, the store is a temporary directory removed at
    /// the end.
    #[arg(long)]
    pub data: Option<std::path::PathBuf>,
    /// Also run the disk reference with every core kept busy by spinning threads, to see
    /// what contention for the CPU alone does to a commit's latency.
    #[arg(long)]
    pub disk_busy: bool,
}

/// What `--data` keeps beside the store: how many customers it was loaded with, and the
/// sample of them the requests pick from.
#[derive(serde::Serialize, serde::Deserialize)]
struct Loaded {
    profiles: usize,
    ids: Vec<String>,
}

const LOADED_FILE: &str = "bench-nba-customers.json";

/// The customers of a kept store, loading them first when the directory has none yet.
async fn customers(dir: &std::path::Path, profiles: usize, sample: usize) -> Result<Vec<String>> {
    let marker = dir.join(LOADED_FILE);
    if marker.exists() {
        let loaded: Loaded = serde_json::from_slice(&std::fs::read(&marker)?)
            .with_context(|| format!("{} is not a customer list", marker.display()))?;
        anyhow::ensure!(
            loaded.profiles == profiles,
            "{} holds {} customers; ask for that many, or name another directory",
            dir.display(),
            loaded.profiles
        );
        eprintln!("using the {profiles} customers loaded in {}", dir.display());
        return Ok(loaded.ids);
    }
    anyhow::ensure!(
        !dir.exists() || std::fs::read_dir(dir)?.next().is_none(),
        "{} is neither empty nor a store this benchmark loaded",
        dir.display()
    );
    let ids = fill(dir, profiles, sample).await?;
    std::fs::write(
        &marker,
        serde_json::to_vec(&Loaded {
            profiles,
            ids: ids.clone(),
        })?,
    )?;
    Ok(ids)
}

/// A catalog of `n` actions over a few traits and every computed feature: rules of every
/// stage, context weights, levers, contact caps that leave room. The last one is do-nothing.
pub fn catalog(n: usize) -> String {
    let mut out = String::from(
        r#"[traits]
plan = "string"
churn_risk = "number"
segment = "string"

[context]
reason = "string"

[levers]
retention = 1.5
growth = 1.0
care = 1.2

[contact_policy]
suppress_after_rejections = 3
[[contact_policy.cap]]
channel = "web"
max = 50
period = "1d"

[control]
rate = 0.02
"#,
    );
    let kinds = [
        ("retention", "retention"),
        ("upsell", "growth"),
        ("education", "care"),
        ("service_recovery", "care"),
    ];
    let plans = ["fiber", "copper", "mobile"];
    for i in 0..n.saturating_sub(1) {
        let (kind, lever) = kinds[i % kinds.len()];
        let plan = plans[i % plans.len()];
        out.push_str(&format!(
            r#"
[[action]]
id = "action_{i:03}"
kind = "{kind}"
title = "offer number {i}"
value = {value}
lever = "{lever}"
prior = [{a}, {b}]
eligibility = ['plan == "{plan}" || segment != "blocked"']
applicability = ["churn_risk > {risk} || support_contacts_30d >= 0"]
suitability = ["tenure_days >= 0 && open_conversations < 10"]
because = "it suits your plan"
[[action.weight]]
when = 'context.reason == "cancel"'
factor = {factor}
"#,
            value = 10 + (i * 7) % 190,
            a = 1 + i % 3,
            b = 5 + i % 11,
            risk = (i % 9) as f64 / 10.0,
            factor = if kind == "retention" { 3.0 } else { 1.0 },
        ));
    }
    out.push_str(
        "\n[[action]]\nid = \"do_nothing\"\nkind = \"do_nothing\"\nvalue = 2\nprior = [1, 1]\n",
    );
    out
}

async fn fill(dir: &std::path::Path, profiles: usize, sample: usize) -> Result<Vec<String>> {
    let store: Arc<rapport_store::sqlite::SqliteStore> =
        Arc::new(rapport_store::sqlite::SqliteStore::open(dir)?);
    let dyn_store: Arc<dyn Store> = store.clone();
    let ws = crate::cli::workspace_id(dyn_store.as_ref(), WorkspaceName::DEFAULT).await?;
    let engine = Arc::new(Engine::new(dyn_store.clone(), EngineOptions::default())?);
    let started = Instant::now();
    let batch = 1000;
    let mut tasks = tokio::task::JoinSet::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..3 {
        let (engine, ws, next) = (engine.clone(), ws.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let from = next.fetch_add(batch, std::sync::atomic::Ordering::Relaxed);
                if from >= profiles {
                    return Ok::<(), anyhow::Error>(());
                }
                let mut events = Vec::with_capacity(batch + batch / 10);
                for i in from..(from + batch).min(profiles) {
                    let plan = ["fiber", "copper", "mobile"][i % 3];
                    let v = json!({"type": "identify", "userId": format!("nba-{i}"),
                        "messageId": format!("nba-id-{i}"), "timestamp": "2026-01-10T10:00:00Z",
                        "traits": {"plan": plan, "churn_risk": (i % 100) as f64 / 100.0, "segment": "s"},
                        "context": {"consent": {"categoryPreferences": {"Personalization": true}}}});
                    events.push(rapport_ingest::parse_value(v, chrono::Utc::now())?);
                    if i % 10 == 0 {
                        let v = json!({"type": "track", "userId": format!("nba-{i}"), "event": "Order Completed",
                            "messageId": format!("nba-order-{i}"), "timestamp": "2026-01-12T10:00:00Z",
                            "properties": {"revenue": 42.5}});
                        events.push(rapport_ingest::parse_value(v, chrono::Utc::now())?);
                    }
                }
                engine.apply(&ws, events).await?;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    eprintln!(
        "loaded {profiles} customers in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut ids = Vec::with_capacity(sample);
    for _ in 0..sample {
        let i = rng.gen_range(0..profiles);
        let user = Identifier::new(IdentifierKind::UserId, &format!("nba-{i}"))?;
        if let Some(p) = store.profile_by_identifier(&ws, &user).await? {
            ids.push(p.id.to_string());
        }
    }
    drop(engine);
    store.close();
    Ok(ids)
}

#[derive(Default)]
struct Phase {
    latencies_us: Vec<u64>,
    /// (when the request was due, in µs after the phase's start; its latency in µs)
    samples: Vec<(u64, u64)>,
    failures: u64,
    /// Answers that offered at least one action (so the server recorded a decision).
    offering: u64,
    sent: u64,
    seconds: f64,
}

impl Phase {
    /// Prints the phase's row of the results table and returns its p50 and p99 (ms).
    fn row(&mut self, name: &str, load_after: &str) -> (f64, f64) {
        let (p50, p99) = (self.percentile_ms(0.5), self.percentile_ms(0.99));
        println!(
            "| {name} | {} | {:.0} | {} | {p50:.2} | {p99:.2} | {load_after} |",
            self.sent,
            self.sent as f64 / self.seconds,
            self.failures
        );
        (p50, p99)
    }

    fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        self.latencies_us.sort_unstable();
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }

    /// One row per second of the phase, by when requests were due.
    fn timeline(&self) -> Vec<(u64, usize, f64, f64, f64)> {
        let mut seconds: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
        for &(due, lat) in &self.samples {
            seconds.entry(due / 1_000_000).or_default().push(lat);
        }
        seconds
            .into_iter()
            .map(|(s, mut l)| {
                l.sort_unstable();
                let at = |p: f64| l[((l.len() as f64 - 1.0) * p).round() as usize] as f64 / 1e3;
                (s, l.len(), at(0.5), at(0.99), at(1.0))
            })
            .collect()
    }
}

/// CPU used by the server and by this load generator over a phase.
struct Usage {
    /// user and kernel seconds of the server
    server: (f64, f64),
    /// user and kernel seconds of this process
    load: (f64, f64),
    /// share of the machine's CPU time that was busy (every process)
    machine_busy: f64,
    /// share of the machine's CPU time the host gave to someone else (steal)
    stolen: f64,
    seconds: f64,
}

/// The counters when a phase began.
struct UsageStart {
    server: (f64, f64),
    load: (f64, f64),
    machine: crate::bench::MachineTicks,
    at: Instant,
}

impl Usage {
    fn start(server: u32, me: u32) -> UsageStart {
        UsageStart {
            server: crate::bench::cpu_seconds(server),
            load: crate::bench::cpu_seconds(me),
            machine: crate::bench::machine_ticks(),
            at: Instant::now(),
        }
    }
}

impl UsageStart {
    fn end(self, server: u32, me: u32) -> Usage {
        let (s, l, m) = (
            crate::bench::cpu_seconds(server),
            crate::bench::cpu_seconds(me),
            crate::bench::machine_ticks(),
        );
        let (machine_busy, stolen) = m.shares_since(&self.machine);
        Usage {
            server: (s.0 - self.server.0, s.1 - self.server.1),
            load: (l.0 - self.load.0, l.1 - self.load.1),
            machine_busy,
            stolen,
            seconds: self.at.elapsed().as_secs_f64().max(1e-9),
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Nba,
    Read,
}

/// Where the load goes and what it picks from.
struct Target {
    base: String,
    key: String,
    ids: Arc<Vec<String>>,
    connections: usize,
}

/// Open-loop load: request `i` is due at `start + i / rate` and goes out on connection
/// `i % C`, when due or as soon as that connection is free; its latency counts from when it
/// was due, so a server that falls behind shows as latency, not as a lower send rate.
///
/// A thread of its own releases each request when it is due. Tokio's timers tick once a
/// millisecond, so connection tasks that slept until their own due times woke up to a
/// millisecond late: every measured latency, the reference's included, carried up to 1 ms of
/// the load generator's own lateness, and requests went out in bunches on the tick. The
/// releasing thread sleeps with the system's timer instead (its slack set to 1 µs).
async fn phase(target: &Target, kind: Kind, rate: u64, seconds: u64, seed: u64) -> Result<Phase> {
    let connections = target.connections;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap_or_default();
    let total = rate * seconds;
    let lead = Duration::from_millis(50);
    let start = Instant::now() + lead;
    let mut queues = Vec::with_capacity(connections);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections as u64 {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
        queues.push(tx);
        let (client, ids, base, key) = (
            client.clone(),
            target.ids.clone(),
            target.base.clone(),
            target.key.clone(),
        );
        tasks.spawn(async move {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (c * 7919));
            let mut samples = Vec::new();
            let mut failures = 0u64;
            let mut offering = 0u64;
            while let Some((i, due)) = rx.recv().await {
                let id = &ids[rng.gen_range(0..ids.len())];
                let req = match kind {
                    Kind::Nba => client
                        .post(format!("{base}/v1/decisions/next-best-action"))
                        .bearer_auth(&key)
                        .json(&json!({"profile_id": id, "channel": "web",
                            "context": {"reason": if i % 3 == 0 { "cancel" } else { "browse" }}})),
                    Kind::Read => client
                        .get(format!("{base}/v1/profiles/{id}"))
                        .bearer_auth(&key),
                };
                let ok = match req.send().await {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        // Only a decision's answer can offer; a profile is not searched.
                        if let Ok(body) = r.bytes().await {
                            let decided = matches!(kind, Kind::Nba) && ok;
                            offering += u64::from(decided && offers_something(&body));
                        }
                        ok
                    }
                    Err(_) => false,
                };
                let took = due.elapsed().as_micros() as u64;
                samples.push(((due - start).as_micros() as u64, took));
                if !ok {
                    failures += 1;
                }
            }
            (samples, failures, offering)
        });
    }
    let release = std::thread::Builder::new()
        .name("bench-release".into())
        .spawn(move || {
            sleep_precisely();
            for i in 0..total {
                let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if queues[(i % connections as u64) as usize]
                    .send((i, due))
                    .is_err()
                {
                    break;
                }
            }
            // Dropping the senders ends each connection's loop once its queue is empty.
        });
    // Without its releasing thread a phase sends nothing; that is a failed benchmark, not a
    // phase of zero requests.
    let handle = release.context("cannot start the thread that releases requests")?;
    let joined = tokio::task::spawn_blocking(move || handle.join()).await;
    anyhow::ensure!(
        matches!(joined, Ok(Ok(()))),
        "the thread that releases requests stopped early"
    );
    let mut out = Phase::default();
    while let Some(Ok((samples, failures, offering))) = tasks.join_next().await {
        out.sent += samples.len() as u64;
        out.latencies_us
            .extend(samples.iter().map(|&(_, took)| took));
        out.samples.extend(samples);
        out.failures += failures;
        out.offering += offering;
    }
    out.seconds = start.elapsed().as_secs_f64();
    Ok(out)
}

/// Whether a next-best-action answer offered an action: only then does the server write a
/// decision, so a run whose customers have all reached the catalog's contact cap measures
/// reads alone.
fn offers_something(body: &[u8]) -> bool {
    const OFFERED: &[u8] = br#""offered":true"#;
    body.windows(OFFERED.len()).any(|w| w == OFFERED)
}

/// Pages a write group adds to the log for each offer in it: the customer's leaf of the
/// decisions-by-customer index, which is a different page for nearly every offer (BENCHMARKS.md,
/// "What one offer's commit writes").
const PAGES_PER_OFFER: usize = 1;
/// Pages every write group adds once, whatever its size: the leaf of the decision-id index,
/// the decisions table's newest leaf and its parent, the file's first page and the leaf of
/// audit entries waiting.
const PAGES_PER_GROUP: usize = 5;
/// One frame of SQLite's write-ahead log: a 24-byte header and a 4 KiB page.
const LOG_FRAME: usize = 24 + 4096;
/// The reference's log file is written from its start again when it reaches this size, as
/// SQLite's log is after a checkpoint, so it is never extended during the timed part.
const LOG_FILE: u64 = 64 << 20;
/// The reference's file, in the store's directory; removed at the end.
const DISK_REFERENCE_FILE: &str = "bench-disk-commits.tmp";

/// How the disk-alone reference grouped its commits.
struct DiskCommits {
    phase: Phase,
    syncs: u64,
}

/// The disk alone doing the decisions' commits: no server, no HTTP, no SQL. Requests are due
/// at the same rate as in the timed phases; one thread takes every request due, appends the
/// log frames a write group of that many offers adds ([`PAGES_PER_GROUP`] plus
/// [`PAGES_PER_OFFER`] each) to a file in the store's directory and calls `fsync`, as the
/// store's writer does (the bundled SQLite syncs with `fsync`, not `fdatasync`). A request's
/// latency counts from when it was due to when its group's `fsync` returned.
///
/// Every offer must be on disk before it is answered, so this is the part of a decision's
/// latency that no work on the server's CPU can remove: its p99 is the floor under the
/// next-best-action phase's p99 on this disk. It runs after the server has stopped, with the
/// CPU otherwise idle.
fn disk_commits(
    dir: &std::path::Path,
    rate: u64,
    warmup: u64,
    seconds: u64,
) -> Result<DiskCommits> {
    use std::os::unix::fs::FileExt;
    let path = dir.join(DISK_REFERENCE_FILE);
    let _remove = crate::bench::scopeguard(path.clone());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    // Written in full first, so the timed part overwrites blocks the file already has.
    let zeros = vec![0u8; 1 << 20];
    for at in (0..LOG_FILE).step_by(zeros.len()) {
        file.write_all_at(&zeros, at)?;
    }
    file.sync_all()?;
    let (warm, timed) = (rate * warmup, rate * seconds);
    let total = warm + timed;
    // Frames of random bytes, enough for the largest group.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let mut frames = vec![0u8; LOG_FRAME * (PAGES_PER_GROUP + PAGES_PER_OFFER * MAX_GROUP)];
    rng.fill(&mut frames[..]);
    sleep_precisely();
    let start = Instant::now() + Duration::from_millis(50);
    let due = |i: u64| start + Duration::from_nanos(i * 1_000_000_000 / rate);
    let timed_start = due(warm);
    let mut phase = Phase {
        latencies_us: Vec::with_capacity(timed as usize),
        samples: Vec::with_capacity(timed as usize),
        ..Phase::default()
    };
    let (mut next, mut at, mut syncs) = (0u64, 0u64, 0u64);
    while next < total {
        let now = Instant::now();
        if due(next) > now {
            std::thread::sleep(due(next) - now);
            continue;
        }
        let mut last = next + 1;
        while last < total && last - next < MAX_GROUP as u64 && due(last) <= now {
            last += 1;
        }
        let offers = (last - next) as usize;
        let bytes = LOG_FRAME * (PAGES_PER_GROUP + PAGES_PER_OFFER * offers);
        if at + bytes as u64 > LOG_FILE {
            at = 0;
        }
        file.write_all_at(&frames[..bytes], at)?;
        file.sync_all()?;
        at += bytes as u64;
        let done = Instant::now();
        for i in next.max(warm)..last {
            let took = (done - due(i)).as_micros() as u64;
            phase.latencies_us.push(took);
            phase
                .samples
                .push(((due(i) - timed_start).as_micros() as u64, took));
        }
        if last > warm {
            syncs += 1;
        }
        next = last;
    }
    phase.sent = timed;
    phase.seconds = timed_start.elapsed().as_secs_f64();
    Ok(DiskCommits { phase, syncs })
}

/// One run of the disk reference, and what the machine did meanwhile.
struct DiskRun {
    commits: DiskCommits,
    spinners: usize,
    load_after: String,
    /// Share of the machine's time stolen by the host during the run.
    stolen: f64,
}

/// [`disk_commits`], with `spinners` threads of normal priority spinning on the CPU meanwhile.
fn disk_reference(
    dir: &std::path::Path,
    rate: u64,
    warmup: u64,
    seconds: u64,
    spinners: usize,
) -> Result<DiskRun> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let spinning: Vec<_> = (0..spinners)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let before = crate::bench::machine_ticks();
    let commits = disk_commits(dir, rate, warmup, seconds);
    let after = crate::bench::machine_ticks();
    stop.store(true, Ordering::Relaxed);
    for s in spinning {
        let _ = s.join();
    }
    Ok(DiskRun {
        commits: commits?,
        spinners,
        load_after: load_average(),
        stolen: after.shares_since(&before).1,
    })
}

/// Cores this process may run on.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// This thread's sleeps end within 1 µs of when they were asked to (the default timer slack
/// is 50 µs), so requests are released on time.
fn sleep_precisely() {
    // SAFETY: prctl with PR_SET_TIMERSLACK only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1_000, 0, 0, 0);
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cores} cores, {cpu}")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub async fn run(args: NbaBenchArgs) -> Result<()> {
    anyhow::ensure!(args.actions >= 2, "--actions must be at least 2");
    anyhow::ensure!(args.profiles >= 1, "--profiles must be at least 1");
    anyhow::ensure!(
        (1..=100_000).contains(&args.rate),
        "--rate must be between 1 and 100000"
    );
    anyhow::ensure!(
        (1..=600).contains(&args.seconds),
        "--seconds must be between 1 and 600"
    );
    anyhow::ensure!(
        (1..=600).contains(&args.warmup),
        "--warmup must be between 1 and 600"
    );
    let tmp = std::env::temp_dir().join(format!("rapport-bench-nba-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let _cleanup = crate::bench::scopeguard(tmp.clone());
    let data = args.data.clone().unwrap_or_else(|| tmp.join("data"));
    println!("# rapport bench nba");
    println!(
        "machine: {}; load average at start: {}",
        machine(),
        load_average()
    );
    println!(
        "{} customers, {} actions, {} requests/s for {}s per phase over {} connections",
        args.profiles, args.actions, args.rate, args.seconds, args.connections
    );
    let ids = if args.data.is_some() {
        customers(&data, args.profiles, args.sample.max(1)).await?
    } else {
        fill(&data, args.profiles, args.sample.max(1)).await?
    };
    let ids = Arc::new(ids);
    anyhow::ensure!(!ids.is_empty(), "no customer was found after loading");
    let catalog_path = tmp.join("catalog.toml");
    std::fs::write(&catalog_path, catalog(args.actions))?;
    let catalog_env = catalog_path.to_str().context("path is not UTF-8")?;
    let (server, key) = crate::bench::start_server_as(
        &data,
        &[("RAPPORT__DECISIONS__CATALOG", catalog_env)],
        "admin",
    )
    .await?;
    let target = Target {
        base: server.base.clone(),
        key,
        ids: ids.clone(),
        connections: args.connections,
    };

    // Each phase is measured in its steady state: right before it, the same requests at the
    // same rate warm the connections, the server's threads and caches and the page cache.
    // (A warm-up at a lower rate, followed by ten seconds of profile reads, left the first
    // second of decisions to fill the writer's cache and queue: that measured a cold start.)
    let (rate, warmup) = (args.rate, args.warmup);
    let warm_up = |kind| {
        let target = &target;
        async move {
            let w = phase(target, kind, rate, warmup, 1).await?;
            anyhow::ensure!(
                w.failures < w.sent,
                "every warm-up request failed; is the catalog loaded?"
            );
            Ok::<(), anyhow::Error>(())
        }
    };
    let me = std::process::id();
    warm_up(Kind::Read).await?;
    let usage = Usage::start(server.pid, me);
    let mut read = phase(&target, Kind::Read, args.rate, args.seconds, 2).await?;
    let read_usage = usage.end(server.pid, me);
    let la_read = load_average();
    warm_up(Kind::Nba).await?;
    let nba_started = chrono::Utc::now();
    let usage = Usage::start(server.pid, me);
    let mut nba = phase(&target, Kind::Nba, args.rate, args.seconds, 3).await?;
    let nba_usage = usage.end(server.pid, me);
    let la_nba = load_average();
    drop(server);
    let seconds = args.seconds;
    let disk_run = |spinners: usize| {
        let dir = data.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                disk_reference(&dir, rate, warmup, seconds, spinners)
            })
            .await
            .context("the disk reference's thread failed")?
        }
    };
    let mut disk = disk_run(0).await?;
    let mut disk_busy = match args.disk_busy {
        true => Some(disk_run(cores()).await?),
        false => None,
    };

    println!();
    println!("| request | sent | achieved/s | failures | p50 ms | p99 ms | load average after |");
    println!("|---|---|---|---|---|---|---|");
    let (rp50, rp99) = read.row("profile read (reference)", &la_read);
    let (np50, np99) = nba.row("next-best-action", &la_nba);
    let (dp50, dp99) = disk
        .commits
        .phase
        .row("disk commits alone (reference)", &disk.load_after);
    if let Some(busy) = disk_busy.as_mut() {
        busy.commits.phase.row(
            "disk commits alone, every core kept busy (reference)",
            &busy.load_after,
        );
    }
    println!();
    let share = nba.offering as f64 / nba.sent.max(1) as f64;
    println!(
        "Decisions that offered an action, each one written to the store: {} of {} ({:.0}%).",
        nba.offering,
        nba.sent,
        share * 100.0
    );
    if share < 0.9 {
        println!(
            "WARNING: {:.0}% of the decisions offered nothing and so wrote nothing: this run \
             measured fewer writes than it should. With --data, every run adds offers to the \
             same customers until they reach the catalog's contact cap (50 a day on the web); \
             use a new directory, or wait a day.",
            (1.0 - share) * 100.0
        );
    }
    println!(
        "next-best-action / profile read: p50 {:.1}x, p99 {:.1}x",
        np50 / rp50.max(1e-9),
        np99 / rp99.max(1e-9)
    );
    println!(
        "next-best-action / disk commits alone: p50 {:.1}x, p99 {:.1}x",
        np50 / dp50.max(1e-9),
        np99 / dp99.max(1e-9)
    );
    println!(
        "The disk reference wrote {} groups of log frames with fsync ({:.0}/s, {:.1} offers each) \
         to a file beside the store, with no server running ({:.0}% of the machine's time \
         stolen by the host meanwhile): the floor under any decision that is answered only \
         once it is on disk.",
        disk.commits.syncs,
        disk.commits.syncs as f64 / disk.commits.phase.seconds,
        disk.commits.phase.sent as f64 / disk.commits.syncs.max(1) as f64,
        disk.stolen * 100.0
    );
    if let Some(busy) = &disk_busy {
        println!(
            "With every core kept busy by {} spinning threads of normal priority, the same \
             commits wrote {} groups ({:.0}% stolen by the host meanwhile): what contention for \
             the CPU alone does to a commit's latency.",
            busy.spinners,
            busy.commits.syncs,
            busy.stolen * 100.0
        );
    }
    println!();
    println!(
        "Where the CPU went in each phase (from /proc; 1.00 core = one core busy all the time):"
    );
    println!("| phase | server cores (user + kernel) | server CPU ms per request | load generator cores | machine busy | stolen by the host |");
    println!("|---|---|---|---|---|---|");
    for (name, u, n) in [
        ("profile read (reference)", &read_usage, read.sent),
        ("next-best-action", &nba_usage, nba.sent),
    ] {
        println!(
            "| {name} | {:.2} ({:.2} + {:.2}) | {:.3} | {:.2} | {:.0}% | {:.0}% |",
            (u.server.0 + u.server.1) / u.seconds,
            u.server.0 / u.seconds,
            u.server.1 / u.seconds,
            (u.server.0 + u.server.1) * 1e3 / n.max(1) as f64,
            (u.load.0 + u.load.1) / u.seconds,
            u.machine_busy * 100.0,
            u.stolen * 100.0
        );
    }
    println!(
        "(On a virtual machine, time stolen by the host is time its cores were ready to run \
         but the host ran other tenants' work; runs with more than a few percent stolen are \
         measuring the neighbours.)"
    );
    if args.timeline {
        println!();
        println!(
            "Second by second (second 0 began about {}):",
            (nba_started + chrono::Duration::milliseconds(50)).format("%H:%M:%S%.3f")
        );
        println!("| second | next-best-actions due | p50 ms | p99 ms | slowest ms |");
        println!("|---|---|---|---|---|");
        for (s, n, p50, p99, max) in nba.timeline() {
            println!("| {s} | {n} | {p50:.2} | {p99:.2} | {max:.2} |");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_generated_catalog_loads_with_every_action() {
        for n in [2, 10, 100] {
            let c = rapport_decide::nba::catalog::Catalog::parse(&super::catalog(n))
                .unwrap_or_else(|e| panic!("{e:#?}"));
            assert_eq!(c.actions.len(), n);
        }
    }

    /// An answer counts as offering only when one of its ranked actions is offered.
    #[test]
    fn answers_that_offer_are_told_from_those_that_do_not() {
        let ranked = |offered: bool| {
            serde_json::to_vec(&serde_json::json!({"ranked": [
                {"action_id": "a1", "offered": false},
                {"action_id": "a2", "offered": offered}
            ], "filtered": []}))
            .unwrap()
        };
        assert!(super::offers_something(&ranked(true)));
        assert!(!super::offers_something(&ranked(false)));
        assert!(!super::offers_something(b""));
    }

    /// The disk reference answers every request due in its timed part, in groups that
    /// never outnumber the requests, and leaves nothing behind in the store's directory.
    #[test]
    fn the_disk_reference_commits_every_request_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let d = super::disk_commits(dir.path(), 200, 1, 1).unwrap();
        assert_eq!(d.phase.sent, 200);
        assert_eq!(d.phase.latencies_us.len(), 200);
        assert_eq!(d.phase.samples.len(), 200);
        assert!(d.syncs >= 1 && d.syncs <= 200, "{} syncs", d.syncs);
        assert!(d.phase.samples.iter().all(|&(due, _)| due < 1_000_000));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// A kept store is used again only for the customer count it was loaded with, and a
    /// directory holding something else is never loaded into.
    #[tokio::test]
    async fn a_kept_store_is_used_again_only_as_it_was_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept");
        std::fs::create_dir(&kept).unwrap();
        let loaded = super::Loaded {
            profiles: 10,
            ids: vec!["p1".into(), "p2".into()],
        };
        std::fs::write(
            kept.join(super::LOADED_FILE),
            serde_json::to_vec(&loaded).unwrap(),
        )
        .unwrap();
        assert_eq!(
            super::customers(&kept, 10, 5).await.unwrap(),
            vec!["p1".to_owned(), "p2".to_owned()]
        );
        let other = super::customers(&kept, 20, 5).await.unwrap_err();
        assert!(other.to_string().contains("holds 10 customers"), "{other}");

        let busy = dir.path().join("busy");
        std::fs::create_dir(&busy).unwrap();
        std::fs::write(busy.join("notes.txt"), "mine").unwrap();
        let refused = super::customers(&busy, 10, 5).await.unwrap_err();
        assert!(refused.to_string().contains("neither empty"), "{refused}");
        assert_eq!(
            std::fs::read_to_string(busy.join("notes.txt")).unwrap(),
            "mine"
        );
    }
}
