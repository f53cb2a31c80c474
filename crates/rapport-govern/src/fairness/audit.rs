//! Putting an audit together: encode the outcomes, count per intersection cell, roll up to
//! each grouping, compute rows and aggregates, add bootstrap intervals and notes.

use super::bootstrap;
use super::count::{roll_up_scores, score_sums, Cells, Counts, Grouping, Sums};
use super::data::Dataset;
use super::error::FairnessError;
use super::metrics::{aggregates, group_accuracy, rate, ClassCounts, RegressionMeans};
use super::report::{
    Aggregate, ClassOutcome, ClassRow, GroupSummary, GroupingReport, Outcome, RegressionOutcome,
    RegressionRow, Report,
};
use super::task::{self, Encoded, TaskKind};
use super::{AuditOptions, BootstrapOptions};

pub(crate) fn audit(d: &Dataset, options: &AuditOptions) -> Result<Report, FairnessError> {
    options.validate()?;
    let task = options.task.unwrap_or_else(|| task::infer(d));
    if options.positive.is_some() && task != TaskKind::Binary {
        return Err(FairnessError::InvalidOptions(vec![format!(
            "a positive label applies to a binary audit, not a {task} one"
        )]));
    }
    let enc = task::encode(d, task, options.positive.as_ref())?;
    let cells = Cells::build(d)?;
    let groupings = cells.groupings();
    let labelled = d.labels.is_some();
    let (classes, outcomes): (Vec<String>, Vec<usize>) = match &enc {
        Encoded::Classes { names, .. } if task == TaskKind::Binary => (names.clone(), vec![1]),
        Encoded::Classes { names, .. } => (names.clone(), (0..names.len()).collect()),
        Encoded::Numbers { .. } => (Vec::new(), vec![0]),
    };

    let mut counts = Counts::new(&enc, cells.len());
    counts.add_rows(&enc, &cells.row_cell, 0..d.len());
    let total = counts.total();
    let cell_scores = d.scores.as_deref().map(|s| score_sums(&cells, s));
    let total_score = cell_scores
        .as_ref()
        .map(|s| s.iter().fold((0u64, 0.0f64), |a, b| (a.0 + b.0, a.1 + b.1)));
    let overall = summary(Vec::new(), &total, 0, total_score);

    let mut notes = Vec::new();
    let mut reports = Vec::with_capacity(groupings.len());
    for g in &groupings {
        let rolled = counts.roll_up(g);
        let scores = cell_scores.as_ref().map(|s| roll_up_scores(s, g));
        let groups = (0..g.len())
            .map(|i| summary(g.keys[i].clone(), &rolled, i, scores.as_ref().map(|s| s[i])))
            .collect();
        let outcome_reports: Vec<Outcome> = outcomes
            .iter()
            .map(|&o| match &enc {
                Encoded::Classes { .. } => {
                    Outcome::Class(class_outcome(&rolled, &total, g, o, &classes))
                }
                Encoded::Numbers { .. } => {
                    Outcome::Regression(regression_outcome(&rolled, &total, g, labelled))
                }
            })
            .collect();
        let (empty_groups, empty_group_count) = if g.columns.len() > 1 {
            (
                cells.empty.iter().map(|c| cells.names(c)).collect(),
                cells.empty_count,
            )
        } else {
            (Vec::new(), 0)
        };
        let report = GroupingReport {
            columns: g
                .columns
                .iter()
                .map(|&j| d.columns.groups[j].clone())
                .collect(),
            overall: overall.clone(),
            groups,
            empty_groups,
            empty_group_count,
            outcomes: outcome_reports,
        };
        notes.extend(notes_for(&report, task));
        reports.push(report);
    }

    if let Some(b) = &options.bootstrap {
        let shape: Vec<Vec<usize>> = reports
            .iter()
            .map(|g| g.outcomes.iter().map(|o| o.aggregates().len()).collect())
            .collect();
        let intervals =
            bootstrap::intervals(&enc, &cells, &groupings, &outcomes, labelled, b, &shape);
        for (g, gi) in reports.iter_mut().zip(intervals) {
            for (o, oi) in g.outcomes.iter_mut().zip(gi) {
                for (a, ai) in o.aggregates_mut().iter_mut().zip(oi) {
                    a.interval = ai;
                }
            }
        }
    }

    Ok(Report {
        task,
        rows: d.len(),
        columns: d.columns.clone(),
        positive: (task == TaskKind::Binary).then(|| classes[1].clone()),
        classes,
        groupings: reports,
        // Threads do not change results, so the report leaves them out.
        bootstrap: options
            .bootstrap
            .clone()
            .map(|b| BootstrapOptions { threads: None, ..b }),
        notes,
    })
}

fn summary(
    group: Vec<String>,
    counts: &Counts,
    i: usize,
    score: Option<(u64, f64)>,
) -> GroupSummary {
    let count = match counts {
        Counts::Classes { .. } => ClassCounts::of(counts, i, 0).n,
        Counts::Sums(s) => s[i].n,
    };
    GroupSummary {
        group,
        count,
        accuracy: group_accuracy(counts, i),
        mean_score: score.filter(|s| s.0 > 0).map(|s| s.1 / s.0 as f64),
    }
}

fn class_row(group: Vec<String>, c: ClassCounts) -> ClassRow {
    let conf = c.confusion();
    let pick = |f: fn((u64, u64, u64, u64)) -> f64| conf.map(f);
    ClassRow {
        group,
        count: c.n,
        selected: c.selected,
        selection_rate: c.selection_rate(),
        positives: c.positives,
        negatives: c.positives.map(|p| c.n - p),
        true_positives: conf.map(|x| x.0),
        false_positives: conf.map(|x| x.1),
        true_negatives: conf.map(|x| x.2),
        false_negatives: conf.map(|x| x.3),
        true_positive_rate: pick(|(tp, _, _, fn_)| rate(tp, tp + fn_)),
        false_positive_rate: pick(|(_, fp, tn, _)| rate(fp, fp + tn)),
        true_negative_rate: pick(|(_, fp, tn, _)| rate(tn, fp + tn)),
        false_negative_rate: pick(|(tp, _, _, fn_)| rate(fn_, tp + fn_)),
        accuracy: pick(|(tp, fp, tn, fn_)| rate(tp + tn, tp + fp + tn + fn_)),
    }
}

fn class_outcome(
    rolled: &Counts,
    total: &Counts,
    g: &Grouping,
    class: usize,
    classes: &[String],
) -> ClassOutcome {
    ClassOutcome {
        class: classes[class].clone(),
        overall: class_row(Vec::new(), ClassCounts::of(total, 0, class)),
        groups: (0..g.len())
            .map(|i| class_row(g.keys[i].clone(), ClassCounts::of(rolled, i, class)))
            .collect(),
        aggregates: to_aggregates(aggregates(rolled, class, true)),
    }
}

fn regression_row(group: Vec<String>, s: &Sums, labelled: bool) -> RegressionRow {
    let m = RegressionMeans::of(s, labelled);
    RegressionRow {
        group,
        count: m.n,
        mean_prediction: m.mean_prediction,
        mean_label: m.mean_label,
        mean_error: m.mean_error,
        mean_absolute_error: m.mae,
        root_mean_squared_error: m.rmse,
    }
}

fn regression_outcome(
    rolled: &Counts,
    total: &Counts,
    g: &Grouping,
    labelled: bool,
) -> RegressionOutcome {
    let (Counts::Sums(sums), Counts::Sums(all)) = (rolled, total) else {
        unreachable!("regression outcome of class counts")
    };
    RegressionOutcome {
        overall: regression_row(Vec::new(), &all[0], labelled),
        groups: (0..g.len())
            .map(|i| regression_row(g.keys[i].clone(), &sums[i], labelled))
            .collect(),
        aggregates: to_aggregates(aggregates(rolled, 0, labelled)),
    }
}

fn to_aggregates(values: Vec<(super::Metric, Option<f64>)>) -> Vec<Aggregate> {
    values
        .into_iter()
        .map(|(metric, value)| Aggregate {
            metric,
            value,
            interval: None,
        })
        .collect()
}

/// Notes on a grouping: empty intersections and groups whose rates fell back to 0.
fn notes_for(g: &GroupingReport, task: TaskKind) -> Vec<String> {
    let mut notes = Vec::new();
    let name = g.name();
    if g.empty_group_count > 0 {
        let listed: Vec<String> = g
            .empty_groups
            .iter()
            .take(5)
            .map(|k| k.join(" × "))
            .collect();
        let more = if g.empty_group_count as usize > listed.len() {
            format!(" and {} more", g.empty_group_count as usize - listed.len())
        } else {
            String::new()
        };
        notes.push(format!(
            "by {name}: {} combination(s) have no rows ({}{more}); they count in no aggregate, \
             as in Fairlearn",
            g.empty_group_count,
            listed.join(", ")
        ));
    }
    for o in &g.outcomes {
        let Outcome::Class(c) = o else { continue };
        let class = if task == TaskKind::Binary {
            String::new()
        } else {
            format!(", class {}", c.class)
        };
        let without = |f: fn(&ClassRow) -> Option<u64>| -> Vec<String> {
            c.groups
                .iter()
                .filter(|r| f(r) == Some(0))
                .map(|r| r.group.join(" × "))
                .collect()
        };
        let no_pos = without(|r| r.positives);
        if !no_pos.is_empty() {
            notes.push(format!(
                "by {name}{class}: no positive labels in {}; their TPR and FNR are taken as 0, as \
                 Fairlearn does, which counts in the equal opportunity and equalized odds gaps",
                no_pos.join(", ")
            ));
        }
        let no_neg = without(|r| r.negatives);
        if !no_neg.is_empty() {
            notes.push(format!(
                "by {name}{class}: no negative labels in {}; their FPR and TNR are taken as 0, as \
                 Fairlearn does, which counts in the equalized odds gap",
                no_neg.join(", ")
            ));
        }
    }
    notes
}
