//! Routing of conversations to agents (see the crate docs).
