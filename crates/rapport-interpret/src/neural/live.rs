//! The neural path inside an [`crate::Interpreter`]: what `Interpreter::neural` attaches and
//! how it rewrites the embedded analysis of a batch of messages.
//!
//! The model and the sentiment head are shared by every interpreter built from one (a
//! workspace's interpreter with its own intent model keeps them); the intent head belongs to
//! the taxonomy it was trained on, so a workspace's own model drops it.

use std::sync::Arc;

use super::emotion_head::{add_found, EmotionHeads};
use super::heads::{default_intent_sgd, mix_probabilities, IntentHead, SentimentHead};
use super::minilm::{EncoderAdapter, MiniLm, MINILM_NAME, MINILM_VERSION};
use super::NeuralError;
use crate::{IntentClassifier, IntentPrediction, IntentTaxonomy, MessageAnalysis, NeuralUse};

/// Weight of the neural intent head's probabilities against the embedded n-gram classifier's
/// when both read a message's intent. Chosen on a validation fifth of BANKING77's train split
/// from 0.5–1.0 (`examples/evaluate_neural.rs`): the mix reads 93.9% of BANKING77's test set,
/// the head alone 92.7%, the n-gram classifier alone 91.5%.
pub const INTENT_MIX: f32 = 0.6;

#[derive(Debug)]
struct Shared {
    model: MiniLm,
    sentiment: SentimentHead,
    /// The encoder adapter the sentiment head reads through, when it has one.
    sentiment_adapter: Option<EncoderAdapter>,
    mix: f32,
    emotion: EmotionHeads,
}

/// The neural part of an interpreter.
#[derive(Debug, Clone)]
pub(crate) struct Attached {
    shared: Arc<Shared>,
    intent: Option<Arc<IntentHead>>,
}

impl Attached {
    /// The shipped sentiment and emotion heads with `model`, and an intent head trained on
    /// `taxonomy`.
    pub(crate) fn new(model: MiniLm, taxonomy: &IntentTaxonomy) -> Result<Self, NeuralError> {
        let (sentiment, mix) = SentimentHead::shipped()?;
        let emotion = EmotionHeads::shipped()?;
        for (what, dim) in [("sentiment", sentiment.dim()), ("emotion", emotion.dim())] {
            if dim != model.dim() {
                return Err(NeuralError::InvalidInput(format!(
                    "the shipped {what} head reads {dim}-dimensional embeddings, the model gives {}",
                    model.dim()
                )));
            }
        }
        let sentiment_adapter = sentiment.encoder_adapter(&model)?;
        let intent = IntentHead::from_taxonomy(&model, taxonomy, &default_intent_sgd())?;
        Ok(Attached {
            shared: Arc::new(Shared {
                model,
                sentiment,
                sentiment_adapter,
                mix,
                emotion,
            }),
            intent: Some(Arc::new(intent)),
        })
    }

    /// The same model and sentiment head, without the intent head.
    pub(crate) fn without_intent(&self) -> Self {
        Attached {
            shared: self.shared.clone(),
            intent: None,
        }
    }

    /// The same model and heads, with `head` reading intents (e.g. a workspace's head trained
    /// on its taxonomy and its agents' corrections).
    pub(crate) fn with_intent(&self, head: IntentHead) -> Result<Self, NeuralError> {
        if head.dim() != self.shared.model.dim() {
            return Err(NeuralError::InvalidInput(format!(
                "the intent head reads {}-dimensional embeddings, the model gives {}",
                head.dim(),
                self.shared.model.dim()
            )));
        }
        Ok(Attached {
            shared: self.shared.clone(),
            intent: Some(Arc::new(head)),
        })
    }

    /// An intent head trained with this part's model on `examples` (text and index into
    /// `labels`), answering out of scope below `threshold`.
    pub(crate) fn train_intent(
        &self,
        labels: Vec<String>,
        examples: &[(&str, usize)],
        threshold: f32,
    ) -> Result<IntentHead, NeuralError> {
        IntentHead::from_examples(
            &self.shared.model,
            labels,
            examples,
            threshold,
            &default_intent_sgd(),
        )
    }

    /// Rewrites the embedded analyses of `texts` (each with its sentences' byte ranges):
    /// sentiment of the message and of each sentence, the emotions the heads find beside the
    /// rules', and the intent when this part has an intent head. If the model fails, the
    /// analyses stay the embedded models' own, and their `model` says so.
    pub(crate) fn refine(
        &self,
        texts: &[&str],
        out: &mut [(MessageAnalysis, Vec<(usize, usize)>)],
        embedded_intent: &IntentClassifier,
    ) {
        // What to embed: each message, then each of its sentences when it has more than one
        // (the only sentence of a message is read as the message is).
        let mut inputs: Vec<&str> = Vec::with_capacity(texts.len());
        let mut owners: Vec<(usize, Option<usize>)> = Vec::with_capacity(texts.len());
        for (i, (text, (_, ranges))) in texts.iter().zip(out.iter()).enumerate() {
            inputs.push(text);
            owners.push((i, None));
            if ranges.len() > 1 {
                for (s, &(a, b)) in ranges.iter().enumerate() {
                    if let Some(part) = text.get(a..b) {
                        inputs.push(part);
                        owners.push((i, Some(s)));
                    }
                }
            }
        }
        // Each input's plain embedding, and the one the sentiment head reads (through its
        // adapter when it has one).
        let shared = &*self.shared;
        let Ok(embeddings) = shared
            .model
            .embed_with(&inputs, shared.sentiment_adapter.as_ref())
        else {
            return;
        };
        if embeddings.len() != inputs.len() {
            return;
        }
        let mut refined = vec![false; out.len()];
        for ((i, sentence), (e, adapted)) in owners.into_iter().zip(&embeddings) {
            let (analysis, _) = &mut out[i];
            let for_sentiment = adapted.as_deref().unwrap_or(e.as_slice());
            match sentence {
                None => {
                    let Ok(combined) = shared.sentiment.combine_sentiment(
                        for_sentiment,
                        &analysis.sentiment,
                        shared.mix,
                    ) else {
                        continue;
                    };
                    let intent = match &self.intent {
                        Some(head) => match mixed_intent(head, embedded_intent, e, texts[i]) {
                            Ok(p) => Some(p),
                            Err(_) => continue,
                        },
                        None => None,
                    };
                    let Ok(found) = shared.emotion.probabilities(e) else {
                        continue;
                    };
                    add_found(&found, shared.emotion.threshold(), &mut analysis.emotions);
                    if let [only] = analysis.sentences.as_mut_slice() {
                        only.sentiment = combined.clone();
                    }
                    analysis.sentiment = combined;
                    if let Some(p) = intent {
                        analysis.intent = p;
                    }
                    refined[i] = true;
                }
                Some(s) => {
                    // Sentences are only rewritten with their message (messages come first).
                    if !refined[i] {
                        continue;
                    }
                    if let Some(x) = analysis.sentences.get_mut(s) {
                        if let Ok(c) = shared.sentiment.combine_sentiment(
                            for_sentiment,
                            &x.sentiment,
                            shared.mix,
                        ) {
                            x.sentiment = c;
                        }
                    }
                }
            }
        }
        for (i, (analysis, _)) in out.iter_mut().enumerate() {
            if refined[i] {
                analysis.model.neural = Some(NeuralUse {
                    name: MINILM_NAME.to_string(),
                    version: MINILM_VERSION.to_string(),
                    // Rounded: the f32 widened to f64 would print as 0.4000000059604645.
                    sentiment_mix: (f64::from(shared.mix) * 1e4).round() / 1e4,
                    intent: self.intent.is_some(),
                    emotion: true,
                });
            }
        }
    }
}

/// The intent read by `head` on the embedding mixed with `embedded` on the text
/// ([`INTENT_MIX`]), with the head's out-of-scope threshold. When the two do not have the same
/// intents in the same order the head answers alone.
fn mixed_intent(
    head: &IntentHead,
    embedded: &IntentClassifier,
    embedding: &[f32],
    text: &str,
) -> Result<IntentPrediction, NeuralError> {
    let mut scores = head.scores(embedding)?;
    if embedded.labels() == head.labels() {
        mix_probabilities(&mut scores, &embedded.scores(text), INTENT_MIX);
    }
    Ok(IntentPrediction::from_scores(
        head.labels(),
        scores,
        head.threshold(),
    ))
}
