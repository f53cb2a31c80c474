//! Next-best-action arbitration: of the catalog's actions, which to offer this customer on
//! this channel now, and why.
//!
//! For one request, each action of the [`catalog::Catalog`] goes through, in order:
//!
//! 1. the channel (an action lists the channels it can be offered on);
//! 2. its eligibility, applicability and suitability rules (each must hold; a rule that reads
//!    a missing value does not hold, and says which value was missing);
//! 3. suppression: an action the customer rejected N times within the period is not offered
//!    again to them;
//! 4. consent and oversight, through the check the caller passes in (the server passes the
//!    governance gate and the oversight policy);
//!
//! and every action still standing is given a priority, as Pega arbitrates:
//! `propensity × context weight × value × lever`. The propensity is a draw from the action's
//! Beta posterior ([`propensity`]), so new actions get explored. The contact policy then caps
//! how many are offered on the channel within each period, and the ranking stops at the
//! do-nothing action: an action ranked below doing nothing is not worth the contact.
//!
//! A configurable share of customers (the control group, chosen by hashing the profile id so
//! the same customers are in it every time) is not arbitrated: they get nothing, or one
//! eligible action at random, flagged, so what arbitration adds can be measured.
//!
//! Everything here is pure: the caller reads the store and passes the values in.

pub mod catalog;
pub mod features;
pub mod propensity;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use evalexpr::HashMapContext;
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};

use catalog::{ActionKind, Catalog, CatalogAction, ControlGroup, ControlMode, Rule};
use features::Values;
use propensity::{Counts, Outcome, Posterior};

/// One earlier offer to the customer, as the contact policy reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contact {
    pub decision_id: String,
    pub action_id: String,
    pub channel: String,
    pub at: DateTime<Utc>,
    pub outcome: Option<Outcome>,
}

/// One decision to arbitrate.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub profile_id: &'a str,
    pub channel: &'a str,
    pub values: &'a Values,
    /// Outcomes so far per action id, in this workspace.
    pub counts: &'a BTreeMap<String, Counts>,
    /// The customer's contacts, at least as far back as the contact policy looks.
    pub history: &'a [Contact],
    pub now: DateTime<Utc>,
    /// How many actions to offer at most.
    pub limit: usize,
    /// How many of the best ranked actions the answer writes out with their rules and
    /// weights (offered ones always are); the others are only counted.
    pub show: usize,
}

/// The step of arbitration that removed an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Channel,
    Eligibility,
    Applicability,
    Suitability,
    Suppressed,
    Consent,
    /// The oversight policy names it high-stakes: it is asked for through the approval
    /// queue, never offered automatically.
    Oversight,
    ContactCap,
}

/// An action that is not offered, and the policy or rule that removed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Filtered {
    pub action_id: String,
    pub kind: ActionKind,
    pub stage: Stage,
    /// The rule, as written, when a rule removed it.
    pub rule: Option<String>,
    /// The rule's line in the catalog.
    pub line: Option<usize>,
    pub reason: String,
}

/// A rule that held, with the values it read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleCheck {
    pub stage: Stage,
    pub rule: String,
    /// The values it read, filled in for offered actions (the request's [`Values`] hold
    /// them for every action).
    pub values: BTreeMap<String, String>,
}

/// A context weight that applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppliedWeight {
    pub rule: String,
    pub factor: f64,
}

/// The parts of a priority: `propensity × context_weight × value × lever_weight`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriorityParts {
    /// The Thompson draw used for the ranking.
    pub propensity: f64,
    /// The posterior mean, for people.
    pub propensity_mean: f64,
    pub alpha: f64,
    pub beta: f64,
    pub context_weight: f64,
    pub weights: Vec<AppliedWeight>,
    pub value: f64,
    pub lever: String,
    pub lever_weight: f64,
}

impl PriorityParts {
    pub fn priority(&self) -> f64 {
        priority(
            self.propensity,
            self.context_weight,
            self.value,
            self.lever_weight,
        )
    }
}

/// Pega's arbitration formula.
pub fn priority(propensity: f64, context_weight: f64, value: f64, lever_weight: f64) -> f64 {
    propensity * context_weight * value * lever_weight
}

/// An action that passed every rule and policy, ranked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    /// Its place in the ranking, from 1, counting every ranked action.
    pub rank: usize,
    pub action_id: String,
    pub kind: ActionKind,
    pub title: String,
    pub priority: f64,
    pub parts: PriorityParts,
    /// The rules that made it eligible, applicable and suitable, with the values they read.
    pub rules: Vec<RuleCheck>,
    /// The catalog's words for the customer.
    pub because: String,
    /// Whether it is offered (within the limit, the contact caps and above doing nothing).
    pub offered: bool,
    /// Picked at random for a customer in the control group, not by the ranking.
    pub control: bool,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arbitration {
    /// Best first: the best [`Request::show`] ranked actions and every offered one.
    pub ranked: Vec<Ranked>,
    /// How many actions passed every rule and policy and were ranked.
    pub ranked_total: usize,
    pub filtered: Vec<Filtered>,
    pub control_group: bool,
}

impl Arbitration {
    pub fn offered(&self) -> impl Iterator<Item = &Ranked> {
        self.ranked.iter().filter(|r| r.offered)
    }
}

/// Whether a customer is in the control group: the same answer for the same profile id and
/// salt, every time, in every process.
pub fn in_control_group(control: &ControlGroup, profile_id: &str) -> bool {
    if control.rate <= 0.0 {
        return false;
    }
    let digest = Sha256::new()
        .chain_update(control.salt.as_bytes())
        .chain_update(b":")
        .chain_update(profile_id.as_bytes())
        .finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let x = u64::from_be_bytes(head) as f64 / (u64::MAX as f64 + 1.0);
    x < control.rate
}

/// Whether a rule holds for the request's values; `Err` says why not, in words.
fn evaluate(rule: &Rule, values: &Values, ctx: &HashMapContext) -> Result<(), String> {
    let missing: Vec<String> = rule
        .names
        .iter()
        .filter(|n| !values.present.contains_key(*n))
        .map(|n| match values.missing.get(n) {
            Some(why) => format!("{n} is missing ({why})"),
            None => format!("{n} is missing"),
        })
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "`{}` cannot be checked: {}",
            rule.text,
            missing.join(", ")
        ));
    }
    match rule.node.eval_boolean_with_context(ctx) {
        Ok(true) => Ok(()),
        Ok(false) => {
            let shown: Vec<String> = rule_values(rule, values)
                .into_iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect();
            Err(if shown.is_empty() {
                format!("`{}` does not hold", rule.text)
            } else {
                format!("`{}` does not hold ({})", rule.text, shown.join(", "))
            })
        }
        Err(e) => Err(format!("`{}` cannot be evaluated: {e}", rule.text)),
    }
}

/// Each distinct rule of a request evaluated once: catalogs repeat the same conditions over
/// many actions (the same eligibility for every offer of a plan, say), and a rule's outcome
/// depends only on the request's values. Outcomes are kept by the rule's key, the number the
/// catalog gave its text, so finding one costs no hashing of the text.
struct Rules<'a> {
    values: &'a Values,
    ctx: HashMapContext,
    seen: Vec<Option<Result<(), String>>>,
}

impl<'a> Rules<'a> {
    fn new(values: &'a Values, catalog: &Catalog) -> Self {
        Self {
            values,
            ctx: values.expr_context(),
            seen: vec![None; catalog.distinct_rules],
        }
    }

    fn check(&mut self, rule: &Rule) -> Result<(), String> {
        let (values, ctx) = (self.values, &self.ctx);
        match self.seen.get_mut(rule.key) {
            Some(known) => known
                .get_or_insert_with(|| evaluate(rule, values, ctx))
                .clone(),
            // A rule added to the catalog after it was loaded has no slot of its own.
            None => evaluate(rule, values, ctx),
        }
    }
}

/// The values a rule reads, as shown in explanations.
fn rule_values(rule: &Rule, values: &Values) -> BTreeMap<String, String> {
    rule.names
        .iter()
        .map(|n| (n.clone(), values.show(n)))
        .collect()
}

/// Rejections of `action` by the customer within the suppression period.
fn rejections(history: &[Contact], action: &str, since: DateTime<Utc>) -> usize {
    history
        .iter()
        .filter(|c| c.action_id == action && c.at > since && c.outcome == Some(Outcome::Rejected))
        .count()
}

/// How many more contacts the caps allow on `channel` now; `None` when no cap applies.
pub fn room_on_channel(
    catalog: &Catalog,
    history: &[Contact],
    channel: &str,
    now: DateTime<Utc>,
) -> Option<usize> {
    catalog
        .contact
        .caps
        .iter()
        .filter(|c| c.channel == "*" || c.channel == channel)
        .map(|cap| {
            let since = now - cap.period;
            let used = history
                .iter()
                .filter(|h| {
                    (cap.channel == "*" || h.channel == cap.channel) && h.at > since && h.at <= now
                })
                .count();
            (cap.max as usize).saturating_sub(used)
        })
        .min()
}

fn cap_reason(catalog: &Catalog, channel: &str) -> String {
    let caps: Vec<String> = catalog
        .contact
        .caps
        .iter()
        .filter(|c| c.channel == "*" || c.channel == channel)
        .map(|c| format!("{} per {} on {}", c.max, c.period_text, c.channel))
        .collect();
    format!("the contact cap is reached ({})", caps.join(", "))
}

/// Arbitrates one request. `gate` says whether governance lets the action be offered on the
/// request's channel (`Err` carries the stage, consent or oversight, and the refusal in
/// words). `rng` draws the propensities and the control group's random pick.
///
/// Every action is checked and ranked, but only the best [`Request::show`] ranked actions,
/// and every offered one, are written out with their rules and weights; the rest are only
/// counted ([`Arbitration::ranked_total`]). Writing out the 90 actions of a 100-action catalog
/// that nobody reads cost more than checking them.
pub fn arbitrate<R: Rng + ?Sized>(
    catalog: &Catalog,
    req: &Request<'_>,
    rng: &mut R,
    mut gate: impl FnMut(&CatalogAction) -> Result<(), (Stage, String)>,
) -> Arbitration {
    let control_group = in_control_group(&catalog.control, req.profile_id);
    let mut checks = Rules::new(req.values, catalog);
    let mut filtered = Vec::new();
    let mut candidates: Vec<Candidate<'_>> = Vec::new();
    let suppression_since = req.now - catalog.contact.suppression_period;
    'actions: for a in &catalog.actions {
        let filter = |stage, rule: Option<&Rule>, reason: String| Filtered {
            action_id: a.id.clone(),
            kind: a.kind,
            stage,
            rule: rule.map(|r| r.text.clone()),
            line: rule.map(|r| r.line),
            reason,
        };
        if !a.on_channel(req.channel) {
            filtered.push(filter(
                Stage::Channel,
                None,
                format!(
                    "not offered on {} (only {})",
                    req.channel,
                    a.channels.join(", ")
                ),
            ));
            continue;
        }
        for (stage, rule) in staged_rules(a) {
            if let Err(reason) = checks.check(rule) {
                filtered.push(filter(stage, Some(rule), reason));
                continue 'actions;
            }
        }
        if let Some(n) = catalog.contact.suppress_after_rejections {
            let r = rejections(req.history, &a.id, suppression_since);
            if r >= n as usize {
                filtered.push(filter(
                    Stage::Suppressed,
                    None,
                    format!("the customer rejected it {r} times (suppressed after {n})"),
                ));
                continue;
            }
        }
        if let Err((stage, reason)) = gate(a) {
            filtered.push(filter(stage, None, reason));
            continue;
        }
        let context_weight = a
            .weights
            .iter()
            .filter(|w| checks.check(&w.rule).is_ok())
            .map(|w| w.factor)
            .product::<f64>();
        let posterior = Posterior::new(a.prior, req.counts.get(&a.id).copied().unwrap_or_default());
        let propensity = posterior.sample(rng);
        let lever_weight = catalog.lever_weight(&a.lever);
        candidates.push(Candidate {
            action: a,
            posterior,
            propensity,
            context_weight,
            lever_weight,
            priority: priority(propensity, context_weight, a.value, lever_weight),
            offered: false,
            control: false,
        });
    }
    candidates.sort_by(|x, y| {
        y.priority
            .total_cmp(&x.priority)
            .then_with(|| x.action.id.cmp(&y.action.id))
    });

    let room = room_on_channel(catalog, req.history, req.channel, req.now).unwrap_or(usize::MAX);
    let quota = req.limit.min(room);
    let is_nothing = |c: &Candidate<'_>| c.action.kind == ActionKind::DoNothing;

    if control_group {
        if catalog.control.mode == ControlMode::Random && quota > 0 {
            let real: Vec<usize> = (0..candidates.len())
                .filter(|&i| !is_nothing(&candidates[i]))
                .collect();
            if !real.is_empty() {
                let pick = real[rng.gen_range(0..real.len())];
                candidates[pick].offered = true;
                candidates[pick].control = true;
            }
        }
    } else {
        let mut offered = 0;
        let mut capped = Vec::new();
        for (i, c) in candidates.iter_mut().enumerate() {
            if is_nothing(c) {
                // Doing nothing is the answer when it ranks first; below it nothing is offered.
                c.offered = offered == 0;
                break;
            }
            if offered < quota {
                c.offered = true;
                offered += 1;
            } else if offered < req.limit {
                // Within the limit asked for, but the contact policy has no room.
                capped.push(i);
                offered += 1;
            } else {
                break;
            }
        }
        for i in capped.into_iter().rev() {
            let c = candidates.remove(i);
            filtered.push(Filtered {
                action_id: c.action.id.clone(),
                kind: c.action.kind,
                stage: Stage::ContactCap,
                rule: None,
                line: None,
                reason: cap_reason(catalog, req.channel),
            });
        }
    }
    let ranked_total = candidates.len();
    let ranked = candidates
        .into_iter()
        .enumerate()
        .filter(|(i, c)| *i < req.show || c.offered)
        .map(|(i, c)| c.written_out(i + 1, &mut checks, req.values))
        .collect();
    Arbitration {
        ranked,
        ranked_total,
        filtered,
        control_group,
    }
}

/// An action's rules in the order they are checked, with their stage.
fn staged_rules(a: &CatalogAction) -> impl Iterator<Item = (Stage, &Rule)> {
    let stage = |stage: Stage| move |r| (stage, r);
    a.eligibility
        .iter()
        .map(stage(Stage::Eligibility))
        .chain(a.applicability.iter().map(stage(Stage::Applicability)))
        .chain(a.suitability.iter().map(stage(Stage::Suitability)))
}

/// An action that passed every rule and policy, before it is ranked and written out.
struct Candidate<'c> {
    action: &'c CatalogAction,
    posterior: Posterior,
    propensity: f64,
    context_weight: f64,
    lever_weight: f64,
    priority: f64,
    offered: bool,
    control: bool,
}

impl<'c> Candidate<'c> {
    /// The ranked action with its rules and applied weights; an offered one also with the
    /// values each rule read.
    fn written_out(self, rank: usize, checks: &mut Rules<'_>, values: &Values) -> Ranked {
        let a = self.action;
        let rules = staged_rules(a)
            .map(|(stage, rule)| RuleCheck {
                stage,
                rule: rule.text.clone(),
                values: if self.offered {
                    rule_values(rule, values)
                } else {
                    BTreeMap::new()
                },
            })
            .collect();
        let weights = a
            .weights
            .iter()
            .filter(|w| checks.check(&w.rule).is_ok())
            .map(|w| AppliedWeight {
                rule: w.rule.text.clone(),
                factor: w.factor,
            })
            .collect();
        Ranked {
            rank,
            action_id: a.id.clone(),
            kind: a.kind,
            title: a.title.clone(),
            priority: self.priority,
            parts: PriorityParts {
                propensity: self.propensity,
                propensity_mean: self.posterior.mean(),
                alpha: self.posterior.alpha,
                beta: self.posterior.beta,
                context_weight: self.context_weight,
                weights,
                value: a.value,
                lever: a.lever.clone(),
                lever_weight: self.lever_weight,
            },
            rules,
            because: a.because.clone(),
            offered: self.offered,
            control: self.control,
        }
    }
}

/// One sentence for the customer about an offered action.
pub fn customer_explanation(r: &Ranked) -> String {
    let because = r.because.trim().trim_end_matches('.');
    let because = if because.is_empty() {
        "it fits your account and how you use our service"
    } else {
        because
    };
    format!(
        "We suggested {} because {because}.",
        r.title.trim().trim_end_matches('.')
    )
}

/// A contact that counts against the caps from `at`.
pub fn contact_of(
    decision_id: &str,
    r: &Ranked,
    channel: &str,
    at: DateTime<Utc>,
) -> Option<Contact> {
    (r.offered && r.kind != ActionKind::DoNothing).then(|| Contact {
        decision_id: decision_id.to_owned(),
        action_id: r.action_id.clone(),
        channel: channel.to_owned(),
        at,
        outcome: None,
    })
}

/// How far back the caller must read a customer's contacts for this catalog.
pub fn history_lookback(catalog: &Catalog) -> Duration {
    catalog.contact.lookback()
}

#[cfg(test)]
mod tests;
