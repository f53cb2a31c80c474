//! Churn prediction on the workspace's own data.
//!
//! - **Features kept current.** Every ingest reports the profiles its events landed on, and
//!   every customer message marks its customer; a background pass (every couple of seconds)
//!   recomputes those customers' features (`rapport_predict::features`) from the store and
//!   keeps them, with the churn score and its explanation, in the store's feature rows.
//! - **Point-in-time training.** A model is trained from snapshots at several past cut-offs:
//!   each customer's features as they stood at the cut-off (later events ignored, traits
//!   rebuilt from the identify events before it), labelled by whether a churn event followed
//!   within the horizon. The newest cut-off is held out to measure the model before it is
//!   stored; the stored model is then fitted on every snapshot.
//! - **Versioned and swapped without restart.** Each training stores a new version; one
//!   version per workspace is active. Every node checks the active version number (one cheap
//!   read, at most every few seconds) and loads a new one when it changes, so activating a
//!   version, or rolling back to an older one, takes effect everywhere without a restart.
//! - **Alerts.** When a customer's risk rises by the configured jump under the same model
//!   version and ends at or above the alert floor, a `churn.risk_jump` alert is raised with the
//!   features that pushed it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rapport_core::{
    Actor, Alert, AuditEntry, Direction, EventType, ProfileId, Severity, WorkspaceId,
};
use rapport_predict::features::{
    self, ConversationFact, EventFact, FactKind, FeatureConfig, FeatureVector, History, MessageFact,
};
use rapport_predict::{Classifier, PredictError, TrainOptions};
use rapport_store::{ModelDraft, ModelVersion, ProfileFeatures, StoreError};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::engine::Engine;

/// The model kind churn models are stored under.
pub const KIND: &str = "churn";
/// Most events read per customer when computing features.
const EVENTS_READ: usize = 5_000;
/// How often a node checks whether another version became active.
const VERSION_CHECK: Duration = Duration::from_secs(5);
/// Customers recomputed per store write.
const CHUNK: usize = 200;

/// What churn prediction reads and when it trains and alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct ChurnOptions {
    /// Trait features, churn events and the label horizon.
    pub features: FeatureConfig,
    /// Past cut-offs a training takes snapshots at, one horizon apart (at least 2: the newest
    /// is held out for evaluation).
    pub cutoffs: u32,
    /// Most customers a training reads (the most recently active ones).
    pub max_training_profiles: usize,
    /// Train every this long per workspace; `None` trains only on demand.
    pub retrain_every: Option<Duration>,
    /// Rise in probability, under one model version, that raises an alert.
    pub jump_threshold: f64,
    /// Probability a jump must reach to raise an alert.
    pub alert_floor: f64,
    /// How often changed customers are recomputed.
    pub refresh_every: Duration,
}

impl Default for ChurnOptions {
    fn default() -> Self {
        ChurnOptions {
            features: FeatureConfig::default(),
            cutoffs: 4,
            max_training_profiles: 50_000,
            retrain_every: Some(Duration::from_secs(24 * 3600)),
            jump_threshold: 0.2,
            alert_floor: 0.5,
            refresh_every: Duration::from_secs(2),
        }
    }
}

impl ChurnOptions {
    /// Every problem at once.
    pub fn check(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.features.churn_events.is_empty() {
            p.push("churn.churn_events must name at least one event".into());
        }
        if !(1..=365).contains(&self.features.horizon_days) {
            p.push("churn.horizon_days must be 1 to 365".into());
        }
        if !(2..=24).contains(&self.cutoffs) {
            p.push("churn.cutoffs must be 2 to 24".into());
        }
        if self.max_training_profiles < 100 {
            p.push("churn.max_training_profiles must be at least 100".into());
        }
        if !(self.jump_threshold > 0.0 && self.jump_threshold < 1.0) {
            p.push("churn.jump_threshold must be between 0 and 1".into());
        }
        if !(0.0..1.0).contains(&self.alert_floor) {
            p.push("churn.alert_floor must be at least 0 and below 1".into());
        }
        if self.refresh_every < Duration::from_millis(100) {
            p.push("churn.refresh_every must be at least 100ms".into());
        }
        p
    }
}

/// A stored model as loaded, whatever its kind.
#[derive(Clone)]
pub(crate) enum Body {
    Churn(Arc<Classifier>),
    Clv(Arc<rapport_predict::clv::ClvModel>),
    Escalation(Arc<rapport_predict::escalation::EscalationModel>),
}

impl Body {
    fn parse(kind: &str, version: i64, text: &str) -> Result<Body, ChurnError> {
        let corrupt =
            |e: PredictError| ChurnError::Corrupt(format!("{kind} model version {version}: {e}"));
        match kind {
            crate::clv::KIND => rapport_predict::clv::ClvModel::from_json(text)
                .map(|m| Body::Clv(Arc::new(m)))
                .map_err(corrupt),
            crate::escalation::KIND => serde_json::from_str(text)
                .map(|m| Body::Escalation(Arc::new(m)))
                .map_err(|e| ChurnError::Corrupt(format!("{kind} model version {version}: {e}"))),
            _ => Classifier::from_json(text, &format!("{kind} model version {version}"))
                .map(|m| Body::Churn(Arc::new(m)))
                .map_err(corrupt),
        }
    }
}

/// A loaded model and the version it is.
#[derive(Clone)]
struct Loaded {
    version: Option<i64>,
    model: Option<Body>,
    checked: Instant,
}

/// The in-process part: customers waiting to be recomputed, and the loaded models.
#[derive(Default)]
pub struct ChurnState {
    dirty: Mutex<HashMap<WorkspaceId, BTreeSet<String>>>,
    models: RwLock<HashMap<(WorkspaceId, &'static str), Loaded>>,
    /// When this process last tried a scheduled training per workspace, so a workspace whose
    /// data cannot train a model is not read again every minute.
    attempts: Mutex<HashMap<WorkspaceId, Instant>>,
}

impl ChurnState {
    /// Marks customers for recomputation.
    pub fn mark<'a>(&self, ws: &WorkspaceId, ids: impl IntoIterator<Item = &'a ProfileId>) {
        let mut d = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        let set = d.entry(ws.clone()).or_default();
        set.extend(ids.into_iter().map(|p| p.as_str().to_owned()));
        if set.is_empty() {
            d.remove(ws);
        }
    }

    fn take(&self) -> Vec<(WorkspaceId, Vec<ProfileId>)> {
        let mut d = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *d)
            .into_iter()
            .map(|(ws, ids)| (ws, ids.into_iter().map(ProfileId::from_trusted).collect()))
            .collect()
    }

    /// How many customers wait to be recomputed.
    pub fn pending(&self) -> usize {
        let d = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        d.values().map(BTreeSet::len).sum()
    }
}

/// Why churn training or scoring failed.
#[derive(Debug, thiserror::Error)]
pub enum ChurnError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The workspace's data cannot train a model (no churn events, too few of a class).
    #[error("{0}")]
    Insufficient(String),
    #[error("the stored model cannot be read: {0}")]
    Corrupt(String),
    /// A model kind that is not trained on workspace data.
    #[error("no model kind {0:?}: the kinds are churn, clv and escalation")]
    UnknownKind(String),
}

/// One training row: the cut-off's index (0 the newest), the features then, the label.
pub type Snapshot = (usize, FeatureVector, Option<bool>);

/// What a training did and how the model scored on the held-out cut-off.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub version: ModelVersion,
    pub summary: Value,
}

/// A customer's churn score with its explanation.
fn score_json(model: &Classifier, version: i64, vector: &FeatureVector) -> Value {
    let table = features::table(&[(vector.clone(), None)], None);
    match model.encode(&table) {
        Ok(enc) => {
            let exp = model.explain(&table, &enc, 0);
            json!({
                "probability": (exp.probability * 10_000.0).round() / 10_000.0,
                "version": version,
                "model": exp.model,
                "base_log_odds": exp.base_log_odds,
                "contributions": exp.contributions.iter().take(8).map(|c| json!({
                    "feature": c.feature, "value": c.value, "log_odds": (c.contribution * 10_000.0).round() / 10_000.0,
                })).collect::<Vec<_>>(),
                "missing": exp.gaps.iter().map(|g| g.feature.clone()).collect::<Vec<_>>(),
            })
        }
        Err(e) => json!({"version": version, "error": e.to_string()}),
    }
}

/// The facts features read, from the store's rows.
fn event_fact(e: &rapport_store::StoredEvent) -> EventFact {
    let obj = |k: &str| {
        e.body
            .get(k)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    EventFact {
        at: e.timestamp,
        kind: match e.event_type {
            EventType::Identify => FactKind::Identify,
            EventType::Track => FactKind::Track,
            EventType::Page | EventType::Screen => FactKind::View,
            _ => FactKind::Other,
        },
        name: e.name.clone(),
        channel: e.channel.as_str().to_owned(),
        properties: obj("properties"),
        traits: obj("traits"),
    }
}

impl Engine {
    /// Everything the store holds about a customer, as features read it.
    pub async fn churn_history(
        &self,
        ws: &WorkspaceId,
        id: &ProfileId,
    ) -> Result<History, StoreError> {
        let mut history = self.event_history(ws, id).await?;
        self.add_conversations(ws, id, &mut history).await?;
        Ok(history)
    }

    /// A customer's events (the newest few thousand), as features read them.
    pub async fn event_history(
        &self,
        ws: &WorkspaceId,
        id: &ProfileId,
    ) -> Result<History, StoreError> {
        let mut history = History::default();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .profile_events(ws, id, cursor.as_ref(), 1_000)
                .await?;
            history.events.extend(page.events.iter().map(event_fact));
            match page
                .next_cursor
                .and_then(|c| rapport_store::EventCursor::decode(&c))
            {
                Some(c) if history.events.len() < EVENTS_READ => cursor = Some(c),
                _ => break,
            }
        }
        Ok(history)
    }

    async fn add_conversations(
        &self,
        ws: &WorkspaceId,
        id: &ProfileId,
        history: &mut History,
    ) -> Result<(), StoreError> {
        for c in self.store.profile_conversations(ws, id).await? {
            let closed = c.status == rapport_core::ConversationStatus::Closed;
            history.conversations.push(ConversationFact {
                opened_at: c.opened_at,
                closed_at: closed.then_some(c.updated_at),
            });
            if let Some(detail) = self.store.conversation(ws, &c.id).await? {
                for m in detail
                    .messages
                    .iter()
                    .filter(|m| m.direction == Direction::Inbound)
                {
                    let Some(a) = &m.analysis else { continue };
                    history.messages.push(MessageFact {
                        at: m.sent_at,
                        sentiment: a.pointer("/sentiment/score").and_then(Value::as_f64),
                        effort: a.pointer("/effort/score").and_then(Value::as_f64),
                    });
                }
            }
        }
        Ok(())
    }

    /// The active churn model of a workspace, re-read when another version became active (at
    /// most every few seconds, unless `fresh`).
    async fn churn_model(
        &self,
        ws: &WorkspaceId,
        fresh: bool,
    ) -> Result<Option<(i64, Arc<Classifier>)>, ChurnError> {
        Ok(match self.active_model_of(ws, KIND, fresh).await? {
            Some((v, Body::Churn(m))) => Some((v, m)),
            _ => None,
        })
    }

    /// The active model of a kind, cached per workspace and re-read when another version
    /// became active (checked at most every few seconds, unless `fresh`).
    pub(crate) async fn active_model_of(
        &self,
        ws: &WorkspaceId,
        kind: &'static str,
        fresh: bool,
    ) -> Result<Option<(i64, Body)>, ChurnError> {
        let key = (ws.clone(), kind);
        let cached = {
            let m = self.churn.models.read().unwrap_or_else(|e| e.into_inner());
            m.get(&key).cloned()
        };
        if let Some(l) = &cached {
            if !fresh && l.checked.elapsed() < VERSION_CHECK {
                return Ok(l.version.zip(l.model.clone()));
            }
        }
        let active = self.store.active_model_version(ws, kind).await?;
        let empty = Loaded {
            version: None,
            model: None,
            checked: Instant::now(),
        };
        let loaded = match (&cached, active) {
            (Some(l), v) if l.version == v => Loaded {
                checked: Instant::now(),
                ..l.clone()
            },
            (_, None) => empty,
            (_, Some(_)) => match self.store.active_model(ws, kind).await? {
                Some((v, body)) => {
                    let model = Body::parse(kind, v.version, &body)?;
                    tracing::info!(workspace = %ws, kind, version = v.version, "model loaded");
                    Loaded {
                        version: Some(v.version),
                        model: Some(model),
                        checked: Instant::now(),
                    }
                }
                None => empty,
            },
        };
        let out = loaded.version.zip(loaded.model.clone());
        self.churn
            .models
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, loaded);
        Ok(out)
    }

    /// Recomputes customers' features and scores now, stores them, and raises risk-jump
    /// alerts. Returns the rows written.
    pub async fn refresh_churn(
        &self,
        ws: &WorkspaceId,
        ids: &[ProfileId],
    ) -> Result<Vec<ProfileFeatures>, ChurnError> {
        let model = self.churn_model(ws, false).await?;
        let clv = self.clv_model(ws, false).await?;
        let config = &self.options.churn.features;
        let mut rows = Vec::new();
        let mut seen = BTreeSet::new();
        for id in ids {
            let Some(profile) = self.store.profile(ws, id).await? else {
                continue; // erased, or never there
            };
            if !seen.insert(profile.id.as_str().to_owned()) {
                continue;
            }
            let history = self.churn_history(ws, &profile.id).await?;
            let now = Utc::now();
            let vector = features::compute(&history, config, now);
            let mut scores = Map::new();
            let churned = features::churned_at(&history, config, now);
            let score = match (&churned, &model) {
                (Some(at), _) => json!({"status": "churned", "at": at}),
                (None, Some((version, m))) => score_json(m, *version, &vector),
                (None, None) => json!({"status": "no_model"}),
            };
            scores.insert(KIND.into(), score);
            scores.insert(
                crate::clv::KIND.into(),
                crate::clv::score_json(clv.as_ref(), &history, &profile.id, now),
            );
            let row = ProfileFeatures {
                profile_id: profile.id.clone(),
                computed_at: now,
                features: vector.to_json(),
                scores,
            };
            let before = self.store.profile_features(ws, &profile.id).await?;
            self.churn_jump(ws, before.as_ref(), &row).await?;
            rows.push(row);
        }
        for chunk in rows.chunks(CHUNK) {
            self.store.save_profile_features(ws, chunk.to_vec()).await?;
        }
        Ok(rows)
    }

    /// The live churn model's latest probability for a customer, if one was computed.
    pub(crate) async fn live_churn_risk(
        &self,
        ws: &WorkspaceId,
        id: &ProfileId,
    ) -> Result<Option<f64>, StoreError> {
        Ok(self
            .store
            .profile_features(ws, id)
            .await?
            .and_then(|f| f.scores.get(KIND)?.get("probability")?.as_f64())
            .filter(|p| (0.0..=1.0).contains(p)))
    }

    /// A customer's stored features, computed now when none are stored yet.
    pub async fn profile_churn(
        &self,
        ws: &WorkspaceId,
        id: &ProfileId,
    ) -> Result<Option<ProfileFeatures>, ChurnError> {
        if let Some(row) = self.store.profile_features(ws, id).await? {
            return Ok(Some(row));
        }
        Ok(self
            .refresh_churn(ws, std::slice::from_ref(id))
            .await?
            .pop())
    }

    async fn churn_jump(
        &self,
        ws: &WorkspaceId,
        before: Option<&ProfileFeatures>,
        after: &ProfileFeatures,
    ) -> Result<(), StoreError> {
        let read = |r: &ProfileFeatures| {
            let s = r.scores.get(KIND)?;
            Some((s.get("version")?.as_i64()?, s.get("probability")?.as_f64()?))
        };
        let (Some((v0, p0)), Some((v1, p1))) = (before.and_then(read), read(after)) else {
            return Ok(());
        };
        let o = &self.options.churn;
        // A new model version moves scores on its own; only a change in the customer counts.
        if v0 != v1 || p1 - p0 < o.jump_threshold || p1 < o.alert_floor {
            return Ok(());
        }
        let contributions = after
            .scores
            .get(KIND)
            .and_then(|s| s.get("contributions"))
            .cloned()
            .unwrap_or(Value::Null);
        let alert = Alert::new(
            "churn.risk_jump",
            Severity::Warning,
            format!(
                "Churn risk jumped from {:.0}% to {:.0}%",
                p0 * 100.0,
                p1 * 100.0
            ),
            Some(after.profile_id.as_str().to_owned()),
            json!({
                "profile_id": after.profile_id, "before": p0, "after": p1,
                "before_at": before.map(|b| b.computed_at), "after_at": after.computed_at,
                "model_version": v1, "threshold": o.jump_threshold, "floor": o.alert_floor,
                "contributions": contributions,
            }),
        );
        self.raise_alert(ws, alert).await.map(|_| ())
    }

    /// Trains a churn model on the workspace's data (see the module's notes), stores it as a
    /// new version and, when `activate` says so (or, unset, when it beats the active one on
    /// its held-out cut-off), makes it the active one and rescores every customer in the
    /// background.
    pub async fn train_churn(
        self: &Arc<Self>,
        ws: &WorkspaceId,
        by: Actor,
        activate: Option<bool>,
    ) -> Result<TrainReport, ChurnError> {
        let o = self.options.churn.clone();
        let started = Instant::now();
        let now = Utc::now();
        let (profiles, snapshots) = self.churn_snapshots(ws, now).await?;
        let read_secs = started.elapsed().as_secs_f64();
        let fit_started = Instant::now();
        let config = o.features.clone();
        let (model, summary) = tokio::task::spawn_blocking(move || fit(snapshots, &config))
            .await
            .map_err(|e| ChurnError::Insufficient(format!("training stopped: {e}")))??;
        let active = self.churn_model(ws, true).await?;
        let holdout_auc = summary.pointer("/holdout/roc_auc").and_then(Value::as_f64);
        let active_auc = match &active {
            Some((v, _)) => self
                .store
                .model_versions(ws, KIND)
                .await?
                .into_iter()
                .find(|m| m.version == *v)
                .and_then(|m| {
                    m.summary
                        .pointer("/holdout/roc_auc")
                        .and_then(Value::as_f64)
                }),
            None => None,
        };
        let activate = activate.unwrap_or(match (active.is_some(), holdout_auc, active_auc) {
            (false, _, _) => true,
            (true, Some(new), Some(old)) => new >= old - 0.005,
            (true, Some(_), None) => true,
            (true, None, _) => false,
        });
        let mut summary = summary;
        summary["profiles_read"] = json!(profiles);
        summary["read_seconds"] = json!((read_secs * 1000.0).round() / 1000.0);
        summary["fit_seconds"] =
            json!((fit_started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
        summary["trained_at"] = json!(now);
        let body = model.to_json();
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
                    body,
                    activate,
                },
                vec![audit],
            )
            .await?;
        if activate {
            self.churn_model(ws, true).await?;
            self.rescore_all(ws);
        }
        Ok(TrainReport { version, summary })
    }

    /// The training snapshots as of `now`: for each of the most recently active customers and
    /// each past cut-off (0 the newest) where they can be labelled, their features at the
    /// cut-off and whether they left within the horizon after it. Returns how many customers
    /// were read too.
    pub async fn churn_snapshots(
        &self,
        ws: &WorkspaceId,
        now: DateTime<Utc>,
    ) -> Result<(usize, Vec<Snapshot>), ChurnError> {
        let o = &self.options.churn;
        let profiles = self
            .store
            .recent_profiles(ws, o.max_training_profiles)
            .await?;
        let horizon = chrono::Duration::days(i64::from(o.features.horizon_days));
        let cutoffs: Vec<DateTime<Utc>> =
            (1..=o.cutoffs as i32).map(|k| now - horizon * k).collect();
        let mut snapshots = Vec::new();
        for p in &profiles {
            let history = self.churn_history(ws, &p.id).await?;
            for (k, cut) in cutoffs.iter().enumerate() {
                if let Some(label) = features::churn_label(&history, &o.features, *cut) {
                    snapshots.push((
                        k,
                        features::compute(&history, &o.features, *cut),
                        Some(label),
                    ));
                }
            }
        }
        Ok((profiles.len(), snapshots))
    }

    /// Makes an earlier (or later) churn model version the active one and rescores.
    pub async fn activate_churn(
        self: &Arc<Self>,
        ws: &WorkspaceId,
        version: i64,
        by: Actor,
    ) -> Result<ModelVersion, ChurnError> {
        self.activate_model(ws, KIND, version, by).await
    }

    /// Queues every (recently active) customer of the workspace for recomputation.
    pub(crate) fn rescore_all(self: &Arc<Self>, ws: &WorkspaceId) {
        let (engine, ws) = (self.clone(), ws.clone());
        tokio::spawn(async move {
            match engine
                .store
                .recent_profiles(&ws, engine.options.churn.max_training_profiles)
                .await
            {
                Ok(all) => {
                    let ids: Vec<ProfileId> = all.into_iter().map(|p| p.id).collect();
                    engine.churn.mark(&ws, &ids);
                }
                Err(e) => tracing::warn!(error = %e, "listing customers to rescore failed"),
            }
        });
    }

    /// Whether a scheduled training is due: no version yet, or the newest is older than the
    /// schedule's period.
    async fn training_due(
        &self,
        ws: &WorkspaceId,
        kind: &str,
        every: Duration,
    ) -> Result<bool, StoreError> {
        let newest = self
            .store
            .model_versions(ws, kind)
            .await?
            .into_iter()
            .next();
        Ok(match newest {
            None => true,
            Some(v) => (Utc::now() - v.created_at).to_std().unwrap_or_default() >= every,
        })
    }
}

/// Fits the evaluation model (older cut-offs) and the stored model (every cut-off).
fn fit(
    snapshots: Vec<Snapshot>,
    config: &FeatureConfig,
) -> Result<(Classifier, Value), ChurnError> {
    let label = "churned";
    let positives = snapshots.iter().filter(|s| s.2 == Some(true)).count();
    if positives == 0 {
        return Err(ChurnError::Insufficient(format!(
            "no customer left within {} days of any cut-off: the workspace has no churn events ({}) to learn from",
            config.horizon_days,
            config.churn_events.join(", ")
        )));
    }
    let mut opts = TrainOptions::new(label);
    opts.positive = Some("1".into());
    let rows = |keep: &dyn Fn(usize) -> bool| {
        snapshots
            .iter()
            .filter(|s| keep(s.0))
            .map(|s| (s.1.clone(), s.2))
            .collect::<Vec<_>>()
    };
    let older = rows(&|k| k > 0);
    let newest = rows(&|k| k == 0);
    let holdout = match Classifier::train(&features::table(&older, Some(label)), &opts) {
        Ok(m) => evaluate(&m, &newest),
        Err(e) => json!({"skipped": e.to_string()}),
    };
    let all = rows(&|_| true);
    let model =
        Classifier::train(&features::table(&all, Some(label)), &opts).map_err(|e| match e {
            PredictError::ConstantLabel { .. }
            | PredictError::NoPositives { .. }
            | PredictError::TooFewRows { .. } => ChurnError::Insufficient(format!(
                "the workspace's snapshots cannot train a model: {e}"
            )),
            other => ChurnError::Insufficient(other.to_string()),
        })?;
    let summary = json!({
        "rows": all.len(),
        "positives": positives,
        "cutoffs": snapshots.iter().map(|s| s.0).max().map_or(0, |k| k + 1),
        "horizon_days": config.horizon_days,
        "churn_events": config.churn_events,
        "features": model.features.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
        "holdout": holdout,
        "training": model.training,
    });
    Ok((model, summary))
}

/// ROC-AUC, PR-AUC and Brier score of a model on the held-out cut-off.
fn evaluate(model: &Classifier, rows: &[(FeatureVector, Option<bool>)]) -> Value {
    let y: Vec<bool> = rows.iter().map(|r| r.1 == Some(true)).collect();
    if !y.iter().any(|b| *b) || y.iter().all(|b| *b) {
        return json!({"rows": rows.len(), "skipped": "the held-out cut-off has one class only"});
    }
    let table = features::table(rows, None);
    let Ok(enc) = model.encode(&table) else {
        return json!({"skipped": "the held-out rows could not be encoded"});
    };
    let p: Vec<f64> = (0..enc.rows())
        .map(|r| model.probability(enc.row(r)))
        .collect();
    let e = rapport_predict::metrics::evaluate(&y, &p);
    json!({
        "rows": rows.len(),
        "positives": y.iter().filter(|b| **b).count(),
        "roc_auc": e.roc_auc,
        "pr_auc": e.pr_auc,
        "brier": e.brier,
        "log_loss": e.log_loss,
        "note": "trained on the older cut-offs, measured on the newest",
    })
}

/// Runs for the life of the process: recomputes marked customers every `refresh_every`, and,
/// with `schedule` (API nodes; workers only keep features current), trains on schedule.
pub fn spawn(engine: Arc<Engine>, schedule: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let o = engine.options.churn.clone();
        let mut tick = tokio::time::interval(o.refresh_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_schedule_check = Instant::now();
        loop {
            tick.tick().await;
            for (ws, ids) in engine.churn.take() {
                if let Err(e) = engine.refresh_churn(&ws, &ids).await {
                    tracing::warn!(workspace = %ws, error = %e, "recomputing churn features failed");
                    if matches!(e, ChurnError::Store(StoreError::Unavailable(_))) {
                        // Try again on the next pass.
                        engine.churn.mark(&ws, &ids);
                    }
                }
            }
            let Some(every) = o.retrain_every.filter(|_| schedule) else {
                continue;
            };
            if last_schedule_check.elapsed() < Duration::from_secs(60) {
                continue;
            }
            last_schedule_check = Instant::now();
            let Ok(workspaces) = engine.store.list_workspaces().await else {
                continue;
            };
            for w in workspaces {
                {
                    let mut tried = engine
                        .churn
                        .attempts
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    if tried.get(&w.id).is_some_and(|t| t.elapsed() < every) {
                        continue;
                    }
                    tried.insert(w.id.clone(), Instant::now());
                }
                let clv_every = engine.options.clv.retrain_every;
                for (kind, every) in [
                    (KIND, Some(every)),
                    (crate::escalation::KIND, Some(every)),
                    (crate::clv::KIND, clv_every),
                ] {
                    let Some(every) = every else { continue };
                    match engine.training_due(&w.id, kind, every).await {
                        Ok(true) => {
                            match engine.train_model(&w.id, kind, Actor::System, None).await {
                                Ok(r) => {
                                    tracing::info!(workspace = %w.name, kind, version = r.version.version, active = r.version.active, "scheduled training")
                                }
                                Err(ChurnError::Insufficient(why)) => {
                                    tracing::debug!(workspace = %w.name, kind, %why, "no model trained")
                                }
                                Err(e) => {
                                    tracing::warn!(workspace = %w.name, kind, error = %e, "scheduled training failed")
                                }
                            }
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "checking the training schedule failed")
                        }
                    }
                }
            }
        }
    })
}
