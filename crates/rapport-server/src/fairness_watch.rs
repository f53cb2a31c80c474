//! Scheduled fairness audits of stored decisions, and the alerts they raise.
//!
//! Each configured audit ([`ScheduledAudit`]) reads the workspace's decisions of its kinds
//! from its window, groups them by the customers' traits, and runs the same audit as
//! `rapport audit fairness` (Fairlearn's numbers). A crossed limit raises an alert
//! (`GET /v1/alerts`, the dashboard's Alerts page) with the violations as evidence; every run
//! is audited as `fairness.audited`. Runs happen when due (per audit and workspace) and on
//! request (`POST /v1/audits/fairness/scheduled/{name}/run`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use rapport_core::{Actor, Alert, AuditEntry, ProfileId, Severity, WorkspaceId};
use rapport_govern::fairness::scheduled::ScheduledAudit;
use rapport_govern::fairness::{AuditOptions, Columns, Dataset, Report, Violation};
use rapport_store::{DecisionQuery, StoreError};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::engine::Engine;

/// Most decisions one run reads.
pub const MAX_DECISIONS: usize = 200_000;

/// What one run found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRun {
    pub audit: String,
    pub ran_at: chrono::DateTime<Utc>,
    /// Decided decisions audited.
    pub rows: usize,
    /// `reported`, or `too_few_rows` when fewer than the audit's `min_rows` were decided.
    pub outcome: &'static str,
    pub report: Option<Report>,
    pub violations: Vec<Violation>,
    /// The alert raised, when a limit was crossed.
    pub alert: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no scheduled fairness audit is named {0:?}")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the audit could not be computed: {0}")]
    Audit(String),
}

/// When each audit last ran, per workspace (in memory: after a restart every audit runs once
/// soon, which is cheap and errs on the side of looking).
#[derive(Default)]
pub struct Schedule {
    last: Mutex<HashMap<(String, String), Instant>>,
}

impl Schedule {
    fn due(&self, ws: &WorkspaceId, audit: &ScheduledAudit) -> bool {
        self.last
            .lock()
            .map(|m| {
                m.get(&(ws.to_string(), audit.name.clone()))
                    .is_none_or(|t| t.elapsed() >= audit.every)
            })
            .unwrap_or(false)
    }

    fn ran(&self, ws: &WorkspaceId, audit: &ScheduledAudit) {
        if let Ok(mut m) = self.last.lock() {
            m.insert((ws.to_string(), audit.name.clone()), Instant::now());
        }
    }
}

fn describe(v: &Violation) -> String {
    format!(
        "{} {:.3} {} {:.3} by {}",
        v.metric.as_str().replace('_', " "),
        v.value,
        if v.metric.as_str().ends_with("ratio") {
            "<"
        } else {
            ">"
        },
        v.limit,
        v.grouping.join(" × ")
    )
}

impl Engine {
    /// The scheduled audits configured.
    pub fn fairness_audits(&self) -> &[ScheduledAudit] {
        &self.options.fairness_audits
    }

    /// Runs the audit named `name` on `ws` now.
    pub async fn run_fairness_audit(
        &self,
        ws: &WorkspaceId,
        name: &str,
        actor: Actor,
    ) -> Result<AuditRun, RunError> {
        let audit = self
            .options
            .fairness_audits
            .iter()
            .find(|a| a.name == name)
            .cloned()
            .ok_or_else(|| RunError::Unknown(name.to_owned()))?;
        let run = self.audit_decisions(ws, &audit, actor).await?;
        self.fairness_schedule.ran(ws, &audit);
        Ok(run)
    }

    async fn audit_decisions(
        &self,
        ws: &WorkspaceId,
        audit: &ScheduledAudit,
        actor: Actor,
    ) -> Result<AuditRun, RunError> {
        let since = Utc::now()
            - chrono::Duration::from_std(audit.window).unwrap_or(chrono::Duration::days(30));
        let decisions = self
            .store
            .decisions(DecisionQuery {
                workspace: ws.clone(),
                profile: None,
                status: None,
                limit: MAX_DECISIONS,
            })
            .await?;
        let mut traits: HashMap<ProfileId, Map<String, Value>> = HashMap::new();
        let mut rows = Vec::new();
        for d in decisions.iter().filter(|d| d.created_at >= since) {
            if !audit.covers(&d.kind) {
                continue;
            }
            if !traits.contains_key(&d.profile_id) {
                let t = self
                    .store
                    .profile(ws, &d.profile_id)
                    .await?
                    .map(|p| p.traits)
                    .unwrap_or_default();
                traits.insert(d.profile_id.clone(), t);
            }
            if let Some(row) = audit.row(d, &traits[&d.profile_id]) {
                rows.push(row);
            }
        }
        let ran_at = Utc::now();
        let n = rows.len();
        let mut run = AuditRun {
            audit: audit.name.clone(),
            ran_at,
            rows: n,
            outcome: "too_few_rows",
            report: None,
            violations: Vec::new(),
            alert: None,
        };
        if n >= audit.min_rows {
            let columns = Columns::new(audit.groups.clone(), "carried_out");
            let thresholds = audit.thresholds.clone();
            let (report, violations) = tokio::task::spawn_blocking(move || {
                let data = Dataset::from_rows(columns, &rows)?;
                let report = data.audit(&AuditOptions::default())?;
                let violations = thresholds.check(&report);
                Ok::<_, rapport_govern::fairness::FairnessError>((report, violations))
            })
            .await
            .map_err(|e| RunError::Audit(e.to_string()))?
            .map_err(|e| RunError::Audit(e.to_string()))?;
            run.outcome = "reported";
            run.report = Some(report);
            run.violations = violations;
        }
        let mut entries = vec![AuditEntry::new(
            Some(ws.clone()),
            actor,
            "fairness.audited",
            Some(audit.name.clone()),
            json!({"scheduled": true, "rows": n, "outcome": run.outcome,
                   "violations": run.violations.len()}),
        )];
        if run.violations.is_empty() {
            self.store.append_audit(entries).await?;
            return Ok(run);
        }
        let first = describe(&run.violations[0]);
        let more = run.violations.len() - 1;
        let title = if more == 0 {
            format!("Fairness audit {}: {first}", audit.name)
        } else {
            format!("Fairness audit {}: {first} (and {more} more)", audit.name)
        };
        let alert = Alert::new(
            "fairness.threshold",
            Severity::Warning,
            title,
            Some(audit.name.clone()),
            json!({
                "audit": audit.name,
                "rows": n,
                "window": humantime::format_duration(audit.window).to_string(),
                "decision_kinds": audit.decision_kinds,
                "violations": run.violations,
            }),
        );
        entries.push(AuditEntry::new(
            Some(ws.clone()),
            Actor::System,
            "alert.raised",
            Some(alert.id.clone()),
            json!({"kind": alert.kind, "audit": audit.name, "violations": run.violations.len()}),
        ));
        run.alert = Some(alert.id.clone());
        self.store.add_alert(ws, alert.clone(), entries).await?;
        self.notify_webhook(ws, alert);
        Ok(run)
    }
}

/// Runs for the life of the server: once a minute, every audit that is due in every
/// workspace.
pub fn spawn(engine: Arc<Engine>) -> Option<tokio::task::JoinHandle<()>> {
    if engine.options.fairness_audits.is_empty() {
        return None;
    }
    Some(tokio::spawn(async move {
        // Give start-up (and the demo's loading) a moment before the first runs.
        tokio::time::sleep(Duration::from_secs(20)).await;
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let workspaces = match engine.store.list_workspaces().await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, "listing workspaces failed");
                    continue;
                }
            };
            for w in workspaces {
                for audit in engine.options.fairness_audits.clone() {
                    if !engine.fairness_schedule.due(&w.id, &audit) {
                        continue;
                    }
                    match engine.audit_decisions(&w.id, &audit, Actor::System).await {
                        Ok(run) => {
                            engine.fairness_schedule.ran(&w.id, &audit);
                            if let Some(id) = run.alert {
                                tracing::warn!(audit = %audit.name, alert = %id, "fairness limit crossed");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(audit = %audit.name, error = %e, "scheduled fairness audit failed")
                        }
                    }
                }
            }
        }
    }))
}
