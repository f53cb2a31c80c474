//! UCI sentiment with the neural path: the MiniLM logistic head alone, the embedded
//! lexicon + linear model alone, and the two combined, on the crate's random train/test split
//! and cross-domain (train on two of Amazon, Yelp and IMDB, test on all of the third).
//!
//! Everything that is chosen (how the head is trained: SGD settings or a full-batch L2
//! penalty; the embedded model's settings and blend; the weight of the combination) is chosen
//! on validation sentences only, with both models trained on the rest; then both are
//! retrained on all the training sentences with those choices and scored once on the test
//! sentences. Validation is a hash-chosen part of the training sentences; the cross-domain
//! tests are also run a second way, validating on each training domain in turn with the
//! models fitted on the other.
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
use rapport_interpret::neural::{default_sentiment_sgd, FullBatchConfig, SentimentHead};
use rapport_interpret::{
    is_test_split, train_weights, IntentTaxonomy, Interpreter, DEFAULT_HASH_BITS,
};

const TEMPERATURE: f32 = 3.0;
const DOMAINS: [&str; 3] = ["amazon", "yelp", "imdb"];
/// Weights of the neural score in the combination, tried on validation.
const MIXES: [f32; 11] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

type Rows = Vec<(String, bool)>;
/// Embeddings with their labels (positive or not).
type Embedded = Vec<(Vec<f32>, bool)>;

/// How the neural head is trained: SGD for a fixed number of epochs, or to convergence by
/// full-batch L-BFGS with an L2 penalty.
#[derive(Debug, Clone, Copy)]
enum HeadSetting {
    Sgd(SgdConfig),
    FullBatch(f32),
}

impl HeadSetting {
    fn train(&self, data: &[(Vec<f32>, bool)]) -> SentimentHead {
        match self {
            HeadSetting::Sgd(c) => SentimentHead::train(data, c).expect("head"),
            HeadSetting::FullBatch(l2) => {
                let cfg = FullBatchConfig {
                    l2: *l2,
                    ..FullBatchConfig::default()
                };
                SentimentHead::train_full_batch(data, &cfg).expect("head").0
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            HeadSetting::Sgd(c) => format!(
                "head lr {} epochs {} l2 {:e}",
                c.learning_rate, c.epochs, c.l2
            ),
            HeadSetting::FullBatch(l2) => format!("head full-batch l2 {l2:e}"),
        }
    }
}

/// Settings of the neural head tried on validation: 36 SGD settings and 8 full-batch
/// penalties.
fn head_sweep() -> Vec<HeadSetting> {
    let mut out = Vec::new();
    for learning_rate in [0.005, 0.01, 0.05] {
        for epochs in [30, 60, 120] {
            for l2 in [1e-5, 1e-4, 1e-3, 1e-2] {
                out.push(HeadSetting::Sgd(SgdConfig {
                    learning_rate,
                    epochs,
                    l2,
                    ..default_sentiment_sgd()
                }));
            }
        }
    }
    for l2 in [1.0f32, 3e-1, 1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4] {
        out.push(HeadSetting::FullBatch(l2));
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
    head: HeadSetting,
    embedded: SgdConfig,
    blend: f32,
    mix: f32,
    val: (f64, f64, f64),
}

/// The validation fold of `train`: a hash-chosen part of it, the rest to fit on.
fn hash_fold(train: &Rows) -> Vec<(Rows, Rows)> {
    let (fit, val): (Rows, Rows) = train
        .iter()
        .cloned()
        .partition(|(t, _)| !is_test_split(&format!("val:{t}")));
    vec![(fit, val)]
}

/// One fold per training domain: fit on the others, validate on it. Settings that do well
/// on a domain they were not fitted on are the ones a cross-domain test asks for.
fn domain_folds(domains: &[&Rows]) -> Vec<(Rows, Rows)> {
    (0..domains.len())
        .map(|k| {
            let fit: Rows = (0..domains.len())
                .filter(|&j| j != k)
                .flat_map(|j| domains[j].iter().cloned())
                .collect();
            (fit, domains[k].clone())
        })
        .collect()
}

/// Chooses every setting by its validation accuracy averaged over `folds` (pairs of fit
/// and validation rows); the mix on the validation rows of all folds together.
fn choose(folds: &[(Rows, Rows)], emb: &HashMap<&str, &[f32]>) -> Choice {
    let data = |rows: &Rows| -> Embedded {
        rows.iter()
            .map(|(t, y)| (emb[t.as_str()].to_vec(), *y))
            .collect()
    };
    let embedded: Vec<(Embedded, Embedded)> = folds
        .iter()
        .map(|(fit, val)| (data(fit), data(val)))
        .collect();
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;

    let mut best_head = (
        f64::MIN,
        HeadSetting::Sgd(default_sentiment_sgd()),
        Vec::new(),
    );
    for c in head_sweep() {
        let heads: Vec<SentimentHead> = embedded.iter().map(|(fit_e, _)| c.train(fit_e)).collect();
        let accs: Vec<f64> = heads
            .iter()
            .zip(&embedded)
            .map(|(h, (_, val_e))| {
                val_e
                    .iter()
                    .filter(|(e, y)| (h.probability(e).expect("prob") >= 0.5) == *y)
                    .count() as f64
                    / val_e.len().max(1) as f64
            })
            .collect();
        let acc = mean(&accs);
        if acc > best_head.0 {
            best_head = (acc, c, heads);
        }
    }
    let mut best_emb = (f64::MIN, SgdConfig::default(), 0.0f32, Vec::new());
    for c in embedded_sweep() {
        let weights: Vec<_> = folds
            .iter()
            .map(|(fit, _)| {
                train_weights(fit, DEFAULT_HASH_BITS, 1.0, TEMPERATURE, &c, "validation")
                    .expect("train")
            })
            .collect();
        for blend in [0.4f32, 0.5, 0.6, 0.7, 0.8] {
            let interpreters: Vec<Interpreter> = weights
                .iter()
                .map(|w| {
                    let mut w = w.clone();
                    w.blend = blend;
                    common::sentiment_interpreter(Some(&w))
                })
                .collect();
            let accs: Vec<f64> = interpreters
                .iter()
                .zip(folds)
                .map(|(i, (_, val))| accuracy(val, |t| i.sentiment(t).score.get() >= 0.0))
                .collect();
            let acc = mean(&accs);
            if acc > best_emb.0 {
                best_emb = (acc, c, blend, interpreters);
            }
        }
    }
    let mut scored: Vec<(f32, f32, bool)> = Vec::new();
    for ((head, embedded), (_, val)) in best_head.2.into_iter().zip(best_emb.3).zip(folds) {
        let models = Models { head, embedded };
        scored.extend(val.iter().map(|(t, y)| {
            let (n, e) = models.scores(t, emb[t.as_str()]);
            (n, e, *y)
        }));
    }
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
        head: c.head.train(&data),
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
        "{}; embedded lr {} l2 {:e} epochs {} blend {}; mix {} (val {:.1} / {:.1} / {:.1}%)",
        c.head.describe(),
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
    let head = c.head.train(&data);
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
         the 80% train split by FNV-1a hash; {} and mix {} chosen on a validation part of it; \
         examples/evaluate_neural_sentiment.rs --write-head",
        train.len(),
        c.head.describe(),
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
    let c = choose(&hash_fold(&train), &emb);
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
    // Cross-domain, with the settings chosen two ways: on a hash-chosen part of the two
    // training domains (as for the random split), and on each training domain held out in
    // turn (fitted on the other).
    for by_domain in [false, true] {
        let mut sum = [0.0; 3];
        for (k, target) in DOMAINS.iter().enumerate() {
            let test = domains[k].clone();
            let others: Vec<&Rows> = (0..3).filter(|&j| j != k).map(|j| &domains[j]).collect();
            let train: Rows = others.iter().flat_map(|d| d.iter().cloned()).collect();
            let folds = if by_domain {
                domain_folds(&others)
            } else {
                hash_fold(&train)
            };
            let c = choose(&folds, &emb);
            let r = score(&train, &test, &emb, &c);
            for (s, v) in sum.iter_mut().zip(r) {
                *s += v;
            }
            println!(
                "| {target}, trained on the other two ({} sentences){} | {:.1}% | {:.1}% | **{:.1}%** | {} |",
                test.len(),
                if by_domain { ", chosen on the held-out training domain" } else { "" },
                r[0] * 100.0,
                r[1] * 100.0,
                r[2] * 100.0,
                describe(&c)
            );
        }
        println!(
            "| cross-domain mean{} | {:.1}% | {:.1}% | **{:.1}%** | |",
            if by_domain {
                ", chosen on the held-out training domain"
            } else {
                ""
            },
            sum[0] / 3.0 * 100.0,
            sum[1] / 3.0 * 100.0,
            sum[2] / 3.0 * 100.0
        );
    }
}
