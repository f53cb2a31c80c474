//! Next-best-action: ranked, explained actions for a customer; outcomes that teach the
//! propensities; reloading the catalog.

use axum::extract::State;
use rapport_core::{ErrorKind, ProfileId};
use rapport_decide::nba::propensity::Outcome;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::extract::{Json, Path};
use crate::auth::{perm, Can};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::nba::{NbaError, NbaInput};
use crate::AppState;

impl From<NbaError> for ApiError {
    fn from(e: NbaError) -> Self {
        match e {
            NbaError::NoCatalog => ApiError::new(ErrorKind::Conflict, "no_catalog", e.to_string()),
            NbaError::Invalid(code, m) => ApiError::invalid(code, m),
            NbaError::NotFound(what) => ApiError::not_found(what),
            NbaError::Conflict(code, m) => ApiError::new(ErrorKind::Conflict, code, m),
            NbaError::Store(s) => s.into(),
        }
    }
}

/// Which actions to offer a customer now.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NbaRequestDto {
    pub profile_id: String,
    /// Where the action would be offered: `web`, `app`, `email`, `sms`, `agent`, ...
    pub channel: String,
    /// Facts about the moment, as the catalog's `[context]` declares them (e.g.
    /// `{"reason": "cancel"}`); rules read them as `context.NAME`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub context: Value,
    /// How many actions to offer at most (1 to 10, default 1).
    pub limit: Option<usize>,
    /// How many of the ranked actions the answer lists, best first (1 to 1000, default
    /// 10). Offered actions are always listed; `ranked_total` counts them all.
    pub ranked: Option<usize>,
}

/// Ranked actions an answer lists unless the request asks for another number.
const RANKED_SHOWN: usize = 10;
/// Most ranked actions one answer may list.
const RANKED_MAX: usize = 1000;

/// A context weight that applied.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppliedWeightDto {
    pub rule: String,
    pub factor: f64,
}

/// The parts of a priority: `propensity × context_weight × value × lever_weight`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PriorityPartsDto {
    /// The draw from the action's Beta posterior used for this ranking (Thompson sampling).
    pub propensity: f64,
    /// The posterior mean: the acceptance rate learned so far.
    pub propensity_mean: f64,
    pub alpha: f64,
    pub beta: f64,
    pub context_weight: f64,
    pub weights: Vec<AppliedWeightDto>,
    pub value: f64,
    pub lever: String,
    pub lever_weight: f64,
}

/// A rule that held, with the values it read.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleCheckDto {
    /// `eligibility`, `applicability` or `suitability`.
    pub stage: String,
    pub rule: String,
    /// The values the rule read, for offered actions; every action's rules read the answer's
    /// `values`.
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub values: Map<String, Value>,
}

/// An action that passed every rule and policy, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RankedActionDto {
    pub action_id: String,
    /// `retention`, `service_recovery`, `education`, `upsell` or `do_nothing`.
    pub kind: String,
    pub title: String,
    pub priority: f64,
    /// Whether it is offered (within the limit and the contact caps, above doing nothing).
    pub offered: bool,
    /// Picked at random for a customer in the control group.
    pub control: bool,
    /// The decision an offered action was recorded as; report its outcome there.
    pub decision_id: Option<String>,
    /// The sentence the customer sees on their page, for offered actions.
    pub explanation: Option<String>,
    pub parts: PriorityPartsDto,
    pub rules: Vec<RuleCheckDto>,
}

/// An action not offered, and the rule or policy that removed it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilteredActionDto {
    pub action_id: String,
    pub kind: String,
    /// `channel`, `eligibility`, `applicability`, `suitability`, `suppressed`, `consent`,
    /// `oversight` or `contact_cap`.
    pub stage: String,
    pub rule: Option<String>,
    /// The rule's line in the catalog.
    pub line: Option<usize>,
    pub reason: String,
}

/// A value the rules could not read.
#[derive(Debug, Serialize, ToSchema)]
pub struct MissingValueDto {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NbaResponseDto {
    pub profile_id: String,
    pub channel: String,
    /// Whether the customer is in the control group (not arbitrated: nothing, or one random
    /// eligible action flagged `control`).
    pub control_group: bool,
    /// The best ranked actions, as many as the request's `ranked` (default 10), and every
    /// offered one.
    pub ranked: Vec<RankedActionDto>,
    /// How many actions passed every rule and policy and were ranked.
    pub ranked_total: usize,
    pub filtered: Vec<FilteredActionDto>,
    /// The customer's values the rules read (traits, computed features, `context.*`).
    #[schema(value_type = Object)]
    pub values: Map<String, Value>,
    pub missing: Vec<MissingValueDto>,
}

fn text<T: Serialize>(v: T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Ranks the catalog's actions for a customer on a channel: each with its priority and the
/// parts of it, the rules that made it eligible, and for offered ones the decision it was
/// recorded as; every other action with the rule or policy (channel, rules, suppression,
/// consent, oversight, contact cap) that removed it. Consent is checked by the governance
/// gate before anything is offered.
#[utoipa::path(post, path = "/v1/decisions/next-best-action", tag = "decisions", request_body = NbaRequestDto,
    responses((status = 200, body = NbaResponseDto), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "No catalog is configured")),
    security(("basic" = []), ("bearer" = [])))]
pub async fn next_best_action(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::RequestActions>,
    Json(req): Json<NbaRequestDto>,
) -> ApiResult<axum::Json<NbaResponseDto>> {
    let profile = ProfileId::parse(&req.profile_id)
        .ok_or_else(|| ApiError::not_found(format!("profile {}", req.profile_id)))?;
    let shown = req.ranked.unwrap_or(RANKED_SHOWN);
    if !(1..=RANKED_MAX).contains(&shown) {
        return Err(ApiError::invalid(
            "invalid_ranked",
            format!("ranked must be between 1 and {RANKED_MAX}"),
        ));
    }
    let channel = req.channel.clone();
    let answer = state
        .engine
        .next_best_action(
            &caller.workspace_id,
            NbaInput {
                profile,
                channel: req.channel,
                context: req.context,
                limit: req.limit.unwrap_or(1),
                show: shown,
            },
            caller.actor(),
        )
        .await?;
    let a = answer.arbitration;
    let ranked_total = a.ranked_total;
    let ranked = a
        .ranked
        .into_iter()
        .map(|r| {
            let decision = answer.decisions.get(&r.action_id);
            RankedActionDto {
                decision_id: decision.map(|d| d.id.clone()),
                explanation: decision.map(|d| d.explanation.clone()),
                kind: text(r.kind),
                action_id: r.action_id,
                title: r.title,
                priority: r.priority,
                offered: r.offered,
                control: r.control,
                parts: PriorityPartsDto {
                    propensity: r.parts.propensity,
                    propensity_mean: r.parts.propensity_mean,
                    alpha: r.parts.alpha,
                    beta: r.parts.beta,
                    context_weight: r.parts.context_weight,
                    weights: r
                        .parts
                        .weights
                        .into_iter()
                        .map(|w| AppliedWeightDto {
                            rule: w.rule,
                            factor: w.factor,
                        })
                        .collect(),
                    value: r.parts.value,
                    lever: r.parts.lever,
                    lever_weight: r.parts.lever_weight,
                },
                rules: r
                    .rules
                    .into_iter()
                    .map(|c| RuleCheckDto {
                        stage: text(c.stage),
                        rule: c.rule,
                        values: c
                            .values
                            .into_iter()
                            .map(|(k, v)| (k, Value::String(v)))
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect();
    let filtered = a
        .filtered
        .into_iter()
        .map(|f| FilteredActionDto {
            kind: text(f.kind),
            stage: text(f.stage),
            action_id: f.action_id,
            rule: f.rule,
            line: f.line,
            reason: f.reason,
        })
        .collect();
    Ok(axum::Json(NbaResponseDto {
        profile_id: answer.profile_id.to_string(),
        channel,
        control_group: a.control_group,
        ranked,
        ranked_total,
        filtered,
        values: answer.values.into_iter().collect(),
        missing: answer
            .missing
            .into_iter()
            .map(|(name, reason)| MissingValueDto { name, reason })
            .collect(),
    }))
}

/// What the customer did with an offer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRequestDto {
    /// `accepted`, `rejected`, `ignored` or `converted`.
    pub outcome: String,
    /// What it was worth, when known (zero or more).
    pub value: Option<f64>,
}

/// The action's propensity after the outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct PropensityDto {
    pub alpha: f64,
    pub beta: f64,
    pub mean: f64,
    pub successes: u64,
    pub failures: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeDto {
    pub decision_id: String,
    pub action_id: String,
    pub outcome: String,
    pub value: Option<f64>,
    pub propensity: PropensityDto,
}

/// Records what the customer did with an offered action. Accepted and converted count as
/// successes of the action, rejected and ignored as failures; rejections also count towards
/// suppressing the action for this customer. An outcome is recorded once (409
/// `outcome_recorded` after that).
#[utoipa::path(post, path = "/v1/decisions/{id}/outcome", tag = "decisions", request_body = OutcomeRequestDto,
    params(("id" = String, Path, description = "The offer's decision id")),
    responses((status = 200, body = OutcomeDto), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn outcome(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::RequestActions>,
    Path(id): Path<String>,
    Json(req): Json<OutcomeRequestDto>,
) -> ApiResult<axum::Json<OutcomeDto>> {
    let outcome = Outcome::parse(&req.outcome).ok_or_else(|| {
        ApiError::invalid(
            "invalid_outcome",
            format!(
                "outcome {:?} is not one of accepted, rejected, ignored, converted",
                req.outcome
            ),
        )
    })?;
    let a = state
        .engine
        .record_nba_outcome(
            &caller.workspace_id,
            &id,
            outcome,
            req.value,
            caller.actor(),
        )
        .await?;
    Ok(axum::Json(OutcomeDto {
        decision_id: a.decision.id,
        action_id: a.action_id,
        outcome: a.outcome.as_str().to_owned(),
        value: a.value,
        propensity: PropensityDto {
            alpha: a.posterior.alpha,
            beta: a.posterior.beta,
            mean: a.posterior.mean(),
            successes: a.counts.successes,
            failures: a.counts.failures,
        },
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogReloadDto {
    /// Actions in the catalog now in force.
    pub actions: usize,
}

/// Reads the catalog file (`decisions.catalog`) again. A file with errors is refused with
/// every error and its line (400 `invalid_catalog`); the catalog in force stays.
#[utoipa::path(post, path = "/v1/decisions/catalog/reload", tag = "decisions",
    responses((status = 200, body = CatalogReloadDto), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn reload_catalog(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManagePolicy>,
) -> ApiResult<axum::Json<CatalogReloadDto>> {
    let actions = state
        .engine
        .reload_nba_catalog_file(&caller.workspace_id, caller.actor())
        .await?;
    Ok(axum::Json(CatalogReloadDto { actions }))
}
