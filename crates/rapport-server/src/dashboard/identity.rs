//! The identity graph on the customer page (identifiers by kind, every merge, refusal and
//! unmerge, with an unmerge button) and the data-quality page (invalid values, merges,
//! refused merges and unmerges over time).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{Duration, Utc};
use maud::{html, Markup};
use rapport_core::{IdentifierKind, Profile, ProfileId};
use rapport_store::{MergeRecord, StoreError, UnmergeRequest};
use serde::Deserialize;

use super::governance::allowed;
use super::layout::{ago, page};
use super::DashboardUser;
use crate::auth::perm;
use crate::AppState;

fn failure(e: StoreError) -> Response {
    tracing::error!(error = %e, "dashboard identity page failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "The store could not be read or written; see the server log.",
    )
        .into_response()
}

fn refusal_text(code: &str) -> &'static str {
    match code {
        "blocked" => "a placeholder value",
        "unauthenticated_merge" => {
            "profile-theft guard: both have a user id and the event was not authenticated"
        }
        "limit_exceeded" => "a per-kind identifier limit",
        "merge_blocked" => "an operator unmerged them",
        _ => "a guard",
    }
}

fn merge_row(m: &MergeRecord, profile: &ProfileId, can_unmerge: bool) -> Markup {
    let other = if m.survivor == *profile {
        &m.merged
    } else {
        &m.survivor
    };
    let via = m.identifier_kinds.join(", ").replace('_', " ");
    html! {
        tr.(format!("merge-{}", m.status)) {
            td.mono { "#" (m.id) }
            td {
                @match m.status.as_str() {
                    "merged" => span.chip.good { "merged" },
                    "unmerged" => span.chip.muted { "unmerged" },
                    _ => span.chip.warn { "refused" },
                }
            }
            td.small {
                a.mono href=(format!("/customers/{other}")) { (other) }
                @if m.status == "refused" {
                    br; "kept apart by " (refusal_text(m.refusal.as_deref().unwrap_or("")))
                } @else {
                    br; "by " (m.rule.replace('_', " ")) " on shared " (via)
                }
            }
            td.small {
                (ago(Some(m.at)))
                @if let Some(u) = m.unmerged_at { br; "undone " (ago(Some(u))) }
            }
            td {
                @if can_unmerge && m.status == "merged" {
                    form method="post" action=(format!("/customers/{profile}/unmerge")) {
                        input type="hidden" name="merge_id" value=(m.id);
                        label.small { input type="checkbox" name="add_guard" value="true"; " keep apart" }
                        " "
                        button.danger type="submit" { "Unmerge" }
                    }
                }
            }
        }
    }
}

/// The identity graph of a profile: its identifiers by kind and its merge history.
pub async fn graph_panel(state: &AppState, user: &DashboardUser, profile: &Profile) -> Markup {
    let merges = state
        .store
        .merges(&user.0.workspace_id, &profile.id)
        .await
        .unwrap_or_default();
    let can_unmerge = user.0.role.allows(rapport_core::Permission::ManageIdentity);
    html! {
        h2 { "Identity graph" }
        div #identity-graph {
            p.small {
                span.chip.intent.mono { (profile.id) }
                @if !profile.merged_ids.is_empty() {
                    " also known as "
                    @for m in &profile.merged_ids { span.chip.mono { (m) } }
                }
            }
            table.small {
                @for kind in IdentifierKind::ALL {
                    @let ids: Vec<_> = profile.identities.iter().filter(|i| i.kind() == kind).collect();
                    @if !ids.is_empty() {
                        tr { td { (kind.as_str().replace('_', " ")) } td { @for i in ids { span.chip.mono { (i.value()) } } } }
                    }
                }
            }
            @if merges.is_empty() {
                p.muted.small { "Never merged." }
            } @else {
                table #merges {
                    tr { th { "Merge" } th { "Outcome" } th { "Other profile" } th { "When" } th {} }
                    @for m in &merges { (merge_row(m, &profile.id, can_unmerge)) }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct UnmergeForm {
    pub merge_id: i64,
    #[serde(default)]
    pub add_guard: Option<String>,
}

pub async fn unmerge(
    State(state): State<AppState>,
    user: DashboardUser,
    Path(id): Path<String>,
    Form(form): Form<UnmergeForm>,
) -> Response {
    if let Err(r) = allowed::<perm::ManageIdentity>(&state, &user, "/customers/unmerge").await {
        return r;
    }
    let Some(id) = ProfileId::parse(&id) else {
        return (StatusCode::NOT_FOUND, "no such customer").into_response();
    };
    let request = UnmergeRequest {
        merge_id: Some(form.merge_id),
        add_guard: form.add_guard.is_some(),
    };
    match state
        .engine
        .unmerge(&user.0.workspace_id, &id, request, user.0.actor())
        .await
    {
        Ok(o) => Redirect::to(&format!("/customers/{}", o.survivor)).into_response(),
        Err(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, "no such customer").into_response(),
        Err(StoreError::NotMerged(m)) => (StatusCode::CONFLICT, m).into_response(),
        Err(e) => failure(e),
    }
}

/// Invalid values, merges, refused merges and unmerges over the last 30 days.
pub async fn data_quality(State(state): State<AppState>, user: DashboardUser) -> Response {
    let since = Utc::now() - Duration::days(30);
    let health = match state
        .store
        .identity_health(&user.0.workspace_id, since)
        .await
    {
        Ok(h) => h,
        Err(e) => return failure(e),
    };
    let total = |f: fn(&rapport_store::IdentityDay) -> u64| health.days.iter().map(f).sum::<u64>();
    let (merged, refused, unmerged) = (
        total(|d| d.merged),
        total(|d| d.refused),
        total(|d| d.unmerged),
    );
    let invalid: u64 = health.invalid_values.iter().map(|(_, n)| n).sum();
    let peak = health
        .days
        .iter()
        .map(|d| d.merged.max(d.refused).max(d.unmerged))
        .max()
        .unwrap_or(1)
        .max(1);
    let bar = |n: u64, color: &str| {
        html! { div.bar style=(format!("width:{}%;background:{color}", n * 100 / peak)) {} }
    };
    page(
        "Data quality",
        user.0.workspace_name.as_str(),
        html! {
            h1 { "Data quality" }
            p.small { "Likely duplicate profiles found by dedupe runs wait for a decision on the " a href="/duplicates" { "Duplicates" } " page." }
            div.cards #dq-cards {
                div.card { div.n #dq-invalid { (invalid) } div.l { "invalid or refused values on live profiles" } }
                div.card { div.n #dq-merged { (merged) } div.l { "merges, last 30 days" } }
                div.card { div.n #dq-refused { (refused) } div.l { "merges refused by a guard, last 30 days" } }
                div.card { div.n #dq-unmerged { (unmerged) } div.l { "unmerges, last 30 days" } }
            }
            div.grid2 {
                div {
                    h2 { "Invalid values by problem" }
                    table #dq-codes {
                        tr { th { "Problem" } th { "Profiles" } }
                        @for (code, n) in &health.invalid_values { tr { td { span.chip.warn { (code) } } td.mono { (n) } } }
                        @if health.invalid_values.is_empty() { tr { td colspan="2" .muted { "No invalid values." } } }
                    }
                    h2 { "Latest flagged profiles" }
                    table #dq-flagged {
                        @for (p, field, code) in &health.flagged_profiles {
                            tr { td { a.mono href=(format!("/customers/{p}")) { (p) } } td.mono { (field) } td { span.chip.warn { (code) } } }
                        }
                    }
                }
                div {
                    h2 { "Merges over time" }
                    table #dq-days {
                        tr { th { "Day" } th { "Merged" } th { "Refused" } th { "Unmerged" } }
                        @for d in health.days.iter().rev() {
                            tr {
                                td.mono { (chrono::DateTime::from_timestamp(d.day * 86_400, 0).map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default()) }
                                td { (d.merged) (bar(d.merged, "var(--accent)")) }
                                td { (d.refused) (bar(d.refused, "#e8590c")) }
                                td { (d.unmerged) (bar(d.unmerged, "var(--muted)")) }
                            }
                        }
                        @if health.days.is_empty() { tr { td colspan="4" .muted { "No merges in the last 30 days." } } }
                    }
                }
            }
            h2 { "Refused merges" }
            p.muted.small { "Each row names the profiles a guard kept apart and why; identifier values are never kept in the log." }
            table #dq-refusals {
                tr { th { "Merge" } th { "Profiles" } th { "Guard" } th { "When" } }
                @for m in &health.refused {
                    tr {
                        td.mono { "#" (m.id) }
                        td { a.mono href=(format!("/customers/{}", m.survivor)) { (m.survivor) } " · " a.mono href=(format!("/customers/{}", m.merged)) { (m.merged) } }
                        td { (refusal_text(m.refusal.as_deref().unwrap_or(""))) " " span.muted.small { "(" (m.identifier_kinds.join(", ")) ")" } }
                        td { (ago(Some(m.at))) }
                    }
                }
                @if health.refused.is_empty() { tr { td colspan="4" .muted { "None." } } }
            }
            h2 { "Unmerges" }
            table #dq-unmerges {
                tr { th { "Merge" } th { "Survivor" } th { "Restored" } th { "Undone" } }
                @for m in &health.unmerged {
                    tr {
                        td.mono { "#" (m.id) }
                        td { a.mono href=(format!("/customers/{}", m.survivor)) { (m.survivor) } }
                        td { a.mono href=(format!("/customers/{}", m.merged)) { (m.merged) } }
                        td { (ago(m.unmerged_at)) }
                    }
                }
                @if health.unmerged.is_empty() { tr { td colspan="4" .muted { "None." } } }
            }
        },
    )
    .into_response()
}
