//! Churn prediction on the workspace's own data: a customer's materialised features and
//! score, training on demand, the versions and which one is active.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use rapport_core::{ErrorKind, ProfileId};
use rapport_store::{ModelVersion, ProfileFeatures};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::auth::{perm, Can};
use crate::churn::{ChurnError, KIND};
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

/// Trains a churn model on the workspace's data now: point-in-time snapshots at past
/// cut-offs, labelled by churn events within the horizon, measured on the newest cut-off,
/// stored as a new version. The body is optional. 409 `training_data_insufficient` when the
/// data cannot train one (no churn events, too few of a class). Audited.
#[utoipa::path(post, path = "/v1/models/churn/train", tag = "prediction",
    request_body = TrainRequest,
    responses((status = 201, body = Object), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn train(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageModels>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    // The body is optional: an empty one trains with the defaults.
    let req: TrainRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TrainRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid("invalid_body", e.to_string()))?
    };
    let report = state
        .engine
        .train_churn(&caller.workspace_id, caller.actor(), req.activate)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(version_json(&report.version)),
    ))
}

/// The churn model's versions, newest first, each with how it was trained and how it scored.
#[utoipa::path(get, path = "/v1/models/churn", tag = "prediction",
    responses((status = 200, body = Object)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn versions(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
) -> ApiResult<axum::Json<Value>> {
    let all = state
        .store
        .model_versions(&caller.workspace_id, KIND)
        .await?;
    Ok(axum::Json(json!({
        "kind": KIND,
        "versions": all.iter().map(version_json).collect::<Vec<_>>(),
    })))
}

/// Makes a version the active one (a newer one, or an older one to roll back); every node
/// picks it up within seconds and customers are rescored. Audited.
#[utoipa::path(post, path = "/v1/models/churn/versions/{version}/activate", tag = "prediction",
    params(("version" = i64, Path, description = "version number")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn activate(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageModels>,
    Path(version): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let v: i64 = version
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| ApiError::not_found(format!("churn model version {version}")))?;
    let active = state
        .engine
        .activate_churn(&caller.workspace_id, v, caller.actor())
        .await?;
    Ok(axum::Json(version_json(&active)))
}
