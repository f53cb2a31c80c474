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
use rapport_interpret::neural::{
    default_sentiment_sgd, EncoderAdapter, FullBatchConfig, MiniLm, SavedSentimentHead,
    SentimentHead,
};
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

/// The crate's random 80/20 split of all three domains (by hash of the text): train, test.
fn random_split(domains: &[Rows]) -> (Rows, Rows) {
    domains
        .iter()
        .flatten()
        .cloned()
        .partition(|(t, _)| !is_test_split(t))
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
    let emb_choice = choose_embedded(folds);
    let mut scored: Vec<(f32, f32, bool)> = Vec::new();
    for ((head, embedded), (_, val)) in best_head.2.into_iter().zip(emb_choice.models).zip(folds) {
        let models = Models { head, embedded };
        scored.extend(val.iter().map(|(t, y)| {
            let (n, e) = models.scores(t, emb[t.as_str()]);
            (n, e, *y)
        }));
    }
    let (mix, mix_acc) = choose_mix(&scored);
    Choice {
        head: best_head.1,
        embedded: emb_choice.config,
        blend: emb_choice.blend,
        mix,
        val: (best_head.0, emb_choice.accuracy, mix_acc),
    }
}

/// The embedded model's settings chosen on `folds`, with its validation accuracy and the
/// model fitted on each fold.
struct EmbeddedChoice {
    config: SgdConfig,
    blend: f32,
    accuracy: f64,
    models: Vec<Interpreter>,
}

fn choose_embedded(folds: &[(Rows, Rows)]) -> EmbeddedChoice {
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let mut best = EmbeddedChoice {
        config: SgdConfig::default(),
        blend: 0.0,
        accuracy: f64::MIN,
        models: Vec::new(),
    };
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
            if acc > best.accuracy {
                best = EmbeddedChoice {
                    config: c,
                    blend,
                    accuracy: acc,
                    models: interpreters,
                };
            }
        }
    }
    best
}

/// The weight of the neural score in the mix with the best accuracy on `(neural, embedded,
/// label)` validation scores, and that accuracy.
fn choose_mix(scored: &[(f32, f32, bool)]) -> (f32, f64) {
    let mut best = (0.0f32, f64::MIN);
    for mix in MIXES {
        let acc = scored
            .iter()
            .filter(|(n, e, y)| (mix * n + (1.0 - mix) * e >= 0.0) == *y)
            .count() as f64
            / scored.len().max(1) as f64;
        if acc > best.1 {
            best = (mix, acc);
        }
    }
    best
}

/// A head trained with an encoder adapter (by `bench/neural/sentiment_adapter.py`), read from
/// `dir/name.json`, with the adapter built for `model`.
fn adapted_head(
    model: &MiniLm,
    dir: &std::path::Path,
    name: &str,
) -> (SentimentHead, EncoderAdapter) {
    let path = dir.join(format!("{name}.json"));
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let saved: SavedSentimentHead =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    adapted_head_from(model, &saved)
}

fn adapted_head_from(
    model: &MiniLm,
    saved: &SavedSentimentHead,
) -> (SentimentHead, EncoderAdapter) {
    let head = SentimentHead::from_saved(saved).expect("saved head");
    let adapter = head
        .encoder_adapter(model)
        .expect("adapter")
        .expect("the head has an adapter");
    (head, adapter)
}

/// The head's neural score (`2p - 1`) of each of `rows`, through its adapter.
fn adapted_scores(
    model: &MiniLm,
    (head, adapter): &(SentimentHead, EncoderAdapter),
    rows: &Rows,
) -> Vec<f32> {
    let texts: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    model
        .embed_adapted(&texts, adapter)
        .expect("embed")
        .iter()
        .map(|(_, a)| 2.0 * head.probability(a).expect("probability") - 1.0)
        .collect()
}

/// Test accuracies of an adapter-trained head (`dir/name.json`) alone, the embedded model
/// and the two mixed, with the embedded settings and the mix chosen on `folds`, whose
/// adapter-trained heads are `dir/name-fold{suffix}.json`, one per fold, in order.
fn score_adapted(
    model: &MiniLm,
    dir: &std::path::Path,
    name: &str,
    folds: &[(Rows, Rows)],
    suffixes: &[String],
    train: &Rows,
    test: &Rows,
) -> ([f64; 3], String, f32) {
    let emb_choice = choose_embedded(folds);
    let mut scored = Vec::new();
    for (((_, val), suffix), embedded) in folds.iter().zip(suffixes).zip(&emb_choice.models) {
        let fold = adapted_head(model, dir, &format!("{name}-fold{suffix}"));
        let neural = adapted_scores(model, &fold, val);
        scored.extend(
            val.iter()
                .zip(neural)
                .map(|((t, y), n)| (n, embedded.sentiment(t).score.get(), *y)),
        );
    }
    let (mix, mix_acc) = choose_mix(&scored);
    let w = train_weights(
        train,
        DEFAULT_HASH_BITS,
        emb_choice.blend,
        TEMPERATURE,
        &emb_choice.config,
        "evaluation",
    )
    .expect("train");
    let embedded = common::sentiment_interpreter(Some(&w));
    let final_head = adapted_head(model, dir, name);
    let neural = adapted_scores(model, &final_head, test);
    let rows: Vec<(f32, f32, bool)> = test
        .iter()
        .zip(neural)
        .map(|((t, y), n)| (n, embedded.sentiment(t).score.get(), *y))
        .collect();
    let acc = |f: &dyn Fn(f32, f32) -> f32| {
        rows.iter()
            .filter(|(n, e, y)| (f(*n, *e) >= 0.0) == *y)
            .count() as f64
            / rows.len().max(1) as f64
    };
    (
        [
            acc(&|n, _| n),
            acc(&|_, e| e),
            acc(&|n, e| mix * n + (1.0 - mix) * e),
        ],
        format!(
            "adapter + head from {name}.json; embedded lr {} l2 {:e} epochs {} blend {}; mix {mix} (val {:.1} / {:.1}%)",
            emb_choice.config.learning_rate,
            emb_choice.config.l2,
            emb_choice.config.epochs,
            emb_choice.blend,
            emb_choice.accuracy * 100.0,
            mix_acc * 100.0
        ),
        mix,
    )
}

/// Rows for the heads trained with encoder adapters in `dir`: the random split and the three
/// cross-domain tests, each with the embedded settings and mix chosen on the same folds the
/// adapters' epochs were chosen on.
fn adapter_rows(model: &MiniLm, dir: &std::path::Path, domains: &[Rows]) -> f32 {
    println!();
    println!("Heads trained with an encoder adapter (`bench/neural/sentiment_adapter.py`, read from {}):", dir.display());
    println!();
    println!("| test set | adapter + head | embedded | combined | chosen on validation |");
    println!("|---|---|---|---|---|");
    let (train, test) = random_split(domains);
    let (r, how, random_mix) = score_adapted(
        model,
        dir,
        "random",
        &hash_fold(&train),
        &[String::new()],
        &train,
        &test,
    );
    println!(
        "| random split ({} train / {} test) | {:.1}% | {:.1}% | **{:.1}%** | {how} |",
        train.len(),
        test.len(),
        r[0] * 100.0,
        r[1] * 100.0,
        r[2] * 100.0
    );
    let mut sum = [0.0; 3];
    for (k, target) in DOMAINS.iter().enumerate() {
        let test = domains[k].clone();
        let others: Vec<usize> = (0..3).filter(|&j| j != k).collect();
        let other_rows: Vec<&Rows> = others.iter().map(|&j| &domains[j]).collect();
        let train: Rows = other_rows.iter().flat_map(|d| d.iter().cloned()).collect();
        // `domain_folds` validates on each training domain in turn, in this order.
        let suffixes: Vec<String> = others.iter().map(|&j| format!("-{}", DOMAINS[j])).collect();
        let (r, how, _) = score_adapted(
            model,
            dir,
            &format!("cross-{target}"),
            &domain_folds(&other_rows),
            &suffixes,
            &train,
            &test,
        );
        for (s, v) in sum.iter_mut().zip(r) {
            *s += v;
        }
        println!(
            "| {target}, trained on the other two ({} sentences), chosen on the held-out training domain | {:.1}% | {:.1}% | **{:.1}%** | {how} |",
            test.len(),
            r[0] * 100.0,
            r[1] * 100.0,
            r[2] * 100.0
        );
    }
    println!(
        "| cross-domain mean | {:.1}% | {:.1}% | **{:.1}%** | |",
        sum[0] / 3.0 * 100.0,
        sum[1] / 3.0 * 100.0,
        sum[2] / 3.0 * 100.0
    );
    random_mix
}

/// Writes the random split's adapter-trained head (`dir/random.json`) with the `mix` chosen
/// on validation to `model/neural-sentiment-head.json`, and prints its test accuracy combined
/// with the shipped embedded model, as `rapport analyze --model neural` computes it.
fn ship_adapter(model: &MiniLm, dir: &std::path::Path, domains: &[Rows], mix: f32) {
    let path = dir.join("random.json");
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut saved: SavedSentimentHead =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    saved.mix = mix;
    saved.trained_on = format!(
        "{}; mix {mix} chosen on the validation part; examples/evaluate_neural_sentiment.rs --adapters DIR --write-head",
        saved.trained_on
    );
    let head = adapted_head_from(model, &saved);
    let (_, test) = random_split(domains);
    let shipped = Interpreter::embedded(IntentTaxonomy::default_cx()).expect("interpreter");
    let neural = adapted_scores(model, &head, &test);
    let right = test
        .iter()
        .zip(neural)
        .filter(|((t, y), n)| {
            let e = shipped.analyze(t).sentiment.score.get();
            (mix * n + (1.0 - mix) * e >= 0.0) == *y
        })
        .count();
    let out =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("model/neural-sentiment-head.json");
    std::fs::write(&out, serde_json::to_string(&saved).expect("json") + "\n")
        .unwrap_or_else(|e| panic!("{out:?}: {e}"));
    println!(
        "\nshipped adapter + head + shipped embedded model (mix {mix}): test accuracy {:.1}% on {} sentences; written to {}\n",
        right as f64 / test.len() as f64 * 100.0,
        test.len(),
        out.display()
    );
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
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--adapters") {
        let dir = std::path::PathBuf::from(args.get(i + 1).expect("--adapters DIR"));
        let mix = adapter_rows(&model, &dir, &domains);
        if args.iter().any(|a| a == "--write-head") {
            ship_adapter(&model, &dir, &domains, mix);
        }
        return;
    }
    let texts: Vec<&str> = domains.iter().flatten().map(|(t, _)| t.as_str()).collect();
    let vectors = model.embed(&texts).expect("embed");
    let emb: HashMap<&str, &[f32]> = texts
        .iter()
        .copied()
        .zip(vectors.iter().map(Vec::as_slice))
        .collect();

    println!("| test set | MiniLM + head | embedded | combined | chosen on validation |");
    println!("|---|---|---|---|---|");
    let (train, test) = random_split(&domains);
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
