//! The action catalog: the actions next-best-action chooses from, the rules that make each
//! one eligible, applicable and suitable, the business levers, the contact policy and the
//! control group. Loaded from TOML; every problem is reported at once with its line. The
//! format is documented with examples in `docs/next-best-action.md`.
//!
//! Rules are expressions in the `evalexpr` language (the same maintained crate the oversight
//! policy uses: comparisons, `&&`, `||`, `!`, arithmetic, string equality) over the names the
//! catalog declares: the traits it reads (`[traits]`), the decision-time features
//! ([`super::features::FEATURES`]) and the request context (`context.NAME`, declared in
//! `[context]`). A rule that names anything else is refused on load.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use evalexpr::Node;
use rapport_core::Purpose;
use serde::Deserialize;
use toml::Spanned;

use super::features::FEATURES;

/// What an action is for. The kind decides the decision kind it is stored as and the consent
/// it needs by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// An offer to keep a customer who may leave.
    Retention,
    /// Putting right something that went wrong (an apology, a credit, a call back).
    ServiceRecovery,
    /// Helping a customer use what they have (a how-to, a tip).
    Education,
    /// An offer of more or better.
    Upsell,
    /// Doing nothing: actions ranked below it are not worth the contact.
    DoNothing,
}

impl ActionKind {
    pub const ALL: [ActionKind; 5] = [
        ActionKind::Retention,
        ActionKind::ServiceRecovery,
        ActionKind::Education,
        ActionKind::Upsell,
        ActionKind::DoNothing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Retention => "retention",
            ActionKind::ServiceRecovery => "service_recovery",
            ActionKind::Education => "education",
            ActionKind::Upsell => "upsell",
            ActionKind::DoNothing => "do_nothing",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// The kind of the decision record an offered action becomes.
    pub fn decision_kind(self) -> &'static str {
        match self {
            ActionKind::Retention => "nba.retention",
            ActionKind::ServiceRecovery => "nba.service_recovery",
            ActionKind::Education => "nba.education",
            ActionKind::Upsell => "nba.upsell",
            ActionKind::DoNothing => "nba.do_nothing",
        }
    }

    /// Whether it promotes something: promotional actions need the customer's
    /// personalization consent and, on email or SMS, marketing consent for that channel.
    pub fn promotional(self) -> bool {
        matches!(
            self,
            ActionKind::Retention | ActionKind::Education | ActionKind::Upsell
        )
    }
}

/// The type of a declared trait or context value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    String,
    Number,
    Bool,
}

impl ValueType {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "string" => Some(ValueType::String),
            "number" => Some(ValueType::Number),
            "bool" => Some(ValueType::Bool),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Number => "number",
            ValueType::Bool => "bool",
        }
    }
}

/// One condition of the catalog, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// As written in the catalog.
    pub text: String,
    pub line: usize,
    pub(crate) node: Node,
    /// The names it reads, so a missing value can be said by name.
    pub(crate) names: Vec<String>,
    /// The same number for every rule of the catalog with the same text, from 0: a request
    /// checks each distinct condition once and finds its outcome by this number.
    pub(crate) key: usize,
}

/// A context weight: when the condition holds, the action's priority is multiplied by
/// `factor`.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    pub rule: Rule,
    pub factor: f64,
}

/// One action of the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogAction {
    /// Stable id, the key propensities and contact history are kept under.
    pub id: String,
    pub kind: ActionKind,
    /// What the customer is offered, in their words ("20% off for six months").
    pub title: String,
    /// The channels it can be offered on; empty means every channel.
    pub channels: Vec<String>,
    /// The consent purposes it needs (all of them), besides the channel's marketing consent
    /// for promotional actions on email and SMS.
    pub purposes: Vec<Purpose>,
    /// What it is worth to the business when accepted, in any consistent unit.
    pub value: f64,
    /// The business lever it serves (a key of `[levers]`).
    pub lever: String,
    /// The Beta prior of its propensity: (successes + alpha, failures + beta).
    pub prior: (f64, f64),
    /// Whether the customer may have it at all (product rules).
    pub eligibility: Vec<Rule>,
    /// Whether it fits the situation (the customer's need now).
    pub applicability: Vec<Rule>,
    /// Whether it is right for this customer (fair, affordable, not harmful).
    pub suitability: Vec<Rule>,
    pub weights: Vec<Weight>,
    /// Plain words for the customer: why this is offered ("you have been with us for years").
    pub because: String,
    pub line: usize,
}

impl CatalogAction {
    /// Whether it may be offered on `channel`.
    pub fn on_channel(&self, channel: &str) -> bool {
        self.channels.is_empty() || self.channels.iter().any(|c| c == channel)
    }

    /// Every consent purpose offering it on `channel` needs.
    pub fn purposes_on(&self, channel: &str) -> Vec<Purpose> {
        let mut out = self.purposes.clone();
        if self.kind.promotional() {
            let marketing = match channel {
                "email" => Purpose::parse("marketing_email"),
                "sms" => Purpose::parse("marketing_sms"),
                _ => None,
            };
            out.extend(marketing.filter(|m| !self.purposes.contains(m)));
        }
        out
    }
}

/// A cap on contacts on one channel (or every channel, `*`) within a sliding period.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactCap {
    pub channel: String,
    pub max: u32,
    pub period: Duration,
    /// As written ("7d").
    pub period_text: String,
}

/// How often a customer may be contacted, and when an action stops being offered to them.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactPolicy {
    pub caps: Vec<ContactCap>,
    /// After this many rejections of an action by a customer, it is no longer offered to them
    /// (within `suppression_period`). `None` never suppresses.
    pub suppress_after_rejections: Option<u32>,
    pub suppression_period: Duration,
}

impl Default for ContactPolicy {
    fn default() -> Self {
        Self {
            caps: Vec::new(),
            suppress_after_rejections: Some(3),
            suppression_period: Duration::days(90),
        }
    }
}

impl ContactPolicy {
    /// How far back the contact history must reach for this policy.
    pub fn lookback(&self) -> Duration {
        self.caps
            .iter()
            .map(|c| c.period)
            .chain([self.suppression_period])
            .max()
            .unwrap_or(Duration::zero())
    }
}

/// What customers in the control group get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlMode {
    /// Nothing: they are the baseline that shows what the actions add.
    Nothing,
    /// One eligible action picked at random, ignoring the ranking: shows what the ranking
    /// adds.
    Random,
}

/// A random share of customers, the same customers every time, who are not arbitrated.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlGroup {
    /// Between 0 and 0.5.
    pub rate: f64,
    pub mode: ControlMode,
    /// Changes which customers fall in the group.
    pub salt: String,
}

impl Default for ControlGroup {
    fn default() -> Self {
        Self {
            rate: 0.02,
            mode: ControlMode::Nothing,
            salt: "rapport-nba".into(),
        }
    }
}

/// The loaded catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    pub actions: Vec<CatalogAction>,
    pub traits: BTreeMap<String, ValueType>,
    pub context: BTreeMap<String, ValueType>,
    pub levers: BTreeMap<String, f64>,
    pub contact: ContactPolicy,
    pub control: ControlGroup,
    /// How many distinct rule texts the catalog has (the keys of its rules).
    pub(crate) distinct_rules: usize,
}

/// One problem in a catalog, with its line (1-based).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CatalogError {
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    #[serde(default)]
    traits: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    context: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    levers: BTreeMap<String, Spanned<f64>>,
    contact_policy: Option<RawContactPolicy>,
    control: Option<RawControl>,
    #[serde(default)]
    action: Vec<Spanned<RawAction>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContactPolicy {
    suppress_after_rejections: Option<Spanned<i64>>,
    suppression_period: Option<Spanned<String>>,
    #[serde(default)]
    cap: Vec<RawCap>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCap {
    channel: Spanned<String>,
    max: Spanned<i64>,
    period: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
    rate: Option<Spanned<f64>>,
    mode: Option<Spanned<String>>,
    salt: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    id: Spanned<String>,
    kind: Spanned<String>,
    title: Option<String>,
    #[serde(default)]
    channels: Vec<String>,
    purposes: Option<Spanned<Vec<String>>>,
    value: Spanned<f64>,
    lever: Option<Spanned<String>>,
    prior: Option<Spanned<Vec<f64>>>,
    #[serde(default)]
    eligibility: Vec<Spanned<String>>,
    #[serde(default)]
    applicability: Vec<Spanned<String>>,
    #[serde(default)]
    suitability: Vec<Spanned<String>>,
    #[serde(default)]
    weight: Vec<RawWeight>,
    because: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeight {
    when: Spanned<String>,
    factor: Spanned<f64>,
}

fn name_ok(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 64
}

fn duration(text: &str) -> Option<Duration> {
    let d = humantime::parse_duration(text).ok()?;
    let d = Duration::from_std(d).ok()?;
    (d > Duration::zero()).then_some(d)
}

impl Catalog {
    /// Parses and checks a catalog, reporting every problem found with its line.
    pub fn parse(text: &str) -> Result<Catalog, Vec<CatalogError>> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let raw: RawCatalog = toml::from_str(text).map_err(|e| {
            vec![CatalogError {
                line: e.span().map(|s| line_of(s.start)).unwrap_or(1),
                message: e.message().trim().to_owned(),
            }]
        })?;
        let mut errors = Vec::new();
        let mut err = |span: std::ops::Range<usize>, message: String| {
            errors.push(CatalogError {
                line: line_of(span.start),
                message,
            })
        };

        let mut declared = |section: &str, map: &BTreeMap<String, Spanned<String>>| {
            let mut out = BTreeMap::new();
            for (name, ty) in map {
                if !name_ok(name) {
                    err(
                        ty.span(),
                        format!("{section} name `{name}` must be lowercase letters, digits and _"),
                    );
                }
                match ValueType::parse(ty.get_ref()) {
                    Some(t) => {
                        out.insert(name.clone(), t);
                    }
                    None => err(
                        ty.span(),
                        format!(
                            "{section} `{name}` has type `{}`; use string, number or bool",
                            ty.get_ref()
                        ),
                    ),
                }
            }
            out
        };
        let traits = declared("trait", &raw.traits);
        let context = declared("context", &raw.context);
        for name in traits.keys() {
            if FEATURES.iter().any(|(f, _, _)| f == name) {
                let span = raw.traits[name].span();
                err(
                    span,
                    format!("trait `{name}` has the name of a computed feature; rename it"),
                );
            }
        }

        let mut levers = BTreeMap::new();
        for (name, w) in &raw.levers {
            let v = *w.get_ref();
            if !(v.is_finite() && v > 0.0) {
                err(
                    w.span(),
                    format!("lever `{name}` must be a number above zero"),
                );
            }
            levers.insert(name.clone(), v);
        }

        let mut contact = ContactPolicy::default();
        if let Some(cp) = &raw.contact_policy {
            if let Some(n) = &cp.suppress_after_rejections {
                match *n.get_ref() {
                    0 => contact.suppress_after_rejections = None,
                    k if (1..=1000).contains(&k) => {
                        contact.suppress_after_rejections = Some(k as u32)
                    }
                    k => err(
                        n.span(),
                        format!("suppress_after_rejections must be 0 (never) to 1000, not {k}"),
                    ),
                }
            }
            if let Some(p) = &cp.suppression_period {
                match duration(p.get_ref()) {
                    Some(d) => contact.suppression_period = d,
                    None => err(
                        p.span(),
                        format!(
                            "suppression_period `{}` is not a duration such as 90d",
                            p.get_ref()
                        ),
                    ),
                }
            }
            for cap in &cp.cap {
                let max = *cap.max.get_ref();
                if !(0..=100_000).contains(&max) {
                    err(
                        cap.max.span(),
                        format!("cap max must be 0 to 100000, not {max}"),
                    );
                }
                let period = duration(cap.period.get_ref());
                if period.is_none() {
                    err(
                        cap.period.span(),
                        format!(
                            "cap period `{}` is not a duration such as 7d",
                            cap.period.get_ref()
                        ),
                    );
                }
                let channel = cap.channel.get_ref().trim();
                if channel.is_empty() {
                    err(
                        cap.channel.span(),
                        "cap channel must not be empty (use * for all)".into(),
                    );
                }
                contact.caps.push(ContactCap {
                    channel: channel.to_owned(),
                    max: max.clamp(0, 100_000) as u32,
                    period: period.unwrap_or(Duration::days(1)),
                    period_text: cap.period.get_ref().clone(),
                });
            }
        }

        let mut control = ControlGroup::default();
        if let Some(c) = &raw.control {
            if let Some(r) = &c.rate {
                let v = *r.get_ref();
                if !(0.0..=0.5).contains(&v) {
                    err(
                        r.span(),
                        format!("control rate must be between 0 and 0.5, not {v}"),
                    );
                }
                control.rate = v;
            }
            if let Some(m) = &c.mode {
                control.mode = match m.get_ref().as_str() {
                    "nothing" => ControlMode::Nothing,
                    "random" => ControlMode::Random,
                    other => {
                        err(
                            m.span(),
                            format!("control mode `{other}` is not `nothing` or `random`"),
                        );
                        ControlMode::Nothing
                    }
                };
            }
            if let Some(s) = &c.salt {
                control.salt = s.clone();
            }
        }

        let known = |name: &str| -> bool {
            match name.strip_prefix("context.") {
                Some(c) => context.contains_key(c),
                None => traits.contains_key(name) || FEATURES.iter().any(|(f, _, _)| *f == name),
            }
        };
        let rule = |text: &Spanned<String>, errs: &mut Vec<CatalogError>| -> Option<Rule> {
            let line = line_of(text.span().start);
            let src = text.get_ref();
            let node = match evalexpr::build_operator_tree(src) {
                Ok(n) => n,
                Err(e) => {
                    errs.push(CatalogError {
                        line,
                        message: format!("rule `{src}` does not parse: {e}"),
                    });
                    return None;
                }
            };
            let before = errs.len();
            if src.trim().is_empty() {
                errs.push(CatalogError {
                    line,
                    message: "a rule must not be empty".into(),
                });
            }
            if let Some(problem) = rapport_core::condition::shape_problem(&node) {
                errs.push(CatalogError {
                    line,
                    message: format!("rule `{src}` {problem}"),
                });
            }
            if let Some(f) = node.iter_function_identifiers().next() {
                errs.push(CatalogError {
                    line,
                    message: format!("rules may not call functions (`{f}`)"),
                });
            }
            let mut names: Vec<String> = Vec::new();
            for v in node.iter_variable_identifiers() {
                if !known(v) {
                    errs.push(CatalogError {
                        line,
                        message: format!(
                            "rule `{src}` names `{v}`, which is not a declared trait, a feature or a declared context.NAME"
                        ),
                    });
                } else if !names.iter().any(|n| n == v) {
                    names.push(v.to_owned());
                }
            }
            (errs.len() == before).then(|| Rule {
                text: src.clone(),
                line,
                node,
                names,
                key: 0,
            })
        };

        let mut actions = Vec::new();
        let mut ids = BTreeSet::new();
        let mut rule_errors = Vec::new();
        for a in &raw.action {
            let line = line_of(a.span().start);
            let a = a.get_ref();
            let before = errors.len() + rule_errors.len();
            let id = a.id.get_ref().clone();
            let mut push = |span: std::ops::Range<usize>, message: String| {
                rule_errors.push(CatalogError {
                    line: line_of(span.start),
                    message,
                })
            };
            if !name_ok(&id) {
                push(
                    a.id.span(),
                    format!(
                        "action id `{id}` must be lowercase letters, digits and _ (at most 64)"
                    ),
                );
            } else if !ids.insert(id.clone()) {
                push(a.id.span(), format!("action id `{id}` is used twice"));
            }
            let kind = ActionKind::parse(a.kind.get_ref());
            if kind.is_none() {
                push(
                    a.kind.span(),
                    format!(
                        "action kind `{}` is not one of {}",
                        a.kind.get_ref(),
                        ActionKind::ALL.map(ActionKind::as_str).join(", ")
                    ),
                );
            }
            let kind = kind.unwrap_or(ActionKind::DoNothing);
            let value = *a.value.get_ref();
            if !(value.is_finite() && value >= 0.0) {
                push(
                    a.value.span(),
                    format!("value must be a number of zero or more, not {value}"),
                );
            }
            let lever = match &a.lever {
                None => String::new(),
                Some(l) => {
                    if !levers.contains_key(l.get_ref()) {
                        push(
                            l.span(),
                            format!("lever `{}` is not declared in [levers]", l.get_ref()),
                        );
                    }
                    l.get_ref().clone()
                }
            };
            let mut purposes = Vec::new();
            match &a.purposes {
                None if kind.promotional() => purposes.extend(Purpose::parse("personalization")),
                None => {}
                Some(list) => {
                    for p in list.get_ref() {
                        match Purpose::parse(p) {
                            Some(p) => purposes.push(p),
                            None => push(list.span(), format!("`{p}` is not a purpose name")),
                        }
                    }
                }
            }
            let prior = match &a.prior {
                None => (1.0, 1.0),
                Some(p) => match p.get_ref().as_slice() {
                    [x, y] if *x > 0.0 && *y > 0.0 && x.is_finite() && y.is_finite() => (*x, *y),
                    _ => {
                        push(
                            p.span(),
                            "prior must be two numbers above zero: [alpha, beta]".into(),
                        );
                        (1.0, 1.0)
                    }
                },
            };
            let mut rules_of = |list: &[Spanned<String>]| -> Vec<Rule> {
                list.iter()
                    .filter_map(|r| rule(r, &mut rule_errors))
                    .collect()
            };
            let eligibility = rules_of(&a.eligibility);
            let applicability = rules_of(&a.applicability);
            let suitability = rules_of(&a.suitability);
            let mut weights = Vec::new();
            for w in &a.weight {
                let factor = *w.factor.get_ref();
                if !(factor.is_finite() && factor >= 0.0) {
                    rule_errors.push(CatalogError {
                        line: line_of(w.factor.span().start),
                        message: format!("weight factor must be zero or more, not {factor}"),
                    });
                }
                if let Some(r) = rule(&w.when, &mut rule_errors) {
                    weights.push(Weight { rule: r, factor });
                }
            }
            if errors.len() + rule_errors.len() == before {
                actions.push(CatalogAction {
                    title: a.title.clone().unwrap_or_else(|| id.replace('_', " ")),
                    id,
                    kind,
                    channels: a.channels.clone(),
                    purposes,
                    value,
                    lever,
                    prior,
                    eligibility,
                    applicability,
                    suitability,
                    weights,
                    because: a.because.clone().unwrap_or_default(),
                    line,
                });
            }
        }
        errors.extend(rule_errors);
        if raw.action.is_empty() {
            errors.push(CatalogError {
                line: 1,
                message: "the catalog has no [[action]]".into(),
            });
        }
        errors.sort_by_key(|e| e.line);
        if errors.is_empty() {
            let mut keys: std::collections::HashMap<String, usize> = Default::default();
            for a in &mut actions {
                let CatalogAction {
                    eligibility,
                    applicability,
                    suitability,
                    weights,
                    ..
                } = a;
                let rules = eligibility
                    .iter_mut()
                    .chain(applicability.iter_mut())
                    .chain(suitability.iter_mut())
                    .chain(weights.iter_mut().map(|w| &mut w.rule));
                for r in rules {
                    let next = keys.len();
                    r.key = *keys.entry(r.text.clone()).or_insert(next);
                }
            }
            Ok(Catalog {
                actions,
                traits,
                context,
                levers,
                contact,
                control,
                distinct_rules: keys.len(),
            })
        } else {
            Err(errors)
        }
    }

    pub fn action(&self, id: &str) -> Option<&CatalogAction> {
        self.actions.iter().find(|a| a.id == id)
    }

    /// The weight of a lever; an action without one counts 1.
    pub fn lever_weight(&self, lever: &str) -> f64 {
        self.levers.get(lever).copied().unwrap_or(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SMALL: &str = r#"
[traits]
plan = "string"
churn_risk = "number"

[context]
reason = "string"

[levers]
retention = 2.0

[[action]]
id = "fiber_discount"
kind = "retention"
value = 120
lever = "retention"
eligibility = ['plan == "fiber"']
applicability = ["churn_risk > 0.4"]
"#;

    #[test]
    fn a_small_catalog_loads() {
        let c = Catalog::parse(SMALL).expect("valid");
        assert_eq!(c.actions.len(), 1);
        let a = &c.actions[0];
        assert_eq!(a.kind, ActionKind::Retention);
        assert_eq!(a.purposes[0].as_str(), "personalization");
        assert_eq!(a.eligibility[0].line, 17);
        assert_eq!(c.lever_weight("retention"), 2.0);
        let purposes = a.purposes_on("email");
        let names: Vec<&str> = purposes.iter().map(Purpose::as_str).collect();
        assert_eq!(names, ["personalization", "marketing_email"]);
    }

    #[test]
    fn unknown_names_and_bad_rules_are_reported_with_their_lines_all_at_once() {
        let text = r#"[traits]
plan = "string"

[[action]]
id = "a"
kind = "upsell"
value = 10
eligibility = ['plann == "fiber"']

[[action]]
id = "b"
kind = "teleport"
value = 10
applicability = ["churn_risk >"]
suitability = ["context.mood == 1"]
"#;
        let errs = Catalog::parse(text).unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, [8, 12, 14, 14, 15], "{errs:#?}");
        assert!(errs[0].message.contains("`plann`"), "{}", errs[0].message);
        assert!(errs[1].message.contains("teleport"));
        assert!(errs[4].message.contains("context.mood"));
    }

    #[test]
    fn syntax_errors_name_their_line() {
        let errs = Catalog::parse("[[action]]\nid = \"a\"\nkind = = \"x\"\n").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 3, "{errs:?}");
    }

    #[test]
    fn policy_and_control_are_checked() {
        let text = r#"[contact_policy]
suppress_after_rejections = -1
[[contact_policy.cap]]
channel = "email"
max = 2
period = "a while"
[control]
rate = 0.9
mode = "sometimes"
[[action]]
id = "nothing"
kind = "do_nothing"
value = 1
lever = "missing"
"#;
        let errs = Catalog::parse(text).unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 6, 8, 9, 14], "{errs:#?}");
    }
}

#[cfg(test)]
mod doc_tests {
    use super::Catalog;

    #[test]
    fn the_documented_catalogs_load() {
        let example = include_str!("../../../../docs/examples/next-best-action.toml");
        let c = Catalog::parse(example).unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(c.actions.len(), 6);
        let doc = include_str!("../../../../docs/next-best-action.md");
        let start = doc.find("## The file").expect("section");
        let block = &doc[start..];
        let body = &block[block.find("```toml\n").expect("block") + 8..];
        let body = &body[..body.find("```").expect("end")];
        let c = Catalog::parse(body).unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(c.control.salt, "rapport-nba");
    }
}
