//! Queue choice and the routing pass: timeouts, SLA deadlines, and offers to agents.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rapport_core::routing::{EntryStatus, Presence, RouteAgent, RouteEntry, RouteQueue, Slug};

use super::priority::{explain, level_of, refresh_sla};
use super::RoutingPolicy;

/// Why an agent's request about an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("the conversation is not offered to or held by agent {0}")]
    NotYours(String),
    #[error("the conversation is finished")]
    Finished,
}

/// The queue a conversation goes to: the human queue for a customer who asked for a person;
/// otherwise the first (by id) queue listing the conversation's intent, else the first queue
/// listing no intents, else the first queue that is not the human queue. `None` when the
/// workspace has no queue that fits (routing is not set up).
pub fn choose_queue<'a>(
    queues: &'a [RouteQueue],
    intent: Option<&str>,
    asked_for_human: bool,
) -> Option<&'a RouteQueue> {
    let mut sorted: Vec<&RouteQueue> = queues.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    if asked_for_human {
        if let Some(q) = sorted.iter().find(|q| q.human) {
            return Some(q);
        }
    }
    let regular = || sorted.iter().filter(|q| !q.human);
    intent
        .and_then(|i| regular().find(|q| q.intents.contains(i)))
        .or_else(|| regular().find(|q| q.intents.is_empty()))
        .or_else(|| regular().next())
        .copied()
}

/// The order of waiting conversations: customers who asked for a person first, then by
/// priority score, then the longest waiting, then by id so the order is total.
pub fn queue_order(a: &RouteEntry, b: &RouteEntry) -> Ordering {
    b.priority
        .asked_for_human
        .cmp(&a.priority.asked_for_human)
        .then(b.priority.score.total_cmp(&a.priority.score))
        .then(a.enqueued_at.cmp(&b.enqueued_at))
        .then(a.id.cmp(&b.id))
}

/// What one routing pass changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routed {
    /// Every entry that changed (priorities refreshed, offers made or withdrawn, deadlines
    /// marked), as it should be stored.
    pub changed: Vec<RouteEntry>,
    /// Ids of the entries offered to an agent in this pass, in the order they were offered.
    pub offered: Vec<String>,
    /// Ids of the entries whose offer timed out in this pass.
    pub timed_out: Vec<String>,
    /// Ids of the entries that passed their SLA deadline in this pass.
    pub breached: Vec<String>,
}

fn prefers_senior(e: &RouteEntry, policy: &RoutingPolicy) -> bool {
    e.priority.asked_for_human
        || e.priority.score >= policy.senior_score
        || level_of(&e.priority, "customer_value").is_some_and(|v| v >= policy.senior_value)
}

/// One routing pass over a workspace's open entries as of `now`:
///
/// 1. offers not accepted within the accept timeout go back to waiting, and that agent is not
///    offered the conversation again;
/// 2. entries not yet accepted past their SLA deadline are marked breached (once);
/// 3. waiting entries' SLA parts are brought up to date, then, in [`queue_order`], each is
///    offered to an agent who is available, has every skill its queue needs, has free capacity
///    and did not let it time out before. For a high-priority or high-value case (or a
///    customer who asked for a person) the most senior such agent is chosen; otherwise the
///    least loaded, juniors first, keeping seniors free for the hard cases.
///
/// Load is counted from the entries given (offered and accepted ones), so an agent is never
/// offered more than its capacity. Entries of queues not given are left waiting.
pub fn route(
    queues: &[RouteQueue],
    agents: &[RouteAgent],
    entries: &[RouteEntry],
    policy: &RoutingPolicy,
    now: DateTime<Utc>,
) -> Routed {
    let timeout = chrono::Duration::from_std(policy.accept_timeout)
        .unwrap_or_else(|_| chrono::Duration::seconds(120));
    let mut out = Routed::default();
    let mut open: Vec<RouteEntry> = entries
        .iter()
        .filter(|e| e.status.is_open())
        .cloned()
        .collect();
    let mut touched = vec![false; open.len()];

    for (i, e) in open.iter_mut().enumerate() {
        if e.status == EntryStatus::Offered && e.offered_at.is_some_and(|t| t + timeout <= now) {
            let agent = e.agent_id.take();
            e.status = EntryStatus::Waiting;
            e.offered_at = None;
            let why = format!(
                "not accepted within {}s; back in the queue",
                policy.accept_timeout.as_secs()
            );
            if let Some(a) = &agent {
                e.declined_by.insert(a.clone());
            }
            e.step(now, "offer_timed_out", agent, why);
            out.timed_out.push(e.id.clone());
            touched[i] = true;
        }
        if matches!(e.status, EntryStatus::Waiting | EntryStatus::Offered)
            && e.sla_breached_at.is_none()
            && now > e.sla_deadline
        {
            e.sla_breached_at = Some(now);
            let why = format!(
                "no agent accepted it before its {} deadline",
                e.priority.tier.as_str()
            );
            e.step(now, "sla_breached", None, why);
            out.breached.push(e.id.clone());
            touched[i] = true;
        }
        if e.status == EntryStatus::Waiting {
            e.priority = refresh_sla(&e.priority, e.enqueued_at, now, policy);
            touched[i] = true;
        }
    }

    let mut load: HashMap<&str, u32> = HashMap::new();
    for e in open.iter().filter(|e| e.status.holds_agent()) {
        if let Some(a) = &e.agent_id {
            *load.entry(a.as_str()).or_default() += 1;
        }
    }
    let mut load: HashMap<String, u32> = load.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let queue_skills: HashMap<&Slug, &RouteQueue> = queues.iter().map(|q| (&q.id, q)).collect();

    let mut waiting: Vec<usize> = (0..open.len())
        .filter(|&i| open[i].status == EntryStatus::Waiting)
        .collect();
    waiting.sort_by(|&a, &b| queue_order(&open[a], &open[b]));

    for i in waiting {
        let e = &open[i];
        let Some(queue) = queue_skills.get(&e.queue_id) else {
            continue;
        };
        let eligible = agents.iter().filter(|a| {
            a.presence == Presence::Available
                && queue.skills.is_subset(&a.skills)
                && !e.declined_by.contains(&a.id)
                && load.get(a.id.as_str()).copied().unwrap_or(0) < a.capacity
        });
        let senior = prefers_senior(e, policy);
        let ratio = |a: &RouteAgent| {
            f64::from(load.get(a.id.as_str()).copied().unwrap_or(0)) / f64::from(a.capacity)
        };
        let chosen = eligible.min_by(|a, b| {
            let by_seniority = if senior {
                b.seniority.cmp(&a.seniority)
            } else {
                Ordering::Equal
            };
            by_seniority
                .then(ratio(a).total_cmp(&ratio(b)))
                .then(a.seniority.cmp(&b.seniority))
                .then(a.id.cmp(&b.id))
        });
        let Some(agent) = chosen else {
            continue;
        };
        let held = load.entry(agent.id.as_str().to_owned()).or_default();
        let why_agent = format!(
            "{} (seniority {}{}, load {}/{}{})",
            agent.id,
            agent.seniority,
            if senior { ", senior preferred" } else { "" },
            *held,
            agent.capacity,
            if queue.skills.is_empty() {
                String::new()
            } else {
                format!(
                    ", skills {}",
                    queue
                        .skills
                        .iter()
                        .map(Slug::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        *held += 1;
        let e = &mut open[i];
        e.status = EntryStatus::Offered;
        e.agent_id = Some(agent.id.clone());
        e.offered_at = Some(now);
        let why = format!("offered to {why_agent}: {}", explain(&e.priority));
        e.step(now, "offered", Some(agent.id.clone()), why);
        out.offered.push(e.id.clone());
        touched[i] = true;
    }

    out.changed = open
        .into_iter()
        .zip(touched)
        .filter_map(|(e, t)| t.then_some(e))
        .collect();
    out
}

/// The agent takes the conversation offered to it (accepting again changes nothing).
pub fn accept(e: &mut RouteEntry, agent: &Slug, now: DateTime<Utc>) -> Result<bool, RouteError> {
    match e.status {
        EntryStatus::Finished => Err(RouteError::Finished),
        EntryStatus::Accepted if e.agent_id.as_ref() == Some(agent) => Ok(false),
        EntryStatus::Offered if e.agent_id.as_ref() == Some(agent) => {
            e.status = EntryStatus::Accepted;
            e.accepted_at = Some(now);
            e.step(
                now,
                "accepted",
                Some(agent.clone()),
                "the agent took it".into(),
            );
            Ok(true)
        }
        _ => Err(RouteError::NotYours(agent.to_string())),
    }
}

/// The agent is done with the conversation; its capacity frees.
pub fn finish(e: &mut RouteEntry, agent: &Slug, now: DateTime<Utc>) -> Result<(), RouteError> {
    match e.status {
        EntryStatus::Finished => Err(RouteError::Finished),
        EntryStatus::Offered | EntryStatus::Accepted if e.agent_id.as_ref() == Some(agent) => {
            e.status = EntryStatus::Finished;
            e.finished_at = Some(now);
            e.step(
                now,
                "finished",
                Some(agent.clone()),
                "the agent closed it".into(),
            );
            Ok(())
        }
        _ => Err(RouteError::NotYours(agent.to_string())),
    }
}
