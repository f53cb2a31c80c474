//! The worker side of scale-out mode: takes events off the event bus and applies them with
//! [`Engine::apply`], the same stage an embedded server runs while the client waits.
//!
//! Contract per delivery (the bus hands out one message per partition at a time, so a
//! customer's events are applied in the order they were accepted):
//! - decode the event and apply it; a `messageId` the store has applied before is skipped, so
//!   a redelivery (after a crash between commit and ack) changes nothing; then ack;
//! - the store is unavailable (down, locked, disk full): hold the message and retry with
//!   backoff for as long as it takes, telling the bus it is still in progress. An outage is
//!   not the message's fault and must not dead-letter healthy events;
//! - anything else (an unreadable event, a store refusal): `fail` with backoff; after
//!   `max_attempts` deliveries the bus moves it to the dead-letter stream;
//! - the partition moved to another worker while holding a message: drop it unsettled, the
//!   new owner gets it again (and skips it if this worker's apply did land).
//!
//! Concurrency: up to `concurrency` deliveries (necessarily of distinct partitions) are
//! handled at once. Deliveries that are ready together are applied in one store call (one
//! transaction, one commit); if that call fails for a reason other than an outage, each is
//! applied on its own, so one bad event never holds back or fails the others.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rapport_bus::{BusError, Delivery, Failed, Ownership, Worker};
use rapport_core::error::{Coded, ErrorKind};
use rapport_core::Event;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::engine::Engine;

/// How a worker process runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Deliveries handled at once (each of a different partition).
    pub concurrency: usize,
    /// First delay before a failed event is delivered again; doubles per attempt.
    pub retry_base: Duration,
    /// Longest delay between retries (of a failing event, or while the store is down).
    pub retry_max: Duration,
    /// On shutdown, how long handlers in flight may take to finish before the worker leaves.
    pub drain_timeout: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 16,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

impl WorkerOptions {
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.retry_base.saturating_mul(factor).min(self.retry_max)
    }
}

/// What a worker has done since it started.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Events applied to the store.
    pub applied: AtomicU64,
    /// Deliveries whose `messageId` the store had already applied (redeliveries).
    pub duplicates: AtomicU64,
    /// Events naming an erased customer, dropped.
    pub suppressed: AtomicU64,
    /// Failed deliveries that will be retried.
    pub retried: AtomicU64,
    /// Events moved to the dead-letter stream.
    pub dead_lettered: AtomicU64,
}

impl WorkerStats {
    fn count(&self, summary: &rapport_store::IngestSummary) {
        self.applied
            .fetch_add(summary.applied as u64, Ordering::Relaxed);
        self.duplicates
            .fetch_add(summary.duplicates as u64, Ordering::Relaxed);
        self.suppressed
            .fetch_add(summary.suppressed as u64, Ordering::Relaxed);
    }

    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }
}

/// Applies deliveries from `worker` until `shutdown` resolves, then lets handlers in flight
/// finish (at most `drain_timeout`) and leaves the group cleanly, handing its partitions over.
/// Returns an error only if the worker itself stopped (it does not on broker outages: those
/// pause it until the broker is back).
pub async fn run(
    engine: Arc<Engine>,
    mut worker: Worker,
    options: WorkerOptions,
    stats: Arc<WorkerStats>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BusError> {
    let options = Arc::new(options);
    // Customers whose events this worker applies get their features recomputed here.
    let churn = crate::churn::spawn(engine.clone(), false);
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let ownership = worker.ownership();
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    let outcome = loop {
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = &mut shutdown => break Ok(()),
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let delivery = tokio::select! {
            _ = &mut shutdown => break Ok(()),
            d = worker.next() => d,
        };
        let first = match delivery {
            Ok(d) => d,
            Err(e) => break Err(e),
        };
        // Whatever else is ready now (necessarily of other partitions) is applied in the same
        // store transaction: one commit instead of one per event.
        let mut batch = vec![(first, permit)];
        while let Ok(permit) = permits.clone().try_acquire_owned() {
            match tokio::time::timeout(Duration::ZERO, worker.next()).await {
                Ok(Ok(d)) => batch.push((d, permit)),
                _ => break,
            }
        }
        let (engine, options, stats, ownership) = (
            engine.clone(),
            options.clone(),
            stats.clone(),
            ownership.clone(),
        );
        tasks.spawn(async move {
            let (deliveries, permits): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            apply_batch(&engine, deliveries, &options, &stats, &ownership).await;
            drop(permits);
        });
    };
    let drained = tokio::time::timeout(options.drain_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "handlers still running after {:?}; their events will be delivered again",
            options.drain_timeout
        );
        tasks.abort_all();
    }
    churn.abort();
    let left = worker.leave().await;
    outcome.and(left)
}

/// Applies deliveries of distinct partitions together, one store call per workspace. If that
/// fails for a reason other than the store being unavailable, each is applied on its own so
/// only the culprit is retried and, in the end, dead-lettered.
async fn apply_batch(
    engine: &Engine,
    deliveries: Vec<Delivery>,
    options: &WorkerOptions,
    stats: &WorkerStats,
    ownership: &Ownership,
) {
    if deliveries.len() == 1 {
        for d in deliveries {
            handle(engine, d, options, stats, ownership).await;
        }
        return;
    }
    let mut groups: std::collections::BTreeMap<String, Vec<(Delivery, Event)>> = Default::default();
    for d in deliveries {
        match d.envelope().payload_json::<Event>() {
            Ok(e) => groups
                .entry(d.envelope().workspace().as_str().to_owned())
                .or_default()
                .push((d, e)),
            Err(_) => handle(engine, d, options, stats, ownership).await,
        }
    }
    for (_, mut group) in groups {
        let workspace = group[0].0.envelope().workspace().clone();
        let mut waited = 0u32;
        loop {
            let events = group.iter().map(|(_, e)| e.clone()).collect();
            match engine.apply(&workspace, events).await {
                Ok(summary) => {
                    stats.count(&summary);
                    for (d, _) in group {
                        if let Err(e) = d.ack().await {
                            tracing::warn!(error = %e, "ack failed; the event will be redelivered and skipped");
                        }
                    }
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Unavailable => {
                    // Only what this worker still owns is worth holding on to.
                    group.retain(|(d, _)| ownership.owns(d.partition()));
                    if group.is_empty() {
                        break;
                    }
                    waited += 1;
                    let delay = options.backoff(waited);
                    tracing::warn!(error = %e, retry_in = ?delay, events = group.len(), "store unavailable; holding the events and retrying");
                    tokio::time::sleep(delay).await;
                    for (d, _) in &group {
                        let _ = d.in_progress().await;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "a batch failed; applying its events one by one");
                    for (d, _) in group {
                        handle(engine, d, options, stats, ownership).await;
                    }
                    break;
                }
            }
        }
    }
}

async fn handle(
    engine: &Engine,
    delivery: Delivery,
    options: &WorkerOptions,
    stats: &WorkerStats,
    ownership: &Ownership,
) {
    let span = tracing::info_span!("apply", event_id = %delivery.event_id(), partition = delivery.partition().index(), attempt = delivery.attempt());
    apply_one(engine, delivery, options, stats, ownership)
        .instrument(span)
        .await
}

async fn apply_one(
    engine: &Engine,
    delivery: Delivery,
    options: &WorkerOptions,
    stats: &WorkerStats,
    ownership: &Ownership,
) {
    let envelope = delivery.envelope();
    let workspace = envelope.workspace().clone();
    let event: Event = match envelope.payload_json() {
        Ok(e) => e,
        Err(e) => return failed(delivery, format!("unreadable event: {e}"), options, stats).await,
    };
    let mut waited = 0u32;
    let mut last_progress = tokio::time::Instant::now();
    loop {
        match engine.apply(&workspace, vec![event.clone()]).await {
            Ok(summary) => {
                stats.count(&summary);
                if let Err(e) = delivery.ack().await {
                    // Committed but not acknowledged: it comes back and is skipped as applied.
                    tracing::warn!(error = %e, "ack failed; the event will be redelivered and skipped");
                }
                return;
            }
            Err(e) if e.kind() == ErrorKind::Unavailable => {
                if !ownership.owns(delivery.partition()) {
                    tracing::warn!(error = %e, "store unavailable and the partition moved on; leaving the event to its new owner");
                    return;
                }
                waited += 1;
                let delay = options.backoff(waited);
                tracing::warn!(error = %e, retry_in = ?delay, "store unavailable; holding the event and retrying");
                tokio::time::sleep(delay).await;
                if last_progress.elapsed() >= Duration::from_secs(1) {
                    // Keep the bus from handing it to someone else while this worker waits.
                    let _ = delivery.in_progress().await;
                    last_progress = tokio::time::Instant::now();
                }
            }
            Err(e) => return failed(delivery, e.to_string(), options, stats).await,
        }
    }
}

async fn failed(delivery: Delivery, error: String, options: &WorkerOptions, stats: &WorkerStats) {
    let delay = options.backoff(delivery.attempt());
    let event_id = delivery.event_id().to_owned();
    match delivery.fail(&error, delay).await {
        Ok(Failed::WillRetry) => {
            stats.retried.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%event_id, %error, retry_in = ?delay, "applying an event failed; it will be retried");
        }
        Ok(Failed::DeadLettered) => {
            stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
            tracing::error!(%event_id, %error, "an event failed on every attempt and was moved to the dead letters");
        }
        Err(e) => {
            tracing::warn!(%event_id, error = %e, "could not settle a failed event; it will be redelivered")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let o = WorkerOptions {
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
            ..Default::default()
        };
        let d: Vec<u128> = (1..=6).map(|a| o.backoff(a).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(o.backoff(0).as_millis(), 100);
        assert_eq!(o.backoff(u32::MAX), Duration::from_secs(1));
    }
}
