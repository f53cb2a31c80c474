//! The Fellegi-Sunter model: comparison levels per pair, u-probabilities from random pairs,
//! m-probabilities and the match prior by expectation-maximisation without labels, term-
//! frequency adjustments, and scores that keep every field's contribution.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::blocking::{MatchMode, Universe};
use super::settings::{Comparison, Level, MatchSettings, Preprocess};
use super::similarity::{damerau_levenshtein, jaro_winkler, levenshtein, token_jaccard};
use crate::standardize::text::{clean_for_matching, digits, fold};
use crate::standardize::{DateOrder, IsoDate};

/// A value made ready for one comparison.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prepared {
    pub text: Option<String>,
    pub days: Option<i64>,
    pub num: Option<f64>,
}

/// Values of all records, by comparison then record.
pub(crate) struct PreparedTable {
    pub columns: Vec<Vec<Prepared>>,
}

fn prepare_one(raw: Option<&str>, p: Preprocess, order: DateOrder) -> Prepared {
    let Some(raw) = raw else {
        return Prepared::default();
    };
    let text = match p {
        Preprocess::Raw => raw.trim().to_owned(),
        Preprocess::Lower => fold(raw),
        Preprocess::Clean => clean_for_matching(raw),
        Preprocess::Digits => digits(raw),
    };
    if text.is_empty() {
        return Prepared::default();
    }
    Prepared {
        days: IsoDate::parse(raw, order)
            .ok()
            .map(|d| d.days_since_epoch()),
        num: raw.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        text: Some(text),
    }
}

impl PreparedTable {
    pub fn new<'a>(
        settings: &MatchSettings,
        n: usize,
        value: &dyn Fn(usize, &str) -> Option<&'a str>,
    ) -> Self {
        let order = settings.training.date_order;
        let columns = settings
            .comparisons
            .iter()
            .map(|c| {
                (0..n)
                    .map(|r| prepare_one(value(r, &c.column), c.preprocess, order))
                    .collect()
            })
            .collect();
        Self { columns }
    }
}

fn satisfies(level: &Level, a: &Prepared, b: &Prepared, ta: &str, tb: &str) -> bool {
    match level {
        Level::Exact => ta == tb,
        Level::JaroWinkler { min } => jaro_winkler(ta, tb) >= *min,
        Level::Levenshtein { max } => levenshtein(ta, tb) <= *max,
        Level::DamerauLevenshtein { max } => damerau_levenshtein(ta, tb) <= *max,
        Level::TokenJaccard { min } => token_jaccard(ta, tb) >= *min,
        Level::DateDays { max } => match (a.days, b.days) {
            (Some(x), Some(y)) => (x - y).abs() <= *max,
            _ => false,
        },
        Level::NumericAbs { max } => match (a.num, b.num) {
            (Some(x), Some(y)) => (x - y).abs() <= *max,
            _ => false,
        },
        Level::NumericRel { max } => match (a.num, b.num) {
            (Some(x), Some(y)) => (x - y).abs() <= *max * x.abs().max(y.abs()),
            _ => false,
        },
    }
}

/// The level index of a pair for one comparison: 0 is null, `1..=k` the listed levels in
/// order, `k + 1` is `else`.
pub(crate) fn level_of(c: &Comparison, a: &Prepared, b: &Prepared) -> u8 {
    let (Some(ta), Some(tb)) = (a.text.as_deref(), b.text.as_deref()) else {
        return 0;
    };
    for (i, level) in c.levels.iter().enumerate() {
        if satisfies(level, a, b, ta, tb) {
            return (i + 1) as u8;
        }
    }
    (c.levels.len() + 1) as u8
}

/// Levels of one pair for every comparison.
pub(crate) fn pair_levels(
    settings: &MatchSettings,
    table: &PreparedTable,
    a: usize,
    b: usize,
    out: &mut Vec<u8>,
) {
    out.clear();
    for (c, col) in settings.comparisons.iter().zip(&table.columns) {
        out.push(level_of(c, &col[a], &col[b]));
    }
}

/// Parameters of one level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelParams {
    pub label: String,
    /// P(level | match).
    pub m: f64,
    /// P(level | non-match).
    pub u: f64,
    /// log2(m / u): the evidence this level gives (0 for null).
    pub log2_bayes_factor: f64,
}

/// Parameters of one comparison; `levels[0]` is null, the last is `else`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonParams {
    pub column: String,
    pub levels: Vec<LevelParams>,
    pub term_frequency: bool,
}

/// A trained model.
#[derive(Debug, Clone, Serialize)]
pub struct TrainedModel {
    /// Prior probability that two random eligible records match.
    pub lambda: f64,
    /// Share of matches among candidate pairs, as estimated by EM.
    pub lambda_candidates: f64,
    pub comparisons: Vec<ComparisonParams>,
    pub em_iterations: usize,
    pub em_converged: bool,
    pub u_pairs_sampled: usize,
    #[serde(skip)]
    pub(crate) tf: Vec<Option<HashMap<String, f64>>>,
}

/// m, u and the prior for EM: `m[c][l]` over levels 1..=k+1 of comparison c (index 0 unused).
#[derive(Debug, Clone, PartialEq)]
pub struct EmParams {
    pub lambda: f64,
    pub m: Vec<Vec<f64>>,
    pub u: Vec<Vec<f64>>,
}

/// Outcome of [`expectation_maximisation`].
#[derive(Debug, Clone)]
pub struct EmResult {
    pub params: EmParams,
    pub iterations: usize,
    pub converged: bool,
}

const FLOOR: f64 = 1e-9;

/// Expectation-maximisation over comparison patterns (level vectors with counts). Level 0
/// (null) carries no evidence and is skipped. With `fix_u`, u stays as given (estimated from
/// random pairs) and only m and the prior move.
pub fn expectation_maximisation(
    patterns: &[(Vec<u8>, f64)],
    init: EmParams,
    fix_u: bool,
    max_iterations: usize,
    tolerance: f64,
) -> EmResult {
    let mut p = init;
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iterations {
        iterations += 1;
        let mut m_acc: Vec<Vec<f64>> = p.m.iter().map(|v| vec![0.0; v.len()]).collect();
        let mut u_acc = m_acc.clone();
        let (mut match_total, mut total) = (0.0, 0.0);
        for (levels, count) in patterns {
            let (mut lm, mut lu) = (p.lambda.ln(), (1.0 - p.lambda).ln());
            for (c, &l) in levels.iter().enumerate() {
                if l > 0 {
                    lm += p.m[c][l as usize].max(FLOOR).ln();
                    lu += p.u[c][l as usize].max(FLOOR).ln();
                }
            }
            let r = 1.0 / (1.0 + (lu - lm).exp());
            match_total += r * count;
            total += count;
            for (c, &l) in levels.iter().enumerate() {
                if l > 0 {
                    m_acc[c][l as usize] += r * count;
                    u_acc[c][l as usize] += (1.0 - r) * count;
                }
            }
        }
        let mut change: f64 = 0.0;
        let new_lambda = (match_total / total.max(FLOOR)).clamp(FLOOR, 1.0 - FLOOR);
        change = change.max((new_lambda - p.lambda).abs());
        p.lambda = new_lambda;
        let normalise = |acc: &[f64], old: &mut Vec<f64>, change: &mut f64| {
            let sum: f64 = acc.iter().skip(1).sum();
            if sum <= 0.0 {
                return;
            }
            for l in 1..acc.len() {
                let v = (acc[l] / sum).max(FLOOR);
                *change = change.max((v - old[l]).abs());
                old[l] = v;
            }
        };
        for c in 0..p.m.len() {
            normalise(&m_acc[c], &mut p.m[c], &mut change);
            if !fix_u {
                normalise(&u_acc[c], &mut p.u[c], &mut change);
            }
        }
        if change < tolerance {
            converged = true;
            break;
        }
    }
    EmResult {
        params: p,
        iterations,
        converged,
    }
}

/// Starting m-probabilities: most mass on the strictest level, decreasing geometrically, 5%
/// on `else`. Index 0 (null) is unused.
pub fn prior_m(n_listed: usize) -> Vec<f64> {
    let raw: Vec<f64> = (0..n_listed).map(|i| 0.5f64.powi(i as i32)).collect();
    let sum: f64 = raw.iter().sum();
    let mut m = vec![0.0];
    m.extend(raw.iter().map(|x| 0.95 * x / sum));
    m.push(0.05);
    m
}

/// Estimates u-probabilities from random eligible pairs (all pairs when there are fewer than
/// `sample`), with a half-count added to every level so none is zero.
pub(crate) fn estimate_u(
    settings: &MatchSettings,
    table: &PreparedTable,
    universe: Universe,
) -> (Vec<Vec<f64>>, usize) {
    let sample = settings.training.u_sample_pairs;
    let mut counts: Vec<Vec<f64>> = settings
        .comparisons
        .iter()
        .map(|c| vec![0.0; c.levels.len() + 2])
        .collect();
    let mut levels = Vec::new();
    let mut add = |a: usize, b: usize, counts: &mut Vec<Vec<f64>>| {
        pair_levels(settings, table, a, b, &mut levels);
        for (c, &l) in levels.iter().enumerate() {
            counts[c][l as usize] += 1.0;
        }
    };
    let total = universe.total_pairs();
    let mut used = 0usize;
    if total <= sample as u64 {
        for a in 0..universe.n {
            for b in a + 1..universe.n {
                if universe.eligible(a, b) {
                    add(a, b, &mut counts);
                    used += 1;
                }
            }
        }
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(settings.training.seed);
        while used < sample {
            let (a, b) = match universe.mode {
                MatchMode::Link => (
                    rng.gen_range(0..universe.n_left),
                    rng.gen_range(universe.n_left..universe.n),
                ),
                MatchMode::Dedupe => {
                    let a = rng.gen_range(0..universe.n);
                    let b = rng.gen_range(0..universe.n);
                    if a == b {
                        continue;
                    }
                    (a.min(b), a.max(b))
                }
            };
            add(a, b, &mut counts);
            used += 1;
        }
    }
    let u = counts
        .iter()
        .map(|c| {
            let non_null: f64 = c.iter().skip(1).sum();
            let k = (c.len() - 1) as f64;
            let mut u = vec![0.0];
            u.extend(c.iter().skip(1).map(|x| (x + 0.5) / (non_null + 0.5 * k)));
            u
        })
        .collect();
    (u, used)
}

/// Relative frequency of every prepared value, for term-frequency adjustments.
pub(crate) fn term_frequencies(
    settings: &MatchSettings,
    table: &PreparedTable,
) -> Vec<Option<HashMap<String, f64>>> {
    settings
        .comparisons
        .iter()
        .zip(&table.columns)
        .map(|(c, col)| {
            if !c.term_frequency || c.levels.first() != Some(&Level::Exact) {
                return None;
            }
            let mut counts: HashMap<String, f64> = HashMap::new();
            let mut total = 0.0;
            for v in col.iter().filter_map(|p| p.text.as_ref()) {
                *counts.entry(v.clone()).or_insert(0.0) += 1.0;
                total += 1.0;
            }
            for v in counts.values_mut() {
                *v /= total;
            }
            Some(counts)
        })
        .collect()
}

impl TrainedModel {
    /// Builds the model from estimated parameters, making level evidence non-increasing from
    /// the strictest level to `else` so that agreeing more never counts against a pair.
    pub(crate) fn from_params(
        settings: &MatchSettings,
        p: &EmParams,
        lambda: f64,
        em: (usize, bool),
        u_pairs_sampled: usize,
        tf: Vec<Option<HashMap<String, f64>>>,
    ) -> Self {
        let comparisons = settings
            .comparisons
            .iter()
            .enumerate()
            .map(|(ci, c)| {
                let mut levels = vec![LevelParams {
                    label: "null".into(),
                    m: 1.0,
                    u: 1.0,
                    log2_bayes_factor: 0.0,
                }];
                let mut previous = f64::INFINITY;
                for l in 1..=c.levels.len() + 1 {
                    let (m, u) = (p.m[ci][l].max(FLOOR), p.u[ci][l].max(FLOOR));
                    let bf = (m / u).log2().min(previous);
                    previous = bf;
                    let label = c.levels.get(l - 1).map_or("else".into(), Level::label);
                    levels.push(LevelParams {
                        label,
                        m,
                        u,
                        log2_bayes_factor: bf,
                    });
                }
                ComparisonParams {
                    column: c.column.clone(),
                    levels,
                    term_frequency: tf[ci].is_some(),
                }
            })
            .collect();
        Self {
            lambda: lambda.clamp(1e-15, 1.0 - 1e-15),
            lambda_candidates: p.lambda,
            comparisons,
            em_iterations: em.0,
            em_converged: em.1,
            u_pairs_sampled,
            tf,
        }
    }

    /// log2 of the prior odds of a match.
    pub fn prior_weight(&self) -> f64 {
        (self.lambda / (1.0 - self.lambda)).log2()
    }

    /// The evidence of one comparison at a level, with the term-frequency adjustment for an
    /// exact match on `value` when enabled: log2(m / tf(value)), never below the next level.
    pub(crate) fn contribution(&self, c: usize, level: u8, value: Option<&str>) -> f64 {
        let params = &self.comparisons[c];
        let base = params.levels[level as usize].log2_bayes_factor;
        if level != 1 {
            return base;
        }
        match (&self.tf.get(c).and_then(Option::as_ref), value) {
            (Some(freq), Some(v)) => {
                let tf = freq.get(v).copied().unwrap_or(0.0).max(1e-6);
                let m = params.levels[1].m;
                let next = params.levels[2].log2_bayes_factor;
                (m / tf).log2().max(next)
            }
            _ => base,
        }
    }
}

/// Converts a match weight (log2 odds) to a probability.
pub fn probability_from_weight(weight: f64) -> f64 {
    1.0 / (1.0 + (-weight).exp2())
}

#[cfg(test)]
mod tests;
