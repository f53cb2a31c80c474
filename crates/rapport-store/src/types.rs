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

/// A person's dashboard account. The password is held only as an Argon2 hash in PHC form
/// (`$argon2id$v=19$...`), which the store keeps but never interprets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserRecord {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub workspace_name: WorkspaceName,
    pub login: rapport_core::Login,
    pub role: KeyRole,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    /// When an administrator disabled the account: it cannot sign in and its sessions ended.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A change to a person's account (see [`crate::Store::update_user`]); `None` leaves a part
/// as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub role: Option<KeyRole>,
    /// A new password, already hashed.
    pub password_hash: Option<String>,
    /// `Some(true)` disables the account, `Some(false)` enables it again.
    pub disabled: Option<bool>,
}

impl UserChange {
    /// Whether the change ends the account's sessions: people signed in keep the rights they
    /// signed in with, so any change to them signs them out.
    pub fn ends_sessions(&self) -> bool {
        self.role.is_some() || self.password_hash.is_some() || self.disabled == Some(true)
    }
}

/// A dashboard sign-in as the store keeps it: the token only as its SHA-256 hash, so a copy
/// of the database cannot be used to take over a session.
#[derive(Debug, Clone)]
pub struct SessionDraft {
    pub token_hash: String,
    pub user_id: String,
    pub expires_at: DateTime<Utc>,
}

/// What an ingest call did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestSummary {
    /// Events applied now.
    pub applied: usize,
    /// Events whose `messageId` was already applied, acknowledged and skipped.
    pub duplicates: usize,
    /// Events naming an identifier of an erased customer, acknowledged and dropped so the
    /// erased profile is not rebuilt.
    pub suppressed: usize,
    /// The profiles the applied events landed on, each once, so derived state such as
    /// features can follow (an id merged away since resolves to its survivor through
    /// [`crate::Store::profile`]).
    #[serde(skip)]
    pub touched: Vec<ProfileId>,
}

impl IngestSummary {
    /// The summary with each touched profile listed once.
    pub(crate) fn settled(mut self) -> Self {
        self.touched.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        self.touched.dedup();
        self
    }
}

/// A version of a workspace's trained model of one kind (`churn`, ...). The model itself is
/// kept beside it as text and read with [`crate::Store::model_body`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelVersion {
    pub kind: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    /// Who trained it (an encoded actor, or `schedule`).
    pub created_by: String,
    /// Whether it is the one scoring now; at most one version of a kind is.
    pub active: bool,
    /// How it was trained and how it scored on held-out data.
    pub summary: Value,
}

/// A new model version to store.
#[derive(Debug, Clone)]
pub struct ModelDraft {
    pub kind: String,
    pub created_by: String,
    pub summary: Value,
    pub body: String,
    /// Make it the active version at once.
    pub activate: bool,
}

/// A customer's materialised features, as last computed, with the scores read from them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileFeatures {
    pub profile_id: ProfileId,
    pub computed_at: DateTime<Utc>,
    /// Feature name to value (`null` when missing).
    pub features: serde_json::Map<String, Value>,
    /// Scores by model kind (`{"churn": {"probability": .., "version": .., "explanation": ..}}`).
    pub scores: serde_json::Map<String, Value>,
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
    /// The merge's number in the merge log (what an unmerge names).
    pub id: i64,
    pub survivor: ProfileId,
    pub merged: ProfileId,
    /// The event whose identifiers joined the two profiles, if an event did.
    pub message_id: Option<String>,
    /// Kinds of the identifiers that event carried (`user_id`, `email`, ...); for a refused
    /// merge, the kind of the identifier that would have joined them.
    pub identifier_kinds: Vec<String>,
    /// `identify`, `alias`, `shared_identifier` (any other call) or `conversation`.
    pub rule: String,
    /// `merged`, `refused` (a guard kept the two apart) or `unmerged` (undone since).
    pub status: String,
    /// For a refused merge, the guard that refused: `blocked`, `unauthenticated_merge`,
    /// `limit_exceeded` or `merge_blocked` (an operator unmerged the two and said so).
    pub refusal: Option<String>,
    pub at: DateTime<Utc>,
    pub unmerged_at: Option<DateTime<Utc>>,
    /// For a merge without an event (`probabilistic_dedupe`, `dedupe_review`), why: the match
    /// probability and each field's agreement level and contribution (no values).
    pub detail: Option<Value>,
}

/// What an unmerge should undo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnmergeRequest {
    /// The merge to undo (its [`MergeRecord::id`]); `None` undoes the profile's latest merge.
    pub merge_id: Option<i64>,
    /// Keep the two profiles from merging again.
    pub add_guard: bool,
}

/// What an unmerge did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnmergeOutcome {
    pub merge_id: i64,
    /// The profile that keeps its id and what was not the other side's.
    pub survivor: ProfileId,
    /// The profile given back its own events, identifiers, traits, consents, decisions and
    /// contacts; its id resolves to itself again.
    pub restored: ProfileId,
    pub events_moved: u64,
    pub identifiers_moved: u64,
    pub conversations_moved: u64,
    /// Consent records, decisions and next-best-action contacts given back.
    pub consents_moved: u64,
    pub decisions_moved: u64,
    pub contacts_moved: u64,
    pub guard_added: bool,
}

/// Merges, refusals and unmerges of one day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IdentityDay {
    /// Days since the epoch (UTC).
    pub day: i64,
    pub merged: u64,
    pub refused: u64,
    pub unmerged: u64,
}

/// The identity graph's health in a workspace, for the data-quality page.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IdentityHealth {
    /// Oldest day first.
    pub days: Vec<IdentityDay>,
    /// The most recent refused merges, newest first.
    pub refused: Vec<MergeRecord>,
    /// The most recent unmerges, newest first.
    pub unmerged: Vec<MergeRecord>,
    /// Data-quality flags on live profiles by code (`invalid_email`, `blocked_identifier`, ...),
    /// most frequent first.
    pub invalid_values: Vec<(String, u64)>,
    /// A few flagged values: profile id, field, code.
    pub flagged_profiles: Vec<(ProfileId, String, String)>,
}

/// Which audit records to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this workspace's records (records of no workspace, such as admin actions, are
    /// left out); `None` reads the whole chain.
    pub workspace: Option<WorkspaceId>,
    /// Only actions starting with this, e.g. `consent.` or `profile.erased`.
    pub action_prefix: Option<String>,
    /// Only records about this subject (a profile id, ...).
    pub subject: Option<String>,
    /// Only records with a sequence number above this (ascending reads) or below it
    /// (descending reads).
    pub from_seq: Option<i64>,
    /// Oldest first when true (for verification), newest first otherwise (for people).
    pub ascending: bool,
    pub limit: usize,
}

/// Which decisions to read, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionQuery {
    pub workspace: WorkspaceId,
    pub profile: Option<ProfileId>,
    pub status: Option<rapport_core::DecisionStatus>,
    pub limit: usize,
}

/// Options of an erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErasureOptions {
    /// Keep salted hashes of the profile's identifiers so late events naming them are
    /// refused instead of rebuilding the profile.
    pub tombstone: bool,
}

impl Default for ErasureOptions {
    fn default() -> Self {
        Self { tombstone: true }
    }
}

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ErasureOutcome {
    /// The canonical profile erased.
    pub profile_id: String,
    /// Every profile id erased: the canonical one and the ids merged into it.
    pub erased_ids: Vec<String>,
    /// True when the profile had been erased before; nothing more was done.
    pub already_erased: bool,
    pub events: u64,
    pub conversations: u64,
    pub messages: u64,
    pub identifiers: u64,
    pub traits: u64,
    pub consents: u64,
    /// Salted identifier hashes kept so the profile is not rebuilt.
    pub tombstones: u64,
    /// Whether the write-ahead log was emptied afterwards, so no erased bytes remain in it.
    /// SQLite checkpoints and truncates its log. PostgreSQL's log belongs to the server (it is
    /// recycled by checkpoints and may be archived or streamed to replicas), so that backend
    /// always says `false`; it vacuums the erased tables instead, see `postgres` docs.
    pub log_purged: bool,
}

/// Outcome counts of one next-best-action action in a workspace: the evidence its propensity
/// is learned from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionCounts {
    pub action_id: String,
    pub successes: i64,
    pub failures: i64,
}

/// One of a customer's events as next-best-action features read it: when, its name, and the
/// order amount (`properties.revenue`, `total` or `value`, the first that is a number).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow {
    pub at: DateTime<Utc>,
    pub name: Option<String>,
    pub amount: Option<f64>,
}

impl ActivityRow {
    /// The row of a stored event, reading the amount from its body.
    pub fn of_event(e: &StoredEvent) -> Self {
        let amount = e
            .body
            .get("properties")
            .and_then(Value::as_object)
            .and_then(|p| {
                ["revenue", "total", "value"]
                    .iter()
                    .find_map(|k| p.get(*k).and_then(Value::as_f64))
            })
            .filter(|x| x.is_finite());
        Self {
            at: e.timestamp,
            name: e.name.clone(),
            amount,
        }
    }
}

/// Everything one next-best-action decision reads about its customer, read together.
#[derive(Debug, Clone, PartialEq)]
pub struct NbaSnapshot {
    /// The live profile (an id that was merged resolves to the survivor): its own fields and
    /// traits. A backend may leave its identities, merged ids and data-quality notes empty,
    /// since a decision reads none of them (SQLite does, to save three queries a decision).
    pub profile: rapport_core::Profile,
    /// Consent history, oldest decision first.
    pub consents: Vec<rapport_core::ConsentRecord>,
    /// Offers made after the snapshot's `since`, newest first.
    pub contacts: Vec<NbaContact>,
    /// The latest events, newest first, at most the number asked for.
    pub activity: Vec<ActivityRow>,
    /// Conversations, most recently updated first.
    pub conversations: Vec<Conversation>,
    /// The sentiment score of the customer's latest analysed message in their most recently
    /// updated conversation.
    pub last_sentiment: Option<f64>,
    /// The churn probability stored by the feature pass, when there is one.
    pub churn_probability: Option<f64>,
}

/// One next-best-action offer to a customer: what the contact policy counts, and where the
/// offer's outcome is kept. It holds personal data and goes with an erasure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NbaContact {
    /// The decision the offer was recorded as.
    pub decision_id: String,
    pub profile_id: ProfileId,
    pub action_id: String,
    pub channel: String,
    pub at: DateTime<Utc>,
    /// `accepted`, `rejected`, `ignored` or `converted`, once known.
    pub outcome: Option<String>,
    pub outcome_at: Option<DateTime<Utc>>,
}

/// The outcome of an offer, to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NbaOutcome {
    /// The offer's decision with the outcome added, replacing the stored one if that is still
    /// at `expected_version`.
    pub decision: rapport_core::DecisionRecord,
    pub expected_version: i64,
    pub outcome: String,
    /// Whether it counts as a success of the action (accepted, converted).
    pub success: bool,
    pub at: DateTime<Utc>,
}

impl ProfileFeatures {
    /// The stored form: features and scores as one JSON object.
    pub(crate) fn encode_body(&self) -> String {
        serde_json::json!({ "features": self.features, "scores": self.scores }).to_string()
    }

    /// Reads a stored row back.
    pub(crate) fn decode(
        id: String,
        computed_at: i64,
        body: &str,
    ) -> Result<ProfileFeatures, crate::StoreError> {
        let v: Value = serde_json::from_str(body).map_err(|_| {
            crate::StoreError::Internal("unreadable feature row in the database".into())
        })?;
        let part = |k: &str| {
            v.get(k)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        Ok(ProfileFeatures {
            profile_id: ProfileId::from_trusted(id),
            computed_at: rapport_core::time::from_millis(computed_at),
            features: part("features"),
            scores: part("scores"),
        })
    }
}
/// A merge of two whole profiles that no event asked for: a probabilistic dedupe run found
/// them, or a person judged them the same in the review queue.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileMerge {
    /// Either profile (resolved through redirects); the older one survives, as in live
    /// stitching, so canonical ids stay stable.
    pub a: ProfileId,
    pub b: ProfileId,
    pub rule: ProfileMergeRule,
    /// Why, kept in the merge log and the audit record: probability and per-field
    /// contributions. It must hold no personal values.
    pub detail: Value,
}

/// Why two profiles are merged without an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileMergeRule {
    /// A dedupe run scored the pair at or above its auto-merge threshold.
    ProbabilisticDedupe,
    /// A person decided a pair of the review queue is one customer.
    DedupeReview,
}

impl ProfileMergeRule {
    /// The merge log's `rule`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProbabilisticDedupe => "probabilistic_dedupe",
            Self::DedupeReview => "dedupe_review",
        }
    }
}

/// What a [`ProfileMerge`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ProfileMergeOutcome {
    /// Merged; the record is in the merge log and an unmerge undoes it.
    Merged { merge: MergeRecord },
    /// A guard refused; the refusal is in the merge log (status `refused`).
    Refused { merge: MergeRecord },
    /// The two ids already name one profile.
    AlreadyOne { profile: ProfileId },
}

/// A pair of profiles waiting for a person to say whether they are one customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewPair {
    pub id: String,
    /// The two profiles as found (ordered by id); they may have been merged into others
    /// since, so read them through redirects.
    pub profile_a: ProfileId,
    pub profile_b: ProfileId,
    pub match_probability: f64,
    pub match_weight: f64,
    /// Each field's agreement level and log2 Bayes factor (no values).
    pub fields: Value,
    /// A guard that refused to merge the pair automatically (`unauthenticated_merge`, ...),
    /// which is why a person sees it although it scored above the auto-merge threshold.
    pub refusal: Option<String>,
    /// `pending`, `merged` or `rejected`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    /// Who decided (an encoded actor).
    pub decided_by: Option<String>,
}

/// A pair to put in the review queue (see [`crate::Store::queue_review_pairs`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewPairDraft {
    pub profile_a: ProfileId,
    pub profile_b: ProfileId,
    pub match_probability: f64,
    pub match_weight: f64,
    pub fields: Value,
    pub refusal: Option<String>,
}

/// A person's decision on a pair in the review queue.
#[derive(Debug, Clone, PartialEq)]
pub enum ReviewDecision {
    /// They are one customer: merge them (through the guards), with this merge log detail.
    Merge { detail: Value },
    /// They are not: later dedupe runs leave the pair alone.
    Reject,
}

/// What deciding a pair did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewOutcome {
    /// The pair as it now is (still `pending` when the merge was refused).
    pub pair: ReviewPair,
    /// For a merge decision, what the merge did.
    pub merge: Option<ProfileMergeOutcome>,
}

/// An agent's correction of the intent read in a customer's message: what the model said then
/// and what the agent says it is. The text is the message with personal data replaced by
/// placeholders (never the raw text), so corrections can train models. One correction per
/// message is kept (the latest); it holds personal data and goes with an erasure of the
/// customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentCorrection {
    pub message_id: String,
    pub conversation_id: String,
    pub profile_id: ProfileId,
    /// The redacted text of the message.
    pub text: String,
    /// The intent the model read; `None` when it answered out of scope.
    pub predicted: Option<String>,
    /// The model's confidence in its best intent, in `[0, 1]` (kept to six decimals).
    pub confidence: f32,
    /// The version of the workspace's intent model that read it (0: the built-in default).
    pub model_version: i64,
    /// The intent the agent chose; `None` for out of scope.
    pub corrected: Option<String>,
    /// Who corrected it (an encoded actor).
    pub corrected_by: String,
    pub corrected_at: DateTime<Utc>,
}

/// Which corrections to read: newest first, of one conversation or of the whole workspace.
#[derive(Debug, Clone)]
pub struct CorrectionQuery {
    pub workspace: WorkspaceId,
    pub conversation: Option<String>,
    pub limit: usize,
}

/// A version of a workspace's intent model, without its bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentModelRecord {
    /// 1, 2, 3, ... per workspace (0 stands for the built-in default and is never stored).
    pub version: i64,
    pub created_at: DateTime<Utc>,
    /// Who trained it (an encoded actor).
    pub created_by: String,
    /// Training counts and evaluation figures, as the trainer wrote them.
    pub summary: Value,
    /// Whether the engine reads messages with it now.
    pub active: bool,
}

/// The intent model a workspace reads messages with, and since when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveIntentModel {
    /// 0 for the built-in default.
    pub version: i64,
    pub activated_at: Option<DateTime<Utc>>,
    pub activated_by: Option<String>,
}

/// A new version of a workspace's intent model, to store.
#[derive(Debug, Clone)]
pub struct IntentModelDraft {
    /// Who trained it (an encoded actor).
    pub created_by: String,
    /// Training counts and evaluation figures.
    pub summary: Value,
    /// The saved classifier.
    pub model: Vec<u8>,
    /// Whether the engine switches to it now.
    pub activate: bool,
}
