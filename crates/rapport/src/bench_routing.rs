//! `rapport bench routing`: one simulated day of a contact center, routed twice over the same
//! seeded arrivals, handling times and agents: once by priority (the routing policy in force:
//! urgency, sentiment, churn risk, customer value and SLA deadline, seniors for the hard cases)
//! and once first-in-first-out (the named reference: every weight zero, so conversations are
//! offered in arrival order to the least-loaded agent, and nobody is preferred).
//!
//! Both runs call the real routing pass (`rapport_decide::routing::route`) every
//! `--step-secs` of simulated time; nothing of the policy is re-implemented here. Agents
//! sometimes miss an offer (`--miss-rate`, the same offers in both runs), which exercises the
//! accept timeout. Time to first response is from arrival to an agent accepting; a breach is a
//! first response later than the customer's tier allows.

use std::collections::{BTreeSet, HashMap};

use anyhow::Result;
use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rapport_core::routing::{Presence, RouteAgent, RouteEntry, RouteQueue, Slug};
use rapport_decide::routing::{self as routing, RoutingPolicy, Signals, Urgency, Weights};

#[derive(Debug, clap::Args)]
pub struct RoutingBenchArgs {
    /// Seed of arrivals, customers, handling times and missed offers.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Agents on shift (one in four is senior).
    #[arg(long, default_value_t = 10)]
    pub agents: usize,
    /// Conversations one agent handles at once.
    #[arg(long, default_value_t = 2)]
    pub capacity: u32,
    /// Mean arrivals per hour at the midday peak (the day runs 08:00-20:00).
    #[arg(long, default_value_t = 115.0)]
    pub peak_per_hour: f64,
    /// Mean handling time in minutes.
    #[arg(long, default_value_t = 11.0)]
    pub handle_minutes: f64,
    /// Simulated seconds between routing passes.
    #[arg(long, default_value_t = 15)]
    pub step_secs: i64,
    /// Share of offers an agent misses (they go back to the queue after the accept timeout).
    #[arg(long, default_value_t = 0.03)]
    pub miss_rate: f64,
}

/// One simulated customer contact, the same in both runs.
#[derive(Debug, Clone)]
struct Arrival {
    at: DateTime<Utc>,
    signals: Signals,
    handle: Duration,
    high_value: bool,
}

fn day_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
        .single()
        .expect("date")
}

/// Arrivals over 12 hours: a Poisson process whose rate rises to `peak` at 13:00 (thinning).
fn arrivals(args: &RoutingBenchArgs) -> Vec<Arrival> {
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let hours = 12.0;
    let rate = |h: f64| args.peak_per_hour * (0.35 + 0.65 * (-((h - 5.0) / 3.0).powi(2)).exp());
    let mut out = Vec::new();
    let mut h = 0.0f64;
    loop {
        let u: f64 = rng.gen_range(f64::EPSILON..1.0);
        h += -u.ln() / args.peak_per_hour;
        if h >= hours {
            break;
        }
        if rng.gen::<f64>() > rate(h) / args.peak_per_hour {
            continue;
        }
        let urgency = match rng.gen::<f64>() {
            x if x < 0.15 => Urgency::Low,
            x if x < 0.75 => Urgency::Normal,
            x if x < 0.95 => Urgency::High,
            _ => Urgency::Critical,
        };
        // Urgent contacts are angrier on average.
        let mood_shift = match urgency {
            Urgency::Low => 1.0,
            Urgency::Normal => 0.0,
            Urgency::High => -0.8,
            Urgency::Critical => -1.3,
        };
        let level = (2.0 + mood_shift + rng.gen_range(-1.5..1.5f64))
            .round()
            .clamp(0.0, 4.0) as u8;
        let messages = rng.gen_range(1..4u8);
        let trend = (messages > 1).then(|| rng.gen_range(-0.6..0.3f64) + mood_shift * 0.1);
        // Customer value: log-normal spend; the top tenth is "high value".
        let value = (rng.gen_range(3.0..8.5f64)).exp();
        let handle_mean = args.handle_minutes * if urgency >= Urgency::High { 1.3 } else { 1.0 };
        let handle = -rng.gen_range(f64::EPSILON..1.0f64).ln() * handle_mean;
        out.push(Arrival {
            at: day_start() + Duration::milliseconds((h * 3_600_000.0) as i64),
            signals: Signals {
                urgency,
                urgency_reasons: Vec::new(),
                sentiment_level: Some(level),
                sentiment_trend: trend,
                levels_dropped: 0,
                churn_risk: Some(rng.gen_range(0.0..0.6f64)),
                customer_value: Some(value),
                asked_for_human: false,
            },
            handle: Duration::seconds((handle * 60.0).max(60.0) as i64),
            high_value: false,
        });
    }
    let mut values: Vec<f64> = out
        .iter()
        .filter_map(|a| a.signals.customer_value)
        .collect();
    values.sort_by(f64::total_cmp);
    let cut = values
        .get(values.len() * 9 / 10)
        .copied()
        .unwrap_or(f64::MAX);
    for a in &mut out {
        a.high_value = a.signals.customer_value.is_some_and(|v| v >= cut);
    }
    out
}

/// Whether the agent misses offer number `attempt` of conversation `i`: a hash, so both runs
/// see the same misses for the same offers.
fn misses(seed: u64, i: usize, attempt: usize, rate: f64) -> bool {
    let mut x = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (attempt as u64) << 48;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x % 10_000) as f64 / 10_000.0 < rate
}

#[derive(Debug, Default)]
struct Outcome {
    /// Per arrival: seconds to first response (None: never answered that day).
    first_response: Vec<Option<i64>>,
    breached: Vec<bool>,
    senior_share_urgent: f64,
}

fn simulate(args: &RoutingBenchArgs, arrivals: &[Arrival], policy: &RoutingPolicy) -> Outcome {
    let queue = RouteQueue {
        id: Slug::parse("support").expect("slug"),
        skills: BTreeSet::new(),
        intents: BTreeSet::new(),
        human: false,
        created_at: day_start(),
    };
    let agents: Vec<RouteAgent> = (0..args.agents)
        .map(|i| RouteAgent {
            id: Slug::parse(&format!("agent-{i}")).expect("slug"),
            name: format!("Agent {i}"),
            skills: BTreeSet::new(),
            capacity: args.capacity,
            presence: Presence::Available,
            seniority: if i % 4 == 0 { 4 } else { 1 },
            updated_at: day_start(),
        })
        .collect();
    let seniors: BTreeSet<&Slug> = agents
        .iter()
        .filter(|a| a.seniority >= 4)
        .map(|a| &a.id)
        .collect();
    let mut open: Vec<RouteEntry> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut finish_at: Vec<(DateTime<Utc>, String)> = Vec::new();
    let mut attempts = vec![0usize; arrivals.len()];
    let mut out = Outcome {
        first_response: vec![None; arrivals.len()],
        breached: vec![false; arrivals.len()],
        ..Outcome::default()
    };
    let (mut urgent_to_senior, mut urgent_total) = (0usize, 0usize);
    let end = day_start() + Duration::hours(14);
    let mut next = 0;
    let mut now = day_start();
    while now <= end {
        while next < arrivals.len() && arrivals[next].at <= now {
            let a = &arrivals[next];
            let p = routing::priority(&a.signals, a.at, a.at, policy);
            let due = a.at + Duration::from_std(policy.sla.of(p.tier)).unwrap_or_default();
            let conv = format!("c{next}");
            index.insert(conv.clone(), next);
            open.push(RouteEntry::new(&conv, "p", queue.id.clone(), p, due, a.at));
            next += 1;
        }
        finish_at.retain(|(t, conv)| {
            if *t <= now {
                open.retain(|e| &e.conversation_id != conv);
                false
            } else {
                true
            }
        });
        let routed = routing::route(std::slice::from_ref(&queue), &agents, &open, policy, now);
        for mut e in routed.changed {
            let i = index[&e.conversation_id];
            if routed.offered.contains(&e.id) {
                attempts[i] += 1;
                if !misses(args.seed, i, attempts[i], args.miss_rate) {
                    let agent = e.agent_id.clone().expect("offered to an agent");
                    routing::accept(&mut e, &agent, now).expect("offered");
                    let waited = (now - arrivals[i].at).num_seconds();
                    out.first_response[i] = Some(waited);
                    out.breached[i] = now > e.sla_deadline;
                    finish_at.push((now + arrivals[i].handle, e.conversation_id.clone()));
                    if arrivals[i].signals.urgency >= Urgency::High {
                        urgent_total += 1;
                        urgent_to_senior += usize::from(seniors.contains(&agent));
                    }
                }
            }
            if let Some(slot) = open.iter_mut().find(|x| x.id == e.id) {
                *slot = e;
            }
        }
        now += Duration::seconds(args.step_secs);
    }
    for (i, r) in out.first_response.iter().enumerate() {
        if r.is_none() {
            out.breached[i] = true;
        }
    }
    out.senior_share_urgent = urgent_to_senior as f64 / urgent_total.max(1) as f64;
    out
}

fn percentile(sorted: &[i64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[k] as f64
}

fn row(name: &str, outcome: &Outcome, pick: &dyn Fn(usize) -> bool) -> String {
    let idx: Vec<usize> = (0..outcome.first_response.len())
        .filter(|&i| pick(i))
        .collect();
    let mut times: Vec<i64> = idx
        .iter()
        .map(|&i| outcome.first_response[i].unwrap_or(i64::MAX / 4))
        .collect();
    times.sort_unstable();
    let breaches = idx.iter().filter(|&&i| outcome.breached[i]).count();
    format!(
        "{name:<14} {:>6} {:>10.1} {:>10.1} {:>9} ({:>5.1}%)",
        idx.len(),
        percentile(&times, 0.5) / 60.0,
        percentile(&times, 0.9) / 60.0,
        breaches,
        100.0 * breaches as f64 / idx.len().max(1) as f64
    )
}

pub fn run(args: RoutingBenchArgs, policy: RoutingPolicy) -> Result<()> {
    let arrivals = arrivals(&args);
    let fifo = RoutingPolicy {
        weights: Weights {
            urgency: 0.0,
            sentiment: 0.0,
            trajectory: 0.0,
            churn_risk: 0.0,
            customer_value: 0.0,
            sla: 0.0,
        },
        senior_score: f64::INFINITY,
        senior_value: f64::INFINITY,
        ..policy.clone()
    };
    let started = std::time::Instant::now();
    let by_priority = simulate(&args, &arrivals, &policy);
    let priority_secs = started.elapsed().as_secs_f64();
    let by_arrival = simulate(&args, &arrivals, &fifo);
    let urgent = |i: usize| arrivals[i].signals.urgency >= Urgency::High;
    let valuable = |i: usize| arrivals[i].high_value;
    let everyone = |_: usize| true;
    println!(
        "one simulated day: {} arrivals, {} agents x capacity {} (every 4th senior), mean handling {} min, routing pass every {} s, {:.0}% of offers missed, seed {}",
        arrivals.len(),
        args.agents,
        args.capacity,
        args.handle_minutes,
        args.step_secs,
        args.miss_rate * 100.0,
        args.seed
    );
    println!(
        "SLA (time to first response): urgent {:?}, high {:?}, normal {:?}, low {:?}",
        policy.sla.urgent, policy.sla.high, policy.sla.normal, policy.sla.low
    );
    for (name, outcome) in [
        ("priority routing", &by_priority),
        ("first-in-first-out (reference)", &by_arrival),
    ] {
        println!("\n{name}");
        println!(
            "{:<14} {:>6} {:>10} {:>10} {:>18}",
            "customers", "n", "p50 (min)", "p90 (min)", "SLA breaches"
        );
        println!("{}", row("high urgency", outcome, &urgent));
        println!("{}", row("high value", outcome, &valuable));
        println!("{}", row("everyone", outcome, &everyone));
        println!(
            "urgent cases handled by a senior agent: {:.0}%",
            outcome.senior_share_urgent * 100.0
        );
    }
    println!("\nsimulating the priority-routed day took {priority_secs:.2} s of wall time");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> RoutingBenchArgs {
        RoutingBenchArgs {
            seed: 3,
            agents: 4,
            capacity: 2,
            peak_per_hour: 40.0,
            handle_minutes: 11.0,
            step_secs: 30,
            miss_rate: 0.05,
        }
    }

    #[test]
    fn arrivals_are_seeded_and_both_runs_answer_everyone_within_capacity() {
        let args = small();
        let a = arrivals(&args);
        let b = arrivals(&args);
        assert_eq!(a.len(), b.len());
        assert!(a
            .iter()
            .zip(&b)
            .all(|(x, y)| x.at == y.at && x.handle == y.handle));
        assert!(a.iter().filter(|x| x.high_value).count() * 10 >= a.len());
        let out = simulate(&args, &a, &RoutingPolicy::default());
        assert_eq!(out.first_response.len(), a.len());
        assert!(out.first_response.iter().all(|r| r.is_some_and(|s| s >= 0)));
    }

    #[test]
    fn misses_are_the_same_for_the_same_offer() {
        let hits = (0..10_000).filter(|&i| misses(1, i, 1, 0.03)).count();
        assert!((200..400).contains(&hits), "{hits}");
        assert_eq!(misses(1, 17, 2, 0.5), misses(1, 17, 2, 0.5));
    }
}
