//! Request and response bodies of the JSON API. Domain values are converted here, at the edge,
//! so the wire format is documented (OpenAPI) and stable while domain types evolve.

use chrono::{DateTime, Utc};
use rapport_core::{Conversation, Message, Profile};
use rapport_store::{
    ChannelCount, EventPage, IngestSummary, ProfileSummary, StoredEvent, WorkspaceStats,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IngestResponse {
    pub success: bool,
    /// Events applied by this request.
    pub applied: usize,
    /// Events whose messageId had been applied before: acknowledged, not applied again.
    pub duplicates: usize,
    /// Events naming a customer whose data was erased: acknowledged and dropped, so the
    /// erased profile is not rebuilt.
    pub suppressed: usize,
    /// Scale-out mode (`rapport serve --mode api`): events stored on the event bus, to be
    /// applied by a worker shortly. Absent in embedded mode, where events are applied at once.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub queued: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl From<IngestSummary> for IngestResponse {
    fn from(s: IngestSummary) -> Self {
        crate::sink::Accepted::from(s).into()
    }
}

impl From<crate::sink::Accepted> for IngestResponse {
    fn from(a: crate::sink::Accepted) -> Self {
        Self {
            success: true,
            applied: a.applied,
            duplicates: a.duplicates,
            suppressed: a.suppressed,
            queued: a.queued,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IdentityDto {
    /// `user_id`, `email`, `phone` or `anonymous_id`.
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProfileDto {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Merged by event time: each key holds the value from the latest event that set it.
    #[schema(value_type = Object)]
    pub traits: Map<String, Value>,
    pub identities: Vec<IdentityDto>,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub channels: Vec<String>,
    pub event_count: i64,
    /// Ids of profiles merged into this one; they resolve here.
    pub merged_ids: Vec<String>,
    /// The traits standardised (E.164 phones, folded emails, ISO countries and dates, proper
    /// names, normalised addresses); `null` where the raw value could not be.
    #[schema(value_type = Object)]
    pub standardized_traits: Map<String, Value>,
    /// Trait values that could not be standardised: flagged, never dropped.
    pub data_quality: Vec<DataQualityDto>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DataQualityDto {
    pub field: String,
    pub raw: String,
    /// Stable code, e.g. `invalid_email`, `invalid_phone`, `invalid_postcode`.
    pub code: String,
    pub problem: String,
}

impl From<Profile> for ProfileDto {
    fn from(p: Profile) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name,
            email: p.email,
            traits: p.traits,
            identities: p
                .identities
                .iter()
                .map(|i| IdentityDto {
                    kind: i.kind().as_str().to_owned(),
                    value: i.value().to_owned(),
                })
                .collect(),
            first_seen: p.first_seen,
            last_seen: p.last_seen,
            channels: p.channels.iter().map(|c| c.as_str().to_owned()).collect(),
            event_count: p.event_count,
            merged_ids: p.merged_ids.iter().map(ToString::to_string).collect(),
            standardized_traits: p.standardized_traits,
            data_quality: p
                .data_quality
                .into_iter()
                .map(|d| DataQualityDto {
                    field: d.field,
                    raw: d.raw,
                    code: d.code,
                    problem: d.problem,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProfileSummaryDto {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub last_seen: Option<DateTime<Utc>>,
    pub event_count: i64,
    pub channels: Vec<String>,
}

impl From<ProfileSummary> for ProfileSummaryDto {
    fn from(p: ProfileSummary) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name,
            email: p.email,
            last_seen: p.last_seen,
            event_count: p.event_count,
            channels: p.channels.iter().map(|c| c.as_str().to_owned()).collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProfileListDto {
    pub profiles: Vec<ProfileSummaryDto>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventDto {
    pub message_id: String,
    /// identify, track, page, screen, group, alias, or message (a conversation message).
    #[serde(rename = "type")]
    pub event_type: String,
    pub name: Option<String>,
    pub channel: String,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// The event as accepted, unknown fields included.
    #[schema(value_type = Object)]
    pub body: Value,
}

impl From<StoredEvent> for EventDto {
    fn from(e: StoredEvent) -> Self {
        Self {
            message_id: e.message_id,
            event_type: e.event_type.as_str().to_owned(),
            name: e.name,
            channel: e.channel.as_str().to_owned(),
            timestamp: e.timestamp,
            received_at: e.received_at,
            body: e.body,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPageDto {
    /// Newest first by event time.
    pub events: Vec<EventDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl From<EventPage> for EventPageDto {
    fn from(p: EventPage) -> Self {
        Self {
            events: p.events.into_iter().map(EventDto::from).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationDto {
    pub id: String,
    pub profile_id: String,
    pub channel: String,
    pub subject: Option<String>,
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub message_count: i64,
}

impl From<Conversation> for ConversationDto {
    fn from(c: Conversation) -> Self {
        Self {
            id: c.id.to_string(),
            profile_id: c.profile_id.to_string(),
            channel: c.channel.as_str().to_owned(),
            subject: c.subject,
            status: c.status.as_str().to_owned(),
            opened_at: c.opened_at,
            updated_at: c.updated_at,
            message_count: c.message_count,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationListDto {
    pub conversations: Vec<ConversationDto>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageDto {
    pub id: String,
    pub conversation_id: String,
    pub direction: String,
    pub author: String,
    pub text: String,
    pub sent_at: DateTime<Utc>,
    pub message_id: Option<String>,
    /// The AI-disclosure flag: true when software wrote the message (author `bot`). Such
    /// messages end with the workspace's disclosure text.
    #[serde(default)]
    pub automated: bool,
    /// For customer messages: language, sentiment (per message and sentence), emotions,
    /// effort, urgency, intent, personal data spans, redacted text, evidence, and the model.
    #[schema(value_type = Option<Object>)]
    pub analysis: Option<Value>,
}

impl From<Message> for MessageDto {
    fn from(m: Message) -> Self {
        Self {
            id: m.id.to_string(),
            conversation_id: m.conversation_id.to_string(),
            direction: m.direction.as_str().to_owned(),
            author: m.author.as_str().to_owned(),
            automated: m.author == rapport_core::Author::Bot,
            text: m.text,
            sent_at: m.sent_at,
            message_id: m.external_id,
            analysis: m.analysis,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationDetailDto {
    pub conversation: ConversationDto,
    pub messages: Vec<MessageDto>,
    /// Across the customer's messages: sentiment trajectory, trend, change since the first
    /// message, repeated contact and escalation signals, with evidence.
    #[schema(value_type = Option<Object>)]
    pub analysis: Option<Value>,
}

/// Opens a conversation. Name the customer by exactly one of `profileId`, `userId`, `email`
/// or `anonymousId`; a new userId, email or anonymousId creates the customer's profile.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenConversationRequest {
    pub profile_id: Option<String>,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub anonymous_id: Option<String>,
    /// chat, email, voice, sms or social.
    pub channel: String,
    pub subject: Option<String>,
    /// When the conversation started; defaults to now.
    pub timestamp: Option<String>,
}

/// Appends a message to a conversation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddMessageRequest {
    /// inbound (from the customer) or outbound (to the customer).
    pub direction: String,
    /// customer, agent or bot.
    pub author: String,
    pub text: String,
    /// When it was sent; defaults to now.
    pub timestamp: Option<String>,
    /// Your id for the message; a repeated one is acknowledged and not stored twice.
    pub message_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelCountDto {
    pub channel: String,
    pub events: i64,
}

impl From<ChannelCount> for ChannelCountDto {
    fn from(c: ChannelCount) -> Self {
        Self {
            channel: c.channel.as_str().to_owned(),
            events: c.events,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatsDto {
    pub workspace: String,
    pub profiles: i64,
    pub events: i64,
    pub conversations: i64,
    pub messages: i64,
    /// Events per channel over the last 24 hours, by event time.
    pub last_24h: Vec<ChannelCountDto>,
}

impl StatsDto {
    pub fn new(workspace: String, s: WorkspaceStats, last_24h: Vec<ChannelCount>) -> Self {
        Self {
            workspace,
            profiles: s.profiles,
            events: s.events,
            conversations: s.conversations,
            messages: s.messages,
            last_24h: last_24h.into_iter().map(Into::into).collect(),
        }
    }
}

/// One merge that formed a profile, and why. Identifiers are named by kind only.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MergeDto {
    /// The merge's number, which `POST /v1/profiles/{id}/unmerge` names.
    pub id: i64,
    pub survivor: String,
    pub merged: String,
    /// The event whose identifiers joined the two profiles.
    pub message_id: Option<String>,
    /// Kinds of identifier that event carried.
    pub identifier_kinds: Vec<String>,
    /// `identify`, `alias`, `shared_identifier` or `conversation` for a merge an event made;
    /// `probabilistic_dedupe` (a dedupe run) or `dedupe_review` (a person, from the review
    /// queue) for one no event asked for.
    pub rule: String,
    /// `merged`, `refused` (a guard kept the two apart) or `unmerged` (undone since).
    pub status: String,
    /// For a refused merge, the guard that refused it: `blocked`, `unauthenticated_merge`,
    /// `limit_exceeded` or `merge_blocked`.
    pub refusal: Option<String>,
    pub at: DateTime<Utc>,
    pub unmerged_at: Option<DateTime<Utc>>,
    /// For a dedupe merge, why: match probability, weight and each field's agreement level
    /// and log2 Bayes factor.
    #[schema(value_type = Option<Object>)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl From<rapport_store::MergeRecord> for MergeDto {
    fn from(m: rapport_store::MergeRecord) -> Self {
        Self {
            id: m.id,
            survivor: m.survivor.to_string(),
            merged: m.merged.to_string(),
            message_id: m.message_id,
            identifier_kinds: m.identifier_kinds,
            rule: m.rule,
            status: m.status,
            refusal: m.refusal,
            at: m.at,
            unmerged_at: m.unmerged_at,
            detail: m.detail,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MergeListDto {
    pub merges: Vec<MergeDto>,
}

/// Which merge to undo.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmergeDto {
    /// The merge's `id` from `GET /v1/profiles/{id}/merges`; absent, the latest merge.
    pub merge_id: Option<i64>,
    /// Also keep the two profiles from merging again (the identifier that joined them no
    /// longer links them).
    #[serde(default)]
    pub add_guard: bool,
}

/// What an unmerge did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnmergeResultDto {
    pub merge_id: i64,
    /// Keeps its id and everything that was not the other side's.
    pub survivor: String,
    /// Given back its own events, identifiers, conversations, traits, consents, decisions and
    /// next-best-action contacts; its id resolves to itself again.
    pub restored: String,
    pub events_moved: u64,
    pub identifiers_moved: u64,
    pub conversations_moved: u64,
    /// Consent records given back to the restored profile.
    pub consents_moved: u64,
    /// Decisions given back to the restored profile.
    pub decisions_moved: u64,
    /// Next-best-action contacts given back to the restored profile (they count against its
    /// contact policy again, no longer the survivor's).
    pub contacts_moved: u64,
    pub guard_added: bool,
}

impl From<rapport_store::UnmergeOutcome> for UnmergeResultDto {
    fn from(o: rapport_store::UnmergeOutcome) -> Self {
        Self {
            merge_id: o.merge_id,
            survivor: o.survivor.to_string(),
            restored: o.restored.to_string(),
            events_moved: o.events_moved,
            identifiers_moved: o.identifiers_moved,
            conversations_moved: o.conversations_moved,
            consents_moved: o.consents_moved,
            decisions_moved: o.decisions_moved,
            contacts_moved: o.contacts_moved,
            guard_added: o.guard_added,
        }
    }
}
