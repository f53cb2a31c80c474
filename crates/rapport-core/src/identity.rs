//! Identifiers that link touchpoints to one customer profile. The foundation normalises them
//! lightly (trim, case for emails, separators for phones) so the same customer is found again;
//! full standardisation and guards belong to the identity stage.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The types of identifier a profile can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    UserId,
    Email,
    Phone,
    AnonymousId,
    /// An id in another system (CRM, billing, ...), written `system:id`, e.g. `crm:00Q5e`.
    External,
}

impl IdentifierKind {
    pub const ALL: [IdentifierKind; 5] = [
        IdentifierKind::UserId,
        IdentifierKind::Email,
        IdentifierKind::Phone,
        IdentifierKind::AnonymousId,
        IdentifierKind::External,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::UserId => "user_id",
            IdentifierKind::Email => "email",
            IdentifierKind::Phone => "phone",
            IdentifierKind::AnonymousId => "anonymous_id",
            IdentifierKind::External => "external",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// Why an identifier value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("{0} is longer than {1} characters")]
    TooLong(&'static str, usize),
    #[error("email {0:?} is not an address")]
    BadEmail(String),
    #[error("phone {0:?} has too few or too many digits")]
    BadPhone(String),
    #[error("external id {0:?} is not `system:id` with a system of lowercase letters, digits, `_` or `-`")]
    BadExternal(String),
}

/// A normalised identifier value of one kind. Built only through [`Identifier::new`] (reading
/// one back from JSON goes through it too).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "IdentifierWire")]
pub struct Identifier {
    kind: IdentifierKind,
    value: String,
}

/// The longest identifier value accepted.
pub const MAX_IDENTIFIER_LEN: usize = 256;

impl Identifier {
    pub fn new(kind: IdentifierKind, raw: &str) -> Result<Self, IdentifierError> {
        let trimmed = raw.trim();
        let name = kind.as_str();
        if trimmed.is_empty() {
            return Err(IdentifierError::Empty(name));
        }
        if trimmed.chars().count() > MAX_IDENTIFIER_LEN {
            return Err(IdentifierError::TooLong(name, MAX_IDENTIFIER_LEN));
        }
        let value = match kind {
            IdentifierKind::UserId | IdentifierKind::AnonymousId => trimmed.to_owned(),
            IdentifierKind::Email => {
                let lower = trimmed.to_lowercase();
                let ok = matches!(lower.split_once('@'), Some((local, domain))
                    if !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
                        && !domain.ends_with('.') && !domain.contains('@')
                        && !lower.chars().any(char::is_whitespace));
                if !ok {
                    return Err(IdentifierError::BadEmail(trimmed.to_owned()));
                }
                lower
            }
            IdentifierKind::Phone => {
                let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
                let allowed = trimmed
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +-().".contains(c));
                if !allowed || !(7..=15).contains(&digits.len()) {
                    return Err(IdentifierError::BadPhone(trimmed.to_owned()));
                }
                if trimmed.starts_with('+') {
                    format!("+{digits}")
                } else {
                    digits
                }
            }
            IdentifierKind::External => {
                let ok = matches!(trimmed.split_once(':'), Some((system, id))
                    if !system.is_empty() && system.len() <= 32 && !id.trim().is_empty()
                        && system.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'));
                if !ok {
                    return Err(IdentifierError::BadExternal(trimmed.to_owned()));
                }
                let (system, id) = trimmed.split_once(':').unwrap_or_default();
                format!("{system}:{}", id.trim())
            }
        };
        Ok(Self { kind, value })
    }

    pub fn kind(&self) -> IdentifierKind {
        self.kind
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// An external system's id: `external("crm", "00Q5e")` is `external:crm:00Q5e`.
    pub fn external(system: &str, id: &str) -> Result<Self, IdentifierError> {
        Self::new(
            IdentifierKind::External,
            &format!("{}:{}", system.trim(), id.trim()),
        )
    }

    /// The system an external id belongs to (`crm` for `crm:00Q5e`); `None` for other kinds.
    pub fn external_system(&self) -> Option<&str> {
        match self.kind {
            IdentifierKind::External => self.value.split_once(':').map(|(s, _)| s),
            _ => None,
        }
    }

    /// Rebuilds an identifier read back from storage, which only ever holds normalised values.
    pub fn from_trusted(kind: IdentifierKind, value: String) -> Self {
        Self { kind, value }
    }
}

/// The serialised shape of an [`Identifier`], checked on the way in.
#[derive(Deserialize)]
struct IdentifierWire {
    kind: IdentifierKind,
    value: String,
}

impl TryFrom<IdentifierWire> for Identifier {
    type Error = IdentifierError;
    fn try_from(w: IdentifierWire) -> Result<Self, Self::Error> {
        // Normalising a normalised value changes nothing, so a round trip is exact.
        Identifier::new(w.kind, &w.value)
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        let e = Identifier::new(IdentifierKind::Email, "  Ada@Example.COM ").unwrap();
        assert_eq!(e.value(), "ada@example.com");
        assert!(Identifier::new(IdentifierKind::Email, "not-an-email").is_err());
        assert!(Identifier::new(IdentifierKind::Email, "a@b").is_err());
        assert!(Identifier::new(IdentifierKind::Email, "a b@c.com").is_err());
    }

    #[test]
    fn phones_lose_separators() {
        let p = Identifier::new(IdentifierKind::Phone, "+44 (7700) 900-123").unwrap();
        assert_eq!(p.value(), "+447700900123");
        assert!(Identifier::new(IdentifierKind::Phone, "12").is_err());
        assert!(Identifier::new(IdentifierKind::Phone, "call me").is_err());
    }

    #[test]
    fn external_ids_name_their_system() {
        let e = Identifier::external("crm", " 00Q5e ").unwrap();
        assert_eq!(e.value(), "crm:00Q5e");
        assert_eq!(e.external_system(), Some("crm"));
        assert_eq!(
            Identifier::new(IdentifierKind::External, "crm:00Q5e").unwrap(),
            e
        );
        for bad in ["00Q5e", ":x", "crm:", "CRM:x", "c r m:x"] {
            assert!(
                Identifier::new(IdentifierKind::External, bad).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            Identifier::new(IdentifierKind::UserId, "u")
                .unwrap()
                .external_system(),
            None
        );
    }

    #[test]
    fn empty_and_long_values_are_refused() {
        assert!(Identifier::new(IdentifierKind::UserId, "   ").is_err());
        let long = "x".repeat(MAX_IDENTIFIER_LEN + 1);
        assert!(Identifier::new(IdentifierKind::UserId, &long).is_err());
    }
}
