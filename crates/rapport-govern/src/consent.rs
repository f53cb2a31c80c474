//! Consent per purpose, and the gate every outbound action passes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rapport_core::{
    Actor, AuditEntry, ConsentRecord, ConsentState, ProfileId, Purpose, WorkspaceId,
};
use serde::Serialize;
use serde_json::json;

/// The purposes a workspace asks consent for, with what each means to a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurposeRegistry {
    purposes: BTreeMap<Purpose, String>,
}

/// Why a purpose list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "`{0}` is not a purpose name (lowercase letters, digits and _, starting with a letter)"
    )]
    BadName(String),
    #[error("purpose `{0}` is listed twice")]
    Duplicate(String),
    #[error("at least one purpose is needed")]
    Empty,
}

impl PurposeRegistry {
    /// The purposes Rapport knows out of the box.
    pub fn standard() -> Self {
        Self::new([
            ("marketing_email", "Marketing messages by email"),
            ("marketing_sms", "Marketing messages by text message"),
            (
                "personalization",
                "Tailoring what we show and offer to your activity",
            ),
            (
                "profiling",
                "Automated predictions about you, such as the chance you leave",
            ),
            ("analytics", "Measuring how our service is used"),
        ])
        .expect("the standard purposes are valid")
    }

    pub fn new<'a>(
        list: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<RegistryError>> {
        let mut purposes = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, description) in list {
            match Purpose::parse(name) {
                None => errors.push(RegistryError::BadName(name.to_owned())),
                Some(p) if purposes.contains_key(&p) => {
                    errors.push(RegistryError::Duplicate(name.to_owned()))
                }
                Some(p) => {
                    purposes.insert(p, description.to_owned());
                }
            }
        }
        if purposes.is_empty() && errors.is_empty() {
            errors.push(RegistryError::Empty);
        }
        if errors.is_empty() {
            Ok(Self { purposes })
        } else {
            Err(errors)
        }
    }

    /// The purpose of this name, if the workspace knows it.
    pub fn get(&self, name: &str) -> Option<&Purpose> {
        self.purposes
            .get_key_value(&Purpose::parse(name)?)
            .map(|(k, _)| k)
    }

    /// The known purpose a Segment consent category names ("Marketing Email" →
    /// `marketing_email`).
    pub fn from_category(&self, category: &str) -> Option<&Purpose> {
        let p = Purpose::from_category(category)?;
        self.purposes.get_key_value(&p).map(|(k, _)| k)
    }

    pub fn describe(&self, p: &Purpose) -> Option<&str> {
        self.purposes.get(p).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Purpose, &str)> {
        self.purposes.iter().map(|(p, d)| (p, d.as_str()))
    }

    pub fn names(&self) -> Vec<&str> {
        self.purposes.keys().map(Purpose::as_str).collect()
    }
}

/// Where a customer stands on every purpose: the latest decision per purpose wins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConsentLedger {
    current: BTreeMap<Purpose, (ConsentState, DateTime<Utc>)>,
}

impl ConsentLedger {
    /// Builds the ledger from a consent history in any order.
    pub fn from_history(records: &[ConsentRecord]) -> Self {
        let mut current: BTreeMap<Purpose, (ConsentState, DateTime<Utc>)> = BTreeMap::new();
        for r in records {
            match current.get(&r.purpose) {
                Some((_, at)) if *at > r.at => {}
                _ => {
                    current.insert(r.purpose.clone(), (r.state, r.at));
                }
            }
        }
        Self { current }
    }

    /// The decision in force, or `None` when the customer was never asked.
    pub fn state(&self, p: &Purpose) -> Option<ConsentState> {
        self.current.get(p).map(|(s, _)| *s)
    }

    pub fn granted(&self, p: &Purpose) -> bool {
        self.state(p) == Some(ConsentState::Granted)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Purpose, ConsentState, DateTime<Utc>)> {
        self.current.iter().map(|(p, (s, at))| (p, *s, *at))
    }
}

/// Something Rapport would do to or about a customer that personal-data rules govern:
/// a message, an offer, a prediction, a webhook carrying their data.
pub trait Action {
    /// A short stable name, such as `email.marketing` or `offer.retention`.
    fn kind(&self) -> &str;
    /// The purposes the customer must have granted, all of them.
    fn purposes(&self) -> Vec<Purpose>;
}

/// An action the gate let through. Only [`Gate::check`] makes one, so a dispatcher that takes
/// `Permitted<A>` cannot be handed an unchecked action.
#[derive(Debug)]
pub struct Permitted<A> {
    action: A,
    profile: ProfileId,
}

impl<A> Permitted<A> {
    pub fn action(&self) -> &A {
        &self.action
    }

    pub fn profile(&self) -> &ProfileId {
        &self.profile
    }

    /// Hands the action to the dispatcher that sends it.
    pub fn into_inner(self) -> A {
        self.action
    }
}

/// Why an action was not let through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub action: String,
    pub profile: ProfileId,
    pub purpose: Purpose,
    /// Where the customer stands on it: `never_asked`, `denied` or `withdrawn`.
    pub standing: &'static str,
    /// For people: "marketing_email was withdrawn".
    pub reason: String,
}

impl Refusal {
    /// The audit record of the refusal: ids and codes only.
    pub fn audit_entry(&self, workspace: &WorkspaceId, actor: Actor) -> AuditEntry {
        AuditEntry::new(
            Some(workspace.clone()),
            actor,
            "action.refused",
            Some(self.profile.as_str().to_owned()),
            json!({"action": self.action, "purpose": self.purpose.as_str(), "standing": self.standing}),
        )
    }
}

/// The one place outbound actions are checked against consent.
#[derive(Debug, Clone)]
pub struct Gate {
    registry: PurposeRegistry,
}

impl Gate {
    pub fn new(registry: PurposeRegistry) -> Self {
        Self { registry }
    }

    pub fn registry(&self) -> &PurposeRegistry {
        &self.registry
    }

    /// Lets `action` through only if the customer has granted every purpose it needs. A
    /// purpose the workspace does not know is never granted, so a misconfigured action is
    /// refused rather than sent.
    pub fn check<A: Action>(
        &self,
        profile: &ProfileId,
        ledger: &ConsentLedger,
        action: A,
    ) -> Result<Permitted<A>, Refusal> {
        for purpose in action.purposes() {
            let standing = if self.registry.describe(&purpose).is_none() {
                Some("unknown_purpose")
            } else {
                match ledger.state(&purpose) {
                    Some(ConsentState::Granted) => None,
                    Some(ConsentState::Denied) => Some("denied"),
                    Some(ConsentState::Withdrawn) => Some("withdrawn"),
                    None => Some("never_asked"),
                }
            };
            if let Some(standing) = standing {
                let reason = match standing {
                    "never_asked" => format!("no consent for {purpose} was given"),
                    "unknown_purpose" => format!("{purpose} is not a purpose of this workspace"),
                    s => format!("consent for {purpose} was {s}"),
                };
                return Err(Refusal {
                    action: action.kind().to_owned(),
                    profile: profile.clone(),
                    purpose,
                    standing,
                    reason,
                });
            }
        }
        Ok(Permitted {
            action,
            profile: profile.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[derive(Debug)]
    struct Mail;
    impl Action for Mail {
        fn kind(&self) -> &str {
            "email.marketing"
        }
        fn purposes(&self) -> Vec<Purpose> {
            vec![Purpose::parse("marketing_email").unwrap()]
        }
    }

    #[derive(Debug)]
    struct Custom(&'static str);
    impl Action for Custom {
        fn kind(&self) -> &str {
            "custom"
        }
        fn purposes(&self) -> Vec<Purpose> {
            vec![Purpose::parse(self.0).unwrap()]
        }
    }

    fn rec(p: &str, state: ConsentState, mins: i64) -> ConsentRecord {
        let at = DateTime::<Utc>::UNIX_EPOCH + Duration::minutes(mins);
        ConsentRecord {
            profile_id: ProfileId::from_trusted("prof_x".into()),
            purpose: Purpose::parse(p).unwrap(),
            state,
            source: "api".into(),
            at,
            recorded_at: at,
        }
    }

    #[test]
    fn the_latest_decision_is_in_force_whatever_the_order() {
        let history = [
            rec("marketing_email", ConsentState::Withdrawn, 20),
            rec("marketing_email", ConsentState::Granted, 10),
        ];
        let ledger = ConsentLedger::from_history(&history);
        assert_eq!(
            ledger.state(&Purpose::parse("marketing_email").unwrap()),
            Some(ConsentState::Withdrawn)
        );
    }

    #[test]
    fn the_gate_lets_through_only_what_was_granted() {
        let gate = Gate::new(PurposeRegistry::standard());
        let who = ProfileId::from_trusted("prof_x".into());
        let granted =
            ConsentLedger::from_history(&[rec("marketing_email", ConsentState::Granted, 1)]);
        let ok = gate.check(&who, &granted, Mail).expect("granted");
        assert_eq!(ok.action().kind(), "email.marketing");

        let never = gate
            .check(&who, &ConsentLedger::default(), Mail)
            .unwrap_err();
        assert_eq!(never.standing, "never_asked");
        let withdrawn = ConsentLedger::from_history(&[
            rec("marketing_email", ConsentState::Granted, 1),
            rec("marketing_email", ConsentState::Withdrawn, 2),
        ]);
        let r = gate.check(&who, &withdrawn, Mail).unwrap_err();
        assert_eq!(r.standing, "withdrawn");
        assert_eq!(r.reason, "consent for marketing_email was withdrawn");
        let entry = r.audit_entry(&WorkspaceId::generate(), Actor::System);
        assert_eq!(entry.action, "action.refused");
        assert_eq!(entry.subject.as_deref(), Some("prof_x"));

        let odd = ConsentLedger::from_history(&[rec("carrier_pigeon", ConsentState::Granted, 1)]);
        let r = gate
            .check(&who, &odd, Custom("carrier_pigeon"))
            .unwrap_err();
        assert_eq!(
            r.standing, "unknown_purpose",
            "granted but unknown is refused"
        );
    }

    #[test]
    fn registries_report_every_problem() {
        let errs = PurposeRegistry::new([("Bad Name", ""), ("ok", ""), ("ok", "")]).unwrap_err();
        assert_eq!(errs.len(), 2);
        let reg = PurposeRegistry::standard();
        assert_eq!(
            reg.from_category("Marketing Email").map(Purpose::as_str),
            Some("marketing_email")
        );
        assert!(reg.from_category("Advertising").is_none());
        assert!(reg.get("profiling").is_some());
    }
}
