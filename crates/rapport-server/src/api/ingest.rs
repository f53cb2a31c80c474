//! Segment-compatible ingestion: `/v1/identify`, `/track`, `/page`, `/screen`, `/group`,
//! `/alias` and `/batch`. A 200 means the events are durable: applied to the store (embedded
//! mode) or stored on the event bus for a worker to apply (`rapport serve --mode api`). When
//! the bus cannot store them the answer is 503 `bus_unavailable` with `Retry-After`.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::Json;
use chrono::Utc;
use rapport_core::error::ErrorKind;
use rapport_core::EventType;
use rapport_ingest::{parse_batch, parse_single};

use super::dto::IngestResponse;
use crate::auth::{perm, Can};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

/// Reads at most `limit` bytes of body; more is a 413 with our own error code.
async fn read_limited(body: Body, limit: usize, code: &'static str) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, limit + 1)
        .await
        .map_err(|e| {
            // A body over the limit and a broken connection both land here; the first is by
            // far the common case for a client that is still there to read the answer.
            let text = e.to_string();
            if text.contains("length limit") {
                ApiError::new(
                    ErrorKind::TooLarge,
                    code,
                    format!("body exceeds {limit} bytes"),
                )
            } else {
                ApiError::invalid("invalid_body", format!("could not read the body: {text}"))
            }
        })
        .and_then(|b| {
            if b.len() > limit {
                Err(ApiError::new(
                    ErrorKind::TooLarge,
                    code,
                    format!("body exceeds {limit} bytes"),
                ))
            } else {
                Ok(b)
            }
        })
}

async fn single(
    state: AppState,
    writer: Can<perm::Ingest>,
    event_type: EventType,
    body: Body,
) -> ApiResult<Json<IngestResponse>> {
    let bytes = read_limited(body, state.limits.max_event_bytes, "event_too_large").await?;
    let event = parse_single(event_type, &bytes, Utc::now(), &state.limits)?;
    let summary = state
        .engine
        .ingest(&writer.0.workspace_id, vec![event])
        .await?;
    Ok(Json(IngestResponse::from(summary)))
}

macro_rules! single_endpoint {
    ($fn:ident, $ty:expr, $path:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "ingest",
            request_body(content = serde_json::Value, description = "A Segment-spec event", content_type = "application/json"),
            responses(
                (status = 200, description = "Durably accepted (or a repeated messageId, acknowledged and not applied again)", body = IngestResponse),
                (status = 400, description = "Invalid event", body = ErrorBody),
                (status = 401, description = "Missing or invalid key", body = ErrorBody),
                (status = 413, description = "Event larger than 32 KB", body = ErrorBody),
                (status = 503, description = "Cannot be stored now (`bus_unavailable`: the event bus is down); nothing was acknowledged. Retry after `Retry-After` seconds with the same messageId", body = ErrorBody),
            ),
            security(("basic" = []), ("bearer" = [])))]
        pub async fn $fn(State(state): State<AppState>, writer: Can<perm::Ingest>, body: Body) -> ApiResult<Json<IngestResponse>> {
            single(state, writer, $ty, body).await
        }
    };
}

single_endpoint!(
    identify,
    EventType::Identify,
    "/v1/identify",
    "Who the customer is, and their traits."
);
single_endpoint!(
    track,
    EventType::Track,
    "/v1/track",
    "Something the customer did."
);
single_endpoint!(
    page,
    EventType::Page,
    "/v1/page",
    "A web page the customer viewed."
);
single_endpoint!(
    screen,
    EventType::Screen,
    "/v1/screen",
    "An app screen the customer viewed."
);
single_endpoint!(
    group,
    EventType::Group,
    "/v1/group",
    "The account or organisation the customer belongs to."
);
single_endpoint!(
    alias,
    EventType::Alias,
    "/v1/alias",
    "Links a previous identity to a user id."
);

/// Many events at once, as Segment's libraries send them. All or nothing: an invalid event
/// refuses the whole batch, listing every failing index.
#[utoipa::path(post, path = "/v1/batch", tag = "ingest",
    request_body(content = serde_json::Value, description = "`{\"batch\": [events...], \"sentAt\", \"context\"}`", content_type = "application/json"),
    responses(
        (status = 200, description = "All events durable", body = IngestResponse),
        (status = 400, description = "Invalid batch; `errors` lists each failing index", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 413, description = "Batch larger than 500 KB", body = ErrorBody),
        (status = 503, description = "Cannot be stored now (`bus_unavailable`: the event bus is down); nothing was acknowledged. Retry after `Retry-After` seconds with the same messageId", body = ErrorBody),
    ),
    security(("basic" = []), ("bearer" = [])))]
pub async fn batch(
    State(state): State<AppState>,
    writer: Can<perm::Ingest>,
    body: Body,
) -> ApiResult<Json<IngestResponse>> {
    let bytes = read_limited(body, state.limits.max_batch_bytes, "batch_too_large").await?;
    let events = parse_batch(&bytes, Utc::now(), &state.limits)?;
    let summary = state.engine.ingest(&writer.0.workspace_id, events).await?;
    Ok(Json(IngestResponse::from(summary)))
}
