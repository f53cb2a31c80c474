//! Dashboard pages for governance: the audit trail with filters, a customer's consent panel,
//! and the export and erasure actions on the customer page.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use rapport_core::ProfileId;
use rapport_govern::consent::ConsentLedger;
use rapport_store::{AuditQuery, StoreError};
use serde::Deserialize;

use super::layout::{ago, page};
use super::DashboardUser;
use crate::auth::{check, perm};
use crate::sink::SinkError;
use crate::AppState;

fn failure(e: StoreError) -> Response {
    tracing::error!(error = %e, "dashboard governance action failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "The store could not be read or written; see the server log.",
    )
        .into_response()
}

#[derive(Debug, Deserialize, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub subject: Option<String>,
    pub before: Option<i64>,
}

const PAGE: usize = 100;

/// The dashboard's side of the permission check: a page saying what is missing.
pub(super) async fn allowed<P: perm::Needed>(
    state: &AppState,
    user: &DashboardUser,
    path: &str,
) -> Result<(), Response> {
    check::<P>(state, user.0.clone(), path)
        .await
        .map(|_| ())
        .map_err(|e| {
            (
                StatusCode::FORBIDDEN,
                page(
                    "Not allowed",
                    user.0.workspace_name.as_str(),
                    html! { h1 { "Not allowed" } p { (e.message) } },
                ),
            )
                .into_response()
        })
}

pub async fn audit(
    State(state): State<AppState>,
    user: DashboardUser,
    Query(f): Query<AuditFilter>,
) -> Response {
    if let Err(r) = allowed::<perm::ReadAudit>(&state, &user, "/audit").await {
        return r;
    }
    let action = f.action.clone().filter(|a| !a.trim().is_empty());
    let subject = f.subject.clone().filter(|s| !s.trim().is_empty());
    let records = match state
        .store
        .audit_records(AuditQuery {
            workspace: Some(user.0.workspace_id.clone()),
            action_prefix: action.clone(),
            subject: subject.clone(),
            from_seq: f.before,
            ascending: false,
            limit: PAGE,
        })
        .await
    {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    let next = (records.len() == PAGE)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    let kinds = [
        "consent.",
        "profile.merged",
        "profile.exported",
        "profile.erased",
        "action.refused",
    ];
    page("Audit", user.0.workspace_name.as_str(), html! {
        h1 { "Audit trail" }
        p.muted {
            "Every consent change, merge, export, erasure and refused action, newest first. Each record is chained to the one before by its hash; "
            span.mono { "rapport audit verify" } " checks the whole chain."
        }
        form #audit-filter method="get" action="/audit" {
            input name="action" placeholder="action, e.g. consent." value=(action.clone().unwrap_or_default());
            input name="subject" placeholder="subject id" value=(subject.clone().unwrap_or_default());
            button type="submit" { "Filter" }
            " "
            @for k in kinds { a.chip href=(format!("/audit?action={k}")) { (k.trim_end_matches('.')) } " " }
        }
        table #audit {
            tr { th { "#" } th { "When" } th { "Actor" } th { "Action" } th { "Subject" } th { "Details" } }
            @for r in &records {
                tr {
                    td.mono { (r.seq) }
                    td { (ago(Some(rapport_core::time::from_millis(r.at_ms)))) }
                    td.mono { (r.actor) }
                    td { span.chip { (r.action) } }
                    td.mono {
                        @if let Some(s) = &r.subject {
                            @if s.starts_with(ProfileId::PREFIX) { a href=(format!("/customers/{s}")) { (s) } } @else { (s) }
                        }
                    }
                    td.mono.small { (r.details) }
                }
            }
            @if records.is_empty() { tr { td colspan="6" .muted { "No records match." } } }
        }
        @if let Some(before) = next {
            p { a href=(format!("/audit?action={}&subject={}&before={before}", action.clone().unwrap_or_default(), subject.clone().unwrap_or_default())) { "Older records →" } }
        }
    })
    .into_response()
}

/// The consent panel of the customer page.
pub async fn consent_panel(state: &AppState, user: &DashboardUser, id: &ProfileId) -> Markup {
    let history = state
        .store
        .consents(&user.0.workspace_id, id)
        .await
        .unwrap_or_default();
    let ledger = ConsentLedger::from_history(&history);
    let registry = &state.engine.options.purposes;
    html! {
        h2 { "Consent" }
        table #consents {
            @for (p, description) in registry.iter() {
                @let now = ledger.iter().find(|(q, _, _)| *q == p);
                tr {
                    td.mono { (p) }
                    td {
                        @match now {
                            Some((_, s, _)) => span class=(format!("chip consent-{}", s.as_str())) { (s.as_str()) },
                            None => span.chip.muted { "never asked" },
                        }
                    }
                    td.muted { (description) }
                    td { @if let Some((_, _, at)) = now { (ago(Some(at))) } }
                }
            }
        }
        h2 { "Their data" }
        @if user.0.role.allows(rapport_core::Permission::ExportData) {
            p {
                a #export-link href=(format!("/customers/{id}/export.json")) { "Download everything we hold (JSON)" }
            }
        }
        @if user.0.role.allows(rapport_core::Permission::EraseData) {
        form #erase-form method="post" action=(format!("/customers/{id}/erase"))
            onsubmit="return confirm('Erase this customer and all their data? This cannot be undone.')" {
            button.danger type="submit" { "Erase this customer" }
        }
        }
    }
}

pub async fn export(
    State(state): State<AppState>,
    user: DashboardUser,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = allowed::<perm::ExportData>(&state, &user, "/customers/export").await {
        return r;
    }
    let Some(id) = ProfileId::parse(&id) else {
        return (StatusCode::NOT_FOUND, "no such customer").into_response();
    };
    match state
        .engine
        .export(&user.0.workspace_id, &id, user.0.actor())
        .await
    {
        Ok(export) => {
            let body = serde_json::to_string_pretty(&export).unwrap_or_default();
            (
                [
                    (header::CONTENT_TYPE, "application/json".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{id}.json\""),
                    ),
                ],
                body,
            )
                .into_response()
        }
        Err(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, "no such customer").into_response(),
        Err(e) => failure(e),
    }
}

pub async fn erase(
    State(state): State<AppState>,
    user: DashboardUser,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = allowed::<perm::EraseData>(&state, &user, "/customers/erase").await {
        return r;
    }
    let Some(id) = ProfileId::parse(&id) else {
        return (StatusCode::NOT_FOUND, "no such customer").into_response();
    };
    match state
        .engine
        .erase(&user.0.workspace_id, &id, user.0.actor())
        .await
    {
        Ok(out) => {
            Redirect::to(&format!("/audit?subject={}", out.store.profile_id)).into_response()
        }
        Err(SinkError::Store(StoreError::NotFound(_))) => {
            (StatusCode::NOT_FOUND, "no such customer").into_response()
        }
        Err(SinkError::Store(e)) => failure(e),
        Err(SinkError::Bus(e)) => {
            tracing::warn!(error = %e, "erasure refused: the event bus is unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The event bus cannot be reached, so nothing was erased. Try again shortly.",
            )
                .into_response()
        }
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct FairnessForm {
    pub csv: String,
    pub groups: String,
    pub prediction: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub positive: String,
}

fn fairness_page(user: &DashboardUser, form: &FairnessForm, result: Option<Markup>) -> Markup {
    page(
        "Fairness",
        user.0.workspace_name.as_str(),
        html! {
            h1 { "Fairness audit" }
            p.muted {
                "Paste decisions or predictions as CSV with a header row. Rapport reports, for each group and each intersection of groups, "
                "selection rates and error rates, and the demographic parity, equalized odds and equal opportunity gaps (the same numbers as Fairlearn). "
                "The same audit runs from " span.mono { "rapport audit fairness" } " and " span.mono { "POST /v1/audits/fairness" } "."
            }
            form #fairness-form method="post" action="/fairness" {
                p { textarea name="csv" rows="8" cols="80" placeholder="gender,age_band,offered,retained" { (form.csv) } }
                p {
                    input name="groups" placeholder="group columns, comma-separated" value=(form.groups);
                    " " input name="prediction" placeholder="prediction column" value=(form.prediction);
                    " " input name="label" placeholder="label column (optional)" value=(form.label);
                    " " input name="positive" placeholder="positive value (optional)" value=(form.positive);
                    " " button type="submit" { "Audit" }
                }
            }
            @if let Some(r) = result { (r) }
        },
    )
}

pub async fn fairness_form(State(state): State<AppState>, user: DashboardUser) -> Response {
    if let Err(r) = allowed::<perm::AuditFairness>(&state, &user, "/fairness").await {
        return r;
    }
    fairness_page(&user, &FairnessForm::default(), None).into_response()
}

pub async fn fairness_run(
    State(state): State<AppState>,
    user: DashboardUser,
    axum::Form(form): axum::Form<FairnessForm>,
) -> Response {
    use rapport_govern::fairness::{read_csv, AuditOptions, Columns, Value};
    if let Err(r) = allowed::<perm::AuditFairness>(&state, &user, "/fairness").await {
        return r;
    }
    let columns = Columns {
        groups: form
            .groups
            .split(',')
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty())
            .collect(),
        prediction: form.prediction.trim().to_owned(),
        label: Some(form.label.trim().to_owned()).filter(|l| !l.is_empty()),
        score: None,
    };
    let options = AuditOptions {
        positive: Some(form.positive.trim())
            .filter(|p| !p.is_empty())
            .map(Value::parse),
        ..Default::default()
    };
    let csv = form.csv.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let data = read_csv(csv.as_bytes(), &columns)?;
        data.audit(&options)
    })
    .await;
    let result = match outcome {
        Ok(Ok(report)) => html! { pre #fairness-report { (report.to_string()) } },
        Ok(Err(e)) => html! { p.chip.hot #fairness-error { (e.to_string()) } },
        Err(_) => html! { p.chip.hot { "The audit failed; see the server log." } },
    };
    fairness_page(&user, &form, Some(result)).into_response()
}
