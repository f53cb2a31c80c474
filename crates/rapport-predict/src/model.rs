//! The binary classifier as a product: training from a CSV table, the versioned model file
//! (task, feature schema, linear part, trees, calibration, how it was trained), scoring and
//! explaining.
//!
//! The model's margin (log-odds before calibration) is a linear part over per-feature terms
//! plus gradient-boosted trees grown from that linear margin; which depth of trees and how
//! many (possibly none) is chosen by cross-validation on the training rows ([`crate::select`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::boost::Binned;
use crate::calibrate::{fit_platt, sigmoid, Platt};
use crate::data::{encode, infer_schema, is_missing, Encoded, FeatureSpec, Gap, Table};
use crate::error::PredictError;
use crate::gbt::{BoostParams, Booster};
use crate::linear::Linear;
use crate::metrics;
use crate::select::{self, Problem, Selection};

/// What a model file says it is, checked before anything else is read.
pub const FORMAT: &str = "rapport-model";
/// The model file format this build writes. Version 2 added the linear part and the
/// cross-validation summary; version-1 files (trees only) still load.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest model file format this build reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
/// The only task so far.
pub const TASK_CLASSIFICATION: &str = "classification";
/// Name and version carried by every score.
pub const MODEL_NAME: &str = "rapport-gbt-classifier";

/// Fewest rows of each class a training file must have: enough for every cross-validation
/// fold to hold some of each out.
pub const MIN_ROWS_PER_CLASS: usize = 10;

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub label: String,
    pub id_column: Option<String>,
    /// The label value that means positive; inferred for 0/1, true/false, yes/no labels.
    pub positive: Option<String>,
    /// Share of rows (per class) each cross-validation fold holds out: the number of folds is
    /// its inverse, rounded (0.2: five folds), between 2 and 10.
    pub holdout: f64,
    pub params: BoostParams,
}

impl TrainOptions {
    pub fn new(label: &str) -> Self {
        TrainOptions {
            label: label.to_string(),
            id_column: None,
            positive: None,
            holdout: 0.2,
            params: BoostParams::default(),
        }
    }
}

/// How the model was trained, kept in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    pub rows: usize,
    pub positives: usize,
    /// Rows the stored model was fitted on (version 2: all of them).
    pub fit_rows: usize,
    /// Rows with a held-out prediction (version 2: all of them, each out of its fold).
    pub holdout_rows: usize,
    pub trees: usize,
    pub params: BoostParams,
    /// ROC-AUC of the held-out predictions (which also chose the model and the calibration,
    /// so it is optimistic; evaluate on a separate test file).
    pub holdout_roc_auc: Option<f64>,
    /// Whether Platt scaling was applied (it is skipped when it would reverse the ranking).
    pub calibrated: bool,
    /// What cross-validation chose (absent in version-1 files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
}

/// A trained binary classifier, as stored in a model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classifier {
    pub format: String,
    pub version: u32,
    pub task: String,
    pub model: String,
    pub label: String,
    pub positive_label: String,
    pub negative_label: String,
    pub id_column: Option<String>,
    pub features: Vec<FeatureSpec>,
    /// The linear part of the margin (absent in version-1 files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear: Option<Linear>,
    pub booster: Booster,
    pub calibration: Platt,
    pub training: TrainingSummary,
}

/// A label value read as a class: `Some(true)` positive, `Some(false)` negative.
fn label_class(
    values: &[String],
    positive: Option<&str>,
    column: &str,
) -> Result<String, PredictError> {
    let mut distinct: Vec<&String> = values.iter().collect();
    distinct.sort();
    distinct.dedup();
    let negative_words = ["0", "false", "no", "n", "f", "-1"];
    let positive_words = ["1", "true", "yes", "y", "t"];
    let norm = |v: &str| {
        let l = v.to_ascii_lowercase();
        match l.parse::<f64>() {
            Ok(0.0) => "0".to_string(),
            Ok(1.0) => "1".to_string(),
            Ok(-1.0) => "-1".to_string(),
            _ => l,
        }
    };
    if let Some(p) = positive {
        if !distinct.iter().any(|d| d.as_str() == p) {
            return Err(PredictError::NoPositives {
                column: column.into(),
                value: format!("never {p:?}"),
            });
        }
    }
    match distinct.len() {
        1 => {
            let v = distinct[0].clone();
            if positive.is_none() && negative_words.contains(&norm(&v).as_str()) {
                Err(PredictError::NoPositives {
                    column: column.into(),
                    value: v,
                })
            } else {
                Err(PredictError::ConstantLabel {
                    column: column.into(),
                    value: v,
                })
            }
        }
        2 => {
            if let Some(p) = positive {
                return Ok(p.to_string());
            }
            let (a, b) = (distinct[0], distinct[1]);
            let pa = positive_words.contains(&norm(a).as_str());
            let pb = positive_words.contains(&norm(b).as_str());
            let na = negative_words.contains(&norm(a).as_str());
            let nb = negative_words.contains(&norm(b).as_str());
            if pa && nb {
                Ok(a.clone())
            } else if pb && na {
                Ok(b.clone())
            } else {
                Err(PredictError::LabelNotBinary {
                    column: column.into(),
                    message: format!(
                        "its values are {a:?} and {b:?}; say which is positive with --positive"
                    ),
                })
            }
        }
        n => Err(PredictError::LabelNotBinary {
            column: column.into(),
            message: format!(
                "it has {n} distinct values ({}{})",
                distinct
                    .iter()
                    .take(5)
                    .map(|v| format!("{v:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if n > 5 { ", ..." } else { "" }
            ),
        }),
    }
}

impl Classifier {
    /// Trains on `table`. Fails, writing nothing, on a missing or non-binary label, a
    /// constant label, no positives, or too few rows of a class.
    pub fn train(table: &Table, opts: &TrainOptions) -> Result<Classifier, PredictError> {
        opts.params.check()?;
        if !(opts.holdout > 0.0 && opts.holdout < 0.9) {
            return Err(PredictError::InvalidParameter(
                "the held-out share must be in (0, 0.9)".into(),
            ));
        }
        let label_col = table.require_column(&opts.label)?;
        let id_col = match &opts.id_column {
            Some(c) => Some(table.require_column(c)?),
            None => None,
        };
        let mut labels = Vec::with_capacity(table.rows.len());
        for (r, row) in table.rows.iter().enumerate() {
            let v = &row[label_col];
            if is_missing(v) {
                return Err(PredictError::LabelMissing {
                    path: table.path.clone(),
                    line: table.lines[r],
                    column: opts.label.clone(),
                });
            }
            labels.push(v.clone());
        }
        if labels.is_empty() {
            return Err(PredictError::TooFewRows {
                message: format!("{} has no data rows", table.path),
            });
        }
        let positive_label = label_class(&labels, opts.positive.as_deref(), &opts.label)?;
        let negative_label = labels
            .iter()
            .find(|v| **v != positive_label)
            .cloned()
            .unwrap_or_default();
        let y: Vec<bool> = labels.iter().map(|v| *v == positive_label).collect();
        let n_pos = y.iter().filter(|&&v| v).count();
        let n_neg = y.len() - n_pos;
        if n_pos < MIN_ROWS_PER_CLASS || n_neg < MIN_ROWS_PER_CLASS {
            return Err(PredictError::TooFewRows {
                message: format!(
                    "training needs at least {MIN_ROWS_PER_CLASS} rows of each class; {} has {n_pos} positive and {n_neg} negative",
                    table.path
                ),
            });
        }
        let all_rows: Vec<usize> = (0..y.len()).collect();
        let feature_cols: Vec<usize> = (0..table.headers.len())
            .filter(|&c| c != label_col && Some(c) != id_col)
            .collect();
        if feature_cols.is_empty() {
            return Err(PredictError::TooFewRows {
                message: "the file has no feature columns besides the label and id".into(),
            });
        }
        let features = infer_schema(table, &feature_cols, &y, &all_rows);
        let enc = encode(table, &features)?;
        let yf: Vec<f64> = y.iter().map(|&v| v as u8 as f64).collect();
        let binned = Binned::new(
            &enc.values,
            features.len(),
            &all_rows,
            opts.params.bins as usize,
        );
        let problem = Problem {
            features: &features,
            values: &enc.values,
            y: &yf,
            rows: &all_rows,
            binned: &binned,
        };
        let folds = ((1.0 / opts.holdout).round() as usize).clamp(2, 10);
        let (selection, oof_margin) = select::choose(&problem, &opts.params, folds);
        let (linear, booster) = select::fit_final(&problem, &opts.params, &selection);
        let platt = fit_platt(&oof_margin, &y);
        let summary = TrainingSummary {
            rows: y.len(),
            positives: n_pos,
            fit_rows: y.len(),
            holdout_rows: y.len(),
            trees: booster.trees.len(),
            params: opts.params.clone(),
            holdout_roc_auc: metrics::roc_auc(&y, &oof_margin),
            calibrated: platt.is_some(),
            selection: Some(selection),
        };
        Ok(Classifier {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            task: TASK_CLASSIFICATION.into(),
            model: MODEL_NAME.into(),
            label: opts.label.clone(),
            positive_label,
            negative_label,
            id_column: opts.id_column.clone(),
            features,
            linear,
            booster,
            calibration: platt.unwrap_or(Platt::IDENTITY),
            training: summary,
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a model serialises")
    }

    /// Writes the model file (through a temporary file, so a failed write leaves no half model).
    pub fn save(&self, path: &Path) -> Result<(), PredictError> {
        let tmp = path.with_extension("tmp-write");
        std::fs::write(&tmp, self.to_json()).map_err(|e| PredictError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| PredictError::io(path, e))
    }

    pub fn load(path: &Path) -> Result<Classifier, PredictError> {
        let text = std::fs::read_to_string(path).map_err(|e| PredictError::io(path, e))?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Reads a model file: first its format, version and task, then the body.
    pub fn from_json(text: &str, name: &str) -> Result<Classifier, PredictError> {
        let invalid = |message: String| PredictError::ModelInvalid {
            path: name.to_string(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if value.get("format").and_then(|v| v.as_str()) != Some(FORMAT) {
            return Err(invalid(format!("it does not say \"format\": {FORMAT:?}")));
        }
        let version = value
            .get("version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| invalid("no format version".into()))?;
        if !(OLDEST_FORMAT_VERSION as u64..=FORMAT_VERSION as u64).contains(&version) {
            return Err(PredictError::ModelVersion {
                path: name.into(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let task = value.get("task").and_then(|v| v.as_str()).unwrap_or("");
        if task != TASK_CLASSIFICATION {
            return Err(PredictError::ModelTask {
                path: name.into(),
                found: task.into(),
                needed: TASK_CLASSIFICATION.into(),
            });
        }
        let model: Classifier =
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        let n = model.features.len();
        for (i, t) in model.booster.trees.iter().enumerate() {
            if t.features_used().iter().any(|&f| f >= n) {
                return Err(invalid(format!(
                    "tree {i} uses a feature the schema does not list"
                )));
            }
        }
        if let Some(l) = &model.linear {
            l.check(n).map_err(invalid)?;
        }
        Ok(model)
    }

    /// Encodes a table for this model (absent columns become missing values).
    pub fn encode(&self, table: &Table) -> Result<Encoded, PredictError> {
        encode(table, &self.features)
    }

    /// The uncalibrated margin (log-odds) of an encoded row: linear part plus trees.
    pub fn margin(&self, row: &[f64]) -> f64 {
        self.booster.margin(row) + self.linear.as_ref().map_or(0.0, |l| l.margin(row))
    }

    /// The margin when no feature is known: the linear part at its training means plus the
    /// trees' expected value.
    pub fn expected_margin(&self) -> f64 {
        self.booster.expected_margin() + self.linear.as_ref().map_or(0.0, |l| l.expected_margin())
    }

    /// Exact per-feature contributions to [`Classifier::margin`]: TreeSHAP for the trees,
    /// `w * (term - mean)` for the linear part; they sum with the expected margin to the margin.
    pub fn contributions(&self, row: &[f64]) -> Vec<f64> {
        let mut phi = self.booster.contributions(row);
        if let Some(l) = &self.linear {
            l.add_contributions(row, &mut phi);
        }
        phi
    }

    /// Calibrated probability of the positive class for an encoded row.
    pub fn probability(&self, row: &[f64]) -> f64 {
        self.calibration.probability(self.margin(row))
    }

    /// The explanation of one encoded row: calibrated log-odds split exactly into a base value
    /// and one contribution per feature, largest first, with the features that had no value.
    pub fn explain(&self, table: &Table, enc: &Encoded, r: usize) -> Explanation {
        let row = enc.row(r);
        let a = self.calibration.a;
        let phi = self.contributions(row);
        let base = self.calibration.log_odds(self.expected_margin());
        let log_odds = self.calibration.log_odds(self.margin(row));
        let mut contributions: Vec<Contribution> = self
            .features
            .iter()
            .enumerate()
            .map(|(f, spec)| Contribution {
                feature: spec.name.clone(),
                value: table.column(&spec.name).map(|c| table.rows[r][c].clone()),
                contribution: a * phi[f],
            })
            .collect();
        contributions.sort_by(|x, y| {
            y.contribution
                .abs()
                .total_cmp(&x.contribution.abs())
                .then_with(|| x.feature.cmp(&y.feature))
        });
        let gaps = enc.gaps[r]
            .iter()
            .map(|(f, gap)| FeatureGap {
                feature: self.features[*f].name.clone(),
                gap: gap.clone(),
            })
            .collect();
        Explanation {
            model: format!("{}@{}", self.model, self.version),
            probability: sigmoid(log_odds),
            log_odds,
            base_log_odds: base,
            contributions,
            gaps,
        }
    }
}

/// One feature's share of a prediction, in calibrated log-odds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    pub feature: String,
    /// The row's value as written (`None` when the column is absent).
    pub value: Option<String>,
    pub contribution: f64,
}

/// A feature that had no value for the row, and why (the linear part's missing-value term and
/// the trees' branch for missing values then apply).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureGap {
    pub feature: String,
    #[serde(flatten)]
    pub gap: Gap,
}

/// Why a row got its probability: `base_log_odds` plus the contributions equals `log_odds`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub model: String,
    pub probability: f64,
    pub log_odds: f64,
    pub base_log_odds: f64,
    pub contributions: Vec<Contribution>,
    pub gaps: Vec<FeatureGap>,
}
