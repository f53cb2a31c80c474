//! Decisions and requests for a person in PostgreSQL, as in `sqlite/decide.rs`. The version
//! check is in the UPDATE's WHERE clause, so two nodes approving at once cannot both win.

use deadpool_postgres::Transaction;
use rapport_core::time::{from_millis, to_millis};
use rapport_core::{AuditEntry, DecisionRecord, DecisionStatus, Handoff, ProfileId};
use tokio_postgres::Row;

use super::{exec, govern, pg_error, query, query_opt, Failure};
use crate::{DecisionQuery, StoreError};

fn encode(d: &DecisionRecord) -> Result<String, StoreError> {
    serde_json::to_string(d).map_err(|e| StoreError::Internal(format!("decision encoding: {e}")))
}

fn decode(body: &str) -> Result<DecisionRecord, StoreError> {
    serde_json::from_str(body)
        .map_err(|_| StoreError::Internal("unreadable decision in the database".into()))
}

pub(super) async fn save_decision(
    tx: &Transaction<'_>,
    ws: &str,
    mut d: DecisionRecord,
    expected: Option<i64>,
    audit: &[AuditEntry],
) -> Result<DecisionRecord, Failure> {
    let expires = d.approval.as_ref().map(|a| to_millis(a.expires_at));
    match expected {
        None => {
            let Some(canonical) = govern::lock_canonical(tx, ws, d.profile_id.as_str()).await?
            else {
                return Err(StoreError::NotFound(format!("profile {}", d.profile_id)).into());
            };
            d.profile_id = ProfileId::from_trusted(canonical);
            d.version = 1;
            let body = encode(&d)?;
            let inserted = exec(
                tx,
                "INSERT INTO decisions
                 (id, workspace_id, profile_id, kind, status, created_at, expires_at, version, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) ON CONFLICT (id) DO NOTHING",
                &[
                    &d.id,
                    &ws,
                    &d.profile_id.as_str(),
                    &d.kind,
                    &d.status.as_str(),
                    &to_millis(d.created_at),
                    &expires,
                    &body,
                ],
            )
            .await?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("decision {} exists", d.id)).into());
            }
        }
        Some(v) => {
            d.version = v + 1;
            let body = encode(&d)?;
            let changed = exec(
                tx,
                "UPDATE decisions SET status = $1, expires_at = $2, version = $3, body = $4
                 WHERE id = $5 AND workspace_id = $6 AND version = $7",
                &[
                    &d.status.as_str(),
                    &expires,
                    &d.version,
                    &body,
                    &d.id,
                    &ws,
                    &v,
                ],
            )
            .await?;
            if changed == 0 {
                return Err(StoreError::Conflict(format!(
                    "decision {} changed since it was read; read it again",
                    d.id
                ))
                .into());
            }
        }
    }
    govern::append_audit(tx, audit).await?;
    Ok(d)
}

pub(super) async fn decision(
    tx: &Transaction<'_>,
    ws: &str,
    id: &str,
) -> Result<Option<DecisionRecord>, StoreError> {
    let row = query_opt(
        tx,
        "SELECT body FROM decisions WHERE id = $1 AND workspace_id = $2",
        &[&id, &ws],
    )
    .await
    .map_err(pg_error)?;
    row.map(|r| decode(&r.get::<_, String>(0))).transpose()
}

pub(super) async fn decisions(
    tx: &Transaction<'_>,
    q: &DecisionQuery,
) -> Result<Vec<DecisionRecord>, StoreError> {
    let ws = q.workspace.as_str();
    let profile = match &q.profile {
        None => None,
        Some(p) => match super::read::canonical_profile(tx, ws, p.as_str()).await? {
            Some(c) => Some(c),
            None => return Err(StoreError::NotFound(format!("profile {p}"))),
        },
    };
    let status = q.status.map(DecisionStatus::as_str);
    let rows = query(
        tx,
        "SELECT body FROM decisions
         WHERE workspace_id = $1 AND ($2::text IS NULL OR profile_id = $2)
           AND ($3::text IS NULL OR status = $3)
         ORDER BY created_at DESC, id DESC LIMIT $4",
        &[&ws, &profile, &status, &(q.limit as i64)],
    )
    .await
    .map_err(pg_error)?;
    rows.iter()
        .map(|r| decode(&r.get::<_, String>(0)))
        .collect()
}

pub(super) async fn save_handoff(
    tx: &Transaction<'_>,
    ws: &str,
    mut h: Handoff,
    audit: &[AuditEntry],
) -> Result<Handoff, Failure> {
    let Some(canonical) = govern::lock_canonical(tx, ws, h.profile_id.as_str()).await? else {
        return Err(StoreError::NotFound(format!("profile {}", h.profile_id)).into());
    };
    h.profile_id = ProfileId::from_trusted(canonical);
    exec(
        tx,
        "INSERT INTO handoffs (workspace_id, profile_id, conversation_id, source, requested_at, resolved_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (workspace_id, profile_id) DO UPDATE SET conversation_id = EXCLUDED.conversation_id,
            source = EXCLUDED.source, requested_at = EXCLUDED.requested_at,
            resolved_at = EXCLUDED.resolved_at",
        &[
            &ws,
            &h.profile_id.as_str(),
            &h.conversation_id,
            &h.source,
            &to_millis(h.requested_at),
            &h.resolved_at.map(to_millis),
        ],
    )
    .await?;
    govern::append_audit(tx, audit).await?;
    Ok(h)
}

fn handoff_row(r: &Row) -> Handoff {
    Handoff {
        profile_id: ProfileId::from_trusted(r.get(0)),
        conversation_id: r.get(1),
        source: r.get(2),
        requested_at: from_millis(r.get(3)),
        resolved_at: r.get::<_, Option<i64>>(4).map(from_millis),
    }
}

pub(super) async fn handoff(
    tx: &Transaction<'_>,
    ws: &str,
    profile: &str,
) -> Result<Option<Handoff>, StoreError> {
    let Some(canonical) = super::read::canonical_profile(tx, ws, profile).await? else {
        return Err(StoreError::NotFound(format!("profile {profile}")));
    };
    let row = query_opt(
        tx,
        "SELECT profile_id, conversation_id, source, requested_at, resolved_at FROM handoffs
         WHERE workspace_id = $1 AND profile_id = $2",
        &[&ws, &canonical],
    )
    .await
    .map_err(pg_error)?;
    Ok(row.as_ref().map(handoff_row))
}

pub(super) async fn open_handoffs(
    tx: &Transaction<'_>,
    ws: &str,
    limit: usize,
) -> Result<Vec<Handoff>, StoreError> {
    let rows = query(
        tx,
        "SELECT profile_id, conversation_id, source, requested_at, resolved_at FROM handoffs
         WHERE workspace_id = $1 AND resolved_at IS NULL ORDER BY requested_at LIMIT $2",
        &[&ws, &(limit as i64)],
    )
    .await
    .map_err(pg_error)?;
    Ok(rows.iter().map(handoff_row).collect())
}
