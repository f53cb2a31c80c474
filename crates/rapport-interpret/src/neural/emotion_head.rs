//! Emotion heads on sentence embeddings: one binary logistic regression per emotion, whose
//! finds are added to the embedded rules' (the rules name an emotion only when the customer
//! states it; the heads also catch the ones implied, such as anxiety in "my rent is due
//! today").
//!
//! The shipped heads are trained on the `dev` part of the hand-labelled customer messages
//! (`tests/data/cx-messages.jsonl`), never on its `heldout` part, by `cargo run --release -p
//! rapport-interpret --features neural --example evaluate_emotion_neural -- --write-heads`.

use serde::{Deserialize, Serialize};

use super::heads::{check_dim, check_saved, features};
use super::minilm::MINILM_VERSION;
use super::NeuralError;
use crate::linear::{BinaryLogistic, SgdConfig};
use crate::{Emotion, EmotionKind, Intensity};

const SHIPPED_EMOTION_HEADS: &str = include_str!("../../model/neural-emotion-heads.json");

/// Every emotion a head is trained for, in a fixed order.
pub const EMOTION_KINDS: [EmotionKind; 7] = [
    EmotionKind::Anger,
    EmotionKind::Frustration,
    EmotionKind::Anxiety,
    EmotionKind::Sadness,
    EmotionKind::Confusion,
    EmotionKind::Joy,
    EmotionKind::Gratitude,
];

/// Intensity given to an emotion only a head found. The heads say whether, not how much; 2
/// is the commonest labelled intensity of the emotions the rules miss (implied ones are rarely
/// extreme).
pub const HEAD_INTENSITY: u8 = 2;

/// One emotion's head as saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedEmotionHead {
    /// Which emotion.
    pub emotion: EmotionKind,
    /// Intercept.
    pub bias: f32,
    /// One weight per embedding dimension (over the scaled features, as the sentiment head).
    pub weights: Vec<f32>,
}

/// The emotion heads as saved to a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedEmotionHeads {
    /// Format version (1).
    pub format: u32,
    /// The embedding model the weights belong to ([`MINILM_VERSION`]).
    pub model: String,
    /// Where the training messages came from and how the settings were chosen.
    pub trained_on: String,
    /// Probability from which a head's emotion is reported (0..1), chosen on validation.
    pub threshold: f32,
    /// One head per emotion.
    pub heads: Vec<SavedEmotionHead>,
}

/// One logistic head per emotion, with one reporting threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct EmotionHeads {
    dim: usize,
    threshold: f32,
    heads: Vec<(EmotionKind, BinaryLogistic)>,
}

impl EmotionHeads {
    /// Trains a head per emotion of [`EMOTION_KINDS`] on `(embedding, emotions labelled)`
    /// pairs (one dimension; an empty list is a message without emotion).
    pub fn train(
        data: &[(Vec<f32>, Vec<EmotionKind>)],
        cfg: &SgdConfig,
        threshold: f32,
    ) -> Result<Self, NeuralError> {
        let dim = data
            .first()
            .map(|(e, _)| e.len())
            .ok_or_else(|| NeuralError::InvalidInput("no emotion examples".into()))?;
        let mut rows = Vec::with_capacity(data.len());
        for (e, _) in data {
            check_dim(e, dim)?;
            rows.push(features(e));
        }
        let heads = EMOTION_KINDS
            .iter()
            .map(|&kind| {
                let labelled: Vec<_> = rows
                    .iter()
                    .zip(data)
                    .map(|(x, (_, found))| (x.clone(), found.contains(&kind)))
                    .collect();
                (kind, BinaryLogistic::train(&labelled, dim, cfg))
            })
            .collect();
        Self::checked(dim, threshold, heads)
    }

    fn checked(
        dim: usize,
        threshold: f32,
        heads: Vec<(EmotionKind, BinaryLogistic)>,
    ) -> Result<Self, NeuralError> {
        if !(threshold > 0.0 && threshold < 1.0) {
            return Err(NeuralError::InvalidInput(format!(
                "emotion threshold {threshold} outside (0, 1)"
            )));
        }
        Ok(EmotionHeads {
            dim,
            threshold,
            heads,
        })
    }

    /// The reporting threshold.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Embedding dimension the heads read.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Each emotion's probability for one embedding, in [`EMOTION_KINDS`] order.
    pub fn probabilities(&self, embedding: &[f32]) -> Result<Vec<(EmotionKind, f32)>, NeuralError> {
        check_dim(embedding, self.dim)?;
        let x = features(embedding);
        Ok(self
            .heads
            .iter()
            .map(|(k, m)| (*k, m.probability(&x)))
            .collect())
    }

    /// Adds to `emotions` (the rules' finds) each emotion whose head reaches the threshold
    /// and the rules did not name, at [`HEAD_INTENSITY`]; keeps strongest first.
    pub fn add_to(
        &self,
        embedding: &[f32],
        emotions: &mut Vec<Emotion>,
    ) -> Result<(), NeuralError> {
        add_found(&self.probabilities(embedding)?, self.threshold, emotions);
        Ok(())
    }

    /// The heads as saved to a file.
    pub fn save(&self, trained_on: &str) -> SavedEmotionHeads {
        SavedEmotionHeads {
            format: 1,
            model: MINILM_VERSION.to_string(),
            trained_on: trained_on.to_string(),
            threshold: self.threshold,
            heads: self
                .heads
                .iter()
                .map(|(k, m)| SavedEmotionHead {
                    emotion: *k,
                    bias: m.bias,
                    weights: m.weights.clone(),
                })
                .collect(),
        }
    }

    /// Heads read back from [`EmotionHeads::save`]'s output, checked: format 1, this build's
    /// embedding model, one head per emotion of one dimension, finite numbers.
    pub fn from_saved(saved: &SavedEmotionHeads) -> Result<Self, NeuralError> {
        let bad = |why: String| Err(NeuralError::InvalidInput(format!("emotion heads: {why}")));
        check_saved("emotion heads", saved.format, &saved.model)?;
        let dim = saved.heads.first().map_or(0, |h| h.weights.len());
        let mut heads = Vec::with_capacity(EMOTION_KINDS.len());
        for kind in EMOTION_KINDS {
            let mut of_kind = saved.heads.iter().filter(|h| h.emotion == kind);
            let (Some(h), None) = (of_kind.next(), of_kind.next()) else {
                return bad(format!("not exactly one head for {}", kind.as_str()));
            };
            if dim == 0
                || h.weights.len() != dim
                || !h.bias.is_finite()
                || h.weights.iter().any(|w| !w.is_finite())
            {
                return bad(format!(
                    "the {} head has no weights, weights of another dimension, or numbers that are not finite",
                    kind.as_str()
                ));
            }
            heads.push((
                kind,
                BinaryLogistic {
                    weights: h.weights.clone(),
                    bias: h.bias,
                },
            ));
        }
        if saved.heads.len() != heads.len() {
            return bad("heads for emotions this build does not know".into());
        }
        Self::checked(dim, saved.threshold, heads)
    }

    /// The heads shipped with the crate (see `model/README.md`).
    pub fn shipped() -> Result<Self, NeuralError> {
        let saved: SavedEmotionHeads = serde_json::from_str(SHIPPED_EMOTION_HEADS)
            .map_err(|e| NeuralError::InvalidInput(format!("shipped emotion heads: {e}")))?;
        Self::from_saved(&saved)
    }
}

/// Adds to `emotions` each emotion of `probabilities` (from [`EmotionHeads::probabilities`])
/// that reaches `threshold` and is not there yet, at [`HEAD_INTENSITY`]; keeps strongest
/// first, the rules' order among equal intensities.
pub fn add_found(
    probabilities: &[(EmotionKind, f32)],
    threshold: f32,
    emotions: &mut Vec<Emotion>,
) {
    for &(kind, p) in probabilities {
        if p >= threshold && !emotions.iter().any(|e| e.kind == kind) {
            emotions.push(Emotion {
                kind,
                intensity: Intensity::clamped(i32::from(HEAD_INTENSITY)),
            });
        }
    }
    emotions.sort_by_key(|e| std::cmp::Reverse(e.intensity));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Vec<(Vec<f32>, Vec<EmotionKind>)> {
        // Dimension 0 means anger, dimension 1 gratitude.
        (0..40)
            .map(|i| match i % 3 {
                0 => (vec![1.0, 0.0, 0.1], vec![EmotionKind::Anger]),
                1 => (vec![0.0, 1.0, 0.1], vec![EmotionKind::Gratitude]),
                _ => (vec![0.0, 0.0, 1.0], vec![]),
            })
            .collect()
    }

    #[test]
    fn heads_add_what_they_find_and_round_trip() {
        let cfg = SgdConfig {
            epochs: 50,
            learning_rate: 0.1,
            decay: 0.1,
            l2: 1e-4,
            seed: 7,
        };
        let heads = EmotionHeads::train(&toy(), &cfg, 0.5).expect("train");
        let mut found = vec![Emotion {
            kind: EmotionKind::Frustration,
            intensity: Intensity::clamped(3),
        }];
        heads.add_to(&[1.0, 0.0, 0.1], &mut found).expect("add");
        let kinds: Vec<_> = found.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![EmotionKind::Frustration, EmotionKind::Anger]);
        assert_eq!(found[1].intensity.get(), HEAD_INTENSITY);

        let mut none = Vec::new();
        heads.add_to(&[0.0, 0.0, 1.0], &mut none).expect("add");
        assert!(none.is_empty(), "{none:?}");

        let back = EmotionHeads::from_saved(&heads.save("toy")).expect("read back");
        assert_eq!(back, heads);
        assert!(
            heads.add_to(&[1.0, 0.0], &mut none).is_err(),
            "wrong dimension"
        );
    }

    #[test]
    fn saved_heads_are_checked() {
        let cfg = SgdConfig {
            epochs: 5,
            learning_rate: 0.1,
            decay: 0.1,
            l2: 1e-4,
            seed: 7,
        };
        let good = EmotionHeads::train(&toy(), &cfg, 0.5)
            .expect("train")
            .save("toy");
        let mut missing = good.clone();
        missing.heads.pop();
        assert!(EmotionHeads::from_saved(&missing).is_err());
        let mut nan = good.clone();
        nan.heads[2].weights[0] = f32::NAN;
        assert!(EmotionHeads::from_saved(&nan).is_err());
        let mut threshold = good.clone();
        threshold.threshold = 1.5;
        assert!(EmotionHeads::from_saved(&threshold).is_err());
        let mut model = good;
        model.model = "another-model".into();
        assert!(EmotionHeads::from_saved(&model).is_err());
    }

    #[test]
    fn the_shipped_heads_load() {
        let heads = EmotionHeads::shipped().expect("shipped emotion heads");
        assert_eq!(heads.dim(), 384);
    }
}
