//! Rapport's domain types: identifiers, events, profiles, conversations, workspaces and keys,
//! consents and audit records,
//! each built valid through one fallible constructor, plus the transport-neutral error kinds
//! every layer maps its failures to.
//!
//! This crate owns no I/O: no HTTP, no SQL, no files. Storage, ingestion and the server depend
//! on it; it depends on nothing of ours.

pub mod alert;
pub mod condition;
pub mod conversation;
pub mod decision;
pub mod error;
pub mod event;
pub mod governance;
pub mod identity;
pub mod ids;
pub mod profile;
pub mod routing;
pub mod stitch;
pub mod tenancy;
pub mod time;

pub use alert::{Alert, Severity};
pub use conversation::{
    Author, Conversation, ConversationChannel, ConversationStatus, CustomerRef, Direction, Message,
    MessageText, NewConversation, NewMessage,
};
pub use decision::{ApprovalDemand, ApprovalStep, DecisionRecord, DecisionStatus, Handoff, Reason};
pub use error::ErrorKind;
pub use event::{Channel, DataQualityIssue, Event, EventType, Standardized};
pub use governance::{
    tombstone_hash, Actor, AuditEntry, AuditRecord, ConsentChange, ConsentRecord, ConsentState,
    Purpose, GENESIS_HASH,
};
pub use identity::{Identifier, IdentifierKind};
pub use ids::{ConversationId, MessageId, ProfileId, WorkspaceId};
pub use profile::Profile;
pub use tenancy::{KeyRole, Login, Permission, WorkspaceName};
