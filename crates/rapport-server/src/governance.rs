//! The engine's governance operations: consent changes, the consent gate in front of every
//! outbound action, data export and erasure. Each one is audited with the actor.

use chrono::{DateTime, Utc};
use rapport_core::{
    Actor, AuditEntry, ConsentChange, ConsentRecord, ConsentState, ProfileId, WorkspaceId,
};
use rapport_govern::consent::{Action, ConsentLedger, Permitted, Refusal};
use rapport_store::{AuditQuery, ErasureOptions, ErasureOutcome, StoreError};
use serde::Serialize;
use serde_json::{json, Value};

use crate::engine::Engine;

/// Why a consent change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error("unknown purpose `{0}`; this workspace knows: {1}")]
    UnknownPurpose(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A consent decision as a caller states it.
#[derive(Debug, Clone)]
pub struct ConsentInput {
    pub purpose: String,
    pub state: ConsentState,
    pub source: String,
    pub at: Option<DateTime<Utc>>,
}

/// Everything held about a customer, as the export endpoint returns it.
#[derive(Debug, Serialize)]
pub struct Export {
    pub format: &'static str,
    pub exported_at: DateTime<Utc>,
    pub profile: Value,
    pub events: Vec<Value>,
    pub conversations: Vec<Value>,
    pub consents: Vec<ConsentRecord>,
    pub merges: Vec<Value>,
    /// Decisions made about the customer, with their explanations, newest first.
    pub decisions: Vec<Value>,
    /// The customer's request for a person, if any.
    pub handoff: Option<Value>,
    /// What the audit log records about this customer (ids and codes only).
    pub audit: Vec<Value>,
}

impl Engine {
    /// Records consent decisions, refusing them all if any names a purpose the workspace does
    /// not know.
    pub async fn set_consents(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        inputs: Vec<ConsentInput>,
        actor: Actor,
    ) -> Result<Vec<ConsentRecord>, ConsentError> {
        let registry = &self.options.purposes;
        let mut changes = Vec::with_capacity(inputs.len());
        for i in inputs {
            let Some(purpose) = registry.get(&i.purpose) else {
                return Err(ConsentError::UnknownPurpose(
                    i.purpose,
                    registry.names().join(", "),
                ));
            };
            changes.push(ConsentChange {
                purpose: purpose.clone(),
                state: i.state,
                source: i.source,
                at: i.at.unwrap_or_else(Utc::now),
            });
        }
        let audit = changes
            .iter()
            .map(|c| {
                AuditEntry::new(
                    Some(workspace.clone()),
                    actor.clone(),
                    &format!("consent.{}", c.state.as_str()),
                    Some(profile.as_str().to_owned()),
                    json!({"purpose": c.purpose.as_str(), "source": c.source}),
                )
            })
            .collect();
        Ok(self
            .store
            .record_consents(workspace, profile, changes, audit)
            .await?)
    }

    /// The gate every outbound action passes: the action comes back as [`Permitted`] only if
    /// the customer granted every purpose it needs; otherwise the refusal is audited and
    /// returned.
    pub async fn permit<A: Action>(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        action: A,
        actor: Actor,
    ) -> Result<Result<Permitted<A>, Refusal>, StoreError> {
        let history = self.store.consents(workspace, profile).await?;
        let ledger = ConsentLedger::from_history(&history);
        match self.gate.check(profile, &ledger, action) {
            Ok(p) => Ok(Ok(p)),
            Err(refusal) => {
                self.store
                    .append_audit(vec![refusal.audit_entry(workspace, actor)])
                    .await?;
                Ok(Err(refusal))
            }
        }
    }

    /// Everything held about a customer, as machine-readable JSON. The export itself is
    /// audited.
    pub async fn export(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        actor: Actor,
    ) -> Result<Export, StoreError> {
        let store = &self.store;
        let found = store
            .profile(workspace, profile)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("profile {profile}")))?;
        let id = found.id.clone();
        let mut events = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .profile_events(workspace, &id, cursor.as_ref(), 1000)
                .await?;
            events.extend(
                page.events
                    .into_iter()
                    .map(|e| serde_json::to_value(e).unwrap_or(Value::Null)),
            );
            match page
                .next_cursor
                .as_deref()
                .and_then(rapport_store::EventCursor::decode)
            {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut conversations = Vec::new();
        for c in store.profile_conversations(workspace, &id).await? {
            if let Some(detail) = store.conversation(workspace, &c.id).await? {
                conversations.push(json!({
                    "conversation": detail.conversation,
                    "messages": detail.messages,
                }));
            }
        }
        let consents = store.consents(workspace, &id).await?;
        let merges = store
            .merges(workspace, &id)
            .await?
            .into_iter()
            .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
            .collect();
        let decisions = store
            .decisions(rapport_store::DecisionQuery {
                workspace: workspace.clone(),
                profile: Some(id.clone()),
                status: None,
                limit: 100_000,
            })
            .await?
            .into_iter()
            .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
            .collect();
        let handoff = store
            .handoff(workspace, &id)
            .await?
            .map(|h| serde_json::to_value(h).unwrap_or(Value::Null));
        let audit = store
            .audit_records(AuditQuery {
                workspace: Some(workspace.clone()),
                subject: Some(id.as_str().to_owned()),
                ascending: true,
                limit: 10_000,
                ..Default::default()
            })
            .await?
            .into_iter()
            .map(|r| {
                json!({"seq": r.seq, "at_ms": r.at_ms, "actor": r.actor, "action": r.action,
                       "details": r.details_value()})
            })
            .collect();
        store
            .append_audit(vec![AuditEntry::new(
                Some(workspace.clone()),
                actor,
                "profile.exported",
                Some(id.as_str().to_owned()),
                json!({"events": events.len(), "conversations": conversations.len()}),
            )])
            .await?;
        Ok(Export {
            format: "rapport.export.v1",
            exported_at: Utc::now(),
            profile: serde_json::to_value(&found).unwrap_or(Value::Null),
            events,
            conversations,
            consents,
            merges,
            decisions,
            handoff,
            audit,
        })
    }

    /// Erases a customer (see [`rapport_store::Store::erase_profile`]); audited in the same
    /// transaction.
    pub async fn erase(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        actor: Actor,
    ) -> Result<ErasureOutcome, StoreError> {
        let options = ErasureOptions {
            tombstone: self.options.erasure_tombstones,
        };
        let entry = AuditEntry::new(
            Some(workspace.clone()),
            actor,
            "profile.erased",
            Some(profile.as_str().to_owned()),
            json!({"tombstones": options.tombstone}),
        );
        self.store
            .erase_profile(workspace, profile, options, entry)
            .await
    }
}
