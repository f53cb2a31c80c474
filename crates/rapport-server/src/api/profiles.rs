//! Reading profiles: by id, by identifier, by search, and their timelines.

use axum::extract::State;
use axum::Json;

use super::extract::{Path, Query};
use chrono::{Duration, Utc};
use rapport_core::{IdentifierKind, ProfileId};
use rapport_store::EventCursor;
use serde::Deserialize;
use utoipa::IntoParams;

use super::dto::{
    ConversationDto, ConversationListDto, EventPageDto, MergeListDto, ProfileDto, ProfileListDto,
    StatsDto, UnmergeDto, UnmergeResultDto,
};
use crate::auth::{perm, Can};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

/// Exactly one identifier to look a profile up by.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LookupParams {
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub anonymous_id: Option<String>,
}

/// The profile that carries an identifier.
#[utoipa::path(get, path = "/v1/profiles", tag = "profiles", params(LookupParams),
    responses((status = 200, body = ProfileDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn lookup(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Query(params): Query<LookupParams>,
) -> ApiResult<Json<ProfileDto>> {
    let given: Vec<(IdentifierKind, String)> = [
        (IdentifierKind::UserId, params.user_id),
        (IdentifierKind::Email, params.email),
        (IdentifierKind::Phone, params.phone),
        (IdentifierKind::AnonymousId, params.anonymous_id),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let [(kind, value)] = given.as_slice() else {
        return Err(ApiError::invalid(
            "invalid_query",
            "give exactly one of user_id, email, phone or anonymous_id",
        ));
    };
    let id = state
        .engine
        .identifier(*kind, value)
        .map_err(|e| ApiError::invalid("invalid_query", e))?;
    let profile = state
        .store
        .profile_by_identifier(&caller.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("profile with {id}")))?;
    Ok(Json(profile.into()))
}

fn profile_id(raw: &str) -> ApiResult<ProfileId> {
    ProfileId::parse(raw).ok_or_else(|| ApiError::not_found(format!("profile {raw}")))
}

/// A profile by id. An id merged into another profile answers the surviving profile.
#[utoipa::path(get, path = "/v1/profiles/{id}", tag = "profiles",
    params(("id" = String, Path, description = "Profile id")),
    responses((status = 200, body = ProfileDto), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn get_profile(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Path(id): Path<String>,
) -> ApiResult<Json<ProfileDto>> {
    let id = profile_id(&id)?;
    let profile = state
        .store
        .profile(&caller.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("profile {id}")))?;
    Ok(Json(profile.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 500; default 50.
    pub limit: Option<usize>,
}

fn limit_of(raw: Option<usize>) -> ApiResult<usize> {
    match raw.unwrap_or(50) {
        n @ 1..=500 => Ok(n),
        _ => Err(ApiError::invalid(
            "invalid_query",
            "limit must be between 1 and 500",
        )),
    }
}

/// A profile's timeline, newest first by event time, with cursor pagination.
#[utoipa::path(get, path = "/v1/profiles/{id}/events", tag = "profiles",
    params(("id" = String, Path, description = "Profile id"), PageParams),
    responses((status = 200, body = EventPageDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn events(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<EventPageDto>> {
    let id = profile_id(&id)?;
    let limit = limit_of(params.limit)?;
    let cursor = params
        .cursor
        .as_deref()
        .map(|c| {
            EventCursor::decode(c).ok_or_else(|| {
                ApiError::invalid("invalid_cursor", "cursor is not one this API gave")
            })
        })
        .transpose()?;
    let page = state
        .store
        .profile_events(&caller.workspace_id, &id, cursor.as_ref(), limit)
        .await?;
    Ok(Json(page.into()))
}

/// A profile's conversations, most recently active first.
#[utoipa::path(get, path = "/v1/profiles/{id}/conversations", tag = "profiles",
    params(("id" = String, Path, description = "Profile id")),
    responses((status = 200, body = ConversationListDto), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn conversations(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Path(id): Path<String>,
) -> ApiResult<Json<ConversationListDto>> {
    let id = profile_id(&id)?;
    let list = state
        .store
        .profile_conversations(&caller.workspace_id, &id)
        .await?;
    Ok(Json(ConversationListDto {
        conversations: list.into_iter().map(ConversationDto::from).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// A prefix of the name, of any word of the name, or of the email.
    pub q: String,
    /// 1 to 500; default 50.
    pub limit: Option<usize>,
}

/// The merges that formed a profile, oldest first, each with the event and rule behind it.
#[utoipa::path(get, path = "/v1/profiles/{id}/merges", tag = "profiles",
    params(("id" = String, Path, description = "Profile id")),
    responses((status = 200, body = MergeListDto), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn merges(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Path(id): Path<String>,
) -> ApiResult<Json<MergeListDto>> {
    let id = profile_id(&id)?;
    let merges = state.store.merges(&caller.workspace_id, &id).await?;
    Ok(Json(MergeListDto {
        merges: merges.into_iter().map(Into::into).collect(),
    }))
}

/// Undoes a merge of the profile: the merged profile gets back its own events, identifiers,
/// conversations and traits (both sides are rebuilt by replaying their events) and its id
/// resolves to itself again; the survivor keeps its id. `add_guard` keeps the two from merging
/// again. 409 `not_merged` when the profile was never merged (or the merge is not its own or
/// was undone already). Audited.
#[utoipa::path(post, path = "/v1/profiles/{id}/unmerge", tag = "profiles",
    params(("id" = String, Path, description = "Profile id")),
    request_body = UnmergeDto,
    responses((status = 200, body = UnmergeResultDto), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn unmerge(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageIdentity>,
    Path(id): Path<String>,
    super::extract::Json(body): super::extract::Json<UnmergeDto>,
) -> ApiResult<Json<UnmergeResultDto>> {
    let id = profile_id(&id)?;
    let outcome = state
        .engine
        .unmerge(
            &caller.workspace_id,
            &id,
            rapport_store::UnmergeRequest {
                merge_id: body.merge_id,
                add_guard: body.add_guard,
            },
            caller.actor(),
        )
        .await?;
    Ok(Json(outcome.into()))
}

/// Profiles by name or email prefix, most recently active first.
#[utoipa::path(get, path = "/v1/profiles/search", tag = "profiles", params(SearchParams),
    responses((status = 200, body = ProfileListDto), (status = 400, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn search(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Query(params): Query<SearchParams>,
) -> ApiResult<Json<ProfileListDto>> {
    let limit = limit_of(params.limit)?;
    let found = state
        .store
        .search_profiles(&caller.workspace_id, &params.q, limit)
        .await?;
    Ok(Json(ProfileListDto {
        profiles: found.into_iter().map(Into::into).collect(),
    }))
}

/// Totals for the workspace and events by channel over the last 24 hours.
#[utoipa::path(get, path = "/v1/stats", tag = "profiles",
    responses((status = 200, body = StatsDto)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn stats(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
) -> ApiResult<Json<StatsDto>> {
    let ws = &caller.workspace_id;
    let totals = state.store.stats(ws).await?;
    let day = state
        .store
        .channel_counts(ws, Utc::now() - Duration::hours(24))
        .await?;
    Ok(Json(StatsDto::new(
        caller.workspace_name.to_string(),
        totals,
        day,
    )))
}
