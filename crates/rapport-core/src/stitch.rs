//! The contract between the store, which applies identity stitching inside its transaction,
//! and the identity stage, which decides what an event may do to the identity graph.
//!
//! The store knows the graph (who holds which identifier); a [`StitchPolicy`] knows the rules
//! (blocked values, per-kind limits, the profile-theft guard). The store asks the policy with
//! the profiles an event reaches and applies the [`StitchDecision`] it gets back, writing every
//! refusal to the merge log. The types live here so the store needs no stage crate.

use serde::Serialize;

use crate::identity::{Identifier, IdentifierKind};

/// An identifier held by a profile, with when it was attached (seconds since the epoch), if
/// known. Identifiers without a time always count toward limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldIdentifier {
    pub identifier: Identifier,
    pub attached_at: Option<i64>,
}

/// A profile an incoming identifier points to, with everything it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileIdentifiers {
    pub profile_id: String,
    pub identifiers: Vec<HeldIdentifier>,
}

/// The identity part of an incoming event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingIdentity {
    pub identifiers: Vec<Identifier>,
    /// Where the event came from (the sending library, `context.library.name`), matched to
    /// the policy's trusted sources.
    pub source: Option<String>,
    /// Event time in seconds since the epoch, for windowed limits.
    pub at: i64,
}

/// Why something was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// The value is a placeholder or matches a blocked pattern.
    Blocked { detail: String },
    /// Profile-theft guard: both profiles have a user id and the event is not authenticated.
    UnauthenticatedMerge { detail: String },
    /// Merging or attaching would give the profile too many identifiers of one kind.
    LimitExceeded {
        kind: IdentifierKind,
        max: usize,
        would_have: usize,
    },
    /// The identifier already belongs to a profile this event was not allowed to merge.
    HeldByUnmergedProfile { profile_id: String },
}

impl Refusal {
    /// The stable code of the rule that refused (`blocked`, `unauthenticated_merge`,
    /// `limit_exceeded`, `held_by_unmerged_profile`), as the merge log records it.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Blocked { .. } => "blocked",
            Refusal::UnauthenticatedMerge { .. } => "unauthenticated_merge",
            Refusal::LimitExceeded { .. } => "limit_exceeded",
            Refusal::HeldByUnmergedProfile { .. } => "held_by_unmerged_profile",
        }
    }

    /// One sentence for a person. It may quote the refused value: keep it out of the audit
    /// trail (use [`Refusal::code`] there).
    pub fn explain(&self) -> String {
        match self {
            Refusal::Blocked { detail } => format!("refused: {detail}"),
            Refusal::UnauthenticatedMerge { detail } => format!("refused: {detail}"),
            Refusal::LimitExceeded {
                kind,
                max,
                would_have,
            } => format!(
                "refused: a profile may hold at most {max} {} identifiers and would hold {would_have}",
                kind.as_str()
            ),
            Refusal::HeldByUnmergedProfile { profile_id } => format!(
                "refused: already held by profile {profile_id}, which this event may not merge"
            ),
        }
    }
}

/// A merge the event is allowed to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Merge {
    pub from_profile: String,
    pub into_profile: String,
    /// The incoming identifier that links the two.
    pub via: Identifier,
    pub reason: String,
}

/// A merge the event asked for implicitly and was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedMerge {
    pub profile_id: String,
    pub via: Identifier,
    pub refusal: Refusal,
}

/// An identifier the event carried that will not be attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedIdentifier {
    pub identifier: Identifier,
    pub refusal: Refusal,
}

/// What an event may do to the identity graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StitchDecision {
    /// The profile the event lands on; `None` means a new profile is created.
    pub target: Option<String>,
    /// Whether the event counted as authenticated (user id from a trusted source).
    pub authenticated: bool,
    pub merges: Vec<Merge>,
    pub refused_merges: Vec<RefusedMerge>,
    /// Identifiers to attach to the target (those it does not already hold).
    pub attach: Vec<Identifier>,
    pub refused: Vec<RefusedIdentifier>,
}

/// Rules for live stitching, implemented by the identity stage and applied by the store.
///
/// Implementations are pure and cheap: the store calls [`StitchPolicy::blocked`] for every
/// identifier of every event, and [`StitchPolicy::decide`] only when an event reaches more than
/// one profile or brings an identifier its profile does not hold yet.
pub trait StitchPolicy: Send + Sync + std::fmt::Debug {
    /// Why a value may never identify anyone, if it may not.
    fn blocked(&self, id: &Identifier) -> Option<String>;
    /// The decision for an event, given every profile holding one of its identifiers.
    fn decide(&self, event: &IncomingIdentity, profiles: &[ProfileIdentifiers]) -> StitchDecision;
    /// Why two whole profiles may not be merged without an event (a probabilistic match found
    /// them, or a person judged them the same), if they may not; `at` is now in seconds since
    /// the epoch. Such a merge is never authenticated. The default is the built-in rule.
    fn refuse_profile_merge(
        &self,
        a: &ProfileIdentifiers,
        b: &ProfileIdentifiers,
        _at: i64,
    ) -> Option<Refusal> {
        builtin_profile_merge_refusal(a, b)
    }
}

/// The rule every store applies even without a policy: two profiles that each carry a user id
/// are different customers until an authenticated event says otherwise, so a merge without an
/// event (which is never authenticated) is refused by the profile-theft guard.
pub fn builtin_profile_merge_refusal(
    a: &ProfileIdentifiers,
    b: &ProfileIdentifiers,
) -> Option<Refusal> {
    let has_user = |p: &ProfileIdentifiers| {
        p.identifiers
            .iter()
            .any(|h| h.identifier.kind() == IdentifierKind::UserId)
    };
    (has_user(a) && has_user(b)).then(|| Refusal::UnauthenticatedMerge {
        detail: format!(
            "profiles {} and {} both have a user id and no authenticated event joins them",
            a.profile_id, b.profile_id
        ),
    })
}
