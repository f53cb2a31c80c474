//! `POST /v1/match`: scores one record against the workspace's profiles with the shipped
//! people model and returns the likely ones with probabilities and per-field explanations.
//! Read-only: nothing is stored or merged.

use std::collections::BTreeSet;

use axum::extract::State;
use rapport_core::{IdentifierKind, ProfileId};
use rapport_identity::matching::probe::{fields_from_traits, PeopleModel};
use rapport_identity::standardize::standardize_traits;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::extract::Json;
use crate::auth::{perm, Can};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

/// Candidates returned at most.
pub const MAX_LIMIT: usize = 50;
/// Profiles one name search may bring in as candidates.
const NAME_CANDIDATES: usize = 50;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchRequest {
    /// The record, as Segment traits: `firstName`, `lastName` or `name`, `email`, `phone`,
    /// `birthday`, `address` with `street` and `postalCode`. Other traits are ignored.
    #[schema(value_type = Object)]
    pub traits: Map<String, Value>,
    /// Candidates to return, 1 to 50; default 10.
    pub limit: Option<usize>,
    /// Leave out candidates below this probability (default 0: all that were scored).
    pub min_probability: Option<f64>,
}

/// One field's part in a candidate's score.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchFieldDto {
    pub field: String,
    /// The agreement level: `exact`, `jaro_winkler>=0.92`, ..., `else`, or `null` when either
    /// side has no value.
    pub level: String,
    /// log2 of the Bayes factor: positive for evidence of a match, negative against.
    pub log2_bayes_factor: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MatchCandidateDto {
    pub profile_id: String,
    pub name: Option<String>,
    pub match_probability: f64,
    /// log2 prior odds plus every field's log2 Bayes factor.
    pub match_weight: f64,
    /// Which lookups found this profile (`email`, `phone`, `name`).
    pub found_by: Vec<String>,
    pub fields: Vec<MatchFieldDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MatchResponseDto {
    /// Model name and version.
    pub model: String,
    /// The fields of the record the model could use, after standardisation.
    pub fields_used: Vec<String>,
    /// Prior probability that the record is any one given profile (1 / (profiles + 1)).
    pub prior: f64,
    /// Profiles found by the lookups and scored.
    pub profiles_scored: usize,
    /// Best first.
    pub candidates: Vec<MatchCandidateDto>,
    /// Values of the record that could not be standardised (used as given, or not at all).
    #[schema(value_type = Vec<Object>)]
    pub data_quality: Vec<Value>,
}

/// Scores a record against the workspace's profiles. Candidates are the profiles sharing the
/// record's standardised email or phone, and those a name search finds for its last name and
/// its full name; each is scored by the people model (Fellegi-Sunter), with every field's
/// contribution. Stores nothing.
#[utoipa::path(post, path = "/v1/match", tag = "profiles",
    request_body = MatchRequest,
    responses((status = 200, body = MatchResponseDto), (status = 400, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn match_record(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Json(req): Json<MatchRequest>,
) -> ApiResult<axum::Json<MatchResponseDto>> {
    let limit = req.limit.unwrap_or(10);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_body",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let min_p = req.min_probability.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&min_p) {
        return Err(ApiError::invalid(
            "invalid_body",
            "min_probability must be between 0 and 1",
        ));
    }
    let policy = &state.engine.options.standardize;
    let (standardized, issues) = standardize_traits(&req.traits, policy);
    let probe = fields_from_traits(&standardized, &req.traits);
    let model = PeopleModel::embedded();
    let used: Vec<String> = model
        .columns()
        .into_iter()
        .filter(|c| probe.contains_key(c))
        .collect();
    if used.is_empty() {
        return Err(ApiError::invalid(
            "nothing_to_match",
            "traits hold none of the fields matching uses: firstName, lastName or name, email, phone, birthday, address.street, address.postalCode",
        ));
    }
    let ws = &caller.workspace_id;
    // Blocking: the lookups the store answers by index.
    let mut found: Vec<(ProfileId, BTreeSet<&'static str>)> = Vec::new();
    let mut add = |id: ProfileId, how: &'static str| match found.iter_mut().find(|(p, _)| *p == id)
    {
        Some((_, h)) => {
            h.insert(how);
        }
        None => found.push((id, BTreeSet::from([how]))),
    };
    for (kind, key, how) in [
        (IdentifierKind::Email, "email", "email"),
        (IdentifierKind::Phone, "phone", "phone"),
    ] {
        let Some(raw) = req.traits.get(key).and_then(Value::as_str) else {
            continue;
        };
        if let Ok(id) = state.engine.identifier(kind, raw) {
            if let Some(p) = state.store.profile_by_identifier(ws, &id).await? {
                add(p.id, how);
            }
        }
    }
    let mut queries = Vec::new();
    if let Some(last) = probe.get("last_name") {
        queries.push(last.clone());
        if let Some(first) = probe.get("first_name") {
            queries.push(format!("{first} {last}"));
        }
    }
    for q in queries {
        for s in state.store.search_profiles(ws, &q, NAME_CANDIDATES).await? {
            add(s.id, "name");
        }
    }
    let mut profiles = Vec::with_capacity(found.len());
    for (id, how) in found {
        if let Some(p) = state.store.profile(ws, &id).await? {
            profiles.push((p, how));
        }
    }
    let total = state.store.stats(ws).await?.profiles.max(0) as f64;
    let prior = 1.0 / (total + 1.0);
    let candidate_fields: Vec<_> = profiles
        .iter()
        .map(|(p, _)| crate::dedupe::profile_fields(p))
        .collect();
    let scores = model.score(&probe, &candidate_fields, prior);
    let mut candidates: Vec<MatchCandidateDto> = profiles
        .into_iter()
        .zip(scores)
        .filter(|(_, s)| s.match_probability >= min_p)
        .map(|((p, how), s)| MatchCandidateDto {
            profile_id: p.id.to_string(),
            name: p.name,
            match_probability: s.match_probability,
            match_weight: s.match_weight,
            found_by: how.into_iter().map(str::to_owned).collect(),
            fields: s
                .fields
                .into_iter()
                .map(|f| MatchFieldDto {
                    field: f.column,
                    level: f.level,
                    log2_bayes_factor: f.log2_bayes_factor,
                })
                .collect(),
        })
        .collect();
    let profiles_scored = candidate_fields.len();
    candidates.sort_by(|a, b| b.match_weight.total_cmp(&a.match_weight));
    candidates.truncate(limit);
    Ok(axum::Json(MatchResponseDto {
        model: format!("{} {}", model.name, model.version),
        fields_used: used,
        prior,
        profiles_scored,
        candidates,
        data_quality: issues
            .into_iter()
            .filter_map(|i| serde_json::to_value(i).ok())
            .collect(),
    }))
}
