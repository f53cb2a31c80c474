//! Escalation risk trained on the workspace's own conversations.
//!
//! A conversation *escalated* when the customer asked for a person or a manager in it (a
//! message that [`crate::actions::asks_for_human`] recognises, the same test that sends them to
//! the human queue, or one asking for a manager, a supervisor or an escalation) or a request
//! for a person was recorded against it. Each past conversation gives one
//! training row per customer message before it escalated (or per message, if it never did):
//! what the model would have read at that moment, built by [`Engine::escalation_input`] from
//! the messages up to it (the same function live scoring uses), labelled by whether the
//! conversation escalated afterwards.
//!
//! The newest quarter of the conversations (by when they opened) is held out: a model fitted
//! on the older ones is measured on it by ROC-AUC next to the hand-set prior, then the stored
//! model is fitted on all of them. Each training is a version of kind `escalation`; the active
//! one replaces the prior in the escalation-risk alerts on every node within seconds.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use rapport_core::{Actor, AuditEntry, Direction, WorkspaceId};
use rapport_predict::escalation::{EscalationInput, EscalationModel, SIGNALS};
use rapport_store::ModelDraft;
use serde_json::{json, Value};

use crate::churn::{Body, ChurnError, TrainReport};
use crate::engine::Engine;

/// The model kind escalation models are stored under.
pub const KIND: &str = "escalation";
/// L2 penalty on the weights.
const L2: f64 = 1.0;
/// Fewest escalated rows a training needs.
const MIN_POSITIVES: usize = 10;

/// Whether a customer's message asks for a person, a manager or an escalation.
pub fn asks_to_escalate(text: &str) -> bool {
    if crate::actions::asks_for_human(text) {
        return true;
    }
    let t = text.to_lowercase();
    [
        "escalate",
        "escalated",
        "a manager",
        "your manager",
        "supervisor",
        "someone senior",
    ]
    .iter()
    .any(|p| t.contains(p))
}

/// One conversation's rows, with when it opened (for the time split).
struct Rows {
    opened: chrono::DateTime<Utc>,
    rows: Vec<(EscalationInput, bool)>,
}

fn auc(model: &EscalationModel, rows: &[(EscalationInput, bool)]) -> Option<f64> {
    let y: Vec<bool> = rows.iter().map(|r| r.1).collect();
    let p: Vec<f64> = rows
        .iter()
        .map(|r| model.risk(&r.0).map_or(0.0, |k| k.probability))
        .collect();
    rapport_predict::metrics::roc_auc(&y, &p)
}

fn fit(mut conversations: Vec<Rows>) -> Result<(EscalationModel, Value), ChurnError> {
    conversations.sort_by_key(|c| c.opened);
    let all: Vec<(EscalationInput, bool)> = conversations
        .iter()
        .flat_map(|c| c.rows.iter().cloned())
        .collect();
    let positives = all.iter().filter(|r| r.1).count();
    if positives < MIN_POSITIVES || all.len() - positives < MIN_POSITIVES {
        return Err(ChurnError::Insufficient(format!(
            "{} rows from {} conversations, {positives} of them before an escalation: escalation training needs at least {MIN_POSITIVES} of each class",
            all.len(),
            conversations.len()
        )));
    }
    let cut = conversations.len() * 3 / 4;
    let older: Vec<_> = conversations[..cut]
        .iter()
        .flat_map(|c| c.rows.iter().cloned())
        .collect();
    let newer: Vec<_> = conversations[cut..]
        .iter()
        .flat_map(|c| c.rows.iter().cloned())
        .collect();
    let holdout = match EscalationModel::fit(&older, L2, "escalation-holdout") {
        Ok(m) => json!({
            "conversations": conversations.len() - cut,
            "rows": newer.len(),
            "positives": newer.iter().filter(|r| r.1).count(),
            "roc_auc": auc(&m, &newer),
            "prior_roc_auc": auc(&EscalationModel::prior(), &newer),
            "note": "trained on the older three quarters of the conversations, measured on the newest quarter",
        }),
        Err(e) => json!({"skipped": e.to_string()}),
    };
    let name = format!(
        "escalation-workspace@{}",
        Utc::now().format("%Y%m%dT%H%M%S")
    );
    let model = EscalationModel::fit(&all, L2, &name).map_err(|e| {
        ChurnError::Insufficient(format!("the conversations cannot fit a model: {e}"))
    })?;
    let summary = json!({
        "conversations": conversations.len(),
        "rows": all.len(),
        "positives": positives,
        "intercept": model.intercept,
        "weights": SIGNALS.iter().zip(model.weights).map(|(s, w)| json!({"signal": s, "weight": w})).collect::<Vec<_>>(),
        "holdout": holdout,
    });
    Ok((model, summary))
}

impl Engine {
    /// The active escalation model of a workspace, if one was trained and activated.
    pub(crate) async fn escalation_model(
        &self,
        ws: &WorkspaceId,
        fresh: bool,
    ) -> Result<Option<(i64, Arc<EscalationModel>)>, ChurnError> {
        Ok(match self.active_model_of(ws, KIND, fresh).await? {
            Some((v, Body::Escalation(m))) => Some((v, m)),
            _ => None,
        })
    }

    /// Every past conversation of the workspace's recently active customers as training rows.
    async fn escalation_rows(&self, ws: &WorkspaceId) -> Result<Vec<Rows>, ChurnError> {
        let profiles = self
            .store
            .recent_profiles(ws, self.options.churn.max_training_profiles)
            .await?;
        let mut out = Vec::new();
        for p in &profiles {
            let handoff = self.store.handoff(ws, &p.id).await?;
            for c in self.store.profile_conversations(ws, &p.id).await? {
                let Some(detail) = self.store.conversation(ws, &c.id).await? else {
                    continue;
                };
                let recorded = handoff
                    .as_ref()
                    .filter(|h| h.conversation_id.as_deref() == Some(c.id.as_str()))
                    .map(|h| h.requested_at);
                let msgs = &detail.messages;
                // When it escalated: the first customer message asking for a person, or the
                // recorded request, whichever came first.
                let asked = msgs
                    .iter()
                    .find(|m| m.direction == Direction::Inbound && asks_to_escalate(&m.text))
                    .map(|m| m.sent_at);
                let escalated_at = match (asked, recorded) {
                    (Some(a), Some(r)) => Some(a.min(r)),
                    (a, r) => a.or(r),
                };
                let mut rows = Vec::new();
                for (i, m) in msgs.iter().enumerate() {
                    if m.direction != Direction::Inbound || m.analysis.is_none() {
                        continue;
                    }
                    if escalated_at.is_some_and(|t| m.sent_at >= t) {
                        break;
                    }
                    let input = self.escalation_input(&msgs[..=i], m.sent_at);
                    if input.check().is_ok() {
                        rows.push((input, escalated_at.is_some()));
                    }
                }
                if !rows.is_empty() {
                    out.push(Rows {
                        opened: c.opened_at,
                        rows,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Trains an escalation model on the workspace's conversations (see the module's notes),
    /// stores it as a new version and activates it when `activate` says so or, unset, when it
    /// scores at least as well on the held-out conversations as the active one (or the prior).
    pub async fn train_escalation(
        self: &Arc<Self>,
        ws: &WorkspaceId,
        by: Actor,
        activate: Option<bool>,
    ) -> Result<TrainReport, ChurnError> {
        let started = Instant::now();
        let now = Utc::now();
        let rows = self.escalation_rows(ws).await?;
        let read_secs = started.elapsed().as_secs_f64();
        let fit_started = Instant::now();
        let (model, mut summary) = tokio::task::spawn_blocking(move || fit(rows))
            .await
            .map_err(|e| ChurnError::Insufficient(format!("training stopped: {e}")))??;
        let auc_of = |v: &Value| v.pointer("/holdout/roc_auc").and_then(Value::as_f64);
        let new = auc_of(&summary);
        let active = self.escalation_model(ws, true).await?;
        let old = match &active {
            Some((v, _)) => self
                .store
                .model_versions(ws, KIND)
                .await?
                .into_iter()
                .find(|m| m.version == *v)
                .and_then(|m| auc_of(&m.summary)),
            // Against the prior when nothing was trained yet.
            None => summary
                .pointer("/holdout/prior_roc_auc")
                .and_then(Value::as_f64),
        };
        let activate = activate.unwrap_or(match (new, old) {
            (Some(n), Some(o)) => n >= o - 0.005,
            (Some(_), None) => true,
            (None, _) => active.is_none(),
        });
        summary["read_seconds"] = json!((read_secs * 1000.0).round() / 1000.0);
        summary["fit_seconds"] =
            json!((fit_started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
        summary["trained_at"] = json!(now);
        let audit = AuditEntry::new(
            Some(ws.clone()),
            by.clone(),
            "model.trained",
            Some(KIND.into()),
            json!({"activated": activate, "holdout": summary.get("holdout"), "rows": summary.get("rows")}),
        );
        let version = self
            .store
            .save_model_version(
                ws,
                ModelDraft {
                    kind: KIND.into(),
                    created_by: by.encode(),
                    summary: summary.clone(),
                    body: serde_json::to_string(&model).expect("a model serialises"),
                    activate,
                },
                vec![audit],
            )
            .await?;
        if activate {
            self.escalation_model(ws, true).await?;
        }
        Ok(TrainReport { version, summary })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_for_a_person_or_a_manager_count_as_escalations() {
        assert!(asks_to_escalate("I want this escalated to a manager"));
        assert!(asks_to_escalate("Can I speak to a person please"));
        assert!(asks_to_escalate("Put me through to your SUPERVISOR."));
        assert!(!asks_to_escalate("My router keeps dropping the connection"));
        assert!(!asks_to_escalate("Thanks, that fixed it"));
    }
}
