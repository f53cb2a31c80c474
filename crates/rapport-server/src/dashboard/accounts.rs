//! The dashboard's account pages: everyone changes their own password on *Account*; an
//! administrator sees the workspace's accounts on *Users* and disables or enables them. Every
//! change is audited and ends the changed account's sessions (see `Store::update_user`).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use rapport_core::{AuditEntry, Login};
use rapport_store::UserChange;
use serde::Deserialize;
use serde_json::json;

use super::governance::allowed;
use super::layout::{ago, page};
use super::DashboardUser;
use crate::auth::{perm, Caller, Sessions, SESSION_COOKIE, SESSION_TTL};
use crate::users::{change_password, verify_password};
use crate::AppState;

fn account_page(caller: &Caller, note: Option<(&str, bool)>) -> Markup {
    page(
        "Account",
        caller.workspace_name.as_str(),
        html! {
            h1 { "Your account" }
            p { "Signed in as " strong { (caller.display_name()) } ", role " span.mono { (caller.role.as_str()) } "." }
            @if let Some((text, ok)) = note {
                p #account-note class=(if ok { "ok" } else { "error" }) { (text) }
            }
            h2 { "Change your password" }
            form #change-password method="post" action="/account/password" {
                label { "Current password " input type="password" name="current" autocomplete="current-password" required; } br;
                label { "New password (12 characters or more) " input type="password" name="new" autocomplete="new-password" required; } br;
                label { "New password again " input type="password" name="repeat" autocomplete="new-password" required; } br;
                button type="submit" { "Change password" }
            }
            p.muted { "Changing your password signs you out everywhere else." }
        },
    )
}

pub async fn account(user: DashboardUser) -> Response {
    account_page(&user.0, None).into_response()
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    repeat: String,
}

/// Changes the signed-in person's password after checking the current one; their other
/// sessions end and this one is renewed.
pub async fn change_own_password(
    State(state): State<AppState>,
    user: DashboardUser,
    Form(form): Form<PasswordForm>,
) -> Response {
    let caller = &user.0;
    let refuse = |status: StatusCode, text: &str| {
        (status, account_page(caller, Some((text, false)))).into_response()
    };
    let Some(id) = caller.user_id() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Only people's accounts have passwords.",
        );
    };
    if form.new != form.repeat {
        return refuse(StatusCode::BAD_REQUEST, "The two new passwords differ.");
    }
    let login = match &caller.principal {
        crate::auth::Principal::User { login, .. } => Login::from_trusted(login.clone()),
        crate::auth::Principal::Key(_) => return refuse(StatusCode::BAD_REQUEST, "No account."),
    };
    let account = match state.store.find_user(&login).await {
        Ok(Some(u)) if u.id == id => u,
        Ok(_) => return refuse(StatusCode::NOT_FOUND, "Your account no longer exists."),
        Err(e) => {
            tracing::warn!(error = %e, "could not read an account");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "Try again shortly.");
        }
    };
    let (hash, current) = (account.password_hash.clone(), form.current.clone());
    let matched = tokio::task::spawn_blocking(move || verify_password(&hash, &current))
        .await
        .unwrap_or(false);
    if !matched {
        let entry = AuditEntry::new(
            Some(caller.workspace_id.clone()),
            caller.actor(),
            "user.password_change_refused",
            None,
            json!({"user": id, "reason": "wrong_password"}),
        );
        if let Err(e) = state.store.append_audit(vec![entry]).await {
            tracing::warn!(error = %e, "could not audit a refused password change");
        }
        return refuse(StatusCode::FORBIDDEN, "The current password is not right.");
    }
    let changed = change_password(
        state.store.as_ref(),
        &caller.workspace_id,
        id,
        &form.new,
        caller.actor(),
        "user.password_changed",
    )
    .await;
    let account = match changed {
        Ok(a) => a,
        Err(e) if e.kind == rapport_core::error::ErrorKind::InvalidInput => {
            return refuse(StatusCode::BAD_REQUEST, &e.message)
        }
        Err(e) => {
            tracing::warn!(error = %e.message, "could not change a password");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "Try again shortly.");
        }
    };
    // Every session of the account ended with the change; this one starts afresh.
    let mut headers = HeaderMap::new();
    if let Ok(token) = Sessions::start(state.store.as_ref(), &account).await {
        let cookie = format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            SESSION_TTL.as_secs()
        );
        if let Ok(v) = cookie.parse() {
            headers.insert(header::SET_COOKIE, v);
        }
    }
    let caller = Caller::for_user(account);
    (
        headers,
        account_page(&caller, Some(("Your password is changed.", true))),
    )
        .into_response()
}

/// The workspace's accounts, for administrators, with a button to disable or enable each
/// other account.
pub async fn users(State(state): State<AppState>, user: DashboardUser) -> Response {
    if let Err(r) = allowed::<perm::ManageUsers>(&state, &user, "/users").await {
        return r;
    }
    let accounts = state
        .store
        .users(&user.0.workspace_id)
        .await
        .unwrap_or_default();
    let me = user.0.user_id().unwrap_or_default().to_owned();
    page("Users", user.0.workspace_name.as_str(), html! {
        h1 { "Users" }
        p.muted { "Make accounts with " span.mono { "rapport users create" } " or " span.mono { "POST /v1/users" } "; reset a password with " span.mono { "PUT /v1/users/{id}/password" } " or " span.mono { "rapport users password" } "." }
        table #users {
            tr { th { "Login" } th { "Role" } th { "Since" } th { "State" } th {} }
            @for a in &accounts {
                tr {
                    td.mono { (a.login.as_str()) }
                    td { (a.role.as_str()) }
                    td { (ago(Some(a.created_at))) }
                    td { @if a.disabled_at.is_some() { span.chip.warn { "disabled " (ago(a.disabled_at)) } } @else { "active" } }
                    td {
                        @if a.id == me {
                            span.muted { "you" }
                        } @else if a.disabled_at.is_some() {
                            form method="post" action=(format!("/users/{}/enable", a.id)) { button type="submit" { "Enable" } }
                        } @else {
                            form method="post" action=(format!("/users/{}/disable", a.id)) { button type="submit" { "Disable" } }
                        }
                    }
                }
            }
        }
    })
    .into_response()
}

async fn set_disabled(
    state: AppState,
    user: DashboardUser,
    id: String,
    disabled: bool,
) -> Response {
    if let Err(r) = allowed::<perm::ManageUsers>(&state, &user, "/users").await {
        return r;
    }
    if user.0.user_id() == Some(id.as_str()) {
        return (StatusCode::CONFLICT, "You cannot disable your own account.").into_response();
    }
    let entry = AuditEntry::new(
        Some(user.0.workspace_id.clone()),
        user.0.actor(),
        "user.updated",
        None,
        json!({"user": id, "disabled": disabled}),
    );
    let change = UserChange {
        disabled: Some(disabled),
        ..UserChange::default()
    };
    match state
        .store
        .update_user(&user.0.workspace_id, &id, change, vec![entry])
        .await
    {
        Ok(_) => Redirect::to("/users").into_response(),
        Err(rapport_store::StoreError::NotFound(_)) => {
            (StatusCode::NOT_FOUND, "no such account").into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not change an account");
            (StatusCode::SERVICE_UNAVAILABLE, "Try again shortly.").into_response()
        }
    }
}

pub async fn disable(
    State(state): State<AppState>,
    user: DashboardUser,
    Path(id): Path<String>,
) -> Response {
    set_disabled(state, user, id, true).await
}

pub async fn enable(
    State(state): State<AppState>,
    user: DashboardUser,
    Path(id): Path<String>,
) -> Response {
    set_disabled(state, user, id, false).await
}
