//! The entry points the CLI wraps: `rapport match dedupe` and `rapport match link`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::blocking::MatchMode;
use super::data::Dataset;
use super::eval::Evaluation;
use super::model::TrainedModel;
use super::output::{write_clusters, write_pairs};
use super::pipeline::{dedupe_dataset, link_datasets, MatchRun, Timings};
use super::settings::{infer_settings, MatchSettings};
use crate::csv_io::{read_dataset, read_labels, resolve_labels, write_pending, Labels};
use crate::error::IdentityError;

/// Arguments of a matching run, free of any CLI library.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchOptions {
    /// The column holding each record's unique id (the same name in both tables for link).
    pub id_column: String,
    /// TOML settings; when absent they are inferred from the data (see `settings_toml` in
    /// the report to save and edit them).
    pub settings: Option<PathBuf>,
    /// Match probability at or above which two records are linked and clustered.
    pub threshold: f64,
    pub pairs_out: Option<PathBuf>,
    pub clusters_out: Option<PathBuf>,
    /// Labels to evaluate against (id pairs, or `record_id,cluster_id` for dedupe).
    pub labels: Option<PathBuf>,
    /// Write pairs down to this probability (default: the threshold).
    pub pairs_min_probability: Option<f64>,
}

impl Default for MatchOptions {
    fn default() -> Self {
        Self {
            id_column: "id".into(),
            settings: None,
            threshold: 0.9,
            pairs_out: None,
            clusters_out: None,
            labels: None,
            pairs_min_probability: None,
        }
    }
}

impl MatchOptions {
    pub(crate) fn check(&self) -> Result<(), IdentityError> {
        let mut problems = Vec::new();
        if !(0.0..=1.0).contains(&self.threshold) {
            problems.push(format!("threshold {} is not in [0, 1]", self.threshold));
        }
        if let Some(p) = self.pairs_min_probability {
            if !(0.0..=1.0).contains(&p) {
                problems.push(format!("pairs_min_probability {p} is not in [0, 1]"));
            }
        }
        if self.id_column.trim().is_empty() {
            problems.push("id column is empty".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(IdentityError::InvalidSettings(problems))
        }
    }
}

/// What a run did, for printing or JSON.
#[derive(Debug, Clone, Serialize)]
pub struct MatchReport {
    pub mode: MatchMode,
    pub records_left: usize,
    /// Right-table records in link mode.
    pub records_right: Option<usize>,
    pub total_pairs: u64,
    pub candidate_pairs: usize,
    pub threshold: f64,
    pub links: usize,
    pub clusters: usize,
    pub multi_record_clusters: usize,
    pub settings_inferred: bool,
    pub settings_toml: String,
    pub model: TrainedModel,
    pub evaluation: Option<Evaluation>,
    pub pairs_written: Option<usize>,
    /// Time of each step of the run (reading files and writing outputs not included).
    pub timings: Timings,
    /// Candidate pairs per second over blocking, comparing and scoring.
    pub pairs_per_second: f64,
    /// Worker threads the run used.
    pub threads: usize,
    pub elapsed_ms: u128,
}

impl std::fmt::Display for MatchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let records = match self.records_right {
            Some(r) => format!("{} left + {} right", self.records_left, r),
            None => self.records_left.to_string(),
        };
        writeln!(f, "mode: {:?}, records: {records}", self.mode)?;
        writeln!(
            f,
            "candidate pairs: {} of {} ({} settings)",
            self.candidate_pairs,
            self.total_pairs,
            if self.settings_inferred {
                "inferred"
            } else {
                "given"
            }
        )?;
        writeln!(
            f,
            "prior match probability: {:.3e}; EM {} iterations{}",
            self.model.lambda,
            self.model.em_iterations,
            if self.model.em_converged {
                ""
            } else {
                " (not converged)"
            }
        )?;
        writeln!(
            f,
            "links at p >= {}: {}; clusters: {} ({} with more than one record)",
            self.threshold, self.links, self.clusters, self.multi_record_clusters
        )?;
        for c in &self.model.comparisons {
            let levels: Vec<String> = c
                .levels
                .iter()
                .skip(1)
                .map(|l| format!("{} {:+.2}", l.label, l.log2_bayes_factor))
                .collect();
            writeln!(f, "  {}: {}", c.column, levels.join(", "))?;
        }
        if let Some(e) = &self.evaluation {
            writeln!(
                f,
                "labels: {} pairs; blocking recall {:.3}",
                e.labelled_pairs, e.blocking_recall
            )?;
            let p = &e.pairwise.scores;
            writeln!(
                f,
                "pairwise precision {:.3} recall {:.3} F1 {:.3} (tp {}, fp {}, fn {})",
                p.precision,
                p.recall,
                p.f1,
                e.pairwise.true_positives,
                e.pairwise.false_positives,
                e.pairwise.false_negatives
            )?;
            writeln!(
                f,
                "B-cubed precision {:.3} recall {:.3} F1 {:.3}",
                e.bcubed.precision, e.bcubed.recall, e.bcubed.f1
            )?;
        }
        Ok(())
    }
}

pub(crate) fn load_settings(
    opts: &MatchOptions,
    datasets: &[&Dataset],
) -> Result<(MatchSettings, bool), IdentityError> {
    match &opts.settings {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| IdentityError::Io {
                path: path.display().to_string(),
                source: e,
            })?;
            Ok((MatchSettings::from_toml(&text)?, false))
        }
        None => Ok((infer_settings(datasets), true)),
    }
}

/// Deduplicates the records of one CSV file.
pub fn dedupe(input: &Path, opts: &MatchOptions) -> Result<MatchReport, IdentityError> {
    opts.check()?;
    let started = Instant::now();
    let data = read_dataset(input, &opts.id_column)?;
    let (settings, inferred) = load_settings(opts, &[&data])?;
    let run = dedupe_dataset(&data, &settings)?;
    let labels = opts.labels.as_deref().map(read_labels).transpose()?;
    finish(&run, opts, labels.as_ref(), inferred, started)
}

/// Links the records of two CSV files (only pairs across the files).
pub fn link(left: &Path, right: &Path, opts: &MatchOptions) -> Result<MatchReport, IdentityError> {
    opts.check()?;
    let started = Instant::now();
    let l = read_dataset(left, &opts.id_column)?;
    let r = read_dataset(right, &opts.id_column)?;
    let (settings, inferred) = load_settings(opts, &[&l, &r])?;
    let run = link_datasets(&l, &r, &settings)?;
    let labels = opts.labels.as_deref().map(read_labels).transpose()?;
    finish(&run, opts, labels.as_ref(), inferred, started)
}

/// Clusters, evaluates and writes the outputs of a finished run.
pub fn finish(
    run: &MatchRun,
    opts: &MatchOptions,
    labels: Option<&Labels>,
    settings_inferred: bool,
    started: Instant,
) -> Result<MatchReport, IdentityError> {
    let clusters = run.clusters(opts.threshold);
    let n_clusters = clusters.iter().max().map_or(0, |m| m + 1);
    let mut sizes = vec![0usize; n_clusters];
    for c in &clusters {
        sizes[*c] += 1;
    }
    let evaluation = labels
        .map(|l| resolve_labels(run, l).map(|truth| run.evaluate(&truth, opts.threshold)))
        .transpose()?;
    // Both outputs are written to temporary files first and put in place together, so a
    // failure leaves neither.
    // The two files are written at the same time.
    let mut pairs_written = None;
    let (pairs_file, clusters_file) = rayon::join(
        || {
            opts.pairs_out
                .as_deref()
                .map(|p| {
                    write_pending(p, |w| {
                        let min = opts.pairs_min_probability.unwrap_or(opts.threshold);
                        pairs_written = Some(write_pairs(&p.display().to_string(), w, run, min)?);
                        Ok(())
                    })
                })
                .transpose()
        },
        || {
            opts.clusters_out
                .as_deref()
                .map(|p| {
                    write_pending(p, |w| {
                        write_clusters(&p.display().to_string(), w, run, &clusters)?;
                        Ok(())
                    })
                })
                .transpose()
        },
    );
    let (pairs_file, clusters_file) = (pairs_file?, clusters_file?);
    for f in [pairs_file, clusters_file].into_iter().flatten() {
        f.commit()?;
    }
    let link = run.mode == MatchMode::Link;
    Ok(MatchReport {
        mode: run.mode,
        records_left: run.n_left(),
        records_right: link.then(|| run.n_records() - run.n_left()),
        total_pairs: run.total_pairs,
        candidate_pairs: run.n_pairs(),
        threshold: opts.threshold,
        links: run.link_indices(opts.threshold).count(),
        clusters: n_clusters,
        multi_record_clusters: sizes.iter().filter(|s| **s > 1).count(),
        settings_inferred,
        settings_toml: run.settings.to_toml(),
        model: run.model.clone(),
        evaluation,
        pairs_written,
        timings: run.timings.clone(),
        pairs_per_second: run.n_pairs() as f64 / (run.timings.predict_ms().max(1) as f64 / 1000.0),
        threads: rayon::current_num_threads(),
        elapsed_ms: started.elapsed().as_millis(),
    })
}
