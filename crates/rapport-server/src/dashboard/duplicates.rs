//! The Duplicates page: pairs of profiles a dedupe run queued for a person, and for one pair
//! both profiles side by side, each field with its agreement level and its part in the match
//! weight, with Merge and Not the same buttons. After a merge the page links to the surviving
//! profile, whose identity graph has the unmerge button.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use rapport_core::Profile;
use rapport_identity::matching::probe::Fields;
use rapport_store::{ProfileMergeOutcome, ReviewPair, StoreError};
use serde::Deserialize;
use serde_json::Value;

use super::governance::allowed;
use super::layout::{ago, page};
use super::DashboardUser;
use crate::auth::perm;
use crate::dedupe::profile_fields;
use crate::AppState;

fn failure(e: StoreError) -> Response {
    tracing::error!(error = %e, "dashboard duplicates page failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "The store could not be read or written; see the server log.",
    )
        .into_response()
}

fn percent(p: f64) -> String {
    format!("{:.1}%", p * 100.0)
}

/// A field's part as a chip: green for evidence of one customer, red against.
fn contribution(bf: f64) -> Markup {
    let class = if bf > 0.5 {
        "chip good"
    } else if bf < -0.5 {
        "chip hot"
    } else {
        "chip muted"
    };
    html! { span class=(class) { (format!("{bf:+.1}")) } }
}

fn label(p: &Option<Profile>, fallback: &str) -> String {
    p.as_ref()
        .and_then(|p| p.name.clone().or_else(|| p.email.clone()))
        .unwrap_or_else(|| fallback.to_owned())
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    pub offset: Option<usize>,
}

const PAGE: usize = 50;

/// Pending pairs, most probable first, and the latest decisions.
pub async fn list(
    State(state): State<AppState>,
    user: DashboardUser,
    Query(params): Query<ListParams>,
) -> Response {
    if let Err(r) = allowed::<perm::ManageIdentity>(&state, &user, "/duplicates").await {
        return r;
    }
    let ws = &user.0.workspace_id;
    let offset = params.offset.unwrap_or(0);
    let pending = match state
        .store
        .review_pairs(ws, Some("pending"), offset, PAGE)
        .await
    {
        Ok(p) => p,
        Err(e) => return failure(e),
    };
    let mut decided = Vec::new();
    for status in ["merged", "rejected"] {
        match state.store.review_pairs(ws, Some(status), 0, 10).await {
            Ok(p) => decided.extend(p),
            Err(e) => return failure(e),
        }
    }
    decided.sort_by_key(|p| std::cmp::Reverse(p.decided_at));
    let mut rows = Vec::with_capacity(pending.len());
    for p in &pending {
        let a = state.store.profile(ws, &p.profile_a).await.ok().flatten();
        let b = state.store.profile(ws, &p.profile_b).await.ok().flatten();
        rows.push((
            p,
            label(&a, p.profile_a.as_str()),
            label(&b, p.profile_b.as_str()),
        ));
    }
    let thresholds = state.engine.dedupe_thresholds();
    page(
        "Duplicates",
        user.0.workspace_name.as_str(),
        html! {
            h1 { "Duplicates" }
            p.muted.small {
                "Pairs of profiles that are probably one customer. Dedupe runs ("
                code { "rapport profiles dedupe" } " or " code { "POST /v1/identity/dedupe" }
                ") merge pairs at or above " (percent(thresholds.auto_merge))
                " and queue those at or above " (percent(thresholds.review))
                " here. Merges are in each profile's identity graph, where they can be undone."
            }
            h2 { "Waiting for a decision" }
            table #dup-pending {
                tr { th { "Probability" } th { "Profile" } th { "Profile" } th { "Evidence" } th { "Queued" } th {} }
                @for (p, a, b) in &rows {
                    tr {
                        td.mono { (percent(p.match_probability)) }
                        td { (a) }
                        td { (b) }
                        td.small {
                            @for f in p.fields.as_array().into_iter().flatten() {
                                @let bf = f["log2_bayes_factor"].as_f64().unwrap_or(0.0);
                                @if bf.abs() > 0.5 {
                                    (f["field"].as_str().unwrap_or("").replace('_', " ")) " " (contribution(bf)) " "
                                }
                            }
                            @if let Some(r) = &p.refusal { span.chip.warn { "guard: " (r) } }
                        }
                        td.small { (ago(Some(p.created_at))) }
                        td { a href=(format!("/duplicates/{}", p.id)) { "Compare" } }
                    }
                }
                @if rows.is_empty() { tr { td colspan="6" .muted { "No pairs are waiting." } } }
            }
            @if pending.len() == PAGE {
                p { a href=(format!("/duplicates?offset={}", offset + PAGE)) { "More pairs" } }
            }
            h2 { "Latest decisions" }
            table #dup-decided {
                tr { th { "Pair" } th { "Decision" } th { "By" } th { "When" } }
                @for p in &decided {
                    tr {
                        td { a href=(format!("/duplicates/{}", p.id)) { (percent(p.match_probability)) } }
                        td { @if p.status == "merged" { span.chip.good { "merged" } } @else { span.chip.muted { "not the same" } } }
                        td.small.mono { (p.decided_by.as_deref().unwrap_or("")) }
                        td.small { (ago(p.decided_at)) }
                    }
                }
                @if decided.is_empty() { tr { td colspan="4" .muted { "None yet." } } }
            }
        },
    )
    .into_response()
}

/// One row of the comparison: a field's values on each side, its agreement level and part.
fn field_row(field: &Value, a: &Fields, b: &Fields) -> Markup {
    let name = field["field"].as_str().unwrap_or("");
    let level = field["level"].as_str().unwrap_or("");
    let bf = field["log2_bayes_factor"].as_f64().unwrap_or(0.0);
    let value = |f: &Fields| f.get(name).cloned().unwrap_or_default();
    html! {
        tr.(format!("dup-field-{name}")) {
            td { (name.replace('_', " ")) }
            td.mono { (value(a)) }
            td.mono { (value(b)) }
            td.small { (level) }
            td { (contribution(bf)) }
        }
    }
}

fn profile_cell(p: &Option<Profile>, id: &str) -> Markup {
    html! {
        @match p {
            Some(p) => {
                a.mono href=(format!("/customers/{}", p.id)) { (p.id) }
                @if p.id.as_str() != id { br; span.small.muted { "(" (id) " was merged into it)" } }
                br; span.small { (p.event_count) " events · last seen " (ago(p.last_seen)) }
                br; @for i in &p.identities { span.chip.mono { (i.kind().as_str()) ": " (i.value()) } }
            }
            None => span.muted { (id) " (erased or unknown)" }
        }
    }
}

/// Both profiles of a pair side by side, with the explanation and the decision buttons.
pub async fn show(
    State(state): State<AppState>,
    user: DashboardUser,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = allowed::<perm::ManageIdentity>(&state, &user, "/duplicates").await {
        return r;
    }
    let ws = &user.0.workspace_id;
    let pair: ReviewPair = match state.store.review_pair(ws, &id).await {
        Ok(Some(p)) => p,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such pair").into_response(),
        Err(e) => return failure(e),
    };
    let a = state
        .store
        .profile(ws, &pair.profile_a)
        .await
        .ok()
        .flatten();
    let b = state
        .store
        .profile(ws, &pair.profile_b)
        .await
        .ok()
        .flatten();
    let fa = a.as_ref().map(profile_fields).unwrap_or_default();
    let fb = b.as_ref().map(profile_fields).unwrap_or_default();
    let one = matches!((&a, &b), (Some(x), Some(y)) if x.id == y.id);
    page(
        "Duplicates",
        user.0.workspace_name.as_str(),
        html! {
            p.small { a href="/duplicates" { "← Duplicates" } }
            h1 { "Same customer? " span.mono { (percent(pair.match_probability)) } }
            p.muted.small {
                "Match weight " (format!("{:.2}", pair.match_weight))
                " (log2 prior odds plus each field's log2 Bayes factor). Values are the standardised ones the model compared."
            }
            @if let Some(r) = &pair.refusal {
                p { span.chip.warn { "guard: " (r) } " refused to merge these automatically; a merge here is refused too unless the guard allows it." }
            }
            table #dup-compare {
                tr { th { "Field" } th { "Profile A" } th { "Profile B" } th { "Agreement" } th { "Weight" } }
                tr { td { "profile" } td { (profile_cell(&a, pair.profile_a.as_str())) } td { (profile_cell(&b, pair.profile_b.as_str())) } td {} td {} }
                @for f in pair.fields.as_array().into_iter().flatten() { (field_row(f, &fa, &fb)) }
            }
            div #dup-decision {
                @match pair.status.as_str() {
                    "pending" => {
                        form method="post" action=(format!("/duplicates/{}/merge", pair.id)) style="display:inline" {
                            button type="submit" { "Merge" }
                        }
                        " "
                        form method="post" action=(format!("/duplicates/{}/reject", pair.id)) style="display:inline" {
                            button.danger type="submit" { "Not the same" }
                        }
                    }
                    "merged" => {
                        p {
                            span.chip.good { "merged" } " by " span.mono { (pair.decided_by.as_deref().unwrap_or("")) } " " (ago(pair.decided_at)) ". "
                            @if let (true, Some(p)) = (one, &a) {
                                "The surviving profile is " a #dup-survivor href=(format!("/customers/{}", p.id)) { (p.id) }
                                "; its identity graph has the unmerge button."
                            }
                        }
                    }
                    _ => {
                        p { span.chip.muted { "not the same" } " by " span.mono { (pair.decided_by.as_deref().unwrap_or("")) } " " (ago(pair.decided_at)) "; dedupe runs leave this pair alone." }
                    }
                }
            }
        },
    )
    .into_response()
}

async fn decide(state: AppState, user: DashboardUser, id: String, merge: bool) -> Response {
    if let Err(r) = allowed::<perm::ManageIdentity>(&state, &user, "/duplicates/decide").await {
        return r;
    }
    match state
        .engine
        .decide_review(&user.0.workspace_id, &id, merge, user.0.actor())
        .await
    {
        Ok(o) => match o.merge {
            Some(ProfileMergeOutcome::Refused { merge }) => (
                StatusCode::CONFLICT,
                format!(
                    "The identity guard {} refused this merge (merge log entry {}). Use Not the same instead, or change the guard.",
                    merge.refusal.unwrap_or_default(),
                    merge.id
                ),
            )
                .into_response(),
            _ => Redirect::to(&format!("/duplicates/{id}")).into_response(),
        },
        Err(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, "no such pair").into_response(),
        Err(StoreError::Conflict(m)) => (StatusCode::CONFLICT, m).into_response(),
        Err(e) => failure(e),
    }
}

pub async fn merge(
    State(state): State<AppState>,
    user: DashboardUser,
    Path(id): Path<String>,
) -> Response {
    decide(state, user, id, true).await
}

pub async fn reject(
    State(state): State<AppState>,
    user: DashboardUser,
    Path(id): Path<String>,
) -> Response {
    decide(state, user, id, false).await
}
