//! The dashboard's Alerts page: what needs a person's attention, with its evidence, and a
//! button to mark it seen to; and the scheduled fairness audits that raise some of them.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use rapport_core::AuditEntry;
use serde_json::json;

use super::governance::allowed;
use super::layout::{ago, page};
use super::DashboardUser;
use crate::auth::perm;
use crate::AppState;

pub async fn alerts(State(state): State<AppState>, user: DashboardUser) -> Response {
    if let Err(r) = allowed::<perm::ReadCustomers>(&state, &user, "/alerts").await {
        return r;
    }
    let ws = &user.0.workspace_id;
    let alerts = state.store.alerts(ws, false, 200).await.unwrap_or_default();
    let can_ack = user
        .0
        .role
        .allows(rapport_core::Permission::AcknowledgeAlerts);
    let audits = state.engine.fairness_audits();
    page("Alerts", user.0.workspace_name.as_str(), html! {
        h1 { "Alerts" }
        table #alerts {
            tr { th { "Raised" } th { "Severity" } th { "What" } th { "Evidence" } th {} }
            @for a in &alerts {
                tr class=(if a.is_open() { "open" } else { "seen" }) {
                    td { (ago(Some(a.created_at))) }
                    td { span class=(format!("chip {}", if a.severity == rapport_core::Severity::Critical { "hot" } else { "warn" })) { (a.severity.as_str()) } }
                    td { strong { (a.title) } br; span.muted.mono { (a.kind) } }
                    td { details { summary { "evidence" } pre.mono.small { (serde_json::to_string_pretty(&a.evidence).unwrap_or_default()) } } }
                    td {
                        @if let Some(by) = &a.acknowledged_by {
                            span.muted { "seen to by " (by) " " (ago(a.acknowledged_at)) }
                        } @else if can_ack {
                            form method="post" action=(format!("/alerts/{}/acknowledge", a.id)) {
                                button type="submit" { "Seen to" }
                            }
                        }
                    }
                }
            }
            @if alerts.is_empty() { tr { td colspan="5" .muted { "No alerts." } } }
        }
        h2 { "Scheduled fairness audits" }
        table #scheduled-audits {
            tr { th { "Audit" } th { "Decisions" } th { "Grouped by" } th { "Every" } th { "Window" } th { "Limits" } }
            @for a in audits {
                tr {
                    td.mono { (a.name) }
                    td.mono { (a.decision_kinds.join(", ")) }
                    td.mono { (a.groups.join(", ")) }
                    td { (humantime::format_duration(a.every)) }
                    td { (humantime::format_duration(a.window)) }
                    td.mono.small { @for (m, v) in a.thresholds.limits() { (m.as_str()) " " (v) br; } }
                }
            }
            @if audits.is_empty() { tr { td colspan="6" .muted { "None configured (governance.fairness_audits)." } } }
        }
    })
    .into_response()
}

pub async fn acknowledge(
    State(state): State<AppState>,
    user: DashboardUser,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = allowed::<perm::AcknowledgeAlerts>(&state, &user, "/alerts/acknowledge").await {
        return r;
    }
    let actor = user.0.actor();
    let entry = AuditEntry::new(
        Some(user.0.workspace_id.clone()),
        actor.clone(),
        "alert.acknowledged",
        Some(id.clone()),
        json!({}),
    );
    if let Err(e) = state
        .store
        .acknowledge_alert(&user.0.workspace_id, &id, &actor.encode(), vec![entry])
        .await
    {
        tracing::warn!(error = %e, "acknowledging an alert failed");
    }
    Redirect::to("/alerts").into_response()
}
