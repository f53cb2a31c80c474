//! Governance records in SQLite: consents, the audit chain, erasure and its tombstones.
//!
//! Everything here runs on the writer's connection inside its transaction (reads excepted),
//! so an audit record commits or vanishes with the change it describes.

use std::path::Path;

use rapport_core::time::{from_millis, to_millis};
use rapport_core::{
    tombstone_hash, Actor, AuditEntry, AuditRecord, ConsentChange, ConsentRecord, ConsentState,
    Identifier, IdentifierKind, ProfileId, Purpose, GENESIS_HASH,
};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;

use super::apply::now_ms;
use super::{cache, read};
use crate::{AuditQuery, ErasureOptions, ErasureOutcome, StoreError};

/// Appends `entries` to the chain after its current head, after any entries still waiting
/// (see [`defer_audit`]), so the chain keeps the order in which changes were committed.
pub(super) fn append_audit(
    conn: &Connection,
    entries: &[AuditEntry],
) -> Result<Vec<AuditRecord>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    flush_deferred_audit(conn)?;
    let at = now_ms();
    chain(
        conn,
        entries
            .iter()
            .map(|e| AuditRecord::unsealed(e, at))
            .collect(),
    )
}

/// Links `records` (unsealed: no position, no hashes) to the chain after its head and inserts
/// them.
fn chain(conn: &Connection, mut records: Vec<AuditRecord>) -> Result<Vec<AuditRecord>, StoreError> {
    let head: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (mut seq, mut prev) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
    let mut insert = conn.prepare_cached(
        "INSERT INTO audit_log (seq, at, workspace_id, actor, action, subject, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for r in &mut records {
        seq += 1;
        r.link(seq, &prev);
        insert.execute(params![
            r.seq,
            r.at_ms,
            r.workspace,
            r.actor,
            r.action,
            r.subject,
            r.details,
            r.prev_hash,
            r.hash
        ])?;
        prev.clone_from(&r.hash);
    }
    Ok(records)
}

thread_local! {
    /// Whether this thread's connection may have left entries in `audit_pending`: set by
    /// [`defer_audit`], cleared by [`flush_deferred_audit`]. Only the writer thread's value
    /// means anything; the writer reads it after each commit.
    static DEFERRED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Records `entries` in `audit_pending`, committed with the change they describe, to join the
/// chain in a later batch ([`flush_deferred_audit`]). An entry waiting there is as durable as
/// the change; what it lacks until then is its place in the chain.
///
/// Why: every entry appended alone rewrites the last page of the audit table and of its three
/// indexes, about five of the thirteen pages a next-best-action offer wrote to the WAL at one
/// offer per commit. Waiting entries cost one page, and a batch of them joins the chain for a
/// few pages in all.
pub(super) fn defer_audit(conn: &Connection, entries: &[AuditEntry]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let at = now_ms();
    let mut insert = conn.prepare_cached(
        "INSERT INTO audit_pending (at, workspace_id, actor, action, subject, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for e in entries {
        let r = AuditRecord::unsealed(e, at);
        insert.execute(params![
            r.at_ms,
            r.workspace,
            r.actor,
            r.action,
            r.subject,
            r.details
        ])?;
    }
    DEFERRED.with(|d| d.set(true));
    Ok(())
}

/// Moves every entry waiting in `audit_pending` into the chain, oldest first, with the time it
/// was recorded; returns how many. Runs inside the caller's transaction.
pub(super) fn flush_deferred_audit(conn: &Connection) -> Result<usize, StoreError> {
    // Not yet in the chain: no position, no hashes (`chain` sets them).
    let waiting = conn
        .prepare_cached(
            "SELECT 0, at, workspace_id, actor, action, subject, details, '', ''
             FROM audit_pending ORDER BY rowid",
        )?
        .query_map([], audit_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let moved = waiting.len();
    if moved > 0 {
        chain(conn, waiting)?;
        conn.prepare_cached("DELETE FROM audit_pending")?
            .execute([])?;
    }
    DEFERRED.with(|d| d.set(false));
    Ok(moved)
}

/// Whether entries may be waiting in `audit_pending` after this thread's last write.
pub(super) fn audit_deferred() -> bool {
    DEFERRED.with(std::cell::Cell::get)
}

/// Says entries may be waiting again (a rolled-back job or commit may have put back what a
/// flush had moved).
pub(super) fn audit_may_wait() {
    DEFERRED.with(|d| d.set(true));
}

/// An audit record from `seq, at, workspace_id, actor, action, subject, details, prev_hash,
/// hash`, in that order.
fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        seq: r.get(0)?,
        at_ms: r.get(1)?,
        workspace: r.get(2)?,
        actor: r.get(3)?,
        action: r.get(4)?,
        subject: r.get(5)?,
        details: r.get(6)?,
        prev_hash: r.get(7)?,
        hash: r.get(8)?,
    })
}

pub(super) fn audit_records(
    conn: &Connection,
    q: &AuditQuery,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut sql = String::from(
        "SELECT seq, at, workspace_id, actor, action, subject, details, prev_hash, hash
         FROM audit_log WHERE 1 = 1",
    );
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(ws) = &q.workspace {
        sql.push_str(" AND workspace_id = ?");
        args.push(ws.as_str().to_owned().into());
    }
    if let Some(prefix) = &q.action_prefix {
        // A range instead of LIKE, so `_` in action names is not a wildcard.
        sql.push_str(" AND action >= ? AND action < ?");
        args.push(prefix.clone().into());
        args.push(format!("{prefix}\u{10FFFF}").into());
    }
    if let Some(subject) = &q.subject {
        sql.push_str(" AND subject = ?");
        args.push(subject.clone().into());
    }
    if let Some(from) = q.from_seq {
        sql.push_str(if q.ascending {
            " AND seq > ?"
        } else {
            " AND seq < ?"
        });
        args.push(from.into());
    }
    sql.push_str(if q.ascending {
        " ORDER BY seq ASC"
    } else {
        " ORDER BY seq DESC"
    });
    sql.push_str(" LIMIT ?");
    args.push((q.limit.min(i64::MAX as usize) as i64).into());
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), audit_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The consent state in force for a profile and purpose, with the time it was decided.
fn current_consent(
    conn: &Connection,
    profile: &str,
    purpose: &str,
) -> Result<Option<(ConsentState, i64)>, StoreError> {
    let row: Option<(String, i64)> = conn
        .prepare_cached(
            "SELECT state, at FROM consents WHERE profile_id = ?1 AND purpose = ?2
             ORDER BY at DESC, seq DESC LIMIT 1",
        )?
        .query_row([profile, purpose], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.and_then(|(s, at)| ConsentState::parse(&s).map(|s| (s, at))))
}

fn insert_consent(
    conn: &Connection,
    ws: &str,
    profile: &str,
    change: &ConsentChange,
    recorded_at: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO consents (workspace_id, profile_id, purpose, state, source, at, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        ws,
        profile,
        change.purpose.as_str(),
        change.state.as_str(),
        change.source,
        to_millis(change.at),
        recorded_at
    ])?;
    Ok(())
}

pub(super) fn record_consents(
    conn: &Connection,
    ws: &str,
    profile: &str,
    changes: &[ConsentChange],
    audit: &[AuditEntry],
) -> Result<Vec<ConsentRecord>, StoreError> {
    let Some(canonical) = read::canonical_profile(conn, ws, profile)? else {
        return Err(StoreError::NotFound(format!("profile {profile}")));
    };
    let now = now_ms();
    for change in changes {
        insert_consent(conn, ws, &canonical, change, now)?;
    }
    append_audit(conn, audit)?;
    consents(conn, ws, &canonical)
}

/// Applies the consent an ingested event states: a purpose's state changes only when the
/// event is newer than the decision in force and says something different, so an SDK that
/// repeats the same preferences on every event does not flood the history or the audit log.
pub(super) fn apply_event_consents(
    conn: &Connection,
    ws: &str,
    profile: &str,
    consents: &[(String, bool)],
    ts: i64,
    message_id: &str,
) -> Result<(), StoreError> {
    let mut audit = Vec::new();
    for (purpose, granted) in consents {
        let Some(purpose) = Purpose::parse(purpose) else {
            continue;
        };
        let state = if *granted {
            ConsentState::Granted
        } else {
            ConsentState::Denied
        };
        match current_consent(conn, profile, purpose.as_str())? {
            // A "no" after a withdrawal says nothing new.
            Some((s, _)) if s == state || (s == ConsentState::Withdrawn && !*granted) => continue,
            Some((_, at)) if at > ts => continue,
            _ => {}
        }
        // Taking back a grant is a withdrawal, not a refusal.
        let state = match (state, current_consent(conn, profile, purpose.as_str())?) {
            (ConsentState::Denied, Some((ConsentState::Granted, _))) => ConsentState::Withdrawn,
            (s, _) => s,
        };
        let change = ConsentChange {
            purpose: purpose.clone(),
            state,
            source: "segment".into(),
            at: from_millis(ts),
        };
        insert_consent(conn, ws, profile, &change, now_ms())?;
        audit.push(AuditEntry::new(
            Some(rapport_core::WorkspaceId::from_trusted(ws.to_owned())),
            Actor::System,
            &format!("consent.{}", state.as_str()),
            Some(profile.to_owned()),
            json!({"purpose": purpose.as_str(), "source": "segment", "event": message_id}),
        ));
    }
    append_audit(conn, &audit)?;
    Ok(())
}

pub(super) fn consents(
    conn: &Connection,
    ws: &str,
    profile: &str,
) -> Result<Vec<ConsentRecord>, StoreError> {
    let Some(canonical) = read::canonical_profile(conn, ws, profile)? else {
        return Err(StoreError::NotFound(format!("profile {profile}")));
    };
    consents_of_canonical(conn, ws, &canonical)
}

/// The consents of a profile id known to be canonical (not merged into another).
pub(super) fn consents_of_canonical(
    conn: &Connection,
    ws: &str,
    canonical: &str,
) -> Result<Vec<ConsentRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT purpose, state, source, at, recorded_at FROM consents
         WHERE profile_id = ?1 AND workspace_id = ?2 ORDER BY at, seq",
    )?;
    let rows = stmt.query_map([canonical, ws], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (purpose, state, source, at, recorded_at) = row?;
        let (Some(purpose), Some(state)) = (Purpose::parse(&purpose), ConsentState::parse(&state))
        else {
            return Err(StoreError::Internal(
                "unreadable consent in the database".into(),
            ));
        };
        out.push(ConsentRecord {
            profile_id: ProfileId::from_trusted(canonical.to_owned()),
            purpose,
            state,
            source,
            at: from_millis(at),
            recorded_at: from_millis(recorded_at),
        });
    }
    Ok(out)
}

/// The workspace's salt for tombstone hashes, made on first use.
fn tombstone_salt(conn: &Connection, ws: &str) -> Result<Vec<u8>, StoreError> {
    let salt: Option<Vec<u8>> = conn
        .prepare_cached("SELECT tombstone_salt FROM workspace_secrets WHERE workspace_id = ?1")?
        .query_row([ws], |r| r.get(0))
        .optional()?;
    if let Some(s) = salt {
        return Ok(s);
    }
    let mut fresh = Vec::with_capacity(32);
    fresh.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    fresh.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    conn.prepare_cached(
        "INSERT INTO workspace_secrets (workspace_id, tombstone_salt) VALUES (?1, ?2)",
    )?
    .execute(params![ws, fresh])?;
    Ok(fresh)
}

/// Recognises identifiers of erased customers during ingest. Costs one query per ingest job
/// while the workspace has no tombstones.
pub(super) struct TombstoneGuard {
    salt: Option<Vec<u8>>,
}

impl TombstoneGuard {
    pub(super) fn load(conn: &Connection, ws: &str) -> Result<Self, StoreError> {
        let any: bool = conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM tombstones WHERE workspace_id = ?1)")?
            .query_row([ws], |r| r.get(0))?;
        Ok(Self {
            salt: if any {
                Some(tombstone_salt(conn, ws)?)
            } else {
                None
            },
        })
    }

    /// Whether any of `ids` belonged to an erased customer.
    pub(super) fn blocks(
        &self,
        conn: &Connection,
        ws: &str,
        ids: &[Identifier],
    ) -> Result<bool, StoreError> {
        let Some(salt) = &self.salt else {
            return Ok(false);
        };
        let mut stmt =
            conn.prepare_cached("SELECT 1 FROM tombstones WHERE workspace_id = ?1 AND hash = ?2")?;
        for id in ids {
            if stmt
                .query_row(params![ws, tombstone_hash(salt, id)], |_| Ok(()))
                .optional()?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn count(conn: &Connection, sql: &str, id: &str) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row([id], |r| r.get::<_, i64>(0))? as u64)
}

pub(super) fn erase(
    conn: &Connection,
    ws: &str,
    profile: &str,
    options: ErasureOptions,
    audit: &AuditEntry,
) -> Result<ErasureOutcome, StoreError> {
    let Some(canonical) = read::canonical_profile(conn, ws, profile)? else {
        let erased: Option<i64> = conn
            .prepare_cached(
                "SELECT erased_at FROM erasures WHERE workspace_id = ?1 AND profile_id = ?2",
            )?
            .query_row([ws, profile], |r| r.get(0))
            .optional()?;
        return match erased {
            Some(_) => Ok(ErasureOutcome {
                profile_id: profile.to_owned(),
                already_erased: true,
                ..Default::default()
            }),
            None => Err(StoreError::NotFound(format!("profile {profile}"))),
        };
    };
    // The identity cache holds identifier values; it must forget them too.
    cache::clear();
    let mut ids: Vec<String> = vec![canonical.clone()];
    {
        let mut stmt = conn.prepare_cached("SELECT id FROM profiles WHERE merged_into = ?1")?;
        for id in stmt.query_map([canonical.as_str()], |r| r.get::<_, String>(0))? {
            ids.push(id?);
        }
    }
    let c = canonical.as_str();
    let mut out = ErasureOutcome {
        profile_id: canonical.clone(),
        erased_ids: ids.clone(),
        events: count(conn, "SELECT count(*) FROM events WHERE profile_id = ?1", c)?,
        conversations: count(
            conn,
            "SELECT count(*) FROM conversations WHERE profile_id = ?1",
            c,
        )?,
        messages: count(
            conn,
            "SELECT count(*) FROM messages WHERE conversation_id IN
                (SELECT id FROM conversations WHERE profile_id = ?1)",
            c,
        )?,
        identifiers: count(
            conn,
            "SELECT count(*) FROM identities WHERE profile_id = ?1",
            c,
        )?,
        traits: count(conn, "SELECT count(*) FROM traits WHERE profile_id = ?1", c)?,
        consents: count(
            conn,
            "SELECT count(*) FROM consents WHERE profile_id = ?1",
            c,
        )?,
        ..Default::default()
    };

    if options.tombstone {
        let salt = tombstone_salt(conn, ws)?;
        let mut stmt =
            conn.prepare_cached("SELECT kind, value FROM identities WHERE profile_id = ?1")?;
        let identifiers: Vec<(String, String)> = stmt
            .query_map([c], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let now = now_ms();
        let mut insert = conn.prepare_cached(
            "INSERT OR IGNORE INTO tombstones (workspace_id, hash, erased_at) VALUES (?1, ?2, ?3)",
        )?;
        for (kind, value) in identifiers {
            let Some(kind) = IdentifierKind::parse(&kind) else {
                continue;
            };
            let id = Identifier::from_trusted(kind, value);
            out.tombstones += insert.execute(params![ws, tombstone_hash(&salt, &id), now])? as u64;
        }
    }

    conn.prepare_cached(
        "DELETE FROM messages WHERE conversation_id IN (SELECT id FROM conversations WHERE profile_id = ?1)",
    )?
    .execute([c])?;
    for sql in [
        "DELETE FROM route_entries WHERE conversation_id IN
            (SELECT id FROM conversations WHERE profile_id = ?1)",
        "DELETE FROM intent_corrections WHERE conversation_id IN
            (SELECT id FROM conversations WHERE profile_id = ?1)",
        "DELETE FROM conversations WHERE profile_id = ?1",
        "DELETE FROM events WHERE profile_id = ?1",
        "DELETE FROM identities WHERE profile_id = ?1",
        "DELETE FROM traits WHERE profile_id = ?1",
        "DELETE FROM data_quality WHERE profile_id = ?1",
        "DELETE FROM consents WHERE profile_id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([c])?;
    }
    // Indexed by workspace first: naming it keeps these off a scan of the whole table. An
    // offer's contact goes with its decision row.
    for sql in [
        "DELETE FROM decisions WHERE workspace_id = ?2 AND profile_id = ?1",
        "DELETE FROM handoffs WHERE workspace_id = ?2 AND profile_id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([c, ws])?;
    }
    let now = now_ms();
    for id in &ids {
        super::dedupe::erase(conn, id)?;
        conn.prepare_cached("DELETE FROM profiles WHERE id = ?1")?
            .execute([id])?;
        conn.prepare_cached("DELETE FROM profile_features WHERE profile_id = ?1")?
            .execute([id])?;
        conn.prepare_cached(
            "INSERT OR REPLACE INTO erasures (workspace_id, profile_id, erased_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![ws, id, now])?;
    }
    let mut entry = audit.clone();
    if let serde_json::Value::Object(m) = &mut entry.details {
        m.insert("erased_ids".into(), json!(out.erased_ids));
        m.insert("events".into(), json!(out.events));
        m.insert("messages".into(), json!(out.messages));
        m.insert("tombstones".into(), json!(out.tombstones));
    }
    append_audit(conn, &[entry])?;
    Ok(out)
}

/// Folds the write-ahead log into the database and empties it, so pages holding erased data
/// do not linger there. Waits for readers for up to `wait`; says whether the log was emptied.
pub(super) fn purge_wal(path: &Path, wait: std::time::Duration) -> bool {
    let Ok(conn) = Connection::open(path) else {
        return false;
    };
    let _ = conn.busy_timeout(wait);
    let deadline = std::time::Instant::now() + wait;
    loop {
        // (busy, log frames, checkpointed frames); busy = 0 means it completed.
        let r: rusqlite::Result<(i64, i64, i64)> =
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            });
        match r {
            Ok((0, _, _)) => return true,
            _ if std::time::Instant::now() >= deadline => return false,
            _ => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
}
