//! Scale-out processes: `rapport serve --mode api` (accepts events onto the event bus) and
//! `rapport worker` (applies them), and reaching the bus with backoff when it is down.
//!
//! Neither process ever loses an acknowledged event when the bus is down: an API node that
//! cannot reach it answers ingestion with 503 `bus_unavailable` (and keeps serving reads), a
//! worker waits. Both retry the connection with exponential backoff and say why on stderr; only
//! a configuration the bus refuses (another partition count, an invalid prefix) stops them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::ValueEnum;
use rapport_bus::{Bus, BusError, InProcessBus, NatsBus, WorkerId};
use rapport_server::engine::Engine;
use rapport_server::sink::{BusSlot, EventSink};
use rapport_server::worker::{WorkerOptions, WorkerStats};
use rapport_store::Store;
use tokio::task::JoinHandle;

use crate::config::Config;

/// What `rapport serve` runs as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ServeMode {
    /// Everything in this process: events are applied before the request is answered.
    #[default]
    Embedded,
    /// An API node of a scale-out deployment: events are stored on the event bus (NATS
    /// JetStream) before the request is answered, and `rapport worker` processes apply them.
    Api,
}

#[derive(Debug, clap::Args, Clone, Default)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub store: crate::cli::StoreArgs,
    /// This worker's name in the group (letters, digits, `_`, `-`); a fresh one by default.
    #[arg(long, value_name = "NAME")]
    pub id: Option<String>,
}

/// Connects once to the configured bus.
async fn connect_once(config: &Config) -> Result<Arc<dyn Bus>, BusError> {
    let cfg = config.bus.bus_config().map_err(BusError::InvalidConfig)?;
    match config.bus.backend.as_str() {
        "nats" => Ok(Arc::new(
            NatsBus::connect(config.bus.url.expose(), cfg).await?,
        )),
        "inprocess" => Ok(Arc::new(InProcessBus::new(cfg)?)),
        other => Err(BusError::InvalidInput(format!(
            "unknown bus backend {other:?}"
        ))),
    }
}

/// Connects, retrying transient failures with exponential backoff (0.5 s doubling up to
/// `bus.connect_backoff_max_ms`) until it works or `give_up` resolves (then `Ok(None)`).
/// A failure no retry can fix (settings that disagree with the bus) is returned at once.
pub async fn connect_with_backoff(
    config: &Config,
    give_up: impl Future<Output = ()>,
) -> Result<Option<Arc<dyn Bus>>> {
    tokio::pin!(give_up);
    let cap = Duration::from_millis(config.bus.connect_backoff_max_ms);
    let mut delay = Duration::from_millis(500).min(cap);
    let mut attempt = 1u32;
    loop {
        match connect_once(config).await {
            Ok(bus) => {
                if attempt > 1 {
                    tracing::warn!(attempt, "connected to the event bus");
                    eprintln!("connected to the event bus after {attempt} attempts");
                }
                return Ok(Some(bus));
            }
            Err(e) if e.is_transient() => {
                // Said on stderr whatever the log level: this is why nothing is happening.
                eprintln!(
                    "cannot reach the event bus at {} (attempt {attempt}): {e}; retrying in {:.1} s",
                    config.bus.url.redacted(),
                    delay.as_secs_f64()
                );
            }
            Err(e) => bail!("the event bus refused this process: {e}"),
        }
        tokio::select! {
            _ = &mut give_up => return Ok(None),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(cap);
        attempt += 1;
    }
}

fn worker_options(config: &Config) -> WorkerOptions {
    WorkerOptions {
        concurrency: config.bus.worker_concurrency,
        ..WorkerOptions::default()
    }
}

/// The event sink of an API node, and what runs behind it.
pub struct ApiSink {
    pub sink: EventSink,
    connector: Option<JoinHandle<()>>,
    /// With the in-process bus: this process's own worker and its stop signal.
    local_worker: Option<(tokio::sync::oneshot::Sender<()>, JoinHandle<()>)>,
}

impl ApiSink {
    /// Stops the background connection attempts and (in-process bus) lets the local worker
    /// apply what it holds and leave.
    pub async fn stop(mut self) {
        if let Some(c) = self.connector.take() {
            c.abort();
        }
        if let Some((stop, handle)) = self.local_worker.take() {
            let _ = stop.send(());
            let _ = handle.await;
        }
    }
}

/// The sink for `mode`: embedded, or a bus slot filled as soon as the bus answers. The API
/// node starts serving at once either way; until the bus is reached, ingestion answers 503.
pub async fn api_sink(mode: ServeMode, config: &Config, store: Arc<dyn Store>) -> Result<ApiSink> {
    let mut out = ApiSink {
        sink: EventSink::Embedded,
        connector: None,
        local_worker: None,
    };
    if mode == ServeMode::Embedded {
        return Ok(out);
    }
    let slot = BusSlot::default();
    out.sink = EventSink::Bus(slot.clone());
    if config.bus.backend == "inprocess" {
        eprintln!(
            "warning: bus.backend = \"inprocess\": events are acknowledged once in this process's memory and applied by its own worker; use \"nats\" in production"
        );
        let bus = connect_once(config).await.map_err(|e| anyhow!(e))?;
        slot.fill(bus.clone());
        let engine = Arc::new(Engine::new(store, config.engine_options_with_models()?)?);
        let worker = bus.join(WorkerId::generate()).await?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let options = worker_options(config);
        let handle = tokio::spawn(async move {
            let stop = async {
                let _ = stop_rx.await;
            };
            let stats = Arc::new(WorkerStats::default());
            if let Err(e) = rapport_server::worker::run(engine, worker, options, stats, stop).await
            {
                tracing::error!(error = %e, "the in-process worker stopped");
            }
        });
        out.local_worker = Some((stop_tx, handle));
        return Ok(out);
    }
    // One attempt in the foreground, so a refused configuration stops the process at once;
    // an unreachable server is retried in the background while the node serves.
    match connect_once(config).await {
        Ok(bus) => slot.fill(bus),
        Err(e) if e.is_transient() => {
            eprintln!(
                "cannot reach the event bus at {}: {e}; serving anyway, ingestion answers 503 bus_unavailable until it is reached",
                config.bus.url.redacted()
            );
            let config = config.clone();
            out.connector = Some(tokio::spawn(async move {
                match connect_with_backoff(&config, std::future::pending()).await {
                    Ok(Some(bus)) => slot.fill(bus),
                    Ok(None) => {}
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        tracing::error!(error = %e, "the event bus refused this API node; ingestion stays unavailable");
                    }
                }
            }));
        }
        Err(e) => bail!("the event bus refused this API node: {e}"),
    }
    Ok(out)
}

/// `rapport worker`: joins the worker group and applies events until SIGINT or SIGTERM, then
/// hands its partitions over and exits.
pub async fn worker(
    config: &Config,
    args: &WorkerArgs,
    store: Arc<dyn Store>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    if config.bus.backend != "nats" {
        bail!(
            "rapport worker needs bus.backend = \"nats\" (an \"inprocess\" bus lives inside `rapport serve --mode api`, which runs its own worker)"
        );
    }
    let id = match &args.id {
        Some(raw) => WorkerId::parse(raw).map_err(|e| anyhow!(e))?,
        None => WorkerId::generate(),
    };
    tokio::pin!(shutdown);
    let Some(bus) = connect_with_backoff(config, &mut shutdown).await? else {
        return Ok(());
    };
    let engine = Arc::new(Engine::new(store, config.engine_options_with_models()?)?);
    let joined = bus.join(id.clone()).await?;
    let stats = Arc::new(WorkerStats::default());
    println!(
        "Rapport worker {id} joined the event bus at {} (prefix {}, {} partitions)",
        config.bus.url.redacted(),
        config.bus.prefix,
        config.bus.partitions
    );
    let report = {
        let stats = stats.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                tracing::info!(
                    applied = stats.applied(),
                    duplicates = stats.duplicates(),
                    dead_lettered = stats.dead_lettered(),
                    "worker progress"
                );
            }
        })
    };
    let result = rapport_server::worker::run(
        engine,
        joined,
        worker_options(config),
        stats.clone(),
        shutdown,
    )
    .await;
    report.abort();
    println!(
        "Rapport worker {id} left: {} applied, {} duplicates skipped, {} dead-lettered",
        stats.applied(),
        stats.duplicates(),
        stats.dead_lettered()
    );
    result.map_err(|e| anyhow!("the worker stopped: {e}"))
}
