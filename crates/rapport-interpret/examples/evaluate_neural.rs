//! Measures the neural path (all-MiniLM-L6-v2 + linear heads) on public data, next to the
//! embedded lexicon/linear models, and prints a markdown table.
//!
//!     CARGO_TARGET_DIR=/tmp/target-neural cargo run --release -p rapport-interpret \
//!         --features neural --example evaluate_neural -- [MODEL_DIR]
//!
//! Without MODEL_DIR the model is pulled (if needed) into the default models directory
//! (`$RAPPORT_MODELS_DIR`, else `~/.cache/rapport/models`). Data: `data/uci-sentiment` and
//! `data/banking77` at the repository root.

mod common;

use common::{encode, macro_f1, Row};

use std::path::PathBuf;
use std::time::Instant;

use rapport_interpret::linear::SgdConfig;
use rapport_interpret::neural::{
    default_intent_sgd, default_models_dir, mix_probabilities, pull_minilm, IntentHead, MiniLm,
    SentimentHead,
};
use rapport_interpret::{IntentClassifier, IntentConfig, IntentTaxonomy, Interpreter};

fn accuracy(pred: &[usize], gold: &[usize]) -> f64 {
    pred.iter().zip(gold).filter(|(p, g)| p == g).count() as f64 / gold.len().max(1) as f64
}

/// Learning rates, epochs and L2 penalties tried (on validation data only).
fn sweep() -> Vec<SgdConfig> {
    let mut out = Vec::new();
    for learning_rate in [0.01, 0.05, 0.2] {
        for epochs in [30, 60] {
            for l2 in [1e-5, 1e-3] {
                out.push(SgdConfig {
                    learning_rate,
                    epochs,
                    l2,
                    ..default_intent_sgd()
                });
            }
        }
    }
    out
}

fn describe(c: &SgdConfig) -> String {
    format!("lr {} epochs {} l2 {}", c.learning_rate, c.epochs, c.l2)
}

/// Splits training rows 80/20 into fit/validation by position (every fifth row).
fn split<T: Clone>(rows: &[T]) -> (Vec<T>, Vec<T>) {
    let mut fit = Vec::new();
    let mut val = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        if i % 5 == 4 {
            val.push(r.clone());
        } else {
            fit.push(r.clone());
        }
    }
    (fit, val)
}

fn embed(model: &MiniLm, texts: &[(String, impl Sized)]) -> (Vec<Vec<f32>>, f64) {
    let refs: Vec<&str> = texts.iter().map(|(t, _)| t.as_str()).collect();
    let t0 = Instant::now();
    let e = model.embed(&refs).expect("embed");
    (e, t0.elapsed().as_secs_f64())
}

fn main() {
    let dir = match std::env::args().nth(1) {
        Some(d) => PathBuf::from(d),
        None => pull_minilm(&default_models_dir()).expect("pull all-MiniLM-L6-v2"),
    };
    let t0 = Instant::now();
    let model = MiniLm::load(&dir).expect("load all-MiniLM-L6-v2");
    let load_secs = t0.elapsed().as_secs_f64();
    let mut rows = Vec::new();
    let cfg = default_intent_sgd();

    // Latency of one sentence (after a warm-up), BANKING77 test texts.
    let b_train = common::csv_rows("banking77/train.csv");
    let b_test = common::csv_rows("banking77/test.csv");
    let (mean, p95) = common::single_sentence_latency(|t| model.embed_one(t));

    // Sentiment: UCI train/test split of the crate.
    let (u_train, u_test) = common::uci();
    let (e_utrain, s1) = embed(&model, &u_train);
    let (e_utest, s2) = embed(&model, &u_test);
    let data: Vec<(Vec<f32>, bool)> = e_utrain
        .into_iter()
        .zip(u_train.iter().map(|(_, y)| *y))
        .collect();
    // Hyper-parameters are chosen on a validation part of the train split only.
    let (fit, val) = split(&data);
    let mut best = (f64::MIN, cfg);
    for c in sweep() {
        let h = SentimentHead::train(&fit, &c).expect("sentiment head");
        let acc = val
            .iter()
            .filter(|(e, y)| (h.probability(e).expect("prob") >= 0.5) == *y)
            .count() as f64
            / val.len().max(1) as f64;
        if acc > best.0 {
            best = (acc, c);
        }
    }
    let s_cfg = best.1;
    let t0 = Instant::now();
    let head = SentimentHead::train(&data, &s_cfg).expect("sentiment head");
    let s_train_secs = t0.elapsed().as_secs_f64();
    let ok = e_utest
        .iter()
        .zip(&u_test)
        .filter(|(e, (_, y))| (head.probability(e).expect("prob") >= 0.5) == *y)
        .count();
    let interp = Interpreter::embedded(IntentTaxonomy::default_cx()).expect("interpreter");
    let embedded_uci = common::accuracy(&u_test, |t| interp.sentiment(t).score.get() >= 0.0);
    rows.push(Row {
        what: "UCI sentiment accuracy, MiniLM + logistic head".into(),
        figure: format!("{:.1}%", ok as f64 * 100.0 / u_test.len() as f64),
        note: format!(
            "train {} / test {} sentences; head trained in {s_train_secs:.2} s; SGD {} (val {:.1}%)",
            u_train.len(),
            u_test.len(),
            describe(&s_cfg),
            best.0 * 100.0
        ),
    });
    rows.push(Row {
        what: "UCI sentiment accuracy, embedded lexicon + logistic regression (same run)".into(),
        figure: format!("{:.1}%", embedded_uci * 100.0),
        note: "same test split".into(),
    });

    // Intent: BANKING77, head trained on the full train split.
    let mut labels = Vec::new();
    let ytrain = encode(&b_train, &mut labels);
    let ytest = encode(&b_test, &mut labels);
    let (e_btrain, s3) = embed(&model, &b_train);
    let (e_btest, s4) = embed(&model, &b_test);
    let data: Vec<(Vec<f32>, usize)> = e_btrain.into_iter().zip(ytrain.iter().copied()).collect();
    let (fit, val) = split(&data);
    let mut best = (f64::MIN, cfg);
    for c in sweep()
        .into_iter()
        .filter(|c| c.epochs == 30 && c.l2 == 1e-5)
    {
        let h = IntentHead::train(labels.clone(), &fit, 0.0, &c).expect("intent head");
        let acc = val
            .iter()
            .filter(|(e, y)| h.best(e).expect("best").0 == *y)
            .count() as f64
            / val.len().max(1) as f64;
        if acc > best.0 {
            best = (acc, c);
        }
    }
    let i_cfg = best.1;
    let t0 = Instant::now();
    let ihead = IntentHead::train(labels.clone(), &data, 0.0, &i_cfg).expect("intent head");
    let i_train_secs = t0.elapsed().as_secs_f64();
    let pred: Vec<usize> = e_btest
        .iter()
        .map(|e| ihead.best(e).expect("best").0)
        .collect();
    rows.push(Row {
        what: "BANKING77 test accuracy / macro-F1, MiniLM + softmax head".into(),
        figure: format!(
            "{:.1}% / {:.1}%",
            accuracy(&pred, &ytest) * 100.0,
            macro_f1(&ytest, &pred, labels.len()) * 100.0
        ),
        note: format!(
            "train {} / test {}; head trained in {i_train_secs:.1} s; SGD {} (val {:.1}%)",
            b_train.len(),
            b_test.len(),
            describe(&i_cfg),
            best.0 * 100.0
        ),
    });
    let examples: Vec<(&str, usize)> = b_train
        .iter()
        .map(|(t, _)| t.as_str())
        .zip(ytrain.iter().copied())
        .collect();
    let t0 = Instant::now();
    let clf =
        IntentClassifier::train_examples(labels.clone(), &examples, 0.0, IntentConfig::default());
    let e_train_secs = t0.elapsed().as_secs_f64();
    let pred: Vec<usize> = b_test.iter().map(|(t, _)| clf.best(t).0).collect();
    rows.push(Row {
        what: "BANKING77 test accuracy / macro-F1, embedded words+chars softmax (same run)".into(),
        figure: format!(
            "{:.1}% / {:.1}%",
            accuracy(&pred, &ytest) * 100.0,
            macro_f1(&ytest, &pred, labels.len()) * 100.0
        ),
        note: format!("trained in {e_train_secs:.1} s"),
    });

    // The two mixed: intent = best of mix * head + (1 - mix) * n-gram probabilities (what
    // the live neural interpreter does), mix chosen on the validation fifth with both models
    // trained on the other four fifths.
    let (fit_texts, val_texts) = split(&examples);
    let fit_head = IntentHead::train(labels.clone(), &fit, 0.0, &i_cfg).expect("intent head");
    let fit_clf =
        IntentClassifier::train_examples(labels.clone(), &fit_texts, 0.0, IntentConfig::default());
    let mixed = |head: &IntentHead, clf: &IntentClassifier, e: &[f32], t: &str, mix: f32| {
        let mut h = head.scores(e).expect("scores");
        mix_probabilities(&mut h, &clf.scores(t), mix);
        h.into_iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(0, |(i, _)| i)
    };
    let mut best_mix = (f64::MIN, 1.0f32);
    for mix in [0.5f32, 0.6, 0.7, 0.8, 0.9, 1.0] {
        let acc = val
            .iter()
            .zip(&val_texts)
            .filter(|((e, y), (t, _))| mixed(&fit_head, &fit_clf, e, t, mix) == *y)
            .count() as f64
            / val.len().max(1) as f64;
        if acc > best_mix.0 {
            best_mix = (acc, mix);
        }
    }
    let pred: Vec<usize> = e_btest
        .iter()
        .zip(&b_test)
        .map(|(e, (t, _))| mixed(&ihead, &clf, e, t, best_mix.1))
        .collect();
    rows.push(Row {
        what: "BANKING77 test accuracy / macro-F1, MiniLM head mixed with the embedded softmax"
            .into(),
        figure: format!(
            "{:.1}% / {:.1}%",
            accuracy(&pred, &ytest) * 100.0,
            macro_f1(&ytest, &pred, labels.len()) * 100.0
        ),
        note: format!(
            "mix {:.1} of the head (from 0.5-1.0, val {:.1}%)",
            best_mix.1,
            best_mix.0 * 100.0
        ),
    });

    let n = u_train.len() + u_test.len() + b_train.len() + b_test.len();
    let secs = s1 + s2 + s3 + s4;
    rows.push(Row {
        what: format!("Embedding throughput, batch {}", model.batch_size()),
        figure: format!("{:.0} sentences/s", n as f64 / secs),
        note: format!("{n} UCI + BANKING77 sentences in {secs:.1} s"),
    });
    rows.push(Row {
        what: "Single-sentence embedding latency, mean / p95".into(),
        figure: format!("{mean:.1} ms / {p95:.1} ms"),
        note: "100 BANKING77 test texts, after warm-up".into(),
    });
    rows.push(Row {
        what: "Model load time".into(),
        figure: format!("{:.2} s", load_secs),
        note: format!("{} (mmap safetensors + tokenizer)", dir.display()),
    });

    println!("| measure | figure | note |\n|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} |", r.what, r.figure, r.note);
    }
}
