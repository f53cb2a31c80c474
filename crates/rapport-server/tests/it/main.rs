//! The server's integration tests: the real router on 127.0.0.1:0 over a temporary store.

mod accounts;
mod actions;
mod alerts;
mod api;
mod browser;
mod churn;
mod common;
mod conversations;
mod dashboard;
mod dedupe;
mod governance;
mod identity;
mod intents;
mod interpretation;
mod lifetime_escalation;
mod matching;
mod nba;
mod openapi;
mod predictive;
mod roles;
mod routing;
mod scaleout;
mod segment_sdk;
