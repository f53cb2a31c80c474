//! Gradient-boosted trees for binary classification: training through `forust-ml` (histogram
//! splits, missing values learned per split), then copied into this crate's [`Tree`]s, which
//! score and explain the model without the library.

use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix};
use serde::{Deserialize, Serialize};

use crate::error::PredictError;
use crate::shap;
use crate::tree::{Node, Tree};

/// Training settings. `train` cross-validates tree depths 1 to `max_depth` (and no trees at
/// all) on top of the linear part, each with up to `iterations` trees (see [`crate::select`]);
/// the other numbers follow general practice for small and medium tabular sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoostParams {
    /// Most trees to grow.
    pub iterations: usize,
    pub learning_rate: f32,
    pub max_depth: usize,
    /// Smallest hessian sum a leaf may hold.
    pub min_leaf_weight: f32,
    /// L2 penalty on leaf values.
    pub l2: f32,
    /// Histogram bins per feature.
    pub bins: u16,
    /// Stop once the held-out log loss has not improved for this many trees.
    pub early_stopping_rounds: usize,
    pub seed: u64,
    /// L2 penalty of the linear part the trees start from; `None`: no linear part, the
    /// trees start from the training log-odds (as every version-1 model file did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear_l2: Option<f64>,
}

impl Default for BoostParams {
    fn default() -> Self {
        BoostParams {
            iterations: 500,
            learning_rate: 0.05,
            max_depth: 3,
            min_leaf_weight: 1.0,
            l2: 1.0,
            bins: 256,
            early_stopping_rounds: 30,
            seed: 42,
            linear_l2: Some(1.0),
        }
    }
}

impl BoostParams {
    pub fn check(&self) -> Result<(), PredictError> {
        let bad = |m: &str| Err(PredictError::InvalidParameter(m.to_string()));
        if self.iterations == 0 || self.iterations > 100_000 {
            return bad("iterations must be between 1 and 100000");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad("learning rate must be in (0, 1]");
        }
        if self.max_depth == 0 || self.max_depth > 16 {
            return bad("max depth must be between 1 and 16");
        }
        if !(self.min_leaf_weight >= 0.0 && self.l2 >= 0.0) {
            return bad("min leaf weight and l2 must be non-negative");
        }
        if self.bins < 2 {
            return bad("bins must be at least 2");
        }
        if self.linear_l2.is_some_and(|l| !(l.is_finite() && l > 0.0)) {
            return bad("the linear part's l2 penalty must be positive");
        }
        Ok(())
    }
}

/// A fitted ensemble: raw margin (log-odds) = `base_score` + the sum of the trees' leaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Booster {
    pub base_score: f64,
    pub trees: Vec<Tree>,
}

impl Booster {
    pub fn margin(&self, row: &[f64]) -> f64 {
        self.trees
            .iter()
            .fold(self.base_score, |acc, t| acc + t.predict(row))
    }

    /// The margin when no feature is known: `base_score` plus each tree's expected value.
    pub fn expected_margin(&self) -> f64 {
        self.base_score + self.trees.iter().map(shap::expected_value).sum::<f64>()
    }

    /// Exact contributions of each feature to the margin of `row`; with
    /// [`Booster::expected_margin`] they sum to [`Booster::margin`].
    pub fn contributions(&self, row: &[f64]) -> Vec<f64> {
        let mut phi = vec![0.0; row.len()];
        for t in &self.trees {
            shap::add_contributions(t, row, &mut phi);
        }
        phi
    }
}

/// Data for one fit: column-major values and 0/1 labels.
pub struct FitData<'a> {
    pub columns: &'a [f64],
    pub rows: usize,
    pub labels: &'a [f64],
}

/// Trains on `train`, stopping early on `eval`.
pub fn fit(
    train: &FitData<'_>,
    eval: &FitData<'_>,
    n_features: usize,
    params: &BoostParams,
) -> Result<Booster, PredictError> {
    let gb = fit_forust(train, eval, n_features, params)?;
    from_forust(&gb, n_features)
}

fn fit_forust(
    train: &FitData<'_>,
    eval: &FitData<'_>,
    n_features: usize,
    params: &BoostParams,
) -> Result<GradientBooster, PredictError> {
    params.check()?;
    let mut gb = GradientBooster::default()
        .set_objective_type(ObjectiveType::LogLoss)
        .set_iterations(params.iterations)
        .set_learning_rate(params.learning_rate)
        .set_max_depth(params.max_depth)
        .set_min_leaf_weight(params.min_leaf_weight)
        .set_l2(params.l2)
        .set_nbins(params.bins)
        .set_seed(params.seed)
        .set_allow_missing_splits(true)
        .set_create_missing_branch(false)
        .set_initialize_base_score(true)
        .set_evaluation_metric(Some(forust_ml::metric::Metric::LogLoss))
        .set_early_stopping_rounds(Some(params.early_stopping_rounds));
    let x = Matrix::new(train.columns, train.rows, n_features);
    let w = vec![1.0; train.rows];
    let ex = Matrix::new(eval.columns, eval.rows, n_features);
    let ew = vec![1.0; eval.rows];
    gb.fit(&x, train.labels, &w, Some(vec![(ex, eval.labels, &ew)]))
        .map_err(|e| PredictError::Internal(e.to_string()))?;
    Ok(gb)
}

/// The trees forust would predict with (up to the best early-stopping iteration).
fn from_forust(gb: &GradientBooster, n_features: usize) -> Result<Booster, PredictError> {
    let keep = gb.prediction_iteration.unwrap_or(gb.trees.len());
    let trees = gb.trees[..keep]
        .iter()
        .map(|t| convert(t, n_features))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Booster {
        base_score: gb.base_score,
        trees,
    })
}

/// Copies a forust tree, renumbering the nodes reachable from the root in depth-first order.
fn convert(t: &forust_ml::tree::Tree, n_features: usize) -> Result<Tree, PredictError> {
    let src = &t.nodes;
    let mut out: Vec<Node> = Vec::new();
    // (source index, slot in `out` to fill)
    let mut stack = vec![(0usize, 0usize)];
    out.push(Node::Leaf {
        value: 0.0,
        cover: 0.0,
    });
    while let Some((s, slot)) = stack.pop() {
        let n = src
            .get(s)
            .ok_or_else(|| PredictError::Internal(format!("tree refers to missing node {s}")))?;
        if n.is_leaf {
            out[slot] = Node::Leaf {
                value: n.weight_value as f64,
                cover: n.hessian_sum as f64,
            };
            continue;
        }
        let child_slot = |c: usize, out: &mut Vec<Node>, stack: &mut Vec<(usize, usize)>| {
            out.push(Node::Leaf {
                value: 0.0,
                cover: 0.0,
            });
            stack.push((c, out.len() - 1));
            out.len() - 1
        };
        let left = child_slot(n.left_child, &mut out, &mut stack);
        let right = child_slot(n.right_child, &mut out, &mut stack);
        let missing = if n.missing_node == n.left_child {
            left
        } else if n.missing_node == n.right_child {
            right
        } else {
            child_slot(n.missing_node, &mut out, &mut stack)
        };
        out[slot] = Node::Split {
            feature: n.split_feature,
            threshold: n.split_value,
            left,
            right,
            missing,
            cover: n.hessian_sum as f64,
        };
    }
    Tree::new(out, n_features).map_err(PredictError::Internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use forust_ml::gradientbooster::ContributionsMethod;
    use rand::{Rng, SeedableRng};

    /// Rows with a signal in three of five features and a fifth of the values missing.
    fn synthetic(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let f = 5;
        let mut cols = vec![0.0; n * f];
        let mut y = vec![0.0; n];
        for r in 0..n {
            let mut row = [0.0; 5];
            for v in row.iter_mut() {
                *v = rng.gen_range(-2.0..2.0);
            }
            let z: f64 = 1.5 * row[0] - row[1] * row[1] + if row[2] > 0.5 { 1.0 } else { -0.5 };
            let p = 1.0 / (1.0 + (-z).exp());
            y[r] = (rng.gen::<f64>() < p) as u8 as f64;
            for (c, v) in row.iter().enumerate() {
                cols[c * n + r] = if rng.gen::<f64>() < 0.2 { f64::NAN } else { *v };
            }
        }
        (cols, y)
    }

    fn row(cols: &[f64], n: usize, r: usize) -> Vec<f64> {
        (0..cols.len() / n).map(|c| cols[c * n + r]).collect()
    }

    #[test]
    fn copied_trees_predict_what_forust_predicts() {
        let (n, m) = (600, 200);
        let (x, y) = synthetic(n, 1);
        let (ex, ey) = synthetic(m, 2);
        let params = BoostParams {
            iterations: 60,
            ..BoostParams::default()
        };
        let gb = fit_forust(
            &FitData {
                columns: &x,
                rows: n,
                labels: &y,
            },
            &FitData {
                columns: &ex,
                rows: m,
                labels: &ey,
            },
            5,
            &params,
        )
        .unwrap();
        let booster = from_forust(&gb, 5).unwrap();
        assert!(!booster.trees.is_empty());
        let theirs = gb.predict(&Matrix::new(&ex, m, 5), false);
        let contribs =
            gb.predict_contributions(&Matrix::new(&ex, m, 5), ContributionsMethod::Shapley, false);
        for r in 0..m {
            let rw = row(&ex, m, r);
            let ours = booster.margin(&rw);
            assert_eq!(ours, theirs[r], "row {r}");
            // Exactness: contributions and the expected margin add up to the margin.
            let phi = booster.contributions(&rw);
            let total = booster.expected_margin() + phi.iter().sum::<f64>();
            assert!((total - ours).abs() < 1e-9, "row {r}: {total} vs {ours}");
            // forust's own (f32) Shapley values agree to single precision.
            for f in 0..5 {
                let d = (phi[f] - contribs[r * 6 + f]).abs();
                assert!(
                    d < 1e-3,
                    "row {r} feature {f}: {} vs {}",
                    phi[f],
                    contribs[r * 6 + f]
                );
            }
        }
    }
}
