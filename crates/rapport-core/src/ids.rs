//! Opaque identifiers of records Rapport creates. They are prefixed so a human reading a log
//! or URL can tell a profile id from a conversation id.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this type starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A new, time-ordered, random id.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            /// Accepts an id previously produced by [`Self::generate`]; rejects anything that
            /// could not be one.
            pub fn parse(raw: &str) -> Option<Self> {
                let rest = raw.strip_prefix($prefix)?;
                (rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| Self(raw.to_owned()))
            }

            /// Rebuilds an id read back from storage, which only ever holds valid ids.
            pub fn from_trusted(raw: String) -> Self {
                Self(raw)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A customer profile.
    ProfileId,
    "prof_"
);
prefixed_id!(
    /// A workspace (tenant). Every record belongs to exactly one.
    WorkspaceId,
    "ws_"
);
prefixed_id!(
    /// A conversation between a customer and the company.
    ConversationId,
    "conv_"
);
prefixed_id!(
    /// One message within a conversation.
    MessageId,
    "msg_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = ProfileId::generate();
        assert_eq!(ProfileId::parse(id.as_str()), Some(id.clone()));
        assert!(ConversationId::parse(id.as_str()).is_none());
        assert!(ProfileId::parse("prof_xyz").is_none());
    }
}
