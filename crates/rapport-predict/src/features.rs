//! A customer's features as of a moment, and the churn label after it.
//!
//! Everything here is computed from a customer's history (events, conversations, analysed
//! messages) *as it stood at* `as_of`: facts later than `as_of` are ignored, and the traits a
//! feature reads are rebuilt from the identify events up to `as_of`, not taken from the
//! profile as it is today. The same function feeds live scoring (`as_of` = now) and training
//! (`as_of` = a cut-off in the past, with the label read from what happened after it), so a
//! model is never trained on a feature computed from events after its label date.
//!
//! A feature without a value (no order yet, no analysed message) is *missing*, never zero:
//! the trees learn a branch for missing values and explanations say which were missing.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::data::Table;

/// The kind of an event, as features read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactKind {
    Identify,
    Track,
    /// Page and screen views.
    View,
    Other,
}

/// One event of a customer's history.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFact {
    pub at: DateTime<Utc>,
    pub kind: FactKind,
    /// A track event's name.
    pub name: Option<String>,
    /// The touchpoint channel (`web`, `app`, `chat`, `email`, `voice`, `survey`, `purchase`).
    pub channel: String,
    pub properties: Map<String, Value>,
    /// An identify event's traits.
    pub traits: Map<String, Value>,
}

/// One support conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationFact {
    pub opened_at: DateTime<Utc>,
    /// When it was closed, if it is; the store keeps the time of the last change of a closed
    /// conversation, which is used as its closing time.
    pub closed_at: Option<DateTime<Utc>>,
}

/// One analysed message from the customer.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageFact {
    pub at: DateTime<Utc>,
    /// Sentiment in [-1, 1].
    pub sentiment: Option<f64>,
    /// Effort, -5 (very hard) to 5 (very easy).
    pub effort: Option<f64>,
}

/// What the store holds about one customer, in any order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub events: Vec<EventFact>,
    pub conversations: Vec<ConversationFact>,
    pub messages: Vec<MessageFact>,
}

/// Which traits become features and which events mean a customer left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureConfig {
    /// Traits read as features, as they stood at the cut-off (e.g. `plan`, `contract`).
    pub traits: Vec<String>,
    /// Track events that mark a customer as gone (e.g. `Subscription Cancelled`).
    pub churn_events: Vec<String>,
    /// How far after the cut-off a churn event counts for the label, in days.
    pub horizon_days: u32,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            traits: vec!["plan".into()],
            churn_events: vec![
                "Subscription Cancelled".into(),
                "Account Closed".into(),
                "Account Deleted".into(),
            ],
            horizon_days: 30,
        }
    }
}

/// A feature's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FeatureValue {
    Number(f64),
    Text(String),
    Missing,
}

impl FeatureValue {
    /// The value as a table cell (empty when missing).
    pub fn cell(&self) -> String {
        match self {
            FeatureValue::Number(x) => format!("{x}"),
            FeatureValue::Text(s) => s.clone(),
            FeatureValue::Missing => String::new(),
        }
    }

    pub fn as_json(&self) -> Value {
        match self {
            FeatureValue::Number(x) => serde_json::Number::from_f64(*x)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            FeatureValue::Text(s) => Value::String(s.clone()),
            FeatureValue::Missing => Value::Null,
        }
    }
}

/// The computed features, by name, in the order of [`FEATURES`] then the configured traits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureVector {
    pub as_of: Option<DateTime<Utc>>,
    pub values: Vec<(String, FeatureValue)>,
}

impl FeatureVector {
    pub fn get(&self, name: &str) -> Option<&FeatureValue> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The features as a JSON object (missing values are `null`).
    pub fn to_json(&self) -> Map<String, Value> {
        self.values
            .iter()
            .map(|(n, v)| (n.clone(), v.as_json()))
            .collect()
    }

    /// Rebuilds a vector from [`FeatureVector::to_json`]'s object.
    pub fn from_json(obj: &Map<String, Value>) -> Self {
        let values = obj
            .iter()
            .map(|(n, v)| {
                let fv = match v {
                    Value::Number(x) => x
                        .as_f64()
                        .map(FeatureValue::Number)
                        .unwrap_or(FeatureValue::Missing),
                    Value::String(s) => FeatureValue::Text(s.clone()),
                    _ => FeatureValue::Missing,
                };
                (n.clone(), fv)
            })
            .collect();
        FeatureVector {
            as_of: None,
            values,
        }
    }
}

/// The computed features: name and meaning. Traits named in [`FeatureConfig::traits`] follow
/// as `trait_<name>`.
pub const FEATURES: &[(&str, &str)] = &[
    ("tenure_days", "days since the customer's first event"),
    ("days_since_last_event", "days since the latest event"),
    ("events_7d", "events in the last 7 days"),
    ("events_30d", "events in the last 30 days"),
    ("events_90d", "events in the last 90 days"),
    (
        "active_days_30d",
        "distinct days with an event in the last 30 days",
    ),
    (
        "activity_trend",
        "events in the last 30 days minus the monthly average of the 60 days before",
    ),
    ("orders_30d", "`Order Completed` events in the last 30 days"),
    ("orders_90d", "orders in the last 90 days"),
    ("orders_365d", "orders in the last 365 days"),
    ("revenue_90d", "revenue of orders in the last 90 days"),
    ("revenue_365d", "revenue of orders in the last 365 days"),
    ("days_since_last_order", "days since the latest order"),
    (
        "support_contacts_30d",
        "conversations opened in the last 30 days",
    ),
    (
        "support_contacts_90d",
        "conversations opened in the last 90 days",
    ),
    (
        "unresolved_conversations",
        "conversations opened and not closed at the time",
    ),
    (
        "sentiment_last",
        "sentiment of the customer's latest analysed message",
    ),
    (
        "sentiment_mean_90d",
        "mean sentiment of their messages in the last 90 days",
    ),
    (
        "sentiment_trend",
        "latest minus earliest sentiment of their messages in the last 90 days",
    ),
    (
        "effort_mean_90d",
        "mean effort (-5 hard to 5 easy) said in their messages in the last 90 days",
    ),
    ("last_nps", "score of the latest NPS survey answer (0-10)"),
    ("last_csat", "score of the latest CSAT survey answer (1-5)"),
    (
        "digital_share_90d",
        "share of web and app events among the last 90 days' events",
    ),
    (
        "assisted_share_90d",
        "share of chat, email and voice events among the last 90 days' events",
    ),
    (
        "email_engagement_90d",
        "`Email Opened` events in the last 90 days",
    ),
];

/// Whether a track event marks the customer as gone.
fn is_churn(e: &EventFact, config: &FeatureConfig) -> bool {
    e.kind == FactKind::Track
        && e.name.as_deref().is_some_and(|n| {
            config
                .churn_events
                .iter()
                .any(|c| c.eq_ignore_ascii_case(n))
        })
}

/// A customer's orders up to `until` as lifetime-value transactions (days since 1970-01-01;
/// an order without an amount counts as a purchase of 0).
pub fn transactions(
    history: &History,
    customer: &str,
    until: DateTime<Utc>,
) -> Vec<crate::clv::Transaction> {
    history
        .events
        .iter()
        .filter(|e| e.at <= until && is_order(e))
        .map(|e| crate::clv::Transaction {
            customer: customer.to_owned(),
            day: e.at.timestamp().div_euclid(86_400),
            amount: amount(e).filter(|a| *a >= 0.0).unwrap_or(0.0),
        })
        .collect()
}

fn is_order(e: &EventFact) -> bool {
    e.kind == FactKind::Track
        && e.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case("order completed"))
}

fn amount(e: &EventFact) -> Option<f64> {
    ["revenue", "total", "value"]
        .iter()
        .find_map(|k| e.properties.get(*k).and_then(Value::as_f64))
        .filter(|x| x.is_finite())
}

fn days_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    ((to - from).num_seconds().max(0) as f64 / 86_400.0 * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    // `+ 0.0` turns the -0.0 of an empty sum into 0.0.
    (x * 1000.0).round() / 1000.0 + 0.0
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// When the customer left, as of `as_of`: the first churn event at or before it.
pub fn churned_at(
    history: &History,
    config: &FeatureConfig,
    as_of: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    history
        .events
        .iter()
        .filter(|e| e.at <= as_of && is_churn(e, config))
        .map(|e| e.at)
        .min()
}

/// The churn label for a cut-off: `None` when the customer cannot be labelled at it (no event
/// yet, or already gone), `Some(true)` when a churn event follows within the horizon.
pub fn churn_label(
    history: &History,
    config: &FeatureConfig,
    cutoff: DateTime<Utc>,
) -> Option<bool> {
    let seen = history.events.iter().any(|e| e.at <= cutoff);
    if !seen || churned_at(history, config, cutoff).is_some() {
        return None;
    }
    let end = cutoff + Duration::days(i64::from(config.horizon_days));
    Some(
        history
            .events
            .iter()
            .any(|e| e.at > cutoff && e.at <= end && is_churn(e, config)),
    )
}

/// The customer's features as of `as_of`, from the facts at or before it.
pub fn compute(history: &History, config: &FeatureConfig, as_of: DateTime<Utc>) -> FeatureVector {
    let since = |d: i64| as_of - Duration::days(d);
    let events: Vec<&EventFact> = history.events.iter().filter(|e| e.at <= as_of).collect();
    let mut out: Vec<(String, FeatureValue)> = Vec::with_capacity(FEATURES.len() + 4);
    let mut put = |name: &str, v: Option<f64>| {
        out.push((
            name.to_owned(),
            v.filter(|x| x.is_finite())
                .map(FeatureValue::Number)
                .unwrap_or(FeatureValue::Missing),
        ));
    };
    let first = events.iter().map(|e| e.at).min();
    let last = events.iter().map(|e| e.at).max();
    put("tenure_days", first.map(|t| days_between(t, as_of)));
    put(
        "days_since_last_event",
        last.map(|t| days_between(t, as_of)),
    );
    let count_since = |d: i64| events.iter().filter(|e| e.at > since(d)).count() as f64;
    let (e7, e30, e90) = (count_since(7), count_since(30), count_since(90));
    put("events_7d", Some(e7));
    put("events_30d", Some(e30));
    put("events_90d", Some(e90));
    let mut days: Vec<i64> = events
        .iter()
        .filter(|e| e.at > since(30))
        .map(|e| e.at.timestamp().div_euclid(86_400))
        .collect();
    days.sort_unstable();
    days.dedup();
    put("active_days_30d", Some(days.len() as f64));
    // Compared only once the customer has been around for the whole 90 days.
    let trend = first
        .filter(|t| *t <= since(90))
        .map(|_| e30 - (e90 - e30) / 2.0);
    put("activity_trend", trend);

    let orders: Vec<&&EventFact> = events.iter().filter(|e| is_order(e)).collect();
    let orders_since = |d: i64| orders.iter().filter(move |e| e.at > since(d));
    put("orders_30d", Some(orders_since(30).count() as f64));
    put("orders_90d", Some(orders_since(90).count() as f64));
    put("orders_365d", Some(orders_since(365).count() as f64));
    let revenue = |d: i64| round3(orders_since(d).filter_map(|e| amount(e)).sum());
    put("revenue_90d", Some(revenue(90)));
    put("revenue_365d", Some(revenue(365)));
    put(
        "days_since_last_order",
        orders
            .iter()
            .map(|e| e.at)
            .max()
            .map(|t| days_between(t, as_of)),
    );

    let convs: Vec<&ConversationFact> = history
        .conversations
        .iter()
        .filter(|c| c.opened_at <= as_of)
        .collect();
    let opened_since = |d: i64| convs.iter().filter(|c| c.opened_at > since(d)).count() as f64;
    put("support_contacts_30d", Some(opened_since(30)));
    put("support_contacts_90d", Some(opened_since(90)));
    let unresolved = convs
        .iter()
        .filter(|c| c.closed_at.is_none_or(|t| t > as_of))
        .count();
    put("unresolved_conversations", Some(unresolved as f64));

    let mut msgs: Vec<&MessageFact> = history.messages.iter().filter(|m| m.at <= as_of).collect();
    msgs.sort_by_key(|m| m.at);
    let sentiments: Vec<(DateTime<Utc>, f64)> = msgs
        .iter()
        .filter_map(|m| m.sentiment.filter(|s| s.is_finite()).map(|s| (m.at, s)))
        .collect();
    put("sentiment_last", sentiments.last().map(|(_, s)| round3(*s)));
    let recent: Vec<f64> = sentiments
        .iter()
        .filter(|(t, _)| *t > since(90))
        .map(|(_, s)| *s)
        .collect();
    put("sentiment_mean_90d", mean(&recent).map(round3));
    put(
        "sentiment_trend",
        (recent.len() >= 2).then(|| round3(recent[recent.len() - 1] - recent[0])),
    );
    let efforts: Vec<f64> = msgs
        .iter()
        .filter(|m| m.at > since(90))
        .filter_map(|m| m.effort.filter(|x| x.is_finite()))
        .collect();
    put("effort_mean_90d", mean(&efforts).map(round3));

    let survey = |kind: &str| {
        events
            .iter()
            .filter(|e| {
                e.kind == FactKind::Track
                    && e.properties
                        .get("survey")
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.eq_ignore_ascii_case(kind))
            })
            .max_by_key(|e| e.at)
            .and_then(|e| e.properties.get("score").and_then(Value::as_f64))
    };
    put("last_nps", survey("nps"));
    put("last_csat", survey("csat"));

    let recent_events: Vec<&&EventFact> = events.iter().filter(|e| e.at > since(90)).collect();
    let share = |chans: &[&str]| {
        (!recent_events.is_empty()).then(|| {
            let n = recent_events
                .iter()
                .filter(|e| chans.contains(&e.channel.as_str()))
                .count();
            round3(n as f64 / recent_events.len() as f64)
        })
    };
    put("digital_share_90d", share(&["web", "app"]));
    put("assisted_share_90d", share(&["chat", "email", "voice"]));
    let opens = recent_events
        .iter()
        .filter(|e| {
            e.kind == FactKind::Track
                && e.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case("email opened"))
        })
        .count();
    put("email_engagement_90d", Some(opens as f64));

    // Traits as they stood at the cut-off: the latest identify value at or before it.
    let mut identifies: Vec<&&EventFact> = events
        .iter()
        .filter(|e| e.kind == FactKind::Identify)
        .collect();
    identifies.sort_by_key(|e| e.at);
    let mut traits: BTreeMap<&str, FeatureValue> = BTreeMap::new();
    for e in identifies {
        for name in &config.traits {
            match e.traits.get(name) {
                Some(Value::String(s)) if !s.trim().is_empty() => {
                    traits.insert(name, FeatureValue::Text(s.trim().to_owned()));
                }
                Some(Value::Number(n)) => {
                    if let Some(x) = n.as_f64() {
                        traits.insert(name, FeatureValue::Number(x));
                    }
                }
                Some(Value::Bool(b)) => {
                    traits.insert(name, FeatureValue::Text(b.to_string()));
                }
                _ => {}
            }
        }
    }
    for name in &config.traits {
        let v = traits
            .remove(name.as_str())
            .unwrap_or(FeatureValue::Missing);
        out.push((format!("trait_{name}"), v));
    }
    FeatureVector {
        as_of: Some(as_of),
        values: out,
    }
}

/// Feature vectors as a table the classifier trains on or scores (a missing value is an empty
/// cell), with an optional label column.
pub fn table(rows: &[(FeatureVector, Option<bool>)], label: Option<&str>) -> Table {
    let mut headers: Vec<String> = rows
        .first()
        .map(|(v, _)| v.values.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    if let Some(l) = label {
        headers.push(l.to_owned());
    }
    let body = rows
        .iter()
        .map(|(v, y)| {
            let mut cells: Vec<String> = v.values.iter().map(|(_, x)| x.cell()).collect();
            if label.is_some() {
                cells.push(match y {
                    Some(true) => "1".into(),
                    Some(false) => "0".into(),
                    None => String::new(),
                });
            }
            cells
        })
        .collect::<Vec<_>>();
    Table {
        path: "workspace features".into(),
        headers,
        lines: (2..).take(body.len()).collect(),
        rows: body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn at(day: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000 + day)
    }

    fn track(day: i64, name: &str, channel: &str, props: Value) -> EventFact {
        EventFact {
            at: at(day),
            kind: FactKind::Track,
            name: Some(name.into()),
            channel: channel.into(),
            properties: props.as_object().cloned().unwrap_or_default(),
            traits: Map::new(),
        }
    }

    fn identify(day: i64, traits: Value) -> EventFact {
        EventFact {
            at: at(day),
            kind: FactKind::Identify,
            name: None,
            channel: "web".into(),
            properties: Map::new(),
            traits: traits.as_object().cloned().unwrap_or_default(),
        }
    }

    fn history() -> History {
        History {
            events: vec![
                identify(0, json!({"plan": "fiber-100"})),
                track(10, "Order Completed", "purchase", json!({"revenue": 40.0})),
                track(70, "Order Completed", "purchase", json!({"revenue": 12.5})),
                track(
                    80,
                    "Survey Responded",
                    "survey",
                    json!({"survey": "nps", "score": 3}),
                ),
                identify(85, json!({"plan": "mobile-basic"})),
                track(95, "Email Opened", "email", json!({})),
                track(99, "Subscription Cancelled", "web", json!({})),
            ],
            conversations: vec![
                ConversationFact {
                    opened_at: at(75),
                    closed_at: Some(at(78)),
                },
                ConversationFact {
                    opened_at: at(88),
                    closed_at: None,
                },
            ],
            messages: vec![
                MessageFact {
                    at: at(75),
                    sentiment: Some(0.2),
                    effort: Some(-1.0),
                },
                MessageFact {
                    at: at(88),
                    sentiment: Some(-0.6),
                    effort: Some(-4.0),
                },
            ],
        }
    }

    fn num(v: &FeatureVector, n: &str) -> f64 {
        match v.get(n) {
            Some(FeatureValue::Number(x)) => *x,
            other => panic!("{n} is {other:?}"),
        }
    }

    #[test]
    fn features_read_the_history_as_it_stood() {
        let c = FeatureConfig::default();
        let v = compute(&history(), &c, at(90));
        assert_eq!(num(&v, "tenure_days"), 90.0);
        assert_eq!(num(&v, "days_since_last_event"), 5.0);
        assert_eq!(num(&v, "orders_90d"), 2.0);
        assert_eq!(num(&v, "orders_30d"), 1.0);
        assert_eq!(num(&v, "revenue_90d"), 52.5);
        assert_eq!(num(&v, "days_since_last_order"), 20.0);
        assert_eq!(num(&v, "support_contacts_30d"), 2.0);
        assert_eq!(num(&v, "unresolved_conversations"), 1.0);
        assert_eq!(num(&v, "sentiment_last"), -0.6);
        assert_eq!(num(&v, "sentiment_trend"), -0.8);
        assert_eq!(num(&v, "effort_mean_90d"), -2.5);
        assert_eq!(num(&v, "last_nps"), 3.0);
        assert_eq!(v.get("last_csat"), Some(&FeatureValue::Missing));
        assert_eq!(
            v.get("trait_plan"),
            Some(&FeatureValue::Text("mobile-basic".into()))
        );
        // Earlier, the plan was the first one, and the later conversation was not there.
        let early = compute(&history(), &c, at(80));
        assert_eq!(
            early.get("trait_plan"),
            Some(&FeatureValue::Text("fiber-100".into()))
        );
        assert_eq!(num(&early, "unresolved_conversations"), 0.0);
        assert_eq!(num(&early, "sentiment_last"), 0.2);
        assert_eq!(early.get("sentiment_trend"), Some(&FeatureValue::Missing));
        assert_eq!(v.values.len(), FEATURES.len() + c.traits.len());
    }

    #[test]
    fn labels_look_only_after_the_cutoff_and_skip_the_gone() {
        let c = FeatureConfig::default();
        assert_eq!(churn_label(&history(), &c, at(75)), Some(true));
        assert_eq!(churn_label(&history(), &c, at(60)), Some(false));
        assert_eq!(churn_label(&history(), &c, at(99)), None);
        assert_eq!(churn_label(&history(), &c, at(-1)), None);
        assert_eq!(churned_at(&history(), &c, at(120)), Some(at(99)));
    }

    #[test]
    fn json_round_trip_keeps_values() {
        let v = compute(&history(), &FeatureConfig::default(), at(90));
        let back = FeatureVector::from_json(&v.to_json());
        for (n, x) in &v.values {
            assert_eq!(back.get(n), Some(x), "{n}");
        }
    }

    proptest! {
        /// Point-in-time correctness: whatever happens after the cut-off, the features at the
        /// cut-off are the same.
        #[test]
        fn later_facts_never_change_features(
            later in proptest::collection::vec((1i64..400, 0usize..4), 0..30),
            cut in 0i64..120,
        ) {
            let c = FeatureConfig::default();
            let base = history();
            let mut h = History {
                events: base.events.iter().filter(|e| e.at <= at(cut)).cloned().collect(),
                conversations: base.conversations.iter().filter(|x| x.opened_at <= at(cut)).cloned().collect(),
                messages: base.messages.iter().filter(|m| m.at <= at(cut)).cloned().collect(),
            };
            let before = compute(&h, &c, at(cut));
            for (d, k) in later {
                let day = cut + d;
                match k {
                    0 => h.events.push(track(day, "Order Completed", "purchase", json!({"revenue": 9}))),
                    1 => h.events.push(identify(day, json!({"plan": "other"}))),
                    2 => h.messages.push(MessageFact { at: at(day), sentiment: Some(-1.0), effort: Some(-5.0) }),
                    _ => h.conversations.push(ConversationFact { opened_at: at(day), closed_at: None }),
                }
            }
            let after = compute(&h, &c, at(cut));
            prop_assert_eq!(before, after);
        }
    }
}
