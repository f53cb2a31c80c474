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

/// Asks Linux not to back this process's memory with transparent huge pages. A match run
/// allocates and drops hundreds of megabytes within seconds; on a machine that has been idle,
/// faulting that memory in as huge pages cost a second per 600 MB (the kernel must find and
/// zero whole 2 MB pages), a fifth of a million-record dedupe. Call it before the work starts;
/// elsewhere (other systems, or if the kernel refuses) it does nothing.
pub fn avoid_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and only sets a flag on the
    // calling process; it touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
