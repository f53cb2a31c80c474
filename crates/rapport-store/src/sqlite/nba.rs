//! Next-best-action in SQLite: outcome counts per action (the propensities' evidence) and
//! customers' contacts (what the contact policy counts, where outcomes are kept). A contact
//! lives in its offer's decision row; `nba_contacts` is a view of those rows (migration 20).

use rapport_core::time::{from_millis, to_millis};
use rapport_core::{AuditEntry, DecisionRecord, ProfileId};
use rusqlite::{params, Connection, OptionalExtension};

use super::{decide, govern, read};
use crate::{ActionCounts, ActivityRow, NbaContact, NbaOutcome, NbaSnapshot, StoreError};

pub(super) fn record_offers(
    conn: &Connection,
    ws: &str,
    decisions: Vec<DecisionRecord>,
    contacts: Vec<NbaContact>,
    audit: &[AuditEntry],
) -> Result<Vec<DecisionRecord>, StoreError> {
    // Every contact belongs to one of the offers, one at most to each: it is written into
    // that offer's row.
    for (i, c) in contacts.iter().enumerate() {
        if !decisions.iter().any(|d| d.id == c.decision_id) {
            return Err(StoreError::Internal(format!(
                "contact names decision {}, which is not among the offers",
                c.decision_id
            )));
        }
        if contacts[..i].iter().any(|o| o.decision_id == c.decision_id) {
            return Err(StoreError::Internal(format!(
                "decision {} has more than one contact",
                c.decision_id
            )));
        }
    }
    let mut saved = Vec::with_capacity(decisions.len());
    for d in decisions {
        let contact = contacts.iter().find(|c| c.decision_id == d.id);
        saved.push(decide::insert_decision(conn, ws, d, contact)?);
    }
    // The offer's audit entries join the chain in the writer's next batch (`defer_audit`):
    // this is the hot path, and an entry appended alone costs about five WAL pages.
    govern::defer_audit(conn, audit)?;
    Ok(saved)
}

fn contact_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NbaContact> {
    Ok(NbaContact {
        decision_id: r.get(0)?,
        profile_id: ProfileId::from_trusted(r.get(1)?),
        action_id: r.get(2)?,
        channel: r.get(3)?,
        at: from_millis(r.get(4)?),
        outcome: r.get(5)?,
        outcome_at: r.get::<_, Option<i64>>(6)?.map(from_millis),
    })
}

const CONTACT_COLUMNS: &str =
    "decision_id, profile_id, action_id, channel, at, outcome, outcome_at";

/// A customer's contacts since a time, newest first (`?1` workspace, `?2` profile, `?3` time).
fn contacts_since_sql() -> String {
    format!(
        "SELECT {CONTACT_COLUMNS} FROM nba_contacts
         WHERE workspace_id = ?1 AND profile_id = ?2 AND at > ?3 ORDER BY at DESC, decision_id DESC"
    )
}

/// The contact of one offer (`?1` workspace, `?2` decision).
fn contact_of_decision_sql() -> String {
    format!(
        "SELECT {CONTACT_COLUMNS} FROM nba_contacts WHERE decision_id = ?2 AND workspace_id = ?1"
    )
}

pub(super) fn contacts(
    conn: &Connection,
    ws: &str,
    profile: &str,
    since: i64,
) -> Result<Vec<NbaContact>, StoreError> {
    let Some(canonical) = read::canonical_profile(conn, ws, profile)? else {
        return Err(StoreError::NotFound(format!("profile {profile}")));
    };
    contacts_of_canonical(conn, ws, &canonical, since)
}

/// The contacts of a profile id known to be canonical (not merged into another).
fn contacts_of_canonical(
    conn: &Connection,
    ws: &str,
    canonical: &str,
    since: i64,
) -> Result<Vec<NbaContact>, StoreError> {
    let mut stmt = conn.prepare_cached(&contacts_since_sql())?;
    let rows = stmt.query_map(params![ws, canonical, since], contact_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn counts_of(conn: &Connection, ws: &str, action: &str) -> Result<ActionCounts, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT successes, failures FROM nba_counts WHERE workspace_id = ?1 AND action_id = ?2",
        )?
        .query_row([ws, action], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (successes, failures) = found.unwrap_or((0, 0));
    Ok(ActionCounts {
        action_id: action.to_owned(),
        successes,
        failures,
    })
}

pub(super) fn counts(conn: &Connection, ws: &str) -> Result<Vec<ActionCounts>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT action_id, successes, failures FROM nba_counts WHERE workspace_id = ?1 ORDER BY action_id",
    )?;
    let rows = stmt.query_map([ws], |r| {
        Ok(ActionCounts {
            action_id: r.get(0)?,
            successes: r.get(1)?,
            failures: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn record_outcome(
    conn: &Connection,
    ws: &str,
    o: NbaOutcome,
    audit: &[AuditEntry],
) -> Result<(NbaContact, ActionCounts), StoreError> {
    let id = o.decision.id.clone();
    let contact = conn
        .prepare_cached(&contact_of_decision_sql())?
        .query_row([ws, id.as_str()], contact_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("offer {id}")))?;
    if let Some(known) = &contact.outcome {
        return Err(StoreError::Conflict(format!(
            "the outcome of {id} is recorded already ({known})"
        )));
    }
    let at = to_millis(o.at);
    // The contact is the offer's own row (migration 20).
    conn.prepare_cached(
        "UPDATE decisions SET outcome = ?1, outcome_at = ?2 WHERE id = ?3 AND workspace_id = ?4",
    )?
    .execute(params![o.outcome, at, id, ws])?;
    let (s, f) = if o.success { (1, 0) } else { (0, 1) };
    conn.prepare_cached(
        "INSERT INTO nba_counts (workspace_id, action_id, successes, failures) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (workspace_id, action_id) DO UPDATE
         SET successes = successes + excluded.successes, failures = failures + excluded.failures",
    )?
    .execute(params![ws, contact.action_id, s, f])?;
    decide::save_decision(conn, ws, o.decision, Some(o.expected_version), audit)?;
    let counts = counts_of(conn, ws, &contact.action_id)?;
    Ok((
        NbaContact {
            outcome: Some(o.outcome),
            outcome_at: Some(from_millis(at)),
            ..contact
        },
        counts,
    ))
}

/// A JSON number SQLite extracted, as `f64`; anything else (text, null) is no number.
fn number(v: rusqlite::types::Value) -> Option<f64> {
    match v {
        rusqlite::types::Value::Integer(i) => Some(i as f64),
        rusqlite::types::Value::Real(x) if x.is_finite() => Some(x),
        _ => None,
    }
}

/// Everything one decision reads about a customer, on one connection in one read
/// transaction, so the parts agree with each other and the decision costs one hand-off to
/// the blocking pool instead of seven. Event bodies are not parsed here: SQLite extracts the
/// order amount.
pub(super) fn snapshot(
    conn: &Connection,
    ws: &str,
    id: &str,
    since: i64,
    events: usize,
) -> Result<Option<NbaSnapshot>, StoreError> {
    conn.prepare_cached("BEGIN DEFERRED")?.execute([])?;
    let out = snapshot_in(conn, ws, id, since, events);
    conn.prepare_cached("COMMIT")?.execute([])?;
    out
}

fn snapshot_in(
    conn: &Connection,
    ws: &str,
    id: &str,
    since: i64,
    events: usize,
) -> Result<Option<NbaSnapshot>, StoreError> {
    let Some(profile) = read::profile_for_decision(conn, ws, id)? else {
        return Ok(None);
    };
    // The profile read resolved merges: its id is canonical, and the reads below use it
    // as it is (one lookup of the profile instead of four).
    let pid = profile.id.as_str();
    let consents = govern::consents_of_canonical(conn, ws, pid)?;
    let contacts = contacts_of_canonical(conn, ws, pid, since)?;
    let mut stmt = conn.prepare_cached(
        "SELECT ts, name, json_extract(body, '$.properties.revenue'),
                json_extract(body, '$.properties.total'), json_extract(body, '$.properties.value')
         FROM events WHERE profile_id = ?1 AND workspace_id = ?2
         ORDER BY ts DESC, seq DESC LIMIT ?3",
    )?;
    let activity = stmt
        .query_map(params![pid, ws, events as i64], |r| {
            let amount = number(r.get(2)?)
                .or(number(r.get(3)?))
                .or(number(r.get(4)?));
            Ok(ActivityRow {
                at: from_millis(r.get(0)?),
                name: r.get(1)?,
                amount,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let conversations = read::conversations_of_canonical(conn, ws, pid)?;
    let last_sentiment = match conversations.iter().max_by_key(|c| c.updated_at) {
        Some(c) => conn
            .prepare_cached(
                "SELECT json_extract(analysis, '$.sentiment.score') FROM messages
                 WHERE conversation_id = ?1 AND direction = 'inbound'
                   AND json_type(analysis, '$.sentiment.score') IN ('integer', 'real')
                 ORDER BY sent_at DESC, seq DESC LIMIT 1",
            )?
            .query_row([c.id.as_str()], |r| r.get::<_, rusqlite::types::Value>(0))
            .optional()?
            .and_then(number),
        None => None,
    };
    let churn_probability = conn
        .prepare_cached(
            "SELECT json_extract(body, '$.scores.churn.probability') FROM profile_features
             WHERE workspace_id = ?1 AND profile_id = ?2",
        )?
        .query_row([ws, pid], |r| r.get::<_, rusqlite::types::Value>(0))
        .optional()?
        .and_then(number);
    Ok(Some(NbaSnapshot {
        profile,
        consents,
        contacts,
        activity,
        conversations,
        last_sentiment,
        churn_probability,
    }))
}

#[cfg(test)]
mod tests {
    /// Contacts are read through the view of decision rows: the contact policy's query and an
    /// outcome's lookup stay on indexes (a customer's decisions; a decision's id) instead of
    /// reading the workspace's decisions.
    #[test]
    fn contact_reads_use_the_decision_indexes() {
        let plan = super::super::query_plan;
        let policy = plan(&super::contacts_since_sql(), &[&"ws", &"prof", &0]);
        // The index holds the contact's columns: the policy reads no decision row, and
        // the index's order is the answer's.
        assert!(
            policy.contains("COVERING INDEX decisions_profile"),
            "{policy}"
        );
        assert!(!policy.contains("TEMP B-TREE"), "{policy}");
        let outcome = plan(&super::contact_of_decision_sql(), &[&"ws", &"dec"]);
        assert!(
            outcome.contains("sqlite_autoindex_decisions_1"),
            "{outcome}"
        );
    }
}
