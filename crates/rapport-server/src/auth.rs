//! API keys, people's dashboard sessions, and the permission check every handler goes
//! through.
//!
//! A key is shown once when created and stored only as its SHA-256 hash. Requests present it
//! as Segment does (the key as the Basic-auth user name, empty password) or as a bearer token.
//! Validated keys are cached in memory by hash, so ingest does not read the database per
//! request; keys are never deleted yet, so the cache cannot go stale.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use rand::RngCore;
use rapport_core::error::ErrorKind;
use rapport_core::{KeyRole, WorkspaceId, WorkspaceName};
use rapport_store::{ApiKeyRecord, SessionDraft, Store, StoreError, UserRecord};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::AppState;

/// A new secret key: `rk_` plus 40 hex characters (160 random bits).
pub struct NewKey {
    pub key: String,
    pub hash: String,
    pub prefix: String,
}

pub fn generate_key() -> NewKey {
    let mut bytes = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut bytes);
    let key = format!("rk_{}", hex::encode(bytes));
    NewKey {
        hash: hash_key(&key),
        prefix: key[..10].to_owned(),
        key,
    }
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Creates and stores a key for a workspace, returning the secret (shown once).
pub async fn create_key(
    store: &dyn Store,
    workspace: &WorkspaceId,
    role: KeyRole,
) -> Result<(String, ApiKeyRecord), rapport_store::StoreError> {
    let new = generate_key();
    let rec = store
        .create_api_key(workspace, role, &new.hash, &new.prefix)
        .await?;
    Ok((new.key, rec))
}

/// Positive lookups of keys by hash.
#[derive(Default)]
pub struct KeyCache {
    by_hash: RwLock<HashMap<String, ApiKeyRecord>>,
}

impl KeyCache {
    pub async fn lookup(
        &self,
        store: &dyn Store,
        key: &str,
    ) -> Result<Option<ApiKeyRecord>, ApiError> {
        let hash = hash_key(key);
        if let Some(rec) = self.by_hash.read().ok().and_then(|m| m.get(&hash).cloned()) {
            return Ok(Some(rec));
        }
        let found = store.find_api_key(&hash).await?;
        if let (Some(rec), Ok(mut m)) = (&found, self.by_hash.write()) {
            m.insert(hash, rec.clone());
        }
        Ok(found)
    }
}

/// Who is calling: a program with an API key, or a person signed in to the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The key's id (never the key).
    Key(String),
    /// The account's id and login.
    User { id: String, login: String },
}

/// The caller, once its key or session is checked.
#[derive(Debug, Clone)]
pub struct Caller {
    pub workspace_id: WorkspaceId,
    pub workspace_name: WorkspaceName,
    pub role: KeyRole,
    pub principal: Principal,
}

impl Caller {
    /// Who the audit log says acted.
    pub fn actor(&self) -> rapport_core::Actor {
        match &self.principal {
            Principal::Key(id) => rapport_core::Actor::ApiKey(id.clone()),
            Principal::User { id, .. } => rapport_core::Actor::User(id.clone()),
        }
    }

    /// The person's account id, for a caller signed in as a person.
    pub fn user_id(&self) -> Option<&str> {
        match &self.principal {
            Principal::Key(_) => None,
            Principal::User { id, .. } => Some(id),
        }
    }

    pub fn for_key(rec: ApiKeyRecord) -> Self {
        Caller {
            workspace_id: rec.workspace_id,
            workspace_name: rec.workspace_name,
            role: rec.role,
            principal: Principal::Key(rec.id),
        }
    }

    pub fn for_user(rec: rapport_store::UserRecord) -> Self {
        Caller {
            workspace_id: rec.workspace_id,
            workspace_name: rec.workspace_name,
            role: rec.role,
            principal: Principal::User {
                id: rec.id,
                login: rec.login.as_str().to_owned(),
            },
        }
    }

    /// How the dashboard names the caller.
    pub fn display_name(&self) -> String {
        match &self.principal {
            Principal::Key(id) => format!("key {id}"),
            Principal::User { login, .. } => login.clone(),
        }
    }
}

fn presented_key(parts: &Parts) -> Option<String> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
        return Some(user.to_owned());
    }
    None
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let key = presented_key(parts).ok_or_else(|| {
        ApiError::new(
            ErrorKind::Unauthenticated,
            "missing_credentials",
            "send your key as the Basic-auth user name or as a Bearer token",
        )
    })?;
    let rec = state
        .keys
        .lookup(state.store.as_ref(), &key)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::Unauthenticated,
                "invalid_credentials",
                "the key is not valid",
            )
        })?;
    Ok(Caller::for_key(rec))
}

/// Marker types naming one [`Permission`] each, so a handler's signature states what it
/// needs: `Can(caller, _): Can<perm::EraseData>`.
pub mod perm {
    use rapport_core::Permission;

    /// A permission a handler can require through [`super::Can`].
    pub trait Needed: Send + Sync + 'static {
        const PERMISSION: Permission;
    }

    macro_rules! marker {
        ($($name:ident),*) => {$(
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl Needed for $name {
                const PERMISSION: Permission = Permission::$name;
            }
        )*};
    }
    marker!(
        Ingest,
        ReadCustomers,
        ManageConsent,
        ExportData,
        EraseData,
        ReadAudit,
        AuditFairness,
        ManageDeadLetters,
        RequestActions,
        ApproveActions,
        ManagePolicy,
        ManageUsers,
        AcknowledgeAlerts,
        ManageIdentity,
        ManageRouting,
        ManageModels,
        CorrectIntents,
        ManageIntents
    );
}

/// A caller whose key's role includes permission `P`; anyone else gets 403 `forbidden`
/// (recorded in the audit trail) or 401 without a valid key.
pub struct Can<P: perm::Needed>(pub Caller, pub std::marker::PhantomData<P>);

impl<P: perm::Needed> FromRequestParts<AppState> for Can<P> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = authenticate(parts, state).await?;
        check::<P>(state, caller, parts.uri.path())
            .await
            .map(|c| Can(c, std::marker::PhantomData))
    }
}

/// Lets `caller` through if its role includes `P`; otherwise audits the refusal and answers
/// 403.
pub async fn check<P: perm::Needed>(
    state: &AppState,
    caller: Caller,
    path: &str,
) -> Result<Caller, ApiError> {
    let needed = P::PERMISSION;
    if caller.role.allows(needed) {
        return Ok(caller);
    }
    let entry = rapport_core::AuditEntry::new(
        Some(caller.workspace_id.clone()),
        caller.actor(),
        "access.refused",
        None,
        serde_json::json!({"permission": needed.as_str(), "role": caller.role.as_str(), "path": path}),
    );
    if let Err(e) = state.store.append_audit(vec![entry]).await {
        tracing::warn!(error = %e, "could not audit a refused request");
    }
    Err(ApiError::new(
        ErrorKind::Forbidden,
        "forbidden",
        format!(
            "the {} role may not do this: it needs the {} permission",
            caller.role.as_str(),
            needed.as_str()
        ),
    ))
}

/// Dashboard sessions, kept in the store (see [`Store::start_session`]): they outlive a
/// restart, every API node behind a load balancer knows them, and a change to the account
/// (password, role, disabled) ends them. The cookie carries a random token; the store keeps
/// only its SHA-256 hash.
pub struct Sessions;

/// How long a dashboard session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
pub const SESSION_COOKIE: &str = "rapport_session";

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Sessions {
    /// Signs `user` in; the token for the cookie.
    pub async fn start(store: &dyn Store, user: &UserRecord) -> Result<String, StoreError> {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let ttl = chrono::Duration::from_std(SESSION_TTL).unwrap_or(chrono::Duration::hours(12));
        store
            .start_session(SessionDraft {
                token_hash: token_hash(&token),
                user_id: user.id.clone(),
                expires_at: chrono::Utc::now() + ttl,
            })
            .await?;
        Ok(token)
    }

    /// The signed-in person, with the role their account has now. A store that cannot be
    /// read counts as signed out (logged), so the dashboard sends them to the login page.
    pub async fn get(store: &dyn Store, token: &str) -> Option<Caller> {
        match store.session_user(&token_hash(token)).await {
            Ok(user) => user.map(Caller::for_user),
            Err(e) => {
                tracing::warn!(error = %e, "could not read a dashboard session");
                None
            }
        }
    }

    pub async fn end(store: &dyn Store, token: &str) {
        if let Err(e) = store.end_session(&token_hash(token)).await {
            tracing::warn!(error = %e, "could not end a dashboard session");
        }
    }
}

/// The session token in a request's cookies, if any.
pub fn session_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
}
