//! CLINC150 with out-of-scope detection: a few feature and regularisation settings of the
//! embedded intent classifier, each chosen between on **validation** in-scope accuracy, and
//! thresholds chosen on validation (`val` + `oos_val`) only; figures on `test` + `oos_test`.
//!
//!     cargo run --release -p rapport-interpret --example evaluate_clinc

mod common;

use std::collections::HashMap;
use std::time::Instant;

use rapport_interpret::intent_eval::{evaluate, tune_threshold, ThresholdGoal};
use rapport_interpret::linear::SgdConfig;
use rapport_interpret::{IntentClassifier, IntentConfig};

fn r(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

fn main() {
    let path = common::data_dir().join("clinc150/data_full.json");
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let data: HashMap<String, Vec<(String, String)>> =
        serde_json::from_str(&json).expect("clinc json");
    let part = |k: &str| data.get(k).cloned().unwrap_or_default();
    let with_oos = |a: &str, b: &str| {
        let mut v = part(a);
        v.extend(part(b).into_iter().map(|(t, _)| (t, "oos".to_string())));
        v
    };
    let train = part("train");
    let (val, test) = (with_oos("val", "oos_val"), with_oos("test", "oos_test"));
    let refs = |v: &[(String, String)]| -> Vec<(String, String)> { v.to_vec() };
    let (val, test) = (refs(&val), refs(&test));
    let mut labels = Vec::new();
    let ytrain = common::encode(&train, &mut labels);
    let examples: Vec<(&str, usize)> = train.iter().map(|(t, _)| t.as_str()).zip(ytrain).collect();
    let base = IntentConfig::default();
    let variants: Vec<(&str, IntentConfig)> = vec![
        ("words 1-2 + chars 3-5 (default)", base),
        (
            "words 1-2 + chars 2-5",
            IntentConfig {
                char_ngrams: Some((2, 5)),
                ..base
            },
        ),
        (
            "words 1-2 + chars 3-6, char weight 0.8",
            IntentConfig {
                char_ngrams: Some((3, 6)),
                char_weight: 0.8,
                ..base
            },
        ),
        (
            "default, 30 epochs, l2 1e-7",
            IntentConfig {
                sgd: SgdConfig {
                    epochs: 30,
                    l2: 1e-7,
                    ..base.sgd
                },
                ..base
            },
        ),
        (
            "default, l2 1e-5",
            IntentConfig {
                sgd: SgdConfig {
                    l2: 1e-5,
                    ..base.sgd
                },
                ..base
            },
        ),
    ];
    println!("| setting | val in-scope acc (no threshold) | test in-scope / OOS recall, balanced | test in-scope / OOS recall, val OOS recall >= 0.80 | train s |");
    println!("|---|---|---|---|---|");
    let mut best: Option<(f64, &str, IntentClassifier)> = None;
    for (name, cfg) in &variants {
        let t0 = Instant::now();
        let mut clf = IntentClassifier::train_examples(labels.clone(), &examples, 0.0, *cfg);
        let secs = t0.elapsed().as_secs_f64();
        let v0 = evaluate(&clf, &r(&val), "oos").in_scope_accuracy;
        let mut cells = Vec::new();
        for goal in [ThresholdGoal::Balanced, ThresholdGoal::MinOosRecall(0.80)] {
            let (th, _) = tune_threshold(&clf, &r(&val), "oos", goal);
            clf.set_threshold(th);
            let t = evaluate(&clf, &r(&test), "oos");
            cells.push(format!(
                "{:.1}% / {:.1}% (th {th:.2})",
                t.in_scope_accuracy * 100.0,
                t.oos_recall.unwrap_or(0.0) * 100.0
            ));
        }
        println!(
            "| {name} | {:.1}% | {} | {} | {secs:.1} |",
            v0 * 100.0,
            cells[0],
            cells[1]
        );
        if best.as_ref().is_none_or(|b| v0 > b.0) {
            best = Some((v0, name, clf));
        }
    }
    if let Some((v0, name, _)) = best {
        println!(
            "\nbest on validation: {name} ({:.1}% val in-scope accuracy)",
            v0 * 100.0
        );
    }
}
