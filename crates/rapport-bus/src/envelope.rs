//! What travels on the bus: the envelope, its wire format, and what publishing and
//! dead-lettering report back.
//!
//! Wire format, version 1 (the message body on the broker):
//!
//! ```text
//! {"v":1,"workspace":"ws_…","key":"user_id:ada","event_id":"…"}\n<payload bytes>
//! ```
//!
//! One line of JSON (JSON escapes newlines inside strings, so the first `\n` ends it), then
//! the payload unchanged. Metadata lives in the body rather than in NATS headers because
//! customer keys and event ids are arbitrary Unicode, which headers cannot carry. A reader
//! refuses versions it does not know rather than guessing.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use rapport_core::{Event, WorkspaceId};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::{BusError, Partition};

/// The current wire format version.
pub const WIRE_VERSION: u32 = 1;

/// The longest event id accepted (the same limit the core puts on `messageId`).
pub const MAX_EVENT_ID_CHARS: usize = 256;

/// One accepted event on its way to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    workspace: WorkspaceId,
    partition_key: String,
    event_id: String,
    payload: Bytes,
}

impl Envelope {
    /// `partition_key` names the customer (events with equal keys are applied in order);
    /// `event_id` is unique per workspace and lets workers skip events applied before.
    pub fn new(
        workspace: WorkspaceId,
        partition_key: impl Into<String>,
        event_id: impl Into<String>,
        payload: impl Into<Bytes>,
    ) -> Result<Self, BusError> {
        let event_id = event_id.into();
        if event_id.trim().is_empty() || event_id.chars().count() > MAX_EVENT_ID_CHARS {
            return Err(BusError::InvalidInput(format!(
                "event id must be 1-{MAX_EVENT_ID_CHARS} characters"
            )));
        }
        Ok(Self {
            workspace,
            partition_key: partition_key.into(),
            event_id,
            payload: payload.into(),
        })
    }

    /// An envelope whose payload is `value` as JSON.
    pub fn json(
        workspace: WorkspaceId,
        partition_key: impl Into<String>,
        event_id: impl Into<String>,
        value: &impl Serialize,
    ) -> Result<Self, BusError> {
        let payload = serde_json::to_vec(value)
            .map_err(|e| BusError::InvalidInput(format!("payload is not JSON: {e}")))?;
        Self::new(workspace, partition_key, event_id, payload)
    }

    /// The envelope of a validated event: keyed by its strongest identifier (user id, then
    /// email, phone, anonymous id), identified by its `messageId`, carrying the event as JSON.
    pub fn for_event(workspace: WorkspaceId, event: &Event) -> Result<Self, BusError> {
        let key = event
            .identifiers()
            .first()
            .map(ToString::to_string)
            .ok_or_else(|| BusError::InvalidInput("event names no customer".to_owned()))?;
        Self::json(workspace, key, event.message_id.clone(), event)
    }

    pub fn workspace(&self) -> &WorkspaceId {
        &self.workspace
    }

    pub fn partition_key(&self) -> &str {
        &self.partition_key
    }

    /// Unique per workspace: a worker that finds it already applied acks and moves on.
    pub fn event_id(&self) -> &str {
        &self.event_id
    }

    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The payload read as JSON.
    pub fn payload_json<T: DeserializeOwned>(&self) -> Result<T, BusError> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| BusError::Corrupt(format!("payload of {}: {e}", self.event_id)))
    }

    /// The body written to the broker.
    pub fn encode(&self) -> Bytes {
        let meta = WireMeta {
            v: WIRE_VERSION,
            workspace: self.workspace.as_str().to_owned(),
            key: self.partition_key.clone(),
            event_id: self.event_id.clone(),
        };
        let mut out = serde_json::to_vec(&meta).expect("metadata serialises");
        out.push(b'\n');
        out.extend_from_slice(&self.payload);
        Bytes::from(out)
    }

    /// Reads a body written by [`Self::encode`].
    pub fn decode(body: &Bytes) -> Result<Self, BusError> {
        let (meta, payload) = split_meta::<WireMeta>(body)?;
        if meta.v != WIRE_VERSION {
            return Err(BusError::Corrupt(format!(
                "envelope format version {} is not known here (this build reads {WIRE_VERSION})",
                meta.v
            )));
        }
        let workspace = WorkspaceId::parse(&meta.workspace).ok_or_else(|| {
            BusError::Corrupt(format!("workspace id {:?} is not valid", meta.workspace))
        })?;
        Self::new(workspace, meta.key, meta.event_id, payload)
            .map_err(|e| BusError::Corrupt(e.to_string()))
    }
}

#[derive(Serialize, Deserialize)]
struct WireMeta {
    v: u32,
    workspace: String,
    key: String,
    event_id: String,
}

/// Splits `<json line>\n<rest>`.
pub(crate) fn split_meta<T: DeserializeOwned>(body: &Bytes) -> Result<(T, Bytes), BusError> {
    let nl = body
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| BusError::Corrupt("no metadata line".to_owned()))?;
    let meta = serde_json::from_slice(&body[..nl])
        .map_err(|e| BusError::Corrupt(format!("metadata line: {e}")))?;
    Ok((meta, body.slice(nl + 1..)))
}

/// What the broker answered to a publish: the event is durably stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub partition: Partition,
    /// Position in the event log (per stream for NATS, per partition in process). Only
    /// ordering within a partition is meaningful.
    pub sequence: u64,
    /// The same (workspace, event id) was published within the dedupe window; nothing new
    /// was stored and `sequence` is the original's.
    pub duplicate: bool,
}

/// Names one dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeadLetterId(pub u64);

/// A message that failed too often, set aside with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub id: DeadLetterId,
    pub partition: Partition,
    /// Its sequence in the event log it was taken from.
    pub sequence: u64,
    /// How many times it had been delivered.
    pub attempts: u32,
    /// The last handler error (or why the bus gave up on it).
    pub error: String,
    pub dead_lettered_at: DateTime<Utc>,
    /// The envelope, unless the body itself was unreadable (then see `raw`).
    pub envelope: Option<Envelope>,
    /// The body as it was on the event log; replay publishes exactly this.
    pub raw: Bytes,
}

/// What a backend is asked to store as a dead letter.
#[derive(Debug, Clone)]
pub struct DeadLetterDraft {
    pub partition: Partition,
    pub sequence: u64,
    pub attempts: u32,
    pub error: String,
    pub raw: Bytes,
}

#[derive(Serialize, Deserialize)]
struct DeadMeta {
    v: u32,
    partition: u16,
    sequence: u64,
    attempts: u32,
    error: String,
    at: DateTime<Utc>,
}

impl DeadLetterDraft {
    /// The dead-letter body: a metadata line, then the original body unchanged.
    pub fn encode(&self, at: DateTime<Utc>) -> Bytes {
        let meta = DeadMeta {
            v: WIRE_VERSION,
            partition: self.partition.index(),
            sequence: self.sequence,
            attempts: self.attempts,
            error: self.error.clone(),
            at,
        };
        let mut out = serde_json::to_vec(&meta).expect("metadata serialises");
        out.push(b'\n');
        out.extend_from_slice(&self.raw);
        Bytes::from(out)
    }
}

impl DeadLetter {
    pub fn decode(id: DeadLetterId, body: &Bytes) -> Result<Self, BusError> {
        let (meta, raw) = split_meta::<DeadMeta>(body)?;
        if meta.v != WIRE_VERSION {
            return Err(BusError::Corrupt(format!(
                "dead-letter format version {} is not known here",
                meta.v
            )));
        }
        Ok(Self {
            id,
            partition: Partition::new(meta.partition),
            sequence: meta.sequence,
            attempts: meta.attempts,
            error: meta.error,
            dead_lettered_at: meta.at,
            envelope: Envelope::decode(&raw).ok(),
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws() -> WorkspaceId {
        WorkspaceId::parse("ws_00000000000000000000000000000001").unwrap()
    }

    #[test]
    fn envelopes_round_trip_with_awkward_keys_and_binary_payloads() {
        let e = Envelope::new(
            ws(),
            "email:a\nb\"ç@x.io",
            "id\r\n1",
            vec![0u8, 10, 255, 10],
        )
        .unwrap();
        let back = Envelope::decode(&e.encode()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn the_wire_format_is_pinned() {
        let e = Envelope::new(ws(), "user_id:ada", "m1", &b"{}"[..]).unwrap();
        assert_eq!(
            e.encode(),
            Bytes::from_static(
                b"{\"v\":1,\"workspace\":\"ws_00000000000000000000000000000001\",\"key\":\"user_id:ada\",\"event_id\":\"m1\"}\n{}"
            )
        );
        let future = Bytes::from_static(
            b"{\"v\":2,\"workspace\":\"ws_x\",\"key\":\"k\",\"event_id\":\"m\"}\n",
        );
        assert!(matches!(
            Envelope::decode(&future),
            Err(BusError::Corrupt(_))
        ));
        assert!(Envelope::decode(&Bytes::from_static(b"no newline")).is_err());
    }

    #[test]
    fn an_event_is_keyed_by_its_strongest_identifier() {
        use rapport_core::event::EventParts;
        use rapport_core::{Channel, EventType, Identifier, IdentifierKind};
        let parts = |user: Option<&str>| EventParts {
            event_type: EventType::Track,
            message_id: "msg-1".to_owned(),
            user_id: user.map(|u| Identifier::new(IdentifierKind::UserId, u).unwrap()),
            anonymous_id: Some(Identifier::new(IdentifierKind::AnonymousId, "anon-9").unwrap()),
            previous_id: None,
            group_id: None,
            name: Some("Opened".to_owned()),
            timestamp: Utc::now(),
            received_at: Utc::now(),
            channel: Channel::Web,
            traits: Default::default(),
            properties: Default::default(),
            context: Default::default(),
            body: serde_json::json!({}),
            standard: None,
        };
        let known = Event::new(parts(Some("ada"))).unwrap();
        let e = Envelope::for_event(ws(), &known).unwrap();
        assert_eq!((e.partition_key(), e.event_id()), ("user_id:ada", "msg-1"));
        let v: serde_json::Value = e.payload_json().unwrap();
        assert_eq!(v["name"], "Opened");
        let anonymous = Event::new(parts(None)).unwrap();
        let e = Envelope::for_event(ws(), &anonymous).unwrap();
        assert_eq!(e.partition_key(), "anonymous_id:anon-9");
    }

    #[test]
    fn empty_or_long_event_ids_are_refused() {
        assert!(Envelope::new(ws(), "k", " ", Bytes::new()).is_err());
        assert!(Envelope::new(ws(), "k", "x".repeat(257), Bytes::new()).is_err());
    }

    #[test]
    fn dead_letters_keep_the_original_body() {
        let e = Envelope::new(ws(), "k", "m1", &b"payload"[..]).unwrap();
        let draft = DeadLetterDraft {
            partition: Partition::new(3),
            sequence: 42,
            attempts: 5,
            error: "boom\nline two".to_owned(),
            raw: e.encode(),
        };
        let at = Utc::now();
        let dl = DeadLetter::decode(DeadLetterId(7), &draft.encode(at)).unwrap();
        assert_eq!(dl.envelope, Some(e.clone()));
        assert_eq!(dl.raw, e.encode());
        assert_eq!(
            (dl.partition, dl.sequence, dl.attempts),
            (Partition::new(3), 42, 5)
        );
        assert_eq!(dl.error, "boom\nline two");
    }
}
