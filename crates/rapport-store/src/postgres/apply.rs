//! Applying writes inside one transaction: events onto profiles (deduplication, stitching,
//! last-writer-wins traits, merges), conversations and messages. The rules are those of the
//! SQLite backend (`sqlite/apply.rs`); what differs is how they are made safe with other
//! writers (see the module docs of `postgres`) and that rows are gathered and written in bulk.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use deadpool_postgres::{Client, Transaction};
use rapport_core::stitch::{
    HeldIdentifier, IncomingIdentity, ProfileIdentifiers, Refusal, RefusedIdentifier, RefusedMerge,
    StitchDecision, StitchPolicy,
};
use rapport_core::time::{from_millis, to_millis};
use rapport_core::{
    Actor, AuditEntry, ConsentState, Conversation, ConversationId, ConversationStatus, CustomerRef,
    EventType, Identifier, IdentifierKind, Message, MessageId, NewConversation, NewMessage,
    ProfileId, Purpose, WorkspaceId, WorkspaceName,
};
use serde_json::{json, Map, Value};

use super::flush::{write_channel_days, EventRow, Pending, QualityOp, TraitValue};
use super::govern::{self, ConsentRow};
use super::{exec, pg_error, query, query_opt, read, Failure};
use crate::sqlite::apply::{
    identifier_flag, operator_block, refusal_kinds, refusal_rule, DisplayFields, PreparedEvent,
    DISPLAY_TRAITS,
};
use crate::{IngestSummary, StoreError};

pub(super) fn now_ms() -> i64 {
    to_millis(Utc::now())
}

/// The `default` workspace exists from the start.
pub(super) async fn ensure_default_workspace(client: &mut Client) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
            &[
                &WorkspaceId::generate().as_str(),
                &WorkspaceName::DEFAULT,
                &now_ms(),
            ],
        )
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// Why the merges about to happen happen.
#[derive(Default, Clone)]
struct MergeCause {
    message_id: Option<String>,
    rule: &'static str,
    kinds: Vec<&'static str>,
    source: Option<String>,
    /// Why a merge no event asked for happens (JSON), for the merge log's `detail`.
    detail: Option<Value>,
}

type IdKey = (&'static str, String);

fn key(id: &Identifier) -> IdKey {
    (id.kind().as_str(), id.value().to_owned())
}

/// One transaction's writes to one workspace.
pub(super) struct Applier<'t> {
    tx: &'t Transaction<'t>,
    ws: String,
    /// Owner of each identifier this transaction has looked up or attached. An owner may since
    /// have been merged: read it through [`Self::canonical`].
    ids: HashMap<IdKey, String>,
    /// Live profiles this transaction holds locked, and whether each has a user id.
    live: HashMap<String, bool>,
    /// Profiles found merged (by this transaction or an earlier one), to their survivor.
    redirects: HashMap<String, String>,
    /// `messageId`s applied before or earlier in this transaction.
    seen: HashSet<String>,
    pending: Pending,
    dirty_traits: BTreeSet<String>,
    channel_days: BTreeMap<(i64, &'static str), i64>,
    summary: IngestSummary,
    cause: MergeCause,
    /// Identifiers of erased customers among those the batch names.
    tombstoned: HashSet<IdKey>,
    /// The consent decision in force per purpose, for profiles whose consent an event stated.
    /// Kept current as decisions are added; forgotten at each merge (which moves decisions).
    consent_states: HashMap<String, HashMap<String, (ConsentState, i64)>>,
    /// Audit records this transaction owes, appended last (see `govern`).
    audit: Vec<AuditEntry>,
    /// The identity stage's guards; `None` applies the built-in rule only.
    policy: Option<Arc<dyn StitchPolicy>>,
    /// Pairs of profiles an operator unmerged and said must stay apart, loaded on first use.
    blocks: Option<HashSet<(String, String)>>,
}

impl<'t> Applier<'t> {
    pub(super) fn new(tx: &'t Transaction<'t>, ws: &WorkspaceId) -> Self {
        Self {
            tx,
            ws: ws.as_str().to_owned(),
            ids: HashMap::new(),
            live: HashMap::new(),
            redirects: HashMap::new(),
            seen: HashSet::new(),
            pending: Pending::default(),
            dirty_traits: BTreeSet::new(),
            channel_days: BTreeMap::new(),
            summary: IngestSummary::default(),
            cause: MergeCause::default(),
            tombstoned: HashSet::new(),
            consent_states: HashMap::new(),
            audit: Vec::new(),
            policy: None,
            blocks: None,
        }
    }

    /// Applies `policy` in stitching (the identity stage's guards).
    pub(super) fn with_policy(mut self, policy: Option<Arc<dyn StitchPolicy>>) -> Self {
        self.policy = policy;
        self
    }

    /// Reads, in one query each, which of a batch's `messageId`s were applied and who owns
    /// each identifier the batch names, then locks those owners.
    pub(super) async fn prefetch(&mut self, events: &[PreparedEvent]) -> Result<(), Failure> {
        let message_ids: Vec<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
        for r in query(
            self.tx,
            "SELECT message_id FROM events WHERE workspace_id = $1 AND message_id = ANY($2::text[])",
            &[&self.ws, &message_ids],
        )
        .await?
        {
            self.seen.insert(r.get(0));
        }
        let mut named: BTreeSet<&Identifier> = BTreeSet::new();
        let mut previous: Vec<Identifier> = Vec::new();
        for e in events {
            named.extend(e.ids.iter());
            if let Some(prev) = &e.previous_id {
                for kind in [IdentifierKind::UserId, IdentifierKind::AnonymousId] {
                    previous.extend(Identifier::new(kind, prev).ok());
                }
            }
        }
        named.extend(previous.iter());
        self.lookup(named.iter().map(|i| key(i)).collect()).await?;
        // After the lookup, so an erasure racing this batch is either seen here or noticed by
        // the lookup's locks (see `govern::tombstoned`).
        self.tombstoned = govern::tombstoned(self.tx, &self.ws, named.into_iter().cloned()).await?;
        Ok(())
    }

    /// Reads the owners of `keys` not known yet and locks them.
    async fn lookup(&mut self, keys: BTreeSet<IdKey>) -> Result<(), Failure> {
        let keys: Vec<IdKey> = keys
            .into_iter()
            .filter(|k| !self.ids.contains_key(k))
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let kinds: Vec<&str> = keys.iter().map(|k| k.0).collect();
        let values: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let rows = query(
            self.tx,
            "SELECT i.kind, i.value, i.profile_id
             FROM unnest($2::text[], $3::text[]) AS u(kind, value)
             JOIN identities i ON i.workspace_id = $1 AND i.kind = u.kind AND i.value = u.value",
            &[&self.ws, &kinds, &values],
        )
        .await?;
        let mut owners = Vec::with_capacity(rows.len());
        for r in rows {
            let kind: String = r.get(0);
            let Some(kind) = IdentifierKind::parse(&kind) else {
                return Err(StoreError::Internal("unreadable identifier kind".into()).into());
            };
            let owner: String = r.get(2);
            owners.push(owner.clone());
            self.ids.insert((kind.as_str(), r.get(1)), owner);
        }
        self.lock(owners.clone()).await?;
        // An identifier's owner that is gone once locked was erased by a transaction that
        // committed after the lookup: start again, to see its tombstones.
        if owners
            .iter()
            .any(|o| !self.live.contains_key(&self.canonical(o)))
        {
            return Err(Failure::Retry(
                "a customer was erased by a concurrent write",
            ));
        }
        Ok(())
    }

    /// Locks each profile (in id order) and learns whether it is live. A profile found merged
    /// is followed to its survivor, which is locked too. Profiles of other workspaces are not
    /// found.
    async fn lock(&mut self, profiles: Vec<String>) -> Result<(), Failure> {
        let mut want: BTreeSet<String> = profiles
            .into_iter()
            .filter(|p| !self.live.contains_key(p) && !self.redirects.contains_key(p))
            .collect();
        while !want.is_empty() {
            let list: Vec<&str> = want.iter().map(String::as_str).collect();
            // Under READ COMMITTED a row another transaction changed while we waited for its
            // lock is read again as committed, so `merged_into` is current once locked.
            let rows = query(
                self.tx,
                "SELECT id, merged_into, has_user_id FROM profiles
                 WHERE workspace_id = $1 AND id = ANY($2::text[]) ORDER BY id FOR UPDATE",
                &[&self.ws, &list],
            )
            .await?;
            let mut next = BTreeSet::new();
            for r in rows {
                let id: String = r.get(0);
                match r.get::<_, Option<String>>(1) {
                    None => {
                        self.live.insert(id, r.get(2));
                    }
                    Some(survivor) => {
                        if !self.live.contains_key(&survivor)
                            && !self.redirects.contains_key(&survivor)
                        {
                            next.insert(survivor.clone());
                        }
                        self.redirects.insert(id, survivor);
                    }
                }
            }
            want = next;
        }
        Ok(())
    }

    fn canonical(&self, profile: &str) -> String {
        let mut p = profile;
        while let Some(next) = self.redirects.get(p) {
            p = next;
        }
        p.to_owned()
    }

    fn has_user_id(&self, profile: &str) -> Result<bool, Failure> {
        self.live.get(profile).copied().ok_or_else(|| {
            StoreError::Internal(format!("profile {profile} is not locked by this write")).into()
        })
    }

    fn create_profile(&mut self) -> String {
        let id = ProfileId::generate().as_str().to_owned();
        self.pending.profiles.push(id.clone());
        self.live.insert(id.clone(), false);
        id
    }

    fn attach(&mut self, profile: &str, id: &Identifier, ts: i64) {
        if self.ids.contains_key(&key(id)) {
            // An event can name one identifier twice (an alias whose previousId is its own
            // anonymousId); the second claim must not look like a lost race.
            return;
        }
        self.pending.identities.push((
            id.kind().as_str(),
            id.value().to_owned(),
            profile.to_owned(),
            ts,
        ));
        self.ids.insert(key(id), profile.to_owned());
        if id.kind() == IdentifierKind::UserId {
            self.live.insert(profile.to_owned(), true);
            self.pending.user_ids.insert(profile.to_owned());
        }
    }

    /// Writes what is pending; the transaction stays open.
    async fn flush(&mut self) -> Result<(), Failure> {
        std::mem::take(&mut self.pending)
            .write(self.tx, &self.ws)
            .await
    }

    /// Finds or creates the profile an event's identifiers point to, stitching as it goes,
    /// with the same guard as SQLite: two profiles that each carry a user id never merge, and a
    /// user id never joins a profile that already has another one.
    async fn resolve(&mut self, ids: &[Identifier], ts: i64) -> Result<String, Failure> {
        if let Some(policy) = self.policy.clone() {
            return self.resolve_guarded(policy.as_ref(), ids, ts).await;
        }
        let owners: Vec<Option<String>> =
            ids.iter().map(|i| self.ids.get(&key(i)).cloned()).collect();
        self.lock(owners.iter().flatten().cloned().collect())
            .await?;
        let found: Vec<(&Identifier, String)> = ids
            .iter()
            .zip(&owners)
            .filter_map(|(i, o)| o.as_ref().map(|o| (i, self.canonical(o))))
            .collect();
        let user_id = ids.iter().find(|i| i.kind() == IdentifierKind::UserId);
        let user_profile =
            user_id.and_then(|u| found.iter().find(|(i, _)| *i == u).map(|(_, p)| p.clone()));
        let mut candidates: Vec<String> = Vec::new();
        for (_, p) in &found {
            if !candidates.contains(p) {
                candidates.push(p.clone());
            }
        }

        let target = if candidates.is_empty() {
            self.create_profile()
        } else if user_id.is_some() && user_profile.is_none() {
            // A new user id: join the found profiles unless they belong to someone else already.
            let free: Vec<String> = candidates
                .iter()
                .filter(|p| !self.live.get(*p).copied().unwrap_or(true))
                .cloned()
                .collect();
            if free.is_empty() {
                self.create_profile()
            } else {
                self.merge_all(free).await?
            }
        } else if candidates.len() == 1 {
            candidates.swap_remove(0)
        } else {
            let primary = user_profile.unwrap_or_else(|| candidates[0].clone());
            let primary_has_user = self.has_user_id(&primary)?;
            let mut group = vec![primary.clone()];
            for c in candidates.into_iter().filter(|c| *c != primary) {
                if primary_has_user && self.has_user_id(&c)? {
                    continue;
                }
                if self.blocked_pair(&primary, &c).await? {
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
                    )
                    .await?;
                    continue;
                }
                group.push(c);
            }
            self.merge_all(group).await?
        };

        for (id, owner) in ids.iter().zip(&owners) {
            if owner.is_none() {
                self.attach(&target, id, ts);
            }
        }
        Ok(target)
    }

    /// Whether an operator said `a` and `b` must stay apart (see `merge_blocks`).
    async fn blocked_pair(&mut self, a: &str, b: &str) -> Result<bool, Failure> {
        if self.blocks.is_none() {
            let rows = query(
                self.tx,
                "SELECT a, b FROM merge_blocks WHERE workspace_id = $1",
                &[&self.ws],
            )
            .await?;
            self.blocks = Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect());
        }
        let Some(set) = self.blocks.as_ref().filter(|s| !s.is_empty()) else {
            return Ok(false);
        };
        let (a, b) = (a.to_owned(), b.to_owned());
        Ok(set.contains(&(a.clone(), b.clone())) || set.contains(&(b, a)))
    }

    /// Stitching under the identity stage's guards, as in SQLite: the guards are asked only
    /// when the event reaches several profiles or brings a new identifier.
    async fn resolve_guarded(
        &mut self,
        policy: &dyn StitchPolicy,
        ids: &[Identifier],
        ts: i64,
    ) -> Result<String, Failure> {
        let mut usable: Vec<&Identifier> = Vec::with_capacity(ids.len());
        let mut blocked = false;
        for id in ids {
            if policy.blocked(id).is_some() {
                blocked = true;
            } else if !usable.contains(&id) {
                usable.push(id);
            }
        }
        let known: Vec<String> = usable
            .iter()
            .filter_map(|i| self.ids.get(&key(i)).cloned())
            .collect();
        self.lock(known.clone()).await?;
        let mut owners: Vec<String> = Vec::new();
        for o in &known {
            let c = self.canonical(o);
            if !owners.contains(&c) {
                owners.push(c);
            }
        }
        let unowned = usable.len() - known.len();
        if !blocked && unowned == 0 && owners.len() == 1 {
            return Ok(owners.swap_remove(0));
        }
        let profiles = if owners.is_empty() {
            Vec::new()
        } else {
            self.held(&owners).await?
        };
        let incoming = IncomingIdentity {
            identifiers: ids.to_vec(),
            source: self.cause.source.clone(),
            at: ts.div_euclid(1000),
        };
        let mut decision = policy.decide(&incoming, &profiles);
        let target = decision.target.clone();
        let mut kept = Vec::with_capacity(decision.merges.len());
        for m in std::mem::take(&mut decision.merges) {
            let blocked_pair = match &target {
                Some(t) => self.blocked_pair(t, &m.from_profile).await?,
                None => false,
            };
            if blocked_pair {
                decision.refused_merges.push(RefusedMerge {
                    profile_id: m.from_profile,
                    via: m.via,
                    refusal: operator_block(),
                });
            } else {
                kept.push(m);
            }
        }
        decision.merges = kept;
        self.apply_decision(decision, ts).await
    }

    /// What each profile holds, this transaction's own attachments included.
    async fn held(&mut self, owners: &[String]) -> Result<Vec<ProfileIdentifiers>, Failure> {
        self.flush().await?;
        let rows = query(
            self.tx,
            "SELECT profile_id, kind, value, first_seen FROM identities
             WHERE workspace_id = $1 AND profile_id = ANY($2::text[])",
            &[&self.ws, &owners],
        )
        .await?;
        let mut by_profile: Vec<ProfileIdentifiers> = owners
            .iter()
            .map(|p| ProfileIdentifiers {
                profile_id: p.clone(),
                identifiers: Vec::new(),
            })
            .collect();
        for r in rows {
            let p: String = r.get(0);
            let Some(kind) = IdentifierKind::parse(r.get::<_, &str>(1)) else {
                return Err(StoreError::Internal("unreadable identifier kind".into()).into());
            };
            if let Some(entry) = by_profile.iter_mut().find(|e| e.profile_id == p) {
                entry.identifiers.push(HeldIdentifier {
                    identifier: Identifier::from_trusted(kind, r.get(2)),
                    attached_at: Some(r.get::<_, i64>(3).div_euclid(1000)),
                });
            }
        }
        Ok(by_profile)
    }

    /// Merges two whole profiles no event joined, under the same guards as live stitching
    /// (an operator's block, then the policy or the built-in user-id rule), both locked first.
    /// The older profile survives. The caller runs [`Self::finish`] afterwards.
    pub(super) async fn merge_profiles(
        &mut self,
        m: &crate::ProfileMerge,
    ) -> Result<crate::ProfileMergeOutcome, Failure> {
        let (a, b) = (m.a.as_str().to_owned(), m.b.as_str().to_owned());
        self.lock(vec![a.clone(), b.clone()]).await?;
        let (a, b) = (self.canonical(&a), self.canonical(&b));
        for p in [&a, &b] {
            if !self.live.contains_key(p) {
                return Err(StoreError::NotFound(format!("profile {p}")).into());
            }
        }
        if a == b {
            return Ok(crate::ProfileMergeOutcome::AlreadyOne {
                profile: ProfileId::from_trusted(a),
            });
        }
        self.cause = MergeCause {
            message_id: None,
            rule: m.rule.as_str(),
            kinds: Vec::new(),
            source: None,
            detail: Some(m.detail.clone()),
        };
        let refusal = if self.blocked_pair(&a, &b).await? {
            Some(operator_block())
        } else {
            let held = self.held(&[a.clone(), b.clone()]).await?;
            let now = now_ms().div_euclid(1000);
            match &self.policy {
                Some(p) => p.refuse_profile_merge(&held[0], &held[1], now),
                None => rapport_core::stitch::builtin_profile_merge_refusal(&held[0], &held[1]),
            }
        };
        let (survivor, loser, status) = match &refusal {
            Some(r) => {
                let rows = query(
                    self.tx,
                    "SELECT id FROM profiles WHERE id = ANY($1::text[]) ORDER BY seq",
                    &[&vec![a.clone(), b.clone()]],
                )
                .await?;
                let older: String = rows.first().map(|r| r.get(0)).unwrap_or_else(|| a.clone());
                let other = if older == a { b } else { a };
                self.log_refused(&older, &other, refusal_kinds(r), r)
                    .await?;
                (older, other, "refused")
            }
            None => {
                let survivor = self.merge_all(vec![a.clone(), b.clone()]).await?;
                let loser = if survivor == a { b } else { a };
                (survivor, loser, "merged")
            }
        };
        let row = query_opt(
            self.tx,
            &format!(
                "SELECT {} FROM merge_log WHERE workspace_id = $1 AND survivor = $2 AND merged = $3
                   AND status = $4 ORDER BY seq DESC LIMIT 1",
                super::unmerge::MERGE_COLUMNS
            ),
            &[&self.ws, &survivor, &loser, &status],
        )
        .await?
        .ok_or_else(|| {
            StoreError::Internal("the merge log entry just written is missing".into())
        })?;
        let merge = super::unmerge::merge_from(&row);
        Ok(match refusal {
            Some(_) => crate::ProfileMergeOutcome::Refused { merge },
            None => crate::ProfileMergeOutcome::Merged { merge },
        })
    }

    /// Carries out a stitching decision: creates or merges, attaches, and records refusals.
    async fn apply_decision(&mut self, d: StitchDecision, ts: i64) -> Result<String, Failure> {
        let target = match d.target {
            Some(t) => t,
            None => self.create_profile(),
        };
        let mut group = vec![target];
        group.extend(d.merges.iter().map(|m| m.from_profile.clone()));
        let survivor = self.merge_all(group).await?;
        for id in &d.attach {
            self.attach(&survivor, id, ts);
        }
        for r in &d.refused_merges {
            self.log_refused(
                &survivor,
                &r.profile_id,
                vec![r.via.kind().as_str()],
                &r.refusal,
            )
            .await?;
        }
        for r in &d.refused {
            self.flag_identifier(&survivor, r, ts);
        }
        Ok(survivor)
    }

    /// Records a merge a guard refused, in the merge log and the audit trail, naming only
    /// profile ids, the identifier's kind and the rule.
    async fn log_refused(
        &mut self,
        target: &str,
        other: &str,
        kinds: Vec<&'static str>,
        refusal: &Refusal,
    ) -> Result<(), Failure> {
        let rule = refusal_rule(refusal);
        let detail = self.cause.detail.as_ref().map(Value::to_string);
        exec(
            self.tx,
            "INSERT INTO merge_log (workspace_id, survivor, merged, message_id, identifier_kinds, rule, at, status, refusal, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'refused', $8, $9)",
            &[
                &self.ws,
                &target,
                &other,
                &self.cause.message_id,
                &kinds,
                &self.cause.rule,
                &now_ms(),
                &rule,
                &detail,
            ],
        )
        .await?;
        self.audit.push(AuditEntry::new(
            Some(WorkspaceId::from_trusted(self.ws.clone())),
            Actor::System,
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
        ));
        Ok(())
    }

    /// Flags an identifier the guards refused on the profile the event landed on.
    fn flag_identifier(&mut self, profile: &str, refused: &RefusedIdentifier, ts: i64) {
        if let Some((code, problem)) = identifier_flag(refused) {
            self.pending.quality.push(QualityOp {
                profile: profile.to_owned(),
                field: format!("identifier.{}", refused.identifier.kind().as_str()),
                ts,
                flag: Some((
                    refused.identifier.value().to_owned(),
                    code.to_owned(),
                    problem,
                )),
            });
        }
    }

    /// Merges a group into its oldest member (so the canonical id is stable) and returns it.
    async fn merge_all(&mut self, group: Vec<String>) -> Result<String, Failure> {
        if group.len() == 1 {
            return Ok(group.into_iter().next().unwrap_or_default());
        }
        // New profiles get their age (`seq`) when inserted, and the rows about to move must be
        // in the tables.
        self.flush().await?;
        let rows = query(
            self.tx,
            "SELECT seq, id FROM profiles WHERE id = ANY($1::text[])",
            &[&group],
        )
        .await?;
        let mut aged: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        if aged.len() != group.len() {
            return Err(StoreError::Internal("a profile to merge is missing".into()).into());
        }
        aged.sort();
        let survivor = aged[0].1.clone();
        for (_, loser) in aged.into_iter().skip(1) {
            self.merge(&survivor, &loser).await?;
        }
        Ok(survivor)
    }

    /// Folds `loser` into `survivor`: identities, traits (latest wins), data-quality flags,
    /// events, conversations and counters move; `loser` stays only as a redirect. Nothing is
    /// pending when this runs.
    async fn merge(&mut self, survivor: &str, loser: &str) -> Result<(), Failure> {
        let tx = self.tx;
        let params: &super::Params<'_> = &[&survivor, &loser];
        // Names identifiers by kind only: the audit log must hold no personal data.
        self.audit.push(AuditEntry::new(
            Some(WorkspaceId::from_trusted(self.ws.clone())),
            Actor::System,
            "profile.merged",
            Some(survivor.to_owned()),
            json!({
                "merged": loser,
                "rule": self.cause.rule,
                "identifier_kinds": self.cause.kinds,
                "event": self.cause.message_id,
                "detail": self.cause.detail,
            }),
        ));
        // Consents, decisions and contacts keep the profile they were recorded for (`origin`,
        // set on their first move only) so an unmerge can give them back.
        exec(
            tx,
            "UPDATE consents SET origin = coalesce(origin, profile_id), profile_id = $1
             WHERE profile_id = $2",
            params,
        )
        .await?;
        // These tables are indexed by workspace first: naming it keeps each statement on
        // the index instead of reading the whole table at every merge.
        let in_ws: &super::Params<'_> = &[&survivor, &loser, &self.ws];
        exec(
            tx,
            "UPDATE decisions SET origin = coalesce(origin, profile_id), profile_id = $1,
                 body = jsonb_set(body::jsonb, '{profile_id}', to_jsonb($1::text))::text
             WHERE workspace_id = $3 AND profile_id = $2",
            in_ws,
        )
        .await?;
        // Offers already made count against the merged customer's contact policy.
        exec(
            tx,
            "UPDATE nba_contacts SET origin = coalesce(origin, profile_id), profile_id = $1
             WHERE workspace_id = $3 AND profile_id = $2",
            in_ws,
        )
        .await?;
        // The survivor keeps its own request for a person if it has one.
        exec(
            tx,
            "UPDATE handoffs SET profile_id = $1 WHERE workspace_id = $3 AND profile_id = $2
               AND NOT EXISTS (SELECT 1 FROM handoffs h WHERE h.workspace_id = $3 AND h.profile_id = $1)",
            in_ws,
        )
        .await?;
        exec(
            tx,
            "DELETE FROM handoffs WHERE workspace_id = $2 AND profile_id = $1",
            &[&loser, &self.ws],
        )
        .await?;
        self.consent_states.remove(survivor);
        self.consent_states.remove(loser);
        exec(
            tx,
            "INSERT INTO merge_log (workspace_id, survivor, merged, message_id, identifier_kinds, rule, at, status, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'merged', $8)",
            &[
                &self.ws,
                &survivor,
                &loser,
                &self.cause.message_id,
                &self.cause.kinds,
                &self.cause.rule,
                &now_ms(),
                &self.cause.detail.as_ref().map(Value::to_string),
            ],
        )
        .await?;
        exec(
            tx,
            "UPDATE identities SET profile_id = $1 WHERE profile_id = $2",
            params,
        )
        .await?;
        exec(
            tx,
            "INSERT INTO traits (profile_id, key, value, ts, std_value)
             SELECT $1, key, value, ts, std_value FROM traits WHERE profile_id = $2
             ON CONFLICT (profile_id, key) DO UPDATE SET value = excluded.value, ts = excluded.ts,
                std_value = excluded.std_value
             WHERE excluded.ts > traits.ts",
            params,
        )
        .await?;
        exec(tx, "DELETE FROM traits WHERE profile_id = $1", &[&loser]).await?;
        exec(
            tx,
            "INSERT INTO data_quality (profile_id, field, raw, code, problem, ts)
             SELECT $1, field, raw, code, problem, ts FROM data_quality WHERE profile_id = $2
             ON CONFLICT (profile_id, field) DO UPDATE SET raw = excluded.raw, code = excluded.code,
                problem = excluded.problem, ts = excluded.ts
             WHERE excluded.ts > data_quality.ts",
            params,
        )
        .await?;
        exec(
            tx,
            "DELETE FROM data_quality WHERE profile_id = $1",
            &[&loser],
        )
        .await?;
        exec(
            tx,
            "UPDATE events SET profile_id = $1 WHERE profile_id = $2",
            params,
        )
        .await?;
        exec(
            tx,
            "UPDATE conversations SET profile_id = $1 WHERE profile_id = $2",
            params,
        )
        .await?;
        exec(
            tx,
            "UPDATE profiles AS p SET
                first_seen = LEAST(p.first_seen, l.first_seen),
                last_seen = GREATEST(p.last_seen, l.last_seen),
                event_count = p.event_count + l.event_count,
                channels = p.channels | l.channels,
                has_user_id = p.has_user_id OR l.has_user_id
             FROM profiles AS l WHERE p.id = $1 AND l.id = $2",
            params,
        )
        .await?;
        exec(
            tx,
            "UPDATE profiles SET merged_into = $1, event_count = 0, channels = 0
             WHERE workspace_id = $3 AND (id = $2 OR merged_into = $2)",
            &[&survivor, &loser, &self.ws],
        )
        .await?;
        let loser_had_user = self.live.remove(loser).unwrap_or(false);
        if let Some(h) = self.live.get_mut(survivor) {
            *h |= loser_had_user;
        }
        self.redirects.insert(loser.to_owned(), survivor.to_owned());
        // The survivor's display fields may now come from the loser's traits.
        self.dirty_traits.remove(loser);
        self.dirty_traits.insert(survivor.to_owned());
        Ok(())
    }

    /// Applies one validated event.
    pub(super) async fn apply(&mut self, event: &PreparedEvent) -> Result<(), Failure> {
        if self.seen.contains(&event.message_id) {
            self.summary.duplicates += 1;
            return Ok(());
        }
        if !self.tombstoned.is_empty() && self.names_erased_customer(event) {
            self.summary.suppressed += 1;
            return Ok(());
        }
        self.seen.insert(event.message_id.clone());
        let mut ids = event.ids.clone();
        if let Some(prev) = &event.previous_id {
            // previousId names whichever identity the customer had before.
            let as_user = Identifier::new(IdentifierKind::UserId, prev).ok();
            let as_anon = Identifier::new(IdentifierKind::AnonymousId, prev).ok();
            let mut matched = false;
            for id in [as_user.clone(), as_anon.clone()].into_iter().flatten() {
                if self.ids.contains_key(&key(&id)) {
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
        let profile = self.resolve(&ids, event.ts).await?;
        self.record(EventRow {
            message_id: event.message_id.clone(),
            profile: profile.clone(),
            event_type: event.event_type.as_str(),
            name: event.name.clone(),
            channel: event.channel,
            ts: event.ts,
            received_at: event.received_at,
            body: event.body.clone(),
            replay: event.replay.clone(),
        });
        for (k, v, std) in &event.traits {
            self.pending.put_trait(
                &profile,
                k,
                TraitValue {
                    value: v.clone(),
                    ts: event.ts,
                    standardized: std.clone(),
                },
            );
        }
        if !event.traits.is_empty() {
            self.dirty_traits.insert(profile.clone());
        }
        if event.standardized {
            // Older flags on fields this event sets validly are cleared; then its own flags.
            for (k, _, _) in &event.traits {
                if !event.issues.iter().any(|i| &i.field == k) {
                    self.pending.quality.push(QualityOp {
                        profile: profile.clone(),
                        field: k.clone(),
                        ts: event.ts,
                        flag: None,
                    });
                }
            }
            for i in &event.issues {
                self.pending.quality.push(QualityOp {
                    profile: profile.clone(),
                    field: i.field.clone(),
                    ts: event.ts,
                    flag: Some((i.raw.clone(), i.code.clone(), i.problem.clone())),
                });
            }
        }
        if !event.consents.is_empty() {
            self.apply_event_consents(&profile, event).await?;
        }
        self.summary.applied += 1;
        self.summary
            .touched
            .push(rapport_core::ProfileId::from_trusted(profile));
        Ok(())
    }

    /// Whether an event names an identifier of an erased customer, its previousId included.
    fn names_erased_customer(&self, event: &PreparedEvent) -> bool {
        let named = event.ids.iter().map(key);
        let previous = event.previous_id.iter().flat_map(|prev| {
            [IdentifierKind::UserId, IdentifierKind::AnonymousId]
                .into_iter()
                .filter_map(|kind| Identifier::new(kind, prev).ok())
                .map(|id| key(&id))
        });
        named.chain(previous).any(|k| self.tombstoned.contains(&k))
    }

    /// Applies the consent an event states, as SQLite does: a purpose's state changes only
    /// when the event is newer than the decision in force and says something different, and
    /// taking back a grant is a withdrawal. The profile is locked by this transaction, so the
    /// decisions read here stay current until it commits.
    async fn apply_event_consents(
        &mut self,
        profile: &str,
        event: &PreparedEvent,
    ) -> Result<(), Failure> {
        if !self.consent_states.contains_key(profile) {
            let states = govern::consent_states(self.tx, profile).await?;
            self.consent_states.insert(profile.to_owned(), states);
        }
        let Some(states) = self.consent_states.get_mut(profile) else {
            return Ok(());
        };
        for (purpose, granted) in &event.consents {
            let Some(purpose) = Purpose::parse(purpose) else {
                continue;
            };
            let said = if *granted {
                ConsentState::Granted
            } else {
                ConsentState::Denied
            };
            let current = states.get(purpose.as_str()).copied();
            match current {
                // A "no" after a withdrawal says nothing new.
                Some((s, _)) if s == said || (s == ConsentState::Withdrawn && !*granted) => {
                    continue
                }
                Some((_, at)) if at > event.ts => continue,
                _ => {}
            }
            let state = match (said, current) {
                (ConsentState::Denied, Some((ConsentState::Granted, _))) => ConsentState::Withdrawn,
                (s, _) => s,
            };
            states.insert(purpose.as_str().to_owned(), (state, event.ts));
            self.pending.consents.push(ConsentRow {
                profile: profile.to_owned(),
                purpose: purpose.as_str().to_owned(),
                state,
                source: "segment".into(),
                at: event.ts,
                recorded_at: now_ms(),
            });
            self.audit.push(AuditEntry::new(
                Some(WorkspaceId::from_trusted(self.ws.clone())),
                Actor::System,
                &format!("consent.{}", state.as_str()),
                Some(profile.to_owned()),
                json!({"purpose": purpose.as_str(), "source": "segment", "event": event.message_id}),
            ));
        }
        Ok(())
    }

    fn record(&mut self, row: EventRow) {
        self.pending
            .deltas
            .entry(row.profile.clone())
            .or_default()
            .add(row.ts, row.channel);
        *self
            .channel_days
            .entry((row.ts.div_euclid(86_400_000), row.channel.as_str()))
            .or_default() += 1;
        self.pending.events.push(row);
    }

    /// Writes everything pending, the display fields of profiles whose traits changed and the
    /// channel counters. The caller commits.
    pub(super) async fn finish(mut self) -> Result<IngestSummary, Failure> {
        self.flush().await?;
        if !self.dirty_traits.is_empty() {
            let profiles: Vec<&str> = self.dirty_traits.iter().map(String::as_str).collect();
            let rows = query(
                self.tx,
                "SELECT profile_id, key, value FROM traits
                 WHERE profile_id = ANY($1::text[]) AND key = ANY($2::text[])",
                &[&profiles, &&DISPLAY_TRAITS[..]],
            )
            .await?;
            let mut traits: HashMap<String, Map<String, Value>> = HashMap::new();
            for r in rows {
                let value: String = r.get(2);
                traits.entry(r.get(0)).or_default().insert(
                    r.get(1),
                    serde_json::from_str(&value).unwrap_or(Value::Null),
                );
            }
            let empty = Map::new();
            let fields: Vec<DisplayFields> = profiles
                .iter()
                .map(|p| DisplayFields::from_traits(traits.get(*p).unwrap_or(&empty)))
                .collect();
            let name: Vec<Option<&str>> = fields.iter().map(|f| f.name.as_deref()).collect();
            let name_lc: Vec<Option<&str>> = fields.iter().map(|f| f.name_lc.as_deref()).collect();
            let last_lc: Vec<Option<&str>> = fields.iter().map(|f| f.last_lc.as_deref()).collect();
            let email: Vec<Option<&str>> = fields.iter().map(|f| f.email.as_deref()).collect();
            exec(
                self.tx,
                "UPDATE profiles AS p SET name = d.name, name_lc = d.name_lc, last_lc = d.last_lc, email = d.email
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                      AS d(id, name, name_lc, last_lc, email)
                 WHERE p.id = d.id",
                &[&profiles, &name, &name_lc, &last_lc, &email],
            )
            .await?;
        }
        write_channel_days(self.tx, &self.ws, &self.channel_days).await?;
        // Last, so the audit head is held only until the commit that follows.
        govern::append_audit(self.tx, &self.audit).await?;
        Ok(self.summary.settled())
    }

    /// Resolves who a conversation is for, creating a profile for a new identifier.
    async fn customer(&mut self, customer: &CustomerRef, ts: i64) -> Result<String, Failure> {
        match customer {
            CustomerRef::Profile(id) => {
                self.lock(vec![id.as_str().to_owned()]).await?;
                let canonical = self.canonical(id.as_str());
                if self.live.contains_key(&canonical) {
                    Ok(canonical)
                } else {
                    Err(StoreError::NotFound(format!("profile {id}")).into())
                }
            }
            CustomerRef::Identifier(id) => {
                self.lookup(BTreeSet::from([key(id)])).await?;
                self.cause = MergeCause {
                    message_id: None,
                    rule: "conversation",
                    kinds: vec![id.kind().as_str()],
                    source: None,
                    detail: None,
                };
                self.resolve(std::slice::from_ref(id), ts).await
            }
        }
    }

    pub(super) async fn open_conversation(
        &mut self,
        customer: &CustomerRef,
        new: &NewConversation,
    ) -> Result<Conversation, Failure> {
        let opened = to_millis(new.opened_at);
        let profile = self.customer(customer, opened).await?;
        self.flush().await?;
        let id = ConversationId::generate();
        exec(
            self.tx,
            "INSERT INTO conversations (id, workspace_id, profile_id, channel, subject, status, opened_at, updated_at, origin)
             VALUES ($1, $2, $3, $4, $5, 'open', $6, $6, $3)",
            &[&id.as_str(), &self.ws, &profile, &new.channel.as_str(), &new.subject, &opened],
        )
        .await?;
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
    pub(super) async fn add_message(
        &mut self,
        conversation: &ConversationId,
        msg: &NewMessage,
    ) -> Result<(Message, bool), Failure> {
        // Locking the conversation serialises messages to it (so an external id is stored
        // once) and waits out a merge moving it to another profile.
        let row = query_opt(
            self.tx,
            "SELECT profile_id, channel FROM conversations WHERE id = $1 AND workspace_id = $2 FOR UPDATE",
            &[&conversation.as_str(), &self.ws],
        )
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("conversation {conversation}")))?;
        let (profile, channel): (String, String) = (row.get(0), row.get(1));
        let channel = rapport_core::ConversationChannel::parse(&channel)
            .ok_or_else(|| StoreError::Internal("unreadable conversation channel".into()))?;
        if let Some(ext) = &msg.external_id {
            if let Some(existing) =
                read::message_by_external(self.tx, conversation.as_str(), ext).await?
            {
                return Ok((existing, false));
            }
        }
        self.lock(vec![profile.clone()]).await?;
        let profile = self.canonical(&profile);
        let id = MessageId::generate();
        let sent = to_millis(msg.sent_at);
        let analysis = msg.analysis.as_ref().map(|a| a.to_string());
        exec(
            self.tx,
            "INSERT INTO messages (id, conversation_id, direction, author, text, sent_at, external_id, analysis)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &id.as_str(),
                &conversation.as_str(),
                &msg.direction.as_str(),
                &msg.author.as_str(),
                &msg.text.as_str(),
                &sent,
                &msg.external_id,
                &analysis,
            ],
        )
        .await?;
        exec(
            self.tx,
            "UPDATE conversations SET message_count = message_count + 1,
                updated_at = GREATEST(updated_at, $2) WHERE id = $1",
            &[&conversation.as_str(), &sent],
        )
        .await?;
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
                "channel": channel.as_str(),
            },
            "timestamp": rapport_core::time::format(msg.sent_at),
        });
        self.record(EventRow {
            message_id: format!("message:{id}"),
            profile,
            event_type: EventType::Message.as_str(),
            name: Some(name.to_owned()),
            channel: channel.channel(),
            ts: sent,
            received_at: now_ms(),
            body: body.to_string(),
            replay: None,
        });
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
