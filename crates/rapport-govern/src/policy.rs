//! Human oversight: the policy file that names high-stakes actions, and the approval steps a
//! held action needs before it may run.
//!
//! A policy is a TOML file of rules. Each rule names the action kinds it covers (exact, or a
//! prefix ending in `*`) and, optionally, a condition over the action and the customer; an
//! action any rule matches waits for approval. Conditions are expressions in the `evalexpr`
//! language (a maintained crate: comparison, `&&`, `||`, `!`, arithmetic, string equality),
//! over these variables:
//!
//! | variable | value |
//! |---|---|
//! | `amount` | the action's amount (refunds, credits, offers with a value) |
//! | `percent` | a discount's percentage |
//! | `currency`, `channel`, `kind` | strings |
//! | `vulnerable` | whether the customer's `vulnerable` trait is true |
//! | `trait.NAME` | any trait of the customer (numbers, strings, booleans) |
//!
//! ```toml
//! default_expiry = "48h"
//!
//! [[rule]]
//! name = "refund_over_100"
//! actions = ["refund", "credit"]
//! when = "amount > 100"
//!
//! [[rule]]
//! name = "account_closure"
//! actions = ["account.close"]
//! approvers = 2
//! ```
//!
//! A condition that cannot be evaluated for an action (it names `amount` and the action has
//! none) counts as matched: when in doubt, a person looks.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use evalexpr::{ContextWithMutableVariables, HashMapContext, Node, Value as ExprValue};
use rapport_core::{ApprovalDemand, ApprovalStep};
use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

/// The variables a condition may name besides `trait.*`.
const VARIABLES: &[&str] = &[
    "amount",
    "percent",
    "currency",
    "channel",
    "kind",
    "vulnerable",
];

/// One problem in a policy file, with the line it is on (1-based).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A loaded, checked policy.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub actions: Vec<String>,
    pub when: Option<String>,
    condition: Option<Node>,
    pub approvers: u8,
    pub expires_after: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    default_expiry: Option<Spanned<String>>,
    #[serde(default, rename = "rule")]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    actions: Spanned<Vec<String>>,
    when: Option<Spanned<String>>,
    approvers: Option<Spanned<i64>>,
    expires_after: Option<Spanned<String>>,
}

const DEFAULT_EXPIRY: Duration = Duration::from_secs(48 * 3600);

impl Policy {
    /// No rule: nothing is held. The default when no policy file is configured.
    pub fn empty() -> Self {
        Self { rules: Vec::new() }
    }

    /// The policy shipped with the demo and documented in the README.
    pub fn example() -> Self {
        Self::parse(EXAMPLE).expect("the example policy is valid")
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Parses and checks a policy file, reporting every problem found with its line. A
    /// syntax error stops the reading, so it comes alone.
    pub fn parse(text: &str) -> Result<Self, Vec<PolicyError>> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            vec![PolicyError {
                line: e.span().map(|s| line_of(s.start)).unwrap_or(1),
                message: e.message().to_owned(),
            }]
        })?;
        let mut errors = Vec::new();
        let duration =
            |s: &Spanned<String>, errors: &mut Vec<PolicyError>| match humantime::parse_duration(
                s.get_ref(),
            ) {
                Ok(d) if d >= Duration::from_secs(60) => Some(d),
                Ok(_) => {
                    errors.push(PolicyError {
                        line: line_of(s.span().start),
                        message: format!("`{}` is shorter than a minute", s.get_ref()),
                    });
                    None
                }
                Err(e) => {
                    errors.push(PolicyError {
                        line: line_of(s.span().start),
                        message: format!(
                            "`{}` is not a duration ({e}); write e.g. \"24h\" or \"30m\"",
                            s.get_ref()
                        ),
                    });
                    None
                }
            };
        let default_expiry = raw
            .default_expiry
            .as_ref()
            .and_then(|s| duration(s, &mut errors))
            .unwrap_or(DEFAULT_EXPIRY);
        let mut names = BTreeSet::new();
        let mut rules = Vec::new();
        for spanned in &raw.rules {
            let r = spanned.get_ref();
            let before = errors.len();
            let name = r.name.get_ref().trim().to_owned();
            let at = |s: std::ops::Range<usize>| line_of(s.start);
            if name.is_empty() {
                errors.push(PolicyError {
                    line: at(r.name.span()),
                    message: "a rule needs a name".into(),
                });
            } else if !names.insert(name.clone()) {
                errors.push(PolicyError {
                    line: at(r.name.span()),
                    message: format!("rule `{name}` is defined twice"),
                });
            }
            if r.actions.get_ref().is_empty() {
                errors.push(PolicyError {
                    line: at(r.actions.span()),
                    message: format!("rule `{name}` names no actions"),
                });
            }
            for a in r.actions.get_ref() {
                let body = a.strip_suffix('*').unwrap_or(a);
                let ok = !a.is_empty()
                    && body
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._".contains(c))
                    && !body.contains('*');
                if !ok {
                    errors.push(PolicyError {
                        line: at(r.actions.span()),
                        message: format!(
                            "`{a}` is not an action kind or prefix (lowercase, dots, an optional * at the end)"
                        ),
                    });
                }
            }
            let approvers = match &r.approvers {
                None => 1,
                Some(n) if matches!(n.get_ref(), 1 | 2) => *n.get_ref() as u8,
                Some(n) => {
                    errors.push(PolicyError {
                        line: at(n.span()),
                        message: format!("approvers must be 1 or 2, not {}", n.get_ref()),
                    });
                    1
                }
            };
            let expires_after = r
                .expires_after
                .as_ref()
                .and_then(|s| duration(s, &mut errors))
                .unwrap_or(default_expiry);
            let condition = match &r.when {
                None => None,
                Some(w) => match evalexpr::build_operator_tree(w.get_ref()) {
                    Err(e) => {
                        errors.push(PolicyError {
                            line: at(w.span()),
                            message: format!("condition `{}` does not parse: {e}", w.get_ref()),
                        });
                        None
                    }
                    Ok(node) => {
                        // The parser accepts some incomplete expressions (`amount >`) that
                        // would only fail when evaluated; catch them now.
                        if let Some(problem) = rapport_core::condition::shape_problem(&node) {
                            errors.push(PolicyError {
                                line: at(w.span()),
                                message: format!("condition `{}` {problem}", w.get_ref()),
                            });
                        }
                        for v in node.iter_variable_identifiers() {
                            let known = VARIABLES.contains(&v)
                                || v.strip_prefix("trait.").is_some_and(|t| !t.is_empty());
                            if !known {
                                errors.push(PolicyError {
                                    line: at(w.span()),
                                    message: format!(
                                        "condition names `{v}`, which is not one of {} or trait.NAME",
                                        VARIABLES.join(", ")
                                    ),
                                });
                            }
                        }
                        if let Some(f) = node.iter_function_identifiers().next() {
                            errors.push(PolicyError {
                                line: at(w.span()),
                                message: format!("conditions may not call functions (`{f}`)"),
                            });
                        }
                        Some(node)
                    }
                },
            };
            if errors.len() == before {
                rules.push(Rule {
                    name,
                    actions: r.actions.get_ref().clone(),
                    when: r.when.as_ref().map(|w| w.get_ref().clone()),
                    condition,
                    approvers,
                    expires_after,
                });
            }
        }
        if errors.is_empty() {
            Ok(Self { rules })
        } else {
            Err(errors)
        }
    }

    /// The rules that hold this action, if any.
    pub fn assess(&self, subject: &Subject<'_>) -> Assessment {
        let mut context = HashMapContext::new();
        let mut set = |k: &str, v: ExprValue| {
            // Only fails for a type change of an existing variable, which cannot happen on
            // a fresh context.
            let _ = context.set_value(k.to_owned(), v);
        };
        set("kind", ExprValue::String(subject.kind.to_owned()));
        set("vulnerable", ExprValue::Boolean(subject.vulnerable()));
        for (key, value) in subject.params {
            if let Some(v) = to_expr(value) {
                let v = match (key.as_str(), v) {
                    // Numbers compare as floats, so `amount > 100` holds for 100.5 and 150.
                    ("amount" | "percent", ExprValue::Int(i)) => ExprValue::Float(i as f64),
                    (_, v) => v,
                };
                if VARIABLES.contains(&key.as_str()) && key != "kind" && key != "vulnerable" {
                    set(key, v);
                }
            }
        }
        for (key, value) in subject.traits {
            if let Some(v) = to_expr(value) {
                set(&format!("trait.{key}"), v);
            }
        }
        let mut held = Vec::new();
        for rule in &self.rules {
            if !rule.covers(subject.kind) {
                continue;
            }
            let verdict = match &rule.condition {
                None => Ok(true),
                Some(node) => node.eval_boolean_with_context(&context),
            };
            match verdict {
                Ok(true) => held.push(Hold {
                    rule: rule.name.clone(),
                    approvers: rule.approvers,
                    expires_after: rule.expires_after,
                    note: None,
                }),
                Ok(false) => {}
                Err(e) => held.push(Hold {
                    rule: rule.name.clone(),
                    approvers: rule.approvers,
                    expires_after: rule.expires_after,
                    note: Some(format!(
                        "condition could not be evaluated ({e}), so it is held"
                    )),
                }),
            }
        }
        Assessment { held }
    }
}

/// Two policies are equal when their rules read the same.
impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        let key = |r: &Rule| {
            (
                r.name.clone(),
                r.actions.clone(),
                r.when.clone(),
                r.approvers,
                r.expires_after,
            )
        };
        self.rules.len() == other.rules.len()
            && self
                .rules
                .iter()
                .zip(&other.rules)
                .all(|(a, b)| key(a) == key(b))
    }
}

impl Rule {
    fn covers(&self, kind: &str) -> bool {
        self.actions.iter().any(|a| match a.strip_suffix('*') {
            Some(prefix) => kind.starts_with(prefix),
            None => a == kind,
        })
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

/// What a policy is asked about: one action for one customer.
pub struct Subject<'a> {
    pub kind: &'a str,
    pub params: &'a Map<String, Value>,
    pub traits: &'a Map<String, Value>,
}

impl Subject<'_> {
    fn vulnerable(&self) -> bool {
        match self.traits.get("vulnerable") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "true" | "yes"),
            _ => false,
        }
    }
}

/// One rule holding an action.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hold {
    pub rule: String,
    pub approvers: u8,
    #[serde(skip)]
    pub expires_after: Duration,
    pub note: Option<String>,
}

/// The policy's answer for one action.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub held: Vec<Hold>,
}

impl Assessment {
    pub fn is_high_stakes(&self) -> bool {
        !self.held.is_empty()
    }

    /// The approval the action waits for: the strictest of the rules that hold it (most
    /// approvers, soonest expiry). `None` when nothing holds it.
    pub fn demand(&self, now: DateTime<Utc>) -> Option<ApprovalDemand> {
        let approvers = self.held.iter().map(|h| h.approvers).max()?;
        let expiry = self.held.iter().map(|h| h.expires_after).min()?;
        Some(ApprovalDemand {
            rules: self.held.iter().map(|h| h.rule.clone()).collect(),
            approvers_needed: approvers,
            expires_at: now
                + chrono::Duration::from_std(expiry).unwrap_or(chrono::Duration::zero()),
            steps: Vec::new(),
        })
    }
}

/// Why an approver's answer was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("the approval window closed at {0}")]
    Expired(DateTime<Utc>),
    #[error("whoever asked for an action may not approve it")]
    OwnRequest,
    #[error("this approver has already answered")]
    AlreadyAnswered,
}

impl ApprovalError {
    pub fn code(&self) -> &'static str {
        match self {
            ApprovalError::Expired(_) => "approval_expired",
            ApprovalError::OwnRequest => "own_request",
            ApprovalError::AlreadyAnswered => "already_answered",
        }
    }
}

/// Where a held action stands after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More approvers are needed.
    Waiting { approvals: u8, needed: u8 },
    /// Enough approvers said yes: the action may run.
    Approved,
    /// An approver said no: the action never runs.
    Rejected,
}

/// Records one approver's answer. A single rejection ends it; approvals count once per
/// approver; the requester cannot approve their own request; nothing is taken after expiry.
pub fn answer(
    demand: &mut ApprovalDemand,
    requester: &str,
    approver: &str,
    approved: bool,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<Progress, ApprovalError> {
    if now >= demand.expires_at {
        return Err(ApprovalError::Expired(demand.expires_at));
    }
    if approver == requester {
        return Err(ApprovalError::OwnRequest);
    }
    if demand.steps.iter().any(|s| s.approver == approver) {
        return Err(ApprovalError::AlreadyAnswered);
    }
    demand.steps.push(ApprovalStep {
        approver: approver.to_owned(),
        approved,
        note,
        at: now,
    });
    Ok(progress(demand))
}

/// Where a demand stands given its recorded steps.
pub fn progress(demand: &ApprovalDemand) -> Progress {
    if demand.steps.iter().any(|s| !s.approved) {
        return Progress::Rejected;
    }
    let approvals = demand.steps.iter().filter(|s| s.approved).count() as u8;
    if approvals >= demand.approvers_needed {
        Progress::Approved
    } else {
        Progress::Waiting {
            approvals,
            needed: demand.approvers_needed,
        }
    }
}

/// The example policy: refunds and credits over 100, discounts over 20%, account closure (two
/// approvers), and anything for a customer flagged vulnerable.
pub const EXAMPLE: &str = r#"# Rapport oversight policy: actions any rule matches wait for a person's approval.
default_expiry = "48h"

[[rule]]
name = "refund_or_credit_over_100"
actions = ["refund", "credit"]
when = "amount > 100"

[[rule]]
name = "discount_over_20_percent"
actions = ["offer.*"]
when = "percent > 20"

[[rule]]
name = "account_closure"
actions = ["account.close"]
approvers = 2
expires_after = "24h"

[[rule]]
name = "vulnerable_customer"
actions = ["*"]
when = "vulnerable"
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn assess(p: &Policy, kind: &str, params: Value, traits: Value) -> Vec<String> {
        let (params, traits) = (map(params), map(traits));
        p.assess(&Subject {
            kind,
            params: &params,
            traits: &traits,
        })
        .held
        .into_iter()
        .map(|h| h.rule)
        .collect()
    }

    #[test]
    fn the_example_holds_what_it_says() {
        let p = Policy::example();
        assert!(assess(&p, "refund", json!({"amount": 50}), json!({})).is_empty());
        assert_eq!(
            assess(&p, "refund", json!({"amount": 150.5}), json!({})),
            ["refund_or_credit_over_100"]
        );
        assert!(assess(&p, "offer.retention", json!({"percent": 20}), json!({})).is_empty());
        assert_eq!(
            assess(&p, "offer.retention", json!({"percent": 25}), json!({})),
            ["discount_over_20_percent"]
        );
        assert_eq!(
            assess(&p, "account.close", json!({}), json!({})),
            ["account_closure"]
        );
        assert_eq!(
            assess(
                &p,
                "message.service",
                json!({}),
                json!({"vulnerable": true})
            ),
            ["vulnerable_customer"]
        );
        // No amount on a refund: the condition cannot be evaluated, so a person looks.
        assert_eq!(
            assess(&p, "refund", json!({}), json!({})),
            ["refund_or_credit_over_100"]
        );
    }

    #[test]
    fn trait_conditions_and_demands() {
        let p = Policy::parse(
            r#"
[[rule]]
name = "enterprise"
actions = ["credit"]
when = "trait.plan == \"enterprise\" && amount >= 10"
approvers = 2
expires_after = "2h"
"#,
        )
        .unwrap();
        assert_eq!(
            assess(
                &p,
                "credit",
                json!({"amount": 10}),
                json!({"plan": "enterprise"})
            ),
            ["enterprise"]
        );
        assert!(assess(
            &p,
            "credit",
            json!({"amount": 10}),
            json!({"plan": "basic"})
        )
        .is_empty());
        let (params, traits) = (
            map(json!({"amount": 10})),
            map(json!({"plan": "enterprise"})),
        );
        let now = Utc::now();
        let d = p
            .assess(&Subject {
                kind: "credit",
                params: &params,
                traits: &traits,
            })
            .demand(now)
            .unwrap();
        assert_eq!(d.approvers_needed, 2);
        assert_eq!(d.expires_at, now + chrono::Duration::hours(2));
    }

    #[test]
    fn every_error_is_reported_with_its_line() {
        let text = r#"default_expiry = "soon"

[[rule]]
name = "a"
actions = ["refund"]
when = "amount >"

[[rule]]
name = "a"
actions = ["Refund!"]
approvers = 3

[[rule]]
name = "b"
actions = ["credit"]
when = "balance > 3"
"#;
        let errs = Policy::parse(text).unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 6, 9, 10, 11, 16], "{errs:#?}");
        assert!(errs[5].message.contains("`balance`"), "{}", errs[5]);

        let syntax = Policy::parse("[[rule]]\nname = \"x\"\nactions = [\n").unwrap_err();
        assert_eq!(syntax.len(), 1);
        assert!(syntax[0].line >= 3, "{syntax:?}");
        let unknown =
            Policy::parse("[[rule]]\nname = \"x\"\nactions = [\"a\"]\nwhom = 1\n").unwrap_err();
        assert!(unknown[0].message.contains("whom"), "{unknown:?}");
    }

    #[test]
    fn approvals_need_distinct_approvers_and_stop_at_a_no() {
        let now = Utc::now();
        let mut d = ApprovalDemand {
            rules: vec!["r".into()],
            approvers_needed: 2,
            expires_at: now + chrono::Duration::hours(1),
            steps: vec![],
        };
        assert_eq!(
            answer(&mut d, "user:a", "user:a", true, None, now),
            Err(ApprovalError::OwnRequest)
        );
        assert_eq!(
            answer(&mut d, "user:a", "user:b", true, None, now),
            Ok(Progress::Waiting {
                approvals: 1,
                needed: 2
            })
        );
        assert_eq!(
            answer(&mut d, "user:a", "user:b", true, None, now),
            Err(ApprovalError::AlreadyAnswered)
        );
        assert_eq!(
            answer(&mut d, "user:a", "user:c", true, None, now),
            Ok(Progress::Approved)
        );

        let mut r = ApprovalDemand {
            steps: vec![],
            ..d.clone()
        };
        assert_eq!(
            answer(&mut r, "user:a", "user:b", false, Some("no".into()), now),
            Ok(Progress::Rejected)
        );
        let mut late = ApprovalDemand { steps: vec![], ..d };
        let after = late.expires_at;
        assert_eq!(
            answer(&mut late, "user:a", "user:b", true, None, after),
            Err(ApprovalError::Expired(after))
        );
    }
}
