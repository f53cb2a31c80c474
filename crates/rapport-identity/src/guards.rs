//! Guards for the identity graph: pure decisions about which profiles an incoming event may
//! merge and which identifiers it may attach. Storage and the merge log live elsewhere; every
//! decision here carries a reason the merge log can record and a person can read.
//!
//! The rules, in order:
//! 1. Blocked values (`null`, `0`, `test@example.com`, configured patterns) are refused.
//! 2. Profiles are merged highest identifier priority first (default: user id, email, phone,
//!    anonymous id), so when limits conflict the stronger identifier wins.
//! 3. Profile-theft guard: an unauthenticated event (no user id, or a source not trusted)
//!    never merges two profiles that both carry a user id.
//! 4. Per-type limits (e.g. one user id, five emails per profile, optionally counted within a
//!    time window): a merge or attachment that would exceed one is refused. The limit of
//!    `external` applies to each external system separately (one CRM id, one billing id).
//! 5. A user id nobody holds yet says who the event is about: a profile whose user-id limit is
//!    already full (it has another user id) is someone else, so it is neither joined nor given
//!    the event, and the event starts a profile of its own if nothing else is left. (Without
//!    this, a shared device's anonymous id would put a second customer's events on the first
//!    customer's profile.) Other kinds only refuse the extra identifier.
//!
//! The store applies these decisions in live stitching through [`StitchPolicy`].

use std::collections::{BTreeMap, BTreeSet};

use rapport_core::identity::{Identifier, IdentifierKind};
pub use rapport_core::stitch::{
    HeldIdentifier, IncomingIdentity, Merge, ProfileIdentifiers, Refusal, RefusedIdentifier,
    RefusedMerge, StitchDecision, StitchPolicy,
};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::IdentityError;

/// A limit on how many identifiers of one kind a profile may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindLimit {
    pub max: usize,
    /// Count only identifiers attached within this many days (none: count all).
    #[serde(default)]
    pub window_days: Option<u32>,
}

/// Identity-graph policy, configurable in TOML:
///
/// ```toml
/// blocked_values = ["null", "0", "undefined", "test@example.com", "n/a"]
/// blocked_patterns = ["^(?i)test\\d*@"]
/// priority = ["user_id", "email", "phone", "anonymous_id"]
/// trusted_sources = ["web-backend"]
/// [limits]
/// user_id = { max = 1 }
/// email = { max = 5, window_days = 365 }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityPolicy {
    /// Values refused for every kind, compared case-insensitively after trimming.
    pub blocked_values: Vec<String>,
    /// Regular expressions; a value matching any is refused.
    pub blocked_patterns: Vec<String>,
    pub limits: BTreeMap<IdentifierKind, KindLimit>,
    /// Kinds from strongest to weakest; kinds not listed rank after those listed.
    pub priority: Vec<IdentifierKind>,
    /// Sources whose events count as authenticated when they carry a user id. When absent,
    /// every source is trusted and a user id alone authenticates.
    pub trusted_sources: Option<Vec<String>>,
}

impl Default for IdentityPolicy {
    fn default() -> Self {
        let blocked = [
            "null",
            "nil",
            "none",
            "0",
            "-1",
            "undefined",
            "unknown",
            "n/a",
            "na",
            "[object object]",
            "test@example.com",
            "test@test.com",
            "noreply@example.com",
            "anonymous",
            "guest",
        ];
        Self {
            blocked_values: blocked.iter().map(|s| (*s).to_owned()).collect(),
            blocked_patterns: vec![
                r"^[0\-_.\s]+$".into(),
                r"^(?i)(x+|test|asdf|qwerty)$".into(),
            ],
            limits: BTreeMap::from([
                (
                    IdentifierKind::UserId,
                    KindLimit {
                        max: 1,
                        window_days: None,
                    },
                ),
                (
                    IdentifierKind::Email,
                    KindLimit {
                        max: 5,
                        window_days: None,
                    },
                ),
                (
                    IdentifierKind::Phone,
                    KindLimit {
                        max: 5,
                        window_days: None,
                    },
                ),
            ]),
            priority: IdentifierKind::ALL.to_vec(),
            trusted_sources: None,
        }
    }
}

/// A policy checked as a whole, with its patterns compiled.
#[derive(Debug, Clone)]
pub struct IdentityGuards {
    policy: IdentityPolicy,
    blocked: BTreeSet<String>,
    patterns: Vec<Regex>,
}

/// Two sets of guards are equal when their policies are (the rest is derived from it).
impl PartialEq for IdentityGuards {
    fn eq(&self, other: &Self) -> bool {
        self.policy == other.policy
    }
}

impl IdentityGuards {
    /// Validates the policy, reporting every problem at once.
    pub fn new(policy: IdentityPolicy) -> Result<Self, IdentityError> {
        let mut problems = Vec::new();
        let mut patterns = Vec::new();
        for p in &policy.blocked_patterns {
            match Regex::new(p) {
                Ok(re) => patterns.push(re),
                Err(e) => problems.push(format!("blocked pattern {p:?}: {e}")),
            }
        }
        for (kind, limit) in &policy.limits {
            if limit.max == 0 {
                problems.push(format!("limit for {} must be at least 1", kind.as_str()));
            }
        }
        let mut seen = BTreeSet::new();
        for k in &policy.priority {
            if !seen.insert(*k) {
                problems.push(format!("{} appears twice in priority", k.as_str()));
            }
        }
        if !problems.is_empty() {
            return Err(IdentityError::InvalidSettings(problems));
        }
        let blocked = policy
            .blocked_values
            .iter()
            .map(|v| v.trim().to_lowercase())
            .collect();
        Ok(Self {
            policy,
            blocked,
            patterns,
        })
    }

    /// Parses and validates a TOML policy.
    pub fn from_toml(text: &str) -> Result<Self, IdentityError> {
        Self::new(toml::from_str(text)?)
    }

    pub fn policy(&self) -> &IdentityPolicy {
        &self.policy
    }

    /// Why a value may never be used as an identifier, if it may not.
    pub fn blocked_reason(&self, id: &Identifier) -> Option<String> {
        let v = id.value().trim().to_lowercase();
        if self.blocked.contains(&v) {
            return Some(format!("{:?} is a blocked placeholder value", id.value()));
        }
        self.patterns
            .iter()
            .find(|re| re.is_match(id.value()))
            .map(|re| format!("{:?} matches blocked pattern {}", id.value(), re.as_str()))
    }

    fn rank(&self, kind: IdentifierKind) -> usize {
        self.policy
            .priority
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(self.policy.priority.len())
    }

    fn limit(&self, kind: IdentifierKind) -> Option<KindLimit> {
        self.policy.limits.get(&kind).copied()
    }

    fn source_trusted(&self, source: Option<&str>) -> bool {
        match (&self.policy.trusted_sources, source) {
            (None, _) => true,
            (Some(list), Some(s)) => list.iter().any(|t| t == s),
            (Some(_), None) => false,
        }
    }
}

/// Counts identifiers of a kind that count toward its limit at time `at`.
/// External ids are counted per system, so the largest count of any one system is returned.
fn counted(held: &[HeldIdentifier], kind: IdentifierKind, limit: KindLimit, at: i64) -> usize {
    let mut values: BTreeMap<Option<&str>, BTreeSet<&str>> = BTreeMap::new();
    for h in held.iter().filter(|h| h.identifier.kind() == kind) {
        let in_window = match (limit.window_days, h.attached_at) {
            (Some(days), Some(t)) => at - t <= i64::from(days) * 86_400,
            _ => true,
        };
        if in_window {
            values
                .entry(h.identifier.external_system())
                .or_default()
                .insert(h.identifier.value());
        }
    }
    values.values().map(BTreeSet::len).max().unwrap_or(0)
}

/// Decides what an event may do to the identity graph.
///
/// `profiles` are the profiles that hold at least one of the event's identifiers. The result
/// lists the merges allowed, the merges refused, the identifiers to attach and those refused,
/// each with a reason. Pure: the caller applies the decision and writes the merge log.
pub fn decide_stitch(
    event: &IncomingIdentity,
    profiles: &[ProfileIdentifiers],
    guards: &IdentityGuards,
) -> StitchDecision {
    let mut refused = Vec::new();
    let mut usable: Vec<Identifier> = Vec::new();
    for id in &event.identifiers {
        if usable.contains(id) {
            continue;
        }
        match guards.blocked_reason(id) {
            Some(detail) => refused.push(RefusedIdentifier {
                identifier: id.clone(),
                refusal: Refusal::Blocked { detail },
            }),
            None => usable.push(id.clone()),
        }
    }
    // Strongest identifiers first; ties keep the event's order.
    usable.sort_by_key(|id| guards.rank(id.kind()));

    let has_user_id = usable.iter().any(|i| i.kind() == IdentifierKind::UserId);
    let authenticated = has_user_id && guards.source_trusted(event.source.as_deref());

    // Each profile is reached through the strongest incoming identifier it holds.
    let holds =
        |p: &ProfileIdentifiers, id: &Identifier| p.identifiers.iter().any(|h| &h.identifier == id);
    let mut reached: Vec<(&ProfileIdentifiers, &Identifier)> = Vec::new();
    for id in &usable {
        for p in profiles.iter().filter(|p| holds(p, id)) {
            if !reached.iter().any(|(q, _)| q.profile_id == p.profile_id) {
                reached.push((p, id));
            }
        }
    }

    let mut decision = StitchDecision {
        target: None,
        authenticated,
        merges: Vec::new(),
        refused_merges: Vec::new(),
        attach: Vec::new(),
        refused,
    };
    let mut merged: Vec<HeldIdentifier> = Vec::new();
    let mut unmerged: Vec<(&str, &ProfileIdentifiers)> = Vec::new();

    // Rule 5: a new user id keeps the event off profiles that belong to another user.
    if let Some(lead) = usable
        .first()
        .filter(|l| l.kind() == IdentifierKind::UserId)
    {
        let lead_limit = guards.limit(lead.kind());
        if let (false, Some(limit)) = (profiles.iter().any(|p| holds(p, lead)), lead_limit) {
            reached.retain(|&(p, via)| {
                let mut with_lead = p.identifiers.clone();
                with_lead.push(HeldIdentifier {
                    identifier: lead.clone(),
                    attached_at: Some(event.at),
                });
                let would_have = counted(&with_lead, lead.kind(), limit, event.at);
                if would_have <= limit.max {
                    return true;
                }
                decision.refused_merges.push(RefusedMerge {
                    profile_id: p.profile_id.clone(),
                    via: via.clone(),
                    refusal: Refusal::LimitExceeded {
                        kind: lead.kind(),
                        max: limit.max,
                        would_have,
                    },
                });
                unmerged.push((p.profile_id.as_str(), p));
                false
            });
        }
    }
    let mut reached_iter = reached.into_iter();
    if let Some((first, _)) = reached_iter.next() {
        decision.target = Some(first.profile_id.clone());
        merged.extend(first.identifiers.iter().cloned());
    }
    let has_kind = |held: &[HeldIdentifier], kind| held.iter().any(|h| h.identifier.kind() == kind);
    for (profile, via) in reached_iter {
        let target = decision.target.clone().unwrap_or_default();
        let refusal = if !authenticated
            && has_kind(&merged, IdentifierKind::UserId)
            && has_kind(&profile.identifiers, IdentifierKind::UserId)
        {
            let why = if has_user_id {
                "the event's source is not trusted"
            } else {
                "the event carries no user id"
            };
            Some(Refusal::UnauthenticatedMerge {
                detail: format!(
                    "profiles {target} and {} both have a user id and {why}",
                    profile.profile_id
                ),
            })
        } else {
            let mut combined = merged.clone();
            combined.extend(profile.identifiers.iter().cloned());
            exceeded_limit(&combined, guards, event.at)
        };
        match refusal {
            Some(refusal) => {
                decision.refused_merges.push(RefusedMerge {
                    profile_id: profile.profile_id.clone(),
                    via: via.clone(),
                    refusal,
                });
                unmerged.push((profile.profile_id.as_str(), profile));
            }
            None => {
                merged.extend(profile.identifiers.iter().cloned());
                decision.merges.push(Merge {
                    from_profile: profile.profile_id.clone(),
                    into_profile: target,
                    reason: format!("both profiles hold {via}"),
                    via: via.clone(),
                });
            }
        }
    }

    for id in usable {
        if merged.iter().any(|h| h.identifier == id) {
            continue;
        }
        if let Some((pid, _)) = unmerged.iter().find(|(_, p)| holds(p, &id)) {
            decision.refused.push(RefusedIdentifier {
                identifier: id,
                refusal: Refusal::HeldByUnmergedProfile {
                    profile_id: (*pid).to_owned(),
                },
            });
            continue;
        }
        let mut combined = merged.clone();
        combined.push(HeldIdentifier {
            identifier: id.clone(),
            attached_at: Some(event.at),
        });
        match exceeded_limit(&combined, guards, event.at) {
            Some(refusal) => decision.refused.push(RefusedIdentifier {
                identifier: id,
                refusal,
            }),
            None => {
                merged = combined;
                decision.attach.push(id);
            }
        }
    }
    decision
}

impl StitchPolicy for IdentityGuards {
    fn blocked(&self, id: &Identifier) -> Option<String> {
        self.blocked_reason(id)
    }

    fn decide(&self, event: &IncomingIdentity, profiles: &[ProfileIdentifiers]) -> StitchDecision {
        decide_stitch(event, profiles, self)
    }

    /// The profile-theft guard (a merge without an event is never authenticated), then the
    /// per-kind limits on what the merged profile would hold.
    fn refuse_profile_merge(
        &self,
        a: &ProfileIdentifiers,
        b: &ProfileIdentifiers,
        at: i64,
    ) -> Option<Refusal> {
        if let Some(r) = rapport_core::stitch::builtin_profile_merge_refusal(a, b) {
            return Some(r);
        }
        let mut combined = a.identifiers.clone();
        combined.extend(b.identifiers.iter().cloned());
        exceeded_limit(&combined, self, at)
    }
}

fn exceeded_limit(held: &[HeldIdentifier], guards: &IdentityGuards, at: i64) -> Option<Refusal> {
    IdentifierKind::ALL.into_iter().find_map(|kind| {
        let limit = guards.limit(kind)?;
        let n = counted(held, kind, limit, at);
        (n > limit.max).then_some(Refusal::LimitExceeded {
            kind,
            max: limit.max,
            would_have: n,
        })
    })
}

#[cfg(test)]
mod tests;
