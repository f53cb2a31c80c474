//! Bootstrap confidence intervals for the aggregate metrics, by the percentile method.
//!
//! Like Fairlearn's `MetricFrame(n_boot=..., ci_quantiles=...)`, each resample draws as many
//! rows as the data has, uniformly with replacement, over all rows (groups are not
//! stratified, so a small group's size varies too), recomputes every aggregate, and the
//! interval ends are quantiles of the resampled values with numpy's linear interpolation.
//! Resample `i` draws from a ChaCha8 stream seeded with the seed and numbered `i`, so results
//! depend on the seed alone, not on how many threads run them. A resample where a metric is
//! undefined (a ratio over 0) is left out of that metric's interval.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::count::{Cells, Counts, Grouping};
use super::metrics::{aggregates, quantile};
use super::report::Interval;
use super::task::Encoded;
use super::BootstrapOptions;

/// Intervals indexed `[grouping][outcome][aggregate]`, in the order the report lists them;
/// `shape` gives the number of aggregates of each grouping and outcome.
pub(crate) type Intervals = Vec<Vec<Vec<Option<Interval>>>>;

pub(crate) fn intervals(
    enc: &Encoded,
    cells: &Cells,
    groupings: &[Grouping],
    outcomes: &[usize],
    labelled: bool,
    options: &BootstrapOptions,
    shape: &[Vec<usize>],
) -> Intervals {
    let n = cells.row_cell.len();
    let resamples = options.resamples;
    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |t| t.get()))
        .clamp(1, resamples.max(1));

    let slots = Counts::new(enc, cells.len()).slots(enc, &cells.row_cell);
    // One resample: every aggregate of every grouping and outcome, flattened.
    let run = |index: usize, counts: &mut Counts| -> Vec<Option<f64>> {
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        rng.set_stream(index as u64);
        counts.clear();
        let draws = (0..n).map(|_| rng.gen_range(0..n));
        match &slots {
            Some(s) => counts.add_slots(s, draws),
            None => counts.add_rows(enc, &cells.row_cell, draws),
        }
        let mut values = Vec::new();
        for g in groupings {
            let rolled = counts.roll_up(g);
            for &o in outcomes {
                values.extend(aggregates(&rolled, o, labelled).into_iter().map(|(_, v)| v));
            }
        }
        values
    };

    let mut samples: Vec<Vec<Option<f64>>> = vec![Vec::new(); resamples];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let run = &run;
                scope.spawn(move || {
                    let mut counts = Counts::new(enc, cells.len());
                    (t..resamples)
                        .step_by(threads)
                        .map(|i| (i, run(i, &mut counts)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (i, v) in h.join().expect("a bootstrap thread panicked") {
                samples[i] = v;
            }
        }
    });

    let low_q = (1.0 - options.confidence) / 2.0;
    let high_q = 1.0 - low_q;
    let interval_of = |slot: usize| -> Option<Interval> {
        let mut v: Vec<f64> = samples.iter().filter_map(|s| s[slot]).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Interval {
            low: quantile(&v, low_q),
            high: quantile(&v, high_q),
            resamples: v.len(),
        })
    };

    let mut slot = 0;
    shape
        .iter()
        .map(|per_outcome| {
            per_outcome
                .iter()
                .map(|&k| {
                    let out = (slot..slot + k).map(interval_of).collect();
                    slot += k;
                    out
                })
                .collect()
        })
        .collect()
}
