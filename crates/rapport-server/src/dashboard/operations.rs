//! Dashboard page for operations: the dead letters of the event bus (events the workers could
//! not apply), with a replay button each.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::governance::allowed;
use super::layout::{ago, page};
use super::DashboardUser;
use crate::api::dead_letters::list_for;
use crate::auth::perm;
use crate::AppState;

#[derive(Debug, Deserialize, Default)]
pub struct DeadLetterPage {
    pub after: Option<u64>,
    pub replayed: Option<u64>,
}

const PAGE: usize = 50;

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "dashboard: the event bus cannot be reached");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "The event bus cannot be reached right now; try again in a moment.",
    )
        .into_response()
}

pub async fn dead_letters(
    State(state): State<AppState>,
    user: DashboardUser,
    Query(q): Query<DeadLetterPage>,
) -> Response {
    if let Err(r) = allowed::<perm::ManageDeadLetters>(&state, &user, "/dead-letters").await {
        return r;
    }
    let ws = user.0.workspace_name.as_str();
    let Some(slot) = state.engine.sink().bus() else {
        return page("Dead letters", ws, html! {
            h1 { "Dead letters" }
            p.muted #embedded { "This server runs embedded: events are applied while the client waits, so none are ever set aside. Dead letters exist on API nodes of a scale-out deployment (" span.mono { "rapport serve --mode api" } ")." }
        })
        .into_response();
    };
    let bus = match slot.get() {
        Ok(b) => b.clone(),
        Err(e) => return unavailable(e),
    };
    let (letters, next) = match list_for(bus.as_ref(), &user.0.workspace_id, q.after, PAGE).await {
        Ok(x) => x,
        Err(e) => return unavailable(e),
    };
    page("Dead letters", ws, html! {
        h1 { "Dead letters" }
        p.muted {
            "Events a worker failed to apply " (bus.config().max_attempts) " times, set aside with the last error, oldest first. "
            "Fix the cause, then replay: the event goes back on its customer's partition and is applied once (a messageId already applied is skipped)."
        }
        @if let Some(id) = q.replayed { p.good #replayed { "Dead letter " (id) " replayed." } }
        table #dead-letters {
            tr { th { "#" } th { "When" } th { "Customer" } th { "messageId" } th { "Attempts" } th { "Error" } th { "Event" } th {} }
            @for l in &letters {
                tr {
                    td.mono { (l.id.0) }
                    td { (ago(Some(l.dead_lettered_at))) }
                    td.mono { (l.envelope.as_ref().map(|e| e.partition_key()).unwrap_or("(unreadable)")) }
                    td.mono { (l.envelope.as_ref().map(|e| e.event_id()).unwrap_or("")) }
                    td { (l.attempts) }
                    td.small { (l.error) }
                    td.mono.small {
                        @if let Some(e) = &l.envelope { (String::from_utf8_lossy(&e.payload()[..e.payload().len().min(300)])) }
                    }
                    td {
                        form method="post" action=(format!("/dead-letters/{}/replay", l.id.0)) {
                            button type="submit" { "Replay" }
                        }
                    }
                }
            }
            @if letters.is_empty() { tr { td colspan="8" .muted { "No dead letters." } } }
        }
        @if let Some(after) = next {
            p { a href=(format!("/dead-letters?after={after}")) { "More →" } }
        }
    })
    .into_response()
}

pub async fn replay(
    State(state): State<AppState>,
    user: DashboardUser,
    Path(id): Path<u64>,
) -> Response {
    if let Err(r) = allowed::<perm::ManageDeadLetters>(&state, &user, "/dead-letters").await {
        return r;
    }
    let Some(slot) = state.engine.sink().bus() else {
        return (StatusCode::NOT_FOUND, "No such dead letter.").into_response();
    };
    let bus = match slot.get() {
        Ok(b) => b.clone(),
        Err(e) => return unavailable(e),
    };
    match crate::api::dead_letters::replay_for(&state, bus.as_ref(), &user.0, id).await {
        Ok(_) => Redirect::to(&format!("/dead-letters?replayed={id}")).into_response(),
        Err(e) => e.into_response(),
    }
}
