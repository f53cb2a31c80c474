//! The additive part of the classifier: a logistic model over simple per-feature terms
//! (standardised numbers, one indicator per category, an indicator for a missing value),
//! fitted with an L2 penalty by Newton's method.
//!
//! Every term reads one feature only, so a prediction splits exactly into per-feature
//! contributions: term `t` of feature `j` adds `w_t * (t(x_j) - mean_t)`, where `mean_t` is
//! the term's average over the training rows, and the base is `intercept + sum_t w_t * mean_t`.
//! The base plus the contributions equals the margin (up to rounding).

use serde::{Deserialize, Serialize};

use crate::calibrate::sigmoid;
use crate::data::{FeatureKind, FeatureSpec};

/// Most categories of one feature that get their own indicator (the most frequent in
/// training); the others share the reference level (every indicator zero).
pub const MAX_CATEGORY_TERMS: usize = 50;

/// What a term computes from its feature's encoded value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "term", rename_all = "snake_case")]
pub enum TermKind {
    /// `(x - center) / scale`; a missing value counts as `center` (so 0).
    Value { center: f64, scale: f64 },
    /// 1 when the value is this category's code, else 0 (also 0 when missing).
    Category { code: f64 },
    /// 1 when the value is missing, else 0.
    Missing,
}

/// One column of the linear model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    pub feature: usize,
    #[serde(flatten)]
    pub kind: TermKind,
    pub weight: f64,
    /// The term's mean over the training rows.
    pub mean: f64,
}

impl Term {
    pub fn eval(&self, row: &[f64]) -> f64 {
        let x = row[self.feature];
        match self.kind {
            TermKind::Value { center, scale } => {
                if x.is_nan() {
                    0.0
                } else {
                    (x - center) / scale
                }
            }
            TermKind::Category { code } => (x == code) as u8 as f64,
            TermKind::Missing => x.is_nan() as u8 as f64,
        }
    }
}

/// A fitted linear part: margin = `intercept` + sum of `weight * term(x)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    pub intercept: f64,
    /// The L2 penalty it was fitted with (on the weights, not the intercept).
    pub l2: f64,
    pub terms: Vec<Term>,
}

impl Linear {
    pub fn margin(&self, row: &[f64]) -> f64 {
        self.terms
            .iter()
            .fold(self.intercept, |acc, t| acc + t.weight * t.eval(row))
    }

    /// The margin of a row whose every term is at its training mean.
    pub fn expected_margin(&self) -> f64 {
        self.terms
            .iter()
            .fold(self.intercept, |acc, t| acc + t.weight * t.mean)
    }

    /// Adds each feature's exact contribution for `row` into `phi`.
    pub fn add_contributions(&self, row: &[f64], phi: &mut [f64]) {
        for t in &self.terms {
            phi[t.feature] += t.weight * (t.eval(row) - t.mean);
        }
    }

    /// Largest feature index a term reads, if any.
    pub fn max_feature(&self) -> Option<usize> {
        self.terms.iter().map(|t| t.feature).max()
    }

    /// Checks what a model file may not contain: non-finite numbers, a zero scale.
    pub fn check(&self, n_features: usize) -> Result<(), String> {
        if !self.intercept.is_finite() {
            return Err("the linear part's intercept is not finite".into());
        }
        for (i, t) in self.terms.iter().enumerate() {
            if t.feature >= n_features {
                return Err(format!(
                    "linear term {i} reads a feature the schema does not list"
                ));
            }
            let scale_ok = match t.kind {
                TermKind::Value { center, scale } => {
                    center.is_finite() && scale.is_finite() && scale > 0.0
                }
                TermKind::Category { code } => code.is_finite(),
                TermKind::Missing => true,
            };
            if !(scale_ok && t.weight.is_finite() && t.mean.is_finite()) {
                return Err(format!("linear term {i} has a non-finite or zero number"));
            }
        }
        Ok(())
    }
}

/// The terms of a feature schema, laid out from the rows that fit the model (row-major encoded
/// values, `n_features` per row): weights zero, means filled in. A numeric feature that is
/// constant in those rows gets no value term.
pub fn design(features: &[FeatureSpec], values: &[f64], rows: &[usize]) -> Vec<Term> {
    let nf = features.len();
    let n = rows.len().max(1) as f64;
    let mut terms = Vec::new();
    for (f, spec) in features.iter().enumerate() {
        let col = || rows.iter().map(|&r| values[r * nf + f]);
        let missing = col().filter(|x| x.is_nan()).count();
        match &spec.kind {
            FeatureKind::Numeric => {
                let present: Vec<f64> = col().filter(|x| !x.is_nan()).collect();
                if present.len() >= 2 {
                    let m = present.iter().sum::<f64>() / present.len() as f64;
                    let var = present.iter().map(|x| (x - m) * (x - m)).sum::<f64>()
                        / present.len() as f64;
                    let sd = var.sqrt();
                    if sd > 1e-12 * m.abs().max(1.0) {
                        terms.push(Term {
                            feature: f,
                            kind: TermKind::Value {
                                center: m,
                                scale: sd,
                            },
                            weight: 0.0,
                            mean: 0.0,
                        });
                    }
                }
            }
            FeatureKind::Categorical { categories } => {
                let mut counts = vec![0usize; categories.len()];
                for x in col() {
                    if !x.is_nan() {
                        if let Some(c) = counts.get_mut(x as usize) {
                            *c += 1;
                        }
                    }
                }
                let mut seen: Vec<usize> =
                    (0..categories.len()).filter(|&c| counts[c] > 0).collect();
                seen.sort_by(|a, b| counts[*b].cmp(&counts[*a]).then(a.cmp(b)));
                seen.truncate(MAX_CATEGORY_TERMS);
                seen.sort_unstable();
                // With every category present and no missing values, one indicator is
                // implied by the others; the penalty keeps the fit unique anyway, and
                // keeping all of them treats the categories alike.
                for c in seen {
                    terms.push(Term {
                        feature: f,
                        kind: TermKind::Category { code: c as f64 },
                        weight: 0.0,
                        mean: 0.0,
                    });
                }
            }
        }
        if missing > 0 && missing < rows.len() {
            terms.push(Term {
                feature: f,
                kind: TermKind::Missing,
                weight: 0.0,
                mean: 0.0,
            });
        }
    }
    for t in terms.iter_mut() {
        t.mean = rows
            .iter()
            .map(|&r| t.eval(&values[r * nf..(r + 1) * nf]))
            .sum::<f64>()
            / n;
    }
    terms
}

/// Fits the weights of `terms` and the intercept on `rows` (row-major `values`, labels `y`
/// indexed by row), minimising the summed log loss plus `l2 / 2` times the squared weights.
pub fn fit(
    terms: Vec<Term>,
    values: &[f64],
    nf: usize,
    y: &[f64],
    rows: &[usize],
    l2: f64,
) -> Linear {
    let p = terms.len() + 1; // the intercept is the last coefficient
    let n = rows.len();
    // Dense design matrix, row-major, with a trailing 1 for the intercept.
    let mut x = vec![0.0; n * p];
    for (i, &r) in rows.iter().enumerate() {
        let row = &values[r * nf..(r + 1) * nf];
        for (k, t) in terms.iter().enumerate() {
            x[i * p + k] = t.eval(row);
        }
        x[i * p + p - 1] = 1.0;
    }
    let yr: Vec<f64> = rows.iter().map(|&r| y[r]).collect();
    let objective = |beta: &[f64]| -> f64 {
        let mut s = 0.0;
        for i in 0..n {
            let z: f64 = x[i * p..(i + 1) * p]
                .iter()
                .zip(beta)
                .map(|(a, b)| a * b)
                .sum();
            s += softplus(z) - yr[i] * z;
        }
        s + 0.5 * l2 * beta[..p - 1].iter().map(|b| b * b).sum::<f64>()
    };
    let mut beta = vec![0.0; p];
    let pos = yr.iter().sum::<f64>();
    if n > 0 {
        let rate = ((pos + 0.5) / (n as f64 + 1.0)).clamp(1e-6, 1.0 - 1e-6);
        beta[p - 1] = (rate / (1.0 - rate)).ln();
    }
    let mut f = objective(&beta);
    let mut grad = vec![0.0; p];
    let mut hess = vec![0.0; p * p];
    for _ in 0..100 {
        grad.iter_mut().for_each(|g| *g = 0.0);
        hess.iter_mut().for_each(|h| *h = 0.0);
        for i in 0..n {
            let xi = &x[i * p..(i + 1) * p];
            let z: f64 = xi.iter().zip(&beta).map(|(a, b)| a * b).sum();
            let mu = sigmoid(z);
            let w = (mu * (1.0 - mu)).max(1e-12);
            let d = mu - yr[i];
            for a in 0..p {
                if xi[a] == 0.0 {
                    continue;
                }
                grad[a] += d * xi[a];
                let wa = w * xi[a];
                for b in a..p {
                    hess[a * p + b] += wa * xi[b];
                }
            }
        }
        for a in 0..p {
            for b in a..p {
                hess[b * p + a] = hess[a * p + b];
            }
        }
        for k in 0..p - 1 {
            grad[k] += l2 * beta[k];
            hess[k * p + k] += l2;
        }
        hess[(p - 1) * p + p - 1] += 1e-9;
        let Some(step) = solve_spd(&hess, &grad, p) else {
            break;
        };
        let slope: f64 = -grad.iter().zip(&step).map(|(g, s)| g * s).sum::<f64>();
        let mut t = 1.0;
        let mut moved = false;
        while t > 1e-10 {
            let cand: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b - t * s).collect();
            let nf_ = objective(&cand);
            if nf_ <= f + 1e-4 * t * slope {
                beta = cand;
                moved = f - nf_ > 1e-12 * f.abs().max(1.0);
                f = nf_;
                break;
            }
            t /= 2.0;
        }
        let size = step.iter().fold(0.0f64, |m, s| m.max(s.abs())) * t;
        if !moved || size < 1e-9 {
            break;
        }
    }
    let mut terms = terms;
    for (t, b) in terms.iter_mut().zip(&beta) {
        t.weight = *b;
    }
    Linear {
        intercept: beta[p - 1],
        l2,
        terms,
    }
}

fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// Solves `a x = b` for a symmetric positive definite `a` (row-major, `p` by `p`) by Cholesky
/// factorisation; `None` if it is not positive definite.
fn solve_spd(a: &[f64], b: &[f64], p: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= l[i * p + k] * l[j * p + k];
            }
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * p + i] = s.sqrt();
            } else {
                l[i * p + j] = s / l[j * p + j];
            }
        }
    }
    let mut z = vec![0.0; p];
    for i in 0..p {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * p + k] * z[k];
        }
        z[i] = s / l[i * p + i];
    }
    let mut x = vec![0.0; p];
    for i in (0..p).rev() {
        let mut s = z[i];
        for k in i + 1..p {
            s -= l[k * p + i] * x[k];
        }
        x[i] = s / l[i * p + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn specs() -> Vec<FeatureSpec> {
        vec![
            FeatureSpec {
                name: "a".into(),
                kind: FeatureKind::Numeric,
            },
            FeatureSpec {
                name: "b".into(),
                kind: FeatureKind::Categorical {
                    categories: vec!["x".into(), "y".into(), "z".into()],
                },
            },
        ]
    }

    /// Rows with a known logistic signal in `a` (some missing) and category `b`.
    fn rows(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut values = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let a: f64 = rng.gen_range(-2.0..2.0);
            let b = rng.gen_range(0..3) as f64;
            let z = 1.5 * a + if b == 2.0 { 1.0 } else { -0.5 };
            y.push((rng.gen::<f64>() < sigmoid(z)) as u8 as f64);
            values.push(if rng.gen::<f64>() < 0.1 { f64::NAN } else { a });
            values.push(b);
        }
        (values, y)
    }

    #[test]
    fn recovers_a_logistic_signal_and_explains_it_exactly() {
        let (values, y) = rows(4000, 1);
        let all: Vec<usize> = (0..4000).collect();
        let terms = design(&specs(), &values, &all);
        // a's value, a's missing indicator, three categories.
        assert_eq!(terms.len(), 5, "{terms:?}");
        let model = fit(terms, &values, 2, &y, &all, 1.0);
        let TermKind::Value { scale, .. } = model.terms[0].kind else {
            panic!("first term is a's value")
        };
        let slope = model.terms[0].weight / scale;
        assert!((slope - 1.5).abs() < 0.15, "slope {slope}");
        let cat = |c: usize| model.terms[2 + c].weight;
        assert!((cat(2) - cat(0) - 1.5).abs() < 0.25, "{model:?}");
        for r in 0..50 {
            let row = &values[r * 2..r * 2 + 2];
            let mut phi = vec![0.0; 2];
            model.add_contributions(row, &mut phi);
            let total = model.expected_margin() + phi[0] + phi[1];
            assert!((total - model.margin(row)).abs() < 1e-9);
        }
        assert!(model.check(2).is_ok());
        assert!(model.check(1).is_err());
    }

    #[test]
    fn the_fit_is_a_stationary_point_of_the_penalised_loss() {
        let (values, y) = rows(500, 2);
        let all: Vec<usize> = (0..500).collect();
        let model = fit(design(&specs(), &values, &all), &values, 2, &y, &all, 3.0);
        // Gradient of sum log loss + 1.5 |w|^2 vanishes.
        let mut g = vec![0.0; model.terms.len()];
        let mut g0 = 0.0;
        for r in 0..500 {
            let row = &values[r * 2..r * 2 + 2];
            let d = sigmoid(model.margin(row)) - y[r];
            g0 += d;
            for (k, t) in model.terms.iter().enumerate() {
                g[k] += d * t.eval(row);
            }
        }
        assert!(g0.abs() < 1e-6, "{g0}");
        for (k, t) in model.terms.iter().enumerate() {
            assert!((g[k] + 3.0 * t.weight).abs() < 1e-6, "term {k}: {}", g[k]);
        }
    }
}
