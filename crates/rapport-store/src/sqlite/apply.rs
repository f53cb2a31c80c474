//! Applying writes inside the writer's transaction: events onto profiles (deduplication,
//! stitching, last-writer-wins traits, merges), conversations and messages.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use rapport_core::profile::display_name;
use rapport_core::stitch::{
    HeldIdentifier, IncomingIdentity, ProfileIdentifiers, Refusal, RefusedIdentifier,
    StitchDecision, StitchPolicy,
};
use rapport_core::time::{from_millis, to_millis};
use rapport_core::{
    Channel, Conversation, ConversationId, ConversationStatus, CustomerRef, Event, EventType,
    Identifier, IdentifierKind, Message, MessageId, NewConversation, NewMessage, ProfileId,
    WorkspaceId, WorkspaceName,
};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

use super::cache;
use crate::{IngestSummary, StoreError};

pub(super) fn now_ms() -> i64 {
    to_millis(Utc::now())
}

pub(crate) fn channel_bit(c: Channel) -> i64 {
    1 << Channel::ALL.iter().position(|x| *x == c).unwrap_or(0)
}

pub(crate) fn channels_from_bits(bits: i64) -> Vec<Channel> {
    Channel::ALL
        .into_iter()
        .filter(|c| bits & channel_bit(*c) != 0)
        .collect()
}

/// The `default` workspace exists from the start.
pub(super) fn ensure_default_workspace(conn: &Connection) -> Result<(), StoreError> {
    let exists: Option<String> = conn
        .query_row(
            "SELECT id FROM workspaces WHERE name = ?1",
            [WorkspaceName::DEFAULT],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        conn.execute(
            "INSERT INTO workspaces (id, name, created_at) VALUES (?1, ?2, ?3)",
            params![
                WorkspaceId::generate().as_str(),
                WorkspaceName::DEFAULT,
                now_ms()
            ],
        )?;
    }
    Ok(())
}

/// The traits a profile's display columns are computed from (the keys `finish` reads).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) const DISPLAY_TRAITS: [&str; 6] = [
    "name",
    "first_name",
    "last_name",
    "firstName",
    "lastName",
    "email",
];

/// A profile's display columns: its name, the lowercased name and last word searched by
/// prefix, and its email folded as an identifier.
pub(crate) struct DisplayFields {
    pub(crate) name: Option<String>,
    pub(crate) name_lc: Option<String>,
    pub(crate) last_lc: Option<String>,
    pub(crate) email: Option<String>,
}

impl DisplayFields {
    pub(crate) fn from_traits(t: &Map<String, Value>) -> Self {
        let name = display_name(t);
        let name_lc = name.as_ref().map(|n| n.to_lowercase());
        let last_lc = name_lc
            .as_ref()
            .and_then(|n| n.rsplit_once(' ').map(|(_, l)| l.to_owned()));
        let email = t.get("email").and_then(Value::as_str).map(|e| {
            Identifier::new(IdentifierKind::Email, e)
                .map(|i| i.value().to_owned())
                .unwrap_or_else(|_| e.trim().to_owned())
        });
        Self {
            name,
            name_lc,
            last_lc,
            email,
        }
    }
}

/// Per-profile changes gathered while applying a group of events, written once at the end.
#[derive(Default, Clone, Copy)]
struct Delta {
    first: Option<i64>,
    last: Option<i64>,
    count: i64,
    channels: i64,
}

impl Delta {
    fn add(&mut self, ts: i64, channel: Channel) {
        self.first = Some(self.first.map_or(ts, |f| f.min(ts)));
        self.last = Some(self.last.map_or(ts, |l| l.max(ts)));
        self.count += 1;
        self.channels |= channel_bit(channel);
    }

    fn absorb(&mut self, other: Delta) {
        if let Some(f) = other.first {
            self.first = Some(self.first.map_or(f, |x| x.min(f)));
        }
        if let Some(l) = other.last {
            self.last = Some(self.last.map_or(l, |x| x.max(l)));
        }
        self.count += other.count;
        self.channels |= other.channels;
    }
}

/// One row of a profile's timeline, ready to insert.
pub(super) struct TimelineRow<'a> {
    event_type: EventType,
    message_id: &'a str,
    name: Option<&'a str>,
    channel: Channel,
    ts: i64,
    received_at: i64,
    body: &'a str,
    replay: Option<&'a str>,
}

/// An event made ready for the writer before it reaches the writer's thread: its body
/// serialised, identifiers and traits extracted. This keeps the single writer thread doing
/// only database work. The PostgreSQL backend prepares events the same way.
pub(crate) struct PreparedEvent {
    pub(crate) event_type: EventType,
    pub(crate) message_id: String,
    pub(crate) name: Option<String>,
    pub(crate) channel: Channel,
    pub(crate) ts: i64,
    pub(crate) received_at: i64,
    pub(crate) body: String,
    pub(crate) ids: Vec<Identifier>,
    pub(crate) previous_id: Option<String>,
    /// Raw trait values with their standardised value when there is one.
    pub(crate) traits: Vec<(String, String, Option<String>)>,
    pub(crate) issues: Vec<rapport_core::DataQualityIssue>,
    /// Whether the identity stage standardised this event's traits.
    pub(crate) standardized: bool,
    /// Consent the event states, by purpose.
    pub(crate) consents: Vec<(String, bool)>,
    /// The library that sent the event (`context.library.name`), for trusted sources.
    pub(crate) source: Option<String>,
    /// The traits and data-quality flags as applied, kept with the event so an unmerge can
    /// replay them (see [`Replay`]); `None` when the event sets no trait.
    pub(crate) replay: Option<String>,
}

/// What an event did to its profile's traits, stored with it for unmerge.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Replay {
    /// Key, raw value (JSON), standardised value (JSON) when it differs.
    pub(crate) traits: Vec<(String, String, Option<String>)>,
    pub(crate) issues: Vec<rapport_core::DataQualityIssue>,
    pub(crate) standardized: bool,
}

impl Replay {
    /// The replay of an event stored before replays were kept: its raw traits, read again
    /// from the body as received (identify traits and `context.traits`).
    pub(crate) fn from_body(event_type: &str, body: &str) -> Self {
        let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let mut traits = Map::new();
        if let Some(Value::Object(m)) = body.get("context").and_then(|c| c.get("traits")) {
            traits.extend(m.clone());
        }
        if event_type == EventType::Identify.as_str() {
            if let Some(Value::Object(m)) = body.get("traits") {
                traits.extend(m.clone());
            }
        }
        Self {
            traits: traits
                .into_iter()
                .map(|(k, v)| (k, v.to_string(), None))
                .collect(),
            issues: Vec::new(),
            standardized: false,
        }
    }
}

impl PreparedEvent {
    pub(crate) fn new(event: &Event) -> Self {
        let mut prepared = Self {
            event_type: event.event_type,
            message_id: event.message_id.clone(),
            name: event.name.clone(),
            channel: event.channel,
            ts: to_millis(event.timestamp),
            received_at: to_millis(event.received_at),
            body: event.body.to_string(),
            ids: event.identifiers(),
            previous_id: event.previous_id.clone(),
            traits: event
                .profile_traits()
                .into_iter()
                .map(|(k, v)| {
                    // Kept only where it differs; a refused value standardises to null.
                    let std = event
                        .standard
                        .as_ref()
                        .and_then(|s| match s.traits.get(&k) {
                            Some(sv) if *sv == v => None,
                            Some(sv) => Some(sv.to_string()),
                            None => Some("null".to_owned()),
                        });
                    (k, v.to_string(), std)
                })
                .collect(),
            issues: event
                .standard
                .as_ref()
                .map(|s| s.issues.clone())
                .unwrap_or_default(),
            standardized: event.standard.is_some(),
            consents: event
                .standard
                .as_ref()
                .map(|s| {
                    s.consents
                        .iter()
                        .map(|(p, g)| (p.as_str().to_owned(), *g))
                        .collect()
                })
                .unwrap_or_default(),
            source: event
                .context
                .get("library")
                .and_then(|l| l.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            replay: None,
        };
        if !prepared.traits.is_empty() || !prepared.issues.is_empty() {
            let replay = Replay {
                traits: prepared.traits.clone(),
                issues: prepared.issues.clone(),
                standardized: prepared.standardized,
            };
            prepared.replay = serde_json::to_string(&replay).ok();
        }
        prepared
    }

    fn row(&self) -> TimelineRow<'_> {
        TimelineRow {
            event_type: self.event_type,
            message_id: &self.message_id,
            name: self.name.as_deref(),
            channel: self.channel,
            ts: self.ts,
            received_at: self.received_at,
            body: &self.body,
            replay: self.replay.as_deref(),
        }
    }
}

/// One group of writes to one workspace.
pub(super) struct Applier<'c> {
    conn: &'c Connection,
    ws: String,
    deltas: HashMap<String, Delta>,
    dirty_traits: HashSet<String>,
    channel_days: HashMap<(Channel, i64), i64>,
    summary: IngestSummary,
    /// Why the merges about to happen happen: the event, its call type, and the kinds of
    /// identifiers it carried.
    cause: MergeCause,
    tombstones: Option<super::govern::TombstoneGuard>,
    /// The identity stage's guards; `None` applies the built-in rule only.
    policy: Option<Arc<dyn StitchPolicy>>,
    /// Pairs of profiles an operator unmerged and said must stay apart, loaded on first use.
    blocks: Option<HashSet<(String, String)>>,
}

#[derive(Default, Clone)]
struct MergeCause {
    message_id: Option<String>,
    rule: &'static str,
    kinds: Vec<&'static str>,
    source: Option<String>,
    /// Why a merge no event asked for happens (JSON), for the merge log's `detail`.
    detail: Option<Value>,
}

impl<'c> Applier<'c> {
    pub(super) fn new(conn: &'c Connection, ws: &WorkspaceId) -> Self {
        Self {
            conn,
            ws: ws.as_str().to_owned(),
            deltas: HashMap::new(),
            dirty_traits: HashSet::new(),
            channel_days: HashMap::new(),
            summary: IngestSummary::default(),
            cause: MergeCause::default(),
            tombstones: None,
            policy: None,
            blocks: None,
        }
    }

    /// Applies `policy` in stitching (the identity stage's guards).
    pub(super) fn with_policy(mut self, policy: Option<Arc<dyn StitchPolicy>>) -> Self {
        self.policy = policy;
        self
    }

    fn lookup(&self, kind: IdentifierKind, value: &str) -> Result<Option<String>, StoreError> {
        if let Some(p) = cache::get(&self.ws, kind, value) {
            return Ok(Some(p));
        }
        let found: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT profile_id FROM identities WHERE workspace_id = ?1 AND kind = ?2 AND value = ?3",
            )?
            .query_row(params![self.ws, kind.as_str(), value], |r| r.get(0))
            .optional()?;
        if let Some(p) = &found {
            cache::put(&self.ws, kind, value, p);
        }
        Ok(found)
    }

    fn has_user_id(&self, profile: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT has_user_id FROM profiles WHERE id = ?1")?
            .query_row([profile], |r| r.get::<_, bool>(0))?)
    }

    fn age(&self, profile: &str) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT rowid FROM profiles WHERE id = ?1")?
            .query_row([profile], |r| r.get(0))?)
    }

    fn create_profile(&self) -> Result<String, StoreError> {
        let id = ProfileId::generate();
        self.conn
            .prepare_cached("INSERT INTO profiles (id, workspace_id) VALUES (?1, ?2)")?
            .execute(params![id.as_str(), self.ws])?;
        Ok(id.as_str().to_owned())
    }

    fn attach(&self, profile: &str, id: &Identifier, ts: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO identities (workspace_id, kind, value, profile_id, first_seen, origin)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?4) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                self.ws,
                id.kind().as_str(),
                id.value(),
                profile,
                ts
            ])?;
        cache::put(&self.ws, id.kind(), id.value(), profile);
        if id.kind() == IdentifierKind::UserId {
            self.conn
                .prepare_cached("UPDATE profiles SET has_user_id = 1 WHERE id = ?1")?
                .execute([profile])?;
        }
        Ok(())
    }

    /// Folds `loser` into `survivor`: identities, traits (latest wins), events, conversations
    /// and counters move; `loser` keeps existing only as a redirect.
    fn merge(&mut self, survivor: &str, loser: &str) -> Result<(), StoreError> {
        cache::merged(loser, survivor);
        let c = self.conn;
        let kinds = serde_json::to_string(&self.cause.kinds).unwrap_or_else(|_| "[]".into());
        c.prepare_cached(
            "INSERT INTO merge_log (workspace_id, survivor, merged, message_id, identifier_kinds, rule, at, status, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'merged', ?8)",
        )?
        .execute(params![
            self.ws,
            survivor,
            loser,
            self.cause.message_id,
            kinds,
            self.cause.rule,
            now_ms(),
            self.cause.detail.as_ref().map(Value::to_string)
        ])?;
        super::govern::append_audit(
            c,
            &[rapport_core::AuditEntry::new(
                Some(WorkspaceId::from_trusted(self.ws.clone())),
                rapport_core::Actor::System,
                "profile.merged",
                Some(survivor.to_owned()),
                serde_json::json!({
                    "merged": loser,
                    "rule": self.cause.rule,
                    "identifier_kinds": self.cause.kinds,
                    "event": self.cause.message_id,
                    "detail": self.cause.detail,
                }),
            )],
        )?;
        // Consents, decisions and contacts keep the profile they were recorded for (`origin`,
        // set on their first move only) so an unmerge can give them back.
        c.prepare_cached(
            "UPDATE consents SET origin = coalesce(origin, profile_id), profile_id = ?1
             WHERE profile_id = ?2",
        )?
        .execute([survivor, loser])?;
        // These tables are indexed by workspace first: naming it keeps each statement on
        // the index instead of reading the whole table at every merge. Offers move with
        // their contacts (one row), so they count against the merged customer's contact
        // policy.
        let ws = self.ws.as_str();
        c.prepare_cached(
            "UPDATE decisions SET origin = coalesce(origin, profile_id), profile_id = ?1,
                body = json_set(body, '$.profile_id', ?1)
             WHERE workspace_id = ?3 AND profile_id = ?2",
        )?
        .execute([survivor, loser, ws])?;
        // The survivor keeps its own request for a person if it has one.
        c.prepare_cached(
            "UPDATE OR IGNORE handoffs SET profile_id = ?1 WHERE workspace_id = ?3 AND profile_id = ?2",
        )?
        .execute([survivor, loser, ws])?;
        c.prepare_cached("DELETE FROM handoffs WHERE workspace_id = ?2 AND profile_id = ?1")?
            .execute([loser, ws])?;
        c.prepare_cached("UPDATE identities SET profile_id = ?1 WHERE profile_id = ?2")?
            .execute([survivor, loser])?;
        c.prepare_cached(
            // The standardised value travels with its raw value, or the survivor would show
            // the loser's raw value beside its own old standardised one.
            "INSERT INTO traits (profile_id, key, value, ts, std_value)
             SELECT ?1, key, value, ts, std_value FROM traits WHERE profile_id = ?2 AND true
             ON CONFLICT (profile_id, key) DO UPDATE SET value = excluded.value, ts = excluded.ts,
                std_value = excluded.std_value
             WHERE excluded.ts > traits.ts",
        )?
        .execute([survivor, loser])?;
        c.prepare_cached("DELETE FROM traits WHERE profile_id = ?1")?
            .execute([loser])?;
        c.prepare_cached(
            "INSERT INTO data_quality (profile_id, field, raw, code, problem, ts)
             SELECT ?1, field, raw, code, problem, ts FROM data_quality WHERE profile_id = ?2 AND true
             ON CONFLICT (profile_id, field) DO UPDATE SET raw = excluded.raw, code = excluded.code,
                problem = excluded.problem, ts = excluded.ts
             WHERE excluded.ts > data_quality.ts",
        )?
        .execute([survivor, loser])?;
        c.prepare_cached("DELETE FROM data_quality WHERE profile_id = ?1")?
            .execute([loser])?;
        c.prepare_cached("UPDATE events SET profile_id = ?1 WHERE profile_id = ?2")?
            .execute([survivor, loser])?;
        c.prepare_cached("UPDATE conversations SET profile_id = ?1 WHERE profile_id = ?2")?
            .execute([survivor, loser])?;
        c.prepare_cached(
            "UPDATE profiles SET
                first_seen = min(coalesce(profiles.first_seen, l.f), coalesce(l.f, profiles.first_seen)),
                last_seen = max(coalesce(profiles.last_seen, l.la), coalesce(l.la, profiles.last_seen)),
                event_count = profiles.event_count + l.n,
                channels = profiles.channels | l.ch,
                has_user_id = profiles.has_user_id | l.u
             FROM (SELECT first_seen AS f, last_seen AS la, event_count AS n, channels AS ch, has_user_id AS u
                   FROM profiles WHERE id = ?2) AS l
             WHERE profiles.id = ?1",
        )?
        .execute([survivor, loser])?;
        c.prepare_cached(
            "UPDATE profiles SET merged_into = ?1, event_count = 0, channels = 0
             WHERE id = ?2 OR merged_into = ?2",
        )?
        .execute([survivor, loser])?;
        if let Some(d) = self.deltas.remove(loser) {
            self.deltas
                .entry(survivor.to_owned())
                .or_default()
                .absorb(d);
        }
        self.dirty_traits.remove(loser);
        self.dirty_traits.insert(survivor.to_owned());
        Ok(())
    }

    /// Finds or creates the profile an event's identifiers point to, stitching as it goes.
    ///
    /// Basic guard: two profiles that each carry a user id are never merged, and a user id is
    /// never added to a profile that already has another one (a shared device or a shared
    /// inbox must not fuse two customers). The identity stage adds configurable guards.
    fn resolve(&mut self, ids: &[Identifier], ts: i64) -> Result<String, StoreError> {
        if let Some(policy) = self.policy.clone() {
            return self.resolve_guarded(policy.as_ref(), ids, ts);
        }
        let mut found: Vec<(Identifier, String)> = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(p) = self.lookup(id.kind(), id.value())? {
                found.push((id.clone(), p));
            }
        }
        let user_id = ids.iter().find(|i| i.kind() == IdentifierKind::UserId);
        let user_profile =
            user_id.and_then(|u| found.iter().find(|(i, _)| i == u).map(|(_, p)| p.clone()));

        let mut candidates: Vec<String> = Vec::new();
        for (_, p) in &found {
            if !candidates.contains(p) {
                candidates.push(p.clone());
            }
        }

        let target = if candidates.is_empty() {
            self.create_profile()?
        } else if user_id.is_some() && user_profile.is_none() {
            // A new user id: join the found profile unless it belongs to someone else already.
            let free: Vec<String> = candidates
                .iter()
                .filter(|p| !self.has_user_id(p).unwrap_or(true))
                .cloned()
                .collect();
            match free.len() {
                0 => self.create_profile()?,
                _ => self.merge_all(free)?,
            }
        } else if candidates.len() == 1 {
            // The common case: every known identifier already points at one profile.
            candidates.swap_remove(0)
        } else {
            let primary = user_profile.unwrap_or_else(|| candidates[0].clone());
            let primary_has_user = self.has_user_id(&primary)?;
            let mut group = vec![primary.clone()];
            for c in candidates.into_iter().filter(|c| *c != primary) {
                if primary_has_user && self.has_user_id(&c)? {
                    continue;
                }
                if self.blocked_pair(&primary, &c)? {
                    let kind = self
                        .cause
                        .kinds
                        .first()
                        .and_then(|k| IdentifierKind::parse(k));
                    self.log_refused(
                        &primary,
                        &c,
                        vec![kind.unwrap_or(IdentifierKind::AnonymousId).as_str()],
                        &operator_block(),
                    )?;
                    continue;
                }
                group.push(c);
            }
            self.merge_all(group)?
        };

        for id in ids {
            let owner = found.iter().find(|(i, _)| i == id).map(|(_, p)| p.as_str());
            if owner.is_none() {
                self.attach(&target, id, ts)?;
            }
        }
        Ok(target)
    }

    /// Merges a group into its oldest member (so the canonical id is stable) and returns it.
    fn merge_all(&mut self, group: Vec<String>) -> Result<String, StoreError> {
        let mut aged = Vec::with_capacity(group.len());
        for p in group {
            aged.push((self.age(&p)?, p));
        }
        aged.sort();
        let survivor = aged[0].1.clone();
        for (_, loser) in aged.into_iter().skip(1) {
            self.merge(&survivor, &loser)?;
        }
        Ok(survivor)
    }

    /// Whether an operator said `a` and `b` must stay apart (see `merge_blocks`).
    fn blocked_pair(&mut self, a: &str, b: &str) -> Result<bool, StoreError> {
        if self.blocks.is_none() {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT a, b FROM merge_blocks WHERE workspace_id = ?1")?;
            let rows = stmt.query_map([&self.ws], |r| Ok((r.get(0)?, r.get(1)?)))?;
            self.blocks = Some(rows.collect::<Result<_, _>>()?);
        }
        let blocks = self.blocks.as_ref().map_or(0, HashSet::len);
        if blocks == 0 {
            return Ok(false);
        }
        let set = self.blocks.as_ref().expect("loaded above");
        let (a, b) = (a.to_owned(), b.to_owned());
        Ok(set.contains(&(a.clone(), b.clone())) || set.contains(&(b, a)))
    }

    /// Everything a profile holds, with when each was attached (seconds).
    fn held(&self, profile: &str) -> Result<ProfileIdentifiers, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT kind, value, first_seen FROM identities WHERE profile_id = ?1",
        )?;
        let rows = stmt.query_map([profile], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut identifiers = Vec::new();
        for row in rows {
            let (kind, value, first_seen) = row?;
            let kind = IdentifierKind::parse(&kind)
                .ok_or_else(|| StoreError::Internal("unreadable identifier kind".into()))?;
            identifiers.push(HeldIdentifier {
                identifier: Identifier::from_trusted(kind, value),
                attached_at: Some(first_seen.div_euclid(1000)),
            });
        }
        Ok(ProfileIdentifiers {
            profile_id: profile.to_owned(),
            identifiers,
        })
    }

    /// Stitching under the identity stage's guards. The common case (every identifier the event
    /// names already belongs to one profile) costs no more than the built-in rule: the guards
    /// are asked only when the event reaches several profiles or brings a new identifier.
    fn resolve_guarded(
        &mut self,
        policy: &dyn StitchPolicy,
        ids: &[Identifier],
        ts: i64,
    ) -> Result<String, StoreError> {
        let mut usable: Vec<&Identifier> = Vec::with_capacity(ids.len());
        let mut blocked = false;
        for id in ids {
            if policy.blocked(id).is_some() {
                blocked = true;
            } else if !usable.contains(&id) {
                usable.push(id);
            }
        }
        let mut owners: Vec<String> = Vec::new();
        let mut unowned = 0;
        for id in &usable {
            match self.lookup(id.kind(), id.value())? {
                Some(p) => {
                    if !owners.contains(&p) {
                        owners.push(p);
                    }
                }
                None => unowned += 1,
            }
        }
        if !blocked && unowned == 0 && owners.len() == 1 {
            return Ok(owners.swap_remove(0));
        }
        let mut profiles = Vec::with_capacity(owners.len());
        for p in &owners {
            profiles.push(self.held(p)?);
        }
        let incoming = IncomingIdentity {
            identifiers: ids.to_vec(),
            source: self.cause.source.clone(),
            at: ts.div_euclid(1000),
        };
        let mut decision = policy.decide(&incoming, &profiles);
        // An operator's unmerge with a guard outranks the rules.
        let target = decision.target.clone();
        let mut kept = Vec::with_capacity(decision.merges.len());
        for m in std::mem::take(&mut decision.merges) {
            match &target {
                Some(t) if self.blocked_pair(t, &m.from_profile)? => {
                    decision
                        .refused_merges
                        .push(rapport_core::stitch::RefusedMerge {
                            profile_id: m.from_profile,
                            via: m.via,
                            refusal: operator_block(),
                        });
                }
                _ => kept.push(m),
            }
        }
        decision.merges = kept;
        self.apply_decision(decision, ts)
    }

    /// Carries out a stitching decision: creates or merges, attaches, and records refusals.
    fn apply_decision(&mut self, d: StitchDecision, ts: i64) -> Result<String, StoreError> {
        let target = match d.target {
            Some(t) => t,
            None => self.create_profile()?,
        };
        let mut group = vec![target];
        group.extend(d.merges.iter().map(|m| m.from_profile.clone()));
        let survivor = if group.len() == 1 {
            group.swap_remove(0)
        } else {
            self.merge_all(group)?
        };
        for id in &d.attach {
            self.attach(&survivor, id, ts)?;
        }
        for r in &d.refused_merges {
            self.log_refused(
                &survivor,
                &r.profile_id,
                vec![r.via.kind().as_str()],
                &r.refusal,
            )?;
        }
        for r in &d.refused {
            self.flag_identifier(&survivor, r, ts)?;
        }
        Ok(survivor)
    }

    /// Merges two whole profiles no event joined, under the same guards as live stitching:
    /// an operator's block first, then the policy (or the built-in user-id rule). The older
    /// profile survives. The caller runs [`Self::finish`] afterwards.
    pub(super) fn merge_profiles(
        &mut self,
        m: &crate::ProfileMerge,
    ) -> Result<crate::ProfileMergeOutcome, StoreError> {
        let canonical = |id: &ProfileId| {
            super::read::canonical_profile(self.conn, &self.ws, id.as_str())?
                .ok_or_else(|| StoreError::NotFound(format!("profile {id}")))
        };
        let (a, b) = (canonical(&m.a)?, canonical(&m.b)?);
        if a == b {
            return Ok(crate::ProfileMergeOutcome::AlreadyOne {
                profile: ProfileId::from_trusted(a),
            });
        }
        let (survivor, loser) = if self.age(&a)? <= self.age(&b)? {
            (a, b)
        } else {
            (b, a)
        };
        self.cause = MergeCause {
            message_id: None,
            rule: m.rule.as_str(),
            kinds: Vec::new(),
            source: None,
            detail: Some(m.detail.clone()),
        };
        let refusal = if self.blocked_pair(&survivor, &loser)? {
            Some(operator_block())
        } else {
            let (held_s, held_l) = (self.held(&survivor)?, self.held(&loser)?);
            let now = now_ms().div_euclid(1000);
            match &self.policy {
                Some(p) => p.refuse_profile_merge(&held_s, &held_l, now),
                None => rapport_core::stitch::builtin_profile_merge_refusal(&held_s, &held_l),
            }
        };
        let status = match &refusal {
            Some(r) => {
                self.log_refused(&survivor, &loser, refusal_kinds(r), r)?;
                "refused"
            }
            None => {
                self.merge(&survivor, &loser)?;
                "merged"
            }
        };
        let merge = self
            .conn
            .prepare_cached(&format!(
                "SELECT {} FROM merge_log WHERE workspace_id = ?1 AND survivor = ?2 AND merged = ?3
                   AND status = ?4 ORDER BY seq DESC LIMIT 1",
                super::unmerge::MERGE_COLUMNS
            ))?
            .query_row(
                params![self.ws, survivor, loser, status],
                super::unmerge::merge_from,
            )?;
        Ok(match refusal {
            Some(_) => crate::ProfileMergeOutcome::Refused { merge },
            None => crate::ProfileMergeOutcome::Merged { merge },
        })
    }

    /// Records a merge a guard refused, in the merge log and the audit trail. Only profile ids,
    /// the identifier's kind and the rule are kept: no personal data.
    fn log_refused(
        &mut self,
        target: &str,
        other: &str,
        kinds: Vec<&'static str>,
        refusal: &Refusal,
    ) -> Result<(), StoreError> {
        let rule = refusal_rule(refusal);
        self.conn
            .prepare_cached(
                "INSERT INTO merge_log (workspace_id, survivor, merged, message_id, identifier_kinds, rule, at, status, refusal, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'refused', ?8, ?9)",
            )?
            .execute(params![
                self.ws,
                target,
                other,
                self.cause.message_id,
                serde_json::to_string(&kinds).unwrap_or_else(|_| "[]".into()),
                self.cause.rule,
                now_ms(),
                rule,
                self.cause.detail.as_ref().map(Value::to_string)
            ])?;
        super::govern::append_audit(
            self.conn,
            &[rapport_core::AuditEntry::new(
                Some(WorkspaceId::from_trusted(self.ws.clone())),
                rapport_core::Actor::System,
                "profile.merge_refused",
                Some(target.to_owned()),
                json!({
                    "other": other,
                    "refusal": rule,
                    "identifier_kind": kinds.first(),
                    "rule": self.cause.rule,
                    "event": self.cause.message_id,
                    "detail": self.cause.detail,
                }),
            )],
        )?;
        Ok(())
    }

    /// Flags an identifier the guards refused on the profile the event landed on (a
    /// data-quality issue: the value is kept there, never silently dropped).
    fn flag_identifier(
        &mut self,
        profile: &str,
        refused: &RefusedIdentifier,
        ts: i64,
    ) -> Result<(), StoreError> {
        let Some((code, problem)) = identifier_flag(refused) else {
            return Ok(());
        };
        self.conn
            .prepare_cached(
                "INSERT INTO data_quality (profile_id, field, raw, code, problem, ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (profile_id, field) DO UPDATE SET raw = excluded.raw, code = excluded.code,
                    problem = excluded.problem, ts = excluded.ts
                 WHERE excluded.ts >= data_quality.ts",
            )?
            .execute(params![
                profile,
                format!("identifier.{}", refused.identifier.kind().as_str()),
                refused.identifier.value(),
                code,
                problem,
                ts
            ])?;
        Ok(())
    }

    fn is_duplicate(&self, message_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM events WHERE workspace_id = ?1 AND message_id = ?2")?
            .query_row(params![self.ws, message_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Applies one validated event.
    pub(super) fn apply(&mut self, event: &PreparedEvent) -> Result<(), StoreError> {
        if self.is_duplicate(&event.message_id)? {
            self.summary.duplicates += 1;
            return Ok(());
        }
        if self.tombstones.is_none() {
            self.tombstones = Some(super::govern::TombstoneGuard::load(self.conn, &self.ws)?);
        }
        if let Some(guard) = &self.tombstones {
            let mut named = event.ids.clone();
            if let Some(prev) = &event.previous_id {
                named.extend(Identifier::new(IdentifierKind::UserId, prev).ok());
                named.extend(Identifier::new(IdentifierKind::AnonymousId, prev).ok());
            }
            if guard.blocks(self.conn, &self.ws, &named)? {
                self.summary.suppressed += 1;
                return Ok(());
            }
        }
        let mut ids = event.ids.clone();
        if let Some(prev) = &event.previous_id {
            // previousId names whichever identity the customer had before.
            let as_user = Identifier::new(IdentifierKind::UserId, prev).ok();
            let as_anon = Identifier::new(IdentifierKind::AnonymousId, prev).ok();
            let mut matched = false;
            for id in [as_user.clone(), as_anon.clone()].into_iter().flatten() {
                if self.lookup(id.kind(), id.value())?.is_some() {
                    ids.push(id);
                    matched = true;
                }
            }
            if !matched {
                ids.extend(as_anon);
            }
        }
        self.cause = MergeCause {
            message_id: Some(event.message_id.clone()),
            rule: match event.event_type {
                EventType::Alias => "alias",
                EventType::Identify => "identify",
                _ => "shared_identifier",
            },
            kinds: {
                let mut k: Vec<&'static str> = ids.iter().map(|i| i.kind().as_str()).collect();
                k.sort_unstable();
                k.dedup();
                k
            },
            source: event.source.clone(),
            detail: None,
        };
        let profile = self.resolve(&ids, event.ts)?;
        self.record(&profile, &event.row())?;
        if !event.traits.is_empty() {
            self.upsert_traits(&profile, &event.traits, event.ts)?;
        }
        if event.standardized {
            self.record_quality(&profile, event)?;
        }
        if !event.consents.is_empty() {
            super::govern::apply_event_consents(
                self.conn,
                &self.ws,
                &profile,
                &event.consents,
                event.ts,
                &event.message_id,
            )?;
        }
        self.summary.applied += 1;
        self.summary
            .touched
            .push(rapport_core::ProfileId::from_trusted(profile));
        Ok(())
    }

    fn upsert_traits(
        &mut self,
        profile: &str,
        traits: &[(String, String, Option<String>)],
        ts: i64,
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO traits (profile_id, key, value, ts, std_value) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (profile_id, key) DO UPDATE SET value = excluded.value, ts = excluded.ts,
                std_value = excluded.std_value
             WHERE excluded.ts >= traits.ts",
        )?;
        for (k, v, std) in traits {
            stmt.execute(params![profile, k, v, ts, std])?;
        }
        self.dirty_traits.insert(profile.to_owned());
        Ok(())
    }

    /// Flags the values this event could not standardise, and clears older flags on fields it
    /// now sets validly (latest event time wins, as for traits).
    fn record_quality(&mut self, profile: &str, event: &PreparedEvent) -> Result<(), StoreError> {
        let mut clear = self.conn.prepare_cached(
            "DELETE FROM data_quality WHERE profile_id = ?1 AND field = ?2 AND ts <= ?3",
        )?;
        for (k, _, _) in &event.traits {
            if !event.issues.iter().any(|i| &i.field == k) {
                clear.execute(params![profile, k, event.ts])?;
            }
        }
        let mut flag = self.conn.prepare_cached(
            "INSERT INTO data_quality (profile_id, field, raw, code, problem, ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (profile_id, field) DO UPDATE SET raw = excluded.raw, code = excluded.code,
                problem = excluded.problem, ts = excluded.ts
             WHERE excluded.ts >= data_quality.ts",
        )?;
        for i in &event.issues {
            flag.execute(params![
                profile, i.field, i.raw, i.code, i.problem, event.ts
            ])?;
        }
        Ok(())
    }

    /// Writes one timeline row for a profile and counts it.
    fn record(&mut self, profile: &str, row: &TimelineRow<'_>) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO events (workspace_id, message_id, profile_id, type, name, channel, ts, received_at, body, origin, replay)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?3, ?10)",
            )?
            .execute(params![
                self.ws,
                row.message_id,
                profile,
                row.event_type.as_str(),
                row.name,
                row.channel.as_str(),
                row.ts,
                row.received_at,
                row.body,
                row.replay
            ])?;
        self.deltas
            .entry(profile.to_owned())
            .or_default()
            .add(row.ts, row.channel);
        *self
            .channel_days
            .entry((row.channel, row.ts.div_euclid(86_400_000)))
            .or_default() += 1;
        Ok(())
    }

    /// Writes the gathered per-profile counters, display fields and channel counts.
    pub(super) fn finish(self) -> Result<IngestSummary, StoreError> {
        let c = self.conn;
        let mut upd = c.prepare_cached(
            "UPDATE profiles SET
                first_seen = min(coalesce(first_seen, ?2), ?2),
                last_seen = max(coalesce(last_seen, ?3), ?3),
                event_count = event_count + ?4,
                channels = channels | ?5
             WHERE id = ?1",
        )?;
        for (p, d) in &self.deltas {
            upd.execute(params![p, d.first, d.last, d.count, d.channels])?;
        }
        let mut read = c.prepare_cached(
            "SELECT key, value FROM traits WHERE profile_id = ?1
             AND key IN ('name', 'first_name', 'last_name', 'firstName', 'lastName', 'email')",
        )?;
        let mut display = c.prepare_cached(
            "UPDATE profiles SET name = ?2, name_lc = ?3, last_lc = ?4, email = ?5 WHERE id = ?1",
        )?;
        for p in &self.dirty_traits {
            let mut t = Map::new();
            let rows = read.query_map([p], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (k, v) = row?;
                t.insert(k, serde_json::from_str(&v).unwrap_or(Value::Null));
            }
            let d = DisplayFields::from_traits(&t);
            display.execute(params![p, d.name, d.name_lc, d.last_lc, d.email])?;
        }
        let mut days = c.prepare_cached(
            "INSERT INTO channel_daily (workspace_id, channel, day, events) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (workspace_id, day, channel) DO UPDATE SET events = events + excluded.events",
        )?;
        for ((ch, day), n) in &self.channel_days {
            days.execute(params![self.ws, ch.as_str(), day, n])?;
        }
        Ok(self.summary.settled())
    }

    /// Resolves who a conversation is for, creating a profile for a new identifier.
    pub(super) fn customer(
        &mut self,
        customer: &CustomerRef,
        ts: i64,
    ) -> Result<String, StoreError> {
        match customer {
            CustomerRef::Profile(id) => {
                super::read::canonical_profile(self.conn, &self.ws, id.as_str())?
                    .ok_or_else(|| StoreError::NotFound(format!("profile {id}")))
            }
            CustomerRef::Identifier(id) => {
                self.cause = MergeCause {
                    message_id: None,
                    rule: "conversation",
                    kinds: vec![id.kind().as_str()],
                    source: None,
                    detail: None,
                };
                self.resolve(std::slice::from_ref(id), ts)
            }
        }
    }

    pub(super) fn open_conversation(
        &mut self,
        customer: &CustomerRef,
        new: &NewConversation,
    ) -> Result<Conversation, StoreError> {
        let opened = to_millis(new.opened_at);
        let profile = self.customer(customer, opened)?;
        let id = ConversationId::generate();
        self.conn
            .prepare_cached(
                "INSERT INTO conversations (id, workspace_id, profile_id, channel, subject, status, opened_at, updated_at, origin)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?6, ?3)",
            )?
            .execute(params![id.as_str(), self.ws, profile, new.channel.as_str(), new.subject, opened])?;
        Ok(Conversation {
            id,
            profile_id: ProfileId::from_trusted(profile),
            channel: new.channel,
            subject: new.subject.clone(),
            status: ConversationStatus::Open,
            opened_at: from_millis(opened),
            updated_at: from_millis(opened),
            message_count: 0,
        })
    }

    /// Appends a message and puts it on the customer's timeline as a `message` event.
    pub(super) fn add_message(
        &mut self,
        conversation: &ConversationId,
        msg: &NewMessage,
    ) -> Result<(Message, bool), StoreError> {
        let conv = super::read::conversation_row(self.conn, &self.ws, conversation.as_str())?
            .ok_or_else(|| StoreError::NotFound(format!("conversation {conversation}")))?;
        if let Some(ext) = &msg.external_id {
            if let Some(existing) =
                super::read::message_by_external(self.conn, conversation.as_str(), ext)?
            {
                return Ok((existing, false));
            }
        }
        let id = MessageId::generate();
        let sent = to_millis(msg.sent_at);
        self.conn
            .prepare_cached(
                "INSERT INTO messages (id, conversation_id, direction, author, text, sent_at, external_id, analysis)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                id.as_str(),
                conversation.as_str(),
                msg.direction.as_str(),
                msg.author.as_str(),
                msg.text.as_str(),
                sent,
                msg.external_id,
                msg.analysis.as_ref().map(|a| a.to_string())
            ])?;
        self.conn
            .prepare_cached(
                "UPDATE conversations SET message_count = message_count + 1,
                    updated_at = max(updated_at, ?2) WHERE id = ?1",
            )?
            .execute(params![conversation.as_str(), sent])?;
        let name = match msg.direction {
            rapport_core::Direction::Inbound => "Message Received",
            rapport_core::Direction::Outbound => "Message Sent",
        };
        let body = json!({
            "type": "message",
            "event": name,
            "properties": {
                "conversation_id": conversation.as_str(),
                "message_id": id.as_str(),
                "direction": msg.direction.as_str(),
                "author": msg.author.as_str(),
                "channel": conv.channel.as_str(),
            },
            "timestamp": rapport_core::time::format(msg.sent_at),
        });
        let body = body.to_string();
        let message_id = format!("message:{id}");
        self.record(
            conv.profile_id.as_str(),
            &TimelineRow {
                event_type: EventType::Message,
                message_id: &message_id,
                name: Some(name),
                channel: conv.channel.channel(),
                ts: sent,
                received_at: now_ms(),
                body: &body,
                replay: None,
            },
        )?;
        Ok((
            Message {
                id,
                conversation_id: conversation.clone(),
                direction: msg.direction,
                author: msg.author,
                text: msg.text.as_str().to_owned(),
                sent_at: from_millis(sent),
                external_id: msg.external_id.clone(),
                analysis: msg.analysis.clone(),
            },
            true,
        ))
    }
}

/// The refusal of a merge an operator undid with a guard.
pub(crate) fn operator_block() -> Refusal {
    Refusal::Blocked {
        detail: "an operator unmerged these profiles".into(),
    }
}

/// The identifier kinds a refused merge of whole profiles is logged with: the kind whose
/// limit or guard refused it, none for an operator's block.
pub(crate) fn refusal_kinds(refusal: &Refusal) -> Vec<&'static str> {
    match refusal {
        Refusal::LimitExceeded { kind, .. } => vec![kind.as_str()],
        Refusal::UnauthenticatedMerge { .. } => vec![IdentifierKind::UserId.as_str()],
        Refusal::Blocked { .. } | Refusal::HeldByUnmergedProfile { .. } => Vec::new(),
    }
}

/// The code a refused merge is logged with. A pair an operator kept apart is told apart from
/// placeholder values, which are blocked by policy.
pub(crate) fn refusal_rule(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::Blocked { detail } if detail.starts_with("an operator") => "merge_blocked",
        other => other.code(),
    }
}

/// The data-quality flag (code, problem) for an identifier the guards refused; none for one
/// refused only because its profile was not merged (that is in the merge log).
pub(crate) fn identifier_flag(refused: &RefusedIdentifier) -> Option<(&'static str, String)> {
    match &refused.refusal {
        Refusal::Blocked { .. } => Some((
            "blocked_identifier",
            format!(
                "a placeholder {} (blocked by the identity guards); it identifies nobody",
                refused.identifier.kind().as_str()
            ),
        )),
        Refusal::LimitExceeded { .. } | Refusal::UnauthenticatedMerge { .. } => {
            Some(("identifier_limit", refused.refusal.explain()))
        }
        Refusal::HeldByUnmergedProfile { .. } => None,
    }
}
