//! The worker runtime shared by every backend: membership, partition leases, and one pump per
//! owned partition feeding deliveries to the application.
//!
//! Lease protocol (every `lease_ttl / 3`, the "tick"):
//! 1. heartbeat the worker's registration; read the live workers;
//! 2. compute the assignment ([`crate::partition::assign`]) and this worker's share;
//! 3. renew every held lease by compare-and-set on its revision; a failed compare means the
//!    lease expired and may be someone else's now, so it is dropped at once;
//! 4. partitions held but no longer assigned are drained (the pump stops fetching, the
//!    in-flight message is settled) and then released (deleted at the held revision);
//! 5. assigned partitions not held are acquired by create-if-absent, which fails while anyone
//!    else's lease exists.
//!
//! A lease is trusted locally until `sent + 0.9 * lease_ttl`, where `sent` is when the write
//! that created or renewed it was sent. The broker expires it no earlier than `lease_ttl`
//! after it stored that write, which is after `sent`, so by the time another worker can
//! create the key this worker has stopped considering the partition its own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::backend::{LeaseStore, PartitionQueue};
use crate::delivery::bury;
use crate::partition::assign;
use crate::{
    BusConfig, BusError, DeadLetterDraft, Delivery, Envelope, Partition, Partitioner, WorkerId,
};

#[derive(Debug, Clone, Copy)]
struct Lease {
    revision: u64,
    trusted_until: Instant,
    draining: bool,
}

/// A shareable view of which partitions a worker holds a valid lease on.
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    leases: Arc<Mutex<BTreeMap<Partition, Lease>>>,
}

impl Ownership {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Partition, Lease>> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Partitions whose lease this worker holds and trusts right now (including ones it is
    /// handing over), in order.
    pub fn owned(&self) -> Vec<Partition> {
        let now = Instant::now();
        self.lock()
            .iter()
            .filter(|(_, l)| l.trusted_until > now)
            .map(|(p, _)| *p)
            .collect()
    }

    pub fn owns(&self, partition: Partition) -> bool {
        self.lock()
            .get(&partition)
            .is_some_and(|l| l.trusted_until > Instant::now())
    }

    /// Owned and not being handed over: new messages may be fetched.
    fn accepting(&self, partition: Partition) -> bool {
        self.lock()
            .get(&partition)
            .is_some_and(|l| l.trusted_until > Instant::now() && !l.draining)
    }

    fn held(&self) -> Vec<(Partition, Lease)> {
        self.lock().iter().map(|(p, l)| (*p, *l)).collect()
    }

    fn set(&self, partition: Partition, revision: u64, trusted_until: Instant) {
        let mut g = self.lock();
        let draining = g.get(&partition).is_some_and(|l| l.draining);
        g.insert(
            partition,
            Lease {
                revision,
                trusted_until,
                draining,
            },
        );
    }

    fn start_draining(&self, partition: Partition) {
        if let Some(l) = self.lock().get_mut(&partition) {
            l.draining = true;
        }
    }

    fn remove(&self, partition: Partition) -> Option<Lease> {
        self.lock().remove(&partition)
    }
}

/// A member of the worker group: owns some partitions and delivers their messages.
///
/// Messages of one partition arrive in log order, one at a time (the next only after the
/// previous is settled); messages of different partitions arrive interleaved and may be
/// handled concurrently. [`Worker::leave`] hands the partitions over cleanly; dropping the
/// worker stops it on the spot like a crash (its leases expire, its unsettled messages are
/// delivered again after `ack_wait`).
pub struct Worker {
    id: WorkerId,
    ownership: Ownership,
    rx: mpsc::Receiver<Delivery>,
    leaving: watch::Sender<bool>,
    coordinator: Option<JoinHandle<()>>,
    grace: Duration,
}

impl Worker {
    /// Starts a worker on any backend. Called by the [`crate::Bus`] implementations.
    pub fn spawn(
        id: WorkerId,
        config: &BusConfig,
        leases: Arc<dyn LeaseStore>,
        queue: Arc<dyn PartitionQueue>,
    ) -> Self {
        let ownership = Ownership::default();
        let count = usize::from(config.partitions);
        let (tx, rx) = mpsc::channel(count.max(1));
        let (leaving_tx, leaving_rx) = watch::channel(false);
        let coordinator = Coordinator {
            id: id.clone(),
            config: config.clone(),
            partitioner: Partitioner::new(config.partitions),
            leases,
            queue,
            ownership: ownership.clone(),
            tx,
            pumps: HashMap::new(),
            joins: JoinSet::new(),
            pump_tasks: HashMap::new(),
            drain_started: HashMap::new(),
            leaving: leaving_rx,
            is_leaving: false,
            wanted: Vec::new(),
        };
        Self {
            id,
            ownership,
            rx,
            leaving: leaving_tx,
            coordinator: Some(tokio::spawn(coordinator.run())),
            grace: config.ack_wait + config.lease_ttl,
        }
    }

    pub fn id(&self) -> &WorkerId {
        &self.id
    }

    /// The partitions this worker owns right now.
    pub fn owned(&self) -> Vec<Partition> {
        self.ownership.owned()
    }

    /// A handle to watch ownership from another task while this worker is busy.
    pub fn ownership(&self) -> Ownership {
        self.ownership.clone()
    }

    /// The next message from any owned partition; waits until there is one. Cancel-safe.
    pub async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            let delivery = self.rx.recv().await.ok_or(BusError::Closed)?;
            if self.ownership.owns(delivery.partition()) {
                return Ok(delivery);
            }
            // The lease lapsed while the message waited here: give it back for the next owner.
            let _ = delivery.nak(Duration::ZERO).await;
        }
    }

    /// Hands every partition over and leaves the group: stops fetching, gives back messages
    /// fetched but not yet taken by [`Self::next`], waits for messages being handled to be
    /// settled (at most `ack_wait + lease_ttl`), releases the leases and deregisters.
    pub async fn leave(mut self) -> Result<(), BusError> {
        let _ = self.leaving.send(true);
        self.rx.close();
        while let Some(d) = self.rx.recv().await {
            let _ = d.nak(Duration::ZERO).await;
        }
        let Some(handle) = self.coordinator.take() else {
            return Ok(());
        };
        let abort = handle.abort_handle();
        match tokio::time::timeout(self.grace, handle).await {
            Ok(_) => Ok(()),
            Err(_) => {
                abort.abort();
                Err(BusError::Unavailable(
                    "leaving took too long; the remaining leases will expire".to_owned(),
                ))
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(h) = self.coordinator.take() {
            h.abort();
        }
    }
}

struct Coordinator {
    id: WorkerId,
    config: BusConfig,
    partitioner: Partitioner,
    leases: Arc<dyn LeaseStore>,
    queue: Arc<dyn PartitionQueue>,
    ownership: Ownership,
    tx: mpsc::Sender<Delivery>,
    /// Stop flags of the running pumps.
    pumps: HashMap<Partition, Arc<AtomicBool>>,
    joins: JoinSet<Partition>,
    pump_tasks: HashMap<tokio::task::Id, Partition>,
    drain_started: HashMap<Partition, Instant>,
    leaving: watch::Receiver<bool>,
    is_leaving: bool,
    /// This worker's share at the last tick that could read the membership.
    wanted: Vec<Partition>,
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Coordinator {
    async fn run(mut self) {
        let mut next_tick = Instant::now();
        // Between ticks, partitions assigned to this worker but still held by someone else
        // are retried every `fetch_wait` (at most every tick), so a release or an expiry
        // is noticed quickly without heartbeating that often.
        let retry_every = self.config.fetch_wait.min(self.config.renew_every());
        let mut retry_at: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next_tick) => {
                    self.tick().await;
                    if self.is_leaving && self.ownership.held().is_empty() && self.pumps.is_empty() {
                        if let Err(e) = self.leases.deregister(&self.id).await {
                            tracing::warn!(worker = %self.id, error = %e, "deregistering failed; the registration will expire");
                        }
                        return;
                    }
                    let every = if self.is_leaving { self.config.fetch_wait } else { self.config.renew_every() };
                    next_tick = Instant::now() + every;
                    retry_at = self.missing().then(|| Instant::now() + retry_every);
                }
                _ = sleep_until_some(retry_at) => {
                    let missing = self.acquire_missing().await;
                    retry_at = missing.then(|| Instant::now() + retry_every);
                }
                Some(ended) = self.joins.join_next_with_id(), if !self.joins.is_empty() => {
                    let id = match ended {
                        Ok((id, _)) => id,
                        Err(e) => {
                            tracing::error!(worker = %self.id, error = %e, "a partition pump failed");
                            e.id()
                        }
                    };
                    if let Some(p) = self.pump_tasks.remove(&id) {
                        self.pump_ended(p).await;
                    }
                }
                changed = self.leaving.changed(), if !self.is_leaving => {
                    if changed.is_err() || *self.leaving.borrow() {
                        self.is_leaving = true;
                        next_tick = Instant::now();
                    }
                }
            }
        }
    }

    fn missing(&self) -> bool {
        !self.is_leaving && {
            let held = self.ownership.lock();
            self.wanted.iter().any(|p| !held.contains_key(p))
        }
    }

    /// The partitions this worker should own now, or `None` if membership is unknown.
    async fn target(&self) -> Option<HashSet<Partition>> {
        if self.is_leaving {
            return Some(HashSet::new());
        }
        if let Err(e) = self.leases.heartbeat(&self.id).await {
            tracing::warn!(worker = %self.id, error = %e, "heartbeat failed");
        }
        let mut live = match self.leases.live_workers().await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(worker = %self.id, error = %e, "reading the live workers failed");
                return None;
            }
        };
        if !live.contains(&self.id) {
            live.push(self.id.clone());
        }
        live.sort();
        live.dedup();
        let me = live
            .iter()
            .position(|w| *w == self.id)
            .expect("self is live");
        let names: Vec<&str> = live.iter().map(WorkerId::as_str).collect();
        Some(
            assign(&names, self.partitioner.count())
                .into_iter()
                .enumerate()
                .filter(|(_, owner)| *owner == me)
                .map(|(p, _)| Partition::new(p as u16))
                .collect(),
        )
    }

    async fn tick(&mut self) {
        let target = self.target().await;
        let trusted = self.config.trusted_lease();

        for (p, lease) in self.ownership.held() {
            let sent = Instant::now();
            match self.leases.renew(p, &self.id, lease.revision).await {
                Ok(Some(rev)) => self.ownership.set(p, rev, sent + trusted),
                Ok(None) => {
                    tracing::warn!(worker = %self.id, partition = p.index(), "lease lost");
                    self.forget(p);
                }
                Err(e) => {
                    tracing::warn!(worker = %self.id, partition = p.index(), error = %e, "lease renewal failed");
                    if lease.trusted_until <= Instant::now() {
                        self.forget(p);
                    }
                }
            }
        }

        let now = Instant::now();
        for (p, lease) in self.ownership.held() {
            let wanted = target.as_ref().is_none_or(|t| t.contains(&p));
            if !wanted && !lease.draining {
                self.ownership.start_draining(p);
                self.drain_started.insert(p, now);
                if let Some(stop) = self.pumps.get(&p) {
                    stop.store(true, Ordering::SeqCst);
                }
            }
            let draining = !wanted || lease.draining;
            if draining {
                // A message handled for longer than ack_wait will be redelivered anyway:
                // stop holding the partition for it. Its pump ends once it is settled.
                let overdue = self
                    .drain_started
                    .get(&p)
                    .is_some_and(|t| now.duration_since(*t) > self.config.ack_wait);
                if overdue || !self.pumps.contains_key(&p) {
                    self.release(p).await;
                }
            }
        }

        if let Some(target) = target {
            self.wanted = target.into_iter().collect();
            self.wanted.sort();
        }
        self.acquire_missing().await;
    }

    /// Tries to take every assigned partition not held yet and starts pumps for new ones.
    /// True when some are still held by others (typically a leaver that has not released
    /// yet, or a crashed worker whose lease has not expired).
    async fn acquire_missing(&mut self) -> bool {
        let trusted = self.config.trusted_lease();
        let mut missing = false;
        for p in self.wanted.clone() {
            if self.is_leaving || self.ownership.lock().contains_key(&p) {
                continue;
            }
            let sent = Instant::now();
            match self.leases.acquire(p, &self.id).await {
                Ok(Some(rev)) => {
                    tracing::debug!(worker = %self.id, partition = p.index(), "lease acquired");
                    self.ownership.set(p, rev, sent + trusted);
                }
                Ok(None) => missing = true,
                Err(e) => {
                    missing = true;
                    tracing::warn!(worker = %self.id, partition = p.index(), error = %e, "lease acquisition failed")
                }
            }
        }
        for p in self.partitioner.all() {
            if self.ownership.accepting(p) && !self.pumps.contains_key(&p) {
                self.start_pump(p);
            }
        }
        missing
    }

    fn forget(&mut self, p: Partition) {
        self.ownership.remove(p);
        self.drain_started.remove(&p);
        if let Some(stop) = self.pumps.get(&p) {
            stop.store(true, Ordering::SeqCst);
        }
    }

    async fn release(&mut self, p: Partition) {
        self.drain_started.remove(&p);
        // Stop trusting the lease before anyone else can take it.
        if let Some(lease) = self.ownership.remove(p) {
            if let Err(e) = self.leases.release(p, lease.revision).await {
                tracing::warn!(worker = %self.id, partition = p.index(), error = %e, "release failed; the lease will expire");
            } else {
                tracing::debug!(worker = %self.id, partition = p.index(), "lease released");
            }
        }
    }

    async fn pump_ended(&mut self, p: Partition) {
        self.pumps.remove(&p);
        let draining = self.ownership.lock().get(&p).is_some_and(|l| l.draining);
        if draining {
            self.release(p).await;
        }
    }

    fn start_pump(&mut self, p: Partition) {
        let stop = Arc::new(AtomicBool::new(false));
        let pump = Pump {
            partition: p,
            queue: self.queue.clone(),
            ownership: self.ownership.clone(),
            stop: stop.clone(),
            tx: self.tx.clone(),
            fetch_wait: self.config.fetch_wait,
            max_attempts: self.config.max_attempts,
        };
        let task = self.joins.spawn(pump.run());
        self.pump_tasks.insert(task.id(), p);
        self.pumps.insert(p, stop);
    }
}

/// Feeds one partition's messages to the worker, one at a time.
struct Pump {
    partition: Partition,
    queue: Arc<dyn PartitionQueue>,
    ownership: Ownership,
    stop: Arc<AtomicBool>,
    tx: mpsc::Sender<Delivery>,
    fetch_wait: Duration,
    max_attempts: u32,
}

impl Pump {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst) && self.ownership.accepting(self.partition)
    }

    async fn run(self) -> Partition {
        let p = self.partition;
        while self.running() {
            let fetched = match self.queue.fetch(p, self.fetch_wait).await {
                Ok(Some(f)) => f,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(partition = p.index(), error = %e, "fetch failed");
                    tokio::time::sleep(self.fetch_wait).await;
                    continue;
                }
            };
            if !self.running() {
                // Fetched just as the partition was being handed over: give it straight back.
                let _ = fetched.settle.nak(Duration::ZERO).await;
                break;
            }
            let envelope = match Envelope::decode(&fetched.raw) {
                Ok(_) if fetched.attempt > self.max_attempts => Err(format!(
                    "delivered {} times without being settled (max_attempts {})",
                    fetched.attempt, self.max_attempts
                )),
                Ok(envelope) => Ok(envelope),
                Err(e) => Err(format!("unreadable message: {e}")),
            };
            let envelope = match envelope {
                Ok(envelope) => envelope,
                Err(error) => {
                    // A message that crashes its handler every time never gets a fail() call;
                    // the delivery count catches it here instead.
                    let draft = DeadLetterDraft {
                        partition: p,
                        sequence: fetched.sequence,
                        attempts: fetched.attempt,
                        error,
                        raw: fetched.raw,
                    };
                    if let Err(e) = bury(self.queue.as_ref(), fetched.settle, draft).await {
                        tracing::warn!(partition = p.index(), error = %e, "dead-lettering failed");
                    }
                    continue;
                }
            };
            let (done_tx, done_rx) = oneshot::channel();
            let delivery = Delivery::new(
                envelope,
                p,
                fetched.sequence,
                fetched.attempt,
                self.max_attempts,
                fetched.raw,
                fetched.settle,
                self.queue.clone(),
                done_tx,
            );
            match self.tx.send(delivery).await {
                // Wait until it is settled (or dropped) before fetching the next one.
                Ok(()) => {
                    let _ = done_rx.await;
                }
                Err(mpsc::error::SendError(d)) => {
                    let _ = d.nak(Duration::ZERO).await;
                    break;
                }
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Fetched;
    use crate::inprocess::MemoryLeases;
    use crate::Prefix;
    use async_trait::async_trait;

    /// Leases that can be cut off, as when a worker loses the broker.
    struct Flaky {
        inner: MemoryLeases,
        down: AtomicBool,
    }

    impl Flaky {
        fn check(&self) -> Result<(), BusError> {
            if self.down.load(Ordering::SeqCst) {
                Err(BusError::Unavailable("cut off".to_owned()))
            } else {
                Ok(())
            }
        }
    }

    #[async_trait]
    impl LeaseStore for Flaky {
        async fn heartbeat(&self, w: &WorkerId) -> Result<(), BusError> {
            self.check()?;
            self.inner.heartbeat(w).await
        }
        async fn deregister(&self, w: &WorkerId) -> Result<(), BusError> {
            self.check()?;
            self.inner.deregister(w).await
        }
        async fn live_workers(&self) -> Result<Vec<WorkerId>, BusError> {
            self.check()?;
            self.inner.live_workers().await
        }
        async fn acquire(&self, p: Partition, w: &WorkerId) -> Result<Option<u64>, BusError> {
            self.check()?;
            self.inner.acquire(p, w).await
        }
        async fn renew(&self, p: Partition, w: &WorkerId, r: u64) -> Result<Option<u64>, BusError> {
            self.check()?;
            self.inner.renew(p, w, r).await
        }
        async fn release(&self, p: Partition, r: u64) -> Result<(), BusError> {
            self.check()?;
            self.inner.release(p, r).await
        }
    }

    /// A queue with nothing in it.
    struct Empty;

    #[async_trait]
    impl PartitionQueue for Empty {
        async fn fetch(&self, _: Partition, wait: Duration) -> Result<Option<Fetched>, BusError> {
            tokio::time::sleep(wait).await;
            Ok(None)
        }
        async fn dead_letter(&self, _: DeadLetterDraft) -> Result<(), BusError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_worker_cut_off_from_its_leases_stops_owning_before_they_expire() {
        let config = BusConfig::for_tests(Prefix::unique("t"));
        let leases = Arc::new(Flaky {
            inner: MemoryLeases::new(config.lease_ttl),
            down: AtomicBool::new(false),
        });
        let w = Worker::spawn(
            WorkerId::generate(),
            &config,
            leases.clone(),
            Arc::new(Empty),
        );
        let all = usize::from(config.partitions);
        let start = Instant::now();
        while w.owned().len() < all {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "never owned everything"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        leases.down.store(true, Ordering::SeqCst);
        let cut = Instant::now();
        while !w.owned().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let trusted_for = cut.elapsed();
        // The store keeps a lease for lease_ttl after its last renewal, which came before
        // the cut: the worker must have given it up before anyone else could take it.
        assert!(
            trusted_for < config.lease_ttl,
            "still trusted {trusted_for:?} after the last possible renewal"
        );
    }
}
