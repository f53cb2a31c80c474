//! Candidate pairs: the pairs that satisfy at least one blocking rule, without duplicates.

use std::borrow::Cow;
use std::collections::HashMap;

use foldhash::fast::RandomState;

use rayon::prelude::*;

use super::data::NULL;
use super::model::Segment;
use super::settings::{BlockingKey, KeyTransform};
use super::similarity::soundex;
use super::text::clean as clean_for_matching;
use crate::error::IdentityError;
use crate::standardize::text::digits;

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

/// Each record's code for one blocking key (`NULL` when the key is empty). Keys are derived
/// once per distinct value, in parallel.
fn key_codes(key: &BlockingKey, segments: &[Segment<'_>]) -> Vec<u32> {
    let total: usize = segments.iter().map(|s| s.len).sum();
    let mut out = Vec::with_capacity(total);
    let mut interned: HashMap<String, u32, RandomState> = HashMap::default();
    for seg in segments {
        let Some(col) = seg.column else {
            out.extend(std::iter::repeat_n(NULL, seg.len));
            continue;
        };
        let derived: Vec<Option<String>> = col
            .values
            .par_iter()
            .map(|v| blocking_key(v, key.transform))
            .collect();
        let to_code: Vec<u32> = derived
            .into_iter()
            .map(|k| match k {
                None => NULL,
                Some(k) => {
                    let n = interned.len() as u32;
                    *interned.entry(k).or_insert(n)
                }
            })
            .collect();
        out.extend(col.codes.iter().map(|&c| match c {
            NULL => NULL,
            c => to_code[c as usize],
        }));
    }
    out
}

/// A record's key for a rule when any part of it is empty (the rule does not block it).
const NO_KEY: u64 = u64::MAX;

/// One key per record for a whole rule: the parts' codes combined ([`NO_KEY`] when any part
/// is empty). `codes` gives each part's record codes, derived once per column and transform
/// however many rules use them.
fn rule_keys(
    rule: &[BlockingKey],
    codes: &dyn Fn(&BlockingKey) -> usize,
    cache: &[Cow<'_, [u32]>],
) -> Vec<u64> {
    let parts: Vec<&[u32]> = rule.iter().map(|k| &*cache[codes(k)]).collect();
    let n = parts.first().map_or(0, |p| p.len());
    match parts.len() {
        1 => parts[0]
            .par_iter()
            .map(|&c| if c == NULL { NO_KEY } else { u64::from(c) })
            .collect(),
        2 => parts[0]
            .par_iter()
            .zip(parts[1].par_iter())
            .map(|(&x, &y)| {
                if x == NULL || y == NULL {
                    NO_KEY
                } else {
                    (u64::from(x) << 32) | u64::from(y)
                }
            })
            .collect(),
        _ => {
            let mut tuples: HashMap<Vec<u32>, u64, RandomState> = HashMap::default();
            (0..n)
                .map(|r| {
                    if parts.iter().any(|p| p[r] == NULL) {
                        return NO_KEY;
                    }
                    let t: Vec<u32> = parts.iter().map(|p| p[r]).collect();
                    let next = tuples.len() as u64;
                    *tuples.entry(t).or_insert(next)
                })
                .collect()
        }
    }
}

/// Record codes already made for a column with a derivation equal to a key's transform (the
/// compared values cleaned as an `Exact` key cleans them, or digits as `Digits`): two records
/// share a code exactly when they share that key, so blocking uses them as they are.
pub(crate) struct KnownCodes<'b> {
    pub column: &'b str,
    pub transform: KeyTransform,
    pub codes: &'b [u32],
}

/// Candidate pairs `(a, b)`, `a < b`, sorted and without duplicates. `segments(column)` says
/// where each run of records reads that column. A rule whose blocks alone would exceed
/// `max_pairs` is refused before its pairs are made.
///
/// Each rule only adds the pairs that no earlier rule found (a pair is skipped when the two
/// records share an earlier rule's key), so pairs never need deduplicating and are sorted once.
pub(crate) fn candidate_pairs<'a>(
    universe: Universe,
    rules: &[Vec<BlockingKey>],
    segments: &(dyn Fn(&str) -> Vec<Segment<'a>> + Sync),
    known: &[KnownCodes<'_>],
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
    // Record codes per distinct (column, transform), each derived once.
    let mut distinct: Vec<&BlockingKey> = Vec::new();
    for k in rules.iter().flatten() {
        if !distinct
            .iter()
            .any(|d| d.column == k.column && d.transform == k.transform)
        {
            distinct.push(k);
        }
    }
    let cache: Vec<Cow<'_, [u32]>> = distinct
        .iter()
        .map(|k| {
            match known
                .iter()
                .find(|c| c.column == k.column && c.transform == k.transform)
            {
                Some(c) => Cow::Borrowed(c.codes),
                None => Cow::Owned(key_codes(k, &segments(&k.column))),
            }
        })
        .collect();
    let index = |k: &BlockingKey| {
        distinct
            .iter()
            .position(|d| d.column == k.column && d.transform == k.transform)
            .unwrap_or(0)
    };
    let mut keys: Vec<Vec<u64>> = Vec::with_capacity(rules.len());
    let mut all: Vec<u64> = Vec::new();
    for rule in rules {
        let rk = rule_keys(rule, &index, &cache);
        let mut keyed: Vec<(u64, u32)> = rk
            .iter()
            .enumerate()
            .filter(|(_, &k)| k != NO_KEY)
            .map(|(r, &k)| (k, r as u32))
            .collect();
        keyed.par_sort_unstable();
        let groups: Vec<&[(u64, u32)]> = keyed
            .chunk_by(|x, y| x.0 == y.0)
            .filter(|g| g.len() > 1)
            .collect();
        let count = |g: &[(u64, u32)]| -> u64 {
            match universe.mode {
                MatchMode::Dedupe => (g.len() as u64) * (g.len() as u64 - 1) / 2,
                MatchMode::Link => {
                    let left = g
                        .iter()
                        .filter(|(_, r)| (*r as usize) < universe.n_left)
                        .count() as u64;
                    left * (g.len() as u64 - left)
                }
            }
        };
        let in_rule: u64 = groups.iter().map(|g| count(g)).sum();
        if in_rule > max_pairs {
            return Err(IdentityError::TooManyPairs(in_rule, max_pairs));
        }
        let earlier = &keys;
        let seen = |a: usize, b: usize| {
            earlier
                .iter()
                .any(|k: &Vec<u64>| k[a] != NO_KEY && k[a] == k[b])
        };
        let new: Vec<u64> = groups
            .par_iter()
            .flat_map_iter(|g| {
                g.iter().enumerate().flat_map(move |(i, &(_, a))| {
                    g[i + 1..].iter().filter_map(move |&(_, b)| {
                        let (a, b) = (a as usize, b as usize);
                        (universe.eligible(a, b) && !seen(a, b))
                            .then_some(((a as u64) << 32) | b as u64)
                    })
                })
            })
            .collect();
        all.extend(new);
        if all.len() as u64 > max_pairs {
            return Err(IdentityError::TooManyPairs(all.len() as u64, max_pairs));
        }
        keys.push(rk);
    }
    all.par_sort_unstable();
    Ok(all
        .into_iter()
        .map(|p| ((p >> 32) as u32, p as u32))
        .collect())
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
        let data = crate::matching::Dataset::new(
            "t",
            vec!["n".into()],
            ["ann", "anne", "ann", "bob"]
                .iter()
                .enumerate()
                .map(|(i, v)| crate::matching::Record {
                    id: i.to_string(),
                    values: vec![Some((*v).to_owned())],
                })
                .collect(),
        )
        .expect("data");
        let value = |c: &str| {
            vec![Segment {
                column: data.column(c),
                len: data.len(),
            }]
        };
        let rules = vec![vec![BlockingKey::parse("n:first3").expect("key")]];
        let u = Universe {
            mode: MatchMode::Link,
            n: 4,
            n_left: 2,
        };
        let pairs = candidate_pairs(u, &rules, &value, &[], 100).expect("pairs");
        assert_eq!(pairs, vec![(0, 2), (1, 2)]);
        let u = Universe {
            mode: MatchMode::Dedupe,
            n: 4,
            n_left: 4,
        };
        let pairs = candidate_pairs(u, &rules, &value, &[], 100).expect("pairs");
        assert_eq!(pairs, vec![(0, 1), (0, 2), (1, 2)]);
        assert!(candidate_pairs(u, &[], &value, &[], 5).is_err());
        assert_eq!(
            candidate_pairs(u, &[], &value, &[], 6)
                .map(|p| p.len())
                .ok(),
            Some(6)
        );
    }
}
