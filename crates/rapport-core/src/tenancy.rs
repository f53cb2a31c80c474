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

/// What an API key may do. A write key can only send data in; an admin key reads and manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    Write,
    Admin,
}

impl KeyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Write => "write",
            KeyRole::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "write" => Some(KeyRole::Write),
            "admin" => Some(KeyRole::Admin),
            _ => None,
        }
    }

    /// Whether a key of this role may ingest events (both roles may).
    pub fn can_write(self) -> bool {
        true
    }

    /// Whether a key of this role may read data and manage the workspace.
    pub fn can_read(self) -> bool {
        self == KeyRole::Admin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_names() {
        assert!(WorkspaceName::parse("acme-eu_2").is_ok());
        for bad in ["", "-x", "Acme", "a b", &"a".repeat(64)] {
            assert!(WorkspaceName::parse(bad).is_err(), "{bad}");
        }
    }
}
