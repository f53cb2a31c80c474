//! Persistence for Rapport: the [`Store`] trait every backend implements, the embedded SQLite
//! backend, the PostgreSQL backend, and the conformance suite any backend must pass.
//!
//! The store owns durability, tenancy isolation (every query is scoped to a workspace) and the
//! atomic application of events to profiles: deduplication by `messageId`, identity stitching,
//! last-writer-wins traits by event time. It does not parse wire formats (that is ingest) or
//! decide anything (those are the stage crates).
//!
//! Threading model of the SQLite backend: one writer thread owns the only write connection and
//! commits queued jobs together (group commit), answering each caller only after the commit is
//! durable; readers use a small pool of read-only connections on tokio's blocking pool.
//!
//! The PostgreSQL backend (feature `postgres`, on by default) is for several nodes sharing one
//! database: each call is a transaction on a pooled connection, made safe against other nodes
//! by row locks and unique keys (see [`postgres`]). [`open_sqlite`] and [`open_postgres`] open
//! either as an `Arc<dyn Store>`.

pub mod conformance;
pub mod conformance_dedupe;
pub mod conformance_gov;
pub mod conformance_identity;
pub mod conformance_intents;
pub mod conformance_models;
pub mod conformance_nba;
pub mod conformance_routing;
mod error;
mod intent_rows;
#[cfg(feature = "postgres")]
pub mod postgres;
mod review;
pub mod sqlite;
pub mod transfer;
mod types;

/// The stitching rules a store applies, shared with its writer and swappable while running.
#[derive(Debug, Default, Clone)]
pub(crate) struct PolicyCell(Arc<std::sync::RwLock<Option<Arc<dyn StitchPolicy>>>>);

impl PolicyCell {
    pub(crate) fn set(&self, policy: Option<Arc<dyn StitchPolicy>>) {
        if let Ok(mut p) = self.0.write() {
            *p = policy;
        }
    }

    pub(crate) fn get(&self) -> Option<Arc<dyn StitchPolicy>> {
        self.0.read().ok().and_then(|p| p.clone())
    }
}

pub use error::StoreError;
pub use types::*;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rapport_core::routing::{RouteAgent, RouteEntry, RouteQueue};
use rapport_core::stitch::StitchPolicy;
use rapport_core::{
    AuditEntry, AuditRecord, ConsentChange, ConsentRecord, Conversation, ConversationId,
    CustomerRef, DecisionRecord, Event, Handoff, Identifier, KeyRole, NewConversation, NewMessage,
    Profile, ProfileId, WorkspaceId, WorkspaceName,
};

/// Opens the embedded SQLite store in `data_dir` as a shared [`Store`].
pub fn open_sqlite(data_dir: &std::path::Path) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(sqlite::SqliteStore::open(data_dir)?))
}

/// Opens the PostgreSQL store at `url` in `schema` (created and migrated if needed) as a shared
/// [`Store`]. An unreachable server is retried until `options.connect_timeout`, then reported
/// as [`StoreError::Unavailable`].
#[cfg(feature = "postgres")]
pub async fn open_postgres(
    url: &str,
    schema: &str,
    options: postgres::PostgresOptions,
) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(
        postgres::PostgresStore::open(url, schema, options).await?,
    ))
}

/// Everything Rapport persists. Implementations must pass [`conformance`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a workspace; [`StoreError::Conflict`] if the name is taken.
    async fn create_workspace(&self, name: &WorkspaceName) -> Result<Workspace, StoreError>;
    async fn workspace_by_name(
        &self,
        name: &WorkspaceName,
    ) -> Result<Option<Workspace>, StoreError>;
    async fn list_workspaces(&self) -> Result<Vec<Workspace>, StoreError>;

    /// Stores a new key's hash; the key itself is never stored.
    async fn create_api_key(
        &self,
        workspace: &WorkspaceId,
        role: KeyRole,
        key_hash: &str,
        prefix: &str,
    ) -> Result<ApiKeyRecord, StoreError>;
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// Stores a person's account; [`StoreError::Conflict`] if the login is taken (logins are
    /// unique across workspaces, so signing in needs no workspace name).
    async fn create_user(
        &self,
        workspace: &WorkspaceId,
        login: &rapport_core::Login,
        role: KeyRole,
        password_hash: &str,
    ) -> Result<UserRecord, StoreError>;
    async fn find_user(
        &self,
        login: &rapport_core::Login,
    ) -> Result<Option<UserRecord>, StoreError>;
    /// A workspace's accounts, by login.
    async fn users(&self, workspace: &WorkspaceId) -> Result<Vec<UserRecord>, StoreError>;
    /// Changes an account of `workspace` ([`StoreError::NotFound`] for another workspace's or
    /// an unknown id) with the audit records about it, in one transaction. A new password, a
    /// new role or disabling ends every session of the account.
    async fn update_user(
        &self,
        workspace: &WorkspaceId,
        user_id: &str,
        change: UserChange,
        audit: Vec<AuditEntry>,
    ) -> Result<UserRecord, StoreError>;

    /// Keeps a dashboard sign-in (and forgets expired ones), so sessions outlive a restart
    /// and every API node behind a load balancer knows them.
    async fn start_session(&self, session: SessionDraft) -> Result<(), StoreError>;
    /// The account a live session belongs to: `None` for an unknown, ended or expired session,
    /// or one whose account is disabled.
    async fn session_user(&self, token_hash: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Ends a session; ending an unknown one is harmless.
    async fn end_session(&self, token_hash: &str) -> Result<(), StoreError>;

    /// Stores a new alert with the audit records about it, in one transaction.
    async fn add_alert(
        &self,
        workspace: &WorkspaceId,
        alert: rapport_core::Alert,
        audit: Vec<AuditEntry>,
    ) -> Result<(), StoreError>;
    /// Alerts, newest first; only unacknowledged ones with `open_only`.
    async fn alerts(
        &self,
        workspace: &WorkspaceId,
        open_only: bool,
        limit: usize,
    ) -> Result<Vec<rapport_core::Alert>, StoreError>;
    /// Marks an alert seen to by `by` (an encoded actor); repeating it changes nothing and
    /// writes no audit record. [`StoreError::NotFound`] for an unknown id.
    async fn acknowledge_alert(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        by: &str,
        audit: Vec<AuditEntry>,
    ) -> Result<rapport_core::Alert, StoreError>;

    // --- Routing ----------------------------------------------------------------------------

    /// Creates or replaces a queue (by id).
    async fn save_route_queue(
        &self,
        workspace: &WorkspaceId,
        queue: RouteQueue,
    ) -> Result<RouteQueue, StoreError>;
    /// The workspace's queues, by id.
    async fn route_queues(&self, workspace: &WorkspaceId) -> Result<Vec<RouteQueue>, StoreError>;
    /// Creates or replaces an agent (by id).
    async fn save_route_agent(
        &self,
        workspace: &WorkspaceId,
        agent: RouteAgent,
    ) -> Result<RouteAgent, StoreError>;
    /// The workspace's agents, by id.
    async fn route_agents(&self, workspace: &WorkspaceId) -> Result<Vec<RouteAgent>, StoreError>;
    /// Stores a queue entry with its audit entries, atomically. With `expected_version` `None`
    /// the entry is new ([`StoreError::Conflict`] if its conversation already has an open
    /// entry); with `Some(v)` it replaces the stored entry only if that is still at version
    /// `v` ([`StoreError::Conflict`] otherwise). An entry that newly holds an agent (offered or
    /// accepted to an agent it did not hold before) is refused with [`StoreError::Conflict`]
    /// when that agent already holds as many open entries as its capacity, and with
    /// [`StoreError::NotFound`] for an unknown agent: so no agent is ever above capacity, even
    /// with several nodes routing at once. The stored record (its version one more) is
    /// returned.
    async fn save_route_entry(
        &self,
        workspace: &WorkspaceId,
        entry: RouteEntry,
        expected_version: Option<i64>,
        audit: Vec<AuditEntry>,
    ) -> Result<RouteEntry, StoreError>;
    async fn route_entry(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<Option<RouteEntry>, StoreError>;
    /// The open (not finished) entry of a conversation, if any.
    async fn open_route_entry(
        &self,
        workspace: &WorkspaceId,
        conversation: &str,
    ) -> Result<Option<RouteEntry>, StoreError>;
    /// With `open_only`, open entries, oldest queued first; otherwise entries of any status,
    /// newest queued first. At most `limit`.
    async fn route_entries(
        &self,
        workspace: &WorkspaceId,
        open_only: bool,
        limit: usize,
    ) -> Result<Vec<RouteEntry>, StoreError>;

    /// Applies events atomically: either all are durable when this returns `Ok`, or none is.
    /// Events whose `messageId` the workspace has seen are acknowledged and skipped.
    async fn ingest(
        &self,
        workspace: &WorkspaceId,
        events: Vec<Event>,
    ) -> Result<IngestSummary, StoreError>;

    /// A profile by id; an id merged into another profile resolves to the survivor.
    async fn profile(
        &self,
        workspace: &WorkspaceId,
        id: &ProfileId,
    ) -> Result<Option<Profile>, StoreError>;
    async fn profile_by_identifier(
        &self,
        workspace: &WorkspaceId,
        identifier: &Identifier,
    ) -> Result<Option<Profile>, StoreError>;
    /// A profile's events, newest first by event time, a page at a time.
    async fn profile_events(
        &self,
        workspace: &WorkspaceId,
        id: &ProfileId,
        cursor: Option<&EventCursor>,
        limit: usize,
    ) -> Result<EventPage, StoreError>;
    /// Profiles whose name (or any word of it) or email starts with `query`, case-insensitively.
    async fn search_profiles(
        &self,
        workspace: &WorkspaceId,
        query: &str,
        limit: usize,
    ) -> Result<Vec<ProfileSummary>, StoreError>;
    /// The most recently active profiles.
    async fn recent_profiles(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
    ) -> Result<Vec<ProfileSummary>, StoreError>;

    /// Opens a conversation for a customer, creating their profile when an identifier is new.
    async fn open_conversation(
        &self,
        workspace: &WorkspaceId,
        customer: CustomerRef,
        conversation: NewConversation,
    ) -> Result<Conversation, StoreError>;
    /// Appends a message; a repeated `external_id` returns the stored message with `false`.
    async fn add_message(
        &self,
        workspace: &WorkspaceId,
        conversation: &ConversationId,
        message: NewMessage,
    ) -> Result<(rapport_core::Message, bool), StoreError>;
    async fn conversation(
        &self,
        workspace: &WorkspaceId,
        id: &ConversationId,
    ) -> Result<Option<ConversationDetail>, StoreError>;
    async fn profile_conversations(
        &self,
        workspace: &WorkspaceId,
        id: &ProfileId,
    ) -> Result<Vec<Conversation>, StoreError>;
    async fn recent_conversations(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
    ) -> Result<Vec<Conversation>, StoreError>;

    /// Events per channel with an event time at or after `since`.
    async fn channel_counts(
        &self,
        workspace: &WorkspaceId,
        since: DateTime<Utc>,
    ) -> Result<Vec<ChannelCount>, StoreError>;
    async fn stats(&self, workspace: &WorkspaceId) -> Result<WorkspaceStats, StoreError>;

    /// The merges that formed a profile (the profile is resolved through redirects first),
    /// oldest first.
    async fn merges(
        &self,
        workspace: &WorkspaceId,
        id: &ProfileId,
    ) -> Result<Vec<MergeRecord>, StoreError>;

    /// Sets the rules of live stitching (the identity stage's guards: blocked values, limits,
    /// the profile-theft guard). Without one (`None`, the default) only the built-in rule
    /// applies: two profiles that each have a user id never merge. Takes effect from the next
    /// write.
    fn set_stitch_policy(&self, policy: Option<Arc<dyn StitchPolicy>>);

    /// Undoes one merge of a profile (resolved through redirects): the merged profile gets back
    /// the events, identifiers and conversations that first landed on its side, and the
    /// consents, decisions and next-best-action contacts recorded for its side (those moved by
    /// merges made before they remembered where they came from stay with the survivor); both
    /// profiles' traits, data-quality flags and counters are rebuilt by replaying their events,
    /// and the merged id resolves to itself again. The survivor keeps its id, its own consents,
    /// decisions and contacts, and the request for a person if one moved to it. With
    /// `add_guard` the two are kept from merging again. `audit` is recorded in the same
    /// transaction, with what was done added to its details. [`StoreError::NotMerged`] when the
    /// profile was never merged or the merge is not one of its own or was undone already;
    /// [`StoreError::NotFound`] for an unknown profile.
    async fn unmerge(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        request: UnmergeRequest,
        audit: AuditEntry,
    ) -> Result<UnmergeOutcome, StoreError>;

    /// Merges, refused merges and unmerges per day since `since`, the latest refusals and
    /// unmerges, and data-quality flags by code.
    async fn identity_health(
        &self,
        workspace: &WorkspaceId,
        since: DateTime<Utc>,
    ) -> Result<IdentityHealth, StoreError>;

    /// Finishes queued writes and lets go of the backend's threads or connections; writes
    /// after it fail with [`StoreError::Unavailable`]. Dropping a store closes it too; this is
    /// for callers that hold it behind an `Arc` and must know it is done.
    fn close(&self) {}

    // --- Dedupe and its review queue ------------------------------------------------------

    /// Merges two whole profiles no event joined (see [`ProfileMerge`]) through the same path
    /// as live stitching, so the merge log, the audit trail and [`Store::unmerge`] treat it
    /// like any merge; the older profile survives. Refused, and recorded as refused in the
    /// merge log and the audit trail, when an operator kept the two apart (`merge_blocked`)
    /// or the stitch policy refuses ([`StitchPolicy::refuse_profile_merge`]; without a policy
    /// the built-in rule: two profiles that each have a user id). `audit` is recorded in the
    /// same transaction. [`StoreError::NotFound`] for an unknown profile.
    async fn merge_profiles(
        &self,
        workspace: &WorkspaceId,
        merge: ProfileMerge,
        audit: Vec<AuditEntry>,
    ) -> Result<ProfileMergeOutcome, StoreError>;

    /// Adds pairs to the review queue as `pending`. A pair the queue holds already, in either
    /// order and whatever its status, is left as it is, so a decided pair is never asked
    /// about again. Returns how many were added; `audit` is recorded in the same transaction.
    async fn queue_review_pairs(
        &self,
        workspace: &WorkspaceId,
        pairs: Vec<ReviewPairDraft>,
        audit: Vec<AuditEntry>,
    ) -> Result<usize, StoreError>;

    /// Pairs of the review queue with `status` (any with `None`), most probable first, then
    /// oldest; `offset` pairs skipped, at most `limit`.
    async fn review_pairs(
        &self,
        workspace: &WorkspaceId,
        status: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ReviewPair>, StoreError>;

    async fn review_pair(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<Option<ReviewPair>, StoreError>;

    /// Every pair the review queue holds, whatever its status, as it was found.
    async fn review_pair_keys(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<(ProfileId, ProfileId)>, StoreError>;

    /// Decides a pending pair, atomically with `audit`. `Merge` merges the two as
    /// [`Store::merge_profiles`] does: when a guard refuses, the refusal is logged and the
    /// pair stays pending; when they are one profile already the pair counts as merged.
    /// `Reject` marks it `rejected`. `by` is the encoded actor. [`StoreError::NotFound`] for
    /// an unknown pair, [`StoreError::Conflict`] for one decided already.
    async fn decide_review_pair(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        decision: ReviewDecision,
        by: &str,
        audit: Vec<AuditEntry>,
    ) -> Result<ReviewOutcome, StoreError>;

    // --- Governance -----------------------------------------------------------------------

    /// Records consent decisions for a profile (resolved through redirects) together with
    /// their audit entries, atomically. A decision older than the one in force for its purpose
    /// is kept in the history but does not change the state. [`StoreError::NotFound`] for an
    /// unknown profile.
    async fn record_consents(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        changes: Vec<ConsentChange>,
        audit: Vec<AuditEntry>,
    ) -> Result<Vec<ConsentRecord>, StoreError>;
    /// A profile's consent history (resolved through redirects), oldest decision first.
    async fn consents(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
    ) -> Result<Vec<ConsentRecord>, StoreError>;

    /// Appends records to the audit chain, in order, each chained to the hash of the one
    /// before. The chain is shared by every workspace so one verification covers all.
    async fn append_audit(&self, entries: Vec<AuditEntry>) -> Result<Vec<AuditRecord>, StoreError>;
    async fn audit_records(&self, query: AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;

    /// Erases a customer: their profile and every id merged into it, identities, traits,
    /// data-quality flags, events, conversations, messages (and their analyses) and consents,
    /// leaving, if asked, salted hashes of the identifiers so later events naming them are
    /// dropped. Records `audit` in the same transaction. Erased bytes must not survive in the
    /// store's files (freed pages, write-ahead log). Erasing an erased profile again returns
    /// `already_erased`; an unknown id is [`StoreError::NotFound`].
    async fn erase_profile(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        options: ErasureOptions,
        audit: AuditEntry,
    ) -> Result<ErasureOutcome, StoreError>;

    // --- Decisions and oversight ----------------------------------------------------------

    /// Stores a decision with its audit entries, atomically. With `expected_version` `None`
    /// the decision is new (its profile is resolved through redirects; [`StoreError::NotFound`]
    /// for an unknown one, [`StoreError::Conflict`] for a taken id). With `Some(v)` it replaces
    /// the stored decision only if that is still at version `v`, so of two approvers acting at
    /// once exactly one wins and the other gets [`StoreError::Conflict`]. The stored version is
    /// one more than `v` (1 for a new decision); the stored record is returned.
    async fn save_decision(
        &self,
        workspace: &WorkspaceId,
        decision: DecisionRecord,
        expected_version: Option<i64>,
        audit: Vec<AuditEntry>,
    ) -> Result<DecisionRecord, StoreError>;
    async fn decision(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<Option<DecisionRecord>, StoreError>;
    /// Decisions, newest first; a profile filter follows redirects.
    async fn decisions(&self, query: DecisionQuery) -> Result<Vec<DecisionRecord>, StoreError>;

    /// Opens (or, with `resolved_at` set, closes) a customer's request for a person, with its
    /// audit entries. One request per profile is kept: the latest.
    async fn save_handoff(
        &self,
        workspace: &WorkspaceId,
        handoff: Handoff,
        audit: Vec<AuditEntry>,
    ) -> Result<Handoff, StoreError>;
    async fn handoff(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
    ) -> Result<Option<Handoff>, StoreError>;
    /// Requests for a person not yet resolved, oldest first.
    async fn open_handoffs(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
    ) -> Result<Vec<Handoff>, StoreError>;

    // --- Next-best-action -----------------------------------------------------------------

    /// Stores the decisions of one next-best-action answer and the contacts they count as,
    /// with their audit entries, atomically. Decisions are new, as in [`Store::save_decision`]
    /// (`None` version); each contact names one of them and takes its profile.
    async fn record_nba_offers(
        &self,
        workspace: &WorkspaceId,
        decisions: Vec<DecisionRecord>,
        contacts: Vec<NbaContact>,
        audit: Vec<AuditEntry>,
    ) -> Result<Vec<DecisionRecord>, StoreError>;
    /// A customer's next-best-action contacts made after `since`, newest first (the profile
    /// is resolved through redirects; [`StoreError::NotFound`] for an unknown one).
    async fn nba_contacts(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        since: DateTime<Utc>,
    ) -> Result<Vec<NbaContact>, StoreError>;
    /// Everything a next-best-action decision reads about a customer (see [`NbaSnapshot`]):
    /// contacts after `since` and the latest `events` events. `None` for an unknown profile.
    /// This default makes the single reads one after another; a backend may read it all on
    /// one connection.
    async fn nba_snapshot(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        since: DateTime<Utc>,
        events: usize,
    ) -> Result<Option<NbaSnapshot>, StoreError> {
        let Some(profile) = self.profile(workspace, profile).await? else {
            return Ok(None);
        };
        let id = &profile.id;
        let consents = self.consents(workspace, id).await?;
        let contacts = self.nba_contacts(workspace, id, since).await?;
        let activity = self
            .profile_events(workspace, id, None, events)
            .await?
            .events
            .iter()
            .map(ActivityRow::of_event)
            .collect();
        let conversations = self.profile_conversations(workspace, id).await?;
        let last_sentiment = match conversations.iter().max_by_key(|c| c.updated_at) {
            Some(c) => self.conversation(workspace, &c.id).await?.and_then(|d| {
                d.messages
                    .iter()
                    .rev()
                    .filter(|m| m.direction == rapport_core::Direction::Inbound)
                    .find_map(|m| m.analysis.as_ref()?.pointer("/sentiment/score")?.as_f64())
            }),
            None => None,
        };
        let churn_probability = self
            .profile_features(workspace, id)
            .await?
            .and_then(|f| f.scores.get("churn")?.get("probability")?.as_f64());
        Ok(Some(NbaSnapshot {
            profile,
            consents,
            contacts,
            activity,
            conversations,
            last_sentiment,
            churn_probability,
        }))
    }
    /// The outcome counts of every action of the workspace that has any.
    async fn nba_counts(&self, workspace: &WorkspaceId) -> Result<Vec<ActionCounts>, StoreError>;
    /// Records an offer's outcome, atomically: sets it on the offer's contact
    /// ([`StoreError::NotFound`] when the decision is no offer, [`StoreError::Conflict`] when
    /// its outcome is known already), adds it to the action's counts, and replaces the
    /// decision (compare-and-set on its version, as [`Store::save_decision`]). Returns the
    /// contact and the action's counts as they now are.
    async fn record_nba_outcome(
        &self,
        workspace: &WorkspaceId,
        outcome: NbaOutcome,
        audit: Vec<AuditEntry>,
    ) -> Result<(NbaContact, ActionCounts), StoreError>;

    // --- Trained models and materialised features ------------------------------------------

    /// Stores a new version of a model kind, numbered after the kind's latest, making it the
    /// active one when the draft asks, with its audit records, in one transaction.
    async fn save_model_version(
        &self,
        workspace: &WorkspaceId,
        draft: ModelDraft,
        audit: Vec<AuditEntry>,
    ) -> Result<ModelVersion, StoreError>;
    /// Makes `version` the active one of its kind (the others stop being active).
    /// Activating the active version changes nothing and writes no audit record;
    /// [`StoreError::NotFound`] for an unknown version.
    async fn activate_model_version(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        version: i64,
        audit: Vec<AuditEntry>,
    ) -> Result<ModelVersion, StoreError>;
    /// A kind's versions, newest first.
    async fn model_versions(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
    ) -> Result<Vec<ModelVersion>, StoreError>;
    /// The active version of a kind with the model's text.
    async fn active_model(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
    ) -> Result<Option<(ModelVersion, String)>, StoreError>;
    /// Only the number of the active version: the cheap check nodes poll to swap models.
    async fn active_model_version(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
    ) -> Result<Option<i64>, StoreError>;
    /// Stores customers' features (one row each, replacing an older computation, never a
    /// newer one).
    async fn save_profile_features(
        &self,
        workspace: &WorkspaceId,
        rows: Vec<ProfileFeatures>,
    ) -> Result<(), StoreError>;
    /// A customer's latest stored features.
    async fn profile_features(
        &self,
        workspace: &WorkspaceId,
        id: &ProfileId,
    ) -> Result<Option<ProfileFeatures>, StoreError>;

    // --- Intent models --------------------------------------------------------------------

    /// Stores an agent's correction of the intent read in a message, replacing an earlier
    /// correction of the same message, with its audit entries, atomically. The correction's
    /// profile is the conversation's. [`StoreError::NotFound`] when the message is not in that
    /// conversation of the workspace.
    async fn save_intent_correction(
        &self,
        workspace: &WorkspaceId,
        correction: IntentCorrection,
        audit: Vec<AuditEntry>,
    ) -> Result<IntentCorrection, StoreError>;
    /// Corrections, newest first.
    async fn intent_corrections(
        &self,
        query: CorrectionQuery,
    ) -> Result<Vec<IntentCorrection>, StoreError>;
    /// Stores a new version of the workspace's intent model, numbered one more than its
    /// highest (1 for the first), with its audit entries; when `draft.activate` the engine
    /// switches to it. Versions are never reused, even when two nodes store one at once.
    async fn save_intent_model(
        &self,
        workspace: &WorkspaceId,
        draft: IntentModelDraft,
        audit: Vec<AuditEntry>,
    ) -> Result<IntentModelRecord, StoreError>;
    /// The workspace's intent model versions (without their bytes), newest first.
    async fn intent_models(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<IntentModelRecord>, StoreError>;
    /// The saved classifier of one version, if stored.
    async fn intent_model_bytes(
        &self,
        workspace: &WorkspaceId,
        version: i64,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Makes `version` the one the engine reads messages with (0: the built-in default), with
    /// its audit entries; [`StoreError::NotFound`] for a version never stored.
    async fn activate_intent_model(
        &self,
        workspace: &WorkspaceId,
        version: i64,
        by: &str,
        audit: Vec<AuditEntry>,
    ) -> Result<ActiveIntentModel, StoreError>;
    /// The version the engine reads the workspace's messages with: one small row, cheap
    /// enough for every node to ask every few seconds.
    async fn active_intent_model(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<ActiveIntentModel, StoreError>;
}
