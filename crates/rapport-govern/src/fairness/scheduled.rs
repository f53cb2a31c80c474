//! Fairness audits of stored decisions, run on a schedule: which decisions, grouped by which
//! customer traits, how often, over what window, and the limits that raise an alert.
//!
//! A decision's outcome for the audit is whether it was carried out (`1`) or not (`0`:
//! refused by consent or a contact rule, rejected by an approver, or left to expire); pending
//! decisions are not counted yet. The selection rate of a group is then the share of its
//! decisions that reached the customer, so a retention offer carried out for 60% of one age
//! band and 20% of another shows as a demographic parity difference of 0.4.

use std::time::Duration;

use rapport_core::{DecisionRecord, DecisionStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::{Row, Thresholds, Value};

/// The group value of a customer without the trait.
pub const MISSING_GROUP: &str = "(missing)";

/// One scheduled audit, as configured (`[[governance.fairness_audits]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledAudit {
    /// A short name, unique among the audits: it names the audit in reports and alerts.
    pub name: String,
    /// The decision kinds audited, exact or a prefix ending in `*` (`offer.*`).
    pub decision_kinds: Vec<String>,
    /// Customer traits to group by (each alone and all together).
    pub groups: Vec<String>,
    /// How often it runs, e.g. `"1h"`.
    #[serde(default = "default_every", with = "humantime_serde_str")]
    pub every: Duration,
    /// How far back decisions are read, e.g. `"30d"`.
    #[serde(default = "default_window", with = "humantime_serde_str")]
    pub window: Duration,
    /// Fewer decided decisions than this and the audit says so instead of reporting noise.
    #[serde(default = "default_min_rows")]
    pub min_rows: usize,
    /// The limits; any crossed raises an alert.
    #[serde(default)]
    pub thresholds: Thresholds,
}

fn default_every() -> Duration {
    Duration::from_secs(3600)
}

fn default_window() -> Duration {
    Duration::from_secs(30 * 86_400)
}

fn default_min_rows() -> usize {
    30
}

/// Durations written as humans do (`90s`, `1h`, `30d`), in configuration files.
mod humantime_serde_str {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

impl ScheduledAudit {
    /// Every problem with this audit's settings.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let name = &self.name;
        if name.trim().is_empty() {
            out.push("a fairness audit needs a name".to_owned());
        }
        if self.decision_kinds.is_empty() {
            out.push(format!("fairness audit {name:?}: decision_kinds is empty"));
        }
        if self.groups.is_empty() {
            out.push(format!("fairness audit {name:?}: groups is empty"));
        }
        if self.every < Duration::from_secs(60) {
            out.push(format!(
                "fairness audit {name:?}: every must be at least 1m"
            ));
        }
        if self.window.is_zero() {
            out.push(format!("fairness audit {name:?}: window must not be zero"));
        }
        if self.min_rows == 0 {
            out.push(format!(
                "fairness audit {name:?}: min_rows must be at least 1"
            ));
        }
        if let Err(e) = self.thresholds.validate() {
            out.push(format!("fairness audit {name:?}: {e}"));
        }
        if self.thresholds.limits().is_empty() {
            out.push(format!(
                "fairness audit {name:?}: no threshold is set, so it could never raise an alert"
            ));
        }
        out
    }

    /// Whether decisions of `kind` are audited here.
    pub fn covers(&self, kind: &str) -> bool {
        self.decision_kinds
            .iter()
            .any(|k| match k.strip_suffix('*') {
                Some(prefix) => kind.starts_with(prefix),
                None => k == kind,
            })
    }

    /// The audit row of one decision, with its customer's traits; `None` when the decision
    /// is of another kind or still pending.
    pub fn row(&self, decision: &DecisionRecord, traits: &Map<String, Json>) -> Option<Row> {
        if !self.covers(&decision.kind) {
            return None;
        }
        let carried_out = match decision.status {
            DecisionStatus::PendingApproval => return None,
            DecisionStatus::Executed => 1.0,
            DecisionStatus::Refused | DecisionStatus::Rejected | DecisionStatus::Expired => 0.0,
        };
        Some(Row {
            groups: self
                .groups
                .iter()
                .map(|g| group_value(traits.get(g)))
                .collect(),
            prediction: Value::Number(carried_out),
            label: None,
            score: None,
        })
    }
}

fn group_value(v: Option<&Json>) -> String {
    match v {
        None | Some(Json::Null) => MISSING_GROUP.to_owned(),
        Some(Json::String(s)) if s.trim().is_empty() => MISSING_GROUP.to_owned(),
        Some(Json::String(s)) => s.trim().to_owned(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use rapport_core::ProfileId;
    use serde_json::json;

    fn audit() -> ScheduledAudit {
        toml::from_str(
            r#"
            name = "offers-by-age"
            decision_kinds = ["offer.*", "refund"]
            groups = ["age_band"]
            every = "6h"
            [thresholds]
            max_demographic_parity_difference = 0.2
            "#,
        )
        .expect("parses")
    }

    fn decision(kind: &str, status: DecisionStatus) -> DecisionRecord {
        DecisionRecord {
            id: "dec_1".into(),
            profile_id: ProfileId::from_trusted("prof_1".into()),
            kind: kind.into(),
            params: json!({}),
            status,
            explanation: String::new(),
            reasons: vec![],
            automated: true,
            requested_by: "system".into(),
            conversation_id: None,
            refusal: None,
            approval: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            version: 1,
        }
    }

    #[test]
    fn settings_parse_with_defaults_and_are_checked() {
        let a = audit();
        assert_eq!(a.every, Duration::from_secs(6 * 3600));
        assert_eq!(a.window, Duration::from_secs(30 * 86_400));
        assert_eq!(a.min_rows, 30);
        assert!(a.problems().is_empty(), "{:?}", a.problems());
        let mut bad = a.clone();
        bad.groups.clear();
        bad.every = Duration::from_secs(5);
        bad.thresholds = Thresholds::default();
        let p = bad.problems();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(toml::from_str::<ScheduledAudit>(
            "name = \"x\"\ndecision_kinds = []\ngroups = []\ncolour = 1"
        )
        .is_err());
    }

    #[test]
    fn rows_say_whether_the_decision_reached_the_customer() {
        let a = audit();
        let traits = json!({"age_band": "18-24"});
        let traits = traits.as_object().unwrap();
        let row = a
            .row(
                &decision("offer.retention", DecisionStatus::Executed),
                traits,
            )
            .expect("covered");
        assert_eq!(row.groups, ["18-24"]);
        assert_eq!(row.prediction, Value::Number(1.0));
        for s in [
            DecisionStatus::Refused,
            DecisionStatus::Rejected,
            DecisionStatus::Expired,
        ] {
            let r = a.row(&decision("refund", s), traits).expect("covered");
            assert_eq!(r.prediction, Value::Number(0.0));
        }
        assert!(a
            .row(
                &decision("offer.retention", DecisionStatus::PendingApproval),
                traits
            )
            .is_none());
        assert!(a
            .row(
                &decision("message.service", DecisionStatus::Executed),
                traits
            )
            .is_none());
        let none = Map::new();
        let r = a
            .row(&decision("offer.upsell", DecisionStatus::Executed), &none)
            .expect("covered");
        assert_eq!(r.groups, [MISSING_GROUP]);
    }
}
