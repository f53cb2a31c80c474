//! The report as plain-text tables, for terminals and logs.

use std::fmt::{self, Write as _};

use super::report::{
    Aggregate, ClassRow, GroupSummary, GroupingReport, Outcome, RegressionRow, Report,
};
use super::task::TaskKind;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fairness audit of {} rows: {}", self.rows, self.task)?;
        match (&self.positive, self.task) {
            (Some(p), _) => write!(f, ", positive outcome {p:?}")?,
            (None, TaskKind::Multiclass) => write!(f, ", classes {}", self.classes.join(", "))?,
            _ => {}
        }
        write!(f, "; prediction {:?}", self.columns.prediction)?;
        if let Some(l) = &self.columns.label {
            write!(f, ", label {l:?}")?;
        }
        if let Some(s) = &self.columns.score {
            write!(f, ", score {s:?}")?;
        }
        writeln!(f)?;
        if let Some(b) = &self.bootstrap {
            writeln!(
                f,
                "Intervals: {:.0}% percentile bootstrap, {} resamples, seed {}",
                b.confidence * 100.0,
                b.resamples,
                b.seed
            )?;
        }
        for g in &self.groupings {
            writeln!(f)?;
            grouping(f, g, self.task)?;
        }
        if !self.notes.is_empty() {
            writeln!(f, "\nNotes:")?;
            for n in &self.notes {
                writeln!(f, "  - {n}")?;
            }
        }
        Ok(())
    }
}

fn grouping(f: &mut fmt::Formatter<'_>, g: &GroupingReport, task: TaskKind) -> fmt::Result {
    let name = g.name();
    if task == TaskKind::Multiclass {
        writeln!(f, "By {name}")?;
        let scored = g.overall.mean_score.is_some();
        let header: &[&str] = if scored {
            &["group", "count", "accuracy", "mean score"]
        } else {
            &["group", "count", "accuracy"]
        };
        let mut rows = vec![cells(header)];
        for s in g.groups.iter().chain(std::iter::once(&g.overall)) {
            let mut row = summary_cells(s);
            row.truncate(header.len());
            rows.push(row);
        }
        table(f, &rows)?;
    }
    for o in &g.outcomes {
        match o {
            Outcome::Class(c) => {
                if task == TaskKind::Multiclass {
                    writeln!(f, "\nBy {name}, class {} (one-vs-rest)", c.class)?;
                } else {
                    writeln!(f, "By {name}")?;
                }
                let labelled = c.overall.positives.is_some();
                let scored = task == TaskKind::Binary && g.overall.mean_score.is_some();
                let mut header = vec!["group", "count", "selected", "selection"];
                if labelled {
                    header.extend(["TPR", "FPR", "TNR", "FNR", "accuracy"]);
                }
                if scored {
                    header.push("mean score");
                }
                let mut rows = vec![cells(&header)];
                let summaries = g.groups.iter().chain(std::iter::once(&g.overall));
                for (r, s) in c
                    .groups
                    .iter()
                    .chain(std::iter::once(&c.overall))
                    .zip(summaries)
                {
                    let mut row = class_cells(r, labelled);
                    if scored {
                        row.push(opt(s.mean_score));
                    }
                    rows.push(row);
                }
                table(f, &rows)?;
                aggregates(f, &c.aggregates)?;
            }
            Outcome::Regression(r) => {
                writeln!(f, "By {name}")?;
                let labelled = r.overall.mean_label.is_some();
                let scored = g.overall.mean_score.is_some();
                let mut header = vec!["group", "count", "mean prediction"];
                if labelled {
                    header.extend(["mean label", "mean error", "MAE", "RMSE"]);
                }
                if scored {
                    header.push("mean score");
                }
                let mut rows = vec![cells(&header)];
                let summaries = g.groups.iter().chain(std::iter::once(&g.overall));
                for (r, s) in r
                    .groups
                    .iter()
                    .chain(std::iter::once(&r.overall))
                    .zip(summaries)
                {
                    let mut row = regression_cells(r, labelled);
                    if scored {
                        row.push(opt(s.mean_score));
                    }
                    rows.push(row);
                }
                table(f, &rows)?;
                aggregates(f, &r.aggregates)?;
            }
        }
    }
    if g.empty_group_count > 0 {
        let listed: Vec<String> = g.empty_groups.iter().map(|k| k.join(" × ")).collect();
        writeln!(
            f,
            "  no rows: {}",
            if listed.is_empty() {
                format!("{} combinations", g.empty_group_count)
            } else {
                listed.join(", ")
            }
        )?;
    }
    Ok(())
}

fn cells(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| (*x).to_owned()).collect()
}

fn name(group: &[String]) -> String {
    if group.is_empty() {
        "(all)".to_owned()
    } else {
        group.join(" × ")
    }
}

fn num(x: f64) -> String {
    format!("{x:.4}")
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), num)
}

fn summary_cells(s: &GroupSummary) -> Vec<String> {
    vec![
        name(&s.group),
        s.count.to_string(),
        opt(s.accuracy),
        opt(s.mean_score),
    ]
}

fn class_cells(r: &ClassRow, labelled: bool) -> Vec<String> {
    let mut row = vec![
        name(&r.group),
        r.count.to_string(),
        r.selected.to_string(),
        num(r.selection_rate),
    ];
    if labelled {
        row.extend([
            opt(r.true_positive_rate),
            opt(r.false_positive_rate),
            opt(r.true_negative_rate),
            opt(r.false_negative_rate),
            opt(r.accuracy),
        ]);
    }
    row
}

fn regression_cells(r: &RegressionRow, labelled: bool) -> Vec<String> {
    let mut row = vec![name(&r.group), r.count.to_string(), num(r.mean_prediction)];
    if labelled {
        row.extend([
            opt(r.mean_label),
            opt(r.mean_error),
            opt(r.mean_absolute_error),
            opt(r.root_mean_squared_error),
        ]);
    }
    row
}

/// Columns padded to their widest cell; the first left-aligned, the rest right-aligned.
fn table(f: &mut fmt::Formatter<'_>, rows: &[Vec<String>]) -> fmt::Result {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::from(" ");
        for (c, cell) in r.iter().enumerate() {
            let pad = width[c] - cell.chars().count();
            if c == 0 {
                let _ = write!(line, " {cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(line, "  {}{cell}", " ".repeat(pad));
            }
        }
        writeln!(f, "{}", line.trim_end())?;
    }
    Ok(())
}

fn value(a: &Aggregate) -> String {
    let v = a.value.map_or_else(|| "undefined".to_owned(), num);
    match a.interval {
        Some(i) => format!("{v} [{} to {}]", num(i.low), num(i.high)),
        None => v,
    }
}

/// Difference and ratio of each measure on one line.
fn aggregates(f: &mut fmt::Formatter<'_>, list: &[Aggregate]) -> fmt::Result {
    let mut rows = Vec::new();
    let mut i = 0;
    while i < list.len() {
        let a = &list[i];
        let mut row = vec![a.metric.measure().to_owned()];
        row.push(format!("difference {}", value(a)));
        if let Some(b) = list
            .get(i + 1)
            .filter(|b| b.metric.measure() == a.metric.measure())
        {
            row.push(format!("ratio {}", value(b)));
            i += 1;
        }
        rows.push(row);
        i += 1;
    }
    for r in &rows {
        let mut line = format!("  {:<24}", r[0]);
        for cell in &r[1..] {
            let _ = write!(line, "  {cell:<36}");
        }
        writeln!(f, "{}", line.trim_end())?;
    }
    Ok(())
}
