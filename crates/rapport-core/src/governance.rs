//! Governance records every layer shares: consent per purpose, audit entries chained by hash,
//! and the salted identifier hashes an erasure leaves behind.
//!
//! Enforcement (which purposes exist, what an action needs, who may approve) belongs to
//! `rapport-govern`; these are only the values, each built valid.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{Identifier, ProfileId, WorkspaceId};

/// A purpose personal data may be used for, such as `marketing_email` or `profiling`.
///
/// Purposes are lowercase snake_case names of at most 64 characters. Which purposes a
/// workspace knows is configuration (`rapport-govern` holds the registry); this type only
/// guarantees the shape, so a purpose can be stored and compared safely.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Purpose(String);

impl Purpose {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.as_bytes()[0].is_ascii_lowercase()
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        ok.then(|| Self(raw.to_owned()))
    }

    /// Reads a purpose out of a Segment consent category ("Marketing Email" →
    /// `marketing_email`): words are lowercased and joined by underscores.
    pub fn from_category(raw: &str) -> Option<Self> {
        let folded: Vec<String> = raw
            .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
            .filter(|w| !w.is_empty())
            .map(|w| w.to_lowercase())
            .collect();
        Self::parse(&folded.join("_"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Purpose {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw).ok_or_else(|| format!("`{raw}` is not a purpose name"))
    }
}

impl From<Purpose> for String {
    fn from(p: Purpose) -> String {
        p.0
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a customer stands on one purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    Granted,
    /// Asked and refused.
    Denied,
    /// Granted once, then taken back.
    Withdrawn,
}

impl ConsentState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentState::Granted => "granted",
            ConsentState::Denied => "denied",
            ConsentState::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "granted" => Some(ConsentState::Granted),
            "denied" => Some(ConsentState::Denied),
            "withdrawn" => Some(ConsentState::Withdrawn),
            _ => None,
        }
    }
}

/// A consent decision to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentChange {
    pub purpose: Purpose,
    pub state: ConsentState,
    /// How it was given: `api`, `segment`, `customer_page`, `import`, ...
    pub source: String,
    /// When the customer decided. The latest decision per purpose is the one in force.
    pub at: DateTime<Utc>,
}

/// A stored consent decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub profile_id: ProfileId,
    pub purpose: Purpose,
    pub state: ConsentState,
    pub source: String,
    pub at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

/// Who did something that the audit log records. Named without personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// Rapport itself (a pipeline stage, a scheduled job).
    System,
    /// An API key, by its id.
    ApiKey(String),
    /// A signed-in person, by user id.
    User(String),
    /// The customer the record is about, acting on their own page.
    Customer,
    /// A model, by name and version.
    Model(String),
}

impl Actor {
    /// The compact form stored and hashed: `system`, `key:ID`, `user:ID`, `customer`, `model:ID`.
    pub fn encode(&self) -> String {
        match self {
            Actor::System => "system".into(),
            Actor::ApiKey(id) => format!("key:{id}"),
            Actor::User(id) => format!("user:{id}"),
            Actor::Customer => "customer".into(),
            Actor::Model(id) => format!("model:{id}"),
        }
    }

    pub fn decode(raw: &str) -> Option<Self> {
        Some(match raw.split_once(':') {
            None if raw == "system" => Actor::System,
            None if raw == "customer" => Actor::Customer,
            Some(("key", id)) => Actor::ApiKey(id.into()),
            Some(("user", id)) => Actor::User(id.into()),
            Some(("model", id)) => Actor::Model(id.into()),
            _ => return None,
        })
    }
}

/// An audit record before the log gives it a place in the chain.
///
/// It must hold no personal data: customers are named by internal ids (`subject`), and
/// `details` carries codes, counts, purposes and ids, never names, emails or message text.
/// That is what lets the log outlive an erasure unchanged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub workspace: Option<WorkspaceId>,
    pub actor: Actor,
    /// Dotted action name: `consent.granted`, `profile.erased`, `action.refused`, ...
    pub action: String,
    /// The record acted on, by internal id (a profile, conversation, decision, key ...).
    pub subject: Option<String>,
    pub details: Value,
}

impl AuditEntry {
    pub fn new(
        workspace: Option<WorkspaceId>,
        actor: Actor,
        action: &str,
        subject: Option<String>,
        details: Value,
    ) -> Self {
        Self {
            workspace,
            actor,
            action: action.to_owned(),
            subject,
            details,
        }
    }
}

/// The hash every chain starts from.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit record in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub workspace: Option<String>,
    /// [`Actor::encode`] form.
    pub actor: String,
    pub action: String,
    pub subject: Option<String>,
    /// The details exactly as stored (compact JSON); hashed as these bytes.
    pub details: String,
    /// Hash of the previous record ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// Hash of this record's fields and `prev_hash`.
    pub hash: String,
}

impl AuditRecord {
    /// Places `entry` after a record whose hash is `prev_hash`.
    pub fn seal(entry: &AuditEntry, seq: i64, at_ms: i64, prev_hash: &str) -> Self {
        let mut record = Self::unsealed(entry, at_ms);
        record.link(seq, prev_hash);
        record
    }

    /// `entry` as it will be stored, not yet in the chain: no position, no hashes. A store that
    /// keeps entries waiting before they join the chain keeps them in this form.
    pub fn unsealed(entry: &AuditEntry, at_ms: i64) -> Self {
        Self {
            seq: 0,
            at_ms,
            workspace: entry.workspace.as_ref().map(|w| w.as_str().to_owned()),
            actor: entry.actor.encode(),
            action: entry.action.clone(),
            subject: entry.subject.clone(),
            details: entry.details.to_string(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// Puts this record at position `seq`, after a record whose hash is `prev_hash`, and
    /// computes its own hash.
    pub fn link(&mut self, seq: i64, prev_hash: &str) {
        self.seq = seq;
        prev_hash.clone_into(&mut self.prev_hash);
        self.hash = self.compute_hash();
    }

    /// SHA-256 over every field but `hash`, each length-prefixed so no two different records
    /// hash the same bytes.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        field(&self.seq.to_be_bytes());
        field(&self.at_ms.to_be_bytes());
        field(self.workspace.as_deref().unwrap_or("\u{0}").as_bytes());
        field(self.actor.as_bytes());
        field(self.action.as_bytes());
        field(self.subject.as_deref().unwrap_or("\u{0}").as_bytes());
        field(self.details.as_bytes());
        field(self.prev_hash.as_bytes());
        hex::encode(h.finalize())
    }

    pub fn details_value(&self) -> Value {
        serde_json::from_str(&self.details).unwrap_or(Value::Null)
    }
}

/// The salted hash an erasure keeps of an identifier, so that late events naming it can be
/// recognised without keeping the identifier itself.
pub fn tombstone_hash(salt: &[u8], identifier: &Identifier) -> String {
    let mut h = Sha256::new();
    h.update((salt.len() as u64).to_be_bytes());
    h.update(salt);
    h.update(identifier.kind().as_str().as_bytes());
    h.update([0]);
    h.update(identifier.value().as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdentifierKind;
    use serde_json::json;

    #[test]
    fn purposes_have_one_shape() {
        assert!(Purpose::parse("marketing_email").is_some());
        assert!(Purpose::parse("Marketing").is_none());
        assert!(Purpose::parse("").is_none());
        assert!(Purpose::parse("9lives").is_none());
        assert_eq!(
            Purpose::from_category("Marketing Email").unwrap().as_str(),
            "marketing_email"
        );
        assert_eq!(
            Purpose::from_category("  personalization ")
                .unwrap()
                .as_str(),
            "personalization"
        );
    }

    #[test]
    fn actors_round_trip() {
        for a in [
            Actor::System,
            Actor::Customer,
            Actor::ApiKey("key_1".into()),
            Actor::User("usr_1".into()),
            Actor::Model("churn@3".into()),
        ] {
            assert_eq!(Actor::decode(&a.encode()), Some(a));
        }
    }

    #[test]
    fn every_field_is_in_the_hash() {
        let entry = AuditEntry::new(
            None,
            Actor::System,
            "consent.granted",
            Some("prof_1".into()),
            json!({"purpose": "analytics"}),
        );
        let r = AuditRecord::seal(&entry, 1, 1_700_000_000_000, GENESIS_HASH);
        assert_eq!(r.hash, r.compute_hash());
        let mut edits: Vec<AuditRecord> = Vec::new();
        let mut e = r.clone();
        e.seq = 2;
        edits.push(e);
        let mut e = r.clone();
        e.at_ms += 1;
        edits.push(e);
        let mut e = r.clone();
        e.workspace = Some("ws_x".into());
        edits.push(e);
        let mut e = r.clone();
        e.actor = "customer".into();
        edits.push(e);
        let mut e = r.clone();
        e.action = "consent.denied".into();
        edits.push(e);
        let mut e = r.clone();
        e.subject = None;
        edits.push(e);
        let mut e = r.clone();
        e.details = "{}".into();
        edits.push(e);
        let mut e = r.clone();
        e.prev_hash = "1".repeat(64);
        edits.push(e);
        for e in edits {
            assert_ne!(e.compute_hash(), r.hash, "{e:?}");
        }
    }

    #[test]
    fn tombstones_depend_on_salt_kind_and_value() {
        let email = Identifier::new(IdentifierKind::Email, "a@b.example").unwrap();
        let user = Identifier::new(IdentifierKind::UserId, "a@b.example").unwrap();
        let a = tombstone_hash(b"salt", &email);
        assert_eq!(a, tombstone_hash(b"salt", &email));
        assert_ne!(a, tombstone_hash(b"pepper", &email));
        assert_ne!(a, tombstone_hash(b"salt", &user));
        assert!(!a.contains("a@b"));
    }
}
