//! Errors of the identity stage. Value problems found while standardizing are data, not errors:
//! they become [`crate::DataQualityIssue`]s. The enum here covers settings, files and inputs a
//! caller got wrong, plus the reasons a single value cannot be built.

use rapport_core::error::{Coded, ErrorKind};

/// Why a single value (email, phone, name, address part, date, country) could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueProblem {
    #[error("value is empty")]
    Empty,
    #[error("not an email address: {0}")]
    BadEmail(&'static str),
    #[error("not a valid phone number: {0}")]
    BadPhone(String),
    #[error("unknown region {0:?}")]
    UnknownRegion(String),
    #[error("not a usable person name: {0}")]
    BadName(&'static str),
    #[error("postcode {0:?} is not valid for {1}")]
    BadPostcode(String, String),
    #[error("not a recognised date: {0}")]
    BadDate(String),
    #[error("unknown country {0:?}")]
    UnknownCountry(String),
    #[error("expected {0}")]
    WrongType(&'static str),
}

impl Coded for ValueProblem {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }

    fn code(&self) -> &'static str {
        match self {
            ValueProblem::Empty => "empty_value",
            ValueProblem::BadEmail(_) => "invalid_email",
            ValueProblem::BadPhone(_) => "invalid_phone",
            ValueProblem::UnknownRegion(_) => "unknown_region",
            ValueProblem::BadName(_) => "invalid_name",
            ValueProblem::BadPostcode(..) => "invalid_postcode",
            ValueProblem::BadDate(_) => "invalid_date",
            ValueProblem::UnknownCountry(_) => "unknown_country",
            ValueProblem::WrongType(_) => "wrong_type",
        }
    }
}

/// Errors of the identity crate's operations (settings, files, matching runs).
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Settings failed validation; every problem found is listed.
    #[error("invalid settings: {}", .0.join("; "))]
    InvalidSettings(Vec<String>),
    #[error("settings are not valid TOML: {0}")]
    SettingsToml(#[from] toml::de::Error),
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("CSV problem in {path}: {message}")]
    Csv { path: String, message: String },
    #[error("column {column:?} not found in {path} (its columns: {available})")]
    MissingColumn {
        path: String,
        column: String,
        available: String,
    },
    #[error("record id {id:?} appears more than once in {path}{}", .lines.map_or(String::new(), |(a, b)| format!(" (lines {a} and {b})")))]
    DuplicateId {
        path: String,
        id: String,
        /// The lines of the first and the repeated record, when read from a file.
        lines: Option<(u64, u64)>,
    },
    #[error("{0}")]
    EmptyInput(String),
    #[error("blocking produces {0} candidate pairs, more than the limit of {1}; add stricter blocking rules")]
    TooManyPairs(u64, u64),
    #[error("labels refer to unknown record {0:?}")]
    UnknownLabelRecord(String),
}

impl Coded for IdentityError {
    fn kind(&self) -> ErrorKind {
        match self {
            IdentityError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            IdentityError::Io { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidInput,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            IdentityError::InvalidSettings(_) => "invalid_match_settings",
            IdentityError::SettingsToml(_) => "invalid_settings_toml",
            IdentityError::Io { .. } => "io_error",
            IdentityError::Csv { .. } => "invalid_csv",
            IdentityError::MissingColumn { .. } => "missing_column",
            IdentityError::DuplicateId { .. } => "duplicate_record_id",
            IdentityError::EmptyInput(_) => "empty_input",
            IdentityError::TooManyPairs(..) => "too_many_candidate_pairs",
            IdentityError::UnknownLabelRecord(_) => "unknown_label_record",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_snake_case() {
        let e = IdentityError::TooManyPairs(10, 5);
        assert_eq!(e.code(), "too_many_candidate_pairs");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(ValueProblem::Empty.code(), "empty_value");
        let io = IdentityError::Io {
            path: "x".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(io.kind(), ErrorKind::NotFound);
    }
}
