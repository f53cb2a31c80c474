//! The demo company's decisions: retention offers, refunds, credits and closures asked for
//! through the same road real ones take (consent gate, oversight policy, approval queue), so
//! the Approvals, Alerts and customers' "why am I seeing this?" pages have something true to
//! show from the first minute.
//!
//! Offers go out by email to younger customers and by SMS to older ones, and fewer customers
//! consented to SMS than to email: the demo's scheduled fairness audit finds the resulting gap
//! in who actually received an offer, as a real audit would.

use std::time::Duration;

use anyhow::Result;
use rapport_core::{Actor, Identifier, IdentifierKind, Reason, WorkspaceId};
use rapport_govern::fairness::scheduled::ScheduledAudit;
use rapport_govern::fairness::Thresholds;
use rapport_server::actions::ActionInput;
use rapport_server::engine::Engine;
use serde_json::{json, Map, Value};

use crate::demo_data::{age_band, email_hash};

/// The demo's scheduled fairness audit.
pub fn demo_audit() -> ScheduledAudit {
    ScheduledAudit {
        name: "retention-offers-by-age".into(),
        decision_kinds: vec!["offer.*".into()],
        groups: vec!["age_band".into()],
        every: Duration::from_secs(3600),
        window: Duration::from_secs(30 * 86_400),
        min_rows: 30,
        thresholds: Thresholds {
            max_demographic_parity_difference: Some(0.2),
            ..Default::default()
        },
    }
}

fn reason(code: &str, text: String) -> Reason {
    Reason {
        code: code.into(),
        text,
    }
}

fn params(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// What was asked for, by outcome.
#[derive(Debug, Default)]
pub struct Seeded {
    pub executed: usize,
    pub pending: usize,
    pub refused: usize,
}

/// Asks for the demo's actions for about one customer in ten.
pub async fn seed(engine: &Engine, ws: &WorkspaceId, customers: usize) -> Result<Seeded> {
    let mut out = Seeded::default();
    let model = Actor::Model("retention-rules 1".into());
    for i in 1..=customers {
        // Every 9th customer is considered for a retention offer; a few get other actions.
        let offer = i.is_multiple_of(9);
        let refund = i.is_multiple_of(97);
        let closure = i.is_multiple_of(401);
        if !(offer || refund || closure) {
            continue;
        }
        let uid = Identifier::new(IdentifierKind::UserId, &format!("u_{i:06}"))?;
        let Some(profile) = engine.store().profile_by_identifier(ws, &uid).await? else {
            continue;
        };
        let h = profile
            .traits
            .get("email")
            .and_then(Value::as_str)
            .map(email_hash)
            .unwrap_or(0);
        let band = age_band(h);
        let tenure = 3 + (h % 40);
        let contacts = 1 + (h % 4);
        let renews = 5 + (h % 25);
        let mut asks: Vec<ActionInput> = Vec::new();
        if offer {
            let older = matches!(band, "50-64" | "65+");
            let percent = if i.is_multiple_of(8) {
                30
            } else {
                10 + 5 * (h % 2)
            };
            asks.push(ActionInput {
                profile: profile.id.clone(),
                kind: "offer.retention".into(),
                params: params(json!({
                    "percent": percent,
                    "channel": if older { "sms" } else { "email" },
                    "title": format!("{percent}% off your next 12 months"),
                })),
                reasons: vec![
                    reason(
                        "contract_renewal",
                        format!("your contract renews in {renews} days"),
                    ),
                    reason(
                        "support_contacts",
                        format!("you contacted support {contacts} times this month"),
                    ),
                ],
                conversation: None,
                automated: true,
            });
        }
        if refund {
            let amount = if i.is_multiple_of(2) {
                35
            } else {
                140 + (h % 90)
            };
            asks.push(ActionInput {
                profile: profile.id.clone(),
                kind: "refund".into(),
                params: params(json!({"amount": amount, "currency": "EUR"})),
                reasons: vec![reason(
                    "service_outage",
                    format!("your service was down for {} hours last week", 4 + h % 20),
                )],
                conversation: None,
                automated: false,
            });
        }
        if closure {
            asks.push(ActionInput {
                profile: profile.id.clone(),
                kind: "account.close".into(),
                params: Map::new(),
                reasons: vec![reason(
                    "customer_request",
                    format!("you asked us to close your account after {tenure} months"),
                )],
                conversation: None,
                automated: false,
            });
        }
        for ask in asks {
            let actor = if ask.automated {
                model.clone()
            } else {
                Actor::System
            };
            let d = engine
                .request_action(ws, ask, actor)
                .await
                .map_err(|e| anyhow::anyhow!("demo decision: {e}"))?;
            match d.status {
                rapport_core::DecisionStatus::Executed => out.executed += 1,
                rapport_core::DecisionStatus::PendingApproval => out.pending += 1,
                _ => out.refused += 1,
            }
        }
    }
    Ok(out)
}
