//! The demo's contact center: three queues (general support, billing, and the human queue),
//! three agents (one senior), and a morning's worth of waiting customers, so the Queue page
//! shows routing at work: a frustrated customer who wrote last jumps the queue to the senior
//! agent, a customer who asks for a person is in the human queue at once, and calm customers
//! wait their turn for the other agents.

use std::collections::BTreeSet;

use anyhow::{anyhow, Result};
use chrono::{Duration, Utc};
use rapport_core::routing::{Presence, RouteAgent, RouteQueue, Slug};
use rapport_core::{
    Author, ConversationChannel, CustomerRef, Direction, MessageText, NewConversation, NewMessage,
    WorkspaceId,
};
use rapport_server::engine::Engine;

fn slug(s: &str) -> Result<Slug> {
    Slug::parse(s).map_err(|e| anyhow!(e))
}

fn queue(id: &str, skills: &[&str], intents: &[&str], human: bool) -> Result<RouteQueue> {
    Ok(RouteQueue {
        id: slug(id)?,
        skills: skills.iter().map(|s| slug(s)).collect::<Result<_>>()?,
        intents: intents.iter().map(|s| (*s).to_owned()).collect(),
        human,
        created_at: Utc::now(),
    })
}

fn agent(id: &str, name: &str, skills: &[&str], seniority: u8) -> Result<RouteAgent> {
    Ok(RouteAgent {
        id: slug(id)?,
        name: name.into(),
        skills: skills
            .iter()
            .map(|s| slug(s))
            .collect::<Result<BTreeSet<_>>>()?,
        capacity: 2,
        presence: Presence::Away,
        seniority,
        updated_at: Utc::now(),
    })
}

/// What the demo's customers write, in this order (the frustrated one last but one).
const WAITING: [&[&str]; 7] = [
    &["Hi! Could you tell me how to update my delivery address?"],
    &["Hello, is there a student discount on the yearly plan?"],
    &["Can I change the colour of the router I ordered yesterday?"],
    &["Quick question: do you ship to Norway?"],
    &["How do I add a second user to my account?"],
    &[
        "My internet has been down since yesterday.",
        "This is the third time I write! The service is still down, I lost a day of work and I am furious. Terrible.",
    ],
    &["I want to talk to a human, please."],
];

/// Sets up the queues and agents and lets some of the demo company's customers write (new
/// conversations of existing profiles); returns how many are queued.
pub async fn seed(engine: &Engine, ws: &WorkspaceId) -> Result<usize> {
    let store = engine.store();
    for q in [
        queue("support", &[], &[], false)?,
        queue(
            "billing",
            &["billing"],
            &["billing_issue", "refund_request"],
            false,
        )?,
        queue("humans", &[], &[], true)?,
    ] {
        store.save_route_queue(ws, q).await?;
    }
    let team = [
        agent("maria", "Maria Senior", &["billing"], 4)?,
        agent("leo", "Leo", &["billing"], 1)?,
        agent("kim", "Kim", &[], 0)?,
    ];
    for a in &team {
        store.save_route_agent(ws, a.clone()).await?;
    }
    let start = Utc::now() - Duration::minutes(20);
    let customers = store.recent_profiles(ws, WAITING.len()).await?;
    for (i, (texts, customer)) in WAITING.iter().zip(&customers).enumerate() {
        let at = start + Duration::minutes(2 * i as i64);
        let conv = store
            .open_conversation(
                ws,
                CustomerRef::Profile(customer.id.clone()),
                NewConversation {
                    channel: ConversationChannel::Chat,
                    subject: None,
                    opened_at: at,
                },
            )
            .await?;
        for (k, text) in texts.iter().enumerate() {
            let message = NewMessage {
                direction: Direction::Inbound,
                author: Author::Customer,
                text: MessageText::parse(text).map_err(|e| anyhow!(e))?,
                sent_at: at + Duration::seconds(30 * k as i64),
                external_id: Some(format!("demo-routing-{i}-{k}")),
                analysis: None,
            };
            engine.add_message(ws, &conv.id, message).await?;
        }
    }
    // The senior agent starts the shift first and gets the case that needs them most; the
    // others follow and take the longest-waiting calm customers; the rest keep waiting.
    for mut a in team {
        a.presence = Presence::Available;
        a.updated_at = Utc::now();
        store.save_route_agent(ws, a).await?;
        engine.route_pass(ws).await?;
    }
    Ok(customers.len().min(WAITING.len()))
}
