//! The values a rule can read at decision time: the customer's traits, a small set of features
//! computed from what the store already holds about them (recency, frequency and monetary
//! value from their events, support contacts and open conversations, the last sentiment), and
//! the request's context.
//!
//! A feature that cannot be computed (no purchases yet, no analysed message) is *missing*, not
//! zero: a rule that reads it does not hold, and the explanation says which value was missing.
//! This is not a feature store: values are computed from the rows given, at the time given.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use evalexpr::{ContextWithMutableVariables, HashMapContext, Value as ExprValue};
use rapport_core::{Conversation, ConversationStatus, Profile};
use serde_json::{Map, Value};

use super::catalog::{Catalog, ValueType};

/// Every computed feature: name, type, meaning.
pub const FEATURES: &[(&str, ValueType, &str)] = &[
    (
        "tenure_days",
        ValueType::Number,
        "days since the customer was first seen",
    ),
    (
        "days_since_last_seen",
        ValueType::Number,
        "days since the customer's latest event",
    ),
    ("event_count", ValueType::Number, "events on the profile"),
    (
        "events_30d",
        ValueType::Number,
        "events in the last 30 days (of the latest 500)",
    ),
    (
        "orders_90d",
        ValueType::Number,
        "`Order Completed` events in the last 90 days",
    ),
    (
        "revenue_90d",
        ValueType::Number,
        "sum of the revenue (or total, or value) of orders in the last 90 days",
    ),
    (
        "days_since_last_order",
        ValueType::Number,
        "days since the latest order; missing when there is none",
    ),
    (
        "support_contacts_30d",
        ValueType::Number,
        "conversations opened in the last 30 days",
    ),
    (
        "open_conversations",
        ValueType::Number,
        "conversations not closed",
    ),
    (
        "last_sentiment",
        ValueType::Number,
        "sentiment (-1 to 1) of the customer's latest analysed message; missing when none",
    ),
];

/// An event as features need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub at: DateTime<Utc>,
    /// The event's name (`Order Completed` for orders), for track events.
    pub name: Option<String>,
    /// The order's revenue, total or value, when the event has one.
    pub amount: Option<f64>,
}

impl Activity {
    fn is_order(&self) -> bool {
        self.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case("order completed"))
    }

    /// The amount of an order from a Segment event's properties.
    pub fn amount_of(properties: &Map<String, Value>) -> Option<f64> {
        ["revenue", "total", "value"]
            .iter()
            .find_map(|k| properties.get(*k).and_then(Value::as_f64))
            .filter(|x| x.is_finite())
    }
}

/// What the store holds about one customer, as features read it.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub profile: &'a Profile,
    /// Their latest events, newest first (a bounded page).
    pub activity: &'a [Activity],
    pub conversations: &'a [Conversation],
    /// The sentiment score of their latest analysed message.
    pub last_sentiment: Option<f64>,
    pub now: DateTime<Utc>,
}

/// Everything a rule can read, with what was missing and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Values {
    /// Present values by name (`plan`, `tenure_days`, `context.reason`).
    pub present: BTreeMap<String, Value>,
    /// Declared or computed names without a value, with why.
    pub missing: BTreeMap<String, String>,
}

fn days(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    ((to - from).num_seconds().max(0) as f64 / 86_400.0 * 10.0).round() / 10.0
}

/// The computed features of one customer.
pub fn compute(inputs: &Inputs<'_>) -> Values {
    let mut v = Values::default();
    let now = inputs.now;
    let p = inputs.profile;
    let mut put = |name: &str, value: Option<Value>, why: &str| match value {
        Some(x) => {
            v.present.insert(name.to_owned(), x);
        }
        None => {
            v.missing.insert(name.to_owned(), why.to_owned());
        }
    };
    put(
        "tenure_days",
        p.first_seen.map(|t| days(t, now).into()),
        "the customer has no events",
    );
    put(
        "days_since_last_seen",
        p.last_seen.map(|t| days(t, now).into()),
        "the customer has no events",
    );
    put("event_count", Some(p.event_count.into()), "");
    let since = |d: i64| now - chrono::Duration::days(d);
    let recent = inputs
        .activity
        .iter()
        .filter(|a| a.at >= since(30) && a.at <= now)
        .count();
    put("events_30d", Some((recent as i64).into()), "");
    let orders: Vec<&Activity> = inputs
        .activity
        .iter()
        .filter(|a| a.is_order() && a.at <= now)
        .collect();
    let orders_90: Vec<&&Activity> = orders.iter().filter(|a| a.at >= since(90)).collect();
    put("orders_90d", Some((orders_90.len() as i64).into()), "");
    let revenue: f64 = orders_90.iter().filter_map(|a| a.amount).sum();
    put(
        "revenue_90d",
        Some(((revenue * 100.0).round() / 100.0).into()),
        "",
    );
    put(
        "days_since_last_order",
        orders
            .iter()
            .map(|a| a.at)
            .max()
            .map(|t| days(t, now).into()),
        "no order in the customer's recent events",
    );
    let contacts = inputs
        .conversations
        .iter()
        .filter(|c| c.opened_at >= since(30) && c.opened_at <= now)
        .count();
    put("support_contacts_30d", Some((contacts as i64).into()), "");
    let open = inputs
        .conversations
        .iter()
        .filter(|c| c.status != ConversationStatus::Closed)
        .count();
    put("open_conversations", Some((open as i64).into()), "");
    put(
        "last_sentiment",
        inputs
            .last_sentiment
            .filter(|s| s.is_finite())
            .map(|s| ((s * 1000.0).round() / 1000.0).into()),
        "no analysed message from the customer",
    );
    v
}

/// Why a request's context cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ContextError(pub String);

impl Values {
    /// Adds the traits the catalog declares, from the profile; a trait absent or of another
    /// type than declared is missing.
    pub fn with_traits(mut self, catalog: &Catalog, traits: &Map<String, Value>) -> Self {
        for (name, ty) in &catalog.traits {
            match traits.get(name) {
                None | Some(Value::Null) => {
                    self.missing
                        .insert(name.clone(), "the profile has no such trait".into());
                }
                Some(x) if fits(x, *ty) => {
                    self.present.insert(name.clone(), x.clone());
                }
                Some(_) => {
                    self.missing
                        .insert(name.clone(), format!("the trait is not a {}", ty.as_str()));
                }
            }
        }
        self
    }

    /// Adds the request's context, which must be an object of declared names with values of
    /// their declared types. Declared names the request leaves out are missing.
    pub fn with_context(
        mut self,
        catalog: &Catalog,
        context: &Value,
    ) -> Result<Self, ContextError> {
        let empty = Map::new();
        let obj = match context {
            Value::Null => &empty,
            Value::Object(o) => o,
            _ => return Err(ContextError("context must be a JSON object".into())),
        };
        for (k, x) in obj {
            let Some(ty) = catalog.context.get(k) else {
                let known: Vec<&str> = catalog.context.keys().map(String::as_str).collect();
                return Err(ContextError(format!(
                    "context key `{k}` is not declared in the catalog (declared: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            };
            if !fits(x, *ty) {
                return Err(ContextError(format!(
                    "context `{k}` must be a {}",
                    ty.as_str()
                )));
            }
        }
        for name in catalog.context.keys() {
            let key = format!("context.{name}");
            match obj.get(name) {
                Some(Value::Null) | None => {
                    self.missing
                        .insert(key, "the request did not give it".into());
                }
                Some(x) => {
                    self.present.insert(key, x.clone());
                }
            }
        }
        Ok(self)
    }

    /// The values as an expression context.
    pub(crate) fn expr_context(&self) -> HashMapContext {
        let mut ctx = HashMapContext::new();
        for (k, x) in &self.present {
            if let Some(e) = to_expr(x) {
                // Fails only on a type change of an existing variable; names are unique.
                let _ = ctx.set_value(k.clone(), e);
            }
        }
        ctx
    }

    /// The value of `name` as shown in explanations.
    pub fn show(&self, name: &str) -> String {
        match self.present.get(name) {
            Some(x) => x.to_string(),
            None => "missing".into(),
        }
    }
}

fn fits(x: &Value, ty: ValueType) -> bool {
    match ty {
        ValueType::String => x.is_string(),
        ValueType::Number => x.as_f64().is_some_and(f64::is_finite),
        ValueType::Bool => x.is_boolean(),
    }
}

fn to_expr(v: &Value) -> Option<ExprValue> {
    Some(match v {
        Value::Bool(b) => ExprValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => ExprValue::Int(i),
            None => ExprValue::Float(n.as_f64()?),
        },
        Value::String(s) => ExprValue::String(s.clone()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use rapport_core::{ConversationChannel, ConversationId, ProfileId};

    fn profile(first: Option<DateTime<Utc>>) -> Profile {
        Profile {
            id: ProfileId::from_trusted("prof_1".into()),
            name: None,
            email: None,
            traits: Map::new(),
            identities: vec![],
            first_seen: first,
            last_seen: first,
            channels: vec![],
            event_count: 3,
            merged_ids: vec![],
            standardized_traits: Map::new(),
            data_quality: vec![],
        }
    }

    #[test]
    fn features_are_computed_and_missing_ones_said() {
        let now = DateTime::<Utc>::UNIX_EPOCH + Duration::days(1000);
        let p = profile(Some(now - Duration::days(40)));
        let order = |d: i64, amount: f64| Activity {
            at: now - Duration::days(d),
            name: Some("Order Completed".into()),
            amount: Some(amount),
        };
        let activity = [order(5, 10.0), order(60, 20.5), order(200, 99.0)];
        let conv = |d: i64, status| Conversation {
            id: ConversationId::generate(),
            profile_id: p.id.clone(),
            channel: ConversationChannel::Chat,
            subject: None,
            status,
            opened_at: now - Duration::days(d),
            updated_at: now,
            message_count: 1,
        };
        let convs = [
            conv(3, ConversationStatus::Open),
            conv(10, ConversationStatus::Closed),
            conv(45, ConversationStatus::Closed),
        ];
        let v = compute(&Inputs {
            profile: &p,
            activity: &activity,
            conversations: &convs,
            last_sentiment: None,
            now,
        });
        assert_eq!(v.present["tenure_days"], 40.0);
        assert_eq!(v.present["events_30d"], 1);
        assert_eq!(v.present["orders_90d"], 2);
        assert_eq!(v.present["revenue_90d"], 30.5);
        assert_eq!(v.present["days_since_last_order"], 5.0);
        assert_eq!(v.present["support_contacts_30d"], 2);
        assert_eq!(v.present["open_conversations"], 1);
        assert!(v.missing.contains_key("last_sentiment"));
        for (name, _, _) in FEATURES {
            assert!(
                v.present.contains_key(*name) ^ v.missing.contains_key(*name),
                "{name} is either present or missing"
            );
        }
    }

    #[test]
    fn a_customer_without_events_has_missing_tenure() {
        let p = profile(None);
        let v = compute(&Inputs {
            profile: &p,
            activity: &[],
            conversations: &[],
            last_sentiment: Some(-0.5),
            now: Utc::now(),
        });
        assert!(v.missing.contains_key("tenure_days"));
        assert!(v.missing.contains_key("days_since_last_order"));
        assert_eq!(v.present["last_sentiment"], -0.5);
    }
}
