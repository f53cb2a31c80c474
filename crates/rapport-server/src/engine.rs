//! The engine: what happens to data between the API and the store. Today it runs the
//! interpretation stage on every customer message before the message is stored; prediction,
//! decisions and governance plug in here as they land.
//!
//! Heavy work (model inference) runs on tokio's blocking pool, never on the async workers.

use std::sync::{Arc, OnceLock};

use rapport_core::{
    Author, ConversationId, Direction, Message, MessageText, NewMessage, WorkspaceId,
};
use rapport_interpret::{
    ConversationAnalysis, IntentTaxonomy, InterpretError, Interpreter, MessageAnalysis,
};
use rapport_store::{Store, StoreError};

/// Choices about what the engine keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Keep the original message text. When false, only the text with personal data replaced
    /// by placeholders is stored.
    pub keep_raw_text: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            keep_raw_text: true,
        }
    }
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
    store: Arc<dyn Store>,
    interpreter: Arc<Interpreter>,
    options: EngineOptions,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, options: EngineOptions) -> Result<Self, InterpretError> {
        Ok(Self {
            store,
            interpreter: default_interpreter()?,
            options,
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Reads a customer's message (on the blocking pool) and stores it with its analysis.
    /// Messages from agents and bots are stored as they are.
    pub async fn add_message(
        &self,
        workspace: &WorkspaceId,
        conversation: &ConversationId,
        mut message: NewMessage,
    ) -> Result<(Message, bool), StoreError> {
        if message.direction == Direction::Inbound && message.author == Author::Customer {
            let interpreter = self.interpreter.clone();
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
        self.store
            .add_message(workspace, conversation, message)
            .await
    }

    /// The conversation-level reading (trajectory, trend, escalation signals) of the customer's
    /// analysed messages, in order; `None` before the first one.
    pub fn conversation_analysis(&self, messages: &[Message]) -> Option<ConversationAnalysis> {
        let analyses = message_analyses(messages);
        (!analyses.is_empty()).then(|| self.interpreter.analyze_conversation(&analyses))
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
