//! Routing of conversations to agents: pure decisions over the queues, agents and entries it
//! is given, with no I/O.
//!
//! - [`priority`]: what a waiting conversation's priority is, as a weighted sum of urgency,
//!   sentiment level and trajectory, churn risk, customer value and the time left before its
//!   tier's SLA deadline, each part kept so an assignment can say why;
//! - [`assign`]: which queue a conversation goes to (a customer who asks for a person goes to
//!   the human queue at once), and one routing pass: offers that timed out go back to the
//!   queue, deadlines passed are marked, and waiting conversations, highest priority first,
//!   are offered to eligible available agents with free capacity (never above it), senior
//!   agents first for high-priority or high-value cases;
//! - [`RoutingPolicy`]: the weights, SLA per tier and accept timeout, from configuration.
//!
//! The server reads the store, calls [`assign::route`], and writes back what changed.

pub mod assign;
pub mod priority;

use std::time::Duration;

use rapport_core::routing::Tier;
use serde::{Deserialize, Serialize};

pub use assign::{accept, choose_queue, finish, route, RouteError, Routed};
pub use priority::{priority, refresh_sla, Signals, Urgency};

/// How much each signal weighs in a priority. Each signal is first put on a 0..=1 scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    pub urgency: f64,
    pub sentiment: f64,
    pub trajectory: f64,
    pub churn_risk: f64,
    pub customer_value: f64,
    pub sla: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            urgency: 3.0,
            sentiment: 2.0,
            trajectory: 1.5,
            churn_risk: 1.5,
            customer_value: 2.0,
            sla: 2.5,
        }
    }
}

impl Weights {
    pub fn check(&self) -> Vec<String> {
        let all = [
            ("urgency", self.urgency),
            ("sentiment", self.sentiment),
            ("trajectory", self.trajectory),
            ("churn_risk", self.churn_risk),
            ("customer_value", self.customer_value),
            ("sla", self.sla),
        ];
        let mut problems: Vec<String> = all
            .iter()
            .filter(|(_, w)| !(w.is_finite() && (0.0..=100.0).contains(w)))
            .map(|(n, _)| format!("weight {n} must be a number from 0 to 100"))
            .collect();
        if problems.is_empty() && all.iter().all(|(_, w)| *w == 0.0) {
            problems.push("at least one weight must be above 0".into());
        }
        problems
    }
}

/// Time to first response per tier.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaTargets {
    pub low: Duration,
    pub normal: Duration,
    pub high: Duration,
    pub urgent: Duration,
}

impl Default for SlaTargets {
    fn default() -> Self {
        SlaTargets {
            low: Duration::from_secs(4 * 3600),
            normal: Duration::from_secs(3600),
            high: Duration::from_secs(15 * 60),
            urgent: Duration::from_secs(5 * 60),
        }
    }
}

impl SlaTargets {
    pub fn of(&self, tier: Tier) -> Duration {
        match tier {
            Tier::Low => self.low,
            Tier::Normal => self.normal,
            Tier::High => self.high,
            Tier::Urgent => self.urgent,
        }
    }
}

/// Everything a routing decision is configured by.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingPolicy {
    pub weights: Weights,
    pub sla: SlaTargets,
    /// How long an agent has to accept an offer before it goes back to the queue.
    pub accept_timeout: Duration,
    /// The customer value (same unit as purchases' revenue) that counts as half of the value
    /// scale: value `v` is put on 0..1 as `v / (v + value_midpoint)`.
    pub value_midpoint: f64,
    /// A priority score at or above which the most senior eligible agent is preferred.
    pub senior_score: f64,
    /// A customer-value level (0..1) at or above which the most senior agent is preferred.
    pub senior_value: f64,
}

impl Default for RoutingPolicy {
    fn default() -> Self {
        RoutingPolicy {
            weights: Weights::default(),
            sla: SlaTargets::default(),
            accept_timeout: Duration::from_secs(120),
            value_midpoint: 500.0,
            senior_score: 5.0,
            senior_value: 0.75,
        }
    }
}

impl RoutingPolicy {
    /// Every problem at once; empty when the policy is usable.
    pub fn check(&self) -> Vec<String> {
        let mut problems = self.weights.check();
        let tiers = [
            ("low", self.sla.low),
            ("normal", self.sla.normal),
            ("high", self.sla.high),
            ("urgent", self.sla.urgent),
        ];
        for (name, d) in tiers {
            if d.is_zero() {
                problems.push(format!("sla {name} must be longer than 0"));
            }
        }
        if !(self.sla.urgent <= self.sla.high
            && self.sla.high <= self.sla.normal
            && self.sla.normal <= self.sla.low)
        {
            problems.push(
                "sla targets must not grow with the tier (urgent <= high <= normal <= low)".into(),
            );
        }
        if self.accept_timeout.is_zero() {
            problems.push("accept_timeout must be longer than 0".into());
        }
        if !(self.value_midpoint.is_finite() && self.value_midpoint > 0.0) {
            problems.push("value_midpoint must be a number above 0".into());
        }
        if !(self.senior_score.is_finite() && self.senior_score >= 0.0) {
            problems.push("senior_score must be a number from 0".into());
        }
        if !(0.0..=1.0).contains(&self.senior_value) {
            problems.push("senior_value must be from 0 to 1".into());
        }
        problems
    }
}

#[cfg(test)]
mod tests;
