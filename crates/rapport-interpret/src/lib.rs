//! `rapport-interpret`: the embedded text-analytics stage of Rapport. It turns one customer
//! message into language, sentiment (per message and per sentence), emotions, effort,
//! urgency with reasons, intent from the company's taxonomy, personal data with a redacted
//! copy, and the evidence phrases behind each score; and a customer's messages in order into a
//! conversation view (trajectory, trend, repeated contact, escalation signals).
//!
//! It owns the lexicons, rules and small linear models that need no download (AFINN-165 plus
//! Rapport's own customer-experience terms, a logistic regression trained on the UCI
//! sentiment sentences, an intent classifier trained at load time from example phrases). It
//! does **not** own storage, HTTP or the event bus, and by default it does no I/O. The
//! optional cargo feature `neural` adds the `neural` module: all-MiniLM-L6-v2 sentence
//! embeddings in candle with heads trained on them, loaded from a models directory that
//! `neural::pull_minilm` fills (the crate's only file writing and process spawning).
//! Generative models belong elsewhere.
//!
//! Everything is synchronous and CPU-bound (well under a millisecond for a typical message in
//! release builds); async callers run it on a blocking pool. Offsets are character offsets
//! (see [`Span`]). Every result carries the [`ModelInfo`] that produced it.
//!
//! ```
//! use rapport_interpret::{Interpreter, IntentTaxonomy};
//! let interp = Interpreter::embedded(IntentTaxonomy::default_cx()).unwrap();
//! let a = interp.analyze("I was charged twice, please refund me. My email is ana@example.com");
//! assert!(a.sentiment.score.get() < 0.0);
//! assert_eq!(a.redacted, "I was charged twice, please refund me. My email is [EMAIL]");
//! ```

mod conversation;
mod cues;
mod default_taxonomy;
mod effort;
mod emotion;
mod error;
mod evidence;
mod intent;
pub mod intent_eval;
mod intent_file;
pub mod intent_retrain;
mod language;
mod lexicon;
pub mod linear;
#[cfg(feature = "neural")]
pub mod neural;
mod pii;
mod sentiment;
mod text;

use serde::{Deserialize, Serialize};

pub use conversation::{
    ConversationAnalysis, ConversationSignal, EscalationKind, EscalationSignal,
};
pub use default_taxonomy::DEFAULT_THRESHOLD;
pub use effort::{Effort, EffortScore};
pub use emotion::{Emotion, EmotionKind, Intensity};
pub use error::InterpretError;
pub use evidence::{Analyzer, Evidence, ModelInfo, NeuralUse, MODEL_NAME, MODEL_VERSION};
pub use intent::{
    ClassifierKind, Intent, IntentClassifier, IntentConfig, IntentPrediction, IntentScore,
    IntentTaxonomy, OUT_OF_SCOPE_LABEL,
};
pub use intent_file::FORMAT_VERSION as INTENT_MODEL_FORMAT_VERSION;
pub use language::{LanguageGuess, SUPPORTED_LANGUAGE};
pub use pii::{iban_valid, luhn_valid, nino_valid, redact, ssn_valid, PiiEntity, PiiKind};
pub use sentiment::{
    train_weights, Score, Sentiment, SentimentLabel, SentimentWeights, DEFAULT_HASH_BITS,
};
pub use text::{stable_hash, truncate_chars, Span};
pub use urgency::{Urgency, UrgencyLevel, UrgencyReason, UrgencyReasonKind};

mod urgency;

/// Sentiment of one sentence of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentenceAnalysis {
    /// Where the sentence is, in character offsets.
    pub span: Span,
    /// Its sentiment.
    pub sentiment: Sentiment,
}

/// Everything the embedded models concluded about one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageAnalysis {
    /// Length of the analysed text in characters.
    pub chars: usize,
    /// Detected language.
    pub language: LanguageGuess,
    /// Sentiment of the whole message.
    pub sentiment: Sentiment,
    /// Sentiment per sentence.
    pub sentences: Vec<SentenceAnalysis>,
    /// Emotions found, strongest first (empty = none).
    pub emotions: Vec<Emotion>,
    /// Customer effort, `None` when the text says nothing about it.
    pub effort: Option<Effort>,
    /// Urgency and its reasons.
    pub urgency: Urgency,
    /// Intent from the configured taxonomy.
    pub intent: IntentPrediction,
    /// Personal data found (kinds and spans only).
    pub pii: Vec<PiiEntity>,
    /// The text with personal data replaced by typed placeholders.
    pub redacted: String,
    /// Phrases that drove the scores.
    pub evidence: Vec<Evidence>,
    /// The model that produced this analysis.
    pub model: ModelInfo,
}

/// Options beyond the taxonomy.
#[derive(Debug, Clone, PartialEq)]
pub struct InterpreterOptions {
    /// Workspace default language (ISO 639-1), assumed for short texts.
    pub default_language: String,
    /// Intent features and classifier.
    pub intent: IntentConfig,
    /// Sentiment weights to use instead of the embedded ones (evaluation, retraining).
    pub sentiment_weights: Option<SentimentWeights>,
}

impl Default for InterpreterOptions {
    fn default() -> Self {
        InterpreterOptions {
            default_language: SUPPORTED_LANGUAGE.to_string(),
            intent: IntentConfig::default(),
            sentiment_weights: None,
        }
    }
}

/// The embedded analyzers, built once and shared (it is `Send + Sync`).
#[derive(Debug, Clone)]
pub struct Interpreter {
    default_language: String,
    sentiment: sentiment::SentimentModel,
    emotion: emotion::EmotionDetector,
    effort: effort::EffortDetector,
    urgency: urgency::UrgencyDetector,
    pii: pii::PiiDetector,
    intent: IntentClassifier,
    /// The workspace intent model's version (0: trained from the taxonomy given at build).
    intent_version: u64,
    /// The sentence-embedding path, when attached ([`Interpreter::neural`]).
    #[cfg(feature = "neural")]
    neural: Option<neural::Attached>,
}

impl Interpreter {
    /// The embedded models with the given intent taxonomy (trained now, in milliseconds for
    /// a taxonomy of a few hundred examples).
    pub fn embedded(taxonomy: IntentTaxonomy) -> Result<Self, InterpretError> {
        Self::with_options(taxonomy, InterpreterOptions::default())
    }

    /// The embedded models with explicit options.
    pub fn with_options(
        taxonomy: IntentTaxonomy,
        options: InterpreterOptions,
    ) -> Result<Self, InterpretError> {
        let lexicon = lexicon::Lexicon::embedded()?;
        let sentiment = match &options.sentiment_weights {
            Some(w) => sentiment::SentimentModel::with_weights(lexicon, w),
            None => sentiment::SentimentModel::embedded(lexicon)?,
        };
        Ok(Interpreter {
            default_language: options.default_language,
            sentiment,
            emotion: emotion::EmotionDetector::new()?,
            effort: effort::EffortDetector::new()?,
            urgency: urgency::UrgencyDetector::new()?,
            pii: pii::PiiDetector::new()?,
            intent: IntentClassifier::train(&taxonomy, options.intent)?,
            intent_version: 0,
            #[cfg(feature = "neural")]
            neural: None,
        })
    }

    /// The embedded models plus all-MiniLM-L6-v2 (cargo feature `neural`): the message and
    /// sentence sentiment scores become the shipped neural sentiment head combined with the
    /// embedded score (the combination `BENCHMARKS.md` evaluates), and the intent is read by
    /// a head trained now on the taxonomy's example phrases over their embeddings, its
    /// probabilities mixed with the embedded classifier's ([`neural::INTENT_MIX`]). The
    /// shipped emotion heads ([`neural::EmotionHeads`]) add the emotions they find that the
    /// rules did not name. Effort, urgency, personal data and evidence stay with the embedded
    /// models. Embedding
    /// the examples takes about a second for the default taxonomy.
    #[cfg(feature = "neural")]
    pub fn neural(taxonomy: IntentTaxonomy, model: neural::MiniLm) -> Result<Self, InterpretError> {
        let attached = neural::Attached::new(model, &taxonomy)
            .map_err(|e| InterpretError::Model(e.to_string()))?;
        let mut interpreter = Self::embedded(taxonomy)?;
        interpreter.neural = Some(attached);
        Ok(interpreter)
    }

    /// Whether the neural path reads messages too.
    pub fn has_neural(&self) -> bool {
        #[cfg(feature = "neural")]
        {
            self.neural.is_some()
        }
        #[cfg(not(feature = "neural"))]
        {
            false
        }
    }

    /// The same analyzers with another intent classifier: a workspace's model at `version`
    /// (retrained from agents' corrections), which the analyses it makes name.
    pub fn with_intent_model(&self, intent: IntentClassifier, version: u64) -> Self {
        Interpreter {
            intent,
            intent_version: version,
            // The workspace's model learnt from its agents' corrections, which the neural
            // head (trained on the taxonomy alone) never saw: the workspace's model reads
            // intents, the neural path keeps reading sentiment.
            #[cfg(feature = "neural")]
            neural: self.neural.as_ref().map(neural::Attached::without_intent),
            ..self.clone()
        }
    }

    /// With the neural path, an intent head trained on `examples` (text and index into
    /// `labels`) with this interpreter's embedding model, saved as JSON: what
    /// [`Interpreter::with_intent_model_and_head`] takes back. A workspace keeps it beside the
    /// intent model retrained from the same examples
    /// ([`intent_retrain::training_set`]), so the neural path reads its intents too. `None`
    /// without the neural path.
    pub fn train_neural_intent_head(
        &self,
        labels: &[String],
        examples: &[(&str, usize)],
    ) -> Result<Option<String>, InterpretError> {
        #[cfg(feature = "neural")]
        if let Some(attached) = &self.neural {
            let head = attached
                .train_intent(labels.to_vec(), examples, self.intent.threshold())
                .map_err(|e| InterpretError::Model(e.to_string()))?;
            let json = serde_json::to_string(&head.save())
                .map_err(|e| InterpretError::Model(e.to_string()))?;
            return Ok(Some(json));
        }
        let _ = (labels, examples);
        Ok(None)
    }

    /// [`Interpreter::with_intent_model`], and with the neural path, `head` (JSON from
    /// [`Interpreter::train_neural_intent_head`]) reads intents mixed with the workspace's
    /// model as the taxonomy's head does. Without the neural path, or without a head, the
    /// same as [`Interpreter::with_intent_model`]. A head that does not fit (unreadable,
    /// another embedding model, intents other than the model's) is an error.
    pub fn with_intent_model_and_head(
        &self,
        intent: IntentClassifier,
        version: u64,
        head: Option<&str>,
    ) -> Result<Self, InterpretError> {
        #[cfg(feature = "neural")]
        if let (Some(attached), Some(json)) = (&self.neural, head) {
            let saved: neural::SavedIntentHead = serde_json::from_str(json)
                .map_err(|e| InterpretError::Model(format!("intent head: {e}")))?;
            let head = neural::IntentHead::from_saved(&saved)
                .map_err(|e| InterpretError::Model(e.to_string()))?;
            if head.labels() != intent.labels() {
                return Err(InterpretError::Model(
                    "the intent head and the intent model name different intents".into(),
                ));
            }
            let attached = attached
                .with_intent(head)
                .map_err(|e| InterpretError::Model(e.to_string()))?;
            return Ok(Interpreter {
                intent,
                intent_version: version,
                neural: Some(attached),
                ..self.clone()
            });
        }
        let _ = head;
        Ok(self.with_intent_model(intent, version))
    }

    /// The version of the intent model (0: trained from the taxonomy given at build).
    pub fn intent_model_version(&self) -> u64 {
        self.intent_version
    }

    /// Analyses one message.
    pub fn analyze(&self, text: &str) -> MessageAnalysis {
        #[cfg(feature = "neural")]
        if self.neural.is_some() {
            return self
                .analyze_batch(&[text])
                .pop()
                .expect("one analysis per text");
        }
        self.analyze_embedded(text).0
    }

    /// Analyses messages, in order. With the neural path attached the texts are embedded
    /// together, in batches, which is faster than one at a time.
    pub fn analyze_batch(&self, texts: &[&str]) -> Vec<MessageAnalysis> {
        let out: Vec<(MessageAnalysis, Vec<(usize, usize)>)> =
            texts.iter().map(|t| self.analyze_embedded(t)).collect();
        #[cfg(feature = "neural")]
        let out = {
            let mut out = out;
            if let Some(n) = &self.neural {
                n.refine(texts, &mut out, &self.intent);
            }
            out
        };
        out.into_iter().map(|(a, _)| a).collect()
    }

    /// The embedded models' analysis, with the byte ranges of the sentences.
    fn analyze_embedded(&self, text: &str) -> (MessageAnalysis, Vec<(usize, usize)>) {
        let map = text::CharMap::new(text);
        let toks = text::tokenize(text);
        let language = language::detect(text, &self.default_language);
        let factor = if !language.supported {
            0.3
        } else if language.assumed {
            0.8
        } else {
            1.0
        };

        let (sentiment, pass) = self.sentiment.score(&toks, factor);
        let mut evidence = self.sentiment.evidence(text, &map, &toks, &pass);
        let ranges = text::sentence_ranges(text);
        let sentences = ranges
            .iter()
            .map(|&(a, b)| {
                let lo = toks.partition_point(|t| t.byte_start < a);
                let hi = toks.partition_point(|t| t.byte_end <= b);
                let slice = toks.get(lo..hi.max(lo)).unwrap_or(&[]);
                // A sentence holding every token of the message scores as the message did.
                let sentiment = if slice.len() == toks.len() {
                    sentiment.clone()
                } else {
                    self.sentiment.score(slice, factor).0
                };
                SentenceAnalysis {
                    span: map.span(a, b),
                    sentiment,
                }
            })
            .collect();
        let (emotions, ev) = self.emotion.detect(text, &map);
        evidence.extend(ev);
        let (effort, ev) = self.effort.detect(text, &map);
        evidence.extend(ev);
        let (urgency, ev) = self.urgency.detect(text, &map, sentiment.score.get());
        evidence.extend(ev);
        let intent = self.intent.predict_tokens(&toks);
        let pii = self.pii.detect(text, &map);
        let redacted = redact(text, &pii);

        let analysis = MessageAnalysis {
            chars: map.char_of(text.len()),
            language,
            sentiment,
            sentences,
            emotions,
            effort,
            urgency,
            intent,
            pii,
            redacted,
            evidence,
            model: ModelInfo {
                intent_model_version: Some(self.intent_version),
                ..ModelInfo::embedded()
            },
        };
        (analysis, ranges)
    }

    /// Time spent in each stage of [`Interpreter::analyze`] over `texts`, in the order the
    /// stages run, as (stage, total seconds). For benchmarks (which stage limits
    /// throughput); the stages are timed one after the other on each text, as `analyze` runs
    /// them, with the results dropped.
    #[doc(hidden)]
    pub fn stage_seconds(&self, texts: &[&str]) -> Vec<(&'static str, f64)> {
        use std::hint::black_box;
        use std::time::Instant;
        let names = [
            "char map + tokenize",
            "language",
            "sentiment (message)",
            "sentiment (sentences)",
            "emotion",
            "effort",
            "urgency",
            "intent",
            "pii + redaction",
        ];
        let mut total = [0.0f64; 9];
        for text in texts {
            let mut lap = Instant::now();
            let mut mark = |i: usize| {
                total[i] += lap.elapsed().as_secs_f64();
                lap = Instant::now();
            };
            let map = text::CharMap::new(text);
            let toks = text::tokenize(text);
            mark(0);
            black_box(language::detect(text, &self.default_language));
            mark(1);
            let (sentiment, pass) = self.sentiment.score(&toks, 1.0);
            black_box(self.sentiment.evidence(text, &map, &toks, &pass));
            mark(2);
            for (a, b) in text::sentence_ranges(text) {
                let lo = toks.partition_point(|t| t.byte_start < a);
                let hi = toks.partition_point(|t| t.byte_end <= b);
                let slice = toks.get(lo..hi.max(lo)).unwrap_or(&[]);
                if slice.len() < toks.len() {
                    black_box(self.sentiment.score(slice, 1.0));
                }
            }
            mark(3);
            black_box(self.emotion.detect(text, &map));
            mark(4);
            black_box(self.effort.detect(text, &map));
            mark(5);
            black_box(self.urgency.detect(text, &map, sentiment.score.get()));
            mark(6);
            black_box(self.intent.predict_tokens(&toks));
            mark(7);
            let pii = self.pii.detect(text, &map);
            black_box(redact(text, &pii));
            mark(8);
        }
        names.into_iter().zip(total).collect()
    }

    /// The conversation view over the customer's inbound messages, in order.
    pub fn analyze_conversation(&self, messages: &[MessageAnalysis]) -> ConversationAnalysis {
        conversation::analyze(messages)
    }

    /// Sentiment only (cheaper than [`Interpreter::analyze`]).
    pub fn sentiment(&self, text: &str) -> Sentiment {
        self.sentiment.score(&text::tokenize(text), 1.0).0
    }

    /// The rule-based lexicon score alone, in `[-1, 1]` (for evaluation).
    pub fn lexicon_score(&self, text: &str) -> f32 {
        self.sentiment.lexicon_score(text)
    }

    /// Personal data only.
    pub fn pii(&self, text: &str) -> Vec<PiiEntity> {
        self.pii.detect(text, &text::CharMap::new(text))
    }

    /// The trained intent classifier.
    pub fn intent_classifier(&self) -> &IntentClassifier {
        &self.intent
    }
}

/// Deterministic 80/20 split of a labelled sentence by a stable hash of its text: true for
/// the 20% test part.
pub fn is_test_split(text: &str) -> bool {
    stable_hash(text.as_bytes()) % 5 == 0
}

/// Parses one UCI sentiment JSON file (`[{"text": ..., "class": 0|1|null}]`), skipping
/// records without a class.
pub fn parse_uci(json: &str) -> Result<Vec<(String, bool)>, InterpretError> {
    #[derive(Deserialize)]
    struct Row {
        text: String,
        class: Option<u8>,
    }
    let rows: Vec<Row> = serde_json::from_str(json)
        .map_err(|e| InterpretError::OutOfRange(format!("UCI JSON: {e}")))?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.class.map(|c| (r.text, c == 1)))
        .filter(|(t, _)| !t.trim().is_empty())
        .collect())
}
