//! Undoing a merge, and the identity graph's health. An unmerge gives the merged profile back
//! what first landed on its side (events, identifiers and conversations remember their
//! `origin`; consents, decisions and next-best-action contacts too once a merge moved them),
//! then rebuilds both profiles (counters, traits, data-quality flags, display fields) by
//! replaying their events' stored [`Replay`]s in event-time order, so each ends up as it would
//! be had the merge never happened.

use chrono::{DateTime, Utc};
use rapport_core::time::{from_millis, to_millis};
use rapport_core::{AuditEntry, Channel, EventType, ProfileId};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{json, Map, Value};

use super::apply::{channel_bit, now_ms, DisplayFields, Replay};
use super::{cache, govern, read};
use crate::{IdentityDay, IdentityHealth, MergeRecord, StoreError, UnmergeOutcome, UnmergeRequest};

/// The columns [`merge_from`] reads, in order.
pub(super) const MERGE_COLUMNS: &str =
    "seq, survivor, merged, message_id, identifier_kinds, rule, status, refusal, at, unmerged_at, detail";

pub(super) fn merge_from(r: &Row) -> rusqlite::Result<MergeRecord> {
    Ok(MergeRecord {
        id: r.get(0)?,
        survivor: ProfileId::from_trusted(r.get(1)?),
        merged: ProfileId::from_trusted(r.get(2)?),
        message_id: r.get(3)?,
        identifier_kinds: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
        rule: r.get(5)?,
        status: r.get(6)?,
        refusal: r.get(7)?,
        at: from_millis(r.get(8)?),
        unmerged_at: r.get::<_, Option<i64>>(9)?.map(from_millis),
        detail: r
            .get::<_, Option<String>>(10)?
            .and_then(|d| serde_json::from_str(&d).ok()),
    })
}

pub(super) fn unmerge(
    conn: &Connection,
    ws: &str,
    profile: &str,
    request: &UnmergeRequest,
    audit: &AuditEntry,
) -> Result<UnmergeOutcome, StoreError> {
    let survivor = read::canonical_profile(conn, ws, profile)?
        .ok_or_else(|| StoreError::NotFound(format!("profile {profile}")))?;
    // The merges that formed the survivor: into it, or into a profile since merged into it.
    let formed = format!(
        "SELECT {MERGE_COLUMNS} FROM merge_log WHERE workspace_id = ?1 AND status = 'merged'
           AND (survivor = ?2 OR survivor IN (SELECT id FROM profiles WHERE merged_into = ?2))"
    );
    let merge: Option<MergeRecord> = match request.merge_id {
        Some(id) => conn
            .prepare(&format!("{formed} AND seq = ?3"))?
            .query_row(params![ws, survivor, id], merge_from)
            .optional()?,
        None => conn
            .prepare(&format!("{formed} ORDER BY seq DESC LIMIT 1"))?
            .query_row(params![ws, survivor], merge_from)
            .optional()?,
    };
    let Some(merge) = merge else {
        return Err(StoreError::NotMerged(match request.merge_id {
            Some(id) => {
                format!("merge {id} did not form profile {survivor}, or was undone already")
            }
            None => format!("profile {survivor} was never merged"),
        }));
    };
    let restored = merge.merged.as_str().to_owned();

    // The restored side: the merged profile and what had been merged into it before.
    let mut side = vec![restored.clone()];
    let mut frontier = vec![restored.clone()];
    let mut earlier = conn.prepare_cached(
        "SELECT merged FROM merge_log WHERE workspace_id = ?1 AND survivor = ?2
           AND status = 'merged' AND seq < ?3",
    )?;
    while let Some(p) = frontier.pop() {
        let rows = earlier.query_map(params![ws, p, merge.id], |r| r.get::<_, String>(0))?;
        for m in rows {
            let m = m?;
            if !side.contains(&m) {
                side.push(m.clone());
                frontier.push(m);
            }
        }
    }

    let (mut events, mut identifiers, mut conversations) = (0u64, 0u64, 0u64);
    let (mut consents, mut decisions, mut contacts) = (0u64, 0u64, 0u64);
    for p in &side {
        events += conn
            .prepare_cached(
                "UPDATE events SET profile_id = ?1 WHERE profile_id = ?2 AND origin = ?3",
            )?
            .execute(params![restored, survivor, p])? as u64;
        identifiers += conn
            .prepare_cached(
                "UPDATE identities SET profile_id = ?1 WHERE profile_id = ?2 AND origin = ?3",
            )?
            .execute(params![restored, survivor, p])? as u64;
        conversations += conn
            .prepare_cached(
                "UPDATE conversations SET profile_id = ?1 WHERE profile_id = ?2 AND origin = ?3",
            )?
            .execute(params![restored, survivor, p])? as u64;
        // Consents, decisions and contacts given or made on this side go back with it. Back
        // on the profile they were recorded for, they lose their `origin` (NULL: never
        // moved). Those moved by merges older than schema 17 have none and stay with the
        // survivor.
        consents += conn
            .prepare_cached(
                "UPDATE consents SET profile_id = ?1, origin = nullif(origin, ?1)
                 WHERE profile_id = ?2 AND origin = ?3",
            )?
            .execute(params![restored, survivor, p])? as u64;
        // An offer's contact is its decision row (migration 20): counted before they move.
        contacts +=
            conn.prepare_cached(
                "SELECT count(*) FROM decisions
                 WHERE workspace_id = ?3 AND profile_id = ?1 AND origin = ?2
                   AND action_id IS NOT NULL",
            )?
            .query_row(params![survivor, p, ws], |r| r.get::<_, i64>(0))? as u64;
        decisions += conn
            .prepare_cached(
                "UPDATE decisions SET profile_id = ?1, origin = nullif(origin, ?1),
                    body = json_set(body, '$.profile_id', ?1)
                 WHERE workspace_id = ?4 AND profile_id = ?2 AND origin = ?3",
            )?
            .execute(params![restored, survivor, p, ws])? as u64;
        if *p != restored {
            conn.prepare_cached("UPDATE profiles SET merged_into = ?1 WHERE id = ?2")?
                .execute(params![restored, p])?;
        }
    }
    conn.prepare_cached("UPDATE profiles SET merged_into = NULL WHERE id = ?1")?
        .execute([&restored])?;
    let now = now_ms();
    conn.prepare_cached(
        "UPDATE merge_log SET status = 'unmerged', unmerged_at = ?2 WHERE seq = ?1",
    )?
    .execute(params![merge.id, now])?;
    if request.add_guard {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO merge_blocks (workspace_id, a, b, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![ws, survivor, restored, now])?;
    }
    cache::clear();
    rebuild(conn, &survivor)?;
    rebuild(conn, &restored)?;

    let outcome = UnmergeOutcome {
        merge_id: merge.id,
        survivor: ProfileId::from_trusted(survivor),
        restored: ProfileId::from_trusted(restored),
        events_moved: events,
        identifiers_moved: identifiers,
        conversations_moved: conversations,
        consents_moved: consents,
        decisions_moved: decisions,
        contacts_moved: contacts,
        guard_added: request.add_guard,
    };
    let mut entry = audit.clone();
    let mut details = match entry.details.take() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    details.insert("merge_id".into(), json!(outcome.merge_id));
    details.insert("restored".into(), json!(outcome.restored.as_str()));
    details.insert("events_moved".into(), json!(events));
    details.insert("identifiers_moved".into(), json!(identifiers));
    details.insert("conversations_moved".into(), json!(conversations));
    details.insert("consents_moved".into(), json!(consents));
    details.insert("decisions_moved".into(), json!(decisions));
    details.insert("contacts_moved".into(), json!(contacts));
    details.insert("guard_added".into(), json!(request.add_guard));
    entry.details = Value::Object(details);
    govern::append_audit(conn, &[entry])?;
    Ok(outcome)
}

/// Recomputes a live profile from its events: counters, `has_user_id`, traits and
/// data-quality flags (the refused-identifier flags, which come from stitching rather than
/// traits, are kept) and display fields.
fn rebuild(conn: &Connection, profile: &str) -> Result<(), StoreError> {
    let (first, last, count): (Option<i64>, Option<i64>, i64) = conn
        .prepare_cached("SELECT min(ts), max(ts), count(*) FROM events WHERE profile_id = ?1")?
        .query_row([profile], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let mut bits = 0i64;
    let mut stmt =
        conn.prepare_cached("SELECT DISTINCT channel FROM events WHERE profile_id = ?1")?;
    for ch in stmt.query_map([profile], |r| r.get::<_, String>(0))? {
        let ch = ch?;
        if let Some(c) = Channel::ALL.into_iter().find(|c| c.as_str() == ch) {
            bits |= channel_bit(c);
        }
    }
    conn.prepare_cached(
        "UPDATE profiles SET first_seen = ?2, last_seen = ?3, event_count = ?4, channels = ?5,
            has_user_id = EXISTS (SELECT 1 FROM identities WHERE profile_id = ?1 AND kind = 'user_id')
         WHERE id = ?1",
    )?
    .execute(params![profile, first, last, count, bits])?;

    conn.prepare_cached("DELETE FROM traits WHERE profile_id = ?1")?
        .execute([profile])?;
    conn.prepare_cached(
        "DELETE FROM data_quality WHERE profile_id = ?1 AND field NOT LIKE 'identifier.%'",
    )?
    .execute([profile])?;
    let mut events = conn.prepare_cached(
        "SELECT type, body, replay, ts FROM events WHERE profile_id = ?1
           AND (replay IS NOT NULL OR type = 'identify' OR body LIKE '%\"traits\"%')
         ORDER BY ts, seq",
    )?;
    let rows = events.query_map([profile], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut upsert = conn.prepare_cached(
        "INSERT INTO traits (profile_id, key, value, ts, std_value) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (profile_id, key) DO UPDATE SET value = excluded.value, ts = excluded.ts,
            std_value = excluded.std_value
         WHERE excluded.ts >= traits.ts",
    )?;
    let mut clear = conn.prepare_cached(
        "DELETE FROM data_quality WHERE profile_id = ?1 AND field = ?2 AND ts <= ?3",
    )?;
    let mut flag = conn.prepare_cached(
        "INSERT INTO data_quality (profile_id, field, raw, code, problem, ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (profile_id, field) DO UPDATE SET raw = excluded.raw, code = excluded.code,
            problem = excluded.problem, ts = excluded.ts
         WHERE excluded.ts >= data_quality.ts",
    )?;
    for row in rows {
        let (kind, body, replay, ts) = row?;
        let replay = match replay {
            Some(r) => serde_json::from_str::<Replay>(&r).unwrap_or_default(),
            // Messages carry no traits; older events are read again from their body.
            None if kind == EventType::Message.as_str() => continue,
            None => Replay::from_body(&kind, &body),
        };
        for (k, v, std) in &replay.traits {
            upsert.execute(params![profile, k, v, ts, std])?;
        }
        if replay.standardized {
            for (k, _, _) in &replay.traits {
                if !replay.issues.iter().any(|i| &i.field == k) {
                    clear.execute(params![profile, k, ts])?;
                }
            }
            for i in &replay.issues {
                flag.execute(params![profile, i.field, i.raw, i.code, i.problem, ts])?;
            }
        }
    }

    let mut t = Map::new();
    let mut read_traits = conn.prepare_cached(
        "SELECT key, value FROM traits WHERE profile_id = ?1
         AND key IN ('name', 'first_name', 'last_name', 'firstName', 'lastName', 'email')",
    )?;
    for row in read_traits.query_map([profile], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })? {
        let (k, v) = row?;
        t.insert(k, serde_json::from_str(&v).unwrap_or(Value::Null));
    }
    let d = DisplayFields::from_traits(&t);
    conn.prepare_cached(
        "UPDATE profiles SET name = ?2, name_lc = ?3, last_lc = ?4, email = ?5 WHERE id = ?1",
    )?
    .execute(params![profile, d.name, d.name_lc, d.last_lc, d.email])?;
    Ok(())
}

pub(super) fn identity_health(
    conn: &Connection,
    ws: &str,
    since: DateTime<Utc>,
) -> Result<IdentityHealth, StoreError> {
    let since = to_millis(since);
    let mut days: std::collections::BTreeMap<i64, IdentityDay> = Default::default();
    let mut stmt = conn.prepare_cached(
        "SELECT at / 86400000, status, count(*) FROM merge_log
         WHERE workspace_id = ?1 AND at >= ?2 GROUP BY 1, 2",
    )?;
    for row in stmt.query_map(params![ws, since], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (day, status, n) = row?;
        let d = days.entry(day).or_insert_with(|| IdentityDay {
            day,
            ..Default::default()
        });
        match status.as_str() {
            "refused" => d.refused += n as u64,
            // An unmerged merge was still a merge on its day.
            _ => d.merged += n as u64,
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT unmerged_at / 86400000, count(*) FROM merge_log
         WHERE workspace_id = ?1 AND unmerged_at >= ?2 GROUP BY 1",
    )?;
    for row in stmt.query_map(params![ws, since], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    })? {
        let (day, n) = row?;
        days.entry(day)
            .or_insert_with(|| IdentityDay {
                day,
                ..Default::default()
            })
            .unmerged += n as u64;
    }
    let latest = |status: &str, order: &str| -> Result<Vec<MergeRecord>, StoreError> {
        let mut stmt = conn.prepare(&format!(
            "SELECT {MERGE_COLUMNS} FROM merge_log WHERE workspace_id = ?1 AND status = ?2
             ORDER BY {order} DESC LIMIT 20"
        ))?;
        let rows = stmt.query_map(params![ws, status], merge_from)?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let mut invalid = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT dq.code, count(*) FROM data_quality dq JOIN profiles p ON p.id = dq.profile_id
         WHERE p.workspace_id = ?1 AND p.merged_into IS NULL GROUP BY dq.code ORDER BY 2 DESC, 1",
    )?;
    for row in stmt.query_map([ws], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (code, n) = row?;
        invalid.push((code, n as u64));
    }
    let mut flagged = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT dq.profile_id, dq.field, dq.code FROM data_quality dq JOIN profiles p ON p.id = dq.profile_id
         WHERE p.workspace_id = ?1 AND p.merged_into IS NULL ORDER BY dq.ts DESC LIMIT 20",
    )?;
    for row in stmt.query_map([ws], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })? {
        let (p, field, code) = row?;
        flagged.push((ProfileId::from_trusted(p), field, code));
    }
    Ok(IdentityHealth {
        days: days.into_values().collect(),
        refused: latest("refused", "seq")?,
        unmerged: latest("unmerged", "unmerged_at")?,
        invalid_values: invalid,
        flagged_profiles: flagged,
    })
}
