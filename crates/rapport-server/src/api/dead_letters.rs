//! Dead letters: events a worker failed to apply `max_attempts` times, set aside on the event
//! bus with the last error. Admins list them and replay them (after fixing the cause) or
//! discard them. Only an API node in scale-out mode has a bus; an embedded server applies
//! events while the client waits, so it never has dead letters.
//!
//! The dead-letter stream is shared by every workspace on the bus; each caller sees only the
//! letters of its own workspace, plus letters too damaged to say whose they are (listed
//! without their body).

use axum::extract::State;
use chrono::{DateTime, Utc};
use rapport_bus::{Bus, DeadLetter, DeadLetterId, Published};
use rapport_core::{AuditEntry, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::extract::{Path, Query};
use crate::auth::{perm, Caller, Can};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterParams {
    /// Only letters after this id (for paging forward).
    pub after: Option<u64>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterDto {
    /// Pass to `/v1/dead-letters/{id}/replay`.
    pub id: u64,
    pub partition: u16,
    /// Position the event had in the event log.
    pub sequence: u64,
    /// Deliveries before it was set aside.
    pub attempts: u32,
    /// The last error applying it.
    pub error: String,
    pub dead_lettered_at: DateTime<Utc>,
    /// The event's messageId; absent when the message itself is unreadable.
    pub message_id: Option<String>,
    /// The customer key it was partitioned by, e.g. `user_id:ada`.
    pub customer: Option<String>,
    /// The event as accepted (JSON), when readable.
    #[schema(value_type = Object)]
    pub event: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterListDto {
    pub dead_letters: Vec<DeadLetterDto>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayDto {
    /// The dead letter replayed (it is removed from the list).
    pub id: u64,
    pub partition: u16,
    /// Its new position in the event log; a worker applies it next.
    pub sequence: u64,
}

/// Whether `letter` may be shown to a caller of `workspace`.
fn visible(letter: &DeadLetter, workspace: &WorkspaceId) -> bool {
    letter
        .envelope
        .as_ref()
        .is_none_or(|e| e.workspace() == workspace)
}

impl DeadLetterDto {
    fn from_letter(l: DeadLetter) -> Self {
        let (message_id, customer, event) = match &l.envelope {
            Some(e) => (
                Some(e.event_id().to_owned()),
                Some(e.partition_key().to_owned()),
                e.payload_json::<Value>().ok(),
            ),
            None => (None, None, None),
        };
        Self {
            id: l.id.0,
            partition: l.partition.index(),
            sequence: l.sequence,
            attempts: l.attempts,
            error: l.error,
            dead_lettered_at: l.dead_lettered_at,
            message_id,
            customer,
            event,
        }
    }
}

/// The caller's dead letters in id order, from `after`, and where the next page starts.
pub async fn list_for(
    bus: &dyn Bus,
    workspace: &WorkspaceId,
    after: Option<u64>,
    limit: usize,
) -> Result<(Vec<DeadLetter>, Option<u64>), rapport_bus::BusError> {
    // Other workspaces' letters are skipped; scanning is bounded so one request stays cheap,
    // and the cursor then points past what was scanned.
    let scan_budget = limit.saturating_mul(20).max(200);
    let (mut out, mut scanned) = (Vec::new(), 0usize);
    let mut cursor = after.map(DeadLetterId);
    loop {
        let page = bus.dead_letters(cursor, 100).await?;
        let exhausted = page.len() < 100;
        for letter in page {
            scanned += 1;
            cursor = Some(letter.id);
            if visible(&letter, workspace) {
                out.push(letter);
                if out.len() == limit {
                    return Ok((out, cursor.map(|c| c.0)));
                }
            }
        }
        if exhausted {
            return Ok((out, None));
        }
        if scanned >= scan_budget {
            return Ok((out, cursor.map(|c| c.0)));
        }
    }
}

/// Events set aside after failing `max_attempts` times, oldest first.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "operations", params(DeadLetterParams),
    responses((status = 200, body = DeadLetterListDto), (status = 400, body = ErrorBody),
        (status = 503, description = "The event bus cannot be reached", body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageDeadLetters>,
    Query(p): Query<DeadLetterParams>,
) -> ApiResult<axum::Json<DeadLetterListDto>> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_query",
            "limit must be between 1 and 500",
        ));
    }
    let Some(slot) = state.engine.sink().bus() else {
        return Ok(axum::Json(DeadLetterListDto {
            dead_letters: Vec::new(),
            next_after: None,
        }));
    };
    let (letters, next_after) =
        list_for(slot.get()?.as_ref(), &caller.workspace_id, p.after, limit).await?;
    Ok(axum::Json(DeadLetterListDto {
        dead_letters: letters
            .into_iter()
            .map(DeadLetterDto::from_letter)
            .collect(),
        next_after,
    }))
}

/// The bus of a scale-out API node, or 404 for `what` on an embedded server (which has no
/// dead letters).
fn bus_of(state: &AppState, what: &str) -> ApiResult<std::sync::Arc<dyn Bus>> {
    let slot = state
        .engine
        .sink()
        .bus()
        .ok_or_else(|| ApiError::not_found(what))?;
    Ok(slot.get()?.clone())
}

/// The caller's dead letter `id`, or 404.
async fn find(bus: &dyn Bus, workspace: &WorkspaceId, id: u64) -> ApiResult<DeadLetter> {
    let after = id.checked_sub(1).map(DeadLetterId);
    bus.dead_letters(after, 1)
        .await?
        .into_iter()
        .next()
        .filter(|l| l.id.0 == id && visible(l, workspace))
        .ok_or_else(|| ApiError::not_found(format!("dead letter {id}")))
}

async fn audit(state: &AppState, caller: &Caller, action: &str, l: &DeadLetter) {
    let entry = AuditEntry::new(
        Some(caller.workspace_id.clone()),
        caller.actor(),
        action,
        l.envelope.as_ref().map(|e| e.event_id().to_owned()),
        serde_json::json!({"dead_letter": l.id.0, "partition": l.partition.index(), "error": l.error}),
    );
    if let Err(e) = state.store.append_audit(vec![entry]).await {
        tracing::error!(error = %e, action, "could not audit a dead-letter action");
    }
}

/// Replays the caller's dead letter `id` and audits it (shared with the dashboard).
pub async fn replay_for(
    state: &AppState,
    bus: &dyn Bus,
    caller: &Caller,
    id: u64,
) -> ApiResult<Published> {
    let letter = find(bus, &caller.workspace_id, id).await?;
    let published = bus.replay_dead_letter(letter.id).await?;
    audit(state, caller, "dead_letter.replayed", &letter).await;
    Ok(published)
}

/// Puts a dead letter back on its partition, to be applied again by a worker (fix what made
/// it fail first). The replay is audited.
#[utoipa::path(post, path = "/v1/dead-letters/{id}/replay", tag = "operations",
    params(("id" = u64, Path, description = "Dead letter id")),
    responses((status = 200, body = ReplayDto), (status = 404, body = ErrorBody),
        (status = 503, description = "The event bus cannot be reached", body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageDeadLetters>,
    Path(id): Path<u64>,
) -> ApiResult<axum::Json<ReplayDto>> {
    let bus = bus_of(&state, &format!("dead letter {id}"))?;
    let published = replay_for(&state, bus.as_ref(), &caller, id).await?;
    Ok(axum::Json(ReplayDto {
        id,
        partition: published.partition.index(),
        sequence: published.sequence,
    }))
}

/// Removes a dead letter for good. Audited.
#[utoipa::path(delete, path = "/v1/dead-letters/{id}", tag = "operations",
    params(("id" = u64, Path, description = "Dead letter id")),
    responses((status = 204), (status = 404, body = ErrorBody),
        (status = 503, description = "The event bus cannot be reached", body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn discard(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageDeadLetters>,
    Path(id): Path<u64>,
) -> ApiResult<axum::http::StatusCode> {
    let bus = bus_of(&state, &format!("dead letter {id}"))?;
    let letter = find(bus.as_ref(), &caller.workspace_id, id).await?;
    bus.discard_dead_letter(letter.id).await?;
    audit(&state, &caller, "dead_letter.discarded", &letter).await;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
