//! Routing queues, agents and queue entries in PostgreSQL, as in `sqlite/routing.rs`. An
//! assignment locks its agent's row first, so two nodes giving the same agent a conversation at
//! once are serialised and the second sees the first's entry when it counts the agent's load.

use deadpool_postgres::Transaction;
use rapport_core::routing::{RouteAgent, RouteEntry, RouteQueue};
use rapport_core::time::to_millis;
use rapport_core::AuditEntry;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{exec, govern, pg_error, query, query_opt, Failure};
use crate::StoreError;

fn encode<T: Serialize>(what: &str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(format!("{what} encoding: {e}")))
}

fn decode<T: DeserializeOwned>(what: &str, body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body)
        .map_err(|_| StoreError::Internal(format!("unreadable {what} in the database")))
}

pub(super) async fn save_queue(
    tx: &Transaction<'_>,
    ws: &str,
    q: &RouteQueue,
) -> Result<RouteQueue, Failure> {
    exec(
        tx,
        "INSERT INTO route_queues (workspace_id, id, body) VALUES ($1, $2, $3)
         ON CONFLICT (workspace_id, id) DO UPDATE SET body = excluded.body",
        &[&ws, &q.id.as_str(), &encode("queue", q)?],
    )
    .await?;
    Ok(q.clone())
}

pub(super) async fn queues(tx: &Transaction<'_>, ws: &str) -> Result<Vec<RouteQueue>, StoreError> {
    query(
        tx,
        "SELECT body FROM route_queues WHERE workspace_id = $1 ORDER BY id COLLATE \"C\"",
        &[&ws],
    )
    .await
    .map_err(pg_error)?
    .iter()
    .map(|r| decode("queue", &r.get::<_, String>(0)))
    .collect()
}

pub(super) async fn save_agent(
    tx: &Transaction<'_>,
    ws: &str,
    a: &RouteAgent,
) -> Result<RouteAgent, Failure> {
    exec(
        tx,
        "INSERT INTO route_agents (workspace_id, id, capacity, body) VALUES ($1, $2, $3, $4)
         ON CONFLICT (workspace_id, id) DO UPDATE SET capacity = excluded.capacity,
            body = excluded.body",
        &[
            &ws,
            &a.id.as_str(),
            &i64::from(a.capacity),
            &encode("agent", a)?,
        ],
    )
    .await?;
    Ok(a.clone())
}

pub(super) async fn agents(tx: &Transaction<'_>, ws: &str) -> Result<Vec<RouteAgent>, StoreError> {
    query(
        tx,
        "SELECT body FROM route_agents WHERE workspace_id = $1 ORDER BY id COLLATE \"C\"",
        &[&ws],
    )
    .await
    .map_err(pg_error)?
    .iter()
    .map(|r| decode("agent", &r.get::<_, String>(0)))
    .collect()
}

async fn check_capacity(
    tx: &Transaction<'_>,
    ws: &str,
    agent: &str,
    entry: &str,
) -> Result<(), Failure> {
    let Some(row) = query_opt(
        tx,
        "SELECT capacity FROM route_agents WHERE workspace_id = $1 AND id = $2 FOR UPDATE",
        &[&ws, &agent],
    )
    .await?
    else {
        return Err(StoreError::NotFound(format!("agent {agent}")).into());
    };
    let capacity: i64 = row.get(0);
    let held: i64 = query_opt(
        tx,
        "SELECT COUNT(*) FROM route_entries WHERE workspace_id = $1 AND agent_id = $2
         AND status IN ('offered', 'accepted') AND id <> $3",
        &[&ws, &agent, &entry],
    )
    .await?
    .map_or(0, |r| r.get(0));
    if held >= capacity {
        return Err(StoreError::Conflict(format!(
            "agent {agent} is at capacity ({held} of {capacity})"
        ))
        .into());
    }
    Ok(())
}

pub(super) async fn save_entry(
    tx: &Transaction<'_>,
    ws: &str,
    mut e: RouteEntry,
    expected: Option<i64>,
    audit: &[AuditEntry],
) -> Result<RouteEntry, Failure> {
    let before: Option<(String, Option<String>)> = match expected {
        None => None,
        Some(_) => query_opt(
            tx,
            "SELECT status, agent_id FROM route_entries WHERE id = $1 AND workspace_id = $2",
            &[&e.id, &ws],
        )
        .await?
        .map(|r| (r.get(0), r.get(1))),
    };
    if e.status.holds_agent() {
        if let Some(agent) = &e.agent_id {
            let held_before = before.as_ref().is_some_and(|(status, a)| {
                matches!(status.as_str(), "offered" | "accepted")
                    && a.as_deref() == Some(agent.as_str())
            });
            if !held_before {
                check_capacity(tx, ws, agent.as_str(), &e.id).await?;
            }
        }
    }
    let agent = e.agent_id.as_ref().map(|a| a.as_str().to_owned());
    match expected {
        None => {
            e.version = 1;
            let inserted = exec(
                tx,
                "INSERT INTO route_entries (id, workspace_id, conversation_id, queue_id, status,
                    agent_id, enqueued_at, version, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) ON CONFLICT DO NOTHING",
                &[
                    &e.id,
                    &ws,
                    &e.conversation_id,
                    &e.queue_id.as_str(),
                    &e.status.as_str(),
                    &agent,
                    &to_millis(e.enqueued_at),
                    &encode("queue entry", &e)?,
                ],
            )
            .await?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!(
                    "conversation {} is already queued",
                    e.conversation_id
                ))
                .into());
            }
        }
        Some(v) => {
            e.version = v + 1;
            let changed = exec(
                tx,
                "UPDATE route_entries SET queue_id = $1, status = $2, agent_id = $3,
                    version = $4, body = $5
                 WHERE id = $6 AND workspace_id = $7 AND version = $8",
                &[
                    &e.queue_id.as_str(),
                    &e.status.as_str(),
                    &agent,
                    &e.version,
                    &encode("queue entry", &e)?,
                    &e.id,
                    &ws,
                    &v,
                ],
            )
            .await?;
            if changed == 0 {
                return Err(StoreError::Conflict(format!(
                    "queue entry {} changed since it was read; read it again",
                    e.id
                ))
                .into());
            }
        }
    }
    govern::append_audit(tx, audit).await?;
    Ok(e)
}

pub(super) async fn entry(
    tx: &Transaction<'_>,
    ws: &str,
    id: &str,
) -> Result<Option<RouteEntry>, StoreError> {
    query_opt(
        tx,
        "SELECT body FROM route_entries WHERE id = $1 AND workspace_id = $2",
        &[&id, &ws],
    )
    .await
    .map_err(pg_error)?
    .map(|r| decode("queue entry", &r.get::<_, String>(0)))
    .transpose()
}

pub(super) async fn open_entry(
    tx: &Transaction<'_>,
    ws: &str,
    conversation: &str,
) -> Result<Option<RouteEntry>, StoreError> {
    query_opt(
        tx,
        "SELECT body FROM route_entries WHERE workspace_id = $1 AND conversation_id = $2
         AND status <> 'finished'",
        &[&ws, &conversation],
    )
    .await
    .map_err(pg_error)?
    .map(|r| decode("queue entry", &r.get::<_, String>(0)))
    .transpose()
}

pub(super) async fn entries(
    tx: &Transaction<'_>,
    ws: &str,
    open_only: bool,
    limit: usize,
) -> Result<Vec<RouteEntry>, StoreError> {
    let sql = if open_only {
        "SELECT body FROM route_entries WHERE workspace_id = $1 AND status <> 'finished'
         ORDER BY enqueued_at, id COLLATE \"C\" LIMIT $2"
    } else {
        "SELECT body FROM route_entries WHERE workspace_id = $1
         ORDER BY enqueued_at DESC, id COLLATE \"C\" DESC LIMIT $2"
    };
    query(tx, sql, &[&ws, &(limit as i64)])
        .await
        .map_err(pg_error)?
        .iter()
        .map(|r| decode("queue entry", &r.get::<_, String>(0)))
        .collect()
}
