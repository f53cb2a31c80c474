//! The demo company's next-best-action: the example catalog (`docs/examples/`), and offers
//! made through the same road real ones take (features, consent gate, arbitration), with
//! outcomes for some of them, so customers' decision lists and `/why` pages show ranked,
//! explained actions and the propensities have something learned from the first minute.

use anyhow::{anyhow, Result};
use rapport_core::{Actor, Identifier, IdentifierKind, WorkspaceId};
use rapport_decide::nba::catalog::Catalog;
use rapport_decide::nba::propensity::Outcome;
use rapport_server::engine::Engine;
use rapport_server::nba::NbaInput;
use serde_json::json;

/// The example catalog the demo runs with (unless one is configured).
pub const CATALOG: &str = include_str!("../../../docs/examples/next-best-action.toml");

pub fn catalog() -> Result<Catalog> {
    Catalog::parse(CATALOG).map_err(|e| anyhow!("the demo catalog has errors: {e:?}"))
}

/// Asks for the next best actions of every 20th customer and records an outcome for most
/// offers. Returns how many actions were offered.
pub async fn seed(engine: &Engine, ws: &WorkspaceId, customers: usize) -> Result<usize> {
    if engine.nba_catalog().is_none() {
        return Ok(0);
    }
    let actor = Actor::Model("next-best-action 1".into());
    let mut offered = 0;
    let mut example = None;
    for i in (20..=customers).step_by(20) {
        let uid = Identifier::new(IdentifierKind::UserId, &format!("u_{i:06}"))?;
        let Some(profile) = engine.store().profile_by_identifier(ws, &uid).await? else {
            continue;
        };
        let context = if i % 60 == 0 {
            json!({"reason": "cancel"})
        } else {
            json!({"page": "account"})
        };
        let answer = engine
            .next_best_action(
                ws,
                NbaInput {
                    profile: profile.id.clone(),
                    channel: "web".into(),
                    context,
                    limit: 2,
                    show: 10,
                },
                actor.clone(),
            )
            .await
            .map_err(|e| anyhow!("demo next-best-action: {e}"))?;
        for (n, d) in answer.decisions.values().enumerate() {
            offered += 1;
            example.get_or_insert_with(|| (profile.id.clone(), d.explanation.clone()));
            let outcome = match (i / 20 + n) % 4 {
                0 => Outcome::Accepted,
                1 => Outcome::Rejected,
                2 => Outcome::Ignored,
                _ => continue,
            };
            engine
                .record_nba_outcome(ws, &d.id, outcome, None, actor.clone())
                .await
                .map_err(|e| anyhow!("demo outcome: {e}"))?;
        }
    }
    if let Some((id, explanation)) = example {
        eprintln!(
            "Next-best-action offered {offered} actions; e.g. to {id}: \"{explanation}\" (POST /v1/decisions/next-best-action ranks them for anyone)."
        );
    }
    Ok(offered)
}
