//! The engine's governance operations: consent changes, the consent gate in front of every
//! outbound action, data export and erasure. Each one is audited with the actor.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rapport_bus::Envelope;
use rapport_core::error::Coded;
use rapport_core::{
    Actor, AuditEntry, ConsentChange, ConsentRecord, ConsentState, Event, Identifier, ProfileId,
    WorkspaceId,
};
use rapport_govern::consent::{Action, ConsentLedger, Permitted, Refusal};
use rapport_store::{AuditQuery, ErasureOptions, ErasureOutcome, EventCursor, StoreError};
use serde::Serialize;
use serde_json::{json, Value};

use crate::engine::Engine;
use crate::sink::{EventSink, SinkError};

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
    /// Their features as last computed and the scores read from them (churn risk with its
    /// reasons).
    pub features: Option<Value>,
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
                // Agents' corrections of the intents read in the customer's messages.
                let corrections = store
                    .intent_corrections(rapport_store::CorrectionQuery {
                        workspace: workspace.clone(),
                        conversation: Some(c.id.as_str().to_owned()),
                        limit: 100_000,
                    })
                    .await?;
                conversations.push(json!({
                    "conversation": detail.conversation,
                    "messages": detail.messages,
                    "intent_corrections": corrections,
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
        let features = store.profile_features(workspace, &id).await?.map(
            |f| json!({"computed_at": f.computed_at, "features": f.features, "scores": f.scores}),
        );
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
            features,
        })
    }

    /// Erases a customer (see [`rapport_store::Store::erase_profile`], audited in the same
    /// transaction), and in scale-out mode from the event bus too (see [`Erasure`]).
    ///
    /// The bus is read in two passes around the store's erasure: the first, before it, while
    /// the profile still says which identifiers and events are the customer's; the second,
    /// after it, for events naming the customer that reached the bus in between. When the bus
    /// cannot be reached for the first pass nothing is erased and the caller gets
    /// `bus_unavailable`, so a retry can do the whole job.
    pub async fn erase(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
        actor: Actor,
    ) -> Result<Erasure, SinkError> {
        let options = ErasureOptions {
            tombstone: self.options.erasure_tombstones,
        };
        let bus = match self.sink() {
            EventSink::Embedded => None,
            EventSink::Bus(slot) => Some(slot.get()?.clone()),
        };
        let mut detail = json!({"tombstones": options.tombstone});
        let mut event_log = None;
        let mut doomed = None;
        if let Some(bus) = &bus {
            let picks = self.customer_events(workspace, profile).await?;
            let first = bus
                .erase_where(workspace, None, &|e| picks.matches(e))
                .await?;
            detail["event_log"] = json!({
                "events": first.events,
                "dead_letters": first.dead_letters,
            });
            event_log = Some(EventLogErasure {
                events: first.events as u64,
                dead_letters: first.dead_letters as u64,
                complete: true,
            });
            doomed = Some((picks, first.cursor));
        }
        let entry = AuditEntry::new(
            Some(workspace.clone()),
            actor.clone(),
            "profile.erased",
            Some(profile.as_str().to_owned()),
            detail,
        );
        let store = self
            .store
            .erase_profile(workspace, profile, options, entry)
            .await?;
        if let (Some(bus), Some((picks, cursor)), Some(log)) = (&bus, doomed, event_log.as_mut()) {
            let second = bus
                .erase_where(workspace, Some(cursor), &|e| picks.matches(e))
                .await;
            let detail = match second {
                Ok(more) => {
                    log.events += more.events as u64;
                    log.dead_letters += more.dead_letters as u64;
                    json!({"events": more.events, "dead_letters": more.dead_letters})
                }
                Err(e) => {
                    // The store part is done and cannot be repeated for this customer; what
                    // reached the bus meanwhile is dropped by workers through the tombstones.
                    tracing::warn!(error = %e, "second pass of an erasure over the event bus failed");
                    log.complete = false;
                    json!({"error": e.code()})
                }
            };
            let entry = AuditEntry::new(
                Some(workspace.clone()),
                actor,
                "profile.erasure.event_log",
                Some(store.profile_id.clone()),
                detail,
            );
            self.store.append_audit(vec![entry]).await?;
        }
        Ok(Erasure { store, event_log })
    }

    /// What marks a bus message as this customer's: its `messageId` is one of the profile's
    /// stored events, or it names one of the profile's identifiers once standardised as a
    /// worker would. An unknown or already erased profile picks nothing.
    async fn customer_events(
        &self,
        workspace: &WorkspaceId,
        profile: &ProfileId,
    ) -> Result<CustomerEvents<'_>, StoreError> {
        let mut picks = CustomerEvents {
            engine: self,
            identifiers: HashSet::new(),
            message_ids: HashSet::new(),
        };
        let Some(found) = self.store.profile(workspace, profile).await? else {
            return Ok(picks);
        };
        picks.identifiers.extend(found.identities);
        let mut cursor: Option<EventCursor> = None;
        loop {
            let page = self
                .store
                .profile_events(workspace, &found.id, cursor.as_ref(), 1000)
                .await?;
            picks
                .message_ids
                .extend(page.events.into_iter().map(|e| e.message_id));
            match page.next_cursor.as_deref().and_then(EventCursor::decode) {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(picks)
    }
}

/// The result of [`Engine::erase`].
#[derive(Debug, Clone)]
pub struct Erasure {
    /// What the store erased.
    pub store: ErasureOutcome,
    /// What was erased from the event bus; `None` in embedded mode, which has none.
    pub event_log: Option<EventLogErasure>,
}

/// The event bus's part of an erasure: messages removed from the event log (applied or still
/// queued, which then never reach a worker) and from the dead letters.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct EventLogErasure {
    pub events: u64,
    pub dead_letters: u64,
    /// False when the pass after the store's erasure failed: events that reached the bus
    /// during the erasure may still be held there (workers drop them on delivery when
    /// tombstones are kept, and the broker's retention removes them in time).
    pub complete: bool,
}

/// The bus messages one erasure removes (see `Engine::customer_events`).
struct CustomerEvents<'a> {
    engine: &'a Engine,
    identifiers: HashSet<Identifier>,
    message_ids: HashSet<String>,
}

impl CustomerEvents<'_> {
    fn matches(&self, envelope: &Envelope) -> bool {
        if self.message_ids.contains(envelope.event_id()) {
            return true;
        }
        if self.identifiers.is_empty() {
            return false;
        }
        let Ok(event) = envelope.payload_json::<Event>() else {
            return false;
        };
        self.engine
            .standardize_all(vec![event])
            .iter()
            .flat_map(Event::identifiers)
            .any(|id| self.identifiers.contains(&id))
    }
}
