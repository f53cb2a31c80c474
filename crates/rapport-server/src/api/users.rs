//! `GET /v1/users` and `POST /v1/users`: people's dashboard accounts (admins only).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rapport_core::error::ErrorKind;
use rapport_core::{AuditEntry, KeyRole, Login};
use rapport_store::UserChange;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::extract::Json;
use crate::auth::{perm, Can};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// 2-64 characters of a-z, 0-9, '.', '_', '-', '@'; case is folded.
    pub login: String,
    /// `admin`, `supervisor`, `agent` or `analyst`.
    pub role: String,
    /// At least 12 characters; stored only as an Argon2id hash.
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    pub id: String,
    pub login: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    /// When the account was disabled; absent for an account that can sign in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// A new role: `admin`, `supervisor`, `agent` or `analyst`.
    pub role: Option<String>,
    /// `true` disables the account (it cannot sign in, and its sessions end); `false` enables
    /// it again.
    pub disabled: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    /// At least 12 characters; stored only as an Argon2id hash.
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserListDto {
    pub users: Vec<UserDto>,
}

impl From<rapport_store::UserRecord> for UserDto {
    fn from(u: rapport_store::UserRecord) -> Self {
        UserDto {
            id: u.id,
            login: u.login.as_str().to_owned(),
            role: u.role.as_str().to_owned(),
            created_at: u.created_at,
            disabled_at: u.disabled_at,
        }
    }
}

/// Makes an account in the caller's workspace. 409 `conflict` when the login is taken (logins
/// are unique across workspaces). Audited (by account id; the password is never logged).
#[utoipa::path(post, path = "/v1/users", tag = "governance",
    request_body = CreateUserRequest,
    responses((status = 201, body = UserDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageUsers>,
    Json(req): Json<CreateUserRequest>,
) -> ApiResult<(StatusCode, axum::Json<UserDto>)> {
    let login = Login::parse(&req.login).map_err(|m| ApiError::invalid("invalid_login", m))?;
    let role = KeyRole::parse(&req.role).ok_or_else(|| {
        ApiError::invalid(
            "invalid_role",
            format!(
                "role {:?} is not one of admin, supervisor, agent, analyst",
                req.role
            ),
        )
    })?;
    let user = crate::users::create_user(
        state.store.as_ref(),
        &caller.workspace_id,
        &login,
        role,
        &req.password,
    )
    .await?;
    let entry = AuditEntry::new(
        Some(caller.workspace_id.clone()),
        caller.actor(),
        "user.created",
        None,
        json!({"user": user.id, "role": role.as_str()}),
    );
    state.store.append_audit(vec![entry]).await?;
    Ok((StatusCode::CREATED, axum::Json(user.into())))
}

/// The caller's workspace's accounts, by login.
#[utoipa::path(get, path = "/v1/users", tag = "governance",
    responses((status = 200, body = UserListDto), (status = 403, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageUsers>,
) -> ApiResult<axum::Json<UserListDto>> {
    let users = state.store.users(&caller.workspace_id).await?;
    Ok(axum::Json(UserListDto {
        users: users.into_iter().map(UserDto::from).collect(),
    }))
}

fn parse_role(raw: &str) -> Result<KeyRole, ApiError> {
    KeyRole::parse(raw)
        .filter(|r| r.is_for_people())
        .ok_or_else(|| {
            ApiError::invalid(
                "invalid_role",
                format!("role {raw:?} is not one of admin, supervisor, agent, analyst"),
            )
        })
}

/// Changes an account's role or disables (enables) it; either ends the account's dashboard
/// sessions. An administrator cannot demote or disable their own account (409 `own_account`),
/// so a workspace is not left without one by accident. Audited.
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "governance",
    params(("id" = String, Path, description = "the account id (`usr_...`)")),
    request_body = UpdateUserRequest,
    responses((status = 200, body = UserDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageUsers>,
    Path(id): Path<String>,
    Json(req): Json<UpdateUserRequest>,
) -> ApiResult<axum::Json<UserDto>> {
    let role = req.role.as_deref().map(parse_role).transpose()?;
    if role.is_none() && req.disabled.is_none() {
        return Err(ApiError::invalid(
            "empty_change",
            "give `role`, `disabled` or both",
        ));
    }
    let own = caller.user_id() == Some(id.as_str());
    if own && (req.disabled == Some(true) || role.is_some_and(|r| r != caller.role)) {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            "own_account",
            "you cannot disable or change the role of your own account; ask another administrator",
        ));
    }
    let change = UserChange {
        role,
        password_hash: None,
        disabled: req.disabled,
    };
    let mut detail = json!({"user": id});
    if let Some(r) = role {
        detail["role"] = json!(r.as_str());
    }
    if let Some(d) = req.disabled {
        detail["disabled"] = json!(d);
    }
    let entry = AuditEntry::new(
        Some(caller.workspace_id.clone()),
        caller.actor(),
        "user.updated",
        None,
        detail,
    );
    let user = state
        .store
        .update_user(&caller.workspace_id, &id, change, vec![entry])
        .await?;
    Ok(axum::Json(user.into()))
}

/// Sets a new password for an account (an administrator's reset); the account's dashboard
/// sessions end. People change their own password on the dashboard's Account page. Audited
/// without the password.
#[utoipa::path(put, path = "/v1/users/{id}/password", tag = "governance",
    params(("id" = String, Path, description = "the account id (`usr_...`)")),
    request_body = SetPasswordRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn set_password(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageUsers>,
    Path(id): Path<String>,
    Json(req): Json<SetPasswordRequest>,
) -> ApiResult<StatusCode> {
    crate::users::change_password(
        state.store.as_ref(),
        &caller.workspace_id,
        &id,
        &req.password,
        caller.actor(),
        "user.password_reset",
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
