//! The dashboard: server-rendered HTML from the same binary, no build step. Pages: login,
//! overview (live counts by channel), customers (list and search), customer 360, conversation
//! (with intent corrections), intents (model versions, retraining, rollback).
//! A few lines of inline JavaScript refresh the live numbers; everything else is plain HTML.

mod accounts;
mod alerts;
mod analysis;
mod duplicates;
mod governance;
mod identity;
mod intents;
mod layout;
mod operations;
mod oversight;
mod pages;
mod queue;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::auth::{session_token, Caller, Sessions, SESSION_COOKIE, SESSION_TTL};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/customers", get(pages::customers))
        .route("/customers/{id}", get(pages::customer))
        .route("/conversations/{id}", get(pages::conversation))
        .route("/dashboard/live.json", get(pages::live))
        .route("/audit", get(governance::audit))
        .route(
            "/fairness",
            get(governance::fairness_form).post(governance::fairness_run),
        )
        .route("/customers/{id}/export.json", get(governance::export))
        .route("/customers/{id}/erase", post(governance::erase))
        .route("/approvals", get(oversight::approvals))
        .route("/alerts", get(alerts::alerts))
        .route("/queue", get(queue::queue))
        .route("/alerts/{id}/acknowledge", post(alerts::acknowledge))
        .route("/approvals/{id}/answer", post(oversight::answer))
        .route("/handoffs/{id}/resolve", post(oversight::resolve))
        .route("/dead-letters", get(operations::dead_letters))
        .route("/dead-letters/{id}/replay", post(operations::replay))
        .route("/data-quality", get(identity::data_quality))
        .route("/customers/{id}/unmerge", post(identity::unmerge))
        .route("/duplicates", get(duplicates::list))
        .route("/duplicates/{id}", get(duplicates::show))
        .route("/duplicates/{id}/merge", post(duplicates::merge))
        .route("/duplicates/{id}/reject", post(duplicates::reject))
        .route("/account", get(accounts::account))
        .route("/account/password", post(accounts::change_own_password))
        .route("/users", get(accounts::users))
        .route("/users/{id}/disable", post(accounts::disable))
        .route("/users/{id}/enable", post(accounts::enable))
        .route("/intents", get(intents::intents_page))
        .route("/intents/retrain", post(intents::retrain))
        .route(
            "/intents/models/{version}/activate",
            post(intents::activate),
        )
        .route(
            "/conversations/{id}/messages/{message_id}/intent",
            post(intents::correct),
        )
}

/// A signed-in dashboard user; anyone else is sent to the login page.
pub struct DashboardUser(pub Caller);

impl FromRequestParts<AppState> for DashboardUser {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(token) = session_token(parts) else {
            return Err(Redirect::to("/login").into_response());
        };
        Sessions::get(state.store.as_ref(), &token)
            .await
            .map(DashboardUser)
            .ok_or_else(|| Redirect::to("/login").into_response())
    }
}

async fn login_page(State(state): State<AppState>) -> maud::Markup {
    layout::login(None, &state.demo_accounts)
}

#[derive(Deserialize)]
struct LoginForm {
    login: String,
    password: String,
}

/// Signs a person in with their login and password. Every attempt is audited: a success or
/// a wrong password under the account's id, an unknown login without naming it.
async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    use crate::users::SignInError;
    let outcome = state
        .logins
        .sign_in(state.store.as_ref(), &form.login, &form.password)
        .await;
    let (actor, workspace, action, detail) = match &outcome {
        Ok(u) => (
            rapport_core::Actor::User(u.id.clone()),
            Some(u.workspace_id.clone()),
            "login.succeeded",
            serde_json::json!({"role": u.role.as_str()}),
        ),
        Err(SignInError::Invalid { user: Some(u) }) => (
            rapport_core::Actor::User(u.id.clone()),
            Some(u.workspace_id.clone()),
            "login.failed",
            serde_json::json!({"reason": "wrong_password"}),
        ),
        Err(SignInError::Invalid { user: None }) => (
            rapport_core::Actor::System,
            None,
            "login.failed",
            serde_json::json!({"reason": "unknown_login"}),
        ),
        Err(SignInError::Throttled) => (
            rapport_core::Actor::System,
            None,
            "login.failed",
            serde_json::json!({"reason": "throttled"}),
        ),
        Err(SignInError::Disabled { user: u }) => (
            rapport_core::Actor::User(u.id.clone()),
            Some(u.workspace_id.clone()),
            "login.failed",
            serde_json::json!({"reason": "disabled"}),
        ),
    };
    let entry = rapport_core::AuditEntry::new(workspace, actor, action, None, detail);
    if let Err(e) = state.store.append_audit(vec![entry]).await {
        tracing::warn!(error = %e, "could not audit a sign-in");
    }
    match outcome {
        Ok(user) => {
            let token = match Sessions::start(state.store.as_ref(), &user).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e, "could not keep a dashboard session");
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        layout::login(
                            Some("Signing in is not possible right now. Try again shortly."),
                            &state.demo_accounts,
                        ),
                    )
                        .into_response();
                }
            };
            let cookie = format!(
                "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
                SESSION_TTL.as_secs()
            );
            let mut headers = HeaderMap::new();
            if let Ok(v) = cookie.parse() {
                headers.insert(header::SET_COOKIE, v);
            }
            (headers, Redirect::to("/")).into_response()
        }
        Err(SignInError::Throttled) => (
            StatusCode::TOO_MANY_REQUESTS,
            layout::login(
                Some("Too many failed attempts for this login. Try again in 15 minutes."),
                &state.demo_accounts,
            ),
        )
            .into_response(),
        Err(SignInError::Disabled { .. }) => (
            StatusCode::FORBIDDEN,
            layout::login(
                Some("This account is disabled. Ask an administrator to enable it."),
                &state.demo_accounts,
            ),
        )
            .into_response(),
        Err(SignInError::Invalid { .. }) => (
            StatusCode::UNAUTHORIZED,
            layout::login(
                Some("That login and password do not match an account."),
                &state.demo_accounts,
            ),
        )
            .into_response(),
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (mut parts, _) = axum::http::Request::new(()).into_parts();
    parts.headers = headers;
    if let Some(t) = session_token(&parts) {
        Sessions::end(state.store.as_ref(), &t).await;
    }
    let mut out = HeaderMap::new();
    if let Ok(v) =
        format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0").parse()
    {
        out.insert(header::SET_COOKIE, v);
    }
    (out, Redirect::to("/login")).into_response()
}
