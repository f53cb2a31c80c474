//! Records the store returns that are about persistence rather than the domain.

use chrono::{DateTime, Utc};
use rapport_core::{
    Channel, Conversation, EventType, KeyRole, Message, ProfileId, WorkspaceId, WorkspaceName,
};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: WorkspaceName,
    pub created_at: DateTime<Utc>,
}

/// A stored API key, without the key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub workspace_name: WorkspaceName,
    pub role: KeyRole,
    /// The first characters of the key, to tell keys apart in listings.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
}

/// What an ingest call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngestSummary {
    /// Events applied now.
    pub applied: usize,
    /// Events whose `messageId` was already applied, acknowledged and skipped.
    pub duplicates: usize,
}

/// An event as stored on a profile's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub message_id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub name: Option<String>,
    pub channel: Channel,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub body: Value,
}

/// Where the next page of a timeline starts: after this event time and sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    pub ts_ms: i64,
    pub seq: i64,
}

impl EventCursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.ts_ms, self.seq)
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let (ts, seq) = raw.split_once('.')?;
        Some(Self {
            ts_ms: ts.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventPage {
    pub events: Vec<StoredEvent>,
    /// Present when more events follow.
    pub next_cursor: Option<String>,
}

/// A line of a customer list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileSummary {
    pub id: ProfileId,
    pub name: Option<String>,
    pub email: Option<String>,
    pub last_seen: Option<DateTime<Utc>>,
    pub event_count: i64,
    pub channels: Vec<Channel>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationDetail {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelCount {
    pub channel: Channel,
    pub events: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WorkspaceStats {
    pub profiles: i64,
    pub events: i64,
    pub conversations: i64,
    pub messages: i64,
}

/// One merge of two profiles, and why it happened. Names identifiers by kind only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergeRecord {
    pub survivor: ProfileId,
    pub merged: ProfileId,
    /// The event whose identifiers joined the two profiles, if an event did.
    pub message_id: Option<String>,
    /// Kinds of the identifiers that event carried (`user_id`, `email`, ...).
    pub identifier_kinds: Vec<String>,
    /// `identify`, `alias`, `shared_identifier` (any other call) or `conversation`.
    pub rule: String,
    pub at: DateTime<Utc>,
}
