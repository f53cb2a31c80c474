//! Where accepted events go: the engine's one choice between embedded and scale-out mode.
//!
//! - [`EventSink::Embedded`] (`rapport serve`): the API node applies events itself, the
//!   standardised events are stored before the request is answered.
//! - [`EventSink::Bus`] (`rapport serve --mode api`): the API node validates and standardises,
//!   publishes each event to the event bus and answers only once the broker has stored all of
//!   them; `rapport worker` processes apply them later with [`crate::engine::Engine::apply`].
//!   When the broker cannot take them the request fails with `bus_unavailable` (503 with
//!   `Retry-After`): nothing is acknowledged that is not stored. A client retrying with the
//!   same `messageId` is safe: the bus drops repeats within its dedupe window and the store
//!   skips messageIds it has applied.
//!
//! In both modes the request is answered with the same validation errors, because parsing and
//! validation happen before the sink is chosen.

use std::sync::{Arc, OnceLock};

use rapport_bus::{Bus, BusError};
use rapport_core::error::{Coded, ErrorKind};
use rapport_store::{IngestSummary, StoreError};

/// A bus the API node may not have reached yet (the broker was down at start): ingestion
/// answers `bus_unavailable` until a background task connects and fills it in.
#[derive(Clone, Default)]
pub struct BusSlot(Arc<OnceLock<Arc<dyn Bus>>>);

impl BusSlot {
    /// A slot holding `bus` already.
    pub fn connected(bus: Arc<dyn Bus>) -> Self {
        let slot = Self::default();
        slot.fill(bus);
        slot
    }

    /// Fills the slot; a second call is ignored (one bus per process).
    pub fn fill(&self, bus: Arc<dyn Bus>) {
        let _ = self.0.set(bus);
    }

    /// The bus, or [`BusError::Unavailable`] while it is not connected.
    pub fn get(&self) -> Result<&Arc<dyn Bus>, BusError> {
        self.0
            .get()
            .ok_or_else(|| BusError::Unavailable("not connected to the event bus yet".to_owned()))
    }

    pub fn is_connected(&self) -> bool {
        self.0.get().is_some()
    }
}

/// Where the engine sends accepted events.
#[derive(Clone, Default)]
pub enum EventSink {
    /// Standardise and store in this process (the default).
    #[default]
    Embedded,
    /// Publish to the event bus; workers apply.
    Bus(BusSlot),
}

impl EventSink {
    /// The bus of a scale-out API node.
    pub fn bus(&self) -> Option<&BusSlot> {
        match self {
            EventSink::Embedded => None,
            EventSink::Bus(slot) => Some(slot),
        }
    }
}

/// What accepting a request's events did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Applied to the store now (embedded mode).
    pub applied: usize,
    /// Already seen (by the store, or by the bus within its dedupe window): not applied again.
    pub duplicates: usize,
    /// Naming an erased customer: dropped (embedded mode; workers drop them in scale-out mode).
    pub suppressed: usize,
    /// Stored on the event bus, to be applied by a worker (scale-out mode).
    pub queued: usize,
}

impl From<IngestSummary> for Accepted {
    fn from(s: IngestSummary) -> Self {
        Self {
            applied: s.applied,
            duplicates: s.duplicates,
            suppressed: s.suppressed,
            queued: 0,
        }
    }
}

/// Why events could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

impl Coded for SinkError {
    fn kind(&self) -> ErrorKind {
        match self {
            SinkError::Store(e) => e.kind(),
            SinkError::Bus(e) => e.kind(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            SinkError::Store(e) => e.code(),
            SinkError::Bus(e) => e.code(),
        }
    }
}
