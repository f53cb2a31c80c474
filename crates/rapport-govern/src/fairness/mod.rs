//! Fairness audits of decisions and model predictions: how outcomes and errors differ between
//! groups of people, by each sensitive column and by their intersection.
//!
//! Rows come from anywhere: a CSV file ([`read_csv`]), stored decisions, or a request body
//! ([`Row`], [`DatasetBuilder`]). Each row has one value per group column, a prediction (a
//! class or a number), and optionally the true outcome (label) and a model score.
//! [`Dataset::audit`] computes, per group and per intersection of groups:
//!
//! - **binary** tasks: count, selection rate, TPR, FPR, TNR, FNR, accuracy, mean score, and
//!   the demographic parity, equalized odds, equal opportunity and FPR differences and ratios;
//! - **multiclass** tasks: the same for every class, one-vs-rest, plus overall accuracy;
//! - **regression**: mean prediction, mean label, mean error, MAE and RMSE, with the
//!   differences and ratios of mean prediction, MAE and RMSE between groups;
//!
//! optionally with seeded bootstrap intervals ([`BootstrapOptions`]). [`Thresholds`] turn a
//! report into [`Violation`]s for alerting.
//!
//! The numbers equal Fairlearn's (`fairlearn.metrics`, 0.15): `tests/fairness.rs` checks them
//! to 1e-9 against a fixture Fairlearn produced. [`Metric`] documents how Fairlearn treats
//! zero denominators, empty intersections and undefined ratios, which this module follows.
//!
//! Nothing here does I/O beyond reading the reader handed to [`read_csv`]; storing reports,
//! scheduling and alert delivery belong to the callers.

mod audit;
mod bootstrap;
mod count;
mod csv;
mod data;
mod error;
mod metrics;
mod render;
mod report;
pub mod scheduled;
mod task;
mod thresholds;

use serde::{Deserialize, Serialize};

pub use self::csv::read_csv;
pub use data::{Columns, Dataset, DatasetBuilder, Row, Value};
pub use error::FairnessError;
pub use metrics::Metric;
pub use report::{
    Aggregate, ClassOutcome, ClassRow, GroupSummary, GroupingReport, Interval, Outcome,
    RegressionOutcome, RegressionRow, Report,
};
pub use task::{TaskKind, MAX_CLASSES, MAX_INFERRED_CLASSES};
pub use thresholds::{Scope, Thresholds, Violation};

/// How to audit a dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditOptions {
    /// The task; inferred from the outcomes when absent (see [`TaskKind`]).
    pub task: Option<TaskKind>,
    /// Binary tasks: the positive outcome. Without it, outcomes within {0, 1} or {-1, 1}
    /// have positive 1 (Fairlearn's rule) and {true, false} has `true`; others must name it.
    pub positive: Option<Value>,
    /// Bootstrap intervals for the aggregates; none when absent.
    pub bootstrap: Option<BootstrapOptions>,
}

impl AuditOptions {
    /// Reports every out-of-range option at once.
    pub fn validate(&self) -> Result<(), FairnessError> {
        let mut problems = Vec::new();
        if let Some(b) = &self.bootstrap {
            if !(1..=BootstrapOptions::MAX_RESAMPLES).contains(&b.resamples) {
                problems.push(format!(
                    "bootstrap resamples must be between 1 and {}, not {}",
                    BootstrapOptions::MAX_RESAMPLES,
                    b.resamples
                ));
            }
            if !(b.confidence > 0.0 && b.confidence < 1.0) {
                problems.push(format!(
                    "bootstrap confidence must be between 0 and 1 (exclusive), not {}",
                    b.confidence
                ));
            }
            if b.threads == Some(0) {
                problems.push("bootstrap threads must be at least 1".to_owned());
            }
        }
        if let Some(Value::Number(x)) = &self.positive {
            if !x.is_finite() {
                problems.push(format!("the positive label {x} is not a finite number"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(FairnessError::InvalidOptions(problems))
        }
    }
}

/// Percentile bootstrap settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapOptions {
    /// Resamples drawn (each as many rows as the data, with replacement).
    pub resamples: usize,
    /// The seed; the same seed gives the same intervals.
    pub seed: u64,
    /// The interval's coverage, such as 0.95 for the 2.5th to 97.5th percentiles.
    pub confidence: f64,
    /// Threads to resample on; all available when absent. Results do not depend on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
}

impl BootstrapOptions {
    pub const MAX_RESAMPLES: usize = 100_000;
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        BootstrapOptions {
            resamples: 1000,
            seed: 0,
            confidence: 0.95,
            threads: None,
        }
    }
}

impl Dataset {
    /// Audits the dataset. Errors are about the data or the options (a third value in a
    /// binary task, text in a regression, an unnamed positive label).
    pub fn audit(&self, options: &AuditOptions) -> Result<Report, FairnessError> {
        audit::audit(self, options)
    }
}
