//! Probabilistic record matching in the Fellegi-Sunter model, the way Splink does it:
//! comparisons with agreement levels, blocking rules for candidate pairs, u-probabilities from
//! random pairs, m-probabilities and the match prior by EM without labels, term-frequency
//! adjustments, match weights that keep every field's contribution, clustering by connected
//! components, and evaluation against labels. Dedupe one table or link two.

mod api;
mod blocking;
mod cluster;
mod data;
mod eval;
mod incremental;
mod model;
mod output;
mod pipeline;
pub mod probe;
mod settings;
pub mod similarity;
pub mod synthetic;
mod text;

pub use api::{dedupe, finish, link, MatchOptions, MatchReport};
pub use blocking::{blocking_key, MatchMode};
pub use cluster::{connected_components, UnionFind};
pub use data::{Dataset, DatasetBuilder, Record};
pub use eval::{bcubed, cluster_pairwise, pairwise_metrics, Evaluation, PairwiseMetrics, Prf};
pub use incremental::{
    assign_incremental, dedupe_incremental, Assignment, Bridge, IncrementalClusters,
    IncrementalReport,
};
pub use model::{
    em_with_household, expectation_maximisation, prior_m, probability_from_weight,
    ComparisonParams, EmParams, EmResult, HouseholdEm, HouseholdParams, LevelParams, TrainedModel,
};
pub use pipeline::{
    dedupe_dataset, link_datasets, FieldContribution, MatchRun, RecordRef, ScoredPair, Timings,
    HOUSEHOLD_COLUMN,
};
pub use settings::{
    infer_settings, BlockingKey, Comparison, KeyTransform, Level, MatchSettings, Preprocess,
    TrainingSettings,
};
