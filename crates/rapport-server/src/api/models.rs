//! Models trained on the workspace's own data (`churn`, `clv`, `escalation`): a customer's materialised
//! features and scores, training on demand, the versions and which one is active.

/// The kinds of model trained on a workspace's data, as they appear in paths.
fn kind_of(raw: &str) -> Result<&'static str, ApiError> {
    match raw {
        crate::churn::KIND => Ok(crate::churn::KIND),
        crate::clv::KIND => Ok(crate::clv::KIND),
        crate::escalation::KIND => Ok(crate::escalation::KIND),
        other => Err(ChurnError::UnknownKind(other.to_owned()).into()),
    }
}

use axum::extract::{Path, State};
use axum::http::StatusCode;
use rapport_core::{ErrorKind, ProfileId};
use rapport_store::{ModelVersion, ProfileFeatures};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::auth::{perm, Can};
use crate::churn::ChurnError;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

impl From<ChurnError> for ApiError {
    fn from(e: ChurnError) -> Self {
        match e {
            ChurnError::Store(s) => s.into(),
            ChurnError::Insufficient(m) => {
                ApiError::new(ErrorKind::Conflict, "training_data_insufficient", m)
            }
            ChurnError::Corrupt(m) => ApiError::internal(m),
            ChurnError::UnknownKind(k) => ApiError::new(
                ErrorKind::NotFound,
                "model_kind_unknown",
                format!("no model kind {k:?}: the kinds are churn, clv and escalation"),
            ),
        }
    }
}

fn features_json(f: &ProfileFeatures) -> Value {
    json!({
        "profile_id": f.profile_id, "computed_at": f.computed_at,
        "features": f.features, "scores": f.scores,
    })
}

/// A customer's features as last computed (kept current as their events arrive) with their
/// churn score and its explanation: the features that pushed it up or down, in log-odds, and
/// the ones that were missing. Computed on the spot when none are stored yet.
#[utoipa::path(get, path = "/v1/profiles/{id}/features", tag = "prediction",
    params(("id" = String, Path, description = "profile id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn profile_features(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let id = ProfileId::parse(&id).ok_or_else(|| ApiError::not_found(format!("profile {id}")))?;
    let profile = state
        .store
        .profile(&caller.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("profile {id}")))?;
    let row = state
        .engine
        .profile_churn(&caller.workspace_id, &profile.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("profile {id}")))?;
    Ok(axum::Json(features_json(&row)))
}

/// How to train.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainRequest {
    /// Make the new version active: `true` always, `false` never; absent, only when it
    /// scores at least as well on its held-out cut-off as the active one.
    #[serde(default)]
    pub activate: Option<bool>,
}

fn version_json(v: &ModelVersion) -> Value {
    json!({
        "kind": v.kind, "version": v.version, "created_at": v.created_at,
        "created_by": v.created_by, "active": v.active, "summary": v.summary,
    })
}

/// Trains a model of a kind on the workspace's data now and stores it as a new version.
/// `churn`: point-in-time snapshots at past cut-offs, labelled by churn events within the
/// horizon, measured on the newest cut-off. `clv`: BG/NBD and Gamma-Gamma on every customer's
/// orders, measured on the newest `clv.holdout_days` of purchases. The body is optional. 409
/// `training_data_insufficient` when the data cannot train one (no churn events, too few of a
/// class, too few repeat buyers); `escalation`: logistic regression on every customer
/// message of past conversations, labelled by whether the conversation escalated afterwards
/// (the customer asked for a person), measured on the newest quarter of conversations. 404 `model_kind_unknown` for another kind. Audited.
#[utoipa::path(post, path = "/v1/models/{kind}/train", tag = "prediction",
    params(("kind" = String, Path, description = "`churn`, `clv` or `escalation`")),
    request_body = TrainRequest,
    responses((status = 201, body = Object), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn train(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageModels>,
    Path(kind): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let kind = kind_of(&kind)?;
    // The body is optional: an empty one trains with the defaults.
    let req: TrainRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TrainRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid("invalid_body", e.to_string()))?
    };
    let report = state
        .engine
        .train_model(&caller.workspace_id, kind, caller.actor(), req.activate)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(version_json(&report.version)),
    ))
}

/// A model kind's versions, newest first, each with how it was trained and how it scored.
#[utoipa::path(get, path = "/v1/models/{kind}", tag = "prediction",
    params(("kind" = String, Path, description = "`churn`, `clv` or `escalation`")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn versions(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Path(kind): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let kind = kind_of(&kind)?;
    let all = state
        .store
        .model_versions(&caller.workspace_id, kind)
        .await?;
    Ok(axum::Json(json!({
        "kind": kind,
        "versions": all.iter().map(version_json).collect::<Vec<_>>(),
    })))
}

/// Makes a version the active one (a newer one, or an older one to roll back); every node
/// picks it up within seconds and customers are rescored. Audited.
#[utoipa::path(post, path = "/v1/models/{kind}/versions/{version}/activate", tag = "prediction",
    params(("kind" = String, Path, description = "`churn`, `clv` or `escalation`"), ("version" = i64, Path, description = "version number")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn activate(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageModels>,
    Path((kind, version)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let kind = kind_of(&kind)?;
    let v: i64 = version
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| ApiError::not_found(format!("{kind} model version {version}")))?;
    let active = state
        .engine
        .activate_model(&caller.workspace_id, kind, v, caller.actor())
        .await?;
    Ok(axum::Json(version_json(&active)))
}
