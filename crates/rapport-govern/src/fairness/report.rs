//! The audit report: per grouping (each group column alone, then their intersection), per
//! group and overall rates or errors, and the aggregate disparity metrics with optional
//! bootstrap intervals. Serializes to the JSON the CLI prints and an API can return, and reads
//! back from it (stored reports).

use serde::{Deserialize, Serialize};

use super::data::Columns;
use super::metrics::Metric;
use super::task::TaskKind;
use super::BootstrapOptions;

/// The result of [`crate::fairness::Dataset::audit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub task: TaskKind,
    /// Rows audited.
    pub rows: usize,
    pub columns: Columns,
    /// Classification: the classes, sorted (binary: the negative, then the positive one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// Binary: the positive outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positive: Option<String>,
    /// Each group column alone, then (with two or more) their full intersection.
    pub groupings: Vec<GroupingReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapOptions>,
    /// Things a reader should know to read the numbers right (zero denominators, empty
    /// intersections).
    pub notes: Vec<String>,
}

impl Report {
    /// The grouping over exactly these columns, in this order.
    pub fn grouping(&self, columns: &[&str]) -> Option<&GroupingReport> {
        self.groupings.iter().find(|g| {
            g.columns
                .iter()
                .map(String::as_str)
                .eq(columns.iter().copied())
        })
    }
}

/// One grouping of the rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupingReport {
    /// The group columns intersected (one for a single column).
    pub columns: Vec<String>,
    /// All rows together.
    pub overall: GroupSummary,
    /// Groups with at least one row, in value order.
    pub groups: Vec<GroupSummary>,
    /// Combinations of values no row has (listed when there are at most 10,000
    /// combinations). Fairlearn shows them as NaN rows; they count in no aggregate.
    pub empty_groups: Vec<Vec<String>>,
    pub empty_group_count: u64,
    /// Binary: the positive class. Multiclass: every class, one-vs-rest. Regression: one.
    pub outcomes: Vec<Outcome>,
}

impl GroupingReport {
    /// The outcome of a class, or the regression outcome with `None`.
    pub fn outcome(&self, class: Option<&str>) -> Option<&Outcome> {
        self.outcomes.iter().find(|o| o.class() == class)
    }

    /// A short name: the columns joined with " × ".
    pub fn name(&self) -> String {
        self.columns.join(" × ")
    }
}

/// Size, accuracy and mean score of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// The group's values, one per column of the grouping (empty for overall).
    pub group: Vec<String>,
    pub count: u64,
    /// Classification with labels: the share of rows whose prediction equals the label.
    pub accuracy: Option<f64>,
    /// With a score column: the mean score.
    pub mean_score: Option<f64>,
}

/// What is measured for one outcome across the groups of a grouping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Class(ClassOutcome),
    Regression(RegressionOutcome),
}

impl Outcome {
    pub fn class(&self) -> Option<&str> {
        match self {
            Outcome::Class(c) => Some(&c.class),
            Outcome::Regression(_) => None,
        }
    }

    pub fn aggregates(&self) -> &[Aggregate] {
        match self {
            Outcome::Class(c) => &c.aggregates,
            Outcome::Regression(r) => &r.aggregates,
        }
    }

    pub(crate) fn aggregates_mut(&mut self) -> &mut [Aggregate] {
        match self {
            Outcome::Class(c) => &mut c.aggregates,
            Outcome::Regression(r) => &mut r.aggregates,
        }
    }

    pub fn aggregate(&self, metric: Metric) -> Option<&Aggregate> {
        self.aggregates().iter().find(|a| a.metric == metric)
    }
}

/// One class, treated as "this class" against "any other" (for binary, the positive class).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassOutcome {
    pub class: String,
    pub overall: ClassRow,
    pub groups: Vec<ClassRow>,
    pub aggregates: Vec<Aggregate>,
}

/// Selection and error rates of one class in one group. Label-based fields are `None`
/// without labels. Rates over an empty denominator are 0, as in Fairlearn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassRow {
    pub group: Vec<String>,
    pub count: u64,
    /// Rows predicted as the class.
    pub selected: u64,
    pub selection_rate: f64,
    /// Rows labelled as the class.
    pub positives: Option<u64>,
    pub negatives: Option<u64>,
    pub true_positives: Option<u64>,
    pub false_positives: Option<u64>,
    pub true_negatives: Option<u64>,
    pub false_negatives: Option<u64>,
    pub true_positive_rate: Option<f64>,
    pub false_positive_rate: Option<f64>,
    pub true_negative_rate: Option<f64>,
    pub false_negative_rate: Option<f64>,
    /// Accuracy of "this class or not".
    pub accuracy: Option<f64>,
}

/// A regression across groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionOutcome {
    pub overall: RegressionRow,
    pub groups: Vec<RegressionRow>,
    pub aggregates: Vec<Aggregate>,
}

/// Means and errors of one group; error fields are `None` without labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionRow {
    pub group: Vec<String>,
    pub count: u64,
    pub mean_prediction: f64,
    pub mean_label: Option<f64>,
    /// Mean of prediction minus label: positive when the group is over-predicted.
    pub mean_error: Option<f64>,
    pub mean_absolute_error: Option<f64>,
    pub root_mean_squared_error: Option<f64>,
}

/// One aggregate metric; `value` is `None` when undefined (a ratio over a largest value of 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub metric: Metric,
    pub value: Option<f64>,
    /// With bootstrapping: the percentile interval over the resamples where it is defined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
}

/// A bootstrap percentile interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    /// Resamples in which the metric was defined (the interval is over these).
    pub resamples: usize,
}
