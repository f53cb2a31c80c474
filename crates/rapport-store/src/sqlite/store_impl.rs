//! [`Store`] for [`SqliteStore`]: each method is a write job or a read on the pool.

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
use rusqlite::{params, OptionalExtension};

use super::apply::{now_ms, Applier, PreparedEvent};
use super::{decide, dedupe, govern, models, read, routing, users, SqliteStore};
use crate::{
    ApiKeyRecord, AuditQuery, ChannelCount, ConversationDetail, DecisionQuery, ErasureOptions,
    ErasureOutcome, EventCursor, EventPage, IdentityHealth, IngestSummary, MergeRecord, ModelDraft,
    ModelVersion, ProfileFeatures, ProfileMerge, ProfileMergeOutcome, ProfileSummary,
    ReviewDecision, ReviewOutcome, ReviewPair, ReviewPairDraft, SessionDraft, Store, StoreError,
    UnmergeOutcome, UnmergeRequest, UserChange, UserRecord, Workspace, WorkspaceStats,
};

fn workspace_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Workspace> {
    Ok(Workspace {
        id: WorkspaceId::from_trusted(r.get(0)?),
        name: WorkspaceName::from_trusted(r.get(1)?),
        created_at: from_millis(r.get(2)?),
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn close(&self) {
        SqliteStore::close(self);
    }

    async fn create_workspace(&self, name: &WorkspaceName) -> Result<Workspace, StoreError> {
        let name = name.clone();
        self.write(move |c| {
            let taken: Option<String> = c
                .query_row(
                    "SELECT id FROM workspaces WHERE name = ?1",
                    [name.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_some() {
                return Err(StoreError::Conflict(format!(
                    "workspace {name} already exists"
                )));
            }
            let ws = Workspace {
                id: WorkspaceId::generate(),
                name,
                created_at: from_millis(now_ms()),
            };
            c.execute(
                "INSERT INTO workspaces (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![ws.id.as_str(), ws.name.as_str(), to_millis(ws.created_at)],
            )?;
            Ok(ws)
        })
        .await
    }

    async fn workspace_by_name(
        &self,
        name: &WorkspaceName,
    ) -> Result<Option<Workspace>, StoreError> {
        let name = name.as_str().to_owned();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT id, name, created_at FROM workspaces WHERE name = ?1",
                [name],
                workspace_row,
            )
            .optional()?)
        })
        .await
    }

    async fn list_workspaces(&self) -> Result<Vec<Workspace>, StoreError> {
        self.read(|c| {
            let mut stmt =
                c.prepare("SELECT id, name, created_at FROM workspaces ORDER BY name")?;
            let rows = stmt.query_map([], workspace_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
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
        self.write(move |c| {
            let name: Option<String> = c
                .query_row(
                    "SELECT name FROM workspaces WHERE id = ?1",
                    [ws.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            let name = name.ok_or_else(|| StoreError::NotFound(format!("workspace {ws}")))?;
            let id = format!("key_{}", uuid::Uuid::now_v7().simple());
            let created = now_ms();
            c.execute(
                "INSERT INTO api_keys (id, workspace_id, role, key_hash, prefix, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, ws.as_str(), role.as_str(), hash, prefix, created],
            )?;
            Ok(ApiKeyRecord {
                id,
                workspace_id: ws,
                workspace_name: WorkspaceName::from_trusted(name),
                role,
                prefix,
                created_at: from_millis(created),
            })
        })
        .await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let hash = key_hash.to_owned();
        self.read(move |c| {
            let row = c
                .query_row(
                    "SELECT k.id, k.workspace_id, w.name, k.role, k.prefix, k.created_at
                     FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id WHERE k.key_hash = ?1",
                    [hash],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, i64>(5)?,
                        ))
                    },
                )
                .optional()?;
            row.map(|(id, ws, name, role, prefix, created)| {
                Ok(ApiKeyRecord {
                    id,
                    workspace_id: WorkspaceId::from_trusted(ws),
                    workspace_name: WorkspaceName::from_trusted(name),
                    role: KeyRole::parse(&role)
                        .ok_or_else(|| StoreError::Internal("unreadable key role".into()))?,
                    prefix,
                    created_at: from_millis(created),
                })
            })
            .transpose()
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
        let (ws, login, hash) = (workspace.clone(), login.clone(), password_hash.to_owned());
        self.write(move |c| users::create(c, &ws, &login, role, &hash))
            .await
    }

    async fn find_user(
        &self,
        login: &rapport_core::Login,
    ) -> Result<Option<UserRecord>, StoreError> {
        let login = login.clone();
        self.read(move |c| users::find(c, &login)).await
    }

    async fn users(&self, workspace: &WorkspaceId) -> Result<Vec<UserRecord>, StoreError> {
        let ws = workspace.clone();
        self.read(move |c| users::list(c, &ws)).await
    }

    async fn update_user(
        &self,
        workspace: &WorkspaceId,
        user_id: &str,
        change: UserChange,
        audit: Vec<AuditEntry>,
    ) -> Result<UserRecord, StoreError> {
        let (ws, id) = (workspace.clone(), user_id.to_owned());
        self.write(move |c| users::update(c, &ws, &id, &change, &audit))
            .await
    }

    async fn start_session(&self, session: SessionDraft) -> Result<(), StoreError> {
        self.write(move |c| users::start_session(c, &session)).await
    }

    async fn session_user(&self, token_hash: &str) -> Result<Option<UserRecord>, StoreError> {
        let token = token_hash.to_owned();
        self.read(move |c| users::session_user(c, &token)).await
    }

    async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let token = token_hash.to_owned();
        self.write(move |c| users::end_session(c, &token)).await
    }

    async fn add_alert(
        &self,
        workspace: &WorkspaceId,
        alert: rapport_core::Alert,
        audit: Vec<AuditEntry>,
    ) -> Result<(), StoreError> {
        let ws = workspace.clone();
        self.write(move |c| users::add_alert(c, &ws, &alert, &audit))
            .await
    }

    async fn alerts(
        &self,
        workspace: &WorkspaceId,
        open_only: bool,
        limit: usize,
    ) -> Result<Vec<rapport_core::Alert>, StoreError> {
        let ws = workspace.clone();
        self.read(move |c| users::alerts(c, &ws, open_only, limit))
            .await
    }

    async fn acknowledge_alert(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        by: &str,
        audit: Vec<AuditEntry>,
    ) -> Result<rapport_core::Alert, StoreError> {
        let (ws, id, by) = (workspace.clone(), id.to_owned(), by.to_owned());
        self.write(move |c| users::acknowledge_alert(c, &ws, &id, &by, &audit))
            .await
    }

    async fn save_route_queue(
        &self,
        workspace: &WorkspaceId,
        queue: RouteQueue,
    ) -> Result<RouteQueue, StoreError> {
        let ws = workspace.clone();
        self.write(move |c| routing::save_queue(c, ws.as_str(), queue))
            .await
    }

    async fn route_queues(&self, workspace: &WorkspaceId) -> Result<Vec<RouteQueue>, StoreError> {
        let ws = workspace.clone();
        self.read(move |c| routing::queues(c, ws.as_str())).await
    }

    async fn save_route_agent(
        &self,
        workspace: &WorkspaceId,
        agent: RouteAgent,
    ) -> Result<RouteAgent, StoreError> {
        let ws = workspace.clone();
        self.write(move |c| routing::save_agent(c, ws.as_str(), agent))
            .await
    }

    async fn route_agents(&self, workspace: &WorkspaceId) -> Result<Vec<RouteAgent>, StoreError> {
        let ws = workspace.clone();
        self.read(move |c| routing::agents(c, ws.as_str())).await
    }

    async fn save_route_entry(
        &self,
        workspace: &WorkspaceId,
        entry: RouteEntry,
        expected_version: Option<i64>,
        audit: Vec<AuditEntry>,
    ) -> Result<RouteEntry, StoreError> {
        let ws = workspace.clone();
        self.write(move |c| routing::save_entry(c, ws.as_str(), entry, expected_version, &audit))
            .await
    }

    async fn route_entry(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<Option<RouteEntry>, StoreError> {
        let (ws, id) = (workspace.clone(), id.to_owned());
        self.read(move |c| routing::entry(c, ws.as_str(), &id))
            .await
    }

    async fn open_route_entry(
        &self,
        workspace: &WorkspaceId,
        conversation: &str,
    ) -> Result<Option<RouteEntry>, StoreError> {
        let (ws, conv) = (workspace.clone(), conversation.to_owned());
        self.read(move |c| routing::open_entry(c, ws.as_str(), &conv))
            .await
    }

    async fn route_entries(
        &self,
        workspace: &WorkspaceId,
        open_only: bool,
        limit: usize,
    ) -> Result<Vec<RouteEntry>, StoreError> {
        let ws = workspace.clone();
        self.read(move |c| routing::entries(c, ws.as_str(), open_only, limit))
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
        let ws = workspace.clone();
        let prepared: Vec<PreparedEvent> = events.iter().map(PreparedEvent::new).collect();
        drop(events);
        let policy = self.policy.get();
        self.write(move |c| {
            let mut applier = Applier::new(c, &ws).with_policy(policy);
            for e in &prepared {
                applier.apply(e)?;
            }
            applier.finish()
        })
        .await
    }

    async fn profile(
        &self,
        workspace: &WorkspaceId,
        id: &ProfileId,
    ) -> Result<Option<Profile>, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        self.read(move |c| read::profile(c, ws.as_str(), id.as_str()))
            .await
    }

    async fn profile_by_identifier(
        &self,
        workspace: &WorkspaceId,
        identifier: &Identifier,
    ) -> Result<Option<Profile>, StoreError> {
        let (ws, id) = (workspace.clone(), identifier.clone());
        self.read(move |c| read::profile_by_identifier(c, ws.as_str(), &id))
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
        self.read(move |c| {
            read::profile_events(c, ws.as_str(), id.as_str(), cursor.as_ref(), limit)?
                .ok_or_else(|| StoreError::NotFound(format!("profile {id}")))
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
        self.read(move |c| read::search_profiles(c, ws.as_str(), &q, limit))
            .await
    }

    async fn recent_profiles(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
    ) -> Result<Vec<ProfileSummary>, StoreError> {
        let ws = workspace.clone();
        self.read(move |c| read::recent_profiles(c, ws.as_str(), limit))
            .await
    }

    async fn open_conversation(
        &self,
        workspace: &WorkspaceId,
        customer: CustomerRef,
        conversation: NewConversation,
    ) -> Result<Conversation, StoreError> {
        let ws = workspace.clone();
        let policy = self.policy.get();
        self.write(move |c| {
            let mut applier = Applier::new(c, &ws).with_policy(policy);
            let conv = applier.open_conversation(&customer, &conversation)?;
            applier.finish()?;
            Ok(conv)
        })
        .await
    }

    async fn add_message(
        &self,
        workspace: &WorkspaceId,
        conversation: &ConversationId,
        message: NewMessage,
    ) -> Result<(Message, bool), StoreError> {
        let (ws, conv) = (workspace.clone(), conversation.clone());
        self.write(move |c| {
            let mut applier = Applier::new(c, &ws);
            let out = applier.add_message(&conv, &message)?;
            applier.finish()?;
            Ok(out)
        })
        .await
    }

    async fn conversation(
        &self,
        workspace: &WorkspaceId,
        id: &ConversationId,
    ) -> Result<Option<ConversationDetail>, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        self.read(move |c| {
            let Some(conversation) = read::conversation_row(c, ws.as_str(), id.as_str())? else {
                return Ok(None);
            };
            let messages = read::messages(c, id.as_str())?;
            Ok(Some(ConversationDetail {
                conversation,
                messages,
            }))
        })
        .await
    }

    async fn profile_conversations(
        &self,
        workspace: &WorkspaceId,
        id: &ProfileId,
    ) -> Result<Vec<Conversation>, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        self.read(move |c| {
            read::profile_conversations(c, ws.as_str(), id.as_str())?
                .ok_or_else(|| StoreError::NotFound(format!("profile {id}")))
        })
        .await
    }

    async fn recent_conversations(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
    ) -> Result<Vec<Conversation>, StoreError> {
        let ws = workspace.clone();
        self.read(move |c| read::recent_conversations(c, ws.as_str(), limit))
            .await
    }

    async fn channel_counts(
        &self,
        workspace: &WorkspaceId,
        since: DateTime<Utc>,
    ) -> Result<Vec<ChannelCount>, StoreError> {
        let ws = workspace.clone();
        let day = to_millis(since).div_euclid(86_400_000);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT channel, sum(events) FROM channel_daily WHERE workspace_id = ?1 AND day >= ?2
                 GROUP BY channel ORDER BY sum(events) DESC, channel",
            )?;
            let rows = stmt.query_map(params![ws.as_str(), day], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (ch, n) = row?;
                let channel = Channel::parse(&ch).ok_or_else(|| StoreError::Internal("unreadable channel".into()))?;
                out.push(ChannelCount { channel, events: n });
            }
            Ok(out)
        })
        .await
    }

    async fn stats(&self, workspace: &WorkspaceId) -> Result<WorkspaceStats, StoreError> {
        let ws = workspace.clone();
        self.read(move |c| {
            let count = |sql: &str| -> Result<i64, StoreError> { Ok(c.query_row(sql, [ws.as_str()], |r| r.get(0))?) };
            Ok(WorkspaceStats {
                profiles: count("SELECT count(*) FROM profiles WHERE workspace_id = ?1 AND merged_into IS NULL")?,
                events: count("SELECT coalesce(sum(events), 0) FROM channel_daily WHERE workspace_id = ?1")?,
                conversations: count("SELECT count(*) FROM conversations WHERE workspace_id = ?1")?,
                messages: count("SELECT coalesce(sum(message_count), 0) FROM conversations WHERE workspace_id = ?1")?,
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
        self.read(move |c| {
            let canonical = read::canonical_profile(c, ws.as_str(), id.as_str())?
                .ok_or_else(|| StoreError::NotFound(format!("profile {id}")))?;
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {} FROM merge_log
                 WHERE workspace_id = ?1 AND (survivor = ?2
                    OR survivor IN (SELECT id FROM profiles WHERE merged_into = ?2))
                 ORDER BY seq",
                super::unmerge::MERGE_COLUMNS
            ))?;
            let rows =
                stmt.query_map(params![ws.as_str(), canonical], super::unmerge::merge_from)?;
            Ok(rows.collect::<Result<_, _>>()?)
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
        let (ws, id) = (workspace.clone(), profile.clone());
        self.write(move |c| super::unmerge::unmerge(c, ws.as_str(), id.as_str(), &request, &audit))
            .await
    }

    async fn identity_health(
        &self,
        workspace: &WorkspaceId,
        since: DateTime<Utc>,
    ) -> Result<IdentityHealth, StoreError> {
        let ws = workspace.clone();
        self.read(move |c| super::unmerge::identity_health(c, ws.as_str(), since))
            .await
    }

    async fn merge_profiles(
        &self,
        workspace: &WorkspaceId,
        merge: ProfileMerge,
        audit: Vec<AuditEntry>,
    ) -> Result<ProfileMergeOutcome, StoreError> {
        let ws = workspace.clone();
        let policy = self.policy.get();
        self.write(move |c| {
            let mut applier = Applier::new(c, &ws).with_policy(policy);
            let outcome = applier.merge_profiles(&merge)?;
            applier.finish()?;
            govern::append_audit(c, &audit)?;
            Ok(outcome)
        })
        .await
    }

    async fn queue_review_pairs(
        &self,
        workspace: &WorkspaceId,
        pairs: Vec<ReviewPairDraft>,
        audit: Vec<AuditEntry>,
    ) -> Result<usize, StoreError> {
        let ws = workspace.clone();
        self.write(move |c| dedupe::queue(c, ws.as_str(), &pairs, &audit))
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
        self.read(move |c| dedupe::list(c, ws.as_str(), status.as_deref(), offset, limit))
            .await
    }

    async fn review_pair(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<Option<ReviewPair>, StoreError> {
        let (ws, id) = (workspace.clone(), id.to_owned());
        self.read(move |c| dedupe::get(c, ws.as_str(), &id)).await
    }

    async fn review_pair_keys(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<(ProfileId, ProfileId)>, StoreError> {
        let ws = workspace.clone();
        self.read(move |c| dedupe::keys(c, ws.as_str())).await
    }

    async fn decide_review_pair(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        decision: ReviewDecision,
        by: &str,
        audit: Vec<AuditEntry>,
    ) -> Result<ReviewOutcome, StoreError> {
        let (ws, id, by) = (workspace.clone(), id.to_owned(), by.to_owned());
        let policy = self.policy.get();
        self.write(move |c| {
            let applier = Applier::new(c, &ws).with_policy(policy);
            dedupe::decide(c, applier, ws.as_str(), &id, &decision, &by, &audit)
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
        self.write(move |c| govern::record_consents(c, ws.as_str(), id.as_str(), &changes, &audit))
            .await
    }

    async fn consents(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
    ) -> Result<Vec<ConsentRecord>, StoreError> {
        let (ws, id) = (workspace.clone(), profile.clone());
        self.read(move |c| govern::consents(c, ws.as_str(), id.as_str()))
            .await
    }

    async fn append_audit(&self, entries: Vec<AuditEntry>) -> Result<Vec<AuditRecord>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |c| govern::append_audit(c, &entries)).await
    }

    async fn audit_records(&self, query: AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        self.flush_deferred_audit().await?;
        self.read(move |c| govern::audit_records(c, &query)).await
    }

    async fn erase_profile(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        options: ErasureOptions,
        audit: AuditEntry,
    ) -> Result<ErasureOutcome, StoreError> {
        let (ws, id) = (workspace.clone(), profile.clone());
        let mut outcome = self
            .write(move |c| govern::erase(c, ws.as_str(), id.as_str(), options, &audit))
            .await?;
        if !outcome.already_erased {
            // Committed: now empty the write-ahead log, whose frames still hold the pages as
            // they were before the erasure.
            let path = self.path.clone();
            outcome.log_purged = tokio::task::spawn_blocking(move || {
                govern::purge_wal(&path, std::time::Duration::from_secs(20))
            })
            .await
            .unwrap_or(false);
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
        self.write(move |c| {
            decide::save_decision(c, ws.as_str(), decision, expected_version, &audit)
        })
        .await
    }

    async fn decision(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<Option<DecisionRecord>, StoreError> {
        let (ws, id) = (workspace.clone(), id.to_owned());
        self.read(move |c| decide::decision(c, ws.as_str(), &id))
            .await
    }

    async fn decisions(&self, query: DecisionQuery) -> Result<Vec<DecisionRecord>, StoreError> {
        self.read(move |c| decide::decisions(c, &query)).await
    }

    async fn save_handoff(
        &self,
        workspace: &WorkspaceId,
        handoff: Handoff,
        audit: Vec<AuditEntry>,
    ) -> Result<Handoff, StoreError> {
        let ws = workspace.clone();
        self.write(move |c| decide::save_handoff(c, ws.as_str(), handoff, &audit))
            .await
    }

    async fn handoff(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
    ) -> Result<Option<Handoff>, StoreError> {
        let (ws, id) = (workspace.clone(), profile.clone());
        self.read(move |c| decide::handoff(c, ws.as_str(), id.as_str()))
            .await
    }

    async fn open_handoffs(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
    ) -> Result<Vec<Handoff>, StoreError> {
        let ws = workspace.clone();
        self.read(move |c| decide::open_handoffs(c, ws.as_str(), limit))
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
        self.write(move |c| super::nba::record_offers(c, ws.as_str(), decisions, contacts, &audit))
            .await
    }

    async fn nba_contacts(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        since: DateTime<Utc>,
    ) -> Result<Vec<crate::NbaContact>, StoreError> {
        let (ws, profile) = (workspace.clone(), profile.clone());
        self.read(move |c| super::nba::contacts(c, ws.as_str(), profile.as_str(), to_millis(since)))
            .await
    }

    async fn nba_snapshot(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        since: DateTime<Utc>,
        events: usize,
    ) -> Result<Option<crate::NbaSnapshot>, StoreError> {
        let (ws, profile) = (workspace.clone(), profile.clone());
        self.read(move |c| {
            super::nba::snapshot(c, ws.as_str(), profile.as_str(), to_millis(since), events)
        })
        .await
    }

    async fn nba_counts(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<crate::ActionCounts>, StoreError> {
        let ws = workspace.clone();
        self.read(move |c| super::nba::counts(c, ws.as_str())).await
    }

    async fn record_nba_outcome(
        &self,
        workspace: &WorkspaceId,
        outcome: crate::NbaOutcome,
        audit: Vec<AuditEntry>,
    ) -> Result<(crate::NbaContact, crate::ActionCounts), StoreError> {
        let ws = workspace.clone();
        self.write(move |c| super::nba::record_outcome(c, ws.as_str(), outcome, &audit))
            .await
    }

    async fn save_model_version(
        &self,
        workspace: &WorkspaceId,
        draft: ModelDraft,
        audit: Vec<AuditEntry>,
    ) -> Result<ModelVersion, StoreError> {
        let ws = workspace.clone();
        self.write(move |c| models::save_version(c, &ws, &draft, &audit))
            .await
    }

    async fn activate_model_version(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        version: i64,
        audit: Vec<AuditEntry>,
    ) -> Result<ModelVersion, StoreError> {
        let (ws, kind) = (workspace.clone(), kind.to_owned());
        self.write(move |c| models::activate(c, &ws, &kind, version, &audit))
            .await
    }

    async fn model_versions(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
    ) -> Result<Vec<ModelVersion>, StoreError> {
        let (ws, kind) = (workspace.clone(), kind.to_owned());
        self.read(move |c| models::versions(c, &ws, &kind)).await
    }

    async fn active_model(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
    ) -> Result<Option<(ModelVersion, String)>, StoreError> {
        let (ws, kind) = (workspace.clone(), kind.to_owned());
        self.read(move |c| models::active(c, &ws, &kind)).await
    }

    async fn active_model_version(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
    ) -> Result<Option<i64>, StoreError> {
        let (ws, kind) = (workspace.clone(), kind.to_owned());
        self.read(move |c| models::active_version(c, &ws, &kind))
            .await
    }

    async fn save_profile_features(
        &self,
        workspace: &WorkspaceId,
        rows: Vec<ProfileFeatures>,
    ) -> Result<(), StoreError> {
        let ws = workspace.clone();
        self.write(move |c| models::save_features(c, &ws, &rows))
            .await
    }

    async fn profile_features(
        &self,
        workspace: &WorkspaceId,
        id: &ProfileId,
    ) -> Result<Option<ProfileFeatures>, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        self.read(move |c| models::features(c, &ws, &id)).await
    }

    async fn save_intent_correction(
        &self,
        workspace: &WorkspaceId,
        correction: crate::IntentCorrection,
        audit: Vec<AuditEntry>,
    ) -> Result<crate::IntentCorrection, StoreError> {
        let ws = workspace.clone();
        self.write(move |c| super::intents::save_correction(c, ws.as_str(), correction, &audit))
            .await
    }

    async fn intent_corrections(
        &self,
        query: crate::CorrectionQuery,
    ) -> Result<Vec<crate::IntentCorrection>, StoreError> {
        self.read(move |c| super::intents::corrections(c, &query))
            .await
    }

    async fn save_intent_model(
        &self,
        workspace: &WorkspaceId,
        draft: crate::IntentModelDraft,
        audit: Vec<AuditEntry>,
    ) -> Result<crate::IntentModelRecord, StoreError> {
        let ws = workspace.clone();
        self.write(move |c| super::intents::save_model(c, ws.as_str(), draft, &audit))
            .await
    }

    async fn intent_models(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<crate::IntentModelRecord>, StoreError> {
        let ws = workspace.clone();
        self.read(move |c| super::intents::models(c, ws.as_str()))
            .await
    }

    async fn intent_model_bytes(
        &self,
        workspace: &WorkspaceId,
        version: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let ws = workspace.clone();
        self.read(move |c| super::intents::model_bytes(c, ws.as_str(), version))
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
        self.write(move |c| super::intents::activate(c, ws.as_str(), version, &by, &audit))
            .await
    }

    async fn active_intent_model(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<crate::ActiveIntentModel, StoreError> {
        let ws = workspace.clone();
        self.read(move |c| super::intents::active(c, ws.as_str()))
            .await
    }
}
