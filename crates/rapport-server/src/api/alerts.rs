//! Alerts (`GET /v1/alerts`, `POST /v1/alerts/{id}/acknowledge`) and the scheduled fairness
//! audits that raise some of them (`GET /v1/audits/fairness/scheduled`,
//! `POST /v1/audits/fairness/scheduled/{name}/run`).

use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use rapport_core::{Alert, AuditEntry, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{perm, Can};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::fairness_watch::RunError;
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertDto {
    pub id: String,
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub title: String,
    #[schema(value_type = Object)]
    pub evidence: Value,
    pub subject: Option<String>,
    pub created_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
}

impl From<Alert> for AlertDto {
    fn from(a: Alert) -> Self {
        AlertDto {
            id: a.id,
            kind: a.kind,
            severity: a.severity.as_str().to_owned(),
            title: a.title,
            evidence: a.evidence,
            subject: a.subject,
            created_at: a.created_at,
            acknowledged_at: a.acknowledged_at,
            acknowledged_by: a.acknowledged_by,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertListDto {
    pub alerts: Vec<AlertDto>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertParams {
    /// Only alerts nobody has acknowledged yet.
    #[serde(default)]
    pub open: bool,
    /// At most this many (default 100, at most 1,000).
    pub limit: Option<usize>,
}

/// The workspace's alerts, newest first.
#[utoipa::path(get, path = "/v1/alerts", tag = "governance", params(AlertParams),
    responses((status = 200, body = AlertListDto), (status = 403, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Query(p): Query<AlertParams>,
) -> ApiResult<axum::Json<AlertListDto>> {
    let limit = p.limit.unwrap_or(100).clamp(1, 1_000);
    let alerts = state
        .store
        .alerts(&caller.workspace_id, p.open, limit)
        .await?;
    Ok(axum::Json(AlertListDto {
        alerts: alerts.into_iter().map(AlertDto::from).collect(),
    }))
}

/// Marks an alert as seen to. Repeating it changes nothing. Audited.
#[utoipa::path(post, path = "/v1/alerts/{id}/acknowledge", tag = "governance",
    params(("id" = String, Path)),
    responses((status = 200, body = AlertDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn acknowledge(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::AcknowledgeAlerts>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AlertDto>> {
    let actor = caller.actor();
    let entry = AuditEntry::new(
        Some(caller.workspace_id.clone()),
        actor.clone(),
        "alert.acknowledged",
        Some(id.clone()),
        json!({}),
    );
    let alert = state
        .store
        .acknowledge_alert(&caller.workspace_id, &id, &actor.encode(), vec![entry])
        .await?;
    Ok(axum::Json(alert.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduledAuditDto {
    pub name: String,
    pub decision_kinds: Vec<String>,
    pub groups: Vec<String>,
    /// How often it runs, e.g. `1h`.
    pub every: String,
    /// How far back it reads decisions, e.g. `30days`.
    pub window: String,
    pub min_rows: usize,
    #[schema(value_type = Object)]
    pub thresholds: Value,
}

/// The fairness audits configured to run on a schedule (`[[governance.fairness_audits]]`).
#[utoipa::path(get, path = "/v1/audits/fairness/scheduled", tag = "governance",
    responses((status = 200, body = Vec<ScheduledAuditDto>), (status = 403, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn scheduled(
    State(state): State<AppState>,
    Can(_caller, _): Can<perm::AuditFairness>,
) -> ApiResult<axum::Json<Vec<ScheduledAuditDto>>> {
    Ok(axum::Json(
        state
            .engine
            .fairness_audits()
            .iter()
            .map(|a| ScheduledAuditDto {
                name: a.name.clone(),
                decision_kinds: a.decision_kinds.clone(),
                groups: a.groups.clone(),
                every: humantime::format_duration(a.every).to_string(),
                window: humantime::format_duration(a.window).to_string(),
                min_rows: a.min_rows,
                thresholds: serde_json::to_value(&a.thresholds).unwrap_or(Value::Null),
            })
            .collect(),
    ))
}

/// Runs a scheduled fairness audit over the workspace's stored decisions now: the report,
/// the limits crossed and the alert raised, if any. Audited.
#[utoipa::path(post, path = "/v1/audits/fairness/scheduled/{name}/run", tag = "governance",
    params(("name" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn run(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::AuditFairness>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let run = state
        .engine
        .run_fairness_audit(&caller.workspace_id, &name, caller.actor())
        .await
        .map_err(|e| match e {
            RunError::Unknown(_) => {
                ApiError::new(ErrorKind::NotFound, "unknown_audit", e.to_string())
            }
            RunError::Store(s) => s.into(),
            RunError::Audit(m) => ApiError::internal(m),
        })?;
    Ok(axum::Json(serde_json::to_value(run).unwrap_or(Value::Null)))
}
