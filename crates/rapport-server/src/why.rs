//! The customer's own page, `/why/{token}`: reached from a signed, expiring link, no login.
//! It explains the automated decisions made about them, shows their consents with a way to
//! withdraw each, lets them download their data, and lets them ask for a person.
//!
//! A forged, garbled or expired token gets a plain page with no data on it.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{Duration, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use rapport_core::{Actor, AuditEntry, ConsentState, DecisionStatus};
use rapport_govern::consent::ConsentLedger;
use rapport_govern::links::{LinkError, WhyLink};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::api::extract::Path as ApiPath;
use crate::auth::{perm, Can};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::governance::ConsentInput;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/why/{token}", get(page))
        .route("/why/{token}/withdraw", post(withdraw))
        .route("/why/{token}/data.json", get(data))
        .route("/why/{token}/human", post(human))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:640px;margin:40px auto;padding:0 16px;color:#1d2433;line-height:1.5}
h1{font-size:24px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse;width:100%}td{padding:6px 4px;border-bottom:1px solid #e5e8f0}
.muted{color:#6b7385}button{padding:6px 12px;border-radius:4px;border:1px solid #a5adbf;background:#fff;cursor:pointer}
.state{font-weight:600}.granted{color:#2b8a3e}.denied,.withdrawn{color:#a61e1e}.notice{background:#ebfbee;padding:10px;border-radius:6px}";

fn shell(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}

fn refused(e: LinkError) -> Response {
    let (status, text) = match e {
        LinkError::Expired => (
            StatusCode::GONE,
            "This link has expired. Ask us for a new one.",
        ),
        LinkError::Malformed | LinkError::Forged => {
            (StatusCode::FORBIDDEN, "This link is not valid.")
        }
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        shell("Link not valid", html! { h1 { (text) } }),
    )
        .into_response()
}

fn check(state: &AppState, token: &str) -> Result<WhyLink, LinkError> {
    state.engine.links.verify(token, Utc::now())
}

#[derive(Debug, Deserialize, Default)]
pub struct Notice {
    pub done: Option<String>,
}

async fn page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    axum::extract::Query(notice): axum::extract::Query<Notice>,
) -> Response {
    let link = match check(&state, &token) {
        Ok(l) => l,
        Err(e) => return refused(e),
    };
    let history = match state.store.consents(&link.workspace, &link.profile).await {
        Ok(h) => h,
        Err(_) => {
            return (
                StatusCode::NOT_FOUND,
                shell(
                    "Not found",
                    html! { h1 { "There is nothing to show for this link." } },
                ),
            )
                .into_response()
        }
    };
    let decisions = state
        .store
        .decisions(rapport_store::DecisionQuery {
            workspace: link.workspace.clone(),
            profile: Some(link.profile.clone()),
            status: None,
            limit: 50,
        })
        .await
        .unwrap_or_default();
    // What the customer sees: decisions that reached them or are about to, not refusals of
    // things that never happened.
    let shown: Vec<_> = decisions
        .iter()
        .filter(|d| {
            matches!(
                d.status,
                DecisionStatus::Executed | DecisionStatus::PendingApproval
            )
        })
        .collect();
    let waiting_for_person = state
        .store
        .handoff(&link.workspace, &link.profile)
        .await
        .ok()
        .flatten()
        .is_some_and(|h| h.resolved_at.is_none());
    let ledger = ConsentLedger::from_history(&history);
    let registry = &state.engine.options.purposes;
    let notice_text = match notice.done.as_deref() {
        Some("withdrawn") => Some("Done: we will no longer use your data for that."),
        Some("human") => {
            Some("Thank you. A person from our team will take over; automated replies are stopped.")
        }
        _ => None,
    };
    let body = html! {
        h1 { "Why am I seeing this?" }
        @if let Some(t) = notice_text { p.notice #notice { (t) } }
        h2 { "Decisions made about you" }
        @if shown.is_empty() {
            p #decisions { "No decision has been made about you yet. When one is, it is listed here with the reasons behind it, in plain words." }
        } @else {
            ul #decisions {
                @for d in &shown {
                    li.decision {
                        (d.explanation)
                        @if d.status == DecisionStatus::PendingApproval {
                            " " span.muted { "(A person on our team is reviewing this before it happens.)" }
                        }
                        @if d.automated {
                            " " span.muted { "Decided automatically on " (d.created_at.format("%-d %B %Y")) "." }
                        } @else {
                            " " span.muted { "Decided by our team on " (d.created_at.format("%-d %B %Y")) "." }
                        }
                    }
                }
            }
        }
        h2 { "What you allowed us to do" }
        table #consents {
            @for (purpose, description) in registry.iter() {
                @let now = ledger.state(purpose);
                tr {
                    td { (description) }
                    td.state class=(now.map_or("muted", ConsentState::as_str)) {
                        (now.map_or("not asked", ConsentState::as_str))
                    }
                    td {
                        @if now == Some(ConsentState::Granted) {
                            form method="post" action=(format!("/why/{token}/withdraw")) {
                                input type="hidden" name="purpose" value=(purpose);
                                button type="submit" { "Withdraw" }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Your data" }
        p { a #download href=(format!("/why/{token}/data.json")) { "Download everything we hold about you" } " (JSON)." }
        h2 { "Talk to a person" }
        @if waiting_for_person {
            p #human-status { "You asked for a person: automated replies are stopped and someone from our team will take over." }
        } @else {
            form method="post" action=(format!("/why/{token}/human")) {
                button #ask-human type="submit" { "I want a person, not an automated reply" }
            }
        }
        p.muted { "This page is private to you; the link expires on its own." }
    };
    (
        [(header::CACHE_CONTROL, "no-store")],
        shell("Why am I seeing this?", body),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct WithdrawForm {
    pub purpose: String,
}

async fn withdraw(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<WithdrawForm>,
) -> Response {
    let link = match check(&state, &token) {
        Ok(l) => l,
        Err(e) => return refused(e),
    };
    let input = ConsentInput {
        purpose: form.purpose,
        state: ConsentState::Withdrawn,
        source: "customer_page".into(),
        at: None,
    };
    match state
        .engine
        .set_consents(&link.workspace, &link.profile, vec![input], Actor::Customer)
        .await
    {
        Ok(_) => Redirect::to(&format!("/why/{token}?done=withdrawn")).into_response(),
        Err(crate::governance::ConsentError::UnknownPurpose(..)) => {
            (StatusCode::BAD_REQUEST, "unknown purpose").into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "withdrawal from the customer page failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "We could not record that just now; please try again.",
            )
                .into_response()
        }
    }
}

async fn data(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let link = match check(&state, &token) {
        Ok(l) => l,
        Err(e) => return refused(e),
    };
    match state
        .engine
        .export(&link.workspace, &link.profile, Actor::Customer)
        .await
    {
        Ok(export) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"my-data.json\"",
                ),
                (header::CACHE_CONTROL, "no-store"),
            ],
            serde_json::to_string_pretty(&export).unwrap_or_default(),
        )
            .into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "nothing to show").into_response(),
    }
}

async fn human(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let link = match check(&state, &token) {
        Ok(l) => l,
        Err(e) => return refused(e),
    };
    match state
        .engine
        .request_human(
            &link.workspace,
            &link.profile,
            link.conversation.as_ref(),
            "why_page",
            Actor::Customer,
        )
        .await
    {
        Ok(_) => Redirect::to(&format!("/why/{token}?done=human")).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "recording a request for a person failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "We could not record that just now; please try again.",
            )
                .into_response()
        }
    }
}

/// Which page to link to.
#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct WhyLinkRequest {
    /// The conversation the link is about, if any.
    pub conversation_id: Option<String>,
    /// Days until the link expires (1 to 90, default 30).
    pub days: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WhyLinkDto {
    /// Path of the customer's page; prefix it with the server's public address.
    pub path: String,
    pub expires_at: chrono::DateTime<Utc>,
}

/// A signed link to the customer's own page, where they see why decisions were made, withdraw
/// consent, download their data or ask for a person. No login is needed; the link expires.
#[utoipa::path(post, path = "/v1/profiles/{id}/why-link", tag = "governance",
    params(("id" = String, Path, description = "Profile id")),
    request_body = WhyLinkRequest,
    responses((status = 201, body = WhyLinkDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn issue_link(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageConsent>,
    ApiPath(id): ApiPath<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, axum::Json<WhyLinkDto>)> {
    // The body is optional: an empty one asks for the defaults.
    let req: WhyLinkRequest = if body.iter().all(u8::is_ascii_whitespace) {
        WhyLinkRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid("invalid_body", format!("invalid JSON body: {e}")))?
    };
    let days = req.days.unwrap_or(30);
    if !(1..=90).contains(&days) {
        return Err(ApiError::invalid(
            "invalid_body",
            "days must be between 1 and 90",
        ));
    }
    let profile = rapport_core::ProfileId::parse(&id)
        .ok_or_else(|| ApiError::not_found(format!("profile {id}")))?;
    let found = state
        .store
        .profile(&caller.workspace_id, &profile)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("profile {id}")))?;
    let conversation = match req.conversation_id {
        None => None,
        Some(c) => {
            let cid = rapport_core::ConversationId::parse(&c)
                .ok_or_else(|| ApiError::not_found(format!("conversation {c}")))?;
            let detail = state
                .store
                .conversation(&caller.workspace_id, &cid)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("conversation {c}")))?;
            if detail.conversation.profile_id != found.id {
                return Err(ApiError::not_found(format!("conversation {c}")));
            }
            Some(cid)
        }
    };
    let expires_at = Utc::now() + Duration::days(days);
    let link = WhyLink {
        workspace: caller.workspace_id.clone(),
        profile: found.id.clone(),
        conversation,
        expires: expires_at.timestamp(),
    };
    let token = state.engine.links.sign(&link);
    state
        .store
        .append_audit(vec![AuditEntry::new(
            Some(caller.workspace_id.clone()),
            caller.actor(),
            "why_link.issued",
            Some(found.id.to_string()),
            json!({"days": days}),
        )])
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(WhyLinkDto {
            path: format!("/why/{token}"),
            expires_at,
        }),
    ))
}
