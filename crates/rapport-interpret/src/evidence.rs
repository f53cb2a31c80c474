//! Evidence and model identity carried by every result.

use serde::{Deserialize, Serialize};

use crate::text::Span;

/// Name of the embedded model family.
pub const MODEL_NAME: &str = "rapport-lexicon";
/// Version of the embedded models (lexicons, rules, trained weights). Bump when any of them
/// changes, so stored analyses can be told apart.
pub const MODEL_VERSION: &str = "0.1.0";

/// Which model produced a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Model family, e.g. `rapport-lexicon`.
    pub name: String,
    /// Version of that family.
    pub version: String,
    /// Version of the workspace's intent model that read the intent: 0 for the built-in
    /// default taxonomy, N for the N-th model retrained from agents' corrections. Absent in
    /// analyses stored before intent models were versioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent_model_version: Option<u64>,
    /// The sentence-embedding model that read part of the message, and which parts (builds
    /// with the cargo feature `neural`, configured to use it). Absent when only the embedded
    /// models read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neural: Option<NeuralUse>,
}

/// What the neural path contributed to an analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeuralUse {
    /// Embedding model, e.g. `all-MiniLM-L6-v2`.
    pub name: String,
    /// Its version (the package it was fetched from).
    pub version: String,
    /// Weight of the neural sentiment head in the message and sentence sentiment scores
    /// (the rest is the embedded score; chosen on validation data), to four decimals.
    pub sentiment_mix: f64,
    /// Whether the intent came from a head on the embeddings, mixed with the embedded
    /// classifier (false: the workspace's own embedded intent model read it alone).
    pub intent: bool,
    /// Whether emotion heads on the embeddings added to the rules' emotions (absent in
    /// analyses stored before they existed).
    #[serde(default)]
    pub emotion: bool,
}

impl ModelInfo {
    /// The embedded lexicon-and-linear model.
    pub fn embedded() -> Self {
        ModelInfo {
            name: MODEL_NAME.to_string(),
            version: MODEL_VERSION.to_string(),
            intent_model_version: None,
            neural: None,
        }
    }
}

/// The analyzer an evidence item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Analyzer {
    /// Sentiment words, emoji, emoticons.
    Sentiment,
    /// Emotion cues.
    Emotion,
    /// Customer-effort cues.
    Effort,
    /// Urgency cues.
    Urgency,
    /// Intent classification.
    Intent,
}

/// A phrase of the text that drove a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Which analyzer used it.
    pub analyzer: Analyzer,
    /// What it was evidence for (`negative`, `anger`, `repeated_contact`, ...).
    pub label: String,
    /// The phrase as written.
    pub phrase: String,
    /// Where it is, in character offsets.
    pub span: Span,
    /// Its contribution (valence after rules, intensity, effort points); sign matters.
    pub weight: f32,
}
