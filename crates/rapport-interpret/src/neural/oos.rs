//! Out-of-scope scoring on sentence embeddings: a softmax head trained to convergence by
//! full-batch L-BFGS ([`FullBatchConfig`], [`IntentHead::train_full_batch`]), a Mahalanobis
//! distance to the nearest class mean with one shared, shrunk covariance ([`Mahalanobis`]),
//! and [`OutOfScopeScorer`], which averages the head's best probability with the negated
//! distance after putting both on one scale ([`ScoreScale`], fitted on unlabelled
//! calibration embeddings such as a validation split).
//!
//! The softmax probability says how sure the head is between the known intents; the distance
//! says how far the text is from every intent it was trained on. A text unlike all of them
//! can still get a confident softmax (it lies on the far side of one class boundary), which
//! is what the distance catches. On CLINC150 (see `BENCHMARKS.md`) the average separates
//! in-scope from out-of-scope texts better than either alone.
//!
//! Everything here is plain CPU code: the two matrix products per L-BFGS step go through the
//! `gemm` kernels the encoder uses, the rest is loops.

use gemm::Parallelism;

use super::encoder::matmul;
use super::heads::{check_dim, features, intent_rows, IntentHead, SentimentHead};
use super::NeuralError;
use crate::linear::{BinaryLogistic, Softmax};

/// Settings of the full-batch trainer of a softmax head.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FullBatchConfig {
    /// L2 penalty `l2 / 2 * |W|^2` added to the mean cross-entropy (biases are not penalised).
    pub l2: f32,
    /// Upper bound on L-BFGS iterations (each costs one or a few passes over the data).
    pub max_iterations: usize,
    /// Stops when the largest gradient component falls below this.
    pub tolerance: f32,
}

impl Default for FullBatchConfig {
    fn default() -> Self {
        FullBatchConfig {
            l2: 1e-3,
            max_iterations: 400,
            tolerance: 1e-5,
        }
    }
}

/// What a full-batch training run did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FullBatchReport {
    /// Final objective (mean cross-entropy plus the L2 term).
    pub loss: f64,
    /// L-BFGS iterations run.
    pub iterations: usize,
}

fn parallelism() -> Parallelism {
    match std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) {
        n if n > 1 => Parallelism::Rayon(n),
        _ => Parallelism::None,
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimises `f` from `x` by L-BFGS (memory 10) with a backtracking (Armijo) line search.
/// `f(x, grad)` returns the objective and writes its gradient. Returns the final objective
/// and the iterations run; `x` holds the minimiser.
fn lbfgs<F>(mut f: F, x: &mut [f64], max_iterations: usize, tolerance: f64) -> (f64, usize)
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    const MEMORY: usize = 10;
    let n = x.len();
    let mut g = vec![0.0; n];
    let mut fx = f(x, &mut g);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> =
        std::collections::VecDeque::with_capacity(MEMORY);
    let mut d = vec![0.0; n];
    let mut x_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    let mut alphas = [0.0; MEMORY];
    for it in 0..max_iterations {
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) <= tolerance {
            return (fx, it);
        }
        // Two-loop recursion: d = -H g.
        d.copy_from_slice(&g);
        for (i, (s, y, rho)) in history.iter().enumerate().rev() {
            let a = rho * dot(s, &d);
            alphas[i] = a;
            d.iter_mut().zip(y).for_each(|(q, y)| *q -= a * y);
        }
        let gamma = match history.back() {
            Some((s, y, _)) => dot(s, y) / dot(y, y).max(f64::MIN_POSITIVE),
            // First step: unit length along the gradient.
            None => 1.0 / dot(&g, &g).sqrt().max(f64::MIN_POSITIVE),
        };
        d.iter_mut().for_each(|v| *v *= gamma);
        for (i, (s, y, rho)) in history.iter().enumerate() {
            let b = rho * dot(y, &d);
            let a = alphas[i];
            d.iter_mut().zip(s).for_each(|(r, s)| *r += s * (a - b));
        }
        d.iter_mut().for_each(|v| *v = -*v);
        let mut slope = dot(&d, &g);
        if slope >= 0.0 {
            // Not a descent direction (curvature lost to rounding): restart along -g.
            history.clear();
            let norm = dot(&g, &g).sqrt().max(f64::MIN_POSITIVE);
            d.iter_mut().zip(&g).for_each(|(d, g)| *d = -g / norm);
            slope = dot(&d, &g);
        }
        let mut step = 1.0;
        let f_new = loop {
            x_new
                .iter_mut()
                .zip(x.iter().zip(&d))
                .for_each(|(xn, (x, d))| *xn = x + step * d);
            let f_new = f(&x_new, &mut g_new);
            if f_new <= fx + 1e-4 * step * slope {
                break f_new;
            }
            step *= 0.5;
            if step < 1e-12 {
                // No progress possible at this precision.
                return (fx, it);
            }
        };
        let s: Vec<f64> = x_new.iter().zip(x.iter()).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            if history.len() == MEMORY {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        let decrease = (fx - f_new) / fx.abs().max(1.0);
        x.copy_from_slice(&x_new);
        g.copy_from_slice(&g_new);
        fx = f_new;
        if decrease < 1e-12 {
            return (fx, it + 1);
        }
    }
    (fx, max_iterations)
}

/// Mean cross-entropy of a softmax over dense rows plus `l2 / 2 * |W|^2`, with its gradient.
/// Parameters: `W` (`dim x classes`, row-major, i.e. feature-major as in [`Softmax`]), then
/// the `classes` biases.
struct SoftmaxObjective<'a> {
    x: &'a [f32],
    y: &'a [usize],
    dim: usize,
    classes: usize,
    l2: f64,
    w: Vec<f32>,
    logits: Vec<f32>,
    grad_w: Vec<f32>,
    par: Parallelism,
}

impl<'a> SoftmaxObjective<'a> {
    fn new(x: &'a [f32], y: &'a [usize], dim: usize, classes: usize, l2: f64) -> Self {
        SoftmaxObjective {
            x,
            y,
            dim,
            classes,
            l2,
            w: vec![0.0; dim * classes],
            logits: vec![0.0; y.len() * classes],
            grad_w: vec![0.0; dim * classes],
            par: parallelism(),
        }
    }

    fn eval(&mut self, params: &[f64], grad: &mut [f64]) -> f64 {
        let (d, c, n) = (self.dim, self.classes, self.y.len());
        let (pw, pb) = params.split_at(d * c);
        self.w.iter_mut().zip(pw).for_each(|(w, p)| *w = *p as f32);
        for row in self.logits.chunks_exact_mut(c) {
            row.iter_mut().zip(pb).for_each(|(l, b)| *l = *b as f32);
        }
        matmul(
            (n, c, d),
            self.x,
            false,
            &self.w,
            &mut self.logits,
            true,
            self.par,
        );
        // Logits become dLoss/dlogits = (softmax - onehot) / n.
        let inv_n = 1.0 / n.max(1) as f64;
        let mut loss = 0.0f64;
        let (gw, gb) = grad.split_at_mut(d * c);
        gb.fill(0.0);
        for (row, &y) in self.logits.chunks_exact_mut(c).zip(self.y) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let target = row[y];
            let mut sum = 0.0f64;
            for l in row.iter_mut() {
                *l = (*l - max).exp();
                sum += f64::from(*l);
            }
            loss += sum.ln() + f64::from(max) - f64::from(target);
            let scale = (inv_n / sum) as f32;
            for l in row.iter_mut() {
                *l *= scale;
            }
            row[y] -= inv_n as f32;
            gb.iter_mut()
                .zip(row.iter())
                .for_each(|(g, r)| *g += f64::from(*r));
        }
        matmul(
            (d, c, n),
            self.x,
            true,
            &self.logits,
            &mut self.grad_w,
            false,
            self.par,
        );
        let mut penalty = 0.0;
        for ((g, gw32), p) in gw.iter_mut().zip(&self.grad_w).zip(pw) {
            *g = f64::from(*gw32) + self.l2 * p;
            penalty += p * p;
        }
        loss * inv_n + 0.5 * self.l2 * penalty
    }
}

/// Fits the parameters of a softmax over dense rows (`x` is `y.len() x dim`, row-major) to
/// convergence by full-batch L-BFGS, from zero: `W` (`dim x classes`, feature-major), then
/// the `classes` biases.
fn fit_softmax(
    x: &[f32],
    y: &[usize],
    dim: usize,
    classes: usize,
    cfg: &FullBatchConfig,
) -> (Vec<f64>, FullBatchReport) {
    let mut params = vec![0.0f64; dim * classes + classes];
    let mut objective = SoftmaxObjective::new(x, y, dim, classes, f64::from(cfg.l2.max(0.0)));
    let (loss, iterations) = lbfgs(
        |p, g| objective.eval(p, g),
        &mut params,
        cfg.max_iterations,
        f64::from(cfg.tolerance),
    );
    (params, FullBatchReport { loss, iterations })
}

/// Trains a softmax over dense rows to convergence ([`fit_softmax`]).
fn train_softmax(
    x: &[f32],
    y: &[usize],
    dim: usize,
    classes: usize,
    cfg: &FullBatchConfig,
) -> (Softmax, FullBatchReport) {
    let (params, report) = fit_softmax(x, y, dim, classes, cfg);
    let weights = params[..dim * classes].iter().map(|&v| v as f32).collect();
    let bias = params[dim * classes..].iter().map(|&v| v as f32).collect();
    let model = Softmax::from_parts(classes, weights, bias).unwrap_or_else(|| {
        // Unreachable: the lengths are built to fit, and `classes > 0` is checked by callers.
        Softmax::train(&[], dim, classes, &crate::linear::SgdConfig::default())
    });
    (model, report)
}

impl SentimentHead {
    /// Like [`SentimentHead::train`], but fits the logistic regression to convergence by
    /// full-batch L-BFGS (deterministic, well under a second for a few thousand sentences)
    /// instead of a fixed number of SGD epochs. Fitted as a two-class softmax: the
    /// difference of its two classes is the logistic model, and `cfg.l2` on the two columns
    /// is `l2 / 2` on their difference.
    pub fn train_full_batch(
        data: &[(Vec<f32>, bool)],
        cfg: &FullBatchConfig,
    ) -> Result<(Self, FullBatchReport), NeuralError> {
        let dim = data
            .first()
            .map(|(e, _)| e.len())
            .ok_or_else(|| NeuralError::InvalidInput("no sentiment examples".into()))?;
        let mut x = Vec::with_capacity(data.len() * dim);
        let mut y = Vec::with_capacity(data.len());
        for (e, positive) in data {
            check_dim(e, dim)?;
            // The head's own feature scaling, so the weights serve `probability`.
            x.extend(features(e).into_iter().map(|(_, v)| v));
            y.push(usize::from(*positive));
        }
        let (params, report) = fit_softmax(&x, &y, dim, 2, cfg);
        let weights = (0..dim)
            .map(|f| (params[f * 2 + 1] - params[f * 2]) as f32)
            .collect();
        let bias = (params[dim * 2 + 1] - params[dim * 2]) as f32;
        Ok((
            SentimentHead::from_logistic(dim, BinaryLogistic { weights, bias }),
            report,
        ))
    }
}

impl IntentHead {
    /// Like [`IntentHead::train`], but trains the softmax to convergence by full-batch
    /// L-BFGS (deterministic; a few seconds to a minute for 15,000 texts and 150 intents)
    /// instead of a fixed number of SGD epochs. Returns the head and what the trainer did.
    pub fn train_full_batch(
        labels: Vec<String>,
        data: &[(Vec<f32>, usize)],
        threshold: f32,
        cfg: &FullBatchConfig,
    ) -> Result<(Self, FullBatchReport), NeuralError> {
        if labels.is_empty() {
            return Err(NeuralError::InvalidInput("no intent labels".into()));
        }
        let (dim, rows) = intent_rows(labels.len(), data)?;
        // The head's own feature scaling, so the weights serve `IntentHead::scores`.
        let mut x = Vec::with_capacity(rows.len() * dim);
        let mut y = Vec::with_capacity(rows.len());
        for (f, c) in rows {
            x.extend(f.into_iter().map(|(_, v)| v));
            y.push(c);
        }
        let (model, report) = train_softmax(&x, &y, dim, labels.len(), cfg);
        Ok((
            IntentHead::from_model(labels, dim, threshold, model),
            report,
        ))
    }
}

/// Squared Mahalanobis distance to class means under one shared covariance, shrunk towards
/// a multiple of the identity: `(1 - a) S + a (trace(S) / dim) I`.
///
/// Fitted with [`Mahalanobis::fit_relative`], the in-scope [`Mahalanobis::score`] is
/// relative (Ren et al. 2021, "A simple fix to Mahalanobis distance for improving near-OOD
/// detection"): the distance to the nearest class mean minus the distance to the mean of all
/// training embeddings under their overall covariance. Directions in which every sentence
/// varies (length, register, how a question is put) then count less than the directions that
/// tell the intents apart, which is what separates an unknown request that reads like a known
/// one.
#[derive(Debug, Clone, PartialEq)]
pub struct Mahalanobis {
    dim: usize,
    /// The one-class fit of all training embeddings that a relative score subtracts.
    background: Option<Box<Mahalanobis>>,
    /// Lower Cholesky factor `L` of the shrunk covariance (`dim x dim`, row-major).
    chol: Vec<f64>,
    /// `L^-1 mean` of every class (`classes x dim`, row-major).
    whitened_means: Vec<f64>,
    /// Squared norms of the whitened means.
    mean_norms: Vec<f64>,
}

impl Mahalanobis {
    /// Fits class means and the pooled within-class covariance of `(embedding, class)`
    /// pairs; every class below `classes` needs at least one example. `shrinkage` (0..=1)
    /// is the weight of the scaled identity.
    pub fn fit(
        data: &[(Vec<f32>, usize)],
        classes: usize,
        shrinkage: f32,
    ) -> Result<Self, NeuralError> {
        let dim = data
            .first()
            .map(|(e, _)| e.len())
            .ok_or_else(|| NeuralError::InvalidInput("no examples for the class means".into()))?;
        if dim == 0 || classes == 0 {
            return Err(NeuralError::InvalidInput(
                "empty embeddings or no classes".into(),
            ));
        }
        let mut sums = vec![0.0f64; classes * dim];
        let mut counts = vec![0usize; classes];
        for (e, c) in data {
            check_dim(e, dim)?;
            let row = sums.get_mut(c * dim..(c + 1) * dim).ok_or_else(|| {
                NeuralError::InvalidInput(format!("class {c} but only {classes} classes"))
            })?;
            row.iter_mut().zip(e).for_each(|(s, v)| *s += f64::from(*v));
            counts[*c] += 1;
        }
        if let Some(c) = counts.iter().position(|&n| n == 0) {
            return Err(NeuralError::InvalidInput(format!(
                "class {c} has no examples"
            )));
        }
        let means: Vec<f64> = sums
            .chunks_exact(dim)
            .zip(&counts)
            .flat_map(|(s, &n)| s.iter().map(move |v| v / n as f64))
            .collect();
        // Pooled covariance: centred rows, then C^T C / N through the matrix kernel.
        let centred: Vec<f32> = data
            .iter()
            .flat_map(|(e, c)| {
                let mean = &means[c * dim..(c + 1) * dim];
                e.iter().zip(mean).map(|(v, m)| (f64::from(*v) - m) as f32)
            })
            .collect();
        let mut cov32 = vec![0.0f32; dim * dim];
        let n = data.len();
        matmul(
            (dim, dim, n),
            &centred,
            true,
            &centred,
            &mut cov32,
            false,
            parallelism(),
        );
        let a = f64::from(shrinkage.clamp(0.0, 1.0));
        let mut cov: Vec<f64> = cov32.iter().map(|v| f64::from(*v) / n as f64).collect();
        let trace: f64 = (0..dim).map(|i| cov[i * dim + i]).sum();
        // A floor so that identical or too few examples still give a usable metric.
        let ridge = (a * trace / dim as f64).max(1e-9 * trace.max(1e-12));
        for (i, row) in cov.chunks_exact_mut(dim).enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v *= 1.0 - a;
                if i == j {
                    *v += ridge;
                }
            }
        }
        let chol = cholesky(&cov, dim).ok_or_else(|| {
            NeuralError::InvalidInput("the covariance is not positive definite".into())
        })?;
        let whitened_means: Vec<f64> = means
            .chunks_exact(dim)
            .flat_map(|m| forward_substitute(&chol, dim, m.iter().copied()))
            .collect();
        let mean_norms = whitened_means
            .chunks_exact(dim)
            .map(|m| dot(m, m))
            .collect();
        Ok(Mahalanobis {
            dim,
            background: None,
            chol,
            whitened_means,
            mean_norms,
        })
    }

    /// [`Mahalanobis::fit`], plus the background (one mean and the overall covariance of
    /// every example, shrunk alike) that makes [`Mahalanobis::score`] relative.
    pub fn fit_relative(
        data: &[(Vec<f32>, usize)],
        classes: usize,
        shrinkage: f32,
    ) -> Result<Self, NeuralError> {
        let mut fitted = Self::fit(data, classes, shrinkage)?;
        let pooled: Vec<(Vec<f32>, usize)> = data.iter().map(|(e, _)| (e.clone(), 0)).collect();
        fitted.background = Some(Box::new(Self::fit(&pooled, 1, shrinkage)?));
        Ok(fitted)
    }

    /// Whether [`Mahalanobis::score`] subtracts the background distance.
    pub fn is_relative(&self) -> bool {
        self.background.is_some()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.mean_norms.len()
    }

    /// Squared Mahalanobis distance of `embedding` to every class mean, in class order.
    pub fn distances(&self, embedding: &[f32]) -> Result<Vec<f32>, NeuralError> {
        check_dim(embedding, self.dim)?;
        let z = forward_substitute(
            &self.chol,
            self.dim,
            embedding.iter().map(|v| f64::from(*v)),
        );
        let zz = dot(&z, &z);
        Ok(self
            .whitened_means
            .chunks_exact(self.dim)
            .zip(&self.mean_norms)
            .map(|(m, mm)| (zz - 2.0 * dot(&z, m) + mm).max(0.0) as f32)
            .collect())
    }

    /// The nearest class and its squared distance.
    pub fn nearest(&self, embedding: &[f32]) -> Result<(usize, f32), NeuralError> {
        Ok(self
            .distances(embedding)?
            .into_iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, f32::INFINITY)))
    }

    /// In-scope score: minus the squared distance to the nearest class mean, less the
    /// squared background distance when the fit is relative (higher is more in scope).
    pub fn score(&self, embedding: &[f32]) -> Result<f32, NeuralError> {
        let nearest = self.nearest(embedding)?.1;
        Ok(match &self.background {
            Some(b) => b.distances(embedding)?[0] - nearest,
            None => -nearest,
        })
    }
}

/// Lower Cholesky factor of a symmetric `dim x dim` matrix; `None` unless positive definite.
fn cholesky(a: &[f64], dim: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0f64; dim * dim];
    for i in 0..dim {
        for j in 0..=i {
            let s: f64 = a[i * dim + j] - dot(&l[i * dim..i * dim + j], &l[j * dim..j * dim + j]);
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * dim + i] = s.sqrt();
            } else {
                l[i * dim + j] = s / l[j * dim + j];
            }
        }
    }
    Some(l)
}

/// Solves `L z = b` for lower-triangular `L`.
fn forward_substitute(l: &[f64], dim: usize, b: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut z: Vec<f64> = b.collect();
    for i in 0..dim {
        let s = z[i] - dot(&l[i * dim..i * dim + i], &z[..i]);
        z[i] = s / l[i * dim + i];
    }
    z
}

/// How [`ScoreScale`] maps a raw score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleKind {
    /// `(s - mean) / standard deviation` of the calibration scores.
    ZScore,
    /// The fraction of calibration scores at or below `s` (in `[0, 1]`).
    Rank,
}

/// A monotone map of one raw score onto a scale shared with another score, fitted on
/// calibration scores (no labels needed).
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreScale {
    /// Standardised by the calibration mean and standard deviation.
    ZScore {
        /// Calibration mean.
        mean: f32,
        /// Calibration standard deviation (at least a tiny positive floor).
        std: f32,
    },
    /// Empirical distribution function of the calibration scores (sorted).
    Rank(Vec<f32>),
}

impl ScoreScale {
    /// Fits a scale of `kind` on calibration scores; errors on an empty or non-finite set.
    pub fn fit(kind: ScaleKind, scores: &[f32]) -> Result<Self, NeuralError> {
        if scores.is_empty() || scores.iter().any(|s| !s.is_finite()) {
            return Err(NeuralError::InvalidInput(
                "calibration scores must be finite and not empty".into(),
            ));
        }
        Ok(match kind {
            ScaleKind::ZScore => {
                let n = scores.len() as f64;
                let mean = scores.iter().map(|&s| f64::from(s)).sum::<f64>() / n;
                let var = scores
                    .iter()
                    .map(|&s| (f64::from(s) - mean).powi(2))
                    .sum::<f64>()
                    / n;
                ScoreScale::ZScore {
                    mean: mean as f32,
                    std: (var.sqrt() as f32).max(1e-12),
                }
            }
            ScaleKind::Rank => {
                let mut sorted = scores.to_vec();
                sorted.sort_by(f32::total_cmp);
                ScoreScale::Rank(sorted)
            }
        })
    }

    /// The score on the shared scale.
    pub fn apply(&self, score: f32) -> f32 {
        match self {
            ScoreScale::ZScore { mean, std } => (score - mean) / std,
            ScoreScale::Rank(sorted) => {
                sorted.partition_point(|&v| v <= score) as f32 / sorted.len().max(1) as f32
            }
        }
    }
}

/// Intent with an in-scope confidence that averages the softmax head's best probability and
/// the Mahalanobis score, each on its calibrated scale:
/// `weight * scale_p(p_max) + (1 - weight) * scale_d(-min distance)`. The intent is the head's
/// best; a caller answers out of scope below a threshold on the confidence, chosen on
/// validation data.
#[derive(Debug, Clone, PartialEq)]
pub struct OutOfScopeScorer {
    head: IntentHead,
    distance: Mahalanobis,
    probability_scale: ScoreScale,
    distance_scale: ScoreScale,
    weight: f32,
}

impl OutOfScopeScorer {
    /// Combines a head and a distance, fitting both scales of `kind` on the (unlabelled)
    /// `calibration` embeddings. `weight` (0..=1) is the share of the softmax probability.
    pub fn calibrate(
        head: IntentHead,
        distance: Mahalanobis,
        calibration: &[Vec<f32>],
        kind: ScaleKind,
        weight: f32,
    ) -> Result<Self, NeuralError> {
        let mut probabilities = Vec::with_capacity(calibration.len());
        let mut distances = Vec::with_capacity(calibration.len());
        for e in calibration {
            probabilities.push(head.best(e)?.1);
            distances.push(distance.score(e)?);
        }
        Ok(OutOfScopeScorer {
            probability_scale: ScoreScale::fit(kind, &probabilities)?,
            distance_scale: ScoreScale::fit(kind, &distances)?,
            head,
            distance,
            weight: weight.clamp(0.0, 1.0),
        })
    }

    /// The softmax head.
    pub fn head(&self) -> &IntentHead {
        &self.head
    }

    /// The head's best class and the combined in-scope confidence (higher is more in scope).
    pub fn score(&self, embedding: &[f32]) -> Result<(usize, f32), NeuralError> {
        let (class, p) = self.head.best(embedding)?;
        let d = self.distance.score(embedding)?;
        let confidence = self.weight * self.probability_scale.apply(p)
            + (1.0 - self.weight) * self.distance_scale.apply(d);
        Ok((class, confidence))
    }

    /// The intent of `embedding`, or `None` (out of scope) when the confidence is below
    /// `threshold`.
    pub fn classify(
        &self,
        embedding: &[f32],
        threshold: f32,
    ) -> Result<Option<usize>, NeuralError> {
        let (class, confidence) = self.score(embedding)?;
        Ok((confidence >= threshold).then_some(class))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_matmul(m: usize, n: usize, k: usize, a: &[f32], a_t: bool, b: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for l in 0..k {
                    let av = if a_t { a[l * m + i] } else { a[i * k + l] };
                    out[i * n + j] += av * b[l * n + j];
                }
            }
        }
        out
    }

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((*seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    }

    #[test]
    fn matmul_matches_naive_product_plain_and_transposed() {
        let mut seed = 7;
        let (m, n, k) = (5, 4, 3);
        let a: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed)).collect();
        let b: Vec<f32> = (0..k * n).map(|_| lcg(&mut seed)).collect();
        for a_t in [false, true] {
            let want = naive_matmul(m, n, k, &a, a_t, &b);
            let mut got = vec![1.0; m * n];
            matmul((m, n, k), &a, a_t, &b, &mut got, false, Parallelism::None);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{a_t}: {got:?} vs {want:?}");
            }
            let mut acc = vec![1.0; m * n];
            matmul((m, n, k), &a, a_t, &b, &mut acc, true, Parallelism::None);
            for (g, w) in acc.iter().zip(&want) {
                assert!((g - (w + 1.0)).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn softmax_gradient_matches_finite_differences() {
        let mut seed = 3;
        let (n, d, c) = (7, 3, 4);
        let x: Vec<f32> = (0..n * d).map(|_| lcg(&mut seed) * 2.0).collect();
        let y: Vec<usize> = (0..n).map(|i| i % c).collect();
        let params: Vec<f64> = (0..d * c + c).map(|_| f64::from(lcg(&mut seed))).collect();
        let mut obj = SoftmaxObjective::new(&x, &y, d, c, 0.3);
        let mut grad = vec![0.0; params.len()];
        let f0 = obj.eval(&params, &mut grad);
        assert!(f0.is_finite() && f0 > 0.0);
        let mut scratch = vec![0.0; params.len()];
        for i in 0..params.len() {
            let h = 1e-3;
            let mut p = params.clone();
            p[i] += h;
            let up = obj.eval(&p, &mut scratch);
            p[i] -= 2.0 * h;
            let down = obj.eval(&p, &mut scratch);
            let numeric = (up - down) / (2.0 * h);
            assert!(
                (numeric - grad[i]).abs() < 1e-3,
                "parameter {i}: analytic {} numeric {numeric}",
                grad[i]
            );
        }
    }

    #[test]
    fn lbfgs_minimises_a_quadratic() {
        // f = sum_i (i + 1) (x_i - i)^2, minimum at x_i = i.
        let mut x = vec![5.0f64; 6];
        let (fx, it) = lbfgs(
            |p, g| {
                let mut f = 0.0;
                for (i, (v, gi)) in p.iter().zip(g.iter_mut()).enumerate() {
                    let w = (i + 1) as f64;
                    f += w * (v - i as f64).powi(2);
                    *gi = 2.0 * w * (v - i as f64);
                }
                f
            },
            &mut x,
            200,
            1e-9,
        );
        assert!(fx < 1e-12, "{fx} after {it}");
        for (i, v) in x.iter().enumerate() {
            assert!((v - i as f64).abs() < 1e-5, "{x:?}");
        }
    }

    /// Three Gaussian-ish clusters in 4 dimensions, spread mostly along dimension 3.
    fn clusters(per_class: usize) -> Vec<(Vec<f32>, usize)> {
        let mut seed = 11;
        let mut out = Vec::new();
        for c in 0..3 {
            for _ in 0..per_class {
                let mut e = vec![0.0f32; 4];
                e[c] = 1.0;
                for (j, v) in e.iter_mut().enumerate() {
                    let spread = if j == 3 { 1.0 } else { 0.1 };
                    *v += spread * lcg(&mut seed);
                }
                out.push((e, c));
            }
        }
        out
    }

    #[test]
    fn full_batch_head_converges_and_separates() {
        let data = clusters(30);
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let cfg = FullBatchConfig {
            l2: 1e-3,
            ..FullBatchConfig::default()
        };
        let (head, report) =
            IntentHead::train_full_batch(labels.clone(), &data, 0.0, &cfg).expect("train");
        assert!(report.loss < 0.2, "{report:?}");
        for (e, c) in &data {
            assert_eq!(head.best(e).expect("best").0, *c);
        }
        // A stronger penalty leaves a higher loss and less confident probabilities.
        let strong = FullBatchConfig { l2: 1.0, ..cfg };
        let (soft, soft_report) =
            IntentHead::train_full_batch(labels.clone(), &data, 0.0, &strong).expect("train");
        assert!(soft_report.loss > report.loss);
        assert!(soft.best(&data[0].0).expect("best").1 < head.best(&data[0].0).expect("best").1);
        assert!(IntentHead::train_full_batch(labels, &[(vec![1.0], 5)], 0.0, &cfg).is_err());
    }

    #[test]
    fn full_batch_sentiment_head_is_the_two_class_softmax() {
        let pairs: Vec<(Vec<f32>, usize)> =
            clusters(30).into_iter().filter(|(_, c)| *c < 2).collect();
        let data: Vec<(Vec<f32>, bool)> = pairs.iter().map(|(e, c)| (e.clone(), *c == 1)).collect();
        let cfg = FullBatchConfig {
            l2: 1e-2,
            ..FullBatchConfig::default()
        };
        let (head, report) = SentimentHead::train_full_batch(&data, &cfg).expect("train");
        let labels: Vec<String> = ["negative", "positive"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (softmax, softmax_report) =
            IntentHead::train_full_batch(labels, &pairs, 0.0, &cfg).expect("train");
        assert_eq!(report, softmax_report);
        for (e, positive) in &data {
            let p = head.probability(e).expect("p");
            let want = softmax.scores(e).expect("scores")[1];
            assert!((p - want).abs() < 1e-5, "{p} vs {want}");
            assert_eq!(p >= 0.5, *positive);
        }
        assert!(SentimentHead::train_full_batch(&[], &cfg).is_err());
        assert!(SentimentHead::train_full_batch(
            &[(vec![1.0], true), (vec![1.0, 2.0], false)],
            &cfg
        )
        .is_err());
    }

    /// `(x - m)^T S^-1 (x - m)` by Gaussian elimination, as an oracle.
    fn naive_distance(cov: &[Vec<f64>], x: &[f64]) -> f64 {
        let d = x.len();
        let mut a: Vec<Vec<f64>> = cov
            .iter()
            .zip(x)
            .map(|(row, b)| row.iter().copied().chain([*b]).collect())
            .collect();
        for i in 0..d {
            let p = a[i][i];
            for j in (i + 1)..d {
                let f = a[j][i] / p;
                let pivot = a[i].clone();
                a[j].iter_mut().zip(&pivot).for_each(|(v, pv)| *v -= f * pv);
            }
        }
        let mut sol = vec![0.0; d];
        for i in (0..d).rev() {
            let s: f64 = (i + 1..d).map(|j| a[i][j] * sol[j]).sum();
            sol[i] = (a[i][d] - s) / a[i][i];
        }
        x.iter().zip(&sol).map(|(a, b)| a * b).sum()
    }

    #[test]
    fn mahalanobis_matches_an_oracle_and_weighs_tight_directions() {
        let data = clusters(40);
        let shrinkage = 0.2f32;
        let m = Mahalanobis::fit(&data, 3, shrinkage).expect("fit");
        assert_eq!(m.classes(), 3);
        // Oracle: class means, pooled covariance, shrinkage, then a direct solve.
        let d = 4;
        let mut means = vec![vec![0.0f64; d]; 3];
        let mut counts = [0.0f64; 3];
        for (e, c) in &data {
            counts[*c] += 1.0;
            means[*c]
                .iter_mut()
                .zip(e)
                .for_each(|(s, v)| *s += f64::from(*v));
        }
        for (mean, n) in means.iter_mut().zip(counts) {
            mean.iter_mut().for_each(|v| *v /= n);
        }
        let mut cov = vec![vec![0.0f64; d]; d];
        for (e, c) in &data {
            for i in 0..d {
                for j in 0..d {
                    cov[i][j] +=
                        (f64::from(e[i]) - means[*c][i]) * (f64::from(e[j]) - means[*c][j]);
                }
            }
        }
        let n = data.len() as f64;
        let trace: f64 = (0..d).map(|i| cov[i][i] / n).sum();
        for (i, row) in cov.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = *v / n * (1.0 - f64::from(shrinkage));
                if i == j {
                    *v += f64::from(shrinkage) * trace / d as f64;
                }
            }
        }
        let q = [0.3f32, -0.2, 0.9, 0.5];
        let got = m.distances(&q).expect("distances");
        for (c, mean) in means.iter().enumerate() {
            let diff: Vec<f64> = q.iter().zip(mean).map(|(a, b)| f64::from(*a) - b).collect();
            let want = naive_distance(&cov, &diff);
            assert!(
                (f64::from(got[c]) - want).abs() < 1e-3 * want.max(1.0),
                "class {c}: {} vs {want}",
                got[c]
            );
        }
        assert_eq!(m.nearest(&q).expect("nearest").0, 2);
        // The same Euclidean step counts for more along a tight dimension (0) than along
        // the loose one (3).
        let mut tight = means[1].iter().map(|&v| v as f32).collect::<Vec<_>>();
        let mut loose = tight.clone();
        tight[0] += 0.3;
        loose[3] += 0.3;
        assert!(m.distances(&tight).expect("d")[1] > 3.0 * m.distances(&loose).expect("d")[1]);
        assert!(m.distances(&[1.0]).is_err());
        assert!(
            Mahalanobis::fit(&data, 4, 0.1).is_err(),
            "class 3 has no examples"
        );
    }

    #[test]
    fn relative_score_subtracts_the_background_distance() {
        let data = clusters(40);
        let plain = Mahalanobis::fit(&data, 3, 0.2).expect("fit");
        let relative = Mahalanobis::fit_relative(&data, 3, 0.2).expect("fit");
        assert!(!plain.is_relative() && relative.is_relative());
        let pooled: Vec<(Vec<f32>, usize)> = data.iter().map(|(e, _)| (e.clone(), 0)).collect();
        let background = Mahalanobis::fit(&pooled, 1, 0.2).expect("fit");
        for q in [
            [0.3f32, -0.2, 0.9, 0.5],
            [1.0, 0.0, 0.0, 0.0],
            [4.0, 4.0, -3.0, 2.0],
        ] {
            // The classes and the nearest one are the plain fit's.
            assert_eq!(
                relative.distances(&q).expect("d"),
                plain.distances(&q).expect("d")
            );
            let (_, nearest) = plain.nearest(&q).expect("nearest");
            assert_eq!(plain.score(&q).expect("score"), -nearest);
            let want = background.distances(&q).expect("d")[0] - nearest;
            let got = relative.score(&q).expect("score");
            assert!(
                (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                "{got} vs {want}"
            );
        }
        // A class member scores above a point between two classes and above one far from all.
        let member = relative.score(&[1.0, 0.0, 0.0, 0.0]).expect("score");
        assert!(member > relative.score(&[0.5, 0.5, 0.0, 0.0]).expect("score"));
        assert!(member > relative.score(&[4.0, 4.0, -3.0, 2.0]).expect("score"));
    }

    #[test]
    fn scales_are_monotone_and_fitted() {
        let s = [1.0f32, 2.0, 3.0, 4.0];
        let z = ScoreScale::fit(ScaleKind::ZScore, &s).expect("z");
        assert!(z.apply(2.5).abs() < 1e-6);
        assert!((z.apply(2.5 + 1.118_034) - 1.0).abs() < 1e-4);
        let r = ScoreScale::fit(ScaleKind::Rank, &[3.0, 1.0, 4.0, 2.0]).expect("rank");
        assert_eq!(r.apply(0.0), 0.0);
        assert_eq!(r.apply(2.0), 0.5);
        assert_eq!(r.apply(10.0), 1.0);
        for scale in [&z, &r] {
            let mut last = f32::NEG_INFINITY;
            for i in -20..20 {
                let v = scale.apply(i as f32 * 0.3);
                assert!(v >= last);
                last = v;
            }
        }
        assert!(ScoreScale::fit(ScaleKind::Rank, &[]).is_err());
        assert!(ScoreScale::fit(ScaleKind::ZScore, &[f32::NAN]).is_err());
    }

    #[test]
    fn scorer_ranks_far_texts_below_class_members() {
        let data = clusters(30);
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let (head, _) =
            IntentHead::train_full_batch(labels, &data, 0.0, &FullBatchConfig::default())
                .expect("train");
        let distance = Mahalanobis::fit(&data, 3, 0.1).expect("fit");
        let calibration: Vec<Vec<f32>> = data.iter().map(|(e, _)| e.clone()).collect();
        // Far along class 0's own direction: the softmax is sure, the distance is not.
        let far = vec![6.0f32, 0.0, 0.0, 0.0];
        let member = data[0].0.clone();
        for kind in [ScaleKind::ZScore, ScaleKind::Rank] {
            let scorer = OutOfScopeScorer::calibrate(
                head.clone(),
                distance.clone(),
                &calibration,
                kind,
                0.5,
            )
            .expect("calibrate");
            let (c_far, s_far) = scorer.score(&far).expect("score");
            let (c_member, s_member) = scorer.score(&member).expect("score");
            assert_eq!((c_far, c_member), (0, 0));
            assert!(s_far < s_member, "{kind:?}: far {s_far} member {s_member}");
            let th = (s_far + s_member) / 2.0;
            assert_eq!(scorer.classify(&far, th).expect("classify"), None);
            assert_eq!(scorer.classify(&member, th).expect("classify"), Some(0));
            // Softmax alone (weight 1) would rank the far text at least as high.
            let softmax_only = OutOfScopeScorer::calibrate(
                head.clone(),
                distance.clone(),
                &calibration,
                kind,
                1.0,
            )
            .expect("calibrate");
            assert!(
                softmax_only.score(&far).expect("score").1
                    >= softmax_only.score(&member).expect("score").1 - 1e-6
            );
        }
    }
}
