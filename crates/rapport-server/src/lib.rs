//! Rapport's server: the Segment-compatible HTTP API, the read API, the server-rendered
//! dashboard, and the wiring of stages to the store.
//!
//! It owns HTTP concerns only: authentication, limits on bodies, mapping errors to statuses,
//! OpenAPI, HTML. Parsing payloads is `rapport-ingest`'s job, persistence is `rapport-store`'s.

pub mod actions;
pub mod api;
pub mod auth;
pub mod churn;
pub mod clv;
pub mod dashboard;
pub mod dedupe;
pub mod engine;
pub mod error;
pub mod escalation;
pub mod fairness_watch;
pub mod governance;
pub mod identity;
pub mod intents;
pub mod nba;
pub mod openapi;
pub mod policy_watch;
pub mod predictive;
pub mod routing;
pub mod sink;
pub mod users;
pub mod why;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use rapport_ingest::Limits;
use rapport_store::Store;
use tokio::net::TcpListener;

/// Everything a request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub engine: Arc<engine::Engine>,
    pub keys: Arc<auth::KeyCache>,
    /// Failed dashboard sign-ins per login.
    pub logins: Arc<users::LoginThrottle>,
    pub limits: Limits,
    /// Set on demo servers: the login page lists the demo's accounts with their passwords.
    pub demo_accounts: Vec<DemoAccount>,
}

/// A demo company's account, shown on its login page (demo servers only).
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub login: String,
    pub role: rapport_core::KeyRole,
    pub password: String,
}

impl AppState {
    /// The state for a server over `store`. Fails only if the embedded models cannot load.
    pub fn new(
        store: Arc<dyn Store>,
        limits: Limits,
        options: engine::EngineOptions,
    ) -> Result<Self, rapport_interpret::InterpretError> {
        Self::with_sink(store, limits, options, sink::EventSink::Embedded)
    }

    /// The state for a server that sends accepted events to `sink`.
    pub fn with_sink(
        store: Arc<dyn Store>,
        limits: Limits,
        options: engine::EngineOptions,
        sink: sink::EventSink,
    ) -> Result<Self, rapport_interpret::InterpretError> {
        Ok(Self {
            engine: Arc::new(engine::Engine::new(store.clone(), options)?.with_sink(sink)),
            store,
            keys: Arc::default(),
            logins: Arc::default(),
            limits,
            demo_accounts: Vec::new(),
        })
    }
}

/// The whole application: API, dashboard, OpenAPI document, health check.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(api::routes())
        .merge(dashboard::routes())
        .merge(why::routes())
        .route("/openapi.json", axum::routing::get(openapi::serve))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let oversight = policy_watch::spawn(state.engine.clone());
    let fairness = fairness_watch::spawn(state.engine.clone());
    let routing = routing::spawn(state.engine.clone());
    let churn = churn::spawn(state.engine.clone(), true);
    let served = axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    oversight.abort();
    routing.abort();
    churn.abort();
    if let Some(f) = fairness {
        f.abort();
    }
    served
}
