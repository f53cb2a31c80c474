//! Governance: the rules personal data and automated actions must pass, kept in one place.
//!
//! - [`consent`]: which purposes exist, where a customer stands on each, and the one gate every
//!   outbound action passes. Only the gate can make a [`consent::Permitted`] value, and
//!   dispatchers take nothing else, so an unchecked action cannot be sent.
//! - [`audit`]: verification of the hash-chained audit log the store writes.
//! - [`links`]: signed, expiring links to a customer's own page.
//! - [`policy`]: the oversight policy naming high-stakes actions, and the approval steps they
//!   wait for.
//! - [`fairness`]: fairness audits of decisions and model predictions across groups and their
//!   intersections, with the same numbers as Fairlearn.
//!
//! This crate decides and checks; it does no I/O. The store persists consents and audit
//! records; the server wires the gate in front of every channel.

pub mod audit;
pub mod consent;
pub mod fairness;
pub mod links;
pub mod policy;
