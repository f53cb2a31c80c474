//! Evaluation against labels: pairwise precision/recall/F1 and B-cubed for clusters.

use std::collections::{HashMap, HashSet};

use foldhash::fast::RandomState;

use serde::Serialize;

/// Precision, recall and F1 with the counts behind them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Prf {
    fn new(precision: f64, recall: f64) -> Self {
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        Self {
            precision,
            recall,
            f1,
        }
    }
}

/// Pairwise metrics over predicted and true links.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairwiseMetrics {
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    #[serde(flatten)]
    pub scores: Prf,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        // Nothing predicted (or nothing to find) is vacuously precise (or complete).
        1.0
    } else {
        a as f64 / b as f64
    }
}

fn norm((a, b): (usize, usize)) -> (usize, usize) {
    (a.min(b), a.max(b))
}

/// Pairwise precision, recall and F1. Pairs are unordered.
pub fn pairwise_metrics(predicted: &[(usize, usize)], truth: &[(usize, usize)]) -> PairwiseMetrics {
    let p: HashSet<_, RandomState> = predicted.iter().copied().map(norm).collect();
    let t: HashSet<_, RandomState> = truth.iter().copied().map(norm).collect();
    let tp = p.intersection(&t).count();
    PairwiseMetrics {
        true_positives: tp,
        false_positives: p.len() - tp,
        false_negatives: t.len() - tp,
        scores: Prf::new(ratio(tp, p.len()), ratio(tp, t.len())),
    }
}

/// B-cubed precision/recall/F1 of predicted cluster labels against true labels (one label
/// per record each), averaged over records.
pub fn bcubed(predicted: &[usize], truth: &[usize]) -> Prf {
    let n = predicted.len().min(truth.len());
    if n == 0 {
        return Prf::new(1.0, 1.0);
    }
    let mut pred_size: HashMap<usize, usize, RandomState> = HashMap::default();
    let mut true_size: HashMap<usize, usize, RandomState> = HashMap::default();
    let mut both: HashMap<(usize, usize), usize, RandomState> = HashMap::default();
    for i in 0..n {
        *pred_size.entry(predicted[i]).or_default() += 1;
        *true_size.entry(truth[i]).or_default() += 1;
        *both.entry((predicted[i], truth[i])).or_default() += 1;
    }
    let (mut p, mut r) = (0.0, 0.0);
    for i in 0..n {
        let shared = both[&(predicted[i], truth[i])] as f64;
        p += shared / pred_size[&predicted[i]] as f64;
        r += shared / true_size[&truth[i]] as f64;
    }
    Prf::new(p / n as f64, r / n as f64)
}

/// Pairwise metrics implied by two clusterings (all pairs within a cluster are links),
/// computed from cluster sizes without listing pairs.
pub fn cluster_pairwise(predicted: &[usize], truth: &[usize]) -> Prf {
    let pairs = |k: usize| (k * k.saturating_sub(1) / 2) as f64;
    let count = |labels: &[usize]| {
        let mut m: HashMap<usize, usize, RandomState> = HashMap::default();
        for l in labels {
            *m.entry(*l).or_default() += 1;
        }
        m.values().map(|k| pairs(*k)).sum::<f64>()
    };
    let mut both: HashMap<(usize, usize), usize, RandomState> = HashMap::default();
    for (p, t) in predicted.iter().zip(truth) {
        *both.entry((*p, *t)).or_default() += 1;
    }
    let tp: f64 = both.values().map(|k| pairs(*k)).sum();
    let (pp, tt) = (count(predicted), count(truth));
    let safe = |a: f64, b: f64| if b == 0.0 { 1.0 } else { a / b };
    Prf::new(safe(tp, pp), safe(tp, tt))
}

/// Everything measured against labels in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub threshold: f64,
    /// Labelled pairs among the candidate pairs, over all labelled pairs: the ceiling blocking
    /// puts on recall.
    pub blocking_recall: f64,
    pub labelled_pairs: usize,
    pub pairwise: PairwiseMetrics,
    /// Pairwise metrics after clustering (transitive closure of the links).
    pub cluster_pairwise: Prf,
    pub bcubed: Prf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_counts() {
        let m = pairwise_metrics(&[(0, 1), (2, 3), (5, 4)], &[(1, 0), (4, 5), (6, 7)]);
        assert_eq!(
            (m.true_positives, m.false_positives, m.false_negatives),
            (2, 1, 1)
        );
        assert!((m.scores.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.scores.f1 - 2.0 / 3.0).abs() < 1e-12);
        let empty = pairwise_metrics(&[], &[]);
        assert_eq!(empty.scores.f1, 1.0);
    }

    #[test]
    fn bcubed_perfect_and_merged() {
        let t = [0, 0, 1, 2];
        assert_eq!(bcubed(&t, &t), Prf::new(1.0, 1.0));
        // Everything in one cluster: recall 1, precision (2/4*2 + 1/4 + 1/4)/4 = 0.375.
        let all = [9, 9, 9, 9];
        let s = bcubed(&all, &t);
        assert!((s.recall - 1.0).abs() < 1e-12);
        assert!((s.precision - 0.375).abs() < 1e-12);
        // All singletons: precision 1, recall (1/2 + 1/2 + 1 + 1)/4 = 0.75.
        let single = [0, 1, 2, 3];
        let s = bcubed(&single, &t);
        assert!((s.precision - 1.0).abs() < 1e-12 && (s.recall - 0.75).abs() < 1e-12);
    }

    #[test]
    fn cluster_pairwise_from_sizes() {
        let s = cluster_pairwise(&[0, 0, 0, 1], &[0, 0, 1, 1]);
        // Predicted pairs 3, true pairs 2, shared 1.
        assert!((s.precision - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.recall - 0.5).abs() < 1e-12);
    }
}
