//! The embedded bus: everything in memory, in this process.
//!
//! Each partition is a queue of encoded messages (the same bytes NATS would store), so the
//! worker runtime, the wire format and the dead-letter path are the ones used in scale-out
//! mode. Leases live in a map with the same expiry and compare-and-set rules as the NATS
//! key-value bucket, so several workers in one process split the partitions exactly as
//! several processes would. "Durably stored" means "in this process's memory": events
//! accepted but not yet applied are lost if the process dies, which is the embedded mode's
//! contract (the store, not the bus, is the system of record there).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::backend::{Fetched, LeaseStore, PartitionQueue, Settle};
use crate::{
    Bus, BusConfig, BusError, DeadLetter, DeadLetterDraft, DeadLetterId, Doomed, Envelope,
    EraseCursor, Erased, Partition, Partitioner, Published, Worker, WorkerId,
};
use rapport_core::WorkspaceId;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An in-memory [`Bus`]. Cheap to clone; clones share the same log.
#[derive(Clone)]
pub struct InProcessBus {
    inner: Arc<Inner>,
    leases: Arc<MemoryLeases>,
}

struct Inner {
    config: BusConfig,
    partitioner: Partitioner,
    logs: Vec<Log>,
    dedupe: Mutex<Dedupe>,
    dead: Mutex<Dead>,
    tokens: AtomicU64,
}

#[derive(Default)]
struct Log {
    state: Mutex<LogState>,
    changed: Notify,
}

#[derive(Default)]
struct LogState {
    next_sequence: u64,
    /// Unacknowledged messages, oldest first. Only the head is ever out.
    pending: VecDeque<Pending>,
}

struct Pending {
    sequence: u64,
    raw: Bytes,
    deliveries: u32,
    state: State,
}

#[derive(Clone, Copy)]
enum State {
    /// May be delivered from this instant on.
    Ready(Instant),
    /// Delivered under `token`; delivered again after `deadline` unless settled.
    Out { token: u64, deadline: Instant },
}

#[derive(Default)]
struct Dedupe {
    seen: HashMap<(String, String), (Instant, Published)>,
    order: VecDeque<(Instant, (String, String))>,
}

#[derive(Default)]
struct Dead {
    next_id: u64,
    letters: BTreeMap<u64, Bytes>,
}

impl InProcessBus {
    pub fn new(config: BusConfig) -> Result<Self, BusError> {
        config.validate()?;
        let partitioner = Partitioner::new(config.partitions);
        let logs = (0..config.partitions).map(|_| Log::default()).collect();
        Ok(Self {
            leases: Arc::new(MemoryLeases::new(config.lease_ttl)),
            inner: Arc::new(Inner {
                config,
                partitioner,
                logs,
                dedupe: Mutex::default(),
                dead: Mutex::default(),
                tokens: AtomicU64::new(1),
            }),
        })
    }

    /// Messages accepted and not yet acknowledged, over all partitions.
    pub fn backlog(&self) -> usize {
        self.inner
            .logs
            .iter()
            .map(|l| lock(&l.state).pending.len())
            .sum()
    }
}

impl Inner {
    fn log(&self, p: Partition) -> Result<&Log, BusError> {
        self.logs
            .get(usize::from(p.index()))
            .ok_or_else(|| BusError::InvalidInput(format!("no partition {p}")))
    }

    fn append(&self, partition: Partition, raw: Bytes) -> Result<Published, BusError> {
        let log = self.log(partition)?;
        let sequence = {
            let mut st = lock(&log.state);
            st.next_sequence += 1;
            let sequence = st.next_sequence;
            st.pending.push_back(Pending {
                sequence,
                raw,
                deliveries: 0,
                state: State::Ready(Instant::now()),
            });
            sequence
        };
        log.changed.notify_waiters();
        Ok(Published {
            partition,
            sequence,
            duplicate: false,
        })
    }
}

#[async_trait]
impl Bus for InProcessBus {
    fn config(&self) -> &BusConfig {
        &self.inner.config
    }

    async fn publish(&self, envelope: &Envelope) -> Result<Published, BusError> {
        let inner = &self.inner;
        let partition = inner
            .partitioner
            .partition_for(envelope.workspace().as_str(), envelope.partition_key());
        let key = (
            envelope.workspace().as_str().to_owned(),
            envelope.event_id().to_owned(),
        );
        // Held across the append so two concurrent publishes of one id store it once.
        let mut dedupe = lock(&inner.dedupe);
        let now = Instant::now();
        while let Some((at, _)) = dedupe.order.front() {
            if now.duration_since(*at) < inner.config.dedupe_window {
                break;
            }
            let (_, old) = dedupe.order.pop_front().expect("front exists");
            dedupe.seen.remove(&old);
        }
        if let Some((_, first)) = dedupe.seen.get(&key) {
            return Ok(Published {
                duplicate: true,
                ..*first
            });
        }
        let published = inner.append(partition, envelope.encode())?;
        dedupe.seen.insert(key.clone(), (now, published));
        dedupe.order.push_back((now, key));
        Ok(published)
    }

    async fn join(&self, worker: WorkerId) -> Result<Worker, BusError> {
        Ok(Worker::spawn(
            worker,
            &self.inner.config,
            self.leases.clone(),
            Arc::new(Queue(self.inner.clone())),
        ))
    }

    async fn dead_letters(
        &self,
        after: Option<DeadLetterId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BusError> {
        let from = after.map_or(0, |a| a.0.saturating_add(1));
        let dead = lock(&self.inner.dead);
        dead.letters
            .range(from..)
            .take(limit)
            .map(|(id, body)| DeadLetter::decode(DeadLetterId(*id), body))
            .collect()
    }

    async fn replay_dead_letter(&self, id: DeadLetterId) -> Result<Published, BusError> {
        let body = lock(&self.inner.dead)
            .letters
            .remove(&id.0)
            .ok_or_else(|| BusError::NotFound(format!("dead letter {}", id.0)))?;
        let letter = DeadLetter::decode(id, &body)?;
        self.inner.append(letter.partition, letter.raw)
    }

    async fn discard_dead_letter(&self, id: DeadLetterId) -> Result<(), BusError> {
        lock(&self.inner.dead)
            .letters
            .remove(&id.0)
            .map(|_| ())
            .ok_or_else(|| BusError::NotFound(format!("dead letter {}", id.0)))
    }

    async fn erase_where(
        &self,
        workspace: &WorkspaceId,
        _after: Option<EraseCursor>,
        doomed: Doomed<'_>,
    ) -> Result<Erased, BusError> {
        // Acknowledged messages are not kept here, so only the backlog and the dead letters
        // can hold the customer; both are small enough to scan whole every time.
        let picks = |raw: &Bytes| {
            Envelope::decode(raw).is_ok_and(|e| e.workspace() == workspace && doomed(&e))
        };
        let mut out = Erased::default();
        for log in &self.inner.logs {
            let mut st = lock(&log.state);
            let before = st.pending.len();
            // A removed head that is out for delivery is settled as a no-op later.
            st.pending.retain(|p| !picks(&p.raw));
            out.events += before - st.pending.len();
            out.cursor = out.cursor.max(EraseCursor(st.next_sequence));
        }
        let mut dead = lock(&self.inner.dead);
        let before = dead.letters.len();
        dead.letters.retain(|id, body| {
            !DeadLetter::decode(DeadLetterId(*id), body)
                .ok()
                .and_then(|l| l.envelope)
                .is_some_and(|e| e.workspace() == workspace && doomed(&e))
        });
        out.dead_letters = before - dead.letters.len();
        Ok(out)
    }
}

struct Queue(Arc<Inner>);

#[async_trait]
impl PartitionQueue for Queue {
    async fn fetch(
        &self,
        partition: Partition,
        wait: Duration,
    ) -> Result<Option<Fetched>, BusError> {
        let log = self.0.log(partition)?;
        let give_up = Instant::now() + wait;
        loop {
            // Registered before looking, so a publish between the look and the wait is seen.
            let changed = log.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = Instant::now();
            let wake = {
                let mut st = lock(&log.state);
                match st.pending.front_mut() {
                    None => give_up,
                    Some(head) => {
                        let free_at = match head.state {
                            State::Ready(at) => at,
                            State::Out { deadline, .. } => deadline,
                        };
                        if free_at <= now {
                            let token = self.0.tokens.fetch_add(1, Ordering::Relaxed);
                            head.deliveries += 1;
                            head.state = State::Out {
                                token,
                                deadline: now + self.0.config.ack_wait,
                            };
                            return Ok(Some(Fetched {
                                raw: head.raw.clone(),
                                sequence: head.sequence,
                                attempt: head.deliveries,
                                settle: Box::new(Settler {
                                    inner: self.0.clone(),
                                    partition,
                                    sequence: head.sequence,
                                    token,
                                }),
                            }));
                        }
                        free_at.min(give_up)
                    }
                }
            };
            if now >= give_up {
                return Ok(None);
            }
            tokio::select! {
                _ = &mut changed => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn dead_letter(&self, draft: DeadLetterDraft) -> Result<(), BusError> {
        let mut dead = lock(&self.0.dead);
        dead.next_id += 1;
        let id = dead.next_id;
        dead.letters.insert(id, draft.encode(Utc::now()));
        Ok(())
    }
}

struct Settler {
    inner: Arc<Inner>,
    partition: Partition,
    sequence: u64,
    token: u64,
}

impl Settler {
    /// Applies `f` to the head if it is still this delivery, then wakes the partition.
    fn with_head(&self, f: impl FnOnce(&mut VecDeque<Pending>)) -> Result<(), BusError> {
        let log = self.inner.log(self.partition)?;
        {
            let mut st = lock(&log.state);
            let mine = st.pending.front().is_some_and(|h| {
                h.sequence == self.sequence
                    && matches!(h.state, State::Out { token, .. } if token == self.token)
            });
            if mine {
                f(&mut st.pending);
            }
        }
        log.changed.notify_waiters();
        Ok(())
    }
}

#[async_trait]
impl Settle for Settler {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        // A late ack of an earlier delivery of the head is honoured too, as NATS does.
        let log = self.inner.log(self.partition)?;
        {
            let mut st = lock(&log.state);
            if st
                .pending
                .front()
                .is_some_and(|h| h.sequence == self.sequence)
            {
                st.pending.pop_front();
            }
        }
        log.changed.notify_waiters();
        Ok(())
    }

    async fn nak(self: Box<Self>, delay: Duration) -> Result<(), BusError> {
        self.with_head(|q| {
            if let Some(h) = q.front_mut() {
                h.state = State::Ready(Instant::now() + delay);
            }
        })
    }

    async fn in_progress(&self) -> Result<(), BusError> {
        let ack_wait = self.inner.config.ack_wait;
        self.with_head(|q| {
            if let Some(h) = q.front_mut() {
                if let State::Out { token, .. } = h.state {
                    h.state = State::Out {
                        token,
                        deadline: Instant::now() + ack_wait,
                    };
                }
            }
        })
    }
}

/// Leases and registrations in memory, with the NATS bucket's rules: an entry expires
/// `ttl` after its last write; create fails while an entry exists; update and delete
/// compare the revision. Revisions come from one counter, like a stream sequence.
pub struct MemoryLeases {
    ttl: Duration,
    state: Mutex<LeaseMap>,
}

#[derive(Default)]
struct LeaseMap {
    revision: u64,
    entries: HashMap<String, (u64, Instant)>,
}

impl LeaseMap {
    fn live(&mut self, key: &str, ttl: Duration) -> Option<u64> {
        match self.entries.get(key) {
            Some((rev, at)) if at.elapsed() < ttl => Some(*rev),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn write(&mut self, key: String) -> u64 {
        self.revision += 1;
        self.entries.insert(key, (self.revision, Instant::now()));
        self.revision
    }
}

impl MemoryLeases {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            state: Mutex::default(),
        }
    }
}

fn worker_key(w: &WorkerId) -> String {
    format!("w.{w}")
}

fn partition_key(p: Partition) -> String {
    format!("p.{p}")
}

#[async_trait]
impl LeaseStore for MemoryLeases {
    async fn heartbeat(&self, worker: &WorkerId) -> Result<(), BusError> {
        lock(&self.state).write(worker_key(worker));
        Ok(())
    }

    async fn deregister(&self, worker: &WorkerId) -> Result<(), BusError> {
        lock(&self.state).entries.remove(&worker_key(worker));
        Ok(())
    }

    async fn live_workers(&self) -> Result<Vec<WorkerId>, BusError> {
        let st = lock(&self.state);
        Ok(st
            .entries
            .iter()
            .filter(|(_, (_, at))| at.elapsed() < self.ttl)
            .filter_map(|(k, _)| k.strip_prefix("w."))
            .filter_map(|w| WorkerId::parse(w).ok())
            .collect())
    }

    async fn acquire(
        &self,
        partition: Partition,
        _worker: &WorkerId,
    ) -> Result<Option<u64>, BusError> {
        let mut st = lock(&self.state);
        let key = partition_key(partition);
        if st.live(&key, self.ttl).is_some() {
            return Ok(None);
        }
        Ok(Some(st.write(key)))
    }

    async fn renew(
        &self,
        partition: Partition,
        _worker: &WorkerId,
        revision: u64,
    ) -> Result<Option<u64>, BusError> {
        let mut st = lock(&self.state);
        let key = partition_key(partition);
        if st.live(&key, self.ttl) != Some(revision) {
            return Ok(None);
        }
        Ok(Some(st.write(key)))
    }

    async fn release(&self, partition: Partition, revision: u64) -> Result<(), BusError> {
        let mut st = lock(&self.state);
        let key = partition_key(partition);
        if st.live(&key, self.ttl) == Some(revision) {
            st.entries.remove(&key);
        }
        Ok(())
    }
}
