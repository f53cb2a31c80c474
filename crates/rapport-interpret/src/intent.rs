//! Intent classification over a taxonomy the company configures with example phrases, trained
//! when the interpreter is built: TF-IDF over hashed word n-grams and character n-grams, then
//! multinomial logistic regression (default) or nearest centroid by cosine.

use serde::{Deserialize, Serialize};

use crate::error::InterpretError;
use crate::linear::{SgdConfig, Softmax, SparseVec};
use crate::text::{tokenize, Fnv, Token, TokenKind};

/// One intent and the phrases that express it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// snake_case name shown to agents and used by routing rules.
    pub name: String,
    /// Example customer phrases (ten or more work best).
    pub examples: Vec<String>,
}

/// The intents a company cares about, and the confidence under which a message is out of
/// scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentTaxonomy {
    /// The intents.
    pub intents: Vec<Intent>,
    /// Minimum confidence (softmax probability, or cosine for the centroid classifier) for a
    /// label; below it the message is out of scope.
    pub threshold: f32,
}

impl IntentTaxonomy {
    /// Checks the taxonomy as a whole and reports every problem at once.
    pub fn validate(&self) -> Result<(), InterpretError> {
        let mut problems = Vec::new();
        if self.intents.is_empty() {
            problems.push("no intents".to_string());
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            problems.push(format!("threshold {} not in 0..=1", self.threshold));
        }
        let mut seen = std::collections::HashSet::new();
        for intent in &self.intents {
            if intent.name.trim().is_empty() {
                problems.push("an intent has an empty name".to_string());
            }
            if intent.name == OUT_OF_SCOPE_LABEL {
                problems.push(format!(
                    "{OUT_OF_SCOPE_LABEL:?} is reserved for out of scope"
                ));
            }
            if !seen.insert(intent.name.as_str()) {
                problems.push(format!("duplicate intent {:?}", intent.name));
            }
            if intent.examples.iter().all(|e| e.trim().is_empty()) {
                problems.push(format!("intent {:?} has no examples", intent.name));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(InterpretError::InvalidTaxonomy(problems.join("; ")))
        }
    }

    /// Rapport's default customer-experience taxonomy (see `default_taxonomy.rs`).
    pub fn default_cx() -> Self {
        crate::default_taxonomy::default_cx()
    }
}

/// The class an intent model learns from messages agents marked out of scope. It is no
/// intent: a message it wins is answered out of scope, and no taxonomy may use the name.
pub const OUT_OF_SCOPE_LABEL: &str = "out_of_scope";

/// Which classifier sits on the features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassifierKind {
    /// Multinomial logistic regression (SGD); confidence is a probability.
    Softmax,
    /// Nearest class centroid by cosine; confidence is the cosine.
    Centroid,
}

/// Feature and training options of the intent classifier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IntentConfig {
    /// Add word bigrams to unigrams.
    pub word_bigrams: bool,
    /// Character n-gram lengths inside words (min, max); `None` for none.
    pub char_ngrams: Option<(usize, usize)>,
    /// Weight of the character n-gram block relative to words.
    pub char_weight: f32,
    /// The classifier.
    pub classifier: ClassifierKind,
    /// SGD settings for the softmax classifier.
    pub sgd: SgdConfig,
}

impl Default for IntentConfig {
    fn default() -> Self {
        IntentConfig {
            word_bigrams: true,
            char_ngrams: Some((3, 5)),
            char_weight: 0.6,
            classifier: ClassifierKind::Softmax,
            sgd: SgdConfig {
                epochs: 15,
                learning_rate: 2.0,
                decay: 0.2,
                l2: 1e-6,
                seed: 7,
            },
        }
    }
}

/// A label and its confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentScore {
    /// Intent name.
    pub label: String,
    /// Probability (softmax) or cosine (centroid).
    pub confidence: f32,
}

/// The intent of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentPrediction {
    /// The intent, or `None` when out of scope.
    pub label: Option<String>,
    /// Confidence of the best intent (even when out of scope).
    pub confidence: f32,
    /// True when the best confidence is under the taxonomy threshold.
    pub out_of_scope: bool,
    /// The three best intents, best first.
    pub alternatives: Vec<IntentScore>,
}

impl IntentPrediction {
    /// The prediction for per-intent confidences (in `labels` order): the best intent unless
    /// its confidence is under `threshold` (then out of scope), and the three best as
    /// alternatives. Shared by every intent classifier.
    ///
    /// A class named [`OUT_OF_SCOPE_LABEL`] (learnt from agents marking messages out of
    /// scope) answers out of scope when it wins, and is never listed as an alternative.
    pub fn from_scores(labels: &[String], scores: Vec<f32>, threshold: f32) -> Self {
        let mut ranked: Vec<(usize, f32)> = scores.into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (best, confidence) = ranked.first().copied().unwrap_or((0, 0.0));
        let learnt_oos = labels.get(best).is_some_and(|l| l == OUT_OF_SCOPE_LABEL);
        ranked.retain(|&(c, _)| labels.get(c).is_none_or(|l| l != OUT_OF_SCOPE_LABEL));
        let out_of_scope = learnt_oos || ranked.is_empty() || confidence < threshold;
        IntentPrediction {
            label: if out_of_scope {
                None
            } else {
                labels.get(best).cloned()
            },
            confidence,
            out_of_scope,
            alternatives: ranked
                .iter()
                .take(3)
                .filter_map(|&(c, s)| {
                    labels.get(c).map(|l| IntentScore {
                        label: l.clone(),
                        confidence: s,
                    })
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone)]
enum Model {
    Softmax(Softmax),
    /// Feature-major unit-length centroids: `w[f * classes + c]`.
    Centroid {
        classes: usize,
        weights: Vec<f32>,
    },
}

/// A trained intent classifier.
#[derive(Debug, Clone)]
pub struct IntentClassifier {
    labels: Vec<String>,
    vocab: KeyMap,
    idf: Vec<f32>,
    unknown_idf: f32,
    config: IntentConfig,
    threshold: f32,
    model: Model,
}

/// Feature key to column.
type KeyMap = crate::text::FastMap<u64, u32>;

/// Hashed raw features of a text with their term counts and block weight.
fn raw_features(text: &str, cfg: &IntentConfig) -> Vec<(u64, f32, f32)> {
    raw_features_of_tokens(&tokenize(text), cfg)
}

/// [`raw_features`] of a text tokenized already. Keys are streamed into the hash (no string
/// is built per feature); the result is sorted by key.
fn raw_features_of_tokens(toks: &[Token<'_>], cfg: &IntentConfig) -> Vec<(u64, f32, f32)> {
    let words: Vec<&str> = toks
        .iter()
        .filter(|t| t.kind != TokenKind::Punct)
        .map(|t| {
            if t.kind == TokenKind::Number {
                "<num>"
            } else {
                &*t.lower
            }
        })
        .collect();
    let mut keys: Vec<(u64, f32)> = Vec::with_capacity(words.len() * 16);
    let mut chars: Vec<char> = Vec::with_capacity(32);
    for (i, w) in words.iter().enumerate() {
        keys.push((Fnv::new().str("w\u{1}").str(w).finish(), 1.0));
        if cfg.word_bigrams {
            let prev = if i == 0 { "<s>" } else { words[i - 1] };
            let h = Fnv::new().str("b\u{1}").str(prev).str("\u{1}").str(w);
            keys.push((h.finish(), 1.0));
        }
        if let Some((lo, hi)) = cfg.char_ngrams {
            chars.clear();
            chars.push('<');
            chars.extend(w.chars());
            chars.push('>');
            // Every window of lo..=hi characters: from each start, the hash of a window is
            // the hash of the window one shorter, continued by one character.
            let lo = lo.max(1);
            let prefix = Fnv::new().str("c\u{1}");
            for start in 0..chars.len() {
                let mut h = prefix;
                for (n, &c) in chars[start..].iter().take(hi).enumerate() {
                    h = h.char(c);
                    if n + 1 >= lo {
                        keys.push((h.finish(), cfg.char_weight));
                    }
                }
            }
        }
    }
    // Count repeated keys. Equal keys come from the same kind of feature (the kind is part of
    // the hashed key), so they carry the same block weight and the sort need not be stable.
    keys.sort_unstable_by_key(|&(k, _)| k);
    let mut out: Vec<(u64, f32, f32)> = Vec::with_capacity(keys.len());
    for (k, block) in keys {
        match out.last_mut() {
            Some(last) if last.0 == k => last.1 += 1.0,
            _ => out.push((k, 1.0, block)),
        }
    }
    out
}

impl IntentClassifier {
    /// Trains on a taxonomy (validated first).
    pub fn train(taxonomy: &IntentTaxonomy, config: IntentConfig) -> Result<Self, InterpretError> {
        taxonomy.validate()?;
        let labels: Vec<String> = taxonomy.intents.iter().map(|i| i.name.clone()).collect();
        let examples: Vec<(&str, usize)> = taxonomy
            .intents
            .iter()
            .enumerate()
            .flat_map(|(c, i)| i.examples.iter().map(move |e| (e.as_str(), c)))
            .filter(|(e, _)| !e.trim().is_empty())
            .collect();
        Ok(Self::train_examples(
            labels,
            &examples,
            taxonomy.threshold,
            config,
        ))
    }

    /// Trains on `(text, class index)` pairs directly (for benchmarks with many examples).
    pub fn train_examples(
        labels: Vec<String>,
        examples: &[(&str, usize)],
        threshold: f32,
        config: IntentConfig,
    ) -> Self {
        let raw: Vec<Vec<(u64, f32, f32)>> = examples
            .iter()
            .map(|(t, _)| raw_features(t, &config))
            .collect();
        let mut vocab = KeyMap::default();
        let mut df: Vec<f32> = Vec::new();
        for doc in &raw {
            for (k, _, _) in doc {
                let next = vocab.len() as u32;
                let idx = *vocab.entry(*k).or_insert(next);
                if idx as usize == df.len() {
                    df.push(0.0);
                }
                df[idx as usize] += 1.0;
            }
        }
        let n = raw.len() as f32;
        let idf: Vec<f32> = df
            .iter()
            .map(|d| ((1.0 + n) / (1.0 + d)).ln() + 1.0)
            .collect();
        let mut clf = IntentClassifier {
            labels,
            vocab,
            idf,
            unknown_idf: (1.0 + n).ln() + 1.0,
            config,
            threshold: threshold.clamp(0.0, 1.0),
            model: Model::Centroid {
                classes: 0,
                weights: Vec::new(),
            },
        };
        let classes = clf.labels.len();
        let dim = clf.vocab.len();
        let data: Vec<(SparseVec, usize)> = raw
            .iter()
            .zip(examples)
            .map(|(doc, (_, c))| (clf.vectorize(doc), *c))
            .collect();
        clf.model = match config.classifier {
            ClassifierKind::Softmax => {
                Model::Softmax(Softmax::train(&data, dim, classes, &config.sgd))
            }
            ClassifierKind::Centroid => {
                let mut weights = vec![0.0f32; dim * classes];
                for (x, c) in &data {
                    for &(i, v) in x {
                        weights[i as usize * classes + c] += v;
                    }
                }
                let mut norms = vec![0.0f32; classes];
                for (k, w) in weights.iter().enumerate() {
                    norms[k % classes] += w * w;
                }
                for (k, w) in weights.iter_mut().enumerate() {
                    let norm = norms[k % classes].sqrt();
                    if norm > 0.0 {
                        *w /= norm;
                    }
                }
                Model::Centroid { classes, weights }
            }
        };
        clf
    }

    /// TF-IDF vector (sublinear tf, L2-normalised). Features unseen in training count toward
    /// the norm, so a text made mostly of unknown words gets low scores everywhere.
    fn vectorize(&self, doc: &[(u64, f32, f32)]) -> SparseVec {
        let mut x: SparseVec = Vec::with_capacity(doc.len());
        let mut norm = 0.0f32;
        for &(k, tf, block) in doc {
            let tfw = (1.0 + tf.ln()) * block;
            match self.vocab.get(&k) {
                Some(&i) => {
                    let v = tfw * self.idf[i as usize];
                    norm += v * v;
                    x.push((i, v));
                }
                None => {
                    let v = tfw * self.unknown_idf;
                    norm += v * v;
                }
            }
        }
        if norm > 0.0 {
            let inv = 1.0 / norm.sqrt();
            x.iter_mut().for_each(|f| f.1 *= inv);
        }
        x
    }

    /// Confidence per intent, in taxonomy order.
    pub fn scores(&self, text: &str) -> Vec<f32> {
        self.scores_of_tokens(&tokenize(text))
    }

    /// [`IntentClassifier::scores`] of a text tokenized already.
    fn scores_of_tokens(&self, toks: &[Token<'_>]) -> Vec<f32> {
        let x = self.vectorize(&raw_features_of_tokens(toks, &self.config));
        let classes = self.labels.len();
        let mut out = vec![0.0f32; classes];
        match &self.model {
            Model::Softmax(m) => m.probabilities_into(&x, &mut out),
            Model::Centroid { classes, weights } => {
                for &(i, v) in &x {
                    let row = i as usize * classes;
                    if let Some(ws) = weights.get(row..row + classes) {
                        for (o, w) in out.iter_mut().zip(ws) {
                            *o += w * v;
                        }
                    }
                }
            }
        }
        out
    }

    /// Predicts the intent of a text.
    pub fn predict(&self, text: &str) -> IntentPrediction {
        IntentPrediction::from_scores(&self.labels, self.scores(text), self.threshold)
    }

    /// [`IntentClassifier::predict`] of a text tokenized already (the analyzer shares one
    /// tokenization between sentiment and intent).
    pub(crate) fn predict_tokens(&self, toks: &[Token<'_>]) -> IntentPrediction {
        IntentPrediction::from_scores(&self.labels, self.scores_of_tokens(toks), self.threshold)
    }

    /// Index of the best intent and its confidence (for benchmarks).
    pub fn best(&self, text: &str) -> (usize, f32) {
        self.scores(text)
            .into_iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0))
    }

    /// The intent names, in class-index order (with [`OUT_OF_SCOPE_LABEL`] when the model
    /// learnt it).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The intents a message can be given: the labels without the learnt out-of-scope class.
    pub fn intents(&self) -> impl Iterator<Item = &str> {
        self.labels
            .iter()
            .map(String::as_str)
            .filter(|l| *l != OUT_OF_SCOPE_LABEL)
    }

    /// Replaces the out-of-scope threshold (e.g. after tuning on validation data).
    pub fn set_threshold(&mut self, threshold: f32) {
        self.threshold = threshold.clamp(0.0, 1.0);
    }

    /// The out-of-scope threshold.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The saved form of the model (see [`IntentClassifier::from_bytes`]); `note` is kept
    /// with it (e.g. what it was trained on).
    pub fn to_bytes(&self, note: &str) -> Result<Vec<u8>, InterpretError> {
        let mut keys = vec![0u64; self.vocab.len()];
        for (&k, &i) in &self.vocab {
            keys[i as usize] = k;
        }
        let (weights, bias) = match &self.model {
            Model::Softmax(m) => {
                let (w, b) = m.parts();
                (w.to_vec(), b.to_vec())
            }
            Model::Centroid { weights, .. } => (weights.clone(), Vec::new()),
        };
        crate::intent_file::write(&crate::intent_file::Parts {
            header: crate::intent_file::Header {
                labels: self.labels.clone(),
                config: self.config,
                threshold: self.threshold,
                unknown_idf: self.unknown_idf,
                features: keys.len(),
                note: note.to_string(),
            },
            keys,
            idf: self.idf.clone(),
            weights,
            bias,
        })
    }

    /// Loads a model saved by [`IntentClassifier::to_bytes`], with its note.
    pub fn from_bytes(bytes: &[u8]) -> Result<(Self, String), InterpretError> {
        let p = crate::intent_file::read(bytes)?;
        let classes = p.header.labels.len();
        let model = match p.header.config.classifier {
            ClassifierKind::Softmax => {
                Model::Softmax(Softmax::from_parts(classes, p.weights, p.bias).ok_or_else(
                    || InterpretError::InvalidModelFile("weights do not fit the intents".into()),
                )?)
            }
            ClassifierKind::Centroid => Model::Centroid {
                classes,
                weights: p.weights,
            },
        };
        let vocab = p
            .keys
            .iter()
            .enumerate()
            .map(|(i, &k)| (k, i as u32))
            .collect::<KeyMap>();
        if vocab.len() != p.keys.len() {
            return Err(InterpretError::InvalidModelFile(
                "repeated feature keys".into(),
            ));
        }
        Ok((
            IntentClassifier {
                labels: p.header.labels,
                vocab,
                idf: p.idf,
                unknown_idf: p.header.unknown_idf,
                config: p.header.config,
                threshold: p.header.threshold.clamp(0.0, 1.0),
                model,
            },
            p.header.note,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::stable_hash;
    use std::collections::HashMap;

    /// The features as first written: every key built as a string and hashed whole, counted
    /// in a map.
    fn naive_features(text: &str, cfg: &IntentConfig) -> Vec<(u64, f32, f32)> {
        let words: Vec<String> = tokenize(text)
            .into_iter()
            .filter(|t| t.kind != TokenKind::Punct)
            .map(|t| match t.kind {
                TokenKind::Number => "<num>".to_string(),
                _ => t.lower.into_owned(),
            })
            .collect();
        let mut counts: HashMap<u64, (f32, f32)> = HashMap::new();
        let mut add = |key: String, block: f32| {
            counts
                .entry(stable_hash(key.as_bytes()))
                .or_insert((0.0, block))
                .0 += 1.0;
        };
        for (i, w) in words.iter().enumerate() {
            add(format!("w\u{1}{w}"), 1.0);
            if cfg.word_bigrams {
                let prev = if i == 0 { "<s>" } else { words[i - 1].as_str() };
                add(format!("b\u{1}{prev}\u{1}{w}"), 1.0);
            }
            if let Some((lo, hi)) = cfg.char_ngrams {
                let chars: Vec<char> = std::iter::once('<')
                    .chain(w.chars())
                    .chain(std::iter::once('>'))
                    .collect();
                for n in lo.max(1)..=hi {
                    if chars.len() < n {
                        break;
                    }
                    for win in chars.windows(n) {
                        add(
                            format!("c\u{1}{}", win.iter().collect::<String>()),
                            cfg.char_weight,
                        );
                    }
                }
            }
        }
        let mut out: Vec<(u64, f32, f32)> =
            counts.into_iter().map(|(k, (tf, b))| (k, tf, b)).collect();
        out.sort_by_key(|f| f.0);
        out
    }

    #[test]
    fn streamed_features_equal_the_naive_ones() {
        let texts = [
            "I was charged twice for order 12345, please refund me!",
            "Ça ne marche pas 😡 — the app crashes again and again",
            "",
            "a a a b",
            "Straße naïve café’s don’t",
        ];
        for cfg in [
            IntentConfig::default(),
            IntentConfig {
                char_ngrams: Some((2, 6)),
                char_weight: 0.7,
                ..IntentConfig::default()
            },
            IntentConfig {
                char_ngrams: None,
                word_bigrams: false,
                ..IntentConfig::default()
            },
        ] {
            for t in texts {
                assert_eq!(raw_features(t, &cfg), naive_features(t, &cfg), "{t}");
            }
        }
    }

    fn small() -> IntentClassifier {
        let t = IntentTaxonomy::default_cx();
        IntentClassifier::train(&t, IntentConfig::default()).expect("train")
    }

    #[test]
    fn default_taxonomy_classifies_its_own_kind_of_text() {
        let clf = small();
        let cases = [
            ("I want a refund for the broken blender", "refund_request"),
            (
                "Where is my parcel? It should have arrived yesterday",
                "delivery_status",
            ),
            ("Please cancel my subscription", "cancel_service"),
            ("Let me talk to a human", "human_request"),
            (
                "I can't log in to my account, password reset isn't working",
                "account_access",
            ),
        ];
        for (text, want) in cases {
            let p = clf.predict(text);
            assert_eq!(p.label.as_deref(), Some(want), "{text}: {p:?}");
        }
    }

    #[test]
    fn a_saved_model_predicts_the_same_and_bad_files_are_refused() {
        let clf = small();
        let bytes = clf.to_bytes("default taxonomy").expect("save");
        let (back, note) = IntentClassifier::from_bytes(&bytes).expect("load");
        assert_eq!(note, "default taxonomy");
        assert_eq!(back.labels(), clf.labels());
        for text in ["Please cancel my subscription", "where is my parcel", "zzz"] {
            // Equal up to summation order (features come out of a hash map).
            for (a, b) in back.scores(text).iter().zip(clf.scores(text)) {
                assert!((a - b).abs() < 1e-5, "{text}: {a} vs {b}");
            }
        }
        let cut = IntentClassifier::from_bytes(&bytes[..bytes.len() - 3]).expect_err("cut");
        assert!(cut.to_string().contains("ends inside"), "{cut}");
        let junk = IntentClassifier::from_bytes(b"hello world, not a model").expect_err("junk");
        assert!(junk.to_string().contains("magic"), "{junk}");
        let mut v2 = bytes.clone();
        v2[8] = 2;
        let newer = IntentClassifier::from_bytes(&v2).expect_err("version");
        assert!(newer.to_string().contains("version 2"), "{newer}");
    }

    #[test]
    fn unrelated_text_is_out_of_scope() {
        let p = small().predict("What is the capital of Mongolia?");
        assert!(p.out_of_scope, "{p:?}");
        assert!(p.label.is_none());
    }

    #[test]
    fn invalid_taxonomies_are_rejected_with_every_problem() {
        let t = IntentTaxonomy {
            intents: vec![
                Intent {
                    name: "a".into(),
                    examples: vec![],
                },
                Intent {
                    name: "a".into(),
                    examples: vec!["x".into()],
                },
            ],
            threshold: 2.0,
        };
        let err = t.validate().expect_err("invalid");
        let msg = err.to_string();
        assert!(
            msg.contains("threshold") && msg.contains("duplicate") && msg.contains("no examples")
        );
    }
}
