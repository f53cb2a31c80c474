//! Linear heads on sentence embeddings: binary logistic regression for sentiment and
//! multinomial logistic regression for intent (the SGD trainers of [`crate::linear`] over
//! dense features), trained in seconds at load or evaluation time.

use crate::linear::{BinaryLogistic, SgdConfig, Softmax, SparseVec};
use crate::{IntentPrediction, IntentTaxonomy, Score, Sentiment, SentimentLabel};

use super::minilm::{MiniLm, MINILM_VERSION};
use super::NeuralError;

/// The sentiment head shipped with the crate: trained on the UCI train split by
/// `cargo run --release -p rapport-interpret --features neural --example
/// evaluate_neural_sentiment -- --write-head`.
const SHIPPED_SENTIMENT_HEAD: &str = include_str!("../../model/neural-sentiment-head.json");

/// A sentiment head as saved to a file: its logistic weights over the embeddings of one
/// model, and the weight of the head when combined with the embedded score.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedSentimentHead {
    /// Format version (1).
    pub format: u32,
    /// The embedding model the weights belong to ([`MINILM_VERSION`]).
    pub model: String,
    /// Where the training sentences came from and how the settings were chosen.
    pub trained_on: String,
    /// Weight of the head in [`SentimentHead::combine`] (0..=1), chosen on validation.
    pub mix: f32,
    /// Intercept.
    pub bias: f32,
    /// One weight per embedding dimension (over the head's scaled features).
    pub weights: Vec<f32>,
    /// The head reads embeddings through these replacement biases and layer norms of the
    /// encoder's top layers (Hugging Face tensor names; see [`super::MiniLm::adapter`]),
    /// learnt with the head. Empty: the head reads the plain embedding.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub adapter: std::collections::BTreeMap<String, Vec<f32>>,
}

/// An intent head as saved (JSON): a workspace's head trained on its taxonomy and its agents'
/// corrections, kept beside the n-gram model of the same version.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedIntentHead {
    /// Format version (1).
    pub format: u32,
    /// The embedding model the weights belong to ([`MINILM_VERSION`]).
    pub model: String,
    /// Intent names, in class order.
    pub labels: Vec<String>,
    /// Out-of-scope threshold on the best probability.
    pub threshold: f32,
    /// `dim x classes` weights over the head's scaled features, feature-major.
    pub weights: Vec<f32>,
    /// One bias per class.
    pub bias: Vec<f32>,
}

/// SGD settings for the sentiment head. Features are unit-length embeddings scaled by
/// `sqrt(dim)` (each of order 1); chosen on a validation part of the UCI train split by the
/// `evaluate_neural` example.
pub fn default_sentiment_sgd() -> SgdConfig {
    SgdConfig {
        epochs: 60,
        learning_rate: 0.01,
        decay: 0.2,
        l2: 1e-3,
        seed: 42,
    }
}

/// Mixes two readings of the same intents, in the same order: `head` becomes
/// `mix * head + (1 - mix) * other` (mix clamped to 0..=1). The neural head and the embedded
/// n-gram classifier are mixed this way, live (`INTENT_MIX`) and in `EnsembleScorer`.
pub fn mix_probabilities(head: &mut [f32], other: &[f32], mix: f32) {
    let mix = mix.clamp(0.0, 1.0);
    for (h, o) in head.iter_mut().zip(other) {
        *h = mix * *h + (1.0 - mix) * o;
    }
}

/// SGD settings for the intent head, chosen on a validation part of the BANKING77 train
/// split by the `evaluate_neural` example.
pub fn default_intent_sgd() -> SgdConfig {
    SgdConfig {
        epochs: 30,
        learning_rate: 0.01,
        decay: 0.2,
        l2: 1e-5,
        seed: 42,
    }
}

pub(super) fn features(embedding: &[f32]) -> SparseVec {
    let scale = (embedding.len().max(1) as f32).sqrt();
    embedding
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as u32, v * scale))
        .collect()
}

/// Checks a saved head's header: format 1, weights for this build's embedding model.
pub(super) fn check_saved(what: &str, format: u32, model: &str) -> Result<(), NeuralError> {
    if format != 1 {
        return Err(NeuralError::InvalidInput(format!(
            "{what}: format {format} (this build reads 1)"
        )));
    }
    if model != MINILM_VERSION {
        return Err(NeuralError::InvalidInput(format!(
            "{what}: trained on {model} embeddings, this build uses {MINILM_VERSION}"
        )));
    }
    Ok(())
}

pub(super) fn check_dim(embedding: &[f32], dim: usize) -> Result<(), NeuralError> {
    if embedding.len() == dim {
        Ok(())
    } else {
        Err(NeuralError::InvalidInput(format!(
            "embedding has {} dimensions, the head expects {dim}",
            embedding.len()
        )))
    }
}

/// Sentiment from an embedding.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NeuralSentiment {
    /// `2 * P(positive) - 1`, in `[-1, 1]`.
    pub score: Score,
    /// Five-level label of `score`.
    pub label: SentimentLabel,
    /// The head's probability that the text is positive.
    pub probability_positive: f32,
}

/// Binary (negative/positive) logistic regression on embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct SentimentHead {
    dim: usize,
    model: BinaryLogistic,
    /// Encoder adapter tensors the head was trained through (empty: none).
    adapter: std::collections::BTreeMap<String, Vec<f32>>,
}

impl SentimentHead {
    /// Trains on `(embedding, positive?)` pairs, all of one dimension.
    pub fn train(data: &[(Vec<f32>, bool)], cfg: &SgdConfig) -> Result<Self, NeuralError> {
        let dim = data
            .first()
            .map(|(e, _)| e.len())
            .ok_or_else(|| NeuralError::InvalidInput("no sentiment examples".into()))?;
        let mut rows = Vec::with_capacity(data.len());
        for (e, y) in data {
            check_dim(e, dim)?;
            rows.push((features(e), *y));
        }
        Ok(SentimentHead {
            dim,
            model: BinaryLogistic::train(&rows, dim, cfg),
            adapter: Default::default(),
        })
    }

    /// A head of `dim`-dimensional embeddings around a fitted model (of the scaled features).
    pub(super) fn from_logistic(dim: usize, model: BinaryLogistic) -> Self {
        SentimentHead {
            dim,
            model,
            adapter: Default::default(),
        }
    }

    /// The encoder adapter tensors this head reads embeddings through (empty when it reads
    /// plain embeddings). Build the adapter with [`super::MiniLm::adapter`] and embed with
    /// [`super::MiniLm::embed_adapted`].
    pub fn adapter_tensors(&self) -> &std::collections::BTreeMap<String, Vec<f32>> {
        &self.adapter
    }

    /// The encoder adapter this head reads through, built for `model`; `None` when the head
    /// reads plain embeddings.
    pub fn encoder_adapter(
        &self,
        model: &MiniLm,
    ) -> Result<Option<super::EncoderAdapter>, NeuralError> {
        if self.adapter.is_empty() {
            return Ok(None);
        }
        model
            .adapter(self.adapter.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map(Some)
    }

    /// P(positive) for one embedding.
    pub fn probability(&self, embedding: &[f32]) -> Result<f32, NeuralError> {
        check_dim(embedding, self.dim)?;
        Ok(self.model.probability(&features(embedding)))
    }

    /// Sentiment of one embedding.
    pub fn predict(&self, embedding: &[f32]) -> Result<NeuralSentiment, NeuralError> {
        let p = self.probability(embedding)?;
        let score = Score::clamped(2.0 * p - 1.0);
        Ok(NeuralSentiment {
            score,
            label: SentimentLabel::from_score(score),
            probability_positive: p,
        })
    }

    /// Embedding dimension the head reads.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The head as saved to a file, with the `mix` it is combined with.
    pub fn save(&self, mix: f32, trained_on: &str) -> SavedSentimentHead {
        SavedSentimentHead {
            format: 1,
            model: MINILM_VERSION.to_string(),
            trained_on: trained_on.to_string(),
            mix: mix.clamp(0.0, 1.0),
            bias: self.model.bias,
            weights: self.model.weights.clone(),
            adapter: self.adapter.clone(),
        }
    }

    /// A head read back from [`SentimentHead::save`]'s output, checked: format 1, weights
    /// for this build's embedding model, finite numbers, `mix` in 0..=1.
    pub fn from_saved(saved: &SavedSentimentHead) -> Result<Self, NeuralError> {
        let bad = |why: String| Err(NeuralError::InvalidInput(format!("sentiment head: {why}")));
        check_saved("sentiment head", saved.format, &saved.model)?;
        if saved.weights.is_empty()
            || !saved.bias.is_finite()
            || saved.weights.iter().any(|w| !w.is_finite())
        {
            return bad("no weights, or weights that are not finite numbers".into());
        }
        if !(0.0..=1.0).contains(&saved.mix) {
            return bad(format!("mix {} outside 0..=1", saved.mix));
        }
        if saved
            .adapter
            .values()
            .any(|v| v.is_empty() || v.iter().any(|x| !x.is_finite()))
        {
            return bad("an adapter tensor is empty or not finite".into());
        }
        Ok(SentimentHead {
            dim: saved.weights.len(),
            model: BinaryLogistic {
                weights: saved.weights.clone(),
                bias: saved.bias,
            },
            adapter: saved.adapter.clone(),
        })
    }

    /// The head shipped with the crate and its mix (see `model/README.md`).
    pub fn shipped() -> Result<(Self, f32), NeuralError> {
        let saved: SavedSentimentHead = serde_json::from_str(SHIPPED_SENTIMENT_HEAD)
            .map_err(|e| NeuralError::InvalidInput(format!("shipped sentiment head: {e}")))?;
        Ok((Self::from_saved(&saved)?, saved.mix))
    }

    /// The embedded model's sentiment of a text with its score and label replaced by
    /// [`SentimentHead::combine`] of the head and that score; the confidence and the
    /// lexicon and model scores stay the embedded model's.
    pub fn combine_sentiment(
        &self,
        embedding: &[f32],
        embedded: &Sentiment,
        mix: f32,
    ) -> Result<Sentiment, NeuralError> {
        let combined = self.combine(embedding, embedded.score, mix)?;
        Ok(Sentiment {
            score: combined.score,
            label: combined.label,
            ..embedded.clone()
        })
    }

    /// Sentiment from the head combined with a second opinion `other` in `[-1, 1]` (the
    /// embedded lexicon + linear model's score, which catches negations and domain words
    /// that the embedding blurs): the score is `mix * (2p - 1) + (1 - mix) * other`, with
    /// `mix` (0..=1) chosen on validation data. `probability_positive` stays the head's.
    pub fn combine(
        &self,
        embedding: &[f32],
        other: Score,
        mix: f32,
    ) -> Result<NeuralSentiment, NeuralError> {
        let p = self.probability(embedding)?;
        let mix = mix.clamp(0.0, 1.0);
        let score = Score::clamped(mix * (2.0 * p - 1.0) + (1.0 - mix) * other.get());
        Ok(NeuralSentiment {
            score,
            label: SentimentLabel::from_score(score),
            probability_positive: p,
        })
    }
}

/// Checks `(embedding, class index)` training pairs (one dimension, classes below `labels`)
/// and turns them into the head's feature rows; returns the embedding dimension with them.
pub(super) fn intent_rows(
    labels: usize,
    data: &[(Vec<f32>, usize)],
) -> Result<(usize, Vec<(crate::linear::SparseVec, usize)>), NeuralError> {
    let dim = data
        .first()
        .map(|(e, _)| e.len())
        .ok_or_else(|| NeuralError::InvalidInput("no intent examples".into()))?;
    let mut rows = Vec::with_capacity(data.len());
    for (e, y) in data {
        check_dim(e, dim)?;
        if *y >= labels {
            return Err(NeuralError::InvalidInput(format!(
                "intent class {y} but only {labels} labels"
            )));
        }
        rows.push((features(e), *y));
    }
    Ok((dim, rows))
}

/// Multinomial logistic regression over intents on embeddings, with an out-of-scope
/// threshold on the best probability.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentHead {
    dim: usize,
    labels: Vec<String>,
    threshold: f32,
    model: Softmax,
}

impl IntentHead {
    /// Trains on `(embedding, class index)` pairs; `labels[i]` names class `i`. Below
    /// `threshold` (0..=1, softmax probability) a prediction is out of scope.
    pub fn train(
        labels: Vec<String>,
        data: &[(Vec<f32>, usize)],
        threshold: f32,
        cfg: &SgdConfig,
    ) -> Result<Self, NeuralError> {
        let (dim, rows) = intent_rows(labels.len(), data)?;
        let model = Softmax::train(&rows, dim, labels.len(), cfg);
        Ok(IntentHead {
            dim,
            labels,
            threshold: threshold.clamp(0.0, 1.0),
            model,
        })
    }

    /// A head around a trained softmax (e.g. by [`IntentHead::train_full_batch`]) whose
    /// weights apply to [`features`] of `dim`-dimensional embeddings.
    pub(super) fn from_model(
        labels: Vec<String>,
        dim: usize,
        threshold: f32,
        model: Softmax,
    ) -> Self {
        IntentHead {
            dim,
            labels,
            threshold: threshold.clamp(0.0, 1.0),
            model,
        }
    }

    /// Embeds the taxonomy's examples with `model` and trains on them, with the taxonomy's
    /// threshold.
    pub fn from_taxonomy(
        model: &MiniLm,
        taxonomy: &IntentTaxonomy,
        cfg: &SgdConfig,
    ) -> Result<Self, NeuralError> {
        taxonomy
            .validate()
            .map_err(|e| NeuralError::InvalidInput(e.to_string()))?;
        let examples: Vec<(&str, usize)> = taxonomy
            .intents
            .iter()
            .enumerate()
            .flat_map(|(c, intent)| intent.examples.iter().map(move |ex| (ex.as_str(), c)))
            .collect();
        let labels = taxonomy.intents.iter().map(|i| i.name.clone()).collect();
        Self::from_examples(model, labels, &examples, taxonomy.threshold, cfg)
    }

    /// Embeds `examples` (text and index into `labels`) with `model` and trains on them.
    /// Weighted examples repeat their text; each distinct text is embedded once.
    pub fn from_examples(
        model: &MiniLm,
        labels: Vec<String>,
        examples: &[(&str, usize)],
        threshold: f32,
        cfg: &SgdConfig,
    ) -> Result<Self, NeuralError> {
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut texts: Vec<&str> = Vec::new();
        for &(t, _) in examples {
            index.entry(t).or_insert_with(|| {
                texts.push(t);
                texts.len() - 1
            });
        }
        let embedded = model.embed(&texts)?;
        let data: Vec<(Vec<f32>, usize)> = examples
            .iter()
            .map(|&(t, c)| (embedded[index[t]].clone(), c))
            .collect();
        Self::train(labels, &data, threshold, cfg)
    }

    /// The intent names, in class-index order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The out-of-scope threshold.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Embedding dimension the head reads.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Replaces the out-of-scope threshold (e.g. after tuning on validation data).
    pub fn set_threshold(&mut self, threshold: f32) {
        self.threshold = threshold.clamp(0.0, 1.0);
    }

    /// Probability of every intent, in class-index order.
    pub fn scores(&self, embedding: &[f32]) -> Result<Vec<f32>, NeuralError> {
        check_dim(embedding, self.dim)?;
        let mut out = vec![0.0; self.model.classes()];
        self.model
            .probabilities_into(&features(embedding), &mut out);
        Ok(out)
    }

    /// Index and probability of the best intent.
    pub fn best(&self, embedding: &[f32]) -> Result<(usize, f32), NeuralError> {
        Ok(self
            .scores(embedding)?
            .into_iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0)))
    }

    /// The intent of one embedding, with out-of-scope decision and the three best intents.
    pub fn predict(&self, embedding: &[f32]) -> Result<IntentPrediction, NeuralError> {
        Ok(IntentPrediction::from_scores(
            &self.labels,
            self.scores(embedding)?,
            self.threshold,
        ))
    }

    /// The head as saved.
    pub fn save(&self) -> SavedIntentHead {
        let (weights, bias) = self.model.parts();
        SavedIntentHead {
            format: 1,
            model: MINILM_VERSION.to_string(),
            labels: self.labels.clone(),
            threshold: self.threshold,
            weights: weights.to_vec(),
            bias: bias.to_vec(),
        }
    }

    /// A head read back from [`IntentHead::save`]'s output, checked: format 1, weights for
    /// this build's embedding model, one bias per intent, a whole number of weight rows,
    /// finite numbers.
    pub fn from_saved(saved: &SavedIntentHead) -> Result<Self, NeuralError> {
        let bad = |why: &str| Err(NeuralError::InvalidInput(format!("intent head: {why}")));
        check_saved("intent head", saved.format, &saved.model)?;
        let classes = saved.labels.len();
        if classes == 0 || saved.bias.len() != classes {
            return bad("needs one bias per intent, and at least one intent");
        }
        if saved.weights.is_empty() || saved.weights.len() % classes != 0 {
            return bad("the weights are not whole rows of one weight per intent");
        }
        if saved
            .weights
            .iter()
            .chain(&saved.bias)
            .chain([&saved.threshold])
            .any(|v| !v.is_finite())
        {
            return bad("weights that are not finite numbers");
        }
        let dim = saved.weights.len() / classes;
        let model = Softmax::from_parts(classes, saved.weights.clone(), saved.bias.clone())
            .ok_or_else(|| NeuralError::InvalidInput("intent head: weights do not fit".into()))?;
        Ok(IntentHead::from_model(
            saved.labels.clone(),
            dim,
            saved.threshold,
            model,
        ))
    }
}

/// The heads a [`super::NeuralInterpreter`] applies to each embedding; either may be absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NeuralHeads {
    /// Sentiment head.
    pub sentiment: Option<SentimentHead>,
    /// Intent head.
    pub intent: Option<IntentHead>,
}

impl NeuralHeads {
    /// Trains both heads: sentiment on labelled sentences (e.g. the UCI train split, see
    /// [`crate::parse_uci`] and [`crate::is_test_split`]), intent on the taxonomy's examples.
    pub fn train(
        model: &MiniLm,
        sentiment: &[(String, bool)],
        taxonomy: &IntentTaxonomy,
    ) -> Result<Self, NeuralError> {
        let texts: Vec<&str> = sentiment.iter().map(|(t, _)| t.as_str()).collect();
        let data: Vec<(Vec<f32>, bool)> = model
            .embed(&texts)?
            .into_iter()
            .zip(sentiment.iter().map(|(_, y)| *y))
            .collect();
        Ok(NeuralHeads {
            sentiment: Some(SentimentHead::train(&data, &default_sentiment_sgd())?),
            intent: Some(IntentHead::from_taxonomy(
                model,
                taxonomy,
                &default_intent_sgd(),
            )?),
        })
    }
}
