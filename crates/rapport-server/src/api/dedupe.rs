//! Probabilistic dedupe over HTTP: `POST /v1/identity/dedupe` runs it on the caller's
//! workspace; `/v1/identity/review` lists, shows and decides the pairs it queued for a person.
//! Everything here needs the `manage_identity` permission (supervisors and admins).

use axum::extract::{Path, Query, State};
use axum::Json;
use rapport_core::error::ErrorKind;
use rapport_store::{ProfileMergeOutcome, ReviewPair, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::dto::{MergeDto, ProfileDto};
use crate::auth::{perm, Can};
use crate::dedupe::{DedupeReport, DedupeThresholds};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

/// What a dedupe run should do; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DedupeRequest {
    /// Say what would be done without writing anything.
    #[serde(default)]
    pub dry_run: bool,
    /// Merge pairs at or above this probability (default: `identity.dedupe_auto_merge`).
    pub auto_merge_threshold: Option<f64>,
    /// Queue pairs at or above this probability for review (default:
    /// `identity.dedupe_review`).
    pub review_threshold: Option<f64>,
}

/// Finds likely duplicate profiles in the workspace with the people model and, best pair
/// first, merges those at or above the auto-merge threshold (logged as
/// `probabilistic_dedupe`, reversible by unmerge; a merge a guard refuses is logged as
/// refused and queued), queues those at or above the review threshold, and leaves the rest.
/// Pairs the review queue holds already (pending or decided) are skipped. Audited.
#[utoipa::path(post, path = "/v1/identity/dedupe", tag = "identity",
    request_body = DedupeRequest,
    responses((status = 200, body = DedupeReport), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn run(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageIdentity>,
    super::extract::Json(req): super::extract::Json<DedupeRequest>,
) -> ApiResult<Json<DedupeReport>> {
    let defaults = state.engine.dedupe_thresholds();
    let thresholds = DedupeThresholds {
        auto_merge: req.auto_merge_threshold.unwrap_or(defaults.auto_merge),
        review: req.review_threshold.unwrap_or(defaults.review),
    };
    let problems = thresholds.problems();
    if !problems.is_empty() {
        return Err(ApiError::invalid("invalid_body", problems.join("; ")));
    }
    let report = state
        .engine
        .dedupe(
            &caller.workspace_id,
            thresholds,
            req.dry_run,
            caller.actor(),
        )
        .await?;
    Ok(Json(report))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReviewListParams {
    /// `pending` (default), `merged`, `rejected` or `all`.
    pub status: Option<String>,
    /// Pairs to skip (from the previous page's `next_offset`).
    pub offset: Option<usize>,
    /// 1 to 200; default 50.
    pub limit: Option<usize>,
}

/// A pair of profiles in the review queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewPairDto {
    pub id: String,
    /// The two profiles as the run found them; read them through redirects.
    pub profile_a: String,
    pub profile_b: String,
    pub match_probability: f64,
    pub match_weight: f64,
    /// Each field's agreement level (`exact`, `jaro_winkler>=0.92`, ..., `else`, `null`) and
    /// log2 Bayes factor.
    #[schema(value_type = Vec<Object>)]
    pub fields: Value,
    /// The guard that refused to merge the pair automatically, if one did.
    pub refusal: Option<String>,
    /// `pending`, `merged` or `rejected`.
    pub status: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
    pub decided_by: Option<String>,
}

impl From<ReviewPair> for ReviewPairDto {
    fn from(p: ReviewPair) -> Self {
        Self {
            id: p.id,
            profile_a: p.profile_a.to_string(),
            profile_b: p.profile_b.to_string(),
            match_probability: p.match_probability,
            match_weight: p.match_weight,
            fields: p.fields,
            refusal: p.refusal,
            status: p.status,
            created_at: p.created_at,
            decided_at: p.decided_at,
            decided_by: p.decided_by,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewListDto {
    pub pairs: Vec<ReviewPairDto>,
    /// Present when more pairs may follow.
    pub next_offset: Option<usize>,
}

/// The review queue, most probable first, a page at a time.
#[utoipa::path(get, path = "/v1/identity/review", tag = "identity", params(ReviewListParams),
    responses((status = 200, body = ReviewListDto), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageIdentity>,
    Query(params): Query<ReviewListParams>,
) -> ApiResult<Json<ReviewListDto>> {
    let status = match params.status.as_deref().unwrap_or("pending") {
        "all" => None,
        s @ ("pending" | "merged" | "rejected") => Some(s),
        other => {
            return Err(ApiError::invalid(
                "invalid_query",
                format!("status {other:?} is not pending, merged, rejected or all"),
            ))
        }
    };
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_query",
            "limit must be between 1 and 200",
        ));
    }
    let offset = params.offset.unwrap_or(0);
    let pairs = state
        .store
        .review_pairs(&caller.workspace_id, status, offset, limit)
        .await?;
    let next_offset = (pairs.len() == limit).then_some(offset + limit);
    Ok(Json(ReviewListDto {
        pairs: pairs.into_iter().map(Into::into).collect(),
        next_offset,
    }))
}

/// One pair with both profiles as they now are (read through redirects: after a merge both
/// sides show the survivor).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewDetailDto {
    pub pair: ReviewPairDto,
    pub profile_a: Option<ProfileDto>,
    pub profile_b: Option<ProfileDto>,
}

/// A pair of the review queue with both profiles side by side and the explanation.
#[utoipa::path(get, path = "/v1/identity/review/{id}", tag = "identity",
    params(("id" = String, Path, description = "Review pair id")),
    responses((status = 200, body = ReviewDetailDto), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageIdentity>,
    Path(id): Path<String>,
) -> ApiResult<Json<ReviewDetailDto>> {
    let ws = &caller.workspace_id;
    let pair = state
        .store
        .review_pair(ws, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("review pair {id}")))?;
    let a = state.store.profile(ws, &pair.profile_a).await?;
    let b = state.store.profile(ws, &pair.profile_b).await?;
    Ok(Json(ReviewDetailDto {
        pair: pair.into(),
        profile_a: a.map(Into::into),
        profile_b: b.map(Into::into),
    }))
}

/// What deciding a pair did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewDecisionDto {
    pub pair: ReviewPairDto,
    /// For a merge: the merge log entry (`POST /v1/profiles/{survivor}/unmerge` undoes it).
    pub merge: Option<MergeDto>,
    /// For a merge: the profile that kept its id.
    pub survivor: Option<String>,
}

/// The errors a decision answers with: 404 `not_found` for an unknown pair, 409
/// `already_decided` for one decided before, 409 `merge_refused` (naming the guard) when a
/// guard refuses the merge (the refusal is in the merge log; the pair stays pending).
fn decision_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) => ApiError::new(ErrorKind::Conflict, "already_decided", m),
        StoreError::NotFound(m) => ApiError::new(ErrorKind::NotFound, "not_found", m),
        other => other.into(),
    }
}

async fn decide(
    state: AppState,
    caller: crate::auth::Caller,
    id: String,
    merge: bool,
) -> ApiResult<Json<ReviewDecisionDto>> {
    let outcome = state
        .engine
        .decide_review(&caller.workspace_id, &id, merge, caller.actor())
        .await
        .map_err(decision_error)?;
    let (merge, survivor) = match outcome.merge {
        Some(ProfileMergeOutcome::Refused { merge }) => {
            let guard = merge.refusal.unwrap_or_default();
            return Err(ApiError::new(
                ErrorKind::Conflict,
                "merge_refused",
                format!(
                    "the identity guard {guard} refuses to merge profiles {} and {} (recorded in the merge log as merge {}); reject the pair instead, or change the guard",
                    merge.survivor, merge.merged, merge.id
                ),
            ));
        }
        Some(ProfileMergeOutcome::Merged { merge }) => {
            let survivor = merge.survivor.to_string();
            (Some(merge.into()), Some(survivor))
        }
        Some(ProfileMergeOutcome::AlreadyOne { profile }) => (None, Some(profile.to_string())),
        None => (None, None),
    };
    Ok(Json(ReviewDecisionDto {
        pair: outcome.pair.into(),
        merge,
        survivor,
    }))
}

/// Decides that the pair is one customer: merges the two profiles through the identity
/// guards (logged as `dedupe_review` with the pair's explanation, audited, reversible by
/// unmerge). 404 `not_found`, 409 `already_decided`, 409 `merge_refused` naming the guard.
#[utoipa::path(post, path = "/v1/identity/review/{id}/merge", tag = "identity",
    params(("id" = String, Path, description = "Review pair id")),
    responses((status = 200, body = ReviewDecisionDto), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn merge(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageIdentity>,
    Path(id): Path<String>,
) -> ApiResult<Json<ReviewDecisionDto>> {
    decide(state, caller, id, true).await
}

/// Decides that the pair is two customers: later dedupe runs leave it alone. Audited.
/// 404 `not_found`, 409 `already_decided`.
#[utoipa::path(post, path = "/v1/identity/review/{id}/reject", tag = "identity",
    params(("id" = String, Path, description = "Review pair id")),
    responses((status = 200, body = ReviewDecisionDto), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageIdentity>,
    Path(id): Path<String>,
) -> ApiResult<Json<ReviewDecisionDto>> {
    decide(state, caller, id, false).await
}
