//! `rapport bench scaleout`: end-to-end ingestion (first request sent → last event applied in
//! the store) in three set-ups measured in one run, each on a fresh store:
//! - embedded `rapport serve` (the reference: events are applied before the answer);
//! - `rapport serve --mode api` with one `rapport worker` over NATS JetStream;
//! - the same with two workers;
//!
//! plus the API node's acknowledgement latency (publish confirmed by JetStream) for batches and
//! single events. Everything runs on this machine: the NATS server must be on loopback, and
//! every stream the benchmark creates is deleted at the end.
//!
//! The scale-out set-ups share a SQLite data directory by default, where every write takes
//! the same file lock; with `--postgres-url` they share a PostgreSQL schema of their own
//! instead (dropped at the end), the store scale-out mode is meant for.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use rapport_bus::{NatsBus, Prefix};
use tokio::io::AsyncBufReadExt;

use crate::bench::{load, Bodies, PhaseResult};
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct ScaleoutArgs {
    /// Events sent in each set-up.
    #[arg(long, default_value_t = 20_000)]
    pub events: u64,
    /// Events per batch request.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Concurrent connections sending batches.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Distinct customers the events are spread over.
    #[arg(long, default_value_t = 2_000)]
    pub customers: usize,
    /// Single-event requests for the latency phase (0 skips it).
    #[arg(long, default_value_t = 2_000)]
    pub single_events: u64,
    /// The NATS server (default: `bus.url` of the configuration); must be on loopback.
    #[arg(long, value_name = "URL")]
    pub nats_url: Option<String>,
    /// Partitions of the bench's bus; each worker applies up to this many events at once.
    /// A partition has one event in flight at a time, so this bounds scale-out throughput.
    #[arg(long, default_value_t = 64)]
    pub partitions: u16,
    /// Run the scale-out set-ups on this PostgreSQL server (loopback only) instead of SQLite.
    #[arg(long, value_name = "URL")]
    pub postgres_url: Option<String>,
    /// Give up on a set-up whose events are not all applied within this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
}

/// A child process of the benchmark, killed when dropped.
struct Child {
    inner: tokio::process::Child,
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.inner.start_kill();
    }
}

struct Setup {
    exe: std::path::PathBuf,
    env: Vec<(String, String)>,
    /// `--data-dir DIR` for SQLite; nothing for PostgreSQL (configured in `env`).
    store_args: Vec<String>,
}

impl Setup {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.exe);
        c.args(args)
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        c
    }

    async fn key(&self, role: &str) -> Result<String> {
        let out = self
            .command(&["keys", "create", "--role", role])
            .args(&self.store_args)
            .output()
            .await?;
        if !out.status.success() {
            bail!(
                "cannot create a key: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned())
    }

    /// Starts a process and waits for the stdout line starting with `ready`; returns the rest.
    async fn start(&self, args: &[&str], ready: &str) -> Result<(Child, String)> {
        let mut child = self
            .command(args)
            .args(&self.store_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
        let rest = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                match lines.next_line().await? {
                    Some(l) => {
                        if let Some(i) = l.find(ready) {
                            return Ok::<_, anyhow::Error>(l[i + ready.len()..].trim().to_owned());
                        }
                    }
                    None => bail!("{args:?} exited before saying {ready:?}"),
                }
            }
        })
        .await
        .with_context(|| format!("{args:?} did not start within 60 s"))??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok((Child { inner: child }, rest))
    }
}

async fn applied(client: &reqwest::Client, base: &str, admin: &str) -> u64 {
    let r = client
        .get(format!("{base}/v1/stats"))
        .bearer_auth(admin)
        .send()
        .await;
    match r {
        Ok(r) => r
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["events"].as_u64())
            .unwrap_or(0),
        Err(_) => 0,
    }
}

struct Outcome {
    label: String,
    events: u64,
    /// First request sent → all acknowledged.
    ack_secs: f64,
    /// First request sent → all applied in the store.
    applied_secs: f64,
    batch: PhaseResult,
    single: Option<PhaseResult>,
    failures: u64,
}

/// One set-up: `workers` = `None` for embedded, `Some(n)` for an API node with n workers.
async fn measure(
    args: &ScaleoutArgs,
    exe: &Path,
    root: &Path,
    url: &str,
    workers: Option<usize>,
    prefixes: &mut Vec<Prefix>,
    schemas: &mut Vec<String>,
) -> Result<Outcome> {
    let label = match workers {
        None => "embedded `rapport serve`".to_owned(),
        Some(n) => format!(
            "`serve --mode api` + {n} worker{}",
            if n == 1 { "" } else { "s" }
        ),
    };
    eprintln!("{label}: starting...");
    let dir = root.join(format!("store-{}", workers.unwrap_or(0)));
    std::fs::create_dir_all(&dir)?;
    let prefix = Prefix::unique("rbench");
    prefixes.push(prefix.clone());
    let mut env = vec![
        ("RAPPORT__BUS__BACKEND".to_owned(), "nats".to_owned()),
        ("RAPPORT__BUS__URL".to_owned(), url.to_owned()),
        (
            "RAPPORT__BUS__PREFIX".to_owned(),
            prefix.as_str().to_owned(),
        ),
        // Short leases so the second worker gets its share quickly.
        ("RAPPORT__BUS__LEASE_TTL_MS".to_owned(), "3000".to_owned()),
        ("RAPPORT__BUS__FETCH_WAIT_MS".to_owned(), "500".to_owned()),
        (
            "RAPPORT__BUS__PARTITIONS".to_owned(),
            args.partitions.to_string(),
        ),
        (
            "RAPPORT__BUS__WORKER_CONCURRENCY".to_owned(),
            args.partitions.to_string(),
        ),
    ];
    let mut store_args = vec![
        "--data-dir".to_owned(),
        dir.to_str().context("data dir is not UTF-8")?.to_owned(),
    ];
    let mut store = "SQLite";
    if let (Some(url), Some(_)) = (&args.postgres_url, workers) {
        let schema = format!("rbench_{}", &prefix.as_str()[6..]);
        schemas.push(schema.clone());
        env.extend([
            (
                "RAPPORT__STORAGE__BACKEND".to_owned(),
                "postgres".to_owned(),
            ),
            ("RAPPORT__STORAGE__URL".to_owned(), url.clone()),
            ("RAPPORT__STORAGE__SCHEMA".to_owned(), schema),
        ]);
        store_args.clear();
        store = "PostgreSQL";
    }
    let label = format!("{label}, {store}");
    let setup = Setup {
        exe: exe.to_owned(),
        env,
        store_args,
    };
    let (write, admin) = (setup.key("write").await?, setup.key("admin").await?);
    let mode = if workers.is_some() { "api" } else { "embedded" };
    let (_server, base) = setup
        .start(
            &["serve", "--mode", mode, "--addr", "127.0.0.1:0"],
            "Rapport listening on ",
        )
        .await?;
    let mut _workers = Vec::new();
    for i in 0..workers.unwrap_or(0) {
        let id = format!("bench-w{i}");
        let (w, _) = setup
            .start(&["worker", "--id", &id], "joined the event bus")
            .await?;
        _workers.push(w);
    }
    if workers.is_some_and(|n| n > 1) {
        // Let the leases settle so each worker owns its share before the clock starts.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{write}:"))
    );
    let client = reqwest::Client::new();
    let start = Instant::now();
    let batch = load(
        format!("{base}/v1/batch"),
        auth.clone(),
        Arc::new(Bodies::new(args.batch_size, args.customers, "sob")),
        Arc::new(AtomicU64::new(0)),
        args.connections,
        None,
        Some(args.events),
    )
    .await;
    let ack_secs = start.elapsed().as_secs_f64();
    let deadline = start + Duration::from_secs(args.timeout_secs);
    let mut seen = 0;
    while seen < batch.events {
        if Instant::now() > deadline {
            bail!(
                "{label}: only {seen} of {} events applied after {} s",
                batch.events,
                args.timeout_secs
            );
        }
        seen = applied(&client, &base, &admin).await;
        if seen < batch.events {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let applied_secs = start.elapsed().as_secs_f64();
    let single = if args.single_events > 0 {
        Some(
            load(
                format!("{base}/v1/track"),
                auth,
                Arc::new(Bodies::new(1, args.customers, "sos")),
                Arc::new(AtomicU64::new(0)),
                16,
                None,
                Some(args.single_events),
            )
            .await,
        )
    } else {
        None
    };
    let failures = batch.failures + single.as_ref().map_or(0, |s| s.failures);
    eprintln!(
        "{label}: {} events applied in {applied_secs:.1} s",
        batch.events
    );
    Ok(Outcome {
        label,
        events: batch.events,
        ack_secs,
        applied_secs,
        batch,
        single,
        failures,
    })
}

async fn drop_schemas(url: &str, schemas: &[String]) {
    match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            for s in schemas {
                if let Err(e) = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"))
                    .await
                {
                    eprintln!("warning: could not drop schema {s}: {e}");
                }
            }
        }
        Err(e) => eprintln!("warning: could not connect to drop the benchmark's schemas: {e}"),
    }
}

fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = host_port.split(['/', '?']).next().unwrap_or(host_port);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub async fn run(args: ScaleoutArgs, config: &Config) -> Result<()> {
    let url = args
        .nats_url
        .clone()
        .unwrap_or_else(|| config.bus.url.expose().to_owned());
    for u in std::iter::once(&url).chain(args.postgres_url.as_ref()) {
        if !is_loopback(u) {
            bail!("rapport bench scaleout runs on loopback only; {u:?} is not a loopback address");
        }
    }
    if args.events == 0 || args.batch_size == 0 || args.connections == 0 {
        bail!("--events, --batch-size and --connections must be positive");
    }
    let exe = std::env::current_exe()?;
    let root = tempfile::Builder::new()
        .prefix("rapport-bench-scaleout-")
        .tempdir()?;
    let (mut prefixes, mut schemas) = (Vec::new(), Vec::new());
    let mut outcomes = Vec::new();
    let mut error = None;
    for workers in [None, Some(1), Some(2)] {
        let run = measure(
            &args,
            &exe,
            root.path(),
            &url,
            workers,
            &mut prefixes,
            &mut schemas,
        );
        match run.await {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    for p in &prefixes {
        if let Err(e) = NatsBus::delete_prefix(&url, p).await {
            eprintln!("warning: could not delete bus prefix {p}: {e}");
        }
    }
    if let Some(pg) = &args.postgres_url {
        drop_schemas(pg, &schemas).await;
    }
    if let Some(e) = error {
        return Err(e);
    }

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "## rapport bench scaleout --events {} --batch-size {} --connections {} --partitions {}{}",
        args.events,
        args.batch_size,
        args.connections,
        args.partitions,
        if args.postgres_url.is_some() {
            " --postgres-url ..."
        } else {
            ""
        }
    );
    println!();
    println!(
        "Machine: {cores} cores, {cpu}. Load generator, API node, workers, NATS ({url}) and the store on one machine, loopback."
    );
    println!(
        "End-to-end = first request sent until the last event is applied in the store; acknowledged = until the last request was answered. {} customers.",
        args.customers
    );
    println!();
    println!("| set-up | end-to-end | acknowledged | batch ack p50 / p99 | single-event ack p50 / p99 | failed requests |");
    println!("|---|---|---|---|---|---|");
    for o in &mut outcomes {
        let single = match o.single.as_mut() {
            Some(s) => format!(
                "{:.1} / {:.1} ms ({:.0} req/s)",
                s.percentile_ms(0.5),
                s.percentile_ms(0.99),
                s.rate()
            ),
            None => "-".to_owned(),
        };
        println!(
            "| {} | {:.0} events/s ({} in {:.1} s) | {:.0} events/s | {:.1} / {:.1} ms | {} | {} |",
            o.label,
            o.events as f64 / o.applied_secs,
            o.events,
            o.applied_secs,
            o.events as f64 / o.ack_secs,
            o.batch.percentile_ms(0.5),
            o.batch.percentile_ms(0.99),
            single,
            o.failures
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn only_loopback_servers_are_benchmarked() {
        for ok in [
            "nats://127.0.0.1:4222",
            "nats://localhost:4222",
            "nats://user:pw@127.0.0.1:4222",
            "nats://[::1]:4222",
            "127.0.0.1:4222",
            "postgres://postgres@127.0.0.1:5432/test",
        ] {
            assert!(is_loopback(ok), "{ok}");
        }
        for no in [
            "nats://10.0.0.5:4222",
            "nats://nats.example.com:4222",
            "nats://x@8.8.8.8",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }
}
