//! Rows a transaction has decided on but not yet written, and writing them one multi-row
//! statement per table.
//!
//! Every statement takes its rows as parallel arrays (`unnest($1::text[], $2::int8[], ...)`),
//! so a batch of any size costs the same few round trips. Rows are sorted by key before they
//! are written, so two transactions touching the same rows take their locks in the same order.

use std::collections::{BTreeMap, BTreeSet};

use deadpool_postgres::Transaction;
use rapport_core::Channel;

use super::{exec, query, Failure};

/// Counters a profile gains from the events of this transaction.
#[derive(Default, Clone, Copy)]
pub(super) struct Delta {
    pub(super) first: Option<i64>,
    pub(super) last: Option<i64>,
    pub(super) count: i64,
    pub(super) channels: i64,
}

impl Delta {
    pub(super) fn add(&mut self, ts: i64, channel: Channel) {
        self.first = Some(self.first.map_or(ts, |f| f.min(ts)));
        self.last = Some(self.last.map_or(ts, |l| l.max(ts)));
        self.count += 1;
        self.channels |= crate::sqlite::apply::channel_bit(channel);
    }
}

/// One event as it will be inserted.
pub(super) struct EventRow {
    pub(super) message_id: String,
    pub(super) profile: String,
    pub(super) event_type: &'static str,
    pub(super) name: Option<String>,
    pub(super) channel: Channel,
    pub(super) ts: i64,
    pub(super) received_at: i64,
    pub(super) body: String,
    /// The traits and flags the event applied, for unmerge (see `sqlite::apply::Replay`).
    pub(super) replay: Option<String>,
}

/// The latest value of one trait seen in this transaction.
pub(super) struct TraitValue {
    pub(super) value: String,
    pub(super) ts: i64,
    pub(super) standardized: Option<String>,
}

/// A flagged value: raw, code, problem, event time.
pub(super) type Flag = (String, String, String, i64);

/// What an event says about the data quality of one field, in event order.
pub(super) struct QualityOp {
    pub(super) profile: String,
    pub(super) field: String,
    pub(super) ts: i64,
    /// `None` clears an older flag (the field was set validly), `Some` flags the value.
    pub(super) flag: Option<(String, String, String)>,
}

#[derive(Default)]
pub(super) struct Pending {
    /// New profiles, in creation order (which is the order of their `seq`).
    pub(super) profiles: Vec<String>,
    /// kind, value, profile, first seen.
    pub(super) identities: Vec<(&'static str, String, String, i64)>,
    /// Profiles that have gained a user id.
    pub(super) user_ids: BTreeSet<String>,
    pub(super) events: Vec<EventRow>,
    /// Folded by event time as the database would fold them: a value replaces another when
    /// its time is the same or later.
    pub(super) traits: BTreeMap<(String, String), TraitValue>,
    pub(super) quality: Vec<QualityOp>,
    pub(super) deltas: BTreeMap<String, Delta>,
    /// Consent decisions stated by events, in event order.
    pub(super) consents: Vec<super::govern::ConsentRow>,
}

impl Pending {
    pub(super) fn put_trait(&mut self, profile: &str, key: &str, value: TraitValue) {
        use std::collections::btree_map::Entry;
        match self.traits.entry((profile.to_owned(), key.to_owned())) {
            Entry::Vacant(v) => {
                v.insert(value);
            }
            Entry::Occupied(mut o) => {
                if value.ts >= o.get().ts {
                    o.insert(value);
                }
            }
        }
    }

    /// Writes everything pending. Fails with [`Failure::Retry`] when a concurrent transaction
    /// claimed one of our new identifiers or applied one of our events first.
    pub(super) async fn write(self, tx: &Transaction<'_>, ws: &str) -> Result<(), Failure> {
        if !self.profiles.is_empty() {
            exec(
                tx,
                "INSERT INTO profiles (id, workspace_id)
                 SELECT id, $2::text FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n) ORDER BY n",
                &[&self.profiles, &ws],
            )
            .await?;
        }
        if !self.identities.is_empty() {
            let mut rows = self.identities;
            rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            let kinds: Vec<&str> = rows.iter().map(|r| r.0).collect();
            let values: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
            let profiles: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
            let seen: Vec<i64> = rows.iter().map(|r| r.3).collect();
            // Waits for any transaction holding the same key; inserts nothing for a key that
            // one of them committed, which this transaction did not see when it resolved.
            let inserted = exec(
                tx,
                "INSERT INTO identities (workspace_id, kind, value, profile_id, first_seen, origin)
                 SELECT $1::text, k, v, p, f, p FROM unnest($2::text[], $3::text[], $4::text[], $5::int8[]) AS u(k, v, p, f)
                 ON CONFLICT DO NOTHING",
                &[&ws, &kinds, &values, &profiles, &seen],
            )
            .await?;
            if inserted < rows.len() as u64 {
                return Err(Failure::Retry(
                    "an identifier was claimed by a concurrent write",
                ));
            }
        }
        if !self.user_ids.is_empty() {
            let ids: Vec<&str> = self.user_ids.iter().map(String::as_str).collect();
            exec(
                tx,
                "UPDATE profiles SET has_user_id = true WHERE id = ANY($1::text[]) AND NOT has_user_id",
                &[&ids],
            )
            .await?;
        }
        if !self.events.is_empty() {
            write_events(tx, ws, &self.events).await?;
        }
        if !self.traits.is_empty() {
            write_traits(tx, &self.traits).await?;
        }
        if !self.quality.is_empty() {
            write_quality(tx, self.quality).await?;
        }
        super::govern::insert_consents(tx, ws, &self.consents).await?;
        if !self.deltas.is_empty() {
            let ids: Vec<&str> = self.deltas.keys().map(String::as_str).collect();
            let first: Vec<Option<i64>> = self.deltas.values().map(|d| d.first).collect();
            let last: Vec<Option<i64>> = self.deltas.values().map(|d| d.last).collect();
            let count: Vec<i64> = self.deltas.values().map(|d| d.count).collect();
            let channels: Vec<i64> = self.deltas.values().map(|d| d.channels).collect();
            exec(
                tx,
                "UPDATE profiles AS p SET
                    first_seen = LEAST(p.first_seen, d.f),
                    last_seen = GREATEST(p.last_seen, d.l),
                    event_count = p.event_count + d.n,
                    channels = p.channels | d.ch
                 FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[]) AS d(id, f, l, n, ch)
                 WHERE p.id = d.id",
                &[&ids, &first, &last, &count, &channels],
            )
            .await?;
        }
        Ok(())
    }
}

async fn write_events(tx: &Transaction<'_>, ws: &str, events: &[EventRow]) -> Result<(), Failure> {
    let message_ids: Vec<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
    let profiles: Vec<&str> = events.iter().map(|e| e.profile.as_str()).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type).collect();
    let names: Vec<Option<&str>> = events.iter().map(|e| e.name.as_deref()).collect();
    let channels: Vec<&str> = events.iter().map(|e| e.channel.as_str()).collect();
    let ts: Vec<i64> = events.iter().map(|e| e.ts).collect();
    let received: Vec<i64> = events.iter().map(|e| e.received_at).collect();
    let bodies: Vec<&str> = events.iter().map(|e| e.body.as_str()).collect();
    let replays: Vec<Option<&str>> = events.iter().map(|e| e.replay.as_deref()).collect();
    // In array order, so `seq` follows the order events were applied in.
    let inserted = exec(
        tx,
        "INSERT INTO events (workspace_id, message_id, profile_id, type, name, channel, ts, received_at, body, origin, replay)
         SELECT $1::text, m, p, t, nm, ch, ts, ra, b, p, rp
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[], $9::text[], $10::text[])
              WITH ORDINALITY AS u(m, p, t, nm, ch, ts, ra, b, rp, n)
         ORDER BY n
         ON CONFLICT (workspace_id, message_id) DO NOTHING",
        &[&ws, &message_ids, &profiles, &types, &names, &channels, &ts, &received, &bodies, &replays],
    )
    .await?;
    if inserted < events.len() as u64 {
        return Err(Failure::Retry(
            "a messageId was applied by a concurrent write",
        ));
    }
    Ok(())
}

async fn write_traits(
    tx: &Transaction<'_>,
    traits: &BTreeMap<(String, String), TraitValue>,
) -> Result<(), Failure> {
    let profiles: Vec<&str> = traits.keys().map(|k| k.0.as_str()).collect();
    let keys: Vec<&str> = traits.keys().map(|k| k.1.as_str()).collect();
    let values: Vec<&str> = traits.values().map(|v| v.value.as_str()).collect();
    let ts: Vec<i64> = traits.values().map(|v| v.ts).collect();
    let std: Vec<Option<&str>> = traits.values().map(|v| v.standardized.as_deref()).collect();
    exec(
        tx,
        "INSERT INTO traits (profile_id, key, value, ts, std_value)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[])
         ON CONFLICT (profile_id, key) DO UPDATE SET value = excluded.value, ts = excluded.ts,
            std_value = excluded.std_value
         WHERE excluded.ts >= traits.ts",
        &[&profiles, &keys, &values, &ts, &std],
    )
    .await?;
    Ok(())
}

/// Applies the quality operations in event order to the flags stored now, as the SQLite backend
/// applies them one statement at a time: a clear removes a flag no newer than itself, a flag
/// replaces one no newer than itself. The profiles are locked by this transaction, so the flags
/// read here cannot change before they are written back.
async fn write_quality(tx: &Transaction<'_>, ops: Vec<QualityOp>) -> Result<(), Failure> {
    let pairs: BTreeSet<(&str, &str)> = ops
        .iter()
        .map(|o| (o.profile.as_str(), o.field.as_str()))
        .collect();
    let profiles: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    let fields: Vec<&str> = pairs.iter().map(|p| p.1).collect();
    let rows = query(
        tx,
        "SELECT q.profile_id, q.field, q.raw, q.code, q.problem, q.ts
         FROM unnest($1::text[], $2::text[]) AS u(p, f)
         JOIN data_quality q ON q.profile_id = u.p AND q.field = u.f",
        &[&profiles, &fields],
    )
    .await?;
    let mut before: BTreeMap<(String, String), Flag> = BTreeMap::new();
    for r in rows {
        before.insert(
            (r.get(0), r.get(1)),
            (r.get(2), r.get(3), r.get(4), r.get(5)),
        );
    }
    let mut state = before.clone();
    for op in ops {
        let key = (op.profile, op.field);
        let current_ts = state.get(&key).map(|f| f.3);
        match op.flag {
            None => {
                if current_ts.is_some_and(|t| t <= op.ts) {
                    state.remove(&key);
                }
            }
            Some((raw, code, problem)) => {
                if current_ts.is_none_or(|t| op.ts >= t) {
                    state.insert(key, (raw, code, problem, op.ts));
                }
            }
        }
    }
    let gone: Vec<&(String, String)> = before.keys().filter(|k| !state.contains_key(*k)).collect();
    if !gone.is_empty() {
        let p: Vec<&str> = gone.iter().map(|k| k.0.as_str()).collect();
        let f: Vec<&str> = gone.iter().map(|k| k.1.as_str()).collect();
        exec(
            tx,
            "DELETE FROM data_quality q USING unnest($1::text[], $2::text[]) AS u(p, f)
             WHERE q.profile_id = u.p AND q.field = u.f",
            &[&p, &f],
        )
        .await?;
    }
    let changed: Vec<(&(String, String), &Flag)> = state
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .collect();
    if !changed.is_empty() {
        let p: Vec<&str> = changed.iter().map(|(k, _)| k.0.as_str()).collect();
        let f: Vec<&str> = changed.iter().map(|(k, _)| k.1.as_str()).collect();
        let raw: Vec<&str> = changed.iter().map(|(_, v)| v.0.as_str()).collect();
        let code: Vec<&str> = changed.iter().map(|(_, v)| v.1.as_str()).collect();
        let problem: Vec<&str> = changed.iter().map(|(_, v)| v.2.as_str()).collect();
        let ts: Vec<i64> = changed.iter().map(|(_, v)| v.3).collect();
        exec(
            tx,
            "INSERT INTO data_quality (profile_id, field, raw, code, problem, ts)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[])
             ON CONFLICT (profile_id, field) DO UPDATE SET raw = excluded.raw, code = excluded.code,
                problem = excluded.problem, ts = excluded.ts",
            &[&p, &f, &raw, &code, &problem, &ts],
        )
        .await?;
    }
    Ok(())
}

/// Adds a transaction's events to the per-day channel counters, in key order.
pub(super) async fn write_channel_days(
    tx: &Transaction<'_>,
    ws: &str,
    days: &BTreeMap<(i64, &'static str), i64>,
) -> Result<(), Failure> {
    if days.is_empty() {
        return Ok(());
    }
    let day: Vec<i64> = days.keys().map(|k| k.0).collect();
    let channel: Vec<&str> = days.keys().map(|k| k.1).collect();
    let n: Vec<i64> = days.values().copied().collect();
    exec(
        tx,
        "INSERT INTO channel_daily (workspace_id, day, channel, events)
         SELECT $1::text, d, c, n FROM unnest($2::int8[], $3::text[], $4::int8[]) AS u(d, c, n)
         ON CONFLICT (workspace_id, day, channel) DO UPDATE SET events = channel_daily.events + excluded.events",
        &[&ws, &day, &channel, &n],
    )
    .await?;
    Ok(())
}
