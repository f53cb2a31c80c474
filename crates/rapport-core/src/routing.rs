//! Routing records: queues with the skills they need, agents with skills, capacity, presence
//! and seniority, and queue entries (a conversation waiting for, offered to, or handled by an
//! agent) with the priority that ordered them and its parts. The decision logic that builds
//! them lives in `rapport-decide`; these are the values it works on and the store keeps.
//!
//! An entry names its customer by conversation id only; its priority holds numbers and codes,
//! never text the customer wrote.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A skill or queue name: 1 to 40 characters of `a-z`, `0-9`, `_` and `-`, folded to lower
/// case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let folded = raw.trim().to_lowercase();
        let ok = (1..=40).contains(&folded.len())
            && folded
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
        if ok {
            Ok(Self(folded))
        } else {
            Err(format!(
                "{raw:?} must be 1-40 characters of a-z, 0-9, '_' or '-'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Slug::parse(&s)
    }
}

impl From<Slug> for String {
    fn from(s: Slug) -> String {
        s.0
    }
}

impl std::fmt::Display for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A queue conversations wait in. Agents take from it only if they have all its `skills`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteQueue {
    /// Its name, unique in a workspace.
    pub id: Slug,
    /// Skills an agent needs to take from it.
    pub skills: BTreeSet<Slug>,
    /// Intents (from the interpretation stage) routed here; the queue with none takes the rest.
    pub intents: BTreeSet<String>,
    /// The queue of customers who asked for a person: they go here at once.
    pub human: bool,
    pub created_at: DateTime<Utc>,
}

/// Whether an agent takes new conversations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Available,
    Away,
    Offline,
}

impl Presence {
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Available => "available",
            Presence::Away => "away",
            Presence::Offline => "offline",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Presence::Available, Presence::Away, Presence::Offline]
            .into_iter()
            .find(|p| p.as_str() == raw)
    }
}

/// The most conversations one agent may hold at once.
pub const MAX_CAPACITY: u32 = 50;
/// The highest seniority level.
pub const MAX_SENIORITY: u8 = 5;

/// A person who handles conversations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteAgent {
    /// Its id, unique in a workspace (e.g. the agent's login).
    pub id: Slug,
    pub name: String,
    pub skills: BTreeSet<Slug>,
    /// How many conversations (offered or accepted) it may hold at once, 1 to [`MAX_CAPACITY`].
    pub capacity: u32,
    pub presence: Presence,
    /// 0 (new) to [`MAX_SENIORITY`]; high-priority and high-value cases prefer the most senior.
    pub seniority: u8,
    pub updated_at: DateTime<Utc>,
}

impl RouteAgent {
    /// Checks the limits a stored agent must respect.
    pub fn check(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !(1..=MAX_CAPACITY).contains(&self.capacity) {
            problems.push(format!("capacity must be 1 to {MAX_CAPACITY}"));
        }
        if self.seniority > MAX_SENIORITY {
            problems.push(format!("seniority must be 0 to {MAX_SENIORITY}"));
        }
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            problems.push("name must be 1 to 100 characters".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Service-level tier of a waiting conversation; each has its own time to first response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Low,
    Normal,
    High,
    Urgent,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Low, Tier::Normal, Tier::High, Tier::Urgent];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Low => "low",
            Tier::Normal => "normal",
            Tier::High => "high",
            Tier::Urgent => "urgent",
        }
    }
}

/// One part of a priority: which signal, what it was, and how much it added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorityPart {
    /// `urgency`, `sentiment`, `trajectory`, `churn_risk`, `customer_value` or `sla`.
    pub signal: String,
    /// The signal on a 0..=1 scale (`None` when it was not known and added nothing).
    pub level: Option<f64>,
    /// Its weight from the configuration.
    pub weight: f64,
    /// `level x weight`.
    pub contribution: f64,
    /// The input in words, e.g. `urgency high (outage)`.
    pub detail: String,
}

/// The priority of a waiting conversation with everything that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Priority {
    /// The sum of the parts' contributions.
    pub score: f64,
    pub tier: Tier,
    /// The customer asked for a person: ordered ahead of everyone who did not.
    pub asked_for_human: bool,
    pub parts: Vec<PriorityPart>,
    pub computed_at: DateTime<Utc>,
}

/// Where a queue entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    /// Waiting for an agent.
    Waiting,
    /// Offered to an agent who has not accepted yet; counts towards its load.
    Offered,
    /// An agent is handling it.
    Accepted,
    /// Done; no longer counts anywhere.
    Finished,
}

impl EntryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Waiting => "waiting",
            EntryStatus::Offered => "offered",
            EntryStatus::Accepted => "accepted",
            EntryStatus::Finished => "finished",
        }
    }

    /// Whether the entry holds an agent's capacity.
    pub fn holds_agent(self) -> bool {
        matches!(self, EntryStatus::Offered | EntryStatus::Accepted)
    }

    pub fn is_open(self) -> bool {
        self != EntryStatus::Finished
    }
}

/// Something that happened to an entry, kept in order: why it is where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryStep {
    pub at: DateTime<Utc>,
    /// `queued`, `reprioritized`, `offered`, `offer_timed_out`, `accepted`, `finished`,
    /// `sla_breached`.
    pub what: String,
    pub agent_id: Option<Slug>,
    /// Why, in words (the assignment's reasons, the timeout...).
    pub why: String,
}

/// A conversation in a queue, from queued to finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteEntry {
    pub id: String,
    pub conversation_id: String,
    pub profile_id: String,
    pub queue_id: Slug,
    pub status: EntryStatus,
    pub agent_id: Option<Slug>,
    pub priority: Priority,
    pub enqueued_at: DateTime<Utc>,
    /// When the tier's time to first response runs out.
    pub sla_deadline: DateTime<Utc>,
    /// Set when it passed its deadline before an agent accepted it.
    pub sla_breached_at: Option<DateTime<Utc>>,
    pub offered_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Agents whose offer timed out; it is not offered to them again.
    pub declined_by: BTreeSet<Slug>,
    pub history: Vec<EntryStep>,
    /// Compare-and-set counter kept by the store (1 once stored).
    pub version: i64,
}

impl RouteEntry {
    pub fn new(
        conversation_id: &str,
        profile_id: &str,
        queue_id: Slug,
        priority: Priority,
        sla_deadline: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        let why = format!(
            "priority {:.3} ({})",
            priority.score,
            priority.tier.as_str()
        );
        RouteEntry {
            id: format!("rte_{}", uuid::Uuid::now_v7().simple()),
            conversation_id: conversation_id.to_owned(),
            profile_id: profile_id.to_owned(),
            queue_id,
            status: EntryStatus::Waiting,
            agent_id: None,
            priority,
            enqueued_at: now,
            sla_deadline,
            sla_breached_at: None,
            offered_at: None,
            accepted_at: None,
            finished_at: None,
            declined_by: BTreeSet::new(),
            history: vec![EntryStep {
                at: now,
                what: "queued".into(),
                agent_id: None,
                why,
            }],
            version: 0,
        }
    }

    pub fn step(&mut self, at: DateTime<Utc>, what: &str, agent: Option<Slug>, why: String) {
        self.history.push(EntryStep {
            at,
            what: what.to_owned(),
            agent_id: agent,
            why,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_fold_case_and_refuse_other_characters() {
        assert_eq!(Slug::parse(" Billing ").unwrap().as_str(), "billing");
        assert!(Slug::parse("").is_err());
        assert!(Slug::parse("two words").is_err());
        assert!(Slug::parse(&"a".repeat(41)).is_err());
        let s: Slug = serde_json::from_str("\"vip-care\"").unwrap();
        assert_eq!(s.as_str(), "vip-care");
        assert!(serde_json::from_str::<Slug>("\"no way\"").is_err());
    }

    #[test]
    fn agent_limits_are_checked_together() {
        let mut a = RouteAgent {
            id: Slug::parse("ana").unwrap(),
            name: "Ana".into(),
            skills: BTreeSet::new(),
            capacity: 0,
            presence: Presence::Available,
            seniority: 9,
            updated_at: Utc::now(),
        };
        let err = a.check().unwrap_err();
        assert!(
            err.contains("capacity") && err.contains("seniority"),
            "{err}"
        );
        a.capacity = 3;
        a.seniority = 2;
        assert!(a.check().is_ok());
    }
}
