//! Rapport's event bus: the [`Bus`] trait between API nodes that accept events and workers
//! that apply them, with an in-process implementation (embedded mode) and a NATS JetStream
//! one (scale-out mode), and the [`conformance`] suite both pass.
//!
//! The bus owns: durable acceptance (a publish returns only once the event is stored), the
//! split of events into a fixed number of partitions by customer, which worker owns which
//! partition (leases that expire, rebalanced as workers come and go), in-order at-least-once
//! delivery with redelivery of anything unacknowledged, and the dead-letter stream. It does
//! not apply events, dedupe them against the store, or decide anything: workers do that and
//! use [`Envelope::event_id`] to skip what they applied before.
//!
//! Ordering and threading model:
//! - A customer's events go to one partition ([`Partitioner`], a documented stable hash).
//! - Each partition is owned by at most one worker at a time (a lease with compare-and-set
//!   and a time-to-live, see [`worker`]); while owned, its messages are delivered one at a
//!   time in log order, the next only after the previous is settled.
//! - A [`Worker`] runs one background coordinator task (heartbeat, leases, rebalancing every
//!   `lease_ttl / 3`) and one pump task per owned partition; the application pulls from all
//!   owned partitions through [`Worker::next`] and may handle different partitions
//!   concurrently.
//! - Failure: an unsettled message is delivered again after `ack_wait`, to whoever owns the
//!   partition then; after `max_attempts` deliveries it goes to the dead-letter stream.
//!
//! ```no_run
//! use std::time::Duration;
//! use rapport_bus::{Bus, BusConfig, Envelope, Failed, NatsBus, WorkerId};
//! # async fn apply(_: &Envelope) -> Result<(), String> { Ok(()) }
//! # async fn demo(event: rapport_core::Event, ws: rapport_core::WorkspaceId) -> Result<(), rapport_bus::BusError> {
//! let bus = NatsBus::connect("nats://127.0.0.1:4222", BusConfig::default()).await?;
//!
//! // API node: answer the client only once this returns Ok.
//! bus.publish(&Envelope::for_event(ws, &event)?).await?;
//!
//! // Worker: apply, then ack; skip ids already applied (the store dedupes by message id).
//! let mut worker = bus.join(WorkerId::generate()).await?;
//! loop {
//!     let delivery = worker.next().await?;
//!     match apply(delivery.envelope()).await {
//!         Ok(()) => delivery.ack().await?,
//!         Err(e) => {
//!             if delivery.fail(e, Duration::from_secs(1)).await? == Failed::DeadLettered {
//!                 // alert someone: `bus.dead_letters(..)` lists it, `replay_dead_letter` retries it
//!             }
//!         }
//!     }
//! }
//! # }
//! ```

pub mod backend;
mod config;
pub mod conformance;
mod delivery;
mod envelope;
mod error;
pub mod inprocess;
pub mod nats;
pub mod partition;
pub mod worker;

pub use config::{BusConfig, Names, Prefix, WorkerId};
pub use delivery::{Delivery, Failed};
pub use envelope::{DeadLetter, DeadLetterDraft, DeadLetterId, Envelope, Published, WIRE_VERSION};
pub use error::BusError;
pub use inprocess::InProcessBus;
pub use nats::NatsBus;
pub use partition::{Partition, Partitioner};
pub use worker::{Ownership, Worker};

/// Picks the envelopes an erasure removes (see [`Bus::erase_where`]).
pub type Doomed<'a> = &'a (dyn Fn(&Envelope) -> bool + Send + Sync);

/// Where an erasure's scan of the event log stopped: a later pass given it looks only at what
/// arrived since.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct EraseCursor(pub u64);

/// What [`Bus::erase_where`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Messages removed from the event log, applied or not.
    pub events: usize,
    /// Dead letters removed.
    pub dead_letters: usize,
    /// Pass to the next call to scan only messages stored after this one.
    pub cursor: EraseCursor,
}

use async_trait::async_trait;

/// The event bus. Implementations must pass [`conformance`].
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// The settings this bus runs with.
    fn config(&self) -> &BusConfig;

    /// Where an envelope goes.
    fn partitioner(&self) -> Partitioner {
        Partitioner::new(self.config().partitions)
    }

    /// Stores the envelope durably on its partition and returns once the broker confirmed it
    /// (for NATS, the JetStream publish acknowledgement). Fails with
    /// [`BusError::Unavailable`] within `publish_timeout` when the broker cannot be reached.
    async fn publish(&self, envelope: &Envelope) -> Result<Published, BusError>;

    /// Publishes several envelopes, keeping their order per partition, and returns when all
    /// are stored. On error some may have been stored; publishing them again is safe within
    /// the dedupe window.
    async fn publish_many(&self, envelopes: &[Envelope]) -> Result<Vec<Published>, BusError> {
        let mut out = Vec::with_capacity(envelopes.len());
        for e in envelopes {
            out.push(self.publish(e).await?);
        }
        Ok(out)
    }

    /// Joins the worker group as `worker` and starts taking partitions.
    async fn join(&self, worker: WorkerId) -> Result<Worker, BusError>;

    /// Dead letters in id order, after `after` when given, at most `limit`.
    async fn dead_letters(
        &self,
        after: Option<DeadLetterId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BusError>;

    /// Publishes a dead letter's original body to its partition again (as a new message, not
    /// subject to the dedupe window) and removes it from the dead letters.
    async fn replay_dead_letter(&self, id: DeadLetterId) -> Result<Published, BusError>;

    /// Removes a dead letter for good.
    async fn discard_dead_letter(&self, id: DeadLetterId) -> Result<(), BusError>;

    /// Erases every message the bus still holds for `workspace` that `doomed` picks: on the
    /// event log (acknowledged ones too, which a broker keeps for its retention time, and
    /// ones not applied yet, which are then never delivered) and among the dead letters. This
    /// is the event log's part of a data-subject erasure, so a backend must leave nothing of
    /// the erased bodies in its files (NATS overwrites them: a secure delete).
    ///
    /// With `after`, only messages stored after that cursor are scanned on the event log
    /// (dead letters are always scanned): a second pass after the store's erasure catches
    /// events that arrived meanwhile. Dead letters whose body cannot be read are kept.
    async fn erase_where(
        &self,
        workspace: &rapport_core::WorkspaceId,
        after: Option<EraseCursor>,
        doomed: Doomed<'_>,
    ) -> Result<Erased, BusError>;
}
