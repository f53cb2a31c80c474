//! Sentiment: a rule-based lexicon pass (negation, intensifiers, diminishers, contrast,
//! ALL-CAPS, exclamation marks, emoji and emoticons) stacked under a logistic regression over
//! the lexicon features and hashed, negation-marked unigrams and bigrams.

use serde::{Deserialize, Serialize};

use crate::error::InterpretError;
use crate::evidence::{Analyzer, Evidence};
use crate::lexicon::{self, Lexicon};
use crate::linear::{sigmoid, BinaryLogistic, SgdConfig, SparseVec};
use crate::text::{tokenize, CharMap, FastMap, Fnv, Token, TokenKind};

const WEIGHTS_JSON: &str = include_str!("../model/sentiment-weights.json");

/// Number of dense (lexicon) features before the hashed ones.
const DENSE: usize = 8;
/// Default hashing space for unigrams and bigrams (2^18 buckets).
pub const DEFAULT_HASH_BITS: u32 = 18;
/// VADER-style normalisation constant: compound = raw / sqrt(raw^2 + ALPHA).
const ALPHA: f32 = 15.0;

/// A sentiment score in `[-1, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f32", into = "f32")]
pub struct Score(f32);

impl Score {
    /// A score; rejects NaN and values outside `[-1, 1]`.
    pub fn new(value: f32) -> Result<Self, InterpretError> {
        if (-1.0..=1.0).contains(&value) {
            Ok(Score(value))
        } else {
            Err(InterpretError::OutOfRange(format!(
                "sentiment score {value} not in [-1, 1]"
            )))
        }
    }

    /// A score clamped into `[-1, 1]` (NaN becomes 0).
    pub fn clamped(value: f32) -> Self {
        if value.is_nan() {
            Score(0.0)
        } else {
            Score(value.clamp(-1.0, 1.0))
        }
    }

    /// The value.
    pub fn get(self) -> f32 {
        self.0
    }
}

impl TryFrom<f32> for Score {
    type Error = InterpretError;
    fn try_from(v: f32) -> Result<Self, Self::Error> {
        Score::new(v)
    }
}

impl From<Score> for f32 {
    fn from(s: Score) -> f32 {
        s.0
    }
}

/// Five sentiment levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SentimentLabel {
    /// score < -0.55
    VeryNegative,
    /// -0.55 <= score < -0.15
    Negative,
    /// -0.15 <= score <= 0.15
    Neutral,
    /// 0.15 < score <= 0.55
    Positive,
    /// score > 0.55
    VeryPositive,
}

impl SentimentLabel {
    /// The label of a score.
    pub fn from_score(score: Score) -> Self {
        let s = score.get();
        if s < -0.55 {
            SentimentLabel::VeryNegative
        } else if s < -0.15 {
            SentimentLabel::Negative
        } else if s <= 0.15 {
            SentimentLabel::Neutral
        } else if s <= 0.55 {
            SentimentLabel::Positive
        } else {
            SentimentLabel::VeryPositive
        }
    }

    /// 0 (very negative) ..= 4 (very positive).
    pub fn level(self) -> i8 {
        self as i8
    }
}

/// Sentiment of a text or sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    /// Final score in `[-1, 1]`: a blend of the trained model and the lexicon rules.
    pub score: Score,
    /// Five-level label of `score`.
    pub label: SentimentLabel,
    /// 0..=1: how much to trust the label (evidence found, agreement, language).
    pub confidence: f32,
    /// The rule-based lexicon score alone, in `[-1, 1]`.
    pub lexicon_score: Score,
    /// The trained model's probability of positive sentiment, mapped to `[-1, 1]`.
    pub model_score: Score,
}

/// One lexicon match after the rules were applied.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub first: usize,
    pub last: usize,
    pub value: f32,
    pub negated: bool,
}

/// Result of the rule-based pass over some tokens.
#[derive(Debug, Clone, Default)]
pub(crate) struct LexiconPass {
    pub hits: Vec<Hit>,
    pub raw: f32,
    pub compound: f32,
    pub pos: f32,
    pub neg: f32,
    pub emoji: f32,
    pub exclaims: usize,
    pub contrast: bool,
}

pub(crate) fn lexicon_pass(lex: &Lexicon, toks: &[Token<'_>]) -> LexiconPass {
    let n = toks.len();
    let lower: Vec<&str> = toks.iter().map(|t| &*t.lower).collect();
    let words = toks
        .iter()
        .filter(|t| t.kind == TokenKind::Word && t.raw.chars().count() >= 2)
        .count();
    let all_caps = words > 0
        && toks
            .iter()
            .filter(|t| t.kind == TokenKind::Word && t.raw.chars().count() >= 2)
            .all(Token::is_shouting);

    // Clause weights: after a contrast word the clause weighs more, before it less; a
    // concessive clause ("although it was cheap,") weighs less.
    let mut weight = vec![1.0f32; n];
    let mut out = LexiconPass::default();
    if let Some(c) = (0..n).rev().find(|&i| {
        lexicon::is_contrast(lower[i]) && !(lower[i] == "yet" && i > 0 && lower[i - 1] == "not")
    }) {
        out.contrast = true;
        weight[..c].iter_mut().for_each(|w| *w *= 0.5);
        weight[c + 1..].iter_mut().for_each(|w| *w *= 1.5);
    }
    for (i, word) in lower.iter().enumerate() {
        if lexicon::is_concessive(word) {
            for (t, w) in toks.iter().zip(weight.iter_mut()).skip(i + 1) {
                if t.is_clause_break() {
                    break;
                }
                *w *= 0.5;
            }
        }
    }

    let mut i = 0;
    while i < n {
        let t = &toks[i];
        if t.kind == TokenKind::Punct {
            if t.raw == "!" {
                out.exclaims += 1;
            }
            i += 1;
            continue;
        }
        let Some((len, base)) = lex.lookup(&lower, i) else {
            i += 1;
            continue;
        };
        if lower[i] == "like" && i > 0 && lexicon::neutralises_like(lower[i - 1]) {
            i += 1;
            continue;
        }
        let mut v = base;
        let mut negated = false;
        let mut k = i;
        let mut steps = 0;
        while k > 0 && steps < 3 {
            k -= 1;
            if toks[k].is_clause_break() || lexicon::is_contrast(lower[k]) {
                break;
            }
            if lexicon::is_negator(lower[k]) {
                negated = true;
            }
            steps += 1;
        }
        if i >= 1 {
            if let Some(boost) = lexicon::intensifier(lower[i - 1]) {
                v *= 1.0 + boost;
                if toks[i - 1].is_shouting() && !all_caps {
                    v *= 1.2;
                }
                if i >= 2 {
                    if let Some(b2) = lexicon::intensifier(lower[i - 2]) {
                        v *= 1.0 + b2 * 0.5;
                    }
                }
            } else if lexicon::diminisher(i.checked_sub(2).map(|j| lower[j]), lower[i - 1]) {
                v *= 0.5;
            }
        }
        if !all_caps && toks[i..i + len].iter().any(Token::is_shouting) {
            v *= 1.5;
        }
        if negated {
            v *= -0.55;
        }
        v *= weight[i];
        if matches!(t.kind, TokenKind::Emoji | TokenKind::Emoticon) {
            out.emoji += v;
        }
        if v > 0.0 {
            out.pos += v;
        } else {
            out.neg -= v;
        }
        out.raw += v;
        out.hits.push(Hit {
            first: i,
            last: i + len - 1,
            value: v,
            negated,
        });
        i += len;
    }
    if out.raw != 0.0 {
        out.raw += out.raw.signum() * 0.3 * out.exclaims.min(4) as f32;
    }
    if all_caps {
        out.raw *= 1.2;
    }
    out.compound = out.raw / (out.raw * out.raw + ALPHA).sqrt();
    out
}

/// Features of the trained model: dense lexicon features, then hashed unigrams and bigrams of
/// words, emoji and emoticons, with words in a negation scope marked.
pub(crate) fn model_features(toks: &[Token<'_>], pass: &LexiconPass, hash_bits: u32) -> SparseVec {
    let mut x: SparseVec = vec![
        (0, pass.compound),
        (1, (pass.pos / 5.0).min(2.0)),
        (2, (pass.neg / 5.0).min(2.0)),
        (
            3,
            pass.hits.iter().filter(|h| h.negated).count() as f32 * 0.5,
        ),
        (4, if pass.exclaims > 0 { 1.0 } else { 0.0 }),
        (5, if pass.hits.is_empty() { 1.0 } else { 0.0 }),
        (6, (pass.emoji / 3.0).clamp(-2.0, 2.0)),
        (7, if pass.contrast { 1.0 } else { 0.0 }),
    ];
    let buckets = 1u64 << hash_bits;
    // A term is a prefix ("not_" in a negation scope) and a body; the keys hashed are
    // "u\u{1}TERM" and "b\u{1}PREV\u{1}TERM", streamed into the hash without building them.
    let mut terms: Vec<(&str, &str)> = Vec::with_capacity(toks.len());
    let mut in_negation = false;
    for t in toks {
        if t.is_clause_break() || lexicon::is_contrast(&t.lower) {
            in_negation = false;
        }
        let term = match t.kind {
            TokenKind::Punct => continue,
            TokenKind::Number => ("", "<num>"),
            _ if in_negation => ("not_", &*t.lower),
            _ => ("", &*t.lower),
        };
        if lexicon::is_negator(&t.lower) {
            in_negation = true;
        }
        terms.push(term);
    }
    let start = x.len();
    let mut push = |h: Fnv| {
        let h = h.finish() % buckets;
        x.push((DENSE as u32 + h as u32, 1.0));
    };
    for (i, &(pre, body)) in terms.iter().enumerate() {
        push(Fnv::new().str("u\u{1}").str(pre).str(body));
        let (ppre, pbody) = if i == 0 { ("", "<s>") } else { terms[i - 1] };
        push(
            Fnv::new()
                .str("b\u{1}")
                .str(ppre)
                .str(pbody)
                .str("\u{1}")
                .str(pre)
                .str(body),
        );
    }
    let hashed = x.len() - start;
    if hashed > 0 {
        let norm = 1.0 / (hashed as f32).sqrt();
        x[start..].iter_mut().for_each(|f| f.1 = norm);
    }
    x
}

/// Serialized weights of the trained sentiment model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentimentWeights {
    /// Format version of this file.
    pub format: u32,
    /// Where the weights came from (data set, split, command).
    pub trained_on: String,
    /// log2 of the hashing space.
    pub hash_bits: u32,
    /// Share of the trained model in the final score (the rest is the lexicon score).
    pub blend: f32,
    /// Temperature applied to the model's margin before blending: the review-trained model is
    /// over-confident on support messages, so its probability is softened.
    #[serde(default = "one")]
    pub temperature: f32,
    /// Intercept.
    pub bias: f32,
    /// Weights of the dense lexicon features.
    pub dense: Vec<f32>,
    /// Non-zero hashed weights as (bucket, weight).
    pub sparse: Vec<(u32, f32)>,
}

fn one() -> f32 {
    1.0
}

/// The sentiment analyzer: lexicon rules plus the trained weights.
#[derive(Debug, Clone)]
pub(crate) struct SentimentModel {
    lexicon: Lexicon,
    hash_bits: u32,
    blend: f32,
    temperature: f32,
    bias: f32,
    dense: Vec<f32>,
    sparse: FastMap<u32, f32>,
}

impl SentimentModel {
    pub(crate) fn embedded(lexicon: Lexicon) -> Result<Self, InterpretError> {
        let w: SentimentWeights = serde_json::from_str(WEIGHTS_JSON)
            .map_err(|e| InterpretError::Model(format!("sentiment weights: {e}")))?;
        Ok(Self::with_weights(lexicon, &w))
    }

    pub(crate) fn with_weights(lexicon: Lexicon, w: &SentimentWeights) -> Self {
        SentimentModel {
            lexicon,
            hash_bits: w.hash_bits,
            blend: w.blend.clamp(0.0, 1.0),
            temperature: if w.temperature > 0.0 {
                w.temperature
            } else {
                1.0
            },
            bias: w.bias,
            dense: w.dense.clone(),
            sparse: w.sparse.iter().copied().collect(),
        }
    }

    fn margin(&self, x: &[(u32, f32)]) -> f32 {
        let mut z = self.bias;
        for &(i, v) in x {
            let w = if (i as usize) < DENSE {
                self.dense.get(i as usize).copied().unwrap_or(0.0)
            } else {
                self.sparse.get(&(i - DENSE as u32)).copied().unwrap_or(0.0)
            };
            z += w * v;
        }
        z
    }

    /// Scores a token slice. `language_factor` (0..=1) scales the confidence down for texts
    /// not in the lexicon's language.
    pub(crate) fn score(
        &self,
        toks: &[Token<'_>],
        language_factor: f32,
    ) -> (Sentiment, LexiconPass) {
        let pass = lexicon_pass(&self.lexicon, toks);
        let x = model_features(toks, &pass, self.hash_bits);
        let model = 2.0 * sigmoid(self.margin(&x) / self.temperature) - 1.0;
        let combined = self.blend * model + (1.0 - self.blend) * pass.compound;
        // Little lexicon evidence keeps the score near neutral (the sign still comes from the
        // model): a plain factual message should not read as strongly negative because the
        // review-trained model dislikes one of its words.
        let strength = (0.25 + pass.raw.abs() / 4.0).min(1.0);
        let score = Score::clamped(strength * combined);
        let agree = pass.compound == 0.0 || pass.compound.signum() == model.signum();
        let evidence = (pass.hits.len() as f32 / 3.0).min(1.0);
        let confidence =
            (0.3 + 0.3 * score.get().abs() + 0.25 * evidence + if agree { 0.15 } else { 0.0 })
                .clamp(0.0, 1.0)
                * language_factor.clamp(0.0, 1.0);
        (
            Sentiment {
                score,
                label: SentimentLabel::from_score(score),
                confidence,
                lexicon_score: Score::clamped(pass.compound),
                model_score: Score::clamped(model),
            },
            pass,
        )
    }

    /// Lexicon-only score of a text (for evaluation).
    pub(crate) fn lexicon_score(&self, text: &str) -> f32 {
        lexicon_pass(&self.lexicon, &tokenize(text)).compound
    }

    pub(crate) fn evidence(
        &self,
        text: &str,
        map: &CharMap,
        toks: &[Token<'_>],
        pass: &LexiconPass,
    ) -> Vec<Evidence> {
        pass.hits
            .iter()
            .map(|h| {
                let (a, b) = (toks[h.first].byte_start, toks[h.last].byte_end);
                Evidence {
                    analyzer: Analyzer::Sentiment,
                    label: if h.value >= 0.0 {
                        "positive"
                    } else {
                        "negative"
                    }
                    .to_string(),
                    phrase: text[a..b].to_string(),
                    span: map.span(a, b),
                    weight: h.value,
                }
            })
            .collect()
    }
}

/// Trains the sentiment weights on labelled texts (true = positive).
pub fn train_weights(
    data: &[(String, bool)],
    hash_bits: u32,
    blend: f32,
    temperature: f32,
    cfg: &SgdConfig,
    trained_on: &str,
) -> Result<SentimentWeights, InterpretError> {
    let lexicon = Lexicon::embedded()?;
    let lex = &lexicon;
    let examples: Vec<(SparseVec, bool)> = data
        .iter()
        .map(|(t, y)| {
            let toks = tokenize(t);
            let pass = lexicon_pass(lex, &toks);
            (model_features(&toks, &pass, hash_bits), *y)
        })
        .collect();
    let m = BinaryLogistic::train(&examples, DENSE + (1usize << hash_bits), cfg);
    let round = |w: f32| (w * 10_000.0).round() / 10_000.0;
    Ok(SentimentWeights {
        format: 1,
        trained_on: trained_on.to_string(),
        hash_bits,
        blend,
        temperature,
        bias: round(m.bias),
        dense: m.weights[..DENSE].iter().map(|w| round(*w)).collect(),
        sparse: m.weights[DENSE..]
            .iter()
            .enumerate()
            .filter(|(_, w)| round(**w) != 0.0)
            .map(|(i, w)| (i as u32, round(*w)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex() -> Lexicon {
        Lexicon::embedded().expect("lexicon")
    }

    fn compound(text: &str) -> f32 {
        lexicon_pass(&lex(), &tokenize(text)).compound
    }

    #[test]
    fn negation_flips() {
        assert!(compound("the service was good") > 0.2);
        assert!(compound("the service was not good") < 0.0);
        assert!(compound("not bad at all") > 0.0);
        assert!(compound("never again") < -0.3);
    }

    #[test]
    fn intensifiers_and_diminishers() {
        let base = compound("it was good");
        assert!(compound("it was extremely good") > base);
        assert!(compound("it was a bit good") < base);
    }

    #[test]
    fn contrast_weighs_later_clause() {
        assert!(compound("The staff were nice but the product is terrible") < 0.0);
        assert!(compound("The product is terrible but the staff were lovely and great") > 0.0);
    }

    #[test]
    fn emoji_emoticons_caps_exclamation() {
        assert!(compound("ok 😡") < 0.0);
        assert!(compound("arrived :)") > 0.0);
        assert!(compound("this is BAD") < compound("this is bad"));
        assert!(compound("great!!!") > compound("great"));
    }

    #[test]
    fn like_as_comparison_is_neutral() {
        assert_eq!(compound("it looks like a box"), 0.0);
        assert!(compound("I like it") > 0.0);
    }

    #[test]
    fn score_rejects_out_of_range() {
        assert!(Score::new(1.5).is_err());
        assert!(Score::new(f32::NAN).is_err());
        assert_eq!(Score::clamped(-3.0).get(), -1.0);
        assert!(serde_json::from_str::<Score>("2.0").is_err());
    }

    #[test]
    fn labels_from_scores() {
        assert_eq!(
            SentimentLabel::from_score(Score::clamped(-0.9)),
            SentimentLabel::VeryNegative
        );
        assert_eq!(
            SentimentLabel::from_score(Score::clamped(0.0)),
            SentimentLabel::Neutral
        );
        assert_eq!(
            SentimentLabel::from_score(Score::clamped(0.3)),
            SentimentLabel::Positive
        );
    }
}
