//! Measures record matching on the Fodors-Zagat restaurant benchmark (RIDDLE; shipped in
//! `data/restaurants/`), unsupervised: the labels are used only to score the result.
//!
//! `cargo run --release -p rapport-identity --example evaluate_matching`

use std::path::PathBuf;
use std::time::Instant;

use rapport_identity::csv_io::{read_dataset, read_labels, resolve_labels, Labels};
use rapport_identity::matching::{dedupe_dataset, infer_settings, link_datasets, MatchRun};

const THRESHOLD: f64 = 0.9;

fn row(name: &str, run: &MatchRun, truth: &[(usize, usize)], secs: f64) {
    let e = run.evaluate(truth, THRESHOLD);
    let p = &e.pairwise.scores;
    println!(
        "| {name} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} |",
        run.n_pairs(),
        e.blocking_recall,
        p.precision,
        p.recall,
        p.f1,
        e.bcubed.precision,
        e.bcubed.recall,
        e.bcubed.f1,
        secs
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/restaurants");
    let fodors = read_dataset(&dir.join("fodors.csv"), "id")?;
    let zagat = read_dataset(&dir.join("zagats.csv"), "id")?;
    let labels = read_labels(&dir.join("matches_fodors_zagats.csv"))?;

    println!("Fodors-Zagat restaurants ({} + {} records, threshold p >= {THRESHOLD}, inferred settings, no labels in training)\n", fodors.len(), zagat.len());
    println!("| mode | candidate pairs | blocking recall | precision | recall | F1 | B3 precision | B3 recall | B3 F1 | seconds |");
    println!("|---|---|---|---|---|---|---|---|---|---|");

    let started = Instant::now();
    let settings = infer_settings(&[&fodors, &zagat]);
    let run = link_datasets(&fodors, &zagat, &settings)?;
    let secs = started.elapsed().as_secs_f64();
    let truth = resolve_labels(&run, &labels)?;
    row("link fodors-zagat", &run, &truth, secs);

    let started = Instant::now();
    let union = fodors.union(&zagat, ("f", "z"))?;
    let settings_union = infer_settings(&[&union]);
    let dedupe = dedupe_dataset(&union, &settings_union)?;
    let secs = started.elapsed().as_secs_f64();
    let Labels::Pairs(pairs) = &labels else {
        return Err("expected pair labels".into());
    };
    let prefixed = Labels::Pairs(
        pairs
            .iter()
            .map(|(a, b)| (format!("f{a}"), format!("z{b}")))
            .collect(),
    );
    let truth = resolve_labels(&dedupe, &prefixed)?;
    row("dedupe union", &dedupe, &truth, secs);

    println!(
        "\nLink model (prior {:.3e}, EM {} iterations):",
        run.model.lambda, run.model.em_iterations
    );
    for c in &run.model.comparisons {
        let levels: Vec<String> = c
            .levels
            .iter()
            .skip(1)
            .map(|l| {
                format!(
                    "{} m={:.3} u={:.4} ({:+.2})",
                    l.label, l.m, l.u, l.log2_bayes_factor
                )
            })
            .collect();
        println!("- {}: {}", c.column, levels.join("; "));
    }
    if std::env::args().any(|a| a == "--settings") {
        println!("\n```toml\n{}```", settings.to_toml());
    }
    if std::env::args().any(|a| a == "--errors") {
        let truth = resolve_labels(&run, &labels)?;
        let t: std::collections::HashSet<_> = truth.iter().copied().collect();
        for p in run.pairs() {
            let is_true = t.contains(&(p.left, p.right));
            if (p.match_probability >= THRESHOLD) != is_true {
                let l = fodors.record(p.left).values;
                let r = zagat.record(p.right - run.n_left()).values;
                println!(
                    "{} p={:.3} {:?} | {:?}",
                    if is_true { "FN" } else { "FP" },
                    p.match_probability,
                    l,
                    r
                );
            }
        }
        for (a, b) in &truth {
            if !run.is_candidate(*a, *b) {
                println!(
                    "MISSED BY BLOCKING {:?} | {:?}",
                    fodors.record(*a).values,
                    zagat.record(*b - run.n_left()).values
                );
            }
        }
    }
    Ok(())
}
