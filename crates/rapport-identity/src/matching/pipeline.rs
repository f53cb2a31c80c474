//! Training and scoring in one run: block, estimate u from random pairs, estimate m and the
//! prior by EM on the candidate pairs, score every candidate pair, cluster, and evaluate.

use std::collections::HashMap;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::blocking::{candidate_pairs, KnownCodes, MatchMode, Universe};
use super::cluster::connected_components;
use super::data::{Dataset, NULL};
use super::eval::{bcubed, cluster_pairwise, pairwise_metrics, Evaluation};
use super::model::{
    em_with_household, estimate_u, expectation_maximisation, levels_of_pairs, prior_m,
    probability_from_weight, term_frequencies, EmParams, HouseholdEm, HouseholdParams,
    PreparedTable, Segment, TrainedModel,
};
use super::settings::{KeyTransform, MatchSettings, Preprocess};
use crate::error::IdentityError;

/// A candidate pair with its score and the level each comparison fell into.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoredPair {
    /// Record index (see [`MatchRun::record`]); in link mode always a left record.
    pub left: usize,
    /// Record index; in link mode always a right record.
    pub right: usize,
    /// log2 prior odds plus the log2 Bayes factor of every comparison.
    pub match_weight: f64,
    pub match_probability: f64,
    /// Level index per comparison (0 null, then the listed levels, last `else`).
    pub levels: Vec<u8>,
    /// log2 Bayes factor per comparison, term-frequency adjusted where enabled.
    pub contributions: Vec<f64>,
    /// What the household class takes off the weight (0 without one, never positive): the
    /// weight is the prior, plus the contributions, plus this.
    pub household_adjustment: f64,
}

/// One comparison's part in a pair's score, for explanations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldContribution {
    pub column: String,
    pub level: String,
    pub log2_bayes_factor: f64,
}

/// The name of the household class's entry in explanations and pairs files.
pub const HOUSEHOLD_COLUMN: &str = "household";

/// The household entry's level: whether the pattern looked like two people sharing a
/// household (a loss of at least one bit) or not.
pub(crate) fn household_level(adjustment: f64) -> &'static str {
    if adjustment <= -1.0 {
        "looks like a household"
    } else {
        "not a household"
    }
}

/// Which table a record came from and its id there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RecordRef<'a> {
    /// `None` in dedupe mode; `Some("left" | "right")` in link mode.
    pub side: Option<&'static str>,
    pub id: &'a str,
}

/// How long each step of a run took, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Standardising and interning the compared values.
    pub prepare_ms: u128,
    /// Finding the candidate pairs.
    pub blocking_ms: u128,
    /// Comparing random pairs for the u-probabilities.
    pub u_ms: u128,
    /// Comparing every candidate pair (its level in every comparison).
    pub compare_ms: u128,
    /// Counting comparison patterns and running EM.
    pub em_ms: u128,
    /// Term frequencies and the match weight of every candidate pair.
    pub score_ms: u128,
}

impl Timings {
    /// Blocking, comparing and scoring: the work that grows with the candidate pairs, the
    /// figure pairs per second are measured over.
    pub fn predict_ms(&self) -> u128 {
        self.blocking_ms + self.compare_ms + self.score_ms
    }
}

/// Result of training and scoring. Pairs are kept compactly (ids, one level byte per
/// comparison, the weight); [`MatchRun::pair`] expands one with its contributions.
#[derive(Debug, Clone)]
pub struct MatchRun {
    pub mode: MatchMode,
    pub settings: MatchSettings,
    pub model: TrainedModel,
    pub total_pairs: u64,
    pub timings: Timings,
    candidates: Vec<(u32, u32)>,
    levels: Vec<u8>,
    weights: Vec<f64>,
    /// Per comparison with term-frequency adjustment: each record's value code, and the
    /// evidence of an exact match on each code.
    tf_exact: Vec<Option<(Vec<u32>, Vec<f64>)>>,
    /// Per candidate, what the household class takes off its weight (empty without one).
    household_adjustment: Vec<f64>,
    ids: Vec<Box<str>>,
    n_left: usize,
}

/// Deduplicates one dataset.
pub fn dedupe_dataset(data: &Dataset, settings: &MatchSettings) -> Result<MatchRun, IdentityError> {
    let universe = Universe {
        mode: MatchMode::Dedupe,
        n: data.len(),
        n_left: data.len(),
    };
    let segments = |c: &str| {
        vec![Segment {
            column: data.column(c),
            len: data.len(),
        }]
    };
    let ids = (0..data.len()).map(|i| data.id(i).into()).collect();
    run(universe, settings, data.columns(), &segments, ids)
}

/// Links two datasets: only pairs with one record from each are considered.
pub fn link_datasets(
    left: &Dataset,
    right: &Dataset,
    settings: &MatchSettings,
) -> Result<MatchRun, IdentityError> {
    let universe = Universe {
        mode: MatchMode::Link,
        n: left.len() + right.len(),
        n_left: left.len(),
    };
    // A column must exist in at least one table; missing on one side reads as null.
    let segments = |c: &str| {
        vec![
            Segment {
                column: left.column(c),
                len: left.len(),
            },
            Segment {
                column: right.column(c),
                len: right.len(),
            },
        ]
    };
    let mut columns: Vec<String> = left.columns().to_vec();
    columns.extend(
        right
            .columns()
            .iter()
            .filter(|c| !left.columns().contains(c))
            .cloned(),
    );
    let ids = (0..left.len())
        .map(|i| left.id(i).into())
        .chain((0..right.len()).map(|i| right.id(i).into()))
        .collect();
    run(universe, settings, &columns, &segments, ids)
}

fn ms(since: Instant) -> u128 {
    since.elapsed().as_millis()
}

fn run<'a>(
    universe: Universe,
    settings: &MatchSettings,
    columns: &[String],
    segments: &(dyn Fn(&str) -> Vec<Segment<'a>> + Sync),
    ids: Vec<Box<str>>,
) -> Result<MatchRun, IdentityError> {
    let rules = settings.validate(columns)?;
    if universe.total_pairs() == 0 {
        return Err(IdentityError::EmptyInput(
            "need at least two records (one per table when linking)".into(),
        ));
    }
    let mut timings = Timings::default();
    let t = Instant::now();
    let table = PreparedTable::new(settings, segments);
    timings.prepare_ms = ms(t);
    let t = Instant::now();
    let known: Vec<KnownCodes<'_>> = settings
        .comparisons
        .iter()
        .zip(&table.columns)
        .filter_map(|(c, col)| {
            let transform = match c.preprocess {
                Preprocess::Clean => KeyTransform::Exact,
                Preprocess::Digits => KeyTransform::Digits,
                Preprocess::Raw | Preprocess::Lower => return None,
            };
            Some(KnownCodes {
                column: &c.column,
                transform,
                codes: &col.codes,
            })
        })
        .collect();
    let candidates = candidate_pairs(
        universe,
        &rules,
        segments,
        &known,
        settings.training.max_candidate_pairs,
    )?;
    timings.blocking_ms = ms(t);
    let t = Instant::now();
    let (u, u_pairs) = estimate_u(settings, &table, universe);
    timings.u_ms = ms(t);

    let t = Instant::now();
    let n_comp = settings.comparisons.len();
    let levels = levels_of_pairs(settings, &table, &candidates);
    timings.compare_ms = ms(t);

    let t = Instant::now();
    let patterns: HashMap<&[u8], f64> = levels
        .par_chunks(n_comp)
        .fold(HashMap::new, |mut m: HashMap<&[u8], f64>, lv| {
            *m.entry(lv).or_insert(0.0) += 1.0;
            m
        })
        .reduce(HashMap::new, |mut x, y| {
            for (k, v) in y {
                *x.entry(k).or_insert(0.0) += v;
            }
            x
        });
    let mut patterns: Vec<(Vec<u8>, f64)> =
        patterns.into_iter().map(|(k, v)| (k.to_vec(), v)).collect();
    // A fixed order makes EM's floating-point sums, and so the model, reproducible.
    patterns.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let init = EmParams {
        lambda: 0.1,
        m: settings
            .comparisons
            .iter()
            .map(|c| prior_m(c.levels.len()))
            .collect(),
        u: u.clone(),
    };
    let tr = &settings.training;
    let household_on = !tr.household_columns.is_empty();
    let mut household_em: Option<HouseholdEm> = None;
    let em = if patterns.is_empty() {
        None
    } else if household_on {
        // The household class starts like a match on the shared columns and like random
        // pairs on the others; EM then moves all three classes.
        let h = settings
            .comparisons
            .iter()
            .zip(&u)
            .map(|(c, u)| {
                if tr.household_columns.contains(&c.column) {
                    prior_m(c.levels.len())
                } else {
                    u.clone()
                }
            })
            .collect();
        let free = settings
            .comparisons
            .iter()
            .map(|c| tr.household_columns.contains(&c.column))
            .collect();
        let (r, hh) = em_with_household(
            &patterns,
            init.clone(),
            HouseholdEm {
                share: 0.1,
                h,
                free,
            },
            tr.em_fix_u,
            tr.em_max_iterations,
            tr.em_tolerance,
        );
        household_em = Some(hh);
        Some(r)
    } else {
        // u is re-estimated inside the candidate set (non-matches there agree more often than
        // random pairs because of blocking), so m is not inflated by that agreement. Scoring
        // uses the u of random pairs, the population the prior refers to.
        Some(expectation_maximisation(
            &patterns,
            init.clone(),
            tr.em_fix_u,
            tr.em_max_iterations,
            tr.em_tolerance,
        ))
    };
    let (m, lambda_c, iterations, converged) = match &em {
        Some(r) => (
            r.params.m.clone(),
            r.params.lambda,
            r.iterations,
            r.converged,
        ),
        None => (init.m.clone(), init.lambda, 0, false),
    };
    timings.em_ms = ms(t);
    let t = Instant::now();
    // Matches are assumed to lie within the candidates, so the prior over all eligible pairs
    // is the expected number of matches among candidates over the number of eligible pairs.
    let lambda = lambda_c * candidates.len() as f64 / universe.total_pairs() as f64;
    let params = EmParams {
        lambda: lambda_c,
        m,
        u,
    };
    let tf = term_frequencies(settings, &table);
    let mut model = TrainedModel::from_params(
        settings,
        &params,
        lambda,
        (iterations, converged),
        u_pairs,
        &tf.iter().map(Option::is_some).collect::<Vec<_>>(),
    );
    model.household = household_em.map(|hh| {
        let log2_ratio =
            hh.h.iter()
                .zip(&params.u)
                .map(|(h, u)| {
                    let mut r = vec![0.0];
                    r.extend(
                        h.iter()
                            .zip(u)
                            .skip(1)
                            .map(|(h, u)| (h.max(1e-9) / u.max(1e-9)).log2()),
                    );
                    r
                })
                .collect();
        let mut h = hh.h;
        for levels in &mut h {
            levels[0] = 1.0;
        }
        HouseholdParams {
            columns: tr.household_columns.clone(),
            share: hh.share * candidates.len() as f64 / universe.total_pairs() as f64,
            share_candidates: hh.share,
            h,
            log2_ratio,
        }
    });
    // Per comparison weighed by term frequency: each code's relative frequency.
    let freqs: Vec<Option<Vec<f64>>> = if model.household.is_some() {
        tf.clone()
    } else {
        vec![None; tf.len()]
    };
    let household_adjustment: Vec<f64> = match &model.household {
        None => Vec::new(),
        Some(hp) => {
            let prior_h = hp.prior_weight(model.lambda);
            candidates
                .par_iter()
                .zip(levels.par_chunks(n_comp))
                .map(|(&(a, _), lv)| {
                    let w = prior_h
                        + lv.iter()
                            .enumerate()
                            .map(|(c, &l)| {
                                let code = table.columns[c].codes[a as usize];
                                let freq = match &freqs[c] {
                                    Some(f) if code != NULL => Some(f[code as usize]),
                                    _ => None,
                                };
                                hp.evidence(c, l, freq)
                            })
                            .sum::<f64>();
                    HouseholdParams::adjustment(w)
                })
                .collect()
        }
    };
    let tf_exact: Vec<Option<(Vec<u32>, Vec<f64>)>> = tf
        .into_iter()
        .zip(table.columns)
        .enumerate()
        .map(|(c, (freq, col))| {
            freq.map(|freq| {
                let w = freq
                    .iter()
                    .map(|&f| model.contribution_with_frequency(c, 1, Some(f)))
                    .collect();
                (col.codes, w)
            })
        })
        .collect();
    let mut out = MatchRun {
        mode: universe.mode,
        settings: settings.clone(),
        model,
        total_pairs: universe.total_pairs(),
        timings: Timings::default(),
        candidates,
        levels,
        weights: Vec::new(),
        tf_exact,
        household_adjustment,
        ids,
        n_left: universe.n_left,
    };
    let prior = out.model.prior_weight();
    let weights = out
        .candidates
        .par_iter()
        .zip(out.levels.par_chunks(n_comp))
        .enumerate()
        .map(|(i, (&(a, _), lv))| {
            prior
                + lv.iter()
                    .enumerate()
                    .map(|(c, &l)| out.contribution(c, l, a as usize))
                    .sum::<f64>()
                + out.household_adjustment.get(i).copied().unwrap_or(0.0)
        })
        .collect();
    out.weights = weights;
    timings.score_ms = ms(t);
    out.timings = timings;
    Ok(out)
}

impl MatchRun {
    /// Candidate `i`'s records, weight and levels, without copying (see [`MatchRun::pair`]).
    pub(crate) fn pair_parts(&self, i: usize) -> (usize, usize, f64, &[u8]) {
        let n_comp = self.model.comparisons.len();
        let (a, b) = self.candidates[i];
        let levels = &self.levels[i * n_comp..(i + 1) * n_comp];
        (a as usize, b as usize, self.weights[i], levels)
    }

    /// The evidence of comparison `c` at `level` for a pair whose left record is `a`.
    pub(crate) fn contribution(&self, c: usize, level: u8, a: usize) -> f64 {
        if level == 1 {
            if let Some((codes, w)) = &self.tf_exact[c] {
                return match codes[a] {
                    NULL => self.model.comparisons[c].levels[1].log2_bayes_factor,
                    code => w[code as usize],
                };
            }
        }
        self.model.comparisons[c].levels[level as usize].log2_bayes_factor
    }

    /// What the household class takes off candidate `i`'s weight (0 without one).
    pub fn household_adjustment(&self, i: usize) -> f64 {
        self.household_adjustment.get(i).copied().unwrap_or(0.0)
    }

    /// Number of records (both tables in link mode).
    pub fn n_records(&self) -> usize {
        self.ids.len()
    }

    /// Number of records in the left table (all records in dedupe mode).
    pub fn n_left(&self) -> usize {
        self.n_left
    }

    /// Number of candidate pairs scored.
    pub fn n_pairs(&self) -> usize {
        self.candidates.len()
    }

    /// Candidate pair `i` with its levels and per-comparison contributions.
    pub fn pair(&self, i: usize) -> ScoredPair {
        let n_comp = self.model.comparisons.len();
        let (a, b) = self.candidates[i];
        let levels = self.levels[i * n_comp..(i + 1) * n_comp].to_vec();
        let contributions = levels
            .iter()
            .enumerate()
            .map(|(c, &l)| self.contribution(c, l, a as usize))
            .collect();
        let match_weight = self.weights[i];
        ScoredPair {
            left: a as usize,
            right: b as usize,
            match_weight,
            match_probability: probability_from_weight(match_weight),
            levels,
            contributions,
            household_adjustment: self.household_adjustment(i),
        }
    }

    /// Every candidate pair, scored, in candidate order (sorted by record indices).
    pub fn pairs(&self) -> impl Iterator<Item = ScoredPair> + '_ {
        (0..self.n_pairs()).map(|i| self.pair(i))
    }

    /// The record indices and match weight of candidate `i`, without expanding it.
    pub fn pair_weight(&self, i: usize) -> (usize, usize, f64) {
        let (a, b) = self.candidates[i];
        (a as usize, b as usize, self.weights[i])
    }

    /// The table and id of a record index.
    pub fn record(&self, index: usize) -> RecordRef<'_> {
        let side = match self.mode {
            MatchMode::Dedupe => None,
            MatchMode::Link if index < self.n_left => Some("left"),
            MatchMode::Link => Some("right"),
        };
        RecordRef {
            side,
            id: self.ids.get(index).map_or("", |s| s),
        }
    }

    /// The index of a record by side (link mode) and id.
    pub fn index_of(&self, side: Option<&str>, id: &str) -> Option<usize> {
        let range = match (self.mode, side) {
            (MatchMode::Link, Some("right")) => self.n_left..self.ids.len(),
            (MatchMode::Link, _) => 0..self.n_left,
            (MatchMode::Dedupe, _) => 0..self.ids.len(),
        };
        range.into_iter().find(|&i| &*self.ids[i] == id)
    }

    /// Why a pair scored as it did, comparison by comparison; with a household class, a last
    /// entry (column [`HOUSEHOLD_COLUMN`]) says how much looking like two people of one
    /// household took off.
    pub fn explain(&self, pair: &ScoredPair) -> Vec<FieldContribution> {
        let mut out: Vec<FieldContribution> = self
            .model
            .comparisons
            .iter()
            .zip(pair.levels.iter().zip(&pair.contributions))
            .map(|(c, (&l, &w))| FieldContribution {
                column: c.column.clone(),
                level: c
                    .levels
                    .get(l as usize)
                    .map_or(String::new(), |p| p.label.clone()),
                log2_bayes_factor: w,
            })
            .collect();
        if self.model.household.is_some() {
            out.push(FieldContribution {
                column: HOUSEHOLD_COLUMN.to_owned(),
                level: household_level(pair.household_adjustment).to_owned(),
                log2_bayes_factor: pair.household_adjustment,
            });
        }
        out
    }

    /// The weight at or above which a pair's probability reaches `threshold`.
    fn weight_floor(threshold: f64) -> f64 {
        if threshold <= 0.0 {
            f64::NEG_INFINITY
        } else if threshold >= 1.0 {
            f64::INFINITY
        } else {
            (threshold / (1.0 - threshold)).log2()
        }
    }

    fn is_link(&self, i: usize, threshold: f64, floor: f64) -> bool {
        // Compare on the weight first (cheap), then confirm on the probability near the edge
        // so the result is exactly `probability >= threshold`.
        let w = self.weights[i];
        if (w - floor).abs() > 1e-6 {
            w > floor
        } else {
            probability_from_weight(w) >= threshold
        }
    }

    /// Indices of the candidate pairs at or above a probability threshold.
    pub fn link_indices(&self, threshold: f64) -> impl Iterator<Item = usize> + '_ {
        let floor = Self::weight_floor(threshold);
        (0..self.n_pairs()).filter(move |&i| self.is_link(i, threshold, floor))
    }

    /// Pairs at or above a probability threshold.
    pub fn links(&self, threshold: f64) -> impl Iterator<Item = ScoredPair> + '_ {
        self.link_indices(threshold).map(|i| self.pair(i))
    }

    /// A cluster number per record: connected components of the links at `threshold`.
    pub fn clusters(&self, threshold: f64) -> Vec<usize> {
        connected_components(
            self.n_records(),
            self.link_indices(threshold).map(|i| {
                let (a, b) = self.candidates[i];
                (a as usize, b as usize)
            }),
        )
    }

    /// Whether `(a, b)` (either order) is a candidate pair.
    pub fn is_candidate(&self, a: usize, b: usize) -> bool {
        let key = (a.min(b) as u32, a.max(b) as u32);
        self.candidates.binary_search(&key).is_ok()
    }

    /// Measures the run against labelled matching pairs (record indices).
    pub fn evaluate(&self, truth: &[(usize, usize)], threshold: f64) -> Evaluation {
        let predicted: Vec<(usize, usize)> = self
            .link_indices(threshold)
            .map(|i| {
                let (a, b) = self.candidates[i];
                (a as usize, b as usize)
            })
            .collect();
        let covered = truth
            .iter()
            .filter(|(a, b)| self.is_candidate(*a, *b))
            .count();
        let pred_clusters = self.clusters(threshold);
        let true_clusters = connected_components(self.n_records(), truth.iter().copied());
        Evaluation {
            threshold,
            blocking_recall: if truth.is_empty() {
                1.0
            } else {
                covered as f64 / truth.len() as f64
            },
            labelled_pairs: truth.len(),
            pairwise: pairwise_metrics(&predicted, truth),
            cluster_pairwise: cluster_pairwise(&pred_clusters, &true_clusters),
            bcubed: bcubed(&pred_clusters, &true_clusters),
        }
    }
}

#[cfg(test)]
mod tests;
