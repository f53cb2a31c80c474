//! The unified customer profile as read back from the store.

use crate::event::Channel;
use crate::identity::Identifier;
use crate::ids::ProfileId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// One customer as Rapport knows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub id: ProfileId,
    /// A display name taken from the `name`, or `first_name` and `last_name` traits.
    pub name: Option<String>,
    pub email: Option<String>,
    /// Traits merged by event time: for each key, the value from the latest event.
    pub traits: Map<String, Value>,
    pub identities: Vec<Identifier>,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub channels: Vec<Channel>,
    pub event_count: i64,
    /// Ids of profiles that were merged into this one.
    pub merged_ids: Vec<ProfileId>,
    /// Standardised values beside the raw `traits` (E.164 phones, ISO countries, ...).
    pub standardized_traits: Map<String, Value>,
    /// Trait values that could not be standardised, latest per field.
    pub data_quality: Vec<crate::event::DataQualityIssue>,
}

/// The display name a set of traits gives, if any.
pub fn display_name(traits: &Map<String, Value>) -> Option<String> {
    let get = |k: &str| {
        traits
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    if let Some(n) = get("name") {
        return Some(n.to_owned());
    }
    match (
        get("first_name").or(get("firstName")),
        get("last_name").or(get("lastName")),
    ) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (Some(f), None) => Some(f.to_owned()),
        (None, Some(l)) => Some(l.to_owned()),
        (None, None) => None,
    }
}
