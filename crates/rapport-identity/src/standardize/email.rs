//! Email addresses: trimmed, NFKC, lowercased; a match key built under an [`EmailPolicy`].

use serde::{Deserialize, Serialize};

use super::text::fold;
use crate::error::ValueProblem;

/// How an email's match key is derived. The normalized address itself never loses
/// information beyond case and Unicode form; only the match key applies provider rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailPolicy {
    /// Domains whose mailboxes ignore dots in the local part and `+tag` suffixes.
    pub dot_insensitive_domains: Vec<String>,
    /// Domain aliases mapped to one canonical domain in the match key (alias -> canonical).
    pub domain_aliases: Vec<(String, String)>,
    /// Strip a `+tag` suffix of the local part for every domain, not only the listed ones.
    pub strip_plus_tag_everywhere: bool,
}

impl Default for EmailPolicy {
    fn default() -> Self {
        Self {
            dot_insensitive_domains: vec!["gmail.com".into(), "googlemail.com".into()],
            domain_aliases: vec![("googlemail.com".into(), "gmail.com".into())],
            strip_plus_tag_everywhere: false,
        }
    }
}

/// A syntactically valid email address, with its raw form and its match key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Email {
    raw: String,
    normalized: String,
    match_key: String,
}

const MAX_LOCAL: usize = 64;
const MAX_TOTAL: usize = 254;

impl Email {
    /// Parses and normalizes an address. Fails on anything that is not `local@domain.tld`.
    pub fn parse(raw: &str, policy: &EmailPolicy) -> Result<Self, ValueProblem> {
        let normalized = fold(raw);
        if normalized.is_empty() {
            return Err(ValueProblem::Empty);
        }
        if normalized.chars().count() > MAX_TOTAL {
            return Err(ValueProblem::BadEmail("longer than 254 characters"));
        }
        let (local, domain) = normalized
            .rsplit_once('@')
            .ok_or(ValueProblem::BadEmail("no @"))?;
        validate_local(local)?;
        validate_domain(domain)?;
        let match_key = match_key(local, domain, policy);
        Ok(Self {
            raw: raw.to_owned(),
            normalized,
            match_key,
        })
    }

    /// The value as received.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Trimmed, NFKC, lowercase.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The key two addresses of the same mailbox share under the policy.
    pub fn match_key(&self) -> &str {
        &self.match_key
    }

    /// The domain part of the normalized address.
    pub fn domain(&self) -> &str {
        self.normalized
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or_default()
    }
}

fn validate_local(local: &str) -> Result<(), ValueProblem> {
    if local.is_empty() {
        return Err(ValueProblem::BadEmail("empty local part"));
    }
    if local.chars().count() > MAX_LOCAL {
        return Err(ValueProblem::BadEmail(
            "local part longer than 64 characters",
        ));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(ValueProblem::BadEmail("misplaced dot in local part"));
    }
    let bad = |c: char| c.is_whitespace() || c.is_control() || "@,;:<>()[]\\\"".contains(c);
    if local.chars().any(bad) {
        return Err(ValueProblem::BadEmail("forbidden character in local part"));
    }
    Ok(())
}

fn validate_domain(domain: &str) -> Result<(), ValueProblem> {
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(ValueProblem::BadEmail("domain has no dot"));
    }
    for label in &labels {
        let ok = !label.is_empty()
            && label.chars().count() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-');
        if !ok {
            return Err(ValueProblem::BadEmail("malformed domain"));
        }
    }
    let tld = labels.last().copied().unwrap_or_default();
    if tld.chars().count() < 2 || tld.chars().all(|c| c.is_ascii_digit()) {
        return Err(ValueProblem::BadEmail("malformed top-level domain"));
    }
    Ok(())
}

fn match_key(local: &str, domain: &str, policy: &EmailPolicy) -> String {
    let dot_insensitive = policy.dot_insensitive_domains.iter().any(|d| d == domain);
    let mut local = local.to_owned();
    if dot_insensitive || policy.strip_plus_tag_everywhere {
        if let Some((base, _tag)) = local.split_once('+') {
            if !base.is_empty() {
                local = base.to_owned();
            }
        }
    }
    if dot_insensitive {
        local.retain(|c| c != '.');
    }
    let domain = policy
        .domain_aliases
        .iter()
        .find(|(alias, _)| alias == domain)
        .map_or(domain, |(_, canonical)| canonical.as_str());
    format!("{local}@{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(raw: &str) -> Email {
        Email::parse(raw, &EmailPolicy::default()).expect("valid email")
    }

    #[test]
    fn normalizes_case_space_and_width() {
        let e = p("  Ada.Lovelace@EXAMPLE.com ");
        assert_eq!(e.normalized(), "ada.lovelace@example.com");
        assert_eq!(e.raw(), "  Ada.Lovelace@EXAMPLE.com ");
        assert_eq!(p("ａｄａ@example.com").normalized(), "ada@example.com");
    }

    #[test]
    fn gmail_rules_apply_to_match_key_only() {
        let e = p("A.Da+news@googlemail.com");
        assert_eq!(e.normalized(), "a.da+news@googlemail.com");
        assert_eq!(e.match_key(), "ada@gmail.com");
        assert_eq!(p("ada@gmail.com").match_key(), e.match_key());
        assert_eq!(p("a.da+x@example.com").match_key(), "a.da+x@example.com");
    }

    #[test]
    fn plus_tags_can_be_stripped_everywhere() {
        let policy = EmailPolicy {
            strip_plus_tag_everywhere: true,
            ..EmailPolicy::default()
        };
        let e = Email::parse("ada+shop@example.com", &policy).expect("valid");
        assert_eq!(e.match_key(), "ada@example.com");
        // A local part that is only a tag keeps it rather than becoming empty.
        let e = Email::parse("+shop@example.com", &policy).expect("valid");
        assert_eq!(e.match_key(), "+shop@example.com");
    }

    #[test]
    fn rejects_malformed_addresses() {
        let policy = EmailPolicy::default();
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada lovelace@example.com",
            "ada@exa mple.com",
            ".ada@example.com",
            "ada..l@example.com",
            "ada@-example.com",
            "ada@example.c",
            "ada@1.23",
        ] {
            assert!(Email::parse(bad, &policy).is_err(), "{bad:?} accepted");
        }
    }
}
