//! Candidate pairs: the pairs that satisfy at least one blocking rule, without duplicates.

use std::collections::{HashMap, HashSet};

use super::settings::{BlockingKey, KeyTransform};
use super::similarity::soundex;
use crate::error::IdentityError;
use crate::standardize::text::{clean_for_matching, digits};

/// Which pairs are eligible: all pairs of one table, or only pairs across two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    Dedupe,
    Link,
}

/// Records are numbered `0..n`; in link mode `0..n_left` are the left table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Universe {
    pub mode: MatchMode,
    pub n: usize,
    pub n_left: usize,
}

impl Universe {
    pub fn total_pairs(&self) -> u64 {
        match self.mode {
            MatchMode::Dedupe => (self.n as u64) * (self.n.saturating_sub(1) as u64) / 2,
            MatchMode::Link => (self.n_left as u64) * ((self.n - self.n_left) as u64),
        }
    }

    /// Whether `(a, b)` with `a < b` is an eligible pair.
    pub fn eligible(&self, a: usize, b: usize) -> bool {
        match self.mode {
            MatchMode::Dedupe => a < b,
            MatchMode::Link => a < self.n_left && b >= self.n_left,
        }
    }
}

/// The derived key of one value, `None` when it is empty after transformation.
pub fn blocking_key(value: &str, transform: KeyTransform) -> Option<String> {
    let key = match transform {
        KeyTransform::Exact => clean_for_matching(value),
        KeyTransform::First(n) => clean_for_matching(value).chars().take(n).collect(),
        KeyTransform::Last(n) => {
            let c: Vec<char> = clean_for_matching(value).chars().collect();
            c[c.len().saturating_sub(n)..].iter().collect()
        }
        KeyTransform::Soundex => soundex(&clean_for_matching(value)),
        KeyTransform::Digits => digits(value),
    };
    (!key.is_empty()).then_some(key)
}

/// Candidate pairs `(a, b)`, `a < b`, sorted. `value(record, column)` reads raw values.
pub(crate) fn candidate_pairs<'a>(
    universe: Universe,
    rules: &[Vec<BlockingKey>],
    value: &dyn Fn(usize, &str) -> Option<&'a str>,
    max_pairs: u64,
) -> Result<Vec<(u32, u32)>, IdentityError> {
    if rules.is_empty() {
        let total = universe.total_pairs();
        if total > max_pairs {
            return Err(IdentityError::TooManyPairs(total, max_pairs));
        }
        let mut all = Vec::with_capacity(total as usize);
        for a in 0..universe.n {
            for b in a + 1..universe.n {
                if universe.eligible(a, b) {
                    all.push((a as u32, b as u32));
                }
            }
        }
        return Ok(all);
    }
    let mut seen: HashSet<(u32, u32)> = HashSet::new();
    for rule in rules {
        let mut groups: HashMap<String, Vec<u32>> = HashMap::new();
        'records: for r in 0..universe.n {
            let mut key = String::new();
            for k in rule {
                let Some(part) = value(r, &k.column).and_then(|v| blocking_key(v, k.transform))
                else {
                    continue 'records;
                };
                key.push_str(&part);
                key.push('\u{1f}');
            }
            groups.entry(key).or_default().push(r as u32);
        }
        for members in groups.values() {
            for (i, &a) in members.iter().enumerate() {
                for &b in &members[i + 1..] {
                    if universe.eligible(a as usize, b as usize) {
                        seen.insert((a, b));
                    }
                }
            }
            if seen.len() as u64 > max_pairs {
                return Err(IdentityError::TooManyPairs(seen.len() as u64, max_pairs));
            }
        }
    }
    let mut pairs: Vec<(u32, u32)> = seen.into_iter().collect();
    pairs.sort_unstable();
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            blocking_key("Arnie Morton's", KeyTransform::First(3)),
            Some("arn".into())
        );
        assert_eq!(
            blocking_key("310/246-1501", KeyTransform::Digits),
            Some("3102461501".into())
        );
        assert_eq!(
            blocking_key("310/246-1501", KeyTransform::Last(4)),
            Some("1501".into())
        );
        assert_eq!(
            blocking_key("Robert", KeyTransform::Soundex),
            Some("R163".into())
        );
        assert_eq!(blocking_key("--", KeyTransform::Exact), None);
    }

    #[test]
    fn link_mode_only_pairs_across_tables() {
        let names = ["ann", "anne", "ann", "bob"];
        let value = |r: usize, _: &str| Some(names[r]);
        let rules = vec![vec![BlockingKey::parse("n:first3").expect("key")]];
        let u = Universe {
            mode: MatchMode::Link,
            n: 4,
            n_left: 2,
        };
        let pairs = candidate_pairs(u, &rules, &value, 100).expect("pairs");
        assert_eq!(pairs, vec![(0, 2), (1, 2)]);
        let u = Universe {
            mode: MatchMode::Dedupe,
            n: 4,
            n_left: 4,
        };
        let pairs = candidate_pairs(u, &rules, &value, 100).expect("pairs");
        assert_eq!(pairs, vec![(0, 1), (0, 2), (1, 2)]);
        assert!(candidate_pairs(u, &[], &value, 5).is_err());
        assert_eq!(
            candidate_pairs(u, &[], &value, 6).map(|p| p.len()).ok(),
            Some(6)
        );
    }
}
