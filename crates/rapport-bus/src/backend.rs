//! The small interface a broker has to offer for the shared worker runtime
//! ([`crate::Worker`]) to run on it: a key-value store with compare-and-set and expiry for
//! leases, and per-partition queues with explicit acknowledgement.
//!
//! The lease protocol and the delivery rules live once, in the worker runtime; each backend
//! only maps these calls onto its broker. That is why the in-process bus and the NATS bus
//! behave alike: the same code decides who owns what.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{BusError, DeadLetterDraft, Partition, WorkerId};

/// Worker registrations and partition leases. Every entry expires `lease_ttl` after the
/// broker stored its latest write, measured by the broker's clock.
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Writes (or refreshes) the worker's registration.
    async fn heartbeat(&self, worker: &WorkerId) -> Result<(), BusError>;
    /// Removes the worker's registration at once.
    async fn deregister(&self, worker: &WorkerId) -> Result<(), BusError>;
    /// Workers whose registration has not expired, in any order.
    async fn live_workers(&self) -> Result<Vec<WorkerId>, BusError>;
    /// Takes the lease if nobody holds it: the new revision, or `None` if it is held.
    async fn acquire(
        &self,
        partition: Partition,
        worker: &WorkerId,
    ) -> Result<Option<u64>, BusError>;
    /// Renews a lease held at `revision`: the new revision, or `None` if the lease is no
    /// longer at that revision (it expired and someone else may hold it).
    async fn renew(
        &self,
        partition: Partition,
        worker: &WorkerId,
        revision: u64,
    ) -> Result<Option<u64>, BusError>;
    /// Gives a lease up, only if it is still at `revision`.
    async fn release(&self, partition: Partition, revision: u64) -> Result<(), BusError>;
}

/// The per-partition event log with at-least-once, one-at-a-time delivery.
///
/// Contract: a partition hands out only its oldest unacknowledged message, and only when that
/// message is not already out (delivered and neither settled nor past `ack_wait`) and not
/// held back by a delayed nak. So messages of one partition are delivered strictly in order,
/// and a message is delivered again only before anything after it.
#[async_trait]
pub trait PartitionQueue: Send + Sync + 'static {
    /// Waits up to `wait` for the next deliverable message of `partition`.
    async fn fetch(
        &self,
        partition: Partition,
        wait: Duration,
    ) -> Result<Option<Fetched>, BusError>;
    /// Stores a dead letter durably (before the caller acks the original).
    async fn dead_letter(&self, draft: DeadLetterDraft) -> Result<(), BusError>;
}

/// One delivered message, not yet decoded.
pub struct Fetched {
    pub raw: Bytes,
    /// Its sequence in the event log.
    pub sequence: u64,
    /// 1 on first delivery.
    pub attempt: u32,
    pub settle: Box<dyn Settle>,
}

/// Settles one delivered message on the broker.
#[async_trait]
pub trait Settle: Send + Sync {
    /// Done with it: it will not be delivered again.
    async fn ack(self: Box<Self>) -> Result<(), BusError>;
    /// Deliver it again after `delay` (and nothing after it in the partition before that).
    async fn nak(self: Box<Self>, delay: Duration) -> Result<(), BusError>;
    /// Still working on it: restart its `ack_wait` clock.
    async fn in_progress(&self) -> Result<(), BusError>;
}
