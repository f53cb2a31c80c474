//! Undoing a merge and the identity graph's health, as the SQLite backend does them
//! (`sqlite/unmerge.rs`). Both profiles are locked (`FOR UPDATE`) first, so a concurrent event
//! for either waits until the unmerge has committed and then sees the two apart.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use rapport_core::time::{from_millis, to_millis};
use rapport_core::{AuditEntry, Channel, EventType, ProfileId};
use serde_json::{json, Map, Value};
use tokio_postgres::Row;

use super::{exec, govern, query, query_opt, read, Failure};
use crate::sqlite::apply::{channel_bit, DisplayFields, Replay};
use crate::{IdentityDay, IdentityHealth, MergeRecord, StoreError, UnmergeOutcome, UnmergeRequest};

/// The columns [`merge_from`] reads, in order.
pub(super) const MERGE_COLUMNS: &str =
    "seq, survivor, merged, message_id, identifier_kinds, rule, status, refusal, at, unmerged_at, detail";

pub(super) fn merge_from(r: &Row) -> MergeRecord {
    MergeRecord {
        id: r.get(0),
        survivor: ProfileId::from_trusted(r.get(1)),
        merged: ProfileId::from_trusted(r.get(2)),
        message_id: r.get(3),
        identifier_kinds: r.get(4),
        rule: r.get(5),
        status: r.get(6),
        refusal: r.get(7),
        at: from_millis(r.get(8)),
        unmerged_at: r.get::<_, Option<i64>>(9).map(from_millis),
        detail: r
            .get::<_, Option<String>>(10)
            .and_then(|d| serde_json::from_str(&d).ok()),
    }
}

pub(super) async fn unmerge(
    tx: &Transaction<'_>,
    ws: &str,
    profile: &str,
    request: &UnmergeRequest,
    audit: &AuditEntry,
) -> Result<UnmergeOutcome, Failure> {
    let survivor = read::canonical_profile(tx, ws, profile)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("profile {profile}")))?;
    // Lock the survivor; then re-read, as a merge may have moved it while we waited.
    query(
        tx,
        "SELECT id FROM profiles WHERE workspace_id = $1 AND id = $2 FOR UPDATE",
        &[&ws, &survivor],
    )
    .await?;
    let survivor = read::canonical_profile(tx, ws, &survivor)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("profile {profile}")))?;
    let formed = format!(
        "SELECT {MERGE_COLUMNS} FROM merge_log WHERE workspace_id = $1 AND status = 'merged'
           AND (survivor = $2 OR survivor IN (SELECT id FROM profiles WHERE merged_into = $2))"
    );
    let row = match request.merge_id {
        Some(id) => {
            query_opt(
                tx,
                &format!("{formed} AND seq = $3"),
                &[&ws, &survivor, &id],
            )
            .await?
        }
        None => {
            query_opt(
                tx,
                &format!("{formed} ORDER BY seq DESC LIMIT 1"),
                &[&ws, &survivor],
            )
            .await?
        }
    };
    let Some(merge) = row.as_ref().map(merge_from) else {
        return Err(StoreError::NotMerged(match request.merge_id {
            Some(id) => {
                format!("merge {id} did not form profile {survivor}, or was undone already")
            }
            None => format!("profile {survivor} was never merged"),
        })
        .into());
    };
    let restored = merge.merged.as_str().to_owned();
    query(
        tx,
        "SELECT id FROM profiles WHERE workspace_id = $1 AND id = $2 FOR UPDATE",
        &[&ws, &restored],
    )
    .await?;

    let mut side = vec![restored.clone()];
    let mut frontier = vec![restored.clone()];
    while let Some(p) = frontier.pop() {
        for r in query(
            tx,
            "SELECT merged FROM merge_log WHERE workspace_id = $1 AND survivor = $2
               AND status = 'merged' AND seq < $3",
            &[&ws, &p, &merge.id],
        )
        .await?
        {
            let m: String = r.get(0);
            if !side.contains(&m) {
                side.push(m.clone());
                frontier.push(m);
            }
        }
    }
    let params: &super::Params<'_> = &[&restored, &survivor, &side];
    let events = exec(
        tx,
        "UPDATE events SET profile_id = $1 WHERE profile_id = $2 AND origin = ANY($3::text[])",
        params,
    )
    .await?;
    let identifiers = exec(
        tx,
        "UPDATE identities SET profile_id = $1 WHERE profile_id = $2 AND origin = ANY($3::text[])",
        params,
    )
    .await?;
    let conversations = exec(
        tx,
        "UPDATE conversations SET profile_id = $1 WHERE profile_id = $2 AND origin = ANY($3::text[])",
        params,
    )
    .await?;
    // Consents, decisions and contacts given or made on the restored side go back with it;
    // those back on the profile they were recorded for lose their `origin` (NULL: never
    // moved). Those moved by merges older than schema 12 have none and stay with the survivor.
    let consents = exec(
        tx,
        "UPDATE consents SET profile_id = $1, origin = nullif(origin, $1)
         WHERE profile_id = $2 AND origin = ANY($3::text[])",
        params,
    )
    .await?;
    let in_ws: &super::Params<'_> = &[&restored, &survivor, &side, &ws];
    let decisions = exec(
        tx,
        "UPDATE decisions SET profile_id = $1, origin = nullif(origin, $1),
             body = jsonb_set(body::jsonb, '{profile_id}', to_jsonb($1::text))::text
         WHERE workspace_id = $4 AND profile_id = $2 AND origin = ANY($3::text[])",
        in_ws,
    )
    .await?;
    let contacts = exec(
        tx,
        "UPDATE nba_contacts SET profile_id = $1, origin = nullif(origin, $1)
         WHERE workspace_id = $4 AND profile_id = $2 AND origin = ANY($3::text[])",
        in_ws,
    )
    .await?;
    exec(
        tx,
        "UPDATE profiles SET merged_into = CASE WHEN id = $1 THEN NULL ELSE $1 END
         WHERE workspace_id = $2 AND id = ANY($3::text[])",
        &[&restored, &ws, &side],
    )
    .await?;
    let now = super::apply::now_ms();
    exec(
        tx,
        "UPDATE merge_log SET status = 'unmerged', unmerged_at = $2 WHERE seq = $1",
        &[&merge.id, &now],
    )
    .await?;
    if request.add_guard {
        exec(
            tx,
            "INSERT INTO merge_blocks (workspace_id, a, b, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&ws, &survivor, &restored, &now],
        )
        .await?;
    }
    rebuild(tx, &survivor).await?;
    rebuild(tx, &restored).await?;

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
    govern::append_audit(tx, &[entry]).await?;
    Ok(outcome)
}

/// Recomputes a live profile from its events (see the SQLite backend's `rebuild`).
async fn rebuild(tx: &Transaction<'_>, profile: &str) -> Result<(), Failure> {
    let mut bits = 0i64;
    for r in query(
        tx,
        "SELECT DISTINCT channel FROM events WHERE profile_id = $1",
        &[&profile],
    )
    .await?
    {
        let ch: String = r.get(0);
        if let Some(c) = Channel::ALL.into_iter().find(|c| c.as_str() == ch) {
            bits |= channel_bit(c);
        }
    }
    exec(
        tx,
        "UPDATE profiles AS p SET first_seen = e.f, last_seen = e.l, event_count = e.n, channels = $2,
            has_user_id = EXISTS (SELECT 1 FROM identities WHERE profile_id = $1 AND kind = 'user_id')
         FROM (SELECT min(ts) AS f, max(ts) AS l, count(*) AS n FROM events WHERE profile_id = $1) AS e
         WHERE p.id = $1",
        &[&profile, &bits],
    )
    .await?;
    exec(tx, "DELETE FROM traits WHERE profile_id = $1", &[&profile]).await?;
    exec(
        tx,
        "DELETE FROM data_quality WHERE profile_id = $1 AND field NOT LIKE 'identifier.%'",
        &[&profile],
    )
    .await?;
    let rows = query(
        tx,
        "SELECT type, body, replay, ts FROM events WHERE profile_id = $1
           AND (replay IS NOT NULL OR type = 'identify' OR body LIKE '%\"traits\"%')
         ORDER BY ts, seq",
        &[&profile],
    )
    .await?;
    // Replayed in memory in event order, then written once (latest event time wins).
    let mut traits: BTreeMap<String, (String, Option<String>, i64)> = BTreeMap::new();
    let mut flags: BTreeMap<String, (String, String, String, i64)> = BTreeMap::new();
    for r in rows {
        let kind: String = r.get(0);
        let ts: i64 = r.get(3);
        let replay = match r.get::<_, Option<String>>(2) {
            Some(rp) => serde_json::from_str::<Replay>(&rp).unwrap_or_default(),
            None if kind == EventType::Message.as_str() => continue,
            None => Replay::from_body(&kind, r.get(1)),
        };
        for (k, v, std) in &replay.traits {
            traits.insert(k.clone(), (v.clone(), std.clone(), ts));
        }
        if replay.standardized {
            for (k, _, _) in &replay.traits {
                if !replay.issues.iter().any(|i| &i.field == k) {
                    flags.remove(k);
                }
            }
            for i in &replay.issues {
                flags.insert(
                    i.field.clone(),
                    (i.raw.clone(), i.code.clone(), i.problem.clone(), ts),
                );
            }
        }
    }
    for (k, (v, std, ts)) in &traits {
        exec(
            tx,
            "INSERT INTO traits (profile_id, key, value, ts, std_value) VALUES ($1, $2, $3, $4, $5)",
            &[&profile, k, v, ts, std],
        )
        .await?;
    }
    for (field, (raw, code, problem, ts)) in &flags {
        exec(
            tx,
            "INSERT INTO data_quality (profile_id, field, raw, code, problem, ts) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (profile_id, field) DO UPDATE SET raw = excluded.raw, code = excluded.code,
                problem = excluded.problem, ts = excluded.ts",
            &[&profile, field, raw, code, problem, ts],
        )
        .await?;
    }
    let mut t = Map::new();
    for (k, (v, _, _)) in &traits {
        if crate::sqlite::apply::DISPLAY_TRAITS.contains(&k.as_str()) {
            t.insert(k.clone(), serde_json::from_str(v).unwrap_or(Value::Null));
        }
    }
    let d = DisplayFields::from_traits(&t);
    exec(
        tx,
        "UPDATE profiles SET name = $2, name_lc = $3, last_lc = $4, email = $5 WHERE id = $1",
        &[&profile, &d.name, &d.name_lc, &d.last_lc, &d.email],
    )
    .await?;
    Ok(())
}

pub(super) async fn identity_health(
    tx: &Transaction<'_>,
    ws: &str,
    since: DateTime<Utc>,
) -> Result<IdentityHealth, StoreError> {
    let since = to_millis(since);
    let err = super::pg_error;
    let mut days: BTreeMap<i64, IdentityDay> = BTreeMap::new();
    for r in query(
        tx,
        "SELECT at / 86400000, status, count(*) FROM merge_log
         WHERE workspace_id = $1 AND at >= $2 GROUP BY 1, 2",
        &[&ws, &since],
    )
    .await
    .map_err(err)?
    {
        let day: i64 = r.get(0);
        let status: String = r.get(1);
        let n: i64 = r.get(2);
        let d = days.entry(day).or_insert_with(|| IdentityDay {
            day,
            ..Default::default()
        });
        match status.as_str() {
            "refused" => d.refused += n as u64,
            _ => d.merged += n as u64,
        }
    }
    for r in query(
        tx,
        "SELECT unmerged_at / 86400000, count(*) FROM merge_log
         WHERE workspace_id = $1 AND unmerged_at >= $2 GROUP BY 1",
        &[&ws, &since],
    )
    .await
    .map_err(err)?
    {
        let day: i64 = r.get(0);
        let n: i64 = r.get(1);
        days.entry(day)
            .or_insert_with(|| IdentityDay {
                day,
                ..Default::default()
            })
            .unmerged += n as u64;
    }
    let mut latest = Vec::new();
    for (status, order) in [("refused", "seq"), ("unmerged", "unmerged_at")] {
        let rows = query(
            tx,
            &format!(
                "SELECT {MERGE_COLUMNS} FROM merge_log WHERE workspace_id = $1 AND status = $2
                 ORDER BY {order} DESC LIMIT 20"
            ),
            &[&ws, &status],
        )
        .await
        .map_err(err)?;
        latest.push(rows.iter().map(merge_from).collect::<Vec<_>>());
    }
    let invalid = query(
        tx,
        "SELECT dq.code, count(*) FROM data_quality dq JOIN profiles p ON p.id = dq.profile_id
         WHERE p.workspace_id = $1 AND p.merged_into IS NULL GROUP BY dq.code ORDER BY 2 DESC, 1",
        &[&ws],
    )
    .await
    .map_err(err)?
    .iter()
    .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
    .collect();
    let flagged = query(
        tx,
        "SELECT dq.profile_id, dq.field, dq.code FROM data_quality dq JOIN profiles p ON p.id = dq.profile_id
         WHERE p.workspace_id = $1 AND p.merged_into IS NULL ORDER BY dq.ts DESC LIMIT 20",
        &[&ws],
    )
    .await
    .map_err(err)?
    .iter()
    .map(|r| (ProfileId::from_trusted(r.get(0)), r.get(1), r.get(2)))
    .collect();
    let unmerged = latest.pop().unwrap_or_default();
    let refused = latest.pop().unwrap_or_default();
    Ok(IdentityHealth {
        days: days.into_values().collect(),
        refused,
        unmerged,
        invalid_values: invalid,
        flagged_profiles: flagged,
    })
}
