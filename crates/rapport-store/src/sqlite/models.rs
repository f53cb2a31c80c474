//! Trained models (versioned, one active per kind) and customers' materialised features, in
//! SQLite.

use rapport_core::time::{from_millis, to_millis};
use rapport_core::{ProfileId, WorkspaceId};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::Value;

use crate::{ModelDraft, ModelVersion, ProfileFeatures, StoreError};

const COLUMNS: &str = "kind, version, created_at, created_by, active, summary";

fn version(r: &Row<'_>) -> rusqlite::Result<ModelVersion> {
    let summary: String = r.get(5)?;
    Ok(ModelVersion {
        kind: r.get(0)?,
        version: r.get(1)?,
        created_at: from_millis(r.get(2)?),
        created_by: r.get(3)?,
        active: r.get(4)?,
        summary: serde_json::from_str(&summary).unwrap_or(Value::Null),
    })
}

fn one(c: &Connection, ws: &WorkspaceId, kind: &str, v: i64) -> Result<ModelVersion, StoreError> {
    c.query_row(
        &format!(
            "SELECT {COLUMNS} FROM model_versions WHERE workspace_id = ?1 AND kind = ?2 AND version = ?3"
        ),
        params![ws.as_str(), kind, v],
        version,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("{kind} model version {v}")))
}

pub(super) fn save_version(
    c: &Connection,
    ws: &WorkspaceId,
    draft: &ModelDraft,
    audit: &[rapport_core::AuditEntry],
) -> Result<ModelVersion, StoreError> {
    let next: i64 = c.query_row(
        "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE workspace_id = ?1 AND kind = ?2",
        params![ws.as_str(), draft.kind],
        |r| r.get(0),
    )?;
    if draft.activate {
        c.execute(
            "UPDATE model_versions SET active = 0 WHERE workspace_id = ?1 AND kind = ?2 AND active = 1",
            params![ws.as_str(), draft.kind],
        )?;
    }
    c.execute(
        "INSERT INTO model_versions (workspace_id, kind, version, created_at, created_by, active, summary, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            ws.as_str(),
            draft.kind,
            next,
            to_millis(chrono::Utc::now()),
            draft.created_by,
            draft.activate,
            draft.summary.to_string(),
            draft.body
        ],
    )?;
    super::govern::append_audit(c, audit)?;
    one(c, ws, &draft.kind, next)
}

pub(super) fn activate(
    c: &Connection,
    ws: &WorkspaceId,
    kind: &str,
    v: i64,
    audit: &[rapport_core::AuditEntry],
) -> Result<ModelVersion, StoreError> {
    let found = one(c, ws, kind, v)?;
    if found.active {
        return Ok(found);
    }
    // Two statements: the unique index on the active version is checked row by row.
    c.execute(
        "UPDATE model_versions SET active = 0 WHERE workspace_id = ?1 AND kind = ?2 AND active = 1",
        params![ws.as_str(), kind],
    )?;
    c.execute(
        "UPDATE model_versions SET active = 1 WHERE workspace_id = ?1 AND kind = ?2 AND version = ?3",
        params![ws.as_str(), kind, v],
    )?;
    super::govern::append_audit(c, audit)?;
    one(c, ws, kind, v)
}

pub(super) fn versions(
    c: &Connection,
    ws: &WorkspaceId,
    kind: &str,
) -> Result<Vec<ModelVersion>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM model_versions WHERE workspace_id = ?1 AND kind = ?2 ORDER BY version DESC"
    ))?;
    let rows = stmt.query_map(params![ws.as_str(), kind], version)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn active(
    c: &Connection,
    ws: &WorkspaceId,
    kind: &str,
) -> Result<Option<(ModelVersion, String)>, StoreError> {
    Ok(c.query_row(
        &format!(
            "SELECT {COLUMNS}, body FROM model_versions WHERE workspace_id = ?1 AND kind = ?2 AND active = 1"
        ),
        params![ws.as_str(), kind],
        |r| Ok((version(r)?, r.get::<_, String>(6)?)),
    )
    .optional()?)
}

pub(super) fn active_version(
    c: &Connection,
    ws: &WorkspaceId,
    kind: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(c.query_row(
        "SELECT version FROM model_versions WHERE workspace_id = ?1 AND kind = ?2 AND active = 1",
        params![ws.as_str(), kind],
        |r| r.get(0),
    )
    .optional()?)
}

pub(super) fn save_features(
    c: &Connection,
    ws: &WorkspaceId,
    rows: &[ProfileFeatures],
) -> Result<(), StoreError> {
    let mut stmt = c.prepare_cached(
        "INSERT INTO profile_features (workspace_id, profile_id, computed_at, body) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (workspace_id, profile_id) DO UPDATE SET computed_at = excluded.computed_at, body = excluded.body
         WHERE excluded.computed_at >= profile_features.computed_at",
    )?;
    for f in rows {
        stmt.execute(params![
            ws.as_str(),
            f.profile_id.as_str(),
            to_millis(f.computed_at),
            f.encode_body()
        ])?;
    }
    Ok(())
}

pub(super) fn features(
    c: &Connection,
    ws: &WorkspaceId,
    id: &ProfileId,
) -> Result<Option<ProfileFeatures>, StoreError> {
    let row: Option<(i64, String)> = c
        .query_row(
            "SELECT computed_at, body FROM profile_features WHERE workspace_id = ?1 AND profile_id = ?2",
            params![ws.as_str(), id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(at, body)| ProfileFeatures::decode(id.as_str().to_owned(), at, &body))
        .transpose()
}
