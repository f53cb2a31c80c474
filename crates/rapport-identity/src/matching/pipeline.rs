//! Training and scoring in one run: block, estimate u from random pairs, estimate m and the
//! prior by EM on the candidate pairs, score every candidate pair, cluster, and evaluate.

use std::collections::HashMap;

use serde::Serialize;

use super::blocking::{candidate_pairs, MatchMode, Universe};
use super::cluster::connected_components;
use super::data::Dataset;
use super::eval::{bcubed, cluster_pairwise, pairwise_metrics, Evaluation};
use super::model::{
    estimate_u, expectation_maximisation, pair_levels, prior_m, probability_from_weight,
    term_frequencies, EmParams, PreparedTable, TrainedModel,
};
use super::settings::MatchSettings;
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
}

/// One comparison's part in a pair's score, for explanations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldContribution {
    pub column: String,
    pub level: String,
    pub log2_bayes_factor: f64,
}

/// Which table a record came from and its id there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RecordRef<'a> {
    /// `None` in dedupe mode; `Some("left" | "right")` in link mode.
    pub side: Option<&'static str>,
    pub id: &'a str,
}

/// Result of training and scoring.
#[derive(Debug, Clone, Serialize)]
pub struct MatchRun {
    pub mode: MatchMode,
    pub settings: MatchSettings,
    pub model: TrainedModel,
    /// Every candidate pair, scored, in candidate order.
    pub pairs: Vec<ScoredPair>,
    pub total_pairs: u64,
    ids: Vec<String>,
    n_left: usize,
}

/// Deduplicates one dataset.
pub fn dedupe_dataset(data: &Dataset, settings: &MatchSettings) -> Result<MatchRun, IdentityError> {
    let universe = Universe {
        mode: MatchMode::Dedupe,
        n: data.len(),
        n_left: data.len(),
    };
    let cols: HashMap<&str, Vec<Option<&str>>> = settings_columns(settings)
        .into_iter()
        .map(|c| (c, data.column_values(c)))
        .collect();
    let ids = data.records().iter().map(|r| r.id.clone()).collect();
    run(universe, settings, data.columns(), &cols, ids)
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
    let cols: HashMap<&str, Vec<Option<&str>>> = settings_columns(settings)
        .into_iter()
        .map(|c| {
            let mut v = left.column_values(c);
            v.extend(right.column_values(c));
            (c, v)
        })
        .collect();
    // A column must exist in at least one table; missing on one side reads as null.
    let mut columns: Vec<String> = left.columns().to_vec();
    columns.extend(
        right
            .columns()
            .iter()
            .filter(|c| !left.columns().contains(c))
            .cloned(),
    );
    let ids = left
        .records()
        .iter()
        .chain(right.records())
        .map(|r| r.id.clone())
        .collect();
    run(universe, settings, &columns, &cols, ids)
}

fn settings_columns(settings: &MatchSettings) -> Vec<&str> {
    let mut cols: Vec<&str> = settings
        .comparisons
        .iter()
        .map(|c| c.column.as_str())
        .collect();
    for rule in &settings.blocking_rules {
        for spec in rule {
            let col = spec
                .rsplit_once(':')
                .map_or(spec.as_str(), |(c, _)| c)
                .trim();
            if !cols.contains(&col) {
                cols.push(col);
            }
        }
    }
    cols
}

fn run(
    universe: Universe,
    settings: &MatchSettings,
    columns: &[String],
    cols: &HashMap<&str, Vec<Option<&str>>>,
    ids: Vec<String>,
) -> Result<MatchRun, IdentityError> {
    let rules = settings.validate(columns)?;
    if universe.total_pairs() == 0 {
        return Err(IdentityError::EmptyInput(
            "need at least two records (one per table when linking)".into(),
        ));
    }
    let value = |r: usize, c: &str| cols.get(c).and_then(|v| v[r]);
    let table = PreparedTable::new(settings, universe.n, &value);
    let candidates = candidate_pairs(
        universe,
        &rules,
        &value,
        settings.training.max_candidate_pairs,
    )?;
    let (u, u_pairs) = estimate_u(settings, &table, universe);

    let mut patterns: HashMap<Vec<u8>, f64> = HashMap::new();
    let mut all_levels: Vec<Vec<u8>> = Vec::with_capacity(candidates.len());
    let mut levels = Vec::new();
    for &(a, b) in &candidates {
        pair_levels(settings, &table, a as usize, b as usize, &mut levels);
        *patterns.entry(levels.clone()).or_insert(0.0) += 1.0;
        all_levels.push(levels.clone());
    }
    let patterns: Vec<(Vec<u8>, f64)> = patterns.into_iter().collect();
    let init = EmParams {
        lambda: 0.1,
        m: settings
            .comparisons
            .iter()
            .map(|c| prior_m(c.levels.len()))
            .collect(),
        u: u.clone(),
    };
    let t = &settings.training;
    let em = if patterns.is_empty() {
        None
    } else {
        // u is re-estimated inside the candidate set (non-matches there agree more often than
        // random pairs because of blocking), so m is not inflated by that agreement. Scoring
        // uses the u of random pairs, the population the prior refers to.
        Some(expectation_maximisation(
            &patterns,
            init.clone(),
            false,
            t.em_max_iterations,
            t.em_tolerance,
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
    // Matches are assumed to lie within the candidates, so the prior over all eligible pairs
    // is the expected number of matches among candidates over the number of eligible pairs.
    let lambda = lambda_c * candidates.len() as f64 / universe.total_pairs() as f64;
    let params = EmParams {
        lambda: lambda_c,
        m,
        u,
    };
    let tf = term_frequencies(settings, &table);
    let model = TrainedModel::from_params(
        settings,
        &params,
        lambda,
        (iterations, converged),
        u_pairs,
        tf,
    );
    let prior = model.prior_weight();
    let pairs = candidates
        .iter()
        .zip(all_levels)
        .map(|(&(a, b), levels)| {
            let contributions: Vec<f64> = levels
                .iter()
                .enumerate()
                .map(|(c, &l)| {
                    let v = table.columns[c][a as usize].text.as_deref();
                    model.contribution(c, l, v)
                })
                .collect();
            let match_weight = prior + contributions.iter().sum::<f64>();
            ScoredPair {
                left: a as usize,
                right: b as usize,
                match_weight,
                match_probability: probability_from_weight(match_weight),
                levels,
                contributions,
            }
        })
        .collect();
    Ok(MatchRun {
        mode: universe.mode,
        settings: settings.clone(),
        model,
        pairs,
        total_pairs: universe.total_pairs(),
        ids,
        n_left: universe.n_left,
    })
}

impl MatchRun {
    /// Number of records (both tables in link mode).
    pub fn n_records(&self) -> usize {
        self.ids.len()
    }

    /// Number of records in the left table (all records in dedupe mode).
    pub fn n_left(&self) -> usize {
        self.n_left
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
            id: self.ids.get(index).map_or("", String::as_str),
        }
    }

    /// The index of a record by side (link mode) and id.
    pub fn index_of(&self, side: Option<&str>, id: &str) -> Option<usize> {
        let range = match (self.mode, side) {
            (MatchMode::Link, Some("right")) => self.n_left..self.ids.len(),
            (MatchMode::Link, _) => 0..self.n_left,
            (MatchMode::Dedupe, _) => 0..self.ids.len(),
        };
        range.into_iter().find(|&i| self.ids[i] == id)
    }

    /// Why a pair scored as it did, comparison by comparison.
    pub fn explain(&self, pair: &ScoredPair) -> Vec<FieldContribution> {
        self.model
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
            .collect()
    }

    /// Pairs at or above a probability threshold.
    pub fn links(&self, threshold: f64) -> impl Iterator<Item = &ScoredPair> {
        self.pairs
            .iter()
            .filter(move |p| p.match_probability >= threshold)
    }

    /// A cluster number per record: connected components of the links at `threshold`.
    pub fn clusters(&self, threshold: f64) -> Vec<usize> {
        connected_components(
            self.n_records(),
            self.links(threshold).map(|p| (p.left, p.right)),
        )
    }

    /// Measures the run against labelled matching pairs (record indices).
    pub fn evaluate(&self, truth: &[(usize, usize)], threshold: f64) -> Evaluation {
        let predicted: Vec<(usize, usize)> =
            self.links(threshold).map(|p| (p.left, p.right)).collect();
        let candidates: std::collections::HashSet<(usize, usize)> =
            self.pairs.iter().map(|p| (p.left, p.right)).collect();
        let covered = truth
            .iter()
            .filter(|(a, b)| candidates.contains(&((*a).min(*b), (*a).max(*b))))
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
