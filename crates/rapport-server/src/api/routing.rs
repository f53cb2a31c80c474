//! Routing (`/v1/routing/...`): queues, agents, the conversations waiting in a queue with
//! their priority and its reasons, and agents accepting and finishing conversations.
//!
//! Supervisors and admins (`manage_routing`) set queues and agents up; an agent
//! (`read_customers`) reads queues, changes its own presence, and accepts and finishes the
//! conversations offered to it, where its agent id is its login.

use std::collections::{BTreeSet, HashMap};

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rapport_core::routing::{
    EntryStatus, Presence, PriorityPart, RouteAgent, RouteEntry, RouteQueue, Slug,
};
use rapport_core::{AuditEntry, ErrorKind, Permission};
use rapport_decide::routing::assign::queue_order;
use rapport_decide::routing::priority::{explain, refresh_sla};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::extract::{Json, Path};
use crate::auth::{perm, Caller, Can, Principal};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::routing::RoutingError;
use crate::AppState;

fn slugs(field: &str, raw: &[String], problems: &mut Vec<String>) -> BTreeSet<Slug> {
    raw.iter()
        .filter_map(|s| {
            Slug::parse(s)
                .map_err(|m| problems.push(format!("{field}: {m}")))
                .ok()
        })
        .collect()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueDto {
    pub id: String,
    pub skills: Vec<String>,
    pub intents: Vec<String>,
    pub human: bool,
    /// Conversations waiting in it now (not yet offered to an agent).
    pub waiting: usize,
    pub created_at: DateTime<Utc>,
}

fn queue_dto(q: RouteQueue, waiting: usize) -> QueueDto {
    QueueDto {
        id: q.id.to_string(),
        skills: q.skills.iter().map(Slug::to_string).collect(),
        intents: q.intents.into_iter().collect(),
        human: q.human,
        waiting,
        created_at: q.created_at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueListDto {
    pub queues: Vec<QueueDto>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateQueueRequest {
    /// 1-40 characters of a-z, 0-9, '_' and '-'; unique in the workspace.
    pub id: String,
    /// Skills an agent needs to take from this queue.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Intents routed here (the queue with none takes the rest).
    #[serde(default)]
    pub intents: Vec<String>,
    /// The queue of customers who ask for a person.
    #[serde(default)]
    pub human: bool,
}

/// The workspace's queues, with how many conversations wait in each.
#[utoipa::path(get, path = "/v1/routing/queues", tag = "routing",
    responses((status = 200, body = QueueListDto), (status = 403, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn list_queues(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
) -> ApiResult<axum::Json<QueueListDto>> {
    let ws = &caller.workspace_id;
    let entries = state.store.route_entries(ws, true, 10_000).await?;
    let mut waiting: HashMap<Slug, usize> = HashMap::new();
    for e in entries.iter().filter(|e| e.status == EntryStatus::Waiting) {
        *waiting.entry(e.queue_id.clone()).or_default() += 1;
    }
    let queues = state.store.route_queues(ws).await?;
    Ok(axum::Json(QueueListDto {
        queues: queues
            .into_iter()
            .map(|q| {
                let n = waiting.get(&q.id).copied().unwrap_or(0);
                queue_dto(q, n)
            })
            .collect(),
    }))
}

/// Creates a queue. 400 `invalid_queue` with every problem; 409 `queue_exists`. Audited.
#[utoipa::path(post, path = "/v1/routing/queues", tag = "routing",
    request_body = CreateQueueRequest,
    responses((status = 201, body = QueueDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn create_queue(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageRouting>,
    Json(req): Json<CreateQueueRequest>,
) -> ApiResult<(StatusCode, axum::Json<QueueDto>)> {
    let mut problems = Vec::new();
    let id = Slug::parse(&req.id)
        .map_err(|m| problems.push(format!("id: {m}")))
        .ok();
    let skills = slugs("skills", &req.skills, &mut problems);
    let intents: BTreeSet<String> = req.intents.iter().map(|i| i.trim().to_owned()).collect();
    if intents.iter().any(|i| i.is_empty() || i.len() > 100) {
        problems.push("intents: each must be 1 to 100 characters".into());
    }
    let (Some(id), true) = (id, problems.is_empty()) else {
        return Err(ApiError::invalid("invalid_queue", problems.join("; ")));
    };
    let ws = &caller.workspace_id;
    let existing = state.store.route_queues(ws).await?;
    if existing.iter().any(|q| q.id == id) {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            "queue_exists",
            format!("queue {id} exists"),
        ));
    }
    if req.human && existing.iter().any(|q| q.human) {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            "human_queue_exists",
            "the workspace has a human queue already",
        ));
    }
    let queue = RouteQueue {
        id,
        skills,
        intents,
        human: req.human,
        created_at: Utc::now(),
    };
    let q = state.store.save_route_queue(ws, queue).await?;
    audit(
        &state,
        &caller,
        "routing.queue_created",
        q.id.as_str(),
        json!({"queue": q}),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(queue_dto(q, 0))))
}

async fn audit(
    state: &AppState,
    caller: &Caller,
    action: &str,
    subject: &str,
    details: serde_json::Value,
) -> ApiResult<()> {
    let entry = AuditEntry::new(
        Some(caller.workspace_id.clone()),
        caller.actor(),
        action,
        Some(subject.to_owned()),
        details,
    );
    state.store.append_audit(vec![entry]).await?;
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartDto {
    /// `urgency`, `sentiment`, `trajectory`, `churn_risk`, `customer_value` or `sla`.
    pub signal: String,
    /// The signal on 0..1, or null when it was not known.
    pub level: Option<f64>,
    pub weight: f64,
    pub contribution: f64,
    pub detail: String,
}

impl From<PriorityPart> for PartDto {
    fn from(p: PriorityPart) -> Self {
        PartDto {
            signal: p.signal,
            level: p.level,
            weight: p.weight,
            contribution: p.contribution,
            detail: p.detail,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepDto {
    pub at: DateTime<Utc>,
    pub what: String,
    pub agent_id: Option<String>,
    pub why: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryDto {
    pub id: String,
    pub conversation_id: String,
    pub profile_id: String,
    pub queue_id: String,
    /// `waiting`, `offered`, `accepted` or `finished`.
    pub status: String,
    pub agent_id: Option<String>,
    pub priority: f64,
    /// `low`, `normal`, `high` or `urgent`: the SLA tier.
    pub tier: String,
    pub asked_for_human: bool,
    /// The priority in one sentence.
    pub why: String,
    pub parts: Vec<PartDto>,
    pub enqueued_at: DateTime<Utc>,
    pub sla_deadline: DateTime<Utc>,
    pub sla_breached: bool,
    pub history: Vec<StepDto>,
}

impl From<RouteEntry> for EntryDto {
    fn from(e: RouteEntry) -> Self {
        EntryDto {
            why: explain(&e.priority),
            id: e.id,
            conversation_id: e.conversation_id,
            profile_id: e.profile_id,
            queue_id: e.queue_id.to_string(),
            status: e.status.as_str().to_owned(),
            agent_id: e.agent_id.map(|a| a.to_string()),
            priority: e.priority.score,
            tier: e.priority.tier.as_str().to_owned(),
            asked_for_human: e.priority.asked_for_human,
            parts: e.priority.parts.into_iter().map(PartDto::from).collect(),
            enqueued_at: e.enqueued_at,
            sla_deadline: e.sla_deadline,
            sla_breached: e.sla_breached_at.is_some() || Utc::now() > e.sla_deadline,
            history: e
                .history
                .into_iter()
                .map(|s| StepDto {
                    at: s.at,
                    what: s.what,
                    agent_id: s.agent_id.map(|a| a.to_string()),
                    why: s.why,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueEntriesDto {
    pub queue: QueueDto,
    /// Waiting conversations, the next to be offered first, priorities as of now.
    pub waiting: Vec<EntryDto>,
    /// Conversations offered to or held by an agent.
    pub assigned: Vec<EntryDto>,
}

/// A queue's open conversations: those waiting, in the order they will be offered (customers
/// who asked for a person first, then by priority), each with its priority's parts; and those
/// offered to or held by an agent. 404 `not_found` for an unknown queue.
pub async fn queue_entries_of(
    state: &AppState,
    ws: &rapport_core::WorkspaceId,
    queue: &str,
) -> ApiResult<QueueEntriesDto> {
    let q = Slug::parse(queue).map_err(|_| ApiError::not_found(format!("queue {queue}")))?;
    let Some(found) = state
        .store
        .route_queues(ws)
        .await?
        .into_iter()
        .find(|x| x.id == q)
    else {
        return Err(ApiError::not_found(format!("queue {queue}")));
    };
    let now = Utc::now();
    let policy = state.engine.routing_policy();
    let mut open: Vec<RouteEntry> = state
        .store
        .route_entries(ws, true, 10_000)
        .await?
        .into_iter()
        .filter(|e| e.queue_id == q)
        .collect();
    for e in open.iter_mut().filter(|e| e.status == EntryStatus::Waiting) {
        e.priority = refresh_sla(&e.priority, e.enqueued_at, now, policy);
    }
    let (mut waiting, assigned): (Vec<_>, Vec<_>) = open
        .into_iter()
        .partition(|e| e.status == EntryStatus::Waiting);
    waiting.sort_by(queue_order);
    Ok(QueueEntriesDto {
        queue: queue_dto(found, waiting.len()),
        waiting: waiting.into_iter().map(EntryDto::from).collect(),
        assigned: assigned.into_iter().map(EntryDto::from).collect(),
    })
}

/// A queue's open conversations with their priority and its reasons (see the fields).
#[utoipa::path(get, path = "/v1/routing/queues/{id}/entries", tag = "routing",
    params(("id" = String, Path)),
    responses((status = 200, body = QueueEntriesDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn queue_entries(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<QueueEntriesDto>> {
    Ok(axum::Json(
        queue_entries_of(&state, &caller.workspace_id, &id).await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentDto {
    pub id: String,
    pub name: String,
    pub skills: Vec<String>,
    pub capacity: u32,
    /// `available`, `away` or `offline`.
    pub presence: String,
    pub seniority: u8,
    /// Conversations offered to or held by the agent now.
    pub load: u32,
    pub updated_at: DateTime<Utc>,
}

fn agent_dto(a: RouteAgent, load: u32) -> AgentDto {
    AgentDto {
        id: a.id.to_string(),
        name: a.name,
        skills: a.skills.iter().map(Slug::to_string).collect(),
        capacity: a.capacity,
        presence: a.presence.as_str().to_owned(),
        seniority: a.seniority,
        load,
        updated_at: a.updated_at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentListDto {
    pub agents: Vec<AgentDto>,
}

/// Each agent's load: open entries offered to or held by it.
pub async fn loads(
    state: &AppState,
    ws: &rapport_core::WorkspaceId,
) -> ApiResult<HashMap<Slug, u32>> {
    let mut load = HashMap::new();
    for e in state.store.route_entries(ws, true, 10_000).await? {
        if let (true, Some(a)) = (e.status.holds_agent(), e.agent_id) {
            *load.entry(a).or_default() += 1;
        }
    }
    Ok(load)
}

/// The workspace's agents with their load.
#[utoipa::path(get, path = "/v1/routing/agents", tag = "routing",
    responses((status = 200, body = AgentListDto), (status = 403, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn list_agents(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
) -> ApiResult<axum::Json<AgentListDto>> {
    let ws = &caller.workspace_id;
    let load = loads(&state, ws).await?;
    let agents = state.store.route_agents(ws).await?;
    Ok(axum::Json(AgentListDto {
        agents: agents
            .into_iter()
            .map(|a| {
                let n = load.get(&a.id).copied().unwrap_or(0);
                agent_dto(a, n)
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgentRequest {
    /// 1-40 characters of a-z, 0-9, '_' and '-'; an agent who signs in uses its login.
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub skills: Vec<String>,
    /// 1 to 50 conversations at once.
    pub capacity: u32,
    /// `available`, `away` or `offline` (default `offline`).
    pub presence: Option<String>,
    /// 0 to 5 (default 0).
    #[serde(default)]
    pub seniority: u8,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgentRequest {
    pub name: Option<String>,
    pub skills: Option<Vec<String>>,
    pub capacity: Option<u32>,
    pub presence: Option<String>,
    pub seniority: Option<u8>,
}

fn presence(raw: &str, problems: &mut Vec<String>) -> Option<Presence> {
    let p = Presence::parse(raw.trim());
    if p.is_none() {
        problems.push(format!(
            "presence {raw:?} is not one of available, away, offline"
        ));
    }
    p
}

fn invalid_agent(problems: Vec<String>) -> ApiError {
    ApiError::invalid("invalid_agent", problems.join("; "))
}

/// Creates an agent. 400 `invalid_agent` with every problem (capacity 1-50, seniority 0-5,
/// presence, skills); 409 `agent_exists`. Audited.
#[utoipa::path(post, path = "/v1/routing/agents", tag = "routing",
    request_body = CreateAgentRequest,
    responses((status = 201, body = AgentDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn create_agent(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ManageRouting>,
    Json(req): Json<CreateAgentRequest>,
) -> ApiResult<(StatusCode, axum::Json<AgentDto>)> {
    let mut problems = Vec::new();
    let id = Slug::parse(&req.id)
        .map_err(|m| problems.push(format!("id: {m}")))
        .ok();
    let skills = slugs("skills", &req.skills, &mut problems);
    let presence = match &req.presence {
        Some(p) => presence(p, &mut problems),
        None => Some(Presence::Offline),
    };
    let (Some(id), Some(presence)) = (id, presence) else {
        return Err(invalid_agent(problems));
    };
    let agent = RouteAgent {
        id,
        name: req.name.trim().to_owned(),
        skills,
        capacity: req.capacity,
        presence,
        seniority: req.seniority,
        updated_at: Utc::now(),
    };
    if let Err(m) = agent.check() {
        problems.push(m);
    }
    if !problems.is_empty() {
        return Err(invalid_agent(problems));
    }
    let ws = &caller.workspace_id;
    if state
        .store
        .route_agents(ws)
        .await?
        .iter()
        .any(|a| a.id == agent.id)
    {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            "agent_exists",
            format!("agent {} exists", agent.id),
        ));
    }
    let a = state.store.save_route_agent(ws, agent).await?;
    audit(
        &state,
        &caller,
        "routing.agent_created",
        a.id.as_str(),
        json!({"agent": a}),
    )
    .await?;
    state.engine.route_pass(ws).await?;
    Ok((StatusCode::CREATED, axum::Json(agent_dto(a, 0))))
}

/// Whether the caller may act as agent `id`: with `manage_routing`, as anyone; otherwise only
/// as itself (a signed-in person whose login is the agent id).
fn may_act_as(caller: &Caller, id: &Slug) -> Result<(), ApiError> {
    if caller.role.allows(Permission::ManageRouting) {
        return Ok(());
    }
    match &caller.principal {
        Principal::User { login, .. } if login == id.as_str() => Ok(()),
        _ => Err(ApiError::new(
            ErrorKind::Forbidden,
            "not_your_agent",
            format!("only agent {id} or a supervisor may do this"),
        )),
    }
}

/// Changes an agent's name, skills, capacity, presence or seniority (only the fields given).
/// An agent may change its own presence; anything else needs `manage_routing`. A capacity
/// lowered below the current load takes nothing away: the agent gets no more until under it.
/// 400 `invalid_agent`, 404 for an unknown agent. Audited; waiting conversations are offered
/// again at once.
#[utoipa::path(patch, path = "/v1/routing/agents/{id}", tag = "routing",
    params(("id" = String, Path)), request_body = UpdateAgentRequest,
    responses((status = 200, body = AgentDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn update_agent(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Path(id): Path<String>,
    Json(req): Json<UpdateAgentRequest>,
) -> ApiResult<axum::Json<AgentDto>> {
    let ws = &caller.workspace_id;
    let Some(mut agent) = (match Slug::parse(&id) {
        Ok(slug) => state
            .store
            .route_agents(ws)
            .await?
            .into_iter()
            .find(|a| a.id == slug),
        Err(_) => None,
    }) else {
        return Err(ApiError::not_found(format!("agent {id}")));
    };
    let only_presence = req.name.is_none()
        && req.skills.is_none()
        && req.capacity.is_none()
        && req.seniority.is_none();
    if only_presence {
        may_act_as(&caller, &agent.id)?;
    } else if !caller.role.allows(Permission::ManageRouting) {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "forbidden",
            "changing an agent's name, skills, capacity or seniority needs manage_routing",
        ));
    }
    let mut problems = Vec::new();
    if let Some(n) = &req.name {
        agent.name = n.trim().to_owned();
    }
    if let Some(s) = &req.skills {
        agent.skills = slugs("skills", s, &mut problems);
    }
    if let Some(c) = req.capacity {
        agent.capacity = c;
    }
    if let Some(s) = req.seniority {
        agent.seniority = s;
    }
    if let Some(p) = &req.presence {
        if let Some(p) = presence(p, &mut problems) {
            agent.presence = p;
        }
    }
    if let Err(m) = agent.check() {
        problems.push(m);
    }
    if !problems.is_empty() {
        return Err(invalid_agent(problems));
    }
    agent.updated_at = Utc::now();
    let a = state.store.save_route_agent(ws, agent).await?;
    audit(
        &state,
        &caller,
        "routing.agent_updated",
        a.id.as_str(),
        json!({"agent": a}),
    )
    .await?;
    state.engine.route_pass(ws).await?;
    let load = loads(&state, ws).await?.get(&a.id).copied().unwrap_or(0);
    Ok(axum::Json(agent_dto(a, load)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentStepRequest {
    /// The agent accepting or finishing (a signed-in agent: its own login).
    pub agent_id: String,
}

fn routing_error(e: RoutingError) -> ApiError {
    match e {
        RoutingError::UnknownEntry(id) => ApiError::not_found(format!("queue entry {id}")),
        RoutingError::UnknownAgent(id) => ApiError::not_found(format!("agent {id}")),
        RoutingError::Refused(r) => {
            let code = match r {
                rapport_decide::routing::RouteError::NotYours(_) => "not_offered",
                rapport_decide::routing::RouteError::Finished => "already_finished",
            };
            ApiError::new(ErrorKind::Conflict, code, r.to_string())
        }
        RoutingError::Store(s) => s.into(),
    }
}

async fn agent_step(
    state: &AppState,
    caller: &Caller,
    entry: &str,
    req: &AgentStepRequest,
    accept: bool,
) -> ApiResult<EntryDto> {
    let agent = Slug::parse(&req.agent_id)
        .map_err(|m| ApiError::invalid("invalid_agent", format!("agent_id: {m}")))?;
    may_act_as(caller, &agent)?;
    let ws = &caller.workspace_id;
    let e = if accept {
        state
            .engine
            .accept_entry(ws, entry, &agent, caller.actor())
            .await
    } else {
        state
            .engine
            .finish_entry(ws, entry, &agent, caller.actor())
            .await
    }
    .map_err(routing_error)?;
    Ok(e.into())
}

/// The agent takes a conversation offered to it (again: no change). 409 `not_offered` when it
/// is offered to someone else or waiting, `already_finished`; 404 for an unknown entry or
/// agent. Audited.
#[utoipa::path(post, path = "/v1/routing/entries/{id}/accept", tag = "routing",
    params(("id" = String, Path)), request_body = AgentStepRequest,
    responses((status = 200, body = EntryDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn accept(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Path(id): Path<String>,
    Json(req): Json<AgentStepRequest>,
) -> ApiResult<axum::Json<EntryDto>> {
    Ok(axum::Json(
        agent_step(&state, &caller, &id, &req, true).await?,
    ))
}

/// The agent is done with a conversation; its capacity frees and waiting conversations are
/// offered at once. Same errors as accepting. Audited.
#[utoipa::path(post, path = "/v1/routing/entries/{id}/finish", tag = "routing",
    params(("id" = String, Path)), request_body = AgentStepRequest,
    responses((status = 200, body = EntryDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
pub async fn finish(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::ReadCustomers>,
    Path(id): Path<String>,
    Json(req): Json<AgentStepRequest>,
) -> ApiResult<axum::Json<EntryDto>> {
    Ok(axum::Json(
        agent_step(&state, &caller, &id, &req, false).await?,
    ))
}
