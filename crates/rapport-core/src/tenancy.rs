//! Workspaces (tenants) and API key roles.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A workspace's unique, human-chosen name: 1 to 63 characters of `a-z`, `0-9`, `-` and `_`,
/// starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct WorkspaceName(String);

impl WorkspaceName {
    /// The workspace that exists from the start.
    pub const DEFAULT: &'static str = "default";

    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 63
            && raw.as_bytes()[0].is_ascii_alphanumeric()
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "workspace name {raw:?} must be 1-63 characters of a-z, 0-9, '-' or '_', starting with a letter or digit"
            ))
        }
    }

    pub fn default_workspace() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkspaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A role: what a key or a person may do in a workspace. Each role is a set of
/// [`Permission`]s; handlers name the permission they need, never a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    /// A source of data (a website, an app, a backend): can only send events and messages in.
    Write,
    /// Works conversations: reads customers, sends messages, records a customer's consent.
    Agent,
    /// Reads customers and the audit trail for analysis; changes nothing.
    Analyst,
    /// Leads agents: everything an agent does, plus exports and the audit trail.
    Supervisor,
    /// Everything, including erasure and managing keys.
    Admin,
}

/// One thing a caller may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Send events, open conversations, add messages.
    Ingest,
    /// Read profiles, timelines, conversations and statistics.
    ReadCustomers,
    /// Record consent decisions on a customer's behalf and issue links to their own page.
    ManageConsent,
    /// Export everything held about a customer.
    ExportData,
    /// Erase a customer.
    EraseData,
    /// Read the audit trail.
    ReadAudit,
    /// Run fairness audits over decisions and predictions.
    AuditFairness,
    /// See the events workers could not apply (with their content) and replay or discard them.
    ManageDeadLetters,
    /// Ask for an action for a customer (a message, an offer, a refund); high-stakes ones wait
    /// for approval.
    RequestActions,
    /// Approve or reject high-stakes actions in the approval queue.
    ApproveActions,
    /// Reload the oversight policy.
    ManagePolicy,
    /// Create people's dashboard accounts and list them.
    ManageUsers,
    /// Mark alerts as seen to.
    AcknowledgeAlerts,
    /// Undo merges of profiles (unmerge) and keep two profiles from merging again.
    ManageIdentity,
    /// Set up routing: create queues and agents, change any agent's skills, capacity,
    /// presence and seniority, and accept or finish conversations for any agent.
    ManageRouting,
    /// Train prediction models on the workspace's data and choose the active version.
    ManageModels,
    /// Correct the intent read in a customer's message (the examples intent models are
    /// retrained from).
    CorrectIntents,
    /// Retrain the workspace's intent model and choose which version is in use.
    ManageIntents,
}

impl Permission {
    pub const ALL: [Permission; 18] = [
        Permission::Ingest,
        Permission::ReadCustomers,
        Permission::ManageConsent,
        Permission::ExportData,
        Permission::EraseData,
        Permission::ReadAudit,
        Permission::AuditFairness,
        Permission::ManageDeadLetters,
        Permission::RequestActions,
        Permission::ApproveActions,
        Permission::ManagePolicy,
        Permission::ManageUsers,
        Permission::AcknowledgeAlerts,
        Permission::ManageIdentity,
        Permission::ManageRouting,
        Permission::ManageModels,
        Permission::CorrectIntents,
        Permission::ManageIntents,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Ingest => "ingest",
            Permission::ReadCustomers => "read_customers",
            Permission::ManageConsent => "manage_consent",
            Permission::ExportData => "export_data",
            Permission::EraseData => "erase_data",
            Permission::ReadAudit => "read_audit",
            Permission::AuditFairness => "audit_fairness",
            Permission::ManageDeadLetters => "manage_dead_letters",
            Permission::RequestActions => "request_actions",
            Permission::ApproveActions => "approve_actions",
            Permission::ManagePolicy => "manage_policy",
            Permission::ManageUsers => "manage_users",
            Permission::AcknowledgeAlerts => "acknowledge_alerts",
            Permission::ManageIdentity => "manage_identity",
            Permission::ManageRouting => "manage_routing",
            Permission::ManageModels => "manage_models",
            Permission::CorrectIntents => "correct_intents",
            Permission::ManageIntents => "manage_intents",
        }
    }
}

impl KeyRole {
    pub const ALL: [KeyRole; 5] = [
        KeyRole::Write,
        KeyRole::Agent,
        KeyRole::Analyst,
        KeyRole::Supervisor,
        KeyRole::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Write => "write",
            KeyRole::Agent => "agent",
            KeyRole::Analyst => "analyst",
            KeyRole::Supervisor => "supervisor",
            KeyRole::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }

    /// Whether this role includes `p`. The one table of who may do what.
    pub fn allows(self, p: Permission) -> bool {
        use KeyRole::*;
        use Permission::*;
        match p {
            Ingest => matches!(self, Write | Agent | Supervisor | Admin),
            ReadCustomers => matches!(self, Agent | Analyst | Supervisor | Admin),
            ManageConsent => matches!(self, Agent | Supervisor | Admin),
            ExportData => matches!(self, Supervisor | Admin),
            EraseData => matches!(self, Admin),
            ReadAudit => matches!(self, Analyst | Supervisor | Admin),
            AuditFairness => matches!(self, Analyst | Supervisor | Admin),
            ManageDeadLetters => matches!(self, Supervisor | Admin),
            RequestActions => matches!(self, Agent | Supervisor | Admin),
            ApproveActions => matches!(self, Supervisor | Admin),
            ManagePolicy => matches!(self, Admin),
            ManageUsers => matches!(self, Admin),
            AcknowledgeAlerts => matches!(self, Agent | Supervisor | Admin),
            ManageIdentity => matches!(self, Supervisor | Admin),
            ManageRouting => matches!(self, Supervisor | Admin),
            ManageModels => matches!(self, Analyst | Admin),
            CorrectIntents => matches!(self, Agent | Supervisor | Admin),
            ManageIntents => matches!(self, Admin),
        }
    }

    /// Whether a key of this role may ingest events.
    pub fn can_write(self) -> bool {
        self.allows(Permission::Ingest)
    }

    /// Whether a key of this role may read customers (and so use the dashboard).
    pub fn can_read(self) -> bool {
        self.allows(Permission::ReadCustomers)
    }

    /// Whether a person can hold this role. `write` is for data sources, never for people.
    pub fn is_for_people(self) -> bool {
        self != KeyRole::Write
    }
}

/// A person's sign-in name: 2 to 64 characters of `a-z`, `0-9`, `.`, `_`, `-` and `@`,
/// folded to lower case, so `Ana.Silva@Acme.com` and `ana.silva@acme.com` are one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Login(String);

impl Login {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let folded = raw.trim().to_lowercase();
        let ok = (2..=64).contains(&folded.len())
            && folded.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'.' | b'_' | b'-' | b'@')
            });
        if ok {
            Ok(Self(folded))
        } else {
            Err(format!(
                "login {raw:?} must be 2-64 characters of a-z, 0-9, '.', '_', '-' or '@'"
            ))
        }
    }

    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_only_admins_erase() {
        for r in KeyRole::ALL {
            assert_eq!(KeyRole::parse(r.as_str()), Some(r));
            assert_eq!(r.allows(Permission::EraseData), r == KeyRole::Admin);
        }
        assert!(Permission::ALL.iter().all(|p| KeyRole::Admin.allows(*p)));
        assert!(!KeyRole::Write.can_read());
        assert!(!KeyRole::Analyst.can_write());
    }

    #[test]
    fn logins_fold_case_and_refuse_odd_characters() {
        assert_eq!(
            Login::parse(" Ana.Silva@Acme.com ").unwrap().as_str(),
            "ana.silva@acme.com"
        );
        for bad in ["", "a", "ana silva", "ana/x", "ñandú", &"a".repeat(65)] {
            assert!(Login::parse(bad).is_err(), "{bad}");
        }
        assert!(!KeyRole::Write.is_for_people());
        assert!(KeyRole::Analyst.is_for_people());
    }

    #[test]
    fn workspace_names() {
        assert!(WorkspaceName::parse("acme-eu_2").is_ok());
        for bad in ["", "-x", "Acme", "a b", &"a".repeat(64)] {
            assert!(WorkspaceName::parse(bad).is_err(), "{bad}");
        }
    }
}
