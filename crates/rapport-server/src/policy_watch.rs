//! Keeping oversight current while running: the policy file is read again when it changes
//! (or on `POST /v1/policy/reload`), and held decisions past their deadline are marked
//! expired. A policy file with errors is refused whole, each error logged and audited with its
//! line, and the policy in force stays.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rapport_core::{Actor, AuditEntry};
use rapport_govern::policy::PolicyError;
use rapport_store::StoreError;
use serde_json::json;

use crate::engine::Engine;

#[derive(Debug)]
pub enum ReloadError {
    NoFile,
    Unreadable(String),
    Invalid(Vec<PolicyError>),
    Store(StoreError),
}

/// Reads the configured policy file and puts it in force, or reports why not. Either way the
/// attempt is audited (rule count, or error count and lines: no file content), in the
/// workspace of whoever asked (none for the file watcher: the policy serves every workspace).
pub async fn reload(
    engine: &Engine,
    workspace: Option<rapport_core::WorkspaceId>,
    actor: Actor,
) -> Result<usize, ReloadError> {
    let Some(path) = engine.options.policy_file.clone() else {
        return Err(ReloadError::NoFile);
    };
    let text = tokio::fs::read_to_string(&path)
        .await
        .map_err(|e| ReloadError::Unreadable(format!("{}: {e}", path.display())))?;
    let outcome = engine.reload_policy(&text);
    let entry = match &outcome {
        Ok(rules) => AuditEntry::new(
            workspace.clone(),
            actor,
            "policy.reloaded",
            None,
            json!({"rules": rules}),
        ),
        Err(errors) => AuditEntry::new(
            workspace,
            actor,
            "policy.reload_failed",
            None,
            json!({"errors": errors.len(), "lines": errors.iter().map(|e| e.line).collect::<Vec<_>>()}),
        ),
    };
    engine
        .store
        .append_audit(vec![entry])
        .await
        .map_err(ReloadError::Store)?;
    match outcome {
        Ok(n) => {
            tracing::info!(rules = n, file = %path.display(), "oversight policy loaded");
            Ok(n)
        }
        Err(errors) => {
            for e in &errors {
                tracing::error!(file = %path.display(), "policy file: {e}");
            }
            tracing::error!("the policy file has errors; the policy in force is unchanged");
            Err(ReloadError::Invalid(errors))
        }
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Runs for the life of the server: every few seconds, reloads the policy file if it
/// changed, and once a minute expires held decisions past their deadline in every workspace.
pub fn spawn(engine: Arc<Engine>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = engine.options.policy_file.as_deref().and_then(modified);
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            n += 1;
            if let Some(path) = engine.options.policy_file.as_deref() {
                let now = modified(path);
                if now.is_some() && now != seen {
                    seen = now;
                    // Errors are logged and audited inside; the old policy stays.
                    let _ = reload(&engine, None, Actor::System).await;
                }
            }
            if n % 12 == 1 {
                match engine.store.list_workspaces().await {
                    Ok(list) => {
                        for w in list {
                            if let Err(e) = engine.expire_due(&w.id).await {
                                tracing::warn!(error = %e, "expiring held decisions failed");
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "listing workspaces failed"),
                }
            }
        }
    })
}
