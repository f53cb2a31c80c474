//! Turns Segment-spec payloads (identify, track, page, screen, group, alias and batch) into
//! validated [`Event`]s: size limits, field types, identity rules, timestamps with clock-skew
//! correction, and the touchpoint channel.
//!
//! It owns the wire format and its error codes; it does no I/O and knows nothing of HTTP or
//! storage. Unknown fields are kept, as Segment keeps them; a secret such as `writeKey` in a
//! body is dropped so it is never stored.

use chrono::{DateTime, Duration, Utc};
use rapport_core::error::{Coded, ErrorKind};
use rapport_core::event::{EventError, EventParts};
use rapport_core::time::{format, parse_timestamp};
use rapport_core::{Channel, Event, EventType, Identifier, IdentifierKind};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Size limits on what a sender may post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single event, in bytes of JSON (Segment: 32 KB).
    pub max_event_bytes: usize,
    /// Largest batch request body, in bytes of JSON (Segment: 500 KB).
    pub max_batch_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_bytes: 32 * 1024,
            max_batch_bytes: 500 * 1024,
        }
    }
}

/// One problem with one event of a batch or import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemError {
    /// Zero-based position in the batch (for imports, the one-based line number).
    pub index: usize,
    pub code: &'static str,
    pub message: String,
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("event is {size} bytes; the limit is {limit}")]
    EventTooLarge { size: usize, limit: usize },
    #[error("batch is {size} bytes; the limit is {limit}")]
    BatchTooLarge { size: usize, limit: usize },
    #[error("{0}")]
    InvalidField(String),
    #[error("{0}")]
    InvalidTimestamp(String),
    #[error("neither userId nor anonymousId is set")]
    MissingIdentity,
    #[error("{0}")]
    MissingField(String),
    #[error("unknown event type {0:?}")]
    InvalidType(String),
    #[error("batch holds no events")]
    EmptyBatch,
    #[error("{} of the batch's events are invalid; none was applied", .0.len())]
    InvalidBatch(Vec<ItemError>),
}

impl Coded for IngestError {
    fn kind(&self) -> ErrorKind {
        match self {
            IngestError::EventTooLarge { .. } | IngestError::BatchTooLarge { .. } => {
                ErrorKind::TooLarge
            }
            _ => ErrorKind::InvalidInput,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            IngestError::InvalidJson(_) => "invalid_json",
            IngestError::EventTooLarge { .. } => "event_too_large",
            IngestError::BatchTooLarge { .. } => "batch_too_large",
            IngestError::InvalidField(_) => "invalid_field",
            IngestError::InvalidTimestamp(_) => "invalid_timestamp",
            IngestError::MissingIdentity => "missing_identity",
            IngestError::MissingField(_) => "missing_field",
            IngestError::InvalidType(_) => "invalid_type",
            IngestError::EmptyBatch => "empty_batch",
            IngestError::InvalidBatch(_) => "invalid_batch",
        }
    }
}

impl IngestError {
    /// The per-event problems of a refused batch, if this is one.
    pub fn items(&self) -> &[ItemError] {
        match self {
            IngestError::InvalidBatch(items) => items,
            _ => &[],
        }
    }

    fn into_item(self, index: usize) -> ItemError {
        ItemError {
            index,
            code: self.code(),
            message: self.to_string(),
        }
    }
}

impl From<EventError> for IngestError {
    fn from(e: EventError) -> Self {
        match e {
            EventError::MissingIdentity => IngestError::MissingIdentity,
            EventError::BadMessageId => IngestError::InvalidField(e.to_string()),
            _ => IngestError::MissingField(e.to_string()),
        }
    }
}

/// Parses the body of `/v1/identify`, `/v1/track` and the other single-event endpoints. The
/// path decides the type; a `type` field in the body that disagrees is an error.
pub fn parse_single(
    event_type: EventType,
    body: &[u8],
    received_at: DateTime<Utc>,
    limits: &Limits,
) -> Result<Event, IngestError> {
    if body.len() > limits.max_event_bytes {
        return Err(IngestError::EventTooLarge {
            size: body.len(),
            limit: limits.max_event_bytes,
        });
    }
    let map = parse_object(body)?;
    event_from_map(map, Some(event_type), &Shared::default(), received_at)
}

/// Parses a `/v1/batch` body. The batch is accepted whole or refused whole: any invalid event
/// makes an [`IngestError::InvalidBatch`] listing every failing index.
pub fn parse_batch(
    body: &[u8],
    received_at: DateTime<Utc>,
    limits: &Limits,
) -> Result<Vec<Event>, IngestError> {
    if body.len() > limits.max_batch_bytes {
        return Err(IngestError::BatchTooLarge {
            size: body.len(),
            limit: limits.max_batch_bytes,
        });
    }
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        batch: Option<Vec<&'a RawValue>>,
        #[serde(flatten)]
        rest: Map<String, Value>,
    }
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| IngestError::InvalidJson(e.to_string()))?;
    let items = envelope
        .batch
        .ok_or_else(|| IngestError::MissingField("batch must be an array of events".into()))?;
    if items.is_empty() {
        return Err(IngestError::EmptyBatch);
    }
    let shared = Shared::from_envelope(envelope.rest)?;
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, raw) in items.into_iter().enumerate() {
        let result = if raw.get().len() > limits.max_event_bytes {
            Err(IngestError::EventTooLarge {
                size: raw.get().len(),
                limit: limits.max_event_bytes,
            })
        } else {
            parse_object(raw.get().as_bytes())
                .and_then(|map| event_from_map(map, None, &shared, received_at))
        };
        match result {
            Ok(e) => events.push(e),
            Err(e) => errors.push(e.into_item(index)),
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(IngestError::InvalidBatch(errors))
    }
}

/// Parses one line of a JSONL import: a Segment event whose `type` names its call.
pub fn parse_line(
    line: &str,
    received_at: DateTime<Utc>,
    limits: &Limits,
) -> Result<Event, IngestError> {
    if line.len() > limits.max_event_bytes {
        return Err(IngestError::EventTooLarge {
            size: line.len(),
            limit: limits.max_event_bytes,
        });
    }
    let map = parse_object(line.as_bytes())?;
    event_from_map(map, None, &Shared::default(), received_at)
}

/// Validates an event already parsed as JSON (as the demo generator and importers hold them).
/// Its `type` names the call; a missing `messageId` is generated.
pub fn parse_value(value: Value, received_at: DateTime<Utc>) -> Result<Event, IngestError> {
    match value {
        Value::Object(map) => event_from_map(map, None, &Shared::default(), received_at),
        _ => Err(IngestError::InvalidField(
            "an event must be a JSON object".into(),
        )),
    }
}

/// Fields a batch envelope shares with each of its events.
#[derive(Default)]
struct Shared {
    sent_at: Option<DateTime<Utc>>,
    context: Map<String, Value>,
    integrations: Map<String, Value>,
    extra: Map<String, Value>,
}

impl Shared {
    fn from_envelope(mut rest: Map<String, Value>) -> Result<Self, IngestError> {
        rest.remove("writeKey");
        let sent_at = match rest.remove("sentAt") {
            None | Some(Value::Null) => None,
            Some(v) => Some(timestamp_field("sentAt", &v)?),
        };
        let context = object_field("context", rest.remove("context"))?;
        let integrations = object_field("integrations", rest.remove("integrations"))?;
        Ok(Self {
            sent_at,
            context,
            integrations,
            extra: rest,
        })
    }
}

fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, IngestError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(IngestError::InvalidField(
            "an event must be a JSON object".into(),
        )),
        Err(e) => Err(IngestError::InvalidJson(e.to_string())),
    }
}

fn object_field(name: &str, v: Option<Value>) -> Result<Map<String, Value>, IngestError> {
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(IngestError::InvalidField(format!(
            "{name} must be an object"
        ))),
    }
}

fn timestamp_field(name: &str, v: &Value) -> Result<DateTime<Utc>, IngestError> {
    v.as_str().and_then(parse_timestamp).ok_or_else(|| {
        IngestError::InvalidTimestamp(format!("{name} must be an ISO 8601 timestamp, got {v}"))
    })
}

/// A string, or a number Segment would coerce to one; `None` when absent or null.
fn id_field(name: &str, v: Option<&Value>) -> Result<Option<String>, IngestError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(IngestError::InvalidField(format!(
            "{name} must be a string or a number"
        ))),
    }
}

fn text_field(name: &str, v: Option<&Value>) -> Result<Option<String>, IngestError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.trim().is_empty())),
        Some(_) => Err(IngestError::InvalidField(format!(
            "{name} must be a string"
        ))),
    }
}

fn identifier(
    kind: IdentifierKind,
    name: &str,
    raw: Option<String>,
) -> Result<Option<Identifier>, IngestError> {
    raw.map(|r| {
        Identifier::new(kind, &r).map_err(|e| IngestError::InvalidField(format!("{name}: {e}")))
    })
    .transpose()
}

fn event_from_map(
    mut map: Map<String, Value>,
    path_type: Option<EventType>,
    shared: &Shared,
    received_at: DateTime<Utc>,
) -> Result<Event, IngestError> {
    map.remove("writeKey");
    let body_type = text_field("type", map.get("type"))?;
    let event_type = match (path_type, body_type.as_deref()) {
        (Some(t), None) => t,
        (Some(t), Some(b)) if b == t.as_str() => t,
        (Some(t), Some(b)) => {
            return Err(IngestError::InvalidType(format!(
                "{b} (this endpoint takes {})",
                t.as_str()
            )))
        }
        (None, Some(b)) => EventType::SEGMENT
            .into_iter()
            .find(|t| t.as_str() == b)
            .ok_or_else(|| IngestError::InvalidType(b.to_owned()))?,
        (None, None) => return Err(IngestError::MissingField("type is required".into())),
    };

    // Batch-level context and integrations apply unless the event sets its own key.
    let mut context = object_field("context", map.remove("context"))?;
    for (k, v) in &shared.context {
        context.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let mut integrations = object_field("integrations", map.remove("integrations"))?;
    for (k, v) in &shared.integrations {
        integrations.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for (k, v) in &shared.extra {
        map.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let traits = object_field("traits", map.get("traits").cloned())?;
    let properties = object_field("properties", map.get("properties").cloned())?;
    if context
        .get("traits")
        .is_some_and(|t| !t.is_object() && !t.is_null())
    {
        return Err(IngestError::InvalidField(
            "context.traits must be an object".into(),
        ));
    }

    let user_id = identifier(
        IdentifierKind::UserId,
        "userId",
        id_field("userId", map.get("userId"))?,
    )?;
    let anonymous_id = identifier(
        IdentifierKind::AnonymousId,
        "anonymousId",
        id_field("anonymousId", map.get("anonymousId"))?,
    )?;
    let previous_id = id_field("previousId", map.get("previousId"))?;
    let group_id = id_field("groupId", map.get("groupId"))?;
    let name = match event_type {
        EventType::Track => text_field("event", map.get("event"))?,
        EventType::Page | EventType::Screen => text_field("name", map.get("name"))?,
        _ => None,
    };
    text_field("category", map.get("category"))?;

    // Clock skew: Segment trusts the server's clock for the gap between sending and receiving,
    // and the sender's clock only for the gap between the event and its sending.
    let original = match map.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(v) => Some(timestamp_field("timestamp", v)?),
    };
    let sent_at = match map.get("sentAt") {
        None | Some(Value::Null) => shared.sent_at,
        Some(v) => Some(timestamp_field("sentAt", v)?),
    };
    if let Some(v) = map.get("originalTimestamp").filter(|v| !v.is_null()) {
        timestamp_field("originalTimestamp", v)?;
    }
    let timestamp = match (original, sent_at) {
        (Some(t), Some(s)) => received_at - (s - t),
        (Some(t), None) => t,
        (None, _) => received_at,
    };
    // A corrected time in the far future would distort every recency figure.
    let timestamp = timestamp.min(received_at + Duration::days(1));

    let message_id = match map.get("messageId") {
        None | Some(Value::Null) => generated_message_id(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(IngestError::InvalidField(
                "messageId must be a string".into(),
            ))
        }
    };

    let channel = infer_channel(event_type, &context);

    map.insert("type".into(), Value::String(event_type.as_str().into()));
    map.insert("messageId".into(), Value::String(message_id.clone()));
    if let Some(t) = original {
        map.entry("originalTimestamp")
            .or_insert_with(|| Value::String(format(t)));
    }
    map.insert("timestamp".into(), Value::String(format(timestamp)));
    map.insert("receivedAt".into(), Value::String(format(received_at)));
    if let Some(s) = sent_at {
        map.insert("sentAt".into(), Value::String(format(s)));
    }
    if !context.is_empty() {
        map.insert("context".into(), Value::Object(context.clone()));
    }
    if !integrations.is_empty() {
        map.insert("integrations".into(), Value::Object(integrations));
    }

    Ok(Event::new(EventParts {
        event_type,
        message_id,
        user_id,
        anonymous_id,
        previous_id,
        group_id,
        name,
        timestamp,
        received_at,
        channel,
        traits,
        properties,
        context,
        body: Value::Object(map),
        standard: None,
    })?)
}

/// Without a `messageId` the sender cannot deduplicate retries; Rapport gives the event a
/// fresh one, as Segment does.
fn generated_message_id() -> String {
    format!("rapport-{}", uuid::Uuid::new_v4())
}

/// Which touchpoint an event came through: an explicit `context.channel` wins, then the call
/// type, then the library that sent it.
pub fn infer_channel(event_type: EventType, context: &Map<String, Value>) -> Channel {
    if let Some(c) = context
        .get("channel")
        .and_then(Value::as_str)
        .and_then(Channel::parse)
    {
        if c != Channel::Server {
            return c;
        }
    }
    match event_type {
        EventType::Page => return Channel::Web,
        EventType::Screen => return Channel::App,
        _ => {}
    }
    let library = context
        .get("library")
        .and_then(|l| l.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    if [
        "ios",
        "android",
        "react-native",
        "flutter",
        "swift",
        "kotlin",
    ]
    .iter()
    .any(|m| library.contains(m))
    {
        Channel::App
    } else if library.contains("analytics.js") || library.contains("analytics-next") {
        Channel::Web
    } else {
        Channel::Server
    }
}

#[cfg(test)]
mod tests;
