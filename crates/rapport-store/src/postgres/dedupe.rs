//! The dedupe review queue, as the SQLite backend keeps it (`sqlite/dedupe.rs`). A decision
//! locks its pair row (`FOR UPDATE`), so of two people deciding at once one wins and the
//! other is told the pair was decided.

use deadpool_postgres::Transaction;
use rapport_core::time::from_millis;
use rapport_core::{AuditEntry, ProfileId};
use tokio_postgres::Row;

use super::apply::{now_ms, Applier};
use super::{exec, govern, pg_error, query, query_opt, Failure};
use crate::review::{new_id, ordered, review_body, review_rank, ReviewBody};
use crate::{
    ProfileMerge, ProfileMergeOutcome, ProfileMergeRule, ReviewDecision, ReviewOutcome, ReviewPair,
    ReviewPairDraft, StoreError,
};

const COLUMNS: &str = "id, profile_a, profile_b, body, status, created_at, decided_at, decided_by";

fn pair_from(r: &Row) -> ReviewPair {
    let body: ReviewBody = serde_json::from_str(r.get::<_, &str>(3)).unwrap_or_default();
    body.into_pair(
        r.get(0),
        ProfileId::from_trusted(r.get(1)),
        ProfileId::from_trusted(r.get(2)),
        r.get(4),
        from_millis(r.get(5)),
        r.get::<_, Option<i64>>(6).map(from_millis),
        r.get(7),
    )
}

pub(super) async fn queue(
    tx: &Transaction<'_>,
    ws: &str,
    pairs: &[ReviewPairDraft],
    audit: &[AuditEntry],
) -> Result<usize, Failure> {
    let now = now_ms();
    let mut added = 0;
    for p in pairs {
        let (a, b) = ordered(&p.profile_a, &p.profile_b);
        added += exec(
            tx,
            "INSERT INTO dedupe_reviews (id, workspace_id, profile_a, profile_b, rank, body, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7) ON CONFLICT DO NOTHING",
            &[
                &new_id(),
                &ws,
                &a,
                &b,
                &review_rank(p.match_probability),
                &review_body(p).to_string(),
                &now,
            ],
        )
        .await? as usize;
    }
    govern::append_audit(tx, audit).await?;
    Ok(added)
}

pub(super) async fn list(
    tx: &Transaction<'_>,
    ws: &str,
    status: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<Vec<ReviewPair>, StoreError> {
    let rows = query(
        tx,
        &format!(
            "SELECT {COLUMNS} FROM dedupe_reviews
             WHERE workspace_id = $1 AND ($2::text IS NULL OR status = $2)
             ORDER BY rank DESC, created_at, id LIMIT $3 OFFSET $4"
        ),
        &[&ws, &status, &(limit as i64), &(offset as i64)],
    )
    .await
    .map_err(pg_error)?;
    Ok(rows.iter().map(pair_from).collect())
}

pub(super) async fn get(
    tx: &Transaction<'_>,
    ws: &str,
    id: &str,
    lock: bool,
) -> Result<Option<ReviewPair>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM dedupe_reviews WHERE workspace_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(query_opt(tx, &sql, &[&ws, &id])
        .await
        .map_err(pg_error)?
        .as_ref()
        .map(pair_from))
}

pub(super) async fn keys(
    tx: &Transaction<'_>,
    ws: &str,
) -> Result<Vec<(ProfileId, ProfileId)>, StoreError> {
    let rows = query(
        tx,
        "SELECT profile_a, profile_b FROM dedupe_reviews WHERE workspace_id = $1",
        &[&ws],
    )
    .await
    .map_err(pg_error)?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                ProfileId::from_trusted(r.get(0)),
                ProfileId::from_trusted(r.get(1)),
            )
        })
        .collect())
}

pub(super) async fn decide(
    tx: &Transaction<'_>,
    ws: &str,
    id: &str,
    decision: &ReviewDecision,
    by: &str,
    audit: &[AuditEntry],
    policy: Option<std::sync::Arc<dyn rapport_core::stitch::StitchPolicy>>,
) -> Result<ReviewOutcome, Failure> {
    let pair = get(tx, ws, id, true)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("review pair {id}")))?;
    if pair.status != "pending" {
        return Err(StoreError::Conflict(format!(
            "review pair {id} was decided already ({})",
            pair.status
        ))
        .into());
    }
    let (status, merge) = match decision {
        ReviewDecision::Reject => ("rejected", None),
        ReviewDecision::Merge { detail } => {
            let wsid = rapport_core::WorkspaceId::from_trusted(ws.to_owned());
            let mut applier = Applier::new(tx, &wsid).with_policy(policy);
            let outcome = applier
                .merge_profiles(&ProfileMerge {
                    a: pair.profile_a.clone(),
                    b: pair.profile_b.clone(),
                    rule: ProfileMergeRule::DedupeReview,
                    detail: detail.clone(),
                })
                .await?;
            applier.finish().await?;
            let status = match outcome {
                ProfileMergeOutcome::Refused { .. } => "pending",
                _ => "merged",
            };
            (status, Some(outcome))
        }
    };
    if status != "pending" {
        exec(
            tx,
            "UPDATE dedupe_reviews SET status = $3, decided_at = $4, decided_by = $5
             WHERE workspace_id = $1 AND id = $2",
            &[&ws, &id, &status, &now_ms(), &by],
        )
        .await?;
        govern::append_audit(tx, audit).await?;
    }
    let pair = get(tx, ws, id, false)
        .await?
        .ok_or_else(|| StoreError::Internal("pair vanished".into()))?;
    Ok(ReviewOutcome { pair, merge })
}
