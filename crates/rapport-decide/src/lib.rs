//! `rapport-decide`: the decision stage. It owns what should happen next for a customer:
//!
//! - [`routing`]: queues with skills, agents with capacity and presence, and the priority
//!   that orders waiting conversations (urgency, sentiment trajectory, churn risk, value, SLA);
//! - [`nba`]: the next-best-action catalog, its rules, learned propensities and arbitration.
//!
//! It does not own storage, HTTP or the consent gate: it decides from values it is given, and
//! the server wires it to the store and passes every outbound action through governance.

pub mod nba;
pub mod routing;
