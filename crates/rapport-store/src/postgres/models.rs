//! Trained models and customers' materialised features in PostgreSQL, as in
//! `sqlite/models.rs`.

use deadpool_postgres::Transaction;
use rapport_core::time::{from_millis, to_millis};
use rapport_core::{ProfileId, WorkspaceId};
use serde_json::Value;
use tokio_postgres::Row;

use super::{exec, pg_error, query, query_opt, Failure};
use crate::{ModelDraft, ModelVersion, ProfileFeatures, StoreError};

const COLUMNS: &str = "kind, version, created_at, created_by, active, summary";

fn version(r: &Row) -> ModelVersion {
    let summary: String = r.get(5);
    ModelVersion {
        kind: r.get(0),
        version: r.get(1),
        created_at: from_millis(r.get(2)),
        created_by: r.get(3),
        active: r.get(4),
        summary: serde_json::from_str(&summary).unwrap_or(Value::Null),
    }
}

async fn one(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    kind: &str,
    v: i64,
) -> Result<ModelVersion, StoreError> {
    query_opt(
        tx,
        &format!(
            "SELECT {COLUMNS} FROM model_versions WHERE workspace_id = $1 AND kind = $2 AND version = $3"
        ),
        &[&ws.as_str(), &kind, &v],
    )
    .await
    .map_err(pg_error)?
    .map(|r| version(&r))
    .ok_or_else(|| StoreError::NotFound(format!("{kind} model version {v}")))
}

pub(super) async fn save_version(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    draft: &ModelDraft,
    audit: &[rapport_core::AuditEntry],
) -> Result<ModelVersion, Failure> {
    // One writer numbers a kind's versions at a time.
    exec(
        tx,
        "SELECT pg_advisory_xact_lock(hashtext($1::text || '/' || $2::text))",
        &[&ws.as_str(), &draft.kind],
    )
    .await?;
    let next: i64 = query_opt(
        tx,
        "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE workspace_id = $1 AND kind = $2",
        &[&ws.as_str(), &draft.kind],
    )
    .await?
    .map(|r| r.get(0))
    .unwrap_or(1);
    if draft.activate {
        exec(
            tx,
            "UPDATE model_versions SET active = FALSE WHERE workspace_id = $1 AND kind = $2 AND active",
            &[&ws.as_str(), &draft.kind],
        )
        .await?;
    }
    exec(
        tx,
        "INSERT INTO model_versions (workspace_id, kind, version, created_at, created_by, active, summary, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &ws.as_str(),
            &draft.kind,
            &next,
            &to_millis(chrono::Utc::now()),
            &draft.created_by,
            &draft.activate,
            &draft.summary.to_string(),
            &draft.body,
        ],
    )
    .await?;
    super::govern::append_audit(tx, audit).await?;
    Ok(one(tx, ws, &draft.kind, next).await?)
}

pub(super) async fn activate(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    kind: &str,
    v: i64,
    audit: &[rapport_core::AuditEntry],
) -> Result<ModelVersion, Failure> {
    let found = one(tx, ws, kind, v).await?;
    if found.active {
        return Ok(found);
    }
    // Two statements: the unique index on the active version is checked row by row.
    exec(
        tx,
        "UPDATE model_versions SET active = FALSE WHERE workspace_id = $1 AND kind = $2 AND active",
        &[&ws.as_str(), &kind],
    )
    .await?;
    exec(
        tx,
        "UPDATE model_versions SET active = TRUE WHERE workspace_id = $1 AND kind = $2 AND version = $3",
        &[&ws.as_str(), &kind, &v],
    )
    .await?;
    super::govern::append_audit(tx, audit).await?;
    Ok(one(tx, ws, kind, v).await?)
}

pub(super) async fn versions(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    kind: &str,
) -> Result<Vec<ModelVersion>, StoreError> {
    Ok(query(
        tx,
        &format!(
            "SELECT {COLUMNS} FROM model_versions WHERE workspace_id = $1 AND kind = $2 ORDER BY version DESC"
        ),
        &[&ws.as_str(), &kind],
    )
    .await
    .map_err(pg_error)?
    .iter()
    .map(version)
    .collect())
}

pub(super) async fn active(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    kind: &str,
) -> Result<Option<(ModelVersion, String)>, StoreError> {
    Ok(query_opt(
        tx,
        &format!(
            "SELECT {COLUMNS}, body FROM model_versions WHERE workspace_id = $1 AND kind = $2 AND active"
        ),
        &[&ws.as_str(), &kind],
    )
    .await
    .map_err(pg_error)?
    .map(|r| (version(&r), r.get::<_, String>(6))))
}

pub(super) async fn active_version(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    kind: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(query_opt(
        tx,
        "SELECT version FROM model_versions WHERE workspace_id = $1 AND kind = $2 AND active",
        &[&ws.as_str(), &kind],
    )
    .await
    .map_err(pg_error)?
    .map(|r| r.get(0)))
}

pub(super) async fn save_features(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    rows: &[ProfileFeatures],
) -> Result<(), Failure> {
    for f in rows {
        exec(
            tx,
            "INSERT INTO profile_features (workspace_id, profile_id, computed_at, body) VALUES ($1, $2, $3, $4)
             ON CONFLICT (workspace_id, profile_id) DO UPDATE SET computed_at = excluded.computed_at, body = excluded.body
             WHERE excluded.computed_at >= profile_features.computed_at",
            &[
                &ws.as_str(),
                &f.profile_id.as_str(),
                &to_millis(f.computed_at),
                &f.encode_body(),
            ],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn features(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    id: &ProfileId,
) -> Result<Option<ProfileFeatures>, StoreError> {
    query_opt(
        tx,
        "SELECT computed_at, body FROM profile_features WHERE workspace_id = $1 AND profile_id = $2",
        &[&ws.as_str(), &id.as_str()],
    )
    .await
    .map_err(pg_error)?
    .map(|r| ProfileFeatures::decode(id.as_str().to_owned(), r.get(0), &r.get::<_, String>(1)))
    .transpose()
}
