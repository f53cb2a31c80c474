//! Scoring an intent classifier on labelled texts (accuracy, macro-F1, out-of-scope precision
//! and recall) and choosing its out-of-scope threshold on validation data. Pure functions:
//! reading files is the caller's job (`rapport intents eval`, the benchmark examples).

use serde::Serialize;

use crate::intent::IntentClassifier;

/// The label that marks an out-of-scope example unless configured otherwise.
pub const DEFAULT_OOS_LABEL: &str = "oos";

/// Figures of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentReport {
    /// Rows scored.
    pub rows: usize,
    /// Rows whose label is an intent (not out of scope).
    pub in_scope_rows: usize,
    /// Rows labelled out of scope.
    pub oos_rows: usize,
    /// The threshold the figures are for.
    pub threshold: f32,
    /// Share of all rows answered right (an out-of-scope row is right when the answer is
    /// out of scope).
    pub accuracy: f64,
    /// Share of in-scope rows answered with their intent (an out-of-scope answer is wrong).
    pub in_scope_accuracy: f64,
    /// Mean F1 over the classes present in the labels (out of scope is one class when there
    /// are out-of-scope rows).
    pub macro_f1: f64,
    /// Of the rows answered out of scope, the share that are; `None` without out-of-scope rows.
    pub oos_precision: Option<f64>,
    /// Of the out-of-scope rows, the share answered out of scope; `None` without them.
    pub oos_recall: Option<f64>,
    /// Labels of the input that the model does not know (their rows count as wrong).
    pub unknown_labels: Vec<String>,
}

/// Best class and confidence of every text, computed once.
fn predictions(clf: &IntentClassifier, rows: &[(&str, &str)]) -> Vec<(usize, f32)> {
    rows.iter().map(|(t, _)| clf.best(t)).collect()
}

/// Gold class index per row: `Some(i)` for a known intent, `None` for out of scope, and
/// `Some(usize::MAX)` for a label the model does not know.
fn gold(clf: &IntentClassifier, rows: &[(&str, &str)], oos: &str) -> Vec<Option<usize>> {
    rows.iter()
        .map(|(_, l)| {
            if *l == oos {
                None
            } else {
                Some(
                    clf.labels()
                        .iter()
                        .position(|x| x == l)
                        .unwrap_or(usize::MAX),
                )
            }
        })
        .collect()
}

fn report(
    clf: &IntentClassifier,
    rows: &[(&str, &str)],
    gold: &[Option<usize>],
    pred: &[(usize, f32)],
    threshold: f32,
) -> IntentReport {
    let classes = clf.labels().len();
    // Class index `classes` stands for out of scope, `classes + 1` for unknown labels.
    let g: Vec<usize> = gold
        .iter()
        .map(|x| match x {
            None => classes,
            Some(i) if *i == usize::MAX => classes + 1,
            Some(i) => *i,
        })
        .collect();
    // A learnt out-of-scope class answers out of scope, as the classifier's prediction does.
    let learnt_oos = clf
        .labels()
        .iter()
        .position(|l| l == crate::intent::OUT_OF_SCOPE_LABEL);
    let p: Vec<usize> = pred
        .iter()
        .map(|&(c, conf)| {
            if conf < threshold || Some(c) == learnt_oos {
                classes
            } else {
                c
            }
        })
        .collect();
    let n = rows.len();
    let right = g.iter().zip(&p).filter(|(a, b)| a == b).count();
    let ins: Vec<(usize, usize)> = g
        .iter()
        .zip(&p)
        .filter(|(a, _)| **a != classes)
        .map(|(a, b)| (*a, *b))
        .collect();
    let ins_right = ins.iter().filter(|(a, b)| a == b).count();
    let oos_rows = g.iter().filter(|a| **a == classes).count();
    let (mut tp, mut fp, mut fneg) = (
        vec![0usize; classes + 2],
        vec![0usize; classes + 2],
        vec![0usize; classes + 2],
    );
    for (&a, &b) in g.iter().zip(&p) {
        if a == b {
            tp[a] += 1;
        } else {
            fp[b] += 1;
            fneg[a] += 1;
        }
    }
    let present: Vec<usize> = (0..classes + 1).filter(|c| tp[*c] + fneg[*c] > 0).collect();
    let macro_f1 = present
        .iter()
        .map(|&c| 2.0 * tp[c] as f64 / (2 * tp[c] + fp[c] + fneg[c]) as f64)
        .sum::<f64>()
        / present.len().max(1) as f64;
    let mut unknown: Vec<String> = rows
        .iter()
        .zip(&g)
        .filter(|(_, c)| **c == classes + 1)
        .map(|((_, l), _)| l.to_string())
        .collect();
    unknown.sort();
    unknown.dedup();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    IntentReport {
        rows: n,
        in_scope_rows: ins.len(),
        oos_rows,
        threshold,
        accuracy: ratio(right, n),
        in_scope_accuracy: ratio(ins_right, ins.len()),
        macro_f1,
        oos_precision: (oos_rows > 0).then(|| ratio(tp[classes], tp[classes] + fp[classes])),
        oos_recall: (oos_rows > 0).then(|| ratio(tp[classes], oos_rows)),
        unknown_labels: unknown,
    }
}

/// Scores `clf` at its own threshold on `(text, label)` rows; rows labelled `oos_label` are
/// out-of-scope examples.
pub fn evaluate(clf: &IntentClassifier, rows: &[(&str, &str)], oos_label: &str) -> IntentReport {
    let g = gold(clf, rows, oos_label);
    report(clf, rows, &g, &predictions(clf, rows), clf.threshold())
}

/// How the out-of-scope threshold is chosen on validation rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdGoal {
    /// Maximise the mean of in-scope accuracy and out-of-scope recall.
    Balanced,
    /// The highest in-scope accuracy whose out-of-scope recall is at least this.
    MinOosRecall(f64),
    /// The highest out-of-scope recall whose in-scope accuracy is at most this much (a
    /// fraction, 0.01 is one point) below the accuracy without a threshold. The budget is
    /// measured on the in-scope rows, usually far more numerous than the out-of-scope ones,
    /// so the threshold it picks moves less from one validation set to another.
    MaxInScopeCost(f64),
}

/// The threshold (a multiple of 0.01) meeting `goal` best on `rows`, with the figures it gives
/// there. Without out-of-scope rows every goal picks 0 (never answer out of scope). When no
/// threshold reaches a `MinOosRecall`, the one with the highest recall is taken; among
/// thresholds with equal recall, `MaxInScopeCost` takes the lowest.
pub fn tune_threshold(
    clf: &IntentClassifier,
    rows: &[(&str, &str)],
    oos_label: &str,
    goal: ThresholdGoal,
) -> (f32, IntentReport) {
    let g = gold(clf, rows, oos_label);
    let pred = predictions(clf, rows);
    let unthresholded = report(clf, rows, &g, &pred, 0.0).in_scope_accuracy;
    let mut best: Option<(f64, f32, IntentReport)> = None;
    for k in 0..100 {
        let th = k as f32 / 100.0;
        let r = report(clf, rows, &g, &pred, th);
        let recall = r.oos_recall.unwrap_or(0.0);
        let value = match goal {
            _ if r.oos_rows == 0 => -(k as f64),
            ThresholdGoal::Balanced => (r.in_scope_accuracy + recall) / 2.0,
            ThresholdGoal::MinOosRecall(min) if recall >= min => 1.0 + r.in_scope_accuracy,
            ThresholdGoal::MinOosRecall(_) => recall,
            ThresholdGoal::MaxInScopeCost(cost)
                if r.in_scope_accuracy >= unthresholded - cost - 1e-12 =>
            {
                1.0 + recall
            }
            ThresholdGoal::MaxInScopeCost(_) => r.in_scope_accuracy,
        };
        if best.as_ref().is_none_or(|b| value > b.0) {
            best = Some((value, th, r));
        }
    }
    let (_, th, r) = best.expect("one threshold at least");
    (th, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::IntentConfig;

    fn clf() -> IntentClassifier {
        let examples = [
            ("where is my parcel", 0),
            ("my package has not arrived", 0),
            ("track my delivery", 0),
            ("refund my money", 1),
            ("i want a refund", 1),
            ("give me my money back", 1),
        ];
        IntentClassifier::train_examples(
            vec!["delivery".into(), "refund".into()],
            &examples,
            0.0,
            IntentConfig::default(),
        )
    }

    #[test]
    fn perfect_answers_score_one_and_unknown_labels_are_named() {
        let c = clf();
        let rows = [
            ("where is my parcel", "delivery"),
            ("i want a refund", "refund"),
        ];
        let r = evaluate(&c, &rows, DEFAULT_OOS_LABEL);
        assert_eq!((r.accuracy, r.macro_f1, r.oos_recall), (1.0, 1.0, None));
        let r = evaluate(&c, &[("i want a refund", "billing")], DEFAULT_OOS_LABEL);
        assert_eq!(r.accuracy, 0.0);
        assert_eq!(r.unknown_labels, ["billing"]);
    }

    #[test]
    fn a_threshold_trades_in_scope_accuracy_for_oos_recall() {
        let mut c = clf();
        let rows = [
            ("where is my parcel", "delivery"),
            ("refund my money", "refund"),
            ("what is the weather on mars", "oos"),
            ("sing me a song about trains", "oos"),
        ];
        let low = evaluate(&c, &rows, "oos");
        assert_eq!(low.oos_recall, Some(0.0));
        let (th, tuned) = tune_threshold(&c, &rows, "oos", ThresholdGoal::Balanced);
        assert!(th > 0.0);
        assert!(tuned.oos_recall.unwrap_or(0.0) > 0.0, "{tuned:?}");
        c.set_threshold(th);
        assert_eq!(evaluate(&c, &rows, "oos"), tuned);
        let (th0, _) = tune_threshold(&c, &rows[..2], "oos", ThresholdGoal::Balanced);
        assert_eq!(th0, 0.0);
        // No in-scope accuracy to spend: the threshold may only reject what was wrong anyway.
        let (_, free) = tune_threshold(&c, &rows, "oos", ThresholdGoal::MaxInScopeCost(0.0));
        assert!(
            free.in_scope_accuracy >= low.in_scope_accuracy - 1e-12,
            "{free:?}"
        );
        // The whole budget: the highest recall any threshold reaches.
        let (_, all) = tune_threshold(&c, &rows, "oos", ThresholdGoal::MaxInScopeCost(1.0));
        let best_recall = (0..100)
            .map(|k| {
                c.set_threshold(k as f32 / 100.0);
                evaluate(&c, &rows, "oos").oos_recall.unwrap_or(0.0)
            })
            .fold(0.0, f64::max);
        assert_eq!(all.oos_recall, Some(best_recall));
    }
}
