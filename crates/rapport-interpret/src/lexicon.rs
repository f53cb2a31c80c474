//! The valence lexicon: AFINN-165 (ODbL, shipped unchanged in `lexicon/afinn-165.json`) with
//! Rapport's own customer-experience additions and overrides (`lexicon/cx.txt`), plus the
//! small closed word lists the rules use (negators, intensifiers, diminishers, contrast).

use std::collections::HashMap;

use crate::error::InterpretError;
use crate::text::FastMap;

const AFINN_JSON: &str = include_str!("../lexicon/afinn-165.json");
const CX_TXT: &str = include_str!("../lexicon/cx.txt");

/// Word and phrase valences, looked up on lowercase tokens.
#[derive(Debug, Clone)]
pub(crate) struct Lexicon {
    words: FastMap<String, f32>,
    /// Multi-word entries keyed by their first token; longest first.
    phrases: FastMap<String, Vec<(Vec<String>, f32)>>,
}

impl Lexicon {
    pub(crate) fn embedded() -> Result<Self, InterpretError> {
        let afinn: HashMap<String, f32> = serde_json::from_str(AFINN_JSON)
            .map_err(|e| InterpretError::Model(format!("AFINN lexicon: {e}")))?;
        let mut entries: HashMap<String, f32> = afinn;
        for (n, line) in CX_TXT.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with("# ") || line == "#" {
                continue;
            }
            let (term, value) = line.split_once('\t').ok_or_else(|| {
                InterpretError::Model(format!("cx.txt line {}: missing tab", n + 1))
            })?;
            let value: f32 = value
                .trim()
                .parse()
                .map_err(|_| InterpretError::Model(format!("cx.txt line {}: bad value", n + 1)))?;
            entries.insert(term.to_string(), value);
        }
        let mut words = FastMap::default();
        let mut phrases: FastMap<String, Vec<(Vec<String>, f32)>> = FastMap::default();
        for (term, value) in entries {
            if value == 0.0 {
                continue;
            }
            let parts: Vec<String> = crate::text::tokenize(&term)
                .into_iter()
                .map(|t| t.lower.into_owned())
                .collect();
            match parts.len() {
                0 => {}
                1 => {
                    words.insert(parts[0].clone(), value);
                }
                _ => phrases
                    .entry(parts[0].clone())
                    .or_default()
                    .push((parts, value)),
            }
        }
        for list in phrases.values_mut() {
            list.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        }
        Ok(Lexicon { words, phrases })
    }

    /// The longest entry starting at token `i`: (number of tokens, valence).
    pub(crate) fn lookup(&self, lower: &[&str], i: usize) -> Option<(usize, f32)> {
        let first = lower.get(i)?;
        if let Some(list) = self.phrases.get(*first) {
            for (parts, v) in list {
                let end = i + parts.len();
                if end <= lower.len() && parts.iter().zip(&lower[i..end]).all(|(p, t)| p == t) {
                    return Some((parts.len(), *v));
                }
            }
        }
        self.words.get(*first).map(|v| (1, *v))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.words.len() + self.phrases.values().map(Vec::len).sum::<usize>()
    }
}

/// Words that negate what follows within their clause.
pub(crate) fn is_negator(w: &str) -> bool {
    matches!(
        w,
        "not"
            | "no"
            | "never"
            | "cannot"
            | "without"
            | "neither"
            | "nor"
            | "hardly"
            | "barely"
            | "nothing"
            | "nobody"
            | "none"
            | "nowhere"
            | "cant"
            | "dont"
            | "doesnt"
            | "didnt"
            | "isnt"
            | "wasnt"
            | "wont"
            | "wouldnt"
            | "couldnt"
            | "shouldnt"
            | "arent"
            | "werent"
            | "aint"
    ) || w.ends_with("n't")
}

/// Multiplier added by an intensifier ("very good" = good x 1.3).
pub(crate) fn intensifier(w: &str) -> Option<f32> {
    Some(match w {
        "extremely" | "incredibly" | "utterly" | "insanely" | "hugely" | "absolutely" => 0.5,
        "very" | "really" | "super" | "totally" | "completely" | "seriously" | "highly"
        | "truly" | "terribly" | "awfully" | "particularly" | "exceptionally" => 0.3,
        "so" | "too" | "most" | "especially" | "deeply" | "majorly" | "damn" | "freaking"
        | "fucking" | "bloody" => 0.25,
        "pretty" | "quite" | "more" => 0.1,
        _ => return None,
    })
}

/// Diminishers, one or two tokens ("slightly", "a bit", "kind of").
pub(crate) fn diminisher(prev2: Option<&str>, prev: &str) -> bool {
    matches!(
        prev,
        "slightly" | "somewhat" | "kinda" | "sorta" | "fairly" | "rather" | "mildly" | "marginally"
    ) || matches!(
        (prev2, prev),
        (Some("a"), "bit" | "little")
            | (Some("kind" | "sort"), "of")
            | (Some("little"), "bit")
            | (Some("a"), "tad")
    )
}

/// Words after which the clause that follows outweighs the one before.
pub(crate) fn is_contrast(w: &str) -> bool {
    matches!(
        w,
        "but" | "however" | "nevertheless" | "nonetheless" | "yet" | "except" | "unfortunately"
    )
}

/// Words whose clause (up to the next comma) weighs less than the main clause.
pub(crate) fn is_concessive(w: &str) -> bool {
    matches!(w, "although" | "though" | "while" | "whilst" | "despite")
}

/// Tokens before "like" that make it a comparison or a request, not a liking.
pub(crate) fn neutralises_like(prev: &str) -> bool {
    matches!(
        prev,
        "looks"
            | "look"
            | "looked"
            | "seems"
            | "seem"
            | "seemed"
            | "feel"
            | "feels"
            | "felt"
            | "sounds"
            | "sound"
            | "just"
            | "something"
            | "would"
            | "i'd"
            | "we'd"
            | "more"
            | "is"
            | "was"
            | "things"
            | "stuff"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_afinn_and_cx() {
        let lex = Lexicon::embedded().expect("lexicon");
        assert!(lex.len() > 3000);
        let toks = ["never", "again", "good"];
        assert_eq!(lex.lookup(&toks, 0), Some((2, -3.0)));
        assert!(lex.lookup(&toks, 2).is_some_and(|(_, v)| v > 0.0));
        // Overridden to neutral.
        assert_eq!(lex.lookup(&["help"], 0), None);
    }
}
