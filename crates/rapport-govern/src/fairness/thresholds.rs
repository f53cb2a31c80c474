//! Limits on the aggregate metrics and the violations a report has against them: the data a
//! scheduled audit turns into alerts. A limit on a metric the audit does not compute (an
//! error gap without labels, a regression limit on a classifier) is not checked.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::FairnessError;
use super::metrics::Metric;
use super::report::{Interval, Report};

/// Which groupings limits apply to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Each group column alone and their intersection.
    #[default]
    All,
    /// Each group column alone.
    Single,
    /// The intersection of all group columns (each column alone when there is one).
    Intersection,
}

/// Limits, written in TOML as, for example:
///
/// ```toml
/// max_demographic_parity_difference = 0.1
/// min_demographic_parity_ratio = 0.8
/// max_equalized_odds_difference = 0.1
/// scope = "all"            # or "single", "intersection"
/// use_interval = false     # true: only when the whole bootstrap interval is past the limit
/// ```
///
/// `max_*` limits apply to differences, `min_*` limits to ratios.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    pub max_demographic_parity_difference: Option<f64>,
    pub min_demographic_parity_ratio: Option<f64>,
    pub max_equalized_odds_difference: Option<f64>,
    pub min_equalized_odds_ratio: Option<f64>,
    pub max_equal_opportunity_difference: Option<f64>,
    pub min_equal_opportunity_ratio: Option<f64>,
    pub max_false_positive_rate_difference: Option<f64>,
    pub min_false_positive_rate_ratio: Option<f64>,
    pub max_mean_prediction_difference: Option<f64>,
    pub min_mean_prediction_ratio: Option<f64>,
    pub max_mean_absolute_error_difference: Option<f64>,
    pub min_mean_absolute_error_ratio: Option<f64>,
    pub max_root_mean_squared_error_difference: Option<f64>,
    pub min_root_mean_squared_error_ratio: Option<f64>,
    pub scope: Scope,
    /// Compare the end of the bootstrap interval nearest to fair instead of the point value,
    /// so a violation means the whole interval is past the limit. Without an interval the
    /// point value is compared.
    pub use_interval: bool,
}

impl Thresholds {
    /// Parses and checks limits from TOML; unknown keys are errors.
    pub fn from_toml_str(text: &str) -> Result<Thresholds, FairnessError> {
        let t: Thresholds = toml::from_str(text)?;
        t.validate()?;
        Ok(t)
    }

    /// Every set limit with its metric.
    pub fn limits(&self) -> Vec<(Metric, f64)> {
        let all = [
            self.max_demographic_parity_difference,
            self.min_demographic_parity_ratio,
            self.max_equalized_odds_difference,
            self.min_equalized_odds_ratio,
            self.max_equal_opportunity_difference,
            self.min_equal_opportunity_ratio,
            self.max_false_positive_rate_difference,
            self.min_false_positive_rate_ratio,
            self.max_mean_prediction_difference,
            self.min_mean_prediction_ratio,
            self.max_mean_absolute_error_difference,
            self.min_mean_absolute_error_ratio,
            self.max_root_mean_squared_error_difference,
            self.min_root_mean_squared_error_ratio,
        ];
        Metric::ALL
            .iter()
            .zip(all)
            .filter_map(|(m, l)| l.map(|l| (*m, l)))
            .collect()
    }

    /// Reports every out-of-range limit at once.
    pub fn validate(&self) -> Result<(), FairnessError> {
        let mut problems = Vec::new();
        for (m, l) in self.limits() {
            let key = if m.is_ratio() { "min_" } else { "max_" };
            if !l.is_finite() {
                problems.push(format!("{key}{} must be a number", m.as_str()));
            } else if m.is_ratio() && !(0.0..=1.0).contains(&l) {
                problems.push(format!("{key}{} = {l} is not between 0 and 1", m.as_str()));
            } else if l < 0.0 {
                problems.push(format!("{key}{} = {l} is negative", m.as_str()));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(FairnessError::InvalidThresholds(problems))
        }
    }

    /// The violations of a report, in report order.
    pub fn check(&self, report: &Report) -> Vec<Violation> {
        let limits = self.limits();
        let mut out = Vec::new();
        for g in &report.groupings {
            let is_intersection = g.columns.len() == report.columns.groups.len();
            let in_scope = match self.scope {
                Scope::All => true,
                Scope::Single => g.columns.len() == 1,
                Scope::Intersection => is_intersection,
            };
            if !in_scope {
                continue;
            }
            for o in &g.outcomes {
                for a in o.aggregates() {
                    let Some(&(_, limit)) = limits.iter().find(|(m, _)| *m == a.metric) else {
                        continue;
                    };
                    let Some(value) = a.value else { continue };
                    let compared = match (self.use_interval, a.interval) {
                        (true, Some(i)) if a.metric.is_ratio() => i.high,
                        (true, Some(i)) => i.low,
                        _ => value,
                    };
                    let violated = if a.metric.is_ratio() {
                        compared < limit
                    } else {
                        compared > limit
                    };
                    if violated {
                        out.push(Violation {
                            metric: a.metric,
                            grouping: g.columns.clone(),
                            class: o.class().map(str::to_owned),
                            value,
                            limit,
                            interval: a.interval,
                        });
                    }
                }
            }
        }
        out
    }
}

/// A metric past its limit in one grouping (and class).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub metric: Metric,
    /// The group columns of the grouping.
    pub grouping: Vec<String>,
    /// The class, for classification.
    pub class: Option<String>,
    pub value: f64,
    pub limit: f64,
    pub interval: Option<Interval>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} by {}",
            self.metric.as_str(),
            self.grouping.join(" × ")
        )?;
        if let Some(c) = &self.class {
            write!(f, " (class {c})")?;
        }
        let side = if self.metric.is_ratio() {
            "below the minimum"
        } else {
            "above the maximum"
        };
        write!(f, " is {:.4}, {side} {}", self.value, self.limit)?;
        if let Some(i) = self.interval {
            write!(f, " (interval {:.4} to {:.4})", i.low, i.high)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_from_toml_and_are_checked_together() {
        let t = Thresholds::from_toml_str(
            "max_demographic_parity_difference = 0.1\nmin_equalized_odds_ratio = 0.8\n",
        )
        .unwrap();
        assert_eq!(
            t.limits(),
            vec![
                (Metric::DemographicParityDifference, 0.1),
                (Metric::EqualizedOddsRatio, 0.8)
            ]
        );
        let e = Thresholds::from_toml_str(
            "min_demographic_parity_ratio = 1.5\nmax_equalized_odds_difference = -0.1\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid thresholds: min_demographic_parity_ratio = 1.5 is not between 0 and 1; \
             max_equalized_odds_difference = -0.1 is negative"
        );
        let e = Thresholds::from_toml_str("max_parity = 0.1\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `max_parity`"), "{e}");
    }
}
