//! UCI sentiment with the neural path: the MiniLM logistic head alone, the embedded
//! lexicon + linear model alone, and the two combined, on the crate's random train/test split
//! and cross-domain (train on two of Amazon, Yelp and IMDB, test on all of the third).
//!
//! Everything that is chosen (the head's SGD settings, the embedded model's settings and
//! blend, the weight of the combination) is chosen on a validation part of the training
//! sentences only, with both models trained on the rest; then both are retrained on all the
//! training sentences with those choices and scored once on the test sentences.
//!
//!     CARGO_TARGET_DIR=/root/.cache/tgt-neural cargo run --release -p rapport-interpret \
//!         --features neural --example evaluate_neural_sentiment -- [MODEL_DIR] [--write-head]
//!
//! With `--write-head`, the head of the random split (trained on all its training sentences
//! with the settings and mix chosen on validation) is written to
//! `model/neural-sentiment-head.json`, the head `rapport analyze --model neural` ships with,
//! and its test accuracy combined with the shipped embedded model (what the CLI computes) is
//! printed.

mod common;

use std::collections::HashMap;

use rapport_interpret::linear::SgdConfig;
use rapport_interpret::neural::{default_sentiment_sgd, SentimentHead};
use rapport_interpret::{
    is_test_split, train_weights, IntentTaxonomy, Interpreter, DEFAULT_HASH_BITS,
};

const TEMPERATURE: f32 = 3.0;
const DOMAINS: [&str; 3] = ["amazon", "yelp", "imdb"];
/// Weights of the neural score in the combination, tried on validation.
const MIXES: [f32; 11] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

type Rows = Vec<(String, bool)>;

/// SGD settings of the neural head tried on validation.
fn head_sweep() -> Vec<SgdConfig> {
    let mut out = Vec::new();
    for learning_rate in [0.005, 0.01, 0.05] {
        for epochs in [30, 60, 120] {
            for l2 in [1e-5, 1e-4, 1e-3, 1e-2] {
                out.push(SgdConfig {
                    learning_rate,
                    epochs,
                    l2,
                    ..default_sentiment_sgd()
                });
            }
        }
    }
    out
}

/// Settings of the embedded model tried on validation (those of `evaluate_uci_cross`).
fn embedded_sweep() -> Vec<SgdConfig> {
    let mut out = Vec::new();
    for l2 in [1e-5f32, 1e-4, 1e-3] {
        for learning_rate in [0.2f32, 0.5, 1.0] {
            for epochs in [10usize, 25] {
                out.push(SgdConfig {
                    epochs,
                    learning_rate,
                    decay: 0.3,
                    l2,
                    seed: 42,
                });
            }
        }
    }
    out
}

struct Models {
    head: SentimentHead,
    embedded: Interpreter,
}

impl Models {
    /// Neural score and embedded score of a sentence, both in [-1, 1].
    fn scores(&self, text: &str, embedding: &[f32]) -> (f32, f32) {
        let p = self.head.probability(embedding).expect("probability");
        (2.0 * p - 1.0, self.embedded.sentiment(text).score.get())
    }

    /// The combined score through the library's `SentimentHead::combine`.
    fn combined(&self, text: &str, embedding: &[f32], mix: f32) -> f32 {
        let other = self.embedded.sentiment(text).score;
        self.head
            .combine(embedding, other, mix)
            .expect("combine")
            .score
            .get()
    }
}

fn accuracy(rows: &[(String, bool)], decide: impl Fn(&str) -> bool) -> f64 {
    common::accuracy(rows, decide)
}

/// Chosen settings, and validation accuracies of the head, the embedded model and the mix.
struct Choice {
    head: SgdConfig,
    embedded: SgdConfig,
    blend: f32,
    mix: f32,
    val: (f64, f64, f64),
}

fn choose(train: &Rows, emb: &HashMap<&str, &[f32]>) -> Choice {
    let (fit, val): (Rows, Rows) = train
        .iter()
        .cloned()
        .partition(|(t, _)| !is_test_split(&format!("val:{t}")));
    let data = |rows: &Rows| -> Vec<(Vec<f32>, bool)> {
        rows.iter()
            .map(|(t, y)| (emb[t.as_str()].to_vec(), *y))
            .collect()
    };
    let (fit_e, val_e) = (data(&fit), data(&val));

    let mut best_head = (f64::MIN, default_sentiment_sgd(), None);
    for c in head_sweep() {
        let h = SentimentHead::train(&fit_e, &c).expect("head");
        let acc = val_e
            .iter()
            .filter(|(e, y)| (h.probability(e).expect("prob") >= 0.5) == *y)
            .count() as f64
            / val_e.len().max(1) as f64;
        if acc > best_head.0 {
            best_head = (acc, c, Some(h));
        }
    }
    let mut best_emb = (f64::MIN, SgdConfig::default(), 0.0f32, None);
    for c in embedded_sweep() {
        let w = train_weights(&fit, DEFAULT_HASH_BITS, 1.0, TEMPERATURE, &c, "validation")
            .expect("train");
        for blend in [0.4f32, 0.5, 0.6, 0.7, 0.8] {
            let mut w = w.clone();
            w.blend = blend;
            let i = common::sentiment_interpreter(Some(&w));
            let acc = accuracy(&val, |t| i.sentiment(t).score.get() >= 0.0);
            if acc > best_emb.0 {
                best_emb = (acc, c, blend, Some(i));
            }
        }
    }
    let models = Models {
        head: best_head.2.expect("a head"),
        embedded: best_emb.3.expect("an embedded model"),
    };
    let scored: Vec<(f32, f32, bool)> = val
        .iter()
        .map(|(t, y)| {
            let (n, e) = models.scores(t, emb[t.as_str()]);
            (n, e, *y)
        })
        .collect();
    let mut best_mix = (f64::MIN, 0.0f32);
    for mix in MIXES {
        let acc = scored
            .iter()
            .filter(|(n, e, y)| (mix * n + (1.0 - mix) * e >= 0.0) == *y)
            .count() as f64
            / scored.len().max(1) as f64;
        if acc > best_mix.0 {
            best_mix = (acc, mix);
        }
    }
    Choice {
        head: best_head.1,
        embedded: best_emb.1,
        blend: best_emb.2,
        mix: best_mix.1,
        val: (best_head.0, best_emb.0, best_mix.0),
    }
}

/// Test accuracies of the head, the embedded model and the mix, all retrained on `train`.
fn score(train: &Rows, test: &Rows, emb: &HashMap<&str, &[f32]>, c: &Choice) -> [f64; 3] {
    let data: Vec<(Vec<f32>, bool)> = train
        .iter()
        .map(|(t, y)| (emb[t.as_str()].to_vec(), *y))
        .collect();
    let w = train_weights(
        train,
        DEFAULT_HASH_BITS,
        c.blend,
        TEMPERATURE,
        &c.embedded,
        "evaluation",
    )
    .expect("train");
    let m = Models {
        head: SentimentHead::train(&data, &c.head).expect("head"),
        embedded: common::sentiment_interpreter(Some(&w)),
    };
    let scored: Vec<(f32, f32, bool)> = test
        .iter()
        .map(|(t, y)| {
            let (n, e) = m.scores(t, emb[t.as_str()]);
            (n, e, *y)
        })
        .collect();
    let acc = |f: &dyn Fn(f32, f32) -> f32| {
        scored
            .iter()
            .filter(|(n, e, y)| (f(*n, *e) >= 0.0) == *y)
            .count() as f64
            / scored.len().max(1) as f64
    };
    let combined = accuracy(test, |t| m.combined(t, emb[t], c.mix) >= 0.0);
    [acc(&|n, _| n), acc(&|_, e| e), combined]
}

fn describe(c: &Choice) -> String {
    format!(
        "head lr {} epochs {} l2 {:e}; embedded lr {} l2 {:e} epochs {} blend {}; mix {} \
         (val {:.1} / {:.1} / {:.1}%)",
        c.head.learning_rate,
        c.head.epochs,
        c.head.l2,
        c.embedded.learning_rate,
        c.embedded.l2,
        c.embedded.epochs,
        c.blend,
        c.mix,
        c.val.0 * 100.0,
        c.val.1 * 100.0,
        c.val.2 * 100.0
    )
}

/// Trains the head on all of `train` with the chosen settings, prints its test accuracy
/// combined with the shipped embedded model (as `rapport analyze --model neural` combines
/// them) and writes it to `model/neural-sentiment-head.json`.
fn write_head(train: &Rows, test: &Rows, emb: &HashMap<&str, &[f32]>, c: &Choice) {
    let data: Vec<(Vec<f32>, bool)> = train
        .iter()
        .map(|(t, y)| (emb[t.as_str()].to_vec(), *y))
        .collect();
    let head = SentimentHead::train(&data, &c.head).expect("head");
    let shipped = Interpreter::embedded(IntentTaxonomy::default_cx()).expect("interpreter");
    let acc = accuracy(test, |t| {
        let embedded = shipped.analyze(t).sentiment;
        head.combine_sentiment(emb[t], &embedded, c.mix)
            .expect("combine")
            .score
            .get()
            >= 0.0
    });
    let trained_on = format!(
        "UCI Sentiment Labelled Sentences (CC BY 4.0, Kotzias et al. 2015), the {} sentences of \
         the 80% train split by FNV-1a hash; head lr {} epochs {} l2 {:e} and mix {} chosen on a \
         validation part of it; examples/evaluate_neural_sentiment.rs --write-head",
        train.len(),
        c.head.learning_rate,
        c.head.epochs,
        c.head.l2,
        c.mix
    );
    let saved = head.save(c.mix, &trained_on);
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("model/neural-sentiment-head.json");
    let json = serde_json::to_string(&saved).expect("json") + "\n";
    std::fs::write(&path, json).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    println!(
        "\nshipped head + shipped embedded model (mix {}): test accuracy {:.1}% on {} sentences; written to {}\n",
        c.mix,
        acc * 100.0,
        test.len(),
        path.display()
    );
}

fn main() {
    let model = common::minilm_from_args();
    let domains: Vec<Rows> = DOMAINS.iter().map(|d| common::uci_domain(d)).collect();
    let texts: Vec<&str> = domains.iter().flatten().map(|(t, _)| t.as_str()).collect();
    let vectors = model.embed(&texts).expect("embed");
    let emb: HashMap<&str, &[f32]> = texts
        .iter()
        .copied()
        .zip(vectors.iter().map(Vec::as_slice))
        .collect();

    println!("| test set | MiniLM + head | embedded | combined | chosen on validation |");
    println!("|---|---|---|---|---|");
    let (train, test): (Rows, Rows) = domains
        .iter()
        .flatten()
        .cloned()
        .partition(|(t, _)| !is_test_split(t));
    let c = choose(&train, &emb);
    let [n, e, m] = score(&train, &test, &emb, &c);
    println!(
        "| random split ({} train / {} test) | {:.1}% | {:.1}% | **{:.1}%** | {} |",
        train.len(),
        test.len(),
        n * 100.0,
        e * 100.0,
        m * 100.0,
        describe(&c)
    );
    if std::env::args().any(|a| a == "--write-head") {
        write_head(&train, &test, &emb, &c);
    }
    let mut sum = [0.0; 3];
    for (k, target) in DOMAINS.iter().enumerate() {
        let test = domains[k].clone();
        let train: Rows = (0..3)
            .filter(|&j| j != k)
            .flat_map(|j| domains[j].clone())
            .collect();
        let c = choose(&train, &emb);
        let r = score(&train, &test, &emb, &c);
        for (s, v) in sum.iter_mut().zip(r) {
            *s += v;
        }
        println!(
            "| {target}, trained on the other two ({} sentences) | {:.1}% | {:.1}% | **{:.1}%** | {} |",
            test.len(),
            r[0] * 100.0,
            r[1] * 100.0,
            r[2] * 100.0,
            describe(&c)
        );
    }
    println!(
        "| cross-domain mean | {:.1}% | {:.1}% | **{:.1}%** | |",
        sum[0] / 3.0 * 100.0,
        sum[1] / 3.0 * 100.0,
        sum[2] / 3.0 * 100.0
    );
}
