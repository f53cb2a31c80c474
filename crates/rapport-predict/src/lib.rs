//! `rapport-predict`: Rapport's models. It owns training, scoring, calibration, exact
//! explanations and evaluation metrics of the prediction stage:
//!
//! - a binary classifier ([`model::Classifier`]) trained on CSV tables: a linear part
//!   ([`linear`]) plus gradient-boosted trees grown from its margin ([`boost`]), their depth
//!   and number chosen by cross-validation on the training rows ([`select`]); missing-value
//!   aware, Platt-calibrated on out-of-fold predictions, stored in a versioned model file with
//!   its feature schema, each prediction explained by exact per-feature contributions
//!   (`w * (term - mean)` for the linear part, path-dependent TreeSHAP for the trees, [`shap`]);
//! - evaluation metrics ([`metrics`]): ROC-AUC, PR-AUC, Brier score, log loss, calibration;
//! - customer lifetime value ([`clv`]): BG/NBD for purchase frequency and Gamma-Gamma for
//!   spend, fitted by maximum likelihood;
//! - a customer's features as of a moment and the churn label after it ([`features`]), with
//!   point-in-time correctness, so live scoring and training read the same definitions;
//! - escalation risk of open conversations ([`escalation`]): logistic over sentiment
//!   trajectory, urgency, waiting time and history, with exact contributions.
//!
//! It does not own where data comes from or where scores go: no HTTP, no SQL, no bus. Its only
//! I/O is reading CSV and transaction files and reading and writing model files. Training of
//! the classifier runs on the calling thread alone; callers in async code run it on a blocking
//! pool.

pub mod boost;
pub mod calibrate;
pub mod clv;
pub mod data;
pub mod error;
pub mod escalation;
pub mod features;
pub mod gbt;
pub mod linear;
pub mod metrics;
pub mod model;
mod optimize;
pub mod select;
pub mod shap;
pub mod tree;

pub use error::PredictError;
pub use model::{Classifier, Explanation, TrainOptions};
