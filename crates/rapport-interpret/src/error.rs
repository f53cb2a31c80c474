//! Errors of the interpret stage.

use rapport_core::error::{Coded, ErrorKind};

/// What can go wrong building or configuring an interpreter. Analysis itself never fails.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InterpretError {
    /// The intent taxonomy is unusable (no intents, an intent without examples, a duplicate
    /// name, a threshold outside 0..=1).
    #[error("invalid intent taxonomy: {0}")]
    InvalidTaxonomy(String),
    /// A value outside its allowed range.
    #[error("value out of range: {0}")]
    OutOfRange(String),
    /// A saved intent model file that cannot be read (wrong format, version or truncated).
    #[error("invalid intent model file: {0}")]
    InvalidModelFile(String),
    /// An embedded model or lexicon could not be loaded (a build defect, not user input).
    #[error("embedded model failed to load: {0}")]
    Model(String),
}

impl Coded for InterpretError {
    fn kind(&self) -> ErrorKind {
        match self {
            InterpretError::InvalidTaxonomy(_)
            | InterpretError::OutOfRange(_)
            | InterpretError::InvalidModelFile(_) => ErrorKind::InvalidInput,
            InterpretError::Model(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            InterpretError::InvalidTaxonomy(_) => "invalid_intent_taxonomy",
            InterpretError::OutOfRange(_) => "value_out_of_range",
            InterpretError::InvalidModelFile(_) => "invalid_intent_model",
            InterpretError::Model(_) => "interpret_model_load_failed",
        }
    }
}
