//! Transport-neutral error kinds. Each crate has its own `thiserror` enum; each of its variants
//! says which kind it is and which stable code names it. The server maps kinds to HTTP in one
//! place.

use serde::Serialize;

/// What sort of failure happened, independent of transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The caller sent something malformed or out of range.
    InvalidInput,
    /// The caller sent more bytes than a limit allows.
    TooLarge,
    /// No valid credentials were presented.
    Unauthenticated,
    /// Valid credentials, but not allowed to do this.
    Forbidden,
    /// The thing asked for does not exist (or is not visible to this caller).
    NotFound,
    /// The request conflicts with existing state.
    Conflict,
    /// An action needs a consent the customer has not given.
    ConsentRequired,
    /// Too many requests.
    RateLimited,
    /// A dependency is temporarily unavailable; retrying may help.
    Unavailable,
    /// A bug or an unexpected failure; details are logged, never returned.
    Internal,
}

/// Implemented by every error enum that can cross a layer boundary.
pub trait Coded {
    /// The transport-neutral kind.
    fn kind(&self) -> ErrorKind;
    /// A stable, snake_case code clients may match on.
    fn code(&self) -> &'static str;
}
