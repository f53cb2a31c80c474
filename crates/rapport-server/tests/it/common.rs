//! `TestApp::spawn()`: the real server on a free loopback port over a temporary SQLite store,
//! with an admin key, a write key and an admin's dashboard account for the default workspace.

use std::sync::Arc;

use rapport_core::{KeyRole, WorkspaceId, WorkspaceName};
use rapport_server::AppState;
use rapport_store::sqlite::SqliteStore;
use rapport_store::Store;
use serde_json::Value;

/// The password of every account [`TestApp`] makes.
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    pub admin_key: String,
    /// Login of an admin's dashboard account (password [`PASSWORD`]).
    pub admin_login: String,
    pub write_key: String,
    pub store: Arc<SqliteStore>,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Default::default()).await
    }

    pub async fn spawn_with(options: rapport_server::engine::EngineOptions) -> Self {
        Self::spawn_with_sink(options, rapport_server::sink::EventSink::Embedded).await
    }

    /// A server sending accepted events to `sink` (an API node in scale-out mode).
    pub async fn spawn_with_sink(
        options: rapport_server::engine::EngineOptions,
        sink: rapport_server::sink::EventSink,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteStore::open(dir.path()).expect("store"));
        let dyn_store: Arc<dyn Store> = store.clone();
        let ws = default_workspace(&store).await;
        let (admin_key, _) =
            rapport_server::auth::create_key(dyn_store.as_ref(), &ws, KeyRole::Admin)
                .await
                .expect("admin key");
        let (write_key, _) =
            rapport_server::auth::create_key(dyn_store.as_ref(), &ws, KeyRole::Write)
                .await
                .expect("write key");
        let admin_login = "ada.admin".to_owned();
        rapport_server::users::create_user(
            dyn_store.as_ref(),
            &ws,
            &rapport_core::Login::parse(&admin_login).expect("login"),
            KeyRole::Admin,
            PASSWORD,
        )
        .await
        .expect("admin account");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state =
            AppState::with_sink(dyn_store, rapport_ingest::Limits::default(), options, sink)
                .expect("state");
        tokio::spawn(async move {
            rapport_server::serve(listener, state, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        Self {
            base,
            admin_key,
            admin_login,
            write_key,
            store,
            client: reqwest::Client::new(),
            _dir: dir,
            _shutdown: tx,
        }
    }

    /// Makes a dashboard account of `role` (password [`PASSWORD`]) in the default workspace.
    pub async fn account(&self, login: &str, role: KeyRole) -> String {
        let ws = default_workspace(&self.store).await;
        rapport_server::users::create_user(
            self.store.as_ref(),
            &ws,
            &rapport_core::Login::parse(login).expect("login"),
            role,
            PASSWORD,
        )
        .await
        .expect("account");
        login.to_owned()
    }

    /// Signs `login` in to the dashboard; the answer to the sign-in (303 with a cookie when
    /// it worked).
    pub async fn sign_in_as(&self, login: &str, password: &str) -> reqwest::Response {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .post(self.url("/login"))
            .form(&[("login", login), ("password", password)])
            .send()
            .await
            .expect("login")
    }

    /// The session cookie (`name=value`) of the admin's account.
    pub async fn admin_session(&self) -> String {
        let resp = self.sign_in_as(&self.admin_login, PASSWORD).await;
        assert_eq!(resp.status(), 303, "admin signed in");
        resp.headers()["set-cookie"]
            .to_str()
            .expect("cookie")
            .split(';')
            .next()
            .expect("pair")
            .to_owned()
    }

    /// The directory holding the store's files.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST JSON with the write key as Segment's libraries send it (Basic auth).
    pub async fn send(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url(path))
            .basic_auth(&self.write_key, Some(""))
            .json(body)
            .send()
            .await
            .expect("request");
        status_json(resp).await
    }

    /// GET with the admin key as a bearer token.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(self.url(path))
            .bearer_auth(&self.admin_key)
            .send()
            .await
            .expect("request");
        status_json(resp).await
    }

    /// A second workspace with its own admin key.
    pub async fn other_workspace(&self, name: &str) -> (WorkspaceId, String) {
        let ws = self
            .store
            .create_workspace(&WorkspaceName::parse(name).expect("name"))
            .await
            .expect("ws");
        let (key, _) =
            rapport_server::auth::create_key(self.store.as_ref(), &ws.id, KeyRole::Admin)
                .await
                .expect("key");
        (ws.id, key)
    }
}

/// Calls the API with `key` as a bearer token: the status and the JSON answer.
pub async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    status_json(req.send().await.expect("request")).await
}

/// A new key of `role` for the default workspace.
pub async fn key(app: &TestApp, role: KeyRole) -> String {
    let ws = default_workspace(&app.store).await;
    rapport_server::auth::create_key(app.store.as_ref(), &ws, role)
        .await
        .expect("key")
        .0
}

pub async fn default_workspace(store: &SqliteStore) -> WorkspaceId {
    store
        .workspace_by_name(&WorkspaceName::default_workspace())
        .await
        .expect("read")
        .expect("default workspace")
        .id
}

pub async fn status_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json)
}

/// Whether tests that need outside tools must run (CI) rather than be skipped.
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Says plainly that a test is skipped, or fails under CI where nothing may be skipped.
pub fn skip(test: &str, why: &str) {
    assert!(
        !required(),
        "{test}: cannot be skipped under CI=true: {why}"
    );
    eprintln!("SKIPPED {test}: {why}");
}
