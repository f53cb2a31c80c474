//! Conversations between a customer and the company, and their messages.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Channel;

/// Channels a conversation can happen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationChannel {
    Chat,
    Email,
    Voice,
    Sms,
    Social,
}

impl ConversationChannel {
    pub const ALL: [ConversationChannel; 5] = [
        ConversationChannel::Chat,
        ConversationChannel::Email,
        ConversationChannel::Voice,
        ConversationChannel::Sms,
        ConversationChannel::Social,
    ];

    pub fn as_str(self) -> &'static str {
        self.channel().as_str()
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    /// The touchpoint channel this conversation's messages count under.
    pub fn channel(self) -> Channel {
        match self {
            ConversationChannel::Chat => Channel::Chat,
            ConversationChannel::Email => Channel::Email,
            ConversationChannel::Voice => Channel::Voice,
            ConversationChannel::Sms => Channel::Sms,
            ConversationChannel::Social => Channel::Social,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    Customer,
    Agent,
    Bot,
}

impl Author {
    pub fn as_str(self) -> &'static str {
        match self {
            Author::Customer => "customer",
            Author::Agent => "agent",
            Author::Bot => "bot",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "customer" => Some(Author::Customer),
            "agent" => Some(Author::Agent),
            "bot" => Some(Author::Bot),
            _ => None,
        }
    }
}

/// Message text: not blank, at most [`MessageText::MAX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MessageText(String);

impl MessageText {
    pub const MAX_CHARS: usize = 20_000;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            return Err("text is empty".into());
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(format!(
                "text is longer than {} characters",
                Self::MAX_CHARS
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A conversation to open, once its customer is known.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConversation {
    pub channel: ConversationChannel,
    pub subject: Option<String>,
    pub opened_at: DateTime<Utc>,
}

/// A message to append to a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub direction: Direction,
    pub author: Author,
    pub text: MessageText,
    pub sent_at: DateTime<Utc>,
    /// Caller's idempotency key: a repeated one is acknowledged but not stored twice.
    pub external_id: Option<String>,
    /// What the interpretation stage concluded about the text, with its model and version.
    pub analysis: Option<serde_json::Value>,
}

/// The customer a new conversation belongs to, as the caller names them.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerRef {
    Profile(crate::ids::ProfileId),
    /// Found by identifier; a profile is created when none carries it yet.
    Identifier(crate::identity::Identifier),
}

/// Whether a conversation is still being worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    Open,
    Closed,
}

impl ConversationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Open => "open",
            ConversationStatus::Closed => "closed",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "open" => Some(ConversationStatus::Open),
            "closed" => Some(ConversationStatus::Closed),
            _ => None,
        }
    }
}

/// A conversation as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversation {
    pub id: crate::ids::ConversationId,
    pub profile_id: crate::ids::ProfileId,
    pub channel: ConversationChannel,
    pub subject: Option<String>,
    pub status: ConversationStatus,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub message_count: i64,
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub id: crate::ids::MessageId,
    pub conversation_id: crate::ids::ConversationId,
    pub direction: Direction,
    pub author: Author,
    pub text: String,
    pub sent_at: DateTime<Utc>,
    pub external_id: Option<String>,
    pub analysis: Option<serde_json::Value>,
}
