//! Predictive alerts: conversations about to go wrong, raised while there is still time.
//!
//! - a customer's sentiment falling two or more levels (configurable) within a conversation;
//! - escalation risk (`rapport_predict::escalation`) crossing a configurable threshold;
//! - a high-value customer still waiting for an agent past their SLA deadline (from routing).
//!
//! Each becomes an alert record (the store's alerts, shown on the dashboard) with its evidence,
//! at most one open alert per kind and conversation, and, when a webhook URL is configured, a
//! JSON POST of the alert to it. A failed webhook is logged, never retried into the request
//! path: the alert is stored either way.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rapport_core::routing::RouteEntry;
use rapport_core::{Alert, ConversationId, Severity, WorkspaceId};
use rapport_interpret::UrgencyLevel;
use rapport_predict::escalation::{EscalationInput, EscalationModel};
use rapport_store::StoreError;
use serde_json::json;

use crate::engine::{message_analyses, Engine};

/// What raises predictive alerts and where they are sent.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertOptions {
    /// Levels (of five) sentiment must fall within a conversation to raise an alert.
    pub sentiment_drop_levels: u8,
    /// Escalation probability at or above which an alert is raised.
    pub escalation_threshold: f64,
    /// Where each new alert is POSTed as JSON, if anywhere.
    pub webhook_url: Option<String>,
}

impl Default for AlertOptions {
    fn default() -> Self {
        AlertOptions {
            sentiment_drop_levels: 2,
            escalation_threshold: 0.7,
            webhook_url: None,
        }
    }
}

impl AlertOptions {
    /// Every problem at once.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=4).contains(&self.sentiment_drop_levels) {
            problems.push("alerts.sentiment_drop_levels must be 1 to 4".into());
        }
        if !(self.escalation_threshold > 0.0 && self.escalation_threshold < 1.0) {
            problems.push("alerts.escalation_threshold must be between 0 and 1".into());
        }
        if let Some(u) = &self.webhook_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 10 {
                problems.push(format!(
                    "alerts.webhook_url {u:?} must be an http:// or https:// URL"
                ));
            }
        }
        problems
    }
}

fn urgency_level(u: UrgencyLevel) -> f64 {
    match u {
        UrgencyLevel::Low => 0.0,
        UrgencyLevel::Normal => 1.0 / 3.0,
        UrgencyLevel::High => 2.0 / 3.0,
        UrgencyLevel::Critical => 1.0,
    }
}

impl Engine {
    /// Stores `alert` unless an open one of its kind about its subject exists, then posts it
    /// to the webhook. Returns whether it was new.
    pub async fn raise_alert(&self, ws: &WorkspaceId, alert: Alert) -> Result<bool, StoreError> {
        let open = self.store.alerts(ws, true, 1_000).await?;
        if open
            .iter()
            .any(|a| a.kind == alert.kind && a.subject == alert.subject)
        {
            return Ok(false);
        }
        let audit = rapport_core::AuditEntry::new(
            Some(ws.clone()),
            rapport_core::Actor::System,
            "alert.raised",
            Some(alert.id.clone()),
            json!({"kind": alert.kind, "subject": alert.subject}),
        );
        self.store.add_alert(ws, alert.clone(), vec![audit]).await?;
        self.notify_webhook(ws, alert);
        Ok(true)
    }

    /// Posts a stored alert to the configured webhook, in the background.
    pub(crate) fn notify_webhook(&self, ws: &WorkspaceId, alert: Alert) {
        if let Some(url) = self.options.alerts.webhook_url.clone() {
            tokio::spawn(post_webhook(url, ws.clone(), alert));
        }
    }

    /// After an inbound customer message: the sentiment-drop and escalation-risk alerts.
    pub async fn watch_conversation(
        &self,
        ws: &WorkspaceId,
        conversation: &ConversationId,
    ) -> Result<(), StoreError> {
        let Some(detail) = self.store.conversation(ws, conversation).await? else {
            return Ok(());
        };
        // The customer's features (sentiment, effort, contacts) follow on the next churn pass.
        self.churn
            .mark(ws, std::iter::once(&detail.conversation.profile_id));
        let Some(reading) = self.conversation_analysis(&detail.messages) else {
            return Ok(());
        };
        let options = &self.options.alerts;
        let subject = Some(conversation.to_string());
        let profile = detail.conversation.profile_id.to_string();
        if reading.levels_dropped >= options.sentiment_drop_levels {
            let alert = Alert::new(
                "conversation.sentiment_drop",
                Severity::Warning,
                format!(
                    "Sentiment fell {} levels in one conversation",
                    reading.levels_dropped
                ),
                subject.clone(),
                json!({
                    "conversation_id": conversation, "profile_id": profile,
                    "levels_dropped": reading.levels_dropped,
                    "first": reading.first_label, "last": reading.last_label,
                    "trajectory": reading.trajectory, "threshold": options.sentiment_drop_levels,
                }),
            );
            self.raise_alert(ws, alert).await?;
        }
        let input = self.escalation_input(&detail.messages, Utc::now());
        let model = match self.escalation_model(ws, false).await {
            Ok(Some((_, m))) => m,
            Ok(None) => Arc::new(EscalationModel::prior()),
            Err(e) => {
                tracing::warn!(error = %e, "the escalation model could not be loaded; using the prior");
                Arc::new(EscalationModel::prior())
            }
        };
        if let Ok(risk) = model.risk(&input) {
            if risk.probability >= options.escalation_threshold {
                let alert = Alert::new(
                    "conversation.escalation_risk",
                    Severity::Critical,
                    format!(
                        "Escalation risk {:.0}% (threshold {:.0}%)",
                        risk.probability * 100.0,
                        options.escalation_threshold * 100.0
                    ),
                    subject,
                    json!({
                        "conversation_id": conversation, "profile_id": profile,
                        "probability": risk.probability, "threshold": options.escalation_threshold,
                        "model": risk.model, "base_log_odds": risk.base_log_odds,
                        "contributions": risk.contributions.iter()
                            .map(|(s, v, c)| json!({"signal": s, "value": v, "log_odds": c}))
                            .collect::<Vec<_>>(),
                    }),
                );
                self.raise_alert(ws, alert).await?;
            }
        }
        Ok(())
    }

    /// What the escalation model reads of a conversation's messages (those up to the moment
    /// of scoring, in order) at `now`: the customer's sentiment trajectory, the highest urgency
    /// read, how long they have waited since the first message after the last reply to them,
    /// and the repeated-contact phrases. Training builds its rows with this same function on
    /// each prefix of past conversations, so live scores and training agree.
    pub fn escalation_input(
        &self,
        messages: &[rapport_core::Message],
        now: chrono::DateTime<Utc>,
    ) -> EscalationInput {
        let reading = self.conversation_analysis(messages);
        let analyses = message_analyses(messages);
        let urgency = analyses
            .iter()
            .map(|a| urgency_level(a.urgency.level))
            .fold(0.0, f64::max);
        let mut waiting_since = None;
        for m in messages {
            match m.direction {
                rapport_core::Direction::Inbound => {
                    waiting_since.get_or_insert(m.sent_at);
                }
                rapport_core::Direction::Outbound => waiting_since = None,
            }
        }
        let waiting_minutes = waiting_since
            .map(|t| (now - t).num_seconds().max(0) as f64 / 60.0)
            .unwrap_or(0.0);
        EscalationInput {
            sentiment: reading
                .as_ref()
                .map(|r| {
                    r.trajectory
                        .iter()
                        .map(|s| f64::from(*s).clamp(-1.0, 1.0))
                        .collect()
                })
                .unwrap_or_default(),
            urgency,
            waiting_minutes,
            recent_contacts: reading.map_or(0, |r| r.repeated_contact.len() as u32),
            // Earlier escalations of the customer are not read live (it would cost a read of
            // every past conversation per message), so training leaves them out too.
            past_escalations: 0,
        }
    }

    /// A routing pass found `entry` past its SLA deadline: an alert if the customer is of high
    /// value (their value level at or above the routing policy's `senior_value`).
    pub(crate) async fn sla_breached(
        &self,
        ws: &WorkspaceId,
        entry: &RouteEntry,
    ) -> Result<(), StoreError> {
        let value = rapport_decide::routing::priority::level_of(&entry.priority, "customer_value");
        if !value.is_some_and(|v| v >= self.routing_policy().senior_value) {
            return Ok(());
        }
        let detail = entry
            .priority
            .parts
            .iter()
            .find(|p| p.signal == "customer_value")
            .map(|p| p.detail.clone());
        let alert = Alert::new(
            "routing.high_value_waiting",
            Severity::Critical,
            format!(
                "A high-value customer is waiting past their {} SLA",
                entry.priority.tier.as_str()
            ),
            Some(entry.conversation_id.clone()),
            json!({
                "conversation_id": entry.conversation_id, "profile_id": entry.profile_id,
                "queue": entry.queue_id, "tier": entry.priority.tier,
                "enqueued_at": entry.enqueued_at, "sla_deadline": entry.sla_deadline,
                "customer_value": detail, "value_level": value,
            }),
        );
        self.raise_alert(ws, alert).await.map(|_| ())
    }
}

async fn post_webhook(url: String, ws: WorkspaceId, alert: Alert) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "alert webhook client");
            return;
        }
    };
    let body = json!({"workspace_id": ws, "alert": alert});
    match client.post(&url).json(&body).send().await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::warn!(status = %r.status(), alert = %alert.id, "alert webhook refused"),
        Err(e) => tracing::warn!(error = %e, alert = %alert.id, "alert webhook failed"),
    }
}
