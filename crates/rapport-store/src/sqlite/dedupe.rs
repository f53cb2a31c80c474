//! The review queue of probabilistic dedupe: pairs of profiles a person should judge, kept
//! once per pair whatever their status, and the decisions on them.

use rapport_core::time::from_millis;
use rapport_core::{AuditEntry, ProfileId};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::apply::{now_ms, Applier};
use super::govern;
use crate::review::{ordered, review_body, review_rank, ReviewBody};
use crate::{
    ProfileMerge, ProfileMergeOutcome, ProfileMergeRule, ReviewDecision, ReviewOutcome, ReviewPair,
    ReviewPairDraft, StoreError,
};

const COLUMNS: &str = "id, profile_a, profile_b, body, status, created_at, decided_at, decided_by";

fn pair_from(r: &Row) -> rusqlite::Result<ReviewPair> {
    let body: ReviewBody = serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default();
    Ok(body.into_pair(
        r.get(0)?,
        ProfileId::from_trusted(r.get(1)?),
        ProfileId::from_trusted(r.get(2)?),
        r.get(4)?,
        from_millis(r.get(5)?),
        r.get::<_, Option<i64>>(6)?.map(from_millis),
        r.get(7)?,
    ))
}

pub(super) fn queue(
    conn: &Connection,
    ws: &str,
    pairs: &[ReviewPairDraft],
    audit: &[AuditEntry],
) -> Result<usize, StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO dedupe_reviews (id, workspace_id, profile_a, profile_b, rank, body, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7) ON CONFLICT DO NOTHING",
    )?;
    let now = now_ms();
    let mut added = 0;
    for p in pairs {
        let (a, b) = ordered(&p.profile_a, &p.profile_b);
        added += insert.execute(params![
            crate::review::new_id(),
            ws,
            a,
            b,
            review_rank(p.match_probability),
            review_body(p).to_string(),
            now
        ])?;
    }
    govern::append_audit(conn, audit)?;
    Ok(added)
}

pub(super) fn list(
    conn: &Connection,
    ws: &str,
    status: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<Vec<ReviewPair>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM dedupe_reviews WHERE workspace_id = ?1 AND (?2 IS NULL OR status = ?2)
         ORDER BY rank DESC, created_at, id LIMIT ?3 OFFSET ?4"
    ))?;
    let rows = stmt.query_map(params![ws, status, limit as i64, offset as i64], pair_from)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn get(conn: &Connection, ws: &str, id: &str) -> Result<Option<ReviewPair>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM dedupe_reviews WHERE workspace_id = ?1 AND id = ?2"
        ))?
        .query_row(params![ws, id], pair_from)
        .optional()?)
}

pub(super) fn keys(conn: &Connection, ws: &str) -> Result<Vec<(ProfileId, ProfileId)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT profile_a, profile_b FROM dedupe_reviews WHERE workspace_id = ?1",
    )?;
    let rows = stmt.query_map([ws], |r| {
        Ok((
            ProfileId::from_trusted(r.get(0)?),
            ProfileId::from_trusted(r.get(1)?),
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn decide(
    conn: &Connection,
    applier: Applier<'_>,
    ws: &str,
    id: &str,
    decision: &ReviewDecision,
    by: &str,
    audit: &[AuditEntry],
) -> Result<ReviewOutcome, StoreError> {
    let pair =
        get(conn, ws, id)?.ok_or_else(|| StoreError::NotFound(format!("review pair {id}")))?;
    if pair.status != "pending" {
        return Err(StoreError::Conflict(format!(
            "review pair {id} was decided already ({})",
            pair.status
        )));
    }
    let (status, merge) = match decision {
        ReviewDecision::Reject => ("rejected", None),
        ReviewDecision::Merge { detail } => {
            let mut applier = applier;
            let outcome = applier.merge_profiles(&ProfileMerge {
                a: pair.profile_a.clone(),
                b: pair.profile_b.clone(),
                rule: ProfileMergeRule::DedupeReview,
                detail: detail.clone(),
            })?;
            applier.finish()?;
            let status = match outcome {
                ProfileMergeOutcome::Refused { .. } => "pending",
                _ => "merged",
            };
            (status, Some(outcome))
        }
    };
    if status != "pending" {
        conn.prepare_cached(
            "UPDATE dedupe_reviews SET status = ?3, decided_at = ?4, decided_by = ?5
             WHERE workspace_id = ?1 AND id = ?2",
        )?
        .execute(params![ws, id, status, now_ms(), by])?;
        govern::append_audit(conn, audit)?;
    }
    let pair = get(conn, ws, id)?.ok_or_else(|| StoreError::Internal("pair vanished".into()))?;
    Ok(ReviewOutcome { pair, merge })
}

/// Drops the queue's pairs naming `profile` (an erasure).
pub(super) fn erase(conn: &Connection, profile: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM dedupe_reviews WHERE profile_a = ?1 OR profile_b = ?1")?
        .execute([profile])?;
    Ok(())
}
