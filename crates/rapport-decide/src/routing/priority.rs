//! The priority of a waiting conversation: each signal put on a 0..=1 scale, multiplied by its
//! weight, and summed. Signals that are not known (no churn model run, no purchases) add
//! nothing and say so, rather than being guessed.

use chrono::{DateTime, Utc};
use rapport_core::routing::{Priority, PriorityPart, Tier};
use serde::{Deserialize, Serialize};

use super::RoutingPolicy;

/// How soon the customer's last messages say someone should look (the interpretation stage's
/// urgency, by level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Low,
    Normal,
    High,
    Critical,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
            Urgency::Critical => "critical",
        }
    }

    fn level(self) -> f64 {
        match self {
            Urgency::Low => 0.0,
            Urgency::Normal => 1.0 / 3.0,
            Urgency::High => 2.0 / 3.0,
            Urgency::Critical => 1.0,
        }
    }

    fn tier(self) -> Tier {
        match self {
            Urgency::Low => Tier::Low,
            Urgency::Normal => Tier::Normal,
            Urgency::High => Tier::High,
            Urgency::Critical => Tier::Urgent,
        }
    }
}

/// What is known about a waiting conversation and its customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// The highest urgency of the customer's messages in the conversation.
    pub urgency: Urgency,
    /// Why it is urgent (reason codes), for the explanation.
    pub urgency_reasons: Vec<String>,
    /// Sentiment level of the latest customer message, 0 (very negative) to 4 (very positive).
    pub sentiment_level: Option<u8>,
    /// Slope of the sentiment scores over the conversation, per message (negative = worse).
    pub sentiment_trend: Option<f64>,
    /// Levels sentiment fell from the first message to the last.
    pub levels_dropped: u8,
    /// Probability the customer churns, when a model scored them.
    pub churn_risk: Option<f64>,
    /// What the customer is worth (revenue so far or lifetime value), when known.
    pub customer_value: Option<f64>,
    /// The customer asked for a person.
    pub asked_for_human: bool,
}

impl Default for Signals {
    fn default() -> Self {
        Signals {
            urgency: Urgency::Normal,
            urgency_reasons: Vec::new(),
            sentiment_level: None,
            sentiment_trend: None,
            levels_dropped: 0,
            churn_risk: None,
            customer_value: None,
            asked_for_human: false,
        }
    }
}

const SENTIMENT_WORDS: [&str; 5] = [
    "very negative",
    "negative",
    "neutral",
    "positive",
    "very positive",
];

fn part(signal: &str, level: Option<f64>, weight: f64, detail: String) -> PriorityPart {
    let level = level.map(|l| l.clamp(0.0, 1.0));
    PriorityPart {
        signal: signal.to_owned(),
        level,
        weight,
        contribution: level.map_or(0.0, |l| l * weight),
        detail,
    }
}

/// The tier whose SLA applies: the urgency's, raised to `high` for a customer who asked for a
/// person or whose latest message was very negative.
pub fn tier(signals: &Signals) -> Tier {
    let mut t = signals.urgency.tier();
    if (signals.asked_for_human || signals.sentiment_level == Some(0)) && t < Tier::High {
        t = Tier::High;
    }
    t
}

/// The SLA part: how much of the tier's time to first response has gone, on 0..=1, where 0.5
/// is the deadline itself and 1 is twice the target (so a breached wait keeps rising).
fn sla_part(
    tier: Tier,
    enqueued_at: DateTime<Utc>,
    now: DateTime<Utc>,
    policy: &RoutingPolicy,
) -> PriorityPart {
    let target = policy.sla.of(tier).as_secs_f64().max(1.0);
    let waited = (now - enqueued_at).num_milliseconds().max(0) as f64 / 1000.0;
    let used = waited / target;
    let left = target - waited;
    let detail = if left >= 0.0 {
        format!(
            "{} tier, {:.0}s of {:.0}s left before the SLA deadline",
            tier.as_str(),
            left,
            target
        )
    } else {
        format!(
            "{} tier, SLA deadline passed {:.0}s ago",
            tier.as_str(),
            -left
        )
    };
    part("sla", Some(used / 2.0), policy.weights.sla, detail)
}

/// The priority of a conversation queued at `enqueued_at`, as of `now`.
pub fn priority(
    signals: &Signals,
    enqueued_at: DateTime<Utc>,
    now: DateTime<Utc>,
    policy: &RoutingPolicy,
) -> Priority {
    let w = &policy.weights;
    let tier = tier(signals);
    let reasons = if signals.urgency_reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", signals.urgency_reasons.join(", "))
    };
    let mut parts = vec![part(
        "urgency",
        Some(signals.urgency.level()),
        w.urgency,
        format!("urgency {}{reasons}", signals.urgency.as_str()),
    )];
    parts.push(match signals.sentiment_level {
        Some(l) => {
            let l = l.min(4);
            part(
                "sentiment",
                Some(f64::from(4 - l) / 4.0),
                w.sentiment,
                format!("latest message {}", SENTIMENT_WORDS[usize::from(l)]),
            )
        }
        None => part("sentiment", None, w.sentiment, "no sentiment read".into()),
    });
    parts.push(match signals.sentiment_trend {
        Some(t) if t.is_finite() => {
            let falling = (-t).max(0.0);
            let dropped = f64::from(signals.levels_dropped) / 4.0;
            part(
                "trajectory",
                Some(falling.max(dropped)),
                w.trajectory,
                format!(
                    "sentiment trend {t:+.2} per message, {} level(s) down",
                    signals.levels_dropped
                ),
            )
        }
        _ => part(
            "trajectory",
            None,
            w.trajectory,
            "one message, no trajectory yet".into(),
        ),
    });
    parts.push(match signals.churn_risk.filter(|p| p.is_finite()) {
        Some(p) => part(
            "churn_risk",
            Some(p),
            w.churn_risk,
            format!("churn risk {:.0}%", p.clamp(0.0, 1.0) * 100.0),
        ),
        None => part(
            "churn_risk",
            None,
            w.churn_risk,
            "churn risk not scored".into(),
        ),
    });
    parts.push(
        match signals
            .customer_value
            .filter(|v| v.is_finite() && *v >= 0.0)
        {
            Some(v) => part(
                "customer_value",
                Some(v / (v + policy.value_midpoint)),
                w.customer_value,
                format!("customer value {v:.2}"),
            ),
            None => part(
                "customer_value",
                None,
                w.customer_value,
                "customer value not known".into(),
            ),
        },
    );
    parts.push(sla_part(tier, enqueued_at, now, policy));
    let score = parts.iter().map(|p| p.contribution).sum();
    Priority {
        score,
        tier,
        asked_for_human: signals.asked_for_human,
        parts,
        computed_at: now,
    }
}

/// The same priority with its SLA part brought up to `now` (the other signals are as they were
/// when the customer last wrote).
pub fn refresh_sla(
    p: &Priority,
    enqueued_at: DateTime<Utc>,
    now: DateTime<Utc>,
    policy: &RoutingPolicy,
) -> Priority {
    let mut out = p.clone();
    let fresh = sla_part(p.tier, enqueued_at, now, policy);
    match out.parts.iter_mut().find(|x| x.signal == "sla") {
        Some(slot) => *slot = fresh,
        None => out.parts.push(fresh),
    }
    out.score = out.parts.iter().map(|x| x.contribution).sum();
    out.computed_at = now;
    out
}

/// The level (0..1) of one signal of a priority, if it was known.
pub fn level_of(p: &Priority, signal: &str) -> Option<f64> {
    p.parts
        .iter()
        .find(|x| x.signal == signal)
        .and_then(|x| x.level)
}

/// One line saying why a priority is what it is: the score, the tier and the parts that added
/// something, largest first.
pub fn explain(p: &Priority) -> String {
    let mut parts: Vec<&PriorityPart> = p.parts.iter().filter(|x| x.contribution > 0.0).collect();
    parts.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
    let listed: Vec<String> = parts
        .iter()
        .map(|x| format!("{} +{:.2}", x.detail, x.contribution))
        .collect();
    let human = if p.asked_for_human {
        "asked for a person; "
    } else {
        ""
    };
    format!(
        "{human}priority {:.2} ({} tier): {}",
        p.score,
        p.tier.as_str(),
        if listed.is_empty() {
            "nothing raised it".to_owned()
        } else {
            listed.join("; ")
        }
    )
}
