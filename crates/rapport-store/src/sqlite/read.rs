//! Queries. Every one is scoped to a workspace: a row of another workspace is never returned.

use rapport_core::time::from_millis;
use rapport_core::{
    Author, Channel, Conversation, ConversationChannel, ConversationId, ConversationStatus,
    Direction, EventType, Identifier, IdentifierKind, Message, MessageId, Profile, ProfileId,
};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::Map;

use super::apply::channels_from_bits;
use crate::{EventCursor, EventPage, ProfileSummary, StoreError, StoredEvent};

fn corrupt(what: &str) -> StoreError {
    StoreError::Internal(format!("unreadable {what} in the database"))
}

/// The live profile an id names: itself, or the profile it was merged into.
pub(super) fn canonical_profile(
    conn: &Connection,
    ws: &str,
    id: &str,
) -> Result<Option<String>, StoreError> {
    let row: Option<(String, Option<String>)> = conn
        .prepare_cached("SELECT id, merged_into FROM profiles WHERE id = ?1 AND workspace_id = ?2")?
        .query_row([id, ws], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.map(|(id, merged)| merged.unwrap_or(id)))
}

pub(super) fn profile(
    conn: &Connection,
    ws: &str,
    id: &str,
) -> Result<Option<Profile>, StoreError> {
    profile_parts(conn, ws, id, true)
}

/// A profile's own fields and traits, without its identities, merged ids and data-quality
/// notes (left empty): what a next-best-action decision reads.
pub(super) fn profile_for_decision(
    conn: &Connection,
    ws: &str,
    id: &str,
) -> Result<Option<Profile>, StoreError> {
    profile_parts(conn, ws, id, false)
}

fn profile_parts(
    conn: &Connection,
    ws: &str,
    id: &str,
    whole: bool,
) -> Result<Option<Profile>, StoreError> {
    // The row asked for is read with its fields in one lookup; a merged profile's row
    // names its survivor, which is read instead (merges point straight at the survivor).
    type ProfileRow = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        i64,
        i64,
    );
    let row_of = |id: &str| -> Result<Option<ProfileRow>, StoreError> {
        Ok(conn
            .prepare_cached(
                "SELECT id, merged_into, name, email, first_seen, last_seen, event_count, channels
                 FROM profiles WHERE id = ?1 AND workspace_id = ?2",
            )?
            .query_row([id, ws], |r| ProfileRow::try_from(r))
            .optional()?)
    };
    let Some(mut row) = row_of(id)? else {
        return Ok(None);
    };
    if let Some(survivor) = row.1.take() {
        row = row_of(&survivor)?.ok_or_else(|| corrupt("merged profile's survivor"))?;
    }
    let (id, _, name, email, first, last, count, bits) = row;
    let mut identities = Vec::new();
    if whole {
        let mut stmt =
            conn.prepare_cached("SELECT kind, value FROM identities WHERE profile_id = ?1")?;
        for row in stmt.query_map([&id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })? {
            let (kind, value) = row?;
            let kind = IdentifierKind::parse(&kind).ok_or_else(|| corrupt("identifier kind"))?;
            identities.push(Identifier::from_trusted(kind, value));
        }
        identities.sort();
    }
    let mut traits = Map::new();
    let mut standardized_traits = Map::new();
    let mut stmt = conn.prepare_cached(
        "SELECT key, value, std_value FROM traits WHERE profile_id = ?1 ORDER BY key",
    )?;
    for row in stmt.query_map([&id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })? {
        let (k, v, std) = row?;
        let raw: serde_json::Value = serde_json::from_str(&v).map_err(|_| corrupt("trait"))?;
        let std = match std {
            Some(s) => serde_json::from_str(&s).map_err(|_| corrupt("standardised trait"))?,
            None => raw.clone(),
        };
        standardized_traits.insert(k.clone(), std);
        traits.insert(k, raw);
    }
    let mut data_quality = Vec::new();
    let mut merged_ids = Vec::new();
    if whole {
        let mut stmt = conn.prepare_cached(
            "SELECT field, raw, code, problem FROM data_quality WHERE profile_id = ?1 ORDER BY field",
        )?;
        for row in stmt.query_map([&id], |r| {
            Ok(rapport_core::DataQualityIssue {
                field: r.get(0)?,
                raw: r.get(1)?,
                code: r.get(2)?,
                problem: r.get(3)?,
            })
        })? {
            data_quality.push(row?);
        }
        let mut stmt =
            conn.prepare_cached("SELECT id FROM profiles WHERE merged_into = ?1 ORDER BY rowid")?;
        for row in stmt.query_map([&id], |r| r.get::<_, String>(0))? {
            merged_ids.push(ProfileId::from_trusted(row?));
        }
    }
    Ok(Some(Profile {
        id: ProfileId::from_trusted(id),
        name,
        email,
        traits,
        identities,
        first_seen: first.map(from_millis),
        last_seen: last.map(from_millis),
        channels: channels_from_bits(bits),
        event_count: count,
        merged_ids,
        standardized_traits,
        data_quality,
    }))
}

pub(super) fn profile_by_identifier(
    conn: &Connection,
    ws: &str,
    id: &Identifier,
) -> Result<Option<Profile>, StoreError> {
    let owner: Option<String> = conn
        .prepare_cached("SELECT profile_id FROM identities WHERE workspace_id = ?1 AND kind = ?2 AND value = ?3")?
        .query_row(params![ws, id.kind().as_str(), id.value()], |r| r.get(0))
        .optional()?;
    match owner {
        Some(p) => profile(conn, ws, &p),
        None => Ok(None),
    }
}

/// seq, message_id, type, name, channel, ts, received_at, body.
type EventRow = (
    i64,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    String,
);

fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    EventRow::try_from(r)
}

pub(super) fn profile_events(
    conn: &Connection,
    ws: &str,
    id: &str,
    cursor: Option<&EventCursor>,
    limit: usize,
) -> Result<Option<EventPage>, StoreError> {
    let Some(id) = canonical_profile(conn, ws, id)? else {
        return Ok(None);
    };
    let (ts, seq) = cursor.map_or((i64::MAX, i64::MAX), |c| (c.ts_ms, c.seq));
    let mut stmt = conn.prepare_cached(
        "SELECT seq, message_id, type, name, channel, ts, received_at, body FROM events
         WHERE profile_id = ?1 AND workspace_id = ?2 AND (ts < ?3 OR (ts = ?3 AND seq < ?4))
         ORDER BY ts DESC, seq DESC LIMIT ?5",
    )?;
    let rows = stmt.query_map(params![id, ws, ts, seq, (limit + 1) as i64], event_row)?;
    let mut events = Vec::with_capacity(limit + 1);
    for row in rows {
        let (seq, message_id, ty, name, channel, ts, received, body) = row?;
        events.push(StoredEvent {
            seq,
            message_id,
            event_type: EventType::parse(&ty).ok_or_else(|| corrupt("event type"))?,
            name,
            channel: Channel::parse(&channel).ok_or_else(|| corrupt("channel"))?,
            timestamp: from_millis(ts),
            received_at: from_millis(received),
            body: serde_json::from_str(&body).map_err(|_| corrupt("event body"))?,
        });
    }
    let next_cursor = if events.len() > limit {
        events.truncate(limit);
        events.last().map(|e| {
            EventCursor {
                ts_ms: rapport_core::time::to_millis(e.timestamp),
                seq: e.seq,
            }
            .encode()
        })
    } else {
        None
    };
    Ok(Some(EventPage {
        events,
        next_cursor,
    }))
}

fn summary_row(r: &Row<'_>) -> rusqlite::Result<ProfileSummary> {
    Ok(ProfileSummary {
        id: ProfileId::from_trusted(r.get(0)?),
        name: r.get(1)?,
        email: r.get(2)?,
        last_seen: r.get::<_, Option<i64>>(3)?.map(from_millis),
        event_count: r.get(4)?,
        channels: channels_from_bits(r.get(5)?),
    })
}

const SUMMARY_COLUMNS: &str = "id, name, email, last_seen, event_count, channels";

pub(super) fn search_profiles(
    conn: &Connection,
    ws: &str,
    query: &str,
    limit: usize,
) -> Result<Vec<ProfileSummary>, StoreError> {
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        return recent_profiles(conn, ws, limit);
    }
    // Prefix ranges rather than LIKE, so each arm uses its index.
    let hi = format!("{q}\u{10FFFF}");
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM profiles WHERE workspace_id = ?1 AND merged_into IS NULL AND
           ((name_lc >= ?2 AND name_lc < ?3) OR (last_lc >= ?2 AND last_lc < ?3) OR (email >= ?2 AND email < ?3))
         ORDER BY last_seen DESC LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![ws, q, hi, limit as i64], summary_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn recent_profiles(
    conn: &Connection,
    ws: &str,
    limit: usize,
) -> Result<Vec<ProfileSummary>, StoreError> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM profiles WHERE workspace_id = ?1 AND merged_into IS NULL
         ORDER BY last_seen DESC LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![ws, limit as i64], summary_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

const CONVERSATION_COLUMNS: &str =
    "id, profile_id, channel, subject, status, opened_at, updated_at, message_count";

fn conversation_from(r: &Row<'_>) -> rusqlite::Result<Result<Conversation, StoreError>> {
    let channel: String = r.get(2)?;
    let status: String = r.get(4)?;
    let (Some(channel), Some(status)) = (
        ConversationChannel::parse(&channel),
        ConversationStatus::parse(&status),
    ) else {
        return Ok(Err(corrupt("conversation")));
    };
    Ok(Ok(Conversation {
        id: ConversationId::from_trusted(r.get(0)?),
        profile_id: ProfileId::from_trusted(r.get(1)?),
        channel,
        subject: r.get(3)?,
        status,
        opened_at: from_millis(r.get(5)?),
        updated_at: from_millis(r.get(6)?),
        message_count: r.get(7)?,
    }))
}

pub(super) fn conversation_row(
    conn: &Connection,
    ws: &str,
    id: &str,
) -> Result<Option<Conversation>, StoreError> {
    let sql = format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?1 AND workspace_id = ?2"
    );
    conn.prepare_cached(&sql)?
        .query_row([id, ws], conversation_from)
        .optional()?
        .transpose()
}

fn conversations_where(
    conn: &Connection,
    clause: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Conversation>, StoreError> {
    let sql = format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE {clause}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(args, conversation_from)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

pub(super) fn profile_conversations(
    conn: &Connection,
    ws: &str,
    id: &str,
) -> Result<Option<Vec<Conversation>>, StoreError> {
    let Some(id) = canonical_profile(conn, ws, id)? else {
        return Ok(None);
    };
    conversations_of_canonical(conn, ws, &id).map(Some)
}

/// The conversations of a profile id known to be canonical (not merged into another),
/// latest first.
pub(super) fn conversations_of_canonical(
    conn: &Connection,
    ws: &str,
    canonical: &str,
) -> Result<Vec<Conversation>, StoreError> {
    conversations_where(
        conn,
        "profile_id = ?1 AND workspace_id = ?2 ORDER BY updated_at DESC",
        [canonical, ws],
    )
}

pub(super) fn recent_conversations(
    conn: &Connection,
    ws: &str,
    limit: usize,
) -> Result<Vec<Conversation>, StoreError> {
    conversations_where(
        conn,
        "workspace_id = ?1 ORDER BY updated_at DESC LIMIT ?2",
        params![ws, limit as i64],
    )
}

fn message_from(r: &Row<'_>) -> rusqlite::Result<Result<Message, StoreError>> {
    let direction: String = r.get(2)?;
    let author: String = r.get(3)?;
    let (Some(direction), Some(author)) = (Direction::parse(&direction), Author::parse(&author))
    else {
        return Ok(Err(corrupt("message")));
    };
    Ok(Ok(Message {
        id: MessageId::from_trusted(r.get(0)?),
        conversation_id: ConversationId::from_trusted(r.get(1)?),
        direction,
        author,
        text: r.get(4)?,
        sent_at: from_millis(r.get(5)?),
        external_id: r.get(6)?,
        analysis: r
            .get::<_, Option<String>>(7)?
            .and_then(|a| serde_json::from_str(&a).ok()),
    }))
}

const MESSAGE_COLUMNS: &str =
    "id, conversation_id, direction, author, text, sent_at, external_id, analysis";

pub(super) fn messages(conn: &Connection, conversation: &str) -> Result<Vec<Message>, StoreError> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 ORDER BY sent_at, seq"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([conversation], message_from)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

pub(super) fn message_by_external(
    conn: &Connection,
    conversation: &str,
    external: &str,
) -> Result<Option<Message>, StoreError> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 AND external_id = ?2"
    );
    conn.prepare_cached(&sql)?
        .query_row([conversation, external], message_from)
        .optional()?
        .transpose()
}
