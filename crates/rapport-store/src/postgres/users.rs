//! People's dashboard accounts in PostgreSQL, as in `sqlite/users.rs`.

use deadpool_postgres::Transaction;
use rapport_core::time::{from_millis, to_millis};
use rapport_core::{KeyRole, Login, WorkspaceId, WorkspaceName};
use tokio_postgres::Row;

use super::apply::now_ms;
use super::{exec, pg_error, query, query_opt, Failure};
use crate::{SessionDraft, StoreError, UserChange, UserRecord};

const COLUMNS: &str =
    "u.id, u.workspace_id, w.name, u.login, u.role, u.password_hash, u.created_at, u.disabled_at";

fn user(r: &Row) -> Result<UserRecord, StoreError> {
    let role: String = r.get(4);
    Ok(UserRecord {
        id: r.get(0),
        workspace_id: WorkspaceId::from_trusted(r.get(1)),
        workspace_name: WorkspaceName::from_trusted(r.get(2)),
        login: Login::from_trusted(r.get(3)),
        role: KeyRole::parse(&role)
            .ok_or_else(|| StoreError::Internal("unreadable user role".into()))?,
        password_hash: r.get(5),
        created_at: from_millis(r.get(6)),
        disabled_at: r.get::<_, Option<i64>>(7).map(from_millis),
    })
}

pub(super) async fn create(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    login: &Login,
    role: KeyRole,
    password_hash: &str,
) -> Result<UserRecord, Failure> {
    let name: String = query_opt(
        tx,
        "SELECT name FROM workspaces WHERE id = $1",
        &[&ws.as_str()],
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("workspace {ws}")))?
    .get(0);
    let id = format!("usr_{}", uuid::Uuid::now_v7().simple());
    let created = now_ms();
    let inserted = exec(
        tx,
        "INSERT INTO users (id, workspace_id, login, role, password_hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (login) DO NOTHING",
        &[
            &id,
            &ws.as_str(),
            &login.as_str(),
            &role.as_str(),
            &password_hash,
            &created,
        ],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("login {login} is taken")).into());
    }
    Ok(UserRecord {
        id,
        workspace_id: ws.clone(),
        workspace_name: WorkspaceName::from_trusted(name),
        login: login.clone(),
        role,
        password_hash: password_hash.to_owned(),
        created_at: from_millis(created),
        disabled_at: None,
    })
}

pub(super) async fn find(
    tx: &Transaction<'_>,
    login: &Login,
) -> Result<Option<UserRecord>, StoreError> {
    query_opt(
        tx,
        &format!(
            "SELECT {COLUMNS} FROM users u JOIN workspaces w ON w.id = u.workspace_id
             WHERE u.login = $1"
        ),
        &[&login.as_str()],
    )
    .await
    .map_err(pg_error)?
    .map(|r| user(&r))
    .transpose()
}

pub(super) async fn list(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
) -> Result<Vec<UserRecord>, StoreError> {
    query(
        tx,
        &format!(
            "SELECT {COLUMNS} FROM users u JOIN workspaces w ON w.id = u.workspace_id
             WHERE u.workspace_id = $1 ORDER BY u.login"
        ),
        &[&ws.as_str()],
    )
    .await
    .map_err(pg_error)?
    .iter()
    .map(user)
    .collect()
}

async fn by_id(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    id: &str,
) -> Result<Option<UserRecord>, Failure> {
    Ok(query_opt(
        tx,
        &format!(
            "SELECT {COLUMNS} FROM users u JOIN workspaces w ON w.id = u.workspace_id
             WHERE u.id = $1 AND u.workspace_id = $2 FOR UPDATE OF u"
        ),
        &[&id, &ws.as_str()],
    )
    .await?
    .map(|r| user(&r))
    .transpose()?)
}

pub(super) async fn update(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    id: &str,
    change: &UserChange,
    audit: &[rapport_core::AuditEntry],
) -> Result<UserRecord, Failure> {
    let before = by_id(tx, ws, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("user {id}")))?;
    if let Some(role) = change.role {
        exec(
            tx,
            "UPDATE users SET role = $1 WHERE id = $2",
            &[&role.as_str(), &id],
        )
        .await?;
    }
    if let Some(hash) = &change.password_hash {
        exec(
            tx,
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            &[hash, &id],
        )
        .await?;
    }
    match change.disabled {
        Some(true) if before.disabled_at.is_none() => {
            exec(
                tx,
                "UPDATE users SET disabled_at = $1 WHERE id = $2",
                &[&now_ms(), &id],
            )
            .await?;
        }
        Some(false) => {
            exec(
                tx,
                "UPDATE users SET disabled_at = NULL WHERE id = $1",
                &[&id],
            )
            .await?;
        }
        _ => {}
    }
    if change.ends_sessions() {
        exec(tx, "DELETE FROM sessions WHERE user_id = $1", &[&id]).await?;
    }
    super::govern::append_audit(tx, audit).await?;
    Ok(by_id(tx, ws, id)
        .await?
        .ok_or_else(|| StoreError::Internal(format!("user {id} vanished")))?)
}

pub(super) async fn start_session(tx: &Transaction<'_>, s: &SessionDraft) -> Result<(), Failure> {
    let now = now_ms();
    exec(tx, "DELETE FROM sessions WHERE expires_at <= $1", &[&now]).await?;
    exec(
        tx,
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        &[&s.token_hash, &s.user_id, &now, &to_millis(s.expires_at)],
    )
    .await?;
    Ok(())
}

pub(super) async fn session_user(
    tx: &Transaction<'_>,
    token_hash: &str,
) -> Result<Option<UserRecord>, StoreError> {
    query_opt(
        tx,
        &format!(
            "SELECT {COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id
             JOIN workspaces w ON w.id = u.workspace_id
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL"
        ),
        &[&token_hash, &now_ms()],
    )
    .await
    .map_err(pg_error)?
    .map(|r| user(&r))
    .transpose()
}

pub(super) async fn end_session(tx: &Transaction<'_>, token_hash: &str) -> Result<(), Failure> {
    exec(
        tx,
        "DELETE FROM sessions WHERE token_hash = $1",
        &[&token_hash],
    )
    .await?;
    Ok(())
}

// Alerts, as in `sqlite/users.rs`.

fn encode_alert(a: &rapport_core::Alert) -> Result<String, StoreError> {
    serde_json::to_string(a).map_err(|e| StoreError::Internal(format!("alert encoding: {e}")))
}

fn decode_alert(body: &str) -> Result<rapport_core::Alert, StoreError> {
    serde_json::from_str(body)
        .map_err(|_| StoreError::Internal("unreadable alert in the database".into()))
}

pub(super) async fn add_alert(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    alert: &rapport_core::Alert,
    audit: &[rapport_core::AuditEntry],
) -> Result<(), Failure> {
    exec(
        tx,
        "INSERT INTO alerts (id, workspace_id, created_at, open, body) VALUES ($1, $2, $3, $4, $5)",
        &[
            &alert.id,
            &ws.as_str(),
            &rapport_core::time::to_millis(alert.created_at),
            &alert.is_open(),
            &encode_alert(alert)?,
        ],
    )
    .await?;
    super::govern::append_audit(tx, audit).await?;
    Ok(())
}

pub(super) async fn alerts(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    open_only: bool,
    limit: usize,
) -> Result<Vec<rapport_core::Alert>, StoreError> {
    query(
        tx,
        "SELECT body FROM alerts WHERE workspace_id = $1 AND (NOT $2 OR open)
         ORDER BY created_at DESC, id DESC LIMIT $3",
        &[&ws.as_str(), &open_only, &(limit as i64)],
    )
    .await
    .map_err(pg_error)?
    .iter()
    .map(|r| decode_alert(&r.get::<_, String>(0)))
    .collect()
}

pub(super) async fn acknowledge_alert(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    id: &str,
    by: &str,
    audit: &[rapport_core::AuditEntry],
) -> Result<rapport_core::Alert, Failure> {
    let body: String = query_opt(
        tx,
        "SELECT body FROM alerts WHERE workspace_id = $1 AND id = $2 FOR UPDATE",
        &[&ws.as_str(), &id],
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("alert {id}")))?
    .get(0);
    let mut alert = decode_alert(&body)?;
    if !alert.is_open() {
        return Ok(alert);
    }
    alert.acknowledged_at = Some(chrono::Utc::now());
    alert.acknowledged_by = Some(by.to_owned());
    exec(
        tx,
        "UPDATE alerts SET open = FALSE, body = $1 WHERE workspace_id = $2 AND id = $3",
        &[&encode_alert(&alert)?, &ws.as_str(), &id],
    )
    .await?;
    super::govern::append_audit(tx, audit).await?;
    Ok(alert)
}
