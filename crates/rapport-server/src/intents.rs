//! Per-workspace intent models: agents correct the intent read in customers' messages, and a
//! retraining turns the workspace's taxonomy plus those corrections into a new, numbered
//! model version that the engine reads messages with from then on, on every node, without a
//! restart.
//!
//! How a node finds a workspace's model: [`IntentModels`] keeps one interpreter per workspace
//! with the version it was built from. A message's analysis takes the cached interpreter;
//! once per `check_every` (and after this node retrains or activates a version) it asks the
//! store which version is active (one small row) and loads that version's bytes only when it
//! changed. So the hot path costs a read lock and a map lookup, and another node's retraining
//! is picked up within `check_every`.
//!
//! The taxonomy every workspace starts from (and today keeps) is the default CX taxonomy;
//! corrections name its intents or mark a message out of scope (see
//! [`rapport_interpret::intent_retrain`] for how they are weighed and evaluated).
//!
//! A node with the neural path also trains an intent head on the same phrases and
//! corrections when it retrains, and stores it with the version ([`WITH_HEAD`]); nodes with
//! the neural path then read that version's intents with the head mixed with the n-gram
//! model, as they read the taxonomy's. Versions without a head (trained by a node without the
//! neural path, or before heads were kept) are read by their n-gram model alone.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rapport_core::error::{Coded, ErrorKind};
use rapport_core::{Actor, AuditEntry, ConversationId, WorkspaceId};
use rapport_interpret::intent_retrain::{
    retrain as retrain_classifier, training_set, CorrectionExample, RetrainReport,
    DEFAULT_CORRECTION_WEIGHT,
};
use rapport_interpret::{
    IntentClassifier, IntentConfig, IntentTaxonomy, Interpreter, MessageAnalysis,
};
use rapport_store::{
    ActiveIntentModel, CorrectionQuery, IntentCorrection, IntentModelDraft, IntentModelRecord,
    Store, StoreError,
};
use serde::Serialize;
use serde_json::json;

/// How often a node asks the store which intent model version is active, by default.
pub const DEFAULT_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Most corrections one retraining reads.
pub const MAX_TRAINING_CORRECTIONS: usize = 100_000;

/// What can go wrong with corrections and intent models.
#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    UnknownIntent(String),
    #[error("{0}")]
    InvalidCorrection(String),
    #[error("{0}")]
    NotAnalysed(String),
    #[error("intent model: {0}")]
    Model(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Coded for IntentError {
    fn kind(&self) -> ErrorKind {
        match self {
            IntentError::NotFound(_) => ErrorKind::NotFound,
            IntentError::UnknownIntent(_)
            | IntentError::InvalidCorrection(_)
            | IntentError::NotAnalysed(_) => ErrorKind::InvalidInput,
            IntentError::Model(_) => ErrorKind::Internal,
            IntentError::Store(e) => e.kind(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            IntentError::NotFound(_) => "not_found",
            IntentError::UnknownIntent(_) => "unknown_intent",
            IntentError::InvalidCorrection(_) => "invalid_correction",
            IntentError::NotAnalysed(_) => "message_not_analysed",
            IntentError::Model(_) => "internal",
            IntentError::Store(e) => e.code(),
        }
    }
}

#[derive(Clone)]
struct Slot {
    version: i64,
    interpreter: Arc<Interpreter>,
    checked: Instant,
}

/// The interpreter of each workspace, by the intent model version it was built from.
pub struct IntentModels {
    base: Arc<Interpreter>,
    check_every: Duration,
    cache: RwLock<HashMap<WorkspaceId, Slot>>,
}

impl IntentModels {
    /// `base` reads workspaces without a model of their own (version 0).
    pub fn new(base: Arc<Interpreter>, check_every: Duration) -> Self {
        Self {
            base,
            check_every,
            cache: RwLock::default(),
        }
    }

    /// The interpreter with the built-in default intent model.
    pub fn base(&self) -> &Arc<Interpreter> {
        &self.base
    }

    fn cached(&self, ws: &WorkspaceId) -> Option<Slot> {
        self.cache.read().ok().and_then(|c| c.get(ws).cloned())
    }

    fn keep(&self, ws: &WorkspaceId, slot: Slot) {
        if let Ok(mut c) = self.cache.write() {
            c.insert(ws.clone(), slot);
        }
    }

    /// The interpreter for `ws`'s messages now. A store that cannot be read leaves the last
    /// known model in use (logged), so reading messages never fails for it.
    pub async fn interpreter(&self, store: &dyn Store, ws: &WorkspaceId) -> Arc<Interpreter> {
        let cached = self.cached(ws);
        if let Some(slot) = &cached {
            if slot.checked.elapsed() < self.check_every {
                return slot.interpreter.clone();
            }
        }
        let fallback = cached
            .as_ref()
            .map_or_else(|| self.base.clone(), |s| s.interpreter.clone());
        let version = match store.active_intent_model(ws).await {
            Ok(a) => a.version,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the active intent model; keeping the last one");
                return fallback;
            }
        };
        let interpreter = match cached.filter(|s| s.version == version) {
            Some(slot) => slot.interpreter,
            None => match self.load(store, ws, version).await {
                Ok(i) => i,
                Err(e) => {
                    tracing::warn!(error = %e, version, "could not load an intent model; keeping the last one");
                    return fallback;
                }
            },
        };
        self.keep(
            ws,
            Slot {
                version,
                interpreter: interpreter.clone(),
                checked: Instant::now(),
            },
        );
        interpreter
    }

    async fn load(
        &self,
        store: &dyn Store,
        ws: &WorkspaceId,
        version: i64,
    ) -> Result<Arc<Interpreter>, IntentError> {
        if version == 0 {
            return Ok(self.base.clone());
        }
        let (clf, head) = load_model(store, ws, version).await?;
        let base = self.base.clone();
        tokio::task::spawn_blocking(move || {
            let version = version.max(0) as u64;
            let with_head = base.with_intent_model_and_head(clf.clone(), version, head.as_deref());
            Arc::new(with_head.unwrap_or_else(|e| {
                tracing::warn!(error = %e, version, "the neural intent head of this version does not fit; reading its intents with its n-gram model alone");
                base.with_intent_model(clf, version)
            }))
        })
        .await
        .map_err(|e| IntentError::Model(e.to_string()))
    }

    /// Makes the next message of `ws` ask the store again (after this node changed the
    /// active version).
    pub fn forget(&self, ws: &WorkspaceId) {
        if let Ok(mut c) = self.cache.write() {
            c.remove(ws);
        }
    }
}

/// Marks stored model bytes that carry a neural intent head after the n-gram model: the
/// marker, the model's length (8 bytes, little-endian), the model, then the head as JSON.
/// Bytes without it are the n-gram model alone, as every version stored before heads were.
const WITH_HEAD: &[u8] = b"rapport-intents+head/1\n";

/// The bytes to store for a version: the model alone, or the model and its head.
fn bundle(model: Vec<u8>, head: Option<String>) -> Vec<u8> {
    let Some(head) = head else {
        return model;
    };
    let mut out = Vec::with_capacity(WITH_HEAD.len() + 8 + model.len() + head.len());
    out.extend_from_slice(WITH_HEAD);
    out.extend_from_slice(&(model.len() as u64).to_le_bytes());
    out.extend_from_slice(&model);
    out.extend_from_slice(head.as_bytes());
    out
}

/// The model bytes and the head (JSON) of stored bytes; see [`WITH_HEAD`].
fn unbundle(bytes: &[u8]) -> Result<(&[u8], Option<&str>), IntentError> {
    let Some(rest) = bytes.strip_prefix(WITH_HEAD) else {
        return Ok((bytes, None));
    };
    let bad = || IntentError::Model("stored intent model: the model and head do not fit".into());
    let (len, rest) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
    let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| bad())?;
    if len > rest.len() {
        return Err(bad());
    }
    let (model, head) = rest.split_at(len);
    let head = std::str::from_utf8(head).map_err(|_| bad())?;
    Ok((model, Some(head)))
}

/// The classifier of a stored version, with its neural intent head (JSON) when it has one.
async fn load_model(
    store: &dyn Store,
    ws: &WorkspaceId,
    version: i64,
) -> Result<(IntentClassifier, Option<String>), IntentError> {
    let bytes = store
        .intent_model_bytes(ws, version)
        .await?
        .ok_or_else(|| IntentError::NotFound(format!("intent model version {version}")))?;
    tokio::task::spawn_blocking(move || {
        let (model, head) = unbundle(&bytes)?;
        let (clf, _) =
            IntentClassifier::from_bytes(model).map_err(|e| IntentError::Model(e.to_string()))?;
        Ok((clf, head.map(str::to_owned)))
    })
    .await
    .map_err(|e| IntentError::Model(e.to_string()))?
}

/// The classifier of a stored version.
async fn load_classifier(
    store: &dyn Store,
    ws: &WorkspaceId,
    version: i64,
) -> Result<IntentClassifier, IntentError> {
    Ok(load_model(store, ws, version).await?.0)
}

/// What an agent says a message's intent is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorrectedIntent {
    Intent(String),
    OutOfScope,
}

impl CorrectedIntent {
    /// From the API's `{intent}` or `{out_of_scope: true}` (exactly one of them).
    pub fn from_parts(intent: Option<String>, out_of_scope: bool) -> Result<Self, IntentError> {
        match (intent.map(|i| i.trim().to_owned()), out_of_scope) {
            (Some(i), false) if !i.is_empty() => Ok(CorrectedIntent::Intent(i)),
            (None, true) => Ok(CorrectedIntent::OutOfScope),
            _ => Err(IntentError::InvalidCorrection(
                "give either an intent or out_of_scope: true".into(),
            )),
        }
    }

    fn label(&self) -> Option<&str> {
        match self {
            CorrectedIntent::Intent(i) => Some(i),
            CorrectedIntent::OutOfScope => None,
        }
    }
}

/// The intents a message of the workspace can be given (the active model's).
pub fn intent_labels(interpreter: &Interpreter) -> Vec<String> {
    interpreter
        .intent_classifier()
        .intents()
        .map(str::to_owned)
        .collect()
}

/// Records an agent's correction of the intent read in a message: the message's redacted
/// text, what the model read (label, confidence, version) and the agent's answer. Audited
/// under the customer's profile.
pub async fn correct(
    store: &dyn Store,
    models: &IntentModels,
    ws: &WorkspaceId,
    conversation: &ConversationId,
    message_id: &str,
    to: CorrectedIntent,
    actor: Actor,
) -> Result<IntentCorrection, IntentError> {
    let detail = store
        .conversation(ws, conversation)
        .await?
        .ok_or_else(|| IntentError::NotFound(format!("conversation {conversation}")))?;
    let message = detail
        .messages
        .iter()
        .find(|m| m.id.as_str() == message_id)
        .ok_or_else(|| IntentError::NotFound(format!("message {message_id}")))?;
    let analysis: MessageAnalysis = message
        .analysis
        .as_ref()
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .ok_or_else(|| {
            IntentError::NotAnalysed(format!(
                "message {message_id} has no analysis (only customers' messages are read)"
            ))
        })?;
    if let Some(label) = to.label() {
        let labels = intent_labels(&*models.interpreter(store, ws).await);
        if !labels.iter().any(|l| l == label) {
            return Err(IntentError::UnknownIntent(format!(
                "intent {label:?} is not in the workspace's taxonomy ({})",
                labels.join(", ")
            )));
        }
    }
    let correction = IntentCorrection {
        message_id: message_id.to_owned(),
        conversation_id: conversation.as_str().to_owned(),
        profile_id: detail.conversation.profile_id.clone(),
        // Personal data never enters a training set: only the redacted text is kept.
        text: analysis.redacted,
        predicted: analysis.intent.label.clone(),
        confidence: analysis.intent.confidence,
        model_version: analysis.model.intent_model_version.map_or(0, |v| v as i64),
        corrected: to.label().map(str::to_owned),
        corrected_by: actor.encode(),
        corrected_at: chrono::Utc::now(),
    };
    let entry = AuditEntry::new(
        Some(ws.clone()),
        actor,
        "intent.corrected",
        Some(detail.conversation.profile_id.as_str().to_owned()),
        json!({
            "message_id": message_id,
            "conversation_id": conversation.as_str(),
            "predicted": correction.predicted,
            "model_version": correction.model_version,
            "corrected": correction.corrected,
        }),
    );
    Ok(store
        .save_intent_correction(ws, correction, vec![entry])
        .await?)
}

/// A retraining's result: the stored version and how it scored.
#[derive(Debug, Clone, Serialize)]
pub struct RetrainOutcome {
    pub model: IntentModelRecord,
    pub report: RetrainReport,
    /// The version in use before.
    pub previous_version: i64,
    /// Whether the engine switched to the new version.
    pub activated: bool,
}

/// Trains a new version of the workspace's intent model from the default taxonomy and every
/// correction, judges it against the version in use on the corrections (cross-validated for
/// the new one), stores it, and activates it unless it reads the corrections worse than the
/// version in use (`force` activates it anyway). Audited.
///
/// When `neural` is an interpreter with the neural path, the version also carries an intent
/// head trained with its embedding model on the same taxonomy phrases and corrections, which
/// nodes with the neural path read its intents with (mixed with the n-gram model, as for the
/// taxonomy); nodes without it, and versions without a head, read intents with the n-gram
/// model alone.
pub async fn retrain(
    store: &dyn Store,
    ws: &WorkspaceId,
    actor: Actor,
    force: bool,
    neural: Option<Arc<Interpreter>>,
) -> Result<RetrainOutcome, IntentError> {
    let previous = store.active_intent_model(ws).await?.version;
    let old = if previous == 0 {
        None
    } else {
        Some(load_classifier(store, ws, previous).await?)
    };
    let corrections: Vec<CorrectionExample> = store
        .intent_corrections(CorrectionQuery {
            workspace: ws.clone(),
            conversation: None,
            limit: MAX_TRAINING_CORRECTIONS,
        })
        .await?
        .into_iter()
        .map(|c| CorrectionExample {
            text: c.text,
            intent: c.corrected,
        })
        .collect();
    let (clf, report, head) = tokio::task::spawn_blocking(move || {
        let taxonomy = IntentTaxonomy::default_cx();
        let old = match old {
            Some(o) => o,
            None => IntentClassifier::train(&taxonomy, IntentConfig::default())?,
        };
        let (clf, report) = retrain_classifier(
            &taxonomy,
            &corrections,
            &old,
            DEFAULT_CORRECTION_WEIGHT,
            IntentConfig::default(),
        )?;
        let head = match neural.filter(|n| n.has_neural()) {
            Some(n) => {
                let (labels, examples) =
                    training_set(&taxonomy, &corrections, DEFAULT_CORRECTION_WEIGHT);
                n.train_neural_intent_head(&labels, &examples)?
            }
            None => None,
        };
        Ok::<_, rapport_interpret::InterpretError>((clf, report, head))
    })
    .await
    .map_err(|e| IntentError::Model(e.to_string()))?
    .map_err(|e| IntentError::Model(e.to_string()))?;
    let activate = force || report.new_accuracy >= report.old_accuracy;
    let note = format!(
        "workspace {ws}: default taxonomy + {} corrections",
        report.corrections
    );
    let neural_head = head.is_some();
    let bytes = bundle(
        clf.to_bytes(&note)
            .map_err(|e| IntentError::Model(e.to_string()))?,
        head,
    );
    let mut summary = serde_json::to_value(&report).unwrap_or_default();
    if let Some(m) = summary.as_object_mut() {
        m.insert("taxonomy".into(), json!("default_cx"));
        m.insert("trained_over_version".into(), json!(previous));
        m.insert("neural_head".into(), json!(neural_head));
    }
    let entry = AuditEntry::new(
        Some(ws.clone()),
        actor.clone(),
        "intent.model_trained",
        None,
        json!({
            "activated": activate,
            "previous_version": previous,
            "corrections": report.corrections,
            "old_accuracy": report.old_accuracy,
            "new_accuracy": report.new_accuracy,
        }),
    );
    let model = store
        .save_intent_model(
            ws,
            IntentModelDraft {
                created_by: actor.encode(),
                summary,
                model: bytes,
                activate,
            },
            vec![entry],
        )
        .await?;
    Ok(RetrainOutcome {
        model,
        report,
        previous_version: previous,
        activated: activate,
    })
}

/// Makes an earlier (or any stored) version the one messages are read with; 0 is the
/// built-in default. Audited.
pub async fn activate(
    store: &dyn Store,
    ws: &WorkspaceId,
    version: i64,
    actor: Actor,
) -> Result<ActiveIntentModel, IntentError> {
    if version < 0 {
        return Err(IntentError::NotFound(format!(
            "intent model version {version}"
        )));
    }
    let previous = store.active_intent_model(ws).await?.version;
    let entry = AuditEntry::new(
        Some(ws.clone()),
        actor.clone(),
        "intent.model_activated",
        None,
        json!({"version": version, "previous_version": previous}),
    );
    Ok(store
        .activate_intent_model(ws, version, &actor.encode(), vec![entry])
        .await?)
}

impl crate::engine::Engine {
    /// [`correct`] in this engine's store.
    pub async fn correct_intent(
        &self,
        ws: &WorkspaceId,
        conversation: &ConversationId,
        message_id: &str,
        to: CorrectedIntent,
        actor: Actor,
    ) -> Result<IntentCorrection, IntentError> {
        let store = self.store.as_ref();
        correct(
            store,
            &self.intents,
            ws,
            conversation,
            message_id,
            to,
            actor,
        )
        .await
    }

    /// [`retrain`], then this node reads the workspace's next message with the version now
    /// active (other nodes within their check interval).
    pub async fn retrain_intents(
        &self,
        ws: &WorkspaceId,
        actor: Actor,
        force: bool,
    ) -> Result<RetrainOutcome, IntentError> {
        let base = Some(self.intents.base().clone());
        let out = retrain(self.store.as_ref(), ws, actor, force, base).await;
        self.intents.forget(ws);
        out
    }

    /// [`activate`], then this node reads the workspace's next message with that version.
    pub async fn activate_intent_model(
        &self,
        ws: &WorkspaceId,
        version: i64,
        actor: Actor,
    ) -> Result<ActiveIntentModel, IntentError> {
        let out = activate(self.store.as_ref(), ws, version, actor).await;
        self.intents.forget(ws);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bytes_carry_the_head_after_the_model_or_the_model_alone() {
        let model = b"RPIM model bytes".to_vec();
        // Without a head the bytes are the model's own, as before heads were kept.
        assert_eq!(bundle(model.clone(), None), model);
        assert_eq!(unbundle(&model).expect("plain"), (&model[..], None));
        let both = bundle(model.clone(), Some("{\"format\":1}".into()));
        assert!(both.starts_with(WITH_HEAD));
        assert_eq!(
            unbundle(&both).expect("bundle"),
            (&model[..], Some("{\"format\":1}"))
        );
        // An empty model and an empty head are still told apart.
        let empty = bundle(Vec::new(), Some(String::new()));
        assert_eq!(unbundle(&empty).expect("empty"), (&[][..], Some("")));
        // Cut short, a length past the end, or a head that is not UTF-8: refused.
        for bad in [
            both[..WITH_HEAD.len() + 3].to_vec(),
            [WITH_HEAD, &u64::MAX.to_le_bytes()[..], b"x"].concat(),
            [WITH_HEAD, &0u64.to_le_bytes()[..], &[0xff, 0xfe][..]].concat(),
        ] {
            assert!(unbundle(&bad).is_err(), "{bad:?}");
        }
    }
}
