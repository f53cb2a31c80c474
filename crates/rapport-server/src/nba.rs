//! Next-best-action in the engine: reads what arbitration needs from the store, passes every
//! candidate action through governance (the consent gate, which alone makes a
//! [`Permitted`](rapport_govern::consent::Permitted) value, then the oversight policy),
//! arbitrates with [`rapport_decide::nba`], and records each offered action as a decision
//! with its explanation and as a contact for the contact policy, in one transaction.
//! Outcomes reported later update the action's propensity and, for rejections, the
//! customer's suppression.
//!
//! Offers are decisions like any other: shown on the customer's `/why` page, listed by
//! `GET /v1/profiles/{id}/decisions`, exported and erased with the customer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::Utc;
use rapport_core::{
    Actor, AuditEntry, DecisionRecord, DecisionStatus, ProfileId, Purpose, Reason, WorkspaceId,
};
use rapport_decide::nba::catalog::{Catalog, CatalogAction, CatalogError};
use rapport_decide::nba::features::{self, Activity, Values};
use rapport_decide::nba::propensity::{Counts, Outcome, Posterior};
use rapport_decide::nba::{self, Arbitration, Contact, Stage};
use rapport_govern::consent::{Action, ConsentLedger};
use rapport_govern::policy::Subject;
use rapport_store::{NbaContact, NbaOutcome, NbaSnapshot, StoreError};
use serde_json::{json, Map, Value};

use crate::engine::Engine;

/// How many of a customer's latest events the features read.
const EVENTS_READ: usize = 500;
/// Most actions one request may ask to be offered.
pub const MAX_LIMIT: usize = 10;

/// A catalog action as the consent gate sees it: its decision kind and the purposes it needs
/// on the requested channel.
#[derive(Debug)]
pub struct Offer {
    kind: &'static str,
    purposes: Vec<Purpose>,
}

impl Action for Offer {
    fn kind(&self) -> &str {
        self.kind
    }

    fn purposes(&self) -> Vec<Purpose> {
        self.purposes.clone()
    }
}

/// Why a next-best-action request or an outcome was not taken.
#[derive(Debug, thiserror::Error)]
pub enum NbaError {
    #[error("no next-best-action catalog is configured (decisions.catalog)")]
    NoCatalog,
    #[error("{1}")]
    Invalid(&'static str, String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for NbaError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => NbaError::NotFound(what),
            StoreError::Conflict(m) => NbaError::Conflict("conflict", m),
            e => NbaError::Store(e),
        }
    }
}

/// Outcome counts by action id, shared by the decisions that read them.
type ActionCounts = Arc<BTreeMap<String, Counts>>;

/// The outcome counts of each workspace's actions as this node last read them. Every
/// decision needs them and outcomes change them rarely by comparison, so they are read from
/// the store at most once a second; an outcome recorded on this node updates them at once,
/// one recorded on another node is seen within the second.
#[derive(Debug, Default)]
pub(crate) struct CountsCache(
    std::sync::Mutex<HashMap<String, (std::time::Instant, ActionCounts)>>,
);

/// How long read counts are used before they are read again.
const COUNTS_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

impl CountsCache {
    fn fresh(&self, ws: &WorkspaceId) -> Option<ActionCounts> {
        let map = self.0.lock().ok()?;
        let (at, counts) = map.get(ws.as_str())?;
        (at.elapsed() < COUNTS_FRESH).then(|| counts.clone())
    }

    fn put(&self, ws: &WorkspaceId, counts: BTreeMap<String, Counts>) -> ActionCounts {
        let counts = Arc::new(counts);
        if let Ok(mut map) = self.0.lock() {
            map.insert(
                ws.as_str().to_owned(),
                (std::time::Instant::now(), counts.clone()),
            );
        }
        counts
    }

    fn update(&self, ws: &WorkspaceId, action: &str, counts: Counts) {
        if let Ok(mut map) = self.0.lock() {
            if let Some((_, known)) = map.get_mut(ws.as_str()) {
                Arc::make_mut(known).insert(action.to_owned(), counts);
            }
        }
    }
}

/// A next-best-action request, checked.
#[derive(Debug, Clone)]
pub struct NbaInput {
    pub profile: ProfileId,
    pub channel: String,
    pub context: Value,
    pub limit: usize,
    /// How many of the best ranked actions the answer writes out in full (offered ones
    /// always are); the others are only counted.
    pub show: usize,
}

/// What arbitration decided, with the decisions it recorded.
#[derive(Debug, Clone)]
pub struct NbaAnswer {
    pub profile_id: ProfileId,
    pub arbitration: Arbitration,
    /// The decision each offered action was recorded as, by action id.
    pub decisions: BTreeMap<String, DecisionRecord>,
    /// The values rules read.
    pub values: BTreeMap<String, Value>,
    /// Values rules could not read, with why.
    pub missing: BTreeMap<String, String>,
}

/// An outcome as recorded, with the action's propensity after it.
#[derive(Debug, Clone)]
pub struct OutcomeAnswer {
    pub decision: DecisionRecord,
    pub action_id: String,
    pub outcome: Outcome,
    pub value: Option<f64>,
    pub posterior: Posterior,
    pub counts: Counts,
}

fn valid_channel(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= 64
        && c.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Engine {
    /// The next-best-action catalog in force, if one is configured.
    pub fn nba_catalog(&self) -> Option<Arc<Catalog>> {
        self.nba.read().expect("catalog lock").clone()
    }

    /// Replaces the catalog in force; the old one stays when `text` has errors.
    pub fn reload_nba_catalog(&self, text: &str) -> Result<usize, Vec<CatalogError>> {
        let c = Catalog::parse(text)?;
        let n = c.actions.len();
        *self.nba.write().expect("catalog lock") = Some(Arc::new(c));
        Ok(n)
    }

    /// Reads the configured catalog file again and puts it in force, audited either way.
    pub async fn reload_nba_catalog_file(
        &self,
        workspace: &WorkspaceId,
        actor: Actor,
    ) -> Result<usize, NbaError> {
        let Some(path) = self.options.nba_catalog_file.clone() else {
            return Err(NbaError::NoCatalog);
        };
        let text = tokio::fs::read_to_string(&path).await.map_err(|e| {
            NbaError::Invalid("invalid_catalog", format!("{}: {e}", path.display()))
        })?;
        let outcome = self.reload_nba_catalog(&text);
        let details = match &outcome {
            Ok(n) => json!({"actions": n}),
            Err(errors) => {
                json!({"errors": errors.len(), "lines": errors.iter().map(|e| e.line).collect::<Vec<_>>()})
            }
        };
        let action = if outcome.is_ok() {
            "nba.catalog_reloaded"
        } else {
            "nba.catalog_reload_failed"
        };
        self.store
            .append_audit(vec![AuditEntry::new(
                Some(workspace.clone()),
                actor,
                action,
                None,
                details,
            )])
            .await?;
        outcome.map_err(|errors| {
            NbaError::Invalid(
                "invalid_catalog",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
    }

    /// The values the catalog's rules read for a customer: traits, computed features and the
    /// request's context.
    fn decision_values(
        catalog: &Catalog,
        snap: &NbaSnapshot,
        context: &Value,
        now: chrono::DateTime<Utc>,
    ) -> Result<Values, NbaError> {
        let activity: Vec<Activity> = snap
            .activity
            .iter()
            .map(|a| Activity {
                at: a.at,
                name: a.name.clone(),
                amount: a.amount,
            })
            .collect();
        let computed = features::compute(&features::Inputs {
            profile: &snap.profile,
            activity: &activity,
            conversations: &snap.conversations,
            last_sentiment: snap.last_sentiment,
            now,
        });
        // The live churn model's score stands in for a `churn_risk` trait the profile lacks.
        let traits = &snap.profile.traits;
        let mut traits = std::borrow::Cow::Borrowed(traits);
        if catalog.traits.contains_key(crate::routing::CHURN_TRAIT)
            && !traits.contains_key(crate::routing::CHURN_TRAIT)
        {
            if let Some(p) = snap.churn_probability.filter(|p| (0.0..=1.0).contains(p)) {
                traits
                    .to_mut()
                    .insert(crate::routing::CHURN_TRAIT.to_owned(), p.into());
            }
        }
        computed
            .with_traits(catalog, &traits)
            .with_context(catalog, context)
            .map_err(|e| NbaError::Invalid("invalid_context", e.0))
    }

    /// The workspace's outcome counts per action, from the cache when it is under a second
    /// old.
    async fn nba_counts(&self, ws: &WorkspaceId) -> Result<ActionCounts, NbaError> {
        if let Some(c) = self.nba_counts.fresh(ws) {
            return Ok(c);
        }
        let counts: BTreeMap<String, Counts> = self
            .store
            .nba_counts(ws)
            .await?
            .into_iter()
            .map(|c| {
                (
                    c.action_id,
                    Counts {
                        successes: c.successes.max(0) as u64,
                        failures: c.failures.max(0) as u64,
                    },
                )
            })
            .collect();
        Ok(self.nba_counts.put(ws, counts))
    }

    /// Decides the best actions for a customer on a channel now, records the offered ones as
    /// decisions and contacts, and says why every other action was not offered.
    pub async fn next_best_action(
        &self,
        ws: &WorkspaceId,
        input: NbaInput,
        actor: Actor,
    ) -> Result<NbaAnswer, NbaError> {
        let catalog = self.nba_catalog().ok_or(NbaError::NoCatalog)?;
        if !valid_channel(&input.channel) {
            return Err(NbaError::Invalid(
                "invalid_channel",
                "channel must be 1 to 64 lowercase letters, digits, _ or -".into(),
            ));
        }
        if !(1..=MAX_LIMIT).contains(&input.limit) {
            return Err(NbaError::Invalid(
                "invalid_limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        // Malformed context is refused before anything is read.
        Values::default()
            .with_context(&catalog, &input.context)
            .map_err(|e| NbaError::Invalid("invalid_context", e.0))?;
        let now = Utc::now();
        let since = now - nba::history_lookback(&catalog);
        let (snap, counts) = tokio::join!(
            self.store
                .nba_snapshot(ws, &input.profile, since, EVENTS_READ),
            self.nba_counts(ws)
        );
        let (snap, counts) = (
            snap?.ok_or_else(|| NbaError::NotFound(format!("profile {}", input.profile)))?,
            counts?,
        );
        let values = Self::decision_values(&catalog, &snap, &input.context, now)?;
        let ledger = ConsentLedger::from_history(&snap.consents);
        let history: Vec<Contact> = snap
            .contacts
            .iter()
            .map(|c| Contact {
                decision_id: c.decision_id.clone(),
                action_id: c.action_id.clone(),
                channel: c.channel.clone(),
                at: c.at,
                outcome: c.outcome.as_deref().and_then(Outcome::parse),
            })
            .collect();
        let profile = &snap.profile;

        let policy = self.policy();
        let check_oversight = !policy.rules().is_empty();
        let mut refused: Vec<(String, String, &'static str)> = Vec::new();
        let channel = input.channel.clone();
        let offer_of = |a: &CatalogAction| Offer {
            kind: a.kind.decision_kind(),
            purposes: a.purposes_on(&channel),
        };
        // The gate's verdict depends only on the action's kind and purposes (the customer's
        // consents and the channel are the same for the whole request), and catalogs repeat
        // a few of those over many actions: each distinct one is asked once here. An offered
        // action asks the gate again below, for the permission its decision is recorded with.
        type Verdict = Result<(), (String, &'static str, String)>;
        let mut verdicts: Vec<(nba::catalog::ActionKind, Vec<Purpose>, Verdict)> = Vec::new();
        let mut gate = |a: &CatalogAction| -> Result<(), (Stage, String)> {
            let known = verdicts
                .iter()
                .find(|(k, p, _)| *k == a.kind && p.as_slice() == a.purposes.as_slice())
                .map(|(_, _, v)| v.clone());
            let verdict = known.unwrap_or_else(|| {
                let v = self
                    .gate
                    .check(&profile.id, &ledger, offer_of(a))
                    .map(|_| ())
                    .map_err(|r| (r.purpose.as_str().to_owned(), r.standing, r.reason));
                verdicts.push((a.kind, a.purposes.clone(), v.clone()));
                v
            });
            if let Err((purpose, standing, reason)) = verdict {
                refused.push((a.id.clone(), purpose, standing));
                return Err((Stage::Consent, reason));
            }
            if check_oversight {
                let mut params = Map::new();
                params.insert("channel".into(), json!(channel));
                params.insert("amount".into(), json!(a.value));
                let assessment = policy.assess(&Subject {
                    kind: a.kind.decision_kind(),
                    params: &params,
                    traits: &profile.traits,
                });
                if assessment.is_high_stakes() {
                    let rules: Vec<&str> =
                        assessment.held.iter().map(|h| h.rule.as_str()).collect();
                    return Err((
                        Stage::Oversight,
                        format!(
                            "the oversight policy holds it for approval ({}); ask for it through /v1/actions",
                            rules.join(", ")
                        ),
                    ));
                }
            }
            Ok(())
        };
        let arbitration = {
            use rand::SeedableRng;
            let mut rng = rand::rngs::StdRng::from_entropy();
            nba::arbitrate(
                &catalog,
                &nba::Request {
                    profile_id: profile.id.as_str(),
                    channel: &input.channel,
                    values: &values,
                    counts: &counts,
                    history: &history,
                    now,
                    limit: input.limit,
                    show: input.show,
                },
                &mut rng,
                &mut gate,
            )
        };

        let mut decisions = Vec::new();
        let mut contacts = Vec::new();
        let mut audit = Vec::new();
        if !refused.is_empty() {
            audit.push(AuditEntry::new(
                Some(ws.clone()),
                actor.clone(),
                "nba.consent_refused",
                Some(profile.id.to_string()),
                json!({"actions": refused.iter().map(|(a, p, s)| json!({"action": a, "purpose": p, "standing": s})).collect::<Vec<_>>()}),
            ));
        }
        for r in &arbitration.ranked {
            if !r.offered || r.kind == nba::catalog::ActionKind::DoNothing {
                continue;
            }
            // Only an action the gate lets through is offered, with the gate's permission.
            let Some(action) = catalog.action(&r.action_id) else {
                continue;
            };
            let Ok(ok) = self.gate.check(&profile.id, &ledger, offer_of(action)) else {
                continue;
            };
            let offer = ok.into_inner();
            let id = format!("dec_{}", uuid::Uuid::now_v7().simple());
            let decision = DecisionRecord {
                id: id.clone(),
                profile_id: profile.id.clone(),
                kind: offer.kind.to_owned(),
                params: json!({
                    "action_id": r.action_id,
                    "title": r.title,
                    "channel": input.channel,
                    "rank": r.rank,
                    "priority": r.priority,
                    "parts": r.parts,
                    "rules": r.rules,
                    "control": r.control,
                    "context": input.context,
                }),
                status: DecisionStatus::Executed,
                explanation: nba::customer_explanation(r),
                reasons: vec![Reason {
                    code: format!("nba.{}", r.action_id),
                    text: if r.because.trim().is_empty() {
                        "it fits your account and how you use our service".into()
                    } else {
                        r.because.clone()
                    },
                }],
                automated: true,
                requested_by: actor.encode(),
                conversation_id: None,
                refusal: None,
                approval: None,
                created_at: now,
                updated_at: now,
                version: 0,
            };
            audit.push(AuditEntry::new(
                Some(ws.clone()),
                actor.clone(),
                "nba.offered",
                Some(id.clone()),
                json!({"action": r.action_id, "kind": offer.kind, "profile": profile.id,
                       "channel": input.channel, "control": r.control}),
            ));
            if let Some(c) = nba::contact_of(&id, r, &input.channel, now) {
                contacts.push(NbaContact {
                    decision_id: c.decision_id,
                    profile_id: profile.id.clone(),
                    action_id: c.action_id,
                    channel: c.channel,
                    at: c.at,
                    outcome: None,
                    outcome_at: None,
                });
            }
            decisions.push(decision);
        }
        let saved = if decisions.is_empty() {
            if !audit.is_empty() {
                self.store.append_audit(audit).await?;
            }
            Vec::new()
        } else {
            self.store
                .record_nba_offers(ws, decisions, contacts, audit)
                .await?
        };
        let decisions = saved
            .into_iter()
            .map(|d| {
                let action = d.params["action_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                (action, d)
            })
            .collect();
        Ok(NbaAnswer {
            profile_id: profile.id.clone(),
            arbitration,
            decisions,
            values: values.present,
            missing: values.missing,
        })
    }

    /// Records what the customer did with an offer; the action's propensity learns from it.
    pub async fn record_nba_outcome(
        &self,
        ws: &WorkspaceId,
        id: &str,
        outcome: Outcome,
        value: Option<f64>,
        actor: Actor,
    ) -> Result<OutcomeAnswer, NbaError> {
        if value.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
            return Err(NbaError::Invalid(
                "invalid_value",
                "value must be a number of zero or more".into(),
            ));
        }
        let mut d = self
            .store
            .decision(ws, id)
            .await?
            .ok_or_else(|| NbaError::NotFound(format!("decision {id}")))?;
        let action_id = d
            .params
            .get("action_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .filter(|_| d.kind.starts_with("nba."))
            .ok_or_else(|| {
                NbaError::Invalid(
                    "not_an_offer",
                    format!("decision {id} is not a next-best-action offer"),
                )
            })?;
        let now = Utc::now();
        let version = d.version;
        if let Value::Object(p) = &mut d.params {
            p.insert("outcome".into(), json!(outcome.as_str()));
            p.insert("outcome_value".into(), json!(value));
            p.insert("outcome_at".into(), json!(now));
        }
        d.updated_at = now;
        let entry = AuditEntry::new(
            Some(ws.clone()),
            actor,
            "nba.outcome",
            Some(id.to_owned()),
            json!({"action": action_id, "outcome": outcome.as_str(), "profile": d.profile_id}),
        );
        let (_, counts) = self
            .store
            .record_nba_outcome(
                ws,
                NbaOutcome {
                    decision: d.clone(),
                    expected_version: version,
                    outcome: outcome.as_str().to_owned(),
                    success: outcome.success(),
                    at: now,
                },
                vec![entry],
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(m) => NbaError::Conflict("outcome_recorded", m),
                e => e.into(),
            })?;
        let counts = Counts {
            successes: counts.successes.max(0) as u64,
            failures: counts.failures.max(0) as u64,
        };
        self.nba_counts.update(ws, &action_id, counts);
        let prior = self
            .nba_catalog()
            .and_then(|c| c.action(&action_id).map(|a| a.prior))
            .unwrap_or((1.0, 1.0));
        d.version = version + 1;
        Ok(OutcomeAnswer {
            decision: d,
            action_id,
            outcome,
            value,
            posterior: Posterior::new(prior, counts),
            counts,
        })
    }
}
