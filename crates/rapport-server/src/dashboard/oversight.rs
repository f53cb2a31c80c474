//! Dashboard pages for human oversight: the approval queue (approve or reject, with a note),
//! customers waiting for a person, the policy in force, and a customer's decisions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use rapport_core::{DecisionRecord, DecisionStatus, ProfileId};
use rapport_store::DecisionQuery;
use serde::Deserialize;

use super::governance::allowed;
use super::layout::{ago, page};
use super::DashboardUser;
use crate::actions::ActionError;
use crate::auth::perm;
use crate::AppState;

fn params_summary(d: &DecisionRecord) -> String {
    let Some(m) = d.params.as_object() else {
        return String::new();
    };
    m.iter()
        .filter(|(k, _)| k.as_str() != "text")
        .map(|(k, v)| {
            format!(
                "{k} {}",
                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
            )
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

pub async fn approvals(State(state): State<AppState>, user: DashboardUser) -> Response {
    if let Err(r) = allowed::<perm::ReadCustomers>(&state, &user, "/approvals").await {
        return r;
    }
    let ws = &user.0.workspace_id;
    if let Err(e) = state.engine.expire_due(ws).await {
        tracing::warn!(error = %e, "expiring held decisions failed");
    }
    let pending = state
        .store
        .decisions(DecisionQuery {
            workspace: ws.clone(),
            profile: None,
            status: Some(DecisionStatus::PendingApproval),
            limit: 200,
        })
        .await
        .unwrap_or_default();
    let waiting = state.store.open_handoffs(ws, 200).await.unwrap_or_default();
    let policy = state.engine.policy();
    let can_approve = user.0.role.allows(rapport_core::Permission::ApproveActions);
    page("Approvals", user.0.workspace_name.as_str(), html! {
        h1 { "Approvals" }
        p.muted { "High-stakes actions wait here until an approver decides. Nothing in this list has happened yet." }
        table #approvals {
            tr { th { "Customer" } th { "Action" } th { "Explanation" } th { "Held by" } th { "Approvals" } th { "Expires" } th {} }
            @for d in &pending {
                @let a = d.approval.as_ref();
                tr.pending {
                    td { a href=(format!("/customers/{}", d.profile_id)) .mono { (d.profile_id) } }
                    td { strong { (d.kind) } br; span.muted { (params_summary(d)) } }
                    td { (d.explanation) }
                    td { @if let Some(a) = a { (a.rules.join(", ")) } }
                    td.mono { @if let Some(a) = a { (a.steps.iter().filter(|s| s.approved).count()) " / " (a.approvers_needed) } }
                    td { @if let Some(a) = a { (a.expires_at.format("%Y-%m-%d %H:%M UTC")) } }
                    td {
                        @if can_approve {
                            form method="post" action=(format!("/approvals/{}/answer", d.id)) {
                                input type="text" name="note" placeholder="note (optional)";
                                button type="submit" name="answer" value="approve" { "Approve" }
                                " "
                                button type="submit" name="answer" value="reject" { "Reject" }
                            }
                        } @else {
                            span.muted { "a supervisor decides" }
                        }
                    }
                }
            }
            @if pending.is_empty() { tr { td colspan="7" .muted { "Nothing is waiting for approval." } } }
        }
        h2 { "Waiting for a person" }
        table #handoffs {
            tr { th { "Customer" } th { "Asked" } th { "How" } th {} }
            @for h in &waiting {
                tr {
                    td { a href=(format!("/customers/{}", h.profile_id)) .mono { (h.profile_id) } }
                    td { (ago(Some(h.requested_at))) }
                    td { (h.source.replace('_', " ")) }
                    td {
                        form method="post" action=(format!("/handoffs/{}/resolve", h.profile_id)) {
                            button type="submit" { "I've taken over" }
                        }
                    }
                }
            }
            @if waiting.is_empty() { tr { td colspan="4" .muted { "Nobody is waiting for a person." } } }
        }
        h2 { "Policy in force" }
        table #policy {
            tr { th { "Rule" } th { "Actions" } th { "When" } th { "Approvers" } th { "Expires after" } }
            @for r in policy.rules() {
                tr {
                    td.mono { (r.name) }
                    td.mono { (r.actions.join(", ")) }
                    td.mono { (r.when.as_deref().unwrap_or("always")) }
                    td { (r.approvers) }
                    td { (r.expires_after.as_secs() / 3600) " h" }
                }
            }
            @if policy.rules().is_empty() { tr { td colspan="5" .muted { "No policy: nothing waits for approval (set governance.policy_file)." } } }
        }
    })
    .into_response()
}

#[derive(Debug, Deserialize)]
pub struct AnswerForm {
    pub answer: String,
    pub note: Option<String>,
}

pub async fn answer(
    State(state): State<AppState>,
    user: DashboardUser,
    Path(id): Path<String>,
    Form(form): Form<AnswerForm>,
) -> Response {
    let path = format!("/approvals/{id}/answer");
    if let Err(r) = allowed::<perm::ApproveActions>(&state, &user, &path).await {
        return r;
    }
    let approved = match form.answer.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return (StatusCode::BAD_REQUEST, "answer must be approve or reject").into_response(),
    };
    let note = form.note.filter(|n| !n.trim().is_empty());
    match state
        .engine
        .answer_approval(&user.0.workspace_id, &id, user.0.actor(), approved, note)
        .await
    {
        Ok(_) => Redirect::to("/approvals").into_response(),
        Err(e) => {
            let status = match &e {
                ActionError::NotFound(_) => StatusCode::NOT_FOUND,
                ActionError::Forbidden(..) => StatusCode::FORBIDDEN,
                ActionError::Invalid(..) => StatusCode::BAD_REQUEST,
                ActionError::Conflict(..) => StatusCode::CONFLICT,
                ActionError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (
                status,
                page(
                    "Approval not taken",
                    user.0.workspace_name.as_str(),
                    html! { h1 { "Approval not taken" } p #approval-error { (e.to_string()) } p { a href="/approvals" { "Back to approvals" } } },
                ),
            )
                .into_response()
        }
    }
}

pub async fn resolve(
    State(state): State<AppState>,
    user: DashboardUser,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/handoffs/{id}/resolve");
    if let Err(r) = allowed::<perm::RequestActions>(&state, &user, &path).await {
        return r;
    }
    let Some(profile) = ProfileId::parse(&id) else {
        return (StatusCode::NOT_FOUND, "no such customer").into_response();
    };
    match state
        .engine
        .resolve_handoff(&user.0.workspace_id, &profile, user.0.actor())
        .await
    {
        Ok(_) => Redirect::to("/approvals").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "resolving a request for a person failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not record that; see the server log",
            )
                .into_response()
        }
    }
}

/// The decisions panel on the customer page.
pub async fn decisions_panel(state: &AppState, user: &DashboardUser, id: &ProfileId) -> Markup {
    let decisions = state
        .store
        .decisions(DecisionQuery {
            workspace: user.0.workspace_id.clone(),
            profile: Some(id.clone()),
            status: None,
            limit: 20,
        })
        .await
        .unwrap_or_default();
    let waiting = state
        .store
        .handoff(&user.0.workspace_id, id)
        .await
        .ok()
        .flatten()
        .filter(|h| h.resolved_at.is_none());
    html! {
        h2 { "Decisions" }
        @if let Some(h) = waiting {
            p.chip.warn #waiting-for-person { "Asked for a person " (ago(Some(h.requested_at))) ": automated replies are paused" }
        }
        table #decisions {
            @for d in &decisions {
                tr {
                    td { span.chip { (d.status.as_str().replace('_', " ")) } }
                    td { strong { (d.kind) } br; (d.explanation)
                         @if let Some(r) = &d.refusal { br; span.muted { "Not done: " (r) } } }
                    td { (ago(Some(d.created_at))) }
                }
            }
            @if decisions.is_empty() { tr { td.muted { "No decisions yet." } } }
        }
    }
}
