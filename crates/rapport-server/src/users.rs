//! People's dashboard accounts: Argon2id password hashes, sign-in checks and a throttle on
//! repeated failures.
//!
//! Passwords are hashed with Argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes), a
//! random salt each, and stored only in PHC form. Hashing and checking take tens of
//! milliseconds by design, so they run on the blocking pool. A sign-in for a login that does
//! not exist still checks a password against a fixed hash, so the answer's timing does not
//! tell which logins exist.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use rapport_core::error::ErrorKind;
use rapport_core::{KeyRole, Login, WorkspaceId};
use rapport_store::{Store, UserRecord};

use crate::error::ApiError;

/// The shortest password accepted for a new account.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Failed sign-ins of one login within [`THROTTLE_WINDOW`] before it is refused for the rest
/// of the window.
pub const MAX_FAILURES: usize = 5;
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A password ready to be stored: checked for length, then hashed.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::new(
            ErrorKind::InvalidInput,
            "weak_password",
            format!("a password needs at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| ApiError::internal(format!("password salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(format!("password hashing: {e}")))
}

/// Whether `password` matches a stored PHC hash. An unreadable hash never matches.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash no password is known for, checked when a login does not exist.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let mut bytes = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut bytes);
        hash_password(&hex::encode(bytes)).unwrap_or_default()
    })
}

/// A random password of 20 characters, for accounts made without one (shown once).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Makes an account. People hold every role but `write`, which is for data sources.
pub async fn create_user(
    store: &dyn Store,
    workspace: &WorkspaceId,
    login: &Login,
    role: KeyRole,
    password: &str,
) -> Result<UserRecord, ApiError> {
    if !role.is_for_people() {
        return Err(ApiError::new(
            ErrorKind::InvalidInput,
            "invalid_role",
            "the write role is for data sources; a person is an admin, supervisor, agent or analyst",
        ));
    }
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::internal(format!("password hashing task: {e}")))??;
    Ok(store.create_user(workspace, login, role, &hash).await?)
}

/// Sets a new password on an account of `workspace` (checked and hashed first), ending its
/// sessions; audited as `action` without the password.
pub async fn change_password(
    store: &dyn Store,
    workspace: &WorkspaceId,
    user_id: &str,
    password: &str,
    actor: rapport_core::Actor,
    action: &str,
) -> Result<UserRecord, ApiError> {
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::internal(format!("password hashing task: {e}")))??;
    let entry = rapport_core::AuditEntry::new(
        Some(workspace.clone()),
        actor,
        action,
        None,
        serde_json::json!({"user": user_id}),
    );
    let change = rapport_store::UserChange {
        password_hash: Some(hash),
        ..rapport_store::UserChange::default()
    };
    Ok(store
        .update_user(workspace, user_id, change, vec![entry])
        .await?)
}

/// Why a sign-in failed.
#[derive(Debug, Clone, PartialEq)]
pub enum SignInError {
    /// Unknown login or wrong password (the two are not told apart).
    Invalid {
        /// The account, when the login exists, for the audit trail.
        user: Option<UserRecord>,
    },
    /// Too many failures for this login lately.
    Throttled,
    /// The right password for an account an administrator disabled.
    Disabled { user: UserRecord },
}

/// Failed sign-ins per login, in memory.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginThrottle {
    fn recent(&self, login: &str) -> usize {
        let now = Instant::now();
        self.failures
            .lock()
            .map(|mut m| {
                let list = m.entry(login.to_owned()).or_default();
                list.retain(|t| now.duration_since(*t) < THROTTLE_WINDOW);
                list.len()
            })
            .unwrap_or(0)
    }

    fn fail(&self, login: &str) {
        if let Ok(mut m) = self.failures.lock() {
            if m.len() > 100_000 {
                // A flood of made-up logins must not grow this without bound.
                let now = Instant::now();
                m.retain(|_, v| v.iter().any(|t| now.duration_since(*t) < THROTTLE_WINDOW));
            }
            m.entry(login.to_owned()).or_default().push(Instant::now());
        }
    }

    fn succeed(&self, login: &str) {
        if let Ok(mut m) = self.failures.lock() {
            m.remove(login);
        }
    }

    /// Checks a login and password.
    pub async fn sign_in(
        &self,
        store: &dyn Store,
        login: &str,
        password: &str,
    ) -> Result<UserRecord, SignInError> {
        let Ok(login) = Login::parse(login) else {
            return Err(SignInError::Invalid { user: None });
        };
        if self.recent(login.as_str()) >= MAX_FAILURES {
            return Err(SignInError::Throttled);
        }
        let user = store.find_user(&login).await.ok().flatten();
        let hash = user
            .as_ref()
            .map_or_else(|| decoy_hash().to_owned(), |u| u.password_hash.clone());
        let password = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
            .await
            .unwrap_or(false);
        match user {
            Some(u) if matched && u.disabled_at.is_some() => Err(SignInError::Disabled { user: u }),
            Some(u) if matched => {
                self.succeed(login.as_str());
                Ok(u)
            }
            user => {
                self.fail(login.as_str());
                Err(SignInError::Invalid { user })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password_and_are_salted() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify_password(&a, "correct horse battery"));
        assert!(!verify_password(&a, "correct horse batterY"));
        assert!(!verify_password("not a hash", "correct horse battery"));
    }

    #[test]
    fn short_passwords_are_refused() {
        let e = hash_password("short").unwrap_err();
        assert_eq!(e.code, "weak_password");
    }

    #[test]
    fn generated_passwords_are_long_enough() {
        let p = generate_password();
        assert_eq!(p.chars().count(), 20);
        assert!(hash_password(&p).is_ok());
    }
}
