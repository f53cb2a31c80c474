//! How `train` chooses its model on the training rows alone: k-fold cross-validation over a
//! few candidate shapes, then one fit on every row with the winner.
//!
//! The model is a linear part (see [`crate::linear`]) plus boosted trees grown from its margin.
//! The candidates differ in how much the trees add: none (the linear part alone), or trees of
//! depth 1 (stumps: the model stays additive, each feature's effect may bend), 2, ... up to the
//! configured depth, with any number of trees up to the limit. Each fold fits the linear part
//! and boosts every depth on the other folds (stopping once its held-out log loss has not
//! improved for a while), recording its held-out ROC-AUC and log loss after every tree. The
//! candidate (depth, trees) with the best ROC-AUC averaged over the folds wins, the simpler
//! one on a tie: ranking is what a churn score is used for, and the log loss is settled
//! afterwards by calibration. Nothing here depends on the data set: the same procedure runs on
//! any table.
//!
//! Two things are shared by the folds rather than refitted in each: the bin cut points (from
//! the feature values of every training row, no labels) and the order of each categorical
//! feature's codes (by the positive rate over every training row, see `data::infer_schema`),
//! which makes the held-out scores of trees on categorical features slightly optimistic.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::boost::{boost, BinTree, Binned, GrowParams};
use crate::data::FeatureSpec;
use crate::gbt::{BoostParams, Booster};
use crate::linear::{self, Linear};

/// One candidate's cross-validated score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateScore {
    /// Tree depth; 0 is the linear part alone.
    pub depth: usize,
    /// The number of trees with the best mean held-out ROC-AUC at this depth.
    pub trees: usize,
    /// That ROC-AUC, averaged over the folds.
    pub roc_auc: f64,
    /// Held-out log loss per row at that number of trees (before calibration).
    pub log_loss: f64,
}

/// What cross-validation chose, kept in the model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub folds: usize,
    /// The chosen depth (0 when the trees did not help out of fold).
    pub depth: usize,
    pub trees: usize,
    /// Every depth tried, best number of trees each.
    pub candidates: Vec<CandidateScore>,
}

/// The inputs of a selection and of the final fit.
pub struct Problem<'a> {
    pub features: &'a [FeatureSpec],
    /// Row-major encoded values of every row of the table.
    pub values: &'a [f64],
    /// 0/1 labels, indexed like the table's rows.
    pub y: &'a [f64],
    /// The rows to train on.
    pub rows: &'a [usize],
    pub binned: &'a Binned,
}

impl Problem<'_> {
    fn nf(&self) -> usize {
        self.features.len()
    }

    fn row(&self, r: usize) -> &[f64] {
        &self.values[r * self.nf()..(r + 1) * self.nf()]
    }

    /// The starting margin of every row, from a linear part fitted on `fit` (or the fit rows'
    /// log-odds when there is no linear part).
    fn start(&self, fit: &[usize], params: &BoostParams) -> (Option<Linear>, f64, Vec<f64>) {
        let n = self.y.len();
        match params.linear_l2 {
            Some(l2) => {
                let terms = linear::design(self.features, self.values, fit);
                let lin = linear::fit(terms, self.values, self.nf(), self.y, fit, l2);
                let margin = (0..n).map(|r| lin.margin(self.row(r))).collect();
                (Some(lin), 0.0, margin)
            }
            None => {
                let pos: f64 = fit.iter().map(|&r| self.y[r]).sum();
                let rate = (pos / fit.len().max(1) as f64).clamp(1e-6, 1.0 - 1e-6);
                let base = (rate / (1.0 - rate)).ln();
                (None, base, vec![base; n])
            }
        }
    }
}

/// One fold's held-out rows with their starting margins, and the trees grown at each depth.
type FoldResult = (Vec<(usize, f64)>, Vec<Vec<BinTree>>);

fn grow_params(params: &BoostParams, depth: usize) -> GrowParams {
    GrowParams {
        max_depth: depth,
        learning_rate: params.learning_rate as f64,
        l2: params.l2 as f64,
        min_leaf_weight: params.min_leaf_weight as f64,
    }
}

/// Cross-validates the candidates on `p.rows` in `folds` stratified folds. Returns the choice
/// and every row's out-of-fold margin under it (in `p.rows` order), for calibration.
pub fn choose(p: &Problem<'_>, params: &BoostParams, folds: usize) -> (Selection, Vec<f64>) {
    let n = p.y.len();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(params.seed);
    let mut fold_of = vec![usize::MAX; n];
    for class in [1.0, 0.0] {
        let mut idx: Vec<usize> = p
            .rows
            .iter()
            .copied()
            .filter(|&r| p.y[r] == class)
            .collect();
        idx.shuffle(&mut rng);
        for (i, r) in idx.into_iter().enumerate() {
            fold_of[r] = i % folds;
        }
    }
    let depths = params.max_depth;
    let rounds = params.iterations;
    // Summed held-out log loss and ROC-AUC per depth (index depth - 1) after each number of
    // trees.
    let mut total = vec![vec![0.0; rounds + 1]; depths];
    let mut total_auc = vec![vec![0.0; rounds + 1]; depths];
    // Per fold: its rows with their starting margins, and the trees of each depth.
    let mut kept: Vec<FoldResult> = Vec::with_capacity(folds);
    for k in 0..folds {
        let (eval, fit): (Vec<usize>, Vec<usize>) = p.rows.iter().partition(|&&r| fold_of[r] == k);
        let (_, _, start) = p.start(&fit, params);
        let mut per_depth = Vec::with_capacity(depths);
        for d in 1..=depths {
            let mut margin = start.clone();
            let out = boost(
                p.binned,
                p.y,
                &fit,
                &eval,
                &mut margin,
                &grow_params(params, d),
                rounds,
                Some(params.early_stopping_rounds.max(1)),
            );
            // A fold that stopped early keeps its last loss for the trees it did not grow.
            let last = *out.eval_loss.last().expect("the loss before any tree");
            for (t, sum) in total[d - 1].iter_mut().enumerate() {
                *sum += out.eval_loss.get(t).copied().unwrap_or(last);
            }
            let last = *out.eval_auc.last().expect("the ROC-AUC before any tree");
            for (t, sum) in total_auc[d - 1].iter_mut().enumerate() {
                *sum += out.eval_auc.get(t).copied().unwrap_or(last);
            }
            per_depth.push(out.trees);
        }
        kept.push((eval.iter().map(|&r| (r, start[r])).collect(), per_depth));
    }
    let rows = p.rows.len().max(1) as f64;
    let kf = folds as f64;
    let mut candidates = vec![CandidateScore {
        depth: 0,
        trees: 0,
        roc_auc: total_auc[0][0] / kf,
        log_loss: total[0][0] / rows,
    }];
    for (d, aucs) in total_auc.iter().enumerate() {
        // The first number of trees reaching the best mean ROC-AUC (fewer trees on a tie).
        let (t, a) =
            aucs.iter()
                .enumerate()
                .skip(1)
                .fold((1, f64::NEG_INFINITY), |best, (t, &a)| {
                    if a > best.1 {
                        (t, a)
                    } else {
                        best
                    }
                });
        candidates.push(CandidateScore {
            depth: d + 1,
            trees: t,
            roc_auc: a / kf,
            log_loss: total[d][t] / rows,
        });
    }
    // The best ROC-AUC wins; on a tie the simpler candidate (listed first).
    let best = candidates
        .iter()
        .fold(
            &candidates[0],
            |b, c| if c.roc_auc > b.roc_auc { c } else { b },
        )
        .clone();
    let mut oof = vec![0.0; n];
    for (eval, per_depth) in &kept {
        for &(r, m) in eval {
            oof[r] = m;
            if best.depth > 0 {
                for t in per_depth[best.depth - 1].iter().take(best.trees) {
                    oof[r] += t.predict_binned(p.binned, r);
                }
            }
        }
    }
    let selection = Selection {
        folds,
        depth: best.depth,
        trees: best.trees,
        candidates,
    };
    (selection, p.rows.iter().map(|&r| oof[r]).collect())
}

/// Fits the chosen candidate on every row of `p.rows`.
pub fn fit_final(
    p: &Problem<'_>,
    params: &BoostParams,
    chosen: &Selection,
) -> (Option<Linear>, Booster) {
    let (lin, base, mut margin) = p.start(p.rows, params);
    let trees = if chosen.depth > 0 && chosen.trees > 0 {
        boost(
            p.binned,
            p.y,
            p.rows,
            &[],
            &mut margin,
            &grow_params(params, chosen.depth),
            chosen.trees,
            None,
        )
        .trees
        .into_iter()
        .map(|t| t.tree)
        .collect()
    } else {
        Vec::new()
    };
    (
        lin,
        Booster {
            base_score: base,
            trees,
        },
    )
}
