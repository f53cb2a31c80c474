//! Evaluation metrics for binary classifiers: ROC-AUC, PR-AUC (average precision), Brier
//! score, log loss and a calibration table. Each takes labels (`true` = positive) and predicted
//! probabilities or scores of the same length.

use serde::Serialize;

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative, ties counting one half. `None` when one class is absent.
pub fn roc_auc(y: &[bool], score: &[f64]) -> Option<f64> {
    assert_eq!(y.len(), score.len());
    let mut order: Vec<usize> = (0..y.len()).collect();
    order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    roc_auc_in_order(y, score, &order)
}

/// [`roc_auc`] given the rows' order by ascending score (the boosting loop keeps that order
/// from one round to the next instead of sorting again).
pub(crate) fn roc_auc_in_order(y: &[bool], score: &[f64], order: &[usize]) -> Option<f64> {
    let pos = y.iter().filter(|&&v| v).count();
    let neg = y.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && score[order[j + 1]] == score[order[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        let pos_in_group = order[i..=j].iter().filter(|&&k| y[k]).count();
        rank_sum += avg_rank * pos_in_group as f64;
        i = j + 1;
    }
    let (p, n) = (pos as f64, neg as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Average precision, the step-wise area under the precision-recall curve: the sum over
/// distinct score thresholds, from the highest, of precision times the gain in recall.
/// `None` without positives.
pub fn average_precision(y: &[bool], score: &[f64]) -> Option<f64> {
    assert_eq!(y.len(), score.len());
    let pos = y.iter().filter(|&&v| v).count();
    if pos == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..y.len()).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut prev_recall = 0.0;
    let mut ap = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && score[order[j + 1]] == score[order[i]] {
            j += 1;
        }
        for &k in &order[i..=j] {
            if y[k] {
                tp += 1
            } else {
                fp += 1
            }
        }
        let recall = tp as f64 / pos as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
        i = j + 1;
    }
    Some(ap)
}

/// Mean squared difference between probability and outcome.
pub fn brier(y: &[bool], p: &[f64]) -> f64 {
    assert_eq!(y.len(), p.len());
    let s: f64 = y
        .iter()
        .zip(p)
        .map(|(&t, &q)| (q - t as u8 as f64).powi(2))
        .sum();
    s / y.len().max(1) as f64
}

/// Mean negative log-likelihood, probabilities clipped to `[1e-15, 1 - 1e-15]`.
pub fn log_loss(y: &[bool], p: &[f64]) -> f64 {
    assert_eq!(y.len(), p.len());
    let eps = 1e-15;
    let s: f64 = y
        .iter()
        .zip(p)
        .map(|(&t, &q)| {
            let q = q.clamp(eps, 1.0 - eps);
            if t {
                -q.ln()
            } else {
                -(1.0 - q).ln()
            }
        })
        .sum();
    s / y.len().max(1) as f64
}

/// One bin of a calibration table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationBin {
    /// The bin holds probabilities in `[lower, upper)` (the last bin includes 1).
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    /// Mean predicted probability of the rows in the bin (`None` when empty).
    pub mean_predicted: Option<f64>,
    /// Share of positives among them.
    pub observed_rate: Option<f64>,
}

/// Equal-width calibration table over `[0, 1]` with `bins` bins.
pub fn calibration_table(y: &[bool], p: &[f64], bins: usize) -> Vec<CalibrationBin> {
    assert_eq!(y.len(), p.len());
    let bins = bins.max(1);
    let mut sum_p = vec![0.0; bins];
    let mut pos = vec![0usize; bins];
    let mut count = vec![0usize; bins];
    for (&t, &q) in y.iter().zip(p) {
        let b = ((q.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
        sum_p[b] += q;
        pos[b] += t as usize;
        count[b] += 1;
    }
    (0..bins)
        .map(|b| CalibrationBin {
            lower: b as f64 / bins as f64,
            upper: (b + 1) as f64 / bins as f64,
            count: count[b],
            mean_predicted: (count[b] > 0).then(|| sum_p[b] / count[b] as f64),
            observed_rate: (count[b] > 0).then(|| pos[b] as f64 / count[b] as f64),
        })
        .collect()
}

/// All metrics of a classifier on one labelled set.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub rows: usize,
    pub positives: usize,
    pub roc_auc: Option<f64>,
    pub pr_auc: Option<f64>,
    pub brier: f64,
    pub log_loss: f64,
    pub calibration: Vec<CalibrationBin>,
}

pub fn evaluate(y: &[bool], p: &[f64]) -> Evaluation {
    Evaluation {
        rows: y.len(),
        positives: y.iter().filter(|&&v| v).count(),
        roc_auc: roc_auc(y, p),
        pr_auc: average_precision(y, p),
        brier: brier(y, p),
        log_loss: log_loss(y, p),
        calibration: calibration_table(y, p, 10),
    }
}

impl std::fmt::Display for Evaluation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opt = |v: Option<f64>| v.map_or("undefined".to_string(), |x| format!("{x:.4}"));
        writeln!(f, "rows       {} ({} positive)", self.rows, self.positives)?;
        writeln!(f, "ROC-AUC    {}", opt(self.roc_auc))?;
        writeln!(f, "PR-AUC     {}", opt(self.pr_auc))?;
        writeln!(f, "Brier      {:.4}", self.brier)?;
        writeln!(f, "log loss   {:.4}", self.log_loss)?;
        writeln!(f, "calibration (predicted probability bins):")?;
        writeln!(f, "  bin          rows  mean predicted  observed rate")?;
        for b in &self.calibration {
            writeln!(
                f,
                "  [{:.1}, {:.1}){:>7}  {:>14}  {:>13}",
                b.lower,
                b.upper,
                b.count,
                opt(b.mean_predicted),
                opt(b.observed_rate)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Pair counting, straight from the definition.
    fn naive_auc(y: &[bool], s: &[f64]) -> Option<f64> {
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..y.len() {
            for j in 0..y.len() {
                if y[i] && !y[j] {
                    den += 1.0;
                    if s[i] > s[j] {
                        num += 1.0
                    } else if s[i] == s[j] {
                        num += 0.5
                    }
                }
            }
        }
        (den > 0.0).then(|| num / den)
    }

    /// Precision and recall recomputed by a full scan at every distinct threshold.
    fn naive_ap(y: &[bool], s: &[f64]) -> Option<f64> {
        let pos = y.iter().filter(|&&v| v).count() as f64;
        if pos == 0.0 {
            return None;
        }
        let mut thresholds: Vec<f64> = s.to_vec();
        thresholds.sort_by(|a, b| b.total_cmp(a));
        thresholds.dedup();
        let mut prev_recall = 0.0;
        let mut ap = 0.0;
        for t in thresholds {
            let tp = (0..y.len()).filter(|&i| y[i] && s[i] >= t).count() as f64;
            let predicted = (0..y.len()).filter(|&i| s[i] >= t).count() as f64;
            let recall = tp / pos;
            ap += (recall - prev_recall) * (tp / predicted);
            prev_recall = recall;
        }
        Some(ap)
    }

    fn data() -> impl Strategy<Value = (Vec<bool>, Vec<f64>)> {
        (1usize..60).prop_flat_map(|n| {
            (
                proptest::collection::vec(any::<bool>(), n),
                // Few distinct values, so ties are common.
                proptest::collection::vec((0u8..12).prop_map(|v| v as f64 / 11.0), n),
            )
        })
    }

    proptest! {
        #[test]
        fn auc_equals_pair_counting((y, s) in data()) {
            let (a, b) = (roc_auc(&y, &s), naive_auc(&y, &s));
            prop_assert_eq!(a.is_some(), b.is_some());
            if let (Some(a), Some(b)) = (a, b) {
                prop_assert!((a - b).abs() < 1e-12, "{} vs {}", a, b);
                prop_assert!((0.0..=1.0).contains(&a));
            }
        }

        #[test]
        fn auc_ignores_monotone_transforms((y, s) in data()) {
            let t: Vec<f64> = s.iter().map(|v| (3.0 * v).exp() - 7.0).collect();
            prop_assert_eq!(roc_auc(&y, &s), roc_auc(&y, &t));
        }

        #[test]
        fn ap_equals_threshold_scan((y, s) in data()) {
            let (a, b) = (average_precision(&y, &s), naive_ap(&y, &s));
            prop_assert_eq!(a.is_some(), b.is_some());
            if let (Some(a), Some(b)) = (a, b) {
                prop_assert!((a - b).abs() < 1e-12, "{} vs {}", a, b);
                prop_assert!(a > 0.0 && a <= 1.0 + 1e-12);
            }
        }

        #[test]
        fn brier_and_log_loss_match_their_sums((y, p) in data()) {
            let n = y.len() as f64;
            let mut b = 0.0;
            let mut l = 0.0;
            for i in 0..y.len() {
                let t = if y[i] { 1.0 } else { 0.0 };
                b += (p[i] - t) * (p[i] - t) / n;
                let q = p[i].clamp(1e-15, 1.0 - 1e-15);
                l -= (t * q.ln() + (1.0 - t) * (1.0 - q).ln()) / n;
            }
            prop_assert!((brier(&y, &p) - b).abs() < 1e-12);
            prop_assert!((log_loss(&y, &p) - l).abs() < 1e-9);
            prop_assert!((0.0..=1.0).contains(&brier(&y, &p)));
        }

        #[test]
        fn calibration_bins_partition_the_rows((y, p) in data()) {
            let table = calibration_table(&y, &p, 10);
            prop_assert_eq!(table.iter().map(|b| b.count).sum::<usize>(), y.len());
            let pos: f64 = table.iter().map(|b| b.observed_rate.unwrap_or(0.0) * b.count as f64).sum();
            prop_assert!((pos - y.iter().filter(|&&v| v).count() as f64).abs() < 1e-9);
            for b in &table {
                if let Some(m) = b.mean_predicted {
                    prop_assert!(m >= b.lower - 1e-12 && (m < b.upper || b.upper == 1.0));
                }
            }
        }
    }

    #[test]
    fn perfect_and_reversed_rankings() {
        let y = [false, false, true, true];
        assert_eq!(roc_auc(&y, &[0.1, 0.2, 0.8, 0.9]), Some(1.0));
        assert_eq!(roc_auc(&y, &[0.9, 0.8, 0.2, 0.1]), Some(0.0));
        assert_eq!(roc_auc(&y, &[0.5; 4]), Some(0.5));
        assert_eq!(average_precision(&y, &[0.1, 0.2, 0.8, 0.9]), Some(1.0));
        assert_eq!(roc_auc(&[true, true], &[0.1, 0.2]), None);
        assert_eq!(brier(&y, &[0.0, 0.0, 1.0, 1.0]), 0.0);
    }
}
