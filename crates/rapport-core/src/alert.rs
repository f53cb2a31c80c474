//! Alerts: something a person should look at now (a fairness limit crossed; later, an
//! escalation predicted or a high-value customer waiting past SLA), with the evidence that
//! raised it.
//!
//! An alert names customers, if at all, by internal id; its evidence holds numbers and codes,
//! so an alert about groups of customers survives any one customer's erasure.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How loudly an alert asks for attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    /// What raised it, e.g. `fairness.threshold`.
    pub kind: String,
    pub severity: Severity,
    /// One line for a notification.
    pub title: String,
    /// What raised it, as data (the metric, its value, the limit, the groups...).
    pub evidence: Value,
    /// What it is about (an audit's name, a profile id), if anything.
    pub subject: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Set once a person has seen to it, with who (encoded like audit actors).
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
}

impl Alert {
    pub fn new(
        kind: &str,
        severity: Severity,
        title: impl Into<String>,
        subject: Option<String>,
        evidence: Value,
    ) -> Self {
        Alert {
            id: format!("alr_{}", uuid::Uuid::now_v7().simple()),
            kind: kind.to_owned(),
            severity,
            title: title.into(),
            evidence,
            subject,
            created_at: Utc::now(),
            acknowledged_at: None,
            acknowledged_by: None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.acknowledged_at.is_none()
    }
}
