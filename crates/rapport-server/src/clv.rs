//! Customer lifetime value on the workspace's own purchases.
//!
//! - **Training.** Every (recently active) customer's `Order Completed` events become a
//!   transaction log; BG/NBD (how often they buy, and whether they are still buying) and
//!   Gamma-Gamma (how much they spend per purchase) are fitted on it by maximum likelihood
//!   (`rapport_predict::clv`). Before the stored fit, a fit on the log without its newest
//!   `holdout_days` is measured on them: expected against actual purchases per customer, next
//!   to the naive forecast that keeps each customer's past rate.
//! - **Versions.** Each training is a new version of kind `clv` in the store's model versions;
//!   one is active per workspace, picked up by every node within seconds, rolled back by
//!   activating an older one. A scheduled training only replaces the active version when its
//!   held-out error is no worse.
//! - **Scores.** The background pass that keeps churn features current also values each
//!   customer it recomputes: expected purchases and spend over the horizon, and the exact
//!   contribution of each of the four inputs (repeat purchases, days from first to last
//!   purchase, days since the first, average spend) against the workspace's typical customer.
//!   Routing reads the value as the customer's worth when no value trait is set.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rapport_core::{Actor, AuditEntry, ProfileId, WorkspaceId};
use rapport_predict::clv::{self, ClvModel};
use rapport_predict::features::{self, History};
use rapport_store::{ModelDraft, ModelVersion};
use serde_json::{json, Value};

use crate::churn::{Body, ChurnError, TrainReport};
use crate::engine::Engine;

/// The model kind lifetime-value models are stored under.
pub const KIND: &str = "clv";

/// How lifetime value is trained.
#[derive(Debug, Clone, PartialEq)]
pub struct ClvOptions {
    /// Days ahead a customer's value is counted over.
    pub horizon_days: u32,
    /// Newest days of purchases a training holds out to measure the model.
    pub holdout_days: u32,
    /// Train every this long per workspace; `None` trains only on demand.
    pub retrain_every: Option<Duration>,
}

impl Default for ClvOptions {
    fn default() -> Self {
        ClvOptions {
            horizon_days: 365,
            holdout_days: 30,
            retrain_every: Some(Duration::from_secs(24 * 3600)),
        }
    }
}

impl ClvOptions {
    /// Every problem at once.
    pub fn check(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(1..=3650).contains(&self.horizon_days) {
            p.push("clv.horizon_days must be 1 to 3650".into());
        }
        if !(1..=365).contains(&self.holdout_days) {
            p.push("clv.holdout_days must be 1 to 365".into());
        }
        p
    }
}

fn day_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(86_400)
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// A customer's value under the active model, as stored with their features.
pub(crate) fn score_json(
    model: Option<&(i64, Arc<ClvModel>)>,
    history: &History,
    id: &ProfileId,
    now: DateTime<Utc>,
) -> Value {
    let Some((version, m)) = model else {
        return json!({"status": "no_model"});
    };
    let tx = features::transactions(history, id.as_str(), now);
    if tx.is_empty() {
        return json!({"status": "no_purchases", "version": version});
    }
    let Some(summary) = clv::summarize(&tx, Some(day_of(now))).pop() else {
        return json!({"status": "no_purchases", "version": version});
    };
    let e = m.explain(&summary);
    json!({
        "value": e.value.expected_value.map(|v| round(v, 2)),
        "expected_purchases": round(e.value.expected_purchases, 3),
        "expected_average_value": e.value.expected_average_value.map(|v| round(v, 2)),
        "horizon_days": m.horizon_days,
        "version": version,
        "model": "BG/NBD + Gamma-Gamma",
        "reference_value": round(e.reference_value, 2),
        "contributions": e.contributions.iter().map(|c| json!({
            "input": c.input, "value": round(c.value, 2), "reference": round(c.reference, 2),
            "contribution": round(c.contribution, 2),
        })).collect::<Vec<_>>(),
    })
}

/// Fits the evaluation model and the stored one; the summary says how the first did.
fn fit(
    tx: Vec<clv::Transaction>,
    end: i64,
    o: &ClvOptions,
) -> Result<(ClvModel, Value), ChurnError> {
    let summaries = clv::summarize(&tx, Some(end));
    let repeaters = summaries.iter().filter(|s| s.frequency > 0.0).count();
    if summaries.len() < 20 || repeaters < 10 {
        return Err(ChurnError::Insufficient(format!(
            "{} customers with orders, {repeaters} of them with a repeat purchase: lifetime value needs at least 20 and 10",
            summaries.len()
        )));
    }
    let holdout = match clv::evaluate_holdout(&tx, end, i64::from(o.holdout_days)) {
        Ok(e) => serde_json::to_value(&e).unwrap_or(Value::Null),
        Err(e) => json!({"skipped": e.to_string()}),
    };
    let model = ClvModel::fit(&summaries, f64::from(o.horizon_days))
        .map_err(|e| ChurnError::Insufficient(format!("the purchases cannot fit a model: {e}")))?;
    let summary = json!({
        "customers": summaries.len(),
        "repeat_customers": repeaters,
        "transactions": tx.len(),
        "horizon_days": o.horizon_days,
        "bgnbd": model.bgnbd,
        "gamma_gamma": model.gamma_gamma,
        "reference": model.reference,
        "holdout": holdout,
    });
    Ok((model, summary))
}

impl Engine {
    /// The active lifetime-value model of a workspace (see [`Engine::active_model_of`]).
    pub(crate) async fn clv_model(
        &self,
        ws: &WorkspaceId,
        fresh: bool,
    ) -> Result<Option<(i64, Arc<ClvModel>)>, ChurnError> {
        Ok(match self.active_model_of(ws, KIND, fresh).await? {
            Some((v, Body::Clv(m))) => Some((v, m)),
            _ => None,
        })
    }

    /// A customer's predicted lifetime value, if one was computed.
    pub(crate) async fn live_customer_value(
        &self,
        ws: &WorkspaceId,
        id: &ProfileId,
    ) -> Result<Option<f64>, rapport_store::StoreError> {
        Ok(self
            .store
            .profile_features(ws, id)
            .await?
            .and_then(|f| f.scores.get(KIND)?.get("value")?.as_f64())
            .filter(|v| v.is_finite() && *v >= 0.0))
    }

    /// Trains a lifetime-value model on the workspace's purchases (see the module's notes),
    /// stores it as a new version and activates it when `activate` says so or, unset, when
    /// its held-out error is no worse than the active version's.
    pub async fn train_clv(
        self: &Arc<Self>,
        ws: &WorkspaceId,
        by: Actor,
        activate: Option<bool>,
    ) -> Result<TrainReport, ChurnError> {
        let o = self.options.clv.clone();
        let started = Instant::now();
        let now = Utc::now();
        let profiles = self
            .store
            .recent_profiles(ws, self.options.churn.max_training_profiles)
            .await?;
        let mut tx = Vec::new();
        for p in &profiles {
            let history = self.event_history(ws, &p.id).await?;
            tx.extend(features::transactions(&history, p.id.as_str(), now));
        }
        let read_secs = started.elapsed().as_secs_f64();
        let fit_started = Instant::now();
        let end = day_of(now);
        let opts = o.clone();
        let (model, mut summary) = tokio::task::spawn_blocking(move || fit(tx, end, &opts))
            .await
            .map_err(|e| ChurnError::Insufficient(format!("training stopped: {e}")))??;
        let mae = |v: &Value| v.pointer("/holdout/mae").and_then(Value::as_f64);
        let active = self.clv_model(ws, true).await?;
        let active_mae = match &active {
            Some((v, _)) => self
                .store
                .model_versions(ws, KIND)
                .await?
                .into_iter()
                .find(|m| m.version == *v)
                .and_then(|m| mae(&m.summary)),
            None => None,
        };
        let activate = activate.unwrap_or(match (active.is_some(), mae(&summary), active_mae) {
            (false, _, _) => true,
            (true, Some(new), Some(old)) => new <= old * 1.02,
            (true, Some(_), None) => true,
            (true, None, _) => false,
        });
        summary["profiles_read"] = json!(profiles.len());
        summary["read_seconds"] = json!(round(read_secs, 3));
        summary["fit_seconds"] = json!(round(fit_started.elapsed().as_secs_f64(), 3));
        summary["trained_at"] = json!(now);
        let audit = AuditEntry::new(
            Some(ws.clone()),
            by.clone(),
            "model.trained",
            Some(KIND.into()),
            json!({"activated": activate, "holdout": summary.get("holdout"), "customers": summary.get("customers")}),
        );
        let version = self
            .store
            .save_model_version(
                ws,
                ModelDraft {
                    kind: KIND.into(),
                    created_by: by.encode(),
                    summary: summary.clone(),
                    body: model.to_json(),
                    activate,
                },
                vec![audit],
            )
            .await?;
        if activate {
            self.clv_model(ws, true).await?;
            self.rescore_all(ws);
        }
        Ok(TrainReport { version, summary })
    }

    /// Trains a model of `kind` (`churn`, `clv` or `escalation`) on the workspace's data.
    pub async fn train_model(
        self: &Arc<Self>,
        ws: &WorkspaceId,
        kind: &str,
        by: Actor,
        activate: Option<bool>,
    ) -> Result<TrainReport, ChurnError> {
        match kind {
            KIND => self.train_clv(ws, by, activate).await,
            crate::churn::KIND => self.train_churn(ws, by, activate).await,
            crate::escalation::KIND => self.train_escalation(ws, by, activate).await,
            other => Err(ChurnError::UnknownKind(other.to_owned())),
        }
    }

    /// Makes a stored version of `kind` the active one (also to roll back) and rescores.
    pub async fn activate_model(
        self: &Arc<Self>,
        ws: &WorkspaceId,
        kind: &str,
        version: i64,
        by: Actor,
    ) -> Result<ModelVersion, ChurnError> {
        let kind: &'static str = match kind {
            KIND => KIND,
            crate::churn::KIND => crate::churn::KIND,
            crate::escalation::KIND => crate::escalation::KIND,
            other => return Err(ChurnError::UnknownKind(other.to_owned())),
        };
        let audit = AuditEntry::new(
            Some(ws.clone()),
            by,
            "model.activated",
            Some(kind.into()),
            json!({"version": version}),
        );
        let v = self
            .store
            .activate_model_version(ws, kind, version, vec![audit])
            .await?;
        self.active_model_of(ws, kind, true).await?;
        self.rescore_all(ws);
        Ok(v)
    }
}
