//! Queries. Every one is scoped to a workspace: a row of another workspace is never returned.

use deadpool_postgres::Transaction;
use rapport_core::time::from_millis;
use rapport_core::{
    Author, Channel, Conversation, ConversationChannel, ConversationId, ConversationStatus,
    Direction, EventType, Identifier, IdentifierKind, Message, MessageId, Profile, ProfileId,
};
use serde_json::Map;
use tokio_postgres::Row;

use super::{pg_error, query, query_opt};
use crate::sqlite::apply::channels_from_bits;
use crate::{
    EventCursor, EventPage, MergeRecord, ProfileSummary, StoreError, StoredEvent, Workspace,
};

type Tx<'a> = Transaction<'a>;

fn corrupt(what: &str) -> StoreError {
    StoreError::Internal(format!("unreadable {what} in the database"))
}

/// The live profile an id names: itself, or the profile it was merged into.
pub(super) async fn canonical_profile(
    tx: &Tx<'_>,
    ws: &str,
    id: &str,
) -> Result<Option<String>, StoreError> {
    let row = query_opt(
        tx,
        "SELECT id, merged_into FROM profiles WHERE id = $1 AND workspace_id = $2",
        &[&id, &ws],
    )
    .await
    .map_err(pg_error)?;
    Ok(row.map(|r| {
        r.get::<_, Option<String>>(1)
            .unwrap_or_else(|| r.get::<_, String>(0))
    }))
}

pub(super) async fn profile(
    tx: &Tx<'_>,
    ws: &str,
    id: &str,
) -> Result<Option<Profile>, StoreError> {
    let Some(id) = canonical_profile(tx, ws, id).await? else {
        return Ok(None);
    };
    let row = query_opt(
        tx,
        "SELECT name, email, first_seen, last_seen, event_count, channels FROM profiles WHERE id = $1",
        &[&id],
    )
    .await
    .map_err(pg_error)?
    .ok_or_else(|| corrupt("profile redirect"))?;
    let mut identities = Vec::new();
    for r in query(
        tx,
        "SELECT kind, value FROM identities WHERE profile_id = $1",
        &[&id],
    )
    .await
    .map_err(pg_error)?
    {
        let kind: String = r.get(0);
        let kind = IdentifierKind::parse(&kind).ok_or_else(|| corrupt("identifier kind"))?;
        identities.push(Identifier::from_trusted(kind, r.get(1)));
    }
    identities.sort();
    let mut traits = Map::new();
    let mut standardized_traits = Map::new();
    for r in query(
        tx,
        "SELECT key, value, std_value FROM traits WHERE profile_id = $1 ORDER BY key COLLATE \"C\"",
        &[&id],
    )
    .await
    .map_err(pg_error)?
    {
        let (k, v, std): (String, String, Option<String>) = (r.get(0), r.get(1), r.get(2));
        let raw: serde_json::Value = serde_json::from_str(&v).map_err(|_| corrupt("trait"))?;
        let std = match std {
            Some(s) => serde_json::from_str(&s).map_err(|_| corrupt("standardised trait"))?,
            None => raw.clone(),
        };
        standardized_traits.insert(k.clone(), std);
        traits.insert(k, raw);
    }
    let mut data_quality = Vec::new();
    for r in query(
        tx,
        "SELECT field, raw, code, problem FROM data_quality WHERE profile_id = $1 ORDER BY field COLLATE \"C\"",
        &[&id],
    )
    .await
    .map_err(pg_error)?
    {
        data_quality.push(rapport_core::DataQualityIssue {
            field: r.get(0),
            raw: r.get(1),
            code: r.get(2),
            problem: r.get(3),
        });
    }
    let merged_ids = query(
        tx,
        "SELECT id FROM profiles WHERE merged_into = $1 ORDER BY seq",
        &[&id],
    )
    .await
    .map_err(pg_error)?
    .into_iter()
    .map(|r| ProfileId::from_trusted(r.get(0)))
    .collect();
    Ok(Some(Profile {
        id: ProfileId::from_trusted(id),
        name: row.get(0),
        email: row.get(1),
        traits,
        identities,
        first_seen: row.get::<_, Option<i64>>(2).map(from_millis),
        last_seen: row.get::<_, Option<i64>>(3).map(from_millis),
        channels: channels_from_bits(row.get(5)),
        event_count: row.get(4),
        merged_ids,
        standardized_traits,
        data_quality,
    }))
}

pub(super) async fn profile_by_identifier(
    tx: &Tx<'_>,
    ws: &str,
    id: &Identifier,
) -> Result<Option<Profile>, StoreError> {
    let owner = query_opt(
        tx,
        "SELECT profile_id FROM identities WHERE workspace_id = $1 AND kind = $2 AND value = $3",
        &[&ws, &id.kind().as_str(), &id.value()],
    )
    .await
    .map_err(pg_error)?;
    match owner {
        Some(r) => profile(tx, ws, r.get(0)).await,
        None => Ok(None),
    }
}

pub(super) async fn profile_events(
    tx: &Tx<'_>,
    ws: &str,
    id: &str,
    cursor: Option<&EventCursor>,
    limit: usize,
) -> Result<Option<EventPage>, StoreError> {
    let Some(id) = canonical_profile(tx, ws, id).await? else {
        return Ok(None);
    };
    let (ts, seq) = cursor.map_or((i64::MAX, i64::MAX), |c| (c.ts_ms, c.seq));
    let rows = query(
        tx,
        "SELECT seq, message_id, type, name, channel, ts, received_at, body FROM events
         WHERE profile_id = $1 AND workspace_id = $2 AND (ts, seq) < ($3, $4)
         ORDER BY ts DESC, seq DESC LIMIT $5",
        &[&id, &ws, &ts, &seq, &((limit + 1) as i64)],
    )
    .await
    .map_err(pg_error)?;
    let mut events = Vec::with_capacity(rows.len());
    for r in rows {
        let (ty, channel, body): (String, String, String) = (r.get(2), r.get(4), r.get(7));
        events.push(StoredEvent {
            seq: r.get(0),
            message_id: r.get(1),
            event_type: EventType::parse(&ty).ok_or_else(|| corrupt("event type"))?,
            name: r.get(3),
            channel: Channel::parse(&channel).ok_or_else(|| corrupt("channel"))?,
            timestamp: from_millis(r.get(5)),
            received_at: from_millis(r.get(6)),
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

fn summary_row(r: &Row) -> ProfileSummary {
    ProfileSummary {
        id: ProfileId::from_trusted(r.get(0)),
        name: r.get(1),
        email: r.get(2),
        last_seen: r.get::<_, Option<i64>>(3).map(from_millis),
        event_count: r.get(4),
        channels: channels_from_bits(r.get(5)),
    }
}

pub(super) async fn search_profiles(
    tx: &Tx<'_>,
    ws: &str,
    query_text: &str,
    limit: usize,
) -> Result<Vec<ProfileSummary>, StoreError> {
    let q = query_text.trim().to_lowercase();
    if q.is_empty() {
        return recent_profiles(tx, ws, limit).await;
    }
    // Prefix ranges on "C"-collated columns, so each arm uses its index and compares code
    // points as SQLite does.
    let hi = format!("{q}\u{10FFFF}");
    let rows = query(
        tx,
        "SELECT id, name, email, last_seen, event_count, channels FROM profiles
         WHERE workspace_id = $1 AND merged_into IS NULL AND
           ((name_lc >= $2 AND name_lc < $3) OR (last_lc >= $2 AND last_lc < $3) OR (email >= $2 AND email < $3))
         ORDER BY last_seen DESC NULLS LAST LIMIT $4",
        &[&ws, &q, &hi, &(limit as i64)],
    )
    .await
    .map_err(pg_error)?;
    Ok(rows.iter().map(summary_row).collect())
}

pub(super) async fn recent_profiles(
    tx: &Tx<'_>,
    ws: &str,
    limit: usize,
) -> Result<Vec<ProfileSummary>, StoreError> {
    let rows = query(
        tx,
        "SELECT id, name, email, last_seen, event_count, channels FROM profiles
         WHERE workspace_id = $1 AND merged_into IS NULL
         ORDER BY last_seen DESC NULLS LAST LIMIT $2",
        &[&ws, &(limit as i64)],
    )
    .await
    .map_err(pg_error)?;
    Ok(rows.iter().map(summary_row).collect())
}

const CONVERSATION_COLUMNS: &str =
    "id, profile_id, channel, subject, status, opened_at, updated_at, message_count";

fn conversation_from(r: &Row) -> Result<Conversation, StoreError> {
    let (channel, status): (String, String) = (r.get(2), r.get(4));
    let (Some(channel), Some(status)) = (
        ConversationChannel::parse(&channel),
        ConversationStatus::parse(&status),
    ) else {
        return Err(corrupt("conversation"));
    };
    Ok(Conversation {
        id: ConversationId::from_trusted(r.get(0)),
        profile_id: ProfileId::from_trusted(r.get(1)),
        channel,
        subject: r.get(3),
        status,
        opened_at: from_millis(r.get(5)),
        updated_at: from_millis(r.get(6)),
        message_count: r.get(7),
    })
}

pub(super) async fn conversation_row(
    tx: &Tx<'_>,
    ws: &str,
    id: &str,
) -> Result<Option<Conversation>, StoreError> {
    let sql = format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1 AND workspace_id = $2"
    );
    query_opt(tx, &sql, &[&id, &ws])
        .await
        .map_err(pg_error)?
        .map(|r| conversation_from(&r))
        .transpose()
}

pub(super) async fn profile_conversations(
    tx: &Tx<'_>,
    ws: &str,
    id: &str,
) -> Result<Option<Vec<Conversation>>, StoreError> {
    let Some(id) = canonical_profile(tx, ws, id).await? else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE profile_id = $1 AND workspace_id = $2
         ORDER BY updated_at DESC"
    );
    query(tx, &sql, &[&id, &ws])
        .await
        .map_err(pg_error)?
        .iter()
        .map(conversation_from)
        .collect::<Result<_, _>>()
        .map(Some)
}

pub(super) async fn recent_conversations(
    tx: &Tx<'_>,
    ws: &str,
    limit: usize,
) -> Result<Vec<Conversation>, StoreError> {
    let sql = format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE workspace_id = $1
         ORDER BY updated_at DESC LIMIT $2"
    );
    query(tx, &sql, &[&ws, &(limit as i64)])
        .await
        .map_err(pg_error)?
        .iter()
        .map(conversation_from)
        .collect()
}

const MESSAGE_COLUMNS: &str =
    "id, conversation_id, direction, author, text, sent_at, external_id, analysis";

fn message_from(r: &Row) -> Result<Message, StoreError> {
    let (direction, author): (String, String) = (r.get(2), r.get(3));
    let (Some(direction), Some(author)) = (Direction::parse(&direction), Author::parse(&author))
    else {
        return Err(corrupt("message"));
    };
    Ok(Message {
        id: MessageId::from_trusted(r.get(0)),
        conversation_id: ConversationId::from_trusted(r.get(1)),
        direction,
        author,
        text: r.get(4),
        sent_at: from_millis(r.get(5)),
        external_id: r.get(6),
        analysis: r
            .get::<_, Option<String>>(7)
            .and_then(|a| serde_json::from_str(&a).ok()),
    })
}

pub(super) async fn messages(tx: &Tx<'_>, conversation: &str) -> Result<Vec<Message>, StoreError> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 ORDER BY sent_at, seq"
    );
    query(tx, &sql, &[&conversation])
        .await
        .map_err(pg_error)?
        .iter()
        .map(message_from)
        .collect()
}

pub(super) async fn message_by_external(
    tx: &Tx<'_>,
    conversation: &str,
    external: &str,
) -> Result<Option<Message>, StoreError> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND external_id = $2"
    );
    query_opt(tx, &sql, &[&conversation, &external])
        .await
        .map_err(pg_error)?
        .map(|r| message_from(&r))
        .transpose()
}

pub(super) fn workspace_from(r: &Row) -> Workspace {
    Workspace {
        id: rapport_core::WorkspaceId::from_trusted(r.get(0)),
        name: rapport_core::WorkspaceName::from_trusted(r.get(1)),
        created_at: from_millis(r.get(2)),
    }
}

pub(super) async fn merges(
    tx: &Tx<'_>,
    ws: &str,
    canonical: &str,
) -> Result<Vec<MergeRecord>, StoreError> {
    let rows = query(
        tx,
        &format!(
            "SELECT {} FROM merge_log
             WHERE workspace_id = $1 AND (survivor = $2
                OR survivor IN (SELECT id FROM profiles WHERE merged_into = $2))
             ORDER BY seq",
            super::unmerge::MERGE_COLUMNS
        ),
        &[&ws, &canonical],
    )
    .await
    .map_err(pg_error)?;
    Ok(rows.iter().map(super::unmerge::merge_from).collect())
}
