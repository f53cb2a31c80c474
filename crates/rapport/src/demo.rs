//! `rapport demo`: builds a realistic company from a seed into a fresh demo store, serves the
//! dashboard, and keeps a trickle of live activity flowing. Data goes through the same ingest
//! validation and store as real traffic.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use chrono::Utc;
use rapport_core::{
    Author, ConversationChannel, CustomerRef, Direction, Identifier, IdentifierKind, KeyRole,
    MessageText, NewConversation, NewMessage, WorkspaceId, WorkspaceName,
};
use rapport_ingest::parse_value;
use rapport_server::engine::Engine;
use rapport_server::AppState;
use rapport_store::Store;

use crate::config::Config;
use crate::demo_data::{self, DemoConversation, DemoMessage};

/// Events per store call while loading history.
const CHUNK: usize = 2_000;
/// Chunks of history being validated or written at once.
const CHUNKS_IN_FLIGHT: usize = 3;
/// Conversations loaded concurrently (their writes share commits).
const PARALLEL_CONVERSATIONS: usize = 64;

pub async fn run(config: &Config) -> Result<()> {
    let started = Instant::now();
    let dir = &config.demo.data_dir;
    // The demo always starts from the same company: remove the previous demo's database.
    for suffix in ["", "-wal", "-shm"] {
        let path = rapport_store::sqlite::database_path(dir).with_extension(format!("db{suffix}"));
        if path.exists() {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    // The demo always uses an embedded store of its own, whatever backend real data uses: it
    // wipes that store on every start, which must never happen to a shared database.
    if config.storage.backend != "sqlite" {
        eprintln!(
            "The demo keeps its own embedded store in {} (storage.backend {:?} is for real data).",
            dir.display(),
            config.storage.backend
        );
    }
    let store = crate::cli::open_store(&crate::config::StorageConfig {
        backend: "sqlite".into(),
        data_dir: dir.clone(),
        ..Default::default()
    })
    .await?;
    let dyn_store: Arc<dyn Store> = store.clone();
    let ws = crate::cli::workspace_id(dyn_store.as_ref(), WorkspaceName::DEFAULT).await?;
    let (admin_key, _) =
        rapport_server::auth::create_key(dyn_store.as_ref(), &ws, KeyRole::Admin).await?;
    let (write_key, _) =
        rapport_server::auth::create_key(dyn_store.as_ref(), &ws, KeyRole::Write).await?;

    let mut options = config.engine_options_with_models()?;
    // The demo shows oversight at work: the example policy (unless one is configured) and
    // a scheduled fairness audit of its retention offers.
    if config.governance.policy_file.is_none() {
        options.policy = rapport_govern::policy::Policy::example();
    }
    if options.fairness_audits.is_empty() {
        options.fairness_audits = vec![crate::demo_decisions::demo_audit()];
    }
    if options.nba_catalog.is_none() {
        options.nba_catalog = Some(crate::demo_nba::catalog()?);
    }
    let mut state = AppState::new(dyn_store.clone(), config.limits(), options)?;
    state.demo_accounts = demo_accounts(dyn_store.as_ref(), &ws).await?;
    let engine = state.engine.clone();
    let listener = crate::cli::bind(&config.server.addr).await?;
    let addr = listener.local_addr()?;

    eprintln!(
        "Generating the demo company (seed {}, {} customers)...",
        config.demo.seed, config.demo.customers
    );
    let company = demo_data::generate(config.demo.seed, config.demo.customers, Utc::now());
    let events = company.events.len();
    load_events(engine.clone(), &ws, company.events).await?;
    let conversations = company.conversations.len();
    load_conversations(engine.clone(), &ws, company.conversations).await?;
    let seeded = crate::demo_decisions::seed(&engine, &ws, config.demo.customers).await?;
    let routed = crate::demo_routing::seed(&engine, &ws).await?;
    crate::demo_nba::seed(&engine, &ws, config.demo.customers).await?;
    let dedupe = crate::demo_dupes::seed(&engine, &ws, config.demo.customers).await?;
    for audit in engine.fairness_audits().to_vec() {
        engine
            .run_fairness_audit(&ws, &audit.name, rapport_core::Actor::System)
            .await
            .map_err(|e| anyhow!("demo fairness audit: {e}"))?;
    }
    // A churn model trained on the company's own history (point-in-time snapshots), so every
    // customer page shows a risk with its reasons; the scores follow in the background.
    // A very small company may have too few leavers to learn from: it runs without a model.
    match engine
        .train_churn(&ws, rapport_core::Actor::System, Some(true))
        .await
    {
        Ok(churn) => eprintln!(
            "Trained churn model version {} on {} snapshots (ROC-AUC {} on the held-out cut-off).",
            churn.version.version,
            churn.summary["rows"],
            churn
                .summary
                .pointer("/holdout/roc_auc")
                .and_then(serde_json::Value::as_f64)
                .map_or("n/a".to_owned(), |a| format!("{a:.3}"))
        ),
        Err(rapport_server::churn::ChurnError::Insufficient(why)) => {
            eprintln!("No churn model: {why}")
        }
        Err(e) => return Err(anyhow!("demo churn model: {e}")),
    }
    // Lifetime value from the shop's orders and escalation risk from past conversations,
    // both trained on the company's own data; routing and the alerts read them.
    // Lifetime value is activated as the first version always is; an escalation model only
    // when it beats the hand-set prior on the held-out conversations.
    for kind in [rapport_server::clv::KIND, rapport_server::escalation::KIND] {
        let activate = (kind == rapport_server::clv::KIND).then_some(true);
        match engine
            .train_model(&ws, kind, rapport_core::Actor::System, activate)
            .await
        {
            Ok(r) => {
                let h = &r.summary["holdout"];
                let check =
                    match kind {
                        rapport_server::clv::KIND => {
                            format!(
                        "held-out purchases: error per customer {} against {} for past rates",
                        h["mae"].as_f64().map_or("n/a".into(), |x| format!("{x:.3}")),
                        h["naive_mae"].as_f64().map_or("n/a".into(), |x| format!("{x:.3}"))
                    )
                        }
                        _ => format!(
                            "held-out ROC-AUC {} against {} for the prior",
                            h["roc_auc"]
                                .as_f64()
                                .map_or("n/a".into(), |x| format!("{x:.3}")),
                            h["prior_roc_auc"]
                                .as_f64()
                                .map_or("n/a".into(), |x| format!("{x:.3}"))
                        ),
                    };
                eprintln!(
                    "Trained {kind} model version {} ({check}).",
                    r.version.version
                )
            }
            Err(rapport_server::churn::ChurnError::Insufficient(why)) => {
                eprintln!("No {kind} model: {why}")
            }
            Err(e) => return Err(anyhow!("demo {kind} model: {e}")),
        }
    }
    eprintln!(
        "Dedupe: {} profiles, {} pairs scored, {} merged, {} waiting on the Duplicates page ({} refused by a guard), in {} ms.",
        dedupe.profiles_scanned,
        dedupe.candidate_pairs,
        dedupe.merged,
        dedupe.queued,
        dedupe.refused,
        dedupe.elapsed_ms
    );
    eprintln!(
        "Loaded {events} events, {conversations} conversations, {routed} customers in the support queues and {} decisions ({} waiting for approval) for {} customers in {:.1}s.",
        seeded.executed + seeded.pending + seeded.refused,
        seeded.pending,
        config.demo.customers,
        started.elapsed().as_secs_f64()
    );

    if config.demo.live {
        tokio::spawn(live(
            engine.clone(),
            ws.clone(),
            config.demo.seed,
            config.demo.customers,
            config.demo.live_interval_ms,
        ));
    }

    println!();
    println!("Rapport demo is ready: http://{addr}");
    for a in &state.demo_accounts {
        println!(
            "Dashboard sign-in ({:<10}): {} / {}",
            a.role.as_str(),
            a.login,
            a.password
        );
    }
    println!("Admin key (read API):                 {admin_key}");
    println!("Write key (Segment SDKs, ingest API): {write_key}");
    println!("Rapport listening on http://{addr}");
    rapport_server::serve(listener, state, crate::cli::shutdown_signal()).await?;
    store.close();
    Ok(())
}

/// One account per role for people trying the demo, with fresh passwords each start (shown
/// on the login page: the demo serves only its own made-up company).
async fn demo_accounts(
    store: &dyn Store,
    ws: &WorkspaceId,
) -> Result<Vec<rapport_server::DemoAccount>> {
    let mut out = Vec::new();
    for role in [
        KeyRole::Admin,
        KeyRole::Supervisor,
        KeyRole::Agent,
        KeyRole::Analyst,
    ] {
        let login = rapport_core::Login::parse(role.as_str()).map_err(|e| anyhow!(e))?;
        let password = rapport_server::users::generate_password();
        rapport_server::users::create_user(store, ws, &login, role, &password)
            .await
            .map_err(|e| anyhow!("demo account {login}: {}", e.message))?;
        out.push(rapport_server::DemoAccount {
            login: login.as_str().to_owned(),
            role,
            password,
        });
    }
    Ok(out)
}

/// Loads history in chunks, a few in flight at once so the writer never waits for the next
/// chunk to be validated. Order does not matter: traits merge by event time and stitching
/// gives the same profiles whichever identifier arrives first.
async fn load_events(
    engine: Arc<Engine>,
    ws: &WorkspaceId,
    events: Vec<serde_json::Value>,
) -> Result<()> {
    let received = Utc::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut rest = events.into_iter().peekable();
    while rest.peek().is_some() {
        let chunk: Vec<serde_json::Value> = rest.by_ref().take(CHUNK).collect();
        while tasks.len() >= CHUNKS_IN_FLIGHT {
            if let Some(r) = tasks.join_next().await {
                r??;
            }
        }
        let (engine, ws) = (engine.clone(), ws.clone());
        tasks.spawn(async move {
            let parsed = chunk
                .into_iter()
                .map(|v| parse_value(v, received).map_err(|e| anyhow!("demo event rejected: {e}")))
                .collect::<Result<Vec<_>>>()?;
            engine.ingest(&ws, parsed).await?;
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

fn channel(name: &str) -> ConversationChannel {
    ConversationChannel::parse(name).unwrap_or(ConversationChannel::Chat)
}

fn new_message(m: &DemoMessage, key: Option<String>) -> Result<NewMessage> {
    Ok(NewMessage {
        direction: Direction::parse(m.direction).unwrap_or(Direction::Inbound),
        author: Author::parse(m.author).unwrap_or(Author::Customer),
        text: MessageText::parse(&m.text).map_err(|e| anyhow!(e))?,
        sent_at: m.at,
        external_id: key,
        analysis: None,
    })
}

async fn load_conversation(
    engine: Arc<Engine>,
    ws: WorkspaceId,
    c: DemoConversation,
) -> Result<()> {
    let Some(first) = c.messages.first() else {
        return Ok(());
    };
    let customer = CustomerRef::Identifier(Identifier::new(IdentifierKind::UserId, &c.user_id)?);
    let conv = engine
        .store()
        .open_conversation(
            &ws,
            customer,
            NewConversation {
                channel: channel(c.channel),
                subject: Some(c.subject.clone()),
                opened_at: first.at,
            },
        )
        .await?;
    for m in &c.messages {
        engine
            .add_message(&ws, &conv.id, new_message(m, None)?)
            .await?;
    }
    Ok(())
}

async fn load_conversations(
    engine: Arc<Engine>,
    ws: &WorkspaceId,
    conversations: Vec<DemoConversation>,
) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for c in conversations {
        while tasks.len() >= PARALLEL_CONVERSATIONS {
            if let Some(r) = tasks.join_next().await {
                r??;
            }
        }
        tasks.spawn(load_conversation(engine.clone(), ws.clone(), c));
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

/// New visits, purchases and messages every few seconds, so the dashboard moves.
async fn live(engine: Arc<Engine>, ws: WorkspaceId, seed: u64, customers: usize, interval_ms: u64) {
    let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms));
    for tick in 0u64.. {
        ticker.tick().await;
        let activity = demo_data::live_activity(seed, tick, customers, Utc::now());
        let received = Utc::now();
        let events: Vec<_> = activity
            .events
            .into_iter()
            .filter_map(|v| parse_value(v, received).ok())
            .collect();
        if let Err(e) = engine.ingest(&ws, events).await {
            tracing::warn!(error = %e, "live demo events failed");
        }
        if let Some((user_id, ch, subject, message)) = activity.message {
            let result: Result<()> = async {
                let customer =
                    CustomerRef::Identifier(Identifier::new(IdentifierKind::UserId, &user_id)?);
                let conv = engine
                    .store()
                    .open_conversation(
                        &ws,
                        customer,
                        NewConversation {
                            channel: channel(ch),
                            subject: Some(subject),
                            opened_at: message.at,
                        },
                    )
                    .await?;
                engine
                    .add_message(&ws, &conv.id, new_message(&message, None)?)
                    .await?;
                Ok(())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "live demo message failed");
            }
        }
    }
}
