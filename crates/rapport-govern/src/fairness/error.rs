//! Errors of fairness audits. Every problem with one value names its row (counted from 1, the
//! first data row; in a CSV file with a header that is line `row + 1`) and its column.

use rapport_core::error::{Coded, ErrorKind};

/// What went wrong building or auditing a dataset.
#[derive(Debug, thiserror::Error)]
pub enum FairnessError {
    #[error("no group column: name at least one sensitive column to audit by")]
    NoGroupColumn,
    #[error("column {0:?} is named more than once")]
    DuplicateColumn(String),
    #[error("a column name is empty")]
    EmptyColumnName,
    #[error("unknown column {column:?}; the input has {}", list(.available))]
    UnknownColumn {
        column: String,
        available: Vec<String>,
    },
    #[error("the input has no rows")]
    Empty,
    #[error("row {row}: {got} group values given, but the audit has {expected} group columns")]
    GroupArity {
        row: usize,
        expected: usize,
        got: usize,
    },
    #[error(
        "row {row}, column {column:?}: the group value is empty; fill in a value (such as \
         \"unknown\") to audit these rows as a group of their own"
    )]
    EmptyGroup { row: usize, column: String },
    #[error("row {row}, column {column:?}: the value is missing")]
    Missing { row: usize, column: String },
    #[error("row {row}, column {column:?}: NaN is not a usable value")]
    NotANumber { row: usize, column: String },
    #[error("row {row}, column {column:?}: {value:?} is not a finite number")]
    NotNumeric {
        row: usize,
        column: String,
        value: String,
    },
    #[error(
        "row {row}, column {column:?}: {value:?} is a third distinct value after {:?} and {:?}, \
         but a binary audit takes two (use the multiclass task, or map the values to two)",
        .seen[0], .seen[1]
    )]
    NotBinary {
        row: usize,
        column: String,
        value: String,
        seen: [String; 2],
    },
    #[error("the positive label {positive:?} is not among the values found ({})", list(.values))]
    PositiveNotFound {
        positive: String,
        values: Vec<String>,
    },
    #[error(
        "cannot tell which of {} is the positive outcome; name it (--positive)",
        list(.values)
    )]
    PositiveRequired { values: Vec<String> },
    #[error("row {row}: a {what} was given, but the audit has no {what} column")]
    Unexpected { row: usize, what: &'static str },
    #[error(
        "{classes} distinct classes is too many for a classification audit (at most {max}); \
         if the outcome is a quantity, audit it as a regression"
    )]
    TooManyClasses { classes: usize, max: usize },
    #[error("the group columns have too many combinations to intersect ({0})")]
    TooManyIntersections(String),
    #[error("invalid audit options: {}", .0.join("; "))]
    InvalidOptions(Vec<String>),
    #[error("invalid thresholds: {}", .0.join("; "))]
    InvalidThresholds(Vec<String>),
    #[error("thresholds are not valid TOML: {0}")]
    ThresholdsToml(#[from] toml::de::Error),
    #[error("CSV problem after row {row}: {message}")]
    Csv { row: usize, message: String },
    #[error("cannot read the input: {0}")]
    Io(#[from] std::io::Error),
}

fn list(values: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut out: Vec<String> = values
        .iter()
        .take(SHOWN)
        .map(|v| format!("{v:?}"))
        .collect();
    if values.len() > SHOWN {
        out.push(format!("and {} more", values.len() - SHOWN));
    }
    out.join(", ")
}

impl Coded for FairnessError {
    fn kind(&self) -> ErrorKind {
        match self {
            FairnessError::Io(_) => ErrorKind::Internal,
            _ => ErrorKind::InvalidInput,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            FairnessError::NoGroupColumn => "no_group_column",
            FairnessError::DuplicateColumn(_) => "duplicate_column",
            FairnessError::EmptyColumnName => "empty_column_name",
            FairnessError::UnknownColumn { .. } => "unknown_column",
            FairnessError::Empty => "empty_input",
            FairnessError::GroupArity { .. } => "group_arity",
            FairnessError::EmptyGroup { .. } => "empty_group_value",
            FairnessError::Missing { .. } => "missing_value",
            FairnessError::NotANumber { .. } => "nan_value",
            FairnessError::NotNumeric { .. } => "not_numeric",
            FairnessError::NotBinary { .. } => "not_binary",
            FairnessError::PositiveNotFound { .. } => "positive_label_not_found",
            FairnessError::PositiveRequired { .. } => "positive_label_required",
            FairnessError::Unexpected { .. } => "unexpected_value",
            FairnessError::TooManyClasses { .. } => "too_many_classes",
            FairnessError::TooManyIntersections(_) => "too_many_intersections",
            FairnessError::InvalidOptions(_) => "invalid_audit_options",
            FairnessError::InvalidThresholds(_) => "invalid_thresholds",
            FairnessError::ThresholdsToml(_) => "invalid_thresholds_toml",
            FairnessError::Csv { .. } => "invalid_csv",
            FairnessError::Io(_) => "io_error",
        }
    }
}
