//! A customer event after validation: the Segment call types, the touchpoint channel it came
//! through, and the identifiers and traits it carries. Built by the ingest stage through
//! [`Event::new`], which enforces the cross-field rules; every field type is valid on its own.

use crate::identity::{Identifier, IdentifierKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::ops::Deref;

/// Segment's call types, plus `message` for conversation messages Rapport records itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
    Message,
}

impl EventType {
    pub const SEGMENT: [EventType; 6] = [
        EventType::Identify,
        EventType::Track,
        EventType::Page,
        EventType::Screen,
        EventType::Group,
        EventType::Alias,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Identify => "identify",
            EventType::Track => "track",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
            EventType::Message => "message",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::SEGMENT.as_slice(), &[EventType::Message]]
            .concat()
            .into_iter()
            .find(|t| t.as_str() == raw)
    }
}

/// The touchpoint an event came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Web,
    App,
    Chat,
    Email,
    Voice,
    Sms,
    Social,
    Survey,
    Purchase,
    /// A server-side call with no hint of the customer-facing touchpoint.
    Server,
}

impl Channel {
    pub const ALL: [Channel; 10] = [
        Channel::Web,
        Channel::App,
        Channel::Chat,
        Channel::Email,
        Channel::Voice,
        Channel::Sms,
        Channel::Social,
        Channel::Survey,
        Channel::Purchase,
        Channel::Server,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::App => "app",
            Channel::Chat => "chat",
            Channel::Email => "email",
            Channel::Voice => "voice",
            Channel::Sms => "sms",
            Channel::Social => "social",
            Channel::Survey => "survey",
            Channel::Purchase => "purchase",
            Channel::Server => "server",
        }
    }

    /// Our own channel names, plus the values Segment's libraries put in `context.channel`.
    pub fn parse(raw: &str) -> Option<Self> {
        let lower = raw.trim().to_ascii_lowercase();
        match lower.as_str() {
            "browser" => Some(Channel::Web),
            "mobile" => Some(Channel::App),
            _ => Self::ALL.into_iter().find(|c| c.as_str() == lower),
        }
    }
}

/// The fields of a validated event. Read them through [`Event`], which derefs to this.
///
/// Serialised, this is the event's interchange form between processes (the payload an API node
/// puts on the event bus for a worker). Reading it back goes through [`Event::new`] again, and
/// `standard` is never read back: the identity stage's reading is derived data that the
/// process applying the event recomputes under its own policy rather than trusts from the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventParts {
    pub event_type: EventType,
    /// The sender's `messageId` (or one Rapport generated); unique per workspace.
    pub message_id: String,
    pub user_id: Option<Identifier>,
    pub anonymous_id: Option<Identifier>,
    /// `previousId` of an alias call: either a user id or an anonymous id.
    pub previous_id: Option<String>,
    pub group_id: Option<String>,
    /// The track event name, or the page/screen name.
    pub name: Option<String>,
    /// When it happened, corrected for the sender's clock skew.
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub channel: Channel,
    /// `traits` of identify and group calls.
    pub traits: Map<String, Value>,
    pub properties: Map<String, Value>,
    pub context: Map<String, Value>,
    /// The whole event as accepted, unknown fields included, with Rapport's additions
    /// (`receivedAt`, corrected `timestamp`, `originalTimestamp`).
    pub body: Value,
    /// What the identity stage made of the profile traits, when it has run.
    #[serde(skip_deserializing)]
    pub standard: Option<Standardized>,
}

/// A trait value that could not be standardised. It stays in the raw traits and is flagged
/// on the profile; it is never silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataQualityIssue {
    /// Trait path, e.g. `email` or `address.postal_code`.
    pub field: String,
    /// The value as received.
    pub raw: String,
    /// Stable code of the problem, e.g. `invalid_email`.
    pub code: String,
    /// For people.
    pub problem: String,
}

/// The standardised reading of an event's profile traits.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Standardized {
    /// Standardised values of the traits that could be standardised (E.164 phones, folded
    /// emails, ISO countries and dates, ...); other traits pass through.
    pub traits: Map<String, Value>,
    pub issues: Vec<DataQualityIssue>,
    /// The email identifier under the workspace's email policy (its match key).
    pub email: Option<Identifier>,
    /// The phone identifier in E.164.
    pub phone: Option<Identifier>,
    /// Consent the event states (Segment's `context.consent.categoryPreferences`), limited to
    /// the purposes the workspace knows.
    pub consents: Vec<(crate::Purpose, bool)>,
    /// Ids in other systems (CRM, billing, ...) the event names, of the systems the workspace
    /// identifies customers by: from `context.externalIds` and from configured traits.
    pub external_ids: Vec<Identifier>,
}

/// Why the parts of an event do not make a valid event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("neither userId nor anonymousId is set")]
    MissingIdentity,
    #[error("alias needs previousId and userId")]
    AliasIncomplete,
    #[error("group needs groupId")]
    GroupIncomplete,
    #[error("track needs an event name")]
    TrackUnnamed,
    #[error("messageId is empty or longer than 256 characters")]
    BadMessageId,
}

/// A validated event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Event(EventParts);

impl Event {
    pub fn new(parts: EventParts) -> Result<Self, EventError> {
        if parts.message_id.trim().is_empty() || parts.message_id.chars().count() > 256 {
            return Err(EventError::BadMessageId);
        }
        if parts.user_id.is_none() && parts.anonymous_id.is_none() {
            return Err(EventError::MissingIdentity);
        }
        match parts.event_type {
            EventType::Alias if parts.previous_id.is_none() || parts.user_id.is_none() => {
                return Err(EventError::AliasIncomplete)
            }
            EventType::Group if parts.group_id.is_none() => {
                return Err(EventError::GroupIncomplete)
            }
            EventType::Track if parts.name.is_none() => return Err(EventError::TrackUnnamed),
            _ => {}
        }
        Ok(Self(parts))
    }

    /// Traits this event asserts about the customer: identify traits, and the traits any call
    /// carries in `context.traits` (as Segment's browser library sends them).
    pub fn profile_traits(&self) -> Map<String, Value> {
        let mut out = match self.context.get("traits") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        if self.event_type == EventType::Identify {
            for (k, v) in &self.traits {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }

    /// Segment's consent preferences as sent: `context.consent.categoryPreferences`, a map of
    /// category name to true (granted) or false (denied). Non-boolean values are ignored.
    pub fn consent_preferences(&self) -> Vec<(String, bool)> {
        let prefs = self
            .context
            .get("consent")
            .and_then(|c| c.get("categoryPreferences"))
            .and_then(Value::as_object);
        prefs
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_bool().map(|b| (k.clone(), b)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The same event with the identity stage's reading of its traits attached.
    pub fn with_standard(mut self, standard: Standardized) -> Self {
        self.0.standard = Some(standard);
        self
    }

    /// The same event naming these external ids too (kept with the identity stage's reading).
    pub fn with_external_ids(mut self, ids: Vec<Identifier>) -> Self {
        if ids.is_empty() {
            return self;
        }
        self.0
            .standard
            .get_or_insert_with(Standardized::default)
            .external_ids
            .extend(ids);
        self
    }

    /// Segment's `context.externalIds`: `(type, id)` of each entry with string fields.
    pub fn context_external_ids(&self) -> Vec<(String, String)> {
        let Some(Value::Array(list)) = self.context.get("externalIds") else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|e| {
                let kind = e.get("type")?.as_str()?;
                let id = match e.get("id")? {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return None,
                };
                Some((kind.to_owned(), id))
            })
            .collect()
    }

    /// Every identifier this event names, strongest first: user id, email, phone, anonymous id.
    /// Trait values that are not valid emails or phones are ignored here (they stay traits).
    /// Once standardised, the standardised email and phone are used.
    pub fn identifiers(&self) -> Vec<Identifier> {
        let mut out = Vec::with_capacity(4);
        out.extend(self.user_id.clone());
        if let Some(std) = &self.standard {
            out.extend(std.email.clone());
            out.extend(std.phone.clone());
            out.extend(self.anonymous_id.clone());
            out.extend(std.external_ids.iter().cloned());
            return out;
        }
        let traits = self.profile_traits();
        for (key, kind) in [
            ("email", IdentifierKind::Email),
            ("phone", IdentifierKind::Phone),
        ] {
            if let Some(Value::String(s)) = traits.get(key) {
                if let Ok(id) = Identifier::new(kind, s) {
                    out.push(id);
                }
            }
        }
        out.extend(self.anonymous_id.clone());
        out
    }
}

/// Reads an event written by its `Serialize` form, checking it as [`Event::new`] does. The
/// `standard` field is dropped (see [`EventParts`]).
impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parts = EventParts::deserialize(d)?;
        Event::new(parts).map_err(serde::de::Error::custom)
    }
}

impl Deref for Event {
    type Target = EventParts;
    fn deref(&self) -> &EventParts {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> EventParts {
        EventParts {
            event_type: EventType::Identify,
            message_id: "m-1".to_owned(),
            user_id: Some(Identifier::new(IdentifierKind::UserId, " ada ").unwrap()),
            anonymous_id: Some(Identifier::new(IdentifierKind::AnonymousId, "anon").unwrap()),
            previous_id: None,
            group_id: None,
            name: None,
            timestamp: "2026-01-15T10:20:30.123456Z".parse().unwrap(),
            received_at: "2026-01-15T10:20:31Z".parse().unwrap(),
            channel: Channel::App,
            traits: serde_json::json!({"email": "Ada@Example.com", "n": 1})
                .as_object()
                .cloned()
                .unwrap(),
            properties: Map::new(),
            context: Map::new(),
            body: serde_json::json!({"userId": "ada", "extra": [1, 2]}),
            standard: None,
        }
    }

    #[test]
    fn an_event_reads_back_as_it_was_written_without_the_derived_reading() {
        let event = Event::new(parts()).unwrap();
        let back: Event = serde_json::from_slice(&serde_json::to_vec(&event).unwrap()).unwrap();
        assert_eq!(back, event);

        let standardised = event.clone().with_standard(Standardized {
            email: Some(Identifier::new(IdentifierKind::Email, "ada@example.com").unwrap()),
            ..Default::default()
        });
        let back: Event =
            serde_json::from_value(serde_json::to_value(&standardised).unwrap()).unwrap();
        assert_eq!(
            back, event,
            "the identity stage's reading is recomputed, not trusted"
        );
    }

    #[test]
    fn reading_an_event_checks_it_like_new_does() {
        let mut v = serde_json::to_value(Event::new(parts()).unwrap()).unwrap();
        v["user_id"] = serde_json::Value::Null;
        v["anonymous_id"] = serde_json::Value::Null;
        assert!(serde_json::from_value::<Event>(v).is_err());
        let mut v = serde_json::to_value(Event::new(parts()).unwrap()).unwrap();
        v["user_id"] = serde_json::json!({"kind": "email", "value": "not an address"});
        assert!(serde_json::from_value::<Event>(v).is_err());
    }
}
