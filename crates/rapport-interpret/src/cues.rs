//! A cue matcher: many case-insensitive phrase patterns, each with a tag and a value, found in
//! one pass with a `RegexSet` prefilter, then located with the individual patterns.

use regex::{Regex, RegexSet};

use crate::error::InterpretError;
use crate::lexicon::is_negator;

/// One pattern found in a text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CueMatch<T> {
    pub tag: T,
    pub value: f32,
    pub byte_start: usize,
    pub byte_end: usize,
    /// Whether a negator precedes the match within its clause (up to three words back).
    pub negated: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct CueSet<T> {
    set: RegexSet,
    regexes: Vec<Regex>,
    meta: Vec<(T, f32)>,
}

impl<T: Copy + PartialEq> CueSet<T> {
    /// Patterns are regex fragments matched case-insensitively between word boundaries; a
    /// pattern starting with `~` is used without boundaries (emoji, emoticons).
    pub(crate) fn new(cues: &[(&str, T, f32)]) -> Result<Self, InterpretError> {
        // Word boundaries are ASCII ones: with Unicode boundaries the regex engine's fast
        // automaton gives up on any non-ASCII byte (an emoji, a curly apostrophe) and falls
        // back to a search many times slower. The cues are English words, so the only
        // difference is at an ASCII letter glued to a non-ASCII one ("caféangry").
        let patterns: Vec<String> = cues
            .iter()
            .map(|(p, _, _)| {
                let p = p.replace(r"\b", r"(?-u:\b)");
                match p.strip_prefix('~') {
                    Some(raw) => format!(r"(?:{raw})"),
                    None => format!(r"(?-u:\b)(?:{p})(?-u:\b)"),
                }
            })
            .collect();
        let set = regex::RegexSetBuilder::new(&patterns)
            .dfa_size_limit(64 << 20)
            .build()
            .map_err(|e| InterpretError::Model(format!("cue patterns: {e}")))?;
        let regexes = patterns
            .iter()
            .map(|p| Regex::new(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| InterpretError::Model(format!("cue pattern: {e}")))?;
        Ok(CueSet {
            set,
            regexes,
            meta: cues.iter().map(|(_, t, v)| (*t, *v)).collect(),
        })
    }

    /// All matches; for one tag, overlapping matches keep the longest.
    pub(crate) fn find(&self, text: &str) -> Vec<CueMatch<T>> {
        let lower = text.to_ascii_lowercase();
        self.find_lower(text, &lower)
    }

    pub(crate) fn find_lower(&self, text: &str, lower: &str) -> Vec<CueMatch<T>> {
        let mut all: Vec<CueMatch<T>> = Vec::new();
        for idx in self.set.matches(lower).iter() {
            let (tag, value) = self.meta[idx];
            for m in self.regexes[idx].find_iter(lower) {
                all.push(CueMatch {
                    tag,
                    value,
                    byte_start: m.start(),
                    byte_end: m.end(),
                    negated: negated_before(text, m.start()),
                });
            }
        }
        all.sort_by(|a, b| {
            a.byte_start
                .cmp(&b.byte_start)
                .then((b.byte_end - b.byte_start).cmp(&(a.byte_end - a.byte_start)))
        });
        let mut kept: Vec<CueMatch<T>> = Vec::with_capacity(all.len());
        for m in all {
            let clash = kept
                .iter()
                .any(|k| k.tag == m.tag && k.byte_start < m.byte_end && m.byte_start < k.byte_end);
            if !clash {
                kept.push(m);
            }
        }
        kept
    }
}

/// Whether one of the (up to) three words before `byte` in the same clause is a negator.
pub(crate) fn negated_before(text: &str, byte: usize) -> bool {
    let before = text.get(..byte).unwrap_or("");
    let clause_start = before
        .rfind(['.', '!', '?', ';', ',', ':', '\n'])
        .map_or(0, |i| i + 1);
    let clause = &before[clause_start..];
    clause
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .filter(|w| !w.is_empty())
        .rev()
        .take(3)
        .enumerate()
        .any(|(k, w)| {
            let w = w.to_lowercase().replace('’', "'");
            // "no" negates only the word right after it ("no idea" vs "no, I am angry").
            if w == "no" {
                k == 0
            } else {
                is_negator(&w)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_longest_and_negation() {
        let set = CueSet::new(&[
            ("easy", 1u8, 3.0),
            ("so easy", 1u8, 4.0),
            ("angry", 2u8, 2.0),
        ])
        .expect("cues");
        let m = set.find("It was so easy. I'm not angry");
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].value, 4.0);
        assert!(!m[0].negated);
        assert!(m[1].negated);
    }
}
