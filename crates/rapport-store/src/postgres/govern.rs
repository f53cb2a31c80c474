//! Governance records in PostgreSQL: consents, the audit chain, erasure and its tombstones. The
//! rules are those of the SQLite backend (`sqlite/govern.rs`); this module adds what several
//! nodes sharing one database need.
//!
//! **Lock order.** A transaction that writes audit records takes the `audit_head` row lock as
//! its very last step, after every profile, identity and counter row it touches. So whoever
//! holds the head never waits for another lock before committing, and the head cannot be part
//! of a deadlock; appenders simply queue on it, for as long as one short statement sequence.
//!
//! **Erasure and bytes on disk.** See [`vacuum_after_erasure`] for what is and is not removed
//! from the server's files.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::Transaction;
use rapport_core::time::{from_millis, to_millis};
use rapport_core::{
    tombstone_hash, AuditEntry, AuditRecord, ConsentChange, ConsentRecord, ConsentState,
    Identifier, IdentifierKind, ProfileId, Purpose,
};
use serde_json::json;

use super::apply::now_ms;
use super::{exec, pg_error, query, query_opt, Failure};
use crate::{AuditQuery, ErasureOptions, ErasureOutcome, StoreError};

/// Appends `entries` to the chain after its head, moving the head along, in one round trip for
/// the records whatever their number. Must be the last locking step of the transaction (see the
/// module docs).
pub(super) async fn append_audit(
    tx: &Transaction<'_>,
    entries: &[AuditEntry],
) -> Result<Vec<AuditRecord>, Failure> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    // Waits here while another transaction holds the head; then reads the head it committed.
    let head = query_opt(tx, "SELECT seq, hash FROM audit_head FOR UPDATE", &[])
        .await?
        .ok_or_else(|| StoreError::Internal("the audit chain has no head row".into()))?;
    let (mut seq, mut prev): (i64, String) = (head.get(0), head.get(1));
    let at = now_ms();
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        seq += 1;
        let r = AuditRecord::seal(e, seq, at, &prev);
        prev.clone_from(&r.hash);
        out.push(r);
    }
    let seqs: Vec<i64> = out.iter().map(|r| r.seq).collect();
    let workspaces: Vec<Option<&str>> = out.iter().map(|r| r.workspace.as_deref()).collect();
    let actors: Vec<&str> = out.iter().map(|r| r.actor.as_str()).collect();
    let actions: Vec<&str> = out.iter().map(|r| r.action.as_str()).collect();
    let subjects: Vec<Option<&str>> = out.iter().map(|r| r.subject.as_deref()).collect();
    let details: Vec<&str> = out.iter().map(|r| r.details.as_str()).collect();
    let prevs: Vec<&str> = out.iter().map(|r| r.prev_hash.as_str()).collect();
    let hashes: Vec<&str> = out.iter().map(|r| r.hash.as_str()).collect();
    exec(
        tx,
        "INSERT INTO audit_log (seq, at, workspace_id, actor, action, subject, details, prev_hash, hash)
         SELECT s, $1::int8, w, a, ac, su, d, p, h
         FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
              AS u(s, w, a, ac, su, d, p, h)",
        &[&at, &seqs, &workspaces, &actors, &actions, &subjects, &details, &prevs, &hashes],
    )
    .await?;
    exec(
        tx,
        "UPDATE audit_head SET seq = $1, hash = $2",
        &[&seq, &prev],
    )
    .await?;
    Ok(out)
}

pub(super) async fn audit_records(
    tx: &Transaction<'_>,
    q: &AuditQuery,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut sql = String::from(
        "SELECT seq, at, workspace_id, actor, action, subject, details, prev_hash, hash
         FROM audit_log WHERE true",
    );
    let workspace = q.workspace.as_ref().map(|w| w.as_str().to_owned());
    let prefix_hi = q.action_prefix.as_ref().map(|p| format!("{p}\u{10FFFF}"));
    let limit = q.limit.min(i64::MAX as usize) as i64;
    let mut args: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
    if let Some(ws) = &workspace {
        args.push(ws);
        sql.push_str(&format!(" AND workspace_id = ${}", args.len()));
    }
    if let (Some(prefix), Some(hi)) = (&q.action_prefix, &prefix_hi) {
        // A range on the "C"-collated column instead of LIKE: `_` in an action name is not a
        // wildcard, and the index on (action, seq) serves it.
        args.push(prefix);
        args.push(hi);
        sql.push_str(&format!(
            " AND action >= ${} AND action < ${}",
            args.len() - 1,
            args.len()
        ));
    }
    if let Some(subject) = &q.subject {
        args.push(subject);
        sql.push_str(&format!(" AND subject = ${}", args.len()));
    }
    if let Some(from) = &q.from_seq {
        args.push(from);
        sql.push_str(&format!(
            " AND seq {} ${}",
            if q.ascending { ">" } else { "<" },
            args.len()
        ));
    }
    args.push(&limit);
    sql.push_str(&format!(
        " ORDER BY seq {} LIMIT ${}",
        if q.ascending { "ASC" } else { "DESC" },
        args.len()
    ));
    let rows = query(tx, &sql, &args).await.map_err(pg_error)?;
    Ok(rows
        .iter()
        .map(|r| AuditRecord {
            seq: r.get(0),
            at_ms: r.get(1),
            workspace: r.get(2),
            actor: r.get(3),
            action: r.get(4),
            subject: r.get(5),
            details: r.get(6),
            prev_hash: r.get(7),
            hash: r.get(8),
        })
        .collect())
}

/// Locks the live profile `id` names (itself, or the survivor it was merged into) and returns
/// it; `None` when the id is unknown in the workspace (or was erased).
pub(super) async fn lock_canonical(
    tx: &Transaction<'_>,
    ws: &str,
    id: &str,
) -> Result<Option<String>, Failure> {
    let mut current = id.to_owned();
    // Merges point every redirect straight at the survivor, so this follows one hop; the bound
    // only guards against a corrupt cycle.
    for _ in 0..16 {
        let Some(row) = query_opt(
            tx,
            "SELECT merged_into FROM profiles WHERE id = $1 AND workspace_id = $2 FOR UPDATE",
            &[&current, &ws],
        )
        .await?
        else {
            return Ok(None);
        };
        match row.get::<_, Option<String>>(0) {
            None => return Ok(Some(current)),
            Some(next) => current = next,
        }
    }
    Err(StoreError::Internal(format!("profile redirects of {id} form a cycle")).into())
}

/// A consent decision as it will be inserted.
pub(super) struct ConsentRow {
    pub(super) profile: String,
    pub(super) purpose: String,
    pub(super) state: ConsentState,
    pub(super) source: String,
    pub(super) at: i64,
    pub(super) recorded_at: i64,
}

/// Inserts consent decisions in order, so `seq` breaks ties between equal decision times as
/// the order they were made in.
pub(super) async fn insert_consents(
    tx: &Transaction<'_>,
    ws: &str,
    rows: &[ConsentRow],
) -> Result<(), Failure> {
    if rows.is_empty() {
        return Ok(());
    }
    let profiles: Vec<&str> = rows.iter().map(|r| r.profile.as_str()).collect();
    let purposes: Vec<&str> = rows.iter().map(|r| r.purpose.as_str()).collect();
    let states: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
    let sources: Vec<&str> = rows.iter().map(|r| r.source.as_str()).collect();
    let at: Vec<i64> = rows.iter().map(|r| r.at).collect();
    let recorded: Vec<i64> = rows.iter().map(|r| r.recorded_at).collect();
    exec(
        tx,
        "INSERT INTO consents (workspace_id, profile_id, purpose, state, source, at, recorded_at)
         SELECT $1::text, p, pu, s, so, a, r
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[])
              WITH ORDINALITY AS u(p, pu, s, so, a, r, n)
         ORDER BY n",
        &[&ws, &profiles, &purposes, &states, &sources, &at, &recorded],
    )
    .await?;
    Ok(())
}

/// The decision in force for each purpose of a profile, with the time it was made.
pub(super) async fn consent_states(
    tx: &Transaction<'_>,
    profile: &str,
) -> Result<HashMap<String, (ConsentState, i64)>, Failure> {
    let rows = query(
        tx,
        "SELECT DISTINCT ON (purpose) purpose, state, at FROM consents WHERE profile_id = $1
         ORDER BY purpose, at DESC, seq DESC",
        &[&profile],
    )
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        let state: String = r.get(1);
        let state = ConsentState::parse(&state)
            .ok_or_else(|| StoreError::Internal("unreadable consent state".into()))?;
        out.insert(r.get(0), (state, r.get(2)));
    }
    Ok(out)
}

pub(super) async fn record_consents(
    tx: &Transaction<'_>,
    ws: &str,
    profile: &str,
    changes: &[ConsentChange],
    audit: &[AuditEntry],
) -> Result<Vec<ConsentRecord>, Failure> {
    // The lock keeps a merge or an erasure of this profile from running alongside.
    let Some(canonical) = lock_canonical(tx, ws, profile).await? else {
        return Err(StoreError::NotFound(format!("profile {profile}")).into());
    };
    let now = now_ms();
    let rows: Vec<ConsentRow> = changes
        .iter()
        .map(|c| ConsentRow {
            profile: canonical.clone(),
            purpose: c.purpose.as_str().to_owned(),
            state: c.state,
            source: c.source.clone(),
            at: to_millis(c.at),
            recorded_at: now,
        })
        .collect();
    insert_consents(tx, ws, &rows).await?;
    let out = consents_of(tx, ws, &canonical).await?;
    append_audit(tx, audit).await?;
    Ok(out)
}

/// A profile's consent history, oldest decision first; [`StoreError::NotFound`] for an
/// unknown profile.
pub(super) async fn consents(
    tx: &Transaction<'_>,
    ws: &str,
    profile: &str,
) -> Result<Vec<ConsentRecord>, StoreError> {
    let Some(canonical) = super::read::canonical_profile(tx, ws, profile).await? else {
        return Err(StoreError::NotFound(format!("profile {profile}")));
    };
    consents_of(tx, ws, &canonical).await
}

async fn consents_of(
    tx: &Transaction<'_>,
    ws: &str,
    canonical: &str,
) -> Result<Vec<ConsentRecord>, StoreError> {
    let rows = query(
        tx,
        "SELECT purpose, state, source, at, recorded_at FROM consents
         WHERE profile_id = $1 AND workspace_id = $2 ORDER BY at, seq",
        &[&canonical, &ws],
    )
    .await
    .map_err(pg_error)?;
    rows.iter()
        .map(|r| {
            let (purpose, state): (String, String) = (r.get(0), r.get(1));
            let (Some(purpose), Some(state)) =
                (Purpose::parse(&purpose), ConsentState::parse(&state))
            else {
                return Err(StoreError::Internal(
                    "unreadable consent in the database".into(),
                ));
            };
            Ok(ConsentRecord {
                profile_id: ProfileId::from_trusted(canonical.to_owned()),
                purpose,
                state,
                source: r.get(2),
                at: from_millis(r.get(3)),
                recorded_at: from_millis(r.get(4)),
            })
        })
        .collect()
}

/// The workspace's salt for tombstone hashes, made on first use. Two nodes making it at once
/// agree: the second insert waits for the first and keeps its salt.
async fn tombstone_salt(tx: &Transaction<'_>, ws: &str) -> Result<Vec<u8>, Failure> {
    let read = "SELECT tombstone_salt FROM workspace_secrets WHERE workspace_id = $1";
    if let Some(r) = query_opt(tx, read, &[&ws]).await? {
        return Ok(r.get(0));
    }
    let mut fresh = Vec::with_capacity(32);
    fresh.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    fresh.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    exec(
        tx,
        "INSERT INTO workspace_secrets (workspace_id, tombstone_salt) VALUES ($1, $2)
         ON CONFLICT (workspace_id) DO NOTHING",
        &[&ws, &fresh],
    )
    .await?;
    Ok(query_opt(tx, read, &[&ws])
        .await?
        .ok_or_else(|| StoreError::Internal("tombstone salt vanished".into()))?
        .get(0))
}

/// Which of the identifiers an ingest batch names belong to erased customers, found with one
/// query (two when the workspace has tombstones at all).
///
/// It must be read after the batch's identities have been looked up: an erasure committing
/// before that lookup is then seen here, and one committing after it removed a profile the
/// lookup found, which the writer notices when it locks that profile and retries.
pub(super) async fn tombstoned(
    tx: &Transaction<'_>,
    ws: &str,
    ids: impl Iterator<Item = Identifier>,
) -> Result<HashSet<(&'static str, String)>, Failure> {
    let salt = query_opt(
        tx,
        "SELECT tombstone_salt FROM workspace_secrets
         WHERE workspace_id = $1 AND EXISTS (SELECT 1 FROM tombstones WHERE workspace_id = $1)",
        &[&ws],
    )
    .await?;
    let Some(salt) = salt.map(|r| r.get::<_, Vec<u8>>(0)) else {
        return Ok(HashSet::new());
    };
    let mut by_hash: HashMap<String, (&'static str, String)> = HashMap::new();
    for id in ids {
        by_hash.insert(
            tombstone_hash(&salt, &id),
            (id.kind().as_str(), id.value().to_owned()),
        );
    }
    if by_hash.is_empty() {
        return Ok(HashSet::new());
    }
    let hashes: Vec<&str> = by_hash.keys().map(String::as_str).collect();
    let rows = query(
        tx,
        "SELECT hash FROM tombstones WHERE workspace_id = $1 AND hash = ANY($2::text[])",
        &[&ws, &hashes],
    )
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| by_hash.get(r.get::<_, &str>(0)).cloned())
        .collect())
}

/// The tables an erasure deletes from. [`vacuum_after_erasure`] vacuums them.
const ERASED_TABLES: [&str; 13] = [
    "route_entries",
    "intent_corrections",
    "profiles",
    "identities",
    "traits",
    "data_quality",
    "events",
    "conversations",
    "messages",
    "consents",
    "nba_contacts",
    "dedupe_reviews",
    "profile_features",
];

pub(super) async fn erase(
    tx: &Transaction<'_>,
    ws: &str,
    profile: &str,
    options: ErasureOptions,
    audit: &AuditEntry,
) -> Result<ErasureOutcome, Failure> {
    let Some(canonical) = lock_canonical(tx, ws, profile).await? else {
        let erased = query_opt(
            tx,
            "SELECT erased_at FROM erasures WHERE workspace_id = $1 AND profile_id = $2",
            &[&ws, &profile],
        )
        .await?;
        return match erased {
            Some(_) => Ok(ErasureOutcome {
                profile_id: profile.to_owned(),
                already_erased: true,
                ..Default::default()
            }),
            None => Err(StoreError::NotFound(format!("profile {profile}")).into()),
        };
    };
    let c = canonical.as_str();
    let mut ids = vec![canonical.clone()];
    for r in query(
        tx,
        "SELECT id FROM profiles WHERE merged_into = $1 AND workspace_id = $2 ORDER BY seq FOR UPDATE",
        &[&c, &ws],
    )
    .await?
    {
        ids.push(r.get(0));
    }
    let mut out = ErasureOutcome {
        profile_id: canonical.clone(),
        erased_ids: ids.clone(),
        ..Default::default()
    };

    // Counted as deleted. Identities come back so their tombstones can be made.
    let identities = query(
        tx,
        "DELETE FROM identities WHERE profile_id = $1 AND workspace_id = $2 RETURNING kind, value",
        &[&c, &ws],
    )
    .await?;
    out.identifiers = identities.len() as u64;
    if options.tombstone && !identities.is_empty() {
        let salt = tombstone_salt(tx, ws).await?;
        let mut hashes: Vec<String> = identities
            .iter()
            .filter_map(|r| {
                let kind = IdentifierKind::parse(r.get::<_, &str>(0))?;
                Some(tombstone_hash(
                    &salt,
                    &Identifier::from_trusted(kind, r.get(1)),
                ))
            })
            .collect();
        // In key order, so two erasures of customers sharing a hash lock it in the same order.
        hashes.sort();
        hashes.dedup();
        out.tombstones = exec(
            tx,
            "INSERT INTO tombstones (workspace_id, hash, erased_at)
             SELECT $1::text, h, $3::int8 FROM unnest($2::text[]) AS u(h)
             ON CONFLICT (workspace_id, hash) DO NOTHING",
            &[&ws, &hashes, &now_ms()],
        )
        .await?;
    }
    out.messages = exec(
        tx,
        "DELETE FROM messages WHERE conversation_id IN
            (SELECT id FROM conversations WHERE profile_id = $1 AND workspace_id = $2)",
        &[&c, &ws],
    )
    .await?;
    for sql in [
        "DELETE FROM route_entries WHERE workspace_id = $2 AND conversation_id IN
            (SELECT id FROM conversations WHERE profile_id = $1 AND workspace_id = $2)",
        "DELETE FROM intent_corrections WHERE workspace_id = $2 AND conversation_id IN
            (SELECT id FROM conversations WHERE profile_id = $1 AND workspace_id = $2)",
    ] {
        exec(tx, sql, &[&c, &ws]).await?;
    }
    out.conversations = exec(
        tx,
        "DELETE FROM conversations WHERE profile_id = $1 AND workspace_id = $2",
        &[&c, &ws],
    )
    .await?;
    out.events = exec(
        tx,
        "DELETE FROM events WHERE profile_id = $1 AND workspace_id = $2",
        &[&c, &ws],
    )
    .await?;
    out.traits = exec(tx, "DELETE FROM traits WHERE profile_id = $1", &[&c]).await?;
    exec(tx, "DELETE FROM data_quality WHERE profile_id = $1", &[&c]).await?;
    out.consents = exec(
        tx,
        "DELETE FROM consents WHERE profile_id = $1 AND workspace_id = $2",
        &[&c, &ws],
    )
    .await?;
    exec(
        tx,
        "DELETE FROM decisions WHERE profile_id = $1 AND workspace_id = $2",
        &[&c, &ws],
    )
    .await?;
    exec(
        tx,
        "DELETE FROM handoffs WHERE profile_id = $1 AND workspace_id = $2",
        &[&c, &ws],
    )
    .await?;
    exec(
        tx,
        "DELETE FROM nba_contacts WHERE profile_id = $1 AND workspace_id = $2",
        &[&c, &ws],
    )
    .await?;
    exec(
        tx,
        "DELETE FROM profile_features WHERE profile_id = ANY($1::text[]) AND workspace_id = $2",
        &[&ids, &ws],
    )
    .await?;
    exec(
        tx,
        "DELETE FROM dedupe_reviews WHERE workspace_id = $2
           AND (profile_a = ANY($1::text[]) OR profile_b = ANY($1::text[]))",
        &[&ids, &ws],
    )
    .await?;
    exec(
        tx,
        "DELETE FROM profiles WHERE id = ANY($1::text[]) AND workspace_id = $2",
        &[&ids, &ws],
    )
    .await?;
    exec(
        tx,
        "INSERT INTO erasures (workspace_id, profile_id, erased_at)
         SELECT $1::text, p, $3::int8 FROM unnest($2::text[]) AS u(p)
         ON CONFLICT (workspace_id, profile_id) DO UPDATE SET erased_at = excluded.erased_at",
        &[&ws, &ids, &now_ms()],
    )
    .await?;

    let mut entry = audit.clone();
    if let serde_json::Value::Object(m) = &mut entry.details {
        m.insert("erased_ids".into(), json!(out.erased_ids));
        m.insert("events".into(), json!(out.events));
        m.insert("messages".into(), json!(out.messages));
        m.insert("tombstones".into(), json!(out.tombstones));
    }
    append_audit(tx, &[entry]).await?;
    Ok(out)
}

/// Vacuums the tables an erasure deleted from, on a connection of its own (VACUUM cannot run
/// inside a transaction). Returns whether it ran; a failure (say, a role that does not own the
/// tables) is logged and otherwise ignored, since the erasure itself has committed.
///
/// What this achieves, and what it does not, on the PostgreSQL server's files:
///
/// - A committed DELETE only marks rows dead: their bytes stay in the table and index pages
///   until vacuumed. VACUUM (with `INDEX_CLEANUP ON`, so it never skips the indexes, whose
///   entries hold key values such as identifiers) removes the dead rows' index entries and
///   frees their space in the heap pages (and in TOAST, where long bodies live) for reuse.
/// - It does not overwrite the freed space. When a page is compacted the surviving rows are
///   moved, which often covers the old bytes, but a dead row that sat at the edge of the free
///   space can remain byte for byte in the page (seen on PostgreSQL 15: a deleted row that was
///   the last one written to its page was still in the table file after VACUUM and a
///   CHECKPOINT) until new rows are written into that page.
/// - It cannot remove rows still visible to an older snapshot: a transaction that started
///   before the erasure committed (on any connection to this database, or a replica with
///   `hot_standby_feedback`) keeps them until it ends, and autovacuum removes them later.
/// - The write-ahead log keeps the history: the original inserts and full-page images of the
///   erased rows stay in WAL segments until checkpoints recycle them (and recycled segments are
///   overwritten, not zeroed), and in any WAL archive, replica or backup for as long as those
///   are kept. None of that can be reached from a database connection.
///
/// So on PostgreSQL the store reports `log_purged = false`: removing every byte needs controls
/// outside the store (encrypted storage, WAL and backup retention, `VACUUM FULL` or a table
/// rewrite in a maintenance window).
pub(super) async fn vacuum_after_erasure(client: &deadpool_postgres::Client) -> bool {
    let sql = format!("VACUUM (INDEX_CLEANUP ON) {}", ERASED_TABLES.join(", "));
    match client.batch_execute(&sql).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %super::pg_error_text(&e), "VACUUM after an erasure failed; autovacuum will reclaim the rows later");
            false
        }
    }
}
