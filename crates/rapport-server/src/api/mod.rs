//! The JSON API under `/v1`.

pub mod actions;
pub mod alerts;
pub mod analyze;
pub mod conversations;
pub mod dead_letters;
pub mod dedupe;
pub mod dto;
pub mod extract;
pub mod fairness;
pub mod governance;
pub mod ingest;
pub mod intents;
pub mod matching;
pub mod models;
pub mod nba;
pub mod profiles;
pub mod routing;
pub mod users;

use axum::routing::{delete, get, patch, post};
use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/identify", post(ingest::identify))
        .route("/v1/track", post(ingest::track))
        .route("/v1/page", post(ingest::page))
        .route("/v1/screen", post(ingest::screen))
        .route("/v1/group", post(ingest::group))
        .route("/v1/alias", post(ingest::alias))
        .route("/v1/batch", post(ingest::batch))
        .route("/v1/profiles", get(profiles::lookup))
        .route("/v1/profiles/search", get(profiles::search))
        .route(
            "/v1/profiles/{id}",
            get(profiles::get_profile).delete(governance::erase),
        )
        .route(
            "/v1/profiles/{id}/consents",
            get(governance::get_consents).put(governance::put_consents),
        )
        .route("/v1/profiles/{id}/export", get(governance::export))
        .route("/v1/profiles/{id}/why-link", post(crate::why::issue_link))
        .route("/v1/audit", get(governance::audit))
        .route("/v1/audits/fairness", post(fairness::audit))
        .route("/v1/analyze", post(analyze::analyze))
        .route("/v1/match", post(matching::match_record))
        .route("/v1/identity/dedupe", post(dedupe::run))
        .route("/v1/identity/review", get(dedupe::list))
        .route("/v1/identity/review/{id}", get(dedupe::show))
        .route("/v1/identity/review/{id}/merge", post(dedupe::merge))
        .route("/v1/identity/review/{id}/reject", post(dedupe::reject))
        .route("/v1/profiles/{id}/events", get(profiles::events))
        .route(
            "/v1/profiles/{id}/conversations",
            get(profiles::conversations),
        )
        .route("/v1/profiles/{id}/merges", get(profiles::merges))
        .route("/v1/profiles/{id}/features", get(models::profile_features))
        .route("/v1/models/{kind}", get(models::versions))
        .route("/v1/models/{kind}/train", post(models::train))
        .route(
            "/v1/models/{kind}/versions/{version}/activate",
            post(models::activate),
        )
        .route("/v1/profiles/{id}/unmerge", post(profiles::unmerge))
        .route("/v1/conversations", post(conversations::open))
        .route(
            "/v1/conversations/{id}",
            get(conversations::get_conversation),
        )
        .route(
            "/v1/conversations/{id}/messages",
            post(conversations::add_message),
        )
        .route(
            "/v1/conversations/{id}/messages/{message_id}/intent-correction",
            post(intents::correct),
        )
        .route("/v1/intents/corrections", get(intents::corrections))
        .route("/v1/intents/models", get(intents::models))
        .route("/v1/intents/retrain", post(intents::retrain))
        .route(
            "/v1/intents/models/{version}/activate",
            post(intents::activate),
        )
        .route("/v1/stats", get(profiles::stats))
        .route("/v1/actions", post(actions::request))
        .route("/v1/decisions", get(actions::list))
        .route("/v1/decisions/{id}", get(actions::get))
        .route(
            "/v1/decisions/next-best-action",
            post(nba::next_best_action),
        )
        .route("/v1/decisions/{id}/outcome", post(nba::outcome))
        .route("/v1/decisions/catalog/reload", post(nba::reload_catalog))
        .route("/v1/profiles/{id}/decisions", get(actions::of_profile))
        .route("/v1/approvals/{id}/approve", post(actions::approve))
        .route("/v1/approvals/{id}/reject", post(actions::reject))
        .route("/v1/policy", get(actions::get_policy))
        .route("/v1/policy/reload", post(actions::reload_policy))
        .route("/v1/handoffs", get(actions::handoffs))
        .route("/v1/profiles/{id}/handoff", post(actions::open_handoff))
        .route(
            "/v1/profiles/{id}/handoff/resolve",
            post(actions::resolve_handoff),
        )
        .route("/v1/users", get(users::list).post(users::create))
        .route("/v1/users/{id}", axum::routing::patch(users::update))
        .route(
            "/v1/users/{id}/password",
            axum::routing::put(users::set_password),
        )
        .route("/v1/alerts", get(alerts::list))
        .route("/v1/alerts/{id}/acknowledge", post(alerts::acknowledge))
        .route("/v1/audits/fairness/scheduled", get(alerts::scheduled))
        .route(
            "/v1/audits/fairness/scheduled/{name}/run",
            post(alerts::run),
        )
        .route(
            "/v1/routing/queues",
            get(routing::list_queues).post(routing::create_queue),
        )
        .route(
            "/v1/routing/queues/{id}/entries",
            get(routing::queue_entries),
        )
        .route(
            "/v1/routing/agents",
            get(routing::list_agents).post(routing::create_agent),
        )
        .route("/v1/routing/agents/{id}", patch(routing::update_agent))
        .route("/v1/routing/entries/{id}/accept", post(routing::accept))
        .route("/v1/routing/entries/{id}/finish", post(routing::finish))
        .route("/v1/dead-letters", get(dead_letters::list))
        .route("/v1/dead-letters/{id}", delete(dead_letters::discard))
        .route("/v1/dead-letters/{id}/replay", post(dead_letters::replay))
}
