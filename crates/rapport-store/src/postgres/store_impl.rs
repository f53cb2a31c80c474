//! [`Store`] for [`PostgresStore`]: each method is a retried write transaction or a read-only
//! snapshot.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rapport_core::routing::{RouteAgent, RouteEntry, RouteQueue};
use rapport_core::stitch::StitchPolicy;
use rapport_core::time::{from_millis, to_millis};
use rapport_core::{
    AuditEntry, AuditRecord, Channel, ConsentChange, ConsentRecord, Conversation, ConversationId,
    CustomerRef, DecisionRecord, Event, Handoff, Identifier, KeyRole, Message, NewConversation,
    NewMessage, Profile, ProfileId, WorkspaceId, WorkspaceName,
};

use super::apply::{now_ms, Applier};
use super::{
    decide, dedupe, exec, govern, models, pg_error, query, query_opt, read, routing, users,
    PostgresStore,
};
use crate::sqlite::apply::PreparedEvent;
use crate::{
    ApiKeyRecord, AuditQuery, ChannelCount, ConversationDetail, DecisionQuery, ErasureOptions,
    ErasureOutcome, EventCursor, EventPage, IdentityHealth, IngestSummary, MergeRecord, ModelDraft,
    ModelVersion, ProfileFeatures, ProfileMerge, ProfileMergeOutcome, ProfileSummary,
    ReviewDecision, ReviewOutcome, ReviewPair, ReviewPairDraft, SessionDraft, Store, StoreError,
    UnmergeOutcome, UnmergeRequest, UserChange, UserRecord, Workspace, WorkspaceStats,
};

impl PostgresStore {
    /// The schema version this store's schema is at.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        super::schema::version(&client, &self.schema).await
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn close(&self) {
        PostgresStore::close(self);
    }

    async fn create_workspace(&self, name: &WorkspaceName) -> Result<Workspace, StoreError> {
        let ws = Workspace {
            id: WorkspaceId::generate(),
            name: name.clone(),
            created_at: from_millis(now_ms()),
        };
        let inserted = self
            .write(|tx| {
                let ws = ws.clone();
                Box::pin(async move {
                    Ok(exec(
                        tx,
                        "INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)
                         ON CONFLICT (name) DO NOTHING",
                        &[
                            &ws.id.as_str(),
                            &ws.name.as_str(),
                            &to_millis(ws.created_at),
                        ],
                    )
                    .await?)
                })
            })
            .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "workspace {name} already exists"
            )));
        }
        Ok(ws)
    }

    async fn workspace_by_name(
        &self,
        name: &WorkspaceName,
    ) -> Result<Option<Workspace>, StoreError> {
        let name = name.as_str().to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                Ok(query_opt(
                    tx,
                    "SELECT id, name, created_at FROM workspaces WHERE name = $1",
                    &[&name],
                )
                .await
                .map_err(pg_error)?
                .map(|r| read::workspace_from(&r)))
            })
        })
        .await
    }

    async fn list_workspaces(&self) -> Result<Vec<Workspace>, StoreError> {
        self.read(|tx| {
            Box::pin(async move {
                Ok(query(
                    tx,
                    "SELECT id, name, created_at FROM workspaces ORDER BY name COLLATE \"C\"",
                    &[],
                )
                .await
                .map_err(pg_error)?
                .iter()
                .map(read::workspace_from)
                .collect())
            })
        })
        .await
    }

    async fn create_api_key(
        &self,
        workspace: &WorkspaceId,
        role: KeyRole,
        key_hash: &str,
        prefix: &str,
    ) -> Result<ApiKeyRecord, StoreError> {
        let (ws, hash, prefix) = (workspace.clone(), key_hash.to_owned(), prefix.to_owned());
        let id = format!("key_{}", uuid::Uuid::now_v7().simple());
        let created = now_ms();
        self.write(|tx| {
            let (ws, hash, prefix, id) = (ws.clone(), hash.clone(), prefix.clone(), id.clone());
            Box::pin(async move {
                let name: String = query_opt(
                    tx,
                    "SELECT name FROM workspaces WHERE id = $1",
                    &[&ws.as_str()],
                )
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("workspace {ws}")))?
                .get(0);
                exec(
                    tx,
                    "INSERT INTO api_keys (id, workspace_id, role, key_hash, prefix, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&id, &ws.as_str(), &role.as_str(), &hash, &prefix, &created],
                )
                .await?;
                Ok(ApiKeyRecord {
                    id,
                    workspace_id: ws,
                    workspace_name: WorkspaceName::from_trusted(name),
                    role,
                    prefix,
                    created_at: from_millis(created),
                })
            })
        })
        .await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let hash = key_hash.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                let Some(r) = query_opt(
                    tx,
                    "SELECT k.id, k.workspace_id, w.name, k.role, k.prefix, k.created_at
                     FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id WHERE k.key_hash = $1",
                    &[&hash],
                )
                .await
                .map_err(pg_error)?
                else {
                    return Ok(None);
                };
                let role: String = r.get(3);
                Ok(Some(ApiKeyRecord {
                    id: r.get(0),
                    workspace_id: WorkspaceId::from_trusted(r.get(1)),
                    workspace_name: WorkspaceName::from_trusted(r.get(2)),
                    role: KeyRole::parse(&role)
                        .ok_or_else(|| StoreError::Internal("unreadable key role".into()))?,
                    prefix: r.get(4),
                    created_at: from_millis(r.get(5)),
                }))
            })
        })
        .await
    }

    async fn create_user(
        &self,
        workspace: &WorkspaceId,
        login: &rapport_core::Login,
        role: KeyRole,
        password_hash: &str,
    ) -> Result<UserRecord, StoreError> {
        self.write(|tx| {
            let (ws, login, hash) = (workspace.clone(), login.clone(), password_hash.to_owned());
            Box::pin(async move { users::create(tx, &ws, &login, role, &hash).await })
        })
        .await
    }

    async fn find_user(
        &self,
        login: &rapport_core::Login,
    ) -> Result<Option<UserRecord>, StoreError> {
        let login = login.clone();
        self.read(move |tx| Box::pin(async move { users::find(tx, &login).await }))
            .await
    }

    async fn users(&self, workspace: &WorkspaceId) -> Result<Vec<UserRecord>, StoreError> {
        let ws = workspace.clone();
        self.read(move |tx| Box::pin(async move { users::list(tx, &ws).await }))
            .await
    }

    async fn update_user(
        &self,
        workspace: &WorkspaceId,
        user_id: &str,
        change: UserChange,
        audit: Vec<AuditEntry>,
    ) -> Result<UserRecord, StoreError> {
        self.write(|tx| {
            let (ws, id) = (workspace.clone(), user_id.to_owned());
            let (change, audit) = (change.clone(), audit.clone());
            Box::pin(async move { users::update(tx, &ws, &id, &change, &audit).await })
        })
        .await
    }

    async fn start_session(&self, session: SessionDraft) -> Result<(), StoreError> {
        self.write(|tx| {
            let session = session.clone();
            Box::pin(async move { users::start_session(tx, &session).await })
        })
        .await
    }

    async fn session_user(&self, token_hash: &str) -> Result<Option<UserRecord>, StoreError> {
        let token = token_hash.to_owned();
        self.read(move |tx| Box::pin(async move { users::session_user(tx, &token).await }))
            .await
    }

    async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let token = token_hash.to_owned();
            Box::pin(async move { users::end_session(tx, &token).await })
        })
        .await
    }

    async fn add_alert(
        &self,
        workspace: &WorkspaceId,
        alert: rapport_core::Alert,
        audit: Vec<AuditEntry>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let (ws, alert, audit) = (workspace.clone(), alert.clone(), audit.clone());
            Box::pin(async move { users::add_alert(tx, &ws, &alert, &audit).await })
        })
        .await
    }

    async fn alerts(
        &self,
        workspace: &WorkspaceId,
        open_only: bool,
        limit: usize,
    ) -> Result<Vec<rapport_core::Alert>, StoreError> {
        let ws = workspace.clone();
        self.read(move |tx| Box::pin(async move { users::alerts(tx, &ws, open_only, limit).await }))
            .await
    }

    async fn acknowledge_alert(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        by: &str,
        audit: Vec<AuditEntry>,
    ) -> Result<rapport_core::Alert, StoreError> {
        self.write(|tx| {
            let (ws, id, by, audit) = (
                workspace.clone(),
                id.to_owned(),
                by.to_owned(),
                audit.clone(),
            );
            Box::pin(async move { users::acknowledge_alert(tx, &ws, &id, &by, &audit).await })
        })
        .await
    }

    async fn save_route_queue(
        &self,
        workspace: &WorkspaceId,
        queue: RouteQueue,
    ) -> Result<RouteQueue, StoreError> {
        self.write(|tx| {
            let (ws, q) = (workspace.clone(), queue.clone());
            Box::pin(async move { routing::save_queue(tx, ws.as_str(), &q).await })
        })
        .await
    }

    async fn route_queues(&self, workspace: &WorkspaceId) -> Result<Vec<RouteQueue>, StoreError> {
        let ws = workspace.clone();
        self.read(move |tx| Box::pin(async move { routing::queues(tx, ws.as_str()).await }))
            .await
    }

    async fn save_route_agent(
        &self,
        workspace: &WorkspaceId,
        agent: RouteAgent,
    ) -> Result<RouteAgent, StoreError> {
        self.write(|tx| {
            let (ws, a) = (workspace.clone(), agent.clone());
            Box::pin(async move { routing::save_agent(tx, ws.as_str(), &a).await })
        })
        .await
    }

    async fn route_agents(&self, workspace: &WorkspaceId) -> Result<Vec<RouteAgent>, StoreError> {
        let ws = workspace.clone();
        self.read(move |tx| Box::pin(async move { routing::agents(tx, ws.as_str()).await }))
            .await
    }

    async fn save_route_entry(
        &self,
        workspace: &WorkspaceId,
        entry: RouteEntry,
        expected_version: Option<i64>,
        audit: Vec<AuditEntry>,
    ) -> Result<RouteEntry, StoreError> {
        self.write(|tx| {
            let (ws, e, audit) = (workspace.clone(), entry.clone(), audit.clone());
            Box::pin(async move {
                routing::save_entry(tx, ws.as_str(), e, expected_version, &audit).await
            })
        })
        .await
    }

    async fn route_entry(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<Option<RouteEntry>, StoreError> {
        let (ws, id) = (workspace.clone(), id.to_owned());
        self.read(move |tx| Box::pin(async move { routing::entry(tx, ws.as_str(), &id).await }))
            .await
    }

    async fn open_route_entry(
        &self,
        workspace: &WorkspaceId,
        conversation: &str,
    ) -> Result<Option<RouteEntry>, StoreError> {
        let (ws, conv) = (workspace.clone(), conversation.to_owned());
        self.read(move |tx| {
            Box::pin(async move { routing::open_entry(tx, ws.as_str(), &conv).await })
        })
        .await
    }

    async fn route_entries(
        &self,
        workspace: &WorkspaceId,
        open_only: bool,
        limit: usize,
    ) -> Result<Vec<RouteEntry>, StoreError> {
        let ws = workspace.clone();
        self.read(move |tx| {
            Box::pin(async move { routing::entries(tx, ws.as_str(), open_only, limit).await })
        })
        .await
    }

    async fn ingest(
        &self,
        workspace: &WorkspaceId,
        events: Vec<Event>,
    ) -> Result<IngestSummary, StoreError> {
        if events.is_empty() {
            return Ok(IngestSummary::default());
        }
        let prepared: Arc<Vec<PreparedEvent>> =
            Arc::new(events.iter().map(PreparedEvent::new).collect());
        drop(events);
        let policy = self.policy.get();
        self.write(|tx| {
            let (ws, prepared, policy) = (workspace.clone(), prepared.clone(), policy.clone());
            Box::pin(async move {
                let mut applier = Applier::new(tx, &ws).with_policy(policy);
                applier.prefetch(&prepared).await?;
                for e in prepared.iter() {
                    applier.apply(e).await?;
                }
                applier.finish().await
            })
        })
        .await
    }

    async fn profile(
        &self,
        workspace: &WorkspaceId,
        id: &ProfileId,
    ) -> Result<Option<Profile>, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        self.read(move |tx| {
            Box::pin(async move { read::profile(tx, ws.as_str(), id.as_str()).await })
        })
        .await
    }

    async fn profile_by_identifier(
        &self,
        workspace: &WorkspaceId,
        identifier: &Identifier,
    ) -> Result<Option<Profile>, StoreError> {
        let (ws, id) = (workspace.clone(), identifier.clone());
        self.read(move |tx| {
            Box::pin(async move { read::profile_by_identifier(tx, ws.as_str(), &id).await })
        })
        .await
    }

    async fn profile_events(
        &self,
        workspace: &WorkspaceId,
        id: &ProfileId,
        cursor: Option<&EventCursor>,
        limit: usize,
    ) -> Result<EventPage, StoreError> {
        let (ws, id, cursor) = (workspace.clone(), id.clone(), cursor.copied());
        self.read(move |tx| {
            Box::pin(async move {
                read::profile_events(tx, ws.as_str(), id.as_str(), cursor.as_ref(), limit)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("profile {id}")))
            })
        })
        .await
    }

    async fn search_profiles(
        &self,
        workspace: &WorkspaceId,
        query: &str,
        limit: usize,
    ) -> Result<Vec<ProfileSummary>, StoreError> {
        let (ws, q) = (workspace.clone(), query.to_owned());
        self.read(move |tx| {
            Box::pin(async move { read::search_profiles(tx, ws.as_str(), &q, limit).await })
        })
        .await
    }

    async fn recent_profiles(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
    ) -> Result<Vec<ProfileSummary>, StoreError> {
        let ws = workspace.clone();
        self.read(move |tx| {
            Box::pin(async move { read::recent_profiles(tx, ws.as_str(), limit).await })
        })
        .await
    }

    async fn open_conversation(
        &self,
        workspace: &WorkspaceId,
        customer: CustomerRef,
        conversation: NewConversation,
    ) -> Result<Conversation, StoreError> {
        let policy = self.policy.get();
        self.write(|tx| {
            let (ws, customer, conversation) =
                (workspace.clone(), customer.clone(), conversation.clone());
            let policy = policy.clone();
            Box::pin(async move {
                let mut applier = Applier::new(tx, &ws).with_policy(policy);
                let conv = applier.open_conversation(&customer, &conversation).await?;
                applier.finish().await?;
                Ok(conv)
            })
        })
        .await
    }

    async fn add_message(
        &self,
        workspace: &WorkspaceId,
        conversation: &ConversationId,
        message: NewMessage,
    ) -> Result<(Message, bool), StoreError> {
        self.write(|tx| {
            let (ws, conv, message) = (workspace.clone(), conversation.clone(), message.clone());
            Box::pin(async move {
                let mut applier = Applier::new(tx, &ws);
                let out = applier.add_message(&conv, &message).await?;
                applier.finish().await?;
                Ok(out)
            })
        })
        .await
    }

    async fn conversation(
        &self,
        workspace: &WorkspaceId,
        id: &ConversationId,
    ) -> Result<Option<ConversationDetail>, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        self.read(move |tx| {
            Box::pin(async move {
                let Some(conversation) =
                    read::conversation_row(tx, ws.as_str(), id.as_str()).await?
                else {
                    return Ok(None);
                };
                let messages = read::messages(tx, id.as_str()).await?;
                Ok(Some(ConversationDetail {
                    conversation,
                    messages,
                }))
            })
        })
        .await
    }

    async fn profile_conversations(
        &self,
        workspace: &WorkspaceId,
        id: &ProfileId,
    ) -> Result<Vec<Conversation>, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        self.read(move |tx| {
            Box::pin(async move {
                read::profile_conversations(tx, ws.as_str(), id.as_str())
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("profile {id}")))
            })
        })
        .await
    }

    async fn recent_conversations(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
    ) -> Result<Vec<Conversation>, StoreError> {
        let ws = workspace.clone();
        self.read(move |tx| {
            Box::pin(async move { read::recent_conversations(tx, ws.as_str(), limit).await })
        })
        .await
    }

    async fn channel_counts(
        &self,
        workspace: &WorkspaceId,
        since: DateTime<Utc>,
    ) -> Result<Vec<ChannelCount>, StoreError> {
        let ws = workspace.clone();
        let day = to_millis(since).div_euclid(86_400_000);
        self.read(move |tx| {
            Box::pin(async move {
                let rows = query(
                    tx,
                    "SELECT channel, sum(events)::int8 AS n FROM channel_daily
                     WHERE workspace_id = $1 AND day >= $2
                     GROUP BY channel ORDER BY n DESC, channel COLLATE \"C\"",
                    &[&ws.as_str(), &day],
                )
                .await
                .map_err(pg_error)?;
                rows.iter()
                    .map(|r| {
                        let ch: String = r.get(0);
                        let channel = Channel::parse(&ch)
                            .ok_or_else(|| StoreError::Internal("unreadable channel".into()))?;
                        Ok(ChannelCount {
                            channel,
                            events: r.get(1),
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    async fn stats(&self, workspace: &WorkspaceId) -> Result<WorkspaceStats, StoreError> {
        let ws = workspace.clone();
        self.read(move |tx| {
            Box::pin(async move {
                let r = query_opt(
                    tx,
                    "SELECT
                        (SELECT count(*) FROM profiles WHERE workspace_id = $1 AND merged_into IS NULL),
                        (SELECT coalesce(sum(events), 0)::int8 FROM channel_daily WHERE workspace_id = $1),
                        (SELECT count(*) FROM conversations WHERE workspace_id = $1),
                        (SELECT coalesce(sum(message_count), 0)::int8 FROM conversations WHERE workspace_id = $1)",
                    &[&ws.as_str()],
                )
                .await
                .map_err(pg_error)?
                .ok_or_else(|| StoreError::Internal("stats returned nothing".into()))?;
                Ok(WorkspaceStats {
                    profiles: r.get(0),
                    events: r.get(1),
                    conversations: r.get(2),
                    messages: r.get(3),
                })
            })
        })
        .await
    }

    async fn merges(
        &self,
        workspace: &WorkspaceId,
        id: &ProfileId,
    ) -> Result<Vec<MergeRecord>, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        self.read(move |tx| {
            Box::pin(async move {
                let canonical = read::canonical_profile(tx, ws.as_str(), id.as_str())
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("profile {id}")))?;
                read::merges(tx, ws.as_str(), &canonical).await
            })
        })
        .await
    }

    fn set_stitch_policy(&self, policy: Option<Arc<dyn StitchPolicy>>) {
        self.policy.set(policy);
    }

    async fn unmerge(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        request: UnmergeRequest,
        audit: AuditEntry,
    ) -> Result<UnmergeOutcome, StoreError> {
        self.write(|tx| {
            let (ws, id) = (workspace.clone(), profile.clone());
            let (request, audit) = (request.clone(), audit.clone());
            Box::pin(async move {
                super::unmerge::unmerge(tx, ws.as_str(), id.as_str(), &request, &audit).await
            })
        })
        .await
    }

    async fn merge_profiles(
        &self,
        workspace: &WorkspaceId,
        merge: ProfileMerge,
        audit: Vec<AuditEntry>,
    ) -> Result<ProfileMergeOutcome, StoreError> {
        let policy = self.policy.get();
        self.write(|tx| {
            let (ws, merge, audit, policy) = (
                workspace.clone(),
                merge.clone(),
                audit.clone(),
                policy.clone(),
            );
            Box::pin(async move {
                let mut applier = Applier::new(tx, &ws).with_policy(policy);
                let outcome = applier.merge_profiles(&merge).await?;
                applier.finish().await?;
                govern::append_audit(tx, &audit).await?;
                Ok(outcome)
            })
        })
        .await
    }

    async fn queue_review_pairs(
        &self,
        workspace: &WorkspaceId,
        pairs: Vec<ReviewPairDraft>,
        audit: Vec<AuditEntry>,
    ) -> Result<usize, StoreError> {
        self.write(|tx| {
            let (ws, pairs, audit) = (workspace.clone(), pairs.clone(), audit.clone());
            Box::pin(async move { dedupe::queue(tx, ws.as_str(), &pairs, &audit).await })
        })
        .await
    }

    async fn review_pairs(
        &self,
        workspace: &WorkspaceId,
        status: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ReviewPair>, StoreError> {
        let (ws, status) = (workspace.clone(), status.map(str::to_owned));
        self.read(move |tx| {
            Box::pin(async move {
                dedupe::list(tx, ws.as_str(), status.as_deref(), offset, limit).await
            })
        })
        .await
    }

    async fn review_pair(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<Option<ReviewPair>, StoreError> {
        let (ws, id) = (workspace.clone(), id.to_owned());
        self.read(move |tx| Box::pin(async move { dedupe::get(tx, ws.as_str(), &id, false).await }))
            .await
    }

    async fn review_pair_keys(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<(ProfileId, ProfileId)>, StoreError> {
        let ws = workspace.clone();
        self.read(move |tx| Box::pin(async move { dedupe::keys(tx, ws.as_str()).await }))
            .await
    }

    async fn decide_review_pair(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        decision: ReviewDecision,
        by: &str,
        audit: Vec<AuditEntry>,
    ) -> Result<ReviewOutcome, StoreError> {
        let policy = self.policy.get();
        self.write(|tx| {
            let (ws, id, by) = (workspace.clone(), id.to_owned(), by.to_owned());
            let (decision, audit, policy) = (decision.clone(), audit.clone(), policy.clone());
            Box::pin(async move {
                dedupe::decide(tx, ws.as_str(), &id, &decision, &by, &audit, policy).await
            })
        })
        .await
    }

    async fn identity_health(
        &self,
        workspace: &WorkspaceId,
        since: DateTime<Utc>,
    ) -> Result<IdentityHealth, StoreError> {
        let ws = workspace.clone();
        self.read(move |tx| {
            Box::pin(async move { super::unmerge::identity_health(tx, ws.as_str(), since).await })
        })
        .await
    }

    async fn record_consents(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        changes: Vec<ConsentChange>,
        audit: Vec<AuditEntry>,
    ) -> Result<Vec<ConsentRecord>, StoreError> {
        let (ws, id) = (workspace.clone(), profile.clone());
        // Shared with each attempt of the write, which may run more than once.
        let (changes, audit) = (Arc::new(changes), Arc::new(audit));
        self.write(|tx| {
            let (ws, id) = (ws.clone(), id.clone());
            let (changes, audit) = (changes.clone(), audit.clone());
            Box::pin(async move {
                govern::record_consents(tx, ws.as_str(), id.as_str(), &changes, &audit).await
            })
        })
        .await
    }

    async fn consents(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
    ) -> Result<Vec<ConsentRecord>, StoreError> {
        let (ws, id) = (workspace.clone(), profile.clone());
        self.read(move |tx| {
            Box::pin(async move { govern::consents(tx, ws.as_str(), id.as_str()).await })
        })
        .await
    }

    async fn append_audit(&self, entries: Vec<AuditEntry>) -> Result<Vec<AuditRecord>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let entries = Arc::new(entries);
        self.write(|tx| {
            let entries = entries.clone();
            Box::pin(async move { govern::append_audit(tx, &entries).await })
        })
        .await
    }

    async fn audit_records(&self, query: AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        self.read(move |tx| Box::pin(async move { govern::audit_records(tx, &query).await }))
            .await
    }

    async fn erase_profile(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        options: ErasureOptions,
        audit: AuditEntry,
    ) -> Result<ErasureOutcome, StoreError> {
        let (ws, id, audit) = (workspace.clone(), profile.clone(), Arc::new(audit));
        let outcome = self
            .write(|tx| {
                let (ws, id, audit) = (ws.clone(), id.clone(), audit.clone());
                Box::pin(async move {
                    govern::erase(tx, ws.as_str(), id.as_str(), options, &audit).await
                })
            })
            .await?;
        if !outcome.already_erased {
            // Committed: reclaim the deleted rows. PostgreSQL's write-ahead log still holds
            // them and is out of the store's reach, so `log_purged` stays false (see
            // `govern::vacuum_after_erasure` for what VACUUM does and does not remove).
            let client = self.client().await?;
            govern::vacuum_after_erasure(&client).await;
        }
        Ok(outcome)
    }

    async fn save_decision(
        &self,
        workspace: &WorkspaceId,
        decision: DecisionRecord,
        expected_version: Option<i64>,
        audit: Vec<AuditEntry>,
    ) -> Result<DecisionRecord, StoreError> {
        let ws = workspace.clone();
        let (decision, audit) = (Arc::new(decision), Arc::new(audit));
        self.write(|tx| {
            let (ws, decision, audit) = (ws.clone(), decision.clone(), audit.clone());
            Box::pin(async move {
                decide::save_decision(
                    tx,
                    ws.as_str(),
                    (*decision).clone(),
                    expected_version,
                    &audit,
                )
                .await
            })
        })
        .await
    }

    async fn decision(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<Option<DecisionRecord>, StoreError> {
        let (ws, id) = (workspace.clone(), id.to_owned());
        self.read(move |tx| Box::pin(async move { decide::decision(tx, ws.as_str(), &id).await }))
            .await
    }

    async fn decisions(&self, query: DecisionQuery) -> Result<Vec<DecisionRecord>, StoreError> {
        self.read(move |tx| Box::pin(async move { decide::decisions(tx, &query).await }))
            .await
    }

    async fn save_handoff(
        &self,
        workspace: &WorkspaceId,
        handoff: Handoff,
        audit: Vec<AuditEntry>,
    ) -> Result<Handoff, StoreError> {
        let ws = workspace.clone();
        let (handoff, audit) = (Arc::new(handoff), Arc::new(audit));
        self.write(|tx| {
            let (ws, handoff, audit) = (ws.clone(), handoff.clone(), audit.clone());
            Box::pin(async move {
                decide::save_handoff(tx, ws.as_str(), (*handoff).clone(), &audit).await
            })
        })
        .await
    }

    async fn handoff(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
    ) -> Result<Option<Handoff>, StoreError> {
        let (ws, id) = (workspace.clone(), profile.clone());
        self.read(move |tx| {
            Box::pin(async move { decide::handoff(tx, ws.as_str(), id.as_str()).await })
        })
        .await
    }

    async fn open_handoffs(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
    ) -> Result<Vec<Handoff>, StoreError> {
        let ws = workspace.clone();
        self.read(move |tx| {
            Box::pin(async move { decide::open_handoffs(tx, ws.as_str(), limit).await })
        })
        .await
    }

    async fn record_nba_offers(
        &self,
        workspace: &WorkspaceId,
        decisions: Vec<DecisionRecord>,
        contacts: Vec<crate::NbaContact>,
        audit: Vec<AuditEntry>,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let ws = workspace.clone();
        let (decisions, contacts, audit) =
            (Arc::new(decisions), Arc::new(contacts), Arc::new(audit));
        self.write(|tx| {
            let (ws, decisions, contacts, audit) = (
                ws.clone(),
                decisions.clone(),
                contacts.clone(),
                audit.clone(),
            );
            Box::pin(async move {
                super::nba::record_offers(
                    tx,
                    ws.as_str(),
                    (*decisions).clone(),
                    (*contacts).clone(),
                    &audit,
                )
                .await
            })
        })
        .await
    }

    async fn nba_contacts(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        since: DateTime<Utc>,
    ) -> Result<Vec<crate::NbaContact>, StoreError> {
        let (ws, profile) = (workspace.clone(), profile.clone());
        let since = to_millis(since);
        self.read(move |tx| {
            Box::pin(
                async move { super::nba::contacts(tx, ws.as_str(), profile.as_str(), since).await },
            )
        })
        .await
    }

    async fn nba_counts(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<crate::ActionCounts>, StoreError> {
        let ws = workspace.clone();
        self.read(move |tx| Box::pin(async move { super::nba::counts(tx, ws.as_str()).await }))
            .await
    }

    async fn record_nba_outcome(
        &self,
        workspace: &WorkspaceId,
        outcome: crate::NbaOutcome,
        audit: Vec<AuditEntry>,
    ) -> Result<(crate::NbaContact, crate::ActionCounts), StoreError> {
        let ws = workspace.clone();
        let (outcome, audit) = (Arc::new(outcome), Arc::new(audit));
        self.write(|tx| {
            let (ws, outcome, audit) = (ws.clone(), outcome.clone(), audit.clone());
            Box::pin(async move {
                super::nba::record_outcome(tx, ws.as_str(), (*outcome).clone(), &audit).await
            })
        })
        .await
    }

    async fn save_model_version(
        &self,
        workspace: &WorkspaceId,
        draft: ModelDraft,
        audit: Vec<AuditEntry>,
    ) -> Result<ModelVersion, StoreError> {
        self.write(|tx| {
            let (ws, draft, audit) = (workspace.clone(), draft.clone(), audit.clone());
            Box::pin(async move { models::save_version(tx, &ws, &draft, &audit).await })
        })
        .await
    }

    async fn activate_model_version(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        version: i64,
        audit: Vec<AuditEntry>,
    ) -> Result<ModelVersion, StoreError> {
        self.write(|tx| {
            let (ws, kind, audit) = (workspace.clone(), kind.to_owned(), audit.clone());
            Box::pin(async move { models::activate(tx, &ws, &kind, version, &audit).await })
        })
        .await
    }

    async fn model_versions(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
    ) -> Result<Vec<ModelVersion>, StoreError> {
        let (ws, kind) = (workspace.clone(), kind.to_owned());
        self.read(move |tx| Box::pin(async move { models::versions(tx, &ws, &kind).await }))
            .await
    }

    async fn active_model(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
    ) -> Result<Option<(ModelVersion, String)>, StoreError> {
        let (ws, kind) = (workspace.clone(), kind.to_owned());
        self.read(move |tx| Box::pin(async move { models::active(tx, &ws, &kind).await }))
            .await
    }

    async fn active_model_version(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
    ) -> Result<Option<i64>, StoreError> {
        let (ws, kind) = (workspace.clone(), kind.to_owned());
        self.read(move |tx| Box::pin(async move { models::active_version(tx, &ws, &kind).await }))
            .await
    }

    async fn save_profile_features(
        &self,
        workspace: &WorkspaceId,
        rows: Vec<ProfileFeatures>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let (ws, rows) = (workspace.clone(), rows.clone());
            Box::pin(async move { models::save_features(tx, &ws, &rows).await })
        })
        .await
    }

    async fn profile_features(
        &self,
        workspace: &WorkspaceId,
        id: &ProfileId,
    ) -> Result<Option<ProfileFeatures>, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        self.read(move |tx| Box::pin(async move { models::features(tx, &ws, &id).await }))
            .await
    }

    async fn save_intent_correction(
        &self,
        workspace: &WorkspaceId,
        correction: crate::IntentCorrection,
        audit: Vec<AuditEntry>,
    ) -> Result<crate::IntentCorrection, StoreError> {
        let ws = workspace.clone();
        let (correction, audit) = (Arc::new(correction), Arc::new(audit));
        self.write(|tx| {
            let (ws, correction, audit) = (ws.clone(), correction.clone(), audit.clone());
            Box::pin(async move {
                super::intents::save_correction(tx, ws.as_str(), (*correction).clone(), &audit)
                    .await
            })
        })
        .await
    }

    async fn intent_corrections(
        &self,
        query: crate::CorrectionQuery,
    ) -> Result<Vec<crate::IntentCorrection>, StoreError> {
        self.read(move |tx| Box::pin(async move { super::intents::corrections(tx, &query).await }))
            .await
    }

    async fn save_intent_model(
        &self,
        workspace: &WorkspaceId,
        draft: crate::IntentModelDraft,
        audit: Vec<AuditEntry>,
    ) -> Result<crate::IntentModelRecord, StoreError> {
        let ws = workspace.clone();
        let (draft, audit) = (Arc::new(draft), Arc::new(audit));
        self.write(|tx| {
            let (ws, draft, audit) = (ws.clone(), draft.clone(), audit.clone());
            Box::pin(async move {
                super::intents::save_model(tx, ws.as_str(), (*draft).clone(), &audit).await
            })
        })
        .await
    }

    async fn intent_models(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<crate::IntentModelRecord>, StoreError> {
        let ws = workspace.clone();
        self.read(move |tx| Box::pin(async move { super::intents::models(tx, ws.as_str()).await }))
            .await
    }

    async fn intent_model_bytes(
        &self,
        workspace: &WorkspaceId,
        version: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let ws = workspace.clone();
        self.read(move |tx| {
            Box::pin(async move { super::intents::model_bytes(tx, ws.as_str(), version).await })
        })
        .await
    }

    async fn activate_intent_model(
        &self,
        workspace: &WorkspaceId,
        version: i64,
        by: &str,
        audit: Vec<AuditEntry>,
    ) -> Result<crate::ActiveIntentModel, StoreError> {
        let (ws, by) = (workspace.clone(), by.to_owned());
        let audit = Arc::new(audit);
        self.write(|tx| {
            let (ws, by, audit) = (ws.clone(), by.clone(), audit.clone());
            Box::pin(async move {
                super::intents::activate(tx, ws.as_str(), version, &by, &audit).await
            })
        })
        .await
    }

    async fn active_intent_model(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<crate::ActiveIntentModel, StoreError> {
        let ws = workspace.clone();
        self.read(move |tx| {
            Box::pin(async move {
                super::intents::active(tx, ws.as_str())
                    .await
                    .map_err(pg_error)
            })
        })
        .await
    }
}
