//! One message handed to a worker, and how the worker settles it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::backend::{PartitionQueue, Settle};
use crate::{BusError, DeadLetterDraft, Envelope, Partition};

/// What [`Delivery::fail`] did with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// It will be delivered again after the delay.
    WillRetry,
    /// It was the last allowed attempt: the message is in the dead-letter stream now.
    DeadLettered,
}

/// A message delivered to this worker. Nothing later in its partition is delivered until it
/// is settled (acked, nak'd, failed or dead-lettered) or, if it is dropped unsettled, until
/// `ack_wait` passes and it is delivered again (dropping it is what a crash looks like).
pub struct Delivery {
    envelope: Envelope,
    partition: Partition,
    sequence: u64,
    attempt: u32,
    max_attempts: u32,
    raw: Bytes,
    settle: Option<Box<dyn Settle>>,
    queue: Arc<dyn PartitionQueue>,
    // Dropped when the delivery is settled or dropped: tells the partition's pump it may
    // fetch the next message.
    _done: oneshot::Sender<()>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("partition", &self.partition)
            .field("sequence", &self.sequence)
            .field("attempt", &self.attempt)
            .field("event_id", &self.envelope.event_id())
            .finish()
    }
}

impl Delivery {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        envelope: Envelope,
        partition: Partition,
        sequence: u64,
        attempt: u32,
        max_attempts: u32,
        raw: Bytes,
        settle: Box<dyn Settle>,
        queue: Arc<dyn PartitionQueue>,
        done: oneshot::Sender<()>,
    ) -> Self {
        Self {
            envelope,
            partition,
            sequence,
            attempt,
            max_attempts,
            raw,
            settle: Some(settle),
            queue,
            _done: done,
        }
    }

    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Shortcut for `envelope().event_id()`: skip the work if this id was applied already.
    pub fn event_id(&self) -> &str {
        self.envelope.event_id()
    }

    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// Position in the event log; increases along a partition.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Which delivery of this message this is, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether a [`Self::fail`] now would dead-letter the message.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }

    fn take(&mut self) -> Box<dyn Settle> {
        self.settle.take().expect("a delivery is settled once")
    }

    /// The message's effects are committed: never deliver it again.
    pub async fn ack(mut self) -> Result<(), BusError> {
        self.take().ack().await
    }

    /// Not now: deliver it again after `delay`, before anything later in its partition.
    pub async fn nak(mut self, delay: Duration) -> Result<(), BusError> {
        self.take().nak(delay).await
    }

    /// Still working on it: restarts the `ack_wait` clock so it is not delivered elsewhere.
    pub async fn in_progress(&self) -> Result<(), BusError> {
        match &self.settle {
            Some(s) => s.in_progress().await,
            None => Ok(()),
        }
    }

    /// Handling failed with `error`. Before the last attempt the message is delivered again
    /// after `retry_after`; on the last one it is moved to the dead-letter stream with
    /// `error` and acknowledged on the event log.
    pub async fn fail(
        self,
        error: impl std::fmt::Display,
        retry_after: Duration,
    ) -> Result<Failed, BusError> {
        if self.is_last_attempt() {
            self.dead_letter(error).await?;
            Ok(Failed::DeadLettered)
        } else {
            self.nak(retry_after).await?;
            Ok(Failed::WillRetry)
        }
    }

    /// Moves the message to the dead-letter stream at once (for errors no retry can fix).
    pub async fn dead_letter(mut self, error: impl std::fmt::Display) -> Result<(), BusError> {
        let draft = DeadLetterDraft {
            partition: self.partition,
            sequence: self.sequence,
            attempts: self.attempt,
            error: error.to_string(),
            raw: self.raw.clone(),
        };
        let settle = self.take();
        bury(self.queue.as_ref(), settle, draft).await
    }
}

/// Stores the dead letter, then acks the original. If the ack is lost the message comes back
/// and is buried again; NATS drops the second copy by its message id.
pub(crate) async fn bury(
    queue: &dyn PartitionQueue,
    settle: Box<dyn Settle>,
    draft: DeadLetterDraft,
) -> Result<(), BusError> {
    tracing::warn!(
        partition = draft.partition.index(),
        sequence = draft.sequence,
        attempts = draft.attempts,
        error = %draft.error,
        "message moved to the dead-letter stream"
    );
    queue.dead_letter(draft).await?;
    settle.ack().await
}
