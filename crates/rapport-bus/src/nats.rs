//! The scale-out bus on NATS JetStream (works with servers from 2.9 on).
//!
//! Layout, every name derived from the [`crate::Prefix`] (see [`crate::Names`]):
//! - stream `<prefix>_events`, subjects `<prefix>.events.<partition>`, file storage, kept for
//!   `retention`, duplicate window `dedupe_window` keyed by `Nats-Msg-Id = <workspace>:<hex
//!   of event id>`;
//! - one durable pull consumer per partition, `<prefix>_p<partition>`, filtered to that
//!   partition's subject, explicit acks, `max_ack_pending = 1` (strict order: the server
//!   delivers the next message only after the previous one is acked), `ack_wait`, unlimited
//!   redelivery (the worker runtime dead-letters after `max_attempts`). Because the consumer
//!   is durable, whatever the previous owner left unacknowledged goes to the next owner;
//! - stream `<prefix>_dlq`, subjects `<prefix>.dlq.<partition>`, kept until replayed or
//!   discarded;
//! - key-value bucket `<prefix>_leases` (history 1, `max_age = lease_ttl`) with keys
//!   `w.<worker>` (registrations) and `p.<partition>` (leases, value = owner). NATS 2.9 has
//!   no per-key TTL, so the bucket's age limit is the lease TTL and every renewal is a new
//!   revision written with compare-and-set.
//!
//! The event stream's description records the partition count; connecting with another
//! count, or another lease TTL than the bucket's, is refused with [`BusError::Mismatch`].

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream, AckKind};
use async_nats::HeaderMap;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use futures_util::StreamExt;

use crate::backend::{Fetched, LeaseStore, PartitionQueue, Settle};
use crate::{
    Bus, BusConfig, BusError, DeadLetter, DeadLetterDraft, DeadLetterId, Doomed, Envelope,
    EraseCursor, Erased, Names, Partition, Partitioner, Prefix, Published, Worker, WorkerId,
};
use rapport_core::WorkspaceId;

fn unavailable(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(format!("{what}: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn msg_id(envelope: &Envelope) -> String {
    format!(
        "{}:{}",
        envelope.workspace(),
        hex(envelope.event_id().as_bytes())
    )
}

fn with_msg_id(id: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("Nats-Msg-Id", id);
    h
}

/// The servers of `url`: one `nats://HOST:PORT`, or several separated by commas (the seed
/// servers of a cluster; the client learns the rest from them and fails over between them).
fn seed_servers(url: &str) -> Result<Vec<async_nats::ServerAddr>, BusError> {
    url.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse::<async_nats::ServerAddr>().map_err(|e| {
                let shown = u.rsplit_once('@').map_or(u, |(_, host)| host);
                BusError::InvalidInput(format!("NATS server {shown:?} is not a URL: {e}"))
            })
        })
        .collect()
}

/// A [`Bus`] on NATS JetStream.
pub struct NatsBus {
    config: BusConfig,
    names: Names,
    partitioner: Partitioner,
    js: jetstream::Context,
    dlq: stream::Stream,
    queue: Arc<NatsQueue>,
    leases: Arc<NatsLeases>,
}

impl NatsBus {
    /// Connects to `url` and creates the streams, consumers and bucket of `config.prefix`
    /// if they do not exist. Fails within `publish_timeout` if the server cannot be reached.
    pub async fn connect(url: &str, config: BusConfig) -> Result<Self, BusError> {
        config.validate()?;
        let t = config.publish_timeout;
        let client = tokio::time::timeout(
            t,
            async_nats::ConnectOptions::new()
                .connection_timeout(t)
                .request_timeout(Some(t))
                .connect(seed_servers(url)?),
        )
        .await
        .map_err(|_| BusError::Unavailable(format!("no answer from {url} within {t:?}")))?
        .map_err(|e| unavailable("connecting to NATS", e))?;
        Self::with_client(client, config).await
    }

    /// Like [`Self::connect`] on a client the caller set up (credentials, TLS, names).
    pub async fn with_client(
        client: async_nats::Client,
        config: BusConfig,
    ) -> Result<Self, BusError> {
        config.validate()?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.publish_timeout)
            .build(client);
        let names = config.names();
        let events = ensure_events_stream(&js, &config, &names).await?;
        let dlq = js
            .get_or_create_stream(stream::Config {
                name: names.dlq_stream(),
                subjects: vec![names.dlq_wildcard()],
                storage: stream::StorageType::File,
                description: Some("rapport bus dead letters".to_owned()),
                num_replicas: config.replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable("creating the dead-letter stream", e))?;
        let mut consumers = Vec::with_capacity(usize::from(config.partitions));
        for p in 0..config.partitions {
            consumers.push(ensure_consumer(&events, &config, &names, p).await?);
        }
        let leases = NatsLeases::open(&js, &config, &names).await?;
        Ok(Self {
            partitioner: Partitioner::new(config.partitions),
            queue: Arc::new(NatsQueue {
                js: js.clone(),
                names: names.clone(),
                consumers,
                publish_timeout: config.publish_timeout,
            }),
            leases: Arc::new(leases),
            config,
            names,
            js,
            dlq,
        })
    }

    /// Deletes every stream, consumer and bucket of this bus's prefix (tests, teardown).
    pub async fn destroy(&self) -> Result<(), BusError> {
        delete_streams(&self.js, &self.names).await.map(|_| ())
    }

    /// Deletes whatever exists of the bus under `prefix` on the server at `url`, without
    /// needing a working bus (for cleaning up after a run that failed half-way). Returns how
    /// many streams (the bucket counts as one) were deleted.
    pub async fn delete_prefix(url: &str, prefix: &Prefix) -> Result<usize, BusError> {
        let t = Duration::from_secs(5);
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(t)
            .connect(seed_servers(url)?)
            .await
            .map_err(|e| unavailable("connecting to NATS", e))?;
        let js = jetstream::ContextBuilder::new().timeout(t).build(client);
        delete_streams(&js, &Names::new(prefix)).await
    }

    async fn send(&self, subject: String, id: &str, body: Bytes) -> Result<u64, BusError> {
        let ack = tokio::time::timeout(self.config.publish_timeout, async {
            self.js
                .publish_with_headers(subject, with_msg_id(id), body)
                .await
                .map_err(|e| unavailable("publishing", e))?
                .await
                .map_err(|e| unavailable("waiting for the publish acknowledgement", e))
        })
        .await
        .map_err(|_| {
            BusError::Unavailable(format!(
                "no publish acknowledgement within {:?}",
                self.config.publish_timeout
            ))
        })??;
        Ok(ack.sequence)
    }
}

async fn delete_streams(js: &jetstream::Context, names: &Names) -> Result<usize, BusError> {
    let mut deleted = 0;
    let bucket_stream = format!("KV_{}", names.lease_bucket());
    for name in [names.events_stream(), names.dlq_stream(), bucket_stream] {
        match js.delete_stream(&name).await {
            Ok(_) => deleted += 1,
            Err(e)
                if matches!(e.kind(), jetstream::context::DeleteStreamErrorKind::JetStream(j)
                    if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) => {}
            Err(e) => return Err(unavailable(&format!("deleting stream {name}"), e)),
        }
    }
    Ok(deleted)
}

async fn ensure_events_stream(
    js: &jetstream::Context,
    config: &BusConfig,
    names: &Names,
) -> Result<stream::Stream, BusError> {
    let description = format!("rapport bus events; partitions={}", config.partitions);
    let events = js
        .get_or_create_stream(stream::Config {
            name: names.events_stream(),
            subjects: vec![names.events_wildcard()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            max_age: config.retention,
            duplicate_window: config.dedupe_window,
            description: Some(description.clone()),
            num_replicas: config.replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable("creating the event stream", e))?;
    let found = events.cached_info().config.description.clone();
    if found.as_deref() != Some(description.as_str()) {
        return Err(BusError::Mismatch(format!(
            "stream {} says {:?}, this process runs with partitions={}",
            names.events_stream(),
            found.unwrap_or_default(),
            config.partitions
        )));
    }
    Ok(events)
}

async fn ensure_consumer(
    events: &stream::Stream,
    config: &BusConfig,
    names: &Names,
    partition: u16,
) -> Result<consumer::PullConsumer, BusError> {
    let name = names.partition_consumer(partition);
    let consumer: consumer::PullConsumer = events
        .get_or_create_consumer(
            &name,
            consumer::pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: names.events_subject(partition),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                max_ack_pending: 1,
                max_deliver: -1,
                deliver_policy: consumer::DeliverPolicy::All,
                description: Some(format!("rapport bus partition {partition}")),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| unavailable(&format!("creating consumer {name}"), e))?;
    let found = consumer.cached_info().config.ack_wait;
    if found != config.ack_wait {
        return Err(BusError::Mismatch(format!(
            "consumer {name} has ack_wait {found:?}, this process runs with {:?}",
            config.ack_wait
        )));
    }
    Ok(consumer)
}

#[async_trait]
impl Bus for NatsBus {
    fn config(&self) -> &BusConfig {
        &self.config
    }

    async fn publish(&self, envelope: &Envelope) -> Result<Published, BusError> {
        let partition = self
            .partitioner
            .partition_for(envelope.workspace().as_str(), envelope.partition_key());
        let ack = tokio::time::timeout(self.config.publish_timeout, async {
            self.js
                .publish_with_headers(
                    self.names.events_subject(partition.index()),
                    with_msg_id(&msg_id(envelope)),
                    envelope.encode(),
                )
                .await
                .map_err(|e| unavailable("publishing", e))?
                .await
                .map_err(|e| unavailable("waiting for the publish acknowledgement", e))
        })
        .await
        .map_err(|_| {
            BusError::Unavailable(format!(
                "no publish acknowledgement within {:?}",
                self.config.publish_timeout
            ))
        })??;
        Ok(Published {
            partition,
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// Sends every message first and then waits for the acknowledgements, so a batch costs
    /// about one round trip instead of one per message. One connection keeps them in order.
    async fn publish_many(&self, envelopes: &[Envelope]) -> Result<Vec<Published>, BusError> {
        let work = async {
            let mut pending = Vec::with_capacity(envelopes.len());
            for e in envelopes {
                let partition = self
                    .partitioner
                    .partition_for(e.workspace().as_str(), e.partition_key());
                let ack = self
                    .js
                    .publish_with_headers(
                        self.names.events_subject(partition.index()),
                        with_msg_id(&msg_id(e)),
                        e.encode(),
                    )
                    .await
                    .map_err(|e| unavailable("publishing", e))?;
                pending.push((partition, ack));
            }
            let mut out = Vec::with_capacity(pending.len());
            for (partition, ack) in pending {
                let ack = ack
                    .await
                    .map_err(|e| unavailable("waiting for the publish acknowledgement", e))?;
                out.push(Published {
                    partition,
                    sequence: ack.sequence,
                    duplicate: ack.duplicate,
                });
            }
            Ok(out)
        };
        // The whole batch gets one timeout per 1,000 messages, at least one.
        let budget = self.config.publish_timeout * (1 + envelopes.len() as u32 / 1000);
        tokio::time::timeout(budget, work).await.map_err(|_| {
            BusError::Unavailable(format!("no publish acknowledgements within {budget:?}"))
        })?
    }

    async fn join(&self, worker: WorkerId) -> Result<Worker, BusError> {
        Ok(Worker::spawn(
            worker,
            &self.config,
            self.leases.clone(),
            self.queue.clone(),
        ))
    }

    async fn dead_letters(
        &self,
        after: Option<DeadLetterId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BusError> {
        let mut out = Vec::new();
        let mut from = after.map_or(1, |a| a.0 + 1);
        while out.len() < limit {
            // "The first message at or after `from` on these subjects": one request per
            // letter, no consumer to create and clean up.
            let msg = match self
                .dlq
                .get_first_raw_message_by_subject(self.names.dlq_wildcard(), from)
                .await
            {
                Ok(m) => m,
                Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => break,
                Err(e) => return Err(unavailable("reading dead letters", e)),
            };
            from = msg.sequence + 1;
            out.push(DeadLetter::decode(
                DeadLetterId(msg.sequence),
                &msg.payload,
            )?);
        }
        Ok(out)
    }

    async fn replay_dead_letter(&self, id: DeadLetterId) -> Result<Published, BusError> {
        let msg = match self.dlq.get_raw_message(id.0).await {
            Ok(m) => m,
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                return Err(BusError::NotFound(format!("dead letter {}", id.0)))
            }
            Err(e) => return Err(unavailable("reading a dead letter", e)),
        };
        let letter = DeadLetter::decode(id, &msg.payload)?;
        // A replay is a new message: its id is the dead letter's, not the event's, so the
        // dedupe window does not swallow it, yet a retried replay is stored once.
        let sequence = self
            .send(
                self.names.events_subject(letter.partition.index()),
                &format!("replay:{}:{}", self.names.dlq_stream(), id.0),
                letter.raw.clone(),
            )
            .await?;
        self.discard_dead_letter(id).await.or_else(|e| match e {
            BusError::NotFound(_) => Ok(()),
            e => Err(e),
        })?;
        Ok(Published {
            partition: letter.partition,
            sequence,
            duplicate: false,
        })
    }

    async fn discard_dead_letter(&self, id: DeadLetterId) -> Result<(), BusError> {
        match self.dlq.delete_message(id.0).await {
            Ok(_) => Ok(()),
            Err(e) => match e.kind() {
                stream::DeleteMessageErrorKind::JetStream(j) if is_missing(&j) => {
                    Err(BusError::NotFound(format!("dead letter {}", id.0)))
                }
                _ => Err(unavailable("deleting a dead letter", e)),
            },
        }
    }

    async fn erase_where(
        &self,
        workspace: &WorkspaceId,
        after: Option<EraseCursor>,
        doomed: Doomed<'_>,
    ) -> Result<Erased, BusError> {
        let start = after.map_or(1, |c| c.0 + 1);
        let (picked, last) = self.scan_events(workspace, start, doomed).await?;
        let events = self
            .js
            .get_stream(self.names.events_stream())
            .await
            .map_err(|e| unavailable("opening the event stream", e))?;
        let mut out = Erased {
            cursor: EraseCursor(last),
            ..Erased::default()
        };
        for sequence in picked {
            if erase_message(&events, sequence).await? {
                out.events += 1;
            }
        }
        let mut from = None;
        loop {
            let page = self.dead_letters(from, 500).await?;
            let Some(tail) = page.last() else { break };
            from = Some(tail.id);
            for letter in &page {
                let picked = letter
                    .envelope
                    .as_ref()
                    .is_some_and(|e| e.workspace() == workspace && doomed(e));
                if picked && erase_message(&self.dlq, letter.id.0).await? {
                    out.dead_letters += 1;
                }
            }
        }
        Ok(out)
    }
}

impl NatsBus {
    /// The sequences on the event stream after `start - 1` whose envelope `doomed` picks, read
    /// with an ordered consumer (no acks, gone when dropped), and the last sequence seen.
    async fn scan_events(
        &self,
        workspace: &WorkspaceId,
        start: u64,
        doomed: Doomed<'_>,
    ) -> Result<(Vec<u64>, u64), BusError> {
        let events = self
            .js
            .get_stream(self.names.events_stream())
            .await
            .map_err(|e| unavailable("opening the event stream", e))?;
        let state = events
            .get_info()
            .await
            .map_err(|e| unavailable("reading the event stream", e))?
            .state;
        let mut last = start.saturating_sub(1);
        if state.messages == 0 || state.last_sequence < start {
            return Ok((Vec::new(), last.max(state.last_sequence)));
        }
        let deliver_policy = if start <= 1 {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start,
            }
        };
        let reader = events
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy,
                description: Some("rapport erasure scan".to_owned()),
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable("starting the erasure scan", e))?;
        let mut messages = reader
            .messages()
            .await
            .map_err(|e| unavailable("starting the erasure scan", e))?;
        let mut picked = Vec::new();
        loop {
            let next = tokio::time::timeout(self.config.publish_timeout, messages.next()).await;
            let message = match next {
                Ok(Some(m)) => m.map_err(|e| unavailable("scanning the event stream", e))?,
                Ok(None) => break,
                Err(_) => {
                    // Nothing more came: done only if the stream holds nothing after `last`
                    // (its tail may have aged out or been deleted since it was read above).
                    let now = events
                        .get_info()
                        .await
                        .map_err(|e| unavailable("reading the event stream", e))?
                        .state;
                    if now.messages == 0 || now.last_sequence <= last {
                        break;
                    }
                    return Err(BusError::Unavailable(format!(
                        "the erasure scan stalled at sequence {last} of {}",
                        now.last_sequence
                    )));
                }
            };
            let info = message
                .info()
                .map_err(|e| BusError::Corrupt(format!("delivery metadata: {e}")))?;
            let (sequence, pending) = (info.stream_sequence, info.pending);
            last = last.max(sequence);
            // A body that does not read as an envelope is not an event of ours.
            if Envelope::decode(&message.payload)
                .is_ok_and(|e| e.workspace() == workspace && doomed(&e))
            {
                picked.push(sequence);
            }
            if pending == 0 {
                break;
            }
        }
        Ok((picked, last))
    }
}

/// Deletes one message from `stream` with the server's secure erase (the stored bytes are
/// overwritten, not only unlinked: `no_erase` is left false). A message already gone (aged
/// out, erased before) counts as done.
async fn erase_message(stream: &stream::Stream, sequence: u64) -> Result<bool, BusError> {
    match stream.delete_message(sequence).await {
        Ok(_) => Ok(true),
        Err(e) => match e.kind() {
            stream::DeleteMessageErrorKind::JetStream(j) if is_missing(&j) => Ok(false),
            _ => Err(unavailable("erasing a message", e)),
        },
    }
}

/// Whether a JetStream error says the message does not exist. NATS 2.9 answers a delete of a
/// missing message with "stream message delete failed" whose text says no message was found.
fn is_missing(j: &jetstream::Error) -> bool {
    j.error_code() == jetstream::ErrorCode::NO_MESSAGE_FOUND
        || j.error_code() == jetstream::ErrorCode::SEQUENCE_NOT_FOUND
        || (j.error_code() == jetstream::ErrorCode::STREAM_MESSAGE_DELETE_FAILED
            && j.to_string().contains("no message found"))
}

struct NatsQueue {
    js: jetstream::Context,
    names: Names,
    consumers: Vec<consumer::PullConsumer>,
    publish_timeout: Duration,
}

#[async_trait]
impl PartitionQueue for NatsQueue {
    async fn fetch(
        &self,
        partition: Partition,
        wait: Duration,
    ) -> Result<Option<Fetched>, BusError> {
        let consumer = self
            .consumers
            .get(usize::from(partition.index()))
            .ok_or_else(|| BusError::InvalidInput(format!("no partition {partition}")))?;
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| unavailable("pulling", e))?;
        let Some(next) = batch.next().await else {
            return Ok(None);
        };
        let message = next.map_err(|e| unavailable("pulling", e))?;
        let (sequence, delivered) = {
            let info = message
                .info()
                .map_err(|e| BusError::Corrupt(format!("delivery metadata: {e}")))?;
            (info.stream_sequence, info.delivered)
        };
        let (message, acker) = message.split();
        Ok(Some(Fetched {
            raw: message.payload,
            sequence,
            attempt: u32::try_from(delivered.max(1)).unwrap_or(u32::MAX),
            settle: Box::new(NatsSettle(acker)),
        }))
    }

    async fn dead_letter(&self, draft: DeadLetterDraft) -> Result<(), BusError> {
        let id = format!("dlq:{}", draft.sequence);
        let body = draft.encode(Utc::now());
        let subject = self.names.dlq_subject(draft.partition.index());
        tokio::time::timeout(self.publish_timeout, async {
            self.js
                .publish_with_headers(subject, with_msg_id(&id), body)
                .await
                .map_err(|e| unavailable("dead-lettering", e))?
                .await
                .map_err(|e| unavailable("dead-lettering", e))
        })
        .await
        .map_err(|_| BusError::Unavailable("dead-lettering timed out".to_owned()))??;
        Ok(())
    }
}

struct NatsSettle(jetstream::message::Acker);

#[async_trait]
impl Settle for NatsSettle {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        self.0.ack().await.map_err(|e| unavailable("acking", e))
    }

    async fn nak(self: Box<Self>, delay: Duration) -> Result<(), BusError> {
        let delay = (!delay.is_zero()).then_some(delay);
        self.0
            .ack_with(AckKind::Nak(delay))
            .await
            .map_err(|e| unavailable("nak", e))
    }

    async fn in_progress(&self) -> Result<(), BusError> {
        self.0
            .ack_with(AckKind::Progress)
            .await
            .map_err(|e| unavailable("progress", e))
    }
}

/// Registrations and leases in a JetStream key-value bucket.
struct NatsLeases {
    kv: kv::Store,
    /// The bucket's own stream, for listing and purging registrations.
    stream: stream::Stream,
    subject_prefix: String,
}

impl NatsLeases {
    async fn open(
        js: &jetstream::Context,
        config: &BusConfig,
        names: &Names,
    ) -> Result<Self, BusError> {
        let bucket = names.lease_bucket();
        // The bucket's stream is created here with the settings async-nats would give a
        // key-value bucket, because its own `create_key_value` first queries the account
        // in a shape NATS 2.9 does not answer in.
        js.get_or_create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            description: Some("rapport bus worker registrations and partition leases".to_owned()),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age: config.lease_ttl,
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            num_replicas: config.replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable("creating the lease bucket", e))?;
        let kv = js
            .get_key_value(&bucket)
            .await
            .map_err(|e| unavailable("opening the lease bucket", e))?;
        let found = kv.stream.cached_info().config.max_age;
        if found != config.lease_ttl {
            return Err(BusError::Mismatch(format!(
                "bucket {bucket} has lease TTL {found:?}, this process runs with {:?}",
                config.lease_ttl
            )));
        }
        Ok(Self {
            stream: kv.stream.clone(),
            subject_prefix: format!("$KV.{bucket}."),
            kv,
        })
    }
}

fn lease_key(p: Partition) -> String {
    format!("p.{p}")
}

#[async_trait]
impl LeaseStore for NatsLeases {
    async fn heartbeat(&self, worker: &WorkerId) -> Result<(), BusError> {
        self.kv
            .put(format!("w.{worker}"), Bytes::new())
            .await
            .map(|_| ())
            .map_err(|e| unavailable("heartbeat", e))
    }

    async fn deregister(&self, worker: &WorkerId) -> Result<(), BusError> {
        // A purge of the subject leaves no marker behind, so the worker vanishes from the
        // listing at once.
        self.stream
            .purge()
            .filter(format!("{}w.{worker}", self.subject_prefix))
            .await
            .map(|_| ())
            .map_err(|e| unavailable("deregistering", e))
    }

    async fn live_workers(&self) -> Result<Vec<WorkerId>, BusError> {
        let filter = format!("{}w.>", self.subject_prefix);
        let mut subjects = self
            .stream
            .info_with_subjects(&filter)
            .await
            .map_err(|e| unavailable("listing workers", e))?;
        let mut out = Vec::new();
        while let Some(entry) = subjects.next().await {
            let (subject, count) = entry.map_err(|e| unavailable("listing workers", e))?;
            let name = subject
                .strip_prefix(&self.subject_prefix)
                .and_then(|s| s.strip_prefix("w."));
            if let (Some(name), true) = (name, count > 0) {
                if let Ok(w) = WorkerId::parse(name) {
                    out.push(w);
                }
            }
        }
        Ok(out)
    }

    async fn acquire(
        &self,
        partition: Partition,
        worker: &WorkerId,
    ) -> Result<Option<u64>, BusError> {
        match self
            .kv
            .create(
                lease_key(partition),
                Bytes::from(worker.as_str().to_owned()),
            )
            .await
        {
            Ok(rev) => Ok(Some(rev)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(unavailable("acquiring a lease", e)),
        }
    }

    async fn renew(
        &self,
        partition: Partition,
        worker: &WorkerId,
        revision: u64,
    ) -> Result<Option<u64>, BusError> {
        match self
            .kv
            .update(
                lease_key(partition),
                Bytes::from(worker.as_str().to_owned()),
                revision,
            )
            .await
        {
            Ok(rev) => Ok(Some(rev)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(unavailable("renewing a lease", e)),
        }
    }

    async fn release(&self, partition: Partition, revision: u64) -> Result<(), BusError> {
        // A failed compare means the lease is not ours any more: nothing to give up.
        match self
            .kv
            .delete_expect_revision(lease_key(partition), Some(revision))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.to_string().contains("wrong last sequence") => Ok(()),
            Err(e) => Err(unavailable("releasing a lease", e)),
        }
    }
}
