//! `GET /v1/users` and `POST /v1/users`: people's dashboard accounts (admins only).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rapport_core::{AuditEntry, KeyRole, Login};
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
