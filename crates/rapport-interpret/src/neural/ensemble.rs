//! Out-of-scope scoring by several models at once: the neural head and Mahalanobis distance
//! of [`super::oos`], the distance to the k-th nearest training embedding
//! ([`NearestNeighbours`]), and the embedded word and character n-gram classifier
//! ([`IntentClassifier`]), which reads the text rather than its embedding.
//!
//! Each model errs on different texts: the embedding models miss out-of-scope texts whose
//! meaning is near an intent, the n-gram model misses those that share its words. So the
//! [`EnsembleScorer`] puts every model's in-scope score on one scale fitted on unlabelled
//! calibration data ([`ScoreBlend`]) and averages them, and takes the intent from the
//! average of the two classifiers' probabilities. On CLINC150 (see `BENCHMARKS.md`) this
//! ranks in-scope above out-of-scope texts better than any one model.

use gemm::Parallelism;

use super::encoder::matmul;
use super::heads::{check_dim, mix_probabilities, IntentHead};
use super::oos::{Mahalanobis, ScaleKind, ScoreScale};
use super::NeuralError;
use crate::IntentClassifier;

/// Queries per matrix product in [`NearestNeighbours::scores`] (bounds the similarity
/// buffer to `CHUNK x examples` floats).
const CHUNK: usize = 256;

/// In-scope score from the cosine similarity to the k-th most similar training embedding
/// (deep nearest neighbours, Sun et al. 2022): a text far from every training example of
/// every intent gets a low score, whatever a classifier says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct NearestNeighbours {
    dim: usize,
    k: usize,
    /// Unit-length training embeddings, transposed (`dim x examples`, row-major), so that
    /// queries times this matrix gives every cosine in one product.
    examples_t: Vec<f32>,
    examples: usize,
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter().map(|x| x / n).collect()
}

impl NearestNeighbours {
    /// Keeps (normalised copies of) the training embeddings; `k` is counted from 1 and must
    /// not exceed their number.
    pub fn fit(embeddings: &[Vec<f32>], k: usize) -> Result<Self, NeuralError> {
        let dim = embeddings.first().map_or(0, Vec::len);
        if dim == 0 || k == 0 || k > embeddings.len() {
            return Err(NeuralError::InvalidInput(format!(
                "nearest neighbours need 1 <= k <= examples and non-empty embeddings \
                 (k {k}, {} examples of dimension {dim})",
                embeddings.len()
            )));
        }
        let n = embeddings.len();
        let mut examples_t = vec![0.0f32; dim * n];
        for (j, e) in embeddings.iter().enumerate() {
            check_dim(e, dim)?;
            for (i, v) in unit(e).into_iter().enumerate() {
                examples_t[i * n + j] = v;
            }
        }
        Ok(NearestNeighbours {
            dim,
            k,
            examples_t,
            examples: n,
        })
    }

    /// The `k` this was fitted with.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Cosine similarity of every embedding to its k-th most similar training embedding
    /// (higher is more in scope), computed by matrix products over chunks of queries.
    pub fn scores(&self, embeddings: &[Vec<f32>]) -> Result<Vec<f32>, NeuralError> {
        let n = self.examples;
        let mut out = Vec::with_capacity(embeddings.len());
        let mut sims = Vec::new();
        for chunk in embeddings.chunks(CHUNK) {
            let mut queries = Vec::with_capacity(chunk.len() * self.dim);
            for e in chunk {
                check_dim(e, self.dim)?;
                queries.extend(unit(e));
            }
            sims.resize(chunk.len() * n, 0.0);
            matmul(
                (chunk.len(), n, self.dim),
                &queries,
                false,
                &self.examples_t,
                &mut sims,
                false,
                Parallelism::None,
            );
            for row in sims.chunks_exact_mut(n) {
                // The k-th largest sits at index k - 1 of a descending order.
                let (_, kth, _) = row.select_nth_unstable_by(self.k - 1, |a, b| b.total_cmp(a));
                out.push(*kth);
            }
        }
        Ok(out)
    }

    /// [`NearestNeighbours::scores`] of one embedding.
    pub fn score(&self, embedding: &[f32]) -> Result<f32, NeuralError> {
        Ok(self.scores(&[embedding.to_vec()])?[0])
    }
}

/// A weighted average of several raw scores, each first mapped by its own [`ScoreScale`]
/// fitted on calibration scores (no labels needed). Higher raw scores must mean "more in
/// scope" for every member.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreBlend {
    scales: Vec<ScoreScale>,
    weights: Vec<f32>,
}

impl ScoreBlend {
    /// Fits one scale of `kind` per member on `calibration` (one row of member scores per
    /// calibration item). `weights` (one per member, not negative, not all zero) are
    /// normalised to sum to one.
    pub fn fit(
        kind: ScaleKind,
        calibration: &[Vec<f32>],
        weights: &[f32],
    ) -> Result<Self, NeuralError> {
        let members = weights.len();
        let total: f32 = weights.iter().sum();
        if members == 0 || weights.iter().any(|w| !w.is_finite() || *w < 0.0) || total <= 0.0 {
            return Err(NeuralError::InvalidInput(
                "blend weights must be finite, not negative and not all zero".into(),
            ));
        }
        if calibration.iter().any(|row| row.len() != members) {
            return Err(NeuralError::InvalidInput(format!(
                "every calibration row needs {members} scores"
            )));
        }
        let scales = (0..members)
            .map(|m| {
                let column: Vec<f32> = calibration.iter().map(|row| row[m]).collect();
                ScoreScale::fit(kind, &column)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ScoreBlend {
            scales,
            weights: weights.iter().map(|w| w / total).collect(),
        })
    }

    /// The blended score of one row of member scores.
    pub fn apply(&self, scores: &[f32]) -> Result<f32, NeuralError> {
        if scores.len() != self.scales.len() {
            return Err(NeuralError::InvalidInput(format!(
                "the blend has {} members, got {} scores",
                self.scales.len(),
                scores.len()
            )));
        }
        Ok(self
            .scales
            .iter()
            .zip(&self.weights)
            .zip(scores)
            .map(|((scale, w), &s)| w * scale.apply(s))
            .sum())
    }
}

/// The models an [`EnsembleScorer`] combines; all must know the same intents in the same
/// order (the neural head and the n-gram classifier are trained on the same labels).
#[derive(Debug, Clone)]
pub struct EnsembleParts {
    /// Softmax head on embeddings (e.g. trained by [`IntentHead::train_full_batch`]).
    pub head: IntentHead,
    /// Mahalanobis distance to the class means of the training embeddings.
    pub distance: Mahalanobis,
    /// Distance to the k-th nearest training embedding; `None` leaves it out.
    pub neighbours: Option<NearestNeighbours>,
    /// The embedded word and character n-gram classifier; `None` leaves it out.
    pub embedded: Option<IntentClassifier>,
}

/// Settings of an [`EnsembleScorer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnsembleConfig {
    /// How each member score is put on the common scale.
    pub kind: ScaleKind,
    /// Share (0..=1) of the neural head in the averaged class probabilities that pick the
    /// intent; the rest is the n-gram classifier's (ignored without one).
    pub intent_mix: f32,
    /// Weights of the member scores in the confidence, in the order: head probability,
    /// Mahalanobis score, n-gram classifier probability, nearest-neighbour cosine (a
    /// missing model's weight is ignored).
    pub weights: [f32; 4],
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        EnsembleConfig {
            kind: ScaleKind::Rank,
            intent_mix: 0.7,
            weights: [1.0; 4],
        }
    }
}

/// Intent and in-scope confidence from several models: the intent is the best class of
/// `intent_mix * head + (1 - intent_mix) * n-gram` probabilities; the confidence is the
/// [`ScoreBlend`] of the head's best probability, the Mahalanobis score, the n-gram
/// classifier's best probability and the nearest-neighbour cosine, with the scales fitted
/// on unlabelled calibration texts (e.g. a validation split). A caller answers out of scope
/// below a threshold on the confidence, chosen on validation data.
#[derive(Debug, Clone)]
pub struct EnsembleScorer {
    parts: EnsembleParts,
    intent_mix: f32,
    blend: ScoreBlend,
}

/// What one text gives: class probabilities for the intent and the raw member scores.
struct Raw {
    probabilities: Vec<f32>,
    members: Vec<f32>,
}

impl EnsembleScorer {
    /// Checks that the parts agree on the intents and fits the blend on the calibration
    /// texts and their embeddings (same length and order).
    pub fn calibrate(
        parts: EnsembleParts,
        texts: &[&str],
        embeddings: &[Vec<f32>],
        config: &EnsembleConfig,
    ) -> Result<Self, NeuralError> {
        let classes = parts.head.labels().len();
        if parts.distance.classes() != classes {
            return Err(NeuralError::InvalidInput(format!(
                "the head has {classes} classes, the distance {}",
                parts.distance.classes()
            )));
        }
        if let Some(clf) = &parts.embedded {
            if clf.labels() != parts.head.labels() {
                return Err(NeuralError::InvalidInput(
                    "the n-gram classifier and the head must have the same labels, in order".into(),
                ));
            }
        }
        let weights: Vec<f32> = config
            .weights
            .iter()
            .enumerate()
            .filter(|(m, _)| match m {
                2 => parts.embedded.is_some(),
                3 => parts.neighbours.is_some(),
                _ => true,
            })
            .map(|(_, w)| *w)
            .collect();
        let mut scorer = EnsembleScorer {
            parts,
            intent_mix: config.intent_mix.clamp(0.0, 1.0),
            // Placeholder until the calibration scores are in; replaced below.
            blend: ScoreBlend {
                scales: Vec::new(),
                weights: Vec::new(),
            },
        };
        let raw = scorer.raw(texts, embeddings)?;
        let rows: Vec<Vec<f32>> = raw.into_iter().map(|r| r.members).collect();
        scorer.blend = ScoreBlend::fit(config.kind, &rows, &weights)?;
        Ok(scorer)
    }

    /// The parts this scorer combines.
    pub fn parts(&self) -> &EnsembleParts {
        &self.parts
    }

    fn raw(&self, texts: &[&str], embeddings: &[Vec<f32>]) -> Result<Vec<Raw>, NeuralError> {
        if texts.len() != embeddings.len() {
            return Err(NeuralError::InvalidInput(format!(
                "{} texts but {} embeddings",
                texts.len(),
                embeddings.len()
            )));
        }
        let neighbours = match &self.parts.neighbours {
            Some(nn) => Some(nn.scores(embeddings)?),
            None => None,
        };
        let mut out = Vec::with_capacity(texts.len());
        for (i, (text, e)) in texts.iter().zip(embeddings).enumerate() {
            let mut probabilities = self.parts.head.scores(e)?;
            let mut members = vec![max(&probabilities), self.parts.distance.score(e)?];
            if let Some(clf) = &self.parts.embedded {
                let p = clf.scores(text);
                members.push(max(&p));
                mix_probabilities(&mut probabilities, &p, self.intent_mix);
            }
            if let Some(scores) = &neighbours {
                members.push(scores[i]);
            }
            out.push(Raw {
                probabilities,
                members,
            });
        }
        Ok(out)
    }

    /// The intent (class index) and in-scope confidence of every text with its embedding.
    pub fn score_batch(
        &self,
        texts: &[&str],
        embeddings: &[Vec<f32>],
    ) -> Result<Vec<(usize, f32)>, NeuralError> {
        self.raw(texts, embeddings)?
            .into_iter()
            .map(|r| {
                let class = r
                    .probabilities
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(c, _)| c);
                Ok((class, self.blend.apply(&r.members)?))
            })
            .collect()
    }

    /// [`EnsembleScorer::score_batch`] of one text.
    pub fn score(&self, text: &str, embedding: &[f32]) -> Result<(usize, f32), NeuralError> {
        Ok(self.score_batch(&[text], &[embedding.to_vec()])?[0])
    }

    /// The intent of a text, or `None` (out of scope) when the confidence is below
    /// `threshold`.
    pub fn classify(
        &self,
        text: &str,
        embedding: &[f32],
        threshold: f32,
    ) -> Result<Option<usize>, NeuralError> {
        let (class, confidence) = self.score(text, embedding)?;
        Ok((confidence >= threshold).then_some(class))
    }
}

fn max(xs: &[f32]) -> f32 {
    xs.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::FullBatchConfig;
    use crate::IntentConfig;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((*seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let (ua, ub) = (unit(a), unit(b));
        ua.iter().zip(&ub).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn nearest_neighbours_match_a_sorted_oracle() {
        let mut seed = 5;
        let dim = 6;
        let train: Vec<Vec<f32>> = (0..40)
            .map(|_| (0..dim).map(|_| lcg(&mut seed)).collect())
            .collect();
        // More queries than one chunk, so the chunked products are covered.
        let queries: Vec<Vec<f32>> = (0..CHUNK + 44)
            .map(|_| (0..dim).map(|_| lcg(&mut seed)).collect())
            .collect();
        for k in [1, 3, 40] {
            let nn = NearestNeighbours::fit(&train, k).expect("fit");
            assert_eq!(nn.k(), k);
            let got = nn.scores(&queries).expect("scores");
            for (q, g) in queries.iter().zip(&got) {
                let mut sims: Vec<f32> = train.iter().map(|t| cosine(q, t)).collect();
                sims.sort_by(|a, b| b.total_cmp(a));
                assert!(
                    (sims[k - 1] - g).abs() < 1e-5,
                    "k {k}: {} vs {g}",
                    sims[k - 1]
                );
            }
            assert!((nn.score(&queries[7]).expect("score") - got[7]).abs() < 1e-6);
        }
        // A training example is its own nearest neighbour.
        let nn = NearestNeighbours::fit(&train, 1).expect("fit");
        assert!((nn.score(&train[3]).expect("score") - 1.0).abs() < 1e-5);
        assert!(NearestNeighbours::fit(&train, 0).is_err());
        assert!(NearestNeighbours::fit(&train, 41).is_err());
        assert!(nn.score(&[1.0, 2.0]).is_err());
    }

    /// Two member scores, each fooled by a different out-of-scope item: (score a, score b,
    /// in scope).
    const ROWS: [(f32, f32, bool); 8] = [
        (0.90, 0.92, true),
        (0.80, 0.85, true),
        (0.85, 0.80, true),
        (0.45, 0.95, true),
        (0.95, 0.45, true),
        (0.55, 0.10, false),
        (0.10, 0.55, false),
        (0.20, 0.20, false),
    ];

    /// Whether every in-scope row scores above every out-of-scope row.
    fn separates(score: impl Fn(f32, f32) -> f32) -> bool {
        let lowest_in = ROWS
            .iter()
            .filter(|r| r.2)
            .map(|r| score(r.0, r.1))
            .fold(f32::INFINITY, f32::min);
        let highest_out = ROWS
            .iter()
            .filter(|r| !r.2)
            .map(|r| score(r.0, r.1))
            .fold(f32::NEG_INFINITY, f32::max);
        lowest_in > highest_out
    }

    #[test]
    fn blend_separates_what_neither_member_does() {
        assert!(!separates(|a, _| a));
        assert!(!separates(|_, b| b));
        let calibration: Vec<Vec<f32>> = ROWS.iter().map(|r| vec![r.0, r.1]).collect();
        for kind in [ScaleKind::ZScore, ScaleKind::Rank] {
            let blend = ScoreBlend::fit(kind, &calibration, &[1.0, 1.0]).expect("fit");
            assert!(
                separates(|a, b| blend.apply(&[a, b]).expect("apply")),
                "{kind:?}"
            );
            // All weight on one member is that member alone (on its scale).
            let only_a = ScoreBlend::fit(kind, &calibration, &[2.0, 0.0]).expect("fit");
            assert!(!separates(|a, b| only_a.apply(&[a, b]).expect("apply")));
        }
        assert!(ScoreBlend::fit(ScaleKind::Rank, &calibration, &[0.0, 0.0]).is_err());
        assert!(ScoreBlend::fit(ScaleKind::Rank, &calibration, &[1.0, -1.0]).is_err());
        assert!(ScoreBlend::fit(ScaleKind::Rank, &calibration, &[1.0]).is_err());
        let blend = ScoreBlend::fit(ScaleKind::Rank, &calibration, &[1.0, 1.0]).expect("fit");
        assert!(blend.apply(&[0.5]).is_err());
    }

    #[test]
    fn blend_scales_are_fitted_on_the_calibration_scores_only() {
        let calibration: Vec<Vec<f32>> = ROWS.iter().map(|r| vec![r.0, r.1 * 10.0]).collect();
        let blend = ScoreBlend::fit(ScaleKind::ZScore, &calibration, &[3.0, 1.0]).expect("fit");
        let a: Vec<f32> = calibration.iter().map(|r| r[0]).collect();
        let b: Vec<f32> = calibration.iter().map(|r| r[1]).collect();
        let (sa, sb) = (
            ScoreScale::fit(ScaleKind::ZScore, &a).expect("a"),
            ScoreScale::fit(ScaleKind::ZScore, &b).expect("b"),
        );
        // Scores never seen in calibration go through the calibration scales unchanged,
        // with the weights normalised (3:1 -> 0.75 / 0.25).
        for (x, y) in [(0.3f32, 2.0f32), (7.0, -4.0), (0.0, 0.0)] {
            let want = 0.75 * sa.apply(x) + 0.25 * sb.apply(y);
            assert!((blend.apply(&[x, y]).expect("apply") - want).abs() < 1e-5);
        }
    }

    /// Labels, example texts with their class, and embeddings with their class.
    type Toy = (
        Vec<String>,
        Vec<(&'static str, usize)>,
        Vec<(Vec<f32>, usize)>,
    );

    /// Three intents with a few example texts each, and embeddings in three clusters.
    fn toy() -> Toy {
        let labels = ["refund", "tracking", "password"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let texts = vec![
            ("i want a refund", 0),
            ("refund my order please", 0),
            ("give me my money back", 0),
            ("where is my parcel", 1),
            ("track my package", 1),
            ("my delivery has not arrived", 1),
            ("reset my password", 2),
            ("i cannot log in", 2),
            ("forgot my password", 2),
        ];
        let mut seed = 17;
        let mut embeddings = Vec::new();
        for c in 0..3 {
            for _ in 0..20 {
                let mut e = vec![0.0f32; 4];
                e[c] = 1.0;
                e.iter_mut().for_each(|v| *v += 0.1 * lcg(&mut seed));
                embeddings.push((e, c));
            }
        }
        (labels, texts, embeddings)
    }

    /// The toy texts, each with an embedding of its own class (the calibration set).
    fn calibration_set(
        texts: &[(&'static str, usize)],
        embeddings: &[(Vec<f32>, usize)],
    ) -> (Vec<&'static str>, Vec<Vec<f32>>) {
        (
            texts.iter().map(|t| t.0).collect(),
            texts
                .iter()
                .map(|(_, c)| embeddings[c * 20].0.clone())
                .collect(),
        )
    }

    fn parts(mix_ready: bool) -> EnsembleParts {
        let (labels, texts, embeddings) = toy();
        let (head, _) = IntentHead::train_full_batch(
            labels.clone(),
            &embeddings,
            0.0,
            &FullBatchConfig::default(),
        )
        .expect("train");
        let distance = Mahalanobis::fit(&embeddings, 3, 0.1).expect("fit");
        let train: Vec<Vec<f32>> = embeddings.iter().map(|(e, _)| e.clone()).collect();
        let neighbours = NearestNeighbours::fit(&train, 2).expect("fit");
        let embedded = IntentClassifier::train_examples(
            if mix_ready {
                labels
            } else {
                vec!["a".into(), "b".into(), "c".into()]
            },
            &texts,
            0.0,
            IntentConfig::default(),
        );
        EnsembleParts {
            head,
            distance,
            neighbours: Some(neighbours),
            embedded: Some(embedded),
        }
    }

    #[test]
    fn ensemble_takes_the_intent_from_the_mixed_probabilities() {
        let (_, texts, embeddings) = toy();
        let (calibration_texts, calibration) = calibration_set(&texts, &embeddings);
        // The words say refund (0), the embedding says tracking (1).
        let text = "refund my order please";
        let embedding = embeddings[25].0.clone();
        let scorer = |intent_mix: f32| {
            let config = EnsembleConfig {
                intent_mix,
                ..EnsembleConfig::default()
            };
            EnsembleScorer::calibrate(parts(true), &calibration_texts, &calibration, &config)
                .expect("calibrate")
        };
        assert_eq!(scorer(1.0).score(text, &embedding).expect("score").0, 1);
        assert_eq!(scorer(0.0).score(text, &embedding).expect("score").0, 0);

        // Far from every cluster and with no known word: lower confidence than a member.
        let s = scorer(0.5);
        let (_, member) = s
            .score("track my package", &embeddings[21].0)
            .expect("score");
        let (_, far) = s
            .score("quantum flux capacitor", &[-1.0, -1.0, -1.0, 0.0])
            .expect("score");
        assert!(far < member, "far {far} member {member}");
        let th = (far + member) / 2.0;
        assert_eq!(
            s.classify("quantum flux capacitor", &[-1.0, -1.0, -1.0, 0.0], th)
                .expect("classify"),
            None
        );
        assert_eq!(
            s.classify("track my package", &embeddings[21].0, th)
                .expect("classify"),
            Some(1)
        );
        let batch = s
            .score_batch(&calibration_texts, &calibration)
            .expect("batch");
        assert_eq!(batch.len(), calibration_texts.len());
        for ((t, e), b) in calibration_texts.iter().zip(&calibration).zip(&batch) {
            assert_eq!(s.score(t, e).expect("score"), *b);
        }
    }

    #[test]
    fn ensemble_rejects_mismatched_parts_and_inputs() {
        let (_, texts, embeddings) = toy();
        let (calibration_texts, calibration) = calibration_set(&texts, &embeddings);
        let config = EnsembleConfig::default();
        assert!(
            EnsembleScorer::calibrate(parts(false), &calibration_texts, &calibration, &config)
                .is_err(),
            "different labels"
        );
        assert!(EnsembleScorer::calibrate(
            parts(true),
            &calibration_texts[..3],
            &calibration,
            &config
        )
        .is_err());
        // Without the optional parts only the head and the distance are blended.
        let mut minimal = parts(true);
        minimal.neighbours = None;
        minimal.embedded = None;
        let s = EnsembleScorer::calibrate(minimal, &calibration_texts, &calibration, &config)
            .expect("calibrate");
        assert_eq!(s.score("anything", &embeddings[45].0).expect("score").0, 2);
    }
}
