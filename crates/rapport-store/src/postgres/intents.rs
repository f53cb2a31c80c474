//! Intent corrections and versions of workspaces' intent models in PostgreSQL, as in
//! `sqlite/intents.rs`. New versions of one workspace are numbered under a transaction-scoped
//! advisory lock, so two nodes retraining at once get consecutive versions.

use deadpool_postgres::Transaction;
use rapport_core::time::{from_millis, to_millis};
use rapport_core::{AuditEntry, ProfileId};
use tokio_postgres::Row;

use super::apply::now_ms;
use super::{exec, govern, pg_error, query, query_opt, Failure};
use crate::intent_rows::{confidence_from_ppm, confidence_ppm, with_version};
use crate::{
    ActiveIntentModel, CorrectionQuery, IntentCorrection, IntentModelDraft, IntentModelRecord,
    StoreError,
};

pub(super) async fn save_correction(
    tx: &Transaction<'_>,
    ws: &str,
    c: IntentCorrection,
    audit: &[AuditEntry],
) -> Result<IntentCorrection, Failure> {
    let Some(row) = query_opt(
        tx,
        "SELECT c.profile_id FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.id = $1 AND c.id = $2 AND c.workspace_id = $3",
        &[&c.message_id, &c.conversation_id, &ws],
    )
    .await?
    else {
        return Err(StoreError::NotFound(format!("message {}", c.message_id)).into());
    };
    let profile: String = row.get(0);
    exec(
        tx,
        "INSERT INTO intent_corrections (workspace_id, message_id, conversation_id, profile_id,
            text, predicted, confidence_ppm, model_version, corrected, corrected_by, corrected_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (workspace_id, message_id) DO UPDATE SET
            conversation_id = excluded.conversation_id, profile_id = excluded.profile_id,
            text = excluded.text, predicted = excluded.predicted,
            confidence_ppm = excluded.confidence_ppm, model_version = excluded.model_version,
            corrected = excluded.corrected, corrected_by = excluded.corrected_by,
            corrected_at = excluded.corrected_at",
        &[
            &ws,
            &c.message_id,
            &c.conversation_id,
            &profile,
            &c.text,
            &c.predicted,
            &confidence_ppm(c.confidence),
            &c.model_version,
            &c.corrected,
            &c.corrected_by,
            &to_millis(c.corrected_at),
        ],
    )
    .await?;
    govern::append_audit(tx, audit).await?;
    Ok(IntentCorrection {
        profile_id: ProfileId::from_trusted(profile),
        confidence: confidence_from_ppm(confidence_ppm(c.confidence)),
        corrected_at: from_millis(to_millis(c.corrected_at)),
        ..c
    })
}

fn correction_row(r: &Row) -> IntentCorrection {
    IntentCorrection {
        message_id: r.get(0),
        conversation_id: r.get(1),
        profile_id: ProfileId::from_trusted(r.get(2)),
        text: r.get(3),
        predicted: r.get(4),
        confidence: confidence_from_ppm(r.get(5)),
        model_version: r.get(6),
        corrected: r.get(7),
        corrected_by: r.get(8),
        corrected_at: from_millis(r.get(9)),
    }
}

pub(super) async fn corrections(
    tx: &Transaction<'_>,
    q: &CorrectionQuery,
) -> Result<Vec<IntentCorrection>, StoreError> {
    let rows = query(
        tx,
        "SELECT message_id, conversation_id, profile_id, text, predicted, confidence_ppm,
                model_version, corrected, corrected_by, corrected_at
         FROM intent_corrections
         WHERE workspace_id = $1 AND ($2::text IS NULL OR conversation_id = $2)
         ORDER BY corrected_at DESC, message_id DESC LIMIT $3",
        &[&q.workspace.as_str(), &q.conversation, &(q.limit as i64)],
    )
    .await
    .map_err(pg_error)?;
    Ok(rows.iter().map(correction_row).collect())
}

pub(super) async fn active(
    tx: &Transaction<'_>,
    ws: &str,
) -> Result<ActiveIntentModel, tokio_postgres::Error> {
    let row = query_opt(
        tx,
        "SELECT version, activated_at, activated_by FROM intent_active WHERE workspace_id = $1",
        &[&ws],
    )
    .await?;
    Ok(match row {
        Some(r) => ActiveIntentModel {
            version: r.get(0),
            activated_at: Some(from_millis(r.get(1))),
            activated_by: Some(r.get(2)),
        },
        None => ActiveIntentModel {
            version: 0,
            activated_at: None,
            activated_by: None,
        },
    })
}

pub(super) async fn activate(
    tx: &Transaction<'_>,
    ws: &str,
    version: i64,
    by: &str,
    audit: &[AuditEntry],
) -> Result<ActiveIntentModel, Failure> {
    if version != 0
        && query_opt(
            tx,
            "SELECT 1 FROM intent_models WHERE workspace_id = $1 AND version = $2",
            &[&ws, &version],
        )
        .await?
        .is_none()
    {
        return Err(StoreError::NotFound(format!("intent model version {version}")).into());
    }
    exec(
        tx,
        "INSERT INTO intent_active (workspace_id, version, activated_at, activated_by)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (workspace_id) DO UPDATE SET version = excluded.version,
            activated_at = excluded.activated_at, activated_by = excluded.activated_by",
        &[&ws, &version, &now_ms(), &by],
    )
    .await?;
    govern::append_audit(tx, audit).await?;
    Ok(active(tx, ws).await?)
}

pub(super) async fn save_model(
    tx: &Transaction<'_>,
    ws: &str,
    draft: IntentModelDraft,
    audit: &[AuditEntry],
) -> Result<IntentModelRecord, Failure> {
    exec(
        tx,
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        &[&format!("rapport-intent-models:{ws}")],
    )
    .await?;
    let version: i64 = query(
        tx,
        "SELECT coalesce(max(version), 0) + 1 FROM intent_models WHERE workspace_id = $1",
        &[&ws],
    )
    .await?
    .first()
    .map_or(1, |r| r.get(0));
    let now = now_ms();
    exec(
        tx,
        "INSERT INTO intent_models (workspace_id, version, created_at, created_by, summary, model)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &ws,
            &version,
            &now,
            &draft.created_by,
            &draft.summary.to_string(),
            &draft.model,
        ],
    )
    .await?;
    if draft.activate {
        activate(tx, ws, version, &draft.created_by, &[]).await?;
    }
    govern::append_audit(tx, &with_version(audit, version)).await?;
    Ok(IntentModelRecord {
        version,
        created_at: from_millis(now),
        created_by: draft.created_by,
        summary: draft.summary,
        active: draft.activate,
    })
}

pub(super) async fn models(
    tx: &Transaction<'_>,
    ws: &str,
) -> Result<Vec<IntentModelRecord>, StoreError> {
    let current = active(tx, ws).await.map_err(pg_error)?.version;
    let rows = query(
        tx,
        "SELECT version, created_at, created_by, summary FROM intent_models
         WHERE workspace_id = $1 ORDER BY version DESC",
        &[&ws],
    )
    .await
    .map_err(pg_error)?;
    Ok(rows
        .iter()
        .map(|r| {
            let version: i64 = r.get(0);
            IntentModelRecord {
                version,
                created_at: from_millis(r.get(1)),
                created_by: r.get(2),
                summary: serde_json::from_str(r.get::<_, &str>(3)).unwrap_or_default(),
                active: version == current,
            }
        })
        .collect())
}

pub(super) async fn model_bytes(
    tx: &Transaction<'_>,
    ws: &str,
    version: i64,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(query_opt(
        tx,
        "SELECT model FROM intent_models WHERE workspace_id = $1 AND version = $2",
        &[&ws, &version],
    )
    .await
    .map_err(pg_error)?
    .map(|r| r.get(0)))
}
