//! The Fellegi-Sunter model: comparison levels per pair, u-probabilities from random pairs,
//! m-probabilities and the match prior by expectation-maximisation without labels, term-
//! frequency adjustments, and scores that keep every field's contribution.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use rayon::prelude::*;

use super::blocking::{MatchMode, Universe};
use super::data::{Column, NULL};
use super::settings::{Comparison, Level, MatchSettings, Preprocess};
use super::similarity::{
    damerau_levenshtein, edit_lower_bound_ascii, jaro_winkler, levenshtein, token_jaccard,
};
use crate::standardize::text::{clean_for_matching, digits, fold};
use crate::standardize::{DateOrder, IsoDate};

/// One comparison's values, prepared: a code per record into the distinct prepared texts,
/// with dates and numbers parsed once per distinct text where a level needs them.
#[derive(Debug, Clone, Default)]
pub(crate) struct PreparedColumn {
    pub codes: Vec<u32>,
    pub texts: Vec<Box<str>>,
    pub days: Vec<Option<i64>>,
    pub nums: Vec<Option<f64>>,
}

/// Values of all records, by comparison.
pub(crate) struct PreparedTable {
    pub columns: Vec<PreparedColumn>,
}

/// A run of records whose values come from one stored column (or are all null when the
/// table lacks it).
#[derive(Clone, Copy)]
pub(crate) struct Segment<'a> {
    pub column: Option<&'a Column>,
    pub len: usize,
}

fn prepare_text(raw: &str, p: Preprocess) -> String {
    match p {
        Preprocess::Raw => raw.trim().to_owned(),
        Preprocess::Lower => fold(raw),
        Preprocess::Clean => clean_for_matching(raw),
        Preprocess::Digits => digits(raw),
    }
}

fn prepare_column(c: &Comparison, segments: &[Segment<'_>], order: DateOrder) -> PreparedColumn {
    let wants_days = c.levels.iter().any(|l| matches!(l, Level::DateDays { .. }));
    let wants_nums = c
        .levels
        .iter()
        .any(|l| matches!(l, Level::NumericAbs { .. } | Level::NumericRel { .. }));
    let total: usize = segments.iter().map(|s| s.len).sum();
    let mut out = PreparedColumn {
        codes: Vec::with_capacity(total),
        ..PreparedColumn::default()
    };
    let mut interned: HashMap<String, u32> = HashMap::new();
    for seg in segments {
        let Some(col) = seg.column else {
            out.codes.extend(std::iter::repeat_n(NULL, seg.len));
            continue;
        };
        // Prepare each distinct raw value once, in parallel; intern the results in order.
        let prepared: Vec<String> = col
            .values
            .par_iter()
            .map(|raw| prepare_text(raw, c.preprocess))
            .collect();
        let raw_to_code: Vec<u32> = prepared
            .into_iter()
            .zip(&col.values)
            .map(|(text, raw)| {
                if text.is_empty() {
                    return NULL;
                }
                if let Some(&code) = interned.get(&text) {
                    return code;
                }
                let code = out.texts.len() as u32;
                if wants_days {
                    out.days.push(
                        IsoDate::parse(raw, order)
                            .ok()
                            .map(|d| d.days_since_epoch()),
                    );
                }
                if wants_nums {
                    out.nums
                        .push(raw.trim().parse::<f64>().ok().filter(|x| x.is_finite()));
                }
                out.texts.push(text.as_str().into());
                interned.insert(text, code);
                code
            })
            .collect();
        out.codes.extend(col.codes.iter().map(|&r| match r {
            NULL => NULL,
            r => raw_to_code[r as usize],
        }));
    }
    out
}

impl PreparedTable {
    /// Prepares every comparison's column over the records of `segments(column)`, which lists
    /// where each run of records takes that column's values from.
    pub fn new<'a>(
        settings: &MatchSettings,
        segments: &(dyn Fn(&str) -> Vec<Segment<'a>> + Sync),
    ) -> Self {
        let order = settings.training.date_order;
        let columns = settings
            .comparisons
            .par_iter()
            .map(|c| prepare_column(c, &segments(&c.column), order))
            .collect();
        Self { columns }
    }
}

/// Similarities of one pair, computed at most once each however many levels use them.
struct PairMeasures<'a> {
    a: &'a str,
    b: &'a str,
    jw: Option<f64>,
    lev: Option<usize>,
    dl: Option<usize>,
    jaccard: Option<f64>,
}

impl PairMeasures<'_> {
    fn jw(&mut self) -> f64 {
        *self.jw.get_or_insert_with(|| jaro_winkler(self.a, self.b))
    }
    fn lev(&mut self) -> usize {
        *self.lev.get_or_insert_with(|| levenshtein(self.a, self.b))
    }
    fn dl(&mut self) -> usize {
        *self
            .dl
            .get_or_insert_with(|| damerau_levenshtein(self.a, self.b))
    }
    fn jaccard(&mut self) -> f64 {
        *self
            .jaccard
            .get_or_insert_with(|| token_jaccard(self.a, self.b))
    }
}

fn satisfies(
    level: &Level,
    col: &PreparedColumn,
    a: u32,
    b: u32,
    pm: &mut PairMeasures<'_>,
) -> bool {
    let same = a == b;
    match level {
        Level::Exact => same,
        Level::JaroWinkler { min } => same || pm.jw() >= *min,
        Level::Levenshtein { max } => {
            // Lengths alone can rule a pair out (ASCII: one byte per character).
            same || (!(pm.a.is_ascii()
                && pm.b.is_ascii()
                && pm.a.len().abs_diff(pm.b.len()) > *max)
                && pm.lev() <= *max)
        }
        Level::DamerauLevenshtein { max } => {
            // A cheap lower bound rules most unrelated pairs out before the full table.
            same || (!(pm.a.is_ascii()
                && pm.b.is_ascii()
                && edit_lower_bound_ascii(pm.a.as_bytes(), pm.b.as_bytes()) > *max)
                && pm.dl() <= *max)
        }
        Level::TokenJaccard { min } => same || pm.jaccard() >= *min,
        Level::DateDays { max } => match (col.days[a as usize], col.days[b as usize]) {
            (Some(x), Some(y)) => (x - y).abs() <= *max,
            _ => false,
        },
        Level::NumericAbs { max } => match (col.nums[a as usize], col.nums[b as usize]) {
            (Some(x), Some(y)) => (x - y).abs() <= *max,
            _ => false,
        },
        Level::NumericRel { max } => match (col.nums[a as usize], col.nums[b as usize]) {
            (Some(x), Some(y)) => (x - y).abs() <= *max * x.abs().max(y.abs()),
            _ => false,
        },
    }
}

/// The level index of a pair for one comparison: 0 is null, `1..=k` the listed levels in
/// order, `k + 1` is `else`.
pub(crate) fn level_of(c: &Comparison, col: &PreparedColumn, a: usize, b: usize) -> u8 {
    let (ca, cb) = (col.codes[a], col.codes[b]);
    if ca == NULL || cb == NULL {
        return 0;
    }
    let mut pm = PairMeasures {
        a: &col.texts[ca as usize],
        b: &col.texts[cb as usize],
        jw: None,
        lev: None,
        dl: None,
        jaccard: None,
    };
    for (i, level) in c.levels.iter().enumerate() {
        if satisfies(level, col, ca, cb, &mut pm) {
            return (i + 1) as u8;
        }
    }
    (c.levels.len() + 1) as u8
}

/// Levels of one pair for every comparison, written into `out` (one per comparison).
pub(crate) fn pair_levels(
    settings: &MatchSettings,
    table: &PreparedTable,
    a: usize,
    b: usize,
    out: &mut [u8],
) {
    for ((c, col), slot) in settings.comparisons.iter().zip(&table.columns).zip(out) {
        *slot = level_of(c, col, a, b);
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
/// `sample`), with a half-count added to every level so none is zero. The pairs are drawn
/// from the seed first, then compared in parallel, so the result does not depend on threads.
pub(crate) fn estimate_u(
    settings: &MatchSettings,
    table: &PreparedTable,
    universe: Universe,
) -> (Vec<Vec<f64>>, usize) {
    let sample = settings.training.u_sample_pairs;
    let total = universe.total_pairs();
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    if total <= sample as u64 {
        for a in 0..universe.n {
            for b in a + 1..universe.n {
                if universe.eligible(a, b) {
                    pairs.push((a as u32, b as u32));
                }
            }
        }
    } else {
        pairs.reserve(sample);
        let mut rng = ChaCha8Rng::seed_from_u64(settings.training.seed);
        while pairs.len() < sample {
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
            pairs.push((a as u32, b as u32));
        }
    }
    let n_comp = settings.comparisons.len();
    let empty = || -> Vec<Vec<u64>> {
        settings
            .comparisons
            .iter()
            .map(|c| vec![0u64; c.levels.len() + 2])
            .collect()
    };
    let counts = pairs
        .par_chunks(4096)
        .map(|chunk| {
            let mut counts = empty();
            let mut levels = vec![0u8; n_comp];
            for &(a, b) in chunk {
                pair_levels(settings, table, a as usize, b as usize, &mut levels);
                for (c, &l) in levels.iter().enumerate() {
                    counts[c][l as usize] += 1;
                }
            }
            counts
        })
        .reduce(empty, |mut x, y| {
            for (cx, cy) in x.iter_mut().zip(y) {
                for (a, b) in cx.iter_mut().zip(cy) {
                    *a += b;
                }
            }
            x
        });
    let u = counts
        .iter()
        .map(|c| {
            let non_null: f64 = c.iter().skip(1).map(|&x| x as f64).sum();
            let k = (c.len() - 1) as f64;
            let mut u = vec![0.0];
            u.extend(
                c.iter()
                    .skip(1)
                    .map(|&x| (x as f64 + 0.5) / (non_null + 0.5 * k)),
            );
            u
        })
        .collect();
    (u, pairs.len())
}

/// Relative frequency of every prepared value (by code), for the comparisons that weigh
/// exact agreement by term frequency.
pub(crate) fn term_frequencies(
    settings: &MatchSettings,
    table: &PreparedTable,
) -> Vec<Option<Vec<f64>>> {
    settings
        .comparisons
        .iter()
        .zip(&table.columns)
        .map(|(c, col)| {
            if !c.term_frequency || c.levels.first() != Some(&Level::Exact) {
                return None;
            }
            let mut counts = vec![0.0f64; col.texts.len()];
            let mut total = 0.0;
            for &code in &col.codes {
                if code != NULL {
                    counts[code as usize] += 1.0;
                    total += 1.0;
                }
            }
            for v in &mut counts {
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
        term_frequency: &[bool],
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
                    term_frequency: term_frequency.get(ci).copied().unwrap_or(false),
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
        }
    }

    /// log2 of the prior odds of a match.
    pub fn prior_weight(&self) -> f64 {
        (self.lambda / (1.0 - self.lambda)).log2()
    }

    /// The evidence of comparison `c` at `level`, with the term-frequency adjustment of an
    /// exact match on a value of relative frequency `freq` where enabled: log2(m / freq),
    /// never below the next level. `None` gives the unadjusted evidence.
    pub(crate) fn contribution_with_frequency(
        &self,
        c: usize,
        level: u8,
        freq: Option<f64>,
    ) -> f64 {
        let params = &self.comparisons[c];
        let base = params.levels[level as usize].log2_bayes_factor;
        if level != 1 || !params.term_frequency {
            return base;
        }
        match freq {
            Some(f) => {
                let tf = f.max(1e-6);
                let m = params.levels[1].m;
                let next = params.levels[2].log2_bayes_factor;
                (m / tf).log2().max(next)
            }
            None => base,
        }
    }
}

/// Converts a match weight (log2 odds) to a probability.
pub fn probability_from_weight(weight: f64) -> f64 {
    1.0 / (1.0 + (-weight).exp2())
}

#[cfg(test)]
mod tests;
