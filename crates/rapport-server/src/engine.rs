//! The engine: what happens to data between the API and the store. Today it standardises the
//! traits and identifiers of every event (identity stage) and reads every customer message
//! (interpretation stage) before they are stored; prediction, decisions and governance plug in
//! here as they land.
//!
//! Events take one of two paths, chosen by the [`EventSink`]: applied here at once
//! ([`Engine::ingest`] in embedded mode), or published to the event bus by an API node and
//! applied by a worker with [`Engine::apply`]. Both paths run the same stage function, so a
//! stage added to [`Engine::apply`] runs in both modes.
//!
//! Heavy work (model inference) runs on tokio's blocking pool, never on the async workers.

use std::sync::{Arc, OnceLock};

use rapport_bus::Envelope;
use rapport_core::{
    Author, ConversationId, DataQualityIssue, Direction, Event, Identifier, IdentifierKind,
    Message, MessageText, NewMessage, Standardized, WorkspaceId,
};
use rapport_govern::consent::{Gate, PurposeRegistry};
use rapport_govern::links::LinkSigner;
use rapport_identity::standardize::{standardize_traits, Email, PhoneE164, StandardizePolicy};
use rapport_interpret::{
    ConversationAnalysis, IntentTaxonomy, InterpretError, Interpreter, MessageAnalysis,
};
use rapport_store::{IngestSummary, Store, StoreError};
use serde_json::Value;

use crate::sink::{Accepted, EventSink, SinkError};

/// Choices about what the engine keeps and how it standardises.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// Keep the original message text. When false, only the text with personal data replaced
    /// by placeholders is stored.
    pub keep_raw_text: bool,
    /// How emails, phones, names, dates, countries and addresses are standardised.
    pub standardize: StandardizePolicy,
    /// The purposes customers give or refuse consent for.
    pub purposes: PurposeRegistry,
    /// Whether an erasure keeps salted hashes of the customer's identifiers so that late
    /// events naming them are dropped instead of rebuilding the profile.
    pub erasure_tombstones: bool,
    /// Signs links to customers' own pages. Links signed with another secret (or before a
    /// restart, when the secret is generated per process) are refused.
    pub link_secret: Vec<u8>,
    /// The oversight policy: which actions wait for a person's approval.
    pub policy: rapport_govern::policy::Policy,
    /// Where the policy came from, so edits can be picked up while running.
    pub policy_file: Option<std::path::PathBuf>,
    /// Appended to every automated outbound message, so customers know software wrote it.
    pub ai_disclosure: String,
    /// Fairness audits of stored decisions run on a schedule.
    pub fairness_audits: Vec<rapport_govern::fairness::scheduled::ScheduledAudit>,
    /// The identity guards live stitching applies (blocked values, per-kind limits, the
    /// profile-theft guard); `None` leaves the store's built-in rule alone.
    pub guards: Option<rapport_identity::IdentityGuards>,
    /// External systems whose ids identify customers.
    pub external_ids: ExternalIdSources,
    /// Priority weights, SLA per tier and accept timeout of routing to agents.
    pub routing: rapport_decide::routing::RoutingPolicy,
    /// What raises predictive alerts (sentiment drop, escalation risk) and their webhook.
    pub alerts: crate::predictive::AlertOptions,
    /// The next-best-action catalog; `None` turns next-best-action off.
    pub nba_catalog: Option<rapport_decide::nba::catalog::Catalog>,
    /// Where the catalog came from, so `POST /v1/decisions/catalog/reload` can read it again.
    pub nba_catalog_file: Option<std::path::PathBuf>,
    /// Churn features, training schedule and risk-jump alerts.
    pub churn: crate::churn::ChurnOptions,
    /// Lifetime-value training.
    pub clv: crate::clv::ClvOptions,
    /// The probabilities at which dedupe runs merge pairs or queue them for review.
    pub dedupe: crate::dedupe::DedupeThresholds,
    /// How often a node asks the store which intent model version each workspace reads
    /// messages with (so another node's retraining is picked up); zero asks per message.
    pub intent_check_every: std::time::Duration,
    /// The interpreter customer messages go through (each workspace's own intent model on
    /// top); `None` builds the embedded default ([`default_interpreter`]).
    pub interpreter: Option<SharedInterpreter>,
}

/// An interpreter handed to the engine. Two are equal when they are the same one (the
/// models inside have no useful equality).
#[derive(Debug, Clone)]
pub struct SharedInterpreter(pub Arc<Interpreter>);

impl PartialEq for SharedInterpreter {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The disclosure automated messages carry when none is configured.
pub const DEFAULT_AI_DISCLOSURE: &str =
    "This reply was written by an automated assistant. Reply \"human\" at any time to reach a person.";

/// 32 random bytes, for a link secret nobody configured.
pub fn random_secret() -> Vec<u8> {
    use rand::RngCore;
    let mut s = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut s);
    s
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            keep_raw_text: true,
            standardize: StandardizePolicy::default(),
            purposes: PurposeRegistry::standard(),
            erasure_tombstones: true,
            link_secret: random_secret(),
            policy: rapport_govern::policy::Policy::empty(),
            policy_file: None,
            ai_disclosure: DEFAULT_AI_DISCLOSURE.to_owned(),
            fairness_audits: Vec::new(),
            guards: rapport_identity::IdentityGuards::new(Default::default()).ok(),
            external_ids: ExternalIdSources::default(),
            routing: Default::default(),
            alerts: Default::default(),
            nba_catalog: None,
            nba_catalog_file: None,
            churn: Default::default(),
            clv: Default::default(),
            dedupe: Default::default(),
            intent_check_every: crate::intents::DEFAULT_CHECK_EVERY,
            interpreter: None,
        }
    }
}

/// The identity stage's reading of an event's traits: standardised values, the values that
/// could not be standardised, and the email and phone identifiers under the policy; and the
/// consent the event states (Segment's `context.consent.categoryPreferences`) for the
/// purposes the workspace knows. Categories that name no known purpose are left in the event
/// body only.
pub fn standardize(event: Event, policy: &StandardizePolicy, purposes: &PurposeRegistry) -> Event {
    let consents: Vec<(rapport_core::Purpose, bool)> = event
        .consent_preferences()
        .into_iter()
        .filter_map(|(category, granted)| {
            purposes
                .from_category(&category)
                .map(|p| (p.clone(), granted))
        })
        .collect();
    let traits = event.profile_traits();
    if traits.is_empty() {
        if consents.is_empty() {
            return event;
        }
        return event.with_standard(Standardized {
            consents,
            ..Default::default()
        });
    }
    let (std, issues) = standardize_traits(&traits, policy);
    let email = traits
        .get("email")
        .and_then(Value::as_str)
        .and_then(|e| email_identifier(e, policy).ok());
    let phone = std
        .get("phone")
        .and_then(Value::as_str)
        .and_then(|p| Identifier::new(IdentifierKind::Phone, p).ok());
    let issues = issues
        .into_iter()
        .map(|i| DataQualityIssue {
            field: i.field,
            raw: i.raw,
            code: i.code.to_owned(),
            problem: i.problem,
        })
        .collect();
    event.with_standard(Standardized {
        traits: std,
        issues,
        email,
        phone,
        consents,
        external_ids: Vec::new(),
    })
}

/// Which external systems identify customers, and where their ids are found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalIdSources {
    /// Systems whose ids in Segment's `context.externalIds` (by `type`) identify customers.
    pub systems: Vec<String>,
    /// Traits holding a system's id: trait name → system (`crm_id` → `crm`).
    pub traits: std::collections::BTreeMap<String, String>,
}

impl ExternalIdSources {
    /// The external ids an event names, of the configured systems only. Values that do not
    /// make an identifier are left where they are (in the body, or as traits).
    pub fn find(&self, event: &Event) -> Vec<Identifier> {
        if self.systems.is_empty() && self.traits.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<Identifier> = Vec::new();
        for (system, id) in event.context_external_ids() {
            if self.systems.contains(&system) {
                out.extend(Identifier::external(&system, &id).ok());
            }
        }
        let traits = event.profile_traits();
        for (name, system) in &self.traits {
            let id = match traits.get(name) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => continue,
            };
            out.extend(Identifier::external(system, &id).ok());
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The identifier an email is known by under the policy (its match key: `John.Doe+x@gmail.com`
/// and `johndoe@gmail.com` are one mailbox).
pub fn email_identifier(raw: &str, policy: &StandardizePolicy) -> Result<Identifier, String> {
    let email = Email::parse(raw, &policy.email).map_err(|e| e.to_string())?;
    Identifier::new(IdentifierKind::Email, email.match_key()).map_err(|e| e.to_string())
}

/// The identifier a phone number is known by: E.164, with the policy's default region for
/// numbers written without a country code.
pub fn phone_identifier(raw: &str, policy: &StandardizePolicy) -> Result<Identifier, String> {
    let phone = PhoneE164::parse(raw, &policy.default_phone_region).map_err(|e| e.to_string())?;
    Identifier::new(IdentifierKind::Phone, phone.e164()).map_err(|e| e.to_string())
}

/// The embedded interpreter with the default taxonomy, built once per process (training the
/// intent classifier takes a moment).
pub fn default_interpreter() -> Result<Arc<Interpreter>, InterpretError> {
    static SHARED: OnceLock<Arc<Interpreter>> = OnceLock::new();
    if let Some(i) = SHARED.get() {
        return Ok(i.clone());
    }
    let built = Arc::new(Interpreter::embedded(IntentTaxonomy::default_cx())?);
    Ok(SHARED.get_or_init(|| built).clone())
}

pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) intents: crate::intents::IntentModels,
    pub(crate) options: EngineOptions,
    pub(crate) gate: Gate,
    pub(crate) links: LinkSigner,
    pub(crate) policy: std::sync::RwLock<Arc<rapport_govern::policy::Policy>>,
    pub(crate) fairness_schedule: crate::fairness_watch::Schedule,
    pub(crate) nba: std::sync::RwLock<Option<Arc<rapport_decide::nba::catalog::Catalog>>>,
    pub(crate) nba_counts: crate::nba::CountsCache,
    pub(crate) churn: crate::churn::ChurnState,
    sink: EventSink,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, options: EngineOptions) -> Result<Self, InterpretError> {
        store.set_stitch_policy(options.guards.clone().map(|g| {
            let policy: Arc<dyn rapport_core::stitch::StitchPolicy> = Arc::new(g);
            policy
        }));
        Ok(Self {
            store,
            intents: crate::intents::IntentModels::new(
                match &options.interpreter {
                    Some(i) => i.0.clone(),
                    None => default_interpreter()?,
                },
                options.intent_check_every,
            ),
            gate: Gate::new(options.purposes.clone()),
            links: LinkSigner::new(&options.link_secret),
            policy: std::sync::RwLock::new(Arc::new(options.policy.clone())),
            fairness_schedule: Default::default(),
            nba: std::sync::RwLock::new(options.nba_catalog.clone().map(Arc::new)),
            nba_counts: crate::nba::CountsCache::default(),
            churn: Default::default(),
            options,
            sink: EventSink::Embedded,
        })
    }

    /// The same engine sending accepted events to `sink`.
    pub fn with_sink(mut self, sink: EventSink) -> Self {
        self.sink = sink;
        self
    }

    pub fn sink(&self) -> &EventSink {
        &self.sink
    }

    /// The interpreter with the built-in default intent model.
    pub fn interpreter(&self) -> Arc<Interpreter> {
        self.intents.base().clone()
    }

    /// The interpreter `workspace`'s customer messages go through now: the built-in one with
    /// the workspace's active intent model (cached; see [`crate::intents`]).
    pub async fn interpreter_for(&self, workspace: &WorkspaceId) -> Arc<Interpreter> {
        self.intents
            .interpreter(self.store.as_ref(), workspace)
            .await
    }

    /// The per-workspace intent models.
    pub fn intent_models(&self) -> &crate::intents::IntentModels {
        &self.intents
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn standardize_all(&self, events: Vec<Event>) -> Vec<Event> {
        let (policy, purposes) = (&self.options.standardize, &self.options.purposes);
        let external = &self.options.external_ids;
        events
            .into_iter()
            .map(|e| {
                let ids = external.find(&e);
                standardize(e, policy, purposes).with_external_ids(ids)
            })
            .collect()
    }

    /// Accepts validated events: returns once they are durable, in the store (embedded) or on
    /// the event bus (scale-out), never before. Events are standardised first in both modes,
    /// so a customer known by email is partitioned by the same match key the store uses.
    pub async fn ingest(
        &self,
        workspace: &WorkspaceId,
        events: Vec<Event>,
    ) -> Result<Accepted, SinkError> {
        match &self.sink {
            EventSink::Embedded => Ok(self.apply(workspace, events).await?.into()),
            EventSink::Bus(slot) => {
                let bus = slot.get()?;
                let events = self.standardize_all(events);
                let envelopes = events
                    .iter()
                    .map(|e| Envelope::for_event(workspace.clone(), e))
                    .collect::<Result<Vec<_>, _>>()?;
                let published = bus.publish_many(&envelopes).await?;
                let duplicates = published.iter().filter(|p| p.duplicate).count();
                Ok(Accepted {
                    duplicates,
                    queued: published.len() - duplicates,
                    ..Accepted::default()
                })
            }
        }
    }

    /// The stage that applies events: standardises each event's traits and identifiers (the
    /// identity stage; it is pure and idempotent, so events standardised by an API node are
    /// read again under this process's policy), then stores them atomically. Events whose
    /// `messageId` was applied before are skipped, which makes a redelivery harmless.
    pub async fn apply(
        &self,
        workspace: &WorkspaceId,
        events: Vec<Event>,
    ) -> Result<IngestSummary, StoreError> {
        let events = self.standardize_all(events);
        let summary = self.store.ingest(workspace, events).await?;
        // Their features follow on the next background pass.
        self.churn.mark(workspace, &summary.touched);
        Ok(summary)
    }

    /// The identifier a caller means by `kind` and `raw`, standardised as stored ones are.
    pub fn identifier(&self, kind: IdentifierKind, raw: &str) -> Result<Identifier, String> {
        let policy = &self.options.standardize;
        match kind {
            IdentifierKind::Email => email_identifier(raw, policy),
            IdentifierKind::Phone => phone_identifier(raw, policy),
            _ => Identifier::new(kind, raw).map_err(|e| e.to_string()),
        }
    }

    /// Reads a customer's message (on the blocking pool) and stores it with its analysis.
    /// Messages from agents and bots are stored as they are.
    pub async fn add_message(
        &self,
        workspace: &WorkspaceId,
        conversation: &ConversationId,
        mut message: NewMessage,
    ) -> Result<(Message, bool), StoreError> {
        let mut wants_human = false;
        if message.direction == Direction::Outbound && message.author == Author::Bot {
            message.text = with_disclosure(message.text, &self.options.ai_disclosure);
        }
        let from_customer =
            message.direction == Direction::Inbound && message.author == Author::Customer;
        if from_customer {
            wants_human = crate::actions::asks_for_human(message.text.as_str());
            let interpreter = self.interpreter_for(workspace).await;
            let text = message.text.as_str().to_owned();
            let analysis = tokio::task::spawn_blocking(move || interpreter.analyze(&text))
                .await
                .map_err(|e| StoreError::Internal(format!("interpretation failed: {e}")))?;
            if !self.options.keep_raw_text {
                if let Ok(redacted) = MessageText::parse(&analysis.redacted) {
                    message.text = redacted;
                }
            }
            message.analysis = serde_json::to_value(&analysis).ok();
        }
        let (stored, created) = self
            .store
            .add_message(workspace, conversation, message)
            .await?;
        if created && from_customer {
            // Routing must not lose the message: a failure is logged and the background
            // pass picks the conversation up from what is stored.
            if let Err(e) = self
                .route_message(workspace, conversation, wants_human)
                .await
            {
                tracing::warn!(error = %e, "routing the conversation failed");
            }
            if let Err(e) = self.watch_conversation(workspace, conversation).await {
                tracing::warn!(error = %e, "predictive alerts failed");
            }
        }
        if wants_human && created {
            // The customer asked for a person: automation on them stops until an agent takes
            // over. The message is stored either way.
            if let Some(detail) = self.store.conversation(workspace, conversation).await? {
                self.request_human(
                    workspace,
                    &detail.conversation.profile_id,
                    Some(conversation),
                    "message",
                    rapport_core::Actor::Customer,
                )
                .await?;
            }
        }
        Ok((stored, created))
    }

    /// The conversation-level reading (trajectory, trend, escalation signals) of the customer's
    /// analysed messages, in order; `None` before the first one.
    pub fn conversation_analysis(&self, messages: &[Message]) -> Option<ConversationAnalysis> {
        let analyses = message_analyses(messages);
        (!analyses.is_empty()).then(|| self.intents.base().analyze_conversation(&analyses))
    }
}

/// The stored analyses of a conversation's messages that have one, in order.
pub fn message_analyses(messages: &[Message]) -> Vec<MessageAnalysis> {
    messages
        .iter()
        .filter_map(|m| m.analysis.as_ref())
        .filter_map(|a| serde_json::from_value(a.clone()).ok())
        .collect()
}

/// The text of an automated message with the AI disclosure after it, once. A text too long to
/// take the disclosure is cut to make room, never sent without it.
pub fn with_disclosure(text: MessageText, disclosure: &str) -> MessageText {
    let disclosure = disclosure.trim();
    if disclosure.is_empty() || text.as_str().contains(disclosure) {
        return text;
    }
    let room = MessageText::MAX_CHARS.saturating_sub(disclosure.chars().count() + 2);
    let body: String = text.as_str().chars().take(room).collect();
    MessageText::parse(&format!("{body}\n\n{disclosure}")).unwrap_or(text)
}
