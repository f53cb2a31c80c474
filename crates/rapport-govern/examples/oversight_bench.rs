//! Times what governance adds to one decision: the consent gate (building the ledger from a
//! customer's consent history, then checking one action) and the oversight policy's check of
//! the action (the example policy's four rules over a customer with a dozen traits), alone
//! and together. Run in release:
//!
//! ```text
//! cargo run --release -p rapport-govern --example oversight_bench -- [ROUNDS]
//! ```
//!
//! The store read of the consent history is not in these figures: `rapport bench audit`
//! measures it on the embedded store beside a plain profile read.

use std::time::Instant;

use chrono::{Duration, Utc};
use rapport_core::{ConsentRecord, ConsentState, ProfileId, Purpose};
use rapport_govern::consent::{Action, ConsentLedger, Gate, PurposeRegistry};
use rapport_govern::policy::{Policy, Subject};
use serde_json::{json, Map, Value};

struct Offer;

impl Action for Offer {
    fn kind(&self) -> &str {
        "offer.discount"
    }
    fn purposes(&self) -> Vec<Purpose> {
        ["personalization", "marketing_email"]
            .iter()
            .filter_map(|p| Purpose::parse(p))
            .collect()
    }
}

fn object(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn per_call_us(rounds: usize, mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..rounds {
        f();
    }
    started.elapsed().as_secs_f64() * 1e6 / rounds as f64
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let profile = ProfileId::from_trusted("prof_bench".into());
    let registry = PurposeRegistry::standard();
    // Three decisions per purpose, as a customer who changed their mind twice has.
    let history: Vec<ConsentRecord> = registry
        .iter()
        .flat_map(|(p, _)| {
            let profile = profile.clone();
            [
                ConsentState::Granted,
                ConsentState::Withdrawn,
                ConsentState::Granted,
            ]
            .into_iter()
            .enumerate()
            .map(move |(i, state)| ConsentRecord {
                profile_id: profile.clone(),
                purpose: p.clone(),
                state,
                source: "api".into(),
                at: Utc::now() - Duration::minutes(10 - i as i64),
                recorded_at: Utc::now(),
            })
        })
        .collect();
    let gate = Gate::new(registry);
    let policy = Policy::example();
    let params = object(json!({"percent": 15, "channel": "email", "currency": "EUR"}));
    let traits = object(json!({
        "name": "Bench Customer", "email": "bench@example.com", "plan": "fiber-500",
        "tier": "gold", "vulnerable": false, "age_band": "35-44", "country": "DE",
        "tenure_months": 31, "lifetime_value": 1840.5, "contract_end": "2027-03-01",
        "city": "Berlin", "segment": "family"
    }));
    let subject = || Subject {
        kind: "offer.discount",
        params: &params,
        traits: &traits,
    };
    assert!(gate
        .check(&profile, &ConsentLedger::from_history(&history), Offer)
        .is_ok());
    assert!(!policy.assess(&subject()).is_high_stakes());

    let mut best = [f64::MAX; 4];
    for _ in 0..5 {
        let noop = per_call_us(rounds, || {
            std::hint::black_box(subject());
        });
        let gate_us = per_call_us(rounds, || {
            let ledger = ConsentLedger::from_history(std::hint::black_box(&history));
            std::hint::black_box(gate.check(&profile, &ledger, Offer).is_ok());
        });
        let policy_us = per_call_us(rounds, || {
            std::hint::black_box(policy.assess(&subject()).is_high_stakes());
        });
        let both_us = per_call_us(rounds, || {
            let ledger = ConsentLedger::from_history(std::hint::black_box(&history));
            std::hint::black_box(gate.check(&profile, &ledger, Offer).is_ok());
            std::hint::black_box(policy.assess(&subject()).is_high_stakes());
        });
        for (b, x) in best.iter_mut().zip([noop, gate_us, policy_us, both_us]) {
            *b = b.min(x);
        }
    }
    println!("rounds per measure: {rounds} (best of 5)");
    println!("empty loop (reference):     {:>8.3} µs", best[0]);
    println!("consent gate (15 records):  {:>8.3} µs", best[1]);
    println!(
        "oversight policy ({} rules): {:>8.3} µs",
        policy.rules().len(),
        best[2]
    );
    println!("both, per decision:         {:>8.3} µs", best[3]);
}
