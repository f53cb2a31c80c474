//! Actions, decisions, the approval queue, the oversight policy and requests for a person.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rapport_core::{ConversationId, DecisionRecord, DecisionStatus, ProfileId, Reason};
use rapport_store::DecisionQuery;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Json, Path, Query};
use crate::actions::{ActionError, ActionInput};
use crate::auth::{perm, Can};
use crate::error::{ApiError, ApiResult, ErrorBody, ItemErrorBody};
use crate::AppState;
use rapport_core::ErrorKind;

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::Invalid(code, m) => ApiError::invalid(code, m),
            ActionError::NotFound(what) => ApiError::not_found(what),
            ActionError::Conflict(code, m) => ApiError::new(ErrorKind::Conflict, code, m),
            ActionError::Forbidden(code, m) => ApiError::new(ErrorKind::Forbidden, code, m),
            ActionError::Store(s) => s.into(),
        }
    }
}

/// One fact behind a decision, in words the customer understands.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonDto {
    /// Stable code, e.g. `contract_renewal`.
    pub code: String,
    /// Plain words, e.g. "your contract renews in 14 days".
    pub text: String,
}

/// An action to take for a customer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequestDto {
    pub profile_id: String,
    /// `message.service`, `message.marketing`, `offer.retention`, `offer.discount`,
    /// `offer.upsell`, `refund`, `credit` or `account.close`.
    pub kind: String,
    /// `amount`, `currency`, `percent`, `channel`, `title`, `text` (messages), ...
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// At least one: they make the customer's explanation.
    pub reasons: Vec<ReasonDto>,
    /// The conversation a message goes into.
    pub conversation_id: Option<String>,
    /// Whether software decided this (default true). Automated messages carry the AI
    /// disclosure and stop when the customer asks for a person.
    pub automated: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalStepDto {
    pub approver: String,
    pub approved: bool,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalDto {
    /// The policy rules that hold the action.
    pub rules: Vec<String>,
    pub approvers_needed: u8,
    pub expires_at: DateTime<Utc>,
    pub steps: Vec<ApprovalStepDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionDto {
    pub id: String,
    pub profile_id: String,
    pub kind: String,
    #[schema(value_type = Object)]
    pub params: Value,
    /// `executed`, `refused`, `pending_approval`, `rejected` or `expired`.
    pub status: String,
    /// One plain-language sentence for the customer.
    pub explanation: String,
    pub reasons: Vec<ReasonDto>,
    pub automated: bool,
    pub requested_by: String,
    pub conversation_id: Option<String>,
    /// Why it was not carried out, when it was not.
    pub refusal: Option<String>,
    pub approval: Option<ApprovalDto>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<DecisionRecord> for DecisionDto {
    fn from(d: DecisionRecord) -> Self {
        Self {
            id: d.id,
            profile_id: d.profile_id.to_string(),
            kind: d.kind,
            params: d.params,
            status: d.status.as_str().to_owned(),
            explanation: d.explanation,
            reasons: d
                .reasons
                .into_iter()
                .map(|r| ReasonDto {
                    code: r.code,
                    text: r.text,
                })
                .collect(),
            automated: d.automated,
            requested_by: d.requested_by,
            conversation_id: d.conversation_id,
            refusal: d.refusal,
            approval: d.approval.map(|a| ApprovalDto {
                rules: a.rules,
                approvers_needed: a.approvers_needed,
                expires_at: a.expires_at,
                steps: a
                    .steps
                    .into_iter()
                    .map(|s| ApprovalStepDto {
                        approver: s.approver,
                        approved: s.approved,
                        note: s.note,
                        at: s.at,
                    })
                    .collect(),
            }),
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionListDto {
    pub decisions: Vec<DecisionDto>,
}

fn profile_id(raw: &str) -> ApiResult<ProfileId> {
    ProfileId::parse(raw).ok_or_else(|| ApiError::not_found(format!("profile {raw}")))
}

/// Asks for an action. The answer is the decision: `executed` (201), `pending_approval` (202,
/// waiting in the approval queue because the oversight policy names it high-stakes) or
/// `refused` (200: the customer's consent or a request for a person stopped it; `refusal`
/// says why).
#[utoipa::path(post, path = "/v1/actions", tag = "decisions", request_body = ActionRequestDto,
    responses((status = 201, body = DecisionDto), (status = 202, body = DecisionDto),
              (status = 200, body = DecisionDto, description = "Refused"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn request(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::RequestActions>,
    Json(req): Json<ActionRequestDto>,
) -> ApiResult<(StatusCode, axum::Json<DecisionDto>)> {
    let conversation = match req.conversation_id {
        None => None,
        Some(c) => Some(
            ConversationId::parse(&c)
                .ok_or_else(|| ApiError::not_found(format!("conversation {c}")))?,
        ),
    };
    let input = ActionInput {
        profile: profile_id(&req.profile_id)?,
        kind: req.kind,
        params: req.params,
        reasons: req
            .reasons
            .into_iter()
            .map(|r| Reason {
                code: r.code,
                text: r.text,
            })
            .collect(),
        conversation,
        automated: req.automated.unwrap_or(true),
    };
    let d = state
        .engine
        .request_action(&caller.workspace_id, input, caller.actor())
        .await?;
    let status = match d.status {
        DecisionStatus::Executed => StatusCode::CREATED,
        DecisionStatus::PendingApproval => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    Ok((status, axum::Json(d.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DecisionParams {
    /// Only decisions in this state (`pending_approval`, `executed`, ...).
    pub status: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<usize>,
}

fn query(
    state_param: Option<String>,
    limit: Option<usize>,
) -> ApiResult<(Option<DecisionStatus>, usize)> {
    let status = match state_param.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(DecisionStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "invalid_query",
                format!("status {s:?} is not one of pending_approval, executed, refused, rejected, expired"),
            )
        })?),
    };
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_query",
            "limit must be between 1 and 1000",
        ));
    }
    Ok((status, limit))
}

/// The workspace's decisions, newest first. Systems that carry out refunds, credits and
/// offers poll `status=executed`.
#[utoipa::path(get, path = "/v1/decisions", tag = "decisions", params(DecisionParams),
    responses((status = 200, body = DecisionListDto), (status = 400, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Query(p): Query<DecisionParams>,
) -> ApiResult<axum::Json<DecisionListDto>> {
    let (status, limit) = query(p.status, p.limit)?;
    if status == Some(DecisionStatus::PendingApproval) {
        state.engine.expire_due(&caller.workspace_id).await?;
    }
    let decisions = state
        .store
        .decisions(DecisionQuery {
            workspace: caller.workspace_id.clone(),
            profile: None,
            status,
            limit,
        })
        .await?;
    Ok(axum::Json(DecisionListDto {
        decisions: decisions.into_iter().map(Into::into).collect(),
    }))
}

/// One decision.
#[utoipa::path(get, path = "/v1/decisions/{id}", tag = "decisions",
    params(("id" = String, Path, description = "Decision id")),
    responses((status = 200, body = DecisionDto), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<DecisionDto>> {
    let d = state
        .store
        .decision(&caller.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("decision {id}")))?;
    Ok(axum::Json(d.into()))
}

/// The decisions made about a customer, newest first, each with its plain-language
/// explanation.
#[utoipa::path(get, path = "/v1/profiles/{id}/decisions", tag = "decisions",
    params(("id" = String, Path, description = "Profile id"), DecisionParams),
    responses((status = 200, body = DecisionListDto), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn of_profile(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Path(id): Path<String>,
    Query(p): Query<DecisionParams>,
) -> ApiResult<axum::Json<DecisionListDto>> {
    let (status, limit) = query(p.status, p.limit)?;
    let decisions = state
        .store
        .decisions(DecisionQuery {
            workspace: caller.workspace_id.clone(),
            profile: Some(profile_id(&id)?),
            status,
            limit,
        })
        .await?;
    Ok(axum::Json(DecisionListDto {
        decisions: decisions.into_iter().map(Into::into).collect(),
    }))
}

/// An approver's note.
#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRequest {
    pub note: Option<String>,
}

fn note(body: &[u8]) -> ApiResult<Option<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let req: ApprovalRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("invalid_body", format!("invalid JSON body: {e}")))?;
    if req.note.as_ref().is_some_and(|n| n.chars().count() > 1000) {
        return Err(ApiError::invalid(
            "invalid_body",
            "a note is at most 1000 characters",
        ));
    }
    Ok(req.note)
}

/// Approves a held action. With enough approvals (one or two, as the policy rule says) it is
/// carried out at once, after checking consent again. The requester cannot approve their own
/// request (403 `own_request`); an expired one answers 409 `approval_expired`.
#[utoipa::path(post, path = "/v1/approvals/{id}/approve", tag = "decisions",
    params(("id" = String, Path, description = "Decision id")), request_body = ApprovalRequest,
    responses((status = 200, body = DecisionDto), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ApproveActions>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<DecisionDto>> {
    let note = note(&body)?;
    let d = state
        .engine
        .answer_approval(&caller.workspace_id, &id, caller.actor(), true, note)
        .await?;
    Ok(axum::Json(d.into()))
}

/// Rejects a held action: it is never carried out.
#[utoipa::path(post, path = "/v1/approvals/{id}/reject", tag = "decisions",
    params(("id" = String, Path, description = "Decision id")), request_body = ApprovalRequest,
    responses((status = 200, body = DecisionDto), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ApproveActions>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<DecisionDto>> {
    let note = note(&body)?;
    let d = state
        .engine
        .answer_approval(&caller.workspace_id, &id, caller.actor(), false, note)
        .await?;
    Ok(axum::Json(d.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyRuleDto {
    pub name: String,
    pub actions: Vec<String>,
    pub when: Option<String>,
    pub approvers: u8,
    pub expires_after_secs: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyDto {
    /// The file the policy was read from, if any.
    pub file: Option<String>,
    pub rules: Vec<PolicyRuleDto>,
}

fn policy_dto(state: &AppState) -> PolicyDto {
    PolicyDto {
        file: state
            .engine
            .options
            .policy_file
            .as_ref()
            .map(|p| p.display().to_string()),
        rules: state
            .engine
            .policy()
            .rules()
            .iter()
            .map(|r| PolicyRuleDto {
                name: r.name.clone(),
                actions: r.actions.clone(),
                when: r.when.clone(),
                approvers: r.approvers,
                expires_after_secs: r.expires_after.as_secs(),
            })
            .collect(),
    }
}

/// The oversight policy in force.
#[utoipa::path(get, path = "/v1/policy", tag = "decisions",
    responses((status = 200, body = PolicyDto)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn get_policy(
    State(state): State<AppState>,
    Can(_caller, _): Can<perm::ReadCustomers>,
) -> axum::Json<PolicyDto> {
    axum::Json(policy_dto(&state))
}

/// Reads the policy file again. A file with errors is refused with every error and its line
/// (400 `invalid_policy`, `errors[].index` is the line); the policy in force stays.
#[utoipa::path(post, path = "/v1/policy/reload", tag = "decisions",
    responses((status = 200, body = PolicyDto), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn reload_policy(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManagePolicy>,
) -> ApiResult<axum::Json<PolicyDto>> {
    crate::policy_watch::reload(
        &state.engine,
        Some(caller.workspace_id.clone()),
        caller.actor(),
    )
    .await
    .map_err(|e| match e {
        crate::policy_watch::ReloadError::NoFile => ApiError::new(
            ErrorKind::Conflict,
            "no_policy_file",
            "no policy file is configured (governance.policy_file)",
        ),
        crate::policy_watch::ReloadError::Unreadable(m) => ApiError::invalid("invalid_policy", m),
        crate::policy_watch::ReloadError::Invalid(errors) => {
            let mut e = ApiError::invalid(
                "invalid_policy",
                format!(
                    "the policy file has {} error(s); the policy in force is unchanged",
                    errors.len()
                ),
            );
            e.errors = errors
                .into_iter()
                .map(|p| ItemErrorBody {
                    index: p.line,
                    code: "policy_error".into(),
                    message: p.to_string(),
                })
                .collect();
            e
        }
        crate::policy_watch::ReloadError::Store(s) => s.into(),
    })?;
    Ok(axum::Json(policy_dto(&state)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HandoffDto {
    pub profile_id: String,
    pub conversation_id: Option<String>,
    /// `why_page`, `message` or `agent`.
    pub source: String,
    pub requested_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl From<rapport_core::Handoff> for HandoffDto {
    fn from(h: rapport_core::Handoff) -> Self {
        Self {
            profile_id: h.profile_id.to_string(),
            conversation_id: h.conversation_id,
            source: h.source,
            requested_at: h.requested_at,
            resolved_at: h.resolved_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HandoffListDto {
    pub handoffs: Vec<HandoffDto>,
}

/// Customers waiting for a person, longest-waiting first. Automated messages to them are
/// refused until an agent resolves the request.
#[utoipa::path(get, path = "/v1/handoffs", tag = "decisions",
    responses((status = 200, body = HandoffListDto)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn handoffs(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
) -> ApiResult<axum::Json<HandoffListDto>> {
    let open = state.store.open_handoffs(&caller.workspace_id, 500).await?;
    Ok(axum::Json(HandoffListDto {
        handoffs: open.into_iter().map(Into::into).collect(),
    }))
}

/// Marks a customer's request for a person as taken over by an agent; automation may resume.
#[utoipa::path(post, path = "/v1/profiles/{id}/handoff/resolve", tag = "decisions",
    params(("id" = String, Path, description = "Profile id")),
    responses((status = 200, body = HandoffDto), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn resolve_handoff(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::RequestActions>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<HandoffDto>> {
    let h = state
        .engine
        .resolve_handoff(&caller.workspace_id, &profile_id(&id)?, caller.actor())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("request for a person from profile {id}")))?;
    Ok(axum::Json(h.into()))
}

/// Asks for a person on the customer's behalf (an agent taking over from the bot).
#[utoipa::path(post, path = "/v1/profiles/{id}/handoff", tag = "decisions",
    params(("id" = String, Path, description = "Profile id")),
    responses((status = 201, body = HandoffDto), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn open_handoff(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::RequestActions>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<HandoffDto>)> {
    let profile = profile_id(&id)?;
    let h = state
        .engine
        .request_human(
            &caller.workspace_id,
            &profile,
            None,
            "agent",
            caller.actor(),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(h.into())))
}

/// What an automated reply would be refused for, before it is sent: used by the conversations
/// API to refuse bot messages while the customer waits for a person.
pub async fn automation_paused(
    state: &AppState,
    ws: &rapport_core::WorkspaceId,
    profile: &ProfileId,
) -> ApiResult<bool> {
    Ok(state
        .store
        .handoff(ws, profile)
        .await?
        .is_some_and(|h| h.resolved_at.is_none()))
}

/// The audit shape of a refused bot message.
pub fn paused_error() -> ApiError {
    ApiError::new(
        ErrorKind::Conflict,
        "automation_paused",
        "the customer asked for a person, so automated messages are paused until an agent resolves it (POST /v1/profiles/{id}/handoff/resolve)",
    )
}
