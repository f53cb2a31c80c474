//! Measures every figure of `rapport-interpret` on public data and prints a markdown table.
//!
//!     cargo run --release -p rapport-interpret --example evaluate
//!
//! Data: `data/uci-sentiment`, `data/banking77`, `data/clinc150` at the repository root.

mod common;

use common::{encode, macro_f1, Row};

use std::collections::HashMap;
use std::time::Instant;

use rapport_interpret::{
    ClassifierKind, IntentClassifier, IntentConfig, IntentTaxonomy, Interpreter,
};

fn variants() -> Vec<(&'static str, IntentConfig)> {
    let base = IntentConfig::default();
    vec![
        (
            "words 1-2, softmax",
            IntentConfig {
                char_ngrams: None,
                ..base
            },
        ),
        ("words 1-2 + chars 3-5, softmax (default)", base),
        (
            "words 1-2 + chars 3-5, centroid",
            IntentConfig {
                classifier: ClassifierKind::Centroid,
                ..base
            },
        ),
    ]
}

fn banking77(rows: &mut Vec<Row>) {
    let train = common::csv_rows("banking77/train.csv");
    let test = common::csv_rows("banking77/test.csv");
    let mut labels = Vec::new();
    let ytrain = encode(&train, &mut labels);
    let ytest = encode(&test, &mut labels);
    let examples: Vec<(&str, usize)> = train.iter().map(|(t, _)| t.as_str()).zip(ytrain).collect();
    for (name, cfg) in variants() {
        let t0 = Instant::now();
        let clf = IntentClassifier::train_examples(labels.clone(), &examples, 0.0, cfg);
        let secs = t0.elapsed().as_secs_f64();
        let pred: Vec<usize> = test.iter().map(|(t, _)| clf.best(t).0).collect();
        let acc =
            pred.iter().zip(&ytest).filter(|(p, g)| p == g).count() as f64 / test.len() as f64;
        let f1 = macro_f1(&ytest, &pred, labels.len());
        rows.push(Row {
            what: format!("BANKING77 test accuracy / macro-F1 ({name})"),
            figure: format!("{:.1}% / {:.1}%", acc * 100.0, f1 * 100.0),
            note: format!("train {} ex, {:.1} s to train", train.len(), secs),
        });
    }
}

fn clinc150(rows: &mut Vec<Row>) {
    let path = common::data_dir().join("clinc150/data_full.json");
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let data: HashMap<String, Vec<(String, String)>> =
        serde_json::from_str(&json).expect("clinc json");
    let part = |k: &str| data.get(k).cloned().unwrap_or_default();
    let (train, val, test) = (part("train"), part("val"), part("test"));
    let (oos_val, oos_test) = (part("oos_val"), part("oos_test"));
    let mut labels = Vec::new();
    let ytrain = encode(&train, &mut labels);
    let yval = encode(&val, &mut labels);
    let ytest = encode(&test, &mut labels);
    let examples: Vec<(&str, usize)> = train.iter().map(|(t, _)| t.as_str()).zip(ytrain).collect();
    for (name, cfg) in variants().into_iter().skip(1) {
        let t0 = Instant::now();
        let clf = IntentClassifier::train_examples(labels.clone(), &examples, 0.0, cfg);
        let secs = t0.elapsed().as_secs_f64();
        let score = |rows: &[(String, String)]| -> Vec<(usize, f32)> {
            rows.iter().map(|(t, _)| clf.best(t)).collect()
        };
        let (val_pred, oos_val_pred) = (score(&val), score(&oos_val));
        // Threshold: maximise the mean of in-scope accuracy and OOS recall on validation.
        let eval = |pred: &[(usize, f32)], gold: &[usize], oos: &[(usize, f32)], th: f32| {
            let ins = pred
                .iter()
                .zip(gold)
                .filter(|((p, c), g)| p == *g && *c >= th)
                .count() as f64
                / gold.len() as f64;
            let rec = oos.iter().filter(|(_, c)| *c < th).count() as f64 / oos.len() as f64;
            (ins, rec)
        };
        // Two operating points, both tuned on validation only: the threshold maximising the
        // mean of in-scope accuracy and OOS recall, and the one maximising accuracy over all
        // validation queries (OOS is 100 of 3,100 there, so it favours in-scope accuracy).
        let mut balanced = (0.0f64, 0.0f32);
        let mut overall = (0.0f64, 0.0f32);
        let n_val = (yval.len() + oos_val_pred.len()) as f64;
        for k in 0..100 {
            let th = k as f32 / 100.0;
            let (ins, rec) = eval(&val_pred, &yval, &oos_val_pred, th);
            if (ins + rec) / 2.0 > balanced.0 {
                balanced = ((ins + rec) / 2.0, th);
            }
            let acc = (ins * yval.len() as f64 + rec * oos_val_pred.len() as f64) / n_val;
            if acc > overall.0 {
                overall = (acc, th);
            }
        }
        let (test_pred, oos_test_pred) = (score(&test), score(&oos_test));
        let (ins0, _) = eval(&test_pred, &ytest, &oos_test_pred, 0.0);
        for (point, th) in [("balanced", balanced.1), ("max val accuracy", overall.1)] {
            let (ins, rec) = eval(&test_pred, &ytest, &oos_test_pred, th);
            rows.push(Row {
                what: format!("CLINC150 in-scope accuracy / OOS recall ({name}; {point})"),
                figure: format!("{:.1}% / {:.1}%", ins * 100.0, rec * 100.0),
                note: format!(
                    "threshold {th:.2} tuned on val+oos_val; {:.1}% in-scope with no threshold; {:.1} s to train",
                    ins0 * 100.0,
                    secs
                ),
            });
        }
    }
}

fn sentiment(rows: &mut Vec<Row>) {
    let (train, test) = common::uci();
    let interp = Interpreter::embedded(IntentTaxonomy::default_cx()).expect("interpreter");
    let lex = common::accuracy(&test, |t| interp.lexicon_score(t) >= 0.0);
    let trained = common::accuracy(&test, |t| interp.sentiment(t).score.get() >= 0.0);
    let note = format!(
        "UCI test split {} sentences (train {})",
        test.len(),
        train.len()
    );
    rows.push(Row {
        what: "UCI sentiment accuracy, lexicon + rules only".into(),
        figure: format!("{:.1}%", lex * 100.0),
        note: note.clone(),
    });
    rows.push(Row {
        what: "UCI sentiment accuracy, lexicon + trained logistic regression".into(),
        figure: format!("{:.1}%", trained * 100.0),
        note,
    });
}

fn latency(rows: &mut Vec<Row>) {
    let interp = Interpreter::embedded(IntentTaxonomy::default_cx()).expect("interpreter");
    let texts = common::csv_rows("banking77/test.csv");
    let mut times: Vec<f64> = Vec::with_capacity(texts.len());
    for (t, _) in texts.iter().take(200) {
        std::hint::black_box(interp.analyze(t));
    }
    for (t, _) in &texts {
        let t0 = Instant::now();
        std::hint::black_box(interp.analyze(t));
        times.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    rows.push(Row {
        what: "Full analyze() latency per message, mean / p99".into(),
        figure: format!("{mean:.0} µs / {p99:.0} µs"),
        note: format!(
            "{} BANKING77 test texts, one thread, default taxonomy",
            times.len()
        ),
    });
}

fn main() {
    let mut rows = Vec::new();
    sentiment(&mut rows);
    banking77(&mut rows);
    clinc150(&mut rows);
    latency(&mut rows);
    println!("| measure | figure | note |\n|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} |", r.what, r.figure, r.note);
    }
}
