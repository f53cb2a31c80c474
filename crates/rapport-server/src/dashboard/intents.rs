//! Intents on the dashboard: the correction form beside each analysed message on the
//! conversation page, and the "Intents" page (the version in use and its figures, the history
//! of versions with rollback, recent corrections, retraining). Forms post with the session
//! cookie, which is `SameSite=Strict`, as every dashboard form.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use rapport_core::{ConversationId, Permission};
use rapport_store::{CorrectionQuery, IntentCorrection};
use serde::Deserialize;
use serde_json::Value;

use super::governance::allowed;
use super::layout::{ago, page};
use super::DashboardUser;
use crate::auth::perm;
use crate::intents::{self as intent_models, CorrectedIntent, IntentError};
use crate::AppState;

/// The form value that marks a message out of scope.
const OUT_OF_SCOPE: &str = "out_of_scope";

/// Beside a message's chips: its correction, if any, and (for those who may correct) a form
/// to set the right intent or mark it out of scope.
pub fn correction_form(
    conversation: &str,
    message: &str,
    labels: &[String],
    current: Option<&IntentCorrection>,
    can_correct: bool,
) -> Markup {
    html! {
        div.chips.correction {
            @if let Some(c) = current {
                span.chip.good.corrected title=(format!("by {} {}", c.corrected_by, ago(Some(c.corrected_at)).into_string())) {
                    "corrected to " (c.corrected.as_deref().map_or("out of scope".to_owned(), |l| l.replace('_', " ")))
                }
            }
            @if can_correct {
                form method="post" action=(format!("/conversations/{conversation}/messages/{message}/intent")) style="display:inline" {
                    select name="intent" aria-label="correct intent" {
                        @for l in labels { option value=(l) selected[current.and_then(|c| c.corrected.as_deref()) == Some(l.as_str())] { (l.replace('_', " ")) } }
                        option value=(OUT_OF_SCOPE) { "out of scope" }
                    }
                    " "
                    button.small type="submit" { "Correct intent" }
                }
            }
        }
    }
}

/// The corrections of one conversation by message id, and the intents a message can take.
pub async fn conversation_corrections(
    state: &AppState,
    user: &DashboardUser,
    conversation: &ConversationId,
) -> (Vec<IntentCorrection>, Vec<String>, bool) {
    let ws = &user.0.workspace_id;
    let corrections = state
        .store
        .intent_corrections(CorrectionQuery {
            workspace: ws.clone(),
            conversation: Some(conversation.as_str().to_owned()),
            limit: 1000,
        })
        .await
        .unwrap_or_default();
    let labels = intent_models::intent_labels(&*state.engine.interpreter_for(ws).await);
    let can = user.0.role.allows(Permission::CorrectIntents);
    (corrections, labels, can)
}

#[derive(Debug, Deserialize)]
pub struct CorrectionForm {
    pub intent: String,
}

fn error_page(user: &DashboardUser, title: &str, e: &IntentError, back: &str) -> Response {
    use rapport_core::error::Coded;
    let status = crate::error::status_of(e.kind());
    (
        status,
        page(
            title,
            user.0.workspace_name.as_str(),
            html! { h1 { (title) } p #intent-error { (e.to_string()) } p { a href=(back) { "Back" } } },
        ),
    )
        .into_response()
}

pub async fn correct(
    State(state): State<AppState>,
    user: DashboardUser,
    Path((id, message)): Path<(String, String)>,
    Form(form): Form<CorrectionForm>,
) -> Response {
    let path = format!("/conversations/{id}/messages/{message}/intent");
    if let Err(r) = allowed::<perm::CorrectIntents>(&state, &user, &path).await {
        return r;
    }
    let Some(conversation) = ConversationId::parse(&id) else {
        return (StatusCode::NOT_FOUND, "no such conversation").into_response();
    };
    let to = if form.intent == OUT_OF_SCOPE {
        CorrectedIntent::OutOfScope
    } else {
        CorrectedIntent::Intent(form.intent)
    };
    let back = format!("/conversations/{id}");
    match state
        .engine
        .correct_intent(
            &user.0.workspace_id,
            &conversation,
            &message,
            to,
            user.0.actor(),
        )
        .await
    {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => error_page(&user, "Correction not saved", &e, &back),
    }
}

fn figure(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if key.ends_with("accuracy") => format!("{:.0}%", f * 100.0),
            _ => n.to_string(),
        },
        _ => "–".to_owned(),
    }
}

pub async fn intents_page(State(state): State<AppState>, user: DashboardUser) -> Response {
    if let Err(r) = allowed::<perm::ReadCustomers>(&state, &user, "/intents").await {
        return r;
    }
    let ws = &user.0.workspace_id;
    let (active, versions, corrections) = match tokio::try_join!(
        state.store.active_intent_model(ws),
        state.store.intent_models(ws),
        state.store.intent_corrections(CorrectionQuery {
            workspace: ws.clone(),
            conversation: None,
            limit: 50,
        }),
    ) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "reading intent models failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not read intent models; see the server log",
            )
                .into_response();
        }
    };
    let labels = intent_models::intent_labels(&*state.engine.interpreter_for(ws).await);
    let can_manage = user.0.role.allows(Permission::ManageIntents);
    let in_use = versions.iter().find(|v| v.active);
    page("Intents", user.0.workspace_name.as_str(), html! {
        h1 { "Intents" }
        p.muted { "Agents correct the intent read in customers' messages on the conversation page. Retraining learns from the taxonomy's example phrases plus every correction (the redacted text only), checks the new model on the corrections it did not see (5-fold) against the model in use, and switches to it when it does at least as well. Every server picks the new version up within seconds." }
        div.cards {
            div.card { div.n #active-version { (active.version) } div.l { "model version in use" @if active.version == 0 { " (built-in default)" } } }
            div.card { div.n { (labels.len()) } div.l { "intents in the taxonomy" } }
            @if let Some(v) = in_use {
                div.card { div.n { (figure(&v.summary, "corrections")) } div.l { "corrections it learnt from" } }
                div.card { div.n { (figure(&v.summary, "new_accuracy")) } div.l { "on unseen corrections (was " (figure(&v.summary, "old_accuracy")) ")" } }
            }
        }
        @if can_manage {
            form method="post" action="/intents/retrain" style="margin:16px 0" {
                button #retrain type="submit" { "Retrain from corrections" }
                " "
                label.small { input type="checkbox" name="force" value="true"; " switch even if it does worse" }
            }
        }
        h2 { "Versions" }
        table #intent-versions {
            tr { th { "Version" } th { "Trained" } th { "By" } th { "Corrections" } th { "Out of scope" } th { "Old → new on corrections" } th { "Taxonomy phrases" } th {} }
            @for v in &versions {
                tr {
                    td.mono {
                        (v.version) @if v.active { " " span.chip.good { "in use" } }
                        @if v.summary.get("neural_head").and_then(serde_json::Value::as_bool) == Some(true) {
                            " " span.chip title="Trained with a MiniLM intent head too; neural nodes read its intents with it" { "neural head" }
                        }
                    }
                    td { (ago(Some(v.created_at))) }
                    td.mono { (v.created_by) }
                    td { (figure(&v.summary, "corrections")) }
                    td { (figure(&v.summary, "out_of_scope_corrections")) }
                    td { (figure(&v.summary, "old_accuracy")) " → " (figure(&v.summary, "new_accuracy")) }
                    td { (figure(&v.summary, "taxonomy_accuracy")) }
                    td { @if can_manage && !v.active { (activate_button(v.version, "Roll back to this")) } }
                }
            }
            tr {
                td.mono { "0" @if active.version == 0 { " " span.chip.good { "in use" } } }
                td colspan="6" .muted { "built-in default taxonomy" }
                td { @if can_manage && active.version != 0 { (activate_button(0, "Use the default")) } }
            }
        }
        h2 { "Recent corrections" }
        table #intent-corrections {
            tr { th { "Message (redacted)" } th { "Model read" } th { "Corrected to" } th { "By" } th { "When" } }
            @for c in &corrections {
                tr {
                    td { a href=(format!("/conversations/{}", c.conversation_id)) { (c.text) } }
                    td { (c.predicted.as_deref().unwrap_or("out of scope")) " " span.muted.small { (format!("{:.2}", c.confidence)) " · v" (c.model_version) } }
                    td { strong { (c.corrected.as_deref().unwrap_or("out of scope")) } }
                    td.mono { (c.corrected_by) }
                    td { (ago(Some(c.corrected_at))) }
                }
            }
            @if corrections.is_empty() { tr { td colspan="5" .muted { "No corrections yet: correct intents on a conversation's page." } } }
        }
    })
    .into_response()
}

fn activate_button(version: i64, label: &str) -> Markup {
    html! {
        form method="post" action=(format!("/intents/models/{version}/activate")) {
            button.small type="submit" { (label) }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RetrainForm {
    pub force: Option<String>,
}

pub async fn retrain(
    State(state): State<AppState>,
    user: DashboardUser,
    Form(form): Form<RetrainForm>,
) -> Response {
    if let Err(r) = allowed::<perm::ManageIntents>(&state, &user, "/intents/retrain").await {
        return r;
    }
    let ws = &user.0.workspace_id;
    let force = form.force.as_deref() == Some("true");
    match state
        .engine
        .retrain_intents(ws, user.0.actor(), force)
        .await
    {
        Ok(_) => Redirect::to("/intents").into_response(),
        Err(e) => error_page(&user, "Retraining failed", &e, "/intents"),
    }
}

pub async fn activate(
    State(state): State<AppState>,
    user: DashboardUser,
    Path(version): Path<String>,
) -> Response {
    let path = format!("/intents/models/{version}/activate");
    if let Err(r) = allowed::<perm::ManageIntents>(&state, &user, &path).await {
        return r;
    }
    let Ok(version) = version.parse::<i64>() else {
        return (StatusCode::NOT_FOUND, "no such version").into_response();
    };
    let ws = &user.0.workspace_id;
    match state
        .engine
        .activate_intent_model(ws, version, user.0.actor())
        .await
    {
        Ok(_) => Redirect::to("/intents").into_response(),
        Err(e) => error_page(&user, "Version not activated", &e, "/intents"),
    }
}
