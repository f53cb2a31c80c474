//! Signed, expiring links to a customer's own page (`/why/{token}`), which needs no login:
//! the token itself is the permission, so it must be unforgeable and short-lived.
//!
//! A token is `base64url(claims) "." base64url(HMAC-SHA256(secret, claims))`. The claims name
//! the workspace, the profile, optionally a conversation, and the expiry; nothing personal.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rapport_core::{ConversationId, ProfileId, WorkspaceId};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What a link lets its holder see and do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhyLink {
    #[serde(rename = "w")]
    pub workspace: WorkspaceId,
    #[serde(rename = "p")]
    pub profile: ProfileId,
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationId>,
    /// Seconds since the Unix epoch.
    #[serde(rename = "e")]
    pub expires: i64,
}

/// Why a token was not accepted. The page shows the same text for each, and no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link's signature does not match")]
    Forged,
    #[error("the link has expired")]
    Expired,
}

/// Signs and checks links with one secret.
#[derive(Clone)]
pub struct LinkSigner {
    secret: Vec<u8>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(<secret>)")
    }
}

impl LinkSigner {
    /// `secret` should be at least 32 random bytes.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            secret: secret.to_vec(),
        }
    }

    fn mac(&self, data: &[u8]) -> Vec<u8> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length works");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }

    pub fn sign(&self, link: &WhyLink) -> String {
        let claims = serde_json::to_vec(link).expect("claims serialise");
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&claims),
            URL_SAFE_NO_PAD.encode(self.mac(&claims))
        )
    }

    /// The link a token carries, if the signature holds and it has not expired at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<WhyLink, LinkError> {
        let (claims, sig) = token.split_once('.').ok_or(LinkError::Malformed)?;
        let claims = URL_SAFE_NO_PAD
            .decode(claims)
            .map_err(|_| LinkError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| LinkError::Malformed)?;
        let mut m = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length works");
        m.update(&claims);
        // Constant-time comparison.
        m.verify_slice(&sig).map_err(|_| LinkError::Forged)?;
        let link: WhyLink = serde_json::from_slice(&claims).map_err(|_| LinkError::Malformed)?;
        if link.expires <= now.timestamp() {
            return Err(LinkError::Expired);
        }
        Ok(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn link(expires: DateTime<Utc>) -> WhyLink {
        WhyLink {
            workspace: WorkspaceId::generate(),
            profile: ProfileId::generate(),
            conversation: None,
            expires: expires.timestamp(),
        }
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let s = LinkSigner::new(b"0123456789abcdef0123456789abcdef");
        let now = Utc::now();
        let l = link(now + Duration::days(7));
        let t = s.sign(&l);
        assert_eq!(s.verify(&t, now), Ok(l));
        assert_eq!(
            s.verify(&t, now + Duration::days(8)),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn forged_and_garbled_links_are_refused() {
        let s = LinkSigner::new(b"0123456789abcdef0123456789abcdef");
        let other = LinkSigner::new(b"another secret, another server!!");
        let now = Utc::now();
        let t = other.sign(&link(now + Duration::days(1)));
        assert_eq!(s.verify(&t, now), Err(LinkError::Forged));
        // Claims swapped for someone else's, signature kept.
        let mine = s.sign(&link(now + Duration::days(1)));
        let theirs = s.sign(&link(now + Duration::days(1)));
        let spliced = format!(
            "{}.{}",
            theirs.split_once('.').unwrap().0,
            mine.split_once('.').unwrap().1
        );
        assert_eq!(s.verify(&spliced, now), Err(LinkError::Forged));
        assert_eq!(s.verify("nonsense", now), Err(LinkError::Malformed));
        assert_eq!(s.verify("a.b", now), Err(LinkError::Malformed));
        assert!(format!("{s:?}").contains("<secret>"));
    }
}
