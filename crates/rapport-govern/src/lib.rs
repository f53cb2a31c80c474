//! Rapport's governance library: fairness audits of decisions and model predictions.

pub mod fairness;
