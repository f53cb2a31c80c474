//! Intent corrections and versions of workspaces' intent models in SQLite.

use rapport_core::time::{from_millis, to_millis};
use rapport_core::{AuditEntry, ProfileId};
use rusqlite::{params, Connection, OptionalExtension};

use super::apply::now_ms;
use super::govern;
use crate::intent_rows::{confidence_from_ppm, confidence_ppm, with_version};
use crate::{
    ActiveIntentModel, CorrectionQuery, IntentCorrection, IntentModelDraft, IntentModelRecord,
    StoreError,
};

pub(super) fn save_correction(
    conn: &Connection,
    ws: &str,
    c: IntentCorrection,
    audit: &[AuditEntry],
) -> Result<IntentCorrection, StoreError> {
    let profile: Option<String> = conn
        .prepare_cached(
            "SELECT c.profile_id FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.id = ?1 AND c.id = ?2 AND c.workspace_id = ?3",
        )?
        .query_row([&c.message_id, &c.conversation_id, ws], |r| r.get(0))
        .optional()?;
    let Some(profile) = profile else {
        return Err(StoreError::NotFound(format!("message {}", c.message_id)));
    };
    conn.prepare_cached(
        "INSERT OR REPLACE INTO intent_corrections (workspace_id, message_id, conversation_id,
            profile_id, text, predicted, confidence_ppm, model_version, corrected, corrected_by, corrected_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        ws,
        c.message_id,
        c.conversation_id,
        profile,
        c.text,
        c.predicted,
        confidence_ppm(c.confidence),
        c.model_version,
        c.corrected,
        c.corrected_by,
        to_millis(c.corrected_at)
    ])?;
    govern::append_audit(conn, audit)?;
    Ok(IntentCorrection {
        profile_id: ProfileId::from_trusted(profile),
        confidence: confidence_from_ppm(confidence_ppm(c.confidence)),
        corrected_at: from_millis(to_millis(c.corrected_at)),
        ..c
    })
}

fn correction_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IntentCorrection> {
    Ok(IntentCorrection {
        message_id: r.get(0)?,
        conversation_id: r.get(1)?,
        profile_id: ProfileId::from_trusted(r.get(2)?),
        text: r.get(3)?,
        predicted: r.get(4)?,
        confidence: confidence_from_ppm(r.get(5)?),
        model_version: r.get(6)?,
        corrected: r.get(7)?,
        corrected_by: r.get(8)?,
        corrected_at: from_millis(r.get(9)?),
    })
}

pub(super) fn corrections(
    conn: &Connection,
    q: &CorrectionQuery,
) -> Result<Vec<IntentCorrection>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT message_id, conversation_id, profile_id, text, predicted, confidence_ppm,
                model_version, corrected, corrected_by, corrected_at
         FROM intent_corrections
         WHERE workspace_id = ?1 AND (?2 IS NULL OR conversation_id = ?2)
         ORDER BY corrected_at DESC, message_id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![q.workspace.as_str(), q.conversation, q.limit as i64],
        correction_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn active(conn: &Connection, ws: &str) -> Result<ActiveIntentModel, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT version, activated_at, activated_by FROM intent_active WHERE workspace_id = ?1",
        )?
        .query_row([ws], |r| {
            Ok(ActiveIntentModel {
                version: r.get(0)?,
                activated_at: Some(from_millis(r.get(1)?)),
                activated_by: Some(r.get(2)?),
            })
        })
        .optional()?;
    Ok(found.unwrap_or(ActiveIntentModel {
        version: 0,
        activated_at: None,
        activated_by: None,
    }))
}

pub(super) fn activate(
    conn: &Connection,
    ws: &str,
    version: i64,
    by: &str,
    audit: &[AuditEntry],
) -> Result<ActiveIntentModel, StoreError> {
    if version != 0 {
        let known = conn
            .prepare_cached("SELECT 1 FROM intent_models WHERE workspace_id = ?1 AND version = ?2")?
            .query_row(params![ws, version], |_| Ok(()))
            .optional()?;
        if known.is_none() {
            return Err(StoreError::NotFound(format!(
                "intent model version {version}"
            )));
        }
    }
    conn.prepare_cached(
        "INSERT OR REPLACE INTO intent_active (workspace_id, version, activated_at, activated_by)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![ws, version, now_ms(), by])?;
    govern::append_audit(conn, audit)?;
    active(conn, ws)
}

pub(super) fn save_model(
    conn: &Connection,
    ws: &str,
    draft: IntentModelDraft,
    audit: &[AuditEntry],
) -> Result<IntentModelRecord, StoreError> {
    let version: i64 = conn
        .prepare_cached(
            "SELECT coalesce(max(version), 0) + 1 FROM intent_models WHERE workspace_id = ?1",
        )?
        .query_row([ws], |r| r.get(0))?;
    let now = now_ms();
    conn.prepare_cached(
        "INSERT INTO intent_models (workspace_id, version, created_at, created_by, summary, model)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        ws,
        version,
        now,
        draft.created_by,
        draft.summary.to_string(),
        draft.model
    ])?;
    if draft.activate {
        activate(conn, ws, version, &draft.created_by, &[])?;
    }
    govern::append_audit(conn, &with_version(audit, version))?;
    Ok(IntentModelRecord {
        version,
        created_at: from_millis(now),
        created_by: draft.created_by,
        summary: draft.summary,
        active: draft.activate,
    })
}

pub(super) fn models(conn: &Connection, ws: &str) -> Result<Vec<IntentModelRecord>, StoreError> {
    let current = active(conn, ws)?.version;
    let mut stmt = conn.prepare_cached(
        "SELECT version, created_at, created_by, summary FROM intent_models
         WHERE workspace_id = ?1 ORDER BY version DESC",
    )?;
    let rows = stmt.query_map([ws], |r| {
        let version: i64 = r.get(0)?;
        Ok(IntentModelRecord {
            version,
            created_at: from_millis(r.get(1)?),
            created_by: r.get(2)?,
            summary: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
            active: version == current,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn model_bytes(
    conn: &Connection,
    ws: &str,
    version: i64,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT model FROM intent_models WHERE workspace_id = ?1 AND version = ?2")?
        .query_row(params![ws, version], |r| r.get(0))
        .optional()?)
}
