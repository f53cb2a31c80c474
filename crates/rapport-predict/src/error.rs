//! The errors of this crate. User errors (bad files, bad parameters) are separate from
//! internal ones; each variant names its stable code and its transport-neutral kind.

use rapport_core::error::{Coded, ErrorKind};

/// Everything that can go wrong while reading data, training, loading or applying a model.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// A CSV file is malformed (ragged rows, bad quoting, not UTF-8, no header).
    #[error("{path}: {message}")]
    Csv { path: String, message: String },
    /// A column the operation needs is not in the file.
    #[error("{path}: no column named {column:?} (columns: {available})")]
    MissingColumn {
        path: String,
        column: String,
        available: String,
    },
    /// A row has no label.
    #[error("{path}, line {line}: the label column {column:?} is empty")]
    LabelMissing {
        path: String,
        line: u64,
        column: String,
    },
    /// Every row has the same label: there is nothing to learn.
    #[error("the label column {column:?} has the single value {value:?} in every row: a classifier needs both classes; no model was written")]
    ConstantLabel { column: String, value: String },
    /// The label has only negative values.
    #[error("the label column {column:?} has no positive rows (every value is {value:?}): a classifier needs positives; no model was written")]
    NoPositives { column: String, value: String },
    /// The label has more than two values, or two values of which none is clearly positive.
    #[error("the label column {column:?} is not binary: {message}")]
    LabelNotBinary { column: String, message: String },
    /// Too few rows of a class to train, hold out a calibration part, and calibrate.
    #[error("{message}; no model was written")]
    TooFewRows { message: String },
    /// A value cannot be read as the feature's type.
    #[error("{path}, line {line}: column {column:?} is numeric but holds {value:?}")]
    InvalidValue {
        path: String,
        line: u64,
        column: String,
        value: String,
    },
    /// A training or fitting parameter is out of range.
    #[error("{0}")]
    InvalidParameter(String),
    /// A model file is not a Rapport model, or is damaged.
    #[error("{path}: not a readable Rapport model file: {message}")]
    ModelInvalid { path: String, message: String },
    /// A model file of a format version this build does not read.
    #[error("{path}: model file format version {found}; this build reads versions 1 to {supported}: retrain the model with this version of rapport")]
    ModelVersion {
        path: String,
        found: u64,
        supported: u32,
    },
    /// A model of another task than the one asked for.
    #[error("{path}: this is a {found:?} model; {needed:?} is needed here")]
    ModelTask {
        path: String,
        found: String,
        needed: String,
    },
    /// An id asked for is not in the input.
    #[error("{path}: no row has {column:?} = {id:?}")]
    IdNotFound {
        path: String,
        column: String,
        id: String,
    },
    /// A transaction line cannot be read.
    #[error("{path}, line {line}: {message}")]
    InvalidTransaction {
        path: String,
        line: u64,
        message: String,
    },
    /// Maximum likelihood fitting did not reach a finite optimum.
    #[error("fitting {model} did not converge: {message}")]
    FitFailed { model: String, message: String },
    /// The boosting library failed in a way that is not the caller's fault.
    #[error("internal error while training: {0}")]
    Internal(String),
}

impl Coded for PredictError {
    fn kind(&self) -> ErrorKind {
        match self {
            PredictError::Io { .. } | PredictError::Internal(_) => ErrorKind::Internal,
            PredictError::IdNotFound { .. } => ErrorKind::NotFound,
            PredictError::FitFailed { .. } => ErrorKind::InvalidInput,
            _ => ErrorKind::InvalidInput,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            PredictError::Io { .. } => "io_error",
            PredictError::Csv { .. } => "csv_invalid",
            PredictError::MissingColumn { .. } => "column_missing",
            PredictError::LabelMissing { .. } => "label_missing",
            PredictError::ConstantLabel { .. } => "label_constant",
            PredictError::NoPositives { .. } => "label_no_positives",
            PredictError::LabelNotBinary { .. } => "label_not_binary",
            PredictError::TooFewRows { .. } => "too_few_rows",
            PredictError::InvalidValue { .. } => "value_invalid",
            PredictError::InvalidParameter(_) => "parameter_invalid",
            PredictError::ModelInvalid { .. } => "model_invalid",
            PredictError::ModelVersion { .. } => "model_version_unsupported",
            PredictError::ModelTask { .. } => "model_task_mismatch",
            PredictError::IdNotFound { .. } => "id_not_found",
            PredictError::InvalidTransaction { .. } => "transaction_invalid",
            PredictError::FitFailed { .. } => "fit_failed",
            PredictError::Internal(_) => "internal",
        }
    }
}

impl PredictError {
    pub(crate) fn io(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        PredictError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}
