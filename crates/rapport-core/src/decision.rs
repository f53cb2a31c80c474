//! Decisions: what Rapport (or a person using it) decided to do for or about one customer,
//! why, and where it stands. A decision is the unit the customer can ask about ("why am I
//! seeing this?"), the approval queue holds, and the export and erasure cover.
//!
//! The record holds the customer's own data (amounts, message text, the explanation), so it
//! lives beside the profile and is erased with it. Audit entries about a decision name it by
//! id and carry only codes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Actor, ProfileId};

/// Where a decision stands. The allowed moves are in [`DecisionStatus::may_become`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionStatus {
    /// Waiting in the approval queue for one or more approvers.
    PendingApproval,
    /// Carried out: handed to the channel or system that performs it.
    Executed,
    /// Not carried out: the consent gate, a contact rule or a paused conversation stopped it.
    Refused,
    /// An approver said no.
    Rejected,
    /// Nobody decided before the approval deadline.
    Expired,
}

impl DecisionStatus {
    pub const ALL: [DecisionStatus; 5] = [
        DecisionStatus::PendingApproval,
        DecisionStatus::Executed,
        DecisionStatus::Refused,
        DecisionStatus::Rejected,
        DecisionStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DecisionStatus::PendingApproval => "pending_approval",
            DecisionStatus::Executed => "executed",
            DecisionStatus::Refused => "refused",
            DecisionStatus::Rejected => "rejected",
            DecisionStatus::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Only a pending decision moves; every other state is final.
    pub fn may_become(self, next: DecisionStatus) -> bool {
        self == DecisionStatus::PendingApproval && next != DecisionStatus::PendingApproval
    }

    pub fn is_final(self) -> bool {
        self != DecisionStatus::PendingApproval
    }
}

/// One fact that drove a decision, in words a customer understands ("your contract renews in
/// 14 days"), with a stable code for reports and fairness audits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub code: String,
    pub text: String,
}

/// One approver's answer on a pending decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalStep {
    /// The approver, encoded like audit actors (`user:ID`, `key:ID`).
    pub approver: String,
    pub approved: bool,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// What a high-stakes action is waiting for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalDemand {
    /// The policy rules that made the action high-stakes, by name.
    pub rules: Vec<String>,
    /// How many different approvers must say yes (1 or 2).
    pub approvers_needed: u8,
    pub expires_at: DateTime<Utc>,
    pub steps: Vec<ApprovalStep>,
}

/// A decision about one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub id: String,
    pub profile_id: ProfileId,
    /// The action decided on: `offer.retention`, `refund`, `message.service`, ...
    pub kind: String,
    /// The action's parameters (amount, currency, percent, channel, text ...).
    pub params: Value,
    pub status: DecisionStatus,
    /// One plain-language sentence for the customer.
    pub explanation: String,
    pub reasons: Vec<Reason>,
    /// Whether software, not a person, made the decision (automated messages carry the AI
    /// disclosure).
    pub automated: bool,
    /// Who asked for it, encoded like audit actors.
    pub requested_by: String,
    /// The conversation it belongs to, if any.
    pub conversation_id: Option<String>,
    /// Why it was refused, when it was.
    pub refusal: Option<String>,
    pub approval: Option<ApprovalDemand>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped on every change, so two approvers acting at once cannot both win.
    pub version: i64,
}

impl DecisionRecord {
    pub fn requester(&self) -> Option<Actor> {
        Actor::decode(&self.requested_by)
    }
}

/// A customer's request to talk to a person: while it is open, automation on their
/// conversations is paused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    pub profile_id: ProfileId,
    pub conversation_id: Option<String>,
    /// Where the request came from: `why_page`, `message`, `agent`.
    pub source: String,
    pub requested_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pending_decisions_move() {
        use DecisionStatus::*;
        assert!(PendingApproval.may_become(Executed));
        assert!(PendingApproval.may_become(Expired));
        assert!(!PendingApproval.may_become(PendingApproval));
        for s in [Executed, Refused, Rejected, Expired] {
            assert!(s.is_final());
            for t in DecisionStatus::ALL {
                assert!(!s.may_become(t), "{s:?} -> {t:?}");
            }
        }
        for s in DecisionStatus::ALL {
            assert_eq!(DecisionStatus::parse(s.as_str()), Some(s));
        }
    }
}
