//! Routing queues, agents and queue entries in SQLite. Each is stored whole as JSON beside the
//! columns it is looked up by. The single writer thread makes the capacity check and the write
//! of an entry one step, so an agent is never given more than its capacity.

use rapport_core::routing::{RouteAgent, RouteEntry, RouteQueue};
use rapport_core::time::to_millis;
use rapport_core::AuditEntry;
use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::govern;
use crate::StoreError;

fn encode<T: Serialize>(what: &str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(format!("{what} encoding: {e}")))
}

fn decode<T: DeserializeOwned>(what: &str, body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body)
        .map_err(|_| StoreError::Internal(format!("unreadable {what} in the database")))
}

fn bodies<T: DeserializeOwned>(
    conn: &Connection,
    what: &str,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(args, |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for body in rows {
        out.push(decode(what, &body?)?);
    }
    Ok(out)
}

pub(super) fn save_queue(
    conn: &Connection,
    ws: &str,
    q: RouteQueue,
) -> Result<RouteQueue, StoreError> {
    conn.prepare_cached(
        "INSERT INTO route_queues (workspace_id, id, body) VALUES (?1, ?2, ?3)
         ON CONFLICT (workspace_id, id) DO UPDATE SET body = excluded.body",
    )?
    .execute(params![ws, q.id.as_str(), encode("queue", &q)?])?;
    Ok(q)
}

pub(super) fn queues(conn: &Connection, ws: &str) -> Result<Vec<RouteQueue>, StoreError> {
    bodies(
        conn,
        "queue",
        "SELECT body FROM route_queues WHERE workspace_id = ?1 ORDER BY id",
        [ws],
    )
}

pub(super) fn save_agent(
    conn: &Connection,
    ws: &str,
    a: RouteAgent,
) -> Result<RouteAgent, StoreError> {
    conn.prepare_cached(
        "INSERT INTO route_agents (workspace_id, id, capacity, body) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (workspace_id, id) DO UPDATE SET capacity = excluded.capacity,
            body = excluded.body",
    )?
    .execute(params![ws, a.id.as_str(), a.capacity, encode("agent", &a)?])?;
    Ok(a)
}

pub(super) fn agents(conn: &Connection, ws: &str) -> Result<Vec<RouteAgent>, StoreError> {
    bodies(
        conn,
        "agent",
        "SELECT body FROM route_agents WHERE workspace_id = ?1 ORDER BY id",
        [ws],
    )
}

/// Refuses to give `agent` one more entry when it holds its capacity already.
fn check_capacity(conn: &Connection, ws: &str, agent: &str, entry: &str) -> Result<(), StoreError> {
    let capacity: Option<i64> = conn
        .prepare_cached("SELECT capacity FROM route_agents WHERE workspace_id = ?1 AND id = ?2")?
        .query_row([ws, agent], |r| r.get(0))
        .optional()?;
    let Some(capacity) = capacity else {
        return Err(StoreError::NotFound(format!("agent {agent}")));
    };
    let held: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM route_entries WHERE workspace_id = ?1 AND agent_id = ?2
             AND status IN ('offered', 'accepted') AND id <> ?3",
        )?
        .query_row([ws, agent, entry], |r| r.get(0))?;
    if held >= capacity {
        return Err(StoreError::Conflict(format!(
            "agent {agent} is at capacity ({held} of {capacity})"
        )));
    }
    Ok(())
}

pub(super) fn save_entry(
    conn: &Connection,
    ws: &str,
    mut e: RouteEntry,
    expected: Option<i64>,
    audit: &[AuditEntry],
) -> Result<RouteEntry, StoreError> {
    let before: Option<(String, Option<String>)> = match expected {
        None => None,
        Some(_) => conn
            .prepare_cached(
                "SELECT status, agent_id FROM route_entries WHERE id = ?1 AND workspace_id = ?2",
            )?
            .query_row([e.id.as_str(), ws], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?,
    };
    if e.status.holds_agent() {
        if let Some(agent) = &e.agent_id {
            let held_before = before.as_ref().is_some_and(|(status, a)| {
                matches!(status.as_str(), "offered" | "accepted")
                    && a.as_deref() == Some(agent.as_str())
            });
            if !held_before {
                check_capacity(conn, ws, agent.as_str(), &e.id)?;
            }
        }
    }
    let agent = e.agent_id.as_ref().map(|a| a.as_str().to_owned());
    match expected {
        None => {
            let open: Option<String> = conn
                .prepare_cached(
                    "SELECT id FROM route_entries WHERE workspace_id = ?1
                     AND conversation_id = ?2 AND status <> 'finished'",
                )?
                .query_row([ws, e.conversation_id.as_str()], |r| r.get(0))
                .optional()?;
            if let Some(open) = open {
                return Err(StoreError::Conflict(format!(
                    "conversation {} is already queued ({open})",
                    e.conversation_id
                )));
            }
            e.version = 1;
            let inserted = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO route_entries (id, workspace_id, conversation_id,
                        queue_id, status, agent_id, enqueued_at, version, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8)",
                )?
                .execute(params![
                    e.id,
                    ws,
                    e.conversation_id,
                    e.queue_id.as_str(),
                    e.status.as_str(),
                    agent,
                    to_millis(e.enqueued_at),
                    encode("queue entry", &e)?
                ])?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("queue entry {} exists", e.id)));
            }
        }
        Some(v) => {
            e.version = v + 1;
            let changed = conn
                .prepare_cached(
                    "UPDATE route_entries SET queue_id = ?1, status = ?2, agent_id = ?3,
                        version = ?4, body = ?5
                     WHERE id = ?6 AND workspace_id = ?7 AND version = ?8",
                )?
                .execute(params![
                    e.queue_id.as_str(),
                    e.status.as_str(),
                    agent,
                    e.version,
                    encode("queue entry", &e)?,
                    e.id,
                    ws,
                    v
                ])?;
            if changed == 0 {
                return Err(StoreError::Conflict(format!(
                    "queue entry {} changed since it was read; read it again",
                    e.id
                )));
            }
        }
    }
    govern::append_audit(conn, audit)?;
    Ok(e)
}

pub(super) fn entry(
    conn: &Connection,
    ws: &str,
    id: &str,
) -> Result<Option<RouteEntry>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM route_entries WHERE id = ?1 AND workspace_id = ?2")?
        .query_row([id, ws], |r| r.get(0))
        .optional()?;
    body.as_deref()
        .map(|b| decode("queue entry", b))
        .transpose()
}

pub(super) fn open_entry(
    conn: &Connection,
    ws: &str,
    conversation: &str,
) -> Result<Option<RouteEntry>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached(
            "SELECT body FROM route_entries WHERE workspace_id = ?1 AND conversation_id = ?2
             AND status <> 'finished'",
        )?
        .query_row([ws, conversation], |r| r.get(0))
        .optional()?;
    body.as_deref()
        .map(|b| decode("queue entry", b))
        .transpose()
}

pub(super) fn entries(
    conn: &Connection,
    ws: &str,
    open_only: bool,
    limit: usize,
) -> Result<Vec<RouteEntry>, StoreError> {
    let sql = if open_only {
        "SELECT body FROM route_entries WHERE workspace_id = ?1 AND status <> 'finished'
         ORDER BY enqueued_at, id LIMIT ?2"
    } else {
        "SELECT body FROM route_entries WHERE workspace_id = ?1
         ORDER BY enqueued_at DESC, id DESC LIMIT ?2"
    };
    bodies(conn, "queue entry", sql, params![ws, limit as i64])
}
