//! Next-best-action in PostgreSQL, as in `sqlite/nba.rs`. Counts are added in one upsert, so
//! outcomes recorded on two nodes at once both count; the outcome of one offer is set only
//! while it is unset (the UPDATE's WHERE clause), so it is recorded once.

use deadpool_postgres::Transaction;
use rapport_core::time::{from_millis, to_millis};
use rapport_core::{AuditEntry, DecisionRecord, ProfileId};
use tokio_postgres::Row;

use super::{decide, exec, govern, pg_error, query, query_opt, Failure};
use crate::{ActionCounts, NbaContact, NbaOutcome, StoreError};

pub(super) async fn record_offers(
    tx: &Transaction<'_>,
    ws: &str,
    decisions: Vec<DecisionRecord>,
    contacts: Vec<NbaContact>,
    audit: &[AuditEntry],
) -> Result<Vec<DecisionRecord>, Failure> {
    let mut saved = Vec::with_capacity(decisions.len());
    for d in decisions {
        saved.push(decide::save_decision(tx, ws, d, None, &[]).await?);
    }
    for c in contacts {
        let Some(d) = saved.iter().find(|d| d.id == c.decision_id) else {
            return Err(StoreError::Internal(format!(
                "contact names decision {}, which is not among the offers",
                c.decision_id
            ))
            .into());
        };
        exec(
            tx,
            "INSERT INTO nba_contacts (decision_id, workspace_id, profile_id, action_id, channel, at, outcome, outcome_at)
             VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)",
            &[
                &c.decision_id,
                &ws,
                &d.profile_id.as_str(),
                &c.action_id,
                &c.channel,
                &to_millis(c.at),
            ],
        )
        .await?;
    }
    govern::append_audit(tx, audit).await?;
    Ok(saved)
}

fn contact_row(r: &Row) -> NbaContact {
    NbaContact {
        decision_id: r.get(0),
        profile_id: ProfileId::from_trusted(r.get(1)),
        action_id: r.get(2),
        channel: r.get(3),
        at: from_millis(r.get(4)),
        outcome: r.get(5),
        outcome_at: r.get::<_, Option<i64>>(6).map(from_millis),
    }
}

pub(super) async fn contacts(
    tx: &Transaction<'_>,
    ws: &str,
    profile: &str,
    since: i64,
) -> Result<Vec<NbaContact>, StoreError> {
    let Some(canonical) = super::read::canonical_profile(tx, ws, profile).await? else {
        return Err(StoreError::NotFound(format!("profile {profile}")));
    };
    let rows = query(
        tx,
        "SELECT decision_id, profile_id, action_id, channel, at, outcome, outcome_at FROM nba_contacts
         WHERE workspace_id = $1 AND profile_id = $2 AND at > $3 ORDER BY at DESC, decision_id DESC",
        &[&ws, &canonical, &since],
    )
    .await
    .map_err(pg_error)?;
    Ok(rows.iter().map(contact_row).collect())
}

pub(super) async fn counts(
    tx: &Transaction<'_>,
    ws: &str,
) -> Result<Vec<ActionCounts>, StoreError> {
    let rows = query(
        tx,
        "SELECT action_id, successes, failures FROM nba_counts WHERE workspace_id = $1 ORDER BY action_id",
        &[&ws],
    )
    .await
    .map_err(pg_error)?;
    Ok(rows
        .iter()
        .map(|r| ActionCounts {
            action_id: r.get(0),
            successes: r.get(1),
            failures: r.get(2),
        })
        .collect())
}

pub(super) async fn record_outcome(
    tx: &Transaction<'_>,
    ws: &str,
    o: NbaOutcome,
    audit: &[AuditEntry],
) -> Result<(NbaContact, ActionCounts), Failure> {
    let id = o.decision.id.clone();
    let at = to_millis(o.at);
    let updated = query_opt(
        tx,
        "UPDATE nba_contacts SET outcome = $1, outcome_at = $2
         WHERE workspace_id = $3 AND decision_id = $4 AND outcome IS NULL
         RETURNING decision_id, profile_id, action_id, channel, at, outcome, outcome_at",
        &[&o.outcome, &at, &ws, &id],
    )
    .await?;
    let contact = match updated {
        Some(row) => contact_row(&row),
        None => {
            let known = query_opt(
                tx,
                "SELECT outcome FROM nba_contacts WHERE workspace_id = $1 AND decision_id = $2",
                &[&ws, &id],
            )
            .await?;
            return Err(match known {
                None => StoreError::NotFound(format!("offer {id}")),
                Some(r) => StoreError::Conflict(format!(
                    "the outcome of {id} is recorded already ({})",
                    r.get::<_, Option<String>>(0).unwrap_or_default()
                )),
            }
            .into());
        }
    };
    let (s, f): (i64, i64) = if o.success { (1, 0) } else { (0, 1) };
    let row = query_opt(
        tx,
        "INSERT INTO nba_counts (workspace_id, action_id, successes, failures) VALUES ($1, $2, $3, $4)
         ON CONFLICT (workspace_id, action_id) DO UPDATE
         SET successes = nba_counts.successes + EXCLUDED.successes,
             failures = nba_counts.failures + EXCLUDED.failures
         RETURNING successes, failures",
        &[&ws, &contact.action_id, &s, &f],
    )
    .await?
    .ok_or_else(|| StoreError::Internal("the counts upsert returned nothing".into()))?;
    let counts = ActionCounts {
        action_id: contact.action_id.clone(),
        successes: row.get(0),
        failures: row.get(1),
    };
    decide::save_decision(tx, ws, o.decision, Some(o.expected_version), audit).await?;
    Ok((contact, counts))
}
