//! Wires routing (`rapport_decide::routing`) to the store: each inbound customer message
//! queues its conversation or updates its priority, then a routing pass offers waiting
//! conversations to agents; a background tick withdraws offers not accepted in time and marks
//! SLA deadlines passed; agents accept and finish conversations.
//!
//! The decisions are pure and made in `rapport-decide`; this module reads their inputs (the
//! stored message analyses, the profile's value and churn traits, queues, agents, entries) and
//! writes back what changed. The store refuses an assignment above an agent's capacity and a
//! stale write (compare-and-set), so passes running at once on several nodes cannot overbook
//! an agent: the loser's change is dropped and the next pass starts from what was stored.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rapport_core::routing::{EntryStatus, RouteEntry, Slug};
use rapport_core::{Actor, AuditEntry, ConversationId, WorkspaceId};
use rapport_decide::routing::{self as decide, priority::explain, RoutingPolicy, Signals, Urgency};
use rapport_interpret::UrgencyLevel;
use rapport_store::StoreError;
use serde_json::{json, Value};

use crate::engine::{message_analyses, Engine};

/// Traits read as what a customer is worth, first found first.
pub const VALUE_TRAITS: [&str; 5] = [
    "lifetime_value",
    "clv",
    "ltv",
    "total_revenue",
    "total_spent",
];
/// The trait read as a customer's churn probability (0..1), written by whatever scores churn.
pub const CHURN_TRAIT: &str = "churn_risk";

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

/// What a routing pass did, for callers and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassSummary {
    pub offered: Vec<RouteEntry>,
    pub timed_out: usize,
    pub breached: Vec<RouteEntry>,
}

/// Why an agent's request about a queue entry failed.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error("unknown queue entry {0}")]
    UnknownEntry(String),
    #[error("unknown agent {0}")]
    UnknownAgent(String),
    #[error(transparent)]
    Refused(#[from] decide::RouteError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Engine {
    /// The routing policy in force.
    pub fn routing_policy(&self) -> &RoutingPolicy {
        &self.options.routing
    }

    /// Reads the signals of a conversation from its stored analyses and its customer's traits.
    async fn signals(
        &self,
        ws: &WorkspaceId,
        conversation: &ConversationId,
    ) -> Result<Option<(Signals, Option<String>, String)>, StoreError> {
        let Some(detail) = self.store.conversation(ws, conversation).await? else {
            return Ok(None);
        };
        let analyses = message_analyses(&detail.messages);
        let mut s = Signals::default();
        let top = analyses.iter().max_by_key(|a| a.urgency.level);
        if let Some(top) = top {
            s.urgency = match top.urgency.level {
                UrgencyLevel::Low => Urgency::Low,
                UrgencyLevel::Normal => Urgency::Normal,
                UrgencyLevel::High => Urgency::High,
                UrgencyLevel::Critical => Urgency::Critical,
            };
            let mut reasons: Vec<String> = top
                .urgency
                .reasons
                .iter()
                .map(|r| r.kind.as_str().to_owned())
                .collect();
            reasons.dedup();
            s.urgency_reasons = reasons;
        }
        let intent = analyses.last().and_then(|a| a.intent.label.clone());
        s.sentiment_level = analyses
            .last()
            .map(|a| u8::try_from(a.sentiment.label.level()).unwrap_or(2));
        if let Some(c) = self.conversation_analysis(&detail.messages) {
            if c.messages >= 2 {
                s.sentiment_trend = Some(f64::from(c.trend));
                s.levels_dropped = c.levels_dropped;
            }
        }
        let profile_id = detail.conversation.profile_id.clone();
        if let Some(p) = self.store.profile(ws, &profile_id).await? {
            s.customer_value = VALUE_TRAITS
                .iter()
                .find_map(|k| p.traits.get(*k).and_then(number))
                .filter(|v| *v >= 0.0);
            s.churn_risk = p
                .traits
                .get(CHURN_TRAIT)
                .and_then(number)
                .filter(|v| (0.0..=1.0).contains(v));
            if s.churn_risk.is_none() {
                s.churn_risk = self.live_churn_risk(ws, &p.id).await?;
            }
            // The predicted lifetime value stands in for a value trait the profile lacks.
            if s.customer_value.is_none() {
                s.customer_value = self.live_customer_value(ws, &p.id).await?;
            }
        }
        Ok(Some((s, intent, profile_id.to_string())))
    }

    /// After an inbound customer message: queues the conversation (the human queue at once if
    /// the customer asked for a person) or updates its priority, then runs a routing pass. Does
    /// nothing in a workspace without queues. A request for a person moves a waiting
    /// conversation to the human queue; one already offered to or held by an agent stays with
    /// that agent (a person is on it), with the request in its priority.
    pub async fn route_message(
        &self,
        ws: &WorkspaceId,
        conversation: &ConversationId,
        asked_for_human: bool,
    ) -> Result<(), StoreError> {
        let queues = self.store.route_queues(ws).await?;
        if queues.is_empty() {
            return Ok(());
        }
        let Some((mut signals, intent, profile)) = self.signals(ws, conversation).await? else {
            return Ok(());
        };
        let policy = self.routing_policy();
        let now = Utc::now();
        let existing = self
            .store
            .open_route_entry(ws, conversation.as_str())
            .await?;
        signals.asked_for_human = asked_for_human
            || existing
                .as_ref()
                .is_some_and(|e| e.priority.asked_for_human);
        let deadline = |tier, since: DateTime<Utc>| {
            since + chrono::Duration::from_std(policy.sla.of(tier)).unwrap_or_default()
        };
        match existing {
            None => {
                let Some(queue) =
                    decide::choose_queue(&queues, intent.as_deref(), signals.asked_for_human)
                else {
                    return Ok(());
                };
                let p = decide::priority(&signals, now, now, policy);
                let due = deadline(p.tier, now);
                let entry = RouteEntry::new(
                    conversation.as_str(),
                    &profile,
                    queue.id.clone(),
                    p,
                    due,
                    now,
                );
                let audit = AuditEntry::new(
                    Some(ws.clone()),
                    Actor::System,
                    "routing.queued",
                    Some(conversation.to_string()),
                    json!({"queue": entry.queue_id, "entry": entry.id,
                           "priority": entry.priority.score, "tier": entry.priority.tier}),
                );
                match self
                    .store
                    .save_route_entry(ws, entry, None, vec![audit])
                    .await
                {
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Some(mut e) if e.status != EntryStatus::Accepted => {
                let version = e.version;
                let p = decide::priority(&signals, e.enqueued_at, now, policy);
                let moved = if signals.asked_for_human && e.status == EntryStatus::Waiting {
                    decide::choose_queue(&queues, intent.as_deref(), true)
                        .filter(|q| q.id != e.queue_id)
                        .map(|q| q.id.clone())
                } else {
                    None
                };
                e.sla_deadline = e.sla_deadline.min(deadline(p.tier, e.enqueued_at));
                let mut why = explain(&p);
                if let Some(q) = moved {
                    why = format!("moved to {q} (asked for a person); {why}");
                    e.queue_id = q;
                }
                e.priority = p;
                e.step(now, "reprioritized", None, why);
                match self
                    .store
                    .save_route_entry(ws, e, Some(version), vec![])
                    .await
                {
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Some(_) => {}
        }
        self.route_pass(ws).await.map(|_| ())
    }

    /// One routing pass over a workspace: withdraws offers not accepted in time, marks SLA
    /// deadlines passed, and offers waiting conversations to agents. Each offer is audited
    /// with its reasons. A change another node made first is skipped.
    pub async fn route_pass(&self, ws: &WorkspaceId) -> Result<PassSummary, StoreError> {
        let queues = self.store.route_queues(ws).await?;
        if queues.is_empty() {
            return Ok(PassSummary::default());
        }
        let agents = self.store.route_agents(ws).await?;
        let entries = self.store.route_entries(ws, true, 10_000).await?;
        let versions: std::collections::HashMap<String, i64> =
            entries.iter().map(|e| (e.id.clone(), e.version)).collect();
        let routed = decide::route(
            &queues,
            &agents,
            &entries,
            self.routing_policy(),
            Utc::now(),
        );
        let mut summary = PassSummary::default();
        // Only entries whose state changed are written; a waiting entry's SLA part is brought
        // up to date whenever it is read, so it needs no write of its own.
        let changed_state = |e: &RouteEntry| {
            routed.offered.contains(&e.id)
                || routed.timed_out.contains(&e.id)
                || routed.breached.contains(&e.id)
        };
        for e in routed.changed.into_iter().filter(|e| changed_state(e)) {
            let Some(&version) = versions.get(&e.id) else {
                continue;
            };
            let offered = routed.offered.contains(&e.id);
            let audit = if offered {
                let why = e.history.last().map(|s| s.why.clone()).unwrap_or_default();
                vec![AuditEntry::new(
                    Some(ws.clone()),
                    Actor::System,
                    "routing.offered",
                    Some(e.conversation_id.clone()),
                    json!({"entry": e.id, "agent": e.agent_id, "why": why,
                           "priority": e.priority.score, "parts": e.priority.parts}),
                )]
            } else {
                vec![]
            };
            let breached = routed.breached.contains(&e.id);
            let timed_out = routed.timed_out.contains(&e.id);
            match self
                .store
                .save_route_entry(ws, e, Some(version), audit)
                .await
            {
                Ok(saved) => {
                    if offered {
                        summary.offered.push(saved.clone());
                    }
                    if timed_out {
                        summary.timed_out += 1;
                    }
                    if breached {
                        self.sla_breached(ws, &saved).await?;
                        summary.breached.push(saved);
                    }
                }
                // Taken or changed meanwhile (another pass, an agent at capacity): the next
                // pass starts again from what is stored.
                Err(StoreError::Conflict(_)) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(summary)
    }

    /// The agent takes a conversation offered to it. Audited.
    pub async fn accept_entry(
        &self,
        ws: &WorkspaceId,
        entry: &str,
        agent: &Slug,
        actor: Actor,
    ) -> Result<RouteEntry, RoutingError> {
        self.agent_step(ws, entry, agent, actor, true).await
    }

    /// The agent is done with a conversation; its capacity frees and waiting conversations are
    /// offered again. Audited.
    pub async fn finish_entry(
        &self,
        ws: &WorkspaceId,
        entry: &str,
        agent: &Slug,
        actor: Actor,
    ) -> Result<RouteEntry, RoutingError> {
        let done = self.agent_step(ws, entry, agent, actor, false).await?;
        self.route_pass(ws).await?;
        Ok(done)
    }

    async fn agent_step(
        &self,
        ws: &WorkspaceId,
        entry: &str,
        agent: &Slug,
        actor: Actor,
        accept: bool,
    ) -> Result<RouteEntry, RoutingError> {
        let mut e = self
            .store
            .route_entry(ws, entry)
            .await?
            .ok_or_else(|| RoutingError::UnknownEntry(entry.to_owned()))?;
        if !self
            .store
            .route_agents(ws)
            .await?
            .iter()
            .any(|a| &a.id == agent)
        {
            return Err(RoutingError::UnknownAgent(agent.to_string()));
        }
        let version = e.version;
        let now = Utc::now();
        let (action, changed) = if accept {
            ("routing.accepted", decide::accept(&mut e, agent, now)?)
        } else {
            decide::finish(&mut e, agent, now)?;
            ("routing.finished", true)
        };
        if !changed {
            return Ok(e);
        }
        let audit = AuditEntry::new(
            Some(ws.clone()),
            actor,
            action,
            Some(e.conversation_id.clone()),
            json!({"entry": e.id, "agent": agent}),
        );
        Ok(self
            .store
            .save_route_entry(ws, e, Some(version), vec![audit])
            .await?)
    }
}

/// Runs for the life of the server: every few seconds, a routing pass in every workspace, so
/// offers not accepted in time go back to the queue, deadlines passed are marked, and
/// conversations waiting for capacity are offered when it frees (an agent coming back,
/// a conversation finished on another node).
pub fn spawn(engine: Arc<Engine>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            match engine.store.list_workspaces().await {
                Ok(list) => {
                    for w in list {
                        if let Err(e) = engine.route_pass(&w.id).await {
                            tracing::warn!(error = %e, "routing pass failed");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "listing workspaces failed"),
            }
        }
    })
}
