//! Governance endpoints: consent per purpose, data export, erasure, and the audit log.

use axum::extract::State;
use chrono::{DateTime, Utc};
use rapport_core::{ConsentRecord, ConsentState, ProfileId};
use rapport_govern::consent::ConsentLedger;
use rapport_store::AuditQuery;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::extract::{Json, Path, Query};
use crate::auth::{perm, Can};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::governance::{ConsentError, ConsentInput};
use crate::AppState;

fn profile_id(raw: &str) -> ApiResult<ProfileId> {
    ProfileId::parse(raw).ok_or_else(|| ApiError::not_found(format!("profile {raw}")))
}

/// One consent decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentItem {
    /// A purpose the workspace knows, e.g. `marketing_email`.
    pub purpose: String,
    /// `granted`, `denied` or `withdrawn`.
    pub state: String,
    /// How the customer gave it, e.g. `preference_center`; defaults to `api`.
    pub source: Option<String>,
    /// When the customer decided (RFC 3339); defaults to now.
    pub at: Option<DateTime<Utc>>,
}

/// Consent decisions to record, all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    pub consents: Vec<ConsentItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentStateDto {
    pub purpose: String,
    /// `granted`, `denied`, `withdrawn`, or `never_asked`.
    pub state: String,
    pub description: String,
    pub decided_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentRecordDto {
    pub purpose: String,
    pub state: String,
    pub source: String,
    pub at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

/// Where a customer stands on every purpose, and every decision they made.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentsDto {
    pub profile_id: String,
    pub current: Vec<ConsentStateDto>,
    pub history: Vec<ConsentRecordDto>,
}

fn consents_dto(state: &AppState, id: &ProfileId, history: Vec<ConsentRecord>) -> ConsentsDto {
    let ledger = ConsentLedger::from_history(&history);
    let registry = &state.engine.options.purposes;
    let current = registry
        .iter()
        .map(|(p, description)| {
            let now = ledger.iter().find(|(q, _, _)| *q == p);
            ConsentStateDto {
                purpose: p.as_str().to_owned(),
                state: now.map_or("never_asked", |(_, s, _)| s.as_str()).to_owned(),
                description: description.to_owned(),
                decided_at: now.map(|(_, _, at)| at),
            }
        })
        .collect();
    let profile_id = history
        .first()
        .map_or_else(|| id.as_str().to_owned(), |r| r.profile_id.to_string());
    ConsentsDto {
        profile_id,
        current,
        history: history
            .into_iter()
            .map(|r| ConsentRecordDto {
                purpose: r.purpose.to_string(),
                state: r.state.as_str().to_owned(),
                source: r.source,
                at: r.at,
                recorded_at: r.recorded_at,
            })
            .collect(),
    }
}

/// A customer's consent: the state of every purpose and the history of decisions.
#[utoipa::path(get, path = "/v1/profiles/{id}/consents", tag = "governance",
    params(("id" = String, Path, description = "Profile id")),
    responses((status = 200, body = ConsentsDto), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn get_consents(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ConsentsDto>> {
    let id = profile_id(&id)?;
    let history = state.store.consents(&caller.workspace_id, &id).await?;
    Ok(axum::Json(consents_dto(&state, &id, history)))
}

/// Records consent decisions. Every purpose must be one the workspace knows, or nothing is
/// recorded (`unknown_purpose`). Each change is audited.
#[utoipa::path(put, path = "/v1/profiles/{id}/consents", tag = "governance",
    params(("id" = String, Path, description = "Profile id")),
    request_body = ConsentRequest,
    responses((status = 200, body = ConsentsDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn put_consents(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageConsent>,
    Path(id): Path<String>,
    Json(body): Json<ConsentRequest>,
) -> ApiResult<axum::Json<ConsentsDto>> {
    let id = profile_id(&id)?;
    if body.consents.is_empty() {
        return Err(ApiError::invalid("invalid_body", "consents is empty"));
    }
    let mut inputs = Vec::with_capacity(body.consents.len());
    for (i, c) in body.consents.into_iter().enumerate() {
        let state = ConsentState::parse(&c.state).ok_or_else(|| {
            ApiError::invalid(
                "invalid_consent_state",
                format!(
                    "consents[{i}].state {:?} is not granted, denied or withdrawn",
                    c.state
                ),
            )
        })?;
        let source = c.source.unwrap_or_else(|| "api".into());
        if source.is_empty() || source.len() > 64 {
            return Err(ApiError::invalid(
                "invalid_body",
                format!("consents[{i}].source must be 1 to 64 characters"),
            ));
        }
        inputs.push(ConsentInput {
            purpose: c.purpose,
            state,
            source,
            at: c.at,
        });
    }
    let history = state
        .engine
        .set_consents(&caller.workspace_id, &id, inputs, caller.actor())
        .await
        .map_err(|e| match e {
            ConsentError::UnknownPurpose(..) => ApiError::invalid("unknown_purpose", e.to_string()),
            ConsentError::Store(s) => s.into(),
        })?;
    Ok(axum::Json(consents_dto(&state, &id, history)))
}

/// Everything Rapport holds about a customer, as machine-readable JSON: profile with
/// identities and traits, every event, conversations with messages and their analyses,
/// consents, merges, decisions and the audit trail about them. Audited.
#[utoipa::path(get, path = "/v1/profiles/{id}/export", tag = "governance",
    params(("id" = String, Path, description = "Profile id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ExportData>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let id = profile_id(&id)?;
    let export = state
        .engine
        .export(&caller.workspace_id, &id, caller.actor())
        .await?;
    Ok(axum::Json(serde_json::to_value(export).map_err(|e| {
        ApiError::new(
            rapport_core::ErrorKind::Internal,
            "internal",
            format!("export failed: {e}"),
        )
    })?))
}

/// What an erasure removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureDto {
    pub profile_id: String,
    pub erased_ids: Vec<String>,
    /// True when the profile had already been erased; nothing more was done.
    pub already_erased: bool,
    pub events: u64,
    pub conversations: u64,
    pub messages: u64,
    pub identifiers: u64,
    pub traits: u64,
    pub consents: u64,
    /// Salted identifier hashes kept so late events do not rebuild the profile.
    pub tombstones: u64,
    /// Whether the store's write-ahead log was emptied, leaving no erased bytes in it.
    pub log_purged: bool,
    /// Scale-out mode: what was erased from the event bus (its event log, including events
    /// already applied or still queued, and its dead letters). Absent in embedded mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_log: Option<crate::governance::EventLogErasure>,
}

/// Erases a customer's personal data: profile, identities, traits, events, conversations,
/// messages, consents and derived data. Repeating it is harmless (`already_erased`). Audited.
#[utoipa::path(delete, path = "/v1/profiles/{id}", tag = "governance",
    params(("id" = String, Path, description = "Profile id")),
    responses((status = 200, body = ErasureDto), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn erase(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::EraseData>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ErasureDto>> {
    let id = profile_id(&id)?;
    let erasure = state
        .engine
        .erase(&caller.workspace_id, &id, caller.actor())
        .await?;
    let o = erasure.store;
    Ok(axum::Json(ErasureDto {
        profile_id: o.profile_id,
        erased_ids: o.erased_ids,
        already_erased: o.already_erased,
        events: o.events,
        conversations: o.conversations,
        messages: o.messages,
        identifiers: o.identifiers,
        traits: o.traits,
        consents: o.consents,
        tombstones: o.tombstones,
        log_purged: o.log_purged,
        event_log: erasure.event_log,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only actions starting with this, e.g. `consent.` or `profile.erased`.
    pub action: Option<String>,
    /// Only records about this subject (a profile id, ...).
    pub subject: Option<String>,
    /// Only records older than this sequence number (for paging back).
    pub before: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecordDto {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: Option<String>,
    #[schema(value_type = Object)]
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPageDto {
    pub records: Vec<AuditRecordDto>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

/// The workspace's audit trail, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "governance", params(AuditParams),
    responses((status = 200, body = AuditPageDto), (status = 400, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn audit(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadAudit>,
    Query(p): Query<AuditParams>,
) -> ApiResult<axum::Json<AuditPageDto>> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_query",
            "limit must be between 1 and 1000",
        ));
    }
    let records = state
        .store
        .audit_records(AuditQuery {
            workspace: Some(caller.workspace_id.clone()),
            action_prefix: p.action.filter(|a| !a.is_empty()),
            subject: p.subject.filter(|s| !s.is_empty()),
            from_seq: p.before,
            ascending: false,
            limit,
        })
        .await?;
    let next_before = (records.len() == limit)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(axum::Json(AuditPageDto {
        records: records
            .into_iter()
            .map(|r| AuditRecordDto {
                seq: r.seq,
                at: rapport_core::time::from_millis(r.at_ms),
                details: r.details_value(),
                actor: r.actor,
                action: r.action,
                subject: r.subject,
                prev_hash: r.prev_hash,
                hash: r.hash,
            })
            .collect(),
        next_before,
    }))
}
