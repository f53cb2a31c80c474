//! Decisions and requests for a person, in SQLite. A decision is stored whole as JSON beside
//! the columns it is looked up by; its `version` column makes approvals compare-and-set.

use rapport_core::time::{from_millis, to_millis};
use rapport_core::{AuditEntry, DecisionRecord, DecisionStatus, Handoff, ProfileId};
use rusqlite::{params, Connection, OptionalExtension};

use super::{govern, read};
use crate::{DecisionQuery, NbaContact, StoreError};

fn encode(d: &DecisionRecord) -> Result<String, StoreError> {
    serde_json::to_string(d).map_err(|e| StoreError::Internal(format!("decision encoding: {e}")))
}

fn decode(body: &str) -> Result<DecisionRecord, StoreError> {
    serde_json::from_str(body)
        .map_err(|_| StoreError::Internal("unreadable decision in the database".into()))
}

pub(super) fn save_decision(
    conn: &Connection,
    ws: &str,
    mut d: DecisionRecord,
    expected: Option<i64>,
    audit: &[AuditEntry],
) -> Result<DecisionRecord, StoreError> {
    match expected {
        None => d = insert_decision(conn, ws, d, None)?,
        Some(v) => {
            let expires = d.approval.as_ref().map(|a| to_millis(a.expires_at));
            d.version = v + 1;
            let changed = conn
                .prepare_cached(
                    "UPDATE decisions SET status = ?1, expires_at = ?2, version = ?3, body = ?4
                     WHERE id = ?5 AND workspace_id = ?6 AND version = ?7",
                )?
                .execute(params![
                    d.status.as_str(),
                    expires,
                    d.version,
                    encode(&d)?,
                    d.id,
                    ws,
                    v
                ])?;
            if changed == 0 {
                return Err(StoreError::Conflict(format!(
                    "decision {} changed since it was read; read it again",
                    d.id
                )));
            }
        }
    }
    govern::append_audit(conn, audit)?;
    Ok(d)
}

/// Inserts a new decision (version 1) for its customer's canonical profile. An offer's
/// contact (`contact`, the action offered on a channel) is kept in the same row (migration
/// 20), so the offer writes one row.
pub(super) fn insert_decision(
    conn: &Connection,
    ws: &str,
    mut d: DecisionRecord,
    contact: Option<&NbaContact>,
) -> Result<DecisionRecord, StoreError> {
    let Some(canonical) = read::canonical_profile(conn, ws, d.profile_id.as_str())? else {
        return Err(StoreError::NotFound(format!("profile {}", d.profile_id)));
    };
    if let Some(c) = contact {
        if c.decision_id != d.id
            || to_millis(c.at) != to_millis(d.created_at)
            || c.outcome.is_some()
        {
            return Err(StoreError::Internal(format!(
                "a contact is recorded with its own decision, at the decision's time and without \
                 an outcome; this one names {} at {}",
                c.decision_id, c.at
            )));
        }
    }
    d.profile_id = ProfileId::from_trusted(canonical);
    d.version = 1;
    let expires = d.approval.as_ref().map(|a| to_millis(a.expires_at));
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO decisions
             (id, workspace_id, profile_id, kind, status, created_at, expires_at, version, body,
              action_id, channel)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?9, ?10)",
        )?
        .execute(params![
            d.id,
            ws,
            d.profile_id.as_str(),
            d.kind,
            d.status.as_str(),
            to_millis(d.created_at),
            expires,
            encode(&d)?,
            contact.map(|c| c.action_id.as_str()),
            contact.map(|c| c.channel.as_str()),
        ])?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("decision {} exists", d.id)));
    }
    Ok(d)
}

pub(super) fn decision(
    conn: &Connection,
    ws: &str,
    id: &str,
) -> Result<Option<DecisionRecord>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM decisions WHERE id = ?1 AND workspace_id = ?2")?
        .query_row([id, ws], |r| r.get(0))
        .optional()?;
    body.as_deref().map(decode).transpose()
}

/// A workspace's decisions, newest first, optionally in one state. Used for a listing of the
/// whole workspace other than the approvals queue: it reads the workspace's decisions (every
/// offer among them) and sorts them.
const ANY: &str = "SELECT body FROM decisions
     WHERE workspace_id = ?1 AND (?2 IS NULL OR profile_id = ?2) AND (?3 IS NULL OR status = ?3)
     ORDER BY created_at DESC, id DESC LIMIT ?4";

/// One customer's decisions, newest first, optionally in one state. `profile_id = ?2`
/// without an `IS NULL` alternative lets SQLite walk `decisions_profile` backwards: it reads
/// the customer's decisions, already in the answer's order, however many the workspace has.
/// Its parameters are numbered as in [`ANY`].
const OF_PROFILE: &str = "SELECT body FROM decisions
     WHERE workspace_id = ?1 AND profile_id = ?2 AND (?3 IS NULL OR status = ?3)
     ORDER BY created_at DESC, id DESC LIMIT ?4";

/// The decisions waiting for approval. The literal `status = 'pending_approval'` lets SQLite use
/// the partial index `decisions_pending` (migration 19), which holds only those, so the queue
/// reads a few rows however many offers the workspace has made. Its parameters are numbered as
/// in [`ANY`]; `?3`, the state, is implied.
const PENDING: &str = "SELECT body FROM decisions
     WHERE workspace_id = ?1 AND status = 'pending_approval' AND (?2 IS NULL OR profile_id = ?2)
     ORDER BY created_at DESC, id DESC LIMIT ?4";

pub(super) fn decisions(
    conn: &Connection,
    q: &DecisionQuery,
) -> Result<Vec<DecisionRecord>, StoreError> {
    let ws = q.workspace.as_str();
    let profile = match &q.profile {
        None => None,
        Some(p) => match read::canonical_profile(conn, ws, p.as_str())? {
            Some(c) => Some(c),
            None => return Err(StoreError::NotFound(format!("profile {p}"))),
        },
    };
    let status = q.status.map(DecisionStatus::as_str);
    let mut stmt = conn.prepare_cached(if q.status == Some(DecisionStatus::PendingApproval) {
        PENDING
    } else if profile.is_some() {
        OF_PROFILE
    } else {
        ANY
    })?;
    let rows = stmt.query_map(params![ws, profile, status, q.limit as i64], |r| {
        r.get::<_, String>(0)
    })?;
    let mut out = Vec::new();
    for body in rows {
        out.push(decode(&body?)?);
    }
    Ok(out)
}

pub(super) fn save_handoff(
    conn: &Connection,
    ws: &str,
    mut h: Handoff,
    audit: &[AuditEntry],
) -> Result<Handoff, StoreError> {
    let Some(canonical) = read::canonical_profile(conn, ws, h.profile_id.as_str())? else {
        return Err(StoreError::NotFound(format!("profile {}", h.profile_id)));
    };
    h.profile_id = ProfileId::from_trusted(canonical);
    conn.prepare_cached(
        "INSERT INTO handoffs (workspace_id, profile_id, conversation_id, source, requested_at, resolved_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (workspace_id, profile_id) DO UPDATE SET conversation_id = excluded.conversation_id,
            source = excluded.source, requested_at = excluded.requested_at,
            resolved_at = excluded.resolved_at",
    )?
    .execute(params![
        ws,
        h.profile_id.as_str(),
        h.conversation_id,
        h.source,
        to_millis(h.requested_at),
        h.resolved_at.map(to_millis)
    ])?;
    govern::append_audit(conn, audit)?;
    Ok(h)
}

fn handoff_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Handoff> {
    Ok(Handoff {
        profile_id: ProfileId::from_trusted(r.get(0)?),
        conversation_id: r.get(1)?,
        source: r.get(2)?,
        requested_at: from_millis(r.get(3)?),
        resolved_at: r.get::<_, Option<i64>>(4)?.map(from_millis),
    })
}

pub(super) fn handoff(
    conn: &Connection,
    ws: &str,
    profile: &str,
) -> Result<Option<Handoff>, StoreError> {
    let Some(canonical) = read::canonical_profile(conn, ws, profile)? else {
        return Err(StoreError::NotFound(format!("profile {profile}")));
    };
    Ok(conn
        .prepare_cached(
            "SELECT profile_id, conversation_id, source, requested_at, resolved_at FROM handoffs
             WHERE workspace_id = ?1 AND profile_id = ?2",
        )?
        .query_row([ws, canonical.as_str()], handoff_row)
        .optional()?)
}

pub(super) fn open_handoffs(
    conn: &Connection,
    ws: &str,
    limit: usize,
) -> Result<Vec<Handoff>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT profile_id, conversation_id, source, requested_at, resolved_at FROM handoffs
         WHERE workspace_id = ?1 AND resolved_at IS NULL ORDER BY requested_at LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![ws, limit as i64], handoff_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    /// The approvals queue reads the partial index of pending decisions, not every decision
    /// of the workspace.
    #[test]
    fn the_approvals_queue_reads_only_pending_decisions() {
        let plan = |sql: &str| {
            super::super::query_plan(
                sql,
                rusqlite::params!["ws", None::<String>, "pending_approval", 10],
            )
        };
        let pending = plan(super::PENDING);
        assert!(pending.contains("decisions_pending"), "{pending}");
        assert!(!pending.contains("TEMP B-TREE FOR ORDER BY"), "{pending}");
        // The general listing has no such index: it sorts what it reads.
        let any = plan(super::ANY);
        assert!(!any.contains("decisions_pending"), "{any}");
    }

    /// One customer's decisions are read from the index of decisions by customer, in its
    /// order, not by sorting the workspace's decisions.
    #[test]
    fn a_customers_decisions_are_read_from_their_index() {
        let plan = super::super::query_plan(
            super::OF_PROFILE,
            rusqlite::params!["ws", "prof", None::<String>, 10],
        );
        assert!(plan.contains("decisions_profile"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
}
