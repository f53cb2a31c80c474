//! Per-group rates and the aggregate disparity metrics, as Fairlearn defines them.

use serde::{Deserialize, Serialize};

use super::count::{Counts, Sums};

/// An aggregate disparity metric. Each is defined as in Fairlearn's `fairlearn.metrics`
/// (version 0.15, `method="between_groups"`):
///
/// - a rate whose denominator is zero is **0**, not undefined: Fairlearn computes TPR, FPR,
///   TNR and FNR from scikit-learn's `confusion_matrix(normalize="true")`, which turns 0/0
///   into 0. A group with no positive labels therefore has TPR 0 and FNR 0, and one with no
///   negative labels has FPR 0 and TNR 0. The report notes every such group;
/// - multiclass metrics are those of each class against the rest (Fairlearn itself takes
///   binary outcomes only);
/// - a **difference** is the largest group value minus the smallest;
/// - a **ratio** is the smallest group value over the largest; when the largest is 0 it is
///   undefined (`None`; NaN in Fairlearn). For quantities that can be negative (regression
///   means) the ratio is only meaningful when all values are positive;
/// - intersections with no rows are left out of every aggregate (Fairlearn lists them with
///   NaN metrics and pandas skips NaN in `min` and `max`);
/// - the **equalized odds difference** is the larger of the TPR and FPR differences; the
///   **equalized odds ratio** the smaller of the TPR and FPR ratios, with Fairlearn's
///   treatment of an undefined ratio, which comes from Python's built-in `min` over
///   `[tpr_ratio, fpr_ratio]`: an undefined TPR ratio makes the result undefined, an undefined
///   FPR ratio is passed over (the result is the TPR ratio);
/// - the **equal opportunity** difference and ratio are those of the TPR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    DemographicParityDifference,
    DemographicParityRatio,
    EqualizedOddsDifference,
    EqualizedOddsRatio,
    EqualOpportunityDifference,
    EqualOpportunityRatio,
    FalsePositiveRateDifference,
    FalsePositiveRateRatio,
    MeanPredictionDifference,
    MeanPredictionRatio,
    MeanAbsoluteErrorDifference,
    MeanAbsoluteErrorRatio,
    RootMeanSquaredErrorDifference,
    RootMeanSquaredErrorRatio,
}

impl Metric {
    pub const ALL: [Metric; 14] = [
        Metric::DemographicParityDifference,
        Metric::DemographicParityRatio,
        Metric::EqualizedOddsDifference,
        Metric::EqualizedOddsRatio,
        Metric::EqualOpportunityDifference,
        Metric::EqualOpportunityRatio,
        Metric::FalsePositiveRateDifference,
        Metric::FalsePositiveRateRatio,
        Metric::MeanPredictionDifference,
        Metric::MeanPredictionRatio,
        Metric::MeanAbsoluteErrorDifference,
        Metric::MeanAbsoluteErrorRatio,
        Metric::RootMeanSquaredErrorDifference,
        Metric::RootMeanSquaredErrorRatio,
    ];

    /// The snake_case name, as in JSON and Fairlearn.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::DemographicParityDifference => "demographic_parity_difference",
            Metric::DemographicParityRatio => "demographic_parity_ratio",
            Metric::EqualizedOddsDifference => "equalized_odds_difference",
            Metric::EqualizedOddsRatio => "equalized_odds_ratio",
            Metric::EqualOpportunityDifference => "equal_opportunity_difference",
            Metric::EqualOpportunityRatio => "equal_opportunity_ratio",
            Metric::FalsePositiveRateDifference => "false_positive_rate_difference",
            Metric::FalsePositiveRateRatio => "false_positive_rate_ratio",
            Metric::MeanPredictionDifference => "mean_prediction_difference",
            Metric::MeanPredictionRatio => "mean_prediction_ratio",
            Metric::MeanAbsoluteErrorDifference => "mean_absolute_error_difference",
            Metric::MeanAbsoluteErrorRatio => "mean_absolute_error_ratio",
            Metric::RootMeanSquaredErrorDifference => "root_mean_squared_error_difference",
            Metric::RootMeanSquaredErrorRatio => "root_mean_squared_error_ratio",
        }
    }

    /// Ratios are better near 1, differences near 0.
    pub fn is_ratio(self) -> bool {
        self.as_str().ends_with("_ratio")
    }

    /// Words for tables: the measure without "difference" or "ratio".
    pub fn measure(self) -> &'static str {
        match self {
            Metric::DemographicParityDifference | Metric::DemographicParityRatio => {
                "demographic parity"
            }
            Metric::EqualizedOddsDifference | Metric::EqualizedOddsRatio => "equalized odds",
            Metric::EqualOpportunityDifference | Metric::EqualOpportunityRatio => {
                "equal opportunity (TPR)"
            }
            Metric::FalsePositiveRateDifference | Metric::FalsePositiveRateRatio => "FPR",
            Metric::MeanPredictionDifference | Metric::MeanPredictionRatio => "mean prediction",
            Metric::MeanAbsoluteErrorDifference | Metric::MeanAbsoluteErrorRatio => "MAE",
            Metric::RootMeanSquaredErrorDifference | Metric::RootMeanSquaredErrorRatio => "RMSE",
        }
    }
}

/// A rate with Fairlearn's zero-denominator rule: 0/0 is 0.
pub(crate) fn rate(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// One class (one-vs-rest) in one group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ClassCounts {
    pub n: u64,
    pub selected: u64,
    /// Rows whose label is the class; `None` without labels.
    pub positives: Option<u64>,
    pub true_positives: Option<u64>,
}

impl ClassCounts {
    pub fn of(counts: &Counts, group: usize, class: usize) -> ClassCounts {
        let Counts::Classes { classes, width, n } = counts else {
            unreachable!("class counts of a regression")
        };
        let (c, w) = (*classes, *width);
        let block = &n[group * c * w..(group + 1) * c * w];
        let total = block.iter().sum();
        let selected = block[class * w..(class + 1) * w].iter().sum();
        if w == 1 {
            return ClassCounts {
                n: total,
                selected,
                positives: None,
                true_positives: None,
            };
        }
        let positives = (0..c).map(|p| block[p * w + class]).sum();
        ClassCounts {
            n: total,
            selected,
            positives: Some(positives),
            true_positives: Some(block[class * w + class]),
        }
    }

    pub fn selection_rate(&self) -> f64 {
        rate(self.selected, self.n)
    }

    /// (TP, FP, TN, FN), with labels.
    pub fn confusion(&self) -> Option<(u64, u64, u64, u64)> {
        let (pos, tp) = (self.positives?, self.true_positives?);
        let fp = self.selected - tp;
        let fn_ = pos - tp;
        let tn = self.n - self.selected - fn_;
        Some((tp, fp, tn, fn_))
    }

    pub fn tpr(&self) -> Option<f64> {
        self.confusion().map(|(tp, _, _, fn_)| rate(tp, tp + fn_))
    }

    pub fn fpr(&self) -> Option<f64> {
        self.confusion().map(|(_, fp, tn, _)| rate(fp, fp + tn))
    }
}

/// Overall accuracy of a group over all classes (the share of rows predicted right).
pub(crate) fn group_accuracy(counts: &Counts, group: usize) -> Option<f64> {
    let Counts::Classes { classes, width, n } = counts else {
        return None;
    };
    if width == &1 {
        return None;
    }
    let (c, w) = (*classes, *width);
    let block = &n[group * c * w..(group + 1) * c * w];
    let right: u64 = (0..c).map(|k| block[k * w + k]).sum();
    Some(rate(right, block.iter().sum()))
}

/// Means of one regression group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RegressionMeans {
    pub n: u64,
    pub mean_prediction: f64,
    pub mean_label: Option<f64>,
    pub mean_error: Option<f64>,
    pub mae: Option<f64>,
    pub rmse: Option<f64>,
}

impl RegressionMeans {
    pub fn of(s: &Sums, labelled: bool) -> RegressionMeans {
        let n = s.n as f64;
        let with = |x: f64| if labelled { Some(x) } else { None };
        RegressionMeans {
            n: s.n,
            mean_prediction: s.pred / n,
            mean_label: with(s.label / n),
            mean_error: with(s.err / n),
            mae: with(s.abs_err / n),
            rmse: with((s.sq_err / n).sqrt()),
        }
    }
}

/// The largest-minus-smallest difference and smallest-over-largest ratio of the values;
/// `None` when there are no values.
pub(crate) fn spread(values: impl IntoIterator<Item = f64>) -> Option<(f64, Option<f64>)> {
    let mut it = values.into_iter();
    let first = it.next()?;
    let (lo, hi) = it.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let ratio = lo / hi;
    Some((hi - lo, (hi != 0.0 && ratio.is_finite()).then_some(ratio)))
}

fn push_spread(
    out: &mut Vec<(Metric, Option<f64>)>,
    d: Metric,
    r: Metric,
    s: Option<(f64, Option<f64>)>,
) {
    out.push((d, s.map(|x| x.0)));
    out.push((r, s.and_then(|x| x.1)));
}

/// The aggregates of an outcome (a class index, or 0 for a regression) over the groups of a
/// grouping.
pub(crate) fn aggregates(
    counts: &Counts,
    outcome: usize,
    labelled: bool,
) -> Vec<(Metric, Option<f64>)> {
    match counts {
        Counts::Classes { .. } => class_aggregates(counts, outcome),
        Counts::Sums(_) => regression_aggregates(counts, labelled),
    }
}

/// The aggregates of one class (one-vs-rest) over the groups of a grouping; groups without
/// rows are left out.
pub(crate) fn class_aggregates(counts: &Counts, class: usize) -> Vec<(Metric, Option<f64>)> {
    let groups: Vec<ClassCounts> = (0..counts.len())
        .map(|g| ClassCounts::of(counts, g, class))
        .filter(|c| c.n > 0)
        .collect();
    let mut out = Vec::with_capacity(8);
    let dp = spread(groups.iter().map(ClassCounts::selection_rate));
    push_spread(
        &mut out,
        Metric::DemographicParityDifference,
        Metric::DemographicParityRatio,
        dp,
    );
    if groups.first().is_some_and(|g| g.positives.is_some()) {
        let tpr = spread(groups.iter().filter_map(ClassCounts::tpr));
        let fpr = spread(groups.iter().filter_map(ClassCounts::fpr));
        let eo_difference = match (tpr, fpr) {
            (Some((t, _)), Some((f, _))) => Some(t.max(f)),
            _ => None,
        };
        // Fairlearn: min([tpr_ratio, fpr_ratio]) in Python, where a NaN first argument wins
        // and a NaN second argument loses.
        let eo_ratio = match (tpr.and_then(|x| x.1), fpr.and_then(|x| x.1)) {
            (None, _) => None,
            (Some(t), None) => Some(t),
            (Some(t), Some(f)) => Some(t.min(f)),
        };
        out.push((Metric::EqualizedOddsDifference, eo_difference));
        out.push((Metric::EqualizedOddsRatio, eo_ratio));
        push_spread(
            &mut out,
            Metric::EqualOpportunityDifference,
            Metric::EqualOpportunityRatio,
            tpr,
        );
        push_spread(
            &mut out,
            Metric::FalsePositiveRateDifference,
            Metric::FalsePositiveRateRatio,
            fpr,
        );
    }
    out
}

/// The aggregates of a regression over the groups of a grouping.
pub(crate) fn regression_aggregates(counts: &Counts, labelled: bool) -> Vec<(Metric, Option<f64>)> {
    let Counts::Sums(sums) = counts else {
        unreachable!("regression aggregates of classes")
    };
    let groups: Vec<RegressionMeans> = sums
        .iter()
        .filter(|s| s.n > 0)
        .map(|s| RegressionMeans::of(s, labelled))
        .collect();
    let mut out = Vec::with_capacity(6);
    push_spread(
        &mut out,
        Metric::MeanPredictionDifference,
        Metric::MeanPredictionRatio,
        spread(groups.iter().map(|g| g.mean_prediction)),
    );
    if labelled {
        push_spread(
            &mut out,
            Metric::MeanAbsoluteErrorDifference,
            Metric::MeanAbsoluteErrorRatio,
            spread(groups.iter().filter_map(|g| g.mae)),
        );
        push_spread(
            &mut out,
            Metric::RootMeanSquaredErrorDifference,
            Metric::RootMeanSquaredErrorRatio,
            spread(groups.iter().filter_map(|g| g.rmse)),
        );
    }
    out
}

/// The `q` quantile of sorted values by linear interpolation, computed as numpy's default
/// `numpy.quantile` does (which Fairlearn's bootstrap uses).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    assert!(n > 0, "quantile of nothing");
    let h = (n - 1) as f64 * q;
    let below = h.floor();
    let i = (below as usize).min(n - 1);
    let t = h - below;
    let a = sorted[i];
    let b = sorted[(i + 1).min(n - 1)];
    let d = b - a;
    if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_denominators_give_zero_rates() {
        assert_eq!(rate(0, 0), 0.0);
        assert_eq!(rate(1, 4), 0.25);
    }

    #[test]
    fn spreads_follow_fairlearn() {
        assert_eq!(spread([0.2, 0.5, 0.4]), Some((0.3, Some(0.4))));
        assert_eq!(spread([0.0, 0.0]), Some((0.0, None)));
        assert_eq!(spread([0.7]), Some((0.0, Some(1.0))));
        assert_eq!(spread(std::iter::empty()), None);
    }

    #[test]
    fn quantiles_interpolate_linearly() {
        let v = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 8.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert!((quantile(&v, 0.9) - 6.8).abs() < 1e-12);
        assert_eq!(quantile(&[5.0], 0.3), 5.0);
    }

    /// numpy's quantiles of a sample, recorded in the Fairlearn fixture.
    #[test]
    fn quantiles_equal_numpys() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/fairness/expected.json"))
                .unwrap();
        let q = &fixture["quantiles"];
        let floats = |v: &serde_json::Value| -> Vec<f64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let mut values = floats(&q["values"]);
        values.sort_by(f64::total_cmp);
        for (p, want) in floats(&q["q"]).into_iter().zip(floats(&q["expected"])) {
            assert!((quantile(&values, p) - want).abs() < 1e-12, "q {p}");
        }
    }

    #[test]
    fn metric_names_are_their_serde_names() {
        for m in Metric::ALL {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
            assert_eq!(m.is_ratio(), !m.as_str().ends_with("difference"));
        }
    }
}
