use rapport_core::error::{Coded, ErrorKind};

/// What went wrong on the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The caller passed something that can never work (an empty event id, a bad prefix).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The configuration is unusable; every problem found is listed.
    #[error("invalid bus configuration: {}", .0.join("; "))]
    InvalidConfig(Vec<String>),
    /// The bus already exists with settings this process does not share (partition count,
    /// lease time-to-live). Running two settings at once would break ordering or exclusivity.
    #[error("bus settings disagree with the existing bus: {0}")]
    Mismatch(String),
    /// A dead letter that does not exist (any more).
    #[error("{0} not found")]
    NotFound(String),
    /// The broker could not be reached or did not answer in time; retrying may help.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The worker has stopped; it delivers nothing more.
    #[error("worker closed")]
    Closed,
    /// A message on the bus could not be read back (unknown format version, truncated body).
    #[error("unreadable message: {0}")]
    Corrupt(String),
    /// Anything else the broker reported.
    #[error("internal bus error: {0}")]
    Internal(String),
}

impl Coded for BusError {
    fn kind(&self) -> ErrorKind {
        match self {
            BusError::InvalidInput(_) | BusError::InvalidConfig(_) => ErrorKind::InvalidInput,
            BusError::Mismatch(_) => ErrorKind::Conflict,
            BusError::NotFound(_) => ErrorKind::NotFound,
            BusError::Unavailable(_) | BusError::Closed => ErrorKind::Unavailable,
            BusError::Corrupt(_) | BusError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            BusError::InvalidInput(_) => "invalid_input",
            BusError::InvalidConfig(_) => "invalid_bus_config",
            BusError::Mismatch(_) => "bus_settings_mismatch",
            BusError::NotFound(_) => "not_found",
            BusError::Unavailable(_) => "bus_unavailable",
            BusError::Closed => "worker_closed",
            BusError::Corrupt(_) => "bus_message_corrupt",
            BusError::Internal(_) => "internal",
        }
    }
}

impl BusError {
    /// Whether trying the same call again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, BusError::Unavailable(_))
    }
}
