//! People's dashboard accounts in SQLite.

use rapport_core::time::{from_millis, to_millis};
use rapport_core::{KeyRole, Login, WorkspaceId, WorkspaceName};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::apply::now_ms;
use crate::{SessionDraft, StoreError, UserChange, UserRecord};

const COLUMNS: &str =
    "u.id, u.workspace_id, w.name, u.login, u.role, u.password_hash, u.created_at, u.disabled_at";

fn user(r: &Row<'_>) -> rusqlite::Result<Result<UserRecord, StoreError>> {
    let role: String = r.get(4)?;
    let Some(role) = KeyRole::parse(&role) else {
        return Ok(Err(StoreError::Internal("unreadable user role".into())));
    };
    Ok(Ok(UserRecord {
        id: r.get(0)?,
        workspace_id: WorkspaceId::from_trusted(r.get(1)?),
        workspace_name: WorkspaceName::from_trusted(r.get(2)?),
        login: Login::from_trusted(r.get(3)?),
        role,
        password_hash: r.get(5)?,
        created_at: from_millis(r.get(6)?),
        disabled_at: r.get::<_, Option<i64>>(7)?.map(from_millis),
    }))
}

pub(super) fn create(
    c: &Connection,
    ws: &WorkspaceId,
    login: &Login,
    role: KeyRole,
    password_hash: &str,
) -> Result<UserRecord, StoreError> {
    let name: Option<String> = c
        .query_row(
            "SELECT name FROM workspaces WHERE id = ?1",
            [ws.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    let name = name.ok_or_else(|| StoreError::NotFound(format!("workspace {ws}")))?;
    let id = format!("usr_{}", uuid::Uuid::now_v7().simple());
    let created = now_ms();
    let inserted = c.execute(
        "INSERT OR IGNORE INTO users (id, workspace_id, login, role, password_hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            id,
            ws.as_str(),
            login.as_str(),
            role.as_str(),
            password_hash,
            created
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("login {login} is taken")));
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

pub(super) fn find(c: &Connection, login: &Login) -> Result<Option<UserRecord>, StoreError> {
    c.query_row(
        &format!(
            "SELECT {COLUMNS} FROM users u JOIN workspaces w ON w.id = u.workspace_id
             WHERE u.login = ?1"
        ),
        [login.as_str()],
        user,
    )
    .optional()?
    .transpose()
}

pub(super) fn list(c: &Connection, ws: &WorkspaceId) -> Result<Vec<UserRecord>, StoreError> {
    let mut stmt = c.prepare(&format!(
        "SELECT {COLUMNS} FROM users u JOIN workspaces w ON w.id = u.workspace_id
         WHERE u.workspace_id = ?1 ORDER BY u.login"
    ))?;
    let rows = stmt.query_map([ws.as_str()], user)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r??);
    }
    Ok(out)
}

fn by_id(c: &Connection, ws: &WorkspaceId, id: &str) -> Result<Option<UserRecord>, StoreError> {
    c.query_row(
        &format!(
            "SELECT {COLUMNS} FROM users u JOIN workspaces w ON w.id = u.workspace_id
             WHERE u.id = ?1 AND u.workspace_id = ?2"
        ),
        params![id, ws.as_str()],
        user,
    )
    .optional()?
    .transpose()
}

pub(super) fn update(
    c: &Connection,
    ws: &WorkspaceId,
    id: &str,
    change: &UserChange,
    audit: &[rapport_core::AuditEntry],
) -> Result<UserRecord, StoreError> {
    let before = by_id(c, ws, id)?.ok_or_else(|| StoreError::NotFound(format!("user {id}")))?;
    if let Some(role) = change.role {
        c.execute(
            "UPDATE users SET role = ?1 WHERE id = ?2",
            params![role.as_str(), id],
        )?;
    }
    if let Some(hash) = &change.password_hash {
        c.execute(
            "UPDATE users SET password_hash = ?1 WHERE id = ?2",
            params![hash, id],
        )?;
    }
    match change.disabled {
        Some(true) if before.disabled_at.is_none() => {
            c.execute(
                "UPDATE users SET disabled_at = ?1 WHERE id = ?2",
                params![now_ms(), id],
            )?;
        }
        Some(false) => {
            c.execute("UPDATE users SET disabled_at = NULL WHERE id = ?1", [id])?;
        }
        _ => {}
    }
    if change.ends_sessions() {
        c.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
    }
    super::govern::append_audit(c, audit)?;
    by_id(c, ws, id)?.ok_or_else(|| StoreError::Internal(format!("user {id} vanished")))
}

pub(super) fn start_session(c: &Connection, s: &SessionDraft) -> Result<(), StoreError> {
    let now = now_ms();
    c.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
    c.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![s.token_hash, s.user_id, now, to_millis(s.expires_at)],
    )?;
    Ok(())
}

pub(super) fn session_user(
    c: &Connection,
    token_hash: &str,
) -> Result<Option<UserRecord>, StoreError> {
    c.query_row(
        &format!(
            "SELECT {COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id
             JOIN workspaces w ON w.id = u.workspace_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled_at IS NULL"
        ),
        params![token_hash, now_ms()],
        user,
    )
    .optional()?
    .transpose()
}

pub(super) fn end_session(c: &Connection, token_hash: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
    Ok(())
}

// Alerts live here too: like accounts, they are about running the workspace, not about one
// customer, and hold no personal data.

fn encode_alert(a: &rapport_core::Alert) -> Result<String, StoreError> {
    serde_json::to_string(a).map_err(|e| StoreError::Internal(format!("alert encoding: {e}")))
}

fn decode_alert(body: &str) -> Result<rapport_core::Alert, StoreError> {
    serde_json::from_str(body)
        .map_err(|_| StoreError::Internal("unreadable alert in the database".into()))
}

pub(super) fn add_alert(
    c: &Connection,
    ws: &WorkspaceId,
    alert: &rapport_core::Alert,
    audit: &[rapport_core::AuditEntry],
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO alerts (id, workspace_id, created_at, open, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            alert.id,
            ws.as_str(),
            rapport_core::time::to_millis(alert.created_at),
            alert.is_open(),
            encode_alert(alert)?
        ],
    )?;
    super::govern::append_audit(c, audit)?;
    Ok(())
}

pub(super) fn alerts(
    c: &Connection,
    ws: &WorkspaceId,
    open_only: bool,
    limit: usize,
) -> Result<Vec<rapport_core::Alert>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT body FROM alerts WHERE workspace_id = ?1 AND (?2 = 0 OR open = 1)
         ORDER BY created_at DESC, id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![ws.as_str(), open_only, limit as i64], |r| {
        r.get::<_, String>(0)
    })?;
    let mut out = Vec::new();
    for r in rows {
        out.push(decode_alert(&r?)?);
    }
    Ok(out)
}

pub(super) fn acknowledge_alert(
    c: &Connection,
    ws: &WorkspaceId,
    id: &str,
    by: &str,
    audit: &[rapport_core::AuditEntry],
) -> Result<rapport_core::Alert, StoreError> {
    let body: Option<String> = c
        .query_row(
            "SELECT body FROM alerts WHERE workspace_id = ?1 AND id = ?2",
            params![ws.as_str(), id],
            |r| r.get(0),
        )
        .optional()?;
    let mut alert =
        decode_alert(&body.ok_or_else(|| StoreError::NotFound(format!("alert {id}")))?)?;
    if !alert.is_open() {
        // Acknowledging twice changes nothing and records nothing.
        return Ok(alert);
    }
    alert.acknowledged_at = Some(chrono::Utc::now());
    alert.acknowledged_by = Some(by.to_owned());
    c.execute(
        "UPDATE alerts SET open = 0, body = ?1 WHERE workspace_id = ?2 AND id = ?3",
        params![encode_alert(&alert)?, ws.as_str(), id],
    )?;
    super::govern::append_audit(c, audit)?;
    Ok(alert)
}
