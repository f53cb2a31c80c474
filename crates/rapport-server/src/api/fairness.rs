//! `POST /v1/audits/fairness`: a fairness audit of the rows in the request, with the same
//! metrics (and numbers) as `rapport audit fairness` and Fairlearn.

use axum::extract::State;
use rapport_core::{AuditEntry, ErrorKind};
use rapport_govern::fairness::{AuditOptions, Columns, Dataset, Row, Thresholds};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::extract::Json;
use crate::auth::{perm, Can};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

/// Rows to audit: each with its group values (in the order of `columns.groups`), the decision
/// or prediction, and optionally the true outcome and a score.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FairnessRequest {
    /// Names of the group columns, the prediction, and optionally the label and score.
    #[schema(value_type = Object)]
    pub columns: Columns,
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Row>,
    /// Task (`binary`, `multiclass`, `regression`; inferred when absent), positive label,
    /// bootstrap settings.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub options: AuditOptions,
    /// Limits such as `max_demographic_parity_difference`; violations are returned.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub thresholds: Option<Thresholds>,
}

/// Audits the rows given: per group and intersection selection rates, error rates and the
/// parity/odds aggregates (differences and ratios), with bootstrap intervals when asked, and
/// the thresholds violated. Audited.
#[utoipa::path(post, path = "/v1/audits/fairness", tag = "governance",
    request_body = FairnessRequest,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn audit(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::AuditFairness>,
    Json(req): Json<FairnessRequest>,
) -> ApiResult<axum::Json<Value>> {
    if req.rows.is_empty() {
        return Err(ApiError::invalid("invalid_body", "rows is empty"));
    }
    let rows = req.rows.len();
    let groups = req.columns.groups.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        req.options.validate()?;
        if let Some(t) = &req.thresholds {
            t.validate()?;
        }
        let data = Dataset::from_rows(req.columns, &req.rows)?;
        let report = data.audit(&req.options)?;
        let violations = req
            .thresholds
            .as_ref()
            .map(|t| t.check(&report))
            .unwrap_or_default();
        Ok::<_, rapport_govern::fairness::FairnessError>((report, violations))
    })
    .await
    .map_err(|e| {
        ApiError::new(
            ErrorKind::Internal,
            "internal",
            format!("audit failed: {e}"),
        )
    })?
    .map_err(|e| ApiError::from_coded(&e))?;
    let (report, violations) = outcome;
    state
        .store
        .append_audit(vec![AuditEntry::new(
            Some(caller.workspace_id.clone()),
            caller.actor(),
            "fairness.audited",
            None,
            json!({"rows": rows, "groups": groups, "violations": violations.len()}),
        )])
        .await?;
    Ok(axum::Json(
        json!({"report": report, "violations": violations}),
    ))
}
