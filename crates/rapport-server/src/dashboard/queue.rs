//! The dashboard's Queue page: per queue, the conversations waiting in the order they will be
//! offered, each with its priority and the reasons for it, and those offered to or held by an
//! agent; then the agents with their presence and load.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::{html, Markup};

use super::governance::allowed;
use super::layout::{ago, page};
use super::DashboardUser;
use crate::api::routing::{loads, queue_entries_of, EntryDto};
use crate::auth::perm;
use crate::AppState;

fn sla_left(e: &EntryDto) -> Markup {
    let left = (e.sla_deadline - Utc::now()).num_seconds();
    html! {
        @if left < 0 || e.sla_breached {
            span.chip.hot { "SLA passed " (humantime::format_duration(std::time::Duration::from_secs(left.unsigned_abs()))) " ago" }
        } @else {
            span.chip { (humantime::format_duration(std::time::Duration::from_secs(left as u64))) " left" }
        }
    }
}

fn entry_row(e: &EntryDto, rank: Option<usize>) -> Markup {
    html! {
        tr.entry data-conversation=(e.conversation_id) {
            td { @if let Some(r) = rank { (r) } @else { (e.status) } }
            td { a href=(format!("/conversations/{}", e.conversation_id)) .mono.small { (e.conversation_id) } }
            td {
                strong { (format!("{:.2}", e.priority)) } " "
                span class=(format!("chip {}", if e.tier == "urgent" || e.tier == "high" { "hot" } else { "" })) { (e.tier) }
                @if e.asked_for_human { " " span.chip.warn { "asked for a person" } }
            }
            td {
                ul.small {
                    @for p in e.parts.iter().filter(|p| p.contribution > 0.0) {
                        li { (p.detail) " " span.muted { (format!("+{:.2}", p.contribution)) } }
                    }
                }
            }
            td { (sla_left(e)) br; span.muted.small { "queued " (ago(Some(e.enqueued_at))) } }
            td {
                @if let Some(a) = &e.agent_id { span.mono { (a) } }
                @if let Some(step) = e.history.iter().rev().find(|s| s.what == "offered") {
                    details { summary.small { "why this agent" } p.small { (step.why) } }
                }
            }
        }
    }
}

pub async fn queue(State(state): State<AppState>, user: DashboardUser) -> Response {
    if let Err(r) = allowed::<perm::ReadCustomers>(&state, &user, "/queue").await {
        return r;
    }
    let ws = &user.0.workspace_id;
    let queues = state.store.route_queues(ws).await.unwrap_or_default();
    let mut sections = Vec::new();
    for q in &queues {
        if let Ok(entries) = queue_entries_of(&state, ws, q.id.as_str()).await {
            sections.push(entries);
        }
    }
    let agents = state.store.route_agents(ws).await.unwrap_or_default();
    let load = loads(&state, ws).await.unwrap_or_default();
    page("Queue", user.0.workspace_name.as_str(), html! {
        h1 { "Queue" }
        @if queues.is_empty() {
            p.muted { "No queues yet: create them with POST /v1/routing/queues (see the README)." }
        }
        @for s in &sections {
            section.queue id=(format!("queue-{}", s.queue.id)) {
                h2 {
                    (s.queue.id) " "
                    @if s.queue.human { span.chip.warn { "human queue" } " " }
                    span.muted.small { (s.waiting.len()) " waiting" @if !s.queue.skills.is_empty() { ", needs " (s.queue.skills.join(", ")) } }
                }
                table.waiting {
                    tr { th { "#" } th { "Conversation" } th { "Priority" } th { "Why" } th { "SLA" } th { "Agent" } }
                    @for (i, e) in s.waiting.iter().enumerate() { (entry_row(e, Some(i + 1))) }
                    @for e in &s.assigned { (entry_row(e, None)) }
                    @if s.waiting.is_empty() && s.assigned.is_empty() { tr { td colspan="6" .muted { "Nobody waiting." } } }
                }
            }
        }
        h2 { "Agents" }
        table #agents {
            tr { th { "Agent" } th { "Presence" } th { "Load" } th { "Seniority" } th { "Skills" } }
            @for a in &agents {
                @let n = load.get(&a.id).copied().unwrap_or(0);
                tr {
                    td { strong { (a.name) } " " span.muted.mono { (a.id) } }
                    td { span class=(format!("chip {}", if a.presence == rapport_core::routing::Presence::Available { "" } else { "warn" })) { (a.presence.as_str()) } }
                    td { (n) " / " (a.capacity) @if n >= a.capacity { " " span.chip.hot { "full" } } }
                    td { (a.seniority) }
                    td.mono.small { (a.skills.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")) }
                }
            }
            @if agents.is_empty() { tr { td colspan="5" .muted { "No agents yet." } } }
        }
    })
    .into_response()
}
