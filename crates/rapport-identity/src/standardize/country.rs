//! Countries to ISO 3166-1 alpha-2, from alpha-2, alpha-3, English names and common variants
//! (native names, former names, abbreviations). The table lists all 249 assigned codes.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::text::clean_for_matching;
use crate::error::ValueProblem;

/// One line per country: `alpha2|alpha3|English name|variant|variant...`.
const TABLE: &str = include_str!("country_table.txt");

fn lookup_key(raw: &str) -> String {
    let cleaned = clean_for_matching(raw);
    let cleaned = cleaned.strip_prefix("the ").unwrap_or(&cleaned);
    cleaned.replace(" and ", " ").replace(" & ", " ")
}

fn index() -> &'static HashMap<String, &'static str> {
    static INDEX: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut map = HashMap::new();
        for line in TABLE.lines().filter(|l| !l.trim().is_empty()) {
            let mut fields = line.split('|');
            let Some(alpha2) = fields.next() else {
                continue;
            };
            map.insert(lookup_key(alpha2), alpha2);
            for other in fields {
                map.insert(lookup_key(other), alpha2);
            }
        }
        map
    })
}

/// The ISO 3166-1 alpha-2 code for a country written any common way.
pub fn country_code(raw: &str) -> Result<&'static str, ValueProblem> {
    let key = lookup_key(raw);
    if key.is_empty() {
        return Err(ValueProblem::Empty);
    }
    index()
        .get(&key)
        .copied()
        .ok_or_else(|| ValueProblem::UnknownCountry(raw.trim().to_owned()))
}

/// The English short name for an alpha-2 code.
pub fn country_name(alpha2: &str) -> Option<&'static str> {
    let code = alpha2.trim().to_ascii_uppercase();
    TABLE.lines().find_map(|line| {
        let mut fields = line.split('|');
        let a2 = fields.next()?;
        let _a3 = fields.next()?;
        (a2 == code).then(|| fields.next()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_complete_and_unambiguous() {
        let mut seen = HashMap::new();
        let mut count = 0;
        for line in TABLE.lines() {
            count += 1;
            let fields: Vec<&str> = line.split('|').collect();
            assert!(fields.len() >= 3, "{line}");
            assert_eq!(fields[0].len(), 2, "{line}");
            assert_eq!(fields[1].len(), 3, "{line}");
            for f in &fields {
                if let Some(prev) = seen.insert(lookup_key(f), fields[0]) {
                    assert_eq!(prev, fields[0], "{f:?} names two countries");
                }
            }
        }
        assert_eq!(count, 249);
    }

    #[test]
    fn common_forms_resolve() {
        for (raw, code) in [
            ("us", "US"),
            ("USA", "US"),
            ("United States of America", "US"),
            ("U.S.A.", "US"),
            ("uk", "GB"),
            ("Great Britain", "GB"),
            ("DEU", "DE"),
            ("Deutschland", "DE"),
            ("the Netherlands", "NL"),
            ("Côte d’Ivoire", "CI"),
            ("cote d'ivoire", "CI"),
            ("Bosnia & Herzegovina", "BA"),
            ("España", "ES"),
            ("Türkiye", "TR"),
            ("South Korea", "KR"),
            ("Viet Nam", "VN"),
        ] {
            assert_eq!(country_code(raw), Ok(code), "{raw}");
        }
        assert!(country_code("Atlantis").is_err());
        assert_eq!(country_name("fr"), Some("France"));
    }
}
