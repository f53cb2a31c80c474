//! Intent corrections and the workspace's intent model versions: agents correct the intent
//! read in a message; admins retrain and choose the version in use (see [`crate::intents`]).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use rapport_core::ConversationId;
use rapport_store::{CorrectionQuery, IntentCorrection, IntentModelRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::extract::{Json, Path};
use crate::auth::{perm, Can};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::intents::{self as intent_models, CorrectedIntent, IntentError};
use crate::AppState;

impl From<IntentError> for ApiError {
    fn from(e: IntentError) -> Self {
        if let IntentError::Model(detail) = &e {
            tracing::error!(error = %detail, "intent model failure");
        }
        Self::from_coded(&e)
    }
}

/// What an agent says a message's intent is: an intent of the taxonomy, or out of scope.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentCorrectionRequest {
    /// An intent of the workspace's taxonomy (see `GET /v1/intents/models`).
    pub intent: Option<String>,
    /// True when the message fits no intent of the taxonomy.
    #[serde(default)]
    pub out_of_scope: bool,
}

/// A stored correction.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntentCorrectionDto {
    pub message_id: String,
    pub conversation_id: String,
    pub profile_id: String,
    /// The message with personal data replaced by placeholders (what training reads).
    pub text: String,
    /// What the model read; null when it answered out of scope.
    pub predicted: Option<String>,
    pub confidence: f32,
    /// The intent model version that read it (0: the built-in default).
    pub model_version: i64,
    /// The agent's answer; null for out of scope.
    pub corrected: Option<String>,
    pub out_of_scope: bool,
    pub corrected_by: String,
    pub corrected_at: String,
}

impl From<IntentCorrection> for IntentCorrectionDto {
    fn from(c: IntentCorrection) -> Self {
        Self {
            out_of_scope: c.corrected.is_none(),
            message_id: c.message_id,
            conversation_id: c.conversation_id,
            profile_id: c.profile_id.as_str().to_owned(),
            text: c.text,
            predicted: c.predicted,
            confidence: c.confidence,
            model_version: c.model_version,
            corrected: c.corrected,
            corrected_by: c.corrected_by,
            corrected_at: c.corrected_at.to_rfc3339(),
        }
    }
}

/// One version of the workspace's intent model.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntentModelDto {
    pub version: i64,
    pub created_at: String,
    pub created_by: String,
    /// Training counts and evaluation figures (corrections, folds, old_accuracy,
    /// new_accuracy, taxonomy_accuracy, ...).
    #[schema(value_type = Object)]
    pub summary: Value,
    pub active: bool,
}

impl From<IntentModelRecord> for IntentModelDto {
    fn from(m: IntentModelRecord) -> Self {
        Self {
            version: m.version,
            created_at: m.created_at.to_rfc3339(),
            created_by: m.created_by,
            summary: m.summary,
            active: m.active,
        }
    }
}

/// The workspace's intent models.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntentModelsDto {
    /// The version messages are read with now (0: the built-in default).
    pub active_version: i64,
    /// The intents a message can be corrected to.
    pub intents: Vec<String>,
    /// Stored versions, newest first.
    pub versions: Vec<IntentModelDto>,
}

/// A retraining's result.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetrainDto {
    pub model: IntentModelDto,
    /// Whether messages are read with it now (false when it read the corrections worse than
    /// the version in use and `force` was not set).
    pub activated: bool,
    pub previous_version: i64,
    /// Counts and figures: corrections, out_of_scope_corrections, folds, old_accuracy,
    /// new_accuracy (cross-validated), taxonomy_accuracy.
    #[schema(value_type = Object)]
    pub report: Value,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrainRequest {
    /// Activate the new version even if it reads the corrections worse than the one in use.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CorrectionsQuery {
    /// Only this conversation's corrections.
    pub conversation: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// Corrects the intent read in a customer's message (or marks it out of scope). The message's
/// redacted text, the model's reading and the answer are kept for retraining; correcting
/// again replaces the earlier correction. Audited.
#[utoipa::path(post, path = "/v1/conversations/{id}/messages/{message_id}/intent-correction", tag = "intents",
    params(("id" = String, Path, description = "Conversation id"), ("message_id" = String, Path, description = "Message id")),
    request_body = IntentCorrectionRequest,
    responses((status = 201, body = IntentCorrectionDto),
               (status = 400, body = ErrorBody, description = "`unknown_intent`, `invalid_correction`, `message_not_analysed`"),
               (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn correct(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::CorrectIntents>,
    Path((id, message_id)): Path<(String, String)>,
    Json(req): Json<IntentCorrectionRequest>,
) -> ApiResult<(StatusCode, axum::Json<IntentCorrectionDto>)> {
    let conversation = ConversationId::parse(&id)
        .ok_or_else(|| ApiError::not_found(format!("conversation {id}")))?;
    let to = CorrectedIntent::from_parts(req.intent, req.out_of_scope)?;
    let saved = state
        .engine
        .correct_intent(
            &caller.workspace_id,
            &conversation,
            &message_id,
            to,
            caller.actor(),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(saved.into())))
}

/// Agents' corrections, newest first.
#[utoipa::path(get, path = "/v1/intents/corrections", tag = "intents", params(CorrectionsQuery),
    responses((status = 200, body = [IntentCorrectionDto])),
    security(("basic" = []), ("bearer" = [])))]
pub async fn corrections(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Query(q): Query<CorrectionsQuery>,
) -> ApiResult<axum::Json<Vec<IntentCorrectionDto>>> {
    let list = state
        .store
        .intent_corrections(CorrectionQuery {
            workspace: caller.workspace_id,
            conversation: q.conversation,
            limit: q.limit.unwrap_or(100).clamp(1, 1000),
        })
        .await?;
    Ok(axum::Json(list.into_iter().map(Into::into).collect()))
}

/// The version in use, the intents, and every stored version with its figures.
#[utoipa::path(get, path = "/v1/intents/models", tag = "intents",
    responses((status = 200, body = IntentModelsDto)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn models(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
) -> ApiResult<axum::Json<IntentModelsDto>> {
    let ws = &caller.workspace_id;
    let active = state.store.active_intent_model(ws).await?;
    let versions = state.store.intent_models(ws).await?;
    let interpreter = state.engine.interpreter_for(ws).await;
    Ok(axum::Json(IntentModelsDto {
        active_version: active.version,
        intents: intent_models::intent_labels(&interpreter),
        versions: versions.into_iter().map(Into::into).collect(),
    }))
}

/// Retrains the workspace's intent model from the default taxonomy and every correction,
/// evaluates it against the version in use on the corrections (k-fold), stores it as the next
/// version and activates it unless it does worse (`force` activates it anyway). Every node
/// picks the new version up without a restart. Audited.
#[utoipa::path(post, path = "/v1/intents/retrain", tag = "intents",
    request_body(content = RetrainRequest, description = "optional"),
    responses((status = 201, body = RetrainDto), (status = 403, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn retrain(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageIntents>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, axum::Json<RetrainDto>)> {
    // The body is optional: none (or an empty one) retrains without forcing.
    let req: RetrainRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RetrainRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid("invalid_json", format!("retrain request: {e}")))?
    };
    let force = req.force;
    let ws = &caller.workspace_id;
    let out = state
        .engine
        .retrain_intents(ws, caller.actor(), force)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(RetrainDto {
            report: serde_json::to_value(&out.report).unwrap_or_default(),
            model: out.model.into(),
            activated: out.activated,
            previous_version: out.previous_version,
        }),
    ))
}

/// The version now in use.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveModelDto {
    pub active_version: i64,
    pub activated_by: Option<String>,
}

/// Makes a stored version the one messages are read with (rollback); version 0 is the
/// built-in default. Audited.
#[utoipa::path(post, path = "/v1/intents/models/{version}/activate", tag = "intents",
    params(("version" = i64, Path, description = "Model version (0: built-in default)")),
    responses((status = 200, body = ActiveModelDto), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn activate(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageIntents>,
    Path(version): Path<String>,
) -> ApiResult<axum::Json<ActiveModelDto>> {
    let version: i64 = version
        .parse()
        .map_err(|_| ApiError::not_found(format!("intent model version {version}")))?;
    let ws = &caller.workspace_id;
    let now = state
        .engine
        .activate_intent_model(ws, version, caller.actor())
        .await?;
    Ok(axum::Json(ActiveModelDto {
        active_version: now.version,
        activated_by: now.activated_by,
    }))
}
