//! The dashboard's pages. Each reads through the same store API the JSON API uses.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Duration, Utc};
use maud::{html, Markup, PreEscaped};
use rapport_core::{ConversationId, ProfileId};
use rapport_store::{ChannelCount, EventCursor, StoreError};
use serde::{Deserialize, Serialize};

use rapport_interpret::MessageAnalysis;

use super::analysis;
use super::layout::{ago, chips, page};
use super::DashboardUser;
use crate::AppState;

fn failure(e: StoreError) -> Response {
    tracing::error!(error = %e, "dashboard read failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "The store could not be read; see the server log.",
    )
        .into_response()
}

fn not_found(user: &DashboardUser, what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        page(
            "Not found",
            user.0.workspace_name.as_str(),
            html! { h1 { (what) " not found" } p { a href="/customers" { "Back to customers" } } },
        ),
    )
        .into_response()
}

fn channel_table(id: &str, counts: &[ChannelCount]) -> Markup {
    let max = counts.iter().map(|c| c.events).max().unwrap_or(1).max(1);
    html! {
        table id=(id) {
            tr { th { "Channel" } th { "Events" } th style="width:50%" {} }
            @for c in counts {
                tr {
                    td { (c.channel.as_str()) }
                    td.mono data-channel=(c.channel.as_str()) { (c.events) }
                    td { div.bar style=(format!("width:{}%", c.events * 100 / max)) {} }
                }
            }
            @if counts.is_empty() { tr { td colspan="3" .muted { "No events yet." } } }
        }
    }
}

#[derive(Serialize)]
pub struct Live {
    profiles: i64,
    events: i64,
    conversations: i64,
    messages: i64,
    last_24h: Vec<(String, i64)>,
}

/// The numbers the overview refreshes every few seconds.
pub async fn live(State(state): State<AppState>, user: DashboardUser) -> Response {
    let ws = &user.0.workspace_id;
    let stats = match state.store.stats(ws).await {
        Ok(s) => s,
        Err(e) => return failure(e),
    };
    let day = match state
        .store
        .channel_counts(ws, Utc::now() - Duration::hours(24))
        .await
    {
        Ok(d) => d,
        Err(e) => return failure(e),
    };
    Json(Live {
        profiles: stats.profiles,
        events: stats.events,
        conversations: stats.conversations,
        messages: stats.messages,
        last_24h: day
            .into_iter()
            .map(|c| (c.channel.as_str().to_owned(), c.events))
            .collect(),
    })
    .into_response()
}

const LIVE_SCRIPT: &str = r#"
async function refresh() {
  try {
    const r = await fetch('/dashboard/live.json', {credentials: 'same-origin'});
    if (!r.ok) return;
    const d = await r.json();
    for (const k of ['profiles', 'events', 'conversations', 'messages']) {
      const el = document.getElementById('n-' + k);
      if (el) el.textContent = d[k].toLocaleString();
    }
    for (const [ch, n] of d.last_24h) {
      const cell = document.querySelector('#today [data-channel="' + ch + '"]');
      if (cell) cell.textContent = n;
    }
    document.getElementById('updated').textContent = 'live · updated ' + new Date().toLocaleTimeString();
  } catch (e) {}
}
setInterval(refresh, 3000);
"#;

pub async fn overview(State(state): State<AppState>, user: DashboardUser) -> Response {
    let ws = &user.0.workspace_id;
    let now = Utc::now();
    let result: Result<_, StoreError> = async {
        Ok((
            state.store.stats(ws).await?,
            state
                .store
                .channel_counts(ws, now - Duration::hours(24))
                .await?,
            state
                .store
                .channel_counts(ws, now - Duration::days(90))
                .await?,
            state.store.recent_conversations(ws, 8).await?,
            state.store.recent_profiles(ws, 8).await?,
            state.store.alerts(ws, true, 5).await?,
            state
                .store
                .decisions(rapport_store::DecisionQuery {
                    workspace: ws.clone(),
                    profile: None,
                    status: Some(rapport_core::DecisionStatus::PendingApproval),
                    limit: 100,
                })
                .await?
                .len(),
        ))
    }
    .await;
    let (stats, today, quarter, conversations, profiles, open_alerts, pending) = match result {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    page("Overview", user.0.workspace_name.as_str(), html! {
        h1 { "Overview " span.live #updated { "live" } }
        @if !open_alerts.is_empty() || pending > 0 {
            div.card #attention {
                @if pending > 0 {
                    p { a href="/approvals" { strong { (pending) } " high-stakes action" @if pending != 1 { "s" } " waiting for approval" } }
                }
                @for a in &open_alerts {
                    p { span.chip.warn { (a.severity.as_str()) } " " a href="/alerts" { (a.title) } " " (ago(Some(a.created_at))) }
                }
            }
        }
        div.cards {
            div.card { div.n #n-profiles { (stats.profiles) } div.l { "customers" } }
            div.card { div.n #n-events { (stats.events) } div.l { "events" } }
            div.card { div.n #n-conversations { (stats.conversations) } div.l { "conversations" } }
            div.card { div.n #n-messages { (stats.messages) } div.l { "messages" } }
        }
        div.grid2 {
            div { h2 { "Events by channel, today and yesterday" } (channel_table("today", &today)) }
            div { h2 { "Events by channel, last 90 days" } (channel_table("quarter", &quarter)) }
        }
        div.grid2 {
            div {
                h2 { "Latest conversations" }
                table {
                    tr { th { "Subject" } th { "Channel" } th { "Updated" } }
                    @for c in &conversations {
                        tr {
                            td { a href=(format!("/conversations/{}", c.id)) { (c.subject.as_deref().unwrap_or("(no subject)")) } }
                            td { (c.channel.as_str()) }
                            td { (ago(Some(c.updated_at))) }
                        }
                    }
                }
            }
            div {
                h2 { "Recently active customers" }
                table {
                    tr { th { "Customer" } th { "Last seen" } }
                    @for p in &profiles {
                        tr {
                            td { a href=(format!("/customers/{}", p.id)) { (p.name.as_deref().or(p.email.as_deref()).unwrap_or("anonymous visitor")) } }
                            td { (ago(p.last_seen)) }
                        }
                    }
                }
            }
        }
        script { (PreEscaped(LIVE_SCRIPT)) }
    })
    .into_response()
}

#[derive(Deserialize)]
pub struct ListParams {
    q: Option<String>,
}

pub async fn customers(
    State(state): State<AppState>,
    user: DashboardUser,
    Query(params): Query<ListParams>,
) -> Response {
    let ws = &user.0.workspace_id;
    let q = params.q.unwrap_or_default();
    let found = if q.trim().is_empty() {
        state.store.recent_profiles(ws, 100).await
    } else {
        state.store.search_profiles(ws, &q, 100).await
    };
    let found = match found {
        Ok(f) => f,
        Err(e) => return failure(e),
    };
    page("Customers", user.0.workspace_name.as_str(), html! {
        h1 { "Customers" }
        form method="get" action="/customers" {
            input #q type="search" name="q" value=(q) placeholder="Name or email starts with…" autofocus;
            " " button type="submit" { "Search" }
        }
        h2 { @if q.trim().is_empty() { "Most recently active" } @else { (found.len()) " found" } }
        table #customers {
            tr { th { "Name" } th { "Email" } th { "Channels" } th { "Events" } th { "Last seen" } }
            @for p in &found {
                tr {
                    td { a href=(format!("/customers/{}", p.id)) { (p.name.as_deref().unwrap_or("anonymous visitor")) } }
                    td { (p.email.as_deref().unwrap_or("")) }
                    td { (chips(p.channels.iter().map(|c| c.as_str()))) }
                    td.mono { (p.event_count) }
                    td { (ago(p.last_seen)) }
                }
            }
        }
    })
    .into_response()
}

#[derive(Deserialize)]
pub struct TimelineParams {
    cursor: Option<String>,
}

pub async fn customer(
    State(state): State<AppState>,
    user: DashboardUser,
    Path(id): Path<String>,
    Query(params): Query<TimelineParams>,
) -> Response {
    let ws = &user.0.workspace_id;
    let Some(id) = ProfileId::parse(&id) else {
        return not_found(&user, "Customer");
    };
    let profile = match state.store.profile(ws, &id).await {
        Ok(Some(p)) => p,
        Ok(None) => return not_found(&user, "Customer"),
        Err(e) => return failure(e),
    };
    let cursor = params.cursor.as_deref().and_then(EventCursor::decode);
    let (events, conversations) = match (
        state
            .store
            .profile_events(ws, &profile.id, cursor.as_ref(), 50)
            .await,
        state.store.profile_conversations(ws, &profile.id).await,
    ) {
        (Ok(e), Ok(c)) => (e, c),
        (Err(e), _) | (_, Err(e)) => return failure(e),
    };
    let graph = super::identity::graph_panel(&state, &user, &profile).await;
    let title = profile
        .name
        .clone()
        .unwrap_or_else(|| "Anonymous visitor".to_owned());
    let consent = super::governance::consent_panel(&state, &user, &profile.id).await;
    let decisions = super::oversight::decisions_panel(&state, &user, &profile.id).await;
    let churn = churn_panel(&state, ws, &profile.id).await;
    page(&title, user.0.workspace_name.as_str(), html! {
        h1 #customer-name { (title) }
        p.muted {
            "First seen " (ago(profile.first_seen)) " · last seen " (ago(profile.last_seen)) " · "
            (profile.event_count) " events · " span.mono { (profile.id) }
        }
        div.grid2 {
            div {
                h2 { "Traits" }
                table #traits {
                    @for (k, v) in &profile.traits {
                        tr {
                            td.mono { (k) }
                            td { (v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())) }
                            td.muted {
                                @if let Some(s) = profile.standardized_traits.get(k).filter(|s| *s != v) {
                                    "→ " (s.as_str().map(str::to_owned).unwrap_or_else(|| s.to_string()))
                                }
                            }
                        }
                    }
                    @if profile.traits.is_empty() { tr { td.muted { "No traits yet." } } }
                }
            }
            div {
                h2 { "Identities" }
                table #identities {
                    @for i in &profile.identities { tr { td { (i.kind().as_str()) } td.mono { (i.value()) } } }
                }
                @if !profile.data_quality.is_empty() {
                    h2 { "Data quality" }
                    table #data-quality {
                        @for d in &profile.data_quality {
                            tr { td.mono { (d.field) } td { span.chip.warn { (d.code) } " " (d.problem) } td.mono { (d.raw) } }
                        }
                    }
                }
                h2 { "Channels" }
                p { (chips(profile.channels.iter().map(|c| c.as_str()))) }
                (churn)
                (consent)
                (decisions)
                (graph)
            }
        }
        h2 { "Conversations" }
        table #conversations {
            tr { th { "Subject" } th { "Channel" } th { "Messages" } th { "Updated" } }
            @for c in &conversations {
                tr {
                    td { a href=(format!("/conversations/{}", c.id)) { (c.subject.as_deref().unwrap_or("(no subject)")) } }
                    td { (c.channel.as_str()) } td.mono { (c.message_count) } td { (ago(Some(c.updated_at))) }
                }
            }
            @if conversations.is_empty() { tr { td colspan="4" .muted { "No conversations." } } }
        }
        h2 { "Timeline" }
        table #timeline {
            tr { th { "When" } th { "Type" } th { "What" } th { "Channel" } }
            @for e in &events.events {
                tr {
                    td { (ago(Some(e.timestamp))) }
                    td { (e.event_type.as_str()) }
                    td { (e.name.as_deref().unwrap_or("")) }
                    td { span.chip { (e.channel.as_str()) } }
                }
            }
        }
        @if let Some(next) = &events.next_cursor {
            p { a href=(format!("/customers/{}?cursor={next}", profile.id)) { "Older events →" } }
        }
    })
    .into_response()
}

pub async fn conversation(
    State(state): State<AppState>,
    user: DashboardUser,
    Path(id): Path<String>,
) -> Response {
    let ws = &user.0.workspace_id;
    let Some(id) = ConversationId::parse(&id) else {
        return not_found(&user, "Conversation");
    };
    let detail = match state.store.conversation(ws, &id).await {
        Ok(Some(d)) => d,
        Ok(None) => return not_found(&user, "Conversation"),
        Err(e) => return failure(e),
    };
    let customer = match state
        .store
        .profile(ws, &detail.conversation.profile_id)
        .await
    {
        Ok(p) => p,
        Err(e) => return failure(e),
    };
    let reading = state.engine.conversation_analysis(&detail.messages);
    let (corrections, labels, can_correct) =
        super::intents::conversation_corrections(&state, &user, &id).await;
    let c = &detail.conversation;
    let subject = c
        .subject
        .clone()
        .unwrap_or_else(|| "(no subject)".to_owned());
    page(&subject, user.0.workspace_name.as_str(), html! {
        h1 { (subject) }
        p.muted {
            (c.channel.as_str()) " · " (c.status.as_str()) " · opened " (ago(Some(c.opened_at))) " · with "
            a href=(format!("/customers/{}", c.profile_id)) {
                (customer.as_ref().and_then(|p| p.name.clone()).unwrap_or_else(|| "this customer".to_owned()))
            }
        }
        @if let Some(a) = &reading { (analysis::conversation_panel(a)) }
        @for m in &detail.messages {
            div class=(format!("msg {}", m.direction.as_str())) {
                div.meta { (m.author.as_str()) " · " (ago(Some(m.sent_at))) }
                @match m.analysis.as_ref().and_then(|a| serde_json::from_value::<MessageAnalysis>(a.clone()).ok()) {
                    Some(a) => {
                        (analysis::message_panel(&m.text, &a))
                        (super::intents::correction_form(
                            id.as_str(),
                            m.id.as_str(),
                            &labels,
                            corrections.iter().find(|x| x.message_id == m.id.as_str()),
                            can_correct,
                        ))
                    }
                    None => { pre { (m.text) } }
                }
            }
        }
    })
    .into_response()
}

/// The customer's churn risk with the features that pushed it, from their materialised
/// features (kept current as their events arrive).
async fn churn_panel(state: &AppState, ws: &rapport_core::WorkspaceId, id: &ProfileId) -> Markup {
    let row = match state.engine.profile_churn(ws, id).await {
        Ok(Some(r)) => r,
        Ok(None) => return html! {},
        Err(e) => {
            tracing::warn!(error = %e, "churn panel");
            return html! {};
        }
    };
    let score = row
        .scores
        .get(crate::churn::KIND)
        .cloned()
        .unwrap_or_default();
    let shown = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "missing".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    html! {
        h2 { "Churn risk" }
        div #churn {
            @if let Some(p) = score.get("probability").and_then(serde_json::Value::as_f64) {
                p {
                    span.chip.(if p >= 0.5 { "hot" } else if p >= 0.25 { "warn" } else { "good" }) {
                        (format!("{:.0}%", p * 100.0))
                    }
                    " chance of cancelling within the horizon · model version "
                    (score.get("version").map(shown).unwrap_or_default())
                    " · computed " (ago(Some(row.computed_at)))
                }
                table {
                    tr { th { "Feature" } th { "Value" } th { "Pushes risk" } }
                    @for c in score.get("contributions").and_then(serde_json::Value::as_array).into_iter().flatten().take(5) {
                        @let lo = c.get("log_odds").and_then(serde_json::Value::as_f64).unwrap_or(0.0);
                        tr {
                            td.mono { (c.get("feature").map(shown).unwrap_or_default()) }
                            td { (c.get("value").map(shown).unwrap_or_default()) }
                            td { @if lo >= 0.0 { "up " } @else { "down " } (format!("{:+.2}", lo)) }
                        }
                    }
                }
            } @else if score.get("status").and_then(serde_json::Value::as_str) == Some("churned") {
                p { span.chip.muted { "cancelled" } " " (score.get("at").map(shown).unwrap_or_default()) }
            } @else {
                p.muted { "No churn model is active yet." }
            }
        }
        @let value = row.scores.get(crate::clv::KIND).cloned().unwrap_or_default();
        h2 { "Lifetime value" }
        div #clv {
            @if let Some(v) = value.get("value").and_then(serde_json::Value::as_f64) {
                p {
                    span.chip { (format!("{v:.2}")) }
                    " expected over the next " (value.get("horizon_days").map(shown).unwrap_or_default()) " days ("
                    (value.get("expected_purchases").map(shown).unwrap_or_default()) " purchases at about "
                    (value.get("expected_average_value").map(shown).unwrap_or_default()) " each) · a typical customer: "
                    (value.get("reference_value").map(shown).unwrap_or_default())
                    " · model version " (value.get("version").map(shown).unwrap_or_default())
                }
                table {
                    tr { th { "Input" } th { "This customer" } th { "Typical" } th { "Moves value" } }
                    @for c in value.get("contributions").and_then(serde_json::Value::as_array).into_iter().flatten() {
                        @let d = c.get("contribution").and_then(serde_json::Value::as_f64).unwrap_or(0.0);
                        tr {
                            td.mono { (c.get("input").map(shown).unwrap_or_default()) }
                            td { (c.get("value").map(shown).unwrap_or_default()) }
                            td { (c.get("reference").map(shown).unwrap_or_default()) }
                            td { (format!("{d:+.2}")) }
                        }
                    }
                }
            } @else if value.get("status").and_then(serde_json::Value::as_str) == Some("no_purchases") {
                p.muted { "No purchase yet: no lifetime value to predict." }
            } @else {
                p.muted { "No lifetime-value model is active yet." }
            }
        }
    }
}
